//! Development key sets: a self-signed CA and a signer certificate it issued, written as
//! PEM files that [`RsaSigner::load`](super::RsaSigner::load) reads; beside them the SM2 PKI
//! of OFD seals: a self-signed SM2 root (SM2-with-SM3), the seal maker (制章者) it certifies,
//! and an SM2 signer that [`Sm2Signer::load`](super::Sm2Signer::load) reads.
//!
//! These keys are for development and tests only: production keys come from the issuing
//! authority's CA. RSA keys are generated with the `rsa` crate (ring cannot generate RSA).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use der::EncodePem;
use der::asn1::{Ia5String, ObjectIdentifier, OctetString};
use der::pem::LineEnding;
use der::zeroize::Zeroizing;
use pkcs8::EncodePrivateKey;
use rsa::rand_core::{TryCryptoRng, TryRng};
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::CertificatePolicies;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::KeyError;
use super::key_files::{CHAIN_FILE, KEY_FILE, Passphrase, SM2_CHAIN_FILE, SM2_KEY_FILE};

/// CA certificate file name.
pub const CA_CERT_FILE: &str = "ca.pem";
/// CA private key file name.
pub const CA_KEY_FILE: &str = "ca.key";

const CA_SUBJECT: &str = "CN=elicence development CA,O=elicence (DEVELOPMENT ONLY)";
const SIGNER_SUBJECT: &str = "CN=elicence development signer,O=elicence (DEVELOPMENT ONLY)";

/// SM2 root certificate file name: the trust anchor of OFD seals.
pub const SM2_CA_CERT_FILE: &str = "sm2-ca.pem";
/// SM2 root private key file name.
pub const SM2_CA_KEY_FILE: &str = "sm2-ca.key";
/// Seal maker (制章者) certificate followed by the SM2 root, PEM.
pub const SEAL_MAKER_CHAIN_FILE: &str = "seal-maker.pem";
/// Seal maker private key file name.
pub const SEAL_MAKER_KEY_FILE: &str = "seal-maker.key";

const SM2_CA_SUBJECT: &str = "CN=elicence development SM2 CA,O=elicence (DEVELOPMENT ONLY)";
const SEAL_MAKER_SUBJECT: &str = "CN=elicence development seal maker,O=elicence (DEVELOPMENT ONLY)";
const SM2_SIGNER_SUBJECT: &str = "CN=elicence development SM2 signer,O=elicence (DEVELOPMENT ONLY)";

/// The directory of one issuing authority's own identity inside a key directory.
pub const ISSUERS_DIR: &str = "issuers";

/// Where the identity of the issuer `uscc` lives in the key directory `keys`:
/// `keys/issuers/<USCC>/` (`signer.key`, `signer.pem`, `sm2-signer.key`, `sm2-signer.pem`).
pub fn issuer_dir(keys: &Path, uscc: &str) -> PathBuf {
    keys.join(ISSUERS_DIR).join(uscc)
}

/// Options for [`init_dev_keys`].
#[derive(Debug, Clone)]
pub struct DevKeyOptions {
    /// Overwrite existing key files.
    pub force: bool,
    /// Encrypt both private keys (PKCS#8 PBES2) with this passphrase.
    pub passphrase: Option<Passphrase>,
    /// RSA modulus size in bits (at least 2048).
    pub bits: usize,
    /// Certificate lifetime in days, counted from one day before `now`.
    pub validity_days: i64,
    /// A CRL distribution point (RFC 5280 §4.2.1.13) for the signer certificate: where a
    /// verifier fetches the CA's CRL (`elicence keys crl` writes it).
    pub crl_url: Option<String>,
}

impl Default for DevKeyOptions {
    fn default() -> Self {
        DevKeyOptions {
            force: false,
            passphrase: None,
            bits: 2048,
            validity_days: 3650,
            crl_url: None,
        }
    }
}

