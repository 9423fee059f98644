//! Signing: turns rendered licence bytes into signed e-licences.
//!
//! The law makes the signed data the licence (电子证照), so everything here is written to
//! be accepted by verifiers we did not write (poppler `pdfsig`, pyHanko, `xmlsec1`).
//!
//! - [`signer`] is the narrow seam: the [`Signer`] trait (sign a message, name the algorithm,
//!   hand out the public chain) and the [`SignatureAlgorithm`] that tells the formats which
//!   digest, OIDs and URIs to write. Renderers never see the key.
//! - [`rsa`](self::rsa) implements it for RSA keys ([`RsaSigner`], with the OpenSSL, ring and
//!   pure-Rust backends); [`sm2`](self::sm2) implements it for SM2 keys ([`Sm2Signer`], SM3
//!   hashes, the OFD seal signatures); [`key_files`] reads a key directory (passphrase,
//!   PKCS#8, chain).
//! - [`keys`] writes a development CA and signer key set (`elicence keys init`), every
//!   certificate marked with the development policy; [`production`] refuses such keys (and a
//!   missing `--keys`) when the registry is production.
//! - [`pades`] signs a PDF as PAdES baseline B-B (ETSI EN 319 142-1) in an incremental update,
//!   with the CMS `SignedData` built by [`signed_data`]; [`ltv`] appends the PAdES B-LT
//!   (`/DSS`) and B-LTA (document timestamp) updates, with the certificates and CRLs
//!   [`validation_data`] gathers.
//! - [`xmldsig`] adds an enveloped XML-DSig signature to a document that the renderer already
//!   wrote in exclusive-canonical form.
//!
//! The formats take `&dyn Signer`: a new key type is a new implementation, not a change to them.

pub mod crl;
pub mod key_files;
pub mod keys;
pub mod ltv;
pub mod pades;
pub mod production;
pub mod rsa;
pub mod signed_data;
pub mod signer;
pub mod sm2;
pub mod validation_data;
pub mod xmldsig;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

pub use self::rsa::{RsaBackend, RsaSigner};
pub use self::sm2::{SM2_DEFAULT_DIST_ID, Sm2Signer};
pub use key_files::{PASSPHRASE_ENV, Passphrase, passphrase_from_env_or_file};
pub use keys::{DevKeyOptions, DevKeyPaths, init_dev_keys};
pub use pades::{PdfSignOptions, sign_pdf, sign_rendered_pdf};
pub use production::{ProductionKeyError, check_production_key};
pub use signer::{DigestAlgorithm, SignatureAlgorithm, Signer};
pub use xmldsig::{canonical_attr_escape, canonical_text_escape, check_canonical, sign_xml};

/// Why a key set could not be loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key or certificate file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// A key or certificate file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// `keys init` found keys already there and `force` was not given.
    #[error("{path}: already exists (use --force to overwrite)")]
    AlreadyExists { path: PathBuf },
    /// The file is not a PKCS#8 PEM private key.
    #[error("{path}: not a PKCS#8 PEM private key ({detail})")]
    BadPrivateKey { path: PathBuf, detail: String },
    /// The key is encrypted and no passphrase was given.
    #[error("{path}: key is encrypted; set {env} or give a passphrase file", env = key_files::PASSPHRASE_ENV)]
    PassphraseRequired { path: PathBuf },
    /// The passphrase did not decrypt the key.
    #[error("{path}: cannot decrypt the key (wrong passphrase?)")]
    Decrypt { path: PathBuf },
    /// The passphrase file is empty.
    #[error("{path}: passphrase file is empty")]
    EmptyPassphrase { path: PathBuf },
    /// The key is not an RSA key of a size we sign with (2048–8192 bits).
    #[error("{path}: unsupported key ({detail})")]
    UnsupportedKey { path: PathBuf, detail: String },
    /// The certificate file holds no parsable certificate.
    #[error("{path}: bad certificate chain ({detail})")]
    BadCertificate { path: PathBuf, detail: String },
    /// The private key does not belong to the first certificate of the chain.
    #[error("{key} does not match the certificate in {cert}")]
    KeyCertMismatch { key: PathBuf, cert: PathBuf },
    /// The signer certificate is not valid at the signing time.
    #[error("signer certificate valid {not_before} .. {not_after}, not at {at}")]
    CertNotValidAt { not_before: DateTime<Utc>, not_after: DateTime<Utc>, at: DateTime<Utc> },
    /// Key or certificate generation failed.
    #[error("cannot generate {what}: {detail}")]
    Generate { what: &'static str, detail: String },
}

/// Why a document could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The RSA backend refused to sign.
    #[error("RSA signing failed ({backend:?})")]
    Rsa { backend: RsaBackend },
    /// The SM2 signer refused to sign.
    #[error("SM2 signing failed")]
    Sm2,
    /// The input PDF could not be parsed.
    #[error("input PDF cannot be parsed: {detail}")]
    PdfParse { detail: String },
    /// The input PDF lacks a structure we need (catalog, first page).
    #[error("input PDF has no {what}")]
    PdfStructure { what: &'static str },
    /// Writing the incremental update failed.
    #[error("cannot write the PDF incremental update: {detail}")]
    PdfWrite { detail: String },
    /// The CMS signature does not fit the `/Contents` placeholder.
    #[error("CMS signature needs {needed} bytes, placeholder holds {available}")]
    PlaceholderTooSmall { needed: usize, available: usize },
    /// The CMS structure could not be encoded.
    #[error("cannot encode CMS SignedData: {detail}")]
    Cms { detail: String },
    /// No timestamp could be obtained for the signature (B-T was asked for).
    #[error("timestamp: {0}")]
    Timestamp(#[from] crate::timestamp::TsaError),
    /// The XML document given to `sign_xml` is not in exclusive-canonical form.
    #[error("XML is not canonical at byte {offset}: {problem}")]
    NotCanonical { offset: usize, problem: xmldsig::CanonicalProblem },
}
