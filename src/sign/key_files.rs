//! Reading a key directory: the key passphrase, the PKCS#8 private key (plain or encrypted,
//! RFC 5958) and the PEM certificate chain, plus the X.509 facts every signer checks or
//! reports (validity, subject name). Shared by the signer implementations; which key types a
//! signer accepts and how it checks the key against the certificate is the signer's business.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use der::zeroize::Zeroizing;
use der::{Decode, Encode};
use x509_cert::Certificate;

use super::KeyError;

/// Environment variable read by [`passphrase_from_env_or_file`].
pub const PASSPHRASE_ENV: &str = "ELICENCE_KEY_PASSPHRASE";

/// File names inside a key directory.
pub const KEY_FILE: &str = "signer.key";
/// Signer certificate followed by the CA certificate, PEM.
pub const CHAIN_FILE: &str = "signer.pem";
/// The SM2 signer's PKCS#8 key (OFD seals), beside the RSA files.
pub const SM2_KEY_FILE: &str = "sm2-signer.key";
/// The SM2 signer certificate followed by the SM2 CA certificate, PEM.
pub const SM2_CHAIN_FILE: &str = "sm2-signer.pem";

/// A key passphrase; wiped from memory on drop, never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(text: String) -> Passphrase {
        Passphrase(Zeroizing::new(text))
    }

    /// The passphrase bytes, for key encryption and decryption.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Reads the key passphrase from `file` if given (first line, trailing newline removed),
/// else from the environment variable [`PASSPHRASE_ENV`]. Returns `None` when neither is
/// set; fails when the file cannot be read or is empty.
pub fn passphrase_from_env_or_file(file: Option<&Path>) -> Result<Option<Passphrase>, KeyError> {
    if let Some(path) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?,
        );
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(KeyError::EmptyPassphrase { path: path.to_path_buf() });
        }
        return Ok(Some(Passphrase::new(line.to_owned())));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(value) if !value.is_empty() => Ok(Some(Passphrase::new(value))),
        _ => Ok(None),
    }
}

/// The contents of a key directory, read and decoded but not yet checked against each other.
pub(crate) struct KeyDir {
    /// The plain PrivateKeyInfo DER; wiped on drop.
    pub(crate) pkcs8_der: Zeroizing<Vec<u8>>,
    /// The chain as in the file, signer certificate first; may be empty.
    pub(crate) chain: Vec<Certificate>,
    pub(crate) key_path: PathBuf,
    pub(crate) cert_path: PathBuf,
}

impl KeyDir {
    /// Reads `dir/`[`KEY_FILE`] (PKCS#8 PEM, decrypted with `passphrase` when encrypted) and
    /// `dir/`[`CHAIN_FILE`]. Fails when a file is missing or malformed, or the key is
    /// encrypted and `passphrase` is `None` or wrong.
    pub(crate) fn read(dir: &Path, passphrase: Option<&Passphrase>) -> Result<KeyDir, KeyError> {
        KeyDir::read_files(dir.join(KEY_FILE), dir.join(CHAIN_FILE), passphrase)
    }

    /// As [`KeyDir::read`], for a key file and a chain file of any name.
    pub(crate) fn read_files(
        key_path: PathBuf,
        cert_path: PathBuf,
        passphrase: Option<&Passphrase>,
    ) -> Result<KeyDir, KeyError> {
        let key_pem = Zeroizing::new(
            std::fs::read_to_string(&key_path)
                .map_err(|source| KeyError::Read { path: key_path.clone(), source })?,
        );
        let pkcs8_der = decode_private_key_pem(&key_pem, &key_path, passphrase)?;
        let chain_pem = std::fs::read(&cert_path)
            .map_err(|source| KeyError::Read { path: cert_path.clone(), source })?;
        let chain = Certificate::load_pem_chain(&chain_pem).map_err(|e| {
            KeyError::BadCertificate { path: cert_path.clone(), detail: e.to_string() }
        })?;
        Ok(KeyDir { pkcs8_der, chain, key_path, cert_path })
    }

    /// Fails with [`KeyError::CertNotValidAt`] unless `at` is inside `leaf`'s validity.
    pub(crate) fn check_valid_at(leaf: &Certificate, at: DateTime<Utc>) -> Result<(), KeyError> {
        let validity = leaf.tbs_certificate().validity();
        let not_before = to_chrono(&validity.not_before);
        let not_after = to_chrono(&validity.not_after);
        if at < not_before || at > not_after {
            return Err(KeyError::CertNotValidAt { not_before, not_after, at });
        }
        Ok(())
    }

    /// DER encodings of `chain`; fails with [`KeyError::BadCertificate`] naming the chain file.
    pub(crate) fn chain_der(&self) -> Result<Vec<Vec<u8>>, KeyError> {
        self.chain.iter().map(|c| c.to_der()).collect::<Result<Vec<_>, _>>().map_err(|e| {
            KeyError::BadCertificate { path: self.cert_path.clone(), detail: e.to_string() }
        })
    }
}

/// Decodes a PKCS#8 PEM (`PRIVATE KEY` or `ENCRYPTED PRIVATE KEY`, RFC 5958 §2–3) to the
/// plain PrivateKeyInfo DER.
fn decode_private_key_pem(
    pem: &str,
    path: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bad = |detail: String| KeyError::BadPrivateKey { path: path.to_path_buf(), detail };
    let (label, der_bytes) =
        der::pem::decode_vec(pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let der_bytes = Zeroizing::new(der_bytes);
    match label {
        "PRIVATE KEY" => Ok(der_bytes),
        "ENCRYPTED PRIVATE KEY" => {
            let Some(passphrase) = passphrase else {
                return Err(KeyError::PassphraseRequired { path: path.to_path_buf() });
            };
            let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der_bytes)
                .map_err(|e| bad(e.to_string()))?;
            let plain = encrypted
                .decrypt(passphrase.expose())
                .map_err(|_| KeyError::Decrypt { path: path.to_path_buf() })?;
            Ok(Zeroizing::new(plain.as_bytes().to_vec()))
        }
        other => Err(bad(format!("PEM label {other:?}"))),
    }
}

/// Converts an X.509 time to chrono (RFC 5280 §4.1.2.5).
pub(crate) fn to_chrono(time: &x509_cert::time::Time) -> DateTime<Utc> {
    let secs = i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The first commonName (OID 2.5.4.3) of a name, if any.
pub(crate) fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    const CN: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
    for rdn in name.iter_rdn() {
        for atv in rdn.iter() {
            if atv.oid == CN {
                if let Ok(s) = atv.value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
                    return Some(s.as_str().to_owned());
                }
                if let Ok(s) = atv.value.decode_as::<der::asn1::PrintableStringRef<'_>>() {
                    return Some(s.as_str().to_owned());
                }
            }
        }
    }
    None
}

/// The subject label a signer reports: the subject common name, else the whole subject.
pub fn subject_label(cert: &Certificate) -> String {
    common_name(cert.tbs_certificate().subject())
        .unwrap_or_else(|| cert.tbs_certificate().subject().to_string())
}
