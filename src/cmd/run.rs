//! `elicence run`: the main job. Read → validate → identify → render → sign → load into the
//! registry, chunk by chunk: each chunk's rows are decided against the registry in input order
//! (new, unchanged, change, revoke), the new versions are rendered and signed on all cores, and
//! the chunk is committed in one transaction. A run killed at any point and started again ends
//! with the same registry: committed chunks come back as `unchanged`, the rest is loaded.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;

use crate::cmd::{exit, now, operator};
use loader::{Done, Job, Loader};

mod loader;
use crate::engine::{self, EngineError, Outcome, RowSink};
use crate::pipeline::{self, Plan};
use crate::produce::Producer;
use crate::progress::{Interrupt, Progress, ProgressMode};
use crate::registry::{
    Decision, DecisionInput, LoadItem, NaturalKey, Registry, RejectRecord, RunCounts, RunOutcome,
    RunStart,
};
use crate::report::{self, InputSummary, RowFiles, StageTimes};
use crate::shard::Shard;
use crate::sign::keys::{DevKeyOptions, init_dev_keys};
use crate::sign::{RsaSigner, passphrase_from_env_or_file};
use crate::validate::{Dedupe, Problem, RowReject, Rule, ValidRow};

/// Valid rows decided, rendered and committed together (one transaction).
const CHUNK: usize = 256;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence run pipelines/food-business-permit.toml --input fixtures/food-business-permit/export-gbk.csv\n  \
    elicence run pipelines/food-business-permit.toml --input 2017.xlsx 2018.xlsx --keys /etc/elicence/keys --data /var/lib/elicence --out out/\n\n\
    Without --keys, a development key in <data>/dev-keys is used (created on first use) and every run says so.")]
pub struct RunArgs {
    /// Pipeline file (pipelines/*.toml).
    pub pipeline: PathBuf,
    /// Export(s) to load.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Key folder with signer.key and signer.pem. Default: a development key in the data folder.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// File with the key's passphrase (else ELICENCE_KEY_PASSPHRASE, if the key is encrypted).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Registry folder (SQLite file and content-addressed store).
    #[arg(long, env = "ELICENCE_DATA", default_value = "elicence-data")]
    pub data: PathBuf,
    /// Registry database: postgres://USER@HOST/DB or sqlite:PATH (default: the SQLite file
    /// in --data). With PostgreSQL the store stays in --data/store, a path all machines share.
    #[arg(long, env = "ELICENCE_REGISTRY")]
    pub registry: Option<String>,
    /// Folder for rejects.csv, duplicates.csv, valid.csv and report.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Who runs this (audit trail). Default: the OS user.
    #[arg(long)]
    pub operator: Option<String>,
    /// Fail (exit 5) when more than this fraction of rows is rejected.
    #[arg(long, value_name = "FRACTION")]
    pub max_reject_rate: Option<f64>,
    /// Worker threads for validating, rendering and signing (default: all cores). Reading and
    /// loading run on their own threads beside them; to hold the whole run to fewer cores, use
    /// `taskset` (Linux) or the scheduler's CPU limit.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print the JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Progress bars (auto: when stderr is a terminal; else a log line every
    /// --progress-interval seconds).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Seconds between plain progress lines (when stderr is not a terminal, or with
    /// --progress never).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub progress_interval: f64,
    /// No progress and no summary on stderr (errors and warnings still show).
    #[arg(long)]
    pub quiet: bool,
    /// Load only shard K of N (0-based): N processes with K = 0..N-1 load the whole input
    /// together into one registry (PostgreSQL across machines; SQLite only on one machine).
    /// Rows go to shards by natural key; rejects and duplicates to shard 0. Give every shard
    /// the same --keys.
    #[arg(long, env = "ELICENCE_SHARD", value_name = "K/N")]
    pub shard: Option<Shard>,
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
    pub reconciled: bool,
    pub rejects_by_rule: BTreeMap<String, u64>,
    /// Wall time of the whole run, and the busy time of each stage (they overlap).
    pub wall_s: f64,
    pub stages: StageTimes,
}

pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    if let Some(r) = args.max_reject_rate
        && !(0.0..=1.0).contains(&r)
    {
        anyhow::bail!("--max-reject-rate must be between 0 and 1, got {r}");
    }
    let clock = Instant::now();
    let plan = pipeline::load(&args.pipeline)?;
    let started = now()?;
    let operator = operator(args.operator.as_deref());
    let mut registry = Registry::open_with(&args.data, args.registry.as_deref())?;
    let (keys, development_key) = match &args.keys {
        Some(k) => (k.clone(), false),
        None => (development_keys(&args.data, started)?, true),
    };
    let passphrase = passphrase_from_env_or_file(args.passphrase_file.as_deref())?;
    let signer = RsaSigner::load(&keys, passphrase.as_ref(), started)
        .with_context(|| format!("cannot load the signing key from {}", keys.display()))?;
    let producer = Producer::new(&[plan.layout_path.as_path()], Arc::new(signer), started)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;

    let mut hashes = Vec::with_capacity(args.input.len());
    for path in &args.input {
        let (sha, bytes) = report::sha256_file(path).map_err(|source| EngineError::Unreadable {
            file: path.display().to_string(),
            source,
        })?;
        hashes.push((path.clone(), sha, bytes));
    }
    let run_id = registry.start_run(&RunStart {
        pipeline: plan.path.display().to_string(),
        inputs: hashes.iter().map(|(p, s, _)| (p.display().to_string(), s.clone())).collect(),
        operator: operator.clone(),
        at: started,
    })?;
    let shard_note = args.shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
    eprintln!(
        "run {} of {} into {}{shard_note}",
        run_id.0,
        plan.name,
        registry.db_path().display()
    );

    let files = match &args.out {
        Some(dir) => Some(RowFiles::create(dir, &plan.licence_type)?),
        None => None,
    };
    let mut dedupe = Dedupe::default();
    let mut inputs = Vec::with_capacity(hashes.len());
    let today = started.date_naive();
    let total_bytes = hashes.iter().map(|(_, _, bytes)| *bytes).sum();
    let progress = Progress::new(args.progress, args.quiet, total_bytes)
        .log_every(Duration::from_secs_f64(args.progress_interval.clamp(0.0, 86_400.0)));
    let interrupt = Interrupt::install();
    let registry_ref = &registry;
    let outcome = std::thread::scope(|scope| {
        let loader =
            Loader::spawn(scope, &args.data, args.registry.as_deref(), run_id, &operator, started)?;
        let mut sink = RunSink {
            pool: &pool,
            plan: &plan,
            producer: &producer,
            registry: registry_ref,
            loader,
            in_flight: VecDeque::new(),
            files,
            pending: Vec::with_capacity(CHUNK),
            rejects: Vec::new(),
            counts: RunCounts::default(),
            by_rule: BTreeMap::new(),
            input_dir: PathBuf::new(),
            progress,
            interrupt,
            stages: StageTimes::default(),
            shard: args.shard,
        };
        let mut result = (|| -> anyhow::Result<()> {
            for (path, sha, bytes) in &hashes {
                if sink.interrupt.is_set() {
                    break;
                }
                sink.input_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                sink.progress.begin_input(*bytes);
                let mut summary =
                    engine::validate_input(&plan, path, today, &pool, &mut dedupe, &mut sink)?;
                sink.drain_pending()?;
                summary.sha256 = sha.clone();
                summary.bytes = *bytes;
                inputs.push(summary);
            }
            Ok(())
        })();
        // Whatever happened, wait for the chunks already handed to the loader: they are
        // committed and belong in the counts.
        let finished = sink.finish();
        if result.is_ok() {
            result = finished;
        }
        sink.loader.close();
        sink.progress.finish();
        anyhow::Ok(Sunk {
            result,
            interrupted: sink.interrupt.is_set(),
            counts: sink.counts,
            by_rule: std::mem::take(&mut sink.by_rule),
            files: sink.files.take(),
            stages: sink.stages,
        })
    })?;
    let finished = now()?;
    let Sunk { result, interrupted, counts, by_rule, files, mut stages } = outcome;
    for input in &inputs {
        stages.add(&input.stages);
    }
    if let Err(e) = result {
        // Record the failure; the error itself is what the user needs to see.
        let _ = registry.finish_run(run_id, &counts, RunOutcome::Failed, &operator, finished);
        return Err(e);
    }
    if interrupted {
        registry.finish_run(run_id, &counts, RunOutcome::Interrupted, &operator, finished)?;
        eprintln!(
            "interrupted at a chunk boundary after {} rows ({} issued, {} changed, {} revoked committed). \
             Run the same command again to resume: committed licences come back as unchanged.",
            counts.read, counts.issued, counts.changed, counts.revoked
        );
        return Ok(exit::INTERRUPTED);
    }
    registry.finish_run(run_id, &counts, RunOutcome::Completed, &operator, finished)?;
    if let Some(f) = files {
        f.finish()?;
    }
    let reconciled = counts.reconciles();
    let report = RunReport {
        run: run_id.0,
        pipeline: plan.path.display().to_string(),
        licence_type: plan.licence_type.name.clone(),
        data: args.data.display().to_string(),
        development_key,
        started: started.to_rfc3339(),
        finished: finished.to_rfc3339(),
        inputs,
        counts,
        reconciled,
        rejects_by_rule: by_rule,
        wall_s: clock.elapsed().as_secs_f64(),
        stages,
    };
    if let Some(dir) = &args.out {
        report::write_json(dir, &report)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    let c = &counts;
    if !args.quiet {
        eprintln!(
            "read {} = issued {} + changed {} + revoked {} + unchanged {} + duplicates {} + rejected {}{}{}",
            c.read,
            c.issued,
            c.changed,
            c.revoked,
            c.unchanged,
            c.duplicates,
            c.rejected,
            args.shard.map(|_| format!(" + other shards {}", c.other_shard)).unwrap_or_default(),
            if reconciled { "" } else { "  (DOES NOT RECONCILE)" }
        );
        for (rule, n) in &report.rejects_by_rule {
            eprintln!("  rejected by {rule}: {n}");
        }
    }
    if development_key {
        eprintln!(
            "warning: signed with the DEVELOPMENT key in {} (not for production)",
            keys.display()
        );
    }
    if !reconciled {
        return Ok(exit::FAILURE);
    }
    let rate = if c.read == 0 { 0.0 } else { c.rejected as f64 / c.read as f64 };
    if let Some(max) = args.max_reject_rate
        && rate > max
    {
        eprintln!("reject rate {rate:.4} exceeds --max-reject-rate {max}");
        return Ok(exit::REJECT_RATE);
    }
    Ok(exit::OK)
}

