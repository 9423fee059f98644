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
        /// Print the result as JSON on stdout: `{"intact":true,"entries":…,"head":…}` or
        /// `{"intact":false,"broken_at":SEQ,"reason":{"kind":…}}`.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: &AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify { registry, json } => {
            let registry = registry.open()?;
            match registry.audit_verify() {
                Ok(report) => {
                    if *json {
                        let out = serde_json::json!({
                            "intact": true,
                            "entries": report.entries,
                            "head": report.head,
                        });
                        println!("{out}");
                    } else {
                        println!(
                            "audit trail intact: {} entries, head {}",
                            report.entries,
                            report.head.as_deref().unwrap_or("-")
                        );
                    }
                    Ok(exit::OK)
                }
                Err(RegistryError::AuditBroken(b)) => {
                    if *json {
                        let out = serde_json::json!({
                            "intact": false,
                            "broken_at": b.seq,
                            "reason": b.reason,
                        });
                        println!("{out}");
                    } else {
                        println!("audit trail broken at entry {}: {}", b.seq, b.reason);
                    }
                    Ok(exit::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
