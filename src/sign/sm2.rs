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
use sm3::{Digest as _, Sm3};
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
    /// `(1 + d)⁻¹`, the same for every signature of this key (see [`Sm2Signer::sign_digest`]).
    d_plus_1_inv: sm2::Scalar,
    /// `Z_A` of this key with [`SM2_DEFAULT_DIST_ID`], the first block of every message hash.
    z: [u8; 32],
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
        let z = z_a(spki.subject_public_key.raw_bytes())
            .ok_or_else(|| cert_unsupported("certificate SM2 point not uncompressed".into()))?;
        let d_plus_1_inv = d_plus_1_inverse(&key).ok_or_else(|| KeyError::UnsupportedKey {
            path: key_path.to_path_buf(),
            detail: "sm2: 1 + d has no inverse".into(),
        })?;
        Ok(Sm2Signer { key, d_plus_1_inv, z, chain: keys.chain.clone(), chain_der, subject_cn })
    }

    /// SM3 with `Z_A` already absorbed: feed it the message, then sign the digest with
    /// [`Sm2Signer::sign_digest`]. A caller that signs many messages with a common prefix
    /// hashes the prefix once and clones the state (the OFD seal's `TBS_Sign` begins with the
    /// whole seal, the same for every document).
    pub fn message_hasher(&self) -> Sm3 {
        Sm3::new_with_prefix(self.z)
    }

    /// The signature of the message whose [`Sm2Signer::message_hasher`] digest is `digest`:
    /// the same bytes [`Signer::sign`] gives for that message (deterministic nonce).
    ///
    /// The same algorithm as the `sm2` crate's `sign_prehash` (GB/T 32918.2-2016 §6.1 with an
    /// RFC 6979 nonce from SM3), step for step, except that `(1 + d)⁻¹` is computed once per
    /// key when it is loaded instead of once per signature (a scalar inversion, ≈ 5 % of an
    /// OFD's worker time). A test holds the bytes equal to the crate's.
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = self.sign_prehash(digest).ok_or(SignError::Sm2)?;
        Ok(signature.to_der().to_bytes().into_vec())
    }

    fn sign_prehash(&self, digest: &[u8]) -> Option<sm2::dsa::Signature> {
        use sm2::elliptic_curve::ops::Reduce;
        use sm2::elliptic_curve::point::AffineCoordinates;
        use sm2::elliptic_curve::subtle::ConstantTimeEq;
        use sm2::elliptic_curve::{Curve, Group, PrimeField};
        use sm2::{FieldBytes, ProjectivePoint, Scalar, Sm2, U256};

        let digest: &[u8; 32] = digest.try_into().ok()?;
        let d: &Scalar = self.key.as_nonzero_scalar();
        // A2: e = H(Z_A ‖ M) as a scalar (32 bytes: nothing to truncate).
        let e = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(digest));
        // A3: k from RFC 6979's HMAC-DRBG over (d, e), as the crate derives it.
        let mut kgen =
            rfc6979::KGenerator::<Sm3, U256>::new(&d.to_repr(), &e.to_bytes(), &[], &Sm2::ORDER);
        let mut k_bytes = FieldBytes::default();
        kgen.fill_next_k(&mut k_bytes);
        let k = Scalar::from_repr(k_bytes).into_option()?;
        // A4: (x1, y1) = [k]G.
        let point = ProjectivePoint::mul_by_generator(&k).to_affine();
        // A5: r = (e + x1) mod n; r = 0 or r + k = n has no signature with this k.
        let r = e + <Scalar as Reduce<FieldBytes>>::reduce(&point.x());
        if bool::from(r.is_zero() | (r + k).ct_eq(&Scalar::ZERO)) {
            return None;
        }
        // A6: s = (1 + d)⁻¹ (k − r·d) mod n.
        let s = self.d_plus_1_inv * (k - (r * d));
        sm2::dsa::Signature::from_scalars(r, s).ok()
    }
}

/// `(1 + d)⁻¹ mod n` for the key's secret scalar `d`; `None` when `d = n − 1`.
fn d_plus_1_inverse(key: &sm2::dsa::SigningKey) -> Option<sm2::Scalar> {
    let d: &sm2::Scalar = key.as_nonzero_scalar();
    (*d + sm2::Scalar::ONE).invert().into_option()
}