/// The development key of a data folder, created on first use. Every run that uses it says so.
fn development_keys(data: &Path, at: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    let dir = data.join("dev-keys");
    if !dir.join("signer.key").exists() {
        init_dev_keys(&dir, at, &DevKeyOptions::default())
            .with_context(|| format!("cannot create a development key in {}", dir.display()))?;
        eprintln!("created a DEVELOPMENT signing key in {} (not for production)", dir.display());
    }
    eprintln!("warning: no --keys given: signing with the DEVELOPMENT key in {}", dir.display());
    Ok(dir)
}

/// Decides, renders and signs valid rows chunk by chunk and hands them to the loader thread;
/// writes and records rejects; keeps the counts as chunks come back committed.
struct RunSink<'a, 'scope> {
    /// Renders and signs on the run's threads (the sink itself runs outside the pool).
    pool: &'a rayon::ThreadPool,
    plan: &'a Plan,
    producer: &'a Producer,
    /// This thread's connection: decisions only (the loader commits on its own).
    registry: &'a Registry,
    loader: Loader<'scope>,
    /// Natural keys and holders of each chunk in flight, oldest first.
    in_flight: VecDeque<(HashSet<NaturalKey>, HashSet<String>)>,
    files: Option<RowFiles>,
    pending: Vec<ValidRow>,
    rejects: Vec<RejectRecord>,
    counts: RunCounts,
    by_rule: BTreeMap<String, u64>,
    /// Folder of the current input: archive-copy paths are relative to it.
    input_dir: PathBuf,
    progress: Progress,
    interrupt: Interrupt,
    /// Busy time of the decide, render-and-sign and load stages.
    stages: StageTimes,
    /// `--shard K/N`: rows of other shards are only counted.
    shard: Option<Shard>,
}

