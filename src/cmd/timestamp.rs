//! `elicence timestamp extend FILE…`: archive renewal of PAdES B-LTA files ([`crate::archive`]):
//! each file is verified, gets a `/DSS` update with its newest document timestamp's validation
//! data and a new document timestamp, and is replaced (atomically) by the result. A file that
//! is not ours, not B-LTA or does not verify is refused with the reason and left untouched.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::args::{TrustArgs, TsaArgs};
use crate::archive::extend;
use crate::exit;
use crate::sign::validation_data::CrlSource;

/// Subcommands of `elicence timestamp`.
#[derive(Debug, Subcommand)]
pub enum TimestampCommand {
    /// Add a new document timestamp (and the previous one's validation data) to PAdES B-LTA
    /// files, in place: archive renewal, before the last timestamp's TSA certificate expires.
    #[command(after_help = "Example:\n  elicence timestamp extend archive/*.pdf \
        --tsa http://tsa.example/ --keys keys --tsa-trust tsa-root.pem")]
    Extend(ExtendArgs),
}

#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// B-LTA PDF files, each replaced by its renewed version.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub tsa: TsaArgs,
    /// What the files must verify against (their signer's CA with --keys or --trust; their
    /// document timestamps' TSA roots with --tsa-trust). --keys DIR is also where a CRL for a
    /// certificate without a distribution point is looked for (DIR/ca.crl).
    #[command(flatten)]
    pub trust: TrustArgs,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct FileOutcome {
    file: PathBuf,
    /// `extended` or `refused`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_timestamps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs `elicence timestamp …`; exit 0 when every file was renewed, 4 when any was refused.
pub fn run(cmd: &TimestampCommand) -> anyhow::Result<i32> {
    let TimestampCommand::Extend(args) = cmd;
    let Some(url) = args.tsa.tsa.as_deref() else {
        anyhow::bail!("timestamp extend needs a TSA: give --tsa URL (or ELICENCE_TSA)");
    };
    let Some(trust) = args.trust.anchors(None)? else {
        anyhow::bail!("no trust anchor: give --trust PEM or --keys DIR");
    };
    let tsa = crate::timestamp::connect(url)?;
    let key_dirs: Vec<&Path> = args.trust.keys.as_deref().into_iter().collect();
    let crls = CrlSource::new(&key_dirs)?;
    let now = crate::clock::now()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut refused = 0;
    for file in &args.files {
        let outcome = match std::fs::read(file) {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(bytes) => match extend(&bytes, &trust, tsa.as_ref(), &crls, now) {
                Err(e) => Err(e.to_string()),
                Ok(renewed) => {
                    replace(file, &renewed.pdf)?;
                    let stamps = &renewed.verification.document_timestamps;
                    Ok((stamps.len(), stamps.last().map(|s| s.token.time)))
                }
            },
        };
        let report = match outcome {
            Ok((count, time)) => FileOutcome {
                file: file.clone(),
                outcome: "extended",
                reason: None,
                document_timestamps: Some(count),
                time,
            },
            Err(reason) => {
                refused += 1;
                FileOutcome {
                    file: file.clone(),
                    outcome: "refused",
                    reason: Some(reason),
                    document_timestamps: None,
                    time: None,
                }
            }
        };
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        } else {
            match (&report.reason, report.document_timestamps, report.time) {
                (Some(reason), _, _) => writeln!(out, "{}: refused: {reason}", file.display())?,
                (None, Some(n), Some(t)) => writeln!(
                    out,
                    "{}: extended: document timestamp {n} at {}",
                    file.display(),
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                )?,
                _ => writeln!(out, "{}: extended", file.display())?,
            }
        }
    }
    out.flush()?;
    Ok(if refused > 0 { exit::INPUT } else { exit::OK })
}

/// Writes `bytes` beside `file` and renames it over `file`, so a crash leaves the old or the
/// new file, never half of one.
fn replace(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temp = file.as_os_str().to_owned();
    temp.push(".extending");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, bytes).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, file).with_context(|| format!("cannot replace {}", file.display()))
}
