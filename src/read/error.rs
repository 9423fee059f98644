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

    /// A reference in an xlsx worksheet (a cell's `r`, a row's `r`, the sheet's `<dimension>`)
    /// that the workbook reader would misplace or fail on. The workbook is refused: a value
    /// must never land in another cell than the one its reference names.
    #[error("{site} reference {} {problem}", quoted(reference))]
    BadReference { site: ReferenceSite, reference: String, problem: ReferenceProblem },

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

/// Where in a worksheet a [`ReadErrorKind::BadReference`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceSite {
    /// A cell's `r` attribute (`<c r="C4">`), or the position a cell without one is given.
    Cell,
    /// A row's `r` attribute (`<row r="4">`).
    Row,
    /// The used range the sheet declares (`<dimension ref="A1:E20">`).
    Dimension,
}

impl fmt::Display for ReferenceSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReferenceSite::Cell => "cell",
            ReferenceSite::Row => "row",
            ReferenceSite::Dimension => "dimension",
        })
    }
}

/// What is wrong with a worksheet reference. A reference is A1 style (ECMA-376 Part 1
/// `ST_CellRef`): column letters, then the row number, within Excel's grid of 16,384 columns
/// (`A`..`XFD`) and 1,048,576 rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceProblem {
    /// Not column letters followed by a row number (`4`, `A`, `A0`, `$A$1`, `A1B`, `R1C1`).
    Malformed,
    /// The column is beyond XFD (16,384).
    BeyondLastColumn,
    /// The row is beyond 1,048,576.
    BeyondLastRow,
    /// The cell does not come after the cell before it: a worksheet stores its cells row by
    /// row, left to right, each once (ECMA-376 Part 1 §18.3.1.73 `row`, §18.3.1.4 `c`), so this
    /// is a duplicate or a cell out of order. `previous` is the position of the cell before it.
    OutOfOrder { previous: String },
    /// The element carries the reference attribute more than once.
    Repeated,
    /// A range whose end is above or left of its start (`B2:A1`).
    Reversed,
}

impl fmt::Display for ReferenceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceProblem::Malformed => f.write_str("is malformed"),
            ReferenceProblem::BeyondLastColumn => f.write_str("is beyond the last column XFD"),
            ReferenceProblem::BeyondLastRow => f.write_str("is beyond the last row 1048576"),
            ReferenceProblem::OutOfOrder { previous } => {
                write!(f, "does not come after the cell before it ({})", quoted(previous))
            }
            ReferenceProblem::Repeated => f.write_str("is given more than once on one element"),
            ReferenceProblem::Reversed => f.write_str("ends before it starts"),
        }
    }
}

/// A reference as it appears in a message: quoted and escaped, and cut after 40 characters
/// (it comes from the file and may be arbitrarily long).
fn quoted(reference: &str) -> String {
    const SHOWN: usize = 40;
    let mut chars = reference.chars();
    let shown: String = chars.by_ref().take(SHOWN).collect();
    if chars.next().is_some() { format!("{shown:?}…") } else { format!("{shown:?}") }
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

    #[test]
    fn bad_reference_names_sheet_row_and_reference() {
        let file: Arc<str> = Arc::from("exports/2017.xlsx");
        let sheet: Arc<str> = Arc::from("Sheet1");
        let err = ReadError::at(
            &file,
            Some(&sheet),
            4,
            ReadErrorKind::BadReference {
                site: ReferenceSite::Cell,
                reference: "AATYHWUT4".into(),
                problem: ReferenceProblem::BeyondLastColumn,
            },
        );
        assert!(err.is_fatal());
        assert_eq!(
            err.to_string(),
            "exports/2017.xlsx:Sheet1:4: cell reference \"AATYHWUT4\" is beyond the last column XFD"
        );
        let long = ReadErrorKind::BadReference {
            site: ReferenceSite::Row,
            reference: "9".repeat(50),
            problem: ReferenceProblem::BeyondLastRow,
        };
        assert_eq!(
            long.to_string(),
            format!("row reference \"{}\"… is beyond the last row 1048576", "9".repeat(40))
        );
    }
}
