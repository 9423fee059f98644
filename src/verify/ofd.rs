//! Verification of sealed OFD e-licences (GB/T 33190 packages with a GB/T 38540 SES V4 seal),
//! ours or anyone's (ofdrw's sample is the interoperability fixture).
//!
//! A file is **tampered** when anything the seal vouches for does not match: a reference's SM3,
//! `dataHash` against `Signature.xml`, the SM2 signature over `TBS_Sign`, the seal file against
//! the signed seal, the seal maker's signature, or a file added to or removed from the package
//! outside what the references cover (only `Signatures.xml` and the signature's own
//! `Signature.xml` and `SignedValue.dat` may be uncovered). It is **untrusted** when all that
//! holds but the signer or the seal maker does not chain to a trusted SM2 root, the seal was not
//! valid at the signing time, or the seal's certList does not name the signer. **not-signed**:
//! no OFD, or no signature listed.
//!
//! SM2 certificate paths are checked here, not by OpenSSL: OpenSSL 3.0 verifies SM2 certificate
//! signatures with an empty distinguishing ID unless told otherwise, while certificates follow
//! GB/T 35276 with the default ID `1234567812345678` (as gmssl and BouncyCastle do). The path
//! is one step: the certificate must be issued by a trust anchor (SES carries no
//! intermediates); it is checked at the validation time (now), like PDF and XML.
//!
//! Bounded: at most [`MAX_OFD_BYTES`] in, [`MAX_ENTRIES`] zip entries of at most
//! [`MAX_ENTRY_BYTES`] each once inflated; never panics on input.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use der::{Decode, Encode};
use quick_xml::events::Event;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};

use crate::seal::asn1::SesSignature;
use crate::seal::{Seal, chrono_time};
use crate::sign::signer::{DigestAlgorithm, OID_SM2_WITH_SM3};
use crate::sign::sm2::verify_sm2;

use super::timestamp::{TimestampReport, check_token};
use super::{SignatureStatus, TimeSource, TrustAnchors, subject_label, tampered};

/// The largest OFD file verified.
pub const MAX_OFD_BYTES: usize = 64 << 20;
/// The most zip entries read.
pub const MAX_ENTRIES: usize = 4096;
/// The largest inflated zip entry read.
pub const MAX_ENTRY_BYTES: u64 = 32 << 20;

/// The verdict on one OFD, with what it says about its seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdVerification {
    pub status: SignatureStatus,
    /// The signer certificate's subject.
    pub signer: Option<String>,
    /// `TBS_Sign.timeInfo` (the signer's claim), or the time of a trusted timestamp.
    pub signing_time: Option<DateTime<Utc>>,
    /// Where `signing_time` comes from: the paths are checked at it only when it is a trusted
    /// timestamp's, else at the verifier's `now`.
    pub signing_time_source: Option<TimeSource>,
    /// `SES_Signature.timeStamp`: an RFC 3161 token over the signature value, when present.
    pub timestamp: Option<TimestampReport>,
    /// The seal's name and esID.
    pub seal_name: Option<String>,
    pub seal_id: Option<String>,
    /// Why, in words, when not authentic.
    pub detail: Option<String>,
}

impl OfdVerification {
    fn new(status: SignatureStatus) -> OfdVerification {
        OfdVerification {
            status,
            signer: None,
            signing_time: None,
            signing_time_source: None,
            timestamp: None,
            seal_name: None,
            seal_id: None,
            detail: None,
        }
    }

    fn not_signed(detail: impl Into<String>) -> OfdVerification {
        OfdVerification {
            detail: Some(detail.into()),
            ..OfdVerification::new(SignatureStatus::NotSigned)
        }
    }
}

