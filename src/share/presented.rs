//! What the registry says about a file someone presents (核验): an original version's status,
//! a copy for use (加注件, expired after its date), or unknown; and the audit entry of the check.
//! `elicence verify --data` and the server's `POST /api/v1/verify` build the same
//! [`FileReport`] through [`registry_check`], so their JSON is the same.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::registry::{AuditEntry, Registry, RegistryError, RegistryStatus};
use crate::verify::pdf::DocumentTimestamp;
use crate::verify::presented::Verdict;
use crate::verify::{
    RevocationSource, SignatureStatus, TimeSource, TimestampReport, TrustAnchors, verify_detached,
};

/// One file's verdict as `elicence verify --json` prints it.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The signature's RFC 3161 timestamp, trusted or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampReport>,
    /// A PDF signer's revocation status: where it came from (`none`: not checked, `given`: the
    /// verifier's CRLs, `dss`: a current CRL of its issuer in the PDF's `/DSS`), and notes on
    /// revocation data not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<RevocationSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_detail: Option<String>,
    /// An OFD's seal: its name and esID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_id: Option<String>,
    /// A PDF's PAdES level: `b-b`, `b-t`, `b-lt` (a `/DSS` added after the signature),
    /// `b-lta` (and a document timestamp over it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pades_level: Option<&'static str>,
    /// The revision a PDF's last signature covers, and how many it has (later ones may only
    /// add validation data and document timestamps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_revision: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<usize>,
    /// A PDF's document timestamps (B-LTA), each checked over the revision it ends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub document_timestamps: Vec<DocumentTimestamp>,
    /// The registry's status of this exact file (with `--data`): current, superseded (by),
    /// revoked (when, why, by whom) or unknown; for a copy for use (加注件), copy or expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_status: Option<FileStatus>,
    /// The identifier the registry holds this file under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// Where the transparency log holds this file's version (with `--data`, for an original).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogInclusion>,
}

/// The transparency log leaf that records a presented original, and its inclusion proof in the
/// newest checkpoint, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogInclusion {
    pub leaf_index: u64,
    /// `issued` or `changed`.
    pub event: String,
    /// The checkpoint the proof is relative to (absent: no checkpoint covers the leaf yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_time: Option<String>,
    /// The inclusion proof verifies against the checkpoint's root.
    pub proof_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The checkpoint's signature checked against the verifier's trust anchors (`authentic`,
    /// `untrusted`, …), when the caller checked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_signature: Option<String>,
    /// The checkpoint itself, for a caller that checks its signature (not printed).
    #[serde(skip)]
    pub checkpoint: Option<crate::registry::Checkpoint>,
}

impl FileReport {
    /// The report of `file` with signature verdict `v` and no registry status yet.
    pub fn new(file: PathBuf, v: Verdict) -> FileReport {
        FileReport {
            file,
            kind: v.kind,
            status: v.status,
            signer: v.signer,
            signing_time: v.signing_time,
            signing_time_source: v.signing_time_source,
            signed_digest: v.signed_digest,
            detail: v.detail,
            timestamp: v.timestamp,
            revocation: v.revocation,
            revocation_detail: v.revocation_detail,
            seal_name: v.seal_name,
            seal_id: v.seal_id,
            pades_level: v.pades_level,
            signed_revision: v.signed_revision,
            revisions: v.revisions,
            document_timestamps: v.document_timestamps,
            registry_status: None,
            identifier: None,
            log: None,
        }
    }
}

/// What the registry says about a presented file: an original's status, or a copy for use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FileStatus {
    Licence(RegistryStatus),
    Copy(CopyStatus),
}

