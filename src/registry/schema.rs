//! The registry's database schema and its versioned migrations.
//!
//! Every schema change is a new entry at the end of [`MIGRATIONS`], never an edit of an applied
//! one. `schema_migrations(version, name, applied_at)` records what a database has; on open the
//! pending migrations run in order, each in its own write transaction (SQLite `BEGIN IMMEDIATE`,
//! PostgreSQL under the registry's advisory lock), so two processes opening a fresh registry at
//! once apply each migration exactly once. Each migration is written in both dialects; the
//! tables, columns, constraints and triggers are the same.
//!
//! Tables (migration 1):
//! - `runs`, `run_inputs`, `rejects`: every run with its pipeline, input hashes, times, counts
//!   and outcome, and the rows it rejected.
//! - `licences`: one row per natural key (type code + issuer code + printed number).
//! - `versions`: one row per version of a licence, with its GB/T 36904 identifier, content hash,
//!   holder, dates, face fields, the row it came from, and when it was superseded or revoked.
//!   At most one version per licence has `superseded_by IS NULL` (the current one).
//! - `files`, `version_files`: the store files (SHA-256 and kind) and which version they belong to.
//! - `audit_log`: the hash-chained, append-only audit trail (see `audit.rs`).
//!
//! Tables (migration 2, sharing; see `sharing.rs`):
//! - `departments`: consuming and issuing departments (code = USCC) with their credential hash
//!   (argon2id PHC string; the credential itself is never stored).
//! - `grants`: per department and licence type, whether personal and trade-secret fields are
//!   shown unmasked.
//! - `check_requests`: check requests (核查) from a department to a licence's issuer, and the
//!   answers.
//! - `copies`: copies for use (加注件) handed out, by the SHA-256 of the signed file.
//!
//! Tables (migration 6, the transparency log; see `log.rs`): `log_meta` (the log's id),
//! `log_leaves` (one per issued, changed, revoked version), `log_checkpoints` (signed tree heads).
//!
//! Tables (migration 7, the issuance workflow; see `operators.rs`, `review.rs`):
//! - `operators`: named staff with their roles (collector, reviewer, issuer, admin) and
//!   credential hash (argon2id, as departments).
//! - `review_items`: rows a run staged for review (采集 → 审核 → 签发): what the decision was,
//!   the validated licence, the unsigned preview, who staged it, and who approved or rejected it.
//!
//! Tables (migration 8): `registry_marks`: marks set once on the registry (`production`, by
//! `elicence init --production`).
//!
//! Tables (migration 12, derived from the audit trail; see `reliance.rs`): `relied_licences`
//! (per department and licence, the version it was first handed and when) and `relied_scanned`
//! (how far the trail has been read into it). `migrate` does not copy them; they rebuild.
//!
//! Tables (migration 13, the segment store; see `segments.rs`): `segments` (a store object
//! that packs the files of one committed chunk, by its SHA-256 and size) and `segment_files`
//! (where in which segment a file of `files` is). A file without a `segment_files` row is an
//! object of its own (`ab/cd/<sha256>.<ext>`).
//!
//! Tables (migration 10): `field_key`: the check value of the registry's field index key and
//! the id of its current data key (personal data encrypted at rest, see `secrets.rs`).
//!
//! Triggers make what must never change refuse to change: audit entries, and versions, licences
//! and files, are never deleted; a version's content is immutable; it is superseded or revoked
//! at most once. A hand edit has to drop a trigger first, and the audit chain still tells.

use super::RegistryError;
use super::db::{Db, Dialect, vals};

/// One schema change, in each dialect.
pub(crate) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 13;

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial registry: runs, licences, versions, files, audit trail",
        sqlite: r#"
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    pipeline         TEXT NOT NULL,
    operator         TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    outcome          TEXT CHECK (outcome IN ('completed', 'failed', 'interrupted')),
    count_read       INTEGER,
    count_issued     INTEGER,
    count_changed    INTEGER,
    count_revoked    INTEGER,
    count_unchanged  INTEGER,
    count_duplicates INTEGER,
    count_rejected   INTEGER
) STRICT;

CREATE TABLE run_inputs (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL,
    file     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
) STRICT;

CREATE TABLE rejects (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id),
    file    TEXT NOT NULL,
    sheet   TEXT,
    line    INTEGER NOT NULL,
    field   TEXT NOT NULL,
    rule    TEXT NOT NULL,
    message TEXT NOT NULL
) STRICT;
CREATE INDEX rejects_run ON rejects(run_id);

CREATE TABLE licences (
    id          INTEGER PRIMARY KEY,
    type_code   TEXT NOT NULL,
    issuer_code TEXT NOT NULL,
    printed_no  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (type_code, issuer_code, printed_no)
) STRICT;

CREATE TABLE versions (
    id             INTEGER PRIMARY KEY,
    licence_id     INTEGER NOT NULL REFERENCES licences(id),
    version        INTEGER NOT NULL CHECK (version BETWEEN 1 AND 999),
    identifier     TEXT NOT NULL UNIQUE,
    content_hash   TEXT NOT NULL CHECK (length(content_hash) = 32),
    row_status     TEXT NOT NULL CHECK (row_status IN ('valid', 'changed', 'revoked')),
    holder_code    TEXT NOT NULL,
    holder_name    TEXT NOT NULL,
    issue_date     TEXT NOT NULL,
    valid_to       TEXT,
    fields_json    TEXT NOT NULL,
    source         TEXT NOT NULL,
    run_id         INTEGER REFERENCES runs(id),
    created_at     TEXT NOT NULL,
    superseded_by  TEXT REFERENCES versions(identifier) DEFERRABLE INITIALLY DEFERRED,
    superseded_at  TEXT,
    revoked_at     TEXT,
    revoked_reason TEXT,
    revoked_by     TEXT,
    UNIQUE (licence_id, version),
    CHECK ((superseded_by IS NULL) = (superseded_at IS NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)
       AND (revoked_at IS NULL) = (revoked_by IS NULL))
) STRICT;
-- One current version per licence.
CREATE UNIQUE INDEX versions_one_current ON versions(licence_id) WHERE superseded_by IS NULL;
CREATE INDEX versions_content ON versions(licence_id, content_hash);
-- Single-instance types: the live licences of a holder.
CREATE INDEX versions_live_holder ON versions(holder_code)
    WHERE superseded_by IS NULL AND revoked_at IS NULL;
CREATE INDEX versions_run ON versions(run_id);

