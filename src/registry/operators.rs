//! Operators (经办人员): the named staff who collect (采集), review (审核) and issue (签发)
//! e-licences, and administer the registry. Only storage lives here: each operator's roles,
//! whether it is enabled and its credential hash (argon2id, made by the caller; the credential
//! itself is never stored). Who may run which command is decided above the registry, by the
//! operator gate.
//!
//! An operator is disabled, never deleted (a trigger refuses it), so the names in the audit trail
//! always resolve. Every change is written in the same transaction as its audit entry.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audit::{self, AuditEntry};
use super::db::{ColumnError, Row, vals};
use super::encode::{get_time, time_text};
use super::{Registry, RegistryError};

/// What an operator may do (Art. 9: named staff collect, review and issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 采集: stages exports for review (`run` of a type under review).
    Collector,
    /// 审核: approves or rejects staged versions (`review approve|reject`).
    Reviewer,
    /// 签发: issues and revokes directly (`run` without review, `revoke`).
    Issuer,
    /// Administers operators, departments, backups, restores and migrations.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Collector, Role::Reviewer, Role::Issuer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Collector => "collector",
            Role::Reviewer => "reviewer",
            Role::Issuer => "issuer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (collector, reviewer, issuer or admin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim()).ok_or_else(|| UnknownRole(s.into()))
    }
}

/// An operator as registered. The credential hash is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl Operator {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Roles as stored: names in [`Role`] order, comma-separated.
fn roles_text(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

fn operator_row(r: &Row) -> Result<Operator, ColumnError> {
    let text: String = r.get(1)?;
    let roles = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Role::from_str)
        .collect::<Result<BTreeSet<Role>, _>>()
        .map_err(|e| ColumnError::new(1, e.to_string()))?;
    Ok(Operator { name: r.get(0)?, roles, enabled: r.get(2)?, created_at: get_time(r, 3)? })
}

impl Registry {
    /// Registers an operator with its credential hash (audited). Returns `false`, writing
    /// nothing, when the name is taken.
    pub fn operator_add(
        &mut self,
        operator: &Operator,
        credential_hash: &str,
        audit_entry: &AuditEntry,
    ) -> Result<bool, RegistryError> {
        self.db.write("add operator", |tx| {
            let n = tx.execute(
                "insert operator",
                "INSERT INTO operators (name, roles, enabled, credential_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                &vals![
                    &operator.name,
                    roles_text(&operator.roles),
                    operator.enabled,
                    credential_hash,
                    time_text(operator.created_at)
                ],
            )?;
            if n == 0 {
                return Ok(false);
            }
            audit::append(tx, audit_entry)?;
            Ok(true)
        })
    }

    /// An operator and its credential hash, or `None`.
    pub fn operator(&self, name: &str) -> Result<Option<(Operator, String)>, RegistryError> {
        self.db.query_opt(
            "read operator",
            "SELECT name, roles, enabled, created_at, credential_hash FROM operators
             WHERE name = ?1",
            &vals![name],
            |r| Ok((operator_row(r)?, r.get(4)?)),
        )
    }

    /// Every operator, by name.
    pub fn operators(&self) -> Result<Vec<Operator>, RegistryError> {
        self.db.query(
            "read operators",
            "SELECT name, roles, enabled, created_at FROM operators ORDER BY name",
            &[],
            operator_row,
        )
    }

    /// Whether any operator holds the admin role, enabled or not: from then on every effectful
    /// command must be run by an authenticated operator. (A disabled admin keeps it so:
    /// disabling the last admin must not switch authentication off.)
    pub fn operators_enforced(&self) -> Result<bool, RegistryError> {
        Ok(self.operators()?.iter().any(|o| o.has(Role::Admin)))
    }

    /// Disables an operator (audited). Returns `false` for an unknown name.
    pub fn operator_disable(
        &mut self,
        name: &str,
        audit_entry: &AuditEntry,
    ) -> Result<bool, RegistryError> {
        self.db.write("disable operator", |tx| {
            let n = tx.execute(
                "disable operator",
                "UPDATE operators SET enabled = 0 WHERE name = ?1",
                &vals![name],
            )?;
            if n == 0 {
                return Ok(false);
            }
            audit::append(tx, audit_entry)?;
            Ok(true)
        })
    }

    /// Gives an operator further roles (audited); returns its roles afterwards, or `None` for
    /// an unknown name.
    pub fn operator_grant(
        &mut self,
        name: &str,
        roles: &BTreeSet<Role>,
        audit_entry: &AuditEntry,
    ) -> Result<Option<BTreeSet<Role>>, RegistryError> {
        self.db.write("grant operator roles", |tx| {
            let found = tx.query_opt(
                "read operator",
                "SELECT name, roles, enabled, created_at FROM operators WHERE name = ?1",
                &vals![name],
                operator_row,
            )?;
            let Some(mut operator) = found else { return Ok(None) };
            operator.roles.extend(roles.iter().copied());
            tx.execute(
                "grant operator roles",
                "UPDATE operators SET roles = ?2 WHERE name = ?1",
                &vals![name, roles_text(&operator.roles)],
            )?;
            audit::append(tx, audit_entry)?;
            Ok(Some(operator.roles))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("boss".parse::<Role>().is_err());
        let set: BTreeSet<Role> = [Role::Admin, Role::Collector].into_iter().collect();
        assert_eq!(roles_text(&set), "collector,admin");
    }
}
