//! The reference CSV reader, kept for tests only: the sequential reader that elicence used up to
//! issue 17 (the `csv` crate fed through [`RecordLimiter`], one thread). The block reader in
//! `csv.rs` must agree with it record for record, position for position (see the property test
//! there); it is the oracle, not a path any run takes.
//!
//! Bytes are split into records by the `csv` crate (flexible field counts, the declared
//! delimiter, CRLF or LF) and each field is decoded on its own. The `csv` crate grows its record
//! buffer to the longest record, so the bytes reach it through [`RecordLimiter`], which follows
//! the same state machine as `csv-core` and stops passing on a record once it reaches
//! `max_record_bytes`, skipping the rest up to the record's terminator.
//!
//! Row numbers are physical lines where a record starts, counted by the [`RecordLimiter`] too
//! (`csv::Position::line` is where the parser began looking, before blank lines or the LF of a
//! CRLF). Blank lines are not records for the `csv` crate; the limiter counts them.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use ::csv::{ByteRecord, ReaderBuilder};

use crate::read::encoding::{self, TextEncoding};
use crate::read::{RawRow, ReadError, ReadErrorKind, RowSource, SourceSpec};
use crate::record::Cell;

/// Reads a CSV file record by record.
pub(crate) struct CsvRows {
    reader: ::csv::Reader<RecordLimiter<io::Chain<io::Cursor<Vec<u8>>, File>>>,
    record: ByteRecord,
    file: Arc<str>,
    encoding: TextEncoding,
    max_field_bytes: usize,
    max_record_bytes: usize,
    /// Records returned by the csv reader so far (its ordinal numbering, 1-based).
    records: u64,
    /// File size and BOM length, for [`RowSource::fraction_read`].
    total_bytes: u64,
    bom_len: u64,
}

impl CsvRows {
    /// Opens `path`, sniffs the encoding and returns the source and `encoding_used`.
    pub(crate) fn open(
        path: &Path,
        file: Arc<str>,
        spec: &SourceSpec,
    ) -> Result<(Self, &'static str), ReadError> {
        let (input, sniffed, total_bytes) = super::open_sniffed(path, &file, spec)?;
        let limiter = RecordLimiter::new(input, spec.delimiter, spec.limits.max_record_bytes);
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(spec.delimiter)
            .from_reader(limiter);
        let rows = CsvRows {
            reader,
            record: ByteRecord::new(),
            file,
            encoding: sniffed.encoding,
            max_field_bytes: spec.limits.max_field_bytes,
            max_record_bytes: spec.limits.max_record_bytes,
            records: 0,
            total_bytes,
            bom_len: sniffed.bom_len as u64,
        };
        Ok((rows, sniffed.label))
    }

    fn row_error(&self, line: u64, kind: ReadErrorKind) -> ReadError {
        ReadError::at(&self.file, None, line, kind)
    }

    /// Decodes the current record into cells.
    fn decode(&mut self, line: u64) -> Result<Vec<Cell>, ReadError> {
        if self.record.as_slice().contains(&0) {
            let field = self.record.iter().position(|f| f.contains(&0)).map_or(1, |i| i + 1);
            return Err(self.row_error(line, ReadErrorKind::NulByte { field }));
        }
        let mut cells = Vec::with_capacity(self.record.len());
        for (i, bytes) in self.record.iter().enumerate() {
            let field = i + 1;
            if bytes.len() > self.max_field_bytes {
                let kind = ReadErrorKind::FieldTooLong {
                    field,
                    bytes: bytes.len(),
                    limit: self.max_field_bytes,
                };
                return Err(self.row_error(line, kind));
            }
            if bytes.is_empty() {
                cells.push(Cell::Empty);
                continue;
            }
            if self.encoding == TextEncoding::Undecided
                && let Some(settled) = encoding::settle(self.encoding, bytes)
            {
                self.encoding = settled;
            }
            match encoding::decode_field(self.encoding, bytes) {
                Ok(text) => cells.push(Cell::Text(text)),
                Err(bad) => {
                    let kind = ReadErrorKind::Undecodable {
                        field,
                        encoding: self.encoding.name(),
                        bytes: bad,
                    };
                    return Err(self.row_error(line, kind));
                }
            }
        }
        Ok(cells)
    }
}

