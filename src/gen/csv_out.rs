//! CSV output of the generator: UTF-8 or GB18030, comma-separated, CRLF line ends (as Windows
//! systems export), fields quoted only when they hold a comma, quote or line break. Rows are
//! encoded one at a time into a buffered file.
//!
//! GB18030: encoding_rs encodes Chinese characters by searching its index (it decodes fast but
//! encodes slowly without its `fast-gb-hanzi-encode` feature), which made a million-row export
//! take half a minute. [`Gb18030Table`] asks encoding_rs once for the two-byte form of every
//! character that has one and looks them up afterwards; the bytes are the same.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{ExportRow, ExportWriter, GenError};

/// The two-byte GB18030 (GBK) form of every character of the Basic Multilingual Plane that has
/// one, as encoding_rs encodes it; other characters (four-byte forms) go to encoding_rs.
pub struct Gb18030Table {
    /// Indexed by code point; `[0, 0]` for characters without a two-byte form.
    pairs: Vec<[u8; 2]>,
}

impl Gb18030Table {
    /// Builds the table: decodes every two-byte sequence (lead 0x81–0xFE, trail 0x40–0xFE
    /// without 0x7F) and keeps encoding_rs's encoding of each character found.
    pub fn new() -> Gb18030Table {
        let mut pairs = vec![[0u8; 2]; 0x1_0000];
        let mut utf8 = [0u8; 4];
        for lead in 0x81u8..=0xFE {
            for trail in (0x40u8..=0xFE).filter(|&t| t != 0x7F) {
                let pair = [lead, trail];
                let (text, _) = encoding_rs::GB18030.decode_without_bom_handling(&pair);
                let mut chars = text.chars();
                let (Some(c), None) = (chars.next(), chars.next()) else { continue };
                let Some(slot) = pairs.get_mut(c as usize) else { continue };
                if *slot != [0, 0] || c.is_ascii() {
                    continue;
                }
                let (bytes, _, _) = encoding_rs::GB18030.encode(c.encode_utf8(&mut utf8));
                if let [a, b] = *bytes {
                    *slot = [a, b];
                }
            }
        }
        Gb18030Table { pairs }
    }

    /// Appends the GB18030 bytes of `text` to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u8>) {
        let mut utf8 = [0u8; 4];
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c as u8);
                continue;
            }
            match self.pairs.get(c as usize) {
                Some(&[a, b]) if a != 0 => out.extend_from_slice(&[a, b]),
                _ => {
                    let (bytes, _, _) = encoding_rs::GB18030.encode(c.encode_utf8(&mut utf8));
                    out.extend_from_slice(&bytes);
                }
            }
        }
    }
}

impl Default for Gb18030Table {
    fn default() -> Self {
        Gb18030Table::new()
    }
}

/// Writes a CSV export.
pub struct CsvWriter {
    out: BufWriter<File>,
    path: PathBuf,
    gb18030: Option<Gb18030Table>,
    bytes: Vec<u8>,
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
            gb18030: gb18030.then(Gb18030Table::new),
            bytes: Vec::with_capacity(1024),
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
        let result = if let Some(table) = &self.gb18030 {
            self.bytes.clear();
            table.encode_into(&self.line, &mut self.bytes);
            self.out.write_all(&self.bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_encodes_like_encoding_rs() {
        let table = Gb18030Table::new();
        let text = "许可证编号,长春市朝阳区䶮记烧烤店\u{a0},𠈌,（有限合伙）,二〇一七年○月,ＪＹ１２,€,\u{3000}x\r\n";
        let mut ours = Vec::new();
        table.encode_into(text, &mut ours);
        let (theirs, _, _) = encoding_rs::GB18030.encode(text);
        assert_eq!(ours, theirs.into_owned());
    }
}
