//! Cell references in xlsx worksheets, read before calamine reads them (issue 19).
//!
//! calamine 0.38 turns a reference into a position with unchecked arithmetic
//! (`xlsx::get_row_column`: `col * 26 + letter`, `row * 10 + digit`): a reference of eight or
//! more letters, such as `AATYHWUT4`, wraps in a release build and the value silently lands in
//! another column; in a debug build it panics. A reversed `<dimension>` (`B2:A1`) underflows in
//! `get_dimension`. calamine does not report the references it read, only the positions, so
//! [`scan`] reads them itself, walking the worksheet XML the way `XlsxCellReader` does (same
//! quick-xml version and configuration, hence the same events): the `<dimension>` before
//! `<sheetData>`, then each `<row r>` and `<c r>` up to `</sheetData>`, tracking the position
//! of a cell without a reference as calamine does. A reference must be A1 style within
//! `XFD1048576`, and each cell must come after the one before it (rows top to bottom, cells
//! left to right, each once), so no value can overwrite another or land where its reference
//! does not point. Lower-case letters are accepted: calamine reads `c4` as `C4`.
//!
//! Proposed upstream: docs/upstream/calamine-cell-reference-overflow.md.

use std::io::{BufRead, Read, Seek};

use quick_xml::events::{BytesStart, Event};

use super::{MAX_COLUMNS, MAX_ROWS};

pub(crate) mod fast;
use crate::read::{ReferenceProblem, ReferenceSite};

/// A reference that calamine must not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The 1-based row calamine would have been in (none for the dimension or a row's own
    /// reference).
    pub row: Option<u64>,
    pub site: ReferenceSite,
    /// As written in the file (A1 form of the position for a cell without one).
    pub reference: String,
    pub problem: ReferenceProblem,
}

/// A 0-based (row, column) position, wide enough that counting cells never overflows.
pub(crate) type Pos = (u64, u64);

/// Where a worksheet's `<sheetData>` may be cut into blocks that parse on their own
/// (`xlsx_blocks`), recorded by [`scan`] as it reads the entry, with the state calamine's cell
/// reader is in at each cut, so that a block parsed alone gives exactly what calamine gives
/// for those bytes in the whole entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SheetIndex {
    /// Byte offset just after the `<sheetData>` start tag.
    pub data_start: Option<u64>,
    /// Byte offset of `</sheetData>` (where the last block ends: a block parsed alone has no
    /// open `<sheetData>` for it to close), when the scan reached it without an XML error.
    pub data_end: Option<u64>,
    /// Cut points, in order; each at least `block_bytes` after the one before.
    pub cuts: Vec<Cut>,
    /// Why the entry must not be cut (then the caller reads it with calamine), if it must not.
    pub uncuttable: Option<&'static str>,
}

/// A cut just after a `</row>` end tag, with calamine's cell-reader state there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    pub offset: u64,
    /// Just after the end tag of the first cell after the cut: the block before the cut reads
    /// that far, to learn whether calamine would emit its last row (see `xlsx_blocks`).
    pub lookahead_end: u64,
    /// The 0-based row a cell without a reference would be in (the column is 0 after `</row>`).
    pub row_index: u64,
    /// The position of the last cell before the cut.
    pub previous: Option<Pos>,
}

/// A quick-xml reader configured as calamine's `xlsx::xml_reader`, so that this scan, the block
/// parser and calamine all see the same events.
pub(crate) fn xml_reader<R: BufRead>(input: R) -> quick_xml::Reader<R> {
    let mut xml = quick_xml::Reader::from_reader(input);
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    xml
}

