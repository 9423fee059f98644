//! Sharing within rights (共享): departments authenticate, ask within the rights the catalog
//! gives them, see personal and trade-secret fields masked unless granted, and every answer and
//! every refusal lands in the audit trail.
//!
//! - [`rights`]: who may see a licence, which fields in clear (pure);
//! - [`mask`]: how a protected value is masked (pure);
//! - [`input`]: bounds and character checks on everything a consumer types (pure);
//! - [`auth`]: credentials, argon2id hashes;
//! - [`query`]: a department's search answered within its rights and audited;
//! - [`files`]: the signed e-licence itself (PDF, XML) within the rights, audited;
//! - [`presented`]: what the registry says about a presented file (核验), and its audit entry;
//! - [`public`]: what anyone may see of a licence (the public verification page);
//! - [`watermark`]: the visible watermark of a copy for use (加注件);
//! - [`copy`]: the copy for use itself: checked, watermarked, signed, recorded;
//! - [`check`]: check requests (核查): opened, listed, answered by the issuer alone;
//! - [`events`]: changes and revocations of the licences a department relied on (cursor-based);
//! - this file: the gate every consumer command goes through ([`authenticate`]) and the audit
//!   entries of answers and refusals ([`audit_refusal`]).
//!
//! Audit entries name the department, the reason (事由) and what was returned: identifiers,
//! never field values.

pub mod auth;
pub mod check;
pub mod copy;
pub mod events;
pub mod files;
pub mod input;
pub mod mask;
pub mod presented;
pub mod public;
pub mod query;
pub mod rights;
pub mod watermark;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use crate::registry::{AuditEntry, Department, Registry, RegistryError};
use auth::CredentialError;
use input::InputError;

/// Audit actions of sharing.
pub mod action {
    pub const QUERY: &str = "share_query";
    pub const COPY: &str = "share_copy";
    pub const DENIED: &str = "share_denied";
    pub const CHECK_REQUEST: &str = "check_request";
    pub const CHECK_ANSWER: &str = "check_answer";
    pub const CHECK_LIST: &str = "check_list";
    pub const DEPT_ADDED: &str = "department_added";
    pub const DEPT_DISABLED: &str = "department_disabled";
    pub const DEPT_GRANT: &str = "department_grant";
    /// A bearer token issued by `elicence serve`.
    pub const TOKEN: &str = "share_token";
    /// A signed e-licence file handed to a department (`GET …/files/{pdf|xml}`).
    pub const FILE: &str = "share_file";
    /// A department read its change events (`elicence events`).
    pub const EVENTS: &str = "share_events";
}

/// Why a consumer was refused (recorded as `refusal` in the audit entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// A flag's value failed its checks (too long, control characters, not a code…).
    BadInput,
    /// No credential given.
    NoCredential,
    /// No such department.
    UnknownDepartment,
    /// The department is disabled.
    Disabled,
    /// The credential does not match.
    WrongCredential,
    /// Conditional sharing, department outside the scope.
    NotInScope,
    /// The type is not shared and the department is not the issuer.
    NotShared,
    /// The licence's type is not in the catalog: nothing is shared.
    UnknownType,
    /// Only the issuer of the licence may do this (answer a check request).
    NotIssuer,
    /// A copy for use shows the whole face: the type has personal or trade-secret fields and the
    /// department holds no grant with unmasking for it.
    NeedsUnmask,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::BadInput => "bad_input",
            Refusal::NoCredential => "no_credential",
            Refusal::UnknownDepartment => "unknown_department",
            Refusal::Disabled => "disabled",
            Refusal::WrongCredential => "wrong_credential",
            Refusal::NotInScope => "not_in_scope",
            Refusal::NotShared => "not_shared",
            Refusal::UnknownType => "unknown_type",
            Refusal::NotIssuer => "not_issuer",
            Refusal::NeedsUnmask => "needs_unmask",
        }
    }
}