/// The files written by [`init_dev_keys`].
#[derive(Debug, Clone)]
pub struct DevKeyPaths {
    /// Self-signed CA certificate: the trust anchor for verification.
    pub ca_cert: PathBuf,
    /// CA private key (PKCS#8 PEM, mode 0600).
    pub ca_key: PathBuf,
    /// Signer certificate followed by the CA certificate.
    pub signer_chain: PathBuf,
    /// Signer private key (PKCS#8 PEM, mode 0600).
    pub signer_key: PathBuf,
    /// The SM2 files of OFD seals.
    pub sm2: Sm2DevKeyPaths,
}

/// The SM2 files written by [`init_dev_keys`].
#[derive(Debug, Clone)]
pub struct Sm2DevKeyPaths {
    /// Self-signed SM2 root certificate: the trust anchor for OFD seals.
    pub ca_cert: PathBuf,
    /// SM2 root private key (PKCS#8 PEM, mode 0600).
    pub ca_key: PathBuf,
    /// Seal maker certificate followed by the SM2 root.
    pub seal_maker_chain: PathBuf,
    /// Seal maker private key (PKCS#8 PEM, mode 0600).
    pub seal_maker_key: PathBuf,
    /// SM2 signer certificate followed by the SM2 root.
    pub signer_chain: PathBuf,
    /// SM2 signer private key (PKCS#8 PEM, mode 0600).
    pub signer_key: PathBuf,
}

impl Sm2DevKeyPaths {
    fn in_dir(dir: &Path) -> Sm2DevKeyPaths {
        Sm2DevKeyPaths {
            ca_cert: dir.join(SM2_CA_CERT_FILE),
            ca_key: dir.join(SM2_CA_KEY_FILE),
            seal_maker_chain: dir.join(SEAL_MAKER_CHAIN_FILE),
            seal_maker_key: dir.join(SEAL_MAKER_KEY_FILE),
            signer_chain: dir.join(SM2_CHAIN_FILE),
            signer_key: dir.join(SM2_KEY_FILE),
        }
    }

    fn all(&self) -> [&PathBuf; 6] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.seal_maker_chain,
            &self.seal_maker_key,
            &self.signer_chain,
            &self.signer_key,
        ]
    }
}

