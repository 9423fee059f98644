//! Certificate path validation for `verify` (RFC 5280 §6), delegated to OpenSSL's
//! `X509_verify_cert` rather than walked by hand: signatures along the path, names,
//! `basicConstraints` (CA flag and `pathlen`) of every issuer, validity of every certificate
//! at the validation time, and unknown critical extensions. On top of that, the rules
//! OpenSSL leaves to the application for a document signer: the signer certificate is not a
//! CA (a CA key signing licences is refused) and its key usage names `digitalSignature` or
//! `nonRepudiation` (ETSI EN 319 412-2 §4.3.2; a certificate without the extension is refused
//! too, since it would allow any use).
//!
//! With CRLs ([`TrustAnchors::with_crls`]), OpenSSL also checks every certificate of the path
//! against its issuer's CRL (`CRL_CHECK | CRL_CHECK_ALL`): revoked, or no current CRL for an
//! issuer, is a rejected path.
//!
//! The validation time is the caller's: the current time unless a trusted timestamp proves
//! an earlier one, never the signer's own claim (`/M`, CMS signingTime).

use chrono::{DateTime, Utc};
use der::Encode;
use openssl::ssl::SslFiletype;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509StoreContext};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};

use super::TrustAnchors;

/// Why a signer certificate has no valid path at the validation time. Facts, not sentences:
/// the report prints them with [`std::fmt::Display`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The signer certificate is a CA certificate (`basicConstraints cA TRUE`).
    #[error("signer certificate {subject} is a CA certificate, not a document signer")]
    SignerIsCa { subject: String },
    /// The signer certificate's key usage allows neither `digitalSignature` nor
    /// `nonRepudiation`, or the extension is missing.
    #[error("signer certificate {subject} has no digitalSignature or nonRepudiation key usage")]
    KeyUsage { subject: String },
    /// OpenSSL rejected the path: its verify error at this depth (0 = the signer).
    #[error("path rejected at depth {depth}: {reason} (at {at})")]
    Rejected { depth: u32, reason: String, at: DateTime<Utc> },
    /// A certificate could not be handed to OpenSSL.
    #[error("certificate cannot be read by OpenSSL: {detail}")]
    Unreadable { detail: String },
}

/// Checks that `signer` has a valid path to one of `trust` at `at`, using the certificates
/// of `pool` (those shipped with the signature) as untrusted intermediates.
pub fn validate_signer(
    signer: &Certificate,
    pool: &[Certificate],
    trust: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<(), PathError> {
    let subject = super::subject_label(signer);
    let extension = |e: der::Error| PathError::Unreadable { detail: e.to_string() };
    let tbs = signer.tbs_certificate();
    if tbs.get_extension::<BasicConstraints>().map_err(extension)?.is_some_and(|(_, bc)| bc.ca) {
        return Err(PathError::SignerIsCa { subject });
    }
    let usage = tbs.get_extension::<KeyUsage>().map_err(extension)?;
    let signs = usage.is_some_and(|(_, KeyUsage(flags))| {
        flags.contains(KeyUsages::DigitalSignature) || flags.contains(KeyUsages::NonRepudiation)
    });
    if !signs {
        return Err(PathError::KeyUsage { subject });
    }
    openssl_path(signer, pool, trust, at)
}

fn to_openssl(cert: &Certificate) -> Result<X509, PathError> {
    let der = cert.to_der().map_err(|e| PathError::Unreadable { detail: e.to_string() })?;
    X509::from_der(&der).map_err(|e| PathError::Unreadable { detail: e.to_string() })
}

fn openssl_path(
    signer: &Certificate,
    pool: &[Certificate],
    trust: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<(), PathError> {
    let unreadable =
        |e: openssl::error::ErrorStack| PathError::Unreadable { detail: e.to_string() };
    let mut store = X509StoreBuilder::new().map_err(unreadable)?;
    for (anchor, _) in &trust.anchors {
        store.add_cert(to_openssl(anchor)?).map_err(unreadable)?;
    }
    // X509_VERIFY_PARAM_set_time also sets X509_V_FLAG_USE_CHECK_TIME.
    let mut param = X509VerifyParam::new().map_err(unreadable)?;
    param.set_time(at.timestamp());
    if !trust.crls.is_empty() {
        // Every certificate of the path, not only the signer, needs its issuer's CRL.
        let lookup = store.add_lookup(X509Lookup::file()).map_err(unreadable)?;
        for crl in &trust.crls {
            let kind = if crl.pem { SslFiletype::PEM } else { SslFiletype::ASN1 };
            lookup.load_crl_file(&crl.path, kind).map_err(unreadable)?;
        }
        param
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(unreadable)?;
    }
    store.set_param(&param).map_err(unreadable)?;
    let store = store.build();
    let mut untrusted = Stack::new().map_err(unreadable)?;
    for cert in pool.iter().filter(|c| *c != signer) {
        untrusted.push(to_openssl(cert)?).map_err(unreadable)?;
    }
    let leaf = to_openssl(signer)?;
    let mut context = X509StoreContext::new().map_err(unreadable)?;
    let outcome = context
        .init(&store, &leaf, &untrusted, |ctx| {
            let ok = ctx.verify_cert()?;
            Ok((ok, ctx.error_depth(), ctx.error().error_string()))
        })
        .map_err(unreadable)?;
    match outcome {
        (true, _, _) => Ok(()),
        (false, depth, reason) => Err(PathError::Rejected { depth, reason: reason.into(), at }),
    }
}