impl From<rights::Denial> for Refusal {
    fn from(d: rights::Denial) -> Self {
        match d {
            rights::Denial::Disabled => Refusal::Disabled,
            rights::Denial::NotInScope => Refusal::NotInScope,
            rights::Denial::NotShared => Refusal::NotShared,
            rights::Denial::UnknownType => Refusal::UnknownType,
        }
    }
}

/// A sharing command that did not answer.
#[derive(Debug, Error)]
pub enum ShareError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// Authentication failed (unknown department or wrong credential: not told apart).
    #[error("not permitted: department {department} could not be authenticated")]
    NotAuthenticated { department: String },
    #[error("not permitted: department {department} is disabled")]
    Disabled { department: String },
    #[error("not permitted: {department} may not {what} ({refusal:?})")]
    NotPermitted { department: String, what: String, refusal: Refusal },
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl ShareError {
    /// The exit code: 2 for bad input, 6 for a refusal, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ShareError::Input(_) | ShareError::Credential(_) => crate::exit::USAGE,
            ShareError::NotAuthenticated { .. }
            | ShareError::Disabled { .. }
            | ShareError::NotPermitted { .. } => crate::exit::DENIED,
            ShareError::NotFound { .. } | ShareError::Registry(_) => crate::exit::FAILURE,
        }
    }

    /// The refusal recorded for this error, if it is one.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            ShareError::Input(_) => Some(Refusal::BadInput),
            ShareError::Credential(CredentialError::Missing) => Some(Refusal::NoCredential),
            ShareError::Credential(_) => Some(Refusal::BadInput),
            ShareError::NotAuthenticated { .. } => None,
            ShareError::Disabled { .. } => Some(Refusal::Disabled),
            ShareError::NotPermitted { refusal, .. } => Some(*refusal),
            ShareError::NotFound { .. } | ShareError::Registry(_) => None,
        }
    }
}

/// Who asks, for what, when: the facts the gate and the audit entries need.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// The subcommand (`query`, `copy`, `check-request`, …).
    pub command: &'static str,
    /// `--as` as typed.
    pub as_code: &'a str,
    pub credential_file: Option<&'a Path>,
    /// What was asked for, for the audit subject (an identifier, `holder:…`, a request number).
    pub subject: String,
    pub at: DateTime<Utc>,
}

/// Appends a refusal to the audit trail: department (as typed, shortened), command, subject,
/// refusal kind and the error text (which never holds field data).
pub fn audit_refusal(
    registry: &mut Registry,
    ask: &Ask<'_>,
    reason: Option<&str>,
    refusal: Refusal,
    detail: &str,
) -> Result<(), RegistryError> {
    let department = input::for_audit(ask.as_code.trim());
    registry.audit_append(&AuditEntry {
        action: action::DENIED.to_owned(),
        operator: if department.is_empty() { "anonymous".to_owned() } else { department.clone() },
        at: ask.at,
        subject: input::for_audit(&ask.subject),
        reason: reason.map(input::for_audit),
        details: json!({
            "command": ask.command,
            "department": department,
            "refusal": refusal.as_str(),
            "detail": input::for_audit(detail),
        }),
    })?;
    Ok(())
}

/// A refusal of rights: `department` may not `what` (`refusal`), audited with `reason`; returns
/// the [`ShareError::NotPermitted`] to answer (or the registry's error, if the audit failed).
pub fn refuse(
    registry: &mut Registry,
    ask: &Ask<'_>,
    reason: Option<&str>,
    department: &Department,
    (what, refusal): (String, Refusal),
) -> ShareError {
    let e = ShareError::NotPermitted { department: department.code.clone(), what, refusal };
    match audit_refusal(registry, ask, reason, refusal, &e.to_string()) {
        Ok(()) => e,
        Err(r) => r.into(),
    }
}

