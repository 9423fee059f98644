//! Certificate path validation for `verify` (RFC 5280 §6), delegated to OpenSSL's
//! `X509_verify_cert` rather than walked by hand: signatures along the path, names,
//! `basicConstraints` (CA flag and `pathlen`) of every issuer, validity of every certificate
//! at the validation time, and unknown critical extensions. On top of that, the rules
//! OpenSSL leaves to the application for a document signer: the signer certificate is not a
//! CA (a CA key signing licences is refused) and its key usage names `digitalSignature` or
//! `nonRepudiation` (ETSI EN 319 412-2 §4.3.2; a certificate without the extension is refused
//! too, since it would allow any use).
//!
//! The validation time is the caller's: the current time unless a trusted timestamp proves
//! an earlier one, never the signer's own claim (`/M`, CMS signingTime).
//!
//! # Revocation
//!
//! **CRLs the verifier gives** (`verify --crl`, the key set's; [`TrustAnchors::with_crls`]):
//! OpenSSL checks every certificate of the path against its issuer's CRL (`CRL_CHECK |
//! CRL_CHECK_ALL`): revoked, or no current CRL for an issuer, is a rejected path. A strict
//! profile the verifier chose. Reported as [`RevocationSource::Given`].
//!
//! **CRLs a PDF carries in its `/DSS`** ([`super::dss`]; PAdES B-LT, B-LTA) are unsigned data
//! from the file, so they may only make a verdict stricter, and a file without them is judged
//! as before (no CRL anywhere: no revocation check). They are used after OpenSSL has validated
//! the path (without them), certificate by certificate, with these rules:
//!
//! - A DSS CRL counts for a certificate only if its issuer name is the certificate's issuer's
//!   subject, byte for byte, and its signature verifies with the key of the issuer
//!   certificate of the validated path (which must allow `cRLSign` when it has a key usage;
//!   RFC 5280 §6.3.3 (f), (g)). A CRL of another CA with the same name (development CAs share
//!   theirs) is ignored: it cannot make a path untrusted, nor pass for a check.
//! - Only complete, direct CRLs: no issuingDistributionPoint, no deltaCRLIndicator, no
//!   critical extension other than those RFC 5280 §5.2 defines for them.
//! - Time, relative to the validation time `T` (RFC 5280 §5.1.2.4–5; pyHanko's default
//!   "freshness" rule in `pyhanko_certvalidator`):
//!   - `thisUpdate ≤ T < nextUpdate`: the CRL is *current*. If it lists the certificate the
//!     path is rejected ("certificate revoked"), else the certificate's revocation was
//!     checked. (OpenSSL's rule for the CRLs it is given, too.)
//!   - `nextUpdate ≤ T`, or no `nextUpdate`: the CRL is *expired* and proves nothing about `T`
//!     (pyHanko calls it stale; OpenSSL would reject the whole path, "CRL has expired"). It is
//!     not a check, so a B-LT file verified at today's clock without a trusted timestamp, long
//!     after its CRLs expired, is judged as a B-T file. Only its final news counts: an entry
//!     revoking the certificate at or before `T` for a reason other than certificateHold (a
//!     revocation is final, a hold may be lifted; RFC 5280 §5.3.1) rejects the path.
//!   - `thisUpdate > T`: issued after `T` (the freshness ETSI EN 319 102-1 §5.2.5 asks for; a
//!     B-LTA's renewed data). An entry revoking the certificate at or before `T` rejects the
//!     path (pyHanko's ETSI process, `adesverify`, agrees); its silence is not taken as a check
//!     (a hold may have been lifted since; OpenSSL would refuse the CRL as "not yet valid").
//! - Per certificate rather than OpenSSL's all-or-nothing flags: `CRL_CHECK` checks only the
//!   signer and `CRL_CHECK_ALL` demands a CRL for every certificate of the path, so a DSS that
//!   covers part of a path would be either half used or a reason to reject. Each certificate
//!   a usable DSS CRL covers is checked; the others are not, as without a DSS. The trust
//!   anchor is not checked (nothing above it could revoke it).
//! - With CRLs given as well, both apply: the given ones as above, the DSS's on top (a DSS
//!   CRL never stands in for a missing given one).
//!
//! The signer's check is reported as [`RevocationSource::Dss`] when a current DSS CRL covered
//! it (or revoked it), with notes on the DSS CRLs that were not used.

use chrono::{DateTime, Utc};
use der::{Decode, Encode};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::ssl::SslFiletype;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{CrlReason, CrlStatus, ReasonCode, X509, X509RevokedRef, X509StoreContext};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};

use super::TrustAnchors;
use super::dss::Dss;

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
    /// A CRL of the certificate's issuer in the PDF's `/DSS` lists it, revoked at
    /// `revoked_at`: at or before the validation time `at` (see the module documentation).
    #[error(
        "path rejected at depth {depth}: certificate revoked ({subject}, revoked {revoked_at} \
         by its issuer's CRL in the /DSS; validated at {at})"
    )]
    Revoked { depth: u32, subject: String, revoked_at: DateTime<Utc>, at: DateTime<Utc> },
    /// A certificate could not be handed to OpenSSL.
    #[error("certificate cannot be read by OpenSSL: {detail}")]
    Unreadable { detail: String },
}

