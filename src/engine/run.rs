//! The `run` job: read → validate → identify → produce → load into the registry, chunk by chunk.
//!
//! Everything the run needs (pipeline, catalog, layout, font, seal image, inputs' hashes and the
//! signing key) is loaded and checked before the first effect: a broken configuration stops the
//! run with nothing created, no registry opened and no key written. Then the run is recorded,
//! every input is streamed through the [chunk scheduler](super::schedule), and the run's
//! outcome (completed, interrupted, failed) is recorded with its counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::CatalogSources;
use crate::keyset::{
    IssuerRequest, development_seal_picture, ensure_development_identities, load_identities,
};
use crate::operators::{Actor, Claim, authorize};
use crate::pipeline::{self, LevelNeedsTsa, PadesLevel};
use crate::produce::{Formats, Identities, LongTerm, Producer};
use crate::progress::{Interrupt, Progress, ProgressMode, StopSignal};
use crate::read::sha256_file;
use crate::registry::{ADOPTING_OPERATOR, Registry, Role, RunCounts, RunOutcome, RunStart};
use crate::report::metrics::{self, RunMetrics};
use crate::report::{self, InputSummary, RowFiles, StageTimes};
use crate::sign::key_files::Passphrase;
use crate::sign::keys::{DevKeyOptions, init_dev_keys};
use crate::sign::{RsaSigner, Signer, check_production_key, passphrase_from_env_or_file};
use crate::timestamp;

use super::dedupe::Dedupe;
use super::loader::Loader;
use super::schedule::{CHUNK, ChunkScheduler, ScheduledTotals};
use super::shard::Shard;
use super::stream::{EngineError, validate_input};

/// What a run is asked to do (the flags of `elicence run`, already parsed).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub pipeline: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// Key folder; `None`: the development key of the data folder (created on first use).
    pub keys: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    /// Registry folder (SQLite file and store).
    pub data: PathBuf,
    /// Registry database other than the SQLite file in `data` (e.g. PostgreSQL).
    pub registry: Option<String>,
    /// Store other than `data/store` (`file:PATH`, `s3://bucket/prefix`).
    pub store: Option<String>,
    /// Folder for the row files and `report.json`.
    pub out: Option<PathBuf>,
    /// Who runs this: the claimed operator, authenticated (with the role the run needs) once
    /// the registry has an admin operator; the audit trail names it.
    pub operator: Claim,
    /// The name recorded when the registry has no admin operator and none was claimed (the OS
    /// user).
    pub default_operator: String,
    /// Stage the rows for review instead of issuing them (`run --review`); a pipeline or
    /// licence type with `review = true` does so too.
    pub review: bool,
    /// Worker threads (`None`: all cores).
    pub jobs: Option<usize>,
    pub progress: ProgressMode,
    pub progress_interval: Duration,
    pub quiet: bool,
    pub shard: Option<Shard>,
    /// RFC 3161 TSA URL: every signature is timestamped (B-T). `None`: the pipeline's
    /// `[output] tsa`, if any.
    pub tsa: Option<String>,
    /// Base URL of the public verification page the QR codes open; `None`: the pipeline's
    /// `[output] public_url`, if any.
    pub public_url: Option<String>,
    /// PAdES level of the PDFs; `None`: the pipeline's `[output] pades_level`, else B-T with
    /// a TSA and B-B without.
    pub pades_level: Option<PadesLevel>,
    /// The run's clock: signing time, run start, and "today" for validation.
    pub started: DateTime<Utc>,
    /// The face formats written and stored (PDF and XML always; OFD when asked); `None`: the
    /// pipeline's `[output] formats`.
    pub formats: Option<Formats>,
    /// Prometheus text-format metrics of the run, written when it ends (completed,
    /// interrupted or failed once started).
    pub metrics_file: Option<PathBuf>,
    /// Publish the pipeline's catalog when it differs from the registry's published one
    /// (`run --publish`); without, such a run stops before anything is written.
    pub publish: bool,
    /// Pack each chunk's files into one segment object (`run --segments`, `--no-segments`);
    /// `None`: segments when the store is a bucket.
    pub segments: Option<bool>,
}

/// The pipeline's catalog is not the one the registry published: rights would follow one and
/// the faces the other. A configuration error (exit 3), raised before the run starts.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: this catalog (sha256 {sha256}) is not the one the registry published (#{published}, sha256 {published_sha256}); publish it with `elicence catalog publish --catalog {}` or run with --publish",
    catalog.display(),
    catalog.display()
)]
pub struct CatalogNotPublished {
    pub catalog: PathBuf,
    pub sha256: String,
    pub published: i64,
    pub published_sha256: String,
}

