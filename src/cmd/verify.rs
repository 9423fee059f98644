//! `elicence verify FILE...`: checks signed e-licences (PDF, XML or sealed OFD) and prints one line per
//! file, or one JSON object per line with `--json`. Exit code 0 only if every file is
//! authentic.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::registry::{Registry, RegistryStatus};
use crate::share::presented::registry_check;
use crate::sign::keys::{CA_CERT_FILE, SM2_CA_CERT_FILE};
use crate::verify::presented::{Verdict, verify_bytes};
use crate::verify::{SignatureStatus, TrustAnchors};

/// Arguments of `elicence verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Signed PDF, XML or OFD files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Trust anchor certificates (PEM); may be repeated.
    #[arg(long, value_name = "PEM")]
    pub trust: Vec<PathBuf>,
    /// Key directory whose ca.pem (and sm2-ca.pem, for OFD seals) is trusted (e.g. a
    /// development key set).
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Roots trusted for time-stamping authorities (PEM); may be repeated. A signature
    /// timestamp from a TSA under one of them is the time its signer is validated at;
    /// without, the verifier's clock is.
    #[arg(long, value_name = "PEM")]
    pub tsa_trust: Vec<PathBuf>,
    /// Certificate revocation lists (DER or PEM); may be repeated. With any, every
    /// certificate of every path needs a current CRL of its issuer that does not list it.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
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
    /// Who verifies (audit trail). Default: the OS user.
    #[arg(long)]
    pub operator: Option<String>,
}

pub use crate::share::presented::{CopyStatus, FileReport, FileStatus};

/// Runs `elicence verify`; returns 0 if every file is authentic (and, with `--data`, current in
/// the registry), else 1. Fails (before
/// reading any file) when no trust anchor is given or one cannot be loaded.
pub fn run(args: &VerifyArgs) -> anyhow::Result<i32> {
    let mut anchor_files = args.trust.clone();
    if let Some(dir) = &args.keys {
        anchor_files.push(dir.join(CA_CERT_FILE));
        if dir.join(SM2_CA_CERT_FILE).exists() {
            anchor_files.push(dir.join(SM2_CA_CERT_FILE));
        }
    }
    let mut registry = match &args.data {
        Some(dir) => {
            let dev_ca = dir.join("dev-keys").join(CA_CERT_FILE);
            if dev_ca.exists() {
                anchor_files.push(dev_ca);
            }
            let dev_sm2_ca = dir.join("dev-keys").join(SM2_CA_CERT_FILE);
            if dev_sm2_ca.exists() {
                anchor_files.push(dev_sm2_ca);
            }
            Some(Registry::open_with(dir, args.registry.as_deref())?)
        }
        None => None,
    };
    let operator = crate::cmd::operator(args.operator.as_deref());
    let at = crate::clock::now()?;
    if anchor_files.is_empty() {
        anyhow::bail!("no trust anchor: give --trust PEM or --keys DIR");
    }
    let trust = TrustAnchors::from_pem_files(&anchor_files)
        .context("loading trust anchors")?
        .with_tsa(TrustAnchors::from_pem_files(&args.tsa_trust).context("loading TSA roots")?)
        .with_crls(&args.crl)
        .context("loading CRLs")?;

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
    match &report.registry_status {
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
    match &report.status {
        SignatureStatus::Authentic => format!("{file}: authentic (signer {signer}{signed})"),
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