/// Authenticates `ask.as_code` with its credential and checks `reason` (when `reason_required`):
/// returns the enabled department and the checked reason. Every refusal is audited before it is
/// returned.
pub fn authenticate(
    registry: &mut Registry,
    ask: &Ask<'_>,
    reason: Option<&str>,
    reason_required: bool,
) -> Result<(Department, Option<String>), ShareError> {
    authenticate_with(registry, ask, auth::read(ask.credential_file), reason, reason_required)
}

/// As [`authenticate`], with the credential presented directly (the server's token request
/// carries it in its body) instead of read from `ask.credential_file` or the environment.
pub fn authenticate_credential(
    registry: &mut Registry,
    ask: &Ask<'_>,
    credential: Option<&str>,
    reason: Option<&str>,
    reason_required: bool,
) -> Result<(Department, Option<String>), ShareError> {
    let credential = credential.map_or(Err(CredentialError::Missing), auth::parse);
    authenticate_with(registry, ask, credential, reason, reason_required)
}

fn authenticate_with(
    registry: &mut Registry,
    ask: &Ask<'_>,
    credential: Result<String, CredentialError>,
    reason: Option<&str>,
    reason_required: bool,
) -> Result<(Department, Option<String>), ShareError> {
    match gate(registry, ask, credential, reason, reason_required) {
        Ok(ok) => Ok(ok),
        Err(e) => {
            let refusal = match &e {
                ShareError::NotAuthenticated { .. } => {
                    // Told apart in the audit trail only.
                    match registry.department(ask.as_code.trim())? {
                        None => Refusal::UnknownDepartment,
                        Some(_) => Refusal::WrongCredential,
                    }
                }
                other => match other.refusal() {
                    Some(r) => r,
                    None => return Err(e),
                },
            };
            let shown_reason =
                reason.filter(|r| input::bounded("--reason", r, input::MAX_TEXT).is_ok());
            audit_refusal(registry, ask, shown_reason, refusal, &e.to_string())?;
            Err(e)
        }
    }
}

fn gate(
    registry: &mut Registry,
    ask: &Ask<'_>,
    credential: Result<String, CredentialError>,
    reason: Option<&str>,
    reason_required: bool,
) -> Result<(Department, Option<String>), ShareError> {
    let code = input::department_code("--as", ask.as_code)?;
    let credential = credential?;
    let Some((department, hash)) = registry.department(&code)? else {
        // Spend the time a verification takes, so that timing does not tell which codes exist.
        let _ = auth::hash(&credential);
        return Err(ShareError::NotAuthenticated { department: code });
    };
    if !auth::matches(&credential, &hash) {
        return Err(ShareError::NotAuthenticated { department: code });
    }
    if !department.enabled {
        return Err(ShareError::Disabled { department: code });
    }
    let reason = match (reason, reason_required) {
        (None, false) => None,
        (r, _) => Some(input::text("--reason", r, input::MAX_TEXT)?),
    };
    Ok((department, reason))
}

/// A licence as a department sees it: metadata, registry status and the fields its rights allow
/// (protected ones masked unless granted).
#[derive(Debug, Clone, Serialize)]
pub struct SharedLicence {
    pub identifier: String,
    pub type_code: String,
    pub type_name: String,
    pub issuer_code: String,
    pub printed_no: String,
    pub version: u16,
    pub registry_status: crate::registry::RegistryStatus,
    pub holder_name: String,
    pub holder_code: String,
    pub issue_date: chrono::NaiveDate,
    pub valid_to: Option<chrono::NaiveDate>,
    /// Why the department may see it.
    pub access: rights::Access,
    /// Protected fields are shown unmasked (grant with unmasking).
    pub unmasked: bool,
    pub fields: Vec<rights::SharedField>,
}

