//! The SQLite side of the embedded registry: opening a connection with the settings every
//! connection needs (WAL, busy timeout, foreign keys), turning SQLite errors into
//! [`RegistryError`]s that name the database file and the operation, one-transaction helpers,
//! and the column encodings (times as RFC 3339 UTC text, dates as `YYYY-MM-DD`, hashes as
//! lower-case hex).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use super::RegistryError;

/// How long a statement waits for another connection's write lock before failing.
pub(crate) const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Maps a SQLite error to a [`RegistryError`] naming the database file and what was being done:
/// a lock held too long becomes [`RegistryError::Locked`], a file that is not a database or is
/// damaged becomes [`RegistryError::Corrupt`].
pub(crate) fn db_err(
    path: &Path,
    op: &'static str,
) -> impl FnOnce(rusqlite::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            RegistryError::Locked { path, op, source }
        }
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            RegistryError::Corrupt { path, op, source }
        }
        _ => RegistryError::Sqlite { path, op, source },
    }
}

/// Opens (creating) the database file and applies the per-connection settings. WAL lets readers
/// (a backup, a verify) proceed while a run writes.
pub(crate) fn connect(path: &Path) -> Result<Connection, RegistryError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err(path, "open database"))?;
    conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(db_err(path, "set busy timeout"))?;
    // The first statement that reads the file: garbage bytes fail here with "not a database".
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(db_err(path, "switch to WAL journal"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(RegistryError::NotARegistry {
            path: path.to_path_buf(),
            reason: format!("journal mode stays {mode:?}, expected wal"),
        });
    }
    conn.pragma_update(None, "foreign_keys", true).map_err(db_err(path, "enable foreign keys"))?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(db_err(path, "set synchronous"))?;
    Ok(conn)
}

/// Runs `f` inside one `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two
/// writers queue instead of deadlocking on a lock upgrade) and commits; any error rolls back.
pub(crate) fn immediate<T>(
    conn: &Connection,
    path: &Path,
    op: &'static str,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, RegistryError>,
) -> Result<T, RegistryError> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(db_err(path, op))?;
    let value = f(&tx)?;
    tx.commit().map_err(db_err(path, op))?;
    Ok(value)
}

/// A time as stored: RFC 3339, UTC, microseconds, `Z` (sorts as text).
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A stored time read back; `None` when the text was edited into something else.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// A date as stored.
pub(crate) fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A count for an INTEGER column (SQLite integers are signed 64-bit).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A non-negative INTEGER column read back as u64; a negative value (a hand edit) is a
/// conversion error naming the column.
pub(crate) fn get_u64(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(e))
    })
}

/// A version column (1..=999) read back as u16.
pub(crate) fn get_u16(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u16> {
    let v: i64 = row.get(idx)?;
    u16::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(e))
    })
}

/// A 16-byte content hash stored as 32 hex digits.
pub(crate) fn get_hash16(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<[u8; 16]> {
    let text: String = row.get(idx)?;
    let mut out = [0u8; 16];
    hex::decode_to_slice(&text, &mut out).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(out)
}

/// A time column read back; edited text is a conversion error.
pub(crate) fn get_time(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(idx)?;
    parse_time(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("not an RFC 3339 time: {text:?}").into(),
        )
    })
}

pub(crate) fn get_opt_time(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(idx)?;
    match text {
        None => Ok(None),
        Some(_) => get_time(row, idx).map(Some),
    }
}

pub(crate) fn get_opt_date(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<NaiveDate>> {
    let text: Option<String> = row.get(idx)?;
    match text {
        None => Ok(None),
        Some(t) => parse_date(&t).map(Some).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                idx,
                rusqlite::types::Type::Text,
                format!("not a YYYY-MM-DD date: {t:?}").into(),
            )
        }),
    }
}
