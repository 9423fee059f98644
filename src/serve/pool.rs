//! Registry connections for the server. The registry is blocking (rusqlite, the sync
//! `postgres` client): every use goes through [`RegistryPool::with`] inside `spawn_blocking`
//! (`routes::with_registry`), which takes an idle connection (or opens one) on tokio's blocking
//! thread pool, so no database call ever runs on
//! an async worker. Idle connections are kept up to [`MAX_IDLE`].

use std::path::PathBuf;
use std::sync::Mutex;

use crate::registry::{Registry, RegistryError};

/// Idle connections kept for reuse.
pub const MAX_IDLE: usize = 8;

/// Opens registry connections on demand and keeps a few idle ones.
pub struct RegistryPool {
    data: PathBuf,
    location: Option<String>,
    store: Option<String>,
    idle: Mutex<Vec<Registry>>,
}

impl RegistryPool {
    pub fn new(data: PathBuf, location: Option<String>, store: Option<String>) -> RegistryPool {
        RegistryPool { data, location, store, idle: Mutex::new(Vec::new()) }
    }

    /// Runs `f` with a connection on the current (blocking) thread.
    pub fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> Result<T, RegistryError> {
        let taken = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut registry = match taken {
            Some(r) => r,
            None => {
                Registry::open_with(&self.data, self.location.as_deref(), self.store.as_deref())?
            }
        };
        let out = f(&mut registry);
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(registry);
        }
        Ok(out)
    }
}
