//! `elicence migrate --from sqlite:PATH --to postgres://…`: copies a whole registry into an
//! empty one on another backend, then verifies row counts per table, every store file's
//! SHA-256 and the audit chain in the target. The store (`--data/store`, or `--store`) is
//! shared, not copied.
//!
//! `elicence migrate --store-to s3://bucket/prefix` (or a folder) copies the store instead:
//! every file the registry references that the target lacks, verified by hash; run it again
//! after an interruption and it copies what is still missing.

use std::path::PathBuf;

use clap::Args;

use crate::cmd::args::{OperatorArgs, StoreArgs};
use crate::exit;
use crate::registry::{
    Registry, RegistryLocation, Role, StoreLocation, migrate_registry, migrate_store,
};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    elicence migrate --data /srv/elicence --from sqlite:/srv/elicence/registry.sqlite --to postgres://elicence@db.internal/registry\n\n\
    The target must be empty. Afterwards run every command with --registry postgres://… (or\n\
    ELICENCE_REGISTRY) and the same --data, whose store/ every machine must share.\n\n\
    elicence migrate --data /srv/elicence --store-to s3://licences/store\n\n\
    Copies the store to a bucket (or a folder), verified by hash; run it again to resume.\n\
    Afterwards run every command with --store s3://licences/store (or ELICENCE_STORE).")]
pub struct MigrateArgs {
    /// Source registry: sqlite:PATH or postgres://… (default: the SQLite file in --data).
    #[arg(long)]
    pub from: Option<String>,
    /// Target registry (empty): postgres://USER@HOST/DB or sqlite:PATH.
    #[arg(long, required_unless_present = "store_to")]
    pub to: Option<String>,
    /// Copy the store instead: to this folder (file:PATH) or bucket (s3://BUCKET/PREFIX).
    #[arg(long, value_name = "URL", conflicts_with = "to")]
    pub store_to: Option<String>,
    /// Data folder whose store/ both registries use.
    #[arg(long, env = "ELICENCE_DATA", default_value = "elicence-data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Once the source registry has an admin operator, an admin of it migrates.
    #[command(flatten)]
    pub by: OperatorArgs,
}

pub fn run(args: &MigrateArgs) -> anyhow::Result<i32> {
    let from = RegistryLocation::parse(args.from.as_deref(), &args.data)?;
    let store = StoreLocation::parse(args.store.store.as_deref(), &args.data)?;
    if let Some(store_to) = &args.store_to {
        return run_store(args, &from, &store, store_to);
    }
    let to = RegistryLocation::parse(args.to.as_deref(), &args.data)?;
    if from == to {
        anyhow::bail!("--from and --to are the same registry ({from})");
    }
    {
        let mut source = Registry::open_at(&args.data, &from, &store)?;
        args.by.authorize(&mut source, "migrate", &[Role::Admin])?;
    }
    let report = migrate_registry(&args.data, &from, &to, &store)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for (table, rows) in &report.tables {
            println!("{table:>15}: {rows} rows copied and counted");
        }
        println!(
            "migrated {from} → {to}: {} store files checked, audit chain of {} entries verified (head {})",
            report.files_checked,
            report.audit.entries,
            report.audit.head.as_deref().unwrap_or("-")
        );
    }
    Ok(exit::OK)
}

/// `migrate --store-to URL`: the store of the registry at `from` copied to `store_to`.
fn run_store(
    args: &MigrateArgs,
    from: &RegistryLocation,
    store: &StoreLocation,
    store_to: &str,
) -> anyhow::Result<i32> {
    let to = StoreLocation::parse(Some(store_to), &args.data)?;
    if &to == store {
        anyhow::bail!("--store-to is the store already in use ({to})");
    }
    let mut registry = Registry::open_at(&args.data, from, store)?;
    args.by.authorize(&mut registry, "migrate", &[Role::Admin])?;
    let report = migrate_store(&registry, &to)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "store copied {} → {}: {} files referenced, {} copied, {} already there; every \
             object re-hashed",
            report.from, report.to, report.files, report.copy.copied, report.copy.present
        );
    }
    Ok(exit::OK)
}
