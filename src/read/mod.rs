//! The read stage: opens a legacy export (CSV in UTF-8 or GBK/GB18030, or an xlsx/xls/ods
//! workbook), finds its header row below any title rows, and yields its data rows as
//! [`Record`]s with the position a spreadsheet user would point at.
//!
//! [`open`] is the entry point. Each format has a row source (`csv.rs`, `workbook.rs`) that turns
//! the file into raw rows with absolute row numbers; the [`Table`] here is shared by all of them:
//! it finds the header, skips and counts blank rows, checks field counts and builds records.
//!
//! Nothing in this module panics on input: malformed rows become row-level [`ReadError`]s, a
//! broken file becomes a fatal one, after which the iterator ends.
//!
//! CSV is read in blocks cut at record ends, and xlsx worksheets in blocks cut after `</row>`,
//! which [`Batch`]es let any thread parse and decode (see `csv.rs`, `workbook/xlsx_blocks.rs`);
//! the iterator parses them in line.
//!
//! Memory: CSV streams block by block, a block at most `256 KiB + max_record_bytes + 1` bytes
//! (a longer record is reported and skipped unbuffered; see `csv.rs`); xlsx streams the sheet in
//! blocks of about 256 KiB of XML, two waiting after the cutter (or cell by cell where it falls
//! back to calamine), shared strings held whole; xls and ods are
//! loaded whole by calamine, one sheet range at a time (see `workbook.rs`). xlsx/ods archives are
//! refused before opening when their declared sizes break [`Limits`].

mod csv;
mod encoding;
mod error;
mod hash;
mod workbook;

use std::path::Path;
use std::sync::Arc;

pub use error::{ArchiveLimit, ReadError, ReadErrorKind, ReferenceProblem, ReferenceSite};
pub use hash::sha256_file;

use crate::record::{Cell, Record, SourcePos};

/// File format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// By extension: csv/txt/tsv → Csv; xlsx/xlsm → Xlsx; xls → Xls; ods → Ods.
    #[default]
    Auto,
    Csv,
    Xlsx,
    Xls,
    Ods,
}

/// Text encoding of a CSV source (workbooks carry their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Sniff the first 64 KiB: BOM or valid UTF-8 → UTF-8, else GB18030.
    #[default]
    Auto,
    Utf8,
    /// Decoded as GB18030, its superset.
    Gbk,
    Gb18030,
}

/// Which worksheet to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetSel {
    /// 0-based position in the workbook.
    Index(usize),
    Name(String),
}

impl Default for SheetSel {
    fn default() -> Self {
        SheetSel::Index(0)
    }
}

/// Bounds on what a hostile file can make the reader hold or inflate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest field (CSV: raw bytes; workbooks: UTF-8 bytes of a text cell). Row-level error.
    pub max_field_bytes: usize,
    /// Longest CSV record in raw bytes. Row-level error; the excess is skipped, never buffered.
    pub max_record_bytes: usize,
    /// Largest total uncompressed size of an xlsx/ods archive. Fatal.
    pub max_uncompressed_bytes: u64,
    /// Largest uncompressed/compressed ratio of one archive entry bigger than 1 MiB. Fatal.
    pub max_compression_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_field_bytes: 64 * 1024,
            max_record_bytes: 1024 * 1024,
            max_uncompressed_bytes: 1024 * 1024 * 1024,
            max_compression_ratio: 200,
        }
    }
}

/// Everything [`open`] needs to know about a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub format: Format,
    /// CSV only.
    pub encoding: Encoding,
    /// CSV only: `b','`, `b';'`, `b'\t'`, …
    pub delimiter: u8,
    /// Workbooks only.
    pub sheet: SheetSel,
    /// 1-based row of the header (CSV: line number); `None` = search the first
    /// [`HEADER_SEARCH_ROWS`] rows for one holding every `expected_headers` entry.
    pub header_row: Option<u64>,
    pub expected_headers: Vec<ExpectedHeader>,
    pub limits: Limits,
}

/// A header the header row must hold, under any of its names (a pipeline column's header and
/// its aliases: `许可证编号` in one export, `许可证号` in another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedHeader {
    /// The names, the pipeline's own first; never empty when built with `From`.
    pub names: Vec<String>,
}

