//! `elicence verify FILE...`: checks signed e-licences (PDF, XML or sealed OFD) and prints one line per
//! file, or one JSON object per line with `--json`. Exit code 0 only if every file is
//! authentic.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::cmd::args::TrustArgs;
use crate::registry::{Registry, RegistryStatus};
use crate::share::presented::{check_log_signature, registry_check};
use crate::verify::presented::{Verdict, verify_bytes};
use crate::verify::{RevocationSource, SignatureStatus, TrustAnchors};

/// Arguments of `elicence verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Signed PDF, XML or OFD files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Registry folder: adds each file's registry status (current, superseded, revoked,
    /// unknown) and records the verification in the audit trail. The registry's development
    /// CA (`<data>/dev-keys/ca.pem`) is trusted when present.
    #[arg(long, env = "ELICENCE_DATA")]
    pub data: Option<PathBuf>,
    /// Registry database (with --data): postgres://USER@HOST/DB or sqlite:PATH (default: the
    /// SQLite file in --data).
    #[arg(long, env = "ELICENCE_REGISTRY")]
    pub registry: Option<String>,
    #[command(flatten)]
    pub store: crate::cmd::args::StoreArgs,
    /// Who verifies (audit trail). Default: the OS user.
    #[arg(long)]
    pub operator: Option<String>,
}

pub use crate::share::presented::{CopyStatus, FileReport, FileStatus};

/// Runs `elicence verify`; returns 0 if every file is authentic (and, with `--data`, current in
/// the registry), else 1. Fails (before
/// reading any file) when no trust anchor is given or one cannot be loaded.
pub fn run(args: &VerifyArgs) -> anyhow::Result<i32> {
    let mut registry = match &args.data {
        Some(dir) => {
            Some(Registry::open_with(dir, args.registry.as_deref(), args.store.store.as_deref())?)
        }
        None => None,
    };
    let operator = crate::cmd::operator(args.operator.as_deref());
    let at = crate::clock::now()?;
    let Some(trust) = args.trust.anchors(args.data.as_deref())? else {
        anyhow::bail!("no trust anchor: give --trust PEM or --keys DIR");
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all_authentic = true;
    // Paths are validated at the (injectable) current time, never at a time the file claims.
    let now = crate::clock::now()?;
    for file in &args.files {
        let mut report = verify_file(file, &trust, now);
        all_authentic &= report.status.is_authentic();
        if let Some(reg) = registry.as_mut() {
            let sha = crate::read::sha256_file(file).ok().map(|(sha, _)| sha);
            all_authentic &= registry_check(reg, &mut report, sha.as_deref(), &operator, at)?;
            all_authentic &= check_log_signature(&mut report, &trust, now);
        }
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        } else {
            writeln!(out, "{}", text_line(&report))?;
        }
    }
    out.flush()?;
    Ok(if all_authentic { 0 } else { 1 })
}

/// Verifies one file with certificate paths validated at `now`; a file that cannot be read
/// is reported as not signed with a detail.
pub fn verify_file(file: &Path, trust: &TrustAnchors, now: DateTime<Utc>) -> FileReport {
    let not_signed =
        |detail: String| FileReport::new(file.to_path_buf(), Verdict::not_signed("pdf", detail));
    // Read one byte past the verifier's bound so a huge file is refused, not loaded.
    let limit = crate::verify::pdf::MAX_PDF_BYTES.max(crate::verify::ofd::MAX_OFD_BYTES) as u64 + 1;
    let read = std::fs::File::open(file).and_then(|f| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, limit), &mut bytes).map(|_| bytes)
    });
    match read {
        Ok(bytes) if bytes.len() as u64 >= limit && !bytes.starts_with(b"%PDF") => {
            not_signed(format!("larger than {} bytes", limit - 1))
        }
        Ok(bytes) => FileReport::new(file.to_path_buf(), verify_bytes(&bytes, trust, now)),
        Err(e) => not_signed(format!("cannot read: {e}")),
    }
}

fn text_line(report: &FileReport) -> String {
    let line = signature_line(report);
    let line = match &report.registry_status {
        None => line,
        Some(FileStatus::Copy(c)) => format!(
            "{line}; registry: {} for use by {} ({}), valid until {}; licence {}",
            if c.status == "copy" { "copy" } else { "EXPIRED copy" },
            c.for_department,
            c.reason,
            c.expires,
            crate::cmd::query::status_text(&c.licence)
        ),
        Some(FileStatus::Licence(s)) => licence_line(line, s),
    };
    match &report.log {
        None => line,
        Some(log) => match (log.tree_size, &log.checkpoint_signature) {
            (Some(size), signature) => format!(
                "{line}; log: leaf {} of checkpoint {size}, proof {}, checkpoint signature {}",
                log.leaf_index,
                if log.proof_verified { "verified" } else { "FAILS" },
                signature.as_deref().unwrap_or("not checked")
            ),
            (None, _) => format!("{line}; log: leaf {}, not in a checkpoint yet", log.leaf_index),
        },
    }
}

fn licence_line(line: String, status: &RegistryStatus) -> String {
    match status {
        RegistryStatus::Current => format!("{line}; registry: current"),
        RegistryStatus::Superseded { by } => format!("{line}; registry: superseded by {by}"),
        RegistryStatus::Revoked { at, effective, reason, by_operator } => {
            format!(
                "{line}; registry: REVOKED effective {effective} (recorded {at} by {by_operator}): {reason}"
            )
        }
        RegistryStatus::Expired { on } => format!("{line}; registry: EXPIRED (valid to {on})"),
        RegistryStatus::Disputed { check_request, since } => format!(
            "{line}; registry: DISPUTED (check request #{check_request} answered inconsistent {})",
            since.date_naive()
        ),
        RegistryStatus::Unknown => {
            format!("{line}; registry: unknown (not a file we issued)")
        }
    }
}

fn signature_line(report: &FileReport) -> String {
    let file = report.file.display();
    let signer = report.signer.as_deref().unwrap_or("?");
    let signed = match (&report.timestamp, report.signing_time) {
        (Some(stamp), _) if stamp.trusted => format!(
            ", timestamped {} by {}",
            stamp.time.format("%Y-%m-%d %H:%M:%S UTC"),
            stamp.tsa.as_deref().unwrap_or("?")
        ),
        (_, Some(t)) => format!(", claims to be signed {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
        (_, None) => String::new(),
    };
    // Said only when checked, so a file without revocation data reads as before.
    let revocation = match report.revocation {
        Some(RevocationSource::Dss) => ", revocation checked against the CRL in its /DSS",
        Some(RevocationSource::Given) => ", revocation checked against the given CRLs",
        Some(RevocationSource::None) | None => "",
    };
    match &report.status {
        SignatureStatus::Authentic => {
            format!("{file}: authentic (signer {signer}{signed}{revocation})")
        }
        SignatureStatus::Tampered { reason } => format!("{file}: tampered ({reason})"),
        SignatureStatus::Untrusted { subject } => {
            let why = report.detail.as_deref().unwrap_or("not chained to a trust anchor");
            format!("{file}: untrusted (signer {subject}{signed}: {why})")
        }
        SignatureStatus::NotSigned => match &report.detail {
            Some(why) => format!("{file}: not-signed ({why})"),
            None => format!("{file}: not-signed"),
        },
    }
}
