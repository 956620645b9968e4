//! Ticket search over a word table (`palabra_ticket`: one row per word and
//! ticket, `PRIMARY KEY (palabra, fk_id_ticket)`), the same on both
//! backends. Each message adds its words ([`message_words`]) in its own
//! transaction; a search asks for the tickets holding every word, reading
//! the words' keys in ticket order, so a page costs about the rows it shows
//! (InnoDB's FULLTEXT read every match before it could sort: see
//! docs/benchmarks.md). Messages stored before the table existed are
//! indexed at start-up ([`index_backlog`]).
//!
//! What the user typed never reaches SQL as syntax: it is cut into words of
//! letters and digits ([`search_words`]), each bound as a value.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate};
use diesel::mysql::Mysql;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::Sqlite;
use diesel_async::RunQueryDsl;
use helpdesk_domain::model::{message_words, search_words};
use helpdesk_domain::ports::RepoResult;

use crate::dialect::Dialect;
use crate::error::TxError;
use crate::schema::{detalle_ticket, indice_busqueda, ticket};
use crate::sql::{Statement, Value};
use crate::{Db, db_transaction};

/// A condition on `ticket`: its messages hold every word of a search.
#[derive(Debug, Clone)]
pub(crate) struct HasWords {
    words: Vec<String>,
    /// Only tickets below this id (the list's cursor, pushed into the
    /// words' key range).
    below: Option<i64>,
}

impl HasWords {
    /// The condition for a search of `text`; `None` when it has no word to
    /// look for (and then matches nothing).
    pub(crate) fn new(text: &str, below: Option<i64>) -> Option<Self> {
        let words = search_words(text);
        (!words.is_empty()).then_some(HasWords { words, below })
    }

    /// `ticket.id_ticket IN (SELECT p0.fk_id_ticket FROM palabra_ticket p0
    /// JOIN palabra_ticket p1 ON p1.fk_id_ticket = p0.fk_id_ticket AND
    /// p1.palabra = ? ... WHERE p0.palabra = ? [AND p0.fk_id_ticket < ?])`.
    fn walk<'b, DB>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()>
    where
        DB: Backend,
        String: ToSql<Text, DB>,
        i64: ToSql<BigInt, DB>,
    {
        out.push_sql("ticket.id_ticket IN (SELECT p0.fk_id_ticket FROM palabra_ticket p0");
        for (i, word) in self.words.iter().enumerate().skip(1) {
            out.push_sql(&format!(
                " JOIN palabra_ticket p{i} ON p{i}.fk_id_ticket = p0.fk_id_ticket AND p{i}.palabra = "
            ));
            out.push_bind_param::<Text, _>(word)?;
        }
        out.push_sql(" WHERE p0.palabra = ");
        out.push_bind_param::<Text, _>(&self.words[0])?;
        if let Some(below) = &self.below {
            out.push_sql(" AND p0.fk_id_ticket < ");
            out.push_bind_param::<BigInt, _>(below)?;
        }
        out.push_sql(")");
        Ok(())
    }
}

impl Expression for HasWords {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for HasWords where ticket::id_ticket: AppearsOnTable<QS> {}

impl<QS> SelectableExpression<QS> for HasWords where ticket::id_ticket: SelectableExpression<QS> {}

impl<GB> ValidGrouping<GB> for HasWords {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for HasWords {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Sqlite> for HasWords {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.walk(out)
    }
}

impl QueryFragment<Mysql> for HasWords {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        self.walk(out)
    }
}

/// Adds the words of a message to its ticket's (those already there stay).
pub(crate) async fn index_message<C: Dialect>(
    conn: &mut C,
    ticket_id: i64,
    subject: &str,
    body: &str,
) -> QueryResult<()> {
    let rows: Vec<(String, i64)> = message_words(subject, body).into_iter().map(|w| (w, ticket_id)).collect();
    index_rows(conn, &rows).await
}

/// Most (word, ticket) rows per statement (two values each: within both
/// backends' limits on bound values).
const ROWS_PER_INSERT: usize = 4000;

pub(crate) async fn index_rows<C: Dialect>(conn: &mut C, rows: &[(String, i64)]) -> QueryResult<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = chunk.iter().map(|(w, t)| vec![Value::Text(w), Value::BigInt(*t)]).collect();
        conn.run(word_insert::<C>(values)).await?;
    }
    Ok(())
}

/// The insert of (word, ticket) rows; a row already there is skipped.
pub(crate) fn word_insert<C: Dialect>(rows: Vec<Vec<Value<'_>>>) -> Statement<'_> {
    let head = format!("{} INTO palabra_ticket", C::INSERT_IGNORE);
    Statement::insert_rows(&head, &["palabra", "fk_id_ticket"], rows)
}

/// Messages indexed per transaction by [`Db::index_backlog`].
const BACKLOG_BATCH: i64 = 500;

impl Db {
    /// Indexes the messages stored before the word table existed (ids up to
    /// `indice_busqueda.detalle_hasta`, which the migration set), newest
    /// first, a batch per transaction that also lowers the mark: safe to
    /// stop and start again. Returns how many messages it indexed.
    pub async fn index_backlog(&self) -> RepoResult<u64> {
        let mut done = 0;
        loop {
            let n: u64 = db_transaction!(self, |conn| {
                let upto: Option<i64> = indice_busqueda::table
                    .find(1)
                    .select(indice_busqueda::detalle_hasta)
                    .first(conn)
                    .await
                    .optional()?;
                let Some(upto) = upto.filter(|u| *u > 0) else { return Ok::<u64, TxError>(0) };
                let messages: Vec<(i64, i64, String, String)> = detalle_ticket::table
                    .filter(detalle_ticket::id_detalle_ticket.le(upto))
                    .order(detalle_ticket::id_detalle_ticket.desc())
                    .limit(BACKLOG_BATCH)
                    .select((
                        detalle_ticket::id_detalle_ticket,
                        detalle_ticket::fk_id_ticket,
                        detalle_ticket::asunto,
                        detalle_ticket::cuerpo,
                    ))
                    .load(conn)
                    .await?;
                let mut rows: Vec<(String, i64)> = messages
                    .iter()
                    .flat_map(|(_, t, subject, body)| message_words(subject, body).into_iter().map(|w| (w, *t)))
                    .collect();
                rows.sort_unstable();
                rows.dedup();
                index_rows(conn, &rows).await?;
                let next = messages.last().map_or(0, |m| m.0 - 1);
                diesel::update(indice_busqueda::table.find(1))
                    .set(indice_busqueda::detalle_hasta.eq(next))
                    .execute(conn)
                    .await?;
                // At least one, so that a mark over an empty range is
                // lowered to zero and the loop ends on the next pass.
                Ok(messages.len().max(1) as u64)
            })?;
            if n == 0 {
                return Ok(done);
            }
            done += n;
        }
    }
}

#[cfg(feature = "testing")]
impl Db {
    /// Empties the word table and marks every message as not indexed, as
    /// a database stored before the table existed looks after the
    /// migration (for tests of [`Db::index_backlog`]).
    pub async fn forget_search_index(&self) -> RepoResult<()> {
        db_transaction!(self, |conn| {
            diesel::delete(crate::schema::palabra_ticket::table).execute(conn).await?;
            let last: Option<i64> =
                detalle_ticket::table.select(diesel::dsl::max(detalle_ticket::id_detalle_ticket)).first(conn).await?;
            diesel::update(indice_busqueda::table.find(1))
                .set(indice_busqueda::detalle_hasta.eq(last.unwrap_or(0)))
                .execute(conn)
                .await?;
            Ok::<(), TxError>(())
        })
    }
}