impl ExpectedHeader {
    /// True when `text` (a trimmed header cell) is one of the names.
    fn matches(&self, text: &str) -> bool {
        self.names.iter().any(|n| trim_header(n) == text)
    }

    /// How a missing header is named: `许可证编号`, or `许可证编号 (or 许可证号)`.
    pub fn describe(&self) -> String {
        match self.names.split_first() {
            None => String::new(),
            Some((first, [])) => trim_header(first).to_owned(),
            Some((first, rest)) => {
                let rest: Vec<&str> = rest.iter().map(|n| trim_header(n)).collect();
                format!("{} (or {})", trim_header(first), rest.join(", "))
            }
        }
    }
}

impl From<&str> for ExpectedHeader {
    fn from(name: &str) -> ExpectedHeader {
        ExpectedHeader { names: vec![name.to_owned()] }
    }
}

impl From<String> for ExpectedHeader {
    fn from(name: String) -> ExpectedHeader {
        ExpectedHeader { names: vec![name] }
    }
}

impl Default for SourceSpec {
    fn default() -> Self {
        SourceSpec {
            format: Format::Auto,
            encoding: Encoding::Auto,
            delimiter: b',',
            sheet: SheetSel::default(),
            header_row: None,
            expected_headers: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// How many non-blank rows the header search looks at.
pub const HEADER_SEARCH_ROWS: u64 = 50;

/// An opened source: an iterator of data records (or errors) after the header row.
///
/// Row-level errors ([`ReadError::is_fatal`] false) are followed by further items; after a
/// fatal error the iterator returns `None`.
pub trait RecordSource: Iterator<Item = Result<Record, ReadError>> + Send {
    /// The header cells, trimmed of whitespace (including NBSP, U+3000) and BOM, in column order.
    fn headers(&self) -> &[String];
    /// 1-based row of the header.
    fn header_row(&self) -> u64;
    /// "UTF-8", "UTF-8 (BOM)", "GB18030", or "workbook".
    fn encoding_used(&self) -> &'static str;
    /// Blank rows after the header that were skipped so far.
    fn blank_rows_skipped(&self) -> u64;
    /// How much of the input has been read, 0.0 to 1.0, when the format can tell (CSV: bytes;
    /// workbooks: rows of the sheet's used range). For progress and its ETA only.
    fn fraction_read(&self) -> Option<f64>;
    /// The next rows as one unit of work for any thread ([`Batch::records`]), in order; `None`
    /// at the end. A CSV batch is a block of raw bytes that the thread running it parses and
    /// decodes, so reading spreads over the cores; a workbook batch holds rows already read.
    /// Do not mix with [`Iterator::next`] on the same source.
    fn next_batch(&mut self) -> Option<Batch>;
}

/// Rows of a source as one unit of work: [`Batch::records`] turns them into records (for CSV:
/// parses and decodes the block) on whichever thread calls it. Batches of one source are
/// independent of each other; their records, concatenated in batch order, are what the
/// source's iterator would have returned.
pub struct Batch {
    unit: Unit,
    shape: Arc<Shape>,
}

/// What a [`Batch`] held.
pub struct BatchRecords {
    /// Records and row-level errors, in order; a fatal error can only be the last item.
    pub records: Vec<Result<Record, ReadError>>,
    /// Blank rows passed over in this batch (add them to
    /// [`RecordSource::blank_rows_skipped`], which counts only rows the iterator returned).
    pub blank_rows: u64,
}

impl Batch {
    /// The batch's records. Pure: no I/O, no state shared with other batches.
    pub fn records(self) -> BatchRecords {
        let mut blank_rows = 0;
        let shape = &self.shape;
        let records = match self.unit {
            Unit::Rows(rows) => rows
                .into_iter()
                .filter_map(|raw| match raw {
                    Ok(raw) => shape.record(raw, &mut blank_rows),
                    Err(fatal) => Some(Err(fatal)),
                })
                .collect(),
            Unit::Csv(block) => block
                .parse()
                .into_iter()
                .filter_map(|raw| shape.record(raw, &mut blank_rows))
                .collect(),
            Unit::Xlsx(block) => {
                let (rows, fatal) = block.parse();
                let mut records: Vec<_> =
                    rows.into_iter().filter_map(|raw| shape.record(raw, &mut blank_rows)).collect();
                records.extend(fatal.map(Err));
                records
            }
        };
        BatchRecords { records, blank_rows }
    }
}

/// Opens `path` as described by `spec`, reads up to and including the header row, and returns
/// the records after it.
///
/// Fails (fatally) when the format is unknown, the file cannot be opened or is not the declared
/// workbook, an archive exceeds the limits, the sheet does not exist, or the header row is not
/// found.
pub fn open(path: &Path, spec: &SourceSpec) -> Result<Box<dyn RecordSource>, ReadError> {
    let file: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let format = match spec.format {
        Format::Auto => format_from_extension(path)
            .ok_or_else(|| ReadError::new(&file, unknown_format(path)))?,
        other => other,
    };
    let kind = match format {
        Format::Csv => {
            let (rows, encoding) = csv::CsvRows::open(path, Arc::clone(&file), spec)?;
            let table = Table::start(rows, file, None, spec, WidthRule::Exact, encoding)?;
            return Ok(Box::new(table));
        }
        Format::Xlsx => workbook::Kind::Xlsx,
        Format::Xls => workbook::Kind::Xls,
        // `Auto` was resolved above; an ods is the remaining case.
        Format::Ods | Format::Auto => workbook::Kind::Ods,
    };
    let (rows, sheet) = workbook::WorkbookRows::open(path, Arc::clone(&file), kind, spec)?;
    let table = Table::start(rows, file, Some(sheet), spec, WidthRule::PadToHeader, "workbook")?;
    Ok(Box::new(table))
}

fn format_from_extension(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" | "txt" | "tsv" => Some(Format::Csv),
        "xlsx" | "xlsm" => Some(Format::Xlsx),
        "xls" => Some(Format::Xls),
        "ods" => Some(Format::Ods),
        _ => None,
    }
}

fn unknown_format(path: &Path) -> ReadErrorKind {
    ReadErrorKind::UnknownFormat {
        extension: path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// Trims what legacy exports put around header text: whitespace (including NBSP U+00A0 and the
/// ideographic space U+3000, both Unicode White_Space) and a stray BOM.
pub fn trim_header(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// One row as a format reader delivers it, before header handling.
pub(crate) struct RawRow {
    /// Absolute 1-based row (CSV: line where the record starts).
    pub row: u64,
    /// Blank rows (or lines) the format reader passed over just before this one.
    pub blank_before: u64,
    /// The cells, or a row-level error.
    pub cells: Result<Vec<Cell>, ReadError>,
}

/// Rows a format reader hands out at once, for another thread to finish.
pub(crate) enum Unit {
    /// Rows already read; a fatal error can only be the last item.
    Rows(Vec<Result<RawRow, ReadError>>),
    /// A CSV block, parsed by whoever runs the batch.
    Csv(csv::CsvBlock),
    /// Whole rows of an xlsx worksheet's XML, parsed by whoever runs the batch; a fatal error
    /// (where calamine would have stopped) is its last item.
    Xlsx(workbook::xlsx_blocks::XlsxBlock),
}

/// Rows per [`Unit::Rows`] when a format has no cheaper unit (workbooks).
const UNIT_ROWS: usize = 256;

/// A format reader. `Some(Err)` is fatal; the source is not polled after it.
pub(crate) trait RowSource: Send {
    fn next_row(&mut self) -> Option<Result<RawRow, ReadError>>;
    /// See [`RecordSource::fraction_read`].
    fn fraction_read(&self) -> Option<f64>;
    /// The next rows as a unit; `Some(Err)` is fatal. By default up to [`UNIT_ROWS`] rows.
    fn next_unit(&mut self) -> Option<Result<Unit, ReadError>> {
        let mut rows = Vec::with_capacity(UNIT_ROWS);
        while rows.len() < UNIT_ROWS {
            match self.next_row() {
                None => break,
                Some(Ok(raw)) => rows.push(Ok(raw)),
                Some(Err(fatal)) if rows.is_empty() => return Some(Err(fatal)),
                Some(Err(fatal)) => {
                    rows.push(Err(fatal));
                    break;
                }
            }
        }
        (!rows.is_empty()).then_some(Ok(Unit::Rows(rows)))
    }
}

/// How data rows are held against the header width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WidthRule {
    /// CSV: a record must have exactly as many fields as the header record.
    Exact,
    /// Workbooks: rows are as wide as the sheet's used range, so the header width is up to its
    /// last non-empty cell; shorter rows are padded with `Empty`, longer rows are an error
    /// only if a cell beyond the header is not blank.
    PadToHeader,
}

/// What turning a raw row into a record needs once the header is known; shared with the
/// threads that run [`Batch`]es.
#[derive(Debug)]
pub(crate) struct Shape {
    file: Arc<str>,
    sheet: Option<Arc<str>>,
    /// Cells of the header row.
    width: usize,
    width_rule: WidthRule,
}

impl Shape {
    fn error_at(&self, row: u64, kind: ReadErrorKind) -> ReadError {
        ReadError::at(&self.file, self.sheet.as_ref(), row, kind)
    }

    /// The record of a data row, its row error, or `None` for a blank row; blank rows (the
    /// row's and the ones before it) are added to `blank`.
    fn record(&self, raw: RawRow, blank: &mut u64) -> Option<Result<Record, ReadError>> {
        *blank += raw.blank_before;
        let cells = match raw.cells {
            Ok(cells) => cells,
            Err(row_error) => return Some(Err(row_error)),
        };
        if cells.iter().all(Cell::is_blank) {
            *blank += 1;
            return None;
        }
        Some(self.fit_width(raw.row, cells).map(|cells| {
            let pos =
                SourcePos { file: Arc::clone(&self.file), sheet: self.sheet.clone(), row: raw.row };
            Record { pos, cells }
        }))
    }

    /// Holds `cells` against the header width (see [`WidthRule`]).
    fn fit_width(&self, row: u64, mut cells: Vec<Cell>) -> Result<Vec<Cell>, ReadError> {
        let expected = self.width;
        match self.width_rule {
            WidthRule::Exact if cells.len() == expected => Ok(cells),
            WidthRule::Exact => {
                Err(self
                    .error_at(row, ReadErrorKind::WrongFieldCount { expected, found: cells.len() }))
            }
            WidthRule::PadToHeader => {
                if cells.len() > expected {
                    let extra = cells.get(expected..).unwrap_or_default();
                    if !extra.iter().all(Cell::is_blank) {
                        let found = cells.iter().rposition(|c| !c.is_blank()).map_or(0, |i| i + 1);
                        return Err(
                            self.error_at(row, ReadErrorKind::WrongFieldCount { expected, found })
                        );
                    }
                    cells.truncate(expected);
                }
                cells.resize(expected, Cell::Empty);
                Ok(cells)
            }
        }
    }
}

/// Header handling and record building, shared by all formats.
pub(crate) struct Table<S> {
    rows: S,
    shape: Arc<Shape>,
    headers: Vec<String>,
    header_row: u64,
    encoding_used: &'static str,
    blank_rows: u64,
    done: bool,
}

impl<S: RowSource> Table<S> {
    /// Reads rows up to the header and returns the table positioned on the first data row.
    fn start(
        mut rows: S,
        file: Arc<str>,
        sheet: Option<Arc<str>>,
        spec: &SourceSpec,
        width_rule: WidthRule,
        encoding_used: &'static str,
    ) -> Result<Self, ReadError> {
        let expected = &spec.expected_headers;
        let mut best: Option<(usize, Vec<String>)> = None;
        let mut searched = 0u64;
        let not_found = |missing: Vec<String>, searched: u64| {
            let mut err =
                ReadError::new(&file, ReadErrorKind::HeaderNotFound { missing, searched });
            err.sheet = sheet.clone();
            err
        };
        let missing_row = |row: u64| {
            let mut err = ReadError::new(&file, ReadErrorKind::HeaderRowMissing { row });
            err.sheet = sheet.clone();
            err
        };
        let (header_row, cells) = loop {
            let Some(raw) = rows.next_row().transpose()? else {
                if let Some(row) = spec.header_row {
                    return Err(missing_row(row));
                }
                let missing = best
                    .map(|(_, m)| m)
                    .unwrap_or_else(|| expected.iter().map(ExpectedHeader::describe).collect());
                return Err(not_found(missing, searched));
            };
            // Rows above the header are titles; a bad one is not worth reporting.
            let Ok(cells) = raw.cells else { continue };
            if let Some(wanted) = spec.header_row {
                if raw.row == wanted {
                    break (raw.row, cells);
                }
                if raw.row > wanted {
                    return Err(missing_row(wanted));
                }
                continue;
            }
            if cells.iter().all(Cell::is_blank) {
                continue;
            }
            searched += 1;
            let texts: Vec<String> = cells.iter().map(header_text).collect();
            let missing: Vec<String> = expected
                .iter()
                .filter(|want| !texts.iter().any(|t| want.matches(t)))
                .map(ExpectedHeader::describe)
                .collect();
            if missing.is_empty() {
                break (raw.row, cells);
            }
            let found = expected.len() - missing.len();
            if best.as_ref().is_none_or(|(n, _)| found > *n) {
                best = Some((found, missing));
            }
            if searched >= HEADER_SEARCH_ROWS {
                let missing = best.map(|(_, m)| m).unwrap_or_default();
                return Err(not_found(missing, searched));
            }
        };
        let mut headers: Vec<String> = cells.iter().map(header_text).collect();
        if width_rule == WidthRule::PadToHeader {
            while headers.last().is_some_and(String::is_empty) {
                headers.pop();
            }
        }
        let shape = Arc::new(Shape { file, sheet, width: headers.len(), width_rule });
        Ok(Table { rows, shape, headers, header_row, encoding_used, blank_rows: 0, done: false })
    }
}

/// A header cell as text, trimmed.
fn header_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => trim_header(s).to_owned(),
        other => trim_header(&other.display()).to_owned(),
    }
}

impl<S: RowSource> Iterator for Table<S> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let raw = match self.rows.next_row() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(fatal)) => {
                    self.done = true;
                    return Some(Err(fatal));
                }
                Some(Ok(raw)) => raw,
            };
            if let Some(record) = self.shape.record(raw, &mut self.blank_rows) {
                return Some(record);
            }
        }
    }
}

