//! The block-parallel xlsx worksheet reader: one thread inflates the worksheet entry and cuts
//! its `<sheetData>` into blocks of whole rows ([`Cutter`]); whichever thread runs the batch
//! parses a block ([`XlsxBlock::parse`]) into the same rows, values and errors calamine 0.38's
//! `XlsxCellReader` gives for those bytes, so reading spreads over the cores as CSV does.
//!
//! Where to cut is not guessed from the bytes: the reference pre-check (`sheet_refs::scan`, a
//! full quick-xml pass that `check_archive` makes anyway) records cut points after `</row>`
//! end tags, with calamine's reader state there (the row a cell without a reference falls in,
//! the last cell's position), and refuses to cut a sheet whose markup could make a block's own
//! parse differ from calamine's (see [`SheetIndex`]); such a sheet, and anything this module
//! cannot reproduce, is read by calamine as before ([`plan`] returns `None`).
//!
//! calamine emits a row only once the first cell of the next row has been read: if that cell
//! fails, the row before it is never seen. So a block reads on past its cut through the first
//! cell of the next row (the `lookahead` bytes, which the next block starts with again) and
//! ends with its last row only when that cell reads; otherwise it ends with the error.
//!
//! What a block parse needs from the workbook is parsed once, before the first block, and
//! shared ([`SheetParts`]): the shared-strings table (`xl/sharedStrings.xml`, rich-text runs
//! concatenated, phonetic runs skipped) and which cell styles are dates (`xl/styles.xml`:
//! `numFmts` and `cellXfs`, with calamine's own date-format detection), with the 1904 flag as
//! calamine read it. The workbook is still opened by calamine first (its open errors, sheet
//! names and 1904 flag stay calamine's), and the first block's rows are compared with
//! calamine's before the rest is read this way; a difference falls back to calamine.
//!
//! Memory: a block is about `BLOCK_BYTES` plus one cell; [`BLOCKS_IN_FLIGHT`] wait between the
//! cutter and the reader, and the engine holds a few chunks of batches, as for CSV.
//! No panics on input: every index is checked; a calamine error becomes the same
//! `ReadErrorKind::Workbook` error calamine's path reports.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType, Xlsx, XlsxError};
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::QName;

use super::sheet_refs::{SheetIndex, xml_reader};
use super::{RowGrouper, RowSender, SheetIndexes, date_cell, stream_xlsx};
use crate::read::{RawRow, ReadError, ReadErrorKind};
use crate::record::Cell;

/// Bytes of worksheet XML per block (before the next row's first cell is added): as for CSV
/// blocks, a few thousand cells, enough to amortise the hand-off.
pub(crate) const BLOCK_BYTES: u64 = 256 * 1024;

/// Blocks cut and not yet taken by the reader.
const BLOCKS_IN_FLIGHT: usize = 2;

/// Spare block buffers kept for the cutter to fill again (see `csv::CsvFormat::spare`).
const SPARE_BUFFERS: usize = 16;

/// What the cutter thread sends after `Msg::Blocks`.
pub(crate) enum BlockMsg {
    Block(XlsxBlock),
    Fatal(ReadError),
    End,
}

/// calamine's `formats::CellFormat`: whether a number in a cell of this style is a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellFormat {
    Other,
    DateTime,
    TimeDelta,
}

/// What every block of one worksheet needs, read once.
pub(crate) struct SheetParts {
    file: Arc<str>,
    sheet: Arc<str>,
    max_field_bytes: usize,
    /// The shared-strings table, in order.
    strings: Vec<String>,
    /// Per cell style (`s`), its number format's kind.
    formats: Vec<CellFormat>,
    is_1904: bool,
    spare: Mutex<Vec<Vec<u8>>>,
}

/// calamine's cell-reader state where a block starts.
#[derive(Debug, Clone, Copy)]
struct BlockStart {
    /// The 0-based row a cell without a reference falls in (the column is 0).
    row_index: u32,
    /// The last cell's position before the block (0-based), for the order check.
    previous: Option<(u32, u32)>,
}

/// Whole rows of a worksheet's `<sheetData>`, parsed by whichever thread runs the batch.
pub(crate) struct XlsxBlock {
    bytes: Vec<u8>,
    start: BlockStart,
    /// Where the next block starts (after a `</row>`); the bytes after it are the next row's
    /// first cell, read only to learn whether calamine would have emitted this block's last
    /// row. `None` for the last block, which ends where `</sheetData>` starts.
    cut: Option<usize>,
    parts: Arc<SheetParts>,
}

impl Drop for XlsxBlock {
    fn drop(&mut self) {
        if let Ok(mut spare) = self.parts.spare.lock()
            && spare.len() < SPARE_BUFFERS
        {
            spare.push(std::mem::take(&mut self.bytes));
        }
    }
}

impl XlsxBlock {
    /// The 1-based row of the last cell before this block (0 for the first): for progress.
    pub(crate) fn row_before(&self) -> u64 {
        self.start.previous.map_or(0, |p| u64::from(p.0) + 1)
    }

    /// The block's rows in order and, when calamine would have stopped inside the block, its
    /// fatal error (after those rows). Pure.
    pub(crate) fn parse(&self) -> (Vec<RawRow>, Option<ReadError>) {
        let parts = &*self.parts;
        let mut grouper =
            RowGrouper::new(&parts.file, &parts.sheet, parts.max_field_bytes, self.start.previous);
        let mut rows = Vec::new();
        let mut cells = CellParser::new(&self.bytes, self.start, parts);
        loop {
            match cells.next_cell() {
                Ok(Some((row, col, value))) => {
                    // A cell whose start tag ends after the cut is the next block's first.
                    let past_cut = self.cut.is_some_and(|cut| cells.cell_at > cut);
                    match grouper.cell(row, col, value) {
                        Ok(Some(row)) => {
                            rows.push(row);
                            if past_cut {
                                // The next block's first cell read: this block's last row stands.
                                return (rows, None);
                            }
                        }
                        // The scan cut only where the next cell starts a new row.
                        Ok(None) if past_cut => return (rows, Some(grouper.stopped())),
                        Ok(None) => {}
                        Err((row, kind)) => return (rows, Some(grouper.fatal(row, kind))),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let kind = ReadErrorKind::Workbook(calamine::Error::Xlsx(e));
                    return (rows, Some(grouper.fatal(None, kind)));
                }
            }
        }
        rows.extend(grouper.finish());
        (rows, None)
    }
}

/// calamine's `XlsxCellReader::next_cell` over one block.
struct CellParser<'a> {
    xml: quick_xml::Reader<&'a [u8]>,
    parts: &'a SheetParts,
    row_index: u32,
    col_index: u32,
    /// Where the last cell's start tag ended.
    cell_at: usize,
    buf: Vec<u8>,
    cell_buf: Vec<u8>,
    value_buf: Vec<u8>,
    text_buf: Vec<u8>,
}

