//! The licence lifecycle (paper and e-licence in step): what a row means for the registry
//! ([`Decision`]), and committing a chunk of decided, rendered and signed rows in one
//! transaction ([`LoadResult`]).
//!
//! # Deciding
//! A row is looked up by its natural key (type code + issuer code + printed number):
//! 1. No version yet → [`Decision::New`], version 1 — unless the type is single-instance, the
//!    row is not a revocation and the holder already has a live licence of that type
//!    ([`Refusal::SingleInstanceConflict`]). A new row that says revoked is registered and
//!    revoked at once.
//! 2. The row says revoked → [`Decision::Revoke`] of the current version, or
//!    [`Decision::AlreadyRevoked`] (counted as unchanged) when it is revoked already.
//! 3. The row's content hash equals the hash of ANY stored version → [`Decision::Unchanged`]
//!    (an old row read again after a later change changes nothing).
//! 4. The current version is revoked → [`Refusal::ChangeAfterRevoke`]: a revoked licence is not
//!    brought back by an export; a person decides.
//! 5. Otherwise → [`Decision::Change`]: version max + 1, the current version superseded.
//!
//! # Within a chunk
//! [`decide_many`] decides rows in input order against the database plus an in-memory overlay
//! holding the effect of every earlier decision of the same call, so two rows of one natural key
//! in one chunk (a licence and its change) get version 1 and version 2, and a holder's new
//! single-instance licence blocks a second one in the same chunk. The caller decides a chunk,
//! renders and signs the rows that need it, then commits that chunk before deciding the next.
//!
//! # Committing
//! [`commit_chunk`] first writes the files of new versions to the store (atomic, content
//! addressed), then in ONE write transaction ([`Db::write`]: SQLite `BEGIN IMMEDIATE`, PostgreSQL
//! under the registry's advisory lock, so concurrent processes commit one after another) decides the chunk again and refuses it
//! with [`RegistryError::StaleDecision`] when anything changed meanwhile (another process
//! loaded the same key), then inserts licences, versions, file references and audit entries and
//! commits, with the chunk's transparency log leaves (`log::catch_up`). Killed before the commit, a chunk leaves only orphan store files; a re-run decides it
//! again from the committed state and ends where an uninterrupted run would.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::audit::{self, AuditEntry, action};
use super::db::{Db, Val, vals};
use super::encode::{date_text, get_hash16, get_u16, time_text};
use super::store::{FileKind, Store, StoredFile};
use super::{NaturalKey, RegistryError, RunId};
use crate::identify::{IdError, LicenceId};
use crate::licence::LicenceStatus;

/// What the registry needs to know about a row to decide what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionInput {
    pub key: NaturalKey,
    /// The caller's hash of the row's content (what makes two rows "the same licence again").
    pub content_hash: [u8; 16],
    /// The status the export states.
    pub status: LicenceStatus,
    /// 持证主体代码: USCC or citizen ID.
    pub holder_code: String,
    /// The catalog type allows one live licence per holder.
    pub single_instance: bool,
}

/// What a row means for the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new licence: version 1 with this identifier. Render and sign it. When the row says
    /// revoked, the commit registers it and revokes it at once.
    New { identifier: LicenceId },
    /// Same content as stored version `identifier`: nothing to do.
    Unchanged { identifier: String },
    /// Changed content: `identifier` (the next version) supersedes the current version
    /// `previous_identifier`. Render and sign it.
    Change { previous_identifier: String, identifier: LicenceId },
    /// The row says revoked and `identifier` (the current version) is live: revoke it.
    Revoke { identifier: String },
    /// The row says revoked and `identifier` is revoked already: nothing to do (unchanged).
    AlreadyRevoked { identifier: String },
    /// The row cannot be loaded; the caller rejects it.
    Refused(Refusal),
}

impl Decision {
    /// The identifier to render and sign, for decisions that create a version: computed here
    /// once and carried as it is through produce and load.
    pub fn new_version(&self) -> Option<&LicenceId> {
        match self {
            Decision::New { identifier } | Decision::Change { identifier, .. } => Some(identifier),
            _ => None,
        }
    }
}

