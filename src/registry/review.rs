//! Review before issue (采集 → 审核 → 签发): rows a run stages instead of issuing, and their
//! approval or rejection.
//!
//! A run of a type under review decides each row as usual but, instead of recording a version,
//! records a [`ReviewItem`]: the decision (issue version N, change to version N, revoke), the
//! validated licence (as the engine serialised it, opaque here), the unsigned preview and the
//! archive copy (in the store), and who staged it. Nothing is signed and nothing becomes
//! current. Staging the same row again (a re-run of the same input) finds the pending item and
//! stages nothing new.
//!
//! Approval ([`Registry::commit_approved`]) commits signed versions through the lifecycle's own
//! commit (the same checks, the same audit entries) and marks the items approved in the SAME
//! transaction, so a process killed at any moment leaves every item either pending (nothing
//! of it committed) or approved (its version committed): approving again signs and commits only
//! what is still pending. An item whose licence changed since it was staged no longer decides
//! the same way and is refused as stale by the caller (the registry refuses the whole chunk
//! with [`RegistryError::StaleDecision`] if it changes between decision and commit).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use super::audit::{self, AuditEntry};
use super::db::{ColumnError, Db, Row, Val, vals};
use super::encode::{
    date_text, get_date, get_hash16, get_opt_date, get_opt_time, get_time, time_text,
};
use super::lifecycle::{
    self, Decision, DecisionInput, LoadItem, LoadResult, Overlay, PaperRevocation, StagedEffect,
};
use super::store::{FileKind, StoredFile};
use super::{NaturalKey, Registry, RegistryError, RunId, secrets};
use crate::identify::{IdError, LicenceId};
use crate::licence::LicenceStatus;

/// Audit actions of the review workflow.
pub mod action {
    pub const STAGED: &str = "review_staged";
    pub const APPROVED: &str = "review_approved";
    pub const REJECTED: &str = "review_rejected";
    /// An approval refused because the licence changed since the item was staged.
    pub const STALE: &str = "review_stale";
}

/// What a staged item will do once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewAction {
    /// Issue version 1 of a new licence.
    Issue,
    /// Issue the next version, superseding the current one.
    Change,
    /// Revoke the current version.
    Revoke,
}

impl ReviewAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Issue => "issue",
            ReviewAction::Change => "change",
            ReviewAction::Revoke => "revoke",
        }
    }

    fn parse(s: &str) -> Option<ReviewAction> {
        [ReviewAction::Issue, ReviewAction::Change, ReviewAction::Revoke]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// Where a staged item is in the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewState {
    Pending,
    Approved,
    Rejected,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Pending => "pending",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<ReviewState> {
        [ReviewState::Pending, ReviewState::Approved, ReviewState::Rejected]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// A row staged for review, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewItem {
    pub id: i64,
    pub run: RunId,
    pub key: NaturalKey,
    pub action: ReviewAction,
    /// The version to issue, or (revoke) the version to revoke.
    pub identifier: String,
    /// The version a change supersedes.
    pub previous_identifier: Option<String>,
    #[serde(serialize_with = "super::hex16")]
    pub content_hash: [u8; 16],
    pub row_status: LicenceStatus,
    pub holder_code: String,
    pub holder_name: String,
    pub issue_date: NaiveDate,
    pub single_instance: bool,
    /// The validated licence, serialised by the engine (opaque to the registry).
    #[serde(skip)]
    pub licence_json: String,
    /// SHA-256 of the unsigned preview PDF in the store (none for a revocation).
    pub preview_sha256: Option<String>,
    /// SHA-256 of the archive copy (存档副本) in the store, if the row had one.
    pub archive_sha256: Option<String>,
    /// Where the row came from: `file:sheet:line`.
    pub source: String,
    pub staged_by: String,
    pub staged_at: DateTime<Utc>,
    pub state: ReviewState,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The rejection reason.
    pub decision_note: Option<String>,
    /// The paper revocation's date and reason, for a row that says revoked.
    #[serde(serialize_with = "paper_revocation")]
    pub revocation: Option<PaperRevocation>,
}

fn paper_revocation<S: serde::Serializer>(
    r: &Option<PaperRevocation>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match r {
        None => s.serialize_none(),
        Some(r) => json!({ "on": date_text(r.on), "reason": r.reason }).serialize(s),
    }
}

impl ReviewItem {
    /// What the registry decides from, as when the row was staged.
    pub fn decision_input(&self) -> DecisionInput {
        DecisionInput {
            key: self.key.clone(),
            content_hash: self.content_hash,
            status: self.row_status,
            holder_code: self.holder_code.clone(),
            single_instance: self.single_instance,
        }
    }

    /// The decision the row got when it was staged: approval commits it only if the registry
    /// still decides the same way (else the item is stale). Fails when a stored identifier does
    /// not parse (a hand edit).
    pub fn staged_decision(&self) -> Result<Decision, IdError> {
        Ok(match self.action {
            ReviewAction::Issue => {
                Decision::New { identifier: LicenceId::parse(&self.identifier)? }
            }
            ReviewAction::Change => Decision::Change {
                previous_identifier: self.previous_identifier.clone().unwrap_or_default(),
                identifier: LicenceId::parse(&self.identifier)?,
            },
            ReviewAction::Revoke => Decision::Revoke { identifier: self.identifier.clone() },
        })
    }
}

/// A decided row to stage: the load item (its `pdf` is the UNSIGNED preview, `xml` and `ofd`
/// are ignored) and the validated licence serialised by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct StageItem {
    pub item: LoadItem,
    pub licence_json: String,
}

