//! Check requests (核查, Art. 13): a department that doubts a licence asks its issuer to check
//! it ([`request`]); departments list the requests they made or must answer ([`list`]); the
//! issuer, and only the issuer, answers once ([`answer`]). Every step is recorded and audited,
//! every refusal too. `elicence check-request`, `elicence check-answer` and the server's
//! `/api/v1/check-requests` routes call these functions with an authenticated department;
//! nothing here prints.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use super::{
    Ask, Refusal, ShareError, action, audit_refusal, check_identifier, input, refuse, rights_on,
};
use crate::catalog::Catalog;
use crate::registry::{
    AnswerOutcome, AuditEntry, CHECK_CONSISTENT, CHECK_INCONSISTENT, CheckRequest, Department,
    Registry, RegistryError,
};
use crate::workdays::{DEFAULT_CHECK_ANSWER_DAYS, Holidays};

/// A request just opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Opened {
    /// The request's number.
    pub request: i64,
    pub identifier: String,
    /// Who must answer: the licence's issuer (颁发机构代码).
    pub issuer: String,
    /// The last day of the issuer's time to answer.
    pub due_on: NaiveDate,
}

/// A request as a list shows it: the stored request and whether it is overdue today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub request: CheckRequest,
    pub overdue: bool,
}

/// What the issuer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finding {
    /// The licence agrees with the issuer's records.
    Consistent,
    /// It does not: the licence is `disputed` while this answer stands.
    Inconsistent,
}

impl Finding {
    /// The stored result ([`CHECK_CONSISTENT`], [`CHECK_INCONSISTENT`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Consistent => CHECK_CONSISTENT,
            Finding::Inconsistent => CHECK_INCONSISTENT,
        }
    }
}

/// Why a check request was not answered.
#[derive(Debug, Error)]
pub enum CheckError {
    /// Bad input, not the issuer (audited), or no such request.
    #[error(transparent)]
    Share(#[from] ShareError),
    /// A request is answered once.
    #[error("check request #{request} is answered already")]
    AlreadyAnswered { request: i64 },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl CheckError {
    /// The exit code: those of [`ShareError`], 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CheckError::Share(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

/// Opens a check request of `department` (authenticated by the caller; `reason` checked)
/// about `identifier`, addressed to the licence's issuer and due within the type's working days
/// (`check_answer_days`, counted with `holidays`). The department must be allowed to see the
/// licence (its sharing rights). Fails with [`ShareError::Input`] on a malformed identifier and
/// [`ShareError::NotPermitted`] outside the rights (both audited), [`ShareError::NotFound`] for
/// an unknown licence.
pub fn request(
    registry: &mut Registry,
    (catalog, holidays): (&Catalog, &Holidays),
    department: &Department,
    reason: &str,
    identifier: &str,
    ask: &Ask<'_>,
) -> Result<Opened, ShareError> {
    let identifier = identifier.trim();
    check_identifier(registry, ask, Some(reason), identifier)?;
    let Some(version) = registry.licence_by_identifier(identifier)? else {
        return Err(ShareError::NotFound { what: identifier.to_owned() });
    };
    let grants = registry.grants_of(&department.code)?;
    if let Err(refusal) = rights_on(catalog, &grants, department, &version) {
        let what = format!("ask for a check of {identifier}");
        return Err(refuse(registry, ask, Some(reason), department, (what, refusal)));
    }
    let issuer = version.key.issuer_code.clone();
    // Art. 13: the issuer answers within the type's working days.
    let days = catalog
        .types
        .iter()
        .find(|t| t.code == version.key.type_code)
        .map_or(DEFAULT_CHECK_ANSWER_DAYS, |t| t.check_answer_days);
    let due_on = holidays.add_working_days(ask.at.date_naive(), days);
    let id = registry.check_request_open(
        identifier,
        &department.code,
        &issuer,
        reason,
        ask.at,
        due_on,
        &AuditEntry {
            action: action::CHECK_REQUEST.into(),
            operator: department.code.clone(),
            at: ask.at,
            subject: identifier.to_owned(),
            reason: Some(reason.to_owned()),
            details: json!({
                "department": department.code,
                "issuer": issuer,
                "due_on": due_on.to_string(),
            }),
        },
    )?;
    Ok(Opened { request: id, identifier: identifier.to_owned(), issuer, due_on })
}

/// The check requests `department` made or must answer (only open ones unless `all`), with
/// whether each is overdue on the day of `ask`; the listing is audited (`check_list`).
pub fn list(
    registry: &mut Registry,
    department: &Department,
    all: bool,
    ask: &Ask<'_>,
) -> Result<Vec<Listed>, RegistryError> {
    let requests = registry.check_requests_of(&department.code, all)?;
    registry.audit_append(&AuditEntry {
        action: action::CHECK_LIST.into(),
        operator: department.code.clone(),
        at: ask.at,
        subject: format!("department:{}", department.code),
        reason: None,
        details: json!({ "requests": requests.iter().map(|r| r.id).collect::<Vec<_>>() }),
    })?;
    let today = ask.at.date_naive();
    Ok(requests
        .into_iter()
        .map(|request| Listed { overdue: request.overdue_on(today), request })
        .collect())
}

/// The issuer `department` answers check request `number` with `finding` and `note` (what the
/// check found; required, bounded). Returns the request as answered. Fails with
/// [`ShareError::Input`] on a bad note (audited), [`ShareError::NotFound`] for an unknown
/// request, [`ShareError::NotPermitted`] (`not_issuer`, audited) when `department` is not the
/// licence's issuer, and [`CheckError::AlreadyAnswered`].
pub fn answer(
    registry: &mut Registry,
    department: &Department,
    (number, finding): (i64, Finding),
    note: Option<&str>,
    ask: &Ask<'_>,
) -> Result<CheckRequest, CheckError> {
    let note = match input::text("note", note, input::MAX_TEXT) {
        Ok(n) => n,
        Err(e) => {
            let e = ShareError::from(e);
            audit_refusal(registry, ask, None, Refusal::BadInput, &e.to_string())?;
            return Err(e.into());
        }
    };
    let not_found = || ShareError::NotFound { what: format!("check request #{number}") };
    let Some(request) = registry.check_request(number)? else {
        return Err(not_found().into());
    };
    if request.issuer_code != department.code {
        let what = format!("answer check request #{} (issuer {})", request.id, request.issuer_code);
        return Err(refuse(registry, ask, None, department, (what, Refusal::NotIssuer)).into());
    }
    let result = finding.as_str();
    let outcome = registry.check_request_answer(
        request.id,
        &department.code,
        result,
        &note,
        ask.at,
        &AuditEntry {
            action: action::CHECK_ANSWER.into(),
            operator: department.code.clone(),
            at: ask.at,
            subject: request.identifier.clone(),
            reason: Some(note.clone()),
            details: json!({
                "request": request.id,
                "requester": request.requester,
                "result": result,
            }),
        },
    )?;
    match outcome {
        AnswerOutcome::Answered => Ok(registry.check_request(number)?.ok_or_else(not_found)?),
        AnswerOutcome::AlreadyAnswered => Err(CheckError::AlreadyAnswered { request: number }),
        AnswerOutcome::Unknown => Err(not_found().into()),
    }
}