CREATE TABLE files (
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    kind   TEXT NOT NULL CHECK (kind IN ('pdf', 'xml', 'archive')),
    size   INTEGER NOT NULL,
    PRIMARY KEY (sha256, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE version_files (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    kind       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (version_id, kind),
    FOREIGN KEY (sha256, kind) REFERENCES files(sha256, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    action    TEXT NOT NULL,
    operator  TEXT NOT NULL,
    subject   TEXT NOT NULL,
    reason    TEXT,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TRIGGER licences_no_delete BEFORE DELETE ON licences
BEGIN SELECT RAISE(ABORT, 'licences are never deleted'); END;
CREATE TRIGGER licences_fixed BEFORE UPDATE ON licences
BEGIN SELECT RAISE(ABORT, 'a licence natural key is immutable'); END;
CREATE TRIGGER versions_no_delete BEFORE DELETE ON versions
BEGIN SELECT RAISE(ABORT, 'licence versions are never deleted'); END;
CREATE TRIGGER versions_fixed BEFORE UPDATE OF
    id, licence_id, version, identifier, content_hash, row_status, holder_code, holder_name,
    issue_date, valid_to, fields_json, source, run_id, created_at ON versions
BEGIN SELECT RAISE(ABORT, 'a licence version is immutable'); END;
CREATE TRIGGER versions_supersede_once BEFORE UPDATE OF superseded_by, superseded_at ON versions
    WHEN OLD.superseded_by IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a version is superseded once'); END;
CREATE TRIGGER versions_revoke_once BEFORE UPDATE OF revoked_at, revoked_reason, revoked_by ON versions
    WHEN OLD.revoked_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a version is revoked once'); END;
CREATE TRIGGER files_no_delete BEFORE DELETE ON files
BEGIN SELECT RAISE(ABORT, 'stored files are never forgotten'); END;
CREATE TRIGGER version_files_no_delete BEFORE DELETE ON version_files
BEGIN SELECT RAISE(ABORT, 'stored files are never forgotten'); END;
"#,
        // The same tables: BIGINT for INTEGER, identity keys, byte-order ("C") text collation so
        // that times, hashes and identifiers sort as they do in SQLite, one trigger function,
        // and TRUNCATE refused where DELETE is (TRUNCATE skips row triggers).
        postgres: r#"
-- Refuses a change; the message is the trigger's argument (PostgreSQL side of RAISE(ABORT)).
CREATE FUNCTION elicence_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;

CREATE TABLE runs (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    pipeline         TEXT COLLATE "C" NOT NULL,
    operator         TEXT COLLATE "C" NOT NULL,
    started_at       TEXT COLLATE "C" NOT NULL,
    finished_at      TEXT COLLATE "C",
    outcome          TEXT COLLATE "C" CHECK (outcome IN ('completed', 'failed', 'interrupted')),
    count_read       BIGINT,
    count_issued     BIGINT,
    count_changed    BIGINT,
    count_revoked    BIGINT,
    count_unchanged  BIGINT,
    count_duplicates BIGINT,
    count_rejected   BIGINT
);

CREATE TABLE run_inputs (
    run_id   BIGINT NOT NULL REFERENCES runs(id),
    position BIGINT NOT NULL,
    file     TEXT COLLATE "C" NOT NULL,
    sha256   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, position)
);

CREATE TABLE rejects (
    id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id  BIGINT NOT NULL REFERENCES runs(id),
    file    TEXT COLLATE "C" NOT NULL,
    sheet   TEXT COLLATE "C",
    line    BIGINT NOT NULL,
    field   TEXT COLLATE "C" NOT NULL,
    rule    TEXT COLLATE "C" NOT NULL,
    message TEXT COLLATE "C" NOT NULL
);
CREATE INDEX rejects_run ON rejects(run_id);

CREATE TABLE licences (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    type_code   TEXT COLLATE "C" NOT NULL,
    issuer_code TEXT COLLATE "C" NOT NULL,
    printed_no  TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    UNIQUE (type_code, issuer_code, printed_no)
);

CREATE TABLE versions (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    licence_id     BIGINT NOT NULL REFERENCES licences(id),
    version        BIGINT NOT NULL CHECK (version BETWEEN 1 AND 999),
    identifier     TEXT COLLATE "C" NOT NULL UNIQUE,
    content_hash   TEXT COLLATE "C" NOT NULL CHECK (length(content_hash) = 32),
    row_status     TEXT COLLATE "C" NOT NULL CHECK (row_status IN ('valid', 'changed', 'revoked')),
    holder_code    TEXT COLLATE "C" NOT NULL,
    holder_name    TEXT COLLATE "C" NOT NULL,
    issue_date     TEXT COLLATE "C" NOT NULL,
    valid_to       TEXT COLLATE "C",
    fields_json    TEXT COLLATE "C" NOT NULL,
    source         TEXT COLLATE "C" NOT NULL,
    run_id         BIGINT REFERENCES runs(id),
    created_at     TEXT COLLATE "C" NOT NULL,
    superseded_by  TEXT COLLATE "C" REFERENCES versions(identifier) DEFERRABLE INITIALLY DEFERRED,
    superseded_at  TEXT COLLATE "C",
    revoked_at     TEXT COLLATE "C",
    revoked_reason TEXT COLLATE "C",
    revoked_by     TEXT COLLATE "C",
    UNIQUE (licence_id, version),
    CHECK ((superseded_by IS NULL) = (superseded_at IS NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)
       AND (revoked_at IS NULL) = (revoked_by IS NULL))
);
-- One current version per licence.
CREATE UNIQUE INDEX versions_one_current ON versions(licence_id) WHERE superseded_by IS NULL;
CREATE INDEX versions_content ON versions(licence_id, content_hash);
-- Single-instance types: the live licences of a holder.
CREATE INDEX versions_live_holder ON versions(holder_code)
    WHERE superseded_by IS NULL AND revoked_at IS NULL;
CREATE INDEX versions_run ON versions(run_id);

CREATE TABLE files (
    sha256 TEXT COLLATE "C" NOT NULL CHECK (length(sha256) = 64),
    kind   TEXT COLLATE "C" NOT NULL CHECK (kind IN ('pdf', 'xml', 'archive')),
    size   BIGINT NOT NULL,
    PRIMARY KEY (sha256, kind)
);

CREATE TABLE version_files (
    version_id BIGINT NOT NULL REFERENCES versions(id),
    kind       TEXT COLLATE "C" NOT NULL,
    sha256     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (version_id, kind),
    FOREIGN KEY (sha256, kind) REFERENCES files(sha256, kind)
);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        TEXT COLLATE "C" NOT NULL,
    action    TEXT COLLATE "C" NOT NULL,
    operator  TEXT COLLATE "C" NOT NULL,
    subject   TEXT COLLATE "C" NOT NULL,
    reason    TEXT COLLATE "C",
    details   TEXT COLLATE "C" NOT NULL,
    prev_hash TEXT COLLATE "C" NOT NULL,
    hash      TEXT COLLATE "C" NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('audit_log is append-only');
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('audit_log is append-only');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('audit_log is append-only');

CREATE TRIGGER licences_no_delete BEFORE DELETE ON licences
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('licences are never deleted');
CREATE TRIGGER licences_no_truncate BEFORE TRUNCATE ON licences
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('licences are never deleted');
CREATE TRIGGER licences_fixed BEFORE UPDATE ON licences
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('a licence natural key is immutable');
CREATE TRIGGER versions_no_delete BEFORE DELETE ON versions
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('licence versions are never deleted');
CREATE TRIGGER versions_no_truncate BEFORE TRUNCATE ON versions
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('licence versions are never deleted');
CREATE TRIGGER versions_fixed BEFORE UPDATE OF
    id, licence_id, version, identifier, content_hash, row_status, holder_code, holder_name,
    issue_date, valid_to, fields_json, source, run_id, created_at ON versions
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('a licence version is immutable');
CREATE TRIGGER versions_supersede_once BEFORE UPDATE OF superseded_by, superseded_at ON versions
    FOR EACH ROW WHEN (OLD.superseded_by IS NOT NULL)
    EXECUTE FUNCTION elicence_refuse('a version is superseded once');
CREATE TRIGGER versions_revoke_once BEFORE UPDATE OF revoked_at, revoked_reason, revoked_by ON versions
    FOR EACH ROW WHEN (OLD.revoked_at IS NOT NULL)
    EXECUTE FUNCTION elicence_refuse('a version is revoked once');
CREATE TRIGGER files_no_delete BEFORE DELETE ON files
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
CREATE TRIGGER files_no_truncate BEFORE TRUNCATE ON files
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
CREATE TRIGGER version_files_no_delete BEFORE DELETE ON version_files
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
CREATE TRIGGER version_files_no_truncate BEFORE TRUNCATE ON version_files
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
"#,
    },
    Migration {
        version: 2,
        name: "sharing: departments, grants, check requests, copies for use",
        sqlite: r#"
CREATE TABLE departments (
    code            TEXT PRIMARY KEY CHECK (length(code) = 18),
    name            TEXT NOT NULL,
    level           TEXT NOT NULL
                    CHECK (level IN ('national', 'provincial', 'prefectural', 'county')),
    region          TEXT NOT NULL CHECK (length(region) = 6),
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    credential_hash TEXT NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;
CREATE TRIGGER departments_no_delete BEFORE DELETE ON departments
BEGIN SELECT RAISE(ABORT, 'departments are disabled, never deleted'); END;

CREATE TABLE grants (
    department TEXT NOT NULL REFERENCES departments(code),
    type_code  TEXT NOT NULL,
    unmask     INTEGER NOT NULL CHECK (unmask IN (0, 1)),
    granted_at TEXT NOT NULL,
    PRIMARY KEY (department, type_code)
) STRICT;

CREATE TABLE check_requests (
    id          INTEGER PRIMARY KEY,
    identifier  TEXT NOT NULL REFERENCES versions(identifier),
    requester   TEXT NOT NULL REFERENCES departments(code),
    issuer_code TEXT NOT NULL,
    reason      TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    answered_at TEXT,
    answerer    TEXT REFERENCES departments(code),
    result      TEXT CHECK (result IN ('consistent', 'inconsistent')),
    note        TEXT,
    CHECK ((answered_at IS NULL) = (result IS NULL)
       AND (answered_at IS NULL) = (answerer IS NULL))
) STRICT;
CREATE INDEX check_requests_issuer ON check_requests(issuer_code) WHERE answered_at IS NULL;
CREATE INDEX check_requests_requester ON check_requests(requester);
CREATE TRIGGER check_requests_answer_once BEFORE UPDATE ON check_requests
    WHEN OLD.answered_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a check request is answered once'); END;
CREATE TRIGGER check_requests_no_delete BEFORE DELETE ON check_requests
BEGIN SELECT RAISE(ABORT, 'check requests are never deleted'); END;

CREATE TABLE copies (
    id         INTEGER PRIMARY KEY,
    identifier TEXT NOT NULL REFERENCES versions(identifier),
    department TEXT NOT NULL REFERENCES departments(code),
    reason     TEXT NOT NULL,
    expires    TEXT NOT NULL,
    sha256     TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64),
    created_at TEXT NOT NULL
) STRICT;
CREATE TRIGGER copies_fixed BEFORE UPDATE ON copies
BEGIN SELECT RAISE(ABORT, 'a copy record is immutable'); END;
CREATE TRIGGER copies_no_delete BEFORE DELETE ON copies
BEGIN SELECT RAISE(ABORT, 'copy records are never deleted'); END;
"#,
        postgres: r#"
CREATE TABLE departments (
    code            TEXT COLLATE "C" PRIMARY KEY CHECK (length(code) = 18),
    name            TEXT COLLATE "C" NOT NULL,
    level           TEXT COLLATE "C" NOT NULL
                    CHECK (level IN ('national', 'provincial', 'prefectural', 'county')),
    region          TEXT COLLATE "C" NOT NULL CHECK (length(region) = 6),
    enabled         BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    credential_hash TEXT COLLATE "C" NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL
);
CREATE TRIGGER departments_no_delete BEFORE DELETE ON departments
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('departments are disabled, never deleted');
CREATE TRIGGER departments_no_truncate BEFORE TRUNCATE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('departments are disabled, never deleted');

CREATE TABLE grants (
    department TEXT COLLATE "C" NOT NULL REFERENCES departments(code),
    type_code  TEXT COLLATE "C" NOT NULL,
    unmask     BIGINT NOT NULL CHECK (unmask IN (0, 1)),
    granted_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (department, type_code)
);

CREATE TABLE check_requests (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    identifier  TEXT COLLATE "C" NOT NULL REFERENCES versions(identifier),
    requester   TEXT COLLATE "C" NOT NULL REFERENCES departments(code),
    issuer_code TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    opened_at   TEXT COLLATE "C" NOT NULL,
    answered_at TEXT COLLATE "C",
    answerer    TEXT COLLATE "C" REFERENCES departments(code),
    result      TEXT COLLATE "C" CHECK (result IN ('consistent', 'inconsistent')),
    note        TEXT COLLATE "C",
    CHECK ((answered_at IS NULL) = (result IS NULL)
       AND (answered_at IS NULL) = (answerer IS NULL))
);
CREATE INDEX check_requests_issuer ON check_requests(issuer_code) WHERE answered_at IS NULL;
CREATE INDEX check_requests_requester ON check_requests(requester);
CREATE TRIGGER check_requests_answer_once BEFORE UPDATE ON check_requests
    FOR EACH ROW WHEN (OLD.answered_at IS NOT NULL)
    EXECUTE FUNCTION elicence_refuse('a check request is answered once');
CREATE TRIGGER check_requests_no_delete BEFORE DELETE ON check_requests
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('check requests are never deleted');
CREATE TRIGGER check_requests_no_truncate BEFORE TRUNCATE ON check_requests
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('check requests are never deleted');

CREATE TABLE copies (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    identifier TEXT COLLATE "C" NOT NULL REFERENCES versions(identifier),
    department TEXT COLLATE "C" NOT NULL REFERENCES departments(code),
    reason     TEXT COLLATE "C" NOT NULL,
    expires    TEXT COLLATE "C" NOT NULL,
    sha256     TEXT COLLATE "C" NOT NULL UNIQUE CHECK (length(sha256) = 64),
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE TRIGGER copies_fixed BEFORE UPDATE ON copies
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('a copy record is immutable');
CREATE TRIGGER copies_no_delete BEFORE DELETE ON copies
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('copy records are never deleted');
CREATE TRIGGER copies_no_truncate BEFORE TRUNCATE ON copies
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('copy records are never deleted');
"#,
    },
    Migration {
        version: 3,
        name: "sharded runs: rows left to other shards",
        sqlite: "ALTER TABLE runs ADD COLUMN count_other_shard INTEGER;",
        postgres: "ALTER TABLE runs ADD COLUMN count_other_shard BIGINT;",
    },
    // Superseding a version sets `superseded_by` on the old one before the new one exists (the
    // one-current-version index forbids the other order), so the deferred foreign key counts
    // a violation, and inserting the new version then looks for the rows that reference it.
    // Without an index SQLite scanned the whole `versions` table for each changed licence: a
    // 1M-row backfill slowed from 850 to 450 licences/s by 160,000 rows, and kept slowing.
    Migration {
        version: 4,
        name: "index versions.superseded_by (foreign-key checks when superseding)",
        sqlite: "CREATE INDEX versions_superseded_by ON versions(superseded_by)
                 WHERE superseded_by IS NOT NULL;",
        postgres: "CREATE INDEX versions_superseded_by ON versions(superseded_by)
                   WHERE superseded_by IS NOT NULL;",
    },
    // OFD e-licences (issue 13) are stored files of kind 'ofd'. SQLite cannot change a CHECK
    // constraint in place: `files` and `version_files` are rebuilt (DROP TABLE fires no
    // triggers; the foreign key of the new `version_files` follows the rename), with their
    // triggers; the rows are copied unchanged.
    Migration {
        version: 5,
        name: "stored files of kind 'ofd' (sealed OFD e-licences)",
        sqlite: r#"
CREATE TABLE files_v5 (
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    kind   TEXT NOT NULL CHECK (kind IN ('pdf', 'xml', 'archive', 'ofd')),
    size   INTEGER NOT NULL,
    PRIMARY KEY (sha256, kind)
) STRICT, WITHOUT ROWID;
INSERT INTO files_v5 (sha256, kind, size) SELECT sha256, kind, size FROM files;
CREATE TABLE version_files_v5 (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    kind       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (version_id, kind),
    FOREIGN KEY (sha256, kind) REFERENCES files_v5(sha256, kind)
) STRICT, WITHOUT ROWID;
INSERT INTO version_files_v5 (version_id, kind, sha256)
    SELECT version_id, kind, sha256 FROM version_files;
DROP TABLE version_files;
DROP TABLE files;
ALTER TABLE files_v5 RENAME TO files;
ALTER TABLE version_files_v5 RENAME TO version_files;
CREATE TRIGGER files_no_delete BEFORE DELETE ON files
BEGIN SELECT RAISE(ABORT, 'stored files are never forgotten'); END;
CREATE TRIGGER version_files_no_delete BEFORE DELETE ON version_files
BEGIN SELECT RAISE(ABORT, 'stored files are never forgotten'); END;
"#,
        postgres: r#"
ALTER TABLE files DROP CONSTRAINT files_kind_check;
ALTER TABLE files ADD CONSTRAINT files_kind_check
    CHECK (kind IN ('pdf', 'xml', 'archive', 'ofd'));
"#,
    },
    Migration {
        version: 6,
        name: "transparency log: leaves (one per issued, changed, revoked version) and signed checkpoints",
        sqlite: r#"
CREATE TABLE log_meta (
    log_id TEXT NOT NULL
) STRICT;
INSERT INTO log_meta (log_id) VALUES (lower(hex(randomblob(16))));
CREATE TABLE log_leaves (
    idx        INTEGER PRIMARY KEY CHECK (idx >= 0),
    audit_seq  INTEGER NOT NULL UNIQUE,
    identifier TEXT NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('issued', 'changed', 'revoked')),
    leaf       TEXT NOT NULL,
    leaf_hash  TEXT NOT NULL CHECK (length(leaf_hash) = 64),
    UNIQUE (identifier, event)
) STRICT;
CREATE TABLE log_checkpoints (
    tree_size  INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    root_hash  TEXT NOT NULL CHECK (length(root_hash) = 64),
    at         TEXT NOT NULL,
    body       TEXT NOT NULL,
    signature  TEXT NOT NULL
) STRICT;
CREATE TRIGGER log_leaves_no_update BEFORE UPDATE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'log_leaves is append-only'); END;
CREATE TRIGGER log_leaves_no_delete BEFORE DELETE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'log_leaves is append-only'); END;
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'log_checkpoints is append-only'); END;
CREATE TRIGGER log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'log_checkpoints is append-only'); END;
"#,
        postgres: r#"