impl<'a> CellParser<'a> {
    fn new(bytes: &'a [u8], start: BlockStart, parts: &'a SheetParts) -> Self {
        CellParser {
            xml: xml_reader(bytes),
            parts,
            row_index: start.row_index,
            col_index: 0,
            cell_at: 0,
            buf: Vec::with_capacity(1024),
            cell_buf: Vec::with_capacity(1024),
            value_buf: Vec::with_capacity(1024),
            text_buf: Vec::with_capacity(1024),
        }
    }

    /// The next cell: 0-based row and column, and its value. `None` at the end of the block.
    #[allow(clippy::type_complexity)]
    fn next_cell(&mut self) -> Result<Option<(u32, u32, Cell)>, XlsxError> {
        loop {
            self.buf.clear();
            match self.xml.read_event_into(&mut self.buf) {
                Ok(Event::Start(row)) if row.local_name().as_ref() == "row" => {
                    if let Some(r) = raw_attr(&row, "r")? {
                        self.row_index = get_row(r)?;
                    }
                }
                Ok(Event::End(row)) if row.local_name().as_ref() == "row" => {
                    self.row_index = self.row_index.saturating_add(1);
                    self.col_index = 0;
                }
                Ok(Event::Start(c)) if c.local_name().as_ref() == "c" => {
                    self.cell_at =
                        usize::try_from(self.xml.buffer_position()).unwrap_or(usize::MAX);
                    let [pos_attr, style_attr, type_attr] = get_attrs(&c, ["r", "s", "t"])?;
                    let pos = match pos_attr {
                        Some(range) => {
                            let (row, col) = get_row_column(range)?;
                            self.col_index = col;
                            (row, col)
                        }
                        None => (self.row_index, self.col_index),
                    };
                    let mut value = Cell::Empty;
                    loop {
                        self.cell_buf.clear();
                        match self.xml.read_event_into(&mut self.cell_buf) {
                            Ok(Event::Start(e)) => {
                                value = read_value(
                                    self.parts,
                                    &mut self.xml,
                                    &e,
                                    style_attr,
                                    type_attr,
                                    &mut self.value_buf,
                                    &mut self.text_buf,
                                )?;
                            }
                            Ok(Event::End(e)) if e.local_name().as_ref() == "c" => break,
                            Ok(Event::Eof) => return Err(XlsxError::XmlEof("c")),
                            Err(e) => return Err(XlsxError::Xml(e)),
                            _ => {}
                        }
                    }
                    self.col_index = self.col_index.saturating_add(1);
                    return Ok(Some((pos.0, pos.1, value)));
                }
                Ok(Event::End(e)) if e.local_name().as_ref() == "sheetData" => return Ok(None),
                // The end of the block; the last block ends where `</sheetData>` starts.
                Ok(Event::Eof) => return Ok(None),
                Err(e) => return Err(XlsxError::Xml(e)),
                _ => {}
            }
        }
    }
}

/// calamine's `read_value`: the value of one child of a `<c>` (`<v>`, `<is>` or `<f>`).
fn read_value<R: io::BufRead>(
    parts: &SheetParts,
    xml: &mut quick_xml::Reader<R>,
    e: &BytesStart<'_>,
    style_attr: Option<&str>,
    type_attr: Option<&str>,
    buf: &mut Vec<u8>,
    text_buf: &mut Vec<u8>,
) -> Result<Cell, XlsxError> {
    Ok(match e.local_name().as_ref() {
        "is" => read_string(xml, e.name(), buf, text_buf)?.map_or(Cell::Empty, Cell::Text),
        // The value of an inline string is in `<is>`; a `<v>` beside it is ignored.
        "v" if matches!(type_attr, Some("inlineStr") | Some("is")) => {
            buf.clear();
            xml.read_to_end_into(e.name(), buf)?;
            Cell::Empty
        }
        "v" => match type_attr {
            // Plain ASCII types: calamine reads the raw text, without entities or EOL changes.
            Some("n") | Some("s") | Some("b") | Some("e") | None => {
                buf.clear();
                let value = match xml.read_event_into(buf)? {
                    Event::Text(t) => read_v(parts, t.as_ref(), style_attr, type_attr)?,
                    Event::End(end) if end.name() == e.name() => return Ok(Cell::Empty),
                    Event::Eof => return Err(XlsxError::XmlEof("v")),
                    _ => Cell::Empty,
                };
                buf.clear();
                xml.read_to_end_into(e.name(), buf)?;
                value
            }
            _ => {
                let mut value = String::new();
                loop {
                    buf.clear();
                    match xml.read_event_into(buf)? {
                        Event::Text(t) => value.push_str(&t.xml10_content()),
                        Event::GeneralRef(r) => unescape_entity(&r, &mut value)?,
                        Event::End(end) if end.name() == e.name() => break,
                        Event::Eof => return Err(XlsxError::XmlEof("v")),
                        _ => {}
                    }
                }
                read_v(parts, &value, style_attr, type_attr)?
            }
        },
        "f" => {
            buf.clear();
            xml.read_to_end_into(e.name(), buf)?;
            Cell::Empty
        }
        _ => return Err(XlsxError::UnexpectedNode("v, f, or is")),
    })
}

/// calamine's `read_v`: a `<v>` text by the cell's type and style.
fn read_v(
    parts: &SheetParts,
    v: &str,
    style_attr: Option<&str>,
    type_attr: Option<&str>,
) -> Result<Cell, XlsxError> {
    let format = match style_attr {
        Some(style) => parts.formats.get(parse_index(style).unwrap_or(0)).copied(),
        None => Some(CellFormat::Other),
    };
    match type_attr {
        Some("s") => {
            if v.is_empty() {
                return Ok(Cell::Empty);
            }
            let index = parse_index(v).unwrap_or(0);
            parts
                .strings
                .get(index)
                .map(|s| Cell::Text(s.clone()))
                .ok_or(XlsxError::Unexpected("Cell string index not found in shared strings table"))
        }
        Some("b") => read_bool(v),
        Some("d") => Ok(Cell::IsoDate(v.to_owned())),
        Some("e") => Ok(Cell::Error(v.parse::<CellErrorType>()?.to_string())),
        Some("str") => Ok(Cell::Text(unescape_xml(v))),
        Some("n") | None => {
            if v.is_empty() {
                return Ok(Cell::Empty);
            }
            match v.parse::<f64>() {
                Ok(n) => Ok(number_cell(n, format, parts.is_1904)),
                // No explicit type: text that is not a number stays text.
                Err(_) if type_attr.is_none() => Ok(Cell::Text(v.to_owned())),
                Err(e) => Err(XlsxError::ParseFloat(e)),
            }
        }
        Some(t) => Err(XlsxError::CellTAttribute(t.to_owned())),
    }
}

