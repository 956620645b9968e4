//! The bitácora.

use std::collections::BTreeSet;

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::sql::{Statement, Value, chunk_sizes};
use crate::{Db, db_run, db_transaction};

/// Longest endpoint / consumer text kept (the column widths).
const MAX_ENDPOINT: usize = 255;
const MAX_CONSUMER: usize = 100;

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The columns of [`AuditInsert`], in its order.
const AUDIT_COLUMNS: &[&str] = &[
    "id_bitacora_log",
    "fecha",
    "fk_id_consumidor",
    "consumidor",
    "endpoint",
    "metodo",
    "ip",
    "status_http",
    "duracion_us",
    "cuerpo",
    "fk_id_bitacora_padre",
    "fk_id_usuario",
];

/// A record as its row, before it is inserted (the body is borrowed).
pub(super) struct AuditInsert<'a> {
    id_bitacora_log: i64,
    fecha: Timestamp,
    fk_id_consumidor: Option<i64>,
    consumidor: Option<String>,
    endpoint: String,
    metodo: String,
    ip: String,
    status_http: Option<i32>,
    duracion_us: Option<i64>,
    cuerpo: &'a str,
    fk_id_bitacora_padre: Option<i64>,
    fk_id_usuario: Option<i64>,
}

/// The rows of a batch. A parent is kept when it is `stored` or earlier in
/// the batch; any other is dropped, never refused.
fn rows<'a>(records: &'a [AuditRecord], stored: &BTreeSet<i64>) -> Vec<AuditInsert<'a>> {
    let in_batch: BTreeSet<i64> = records.iter().map(|r| r.id).collect();
    records
        .iter()
        .map(|r| row(r, r.entry.parent_id.filter(|p| stored.contains(p) || (in_batch.contains(p) && *p < r.id))))
        .collect()
}

/// The rows of records written with mails' rows (`NewIncoming::audit`),
/// without their parent links: a request naming a parent has its record
/// written by the bitácora's writer, which checks the parent is stored.
pub(super) fn unlinked_rows<'a>(records: impl Iterator<Item = &'a AuditRecord>) -> Vec<AuditInsert<'a>> {
    records.map(|r| row(r, None)).collect()
}

/// What a record written with a mail's rows writes over when its id is
/// taken: its request was dropped while the mail was being written and
/// recorded as 499 by the guard (`http::audit`), but the mail was stored,
/// so the record says how the request ended for the store (its outcome).
pub(super) fn keeping_the_outcome<C: crate::dialect::Dialect>(insert: Statement<'_>) -> Statement<'_> {
    insert.then(&C::upsert("id_bitacora_log", &["status_http", "duracion_us", "fk_id_consumidor", "fk_id_usuario"]))
}

fn row(r: &AuditRecord, parent: Option<i64>) -> AuditInsert<'_> {
    AuditInsert {
        id_bitacora_log: r.id,
        fecha: r.entry.at,
        fk_id_consumidor: r.outcome.consumer_id,
        consumidor: r.entry.consumer_name.as_deref().map(|c| cut(c, MAX_CONSUMER)),
        endpoint: cut(&r.entry.endpoint, MAX_ENDPOINT),
        metodo: cut(&r.entry.method, 10),
        ip: cut(&r.entry.client_ip, 45),
        status_http: Some(i32::from(r.outcome.status)),
        duracion_us: Some(r.outcome.duration_us),
        cuerpo: &r.entry.body,
        fk_id_bitacora_padre: parent,
        fk_id_usuario: r.outcome.user_id,
    }
}

