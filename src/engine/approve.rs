//! `review approve`: signs and commits staged versions (审核 → 签发) at engine speed.
//!
//! The approver is authenticated with the reviewer role and must not be the operator who
//! staged any of the items (four eyes), both refused and audited before anything else. Then the
//! pending items are taken in staging order, [`CHUNK`] at a time: each chunk is decided again
//! against the registry, and an item that no longer decides as it was staged (its licence was
//! changed, issued or revoked in between) is stale: refused and audited, left pending. The rest
//! are rendered and signed on all cores by the same [`Producer`] a run uses (the layouts of the
//! pipelines that staged them, the signing time of the approval), and committed with their
//! approval in one transaction ([`Registry::commit_approved`]). The approval is recorded as a
//! run of its own, so versions, audit entries and counts look as a run's do.
//!
//! Killed at any moment, an approval leaves each item either pending or approved with its
//! version committed; approving again signs and commits exactly what is still pending. Asked to
//! stop (SIGINT or SIGTERM, when the caller installed [`ApproveOptions::interrupt`]) it stops at
//! the next chunk boundary: the run is recorded as interrupted, its checkpoint written, and the
//! rest stays pending.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::keyset::{IssuerRequest, development_seal_picture, ensure_development_identities};
use crate::licence::Licence;
use crate::operators::{Claim, authorize, check_four_eyes};
use crate::pipeline::{self, LevelNeedsTsa, PadesLevel};
use crate::produce::{LongTerm, Producer};
use crate::progress::{Interrupt, StopSignal};
use crate::registry::{
    AuditEntry, Decision, FileKind, LoadItem, Registry, RegistryError, ReviewFilter, ReviewItem,
    ReviewState, Role, RunCounts, RunId, RunOutcome, RunStart, Store, review_action,
};
use crate::sign::passphrase_from_env_or_file;
use crate::timestamp;

use super::run::{KeySet, check_production_keys, load_key_set};
use super::schedule::{CHUNK, fields_json};

/// Which staged items to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These review item numbers.
    Items(Vec<i64>),
    /// Every pending item of this run.
    Run(RunId),
}

/// What `review approve` is asked to do.
#[derive(Debug, Clone)]
pub struct ApproveOptions {
    pub data: PathBuf,
    pub registry: Option<String>,
    /// Store other than `data/store` (`file:PATH`, `s3://bucket/prefix`).
    pub store: Option<String>,
    /// Key folder; `None`: the development key of the data folder.
    pub keys: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    /// RFC 3161 TSA; `None`: the staging pipeline's `[output] tsa`, if any.
    pub tsa: Option<String>,
    /// Base URL of the public verification page the QR codes open; `None`: the staging
    /// pipeline's `[output] public_url`, if any.
    pub public_url: Option<String>,
    /// The approving operator (reviewer role; not the one who staged).
    pub approver: Claim,
    /// The name recorded when the registry has no admin operator and none was claimed.
    pub default_operator: String,
    pub selection: Selection,
    pub jobs: Option<usize>,
    /// Signing time and the time of the approval.
    pub at: DateTime<Utc>,
    /// Polled between chunks (the CLI installs it; `serve` stops its own way).
    pub interrupt: Option<Interrupt>,
}

/// A staged item refused because the registry no longer decides it as staged.
#[derive(Debug, Clone, Serialize)]
pub struct StaleItem {
    pub review_item: i64,
    pub identifier: String,
    /// What the registry decides now.
    pub now: String,
}

/// What an approval did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApproveReport {
    /// The approval's run number (`None` when nothing was pending).
    pub run: Option<i64>,
    pub approved: u64,
    pub issued: u64,
    pub changed: u64,
    pub revoked: u64,
    pub stale: Vec<StaleItem>,
    /// Items asked for by number that are not pending (unknown, approved or rejected).
    pub not_pending: Vec<i64>,
    pub development_key: bool,
    /// The signal that stopped the approval at a chunk boundary (`SIGINT`, `SIGTERM`).
    #[serde(serialize_with = "signal_name")]
    pub interrupted: Option<StopSignal>,
}

fn signal_name<S: serde::Serializer>(s: &Option<StopSignal>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_some(&s.map(StopSignal::name))
}

/// How often one chunk is decided again when another process changes the same licences.
const MAX_ATTEMPTS: u32 = 5;

