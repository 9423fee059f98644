//! Workbook row source (xlsx, xls, ods through calamine), with absolute sheet row numbers.
//!
//! An xlsx or ods file is a zip archive: before calamine sees it, [`check_archive`] holds the
//! sizes its central directory declares against [`Limits`] (total size, ratio per entry), and
//! for an xlsx reads every cell reference of its worksheets ([`sheet_refs`]): calamine computes
//! positions from them with unchecked arithmetic, so an overlong reference would put a value in
//! another column (issue 19). An xls file is a compound file, checked by [`check_compound_file`].
//!
//! What streams: an xlsx worksheet is cut into blocks of whole rows by the reader thread and
//! parsed on whichever thread runs the batch ([`xlsx_blocks`]: cut points and calamine's state
//! there come from the reference check; values are read as calamine 0.38 reads them); a sheet
//! that cannot be cut safely, or whose first block does not read exactly as calamine reads it,
//! is read cell by cell with calamine's `Xlsx::worksheet_cells_reader` on the background
//! thread, which sends finished rows through a bounded channel ([`CHANNEL_ROWS`] rows). The
//! shared-strings table and styles are held whole (bounded by the archive check). What does
//! not: calamine's xls reader decodes every sheet when
//! the file is opened, and its ods reader parses all of `content.xml` when opened; for those the
//! whole range of the chosen sheet is in memory, and the thread sends its rows one by one.
//!
//! Row numbers are the absolute sheet rows (1-based): calamine's cell positions are absolute for
//! the streaming reader; a range starts at its first non-empty cell, so its start offset is
//! added. Columns are absolute too (a sheet starting in column B yields an `Empty` first cell).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use calamine::{
    Data, DataRef, ExcelDateTime, ExcelDateTimeType, Ods, Range, Reader, Xls, Xlsx, open_workbook,
};

use super::{ArchiveLimit, Limits, RawRow, ReadError, ReadErrorKind, RowSource, SheetSel};
use super::{ReferenceProblem, ReferenceSite, SourceSpec, UNIT_ROWS, Unit, trim_header};
use crate::record::Cell;
use sheet_refs::SheetIndex;

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

/// Which reader streams an xlsx worksheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XlsxReader {
    /// Blocks of rows cut by one thread and parsed on any ([`xlsx_blocks`]), where the sheet
    /// allows it; calamine otherwise.
    Blocks,
    /// calamine's cell reader on the reader thread (the reference the block reader is tested
    /// against). Outside tests only reached as the fallback, not chosen up front.
    #[cfg_attr(not(test), allow(dead_code))]
    Calamine,
}

enum Msg {
    /// The workbook opened and this sheet was picked; rows follow.
    Opened(Arc<str>),
    /// The last row (1-based) of the sheet's used range, when the file declares it.
    Extent(u64),
    Row(RawRow),
    /// From here on the sheet comes in blocks, through this receiver.
    Blocks(xlsx_blocks::BlockReceiver),
    Fatal(ReadError),
    End,
}

/// Receives the rows of one worksheet from the reader thread.
pub(crate) struct WorkbookRows {
    rx: Receiver<Msg>,
    /// Set once the reader thread switched to blocks ([`Msg::Blocks`]).
    blocks: Option<xlsx_blocks::BlockReceiver>,
    /// Rows of a block parsed in line and not yet returned, and the block's fatal error.
    pending: VecDeque<RawRow>,
    pending_fatal: Option<ReadError>,
    file: Arc<str>,
    sheet: Arc<str>,
    finished: bool,
    /// [`Msg::Extent`] and the last row received, for [`RowSource::fraction_read`].
    extent: Option<u64>,
    row_seen: u64,
}

