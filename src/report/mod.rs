//! Report: the counts of a run (which always reconcile: read = valid + rejected + duplicates),
//! the CSV files a data team opens in a spreadsheet, and the JSON run report.
//!
//! - [`counts`]: counts per input and per run, and the busy time of each stage.
//! - [`rows`]: `rejects.csv`, `duplicates.csv` and `valid.csv` (UTF-8 with BOM so that Excel
//!   reads the Chinese text).
//! - [`json`]: `report.json` and the report of `validate`.
//! - [`metrics`]: `run --metrics-file`, Prometheus text format for node_exporter.

pub mod counts;
pub mod json;
pub mod metrics;
pub mod rows;

pub use counts::{Counts, InputSummary, StageTimes};
pub use json::{ValidateReport, write_json};
pub use rows::{OutputError, RowFiles};
