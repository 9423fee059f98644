//! Verification of enveloped XML-DSig signatures on e-licence XML, for the layout
//! [`crate::sign::xmldsig::sign_xml`] writes.
//!
//! The document must be in exclusive-canonical form (as we write it); then the
//! enveloped-signature transform is the removal of the `<Signature>` element and the
//! reference digest is the SHA-256 of what remains (XML Signature §6.6.4). `SignedInfo` must
//! be exactly our profile (exc-c14n, rsa-sha256, `Reference URI=""`, SHA-256); its
//! signature is checked with the first `X509Certificate` of `KeyInfo`, which must chain to
//! a trust anchor now. Documents re-serialised by other tools (indented, prefixed `ds:`)
//! are reported as Tampered with the reason, even where a general verifier such as
//! `xmlsec1` would accept them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use der::Decode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::timestamp::{TimestampReport, check_token};
use super::{
    SignatureStatus, TimeSource, TrustAnchors, subject_label, tampered, validate_signer,
    verify_signature,
};
use crate::sign::SignError;
use crate::sign::SignatureAlgorithm;
use crate::sign::xmldsig::{
    DSIG_NS, SIGNATURE_END, SIGNATURE_START, SIGNATURE_START_WITH_ID, SIGNATURE_TIMESTAMP_END,
    SIGNATURE_TIMESTAMP_START, canonical_signature_value, canonical_signed_info, check_canonical,
};

/// The result of [`verify_xml`].
#[derive(Debug, Clone, Serialize)]
pub struct XmlVerification {
    /// The verdict.
    #[serde(flatten)]
    pub status: SignatureStatus,
    /// Signer certificate subject (common name), when a certificate was found.
    pub signer: Option<String>,
    /// The time of a trusted XAdES signature timestamp (XML-DSig itself carries none).
    pub signing_time: Option<DateTime<Utc>>,
    /// `timestamp` when `signing_time` is a trusted timestamp's.
    pub signing_time_source: Option<TimeSource>,
    /// Hex SHA-256 of the signed content (the canonical document without `<Signature>`).
    pub signed_digest: Option<String>,
    /// Why a signature is untrusted, when it is.
    pub detail: Option<String>,
    /// The XAdES signature timestamp (B-T), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampReport>,
}

/// Verifies the enveloped signature of `text` against `trust`, certificates valid now.
pub fn verify_xml(text: &str, trust: &TrustAnchors) -> XmlVerification {
    verify_xml_at(text, trust, Utc::now())
}

/// As [`verify_xml`], with certificate validity checked at `at`. Never panics.
pub fn verify_xml_at(text: &str, trust: &TrustAnchors, at: DateTime<Utc>) -> XmlVerification {
    let mut result = XmlVerification {
        status: SignatureStatus::Authentic,
        signer: None,
        signing_time: None,
        signing_time_source: None,
        signed_digest: None,
        detail: None,
        timestamp: None,
    };
    if let Err(status) = check(text, trust, at, &mut result) {
        result.status = status;
    }
    result
}

