//! `elicence check-answer REQ --as ISSUER --result consistent|inconsistent --note TEXT`: the
//! issuer of a licence answers a check request (核查) about it. Only the issuer may answer, once;
//! the answer is recorded and audited, and refusals are audited too.

use clap::Args;
use serde_json::json;

use crate::clock::now;
use crate::cmd::args::{DepartmentArgs, RegistryArgs};
use crate::exit;
use crate::registry::{AnswerOutcome, AuditEntry};
use crate::share::{Ask, Refusal, ShareError, action, audit_refusal, authenticate, input};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    elicence check-answer 3 --as 11220104MB1875524M --result consistent --note 与登记档案一致")]
pub struct CheckAnswerArgs {
    /// Number of the check request.
    pub request: i64,
    #[command(flatten)]
    pub department: DepartmentArgs,
    #[arg(long, value_enum)]
    pub result: CheckResult,
    /// What the check found; required, at most 200 characters.
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CheckResult {
    Consistent,
    Inconsistent,
}

impl CheckResult {
    fn as_str(self) -> &'static str {
        match self {
            CheckResult::Consistent => crate::registry::CHECK_CONSISTENT,
            CheckResult::Inconsistent => crate::registry::CHECK_INCONSISTENT,
        }
    }
}

pub fn run(args: &CheckAnswerArgs) -> anyhow::Result<i32> {
    let at = now()?;
    let mut registry = args.registry.open()?;
    let ask = Ask {
        command: "check-answer",
        as_code: &args.department.as_code,
        credential_file: args.department.credential_file.as_deref(),
        subject: format!("check-request:{}", args.request),
        at,
    };
    let (department, _) = authenticate(&mut registry, &ask, None, false)?;
    let note = match input::text("--note", args.note.as_deref(), input::MAX_TEXT) {
        Ok(n) => n,
        Err(e) => {
            let e = ShareError::from(e);
            audit_refusal(&mut registry, &ask, None, Refusal::BadInput, &e.to_string())?;
            return Err(e.into());
        }
    };
    let Some(request) = registry.check_request(args.request)? else {
        return Err(
            ShareError::NotFound { what: format!("check request #{}", args.request) }.into()
        );
    };
    if request.issuer_code != department.code {
        let e = ShareError::NotPermitted {
            department: department.code.clone(),
            what: format!("answer check request #{} (issuer {})", request.id, request.issuer_code),
            refusal: Refusal::NotIssuer,
        };
        audit_refusal(&mut registry, &ask, None, Refusal::NotIssuer, &e.to_string())?;
        return Err(e.into());
    }
    let result = args.result.as_str();
    let outcome = registry.check_request_answer(
        request.id,
        &department.code,
        result,
        &note,
        at,
        &AuditEntry {
            action: action::CHECK_ANSWER.into(),
            operator: department.code.clone(),
            at,
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
        AnswerOutcome::Answered => {
            println!("check request #{} answered: {result}", request.id);
            Ok(exit::OK)
        }
        AnswerOutcome::AlreadyAnswered => {
            anyhow::bail!("check request #{} is answered already", request.id)
        }
        AnswerOutcome::Unknown => {
            Err(ShareError::NotFound { what: format!("check request #{}", request.id) }.into())
        }
    }
}
