//! `elicence verify FILE...`: checks signed e-licences (PDF or XML) and prints one line per
//! file, or one JSON object per line with `--json`. Exit code 0 only if every file is
//! authentic.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sign::keys::CA_CERT_FILE;
use crate::verify::{SignatureStatus, TrustAnchors, verify_pdf, verify_xml};

/// Arguments of `elicence verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Signed PDF or XML files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Trust anchor certificates (PEM); may be repeated.
    #[arg(long, value_name = "PEM")]
    pub trust: Vec<PathBuf>,
    /// Key directory whose ca.pem is trusted (e.g. a development key set).
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One file's verdict as printed.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    /// `pdf` or `xml`.
    pub kind: &'static str,
    #[serde(flatten)]
    pub status: SignatureStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Registry check (registry stage): filled in when the registry lookup is
    /// wired in; `None` until then, and not printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_status: Option<String>,
}

/// Runs `elicence verify`; returns 0 if every file is authentic, else 1. Fails (before
/// reading any file) when no trust anchor is given or one cannot be loaded.
pub fn run(args: &VerifyArgs) -> anyhow::Result<i32> {
    let mut anchor_files = args.trust.clone();
    if let Some(dir) = &args.keys {
        anchor_files.push(dir.join(CA_CERT_FILE));
    }
    if anchor_files.is_empty() {
        anyhow::bail!("no trust anchor: give --trust PEM or --keys DIR");
    }
    let trust = TrustAnchors::from_pem_files(&anchor_files).context("loading trust anchors")?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all_authentic = true;
    for file in &args.files {
        let report = verify_file(file, &trust);
        all_authentic &= report.status.is_authentic();
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        } else {
            writeln!(out, "{}", text_line(&report))?;
        }
    }
    out.flush()?;
    Ok(if all_authentic { 0 } else { 1 })
}

/// Verifies one file; a file that cannot be read is reported as not signed with a detail.
pub fn verify_file(file: &Path, trust: &TrustAnchors) -> FileReport {
    let mut report = FileReport {
        file: file.to_path_buf(),
        kind: "pdf",
        status: SignatureStatus::NotSigned,
        signer: None,
        signing_time: None,
        signed_digest: None,
        detail: None,
        registry_status: None,
    };
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.detail = Some(format!("cannot read: {e}"));
            return report;
        }
    };
    if bytes.starts_with(b"%PDF") {
        let v = verify_pdf(&bytes, trust);
        (report.status, report.signer, report.signing_time) = (v.status, v.signer, v.signing_time);
        (report.signed_digest, report.detail) = (v.signed_digest, v.detail);
    } else {
        report.kind = "xml";
        match String::from_utf8(bytes) {
            Ok(text) => {
                let v = verify_xml(&text, trust);
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
