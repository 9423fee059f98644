//! `elicence store check`: every file the registry references is present with its size (one
//! listing of the folder or bucket) and, on a folder or with `--full`, hashes to its name.

use clap::Subcommand;

use crate::cmd::args::RegistryArgs;
use crate::exit;
use crate::registry::StoreProblem;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Find missing and altered files (and list orphans left by an interrupted run).
    #[command(after_help = "Examples:\n  elicence store check --data elicence-data\n  \
        elicence store check --store s3://licences/store --full")]
    Check {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Also read back and hash every object of a bucket (a folder's files are always
        /// hashed); without it a bucket is checked by one listing of names and sizes.
        #[arg(long)]
        full: bool,
        /// Print the result as JSON on stdout: `{"ok":…,"files":…,"fatal":…,"problems":[…]}`,
        /// each problem with its `kind` (missing, altered, orphan) and path.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: &StoreCommand) -> anyhow::Result<i32> {
    match cmd {
        StoreCommand::Check { registry, full, json } => {
            let registry = registry.open()?;
            let problems =
                if *full { registry.store_check_full()? } else { registry.store_check()? };
            let fatal = problems.iter().filter(|p| p.is_fatal()).count();
            let files = registry.counts()?.files;
            if *json {
                let out = serde_json::json!({
                    "ok": fatal == 0,
                    "files": files,
                    "fatal": fatal,
                    "problems": problems,
                });
                println!("{out}");
                return Ok(if fatal > 0 { exit::FAILURE } else { exit::OK });
            }
            for p in &problems {
                println!("{}: {}", if p.is_fatal() { "error" } else { "note" }, describe(p));
            }
            if fatal > 0 {
                eprintln!("store check: {fatal} missing or altered file(s) of {files}");
                Ok(exit::FAILURE)
            } else {
                eprintln!("store check: {files} file(s) present and intact");
                Ok(exit::OK)
            }
        }
    }
}

/// One problem as a line: what, which file, where.
fn describe(p: &StoreProblem) -> String {
    match p {
        StoreProblem::Missing { sha256, file_kind, path } => {
            format!("missing {} file {sha256} ({})", file_kind.as_str(), path.display())
        }
        StoreProblem::Altered { sha256, file_kind, path, actual } => format!(
            "altered {} file {sha256} ({}): its content hashes to {actual}",
            file_kind.as_str(),
            path.display()
        ),
        StoreProblem::WrongSize { sha256, file_kind, path, expected, actual } => format!(
            "wrong size {} file {sha256} ({}): {actual} bytes, the registry says {expected}",
            file_kind.as_str(),
            path.display()
        ),
        StoreProblem::Orphan { path } => {
            format!(
                "orphan {} (no licence references it; left by an interrupted run?)",
                path.display()
            )
        }
    }
}
