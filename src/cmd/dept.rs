//! `elicence dept add|list|disable|grant`: the departments that consume the registry (code =
//! USCC), their credentials (printed once, stored as an argon2id hash) and their unmasking
//! grants per licence type. Administrative: once the registry has an admin operator, run by an
//! authenticated admin (`--operator`), who the audit entries name.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use crate::catalog::Level;
use crate::clock::now;
use crate::cmd::args::{CatalogArgs, OperatorArgs, RegistryArgs};
use crate::codes::check_region_code;
use crate::exit;
use crate::registry::{AuditEntry, Department, Grant, Role};
use crate::share::{action, auth, input};

#[derive(Debug, Subcommand)]
pub enum DeptCommand {
    /// Register a department; prints its new credential once (or takes --credential-file).
    #[command(after_help = "Examples:\n  \
        elicence dept add 11220100MB18300819 --name 长春市医疗保障局 --level prefectural --region 220100\n  \
        elicence dept add 11220100MB18300819 --name 长春市医疗保障局 --level prefectural --region 220100 --credential-file cred.txt\n\n\
        The credential is printed on stdout once and stored only as an argon2id hash: keep it.")]
    Add {
        /// The department's unified social credit code.
        code: String,
        #[arg(long)]
        name: String,
        /// national, provincial, prefectural or county.
        #[arg(long, value_enum)]
        level: LevelArg,
        /// 6-digit GB/T 2260 region code.
        #[arg(long)]
        region: String,
        /// Use the credential in this file (16–128 characters) instead of generating one.
        #[arg(long)]
        credential_file: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
    },
    /// List departments (never their credentials).
    #[command(after_help = "Example:\n  elicence dept list --json")]
    List {
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
        #[arg(long)]
        json: bool,
    },
    /// Disable a department: every later command run as it is refused (and audited).
    #[command(after_help = "Example:\n  elicence dept disable 11220100MB18300819")]
    Disable {
        code: String,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
    },
    /// Record a grant for a licence type; --unmask shows its personal and trade-secret fields.
    #[command(after_help = "Example:\n  \
        elicence dept grant 11220100MB18300819 --type drug-business-permit --unmask")]
    Grant {
        code: String,
        /// Catalog id, type code or Chinese name of the licence type.
        #[arg(long = "type")]
        licence_type: String,
        /// Show personal and trade-secret fields of this type unmasked.
        #[arg(long)]
        unmask: bool,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
    },
}

/// Administrative level (GB/T 36902).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LevelArg {
    National,
    Provincial,
    Prefectural,
    County,
}

impl LevelArg {
    fn level(self) -> Level {
        match self {
            LevelArg::National => Level::National,
            LevelArg::Provincial => Level::Provincial,
            LevelArg::Prefectural => Level::Prefectural,
            LevelArg::County => Level::County,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            LevelArg::National => "national",
            LevelArg::Provincial => "provincial",
            LevelArg::Prefectural => "prefectural",
            LevelArg::County => "county",
        }
    }
}

