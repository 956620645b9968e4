//! Hand-written statements that the connection keeps prepared.
//!
//! diesel marks every `UPDATE`, every `sql_query` and every multi-row
//! `INSERT` of a `Vec` as unsafe to cache, so on MySQL each of them is
//! prepared, executed and closed: two round trips and a parse instead of one.
//! A [`Statement`] is plain SQL with `?` placeholders and typed values; its
//! text is the cache key, so the connection prepares it once and reuses it
//! (for the multi-row inserts, once per row count).

use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::Column;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Nullable, Text, Timestamp};
use diesel::{QueryResult, result::Error};

/// Most rows of a multi-row insert kept prepared: every row count is another
/// statement, and larger batches are rare.
pub(crate) const MAX_CACHED_ROWS: usize = 16;

/// Larger row counts also kept prepared, for writers that split their
/// batches with [`chunk_sizes`] (the bitácora).
const CACHED_CHUNKS: [usize; 2] = [64, 32];

/// How to write `n` rows as inserts that are all kept prepared: as many 64s
/// as fit, then a 32, a 16, and the rest (45 is 32 + 13; 100 is 64 + 32 + 4).
/// Without it every batch of another size above 16 is prepared, executed
/// and closed: MariaDB parses it and describes each of its placeholders.
pub(crate) fn chunk_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    for size in CACHED_CHUNKS.into_iter().chain([MAX_CACHED_ROWS]) {
        while n >= size {
            sizes.push(size);
            n -= size;
        }
    }
    if n > 0 {
        sizes.push(n);
    }
    sizes
}

/// `?, ?, ..` for `n` values (an `IN` list kept prepared, one statement per
/// length: diesel's `eq_any` is prepared and closed at every call).
pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    BigInt(i64),
    OptBigInt(Option<i64>),
    Int(i32),
    OptInt(Option<i32>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Timestamp(NaiveDateTime),
    OptTimestamp(Option<NaiveDateTime>),
    /// An id a [`Script`] keeps from an earlier insert of its own; only a
    /// script can write it.
    Kept(Kept),
}

impl Value<'_> {
    /// Bytes of a text value (0 for the others).
    fn text_len(&self) -> usize {
        match self {
            Value::Text(s) | Value::OptText(Some(s)) => s.len(),
            _ => 0,
        }
    }
}

/// The ids a [`Script`] keeps, in MySQL user variables named for this
/// program (a pooled connection's variables outlive the script: each
/// script clears them first): the latest of each kind, for the statements
/// after it, and all of them in order, read back after the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// The ticket the script inserted last.
    Ticket,
    /// The ticket's detail the script inserted last.
    Detail,
    /// A notice (only listed).
    Notice,
}

impl Kept {
    /// The variable holding the latest id.
    fn variable(self) -> &'static str {
        match self {
            Kept::Ticket => "@hd_ticket",
            Kept::Detail => "@hd_detalle",
            Kept::Notice => "@hd_aviso",
        }
    }

    /// The variable listing every id, in order, separated by commas.
    fn list(self) -> &'static str {
        match self {
            Kept::Ticket => "@hd_tickets",
            Kept::Detail => "@hd_detalles",
            Kept::Notice => "@hd_avisos",
        }
    }
}

