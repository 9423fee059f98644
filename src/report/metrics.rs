//! `run --metrics-file PATH`: the run's figures in the Prometheus text exposition format
//! (version 0.0.4), for node_exporter's textfile collector (`--collector.textfile.directory`).
//!
//! The file describes the last run of the pipeline: rows read, licences by outcome, duplicates,
//! rejects by rule, duration, whether it succeeded, when it finished, and when a run last
//! succeeded (carried over from the previous file when this run did not). It is written to a
//! temporary file beside PATH and renamed, so the collector never reads half a file.
//! [`render`] is pure; [`write`] is the effect.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::rows::OutputError;

/// What the metrics file says about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics<'a> {
    /// The pipeline's name (label `pipeline`).
    pub pipeline: &'a str,
    /// `completed`, `interrupted` or `failed`.
    pub outcome: &'a str,
    pub rows_read: u64,
    pub issued: u64,
    pub changed: u64,
    pub revoked: u64,
    pub unchanged: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Rejected rows by their primary rule.
    pub rejects_by_rule: &'a BTreeMap<String, u64>,
    pub duration_s: f64,
    /// When the run ended, Unix seconds (the run's clock).
    pub finished_unix: i64,
    /// When a run of this pipeline last completed: `finished_unix` for a completed run; for
    /// another outcome, what the previous file said (`None`: never, and the line is left out).
    pub last_success_unix: Option<i64>,
}

/// The metric that carries the last success over from one file to the next.
const LAST_SUCCESS: &str = "elicence_run_last_success_timestamp_seconds";

/// The file's text.
pub fn render(m: &RunMetrics<'_>) -> String {
    let pipeline = label_value(m.pipeline);
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{pipeline=\"{pipeline}\"{labels}}} {value}");
        }
    };
    let one = |v: String| vec![(String::new(), v)];
    gauge("elicence_run_rows", "Rows read by the last run.", &one(m.rows_read.to_string()));
    let licences: Vec<(String, String)> = [
        ("issued", m.issued),
        ("changed", m.changed),
        ("revoked", m.revoked),
        ("unchanged", m.unchanged),
    ]
    .iter()
    .map(|(outcome, n)| (format!(",outcome=\"{outcome}\""), n.to_string()))
    .collect();
    gauge("elicence_run_licences", "Licences of the last run by outcome.", &licences);
    gauge(
        "elicence_run_duplicates",
        "Rows of the last run equal to an earlier row.",
        &one(m.duplicates.to_string()),
    );
    gauge("elicence_run_rejected", "Rows rejected by the last run.", &one(m.rejected.to_string()));
    let by_rule: Vec<(String, String)> = m
        .rejects_by_rule
        .iter()
        .map(|(rule, n)| (format!(",rule=\"{}\"", label_value(rule)), n.to_string()))
        .collect();
    gauge("elicence_run_rejects", "Rows rejected by the last run, by primary rule.", &by_rule);
    gauge(
        "elicence_run_duration_seconds",
        "Wall time of the last run.",
        &one(format!("{:.3}", m.duration_s)),
    );
    gauge(
        "elicence_run_success",
        "1 when the last run completed, 0 when it was interrupted or failed.",
        &one(u8::from(m.outcome == "completed").to_string()),
    );
    gauge(
        "elicence_run_last_finish_timestamp_seconds",
        "When the last run ended (Unix time).",
        &one(m.finished_unix.to_string()),
    );
    if let Some(t) = m.last_success_unix {
        gauge(LAST_SUCCESS, "When a run last completed (Unix time).", &one(t.to_string()));
    }
    out
}

/// Escapes a label value (backslash, double quote, line feed).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The last success time a previous metrics file records, if it parses.
pub fn previous_last_success(text: &str) -> Option<i64> {
    text.lines()
        .filter(|l| l.starts_with(LAST_SUCCESS))
        .filter_map(|l| l.rsplit(' ').next())
        .find_map(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

/// Writes `m` to `path` (temporary file + rename). When `m` has no last success time (the run
/// did not complete), the one of the file it replaces is kept.
///
/// Fails with [`OutputError`] naming the file when it cannot be written.
pub fn write(path: &Path, m: &RunMetrics<'_>) -> Result<(), OutputError> {
    let io_err = |source| OutputError { path: path.to_path_buf(), source };
    let mut m = m.clone();
    if m.last_success_unix.is_none() {
        m.last_success_unix =
            std::fs::read_to_string(path).ok().as_deref().and_then(previous_last_success);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, render(&m)).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rules: &BTreeMap<String, u64>) -> RunMetrics<'_> {
        RunMetrics {
            pipeline: "food \"x\"",
            outcome: "completed",
            rows_read: 10,
            issued: 5,
            changed: 1,
            revoked: 1,
            unchanged: 0,
            duplicates: 1,
            rejected: 2,
            rejects_by_rule: rules,
            duration_s: 1.5,
            finished_unix: 1_700_000_000,
            last_success_unix: Some(1_700_000_000),
        }
    }

    #[test]
    fn every_sample_has_a_type_and_labels_are_escaped() {
        let rules = BTreeMap::from([("check_digit".to_string(), 2)]);
        let text = render(&sample(&rules));
        assert!(text.contains("elicence_run_rows{pipeline=\"food \\\"x\\\"\"} 10\n"), "{text}");
        assert!(text.contains("outcome=\"issued\"} 5\n"), "{text}");
        assert!(text.contains("rule=\"check_digit\"} 2\n"), "{text}");
        assert!(text.contains("elicence_run_success{pipeline=\"food \\\"x\\\"\"} 1\n"), "{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {name} gauge")), "{line}");
        }
        assert_eq!(previous_last_success(&text), Some(1_700_000_000));
    }
}
