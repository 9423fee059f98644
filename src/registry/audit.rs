//! The audit trail: who did what to which licence or run, when and why, as an append-only,
//! hash-chained table (`audit_log`).
//!
//! Entry `n` stores `prev_hash` (the hash of entry `n − 1`, 64 zeros for the first) and
//! `hash = SHA-256(prev_hash as 32 raw bytes ‖ canonical JSON of the entry)`, where the
//! canonical JSON is the object `{action, at, details, operator, reason, seq, subject}` with keys
//! sorted at every level and no whitespace (`at` exactly as stored, RFC 3339 UTC). Because the
//! sequence number is inside the hashed entry and each hash covers the previous one, editing,
//! deleting, inserting or reordering an entry breaks the chain at (or just after) the entry
//! concerned, and [`verify`] names the first bad sequence number.
//!
//! An entry is appended in the same transaction as what it records, so a killed process leaves
//! neither a licence without its entry nor an entry without its licence.
//!
//! Limits: the chain is not keyed. Someone who can write the database and recompute every later
//! hash can rewrite history, and dropping the newest entries leaves a shorter valid chain. Keep the
//! head hash elsewhere (the backup manifest records it) to detect that.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::RegistryError;
use super::db::{ColumnError, Db, vals};
use super::encode::{get_time, get_u64, parse_time, time_text};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Action names the registry itself writes. Any other string is accepted too (sharing queries,
/// denials, copies, check requests…).
pub mod action {
    pub const ISSUED: &str = "issued";
    pub const CHANGED: &str = "changed";
    pub const REVOKED: &str = "revoked";
    pub const RUN_STARTED: &str = "run_started";
    pub const RUN_FINISHED: &str = "run_finished";
    pub const VERIFY: &str = "verify";
    pub const BACKUP: &str = "backup";
    pub const RESTORE: &str = "restore";
    /// `elicence init --production`: from here on development keys are refused.
    pub const MARKED_PRODUCTION: &str = "marked_production";
    /// A catalog version published: from here on it decides every department's rights.
    pub const CATALOG_PUBLISHED: &str = "catalog_published";
    /// `elicence secrets rotate`: every sealed value sealed again with a new data key.
    pub const FIELD_KEY_ROTATED: &str = "field_key_rotated";
}

/// One thing that happened, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// What happened: `issued`, `revoked`, `query`, … (see [`action`]).
    pub action: String,
    /// Who: `--operator` or the OS user.
    pub operator: String,
    pub at: DateTime<Utc>,
    /// To what: a licence identifier, `run:<n>`, a backup folder…
    pub subject: String,
    /// Why, when there is a reason (revocation reason, query reason 事由).
    pub reason: Option<String>,
    /// Further facts as a JSON value (stored canonically).
    pub details: Value,
}

/// An entry as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// A chain that verified: how many entries and the head hash (`None` for an empty trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub entries: u64,
    pub head: Option<String>,
}

/// Where the chain first breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audit trail broken at entry {seq}: {reason}")]
pub struct AuditBreak {
    pub seq: u64,
    pub reason: AuditBreakReason,
}

/// How an entry fails verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditBreakReason {
    /// Entry `seq` is absent: the next stored entry has sequence number `found` (deleted entry).
    Missing { found: u64 },
    /// `prev_hash` is not the previous entry's hash (entry inserted, deleted or moved).
    PrevHashMismatch { stored: String, expected: String },
    /// The entry does not hash to its stored hash (entry edited).
    HashMismatch { stored: String, computed: String },
    /// A stored field no longer parses (time, details JSON, hash hex).
    Unreadable { field: &'static str },
}

impl fmt::Display for AuditBreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditBreakReason::Missing { found } => {
                write!(f, "entry missing (next stored entry is {found})")
            }
            AuditBreakReason::PrevHashMismatch { stored, expected } => {
                write!(
                    f,
                    "prev_hash is {stored}, expected {expected} (entry inserted, deleted or moved)"
                )
            }
            AuditBreakReason::HashMismatch { stored, computed } => {
                write!(f, "hash is {stored}, content hashes to {computed} (entry edited)")
            }
            AuditBreakReason::Unreadable { field } => write!(f, "{field} does not parse"),
        }
    }
}

