//! Sealing an OFD (签章, GB/T 38540-2020 with the OFD signature files of GB/T 33190-2016):
//! the package's files get SM3 references in `Signature.xml`, the signer signs
//! `TBS_Sign { version 4, the seal, time, dataHash = SM3(Signature.xml), propertyInfo =
//! the path of Signature.xml }` with SM2, and the result goes to `SignedValue.dat`;
//! `Seal.esl` is the seal's DER (byte-identical to `TBS_Sign.eseal`); `Signatures.xml` lists
//! the signature and is the one file not covered (it is where further signatures would go).
//!
//! Refuses — before signing anything — a seal that is not valid at the signing time, a seal
//! whose certList does not name the signer, and a signer that is not SM2.
//! Lives beside the seal rather than in `sign`, because it needs the seal and `seal` already
//! builds on `sign`'s signers.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use der::Encode;
use der::asn1::{BitString, Ia5String, OctetString};

use crate::render::RenderError;
use crate::render::ofd::{OFD_NS, OfdPackage, SIGNATURES_PATH};
use crate::sign::signer::{DigestAlgorithm, OID_SM2_WITH_SM3, OID_SM3};
use crate::sign::{SignatureAlgorithm, Signer};
use crate::timestamp::Tsa;

use super::asn1::{SesSignature, TbsSign};
use super::{Seal, SealError, generalized_time};

/// The signature's directory inside the package.
pub const SIGN_DIR: &str = "Doc_0/Signs/Sign_0";
/// `Signature.xml` (also `TBS_Sign.propertyInfo`, with a leading `/`).
pub const SIGNATURE_XML_PATH: &str = "Doc_0/Signs/Sign_0/Signature.xml";
/// The embedded seal.
pub const SEAL_PATH: &str = "Doc_0/Signs/Sign_0/Seal.esl";
/// The DER `SES_Signature`.
pub const SIGNED_VALUE_PATH: &str = "Doc_0/Signs/Sign_0/SignedValue.dat";
/// `TBS_Sign.version` (GB/T 38540-2020).
pub const TBS_VERSION: u32 = 4;

/// Why an OFD could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfdSealError {
    /// The seal is not valid at the signing time.
    #[error("seal {es_id} is valid {valid_from} .. {valid_to}, not at {at}")]
    SealNotValidAt {
        es_id: String,
        valid_from: DateTime<Utc>,
        valid_to: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// The seal's certList does not name the signer's certificate.
    #[error("seal {es_id} does not name the signer {signer} in its certList")]
    SignerNotInCertList { es_id: String, signer: String },
    /// The signer does not sign with SM2 (OFD seals are SM2 with SM3).
    #[error("signer {signer} uses {algorithm:?}, OFD seals need SM2 with SM3")]
    SignerNotSm2 { signer: String, algorithm: SignatureAlgorithm },
    /// A DER structure could not be encoded, or a time is out of range.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The signer failed.
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    /// The zip could not be written.
    #[error(transparent)]
    Zip(#[from] RenderError),
}

impl From<der::Error> for OfdSealError {
    fn from(e: der::Error) -> OfdSealError {
        OfdSealError::Seal(SealError::from(e))
    }
}

/// Seals `package` with `seal` and `signer` at `at` and returns the OFD file (zip). Checks
/// first (nothing is signed on failure): the signer is SM2
/// ([`OfdSealError::SignerNotSm2`]), the seal is valid at `at`
/// ([`OfdSealError::SealNotValidAt`]) and names the signer's certificate
/// ([`OfdSealError::SignerNotInCertList`]). Deterministic for a deterministic signer.
pub fn seal_ofd(
    package: &OfdPackage,
    signer: &dyn Signer,
    seal: &Seal,
    at: DateTime<Utc>,
) -> Result<Vec<u8>, OfdSealError> {
    seal_ofd_with(package, signer, seal, at, None)
}

/// As [`seal_ofd`]; with a `tsa`, `SES_Signature.timeStamp` carries an RFC 3161 token over the
/// signature value (GB/T 38540-2020 §6.3: 对签名值的时间戳), so the seal stays verifiable
/// after the signer certificate expires. A TSA failure is
/// `OfdSealError::Sign(SignError::Timestamp)`.
pub fn seal_ofd_with(
    package: &OfdPackage,
    signer: &dyn Signer,
    seal: &Seal,
    at: DateTime<Utc>,
    tsa: Option<&dyn Tsa>,
) -> Result<Vec<u8>, OfdSealError> {
    if signer.algorithm() != SignatureAlgorithm::Sm2Sm3 {
        return Err(OfdSealError::SignerNotSm2 {
            signer: signer.subject_cn().to_string(),
            algorithm: signer.algorithm(),
        });
    }
    if !seal.is_valid_at(at) {
        return Err(OfdSealError::SealNotValidAt {
            es_id: seal.es_id().to_string(),
            valid_from: seal.valid_from(),
            valid_to: seal.valid_to(),
            at,
        });
    }
    if !seal.names_signer(signer.certificate_der()) {
        return Err(OfdSealError::SignerNotInCertList {
            es_id: seal.es_id().to_string(),
            signer: signer.subject_cn().to_string(),
        });
    }
    let seal_der = seal.der();
    let signature_xml = signature_xml(package, seal, at);
    let tbs = TbsSign {
        version: TBS_VERSION,
        eseal: seal.asn1().clone(),
        time_info: generalized_time(at, "timeInfo")?,
        data_hash: BitString::from_bytes(&DigestAlgorithm::Sm3.digest(signature_xml.as_bytes()))?,
        property_info: Ia5String::new(&format!("/{SIGNATURE_XML_PATH}"))?,
        ext_datas: None,
    };
    let signature = signer.sign(&tbs.to_der()?)?;
    let time_stamp = match tsa {
        Some(tsa) => {
            let token = tsa.stamp(&signature).map_err(crate::sign::SignError::Timestamp)?;
            Some(BitString::from_bytes(&token.der)?)
        }
        None => None,
    };
    let ses = SesSignature {
        to_sign: tbs,
        cert: OctetString::new(signer.certificate_der().to_vec())?,
        signature_alg_id: OID_SM2_WITH_SM3,
        signature: BitString::from_bytes(&signature)?,
        time_stamp,
    };
    let signatures_xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Signatures xmlns:ofd=\"{OFD_NS}\">\
         <ofd:MaxSignId>2</ofd:MaxSignId><ofd:Signature ID=\"1\" Type=\"Seal\" \
         BaseLoc=\"/{SIGNATURE_XML_PATH}\"/></ofd:Signatures>"
    );
    let signed_value = ses.to_der()?;
    Ok(package.to_zip_with(&[
        (SIGNATURES_PATH, signatures_xml.as_bytes()),
        (SEAL_PATH, seal_der),
        (SIGNATURE_XML_PATH, signature_xml.as_bytes()),
        (SIGNED_VALUE_PATH, &signed_value),
    ])?)
}

