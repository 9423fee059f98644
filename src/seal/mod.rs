//! Electronic seals (电子印章, GB/T 38540-2020 "SES V4"): the seal an issuing authority signs
//! its OFD e-licences with. A seal is made once per authority by a seal maker (制章者), who
//! signs its description — name, validity, picture and the list of signer certificates allowed
//! to use it (`certList`); each OFD is then sealed (签章) by one of those signers
//! (`sign::ofd_seal`).
//!
//! This module owns the DER structures ([`asn1`]), making a seal ([`Seal::make`]), reading one
//! ([`Seal::from_der`]: bounded, strict DER, never panics on input, typed [`SealError`]) and
//! the facts a verifier asks of it (maker signature, validity, whether it names a signer).
//! Seal files live in a key directory as `seals/<USCC>.esl` ([`seal_path`]).

pub mod asn1;
pub mod ofd;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString};
use der::{Decode, Encode};
use x509_cert::Certificate;

use crate::sign::signer::{DigestAlgorithm, OID_SM2_WITH_SM3};
use crate::sign::{SignError, Signer};

use self::asn1::{
    CertDigestObj, SeSeal, SesEsPictureInfo, SesEsPropertyInfo, SesHeader, SesSealInfo,
};

/// The largest seal file read (a seal is a picture plus a few certificates).
pub const MAX_SEAL_BYTES: usize = 4 << 20;
/// `SES_Header.ID` of every seal.
pub const HEADER_ID: &str = "ES";
/// `SES_Header.version` of GB/T 38540-2020 seals.
pub const SES_VERSION: u32 = 4;
/// `SES_Header.Vid` (vendor identifier) of seals made here.
pub const VENDOR_ID: &str = "elicence";
/// `certListType` 1: `certList` holds the signer certificates (DER, OCTET STRINGs).
pub const CERT_LIST_CERTIFICATES: u32 = 1;
/// `certListType` 2: `certList` holds digests of the signer certificates.
pub const CERT_LIST_DIGESTS: u32 = 2;
/// The seal type written by `seal make`: GB/T 38540 leaves the codes to the issuing system;
/// elicence writes 1 and reads any value.
pub const SEAL_TYPE_OFFICIAL: u32 = 1;
/// The seal directory inside a key directory.
pub const SEALS_DIR: &str = "seals";
/// The extension of seal files.
pub const SEAL_EXTENSION: &str = "esl";

/// Why a seal could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A seal file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A problem inside a named seal file.
    #[error("{path}: {source}")]
    InFile { path: PathBuf, source: Box<SealError> },
    /// The seal is larger than [`MAX_SEAL_BYTES`].
    #[error("seal is {size} bytes, more than the {max} read")]
    TooLarge { size: usize, max: usize },
    /// The bytes are not a DER `SESeal` (position in bytes when known).
    #[error("not a DER SESeal ({kind} at byte {at:?})")]
    Der { kind: String, at: Option<u32> },
    /// The header is not `ES` version 4.
    #[error("seal header {id:?} version {version}, expected \"ES\" version 4")]
    UnsupportedHeader { id: String, version: u32 },
    /// `certListType` is neither 1 nor 2.
    #[error("certListType {found}, expected 1 (certificates) or 2 (digests)")]
    UnsupportedCertListType { found: u32 },
    /// A time field is outside what can be represented.
    #[error("seal {field} is not a representable time")]
    BadTime { field: &'static str },
    /// A field given to [`Seal::make`] is unusable.
    #[error("seal {field}: {problem}")]
    BadSpec { field: &'static str, problem: SpecProblem },
    /// The seal maker could not sign.
    #[error("seal maker cannot sign: {0}")]
    Sign(#[from] SignError),
}

/// What is wrong with a field given to [`Seal::make`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecProblem {
    #[error("is empty")]
    Empty,
    #[error("has a character outside ASCII")]
    NotAscii,
    #[error("validity ends at or before it starts")]
    EmptyValidity,
    #[error("is not a PNG image")]
    NotPng,
    #[error("the seal maker is not an SM2 signer")]
    MakerNotSm2,
    #[error("a certificate is not DER X.509")]
    BadCertificate,
}

impl From<der::Error> for SealError {
    fn from(e: der::Error) -> SealError {
        SealError::Der { kind: e.kind().to_string(), at: e.position().map(u32::from) }
    }
}

/// What a new seal says: everything of `SES_SealInfo` but the header.
#[derive(Debug, Clone)]
pub struct SealSpec {
    /// `esID`, the seal's unique identifier (ASCII).
    pub es_id: String,
    /// The seal's name: the issuing authority's name.
    pub name: String,
    /// DER certificates of the signers allowed to use the seal (`certList`, type 1).
    pub signer_certs: Vec<Vec<u8>>,
    /// `createDate`.
    pub created: DateTime<Utc>,
    /// `validStart`.
    pub valid_from: DateTime<Utc>,
    /// `validEnd`.
    pub valid_to: DateTime<Utc>,
    /// The seal picture, PNG.
    pub picture_png: Vec<u8>,
    /// Picture size on the page in mm (width, height).
    pub picture_mm: (u32, u32),
}

/// The signer certificates a seal allows (`certList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertList {
    /// `certListType` 1: the DER certificates.
    Certificates(Vec<Vec<u8>>),
    /// `certListType` 2: (digest algorithm name, digest) pairs.
    Digests(Vec<(String, Vec<u8>)>),
}

