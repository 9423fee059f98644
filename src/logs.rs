//! Log lines on stderr (`tracing`): the format (`--log-format text|json`) and the filter
//! (`ELICENCE_LOG`, `tracing_subscriber::EnvFilter` syntax, default `info`). A leaf: every
//! layer logs through the `tracing` macros; only `main` installs the subscriber.
//!
//! A run's lines are emitted inside its `run` span, whose `id` field is the run's number in the
//! registry: a text line reads `… INFO run{id=7}: …`, a JSON line carries `"span":{"id":7,…}`.
//! Command output (summaries of `verify`, `--json` reports on stdout) is not logging and does
//! not go through here.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter (e.g. `warn`, `info,elicence=debug`).
pub const FILTER_ENV: &str = "ELICENCE_LOG";

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event: time, level, span (with the run id), message.
    #[default]
    Text,
    /// One JSON object per line (for journald, Loki, Elasticsearch): `timestamp`, `level`,
    /// `message`, the event's fields, and `span` with the run id.
    Json,
}

/// A log filter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{FILTER_ENV}={value:?} is not a log filter: {reason}")]
pub struct BadFilter {
    pub value: String,
    pub reason: String,
}

/// Installs the process's subscriber writing to stderr. Fails when `ELICENCE_LOG` does not
/// parse; call once, before the first log line.
pub fn init(format: LogFormat) -> Result<(), BadFilter> {
    let filter = match std::env::var(FILTER_ENV) {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(value.trim())
            .map_err(|e| BadFilter { value, reason: e.to_string() })?,
        _ => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second subscriber (only possible in tests) is not an error worth stopping for.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// `error` and its causes on one line, `: `-separated, for a log line or a message that
/// carries a failure elsewhere (the error itself may not be `Clone` or `Send`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
