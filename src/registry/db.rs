//! The database seam: one small interface over the two registry backends, so that the
//! lifecycle, audit, sharing and query code is written once.
//!
//! - SQLite (the embedded default): one file, `BEGIN IMMEDIATE` write transactions.
//! - PostgreSQL (scale-out): the sync `postgres` client; every write transaction first takes
//!   the transaction-scoped advisory lock [`WRITE_LOCK`], so writers queue exactly as SQLite
//!   writers do. That keeps the audit trail one hash chain (each append reads the head and
//!   writes after it) and makes the re-decision inside `commit_chunk` see every earlier commit
//!   (READ COMMITTED: each statement after the lock sees what committed before it). The unique
//!   constraints (natural key, (licence, version), identifier, one current version) stay the
//!   truth underneath: a writer that skipped the lock would fail on them, not duplicate.
//!
//! SQL is written once in the dialect both accept, with `?N` placeholders; for PostgreSQL they
//! are rewritten to `$N` (and prepared statements are cached per SQL text). Values cross the
//! seam as [`Val`] (NULL, 64-bit integer, text, boolean): the schema stores times and dates as
//! text and hashes as hex text in both backends, so no other type is needed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode};

use super::RegistryError;

/// The advisory lock key every PostgreSQL write transaction takes ("elicence" in ASCII).
pub(crate) const WRITE_LOCK: i64 = 0x656c_6963_656e_6365;

/// A value crossing the seam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u16> for Val {
    fn from(v: u16) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<u64> for Val {
    /// Counts and sequence numbers; saturates at `i64::MAX` (SQL integers are signed 64-bit).
    fn from(v: u64) -> Val {
        Val::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Bool(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}
impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Val {
        v.as_deref().map_or(Val::Null, Val::from)
    }
}

/// `[Val]` from a list of expressions: `vals![a, b.as_str(), 3i64]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { [$($crate::registry::db::Val::from($v)),*] };
}
pub(crate) use vals;

/// A column that does not hold what the code expects (a hand edit, or a bug).
#[derive(Debug)]
pub(crate) struct ColumnError {
    pub column: usize,
    pub reason: String,
}

impl ColumnError {
    pub(crate) fn new(column: usize, reason: impl Into<String>) -> ColumnError {
        ColumnError { column, reason: reason.into() }
    }
}

/// Converts one column value.
pub(crate) trait FromVal: Sized {
    fn from_val(v: &Val, column: usize) -> Result<Self, ColumnError>;
}

impl FromVal for i64 {
    fn from_val(v: &Val, column: usize) -> Result<i64, ColumnError> {
        match v {
            Val::Int(i) => Ok(*i),
            Val::Bool(b) => Ok(i64::from(*b)),
            other => Err(ColumnError::new(column, format!("expected an integer, found {other:?}"))),
        }
    }
}
impl FromVal for bool {
    fn from_val(v: &Val, column: usize) -> Result<bool, ColumnError> {
        match v {
            Val::Bool(b) => Ok(*b),
            Val::Int(i) => Ok(*i != 0),
            other => Err(ColumnError::new(column, format!("expected a boolean, found {other:?}"))),
        }
    }
}
impl FromVal for String {
    fn from_val(v: &Val, column: usize) -> Result<String, ColumnError> {
        match v {
            Val::Text(s) => Ok(s.clone()),
            other => Err(ColumnError::new(column, format!("expected text, found {other:?}"))),
        }
    }
}
impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Val, column: usize) -> Result<Option<T>, ColumnError> {
        match v {
            Val::Null => Ok(None),
            v => T::from_val(v, column).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug)]
pub(crate) struct Row(Vec<Val>);

impl Row {
    /// Column `idx` converted to `T`.
    pub(crate) fn get<T: FromVal>(&self, idx: usize) -> Result<T, ColumnError> {
        let v = self.0.get(idx).ok_or_else(|| ColumnError::new(idx, "no such column"))?;
        T::from_val(v, idx)
    }

    /// The raw values (for copying a table as it is).
    pub(crate) fn values(&self) -> &[Val] {
        &self.0
    }
}

/// Which backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

enum Backend {
    Sqlite(Connection),
    /// Boxed: the client is large and there is one per registry handle.
    Postgres(Box<RefCell<PgConn>>),
}

struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

/// A registry database connection with the location errors name: the SQLite file, or the
/// PostgreSQL URL without its password.
pub(crate) struct Db {
    backend: Backend,
    location: PathBuf,
    /// The registry's field key, once loaded (see `secrets`): what seals and opens holders'
    /// data and makes the keyed hashes, inside transactions too.
    field_keys: Option<std::sync::Arc<super::secrets::FieldKeys>>,
    /// Where audit entries go instead of their own transaction (a server's connections; see
    /// `audit_queue`), and the receipts of entries handed over and not yet waited for.
    audit_queue: Option<std::sync::Arc<super::audit_queue::AuditQueue>>,
    audit_pending: RefCell<Vec<super::audit_queue::AuditReceipt>>,
}

