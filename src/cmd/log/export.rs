//! `elicence log export DIR`: every checkpoint as static files to publish and mirror:
//! `checkpoints/<size>.json` (the whole checkpoint), `<size>.body` (the signed text) and
//! `<size>.p7s` (its detached CMS signature, DER) so that `openssl cms -verify` checks it
//! without elicence, and `checkpoints/latest.json`. A published checkpoint never changes: a
//! file that exists with other content is an error, not overwritten.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::cmd::args::RegistryArgs;
use crate::exit;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Folder to write (created); `checkpoints/` goes in it.
    pub dir: PathBuf,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Writes `bytes` to `path` unless it holds them already; refuses to change a published file.
fn publish(path: &Path, bytes: &[u8], mutable: bool) -> anyhow::Result<bool> {
    match std::fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(false),
        Ok(_) if !mutable => anyhow::bail!(
            "{}: a published checkpoint file with other content exists; it is never overwritten",
            path.display()
        ),
        _ => {}
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

pub fn run(args: &ExportArgs) -> anyhow::Result<i32> {
    let registry = args.registry.open()?;
    let checkpoints = registry.log_checkpoints()?;
    let dir = args.dir.join("checkpoints");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    for c in &checkpoints {
        let json = serde_json::to_string_pretty(c)? + "\n";
        let stem = dir.join(c.tree_size.to_string());
        let der = c.signature_der()?;
        for (ext, bytes) in [("json", json.as_bytes()), ("body", c.body.as_bytes()), ("p7s", &der)]
        {
            written += usize::from(publish(&stem.with_extension(ext), bytes, false)?);
        }
    }
    if let Some(latest) = checkpoints.last() {
        let json = serde_json::to_string_pretty(latest)? + "\n";
        publish(&dir.join("latest.json"), json.as_bytes(), true)?;
    }
    println!(
        "exported {} checkpoint(s) to {} ({written} new file(s))",
        checkpoints.len(),
        dir.display()
    );
    Ok(exit::OK)
}
