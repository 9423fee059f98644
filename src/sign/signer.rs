//! The signing seam (rustls `crypto/signer.rs` style): a [`Signer`] holds a private key and
//! its certificate chain and signs messages; it names its [`SignatureAlgorithm`], which
//! supplies everything a signature format writes about the algorithm — the digest, the CMS
//! object identifiers and the XML-DSig URIs. PAdES ([`super::pades`]) and XML-DSig
//! ([`super::xmldsig`]) take `&dyn Signer` and ask the algorithm, so a new key type (SM2 with
//! SM3 for OFD seals, a timestamping key) is a new `Signer` implementation and a new
//! algorithm variant, with no change inside the formats.
//!
//! Renderers hand bytes to [`Signer::sign`] and read the public chain; they never see the key.

use std::fmt;

use der::asn1::Any;
use der::oid::ObjectIdentifier;
use sha2::{Digest, Sha256};
use sm3::Sm3;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use super::SignError;

/// id-sha256 (RFC 5754 §2.2; NIST CSOR).
pub const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// sha256WithRSAEncryption (RFC 4055 §5).
pub const OID_SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// SM3 (GB/T 32905-2016; OID from GM/T 0006-2012 and GB/T 33560-2017).
pub const OID_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");
/// SM2 signature with SM3 (GM/T 0006-2012 `SM3withSM2`; RFC 8998 §3.1 calls it sm2sig_sm3).
pub const OID_SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");

/// A message digest used by a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SM3 (GB/T 32905-2016), the hash of OFD references and SES seals.
    Sm3,
}

impl DigestAlgorithm {
    /// The algorithm's object identifier, as CMS `digestAlgorithms` and ESS name it.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha256 => OID_SHA256,
            DigestAlgorithm::Sm3 => OID_SM3,
        }
    }

    /// The `AlgorithmIdentifier` of CMS `digestAlgorithm` fields: parameters absent
    /// (RFC 5754 §2: SHA-2 identifiers omit them).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned { oid: self.oid(), parameters: None }
    }

    /// The XML-DSig `DigestMethod` URI.
    pub fn xml_uri(self) -> &'static str {
        match self {
            // XML Encryption §5.7.2.
            DigestAlgorithm::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
            // RFC 9231 §2.1.7.
            DigestAlgorithm::Sm3 => "http://www.w3.org/2021/04/xmldsig-more#sm3",
        }
    }

    /// The digest of the concatenation of `parts` (hashed in place, not copied together).
    pub fn digest_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha256 => {
                let mut hasher = Sha256::new();
                for part in parts {
                    hasher.update(part);
                }
                hasher.finalize().to_vec()
            }
            DigestAlgorithm::Sm3 => {
                let mut hasher = Sm3::new();
                for part in parts {
                    hasher.update(part);
                }
                hasher.finalize().to_vec()
            }
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.digest_parts(&[data])
    }
}

/// A signature algorithm: a key type, a padding or scheme, and the digest it signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2).
    RsaPkcs1Sha256,
    /// SM2 (GB/T 32918.2-2016) over SM3(Z_A ‖ M), Z_A computed with the signer's
    /// distinguishing ID (GB/T 35276-2017 §10: `1234567812345678` by default); the value is
    /// the DER `SEQUENCE { r INTEGER, s INTEGER }` (GB/T 35276-2017 §7.3).
    Sm2Sm3,
}

