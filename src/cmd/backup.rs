//! `elicence backup TARGET`: a consistent snapshot of the registry (SQLite online backup, safe
//! while a run is loading), its store files and a manifest of SHA-256 hashes, into a folder or
//! an S3 bucket prefix (off-site); into an earlier backup, only the store files it lacks.

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{OperatorArgs, RegistryArgs};
use crate::exit;
use crate::registry::{Role, StoreLocation};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence backup /backups/elicence-2026-11-27 --data elicence-data\n  \
    elicence backup s3://offsite-backups/elicence --data elicence-data\n\n\
    A bucket is configured from AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY…\n\
    A second backup to the same target copies only the store files it lacks.")]
pub struct BackupArgs {
    /// Where to: a folder (new, empty, or an earlier backup), file:PATH, or
    /// s3://BUCKET/PREFIX (empty, or an earlier backup).
    pub dir: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub by: OperatorArgs,
    /// Print the backup's manifest as JSON on stdout (files with SHA-256 and size, counts,
    /// audit head), with how many store files were `copied` and `already_there`.
    #[arg(long)]
    pub json: bool,
    /// Put the registry's field key (which decrypts the holders' personal data) in the backup
    /// too. Without it the backup restores only with the key supplied
    /// (ELICENCE_FIELD_KEY_FILE); keep the key apart from the backups.
    #[arg(long)]
    pub include_secrets: bool,
}

pub fn run(args: &BackupArgs) -> anyhow::Result<i32> {
    let mut registry = args.registry.open()?;
    let actor = args.by.authorize(&mut registry, "backup", &[Role::Admin])?;
    let target = StoreLocation::parse(Some(&args.dir), &args.registry.data)?;
    let (manifest, copied) =
        registry.backup_to(&target, actor.name(), now()?, args.include_secrets)?;
    if args.json {
        let out = serde_json::json!({
            "dir": args.dir,
            "copied": copied.copied,
            "already_there": copied.present,
            "manifest": manifest,
        });
        println!("{out}");
        return Ok(exit::OK);
    }
    println!(
        "backup written to {target}: {} files ({} store files copied, {} already there), {} \
         licences, audit head {}",
        manifest.files.len(),
        copied.copied,
        copied.present,
        manifest.counts.licences,
        manifest.audit_head.as_deref().unwrap_or("-")
    );
    Ok(exit::OK)
}