/// `Signature.xml`: provider, method, time, an SM3 reference for every file of the package
/// and for the seal, the stamp annotation and the seal's location.
fn signature_xml(package: &OfdPackage, seal: &Seal, at: DateTime<Utc>) -> String {
    let b64 = |digest: &[u8]| base64::engine::general_purpose::STANDARD.encode(digest);
    let mut x = String::with_capacity(4096);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Signature xmlns:ofd=\"{OFD_NS}\">\
         <ofd:SignedInfo><ofd:Provider ProviderName=\"elicence\" Version=\"{}\"/>\
         <ofd:SignatureMethod>{OID_SM2_WITH_SM3}</ofd:SignatureMethod>\
         <ofd:SignatureDateTime>{}</ofd:SignatureDateTime>\
         <ofd:References CheckMethod=\"{OID_SM3}\">",
        env!("CARGO_PKG_VERSION"),
        at.format("%Y%m%d%H%M%SZ")
    );
    let files = package
        .entries
        .iter()
        .map(|(p, b)| (p.as_str(), DigestAlgorithm::Sm3.digest(b)))
        .chain([(SEAL_PATH, seal.der_sm3().to_vec())]);
    for (path, digest) in files {
        // Paths are ours (ASCII, no markup characters): no escaping needed.
        let _ = write!(
            x,
            "<ofd:Reference FileRef=\"/{path}\"><ofd:CheckValue>{}</ofd:CheckValue></ofd:Reference>",
            b64(&digest)
        );
    }
    let [bx, by, bw, bh] = package.stamp.boundary;
    let _ = write!(
        x,
        "</ofd:References><ofd:StampAnnot ID=\"2\" PageRef=\"{}\" Boundary=\"{bx:.3} {by:.3} \
         {bw:.3} {bh:.3}\"/><ofd:Seal><ofd:BaseLoc>/{SEAL_PATH}</ofd:BaseLoc></ofd:Seal>\
         </ofd:SignedInfo><ofd:SignedValue>/{SIGNED_VALUE_PATH}</ofd:SignedValue></ofd:Signature>",
        package.stamp.page_id
    );
    x
}
