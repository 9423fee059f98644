//! One file per subcommand. Each exposes its clap `Args` and `run(&args) -> anyhow::Result<i32>`
//! returning the process exit code; errors carry typed causes that `main` maps to exit codes.

pub mod args;
pub mod audit;
pub mod backup;
pub mod catalog;
pub mod check_answer;
pub mod check_request;
pub mod copy;
pub mod dept;
pub mod events;
pub mod r#gen;
pub mod keys;
pub mod log;
pub mod migrate;
pub mod operator;
pub mod query;
pub mod render;
pub mod restore;
pub mod review;
pub mod revoke;
pub mod run;
pub mod seal;
pub mod serve;
pub mod stats;
pub mod store;
pub mod validate;
pub mod verify;

pub use crate::clock::now;
pub use crate::exit;
use crate::render::RenderError;

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

/// A render error that comes from the configuration (font, layout or seal image), not from
/// one licence's data.
fn is_render_configuration(e: &RenderError) -> bool {
    matches!(
        e,
        RenderError::Font(_)
            | RenderError::Io { .. }
            | RenderError::Layout { .. }
            | RenderError::LayoutUnknownField { .. }
            | RenderError::DuplicateLayout { .. }
            | RenderError::Seal { .. }
    )
}

/// Maps an error's cause chain to an exit code.
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    // A TSA outage is neither the input's fault nor the configuration's, wherever it surfaced.
    if err.chain().any(|cause| cause.is::<crate::timestamp::TsaError>()) {
        return exit::FAILURE;
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<crate::share::ShareError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::operators::OperatorError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::serve::ServeError>() {
            return e.exit_code();
        }
        if cause.is::<crate::pipeline::PipelineError>()
            || cause.is::<crate::catalog::CatalogError>()
            || cause.is::<crate::font::FontError>()
            || cause.is::<crate::produce::SealSetError>()
            || cause.is::<crate::workdays::HolidayError>()
            || cause.downcast_ref::<RenderError>().is_some_and(is_render_configuration)
        {
            return exit::CONFIG;
        }
        if cause.is::<crate::read::ReadError>() || cause.is::<crate::engine::EngineError>() {
            return exit::INPUT;
        }
    }
    exit::FAILURE
}
