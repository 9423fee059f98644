//! Fuzzes the workbook readers (xlsx, xls, ods through calamine, and the zip checks before
//! them): the first byte picks the format, the rest is the file. Any panic — ours or calamine's —
//! is a bug (the reader thread turns a calamine panic into `ReaderStopped`, but libFuzzer's panic
//! hook aborts first, which is what we want here).
#![no_main]

use std::io::Write;

use elicence::read::{Format, Limits, SourceSpec, open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let (format, suffix) = [(Format::Xlsx, ".xlsx"), (Format::Xls, ".xls"), (Format::Ods, ".ods")]
        [usize::from(selector % 3)];
    let Ok(mut file) = tempfile::Builder::new().suffix(suffix).tempfile() else { return };
    if file.write_all(body).is_err() {
        return;
    }
    let spec = SourceSpec {
        format,
        limits: Limits {
            max_uncompressed_bytes: 64 << 20,
            max_compression_ratio: 200,
            ..Limits::default()
        },
        ..SourceSpec::default()
    };
    if let Ok(source) = open(file.path(), &spec) {
        for item in source {
            if let Err(e) = item {
                let _ = e.to_string();
            }
        }
    }
});
