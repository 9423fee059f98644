//! A presented file's bytes → the verdict on its signature, whichever format it is: a PDF
//! (PAdES) when it starts with `%PDF`, else UTF-8 XML (XML-DSig). Shared by `elicence verify`
//! and the server's `POST /api/v1/verify`, so both say the same about the same bytes. Pure (the
//! validation time is passed in); never panics on input.

use chrono::{DateTime, Utc};

use crate::verify::ofd::looks_like_ofd;
use crate::verify::pdf::DocumentTimestamp;
use crate::verify::{
    RevocationSource, SignatureStatus, TimeSource, TimestampReport, TrustAnchors, verify_ofd_at,
    verify_pdf_at, verify_xml_at,
};

/// The signature verdict on one presented file.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `pdf` or `xml`.
    pub kind: &'static str,
    pub status: SignatureStatus,
    pub signer: Option<String>,
    pub signing_time: Option<DateTime<Utc>>,
    /// `timestamp` (the path was validated at it) or `claimed` (the signer's `/M`).
    pub signing_time_source: Option<TimeSource>,
    pub signed_digest: Option<String>,
    pub detail: Option<String>,
    /// The signature's RFC 3161 timestamp (B-T), trusted or not.
    pub timestamp: Option<TimestampReport>,
    /// A PDF's signer: where its revocation status came from (`none`, `given`, `dss`), and
    /// notes on revocation data not used.
    pub revocation: Option<RevocationSource>,
    pub revocation_detail: Option<String>,
    /// An OFD's seal: its name and esID.
    pub seal_name: Option<String>,
    pub seal_id: Option<String>,
    /// A PDF's PAdES level (`b-b`, `b-t`, `b-lt`, `b-lta`), the revision its last signature
    /// covers, how many revisions it has, and its document timestamps.
    pub pades_level: Option<&'static str>,
    pub signed_revision: Option<usize>,
    pub revisions: Option<usize>,
    pub document_timestamps: Vec<DocumentTimestamp>,
}

impl Verdict {
    /// A `kind` file with `status` and nothing else known (the fields each format fills are
    /// set over it).
    pub fn bare(kind: &'static str, status: SignatureStatus) -> Verdict {
        Verdict {
            kind,
            status,
            signer: None,
            signing_time: None,
            signing_time_source: None,
            signed_digest: None,
            detail: None,
            timestamp: None,
            revocation: None,
            revocation_detail: None,
            seal_name: None,
            seal_id: None,
            pades_level: None,
            signed_revision: None,
            revisions: None,
            document_timestamps: Vec::new(),
        }
    }

    /// Not signed, with the reason.
    pub fn not_signed(kind: &'static str, detail: impl Into<String>) -> Verdict {
        Verdict { detail: Some(detail.into()), ..Verdict::bare(kind, SignatureStatus::NotSigned) }
    }
}

/// Verifies `bytes` as an OFD, a PDF or an XML e-licence against `trust`, with certificate
/// paths validated at `now` (never at a time the file claims).
pub fn verify_bytes(bytes: &[u8], trust: &TrustAnchors, now: DateTime<Utc>) -> Verdict {
    if looks_like_ofd(bytes) {
        let v = verify_ofd_at(bytes, trust, now);
        return Verdict {
            signer: v.signer,
            signing_time_source: v.signing_time_source,
            signing_time: v.signing_time,
            detail: v.detail,
            timestamp: v.timestamp,
            seal_name: v.seal_name,
            seal_id: v.seal_id,
            ..Verdict::bare("ofd", v.status)
        };
    }
    if bytes.starts_with(b"%PDF") {
        let v = verify_pdf_at(bytes, trust, now);
        return Verdict {
            signer: v.signer,
            signing_time: v.signing_time,
            signing_time_source: v.signing_time_source,
            signed_digest: v.signed_digest,
            detail: v.detail,
            timestamp: v.timestamp,
            revocation: v.revocation,
            revocation_detail: v.revocation_detail,
            pades_level: v.pades_level,
            signed_revision: v.revision,
            revisions: v.revisions,
            document_timestamps: v.document_timestamps,
            ..Verdict::bare("pdf", v.status)
        };
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let v = verify_xml_at(text, trust, now);
            Verdict {
                signer: v.signer,
                signing_time: v.signing_time,
                signing_time_source: v.signing_time_source,
                signed_digest: v.signed_digest,
                detail: v.detail,
                timestamp: v.timestamp,
                ..Verdict::bare("xml", v.status)
            }
        }
        Err(_) => Verdict::not_signed("xml", "neither an OFD, a PDF nor UTF-8 XML"),
    }
}