/// Which items [`Registry::review_items`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFilter {
    pub run: Option<RunId>,
    pub ids: Option<Vec<i64>>,
    pub state: Option<ReviewState>,
}

/// What rejecting one item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectOutcome {
    Rejected,
    /// Approved or rejected already: nothing changed.
    AlreadyDecided,
    Unknown,
}

const ITEM_COLUMNS: &str = "id, run_id, type_code, issuer_code, printed_no, action, identifier, \
     previous_identifier, content_hash, row_status, holder_code, holder_name, issue_date, \
     single_instance, licence_json, preview_sha256, archive_sha256, source, staged_by, \
     staged_at, state, decided_by, decided_at, decision_note, revoked_on, revoked_reason";

fn item_row(r: &Row) -> Result<ReviewItem, ColumnError> {
    let action: String = r.get(5)?;
    let status: String = r.get(9)?;
    let state: String = r.get(20)?;
    Ok(ReviewItem {
        id: r.get(0)?,
        run: RunId(r.get(1)?),
        key: NaturalKey { type_code: r.get(2)?, issuer_code: r.get(3)?, printed_no: r.get(4)? },
        action: ReviewAction::parse(&action)
            .ok_or_else(|| ColumnError::new(5, format!("unknown action {action:?}")))?,
        identifier: r.get(6)?,
        previous_identifier: r.get(7)?,
        content_hash: get_hash16(r, 8)?,
        row_status: match status.as_str() {
            "valid" => LicenceStatus::Valid,
            "changed" => LicenceStatus::Changed,
            "revoked" => LicenceStatus::Revoked,
            _ => return Err(ColumnError::new(9, format!("unknown row status {status:?}"))),
        },
        holder_code: r.get(10)?,
        holder_name: r.get(11)?,
        issue_date: get_date(r, 12)?,
        single_instance: r.get(13)?,
        licence_json: r.get(14)?,
        preview_sha256: r.get(15)?,
        archive_sha256: r.get(16)?,
        source: r.get(17)?,
        staged_by: r.get(18)?,
        staged_at: get_time(r, 19)?,
        state: ReviewState::parse(&state)
            .ok_or_else(|| ColumnError::new(20, format!("unknown state {state:?}")))?,
        decided_by: r.get(21)?,
        decided_at: get_opt_time(r, 22)?,
        decision_note: r.get(23)?,
        revocation: match get_opt_date(r, 24)? {
            None => None,
            Some(on) => Some(PaperRevocation { on, reason: r.get(25)? }),
        },
    })
}

