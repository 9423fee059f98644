//! The operator gate: who may run which effectful command (Art. 9: named staff collect (采集),
//! review (审核) and issue (签发) e-licences).
//!
//! A registry starts without operators and works as before: `--operator` is free text (default:
//! the OS user) and nothing is authenticated. Once any operator holds the admin role, every
//! effectful command names a registered operator (`--operator NAME`) with its credential
//! (`--operator-credential-file F` or `ELICENCE_OPERATOR_CREDENTIAL`), and the operator must be
//! enabled and hold one of the roles the command needs. A refusal is audited
//! (`operator_denied`: who as typed, the command, why) before it is returned, and maps to exit
//! code 6. The audit entries of what the command then does name the authenticated operator.
//!
//! Credentials are those of departments (`crate::share::auth`): random, printed once, stored
//! as argon2id hashes, compared in constant time.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use crate::registry::{AuditEntry, Operator, Registry, RegistryError, Role};
use crate::share::auth::{self, CredentialError};
use crate::share::input;

/// Environment variable holding an operator's credential (else `--operator-credential-file`).
pub const CREDENTIAL_ENV: &str = "ELICENCE_OPERATOR_CREDENTIAL";
/// Longest operator name.
pub const MAX_NAME: usize = 64;

/// Audit actions of operator administration and refusals.
pub mod action {
    pub const ADDED: &str = "operator_added";
    pub const DISABLED: &str = "operator_disabled";
    pub const GRANT: &str = "operator_grant";
    pub const DENIED: &str = "operator_denied";
}

/// Who claims to run a command: `--operator` and where the credential is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    pub name: Option<String>,
    pub credential_file: Option<std::path::PathBuf>,
    /// The front end has authenticated `name` already: `elicence serve` checked the operator's
    /// credential when it signed the operator token this request carries ([`authenticate`]).
    /// The gate then checks only that the operator still exists, is enabled and holds the role.
    pub vouched: bool,
}

/// Who runs the command, as the audit trail will name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A registered operator, authenticated, holding a role the command needs.
    Authenticated(Operator),
    /// The registry has no admin yet: nothing is authenticated; the name as given (or the OS
    /// user).
    Unenforced(String),
}

impl Actor {
    pub fn name(&self) -> &str {
        match self {
            Actor::Authenticated(o) => &o.name,
            Actor::Unenforced(name) => name,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self, Actor::Authenticated(_))
    }
}

/// Why an operator was refused (recorded as `refusal` in the audit entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// `--operator` missing.
    NoOperator,
    /// No credential given.
    NoCredential,
    /// A credential that is not a credential (empty, control characters, too long).
    BadCredential,
    UnknownOperator,
    WrongCredential,
    Disabled,
    /// The operator holds none of the roles the command needs.
    MissingRole,
    /// The approver staged the rows it approves (four eyes: 审核 ≠ 采集).
    FourEyes,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoOperator => "no_operator",
            Refusal::NoCredential => "no_credential",
            Refusal::BadCredential => "bad_credential",
            Refusal::UnknownOperator => "unknown_operator",
            Refusal::WrongCredential => "wrong_credential",
            Refusal::Disabled => "disabled",
            Refusal::MissingRole => "missing_role",
            Refusal::FourEyes => "four_eyes",
        }
    }
}