/// Why a row is refused by the registry (a reject, not a failure of the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Single-instance type: the holder already has the live licence `live_identifier`.
    SingleInstanceConflict { live_identifier: String },
    /// The licence was revoked (`revoked_identifier`); an export row with other content does not
    /// re-issue it.
    ChangeAfterRevoke { revoked_identifier: String },
    /// The natural key does not make a GB/T 36904 identifier.
    InvalidKey { error: IdError },
}

impl Refusal {
    /// A short rule name for the rejects file.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::SingleInstanceConflict { .. } => "single_instance",
            Refusal::ChangeAfterRevoke { .. } => "change_after_revoke",
            Refusal::InvalidKey { .. } => "identifier",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::SingleInstanceConflict { live_identifier } => {
                write!(
                    f,
                    "holder already has live licence {live_identifier} of this single-instance type"
                )
            }
            Refusal::ChangeAfterRevoke { revoked_identifier } => {
                write!(
                    f,
                    "licence {revoked_identifier} is revoked; changed content does not re-issue it"
                )
            }
            Refusal::InvalidKey { error } => write!(f, "no identifier for this key: {error}"),
        }
    }
}

/// The paper licence's revocation as the export states it (Art. 10: the e-licence is revoked in
/// step with the paper): its 注销日期 and, when the export has one, its 注销原因.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperRevocation {
    pub on: NaiveDate,
    pub reason: Option<String>,
}

/// One decided row, rendered and signed when its decision creates a version, ready to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadItem {
    /// What the decision was made from (checked again inside the commit).
    pub input: DecisionInput,
    pub decision: Decision,
    pub holder_name: String,
    pub issue_date: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    /// The face fields as a JSON object, for queries.
    pub fields_json: String,
    /// Signed PDF; required for New and Change, ignored otherwise.
    pub pdf: Option<Vec<u8>>,
    /// Signed XML; required for New and Change, ignored otherwise.
    pub xml: Option<Vec<u8>>,
    /// Sealed OFD, when the run writes OFD; ignored unless the decision creates a version.
    pub ofd: Option<Vec<u8>>,
    /// A decoded and verified scan of the paper licence (存档副本), PNG.
    pub archive_image: Option<Vec<u8>>,
    /// Where the row came from: `file:sheet:line`.
    pub source: String,
    /// For a row that says revoked: the paper revocation's date and reason, when the pipeline
    /// maps them (`[status] revoked_on`, `revoked_reason`); else the revocation takes effect
    /// on the day it is recorded.
    pub revocation: Option<PaperRevocation>,
}

/// What committing one item did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadResult {
    Issued {
        identifier: String,
    },
    Changed {
        identifier: String,
        superseded: String,
    },
    /// Revoked by this row (including a new licence registered already revoked).
    Revoked {
        identifier: String,
    },
    /// Staged for review (`review_item`), nothing issued: the version `identifier` (or the
    /// revocation of `identifier`) waits for a reviewer's approval.
    Pending {
        review_item: i64,
        identifier: String,
    },
    /// Nothing written (same content, or already revoked).
    Unchanged {
        identifier: String,
    },
    Rejected {
        refusal: Refusal,
    },
}

/// A stored version as the decision needs it.
#[derive(Debug, Clone)]
struct KnownVersion {
    version: u16,
    content_hash: [u8; 16],
    identifier: String,
}

/// The current version of a key.
#[derive(Debug, Clone)]
struct Current {
    identifier: String,
    revoked: bool,
    holder_code: String,
}

/// A key's state: from the database, then updated by each decision of the call.
#[derive(Debug, Clone, Default)]
struct KeyState {
    versions: Vec<KnownVersion>,
    current: Option<Current>,
}

impl KeyState {
    fn is_live_for(&self, holder_code: &str) -> Option<&str> {
        self.current
            .as_ref()
            .filter(|c| !c.revoked && c.holder_code == holder_code)
            .map(|c| c.identifier.as_str())
    }
}

/// The effect of the decisions made so far in one [`decide_many`] call or one commit.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    keys: BTreeMap<NaturalKey, KeyState>,
}

/// Most keys one prefetch query asks for. A query asks for a power of two of keys (the list
/// padded with its last key), so a backend caches at most a handful of statement shapes.
const PREFETCH_KEYS: usize = 256;

