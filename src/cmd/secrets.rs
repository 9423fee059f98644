//! `elicence secrets rotate`: a new data key for the holders' personal data, every sealed value
//! sealed again with it, the old key removed from the key file once nothing needs it, audited.
//! Interrupted, run it again: it finishes the rotation under way.

use clap::Subcommand;

use crate::clock::now;
use crate::cmd::args::{OperatorArgs, RegistryArgs};
use crate::exit;
use crate::registry::Role;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Rotate the data key that encrypts personal data at rest (re-encrypts every value).
    #[command(after_help = "Examples:\n  elicence secrets rotate --data /var/lib/elicence\n  \
        ELICENCE_FIELD_KEY_FILE=/run/secrets/field-key elicence secrets rotate \
        --data /srv/elicence --registry postgres://elicence@db.internal/registry\n\n\
        The key file is <data>/secrets/field-key, or ELICENCE_FIELD_KEY_FILE. Run it while \
        nothing else writes to the registry; back the new key file up afterwards.")]
    Rotate {
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: &SecretsCommand) -> anyhow::Result<i32> {
    match cmd {
        SecretsCommand::Rotate { registry, by, json } => {
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "secrets rotate", &[Role::Admin])?;
            let report = registry.rotate_field_key(actor.name(), now()?)?;
            if *json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "field key rotated{}: data key {} retired, now {}; {} version(s), {} review \
                     item(s) and {} reject message(s) re-encrypted",
                    if report.resumed { " (resumed)" } else { "" },
                    report.retired.join(", "),
                    report.current,
                    report.versions,
                    report.review_items,
                    report.rejects
                );
            }
            Ok(exit::OK)
        }
    }
}
