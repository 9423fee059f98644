//! Verification of PAdES signatures (ETSI EN 319 142-1) on e-licence PDFs.
//!
//! Checks, in order: the last signature's `/ByteRange` covers the whole file except exactly
//! its `/Contents` hex string, or ends a revision after which the incremental updates only add
//! long-term validation material (a `/DSS`, document timestamps: PAdES B-LT, B-LTA; checked by
//! [`super::pdf_update`]; any other change after signing makes the document Tampered); every
//! document timestamp's token is over its `/ByteRange` bytes; the SHA-256 of the covered bytes
//! equals the CMS messageDigest (RFC 5652 §11.2); signing-certificate-v2 names the signer certificate
//! (RFC 5035); the RSA signature over the signed attributes verifies (RFC 5652 §5.4); the
//! signer certificate has a valid path to a trust anchor now ([`super::path`]; `/M` is a claim),
//! with the CRLs of the last revision's `/DSS` ([`super::dss`]) counted as [`super::path`] says.
//! The file is scanned, never parsed as a whole, and nothing is inflated but the DSS's streams,
//! each with a cap (see [`verify_pdf`]): verification is bounded.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::Encode;
use der::asn1::OctetString;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use super::cms::{CmsFindings, check_detached};
use super::dss::read_dss;
use super::path::RevocationSource;
use super::pdf_update::{AppendedUpdates, check_appended_updates};
use super::timestamp::{TimestampReport, check_token_over};
use super::{SignatureStatus, TimeSource, TrustAnchors, tampered, verify_signature};
use crate::sign::signed_data::{OID_SHA256, OID_SIGNING_CERTIFICATE_V2, SigningCertificateV2};

/// OID id-messageDigest (RFC 5652 §11.2).
const OID_MESSAGE_DIGEST: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// OID id-contentType (RFC 5652 §11.1).
const OID_CONTENT_TYPE: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");

/// The result of [`verify_pdf`].
#[derive(Debug, Clone, Serialize)]
pub struct PdfVerification {
    /// The verdict.
    #[serde(flatten)]
    pub status: SignatureStatus,
    /// Signer certificate subject (common name), when a CMS was found.
    pub signer: Option<String>,
    /// `/M` of the signature dictionary (a claim, see `signing_time_source`).
    pub signing_time: Option<DateTime<Utc>>,
    /// Where `signing_time` comes from; the path is validated at it only when it is
    /// [`TimeSource::Timestamp`], else at the verifier's current time.
    pub signing_time_source: Option<TimeSource>,
    /// Hex SHA-256 of the signed byte ranges.
    pub signed_digest: Option<String>,
    /// Why a signature is untrusted, when it is.
    pub detail: Option<String>,
    /// The signature's RFC 3161 timestamp (PAdES B-T), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampReport>,
    /// Where the signer's revocation status came from (`none`, `given`, `dss`), once its path
    /// was checked; and notes on revocation data not used (a stale or foreign CRL in the
    /// `/DSS`, a DSS that cannot be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<RevocationSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_detail: Option<String>,
    /// The revision (counted in `%%EOF` markers) the signature covers, and how many the file
    /// has: the last signature of an unchanged file covers the last revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<usize>,
    /// Signatures before the last one (a copy for use has the original's), each checked over
    /// the revision it covers; any that is not authentic decides `status`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier_signatures: Vec<EarlierSignature>,
    /// Document timestamps (PAdES B-LTA), in file order, each checked over its byte range.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub document_timestamps: Vec<DocumentTimestamp>,
    /// The PAdES baseline level the file has: `b-b`, `b-t` (a signature timestamp), `b-lt`
    /// (and a `/DSS` added after the signature), `b-lta` (and a document timestamp over it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pades_level: Option<&'static str>,
}