impl Db {
    pub(crate) fn sqlite(conn: Connection, path: &Path) -> Db {
        Db {
            backend: Backend::Sqlite(conn),
            location: path.to_path_buf(),
            field_keys: None,
            audit_queue: None,
            audit_pending: RefCell::new(Vec::new()),
        }
    }

    /// Connects to PostgreSQL at `url`, as libpq would (environment, password file, TLS by
    /// `sslmode`: see [`super::pg_connect`]). `location` is what errors name.
    pub(crate) fn postgres(url: &str, location: &Path) -> Result<Db, RegistryError> {
        let client = super::pg_connect::connect(url).map_err(|source| {
            RegistryError::PgConnect { location: location.to_path_buf(), source }
        })?;
        Ok(Db {
            backend: Backend::Postgres(Box::new(RefCell::new(PgConn {
                client,
                statements: HashMap::new(),
            }))),
            location: location.to_path_buf(),
            field_keys: None,
            audit_queue: None,
            audit_pending: RefCell::new(Vec::new()),
        })
    }

    /// Sets the field key the registry seals and opens holders' data with.
    pub(crate) fn set_field_keys(&mut self, keys: std::sync::Arc<super::secrets::FieldKeys>) {
        self.field_keys = Some(keys);
    }

    /// The registry's field key. Fails with [`RegistryError::FieldKey`] when none is loaded
    /// (a database opened without [`super::Registry::open_at`], a bug).
    pub(crate) fn field_keys(&self) -> Result<&super::secrets::FieldKeys, RegistryError> {
        self.field_keys.as_deref().ok_or_else(|| RegistryError::FieldKey {
            path: self.location.clone(),
            reason: "no field key loaded for this registry".into(),
        })
    }

    /// Hands this connection's audit entries to `queue` from now on (see `audit_queue`).
    pub(crate) fn set_audit_queue(
        &mut self,
        queue: std::sync::Arc<super::audit_queue::AuditQueue>,
    ) {
        self.audit_queue = Some(queue);
    }

    /// The queue audit entries go to, if any.
    pub(crate) fn audit_queue(&self) -> Option<&super::audit_queue::AuditQueue> {
        self.audit_queue.as_deref()
    }

    /// Keeps the receipt of an entry handed to the queue until someone waits for it.
    pub(crate) fn keep_audit_receipt(&self, receipt: super::audit_queue::AuditReceipt) {
        self.audit_pending.borrow_mut().push(receipt);
    }

    /// The receipts of entries handed over since the last call, in order.
    pub(crate) fn take_audit_receipts(&self) -> Vec<super::audit_queue::AuditReceipt> {
        std::mem::take(&mut *self.audit_pending.borrow_mut())
    }

    /// Blocks until every entry handed over is committed: a write transaction starts only
    /// after them, so the connection's entries and its writes stay in the order it made them.
    fn settle_audit(&self) -> Result<(), RegistryError> {
        for receipt in self.take_audit_receipts() {
            receipt.wait()?;
        }
        Ok(())
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite file, or the PostgreSQL URL without password.
    pub(crate) fn location(&self) -> &Path {
        &self.location
    }

    /// The SQLite connection (backup API, busy timeout), if this is SQLite.
    pub(crate) fn sqlite_conn(&self) -> Option<&Connection> {
        match &self.backend {
            Backend::Sqlite(c) => Some(c),
            Backend::Postgres(_) => None,
        }
    }

    fn sqlite_err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
        sqlite_err(&self.location, op)
    }