CREATE TABLE log_meta (
    log_id TEXT COLLATE "C" NOT NULL
);
INSERT INTO log_meta (log_id) VALUES (md5(random()::text || clock_timestamp()::text));
CREATE TABLE log_leaves (
    idx        BIGINT PRIMARY KEY CHECK (idx >= 0),
    audit_seq  BIGINT NOT NULL UNIQUE,
    identifier TEXT COLLATE "C" NOT NULL,
    event      TEXT COLLATE "C" NOT NULL CHECK (event IN ('issued', 'changed', 'revoked')),
    leaf       TEXT COLLATE "C" NOT NULL,
    leaf_hash  TEXT COLLATE "C" NOT NULL CHECK (length(leaf_hash) = 64),
    UNIQUE (identifier, event)
);
CREATE TABLE log_checkpoints (
    tree_size  BIGINT PRIMARY KEY CHECK (tree_size >= 0),
    root_hash  TEXT COLLATE "C" NOT NULL CHECK (length(root_hash) = 64),
    at         TEXT COLLATE "C" NOT NULL,
    body       TEXT COLLATE "C" NOT NULL,
    signature  TEXT COLLATE "C" NOT NULL
);
CREATE TRIGGER log_leaves_no_update BEFORE UPDATE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('log_leaves is append-only');
CREATE TRIGGER log_leaves_no_delete BEFORE DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('log_leaves is append-only');
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('log_leaves is append-only');
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('log_checkpoints is append-only');
CREATE TRIGGER log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('log_checkpoints is append-only');
"#,
    },
    // Issue 16: named operators with roles (采集 → 审核 → 签发) and review before issue. A
    // staged row is not a version: it lives in `review_items` until a reviewer approves it (then
    // the lifecycle writes the version as a run does) or rejects it. Nothing here is deleted;
    // a decided item never changes again.
    Migration {
        version: 7,
        name: "issuance workflow: operators, review, pending counts, revocation dates, check deadlines",
        sqlite: r#"
CREATE TABLE operators (
    name            TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    roles           TEXT NOT NULL,
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    credential_hash TEXT NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;
CREATE TRIGGER operators_no_delete BEFORE DELETE ON operators
BEGIN SELECT RAISE(ABORT, 'operators are disabled, never deleted'); END;

CREATE TABLE review_items (
    id                  INTEGER PRIMARY KEY,
    run_id              INTEGER NOT NULL REFERENCES runs(id),
    type_code           TEXT NOT NULL,
    issuer_code         TEXT NOT NULL,
    printed_no          TEXT NOT NULL,
    action              TEXT NOT NULL CHECK (action IN ('issue', 'change', 'revoke')),
    identifier          TEXT NOT NULL,
    previous_identifier TEXT,
    content_hash        TEXT NOT NULL CHECK (length(content_hash) = 32),
    row_status          TEXT NOT NULL CHECK (row_status IN ('valid', 'changed', 'revoked')),
    holder_code         TEXT NOT NULL,
    holder_name         TEXT NOT NULL,
    issue_date          TEXT NOT NULL,
    single_instance     INTEGER NOT NULL CHECK (single_instance IN (0, 1)),
    revoked_on          TEXT,
    revoked_reason      TEXT,
    licence_json        TEXT NOT NULL,
    preview_sha256      TEXT CHECK (preview_sha256 IS NULL OR length(preview_sha256) = 64),
    archive_sha256      TEXT CHECK (archive_sha256 IS NULL OR length(archive_sha256) = 64),
    source              TEXT NOT NULL,
    staged_by           TEXT NOT NULL,
    staged_at           TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by          TEXT,
    decided_at          TEXT,
    decision_note       TEXT,
    CHECK ((state = 'pending') = (decided_at IS NULL)
       AND (decided_at IS NULL) = (decided_by IS NULL))
) STRICT;
CREATE INDEX review_items_pending ON review_items(type_code, issuer_code, printed_no)
    WHERE state = 'pending';
CREATE INDEX review_items_run ON review_items(run_id);
CREATE TRIGGER review_items_no_delete BEFORE DELETE ON review_items
BEGIN SELECT RAISE(ABORT, 'review items are never deleted'); END;
CREATE TRIGGER review_items_decided_once BEFORE UPDATE ON review_items
    WHEN OLD.state <> 'pending'
BEGIN SELECT RAISE(ABORT, 'a review item is decided once'); END;
CREATE TRIGGER review_items_fixed BEFORE UPDATE OF
    id, run_id, type_code, issuer_code, printed_no, action, identifier, previous_identifier,
    content_hash, row_status, holder_code, holder_name, issue_date, single_instance,
    revoked_on, revoked_reason, licence_json, preview_sha256, archive_sha256, source, staged_by,
    staged_at ON review_items
BEGIN SELECT RAISE(ABORT, 'a staged review item is immutable'); END;

ALTER TABLE runs ADD COLUMN count_pending INTEGER;

-- Art. 10: the revocation's effective date (the paper's 注销日期, else the day it was recorded);
-- the processing time stays in revoked_at and the audit trail. Set once, with revoked_at.
ALTER TABLE versions ADD COLUMN revoked_on TEXT;
-- Art. 13: the day by which the issuer answers a check request (older requests: none).
ALTER TABLE check_requests ADD COLUMN due_on TEXT;
CREATE TRIGGER versions_revoked_on_once BEFORE UPDATE OF revoked_on ON versions
    WHEN OLD.revoked_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a version is revoked once'); END;
"#,
        postgres: r#"
CREATE TABLE operators (
    name            TEXT COLLATE "C" PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    roles           TEXT COLLATE "C" NOT NULL,
    enabled         BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    credential_hash TEXT COLLATE "C" NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL
);
CREATE TRIGGER operators_no_delete BEFORE DELETE ON operators
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('operators are disabled, never deleted');
CREATE TRIGGER operators_no_truncate BEFORE TRUNCATE ON operators
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('operators are disabled, never deleted');

CREATE TABLE review_items (
    id                  BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id              BIGINT NOT NULL REFERENCES runs(id),
    type_code           TEXT COLLATE "C" NOT NULL,
    issuer_code         TEXT COLLATE "C" NOT NULL,
    printed_no          TEXT COLLATE "C" NOT NULL,
    action              TEXT COLLATE "C" NOT NULL CHECK (action IN ('issue', 'change', 'revoke')),
    identifier          TEXT COLLATE "C" NOT NULL,
    previous_identifier TEXT COLLATE "C",
    content_hash        TEXT COLLATE "C" NOT NULL CHECK (length(content_hash) = 32),
    row_status          TEXT COLLATE "C" NOT NULL
                        CHECK (row_status IN ('valid', 'changed', 'revoked')),
    holder_code         TEXT COLLATE "C" NOT NULL,
    holder_name         TEXT COLLATE "C" NOT NULL,
    issue_date          TEXT COLLATE "C" NOT NULL,
    single_instance     BIGINT NOT NULL CHECK (single_instance IN (0, 1)),
    revoked_on          TEXT COLLATE "C",
    revoked_reason      TEXT COLLATE "C",
    licence_json        TEXT COLLATE "C" NOT NULL,
    preview_sha256      TEXT COLLATE "C"
                        CHECK (preview_sha256 IS NULL OR length(preview_sha256) = 64),
    archive_sha256      TEXT COLLATE "C"
                        CHECK (archive_sha256 IS NULL OR length(archive_sha256) = 64),
    source              TEXT COLLATE "C" NOT NULL,
    staged_by           TEXT COLLATE "C" NOT NULL,
    staged_at           TEXT COLLATE "C" NOT NULL,
    state               TEXT COLLATE "C" NOT NULL
                        CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by          TEXT COLLATE "C",
    decided_at          TEXT COLLATE "C",
    decision_note       TEXT COLLATE "C",
    CHECK ((state = 'pending') = (decided_at IS NULL)
       AND (decided_at IS NULL) = (decided_by IS NULL))
);
CREATE INDEX review_items_pending ON review_items(type_code, issuer_code, printed_no)
    WHERE state = 'pending';
CREATE INDEX review_items_run ON review_items(run_id);
CREATE TRIGGER review_items_no_delete BEFORE DELETE ON review_items
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('review items are never deleted');
CREATE TRIGGER review_items_no_truncate BEFORE TRUNCATE ON review_items
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('review items are never deleted');
CREATE TRIGGER review_items_decided_once BEFORE UPDATE ON review_items
    FOR EACH ROW WHEN (OLD.state <> 'pending')
    EXECUTE FUNCTION elicence_refuse('a review item is decided once');
CREATE TRIGGER review_items_fixed BEFORE UPDATE OF
    id, run_id, type_code, issuer_code, printed_no, action, identifier, previous_identifier,
    content_hash, row_status, holder_code, holder_name, issue_date, single_instance,
    revoked_on, revoked_reason, licence_json, preview_sha256, archive_sha256, source, staged_by,
    staged_at ON review_items
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('a staged review item is immutable');

ALTER TABLE runs ADD COLUMN count_pending BIGINT;

ALTER TABLE versions ADD COLUMN revoked_on TEXT COLLATE "C";
ALTER TABLE check_requests ADD COLUMN due_on TEXT COLLATE "C";
CREATE TRIGGER versions_revoked_on_once BEFORE UPDATE OF revoked_on ON versions
    FOR EACH ROW WHEN (OLD.revoked_at IS NOT NULL)
    EXECUTE FUNCTION elicence_refuse('a version is revoked once');
"#,
    },
    // Production registries (issue 18): `elicence init --production` records the mark once;
    // it is never changed or removed (and the audit trail has it too).
    Migration {
        version: 8,
        name: "registry marks: production",
        sqlite: r#"
CREATE TABLE registry_marks (
    name     TEXT PRIMARY KEY CHECK (name IN ('production')),
    set_at   TEXT NOT NULL,
    operator TEXT NOT NULL
) STRICT;
CREATE TRIGGER registry_marks_fixed BEFORE UPDATE ON registry_marks
BEGIN SELECT RAISE(ABORT, 'a registry mark is never changed'); END;
CREATE TRIGGER registry_marks_no_delete BEFORE DELETE ON registry_marks
BEGIN SELECT RAISE(ABORT, 'a registry mark is never removed'); END;
"#,
        postgres: r#"
CREATE TABLE registry_marks (
    name     TEXT COLLATE "C" PRIMARY KEY CHECK (name IN ('production')),
    set_at   TEXT COLLATE "C" NOT NULL,
    operator TEXT COLLATE "C" NOT NULL
);
CREATE TRIGGER registry_marks_fixed BEFORE UPDATE ON registry_marks
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('a registry mark is never changed');
CREATE TRIGGER registry_marks_no_delete BEFORE DELETE ON registry_marks
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('a registry mark is never removed');
CREATE TRIGGER registry_marks_no_truncate BEFORE TRUNCATE ON registry_marks
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('a registry mark is never removed');
"#,
    },
    // Rights held by the registry (issue 15): every published catalog, newest last; never
    // changed or removed. The catalog of a registry that had none is published by the first
    // command that reads rights (`Registry::rights_catalog`): SQL cannot read the catalog
    // folder. Check requests are looked up by identifier on every status.
    Migration {
        version: 9,
        name: "catalog versions; check requests by identifier",
        sqlite: r#"
CREATE TABLE catalog_versions (
    id           INTEGER PRIMARY KEY,
    sha256       TEXT NOT NULL CHECK (length(sha256) = 64),
    files        TEXT NOT NULL,
    published_at TEXT NOT NULL,
    operator     TEXT NOT NULL
) STRICT;
CREATE TRIGGER catalog_versions_fixed BEFORE UPDATE ON catalog_versions
BEGIN SELECT RAISE(ABORT, 'a published catalog is never changed'); END;
CREATE TRIGGER catalog_versions_no_delete BEFORE DELETE ON catalog_versions
BEGIN SELECT RAISE(ABORT, 'a published catalog is never removed'); END;
CREATE INDEX check_requests_identifier ON check_requests(identifier);
"#,
        postgres: r#"
CREATE TABLE catalog_versions (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sha256       TEXT COLLATE "C" NOT NULL CHECK (length(sha256) = 64),
    files        TEXT COLLATE "C" NOT NULL,
    published_at TEXT COLLATE "C" NOT NULL,
    operator     TEXT COLLATE "C" NOT NULL
);
CREATE TRIGGER catalog_versions_fixed BEFORE UPDATE ON catalog_versions
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('a published catalog is never changed');
CREATE TRIGGER catalog_versions_no_delete BEFORE DELETE ON catalog_versions
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('a published catalog is never removed');
CREATE TRIGGER catalog_versions_no_truncate BEFORE TRUNCATE ON catalog_versions
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('a published catalog is never removed');
CREATE INDEX check_requests_identifier ON check_requests(identifier);
"#,
    },
    // Personal data encrypted at rest (issue 18): `field_key` records which field key the
    // registry's sealed values and keyed hashes belong to (see `secrets.rs`). A version's
    // (and a review item's) content hash, holder and fields may change exactly once, from
    // plaintext to sealed (the sealing step that runs when a registry of an older schema is
    // first opened with its key), and a sealed value may be sealed again with a new data key
    // (`elicence secrets rotate`); everything else about them stays immutable. Reject messages
    // are sealed too (they quote the cell, a malformed citizen ID say); no trigger guards them.
    Migration {
        version: 10,
        name: "personal data encrypted at rest: field key record, sealed versions and review items",
        sqlite: r#"
CREATE TABLE field_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    index_check TEXT NOT NULL CHECK (length(index_check) = 64),
    key_id      TEXT NOT NULL CHECK (length(key_id) = 8),
    created_at  TEXT NOT NULL,
    -- When every version and review item was sealed (opening skips the search after that).
    sealed_at   TEXT
) STRICT;
CREATE TRIGGER field_key_index_fixed BEFORE UPDATE OF id, index_check, created_at ON field_key
BEGIN SELECT RAISE(ABORT, 'the field index key is never changed'); END;
CREATE TRIGGER field_key_no_delete BEFORE DELETE ON field_key
BEGIN SELECT RAISE(ABORT, 'the field key record is never removed'); END;