/// Writes a development CA and signer into `dir` (created if missing): `ca.pem`, `ca.key`,
/// `signer.pem` (signer then CA), `signer.key`; and the SM2 files of OFD seals (see
/// [`Sm2DevKeyPaths`]). Certificates are valid from `now` − 1 day for `opts.validity_days`.
///
/// Fails with [`KeyError::AlreadyExists`] if any of the files exists and `opts.force` is
/// false, and with [`KeyError::Generate`] / [`KeyError::Write`] otherwise.
pub fn init_dev_keys(
    dir: &Path,
    now: DateTime<Utc>,
    opts: &DevKeyOptions,
) -> Result<DevKeyPaths, KeyError> {
    let paths = DevKeyPaths {
        ca_cert: dir.join(CA_CERT_FILE),
        ca_key: dir.join(CA_KEY_FILE),
        signer_chain: dir.join(CHAIN_FILE),
        signer_key: dir.join(KEY_FILE),
        sm2: Sm2DevKeyPaths::in_dir(dir),
    };
    if !opts.force {
        let rsa_files = [&paths.ca_cert, &paths.ca_key, &paths.signer_chain, &paths.signer_key];
        for path in rsa_files.into_iter().chain(paths.sm2.all()) {
            if path.exists() {
                return Err(KeyError::AlreadyExists { path: path.clone() });
            }
        }
    }
    if opts.bits < 2048 {
        return Err(generate_error("RSA key", format!("{} bits is below 2048", opts.bits)));
    }
    std::fs::create_dir_all(dir)
        .map_err(|source| KeyError::Write { path: dir.to_path_buf(), source })?;

    let mut rng = SystemRng(ring::rand::SystemRandom::new());
    let ca_key = rsa::PrivateKey::new(&mut rng, opts.bits)
        .map_err(|e| generate_error("CA key", e.to_string()))?;
    let signer_key = rsa::PrivateKey::new(&mut rng, opts.bits)
        .map_err(|e| generate_error("signer key", e.to_string()))?;
    let ca_signing = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(ca_key);

    let not_before = now - Duration::days(1);
    let not_after = not_before + Duration::days(opts.validity_days);
    let validity = Validity::new(x509_time(not_before)?, x509_time(not_after)?);
    let ca_name = parse_name(CA_SUBJECT)?;
    let signer_name = parse_name(SIGNER_SUBJECT)?;

    let ca_spki = spki_of(ca_signing.as_ref().as_public_key())?;
    let ca_cert = issue(
        DevProfile { subject: ca_name.clone(), issuer: ca_name.clone(), ca: true, crl_url: None },
        random_serial(&mut rng)?,
        validity,
        ca_spki,
        &ca_signing,
    )?;
    let signer_spki = spki_of(signer_key.as_public_key())?;
    let signer_cert = issue(
        DevProfile {
            subject: signer_name,
            issuer: ca_name,
            ca: false,
            crl_url: opts.crl_url.clone(),
        },
        random_serial(&mut rng)?,
        validity,
        signer_spki,
        &ca_signing,
    )?;

    let ca_pem = cert_pem(&ca_cert)?;
    let chain_pem = format!("{}{}", cert_pem(&signer_cert)?, ca_pem);
    write_public(&paths.ca_cert, &ca_pem)?;
    write_public(&paths.signer_chain, &chain_pem)?;
    write_private(&paths.ca_key, &key_pem(ca_signing.as_ref(), opts.passphrase.as_ref())?)?;
    write_private(&paths.signer_key, &key_pem(&signer_key, opts.passphrase.as_ref())?)?;
    init_dev_sm2_keys(&paths.sm2, validity, opts.passphrase.as_ref(), &mut rng)?;
    Ok(paths)
}

/// Writes the SM2 root, the seal maker and the SM2 signer (GB/T 38540-2020 §5: the seal
/// maker signs seals, the signer signs documents with a seal naming its certificate). Every
/// certificate is SM2-with-SM3 (1.2.156.10197.1.501), signed with the default ID.
fn init_dev_sm2_keys(
    paths: &Sm2DevKeyPaths,
    validity: Validity,
    passphrase: Option<&Passphrase>,
    rng: &mut SystemRng,
) -> Result<(), KeyError> {
    let ca_key = sm2_secret(rng)?;
    let ca_signing = sm2_signing_key(&ca_key)?;
    let ca_name = parse_name(SM2_CA_SUBJECT)?;
    let ca_cert = issue_sm2(
        DevProfile { subject: ca_name.clone(), issuer: ca_name.clone(), ca: true, crl_url: None },
        random_serial(rng)?,
        validity,
        sm2_spki(&ca_key)?,
        &ca_signing,
    )?;
    let ca_pem = cert_pem(&ca_cert)?;
    write_public(&paths.ca_cert, &ca_pem)?;
    write_private(&paths.ca_key, &sm2_key_pem(&ca_key, passphrase)?)?;
    for (subject, chain_path, key_path) in [
        (SEAL_MAKER_SUBJECT, &paths.seal_maker_chain, &paths.seal_maker_key),
        (SM2_SIGNER_SUBJECT, &paths.signer_chain, &paths.signer_key),
    ] {
        let key = sm2_secret(rng)?;
        let cert = issue_sm2(
            DevProfile {
                subject: parse_name(subject)?,
                issuer: ca_name.clone(),
                ca: false,
                crl_url: None,
            },
            random_serial(rng)?,
            validity,
            sm2_spki(&key)?,
            &ca_signing,
        )?;
        write_public(chain_path, &format!("{}{}", cert_pem(&cert)?, ca_pem))?;
        write_private(key_path, &sm2_key_pem(&key, passphrase)?)?;
    }
    Ok(())
}