/// The JSON report of a run: read = issued + changed + revoked + unchanged + duplicates +
/// rejected (+ other_shard with `--shard`).
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run: i64,
    pub pipeline: String,
    pub licence_type: String,
    pub data: String,
    pub development_key: bool,
    pub started: String,
    pub finished: String,
    pub inputs: Vec<InputSummary>,
    pub counts: RunCounts,
    /// The rows were staged for review (`pending`), not issued.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub review: bool,
    pub reconciled: bool,
    pub rejects_by_rule: BTreeMap<String, u64>,
    /// Wall time of the whole run, and the busy time of each stage (they overlap).
    pub wall_s: f64,
    pub stages: StageTimes,
}

/// How a run ended.
#[derive(Debug)]
pub enum RunResult {
    /// Every input was read to the end and every chunk committed (`report.json` written when
    /// an output folder was given).
    Completed {
        report: Box<RunReport>,
        /// The development key folder, when the run signed with it.
        development_keys: Option<PathBuf>,
    },
    /// SIGINT (Ctrl-C) or SIGTERM: the run stopped at a chunk boundary; everything counted is
    /// committed.
    Interrupted { run: i64, counts: RunCounts, signal: StopSignal },
}

/// Runs the job. Fails before any effect on a broken configuration, an unreadable input or a
/// key that cannot be loaded; fails later on a fatal read error or a registry failure (the run
/// is then recorded as failed).
pub fn run(options: &RunOptions) -> anyhow::Result<RunResult> {
    let clock = Instant::now();
    let started = options.started;
    // Every log line of the run carries its id once the registry has given it one.
    let span = tracing::info_span!("run", id = tracing::field::Empty);
    let _in_run = span.enter();
    // 1. Configuration and inputs, checked before any effect.
    let plan = pipeline::load(&options.pipeline)?;
    let formats = options.formats.unwrap_or(plan.formats);
    if !(formats.pdf && formats.xml) {
        anyhow::bail!(
            "{}: [output] formats must include pdf and xml for a run (the registry stores both)",
            plan.path.display()
        );
    }
    let renderer = Producer::load_renderer(&[plan.layout_path.as_path()])?;
    // The catalog the run renders with, compared below with the registry's published one.
    let catalog_sources = CatalogSources::read_dir(&plan.catalog_dir)?;
    let mut hashes = Vec::with_capacity(options.inputs.len());
    for path in &options.inputs {
        let (sha, bytes) = sha256_file(path).map_err(|source| EngineError::Unreadable {
            file: path.display().to_string(),
            source,
        })?;
        hashes.push((path.clone(), sha, bytes));
    }
    let passphrase = passphrase_from_env_or_file(options.passphrase_file.as_deref())?;
    let tsa_url = options.tsa.as_deref().or(plan.tsa.as_deref());
    let pades_level =
        PadesLevel::resolve(options.pades_level.or(plan.pades_level), tsa_url.is_some());
    if pades_level.needs_tsa() && tsa_url.is_none() {
        return Err(LevelNeedsTsa { level: pades_level }.into());
    }
    let tsa = tsa_url.map(timestamp::connect).transpose()?;
    let public_url = options.public_url.as_deref().or(plan.public_url.as_deref());
    let public_url = public_url.map(crate::render::check_public_url).transpose()?;
    let issuers = IssuerRequest::of_plan(&plan);
    // A given key set is checked whole now: every issuer's identity (and seal), before any effect.
    let given_keys = options
        .keys
        .as_deref()
        .map(|keys| load_key_set(keys, passphrase.as_ref(), started, &issuers, formats.ofd))
        .transpose()?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.unwrap_or(0)).build()?;
    // A TSA that pipelines needs no thread waiting on it (see `schedule::start_row`).
    let waits_for_tsa = tsa.as_ref().is_some_and(|tsa| !tsa.pipelines());
    let production = super::schedule::production_pool(options.jobs, waits_for_tsa)?;

    // 2. Effects: the registry (created on first use), the development key if no key was
    // given, the run record.
    let mut registry =
        Registry::open_with(&options.data, options.registry.as_deref(), options.store.as_deref())?;
    // A production registry takes no development key (and no run without --keys).
    check_production_keys(registry.is_production()?, options.keys.as_deref(), given_keys.as_ref())?;
    // Said once the run has its id (so that these lines carry it too).
    let mut notes: Vec<String> = Vec::new();
    let review = options.review || plan.review;
    // Staging (采集) is a collector's work; issuing directly (签发) an issuer's.
    let roles: &[Role] = if review { &[Role::Collector, Role::Issuer] } else { &[Role::Issuer] };
    let actor = authorize(
        &mut registry,
        &options.operator,
        "run",
        roles,
        &options.default_operator,
        started,
    )?;
    // Said on every run, as information: a registry without operators is a supported mode.
    let unauthenticated = match &actor {
        Actor::Unenforced(name) => Some(format!(
            "this registry has no admin operator, so nobody is authenticated; recorded as \
             {name:?} (`elicence operator add NAME --role admin` turns authentication on)"
        )),
        _ => None,
    };
    let operator_name = actor.name().to_owned();
    // Rights come from the published catalog: a run with another one stops here, or publishes
    // it (`--publish`); a registry that published none adopts it.
    match registry.published_catalog()? {
        Some(p) if p.sha256 != catalog_sources.sha256() && !options.publish => {
            return Err(CatalogNotPublished {
                catalog: plan.catalog_dir.clone(),
                sha256: catalog_sources.sha256(),
                published: p.number,
                published_sha256: p.sha256,
            }
            .into());
        }
        Some(_) => {
            registry.publish_catalog(&catalog_sources, &operator_name, started)?;
        }
        None => {
            registry.publish_catalog(&catalog_sources, ADOPTING_OPERATOR, started)?;
        }
    }
    let (key_set, development_keys) = match given_keys {
        Some(key_set) => (key_set, None),
        None => {
            let dir = development_key_folder(&options.data, started, &mut notes)?;
            let seal_image = renderer
                .layout_for(&plan.licence_type.name)
                .and_then(|l| l.seal.as_ref())
                .map(|spot| spot.path.as_path());
            let picture = development_seal_picture(seal_image)?;
            let made = ensure_development_identities(
                &dir,
                passphrase.as_ref(),
                &issuers,
                formats.ofd,
                &picture,
                started,
            )
            .with_context(|| format!("cannot make development identities in {}", dir.display()))?;
            notes.extend(made);
            (load_key_set(&dir, passphrase.as_ref(), started, &issuers, formats.ofd)?, Some(dir))
        }
    };
    let development_key = development_keys.is_some();
    let KeySet { registry_signer: signer, identities } = key_set;
    let checkpoint_tsa = tsa.clone();
    // B-LT: the chains' and the TSA's validation data, gathered once for the whole run.
    let long_term = match (&tsa, pades_level >= PadesLevel::BLt) {
        (Some(tsa), true) => {
            let key_dir = options.keys.clone().or_else(|| development_keys.clone());
            let key_dirs: Vec<&Path> = key_dir.as_deref().into_iter().collect();
            Some(LongTerm::gather(pades_level, &identities, tsa.clone(), &key_dirs, started)?)
        }
        _ => None,
    };
    let producer = Producer::with_renderer(renderer, identities, started)
        .with_tsa(tsa)
        .with_public_url(public_url)
        .with_long_term(long_term);
    let run_id = registry.start_run(&RunStart {
        pipeline: plan.path.display().to_string(),
        inputs: hashes.iter().map(|(p, s, _)| (p.display().to_string(), s.clone())).collect(),
        operator: operator_name.clone(),
        at: started,
    })?;
    span.record("id", run_id.0);
    log_identities(producer.identities());
    let shard_note = options.shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
    let review_note = if review { " (staged for review: nothing is signed)" } else { "" };
    tracing::info!(
        pipeline = %plan.name,
        "run {} of {} into {}{shard_note}{review_note}",
        run_id.0,
        plan.name,
        registry.db_path().display()
    );
    if let Some(tsa) = &checkpoint_tsa {
        let how = if tsa.pipelines() {
            "requests pipelined on a kept connection"
        } else {
            "one request at a time a connection (the TSA does not keep connections open)"
        };
        tracing::info!("timestamps from {}: {how}", tsa.url());
    }
    for note in notes {
        tracing::warn!("{note}");
    }
    if let Some(note) = unauthenticated {
        tracing::info!("{note}");
    }
    let write_metrics = |outcome: &str,
                         counts: &RunCounts,
                         by_rule: &BTreeMap<String, u64>,
                         at: DateTime<Utc>|
     -> anyhow::Result<()> {
        if let Some(path) = &options.metrics_file {
            let elapsed = clock.elapsed().as_secs_f64();
            metrics::write(path, &run_metrics(&plan.name, outcome, counts, by_rule, elapsed, at))?;
        }
        Ok(())
    };

    let files = match &options.out {
        Some(dir) => Some(RowFiles::create(dir, &plan.licence_type)?),
        None => None,
    };
    let mut dedupe = Dedupe::default();
    let mut inputs = Vec::with_capacity(hashes.len());
    let today = started.date_naive();
    let total_bytes = hashes.iter().map(|(_, _, bytes)| *bytes).sum();
    let progress = Progress::new(options.progress, options.quiet, total_bytes)
        .log_every(options.progress_interval);
    let interrupt = Interrupt::install();
    let registry_ref = &registry;
    let operator = operator_name.as_str();
    let totals = std::thread::scope(|scope| {
        let loader = Loader::spawn(
            scope,
            &options.data,
            options.registry.as_deref(),
            options.store.as_deref(),
            run_id,
            operator,
            started,
            options.segments,
        )?;
        let mut scheduler = ChunkScheduler {
            pool: production.as_ref().unwrap_or(&pool),
            plan: &plan,
            producer: &producer,
            registry: registry_ref,
            loader,
            in_flight: Default::default(),
            started: None,
            files,
            pending: Vec::with_capacity(CHUNK),
            rejects: Vec::new(),
            counts: RunCounts::default(),
            by_rule: BTreeMap::new(),
            input_dir: PathBuf::new(),
            progress,
            interrupt,
            stages: StageTimes::default(),
            shard: options.shard,
            review,
        };
        let mut result = (|| -> anyhow::Result<()> {
            for (path, sha, bytes) in &hashes {
                if scheduler.interrupt.is_set() {
                    break;
                }
                scheduler.input_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                scheduler.progress.begin_input(*bytes);
                let mut summary =
                    validate_input(&plan, path, today, &pool, &mut dedupe, &mut scheduler)?;
                scheduler.drain_pending()?;
                summary.sha256 = sha.clone();
                summary.bytes = *bytes;
                inputs.push(summary);
            }
            Ok(())
        })();
        // Whatever happened, wait for the chunks already handed to the loader: they are
        // committed and belong in the counts.
        let finished = scheduler.finish();
        if result.is_ok() {
            result = finished;
        }
        scheduler.loader.close();
        scheduler.progress.finish();
        anyhow::Ok(ScheduledTotals {
            result,
            interrupted: scheduler.interrupt.signal(),
            counts: scheduler.counts,
            by_rule: std::mem::take(&mut scheduler.by_rule),
            files: scheduler.files.take(),
            stages: scheduler.stages,
        })
    })?;
    let finished = crate::clock::now()?;
    let ScheduledTotals { result, interrupted, counts, by_rule, files, mut stages } = totals;
    for input in &inputs {
        stages.add(&input.stages);
    }
    if let Err(e) = result {
        // Record the failure; the error itself is what the user needs to see (main prints it).
        let _ = registry.finish_run(run_id, &counts, RunOutcome::Failed, operator, finished);
        tracing::error!(outcome = "failed", "run {} failed: {e}", run_id.0);
        if let Err(m) = write_metrics("failed", &counts, &by_rule, finished) {
            tracing::warn!("{m}");
        }
        return Err(e);
    }
    if let Some(signal) = interrupted {
        registry.finish_run(run_id, &counts, RunOutcome::Interrupted, operator, finished)?;
        write_metrics("interrupted", &counts, &by_rule, finished)?;
        return Ok(RunResult::Interrupted { run: run_id.0, counts, signal });
    }
    registry.finish_run(run_id, &counts, RunOutcome::Completed, operator, finished)?;
    // The run ends with a signed tree head over everything it (and any shard) committed.
    let written = super::write_checkpoint(&registry, &*signer, checkpoint_tsa.as_deref(), finished)
        .with_context(|| {
            format!(
                "run {} completed and committed, but its transparency log checkpoint was not \
                 written; `elicence log checkpoint` writes it",
                run_id.0
            )
        })?;
    if let super::CheckpointWritten::New(c) = &written {
        tracing::info!(
            tree_size = c.tree_size,
            "transparency log: checkpoint of {} leaves, root {}",
            c.tree_size,
            c.root_hash
        );
    }
    write_metrics("completed", &counts, &by_rule, finished)?;
    if let Some(f) = files {
        f.finish()?;
    }
    let reconciled = counts.reconciles();
    let report = RunReport {
        run: run_id.0,
        pipeline: plan.path.display().to_string(),
        licence_type: plan.licence_type.name.clone(),
        data: options.data.display().to_string(),
        development_key,
        started: started.to_rfc3339(),
        finished: finished.to_rfc3339(),
        inputs,
        counts,
        review,
        reconciled,
        rejects_by_rule: by_rule,
        wall_s: clock.elapsed().as_secs_f64(),
        stages,
    };
    if let Some(dir) = &options.out {
        report::write_json(dir, &report)?;
    }
    Ok(RunResult::Completed { report: Box::new(report), development_keys })
}