/// Reads one archive entry; `Err` at the first reference calamine must not read. An entry
/// that is not XML, or not a worksheet, passes: only what calamine's cell reader would read
/// is checked, and an XML error stops this scan where it stops calamine.
///
/// On the way it records where the worksheet's rows may be cut into blocks of about
/// `block_bytes` (see [`SheetIndex`]). A cut is only made where the events before it leave
/// calamine's reader in a state the block's own parser can start from: after a `</row>` that
/// closes a top-level row, when the next cell is in a later row (so no row spans two blocks).
/// The whole entry is marked uncuttable when calamine and a block parser could see different
/// events or state: tags inside `<sheetData>` that do not nest (calamine skips to end tags by
/// name, so a mismatched one can swallow rows this scan counted), a `<row>` or `<c>` inside a
/// cell, a processing instruction, declaration or DOCTYPE inside `<sheetData>`, an encoding
/// other than UTF-8, or an empty-element `<sheetData/>`.
pub(crate) fn scan<R: BufRead>(input: R, block_bytes: u64) -> Result<SheetIndex, Finding> {
    let mut xml = xml_reader(input);
    let mut state = ScanState::new(block_bytes);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let before = xml.buffer_position();
        let Ok(event) = xml.read_event_into(&mut buf) else { return Ok(state.index) };
        let step = match event {
            Event::Start(e) => state.start(&e, xml.buffer_position())?,
            Event::End(e) => {
                let utf8 = xml.encoding() == encoding_rs::UTF_8;
                state.end(
                    e.name().as_ref(),
                    e.local_name().as_ref(),
                    before,
                    xml.buffer_position(),
                    utf8,
                )
            }
            Event::PI(_) | Event::Decl(_) | Event::DocType(_) => state.markup(),
            Event::Eof => Step::Done,
            _ => Step::Go,
        };
        if let Step::Done = step {
            return Ok(state.index);
        }
    }
}

/// Whether a scan goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Go,
    /// calamine's cell reader stops here (`</sheetData>`, or the end of the entry).
    Done,
}

/// What [`scan`] knows between events: fed the start tags, end tags and markup of an entry in
/// order, by quick-xml's reader ([`scan`]) or by the byte scanner of `fast`, so that both
/// apply the same rules.
pub(crate) struct ScanState {
    pub index: SheetIndex,
    block_bytes: u64,
    in_sheet_data: bool,
    // calamine's `XlsxCellReader` state: the row it is in and the column the next cell
    // without a reference gets.
    row_index: u64,
    col_index: u64,
    previous: Option<Pos>,
    // Open elements inside `<sheetData>` (names concatenated, and where each starts), and
    // whether a `<c>` is open: what decides whether the entry can be cut.
    open_names: String,
    open_starts: Vec<usize>,
    in_cell: bool,
    // A cut waiting for the next cell (it holds if that cell starts a new row), and a cut
    // that held, waiting for that cell's end tag.
    pending: Option<Cut>,
    held: Option<Cut>,
    last_cut: u64,
}

impl ScanState {
    pub(crate) fn new(block_bytes: u64) -> ScanState {
        ScanState {
            index: SheetIndex::default(),
            block_bytes,
            in_sheet_data: false,
            row_index: 0,
            col_index: 0,
            previous: None,
            open_names: String::new(),
            open_starts: Vec::new(),
            in_cell: false,
            pending: None,
            held: None,
            last_cut: 0,
        }
    }

    fn uncuttable(&mut self, why: &'static str) {
        self.index.uncuttable.get_or_insert(why);
    }

    /// A start tag (or the start of an empty element) that ends at byte `after`.
    pub(crate) fn start(&mut self, e: &BytesStart<'_>, after: u64) -> Result<Step, Finding> {
        if self.in_sheet_data {
            self.open_starts.push(self.open_names.len());
            self.open_names.push_str(e.name().as_ref());
        }
        match (self.in_sheet_data, e.local_name().as_ref()) {
            (false, "dimension") => check_dimension(e)?,
            (false, "sheetData") => {
                self.in_sheet_data = true;
                self.index.data_start = Some(after);
                self.last_cut = after;
            }
            (true, "row") => {
                if self.in_cell {
                    self.uncuttable("a <row> inside a cell");
                }
                if let Some(r) = attribute(e, "r", ReferenceSite::Row, None)? {
                    let row = parse_row(r).map_err(|problem| Finding {
                        row: None,
                        site: ReferenceSite::Row,
                        reference: r.to_owned(),
                        problem,
                    })?;
                    self.row_index = row - 1;
                }
            }
            (true, "c") => self.cell(e)?,
            _ => {}
        }
        Ok(Step::Go)
    }

