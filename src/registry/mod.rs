//! The registry (load stage): a database (the embedded SQLite file `<data dir>/registry.sqlite`
//! by default, or PostgreSQL for several machines loading at once) and the content-addressed
//! store `<data dir>/store/` that together hold every licence, its versions and status, its
//! files, every run and its rejects, and the audit trail. Both backends have the same schema
//! and the same code above one small seam (`db`).
//!
//! This module owns the [`Registry`] handle and its queries. The parts live beside it:
//! - `schema`: tables and versioned migrations;
//! - `db`: the seam over the two backends (SQLite, PostgreSQL): queries, write transactions;
//! - `location`: `--registry` (`postgres://…`, `sqlite:PATH`, or the SQLite file in `--data`);
//! - `sqlite`: SQLite connection settings; `encode`: column encodings both backends share;
//! - `migrate`: copying a whole registry from one backend to another, verified;
//! - `lifecycle`: what a row means (new, unchanged, change, revoke, refused) and the chunk commit;
//! - `store`: the content-addressed files;
//! - `audit`: the hash-chained audit trail;
//! - `backup`: consistent snapshot and verified restore;
//! - `sharing`: departments, grants, check requests and copies for use;
//! - `operators`: named staff with roles (collector, reviewer, issuer, admin);
//! - `review`: rows staged for review, approved into versions or rejected.
//!
//! The registry never renders, signs or reads the clock: callers pass bytes and `at`.
//! Re-running an input never duplicates or loses a licence: the natural key and
//! (natural key, version) and the identifier are UNIQUE, a chunk commits in one transaction
//! with its audit entries, and files are written before the transaction that references them.

mod audit;
mod audit_queue;
mod backup;
mod catalog_versions;
pub(crate) mod db;
mod encode;
mod error;
mod lifecycle;
mod location;
mod log;
mod migrate;
mod operators;
pub mod pg_connect;
mod reliance;
mod review;
mod schema;
pub mod secrets;
mod segments;
mod sharing;
mod sqlite;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use audit::{
    AuditBreak, AuditBreakReason, AuditEntry, AuditRecord, AuditReport, GENESIS_HASH, action,
    canonical_json,
};
pub use audit_queue::{AuditQueue, AuditReceipt};
pub use backup::{BackupManifest, ManifestFile};
pub use catalog_versions::{ADOPTING_OPERATOR, CatalogVersion};
pub use error::{RegistryError, StaleDecision};
pub use lifecycle::{Decision, DecisionInput, LoadItem, LoadResult, PaperRevocation, Refusal};
pub use location::RegistryLocation;
pub use log::{
    CHECKPOINT_HEADER, Checkpoint, CheckpointError, InclusionProof, LOGGED_EVENTS, LogHead,
    LogLeaf, LogProblem, LogReport,
};
pub use migrate::{
    MigrationReport, StoreMigrationReport, migrate as migrate_registry, migrate_store,
};
pub use operators::{Operator, Role, UnknownRole};
pub use reliance::{RelatedChange, RelianceActions};
pub use review::{
    RejectOutcome, ReviewAction, ReviewFilter, ReviewItem, ReviewState, StageItem,
    action as review_action,
};
pub use schema::SCHEMA_VERSION;
pub use secrets::RotationReport;
pub use sharing::{
    AnswerOutcome, CHECK_CONSISTENT, CHECK_INCONSISTENT, CheckRequest, CopyRecord, Department,
    Grant, IssueDelay, IssuerFigures, RejectFigures,
};
pub use store::{
    BucketUrl, CopyReport, FileKind, FileState, Joined, Store, StoreEntries, StoreEntry,
    StoreError, StoreLocation, StoredFile, copy_missing, join_sorted, key_of, sha256_hex,
};

use crate::identify::{IdError, LicenceId};
use crate::licence::LicenceStatus;
use crate::merkle;
use db::{ColumnError, Db, Dialect, Val, vals};
use encode::{
    get_date, get_hash16, get_opt_date, get_opt_time, get_time, get_u16, get_u64, time_text,
};

/// The database file inside the data folder.
pub const DB_FILE: &str = "registry.sqlite";
/// The store folder inside the data folder.
pub const STORE_DIR: &str = "store";

/// A licence's natural key: type code + issuer code + printed number (证照编号), as validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NaturalKey {
    pub type_code: String,
    pub issuer_code: String,
    pub printed_no: String,
}

impl NaturalKey {
    /// The natural key of a validated licence.
    pub fn of(licence: &crate::licence::Licence) -> NaturalKey {
        NaturalKey {
            type_code: licence.type_code.clone(),
            issuer_code: licence.issuer_code.clone(),
            printed_no: licence.printed_no.clone(),
        }
    }

    /// The GB/T 36904 identifier of version `version` of this licence (see
    /// [`LicenceId::for_printed_number`]).
    pub fn identifier(&self, version: u16) -> Result<LicenceId, IdError> {
        LicenceId::for_printed_number(&self.type_code, &self.issuer_code, &self.printed_no, version)
    }
}

impl fmt::Display for NaturalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.type_code, self.issuer_code, self.printed_no)
    }
}

/// A run's number in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    /// `run:<n>`, the audit subject of a run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run:{}", self.0)
    }
}

/// What a run records when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// Pipeline name or file.
    pub pipeline: String,
    /// Each input file with the lower-case hex SHA-256 of its bytes.
    pub inputs: Vec<(String, String)>,
    pub operator: String,
    pub at: DateTime<Utc>,
}

