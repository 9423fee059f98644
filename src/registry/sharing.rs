//! The registry side of sharing (共享): departments and their credential hashes, unmasking
//! grants, check requests (核查) and copies for use (加注件), plus the lookups a sharing query
//! needs (by holder code, by printed number) and the raw figures for oversight.
//!
//! Only storage lives here. Who may see what (rights, masking) is decided by the sharing layer
//! above, which never touches SQL; credentials arrive here already hashed. Every record that answers a
//! consumer (a check request, an answer, a copy) is written in the same transaction as its
//! audit entry.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::audit::{self, AuditEntry};
use super::db::{ColumnError, Row, vals};
use super::encode::{
    date_text, get_date, get_opt_date, get_opt_time, get_time, get_u64, time_text,
};
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

/// A check answer: the licence agrees with the issuer's records.
pub const CHECK_CONSISTENT: &str = "consistent";
/// A check answer: it does not; the licence is disputed while this answer stands.
pub const CHECK_INCONSISTENT: &str = "inconsistent";

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
    /// [`CHECK_CONSISTENT`] or [`CHECK_INCONSISTENT`].
    pub result: Option<String>,
    pub note: Option<String>,
    /// The last day of the issuer's time to answer (working days, see `crate::workdays`);
    /// `None` for requests opened before deadlines were kept.
    pub due_on: Option<NaiveDate>,
}

impl CheckRequest {
    /// Unanswered and past its due day on `today`.
    pub fn overdue_on(&self, today: NaiveDate) -> bool {
        self.answered_at.is_none() && self.due_on.is_some_and(|due| today > due)
    }

    /// Answered after its due day.
    pub fn answered_late(&self) -> bool {
        match (self.answered_at, self.due_on) {
            (Some(at), Some(due)) => at.date_naive() > due,
            _ => false,
        }
    }
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

/// Per issuer: days from the paper licence's issue date (发证日期) to its e-licence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueDelay {
    pub issuer_code: String,
    /// Versions counted.
    pub versions: u64,
    pub mean_days: f64,
    pub max_days: i64,
    #[serde(skip)]
    total_days: i64,
}

/// Rejected rows by pipeline and rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectFigures {
    pub pipeline: String,
    pub rule: String,
    pub count: u64,
}

fn department_row(r: &Row) -> Result<Department, ColumnError> {
    Ok(Department {
        code: r.get(0)?,
        name: r.get(1)?,
        level: r.get(2)?,
        region: r.get(3)?,
        enabled: r.get(4)?,
        created_at: get_time(r, 5)?,
    })
}

fn check_row(r: &Row) -> Result<CheckRequest, ColumnError> {
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
        due_on: get_opt_date(r, 10)?,
    })
}

const CHECK_COLUMNS: &str = "id, identifier, requester, issuer_code, reason, opened_at, \
                             answered_at, answerer, result, note, due_on";