/// The rights of `department` (with its `grants`) on licence version `v`: the catalog type, why
/// access is allowed and whether protected fields are unmasked; or the refusal.
pub fn rights_on<'c>(
    catalog: &'c crate::catalog::Catalog,
    grants: &[crate::registry::Grant],
    department: &Department,
    v: &crate::registry::VersionRow,
) -> Result<(&'c crate::catalog::LicenceType, rights::Access, bool), Refusal> {
    let t = catalog.types.iter().find(|t| t.code == v.key.type_code).ok_or(Refusal::UnknownType)?;
    let access =
        rights::access(&t.sharing, &v.key.issuer_code, &department.code, department.enabled)?;
    let unmask = grants.iter().any(|g| g.type_code == t.code && g.unmask);
    Ok((t, access, unmask))
}

/// The refusal, if any, of `department` (with its `grants`) obtaining the whole face of `v`
/// (the signed file, a copy for use): its rights ([`rights_on`]) and, when the type has personal
/// or trade-secret fields, a grant with unmasking, since the face shows every field in clear.
pub fn whole_face_refusal(
    catalog: &crate::catalog::Catalog,
    grants: &[crate::registry::Grant],
    department: &Department,
    v: &crate::registry::VersionRow,
) -> Option<Refusal> {
    match rights_on(catalog, grants, department, v) {
        Err(r) => Some(r),
        Ok((t, _, unmask)) => {
            let protected = t.fields.iter().any(|f| f.personal || f.trade_secret);
            (protected && !unmask).then_some(Refusal::NeedsUnmask)
        }
    }
}

/// Checks `identifier` as a consumer typed it (bounded, a GB/T 36904 identifier); a malformed
/// one is audited as `bad_input` (with `reason`) and returned as [`ShareError::Input`].
pub fn check_identifier(
    registry: &mut Registry,
    ask: &Ask<'_>,
    reason: Option<&str>,
    identifier: &str,
) -> Result<(), ShareError> {
    let checked = input::bounded("identifier", identifier, input::MAX_KEY).and_then(|()| {
        crate::identify::LicenceId::parse(identifier).map(|_| ()).map_err(|e| InputError::Invalid {
            field: "identifier",
            reason: format!("not a GB/T 36904 identifier: {e}"),
        })
    });
    if let Err(e) = checked {
        let e = ShareError::from(e);
        audit_refusal(registry, ask, reason, Refusal::BadInput, &e.to_string())?;
        return Err(e);
    }
    Ok(())
}

/// The view of `v` (whose status is `status`, [`Registry::status_on`]) a department with
/// `access` (and `unmask`) gets.
pub fn shared_view(
    t: &crate::catalog::LicenceType,
    v: &crate::registry::VersionRow,
    status: crate::registry::RegistryStatus,
    access: rights::Access,
    unmask: bool,
) -> SharedLicence {
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&v.fields_json).unwrap_or_default();
    let catalog_keys = crate::catalog::keys::HOLDER_NAME;
    let (holder_name, _) = rights::shown(t, catalog_keys, &v.holder_name, unmask);
    let (holder_code, _) =
        rights::shown(t, crate::catalog::keys::HOLDER_CODE, &v.holder_code, unmask);
    SharedLicence {
        identifier: v.identifier.clone(),
        type_code: t.code.clone(),
        type_name: t.name.clone(),
        issuer_code: v.key.issuer_code.clone(),
        printed_no: v.key.printed_no.clone(),
        version: v.version,
        registry_status: status,
        holder_name,
        holder_code,
        issue_date: v.issue_date,
        valid_to: v.valid_to,
        access,
        unmasked: unmask,
        fields: rights::shared_fields(t, &fields, unmask),
    }
}

/// A search key as written into the audit trail: a citizen ID number (personal data) masked,
/// anything else shortened.
pub fn key_for_audit(key: &str) -> String {
    if crate::codes::check_citizen_id(key).is_ok() {
        mask::mask(key, mask::MaskStyle::CitizenId)
    } else {
        input::for_audit(key)
    }
}