/// A command the gate refused, or could not decide.
#[derive(Debug, Error)]
pub enum OperatorError {
    #[error(
        "not permitted: {command} needs --operator NAME with its credential (this registry has an admin operator)"
    )]
    NoOperator { command: String },
    #[error("not permitted: operator credential: {0}")]
    Credential(CredentialError),
    /// Unknown name or wrong credential (not told apart).
    #[error("not permitted: operator {name} could not be authenticated")]
    NotAuthenticated { name: String },
    #[error("not permitted: operator {name} is disabled")]
    Disabled { name: String },
    #[error(
        "not permitted: {command} needs the role {}; operator {name} holds {}",
        list(needed),
        list(held)
    )]
    MissingRole { name: String, command: String, needed: Vec<Role>, held: Vec<Role> },
    #[error(
        "not permitted: operator {name} staged review item(s) {items:?}; another reviewer must approve them (four eyes)"
    )]
    FourEyes { name: String, items: Vec<i64> },
    /// An operator token was asked of a registry that has no admin operator (nobody can be
    /// authenticated there; the HTTP review API needs named operators).
    #[error(
        "not permitted: this registry has no admin operator, so no operator can be authenticated (`elicence operator add NAME --role admin`)"
    )]
    NotEnforced,
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn list(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "no role".to_owned();
    }
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or ")
}

impl OperatorError {
    /// 6 for a refusal (as for departments), 1 when the registry failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            OperatorError::Registry(_) => crate::exit::FAILURE,
            _ => crate::exit::DENIED,
        }
    }

    fn refusal(&self) -> Option<Refusal> {
        Some(match self {
            OperatorError::NoOperator { .. } => Refusal::NoOperator,
            OperatorError::Credential(CredentialError::Missing) => Refusal::NoCredential,
            OperatorError::Credential(_) => Refusal::BadCredential,
            OperatorError::NotAuthenticated { .. } => Refusal::WrongCredential,
            OperatorError::Disabled { .. } => Refusal::Disabled,
            OperatorError::MissingRole { .. } => Refusal::MissingRole,
            OperatorError::FourEyes { .. } => Refusal::FourEyes,
            OperatorError::Registry(_) | OperatorError::NotEnforced => return None,
        })
    }
}

/// The credential from `file` (first line, trimmed), else from [`CREDENTIAL_ENV`].
pub fn read_credential(file: Option<&Path>) -> Result<String, CredentialError> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| CredentialError::Read { path: path.display().to_string(), source })?,
        None => std::env::var(CREDENTIAL_ENV).map_err(|_| CredentialError::Missing)?,
    };
    auth::parse(&raw)
}

/// Checks an operator name: 1–64 characters after trimming, no control characters. Returns it
/// trimmed.
pub fn check_name(name: &str) -> Result<String, input::InputError> {
    input::text("NAME", Some(name), MAX_NAME)
}

/// Audits a refusal: the name as typed (shortened), the command, the refusal and the detail.
pub fn audit_refusal(
    registry: &mut Registry,
    claimed: Option<&str>,
    command: &str,
    refusal: Refusal,
    detail: &str,
    at: DateTime<Utc>,
) -> Result<(), RegistryError> {
    let name = claimed.map(|n| input::for_audit(n.trim())).unwrap_or_default();
    registry.audit_append(&AuditEntry {
        action: action::DENIED.to_owned(),
        operator: if name.is_empty() { "anonymous".to_owned() } else { name.clone() },
        at,
        subject: format!("command:{command}"),
        reason: None,
        details: json!({
            "command": command,
            "operator": name,
            "refusal": refusal.as_str(),
            "detail": input::for_audit(detail),
        }),
    })?;
    Ok(())
}

/// Lets `claim` run `command` if the registry enforces operators and the claim authenticates
/// as an enabled operator holding one of `roles` (any role when `roles` is empty); every
/// refusal is audited before it is returned. Without an admin in the registry nothing is
/// checked and the actor is the claimed name, else `fallback` (the OS user).
pub fn authorize(
    registry: &mut Registry,
    claim: &Claim,
    command: &str,
    roles: &[Role],
    fallback: &str,
    at: DateTime<Utc>,
) -> Result<Actor, OperatorError> {
    if !registry.operators_enforced()? {
        let name = claim.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        return Ok(Actor::Unenforced(name.unwrap_or(fallback).to_owned()));
    }
    let credential =
        if claim.vouched { None } else { Some(read_credential(claim.credential_file.as_deref())) };
    checked(registry, claim, credential, command, roles, at).map(Actor::Authenticated)
}