impl Registry {
    /// Registers a department with its credential hash (audited `department_added` by
    /// `audit.operator`). Returns `false`, writing nothing, when the code is registered already.
    pub fn department_add(
        &mut self,
        dept: &Department,
        credential_hash: &str,
        audit_entry: &AuditEntry,
    ) -> Result<bool, RegistryError> {
        self.db.write("add department", |tx| {
            let inserted = tx.execute(
                "insert department",
                "INSERT INTO departments
                     (code, name, level, region, enabled, credential_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (code) DO NOTHING",
                &vals![
                    &dept.code,
                    &dept.name,
                    &dept.level,
                    &dept.region,
                    dept.enabled,
                    credential_hash,
                    time_text(dept.created_at)
                ],
            )?;
            if inserted == 0 {
                return Ok(false);
            }
            audit::append(tx, audit_entry)?;
            Ok(true)
        })
    }

    /// A department and its credential hash, or `None`.
    pub fn department(&self, code: &str) -> Result<Option<(Department, String)>, RegistryError> {
        self.db.query_opt(
            "read department",
            "SELECT code, name, level, region, enabled, created_at, credential_hash
             FROM departments WHERE code = ?1",
            &vals![code],
            |r| Ok((department_row(r)?, r.get(6)?)),
        )
    }

    /// Every department, by code.
    pub fn departments(&self) -> Result<Vec<Department>, RegistryError> {
        self.db.query(
            "read departments",
            "SELECT code, name, level, region, enabled, created_at FROM departments ORDER BY code",
            &[],
            department_row,
        )
    }

    /// Disables a department (audited). Returns `false` for an unknown code.
    pub fn department_disable(
        &mut self,
        code: &str,
        audit_entry: &AuditEntry,
    ) -> Result<bool, RegistryError> {
        self.db.write("disable department", |tx| {
            let n = tx.execute(
                "disable department",
                "UPDATE departments SET enabled = 0 WHERE code = ?1",
                &vals![code],
            )?;
            if n == 0 {
                return Ok(false);
            }
            audit::append(tx, audit_entry)?;
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
        self.db.write("grant", |tx| {
            let known: bool = tx.query_one(
                "read department",
                "SELECT EXISTS (SELECT 1 FROM departments WHERE code = ?1)",
                &vals![&grant.department],
                |r| r.get(0),
            )?;
            if !known {
                return Ok(false);
            }
            tx.execute(
                "insert grant",
                "INSERT INTO grants (department, type_code, unmask, granted_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (department, type_code)
                 DO UPDATE SET unmask = excluded.unmask, granted_at = excluded.granted_at",
                &vals![
                    &grant.department,
                    &grant.type_code,
                    grant.unmask,
                    time_text(grant.granted_at)
                ],
            )?;
            audit::append(tx, audit_entry)?;
            Ok(true)
        })
    }

    /// A department's grants, by type code.
    pub fn grants_of(&self, department: &str) -> Result<Vec<Grant>, RegistryError> {
        self.db.query(
            "read grants",
            "SELECT department, type_code, unmask, granted_at FROM grants
             WHERE department = ?1 ORDER BY type_code",
            &vals![department],
            |r| {
                Ok(Grant {
                    department: r.get(0)?,
                    type_code: r.get(1)?,
                    unmask: r.get(2)?,
                    granted_at: get_time(r, 3)?,
                })
            },
        )
    }

    /// Every version whose holder code is `holder_code`, oldest first.
    pub fn licences_by_holder(&self, holder_code: &str) -> Result<Vec<VersionRow>, RegistryError> {
        // The column holds the holder code's blind index (see `secrets`).
        let index = self.db.field_keys()?.holder_index(holder_code);
        self.query_versions("v.holder_code = ?1", &vals![index])
    }

    /// Every version of the licences printed with number `printed_no` (any type or issuer).
    pub fn licences_by_printed_no(
        &self,
        printed_no: &str,
    ) -> Result<Vec<VersionRow>, RegistryError> {
        self.query_versions("l.printed_no = ?1", &vals![printed_no])
    }

    /// Opens a check request (in one transaction with `audit_entry`) and returns its number.
    #[allow(clippy::too_many_arguments)]
    pub fn check_request_open(
        &mut self,
        identifier: &str,
        requester: &str,
        issuer_code: &str,
        reason: &str,
        at: DateTime<Utc>,
        due_on: NaiveDate,
        audit_entry: &AuditEntry,
    ) -> Result<i64, RegistryError> {
        self.db.write("open check request", |tx| {
            let id = tx.insert_id(
                "insert check request",
                "INSERT INTO check_requests
                     (identifier, requester, issuer_code, reason, opened_at, due_on)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &vals![
                    identifier,
                    requester,
                    issuer_code,
                    reason,
                    time_text(at),
                    date_text(due_on)
                ],
            )?;
            let mut entry = audit_entry.clone();
            entry.subject = identifier.to_owned();
            if let serde_json::Value::Object(map) = &mut entry.details {
                map.insert("request".into(), id.into());
            }
            audit::append(tx, &entry)?;
            Ok(id)
        })
    }

    /// A check request, or `None`.
    pub fn check_request(&self, id: i64) -> Result<Option<CheckRequest>, RegistryError> {
        self.db.query_opt(
            "read check request",
            &format!("SELECT {CHECK_COLUMNS} FROM check_requests WHERE id = ?1"),
            &vals![id],
            check_row,
        )
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
        self.db.write("answer check request", |tx| {
            let answered: Option<Option<String>> = tx.query_opt(
                "read check request",
                "SELECT answered_at FROM check_requests WHERE id = ?1",
                &vals![id],
                |r| r.get(0),
            )?;
            match answered {
                None => return Ok(AnswerOutcome::Unknown),
                Some(Some(_)) => return Ok(AnswerOutcome::AlreadyAnswered),
                Some(None) => {}
            }
            tx.execute(
                "answer check request",
                "UPDATE check_requests SET answered_at = ?2, answerer = ?3, result = ?4, note = ?5
                 WHERE id = ?1",
                &vals![id, time_text(at), answerer, result, note],
            )?;
            audit::append(tx, audit_entry)?;
            Ok(AnswerOutcome::Answered)
        })
    }

    /// The latest answered check request about `identifier` (by answer time), or `None`: its
    /// answer is the one that stands.
    pub fn latest_check_answer(
        &self,
        identifier: &str,
    ) -> Result<Option<CheckRequest>, RegistryError> {
        let sql = format!(
            "SELECT {CHECK_COLUMNS} FROM check_requests
             WHERE identifier = ?1 AND answered_at IS NOT NULL
             ORDER BY answered_at DESC, id DESC LIMIT 1"
        );
        self.db.query_opt("read check requests", &sql, &vals![identifier], check_row)
    }

    /// Check requests a department opened or must answer; only unanswered ones unless `all`.
    pub fn check_requests_of(
        &self,
        department: &str,
        all: bool,
    ) -> Result<Vec<CheckRequest>, RegistryError> {
        let sql = format!(
            "SELECT {CHECK_COLUMNS} FROM check_requests
             WHERE (requester = ?1 OR issuer_code = ?1) AND (?2 OR answered_at IS NULL)
             ORDER BY id"
        );
        self.db.query("read check requests", &sql, &vals![department, all], check_row)
    }

    /// Every check request opened at or after `since` (all when `None`), by number.
    pub fn check_requests_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<CheckRequest>, RegistryError> {
        // An empty lower bound takes every request (times are RFC 3339 text).
        let sql =
            format!("SELECT {CHECK_COLUMNS} FROM check_requests WHERE opened_at >= ?1 ORDER BY id");
        let since = since.map(time_text).unwrap_or_default();
        self.db.query("read check requests", &sql, &vals![since], check_row)
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
        self.db.write("record copy", |tx| {
            let id = tx.insert_id(
                "insert copy",
                "INSERT INTO copies (identifier, department, reason, expires, sha256, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &vals![identifier, department, reason, date_text(expires), sha256, time_text(at)],
            )?;
            let mut entry = audit_entry.clone();
            if let serde_json::Value::Object(map) = &mut entry.details {
                map.insert("copy".into(), id.into());
            }
            audit::append(tx, &entry)?;
            Ok(id)
        })
    }

    /// The copy for use whose signed file has this SHA-256 (lower-case hex), if any.
    pub fn copy_by_file_hash(&self, sha256: &str) -> Result<Option<CopyRecord>, RegistryError> {
        self.db.query_opt(
            "read copy",
            "SELECT id, identifier, department, reason, expires, sha256, created_at
             FROM copies WHERE sha256 = ?1",
            &vals![sha256],
            |r| {
                Ok(CopyRecord {
                    id: r.get(0)?,
                    identifier: r.get(1)?,
                    department: r.get(2)?,
                    reason: r.get(3)?,
                    expires: get_date(r, 4)?,
                    sha256: r.get(5)?,
                    created_at: get_time(r, 6)?,
                })
            },
        )
    }

    /// Per issuer: versions issued (first versions) and changed (later versions) created at or
    /// after `since`, and versions revoked at or after `since`; by issuer code.
    pub fn issuer_figures(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<IssuerFigures>, RegistryError> {
        // An empty lower bound counts everything (times are RFC 3339 text).
        let since = since.map(time_text).unwrap_or_default();
        self.db.query(
            "read issuer figures",
            "SELECT l.issuer_code,
                    SUM(CASE WHEN v.version = 1 AND v.created_at >= ?1 THEN 1 ELSE 0 END),
                    SUM(CASE WHEN v.version > 1 AND v.created_at >= ?1 THEN 1 ELSE 0 END),
                    SUM(CASE WHEN v.revoked_at IS NOT NULL AND v.revoked_at >= ?1
                             THEN 1 ELSE 0 END)
             FROM versions v JOIN licences l ON l.id = v.licence_id
             GROUP BY l.issuer_code ORDER BY l.issuer_code",
            &vals![since],
            |r| {
                Ok(IssuerFigures {
                    issuer_code: r.get(0)?,
                    issued: get_u64(r, 1)?,
                    changed: get_u64(r, 2)?,
                    revoked: get_u64(r, 3)?,
                })
            },
        )
    }

    /// Rejected rows of runs started at or after `since`, by pipeline and rule. A row counts
    /// once however often it was rejected: a re-run of the same input (same SHA-256) rejects
    /// the same rows again, and they are the same rows (input hash, sheet, line, rule).
    pub fn reject_figures(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RejectFigures>, RegistryError> {
        let since = since.map(time_text).unwrap_or_default();
        self.db.query(
            "read reject figures",
            "SELECT pipeline, rule, COUNT(*) FROM (
                 SELECT DISTINCT r.pipeline, COALESCE(i.sha256, j.file) AS input, j.sheet,
                        j.line, j.rule
                 FROM rejects j JOIN runs r ON r.id = j.run_id
                 LEFT JOIN run_inputs i ON i.run_id = j.run_id AND i.file = j.file
                 WHERE r.started_at >= ?1
             ) distinct_rejects
             GROUP BY pipeline, rule ORDER BY pipeline, rule",
            &vals![since],
            |r| Ok(RejectFigures { pipeline: r.get(0)?, rule: r.get(1)?, count: get_u64(r, 2)? }),
        )
    }

    /// Per issuer, for the versions created at or after `since`: how many days passed from
    /// the paper licence's 发证日期 to its e-licence (the version's creation), mean and longest.
    pub fn issue_delays(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<IssueDelay>, RegistryError> {
        let since = since.map(time_text).unwrap_or_default();
        let rows: Vec<(String, NaiveDate, DateTime<Utc>)> = self.db.query(
            "read issue delays",
            "SELECT l.issuer_code, v.issue_date, v.created_at
             FROM versions v JOIN licences l ON l.id = v.licence_id
             WHERE v.created_at >= ?1 ORDER BY l.issuer_code",
            &vals![since],
            |r| Ok((r.get(0)?, get_date(r, 1)?, get_time(r, 2)?)),
        )?;
        let mut out: Vec<IssueDelay> = Vec::new();
        for (issuer_code, issued_on, created_at) in rows {
            let days = (created_at.date_naive() - issued_on).num_days();
            match out.last_mut() {
                Some(d) if d.issuer_code == issuer_code => {
                    d.versions += 1;
                    d.total_days += days;
                    d.max_days = d.max_days.max(days);
                }
                _ => out.push(IssueDelay {
                    issuer_code,
                    versions: 1,
                    total_days: days,
                    max_days: days,
                    mean_days: 0.0,
                }),
            }
        }
        for d in &mut out {
            d.mean_days = d.total_days as f64 / d.versions as f64;
        }
        Ok(out)
    }
}
