//! CMS `SignedData` (RFC 5652 §5) as PAdES embeds it: detached (no encapsulated content), one
//! `SignerInfo` with the signed attributes contentType, messageDigest and
//! signing-certificate-v2 (RFC 5035), and the signer's chain. The digest and signature
//! algorithms are the [`Signer`]'s ([`SignatureAlgorithm`](super::signer::SignatureAlgorithm)),
//! so another key type changes nothing here.

use cms::builder::{create_content_type_attribute, create_message_digest_attribute};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, OctetString, SetOfVec};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::serial_number::SerialNumber;

use super::SignError;
use super::signer::{DigestAlgorithm, SignatureAlgorithm, Signer};
use crate::timestamp::asn1::OID_SIGNATURE_TIME_STAMP_TOKEN;
use crate::timestamp::{Token, Tsa};

pub use super::signer::{OID_SHA256, OID_SHA256_WITH_RSA};

/// id-data (RFC 5652 §4).
pub const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData (RFC 5652 §5.1).
pub const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-aa-signingCertificateV2 (RFC 5035 §3).
pub const OID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// ESSCertIDv2 (RFC 5035 §4). `hash_algorithm` DEFAULTs to id-sha256; for SHA-256 we write
/// `None` (DER omits a default value).
#[derive(Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// IssuerSerial (RFC 5035 §4).
#[derive(Sequence)]
pub struct IssuerSerial {
    pub issuer: GeneralNames,
    pub serial_number: SerialNumber,
}

/// SigningCertificateV2 (RFC 5035 §3); policies are not used.
#[derive(Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<der::Any>>,
}

/// Builds a detached CMS SignedData (RFC 5652 §5) over an external `digest` (made with the
/// signer's digest algorithm), signed by `signer`, with its chain but the root included. Returns the
/// DER `ContentInfo`.
///
/// With a `tsa`, the SignerInfo also carries a timestamp token over its signature value in
/// the unsigned attribute id-aa-signatureTimeStampToken (RFC 3161 Appendix A; CAdES/PAdES
/// B-T, ETSI EN 319 122-1 §5.3).
pub fn build_detached_cms(
    signer: &dyn Signer,
    digest: &[u8],
    tsa: Option<&dyn Tsa>,
) -> Result<Vec<u8>, SignError> {
    let signed = sign_detached_cms(signer, digest)?;
    let token = tsa.map(|tsa| tsa.stamp(signed.signature())).transpose()?;
    signed.finish(signer, token.as_ref())
}

/// The first half of [`build_detached_cms`]: the signature over the signed attributes, whose
/// value a timestamp token is then asked for.
pub fn sign_detached_cms(signer: &dyn Signer, digest: &[u8]) -> Result<SignedCms, SignError> {
    let signed_attrs = signed_attributes(signer, digest)?;
    // RFC 5652 §5.4: the signature covers the DER encoding of the SET OF signed
    // attributes (tag 0x31), not the [0] IMPLICIT form stored in SignerInfo.
    let signed_attrs_der = signed_attrs.to_der().map_err(|e| cms_err(&e))?;
    let signature = signer.sign(&signed_attrs_der)?;
    Ok(SignedCms { signed_attrs, signature })
}

/// A SignerInfo's signed attributes and signature, before its unsigned attributes.
pub struct SignedCms {
    signed_attrs: SetOfVec<Attribute>,
    signature: Vec<u8>,
}

impl std::fmt::Debug for SignedCms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedCms").field("signature_len", &self.signature.len()).finish()
    }
}

