//! The read stage's error type: where it happened (file, sheet, row) and what happened, as facts.
//!
//! Row-level errors ([`ReadError::is_fatal`] is false) describe one bad record; the iterator
//! goes on with the next one. Fatal errors end the iteration.

use std::fmt;
use std::sync::Arc;

/// An error while opening or reading a source, with its position.
///
/// Displayed as `exports/2017.csv:412: field 3 is not valid GB18030 (bytes 0xFF 0xFE)`:
/// file, sheet (workbooks only), row (when known), then the fact.
#[derive(Debug, thiserror::Error)]
pub struct ReadError {
    pub file: Arc<str>,
    pub sheet: Option<Arc<str>>,
    /// 1-based row as a spreadsheet user sees it; CSV: the line where the record starts.
    pub row: Option<u64>,
    #[source]
    pub kind: ReadErrorKind,
}

impl ReadError {
    pub(crate) fn new(file: &Arc<str>, kind: ReadErrorKind) -> Self {
        ReadError { file: Arc::clone(file), sheet: None, row: None, kind }
    }

    pub(crate) fn at(
        file: &Arc<str>,
        sheet: Option<&Arc<str>>,
        row: u64,
        kind: ReadErrorKind,
    ) -> Self {
        ReadError { file: Arc::clone(file), sheet: sheet.cloned(), row: Some(row), kind }
    }

    /// True when the error ends the iteration; false for an error that concerns one record
    /// (undecodable bytes, wrong field count, field or record too long, NUL byte).
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self.kind,
            ReadErrorKind::Undecodable { .. }
                | ReadErrorKind::WrongFieldCount { .. }
                | ReadErrorKind::FieldTooLong { .. }
                | ReadErrorKind::RecordTooLong { .. }
                | ReadErrorKind::NulByte { .. }
        )
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(sheet) = &self.sheet {
            write!(f, ":{sheet}")?;
        }
        if let Some(row) = self.row {
            write!(f, ":{row}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// What went wrong. Field numbers are 1-based, as a user counts columns.
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),

    #[error(
        "cannot tell the format from the extension {extension:?} (expected csv, txt, tsv, xlsx, xlsm, xls or ods)"
    )]
    UnknownFormat { extension: String },

    /// The file could not be opened as the declared workbook format (not a zip, truncated,
    /// not a spreadsheet).
    #[error("is not a readable {format} workbook: {reason}")]
    NotAWorkbook { format: &'static str, reason: String },

    /// The sizes the archive declares exceed [`Limits`](super::Limits): a zip bomb.
    #[error("suspicious archive{}: {limit}", entry.as_ref().map(|e| format!(" entry {e}")).unwrap_or_default())]
    SuspiciousArchive { entry: Option<String>, limit: ArchiveLimit },

    /// calamine failed while reading the sheet.
    #[error("workbook error: {0}")]
    Workbook(#[source] calamine::Error),

    #[error("no sheet {wanted} (sheets: {})", available.join(", "))]
    SheetNotFound { wanted: String, available: Vec<String> },

    /// A cell reference beyond the last spreadsheet column (XFD).
    #[error("cell in column {column} is beyond the last column {limit}")]
    ColumnOutOfRange { column: u64, limit: u64 },

    #[error("header row not found in the first {searched} rows; missing from the best candidate: {}", missing.join(", "))]
    HeaderNotFound { missing: Vec<String>, searched: u64 },

    #[error("header row {row} does not exist")]
    HeaderRowMissing { row: u64 },

    /// The background workbook reader stopped without finishing (it panicked).
    #[error("workbook reader stopped unexpectedly")]
    ReaderStopped,

    // ---- row-level ----
    #[error("field {field} is not valid {encoding} (bytes {})", hex_bytes(bytes))]
    Undecodable { field: usize, encoding: &'static str, bytes: Vec<u8> },

    #[error("has {found} fields, the header has {expected}")]
    WrongFieldCount { expected: usize, found: usize },

    #[error("field {field} is {bytes} bytes long, the limit is {limit}")]
    FieldTooLong { field: usize, bytes: usize, limit: usize },

    /// The record was longer than the limit; the rest of it was skipped unread.
    #[error("record is longer than {limit} bytes (the rest was skipped)")]
    RecordTooLong { limit: usize },

    #[error("field {field} contains a NUL byte")]
    NulByte { field: usize },
}

/// Which archive limit was exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveLimit {
    /// The entries together declare more than the limit.
    TotalSize { declared: u64, limit: u64 },
    /// One entry inflates more than `limit` times its compressed size.
    Ratio { uncompressed: u64, compressed: u64, limit: u64 },
}

impl fmt::Display for ArchiveLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveLimit::TotalSize { declared, limit } => {
                write!(f, "uncompressed size {declared} bytes exceeds the limit {limit}")
            }
            ArchiveLimit::Ratio { uncompressed, compressed, limit } => write!(
                f,
                "{compressed} bytes inflate to {uncompressed} bytes, more than {limit} times"
            ),
        }
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 5);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("0x{b:02X}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_row_and_fact() {
        let file: Arc<str> = Arc::from("exports/2017.csv");
        let err = ReadError::at(
            &file,
            None,
            412,
            ReadErrorKind::Undecodable { field: 3, encoding: "GB18030", bytes: vec![0xFF, 0xFE] },
        );
        assert_eq!(
            err.to_string(),
            "exports/2017.csv:412: field 3 is not valid GB18030 (bytes 0xFF 0xFE)"
        );
        assert!(!err.is_fatal());
        let sheet: Arc<str> = Arc::from("Sheet1");
        let err = ReadError::at(
            &file,
            Some(&sheet),
            4,
            ReadErrorKind::WrongFieldCount { expected: 15, found: 14 },
        );
        assert_eq!(err.to_string(), "exports/2017.csv:Sheet1:4: has 14 fields, the header has 15");
        let fatal = ReadError::new(&file, ReadErrorKind::HeaderRowMissing { row: 9 });
        assert!(fatal.is_fatal());
    }
}
