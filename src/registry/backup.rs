//! Backup and restore of a whole registry: database and store, with a manifest of hashes.
//!
//! A backup (a folder, or an S3 bucket prefix off-site) holds `registry.sqlite` (a consistent
//! snapshot taken with SQLite's online backup API in one step, so a run may keep writing
//! meanwhile), a copy of every store file the snapshot references (`store/ab/cd/<sha256>.<ext>`,
//! each checked against its hash while copied), and `manifest.json` listing every file with its
//! SHA-256 and size, plus the audit head of the snapshot. Files are written before the
//! transaction that references them, so every file the snapshot references exists. A backup
//! into a target that holds an earlier one copies only the store files it lacks (incremental,
//! by name: the target's listing and the snapshot's files compared side by side, both sorted),
//! then uploads the new snapshot (to a bucket in parts, never whole in memory) and, last, the
//! manifest. The snapshot and the field key are named by their hash (`registry-<sha256>.sqlite`,
//! `field-key-<sha256>`), so a backup never overwrites a file the previous manifest names:
//! until the new manifest replaces the old one, the target still holds the earlier backup,
//! complete. Files the new manifest no longer names (the previous snapshot, the leftovers of an
//! interrupted backup) are removed after it. `backup-in-progress.json`, written first and
//! removed after the manifest, names the files the unfinished backup added; a restore of a
//! target with it restores the earlier complete backup and says that a later one did not
//! finish; without a manifest (the first backup interrupted) it is refused
//! ([`RegistryError::BackupIncomplete`]); the next backup into it completes it. Backups written
//! before these names (`registry.sqlite`, `field-key`) restore as before.
//!
//! A restore checks every file against the manifest while copying it (a batch of store files
//! fetched at once, the snapshot streamed to disk) into a temporary folder
//! beside the target, opens the copy, verifies the audit chain (and that its head is the
//! manifest's) and the store, records the restore in the audit trail, and only then renames the
//! folder into place. A failed restore leaves nothing live.
//!
//! The field key that seals the holders' data (`secrets`) is left out of a backup unless asked
//! for (`include_secrets`, `backup --include-secrets`): a backup without it is of no use to
//! whoever finds it. Such a backup restores only with the key supplied
//! (`ELICENCE_FIELD_KEY_FILE`); else the restore fails with
//! [`RegistryError::FieldKeyMissing`] and nothing is made live. A backup with it restores the
//! key to `<data>/secrets/field-key` (mode 0600).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::audit::{self, AuditEntry, action};
use super::db::{Db, sqlite_err as db_err};
use super::store::{self, CopyReport, FileKind, Store, StoreLocation, sha256_hex};
use super::{
    DB_FILE, Registry, RegistryCounts, RegistryError, RegistryLocation, STORE_DIR, migrate, schema,
};

/// The field key's file name inside a backup (only with `--include-secrets`).
pub const BACKUP_KEY_FILE: &str = "field-key";
/// The marker a backup writes first and removes after its manifest: while it is there the
/// backup is not complete (a restore refuses it; the next backup into it completes it).
pub const IN_PROGRESS_FILE: &str = "backup-in-progress.json";
/// The manifest's file name inside a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// What a backup's snapshot is called: `registry-<sha256>.sqlite`.
const SNAPSHOT_PREFIX: &str = "registry-";
const SNAPSHOT_SUFFIX: &str = ".sqlite";
/// What a backup's field key is called: `field-key-<sha256>`.
const KEY_PREFIX: &str = "field-key-";
/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: &str = "elicence-backup/1";

/// Temporary restore folders must be unique across threads of one process too.
static RESTORE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many times a backup step that finds the source busy is retried, 50 ms apart.
const BACKUP_BUSY_RETRIES: u32 = 200;

