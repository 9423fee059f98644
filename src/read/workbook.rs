//! Workbook row source (xlsx, xls, ods through calamine), with absolute sheet row numbers.
//!
//! An xlsx or ods file is a zip archive: before calamine sees it, [`check_archive`] holds the
//! sizes its central directory declares against [`Limits`] (total size, ratio per entry), and
//! for an xlsx reads every cell reference of its worksheets ([`sheet_refs`]): calamine computes
//! positions from them with unchecked arithmetic, so an overlong reference would put a value in
//! another column (issue 19). An xls file is a compound file, checked by [`check_compound_file`].
//!
//! What streams: an xlsx worksheet is read cell by cell with calamine's
//! `Xlsx::worksheet_cells_reader` on a background thread, which sends finished rows through a
//! bounded channel ([`CHANNEL_ROWS`] rows); the shared-strings table and styles are held whole
//! (bounded by the archive check). What does not: calamine's xls reader decodes every sheet when
//! the file is opened, and its ods reader parses all of `content.xml` when opened; for those the
//! whole range of the chosen sheet is in memory, and the thread sends its rows one by one.
//!
//! Row numbers are the absolute sheet rows (1-based): calamine's cell positions are absolute for
//! the streaming reader; a range starts at its first non-empty cell, so its start offset is
//! added. Columns are absolute too (a sheet starting in column B yields an `Empty` first cell).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use calamine::{
    Data, DataRef, ExcelDateTime, ExcelDateTimeType, Ods, Range, Reader, Xls, Xlsx, open_workbook,
};

use super::{ArchiveLimit, Limits, RawRow, ReadError, ReadErrorKind, RowSource, SheetSel};
use super::{ReferenceProblem, ReferenceSite, SourceSpec, trim_header};
use crate::record::Cell;

/// Rows buffered between the reader thread and the consumer.
pub const CHANNEL_ROWS: usize = 256;

/// The last spreadsheet column (XFD) is number 16384; a cell beyond it is a corrupt file.
pub const MAX_COLUMNS: u32 = 16_384;

/// The last spreadsheet row is number 1,048,576; a cell below it is a corrupt file.
pub const MAX_ROWS: u32 = 1_048_576;

/// Entries up to this size are not held to the compression-ratio limit (small XML compresses
/// very well).
const RATIO_EXEMPT_BYTES: u64 = 1024 * 1024;

/// The workbook formats calamine reads for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Xlsx,
    Xls,
    Ods,
}

enum Msg {
    /// The workbook opened and this sheet was picked; rows follow.
    Opened(Arc<str>),
    /// The last row (1-based) of the sheet's used range, when the file declares it.
    Extent(u64),
    Row(RawRow),
    Fatal(ReadError),
    End,
}

/// Receives the rows of one worksheet from the reader thread.
pub(crate) struct WorkbookRows {
    rx: Receiver<Msg>,
    file: Arc<str>,
    sheet: Arc<str>,
    finished: bool,
    /// [`Msg::Extent`] and the last row received, for [`RowSource::fraction_read`].
    extent: Option<u64>,
    row_seen: u64,
}

impl WorkbookRows {
    /// Opens the workbook, picks the sheet and starts the reader thread. Returns the source and
    /// the sheet name.
    pub(crate) fn open(
        path: &Path,
        file: Arc<str>,
        kind: Kind,
        spec: &SourceSpec,
    ) -> Result<(Self, Arc<str>), ReadError> {
        match kind {
            Kind::Xlsx => check_archive(path, &file, "xlsx", &spec.limits)?,
            Kind::Ods => check_archive(path, &file, "ods", &spec.limits)?,
            Kind::Xls => check_compound_file(path, &file, &spec.limits)?,
        }
        // calamine runs on the reader thread from the start, opening included, so that a panic
        // inside it becomes `ReaderStopped` instead of unwinding through the caller.
        let (tx, rx) = sync_channel(CHANNEL_ROWS);
        let job = OpenJob {
            kind,
            path: path.to_owned(),
            file: Arc::clone(&file),
            wanted: spec.sheet.clone(),
            max_field_bytes: spec.limits.max_field_bytes,
        };
        spawn(&file, move || job.run(tx))?;
        let sheet = match rx.recv() {
            Ok(Msg::Opened(sheet)) => sheet,
            Ok(Msg::Fatal(e)) => return Err(e),
            Ok(Msg::Row(_) | Msg::Extent(_) | Msg::End) | Err(_) => {
                return Err(ReadError::new(&file, ReadErrorKind::ReaderStopped));
            }
        };
        let rows = WorkbookRows {
            rx,
            file,
            sheet: Arc::clone(&sheet),
            finished: false,
            extent: None,
            row_seen: 0,
        };
        Ok((rows, sheet))
    }
}

/// What the reader thread needs to open the workbook and pick the sheet.
struct OpenJob {
    kind: Kind,
    path: PathBuf,
    file: Arc<str>,
    wanted: SheetSel,
    max_field_bytes: usize,
}

impl OpenJob {
    /// Opens the workbook, reports `Opened` (or a fatal error) and sends the sheet's rows.
    fn run(self, tx: SyncSender<Msg>) {
        match self.kind {
            Kind::Xlsx => match open_workbook::<Xlsx<_>, _>(&self.path) {
                Ok(workbook) => {
                    if let Some(sender) = self.opened(workbook.sheet_names(), tx) {
                        stream_xlsx(workbook, sender);
                    }
                }
                Err(e) => self.failed(tx, "xlsx", calamine::Error::Xlsx(e)),
            },
            Kind::Ods => match open_workbook::<Ods<_>, _>(&self.path) {
                Ok(workbook) => {
                    if let Some(sender) = self.opened(workbook.sheet_names(), tx) {
                        send_range(workbook, sender);
                    }
                }
                Err(e) => self.failed(tx, "ods", calamine::Error::Ods(e)),
            },
            Kind::Xls => match open_workbook::<Xls<_>, _>(&self.path) {
                Ok(workbook) => {
                    if let Some(sender) = self.opened(workbook.sheet_names(), tx) {
                        send_range(workbook, sender);
                    }
                }
                Err(e) => self.failed(tx, "xls", calamine::Error::Xls(e)),
            },
        }
    }

    fn opened(&self, names: Vec<String>, tx: SyncSender<Msg>) -> Option<RowSender> {
        match pick_sheet(&self.file, names, &self.wanted) {
            Ok(sheet) => {
                tx.send(Msg::Opened(Arc::clone(&sheet))).ok()?;
                Some(RowSender::new(&self.file, &sheet, self.max_field_bytes, tx))
            }
            Err(e) => {
                // The caller may be gone; nothing left to do then.
                let _ = tx.send(Msg::Fatal(e));
                None
            }
        }
    }

