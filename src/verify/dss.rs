//! The document security store of a PDF's last revision (`/DSS`, ISO 32000-2 §12.8.4.3; PAdES
//! B-LT, ETSI EN 319 142-1 §5.4) as `verify` reads it: the certificates (`/Certs`) and
//! certificate revocation lists (`/CRLs`) it carries, each one stream of DER.
//!
//! Read through the file's classic cross-reference tables with the bounded object parser of
//! [`super::pdf_update`] (depth and size caps, a stream's data taken by its direct `/Length`).
//! A stream may be stored as it is or `/FlateDecode`d; it is inflated with a cap per stream
//! ([`MAX_DSS_STREAM_BYTES`]) and for the whole store ([`MAX_DSS_BYTES`]), so a flate bomb
//! costs at most that much memory and the work to inflate it, and is a reason, not a crash.
//! At most [`MAX_DSS_ITEMS`] streams are read. Nothing else in the file is inflated.
//!
//! The DSS is not covered by any signature: whoever holds the file can remove or replace it.
//! So what it says may only make a verdict stricter (a certificate its issuer's CRL lists as
//! revoked), never looser; and a file without one, or with one that cannot be read, is judged
//! as before (the reason is reported). How its CRLs are used is [`super::path`]'s business.

use openssl::x509::{X509, X509Crl};
use x509_cert::certificate::Rfc5280;
use x509_cert::crl::CertificateList;

use super::pdf_update::{IndirectObject, Value, last_revision, read_object};

/// Most certificates and CRLs read from one DSS.
pub const MAX_DSS_ITEMS: usize = 512;
/// Largest certificate or CRL read from one DSS stream, inflated (as `sign::ltv` reads them).
pub const MAX_DSS_STREAM_BYTES: usize = 16 << 20;
/// Most bytes read from all the streams of one DSS together, inflated.
pub const MAX_DSS_BYTES: usize = 32 << 20;

/// Why a PDF's DSS could not be read. Facts, printed with [`std::fmt::Display`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DssError {
    /// The cross-reference chain, the catalog or the DSS dictionary is not what is read
    /// (a cross-reference stream, an object in an object stream, a broken object…).
    #[error("{detail}")]
    Structure { detail: String },
    /// A DSS entry is stored with a filter other than `/FlateDecode` without parameters.
    #[error("object {object}: filter {filter} is not read")]
    Filter { object: u32, filter: String },
    /// A stream inflates beyond what is read (a flate bomb, or simply too large).
    #[error("object {object} inflates beyond {limit} bytes")]
    TooLarge { object: u32, limit: usize },
    /// A stream does not inflate.
    #[error("object {object} does not inflate: {detail}")]
    Inflate { object: u32, detail: String },
    /// More entries than [`MAX_DSS_ITEMS`].
    #[error("more than {limit} certificates and CRLs")]
    TooMany { limit: usize },
    /// A `/CRLs` entry is not a DER CRL, or a `/Certs` entry not a DER certificate.
    #[error("object {object} is not a {what}: {detail}")]
    NotDer { object: u32, what: &'static str, detail: String },
}

fn structure(detail: impl Into<String>) -> DssError {
    DssError::Structure { detail: detail.into() }
}

/// A CRL of the DSS, parsed by OpenSSL (signature, lookup) and by `x509-cert` (extensions).
pub struct DssCrl {
    pub crl: X509Crl,
    /// The object it was read from.
    pub object: u32,
    /// The issuer name, DER (compared with an issuer certificate's subject byte for byte).
    pub issuer_der: Vec<u8>,
    /// Not a complete, direct CRL, or one with a critical extension not understood
    /// (RFC 5280 §5.2, §6.3.3): why it is not used.
    pub unusable: Option<String>,
}

impl std::fmt::Debug for DssCrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DssCrl")
            .field("object", &self.object)
            .field("unusable", &self.unusable)
            .finish_non_exhaustive()
    }
}

/// What a DSS carries.
#[derive(Default)]
pub struct Dss {
    /// Certificates: untrusted, at most intermediates to build a path with.
    pub certs: Vec<X509>,
    pub crls: Vec<DssCrl>,
}

