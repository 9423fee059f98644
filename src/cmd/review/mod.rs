//! `elicence review list|show|approve|reject`: the review step between collecting and issuing
//! (采集 → 审核 → 签发). A run of a type under review (`review = true`, or `run --review`) stages
//! its rows with unsigned previews; a reviewer who did not stage them approves (signed and
//! committed by `crate::engine::approve`) or rejects them. Flags → library call → summary.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::clock::now;
use crate::cmd::args::{KeyArgs, OperatorArgs, PublicUrlArgs, RegistryArgs, TsaArgs};
use crate::cmd::operator as default_operator;
use crate::engine::approve::{ApproveOptions, Selection, approve};
use crate::engine::review::{self, Baseline};
use crate::exit;
use crate::progress::Interrupt;
use crate::registry::{RejectOutcome, ReviewFilter, ReviewItem, ReviewState, Role, RunId};
use crate::share::input;

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List staged items (pending by default).
    #[command(
        after_help = "Examples:\n  elicence review list\n  elicence review list --run 3 --json\n  elicence review list --state all"
    )]
    List(ListArgs),
    /// One staged item: its fields, how it differs from the current version, the preview file.
    #[command(after_help = "Example:\n  elicence review show 12")]
    Show(ShowArgs),
    /// Sign and commit staged items (reviewer role; not the operator who staged them).
    #[command(after_help = "Examples:\n  \
        elicence review approve 12 13 --operator 张伟 --operator-credential-file zhang.cred\n  \
        elicence review approve --run 3 --operator 张伟 --keys /etc/elicence/keys\n  \
        elicence review approve --all-from approved.csv --operator 张伟\n\n\
        An item whose licence changed since it was staged is stale: refused (exit 1), left pending.")]
    Approve(ApproveArgs),
    /// Reject staged items with a reason (reviewer role); nothing is issued for them.
    #[command(
        after_help = "Example:\n  elicence review reject 14 --reason 经营场所与档案不符 --operator 张伟"
    )]
    Reject(RejectArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the items this run staged.
    #[arg(long)]
    pub run: Option<i64>,
    /// pending (default), approved, rejected or all.
    #[arg(long, default_value = "pending")]
    pub state: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub by: OperatorArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Review item number (`review list`).
    pub id: i64,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub by: OperatorArgs,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Review item numbers.
    #[arg(required_unless_present_any = ["run", "all_from"], conflicts_with_all = ["run", "all_from"])]
    pub ids: Vec<i64>,
    /// Every pending item of this run.
    #[arg(long, conflicts_with = "all_from")]
    pub run: Option<i64>,
    /// A CSV file with the item numbers in its `id` column (else its first column), e.g. a
    /// reviewed `review list` export.
    #[arg(long, value_name = "FILE.csv")]
    pub all_from: Option<PathBuf>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub tsa: TsaArgs,
    #[command(flatten)]
    pub public_url: PublicUrlArgs,
    /// Worker threads for rendering and signing (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub by: OperatorArgs,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// Review item numbers.
    #[arg(required = true)]
    pub ids: Vec<i64>,
    /// Why (recorded with the item and in the audit trail).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub by: OperatorArgs,
}

/// Every role may look at the review queue once operators are enforced.
const ANY_ROLE: &[Role] = &[];

pub fn run(cmd: &ReviewCommand) -> anyhow::Result<i32> {
    match cmd {
        ReviewCommand::List(args) => list(args),
        ReviewCommand::Show(args) => show(args),
        ReviewCommand::Approve(args) => approve_cmd(args),
        ReviewCommand::Reject(args) => reject(args),
    }
}

fn state_filter(state: &str) -> anyhow::Result<Option<ReviewState>> {
    Ok(match state {
        "pending" => Some(ReviewState::Pending),
        "approved" => Some(ReviewState::Approved),
        "rejected" => Some(ReviewState::Rejected),
        "all" => None,
        other => anyhow::bail!("--state {other:?}: pending, approved, rejected or all"),
    })
}

fn list(args: &ListArgs) -> anyhow::Result<i32> {
    let state = state_filter(&args.state)?;
    let mut registry = args.registry.open()?;
    args.by.authorize(&mut registry, "review list", ANY_ROLE)?;
    let items = registry.review_items(&ReviewFilter {
        run: args.run.map(RunId),
        state,
        ..Default::default()
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&items)?);
        return Ok(exit::OK);
    }
    for i in &items {
        println!(
            "{}  run {}  {}  {}  {}  {}  staged by {}{}",
            i.id,
            i.run.0,
            i.state.as_str(),
            i.action.as_str(),
            i.identifier,
            i.holder_name,
            i.staged_by,
            i.decided_by.as_deref().map(|d| format!(", decided by {d}")).unwrap_or_default()
        );
    }
    eprintln!("{} item(s)", items.len());
    Ok(exit::OK)
}

