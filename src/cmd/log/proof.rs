//! `elicence log proof IDENTIFIER`: the leaves of one licence version (its issue or change, its
//! revocation) and each one's inclusion proof in the newest checkpoint, which anyone can check
//! with the published checkpoint and a few lines of code (RFC 9162 §2.1.3.2).

use clap::Args;
use serde::Serialize;

use crate::cmd::args::RegistryArgs;
use crate::exit;
use crate::registry::{Checkpoint, InclusionProof, LogLeaf};

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// The version's GB/T 36904 identifier.
    pub identifier: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// One JSON object: the leaves, the proofs and the checkpoint they are relative to.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` answer.
#[derive(Debug, Serialize)]
struct ProofAnswer<'a> {
    identifier: &'a str,
    leaves: &'a [LogLeaf],
    /// Leaves newer than the newest checkpoint have no proof yet.
    proofs: &'a [InclusionProof],
    checkpoint: Option<&'a Checkpoint>,
}

pub fn run(args: &ProofArgs) -> anyhow::Result<i32> {
    let registry = args.registry.open()?;
    let (leaves, proofs) = registry.log_proofs(&args.identifier)?;
    if leaves.is_empty() {
        eprintln!(
            "{}: no leaf in the transparency log (not a version of this registry)",
            args.identifier
        );
        return Ok(exit::FAILURE);
    }
    let proofs = proofs.unwrap_or_default();
    for proof in &proofs {
        // A proof this registry cannot verify itself must never be printed as one.
        proof.verify()?;
    }
    let unproven = leaves.len() - proofs.len();
    if args.json {
        let answer = ProofAnswer {
            identifier: &args.identifier,
            leaves: &leaves,
            proofs: &proofs,
            checkpoint: proofs.first().map(|p| &p.checkpoint),
        };
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        for proof in &proofs {
            println!(
                "{} {}: leaf {} of checkpoint {} (root {}, {}), audit path of {} hashes, verified",
                args.identifier,
                proof.leaf.event,
                proof.leaf.index,
                proof.tree_size,
                proof.checkpoint.root_hash,
                proof.checkpoint.time,
                proof.audit_path.len()
            );
        }
        for leaf in leaves.iter().skip(proofs.len()) {
            println!(
                "{} {}: leaf {}, not in a checkpoint yet (`elicence log checkpoint` signs one)",
                args.identifier, leaf.event, leaf.index
            );
        }
    }
    Ok(if unproven == 0 { exit::OK } else { exit::FAILURE })
}