/// SQL with one `?` per value (the text holds no other `?`).
#[derive(Debug, Clone)]
pub(crate) struct Statement<'a> {
    sql: String,
    values: Vec<Value<'a>>,
    cache: bool,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: impl Into<String>, values: Vec<Value<'a>>) -> Self {
        Self { sql: sql.into(), values, cache: true }
    }

    /// `INSERT [IGNORE] INTO table (columns) VALUES (?, ..), (?, ..)` for
    /// `rows`, each a row's values in column order. Kept prepared up to
    /// [`MAX_CACHED_ROWS`] rows.
    pub(crate) fn insert_rows(head: &str, columns: &[&str], rows: Vec<Vec<Value<'a>>>) -> Self {
        let row = format!("({})", vec!["?"; columns.len()].join(", "));
        let sql = format!("{head} ({}) VALUES {}", columns.join(", "), vec![row; rows.len()].join(", "));
        let cache = rows.len() <= MAX_CACHED_ROWS || CACHED_CHUNKS.contains(&rows.len());
        Self { sql, values: rows.into_iter().flatten().collect(), cache }
    }

    /// `head (item, other.0) SELECT ..`: one row per string of the JSON
    /// array `items`, each with the value `other.1`, through `JSON_TABLE`
    /// (MariaDB, MySQL 8): one statement, and one text, whatever the number
    /// of items. The strings are read as `VARCHAR(1000)`, longer than any
    /// column they go to, so that a string too long is refused by the
    /// column as a literal would be, not cut short here.
    pub(crate) fn insert_each(head: &str, item: &str, other: (&str, Value<'a>), items: &'a str) -> Self {
        let sql = format!(
            "{head} ({item}, {}) SELECT j.v, ? FROM JSON_TABLE(?, '$[*]' COLUMNS \
             (v VARCHAR(1000) CHARACTER SET utf8mb4 PATH '$')) AS j",
            other.0
        );
        Self::new(sql, vec![other.1, Value::Text(items)])
    }

    /// The statement followed by `tail` (SQL without placeholders, such as
    /// an upsert's `ON CONFLICT` clause).
    pub(crate) fn then(mut self, tail: &str) -> Self {
        self.sql.push_str(tail);
        self
    }
}

impl QueryId for Statement<'_> {
    type QueryId = ();
    // No static id: the statement cache keys it by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for Statement<'_>
where
    DB: Backend + HasSqlType<BigInt> + HasSqlType<Integer> + HasSqlType<Text> + HasSqlType<Timestamp>,
    i64: ToSql<BigInt, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    i32: ToSql<Integer, DB>,
    Option<i32>: ToSql<Nullable<Integer>, DB>,
    str: ToSql<Text, DB>,
    for<'x> Option<&'x str>: ToSql<Nullable<Text>, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    Option<NaiveDateTime>: ToSql<Nullable<Timestamp>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        let mut values = self.values.iter();
        for part in parts {
            let value = values.next().ok_or_else(|| mismatch(&self.sql))?;
            match value {
                Value::BigInt(v) => out.push_bind_param::<BigInt, _>(v)?,
                Value::OptBigInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Value::Int(v) => out.push_bind_param::<Integer, _>(v)?,
                Value::OptInt(v) => out.push_bind_param::<Nullable<Integer>, _>(v)?,
                Value::Text(v) => out.push_bind_param::<Text, _>(*v)?,
                Value::OptText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Value::Timestamp(v) => out.push_bind_param::<Timestamp, _>(v)?,
                Value::OptTimestamp(v) => out.push_bind_param::<Nullable<Timestamp>, _>(v)?,
                Value::Kept(k) => {
                    return Err(Error::QueryBuilderError(
                        format!("{} is a script's own id, not a value to bind", k.variable()).into(),
                    ));
                }
            }
            out.push_sql(part);
        }
        if values.next().is_some() {
            return Err(mismatch(&self.sql));
        }
        Ok(())
    }
}

/// A [`Statement`] that reads rows, by column name (`QueryableByName`):
/// a hand-written `SELECT` the connection keeps prepared (diesel's `IN`
/// over a list and `sql_query` are prepared and closed at every call).
#[derive(Debug, Clone)]
pub(crate) struct Select<'a>(pub(crate) Statement<'a>);

impl QueryId for Select<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Select<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<'a, DB: Backend> QueryFragment<DB> for Select<'a>
where
    Statement<'a>: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

