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
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use der::asn1::{BitString, Ia5String, OctetString};
use der::{Encode, Header, Length, Tag, TagNumber};
use sm3::{Digest as _, Sm3};

use crate::render::RenderError;
use crate::render::ofd::{OFD_NS, OfdPackage, SIGNATURES_PATH};
use crate::sign::signer::{DigestAlgorithm, OID_SM2_WITH_SM3, OID_SM3};
use crate::sign::{SignatureAlgorithm, Signer, Sm2Signer};
use crate::timestamp::{PendingToken, Tsa};

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
    check_sealable(signer, seal, at)?;
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
    zip_sealed(package, seal, &signature_xml, &ses.to_der()?)
}

/// The checks made before anything is signed (see [`seal_ofd`]).
fn check_sealable(signer: &dyn Signer, seal: &Seal, at: DateTime<Utc>) -> Result<(), OfdSealError> {
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
    Ok(())
}

/// The OFD file: the package, then `Signatures.xml`, the seal, `Signature.xml` and the DER
/// `SES_Signature`.
fn zip_sealed(
    package: &OfdPackage,
    seal: &Seal,
    signature_xml: &str,
    signed_value: &[u8],
) -> Result<Vec<u8>, OfdSealError> {
    let signatures_xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Signatures xmlns:ofd=\"{OFD_NS}\">\
         <ofd:MaxSignId>2</ofd:MaxSignId><ofd:Signature ID=\"1\" Type=\"Seal\" \
         BaseLoc=\"/{SIGNATURE_XML_PATH}\"/></ofd:Signatures>"
    );
    Ok(package.to_zip_with(&[
        (SIGNATURES_PATH, signatures_xml.as_bytes()),
        (SEAL_PATH, seal.der()),
        (SIGNATURE_XML_PATH, signature_xml.as_bytes()),
        (SIGNED_VALUE_PATH, signed_value),
    ])?)
}

/// An SM2 signer and its seal, made ready to seal many OFDs (one issuer's, in a run). What
/// `TBS_Sign` holds before its per-document fields — the sequence header, the version and the
/// whole seal, 9–10 KB with the seal's picture and certificates — is the same for every
/// document, since those fields have a fixed length (a `GeneralizedTime` without fractions,
/// a 32-byte SM3 `dataHash`, the fixed `propertyInfo` path). So the DER of that head and the
/// SM3 state after `Z_A ‖ head` are made once here, and each document hashes only its own
/// 90 bytes. [`OfdSealer::seal`] gives the bytes [`seal_ofd_with`] gives (a test holds them
/// equal).
pub struct OfdSealer {
    signer: Arc<Sm2Signer>,
    seal: Seal,
    tbs_head: Vec<u8>,
    tail_len: usize,
    hashed_head: Sm3,
}

impl std::fmt::Debug for OfdSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfdSealer")
            .field("signer", &self.signer)
            .field("seal", &self.seal.es_id())
            .finish_non_exhaustive()
    }
}

impl OfdSealer {
    /// Prepares `signer` and `seal`. Fails only when the seal cannot be encoded.
    pub fn new(signer: Arc<Sm2Signer>, seal: Seal) -> Result<OfdSealer, OfdSealError> {
        let tail_len = tbs_tail(seal.valid_from(), &[0; 32])?.len();
        let version = TBS_VERSION.to_der()?;
        let content = Length::try_from(version.len() + seal.der().len() + tail_len)?;
        let mut tbs_head = Header::new(Tag::Sequence, content).to_der()?;
        tbs_head.extend_from_slice(&version);
        tbs_head.extend_from_slice(seal.der());
        let mut hashed_head = signer.message_hasher();
        hashed_head.update(&tbs_head);
        Ok(OfdSealer { signer, seal, tbs_head, tail_len, hashed_head })
    }

    /// The SM2 signer.
    pub fn signer(&self) -> &Arc<Sm2Signer> {
        &self.signer
    }

    /// The seal.
    pub fn seal(&self) -> &Seal {
        &self.seal
    }

    /// [`seal_ofd_with`] with this signer and seal: the same checks, the same bytes.
    pub fn seal_package(
        &self,
        package: &OfdPackage,
        at: DateTime<Utc>,
        tsa: Option<&dyn Tsa>,
    ) -> Result<Vec<u8>, OfdSealError> {
        match self.sign_package(package, at, tsa)? {
            Sealing::Done(ofd) => Ok(ofd),
            Sealing::Signed(signed) => signed.finish(package),
        }
    }