/// Loads the stored state of every key in `keys` that `overlay` does not hold yet, up to
/// [`PREFETCH_KEYS`] keys a query: one round trip per chunk instead of one per row (what makes
/// PostgreSQL keep up with SQLite).
pub(super) fn prefetch<'a>(
    db: &Db,
    overlay: &mut Overlay,
    keys: impl IntoIterator<Item = &'a NaturalKey>,
) -> Result<(), RegistryError> {
    let missing: BTreeSet<&NaturalKey> =
        keys.into_iter().filter(|k| !overlay.keys.contains_key(*k)).collect();
    let missing: Vec<&NaturalKey> = missing.into_iter().collect();
    for batch in missing.chunks(PREFETCH_KEYS) {
        let Some(last) = batch.last() else { continue };
        let width = batch.len().next_power_of_two();
        let filter: Vec<String> = (0..width)
            .map(|i| {
                format!(
                    "(l.type_code = ?{} AND l.issuer_code = ?{} AND l.printed_no = ?{})",
                    3 * i + 1,
                    3 * i + 2,
                    3 * i + 3
                )
            })
            .collect();
        let params: Vec<Val> = batch
            .iter()
            .chain(std::iter::repeat_n(last, width - batch.len()))
            .flat_map(|k| {
                [Val::from(&k.type_code), Val::from(&k.issuer_code), Val::from(&k.printed_no)]
            })
            .collect();
        let sql = format!(
            "SELECT l.type_code, l.issuer_code, l.printed_no, v.version, v.content_hash,
                    v.identifier, v.superseded_by IS NULL, v.revoked_at IS NOT NULL, v.holder_code
             FROM versions v JOIN licences l ON l.id = v.licence_id
             WHERE {}
             ORDER BY l.id, v.version",
            filter.join(" OR ")
        );
        let rows = db.query("read licence versions", &sql, &params, |r| {
            Ok((
                NaturalKey { type_code: r.get(0)?, issuer_code: r.get(1)?, printed_no: r.get(2)? },
                KnownVersion {
                    version: get_u16(r, 3)?,
                    content_hash: get_hash16(r, 4)?,
                    identifier: r.get(5)?,
                },
                r.get::<bool>(6)?,
                r.get::<bool>(7)?,
                r.get::<String>(8)?,
            ))
        })?;
        for key in batch {
            overlay.keys.insert((*key).clone(), KeyState::default());
        }
        for (key, known, is_current, revoked, holder_code) in rows {
            let state = overlay.keys.entry(key).or_default();
            if is_current {
                state.current =
                    Some(Current { identifier: known.identifier.clone(), revoked, holder_code });
            }
            state.versions.push(known);
        }
        for key in batch {
            if let Some(state) = overlay.keys.get(*key)
                && !state.versions.is_empty()
                && state.current.is_none()
            {
                return Err(RegistryError::Inconsistent {
                    path: db.location().to_path_buf(),
                    what: format!("licence {key} has versions but no current version"),
                });
            }
        }
    }
    Ok(())
}

/// A live licence of `type_code` held by `holder_code`, other than `key`, in the database or the
/// overlay (the overlay wins for the keys it holds).
fn live_for_holder(
    db: &Db,
    overlay: &Overlay,
    key: &NaturalKey,
    holder_code: &str,
) -> Result<Option<String>, RegistryError> {
    let rows = db.query(
        "read live licences of holder",
        "SELECT l.issuer_code, l.printed_no, v.identifier
         FROM versions v JOIN licences l ON l.id = v.licence_id
         WHERE v.holder_code = ?1 AND v.superseded_by IS NULL AND v.revoked_at IS NULL
           AND l.type_code = ?2
         ORDER BY v.identifier",
        &vals![holder_code, &key.type_code],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)),
    )?;
    for (issuer_code, printed_no, identifier) in rows {
        let other = NaturalKey { type_code: key.type_code.clone(), issuer_code, printed_no };
        if other != *key && !overlay.keys.contains_key(&other) {
            return Ok(Some(identifier));
        }
    }
    Ok(overlay
        .keys
        .iter()
        .filter(|(k, _)| *k != key && k.type_code == key.type_code)
        .find_map(|(_, state)| state.is_live_for(holder_code).map(str::to_owned)))
}