/// `<insert> RETURNING <column>`: the new rows' ids come back in the
/// insert's own round trip (SQLite, MariaDB; MySQL has no `RETURNING`, see
/// `Db::returning`). Kept prepared when the insert is.
pub(crate) struct Returning<Q, C> {
    insert: Q,
    column: PhantomData<C>,
}

pub(crate) fn returning<Q, C: Column>(insert: Q, _column: C) -> Returning<Q, C> {
    Returning { insert, column: PhantomData }
}

impl<Q: QueryId, C: 'static> QueryId for Returning<Q, C> {
    type QueryId = Returning<Q::QueryId, C>;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q, C> Query for Returning<Q, C> {
    type SqlType = BigInt;
}

impl<DB: Backend, Q: QueryFragment<DB>, C: Column> QueryFragment<DB> for Returning<Q, C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.insert.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        out.push_identifier(C::NAME)
    }
}

/// Statements run in one round trip, in one transaction the script opens
/// and commits itself: a new ticket's dozen inserts cost one trip instead of
/// a dozen (docs/benchmarks.md, "A ticket alone"). Two forms:
///
/// - **text** ([`Script::transaction`], MySQL): one multi-statement query,
///   its values written as literals. What the client sent never reaches the
///   text as SQL: a text value is written as a hexadecimal literal with its
///   character set (`_utf8mb4 X'C3A9'`), which holds nothing but hex digits
///   whatever `sql_mode` says about backslashes; numbers and times are
///   formatted here. The kept ids are read back after it
///   ([`Script::kept_ids`]).
/// - **block** ([`Script::block`], MariaDB): one compound statement (`BEGIN
///   NOT ATOMIC .. END`) whose values stay bound parameters, so that its
///   text is the same for every mail of the same shape and the connection
///   keeps it prepared: MariaDB parses it once per connection instead of
///   once per ticket, answers with one packet (a multi-statement query
///   answers one per statement, each waking the client), and the block
///   ends by selecting the kept ids, so they come back in the same round
///   trip ([`Script::finish`]). Lists of any length go in as one JSON array
///   ([`Statement::insert_each`]).
///
/// An id an insert generates is kept in user variables ([`Kept`]) for the
/// statements after it.
#[derive(Debug)]
pub(crate) struct Script<'a> {
    sql: String,
    /// A block's bound values, in order; `None` for a text script.
    binds: Option<Vec<Value<'a>>>,
    /// Bytes of the bound text values.
    bound_bytes: usize,
    /// Whether a block is kept prepared (see [`Script::keep_prepared`]).
    cache: bool,
}

/// What a finished [`Script`] is run as.
#[derive(Debug)]
pub(crate) enum Finished<'a> {
    /// A multi-statement query; then [`Script::kept_ids`].
    Text(String),
    /// A compound statement that answers the kept ids itself.
    Block(Select<'a>),
}

impl Finished<'_> {
    /// A block stays prepared only if `keep` says so of its text too.
    pub(crate) fn keep_prepared_if(&mut self, keep: impl FnOnce(&str) -> bool) {
        if let Finished::Block(Select(statement)) = self {
            statement.cache = statement.cache && keep(&statement.sql);
        }
    }
}

/// Every variable of `Kept::variable` and `Kept::list`, cleared, then the
/// transaction opened.
const CLEARED: &str = "SET @hd_ticket := NULL, @hd_tickets := NULL, @hd_detalle := NULL, \
                       @hd_detalles := NULL, @hd_aviso := NULL, @hd_avisos := NULL; START TRANSACTION";

/// The kept ids, as [`KeptIds`] reads them.
const SELECT_KEPT: &str = "SELECT CAST(@hd_tickets AS CHAR) AS tickets, CAST(@hd_detalles AS CHAR) AS detalles, \
                           CAST(@hd_avisos AS CHAR) AS avisos";

impl<'a> Script<'a> {
    /// A text script whose statements run in one transaction; the kept ids
    /// are cleared first, so none is left from another script.
    pub(crate) fn transaction() -> Self {
        Self { sql: CLEARED.to_string(), binds: None, bound_bytes: 0, cache: true }
    }