    fn failed(&self, tx: SyncSender<Msg>, format: &'static str, e: calamine::Error) {
        let _ = tx.send(Msg::Fatal(not_a_workbook(&self.file, format, e)));
    }
}

impl RowSource for WorkbookRows {
    fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        if self.finished {
            return None;
        }
        match self.rx.recv() {
            Ok(Msg::Row(row)) => {
                self.row_seen = row.row;
                Some(Ok(row))
            }
            Ok(Msg::Opened(_)) => self.next_row(),
            Ok(Msg::Extent(last)) => {
                self.extent = Some(last);
                self.next_row()
            }
            Ok(Msg::Fatal(e)) => {
                self.finished = true;
                Some(Err(e))
            }
            Ok(Msg::End) => {
                self.finished = true;
                None
            }
            // The thread dropped its sender without `End`: it panicked.
            Err(_) => {
                self.finished = true;
                let mut err = ReadError::new(&self.file, ReadErrorKind::ReaderStopped);
                err.sheet = Some(Arc::clone(&self.sheet));
                Some(Err(err))
            }
        }
    }

    fn fraction_read(&self) -> Option<f64> {
        let last = self.extent.filter(|&n| n > 0)?;
        Some((self.row_seen as f64 / last as f64).min(1.0))
    }
}

fn spawn(file: &Arc<str>, work: impl FnOnce() + Send + 'static) -> Result<(), ReadError> {
    thread::Builder::new()
        .name("read-workbook".into())
        .spawn(work)
        .map(drop)
        .map_err(|e| ReadError::new(file, ReadErrorKind::Io(e)))
}

fn not_a_workbook(file: &Arc<str>, format: &'static str, e: calamine::Error) -> ReadError {
    ReadError::new(file, ReadErrorKind::NotAWorkbook { format, reason: e.to_string() })
}

/// Resolves the sheet selection against the workbook's sheet names.
fn pick_sheet(
    file: &Arc<str>,
    names: Vec<String>,
    wanted: &SheetSel,
) -> Result<Arc<str>, ReadError> {
    let found = match wanted {
        SheetSel::Index(i) => names.get(*i),
        SheetSel::Name(name) => {
            let name = trim_header(name);
            names.iter().find(|n| n.as_str() == name || trim_header(n) == name)
        }
    };
    match found {
        Some(name) => Ok(Arc::from(name.as_str())),
        None => {
            let wanted = match wanted {
                SheetSel::Index(i) => format!("at index {i}"),
                SheetSel::Name(name) => format!("{name:?}"),
            };
            Err(ReadError::new(file, ReadErrorKind::SheetNotFound { wanted, available: names }))
        }
    }
}

/// The thread's end of the channel: builds [`RawRow`]s with blank-row gaps and field checks.
struct RowSender {
    tx: SyncSender<Msg>,
    file: Arc<str>,
    sheet: Arc<str>,
    max_field_bytes: usize,
    last_row: u64,
}

impl RowSender {
    fn new(file: &Arc<str>, sheet: &Arc<str>, max_field_bytes: usize, tx: SyncSender<Msg>) -> Self {
        RowSender {
            tx,
            file: Arc::clone(file),
            sheet: Arc::clone(sheet),
            max_field_bytes,
            last_row: 0,
        }
    }

    /// Sends row `row` (absolute, 1-based). False when the consumer has gone away.
    fn row(&mut self, row: u64, cells: Vec<Cell>) -> bool {
        let blank_before = row.saturating_sub(self.last_row.saturating_add(1));
        self.last_row = self.last_row.max(row);
        let too_long = cells.iter().enumerate().find_map(|(i, cell)| match cell {
            Cell::Text(s) if s.len() > self.max_field_bytes => Some((i + 1, s.len())),
            _ => None,
        });
        let cells = match too_long {
            Some((field, bytes)) => Err(ReadError::at(
                &self.file,
                Some(&self.sheet),
                row,
                ReadErrorKind::FieldTooLong { field, bytes, limit: self.max_field_bytes },
            )),
            None => Ok(cells),
        };
        self.tx.send(Msg::Row(RawRow { row, blank_before, cells })).is_ok()
    }

    /// Announces the last row of the sheet's used range (1-based), for progress.
    fn extent(&self, last_row: u64) -> bool {
        self.tx.send(Msg::Extent(last_row)).is_ok()
    }

    fn fatal(self, row: Option<u64>, kind: ReadErrorKind) {
        let mut err = ReadError::new(&self.file, kind);
        err.sheet = Some(self.sheet);
        err.row = row;
        // The consumer may be gone; nothing left to do then.
        let _ = self.tx.send(Msg::Fatal(err));
    }

    fn end(self) {
        let _ = self.tx.send(Msg::End);
    }
}

/// Streams an xlsx worksheet cell by cell, grouping cells into rows.
fn stream_xlsx(mut workbook: Xlsx<BufReader<File>>, mut sender: RowSender) {
    let sheet = Arc::clone(&sender.sheet);
    let mut cells_reader = match workbook.worksheet_cells_reader(&sheet) {
        Ok(reader) => reader,
        Err(e) => return sender.fatal(None, ReadErrorKind::Workbook(calamine::Error::Xlsx(e))),
    };
    // A sheet without a <dimension> element reports (0, 0): no extent, no ETA.
    let declared = cells_reader.dimensions().end.0;
    if declared > 0 && !sender.extent(u64::from(declared) + 1) {
        return;
    }
    let mut current: Option<(u32, Vec<Cell>)> = None;
    // The position of the cell before, to hold calamine's positions to the sheet's own order.
    // `check_archive` has already refused a sheet whose references break it; this catches a
    // position calamine derives differently from that check (cells without a reference after
    // unusual markup), so that no cell can overwrite another or split a row silently.
    let mut previous: Option<(u32, u32)> = None;
    loop {
        match cells_reader.next_cell() {
            Ok(Some(cell)) => {
                let (row, col) = cell.get_position();
                if col >= MAX_COLUMNS {
                    let kind = ReadErrorKind::ColumnOutOfRange {
                        column: u64::from(col) + 1,
                        limit: u64::from(MAX_COLUMNS),
                    };
                    return sender.fatal(Some(u64::from(row) + 1), kind);
                }
                if row >= MAX_ROWS || previous.is_some_and(|p| (row, col) <= p) {
                    let problem = match previous {
                        Some(p) if row < MAX_ROWS => ReferenceProblem::OutOfOrder {
                            previous: sheet_refs::a1(u64::from(p.0), u64::from(p.1)),
                        },
                        _ => ReferenceProblem::BeyondLastRow,
                    };
                    let reference = sheet_refs::a1(u64::from(row), u64::from(col));
                    let kind = ReadErrorKind::BadReference {
                        site: ReferenceSite::Cell,
                        reference,
                        problem,
                    };
                    return sender.fatal(Some(u64::from(row) + 1), kind);
                }
                previous = Some((row, col));
                if current.as_ref().is_some_and(|(r, _)| *r != row)
                    && let Some((r, cells)) = current.take()
                    && !sender.row(u64::from(r) + 1, cells)
                {
                    return;
                }
                let (_, cells) = current.get_or_insert_with(|| (row, Vec::new()));
                let col = col as usize;
                if cells.len() <= col {
                    cells.resize(col + 1, Cell::Empty);
                }
                if let Some(slot) = cells.get_mut(col) {
                    *slot = cell_from_ref(cell.get_value());
                }
            }
            Ok(None) => break,
            Err(e) => {
                return sender.fatal(None, ReadErrorKind::Workbook(calamine::Error::Xlsx(e)));
            }
        }
    }
    if let Some((r, cells)) = current.take()
        && !sender.row(u64::from(r) + 1, cells)
    {
        return;
    }
    sender.end();
}