/// Authenticates operator `name` with `credential` as presented (the HTTP API's operator token
/// request), holding one of `roles` (any when empty); refusals audited as by [`authorize`]. A
/// registry without an admin operator authenticates nobody: [`OperatorError::NotEnforced`].
pub fn authenticate(
    registry: &mut Registry,
    name: &str,
    credential: &str,
    command: &str,
    roles: &[Role],
    at: DateTime<Utc>,
) -> Result<Operator, OperatorError> {
    if !registry.operators_enforced()? {
        return Err(OperatorError::NotEnforced);
    }
    let claim = Claim { name: Some(name.to_owned()), ..Claim::default() };
    checked(registry, &claim, Some(auth::parse(credential)), command, roles, at)
}

/// [`gate`], with its refusal audited. `credential` `None`: the claim is vouched for.
fn checked(
    registry: &mut Registry,
    claim: &Claim,
    credential: Option<Result<String, CredentialError>>,
    command: &str,
    roles: &[Role],
    at: DateTime<Utc>,
) -> Result<Operator, OperatorError> {
    match gate(registry, claim, credential, command, roles) {
        Ok(operator) => Ok(operator),
        Err(e) => {
            let Some(mut refusal) = e.refusal() else { return Err(e) };
            if let OperatorError::NotAuthenticated { name } = &e
                && registry.operator(name)?.is_none()
            {
                // Told apart in the audit trail only.
                refusal = Refusal::UnknownOperator;
            }
            audit_refusal(registry, claim.name.as_deref(), command, refusal, &e.to_string(), at)?;
            Err(e)
        }
    }
}

/// The operator `claim` names, authenticated by `credential` (or vouched for: `None`),
/// enabled and holding one of `roles`.
fn gate(
    registry: &Registry,
    claim: &Claim,
    credential: Option<Result<String, CredentialError>>,
    command: &str,
    roles: &[Role],
) -> Result<Operator, OperatorError> {
    let Some(name) = claim.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) else {
        return Err(OperatorError::NoOperator { command: command.to_owned() });
    };
    let credential = credential.transpose().map_err(OperatorError::Credential)?;
    let Some((operator, hash)) = registry.operator(name)? else {
        if let Some(credential) = &credential {
            // Spend the time a verification takes, so that timing does not tell which names
            // exist.
            let _ = auth::hash(credential);
        }
        return Err(OperatorError::NotAuthenticated { name: name.to_owned() });
    };
    if credential.is_some_and(|c| !auth::matches(&c, &hash)) {
        return Err(OperatorError::NotAuthenticated { name: name.to_owned() });
    }
    if !operator.enabled {
        return Err(OperatorError::Disabled { name: operator.name });
    }
    if !roles.is_empty() && !roles.iter().any(|r| operator.has(*r)) {
        return Err(OperatorError::MissingRole {
            name: operator.name.clone(),
            command: command.to_owned(),
            needed: roles.to_vec(),
            held: operator.roles.iter().copied().collect(),
        });
    }
    Ok(operator)
}

/// Four eyes (审核 ≠ 采集): refuses (audited) when `approver` staged any of `items`
/// (`(review item id, staged_by)`).
pub fn check_four_eyes(
    registry: &mut Registry,
    approver: &str,
    items: &[(i64, &str)],
    at: DateTime<Utc>,
) -> Result<(), OperatorError> {
    let own: Vec<i64> =
        items.iter().filter(|(_, staged_by)| *staged_by == approver).map(|(id, _)| *id).collect();
    if own.is_empty() {
        return Ok(());
    }
    let e = OperatorError::FourEyes { name: approver.to_owned(), items: own };
    audit_refusal(
        registry,
        Some(approver),
        "review approve",
        Refusal::FourEyes,
        &e.to_string(),
        at,
    )?;
    Err(e)
}