/// Decides one row against the database and `overlay`, and records the decision's effect in
/// `overlay`.
pub(crate) fn decide_one(
    db: &Db,
    overlay: &mut Overlay,
    input: &DecisionInput,
) -> Result<Decision, RegistryError> {
    prefetch(db, overlay, [&input.key])?;
    let revoked_row = input.status == LicenceStatus::Revoked;
    let state = overlay.keys.get(&input.key).cloned().unwrap_or_default();
    let Some(current) = &state.current else {
        // 1. A new licence.
        if input.single_instance
            && !revoked_row
            && let Some(live_identifier) =
                live_for_holder(db, overlay, &input.key, &input.holder_code)?
        {
            return Ok(Decision::Refused(Refusal::SingleInstanceConflict { live_identifier }));
        }
        let identifier = match input.key.identifier(1) {
            Ok(id) => id,
            Err(error) => return Ok(Decision::Refused(Refusal::InvalidKey { error })),
        };
        let entry = overlay.keys.entry(input.key.clone()).or_default();
        entry.versions.push(KnownVersion {
            version: 1,
            content_hash: input.content_hash,
            identifier: identifier.to_string(),
        });
        entry.current = Some(Current {
            identifier: identifier.to_string(),
            revoked: revoked_row,
            holder_code: input.holder_code.clone(),
        });
        return Ok(Decision::New { identifier });
    };
    // 2. A revocation.
    if revoked_row {
        let identifier = current.identifier.clone();
        if current.revoked {
            return Ok(Decision::AlreadyRevoked { identifier });
        }
        if let Some(c) = overlay.keys.get_mut(&input.key).and_then(|s| s.current.as_mut()) {
            c.revoked = true;
        }
        return Ok(Decision::Revoke { identifier });
    }
    // 3. Same content as any stored version.
    if let Some(same) = state.versions.iter().find(|v| v.content_hash == input.content_hash) {
        return Ok(Decision::Unchanged { identifier: same.identifier.clone() });
    }
    // 4. No change of a revoked licence.
    if current.revoked {
        return Ok(Decision::Refused(Refusal::ChangeAfterRevoke {
            revoked_identifier: current.identifier.clone(),
        }));
    }
    // 5. The next version.
    let max = state.versions.iter().map(|v| v.version).max().unwrap_or(0);
    let version = max + 1;
    let identifier = match input.key.identifier(version) {
        Ok(id) => id,
        Err(IdError::BadVersion { .. }) => {
            return Err(RegistryError::VersionsExhausted { key: input.key.clone() });
        }
        Err(error) => return Ok(Decision::Refused(Refusal::InvalidKey { error })),
    };
    let previous_identifier = current.identifier.clone();
    let entry = overlay.keys.entry(input.key.clone()).or_default();
    entry.versions.push(KnownVersion {
        version,
        content_hash: input.content_hash,
        identifier: identifier.to_string(),
    });
    entry.current = Some(Current {
        identifier: identifier.to_string(),
        revoked: false,
        holder_code: input.holder_code.clone(),
    });
    Ok(Decision::Change { previous_identifier, identifier })
}

impl Overlay {
    /// Records the effect a staged decision will have once approved (a run under review
    /// decides its later rows as if its earlier staged rows were issued: a licence and its
    /// 变更 in different chunks become version 1 and version 2, as in a run that issues).
    /// The key's stored state must be in the overlay already ([`prefetch`]).
    pub(super) fn assume(&mut self, key: &NaturalKey, staged: &StagedEffect) {
        let state = self.keys.entry(key.clone()).or_default();
        match staged {
            StagedEffect::Version { version, identifier, content_hash, holder_code, revoked } => {
                state.versions.push(KnownVersion {
                    version: *version,
                    content_hash: *content_hash,
                    identifier: identifier.clone(),
                });
                state.current = Some(Current {
                    identifier: identifier.clone(),
                    revoked: *revoked,
                    holder_code: holder_code.clone(),
                });
            }
            StagedEffect::Revoke => {
                if let Some(c) = state.current.as_mut() {
                    c.revoked = true;
                }
            }
        }
    }
}

/// What a pending review item will do to its licence (see [`Overlay::assume`]).
#[derive(Debug, Clone)]
pub(super) enum StagedEffect {
    /// A new version (issue or change), revoked at once when its row says revoked.
    Version {
        version: u16,
        identifier: String,
        content_hash: [u8; 16],
        holder_code: String,
        revoked: bool,
    },
    /// The current version is revoked.
    Revoke,
}

/// Decides `inputs` in order, each seeing the decisions before it (see the module docs).
pub(crate) fn decide_many(
    db: &Db,
    inputs: &[DecisionInput],
) -> Result<Vec<Decision>, RegistryError> {
    decide_many_with(db, &mut Overlay::default(), inputs)
}