/// `manifest.json` of a backup folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    pub created_at: DateTime<Utc>,
    pub operator: String,
    pub schema_version: u32,
    /// Audit entries in the snapshot and the hash of the last one.
    pub audit_entries: u64,
    pub audit_head: Option<String>,
    pub counts: RegistryCounts,
    /// Every file of the backup, the snapshot (`registry-<sha256>.sqlite`) first, paths
    /// relative to the folder with `/`.
    pub files: Vec<ManifestFile>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> RegistryError + 'a {
    move |source| RegistryError::Io { path: path.to_path_buf(), op, source }
}

/// Fails with [`RegistryError::NotEmpty`] when `dir` exists and holds anything.
fn require_empty(dir: &Path) -> Result<(), RegistryError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(RegistryError::NotEmpty { path: dir.to_path_buf() }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            Err(RegistryError::NotEmpty { path: dir.to_path_buf() })
        }
        Err(e) => Err(RegistryError::Io { path: dir.to_path_buf(), op: "list folder", source: e }),
    }
}

/// The SHA-256 and size of a file, streamed.
fn hash_file(path: &Path) -> Result<(String, u64), RegistryError> {
    let mut input = File::open(path).map_err(io_err(path, "open"))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).map_err(io_err(path, "read"))?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
        hasher.update(chunk);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Copies the database into `dst` with the online backup API in a single step: one read
/// transaction on the source, so the copy is one consistent state while writers go on (WAL).
fn snapshot_database(src: &Connection, src_path: &Path, dst: &Path) -> Result<(), RegistryError> {
    let mut dst_conn = Connection::open(dst).map_err(db_err(dst, "create backup database"))?;
    {
        let backup = Backup::new(src, &mut dst_conn).map_err(db_err(src_path, "start backup"))?;
        let mut busy = 0;
        loop {
            match backup.step(-1).map_err(db_err(src_path, "copy database"))? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    busy += 1;
                    if busy > BACKUP_BUSY_RETRIES {
                        return Err(RegistryError::Locked {
                            path: src_path.to_path_buf(),
                            op: "copy database",
                            source: rusqlite::Error::SqliteFailure(
                                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                                None,
                            ),
                        });
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                // StepResult is non-exhaustive.
                _ => thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    // A self-contained single file: no -wal beside it.
    let _mode: String = dst_conn
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .map_err(db_err(dst, "set backup journal mode"))?;
    dst_conn.close().map_err(|(_, e)| db_err(dst, "close backup database")(e))?;
    Ok(())
}

/// `store/ab/cd/<name>` for a manifest, with `/` separators.
fn manifest_store_path(sha256: &str, kind: FileKind) -> Result<String, RegistryError> {
    let rel = Store::relative_path(sha256, kind)?;
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    Ok(format!("{STORE_DIR}/{}", parts.join("/")))
}

/// What a file of a backup is.
enum BackupPart {
    Database,
    FieldKey,
    Store(FileKind),
}

/// Checks a manifest path: `registry.sqlite`, `field-key`, or a store path that matches its
/// hash.
fn check_manifest_path(file: &ManifestFile) -> Result<BackupPart, String> {
    // Backups written before the hashed names used these fixed ones.
    if file.path == DB_FILE || file.path == snapshot_name(&file.sha256) {
        return Ok(BackupPart::Database);
    }
    if file.path == BACKUP_KEY_FILE || file.path == key_name(&file.sha256) {
        return Ok(BackupPart::FieldKey);
    }
    if file.path.starts_with(SNAPSHOT_PREFIX) || file.path.starts_with(KEY_PREFIX) {
        return Err(format!("{:?} is not named by its SHA-256 {}", file.path, file.sha256));
    }
    let ext = file.path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    let kind = FileKind::from_ext(ext).ok_or_else(|| format!("unexpected file {:?}", file.path))?;
    match manifest_store_path(&file.sha256, kind) {
        Ok(expected) if expected == file.path => Ok(BackupPart::Store(kind)),
        _ => Err(format!("{:?} is not the store path of SHA-256 {}", file.path, file.sha256)),
    }
}

/// The name of the snapshot whose SHA-256 is `sha256` in a backup.
fn snapshot_name(sha256: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{sha256}{SNAPSHOT_SUFFIX}")
}

/// The name of the field key whose SHA-256 is `sha256` in a backup.
fn key_name(sha256: &str) -> String {
    format!("{KEY_PREFIX}{sha256}")
}

/// The files of a backup that are not in its store (the snapshot, the field key): what the
/// next backup replaces and removes.
fn generation_files(files: &[ManifestFile]) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            matches!(check_manifest_path(f), Ok(BackupPart::Database | BackupPart::FieldKey))
        })
        .map(|f| f.path.clone())
        .collect()
}

