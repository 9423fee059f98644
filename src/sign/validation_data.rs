//! Validation data for PAdES B-LT (ETSI EN 319 142-1 §5.4): the certificates of every path a
//! verifier has to build (the signer's, the TSA's) and, for each certificate that is not a
//! trust anchor, a current CRL of its issuer (RFC 5280 §5) that does not list it.
//!
//! A CRL comes from the certificate's CRL distribution point (RFC 5280 §4.2.1.13, `http://`
//! only, fetched once per URL with a timeout and a size cap) or, for a certificate without one,
//! from a CRL file of the key set (`elicence keys crl KEYS --out KEYS/ca.crl`). Every CRL is
//! checked before it is kept: signed by the certificate's issuer, current at the signing time,
//! and not listing the certificate. A certificate whose CRL cannot be obtained is an error
//! naming it: a file is never silently issued at a weaker level than asked for.
//!
//! Gathered once per run and issuer: every licence of one issuer carries the same bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use der::Encode;
use openssl::x509::{X509, X509Crl};
use x509_cert::Certificate;
use x509_cert::ext::pkix::CrlDistributionPoints;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

/// Largest CRL fetched from a distribution point.
const MAX_CRL_BYTES: u64 = 16 << 20;
/// How long fetching one CRL may take in all.
pub const CRL_FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// The key set's CRL file consulted for certificates without a distribution point.
pub const KEY_SET_CRL_FILE: &str = "ca.crl";

/// Certificates and CRLs (DER) for a `/DSS` (ISO 32000-2 §12.8.4.3), without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationData {
    pub certs: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
}

impl ValidationData {
    fn add_cert(&mut self, der: Vec<u8>) {
        if !self.certs.contains(&der) {
            self.certs.push(der);
        }
    }

    fn add_crl(&mut self, der: Vec<u8>) {
        if !self.crls.contains(&der) {
            self.crls.push(der);
        }
    }
}

/// Why validation data could not be gathered. Each names the certificate (subject) concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationDataError {
    /// No certificate of the chain issued this one (and it is not self-issued).
    #[error("certificate {subject}: its issuer {issuer} is not in the chain")]
    NoIssuer { subject: String, issuer: String },
    /// No CRL distribution point and no CRL of its issuer in the key set.
    #[error(
        "certificate {subject}: no CRL can be obtained (no http:// CRL distribution point, and \
         no {KEY_SET_CRL_FILE} of its issuer in the key set)"
    )]
    NoCrl { subject: String },
    /// Fetching a CRL from its distribution point failed.
    #[error("certificate {subject}: CRL {url} cannot be fetched: {detail}")]
    Fetch { subject: String, url: String, detail: String },
    /// A CRL is unreadable, not signed by the issuer, or not current.
    #[error("certificate {subject}: CRL from {source_name} {problem}")]
    BadCrl { subject: String, source_name: String, problem: String },
    /// The certificate is listed as revoked.
    #[error("certificate {subject} is revoked (CRL from {source_name})")]
    Revoked { subject: String, source_name: String },
    /// A certificate cannot be handled by OpenSSL.
    #[error("certificate {subject} cannot be read: {detail}")]
    Unreadable { subject: String, detail: String },
    /// A key set CRL file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

/// Fetches and keeps CRLs by URL for a run (a CRL distribution point is fetched once).
#[derive(Debug)]
pub struct CrlSource {
    agent: ureq::Agent,
    fetched: Mutex<HashMap<String, Vec<u8>>>,
    /// CRL files of the key set, read and parsed once (kept as DER).
    key_set: Vec<(PathBuf, Vec<u8>)>,
}

impl CrlSource {
    /// Fetches over HTTP and, for certificates without a distribution point, looks at the CRL
    /// files of `key_set_dirs` ([`KEY_SET_CRL_FILE`], where present).
    pub fn new(key_set_dirs: &[&Path]) -> Result<CrlSource, ValidationDataError> {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CRL_FETCH_TIMEOUT))
            .user_agent(concat!("elicence/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let mut key_set = Vec::new();
        for dir in key_set_dirs {
            let path = dir.join(KEY_SET_CRL_FILE);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ValidationDataError::Read { path, source }),
            };
            let crl = parse_crl(&bytes).map_err(|problem| ValidationDataError::BadCrl {
                subject: "(key set)".into(),
                source_name: path.display().to_string(),
                problem,
            })?;
            let der = crl.to_der().map_err(|e| ValidationDataError::BadCrl {
                subject: "(key set)".into(),
                source_name: path.display().to_string(),
                problem: e.to_string(),
            })?;
            key_set.push((path, der));
        }
        Ok(CrlSource { agent, fetched: Mutex::new(HashMap::new()), key_set })
    }

    fn fetch(&self, subject: &str, url: &str) -> Result<Vec<u8>, ValidationDataError> {
        if let Some(hit) = self.fetched.lock().ok().and_then(|m| m.get(url).cloned()) {
            return Ok(hit);
        }
        let failed = |detail: String| ValidationDataError::Fetch {
            subject: subject.to_owned(),
            url: url.to_owned(),
            detail,
        };
        let mut response = self.agent.get(url).call().map_err(|e| failed(e.to_string()))?;
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_CRL_BYTES)
            .read_to_vec()
            .map_err(|e| failed(e.to_string()))?;
        if let Ok(mut map) = self.fetched.lock() {
            map.insert(url.to_owned(), body.clone());
        }
        Ok(body)
    }
}