/// The metrics file's figures for a run that ended with `outcome` at `at`.
fn run_metrics<'a>(
    pipeline: &'a str,
    outcome: &'a str,
    counts: &RunCounts,
    by_rule: &'a BTreeMap<String, u64>,
    duration_s: f64,
    at: DateTime<Utc>,
) -> RunMetrics<'a> {
    RunMetrics {
        pipeline,
        outcome,
        rows_read: counts.read,
        issued: counts.issued,
        changed: counts.changed,
        revoked: counts.revoked,
        unchanged: counts.unchanged,
        duplicates: counts.duplicates,
        rejected: counts.rejected,
        rejects_by_rule: by_rule,
        duration_s,
        finished_unix: at.timestamp(),
        last_success_unix: (outcome == "completed").then(|| at.timestamp()),
    }
}

/// The signers of a key set that a run or an approval uses: the key set's own (it signs the
/// transparency log's checkpoints) and each issuer's identity.
pub(super) struct KeySet {
    pub(super) registry_signer: Arc<RsaSigner>,
    pub(super) identities: Identities,
}

/// Loads the key set `keys` for `issuers` (with their OFD seals when `ofd`), valid at `at`.
pub(super) fn load_key_set(
    keys: &Path,
    passphrase: Option<&Passphrase>,
    at: DateTime<Utc>,
    issuers: &[IssuerRequest],
    ofd: bool,
) -> anyhow::Result<KeySet> {
    let registry_signer = RsaSigner::load(keys, passphrase, at).with_context(|| {
        format!(
            "cannot load the key set's own signer (it signs the transparency log's checkpoints) \
             from {}",
            keys.display()
        )
    })?;
    let identities = load_identities(keys, passphrase, at, issuers, ofd)?;
    Ok(KeySet { registry_signer: Arc::new(registry_signer), identities })
}

