//! `elicence validate`: read and validate exports, write valid.csv, rejects.csv, duplicates.csv
//! and report.json, sign and load nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use crate::clock::now;
use crate::engine::Dedupe;
use crate::engine::{self, Outcome, RowSink};
use crate::exit;
use crate::pipeline;
use crate::report::{self, Counts, RowFiles, ValidateReport};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence validate pipelines/food-business-permit.toml --input exports/2017.xlsx --out out/\n  \
    elicence validate pipelines/food-business-permit.toml --input a.csv --input b.csv --out out/ --max-reject-rate 0.05")]
pub struct ValidateArgs {
    /// Pipeline file (pipelines/*.toml).
    pub pipeline: PathBuf,
    /// Export(s) to read: CSV (UTF-8, UTF-8 BOM, GBK/GB18030), xlsx, xls or ods.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Folder for valid.csv, rejects.csv, duplicates.csv and report.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fail (exit 5) when more than this fraction of rows is rejected, e.g. 0.05.
    #[arg(long, value_name = "FRACTION")]
    pub max_reject_rate: Option<f64>,
    /// Threads for validation (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print the JSON report on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ValidateArgs) -> anyhow::Result<i32> {
    if let Some(r) = args.max_reject_rate
        && !(0.0..=1.0).contains(&r)
    {
        anyhow::bail!("--max-reject-rate must be between 0 and 1, got {r}");
    }
    let plan = pipeline::load(&args.pipeline)?;
    let started = now()?;
    let today = started.date_naive();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;

    let mut files = match &args.out {
        Some(dir) => Some(RowFiles::create(dir, &plan.licence_type)?),
        None => None,
    };
    let mut dedupe = Dedupe::default();
    let mut inputs = Vec::with_capacity(args.input.len());
    let mut counts = Counts::default();
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for path in &args.input {
        let mut sink = ValidateSink { files: files.as_mut(), by_rule: &mut by_rule };
        // The report's hash needs one more pass over the file: on its own thread, beside the
        // validation rather than before it.
        let (hashed, summary) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| crate::read::sha256_file(path));
            let summary = engine::validate_input(&plan, path, today, &pool, &mut dedupe, &mut sink);
            let hashed =
                hashing.join().unwrap_or_else(|_| Err(std::io::Error::other("hash thread")));
            (hashed, summary)
        });
        let (sha, bytes) = hashed.map_err(|source| engine::EngineError::Unreadable {
            file: path.display().to_string(),
            source,
        })?;
        let mut summary = summary?;
        summary.sha256 = sha;
        summary.bytes = bytes;
        counts.add(&summary.counts);
        inputs.push(summary);
    }
    if let Some(f) = files {
        f.finish()?;
    }
    let reject_rate =
        if counts.read == 0 { 0.0 } else { counts.rejected as f64 / counts.read as f64 };
    let report = ValidateReport {
        pipeline: plan.path.display().to_string(),
        licence_type: plan.licence_type.name.clone(),
        type_code: plan.licence_type.code.clone(),
        started: started.to_rfc3339(),
        finished: now()?.to_rfc3339(),
        inputs,
        counts,
        reconciled: counts.reconciles(),
        rejects_by_rule: by_rule,
        reject_rate,
    };
    if let Some(dir) = &args.out {
        report::write_json(dir, &report)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        eprintln!(
            "read {}: valid {}, rejected {}, duplicates {}",
            counts.read, counts.valid, counts.rejected, counts.duplicates
        );
        for (rule, n) in &report.rejects_by_rule {
            eprintln!("  rejected by {rule}: {n}");
        }
        if let Some(dir) = &args.out {
            eprintln!("wrote {}/{{valid,rejects,duplicates}}.csv and report.json", dir.display());
        }
    }
    if let Some(max) = args.max_reject_rate
        && reject_rate > max
    {
        eprintln!("reject rate {reject_rate:.4} exceeds --max-reject-rate {max}");
        return Ok(exit::REJECT_RATE);
    }
    Ok(exit::OK)
}

/// Writes each outcome to the CSV files (when `--out` is given) and counts rejects by rule.
struct ValidateSink<'a> {
    files: Option<&'a mut RowFiles>,
    by_rule: &'a mut BTreeMap<String, u64>,
}

impl RowSink for ValidateSink<'_> {
    fn headers(&mut self, headers: &[String]) -> anyhow::Result<()> {
        if let Some(f) = self.files.as_mut() {
            f.set_source_headers(headers)?;
        }
        Ok(())
    }

    fn keeps_valid_rows(&self) -> bool {
        self.files.is_some()
    }

    fn row(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        if let Outcome::Rejected(r) = &outcome
            && let Some(p) = r.primary()
        {
            *self.by_rule.entry(p.rule.as_str().to_string()).or_default() += 1;
        }
        if let Some(f) = self.files.as_mut() {
            match &outcome {
                Outcome::Valid(row) => f.valid(row)?,
                Outcome::Duplicate { pos, first } => f.duplicate(pos, first)?,
                Outcome::Rejected(r) => f.reject(r)?,
            }
        }
        Ok(())
    }
}
