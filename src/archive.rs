//! Archive renewal of PAdES B-LTA files (ETSI EN 319 142-1 §5.5; `elicence timestamp extend`):
//! before the newest document timestamp's TSA certificate expires or its algorithms weaken, a
//! new document timestamp is added over the whole file, after a `/DSS` update with the
//! validation data of the previous one (its TSA chain and CRLs), so that the chain of
//! timestamps can be validated later, each at the time of the next.
//!
//! Only files of ours that verify are renewed: authentic (every signature and document
//! timestamp intact, every TSA trusted) and already B-LTA. The renewed file is verified again
//! before it is handed back.

use chrono::{DateTime, Utc};

use crate::sign::SignError;
use crate::sign::ltv::{PdfTail, append_doc_timestamp, append_dss};
use crate::sign::validation_data::{CrlSource, ValidationData, ValidationDataError, gather};
use crate::timestamp::{Tsa, token_certificates};
use crate::verify::{PdfVerification, SignatureStatus, TrustAnchors, verify_pdf_at};

/// Why a file was not renewed. Facts: the command names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtendError {
    /// The file does not verify.
    #[error("does not verify: {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotAuthentic { status: String, detail: Option<String> },
    /// The file verifies but is not PAdES B-LTA.
    #[error("is PAdES {level}, not B-LTA (only B-LTA files are renewed)")]
    NotLta { level: String },
    /// A document timestamp's TSA is not trusted (give its root with --tsa-trust).
    #[error("document timestamp {index} is from an untrusted TSA ({detail})")]
    UntrustedTimestamp { index: usize, detail: String },
    /// The validation data of the previous timestamp cannot be gathered.
    #[error("validation data of the last document timestamp: {0}")]
    ValidationData(#[from] ValidationDataError),
    /// Writing the updates failed (or the TSA gave no token).
    #[error("{0}")]
    Sign(#[from] SignError),
    /// The renewed file does not verify as B-LTA with one more timestamp (a bug; nothing is
    /// written).
    #[error("the renewed file does not verify: {0}")]
    Renewed(String),
}

/// What [`extend`] made.
#[derive(Debug, Clone)]
pub struct Extended {
    pub pdf: Vec<u8>,
    /// The verification of the renewed file.
    pub verification: PdfVerification,
}

/// Renews the B-LTA file `pdf`: verified against `trust` at `now`, then a `/DSS` update with
/// the chain and CRLs of its newest document timestamp's TSA (from `crls`), then a new
/// document timestamp from `tsa`.
pub fn extend(
    pdf: &[u8],
    trust: &TrustAnchors,
    tsa: &dyn Tsa,
    crls: &CrlSource,
    now: DateTime<Utc>,
) -> Result<Extended, ExtendError> {
    let before = verify_pdf_at(pdf, trust, now);
    if !before.status.is_authentic() {
        let status = match &before.status {
            SignatureStatus::Tampered { reason } => format!("tampered: {reason}"),
            other => other.label().to_owned(),
        };
        return Err(ExtendError::NotAuthentic { status, detail: before.detail.clone() });
    }
    let level = before.pades_level.unwrap_or("b-b");
    if level != "b-lta" {
        return Err(ExtendError::NotLta { level: level.to_owned() });
    }
    for (index, stamp) in before.document_timestamps.iter().enumerate() {
        if !stamp.token.trusted {
            return Err(ExtendError::UntrustedTimestamp {
                index: index + 1,
                detail: stamp.token.detail.clone().unwrap_or_default(),
            });
        }
    }
    let last = before
        .document_timestamps
        .last()
        .ok_or_else(|| ExtendError::NotLta { level: level.to_owned() })?;
    let chain = token_certificates(&last.token_der);
    let needed = gather(&[&chain], crls, now)?;
    let (mut tail, known) = PdfTail::read(pdf)?;
    let fresh = ValidationData {
        certs: needed.certs.into_iter().filter(|c| !known.certs.contains(c)).collect(),
        crls: needed.crls.into_iter().filter(|c| !known.crls.contains(c)).collect(),
    };
    let mut out = pdf.to_vec();
    append_dss(&mut out, &mut tail, &fresh);
    append_doc_timestamp(&mut out, &mut tail, tsa)?;

    let after = verify_pdf_at(&out, trust, now);
    let renewed = after.status.is_authentic()
        && after.pades_level == Some("b-lta")
        && after.document_timestamps.len() == before.document_timestamps.len() + 1;
    if !renewed {
        return Err(ExtendError::Renewed(format!(
            "{} {:?}, {} document timestamp(s)",
            after.status.label(),
            after.pades_level,
            after.document_timestamps.len()
        )));
    }
    Ok(Extended { pdf: out, verification: after })
}
