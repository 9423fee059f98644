//! Registry connections for the server. The registry is blocking (rusqlite, the sync
//! `postgres` client): every use goes through [`RegistryPool::with_deferred`] inside
//! `spawn_blocking` (`routes::with_registry`), so no database call ever runs on an async
//! worker.
//!
//! The pool holds at most [`RegistryPool::size`] connections and lends each to one request at
//! a time: a handler first takes a permit ([`RegistryPool::permit`], async, so waiting costs no
//! thread), then a connection that is always idle by then. Connections are opened once (opening
//! one runs the migration check and loads the field key) and kept; under load none is opened or
//! closed. Every connection hands its audit entries to one [`AuditQueue`], which commits them
//! in groups; the handler awaits their receipts after giving the connection back, so a request
//! waiting for its entry's commit holds neither a connection nor a thread.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::registry::{AuditQueue, AuditReceipt, Registry, RegistryError};

/// Connections per core when no size is given: reads wait for the disk and for the mutexes of
/// SQLite's page cache, so a few more than cores keeps both cores busy.
const CONNECTIONS_PER_CORE: usize = 4;

/// Opens registry connections up to a bound and keeps them.
pub struct RegistryPool {
    data: PathBuf,
    location: Option<String>,
    store: Option<String>,
    idle: Mutex<Vec<Registry>>,
    permits: Semaphore,
    size: usize,
    audit: Arc<AuditQueue>,
}

impl RegistryPool {
    /// Opens the first connection (migrations run once, and an unreachable registry fails
    /// here) and the audit queue's own. `size`: connections at most (`None`: four per core).
    pub fn open(
        data: PathBuf,
        location: Option<String>,
        store: Option<String>,
        size: Option<usize>,
    ) -> Result<RegistryPool, RegistryError> {
        let mut first = Registry::open_with(&data, location.as_deref(), store.as_deref())?;
        let writer = Registry::open_with(&data, location.as_deref(), store.as_deref())?;
        let audit = Arc::new(AuditQueue::start(writer)?);
        first.attach_audit_queue(audit.clone());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let size = size.unwrap_or(CONNECTIONS_PER_CORE * cores).max(1);
        Ok(RegistryPool {
            data,
            location,
            store,
            idle: Mutex::new(vec![first]),
            permits: Semaphore::new(size),
            size,
            audit,
        })
    }

    /// Connections the pool opens at most.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Waits for a connection to be free; hold the permit while using one.
    pub async fn permit(&self) -> SemaphorePermit<'_> {
        // The semaphore is never closed, so acquiring cannot fail.
        loop {
            if let Ok(p) = self.permits.acquire().await {
                return p;
            }
        }
    }

    /// Runs `f` with a connection on the current (blocking) thread and waits until its audit
    /// entries are committed (for work outside request handlers, such as start-up).
    pub fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> Result<T, RegistryError> {
        let (out, receipts) = self.with_deferred(f)?;
        for receipt in receipts {
            receipt.wait()?;
        }
        Ok(out)
    }

    /// Runs `f` with a connection on the current (blocking) thread and gives the connection
    /// back; returns `f`'s result with the receipts of the audit entries it handed over, which
    /// the caller must await before reporting anything those entries record.
    pub fn with_deferred<T>(
        &self,
        f: impl FnOnce(&mut Registry) -> T,
    ) -> Result<(T, Vec<AuditReceipt>), RegistryError> {
        let taken = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut registry = match taken {
            Some(r) => r,
            None => {
                let mut r = Registry::open_with(
                    &self.data,
                    self.location.as_deref(),
                    self.store.as_deref(),
                )?;
                r.attach_audit_queue(self.audit.clone());
                r
            }
        };
        let out = f(&mut registry);
        let receipts = registry.take_audit_receipts();
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.size {
            idle.push(registry);
        }
        Ok((out, receipts))
    }
}