/// A run's counts;
/// `read = issued + changed + revoked + unchanged + duplicates + rejected + other_shard`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    pub read: u64,
    pub issued: u64,
    pub changed: u64,
    pub revoked: u64,
    pub unchanged: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Rows staged for review (`run` of a type under review): in place of issued, changed and
    /// revoked, which a reviewer's approval brings later; 0 otherwise, and then left out of the
    /// JSON.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending: u64,
    /// Rows left to the other shards of a sharded run (`--shard K/N`); 0 otherwise, and then
    /// left out of the JSON.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_shard: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RunCounts {
    /// Every row read is accounted for exactly once.
    pub fn reconciles(&self) -> bool {
        self.read
            == self.issued
                + self.changed
                + self.revoked
                + self.pending
                + self.unchanged
                + self.duplicates
                + self.rejected
                + self.other_shard
    }

    /// Counts one committed row by its result (`read` and `duplicates` are the caller's).
    pub fn tally(&mut self, result: &LoadResult) {
        match result {
            LoadResult::Issued { .. } => self.issued += 1,
            LoadResult::Changed { .. } => self.changed += 1,
            LoadResult::Revoked { .. } => self.revoked += 1,
            LoadResult::Pending { .. } => self.pending += 1,
            LoadResult::Unchanged { .. } => self.unchanged += 1,
            LoadResult::Rejected { .. } => self.rejected += 1,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Completed,
    Failed,
    Interrupted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Completed => "completed",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<RunOutcome> {
        [RunOutcome::Completed, RunOutcome::Failed, RunOutcome::Interrupted]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub pipeline: String,
    pub operator: String,
    pub inputs: Vec<(String, String)>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `None` while running, or when the process died before finishing.
    pub outcome: Option<RunOutcome>,
    pub counts: Option<RunCounts>,
    /// Rejects recorded for the run.
    pub rejects: u64,
}

/// A rejected row, as the rejects file has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRecord {
    pub file: String,
    pub sheet: Option<String>,
    pub line: u64,
    pub field: String,
    pub rule: String,
    pub message: String,
}

/// A revocation: when it was recorded, when it takes effect, why, by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// When the registry recorded it (processing time).
    pub at: DateTime<Utc>,
    /// When it takes effect: the paper licence's 注销日期 when the export states it, else the
    /// day it was recorded.
    pub effective: NaiveDate,
    pub reason: String,
    pub by_operator: String,
}

/// What the registry says about an identifier (`elicence verify` adds it as `registry_status`).
/// [`VersionRow::status`] gives the lifecycle alone; [`Registry::status_on`] adds the rules of
/// time and checks (`expired`, `disputed`) that every front end reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum RegistryStatus {
    /// The current version, not revoked, within its validity, not disputed.
    Current,
    /// An older version; `by` is the identifier of the version that replaced it.
    Superseded { by: String },
    Revoked {
        at: DateTime<Utc>,
        /// The revocation's effective date (the paper's 注销日期, else the day recorded).
        effective: NaiveDate,
        reason: String,
        by_operator: String,
    },
    /// 已过期: the current version, but its 有效期至 (`on`, the last valid day) has passed.
    Expired { on: NaiveDate },
    /// 存疑: the current version, while the issuer's `inconsistent` answer to check request
    /// `check_request` (核查) stands: it is the latest answered check of this version.
    Disputed { check_request: i64, since: DateTime<Utc> },
    /// Not an identifier of this registry.
    Unknown,
}

fn hex16<S: serde::Serializer>(bytes: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// One stored version of a licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRow {
    pub key: NaturalKey,
    pub version: u16,
    pub identifier: String,
    #[serde(serialize_with = "hex16")]
    pub content_hash: [u8; 16],
    /// The status the export stated for this version's row.
    pub row_status: LicenceStatus,
    pub holder_code: String,
    pub holder_name: String,
    pub issue_date: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub fields_json: String,
    pub source: String,
    pub run: Option<RunId>,
    pub created_at: DateTime<Utc>,
    pub superseded_by: Option<String>,
    pub superseded_at: Option<DateTime<Utc>>,
    pub revoked: Option<Revocation>,
    pub files: Vec<StoredFile>,
}

impl VersionRow {
    /// Current, superseded or revoked.
    pub fn status(&self) -> RegistryStatus {
        match (&self.revoked, &self.superseded_by) {
            (Some(r), _) => RegistryStatus::Revoked {
                at: r.at,
                effective: r.effective,
                reason: r.reason.clone(),
                by_operator: r.by_operator.clone(),
            },
            (None, Some(by)) => RegistryStatus::Superseded { by: by.clone() },
            (None, None) => RegistryStatus::Current,
        }
    }

    /// The status on `today` with the rules of time and checks: revoked and superseded as
    /// [`VersionRow::status`]; else expired when 有效期至 is before `today` (it is the last valid
    /// day; open-ended validity never expires); else disputed while `standing_dispute` (the
    /// latest answered check request of this version, when it was answered `inconsistent`);
    /// else current. Pure.
    pub fn status_on(
        &self,
        today: NaiveDate,
        standing_dispute: Option<&CheckRequest>,
    ) -> RegistryStatus {
        match self.status() {
            RegistryStatus::Current => {}
            other => return other,
        }
        if let Some(end) = self.valid_to
            && end < today
        {
            return RegistryStatus::Expired { on: end };
        }
        match standing_dispute {
            Some(c) if c.result.as_deref() == Some(CHECK_INCONSISTENT) => {
                RegistryStatus::Disputed {
                    check_request: c.id,
                    since: c.answered_at.unwrap_or(c.opened_at),
                }
            }
            _ => RegistryStatus::Current,
        }
    }

    /// The stored file of `kind`, if any.
    pub fn file(&self, kind: FileKind) -> Option<&StoredFile> {
        self.files.iter().find(|f| f.kind == kind)
    }
}

/// Row counts of the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCounts {
    /// Natural keys.
    pub licences: u64,
    pub versions: u64,
    /// Current versions not revoked (live licences).
    pub current: u64,
    /// Revoked versions.
    pub revoked: u64,
    /// Distinct stored files referenced.
    pub files: u64,
    pub runs: u64,
    pub rejects: u64,
    pub audit_entries: u64,
}

/// A problem `store check` found. `path` is the file's path, or the object's `s3://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreProblem {
    /// A referenced file is absent.
    Missing { sha256: String, file_kind: FileKind, path: PathBuf },
    /// A referenced file's content does not hash to its name.
    Altered { sha256: String, file_kind: FileKind, path: PathBuf, actual: String },
    /// A referenced file's size is not the one the registry recorded.
    #[serde(rename = "wrong_size")]
    WrongSize { sha256: String, file_kind: FileKind, path: PathBuf, expected: u64, actual: u64 },
    /// A file nothing references (left by an interrupted run, or a stray). Not fatal.
    Orphan { path: PathBuf },
}

impl StoreProblem {
    /// Missing and altered files are fatal; orphans are not.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, StoreProblem::Orphan { .. })
    }
}

