//! `elicence check-request ID --as DEPT --reason TEXT`: a department that doubts a licence asks
//! its issuer to check it (核查); the request is recorded and audited. `--list` shows the open
//! requests a department made or must answer. The rules are [`crate::share::check`]'s.

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{CatalogArgs, RegistryArgs, RequestArgs};
use crate::exit;
use crate::share::check::{self, Listed};
use crate::share::{Ask, authenticate};
use crate::workdays::Holidays;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence check-request 1.2.156.3005.2.… --as 11220100MB18300819 --reason 持证人信息与申报不符\n  \
    elicence check-request --list --as 11220104MB1875524M --json\n\n\
    The requester must be allowed to see the licence (its sharing rights); the request goes to \
    the licence's issuer (颁发机构代码).")]
pub struct CheckRequestArgs {
    /// Identifier of the licence version to check.
    #[command(flatten)]
    pub request: RequestArgs,
    #[arg(required_unless_present = "list")]
    pub identifier: Option<String>,
    /// List open requests made by or addressed to the department instead.
    #[arg(long, conflicts_with = "identifier")]
    pub list: bool,
    /// With --list: answered requests too.
    #[arg(long, requires = "list")]
    pub all: bool,
    #[arg(long)]
    pub json: bool,
    /// Public holidays (one YYYY-MM-DD a line) skipped, like weekends, when the due date is
    /// counted in working days (the type's `check_answer_days`, default 5).
    #[arg(long, env = "ELICENCE_HOLIDAYS", value_name = "FILE")]
    pub holidays: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: &CheckRequestArgs) -> anyhow::Result<i32> {
    let at = now()?;
    let mut registry = args.registry.open()?;
    if args.list {
        let ask = Ask {
            command: "check-request --list",
            as_code: &args.request.department.as_code,
            credential_file: args.request.department.credential_file.as_deref(),
            subject: "check-requests".into(),
            at,
        };
        let (department, _) = authenticate(&mut registry, &ask, None, false)?;
        let requests = check::list(&mut registry, &department, args.all, &ask)?;
        if args.json {
            println!("{}", serde_json::to_string(&requests)?);
        } else if requests.is_empty() {
            println!("no open check requests");
        } else {
            for Listed { request: r, overdue } in &requests {
                let role = if r.issuer_code == department.code { "to answer" } else { "asked" };
                let due = match r.due_on {
                    Some(d) if *overdue => format!("  due {d} OVERDUE"),
                    Some(d) => format!("  due {d}"),
                    None => String::new(),
                };
                println!(
                    "#{}  {}  {role}  from {} to {}  opened {}{due}  {}  reason: {}",
                    r.id,
                    r.identifier,
                    r.requester,
                    r.issuer_code,
                    r.opened_at.format("%Y-%m-%d %H:%M"),
                    r.result.as_deref().unwrap_or("open"),
                    r.reason
                );
            }
        }
        return Ok(exit::OK);
    }

    let identifier = args.identifier.as_deref().unwrap_or_default().trim();
    let ask = Ask {
        command: "check-request",
        as_code: &args.request.department.as_code,
        credential_file: args.request.department.credential_file.as_deref(),
        subject: identifier.to_string(),
        at,
    };
    let cat = args.catalog.rights(&mut registry, at)?;
    let holidays = match &args.holidays {
        Some(path) => Holidays::load(path)?,
        None => Holidays::default(),
    };
    let (department, reason) =
        authenticate(&mut registry, &ask, args.request.reason.as_deref(), true)?;
    let reason = reason.unwrap_or_default();
    let opened =
        check::request(&mut registry, (&cat, &holidays), &department, &reason, identifier, &ask)?;
    if args.json {
        println!("{}", serde_json::to_string(&opened)?);
    } else {
        println!(
            "check request #{} sent to {} for {}, due {}",
            opened.request, opened.issuer, opened.identifier, opened.due_on
        );
    }
    Ok(exit::OK)
}
