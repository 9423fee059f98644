//! The SQLite side of the embedded registry: opening a connection with the settings every
//! connection needs (WAL, busy timeout, foreign keys).

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
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
    // Query planner stability: without it SQLite 3.54 marks many of our statements to be
    // compiled again whenever a new value is bound (plans that could depend on a bound value:
    // partial indexes, integer comparisons, LIKE), so a cached statement was re-prepared on
    // nearly every execution: ~38 % of the server's CPU on the status route (perf,
    // `sqlite3Reprepare`). Our queries never rely on a bound value to pick an index.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sqlite_err(path, "enable query planner stability"))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::connect;
    use crate::registry::db::Db;

    /// A cached statement run again with new values must not be compiled again: the lookups a
    /// server repeats (a version by identifier, a version's files) on a migrated registry.
    #[test]
    fn repeated_lookups_are_not_prepared_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        let db = Db::sqlite(connect(&path).unwrap(), &path);
        crate::registry::schema::migrate(&db).unwrap();
        drop(db);
        let conn = connect(&path).unwrap();
        for (sql, values) in [
            (
                "SELECT v.id FROM versions v JOIN licences l ON l.id = v.licence_id
                 WHERE v.identifier = ?1 ORDER BY v.version",
                ["1.2.156.3005.2.A", "1.2.156.3005.2.B", "1.2.156.3005.2.C"],
            ),
            (
                "SELECT vf.kind, f.size FROM version_files vf
                 JOIN files f ON f.sha256 = vf.sha256 AND f.kind = vf.kind
                 WHERE vf.version_id = ?1 ORDER BY vf.kind",
                ["1", "2", "3"],
            ),
        ] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            for value in values {
                let value: rusqlite::types::Value = match value.parse::<i64>() {
                    Ok(n) => n.into(),
                    Err(_) => value.to_owned().into(),
                };
                assert_eq!(stmt.query_map([value], |_| Ok(())).unwrap().count(), 0);
            }
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
        }
    }
}
