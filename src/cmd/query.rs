//! `elicence query --as DEPT --reason TEXT (--id|--holder|--number|--qr)`: a department asks the
//! registry for licences within its sharing rights. The answer is each matching licence's
//! status and the fields the rights allow, personal and trade-secret ones masked unless the
//! department holds an unmasking grant. The query (department, reason, identifiers returned and
//! withheld) or its refusal is appended to the audit trail.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::catalog;
use crate::clock::now;
use crate::cmd::args::{CatalogArgs, RegistryArgs, RequestArgs};
use crate::exit;
use crate::identify::LicenceId;
use crate::registry::{AuditEntry, Registry, RegistryStatus};
use crate::render::qr::parse_qr_payload;
use crate::share::{
    self, Ask, ShareError, SharedLicence, action, audit_refusal, authenticate, input,
};

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

/// The JSON answer.
#[derive(Debug, Serialize)]
pub struct QueryAnswer {
    pub department: String,
    pub reason: String,
    pub by: &'static str,
    pub licences: Vec<SharedLicence>,
}

pub fn run(args: &QueryArgs) -> anyhow::Result<i32> {
    let at = now()?;
    let cat = catalog::load_dir(&args.catalog.catalog).with_context(|| {
        format!("cannot load the catalog from {}", args.catalog.catalog.display())
    })?;
    let (by, key) = match (&args.id, &args.holder, &args.number, &args.qr) {
        (Some(k), _, _, _) => ("identifier", k.as_str()),
        (_, Some(k), _, _) => ("holder", k.as_str()),
        (_, _, Some(k), _) => ("number", k.as_str()),
        (_, _, _, Some(k)) => ("qr", k.as_str()),
        _ => anyhow::bail!("give one of --id, --holder, --number, --qr"),
    };
    let ask = Ask {
        command: "query",
        as_code: &args.request.department.as_code,
        credential_file: args.request.department.credential_file.as_deref(),
        subject: format!("{by}:{}", share::key_for_audit(key)),
        at,
    };
    let mut registry = args.registry.open()?;
    let (department, reason) =
        authenticate(&mut registry, &ask, args.request.reason.as_deref(), true)?;
    let reason = reason.unwrap_or_default();

    let found = match lookup(&registry, by, key) {
        Ok(found) => found,
        Err(e) => {
            if let Some(refusal) = e.refusal() {
                audit_refusal(&mut registry, &ask, Some(&reason), refusal, &e.to_string())?;
            }
            return Err(e.into());
        }
    };
    let grants = registry.grants_of(&department.code)?;
    let mut shown = Vec::new();
    let mut withheld = Vec::new();
    for v in &found {
        match share::rights_on(&cat, &grants, &department, v) {
            Ok((t, access, unmask)) => shown.push(share::shared_view(t, v, access, unmask)),
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
        let ask = Ask { subject: identifier.clone(), ..ask };
        audit_refusal(&mut registry, &ask, Some(&reason), *refusal, &e.to_string())?;
        return Err(e.into());
    }
    registry.audit_append(&AuditEntry {
        action: action::QUERY.into(),
        operator: department.code.clone(),
        at,
        subject: shown.first().map_or_else(|| ask.subject.clone(), |l| l.identifier.clone()),
        reason: Some(reason.clone()),
        details: json!({
            "department": department.code,
            "by": by,
            "key": share::key_for_audit(key),
            "returned": shown.iter().map(|l| &l.identifier).collect::<Vec<_>>(),
            "withheld": withheld.iter().map(|(id, r)| json!({"identifier": id, "refusal": r.as_str()})).collect::<Vec<_>>(),
        }),
    })?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let answer = QueryAnswer { department: department.code, reason, by, licences: shown };
        writeln!(out, "{}", serde_json::to_string(&answer)?)?;
        return Ok(if answer.licences.is_empty() { exit::FAILURE } else { exit::OK });
    }
    if shown.is_empty() {
        writeln!(out, "no licence matches")?;
        return Ok(exit::FAILURE);
    }
    for l in &shown {
        writeln!(out, "{}  {}  {}", l.identifier, l.type_name, status_text(&l.registry_status))?;
        for f in &l.fields {
            let mark = if f.masked { "  (masked)" } else { "" };
            writeln!(out, "  {}: {}{mark}", f.label, f.value)?;
        }
    }
    Ok(exit::OK)
}

/// Finds the versions a search names. Bad keys are [`ShareError::Input`].
fn lookup(
    registry: &Registry,
    by: &'static str,
    key: &str,
) -> Result<Vec<crate::registry::VersionRow>, ShareError> {
    let by_identifier = |identifier: &str| -> Result<Vec<_>, ShareError> {
        LicenceId::parse(identifier).map_err(|e| input::InputError::Invalid {
            field: "--id",
            reason: format!("not a GB/T 36904 identifier: {e}"),
        })?;
        Ok(registry.licence_by_identifier(identifier)?.into_iter().collect())
    };
    match by {
        "identifier" => {
            input::bounded("--id", key, input::MAX_KEY)?;
            by_identifier(key.trim())
        }
        "qr" => {
            input::bounded("--qr", key, input::MAX_KEY + 32)?;
            let (identifier, _) = parse_qr_payload(key.trim())
                .map_err(|e| input::InputError::Invalid { field: "--qr", reason: e.to_string() })?;
            by_identifier(&identifier)
        }
        "holder" => {
            let key = input::search_key("--holder", key)?;
            Ok(registry.licences_by_holder(&key.to_ascii_uppercase())?)
        }
        _ => {
            let key = input::search_key("--number", key)?;
            Ok(registry.licences_by_printed_no(&key)?)
        }
    }
}

/// `current`, `superseded by …`, `REVOKED …`.
pub fn status_text(s: &RegistryStatus) -> String {
    match s {
        RegistryStatus::Current => "current".into(),
        RegistryStatus::Superseded { by } => format!("superseded by {by}"),
        RegistryStatus::Revoked { at, reason, .. } => {
            format!("REVOKED {} ({reason})", at.date_naive())
        }
        RegistryStatus::Unknown => "unknown".into(),
    }
}
