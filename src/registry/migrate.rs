//! Copying a whole registry from one backend to another (`elicence migrate --from sqlite:PATH
//! --to postgres://…`), verified, and the table copy a PostgreSQL backup uses.
//!
//! The target must be empty (its schema is created on open). Every table is copied in an order
//! where each row's references exist before it, from ONE snapshot of the source, into ONE write
//! transaction on the target, keeping every key as it is (identifiers, run numbers, audit
//! sequence numbers). Then the target is verified: row counts per table equal the snapshot's,
//! every file the registry references is in the store with the right SHA-256, and the audit
//! chain verifies with the source's head hash. The store is not copied: both registries use
//! the same store (`<data>/store`, or `--store`). Neither is the field key (sealed values and
//! keyed hashes are copied as they are): both registries use the key file of the same data
//! folder (or `ELICENCE_FIELD_KEY_FILE`), and the copy checks that both recorded that key.
//!
//! [`migrate_store`] copies a store instead (`elicence migrate --store-to URL`): from a folder
//! to a bucket or back, every referenced file read with its hash checked, only what the target
//! lacks (so an interrupted copy resumes), then every object of the target re-hashed.

use serde::Serialize;

use super::db::{Db, Dialect, Val};
use super::store::{CopyReport, copy_missing};
use super::{
    AuditReport, Registry, RegistryError, RegistryLocation, Store, StoreLocation, StoreProblem,
    audit,
};
use std::path::Path;

/// Every table with its columns, in copy order (referenced tables first). `schema_migrations`
/// is not copied: the target's own migrations create the same schema.
pub(crate) const TABLE_COLUMNS: &[(&str, &str)] = &[
    (
        "runs",
        "id, pipeline, operator, started_at, finished_at, outcome, count_read, count_issued, \
         count_changed, count_revoked, count_unchanged, count_duplicates, count_rejected, \
         count_other_shard, count_pending",
    ),
    ("run_inputs", "run_id, position, file, sha256"),
    ("rejects", "id, run_id, file, sheet, line, field, rule, message"),
    ("licences", "id, type_code, issuer_code, printed_no, created_at"),
    (
        "versions",
        "id, licence_id, version, identifier, content_hash, row_status, holder_code, \
         holder_name, issue_date, valid_to, fields_json, source, run_id, created_at, \
         superseded_by, superseded_at, revoked_at, revoked_reason, revoked_by, revoked_on",
    ),
    ("files", "sha256, kind, size"),
    ("segments", "sha256, size"),
    ("segment_files", "sha256, kind, segment, byte_offset"),
    ("version_files", "version_id, kind, sha256"),
    ("audit_log", "seq, at, action, operator, subject, reason, details, prev_hash, hash"),
    ("departments", "code, name, level, region, enabled, credential_hash, created_at"),
    ("grants", "department, type_code, unmask, granted_at"),
    (
        "check_requests",
        "id, identifier, requester, issuer_code, reason, opened_at, answered_at, answerer, \
         result, note, due_on",
    ),
    ("copies", "id, identifier, department, reason, expires, sha256, created_at"),
    ("log_meta", "log_id"),
    ("log_leaves", "idx, audit_seq, identifier, event, leaf, leaf_hash"),
    ("log_checkpoints", "tree_size, root_hash, at, body, signature"),
    ("operators", "name, roles, enabled, credential_hash, created_at"),
    (
        "review_items",
        "id, run_id, type_code, issuer_code, printed_no, action, identifier, \
         previous_identifier, content_hash, row_status, holder_code, holder_name, issue_date, \
         single_instance, revoked_on, revoked_reason, licence_json, preview_sha256, archive_sha256, source, staged_by, \
         staged_at, state, decided_by, decided_at, decision_note",
    ),
    ("registry_marks", "name, set_at, operator"),
    ("catalog_versions", "id, sha256, files, published_at, operator"),
    (FIELD_KEY_TABLE, "id, index_check, key_id, created_at, sealed_at"),
];

