//! `run --dry-run`: read and validate the inputs and decide every valid row against the
//! registry as a run would (new → issue, changed → next version, revoked → revoke, same →
//! unchanged, refused → reject), then report what the run would do. Nothing is rendered,
//! signed, stored or recorded: no key is read or made, the registry is opened without creating
//! or migrating it (an absent one is an empty one), no run or audit entry is written.
//!
//! Decisions of later chunks see those of earlier chunks through one
//! [`DecisionOverlay`](crate::registry::DecisionOverlay) kept for the whole dry run (its memory
//! grows with the licences decided). What only rendering can find (a face that does not fit,
//! an unreadable archive copy) is not predicted.
//!
//! With `--out`, the row files are written as a run writes them (`rejects.csv`,
//! `duplicates.csv`, `valid.csv`, `report.json`), plus `decisions.csv`: one line per valid row
//! with what the run would do and the identifier it would give.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::catalog::CatalogSources;
use crate::licence::LicenceStatus;
use crate::pipeline::{self, Plan};
use crate::produce::Producer;
use crate::progress::{Interrupt, StopSignal};
use crate::read::sha256_file;
use crate::registry::{Decision, DecisionOverlay, Registry, RunCounts};
use crate::report::{self, InputSummary, OutputError, RowFiles};
use crate::validate::{RowReject, Rule, ValidRow};

use super::dedupe::Dedupe;
use super::run::{CatalogNotPublished, RunOptions};
use super::schedule::{CHUNK, decision_input, late_reject};
use super::shard::Shard;
use super::stream::{EngineError, Outcome, RowSink, validate_input};

/// What a run would do (the JSON report of `run --dry-run`): read = issued + changed + revoked
/// + unchanged + duplicates + rejected (+ other_shard), with "would" in front of each.
#[derive(Debug, Serialize)]
pub struct DryRunReport {
    /// Always true: nothing was signed or written.
    pub dry_run: bool,
    pub pipeline: String,
    pub licence_type: String,
    pub data: String,
    /// The registry decided against, or `null` when there was none yet (all new).
    pub registry: Option<String>,
    pub started: String,
    pub inputs: Vec<InputSummary>,
    pub counts: RunCounts,
    pub reconciled: bool,
    pub rejects_by_rule: BTreeMap<String, u64>,
    pub wall_s: f64,
}

/// How a dry run ended.
#[derive(Debug)]
pub enum DryRunResult {
    Completed(Box<DryRunReport>),
    /// SIGINT or SIGTERM: stopped at a chunk boundary; nothing to resume.
    Interrupted {
        counts: RunCounts,
        signal: StopSignal,
    },
}

/// Decides the inputs of `options` against the registry without loading anything (module
/// docs). Fails on a broken configuration, an unreadable input or an unreachable registry, as
/// a run does, and with [`crate::registry::RegistryError::NeedsMigration`] for a registry of
/// an older schema.
pub fn dry_run(options: &RunOptions) -> anyhow::Result<DryRunResult> {
    let clock = Instant::now();
    let started = options.started;
    let plan = pipeline::load(&options.pipeline)?;
    // The layout, font and seal image are checked as a run checks them; nothing is rendered.
    Producer::load_renderer(&[plan.layout_path.as_path()])?;
    let mut hashes = Vec::with_capacity(options.inputs.len());
    for path in &options.inputs {
        let (sha, bytes) = sha256_file(path).map_err(|source| EngineError::Unreadable {
            file: path.display().to_string(),
            source,
        })?;
        hashes.push((path.clone(), sha, bytes));
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.unwrap_or(0)).build()?;
    let registry = Registry::open_for_dry_run(
        &options.data,
        options.registry.as_deref(),
        options.store.as_deref(),
    )?;
    // A run whose pipeline's catalog is not the published one stops (exit 3) before it
    // writes anything: so does its dry run, unless the run would publish it (`--publish`;
    // the dry run publishes nothing).
    let catalog = CatalogSources::read_dir(&plan.catalog_dir)?;
    if let Some(published) = registry.published_catalog()?
        && published.sha256 != catalog.sha256()
        && !options.publish
    {
        return Err(CatalogNotPublished {
            catalog: plan.catalog_dir.clone(),
            sha256: catalog.sha256(),
            published: published.number,
            published_sha256: published.sha256,
        }
        .into());
    }
    let existing = registry_exists(options);
    tracing::info!(
        "dry run of {} against {}: nothing is signed or written",
        plan.name,
        if existing {
            registry.db_path().display().to_string()
        } else {
            "an empty registry".into()
        }
    );
    let mut sink = DrySink {
        plan: &plan,
        registry: &registry,
        overlay: DecisionOverlay::default(),
        pending: Vec::with_capacity(CHUNK),
        counts: RunCounts::default(),
        by_rule: BTreeMap::new(),
        files: match &options.out {
            Some(dir) => Some(RowFiles::create(dir, &plan.licence_type)?),
            None => None,
        },
        decisions: match &options.out {
            Some(dir) => Some(DecisionsFile::create(&dir.join("decisions.csv"))?),
            None => None,
        },
        interrupt: Interrupt::install(),
        shard: options.shard,
    };
    let mut dedupe = Dedupe::default();
    let mut inputs = Vec::with_capacity(hashes.len());
    for (path, sha, bytes) in &hashes {
        if sink.interrupt.is_set() {
            break;
        }
        let mut summary =
            validate_input(&plan, path, started.date_naive(), &pool, &mut dedupe, &mut sink)?;
        sink.flush()?;
        summary.sha256 = sha.clone();
        summary.bytes = *bytes;
        inputs.push(summary);
    }
    if let Some(signal) = sink.interrupt.signal() {
        return Ok(DryRunResult::Interrupted { counts: sink.counts, signal });
    }
    if let Some(f) = sink.files.take() {
        f.finish()?;
    }
    if let Some(d) = sink.decisions.take() {
        d.finish()?;
    }
    let report = DryRunReport {
        dry_run: true,
        pipeline: plan.path.display().to_string(),
        licence_type: plan.licence_type.name.clone(),
        data: options.data.display().to_string(),
        registry: existing.then(|| registry.db_path().display().to_string()),
        started: started.to_rfc3339(),
        inputs,
        reconciled: sink.counts.reconciles(),
        counts: sink.counts,
        rejects_by_rule: sink.by_rule,
        wall_s: clock.elapsed().as_secs_f64(),
    };
    if let Some(dir) = &options.out {
        report::write_json(dir, &report)?;
    }
    Ok(DryRunResult::Completed(Box::new(report)))
}

