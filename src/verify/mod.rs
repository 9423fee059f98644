//! Verification of signed e-licences: is this PDF or XML what the holder of a trusted key
//! signed, unchanged?
//!
//! [`verify_pdf`] checks PAdES signatures written by [`crate::sign::pades`], [`verify_xml`]
//! enveloped XML-DSig signatures written by [`crate::sign::xmldsig`], [`verify_ofd_at`] the SES
//! seal of an OFD ([`ofd`]). Both report a
//! [`SignatureStatus`] and never panic on malformed input. Certificates are chained to
//! [`TrustAnchors`] loaded from PEM files by OpenSSL ([`path`], RFC 5280 §6) at the
//! validation time: now or a trusted timestamp's, never the time the signer claims; with the
//! CRLs the verifier gives and, for a PDF, those of its `/DSS` ([`dss`]; how each counts:
//! [`path`]).

pub mod cms;
pub mod dss;
pub mod ofd;
pub mod path;
pub mod pdf;
mod pdf_update;
pub mod presented;
pub mod timestamp;
pub mod xml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use der::Encode;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

pub use cms::{CmsFindings, verify_detached};
pub use ofd::{OfdVerification, verify_ofd_at};
pub use path::{PathCheck, PathError, RevocationCheck, RevocationSource, validate_signer};
pub use pdf::{PdfVerification, verify_pdf, verify_pdf_at};
pub use timestamp::{TimestampReport, check_token};
pub use xml::{XmlVerification, verify_xml, verify_xml_at};

use crate::sign::key_files::common_name;

/// The verdict on one signed file.
///
/// Serialised internally tagged, e.g. `{"status":"tampered","reason":"…"}`,
/// `{"status":"not-signed"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// The signature verifies, covers the whole document and chains to a trust anchor.
    Authentic,
    /// The signature does not match the document, or the signature structure is broken.
    Tampered { reason: String },
    /// The signature is intact but its certificate does not chain to a trust anchor (or is
    /// not valid at the signing time).
    Untrusted { subject: String },
    /// No signature was found.
    NotSigned,
}

impl SignatureStatus {
    /// `authentic`, `tampered`, `untrusted` or `not-signed`.
    pub fn label(&self) -> &'static str {
        match self {
            SignatureStatus::Authentic => "authentic",
            SignatureStatus::Tampered { .. } => "tampered",
            SignatureStatus::Untrusted { .. } => "untrusted",
            SignatureStatus::NotSigned => "not-signed",
        }
    }

    /// Whether the status is [`SignatureStatus::Authentic`].
    pub fn is_authentic(&self) -> bool {
        matches!(self, SignatureStatus::Authentic)
    }
}

/// Shorthand for [`SignatureStatus::Tampered`].
pub(crate) fn tampered(reason: impl Into<String>) -> SignatureStatus {
    SignatureStatus::Tampered { reason: reason.into() }
}

/// Why trust anchors could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The PEM file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The PEM file holds no parsable certificate.
    #[error("{path}: not a PEM certificate file ({detail})")]
    BadPem { path: PathBuf, detail: String },
    /// The file is not a CRL (DER or PEM).
    #[error("{path}: not a certificate revocation list ({detail})")]
    BadCrl { path: PathBuf, detail: String },
}

/// Certificates trusted as chain ends (typically the issuing authority's CA), and apart from
/// them the roots trusted for time-stamping authorities (a signer's CA does not vouch for a
/// TSA, nor a TSA's root for a signer).
///
/// With certificate revocation lists ([`TrustAnchors::with_crls`]) every certificate of every
/// path (signer, intermediates, TSA) must be covered by a current CRL of its issuer that does
/// not list it: a strict profile, in which a missing CRL is a reason not to trust.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    anchors: Vec<(Certificate, Vec<u8>)>,
    tsa: Option<Arc<TrustAnchors>>,
    crls: Vec<CrlFile>,
    /// The `/DSS` of the PDF being verified ([`TrustAnchors::with_dss`]): its certificates are
    /// untrusted intermediates, its CRLs count as [`path`] says.
    dss: Option<Arc<dss::Dss>>,
    /// Why that PDF's DSS was not read, when it was not.
    dss_note: Option<String>,
}

/// A CRL file, checked readable when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFile {
    pub path: PathBuf,
    /// PEM (`-----BEGIN X509 CRL-----`) rather than DER.
    pub pem: bool,
}

impl TrustAnchors {
    /// Loads every certificate of every PEM file. Fails on an unreadable file or one
    /// without a certificate.
    pub fn from_pem_files(paths: &[PathBuf]) -> Result<TrustAnchors, TrustError> {
        let mut certificates = Vec::new();
        for path in paths {
            certificates.extend(read_pem_certificates(path)?);
        }
        Ok(TrustAnchors::from_certificates(certificates))
    }

    /// Trusts these certificates.
    pub fn from_certificates(certificates: Vec<Certificate>) -> TrustAnchors {
        let anchors =
            certificates.into_iter().filter_map(|c| c.to_der().ok().map(|der| (c, der))).collect();
        TrustAnchors { anchors, tsa: None, crls: Vec::new(), dss: None, dss_note: None }
    }

    /// Also trusts timestamps from TSAs under `tsa` (an empty set trusts none).
    pub fn with_tsa(mut self, tsa: TrustAnchors) -> TrustAnchors {
        let crls = self.crls.clone();
        self.tsa = (!tsa.is_empty()).then(|| Arc::new(TrustAnchors { tsa: None, crls, ..tsa }));
        self
    }

