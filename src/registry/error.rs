//! Why a registry operation failed: typed errors with the file, identifier or run they
//! concern, for the database (SQLite, PostgreSQL), the store, the audit chain, backups and
//! migrations.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::audit::AuditBreak;
use super::store::{FileKind, StoreError};
use super::{Decision, NaturalKey, RunId, StoreProblem};

/// A decision that no longer holds at commit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleDecision {
    /// The row (`file:sheet:line`).
    pub source: String,
    pub expected: Decision,
    pub found: Decision,
}

/// A registry operation that failed, with the file or identifier it concerns.
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("{path}: {op}", path = path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The published catalog (`catalog_versions` row `number`) does not load, or the catalog
    /// a registry without one was to adopt does not.
    #[error("the catalog {what} does not load")]
    Catalog {
        what: String,
        #[source]
        source: crate::catalog::CatalogError,
    },
    /// Another process holds the database lock longer than the busy timeout.
    #[error("{path}: database is locked by another process ({op})", path = path.display())]
    Locked {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// Not a SQLite database, or a damaged one.
    #[error("{path}: not a registry database or damaged ({op})", path = path.display())]
    Corrupt {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {op}", path = path.display())]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL error; `location` is the URL without its password.
    #[error("{location}: {op}", location = location.display())]
    Postgres {
        location: PathBuf,
        op: &'static str,
        #[source]
        source: postgres::Error,
    },
    /// A stored value that does not read back as what it must be (a hand edit, or a bug).
    /// The server could not be reached, refused the TLS handshake or the login, or the
    /// connection settings are wrong (an unknown `sslmode`, a missing `sslrootcert`).
    #[error("{location}: cannot connect", location = location.display())]
    PgConnect {
        location: PathBuf,
        #[source]
        source: super::pg_connect::PgConnectError,
    },
    #[error("{location}: {op}: column {column}: {reason}", location = location.display())]
    Column { location: PathBuf, op: &'static str, column: usize, reason: String },
    /// `--registry` / `ELICENCE_REGISTRY` that names no registry this build can open.
    #[error("registry {spec:?}: {reason}")]
    BadLocation { spec: String, reason: String },
    /// `migrate` into a registry that already holds data.
    #[error("{location}: target registry is not empty ({table} has {rows} rows)", location = location.display())]
    TargetNotEmpty { location: PathBuf, table: String, rows: u64 },
    /// `migrate` copied a table but the target does not hold what the source holds.
    #[error("{location}: after migration {table} has {found} rows, source has {expected}", location = location.display())]
    MigrationMismatch { location: PathBuf, table: String, expected: u64, found: u64 },
    /// A SQLite database that is not an elicence registry.
    #[error("{path}: not an elicence registry: {reason}", path = path.display())]
    NotARegistry { path: PathBuf, reason: String },
    #[error("{path}: schema version {found} is newer than this build's {supported}", path = path.display())]
    SchemaTooNew { path: PathBuf, found: u32, supported: u32 },
    /// A command that must not write (a dry run) met a registry of an older schema.
    #[error("{path}: schema version {found}, this build needs {expected}; a dry run migrates nothing: run any other command (e.g. `elicence audit verify`) to migrate it first", path = path.display())]
    NeedsMigration { path: PathBuf, found: u32, expected: u32 },
    /// The database contradicts an invariant (a hand edit).
    #[error("{path}: inconsistent registry: {what}", path = path.display())]
    Inconsistent { path: PathBuf, what: String },
    /// Another writer changed a key between `decide` and `commit_chunk`; decide the chunk again.
    #[error("{}: decided {:?} but the registry now says {:?}", .0.source, .0.expected, .0.found)]
    StaleDecision(Box<StaleDecision>),
    #[error("licence {key} has 999 versions; no further version fits an identifier")]
    VersionsExhausted { key: NaturalKey },
    #[error("{identifier}: not in the registry")]
    UnknownIdentifier { identifier: String },
    #[error("{identifier}: superseded by {superseded_by}; only the current version can be revoked")]
    NotCurrent { identifier: String, superseded_by: String },
    #[error("{identifier}: already revoked at {at}")]
    AlreadyRevoked { identifier: String, at: String },
    /// An item to approve is no longer pending (another reviewer decided it meanwhile).
    #[error("review item {id} is no longer pending")]
    ReviewDecided { id: i64 },
    #[error("{run}: no such run")]
    UnknownRun { run: RunId },
    #[error("{run}: already finished")]
    RunFinished { run: RunId },
    #[error(transparent)]
    AuditBroken(#[from] AuditBreak),
    /// An audit entry handed to the server's group commit (`audit_queue`) was not committed;
    /// the request it records is not answered.
    #[error("the audit entry was not recorded: {reason}")]
    AuditNotRecorded { reason: String },
    /// Backup into, or restore into, a folder that already holds something.
    #[error("{path}: folder is not empty", path = path.display())]
    NotEmpty { path: PathBuf },
    /// A backup manifest that does not parse or does not cover what it must.
    #[error("{path}: bad backup manifest: {reason}", path = path.display())]
    BadManifest { path: PathBuf, reason: String },
    /// A backup that was interrupted before it finished (its in-progress marker is still
    /// there) with no complete backup before it: no manifest, or one whose snapshot an older
    /// elicence overwrote in place. Running the backup again completes it.
    #[error("{path}: the backup was interrupted before it finished (its manifest may not match its snapshot); run backup into it again to complete it", path = path.display())]
    BackupIncomplete { path: PathBuf },
    /// A file of a backup whose size or hash is not the manifest's.
    #[error("{path}: SHA-256 {actual} ({actual_size} bytes), manifest says {expected} ({expected_size} bytes)", path = path.display())]
    BackupFileAltered {
        path: PathBuf,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },
    /// The restored registry references files that are missing or altered.
    #[error("{path}: restored store has {} problem(s), first: {:?}", problems.len(), problems.first(), path = path.display())]
    StoreNotClean { path: PathBuf, problems: Vec<StoreProblem> },
    /// The field key file is unreadable or malformed, or does not belong to this registry.
    #[error("field key {path}: {reason}", path = path.display())]
    FieldKey { path: PathBuf, reason: String },
    /// The registry holds sealed data but its field key file is not there.
    #[error("{location}: the registry's personal data is encrypted and its field key {path} is missing; restore the key file there or name it with ELICENCE_FIELD_KEY_FILE", location = location.display(), path = path.display())]
    FieldKeyMissing { location: PathBuf, path: PathBuf },
    /// A sealed value that does not open: altered, moved between rows, or sealed with a key the
    /// key file does not hold.
    #[error("{location}: sealed data of {row} does not open: {reason}", location = location.display())]
    Sealed { location: PathBuf, row: String, reason: super::secrets::SealError },
    /// An item that creates a version came without its signed PDF or XML (a caller bug).
    #[error("{row}: new version has no {} file", kind.as_str())]
    MissingArtefact { row: String, kind: FileKind },
}

impl RegistryError {
    pub(crate) fn io<'a>(
        path: &'a Path,
        op: &'static str,
    ) -> impl FnOnce(io::Error) -> RegistryError + 'a {
        move |source| RegistryError::Io { path: path.to_path_buf(), op, source }
    }
}
