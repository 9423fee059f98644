//! `elicence audit verify`: recompute the hash chain of the audit trail; name the first entry
//! that was edited, deleted, inserted or moved.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit;
use crate::registry::{Registry, RegistryError};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain; exit 1 at the first bad entry.
    #[command(after_help = "Example:\n  elicence audit verify --data elicence-data")]
    Verify {
        #[arg(long, env = "ELICENCE_DATA", default_value = "elicence-data")]
        data: PathBuf,
        /// Registry database: postgres://USER@HOST/DB or sqlite:PATH (default: the SQLite file
        /// in --data). With PostgreSQL the store stays in --data/store, a path all machines share.
        #[arg(long, env = "ELICENCE_REGISTRY")]
        registry: Option<String>,
    },
}

pub fn run(cmd: &AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify { data, registry } => {
            let registry = Registry::open_with(data, registry.as_deref())?;
            match registry.audit_verify() {
                Ok(report) => {
                    println!(
                        "audit trail intact: {} entries, head {}",
                        report.entries,
                        report.head.as_deref().unwrap_or("-")
                    );
                    Ok(exit::OK)
                }
                Err(RegistryError::AuditBroken(b)) => {
                    println!("audit trail broken at entry {}: {:?}", b.seq, b.reason);
                    Ok(exit::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
