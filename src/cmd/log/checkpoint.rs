//! `elicence log checkpoint`: sign and store a checkpoint of the whole log now (every run ends
//! with one; this is for a registry changed by `revoke`, or after a run whose checkpoint
//! failed).

use clap::Args;

use crate::cmd::args::{KeyArgs, RegistryArgs, TsaArgs};
use crate::engine::{CheckpointWritten, write_checkpoint};
use crate::exit;

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub tsa: TsaArgs,
    /// Print the checkpoint as JSON (the published file's form).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CheckpointArgs) -> anyhow::Result<i32> {
    let at = crate::clock::now()?;
    let registry = args.registry.open()?;
    let signer = args.keys.load_signer(&args.registry.data, at)?;
    let tsa = args.tsa.tsa.as_deref().map(crate::timestamp::connect).transpose()?;
    let written = write_checkpoint(&registry, &signer, tsa.as_deref(), at)?;
    let c = written.checkpoint();
    if args.json {
        println!("{}", serde_json::to_string_pretty(c)?);
    } else {
        let what = match written {
            CheckpointWritten::New(_) => "new checkpoint",
            CheckpointWritten::Current(_) => "log unchanged since checkpoint",
        };
        println!("{what}: tree size {}, root {}, time {}", c.tree_size, c.root_hash, c.time);
    }
    Ok(exit::OK)
}