/// The registry state of `keys`, plus (with `pending`) the effect of their pending review
/// items, in staging order: what a run under review decides against.
fn overlay_for<'a>(
    db: &Db,
    keys: impl Iterator<Item = &'a NaturalKey> + Clone,
    pending: bool,
) -> Result<Overlay, RegistryError> {
    let mut overlay = Overlay::default();
    lifecycle::prefetch(db, &mut overlay, keys.clone())?;
    if !pending {
        return Ok(overlay);
    }
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        if !seen.insert(key) {
            continue;
        }
        let staged = db.query(
            "read staged items",
            "SELECT action, identifier, content_hash, holder_code, row_status FROM review_items
             WHERE type_code = ?1 AND issuer_code = ?2 AND printed_no = ?3
               AND state = 'pending'
             ORDER BY id",
            &vals![&key.type_code, &key.issuer_code, &key.printed_no],
            |r| {
                let action: String = r.get(0)?;
                let identifier: String = r.get(1)?;
                let effect = match ReviewAction::parse(&action) {
                    Some(ReviewAction::Revoke) => StagedEffect::Revoke,
                    Some(_) => {
                        let version = LicenceId::parse(&identifier)
                            .map_err(|e| ColumnError::new(1, e.to_string()))?
                            .version();
                        StagedEffect::Version {
                            version,
                            identifier,
                            content_hash: get_hash16(r, 2)?,
                            holder_code: r.get(3)?,
                            revoked: r.get::<String>(4)? == LicenceStatus::Revoked.as_str(),
                        }
                    }
                    None => return Err(ColumnError::new(0, format!("unknown action {action:?}"))),
                };
                Ok(effect)
            },
        )?;
        for effect in &staged {
            overlay.assume(key, effect);
        }
    }
    Ok(overlay)
}

/// Decides every item again inside the transaction and refuses the chunk (nothing written)
/// when any decision differs from the one the caller made. `pending`: as a run under review
/// decides (see [`Registry::decide_staged`]).
fn check_decisions<'a>(
    tx: &Db,
    items: impl Iterator<Item = &'a LoadItem> + Clone,
    pending: bool,
) -> Result<(), RegistryError> {
    let mut overlay = overlay_for(tx, items.clone().map(|i| &i.input.key), pending)?;
    for item in items {
        let found = lifecycle::decide_one(tx, &mut overlay, &item.input)?;
        if found != item.decision {
            return Err(RegistryError::StaleDecision(Box::new(super::StaleDecision {
                source: item.source.clone(),
                expected: item.decision.clone(),
                found,
            })));
        }
    }
    Ok(())
}

fn insert_file(tx: &Db, file: &StoredFile) -> Result<(), RegistryError> {
    tx.execute(
        "insert file",
        "INSERT INTO files (sha256, kind, size) VALUES (?1, ?2, ?3)
         ON CONFLICT (sha256, kind) DO NOTHING",
        &vals![&file.sha256, file.kind.as_str(), file.size],
    )?;
    Ok(())
}

impl Registry {
    /// Decides a chunk of rows that a run stages for review: as [`Registry::decide_many`], but
    /// each licence's pending review items count as issued (in staging order). A licence and
    /// its later change staged in different chunks (or runs) become version 1 and version 2,
    /// and approving them in order commits both; a row equal to a pending version is
    /// `Unchanged` with that pending identifier. Nothing is written.
    pub fn decide_staged(&self, inputs: &[DecisionInput]) -> Result<Vec<Decision>, RegistryError> {
        let inputs = self.keyed_inputs(inputs)?;
        let mut overlay = overlay_for(&self.db, inputs.iter().map(|i| &i.key), true)?;
        inputs.iter().map(|input| lifecycle::decide_one(&self.db, &mut overlay, input)).collect()
    }