impl RowSource for CsvRows {
    fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                let kind = match e.into_kind() {
                    ::csv::ErrorKind::Io(io) => ReadErrorKind::Io(io),
                    other => ReadErrorKind::Io(io::Error::other(format!("{other:?}"))),
                };
                let mut err = ReadError::new(&self.file, kind);
                err.row = line;
                return Some(Err(err));
            }
        }
        self.records += 1;
        let start = self.reader.get_mut().take_start(self.records);
        let (line, blank_before, truncated) = match start {
            Some(s) => (s.line, s.blank_before, s.truncated),
            // Not reached: every record the csv reader returns was started in the limiter.
            None => (self.record.position().map_or(0, |p| p.line()), 0, false),
        };
        let cells = if truncated {
            Err(self.row_error(line, ReadErrorKind::RecordTooLong { limit: self.max_record_bytes }))
        } else {
            self.decode(line)
        };
        Some(Ok(RawRow { row: line, blank_before, cells }))
    }

    fn fraction_read(&self) -> Option<f64> {
        let consumed = self.bom_len + self.reader.position().byte();
        (self.total_bytes > 0).then(|| (consumed as f64 / self.total_bytes as f64).min(1.0))
    }
}

/// Where the byte stream is, in `csv-core`'s terms (quote `"`, doubled-quote escapes, no escape
/// character, no comments, CR and LF both end a record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuotedField,
    /// A quote seen inside a quoted field: either the first of `""` or the closing quote.
    QuoteInQuotedField,
}

const CLASS_OTHER: u8 = 0;
const CLASS_DELIMITER: u8 = 1;
const CLASS_QUOTE: u8 = 2;
const CLASS_LINE_END: u8 = 3;

fn byte_classes(delimiter: u8) -> [u8; 256] {
    let mut classes = [CLASS_OTHER; 256];
    for (byte, class) in [
        (b'"', CLASS_QUOTE),
        (b'\r', CLASS_LINE_END),
        (b'\n', CLASS_LINE_END),
        (delimiter, CLASS_DELIMITER),
    ] {
        if let Some(slot) = classes.get_mut(usize::from(byte)) {
            *slot = class;
        }
    }
    classes
}

/// Where a record starts, as [`RecordLimiter`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordStart {
    /// Ordinal of the record (1-based, blank lines not counted, as the csv reader counts).
    pub ordinal: u64,
    /// Physical line (1-based) of its first byte.
    pub line: u64,
    /// Blank lines between the previous record and this one.
    pub blank_before: u64,
    /// True when the record was cut at the record limit.
    pub truncated: bool,
}

/// A reader that passes bytes through but cuts every record at `limit` bytes: the rest of an
/// over-long record is read and discarded up to its terminator, then the record is closed
/// (with a `"` if it was cut inside quotes) so that the csv reader sees a short record.
///
/// It also numbers lines, because `csv::Position::line` is the line where the parser started
/// looking for a record (before skipped blank lines, and before the LF of a CRLF), not where the
/// record starts. Record starts are queued for [`CsvRows`]; the queue holds only the records
/// the csv reader has buffered but not yet returned.
pub(crate) struct RecordLimiter<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    delimiter: u8,
    /// Byte classes for [`Self::plain_run`]: `CLASS_*`.
    classes: [u8; 256],
    limit: usize,
    state: State,
    /// Current physical line (1-based).
    line: u64,
    /// Line of the last byte that belonged to a record (0 before the first).
    last_record_line: u64,
    /// Bytes of the current record passed on.
    record_len: usize,
    records: u64,
    /// True while skipping the rest of an over-long record.
    skipping: bool,
    /// Bytes to emit before anything else (the closing of a cut record).
    pending: VecDeque<u8>,
    starts: VecDeque<RecordStart>,
}

impl<R: Read> RecordLimiter<R> {
    pub(crate) fn new(inner: R, delimiter: u8, limit: usize) -> Self {
        RecordLimiter {
            inner,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            delimiter,
            classes: byte_classes(delimiter),
            limit: limit.max(1),
            state: State::StartRecord,
            line: 1,
            last_record_line: 0,
            record_len: 0,
            records: 0,
            skipping: false,
            pending: VecDeque::new(),
            starts: VecDeque::new(),
        }
    }

    /// The start of record `ordinal`, if the limiter has seen it.
    pub(crate) fn take_start(&mut self, ordinal: u64) -> Option<RecordStart> {
        while let Some(start) = self.starts.pop_front() {
            if start.ordinal == ordinal {
                return Some(start);
            }
            if start.ordinal > ordinal {
                self.starts.push_front(start);
                return None;
            }
        }
        None
    }

    fn is_terminator(b: u8) -> bool {
        b == b'\n' || b == b'\r'
    }

