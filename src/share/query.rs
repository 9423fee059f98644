//! A department's query (查询) once it is authenticated: find the versions a search key names,
//! keep those its rights allow (masked as the rights say), and record the answer or the
//! refusal in the audit trail. Both front ends call [`answer`]: `elicence query` after the
//! credential gate, `elicence serve` after the bearer-token gate. Nothing here prints.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::catalog::Catalog;
use crate::identify::LicenceId;
use crate::registry::{AuditEntry, Department, FileKind, Registry, VersionRow};
use crate::render::qr::{QR_DIGEST_LEN, parse_qr_payload};
use crate::share::{self, Ask, ShareError, SharedLicence, action, audit_refusal, input};
use crate::sign::xmldsig::unsigned_document;

/// What a search is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// A GB/T 36904 identifier.
    Identifier,
    /// A holder code (USCC or citizen ID number).
    Holder,
    /// A printed licence number (证照编号).
    Number,
    /// A scanned QR payload: `ELIC1:<identifier>:<16 hex>` or `<URL>/v/<identifier>?d=<16 hex>`;
    /// the digest must be the version's (see [`qr_digest_matches`]).
    Qr,
}

impl By {
    /// The name recorded in the audit trail and the JSON answer.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Identifier => "identifier",
            By::Holder => "holder",
            By::Number => "number",
            By::Qr => "qr",
        }
    }
}

/// The answer to a query, as `elicence query --json` prints it.
#[derive(Debug, Serialize)]
pub struct QueryAnswer {
    pub department: String,
    pub reason: String,
    pub by: &'static str,
    pub licences: Vec<SharedLicence>,
}

/// The audit subject of a search (`holder:…`, with personal data masked).
pub fn subject(by: By, key: &str) -> String {
    format!("{}:{}", by.as_str(), share::key_for_audit(key))
}

/// Answers `department`'s search (`by`, `key`) with `reason` already checked: the matching
/// versions its rights allow, protected fields masked unless granted. An empty list means
/// nothing matches. Fails with [`ShareError::Input`] on a bad key and
/// [`ShareError::NotPermitted`] when matches exist but none is within rights; both refusals,
/// and every answer, are appended to the audit trail first.
pub fn answer(
    registry: &mut Registry,
    catalog: &Catalog,
    department: &Department,
    reason: &str,
    (by, key): (By, &str),
    ask: &Ask<'_>,
) -> Result<QueryAnswer, ShareError> {
    let found = match lookup(registry, by, key) {
        Ok(found) => found,
        Err(e) => {
            if let Some(refusal) = e.refusal() {
                audit_refusal(registry, ask, Some(reason), refusal, &e.to_string())?;
            }
            return Err(e);
        }
    };
    let grants = registry.grants_of(&department.code)?;
    let mut shown = Vec::new();
    let mut withheld = Vec::new();
    for v in &found {
        match share::rights_on(catalog, &grants, department, v) {
            Ok((t, access, unmask)) => {
                let status = registry.status_on(v, ask.at.date_naive())?;
                shown.push(share::shared_view(t, v, status, access, unmask));
            }
            Err(refusal) => withheld.push((v.identifier.clone(), refusal)),
        }
    }
    if shown.is_empty()
        && let Some((identifier, refusal)) = withheld.first()
    {
        let e = ShareError::NotPermitted {
            department: department.code.clone(),
            what: format!("see {identifier}"),
            refusal: *refusal,
        };
        let ask = Ask { subject: identifier.clone(), ..ask.clone() };
        audit_refusal(registry, &ask, Some(reason), *refusal, &e.to_string())?;
        return Err(e);
    }
    registry.audit_append(&AuditEntry {
        action: action::QUERY.into(),
        operator: department.code.clone(),
        at: ask.at,
        subject: shown.first().map_or_else(|| ask.subject.clone(), |l| l.identifier.clone()),
        reason: Some(reason.to_owned()),
        details: json!({
            "department": department.code,
            "by": by.as_str(),
            "key": share::key_for_audit(key),
            "returned": shown.iter().map(|l| &l.identifier).collect::<Vec<_>>(),
            "withheld": withheld.iter().map(|(id, r)| json!({"identifier": id, "refusal": r.as_str()})).collect::<Vec<_>>(),
        }),
    })?;
    Ok(QueryAnswer {
        department: department.code.clone(),
        reason: reason.to_owned(),
        by: by.as_str(),
        licences: shown,
    })
}

/// An [`Ask`] for a query by `department_code` at `at` (no credential file: the caller has
/// authenticated already).
pub fn ask<'a>(
    command: &'static str,
    department_code: &'a str,
    (by, key): (By, &str),
    at: DateTime<Utc>,
) -> Ask<'a> {
    Ask { command, as_code: department_code, credential_file: None, subject: subject(by, key), at }
}

/// Whether `digest16` (16 hex digits, from a face's QR code) is the start of the SHA-256 of
/// `version`'s unsigned XML e-licence, read from the store (its hash checked by the store).
/// `None` when the version has no stored XML (a run that wrote PDF only), so nothing can be
/// compared.
pub fn qr_digest_matches(
    registry: &Registry,
    version: &VersionRow,
    digest16: &str,
) -> Result<Option<bool>, ShareError> {
    let Some(xml) = version.file(FileKind::Xml) else {
        return Ok(None);
    };
    let bytes = registry.read_file(xml)?;
    let unsigned = std::str::from_utf8(&bytes).ok().and_then(unsigned_document);
    let Some(unsigned) = unsigned else {
        return Ok(Some(false));
    };
    let digest = hex::encode(Sha256::digest(unsigned.as_bytes()));
    Ok(Some(
        digest16.len() == QR_DIGEST_LEN && digest[..QR_DIGEST_LEN].eq_ignore_ascii_case(digest16),
    ))
}

/// Finds the versions a search names. Bad keys are [`ShareError::Input`].
pub fn lookup(registry: &Registry, by: By, key: &str) -> Result<Vec<VersionRow>, ShareError> {
    let by_identifier = |identifier: &str| -> Result<Vec<_>, ShareError> {
        LicenceId::parse(identifier).map_err(|e| input::InputError::Invalid {
            field: "--id",
            reason: format!("not a GB/T 36904 identifier: {e}"),
        })?;
        Ok(registry.licence_by_identifier(identifier)?.into_iter().collect())
    };
    match by {
        By::Identifier => {
            input::bounded("--id", key, input::MAX_KEY)?;
            by_identifier(key.trim())
        }
        By::Qr => {
            input::bounded("--qr", key, input::MAX_KEY + 32)?;
            let (identifier, digest) = parse_qr_payload(key.trim())
                .map_err(|e| input::InputError::Invalid { field: "--qr", reason: e.to_string() })?;
            let found = by_identifier(&identifier)?;
            for version in &found {
                if qr_digest_matches(registry, version, &digest)? == Some(false) {
                    return Err(input::InputError::Invalid {
                        field: "--qr",
                        reason: format!(
                            "the QR code's digest {digest} is not that of {identifier}'s signed \
                             XML: the face it was scanned from is not this licence version"
                        ),
                    }
                    .into());
                }
            }
            Ok(found)
        }
        By::Holder => {
            let key = input::search_key("--holder", key)?;
            Ok(registry.licences_by_holder(&key.to_ascii_uppercase())?)
        }
        By::Number => {
            let key = input::search_key("--number", key)?;
            Ok(registry.licences_by_printed_no(&key)?)
        }
    }
}
