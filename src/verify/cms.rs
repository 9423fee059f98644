//! A detached CMS SignedData (RFC 5652) over content the caller hashed: the PAdES signature of
//! a PDF revision, a transparency log checkpoint. One SignerInfo; its signed attributes and
//! signature ([`check_signer_info`]); its timestamp, when it has one; the signer's path at the
//! trusted time (the timestamp's when trusted, else `now`).

use chrono::{DateTime, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, SliceReader};
use sha2::{Digest, Sha256};

use super::path::{RevocationCheck, check_signer_path};
use super::pdf::{carried_certificates, check_signer_info, find_signer_certificate};
use super::timestamp::{TimestampReport, signature_timestamp};
use super::{SignatureStatus, TimeSource, TrustAnchors, subject_label, tampered};
use crate::sign::signed_data::{OID_DATA, OID_SIGNED_DATA};

/// What checking a detached CMS found, as far as it got.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CmsFindings {
    /// Signer certificate subject, once the signer certificate was found.
    pub signer: Option<String>,
    /// The trusted timestamp's time, when there is one.
    pub signing_time: Option<DateTime<Utc>>,
    pub signing_time_source: Option<TimeSource>,
    pub timestamp: Option<TimestampReport>,
    /// Why the signer is untrusted, when it is.
    pub detail: Option<String>,
    /// What was checked about the signer's revocation, once its path was checked.
    pub revocation: Option<RevocationCheck>,
}

/// Checks the DER CMS `cms_der` (trailing bytes after the one value are ignored: PDF pads
/// `/Contents` with zeros) over content whose SHA-256 is `digest`.
pub(crate) fn check_detached(
    cms_der: &[u8],
    digest: &[u8],
    trust: &TrustAnchors,
    now: DateTime<Utc>,
    found: &mut CmsFindings,
) -> Result<(), SignatureStatus> {
    let mut reader = SliceReader::new(cms_der).map_err(|e| tampered(format!("CMS: {e}")))?;
    let content_info = ContentInfo::decode(&mut reader)
        .map_err(|e| tampered(format!("CMS ContentInfo cannot be parsed: {e}")))?;
    if content_info.content_type != OID_SIGNED_DATA {
        return Err(tampered("CMS is not SignedData"));
    }
    let signed_data: SignedData = content_info
        .content
        .decode_as()
        .map_err(|e| tampered(format!("CMS SignedData cannot be parsed: {e}")))?;
    let certificates = carried_certificates(&signed_data);
    let signer_info = match signed_data.signer_infos.0.as_slice() {
        [one] => one,
        other => return Err(tampered(format!("{} SignerInfos, expected 1", other.len()))),
    };
    let signer_cert = find_signer_certificate(signer_info, &certificates)
        .ok_or_else(|| tampered("signer certificate is not in the CMS"))?;
    found.signer = Some(subject_label(signer_cert));

    check_signer_info(signer_info, signer_cert, digest, OID_DATA)?;

    // The path is validated at a trusted timestamp's time when there is one, else now
    // (never a claimed signing time).
    let mut at = now;
    if let Some(stamp) = signature_timestamp(signer_info, trust, now)? {
        if stamp.trusted {
            at = stamp.time;
            found.signing_time = Some(stamp.time);
            found.signing_time_source = Some(TimeSource::Timestamp);
        }
        found.timestamp = Some(stamp);
    }
    let path = check_signer_path(signer_cert, &certificates, trust, at);
    found.revocation = Some(path.revocation);
    if let Err(why) = path.result {
        found.detail = Some(why.to_string());
        return Err(SignatureStatus::Untrusted { subject: subject_label(signer_cert) });
    }
    Ok(())
}

/// Verifies a detached CMS signature `cms_der` over `content` (SHA-256) against `trust` at
/// `now`: [`SignatureStatus::Authentic`] with what was found, else the reason. Never panics.
pub fn verify_detached(
    cms_der: &[u8],
    content: &[u8],
    trust: &TrustAnchors,
    now: DateTime<Utc>,
) -> (SignatureStatus, CmsFindings) {
    let mut found = CmsFindings::default();
    let digest = Sha256::digest(content);
    let status = match check_detached(cms_der, &digest, trust, now, &mut found) {
        Ok(()) => SignatureStatus::Authentic,
        Err(status) => status,
    };
    (status, found)
}