    /// `csv-core`'s transition (see `csv_core::Reader::transition_nfa`), collapsed to the states
    /// that decide where a record ends.
    fn step(&self, state: State, b: u8) -> State {
        match state {
            State::StartRecord if Self::is_terminator(b) => State::StartRecord,
            State::StartRecord | State::StartField => {
                if b == b'"' {
                    State::InQuotedField
                } else if b == self.delimiter {
                    State::StartField
                } else if Self::is_terminator(b) {
                    State::StartRecord
                } else {
                    State::InField
                }
            }
            State::InField | State::QuoteInQuotedField => {
                if state == State::QuoteInQuotedField && b == b'"' {
                    State::InQuotedField
                } else if b == self.delimiter {
                    State::StartField
                } else if Self::is_terminator(b) {
                    State::StartRecord
                } else {
                    State::InField
                }
            }
            State::InQuotedField if b == b'"' => State::QuoteInQuotedField,
            State::InQuotedField => State::InQuotedField,
        }
    }

    /// Processes one input byte; returns whether to pass it on.
    fn accept(&mut self, b: u8) -> bool {
        let before = self.state;
        let after = self.step(before, b);
        self.state = after;
        if before == State::StartRecord && after != State::StartRecord {
            self.records += 1;
            self.record_len = 0;
            self.starts.push_back(RecordStart {
                ordinal: self.records,
                line: self.line,
                blank_before: self.line.saturating_sub(self.last_record_line + 1),
                truncated: false,
            });
        }
        let in_record = after != State::StartRecord;
        if in_record {
            self.last_record_line = self.line;
        }
        if b == b'\n' {
            self.line += 1;
        }
        if self.skipping {
            if !in_record {
                // The cut record ends here: close it as the csv reader expects.
                self.skipping = false;
                self.pending.push_back(b);
            }
            return false;
        }
        if in_record || before != State::StartRecord {
            self.record_len += 1;
        }
        if in_record && self.record_len > self.limit {
            self.skipping = true;
            if before == State::InQuotedField {
                self.pending.push_back(b'"');
            }
            if let Some(start) = self.starts.back_mut() {
                start.truncated = true;
            }
            return false;
        }
        true
    }
}

impl<R: Read> RecordLimiter<R> {
    /// How many leading bytes of `avail` can be passed on without the per-byte state machine:
    /// field content and delimiters outside quotes up to a line end or an opening quote, and
    /// quoted content up to the next quote (newlines inside quotes are counted here). The state
    /// is updated for the bytes taken. Passing such runs in bulk keeps [`Self::accept`] off the
    /// common path.
    fn plain_run(&mut self, avail: &[u8]) -> usize {
        let budget = if self.skipping {
            avail.len()
        } else {
            avail.len().min(self.limit.saturating_sub(self.record_len))
        };
        let avail = avail.get(..budget).unwrap_or_default();
        match self.state {
            State::InField | State::StartField => {
                let mut at_field_start = self.state == State::StartField;
                let mut taken = 0;
                for &b in avail {
                    match self.classes.get(usize::from(b)).copied().unwrap_or(CLASS_OTHER) {
                        CLASS_OTHER => at_field_start = false,
                        CLASS_DELIMITER => at_field_start = true,
                        CLASS_QUOTE if !at_field_start => {}
                        _ => break,
                    }
                    taken += 1;
                }
                if taken > 0 {
                    self.state = if at_field_start { State::StartField } else { State::InField };
                    self.last_record_line = self.line;
                }
                taken
            }
            State::InQuotedField => {
                let taken = avail.iter().position(|&b| b == b'"').unwrap_or(avail.len());
                let quoted = avail.get(..taken).unwrap_or_default();
                for &b in quoted {
                    if b == b'\n' {
                        self.line += 1;
                    }
                }
                if taken > 0 {
                    self.last_record_line = self.line;
                }
                taken
            }
            State::StartRecord | State::QuoteInQuotedField => 0,
        }
    }
}

impl<R: Read> RecordLimiter<R> {
    /// Passes bytes from `avail` to `out`; returns (bytes consumed, bytes written). Stops
    /// after one state-machine step so that a closing sequence in `pending` goes out in order.
    fn pass(&mut self, avail: &[u8], out: &mut [u8]) -> (usize, usize) {
        let window = avail.get(..out.len()).unwrap_or(avail);
        let run = self.plain_run(window);
        if run > 0 {
            if self.skipping {
                return (run, 0);
            }
            if let (Some(dst), Some(src)) = (out.get_mut(..run), window.get(..run)) {
                dst.copy_from_slice(src);
            }
            self.record_len += run;
            return (run, run);
        }
        let Some(&b) = window.first() else { return (0, 0) };
        if self.accept(b) {
            if let Some(slot) = out.first_mut() {
                *slot = b;
            }
            return (1, 1);
        }
        (1, 0)
    }
}