/// Says, for every issuer, whose identity signs its licences.
pub(super) fn log_identities(identities: &Identities) {
    for (code, own) in identities.issuers() {
        let whose = if own { "its own identity" } else { "the key set's DEFAULT signer" };
        tracing::info!(issuer = code, "licences of {code} are signed with {whose}");
    }
}

/// Refuses, on a production registry, a run without `--keys` or any development certificate
/// among the key set's signers.
pub(super) fn check_production_keys(
    production: bool,
    keys: Option<&Path>,
    key_set: Option<&KeySet>,
) -> anyhow::Result<()> {
    check_production_key(production, keys, None)?;
    if let Some(set) = key_set {
        let registry_signer: &dyn Signer = set.registry_signer.as_ref();
        for signer in std::iter::once(registry_signer).chain(set.identities.signers()) {
            check_production_key(production, keys, Some(signer))?;
        }
    }
    Ok(())
}

/// The development key of a data folder, created on first use. Every run that uses it says so
/// (in `notes`).
pub(super) fn development_key_folder(
    data: &Path,
    at: DateTime<Utc>,
    notes: &mut Vec<String>,
) -> anyhow::Result<PathBuf> {
    let dir = data.join("dev-keys");
    if !dir.join("signer.key").exists() {
        init_dev_keys(&dir, at, &DevKeyOptions::default())
            .with_context(|| format!("cannot create a development key in {}", dir.display()))?;
        notes.push(format!(
            "created a DEVELOPMENT signing key in {} (not for production)",
            dir.display()
        ));
    }
    notes.push(format!("no --keys given: signing with the DEVELOPMENT key in {}", dir.display()));
    Ok(dir)
}