DROP TRIGGER versions_fixed;
CREATE TRIGGER versions_fixed BEFORE UPDATE OF
    id, licence_id, version, identifier, row_status, issue_date, valid_to, source, run_id,
    created_at ON versions
BEGIN SELECT RAISE(ABORT, 'a licence version is immutable'); END;
CREATE TRIGGER versions_sealed_fixed BEFORE UPDATE OF
    content_hash, holder_code, holder_name, fields_json ON versions
    WHEN substr(NEW.fields_json, 1, 7) <> 'sealed:'
      OR (substr(OLD.fields_json, 1, 7) = 'sealed:'
          AND (NEW.content_hash IS NOT OLD.content_hash OR NEW.holder_code IS NOT OLD.holder_code
               OR NEW.holder_name IS NOT OLD.holder_name))
BEGIN SELECT RAISE(ABORT, 'a licence version is immutable'); END;

DROP TRIGGER review_items_fixed;
CREATE TRIGGER review_items_fixed BEFORE UPDATE OF
    id, run_id, type_code, issuer_code, printed_no, action, identifier, previous_identifier,
    row_status, issue_date, single_instance, revoked_on, revoked_reason, preview_sha256,
    archive_sha256, source, staged_by, staged_at ON review_items
BEGIN SELECT RAISE(ABORT, 'a staged review item is immutable'); END;
CREATE TRIGGER review_items_sealed_fixed BEFORE UPDATE OF
    content_hash, holder_code, holder_name, licence_json ON review_items
    WHEN substr(NEW.licence_json, 1, 7) <> 'sealed:'
      OR (substr(OLD.licence_json, 1, 7) = 'sealed:'
          AND (NEW.content_hash IS NOT OLD.content_hash OR NEW.holder_code IS NOT OLD.holder_code
               OR NEW.holder_name IS NOT OLD.holder_name))