/// The picture of a seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPicture<'a> {
    /// `type`, e.g. `PNG`.
    pub format: &'a str,
    /// The image bytes.
    pub data: &'a [u8],
    /// Width on the page, mm.
    pub width_mm: u32,
    /// Height on the page, mm.
    pub height_mm: u32,
}

/// A parsed electronic seal with its exact DER bytes (what OFD packages embed as `Seal.esl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    der: Vec<u8>,
    seal: SeSeal,
    /// SM3 of `der`: every OFD sealed with this seal references `Seal.esl` by it.
    sm3: Vec<u8>,
}

impl Seal {
    /// Makes a seal: the `SES_SealInfo` of `spec`, signed over its DER by `maker` (SM2 with
    /// SM3), with the maker's certificate. Fails with [`SealError::BadSpec`] when a field is
    /// unusable (empty name or esID, validity ending before it starts, picture not PNG, maker
    /// not SM2) and with [`SealError::Sign`] when the maker cannot sign.
    pub fn make(maker: &dyn Signer, spec: &SealSpec) -> Result<Seal, SealError> {
        let bad = |field, problem| SealError::BadSpec { field, problem };
        if spec.es_id.is_empty() {
            return Err(bad("esID", SpecProblem::Empty));
        }
        if spec.name.trim().is_empty() {
            return Err(bad("name", SpecProblem::Empty));
        }
        if spec.valid_to <= spec.valid_from {
            return Err(bad("validity", SpecProblem::EmptyValidity));
        }
        if !spec.picture_png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(bad("picture", SpecProblem::NotPng));
        }
        if maker.algorithm().oid() != OID_SM2_WITH_SM3 {
            return Err(bad("maker", SpecProblem::MakerNotSm2));
        }
        if spec.signer_certs.iter().any(|c| Certificate::from_der(c).is_err()) {
            return Err(bad("certList", SpecProblem::BadCertificate));
        }
        let ascii =
            |field, text: &str| Ia5String::new(text).map_err(|_| bad(field, SpecProblem::NotAscii));
        let certs = spec
            .signer_certs
            .iter()
            .map(|c| OctetString::new(c.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let info = SesSealInfo {
            header: SesHeader {
                id: ascii("header", HEADER_ID)?,
                version: SES_VERSION,
                vid: ascii("header", VENDOR_ID)?,
            },
            es_id: ascii("esID", &spec.es_id)?,
            property: SesEsPropertyInfo {
                seal_type: SEAL_TYPE_OFFICIAL,
                name: spec.name.clone(),
                cert_list_type: CERT_LIST_CERTIFICATES,
                cert_list: der::asn1::Any::encode_from(&certs)?,
                create_date: generalized_time(spec.created, "createDate")?,
                valid_start: generalized_time(spec.valid_from, "validStart")?,
                valid_end: generalized_time(spec.valid_to, "validEnd")?,
            },
            picture: SesEsPictureInfo {
                picture_type: ascii("picture", "PNG")?,
                data: OctetString::new(spec.picture_png.clone())?,
                width: spec.picture_mm.0,
                height: spec.picture_mm.1,
            },
            ext_datas: None,
        };
        let signed_value = maker.sign(&info.to_der()?)?;
        let seal = SeSeal {
            e_seal_info: info,
            cert: OctetString::new(maker.certificate_der().to_vec())?,
            sign_alg_id: OID_SM2_WITH_SM3,
            signed_value: BitString::from_bytes(&signed_value)?,
        };
        let der = seal.to_der()?;
        Ok(Seal::with_der(der, seal))
    }

    /// Reads a seal from DER. Fails with [`SealError::TooLarge`] beyond [`MAX_SEAL_BYTES`],
    /// [`SealError::Der`] when the bytes are not exactly one strict-DER `SESeal`,
    /// [`SealError::UnsupportedHeader`] unless the header is `ES` version 4, and
    /// [`SealError::UnsupportedCertListType`] / [`SealError::BadTime`] for those fields.
    pub fn from_der(bytes: &[u8]) -> Result<Seal, SealError> {
        if bytes.len() > MAX_SEAL_BYTES {
            return Err(SealError::TooLarge { size: bytes.len(), max: MAX_SEAL_BYTES });
        }
        let seal = SeSeal::from_der(bytes)?;
        Seal::check(seal, bytes.to_vec())
    }

    /// Wraps an already decoded `SESeal` (e.g. `TBS_Sign.eseal`), checked as by
    /// [`Seal::from_der`].
    pub fn from_asn1(seal: SeSeal) -> Result<Seal, SealError> {
        let der = seal.to_der()?;
        Seal::check(seal, der)
    }

    fn check(seal: SeSeal, der: Vec<u8>) -> Result<Seal, SealError> {
        let header = &seal.e_seal_info.header;
        if header.id.as_str() != HEADER_ID || header.version != SES_VERSION {
            return Err(SealError::UnsupportedHeader {
                id: header.id.to_string(),
                version: header.version,
            });
        }
        let seal = Seal::with_der(der, seal);
        seal.cert_list()?;
        for field in ["createDate", "validStart", "validEnd"] {
            let time = match field {
                "createDate" => &seal.property().create_date,
                "validStart" => &seal.property().valid_start,
                _ => &seal.property().valid_end,
            };
            chrono_time(time, field)?;
        }
        Ok(seal)
    }

    /// Reads a seal file (see [`Seal::from_der`]); errors name the file.
    pub fn read(path: &Path) -> Result<Seal, SealError> {
        let in_file =
            |source| SealError::InFile { path: path.to_path_buf(), source: Box::new(source) };
        let io = |source| SealError::Io { path: path.to_path_buf(), source };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_SEAL_BYTES as u64 {
            return Err(in_file(SealError::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                max: MAX_SEAL_BYTES,
            }));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Seal::from_der(&bytes).map_err(in_file)
    }

    /// Writes the seal's DER to `path`.
    pub fn write(&self, path: &Path) -> Result<(), SealError> {
        let io = |source| SealError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, &self.der).map_err(io)
    }