/// The field key record (see `secrets`): a target opened with the source's key file records
/// the same key on open, so the copy only checks that both name the same key (the record is
/// never deleted, so it cannot be replaced).
const FIELD_KEY_TABLE: &str = "field_key";

/// Tables the target's own migrations fill (the log id a new registry draws): the source's rows
/// replace them, so the copy keeps the source's transparency log identity.
const REPLACED_TABLES: &[&str] = &["log_meta"];

/// Tables whose `id` is generated (an identity column in PostgreSQL, to move past the copied
/// ids).
const IDENTITY_TABLES: &[&str] = &[
    "runs",
    "rejects",
    "licences",
    "versions",
    "check_requests",
    "copies",
    "review_items",
    "catalog_versions",
];

/// What a migration copied and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Rows per table, as copied and as counted again in the target.
    pub tables: Vec<(String, u64)>,
    /// Store files referenced and checked against their SHA-256.
    pub files_checked: u64,
    pub audit: AuditReport,
}

fn table_rows(db: &Db, table: &str) -> Result<u64, RegistryError> {
    let n: i64 =
        db.query_one("count rows", &format!("SELECT COUNT(*) FROM {table}"), &[], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Copies every table of `src` (one snapshot) into `dst` (one write transaction) and returns
/// the rows per table. `dst` must have the schema and no rows.
pub(crate) fn copy_tables(src: &Db, dst: &Db) -> Result<Vec<(String, u64)>, RegistryError> {
    src.snapshot("copy registry", |src| {
        dst.write("copy registry", |dst| {
            let mut copied = Vec::new();
            for (table, columns) in TABLE_COLUMNS {
                if REPLACED_TABLES.contains(table) {
                    dst.execute("replace drawn rows", &format!("DELETE FROM {table}"), &[])?;
                }
                let width = columns.split(',').count();
                let order = columns.split(',').next().unwrap_or("1");
                let rows = src.query(
                    "read table",
                    &format!("SELECT {columns} FROM {table} ORDER BY {order}"),
                    &[],
                    |r| Ok(r.values().to_vec()),
                )?;
                if *table == FIELD_KEY_TABLE {
                    copied.push(((*table).to_owned(), same_field_key(src, dst)?));
                    continue;
                }
                let placeholders: Vec<String> = (1..=width).map(|i| format!("?{i}")).collect();
                let insert =
                    format!("INSERT INTO {table} ({columns}) VALUES ({})", placeholders.join(", "));
                for row in &rows {
                    dst.execute("copy row", &insert, row)?;
                }
                copied.push(((*table).to_owned(), rows.len() as u64));
            }
            if dst.dialect() == Dialect::Postgres {
                for table in IDENTITY_TABLES {
                    dst.execute(
                        "move identity past copied ids",
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                           COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                        ),
                        &[] as &[Val],
                    )?;
                }
            }
            Ok(copied)
        })
    })
}

/// Copies the source's field key record into `dst`, or, when `dst` recorded one already,
/// checks that it is the same index key; returns the rows the source has.
fn same_field_key(src: &Db, dst: &Db) -> Result<u64, RegistryError> {
    let read = |db: &Db| -> Result<Vec<Vec<Val>>, RegistryError> {
        db.query(
            "read field key record",
            "SELECT id, index_check, key_id, created_at, sealed_at FROM field_key",
            &[],
            |r| Ok(r.values().to_vec()),
        )
    };
    let (from, to) = (read(src)?, read(dst)?);
    match (from.first(), to.first()) {
        (Some(row), None) => {
            dst.execute(
                "copy field key record",
                "INSERT INTO field_key (id, index_check, key_id, created_at, sealed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                row,
            )?;
        }
        (Some(a), Some(b)) if a.get(1) != b.get(1) => {
            return Err(RegistryError::FieldKey {
                path: dst.location().to_path_buf(),
                reason: "the target registry recorded another field key than the source".into(),
            });
        }
        _ => {}
    }
    Ok(from.len() as u64)
}

/// What [`migrate_store`] did.
#[derive(Debug, Serialize)]
pub struct StoreMigrationReport {
    pub from: String,
    pub to: String,
    /// Files the registry references.
    pub files: u64,
    #[serde(flatten)]
    pub copy: CopyReport,
}

/// Copies every file `registry` references from its store into the store at `to` (a folder
/// is created; a bucket must exist), only what `to` lacks, each read with its hash checked;
/// then re-hashes every referenced object of `to`. Run again after an interruption, it copies
/// what is still missing.
///
/// Fails with a store error naming the file that could not be read or written, or with
/// [`RegistryError::StoreNotClean`] when the target does not verify.
pub fn migrate_store(
    registry: &Registry,
    to: &StoreLocation,
) -> Result<StoreMigrationReport, RegistryError> {
    if let StoreLocation::Folder(dir) = to {
        std::fs::create_dir_all(dir).map_err(RegistryError::io(dir, "create store folder"))?;
    }
    let target = Store::open(to)?;
    let copy = copy_missing(&registry.store, &target, super::file_pages(&registry.db))?;
    let problems: Vec<StoreProblem> = super::store_check(&registry.db, &target, true)?
        .into_iter()
        .filter(StoreProblem::is_fatal)
        .collect();
    if !problems.is_empty() {
        return Err(RegistryError::StoreNotClean { path: to.to_string().into(), problems });
    }
    Ok(StoreMigrationReport {
        from: registry.store.to_string(),
        to: to.to_string(),
        files: copy.copied + copy.present,
        copy,
    })
}

/// Copies the registry at `from` into the empty registry at `to` (both with the store at
/// `store`), then verifies counts, store files and the audit chain.
///
/// Fails with [`RegistryError::TargetNotEmpty`] (nothing copied),
/// [`RegistryError::MigrationMismatch`], [`RegistryError::StoreNotClean`],
/// [`RegistryError::AuditBroken`] or a database error naming the location.
pub fn migrate(
    data_dir: &Path,
    from: &RegistryLocation,
    to: &RegistryLocation,
    store: &StoreLocation,
) -> Result<MigrationReport, RegistryError> {
    let source = Registry::open_at(data_dir, from, store)?;
    let target = Registry::open_at(data_dir, to, store)?;
    for (table, _) in
        TABLE_COLUMNS.iter().filter(|(t, _)| !REPLACED_TABLES.contains(t) && *t != FIELD_KEY_TABLE)
    {
        let rows = table_rows(&target.db, table)?;
        if rows > 0 {
            return Err(RegistryError::TargetNotEmpty {
                location: target.db.location().to_path_buf(),
                table: (*table).to_owned(),
                rows,
            });
        }
    }
    let copied = copy_tables(&source.db, &target.db)?;
    for (table, expected) in &copied {
        let found = table_rows(&target.db, table)?;
        if found != *expected {
            return Err(RegistryError::MigrationMismatch {
                location: target.db.location().to_path_buf(),
                table: table.clone(),
                expected: *expected,
                found,
            });
        }
    }
    let problems: Vec<StoreProblem> =
        target.store_check_full()?.into_iter().filter(StoreProblem::is_fatal).collect();
    if !problems.is_empty() {
        return Err(RegistryError::StoreNotClean {
            path: target.store.location().to_string().into(),
            problems,
        });
    }
    let report = audit::verify(&target.db)?;
    let audit_rows = copied.iter().find(|(t, _)| t == "audit_log").map_or(0, |(_, n)| *n);
    if report.entries != audit_rows {
        return Err(RegistryError::MigrationMismatch {
            location: target.db.location().to_path_buf(),
            table: "audit_log (verified chain)".to_owned(),
            expected: audit_rows,
            found: report.entries,
        });
    }
    let files_checked = copied.iter().find(|(t, _)| t == "files").map_or(0, |(_, n)| *n);
    Ok(MigrationReport { tables: copied, files_checked, audit: report })
}