/// A document timestamp (ISO 32000-2 §12.8.5) as [`verify_pdf`] found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentTimestamp {
    /// The revision its byte range ends.
    pub revision: usize,
    #[serde(flatten)]
    pub token: TimestampReport,
    /// The token (DER), for archive renewal (`elicence timestamp extend`).
    #[serde(skip)]
    pub token_der: Vec<u8>,
}

/// An earlier signature of a PDF, as [`verify_pdf`] found it.
#[derive(Debug, Clone, Serialize)]
pub struct EarlierSignature {
    #[serde(flatten)]
    pub status: SignatureStatus,
    pub signer: Option<String>,
    pub revision: Option<usize>,
    pub signing_time: Option<DateTime<Utc>>,
    pub signing_time_source: Option<TimeSource>,
}

impl PdfVerification {
    fn new(status: SignatureStatus) -> PdfVerification {
        PdfVerification {
            status,
            signer: None,
            signing_time: None,
            signing_time_source: None,
            signed_digest: None,
            detail: None,
            timestamp: None,
            revocation: None,
            revocation_detail: None,
            revision: None,
            revisions: None,
            earlier_signatures: Vec::new(),
            document_timestamps: Vec::new(),
            pades_level: None,
        }
    }
}

/// Largest PDF [`verify_pdf`] looks at. An e-licence is a few hundred kilobytes; anything
/// near this is not one of ours, and refusing it keeps memory bounded per file.
pub const MAX_PDF_BYTES: usize = 64 << 20;

/// Most signature dictionaries [`verify_pdf`] considers in one file (ours have one; a
/// watermarked copy or a B-LTA file a handful).
pub const MAX_SIGNATURES: usize = 64;

/// Verifies every signature of a PDF against `trust`: the last must cover the whole file, each
/// earlier one the revision it ends. Never panics; malformed input is
/// reported as [`SignatureStatus::Tampered`] or [`SignatureStatus::NotSigned`].
///
/// Bounded by construction: the file is never parsed as a whole and no stream is inflated
/// but those of the `/DSS`, each to at most [`super::dss::MAX_DSS_STREAM_BYTES`] and all to
/// [`super::dss::MAX_DSS_BYTES`]. A signature dictionary cannot live in a compressed object stream (its
/// `/Contents` must be the literal gap in `/ByteRange`, ISO 32000-1 §12.8.1), so the
/// dictionaries are found by a linear scan of the raw bytes; everything a signature
/// protects is then checked by hashing the covered bytes as they are. Work and memory are
/// linear in the file size (at most [`MAX_PDF_BYTES`]) plus the DSS caps, independent of what
/// the file's streams claim to inflate to, and of the number of threads.
pub fn verify_pdf(bytes: &[u8], trust: &TrustAnchors) -> PdfVerification {
    verify_pdf_at(bytes, trust, Utc::now())
}