/// Where the revocation status of a signer came from (`verify --json`: `revocation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationSource {
    /// Not checked: no CRL given, and none in the file for the signer at the validation time.
    #[default]
    None,
    /// CRLs the verifier gave (`--crl`, the key set's): the whole path, strictly.
    Given,
    /// A current CRL of the signer's issuer from the PDF's `/DSS` (no CRL given).
    Dss,
}

/// What was checked about revocation on a path, with notes on revocation data found but not
/// used (a stale CRL, another CA's, a DSS that cannot be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationCheck {
    pub source: RevocationSource,
    pub detail: Option<String>,
}

/// A path's verdict and what was checked about revocation on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCheck {
    pub result: Result<(), PathError>,
    pub revocation: RevocationCheck,
}

/// Checks that `signer` has a valid path to one of `trust` at `at`, using the certificates
/// of `pool` (those shipped with the signature) as untrusted intermediates.
pub fn validate_signer(
    signer: &Certificate,
    pool: &[Certificate],
    trust: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<(), PathError> {
    check_signer_path(signer, pool, trust, at).result
}

/// As [`validate_signer`], with what was checked about revocation (see the module
/// documentation): the given CRLs, then those of the PDF's `/DSS` when `trust` carries one.
pub fn check_signer_path(
    signer: &Certificate,
    pool: &[Certificate],
    trust: &TrustAnchors,
    at: DateTime<Utc>,
) -> PathCheck {
    let given =
        if trust.crls.is_empty() { RevocationSource::None } else { RevocationSource::Given };
    let mut revocation = RevocationCheck { source: given, detail: trust.dss_note.clone() };
    let result = signer_rules(signer).and_then(|()| openssl_path(signer, pool, trust, at));
    let result = match (result, trust.dss.as_deref()) {
        (Ok(chain), Some(dss)) => match dss_revocation(&chain, dss, at) {
            Ok(coverage) => {
                if coverage.signer_checked && given == RevocationSource::None {
                    revocation.source = RevocationSource::Dss;
                }
                revocation.detail = join_notes(revocation.detail, coverage.notes);
                Ok(())
            }
            Err(revoked) => {
                if given == RevocationSource::None {
                    revocation.source = RevocationSource::Dss;
                }
                Err(revoked)
            }
        },
        (result, _) => result.map(|_| ()),
    };
    PathCheck { result, revocation }
}

fn join_notes(first: Option<String>, more: Vec<String>) -> Option<String> {
    let notes: Vec<String> = first.into_iter().chain(more).collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// What OpenSSL leaves to the application for a document signer.
fn signer_rules(signer: &Certificate) -> Result<(), PathError> {
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
    Ok(())
}

fn to_openssl(cert: &Certificate) -> Result<X509, PathError> {
    let der = cert.to_der().map_err(|e| PathError::Unreadable { detail: e.to_string() })?;
    X509::from_der(&der).map_err(|e| PathError::Unreadable { detail: e.to_string() })
}

/// The path OpenSSL validated, signer first, trust anchor last.
fn openssl_path(
    signer: &Certificate,
    pool: &[Certificate],
    trust: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<Vec<X509>, PathError> {
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
    // The DSS's certificates may complete a path; they are as untrusted as the signature's.
    for cert in trust.dss.iter().flat_map(|dss| dss.certs.iter()) {
        untrusted.push(cert.clone()).map_err(unreadable)?;
    }
    let leaf = to_openssl(signer)?;
    let mut context = X509StoreContext::new().map_err(unreadable)?;
    let outcome = context
        .init(&store, &leaf, &untrusted, |ctx| {
            let ok = ctx.verify_cert()?;
            let chain: Vec<X509> =
                ctx.chain().map(|c| c.iter().map(|x| x.to_owned()).collect()).unwrap_or_default();
            Ok((ok, ctx.error_depth(), ctx.error().error_string(), chain))
        })
        .map_err(unreadable)?;
    match outcome {
        (true, _, _, chain) => Ok(chain),
        (false, depth, reason, _) => Err(PathError::Rejected { depth, reason: reason.into(), at }),
    }
}

/// Which certificates of a validated path a DSS CRL checked, and notes on the CRLs not used.
struct DssCoverage {
    signer_checked: bool,
    notes: Vec<String>,
}

/// Checks each certificate of `chain` (signer first, anchor last) against the CRLs of `dss`
/// that its issuer signed, at `at`, with the rules of the module documentation. `Err` when one
/// of them revokes a certificate.
fn dss_revocation(chain: &[X509], dss: &Dss, at: DateTime<Utc>) -> Result<DssCoverage, PathError> {
    let mut coverage = DssCoverage { signer_checked: false, notes: Vec::new() };
    let time = |e: openssl::error::ErrorStack| PathError::Unreadable { detail: e.to_string() };
    let t = Asn1Time::from_unix(at.timestamp()).map_err(time)?;
    for (depth, pair) in chain.windows(2).enumerate() {
        let [cert, issuer] = pair else { continue };
        let depth = u32::try_from(depth).unwrap_or(u32::MAX);
        let Ok(issuer_subject) = issuer.subject_name().to_der() else { continue };
        let issuer_name = label(issuer);
        let mut candidates = dss.crls.iter().filter(|c| c.issuer_der == issuer_subject).peekable();
        if candidates.peek().is_none() {
            continue;
        }
        let Ok(issuer_key) = issuer.public_key() else { continue };
        if !may_sign_crls(issuer) {
            coverage.notes.push(format!(
                "the /DSS CRLs naming {issuer_name} are not used: its key usage has no cRLSign"
            ));
            continue;
        }
        for crl in candidates {
            let object = crl.object;
            // RFC 5280 §6.3.3 (f): signed by the issuer of this path, not a namesake.
            if !crl.crl.verify(&issuer_key).unwrap_or(false) {
                coverage.notes.push(format!(
                    "the /DSS CRL in object {object} names {issuer_name} but is not signed by \
                     its key: ignored"
                ));
                continue;
            }
            if let Some(why) = &crl.unusable {
                coverage.notes.push(format!("the /DSS CRL in object {object} is not used: {why}"));
                continue;
            }
            let this_update = crl.crl.last_update();
            let when = match crl.crl.next_update() {
                Some(next) if *next > *t && *this_update <= *t => When::Current,
                Some(next) if *next > *t => When::Later,
                Some(next) => When::Expired(Some(to_chrono(next))),
                None => When::Expired(None),
            };
            let listed = match crl.crl.get_by_cert(cert) {
                CrlStatus::Revoked(entry) => Some(entry),
                CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => None,
            };
            let revoked = listed.filter(|entry| {
                let by_then = *entry.revocation_date() <= *t;
                match when {
                    When::Current => true,
                    When::Later => by_then,
                    // A revocation is final, a hold is not (RFC 5280 §5.3.1).
                    When::Expired(_) => by_then && !on_hold(entry),
                }
            });
            if let Some(entry) = revoked {
                return Err(PathError::Revoked {
                    depth,
                    subject: label(cert),
                    revoked_at: to_chrono(entry.revocation_date()),
                    at,
                });
            }
            match when {
                When::Current if depth == 0 => coverage.signer_checked = true,
                When::Current => {}
                When::Later => coverage.notes.push(format!(
                    "the /DSS CRL of {issuer_name} (object {object}) was issued {}, after the \
                     validation time {at}: it could only have shown a revocation before it",
                    to_chrono(this_update)
                )),
                When::Expired(Some(next)) => coverage.notes.push(format!(
                    "the /DSS CRL of {issuer_name} (object {object}) expired {next}, at or \
                     before the validation time {at}: it could only have shown a revocation"
                )),
                When::Expired(None) => coverage.notes.push(format!(
                    "the /DSS CRL of {issuer_name} (object {object}) has no nextUpdate: it \
                     could only have shown a revocation"
                )),
            }
        }
    }
    Ok(coverage)
}

/// When a CRL was current, relative to the validation time.
enum When {
    /// `thisUpdate ≤ T < nextUpdate`.
    Current,
    /// Issued after `T`.
    Later,
    /// Its `nextUpdate` (if any) is at or before `T`.
    Expired(Option<DateTime<Utc>>),
}

/// A CRL entry with reason certificateHold (RFC 5280 §5.3.1): a suspension that may be lifted.
fn on_hold(entry: &X509RevokedRef) -> bool {
    let hold = i64::from(CrlReason::CERTIFICATE_HOLD.as_raw());
    match entry.extension::<ReasonCode>() {
        Ok(Some((_, reason))) => reason.get_i64().map_or(true, |r| r == hold),
        Ok(None) => false,
        // Unreadable: not taken as a final revocation.
        Err(_) => true,
    }
}

/// RFC 5280 §4.2.1.3: a CA whose key usage lacks `cRLSign` does not sign CRLs. Without the
/// extension any use is allowed.
fn may_sign_crls(issuer: &X509) -> bool {
    let Ok(der) = issuer.to_der() else { return false };
    let Ok(cert) = Certificate::from_der(&der) else { return false };
    match cert.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, KeyUsage(flags)))) => flags.contains(KeyUsages::CRLSign),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// An ASN.1 time as a UTC time (the epoch if OpenSSL cannot compare them: never for a time it
/// parsed).
fn to_chrono(time: &Asn1TimeRef) -> DateTime<Utc> {
    let since_epoch = Asn1Time::from_unix(0).and_then(|epoch| epoch.diff(time));
    since_epoch
        .ok()
        .and_then(|d| {
            let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
            DateTime::from_timestamp(secs, 0)
        })
        .unwrap_or_default()
}

/// A readable subject of an OpenSSL certificate.
fn label(cert: &X509) -> String {
    cert.to_der()
        .ok()
        .and_then(|der| Certificate::from_der(&der).ok())
        .map_or_else(|| "?".to_owned(), |c| super::subject_label(&c))
}