/// Decides `inputs` in order against the database and `overlay`, which keeps their effect: a
/// dry run passes the same overlay for every chunk, so that later chunks see the earlier ones'
/// decisions although nothing is committed.
pub(crate) fn decide_many_with(
    db: &Db,
    overlay: &mut Overlay,
    inputs: &[DecisionInput],
) -> Result<Vec<Decision>, RegistryError> {
    prefetch(db, overlay, inputs.iter().map(|i| &i.key))?;
    inputs.iter().map(|input| decide_one(db, overlay, input)).collect()
}

/// Writes the files of each item that creates a version; returns them per item.
/// Every item that creates a version must carry its signed PDF and XML; checked before anything
/// is written.
pub(super) fn require_artefacts(items: &[LoadItem]) -> Result<(), RegistryError> {
    for item in items.iter().filter(|i| i.decision.new_version().is_some()) {
        for (kind, bytes) in [(FileKind::Pdf, &item.pdf), (FileKind::Xml, &item.xml)] {
            if bytes.as_ref().is_none_or(|b| b.is_empty()) {
                return Err(RegistryError::MissingArtefact { row: item.source.clone(), kind });
            }
        }
    }
    Ok(())
}

pub(super) fn store_files(
    store: &Store,
    pack_segments: bool,
    items: &[LoadItem],
) -> Result<(Vec<Vec<StoredFile>>, Option<super::segments::Packed>), RegistryError> {
    // Every file of the chunk in one batch: one durability barrier instead of two per file.
    let mut files: Vec<(FileKind, &[u8])> = Vec::new();
    let mut per_item = Vec::with_capacity(items.len());
    for item in items {
        let before = files.len();
        if item.decision.new_version().is_some() {
            for (kind, bytes) in [
                (FileKind::Pdf, &item.pdf),
                (FileKind::Xml, &item.xml),
                (FileKind::Ofd, &item.ofd),
                (FileKind::Archive, &item.archive_image),
            ] {
                if let Some(bytes) = bytes {
                    files.push((kind, bytes.as_slice()));
                }
            }
        }
        per_item.push(files.len() - before);
    }
    let (stored, packed) = if pack_segments {
        super::segments::store_packed(store, &files)?
    } else {
        (store.put_many(&files)?, None)
    };
    let mut stored = stored.into_iter();
    Ok((per_item.into_iter().map(|n| stored.by_ref().take(n).collect()).collect(), packed))
}

/// Stores files, then checks and records the whole chunk in one transaction (module docs).
pub(crate) fn commit_chunk(
    db: &Db,
    store: &Store,
    pack_segments: bool,
    run: RunId,
    items: Vec<LoadItem>,
    operator: &str,
    at: DateTime<Utc>,
) -> Result<Vec<LoadResult>, RegistryError> {
    require_artefacts(&items)?;
    let (files, packed) = store_files(store, pack_segments, &items)?;
    db.write("commit chunk", |tx| {
        super::require_open_run(tx, run)?;
        let mut overlay = Overlay::default();
        prefetch(tx, &mut overlay, items.iter().map(|i| &i.input.key))?;
        for item in &items {
            let found = decide_one(tx, &mut overlay, &item.input)?;
            if found != item.decision {
                return Err(RegistryError::StaleDecision(Box::new(super::StaleDecision {
                    source: item.source.clone(),
                    expected: item.decision.clone(),
                    found,
                })));
            }
        }
        if let Some(packed) = &packed {
            super::segments::record(tx, packed)?;
        }
        let mut results = Vec::with_capacity(items.len());
        for (item, files) in items.iter().zip(&files) {
            results.push(apply(tx, run, item, files, operator, at)?);
        }
        // The transparency log's leaves for this chunk's events, in the same transaction.
        super::log::catch_up(tx)?;
        Ok(results)
    })
}

