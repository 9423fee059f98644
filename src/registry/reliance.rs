//! Which licences each department relied on, kept beside the audit trail so that change events
//! (`share::events`) need not read the whole trail on every call.
//!
//! `relied_licences` holds, per department and licence, the version the department saw first
//! and the audit entry that handed it over; `relied_scanned` how far the trail has been read
//! into it. Both are derived from the audit trail alone: [`Registry::relied_changes`] first
//! reads the entries after `relied_scanned` (only those of the handing-over actions, through
//! the index on `audit_log(action, seq)`), then answers from the table. A registry copied by
//! `migrate` (which copies the trail, not these tables) or made before them rebuilds them on
//! its first call; nothing else writes them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::db::{ColumnError, Db, Val, vals};
use super::encode::{get_time, get_u64};
use super::{Registry, RegistryError};

/// Audit entries read per batch while catching up.
const BATCH: u64 = 1000;

/// A change or revocation of a licence a department relied on, as its audit entry recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedChange {
    pub seq: u64,
    pub action: String,
    /// The version changed to, or revoked.
    pub subject: String,
    pub at: DateTime<Utc>,
    pub details: Value,
    /// The version of the licence the department saw first.
    pub relied_on: String,
}

/// For an audit entry (subject, details) of a handing-over action: the department and the
/// identifiers it was handed.
pub type Handed = dyn Fn(&str, &Value) -> Option<(String, Vec<String>)>;

/// What `relied_changes` needs to know about the audit actions (named by the layer above).
pub struct RelianceActions<'a> {
    /// Actions whose entries hand licences to a department.
    pub handing: &'a [&'a str],
    /// What an entry of those actions handed, and to whom.
    pub handed: &'a Handed,
    /// Actions that are change events (changed, revoked).
    pub changes: &'a [&'a str],
}

impl Registry {
    /// The change entries after audit entry `since` (up to the head of the trail, returned
    /// too) of licences `department` had been handed before each of them, oldest first.
    pub fn relied_changes(
        &self,
        department: &str,
        since: u64,
        actions: &RelianceActions<'_>,
    ) -> Result<(u64, Vec<RelatedChange>), RegistryError> {
        self.db.write("read change events", |db| {
            let head = catch_up(db, actions)?;
            let changes = in_list(actions.changes, 4);
            let mut params = vec![Val::from(department), Val::from(since), Val::from(head)];
            params.extend(actions.changes.iter().map(|a| Val::from(*a)));
            let rows = db.query(
                "read change events",
                &format!(
                    "SELECT a.seq, a.action, a.subject, a.at, a.details, r.identifier
                     FROM audit_log a
                     JOIN versions v ON v.identifier = a.subject
                     JOIN relied_licences r
                       ON r.licence_id = v.licence_id AND r.department = ?1 AND r.audit_seq < a.seq
                     WHERE a.action IN ({changes}) AND a.seq > ?2 AND a.seq <= ?3
                     ORDER BY a.seq"
                ),
                &params,
                |r| {
                    let details: String = r.get(4)?;
                    Ok(RelatedChange {
                        seq: get_u64(r, 0)?,
                        action: r.get(1)?,
                        subject: r.get(2)?,
                        at: get_time(r, 3)?,
                        details: serde_json::from_str(&details)
                            .map_err(|e| ColumnError::new(4, e.to_string()))?,
                        relied_on: r.get(5)?,
                    })
                },
            )?;
            Ok((head.max(since), rows))
        })
    }
}

/// `?first, ?first+1, …` for `items`.
fn in_list(items: &[&str], first: usize) -> String {
    let marks: Vec<String> = (first..first + items.len()).map(|i| format!("?{i}")).collect();
    marks.join(", ")
}

/// Reads the handing-over entries after `relied_scanned` into `relied_licences` and returns the
/// head of the trail, which `relied_scanned` now holds.
fn catch_up(db: &Db, actions: &RelianceActions<'_>) -> Result<u64, RegistryError> {
    let head: Option<i64> =
        db.query_one("read audit head", "SELECT MAX(seq) FROM audit_log", &[], |r| r.get(0))?;
    let head = head.map_or(0, |h| u64::try_from(h).unwrap_or(0));
    let scanned: Option<i64> = db.query_opt(
        "read relied_scanned",
        "SELECT audit_seq FROM relied_scanned WHERE id = 1",
        &[],
        |r| r.get(0),
    )?;
    let mut after = scanned.map_or(0, |s| u64::try_from(s).unwrap_or(0));
    if after >= head {
        return Ok(head);
    }
    let handing = in_list(actions.handing, 4);
    let select = format!(
        "SELECT seq, subject, details FROM audit_log
         WHERE action IN ({handing}) AND seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3"
    );
    loop {
        let mut params = vec![Val::from(after), Val::from(head), Val::from(BATCH)];
        params.extend(actions.handing.iter().map(|a| Val::from(*a)));
        let batch: Vec<(u64, String, String)> =
            db.query("read handed licences", &select, &params, |r| {
                Ok((get_u64(r, 0)?, r.get(1)?, r.get(2)?))
            })?;
        let Some(&(last, _, _)) = batch.last() else { break };
        for (seq, subject, details) in &batch {
            let details: Value =
                serde_json::from_str(details).map_err(|e| RegistryError::Inconsistent {
                    path: db.location().to_path_buf(),
                    what: format!("audit entry {seq}: details: {e}"),
                })?;
            let Some((department, identifiers)) = (actions.handed)(subject, &details) else {
                continue;
            };
            for identifier in identifiers {
                // A version not in the registry (a query answer of another shard, say) is
                // nothing to follow.
                db.execute(
                    "record a handed licence",
                    "INSERT INTO relied_licences (department, licence_id, identifier, audit_seq)
                     SELECT CAST(?1 AS TEXT), licence_id, CAST(?2 AS TEXT), CAST(?3 AS BIGINT)
                     FROM versions WHERE identifier = ?2
                     ON CONFLICT (department, licence_id) DO NOTHING",
                    &vals![department.as_str(), identifier.as_str(), *seq],
                )?;
            }
        }
        after = last;
        if (batch.len() as u64) < BATCH {
            break;
        }
    }
    db.execute(
        "advance relied_scanned",
        "INSERT INTO relied_scanned (id, audit_seq) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET audit_seq = excluded.audit_seq",
        &vals![head],
    )?;
    Ok(head)
}
