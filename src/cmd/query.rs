//! `elicence query --as DEPT --reason TEXT (--id|--holder|--number|--qr)`: a department asks the
//! registry for licences within its sharing rights. The answer is each matching licence's
//! status and the fields the rights allow, personal and trade-secret ones masked unless the
//! department holds an unmasking grant. The query (department, reason, identifiers returned and
//! withheld) or its refusal is appended to the audit trail.

use std::io::Write as _;

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{CatalogArgs, RegistryArgs, RequestArgs};
use crate::exit;
use crate::registry::RegistryStatus;
pub use crate::share::query::QueryAnswer;
use crate::share::query::{self, By};
use crate::share::{Ask, authenticate};

#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("by").required(true).args(["id", "holder", "number", "qr"]),
    after_help = "Examples:\n  \
    ELICENCE_CREDENTIAL=… elicence query --as 11220100MB18300819 --reason 医保定点资格审核 --holder 91220104MA00001708\n  \
    elicence query --as 11220100MB18300819 --credential-file cred.txt --reason 核验 --id 1.2.156.3005.2.…\n  \
    elicence query --as 11220100MB18300819 --reason 扫码核验 --qr 'ELIC1:1.2.156.3005.2.…:0123456789ABCDEF' --json\n\n\
    Exit codes: 0 answered, 1 nothing matches, 2 usage or bad input, 6 not permitted.")]
pub struct QueryArgs {
    /// A GB/T 36904 identifier.
    #[command(flatten)]
    pub request: RequestArgs,
    #[arg(long)]
    pub id: Option<String>,
    /// A holder code (USCC or citizen ID number).
    #[arg(long)]
    pub holder: Option<String>,
    /// A printed licence number (证照编号).
    #[arg(long)]
    pub number: Option<String>,
    /// A scanned QR payload `ELIC1:<identifier>:<16 hex>`.
    #[arg(long)]
    pub qr: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: &QueryArgs) -> anyhow::Result<i32> {
    let at = now()?;
    let (by, key) = match (&args.id, &args.holder, &args.number, &args.qr) {
        (Some(k), _, _, _) => (By::Identifier, k.as_str()),
        (_, Some(k), _, _) => (By::Holder, k.as_str()),
        (_, _, Some(k), _) => (By::Number, k.as_str()),
        (_, _, _, Some(k)) => (By::Qr, k.as_str()),
        _ => anyhow::bail!("give one of --id, --holder, --number, --qr"),
    };
    let ask = Ask {
        command: "query",
        as_code: &args.request.department.as_code,
        credential_file: args.request.department.credential_file.as_deref(),
        subject: query::subject(by, key),
        at,
    };
    let mut registry = args.registry.open()?;
    let cat = args.catalog.rights(&mut registry, at)?;
    let (department, reason) =
        authenticate(&mut registry, &ask, args.request.reason.as_deref(), true)?;
    let reason = reason.unwrap_or_default();
    let answer = query::answer(&mut registry, &cat, &department, &reason, (by, key), &ask)?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&answer)?)?;
        return Ok(if answer.licences.is_empty() { exit::FAILURE } else { exit::OK });
    }
    if answer.licences.is_empty() {
        writeln!(out, "no licence matches")?;
        return Ok(exit::FAILURE);
    }
    for l in &answer.licences {
        writeln!(out, "{}  {}  {}", l.identifier, l.type_name, status_text(&l.registry_status))?;
        for f in &l.fields {
            let mark = if f.masked { "  (masked)" } else { "" };
            writeln!(out, "  {}: {}{mark}", f.label, f.value)?;
        }
    }
    Ok(exit::OK)
}

/// `current`, `superseded by …`, `REVOKED …`, `EXPIRED …`, `DISPUTED …`.
pub fn status_text(s: &RegistryStatus) -> String {
    match s {
        RegistryStatus::Current => "current".into(),
        RegistryStatus::Expired { on } => format!("EXPIRED (valid to {on})"),
        RegistryStatus::Disputed { check_request, since } => {
            format!(
                "DISPUTED (check request #{check_request} answered inconsistent {})",
                since.date_naive()
            )
        }
        RegistryStatus::Superseded { by } => format!("superseded by {by}"),
        RegistryStatus::Revoked { effective, reason, .. } => {
            format!("REVOKED {effective} ({reason})")
        }
        RegistryStatus::Unknown => "unknown".into(),
    }
}
