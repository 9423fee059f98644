//! The JSON report: `report.json` in the output folder, and the report of `validate`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::counts::{Counts, InputSummary};
use super::rows::{OutputError, io_err};

/// The JSON report of a validate (or run) invocation.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    pub pipeline: String,
    pub licence_type: String,
    pub type_code: String,
    pub started: String,
    pub finished: String,
    pub inputs: Vec<InputSummary>,
    pub counts: Counts,
    pub reconciled: bool,
    pub rejects_by_rule: BTreeMap<String, u64>,
    pub reject_rate: f64,
}

/// Writes `report.json` into `dir`.
pub fn write_json(dir: &Path, report: &impl Serialize) -> Result<(), OutputError> {
    let path = dir.join("report.json");
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| io_err(&path, std::io::Error::other(e)))?;
    std::fs::write(&path, text + "\n").map_err(|e| io_err(&path, e))
}