/// What the sink leaves behind when the inputs are done (or the run stopped).
struct Sunk {
    result: anyhow::Result<()>,
    interrupted: bool,
    counts: RunCounts,
    by_rule: BTreeMap<String, u64>,
    files: Option<RowFiles>,
    stages: StageTimes,
}

/// Attempts at deciding one chunk when other processes keep changing the same licences.
const MAX_ATTEMPTS: u32 = 5;

impl RunSink<'_, '_> {
    fn reject(&mut self, r: &RowReject) -> anyhow::Result<()> {
        self.counts.rejected += 1;
        if let Some(p) = r.primary() {
            *self.by_rule.entry(p.rule.as_str().to_string()).or_default() += 1;
        }
        if let Some(f) = self.files.as_mut() {
            f.reject(r)?;
        }
        self.rejects.push(RejectRecord {
            file: r.pos.file.to_string(),
            sheet: r.pos.sheet.as_deref().map(str::to_string),
            line: r.pos.row,
            field: r.primary().map(|p| p.field.clone()).unwrap_or_default(),
            rule: r.primary().map(|p| p.rule.as_str().to_string()).unwrap_or_default(),
            message: r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "),
        });
        Ok(())
    }

    fn decision_input(&self, row: &ValidRow) -> DecisionInput {
        let l = &row.licence;
        DecisionInput {
            key: NaturalKey::of(l),
            content_hash: row.content_key,
            status: l.status,
            holder_code: l.holder_code.clone(),
            single_instance: self.plan.licence_type.single_instance,
        }
    }

