//! `elicence restore SOURCE --data NEWDIR`: check every hash of a backup (a folder or an S3
//! bucket prefix), then make it live in a new data folder. Nothing is made live when any file
//! is missing or altered.

use std::path::PathBuf;

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{OperatorArgs, StoreArgs};
use crate::exit;
use crate::registry::{Registry, Role, StoreLocation};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence restore /backups/elicence-2026-11-27 --data /var/lib/elicence-restored\n  \
    elicence restore s3://offsite-backups/elicence --data /var/lib/elicence-restored")]
pub struct RestoreArgs {
    /// The backup (with manifest.json): a folder, file:PATH or s3://BUCKET/PREFIX.
    pub dir: String,
    /// A new, empty data folder to restore into.
    #[arg(long)]
    pub data: PathBuf,
    /// The restored registry's store (default: --data/store); the backup's files are copied
    /// into it, each checked, before anything is live.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Once the backed-up registry has an admin operator, an admin of it restores.
    #[command(flatten)]
    pub by: OperatorArgs,
    /// Print what was restored as JSON on stdout (`{"data":…,"counts":{…},"hashes_checked":true}`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RestoreArgs) -> anyhow::Result<i32> {
    // The restored registry's own operators decide, once every hash is checked: it is that
    // registry that becomes live. A refusal leaves nothing live (and, for that reason, is not
    // recorded in any audit trail).
    let source = StoreLocation::parse(Some(&args.dir), &args.data)?;
    let store = match args.store.store.as_deref() {
        Some(spec) => Some(StoreLocation::parse(Some(spec), &args.data)?),
        None => None,
    };
    let registry =
        Registry::restore_authorized(&source, &args.data, store.as_ref(), now()?, |restored| {
            let actor = args.by.authorize(restored, "restore", &[Role::Admin])?;
            anyhow::Ok(actor.name().to_owned())
        })?;
    let c = registry.counts()?;
    if args.json {
        let out = serde_json::json!({ "data": args.data, "counts": c, "hashes_checked": true });
        println!("{out}");
        return Ok(exit::OK);
    }
    println!(
        "restored into {}: {} licences, {} versions, {} files; every hash checked",
        args.data.display(),
        c.licences,
        c.versions,
        c.files
    );
    Ok(exit::OK)
}