    /// Checks revocation against these CRL files (DER or PEM), for signers and TSAs alike.
    /// Fails on a file that is not a CRL.
    pub fn with_crls(mut self, paths: &[PathBuf]) -> Result<TrustAnchors, TrustError> {
        for path in paths {
            let bytes = std::fs::read(path)
                .map_err(|source| TrustError::Read { path: path.clone(), source })?;
            let pem = bytes.starts_with(b"-----BEGIN");
            let parsed = if pem {
                openssl::x509::X509Crl::from_pem(&bytes)
            } else {
                openssl::x509::X509Crl::from_der(&bytes)
            };
            parsed.map_err(|e| TrustError::BadCrl { path: path.clone(), detail: e.to_string() })?;
            self.crls.push(CrlFile { path: path.clone(), pem });
        }
        if let Some(tsa) = self.tsa.take() {
            let tsa = TrustAnchors { crls: self.crls.clone(), ..(*tsa).clone() };
            self.tsa = Some(Arc::new(tsa));
        }
        Ok(self)
    }

    /// These anchors, with what a PDF's document security store holds (for the paths of that
    /// PDF's signatures and timestamps), or the reason it could not be read.
    pub(crate) fn with_dss(&self, dss: Result<Option<dss::Dss>, dss::DssError>) -> TrustAnchors {
        let (dss, note) = match dss {
            Ok(dss) => (dss.map(Arc::new), None),
            Err(e) => (None, Some(format!("the /DSS cannot be read ({e}): its CRLs are not used"))),
        };
        let mut with = TrustAnchors { dss: dss.clone(), dss_note: note.clone(), ..self.clone() };
        if let Some(tsa) = self.tsa.as_deref() {
            with.tsa = Some(Arc::new(TrustAnchors { dss, dss_note: note, ..tsa.clone() }));
        }
        with
    }

    /// The anchors trusted for time-stamping authorities, if any.
    pub fn tsa(&self) -> Option<&TrustAnchors> {
        self.tsa.as_deref()
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are no anchors (every signature is then untrusted).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

fn read_pem_certificates(path: &Path) -> Result<Vec<Certificate>, TrustError> {
    let bytes = std::fs::read(path)
        .map_err(|source| TrustError::Read { path: path.to_path_buf(), source })?;
    let certificates = Certificate::load_pem_chain(&bytes)
        .map_err(|e| TrustError::BadPem { path: path.to_path_buf(), detail: e.to_string() })?;
    if certificates.is_empty() {
        return Err(TrustError::BadPem { path: path.to_path_buf(), detail: "empty".into() });
    }
    Ok(certificates)
}

/// A readable subject: the common name, else the whole distinguished name.
pub(crate) fn subject_label(cert: &Certificate) -> String {
    let subject = cert.tbs_certificate().subject();
    common_name(subject).unwrap_or_else(|| subject.to_string())
}

/// Verifies a signature with the key of `cert`: RSA PKCS#1 v1.5 (RFC 8017 §8.2.2) for
/// sha256/384/512WithRSAEncryption or rsaEncryption (which means SHA-256 here), ECDSA
/// (RFC 5758 §3.2, DER signature) for ecdsa-with-SHA256/384 on P-256 or P-384 — time-stamping
/// authorities sign tokens with either. The signature algorithm must fit the key's.
pub(crate) fn verify_signature(
    cert: &Certificate,
    algorithm: &der::oid::ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use ring::signature as rs;
    const RSA_KEY: &str = "1.2.840.113549.1.1.1";
    const EC_KEY: &str = "1.2.840.10045.2.1";
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    let spki = cert.tbs_certificate().subject_public_key_info();
    let key = spki.algorithm.oid.to_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<der::oid::ObjectIdentifier>().ok())
        .map(|oid| oid.to_string());
    let params: &dyn rs::VerificationAlgorithm =
        match (algorithm.to_string().as_str(), key.as_str(), curve.as_deref()) {
            ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.11", RSA_KEY, _) => {
                &rs::RSA_PKCS1_2048_8192_SHA256
            }
            ("1.2.840.113549.1.1.12", RSA_KEY, _) => &rs::RSA_PKCS1_2048_8192_SHA384,
            ("1.2.840.113549.1.1.13", RSA_KEY, _) => &rs::RSA_PKCS1_2048_8192_SHA512,
            ("1.2.840.10045.4.3.2", EC_KEY, Some(P256)) => &rs::ECDSA_P256_SHA256_ASN1,
            ("1.2.840.10045.4.3.3", EC_KEY, Some(P256)) => &rs::ECDSA_P256_SHA384_ASN1,
            ("1.2.840.10045.4.3.2", EC_KEY, Some(P384)) => &rs::ECDSA_P384_SHA256_ASN1,
            ("1.2.840.10045.4.3.3", EC_KEY, Some(P384)) => &rs::ECDSA_P384_SHA384_ASN1,
            (
                "1.2.840.113549.1.1.1"
                | "1.2.840.113549.1.1.11"
                | "1.2.840.113549.1.1.12"
                | "1.2.840.113549.1.1.13",
                _,
                _,
            ) => return Err(format!("certificate key algorithm {key} is not RSA")),
            ("1.2.840.10045.4.3.2" | "1.2.840.10045.4.3.3", _, _) => {
                return Err(format!(
                    "certificate key {key} (curve {}) is not ECDSA P-256 or P-384",
                    curve.as_deref().unwrap_or("none")
                ));
            }
            (other, _, _) => return Err(format!("unsupported signature algorithm {other}")),
        };
    rs::UnparsedPublicKey::new(params, spki.subject_public_key.raw_bytes())
        .verify(message, signature)
        .map_err(|_| "signature does not verify".to_owned())
}

/// Where a reported signing time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSource {
    /// A trusted RFC 3161 timestamp: the certificate path was validated at this time.
    Timestamp,
    /// Only the signer's own claim (`/M`): reported, never used for validation.
    Claimed,
}