    /// The seal's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SM3 of [`Seal::der`], computed once.
    pub fn der_sm3(&self) -> &[u8] {
        &self.sm3
    }

    fn with_der(der: Vec<u8>, seal: SeSeal) -> Seal {
        let sm3 = crate::sign::signer::DigestAlgorithm::Sm3.digest(&der);
        Seal { der, seal, sm3 }
    }

    /// The DER structure.
    pub fn asn1(&self) -> &SeSeal {
        &self.seal
    }

    fn property(&self) -> &SesEsPropertyInfo {
        &self.seal.e_seal_info.property
    }

    /// `SES_Header.Vid`: who made the seal's software.
    pub fn vendor(&self) -> &str {
        self.seal.e_seal_info.header.vid.as_str()
    }

    /// `esID`.
    pub fn es_id(&self) -> &str {
        self.seal.e_seal_info.es_id.as_str()
    }

    /// The seal's name (the authority's name).
    pub fn name(&self) -> &str {
        &self.property().name
    }

    /// The seal type code.
    pub fn seal_type(&self) -> u32 {
        self.property().seal_type
    }

    /// `createDate`.
    pub fn created(&self) -> DateTime<Utc> {
        // `check` read every time field, so these conversions succeed.
        chrono_time(&self.property().create_date, "createDate").unwrap_or_default()
    }

    /// `validStart`.
    pub fn valid_from(&self) -> DateTime<Utc> {
        chrono_time(&self.property().valid_start, "validStart").unwrap_or_default()
    }

