//! The transparency log (RFC 6962 hashing, RFC 9162 proofs, [`crate::merkle`]): one leaf per
//! issued, changed and revoked version, and signed checkpoints (tree heads) that anyone can
//! mirror and later hold the registry to.
//!
//! # Leaves
//! Leaf `i` is the canonical JSON (keys sorted, no whitespace; [`canonical_json`]) of
//! `{audit_seq, event, files, identifier, time, version}`: the audit entry that recorded the
//! event, `issued`/`changed`/`revoked`, the SHA-256 of each artefact file of the version by kind,
//! the GB/T 36904 identifier, the time as the audit trail stores it, and the version number. Its
//! hash is `SHA-256(0x00 ‖ leaf)`.
//!
//! Leaves follow the audit trail: [`catch_up`] appends, in audit order, a leaf for every
//! lifecycle entry after the newest leaf's. It runs inside the same write transaction as the
//! chunk commit or revocation that wrote the entries (so a killed process leaves neither a
//! version without its leaf nor a leaf without its version), and before every checkpoint (so a
//! registry made before the log existed gets its history as leaves the first time). Indices are
//! dense because appends happen under the registry's writer lock; `UNIQUE (identifier, event)`
//! and `UNIQUE (audit_seq)` make a second leaf for the same event impossible.
//!
//! # Checkpoints
//! A checkpoint is the text [`Checkpoint::body`] (log id, tree size, root hash, time, the audit
//! chain's head) and a detached CMS signature over it made by the caller (`engine::checkpoint`
//! signs with the run's key and, when a TSA is configured, timestamps the signature). The body
//! is what is signed; the other fields of [`Checkpoint`] repeat it for readers and are checked
//! against it when a file is read ([`Checkpoint::from_json`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::RegistryError;
use super::audit::{action, canonical_json};
use super::db::{Db, Val, vals};
use crate::merkle::{self, Hash};

/// Audit actions that append a leaf.
pub const LOGGED_EVENTS: [&str; 3] = [action::ISSUED, action::CHANGED, action::REVOKED];

/// The first line of every checkpoint body (names the format and its version).
pub const CHECKPOINT_HEADER: &str = "elicence transparency log checkpoint v1";

/// Rows of one multi-row leaf insert (6 parameters each).
const INSERT_BATCH: usize = 64;

/// One leaf as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLeaf {
    pub index: u64,
    pub audit_seq: u64,
    pub identifier: String,
    pub event: String,
    /// The leaf's bytes (canonical JSON text).
    pub leaf: String,
    /// `SHA-256(0x00 ‖ leaf)`, hex.
    pub leaf_hash: String,
}

