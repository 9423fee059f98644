//! Fuzzes the CSV reader: the first byte picks delimiter, encoding and header mode, the rest is
//! the file. Small limits make the record limiter cut records often. Any panic is a bug; every
//! failure must be a `ReadError`.
#![no_main]

use std::io::Write;

use elicence::read::{Encoding, Format, Limits, SourceSpec, open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let delimiter = [b',', b';', b'\t', b'|'][usize::from(selector & 3)];
    let encoding = [Encoding::Auto, Encoding::Utf8, Encoding::Gbk, Encoding::Gb18030]
        [usize::from((selector >> 2) & 3)];
    let (header_row, expected_headers) = match (selector >> 4) & 3 {
        0 => (None, Vec::new()),
        1 => (Some(u64::from(selector >> 6) + 1), Vec::new()),
        _ => (None, vec!["a".into(), "名称".into()]),
    };
    let Ok(mut file) = tempfile::Builder::new().suffix(".csv").tempfile() else { return };
    if file.write_all(body).is_err() {
        return;
    }
    let spec = SourceSpec {
        format: Format::Csv,
        encoding,
        delimiter,
        header_row,
        expected_headers,
        limits: Limits { max_field_bytes: 16, max_record_bytes: 64, ..Limits::default() },
        ..SourceSpec::default()
    };
    if let Ok(source) = open(file.path(), &spec) {
        let _ = (source.headers().len(), source.header_row(), source.encoding_used());
        for item in source {
            if let Err(e) = item {
                let _ = e.to_string();
            }
        }
    }
});