/// calamine's `format_excel_f64_ref`, then our `cell_from_ref`.
fn number_cell(n: f64, format: Option<CellFormat>, is_1904: bool) -> Cell {
    let kind = match format {
        Some(CellFormat::DateTime) => ExcelDateTimeType::DateTime,
        Some(CellFormat::TimeDelta) => ExcelDateTimeType::TimeDelta,
        Some(CellFormat::Other) | None => return Cell::Number(n),
    };
    date_cell(&ExcelDateTime::new(n, kind, is_1904))
}

/// calamine's `read_bool`: `0`/`1`/`false`/`true` (any case), trimmed; empty is empty.
fn read_bool(v: &str) -> Result<Cell, XlsxError> {
    let value = v.trim();
    if value.is_empty() {
        Ok(Cell::Empty)
    } else if value == "0" || value.eq_ignore_ascii_case("false") {
        Ok(Cell::Bool(false))
    } else if value == "1" || value.eq_ignore_ascii_case("true") {
        Ok(Cell::Bool(true))
    } else {
        Err(XlsxError::Unrecognized { typ: "boolean cell value", val: v.to_owned() })
    }
}

/// calamine's `read_string_with_bufs`: a shared string `<si>` or an inline `<is>`, up to the
/// end tag named `closing`; rich-text runs concatenated, phonetic runs (`<rPh>`) skipped.
fn read_string<R: io::BufRead>(
    xml: &mut quick_xml::Reader<R>,
    closing: QName<'_>,
    xml_buf: &mut Vec<u8>,
    text_buf: &mut Vec<u8>,
) -> Result<Option<String>, XlsxError> {
    let mut rich: Option<String> = None;
    let mut phonetic = false;
    loop {
        xml_buf.clear();
        match xml.read_event_into(xml_buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "r" && rich.is_none() => {
                rich = Some(String::new());
            }
            Ok(Event::Start(e)) if e.local_name().as_ref() == "rPh" => phonetic = true,
            Ok(Event::End(e)) if e.name() == closing => {
                // An empty element, without `<t>`, is an empty string.
                return Ok(Some(rich.unwrap_or_default()));
            }
            Ok(Event::End(e)) if e.local_name().as_ref() == "rPh" => phonetic = false,
            Ok(Event::Start(e)) if e.local_name().as_ref() == "t" && !phonetic => {
                let preserve = matches!(raw_attr(&e, "xml:space")?, Some(v) if v == "preserve");
                text_buf.clear();
                let mut value = String::new();
                loop {
                    match xml.read_event_into(text_buf)? {
                        Event::Text(t) => value.push_str(&t.xml10_content()),
                        Event::CData(t) => value.push_str(&t.xml10_content()),
                        Event::GeneralRef(r) => unescape_entity(&r, &mut value)?,
                        Event::End(end) if end.name() == e.name() => break,
                        Event::Eof => return Err(XlsxError::XmlEof("t")),
                        _ => {}
                    }
                }
                let value = if preserve {
                    unescape_xml(&value)
                } else {
                    // ASCII whitespace only: NBSP and U+3000 stay.
                    unescape_xml(value.trim_matches([' ', '\t', '\r', '\n']))
                };
                match &mut rich {
                    Some(s) => s.push_str(&value),
                    None => rich = Some(value),
                }
            }
            Ok(Event::Eof) => return Err(XlsxError::XmlEof("")),
            Err(e) => return Err(XlsxError::Xml(e)),
            _ => {}
        }
    }
}

/// calamine's `unescape_entity_to_buffer`: a predefined entity or a character reference.
fn unescape_entity(entity: &BytesRef<'_>, out: &mut String) -> Result<(), quick_xml::Error> {
    let decoded: &str = entity.as_ref();
    if let Some(text) = resolve_xml_entity(decoded) {
        out.push_str(text);
        return Ok(());
    }
    if let Some(c) = entity.resolve_char_ref()? {
        out.push(c);
        return Ok(());
    }
    Err(quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
        0..0,
        format!("&{decoded};"),
    )))
}

/// calamine's `unescape_xml`: Excel's `_xHHHH_` escapes of UTF-16 code units (a surrogate pair
/// as two escapes; a lone surrogate becomes U+FFFD).
fn unescape_xml(original: &str) -> String {
    let bytes = original.as_bytes();
    let mut out = String::with_capacity(original.len());
    let mut copied = 0;
    let mut index = 0;
    while let Some(offset) = original.get(index..).and_then(|rest| rest.find('_')) {
        let at = index + offset;
        let Some(unit) = xml_escape(bytes, at) else {
            index = at + 1;
            continue;
        };
        out.push_str(original.get(copied..at).unwrap_or_default());
        let mut next = at + 7;
        let c = match unit {
            0xD800..=0xDBFF => match xml_escape(bytes, next) {
                Some(low @ 0xDC00..=0xDFFF) => {
                    next += 7;
                    let code =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
                _ => char::REPLACEMENT_CHARACTER,
            },
            0xDC00..=0xDFFF => char::REPLACEMENT_CHARACTER,
            _ => char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER),
        };
        out.push(c);
        copied = next;
        index = next;
    }
    out.push_str(original.get(copied..).unwrap_or_default());
    out
}

/// The UTF-16 unit of an `_xHHHH_` escape at `at`, if there is one.
fn xml_escape(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at.checked_add(7)?)?;
    let [b'_', b'x', hex @ .., b'_'] = escape else { return None };
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// `atoi_simd::parse::<usize, true, false>` as calamine calls it: ASCII digits only (any
/// number of leading zeros), no sign, within `usize`.
fn parse_index(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0usize, |n, b| n.checked_mul(10)?.checked_add(usize::from(b - b'0')))
}

/// calamine's `RawAttrIter`: the attributes of a start tag as `(key, raw value)`, or the
/// error quick-xml would give for a malformed one (positions within the attribute text).
fn raw_attrs(raw: &str) -> impl Iterator<Item = Result<(&str, &str), AttrError>> {
    let bytes = raw.as_bytes();
    let len = bytes.len();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
            pos += 1;
        }
        if pos >= len {
            return None;
        }
        let key_start = pos;
        while bytes.get(pos).is_some_and(|&b| b != b'=') {
            pos += 1;
        }
        if pos >= len {
            pos = len;
            return Some(Err(AttrError::ExpectedEq(key_start)));
        }
        let key = raw.get(key_start..pos).unwrap_or_default().trim_ascii_end();
        pos += 1;
        while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
            pos += 1;
        }
        let quote = match bytes.get(pos) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                let at = pos;
                pos = len;
                return Some(Err(AttrError::UnquotedValue(at)));
            }
        };
        pos += 1;
        let value_start = pos;
        while bytes.get(pos).is_some_and(|&b| b != quote) {
            pos += 1;
        }
        let value = raw.get(value_start..pos).unwrap_or_default();
        if pos < len {
            pos += 1;
        }
        Some(Ok((key, value)))
    })
}

