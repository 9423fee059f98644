//! Writing a transparency log checkpoint: the registry's head (brought up to the audit trail),
//! its body signed as a detached CMS with the run's key and, when a TSA is configured,
//! timestamped (CAdES B-T), then stored. Every run ends with one; `elicence log checkpoint`
//! writes one on demand.

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::registry::{Checkpoint, Registry};
use crate::sign::signed_data::build_detached_cms;
use crate::sign::signer::Signer;
use crate::timestamp::Tsa;

/// What [`write_checkpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointWritten {
    /// A new checkpoint of a tree no checkpoint covered yet.
    New(Checkpoint),
    /// The newest checkpoint already covers the whole log; nothing was signed.
    Current(Checkpoint),
}

impl CheckpointWritten {
    pub fn checkpoint(&self) -> &Checkpoint {
        match self {
            CheckpointWritten::New(c) | CheckpointWritten::Current(c) => c,
        }
    }
}

/// Signs and stores a checkpoint of the whole log at `at`, unless the newest checkpoint covers
/// it already.
pub fn write_checkpoint(
    registry: &Registry,
    signer: &dyn Signer,
    tsa: Option<&dyn Tsa>,
    at: DateTime<Utc>,
) -> anyhow::Result<CheckpointWritten> {
    let head = registry.log_head()?;
    if let Some(last) = registry.log_checkpoints()?.pop()
        && last.tree_size == head.tree_size
    {
        return Ok(CheckpointWritten::Current(last));
    }
    let time = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let body = Checkpoint::body_of(&head, &time);
    let digest = signer.algorithm().digest().digest(body.as_bytes());
    let signature = build_detached_cms(signer, &digest, tsa)
        .with_context(|| format!("cannot sign the checkpoint of tree size {}", head.tree_size))?;
    let checkpoint = Checkpoint::new(&head, &time, &signature);
    if registry.log_record_checkpoint(&checkpoint)? {
        Ok(CheckpointWritten::New(checkpoint))
    } else {
        // Another process (a shard) stored one of the same size meanwhile: that one stands.
        let stored = registry
            .log_checkpoints()?
            .into_iter()
            .find(|c| c.tree_size == head.tree_size)
            .unwrap_or(checkpoint);
        Ok(CheckpointWritten::Current(stored))
    }
}