fn show(args: &ShowArgs) -> anyhow::Result<i32> {
    let mut registry = args.registry.open()?;
    args.by.authorize(&mut registry, "review show", ANY_ROLE)?;
    let Some(detail) = review::detail(&registry, args.id)? else {
        eprintln!("no review item {}", args.id);
        return Ok(exit::FAILURE);
    };
    let preview = detail.preview_path(&registry)?;
    if args.json {
        let mut out = serde_json::to_value(&detail)?;
        out["preview"] = json!(preview);
        println!("{out}");
        return Ok(exit::OK);
    }
    print_item(&detail.item);
    for f in &detail.fields {
        println!("  {}: {}", f.label, f.value);
    }
    match &detail.baseline {
        Baseline::NotIssued(b) => {
            println!("{b} is not issued yet (pending review itself): nothing to compare with")
        }
        Baseline::Version(b) if detail.differences.is_empty() => {
            println!("no field differs from {b}")
        }
        Baseline::Version(b) => {
            println!("differences from {b}:");
            for d in &detail.differences {
                println!("  {}: {} → {}", d.label, d.current, d.staged);
            }
        }
        Baseline::New => println!("a new licence (nothing to compare with)"),
    }
    if let Some(p) = preview {
        println!("preview (unsigned): {}", p.display());
    }
    Ok(exit::OK)
}

fn print_item(item: &ReviewItem) {
    println!(
        "review item {} ({}): {} {}{}",
        item.id,
        item.state.as_str(),
        item.action.as_str(),
        item.identifier,
        item.previous_identifier
            .as_deref()
            .map(|p| format!(" (supersedes {p})"))
            .unwrap_or_default()
    );
    println!(
        "staged by {} at {} in run {} from {}",
        item.staged_by, item.staged_at, item.run.0, item.source
    );
    if let (Some(by), Some(at)) = (&item.decided_by, &item.decided_at) {
        println!(
            "decided by {by} at {at}{}",
            item.decision_note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()
        );
    }
}

/// Review item numbers from a CSV: the `id` column (else the first), blank cells skipped.
fn ids_from_csv(path: &Path) -> anyhow::Result<Vec<i64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text);
    let headers = reader.headers().with_context(|| format!("{}: no header", path.display()))?;
    let column =
        headers.iter().position(|h| h.trim().eq_ignore_ascii_case("id")).unwrap_or_default();
    let mut ids = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), n + 2))?;
        let cell = record.get(column).unwrap_or_default().trim();
        if cell.is_empty() {
            continue;
        }
        let id = cell.parse::<i64>().map_err(|_| {
            anyhow::anyhow!("{}:{}: {cell:?} is not a review item number", path.display(), n + 2)
        })?;
        ids.push(id);
    }
    Ok(ids)
}

fn approve_cmd(args: &ApproveArgs) -> anyhow::Result<i32> {
    let selection = match (&args.run, &args.all_from) {
        (Some(run), _) => Selection::Run(RunId(*run)),
        (None, Some(file)) => Selection::Items(ids_from_csv(file)?),
        (None, None) => Selection::Items(args.ids.clone()),
    };
    let options = ApproveOptions {
        data: args.registry.data.clone(),
        registry: args.registry.registry.clone(),
        store: args.registry.store.store.clone(),
        keys: args.keys.keys.clone(),
        passphrase_file: args.keys.passphrase_file.clone(),
        tsa: args.tsa.tsa.clone(),
        public_url: args.public_url.public_url.clone(),
        approver: args.by.claim(),
        default_operator: default_operator(None),
        selection,
        jobs: args.jobs,
        at: now()?,
        interrupt: Some(Interrupt::install()),
    };
    let report = approve(&options)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    eprintln!(
        "approved {} (issued {}, changed {}, revoked {}){}",
        report.approved,
        report.issued,
        report.changed,
        report.revoked,
        report.run.map(|r| format!(" in run {r}")).unwrap_or_default()
    );
    for s in &report.stale {
        eprintln!(
            "stale: review item {} ({}): the registry now decides {}; left pending (reject it, or stage the row again)",
            s.review_item, s.identifier, s.now
        );
    }
    if !report.not_pending.is_empty() {
        eprintln!("not pending (unknown, approved or rejected already): {:?}", report.not_pending);
    }
    if report.development_key {
        eprintln!("warning: signed with the DEVELOPMENT key (not for production)");
    }
    if let Some(signal) = report.interrupted {
        eprintln!(
            "interrupted ({}) at a chunk boundary: what is approved above is signed and \
             committed; the rest is still pending (approve again to continue)",
            signal.name()
        );
        return Ok(signal.exit_code());
    }
    Ok(if report.stale.is_empty() { exit::OK } else { exit::FAILURE })
}

fn reject(args: &RejectArgs) -> anyhow::Result<i32> {
    let reason = input::text("--reason", Some(&args.reason), input::MAX_TEXT)?;
    let mut registry = args.registry.open()?;
    let actor = args.by.authorize(&mut registry, "review reject", &[Role::Reviewer])?;
    let outcomes = registry.review_reject(&args.ids, &reason, actor.name(), now()?)?;
    let mut code = exit::OK;
    for (id, outcome) in outcomes {
        match outcome {
            RejectOutcome::Rejected => println!("rejected review item {id}"),
            RejectOutcome::AlreadyDecided => {
                eprintln!("review item {id} was approved or rejected already");
                code = exit::FAILURE;
            }
            RejectOutcome::Unknown => {
                eprintln!("no review item {id}");
                code = exit::FAILURE;
            }
        }
    }
    Ok(code)
}
