//! `elicence audit verify`: recompute the hash chain of the audit trail; name the first entry
//! that was edited, deleted, inserted or moved.

use clap::Subcommand;

use crate::cmd::args::RegistryArgs;
use crate::exit;
use crate::registry::RegistryError;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain; exit 1 at the first bad entry.
    #[command(after_help = "Example:\n  elicence audit verify --data elicence-data")]
    Verify {
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub fn run(cmd: &AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify { registry } => {
            let registry = registry.open()?;
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