    fn cell(&mut self, e: &BytesStart<'_>) -> Result<(), Finding> {
        if self.in_cell {
            self.uncuttable("a <c> inside a cell");
        }
        self.in_cell = true;
        let at = Some(self.row_index + 1);
        let reference = attribute(e, "r", ReferenceSite::Cell, at)?;
        let finding = |reference: String, problem| Finding {
            row: at,
            site: ReferenceSite::Cell,
            reference,
            problem,
        };
        let pos = match reference {
            Some(r) => parse_cell(r).map_err(|p| finding(r.to_owned(), p))?,
            None => {
                let pos = (self.row_index, self.col_index);
                if let Err(problem) = within_grid(pos) {
                    return Err(finding(a1(pos.0, pos.1), problem));
                }
                pos
            }
        };
        if let Some(prev) = self.previous.filter(|&prev| pos <= prev) {
            let shown = reference.map_or_else(|| a1(pos.0, pos.1), str::to_owned);
            let previous = a1(prev.0, prev.1);
            return Err(finding(shown, ReferenceProblem::OutOfOrder { previous }));
        }
        // A cut waiting for this cell holds if the cell starts a new row.
        if let Some(cut) = self.pending.take()
            && cut.previous.is_none_or(|p| pos.0 > p.0)
        {
            self.last_cut = cut.offset;
            self.held = Some(cut);
        }
        self.previous = Some(pos);
        self.col_index = pos.1 + 1;
        Ok(())
    }

    /// An end tag named `name` (local part `local`) from byte `before` to byte `after`;
    /// `utf8`: whether the entry is read as UTF-8.
    pub(crate) fn end(
        &mut self,
        name: &str,
        local: &str,
        before: u64,
        after: u64,
        utf8: bool,
    ) -> Step {
        if !self.in_sheet_data {
            return Step::Go;
        }
        if local == "sheetData" && self.open_starts.is_empty() {
            // calamine's cell reader stops here.
            if after == self.index.data_start.unwrap_or(0) {
                self.uncuttable("an empty-element <sheetData/>");
            }
            if !utf8 {
                self.uncuttable("an encoding other than UTF-8");
            }
            self.index.data_end = Some(before);
            return Step::Done;
        }
        match self.open_starts.pop() {
            Some(start) if self.open_names.get(start..) == Some(name) => {
                self.open_names.truncate(start);
            }
            _ => self.uncuttable("end tags that do not match their start tags"),
        }
        match local {
            "row" => {
                if self.in_cell {
                    self.uncuttable("a </row> inside a cell");
                }
                self.row_index = self.row_index.saturating_add(1);
                self.col_index = 0;
                if self.open_starts.is_empty()
                    && self.pending.is_none()
                    && self.held.is_none()
                    && after.saturating_sub(self.last_cut) >= self.block_bytes
                {
                    let (row_index, previous) = (self.row_index, self.previous);
                    self.pending =
                        Some(Cut { offset: after, lookahead_end: after, row_index, previous });
                }
            }
            "c" => {
                self.in_cell = false;
                if let Some(mut cut) = self.held.take() {
                    cut.lookahead_end = after;
                    self.index.cuts.push(cut);
                }
            }
            // calamine's cell reader stops here.
            "sheetData" => {
                self.uncuttable("end tags that do not match their start tags");
                self.index.data_end = Some(before);
                return Step::Done;
            }
            _ => {}
        }
        Step::Go
    }

    /// A processing instruction, declaration or DOCTYPE.
    pub(crate) fn markup(&mut self) -> Step {
        if self.in_sheet_data {
            self.uncuttable("markup inside <sheetData> that a block could not start in");
        }
        Step::Go
    }
}

/// `<dimension ref="A1:E20">`: calamine parses both ends and subtracts them.
fn check_dimension(e: &BytesStart<'_>) -> Result<(), Finding> {
    let Some(range) = attribute(e, "ref", ReferenceSite::Dimension, None)? else {
        return Ok(());
    };
    let finding = |problem| Finding {
        row: None,
        site: ReferenceSite::Dimension,
        reference: range.to_owned(),
        problem,
    };
    let mut parts = range.split(':');
    let start = parts.next().map(parse_cell).transpose().map_err(finding)?;
    let end = parts.next().map(parse_cell).transpose().map_err(finding)?;
    if parts.next().is_some() {
        return Err(finding(ReferenceProblem::Malformed));
    }
    if let (Some(start), Some(end)) = (start, end)
        && (end.0 < start.0 || end.1 < start.1)
    {
        return Err(finding(ReferenceProblem::Reversed));
    }
    Ok(())
}