/// Approves the selected items (see the module docs). Fails with an
/// [`crate::operators::OperatorError`] for a refused approver (audited, nothing signed), a
/// configuration error for a staging pipeline that no longer loads, or a registry error.
pub fn approve(options: &ApproveOptions) -> anyhow::Result<ApproveReport> {
    let at = options.at;
    let mut registry =
        Registry::open_with(&options.data, options.registry.as_deref(), options.store.as_deref())?;
    let actor = authorize(
        &mut registry,
        &options.approver,
        "review approve",
        &[Role::Reviewer],
        &options.default_operator,
        at,
    )?;
    let approver = actor.name().to_owned();
    let filter = match &options.selection {
        Selection::Items(ids) => ReviewFilter {
            ids: Some(ids.clone()),
            state: Some(ReviewState::Pending),
            ..Default::default()
        },
        Selection::Run(run) => ReviewFilter {
            run: Some(*run),
            state: Some(ReviewState::Pending),
            ..Default::default()
        },
    };
    let items = registry.review_items(&filter)?;
    let mut report = ApproveReport::default();
    if let Selection::Items(ids) = &options.selection {
        let found: BTreeSet<i64> = items.iter().map(|i| i.id).collect();
        report.not_pending = ids.iter().copied().filter(|id| !found.contains(id)).collect();
    }
    let staged_by: Vec<(i64, &str)> = items.iter().map(|i| (i.id, i.staged_by.as_str())).collect();
    check_four_eyes(&mut registry, &approver, &staged_by, at)?;
    if items.is_empty() {
        return Ok(report);
    }

    // The producer: the staging pipelines' layouts and TSA, the signer of --keys (or the
    // development key), OFD when a staging pipeline writes it.
    let mut layouts: Vec<PathBuf> = Vec::new();
    let mut tsa_url = options.tsa.clone();
    let mut public_url = options.public_url.clone();
    let mut ofd = false;
    // The highest PAdES level any staging pipeline asks for.
    let mut pades_level: Option<PadesLevel> = None;
    let mut issuers: Vec<IssuerRequest> = Vec::new();
    let runs: BTreeSet<RunId> = items.iter().map(|i| i.run).collect();
    for run in runs {
        let Some(record) = registry.run(run)? else {
            anyhow::bail!("review items name {run}, which is not recorded");
        };
        let plan = pipeline::load(Path::new(&record.pipeline)).with_context(|| {
            format!(
                "{run} was staged with the pipeline {}, which must load to sign",
                record.pipeline
            )
        })?;
        if !layouts.contains(&plan.layout_path) {
            layouts.push(plan.layout_path.clone());
        }
        tsa_url = tsa_url.or(plan.tsa.clone());
        public_url = public_url.or(plan.public_url.clone());
        pades_level = pades_level.max(plan.pades_level);
        ofd |= plan.formats.ofd;
        issuers.extend(IssuerRequest::of_plan(&plan));
    }
    let issuers = IssuerRequest::merged(issuers);
    let pades_level = PadesLevel::resolve(pades_level, tsa_url.is_some());
    if pades_level.needs_tsa() && tsa_url.is_none() {
        return Err(LevelNeedsTsa { level: pades_level }.into());
    }
    let layout_refs: Vec<&Path> = layouts.iter().map(PathBuf::as_path).collect();
    let renderer = Producer::load_renderer(&layout_refs)?;
    let passphrase = passphrase_from_env_or_file(options.passphrase_file.as_deref())?;
    let production = registry.is_production()?;
    let key_set = match &options.keys {
        Some(keys) => {
            let key_set = load_key_set(keys, passphrase.as_ref(), at, &issuers, ofd)?;
            check_production_keys(production, Some(keys), Some(&key_set))?;
            key_set
        }
        None => {
            check_production_keys(production, None, None)?;
            report.development_key = true;
            let mut notes = Vec::new();
            let dir = super::run::development_key_folder(&options.data, at, &mut notes)?;
            let picture = development_seal_picture(None)?;
            let made = ensure_development_identities(
                &dir,
                passphrase.as_ref(),
                &issuers,
                ofd,
                &picture,
                at,
            )
            .with_context(|| format!("cannot make development identities in {}", dir.display()))?;
            for note in notes.into_iter().chain(made) {
                tracing::warn!("{note}");
            }
            load_key_set(&dir, passphrase.as_ref(), at, &issuers, ofd)?
        }
    };
    let KeySet { registry_signer: signer, identities } = key_set;
    let tsa = tsa_url.as_deref().map(timestamp::connect).transpose()?;
    let checkpoint_tsa = tsa.clone();
    let public_url = public_url.as_deref().map(crate::render::check_public_url).transpose()?;
    let long_term = match (&tsa, pades_level >= PadesLevel::BLt) {
        (Some(tsa), true) => {
            let key_dir = match &options.keys {
                Some(keys) => keys.clone(),
                None => options.data.join("dev-keys"),
            };
            Some(LongTerm::gather(pades_level, &identities, tsa.clone(), &[key_dir.as_path()], at)?)
        }
        _ => None,
    };
    let producer = Producer::with_renderer(renderer, identities, at)
        .with_tsa(tsa)
        .with_public_url(public_url)
        .with_long_term(long_term);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.unwrap_or(0)).build()?;

    let run = registry.start_run(&RunStart {
        pipeline: "review approve".to_owned(),
        inputs: Vec::new(),
        operator: approver.clone(),
        at,
    })?;
    report.run = Some(run.0);
    super::run::log_identities(producer.identities());
    let mut counts = RunCounts::default();
    // Items reached before a stop; the rest were not read by this approval.
    let mut reached = 0usize;
    let result = (|| -> anyhow::Result<()> {
        for chunk in items.chunks(CHUNK) {
            report.interrupted = options.interrupt.as_ref().and_then(Interrupt::signal);
            if report.interrupted.is_some() {
                break;
            }
            reached += chunk.len();
            approve_chunk(&mut registry, &pool, &producer, run, chunk, &approver, at, &mut report)?;
        }
        Ok(())
    })();
    counts.read = reached as u64;
    counts.issued = report.issued;
    counts.changed = report.changed;
    counts.revoked = report.revoked;
    counts.rejected = report.stale.len() as u64;
    counts.unchanged = counts.read.saturating_sub(report.approved + counts.rejected);
    let finished = crate::clock::now()?;
    if let Err(e) = result {
        let _ = registry.finish_run(run, &counts, RunOutcome::Failed, &approver, finished);
        return Err(e);
    }
    let outcome =
        if report.interrupted.is_some() { RunOutcome::Interrupted } else { RunOutcome::Completed };
    registry.finish_run(run, &counts, outcome, &approver, finished)?;
    // Like a run, an approval ends with a signed tree head over what it committed.
    super::write_checkpoint(&registry, &*signer, checkpoint_tsa.as_deref(), finished)
        .with_context(|| {
            format!(
                "approval run {} committed, but its transparency log checkpoint was not \
                 written; `elicence log checkpoint` writes it",
                run.0
            )
        })?;
    Ok(report)
}

