//! `elicence backup DIR`: a consistent snapshot of the registry (SQLite online backup, safe while
//! a run is loading), its store files and a manifest of SHA-256 hashes.

use std::path::PathBuf;

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{OperatorArgs, RegistryArgs};
use crate::exit;
use crate::registry::Role;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  elicence backup /backups/elicence-2026-11-27 --data elicence-data"
)]
pub struct BackupArgs {
    /// An empty or new folder for the backup.
    pub dir: PathBuf,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub by: OperatorArgs,
    /// Print the backup's manifest as JSON on stdout (files with SHA-256 and size, counts,
    /// audit head).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &BackupArgs) -> anyhow::Result<i32> {
    let mut registry = args.registry.open()?;
    let actor = args.by.authorize(&mut registry, "backup", &[Role::Admin])?;
    let manifest = registry.backup(&args.dir, actor.name(), now()?)?;
    if args.json {
        let out = serde_json::json!({ "dir": args.dir, "manifest": manifest });
        println!("{out}");
        return Ok(exit::OK);
    }
    println!(
        "backup written to {}: {} files, {} licences, audit head {}",
        args.dir.display(),
        manifest.files.len(),
        manifest.counts.licences,
        manifest.audit_head.as_deref().unwrap_or("-")
    );
    Ok(exit::OK)
}
