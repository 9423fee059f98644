//! `elicence gen`: writes a synthetic export of a pipeline's licence type, with defects at a
//! chosen rate and the expected outcome of every row beside it (see [`crate::gen`]).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::exit;
use crate::r#gen::{self, GenOptions, OutputFormat};
use crate::pipeline;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence gen pipelines/food-business-permit.toml --rows 1000 --format csv --out food.csv\n  \
    elicence gen pipelines/business-licence.toml --rows 100000 --format csv-gbk --defects 0.05 --seed 42 --out biz.csv\n  \
    elicence gen special-operations-certificate --rows 500 --format xlsx --defects 0.2 --out spc.xlsx\n  \
    elicence validate pipelines/food-business-permit.toml --input food.csv --out out/   # compare with food.csv.expected.csv\n\n\
    Supported types: food-business-permit, business-licence, special-operations-certificate.\n\
    Beside FILE, FILE.expected.csv lists line,outcome,rule for every data row: outcome is \
    valid, rejected or duplicate, rule the reject rule `validate` reports.")]
pub struct GenArgs {
    /// Pipeline file (pipelines/*.toml), or the name of a shipped one (pipelines/NAME.toml).
    pub pipeline: PathBuf,
    /// Number of data rows.
    #[arg(long)]
    pub rows: u64,
    /// Output format; default from the extension of --out (.xlsx → xlsx, else csv).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Fraction of rows (0 to 1) that get one defect each.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub defects: f64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The export to write; the expected outcomes go to FILE.expected.csv.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// The pipeline file for `given`: the path itself, or `pipelines/<given>.toml` for a bare name.
fn pipeline_path(given: &Path) -> PathBuf {
    let bare = given.extension().is_none() && given.components().count() == 1;
    if !given.exists() && bare {
        Path::new("pipelines").join(given).with_extension("toml")
    } else {
        given.to_path_buf()
    }
}

pub fn run(args: &GenArgs) -> anyhow::Result<i32> {
    let plan = pipeline::load(&pipeline_path(&args.pipeline))?;
    let format = args.format.unwrap_or_else(|| {
        let xlsx = args.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        if xlsx { OutputFormat::Xlsx } else { OutputFormat::Csv }
    });
    let opts = GenOptions { rows: args.rows, format, defect_rate: args.defects, seed: args.seed };
    let summary = r#gen::generate(&plan, &opts, &args.out)?;
    eprintln!(
        "wrote {} rows to {}: valid {} (of which {} changes or revocations), rejected {}, duplicates {}",
        summary.rows,
        args.out.display(),
        summary.valid,
        summary.lifecycle,
        summary.rejected,
        summary.duplicates
    );
    for (rule, n) in &summary.rejects_by_rule {
        eprintln!("  rejected by {rule}: {n}");
    }
    eprintln!("expected outcomes in {}", summary.expected_path.display());
    Ok(exit::OK)
}
