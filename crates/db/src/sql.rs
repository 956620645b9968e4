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
}

/// SQL with one `?` per value (the text holds no other `?`).
#[derive(Debug)]
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

fn mismatch(sql: &str) -> Error {
    Error::QueryBuilderError(format!("placeholders and values differ in number: {sql}").into())
}

#[cfg(test)]
mod tests {
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

    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text, column_name = "Value")]
        value: String,
    }

    /// Statements this session has prepared (the status query itself is one).
    async fn prepared(conn: &mut AsyncMysqlConnection) -> i64 {
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
