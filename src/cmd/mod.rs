//! One file per subcommand. Each exposes its clap `Args` and `run(&args) -> anyhow::Result<i32>`
//! returning the process exit code; errors carry typed causes that `main` maps to exit codes.

pub mod audit;
pub mod backup;
pub mod catalog;
pub mod check_answer;
pub mod check_request;
pub mod copy;
pub mod dept;
pub mod r#gen;
pub mod keys;
pub mod migrate;
pub mod query;
pub mod render;
pub mod restore;
pub mod revoke;
pub mod run;
pub mod stats;
pub mod store;
pub mod validate;
pub mod verify;

use chrono::{DateTime, Utc};

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const CONFIG: i32 = 3;
    pub const INPUT: i32 = 4;
    pub const REJECT_RATE: i32 = 5;
    /// A sharing command refused: not authenticated, disabled, or outside the rights.
    pub const DENIED: i32 = 6;
    /// Interrupted (Ctrl-C) at a chunk boundary; run again to resume.
    pub const INTERRUPTED: i32 = 130;
}

/// The clock of this process: `ELICENCE_NOW` (RFC 3339) pins it for reproducible runs and tests.
pub fn now() -> anyhow::Result<DateTime<Utc>> {
    match std::env::var("ELICENCE_NOW") {
        Ok(s) if !s.is_empty() => Ok(DateTime::parse_from_rfc3339(&s)
            .map_err(|e| anyhow::anyhow!("ELICENCE_NOW={s:?} is not an RFC 3339 time: {e}"))?
            .with_timezone(&Utc)),
        _ => Ok(Utc::now()),
    }
}

/// Who runs a command, for the audit trail: `--operator`, else the OS user.
pub fn operator(given: Option<&str>) -> String {
    match given {
        Some(o) if !o.trim().is_empty() => o.trim().to_string(),
        _ => std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".to_string()),
    }
}

/// Maps an error's cause chain to an exit code.
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<crate::share::ShareError>() {
            return e.exit_code();
        }
        if cause.is::<crate::pipeline::PipelineError>()
            || cause.is::<crate::catalog::CatalogError>()
        {
            return exit::CONFIG;
        }
        if cause.is::<crate::read::ReadError>() || cause.is::<crate::engine::EngineError>() {
            return exit::INPUT;
        }
    }
    exit::FAILURE
}