/// Loads the sheet's range (xls, ods) and sends its rows.
fn send_range<W>(mut workbook: W, mut sender: RowSender)
where
    W: Reader<BufReader<File>>,
    calamine::Error: From<W::Error>,
{
    let range: Range<Data> = match workbook.worksheet_range(&Arc::clone(&sender.sheet)) {
        Ok(range) => range,
        Err(e) => return sender.fatal(None, ReadErrorKind::Workbook(calamine::Error::from(e))),
    };
    drop(workbook);
    let Some((first_row, first_col)) = range.start() else {
        return sender.end();
    };
    if let Some((last_row, _)) = range.end()
        && !sender.extent(u64::from(last_row) + 1)
    {
        return;
    }
    for (i, row) in range.rows().enumerate() {
        let mut cells = Vec::with_capacity(first_col as usize + row.len());
        cells.resize(first_col as usize, Cell::Empty);
        cells.extend(row.iter().map(cell_from_data));
        if !sender.row(u64::from(first_row) + i as u64 + 1, cells) {
            return;
        }
    }
    sender.end();
}

/// A date cell with its epoch. calamine keeps the 1904 flag private inside `ExcelDateTime` but
/// compares it in `PartialEq`, so it is recovered by comparing with a 1904-flagged twin.
fn date_cell(dt: &ExcelDateTime) -> Cell {
    let kind =
        if dt.is_duration() { ExcelDateTimeType::TimeDelta } else { ExcelDateTimeType::DateTime };
    let serial = dt.as_f64();
    Cell::ExcelDate { serial, date1904: *dt == ExcelDateTime::new(serial, kind, true) }
}

fn cell_from_data(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Float(f) => Cell::Number(*f),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => date_cell(dt),
        Data::DateTimeIso(s) => Cell::IsoDate(s.clone()),
        Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Error(e) => Cell::Error(e.to_string()),
    }
}

fn cell_from_ref(data: &DataRef<'_>) -> Cell {
    match data {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) => Cell::Text(s.clone()),
        DataRef::SharedString(s) => Cell::Text((*s).to_owned()),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Int(i) => Cell::Number(*i as f64),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) => date_cell(dt),
        DataRef::DateTimeIso(s) => Cell::IsoDate(s.clone()),
        DataRef::DurationIso(s) => Cell::Text(s.clone()),
        DataRef::Error(e) => Cell::Error(e.to_string()),
    }
}

/// Checks a zip-based workbook against the archive limits before calamine opens it, from the
/// sizes its central directory declares.
///
/// Declared sizes are enough because a header cannot lie past them: the `zip` crate (9.x, also
/// the one calamine reads through) fails a read once an entry inflates beyond its declared size
/// ("File is larger than its declared uncompressed size"); calamine then reports a `Workbook`
/// error. So nothing inflates more than `max_uncompressed_bytes` in total.
///
/// For an xlsx, every worksheet's cell references are then read ([`check_references`]).
///
/// Fails with `NotAWorkbook` when the file is not a readable zip (text, truncated),
/// `SuspiciousArchive` when a limit is exceeded, and `BadReference` when a worksheet holds a
/// reference calamine would misplace.
pub(crate) fn check_archive(
    path: &Path,
    file: &Arc<str>,
    format: &'static str,
    limits: &Limits,
) -> Result<(), ReadError> {
    let bad_zip =
        |reason: String| ReadError::new(file, ReadErrorKind::NotAWorkbook { format, reason });
    let suspicious = |entry: Option<String>, limit: ArchiveLimit| {
        ReadError::new(file, ReadErrorKind::SuspiciousArchive { entry, limit })
    };
    let handle = File::open(path).map_err(|e| ReadError::new(file, ReadErrorKind::Io(e)))?;
    let mut zip =
        zip::ZipArchive::new(BufReader::new(handle)).map_err(|e| bad_zip(e.to_string()))?;
    let ratio_ok = |uncompressed: u64, compressed: u64| {
        uncompressed <= RATIO_EXEMPT_BYTES
            || uncompressed / compressed.max(1) <= limits.max_compression_ratio
    };

    let mut declared_total = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| bad_zip(e.to_string()))?;
        let (size, compressed) = (entry.size(), entry.compressed_size());
        declared_total = declared_total.saturating_add(size);
        if declared_total > limits.max_uncompressed_bytes {
            let limit = limits.max_uncompressed_bytes;
            return Err(suspicious(
                None,
                ArchiveLimit::TotalSize { declared: declared_total, limit },
            ));
        }
        if !ratio_ok(size, compressed) {
            let limit = ArchiveLimit::Ratio {
                uncompressed: size,
                compressed,
                limit: limits.max_compression_ratio,
            };
            return Err(suspicious(entry_name(&entry), limit));
        }
    }

    if format == "xlsx" {
        check_references(&mut zip, file)?;
    }
    Ok(())
}

/// Reads the cell references of every worksheet in the archive before calamine does, and
/// refuses the workbook at the first one calamine would misplace or fail on (see
/// [`sheet_refs`]). The error names the sheet (or, when the workbook does not say which sheet
/// the entry is, the entry), the row calamine would have been in, and the reference.
///
/// Every entry is read, not only the sheets the workbook lists: a worksheet is found through
/// relationship files calamine resolves itself, and a check that resolved them differently
/// could miss the entry calamine reads. An entry that is not a worksheet costs one XML parse.
/// Inflating is bounded as for calamine (declared sizes, checked above).
fn check_references<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    file: &Arc<str>,
) -> Result<(), ReadError> {
    for i in 0..zip.len() {
        // An entry that cannot be opened (encrypted, unsupported compression) is reported by
        // calamine if it is one it needs.
        let Ok(entry) = zip.by_index(i) else { continue };
        let name = entry_name(&entry).unwrap_or_default();
        let Err(found) = sheet_refs::scan(BufReader::new(entry)) else { continue };
        let sheet = sheet_refs::sheet_of_entry(zip, &name).unwrap_or(name);
        let kind = ReadErrorKind::BadReference {
            site: found.site,
            reference: found.reference,
            problem: found.problem,
        };
        let mut err = ReadError::new(file, kind);
        err.sheet = Some(Arc::from(sheet));
        err.row = found.row;
        return Err(err);
    }
    Ok(())
}

