//! Statements written once for both databases.
//!
//! The statements of the table modules are plain SQL that SQLite and PostgreSQL both accept:
//! numbered `?N` or anonymous `?` placeholders (rewritten to `$N` for PostgreSQL, once per
//! statement and connection), `CASE` instead of two-argument `max`, `ON CONFLICT` instead of
//! `INSERT OR IGNORE`. Where the two really differ (full-text search, the fencing-token
//! sequence) a module asks [`Conn::dialect`].
//!
//! A parameter whose type only a comparison with NULL would tell is cast (`CAST(?2 AS TEXT)
//! IS NULL`): PostgreSQL infers each parameter's type from its first use.
//!
//! Values cross in the few shapes the schema uses: integers, text, booleans and NULL. A
//! PostgreSQL statement's parameter types are inferred by the server, so [`Arg`] adapts to what
//! it asks for (an `int4` from an `i64`, an `int8` from a `bool`), which keeps every call site
//! the same for both.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};

use super::StoreError;

/// Which SQL the connection speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A PostgreSQL connection with its prepared statements, keyed by their portable text.
pub struct PgConn {
    pub client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    /// Wake addresses to notify with this transaction's commit.
    announced: Vec<String>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> Self {
        Self {
            client,
            statements: HashMap::new(),
            announced: Vec::new(),
        }
    }

    /// Wake addresses the transaction's commit is to notify, taken once.
    pub fn take_announced(&mut self) -> Vec<String> {
        std::mem::take(&mut self.announced)
    }

    /// Drops the prepared statements, which closes them on the server with the next message.
    pub fn forget_statements(&mut self) {
        self.statements.clear();
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(&numbered(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// The connection a transaction runs on.
pub enum Conn<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(RefCell<&'c mut PgConn>),
}

impl Conn<'_> {
    /// Has the commit notify `addresses` on PostgreSQL (see [`crate::store::WAKE_CHANNEL`]);
    /// SQLite's processes share one machine, where the wake sockets reach them.
    pub fn announce(&self, addresses: &[String]) {
        if let Conn::Postgres(conn) = self {
            conn.borrow_mut().announced.extend_from_slice(addresses);
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Every row `sql` returns, each through `map`.
    pub fn query<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(map(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Conn::Postgres(conn) => {
                let mut conn = conn.borrow_mut();
                let statement = conn.statement(sql)?;
                let rows = conn.client.query(&statement, &bound(args))?;
                rows.iter().map(|row| map(&Row::Postgres(row))).collect()
            }
        }
    }

    /// The first row `sql` returns, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.query(sql, args, map)?.into_iter().next())
    }

    /// The row `sql` always returns.
    pub fn query_one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, args, map)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {}", first_line(sql))))
    }

    /// Runs a change; returns how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<usize, StoreError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(args))?)
            }
            Conn::Postgres(conn) => {
                let mut conn = conn.borrow_mut();
                let statement = conn.statement(sql)?;
                let changed = conn.client.execute(&statement, &bound(args))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }
}

/// `args` as the parameter list the PostgreSQL client takes.
fn bound<'a>(args: &'a [Arg<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or_default()
}

/// `sql` with SQLite's placeholders turned into PostgreSQL's: `?N` becomes `$N`, and an
/// anonymous `?` takes the number after the largest so far, as SQLite numbers it. Quoted text
/// is left alone.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut largest = 0u32;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => largest + 1,
                };
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Text(Cow<'a, str>),
}

impl Arg<'static> {
    pub fn text(text: impl Into<String>) -> Self {
        Arg::Text(Cow::Owned(text.into()))
    }
}

/// What can be bound: the types the statements use, borrowed the way `rusqlite::params!` does.
pub trait IntoArg {
    fn arg(&self) -> Arg<'_>;
}

impl IntoArg for i64 {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(*self)
    }
}

impl IntoArg for u32 {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(i64::from(*self))
    }
}

impl IntoArg for bool {
    fn arg(&self) -> Arg<'_> {
        Arg::Bool(*self)
    }
}

impl IntoArg for str {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(Cow::Borrowed(self))
    }
}

impl IntoArg for String {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(Cow::Borrowed(self))
    }
}

impl<T: IntoArg + ?Sized> IntoArg for &T {
    fn arg(&self) -> Arg<'_> {
        (**self).arg()
    }
}

impl<T: IntoArg> IntoArg for Option<T> {
    fn arg(&self) -> Arg<'_> {
        self.as_ref().map_or(Arg::Null, IntoArg::arg)
    }
}