/// calamine's `raw_attr`: the first attribute named `name`, stopping at a malformed one.
fn raw_attr<'e>(e: &'e BytesStart<'_>, name: &str) -> Result<Option<&'e str>, AttrError> {
    for item in raw_attrs(e.attributes_raw()) {
        let (key, value) = item?;
        if key == name {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// calamine's `get_attrs!`: the named attributes in one pass, the last of a repeated one
/// winning, stopping as soon as as many matches as names have been seen.
fn get_attrs<'e, const N: usize>(
    e: &'e BytesStart<'_>,
    names: [&str; N],
) -> Result<[Option<&'e str>; N], AttrError> {
    let mut found = [None; N];
    let mut matches = 0;
    for item in raw_attrs(e.attributes_raw()) {
        let (key, value) = item?;
        if let Some(i) = names.iter().position(|n| *n == key)
            && let Some(slot) = found.get_mut(i)
        {
            *slot = Some(value);
            matches += 1;
        }
        if matches == N {
            break;
        }
    }
    Ok(found)
}

/// calamine's `get_row_and_optional_column`: letters then digits, 1-based to 0-based.
fn row_and_column(range: &str) -> Result<(u32, Option<u32>), XlsxError> {
    let mut bytes = range.bytes().peekable();
    let mut col: u32 = 0;
    let mut row: u32 = 0;
    while let Some(&b) = bytes.peek() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' => {
                let letter = u32::from(b.to_ascii_uppercase() - b'A') + 1;
                col = col.wrapping_mul(26).wrapping_add(letter);
                bytes.next();
            }
            b'0'..=b'9' => break,
            other => return Err(XlsxError::Alphanumeric(other)),
        }
    }
    for b in bytes {
        match b {
            b'0'..=b'9' => row = row.wrapping_mul(10).wrapping_add(u32::from(b - b'0')),
            other => return Err(XlsxError::Alphanumeric(other)),
        }
    }
    let row = row.checked_sub(1).ok_or(XlsxError::RangeWithoutRowComponent)?;
    Ok((row, col.checked_sub(1)))
}

fn get_row_column(range: &str) -> Result<(u32, u32), XlsxError> {
    let (row, col) = row_and_column(range)?;
    Ok((row, col.ok_or(XlsxError::RangeWithoutColumnComponent)?))
}

fn get_row(range: &str) -> Result<u32, XlsxError> {
    row_and_column(range).map(|(row, _)| row)
}

/// calamine's `formats::detect_custom_number_format`.
fn detect_custom_number_format(format: &str) -> CellFormat {
    let mut escaped = false;
    let mut is_quote = false;
    let mut brackets = 0u8;
    let mut prev = ' ';
    let mut hms = false;
    let mut ap = false;
    for s in format.chars() {
        match (s, escaped, is_quote, ap, brackets) {
            (_, true, ..) => escaped = false,
            ('_' | '\\' | '*', ..) => escaped = true,
            ('"', _, true, _, _) => is_quote = false,
            (_, _, true, _, _) => (),
            ('"', _, _, _, _) => is_quote = true,
            (';', ..) => return CellFormat::Other,
            ('[', ..) => brackets = brackets.wrapping_add(1),
            (']', .., 1) if hms => return CellFormat::TimeDelta,
            (']', ..) => brackets = brackets.saturating_sub(1),
            ('a' | 'A', _, _, false, 0) => ap = true,
            ('p' | 'm' | '/' | 'P' | 'M', _, _, true, 0) => return CellFormat::DateTime,
            ('d' | 'm' | 'h' | 'y' | 's' | 'D' | 'M' | 'H' | 'Y' | 'S', _, _, false, 0) => {
                return CellFormat::DateTime;
            }
            _ => {
                if hms && s.eq_ignore_ascii_case(&prev) {
                    // Still the same [h], [m] or [s] run.
                } else {
                    hms = prev == '[' && matches!(s, 'm' | 'h' | 's' | 'M' | 'H' | 'S');
                }
            }
        }
        prev = s;
    }
    CellFormat::Other
}

/// calamine's `formats::builtin_format_by_id` (ECMA-376 Part 1 §18.8.30; ids 27–36 and 50–58
/// are the East Asian date formats).
fn builtin_format_by_id(id: &str) -> CellFormat {
    match id {
        "14" | "15" | "16" | "17" | "18" | "19" | "20" | "21" | "22" | "45" | "47" => {
            CellFormat::DateTime
        }
        "27" | "28" | "29" | "30" | "31" | "32" | "33" | "34" | "35" | "36" | "50" | "51"
        | "52" | "53" | "54" | "55" | "56" | "57" | "58" => CellFormat::DateTime,
        "46" => CellFormat::TimeDelta,
        _ => CellFormat::Other,
    }
}

/// The archive's entries by lower-cased name with `\` read as `/`, as calamine finds parts.
struct Parts<R> {
    zip: zip::ZipArchive<R>,
    names: HashMap<String, String>,
}

impl<R: Read + Seek> Parts<R> {
    fn new(zip: zip::ZipArchive<R>) -> Option<Self> {
        let mut names = HashMap::new();
        for name in zip.file_names().flatten() {
            names.insert(name.replace('\\', "/").to_ascii_lowercase(), name.into_owned());
        }
        Some(Parts { zip, names })
    }

    /// calamine's `cached_zip_path`: the entry's real name.
    fn entry_name(&self, path: &str) -> String {
        self.names.get(&path.to_ascii_lowercase()).cloned().unwrap_or_else(|| path.to_owned())
    }