    /// A block (MariaDB): as [`Script::transaction`], its values bound.
    pub(crate) fn block() -> Self {
        Self { sql: format!("BEGIN NOT ATOMIC\n{CLEARED}"), binds: Some(Vec::new()), bound_bytes: 0, cache: true }
    }

    /// Whether a block is kept prepared by the connection: yes for the
    /// shapes that come again and again, not for a rare one (many
    /// attachments, say), which would only fill the statement cache.
    pub(crate) fn keep_prepared(&mut self, keep: bool) {
        self.cache = keep;
    }

    /// Appends `statement`: in a text script each `?` replaced by its value
    /// as a literal; in a block, each kept id by its variable and the other
    /// values bound.
    pub(crate) fn push(&mut self, statement: &Statement<'a>) -> QueryResult<()> {
        self.sql.push_str(";\n");
        let mut parts = statement.sql.split('?');
        self.sql.push_str(parts.next().unwrap_or_default());
        let mut values = statement.values.iter();
        for part in parts {
            let value = values.next().ok_or_else(|| mismatch(&statement.sql))?;
            match (&mut self.binds, value) {
                (Some(_), Value::Kept(k)) => self.sql.push_str(k.variable()),
                (Some(binds), v) => {
                    self.sql.push('?');
                    self.bound_bytes += v.text_len();
                    binds.push(*v);
                }
                (None, v) => write_literal(&mut self.sql, v),
            }
            self.sql.push_str(part);
        }
        if values.next().is_some() {
            return Err(mismatch(&statement.sql));
        }
        Ok(())
    }

    /// Keeps the id the last insert generated as the latest `kept`, and
    /// lists it.
    pub(crate) fn keep(&mut self, kept: Kept) {
        let (latest, list) = (kept.variable(), kept.list());
        self.sql.push_str(&format!(
            ";\nSET {latest} := LAST_INSERT_ID(), {list} := CONCAT_WS(',', {list}, LAST_INSERT_ID())"
        ));
    }

    /// The script, committing at its end. A statement that fails ends it
    /// there, its transaction left open for the caller's `ROLLBACK`.
    pub(crate) fn finish(mut self) -> Finished<'a> {
        self.sql.push_str(";\nCOMMIT");
        match self.binds {
            None => Finished::Text(self.sql),
            Some(values) => {
                self.sql.push_str(";\n");
                self.sql.push_str(SELECT_KEPT);
                self.sql.push_str(";\nEND");
                Finished::Block(Select(Statement { sql: self.sql, values, cache: self.cache }))
            }
        }
    }

    /// The query that reads what a text script kept, after it ran (on the
    /// same connection): the lists of ids of each kind.
    pub(crate) fn kept_ids() -> Select<'static> {
        Select(Statement::new(SELECT_KEPT, Vec::new()))
    }

    /// How long the script is so far, in bytes (its text and what it binds).
    pub(crate) fn len(&self) -> usize {
        self.sql.len() + self.bound_bytes
    }
}

/// What [`Script::kept_ids`] reads.
#[derive(diesel::QueryableByName, Debug)]
pub(crate) struct KeptIds {
    #[diesel(sql_type = Nullable<Text>)]
    tickets: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    detalles: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    avisos: Option<String>,
}

impl KeptIds {
    /// The ids kept of this kind, in the order they were inserted.
    pub(crate) fn of(&self, kept: Kept) -> QueryResult<Vec<i64>> {
        let list = match kept {
            Kept::Ticket => &self.tickets,
            Kept::Detail => &self.detalles,
            Kept::Notice => &self.avisos,
        };
        let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else { return Ok(Vec::new()) };
        list.split(',').map(|id| id.parse().map_err(|e| Error::DeserializationError(Box::new(e)))).collect()
    }
}