impl SignedCms {
    /// The signature value: what a signature timestamp is over (RFC 3161 Appendix A).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The DER `ContentInfo`, with `token` (when given) as the signature timestamp.
    pub fn finish(self, signer: &dyn Signer, token: Option<&Token>) -> Result<Vec<u8>, SignError> {
        let unsigned_attrs = match token {
            Some(token) => {
                let value = Any::from_der(&token.der).map_err(|e| cms_err(&e))?;
                let mut values = SetOfVec::new();
                values.insert(value).map_err(|e| cms_err(&e))?;
                let mut attrs = SetOfVec::new();
                attrs
                    .insert(Attribute { oid: OID_SIGNATURE_TIME_STAMP_TOKEN, values })
                    .map_err(|e| cms_err(&e))?;
                Some(attrs)
            }
            None => None,
        };
        content_info(signer, self.signed_attrs, self.signature, unsigned_attrs)
    }
}

/// The length of what [`build_detached_cms`] returns for `signer` without a timestamp, when
/// its signature is [`Signer::max_signature_len`] bytes long (an RSA signature always is):
/// every other field has a fixed length for a given signer, so a PDF can reserve exactly this
/// much for `/Contents` instead of a generous guess padded with zeros.
///
/// Remembered per signer (its algorithm, signature length, certificate and chain): encoding a
/// whole CMS to learn a length that never changes was ≈ 1 % of a run's CPU, once a PDF.
pub fn detached_cms_len(signer: &dyn Signer) -> Result<usize, SignError> {
    let same = |known: &KnownCmsLen| {
        known.algorithm == signer.algorithm()
            && known.signature_len == signer.max_signature_len()
            && known.certificate == signer.certificate_der()
            && known.chain == signer.chain_der()
    };
    if let Some(len) =
        KNOWN_CMS_LENS.lock().ok().and_then(|known| known.iter().find(|k| same(k)).map(|k| k.len))
    {
        return Ok(len);
    }
    let digest = vec![0u8; signer.algorithm().digest().digest(b"").len()];
    let signed_attrs = signed_attributes(signer, &digest)?;
    let signature = vec![0xFFu8; signer.max_signature_len()];
    let len = content_info(signer, signed_attrs, signature, None)?.len();
    if let Ok(mut known) = KNOWN_CMS_LENS.lock()
        && known.len() < MAX_KNOWN_CMS_LENS
        && !known.iter().any(same)
    {
        known.push(KnownCmsLen {
            algorithm: signer.algorithm(),
            signature_len: signer.max_signature_len(),
            certificate: signer.certificate_der().to_vec(),
            chain: signer.chain_der().to_vec(),
            len,
        });
    }
    Ok(len)
}

/// Signers whose [`detached_cms_len`] is remembered: one an issuing authority, and a run has at
/// most a few hundred; past this, lengths are computed every time.
const MAX_KNOWN_CMS_LENS: usize = 1024;

static KNOWN_CMS_LENS: std::sync::Mutex<Vec<KnownCmsLen>> = std::sync::Mutex::new(Vec::new());

/// What the length of a signer's CMS depends on, and the length.
struct KnownCmsLen {
    algorithm: SignatureAlgorithm,
    signature_len: usize,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    len: usize,
}

fn cms_err(e: &dyn std::fmt::Display) -> SignError {
    SignError::Cms { detail: e.to_string() }
}

