//! Group commit of audit entries, for a server that answers many requests at once.
//!
//! Every answer of `elicence serve` appends an audit entry. Appended one transaction each, the
//! entries queue for the database's single writer (SQLite's write lock, PostgreSQL's advisory
//! lock) and each pays its own commit (a WAL `fsync` with `synchronous=FULL`): under load the
//! writers, not the reads, bound the server. An [`AuditQueue`] owns one connection and one
//! writer thread; connections attached to it ([`Registry::attach_audit_queue`]) hand their
//! entries to it instead of writing them, and the thread appends everything that arrived while
//! the previous commit ran in **one** transaction (one commit, one `fsync`).
//!
//! What stays as it was:
//! - **the chain**: the batch is appended inside one write transaction, each entry after the
//!   head as [`super::audit`] appends it, so the trail is one hash chain whatever else writes
//!   (other connections, other processes) and `elicence audit verify` checks it as before;
//! - **order**: entries are appended in the order they were handed over. A connection's own
//!   entries keep their order with its other writes too: before a connection with entries still
//!   in flight starts a write transaction, it waits until they are committed ([`Db::write`]);
//! - **durability before the answer**: handing an entry over gives an [`AuditReceipt`]; it
//!   resolves only after the transaction holding the entry has committed. The server awaits every
//!   receipt of a request before it sends the answer (or refusal), so no answer leaves before
//!   its audit entry is durable. If the commit fails, every entry of the batch fails and so do
//!   their requests (500): nothing is answered without its entry.
//!
//! What it changes: entries of concurrent requests are ordered by when they were handed over,
//! not by when each request began, as with any concurrent writers.

use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::audit::{self, AuditEntry};
use super::db::Db;
use super::{Registry, RegistryError};

/// Most entries one transaction appends; more wait for the next commit.
pub const MAX_BATCH: usize = 1024;

/// What the writer answers for one entry: its sequence number, or why the batch failed.
type Outcome = Result<u64, String>;

struct Job {
    entry: AuditEntry,
    done: oneshot::Sender<Outcome>,
}

/// The writer thread and the way to it. Dropping the queue lets the thread commit what was
/// handed over and waits for it.
pub struct AuditQueue {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The promise of one entry's commit; see the module docs.
#[must_use = "an audit entry is durable only once its receipt resolved"]
pub struct AuditReceipt {
    done: oneshot::Receiver<Outcome>,
}

impl AuditQueue {
    /// Starts the writer thread on `registry`'s connection (the queue's only one). Fails only
    /// when the thread cannot be started.
    pub fn start(registry: Registry) -> Result<AuditQueue, RegistryError> {
        let (jobs, incoming) = mpsc::channel::<Job>();
        let location = registry.db.location().to_path_buf();
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_batches(&registry.db, &incoming))
            .map_err(|source| RegistryError::Io {
                path: location,
                op: "start the audit writer thread",
                source,
            })?;
        Ok(AuditQueue { jobs: Mutex::new(Some(jobs)), writer: Mutex::new(Some(writer)) })
    }

    /// Hands `entry` to the writer; the receipt resolves once it is committed.
    pub(crate) fn submit(&self, entry: AuditEntry) -> AuditReceipt {
        let (done, receipt) = oneshot::channel();
        let jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A stopped writer drops the job, and with it `done`: the receipt reports the failure.
        if let Some(jobs) = jobs.as_ref() {
            let _ = jobs.send(Job { entry, done });
        }
        AuditReceipt { done: receipt }
    }
}

impl Drop for AuditQueue {
    fn drop(&mut self) {
        let jobs = self.jobs.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        drop(jobs);
        let writer = self.writer.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(writer) = writer.take() {
            let _ = writer.join();
        }
    }
}

impl AuditReceipt {
    /// Waits (async) until the entry is committed; its sequence number, or
    /// [`RegistryError::AuditNotRecorded`].
    pub async fn recorded(self) -> Result<u64, RegistryError> {
        outcome(self.done.await)
    }

    /// Waits, blocking the thread (not on an async worker), until the entry is committed.
    pub fn wait(self) -> Result<u64, RegistryError> {
        outcome(self.done.blocking_recv())
    }
}

fn outcome(received: Result<Outcome, oneshot::error::RecvError>) -> Result<u64, RegistryError> {
    match received {
        Ok(Ok(seq)) => Ok(seq),
        Ok(Err(reason)) => Err(RegistryError::AuditNotRecorded { reason }),
        Err(_) => {
            Err(RegistryError::AuditNotRecorded { reason: "the audit writer stopped".into() })
        }
    }
}

/// The writer thread: waits for an entry, takes whatever else arrived meanwhile (up to
/// [`MAX_BATCH`]), appends them all in one transaction and answers each. Ends when every
/// sender is gone and the channel is empty.
fn write_batches(db: &Db, incoming: &mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = incoming.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match incoming.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let appended = db.write("append audit entries", |tx| {
            let entries: Vec<&AuditEntry> = batch.iter().map(|j| &j.entry).collect();
            audit::append_all(tx, &entries)
        });
        match appended {
            Ok(seqs) => {
                for (job, seq) in batch.drain(..).zip(seqs) {
                    let _ = job.done.send(Ok(seq));
                }
            }
            Err(e) => {
                let reason = crate::logs::error_chain(&e);
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(reason.clone()));
                }
            }
        }
    }
}
