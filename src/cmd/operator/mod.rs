//! `elicence operator add|list|disable|grant`: the named staff who collect, review and issue
//! (Art. 9), their roles and credentials (printed once, stored as an argon2id hash). Once an
//! operator holds the admin role, every effectful command needs an authenticated operator with
//! the right role (see `crate::operators`); these subcommands then need an admin themselves.
//! The first operators of a registry are added without authentication.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::clock::now;
use crate::cmd::args::{OperatorArgs, RegistryArgs};
use crate::exit;
use crate::operators::{self, action};
use crate::registry::{AuditEntry, Operator, Role};
use crate::share::auth;

/// A role on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// 采集: stages exports for review.
    Collector,
    /// 审核: approves or rejects staged versions.
    Reviewer,
    /// 签发: issues and revokes directly.
    Issuer,
    /// Operators, departments, backups, restores, migrations.
    Admin,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Collector => Role::Collector,
            RoleArg::Reviewer => Role::Reviewer,
            RoleArg::Issuer => Role::Issuer,
            RoleArg::Admin => Role::Admin,
        }
    }
}

fn roles(args: &[RoleArg]) -> BTreeSet<Role> {
    args.iter().map(|r| r.role()).collect()
}

fn role_list(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Register an operator with its roles; prints its new credential once (or takes
    /// --credential-file).
    #[command(after_help = "Examples:\n  \
        elicence operator add 王敏 --role admin > admin.cred\n  \
        elicence operator add 李静 --role collector --operator 王敏 --operator-credential-file admin.cred > collector.cred\n  \
        elicence operator add 张伟 --role reviewer,issuer --credential-file zhang.cred --operator 王敏 --operator-credential-file admin.cred\n\n\
        The credential is printed on stdout once and stored only as an argon2id hash: keep it.\n\
        Once an operator holds the admin role, every effectful command needs --operator with its credential.")]
    Add {
        /// The operator's name (1–64 characters), as the audit trail will show it.
        name: String,
        /// Roles: collector, reviewer, issuer, admin (repeat the flag or separate by commas).
        #[arg(long = "role", value_enum, value_delimiter = ',', required = true)]
        roles: Vec<RoleArg>,
        /// Use the credential in this file (16–128 characters) instead of generating one.
        #[arg(long)]
        credential_file: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
    },
    /// List operators and their roles (never their credentials).
    #[command(after_help = "Example:\n  elicence operator list --json")]
    List {
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
        #[arg(long)]
        json: bool,
    },
    /// Disable an operator: every later command it runs is refused (and audited).
    #[command(after_help = "Example:\n  elicence operator disable 李静 --operator 王敏")]
    Disable {
        name: String,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
    },
    /// Give an operator further roles.
    #[command(
        after_help = "Example:\n  elicence operator grant 李静 --role reviewer --operator 王敏"
    )]
    Grant {
        name: String,
        #[arg(long = "role", value_enum, value_delimiter = ',', required = true)]
        roles: Vec<RoleArg>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        by: OperatorArgs,
    },
}

pub fn run(cmd: &OperatorCommand) -> anyhow::Result<i32> {
    match cmd {
        OperatorCommand::Add { name, roles: role_args, credential_file, registry, by } => {
            let name = operators::check_name(name)?;
            let roles = roles(role_args);
            let (credential, generated) = match credential_file {
                Some(f) => {
                    let c = auth::read(Some(f))?;
                    auth::check_strength(&c)?;
                    (c, false)
                }
                None => (auth::generate(), true),
            };
            let hash = auth::hash(&credential)?;
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "operator add", &[Role::Admin])?;
            let at = now()?;
            let operator = Operator { name: name.clone(), roles, enabled: true, created_at: at };
            let added = registry.operator_add(
                &operator,
                &hash,
                &AuditEntry {
                    action: action::ADDED.into(),
                    operator: actor.name().to_owned(),
                    at,
                    subject: format!("operator:{name}"),
                    reason: None,
                    details: json!({
                        "roles": operator.roles,
                        "credential": if generated { "generated" } else { "from file" },
                    }),
                },
            )?;
            if !added {
                anyhow::bail!("operator {name} is registered already");
            }
            eprintln!("added operator {name} ({})", role_list(&operator.roles));
            if generated {
                eprintln!("its credential follows; it is shown only this once:");
                println!("{credential}");
            }
            Ok(exit::OK)
        }
        OperatorCommand::List { registry, by, json } => {
            let mut registry = registry.open()?;
            by.authorize(&mut registry, "operator list", &[Role::Admin])?;
            let list = registry.operators()?;
            if *json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                for o in &list {
                    println!(
                        "{}  {}  {}",
                        o.name,
                        role_list(&o.roles),
                        if o.enabled { "enabled" } else { "DISABLED" }
                    );
                }
            }
            Ok(exit::OK)
        }
        OperatorCommand::Disable { name, registry, by } => {
            let name = operators::check_name(name)?;
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "operator disable", &[Role::Admin])?;
            let done = registry.operator_disable(
                &name,
                &AuditEntry {
                    action: action::DISABLED.into(),
                    operator: actor.name().to_owned(),
                    at: now()?,
                    subject: format!("operator:{name}"),
                    reason: None,
                    details: json!({}),
                },
            )?;
            if !done {
                anyhow::bail!("no operator {name}");
            }
            println!("disabled operator {name}");
            Ok(exit::OK)
        }
        OperatorCommand::Grant { name, roles: role_args, registry, by } => {
            let name = operators::check_name(name)?;
            let roles = roles(role_args);
            let mut registry = registry.open()?;
            let actor = by.authorize(&mut registry, "operator grant", &[Role::Admin])?;
            let held = registry.operator_grant(
                &name,
                &roles,
                &AuditEntry {
                    action: action::GRANT.into(),
                    operator: actor.name().to_owned(),
                    at: now()?,
                    subject: format!("operator:{name}"),
                    reason: None,
                    details: json!({ "roles": roles }),
                },
            )?;
            let Some(held) = held else { anyhow::bail!("no operator {name}") };
            println!("operator {name} now holds {}", role_list(&held));
            Ok(exit::OK)
        }
    }
}