/// Whether `bytes` look like a zip (an OFD package starts with a local file header).
pub fn looks_like_ofd(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Verifies the first seal of an OFD against `trust`, with certificate paths checked at `now`.
pub fn verify_ofd_at(bytes: &[u8], trust: &TrustAnchors, now: DateTime<Utc>) -> OfdVerification {
    let files = match read_package(bytes) {
        Ok(files) => files,
        Err(PackageError::NotOfd(why)) => return OfdVerification::not_signed(why),
        Err(PackageError::Broken(why)) => return OfdVerification::new(tampered(why)),
    };
    let Some(ofd_xml) = files.get("OFD.xml") else {
        return OfdVerification::not_signed("no OFD.xml");
    };
    let Some(signatures_loc) = element_text(ofd_xml, "Signatures") else {
        return OfdVerification::not_signed("OFD.xml lists no signatures");
    };
    let signatures_path = package_path(&signatures_loc, "");
    let Some(signatures_xml) = files.get(&signatures_path) else {
        return OfdVerification::new(tampered(format!("{signatures_path} is missing")));
    };
    let base = signatures_path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let Some(signature_loc) = first_attribute(signatures_xml, "Signature", "BaseLoc") else {
        return OfdVerification::not_signed("Signatures.xml lists no signature");
    };
    let signature_path = package_path(&signature_loc, base);
    let Some(signature_xml) = files.get(&signature_path) else {
        return OfdVerification::new(tampered(format!("{signature_path} is missing")));
    };
    let info = match SignedInfo::parse(signature_xml) {
        Ok(info) => info,
        Err(why) => return OfdVerification::new(tampered(format!("{signature_path}: {why}"))),
    };
    let mut v = OfdVerification::new(SignatureStatus::Authentic);
    match check(&files, &signature_path, signature_xml, &signatures_path, &info, &mut v) {
        Err(why) => {
            v.status = tampered(why);
            v
        }
        Ok((ses, seal)) => {
            // A trusted timestamp over the signature value is the time the paths and the
            // seal's validity are checked at; timeInfo is only the signer's claim.
            let mut at = now;
            if let Some(token) = ses.time_stamp.as_ref().and_then(|t| t.as_bytes()) {
                let signature = ses.signature.as_bytes().unwrap_or_default();
                match check_token(token, signature, trust.tsa(), now) {
                    Err(status) => {
                        v.status = status;
                        return v;
                    }
                    Ok(report) => {
                        if report.trusted {
                            at = report.time;
                            v.signing_time = Some(report.time);
                            v.signing_time_source = Some(TimeSource::Timestamp);
                        }
                        v.timestamp = Some(report);
                    }
                }
            }
            trust_checks(&ses, &seal, trust, at, &mut v);
            v
        }
    }
}

/// Everything the seal vouches for; returns the signature and the seal when it all holds.
fn check(
    files: &BTreeMap<String, Vec<u8>>,
    signature_path: &str,
    signature_xml: &[u8],
    signatures_path: &str,
    info: &SignedInfo,
    v: &mut OfdVerification,
) -> Result<(SesSignature, Seal), String> {
    let method = info.check_method.as_deref().unwrap_or("");
    if method != "1.2.156.10197.1.401" && !method.eq_ignore_ascii_case("SM3") {
        return Err(format!("CheckMethod {method:?} is not SM3"));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut covered = BTreeSet::new();
    for (file_ref, check_value) in &info.references {
        let path = package_path(file_ref, "");
        let Some(bytes) = files.get(&path) else {
            return Err(format!("referenced file {path} is missing"));
        };
        let expected = b64
            .decode(check_value.trim())
            .map_err(|_| format!("{path}: CheckValue is not base64"))?;
        if DigestAlgorithm::Sm3.digest(bytes) != expected {
            return Err(format!("{path} does not match its reference"));
        }
        covered.insert(path);
    }
    let signed_value_path = package_path(&info.signed_value, "");
    for path in files.keys() {
        let own = [signatures_path, signature_path, signed_value_path.as_str()];
        if !covered.contains(path) && !own.contains(&path.as_str()) {
            return Err(format!("{path} is in the package but not covered by the seal"));
        }
    }
    let Some(signed_value) = files.get(&signed_value_path) else {
        return Err(format!("{signed_value_path} is missing"));
    };
    let ses = SesSignature::from_der(signed_value)
        .map_err(|e| format!("{signed_value_path} is not an SES_Signature ({e})"))?;
    let tbs = &ses.to_sign;
    if tbs.version != 4 {
        return Err(format!("TBS_Sign version {}, expected 4", tbs.version));
    }
    if tbs.data_hash.as_bytes() != Some(&DigestAlgorithm::Sm3.digest(signature_xml)[..]) {
        return Err("dataHash is not the SM3 of Signature.xml".into());
    }
    let property = tbs.property_info.as_str();
    if package_path(property, "") != signature_path {
        return Err(format!("propertyInfo {property:?} does not name {signature_path}"));
    }
    let cert = Certificate::from_der(ses.cert.as_bytes())
        .map_err(|e| format!("signer certificate unreadable ({e})"))?;
    v.signer = Some(subject_label(&cert));
    v.signing_time = chrono_time(&tbs.time_info, "timeInfo").ok();
    v.signing_time_source = v.signing_time.map(|_| TimeSource::Claimed);
    if ses.signature_alg_id != OID_SM2_WITH_SM3 {
        return Err(format!("signature algorithm {} is not SM2 with SM3", ses.signature_alg_id));
    }
    let tbs_der = tbs.to_der().map_err(|e| e.to_string())?;
    let signature = ses.signature.as_bytes().unwrap_or_default();
    if !verify_sm2(ses.cert.as_bytes(), &tbs_der, signature) {
        return Err("the SM2 signature over TBS_Sign does not verify".into());
    }
    let seal = Seal::from_asn1(tbs.eseal.clone()).map_err(|e| format!("signed seal: {e}"))?;
    v.seal_name = Some(seal.name().to_string());
    v.seal_id = Some(seal.es_id().to_string());
    if let Some(loc) = &info.seal_loc {
        let path = package_path(loc, "");
        if files.get(&path).map(Vec::as_slice) != Some(seal.der()) {
            return Err(format!("{path} is not the seal that was signed"));
        }
    }
    if !seal.maker_signature_ok() {
        return Err("the seal maker's signature over the seal does not verify".into());
    }
    Ok((ses, seal))
}

/// Trust: signer and seal maker under a trusted SM2 root at `now`, the seal valid at the
/// signing time and naming the signer.
fn trust_checks(
    ses: &SesSignature,
    seal: &Seal,
    trust: &TrustAnchors,
    now: DateTime<Utc>,
    v: &mut OfdVerification,
) {
    let subject = v.signer.clone().unwrap_or_default();
    let mut untrusted = |why: String| {
        v.status = SignatureStatus::Untrusted { subject: subject.clone() };
        v.detail = Some(why);
    };
    if let Err(why) = sm2_path(ses.cert.as_bytes(), trust, now, true) {
        return untrusted(format!("signer: {why}"));
    }
    if let Err(why) = sm2_path(seal.maker_cert_der(), trust, now, false) {
        return untrusted(format!("seal maker: {why}"));
    }
    match v.signing_time {
        Some(at) if seal.is_valid_at(at) => {}
        Some(at) => {
            return untrusted(format!(
                "seal {} valid {} .. {}, not at the signing time {at}",
                seal.es_id(),
                seal.valid_from(),
                seal.valid_to()
            ));
        }
        None => return untrusted("no readable signing time".into()),
    }
    if !seal.names_signer(ses.cert.as_bytes()) {
        untrusted(format!("seal {} does not name the signer in its certList", seal.es_id()));
    }
}

/// A one-step SM2 path: `cert_der` issued by a trust anchor (name match and SM2 signature with
/// the default ID over its TBSCertificate), both valid at `at`; a document signer must not be
/// a CA and must allow digitalSignature or nonRepudiation.
fn sm2_path(
    cert_der: &[u8],
    trust: &TrustAnchors,
    at: DateTime<Utc>,
    signer: bool,
) -> Result<(), String> {
    let cert =
        Certificate::from_der(cert_der).map_err(|e| format!("unreadable certificate ({e})"))?;
    let tbs = cert.tbs_certificate();
    if signer {
        let ca = tbs.get_extension::<BasicConstraints>().map_err(|e| e.to_string())?;
        if ca.is_some_and(|(_, bc)| bc.ca) {
            return Err(format!("{} is a CA certificate", subject_label(&cert)));
        }
        let usage = tbs.get_extension::<KeyUsage>().map_err(|e| e.to_string())?;
        let signs = usage.is_some_and(|(_, KeyUsage(flags))| {
            flags.contains(KeyUsages::DigitalSignature) || flags.contains(KeyUsages::NonRepudiation)
        });
        if !signs {
            return Err(format!("{} may not sign documents", subject_label(&cert)));
        }
    }
    let valid = |c: &Certificate| {
        let validity = c.tbs_certificate().validity();
        let from = validity.not_before.to_unix_duration().as_secs();
        let to = validity.not_after.to_unix_duration().as_secs();
        let t = u64::try_from(at.timestamp()).unwrap_or(0);
        from <= t && t <= to
    };
    if !valid(&cert) {
        return Err(format!("{} is not valid at {at}", subject_label(&cert)));
    }
    let tbs_der = tbs.to_der().map_err(|e| e.to_string())?;
    let signature = cert.signature().as_bytes().unwrap_or_default();
    for (anchor, anchor_der) in &trust.anchors {
        if anchor.tbs_certificate().subject() != tbs.issuer()
            || cert.signature_algorithm().oid != OID_SM2_WITH_SM3
        {
            continue;
        }
        if verify_sm2(anchor_der, &tbs_der, signature) && valid(anchor) {
            return Ok(());
        }
    }
    Err(format!("{} is not issued by a trusted SM2 root", subject_label(&cert)))
}

enum PackageError {
    /// Not a zip at all: not an OFD.
    NotOfd(String),
    /// A zip we refuse to read (over the bounds, duplicate names, unreadable entry).
    Broken(String),
}

/// The files of the package by path (directories left out), bounded.
fn read_package(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    if bytes.len() > MAX_OFD_BYTES {
        return Err(PackageError::NotOfd(format!("larger than {MAX_OFD_BYTES} bytes")));
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| PackageError::NotOfd(format!("not an OFD package ({e})")))?;
    if zip.len() > MAX_ENTRIES {
        return Err(PackageError::Broken(format!("more than {MAX_ENTRIES} entries")));
    }
    let mut files = BTreeMap::new();
    for i in 0..zip.len() {
        let broken =
            |e: &dyn std::fmt::Display| PackageError::Broken(format!("zip entry {i}: {e}"));
        let entry = zip.by_index(i).map_err(|e| broken(&e))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(|e| broken(&e))?.into_owned();
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(broken(&format!("{name} inflates beyond {MAX_ENTRY_BYTES} bytes")));
        }
        let mut data = Vec::new();
        entry.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut data).map_err(|e| broken(&e))?;
        if data.len() as u64 > MAX_ENTRY_BYTES {
            return Err(broken(&format!("{name} inflates beyond {MAX_ENTRY_BYTES} bytes")));
        }
        if files.insert(name.trim_start_matches('/').to_string(), data).is_some() {
            return Err(broken(&format!("{name} appears twice")));
        }
    }
    Ok(files)
}