/// The files of one issuing authority's own identity (see [`issuer_dir`]).
#[derive(Debug, Clone)]
pub struct IssuerKeyPaths {
    /// `issuers/<USCC>/`.
    pub dir: PathBuf,
    /// RSA signer certificate (PDF, XML) followed by the CA certificate.
    pub signer_chain: PathBuf,
    /// RSA signer private key (PKCS#8 PEM, mode 0600).
    pub signer_key: PathBuf,
    /// SM2 signer certificate (OFD seals) followed by the SM2 root.
    pub sm2_signer_chain: PathBuf,
    /// SM2 signer private key (PKCS#8 PEM, mode 0600).
    pub sm2_signer_key: PathBuf,
}

impl IssuerKeyPaths {
    /// Where the identity of `uscc` lives in the key directory `keys`.
    pub fn in_key_dir(keys: &Path, uscc: &str) -> IssuerKeyPaths {
        let dir = issuer_dir(keys, uscc);
        IssuerKeyPaths {
            signer_chain: dir.join(CHAIN_FILE),
            signer_key: dir.join(KEY_FILE),
            sm2_signer_chain: dir.join(SM2_CHAIN_FILE),
            sm2_signer_key: dir.join(SM2_KEY_FILE),
            dir,
        }
    }
}

/// Writes a DEVELOPMENT identity for the issuing authority `uscc` (named `name`) into
/// `keys/issuers/<USCC>/`: an RSA signer certified by the key set's CA (`ca.key`) and an SM2
/// signer certified by its SM2 root (`sm2-ca.key`), both with the issuer's name as common name
/// and its USCC as organizational unit. A key set made before OFD (no SM2 root) first gets the
/// SM2 root, seal maker and default SM2 signer. Validity as [`init_dev_keys`], cut at the
/// CA's own end so that every path stays valid.
///
/// Fails with [`KeyError::AlreadyExists`] when the identity exists and `opts.force` is false,
/// and with [`KeyError::Read`] when the key set has no CA.
pub fn init_dev_issuer(
    keys: &Path,
    uscc: &str,
    name: &str,
    now: DateTime<Utc>,
    opts: &DevKeyOptions,
) -> Result<IssuerKeyPaths, KeyError> {
    use super::key_files::KeyDir;
    use pkcs8::DecodePrivateKey as _;
    let paths = IssuerKeyPaths::in_key_dir(keys, uscc);
    if !opts.force {
        for path in
            [&paths.signer_key, &paths.signer_chain, &paths.sm2_signer_key, &paths.sm2_signer_chain]
        {
            if path.exists() {
                return Err(KeyError::AlreadyExists { path: path.clone() });
            }
        }
    }
    let passphrase = opts.passphrase.as_ref();
    let mut rng = SystemRng(ring::rand::SystemRandom::new());
    let ca = KeyDir::read_files(keys.join(CA_KEY_FILE), keys.join(CA_CERT_FILE), passphrase)?;
    let ca_cert = ca.chain.first().cloned().ok_or_else(|| KeyError::BadCertificate {
        path: ca.cert_path.clone(),
        detail: "no certificate".into(),
    })?;
    let not_before = now - Duration::days(1);
    let validity = |ca_cert: &Certificate| -> Result<Validity, KeyError> {
        let ca_end = super::key_files::to_chrono(&ca_cert.tbs_certificate().validity().not_after);
        let not_after = (not_before + Duration::days(opts.validity_days)).min(ca_end);
        Ok(Validity::new(x509_time(not_before)?, x509_time(not_after)?))
    };
    if !keys.join(SM2_CA_KEY_FILE).exists() {
        let sm2_validity = Validity::new(
            x509_time(not_before)?,
            x509_time(not_before + Duration::days(opts.validity_days))?,
        );
        init_dev_sm2_keys(&Sm2DevKeyPaths::in_dir(keys), sm2_validity, passphrase, &mut rng)?;
    }
    let sm2_ca =
        KeyDir::read_files(keys.join(SM2_CA_KEY_FILE), keys.join(SM2_CA_CERT_FILE), passphrase)?;
    let sm2_ca_cert = sm2_ca.chain.first().cloned().ok_or_else(|| KeyError::BadCertificate {
        path: sm2_ca.cert_path.clone(),
        detail: "no certificate".into(),
    })?;
    std::fs::create_dir_all(&paths.dir)
        .map_err(|source| KeyError::Write { path: paths.dir.clone(), source })?;
    let subject = parse_name(&format!(
        "CN={},OU={},O=elicence (DEVELOPMENT ONLY)",
        rfc4514_escape(name),
        rfc4514_escape(uscc)
    ))?;

    // RSA signer of PDF and XML, certified by the RSA CA.
    let ca_key = rsa::PrivateKey::from_pkcs8_der(&ca.pkcs8_der)
        .map_err(|e| generate_error("CA key", e.to_string()))?;
    let ca_signing = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(ca_key);
    let signer_key = rsa::PrivateKey::new(&mut rng, opts.bits)
        .map_err(|e| generate_error("signer key", e.to_string()))?;
    let signer_cert = issue(
        DevProfile {
            subject: subject.clone(),
            issuer: ca_cert.tbs_certificate().subject().clone(),
            ca: false,
            crl_url: opts.crl_url.clone(),
        },
        random_serial(&mut rng)?,
        validity(&ca_cert)?,
        spki_of(signer_key.as_public_key())?,
        &ca_signing,
    )?;
    write_public(
        &paths.signer_chain,
        &format!("{}{}", cert_pem(&signer_cert)?, cert_pem(&ca_cert)?),
    )?;
    write_private(&paths.signer_key, &key_pem(&signer_key, passphrase)?)?;

    // SM2 signer of OFD seals, certified by the SM2 root.
    let sm2_ca_key = sm2::SecretKey::from_pkcs8_der(&sm2_ca.pkcs8_der)
        .map_err(|e| generate_error("SM2 CA key", e.to_string()))?;
    let sm2_key = sm2_secret(&mut rng)?;
    let sm2_cert = issue_sm2(
        DevProfile {
            subject,
            issuer: sm2_ca_cert.tbs_certificate().subject().clone(),
            ca: false,
            crl_url: None,
        },
        random_serial(&mut rng)?,
        validity(&sm2_ca_cert)?,
        sm2_spki(&sm2_key)?,
        &sm2_signing_key(&sm2_ca_key)?,
    )?;
    write_public(
        &paths.sm2_signer_chain,
        &format!("{}{}", cert_pem(&sm2_cert)?, cert_pem(&sm2_ca_cert)?),
    )?;
    write_private(&paths.sm2_signer_key, &sm2_key_pem(&sm2_key, passphrase)?)?;
    Ok(paths)
}