    /// The part at `path` read whole (these are the small parts: relationships, workbook,
    /// styles, shared strings), bounded by the archive check's declared sizes. `Ok(None)` when
    /// there is no such part.
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, ()> {
        let name = self.entry_name(path);
        let mut entry = match self.zip.by_name(&name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(_) => return Err(()),
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(drop)?;
        Ok(Some(bytes))
    }
}

/// Where the workbook part is and which worksheet entry holds `sheet`, found as calamine
/// finds them (`_rels/.rels` → workbook → its relationships → `<sheet name r:id>`).
fn locate<R: Read + Seek>(parts: &mut Parts<R>, sheet: &str) -> Option<(String, String)> {
    let rels = parts.read("_rels/.rels").ok()??;
    let mut xml = xml_reader(rels.as_slice());
    let mut buf = Vec::new();
    let mut target = None;
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) if e.local_name().as_ref() == "Relationship" => {
                let [typ, t] = get_attrs(&e, ["Type", "Target"]).ok()?;
                if typ.is_some_and(|t| t.ends_with("/relationships/officeDocument"))
                    && let Some(t) = t
                {
                    target = Some(decode_attr(t)?);
                }
            }
            Event::End(e) if e.local_name().as_ref() == "Relationships" => break,
            Event::Eof => return None,
            _ => {}
        }
    }
    let target = target?;
    let (dir, name) = match target.rfind('/') {
        Some(i) => target.split_at(i + 1),
        None => ("", target.as_str()),
    };
    let xl_path = dir.strip_prefix('/').unwrap_or(dir).to_owned();
    let workbook_name = if name.is_empty() { "workbook.xml" } else { name };

    let rels = parts.read(&format!("{xl_path}_rels/{workbook_name}.rels")).ok()??;
    let mut relationships: HashMap<String, String> = HashMap::new();
    let mut xml = xml_reader(rels.as_slice());
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) if e.local_name().as_ref() == "Relationship" => {
                let [id, target] = get_attrs(&e, ["Id", "Target"]).ok()?;
                if let Some(id) = id {
                    relationships.insert(id.to_owned(), target.unwrap_or_default().to_owned());
                }
            }
            Event::End(e) if e.local_name().as_ref() == "Relationships" => break,
            Event::Eof => return None,
            _ => {}
        }
    }

    let workbook = parts.read(&format!("{xl_path}{workbook_name}")).ok()??;
    let mut xml = xml_reader(workbook.as_slice());
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) if e.local_name().as_ref() == "sheet" => {
                let mut name = String::new();
                let mut rel_id = "";
                for attr in raw_attrs(e.attributes_raw()) {
                    let (key, value) = attr.ok()?;
                    if key == "name" {
                        name = decode_attr(value)?;
                    } else if key == "id"
                        || key.strip_suffix("id").is_some_and(|p| p.ends_with(':'))
                    {
                        rel_id = value;
                    }
                }
                if name == sheet {
                    let target = relationships.get(rel_id)?;
                    let path = match target.strip_prefix('/') {
                        Some(absolute) => absolute.to_owned(),
                        None => format!("{xl_path}{target}"),
                    };
                    return Some((xl_path, path));
                }
            }
            Event::End(e) if e.local_name().as_ref() == "workbook" => return None,
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// calamine's `decode_attr`: an attribute value with its entities resolved.
fn decode_attr(value: &str) -> Option<String> {
    quick_xml::escape::unescape(value).ok().map(|v| v.into_owned())
}