/// Writes `value` as canonical JSON: object keys sorted (by UTF-8 bytes) at every level, no
/// whitespace, strings escaped as serde_json escapes them. Independent of serde_json's
/// `preserve_order` feature.
pub fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical_json(v, out);
                }
            }
            out.push('}');
        }
    }
}

fn push_json_string(s: &str, out: &mut String) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// The hash of one entry given its stored fields.
fn entry_hash(
    prev_hash: &[u8; 32],
    seq: u64,
    at: &str,
    action: &str,
    operator: &str,
    subject: &str,
    reason: Option<&str>,
    details: &Value,
) -> String {
    let object = serde_json::json!({
        "action": action,
        "at": at,
        "details": details,
        "operator": operator,
        "reason": reason,
        "seq": seq,
        "subject": subject,
    });
    let mut canonical = String::new();
    canonical_json(&object, &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok().map(|()| out)
}

/// Appends `entry` after the current head. Call inside the write transaction ([`Db::write`])
/// that does what the entry records: writers are serialised there (SQLite's write lock,
/// PostgreSQL's advisory lock), so the head cannot move under it and the trail stays one chain
/// however many processes write.
pub(crate) fn append(db: &Db, entry: &AuditEntry) -> Result<AuditRecord, RegistryError> {
    let head = read_head(db)?;
    append_after(db, head, entry)
}

/// Appends `entries` in order after the current head, in the caller's write transaction (as
/// [`append`]); returns their sequence numbers. The head is read once: inside the transaction
/// nobody else moves it.
pub(crate) fn append_all(db: &Db, entries: &[&AuditEntry]) -> Result<Vec<u64>, RegistryError> {
    let mut head = read_head(db)?;
    let mut seqs = Vec::with_capacity(entries.len());
    for entry in entries {
        let record = append_after(db, head, entry)?;
        seqs.push(record.seq);
        head = (record.seq.saturating_add(1), record.hash);
    }
    Ok(seqs)
}

/// The sequence number the next entry gets and the hash it chains to.
fn read_head(db: &Db) -> Result<(u64, String), RegistryError> {
    let head: Option<(i64, String)> = db.query_opt(
        "read audit head",
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(match head {
        Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0) + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    })
}

/// Stores `entry` as number `seq` chained to `prev_hash` (from [`read_head`]).
fn append_after(
    db: &Db,
    (seq, prev_hash): (u64, String),
    entry: &AuditEntry,
) -> Result<AuditRecord, RegistryError> {
    let prev_bytes = decode_hash(&prev_hash).ok_or_else(|| {
        RegistryError::AuditBroken(AuditBreak {
            seq: seq.saturating_sub(1),
            reason: AuditBreakReason::Unreadable { field: "hash" },
        })
    })?;
    let at = time_text(entry.at);
    let mut details = String::new();
    canonical_json(&entry.details, &mut details);
    let hash = entry_hash(
        &prev_bytes,
        seq,
        &at,
        &entry.action,
        &entry.operator,
        &entry.subject,
        entry.reason.as_deref(),
        &entry.details,
    );
    db.execute(
        "append audit entry",
        "INSERT INTO audit_log (seq, at, action, operator, subject, reason, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &vals![
            seq,
            at.as_str(),
            &entry.action,
            &entry.operator,
            &entry.subject,
            &entry.reason,
            details,
            prev_hash.as_str(),
            hash.as_str()
        ],
    )?;
    // The entry as stored: its time at the stored (microsecond) precision.
    let stored = AuditEntry { at: parse_time(&at).unwrap_or(entry.at), ..entry.clone() };
    Ok(AuditRecord { seq, entry: stored, prev_hash, hash })
}