/// A registry's production mark: when it was set (RFC 3339) and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductionMark {
    pub set_at: String,
    pub operator: String,
}

/// The effect of decisions made but not committed (see [`Registry::decide_uncommitted`]).
#[derive(Debug, Default)]
pub struct DecisionOverlay(lifecycle::Overlay);

/// The registry: one database connection (SQLite or PostgreSQL), the data folder and its store.
/// Open one per thread or process; several may work on one registry at once (writers are
/// serialised: SQLite's write lock, PostgreSQL's advisory lock).
pub struct Registry {
    db: Db,
    data_dir: PathBuf,
    store: Store,
    /// Commit each chunk's files packed into one segment (`segments.rs`) instead of one
    /// object each.
    pack_segments: bool,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

/// Fails unless `run` exists and has not finished.
pub(crate) fn require_open_run(db: &Db, run: RunId) -> Result<(), RegistryError> {
    let finished: Option<Option<String>> =
        db.query_opt("read run", "SELECT outcome FROM runs WHERE id = ?1", &vals![run.0], |r| {
            r.get(0)
        })?;
    match finished {
        None => Err(RegistryError::UnknownRun { run }),
        Some(Some(_)) => Err(RegistryError::RunFinished { run }),
        Some(None) => Ok(()),
    }
}

impl Registry {
    /// Opens the registry in `data_dir`, creating the folder, `registry.sqlite` and `store/` on
    /// first use, and applies pending schema migrations.
    ///
    /// Fails with [`RegistryError::Corrupt`] for a file that is not a SQLite database,
    /// [`RegistryError::NotARegistry`] for someone else's database, [`RegistryError::Locked`]
    /// when another process holds the lock past the busy timeout,
    /// [`RegistryError::SchemaTooNew`], or [`RegistryError::Io`] naming the folder.
    pub fn open(data_dir: &Path) -> Result<Registry, RegistryError> {
        Registry::open_at(
            data_dir,
            &RegistryLocation::Sqlite(data_dir.join(DB_FILE)),
            &StoreLocation::Folder(data_dir.join(STORE_DIR)),
        )
    }

    /// Opens the registry that `--registry` / `ELICENCE_REGISTRY` names (`postgres://…`,
    /// `sqlite:PATH`), or the SQLite file in `data_dir` when `spec` is `None`, with the store
    /// that `--store` / `ELICENCE_STORE` names (`file:PATH`, `s3://bucket/prefix`), or
    /// `data_dir/store` when `store` is `None`. With PostgreSQL, every machine must name the
    /// same store: a bucket, or a folder they share.
    pub fn open_with(
        data_dir: &Path,
        spec: Option<&str>,
        store: Option<&str>,
    ) -> Result<Registry, RegistryError> {
        Registry::open_at(
            data_dir,
            &RegistryLocation::parse(spec, data_dir)?,
            &StoreLocation::parse(store, data_dir)?,
        )
    }

    /// Opens the registry database at `location` with the store at `store`, creating what is
    /// missing (the data folder, a store folder; a bucket must exist), and applies pending
    /// schema migrations.
    ///
    /// Fails as [`Registry::open`] does, with [`RegistryError::Postgres`] (naming the URL
    /// without password) when the server cannot be reached, or with a store error for an
    /// object-store configuration that does not work.
    pub fn open_at(
        data_dir: &Path,
        location: &RegistryLocation,
        store: &StoreLocation,
    ) -> Result<Registry, RegistryError> {
        std::fs::create_dir_all(data_dir)
            .map_err(RegistryError::io(data_dir, "create data folder"))?;
        if let StoreLocation::Folder(store_dir) = store {
            std::fs::create_dir_all(store_dir)
                .map_err(RegistryError::io(store_dir, "create store folder"))?;
        }
        let store = Store::open(store)?;
        let mut db = location.connect()?;
        schema::migrate(&db)?;
        secrets::attach(&mut db, data_dir, secrets::KeyNeed::CreateAndSeal)?;
        Ok(Registry { db, data_dir: data_dir.to_path_buf(), store, pack_segments: false })
    }

