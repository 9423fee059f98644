//! The load stage of a run on its own thread, so that committing chunk k (writing its
//! files to the store, one durability barrier, one transaction) overlaps with deciding,
//! rendering and signing chunk k+1 on the other threads.
//!
//! The loader has its own registry connection and commits chunks in the order it receives them.
//! Every chunk comes back as a [`ChunkOutcome`], in order; the run's counts and output files are kept
//! by the sender, which never decides a chunk that touches a licence (or, for single-instance
//! types, a holder) of a chunk still in flight.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::registry::{
    LoadItem, LoadResult, Registry, RegistryError, RejectRecord, RunId, StageItem,
};
use crate::validate::{RowReject, ValidRow};

/// A decided, rendered and signed chunk on its way to the registry.
pub(super) struct DecidedChunk {
    /// One per accepted row, in input order.
    pub items: Vec<LoadItem>,
    /// Rejects found since the previous chunk (recorded whatever becomes of `items`).
    pub rejects: Vec<RejectRecord>,
    /// Every valid row of the chunk, in input order (to decide again when the chunk is stale).
    pub rows: Vec<ValidRow>,
    /// Indices into `rows` of the rows in `items`.
    pub accepted: Vec<usize>,
    /// Rows refused while deciding or rendering: rejects once the chunk is committed.
    pub late: Vec<RowReject>,
    /// New versions rendered and signed.
    pub signed: u64,
    /// How often this chunk was decided already.
    pub attempt: u32,
    /// Stage `items` for review (their `pdf` is the unsigned preview) instead of committing.
    pub review: bool,
    /// For review: each item's validated licence as JSON ([`crate::licence::Licence::to_json`]).
    pub licences: Vec<String>,
}

/// What became of a decided chunk.
pub(super) enum ChunkOutcome {
    Committed {
        chunk: DecidedChunk,
        results: Vec<LoadResult>,
        seconds: f64,
        /// CPU time of the loader thread for this chunk.
        cpu_seconds: f64,
    },
    /// Another process changed the same licences between decision and commit: decide again.
    Stale {
        chunk: DecidedChunk,
    },
    Failed(anyhow::Error),
}

/// The sending side of the load stage.
pub(super) struct Loader<'scope> {
    chunks: Option<SyncSender<DecidedChunk>>,
    done: Receiver<ChunkOutcome>,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
    /// Chunks sent and not yet returned.
    pub in_flight: usize,
}

impl<'scope> Loader<'scope> {
    /// Opens a second connection to the registry (`location`, else the SQLite file in `data`;
    /// `store`, else `data/store`; chunks packed into segments with `pack_segments`, by default
    /// when the store is a bucket) and starts the loader thread.
    pub fn spawn<'env>(
        scope: &'scope Scope<'scope, 'env>,
        data: &'env Path,
        location: Option<&str>,
        store: Option<&str>,
        run: RunId,
        operator: &'env str,
        at: DateTime<Utc>,
        pack_segments: Option<bool>,
    ) -> Result<Loader<'scope>, RegistryError> {
        let mut registry = Registry::open_with(data, location, store)?;
        // A bucket by default: one PUT per chunk instead of three per licence (BENCHMARKS.md,
        // session 13: 60–64 % of the folder's rate without, 95–99 % with).
        let in_bucket = registry.store().folder().is_none();
        registry.set_pack_segments(pack_segments.unwrap_or(in_bucket));
        // A rendezvous: the next chunk is handed over when the loader takes it, so at most two
        // chunks' files are held (one committing, one produced and waiting), not three. The
        // loader needs less than half the producers' time a chunk, so it rarely keeps them
        // waiting (BENCHMARKS.md, session 16: the memory of a run with the OFD).
        let (chunks_tx, chunks_rx) = mpsc::sync_channel::<DecidedChunk>(0);
        let (done_tx, done_rx) = mpsc::channel::<ChunkOutcome>();
        // Named, so that a profile (`perf report --comm elicence-loader`) can tell it apart.
        let thread = std::thread::Builder::new()
            .name("elicence-loader".into())
            .spawn_scoped(scope, move || {
                for chunk in chunks_rx {
                    let done = commit(&mut registry, run, operator, at, chunk);
                    let failed = matches!(done, ChunkOutcome::Failed(_));
                    if done_tx.send(done).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|source| RegistryError::Io {
                path: data.to_path_buf(),
                op: "start the loader thread",
                source,
            })?;
        Ok(Loader { chunks: Some(chunks_tx), done: done_rx, thread: Some(thread), in_flight: 0 })
    }

    /// Hands a chunk to the loader; blocks until the loader takes it.
    pub fn send(&mut self, chunk: DecidedChunk) -> anyhow::Result<()> {
        let sent = self.chunks.as_ref().map(|tx| tx.send(chunk).is_ok()).unwrap_or(false);
        if !sent {
            return Err(self.failure());
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The next finished chunk: waits for it when `wait`, else only if one is ready.
    pub fn next(&mut self, wait: bool) -> anyhow::Result<Option<ChunkOutcome>> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        let done = if wait {
            self.done.recv().map_err(|_| self.failure())?
        } else {
            match self.done.try_recv() {
                Ok(d) => d,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(self.failure()),
            }
        };
        self.in_flight -= 1;
        Ok(Some(done))
    }

    /// Stops the loader thread once its queue is empty.
    pub fn close(&mut self) {
        self.chunks = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn failure(&self) -> anyhow::Error {
        anyhow::anyhow!("the load stage stopped unexpectedly")
    }
}

impl Drop for Loader<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

fn commit(
    registry: &mut Registry,
    run: RunId,
    operator: &str,
    at: DateTime<Utc>,
    mut chunk: DecidedChunk,
) -> ChunkOutcome {
    let started = Instant::now();
    let cpu_started = thread_cpu_seconds();
    if !chunk.rejects.is_empty() {
        if let Err(e) = registry.record_rejects(run, &chunk.rejects) {
            return ChunkOutcome::Failed(e.into());
        }
        chunk.rejects.clear();
    }
    if chunk.items.is_empty() {
        return ChunkOutcome::Committed {
            chunk,
            results: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: thread_cpu_seconds() - cpu_started,
        };
    }
    let items = std::mem::take(&mut chunk.items);
    let committed = if chunk.review {
        let staged = items
            .into_iter()
            .zip(std::mem::take(&mut chunk.licences))
            .map(|(item, licence_json)| StageItem { item, licence_json })
            .collect();
        registry.stage_chunk(run, staged, operator, at)
    } else {
        registry.commit_chunk(run, items, operator, at)
    };
    match committed {
        Ok(results) => ChunkOutcome::Committed {
            chunk,
            results,
            seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: thread_cpu_seconds() - cpu_started,
        },
        Err(RegistryError::StaleDecision(_)) => ChunkOutcome::Stale { chunk },
        Err(e) => ChunkOutcome::Failed(e.into()),
    }
}

/// CPU time consumed so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`), in seconds.
fn thread_cpu_seconds() -> f64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