/// As [`verify_pdf`], validating the signer's certificate path at `now` (the verifier's
/// clock; the signer's `/M` is only reported). Never panics.
pub fn verify_pdf_at(bytes: &[u8], trust: &TrustAnchors, now: DateTime<Utc>) -> PdfVerification {
    if bytes.len() > MAX_PDF_BYTES {
        let status = if find(bytes, b"/ByteRange").is_some() {
            tampered(format!(
                "file is {} bytes, more than the {MAX_PDF_BYTES} verified",
                bytes.len()
            ))
        } else {
            SignatureStatus::NotSigned
        };
        return PdfVerification::new(status);
    }
    let found = match signature_dictionaries(bytes) {
        Ok(found) => found,
        Err(status) => return PdfVerification::new(status),
    };
    let (mut stamps, mut signatures): (Vec<_>, Vec<_>) =
        found.into_iter().partition(|s| s.doc_timestamp);
    // The signature whose range reaches furthest is the last one; it must cover the file, or
    // end a revision after which only validation data and document timestamps were added.
    signatures.sort_by_key(SignatureDictionary::end);
    let Some(sig) = signatures.pop() else {
        return PdfVerification::new(SignatureStatus::NotSigned);
    };
    // The last revision's DSS serves every path of the file: signatures and timestamps. (No
    // copy of the anchors for the many files without one.)
    let with_dss;
    let trust = match read_dss(bytes) {
        Ok(None) => trust,
        read => {
            with_dss = trust.with_dss(read);
            &with_dss
        }
    };
    let signed_end = usize::try_from(sig.end()).unwrap_or(usize::MAX);
    let coverage = if signed_end >= bytes.len() { Coverage::WholeFile } else { Coverage::Revision };
    let mut result = checked(bytes, &sig, trust, now, coverage);
    result.revisions = Some(revisions(bytes, bytes.len()));
    let mut appended = AppendedUpdates::default();
    if coverage == Coverage::Revision && result.status.is_authentic() {
        match check_appended_updates(bytes, signed_end) {
            Ok(updates) => appended = updates,
            Err(why) => result.status = tampered(format!("document changed after signing: {why}")),
        }
    }
    // Document timestamps, last first: each earlier one is validated at the time of the next
    // trusted one (archive renewal, ETSI EN 319 102-1 §5.6.3), the last at `now`.
    stamps.sort_by_key(SignatureDictionary::end);
    let mut at = now;
    for stamp in stamps.iter().rev() {
        match check_document_timestamp(bytes, stamp, trust, at) {
            Ok(report) => {
                if report.token.trusted {
                    at = report.token.time;
                }
                result.document_timestamps.push(report);
            }
            Err(status) => {
                if result.status.is_authentic() {
                    result.status = status;
                }
            }
        }
    }
    result.document_timestamps.reverse();
    let dss_end = appended.updates.iter().find(|(_, dss, _)| *dss).map(|(end, _, _)| *end);
    let level = match (result.timestamp.is_some(), dss_end) {
        (false, _) => "b-b",
        (true, None) => "b-t",
        (true, Some(dss_end)) => {
            let over_dss =
                stamps.iter().any(|s| usize::try_from(s.end()).is_ok_and(|e| e >= dss_end));
            if over_dss { "b-lta" } else { "b-lt" }
        }
    };
    result.pades_level = Some(level);
    // Every earlier signature must be intact over the revision it covers.
    for earlier in &signatures {
        let v = checked(bytes, earlier, trust, now, Coverage::Revision);
        if result.status.is_authentic() && !v.status.is_authentic() {
            result.detail = Some(format!(
                "earlier signature over revision {}: {}{}",
                v.revision.unwrap_or(0),
                v.status.label(),
                match (&v.status, &v.detail) {
                    (SignatureStatus::Tampered { reason }, _) => format!(" ({reason})"),
                    (_, Some(why)) => format!(" ({why})"),
                    _ => String::new(),
                }
            ));
            result.status = v.status.clone();
        }
        result.earlier_signatures.push(EarlierSignature {
            status: v.status,
            signer: v.signer,
            revision: v.revision,
            signing_time: v.signing_time,
            signing_time_source: v.signing_time_source,
        });
    }
    result
}

/// What a signature's byte range must reach.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coverage {
    /// The last signature: the whole file (anything after it is an unsigned change).
    WholeFile,
    /// An earlier signature: the end of a revision (`%%EOF`).
    Revision,
}

fn checked(
    bytes: &[u8],
    sig: &SignatureDictionary,
    trust: &TrustAnchors,
    now: DateTime<Utc>,
    coverage: Coverage,
) -> PdfVerification {
    let mut result = PdfVerification::new(SignatureStatus::Authentic);
    result.signing_time = sig.signing_time;
    result.signing_time_source = sig.signing_time.map(|_| TimeSource::Claimed);
    if let Err(status) = check(bytes, sig, trust, now, coverage, &mut result) {
        result.status = status;
    }
    result
}

