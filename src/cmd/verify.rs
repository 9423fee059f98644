//! `elicence verify FILE...`: checks signed e-licences (PDF, XML or sealed OFD) and prints one line per
//! file, or one JSON object per line with `--json`. Exit code 0 only if every file is
//! authentic.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::registry::{AuditEntry, Registry, RegistryStatus};
use crate::sign::keys::{CA_CERT_FILE, SM2_CA_CERT_FILE};
use crate::verify::ofd::looks_like_ofd;
use crate::verify::{
    SignatureStatus, TimeSource, TrustAnchors, verify_ofd_at, verify_pdf_at, verify_xml_at,
};

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

/// One file's verdict as printed.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    /// `pdf`, `xml` or `ofd`.
    pub kind: &'static str,
    #[serde(flatten)]
    pub status: SignatureStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<DateTime<Utc>>,
    /// `timestamp` (trusted, the path was validated at it) or `claimed` (the signer's `/M`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time_source: Option<TimeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_digest: Option<String>,
    /// An OFD's seal: its name and esID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The registry's status of this exact file (with `--data`): current, superseded (by),
    /// revoked (when, why, by whom) or unknown; for a copy for use (加注件), copy or expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_status: Option<FileStatus>,
    /// The identifier the registry holds this file under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
}

/// What the registry says about a presented file: an original's status, or a copy for use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FileStatus {
    Licence(RegistryStatus),
    Copy(CopyStatus),
}

/// A copy for use (加注件) as `registry_status`: `{"status":"copy","for":…,"expires":…}`, or
/// `"status":"expired"` after its date. `licence` is the status of the licence it copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyStatus {
    /// `copy` or `expired`.
    pub status: &'static str,
    /// The department it was made for (USCC).
    #[serde(rename = "for")]
    pub for_department: String,
    pub reason: String,
    pub expires: chrono::NaiveDate,
    pub copy: i64,
    pub licence: RegistryStatus,
}

/// The registry status of the file with `sha256`: an original version, else a recorded copy
/// for use (expired after its date, `at` being today), else unknown.
fn file_status(
    reg: &Registry,
    sha256: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<(FileStatus, Option<String>)> {
    if let Some(v) = reg.licence_by_file_hash(sha256)? {
        return Ok((FileStatus::Licence(v.status()), Some(v.identifier)));
    }
    if let Some(c) = reg.copy_by_file_hash(sha256)? {
        let licence = reg.status_of(&c.identifier)?;
        let status = if at.date_naive() > c.expires { "expired" } else { "copy" };
        let s = CopyStatus {
            status,
            for_department: c.department,
            reason: c.reason,
            expires: c.expires,
            copy: c.id,
            licence,
        };
        return Ok((FileStatus::Copy(s), Some(c.identifier)));
    }
    Ok((FileStatus::Licence(RegistryStatus::Unknown), None))
}

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
    let trust = TrustAnchors::from_pem_files(&anchor_files).context("loading trust anchors")?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all_authentic = true;
    // Paths are validated at the (injectable) current time, never at a time the file claims.
    let now = crate::clock::now()?;
    for file in &args.files {
        let mut report = verify_file(file, &trust, now);
        all_authentic &= report.status.is_authentic();
        if let Some(reg) = registry.as_mut() {
            let (status, identifier) = match crate::read::sha256_file(file) {
                Ok((sha, _)) => file_status(reg, &sha, at)?,
                Err(_) => (FileStatus::Licence(RegistryStatus::Unknown), None),
            };
            all_authentic &= match &status {
                FileStatus::Licence(s) => *s == RegistryStatus::Current,
                FileStatus::Copy(c) => c.status == "copy" && c.licence == RegistryStatus::Current,
            };
            reg.audit_append(&AuditEntry {
                action: "verify".into(),
                operator: operator.clone(),
                at,
                subject: identifier.clone().unwrap_or_else(|| file.display().to_string()),
                reason: None,
                details: serde_json::json!({
                    "file": file.display().to_string(),
                    "signature": report.status.label(),
                    "registry_status": &status,
                }),
            })?;
            report.registry_status = Some(status);
            report.identifier = identifier;
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
    let mut report = FileReport {
        file: file.to_path_buf(),
        kind: "pdf",
        status: SignatureStatus::NotSigned,
        signer: None,
        signing_time: None,
        signing_time_source: None,
        signed_digest: None,
        seal_name: None,
        seal_id: None,
        detail: None,
        registry_status: None,
        identifier: None,
    };
    // Read one byte past the verifier's bound so a huge file is refused, not loaded.
    let limit = crate::verify::pdf::MAX_PDF_BYTES.max(crate::verify::ofd::MAX_OFD_BYTES) as u64 + 1;
    let read = std::fs::File::open(file).and_then(|f| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, limit), &mut bytes).map(|_| bytes)
    });
    let bytes = match read {
        Ok(bytes) if bytes.len() as u64 >= limit && !bytes.starts_with(b"%PDF") => {
            report.detail = Some(format!("larger than {} bytes", limit - 1));
            return report;
        }
        Ok(bytes) => bytes,
        Err(e) => {
            report.detail = Some(format!("cannot read: {e}"));
            return report;
        }
    };
    if looks_like_ofd(&bytes) {
        report.kind = "ofd";
        let v = verify_ofd_at(&bytes, trust, now);
        (report.status, report.signer, report.signing_time) = (v.status, v.signer, v.signing_time);
        (report.seal_name, report.seal_id, report.detail) = (v.seal_name, v.seal_id, v.detail);
    } else if bytes.starts_with(b"%PDF") {
        let v = verify_pdf_at(&bytes, trust, now);
        (report.status, report.signer, report.signing_time) = (v.status, v.signer, v.signing_time);
        report.signing_time_source = v.signing_time_source;
        (report.signed_digest, report.detail) = (v.signed_digest, v.detail);
    } else {
        report.kind = "xml";
        match String::from_utf8(bytes) {
            Ok(text) => {
                let v = verify_xml_at(&text, trust, now);
                (report.status, report.signer, report.signing_time) =
                    (v.status, v.signer, v.signing_time);
                (report.signed_digest, report.detail) = (v.signed_digest, v.detail);
            }
            Err(_) => report.detail = Some("neither a PDF nor UTF-8 XML".into()),
        }
    }
    report
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
            match &c.licence {
                RegistryStatus::Current => "current".to_string(),
                other => format!("{other:?}"),
            }
        ),
        Some(FileStatus::Licence(s)) => licence_line(line, s),
    }
}

fn licence_line(line: String, status: &RegistryStatus) -> String {
    match status {
        RegistryStatus::Current => format!("{line}; registry: current"),
        RegistryStatus::Superseded { by } => format!("{line}; registry: superseded by {by}"),
        RegistryStatus::Revoked { at, reason, by_operator } => {
            format!("{line}; registry: REVOKED {at} by {by_operator}: {reason}")
        }
        RegistryStatus::Unknown => {
            format!("{line}; registry: unknown (not a file we issued)")
        }
    }
}

fn signature_line(report: &FileReport) -> String {
    let file = report.file.display();
    let signer = report.signer.as_deref().unwrap_or("?");
    let signed = report
        .signing_time
        .map(|t| format!(", signed {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
        .unwrap_or_default();
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
