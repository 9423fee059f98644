//! RFC 3161 timestamp tokens as `verify` judges them (PAdES/CAdES B-T: the unsigned attribute
//! id-aa-signatureTimeStampToken of a SignerInfo, a token over its signature value).
//!
//! A token that is broken or over another signature makes the file tampered: it is part of
//! what was handed over as the signature. A token that is intact but whose TSA is not trusted
//! (not under a TSA trust anchor, not a time-stamping certificate) is reported and ignored:
//! the signer's path is then validated at the verifier's clock, as without a token.

use chrono::{DateTime, Utc};
use cms::signed_data::SignerInfo;
use der::Encode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;

use super::pdf::{carried_certificates, check_signer_info, find_signer_certificate};
use super::{SignatureStatus, TrustAnchors, subject_label, tampered, validate_signer};
use crate::sign::signed_data::OID_SHA256;
use crate::timestamp::asn1::{OID_KP_TIME_STAMPING, OID_SIGNATURE_TIME_STAMP_TOKEN, OID_TST_INFO};
use crate::timestamp::read_token;

/// What a signature's timestamp says, and whether it is trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimestampReport {
    /// The TSA's time (`genTime`).
    pub time: DateTime<Utc>,
    /// The TSA certificate's subject, when the token carries it.
    pub tsa: Option<String>,
    /// The token's serial number (hex).
    pub serial: String,
    /// Whether the token's TSA is trusted; only then is `time` used to validate the signer.
    pub trusted: bool,
    /// Why the TSA is not trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The timestamp of `signer_info`, if it has one. `Err` when the token is broken or not over
/// this signature (tampered).
pub(crate) fn signature_timestamp(
    signer_info: &SignerInfo,
    trust: &TrustAnchors,
    now: DateTime<Utc>,
) -> Result<Option<TimestampReport>, SignatureStatus> {
    let mut tokens = signer_info
        .unsigned_attrs
        .iter()
        .flat_map(|attrs| attrs.iter())
        .filter(|a| a.oid == OID_SIGNATURE_TIME_STAMP_TOKEN)
        .flat_map(|a| a.values.iter());
    let Some(token) = tokens.next() else { return Ok(None) };
    if tokens.next().is_some() {
        return Err(tampered("more than one signature timestamp"));
    }
    let der = token.to_der().map_err(|e| tampered(format!("signature timestamp: {e}")))?;
    check_token(&der, signer_info.signature.as_bytes(), trust.tsa(), now).map(Some)
}

/// Checks a token `der` over `message` (RFC 3161 §2.4.2): the imprint is the SHA-256 of
/// `message`, the TSA's signature over the TSTInfo verifies, and — for `trusted` — the TSA
/// certificate is a time-stamping certificate (RFC 3161 §2.3: extended key usage exactly
/// id-kp-timeStamping, critical) with a valid path to `tsa_trust` at `now`.
pub fn check_token(
    der: &[u8],
    message: &[u8],
    tsa_trust: Option<&TrustAnchors>,
    now: DateTime<Utc>,
) -> Result<TimestampReport, SignatureStatus> {
    check_token_over(der, &Sha256::digest(message), "signature timestamp", tsa_trust, now)
}

/// As [`check_token`] for a token whose imprint must be `digest` (SHA-256), e.g. a document
/// timestamp's over its `/ByteRange` (ISO 32000-2 §12.8.5). `what` names the token in reasons.
pub fn check_token_over(
    der: &[u8],
    digest: &[u8],
    what: &str,
    tsa_trust: Option<&TrustAnchors>,
    now: DateTime<Utc>,
) -> Result<TimestampReport, SignatureStatus> {
    let broken = |why: String| tampered(format!("{what}: {why}"));
    let read = read_token(der).map_err(broken)?;
    let imprint = &read.token.imprint;
    if imprint.hash_algorithm.oid != OID_SHA256 {
        return Err(broken(format!(
            "imprint algorithm {} is not SHA-256",
            imprint.hash_algorithm.oid
        )));
    }
    if imprint.hashed_message.as_bytes() != digest {
        let other = if what == "signature timestamp" { "another signature" } else { "other bytes" };
        return Err(broken(format!("the token is over {other}")));
    }
    let certificates = carried_certificates(&read.signed_data);
    let [signer_info] = read.signed_data.signer_infos.0.as_slice() else {
        return Err(broken("the token has not exactly one SignerInfo".into()));
    };
    let mut report = TimestampReport {
        time: read.token.gen_time,
        tsa: None,
        serial: read.token.serial.clone(),
        trusted: false,
        detail: None,
    };
    let Some(tsa_cert) = find_signer_certificate(signer_info, &certificates) else {
        report.detail = Some("the token does not carry the TSA certificate".into());
        return Ok(report);
    };
    report.tsa = Some(subject_label(tsa_cert));
    let digest = Sha256::digest(&read.tst_info_der);
    check_signer_info(signer_info, tsa_cert, &digest, OID_TST_INFO).map_err(
        |status| match status {
            SignatureStatus::Tampered { reason } => broken(reason),
            other => other,
        },
    )?;
    let untrusted = match (time_stamping_only(tsa_cert), tsa_trust) {
        (Err(why), _) => Some(why),
        (Ok(()), None) => Some("no TSA trust anchors given".to_owned()),
        (Ok(()), Some(anchors)) => {
            validate_signer(tsa_cert, &certificates, anchors, now).err().map(|e| e.to_string())
        }
    };
    report.trusted = untrusted.is_none();
    report.detail = untrusted;
    Ok(report)
}

/// RFC 3161 §2.3: the TSA certificate's extended key usage is critical and names only
/// id-kp-timeStamping.
fn time_stamping_only(cert: &Certificate) -> Result<(), String> {
    let subject = subject_label(cert);
    match cert.tbs_certificate().get_extension::<ExtendedKeyUsage>() {
        Ok(Some((true, ExtendedKeyUsage(purposes)))) if purposes == [OID_KP_TIME_STAMPING] => {
            Ok(())
        }
        Ok(Some((false, _))) => {
            Err(format!("TSA certificate {subject}: extended key usage not critical"))
        }
        Ok(Some(_)) => {
            Err(format!("TSA certificate {subject}: extended key usage is not only timeStamping"))
        }
        Ok(None) => {
            Err(format!("TSA certificate {subject} has no extended key usage timeStamping"))
        }
        Err(e) => Err(format!("TSA certificate {subject}: {e}")),
    }
}
