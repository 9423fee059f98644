//! `elicence check-answer REQ --as ISSUER --result consistent|inconsistent --note TEXT`: the
//! issuer of a licence answers a check request (核查) about it. Only the issuer may answer, once;
//! the answer is recorded and audited, and refusals are audited too ([`crate::share::check`]).

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{DepartmentArgs, RegistryArgs};
use crate::exit;
use crate::share::check::{self, Finding};
use crate::share::{Ask, authenticate};

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

impl From<CheckResult> for Finding {
    fn from(r: CheckResult) -> Finding {
        match r {
            CheckResult::Consistent => Finding::Consistent,
            CheckResult::Inconsistent => Finding::Inconsistent,
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
    let finding = Finding::from(args.result);
    let answered = check::answer(
        &mut registry,
        &department,
        (args.request, finding),
        args.note.as_deref(),
        &ask,
    )?;
    println!("check request #{} answered: {}", answered.id, finding.as_str());
    Ok(exit::OK)
}
