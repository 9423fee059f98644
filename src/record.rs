//! A row as it came out of an export, before any interpretation: its cells and the position a
//! spreadsheet user would point at. Every later stage carries the [`SourcePos`] along so that a
//! reject can name file, sheet, row and field.

use std::fmt;
use std::sync::Arc;

/// Where a record came from: file, sheet (workbooks only) and the 1-based row number a
/// spreadsheet user sees (title and header rows counted; for CSV the physical line of the
/// record's first line).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcePos {
    pub file: Arc<str>,
    pub sheet: Option<Arc<str>>,
    pub row: u64,
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sheet {
            Some(sheet) => write!(f, "{}:{}:{}", self.file, sheet, self.row),
            None => write!(f, "{}:{}", self.file, self.row),
        }
    }
}

/// One cell as the source gave it. CSV yields only `Text` and `Empty`; workbooks also yield the
/// typed variants so that dates and lossy numbers can be told apart from text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// A numeric cell. Excel keeps at most 15 significant digits, so an 18-digit identifier stored
    /// as a number has already lost digits: normalisation rejects it for code fields.
    Number(f64),
    Bool(bool),
    /// A date-formatted cell: the Excel serial and whether the workbook uses the 1904 system.
    ExcelDate {
        serial: f64,
        date1904: bool,
    },
    /// An ISO 8601 date or date-time as ODS stores it (`2024-08-02`, `2024-08-02T00:00:00`).
    IsoDate(String),
    /// An error value such as `#N/A`.
    Error(String),
}

impl Cell {
    /// True when the cell holds nothing, or only whitespace.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.chars().all(|c| c.is_whitespace() || c == '\u{feff}'),
            _ => false,
        }
    }

    /// The cell's text: borrowed for a text cell, else as [`Cell::display`] shows it.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Cell::Text(s) => std::borrow::Cow::Borrowed(s),
            other => std::borrow::Cow::Owned(other.display()),
        }
    }

    /// The cell as a spreadsheet user would read it, for rejects files and messages.
    pub fn display(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    format!("{n:.0}")
                } else {
                    format!("{n}")
                }
            }
            Cell::Bool(b) => b.to_string(),
            Cell::ExcelDate { serial, .. } => format!("{serial}"),
            Cell::IsoDate(s) => s.clone(),
            Cell::Error(e) => e.clone(),
        }
    }
}

/// A data row: its cells in source column order and its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub pos: SourcePos,
    pub cells: Vec<Cell>,
}