    /// Hands the pending rows (and the rejects so far) to the load stage.
    fn flush(&mut self) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.pending);
        let rejects = std::mem::take(&mut self.rejects);
        if rows.is_empty() && rejects.is_empty() {
            return Ok(());
        }
        self.submit(rows, rejects, 1)
    }

    /// Submits every pending row, including rows held back behind chunks in flight (at the
    /// end of an input: archive-copy paths are relative to it).
    fn drain_pending(&mut self) -> anyhow::Result<()> {
        while !self.pending.is_empty() || !self.rejects.is_empty() {
            self.flush()?;
        }
        Ok(())
    }

    /// Submits every pending row, then waits until every chunk is committed.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.drain_pending()?;
        while self.collect(true)? {}
        Ok(())
    }

    /// Splits `rows` into those that can be decided now and those that touch a licence (or,
    /// for single-instance types, a holder) of a chunk still in flight: those wait, and so do
    /// later rows of the same licence or holder, so that each licence's rows keep their order.
    fn hold_back(&self, rows: Vec<ValidRow>) -> (Vec<ValidRow>, Vec<ValidRow>) {
        if self.in_flight.is_empty() {
            return (rows, Vec::new());
        }
        let single = self.plan.licence_type.single_instance;
        let mut held_keys: HashSet<NaturalKey> = HashSet::new();
        let mut held_holders: HashSet<String> = HashSet::new();
        let (mut ready, mut held) = (Vec::with_capacity(rows.len()), Vec::new());
        for row in rows {
            let l = &row.licence;
            let key = NaturalKey::of(l);
            let holder = single.then_some(l.holder_code.as_str());
            let busy = held_keys.contains(&key)
                || holder.is_some_and(|h| held_holders.contains(h))
                || self.in_flight.iter().any(|(k, h)| {
                    k.contains(&key) || holder.is_some_and(|holder| h.contains(holder))
                });
            if busy {
                held_keys.insert(key);
                if let Some(h) = holder {
                    held_holders.insert(h.to_string());
                }
                held.push(row);
            } else {
                ready.push(row);
            }
        }
        (ready, held)
    }

    /// Decides, renders and signs `rows` and queues them for the loader. Rows that touch a
    /// chunk still in flight go back to the pending rows (see [`RunSink::hold_back`]), so that
    /// every decision sees the registry as the earlier rows left it while the loader commits.
    fn submit(
        &mut self,
        rows: Vec<ValidRow>,
        rejects: Vec<RejectRecord>,
        attempt: u32,
    ) -> anyhow::Result<()> {
        while self.collect(false)? {}
        let mut rows = rows;
        loop {
            let (ready, held) = self.hold_back(rows);
            if ready.is_empty() && !held.is_empty() {
                // Everything waits for the oldest chunk in flight.
                self.collect(true)?;
                rows = held;
                continue;
            }
            if !held.is_empty() {
                let later = std::mem::replace(&mut self.pending, held);
                self.pending.extend(later);
            }
            rows = ready;
            break;
        }
        if rows.is_empty() && rejects.is_empty() {
            return Ok(());
        }
        let inputs: Vec<DecisionInput> = rows.iter().map(|r| self.decision_input(r)).collect();
        let keys: HashSet<NaturalKey> = inputs.iter().map(|i| i.key.clone()).collect();
        let holders: HashSet<String> =
            inputs.iter().filter(|i| i.single_instance).map(|i| i.holder_code.clone()).collect();
        let job = self.prepare(rows, inputs, rejects, attempt)?;
        self.loader.send(job)?;
        self.in_flight.push_back((keys, holders));
        Ok(())
    }

    /// Takes one finished chunk from the loader (waiting for it when `wait`). False when there
    /// was none.
    fn collect(&mut self, wait: bool) -> anyhow::Result<bool> {
        let Some(done) = self.loader.next(wait)? else {
            return Ok(false);
        };
        self.in_flight.pop_front();
        match done {
            Done::Committed { job, results, seconds } => {
                self.stages.load_s += seconds;
                for r in &results {
                    self.counts.tally(r);
                }
                self.progress.chunk(job.signed, results.len() as u64);
                for r in &job.late {
                    self.reject(r)?;
                }
                // The accepted rows of the chunk, in input order, once committed.
                if let Some(f) = self.files.as_mut() {
                    for &i in &job.accepted {
                        if let Some(row) = job.rows.get(i) {
                            f.valid(row)?;
                        }
                    }
                }
            }
            Done::Stale { job } => {
                if job.attempt >= MAX_ATTEMPTS {
                    anyhow::bail!("the registry kept changing under this run; try again");
                }
                // Decide again once everything before it is committed.
                while self.collect(true)? {}
                self.submit(job.rows, Vec::new(), job.attempt + 1)?;
            }
            Done::Failed(e) => return Err(e),
        }
        Ok(true)
    }

    /// Decides `rows` against the registry, renders and signs the new versions on all cores,
    /// reads archive copies, and builds the chunk for the loader.
    fn prepare(
        &mut self,
        rows: Vec<ValidRow>,
        inputs: Vec<DecisionInput>,
        rejects: Vec<RejectRecord>,
        attempt: u32,
    ) -> anyhow::Result<Job> {
        let started = Instant::now();
        let decisions = self.registry.decide_many(&inputs)?;
        self.stages.decide_s += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let producer = self.producer;
        let input_dir = &self.input_dir;
        let made: Vec<Made> = self.pool.install(|| {
            rows.par_iter()
                .zip(decisions.par_iter())
                .map(|(row, decision)| make(producer, input_dir, row, decision))
                .collect()
        });
        self.stages.render_sign_s += started.elapsed().as_secs_f64();
        let mut job = Job {
            items: Vec::with_capacity(rows.len()),
            rejects,
            rows: Vec::new(),
            accepted: Vec::with_capacity(rows.len()),
            late: Vec::new(),
            signed: 0,
            attempt,
        };
        for (i, ((row, input), (decision, made))) in
            rows.iter().zip(inputs).zip(decisions.into_iter().zip(made)).enumerate()
        {
            if let Decision::Refused(refusal) = &decision {
                let rule = match refusal.rule() {
                    "single_instance" => Rule::SingleInstance,
                    "change_after_revoke" => Rule::ChangeAfterRevoke,
                    _ => Rule::Identifier,
                };
                job.late.push(late_reject(row, rule, refusal.to_string()));
                continue;
            }
            let (files, archive) = match made {
                Made::Refused(rule, message) => {
                    job.late.push(late_reject(row, rule, message));
                    continue;
                }
                Made::Ready(files, archive) => (files, archive),
            };
            let l = &row.licence;
            let fields: serde_json::Map<String, serde_json::Value> = l
                .fields
                .iter()
                .map(|f| (f.key.to_string(), serde_json::Value::String(f.value.clone())))
                .collect();
            let (pdf, xml) = match files {
                Some((p, x)) => {
                    job.signed += 1;
                    (Some(p), Some(x))
                }
                None => (None, None),
            };
            job.accepted.push(i);
            job.items.push(LoadItem {
                input,
                decision,
                holder_name: l.holder_name.clone(),
                issue_date: l.issue_date,
                valid_to: l.valid_to,
                fields_json: serde_json::Value::Object(fields).to_string(),
                pdf,
                xml,
                archive_image: archive,
                source: l.pos.to_string(),
            });
        }
        job.rows = rows;
        Ok(job)
    }
}

