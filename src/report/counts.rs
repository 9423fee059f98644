//! Counts of rows per input and per run, and the busy time of each stage.

use serde::Serialize;

/// Counts of one run. `read` counts every data row (blank rows excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub read: u64,
    pub valid: u64,
    pub rejected: u64,
    pub duplicates: u64,
}

impl Counts {
    /// read = valid + rejected + duplicates.
    pub fn reconciles(&self) -> bool {
        self.read == self.valid + self.rejected + self.duplicates
    }

    pub fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.valid += other.valid;
        self.rejected += other.rejected;
        self.duplicates += other.duplicates;
    }
}

/// What was read from one input file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub encoding: String,
    pub header_row: u64,
    pub blank_rows_skipped: u64,
    pub counts: Counts,
    /// Busy time of the stages for this input.
    pub stages: StageTimes,
}

/// Busy time per stage, in seconds. The stages overlap (reading, validating and loading run at
/// the same time), so the sum exceeds the wall time; the largest one bounds the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Reading, splitting and decoding the export (the reader thread).
    pub read_s: f64,
    /// Normalising and validating, on all cores (wall time per chunk, summed).
    pub validate_s: f64,
    /// Deciding new / unchanged / change / revoke against the registry.
    pub decide_s: f64,
    /// Rendering and signing PDF and XML, on all cores (wall time per chunk, summed).
    pub render_sign_s: f64,
    /// Writing the files to the store and committing each chunk (wall time of the loader
    /// thread, waits for the disk included).
    pub load_s: f64,
    /// CPU time the loader thread spent on it (user + system). Beside `load_s` it tells waiting
    /// (for the disk, or for a core when more threads than cores are busy) from work.
    pub load_cpu_s: f64,
}

impl StageTimes {
    pub fn add(&mut self, other: &StageTimes) {
        self.read_s += other.read_s;
        self.validate_s += other.validate_s;
        self.decide_s += other.decide_s;
        self.render_sign_s += other.render_sign_s;
        self.load_s += other.load_s;
        self.load_cpu_s += other.load_cpu_s;
    }
}
