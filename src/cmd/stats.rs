//! `elicence stats [--since DATE] [--json]`: the figures the city uses to assess departments.
//! Per issuing department: licences issued, changed and revoked (from the registry's versions);
//! rejected rows by pipeline and rule (from the rejects table); per consuming department:
//! queries, copies for use and denials (from the audit trail); check requests open and answered,
//! with the mean time to answer. An operator's command: figures only, no licence data.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde::Serialize;

use crate::cmd::args::RegistryArgs;
use crate::exit;
use crate::registry::{IssuerFigures, Registry, RejectFigures};
use crate::share::action;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  elicence stats\n  elicence stats --since 2026-01-01 --json")]
pub struct StatsArgs {
    /// Count only what happened on or after this date (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub since: Option<NaiveDate>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Per consuming department, from the audit trail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumerFigures {
    pub queries: u64,
    pub copies: u64,
    pub denials: u64,
}

/// Check requests (核查).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckFigures {
    pub open: u64,
    pub answered: u64,
    pub consistent: u64,
    pub inconsistent: u64,
    /// Mean time from request to answer, in seconds (`None` when nothing was answered).
    pub mean_seconds_to_answer: Option<f64>,
    /// Per issuer: (open, answered).
    pub by_issuer: BTreeMap<String, (u64, u64)>,
}

/// Everything `stats` reports.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub since: Option<NaiveDate>,
    pub issuers: Vec<IssuerFigures>,
    pub rejects: Vec<RejectFigures>,
    pub consumers: BTreeMap<String, ConsumerFigures>,
    pub check_requests: CheckFigures,
}

/// Collects the figures from a registry.
pub fn collect(registry: &Registry, since: Option<NaiveDate>) -> anyhow::Result<Stats> {
    let since_at: Option<DateTime<Utc>> =
        since.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    let mut consumers: BTreeMap<String, ConsumerFigures> = BTreeMap::new();
    let mut after = 0;
    loop {
        let batch = registry.audit_entries(after, 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for record in &batch {
            let e = &record.entry;
            if since_at.is_some_and(|s| e.at < s) {
                continue;
            }
            let department = e
                .details
                .get("department")
                .and_then(|d| d.as_str())
                .unwrap_or(&e.operator)
                .to_string();
            let slot = match e.action.as_str() {
                action::QUERY | action::COPY | action::DENIED => {
                    consumers.entry(department).or_default()
                }
                _ => continue,
            };
            match e.action.as_str() {
                action::QUERY => slot.queries += 1,
                action::COPY => slot.copies += 1,
                _ => slot.denials += 1,
            }
        }
    }
    let mut checks = CheckFigures::default();
    let mut total_seconds = 0.0;
    for r in registry.check_requests_since(since_at)? {
        let slot = checks.by_issuer.entry(r.issuer_code.clone()).or_default();
        match r.answered_at {
            None => {
                checks.open += 1;
                slot.0 += 1;
            }
            Some(answered) => {
                checks.answered += 1;
                slot.1 += 1;
                total_seconds += (answered - r.opened_at).num_milliseconds() as f64 / 1000.0;
                match r.result.as_deref() {
                    Some("consistent") => checks.consistent += 1,
                    _ => checks.inconsistent += 1,
                }
            }
        }
    }
    if checks.answered > 0 {
        checks.mean_seconds_to_answer = Some(total_seconds / checks.answered as f64);
    }
    Ok(Stats {
        since,
        issuers: registry.issuer_figures(since_at)?,
        rejects: registry.reject_figures(since_at)?,
        consumers,
        check_requests: checks,
    })
}

pub fn run(args: &StatsArgs) -> anyhow::Result<i32> {
    let registry = args.registry.open()?;
    let stats = collect(&registry, args.since)?;
    if args.json {
        println!("{}", serde_json::to_string(&stats)?);
        return Ok(exit::OK);
    }
    match stats.since {
        Some(d) => println!("since {d}"),
        None => println!("all time"),
    }
    println!("issuing departments (issued / changed / revoked):");
    for i in &stats.issuers {
        println!("  {}  {} / {} / {}", i.issuer_code, i.issued, i.changed, i.revoked);
    }
    println!("rejected rows by pipeline and rule:");
    for r in &stats.rejects {
        println!("  {}  {}: {}", r.pipeline, r.rule, r.count);
    }
    println!("consuming departments (queries / copies / denials):");
    for (d, c) in &stats.consumers {
        println!("  {d}  {} / {} / {}", c.queries, c.copies, c.denials);
    }
    let c = &stats.check_requests;
    let mean = c
        .mean_seconds_to_answer
        .map_or_else(|| "-".to_string(), |s| format!("{:.1} h", s / 3600.0));
    println!(
        "check requests: {} open, {} answered ({} consistent, {} inconsistent), mean time to answer {mean}",
        c.open, c.answered, c.consistent, c.inconsistent
    );
    Ok(exit::OK)
}