    fn pg_err(&self, op: &'static str) -> impl FnOnce(postgres::Error) -> RegistryError + '_ {
        move |source| RegistryError::Postgres { location: self.location.clone(), op, source }
    }

    fn column_err(&self, op: &'static str) -> impl FnOnce(ColumnError) -> RegistryError + '_ {
        move |e| RegistryError::Column {
            location: self.location.clone(),
            op,
            column: e.column,
            reason: e.reason,
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub(crate) fn execute(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Val],
    ) -> Result<u64, RegistryError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql).map_err(self.sqlite_err(op))?;
                let n = stmt
                    .execute(rusqlite::params_from_iter(params.iter()))
                    .map_err(self.sqlite_err(op))?;
                Ok(n as u64)
            }
            Backend::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                let stmt = pg.prepare(sql).map_err(self.pg_err(op))?;
                let refs = pg_params(params);
                pg.client.execute(&stmt, &refs).map_err(self.pg_err(op))
            }
        }
    }

    /// Runs a query and maps every row.
    pub(crate) fn query<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Val],
        mut f: impl FnMut(&Row) -> Result<T, ColumnError>,
    ) -> Result<Vec<T>, RegistryError> {
        let rows = self.rows(op, sql, params)?;
        rows.iter().map(|r| f(r).map_err(self.column_err(op))).collect()
    }

    /// The first row of a query, if any, mapped.
    pub(crate) fn query_opt<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Val],
        f: impl FnOnce(&Row) -> Result<T, ColumnError>,
    ) -> Result<Option<T>, RegistryError> {
        let rows = self.rows(op, sql, params)?;
        match rows.first() {
            None => Ok(None),
            Some(r) => f(r).map(Some).map_err(self.column_err(op)),
        }
    }

    /// The first row of a query that always returns one (an aggregate), mapped.
    pub(crate) fn query_one<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Val],
        f: impl FnOnce(&Row) -> Result<T, ColumnError>,
    ) -> Result<T, RegistryError> {
        self.query_opt(op, sql, params, f)?.ok_or_else(|| RegistryError::Column {
            location: self.location.clone(),
            op,
            column: 0,
            reason: "query returned no row".to_owned(),
        })
    }

    /// Runs an INSERT into a table with an `id` key and returns the new row's id.
    pub(crate) fn insert_id(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Val],
    ) -> Result<i64, RegistryError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                self.execute(op, sql, params)?;
                Ok(conn.last_insert_rowid())
            }
            Backend::Postgres(_) => {
                let sql = format!("{sql} RETURNING id");
                self.query_one(op, &sql, params, |r| r.get(0))
            }
        }
    }

    fn rows(&self, op: &'static str, sql: &str, params: &[Val]) -> Result<Vec<Row>, RegistryError> {
        let mut out = Vec::new();
        self.each_row(op, sql, params, |row| {
            out.push(Row(std::mem::take(&mut row.0)));
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs a query and hands every row to `f` as it arrives, none kept: for tables as long as
    /// the registry (the transparency log's leaves), where collecting the rows first held
    /// ≈ 250 bytes a row (a 1,000,000-leaf log: ≈ 250 MB at the end of every run). `f` must not
    /// use this `Db` (on PostgreSQL the connection is busy streaming).
    pub(crate) fn for_each_row(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Val],
        mut f: impl FnMut(&Row) -> Result<(), ColumnError>,
    ) -> Result<(), RegistryError> {
        self.each_row(op, sql, params, |row| f(row).map_err(self.column_err(op)))
    }

    /// The streaming core of [`Db::rows`] and [`Db::for_each_row`]: one [`Row`] buffer,
    /// refilled for every result row.
    fn each_row(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Val],
        mut f: impl FnMut(&mut Row) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut vals = Row(Vec::new());
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql).map_err(self.sqlite_err(op))?;
                let width = stmt.column_count();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter()))
                    .map_err(self.sqlite_err(op))?;
                while let Some(row) = rows.next().map_err(self.sqlite_err(op))? {
                    vals.0.clear();
                    for i in 0..width {
                        let v = match row.get_ref(i).map_err(self.sqlite_err(op))? {
                            ValueRef::Null => Val::Null,
                            ValueRef::Integer(i) => Val::Int(i),
                            ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                            ValueRef::Real(r) => Val::Text(r.to_string()),
                            ValueRef::Blob(_) => {
                                return Err(self.column_err(op)(ColumnError::new(
                                    i,
                                    "unexpected BLOB",
                                )));
                            }
                        };
                        vals.0.push(v);
                    }
                    f(&mut vals)?;
                }
                Ok(())
            }
            Backend::Postgres(pg) => {
                use postgres::fallible_iterator::FallibleIterator as _;
                let mut pg = pg.borrow_mut();
                let stmt = pg.prepare(sql).map_err(self.pg_err(op))?;
                let refs = pg_params(params);
                let mut rows = pg.client.query_raw(&stmt, refs).map_err(self.pg_err(op))?;
                while let Some(row) = rows.next().map_err(self.pg_err(op))? {
                    vals = pg_row(&row).map_err(self.column_err(op))?;
                    f(&mut vals)?;
                }
                Ok(())
            }
        }
    }

    /// Runs several statements without parameters (schema migrations).
    pub(crate) fn batch(&self, op: &'static str, sql: &str) -> Result<(), RegistryError> {
        match &self.backend {
            Backend::Sqlite(conn) => conn.execute_batch(sql).map_err(self.sqlite_err(op)),
            Backend::Postgres(pg) => {
                pg.borrow_mut().client.batch_execute(sql).map_err(self.pg_err(op))
            }
        }
    }

    /// Runs `f` inside one write transaction and commits; any error rolls back. SQLite takes
    /// the write lock up front (`BEGIN IMMEDIATE`); PostgreSQL takes [`WRITE_LOCK`] first (see
    /// the module docs). Writers queue; they never interleave. Audit entries this connection
    /// handed to an audit queue are committed before the transaction begins.
    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Db) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        self.settle_audit()?;
        match self.dialect() {
            Dialect::Sqlite => self.batch(op, "BEGIN IMMEDIATE")?,
            Dialect::Postgres => {
                self.batch(op, "BEGIN")?;
                let lock = "SELECT pg_advisory_xact_lock(?1)";
                if let Err(e) =
                    self.execute("take the registry write lock", lock, &vals![WRITE_LOCK])
                {
                    self.rollback();
                    return Err(e);
                }
            }
        }
        match f(self) {
            Ok(value) => match self.batch(op, "COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    self.rollback();
                    Err(e)
                }
            },
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Runs `f` in one read-only transaction that sees one state of the database (a snapshot
    /// for copying or verifying while writers go on).
    pub(crate) fn snapshot<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Db) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        match self.dialect() {
            Dialect::Sqlite => self.batch(op, "BEGIN DEFERRED")?,
            Dialect::Postgres => {
                self.batch(op, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?
            }
        }
        let result = f(self);
        self.rollback();
        result
    }

    fn rollback(&self) {
        // Nothing to do when no transaction is open (it failed to start, or COMMIT ended it).
        let _ = self.batch("roll back", "ROLLBACK");
    }

    /// The user tables of the database (not SQLite's own), by name.
    pub(crate) fn table_names(&self) -> Result<Vec<String>, RegistryError> {
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY name"
            }
            Dialect::Postgres => {
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                 ORDER BY table_name"
            }
        };
        self.query("read schema", sql, &[], |r| r.get(0))
    }
}

