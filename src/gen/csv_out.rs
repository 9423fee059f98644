//! CSV output of the generator: UTF-8 or GB18030, comma-separated, CRLF line ends (as Windows
//! systems export), fields quoted only when they hold a comma, quote or line break. Rows are
//! encoded one at a time into a buffered file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{ExportRow, ExportWriter, GenError};

/// Writes a CSV export.
pub struct CsvWriter {
    out: BufWriter<File>,
    path: PathBuf,
    gb18030: bool,
    line: String,
    /// The line the next record starts on.
    next_line: u64,
}

impl CsvWriter {
    /// Creates `path`; `gb18030` encodes the text as GB18030 (a superset of GBK) instead of
    /// UTF-8.
    pub fn create(path: &Path, gb18030: bool) -> Result<CsvWriter, GenError> {
        let file = File::create(path)
            .map_err(|source| GenError::Write { path: path.to_path_buf(), source })?;
        Ok(CsvWriter {
            out: BufWriter::with_capacity(1 << 17, file),
            path: path.to_path_buf(),
            gb18030,
            line: String::with_capacity(1024),
            next_line: 1,
        })
    }

    fn write_record<'a>(&mut self, cells: impl Iterator<Item = &'a str>) -> Result<u64, GenError> {
        let at = self.next_line;
        self.line.clear();
        let mut breaks = 0;
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            if cell.contains([',', '"', '\n', '\r']) {
                breaks += cell.matches('\n').count() as u64;
                self.line.push('"');
                for part in cell.split_inclusive('"') {
                    self.line.push_str(part);
                    if part.ends_with('"') {
                        self.line.push('"');
                    }
                }
                self.line.push('"');
            } else {
                self.line.push_str(cell);
            }
        }
        self.line.push_str("\r\n");
        self.next_line += 1 + breaks;
        let result = if self.gb18030 {
            let (bytes, _, _) = encoding_rs::GB18030.encode(&self.line);
            self.out.write_all(&bytes)
        } else {
            self.out.write_all(self.line.as_bytes())
        };
        result.map_err(|source| GenError::Write { path: self.path.clone(), source })?;
        Ok(at)
    }
}

impl ExportWriter for CsvWriter {
    fn headers(&mut self, headers: &[String]) -> Result<(), GenError> {
        self.write_record(headers.iter().map(String::as_str)).map(|_| ())
    }

    fn row(&mut self, row: &ExportRow) -> Result<u64, GenError> {
        self.write_record(row.cells.iter().map(String::as_str))
    }

    fn finish(mut self: Box<Self>) -> Result<(), GenError> {
        self.out.flush().map_err(|source| GenError::Write { path: self.path.clone(), source })
    }
}
