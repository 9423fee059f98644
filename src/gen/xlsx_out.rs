//! xlsx output of the generator, written with the `zip` crate alone (ECMA-376 Part 1, SpreadsheetML):
//! `[Content_Types].xml`, `_rels/.rels`, `xl/workbook.xml`, `xl/_rels/workbook.xml.rels`,
//! `xl/styles.xml` (one date format), `xl/worksheets/sheet1.xml`, which is streamed into its
//! zip entry row by row with inline strings (`t="inlineStr"`), and `xl/sharedStrings.xml`.
//! Row 1 is a merged title, row 2 the headers, data from row 3.
//!
//! Size: a million-row sheet must stay under the reader's 1 GiB archive limit
//! ([`crate::read::Limits`]). So columns with a small vocabulary (status, issuer, enums, signer,
//! supervision office) use a shared-strings table, capped at [`MAX_SHARED`] entries so that it
//! stays small for reader and writer; every other text is inline. Cells carry no `r` reference
//! unless an empty cell was skipped before them (readers count columns in order). Entries carry
//! the zip epoch as time stamp, so equal rows give equal bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::dates::push_uint;
use super::{CellKind, ExportRow, ExportWriter, GenError};

/// The sheet row of the first data row (title in 1, headers in 2).
pub const DATA_START_ROW: u64 = 3;

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;

const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;

const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="台账" sheetId="1" r:id="rId1"/></sheets></workbook>"#;

const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;

// Style 1 is the built-in date format 14 (ECMA-376 §18.8.30: `m/d/yyyy`, shown localised).
const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="宋体"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>"#;

const SST_START: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main""#;

const SHEET_START: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">"#;

/// Most entries of the shared-strings table; later new texts are written inline.
pub const MAX_SHARED: usize = 4096;

/// Writes an xlsx export.
pub struct XlsxWriter {
    /// Per column: whether its texts go to the shared-strings table.
    shared_columns: Vec<bool>,
    shared: std::collections::HashMap<String, u32>,
    shared_order: Vec<String>,
    shared_refs: u64,
    zip: ZipWriter<BufWriter<File>>,
    path: PathBuf,
    title: String,
    width: usize,
    buf: String,
    next_row: u64,
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .last_modified_time(zip::DateTime::default())
}

impl XlsxWriter {
    /// Creates `path` with the workbook parts and opens the sheet entry. `width` is the number
    /// of columns (for the merged title).
    /// `shared_columns` marks the columns whose texts are shared strings. `data_rows` (one
    /// sheet row each) goes into the sheet's `<dimension>`, as Excel writes it: readers use it
    /// to tell how far into the sheet they are.
    pub fn create(
        path: &Path,
        title: &str,
        width: usize,
        shared_columns: Vec<bool>,
        data_rows: u64,
    ) -> Result<XlsxWriter, GenError> {
        let file = File::create(path)
            .map_err(|source| GenError::Write { path: path.to_path_buf(), source })?;
        let mut w = XlsxWriter {
            shared_columns,
            shared: std::collections::HashMap::new(),
            shared_order: Vec::new(),
            shared_refs: 0,
            zip: ZipWriter::new(BufWriter::with_capacity(1 << 17, file)),
            path: path.to_path_buf(),
            title: title.to_string(),
            width: width.max(1),
            buf: String::with_capacity(4096),
            next_row: 1,
        };
        for (name, body) in [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
            ("xl/workbook.xml", WORKBOOK),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
            ("xl/styles.xml", STYLES),
        ] {
            w.zip.start_file(name, options()).map_err(|e| w.zip_err(e))?;
            w.put(body)?;
        }
        w.zip.start_file("xl/worksheets/sheet1.xml", options()).map_err(|e| w.zip_err(e))?;
        let mut start = String::from(SHEET_START);
        start.push_str("<dimension ref=\"A1:");
        push_column_name(&mut start, w.width - 1);
        push_uint(&mut start, DATA_START_ROW + data_rows.max(1) - 1);
        start.push_str("\"/><sheetData>");
        w.put(&start)?;
        Ok(w)
    }

    fn zip_err(&self, source: zip::result::ZipError) -> GenError {
        GenError::Zip { path: self.path.clone(), source }
    }

    fn put(&mut self, s: &str) -> Result<(), GenError> {
        self.zip
            .write_all(s.as_bytes())
            .map_err(|source| GenError::Write { path: self.path.clone(), source })
    }