/// `backup-in-progress.json`: when the unfinished backup started, who ran it, and the files it
/// added beside the store (removed by the backup that completes it, unless it names them too).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InProgress {
    started_at: DateTime<Utc>,
    operator: String,
    /// Absent in markers of backups written before the hashed names: such a backup overwrote
    /// `registry.sqlite` in place, so the earlier manifest no longer describes it.
    #[serde(default)]
    files: Option<Vec<String>>,
}

/// A fresh local file name for a database snapshot, in `dir`.
fn snapshot_path(dir: &Path) -> PathBuf {
    let n = RESTORE_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{DB_FILE}.backup-{}-{n}.tmp", std::process::id()))
}

impl Registry {
    /// Writes a consistent backup of this registry, WITH its field key, into the folder `dir`
    /// (absent, empty, or holding an earlier backup); see [`Registry::backup_to`].
    pub fn backup(
        &self,
        dir: &Path,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<BackupManifest, RegistryError> {
        Ok(self.backup_to(&StoreLocation::Folder(dir.to_path_buf()), operator, at, true)?.0)
    }

    /// Writes a consistent backup of this registry to `target`, a folder or an S3 bucket
    /// prefix (off-site): `registry.sqlite`, every referenced store file under `store/`, and
    /// `manifest.json` last; returns the manifest and what was copied. Safe while other
    /// processes write. The target must be empty or
    /// hold an earlier backup: then only the store files it lacks are copied (by name; names
    /// are hashes), and the new snapshot and manifest replace the old ones. Audited (`backup`)
    /// in this registry after the backup is complete.
    ///
    /// Fails with [`RegistryError::NotEmpty`], [`RegistryError::AuditBroken`] when the snapshot's
    /// audit chain does not verify, a store error when a referenced file is missing or altered
    /// (or an object cannot be written), or an I/O or SQLite error naming the file.
    ///
    /// With `include_secrets` the field key file goes in too (`field-key`, mode 0600 in a
    /// folder); without, a backup holds no key (and an earlier backup's key is removed).
    pub fn backup_to(
        &self,
        target: &StoreLocation,
        operator: &str,
        at: DateTime<Utc>,
        include_secrets: bool,
    ) -> Result<(BackupManifest, CopyReport), RegistryError> {
        let root = Store::open(target)?;
        // What an earlier backup left: read once, its files replaced after the new manifest.
        let earlier = (root.read_named(MANIFEST_FILE)?, root.read_named(IN_PROGRESS_FILE)?);
        if earlier.0.is_none() && earlier.1.is_none() && !root.is_empty()? {
            return Err(RegistryError::NotEmpty { path: target.to_string().into() });
        }
        // The snapshot is taken into a local file: beside its final place in a folder, in the
        // data folder for a bucket.
        let local_dir = match target {
            StoreLocation::Folder(dir) => {
                store::create_dir_durable(dir)?;
                dir.clone()
            }
            StoreLocation::Bucket(_) => self.data_dir.clone(),
        };
        let db_copy = snapshot_path(&local_dir);
        let result = self.backup_with_snapshot(
            &root,
            target,
            &db_copy,
            earlier,
            operator,
            at,
            include_secrets,
        );
        // Best effort: the temporary snapshot is ours (already moved away on success).
        let _ = fs::remove_file(&db_copy);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn backup_with_snapshot(
        &self,
        root: &Store,
        target: &StoreLocation,
        db_copy: &Path,
        (earlier_manifest, earlier_marker): (Option<Vec<u8>>, Option<Vec<u8>>),
        operator: &str,
        at: DateTime<Utc>,
        include_secrets: bool,
    ) -> Result<(BackupManifest, CopyReport), RegistryError> {
        match self.db.sqlite_conn() {
            Some(conn) => snapshot_database(conn, self.db.location(), db_copy)?,
            // A PostgreSQL registry is backed up as the same SQLite file: its tables are copied
            // from one snapshot (REPEATABLE READ) into a fresh registry database.
            None => {
                let copy = Db::sqlite(super::sqlite::connect(db_copy)?, db_copy);
                schema::migrate(&copy)?;
                migrate::copy_tables(&self.db, &copy)?;
                copy.batch("set backup journal mode", "PRAGMA journal_mode=DELETE")?;
            }
        }

        let snap = Db::sqlite(
            Connection::open(db_copy).map_err(db_err(db_copy, "open backup database"))?,
            db_copy,
        );
        let schema_version = schema::current_version(&snap)?;
        let audit_report = audit::verify(&snap)?;
        let counts = super::counts_of(&snap)?;
        let referenced = super::files_of(&snap)?;
        drop(snap);

        let (db_sha256, db_size) = hash_file(db_copy)?;
        let db_name = snapshot_name(&db_sha256);
        let mut files =
            vec![ManifestFile { path: db_name.clone(), sha256: db_sha256, size: db_size }];
        let key = if include_secrets {
            let key_path = super::secrets::key_file_path(&self.data_dir);
            let key = fs::read(&key_path).map_err(io_err(&key_path, "read field key"))?;
            let sha256 = sha256_hex(&key);
            files.push(ManifestFile { path: key_name(&sha256), sha256, size: key.len() as u64 });
            Some(key)
        } else {
            None
        };
        let new_names = generation_files(&files);
        // What the target holds beside its store now: the files of the earlier backup's
        // manifest and those an unfinished backup added. None of them is overwritten (names
        // are hashes); those the new manifest does not name are removed after it.
        let mut old_names = Vec::new();
        if let Some(text) = earlier_manifest
            && let Ok(old) = serde_json::from_slice::<BackupManifest>(&text)
        {
            old_names.extend(generation_files(&old.files));
        }
        if let Some(text) = earlier_marker
            && let Ok(InProgress { files: Some(added), .. }) = serde_json::from_slice(&text)
        {
            old_names.extend(added);
        }
        // From here until the manifest is written the target holds files the manifest does not
        // name: the marker names them for the next backup, and tells a restore that a later
        // backup did not finish.
        let marker = InProgress {
            started_at: at,
            operator: operator.to_owned(),
            files: Some(new_names.clone()),
        };
        let marker_text = serde_json::to_vec(&marker).map_err(|e| RegistryError::BadManifest {
            path: root.named_path(IN_PROGRESS_FILE),
            reason: e.to_string(),
        })?;
        root.put_named(IN_PROGRESS_FILE, &marker_text)?;
        // Only what the target lacks; each file read with its hash checked on the way.
        let copied = store::copy_missing(
            &self.store,
            &root.child(STORE_DIR),
            referenced.iter().cloned().map(Ok::<_, RegistryError>),
        )?;
        for file in referenced {
            files.push(ManifestFile {
                path: manifest_store_path(&file.sha256, file.kind)?,
                sha256: file.sha256,
                size: file.size,
            });
        }
        root.put_named_file(&db_name, db_copy)?;
        if let Some(key) = &key {
            let name = key_name(&sha256_hex(key));
            match target {
                StoreLocation::Folder(dir) => super::secrets::write_private(&dir.join(&name), key)?,
                StoreLocation::Bucket(_) => root.put_named(&name, key)?,
            }
        }
        let manifest = BackupManifest {
            format: MANIFEST_FORMAT.to_owned(),
            created_at: at,
            operator: operator.to_owned(),
            schema_version,
            audit_entries: audit_report.entries,
            audit_head: audit_report.head,
            counts,
            files,
        };
        let manifest_path = root.named_path(MANIFEST_FILE);
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| {
            RegistryError::BadManifest { path: manifest_path.clone(), reason: e.to_string() }
        })?;
        // Last: the manifest is what makes the backup whole, then the marker goes, then what
        // no manifest names any more.
        root.put_named(MANIFEST_FILE, &text)?;
        root.remove_named(IN_PROGRESS_FILE)?;
        for name in old_names.iter().filter(|n| !new_names.contains(n)) {
            root.remove_named(name)?;
        }

        self.db.write("audit backup", |tx| {
            audit::append(
                tx,
                &AuditEntry {
                    action: action::BACKUP.to_owned(),
                    operator: operator.to_owned(),
                    at,
                    subject: target.to_string(),
                    reason: None,
                    details: json!({
                        "files": manifest.files.len(),
                        "copied": copied.copied,
                        "already_there": copied.present,
                        "manifest_sha256": sha256_hex(&text),
                        "audit_entries": manifest.audit_entries,
                        "audit_head": manifest.audit_head,
                        "field_key_included": include_secrets,
                    }),
                },
            )
        })?;
        Ok((manifest, copied))
    }

    /// Restores the backup in the folder `backup_dir` into `new_data_dir` (absent or empty)
    /// and opens it; see [`Registry::restore_authorized`].
    pub fn restore(
        backup_dir: &Path,
        new_data_dir: &Path,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<Registry, RegistryError> {
        let source = StoreLocation::Folder(backup_dir.to_path_buf());
        Registry::restore_authorized(&source, new_data_dir, None, at, |_| {
            Ok::<_, RegistryError>(operator.to_owned())
        })
    }

    /// Restores the backup at `source` (a folder or an S3 bucket prefix) into `new_data_dir`
    /// (absent or empty), with its store in `new_data_dir/store` or at `store`, and opens it.
    /// Every file is checked against the manifest, and the copy's audit chain and store are
    /// verified, before the folder is renamed into place; `authorize` decides who restores
    /// once the copy is verified (the restored registry's own operators, since it is that
    /// registry that becomes live): it returns the operator the audit entry names, or an error
    /// that stops the restore with nothing made live. Store files written to a `store`
    /// elsewhere before a failure are orphans there, referenced by nothing live.
    ///
    /// Fails with [`RegistryError::NotEmpty`], [`RegistryError::BadManifest`],
    /// [`RegistryError::BackupFileAltered`], [`RegistryError::AuditBroken`],
    /// [`RegistryError::StoreNotClean`], or an I/O, object-store or SQLite error; then nothing
    /// is made live.
    pub fn restore_authorized<E: From<RegistryError>>(
        source: &StoreLocation,
        new_data_dir: &Path,
        store: Option<&StoreLocation>,
        at: DateTime<Utc>,
        authorize: impl FnOnce(&mut Registry) -> Result<String, E>,
    ) -> Result<Registry, E> {
        require_empty(new_data_dir)?;
        let root = Store::open(source).map_err(RegistryError::from)?;
        let manifest_path = root.named_path(MANIFEST_FILE);
        let manifest_text = root.read_named(MANIFEST_FILE).map_err(RegistryError::from)?;
        if let Some(marker) = root.read_named(IN_PROGRESS_FILE).map_err(RegistryError::from)? {
            let incomplete =
                || RegistryError::BackupIncomplete { path: root.named_path(IN_PROGRESS_FILE) };
            // A marker of this format means the manifest's files were left as they were (names
            // are hashes): the earlier backup is whole. An older marker's backup overwrote its
            // snapshot in place, and with no manifest there is no earlier backup at all.
            match serde_json::from_slice::<InProgress>(&marker) {
                Ok(InProgress { files: Some(_), started_at, operator })
                    if manifest_text.is_some() =>
                {
                    tracing::warn!(
                        target = %source,
                        %started_at,
                        %operator,
                        "a later backup into this target did not finish; restoring the last \
                         complete one, which its manifest describes"
                    );
                }
                _ => return Err(incomplete().into()),
            }
        }
        let bad =
            |reason: String| RegistryError::BadManifest { path: manifest_path.clone(), reason };
        let text = manifest_text.ok_or_else(|| RegistryError::Io {
            path: manifest_path.clone(),
            op: "read",
            source: io::Error::from(io::ErrorKind::NotFound),
        })?;
        let manifest: BackupManifest =
            serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(
                bad(format!("format {:?}, expected {MANIFEST_FORMAT:?}", manifest.format)).into()
            );
        }
        let mut databases = 0;
        for file in &manifest.files {
            if let BackupPart::Database = check_manifest_path(file).map_err(bad)? {
                databases += 1;
            }
        }
        if databases != 1 {
            return Err(bad(format!("lists {databases} database snapshots, expected one")).into());
        }

        let parent = new_data_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        store::create_dir_durable(&parent).map_err(RegistryError::from)?;
        let name =
            new_data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let n = RESTORE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = parent.join(format!(".{name}.restore-{}-{n}", std::process::id()));
        if temp.exists() {
            // Left by an earlier restore of ours that died; never live.
            fs::remove_dir_all(&temp).map_err(io_err(&temp, "remove stale restore folder"))?;
        }
        let temp_store =
            store.cloned().unwrap_or_else(|| StoreLocation::Folder(temp.join(STORE_DIR)));
        let result =
            restore_into(&root, source, &manifest, &text, &temp, &temp_store, at, authorize);
        if let Err(e) = result {
            // Best effort: the temporary folder is ours and was never live.
            let _ = fs::remove_dir_all(&temp);
            return Err(e);
        }
        if new_data_dir.exists() {
            fs::remove_dir(new_data_dir).map_err(io_err(new_data_dir, "replace empty folder"))?;
        }
        fs::rename(&temp, new_data_dir)
            .map_err(io_err(new_data_dir, "move restored registry into place"))?;
        store::sync_dir(&parent).map_err(RegistryError::from)?;
        let live_store =
            store.cloned().unwrap_or_else(|| StoreLocation::Folder(new_data_dir.join(STORE_DIR)));
        let location = RegistryLocation::Sqlite(new_data_dir.join(DB_FILE));
        Ok(Registry::open_at(new_data_dir, &location, &live_store)?)
    }
}

/// Copies and checks everything into `temp`, then verifies and audits the restored registry.
#[allow(clippy::too_many_arguments)]
fn restore_into<E: From<RegistryError>>(
    root: &Store,
    source: &StoreLocation,
    manifest: &BackupManifest,
    manifest_text: &[u8],
    temp: &Path,
    store: &StoreLocation,
    at: DateTime<Utc>,
    authorize: impl FnOnce(&mut Registry) -> Result<String, E>,
) -> Result<(), E> {
    let mut registry = restore_checked(root, manifest, temp, store)?;
    let operator = authorize(&mut registry)?;
    registry.audit_append(&AuditEntry {
        action: action::RESTORE.to_owned(),
        operator,
        at,
        subject: source.to_string(),
        reason: None,
        details: json!({
            "manifest_sha256": sha256_hex(manifest_text),
            "backup_created_at": manifest.created_at,
            "backup_operator": manifest.operator,
            "files": manifest.files.len(),
            "audit_entries": manifest.audit_entries,
            "audit_head": manifest.audit_head,
        }),
    })?;
    drop(registry);
    Ok(())
}

/// Store files restored per batch: read and checked, then written with one durability point.
const RESTORE_BATCH: usize = 64;

/// Copies every file of the backup at `root` into `temp` (the database) and `store`, checking
/// each against the manifest, opens the copy and verifies its audit chain and store.
fn restore_checked(
    root: &Store,
    manifest: &BackupManifest,
    temp: &Path,
    store: &StoreLocation,
) -> Result<Registry, RegistryError> {
    store::create_dir_durable(temp)?;
    if let StoreLocation::Folder(dir) = store {
        store::create_dir_durable(dir)?;
    }
    let target = Store::open(store)?;
    let altered =
        |file: &ManifestFile, actual: String, actual_size: u64| RegistryError::BackupFileAltered {
            path: root.named_path(&file.path),
            expected: file.sha256.clone(),
            actual,
            expected_size: file.size,
            actual_size,
        };
    let absent = |file: &ManifestFile| RegistryError::Io {
        path: root.named_path(&file.path),
        op: "read",
        source: io::Error::from(io::ErrorKind::NotFound),
    };
    // Per batch: the store files read together (a bucket GETs several at once), each checked
    // against the manifest, then written with one durability point; memory holds one batch.
    for batch in manifest.files.chunks(RESTORE_BATCH) {
        let mut wanted: Vec<(&ManifestFile, FileKind)> = Vec::with_capacity(batch.len());
        for file in batch {
            match check_manifest_path(file).map_err(|_| altered(file, String::new(), 0))? {
                BackupPart::Store(kind) => wanted.push((file, kind)),
                BackupPart::FieldKey => {
                    let bytes = root.read_named(&file.path)?.ok_or_else(|| absent(file))?;
                    let actual = sha256_hex(&bytes);
                    if actual != file.sha256 || bytes.len() as u64 != file.size {
                        return Err(altered(file, actual, bytes.len() as u64));
                    }
                    let dst = temp.join(super::secrets::SECRETS_DIR).join(super::secrets::KEY_FILE);
                    super::secrets::write_private(&dst, &bytes)?;
                }
                // Streamed to its place, hashed on the way (a snapshot may be large).
                BackupPart::Database => {
                    let dst = temp.join(DB_FILE);
                    let (actual, size) =
                        root.read_named_to_file(&file.path, &dst)?.ok_or_else(|| absent(file))?;
                    if actual != file.sha256 || size != file.size {
                        return Err(altered(file, actual, size));
                    }
                }
            }
        }
        let names: Vec<&str> = wanted.iter().map(|(file, _)| file.path.as_str()).collect();
        let contents = root.read_named_many(&names)?;
        let mut writes: Vec<(FileKind, &[u8])> = Vec::with_capacity(wanted.len());
        for (&(file, kind), bytes) in wanted.iter().zip(&contents) {
            let bytes = bytes.as_deref().ok_or_else(|| absent(file))?;
            let actual = sha256_hex(bytes);
            if actual != file.sha256 || bytes.len() as u64 != file.size {
                return Err(altered(file, actual, bytes.len() as u64));
            }
            writes.push((kind, bytes));
        }
        target.put_many(&writes)?;
    }
    store::sync_dir(temp)?;

    let location = RegistryLocation::Sqlite(temp.join(DB_FILE));
    let registry = Registry::open_at(temp, &location, store)?;
    let report = registry.audit_verify()?;
    if report.entries != manifest.audit_entries || report.head != manifest.audit_head {
        return Err(RegistryError::BadManifest {
            path: root.named_path(MANIFEST_FILE),
            reason: format!(
                "audit trail has {} entries ending {:?}, manifest says {} ending {:?}",
                report.entries, report.head, manifest.audit_entries, manifest.audit_head
            ),
        });
    }
    let problems: Vec<_> =
        registry.store_check_full()?.into_iter().filter(|p| p.is_fatal()).collect();
    if !problems.is_empty() {
        return Err(RegistryError::StoreNotClean { path: store.to_string().into(), problems });
    }
    Ok(registry)
}