/// Escapes an attribute value for an RFC 4514 distinguished-name string (§2.4).
fn rfc4514_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let leading = i == 0 && (c == ' ' || c == '#');
        if leading || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.insert(out.len() - 1, '\\');
    }
    out
}

/// A random SM2 private key: 32 random bytes, drawn again in the rare case they are not a
/// valid scalar (zero or at least the group order), or when the public key's x coordinate
/// begins with the byte 04 (1 in 256): gmssl (Python), which verifiers in the field use,
/// strips the point's `04` prefix with `lstrip("04")`, which eats such an x's leading digits
/// too, and then cannot verify the key's signatures (seen with `ses_check.py`).
fn sm2_secret(rng: &mut SystemRng) -> Result<sm2::SecretKey, KeyError> {
    for _ in 0..16 {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(&mut bytes[..]).map_err(|e| generate_error("SM2 key", e.to_string()))?;
        if let Ok(key) = sm2::SecretKey::from_slice(&bytes[..]) {
            let spki = sm2_spki(&key)?;
            if spki.subject_public_key.raw_bytes().get(1) != Some(&0x04) {
                return Ok(key);
            }
        }
    }
    Err(generate_error("SM2 key", "no valid scalar in 16 draws".into()))
}

fn sm2_signing_key(key: &sm2::SecretKey) -> Result<sm2::dsa::SigningKey, KeyError> {
    sm2::dsa::SigningKey::new(super::SM2_DEFAULT_DIST_ID, key)
        .map_err(|e| generate_error("SM2 key", e.to_string()))
}