/// A package path from an OFD location: absolute (`/Doc_0/…`) or relative to `base`.
fn package_path(loc: &str, base: &str) -> String {
    let loc = loc.trim();
    match loc.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None if base.is_empty() => loc.to_string(),
        None => format!("{base}/{loc}"),
    }
}

/// The text of the first element with local name `name`.
fn element_text(xml: &[u8], name: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut inside = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) if e.local_name().as_ref() == name => inside = true,
            Event::Text(t) if inside => return Some(t.xml10_content().into_owned()),
            Event::End(_) if inside => return Some(String::new()),
            Event::Eof => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// The value of attribute `attr` on the first element with local name `name`.
fn first_attribute(xml: &[u8], name: &str, attr: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == name => {
                return attribute(&e, attr);
            }
            Event::Eof => return None,
            _ => {}
        }
        buf.clear();
    }
}

fn attribute(e: &quick_xml::events::BytesStart<'_>, attr: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == attr)
        .map(|a| a.value.into_owned())
}

/// What `Signature.xml` says: the references, the seal's and the signed value's locations.
#[derive(Debug, Default)]
struct SignedInfo {
    check_method: Option<String>,
    references: Vec<(String, String)>,
    seal_loc: Option<String>,
    signed_value: String,
}

impl SignedInfo {
    fn parse(xml: &[u8]) -> Result<SignedInfo, String> {
        let mut reader = quick_xml::Reader::from_reader(xml);
        let mut info = SignedInfo::default();
        let mut stack: Vec<String> = Vec::new();
        let mut file_ref: Option<String> = None;
        let mut buf = Vec::new();
        loop {
            let event = reader.read_event_into(&mut buf).map_err(|e| format!("not XML ({e})"))?;
            match event {
                Event::Start(e) => {
                    let name = e.local_name().as_ref().to_string();
                    match name.as_str() {
                        "References" => info.check_method = attribute(&e, "CheckMethod"),
                        "Reference" => file_ref = attribute(&e, "FileRef"),
                        _ => {}
                    }
                    stack.push(name);
                    if stack.len() > 32 {
                        return Err("nested too deep".into());
                    }
                }
                Event::Empty(e) if e.local_name().as_ref() == "References" => {
                    info.check_method = attribute(&e, "CheckMethod");
                }
                Event::Text(t) => {
                    let text = t.xml10_content().into_owned();
                    let parent = stack.iter().rev().nth(1).map(String::as_str);
                    match (stack.last().map(String::as_str), parent) {
                        (Some("CheckValue"), Some("Reference")) => {
                            let path = file_ref.take().ok_or("CheckValue without FileRef")?;
                            info.references.push((path, text));
                        }
                        (Some("BaseLoc"), Some("Seal")) => info.seal_loc = Some(text),
                        (Some("SignedValue"), _) => info.signed_value = text,
                        _ => {}
                    }
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
            if info.references.len() > MAX_ENTRIES {
                return Err("too many references".into());
            }
        }
        if info.references.is_empty() {
            return Err("no references".into());
        }
        if info.signed_value.trim().is_empty() {
            return Err("no SignedValue".into());
        }
        Ok(info)
    }
}
