//! `elicence log verify`: recompute the transparency log from the registry, check it against
//! the registry's own records, and hold it to checkpoints published earlier (consistency
//! proofs, RFC 9162 §2.1.4). With trust anchors, every checkpoint's signature is checked too.
//! Exit 1 on any problem; each is named by leaf index or checkpoint size.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::cmd::args::{RegistryArgs, TrustArgs};
use crate::exit;
use crate::registry::{Checkpoint, LogProblem, LogReport};
use crate::verify::{SignatureStatus, TrustAnchors, verify_detached};

#[derive(Debug, Args)]
pub struct LogVerifyArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// A published checkpoint (`checkpoints/<size>.json`), or a folder of them (an export or a
    /// mirror); may be repeated.
    #[arg(long, value_name = "FILE|DIR")]
    pub checkpoint: Vec<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads the checkpoint files `path` names (a file, a folder of `*.json`, or an export's
/// folder with `checkpoints/`). `latest.json` repeats another file and is skipped.
fn read_checkpoints(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let dir = if path.join("checkpoints").is_dir() {
            path.join("checkpoints")
        } else {
            path.to_path_buf()
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && p.file_name().is_some_and(|n| n != "latest.json")
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            Checkpoint::from_json(&text).with_context(|| file.display().to_string())
        })
        .collect()
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Answer {
    #[serde(flatten)]
    report: LogReport,
    /// Checkpoints whose signature was checked and is authentic (by tree size).
    signatures_checked: Vec<u64>,
}

/// Checks the signature of each checkpoint against `trust`; adds a problem for each that is not
/// authentic and returns the sizes that are.
fn check_signatures(
    checkpoints: &[Checkpoint],
    trust: &TrustAnchors,
    problems: &mut Vec<LogProblem>,
) -> anyhow::Result<Vec<u64>> {
    let now = crate::clock::now()?;
    let mut authentic = Vec::new();
    for c in checkpoints {
        let der = match c.signature_der() {
            Ok(der) => der,
            Err(e) => {
                problems
                    .push(LogProblem::CheckpointFile { tree_size: c.tree_size, detail: e.reason });
                continue;
            }
        };
        match verify_detached(&der, c.body.as_bytes(), trust, now) {
            (SignatureStatus::Authentic, _) => authentic.push(c.tree_size),
            (status, found) => problems.push(LogProblem::CheckpointFile {
                tree_size: c.tree_size,
                detail: format!(
                    "signature is {}{}",
                    status.label(),
                    found.detail.map(|d| format!(": {d}")).unwrap_or_default()
                ),
            }),
        }
    }
    authentic.sort_unstable();
    authentic.dedup();
    Ok(authentic)
}

pub fn run(args: &LogVerifyArgs) -> anyhow::Result<i32> {
    let mut published = Vec::new();
    for path in &args.checkpoint {
        published.extend(read_checkpoints(path)?);
    }
    let trust = args.trust.anchors(Some(&args.registry.data))?;
    let registry = args.registry.open()?;
    let mut report = registry.log_verify(&published)?;
    let signatures_checked = match &trust {
        Some(trust) => {
            let mut all = published.clone();
            all.extend(registry.log_checkpoints()?);
            check_signatures(&all, trust, &mut report.problems)?
        }
        None => Vec::new(),
    };
    let clean = report.is_clean();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&Answer { report, signatures_checked })?);
    } else {
        for problem in &report.problems {
            println!("{problem}");
        }
        let sigs = if trust.is_some() {
            format!(", {} checkpoint signature(s) authentic", signatures_checked.len())
        } else {
            ", checkpoint signatures not checked (no trust anchor)".to_owned()
        };
        println!(
            "transparency log {}: {} leaves, root {}; consistent with checkpoint(s) {:?}{sigs}; {} problem(s)",
            report.log_id,
            report.tree_size,
            report.root_hash,
            report.checked,
            report.problems.len()
        );
    }
    Ok(if clean { exit::OK } else { exit::FAILURE })
}
