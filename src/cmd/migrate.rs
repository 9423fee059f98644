//! `elicence migrate --from sqlite:PATH --to postgres://…`: copies a whole registry into an
//! empty one on another backend, then verifies row counts per table, every store file's
//! SHA-256 and the audit chain in the target. The store (`--data/store`) is shared, not copied.

use std::path::PathBuf;

use clap::Args;

use crate::cmd::args::OperatorArgs;
use crate::exit;
use crate::registry::{Registry, RegistryLocation, Role, migrate_registry};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    elicence migrate --data /srv/elicence --from sqlite:/srv/elicence/registry.sqlite --to postgres://elicence@db.internal/registry\n\n\
    The target must be empty. Afterwards run every command with --registry postgres://… (or\n\
    ELICENCE_REGISTRY) and the same --data, whose store/ every machine must share.")]
pub struct MigrateArgs {
    /// Source registry: sqlite:PATH or postgres://… (default: the SQLite file in --data).
    #[arg(long)]
    pub from: Option<String>,
    /// Target registry (empty): postgres://USER@HOST/DB or sqlite:PATH.
    #[arg(long)]
    pub to: String,
    /// Data folder whose store/ both registries use.
    #[arg(long, env = "ELICENCE_DATA", default_value = "elicence-data")]
    pub data: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Once the source registry has an admin operator, an admin of it migrates.
    #[command(flatten)]
    pub by: OperatorArgs,
}

pub fn run(args: &MigrateArgs) -> anyhow::Result<i32> {
    let from = RegistryLocation::parse(args.from.as_deref(), &args.data)?;
    let to = RegistryLocation::parse(Some(&args.to), &args.data)?;
    if from == to {
        anyhow::bail!("--from and --to are the same registry ({from})");
    }
    {
        let mut source = Registry::open_at(&args.data, &from)?;
        args.by.authorize(&mut source, "migrate", &[Role::Admin])?;
    }
    let report = migrate_registry(&args.data, &from, &to)?;
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