/// The value of attribute `key`, read as calamine's `attrs.rs` reads attributes (raw, key
/// compared exactly). Two of them are refused: calamine would pick one, depending on the
/// other attributes, and every value it could pick is then checked by nobody.
fn attribute<'e>(
    e: &'e BytesStart<'_>,
    key: &str,
    site: ReferenceSite,
    row: Option<u64>,
) -> Result<Option<&'e str>, Finding> {
    let mut values =
        RawAttributes { raw: e.attributes_raw() }.filter(|(k, _)| *k == key).map(|(_, v)| v);
    let first = values.next();
    if let (Some(first), Some(_)) = (first, values.next()) {
        return Err(Finding {
            row,
            site,
            reference: first.to_owned(),
            problem: ReferenceProblem::Repeated,
        });
    }
    Ok(first)
}

/// The attributes of a start tag as `(key, raw value)`, split the way calamine's
/// `RawAttrIter` splits them (key up to `=`, trimmed; value between matching quotes). Ends
/// at the first malformed attribute, where calamine's reading ends with an error.
struct RawAttributes<'a> {
    raw: &'a str,
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        // Byte positions found with `memchr` (the `=` and quotes are ASCII, so every position
        // is a character boundary): the `str` pattern searches were a tenth of the scan.
        let raw = self.raw;
        let bytes = raw.as_bytes();
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
        let eq = start + memchr::memchr(b'=', &bytes[start..])?;
        let quote_at = eq
            + 1
            + bytes[eq + 1..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(bytes.len() - eq - 1);
        let quote = *bytes.get(quote_at).filter(|q| **q == b'"' || **q == b'\'')?;
        let body = quote_at + 1;
        let (value, rest) = match memchr::memchr(quote, &bytes[body..]) {
            Some(len) => (&raw[body..body + len], &raw[body + len + 1..]),
            None => (&raw[body..], ""),
        };
        self.raw = rest;
        Some((raw[start..eq].trim_end_matches(|c: char| c.is_ascii_whitespace()), value))
    }
}

/// A1 cell reference to a 0-based position: one or more letters (either case), then a
/// row number; within `XFD1048576`. A malformed reference is reported before one beyond
/// the grid, and a column beyond XFD before a row beyond 1,048,576. The column stops
/// growing once past XFD, so no length of reference overflows.
pub(crate) fn parse_cell(reference: &str) -> Result<Pos, ReferenceProblem> {
    let letters = reference.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (column, row) = reference.split_at(letters);
    if column.is_empty() || !is_row_number(row) {
        return Err(ReferenceProblem::Malformed);
    }
    let mut col: u64 = 0;
    for letter in column.bytes() {
        col = col * 26 + u64::from(letter.to_ascii_uppercase() - b'A') + 1;
        if col > u64::from(MAX_COLUMNS) {
            return Err(ReferenceProblem::BeyondLastColumn);
        }
    }
    Ok((parse_row(row)? - 1, col - 1))
}

