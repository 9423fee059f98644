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
pub mod init;
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
pub mod secrets;
pub mod serve;
pub mod stats;
pub mod store;
pub mod timestamp;
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
            | RenderError::PublicUrl { .. }
    )
}

/// The causes below an error's own message, for `main` to print, each once: a cause whose text
/// is already part of a message shown above it (an error that formats its source into its own
/// message, a wrapper that displays its inner error) is left out.
pub fn distinct_causes(err: &anyhow::Error) -> Vec<String> {
    let mut shown = vec![err.to_string()];
    let mut causes = Vec::new();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        let trimmed = text.trim();
        if trimmed.is_empty() || shown.iter().any(|s| s.contains(trimmed)) {
            continue;
        }
        shown.push(text.clone());
        causes.push(text);
    }
    causes
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
        if let Some(e) = cause.downcast_ref::<crate::share::copy::CopyError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::share::check::CheckError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::operators::OperatorError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::serve::ServeError>() {
            return e.exit_code();
        }
        if let Some(crate::produce::LongTermError::ValidationData(e)) = cause.downcast_ref() {
            use crate::sign::validation_data::ValidationDataError as E;
            // A CRL that could not be fetched may come back; anything else is configuration.
            return if matches!(e, E::Fetch { .. }) { exit::FAILURE } else { exit::CONFIG };
        }
        if cause.is::<crate::pipeline::PipelineError>()
            || cause.is::<crate::pipeline::LevelNeedsTsa>()
            || cause.is::<crate::sign::ProductionKeyError>()
            || cause.is::<crate::catalog::CatalogError>()
            || cause.is::<crate::engine::CatalogNotPublished>()
            || cause.is::<crate::font::FontError>()
            || cause.is::<crate::keyset::KeySetError>()
            || cause.is::<crate::keyset::SealPictureError>()
            || cause.is::<crate::workdays::HolidayError>()
            || cause.downcast_ref::<RenderError>().is_some_and(is_render_configuration)
        {
            return exit::CONFIG;
        }
        // A store error inside a registry error is transparent: not a cause of its own.
        let store = cause.downcast_ref::<crate::registry::StoreError>().or_else(|| {
            match cause.downcast_ref::<crate::registry::RegistryError>() {
                Some(crate::registry::RegistryError::Store(e)) => Some(e),
                _ => None,
            }
        });
        // A missing or foreign field key is configuration: supply the right key file.
        if matches!(
            cause.downcast_ref::<crate::registry::RegistryError>(),
            Some(
                crate::registry::RegistryError::FieldKey { .. }
                    | crate::registry::RegistryError::FieldKeyMissing { .. }
            )
        ) {
            return exit::CONFIG;
        }
        if store.is_some_and(crate::registry::StoreError::is_configuration) {
            return exit::CONFIG;
        }
        if let Some(e) = cause.downcast_ref::<crate::engine::EngineError>()
            && e.is_configuration()
        {
            return exit::CONFIG;
        }
        if cause.is::<crate::read::ReadError>() || cause.is::<crate::engine::EngineError>() {
            return exit::INPUT;
        }
    }
    exit::FAILURE
}

#[cfg(test)]
mod tests {
    use super::distinct_causes;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read in.csv: {0}")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Wrapper(#[source] Outer);

    /// An unreadable input used to show its message three times (wrapper, error, source).
    #[test]
    fn a_cause_already_in_a_message_above_is_shown_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::new(Wrapper(Outer(io)));
        assert_eq!(err.to_string(), "cannot read in.csv: No such file or directory");
        assert!(distinct_causes(&err).is_empty(), "{:?}", distinct_causes(&err));
        let err = anyhow::Error::new(std::io::Error::other("disk on fire"))
            .context("cannot write report.json");
        assert_eq!(distinct_causes(&err), vec!["disk on fire".to_string()]);
    }
}