/// Records one checked item inside the chunk's transaction.
pub(super) fn apply(
    tx: &Db,
    run: RunId,
    item: &LoadItem,
    files: &[StoredFile],
    operator: &str,
    at: DateTime<Utc>,
) -> Result<LoadResult, RegistryError> {
    let key = &item.input.key;
    match &item.decision {
        Decision::New { identifier } => {
            let identifier = &identifier.to_string();
            let licence_id = tx.insert_id(
                "insert licence",
                "INSERT INTO licences (type_code, issuer_code, printed_no, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                &vals![&key.type_code, &key.issuer_code, &key.printed_no, time_text(at)],
            )?;
            insert_version(tx, run, licence_id, item, identifier, 1, files, at)?;
            audit::append(
                tx,
                &AuditEntry {
                    action: action::ISSUED.to_owned(),
                    operator: operator.to_owned(),
                    at,
                    subject: identifier.clone(),
                    reason: None,
                    details: version_details(run, item, 1, files),
                },
            )?;
            if item.input.status == LicenceStatus::Revoked {
                revoke_in_tx(tx, identifier, item, operator, run, at)?;
                return Ok(LoadResult::Revoked { identifier: identifier.clone() });
            }
            Ok(LoadResult::Issued { identifier: identifier.clone() })
        }
        Decision::Change { previous_identifier, identifier } => {
            let version = &identifier.version();
            let identifier = &identifier.to_string();
            let licence_id: i64 = tx.query_one(
                "find licence",
                "SELECT id FROM licences
                 WHERE type_code = ?1 AND issuer_code = ?2 AND printed_no = ?3",
                &vals![&key.type_code, &key.issuer_code, &key.printed_no],
                |r| r.get(0),
            )?;
            let superseded = tx.execute(
                "supersede version",
                "UPDATE versions SET superseded_by = ?1, superseded_at = ?2
                 WHERE identifier = ?3 AND superseded_by IS NULL",
                &vals![identifier, time_text(at), previous_identifier],
            )?;
            if superseded != 1 {
                return Err(RegistryError::Inconsistent {
                    path: tx.location().to_path_buf(),
                    what: format!("{previous_identifier} is not the current version of {key}"),
                });
            }
            insert_version(tx, run, licence_id, item, identifier, *version, files, at)?;
            let mut details = version_details(run, item, *version, files);
            if let Some(obj) = details.as_object_mut() {
                obj.insert("supersedes".to_owned(), json!(previous_identifier));
            }
            audit::append(
                tx,
                &AuditEntry {
                    action: action::CHANGED.to_owned(),
                    operator: operator.to_owned(),
                    at,
                    subject: identifier.clone(),
                    reason: None,
                    details,
                },
            )?;
            Ok(LoadResult::Changed {
                identifier: identifier.clone(),
                superseded: previous_identifier.clone(),
            })
        }
        Decision::Revoke { identifier } => {
            revoke_in_tx(tx, identifier, item, operator, run, at)?;
            Ok(LoadResult::Revoked { identifier: identifier.clone() })
        }
        Decision::Unchanged { identifier } | Decision::AlreadyRevoked { identifier } => {
            Ok(LoadResult::Unchanged { identifier: identifier.clone() })
        }
        Decision::Refused(refusal) => Ok(LoadResult::Rejected { refusal: refusal.clone() }),
    }
}

/// The reason recorded for a revocation found in an export: the paper's 注销原因 when the
/// export states one, and always where it was found.
fn export_reason(item: &LoadItem) -> String {
    match item.revocation.as_ref().and_then(|r| r.reason.as_deref()) {
        Some(reason) => format!("{reason} (revoked in export {})", item.source),
        None => format!("revoked in export {}", item.source),
    }
}

fn version_details(
    run: RunId,
    item: &LoadItem,
    version: u16,
    files: &[StoredFile],
) -> serde_json::Value {
    let files: serde_json::Map<String, serde_json::Value> =
        files.iter().map(|f| (f.kind.as_str().to_owned(), json!(f.sha256))).collect();
    json!({
        "run": run.0,
        "version": version,
        "type_code": item.input.key.type_code,
        "issuer_code": item.input.key.issuer_code,
        "printed_no": item.input.key.printed_no,
        "content_hash": hex::encode(item.input.content_hash),
        "holder_code": item.input.holder_code,
        "files": files,
        "source": item.source,
    })
}

