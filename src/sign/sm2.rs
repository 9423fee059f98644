//! SM2 signers (GB/T 32918.2-2016 with SM3, GB/T 32905-2016): a PKCS#8 SM2 key and its
//! certificate chain, checked against each other when loaded, producing the signatures OFD
//! electronic seals carry (GB/T 38540-2020).
//!
//! SM2 hashes `Z_A ‖ M`, where `Z_A` binds the signer's public key and a distinguishing ID;
//! every verifier must use the same ID, so the signer fixes it to the default of
//! GB/T 35276-2017 §10, [`SM2_DEFAULT_DIST_ID`] (OpenSSL needs
//! `-pkeyopt distid:1234567812345678` to agree, gmssl and ofdrw use it by default).
//! Signatures are deterministic (RFC 6979 nonces in the `sm2` crate), which keeps an OFD
//! byte-identical for the same licence, keys and clock.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use der::Decode;
use der::oid::ObjectIdentifier;
use sm2::pkcs8::DecodePrivateKey;
use x509_cert::Certificate;

use super::key_files::{KeyDir, Passphrase, SM2_CHAIN_FILE, SM2_KEY_FILE, subject_label};
use super::signer::{SignatureAlgorithm, Signer};
use super::{KeyError, SignError};

/// The default SM2 distinguishing ID (GB/T 35276-2017 §10; GM/T 0009-2012 §10).
pub const SM2_DEFAULT_DIST_ID: &str = "1234567812345678";

/// id-ecPublicKey (RFC 5480 §2.1.1), the key algorithm of an SM2 certificate.
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// The SM2 curve (GM/T 0006-2012, `sm2p256v1`), the parameter of that algorithm.
const SM2_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");

/// A loaded SM2 signing key with its X.509 chain (signer certificate first, then its issuers).
///
/// `Send + Sync`: one `Sm2Signer` is shared by all worker threads.
pub struct Sm2Signer {
    key: sm2::dsa::SigningKey,
    chain: Vec<Certificate>,
    chain_der: Vec<Vec<u8>>,
    subject_cn: String,
}

impl fmt::Debug for Sm2Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm2Signer")
            .field("subject_cn", &self.subject_cn)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Sm2Signer {
    /// Loads `dir/sm2-signer.key` (PKCS#8 PEM, plain or encrypted) and `dir/sm2-signer.pem`
    /// (chain, signer first).
    ///
    /// Fails as [`Sm2Signer::load_files`] does.
    pub fn load(
        dir: &Path,
        passphrase: Option<&Passphrase>,
        at: DateTime<Utc>,
    ) -> Result<Sm2Signer, KeyError> {
        Sm2Signer::load_files(&dir.join(SM2_KEY_FILE), &dir.join(SM2_CHAIN_FILE), passphrase, at)
    }

    /// Loads an SM2 key (PKCS#8 PEM) and its chain (PEM, signer first) from the named files.
    ///
    /// Fails when a file is missing or malformed, the key is encrypted and `passphrase` is
    /// `None` or wrong, the key or certificate is not SM2 ([`KeyError::UnsupportedKey`]), the
    /// key does not match the signer certificate ([`KeyError::KeyCertMismatch`]) or the
    /// certificate is not valid at `at` ([`KeyError::CertNotValidAt`]).
    pub fn load_files(
        key_path: &Path,
        cert_path: &Path,
        passphrase: Option<&Passphrase>,
        at: DateTime<Utc>,
    ) -> Result<Sm2Signer, KeyError> {
        let keys = KeyDir::read_files(key_path.to_path_buf(), cert_path.to_path_buf(), passphrase)?;
        Sm2Signer::from_key_dir(&keys, at)
    }

    fn from_key_dir(keys: &KeyDir, at: DateTime<Utc>) -> Result<Sm2Signer, KeyError> {
        let (key_path, cert_path) = (keys.key_path.as_path(), keys.cert_path.as_path());
        let Some(leaf) = keys.chain.first() else {
            return Err(KeyError::BadCertificate {
                path: cert_path.to_path_buf(),
                detail: "no certificate".into(),
            });
        };
        let cert_unsupported =
            |detail: String| KeyError::UnsupportedKey { path: cert_path.to_path_buf(), detail };
        let spki = leaf.tbs_certificate().subject_public_key_info();
        let curve =
            spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(SM2_CURVE) {
            return Err(cert_unsupported(format!(
                "certificate key algorithm {} curve {curve:?}, expected SM2",
                spki.algorithm.oid
            )));
        }
        let cert_key = sm2::PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
            .map_err(|e| cert_unsupported(format!("certificate SM2 point: {e}")))?;
        let secret = sm2::SecretKey::from_pkcs8_der(&keys.pkcs8_der).map_err(|e| {
            KeyError::UnsupportedKey { path: key_path.to_path_buf(), detail: format!("sm2: {e}") }
        })?;
        if secret.public_key() != cert_key {
            return Err(KeyError::KeyCertMismatch {
                key: key_path.to_path_buf(),
                cert: cert_path.to_path_buf(),
            });
        }
        let key = sm2::dsa::SigningKey::new(SM2_DEFAULT_DIST_ID, &secret).map_err(|e| {
            KeyError::UnsupportedKey { path: key_path.to_path_buf(), detail: format!("sm2: {e}") }
        })?;
        KeyDir::check_valid_at(leaf, at)?;
        let chain_der = keys.chain_der()?;
        let subject_cn = subject_label(leaf);
        Ok(Sm2Signer { key, chain: keys.chain.clone(), chain_der, subject_cn })
    }
}

impl Signer for Sm2Signer {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Sm2Sm3
    }

    /// SM2 over SM3(Z_A ‖ `msg`) with ID [`SM2_DEFAULT_DIST_ID`] (GB/T 32918.2-2016 §6.1);
    /// returns the DER `SEQUENCE { r, s }` (GB/T 35276-2017 §7.3).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        use sm2::dsa::signature::Signer as _;
        let signature: sm2::dsa::Signature = self.key.try_sign(msg).map_err(|_| SignError::Sm2)?;
        Ok(signature.to_der().to_bytes().into_vec())
    }

    /// DER `SEQUENCE { r INTEGER, s INTEGER }` with both numbers at their longest (32 bytes and
    /// a leading zero): 2 + 2 × (2 + 33).
    fn max_signature_len(&self) -> usize {
        72
    }

    fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    fn certificate(&self) -> &Certificate {
        // `from_key_dir` refuses an empty chain, so the first element exists.
        &self.chain[0]
    }

    fn certificate_der(&self) -> &[u8] {
        &self.chain_der[0]
    }

    fn subject_cn(&self) -> &str {
        &self.subject_cn
    }
}

/// Verifies an SM2 signature (DER `SEQUENCE { r, s }`) over `msg` with the key of the DER
/// certificate `cert_der` and ID [`SM2_DEFAULT_DIST_ID`]. Returns `false` for a malformed
/// certificate, key or signature as for a wrong one.
pub fn verify_sm2(cert_der: &[u8], msg: &[u8], signature_der: &[u8]) -> bool {
    use sm2::dsa::signature::Verifier as _;
    let Ok(cert) = Certificate::from_der(cert_der) else {
        return false;
    };
    let point = cert.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes();
    let Ok(key) = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DEFAULT_DIST_ID, point) else {
        return false;
    };
    let Ok(signature) = sm2::dsa::Signature::from_der(signature_der) else {
        return false;
    };
    key.verify(msg, &signature).is_ok()
}