    /// Writes one sheet row of text cells and kinds; returns its row number.
    fn write_row<'a>(
        &mut self,
        cells: impl Iterator<Item = (&'a str, CellKind)>,
    ) -> Result<u64, GenError> {
        let r = self.next_row;
        self.next_row += 1;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.push_str("<row r=\"");
        push_uint(&mut buf, r);
        buf.push_str("\">");
        let mut skipped = false;
        for (col, (text, kind)) in cells.enumerate() {
            if text.is_empty() {
                skipped = true;
                continue;
            }
            buf.push_str("<c");
            if skipped {
                buf.push_str(" r=\"");
                push_column_name(&mut buf, col);
                push_uint(&mut buf, r);
                buf.push('"');
                skipped = false;
            }
            let shared = self.shared_columns.get(col).copied().unwrap_or(false);
            let index = match (kind, shared) {
                (CellKind::Text, true) => self.intern(text),
                _ => None,
            };
            if let Some(i) = index {
                buf.push_str(" t=\"s\"><v>");
                push_uint(&mut buf, u64::from(i));
                buf.push_str("</v></c>");
                continue;
            }
            match kind {
                CellKind::Text => {
                    buf.push_str(" t=\"inlineStr\"><is><t");
                    if text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace)
                    {
                        buf.push_str(" xml:space=\"preserve\"");
                    }
                    buf.push('>');
                    push_escaped(&mut buf, text);
                    buf.push_str("</t></is></c>");
                }
                CellKind::Number | CellKind::Date => {
                    if kind == CellKind::Date {
                        buf.push_str(" s=\"1\"");
                    }
                    buf.push_str("><v>");
                    push_escaped(&mut buf, text);
                    buf.push_str("</v></c>");
                }
            }
        }
        buf.push_str("</row>");
        let result = self.put(&buf);
        self.buf = buf;
        result.map(|()| r)
    }
}

impl XlsxWriter {
    /// The shared-string index of `text`, adding it while the table has room.
    fn intern(&mut self, text: &str) -> Option<u32> {
        let i = match self.shared.get(text) {
            Some(&i) => i,
            None if self.shared_order.len() < MAX_SHARED => {
                let i = u32::try_from(self.shared_order.len()).ok()?;
                self.shared.insert(text.to_string(), i);
                self.shared_order.push(text.to_string());
                i
            }
            None => return None,
        };
        self.shared_refs += 1;
        Some(i)
    }
}

/// `A`, `B`, …, `Z`, `AA`, … for a 0-based column.
fn push_column_name(out: &mut String, col: usize) {
    let mut n = col + 1;
    let mut letters = [0u8; 4];
    let mut i = letters.len();
    while n > 0 && i > 0 {
        i -= 1;
        letters[i] = b'A' + ((n - 1) % 26) as u8;
        n = (n - 1) / 26;
    }
    for &b in &letters[i..] {
        out.push(char::from(b));
    }
}

/// XML-escapes text content.
fn push_escaped(out: &mut String, text: &str) {
    if !text.contains(['&', '<', '>']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

impl ExportWriter for XlsxWriter {
    fn headers(&mut self, headers: &[String]) -> Result<(), GenError> {
        let title = self.title.clone();
        self.write_row(std::iter::once((title.as_str(), CellKind::Text)))?;
        self.write_row(headers.iter().map(|h| (h.as_str(), CellKind::Text)))?;
        Ok(())
    }

    fn row(&mut self, row: &ExportRow) -> Result<u64, GenError> {
        self.write_row(row.cells.iter().map(String::as_str).zip(row.kinds.iter().copied()))
    }

    fn finish(mut self: Box<Self>) -> Result<(), GenError> {
        let mut end = String::from("</sheetData><mergeCells count=\"1\"><mergeCell ref=\"A1:");
        push_column_name(&mut end, self.width - 1);
        end.push_str("1\"/></mergeCells></worksheet>");
        self.put(&end)?;
        self.zip.start_file("xl/sharedStrings.xml", options()).map_err(|e| self.zip_err(e))?;
        let mut sst = String::from(SST_START);
        sst.push_str(" count=\"");
        push_uint(&mut sst, self.shared_refs);
        sst.push_str("\" uniqueCount=\"");
        push_uint(&mut sst, self.shared_order.len() as u64);
        sst.push_str("\">");
        for text in &self.shared_order {
            sst.push_str("<si><t");
            if text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace) {
                sst.push_str(" xml:space=\"preserve\"");
            }
            sst.push('>');
            push_escaped(&mut sst, text);
            sst.push_str("</t></si>");
        }
        sst.push_str("</sst>");
        self.put(&sst)?;
        let mut inner =
            self.zip.finish().map_err(|e| GenError::Zip { path: self.path.clone(), source: e })?;
        inner.flush().map_err(|source| GenError::Write { path: self.path.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        let name = |c| {
            let mut s = String::new();
            push_column_name(&mut s, c);
            s
        };
        assert_eq!(name(0), "A");
        assert_eq!(name(25), "Z");
        assert_eq!(name(26), "AA");
        assert_eq!(name(16_383), "XFD");
    }
}
