//! `elicence init --data DIR [--registry URL] [--production]`: create the registry (SQLite file
//! and store, or the PostgreSQL schema) ahead of the first run, and with `--production` mark it
//! as production: from then on `run`, `render`, `copy` and `serve` refuse development keys and
//! `run` and `copy` need `--keys` (or `ELICENCE_KEYS`). The mark is recorded once, in the
//! registry and in the audit trail, and never removed.

use clap::Args;

use crate::clock::now;
use crate::cmd::args::RegistryArgs;
use crate::cmd::operator;
use crate::exit;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence init --data /var/lib/elicence --production\n  \
    elicence init --data /srv/elicence --registry postgres://elicence@db.internal/registry --production\n\n\
    Without --production the registry is only created (as the first run would). The production \
    mark cannot be undone.")]
pub struct InitArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Mark the registry as production: development keys (made by `elicence keys init`) are
    /// refused from then on, and signing commands need --keys or ELICENCE_KEYS.
    #[arg(long)]
    pub production: bool,
    /// Who marks it (audit trail). Default: the OS user.
    #[arg(long)]
    pub operator: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InitArgs) -> anyhow::Result<i32> {
    let mut registry = args.registry.open()?;
    let location = registry.db_path().display().to_string();
    let mark = if args.production {
        let (mark, new) = registry.mark_production(&operator(args.operator.as_deref()), now()?)?;
        Some((mark, new))
    } else {
        registry.production_mark()?.map(|m| (m, false))
    };
    if args.json {
        let out = serde_json::json!({
            "registry": location,
            "schema_version": registry.schema_version()?,
            "production": mark.as_ref().map(|(m, _)| m),
            "marked_now": mark.as_ref().is_some_and(|(_, new)| *new),
            "field_key": registry.field_key_path(),
        });
        println!("{out}");
        return Ok(exit::OK);
    }
    println!(
        "field key (encrypts personal data; back it up, every machine of the registry needs it): {}",
        registry.field_key_path().display()
    );
    match &mark {
        Some((m, true)) => println!(
            "registry {location} is now marked production (by {}, {}): development keys are \
             refused, --keys is required",
            m.operator, m.set_at
        ),
        Some((m, false)) => println!(
            "registry {location} is production since {} (marked by {})",
            m.set_at, m.operator
        ),
        None => println!(
            "registry {location} is ready (development: keys made by `elicence keys init` are \
             accepted; `elicence init --production` marks it production)"
        ),
    }
    Ok(exit::OK)
}