BEGIN SELECT RAISE(ABORT, 'a staged review item is immutable'); END;
DROP TRIGGER review_items_decided_once;
CREATE TRIGGER review_items_decided_once BEFORE UPDATE OF
    state, decided_by, decided_at, decision_note ON review_items
    WHEN OLD.state <> 'pending'
BEGIN SELECT RAISE(ABORT, 'a review item is decided once'); END;
"#,
        postgres: r#"
CREATE TABLE field_key (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    index_check TEXT COLLATE "C" NOT NULL CHECK (length(index_check) = 64),
    key_id      TEXT COLLATE "C" NOT NULL CHECK (length(key_id) = 8),
    created_at  TEXT COLLATE "C" NOT NULL,
    sealed_at   TEXT COLLATE "C"
);
CREATE TRIGGER field_key_index_fixed BEFORE UPDATE OF id, index_check, created_at ON field_key
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('the field index key is never changed');
CREATE TRIGGER field_key_no_delete BEFORE DELETE ON field_key
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('the field key record is never removed');
CREATE TRIGGER field_key_no_truncate BEFORE TRUNCATE ON field_key
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('the field key record is never removed');

DROP TRIGGER versions_fixed ON versions;
CREATE TRIGGER versions_fixed BEFORE UPDATE OF
    id, licence_id, version, identifier, row_status, issue_date, valid_to, source, run_id,
    created_at ON versions
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('a licence version is immutable');
CREATE TRIGGER versions_sealed_fixed BEFORE UPDATE OF
    content_hash, holder_code, holder_name, fields_json ON versions
    FOR EACH ROW WHEN (substr(NEW.fields_json, 1, 7) <> 'sealed:'
      OR (substr(OLD.fields_json, 1, 7) = 'sealed:'
          AND (NEW.content_hash IS DISTINCT FROM OLD.content_hash
               OR NEW.holder_code IS DISTINCT FROM OLD.holder_code
               OR NEW.holder_name IS DISTINCT FROM OLD.holder_name)))
    EXECUTE FUNCTION elicence_refuse('a licence version is immutable');