impl<R: Read> Read for RecordLimiter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < out.len() {
            if !self.pending.is_empty() {
                while let (Some(slot), Some(b)) = (out.get_mut(written), self.pending.front()) {
                    *slot = *b;
                    self.pending.pop_front();
                    written += 1;
                }
                continue;
            }
            if self.pos >= self.len {
                if written > 0 {
                    break;
                }
                self.len = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                if self.len == 0 {
                    self.skipping = false;
                    break;
                }
            }
            let buf = std::mem::take(&mut self.buf);
            let avail = buf.get(self.pos..self.len).unwrap_or_default();
            let (consumed, passed) = self.pass(avail, out.get_mut(written..).unwrap_or_default());
            self.buf = buf;
            self.pos += consumed;
            written += passed;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ordinal, line, blank lines before, truncated)
    type Start = (u64, u64, u64, bool);

    fn limited(input: &[u8], limit: usize) -> (Vec<u8>, Vec<Start>) {
        let mut limiter = RecordLimiter::new(input, b',', limit);
        let mut out = Vec::new();
        let mut chunk = [0u8; 7];
        loop {
            match limiter.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
        let starts =
            limiter.starts.iter().map(|s| (s.ordinal, s.line, s.blank_before, s.truncated));
        (out, starts.collect())
    }

    #[test]
    fn limiter_passes_short_records_unchanged_and_numbers_lines() {
        let input = b"a,b\r\n\"x\ny\",\"q\"\"\"\n\r\n\nlast";
        let (out, starts) = limited(input, 100);
        assert_eq!(out, input.to_vec());
        assert_eq!(starts, vec![(1, 1, 0, false), (2, 2, 0, false), (3, 6, 2, false)]);
    }

    #[test]
    fn limiter_cuts_long_records() {
        let input = b"a,b\n1,\"xxxxxxxxxxxx\nyyyy\nzz\"\n2,3\nccccccccccccccccc\n4,5";
        let (out, starts) = limited(input, 6);
        assert_eq!(String::from_utf8_lossy(&out), "a,b\n1,\"xxx\"\n2,3\ncccccc\n4,5");
        let expected = vec![
            (1, 1, 0, false),
            (2, 2, 0, true),
            (3, 5, 0, false),
            (4, 6, 0, true),
            (5, 7, 0, false),
        ];
        assert_eq!(starts, expected);
    }
}

#[cfg(test)]
mod limiter_props {
    use proptest::prelude::*;

    use super::RecordLimiter;

    fn records(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut reader =
            ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
        let mut out = Vec::new();
        let mut record = ::csv::ByteRecord::new();
        while let Ok(true) = reader.read_byte_record(&mut record) {
            out.push(record.iter().map(<[u8]>::to_vec).collect());
        }
        out
    }

    fn limited(bytes: &[u8], limit: usize, chunk: usize) -> (Vec<u8>, usize, Vec<u64>) {
        let mut limiter = RecordLimiter::new(bytes, b',', limit);
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        while let Ok(n @ 1..) = std::io::Read::read(&mut limiter, &mut buf) {
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        let lines = limiter.starts.iter().map(|s| s.line).collect();
        (out, limiter.starts.len(), lines)
    }

    proptest! {
        /// The limiter agrees with csv-core on where records are: with a generous limit it is
        /// transparent, with a tight one it keeps the record count and bounds every record.
        #[test]
        fn limiter_agrees_with_csv_core(
            bytes in proptest::collection::vec(prop::sample::select(b"ab,\"\r\n".to_vec()), 0..200),
            limit in 1usize..12,
            chunk in 1usize..9,
        ) {
            let expected = records(&bytes);
            let (out, starts, lines) = limited(&bytes, 1 << 20, chunk);
            prop_assert_eq!(&out, &bytes);
            prop_assert_eq!(starts, expected.len());
            let physical_lines = 1 + bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            prop_assert!(lines.windows(2).all(|w| w.first() <= w.last()));
            prop_assert!(lines.iter().all(|&l| (1..=physical_lines).contains(&l)));
            let (cut, starts, _) = limited(&bytes, limit, chunk);
            let cut_records = records(&cut);
            prop_assert_eq!(cut_records.len(), expected.len());
            prop_assert_eq!(starts, expected.len());
            // Field bytes are a subset of the bytes passed on, which stop at the limit.
            for record in cut_records {
                prop_assert!(record.concat().len() <= limit);
            }
        }
    }
}