/// What the reader thread hands over next.
enum Incoming {
    Row(RawRow),
    Block(xlsx_blocks::XlsxBlock),
    Fatal(ReadError),
    End,
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
        Self::open_with(path, file, kind, spec, XlsxReader::Blocks, xlsx_blocks::BLOCK_BYTES)
    }

    /// [`WorkbookRows::open`] with the xlsx reader and its block size chosen.
    pub(crate) fn open_with(
        path: &Path,
        file: Arc<str>,
        kind: Kind,
        spec: &SourceSpec,
        reader: XlsxReader,
        block_bytes: u64,
    ) -> Result<(Self, Arc<str>), ReadError> {
        let mut xls = None;
        let mut indexes = SheetIndexes::new();
        match kind {
            Kind::Xlsx => indexes = check_archive(path, &file, "xlsx", &spec.limits, block_bytes)?,
            Kind::Ods => {
                check_archive(path, &file, "ods", &spec.limits, block_bytes)?;
            }
            Kind::Xls => xls = Some(check_compound_file(path, &file, &spec.limits)?),
        }
        // calamine runs on the reader thread from the start, opening included, so that a panic
        // inside it becomes `ReaderStopped` instead of unwinding through the caller.
        let (tx, rx) = sync_channel(CHANNEL_ROWS);
        let job = OpenJob {
            kind,
            path: path.to_owned(),
            xls,
            indexes: (reader == XlsxReader::Blocks).then_some(indexes),
            file: Arc::clone(&file),
            wanted: spec.sheet.clone(),
            max_field_bytes: spec.limits.max_field_bytes,
        };
        spawn(&file, move || job.run(tx))?;
        let sheet = match rx.recv() {
            Ok(Msg::Opened(sheet)) => sheet,
            Ok(Msg::Fatal(e)) => return Err(e),
            Ok(Msg::Row(_) | Msg::Extent(_) | Msg::Blocks(_) | Msg::End) | Err(_) => {
                return Err(ReadError::new(&file, ReadErrorKind::ReaderStopped));
            }
        };
        let rows = WorkbookRows {
            rx,
            blocks: None,
            pending: VecDeque::new(),
            pending_fatal: None,
            file,
            sheet: Arc::clone(&sheet),
            finished: false,
            extent: None,
            row_seen: 0,
        };
        Ok((rows, sheet))
    }

    fn stopped(&self) -> ReadError {
        let mut err = ReadError::new(&self.file, ReadErrorKind::ReaderStopped);
        err.sheet = Some(Arc::clone(&self.sheet));
        err
    }

    /// The next thing from the reader thread (rows, or blocks once it switched to them).
    fn receive(&mut self) -> Incoming {
        loop {
            if let Some(blocks) = &self.blocks {
                return match blocks.recv() {
                    Ok(xlsx_blocks::BlockMsg::Block(block)) => Incoming::Block(block),
                    Ok(xlsx_blocks::BlockMsg::Fatal(e)) => Incoming::Fatal(e),
                    Ok(xlsx_blocks::BlockMsg::End) => Incoming::End,
                    // The thread dropped its sender without `End`: it panicked.
                    Err(_) => Incoming::Fatal(self.stopped()),
                };
            }
            match self.rx.recv() {
                Ok(Msg::Row(row)) => return Incoming::Row(row),
                Ok(Msg::Opened(_)) => {}
                Ok(Msg::Extent(last)) => self.extent = Some(last),
                Ok(Msg::Blocks(blocks)) => self.blocks = Some(blocks),
                Ok(Msg::Fatal(e)) => return Incoming::Fatal(e),
                Ok(Msg::End) => return Incoming::End,
                Err(_) => return Incoming::Fatal(self.stopped()),
            }
        }
    }
}

/// What the reader thread needs to open the workbook and pick the sheet.
struct OpenJob {
    kind: Kind,
    path: PathBuf,
    /// An xls file as checked and prepared by [`check_compound_file`]: calamine reads these
    /// bytes, not the file.
    xls: Option<Vec<u8>>,
    /// For an xlsx read in blocks where it can be: where each worksheet entry may be cut.
    indexes: Option<SheetIndexes>,
    file: Arc<str>,
    wanted: SheetSel,
    max_field_bytes: usize,
}