DROP TRIGGER review_items_fixed ON review_items;
CREATE TRIGGER review_items_fixed BEFORE UPDATE OF
    id, run_id, type_code, issuer_code, printed_no, action, identifier, previous_identifier,
    row_status, issue_date, single_instance, revoked_on, revoked_reason, preview_sha256,
    archive_sha256, source, staged_by, staged_at ON review_items
    FOR EACH ROW
    EXECUTE FUNCTION elicence_refuse('a staged review item is immutable');
CREATE TRIGGER review_items_sealed_fixed BEFORE UPDATE OF
    content_hash, holder_code, holder_name, licence_json ON review_items
    FOR EACH ROW WHEN (substr(NEW.licence_json, 1, 7) <> 'sealed:'
      OR (substr(OLD.licence_json, 1, 7) = 'sealed:'
          AND (NEW.content_hash IS DISTINCT FROM OLD.content_hash
               OR NEW.holder_code IS DISTINCT FROM OLD.holder_code
               OR NEW.holder_name IS DISTINCT FROM OLD.holder_name)))
    EXECUTE FUNCTION elicence_refuse('a staged review item is immutable');
DROP TRIGGER review_items_decided_once ON review_items;
CREATE TRIGGER review_items_decided_once BEFORE UPDATE OF
    state, decided_by, decided_at, decision_note ON review_items
    FOR EACH ROW WHEN (OLD.state <> 'pending')
    EXECUTE FUNCTION elicence_refuse('a review item is decided once');