impl std::fmt::Debug for Dss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dss").field("certs", &self.certs.len()).field("crls", &self.crls).finish()
    }
}

/// The DSS of the last revision of `bytes`: `Ok(None)` when the catalog has none (a file
/// without the bytes `/DSS` anywhere is not parsed at all). Fails, with the reason, when the
/// file or the store is not read (see the module documentation); never panics.
pub fn read_dss(bytes: &[u8]) -> Result<Option<Dss>, DssError> {
    if !bytes.windows(4).any(|w| w == b"/DSS") {
        return Ok(None);
    }
    let revision = last_revision(bytes).map_err(structure)?;
    let object = |number: u32| -> Result<IndirectObject, DssError> {
        let at = revision.objects.get(&number).ok_or_else(|| {
            structure(format!("object {number} is not in a cross-reference table"))
        })?;
        read_object(bytes, *at, number).map_err(structure)
    };
    let root = match revision.trailer.get(b"Root") {
        Some(Value::Ref(n, _)) => *n,
        _ => return Err(structure("the trailer has no /Root")),
    };
    let catalog = object(root)?.value;
    let dss = match catalog.get(b"DSS") {
        None => return Ok(None),
        Some(Value::Ref(n, _)) => object(*n)?.value,
        Some(direct @ Value::Dict(_)) => direct.clone(),
        Some(_) => return Err(structure("/DSS is not a dictionary")),
    };
    if !matches!(dss, Value::Dict(_)) {
        return Err(structure("/DSS is not a dictionary"));
    }
    let entries = |key: &[u8]| -> Result<Vec<u32>, DssError> {
        let name = String::from_utf8_lossy(key).into_owned();
        let array = match dss.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::Ref(n, _)) => object(*n)?.value,
            Some(direct) => direct.clone(),
        };
        let Value::Array(items) = array else {
            return Err(structure(format!("/DSS /{name} is not an array")));
        };
        items
            .iter()
            .map(|item| match item {
                Value::Ref(n, _) => Ok(*n),
                _ => Err(structure(format!("/DSS /{name} holds something else than streams"))),
            })
            .collect()
    };
    let cert_objects = entries(b"Certs")?;
    let crl_objects = entries(b"CRLs")?;
    if cert_objects.len() + crl_objects.len() > MAX_DSS_ITEMS {
        return Err(DssError::TooMany { limit: MAX_DSS_ITEMS });
    }
    let mut budget = MAX_DSS_BYTES;
    let mut found = Dss::default();
    for number in cert_objects {
        let der = stream_data(bytes, number, &object(number)?, &mut budget)?;
        let cert = X509::from_der(&der).map_err(|e| DssError::NotDer {
            object: number,
            what: "certificate",
            detail: e.to_string(),
        })?;
        found.certs.push(cert);
    }
    for number in crl_objects {
        let der = stream_data(bytes, number, &object(number)?, &mut budget)?;
        found.crls.push(parse_crl(number, &der)?);
    }
    Ok(Some(found))
}

/// The data of stream object `number`, decoded and within `budget` (which it uses up).
fn stream_data(
    bytes: &[u8],
    number: u32,
    object: &IndirectObject,
    budget: &mut usize,
) -> Result<Vec<u8>, DssError> {
    let range = object
        .stream
        .clone()
        .ok_or_else(|| structure(format!("object {number} of the DSS is not a stream")))?;
    let raw = bytes.get(range).unwrap_or_default();
    let limit = MAX_DSS_STREAM_BYTES.min(*budget);
    let flate = match object.value.get(b"Filter") {
        None | Some(Value::Null) => false,
        Some(Value::Name(n)) if n == b"FlateDecode" => true,
        Some(Value::Array(filters)) if matches!(filters.as_slice(), [Value::Name(n)] if n == b"FlateDecode") => {
            true
        }
        Some(Value::Array(filters)) if filters.is_empty() => false,
        Some(other) => {
            return Err(DssError::Filter { object: number, filter: format!("{other:?}") });
        }
    };
    // Predictors (ISO 32000-1 §7.4.4.4) are for images and cross-reference streams, never DER.
    if !matches!(object.value.get(b"DecodeParms"), None | Some(Value::Null)) {
        return Err(DssError::Filter { object: number, filter: "with /DecodeParms".into() });
    }
    let data = if flate {
        inflate_bounded(raw, limit).map_err(|e| match e {
            Inflated::TooLarge => DssError::TooLarge { object: number, limit },
            Inflated::Broken(detail) => DssError::Inflate { object: number, detail },
        })?
    } else if raw.len() > limit {
        return Err(DssError::TooLarge { object: number, limit });
    } else {
        raw.to_vec()
    };
    *budget = budget.saturating_sub(data.len());
    Ok(data)
}