/// Reads events until one that `found` accepts; `None` at an XML error or the end of the part
/// first (where calamine's reading fails too).
fn read_until<R: io::BufRead>(
    xml: &mut quick_xml::Reader<R>,
    buf: &mut Vec<u8>,
    found: impl Fn(&Event<'_>) -> bool,
) -> Option<()> {
    loop {
        buf.clear();
        match xml.read_event_into(buf).ok()? {
            Event::Eof => return None,
            e if found(&e) => return Some(()),
            _ => {}
        }
    }
}

/// calamine's `read_shared_strings`: the table, or `None` when it cannot be read as calamine
/// read it.
fn shared_strings<R: Read + Seek>(parts: &mut Parts<R>, xl_path: &str) -> Option<Vec<String>> {
    let Some(bytes) = parts.read(&format!("{xl_path}sharedStrings.xml")).ok()? else {
        return Some(Vec::new());
    };
    let mut xml = xml_reader(bytes.as_slice());
    let mut buf = Vec::new();
    let mut strings = Vec::new();
    read_until(
        &mut xml,
        &mut buf,
        |e| matches!(e, Event::Start(e) if e.local_name().as_ref() == "sst"),
    )?;
    let (mut string_buf, mut text_buf) = (Vec::new(), Vec::new());
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) if e.local_name().as_ref() == "si" => {
                let name = e.name().as_ref().to_owned();
                if let Some(s) =
                    read_string(&mut xml, QName(&name), &mut string_buf, &mut text_buf).ok()?
                {
                    strings.push(s);
                }
            }
            Event::End(e) if e.local_name().as_ref() == "sst" => return Some(strings),
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The number format kind of each cell style, as calamine's `read_styles` computes it
/// (`cellXfs/xf@numFmtId`: a custom `numFmts` entry by the same id string is checked with
/// `detect_custom_number_format`, else the built-in id). The fonts, fills and borders calamine
/// also parses are skipped: calamine has already parsed them without error.
fn cell_formats<R: Read + Seek>(parts: &mut Parts<R>, xl_path: &str) -> Option<Vec<CellFormat>> {
    let Some(bytes) = parts.read(&format!("{xl_path}styles.xml")).ok()? else {
        return Some(Vec::new());
    };
    let mut xml = xml_reader(bytes.as_slice());
    let mut number_formats: HashMap<String, String> = HashMap::new();
    let mut formats = Vec::new();
    let (mut buf, mut inner) = (Vec::new(), Vec::new());
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) if e.local_name().as_ref() == "numFmts" => loop {
                inner.clear();
                match xml.read_event_into(&mut inner).ok()? {
                    Event::Start(e) if e.local_name().as_ref() == "numFmt" => {
                        let [id, code] = get_attrs(&e, ["numFmtId", "formatCode"]).ok()?;
                        if let (Some(id), Some(code)) = (id, code) {
                            number_formats.insert(id.to_owned(), decode_attr(code)?);
                        }
                    }
                    Event::End(e) if e.local_name().as_ref() == "numFmts" => break,
                    Event::Eof => return None,
                    _ => {}
                }
            },
            Event::Start(e) if e.local_name().as_ref() == "cellXfs" => loop {
                inner.clear();
                match xml.read_event_into(&mut inner).ok()? {
                    Event::Start(e) if e.local_name().as_ref() == "xf" => {
                        let format = match raw_attr(&e, "numFmtId").ok()? {
                            None => CellFormat::Other,
                            Some(id) => match number_formats.get(id) {
                                Some(code) => detect_custom_number_format(code),
                                None => builtin_format_by_id(id),
                            },
                        };
                        formats.push(format);
                        // The xf's body (alignment, protection), up to its end tag.
                        let mut skip = Vec::new();
                        read_until(
                            &mut xml,
                            &mut skip,
                            |e| matches!(e, Event::End(end) if end.local_name().as_ref() == "xf"),
                        )?;
                    }
                    Event::End(e) if e.local_name().as_ref() == "cellXfs" => break,
                    Event::Eof => return None,
                    _ => {}
                }
            },
            Event::Start(e) if matches!(e.local_name().as_ref(), "fonts" | "fills" | "borders") => {
                let name = e.name().as_ref().to_owned();
                inner.clear();
                xml.read_to_end_into(QName(&name), &mut inner).ok()?;
            }
            Event::End(e) if e.local_name().as_ref() == "styleSheet" => return Some(formats),
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// What the block reader needs before the first block: the entry and its index, the parts.
pub(crate) struct Plan {
    entry: String,
    index: SheetIndex,
    parts: Arc<SheetParts>,
}

/// Decides whether the sheet can be read in blocks, and prepares them. `None`: read it with
/// calamine (the sheet's entry was not indexed or must not be cut, or a part could not be
/// read as calamine read it).
pub(crate) fn plan(
    path: &Path,
    workbook: &mut Xlsx<BufReader<File>>,
    indexes: &SheetIndexes,
    sender: &RowSender,
) -> Option<Plan> {
    let handle = File::open(path).ok()?;
    let mut parts = Parts::new(zip::ZipArchive::new(BufReader::new(handle)).ok()?)?;
    let (xl_path, sheet_path) = locate(&mut parts, &sender.sheet)?;
    let entry = parts.entry_name(&sheet_path);
    let index = indexes.get(&entry)?;
    if index.uncuttable.is_some() || index.data_start.is_none() || index.data_end.is_none() {
        return None;
    }
    let strings = shared_strings(&mut parts, &xl_path)?;
    let formats = cell_formats(&mut parts, &xl_path)?;
    // calamine's styles are parallel to its formats: the same count says both walks agreed.
    let styles = workbook.worksheet_cells_reader(&sender.sheet).ok()?.styles().len();
    if styles != formats.len() {
        return None;
    }
    let parts = SheetParts {
        file: Arc::clone(&sender.file),
        sheet: Arc::clone(&sender.sheet),
        max_field_bytes: sender.max_field_bytes,
        strings,
        formats,
        is_1904: workbook.has_1904_epoch(),
        spare: Mutex::new(Vec::new()),
    };
    Some(Plan { entry, index: index.clone(), parts: Arc::new(parts) })
}

/// Streams the sheet in blocks, after checking the first block against calamine; falls back
/// to calamine's reader when they differ.
pub(crate) fn stream(
    path: &Path,
    plan: Plan,
    mut workbook: Xlsx<BufReader<File>>,
    sender: RowSender,
) {
    let opened = File::open(path).map_err(ReadErrorKind::Io).and_then(|handle| {
        zip::ZipArchive::new(BufReader::new(handle))
            .map_err(|e| ReadErrorKind::Workbook(calamine::Error::Xlsx(XlsxError::Zip(e))))
    });
    let mut zip = match opened {
        Ok(zip) => zip,
        Err(kind) => return sender.fatal(None, kind),
    };
    let entry = match zip.by_name(&plan.entry) {
        Ok(entry) => entry,
        Err(e) => {
            let kind = ReadErrorKind::Workbook(calamine::Error::Xlsx(XlsxError::Zip(e)));
            return sender.fatal(None, kind);
        }
    };
    let mut cutter = Cutter::new(entry, plan.index, plan.parts);
    let first = match cutter.next_block() {
        Ok(Some(block)) => block,
        Ok(None) | Err(_) => return stream_xlsx(workbook, sender),
    };
    if !agrees_with_calamine(&first, &mut workbook, &sender) {
        return stream_xlsx(workbook, sender);
    }
    let declared = workbook.worksheet_cells_reader(&sender.sheet).map(|r| r.dimensions().end.0);
    let Ok(declared) = declared else { return stream_xlsx(workbook, sender) };
    drop(workbook);
    if declared > 0 && !sender.extent(u64::from(declared) + 1) {
        return;
    }
    let (tx, rx) = sync_channel(BLOCKS_IN_FLIGHT);
    if !sender.blocks(rx) || tx.send(BlockMsg::Block(first)).is_err() {
        return;
    }
    loop {
        let msg = match cutter.next_block() {
            Ok(Some(block)) => BlockMsg::Block(block),
            Ok(None) => {
                let _ = tx.send(BlockMsg::End);
                return;
            }
            Err(e) => {
                let _ = tx.send(BlockMsg::Fatal(sender.error(None, ReadErrorKind::Io(e))));
                return;
            }
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// True when calamine reads the first block's rows (and error) exactly as the block parser.
fn agrees_with_calamine(
    block: &XlsxBlock,
    workbook: &mut Xlsx<BufReader<File>>,
    sender: &RowSender,
) -> bool {
    let (rows, fatal) = block.parse();
    let ours = comparable(rows.into_iter().map(Ok).chain(fatal.map(Err)));
    let mut theirs = Vec::new();
    let wanted = ours.len();
    super::calamine_rows(workbook, sender, |item| {
        theirs.push(item);
        theirs.len() < wanted
    });
    ours == comparable(theirs)
}

/// Rows and errors in a form that compares: (row, blank rows before, cells or the error shown).
pub(crate) type Comparable = Vec<Result<(u64, u64, Result<Vec<Cell>, String>), String>>;

pub(crate) fn comparable(rows: impl IntoIterator<Item = Result<RawRow, ReadError>>) -> Comparable {
    rows.into_iter()
        .map(|item| {
            item.map(|raw| (raw.row, raw.blank_before, raw.cells.map_err(|e| e.to_string())))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Reads the worksheet entry sequentially and cuts it at the indexed points. Each block
/// starts where the one before was cut and runs on through the next row's first cell.
struct Cutter<R> {
    input: R,
    index: SheetIndex,
    parts: Arc<SheetParts>,
    /// Entry bytes consumed so far.
    read: u64,
    /// Bytes already read that the next block starts with (the lookahead of the last block).
    carry: Vec<u8>,
    /// The next block: its number (0-based) and its start.
    next: usize,
    started: bool,
    done: bool,
}

impl<R: Read> Cutter<R> {
    fn new(input: R, index: SheetIndex, parts: Arc<SheetParts>) -> Self {
        Cutter {
            input,
            index,
            parts,
            read: 0,
            carry: Vec::new(),
            next: 0,
            started: false,
            done: false,
        }
    }

    /// The next block, or `None` after the last.
    fn next_block(&mut self) -> io::Result<Option<XlsxBlock>> {
        if self.done {
            return Ok(None);
        }
        let data_start = self.index.data_start.unwrap_or(0);
        if !self.started {
            self.started = true;
            let skipped = io::copy(&mut (&mut self.input).take(data_start), &mut io::sink())?;
            if skipped != data_start {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.read = data_start;
        }
        let before = self.next.checked_sub(1).and_then(|i| self.index.cuts.get(i)).copied();
        let block_start = before.map_or(data_start, |c| c.offset);
        // Positions inside the grid (the scan checked them) fit in calamine's u32.
        let narrow = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let start = BlockStart {
            row_index: before.map_or(0, |c| narrow(c.row_index)),
            previous: before.and_then(|c| c.previous).map(|(r, c)| (narrow(r), narrow(c))),
        };
        let this = self.index.cuts.get(self.next).copied();
        let end = match this {
            Some(cut) => cut.lookahead_end,
            None => {
                self.done = true;
                self.index.data_end.unwrap_or(0)
            }
        };
        self.next += 1;
        let mut bytes = self.parts.spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
        bytes.clear();
        bytes.append(&mut self.carry);
        let more = end.saturating_sub(self.read);
        let got = (&mut self.input).take(more).read_to_end(&mut bytes)? as u64;
        if got != more {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.read = end;
        let cut = this.map(|cut| {
            let at = usize::try_from(cut.offset.saturating_sub(block_start)).unwrap_or(usize::MAX);
            self.carry.extend_from_slice(bytes.get(at..).unwrap_or_default());
            at
        });
        Ok(Some(XlsxBlock { bytes, start, cut, parts: Arc::clone(&self.parts) }))
    }
}

/// The receiving end of the blocks, for `WorkbookRows`.
pub(crate) type BlockReceiver = Receiver<BlockMsg>;

// Inline rather than in a file of its own: the module-graph test strips `#[cfg(test)]` items,
// and these tests use `crate::gen` (above `read`) to make exports.
/// Differential tests: the block reader against calamine's cell reader (the reference), on
/// every bundled xlsx fixture, generated exports of every pipeline, and workbooks built here
/// for what those lack. Same rows, row numbers, blank-row gaps, cells and errors, read in line
/// and as units, at block sizes from one row a block up.
#[cfg(test)]
mod tests {

    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::comparable;
    use crate::read::workbook::{Kind, WorkbookRows, XlsxReader};
    use crate::read::{RowSource, SourceSpec, Unit};

    /// What a reader gave: the open error, or every row and the final error, and whether the
    /// block reader was used.
    #[derive(Debug, PartialEq)]
    struct Read {
        rows: Result<super::Comparable, String>,
        blocks: bool,
    }

    fn read(path: &Path, reader: XlsxReader, block_bytes: u64, units: bool) -> Read {
        let file: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let spec = SourceSpec::default();
        let opened = WorkbookRows::open_with(path, file, Kind::Xlsx, &spec, reader, block_bytes);
        let mut rows = match opened {
            Ok((rows, _)) => rows,
            Err(e) => return Read { rows: Err(e.to_string()), blocks: false },
        };
        let mut items = Vec::new();
        if units {
            while let Some(unit) = rows.next_unit() {
                match unit {
                    Ok(Unit::Rows(raw)) => items.extend(raw),
                    Ok(Unit::Xlsx(block)) => {
                        let (raw, fatal) = block.parse();
                        items.extend(raw.into_iter().map(Ok));
                        items.extend(fatal.map(Err));
                    }
                    Ok(Unit::Csv(_)) => panic!("a CSV unit from a workbook"),
                    Err(fatal) => items.push(Err(fatal)),
                }
            }
            // After a fatal error the consumer stops: what follows is not compared.
            if let Some(at) = items.iter().position(Result::is_err) {
                items.truncate(at + 1);
            }
        } else {
            while let Some(item) = rows.next_row() {
                items.push(item);
            }
        }
        Read { rows: Ok(comparable(items)), blocks: rows.blocks.is_some() }
    }

    /// Compares the block reader with calamine on `path`; returns whether blocks were used.
    fn assert_same(path: &Path) -> bool {
        let reference = read(path, XlsxReader::Calamine, super::BLOCK_BYTES, false);
        assert!(!reference.blocks);
        let mut used = false;
        for block_bytes in [1, 200, 4096, super::BLOCK_BYTES] {
            for units in [false, true] {
                let ours = read(path, XlsxReader::Blocks, block_bytes, units);
                if let (Ok(a), Ok(b)) = (&ours.rows, &reference.rows)
                    && let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))
                {
                    panic!(
                        "{}: block reader ({block_bytes} bytes, units {units}) differs at item {i}:\n ours {:?}\n calamine {:?}",
                        path.display(),
                        a.get(i),
                        b.get(i)
                    );
                }
                assert_eq!(
                    ours.rows,
                    reference.rows,
                    "{}: block reader ({block_bytes} bytes, units {units}) differs",
                    path.display()
                );
                used |= ours.blocks;
            }
        }
        used
    }

    fn xlsx_files(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                xlsx_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "xlsx") {
                found.push(path);
            }
        }
    }

    #[test]
    fn every_xlsx_fixture_reads_as_calamine_reads_it() {
        let mut files = Vec::new();
        xlsx_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"), &mut files);
        files.sort();
        assert!(files.len() >= 8, "{files:?}");
        let mut blocked = Vec::new();
        for path in &files {
            if assert_same(path) {
                blocked.push(path.file_name());
            }
        }
        // The readable fixtures go through blocks (the hostile ones are refused before either).
        assert!(blocked.len() >= 2, "{blocked:?}");
    }

    #[test]
    fn generated_exports_of_every_pipeline_read_as_calamine_reads_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut pipelines: Vec<PathBuf> = std::fs::read_dir(root.join("pipelines"))
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        pipelines.sort();
        assert!(!pipelines.is_empty());
        for (i, pipeline) in pipelines.iter().enumerate() {
            let plan = crate::pipeline::load(pipeline).unwrap_or_else(|e| panic!("{e}"));
            for (rows, seed) in [(7, 1), (300, 2), (1500, 3)] {
                let out = dir.path().join(format!("gen-{i}-{rows}.xlsx"));
                let opts = crate::r#gen::GenOptions {
                    rows,
                    format: crate::r#gen::OutputFormat::Xlsx,
                    defect_rate: 0.2,
                    seed,
                };
                crate::r#gen::generate(&plan, &opts, &out).unwrap_or_else(|e| panic!("{e}"));
                assert!(assert_same(&out), "{}: blocks not used", out.display());
            }
        }
    }

    /// A one-sheet workbook: `sheet_data` is the inside of `<sheetData>`; `shared` the `<si>`
    /// elements; `styles` the inside of `<styleSheet>`.
    fn workbook(
        dir: &Path,
        name: &str,
        date1904: bool,
        styles: &str,
        shared: &str,
        sheet_data: &str,
    ) -> PathBuf {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let ns = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#;
        let parts = [
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>"#.to_owned(),
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned(),
            ),
            (
                "xl/workbook.xml",
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><workbook {ns}><workbookPr date1904="{}"/><sheets><sheet name="表1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
                    u8::from(date1904)
                ),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#.to_owned(),
            ),
            ("xl/styles.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><styleSheet {ns}>{styles}</styleSheet>"#)),
            ("xl/sharedStrings.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><sst {ns}>{shared}</sst>"#)),
            (
                "xl/worksheets/sheet1.xml",
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet {ns}><dimension ref="A1:Z40"/><sheetData>{sheet_data}</sheetData></worksheet>"#
                ),
            ),
        ];
        for (name, body) in parts {
            zip.start_file(name, options).unwrap_or_else(|e| panic!("{e}"));
            zip.write_all(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
        zip.finish().unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// Styles: 0 General, 1 built-in date (14), 2 custom date, 3 custom duration `[h]:mm:ss`,
    /// 4 custom number with a quoted `d`, 5 built-in East Asian date (31), 6 custom id 14 that is
    /// not a date, 7 an xf without `numFmtId`.
    const STYLES: &str = r#"<numFmts count="4"><numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/><numFmt numFmtId="165" formatCode="[h]:mm:ss"/><numFmt numFmtId="166" formatCode="0.00&quot; d&quot;"/><numFmt numFmtId="14" formatCode="0.000"/></numFmts><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellXfs count="8"><xf numFmtId="0" fontId="0"/><xf numFmtId="14" fontId="0" applyNumberFormat="1"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="166"/><xf numFmtId="31"/><xf numFmtId="14"><alignment horizontal="left"/></xf><xf fontId="0"/></cellXfs>"#;

    const SHARED: &str = r#"<si><t>纯文本</t></si><si><r><rPr><b/></rPr><t>富</t></r><r><t xml:space="preserve"> 文本 </t></r><rPh sb="0" eb="1"><t>フ</t></rPh></si><si><t>  trimmed&amp;escaped_x000D_ </t></si><si/><si><t xml:space="preserve">  kept  </t></si>"#;

    /// Rows 1–12 with every kind of cell, gaps and sparse columns, then rows 20–39 alike.
    fn varied_rows() -> String {
        let mut xml = String::new();
        for base in [0u32, 19] {
            let r = |n: u32| base + n;
            xml += &format!(
                r#"<row r="{a}"><c r="A{a}" t="s"><v>0</v></c><c r="B{a}" t="s"><v>1</v></c><c r="C{a}" t="s"><v>2</v></c><c r="D{a}" t="s"><v>3</v></c><c r="E{a}" t="s"><v>4</v></c></row>"#,
                a = r(1)
            );
            xml += &format!(
                r#"<row r="{a}"><c r="A{a}" s="1"><v>42849</v></c><c r="B{a}" s="2"><v>42849.5</v></c><c r="C{a}" s="3"><v>1.25</v></c><c r="D{a}" s="4"><v>3</v></c><c r="E{a}" s="5"><v>40000</v></c><c r="F{a}" s="6"><v>40000</v></c><c r="G{a}" s="7"><v>7</v></c><c r="H{a}" s="99"><v>8</v></c><c r="I{a}" s="x"><v>9</v></c></row>"#,
                a = r(2)
            );
            xml += &format!(
                r#"<row r="{a}"><c r="A{a}" t="b"><v>1</v></c><c r="B{a}" t="b"><v>0</v></c><c r="C{a}" t="b"><v> TRUE </v></c><c r="D{a}" t="e"><v>#N/A</v></c><c r="E{a}" t="e"><v>#DIV/0!</v></c><c r="F{a}" t="d"><v>2017-04-24T00:00:00</v></c></row>"#,
                a = r(3)
            );
            // Row 4 is missing; row 5 is sparse, with empty and style-only cells.
            xml += &format!(
                r#"<row r="{a}"><c r="B{a}" s="1"/><c r="D{a}" t="inlineStr"><is><t>内联</t></is></c><c r="Z{a}" t="inlineStr"><is><r><t>a</t></r><r><t xml:space="preserve"> b </t></r></is></c></row>"#,
                a = r(5)
            );
            xml += &format!(
                r#"<row r="{a}"><c r="A{a}" t="str"><f>A1&amp;B1</f><v>x &lt; y_x000D__xD83D__xDCF7_</v></c><c r="B{a}" t="str"><v></v></c><c r="C{a}"><v>not a number</v></c><c r="D{a}"><v>-1.5E3</v></c><c r="E{a}" t="n"><v></v></c><c r="F{a}" t="inlineStr"><v>ignored</v><is><t><![CDATA[<cdata>]]></t></is></c></row>"#,
                a = r(6)
            );
            // A row of empty cells only (blank), a row element without cells, cells without `r`.
            xml += &format!(r#"<row r="{a}"><c r="A{a}"/><c r="C{a}" s="2"/></row>"#, a = r(7));
            xml += &format!(r#"<row r="{a}"/>"#, a = r(8));
            xml += &format!(
                r#"<row r="{a}"><c><v>1</v></c><c t="s"><v>0</v></c><!-- a comment </row> --><c r="E{a}"><v>5</v></c><c><v>6</v></c></row>"#,
                a = r(9)
            );
            xml += &format!(
                r#"<row r="{a}" spans="1:3"><c r="A{a}" t="s"><v>4</v></c><c r="C{a}"><v>3.0000000000000004</v></c></row>"#,
                a = r(12)
            );
        }
        xml
    }

    #[test]
    fn built_workbooks_read_as_calamine_reads_them() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        let rows = varied_rows();
        for (name, date1904) in [("varied.xlsx", false), ("varied-1904.xlsx", true)] {
            let path = workbook(d, name, date1904, STYLES, SHARED, &rows);
            assert!(assert_same(&path), "{name}: blocks not used");
        }
        // Values calamine refuses: the error and the rows before it are the same, wherever the
        // block boundaries fall (the row before a failing cell is never emitted).
        let bad_cells = [
            r#"<c r="B30" t="b"><v>maybe</v></c>"#,
            r#"<c r="A30" t="e"><v>#WHAT?</v></c>"#,
            r#"<c r="A30" t="s"><v>99</v></c>"#,
            r#"<c r="A30" t="n"><v>1,5</v></c>"#,
            r#"<c r="A30" t="zz"><v>1</v></c>"#,
            r#"<c r="A30"><x/></c>"#,
            r#"<c r="A30" t="str"><v>&bogus;</v></c>"#,
            r#"<c r="A30" s="1" t="s" bad><v>0</v></c>"#,
        ];
        for (i, bad) in bad_cells.iter().enumerate() {
            let data = format!(
                "{rows}<row r=\"30\">{bad}</row><row r=\"31\"><c r=\"A31\"><v>1</v></c></row>"
            );
            let path = workbook(d, &format!("bad-{i}.xlsx"), false, STYLES, SHARED, &data);
            assert_same(&path);
        }
        // A row attribute calamine cannot read, between two good rows.
        let data = format!("{rows}<row x r=\"30\"><c r=\"A30\"><v>1</v></c></row>");
        assert_same(&workbook(d, "bad-row-attribute.xlsx", false, STYLES, SHARED, &data));
        // Markup the block reader does not cut (tags that do not nest, a processing instruction):
        // calamine reads it, with the same result.
        for (i, odd) in [
            r#"<row r="30"><c r="A30"><v>1</c></v></row>"#,
            r#"<row r="30"><?pi x?><c r="A30"><v>1</v></c></row>"#,
            r#"<row r="30"><c r="A30"><is><row r="31"/></is></c></row>"#,
        ]
        .iter()
        .enumerate()
        {
            let data = format!("{rows}{odd}<row r=\"32\"><c r=\"A32\"><v>2</v></c></row>");
            let path = workbook(d, &format!("odd-{i}.xlsx"), false, STYLES, SHARED, &data);
            assert!(!assert_same(&path), "odd-{i}: cut although it must not be");
        }
        // Cells after `</row>` outside any row, in the row before (they continue it).
        let data = r#"<row r="1"><c r="A1"><v>1</v></c></row><c r="B1"><v>2</v></c><row r="2"><c r="A2"><v>3</v></c></row><c><v>4</v></c><row r="3"><c r="A3"><v>5</v></c></row>"#;
        assert_same(&workbook(d, "outside-rows.xlsx", false, STYLES, SHARED, data));
        // No styles part, no shared strings entries.
        let data = r#"<row r="2"><c r="A2" s="3"><v>1</v></c></row>"#;
        assert_same(&workbook(d, "no-styles.xlsx", false, "", "", data));
    }
}