#[allow(clippy::too_many_arguments)]
fn insert_version(
    tx: &Db,
    run: RunId,
    licence_id: i64,
    item: &LoadItem,
    identifier: &str,
    version: u16,
    files: &[StoredFile],
    at: DateTime<Utc>,
) -> Result<(), RegistryError> {
    let version_id = tx.insert_id(
        "insert version",
        "INSERT INTO versions (licence_id, version, identifier, content_hash, row_status,
             holder_code, holder_name, issue_date, valid_to, fields_json, source, run_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        &vals![
            licence_id,
            version,
            identifier,
            hex::encode(item.input.content_hash),
            item.input.status.as_str(),
            &item.input.holder_code,
            &item.holder_name,
            date_text(item.issue_date),
            item.valid_to.map(date_text),
            &item.fields_json,
            &item.source,
            run.0,
            time_text(at),
        ],
    )?;
    for file in files {
        // A file shared by two versions (same bytes) is one row.
        tx.execute(
            "insert file",
            "INSERT INTO files (sha256, kind, size) VALUES (?1, ?2, ?3)
             ON CONFLICT (sha256, kind) DO NOTHING",
            &vals![&file.sha256, file.kind.as_str(), file.size],
        )?;
        tx.execute(
            "insert version file",
            "INSERT INTO version_files (version_id, kind, sha256) VALUES (?1, ?2, ?3)",
            &vals![version_id, file.kind.as_str(), &file.sha256],
        )?;
    }
    Ok(())
}

/// Marks the current, live version `identifier` revoked as the export row `item` says (its
/// paper date and reason, if any) and audits it with the run and the effective date.
fn revoke_in_tx(
    tx: &Db,
    identifier: &str,
    item: &LoadItem,
    operator: &str,
    run: RunId,
    at: DateTime<Utc>,
) -> Result<(), RegistryError> {
    let reason = export_reason(item);
    let effective = item.revocation.as_ref().map_or(at.date_naive(), |r| r.on);
    mark_revoked(tx, identifier, &reason, operator, at, effective)?;
    audit::append(
        tx,
        &AuditEntry {
            action: action::REVOKED.to_owned(),
            operator: operator.to_owned(),
            at,
            subject: identifier.to_owned(),
            reason: Some(reason),
            details: json!({ "run": run.0, "effective": date_text(effective) }),
        },
    )?;
    Ok(())
}

fn mark_revoked(
    tx: &Db,
    identifier: &str,
    reason: &str,
    operator: &str,
    at: DateTime<Utc>,
    effective: NaiveDate,
) -> Result<(), RegistryError> {
    let n = tx.execute(
        "revoke version",
        "UPDATE versions SET revoked_at = ?1, revoked_reason = ?2, revoked_by = ?3,
             revoked_on = ?5
         WHERE identifier = ?4 AND superseded_by IS NULL AND revoked_at IS NULL",
        &vals![time_text(at), reason, operator, identifier, date_text(effective)],
    )?;
    if n != 1 {
        return Err(RegistryError::Inconsistent {
            path: tx.location().to_path_buf(),
            what: format!("{identifier} is not a live current version"),
        });
    }
    Ok(())
}

/// An explicit revocation (`elicence revoke ID --reason TEXT`): `identifier` must be the live
/// current version. The files stay.
pub(crate) fn revoke(
    db: &Db,
    identifier: &str,
    reason: &str,
    operator: &str,
    at: DateTime<Utc>,
) -> Result<(), RegistryError> {
    db.write("revoke", |tx| {
        let row: Option<(Option<String>, Option<String>)> = tx.query_opt(
            "find version",
            "SELECT superseded_by, revoked_at FROM versions WHERE identifier = ?1",
            &vals![identifier],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match row {
            None => {
                return Err(RegistryError::UnknownIdentifier { identifier: identifier.to_owned() });
            }
            Some((Some(by), _)) => {
                return Err(RegistryError::NotCurrent {
                    identifier: identifier.to_owned(),
                    superseded_by: by,
                });
            }
            Some((None, Some(revoked_at))) => {
                return Err(RegistryError::AlreadyRevoked {
                    identifier: identifier.to_owned(),
                    at: revoked_at,
                });
            }
            Some((None, None)) => {}
        }
        mark_revoked(tx, identifier, reason, operator, at, at.date_naive())?;
        audit::append(
            tx,
            &AuditEntry {
                action: action::REVOKED.to_owned(),
                operator: operator.to_owned(),
                at,
                subject: identifier.to_owned(),
                reason: Some(reason.to_owned()),
                details: json!({ "via": "revoke" }),
            },
        )?;
        super::log::catch_up(tx)?;
        Ok(())
    })
}