/// Cell references in xlsx worksheets, read before calamine reads them (issue 19).
///
/// calamine 0.38 turns a reference into a position with unchecked arithmetic
/// (`xlsx::get_row_column`: `col * 26 + letter`, `row * 10 + digit`): a reference of eight or
/// more letters, such as `AATYHWUT4`, wraps in a release build and the value silently lands in
/// another column; in a debug build it panics. A reversed `<dimension>` (`B2:A1`) underflows in
/// `get_dimension`. calamine does not report the references it read, only the positions, so
/// [`scan`] reads them itself, walking the worksheet XML the way `XlsxCellReader` does (same
/// quick-xml version and configuration, hence the same events): the `<dimension>` before
/// `<sheetData>`, then each `<row r>` and `<c r>` up to `</sheetData>`, tracking the position
/// of a cell without a reference as calamine does. A reference must be A1 style within
/// `XFD1048576`, and each cell must come after the one before it (rows top to bottom, cells
/// left to right, each once), so no value can overwrite another or land where its reference
/// does not point. Lower-case letters are accepted: calamine reads `c4` as `C4`.
///
/// Proposed upstream: docs/upstream/calamine-cell-reference-overflow.md.
pub(crate) mod sheet_refs {
    use std::io::{BufRead, Read, Seek};

    use quick_xml::events::{BytesStart, Event};

    use super::{MAX_COLUMNS, MAX_ROWS};
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
    type Pos = (u64, u64);

    /// Reads one archive entry; `Err` at the first reference calamine must not read. An entry
    /// that is not XML, or not a worksheet, passes: only what calamine's cell reader would read
    /// is checked, and an XML error stops this scan where it stops calamine.
    pub(crate) fn scan<R: BufRead>(input: R) -> Result<(), Finding> {
        let mut xml = quick_xml::Reader::from_reader(input);
        // calamine's `xlsx::xml_reader` configuration, so both see the same events.
        let config = xml.config_mut();
        config.check_end_names = false;
        config.trim_text(false);
        config.check_comments = false;
        config.expand_empty_elements = true;

        let mut buf = Vec::with_capacity(1024);
        let mut in_sheet_data = false;
        // calamine's `XlsxCellReader` state: the row it is in and the column the next cell
        // without a reference gets.
        let mut row_index: u64 = 0;
        let mut col_index: u64 = 0;
        let mut previous: Option<Pos> = None;
        loop {
            buf.clear();
            let Ok(event) = xml.read_event_into(&mut buf) else { return Ok(()) };
            match event {
                Event::Start(e) => match (in_sheet_data, e.local_name().as_ref()) {
                    (false, "dimension") => check_dimension(&e)?,
                    (false, "sheetData") => in_sheet_data = true,
                    (true, "row") => {
                        if let Some(r) = attribute(&e, "r", ReferenceSite::Row, None)? {
                            let row = parse_row(r).map_err(|problem| Finding {
                                row: None,
                                site: ReferenceSite::Row,
                                reference: r.to_owned(),
                                problem,
                            })?;
                            row_index = row - 1;
                        }
                    }
                    (true, "c") => {
                        let at = Some(row_index + 1);
                        let reference = attribute(&e, "r", ReferenceSite::Cell, at)?;
                        let finding = |reference: String, problem| Finding {
                            row: at,
                            site: ReferenceSite::Cell,
                            reference,
                            problem,
                        };
                        let pos = match reference {
                            Some(r) => parse_cell(r).map_err(|p| finding(r.to_owned(), p))?,
                            None => {
                                let pos = (row_index, col_index);
                                if let Err(problem) = within_grid(pos) {
                                    return Err(finding(a1(pos.0, pos.1), problem));
                                }
                                pos
                            }
                        };
                        if let Some(prev) = previous.filter(|&prev| pos <= prev) {
                            let shown = reference.map_or_else(|| a1(pos.0, pos.1), str::to_owned);
                            let previous = a1(prev.0, prev.1);
                            return Err(finding(shown, ReferenceProblem::OutOfOrder { previous }));
                        }
                        previous = Some(pos);
                        col_index = pos.1 + 1;
                    }
                    _ => {}
                },
                Event::End(e) if in_sheet_data => match e.local_name().as_ref() {
                    "row" => {
                        row_index = row_index.saturating_add(1);
                        col_index = 0;
                    }
                    // calamine's cell reader stops here.
                    "sheetData" => return Ok(()),
                    _ => {}
                },
                Event::Eof => return Ok(()),
                _ => {}
            }
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
            let rest = self.raw.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let (key, after_eq) = rest.split_once('=')?;
            let after_eq = after_eq.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let quote = after_eq.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            let body = after_eq.get(1..)?;
            let (value, rest) = body.split_once(quote).unwrap_or((body, ""));
            self.raw = rest;
            Some((key.trim_end_matches(|c: char| c.is_ascii_whitespace()), value))
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
            let path =
                target.strip_prefix('/').map_or_else(|| format!("{dir}{target}"), str::to_owned);
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
        let mut xml =
            quick_xml::Reader::from_reader(std::io::BufReader::new(entry.take(READ_AT_MOST)));
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
}

/// Checks an xls file's compound-file structure (MS-CFB) before calamine reads it: calamine
/// follows sector chains without loop detection and indexes its FAT with ids from the file, so
/// a few crafted bytes make it allocate without bound (found by `fuzz_workbook`). Refused here:
/// a file larger than `max_uncompressed_bytes` (calamine holds it whole), more FAT sectors than
/// the file has sectors, a FAT or mini FAT in which a chain loops or points past the table,
/// a DIFAT, FAT or mini FAT sector cut short by the end of the file (calamine panics on it), and
/// a sheet whose Dimensions record would make calamine reserve more cells than a BIFF8 sheet
/// holds (the allocation failure aborts the process; see [`biff`]).
///
/// Anything this check cannot parse is left to calamine, which reports it as `NotAWorkbook`.
fn check_compound_file(path: &Path, file: &Arc<str>, limits: &Limits) -> Result<(), ReadError> {
    let io_err = |e| ReadError::new(file, ReadErrorKind::Io(e));
    let size = std::fs::metadata(path).map_err(io_err)?.len();
    if size > limits.max_uncompressed_bytes {
        let limit =
            ArchiveLimit::TotalSize { declared: size, limit: limits.max_uncompressed_bytes };
        return Err(ReadError::new(file, ReadErrorKind::SuspiciousArchive { entry: None, limit }));
    }
    let bytes = std::fs::read(path).map_err(io_err)?;
    cfb::check(&bytes).map_err(|reason| {
        ReadError::new(file, ReadErrorKind::NotAWorkbook { format: "xls", reason: reason.into() })
    })
}

/// Just enough of MS-CFB (Compound File Binary Format) §2.2–2.6 to validate sector chains the
/// way calamine's `cfb.rs` walks them, and to read the workbook stream for [`biff`].
mod cfb {
    const SIGNATURE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
    /// Ids at or above this are markers (DIFSECT, FATSECT, ENDOFCHAIN, FREESECT), not sectors.
    const MAX_REGULAR_SECTOR: u32 = 0xFFFF_FFFA;
    const DIFSECT: u32 = 0xFFFF_FFFC;

    fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
        let raw = bytes.get(offset..offset + 4)?;
        Some(u32::from_le_bytes([*raw.first()?, *raw.get(1)?, *raw.get(2)?, *raw.get(3)?]))
    }

    fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
        bytes
            .chunks_exact(4)
            .map(|c| c.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
    }

    /// `Err` names what is wrong; `Ok` also when the file is not parseable this far (calamine
    /// reports those itself).
    pub(super) fn check(bytes: &[u8]) -> Result<(), &'static str> {
        let Some(header) = bytes.get(..512) else { return Ok(()) };
        if header.get(..8) != Some(SIGNATURE) {
            return Ok(());
        }
        let sector_size = match header.get(30..32) {
            Some([0x09, 0x00]) => 512usize,
            Some([0x0C, 0x00]) => 4096,
            _ => return Ok(()),
        };
        let data = bytes.get(sector_size..).unwrap_or_default();
        // calamine accepts sector ids up to file length / sector size, one or two more than the
        // file holds after its header, and panics slicing a sector that starts past the end.
        let max_id = bytes.len() / sector_size;
        let in_file = data.len().div_ceil(sector_size);
        let sector = |id: u32| -> Result<Option<&[u8]>, &'static str> {
            let id = id as usize;
            if id > max_id {
                return Ok(None);
            }
            if id >= in_file {
                return Err("sector past the end of the file");
            }
            let rest = data.get(id * sector_size..).unwrap_or_default();
            Ok(Some(rest.get(..sector_size).unwrap_or(rest)))
        };
        // A DIFAT, FAT or mini FAT sector is a table of 4-byte ids and must be whole. The last
        // sector of a file can be cut short (`sector` returns what is there, as calamine does);
        // calamine then asserts that the table's length is a multiple of 4 and panics
        // (`utils::to_u32`, found by fuzzing: xls-partial-last-sector.xls), and `u32s` here
        // would drop the leftover bytes. A cut table is a broken file, so it is refused.
        let table_sector = |id: u32, cut: &'static str| -> Result<Option<&[u8]>, &'static str> {
            match sector(id)? {
                Some(s) if s.len() < sector_size => Err(cut),
                other => Ok(other),
            }
        };
        let (Some(mini_fat_start), Some(difat_start)) = (u32_at(header, 60), u32_at(header, 68))
        else {
            return Ok(());
        };