impl<S: RowSource> RecordSource for Table<S> {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn header_row(&self) -> u64 {
        self.header_row
    }

    fn encoding_used(&self) -> &'static str {
        self.encoding_used
    }

    fn blank_rows_skipped(&self) -> u64 {
        self.blank_rows
    }

    fn fraction_read(&self) -> Option<f64> {
        if self.done { Some(1.0) } else { self.rows.fraction_read() }
    }

    fn next_batch(&mut self) -> Option<Batch> {
        if self.done {
            return None;
        }
        let unit = match self.rows.next_unit() {
            None => {
                self.done = true;
                return None;
            }
            Some(Err(fatal)) => Unit::Rows(vec![Err(fatal)]),
            Some(Ok(unit)) => unit,
        };
        if let Unit::Rows(rows) = &unit
            && rows.last().is_some_and(Result::is_err)
        {
            self.done = true;
        }
        Some(Batch { unit, shape: Arc::clone(&self.shape) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_by_extension() {
        assert_eq!(format_from_extension(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(format_from_extension(Path::new("b.tsv")), Some(Format::Csv));
        assert_eq!(format_from_extension(Path::new("b.xlsm")), Some(Format::Xlsx));
        assert_eq!(format_from_extension(Path::new("b.xls")), Some(Format::Xls));
        assert_eq!(format_from_extension(Path::new("b.ods")), Some(Format::Ods));
        assert_eq!(format_from_extension(Path::new("b.pdf")), None);
        assert_eq!(format_from_extension(Path::new("noext")), None);
    }

    #[test]
    fn unknown_extension_is_fatal() {
        let spec = SourceSpec::default();
        let err = open(Path::new("exports/2017.pdf"), &spec).err();
        assert!(matches!(
            err.map(|e| e.kind),
            Some(ReadErrorKind::UnknownFormat { extension }) if extension == "pdf"
        ));
    }

    #[test]
    fn trim_header_strips_nbsp_ideographic_space_and_bom() {
        assert_eq!(trim_header("\u{feff} 许可证编号\u{3000}\u{a0}"), "许可证编号");
    }
}