impl SignatureAlgorithm {
    /// The digest the signature is computed over.
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => DigestAlgorithm::Sha256,
            SignatureAlgorithm::Sm2Sm3 => DigestAlgorithm::Sm3,
        }
    }

    /// The signature algorithm's object identifier (CMS `signatureAlgorithm`).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => OID_SHA256_WITH_RSA,
            SignatureAlgorithm::Sm2Sm3 => OID_SM2_WITH_SM3,
        }
    }

    /// The `AlgorithmIdentifier` of a CMS `SignerInfo.signatureAlgorithm`.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        match self {
            // RFC 4055 §5: sha256WithRSAEncryption with NULL parameters.
            SignatureAlgorithm::RsaPkcs1Sha256 => {
                AlgorithmIdentifierOwned { oid: self.oid(), parameters: Some(Any::null()) }
            }
            // GB/T 35276-2017 §7.1 and OpenSSL's SM2 certificates: parameters absent.
            SignatureAlgorithm::Sm2Sm3 => {
                AlgorithmIdentifierOwned { oid: self.oid(), parameters: None }
            }
        }
    }

    /// The XML-DSig `SignatureMethod` URI.
    pub fn xml_uri(self) -> &'static str {
        match self {
            // RFC 6931 §2.3.2.
            SignatureAlgorithm::RsaPkcs1Sha256 => {
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
            }
            // RFC 9231 §2.3.8.
            SignatureAlgorithm::Sm2Sm3 => "http://www.w3.org/2021/04/xmldsig-more#sm2-sm3",
        }
    }
}

/// A private key with its X.509 chain (signer certificate first, then its issuers), checked
/// against each other when loaded.
///
/// `Send + Sync`: one signer is shared by all worker threads.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The algorithm [`Signer::sign`] uses.
    fn algorithm(&self) -> SignatureAlgorithm;

    /// Signs `message` (hashing it with [`SignatureAlgorithm::digest`] first, as the algorithm
    /// defines) and returns the signature value as the formats carry it. Fails only if the key
    /// backend reports an error.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;

    /// The longest value [`Signer::sign`] can return, in bytes (an RSA signature always has
    /// exactly this length: the modulus's), so a format can reserve room for it beforehand.
    fn max_signature_len(&self) -> usize;

    /// The parsed chain, signer certificate first; never empty.
    fn chain(&self) -> &[Certificate];

    /// DER encodings of [`Signer::chain`], in the same order.
    fn chain_der(&self) -> &[Vec<u8>];

    /// The signer certificate.
    fn certificate(&self) -> &Certificate;

    /// DER encoding of the signer certificate.
    fn certificate_der(&self) -> &[u8];

    /// The signer certificate's subject common name (or the whole subject if it has none).
    fn subject_cn(&self) -> &str;
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => f.write_str("RSA PKCS#1 v1.5 SHA-256"),
            SignatureAlgorithm::Sm2Sm3 => f.write_str("SM2 with SM3"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_parts_is_digest_of_the_whole() {
        let d = DigestAlgorithm::Sha256;
        assert_eq!(d.digest_parts(&[b"ab", b"", b"c"]), d.digest(b"abc"));
        assert_eq!(d.digest(b"abc").len(), 32);
    }

    #[test]
    fn rsa_sha256_names_what_cms_and_xml_dsig_write() {
        let a = SignatureAlgorithm::RsaPkcs1Sha256;
        assert_eq!(a.oid().to_string(), "1.2.840.113549.1.1.11");
        assert_eq!(a.digest().oid().to_string(), "2.16.840.1.101.3.4.2.1");
        assert!(a.xml_uri().ends_with("#rsa-sha256"));
        assert!(a.digest().xml_uri().ends_with("#sha256"));
        assert_eq!(a.algorithm_identifier().parameters, Some(Any::null()));
        assert_eq!(a.digest().algorithm_identifier().parameters, None);
    }

    #[test]
    fn sm3_matches_the_standard_examples() {
        // GB/T 32905-2016 Appendix A.1 ("abc") and A.2 ("abcd" × 16).
        assert_eq!(
            hex::encode(DigestAlgorithm::Sm3.digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex::encode(DigestAlgorithm::Sm3.digest_parts(&[&b"abcd".repeat(15), b"abcd"])),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn sm2_sm3_names_the_chinese_oids() {
        let a = SignatureAlgorithm::Sm2Sm3;
        assert_eq!(a.oid().to_string(), "1.2.156.10197.1.501");
        assert_eq!(a.digest().oid().to_string(), "1.2.156.10197.1.401");
        assert_eq!(a.algorithm_identifier().parameters, None);
        assert!(a.xml_uri().ends_with("#sm2-sm3"));
        assert!(a.digest().xml_uri().ends_with("#sm3"));
    }
}
