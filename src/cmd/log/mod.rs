//! `elicence log …`: the registry's transparency log (RFC 6962 / RFC 9162), one file per
//! subcommand: [`checkpoint`] (sign a tree head now), [`proof`] (a licence's inclusion proofs),
//! [`verify`] (recompute the log, hold it to published checkpoints), [`export`] (checkpoints
//! as static files to publish).

pub mod checkpoint;
pub mod export;
pub mod proof;
pub mod verify;

use clap::Subcommand;

/// Subcommands of `elicence log`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Sign a checkpoint (tree head) of the whole log now, unless the newest one covers it.
    #[command(after_help = "Example:\n  elicence log checkpoint --data elicence-data \
        --keys /etc/elicence/keys --tsa http://tsa.example/")]
    Checkpoint(checkpoint::CheckpointArgs),
    /// Print the leaves of a licence version and their inclusion proofs in the newest
    /// checkpoint.
    #[command(
        after_help = "Example:\n  elicence log proof 11220104MB1875524M-JY12201040000016-001 --json"
    )]
    Proof(proof::ProofArgs),
    /// Recompute the log from the registry; check it against published checkpoints (exit 1 on
    /// any problem, each named by leaf index).
    #[command(
        after_help = "Example:\n  elicence log verify --checkpoint mirror/checkpoints/120.json \
        --keys keys"
    )]
    Verify(verify::LogVerifyArgs),
    /// Write every checkpoint as static files to publish: checkpoints/<size>.json, .body, .p7s.
    #[command(after_help = "Example:\n  elicence log export public/log")]
    Export(export::ExportArgs),
}

/// Runs `elicence log …`; returns the process exit code.
pub fn run(cmd: &LogCommand) -> anyhow::Result<i32> {
    match cmd {
        LogCommand::Checkpoint(args) => checkpoint::run(args),
        LogCommand::Proof(args) => proof::run(args),
        LogCommand::Verify(args) => verify::run(args),
        LogCommand::Export(args) => export::run(args),
    }
}
