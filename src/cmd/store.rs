//! `elicence store check`: every file the registry references is present and hashes to its name.

use clap::Subcommand;

use crate::cmd::args::RegistryArgs;
use crate::exit;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Find missing and altered files (and list orphans left by an interrupted run).
    #[command(after_help = "Example:\n  elicence store check --data elicence-data")]
    Check {
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub fn run(cmd: &StoreCommand) -> anyhow::Result<i32> {
    match cmd {
        StoreCommand::Check { registry } => {
            let registry = registry.open()?;
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