fn sm2_spki(key: &sm2::SecretKey) -> Result<SubjectPublicKeyInfoOwned, KeyError> {
    let der_doc = key
        .public_key()
        .to_public_key_der()
        .map_err(|e| generate_error("SM2 public key", e.to_string()))?;
    der_doc
        .decode_msg::<SubjectPublicKeyInfoOwned>()
        .map_err(|e| generate_error("SM2 public key", e.to_string()))
}

fn sm2_key_pem(
    key: &sm2::SecretKey,
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<String>, KeyError> {
    use sm2::pkcs8::EncodePrivateKey as _;
    let der_doc = key.to_pkcs8_der().map_err(|e| generate_error("PKCS#8", e.to_string()))?;
    match passphrase {
        Some(p) => encrypt_pkcs8_der(der_doc.as_bytes(), p.expose()),
        None => der_doc
            .to_pem("PRIVATE KEY", LineEnding::LF)
            .map_err(|e| generate_error("PKCS#8", e.to_string())),
    }
}

fn issue_sm2(
    profile: DevProfile,
    serial: SerialNumber,
    validity: Validity,
    spki: SubjectPublicKeyInfoOwned,
    issuer_key: &sm2::dsa::SigningKey,
) -> Result<Certificate, KeyError> {
    use sm2::dsa::signature::Signer as _;
    use spki::SignatureBitStringEncoding as _;
    let err = |e: &dyn std::fmt::Display| generate_error("SM2 certificate", e.to_string());
    let mut builder =
        CertificateBuilder::new(profile, serial, validity, spki).map_err(|e| err(&e))?;
    // Not `build::<_, sm2::dsa::Signature>`: that writes the raw 64-byte r‖s as the
    // signatureValue. X.509 (RFC 5758 §3.2 for ECDSA; GB/T 35276-2017 §7.3 for SM2) wants the
    // DER `SEQUENCE { r, s }`, which OpenSSL's `verify` requires.
    let tbs = builder.finalize(issuer_key).map_err(|e| err(&e))?;
    let signature: sm2::dsa::Signature = issuer_key.try_sign(&tbs).map_err(|e| err(&e))?;
    let value = signature.to_der().to_bitstring().map_err(|e| err(&e))?;
    builder.assemble(value, issuer_key).map_err(|e| err(&e))
}

/// Encrypts a plain PKCS#8 PEM (`PRIVATE KEY`) into an `ENCRYPTED PRIVATE KEY` PEM
/// (PBES2, RFC 8018 §6.2, with scrypt and AES-256-CBC).
pub fn encrypt_pkcs8_pem(
    plain_pem: &str,
    passphrase: &[u8],
) -> Result<Zeroizing<String>, KeyError> {
    let (_, der_bytes) = der::pem::decode_vec(plain_pem.as_bytes())
        .map_err(|e| generate_error("encrypted key", e.to_string()))?;
    let der_bytes = Zeroizing::new(der_bytes);
    encrypt_pkcs8_der(&der_bytes, passphrase)
}

fn encrypt_pkcs8_der(der_bytes: &[u8], passphrase: &[u8]) -> Result<Zeroizing<String>, KeyError> {
    use der::Decode;
    let info = pkcs8::PrivateKeyInfoRef::from_der(der_bytes)
        .map_err(|e| generate_error("encrypted key", e.to_string()))?;
    let mut rng = SystemRng(ring::rand::SystemRandom::new());
    let encrypted = info
        .encrypt_with_rng(&mut rng, passphrase)
        .map_err(|e| generate_error("encrypted key", e.to_string()))?;
    encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| generate_error("encrypted key", e.to_string()))
}