impl LogLeaf {
    /// The leaf's `files` object: artefact kind → SHA-256 (hex).
    pub fn files(&self) -> Vec<(String, String)> {
        let value: Value = serde_json::from_str(&self.leaf).unwrap_or(Value::Null);
        value
            .get("files")
            .and_then(Value::as_object)
            .map(|files| {
                files
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A signed tree head, as stored and as published (`checkpoints/<tree_size>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub log_id: String,
    pub tree_size: u64,
    /// Root hash, hex.
    pub root_hash: String,
    /// When it was made (RFC 3339 UTC).
    pub time: String,
    /// The audit chain's head when it was made: sequence number and hash.
    pub audit_seq: u64,
    pub audit_head: String,
    /// The signed text: [`Checkpoint::body_of`] of the fields above.
    pub body: String,
    /// Detached CMS SignedData over `body` (DER, base64).
    pub signature: String,
}

/// What is wrong with a checkpoint file or row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint: {reason}")]
pub struct CheckpointError {
    pub reason: String,
}

/// The state a checkpoint is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    pub log_id: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    pub audit_seq: u64,
    pub audit_head: String,
}

impl Checkpoint {
    /// The signed text for these fields: one `name value` per line after the header, `\n` line
    /// ends, a final `\n`.
    pub fn body_of(head: &LogHead, time: &str) -> String {
        format!(
            "{CHECKPOINT_HEADER}\nlog_id {}\ntree_size {}\nroot_hash {}\ntime {time}\naudit_seq {}\naudit_head {}\n",
            head.log_id,
            head.tree_size,
            hex::encode(head.root_hash),
            head.audit_seq,
            head.audit_head
        )
    }

    /// A checkpoint of `head` at `time` with its `signature` (DER CMS over the body).
    pub fn new(head: &LogHead, time: &str, signature: &[u8]) -> Checkpoint {
        Checkpoint {
            log_id: head.log_id.clone(),
            tree_size: head.tree_size,
            root_hash: hex::encode(head.root_hash),
            time: time.to_owned(),
            audit_seq: head.audit_seq,
            audit_head: head.audit_head.clone(),
            body: Checkpoint::body_of(head, time),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
        }
    }

    /// Reads a published checkpoint file and checks that its fields are those of its body.
    pub fn from_json(text: &str) -> Result<Checkpoint, CheckpointError> {
        let checkpoint: Checkpoint = serde_json::from_str(text)
            .map_err(|e| CheckpointError { reason: format!("not a checkpoint file: {e}") })?;
        checkpoint.check_body()?;
        Ok(checkpoint)
    }

    /// The root hash as bytes.
    pub fn root(&self) -> Result<Hash, CheckpointError> {
        decode_hash(&self.root_hash).ok_or_else(|| CheckpointError {
            reason: format!("bad root_hash {:?}", self.root_hash),
        })
    }

    /// The signature's DER bytes.
    pub fn signature_der(&self) -> Result<Vec<u8>, CheckpointError> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|e| CheckpointError { reason: format!("signature is not base64: {e}") })
    }

    /// The body must be exactly what the other fields say (the signature covers the body only).
    pub fn check_body(&self) -> Result<(), CheckpointError> {
        let head = LogHead {
            log_id: self.log_id.clone(),
            tree_size: self.tree_size,
            root_hash: self.root()?,
            audit_seq: self.audit_seq,
            audit_head: self.audit_head.clone(),
        };
        if Checkpoint::body_of(&head, &self.time) != self.body {
            return Err(CheckpointError {
                reason: format!(
                    "size {}: the fields do not match the signed body (edited file?)",
                    self.tree_size
                ),
            });
        }
        Ok(())
    }
}

/// One inclusion proof of a leaf in a checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    pub leaf: LogLeaf,
    pub tree_size: u64,
    /// Audit path, hex, leaf level first (RFC 9162 §2.1.3).
    pub audit_path: Vec<String>,
    pub checkpoint: Checkpoint,
}

impl InclusionProof {
    /// Checks the proof: the leaf's hash is `SHA-256(0x00 ‖ leaf)` and the path leads to the
    /// checkpoint's root (RFC 9162 §2.1.3.2).
    pub fn verify(&self) -> Result<(), CheckpointError> {
        let fail = |reason: String| CheckpointError { reason };
        let leaf_hash = merkle::leaf_hash(self.leaf.leaf.as_bytes());
        if hex::encode(leaf_hash) != self.leaf.leaf_hash {
            return Err(fail(format!(
                "leaf {}: stored hash is not its bytes' hash",
                self.leaf.index
            )));
        }
        let path: Option<Vec<Hash>> = self.audit_path.iter().map(|h| decode_hash(h)).collect();
        let path = path.ok_or_else(|| fail("audit path is not hex hashes".to_owned()))?;
        let root = self.checkpoint.root()?;
        if merkle::verify_inclusion(&leaf_hash, self.leaf.index, self.tree_size, &path, &root) {
            Ok(())
        } else {
            Err(fail(format!(
                "leaf {} is not in the tree of checkpoint {}",
                self.leaf.index, self.tree_size
            )))
        }
    }
}

/// What recomputing the log found wrong, by leaf index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum LogProblem {
    /// Indices are not 0, 1, 2, …: a leaf was deleted (or inserted) at `index`.
    Gap { index: u64, found: u64 },
    /// The stored hash is not the hash of the stored leaf bytes.
    HashMismatch { index: u64 },
    /// The leaf says something the registry's own records do not (edited leaf or version).
    Content { index: u64, identifier: String, detail: String },
    /// A lifecycle audit entry has no leaf, or a leaf points at the wrong audit entry
    /// (a reordered or removed leaf).
    Order { index: u64, detail: String },
    /// A checkpoint's root is not the root of the first `tree_size` leaves: some leaf at index
    /// `rewritten_from` or later was rewritten (the bound comes from the largest stored
    /// checkpoint that still matches).
    CheckpointRoot { tree_size: u64, rewritten_from: u64 },
    /// A checkpoint names more leaves than the log has (leaves were removed from the end).
    CheckpointBeyondLog { tree_size: u64, log_size: u64 },
    /// A checkpoint's fields do not match its signed body, or the log id is another log's.
    CheckpointFile { tree_size: u64, detail: String },
}

impl fmt::Display for LogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogProblem::Gap { index, found } => {
                write!(f, "leaf {index}: missing (next stored leaf is {found})")
            }
            LogProblem::HashMismatch { index } => {
                write!(f, "leaf {index}: stored hash is not the hash of its bytes (edited)")
            }
            LogProblem::Content { index, identifier, detail } => {
                write!(f, "leaf {index} ({identifier}): {detail}")
            }
            LogProblem::Order { index, detail } => write!(f, "leaf {index}: {detail}"),
            LogProblem::CheckpointRoot { tree_size, rewritten_from } => write!(
                f,
                "checkpoint {tree_size}: not consistent with the log; a leaf in \
                 {rewritten_from}..{tree_size} was rewritten, removed or reordered"
            ),
            LogProblem::CheckpointBeyondLog { tree_size, log_size } => write!(
                f,
                "checkpoint {tree_size}: the log has only {log_size} leaves (leaves removed)"
            ),
            LogProblem::CheckpointFile { tree_size, detail } => {
                write!(f, "checkpoint {tree_size}: {detail}")
            }
        }
    }
}

pub(crate) fn decode_hash(text: &str) -> Option<Hash> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

/// The log's id (drawn when the log table was created; kept by `migrate` and `backup`).
pub(crate) fn log_id(db: &Db) -> Result<String, RegistryError> {
    db.query_one("read log id", "SELECT log_id FROM log_meta", &[], |r| r.get(0))
}

/// Appends a leaf for every lifecycle audit entry after the newest leaf's, in audit order (see
/// the module docs). Call inside the write transaction that wrote the entries. Returns the
/// number of leaves appended.
pub(crate) fn catch_up(db: &Db) -> Result<u64, RegistryError> {
    let newest: Option<(i64, i64)> = db.query_opt(
        "read newest log leaf",
        "SELECT idx, audit_seq FROM log_leaves ORDER BY idx DESC LIMIT 1",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (mut next, after) = newest.map_or((0, 0), |(idx, seq)| (idx + 1, seq));
    let entries = lifecycle_entries(db, after)?;
    let appended = entries.len() as u64;
    let mut rows: Vec<Val> = Vec::with_capacity(entries.len().min(INSERT_BATCH) * 6);
    let flush = |rows: &mut Vec<Val>| -> Result<(), RegistryError> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len() / 6;
        let values: Vec<String> = (0..n)
            .map(|i| {
                let p = |k: usize| format!("?{}", 6 * i + k);
                format!("({}, {}, {}, {}, {}, {})", p(1), p(2), p(3), p(4), p(5), p(6))
            })
            .collect();
        db.execute(
            "append log leaves",
            &format!(
                "INSERT INTO log_leaves (idx, audit_seq, identifier, event, leaf, leaf_hash)
                 VALUES {}",
                values.join(", ")
            ),
            rows,
        )?;
        rows.clear();
        Ok(())
    };
    for (seq, at, event, identifier, details) in entries {
        let leaf = leaf_bytes(db, seq, &at, &event, &identifier, &details)?;
        let hash = hex::encode(merkle::leaf_hash(leaf.as_bytes()));
        rows.extend([
            Val::Int(next),
            Val::Int(seq),
            Val::Text(identifier),
            Val::Text(event),
            Val::Text(leaf),
            Val::Text(hash),
        ]);
        next += 1;
        if rows.len() >= INSERT_BATCH * 6 {
            flush(&mut rows)?;
        }
    }
    flush(&mut rows)?;
    Ok(appended)
}

/// `(seq, at, action, subject, details)` of one audit entry.
type LifecycleEntry = (i64, String, String, String, String);

/// Up to `limit` lifecycle audit entries after sequence number `after`, in order.
fn lifecycle_entries_page(
    db: &Db,
    after: i64,
    limit: i64,
) -> Result<Vec<LifecycleEntry>, RegistryError> {
    db.query(
        "read lifecycle audit entries",
        "SELECT seq, at, action, subject, details FROM audit_log
         WHERE seq > ?1 AND action IN ('issued', 'changed', 'revoked')
         ORDER BY seq LIMIT ?2",
        &vals![after, limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
}

/// The lifecycle (issued, changed, revoked) audit entries after sequence number `after`, in order.
fn lifecycle_entries(db: &Db, after: i64) -> Result<Vec<LifecycleEntry>, RegistryError> {
    db.query(
        "read lifecycle audit entries",
        "SELECT seq, at, action, subject, details FROM audit_log
         WHERE seq > ?1 AND action IN ('issued', 'changed', 'revoked')
         ORDER BY seq",
        &vals![after],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
}

/// The canonical leaf of one lifecycle audit entry. Issued and changed entries carry the
/// version and its files in their details; a revocation's are read from the version.
fn leaf_bytes(
    db: &Db,
    seq: i64,
    at: &str,
    event: &str,
    identifier: &str,
    details: &str,
) -> Result<String, RegistryError> {
    let inconsistent = |what: String| RegistryError::Inconsistent {
        path: db.location().to_path_buf(),
        what: format!("audit entry {seq} ({event} {identifier}): {what}"),
    };
    let details: Value =
        serde_json::from_str(details).map_err(|e| inconsistent(format!("details: {e}")))?;
    let (version, files) = match (details.get("version"), details.get("files")) {
        (Some(version), Some(Value::Object(files))) if event != action::REVOKED => {
            (version.clone(), Value::Object(files.clone()))
        }
        _ => version_files(db, identifier)?,
    };
    let leaf = json!({
        "audit_seq": seq,
        "event": event,
        "files": files,
        "identifier": identifier,
        "time": at,
        "version": version,
    });
    let mut out = String::new();
    canonical_json(&leaf, &mut out);
    Ok(out)
}

/// The version number and `{kind: sha256}` of the version `identifier`, from the registry.
fn version_files(db: &Db, identifier: &str) -> Result<(Value, Value), RegistryError> {
    let rows = db.query(
        "read version files",
        "SELECT v.version, vf.kind, vf.sha256
         FROM versions v LEFT JOIN version_files vf ON vf.version_id = v.id
         WHERE v.identifier = ?1",
        &vals![identifier],
        |r| Ok((r.get::<i64>(0)?, r.get::<Option<String>>(1)?, r.get::<Option<String>>(2)?)),
    )?;
    let Some((version, _, _)) = rows.first() else {
        return Err(RegistryError::UnknownIdentifier { identifier: identifier.to_owned() });
    };
    let files: Map<String, Value> = rows
        .iter()
        .filter_map(|(_, kind, sha)| Some((kind.clone()?, Value::String(sha.clone()?))))
        .collect();
    Ok((json!(version), Value::Object(files)))
}

fn leaf_from_row(r: &super::db::Row) -> Result<LogLeaf, super::db::ColumnError> {
    Ok(LogLeaf {
        index: super::encode::get_u64(r, 0)?,
        audit_seq: super::encode::get_u64(r, 1)?,
        identifier: r.get(2)?,
        event: r.get(3)?,
        leaf: r.get(4)?,
        leaf_hash: r.get(5)?,
    })
}

const LEAF_COLUMNS: &str = "idx, audit_seq, identifier, event, leaf, leaf_hash";

/// The leaves of one identifier (its issue or change, and its revocation), in index order.
pub(crate) fn leaves_of(db: &Db, identifier: &str) -> Result<Vec<LogLeaf>, RegistryError> {
    db.query(
        "read log leaves of licence",
        &format!("SELECT {LEAF_COLUMNS} FROM log_leaves WHERE identifier = ?1 ORDER BY idx"),
        &vals![identifier],
        leaf_from_row,
    )
}

/// The stored leaf hashes of leaves `start..end`, checking that indices are dense and that
/// each hash reads; for the blocks a proof reads back ([`merkle::Tree`]).
fn leaf_hash_range(db: &Db, start: usize, end: usize) -> Result<Vec<Hash>, RegistryError> {
    let mut hashes = Vec::with_capacity(end.saturating_sub(start));
    let (from, to) =
        (i64::try_from(start).unwrap_or(i64::MAX), i64::try_from(end).unwrap_or(i64::MAX));
    each_leaf_hash_in(db, from, to, |hash| hashes.push(hash))?;
    if hashes.len() != end.saturating_sub(start) {
        return Err(RegistryError::Inconsistent {
            path: db.location().to_path_buf(),
            what: format!(
                "transparency log leaves {start}..{end} are missing; run `elicence log verify`"
            ),
        });
    }
    Ok(hashes)
}

/// The tree of the first `size` leaves (all when `None`), read once in log order.
fn tree_of(db: &Db, size: Option<u64>) -> Result<merkle::Tree, RegistryError> {
    let mut tree = merkle::TreeBuilder::with_block(block_leaves());
    each_leaf_hash(db, size, |hash| tree.push(hash))?;
    Ok(tree.finish())
}

/// Leaves per block of a kept tree ([`merkle::BLOCK_LEAVES`]). `ELICENCE_LOG_BLOCK` sets a
/// smaller block, so that the tests' small logs read blocks back for their proofs.
fn block_leaves() -> usize {
    std::env::var("ELICENCE_LOG_BLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(merkle::BLOCK_LEAVES)
}

/// Hands the stored leaf hashes of the first `size` leaves (all when `None`) to `f` in log
/// order as they are read, checking that indices are dense and that each hash reads.
fn each_leaf_hash(db: &Db, size: Option<u64>, f: impl FnMut(Hash)) -> Result<(), RegistryError> {
    let limit = size.map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
    each_leaf_hash_in(db, 0, limit, f)
}

/// As [`each_leaf_hash`], for the leaves `start..end`.
fn each_leaf_hash_in(
    db: &Db,
    start: i64,
    end: i64,
    mut f: impl FnMut(Hash),
) -> Result<(), RegistryError> {
    let mut next: i64 = start;
    let mut damaged: Option<i64> = None;
    db.for_each_row(
        "read log leaf hashes",
        "SELECT idx, leaf_hash FROM log_leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        &vals![start, end],
        |r| {
            if damaged.is_some() {
                return Ok(());
            }
            let idx: i64 = r.get(0)?;
            let hash = match r.values().get(1) {
                Some(Val::Text(text)) => decode_hash(text),
                _ => None,
            };
            match hash.filter(|_| idx == next) {
                Some(hash) => f(hash),
                None => damaged = Some(next),
            }
            next += 1;
            Ok(())
        },
    )?;
    match damaged {
        None => Ok(()),
        Some(i) => Err(RegistryError::Inconsistent {
            path: db.location().to_path_buf(),
            what: format!(
                "transparency log leaf {i} is missing or damaged; run `elicence log verify`"
            ),
        }),
    }
}

/// The head a checkpoint would sign now: the caller holds a snapshot or write transaction. The
/// root is folded as the leaf hashes stream past (memory O(log n), not the whole log).
pub(crate) fn head(db: &Db) -> Result<LogHead, RegistryError> {
    let mut tree = merkle::RootBuilder::default();
    each_leaf_hash(db, None, |hash| tree.push(hash))?;
    let audit: Option<(i64, String)> = db.query_opt(
        "read audit head",
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (audit_seq, audit_head) = audit.unwrap_or((0, super::audit::GENESIS_HASH.to_owned()));
    Ok(LogHead {
        log_id: log_id(db)?,
        tree_size: tree.size(),
        root_hash: tree.root(),
        audit_seq: u64::try_from(audit_seq).unwrap_or(0),
        audit_head,
    })
}

fn checkpoint_from_row(r: &super::db::Row) -> Result<Checkpoint, super::db::ColumnError> {
    let tree_size = super::encode::get_u64(r, 0)?;
    let body: String = r.get(3)?;
    let field = |name: &str| {
        body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).map(str::to_owned)
    };
    Ok(Checkpoint {
        log_id: field("log_id").unwrap_or_default(),
        tree_size,
        root_hash: r.get(1)?,
        time: r.get(2)?,
        audit_seq: field("audit_seq").and_then(|s| s.parse().ok()).unwrap_or(0),
        audit_head: field("audit_head").unwrap_or_default(),
        body,
        signature: r.get(4)?,
    })
}

/// Every stored checkpoint, smallest tree first.
pub(crate) fn checkpoints(db: &Db) -> Result<Vec<Checkpoint>, RegistryError> {
    db.query(
        "read log checkpoints",
        "SELECT tree_size, root_hash, at, body, signature FROM log_checkpoints ORDER BY tree_size",
        &[],
        checkpoint_from_row,
    )
}

/// The checkpoint of the largest tree.
pub(crate) fn latest_checkpoint(db: &Db) -> Result<Option<Checkpoint>, RegistryError> {
    db.query_opt(
        "read latest log checkpoint",
        "SELECT tree_size, root_hash, at, body, signature FROM log_checkpoints
         ORDER BY tree_size DESC LIMIT 1",
        &[],
        checkpoint_from_row,
    )
}

/// Stores `checkpoint` unless one of its size exists already; returns whether it was stored.
/// Inside the write transaction the root is checked again against the stored leaves (they are
/// append-only, so a checkpoint made from a snapshot is still right, unless someone broke that).
pub(crate) fn record_checkpoint(db: &Db, checkpoint: &Checkpoint) -> Result<bool, RegistryError> {
    let inconsistent =
        |what: String| RegistryError::Inconsistent { path: db.location().to_path_buf(), what };
    checkpoint.check_body().map_err(|e| inconsistent(e.to_string()))?;
    if checkpoint.log_id != log_id(db)? {
        return Err(inconsistent(format!("checkpoint of another log ({})", checkpoint.log_id)));
    }
    let exists: bool = db.query_one(
        "find log checkpoint",
        "SELECT EXISTS (SELECT 1 FROM log_checkpoints WHERE tree_size = ?1)",
        &vals![checkpoint.tree_size],
        |r| r.get(0),
    )?;
    if exists {
        return Ok(false);
    }
    let mut tree = merkle::RootBuilder::default();
    each_leaf_hash(db, Some(checkpoint.tree_size), |hash| tree.push(hash))?;
    if tree.size() != checkpoint.tree_size || hex::encode(tree.root()) != checkpoint.root_hash {
        return Err(inconsistent(format!(
            "checkpoint {} does not match the stored leaves",
            checkpoint.tree_size
        )));
    }
    db.execute(
        "store log checkpoint",
        "INSERT INTO log_checkpoints (tree_size, root_hash, at, body, signature)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &vals![
            checkpoint.tree_size,
            &checkpoint.root_hash,
            &checkpoint.time,
            &checkpoint.body,
            &checkpoint.signature
        ],
    )?;
    Ok(true)
}

/// The leaf hashes of the last checkpoint tree proofs were made in, shared by every connection
/// of the process (a server proves inclusion for every `POST /api/v1/verify`).
static CHECKPOINT_TREE: std::sync::Mutex<Option<CheckpointTree>> = std::sync::Mutex::new(None);

struct CheckpointTree {
    tree_size: u64,
    root: Hash,
    tree: std::sync::Arc<merkle::Tree>,
}

/// The tree of the first `checkpoint.tree_size` leaves. Read from the database once per
/// checkpoint and kept ([`CHECKPOINT_TREE`], as its block roots: n/128 hashes; a proof then
/// takes O(log² n) hashes and reads one block of leaf hashes back) only when it hashes to the
/// checkpoint's root: the root commits to every
/// leaf, so a kept tree is the signed one whatever database it came from, and reading and
/// hashing the whole log per proof (linear in the registry's size) is avoided. A tree that does
/// not hash to its root is returned uncached, and the proofs made from it fail to verify, as
/// before.
fn checkpoint_tree(
    db: &Db,
    checkpoint: &Checkpoint,
) -> Result<std::sync::Arc<merkle::Tree>, RegistryError> {
    let root = checkpoint.root().ok();
    let held = CHECKPOINT_TREE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let (Some(kept), Some(root)) = (held.as_ref(), root)
        && kept.tree_size == checkpoint.tree_size
        && kept.root == root
    {
        return Ok(kept.tree.clone());
    }
    drop(held);
    let tree = std::sync::Arc::new(tree_of(db, Some(checkpoint.tree_size))?);
    if let Some(root) = root
        && tree.size() as u64 == checkpoint.tree_size
        && tree.root() == root
    {
        let mut held = CHECKPOINT_TREE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = Some(CheckpointTree { tree_size: checkpoint.tree_size, root, tree: tree.clone() });
    }
    Ok(tree)
}

/// Inclusion proofs of the leaves of `identifier` in the latest checkpoint (leaves newer than
/// it are left out: they have no signed tree yet). `None` when no checkpoint exists.
pub(crate) fn proofs(
    db: &Db,
    identifier: &str,
) -> Result<(Vec<LogLeaf>, Option<Vec<InclusionProof>>), RegistryError> {
    let leaves = leaves_of(db, identifier)?;
    let Some(checkpoint) = latest_checkpoint(db)? else { return Ok((leaves, None)) };
    let tree = checkpoint_tree(db, &checkpoint)?;
    let mut proofs = Vec::new();
    for leaf in leaves.iter().filter(|l| l.index < checkpoint.tree_size) {
        let index = usize::try_from(leaf.index).unwrap_or(usize::MAX);
        let read = |start, end| leaf_hash_range(db, start, end);
        let path =
            tree.inclusion_proof(index, read)?.ok_or_else(|| RegistryError::Inconsistent {
                path: db.location().to_path_buf(),
                what: format!("no inclusion proof for leaf {index}"),
            })?;
        proofs.push(InclusionProof {
            leaf: leaf.clone(),
            tree_size: checkpoint.tree_size,
            audit_path: path.iter().map(hex::encode).collect(),
            checkpoint: checkpoint.clone(),
        });
    }
    Ok((leaves, Some(proofs)))
}

/// A consistency proof from a tree of `old_size` leaves to one of `new_size` (RFC 9162
/// §2.1.4); `None` unless `old_size <= new_size <=` the log's size.
pub(crate) fn consistency(
    db: &Db,
    old_size: u64,
    new_size: u64,
) -> Result<Option<Vec<Hash>>, RegistryError> {
    let tree = tree_of(db, Some(new_size))?;
    if (tree.size() as u64) < new_size {
        return Ok(None);
    }
    let old = usize::try_from(old_size).unwrap_or(usize::MAX);
    tree.consistency_proof(old, |start, end| leaf_hash_range(db, start, end))
}

/// Recomputes the log from the registry and checks each given (published) checkpoint against
/// it; returns every problem found, by leaf index.
///
/// Checked: dense indices; each stored hash against its bytes; each leaf against the audit
/// entry it names and the version and files the registry holds (an edited leaf, or a leaf whose
/// version was edited after the fact); that leaves follow the lifecycle audit entries one to
/// one in order (a removed or reordered leaf); then for each checkpoint, its body, log id,
/// and its root against the root of the first `tree_size` leaves (recomputed from every leaf,
/// which is what a consistency proof to the current tree would establish). A root that differs
/// is narrowed to the first rewritten leaf with the registry's own checkpoints that still
/// match. Leaves and entries are read a page at a time; memory is a page and 8 bytes a leaf.
pub(crate) fn verify(db: &Db, published: &[Checkpoint]) -> Result<LogReport, RegistryError> {
    let stored = checkpoints(db)?;
    let id = log_id(db)?;
    // The root of every prefix a checkpoint names, taken as the tree is folded: with all the
    // leaves at hand, a checkpoint is consistent exactly when its root is its prefix's root.
    let mut prefix_roots: BTreeMap<u64, Hash> = BTreeMap::new();
    let wanted: BTreeSet<u64> = published.iter().chain(&stored).map(|c| c.tree_size).collect();
    let mut tree = merkle::RootBuilder::default();
    if wanted.contains(&0) {
        prefix_roots.insert(0, tree.root());
    }
    let mut problems = Vec::new();
    // Leaf i records the i-th lifecycle audit entry: one to one, in order. Both are read a page
    // at a time (memory a page's, not the log's: reading them whole took 2 GB at a million).
    let page_rows = verify_page();
    let mut entries = EntryWindow::new(db, page_rows)?;
    let mut logged: Vec<u64> = Vec::new();
    let mut expected_index = 0;
    let mut after: i64 = -1;
    loop {
        let page = db.query(
            "read log leaves",
            &format!("SELECT {LEAF_COLUMNS} FROM log_leaves WHERE idx > ?1 ORDER BY idx LIMIT ?2"),
            &vals![after, page_rows],
            leaf_from_row,
        )?;
        let Some(last) = page.last() else { break };
        after = i64::try_from(last.index).unwrap_or(i64::MAX);
        for leaf in &page {
            if leaf.index != expected_index {
                problems.push(LogProblem::Gap { index: expected_index, found: leaf.index });
            }
            expected_index = leaf.index + 1;
            let computed = merkle::leaf_hash(leaf.leaf.as_bytes());
            if hex::encode(computed) != leaf.leaf_hash {
                problems.push(LogProblem::HashMismatch { index: leaf.index });
            }
            tree.push(computed);
            if wanted.contains(&tree.size()) {
                prefix_roots.insert(tree.size(), tree.root());
            }
            logged.push(leaf.audit_seq);
            check_leaf_entry(db, leaf, &mut entries, &mut problems)?;
        }
        if page.len() < page_rows as usize {
            break;
        }
    }
    logged.sort_unstable();
    let mut after_seq = 0;
    let mut position: u64 = 0;
    loop {
        let page = lifecycle_entries_page(db, after_seq, page_rows)?;
        let Some((last, ..)) = page.last() else { break };
        after_seq = *last;
        for (seq, _, event, identifier, _) in &page {
            if logged.binary_search(&u64::try_from(*seq).unwrap_or(0)).is_err() {
                problems.push(LogProblem::Order {
                    index: position,
                    detail: format!("audit entry {seq} ({event} {identifier}) has no leaf"),
                });
            }
            position += 1;
        }
        if page.len() < page_rows as usize {
            break;
        }
    }
    let size = tree.size();
    let root = tree.root();
    let mut checked = Vec::new();
    for checkpoint in published.iter().chain(&stored) {
        let tree_size = checkpoint.tree_size;
        if let Err(e) = checkpoint.check_body() {
            problems.push(LogProblem::CheckpointFile { tree_size, detail: e.reason });
            continue;
        }
        if checkpoint.log_id != id {
            problems.push(LogProblem::CheckpointFile {
                tree_size,
                detail: format!("log id {} is not this log's ({id})", checkpoint.log_id),
            });
            continue;
        }
        if tree_size > size {
            problems.push(LogProblem::CheckpointBeyondLog { tree_size, log_size: size });
            continue;
        }
        let old_root = checkpoint.root().map_err(|e| RegistryError::Inconsistent {
            path: db.location().to_path_buf(),
            what: e.to_string(),
        })?;
        if prefix_roots.get(&tree_size) != Some(&old_root) {
            let rewritten_from = still_matching(&prefix_roots, &stored, tree_size);
            problems.push(LogProblem::CheckpointRoot { tree_size, rewritten_from });
            continue;
        }
        checked.push(tree_size);
    }
    Ok(LogReport { log_id: id, tree_size: size, root_hash: hex::encode(root), checked, problems })
}

/// Leaves and lifecycle audit entries `verify` reads at a time. `ELICENCE_LOG_VERIFY_PAGE`
/// sets a smaller page, so that the tests' small logs cross page boundaries.
fn verify_page() -> i64 {
    std::env::var("ELICENCE_LOG_VERIFY_PAGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(10_000)
}

/// The lifecycle audit entries around the leaf being checked, read forward a page at a time:
/// leaves come in index order, so the positions asked for never go back.
struct EntryWindow {
    entries: Vec<LifecycleEntry>,
    /// Position (in audit order) of `entries[0]`.
    first: u64,
    /// Sequence number of the last entry read so far.
    last_seq: i64,
    /// Lifecycle entries in the registry.
    total: u64,
    page_rows: i64,
}

impl EntryWindow {
    fn new(db: &Db, page_rows: i64) -> Result<EntryWindow, RegistryError> {
        let total: i64 = db.query_one(
            "count lifecycle audit entries",
            "SELECT count(*) FROM audit_log WHERE action IN ('issued', 'changed', 'revoked')",
            &[],
            |r| r.get(0),
        )?;
        let total = u64::try_from(total).unwrap_or(0);
        Ok(EntryWindow { entries: Vec::new(), first: 0, last_seq: 0, total, page_rows })
    }

    /// The entry at `position`, reading forward as needed.
    fn get(&mut self, db: &Db, position: u64) -> Result<Option<&LifecycleEntry>, RegistryError> {
        while position >= self.first + self.entries.len() as u64 && position < self.total {
            let page = lifecycle_entries_page(db, self.last_seq, self.page_rows)?;
            let Some(last) = page.last() else { break };
            self.last_seq = last.0;
            self.first += self.entries.len() as u64;
            self.entries = page;
        }
        let offset = position.checked_sub(self.first).and_then(|o| usize::try_from(o).ok());
        Ok(offset.and_then(|o| self.entries.get(o)))
    }
}

/// Checks that `leaf` records the lifecycle entry at its own index, and says what it says.
fn check_leaf_entry(
    db: &Db,
    leaf: &LogLeaf,
    entries: &mut EntryWindow,
    problems: &mut Vec<LogProblem>,
) -> Result<(), RegistryError> {
    let total = entries.total;
    let Some((seq, at, event, identifier, details)) = entries.get(db, leaf.index)? else {
        problems.push(LogProblem::Order {
            index: leaf.index,
            detail: format!(
                "records audit entry {}, but there are only {total} lifecycle entries",
                leaf.audit_seq
            ),
        });
        return Ok(());
    };
    if leaf.audit_seq != u64::try_from(*seq).unwrap_or(0) {
        problems.push(LogProblem::Order {
            index: leaf.index,
            detail: format!(
                "names audit entry {} but the lifecycle entry at this position is {seq} \
                 (leaves reordered)",
                leaf.audit_seq
            ),
        });
        return Ok(());
    }
    let expected = leaf_bytes(db, *seq, at, event, identifier, details)?;
    if expected != leaf.leaf {
        problems.push(LogProblem::Content {
            index: leaf.index,
            identifier: leaf.identifier.clone(),
            detail: "the leaf differs from the audit entry and version it records".to_owned(),
        });
    }
    Ok(())
}

/// The largest tree size below `bad_size` among the `stored` checkpoints whose root still
/// matches the leaves (0 when none): the first rewritten leaf is at or after it.
fn still_matching(prefix_roots: &BTreeMap<u64, Hash>, stored: &[Checkpoint], bad_size: u64) -> u64 {
    stored
        .iter()
        .filter(|c| c.tree_size < bad_size)
        .filter(|c| {
            prefix_roots.get(&c.tree_size).is_some_and(|root| hex::encode(root) == c.root_hash)
        })
        .map(|c| c.tree_size)
        .max()
        .unwrap_or(0)
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogReport {
    pub log_id: String,
    pub tree_size: u64,
    pub root_hash: String,
    /// Tree sizes of the checkpoints (given and stored) that the log is consistent with.
    pub checked: Vec<u64>,
    pub problems: Vec<LogProblem>,
}

impl LogReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}