enum Inflated {
    TooLarge,
    Broken(String),
}

/// Inflates the zlib stream `data` (ISO 32000-1 §7.4.4: FlateDecode is zlib, RFC 1950) to at
/// most `limit` bytes: reading stops one byte past it, so neither memory nor work depend on
/// what the stream would inflate to.
fn inflate_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, Inflated> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(data)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| Inflated::Broken(e.to_string()))?;
    if out.len() > limit { Err(Inflated::TooLarge) } else { Ok(out) }
}

/// RFC 5280 §5.2.3 CRL number and §5.2.1 authority key identifier: extensions of a complete,
/// direct CRL that change nothing about its scope.
const OID_CRL_NUMBER: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.5.29.20");
const OID_AUTHORITY_KEY_ID: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.5.29.35");
/// RFC 5280 §5.2.5 issuing distribution point (a partitioned or indirect CRL) and §5.2.4 delta
/// CRL indicator: a CRL that is not the complete list of its issuer's revocations.
const OID_ISSUING_DISTRIBUTION_POINT: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.5.29.28");
const OID_DELTA_CRL_INDICATOR: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.5.29.27");

fn parse_crl(object: u32, der: &[u8]) -> Result<DssCrl, DssError> {
    use der::{Decode as _, Encode as _};
    let not_der = |detail: String| DssError::NotDer { object, what: "CRL", detail };
    let crl = X509Crl::from_der(der).map_err(|e| not_der(e.to_string()))?;
    let parsed = CertificateList::<Rfc5280>::from_der(der).map_err(|e| not_der(e.to_string()))?;
    let tbs = &parsed.tbs_cert_list;
    let issuer_der = tbs.issuer.to_der().map_err(|e| not_der(e.to_string()))?;
    let extensions = tbs.crl_extensions.as_deref().unwrap_or_default();
    let unusable = if extensions.iter().any(|e| e.extn_id == OID_ISSUING_DISTRIBUTION_POINT) {
        Some("it is a partitioned or indirect CRL (issuingDistributionPoint)".to_owned())
    } else if extensions.iter().any(|e| e.extn_id == OID_DELTA_CRL_INDICATOR) {
        Some("it is a delta CRL".to_owned())
    } else {
        extensions
            .iter()
            .find(|e| e.critical && ![OID_CRL_NUMBER, OID_AUTHORITY_KEY_ID].contains(&e.extn_id))
            .map(|e| format!("it has the critical extension {} (not understood)", e.extn_id))
    };
    Ok(DssCrl { crl, object, issuer_der, unusable })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflation_stops_past_the_limit() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &vec![0u8; 1 << 20]).unwrap();
        let small = z.finish().unwrap();
        assert!(matches!(inflate_bounded(&small, 1 << 20), Ok(v) if v.len() == 1 << 20));
        assert!(matches!(inflate_bounded(&small, (1 << 20) - 1), Err(Inflated::TooLarge)));
        assert!(matches!(inflate_bounded(b"not zlib", 100), Err(Inflated::Broken(_))));
    }

    #[test]
    fn a_file_without_a_dss_is_not_parsed() {
        assert!(matches!(read_dss(b"%PDF-1.7 garbage"), Ok(None)));
        // With the bytes but no readable structure: a reason, not a panic.
        assert!(matches!(read_dss(b"%PDF-1.7 /DSS 1 0 R"), Err(DssError::Structure { .. })));
    }
}