    /// `validEnd`.
    pub fn valid_to(&self) -> DateTime<Utc> {
        chrono_time(&self.property().valid_end, "validEnd").unwrap_or_default()
    }

    /// Whether `at` lies within `validStart ..= validEnd`.
    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from() <= at && at <= self.valid_to()
    }

    /// The seal picture.
    pub fn picture(&self) -> SealPicture<'_> {
        let p = &self.seal.e_seal_info.picture;
        SealPicture {
            format: p.picture_type.as_str(),
            data: p.data.as_bytes(),
            width_mm: p.width,
            height_mm: p.height,
        }
    }

    /// The signer certificates the seal allows. Fails with
    /// [`SealError::UnsupportedCertListType`] or [`SealError::Der`].
    pub fn cert_list(&self) -> Result<CertList, SealError> {
        let property = self.property();
        match property.cert_list_type {
            CERT_LIST_CERTIFICATES => {
                let certs: Vec<OctetString> = property.cert_list.decode_as()?;
                Ok(CertList::Certificates(
                    certs.into_iter().map(|c| c.into_bytes().into_vec()).collect(),
                ))
            }
            CERT_LIST_DIGESTS => {
                let digests: Vec<CertDigestObj> = property.cert_list.decode_as()?;
                Ok(CertList::Digests(
                    digests
                        .into_iter()
                        .map(|d| (d.digest_type.to_string(), d.value.into_bytes().into_vec()))
                        .collect(),
                ))
            }
            found => Err(SealError::UnsupportedCertListType { found }),
        }
    }

    /// Whether the seal's `certList` names the DER certificate `cert_der` (type 1: the same
    /// bytes; type 2: an SM3 digest of them).
    pub fn names_signer(&self, cert_der: &[u8]) -> bool {
        match self.cert_list() {
            Ok(CertList::Certificates(certs)) => certs.iter().any(|c| c == cert_der),
            Ok(CertList::Digests(digests)) => digests.iter().any(|(kind, digest)| {
                kind.eq_ignore_ascii_case("SM3") && *digest == DigestAlgorithm::Sm3.digest(cert_der)
            }),
            Err(_) => false,
        }
    }

    /// The seal maker's certificate (DER), as the seal carries it.
    pub fn maker_cert_der(&self) -> &[u8] {
        self.seal.cert.as_bytes()
    }

    /// Whether the maker's signature (`signedValue`, SM2 with SM3 over DER(`eSealInfo`), with
    /// the key of the maker certificate the seal carries) is correct. Says nothing about
    /// whether the maker is trusted.
    pub fn maker_signature_ok(&self) -> bool {
        if self.seal.sign_alg_id != OID_SM2_WITH_SM3 {
            return false;
        }
        let Ok(info) = self.seal.e_seal_info.to_der() else {
            return false;
        };
        let Some(signature) = self.seal.signed_value.as_bytes() else {
            return false;
        };
        crate::sign::sm2::verify_sm2(self.maker_cert_der(), &info, signature)
    }
}

/// Where the seal of the issuer `uscc` lives in the key directory `keys_dir`.
pub fn seal_path(keys_dir: &Path, uscc: &str) -> PathBuf {
    keys_dir.join(SEALS_DIR).join(format!("{uscc}.{SEAL_EXTENSION}"))
}

/// The seal files of a key directory (`seals/*.esl`), sorted by file name; empty when there
/// is no seal directory.
pub fn seal_files(keys_dir: &Path) -> Result<Vec<PathBuf>, SealError> {
    let dir = keys_dir.join(SEALS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(SealError::Io { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| SealError::Io { path: dir.clone(), source })?.path();
        if path.extension().is_some_and(|e| e == SEAL_EXTENSION) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A chrono time as DER GeneralizedTime (whole seconds, UTC).
pub fn generalized_time(
    at: DateTime<Utc>,
    field: &'static str,
) -> Result<GeneralizedTime, SealError> {
    let secs = u64::try_from(at.timestamp()).map_err(|_| SealError::BadTime { field })?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|_| SealError::BadTime { field })
}

/// A DER GeneralizedTime as a chrono time.
pub fn chrono_time(
    time: &GeneralizedTime,
    field: &'static str,
) -> Result<DateTime<Utc>, SealError> {
    let secs = i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| SealError::BadTime { field })?;
    DateTime::from_timestamp(secs, 0).ok_or(SealError::BadTime { field })
}