pub fn run(cmd: &DeptCommand) -> anyhow::Result<i32> {
    match cmd {
        DeptCommand::Add { code, name, level, region, credential_file, registry, by } => {
            let code = input::department_code("code", code)?;
            let name = input::text("--name", Some(name), input::MAX_TEXT)?;
            let region = region.trim();
            check_region_code(region)
                .map_err(|e| anyhow::anyhow!("--region {region:?} is not a region code: {e}"))?;
            let (credential, generated) = match credential_file {
                Some(f) => {
                    let c = auth::read(Some(f))?;
                    auth::check_strength(&c)?;
                    (c, false)
                }
                None => (auth::generate(), true),
            };
            let hash = auth::hash(&credential)?;
            let at = now()?;
            let dept = Department {
                code: code.clone(),
                name,
                level: level.as_str().to_owned(),
                region: region.to_owned(),
                enabled: true,
                created_at: at,
            };
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "dept add", &[Role::Admin])?;
            let added = registry.department_add(
                &dept,
                &hash,
                &AuditEntry {
                    action: action::DEPT_ADDED.into(),
                    operator: actor.name().to_owned(),
                    at,
                    subject: code.clone(),
                    reason: None,
                    details: json!({
                        "name": dept.name,
                        "level": dept.level,
                        "region": dept.region,
                        "credential": if generated { "generated" } else { "from file" },
                    }),
                },
            )?;
            if !added {
                anyhow::bail!("department {code} is registered already");
            }
            eprintln!("added department {code} ({}, {})", dept.name, level.level().chinese());
            if generated {
                eprintln!("its credential follows; it is shown only this once:");
                println!("{credential}");
            }
            Ok(exit::OK)
        }
        DeptCommand::List { registry, by, json } => {
            let mut registry = registry.open()?;
            by.authorize(&mut registry, "dept list", &[Role::Admin])?;
            let departments = registry.departments()?;
            if *json {
                let mut rows = Vec::with_capacity(departments.len());
                for d in &departments {
                    rows.push(json!({ "department": d, "grants": registry.grants_of(&d.code)? }));
                }
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for d in &departments {
                    let grants: Vec<String> = registry
                        .grants_of(&d.code)?
                        .into_iter()
                        .map(|g| {
                            format!("{}{}", g.type_code, if g.unmask { "(unmask)" } else { "" })
                        })
                        .collect();
                    println!(
                        "{}  {}  {}  {}  {}  grants: {}",
                        d.code,
                        d.name,
                        d.level,
                        d.region,
                        if d.enabled { "enabled" } else { "DISABLED" },
                        if grants.is_empty() { "-".to_string() } else { grants.join(", ") }
                    );
                }
            }
            Ok(exit::OK)
        }
        DeptCommand::Disable { code, registry, by } => {
            let code = input::department_code("code", code)?;
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "dept disable", &[Role::Admin])?;
            let at = now()?;
            let done = registry.department_disable(
                &code,
                &AuditEntry {
                    action: action::DEPT_DISABLED.into(),
                    operator: actor.name().to_owned(),
                    at,
                    subject: code.clone(),
                    reason: None,
                    details: json!({}),
                },
            )?;
            if !done {
                anyhow::bail!("no department {code}");
            }
            println!("disabled {code}");
            Ok(exit::OK)
        }
        DeptCommand::Grant {
            code,
            licence_type,
            unmask,
            catalog: CatalogArgs { catalog: dir },
            registry,
            by,
        } => {
            let code = input::department_code("code", code)?;
            input::bounded("--type", licence_type, input::MAX_TEXT)?;
            let at = now()?;
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "dept grant", &[Role::Admin])?;
            // The type must exist in the catalog that decides rights on this registry (the
            // published one; `--catalog` only when nothing was published yet), not merely in
            // whatever folder `--catalog` names.
            let (cat, version) = registry.rights_catalog(dir, at).with_context(|| {
                format!("cannot read the registry's catalog ({})", dir.display())
            })?;
            let t = cat.get(licence_type.trim()).ok_or_else(|| {
                anyhow::anyhow!(
                    "no licence type {licence_type:?} in the registry's published catalog \
                     (version {}); publish a catalog that has it first (`elicence catalog publish`)",
                    version.number
                )
            })?;
            let done = registry.grant_set(
                &Grant {
                    department: code.clone(),
                    type_code: t.code.clone(),
                    unmask: *unmask,
                    granted_at: at,
                },
                &AuditEntry {
                    action: action::DEPT_GRANT.into(),
                    operator: actor.name().to_owned(),
                    at,
                    subject: code.clone(),
                    reason: None,
                    details: json!({ "type_code": t.code, "type": t.id, "unmask": unmask }),
                },
            )?;
            if !done {
                anyhow::bail!("no department {code}");
            }
            println!(
                "granted {code} {} ({}){}",
                t.id,
                t.code,
                if *unmask { " with unmasking" } else { "" }
            );
            Ok(exit::OK)
        }
    }
}
