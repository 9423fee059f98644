//! The registry's database schema and its versioned migrations.
//!
//! Every schema change is a new entry at the end of [`MIGRATIONS`], never an edit of an applied
//! one. `schema_migrations(version, name, applied_at)` records what a database has; on open the
//! pending migrations run in order, each in its own `BEGIN IMMEDIATE` transaction, so two
//! processes opening a fresh registry at once apply each migration exactly once.
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
//! Triggers make what must never change refuse to change: audit entries, and versions, licences
//! and files, are never deleted; a version's content is immutable; it is superseded or revoked
//! at most once. A hand edit has to drop a trigger first, and the audit chain still tells.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::RegistryError;
use super::sqlite::{db_err, immediate};

/// One schema change.
pub(crate) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 2;

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial registry: runs, licences, versions, files, audit trail",
        sql: r#"
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
    },
    Migration {
        version: 2,
        name: "sharing: departments, grants, check requests, copies for use",
        sql: r#"
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
    },
];

/// Brings the database at `path` to [`SCHEMA_VERSION`] and returns that version.
///
/// Fails with [`RegistryError::NotARegistry`] for a SQLite database of something else,
/// [`RegistryError::SchemaTooNew`] for a registry written by a newer build, or the SQLite error
/// of the migration that failed (which then left nothing behind).
pub(crate) fn migrate(conn: &Connection, path: &Path) -> Result<u32, RegistryError> {
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master
                            WHERE type = 'table' AND name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .map_err(db_err(path, "read schema"))?;
    if !has_meta {
        let foreign: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err(path, "read schema"))?;
        if let Some(table) = foreign {
            return Err(RegistryError::NotARegistry {
                path: path.to_path_buf(),
                reason: format!("has table {table:?} but no schema_migrations"),
            });
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TEXT NOT NULL
             ) STRICT;",
        )
        .map_err(db_err(path, "create schema_migrations"))?;
    }
    let found = current_version(conn, path)?;
    if found > SCHEMA_VERSION {
        return Err(RegistryError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        immediate(conn, path, "apply migration", |tx| {
            let applied: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                    [migration.version],
                    |r| r.get(0),
                )
                .map_err(db_err(path, "read schema_migrations"))?;
            if applied {
                // Another process applied it between our read and our lock.
                return Ok(());
            }
            tx.execute_batch(migration.sql).map_err(db_err(path, "apply migration"))?;
            // applied_at is bookkeeping about this file, not a registry fact: SQLite's clock is
            // used so that opening needs no clock; nothing compares it.
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at)
                 VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                params![migration.version, migration.name],
            )
            .map_err(db_err(path, "record migration"))?;
            Ok(())
        })?;
    }
    current_version(conn, path)
}

/// The highest applied migration (0 for none).
pub(crate) fn current_version(conn: &Connection, path: &Path) -> Result<u32, RegistryError> {
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .map_err(db_err(path, "read schema_migrations"))
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
        let conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&conn, &path).unwrap(), SCHEMA_VERSION);
        assert_eq!(migrate(&conn, &path).unwrap(), SCHEMA_VERSION);
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?1, 'future', '2030-01-01T00:00:00Z')",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
        assert!(matches!(
            migrate(&conn, &path),
            Err(RegistryError::SchemaTooNew { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn foreign_database_is_not_a_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE customers (id INTEGER)").unwrap();
        assert!(matches!(migrate(&conn, &path), Err(RegistryError::NotARegistry { .. })));
    }
}
