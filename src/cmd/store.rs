//! `elicence store check`: every file the registry references is present and hashes to its name.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit;
use crate::registry::Registry;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Find missing and altered files (and list orphans left by an interrupted run).
    #[command(after_help = "Example:\n  elicence store check --data elicence-data")]
    Check {
        #[arg(long, env = "ELICENCE_DATA", default_value = "elicence-data")]
        data: PathBuf,
        /// Registry database: postgres://USER@HOST/DB or sqlite:PATH (default: the SQLite file
        /// in --data). With PostgreSQL the store stays in --data/store, a path all machines share.
        #[arg(long, env = "ELICENCE_REGISTRY")]
        registry: Option<String>,
    },
}

pub fn run(cmd: &StoreCommand) -> anyhow::Result<i32> {
    match cmd {
        StoreCommand::Check { data, registry } => {
            let registry = Registry::open_with(data, registry.as_deref())?;
            let problems = registry.store_check()?;
            let fatal = problems.iter().filter(|p| p.is_fatal()).count();
            for p in &problems {
                println!("{}: {p:?}", if p.is_fatal() { "error" } else { "note" });
            }
            let files = registry.counts()?.files;
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