/// Raw stored columns of one entry.
struct StoredRow {
    seq: i64,
    at: String,
    action: String,
    operator: String,
    subject: String,
    reason: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

/// Recomputes the whole chain in sequence order.
///
/// Returns the number of entries and the head hash, or [`RegistryError::AuditBroken`] naming the
/// first bad entry; database errors as usual.
pub(crate) fn verify(db: &Db) -> Result<AuditReport, RegistryError> {
    let rows = db.query(
        "read audit trail",
        "SELECT seq, at, action, operator, subject, reason, details, prev_hash, hash
         FROM audit_log ORDER BY seq",
        &[],
        |r| {
            Ok(StoredRow {
                seq: r.get(0)?,
                at: r.get(1)?,
                action: r.get(2)?,
                operator: r.get(3)?,
                subject: r.get(4)?,
                reason: r.get(5)?,
                details: r.get(6)?,
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        },
    )?;
    let mut expected_seq: u64 = 1;
    let mut prev = GENESIS_HASH.to_owned();
    for row in rows {
        let broken = |reason| RegistryError::AuditBroken(AuditBreak { seq: expected_seq, reason });
        let found = u64::try_from(row.seq).unwrap_or(0);
        if found != expected_seq {
            return Err(broken(AuditBreakReason::Missing { found }));
        }
        if row.prev_hash != prev {
            return Err(broken(AuditBreakReason::PrevHashMismatch {
                stored: row.prev_hash,
                expected: prev,
            }));
        }
        let prev_bytes = decode_hash(&row.prev_hash)
            .ok_or_else(|| broken(AuditBreakReason::Unreadable { field: "prev_hash" }))?;
        let details: Value = serde_json::from_str(&row.details)
            .map_err(|_| broken(AuditBreakReason::Unreadable { field: "details" }))?;
        let computed = entry_hash(
            &prev_bytes,
            found,
            &row.at,
            &row.action,
            &row.operator,
            &row.subject,
            row.reason.as_deref(),
            &details,
        );
        if computed != row.hash {
            return Err(broken(AuditBreakReason::HashMismatch { stored: row.hash, computed }));
        }
        prev = row.hash;
        expected_seq += 1;
    }
    let entries = expected_seq - 1;
    Ok(AuditReport { entries, head: (entries > 0).then_some(prev) })
}

/// Up to `limit` stored entries with `seq > after`, in order (no verification).
pub(crate) fn entries(db: &Db, after: u64, limit: u32) -> Result<Vec<AuditRecord>, RegistryError> {
    db.query(
        "read audit trail",
        "SELECT seq, at, action, operator, subject, reason, details, prev_hash, hash
         FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        &vals![after, u64::from(limit)],
        |r| {
            let details: String = r.get(6)?;
            let details =
                serde_json::from_str(&details).map_err(|e| ColumnError::new(6, e.to_string()))?;
            Ok(AuditRecord {
                seq: get_u64(r, 0)?,
                entry: AuditEntry {
                    at: get_time(r, 1)?,
                    action: r.get(2)?,
                    operator: r.get(3)?,
                    subject: r.get(4)?,
                    reason: r.get(5)?,
                    details,
                },
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_without_whitespace() {
        let v = serde_json::json!({"b": 1, "a": {"z": [1, {"y": null, "x": "中\"文"}], "c": true}});
        let mut out = String::new();
        canonical_json(&v, &mut out);
        assert_eq!(out, r#"{"a":{"c":true,"z":[1,{"x":"中\"文","y":null}]},"b":1}"#);
    }

    #[test]
    fn hash_depends_on_every_field_and_the_previous_hash() {
        let zero = [0u8; 32];
        let base = entry_hash(&zero, 1, "t", "issued", "op", "id", None, &Value::Null);
        assert_eq!(base.len(), 64);
        assert_ne!(base, entry_hash(&[1u8; 32], 1, "t", "issued", "op", "id", None, &Value::Null));
        assert_ne!(base, entry_hash(&zero, 2, "t", "issued", "op", "id", None, &Value::Null));
        assert_ne!(base, entry_hash(&zero, 1, "t", "issued", "op", "id", Some(""), &Value::Null));
        assert_ne!(base, entry_hash(&zero, 1, "t", "revoked", "op", "id", None, &Value::Null));
    }
}
