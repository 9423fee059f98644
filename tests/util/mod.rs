//! Shared helpers for the integration tests: run the real binary in a scratch folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command for the `elicence` binary, run from the repository root with a pinned clock.
pub fn elicence() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_elicence"));
    c.current_dir(root());
    c.env("ELICENCE_NOW", "2026-11-27T10:00:00Z");
    c
}

/// Runs and returns the output, printing stderr when the exit code is not the expected one.
pub fn run_expect(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("the elicence binary runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Reads a CSV written by elicence (UTF-8 with BOM) into rows of strings, header included.
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).expect("csv exists");
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "{} starts with a UTF-8 BOM", path.display());
    let mut r =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[3..]);
    r.records().map(|rec| rec.expect("csv row").iter().map(str::to_string).collect()).collect()
}
