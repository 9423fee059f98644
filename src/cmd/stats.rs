//! `elicence stats [--since DATE] [--json]`: the figures the city uses to assess departments.
//! Per issuing department: licences issued, changed and revoked (from the registry's versions),
//! the days from the paper issue date to the e-licence, and the review backlog; rejected rows
//! by pipeline and rule (from the rejects table; a re-run of the same input counts its rows
//! once); per consuming department:
//! queries, copies for use and denials (from the audit trail); check requests open and answered,
//! with the mean time to answer, and per issuer against their due dates (on time, late,
//! overdue now, oldest open) with the inconsistent answers. An operator's command: figures only, no licence data.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde::Serialize;

use crate::cmd::args::RegistryArgs;
use crate::exit;
use crate::registry::{
    IssueDelay, IssuerFigures, Registry, RejectFigures, ReviewFilter, ReviewState,
};
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
    /// Per issuer: deadlines kept and missed, and inconsistent answers (Art. 13: 报告).
    pub deadlines: BTreeMap<String, IssuerDeadlines>,
}

/// One issuer's check requests against their due dates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IssuerDeadlines {
    pub open: u64,
    pub answered_on_time: u64,
    pub answered_late: u64,
    /// Open and past the due day now.
    pub overdue_now: u64,
    /// Days since the oldest open request was opened.
    pub oldest_open_days: Option<i64>,
    /// Answers that the licence does not agree with the issuer's records.
    pub inconsistent: u64,
}

/// Per issuer: versions staged and waiting for review (采集 done, 审核 not yet).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReviewBacklog {
    pub pending: u64,
    /// Days since the oldest pending item was staged.
    pub oldest_days: i64,
}

/// Everything `stats` reports.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub since: Option<NaiveDate>,
    pub issuers: Vec<IssuerFigures>,
    /// Per issuer: days from the paper licence's 发证日期 to its e-licence.
    pub issue_delays: Vec<IssueDelay>,
    /// Per issuer: versions waiting for review (whatever `since` says: a backlog is now).
    pub review_backlog: BTreeMap<String, ReviewBacklog>,
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
    let now = crate::clock::now()?;
    for r in registry.check_requests_since(since_at)? {
        let d = checks.deadlines.entry(r.issuer_code.clone()).or_default();
        match r.answered_at {
            None => {
                d.open += 1;
                if r.overdue_on(now.date_naive()) {
                    d.overdue_now += 1;
                }
                let age = (now - r.opened_at).num_days();
                d.oldest_open_days = Some(d.oldest_open_days.map_or(age, |o| o.max(age)));
            }
            Some(_) if r.answered_late() => d.answered_late += 1,
            Some(_) => d.answered_on_time += 1,
        }
        if r.result.as_deref() == Some(crate::registry::CHECK_INCONSISTENT) {
            d.inconsistent += 1;
        }
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
    let today = now;
    let mut review_backlog: BTreeMap<String, ReviewBacklog> = BTreeMap::new();
    let pending = registry
        .review_items(&ReviewFilter { state: Some(ReviewState::Pending), ..Default::default() })?;
    for item in pending {
        let slot = review_backlog.entry(item.key.issuer_code.clone()).or_default();
        slot.pending += 1;
        slot.oldest_days = slot.oldest_days.max((today - item.staged_at).num_days());
    }
    Ok(Stats {
        since,
        issuers: registry.issuer_figures(since_at)?,
        issue_delays: registry.issue_delays(since_at)?,
        review_backlog,
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
    println!("days from paper issue date to e-licence (versions / mean / longest):");
    for d in &stats.issue_delays {
        println!("  {}  {} / {:.1} / {}", d.issuer_code, d.versions, d.mean_days, d.max_days);
    }
    println!("review backlog (pending / oldest, days):");
    for (issuer, b) in &stats.review_backlog {
        println!("  {issuer}  {} / {}", b.pending, b.oldest_days);
    }
    println!("rejected rows by pipeline and rule (each row once, however often it was re-run):");
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
    println!(
        "check requests per issuer (open / answered on time / late / overdue now / oldest open, days / inconsistent):"
    );
    for (issuer, d) in &c.deadlines {
        println!(
            "  {issuer}  {} / {} / {} / {} / {} / {}",
            d.open,
            d.answered_on_time,
            d.answered_late,
            d.overdue_now,
            d.oldest_open_days.map_or_else(|| "-".to_string(), |n| n.to_string()),
            d.inconsistent
        );
    }
    Ok(exit::OK)
}