/// `Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)` (GB/T 32918.2-2016 §5.5) for
/// the uncompressed point `04 ‖ x_A ‖ y_A` and ID [`SM2_DEFAULT_DIST_ID`]; `None` for another
/// encoding. The curve constants are those of GB/T 32918.5-2016.
fn z_a(point: &[u8]) -> Option<[u8; 32]> {
    const A: [u8; 32] =
        hex_literal("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
    const B: [u8; 32] =
        hex_literal("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
    const GX: [u8; 32] =
        hex_literal("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
    const GY: [u8; 32] =
        hex_literal("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");
    let xy = point.strip_prefix(&[0x04])?;
    if xy.len() != 64 {
        return None;
    }
    let id = SM2_DEFAULT_DIST_ID.as_bytes();
    let entl = u16::try_from(id.len() * 8).ok()?;
    let mut h = Sm3::new();
    for part in [&entl.to_be_bytes()[..], id, &A, &B, &GX, &GY, xy] {
        h.update(part);
    }
    Some(h.finalize().into())
}

/// 32 bytes from 64 hexadecimal digits, at compile time.
const fn hex_literal(hex: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not an upper-case hexadecimal digit"),
        }
    }
    let hex = hex.as_bytes();
    assert!(hex.len() == 64, "64 hexadecimal digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(hex[2 * i]) << 4 | digit(hex[2 * i + 1]);
        i += 1;
    }
    out
}

impl Signer for Sm2Signer {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Sm2Sm3
    }

    /// SM2 over SM3(Z_A ‖ `msg`) with ID [`SM2_DEFAULT_DIST_ID`] (GB/T 32918.2-2016 §6.1);
    /// returns the DER `SEQUENCE { r, s }` (GB/T 35276-2017 §7.3).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut hasher = self.message_hasher();
        hasher.update(msg);
        self.sign_digest(&hasher.finalize())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_from_the_message_hasher_signs_as_the_message_does() {
        let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
        let at = DateTime::parse_from_rfc3339("2027-01-02T03:04:05Z").unwrap().to_utc();
        let signer = Sm2Signer::load(&keys, None, at).unwrap();
        let msg = b"TBS_Sign: the seal, then the time, the hash and the path";
        let mut hasher = signer.message_hasher();
        hasher.update(&msg[..12]);
        // A cloned state carries on as the original would (what a prefix cache relies on).
        let mut resumed = hasher.clone();
        resumed.update(&msg[12..]);
        let by_digest = signer.sign_digest(&resumed.finalize()).unwrap();
        assert_eq!(by_digest, signer.sign(msg).unwrap());
        let crate_signature: sm2::dsa::Signature = {
            use sm2::dsa::signature::Signer as _;
            signer.key.try_sign(msg).unwrap()
        };
        assert_eq!(by_digest, crate_signature.to_der().to_bytes().into_vec(), "as the crate signs");
        assert!(verify_sm2(signer.certificate_der(), msg, &by_digest));
        assert!(z_a(&[0x02; 33]).is_none());
    }

    #[test]
    fn the_cached_inverse_signs_byte_for_byte_as_the_crate_does() {
        use sm2::dsa::signature::hazmat::PrehashSigner as _;
        let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
        let at = DateTime::parse_from_rfc3339("2027-01-02T03:04:05Z").unwrap().to_utc();
        let signer = Sm2Signer::load(&keys, None, at).unwrap();
        // Many digests (the nonce is deterministic, so both must give the same bytes).
        for i in 0u32..300 {
            let digest: [u8; 32] = Sm3::digest(i.to_be_bytes()).into();
            let ours = signer.sign_digest(&digest).unwrap();
            let theirs: sm2::dsa::Signature = signer.key.sign_prehash(&digest).unwrap();
            assert_eq!(ours, theirs.to_der().to_bytes().into_vec(), "digest {i}");
        }
        // The all-0xff and all-zero digests reduce mod n; still equal.
        for digest in [[0xffu8; 32], [0u8; 32]] {
            let theirs: sm2::dsa::Signature = signer.key.sign_prehash(&digest).unwrap();
            assert_eq!(signer.sign_digest(&digest).unwrap(), theirs.to_der().to_bytes().into_vec());
        }
        assert!(signer.sign_digest(&[1u8; 31]).is_err(), "a digest is 32 bytes");
    }
}
