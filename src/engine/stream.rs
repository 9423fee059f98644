//! Streams one export through read → normalise → validate in bounded chunks. A reader thread
//! fills chunks of [`Batch`]es (for CSV: blocks of raw bytes cut at record ends); a validator
//! thread turns each batch into records and checks them, batch by batch on all cores (rayon),
//! while the caller's sink consumes the previous chunks in input order, so duplicates are found
//! in order, the stages overlap, parsing and decoding spread over the cores, and memory stays
//! flat however large the input is.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::pipeline::Plan;
use crate::read::{self, Batch, ReadError};
use crate::record::SourcePos;
use crate::report::{Counts, InputSummary, StageTimes};
use crate::validate::{RowOutcome, RowReject, ValidRow, Validator};

use super::dedupe::Dedupe;

/// Batches per chunk (a CSV block is about 256 KiB, a workbook batch 256 rows): enough for
/// every core of two to take two, so that the wait for the slowest batch at the end of a
/// chunk stays small, and few enough to keep memory flat (a chunk's checked rows take about
/// 10 MB; with 8 batches a chunk, a 10-million-row validate peaked 30 MB higher).
pub const CHUNK_BATCHES: usize = 4;
/// Chunks in flight between the reader and the validators.
const CHUNKS_IN_FLIGHT: usize = 2;
/// Most rows the de-duplication table is sized for up front (≈ 800 MB of table); beyond this it
/// grows as rows arrive.
const MAX_RESERVE_ROWS: f64 = 40_000_000.0;

/// What became of one row, in input order.
pub enum Outcome {
    Valid(Box<ValidRow>),
    Duplicate { pos: SourcePos, first: SourcePos },
    Rejected(RowReject),
}

/// Receives what the engine produces for one input, in order.
pub trait RowSink {
    /// The export's header cells, once, before any row.
    fn headers(&mut self, headers: &[String]) -> anyhow::Result<()>;
    /// One row's outcome.
    fn row(&mut self, outcome: Outcome) -> anyhow::Result<()>;
    /// False when the sink does nothing with a valid row (a `validate` writing no files): the
    /// engine then checks rows without building their licences (the same rules and content
    /// key; the licence's allocations were a fifth of a validate run's CPU, most of it in
    /// freeing them on this thread) and hands [`RowSink::row`] only duplicates and rejects.
    fn keeps_valid_rows(&self) -> bool {
        true
    }
    /// True when the sink wants no more rows (e.g. `--limit` reached): reading stops early.
    fn done(&self) -> bool {
        false
    }
    /// After each chunk: how much of the input has been read (0.0 to 1.0), when the format can
    /// tell. For progress only.
    fn read_fraction(&mut self, _fraction: f64) {}
}

