//! The registry side of sharing (共享): departments and their credential hashes, unmasking
//! grants, check requests (核查) and copies for use (加注件), plus the lookups a sharing query
//! needs (by holder code, by printed number) and the raw figures for oversight.
//!
//! Only storage lives here. Who may see what (rights, masking) is decided in `crate::share`,
//! which never touches SQL; credentials arrive here already hashed. Every record that answers a
//! consumer (a check request, an answer, a copy) is written in the same transaction as its
//! audit entry.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::audit::{self, AuditEntry};
use super::sqlite::{date_text, db_err, get_opt_time, get_time, get_u64, immediate, time_text};
use super::{Registry, RegistryError, VersionRow};

/// A department as registered (code = its USCC). The credential hash is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Department {
    pub code: String,
    pub name: String,
    /// `national`, `provincial`, `prefectural` or `county`.
    pub level: String,
    /// 6-digit GB/T 2260 region code.
    pub region: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A department's grant for one licence type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub department: String,
    pub type_code: String,
    /// Personal and trade-secret fields are shown unmasked.
    pub unmask: bool,
    pub granted_at: DateTime<Utc>,
}

/// A check request (核查) and its answer, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRequest {
    pub id: i64,
    pub identifier: String,
    pub requester: String,
    pub issuer_code: String,
    pub reason: String,
    pub opened_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answerer: Option<String>,
    /// `consistent` or `inconsistent`.
    pub result: Option<String>,
    pub note: Option<String>,
}

/// A copy for use (加注件) handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyRecord {
    pub id: i64,
    pub identifier: String,
    pub department: String,
    pub reason: String,
    pub expires: NaiveDate,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

/// What recording an answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOutcome {
    Answered,
    /// The request has an answer already (nothing changed).
    AlreadyAnswered,
    /// No request with that number.
    Unknown,
}

/// Per issuing department: versions created and revocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IssuerFigures {
    pub issuer_code: String,
    pub issued: u64,
    pub changed: u64,
    pub revoked: u64,
}

/// Rejected rows by pipeline and rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectFigures {
    pub pipeline: String,
    pub rule: String,
    pub count: u64,
}

fn department_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Department> {
    Ok(Department {
        code: r.get(0)?,
        name: r.get(1)?,
        level: r.get(2)?,
        region: r.get(3)?,
        enabled: r.get(4)?,
        created_at: get_time(r, 5)?,
    })
}

fn check_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckRequest> {
    Ok(CheckRequest {
        id: r.get(0)?,
        identifier: r.get(1)?,
        requester: r.get(2)?,
        issuer_code: r.get(3)?,
        reason: r.get(4)?,
        opened_at: get_time(r, 5)?,
        answered_at: get_opt_time(r, 6)?,
        answerer: r.get(7)?,
        result: r.get(8)?,
        note: r.get(9)?,
    })
}

const CHECK_COLUMNS: &str = "id, identifier, requester, issuer_code, reason, opened_at, \
                             answered_at, answerer, result, note";