/// `value` as a MySQL literal.
fn write_literal(out: &mut String, value: &Value<'_>) {
    use std::fmt::Write;
    let text = |out: &mut String, s: &str| {
        out.push_str("_utf8mb4 X'");
        out.push_str(&hex::encode_upper(s));
        out.push('\'');
    };
    let time = |out: &mut String, t: &NaiveDateTime| {
        let _ = write!(out, "'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"));
    };
    match value {
        Value::BigInt(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Text(s) => text(out, s),
        Value::Timestamp(t) => time(out, t),
        Value::OptBigInt(Some(v)) => {
            let _ = write!(out, "{v}");
        }
        Value::OptInt(Some(v)) => {
            let _ = write!(out, "{v}");
        }
        Value::OptText(Some(s)) => text(out, s),
        Value::OptTimestamp(Some(t)) => time(out, t),
        Value::OptBigInt(None) | Value::OptInt(None) | Value::OptText(None) | Value::OptTimestamp(None) => {
            out.push_str("NULL")
        }
        Value::Kept(k) => out.push_str(k.variable()),
    }
}

fn mismatch(sql: &str) -> Error {
    Error::QueryBuilderError(format!("placeholders and values differ in number: {sql}").into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use diesel::QueryableByName;
    use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};

    use crate::conn::SqliteConn;

    fn sql_of(s: &Statement<'_>) -> QueryResult<String> {
        let mut qb = diesel::sqlite::SqliteQueryBuilder::new();
        s.to_sql(&mut qb, &diesel::sqlite::Sqlite)?;
        Ok(diesel::query_builder::QueryBuilder::finish(qb))
    }

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Nullable<Text>)]
        name: Option<String>,
    }

    #[test]
    fn rows_are_spelled_out_and_placeholders_must_match_the_values() {
        let rows = vec![vec![Value::BigInt(1), Value::Text("a")], vec![Value::BigInt(2), Value::Text("b")]];
        let s = Statement::insert_rows("INSERT INTO t", &["id", "name"], rows);
        assert_eq!(sql_of(&s).unwrap(), "INSERT INTO t (id, name) VALUES (?, ?), (?, ?)");
        assert!(s.cache);
        let many = (0..=MAX_CACHED_ROWS as i64).map(|i| vec![Value::BigInt(i)]).collect();
        assert!(!Statement::insert_rows("INSERT INTO t", &["id"], many).cache, "large batches are not kept");
        let chunk = (0..64).map(|i| vec![Value::BigInt(i)]).collect();
        assert!(Statement::insert_rows("INSERT INTO t", &["id"], chunk).cache, "but chunks of 64 are");
        let short = Statement::new("UPDATE t SET name = ? WHERE id = ?", vec![Value::Text("x")]);
        assert!(matches!(sql_of(&short), Err(Error::QueryBuilderError(_))));
        let long = Statement::new("DELETE FROM t WHERE id = ?", vec![Value::BigInt(1), Value::BigInt(2)]);
        assert!(matches!(sql_of(&long), Err(Error::QueryBuilderError(_))));
    }

    #[test]
    fn a_script_writes_its_values_as_literals_and_text_only_in_hex() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap().and_hms_micro_opt(10, 11, 12, 123).unwrap();
        let mut script = Script::transaction();
        let values = vec![
            Value::BigInt(-3),
            Value::Text("it's \\ é"),
            Value::OptText(None),
            Value::Timestamp(at),
            Value::Kept(Kept::Ticket),
            Value::OptInt(Some(7)),
        ];
        script.push(&Statement::new("INSERT INTO t (a, b, c, d, e, f) VALUES (?, ?, ?, ?, ?, ?)", values)).unwrap();
        script.keep(Kept::Detail);
        let Finished::Text(text) = script.finish() else { panic!("a text script") };
        assert_eq!(
            text,
            "SET @hd_ticket := NULL, @hd_tickets := NULL, @hd_detalle := NULL, @hd_detalles := NULL, \
             @hd_aviso := NULL, @hd_avisos := NULL; START TRANSACTION;\n\
             INSERT INTO t (a, b, c, d, e, f) VALUES (-3, _utf8mb4 X'69742773205C20C3A9', NULL, \
             '2026-12-07 10:11:12.000123', @hd_ticket, 7);\n\
             SET @hd_detalle := LAST_INSERT_ID(), @hd_detalles := CONCAT_WS(',', @hd_detalles, LAST_INSERT_ID());\n\
             COMMIT"
        );
        // A block binds its values; only the kept ids are in its text.
        let mut block = Script::block();
        block
            .push(&Statement::new(
                "DELETE FROM t WHERE id = ? AND b = ? AND c = ?",
                vec![Value::BigInt(1), Value::Kept(Kept::Ticket), Value::Text("it's")],
            ))
            .unwrap();
        block.push(&Statement::insert_each("INSERT INTO w", "p", ("t", Value::Kept(Kept::Ticket)), "[\"a\"]")).unwrap();
        assert_eq!(block.len(), block.sql.len() + "it's".len() + "[\"a\"]".len());
        block.keep_prepared(false);
        let Finished::Block(Select(statement)) = block.finish() else { panic!("a block") };
        assert_eq!(
            statement.sql,
            "BEGIN NOT ATOMIC\nSET @hd_ticket := NULL, @hd_tickets := NULL, @hd_detalle := NULL, \
             @hd_detalles := NULL, @hd_aviso := NULL, @hd_avisos := NULL; START TRANSACTION;\n\
             DELETE FROM t WHERE id = ? AND b = @hd_ticket AND c = ?;\n\
             INSERT INTO w (p, t) SELECT j.v, @hd_ticket FROM JSON_TABLE(?, '$[*]' COLUMNS \
             (v VARCHAR(1000) CHARACTER SET utf8mb4 PATH '$')) AS j;\nCOMMIT;\n\
             SELECT CAST(@hd_tickets AS CHAR) AS tickets, CAST(@hd_detalles AS CHAR) AS detalles, \
             CAST(@hd_avisos AS CHAR) AS avisos;\nEND"
        );
        assert!(matches!(statement.values[..], [Value::BigInt(1), Value::Text("it's"), Value::Text("[\"a\"]")]));
        assert!(!statement.cache);
        let cleared = Script::transaction().sql;
        for k in [Kept::Ticket, Kept::Detail, Kept::Notice] {
            assert!(cleared.contains(&format!("{} := NULL", k.variable())), "{cleared}");
            assert!(cleared.contains(&format!("{} := NULL", k.list())), "{cleared}");
        }
        let mut short = Script::transaction();
        let missing = Statement::new("UPDATE t SET a = ? WHERE b = ?", vec![Value::BigInt(1)]);
        assert!(matches!(short.push(&missing), Err(Error::QueryBuilderError(_))));
        let extra = Statement::new("DELETE FROM t", vec![Value::BigInt(1)]);
        assert!(matches!(short.push(&extra), Err(Error::QueryBuilderError(_))));
        // A kept id is the script's own: never bound to a prepared statement.
        let kept = Statement::new("DELETE FROM t WHERE id = ?", vec![Value::Kept(Kept::Ticket)]);
        assert!(matches!(sql_of(&kept), Err(Error::QueryBuilderError(_))));
        let read = |avisos: Option<&str>| KeptIds {
            tickets: Some("12".into()),
            detalles: None,
            avisos: avisos.map(String::from),
        };
        assert_eq!(read(Some("4,9")).of(Kept::Notice).unwrap(), [4, 9]);
        assert_eq!(read(None).of(Kept::Notice).unwrap(), Vec::<i64>::new());
        assert_eq!(read(None).of(Kept::Ticket).unwrap(), [12]);
        assert!(read(Some("4,x")).of(Kept::Notice).is_err());
    }

    #[test]
    fn batches_split_into_sizes_that_are_all_kept_prepared() {
        for n in 1..=600 {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|&s| s <= MAX_CACHED_ROWS || CACHED_CHUNKS.contains(&s)), "{n}: {sizes:?}");
            assert!(sizes.len() <= n / 64 + 3, "{n}: {sizes:?}");
        }
        assert_eq!(chunk_sizes(45), [32, 13]);
        assert_eq!(chunk_sizes(100), [64, 32, 4]);
        assert_eq!(chunk_sizes(16), [16]);
    }

    #[tokio::test]
    async fn runs_on_sqlite() {
        let mut conn = SqliteConn::establish(":memory:").await.unwrap();
        conn.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT)").await.unwrap();
        let rows = vec![vec![Value::BigInt(1), Value::OptText(None)], vec![Value::BigInt(2), Value::Text("b")]];
        assert_eq!(Statement::insert_rows("INSERT INTO t", &["id", "name"], rows).execute(&mut conn).await, Ok(2));
        let set = Statement::new("UPDATE t SET name = ? WHERE id = ?", vec![Value::Text("a"), Value::BigInt(1)]);
        assert_eq!(set.execute(&mut conn).await, Ok(1));
        let got: Vec<Row> = diesel::sql_query("SELECT id, name FROM t ORDER BY id").load(&mut conn).await.unwrap();
        assert_eq!(got, [Row { id: 1, name: Some("a".into()) }, Row { id: 2, name: Some("b".into()) }]);
    }

    /// One text value, as `Value` (a status variable's, say).
    #[derive(QueryableByName)]
    pub(crate) struct Status {
        #[diesel(sql_type = Text, column_name = "Value")]
        pub(crate) value: String,
    }

    /// Statements this session has prepared (the status query itself is one).
    pub(crate) async fn prepared(conn: &mut AsyncMysqlConnection) -> i64 {
        let s: Status =
            diesel::sql_query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'").get_result(conn).await.unwrap();
        s.value.parse().unwrap()
    }

    #[tokio::test]
    #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    async fn mysql_prepares_a_statement_once_per_connection() {
        let server = std::env::var(crate::testing::MYSQL_URL_VAR)
            .unwrap_or_else(|_| crate::testing::DEFAULT_MYSQL_URL.to_string());
        let mut conn = AsyncMysqlConnection::establish(&format!("{}/mysql", server.trim_end_matches('/')))
            .await
            .unwrap_or_else(|e| panic!("MySQL tests need a server at {server}: {e}"));
        conn.batch_execute("CREATE TEMPORARY TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(40))").await.unwrap();
        let insert = |a: i64, b: i64| {
            Statement::insert_rows(
                "INSERT INTO t",
                &["id", "name"],
                vec![vec![Value::BigInt(a), Value::Text("x")], vec![Value::BigInt(b), Value::OptText(None)]],
            )
        };
        let before = prepared(&mut conn).await;
        assert_eq!(insert(1, 2).execute(&mut conn).await, Ok(2));
        assert_eq!(insert(3, 4).execute(&mut conn).await, Ok(2));
        assert_eq!(prepared(&mut conn).await - before, 2, "the insert once, and the status query");
        // diesel's own `sql_query` is prepared at every call.
        let before = prepared(&mut conn).await;
        for id in [5, 6] {
            diesel::sql_query(format!("INSERT INTO t (id) VALUES ({id})")).execute(&mut conn).await.unwrap();
        }
        assert_eq!(prepared(&mut conn).await - before, 3);
        let got: Vec<Row> = diesel::sql_query("SELECT id, name FROM t ORDER BY id").load(&mut conn).await.unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], Row { id: 1, name: Some("x".into()) });
        assert_eq!(got[1], Row { id: 2, name: None });
    }
}
