//! `elicence seal list --keys DIR`: the seals of a key directory (`seals/*.esl`), one line
//! each (issuer code, esID, name, validity, maker), or a JSON array with `--json`.

use std::path::PathBuf;

use crate::exit;
use crate::seal::{Seal, seal_files};

use super::show::SealSummary;

/// Arguments of `elicence seal list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Key directory.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// A JSON array instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `elicence seal list`; fails on the first unreadable seal file.
pub fn run(args: &ListArgs) -> anyhow::Result<i32> {
    let mut summaries = Vec::new();
    for file in seal_files(&args.keys)? {
        let seal = Seal::read(&file)?;
        summaries.push(SealSummary::of(file, &seal));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
        return Ok(exit::OK);
    }
    for s in &summaries {
        let issuer = s.file.file_stem().map(|f| f.to_string_lossy()).unwrap_or_default();
        println!(
            "{issuer}\t{}\t{}\t{} .. {}\t{}",
            s.es_id, s.name, s.valid_from, s.valid_to, s.maker
        );
    }
    eprintln!("{} seal(s) in {}", summaries.len(), args.keys.display());
    Ok(exit::OK)
}