/// The number of revisions (`%%EOF` markers) in the first `end` bytes.
fn revisions(bytes: &[u8], end: usize) -> usize {
    let head = bytes.get(..end).unwrap_or(bytes);
    head.windows(5).filter(|w| *w == b"%%EOF").count()
}

struct SignatureDictionary {
    byte_range: [i64; 4],
    signing_time: Option<DateTime<Utc>>,
    /// A document timestamp (`/Type /DocTimeStamp`, `/SubFilter /ETSI.RFC3161`): its
    /// `/Contents` is a bare timestamp token, not a CMS signature.
    doc_timestamp: bool,
}

impl SignatureDictionary {
    /// Where the byte range ends.
    fn end(&self) -> i64 {
        self.byte_range[2].saturating_add(self.byte_range[3])
    }
}

/// Every `/ByteRange [a b c d]` in the raw file with the `/M` of the object around it.
/// An unreadable array is skipped, as a parser would ignore a broken object; more than
/// [`MAX_SIGNATURES`] arrays make the file [`SignatureStatus::Tampered`].
fn signature_dictionaries(bytes: &[u8]) -> Result<Vec<SignatureDictionary>, SignatureStatus> {
    const KEY: &[u8] = b"/ByteRange";
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = bytes.get(from..).and_then(|rest| find(rest, KEY)).map(|i| from + i) {
        from = at + KEY.len();
        if found.len() == MAX_SIGNATURES {
            return Err(tampered(format!("more than {MAX_SIGNATURES} /ByteRange arrays")));
        }
        let Some(byte_range) = parse_byte_range(bytes.get(from..).unwrap_or_default()) else {
            continue;
        };
        found.push(SignatureDictionary {
            byte_range,
            signing_time: claimed_time(bytes, at),
            doc_timestamp: is_doc_timestamp(bytes, at),
        });
    }
    Ok(found)
}

/// Parses `[a b c d]` (PDF whitespace allowed, ISO 32000-1 §7.2.2) at the start of `text`.
fn parse_byte_range(text: &[u8]) -> Option<[i64; 4]> {
    let is_space = |b: &u8| b" \t\r\n\x0c\x00".contains(b);
    let open = text.iter().position(|b| !is_space(b))?;
    if text.get(open) != Some(&b'[') {
        return None;
    }
    // Four numbers of at most 20 characters each plus spaces: never read far.
    let window = text.get(open + 1..)?;
    let close = window.iter().take(128).position(|&b| b == b']')?;
    let inner = std::str::from_utf8(window.get(..close)?).ok()?;
    let numbers: Vec<i64> = inner
        .split(|c: char| is_space(&(c as u8)))
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    <[i64; 4]>::try_from(numbers).ok()
}

/// The `/M (D:…)` of the indirect object holding the `/ByteRange` at `at`: from the
/// nearest `obj` before it to the nearest `endobj` after it. Only a claim, reported as such.
fn claimed_time(bytes: &[u8], at: usize) -> Option<DateTime<Utc>> {
    let head = bytes.get(..at)?;
    let start = head.windows(3).rposition(|w| w == b"obj").unwrap_or(0);
    let end = bytes.get(at..).and_then(|t| find(t, b"endobj")).map_or(bytes.len(), |e| at + e);
    let object = bytes.get(start..end)?;
    let mut from = 0;
    while let Some(m) = object.get(from..).and_then(|t| find(t, b"/M")).map(|i| from + i) {
        from = m + 2;
        let rest = object.get(from..)?;
        let value = rest.iter().position(|b| !b" \t\r\n".contains(b))?;
        if rest.get(value) != Some(&b'(') {
            continue; // `/MDP`, `/Mx`…: another key
        }
        let text = rest.get(value + 1..)?;
        let close = text.iter().take(64).position(|&b| b == b')')?;
        return parse_pdf_date(&String::from_utf8_lossy(text.get(..close)?));
    }
    None
}

