//! Column encodings shared by both backends: times as RFC 3339 UTC text (microseconds, `Z`,
//! so they sort as text), dates as `YYYY-MM-DD`, hashes as lower-case hex, counts as signed
//! 64-bit integers; and the typed column readers that turn a hand-edited value into a
//! [`ColumnError`] naming the column.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::db::{ColumnError, Row};

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

/// A non-negative integer column read back as u64; a negative value (a hand edit) is an error
/// naming the column.
pub(crate) fn get_u64(row: &Row, idx: usize) -> Result<u64, ColumnError> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| ColumnError::new(idx, e.to_string()))
}

/// A version column (1..=999) read back as u16.
pub(crate) fn get_u16(row: &Row, idx: usize) -> Result<u16, ColumnError> {
    let v: i64 = row.get(idx)?;
    u16::try_from(v).map_err(|e| ColumnError::new(idx, e.to_string()))
}

/// A 16-byte content hash stored as 32 hex digits.
pub(crate) fn get_hash16(row: &Row, idx: usize) -> Result<[u8; 16], ColumnError> {
    let text: String = row.get(idx)?;
    let mut out = [0u8; 16];
    hex::decode_to_slice(&text, &mut out).map_err(|e| ColumnError::new(idx, e.to_string()))?;
    Ok(out)
}

/// A time column read back; edited text is an error.
pub(crate) fn get_time(row: &Row, idx: usize) -> Result<DateTime<Utc>, ColumnError> {
    let text: String = row.get(idx)?;
    parse_time(&text)
        .ok_or_else(|| ColumnError::new(idx, format!("not an RFC 3339 time: {text:?}")))
}

pub(crate) fn get_opt_time(row: &Row, idx: usize) -> Result<Option<DateTime<Utc>>, ColumnError> {
    let text: Option<String> = row.get(idx)?;
    match text {
        None => Ok(None),
        Some(_) => get_time(row, idx).map(Some),
    }
}

pub(crate) fn get_date(row: &Row, idx: usize) -> Result<NaiveDate, ColumnError> {
    get_opt_date(row, idx)?.ok_or_else(|| ColumnError::new(idx, "NULL where a date must be"))
}

pub(crate) fn get_opt_date(row: &Row, idx: usize) -> Result<Option<NaiveDate>, ColumnError> {
    let text: Option<String> = row.get(idx)?;
    match text {
        None => Ok(None),
        Some(t) => parse_date(&t)
            .map(Some)
            .ok_or_else(|| ColumnError::new(idx, format!("not a YYYY-MM-DD date: {t:?}"))),
    }
}
