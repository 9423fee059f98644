//! Change events for consumers (Art. 10: a department that relied on a licence learns that it
//! changed or was revoked): the changes (变更) and revocations (注销) of the licences a
//! department has queried or been handed (a copy for use, a file), read from the audit trail.
//!
//! The cursor is an audit sequence number. [`events_for`] returns the events after it and the
//! cursor to pass next time (the head of the trail when it looked): delivery is at least once —
//! a consumer that crashes before storing the new cursor sees the same events again, never
//! fewer. A licence counts from the first time the department saw any of its versions; changes
//! before that are not events for it (it saw the state they left).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use crate::registry::{AuditEntry, NaturalKey, Registry, RegistryError, action as registry_action};
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

/// Audit entries read per batch.
const BATCH: u32 = 1000;

/// The natural key of `identifier`, cached (`None` for an identifier not in the registry).
fn key_of(
    registry: &Registry,
    cache: &mut HashMap<String, Option<NaturalKey>>,
    identifier: &str,
) -> Result<Option<NaturalKey>, RegistryError> {
    if let Some(k) = cache.get(identifier) {
        return Ok(k.clone());
    }
    let k = registry.licence_by_identifier(identifier)?.map(|v| v.key);
    cache.insert(identifier.to_owned(), k.clone());
    Ok(k)
}

/// The changes and revocations after audit entry `since` of the licences `department` queried
/// or was handed before them (see the module docs). Reads only; the caller audits the read.
pub fn events_for(
    registry: &Registry,
    department: &str,
    since: u64,
) -> Result<Events, RegistryError> {
    let mut relied: HashMap<NaturalKey, String> = HashMap::new();
    let mut cache: HashMap<String, Option<NaturalKey>> = HashMap::new();
    let mut events = Vec::new();
    let mut after = 0;
    let mut seen_events: HashSet<u64> = HashSet::new();
    loop {
        let batch = registry.audit_entries(after, BATCH)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for record in &batch {
            let e = &record.entry;
            let by_department =
                e.details.get("department").and_then(|d| d.as_str()) == Some(department);
            match e.action.as_str() {
                action::QUERY if by_department => {
                    let returned = e.details.get("returned").and_then(|r| r.as_array());
                    for id in returned.into_iter().flatten().filter_map(|i| i.as_str()) {
                        if let Some(k) = key_of(registry, &mut cache, id)? {
                            relied.entry(k).or_insert_with(|| id.to_owned());
                        }
                    }
                }
                action::COPY | action::FILE if by_department => {
                    if let Some(k) = key_of(registry, &mut cache, &e.subject)? {
                        relied.entry(k).or_insert_with(|| e.subject.clone());
                    }
                }
                registry_action::CHANGED | registry_action::REVOKED if record.seq > since => {
                    let Some(k) = key_of(registry, &mut cache, &e.subject)? else { continue };
                    let Some(relied_on) = relied.get(&k) else { continue };
                    if !seen_events.insert(record.seq) {
                        continue;
                    }
                    let text = |name: &str| {
                        e.details.get(name).and_then(|v| v.as_str()).map(str::to_owned)
                    };
                    let revoked = e.action == registry_action::REVOKED;
                    events.push(ChangeEvent {
                        cursor: record.seq,
                        kind: e.action.clone(),
                        identifier: e.subject.clone(),
                        supersedes: if revoked { None } else { text("supersedes") },
                        effective: if revoked {
                            Some(
                                text("effective")
                                    .and_then(|d| d.parse().ok())
                                    .unwrap_or(e.at.date_naive()),
                            )
                        } else {
                            None
                        },
                        at: e.at,
                        relied_on: relied_on.clone(),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(Events { department: department.to_owned(), since, next_cursor: after.max(since), events })
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