        // §2.5 DIFAT: 109 entries in the header, then a chain of DIFAT sectors whose last
        // entry points to the next one.
        let mut difat: Vec<u32> = u32s(header.get(76..512).unwrap_or_default()).collect();
        let mut id = difat_start;
        let mut difat_sectors = 0usize;
        while id < MAX_REGULAR_SECTOR {
            difat_sectors += 1;
            if difat_sectors > max_id + 1 {
                return Err("DIFAT chain loops");
            }
            let Some(s) = table_sector(id, "DIFAT sector cut short by the end of the file")? else {
                return Ok(());
            };
            difat.extend(u32s(s));
            let Some(next) = difat.pop() else { return Ok(()) };
            id = next;
        }
        let fat_sectors: Vec<u32> = difat.into_iter().filter(|&id| id < DIFSECT).collect();
        if fat_sectors.len() > max_id + 1 {
            return Err("more FAT sectors than the file has sectors");
        }
        let mut fat = Vec::with_capacity(fat_sectors.len() * sector_size / 4);
        for id in fat_sectors {
            let Some(s) = table_sector(id, "FAT sector cut short by the end of the file")? else {
                return Ok(());
            };
            fat.extend(u32s(s));
        }
        check_table(&fat, max_id, in_file, "FAT")?;
        if let Some(dir_start) = u32_at(header, 48)
            && dir_start < MAX_REGULAR_SECTOR
        {
            sector(dir_start)?;
        }

        // §2.3 mini FAT: a chain in the FAT (already known to end).
        let mut mini_fat = Vec::new();
        let mut id = mini_fat_start;
        while id < MAX_REGULAR_SECTOR {
            let Some(s) = table_sector(id, "mini FAT sector cut short by the end of the file")?
            else {
                break;
            };
            mini_fat.extend(u32s(s));
            let Some(&next) = fat.get(id as usize) else { break };
            id = next;
        }
        let mini_max = max_id.saturating_mul(8);
        check_table(&mini_fat, mini_max, mini_max + 1, "mini FAT")?;