    /// Stages a decided chunk for review: writes the previews and archive copies to the store,
    /// then in one transaction decides every row again (refusing the chunk with
    /// [`RegistryError::StaleDecision`] if anything changed) and records a pending item for each
    /// row that would issue, change or revoke, with an audit entry (`review_staged`). A row
    /// with a pending item of the same content already is not staged again. Returns one result
    /// per item: [`LoadResult::Pending`], `Unchanged` or `Rejected`.
    pub fn stage_chunk(
        &mut self,
        run: RunId,
        items: Vec<StageItem>,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<LoadResult>, RegistryError> {
        let keys = self.db.field_keys()?;
        let items = items
            .into_iter()
            .map(|s| protect_staged(keys, run, s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut files: Vec<(FileKind, &[u8])> = Vec::new();
        let mut per_item = Vec::with_capacity(items.len());
        for s in &items {
            let creates = s.item.decision.new_version().is_some();
            let preview = s.item.pdf.as_deref().filter(|_| creates);
            let archive = s.item.archive_image.as_deref();
            if let Some(bytes) = preview {
                files.push((FileKind::Pdf, bytes));
            }
            if let Some(bytes) = archive {
                files.push((FileKind::Archive, bytes));
            }
            per_item.push((preview.is_some(), archive.is_some()));
        }
        let mut stored = self.store.put_many(&files)?.into_iter();
        let mut stored_per_item = Vec::with_capacity(items.len());
        for (preview, archive) in per_item {
            let p = if preview { stored.next() } else { None };
            let a = if archive { stored.next() } else { None };
            stored_per_item.push((p, a));
        }
        self.db.write("stage chunk", |tx| {
            super::require_open_run(tx, run)?;
            check_decisions(tx, items.iter().map(|s| &s.item), true)?;
            let mut results = Vec::with_capacity(items.len());
            for (s, (preview, archive)) in items.iter().zip(&stored_per_item) {
                results.push(stage_one(
                    tx,
                    run,
                    s,
                    preview.as_ref(),
                    archive.as_ref(),
                    operator,
                    at,
                )?);
            }
            Ok(results)
        })
    }

    /// Staged items matching `filter`, oldest first.
    pub fn review_items(&self, filter: &ReviewFilter) -> Result<Vec<ReviewItem>, RegistryError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Val> = Vec::new();
        if let Some(run) = filter.run {
            args.push(Val::from(run.0));
            clauses.push(format!("run_id = ?{}", args.len()));
        }
        if let Some(state) = filter.state {
            args.push(Val::from(state.as_str()));
            clauses.push(format!("state = ?{}", args.len()));
        }
        if let Some(ids) = &filter.ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut marks = Vec::with_capacity(ids.len());
            for id in ids {
                args.push(Val::from(*id));
                marks.push(format!("?{}", args.len()));
            }
            clauses.push(format!("id IN ({})", marks.join(", ")));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let mut items = self.db.query(
            "read review items",
            &format!("SELECT {ITEM_COLUMNS} FROM review_items {filter} ORDER BY id"),
            &args,
            item_row,
        )?;
        for item in &mut items {
            // Every read of a staged item's holder and licence comes through here.
            if let Some(open) =
                secrets::open_review(&self.db, &item.identifier, item.run.0, &item.licence_json)?
            {
                item.content_hash = secrets::hash16(&open.content_hash).map_err(|reason| {
                    RegistryError::Sealed {
                        location: self.db.location().to_path_buf(),
                        row: format!("review item {}", item.id),
                        reason,
                    }
                })?;
                item.holder_code = open.holder_code;
                item.holder_name = open.holder_name;
                item.licence_json = open.licence_json;
            }
        }
        Ok(items)
    }

    /// One staged item, or `None`.
    pub fn review_item(&self, id: i64) -> Result<Option<ReviewItem>, RegistryError> {
        Ok(self.review_items(&ReviewFilter { ids: Some(vec![id]), ..Default::default() })?.pop())
    }

    /// Commits approved items: `approvals` pairs each pending item's id with its load item
    /// (signed files, the staged decision). Stores the files, then in ONE transaction checks
    /// that every item is still pending and still decides as staged, commits the versions and
    /// revocations through the lifecycle (its audit entries name `approver`), marks the items
    /// approved and audits `review_approved`. All or nothing: fails with
    /// [`RegistryError::StaleDecision`] or [`RegistryError::ReviewDecided`] having written
    /// nothing (decide again).
    pub fn commit_approved(
        &mut self,
        run: RunId,
        approvals: Vec<(i64, LoadItem)>,
        approver: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<LoadResult>, RegistryError> {
        let (ids, items): (Vec<i64>, Vec<LoadItem>) = approvals.into_iter().unzip();
        let keys = self.db.field_keys()?;
        let items = items
            .into_iter()
            .map(|item| secrets::protect_item(keys, item))
            .collect::<Result<Vec<_>, _>>()?;
        lifecycle::require_artefacts(&items)?;
        let (files, _) = lifecycle::store_files(&self.store, false, &items)?;
        self.db.write("commit approved", |tx| {
            super::require_open_run(tx, run)?;
            for id in &ids {
                let state: Option<String> = tx.query_opt(
                    "read review item",
                    "SELECT state FROM review_items WHERE id = ?1",
                    &vals![*id],
                    |r| r.get(0),
                )?;
                if state.as_deref() != Some(ReviewState::Pending.as_str()) {
                    return Err(RegistryError::ReviewDecided { id: *id });
                }
            }
            check_decisions(tx, items.iter(), false)?;
            let mut results = Vec::with_capacity(items.len());
            for ((id, item), files) in ids.iter().zip(&items).zip(&files) {
                let result = lifecycle::apply(tx, run, item, files, approver, at)?;
                tx.execute(
                    "approve review item",
                    "UPDATE review_items SET state = 'approved', decided_by = ?2, decided_at = ?3
                     WHERE id = ?1 AND state = 'pending'",
                    &vals![*id, approver, time_text(at)],
                )?;
                let subject = match &result {
                    LoadResult::Issued { identifier }
                    | LoadResult::Changed { identifier, .. }
                    | LoadResult::Revoked { identifier } => identifier.clone(),
                    _ => item.source.clone(),
                };
                audit::append(
                    tx,
                    &AuditEntry {
                        action: action::APPROVED.to_owned(),
                        operator: approver.to_owned(),
                        at,
                        subject,
                        reason: None,
                        details: json!({ "review_item": id, "run": run.0, "source": item.source }),
                    },
                )?;
                results.push(result);
            }
            // The transparency log's leaves for the approved versions, in the same transaction.
            super::log::catch_up(tx)?;
            Ok(results)
        })
    }

    /// Rejects pending items with a reason (each audited `review_rejected`); one outcome per id.
    pub fn review_reject(
        &mut self,
        ids: &[i64],
        reason: &str,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<(i64, RejectOutcome)>, RegistryError> {
        self.db.write("reject review items", |tx| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let found: Option<(String, String)> = tx.query_opt(
                    "read review item",
                    "SELECT state, identifier FROM review_items WHERE id = ?1",
                    &vals![*id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let outcome = match found {
                    None => RejectOutcome::Unknown,
                    Some((state, _)) if state != ReviewState::Pending.as_str() => {
                        RejectOutcome::AlreadyDecided
                    }
                    Some((_, identifier)) => {
                        tx.execute(
                            "reject review item",
                            "UPDATE review_items SET state = 'rejected', decided_by = ?2,
                                 decided_at = ?3, decision_note = ?4
                             WHERE id = ?1 AND state = 'pending'",
                            &vals![*id, operator, time_text(at), reason],
                        )?;
                        audit::append(
                            tx,
                            &AuditEntry {
                                action: action::REJECTED.to_owned(),
                                operator: operator.to_owned(),
                                at,
                                subject: identifier,
                                reason: Some(reason.to_owned()),
                                details: json!({ "review_item": id }),
                            },
                        )?;
                        RejectOutcome::Rejected
                    }
                };
                out.push((*id, outcome));
            }
            Ok(out)
        })
    }
}

/// A staged row as the registry stores it: its input keyed, its holder and licence sealed for
/// its identifier and run.
fn protect_staged(
    keys: &secrets::FieldKeys,
    run: RunId,
    s: StageItem,
) -> Result<StageItem, RegistryError> {
    let identifier = match &s.item.decision {
        Decision::New { identifier } | Decision::Change { identifier, .. } => {
            identifier.to_string()
        }
        Decision::Revoke { identifier }
        | Decision::Unchanged { identifier }
        | Decision::AlreadyRevoked { identifier } => identifier.clone(),
        Decision::Refused(_) => String::new(),
    };
    let licence_json = keys.seal_json(
        &secrets::review_aad(&identifier, run.0),
        &secrets::SealedReview {
            content_hash: hex::encode(s.item.input.content_hash),
            holder_code: s.item.input.holder_code.clone(),
            holder_name: s.item.holder_name.clone(),
            licence_json: s.licence_json,
        },
    )?;
    let item = LoadItem {
        input: secrets::keyed_input(keys, &s.item.input),
        holder_name: String::new(),
        ..s.item
    };
    Ok(StageItem { item, licence_json })
}

/// Records one staged row (see [`Registry::stage_chunk`]).
fn stage_one(
    tx: &Db,
    run: RunId,
    s: &StageItem,
    preview: Option<&StoredFile>,
    archive: Option<&StoredFile>,
    operator: &str,
    at: DateTime<Utc>,
) -> Result<LoadResult, RegistryError> {
    let item = &s.item;
    let key = &item.input.key;
    let (action, identifier, previous) = match &item.decision {
        Decision::New { identifier } => (ReviewAction::Issue, identifier.to_string(), None),
        Decision::Change { previous_identifier, identifier } => {
            (ReviewAction::Change, identifier.to_string(), Some(previous_identifier.clone()))
        }
        Decision::Revoke { identifier } => (ReviewAction::Revoke, identifier.clone(), None),
        Decision::Unchanged { identifier } => {
            // The same content as a version that is itself still pending review: staged
            // already (a re-run of the same input), not issued.
            let pending: Option<i64> = tx.query_opt(
                "find pending review item",
                "SELECT id FROM review_items
                 WHERE identifier = ?1 AND content_hash = ?2 AND state = 'pending'
                   AND action <> 'revoke'
                 ORDER BY id LIMIT 1",
                &vals![identifier, hex::encode(item.input.content_hash)],
                |r| r.get(0),
            )?;
            return Ok(match pending {
                Some(review_item) => {
                    LoadResult::Pending { review_item, identifier: identifier.clone() }
                }
                None => LoadResult::Unchanged { identifier: identifier.clone() },
            });
        }
        Decision::AlreadyRevoked { identifier } => {
            let pending: Option<i64> = tx.query_opt(
                "find pending review item",
                "SELECT id FROM review_items
                 WHERE identifier = ?1 AND state = 'pending' AND action = 'revoke'
                 ORDER BY id LIMIT 1",
                &vals![identifier],
                |r| r.get(0),
            )?;
            return Ok(match pending {
                Some(review_item) => {
                    LoadResult::Pending { review_item, identifier: identifier.clone() }
                }
                None => LoadResult::Unchanged { identifier: identifier.clone() },
            });
        }
        Decision::Refused(refusal) => return Ok(LoadResult::Rejected { refusal: refusal.clone() }),
    };
    let content_hash = hex::encode(item.input.content_hash);
    let existing: Option<i64> = tx.query_opt(
        "find pending review item",
        "SELECT id FROM review_items
         WHERE type_code = ?1 AND issuer_code = ?2 AND printed_no = ?3 AND content_hash = ?4
           AND row_status = ?5 AND action = ?6 AND state = 'pending'
         ORDER BY id LIMIT 1",
        &vals![
            &key.type_code,
            &key.issuer_code,
            &key.printed_no,
            &content_hash,
            item.input.status.as_str(),
            action.as_str()
        ],
        |r| r.get(0),
    )?;
    if let Some(review_item) = existing {
        return Ok(LoadResult::Pending { review_item, identifier });
    }
    for file in preview.iter().chain(archive.iter()) {
        insert_file(tx, file)?;
    }
    let review_item = tx.insert_id(
        "insert review item",
        "INSERT INTO review_items (run_id, type_code, issuer_code, printed_no, action,
             identifier, previous_identifier, content_hash, row_status, holder_code, holder_name,
             issue_date, single_instance, licence_json, preview_sha256, archive_sha256, source,
             staged_by, staged_at, state, revoked_on, revoked_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, 'pending', ?20, ?21)",
        &vals![
            run.0,
            &key.type_code,
            &key.issuer_code,
            &key.printed_no,
            action.as_str(),
            &identifier,
            previous.clone(),
            content_hash,
            item.input.status.as_str(),
            &item.input.holder_code,
            &item.holder_name,
            date_text(item.issue_date),
            item.input.single_instance,
            &s.licence_json,
            preview.map(|f| f.sha256.clone()),
            archive.map(|f| f.sha256.clone()),
            &item.source,
            operator,
            time_text(at),
            item.revocation.as_ref().map(|r| date_text(r.on)),
            item.revocation.as_ref().and_then(|r| r.reason.clone()),
        ],
    )?;
    audit::append(
        tx,
        &AuditEntry {
            action: action::STAGED.to_owned(),
            operator: operator.to_owned(),
            at,
            subject: identifier.clone(),
            reason: None,
            details: json!({
                "review_item": review_item,
                "run": run.0,
                "action": action.as_str(),
                "supersedes": previous,
                "preview": preview.map(|f| f.sha256.clone()),
                "source": item.source,
            }),
        },
    )?;
    Ok(LoadResult::Pending { review_item, identifier })
}
