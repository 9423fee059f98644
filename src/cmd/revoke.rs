//! `elicence revoke ID --reason TEXT`: revoke a licence in the registry (吊销/注销 outside an
//! export). The version's status becomes revoked with date, reason and operator; its files stay.

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{OperatorArgs, RegistryArgs};
use crate::exit;
use crate::registry::Role;

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    elicence revoke 1.2.156.3005.2.11100000MB0143028R901.11220104MB1875524M.JY12201040000016.002.8 --reason \"吊销：食品安全违法\"")]
pub struct RevokeArgs {
    /// GB/T 36904 identifier of the current version.
    pub identifier: String,
    /// Why (recorded in the registry and the audit trail).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub by: OperatorArgs,
    /// Print the result as JSON on stdout (`{"revoked":ID,"reason":…,"operator":…,"at":…}`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RevokeArgs) -> anyhow::Result<i32> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        anyhow::bail!("--reason must not be empty");
    }
    if reason.chars().count() > 500 {
        anyhow::bail!("--reason is longer than 500 characters");
    }
    crate::identify::LicenceId::parse(&args.identifier)
        .map_err(|e| anyhow::anyhow!("{:?} is not a valid identifier: {e}", args.identifier))?;
    let mut registry = args.registry.open()?;
    let actor = args.by.authorize(&mut registry, "revoke", &[Role::Issuer])?;
    let at = now()?;
    registry.revoke(&args.identifier, reason, actor.name(), at)?;
    if args.json {
        let out = serde_json::json!({
            "revoked": args.identifier,
            "reason": reason,
            "operator": actor.name(),
            "at": at.to_rfc3339(),
        });
        println!("{out}");
    } else {
        println!("revoked {}", args.identifier);
    }
    Ok(exit::OK)
}