"#,
    },
    // `verify` (and `POST /api/v1/verify`) find a presented file's version by its SHA-256;
    // `version_files` is keyed by (version, kind), so each lookup scanned the whole table.
    Migration {
        version: 11,
        name: "index version_files.sha256 (a presented file's version)",
        sqlite: "CREATE INDEX version_files_sha256 ON version_files(sha256);",
        postgres: "CREATE INDEX version_files_sha256 ON version_files(sha256);",
    },
    // Change events (`share::events`) read the whole audit trail on every call to learn which
    // licences a department relied on: that is now kept in `relied_licences`, derived from the
    // trail and caught up on each call (`registry::reliance`); audit entries are found by
    // action (the log's catch-up benefits too).
    Migration {
        version: 12,
        name: "licences each department relied on (change events); audit_log by action",
        sqlite: r#"
CREATE INDEX audit_log_action_seq ON audit_log(action, seq);
CREATE TABLE relied_licences (
    department TEXT NOT NULL,
    licence_id INTEGER NOT NULL REFERENCES licences(id),
    identifier TEXT NOT NULL,
    audit_seq  INTEGER NOT NULL,
    PRIMARY KEY (department, licence_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE relied_scanned (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    audit_seq INTEGER NOT NULL
) STRICT;
"#,
        postgres: r#"
CREATE INDEX audit_log_action_seq ON audit_log(action, seq);
CREATE TABLE relied_licences (
    department TEXT COLLATE "C" NOT NULL,
    licence_id BIGINT NOT NULL REFERENCES licences(id),
    identifier TEXT COLLATE "C" NOT NULL,
    audit_seq  BIGINT NOT NULL,
    PRIMARY KEY (department, licence_id)
);
CREATE TABLE relied_scanned (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    audit_seq BIGINT NOT NULL
);
"#,
    },
    // A chunk's files packed into one store object (a segment) instead of one object each:
    // one file to create, write and sync per chunk (one PUT to a bucket) instead of three per
    // licence. `files` keeps one row per file as before; `segment_files` says where it is.
    Migration {
        version: 13,
        name: "segments: a chunk's files packed into one store object",
        sqlite: r#"
CREATE TABLE segments (
    sha256 TEXT NOT NULL PRIMARY KEY CHECK (length(sha256) = 64),
    size   INTEGER NOT NULL CHECK (size >= 0)
) STRICT, WITHOUT ROWID;
CREATE TABLE segment_files (
    sha256  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    segment TEXT NOT NULL REFERENCES segments(sha256),
    byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
    PRIMARY KEY (sha256, kind),
    FOREIGN KEY (sha256, kind) REFERENCES files(sha256, kind)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER segments_no_delete BEFORE DELETE ON segments
BEGIN SELECT RAISE(ABORT, 'stored files are never forgotten'); END;
CREATE TRIGGER segments_no_update BEFORE UPDATE ON segments
BEGIN SELECT RAISE(ABORT, 'a stored file is immutable'); END;
CREATE TRIGGER segment_files_no_delete BEFORE DELETE ON segment_files
BEGIN SELECT RAISE(ABORT, 'stored files are never forgotten'); END;
CREATE TRIGGER segment_files_no_update BEFORE UPDATE ON segment_files
BEGIN SELECT RAISE(ABORT, 'a stored file is immutable'); END;
"#,
        postgres: r#"
CREATE TABLE segments (
    sha256 TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(sha256) = 64),
    size   BIGINT NOT NULL CHECK (size >= 0)
);
CREATE TABLE segment_files (
    sha256  TEXT COLLATE "C" NOT NULL,
    kind    TEXT COLLATE "C" NOT NULL,
    segment TEXT COLLATE "C" NOT NULL REFERENCES segments(sha256),
    byte_offset BIGINT NOT NULL CHECK (byte_offset >= 0),
    PRIMARY KEY (sha256, kind),
    FOREIGN KEY (sha256, kind) REFERENCES files(sha256, kind)
);
CREATE TRIGGER segments_no_delete BEFORE DELETE ON segments
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
CREATE TRIGGER segments_no_update BEFORE UPDATE ON segments
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('a stored file is immutable');
CREATE TRIGGER segments_no_truncate BEFORE TRUNCATE ON segments
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
CREATE TRIGGER segment_files_no_delete BEFORE DELETE ON segment_files
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
CREATE TRIGGER segment_files_no_update BEFORE UPDATE ON segment_files
    FOR EACH ROW EXECUTE FUNCTION elicence_refuse('a stored file is immutable');
CREATE TRIGGER segment_files_no_truncate BEFORE TRUNCATE ON segment_files
    FOR EACH STATEMENT EXECUTE FUNCTION elicence_refuse('stored files are never forgotten');
"#,
    },
];

/// Brings the registry database to [`SCHEMA_VERSION`] and returns that version.
///
/// Fails with [`RegistryError::NotARegistry`] for a database of something else,
/// [`RegistryError::SchemaTooNew`] for a registry written by a newer build, or the database
/// error of the migration that failed (which then left nothing behind: each migration runs in
/// one write transaction, DDL included, in both backends).
pub(crate) fn migrate(db: &Db) -> Result<u32, RegistryError> {
    let path = db.location();
    let tables = db.table_names()?;
    if !tables.iter().any(|t| t == "schema_migrations") {
        if let Some(table) = tables.first() {
            return Err(RegistryError::NotARegistry {
                path: path.to_path_buf(),
                reason: format!("has table {table:?} but no schema_migrations"),
            });
        }
        let create = match db.dialect() {
            Dialect::Sqlite => {
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    INTEGER PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at TEXT NOT NULL
                 ) STRICT;"
            }
            Dialect::Postgres => {
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    BIGINT PRIMARY KEY,
                     name       TEXT COLLATE \"C\" NOT NULL,
                     applied_at TEXT COLLATE \"C\" NOT NULL
                 );"
            }
        };
        db.write("create schema_migrations", |db| db.batch("create schema_migrations", create))?;
    }
    let found = current_version(db)?;
    if found > SCHEMA_VERSION {
        return Err(RegistryError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // applied_at is bookkeeping about this database, not a registry fact: the database's clock
    // is used so that opening needs no clock; nothing compares it.
    let record = match db.dialect() {
        Dialect::Sqlite => {
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
        }
        Dialect::Postgres => {
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?1, ?2, to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"
        }
    };
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        db.write("apply migration", |db| {
            let applied: bool = db.query_one(
                "read schema_migrations",
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                &vals![migration.version],
                |r| r.get(0),
            )?;
            if applied {
                // Another process applied it between our read and our lock.
                return Ok(());
            }
            db.batch("apply migration", migration.sql(db.dialect()))?;
            db.execute("record migration", record, &vals![migration.version, migration.name])?;
            Ok(())
        })?;
    }
    current_version(db)
}