/// True when the registry the options name exists (a PostgreSQL registry always counts).
fn registry_exists(options: &RunOptions) -> bool {
    match options.registry.as_deref().map(str::trim) {
        Some(spec) if spec.starts_with("sqlite:") => {
            Path::new(spec.trim_start_matches("sqlite:")).exists()
        }
        Some(spec) if !spec.is_empty() => true,
        _ => options.data.join(crate::registry::DB_FILE).exists(),
    }
}

/// Gathers valid rows into chunks and decides each chunk against the registry and the
/// decisions before it.
struct DrySink<'a> {
    plan: &'a Plan,
    registry: &'a Registry,
    overlay: DecisionOverlay,
    pending: Vec<ValidRow>,
    counts: RunCounts,
    by_rule: BTreeMap<String, u64>,
    files: Option<RowFiles>,
    decisions: Option<DecisionsFile>,
    interrupt: Interrupt,
    shard: Option<Shard>,
}

impl DrySink<'_> {
    fn reject(&mut self, r: &RowReject) -> anyhow::Result<()> {
        self.counts.rejected += 1;
        if let Some(p) = r.primary() {
            *self.by_rule.entry(p.rule.as_str().to_string()).or_default() += 1;
        }
        if let Some(f) = self.files.as_mut() {
            f.reject(r)?;
        }
        Ok(())
    }

    /// Decides the pending rows.
    fn flush(&mut self) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.pending);
        if rows.is_empty() {
            return Ok(());
        }
        let inputs: Vec<_> = rows.iter().map(|r| decision_input(self.plan, r)).collect();
        let decisions = self.registry.decide_uncommitted(&mut self.overlay, &inputs)?;
        for (row, decision) in rows.iter().zip(&decisions) {
            let would = match decision {
                Decision::New { .. } if row.licence.status == LicenceStatus::Revoked => {
                    self.counts.revoked += 1;
                    "revoke"
                }
                Decision::New { .. } => {
                    self.counts.issued += 1;
                    "issue"
                }
                Decision::Change { .. } => {
                    self.counts.changed += 1;
                    "change"
                }
                Decision::Revoke { .. } => {
                    self.counts.revoked += 1;
                    "revoke"
                }
                Decision::Unchanged { .. } | Decision::AlreadyRevoked { .. } => {
                    self.counts.unchanged += 1;
                    "unchanged"
                }
                Decision::Refused(refusal) => {
                    let rule = match refusal.rule() {
                        "single_instance" => Rule::SingleInstance,
                        "change_after_revoke" => Rule::ChangeAfterRevoke,
                        _ => Rule::Identifier,
                    };
                    self.reject(&late_reject(row, rule, refusal.to_string()))?;
                    continue;
                }
            };
            if let Some(f) = self.files.as_mut() {
                f.valid(row)?;
            }
            if let Some(d) = self.decisions.as_mut() {
                d.row(&row.licence.pos.to_string(), would, decision)?;
            }
        }
        Ok(())
    }
}

impl RowSink for DrySink<'_> {
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

    fn done(&self) -> bool {
        self.interrupt.is_set()
    }
}

/// `decisions.csv`: source, what the run would do, the identifier it would give or touch, and
/// the version a change would supersede. UTF-8 with BOM, like the other row files.
struct DecisionsFile {
    path: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl DecisionsFile {
    fn create(path: &Path) -> Result<DecisionsFile, OutputError> {
        let io_err = |source| OutputError { path: path.to_path_buf(), source };
        let mut file = BufWriter::new(File::create(path).map_err(io_err)?);
        file.write_all("\u{feff}".as_bytes()).map_err(io_err)?;
        let mut writer = csv::Writer::from_writer(file);
        writer
            .write_record(["source", "would", "identifier", "supersedes"])
            .map_err(|e| OutputError { path: path.to_path_buf(), source: e.into() })?;
        Ok(DecisionsFile { path: path.to_path_buf(), writer })
    }

    fn row(&mut self, source: &str, would: &str, decision: &Decision) -> Result<(), OutputError> {
        let (identifier, supersedes) = match decision {
            Decision::New { identifier } => (identifier.to_string(), String::new()),
            Decision::Change { previous_identifier, identifier } => {
                (identifier.to_string(), previous_identifier.clone())
            }
            Decision::Unchanged { identifier }
            | Decision::Revoke { identifier }
            | Decision::AlreadyRevoked { identifier } => (identifier.clone(), String::new()),
            Decision::Refused(_) => (String::new(), String::new()),
        };
        self.writer
            .write_record([source, would, &identifier, &supersedes])
            .map_err(|e| OutputError { path: self.path.clone(), source: e.into() })
    }

    fn finish(mut self) -> Result<(), OutputError> {
        let path = self.path.clone();
        self.writer.flush().map_err(|source| OutputError { path, source })
    }
}