/// Whether the indirect object holding the `/ByteRange` at `at` is a document timestamp.
fn is_doc_timestamp(bytes: &[u8], at: usize) -> bool {
    let head = bytes.get(..at).unwrap_or_default();
    let start = head.windows(3).rposition(|w| w == b"obj").unwrap_or(0);
    let end = bytes.get(at..).and_then(|t| find(t, b"endobj")).map_or(bytes.len(), |e| at + e);
    let object = bytes.get(start..end).unwrap_or_default();
    find(object, b"/DocTimeStamp").is_some() || find(object, b"/ETSI.RFC3161").is_some()
}

/// The byte range of a signature dictionary checked against the file: `(a, b, c, end)` with
/// the gap `b..c` exactly the `/Contents` hex string, whose bytes are returned decoded.
fn covered_ranges(
    bytes: &[u8],
    byte_range: [i64; 4],
) -> Result<([usize; 4], Vec<u8>), SignatureStatus> {
    let [a, b, c, d] = byte_range;
    let as_usize = |v: i64| usize::try_from(v).map_err(|_| tampered("negative /ByteRange"));
    let (a, b, c, d) = (as_usize(a)?, as_usize(b)?, as_usize(c)?, as_usize(d)?);
    let covered_end = c.checked_add(d).ok_or_else(|| tampered("/ByteRange overflows"))?;
    if a != 0 || b >= c || covered_end > bytes.len() {
        return Err(tampered(format!("/ByteRange {byte_range:?} does not fit the file")));
    }
    let gap = bytes.get(b..c).ok_or_else(|| tampered("bad /ByteRange"))?;
    let hex_digits = match gap {
        [b'<', inner @ .., b'>'] => inner,
        _ => return Err(tampered("/ByteRange gap is not the /Contents hex string")),
    };
    let contents = hex::decode(hex_digits)
        .map_err(|_| tampered("/ByteRange gap is not the /Contents hex string"))?;
    let before = bytes.get(..b).unwrap_or_default();
    let key_end = before.iter().rposition(|c| !b" \t\r\n".contains(c)).map_or(0, |i| i + 1);
    if !before.get(..key_end).unwrap_or_default().ends_with(b"/Contents") {
        return Err(tampered("/ByteRange gap is not a /Contents value"));
    }
    Ok(([a, b, c, covered_end], contents))
}

/// Whether the first `end` bytes end with `%%EOF` (and end-of-line characters).
fn ends_revision(bytes: &[u8], end: usize) -> bool {
    let covered = bytes.get(..end).unwrap_or_default();
    let last = covered.iter().rposition(|b| !b"\r\n".contains(b)).map_or(0, |i| i + 1);
    covered.get(..last).unwrap_or_default().ends_with(b"%%EOF")
}

/// A document timestamp: its byte range fits and ends a revision, and its token (RFC 3161) is
/// over the SHA-256 of the covered bytes; its TSA validated against the TSA anchors at `at`.
fn check_document_timestamp(
    bytes: &[u8],
    stamp: &SignatureDictionary,
    trust: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<DocumentTimestamp, SignatureStatus> {
    let ([a, b, c, end], contents) = covered_ranges(bytes, stamp.byte_range)?;
    if !ends_revision(bytes, end) {
        return Err(tampered("a document timestamp's range does not end a revision"));
    }
    // /Contents is zero-padded after the DER token.
    let token = der_value(&contents)
        .ok_or_else(|| tampered("document timestamp: /Contents is not a DER value"))?;
    let mut hasher = Sha256::new();
    hasher.update(bytes.get(a..b).unwrap_or_default());
    hasher.update(bytes.get(c..end).unwrap_or_default());
    let digest = hasher.finalize();
    let report = check_token_over(token, &digest, "document timestamp", trust.tsa(), at)?;
    Ok(DocumentTimestamp {
        revision: revisions(bytes, end),
        token: report,
        token_der: token.to_vec(),
    })
}

/// The first DER value (tag, length, contents) of `bytes`, without what follows it.
fn der_value(bytes: &[u8]) -> Option<&[u8]> {
    let first = *bytes.get(1)?;
    let (header, length) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let length = bytes.get(2..2 + n)?.iter().fold(0usize, |l, b| (l << 8) | usize::from(*b));
        (2 + n, length)
    };
    bytes.get(..header.checked_add(length)?)
}