impl Registry {
    /// Registers a department with its credential hash (audited `department_added` by
    /// `audit.operator`). Returns `false`, writing nothing, when the code is registered already.
    pub fn department_add(
        &mut self,
        dept: &Department,
        credential_hash: &str,
        audit_entry: &AuditEntry,
    ) -> Result<bool, RegistryError> {
        let path = &self.db_path;
        immediate(&self.conn, path, "add department", |tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO departments
                         (code, name, level, region, enabled, credential_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (code) DO NOTHING",
                    params![
                        dept.code,
                        dept.name,
                        dept.level,
                        dept.region,
                        dept.enabled,
                        credential_hash,
                        time_text(dept.created_at)
                    ],
                )
                .map_err(db_err(path, "insert department"))?;
            if inserted == 0 {
                return Ok(false);
            }
            audit::append(tx, path, audit_entry)?;
            Ok(true)
        })
    }

    /// A department and its credential hash, or `None`.
    pub fn department(&self, code: &str) -> Result<Option<(Department, String)>, RegistryError> {
        self.conn
            .query_row(
                "SELECT code, name, level, region, enabled, created_at, credential_hash
                 FROM departments WHERE code = ?1",
                [code],
                |r| Ok((department_row(r)?, r.get(6)?)),
            )
            .optional()
            .map_err(db_err(&self.db_path, "read department"))
    }

    /// Every department, by code.
    pub fn departments(&self) -> Result<Vec<Department>, RegistryError> {
        let path = &self.db_path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT code, name, level, region, enabled, created_at
                 FROM departments ORDER BY code",
            )
            .map_err(db_err(path, "read departments"))?;
        stmt.query_map([], department_row)
            .and_then(|rows| rows.collect())
            .map_err(db_err(path, "read departments"))
    }

    /// Disables a department (audited). Returns `false` for an unknown code.
    pub fn department_disable(
        &mut self,
        code: &str,
        audit_entry: &AuditEntry,
    ) -> Result<bool, RegistryError> {
        let path = &self.db_path;
        immediate(&self.conn, path, "disable department", |tx| {
            let n = tx
                .execute("UPDATE departments SET enabled = 0 WHERE code = ?1", [code])
                .map_err(db_err(path, "disable department"))?;
            if n == 0 {
                return Ok(false);
            }
            audit::append(tx, path, audit_entry)?;
            Ok(true)
        })
    }

    /// Records (or replaces) a department's grant for a type (audited). Returns `false` for an
    /// unknown department.
    pub fn grant_set(
        &mut self,
        grant: &Grant,
        audit_entry: &AuditEntry,
    ) -> Result<bool, RegistryError> {
        let path = &self.db_path;
        immediate(&self.conn, path, "grant", |tx| {
            let known: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM departments WHERE code = ?1)",
                    [&grant.department],
                    |r| r.get(0),
                )
                .map_err(db_err(path, "read department"))?;
            if !known {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO grants (department, type_code, unmask, granted_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (department, type_code)
                 DO UPDATE SET unmask = excluded.unmask, granted_at = excluded.granted_at",
                params![
                    grant.department,
                    grant.type_code,
                    grant.unmask,
                    time_text(grant.granted_at)
                ],
            )
            .map_err(db_err(path, "insert grant"))?;
            audit::append(tx, path, audit_entry)?;
            Ok(true)
        })
    }

    /// A department's grants, by type code.
    pub fn grants_of(&self, department: &str) -> Result<Vec<Grant>, RegistryError> {
        let path = &self.db_path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT department, type_code, unmask, granted_at FROM grants
                 WHERE department = ?1 ORDER BY type_code",
            )
            .map_err(db_err(path, "read grants"))?;
        stmt.query_map([department], |r| {
            Ok(Grant {
                department: r.get(0)?,
                type_code: r.get(1)?,
                unmask: r.get(2)?,
                granted_at: get_time(r, 3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err(path, "read grants"))
    }

    /// Every version whose holder code is `holder_code`, oldest first.
    pub fn licences_by_holder(&self, holder_code: &str) -> Result<Vec<VersionRow>, RegistryError> {
        self.query_versions("v.holder_code = ?1", params![holder_code])
    }

    /// Every version of the licences printed with number `printed_no` (any type or issuer).
    pub fn licences_by_printed_no(
        &self,
        printed_no: &str,
    ) -> Result<Vec<VersionRow>, RegistryError> {
        self.query_versions("l.printed_no = ?1", params![printed_no])
    }

    /// Opens a check request (in one transaction with `audit_entry`) and returns its number.
    pub fn check_request_open(
        &mut self,
        identifier: &str,
        requester: &str,
        issuer_code: &str,
        reason: &str,
        at: DateTime<Utc>,
        audit_entry: &AuditEntry,
    ) -> Result<i64, RegistryError> {
        let path = &self.db_path;
        immediate(&self.conn, path, "open check request", |tx| {
            tx.execute(
                "INSERT INTO check_requests (identifier, requester, issuer_code, reason, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![identifier, requester, issuer_code, reason, time_text(at)],
            )
            .map_err(db_err(path, "insert check request"))?;
            let id = tx.last_insert_rowid();
            let mut entry = audit_entry.clone();
            entry.subject = identifier.to_owned();
            if let serde_json::Value::Object(map) = &mut entry.details {
                map.insert("request".into(), id.into());
            }
            audit::append(tx, path, &entry)?;
            Ok(id)
        })
    }

    /// A check request, or `None`.
    pub fn check_request(&self, id: i64) -> Result<Option<CheckRequest>, RegistryError> {
        self.conn
            .query_row(
                &format!("SELECT {CHECK_COLUMNS} FROM check_requests WHERE id = ?1"),
                [id],
                check_row,
            )
            .optional()
            .map_err(db_err(&self.db_path, "read check request"))
    }

    /// Records the answer to request `id` (in one transaction with `audit_entry`).
    pub fn check_request_answer(
        &mut self,
        id: i64,
        answerer: &str,
        result: &str,
        note: &str,
        at: DateTime<Utc>,
        audit_entry: &AuditEntry,
    ) -> Result<AnswerOutcome, RegistryError> {
        let path = &self.db_path;
        immediate(&self.conn, path, "answer check request", |tx| {
            let answered: Option<Option<String>> = tx
                .query_row("SELECT answered_at FROM check_requests WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err(path, "read check request"))?;
            match answered {
                None => return Ok(AnswerOutcome::Unknown),
                Some(Some(_)) => return Ok(AnswerOutcome::AlreadyAnswered),
                Some(None) => {}
            }
            tx.execute(
                "UPDATE check_requests SET answered_at = ?2, answerer = ?3, result = ?4, note = ?5
                 WHERE id = ?1",
                params![id, time_text(at), answerer, result, note],
            )
            .map_err(db_err(path, "answer check request"))?;
            audit::append(tx, path, audit_entry)?;
            Ok(AnswerOutcome::Answered)
        })
    }

    /// Check requests a department opened or must answer; only unanswered ones unless `all`.
    pub fn check_requests_of(
        &self,
        department: &str,
        all: bool,
    ) -> Result<Vec<CheckRequest>, RegistryError> {
        let path = &self.db_path;
        let sql = format!(
            "SELECT {CHECK_COLUMNS} FROM check_requests
             WHERE (requester = ?1 OR issuer_code = ?1) AND (?2 OR answered_at IS NULL)
             ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(db_err(path, "read check requests"))?;
        stmt.query_map(params![department, all], check_row)
            .and_then(|rows| rows.collect())
            .map_err(db_err(path, "read check requests"))
    }

    /// Every check request opened at or after `since` (all when `None`), by number.
    pub fn check_requests_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<CheckRequest>, RegistryError> {
        let path = &self.db_path;
        let sql = format!(
            "SELECT {CHECK_COLUMNS} FROM check_requests WHERE ?1 IS NULL OR opened_at >= ?1
             ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(db_err(path, "read check requests"))?;
        stmt.query_map([since.map(time_text)], check_row)
            .and_then(|rows| rows.collect())
            .map_err(db_err(path, "read check requests"))
    }

    /// Records a copy for use (in one transaction with `audit_entry`) and returns its number.
    pub fn copy_record(
        &mut self,
        identifier: &str,
        department: &str,
        reason: &str,
        expires: NaiveDate,
        sha256: &str,
        at: DateTime<Utc>,
        audit_entry: &AuditEntry,
    ) -> Result<i64, RegistryError> {
        let path = &self.db_path;
        immediate(&self.conn, path, "record copy", |tx| {
            tx.execute(
                "INSERT INTO copies (identifier, department, reason, expires, sha256, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![identifier, department, reason, date_text(expires), sha256, time_text(at)],
            )
            .map_err(db_err(path, "insert copy"))?;
            let id = tx.last_insert_rowid();
            let mut entry = audit_entry.clone();
            if let serde_json::Value::Object(map) = &mut entry.details {
                map.insert("copy".into(), id.into());
            }
            audit::append(tx, path, &entry)?;
            Ok(id)
        })
    }

    /// The copy for use whose signed file has this SHA-256 (lower-case hex), if any.
    pub fn copy_by_file_hash(&self, sha256: &str) -> Result<Option<CopyRecord>, RegistryError> {
        self.conn
            .query_row(
                "SELECT id, identifier, department, reason, expires, sha256, created_at
                 FROM copies WHERE sha256 = ?1",
                [sha256],
                |r| {
                    let expires: String = r.get(4)?;
                    let expires = super::sqlite::parse_date(&expires).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            4,
                            rusqlite::types::Type::Text,
                            format!("not a YYYY-MM-DD date: {expires:?}").into(),
                        )
                    })?;
                    Ok(CopyRecord {
                        id: r.get(0)?,
                        identifier: r.get(1)?,
                        department: r.get(2)?,
                        reason: r.get(3)?,
                        expires,
                        sha256: r.get(5)?,
                        created_at: get_time(r, 6)?,
                    })
                },
            )
            .optional()
            .map_err(db_err(&self.db_path, "read copy"))
    }

    /// Per issuer: versions issued (first versions) and changed (later versions) created at or
    /// after `since`, and versions revoked at or after `since`; by issuer code.
    pub fn issuer_figures(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<IssuerFigures>, RegistryError> {
        let path = &self.db_path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT l.issuer_code,
                        SUM(v.version = 1 AND (?1 IS NULL OR v.created_at >= ?1)),
                        SUM(v.version > 1 AND (?1 IS NULL OR v.created_at >= ?1)),
                        SUM(v.revoked_at IS NOT NULL AND (?1 IS NULL OR v.revoked_at >= ?1))
                 FROM versions v JOIN licences l ON l.id = v.licence_id
                 GROUP BY l.issuer_code ORDER BY l.issuer_code",
            )
            .map_err(db_err(path, "read issuer figures"))?;
        stmt.query_map([since.map(time_text)], |r| {
            Ok(IssuerFigures {
                issuer_code: r.get(0)?,
                issued: get_u64(r, 1)?,
                changed: get_u64(r, 2)?,
                revoked: get_u64(r, 3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err(path, "read issuer figures"))
    }

    /// Rejected rows of runs started at or after `since`, by pipeline and rule.
    pub fn reject_figures(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RejectFigures>, RegistryError> {
        let path = &self.db_path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.pipeline, j.rule, COUNT(*) FROM rejects j JOIN runs r ON r.id = j.run_id
                 WHERE ?1 IS NULL OR r.started_at >= ?1
                 GROUP BY r.pipeline, j.rule ORDER BY r.pipeline, j.rule",
            )
            .map_err(db_err(path, "read reject figures"))?;
        stmt.query_map([since.map(time_text)], |r| {
            Ok(RejectFigures { pipeline: r.get(0)?, rule: r.get(1)?, count: get_u64(r, 2)? })
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err(path, "read reject figures"))
    }
}