fn check(
    text: &str,
    trust: &TrustAnchors,
    at: DateTime<Utc>,
    result: &mut XmlVerification,
) -> Result<(), SignatureStatus> {
    let start_tag = [SIGNATURE_START, SIGNATURE_START_WITH_ID]
        .into_iter()
        .find_map(|tag| text.find(tag).map(|at| (at, tag)));
    let Some((start, start_tag)) = start_tag else {
        if text.contains(DSIG_NS) {
            return Err(tampered("XML-DSig signature not in the elicence layout"));
        }
        return Err(SignatureStatus::NotSigned);
    };
    let signed_doc = text.trim_end_matches(['\n', ' ', '\t']);
    if let Err(SignError::NotCanonical { offset, problem }) = check_canonical(signed_doc) {
        return Err(tampered(format!("signed XML is not canonical at byte {offset}: {problem}")));
    }
    let inner_start = start + start_tag.len();
    let inner_len = text
        .get(inner_start..)
        .and_then(|rest| rest.find(SIGNATURE_END))
        .ok_or_else(|| tampered("unterminated <Signature>"))?;
    let inner = &text[inner_start..inner_start + inner_len];
    let end = inner_start + inner_len + SIGNATURE_END.len();

    let parts = SignatureParts::parse(inner).map_err(tampered)?;
    if parts.timestamp.is_some() != (start_tag == SIGNATURE_START_WITH_ID) {
        return Err(tampered("signature Id and XAdES timestamp do not go together"));
    }
    let expected_signed_info =
        canonical_signed_info(SignatureAlgorithm::RsaPkcs1Sha256, parts.digest_value);
    let actual_signed_info =
        format!("<SignedInfo xmlns=\"{DSIG_NS}\">{}</SignedInfo>", parts.signed_info_inner);
    if expected_signed_info != actual_signed_info {
        return Err(tampered(
            "SignedInfo is not the elicence profile (exc-c14n, rsa-sha256, enveloped URI=\"\")",
        ));
    }
    let signature = decode_base64(parts.signature_value)
        .ok_or_else(|| tampered("SignatureValue is not base64"))?;
    let certificates = parts
        .certificates
        .iter()
        .map(|b64| {
            decode_base64(b64)
                .and_then(|der_bytes| Certificate::from_der(&der_bytes).ok())
                .ok_or_else(|| tampered("X509Certificate cannot be parsed"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signer_cert = certificates.first().ok_or_else(|| tampered("no X509Certificate"))?;
    result.signer = Some(subject_label(signer_cert));

    // XML Signature §3.2.2: the SignatureValue over the canonical SignedInfo.
    verify_signature(
        signer_cert,
        &SignatureAlgorithm::RsaPkcs1Sha256.oid(),
        actual_signed_info.as_bytes(),
        &signature,
    )
    .map_err(|why| tampered(format!("SignatureValue: {why}")))?;

    // §3.2.1: reference validation. Enveloped transform = the document without Signature.
    let mut hasher = Sha256::new();
    hasher.update(&text.as_bytes()[..start]);
    hasher.update(signed_doc.get(end..).unwrap_or("").as_bytes());
    let digest = hasher.finalize();
    result.signed_digest = Some(hex::encode(digest));
    let expected_digest =
        decode_base64(parts.digest_value).ok_or_else(|| tampered("DigestValue is not base64"))?;
    if expected_digest != digest.as_slice() {
        return Err(tampered("signed content changed: digest does not match DigestValue"));
    }

    // XAdES B-T: a token over the canonical SignatureValue; when its TSA is trusted the
    // signer is validated at its time.
    let mut at = at;
    if let Some(token_b64) = parts.timestamp {
        let token = decode_base64(token_b64)
            .ok_or_else(|| tampered("EncapsulatedTimeStamp is not base64"))?;
        let message = canonical_signature_value(parts.signature_value);
        let stamp = check_token(&token, message.as_bytes(), trust.tsa(), at)?;
        if stamp.trusted {
            at = stamp.time;
            result.signing_time = Some(stamp.time);
            result.signing_time_source = Some(TimeSource::Timestamp);
        }
        result.timestamp = Some(stamp);
    }
    if let Err(why) = validate_signer(signer_cert, &certificates, trust, at) {
        result.detail = Some(why.to_string());
        return Err(SignatureStatus::Untrusted { subject: subject_label(signer_cert) });
    }
    Ok(())
}

/// The pieces of our `<Signature>` content.
struct SignatureParts<'a> {
    signed_info_inner: &'a str,
    digest_value: &'a str,
    signature_value: &'a str,
    certificates: Vec<&'a str>,
    /// Base64 of the XAdES signature timestamp token.
    timestamp: Option<&'a str>,
}

impl<'a> SignatureParts<'a> {
    fn parse(inner: &'a str) -> Result<SignatureParts<'a>, String> {
        let (signed_info_inner, rest) = element(inner, "SignedInfo")?;
        let (signature_value, rest) = element(rest, "SignatureValue")?;
        let (key_info, rest) = element(rest, "KeyInfo")?;
        let timestamp = match rest.trim() {
            "" => None,
            object => Some(
                object
                    .strip_prefix(SIGNATURE_TIMESTAMP_START)
                    .and_then(|o| o.strip_suffix(SIGNATURE_TIMESTAMP_END))
                    .ok_or("unexpected content after KeyInfo")?,
            ),
        };
        let (mut x509_data, rest) = element(key_info, "X509Data")?;
        if !rest.trim().is_empty() {
            return Err("unexpected content after X509Data".into());
        }
        let mut certificates = Vec::new();
        while !x509_data.trim().is_empty() {
            let (cert, rest) = element(x509_data, "X509Certificate")?;
            certificates.push(cert);
            x509_data = rest;
        }
        let digest_start = signed_info_inner.find("<DigestValue>").ok_or("no DigestValue")?
            + "<DigestValue>".len();
        let digest_len = signed_info_inner[digest_start..]
            .find("</DigestValue>")
            .ok_or("unterminated DigestValue")?;
        let digest_value = &signed_info_inner[digest_start..digest_start + digest_len];
        Ok(SignatureParts {
            signed_info_inner,
            digest_value,
            signature_value,
            certificates,
            timestamp,
        })
    }
}

/// Splits `<name>content</name>rest` (after optional whitespace) into `content`, `rest`.
fn element<'a>(text: &'a str, name: &str) -> Result<(&'a str, &'a str), String> {
    let text = text.trim_start();
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let body = text.strip_prefix(open.as_str()).ok_or_else(|| format!("expected <{name}>"))?;
    let end = body.find(close.as_str()).ok_or_else(|| format!("unterminated <{name}>"))?;
    Ok((&body[..end], &body[end + close.len()..]))
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_and_garbage_never_panic() {
        let trust = TrustAnchors::default();
        assert_eq!(verify_xml("<a></a>", &trust).status, SignatureStatus::NotSigned);
        for input in [
            "",
            "<a><Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"></a>",
            "<a><Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><SignedInfo></SignedInfo></Signature></a>",
            "<a><Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">",
        ] {
            let v = verify_xml(input, &trust);
            assert!(!v.status.is_authentic(), "{input:?}");
        }
    }
}
