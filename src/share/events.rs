//! Change events for consumers (Art. 10: a department that relied on a licence learns that it
//! changed or was revoked): the changes (变更) and revocations (注销) of the licences a
//! department has queried or been handed (a copy for use, a file), read from the audit trail.
//!
//! The cursor is an audit sequence number. [`events_for`] returns the events after it and the
//! cursor to pass next time (the head of the trail when it looked): delivery is at least once —
//! a consumer that crashes before storing the new cursor sees the same events again, never
//! fewer. A licence counts from the first time the department saw any of its versions; changes
//! before that are not events for it (it saw the state they left).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::registry::{
    AuditEntry, Registry, RegistryError, RelianceActions, action as registry_action,
};
use crate::share::action;

/// What happened to a licence the department relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeEvent {
    /// Pass this (or the answer's `next_cursor`) as `--since` to see only later events.
    pub cursor: u64,
    /// `changed` or `revoked`.
    pub kind: String,
    /// The new version (changed) or the revoked version.
    pub identifier: String,
    /// The version a change superseded.
    pub supersedes: Option<String>,
    /// The revocation's effective date (revoked).
    pub effective: Option<NaiveDate>,
    pub at: DateTime<Utc>,
    /// A version of the licence the department saw first (what it relied on).
    pub relied_on: String,
}

/// The answer: events after the cursor, and the cursor to pass next time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Events {
    pub department: String,
    pub since: u64,
    pub next_cursor: u64,
    pub events: Vec<ChangeEvent>,
}

/// The department an audit entry of a handing-over action names, and what it handed: the
/// versions a query returned, or the copy's or file's version.
fn handed(subject: &str, details: &Value) -> Option<(String, Vec<String>)> {
    let department = details.get("department")?.as_str()?.to_owned();
    let identifiers = match details.get("returned").and_then(|r| r.as_array()) {
        Some(returned) => returned.iter().filter_map(|i| i.as_str()).map(str::to_owned).collect(),
        None => vec![subject.to_owned()],
    };
    Some((department, identifiers))
}

/// The changes and revocations after audit entry `since` of the licences `department` queried
/// or was handed before them (see the module docs). Reads only the entries the registry has not
/// indexed yet ([`Registry::relied_changes`]); the caller audits the read.
pub fn events_for(
    registry: &Registry,
    department: &str,
    since: u64,
) -> Result<Events, RegistryError> {
    let actions = RelianceActions {
        handing: &[action::QUERY, action::COPY, action::FILE],
        handed: &handed,
        changes: &[registry_action::CHANGED, registry_action::REVOKED],
    };
    let (next_cursor, changes) = registry.relied_changes(department, since, &actions)?;
    let events = changes
        .into_iter()
        .map(|c| {
            let text = |name: &str| c.details.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            let revoked = c.action == registry_action::REVOKED;
            ChangeEvent {
                cursor: c.seq,
                supersedes: if revoked { None } else { text("supersedes") },
                effective: revoked.then(|| {
                    text("effective").and_then(|d| d.parse().ok()).unwrap_or(c.at.date_naive())
                }),
                kind: c.action,
                identifier: c.subject,
                at: c.at,
                relied_on: c.relied_on,
            }
        })
        .collect();
    Ok(Events { department: department.to_owned(), since, next_cursor, events })
}

/// [`events_for`] `department`, the read audited (`share_events`: the cursor, the next one and
/// how many events), as `elicence events` and `GET /api/v1/events` answer.
pub fn read_events(
    registry: &mut Registry,
    department: &str,
    since: u64,
    at: DateTime<Utc>,
) -> Result<Events, RegistryError> {
    let answer = events_for(registry, department, since)?;
    registry.audit_append(&AuditEntry {
        action: action::EVENTS.into(),
        operator: department.to_owned(),
        at,
        subject: format!("department:{department}"),
        reason: None,
        details: json!({
            "department": department,
            "since": since,
            "next_cursor": answer.next_cursor,
            "events": answer.events.len(),
        }),
    })?;
    Ok(answer)
}