impl FileStatus {
    /// An original that is current, or an unexpired copy of a current licence.
    pub fn is_current(&self) -> bool {
        match self {
            FileStatus::Licence(s) => *s == RegistryStatus::Current,
            FileStatus::Copy(c) => c.status == "copy" && c.licence == RegistryStatus::Current,
        }
    }
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

/// The registry status of the file with `sha256` at `at`: an original version (with the rules
/// of time and checks, [`Registry::status_on`]), else a recorded copy for use (expired after its
/// date), else unknown.
pub fn file_status(
    reg: &Registry,
    sha256: &str,
    at: DateTime<Utc>,
) -> Result<(FileStatus, Option<String>), RegistryError> {
    if let Some(v) = reg.licence_by_file_hash(sha256)? {
        let status = reg.status_on(&v, at.date_naive())?;
        return Ok((FileStatus::Licence(status), Some(v.identifier)));
    }
    if let Some(c) = reg.copy_by_file_hash(sha256)? {
        let licence = reg.status_of(&c.identifier, at.date_naive())?;
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

/// Adds the registry's status of the file with `sha256` (`None`: unreadable, so unknown) to
/// `report` and appends the `verify` audit entry by `operator`. Returns whether the file is
/// current ([`FileStatus::is_current`]).
pub fn registry_check(
    reg: &mut Registry,
    report: &mut FileReport,
    sha256: Option<&str>,
    operator: &str,
    at: DateTime<Utc>,
) -> Result<bool, RegistryError> {
    let (status, identifier) = match sha256 {
        Some(sha) => file_status(reg, sha, at)?,
        None => (FileStatus::Licence(RegistryStatus::Unknown), None),
    };
    let current = status.is_current();
    reg.audit_append(&AuditEntry {
        action: "verify".into(),
        operator: operator.to_owned(),
        at,
        subject: identifier.clone().unwrap_or_else(|| report.file.display().to_string()),
        reason: None,
        details: serde_json::json!({
            "file": report.file.display().to_string(),
            "signature": report.status.label(),
            "registry_status": &status,
        }),
    })?;
    let mut log_ok = true;
    if let (FileStatus::Licence(s), Some(id), Some(sha)) = (&status, &identifier, sha256)
        && *s != RegistryStatus::Unknown
    {
        let inclusion = log_inclusion(reg, id, sha)?;
        log_ok = inclusion.as_ref().is_none_or(|l| l.proof_verified || l.tree_size.is_none());
        report.log = inclusion;
    }
    report.registry_status = Some(status);
    report.identifier = identifier;
    Ok(current && log_ok)
}

/// The log leaf of version `identifier` whose files include `sha256`, and its checked inclusion
/// proof. `None` when the version has no such leaf (a registry older than its log, until the
/// next checkpoint brings the log up to date).
fn log_inclusion(
    reg: &Registry,
    identifier: &str,
    sha256: &str,
) -> Result<Option<LogInclusion>, RegistryError> {
    let (leaves, proofs) = reg.log_proofs(identifier)?;
    let Some(leaf) = leaves
        .into_iter()
        .find(|l| l.event != "revoked" && l.files().iter().any(|(_, h)| h == sha256))
    else {
        return Ok(None);
    };
    let proof = proofs.unwrap_or_default().into_iter().find(|p| p.leaf.index == leaf.index);
    let Some(proof) = proof else {
        return Ok(Some(LogInclusion {
            leaf_index: leaf.index,
            event: leaf.event,
            tree_size: None,
            root_hash: None,
            checkpoint_time: None,
            proof_verified: false,
            detail: Some("no checkpoint covers this leaf yet".to_owned()),
            checkpoint_signature: None,
            checkpoint: None,
        }));
    };
    let verified = proof.verify();
    Ok(Some(LogInclusion {
        leaf_index: leaf.index,
        event: leaf.event,
        tree_size: Some(proof.tree_size),
        root_hash: Some(proof.checkpoint.root_hash.clone()),
        checkpoint_time: Some(proof.checkpoint.time.clone()),
        proof_verified: verified.is_ok(),
        detail: verified.err().map(|e| e.to_string()),
        checkpoint_signature: None,
        checkpoint: Some(proof.checkpoint),
    }))
}

/// Checks the signature of the checkpoint that `report`'s log inclusion is relative to against
/// `trust` at `now` and records the verdict; returns false only when there is a checkpoint and
/// its signature is not authentic.
pub fn check_log_signature(
    report: &mut FileReport,
    trust: &TrustAnchors,
    now: DateTime<Utc>,
) -> bool {
    let Some(log) = report.log.as_mut() else { return true };
    let Some(checkpoint) = &log.checkpoint else { return true };
    let status = match checkpoint.signature_der() {
        Ok(der) => verify_detached(&der, checkpoint.body.as_bytes(), trust, now).0,
        Err(e) => crate::verify::tampered(e.reason),
    };
    log.checkpoint_signature = Some(status.label().to_owned());
    status.is_authentic()
}
