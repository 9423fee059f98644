//! Certificate revocation lists (RFC 5280 §5) of a development CA (`elicence keys crl`): the
//! CA of a key set signs a v2 CRL listing every certificate revoked so far, with an authority
//! key identifier and an increasing CRL number. What was revoked, and the last number, are
//! kept beside the CA (`revoked.txt`, `crlnumber`) so that each new CRL is complete.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use der::asn1::{BitString, OctetString, Uint};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, SubjectKeyIdentifier};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::serial_number::SerialNumber;

use super::KeyError;
use super::key_files::Passphrase;
use super::keys::{CA_CERT_FILE, CA_KEY_FILE, x509_time};
use super::rsa::RsaSigner;
use super::signer::Signer;

/// Revoked certificates of the CA, one per line: `SERIAL-HEX RFC3339-TIME`.
pub const REVOKED_FILE: &str = "revoked.txt";
/// The number of the last CRL written.
pub const CRL_NUMBER_FILE: &str = "crlnumber";

/// What [`write_crl`] made.
#[derive(Debug, Clone)]
pub struct CrlMade {
    /// The CRL, DER.
    pub der: Vec<u8>,
    pub number: u64,
    /// Serial numbers (hex) of every certificate it lists.
    pub revoked: Vec<String>,
    pub this_update: DateTime<Utc>,
    pub next_update: DateTime<Utc>,
}

fn generate(detail: impl std::fmt::Display) -> KeyError {
    KeyError::Generate { what: "CRL", detail: detail.to_string() }
}

fn read_text(path: &Path) -> Result<Option<String>, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Read { path: path.to_path_buf(), source }),
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), KeyError> {
    std::fs::write(path, text)
        .map_err(|source| KeyError::Write { path: path.to_path_buf(), source })
}

/// The first certificate of the PEM file `path`.
fn read_certificate(path: &Path) -> Result<Certificate, KeyError> {
    let pem = std::fs::read(path).map_err(|source| KeyError::Read { path: path.into(), source })?;
    Certificate::load_pem_chain(&pem).ok().and_then(|chain| chain.into_iter().next()).ok_or_else(
        || KeyError::BadCertificate { path: path.into(), detail: "no certificate".into() },
    )
}

/// Whether `ca`'s key made `cert`'s signature (development CAs share their name, so the name
/// alone does not say which CA issued a certificate). Checked by OpenSSL.
fn signed_by(cert: &Certificate, ca: &Certificate) -> bool {
    let parse =
        |c: &Certificate| c.to_der().ok().and_then(|d| openssl::x509::X509::from_der(&d).ok());
    match (parse(cert), parse(ca)) {
        (Some(cert), Some(ca)) => {
            ca.public_key().and_then(|key| cert.verify(&key)).unwrap_or(false)
        }
        _ => false,
    }
}

/// Signs a CRL with the CA of the key set `dir` (its `ca.key` and `ca.pem`) at `at`, valid for
/// `next_update` after it, listing every certificate revoked before plus those of `revoke`
/// (PEM files; each must be issued by this CA), revoked at `at`.
pub fn write_crl(
    dir: &Path,
    passphrase: Option<&Passphrase>,
    revoke: &[PathBuf],
    at: DateTime<Utc>,
    next_update: Duration,
) -> Result<CrlMade, KeyError> {
    let ca =
        RsaSigner::load_files(&dir.join(CA_KEY_FILE), &dir.join(CA_CERT_FILE), passphrase, at)?;
    let ca_cert = ca.certificate();
    let issuer = ca_cert.tbs_certificate().subject().clone();

    // Every revocation so far, then the new ones (a certificate revoked twice keeps its date).
    let revoked_path = dir.join(REVOKED_FILE);
    let mut revoked: Vec<(String, DateTime<Utc>)> = Vec::new();
    for (n, line) in read_text(&revoked_path)?.unwrap_or_default().lines().enumerate() {
        let bad = || KeyError::BadCertificate {
            path: revoked_path.clone(),
            detail: format!("line {}: expected `SERIAL-HEX RFC3339-TIME`", n + 1),
        };
        let (serial, time) = line.split_once(' ').ok_or_else(bad)?;
        let time = DateTime::parse_from_rfc3339(time).map_err(|_| bad())?.with_timezone(&Utc);
        revoked.push((serial.to_owned(), time));
    }
    for path in revoke {
        let cert = read_certificate(path)?;
        if *cert.tbs_certificate().issuer() != issuer || !signed_by(&cert, ca_cert) {
            return Err(KeyError::BadCertificate {
                path: path.clone(),
                detail: format!("not issued by the CA in {}", dir.display()),
            });
        }
        let serial = hex::encode(cert.tbs_certificate().serial_number().as_bytes());
        if !revoked.iter().any(|(s, _)| *s == serial) {
            revoked.push((serial, at));
        }
    }
    let number = read_text(&dir.join(CRL_NUMBER_FILE))?
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0)
        + 1;

    let revoked_certs: Vec<RevokedCert> = revoked
        .iter()
        .map(|(serial, time)| {
            let bytes = hex::decode(serial).map_err(generate)?;
            Ok(RevokedCert {
                serial_number: SerialNumber::new(&bytes).map_err(generate)?,
                revocation_date: x509_time(*time)?,
                crl_entry_extensions: None,
            })
        })
        .collect::<Result<_, KeyError>>()?;
    // RFC 5280 §5.2.1 and §5.2.3: authority key identifier and CRL number, both required.
    let key_id = match ca_cert.tbs_certificate().get_extension::<SubjectKeyIdentifier>() {
        Ok(Some((_, ski))) => ski.0,
        _ => {
            let spki = ca_cert.tbs_certificate().subject_public_key_info();
            let owned = spki.to_der().map_err(generate)?;
            let spki_ref = spki::SubjectPublicKeyInfoRef::from_der(&owned).map_err(generate)?;
            SubjectKeyIdentifier::try_from(spki_ref).map_err(generate)?.0
        }
    };
    let mut extensions: Vec<Extension> = Vec::new();
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id.as_bytes()).map_err(generate)?),
        ..Default::default()
    };
    extensions.push(aki.to_extension(&issuer, &extensions).map_err(generate)?);
    let crl_number = CrlNumber(Uint::new(&number.to_be_bytes()).map_err(generate)?);
    extensions.push(crl_number.to_extension(&issuer, &extensions).map_err(generate)?);

    let next = at + next_update;
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: ca.algorithm().algorithm_identifier(),
        issuer,
        this_update: x509_time(at)?,
        next_update: Some(x509_time(next)?),
        revoked_certificates: (!revoked_certs.is_empty()).then_some(revoked_certs),
        crl_extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(generate)?;
    let signature = ca.sign(&tbs_der).map_err(generate)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: ca.algorithm().algorithm_identifier(),
        signature: BitString::from_bytes(&signature).map_err(generate)?,
    };
    let der = crl.to_der().map_err(generate)?;

    let lines: String = revoked.iter().map(|(s, t)| format!("{s} {}\n", t.to_rfc3339())).collect();
    write_text(&revoked_path, &lines)?;
    write_text(&dir.join(CRL_NUMBER_FILE), &format!("{number}\n"))?;
    Ok(CrlMade {
        der,
        number,
        revoked: revoked.into_iter().map(|(s, _)| s).collect(),
        this_update: at,
        next_update: next,
    })
}