fn check(
    bytes: &[u8],
    sig: &SignatureDictionary,
    trust: &TrustAnchors,
    now: DateTime<Utc>,
    coverage: Coverage,
    result: &mut PdfVerification,
) -> Result<(), SignatureStatus> {
    let ([a, b, c, covered_end], cms_bytes) = covered_ranges(bytes, sig.byte_range)?;
    result.revision = Some(revisions(bytes, covered_end));
    match coverage {
        Coverage::WholeFile if covered_end < bytes.len() => {
            return Err(tampered(format!(
                "document changed after signing: {} bytes after the signed range",
                bytes.len() - covered_end
            )));
        }
        Coverage::Revision if !ends_revision(bytes, covered_end) => {
            return Err(tampered("a signature's range does not end a revision"));
        }
        _ => {}
    }

    let mut hasher = Sha256::new();
    hasher.update(bytes.get(a..b).unwrap_or_default());
    hasher.update(bytes.get(c..covered_end).unwrap_or_default());
    let digest = hasher.finalize();
    result.signed_digest = Some(hex::encode(digest));

    // /Contents is zero-padded after the DER ContentInfo: the CMS check reads one value.
    let mut found = CmsFindings::default();
    let checked = check_detached(&cms_bytes, &digest, trust, now, &mut found);
    result.signer = found.signer;
    result.signing_time = found.signing_time.or(result.signing_time);
    if found.signing_time_source.is_some() {
        result.signing_time_source = found.signing_time_source;
    }
    result.timestamp = found.timestamp;
    if let Some(revocation) = found.revocation {
        result.revocation = Some(revocation.source);
        result.revocation_detail = revocation.detail;
    }
    if found.detail.is_some() {
        result.detail = found.detail;
    }
    checked
}

/// The certificates a CMS SignedData carries.
pub(crate) fn carried_certificates(signed_data: &SignedData) -> Vec<Certificate> {
    signed_data
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// RFC 5652 §5.4–5.6: digest algorithm, signed attributes (contentType `content_type`,
/// messageDigest `digest`, signing-certificate-v2 naming `signer_cert`), then the signature.
pub(crate) fn check_signer_info(
    signer_info: &SignerInfo,
    signer_cert: &Certificate,
    digest: &[u8],
    content_type_expected: der::oid::ObjectIdentifier,
) -> Result<(), SignatureStatus> {
    if signer_info.digest_alg.oid != OID_SHA256 {
        return Err(tampered(format!(
            "unsupported digest algorithm {}",
            signer_info.digest_alg.oid
        )));
    }
    let attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| tampered("no signed attributes (PAdES requires them)"))?;
    let single_value = |oid| {
        attrs.iter().find(|a| a.oid == oid).and_then(|a| match a.values.as_slice() {
            [value] => Some(value),
            _ => None,
        })
    };
    let content_type = single_value(OID_CONTENT_TYPE)
        .and_then(|v| v.decode_as::<der::oid::ObjectIdentifier>().ok());
    if content_type != Some(content_type_expected) {
        return Err(tampered(format!(
            "contentType attribute missing or not {content_type_expected}"
        )));
    }
    let message_digest = single_value(OID_MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or_else(|| tampered("messageDigest attribute missing"))?;
    if message_digest.as_bytes() != digest {
        return Err(tampered("signed content changed: digest does not match messageDigest"));
    }
    if let Some(value) = single_value(OID_SIGNING_CERTIFICATE_V2) {
        let signing_certificate: SigningCertificateV2 = value
            .decode_as()
            .map_err(|e| tampered(format!("signing-certificate-v2 cannot be parsed: {e}")))?;
        let first = signing_certificate
            .certs
            .first()
            .ok_or_else(|| tampered("signing-certificate-v2 is empty"))?;
        let sha256 = first.hash_algorithm.as_ref().is_none_or(|alg| alg.oid == OID_SHA256);
        let cert_der = signer_cert.to_der().map_err(|e| tampered(e.to_string()))?;
        if sha256 && first.cert_hash.as_bytes() != Sha256::digest(&cert_der).as_slice() {
            return Err(tampered("signing-certificate-v2 does not name the signer certificate"));
        }
    }
    let signed_attrs_der = attrs.to_der().map_err(|e| tampered(e.to_string()))?;
    verify_signature(
        signer_cert,
        &signer_info.signature_algorithm.oid,
        &signed_attrs_der,
        signer_info.signature.as_bytes(),
    )
    .map_err(|why| tampered(format!("CMS signature: {why}")))
}

pub(crate) fn find_signer_certificate<'c>(
    signer_info: &SignerInfo,
    certificates: &'c [Certificate],
) -> Option<&'c Certificate> {
    certificates.iter().find(|cert| {
        let tbs = cert.tbs_certificate();
        match &signer_info.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                *tbs.issuer() == ias.issuer && *tbs.serial_number() == ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                .get_extension::<SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, own)| own == *ski),
        }
    })
}