    /// The first half of [`OfdSealer::seal_package`]: the seal's signature made and its
    /// timestamp asked for ([`Tsa::request`]) but not awaited; [`StartedSeal::finish`] puts it
    /// in and writes the OFD file.
    pub fn start_seal(
        &self,
        package: OfdPackage,
        at: DateTime<Utc>,
        tsa: Option<&dyn Tsa>,
    ) -> Result<StartedSeal<'_>, OfdSealError> {
        let sealing = self.sign_package(&package, at, tsa)?;
        Ok(StartedSeal { package, sealing })
    }

    fn sign_package(
        &self,
        package: &OfdPackage,
        at: DateTime<Utc>,
        tsa: Option<&dyn Tsa>,
    ) -> Result<Sealing<'_>, OfdSealError> {
        let signer: &dyn Signer = self.signer.as_ref();
        check_sealable(signer, &self.seal, at)?;
        let signature_xml = signature_xml(package, &self.seal, at);
        let data_hash = DigestAlgorithm::Sm3.digest(signature_xml.as_bytes());
        let tail = tbs_tail(at, &data_hash)?;
        if tail.len() != self.tail_len {
            // The head's length field counts a tail of the length it was made with (a time
            // outside 0000–9999 would not be): the general path encodes it all.
            return seal_ofd_with(package, signer, &self.seal, at, tsa).map(Sealing::Done);
        }
        let mut hash = self.hashed_head.clone();
        hash.update(&tail);
        let signature = self.signer.sign_digest(&hash.finalize())?;
        let time_stamp = tsa.map(|tsa| tsa.request(&signature));
        let signed = SignedSeal { sealer: self, tail, signature, signature_xml, time_stamp };
        Ok(Sealing::Signed(Box::new(signed)))
    }
}

/// An OFD face whose seal is signed ([`OfdSealer::start_seal`]), its timestamp on the way.
#[derive(Debug)]
pub struct StartedSeal<'a> {
    package: OfdPackage,
    sealing: Sealing<'a>,
}

impl StartedSeal<'_> {
    /// Waits for the token and writes the sealed OFD file.
    pub fn finish(self) -> Result<Vec<u8>, OfdSealError> {
        match self.sealing {
            Sealing::Done(ofd) => Ok(ofd),
            Sealing::Signed(signed) => signed.finish(&self.package),
        }
    }
}

#[derive(Debug)]
enum Sealing<'a> {
    /// Sealed whole already (the general path, token awaited).
    Done(Vec<u8>),
    Signed(Box<SignedSeal<'a>>),
}

/// `TBS_Sign`'s per-document tail, its signature and the token asked for over it.
#[derive(Debug)]
struct SignedSeal<'a> {
    sealer: &'a OfdSealer,
    tail: Vec<u8>,
    signature: Vec<u8>,
    signature_xml: String,
    time_stamp: Option<PendingToken>,
}

impl SignedSeal<'_> {
    fn finish(self, package: &OfdPackage) -> Result<Vec<u8>, OfdSealError> {
        let time_stamp = self
            .time_stamp
            .map(PendingToken::wait)
            .transpose()
            .map_err(crate::sign::SignError::Timestamp)?;
        let sealer = self.sealer;
        let signed_value = ses_signature(
            &[&sealer.tbs_head, &self.tail],
            sealer.signer.certificate_der(),
            &self.signature,
            time_stamp.as_ref().map(|t| t.der.as_slice()),
        )?;
        zip_sealed(package, &sealer.seal, &self.signature_xml, &signed_value)
    }
}

/// DER of `TBS_Sign`'s fields after the seal: `timeInfo`, `dataHash`, `propertyInfo`.
fn tbs_tail(at: DateTime<Utc>, data_hash: &[u8]) -> Result<Vec<u8>, OfdSealError> {
    let mut tail = Vec::with_capacity(96);
    generalized_time(at, "timeInfo")?.encode_to_vec(&mut tail)?;
    BitString::from_bytes(data_hash)?.encode_to_vec(&mut tail)?;
    Ia5String::new(&format!("/{SIGNATURE_XML_PATH}"))?.encode_to_vec(&mut tail)?;
    Ok(tail)
}

/// DER `SES_Signature` around the DER `TBS_Sign` given in parts (the encoding
/// [`SesSignature`] gives).
fn ses_signature(
    tbs: &[&[u8]],
    cert: &[u8],
    signature: &[u8],
    time_stamp: Option<&[u8]>,
) -> Result<Vec<u8>, OfdSealError> {
    let mut rest = OctetString::new(cert)?.to_der()?;
    OID_SM2_WITH_SM3.encode_to_vec(&mut rest)?;
    BitString::from_bytes(signature)?.encode_to_vec(&mut rest)?;
    if let Some(token) = time_stamp {
        let inner = BitString::from_bytes(token)?.to_der()?;
        let tag = Tag::ContextSpecific { constructed: true, number: TagNumber(0) };
        Header::new(tag, Length::try_from(inner.len())?).encode_to_vec(&mut rest)?;
        rest.extend_from_slice(&inner);
    }
    let tbs_len: usize = tbs.iter().map(|part| part.len()).sum();
    let mut out = Header::new(Tag::Sequence, Length::try_from(tbs_len + rest.len())?).to_der()?;
    out.reserve(tbs_len + rest.len());
    for part in tbs {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&rest);
    Ok(out)
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
        .files()
        .map(|(p, b, known)| {
            (p, known.map_or_else(|| DigestAlgorithm::Sm3.digest(b), |d| d.to_vec()))
        })
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