/// The highest applied migration (0 for none).
pub(crate) fn current_version(db: &Db) -> Result<u32, RegistryError> {
    let v: i64 = db.query_one(
        "read schema_migrations",
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        &[],
        |r| r.get(0),
    )?;
    u32::try_from(v).map_err(|_| RegistryError::NotARegistry {
        path: db.location().to_path_buf(),
        reason: format!("schema version {v} out of range"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_end_at_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn migrate_twice_is_a_no_op_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let db = Db::sqlite(rusqlite::Connection::open(&path).unwrap(), &path);
        assert_eq!(migrate(&db).unwrap(), SCHEMA_VERSION);
        assert_eq!(migrate(&db).unwrap(), SCHEMA_VERSION);
        db.execute(
            "test",
            "INSERT INTO schema_migrations VALUES (?1, 'future', '2030-01-01T00:00:00Z')",
            &vals![SCHEMA_VERSION + 1],
        )
        .unwrap();
        assert!(matches!(
            migrate(&db),
            Err(RegistryError::SchemaTooNew { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn foreign_database_is_not_a_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        let db = Db::sqlite(rusqlite::Connection::open(&path).unwrap(), &path);
        db.batch("test", "CREATE TABLE customers (id INTEGER)").unwrap();
        assert!(matches!(migrate(&db), Err(RegistryError::NotARegistry { .. })));
    }

    #[test]
    fn superseding_a_version_does_not_scan_the_versions_table() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        for m in MIGRATIONS {
            conn.execute_batch(m.sqlite).unwrap();
        }
        let insert = "INSERT INTO versions (licence_id, version, identifier, content_hash,
                          row_status, holder_code, holder_name, issue_date, fields_json, source,
                          created_at)
                      VALUES (?1, ?2, ?3, '0123456789abcdef0123456789abcdef', 'valid', 'h', 'n',
                              '2020-01-01', '{}', 's', 't')";
        let tx = conn.transaction().unwrap();
        for i in 1..=200_i64 {
            tx.execute(
                "INSERT INTO licences (id, type_code, issuer_code, printed_no, created_at)
                 VALUES (?1, 't', 'i', ?1, 't')",
                [i],
            )
            .unwrap();
            tx.execute(insert, rusqlite::params![i, 1, format!("v{i}.1")]).unwrap();
        }
        // What `commit_chunk` does for a changed licence: supersede, then insert.
        tx.execute(
            "UPDATE versions SET superseded_by = 'v7.2', superseded_at = 't'
             WHERE identifier = 'v7.1' AND superseded_by IS NULL",
            [],
        )
        .unwrap();
        let mut stmt = tx.prepare(insert).unwrap();
        stmt.execute(rusqlite::params![7, 2, "v7.2"]).unwrap();
        let scanned = stmt.get_status(rusqlite::StatementStatus::FullscanStep);
        assert_eq!(scanned, 0, "the foreign-key check scanned {scanned} rows of versions");
        drop(stmt);
        tx.commit().unwrap();
    }

    /// Migration 5 rebuilds `files` and `version_files` in SQLite: the rows, the foreign key and
    /// the never-delete triggers survive, and kind `ofd` is accepted (anything else is not).
    #[test]
    fn migration_5_keeps_stored_files_and_accepts_ofd() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version < 5) {
            conn.execute_batch(m.sqlite).unwrap();
        }
        let sha = |c: char| c.to_string().repeat(64);
        conn.execute_batch(&format!(
            "INSERT INTO licences (id, type_code, issuer_code, printed_no, created_at)
                 VALUES (1, 't', 'i', 'n', 't');
             INSERT INTO versions (id, licence_id, version, identifier, content_hash, row_status,
                 holder_code, holder_name, issue_date, fields_json, source, created_at)
                 VALUES (1, 1, 1, 'v1', '0123456789abcdef0123456789abcdef', 'valid', 'h', 'n',
                         '2020-01-01', '{{}}', 's', 't');
             INSERT INTO files VALUES ('{a}', 'pdf', 10), ('{b}', 'xml', 20);
             INSERT INTO version_files VALUES (1, 'pdf', '{a}'), (1, 'xml', '{b}');",
            a = sha('a'),
            b = sha('b')
        ))
        .unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(MIGRATIONS[4].sqlite).unwrap();
        tx.commit().unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM files"), 2);
        assert_eq!(count("SELECT count(*) FROM version_files"), 2);
        assert_eq!(count("SELECT sum(size) FROM files"), 30);
        conn.execute(&format!("INSERT INTO files VALUES ('{}', 'ofd', 5)", sha('c')), []).unwrap();
        conn.execute(&format!("INSERT INTO version_files VALUES (1, 'ofd', '{}')", sha('c')), [])
            .unwrap();
        assert!(
            conn.execute(&format!("INSERT INTO files VALUES ('{}', 'exe', 5)", sha('d')), [])
                .is_err()
        );
        let orphan = format!("INSERT INTO version_files VALUES (1, 'archive', '{}')", sha('e'));
        assert!(conn.execute(&orphan, []).is_err(), "the foreign key still holds");
        assert!(conn.execute("DELETE FROM files", []).is_err(), "files are never deleted");
        assert!(conn.execute("DELETE FROM version_files", []).is_err());
    }
}