/// Parses a PDF date `D:YYYYMMDDHHmmSS` with `Z`, `+HH'mm'` or `-HH'mm'`
/// (ISO 32000-1 §7.9.4); missing trailing fields default as the standard says.
pub(crate) fn parse_pdf_date(text: &str) -> Option<DateTime<Utc>> {
    let s = text.strip_prefix("D:").unwrap_or(text);
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let field = |from: usize, len: usize, default: u32| -> Option<u32> {
        match digits.get(from..from + len) {
            Some(v) => v.parse().ok(),
            None if digits.len() <= from => Some(default),
            None => None,
        }
    };
    let year = i32::try_from(field(0, 4, 0)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, field(4, 2, 1)?, field(6, 2, 1)?)?;
    let local = date.and_hms_opt(field(8, 2, 0)?, field(10, 2, 0)?, field(12, 2, 0)?)?;
    let rest = s.get(digits.len()..).unwrap_or("");
    let offset_secs = match rest.chars().next() {
        None | Some('Z') => 0,
        Some(sign @ ('+' | '-')) => {
            let tz: String = rest[1..].chars().filter(char::is_ascii_digit).collect();
            let hours: i32 = tz.get(0..2)?.parse().ok()?;
            let minutes: i32 = tz.get(2..4).unwrap_or("0").parse().ok()?;
            let secs = hours * 3600 + minutes * 60;
            if sign == '+' { secs } else { -secs }
        }
        Some(_) => return None,
    };
    let utc = Utc.from_utc_datetime(&local) - chrono::Duration::seconds(i64::from(offset_secs));
    Some(utc)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pdf_dates() {
        let expect = |s: &str| parse_pdf_date(s).map(|d| d.to_rfc3339());
        assert_eq!(expect("D:20261127100658Z").as_deref(), Some("2026-11-27T10:06:58+00:00"));
        assert_eq!(expect("D:20261127180658+08'00'").as_deref(), Some("2026-11-27T10:06:58+00:00"));
        assert_eq!(expect("D:2026").as_deref(), Some("2026-01-01T00:00:00+00:00"));
        assert_eq!(expect("garbage"), None);
    }

    #[test]
    fn garbage_is_not_signed_and_does_not_panic() {
        let trust = TrustAnchors::default();
        for input in [&b""[..], b"%PDF-1.7", b"/ByteRange [0 1 2 3] /Contents <00>", &[0xFF; 64]] {
            let v = verify_pdf(input, &trust);
            assert!(!v.status.is_authentic(), "{input:?}");
        }
    }
}