    /// Opens the registry for a dry run, creating and migrating nothing: the database as it is
    /// (it must be at this build's schema version), or, when there is none yet (no SQLite
    /// file, an empty PostgreSQL database), an empty registry in memory, so that every licence
    /// is new. The store folder is not created.
    ///
    /// Fails as [`Registry::open_at`] does, or with [`RegistryError::NeedsMigration`] for a
    /// registry of an older schema (opening it normally would migrate it).
    pub fn open_for_dry_run(
        data_dir: &Path,
        spec: Option<&str>,
        store: Option<&str>,
    ) -> Result<Registry, RegistryError> {
        let location = RegistryLocation::parse(spec, data_dir)?;
        let store = Store::open(&StoreLocation::parse(store, data_dir)?)?;
        let in_memory = |path: &Path| -> Result<Registry, RegistryError> {
            let conn = rusqlite::Connection::open_in_memory()
                .map_err(db::sqlite_err(path, "open an empty registry in memory"))?;
            let mut db = Db::sqlite(conn, path);
            schema::migrate(&db)?;
            secrets::attach(&mut db, data_dir, secrets::KeyNeed::Ephemeral)?;
            Ok(Registry {
                db,
                data_dir: data_dir.to_path_buf(),
                store: store.clone(),
                pack_segments: false,
            })
        };
        if let RegistryLocation::Sqlite(path) = &location
            && !path.exists()
        {
            return in_memory(path);
        }
        let mut db = location.connect()?;
        if db.table_names()?.is_empty() {
            return in_memory(db.location());
        }
        let found = schema::current_version(&db)?;
        if found > SCHEMA_VERSION {
            return Err(RegistryError::SchemaTooNew {
                path: db.location().to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(RegistryError::NeedsMigration {
                path: db.location().to_path_buf(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
        secrets::attach(&mut db, data_dir, secrets::KeyNeed::Ephemeral)?;
        if secrets::may_hold_plaintext(&db)? {
            // Sealing them is a write; the first normal open does it.
            return Err(RegistryError::NeedsMigration {
                path: db.location().to_path_buf(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(Registry { db, data_dir: data_dir.to_path_buf(), store, pack_segments: false })
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The database file, or the PostgreSQL URL without password (what errors name).
    pub fn db_path(&self) -> &Path {
        self.db.location()
    }

    /// True when the registry lives in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.db.dialect() == Dialect::Postgres
    }

    /// The content-addressed store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether [`Registry::commit_chunk`] packs each chunk's files into one segment
    /// (`run --segments`) instead of storing one object per file. Reading needs no setting:
    /// the registry records where each file is.
    pub fn set_pack_segments(&mut self, on: bool) {
        self.pack_segments = on;
    }

    /// How long to wait for another writer's lock before [`RegistryError::Locked`] (default 5 s).
    /// SQLite only; a PostgreSQL writer waits for the advisory lock as long as it takes.
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), RegistryError> {
        match self.db.sqlite_conn() {
            Some(conn) => conn
                .busy_timeout(timeout)
                .map_err(db::sqlite_err(self.db.location(), "set busy timeout")),
            None => Ok(()),
        }
    }

    /// The applied schema version.
    pub fn schema_version(&self) -> Result<u32, RegistryError> {
        schema::current_version(&self.db)
    }

    // ---- runs ----

    /// Records a run's start (audited `run_started`) and returns its id.
    pub fn start_run(&mut self, run: &RunStart) -> Result<RunId, RegistryError> {
        self.db.write("start run", |tx| {
            let id = RunId(tx.insert_id(
                "insert run",
                "INSERT INTO runs (pipeline, operator, started_at) VALUES (?1, ?2, ?3)",
                &vals![&run.pipeline, &run.operator, time_text(run.at)],
            )?);
            for (position, (file, sha256)) in run.inputs.iter().enumerate() {
                tx.execute(
                    "insert run input",
                    "INSERT INTO run_inputs (run_id, position, file, sha256) VALUES (?1, ?2, ?3, ?4)",
                    &vals![id.0, position as u64, file, sha256],
                )?;
            }
            let inputs: Vec<_> = run
                .inputs
                .iter()
                .map(|(file, sha256)| json!({"file": file, "sha256": sha256}))
                .collect();
            audit::append(
                tx,
                &AuditEntry {
                    action: action::RUN_STARTED.to_owned(),
                    operator: run.operator.clone(),
                    at: run.at,
                    subject: id.to_string(),
                    reason: None,
                    details: json!({ "pipeline": run.pipeline, "inputs": inputs }),
                },
            )?;
            Ok(id)
        })
    }

    /// Records a run's end with its counts and outcome (audited `run_finished`).
    ///
    /// Fails with [`RegistryError::UnknownRun`] or [`RegistryError::RunFinished`].
    pub fn finish_run(
        &mut self,
        id: RunId,
        counts: &RunCounts,
        outcome: RunOutcome,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<(), RegistryError> {
        self.db.write("finish run", |tx| {
            require_open_run(tx, id)?;
            tx.execute(
                "finish run",
                "UPDATE runs SET finished_at = ?2, outcome = ?3, count_read = ?4, count_issued = ?5,
                     count_changed = ?6, count_revoked = ?7, count_unchanged = ?8,
                     count_duplicates = ?9, count_rejected = ?10, count_other_shard = ?11,
                     count_pending = ?12
                 WHERE id = ?1",
                &vals![
                    id.0,
                    time_text(at),
                    outcome.as_str(),
                    counts.read,
                    counts.issued,
                    counts.changed,
                    counts.revoked,
                    counts.unchanged,
                    counts.duplicates,
                    counts.rejected,
                    counts.other_shard,
                    counts.pending,
                ],
            )?;
            audit::append(
                tx,
                &AuditEntry {
                    action: action::RUN_FINISHED.to_owned(),
                    operator: operator.to_owned(),
                    at,
                    subject: id.to_string(),
                    reason: None,
                    details: json!({ "outcome": outcome.as_str(), "counts": counts }),
                },
            )?;
            Ok(())
        })
    }

    /// Records rejected rows of a run (one transaction).
    pub fn record_rejects(
        &mut self,
        run: RunId,
        rejects: &[RejectRecord],
    ) -> Result<(), RegistryError> {
        self.db.write("record rejects", |tx| {
            require_open_run(tx, run)?;
            let keys = tx.field_keys()?;
            for r in rejects {
                // The message quotes the cell it is about (a malformed citizen ID, say): sealed.
                let message = keys.seal(
                    &secrets::reject_aad(run.0, &r.file, r.line as i64, &r.field),
                    r.message.as_bytes(),
                )?;
                tx.execute(
                    "insert reject",
                    "INSERT INTO rejects (run_id, file, sheet, line, field, rule, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &vals![run.0, &r.file, &r.sheet, r.line, &r.field, &r.rule, message],
                )?;
            }
            Ok(())
        })
    }

    /// A run as recorded, or `None`.
    pub fn run(&self, id: RunId) -> Result<Option<RunRecord>, RegistryError> {
        let Some(mut record) = self.db.query_opt(
            "read run",
            "SELECT pipeline, operator, started_at, finished_at, outcome, count_read,
                    count_issued, count_changed, count_revoked, count_unchanged,
                    count_duplicates, count_rejected,
                    (SELECT COUNT(*) FROM rejects WHERE run_id = runs.id), count_other_shard,
                    count_pending
             FROM runs WHERE id = ?1",
            &vals![id.0],
            |r| {
                let outcome: Option<String> = r.get(4)?;
                let counts = match r.get::<Option<i64>>(5)? {
                    None => None,
                    Some(_) => Some(RunCounts {
                        read: get_u64(r, 5)?,
                        issued: get_u64(r, 6)?,
                        changed: get_u64(r, 7)?,
                        revoked: get_u64(r, 8)?,
                        unchanged: get_u64(r, 9)?,
                        duplicates: get_u64(r, 10)?,
                        rejected: get_u64(r, 11)?,
                        other_shard: match r.get::<Option<i64>>(13)? {
                            None => 0,
                            Some(_) => get_u64(r, 13)?,
                        },
                        pending: match r.get::<Option<i64>>(14)? {
                            None => 0,
                            Some(_) => get_u64(r, 14)?,
                        },
                    }),
                };
                Ok(RunRecord {
                    id,
                    pipeline: r.get(0)?,
                    operator: r.get(1)?,
                    inputs: Vec::new(),
                    started_at: get_time(r, 2)?,
                    finished_at: get_opt_time(r, 3)?,
                    outcome: outcome.as_deref().and_then(RunOutcome::parse),
                    counts,
                    rejects: get_u64(r, 12)?,
                })
            },
        )?
        else {
            return Ok(None);
        };
        record.inputs = self.db.query(
            "read run inputs",
            "SELECT file, sha256 FROM run_inputs WHERE run_id = ?1 ORDER BY position",
            &vals![id.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Some(record))
    }

    /// Runs that started and never finished (still going, or killed), oldest first.
    pub fn unfinished_runs(&self) -> Result<Vec<RunId>, RegistryError> {
        self.db.query(
            "read runs",
            "SELECT id FROM runs WHERE outcome IS NULL ORDER BY id",
            &[],
            |r| Ok(RunId(r.get(0)?)),
        )
    }

    // ---- lifecycle ----

    /// What one row means for the registry as it stands (see [`lifecycle`] docs). For several
    /// rows of one chunk use [`Registry::decide_many`], which sees earlier rows' decisions.
    pub fn decide(&self, input: &DecisionInput) -> Result<Decision, RegistryError> {
        let mut decisions = self.decide_many(std::slice::from_ref(input))?;
        decisions.pop().ok_or_else(|| RegistryError::Inconsistent {
            path: self.db.location().to_path_buf(),
            what: "no decision for one input".to_owned(),
        })
    }

    /// Decides a chunk of rows in order; each row sees the effect of the rows before it (two rows
    /// of one natural key get versions 1 and 2). Nothing is written.
    pub fn decide_many(&self, inputs: &[DecisionInput]) -> Result<Vec<Decision>, RegistryError> {
        lifecycle::decide_many(&self.db, &self.keyed_inputs(inputs)?)
    }

    /// Inputs as the registry compares them (keyed content hash, holder blind index).
    pub(crate) fn keyed_inputs(
        &self,
        inputs: &[DecisionInput],
    ) -> Result<Vec<DecisionInput>, RegistryError> {
        let keys = self.db.field_keys()?;
        Ok(inputs.iter().map(|i| secrets::keyed_input(keys, i)).collect())
    }

    /// Decides a chunk of rows as [`Registry::decide_many`] does, also seeing every decision made
    /// earlier with the same `overlay` (none of them committed): what a dry run needs to decide
    /// a whole input without loading it. The overlay grows with the licences it has seen.
    pub fn decide_uncommitted(
        &self,
        overlay: &mut DecisionOverlay,
        inputs: &[DecisionInput],
    ) -> Result<Vec<Decision>, RegistryError> {
        lifecycle::decide_many_with(&self.db, &mut overlay.0, &self.keyed_inputs(inputs)?)
    }

    /// Commits a decided chunk: stores the files of new versions, then in one transaction checks
    /// every decision again, records versions, supersessions, revocations, file hashes and audit
    /// entries. Returns one result per item, in order. Safe with several processes committing
    /// into one registry at once (they commit one after another).
    ///
    /// Fails with [`RegistryError::StaleDecision`] (nothing recorded; decide again) when the
    /// registry changed since [`Registry::decide_many`], [`RegistryError::UnknownRun`] /
    /// [`RegistryError::RunFinished`], a store error, or a database error.
    pub fn commit_chunk(
        &mut self,
        run: RunId,
        items: Vec<LoadItem>,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<LoadResult>, RegistryError> {
        let keys = self.db.field_keys()?;
        let items = items
            .into_iter()
            .map(|item| secrets::protect_item(keys, item))
            .collect::<Result<Vec<_>, _>>()?;
        lifecycle::commit_chunk(&self.db, &self.store, self.pack_segments, run, items, operator, at)
    }

    /// Revokes the current version `identifier` with a reason (audited; files kept).
    ///
    /// Fails with [`RegistryError::UnknownIdentifier`], [`RegistryError::NotCurrent`] (naming
    /// the version to revoke instead) or [`RegistryError::AlreadyRevoked`].
    pub fn revoke(
        &mut self,
        identifier: &str,
        reason: &str,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<(), RegistryError> {
        lifecycle::revoke(&self.db, identifier, reason, operator, at)
    }

    // ---- queries ----

    /// The status of `identifier` on `today`: current, superseded (by which identifier), revoked
    /// (when, why, by whom), expired, disputed ([`VersionRow::status_on`]) or unknown.
    pub fn status_of(
        &self,
        identifier: &str,
        today: NaiveDate,
    ) -> Result<RegistryStatus, RegistryError> {
        match self.licence_by_identifier(identifier)? {
            Some(v) => self.status_on(&v, today),
            None => Ok(RegistryStatus::Unknown),
        }
    }

    /// The status of version `v` on `today` with the rules of time and checks
    /// ([`VersionRow::status_on`]); reads the version's latest answered check request.
    pub fn status_on(
        &self,
        v: &VersionRow,
        today: NaiveDate,
    ) -> Result<RegistryStatus, RegistryError> {
        let dispute = match v.status() {
            RegistryStatus::Current => self.latest_check_answer(&v.identifier)?,
            _ => None,
        };
        Ok(v.status_on(today, dispute.as_ref()))
    }

    /// Every version of a licence, oldest first (empty for an unknown key).
    pub fn versions(&self, key: &NaturalKey) -> Result<Vec<VersionRow>, RegistryError> {
        self.query_versions(
            "l.type_code = ?1 AND l.issuer_code = ?2 AND l.printed_no = ?3",
            &vals![&key.type_code, &key.issuer_code, &key.printed_no],
        )
    }

    /// The version with this identifier, or `None`.
    pub fn licence_by_identifier(
        &self,
        identifier: &str,
    ) -> Result<Option<VersionRow>, RegistryError> {
        Ok(self.query_versions("v.identifier = ?1", &vals![identifier])?.pop())
    }

    /// The version whose stored PDF, XML or archive copy has this SHA-256 (lower-case hex), if
    /// any: how `verify` finds the registry status of a presented file.
    pub fn licence_by_file_hash(&self, sha256: &str) -> Result<Option<VersionRow>, RegistryError> {
        Ok(self
            .query_versions(
                "v.id IN (SELECT version_id FROM version_files WHERE sha256 = ?1)",
                &vals![sha256],
            )?
            .pop())
    }

    fn query_versions(&self, filter: &str, args: &[Val]) -> Result<Vec<VersionRow>, RegistryError> {
        let sql = format!(
            "SELECT l.type_code, l.issuer_code, l.printed_no, v.version, v.identifier,
                    v.content_hash, v.row_status, v.holder_code, v.holder_name, v.issue_date,
                    v.valid_to, v.fields_json, v.source, v.run_id, v.created_at, v.superseded_by,
                    v.superseded_at, v.revoked_at, v.revoked_reason, v.revoked_by, v.id,
                    v.revoked_on
             FROM versions v JOIN licences l ON l.id = v.licence_id
             WHERE {filter} ORDER BY v.version"
        );
        let rows = self.db.query("read versions", &sql, args, |r| {
            let status: String = r.get(6)?;
            let row_status = match status.as_str() {
                "valid" => LicenceStatus::Valid,
                "changed" => LicenceStatus::Changed,
                "revoked" => LicenceStatus::Revoked,
                _ => return Err(ColumnError::new(6, format!("unknown row status {status:?}"))),
            };
            let revoked = match get_opt_time(r, 17)? {
                None => None,
                Some(at) => Some(Revocation {
                    at,
                    // Revocations recorded before migration 6 take effect when recorded.
                    effective: get_opt_date(r, 21)?.unwrap_or(at.date_naive()),
                    reason: r.get::<Option<String>>(18)?.unwrap_or_default(),
                    by_operator: r.get::<Option<String>>(19)?.unwrap_or_default(),
                }),
            };
            Ok((
                r.get::<i64>(20)?,
                VersionRow {
                    key: NaturalKey {
                        type_code: r.get(0)?,
                        issuer_code: r.get(1)?,
                        printed_no: r.get(2)?,
                    },
                    version: get_u16(r, 3)?,
                    identifier: r.get(4)?,
                    content_hash: get_hash16(r, 5)?,
                    row_status,
                    holder_code: r.get(7)?,
                    holder_name: r.get(8)?,
                    issue_date: get_date(r, 9)?,
                    valid_to: get_opt_date(r, 10)?,
                    fields_json: r.get(11)?,
                    source: r.get(12)?,
                    run: r.get::<Option<i64>>(13)?.map(RunId),
                    created_at: get_time(r, 14)?,
                    superseded_by: r.get(15)?,
                    superseded_at: get_opt_time(r, 16)?,
                    revoked,
                    files: Vec::new(),
                },
            ))
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (version_id, mut version) in rows {
            // Every read of a version's holder and fields comes through here.
            if let Some(open) =
                secrets::open_version(&self.db, &version.identifier, &version.fields_json)?
            {
                version.content_hash = secrets::hash16(&open.content_hash).map_err(|reason| {
                    RegistryError::Sealed {
                        location: self.db.location().to_path_buf(),
                        row: format!("version {}", version.identifier),
                        reason,
                    }
                })?;
                version.holder_code = open.holder_code;
                version.holder_name = open.holder_name;
                version.fields_json = open.fields_json;
            }
            version.files = self.version_files(version_id)?;
            out.push(version);
        }
        Ok(out)
    }

    fn version_files(&self, version_id: i64) -> Result<Vec<StoredFile>, RegistryError> {
        self.db.query(
            "read version files",
            "SELECT vf.kind, vf.sha256, f.size FROM version_files vf
             JOIN files f ON f.sha256 = vf.sha256 AND f.kind = vf.kind
             WHERE vf.version_id = ?1 ORDER BY vf.kind",
            &vals![version_id],
            |r| {
                let kind: String = r.get(0)?;
                let kind = FileKind::from_role(&kind)
                    .ok_or_else(|| ColumnError::new(0, format!("unknown file kind {kind:?}")))?;
                Ok(StoredFile { kind, sha256: r.get(1)?, size: get_u64(r, 2)? })
            },
        )
    }

    /// Row counts.
    pub fn counts(&self) -> Result<RegistryCounts, RegistryError> {
        counts_of(&self.db)
    }

    // ---- store ----

    /// Checks every file the registry references against one listing of the store (missing,
    /// or of another size), and lists files nothing references (orphans, non-fatal; see
    /// [`StoreProblem::is_fatal`]). A folder store's files are also read back and hashed (cheap
    /// on a local disk); a bucket's only with [`Registry::store_check_full`]. An empty list
    /// means the store is clean.
    pub fn store_check(&self) -> Result<Vec<StoreProblem>, RegistryError> {
        store_check(&self.db, &self.store, self.store.folder().is_some())
    }

    /// [`Registry::store_check`] that also reads back and hashes every referenced object of
    /// a bucket (`store check --full`; a folder store is always re-hashed).
    pub fn store_check_full(&self) -> Result<Vec<StoreProblem>, RegistryError> {
        store_check(&self.db, &self.store, true)
    }

    // ---- audit ----

    // ---- production mark ----

    /// True when the registry is marked production (`elicence init --production`).
    pub fn is_production(&self) -> Result<bool, RegistryError> {
        self.production_mark().map(|m| m.is_some())
    }

    /// When and by whom the registry was marked production, if it was.
    pub fn production_mark(&self) -> Result<Option<ProductionMark>, RegistryError> {
        self.db.query_opt(
            "read production mark",
            "SELECT set_at, operator FROM registry_marks WHERE name = 'production'",
            &[],
            |r| Ok(ProductionMark { set_at: r.get(0)?, operator: r.get(1)? }),
        )
    }

    /// Marks the registry production, with an audit entry (`marked_production`), in one
    /// transaction; from then on development keys are refused. Returns the mark, and whether
    /// this call set it (false: it was set before, and nothing was written).
    pub fn mark_production(
        &mut self,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<(ProductionMark, bool), RegistryError> {
        self.db.write("mark the registry production", |tx| {
            let existing = tx.query_opt(
                "read production mark",
                "SELECT set_at, operator FROM registry_marks WHERE name = 'production'",
                &[],
                |r| Ok(ProductionMark { set_at: r.get(0)?, operator: r.get(1)? }),
            )?;
            if let Some(mark) = existing {
                return Ok((mark, false));
            }
            let set_at = encode::time_text(at);
            tx.execute(
                "record production mark",
                "INSERT INTO registry_marks (name, set_at, operator) VALUES ('production', ?1, ?2)",
                &vals![&set_at, operator],
            )?;
            audit::append(
                tx,
                &AuditEntry {
                    action: audit::action::MARKED_PRODUCTION.to_owned(),
                    operator: operator.to_owned(),
                    at,
                    subject: "registry".to_owned(),
                    reason: None,
                    details: json!({ "mark": "production" }),
                },
            )?;
            Ok((ProductionMark { set_at, operator: operator.to_owned() }, true))
        })
    }

    /// Whether the registry `spec` / `data_dir` names is production, opening it without
    /// creating anything: false when it does not exist yet (for commands that sign without
    /// loading, such as `render`).
    pub fn is_production_at(data_dir: &Path, spec: Option<&str>) -> Result<bool, RegistryError> {
        let location = RegistryLocation::parse(spec, data_dir)?;
        if let RegistryLocation::Sqlite(path) = &location
            && !path.exists()
        {
            return Ok(false);
        }
        let db = location.connect()?;
        if !db.table_names()?.iter().any(|t| t == "registry_marks") {
            return Ok(false);
        }
        let marked: bool = db.query_one(
            "read production mark",
            "SELECT EXISTS (SELECT 1 FROM registry_marks WHERE name = 'production')",
            &[],
            |r| r.get(0),
        )?;
        Ok(marked)
    }

    /// Appends an entry to the audit trail in its own transaction (for actions outside the
    /// lifecycle: verify, query, denial, copy, check request…). On a connection attached to an
    /// audit queue ([`Registry::attach_audit_queue`]) the entry is handed to the queue's group
    /// commit instead and is durable only once its receipt ([`Registry::take_audit_receipts`])
    /// resolved.
    pub fn audit_append(&mut self, entry: &AuditEntry) -> Result<(), RegistryError> {
        if let Some(queue) = self.db.audit_queue() {
            let receipt = queue.submit(entry.clone());
            self.db.keep_audit_receipt(receipt);
            return Ok(());
        }
        self.db.write("append audit entry", |tx| audit::append(tx, entry))?;
        Ok(())
    }

    /// From now on, hands this connection's audit entries ([`Registry::audit_append`]) to
    /// `queue`, which commits them in groups (see [`AuditQueue`]). The caller must wait for
    /// every receipt ([`Registry::take_audit_receipts`]) before it reports what the entries
    /// record; a write transaction on this connection waits for them first.
    pub fn attach_audit_queue(&mut self, queue: std::sync::Arc<AuditQueue>) {
        self.db.set_audit_queue(queue);
    }

    /// The receipts of the audit entries handed to the queue since the last call, in order.
    pub fn take_audit_receipts(&self) -> Vec<AuditReceipt> {
        self.db.take_audit_receipts()
    }

    /// Recomputes the audit chain. Fails with [`RegistryError::AuditBroken`] naming the first
    /// bad entry (edited, deleted, inserted or reordered).
    /// Brings the transparency log up to the audit trail (a registry made before the log gets
    /// its history as leaves) and returns the head a checkpoint would sign now.
    pub fn log_head(&self) -> Result<LogHead, RegistryError> {
        self.db.write("transparency log head", |tx| {
            log::catch_up(tx)?;
            log::head(tx)
        })
    }

    /// Stores a signed checkpoint made from [`Registry::log_head`]; `false` when one of that
    /// size is stored already (the earlier one stays).
    pub fn log_record_checkpoint(&self, checkpoint: &Checkpoint) -> Result<bool, RegistryError> {
        self.db.write("store log checkpoint", |tx| log::record_checkpoint(tx, checkpoint))
    }

    /// Every stored checkpoint, smallest tree first.
    pub fn log_checkpoints(&self) -> Result<Vec<Checkpoint>, RegistryError> {
        self.db.snapshot("read log checkpoints", log::checkpoints)
    }

    /// The leaves of `identifier` and, when a checkpoint exists, the inclusion proof of each
    /// leaf it covers.
    pub fn log_proofs(
        &self,
        identifier: &str,
    ) -> Result<(Vec<LogLeaf>, Option<Vec<InclusionProof>>), RegistryError> {
        self.db.snapshot("transparency log proof", |db| log::proofs(db, identifier))
    }

    /// A consistency proof from a tree of `old_size` leaves to one of `new_size`; `None` unless
    /// `old_size <= new_size <=` the log's size.
    pub fn log_consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Option<Vec<merkle::Hash>>, RegistryError> {
        self.db
            .snapshot("transparency log consistency", |db| log::consistency(db, old_size, new_size))
    }

    /// Recomputes the log and checks it against the registry and each `published` checkpoint.
    pub fn log_verify(&self, published: &[Checkpoint]) -> Result<LogReport, RegistryError> {
        self.db.snapshot("verify transparency log", |db| log::verify(db, published))
    }

    pub fn audit_verify(&self) -> Result<AuditReport, RegistryError> {
        audit::verify(&self.db)
    }

    /// Up to `limit` audit entries after sequence number `after`, in order.
    pub fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, RegistryError> {
        audit::entries(&self.db, after, limit)
    }
}

/// Row counts over any connection (the live registry, or a backup snapshot).
pub(crate) fn counts_of(db: &Db) -> Result<RegistryCounts, RegistryError> {
    db.query_one(
        "count rows",
        "SELECT (SELECT COUNT(*) FROM licences),
                (SELECT COUNT(*) FROM versions),
                (SELECT COUNT(*) FROM versions WHERE superseded_by IS NULL AND revoked_at IS NULL),
                (SELECT COUNT(*) FROM versions WHERE revoked_at IS NOT NULL),
                (SELECT COUNT(*) FROM files),
                (SELECT COUNT(*) FROM runs),
                (SELECT COUNT(*) FROM rejects),
                (SELECT COUNT(*) FROM audit_log)",
        &[],
        |r| {
            Ok(RegistryCounts {
                licences: get_u64(r, 0)?,
                versions: get_u64(r, 1)?,
                current: get_u64(r, 2)?,
                revoked: get_u64(r, 3)?,
                files: get_u64(r, 4)?,
                runs: get_u64(r, 5)?,
                rejects: get_u64(r, 6)?,
                audit_entries: get_u64(r, 7)?,
            })
        },
    )
}

/// The store objects the registry references: every file that is an object of its own, and
/// every segment (not the files packed in one), as `(sha256, kind, size)` rows. Callers add
/// their own `WHERE` and `ORDER BY` around it.
const OBJECTS: &str = "SELECT sha256, kind, size FROM (
       SELECT f.sha256, f.kind, f.size FROM files f
        WHERE NOT EXISTS (SELECT 1 FROM segment_files m
                          WHERE m.sha256 = f.sha256 AND m.kind = f.kind)
       UNION ALL
       SELECT sha256, 'segment', size FROM segments
     ) objects";

/// Every object the registry references (files of their own and segments), by hash and kind.
pub(crate) fn files_of(db: &Db) -> Result<Vec<StoredFile>, RegistryError> {
    let rows: Vec<(String, String, u64)> =
        db.query("read files", &format!("{OBJECTS} ORDER BY sha256, kind"), &[], |r| {
            Ok((r.get(0)?, r.get(1)?, get_u64(r, 2)?))
        })?;
    rows.into_iter()
        .map(|(sha256, kind, size)| match FileKind::from_role(&kind) {
            Some(kind) => Ok(StoredFile { kind, sha256, size }),
            None => Err(RegistryError::Inconsistent {
                path: db.location().to_path_buf(),
                what: format!("file {sha256} has unknown kind {kind:?}"),
            }),
        })
        .collect()
}

/// Rows of `files` read per page by [`file_pages`].
const FILE_PAGE: i64 = 10_000;

/// Every object the registry at `db` references (as [`files_of`]), sorted by hash and kind,
/// read a page of [`FILE_PAGE`] rows at a time (keyset pagination on the primary keys), so
/// memory holds one page whatever the registry's size.
pub(crate) fn file_pages(db: &Db) -> impl Iterator<Item = Result<StoredFile, RegistryError>> + '_ {
    let mut page = std::collections::VecDeque::new();
    let mut after: Option<(String, String)> = Some((String::new(), String::new()));
    std::iter::from_fn(move || {
        if page.is_empty() {
            let (sha256, kind) = after.take()?;
            let rows: Result<Vec<(String, String, u64)>, RegistryError> = db.query(
                "read files",
                &format!(
                    "{OBJECTS} WHERE sha256 > ?1 OR (sha256 = ?1 AND kind > ?2)
                     ORDER BY sha256, kind LIMIT ?3"
                ),
                &vals![sha256, kind, FILE_PAGE],
                |r| Ok((r.get(0)?, r.get(1)?, get_u64(r, 2)?)),
            );
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => return Some(Err(e)),
            };
            if rows.len() as i64 == FILE_PAGE {
                after = rows.last().map(|(sha256, kind, _)| (sha256.clone(), kind.clone()));
            }
            page.extend(rows);
        }
        let (sha256, kind, size) = page.pop_front()?;
        Some(match FileKind::from_role(&kind) {
            Some(kind) => Ok(StoredFile { kind, sha256, size }),
            None => Err(RegistryError::Inconsistent {
                path: db.location().to_path_buf(),
                what: format!("file {sha256} has unknown kind {kind:?}"),
            }),
        })
    })
}

/// Referenced files whose objects are read back per request of [`store_check`] (a bucket
/// GETs them [`PUT_CONCURRENCY`](store) at a time, hashing each body as it streams in).
const CHECK_BATCH: usize = 64;

/// Store check over any connection (the live registry, or a backup being restored): the
/// registry's files (by pages) and the store's listing (streamed), both sorted by key,
/// compared side by side ([`store::join_sorted`]): missing, wrong size, and with `rehash`
/// every referenced file read back and hashed, several at once. A file the listing lacks is
/// asked for directly before it is called missing (a run may have stored and committed it
/// after the listing passed its key). Memory holds a page of each side, a batch of files
/// being hashed and the problems found, not the listing.
pub(crate) fn store_check(
    db: &Db,
    store: &Store,
    rehash: bool,
) -> Result<Vec<StoreProblem>, RegistryError> {
    let mut problems = Vec::new();
    let mut orphans = Vec::new();
    // Files to read back and hash: every listed one with `rehash`, and every unlisted one.
    let mut batch: Vec<StoredFile> = Vec::with_capacity(CHECK_BATCH);
    let check = |batch: &mut Vec<StoredFile>, problems: &mut Vec<StoreProblem>| {
        let files: Vec<(&str, FileKind)> =
            batch.iter().map(|f| (f.sha256.as_str(), f.kind)).collect();
        let states = store.check_many(&files)?;
        for (StoredFile { sha256, kind: file_kind, .. }, state) in batch.drain(..).zip(states) {
            let path = store.path_of(&sha256, file_kind)?;
            match state {
                FileState::Present => {}
                FileState::Missing => {
                    problems.push(StoreProblem::Missing { sha256, file_kind, path })
                }
                FileState::Altered { actual } => {
                    problems.push(StoreProblem::Altered { sha256, file_kind, path, actual })
                }
            }
        }
        Ok::<_, RegistryError>(())
    };
    store::join_sorted(file_pages(db), store.entries(), |joined| {
        match joined {
            Joined::Both { file, .. } if rehash => batch.push(file),
            Joined::Referenced(file) => batch.push(file),
            // Re-hashed, a file of another size is reported as altered, with its hash.
            Joined::Both { file, listed_size } if listed_size != file.size => {
                problems.push(StoreProblem::WrongSize {
                    path: store.path_of(&file.sha256, file.kind)?,
                    sha256: file.sha256,
                    file_kind: file.kind,
                    expected: file.size,
                    actual: listed_size,
                });
            }
            Joined::Both { .. } => {}
            Joined::Listed(entry) => orphans.push(entry.path),
        }
        if batch.len() == CHECK_BATCH {
            check(&mut batch, &mut problems)?;
        }
        Ok(())
    })?;
    check(&mut batch, &mut problems)?;
    orphans.sort();
    problems.extend(orphans.into_iter().map(|path| StoreProblem::Orphan { path }));
    Ok(problems)
}