/// The statements writing all the rows: one per chunk of
/// [`chunk_sizes`], so that every one is kept prepared.
pub(super) fn inserts<'a>(rows: &'a [AuditInsert<'a>]) -> Vec<Statement<'a>> {
    let mut rest = rows;
    chunk_sizes(rows.len())
        .into_iter()
        .map(|n| {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            insert(chunk)
        })
        .collect()
}

fn insert<'a>(rows: &'a [AuditInsert<'a>]) -> Statement<'a> {
    let values = rows
        .iter()
        .map(|r| {
            vec![
                Value::BigInt(r.id_bitacora_log),
                Value::Timestamp(r.fecha),
                Value::OptBigInt(r.fk_id_consumidor),
                Value::OptText(r.consumidor.as_deref()),
                Value::Text(&r.endpoint),
                Value::Text(&r.metodo),
                Value::Text(&r.ip),
                Value::OptInt(r.status_http),
                Value::OptBigInt(r.duracion_us),
                Value::Text(r.cuerpo),
                Value::OptBigInt(r.fk_id_bitacora_padre),
                Value::OptBigInt(r.fk_id_usuario),
            ]
        })
        .collect();
    Statement::insert_rows("INSERT INTO bitacora_log", AUDIT_COLUMNS, values)
}

impl AuditRepository for Db {
    async fn reserve_audit_ids(&self, count: i64) -> RepoResult<i64> {
        let count = count.max(1);
        db_transaction!(self, |conn| {
            // The UPDATE takes the row's lock first, so concurrent
            // reservations queue instead of reading the same value.
            diesel::update(bitacora_secuencia::table.find(1i16))
                .set(bitacora_secuencia::siguiente.eq(bitacora_secuencia::siguiente + count))
                .execute(conn)
                .await?;
            let next: i64 =
                bitacora_secuencia::table.find(1i16).select(bitacora_secuencia::siguiente).first(conn).await?;
            Ok(next - count)
        })
    }

    async fn write_audit(&self, records: &[AuditRecord]) -> RepoResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        // The last call failed to reach the database: give the records back
        // at once (the bitácora spools them) instead of waiting out another
        // deadline with the requests behind them.
        if self.link.is_down() {
            return Err(helpdesk_domain::RepoError::Unavailable("the database link is down".into()));
        }
        let in_batch: BTreeSet<i64> = records.iter().map(|r| r.id).collect();
        let asked: Vec<i64> =
            records.iter().filter_map(|r| r.entry.parent_id).filter(|p| !in_batch.contains(p)).collect();
        // The common case, no parent outside the batch and one statement:
        // a multi-row INSERT in autocommit is atomic on its own, and saves
        // MySQL the BEGIN and COMMIT round trips of a transaction.
        if let (true, 1, crate::conn::Pools::Mysql(pool)) =
            (asked.is_empty(), chunk_sizes(records.len()).len(), &self.backend)
        {
            let rows = rows(records, &BTreeSet::new());
            return self.link.run(pool, async |conn| insert(&rows).execute(conn).await.map(|_| ()).or_repo()).await;
        }
        db_transaction!(self, |conn| {
            // Parents outside the batch that are stored.
            let stored: BTreeSet<i64> = if asked.is_empty() {
                BTreeSet::new()
            } else {
                bitacora_log::table
                    .filter(bitacora_log::id_bitacora_log.eq_any(&asked))
                    .select(bitacora_log::id_bitacora_log)
                    .load::<i64>(&mut *conn)
                    .await?
                    .into_iter()
                    .collect()
            };
            let rows = rows(records, &stored);
            for statement in inserts(&rows) {
                statement.execute(&mut *conn).await?;
            }
            Ok(())
        })
    }

    async fn find_audit(&self, id: i64) -> RepoResult<Option<AuditEntry>> {
        let row: Option<AuditRow> = db_run!(self, |conn| bitacora_log::table
            .find(id)
            .select(AuditRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        Ok(row.map(AuditEntry::from))
    }

    /// The oldest ids by date (`ix_bitacora_fecha`), then a delete by id:
    /// MySQL takes no `LIMIT` in a subquery of the table it deletes from.
    async fn purge_audit(&self, before: Timestamp, limit: i64) -> RepoResult<u64> {
        db_transaction!(self, |conn| {
            let old: Vec<i64> = bitacora_log::table
                .filter(bitacora_log::fecha.lt(before))
                .order((bitacora_log::fecha, bitacora_log::id_bitacora_log))
                .limit(limit.max(0))
                .select(bitacora_log::id_bitacora_log)
                .load(&mut *conn)
                .await?;
            if old.is_empty() {
                return Ok(0);
            }
            let n = diesel::delete(bitacora_log::table.filter(bitacora_log::id_bitacora_log.eq_any(&old)))
                .execute(&mut *conn)
                .await?;
            Ok(n as u64)
        })
    }

    async fn recent_audit(&self, limit: i64) -> RepoResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = db_run!(self, |conn| bitacora_log::table
            .order(bitacora_log::id_bitacora_log.desc())
            .limit(limit.max(0))
            .select(AuditRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}