fn parse_crl(bytes: &[u8]) -> Result<X509Crl, String> {
    let parsed = if bytes.starts_with(b"-----BEGIN") {
        X509Crl::from_pem(bytes)
    } else {
        X509Crl::from_der(bytes)
    };
    parsed.map_err(|e| format!("is not a CRL ({e})"))
}

/// Gathers the validation data of `chains` (each: a leaf first, then its issuers, as a
/// signature or a timestamp token carries them) at `at`: every certificate, and a checked CRL
/// for each one that is not self-issued.
pub fn gather(
    chains: &[&[Certificate]],
    crls: &CrlSource,
    at: DateTime<Utc>,
) -> Result<ValidationData, ValidationDataError> {
    let mut data = ValidationData::default();
    let pool: Vec<&Certificate> = chains.iter().flat_map(|c| c.iter()).collect();
    for cert in &pool {
        let subject = crate::sign::key_files::common_name(cert.tbs_certificate().subject())
            .unwrap_or_else(|| cert.tbs_certificate().subject().to_string());
        let unreadable =
            |detail: String| ValidationDataError::Unreadable { subject: subject.clone(), detail };
        let der = cert.to_der().map_err(|e| unreadable(e.to_string()))?;
        data.add_cert(der.clone());
        let tbs = cert.tbs_certificate();
        if tbs.issuer() == tbs.subject() {
            continue; // a root: a trust anchor, not checked against a CRL
        }
        let own = X509::from_der(&der).map_err(|e| unreadable(e.to_string()))?;
        let issuer = pool
            .iter()
            .filter(|c| c.tbs_certificate().subject() == tbs.issuer())
            .filter_map(|c| c.to_der().ok().and_then(|d| X509::from_der(&d).ok()))
            .find(|c| c.public_key().and_then(|k| own.verify(&k)).unwrap_or(false))
            .ok_or_else(|| ValidationDataError::NoIssuer {
                subject: subject.clone(),
                issuer: tbs.issuer().to_string(),
            })?;
        let (source_name, crl_der) = match distribution_points(cert).first() {
            Some(url) => (url.clone(), crls.fetch(&subject, url)?),
            None => {
                let issuer_key = issuer.public_key().map_err(|e| unreadable(e.to_string()))?;
                let (path, der) = crls
                    .key_set
                    .iter()
                    .find(|(_, der)| {
                        X509Crl::from_der(der)
                            .and_then(|crl| crl.verify(&issuer_key))
                            .unwrap_or(false)
                    })
                    .ok_or_else(|| ValidationDataError::NoCrl { subject: subject.clone() })?;
                (path.display().to_string(), der.clone())
            }
        };
        let bad = |problem: String| ValidationDataError::BadCrl {
            subject: subject.clone(),
            source_name: source_name.clone(),
            problem,
        };
        let crl = parse_crl(&crl_der).map_err(bad)?;
        let issuer_key = issuer.public_key().map_err(|e| unreadable(e.to_string()))?;
        if !crl.verify(&issuer_key).unwrap_or(false) {
            return Err(bad("is not signed by the certificate's issuer".into()));
        }
        let now =
            openssl::asn1::Asn1Time::from_unix(at.timestamp()).map_err(|e| bad(e.to_string()))?;
        if crl.last_update() > &*now {
            return Err(bad("is not yet valid".into()));
        }
        match crl.next_update() {
            Some(next) if next > &*now => {}
            Some(_) => return Err(bad("is out of date (nextUpdate passed)".into())),
            None => return Err(bad("has no nextUpdate".into())),
        }
        if !matches!(crl.get_by_cert(&own), openssl::x509::CrlStatus::NotRevoked) {
            return Err(ValidationDataError::Revoked { subject, source_name });
        }
        // Kept as DER (a PEM key-set file is converted).
        data.add_crl(crl.to_der().map_err(|e| unreadable(e.to_string()))?);
    }
    Ok(data)
}

/// The `http://` URIs of a certificate's CRL distribution points (full names).
pub fn distribution_points(cert: &Certificate) -> Vec<String> {
    let Ok(Some((_, CrlDistributionPoints(points)))) =
        cert.tbs_certificate().get_extension::<CrlDistributionPoints>()
    else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|p| match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str().to_owned()),
            _ => None,
        })
        .filter(|uri| uri.to_ascii_lowercase().starts_with("http://"))
        .collect()
}