/// The arguments of a statement, in placeholder order.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::sql::IntoArg::arg(&$value)),*]
    };
}
pub(crate) use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Arg::Null => ToSqlOutput::Owned(Value::Null),
            Arg::Int(n) => ToSqlOutput::Owned(Value::Integer(*n)),
            Arg::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Arg::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let n = match self {
            Arg::Null => return Ok(IsNull::Yes),
            Arg::Text(t) => return t.as_ref().to_sql(ty, out),
            Arg::Int(n) => *n,
            Arg::Bool(b) if *ty == Type::BOOL => return b.to_sql(ty, out),
            Arg::Bool(b) => i64::from(*b),
        };
        match *ty {
            Type::INT8 => n.to_sql(ty, out),
            Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
            Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
            Type::BOOL => (n != 0).to_sql(ty, out),
            _ => Err(format!("cannot bind the integer {n} to a {ty} parameter").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// One row of a result, from either database.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

/// A column, by name or position.
pub trait Index: rusqlite::RowIndex + postgres::row::RowIndex + std::fmt::Display + Copy {}
impl Index for &str {}
impl Index for usize {}

impl Row<'_> {
    pub fn get<T: Column>(&self, index: impl Index) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(row) => Ok(row.get::<_, T>(index)?),
            Row::Postgres(row) => Ok(row
                .try_get::<_, Loose<T>>(index)
                .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))?
                .0),
        }
    }
}

/// A Rust type a column is read into. PostgreSQL's integer widths and booleans all read as the
/// integer or boolean asked for, as SQLite's single integer type does.
pub trait Column: rusqlite::types::FromSql + Sized {
    fn accepts(ty: &Type) -> bool;
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError>;
}

fn integer(ty: &Type, raw: &[u8]) -> Result<i64, BoxError> {
    Ok(match *ty {
        Type::INT8 => i64::from_sql(ty, raw)?,
        Type::INT4 => i64::from(i32::from_sql(ty, raw)?),
        Type::INT2 => i64::from(i16::from_sql(ty, raw)?),
        Type::BOOL => i64::from(bool::from_sql(ty, raw)?),
        _ => return Err(format!("a {ty} column is not an integer").into()),
    })
}

fn is_integer(ty: &Type) -> bool {
    matches!(*ty, Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL)
}

fn required(raw: Option<&[u8]>) -> Result<&[u8], BoxError> {
    raw.ok_or_else(|| "unexpected NULL".into())
}

impl Column for i64 {
    fn accepts(ty: &Type) -> bool {
        is_integer(ty)
    }
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        integer(ty, required(raw)?)
    }
}

impl Column for u32 {
    fn accepts(ty: &Type) -> bool {
        is_integer(ty)
    }
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        Ok(u32::try_from(integer(ty, required(raw)?)?)?)
    }
}

impl Column for bool {
    fn accepts(ty: &Type) -> bool {
        is_integer(ty)
    }
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        Ok(integer(ty, required(raw)?)? != 0)
    }
}

impl Column for String {
    fn accepts(ty: &Type) -> bool {
        <String as FromSql>::accepts(ty)
    }
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        String::from_sql(ty, required(raw)?)
    }
}

impl<T: Column> Column for Option<T> {
    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError> {
        raw.map(|raw| T::from_pg(ty, Some(raw))).transpose()
    }
}

/// Reads a [`Column`] through `postgres`'s `FromSql`.
struct Loose<T>(T);

impl<'a, T: Column> FromSql<'a> for Loose<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        T::from_pg(ty, Some(raw)).map(Loose)
    }

    fn from_sql_null(ty: &Type) -> Result<Self, BoxError> {
        T::from_pg(ty, None).map(Loose)
    }

    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(
            numbered("SELECT ?1, ?2 WHERE a = ?1"),
            "SELECT $1, $2 WHERE a = $1"
        );
        assert_eq!(
            numbered("a = ? AND b IN (?, ?) LIMIT ?"),
            "a = $1 AND b IN ($2, $3) LIMIT $4"
        );
        assert_eq!(numbered("x = ?3 AND y = ?"), "x = $3 AND y = $4");
        assert_eq!(
            numbered("SELECT '?' || ?1, 'it''s ?2'"),
            "SELECT '?' || $1, 'it''s ?2'"
        );
    }

    #[test]
    fn arguments_borrow_like_params() {
        let name = String::from("n");
        let project: Option<&str> = None;
        let pid: Option<u32> = Some(7);
        let bound = args![name, project, pid, 5i64, true, "x"];
        assert_eq!(
            bound,
            [
                Arg::Text(Cow::Borrowed("n")),
                Arg::Null,
                Arg::Int(7),
                Arg::Int(5),
                Arg::Bool(true),
                Arg::Text(Cow::Borrowed("x")),
            ]
        );
    }
}