fn key_pem(
    key: &rsa::PrivateKey,
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<String>, KeyError> {
    let der_doc = key.to_pkcs8_der().map_err(|e| generate_error("PKCS#8", e.to_string()))?;
    match passphrase {
        Some(p) => encrypt_pkcs8_der(der_doc.as_bytes(), p.expose()),
        None => der_doc
            .to_pem("PRIVATE KEY", LineEnding::LF)
            .map_err(|e| generate_error("PKCS#8", e.to_string())),
    }
}

fn issue(
    profile: DevProfile,
    serial: SerialNumber,
    validity: Validity,
    spki: SubjectPublicKeyInfoOwned,
    issuer_key: &rsa::pkcs1v15::SigningKey<sha2::Sha256>,
) -> Result<Certificate, KeyError> {
    let builder = CertificateBuilder::new(profile, serial, validity, spki)
        .map_err(|e| generate_error("certificate", e.to_string()))?;
    builder
        .build::<_, rsa::pkcs1v15::Signature>(issuer_key)
        .map_err(|e| generate_error("certificate", e.to_string()))
}

/// The certificate policy every certificate made by `keys init` (and a run's development key)
/// carries: "development key, not for production". Under the enterprise number that RFC 5612
/// reserves for documentation and examples (1.3.6.1.4.1.32473), which no real CA issues under.
pub const DEVELOPMENT_KEY_POLICY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.18.1");

/// True when `cert` carries [`DEVELOPMENT_KEY_POLICY`] (a certificate made by `keys init`). A
/// policies extension that does not decode counts as not development (path validation judges
/// it).
pub fn is_development_certificate(cert: &Certificate) -> bool {
    cert.tbs_certificate().filter_extensions::<CertificatePolicies>().filter_map(Result::ok).any(
        |(_, policies)| policies.0.iter().any(|p| p.policy_identifier == DEVELOPMENT_KEY_POLICY),
    )
}

/// Certificate profile for the development CA and signer (RFC 5280 §4.2.1).
struct DevProfile {
    subject: Name,
    issuer: Name,
    ca: bool,
    crl_url: Option<String>,
}

impl BuilderProfile for DevProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut extensions: Vec<Extension> = Vec::new();
        let subject = tbs.subject();
        // RFC 5280 §4.2.1.2: subject key identifier, SHA-1 of the public key.
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        // RFC 5280 §4.2.1.1: authority key identifier = the issuer's subject key identifier.
        let issuer_ski = SubjectKeyIdentifier::try_from(issuer_spk)?;
        extensions.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer_ski.0.as_bytes())?),
                ..Default::default()
            }
            .to_extension(subject, &extensions)?,
        );
        // RFC 5280 §4.2.1.9: basicConstraints, critical.
        extensions.push(
            BasicConstraints {
                ca: self.ca,
                path_len_constraint: if self.ca { Some(0) } else { None },
            }
            .to_extension(subject, &extensions)?,
        );
        // RFC 5280 §4.2.1.3: keyUsage. ETSI EN 319 412-2 §4.3.2: a signing certificate
        // for legal acts carries nonRepudiation (contentCommitment).
        let usage = if self.ca {
            KeyUsages::KeyCertSign | KeyUsages::CRLSign
        } else {
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
        };
        extensions.push(KeyUsage(usage).to_extension(subject, &extensions)?);
        extensions.push(ski.to_extension(subject, &extensions)?);
        // RFC 5280 §4.2.1.13: where the issuer's CRL is (a verifier needs it for the
        // long-term validation data of PAdES B-LT).
        if let Some(url) = &self.crl_url {
            let uri = GeneralName::UniformResourceIdentifier(Ia5String::new(url)?);
            let point = DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri])),
                reasons: None,
                crl_issuer: None,
            };
            extensions.push(CrlDistributionPoints(vec![point]).to_extension(subject, &extensions)?);
        }
        // RFC 5280 §4.2.1.4: certificatePolicies, not critical: this is a development key, which
        // a production registry refuses (see `is_development_certificate`).
        extensions.push(
            CertificatePolicies(vec![PolicyInformation {
                policy_identifier: DEVELOPMENT_KEY_POLICY,
                policy_qualifiers: None,
            }])
            .to_extension(subject, &extensions)?,
        );
        Ok(extensions)
    }
}