/// Digits only, not all zeros.
fn is_row_number(digits: &str) -> bool {
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

/// A row number, 1-based: digits only, 1 to 1,048,576.
fn parse_row(digits: &str) -> Result<u64, ReferenceProblem> {
    if !is_row_number(digits) {
        return Err(ReferenceProblem::Malformed);
    }
    let mut row: u64 = 0;
    for digit in digits.bytes() {
        row = row * 10 + u64::from(digit - b'0');
        if row > u64::from(MAX_ROWS) {
            return Err(ReferenceProblem::BeyondLastRow);
        }
    }
    Ok(row)
}

fn within_grid((row, col): Pos) -> Result<(), ReferenceProblem> {
    if col >= u64::from(MAX_COLUMNS) {
        Err(ReferenceProblem::BeyondLastColumn)
    } else if row >= u64::from(MAX_ROWS) {
        Err(ReferenceProblem::BeyondLastRow)
    } else {
        Ok(())
    }
}

/// The A1 reference of a 0-based position (`a1(3, 2)` is `C4`).
pub(crate) fn a1(row: u64, col: u64) -> String {
    let mut letters = Vec::new();
    let mut n = col + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect::<String>() + &(row + 1).to_string()
}

/// The name of the sheet stored in archive entry `entry`, found as calamine finds it
/// (`_rels/.rels` → workbook part → its relationships → `<sheet name r:id>`). Only for the
/// error message: `None` when the workbook does not say.
pub(crate) fn sheet_of_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    entry: &str,
) -> Option<String> {
    let normalised = |path: &str| path.replace('\\', "/").to_ascii_lowercase();
    let wanted = normalised(entry);
    let document = elements(zip, "_rels/.rels", "Relationship")?
        .into_iter()
        .find(|attrs| {
            value(attrs, "Type").is_some_and(|t| t.ends_with("/relationships/officeDocument"))
        })
        .and_then(|attrs| value(&attrs, "Target").map(str::to_owned))
        .unwrap_or_else(|| "xl/workbook.xml".to_owned());
    let (dir, name) = document.rsplit_once('/').unwrap_or(("", &document));
    let dir = dir.strip_prefix('/').unwrap_or(dir);
    let dir = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let rels = elements(zip, &format!("{dir}_rels/{name}.rels"), "Relationship")?;
    let sheets = elements(zip, &format!("{dir}{name}"), "sheet")?;
    sheets.iter().find_map(|sheet| {
        let id = sheet.iter().find(|(k, _)| k == "id" || k.ends_with(":id"))?.1.as_str();
        let target = rels.iter().find(|r| value(r, "Id") == Some(id))?;
        let target = value(target, "Target")?;
        let path = target.strip_prefix('/').map_or_else(|| format!("{dir}{target}"), str::to_owned);
        (normalised(&path) == wanted).then(|| value(sheet, "name").map(str::to_owned))?
    })
}

type Attrs = Vec<(String, String)>;

fn value<'a>(attrs: &'a Attrs, key: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The attributes (key, unescaped value) of every element named `local` in the entry at
/// `path` (found as calamine finds it: case-insensitive, `\` read as `/`). At most 16 MiB
/// of the entry is read: these are small parts, and this is only for a message.
fn elements<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    path: &str,
    local: &str,
) -> Option<Vec<Attrs>> {
    const READ_AT_MOST: u64 = 16 << 20;
    let wanted = path.replace('\\', "/").to_ascii_lowercase();
    let index = (0..zip.len()).find(|&i| {
        zip.name_for_index(i)
            .and_then(Result::ok)
            .is_some_and(|n| n.replace('\\', "/").to_ascii_lowercase() == wanted)
    })?;
    let entry = zip.by_index(index).ok()?;
    let mut xml = quick_xml::Reader::from_reader(std::io::BufReader::new(entry.take(READ_AT_MOST)));
    xml.config_mut().expand_empty_elements = true;
    let mut found = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == local => {
                let attrs = e
                    .attributes()
                    .flatten()
                    .filter_map(|a| {
                        let key = a.key.as_ref().to_owned();
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .ok()
                            .map(|v| (key, v.into_owned()))
                    })
                    .collect();
                found.push(attrs);
            }
            Ok(Event::Eof) | Err(_) => return Some(found),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::RawAttributes;

    /// The splitting with `str` patterns that [`RawAttributes`] replaced (calamine's).
    fn with_str_patterns(mut raw: &str) -> Vec<(&str, &str)> {
        let mut found = Vec::new();
        loop {
            let rest = raw.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let Some((key, after_eq)) = rest.split_once('=') else { return found };
            let after_eq = after_eq.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let Some(quote) = after_eq.chars().next().filter(|q| *q == '"' || *q == '\'') else {
                return found;
            };
            let body = &after_eq[1..];
            let (value, rest) = body.split_once(quote).unwrap_or((body, ""));
            raw = rest;
            found.push((key.trim_end_matches(|c: char| c.is_ascii_whitespace()), value));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn raw_attributes_split_as_before(raw in "[ a-c=\"'\\t\\x0c中]{0,24}") {
            let split: Vec<_> = RawAttributes { raw: &raw }.collect();
            prop_assert_eq!(split, with_str_patterns(&raw));
        }
    }
}
