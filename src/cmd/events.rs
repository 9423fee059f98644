//! `elicence events --as DEPT [--since CURSOR] [--json]`: the changes and revocations of the
//! licences a department has queried or been handed, after a cursor (see
//! [`crate::share::events`]). The department authenticates as for `query`; the read is audited.

use clap::Args;

use crate::clock::now;
use crate::cmd::args::{DepartmentArgs, RegistryArgs};
use crate::exit;
use crate::share::events::read_events;
use crate::share::{Ask, authenticate};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence events --as 11220100MB18300819 --json\n  \
    elicence events --as 11220100MB18300819 --since 1842\n\n\
    Store the answer's next_cursor and pass it as --since next time: events come at least once.")]
pub struct EventsArgs {
    #[command(flatten)]
    pub department: DepartmentArgs,
    /// Only events after this cursor (the `next_cursor` of the previous answer; 0: all).
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: &EventsArgs) -> anyhow::Result<i32> {
    let at = now()?;
    let mut registry = args.registry.open()?;
    let ask = Ask {
        command: "events",
        as_code: &args.department.as_code,
        credential_file: args.department.credential_file.as_deref(),
        subject: format!("events:{}", args.since),
        at,
    };
    let (department, _) = authenticate(&mut registry, &ask, None, false)?;
    let answer = read_events(&mut registry, &department.code, args.since, at)?;
    if args.json {
        println!("{}", serde_json::to_string(&answer)?);
        return Ok(exit::OK);
    }
    for e in &answer.events {
        let what = match (&e.supersedes, e.effective) {
            (Some(old), _) => format!("changed: {old} → {}", e.identifier),
            (None, Some(on)) => format!("revoked {} effective {on}", e.identifier),
            (None, None) => format!("{} {}", e.kind, e.identifier),
        };
        println!(
            "{}  {}  {what}  (you saw {})",
            e.cursor,
            e.at.format("%Y-%m-%d %H:%M"),
            e.relied_on
        );
    }
    println!("next cursor: {}", answer.next_cursor);
    Ok(exit::OK)
}
