//! `elicence run`: the main job (read → validate → identify → render → sign → load into the
//! registry; see [`crate::engine::run`]). This file turns the flags into [`RunOptions`] and the
//! outcome into the summary, the JSON report on stdout and the exit code.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{KeyArgs, OperatorArgs, PublicUrlArgs, RegistryArgs, TsaArgs};
use crate::cmd::operator;
use crate::engine::DryRunResult;
use crate::engine::run::{RunOptions, RunResult, run as run_job};
use crate::engine::shard::Shard;
use crate::exit;
use crate::produce::{Formats, PadesLevel};
use crate::progress::ProgressMode;
use crate::registry::RunCounts;

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
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Folder for rejects.csv, duplicates.csv, valid.csv and report.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub by: OperatorArgs,
    /// Stage the rows for review instead of issuing them (采集 → 审核 → 签发): decide, render
    /// unsigned previews and record pending items; `elicence review approve` signs them. A
    /// pipeline or catalog type with `review = true` always stages.
    #[arg(long)]
    pub review: bool,
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
    #[command(flatten)]
    pub tsa: TsaArgs,
    #[command(flatten)]
    pub public_url: PublicUrlArgs,
    /// PAdES level of the PDF signatures: b-b (default without a TSA), b-t (default with
    /// one), b-lt (adds a /DSS with the chains and CRLs), b-lta (and a document timestamp).
    /// b-t and above need --tsa. Default: the pipeline's [output] pades_level.
    #[arg(long, value_name = "LEVEL")]
    pub pades_level: Option<PadesLevel>,
    /// Face formats to write and store: pdf and xml (always), ofd (sealed with each issuer's
    /// seal from --keys DIR/seals/<USCC>.esl; development seals without --keys). Default: the
    /// pipeline's [output] formats, else pdf,xml.
    #[arg(long, value_name = "LIST")]
    pub formats: Option<Formats>,
    /// Write Prometheus text-format metrics of the run here when it ends (rows, licences by
    /// outcome, rejects by rule, duration, last success time), for node_exporter's textfile
    /// collector. Written atomically, also when the run is interrupted or fails.
    #[arg(long, value_name = "PATH", conflicts_with = "dry_run")]
    pub metrics_file: Option<PathBuf>,
    /// Store each chunk's files packed into one segment object (one file, or one PUT, per
    /// chunk instead of three per licence); the registry records where each file is. Every
    /// command reads either layout. Default: segments for a store in a bucket, a file per
    /// artefact in a folder.
    #[arg(long, conflicts_with_all = ["dry_run", "no_segments"])]
    pub segments: bool,
    /// Store a file (an object) per artefact, also in a bucket.
    #[arg(long, conflicts_with = "dry_run")]
    pub no_segments: bool,
    /// Decide every row against the registry and report what the run would issue, change and
    /// revoke; sign, store and record nothing (no key is read or made, the registry is neither
    /// created nor migrated). With --out, also decisions.csv: what would happen to each row.
    #[arg(long)]
    pub dry_run: bool,
    /// Publish the pipeline's catalog as the one that decides rights when it differs from the
    /// registry's published catalog (without: exit 3 before anything is written). Recorded with
    /// the run's operator.
    #[arg(long)]
    pub publish: bool,
}

pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    if args.formats.is_some_and(|f| !(f.pdf && f.xml)) {
        eprintln!("run: --formats must include pdf and xml (the registry stores both)");
        return Ok(exit::USAGE);
    }
    if let Some(r) = args.max_reject_rate
        && !(0.0..=1.0).contains(&r)
    {
        anyhow::bail!("--max-reject-rate must be between 0 and 1, got {r}");
    }
    let options = RunOptions {
        pipeline: args.pipeline.clone(),
        inputs: args.input.clone(),
        keys: args.keys.keys.clone(),
        passphrase_file: args.keys.passphrase_file.clone(),
        data: args.registry.data.clone(),
        registry: args.registry.registry.clone(),
        store: args.registry.store.store.clone(),
        out: args.out.clone(),
        operator: args.by.claim(),
        default_operator: operator(None),
        review: args.review,
        jobs: args.jobs,
        progress: args.progress,
        progress_interval: Duration::from_secs_f64(args.progress_interval.clamp(0.0, 86_400.0)),
        quiet: args.quiet,
        shard: args.shard,
        tsa: args.tsa.tsa.clone(),
        public_url: args.public_url.public_url.clone(),
        pades_level: args.pades_level,
        started: now()?,
        formats: args.formats,
        metrics_file: args.metrics_file.clone(),
        publish: args.publish,
        segments: match (args.segments, args.no_segments) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    if args.dry_run {
        return dry_run(args, &options);
    }
    let (report, development_keys) = match run_job(&options)? {
        RunResult::Completed { report, development_keys } => (report, development_keys),
        RunResult::Interrupted { run, counts, signal } => {
            let _in_run = tracing::info_span!("run", id = run).entered();
            tracing::warn!(
                signal = signal.name(),
                "interrupted ({}) at a chunk boundary after {} rows ({} issued, {} changed, {} revoked, {} pending review committed). \
                 Run the same command again to resume: committed licences come back as unchanged.",
                signal.name(),
                counts.read,
                counts.issued,
                counts.changed,
                counts.revoked,
                counts.pending
            );
            return Ok(signal.exit_code());
        }
    };
    let _in_run = tracing::info_span!("run", id = report.run).entered();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    let c = &report.counts;
    if !args.quiet {
        tracing::info!(
            read = c.read,
            issued = c.issued,
            changed = c.changed,
            revoked = c.revoked,
            pending = c.pending,
            unchanged = c.unchanged,
            duplicates = c.duplicates,
            rejected = c.rejected,
            "read {} = issued {} + changed {} + revoked {}{} + unchanged {} + duplicates {} + rejected {}{}{}",
            c.read,
            c.issued,
            c.changed,
            c.revoked,
            if c.pending > 0 || report.review {
                format!(" + pending review {}", c.pending)
            } else {
                String::new()
            },
            c.unchanged,
            c.duplicates,
            c.rejected,
            args.shard.map(|_| format!(" + other shards {}", c.other_shard)).unwrap_or_default(),
            if report.reconciled { "" } else { "  (DOES NOT RECONCILE)" }
        );
        for (rule, n) in &report.rejects_by_rule {
            tracing::info!(rule = %rule, rejected = n, "  rejected by {rule}: {n}");
        }
    }
    if let Some(keys) = development_keys {
        tracing::warn!(
            "signed with the DEVELOPMENT key in {} (not for production)",
            keys.display()
        );
    }
    if !report.reconciled {
        return Ok(exit::FAILURE);
    }
    Ok(reject_rate_code(args, &report.counts))
}

/// Exit 5 when more rows were rejected than `--max-reject-rate` allows, else 0.
fn reject_rate_code(args: &RunArgs, c: &RunCounts) -> i32 {
    let rate = if c.read == 0 { 0.0 } else { c.rejected as f64 / c.read as f64 };
    if let Some(max) = args.max_reject_rate
        && rate > max
    {
        tracing::error!("reject rate {rate:.4} exceeds --max-reject-rate {max}");
        return exit::REJECT_RATE;
    }
    exit::OK
}

/// `run --dry-run`: the decisions, counted; nothing signed or written.
fn dry_run(args: &RunArgs, options: &RunOptions) -> anyhow::Result<i32> {
    let report = match crate::engine::dry_run::dry_run(options)? {
        DryRunResult::Completed(report) => report,
        DryRunResult::Interrupted { counts, signal } => {
            tracing::warn!(
                signal = signal.name(),
                "dry run interrupted ({}) after {} rows; nothing was written",
                signal.name(),
                counts.read
            );
            return Ok(signal.exit_code());
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    let c = &report.counts;
    if !args.quiet {
        tracing::info!(
            read = c.read,
            issued = c.issued,
            changed = c.changed,
            revoked = c.revoked,
            unchanged = c.unchanged,
            duplicates = c.duplicates,
            rejected = c.rejected,
            "dry run: read {} = would issue {} + would change {} + would revoke {} + unchanged {} + duplicates {} + rejected {}{}; nothing was signed or written",
            c.read,
            c.issued,
            c.changed,
            c.revoked,
            c.unchanged,
            c.duplicates,
            c.rejected,
            args.shard.map(|_| format!(" + other shards {}", c.other_shard)).unwrap_or_default(),
        );
        for (rule, n) in &report.rejects_by_rule {
            tracing::info!(rule = %rule, rejected = n, "  would reject by {rule}: {n}");
        }
    }
    if !report.reconciled {
        return Ok(exit::FAILURE);
    }
    Ok(reject_rate_code(args, c))
}
