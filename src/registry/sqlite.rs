//! The SQLite side of the embedded registry: opening a connection with the settings every
//! connection needs (WAL, busy timeout, foreign keys).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::RegistryError;
use super::db::sqlite_err;

/// How long a statement waits for another connection's write lock before failing.
pub(crate) const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// Opens (creating) the database file and applies the per-connection settings. WAL lets readers
/// (a backup, a verify) proceed while a run writes.
pub(crate) fn connect(path: &Path) -> Result<Connection, RegistryError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(sqlite_err(path, "open database"))?;
    conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(sqlite_err(path, "set busy timeout"))?;
    // The first statement that reads the file: garbage bytes fail here with "not a database".
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sqlite_err(path, "switch to WAL journal"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(RegistryError::NotARegistry {
            path: path.to_path_buf(),
            reason: format!("journal mode stays {mode:?}, expected wal"),
        });
    }
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sqlite_err(path, "enable foreign keys"))?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite_err(path, "set synchronous"))?;
    // Every statement goes through `prepare_cached`; rusqlite keeps 16 by default, fewer than a
    // server connection uses across its routes, so they were compiled again and again.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}