impl PgConn {
    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(&dollar_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

/// `?N` → `$N` (the registry's SQL has no `?` inside string literals).
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_params(params: &[Val]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect()
}

fn pg_row(row: &postgres::Row) -> Result<Row, ColumnError> {
    use postgres::types::Type;
    let mut vals = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let err = |e: postgres::Error| ColumnError::new(i, e.to_string());
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map_err(err)?.map_or(Val::Null, Val::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i).map_err(err)?.map_or(Val::Null, |v| Val::Int(v.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i).map_err(err)?.map_or(Val::Null, |v| Val::Int(v.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i).map_err(err)?.map_or(Val::Null, Val::Bool)
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            row.try_get::<_, Option<String>>(i).map_err(err)?.map_or(Val::Null, Val::Text)
        } else {
            return Err(ColumnError::new(i, format!("unsupported column type {ty}")));
        };
        vals.push(v);
    }
    Ok(Row(vals))
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
        })
    }
}

impl postgres::types::ToSql for Val {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn StdError + Sync + Send>> {
        use postgres::types::Type;
        match self {
            Val::Null => Ok(postgres::types::IsNull::Yes),
            Val::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Val::Int(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            Val::Int(i) if *ty == Type::BOOL => (*i != 0).to_sql(ty, out),
            Val::Int(i) if *ty == Type::TEXT => i.to_string().to_sql(ty, out),
            Val::Int(i) => i.to_sql(ty, out),
            Val::Bool(b) if *ty == Type::INT8 => i64::from(*b).to_sql(ty, out),
            Val::Bool(b) if *ty == Type::INT4 => i32::from(*b).to_sql(ty, out),
            Val::Bool(b) => b.to_sql(ty, out),
            Val::Text(s) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &postgres::types::Type) -> bool {
        // Checked per value in `to_sql`, which fails with the type it cannot write.
        true
    }

    postgres::types::to_sql_checked!();
}

/// Maps a SQLite error to a [`RegistryError`] naming the database file and what was being done:
/// a lock held too long becomes [`RegistryError::Locked`], a file that is not a database or is
/// damaged becomes [`RegistryError::Corrupt`].
pub(crate) fn sqlite_err(
    path: &Path,
    op: &'static str,
) -> impl FnOnce(rusqlite::Error) -> RegistryError + use<> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers() {
        assert_eq!(
            dollar_placeholders(
                "SELECT a FROM t WHERE b = ?1 AND (?2 IS NULL OR c >= ?2) LIMIT ?10"
            ),
            "SELECT a FROM t WHERE b = $1 AND ($2 IS NULL OR c >= $2) LIMIT $10"
        );
    }
}