impl OpenJob {
    /// Opens the workbook, reports `Opened` (or a fatal error) and sends the sheet's rows.
    fn run(mut self, tx: SyncSender<Msg>) {
        match self.kind {
            Kind::Xlsx => match open_workbook::<Xlsx<_>, _>(&self.path) {
                Ok(mut workbook) => {
                    if let Some(sender) = self.opened(workbook.sheet_names(), tx) {
                        let plan = self.indexes.as_ref().and_then(|indexes| {
                            xlsx_blocks::plan(&self.path, &mut workbook, indexes, &sender)
                        });
                        match plan {
                            Some(plan) => xlsx_blocks::stream(&self.path, plan, workbook, sender),
                            None => stream_xlsx(workbook, sender),
                        }
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
            Kind::Xls => match Xls::new(Cursor::new(self.xls.take().unwrap_or_default())) {
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
        loop {
            if let Some(row) = self.pending.pop_front() {
                self.row_seen = row.row;
                return Some(Ok(row));
            }
            if let Some(fatal) = self.pending_fatal.take() {
                self.finished = true;
                return Some(Err(fatal));
            }
            if self.finished {
                return None;
            }
            match self.receive() {
                Incoming::Row(row) => {
                    self.row_seen = row.row;
                    return Some(Ok(row));
                }
                Incoming::Block(block) => {
                    let (rows, fatal) = block.parse();
                    self.pending.extend(rows);
                    self.pending_fatal = fatal;
                }
                Incoming::Fatal(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
                Incoming::End => {
                    self.finished = true;
                    return None;
                }
            }
        }
    }

    fn next_unit(&mut self) -> Option<Result<Unit, ReadError>> {
        if !self.pending.is_empty() || self.pending_fatal.is_some() {
            let mut rows: Vec<_> = self.pending.drain(..).map(Ok).collect();
            if let Some(fatal) = self.pending_fatal.take() {
                self.finished = true;
                rows.push(Err(fatal));
            }
            return Some(Ok(Unit::Rows(rows)));
        }
        if self.finished {
            return None;
        }
        let mut rows = Vec::with_capacity(UNIT_ROWS);
        while rows.len() < UNIT_ROWS {
            match self.receive() {
                Incoming::Row(row) => {
                    self.row_seen = row.row;
                    rows.push(Ok(row));
                }
                // Blocks come alone: the reader thread sends no rows once it sends blocks.
                Incoming::Block(block) if rows.is_empty() => {
                    self.row_seen = self.row_seen.max(block.row_before());
                    return Some(Ok(Unit::Xlsx(block)));
                }
                Incoming::Block(block) => {
                    let (parsed, fatal) = block.parse();
                    rows.extend(parsed.into_iter().map(Ok));
                    if let Some(fatal) = fatal {
                        self.finished = true;
                        rows.push(Err(fatal));
                    }
                    break;
                }
                Incoming::Fatal(e) => {
                    self.finished = true;
                    if rows.is_empty() {
                        return Some(Err(e));
                    }
                    rows.push(Err(e));
                    break;
                }
                Incoming::End => {
                    self.finished = true;
                    break;
                }
            }
        }
        (!rows.is_empty()).then_some(Ok(Unit::Rows(rows)))
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

/// Groups cells, in the sheet's order, into [`RawRow`]s: blank-row gaps, field checks, and the
/// position checks that keep calamine's positions to the sheet's own order. Shared by the
/// calamine path and the block parser, which starts one at each block with the state there.
pub(crate) struct RowGrouper {
    file: Arc<str>,
    sheet: Arc<str>,
    max_field_bytes: usize,
    /// The last row (1-based) a row was made for, for `blank_before`.
    last_row: u64,
    /// The position of the cell before (0-based).
    previous: Option<(u32, u32)>,
    current: Option<(u32, Vec<Cell>)>,
}

/// A fatal error found while grouping: its row (1-based, if known) and what.
type Stop = (Option<u64>, ReadErrorKind);

impl RowGrouper {
    /// A grouper whose cell before (if any) was at `previous`, in a row already made.
    pub(crate) fn new(
        file: &Arc<str>,
        sheet: &Arc<str>,
        max_field_bytes: usize,
        previous: Option<(u32, u32)>,
    ) -> Self {
        RowGrouper {
            file: Arc::clone(file),
            sheet: Arc::clone(sheet),
            max_field_bytes,
            last_row: previous.map_or(0, |p| u64::from(p.0) + 1),
            previous,
            current: None,
        }
    }

    /// Adds the cell at 0-based (`row`, `col`); returns the row before it once this cell
    /// starts a new one.
    pub(crate) fn cell(&mut self, row: u32, col: u32, value: Cell) -> Result<Option<RawRow>, Stop> {
        if col >= MAX_COLUMNS {
            let kind = ReadErrorKind::ColumnOutOfRange {
                column: u64::from(col) + 1,
                limit: u64::from(MAX_COLUMNS),
            };
            return Err((Some(u64::from(row) + 1), kind));
        }
        // `check_archive` has already refused a sheet whose references break it; this catches
        // a position calamine derives differently from that check (cells without a reference
        // after unusual markup), so that no cell can overwrite another or split a row silently.
        if row >= MAX_ROWS || self.previous.is_some_and(|p| (row, col) <= p) {
            let problem = match self.previous {
                Some(p) if row < MAX_ROWS => ReferenceProblem::OutOfOrder {
                    previous: sheet_refs::a1(u64::from(p.0), u64::from(p.1)),
                },
                _ => ReferenceProblem::BeyondLastRow,
            };
            let reference = sheet_refs::a1(u64::from(row), u64::from(col));
            let kind =
                ReadErrorKind::BadReference { site: ReferenceSite::Cell, reference, problem };
            return Err((Some(u64::from(row) + 1), kind));
        }
        self.previous = Some((row, col));
        let mut done = None;
        if self.current.as_ref().is_some_and(|(r, _)| *r != row)
            && let Some((r, cells)) = self.current.take()
        {
            done = Some(self.raw_row(u64::from(r) + 1, cells));
        }
        let (_, cells) = self.current.get_or_insert_with(|| (row, Vec::new()));
        let col = col as usize;
        if cells.len() <= col {
            cells.resize(col + 1, Cell::Empty);
        }
        if let Some(slot) = cells.get_mut(col) {
            *slot = value;
        }
        Ok(done)
    }

    /// The row being built, at the end of the sheet (or of a block).
    pub(crate) fn finish(&mut self) -> Option<RawRow> {
        let (r, cells) = self.current.take()?;
        Some(self.raw_row(u64::from(r) + 1, cells))
    }

    /// Row `row` (absolute, 1-based) with its blank-row gap and field checks.
    fn raw_row(&mut self, row: u64, cells: Vec<Cell>) -> RawRow {
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
        RawRow { row, blank_before, cells }
    }

    /// A fatal error in this sheet.
    pub(crate) fn fatal(&self, row: Option<u64>, kind: ReadErrorKind) -> ReadError {
        let mut err = ReadError::new(&self.file, kind);
        err.sheet = Some(Arc::clone(&self.sheet));
        err.row = row;
        err
    }

    /// The error for a state the block reader's own checks say cannot happen.
    pub(crate) fn stopped(&self) -> ReadError {
        self.fatal(None, ReadErrorKind::ReaderStopped)
    }
}

/// The thread's end of the channel.
pub(crate) struct RowSender {
    tx: SyncSender<Msg>,
    file: Arc<str>,
    sheet: Arc<str>,
    max_field_bytes: usize,
    rows: RowGrouper,
}

impl RowSender {
    fn new(file: &Arc<str>, sheet: &Arc<str>, max_field_bytes: usize, tx: SyncSender<Msg>) -> Self {
        RowSender {
            tx,
            file: Arc::clone(file),
            sheet: Arc::clone(sheet),
            max_field_bytes,
            rows: RowGrouper::new(file, sheet, max_field_bytes, None),
        }
    }

    /// Sends row `row` (absolute, 1-based). False when the consumer has gone away.
    fn row(&mut self, row: u64, cells: Vec<Cell>) -> bool {
        let raw = self.rows.raw_row(row, cells);
        self.send(raw)
    }

    fn send(&self, raw: RawRow) -> bool {
        self.tx.send(Msg::Row(raw)).is_ok()
    }

    /// Announces the last row of the sheet's used range (1-based), for progress.
    fn extent(&self, last_row: u64) -> bool {
        self.tx.send(Msg::Extent(last_row)).is_ok()
    }

    /// Hands the rest of the sheet over to blocks.
    fn blocks(&self, blocks: xlsx_blocks::BlockReceiver) -> bool {
        self.tx.send(Msg::Blocks(blocks)).is_ok()
    }

    fn error(&self, row: Option<u64>, kind: ReadErrorKind) -> ReadError {
        let mut err = ReadError::new(&self.file, kind);
        err.sheet = Some(Arc::clone(&self.sheet));
        err.row = row;
        err
    }

    fn fatal(self, row: Option<u64>, kind: ReadErrorKind) {
        let err = self.error(row, kind);
        // The consumer may be gone; nothing left to do then.
        let _ = self.tx.send(Msg::Fatal(err));
    }

    fn end(self) {
        let _ = self.tx.send(Msg::End);
    }
}

/// Streams an xlsx worksheet cell by cell with calamine, grouping cells into rows.
fn stream_xlsx(mut workbook: Xlsx<BufReader<File>>, sender: RowSender) {
    // A sheet without a <dimension> element reports (0, 0): no extent, no ETA.
    match workbook.worksheet_cells_reader(&sender.sheet) {
        Ok(reader) => {
            let declared = reader.dimensions().end.0;
            if declared > 0 && !sender.extent(u64::from(declared) + 1) {
                return;
            }
        }
        Err(e) => return sender.fatal(None, ReadErrorKind::Workbook(calamine::Error::Xlsx(e))),
    }
    let mut stop = None;
    calamine_rows(&mut workbook, &sender, |item| match item {
        Ok(raw) => sender.send(raw),
        Err(e) => {
            stop = Some(e);
            false
        }
    });
    match stop {
        Some(e) => {
            let _ = sender.tx.send(Msg::Fatal(e));
        }
        None => sender.end(),
    }
}

/// The rows of the sheet as calamine's cell reader gives them, handed to `emit` in order; a
/// fatal error is the last item. Stops when `emit` returns false.
fn calamine_rows(
    workbook: &mut Xlsx<BufReader<File>>,
    sender: &RowSender,
    mut emit: impl FnMut(Result<RawRow, ReadError>) -> bool,
) {
    let mut rows = RowGrouper::new(&sender.file, &sender.sheet, sender.max_field_bytes, None);
    let mut cells_reader = match workbook.worksheet_cells_reader(&sender.sheet) {
        Ok(reader) => reader,
        Err(e) => {
            emit(Err(rows.fatal(None, ReadErrorKind::Workbook(calamine::Error::Xlsx(e)))));
            return;
        }
    };
    loop {
        match cells_reader.next_cell() {
            Ok(Some(cell)) => {
                let (row, col) = cell.get_position();
                match rows.cell(row, col, cell_from_ref(cell.get_value())) {
                    Ok(Some(raw)) => {
                        if !emit(Ok(raw)) {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err((row, kind)) => {
                        emit(Err(rows.fatal(row, kind)));
                        return;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                emit(Err(rows.fatal(None, ReadErrorKind::Workbook(calamine::Error::Xlsx(e)))));
                return;
            }
        }
    }
    if let Some(raw) = rows.finish() {
        emit(Ok(raw));
    }
}

/// Loads the sheet's range (xls, ods) and sends its rows.
fn send_range<W, RS>(mut workbook: W, mut sender: RowSender)
where
    RS: Read + Seek,
    W: Reader<RS>,
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
pub(crate) fn date_cell(dt: &ExcelDateTime) -> Cell {
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
    block_bytes: u64,
) -> Result<SheetIndexes, ReadError> {
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
        return check_references(&mut zip, file, block_bytes);
    }
    Ok(SheetIndexes::new())
}

/// The [`SheetIndex`] of every archive entry that holds a `<sheetData>`, by entry name.
pub(crate) type SheetIndexes = HashMap<String, SheetIndex>;

/// Reads the cell references of every worksheet in the archive before calamine does, and
/// refuses the workbook at the first one calamine would misplace or fail on (see
/// [`sheet_refs`]). The error names the sheet (or, when the workbook does not say which sheet
/// the entry is, the entry), the row calamine would have been in, and the reference.
///
/// Every entry is read, not only the sheets the workbook lists: a worksheet is found through
/// relationship files calamine resolves itself, and a check that resolved them differently
/// could miss the entry calamine reads. An entry that is not a worksheet costs one XML parse.
/// Inflating is bounded as for calamine (declared sizes, checked above).
///
/// The check is kept as a pass of its own, before any row is read, so that a workbook with a
/// bad reference is refused whole, before a single row reaches validation (or a registry).
/// The same pass records where each worksheet may be cut into blocks for the block reader
/// ([`xlsx_blocks`]), so that reader need not scan again for safe cut points.
fn check_references<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    file: &Arc<str>,
    block_bytes: u64,
) -> Result<SheetIndexes, ReadError> {
    let mut indexes = SheetIndexes::new();
    for i in 0..zip.len() {
        // An entry that cannot be opened (encrypted, unsupported compression) is reported by
        // calamine if it is one it needs.
        let Ok(entry) = zip.by_index(i) else { continue };
        let name = entry_name(&entry).unwrap_or_default();
        // The byte scanner reads real exports; what it does not read as quick-xml would goes
        // through quick-xml's events (the entry is opened again).
        let scanned = match sheet_refs::fast::scan(entry, block_bytes) {
            Some(scanned) => scanned,
            None => match zip.by_index(i) {
                Ok(entry) => sheet_refs::scan(BufReader::new(entry), block_bytes),
                Err(_) => continue,
            },
        };
        let found = match scanned {
            Ok(index) => {
                if index.data_start.is_some() {
                    indexes.insert(name, index);
                }
                continue;
            }
            Err(found) => found,
        };
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
    Ok(indexes)
}

pub(crate) mod sheet_refs;

pub(crate) mod xlsx_blocks;

/// Checks an xls file's compound-file structure (MS-CFB) before calamine reads it: calamine
/// follows sector chains without loop detection and indexes its FAT with ids from the file, so
/// a few crafted bytes make it allocate without bound (found by `fuzz_workbook`). Refused here:
/// a file larger than `max_uncompressed_bytes` (calamine holds it whole), more FAT sectors than
/// the file has sectors, a FAT or mini FAT in which a chain loops or points past the table,
/// a DIFAT, FAT or mini FAT sector cut short by the end of the file (calamine panics on it), and
/// and in the workbook stream what calamine would read out of bounds or allocate without bound
/// for (see [`biff`]).
///
/// Returns the file's bytes for calamine, with every formula's token length cleared: calamine
/// parses formula tokens with unchecked slicing, and only their cached values are read here.
/// Anything this check cannot parse is left to calamine, which reports it as `NotAWorkbook`.
fn check_compound_file(
    path: &Path,
    file: &Arc<str>,
    limits: &Limits,
) -> Result<Vec<u8>, ReadError> {
    let io_err = |e| ReadError::new(file, ReadErrorKind::Io(e));
    let size = std::fs::metadata(path).map_err(io_err)?.len();
    if size > limits.max_uncompressed_bytes {
        let limit =
            ArchiveLimit::TotalSize { declared: size, limit: limits.max_uncompressed_bytes };
        return Err(ReadError::new(file, ReadErrorKind::SuspiciousArchive { entry: None, limit }));
    }
    let mut bytes = std::fs::read(path).map_err(io_err)?;
    let clear = cfb::check(&bytes, limits.max_uncompressed_bytes).map_err(|reason| {
        ReadError::new(file, ReadErrorKind::NotAWorkbook { format: "xls", reason: reason.into() })
    })?;
    for at in clear {
        if let Some(byte) = bytes.get_mut(at) {
            *byte = 0;
        }
    }
    Ok(bytes)
}

mod cfb;

mod biff;

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