/// The signed attributes of the SignerInfo: contentType, messageDigest (`digest`) and
/// signing-certificate-v2.
fn signed_attributes(signer: &dyn Signer, digest: &[u8]) -> Result<SetOfVec<Attribute>, SignError> {
    let cert = signer.certificate();
    let tbs = cert.tbs_certificate();
    let digest_algorithm = signer.algorithm().digest();

    // RFC 5035 §3 / ETSI EN 319 122-1 §5.2.2.3: signing-certificate-v2 binds the signer
    // certificate to the signature.
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            // RFC 5035 §4: the default (SHA-256) is left out.
            hash_algorithm: (digest_algorithm != DigestAlgorithm::Sha256)
                .then(|| digest_algorithm.algorithm_identifier()),
            cert_hash: OctetString::new(digest_algorithm.digest(signer.certificate_der()))
                .map_err(|e| cms_err(&e))?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                serial_number: tbs.serial_number().clone(),
            }),
        }],
        policies: None,
    };
    let signing_certificate_value =
        Any::encode_from(&signing_certificate).map_err(|e| cms_err(&e))?;
    let mut signing_certificate_values = SetOfVec::new();
    signing_certificate_values.insert(signing_certificate_value).map_err(|e| cms_err(&e))?;

    // RFC 5652 §5.3: contentType and messageDigest are mandatory with signed attributes.
    let mut signed_attrs = SetOfVec::new();
    for attribute in [
        create_content_type_attribute(OID_DATA).map_err(|e| cms_err(&e))?,
        create_message_digest_attribute(digest).map_err(|e| cms_err(&e))?,
        Attribute { oid: OID_SIGNING_CERTIFICATE_V2, values: signing_certificate_values },
    ] {
        signed_attrs.insert(attribute).map_err(|e| cms_err(&e))?;
    }
    Ok(signed_attrs)
}

/// The DER `ContentInfo` of a detached SignedData with one SignerInfo and `signer`'s chain (but
/// its root).
fn content_info(
    signer: &dyn Signer,
    signed_attrs: SetOfVec<Attribute>,
    signature: Vec<u8>,
    unsigned_attrs: Option<SetOfVec<Attribute>>,
) -> Result<Vec<u8>, SignError> {
    let tbs = signer.certificate().tbs_certificate();
    let algorithm = signer.algorithm();
    let digest_id = algorithm.digest().algorithm_identifier();
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: digest_id.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm.algorithm_identifier(),
        signature: OctetString::new(signature).map_err(|e| cms_err(&e))?,
        unsigned_attrs,
    };
    // The signer's certificate and its intermediates; not a self-issued root after them: a
    // verifier must hold the root as its own trust anchor anyway (RFC 5652 §5.1 leaves the set
    // to the signer), and leaving it out saves ~1.7 KB of hex in every PDF.
    let mut certificates = SetOfVec::new();
    let (first, rest) = signer.chain().split_first().ok_or_else(|| cms_err(&"empty chain"))?;
    let intermediates = rest.iter().filter(|c| {
        let tbs = c.tbs_certificate();
        tbs.subject() != tbs.issuer()
    });
    for c in std::iter::once(first).chain(intermediates) {
        certificates.insert(CertificateChoices::Certificate(c.clone())).map_err(|e| cms_err(&e))?;
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest_id).map_err(|e| cms_err(&e))?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer_info).map_err(|e| cms_err(&e))?;
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        // RFC 5652 §5.2: detached signature, eContent absent.
        encap_content_info: EncapsulatedContentInfo { econtent_type: OID_DATA, econtent: None },
        certificates: Some(CertificateSet(certificates)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    let content_info = ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(|e| cms_err(&e))?,
    };
    content_info.to_der().map_err(|e| cms_err(&e))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::Utc;

    use super::*;
    use crate::sign::RsaSigner;

    #[test]
    fn the_remembered_length_is_each_signers_own() -> Result<(), Box<dyn std::error::Error>> {
        let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
        let mut dirs = vec![keys.clone()];
        for entry in std::fs::read_dir(keys.join("issuers"))? {
            dirs.push(entry?.path());
        }
        let signers = dirs
            .iter()
            .map(|d| RsaSigner::load(d, None, Utc::now()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut lengths = std::collections::BTreeSet::new();
        // Twice over: the first pass computes and remembers, the second reads what it remembered.
        for _ in 0..2 {
            for signer in &signers {
                let digest = [0x11u8; 32];
                let real = build_detached_cms(signer, &digest, None)?.len();
                assert_eq!(detached_cms_len(signer)?, real, "{}", signer.subject_cn());
                lengths.insert(real);
            }
        }
        // The signers' names differ in length, so a length remembered for the wrong signer shows.
        assert!(lengths.len() > 1, "{lengths:?}");
        Ok(())
    }
}
