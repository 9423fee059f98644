//! `elicence check-request ID --as DEPT --reason TEXT`: a department that doubts a licence asks
//! its issuer to check it (核查); the request is recorded and audited. `--list` shows the open
//! requests a department made or must answer.

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use crate::catalog;
use crate::clock::now;
use crate::cmd::args::{CatalogArgs, RegistryArgs, RequestArgs};
use crate::exit;
use crate::identify::LicenceId;
use crate::registry::{AuditEntry, Registry};
use crate::share::{self, Ask, ShareError, action, audit_refusal, authenticate, input};
use crate::workdays::{DEFAULT_CHECK_ANSWER_DAYS, Holidays};

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
        let requests = registry.check_requests_of(&department.code, args.all)?;
        registry.audit_append(&AuditEntry {
            action: action::CHECK_LIST.into(),
            operator: department.code.clone(),
            at,
            subject: format!("department:{}", department.code),
            reason: None,
            details: json!({ "requests": requests.iter().map(|r| r.id).collect::<Vec<_>>() }),
        })?;
        let today = at.date_naive();
        if args.json {
            let rows: Vec<serde_json::Value> = requests
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    if let Some(map) = v.as_object_mut() {
                        map.insert("overdue".into(), r.overdue_on(today).into());
                    }
                    v
                })
                .collect();
            println!("{}", serde_json::to_string(&rows)?);
        } else if requests.is_empty() {
            println!("no open check requests");
        } else {
            for r in &requests {
                let role = if r.issuer_code == department.code { "to answer" } else { "asked" };
                let due = match r.due_on {
                    Some(d) if r.overdue_on(today) => format!("  due {d} OVERDUE"),
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
    let cat = catalog::load_dir(&args.catalog.catalog).with_context(|| {
        format!("cannot load the catalog from {}", args.catalog.catalog.display())
    })?;
    let (department, reason) =
        authenticate(&mut registry, &ask, args.request.reason.as_deref(), true)?;
    let reason = reason.unwrap_or_default();
    let refuse = |registry: &mut Registry, e: ShareError| -> anyhow::Result<i32> {
        if let Some(refusal) = e.refusal() {
            audit_refusal(registry, &ask, Some(&reason), refusal, &e.to_string())?;
        }
        Err(e.into())
    };
    if let Err(e) = input::bounded("identifier", identifier, input::MAX_KEY)
        .map_err(ShareError::from)
        .and_then(|()| {
            LicenceId::parse(identifier).map(|_| ()).map_err(|e| {
                ShareError::Input(input::InputError::Invalid {
                    field: "identifier",
                    reason: format!("not a GB/T 36904 identifier: {e}"),
                })
            })
        })
    {
        return refuse(&mut registry, e);
    }
    let Some(version) = registry.licence_by_identifier(identifier)? else {
        return Err(ShareError::NotFound { what: identifier.to_string() }.into());
    };
    let grants = registry.grants_of(&department.code)?;
    if let Err(refusal) = share::rights_on(&cat, &grants, &department, &version) {
        let e = ShareError::NotPermitted {
            department: department.code.clone(),
            what: format!("ask for a check of {identifier}"),
            refusal,
        };
        return refuse(&mut registry, e);
    }
    let issuer = version.key.issuer_code.clone();
    // Art. 13: the issuer answers within the type's working days.
    let holidays = match &args.holidays {
        Some(path) => Holidays::load(path)?,
        None => Holidays::default(),
    };
    let days = cat
        .types
        .iter()
        .find(|t| t.code == version.key.type_code)
        .map_or(DEFAULT_CHECK_ANSWER_DAYS, |t| t.check_answer_days);
    let due_on = holidays.add_working_days(at.date_naive(), days);
    let id = registry.check_request_open(
        identifier,
        &department.code,
        &issuer,
        &reason,
        at,
        due_on,
        &AuditEntry {
            action: action::CHECK_REQUEST.into(),
            operator: department.code.clone(),
            at,
            subject: identifier.to_string(),
            reason: Some(reason.clone()),
            details: json!({
                "department": department.code,
                "issuer": issuer,
                "due_on": due_on.to_string(),
            }),
        },
    )?;
    if args.json {
        println!(
            "{}",
            json!({ "request": id, "identifier": identifier, "issuer": issuer, "due_on": due_on })
        );
    } else {
        println!("check request #{id} sent to {issuer} for {identifier}, due {due_on}");
    }
    Ok(exit::OK)
}