/// `ring`'s system RNG behind the `rand_core` 0.10 traits the `rsa` and `pkcs8` crates use.
struct SystemRng(ring::rand::SystemRandom);

/// The system random source failed.
#[derive(Debug)]
struct RngFailure;

impl std::fmt::Display for RngFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("system random number generator failed")
    }
}

impl std::error::Error for RngFailure {}

impl TryRng for SystemRng {
    type Error = RngFailure;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        ring::rand::SecureRandom::fill(&self.0, dst).map_err(|_| RngFailure)
    }
}

impl TryCryptoRng for SystemRng {}

/// A positive 127-bit random serial number (RFC 5280 §4.1.2.2: at most 20 octets, positive).
fn random_serial(rng: &mut SystemRng) -> Result<SerialNumber, KeyError> {
    let mut bytes = [0u8; 16];
    rng.try_fill_bytes(&mut bytes).map_err(|e| generate_error("serial number", e.to_string()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::new(&bytes).map_err(|e| generate_error("serial number", e.to_string()))
}

pub(crate) fn x509_time(at: DateTime<Utc>) -> Result<Time, KeyError> {
    let secs = u64::try_from(at.timestamp())
        .map_err(|_| generate_error("validity", format!("{at} is before 1970")))?;
    let datetime = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|e| generate_error("validity", e.to_string()))?;
    Ok(Time::from(datetime))
}

fn parse_name(text: &str) -> Result<Name, KeyError> {
    Name::from_str(text).map_err(|e| generate_error("name", e.to_string()))
}

fn spki_of(key: &rsa::PublicKey) -> Result<SubjectPublicKeyInfoOwned, KeyError> {
    let der_doc =
        key.to_public_key_der().map_err(|e| generate_error("public key", e.to_string()))?;
    der_doc
        .decode_msg::<SubjectPublicKeyInfoOwned>()
        .map_err(|e| generate_error("public key", e.to_string()))
}

fn cert_pem(cert: &Certificate) -> Result<String, KeyError> {
    cert.to_pem(LineEnding::LF).map_err(|e| generate_error("certificate PEM", e.to_string()))
}

fn generate_error(what: &'static str, detail: String) -> KeyError {
    KeyError::Generate { what, detail }
}

fn write_public(path: &Path, text: &str) -> Result<(), KeyError> {
    std::fs::write(path, text)
        .map_err(|source| KeyError::Write { path: path.to_path_buf(), source })
}

/// Writes a private key readable by the owner only (mode 0600 on Unix), replacing any file.
fn write_private(path: &Path, text: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let err = |source| KeyError::Write { path: path.to_path_buf(), source };
    if path.exists() {
        std::fs::remove_file(path).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_development_sm2_key_has_an_x_coordinate_that_gmssl_would_mangle() {
        // Without the redraw about 1 key in 256 begins x with 04: among 2,000, some would.
        let mut rng = SystemRng(ring::rand::SystemRandom::new());
        for _ in 0..2000 {
            let key = sm2_secret(&mut rng).unwrap();
            let spki = sm2_spki(&key).unwrap();
            let point = spki.subject_public_key.raw_bytes();
            assert_eq!(point.len(), 65);
            assert_eq!(point[0], 0x04, "uncompressed");
            assert_ne!(point[1], 0x04, "x begins with 04");
        }
    }
}
