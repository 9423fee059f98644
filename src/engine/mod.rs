//! Engine: owns a run. It streams exports through read → normalise → validate in bounded
//! chunks, finds duplicates in input order, and for `elicence run` decides each chunk against
//! the registry, produces (renders and signs) the new versions on all cores and commits the
//! chunk on a loader thread, while the next chunk is being produced. Memory stays flat however
//! large the input is, and a run killed at any point and started again ends with the same
//! registry.
//!
//! - [`stream`]: one input → [`Outcome`]s in order, through a [`RowSink`] (`validate`, `render`
//!   and the run all sink rows this way).
//! - [`dedupe`]: rows equal to an earlier row of the run.
//! - [`run`]: the whole `run` job: everything checked before any effect, then the inputs
//!   scheduled chunk by chunk ([`schedule`]) and committed ([`loader`]).
//! - [`checkpoint`]: the signed transparency log checkpoint each run ends with.
//! - [`dry_run`]: `run --dry-run`: decide every row against the registry, load nothing.
//! - [`shard`]: which rows one process of a `--shard K/N` run keeps.
//! - [`approve`]: `review approve`: staged rows decided again, signed and committed in chunks.
//! - [`review`]: `review show`: a staged item with its differences from the version it changes.

pub mod approve;
pub mod checkpoint;
pub mod dedupe;
pub mod dry_run;
mod loader;
pub mod review;
pub mod run;
mod schedule;
pub mod shard;
pub mod stream;

pub use checkpoint::{CheckpointWritten, write_checkpoint};
pub use dedupe::Dedupe;
pub use dry_run::{DryRunReport, DryRunResult};
pub use run::{CatalogNotPublished, RunOptions, RunReport, RunResult};
pub use schedule::production_pool;
pub use shard::Shard;
pub use stream::{CHUNK_BATCHES, EngineError, Outcome, RowSink, validate_input};