/// Renders and signs one row's new version (if the decision makes one) and reads its archive
/// copy (if it has one).
fn make(producer: &Producer, input_dir: &Path, row: &ValidRow, decision: &Decision) -> Made {
    let artefacts = match decision.new_version() {
        Some((identifier, version)) => match producer.produce(&row.licence, version) {
            Ok(a) if a.id.to_string() == identifier => Some(a),
            Ok(a) => {
                return Made::Refused(
                    Rule::Identifier,
                    format!("rendered {} but the registry expects {identifier}", a.id),
                );
            }
            Err(e) => return Made::Refused(Rule::Render, e.to_string()),
        },
        None => None,
    };
    let archive = match &row.archive_copy {
        Some(path) => match read_archive_copy(&input_dir.join(path)) {
            Ok(bytes) => Some(bytes),
            Err(e) => return Made::Refused(Rule::ArchiveCopy, format!("{path}: {e}")),
        },
        None => None,
    };
    Made::Ready(artefacts.map(|a| (a.pdf, a.xml.into_bytes())), archive)
}

/// A valid row refused at a later stage becomes a reject with its position.
fn late_reject(row: &ValidRow, rule: Rule, message: String) -> RowReject {
    RowReject {
        pos: row.licence.pos.clone(),
        problems: vec![Problem::new("", rule, message)],
        cells: row.licence.fields.iter().map(|f| f.value.clone()).collect(),
    }
}

enum Made {
    Ready(Option<(Vec<u8>, Vec<u8>)>, Option<Vec<u8>>),
    Refused(Rule, String),
}

/// Largest scanned archive copy accepted (a scan of one page).
const MAX_ARCHIVE_BYTES: u64 = 32 * 1024 * 1024;

/// Reads a scanned image of the paper licence and checks that it decodes as an image. It is
/// stored as the archive copy (存档副本), never as the e-licence.
fn read_archive_copy(path: &Path) -> anyhow::Result<Vec<u8>> {
    let size =
        std::fs::metadata(path).with_context(|| "cannot read the archive copy".to_string())?.len();
    if size > MAX_ARCHIVE_BYTES {
        anyhow::bail!("archive copy is {size} bytes, at most {MAX_ARCHIVE_BYTES}");
    }
    let bytes = std::fs::read(path)?;
    image::load_from_memory(&bytes).map_err(|e| anyhow::anyhow!("not a readable image: {e}"))?;
    Ok(bytes)
}

impl RowSink for RunSink<'_, '_> {
    fn headers(&mut self, headers: &[String]) -> anyhow::Result<()> {
        if let Some(f) = self.files.as_mut() {
            f.set_source_headers(headers)?;
        }
        Ok(())
    }

    fn row(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        self.counts.read += 1;
        if self.shard.is_some_and(|s| !s.owns(&outcome)) {
            self.counts.other_shard += 1;
            return Ok(());
        }
        self.progress.row(matches!(outcome, Outcome::Valid(_)));
        match outcome {
            Outcome::Valid(row) => {
                self.pending.push(*row);
                if self.pending.len() == CHUNK {
                    self.flush()?;
                }
            }
            Outcome::Duplicate { pos, first } => {
                self.counts.duplicates += 1;
                if let Some(f) = self.files.as_mut() {
                    f.duplicate(&pos, &first)?;
                }
            }
            Outcome::Rejected(r) => self.reject(&r)?,
        }
        Ok(())
    }

    /// Ctrl-C: stop reading; the pending chunk is committed, then the run ends as interrupted.
    fn done(&self) -> bool {
        self.interrupt.is_set()
    }

    fn read_fraction(&mut self, fraction: f64) {
        self.progress.read_fraction(fraction);
    }
}