/// Why an input could not be processed to the end.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Read(#[from] ReadError),
    #[error("{file}: header row {row} lacks the column(s) {}", missing.join(", "))]
    MissingColumns { file: String, row: u64, missing: Vec<String> },
    /// A pipeline column is present under two of its names (header and alias): which one holds
    /// the data is a question for whoever writes the pipeline, so it is a configuration error.
    #[error(
        "{file}: header row {row} holds one pipeline column under several names: {}; \
         keep one, or drop the other from the column's aliases",
        ambiguous.iter().map(|names| names.join(" and ")).collect::<Vec<_>>().join("; ")
    )]
    AmbiguousColumns { file: String, row: u64, ambiguous: Vec<Vec<String>> },
    #[error("cannot read {file}: {source}")]
    Unreadable {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Sink(#[from] anyhow::Error),
}

impl EngineError {
    /// True for an error of the pipeline rather than of the input (exit 3, not 4).
    pub fn is_configuration(&self) -> bool {
        matches!(self, EngineError::AmbiguousColumns { .. })
    }
}

/// Batches read, and how much of the input was read once they were.
type Chunk = (Vec<Batch>, Option<f64>);
/// Per batch: its rows checked, in order, and its blank rows.
type Checked = (Vec<(Vec<Result<CheckedRow, ReadError>>, u64)>, Option<f64>);

/// One row checked: its outcome, or only the content key and position of a valid row whose
/// licence the sink does not keep ([`RowSink::keeps_valid_rows`]).
enum CheckedRow {
    Outcome(RowOutcome),
    ValidKey([u8; 16], SourcePos),
}

/// Reads and validates one input, handing the header cells and then every row, in order, to
/// `sink`. Returns the input's summary (without its hash).
///
/// Three stages overlap: a reader thread fills chunks of records; a validator thread checks each
/// chunk on all of `pool`'s threads; the calling thread runs the de-duplication and the sink on
/// the checked chunks, in input order. The calling thread must not be one of `pool`'s workers
/// (it blocks on the hand-off); the sink may itself use `pool` (e.g. to render).
pub fn validate_input(
    plan: &Plan,
    path: &Path,
    today: NaiveDate,
    pool: &rayon::ThreadPool,
    dedupe: &mut Dedupe,
    sink: &mut dyn RowSink,
) -> Result<InputSummary, EngineError> {
    let mut source = read::open(path, &plan.source_spec())?;
    let header_row = source.header_row();
    let binding = plan.bind(source.headers()).map_err(|problems| {
        let file = path.display().to_string();
        if problems.ambiguous.is_empty() {
            EngineError::MissingColumns { file, row: header_row, missing: problems.missing }
        } else {
            EngineError::AmbiguousColumns { file, row: header_row, ambiguous: problems.ambiguous }
        }
    })?;
    sink.headers(source.headers())?;
    let encoding = source.encoding_used().to_string();
    let validator = Validator::new(plan, binding, today);
    let keep_valid = sink.keeps_valid_rows();

    let (read_tx, read_rx) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let (checked_tx, checked_rx) = mpsc::sync_channel::<Checked>(CHUNKS_IN_FLIGHT);
    let mut counts = Counts::default();
    let mut fatal: Option<ReadError> = None;
    let mut stages = StageTimes::default();
    let blank = std::thread::scope(|scope| -> Result<u64, EngineError> {
        let reader = scope.spawn(move || {
            let mut busy = Duration::ZERO;
            let mut started = Instant::now();
            let mut chunk = Vec::with_capacity(CHUNK_BATCHES);
            while let Some(batch) = source.next_batch() {
                chunk.push(batch);
                if chunk.len() == CHUNK_BATCHES {
                    busy += started.elapsed();
                    let next = Vec::with_capacity(CHUNK_BATCHES);
                    let batches = std::mem::replace(&mut chunk, next);
                    if read_tx.send((batches, source.fraction_read())).is_err() {
                        return (source.blank_rows_skipped(), busy);
                    }
                    started = Instant::now();
                }
            }
            busy += started.elapsed();
            if !chunk.is_empty() {
                let _ = read_tx.send((chunk, source.fraction_read()));
            }
            (source.blank_rows_skipped(), busy)
        });
        let validator = &validator;
        let validating = scope.spawn(move || {
            let mut busy = Duration::ZERO;
            for (chunk, fraction) in read_rx {
                let started = Instant::now();
                let checked: Vec<_> = pool.install(|| {
                    chunk
                        .into_par_iter()
                        .map(|batch| {
                            let read = batch.records();
                            let rows = read
                                .records
                                .into_iter()
                                .map(|item| match item {
                                    Ok(rec) if keep_valid => {
                                        Ok(CheckedRow::Outcome(validator.check(rec)))
                                    }
                                    Ok(rec) => Ok(match validator.check_key(&rec) {
                                        Ok((key, pos)) => CheckedRow::ValidKey(key, pos),
                                        Err(r) => CheckedRow::Outcome(RowOutcome::Rejected(r)),
                                    }),
                                    Err(e) if e.is_fatal() => Err(e),
                                    Err(e) => Ok(CheckedRow::Outcome(RowOutcome::Rejected(
                                        RowReject::unreadable(&e),
                                    ))),
                                })
                                .collect();
                            (rows, read.blank_rows)
                        })
                        .collect()
                });
                busy += started.elapsed();
                if checked_tx.send((checked, fraction)).is_err() {
                    // The sink stopped (limit, Ctrl-C or an error): dropping `read_rx` stops the
                    // reader too.
                    break;
                }
            }
            busy
        });
        let mut reserved = false;
        let mut blank_in_batches = 0;
        'chunks: for (checked, fraction) in checked_rx {
            for outcome in checked.into_iter().flat_map(|(rows, blank)| {
                blank_in_batches += blank;
                rows
            }) {
                let outcome = match outcome {
                    Ok(o) => o,
                    Err(e) => {
                        fatal = Some(e);
                        break 'chunks;
                    }
                };
                counts.read += 1;
                match outcome {
                    CheckedRow::ValidKey(key, pos) => match dedupe.check(key, &pos) {
                        Some(first) => {
                            counts.duplicates += 1;
                            sink.row(Outcome::Duplicate { pos, first })?;
                        }
                        None => counts.valid += 1,
                    },
                    CheckedRow::Outcome(RowOutcome::Valid(row)) => {
                        match dedupe.check(row.content_key, &row.licence.pos) {
                            Some(first) => {
                                counts.duplicates += 1;
                                let pos = row.licence.pos.clone();
                                sink.row(Outcome::Duplicate { pos, first })?;
                            }
                            None => {
                                counts.valid += 1;
                                sink.row(Outcome::Valid(row))?;
                            }
                        }
                    }
                    CheckedRow::Outcome(RowOutcome::Rejected(r)) => {
                        counts.rejected += 1;
                        sink.row(Outcome::Rejected(r))?;
                    }
                }
            }
            if let Some(f) = fraction {
                sink.read_fraction(f);
                // Size the de-duplication table once, from the first chunk's share of the
                // input, instead of growing it as rows arrive (see `Dedupe::reserve`). No
                // margin: rejects and duplicates take no slot, and a shard that fills up
                // grows alone.
                if !reserved && f > 0.0 && f < 1.0 {
                    reserved = true;
                    let expected = counts.read as f64 / f;
                    dedupe.reserve(expected.min(MAX_RESERVE_ROWS) as usize);
                }
            }
            if sink.done() {
                break;
            }
        }
        let (blank, read) = reader.join().unwrap_or_default();
        let blank = blank + blank_in_batches;
        stages.read_s = read.as_secs_f64();
        stages.validate_s = validating.join().unwrap_or_default().as_secs_f64();
        Ok(blank)
    })?;
    if let Some(e) = fatal {
        return Err(EngineError::Read(e));
    }
    Ok(InputSummary {
        file: path.display().to_string(),
        encoding,
        header_row,
        blank_rows_skipped: blank,
        counts,
        stages,
        ..InputSummary::default()
    })
}