/// Decides, signs and commits one chunk of staged items; stale items are audited and left
/// pending; a chunk made stale between decision and commit is decided again.
#[allow(clippy::too_many_arguments)]
fn approve_chunk(
    registry: &mut Registry,
    pool: &rayon::ThreadPool,
    producer: &Producer,
    run: RunId,
    chunk: &[ReviewItem],
    approver: &str,
    at: DateTime<Utc>,
    report: &mut ApproveReport,
) -> anyhow::Result<()> {
    let mut live: Vec<&ReviewItem> = chunk.iter().collect();
    for attempt in 1..=MAX_ATTEMPTS {
        // Items another process approved or rejected meanwhile are not ours any more.
        if attempt > 1 {
            let ids: Vec<i64> = live.iter().map(|i| i.id).collect();
            let pending: BTreeSet<i64> = registry
                .review_items(&ReviewFilter {
                    ids: Some(ids),
                    state: Some(ReviewState::Pending),
                    ..Default::default()
                })?
                .iter()
                .map(|i| i.id)
                .collect();
            live.retain(|i| pending.contains(&i.id));
        }
        let decided = decide_fresh(registry, &mut live, approver, at, report)?;
        if live.is_empty() {
            return Ok(());
        }
        let store = registry.store();
        let produced: Vec<anyhow::Result<LoadItem>> = pool.install(|| {
            live.par_iter()
                .zip(decided.par_iter())
                .map(|(item, decision)| load_item(store, producer, item, decision))
                .collect()
        });
        let mut approvals = Vec::with_capacity(live.len());
        for (item, load) in live.iter().zip(produced) {
            approvals.push((item.id, load?));
        }
        match registry.commit_approved(run, approvals, approver, at) {
            Ok(results) => {
                for r in &results {
                    match r {
                        crate::registry::LoadResult::Issued { .. } => report.issued += 1,
                        crate::registry::LoadResult::Changed { .. } => report.changed += 1,
                        crate::registry::LoadResult::Revoked { .. } => report.revoked += 1,
                        _ => {}
                    }
                }
                report.approved += results.len() as u64;
                return Ok(());
            }
            Err(RegistryError::StaleDecision(_) | RegistryError::ReviewDecided { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("the registry kept changing under this approval; run it again")
}

/// Decides `live` against the registry until every remaining item decides as staged: the
/// others are stale (audited, reported, dropped from `live`). Returns the decisions of `live`.
fn decide_fresh(
    registry: &mut Registry,
    live: &mut Vec<&ReviewItem>,
    approver: &str,
    at: DateTime<Utc>,
    report: &mut ApproveReport,
) -> anyhow::Result<Vec<Decision>> {
    loop {
        let inputs: Vec<_> = live.iter().map(|i| i.decision_input()).collect();
        let decisions = registry.decide_many(&inputs)?;
        let mut stale = Vec::new();
        for (item, found) in live.iter().zip(&decisions) {
            let staged = item.staged_decision().map_err(|e| {
                anyhow::anyhow!("review item {}: stored identifier does not parse: {e}", item.id)
            })?;
            if *found != staged {
                stale.push((item.id, describe(found)));
            }
        }
        if stale.is_empty() {
            return Ok(decisions);
        }
        for (id, now) in &stale {
            let Some(item) = live.iter().find(|i| i.id == *id) else { continue };
            registry.audit_append(&AuditEntry {
                action: review_action::STALE.to_owned(),
                operator: approver.to_owned(),
                at,
                subject: item.identifier.clone(),
                reason: None,
                details: json!({
                    "review_item": item.id,
                    "staged": item.action.as_str(),
                    "now": now,
                }),
            })?;
            report.stale.push(StaleItem {
                review_item: item.id,
                identifier: item.identifier.clone(),
                now: now.clone(),
            });
        }
        // The rest are decided again: one of them may have depended on a stale one.
        live.retain(|i| !stale.iter().any(|(id, _)| *id == i.id));
        if live.is_empty() {
            return Ok(Vec::new());
        }
    }
}

/// What the registry decides now, in words, for the report and the audit trail.
fn describe(decision: &Decision) -> String {
    match decision {
        Decision::New { identifier } => format!("new licence {identifier}"),
        Decision::Unchanged { identifier } => format!("unchanged: same content as {identifier}"),
        Decision::Change { previous_identifier, identifier } => {
            format!("change of {previous_identifier} to {identifier}")
        }
        Decision::Revoke { identifier } => format!("revoke {identifier}"),
        Decision::AlreadyRevoked { identifier } => format!("{identifier} is revoked already"),
        Decision::Refused(r) => format!("refused: {r}"),
    }
}

/// The signed load item of one staged item (its licence as staged, signed now).
fn load_item(
    store: &Store,
    producer: &Producer,
    item: &ReviewItem,
    decision: &Decision,
) -> anyhow::Result<LoadItem> {
    let licence = Licence::from_json(&item.licence_json)
        .with_context(|| format!("review item {}: stored licence does not read back", item.id))?;
    let (pdf, xml, ofd) = match decision.new_version() {
        Some(identifier) => {
            let a = producer
                .produce(&licence, identifier)
                .with_context(|| format!("review item {} ({})", item.id, item.source))?;
            (Some(a.pdf), Some(a.xml.into_bytes()), a.ofd)
        }
        None => (None, None, None),
    };
    let archive_image = match &item.archive_sha256 {
        Some(sha) => Some(store.read(sha, FileKind::Archive)?),
        None => None,
    };
    Ok(LoadItem {
        input: item.decision_input(),
        decision: decision.clone(),
        holder_name: licence.holder_name.clone(),
        issue_date: licence.issue_date,
        valid_to: licence.valid_to,
        fields_json: fields_json(&licence),
        pdf,
        xml,
        ofd,
        archive_image,
        source: item.source.clone(),
        revocation: item.revocation.clone(),
    })
}