        // The workbook stream, found and read as calamine's `Cfb::new` and `get_stream` do,
        // for the sheet checks in `biff`. Every chain is known to end (checked above).
        let chain = |start: u32, len: usize| -> Result<Vec<u8>, &'static str> {
            let mut out = Vec::new();
            let mut id = start;
            while id < MAX_REGULAR_SECTOR && out.len() < len {
                let Some(s) = sector(id)? else { break };
                let take = s.len().min(len - out.len());
                out.extend_from_slice(s.get(..take).unwrap_or_default());
                let Some(&next) = fat.get(id as usize) else { break };
                id = next;
            }
            Ok(out)
        };
        let Some(dir_start) = u32_at(header, 48) else { return Ok(()) };
        let directory = chain(dir_start, usize::MAX)?;
        let entries: Vec<Entry> =
            directory.chunks_exact(128).map(|e| Entry::parse(e, sector_size)).collect();
        let Some(root) = entries.first() else { return Ok(()) };
        let mini_stream = match u32_at(header, 64) {
            Some(n) if n > 0 => chain(root.start, root.len)?,
            _ => Vec::new(),
        };
        // calamine reads "Workbook", and "Book" when that fails: both are checked.
        for entry in entries.iter().filter(|e| e.is_workbook()) {
            let stream = if entry.len < 4096 {
                mini_chain(&mini_stream, &mini_fat, mini_max, entry.start, entry.len)?
            } else {
                chain(entry.start, entry.len)?
            };
            super::biff::check(&stream)?;
        }
        Ok(())
    }

    /// A directory entry (MS-CFB §2.6): name, first sector, stream size.
    struct Entry {
        name: String,
        start: u32,
        len: usize,
    }

    impl Entry {
        fn parse(raw: &[u8], sector_size: usize) -> Entry {
            let units = raw.get(..64).unwrap_or_default().chunks_exact(2);
            let units = units.map(|u| u16::from_le_bytes([u[0], u[1]]));
            let name: String = char::decode_utf16(units).map(|c| c.unwrap_or('\u{FFFD}')).collect();
            // calamine cuts the name at its first NUL.
            let name = name.split('\0').next().unwrap_or_default().to_owned();
            let low = u32_at(raw, 120).unwrap_or(0);
            let len = if sector_size == 512 {
                u64::from(low)
            } else {
                u64::from(low) | (u64::from(u32_at(raw, 124).unwrap_or(0)) << 32)
            };
            Entry {
                name,
                start: u32_at(raw, 116).unwrap_or(u32::MAX),
                len: usize::try_from(len).unwrap_or(usize::MAX),
            }
        }

        fn is_workbook(&self) -> bool {
            self.name.eq_ignore_ascii_case("Workbook") || self.name.eq_ignore_ascii_case("Book")
        }
    }

    /// A stream in the mini stream (64-byte mini sectors chained in the mini FAT). A mini sector
    /// reaching past the end of the mini stream is refused: calamine would fill it from
    /// wherever its file reader stands, or panic slicing it.
    fn mini_chain(
        mini_stream: &[u8],
        mini_fat: &[u32],
        mini_max: usize,
        start: u32,
        len: usize,
    ) -> Result<Vec<u8>, &'static str> {
        const MINI_SECTOR: usize = 64;
        let mut out = Vec::new();
        let mut id = start;
        while id < MAX_REGULAR_SECTOR && out.len() < len && id as usize <= mini_max {
            let from = id as usize * MINI_SECTOR;
            let Some(s) = mini_stream.get(from..from + MINI_SECTOR) else {
                return Err("mini sector past the end of the mini stream");
            };
            out.extend_from_slice(s.get(..MINI_SECTOR.min(len - out.len())).unwrap_or_default());
            let Some(&next) = mini_fat.get(id as usize) else { break };
            id = next;
        }
        Ok(out)
    }

    /// Every chain in `table` must end: no loop, no link to an id that calamine would accept
    /// as a sector (`<= max_id`) but that has no entry in the table, and no link to a sector
    /// at or past `in_file` (the number of sectors the file holds).
    fn check_table(
        table: &[u32],
        max_id: usize,
        in_file: usize,
        name: &'static str,
    ) -> Result<(), &'static str> {
        const UNSEEN: u8 = 0;
        const ON_PATH: u8 = 1;
        const ENDS: u8 = 2;
        let mut state = vec![UNSEEN; table.len()];
        let mut path = Vec::new();
        for start in 0..table.len() {
            let mut id = start;
            loop {
                match state.get(id) {
                    Some(&UNSEEN) => {
                        if let Some(slot) = state.get_mut(id) {
                            *slot = ON_PATH;
                        }
                        path.push(id);
                        let Some(&next) = table.get(id) else { break };
                        if next >= MAX_REGULAR_SECTOR || next as usize > max_id {
                            break;
                        }
                        if next as usize >= in_file {
                            return Err("sector chain runs past the end of the file");
                        }
                        id = next as usize;
                    }
                    Some(&ON_PATH) => {
                        return Err(if name == "FAT" {
                            "FAT chain loops"
                        } else {
                            "mini FAT chain loops"
                        });
                    }
                    Some(_) => break,
                    None if id <= max_id => {
                        return Err(if name == "FAT" {
                            "FAT chain points past the FAT"
                        } else {
                            "mini FAT chain points past the mini FAT"
                        });
                    }
                    None => break,
                }
            }
            for id in path.drain(..) {
                if let Some(slot) = state.get_mut(id) {
                    *slot = ENDS;
                }
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::{check, check_table};

        #[test]
        fn a_table_sector_cut_short_is_refused() {
            // A 512-byte header (sector shift 9) whose DIFAT chain starts at sector 0, and a
            // sector 0 of 3 bytes: calamine would panic on it (xls-partial-last-sector.xls).
            let mut file = vec![0u8; 512];
            file[..8].copy_from_slice(super::SIGNATURE);
            file[30] = 0x09;
            file[76..512].fill(0xFF);
            file.extend_from_slice(&[0, 0xFF, 0]);
            assert_eq!(check(&file), Err("DIFAT sector cut short by the end of the file"));
            // The same header as a FAT sector: no DIFAT chain, sector 0 listed in the header.
            file[68..72].fill(0xFF);
            file[76..80].fill(0);
            assert_eq!(check(&file), Err("FAT sector cut short by the end of the file"));
            // Whole, it passes this check.
            file.resize(1024, 0xFF);
            assert_eq!(check(&file), Ok(()));
        }

        #[test]
        fn loops_and_dangling_links_are_found() {
            const END: u32 = 0xFFFF_FFFE;
            assert_eq!(check_table(&[1, 2, END, END], 10, 10, "FAT"), Ok(()));
            assert_eq!(check_table(&[1, 2, 0], 10, 10, "FAT"), Err("FAT chain loops"));
            assert_eq!(check_table(&[1, 1], 10, 10, "FAT"), Err("FAT chain loops"));
            assert_eq!(check_table(&[5], 10, 10, "FAT"), Err("FAT chain points past the FAT"));
            assert_eq!(
                check_table(&[1, 9, END], 10, 9, "FAT"),
                Err("sector chain runs past the end of the file")
            );
            // Beyond max_id calamine fails cleanly by itself.
            assert_eq!(check_table(&[50], 10, 10, "FAT"), Ok(()));
        }
    }
}

/// Just enough of the BIFF record stream (MS-XLS §2.1.4) to find what calamine's xls reader
/// would allocate for, before it runs.
///
/// calamine parses every sheet when the workbook is opened, and on a sheet's Dimensions record
/// (MS-XLS §2.4.90) reserves room for `rows × columns` cells at once, the size taken from the
/// file: a few bytes declaring 4 billion rows made it request 2 PB, and the allocation failure
/// aborts the whole process (found by `fuzz_workbook`: xls-dimensions-huge-reserve.xls). A
/// reversed range underflows its subtraction (a panic in a debug build). So each sheet's
/// records are walked as calamine walks them (from the BoundSheet8 offsets, skipping embedded
/// substreams, continuation records folded in), and a Dimensions record that is reversed or
/// larger than the BIFF8 grid (65,536 rows × 256 columns, MS-XLS §2.5.53 `ColU`, §2.5.204 `Rw`)
/// is refused, as is a sheet offset past the end of the stream (calamine panics slicing it).
mod biff {
    const BOUND_SHEET: u16 = 0x0085;
    const BOF: u16 = 0x0809;
    const EOF: u16 = 0x000A;
    const DIMENSIONS: u16 = 0x0200;
    const CONTINUE: u16 = 0x003C;
    /// The cells of a full BIFF8 sheet.
    const MAX_CELLS: usize = 65_536 * 256;

    fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
        let raw = bytes.get(offset..offset + 2)?;
        Some(u16::from_le_bytes([*raw.first()?, *raw.get(1)?]))
    }

    fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
        Some(u32::from(u16_at(bytes, offset)?) | (u32::from(u16_at(bytes, offset + 2)?) << 16))
    }

    /// Records as calamine's `RecordIter` yields them: (type, data), a following run of
    /// Continue records folded into the one before. Ends where calamine reports an error.
    fn records(mut stream: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
        std::iter::from_fn(move || {
            let typ = u16_at(stream, 0)?;
            let len = usize::from(u16_at(stream, 2)?);
            let data = stream.get(4..4 + len)?;
            stream = stream.get(4 + len..)?;
            while stream.len() > 4 && u16_at(stream, 0) == Some(CONTINUE) {
                let len = usize::from(u16_at(stream, 2)?);
                stream = stream.get(4 + len..)?;
            }
            Some((typ, data))
        })
    }

    /// `Err` names what is wrong with the workbook stream `stream`.
    pub(super) fn check(stream: &[u8]) -> Result<(), &'static str> {
        let mut sheets = Vec::new();
        for (typ, data) in records(stream) {
            match typ {
                BOUND_SHEET => sheets.extend(u32_at(data, 0)),
                EOF => break,
                _ => {}
            }
        }
        for offset in sheets {
            let Some(sheet) = stream.get(offset as usize..) else {
                return Err("sheet offset past the end of the workbook stream");
            };
            let (mut seen_bof, mut depth) = (false, 0usize);
            for (typ, data) in records(sheet) {
                match (depth, typ) {
                    (0, BOF) if seen_bof => depth = 1,
                    (0, BOF) => seen_bof = true,
                    (0, EOF) => break,
                    (0, DIMENSIONS) => dimensions(data)?,
                    (_, BOF) if depth > 0 => depth += 1,
                    (_, EOF) if depth > 0 => depth -= 1,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// calamine's `parse_dimensions` and the reservation after it, in checked arithmetic.
    fn dimensions(data: &[u8]) -> Result<(), &'static str> {
        let fields = match data.len() {
            10 => (0..4).map(|i| u16_at(data, 2 * i).map(u32::from)).collect::<Option<Vec<_>>>(),
            14 | 16 => Some(vec![
                u32_at(data, 0).unwrap_or(0),
                u32_at(data, 4).unwrap_or(0),
                u16_at(data, 8).map_or(0, u32::from),
                u16_at(data, 10).map_or(0, u32::from),
            ]),
            // calamine reports any other length as an error.
            _ => return Ok(()),
        };
        let Some(&[first_row, row_end, mut first_col, col_end]) = fields.as_deref() else {
            return Ok(());
        };
        if first_col > 0xFF || col_end < first_col {
            first_col = 0;
        }
        let (rows, cols) = if row_end >= 1 && col_end >= 1 {
            ((row_end - 1).checked_sub(first_row), (col_end - 1).checked_sub(first_col))
        } else {
            (Some(0), Some(0))
        };
        let (Some(rows), Some(cols)) = (rows, cols) else {
            return Err("sheet dimensions end before they start");
        };
        let cells = (rows as usize + 1).saturating_mul(cols as usize + 1);
        if cells > MAX_CELLS {
            return Err("sheet dimensions beyond 65536 rows by 256 columns");
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::{check, dimensions};

        fn record(typ: u16, data: &[u8]) -> Vec<u8> {
            let mut out = typ.to_le_bytes().to_vec();
            out.extend_from_slice(&(data.len() as u16).to_le_bytes());
            out.extend_from_slice(data);
            out
        }

        fn dims(first_row: u32, row_end: u32, first_col: u16, col_end: u16) -> Vec<u8> {
            let mut d = first_row.to_le_bytes().to_vec();
            d.extend_from_slice(&row_end.to_le_bytes());
            d.extend_from_slice(&first_col.to_le_bytes());
            d.extend_from_slice(&col_end.to_le_bytes());
            d.extend_from_slice(&[0, 0]);
            d
        }

        #[test]
        fn dimensions_within_the_grid_pass() {
            assert_eq!(dimensions(&dims(0, 65_536, 0, 256)), Ok(()));
            assert_eq!(dimensions(&dims(2, 3, 0, 5)), Ok(()));
            assert_eq!(dimensions(&dims(0, 0, 0, 0)), Ok(()));
            // calamine starts a column range it finds odd at column 0.
            assert_eq!(dimensions(&dims(0, 10, 300, 5)), Ok(()));
        }

        #[test]
        fn oversized_or_reversed_dimensions_are_refused() {
            let beyond = Err("sheet dimensions beyond 65536 rows by 256 columns");
            assert_eq!(dimensions(&dims(0, 65_537, 0, 256)), beyond);
            assert_eq!(dimensions(&dims(0, u32::MAX, 0, 256)), beyond);
            let reversed = Err("sheet dimensions end before they start");
            assert_eq!(dimensions(&dims(10, 5, 0, 5)), reversed);
            assert_eq!(dimensions(&dims(0, 5, 5, 5)), reversed);
        }

        #[test]
        fn only_the_sheet_records_calamine_reads_are_checked() {
            // Globals: BoundSheet8 at offset 10 (after itself), EOF.
            let mut stream = record(0x0085, &[10, 0, 0, 0, 0, 0]);
            stream.extend(record(0x000A, &[]));
            assert_eq!(stream.len(), 14);
            stream.truncate(10);
            // Sheet: BOF, an embedded chart (BOF .. EOF) with a bad Dimensions, then EOF.
            stream.extend(record(0x0809, &[0; 4]));
            stream.extend(record(0x0809, &[0; 4]));
            stream.extend(record(0x0200, &dims(0, u32::MAX, 0, 256)));
            stream.extend(record(0x000A, &[]));
            stream.extend(record(0x000A, &[]));
            assert_eq!(check(&stream), Ok(()));
            // The same Dimensions in the sheet itself is refused.
            let at = stream.len();
            stream.truncate(at - 4);
            stream.extend(record(0x0200, &dims(0, u32::MAX, 0, 256)));
            stream.extend(record(0x000A, &[]));
            assert!(check(&stream).is_err());
            // A sheet offset past the end.
            let mut stream = record(0x0085, &[0xFF, 0, 0, 0, 0, 0]);
            stream.extend(record(0x000A, &[]));
            assert_eq!(check(&stream), Err("sheet offset past the end of the workbook stream"));
        }
    }
}

fn entry_name<R: Read>(entry: &zip::read::ZipFile<'_, R>) -> Option<String> {
    entry.name().ok().map(|n| n.into_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::read::{ReadErrorKind, RecordSource, SheetSel, SourceSpec, open};
    use crate::record::{Cell, Record};

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/read").join(name)
    }

    fn ledger_spec() -> SourceSpec {
        SourceSpec {
            expected_headers: vec!["经营者名称".into(), "许可证编号".into(), "发证日期".into()],
            ..SourceSpec::default()
        }
    }

    fn open_ok(name: &str, spec: &SourceSpec) -> (Box<dyn RecordSource>, Vec<Record>) {
        let source = open(&fixture(name), spec);
        let Ok(mut source) = source else { panic!("{name}: {:?}", source.err()) };
        let records: Result<Vec<Record>, _> = source.by_ref().collect();
        let Ok(records) = records else { panic!("{name}: {:?}", records.err()) };
        (source, records)
    }

    /// The 18-digit ID 110105194912310021 as a spreadsheet stores it: a Number near 1.1010519e17.
    fn is_rounded_id(cell: Option<&Cell>) -> bool {
        matches!(cell, Some(Cell::Number(n)) if (n - 1.101_051_949_123_1e17).abs() < 1e3)
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }

    /// Same layout in title-rows.xlsx and sample.xls: merged title in row 1, header row 3.
    fn assert_ledger(name: &str, date: Cell) {
        let (source, records) = open_ok(name, &ledger_spec());
        assert_eq!(source.encoding_used(), "workbook");
        assert_eq!(source.header_row(), 3);
        assert_eq!(
            source.headers(),
            ["序号", "经营者名称", "统一社会信用代码", "许可证编号", "发证日期"]
        );
        let rows: Vec<u64> = records.iter().map(|r| r.pos.row).collect();
        assert_eq!(rows.get(..2), Some(&[4u64, 5][..]), "{name}");
        let first = records.first().map(|r| r.cells.clone()).unwrap_or_default();
        assert_eq!(
            first,
            vec![
                Cell::Number(1.0),
                text("某某餐饮管理有限公司"),
                text("91110000000000000X"),
                text("JY11101050000001"),
                date,
            ],
            "{name}"
        );
        assert_eq!(records.first().and_then(|r| r.pos.sheet.as_deref()), Some("台账"));
        // An 18-digit ID typed as a number arrives as a (rounded) Number, never as text.
        // (xlsx keeps 15 significant digits; both have lost the last ones.)
        let id = records.get(1).and_then(|r| r.cells.get(2)).cloned();
        assert!(is_rounded_id(id.as_ref()), "{name}: {id:?}");
        let name_cell = records.get(1).and_then(|r| r.cells.get(1)).cloned();
        assert_eq!(name_cell, Some(text("李䶮小吃店")));
    }

    #[test]
    fn xlsx_merged_title_row_gives_absolute_row_numbers() {
        assert_ledger("title-rows.xlsx", Cell::ExcelDate { serial: 42849.0, date1904: false });
        let (source, records) = open_ok("title-rows.xlsx", &ledger_spec());
        // Row 6 is blank; row 7 has two cells and is padded to the header width.
        assert_eq!(records.iter().map(|r| r.pos.row).collect::<Vec<_>>(), vec![4, 5, 7]);
        assert_eq!(source.blank_rows_skipped(), 1);
        let last = records.last().map(|r| r.cells.clone()).unwrap_or_default();
        assert_eq!(
            last,
            vec![
                Cell::Number(3.0),
                text("  第三家店\u{3000}"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty
            ]
        );
    }

    #[test]
    fn xls_merged_title_row_gives_absolute_row_numbers() {
        assert_ledger("sample.xls", Cell::ExcelDate { serial: 42849.0, date1904: false });
    }

    #[test]
    fn ods_dates_arrive_as_iso_text() {
        let (source, records) = open_ok("sample.ods", &ledger_spec());
        assert_eq!(source.header_row(), 3);
        assert_eq!(records.iter().map(|r| r.pos.row).collect::<Vec<_>>(), vec![4, 5]);
        let date = records.first().and_then(|r| r.cells.get(4)).cloned();
        assert_eq!(date, Some(Cell::IsoDate("2017-04-24".into())));
        let id = records.get(1).and_then(|r| r.cells.get(2)).cloned();
        assert!(is_rounded_id(id.as_ref()), "{id:?}");
    }

    #[test]
    fn xlsx_1904_dates_keep_their_epoch() {
        let (_, records) = open_ok("dates-1904.xlsx", &SourceSpec::default());
        let date = records.first().and_then(|r| r.cells.get(1)).cloned();
        // 2017-04-24 is 42849 in the 1900 system and 42849 - 1462 in the 1904 system.
        assert_eq!(date, Some(Cell::ExcelDate { serial: 41387.0, date1904: true }));
    }

    #[test]
    fn range_offset_is_added_to_row_numbers() {
        let (source, records) = open_ok("offset.xls", &SourceSpec::default());
        assert_eq!(source.header_row(), 3);
        assert_eq!(source.headers(), ["", "名称", "许可证编号"]);
        assert_eq!(records.iter().map(|r| r.pos.row).collect::<Vec<_>>(), vec![4, 6]);
        assert_eq!(source.blank_rows_skipped(), 1);
        let cells = records.first().map(|r| r.cells.clone()).unwrap_or_default();
        assert_eq!(cells, vec![Cell::Empty, text("甲店"), text("JY11101050000001")]);
    }

    #[test]
    fn sheet_by_name_and_unknown_sheet() {
        let spec = SourceSpec { sheet: SheetSel::Name("备注".into()), ..SourceSpec::default() };
        let (source, records) = open_ok("title-rows.xlsx", &spec);
        assert_eq!(source.headers(), ["说明"]);
        assert!(records.is_empty());
        for sheet in [SheetSel::Name("Sheet9".into()), SheetSel::Index(2)] {
            let spec = SourceSpec { sheet, ..SourceSpec::default() };
            match open(&fixture("title-rows.xlsx"), &spec).err().map(|e| e.kind) {
                Some(ReadErrorKind::SheetNotFound { available, .. }) => {
                    assert_eq!(available, ["台账", "备注"]);
                }
                other => panic!("expected SheetNotFound, got {other:?}"),
            }
        }
    }

    #[test]
    fn workbook_header_not_found_is_fatal() {
        let spec =
            SourceSpec { expected_headers: vec!["证照编号".into()], ..SourceSpec::default() };
        for name in ["title-rows.xlsx", "sample.xls", "sample.ods"] {
            let err = open(&fixture(name), &spec).err();
            assert!(
                matches!(err.as_ref().map(|e| &e.kind), Some(ReadErrorKind::HeaderNotFound { missing, .. }) if missing == &["证照编号"]),
                "{name}: {err:?}"
            );
            assert!(err.and_then(|e| e.sheet).is_some());
        }
    }
}
