//! Working tickets: the list (filters, full-text, keyset cursor), the
//! thread's events, participants and attachments, operators' replies and
//! changes.

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use super::sla::SlaIs;
use super::tickets::{
    add_participants, change_load, continue_ticket, insert_detail, insert_events, notices_on_latest, participants,
    queue_notices, write_clock,
};
use super::webhooks::record_webhook_events;
use crate::dialect::Dialect;
use crate::error::{OrRepo, TxError};
use crate::models::*;
use crate::schema::*;
use crate::search::{HasWords, index_message};
use crate::sql::{Statement, Value};
use crate::{Db, db_run, db_transaction};

/// Every filter of a ticket query but the order's own cursor, as a new
/// boxed query selecting `$select`, at most `$q.limit` rows.
macro_rules! filtered {
    ($q:expr, $words:expr, $sla:expr, $select:expr) => {{
        let q = &$q;
        let mut query = ticket::table.select($select).limit(q.limit).into_boxed();
        if let Some(status) = q.status {
            query = query.filter(ticket::estado.eq(status.as_str()));
        }
        for department in [q.department_id, q.visible_department].into_iter().flatten() {
            query = query.filter(ticket::fk_id_departamento.eq(department));
        }
        query = match q.assignee {
            AssigneeFilter::Anyone => query,
            AssigneeFilter::Nobody => query.filter(ticket::fk_id_usuario_asignado.is_null()),
            AssigneeFilter::User(user) => query.filter(ticket::fk_id_usuario_asignado.eq(user)),
        };
        if let Some(priority) = q.priority {
            query = query.filter(ticket::prioridad.eq(priority.as_str()));
        }
        if let Some(from) = q.from {
            query = query.filter(ticket::created_at.ge(from));
        }
        if let Some(until) = q.until {
            query = query.filter(ticket::created_at.le(until));
        }
        if let Some(before) = q.before_id {
            query = query.filter(ticket::id_ticket.lt(before));
        }
        if let Some((at, id)) = q.before_activity {
            query = query.filter(ticket::updated_at.le(at).and(ticket::updated_at.lt(at).or(ticket::id_ticket.lt(id))));
        }
        if q.overdue {
            // A running clock's next due time (NULL once stopped), read in
            // the order of `ix_ticket_vencimiento`.
            query = query.filter(ticket::proximo_vencimiento.lt(q.now));
        }
        if let Some(address) = &q.participant {
            let theirs = participante_ticket::table
                .filter(participante_ticket::correo.eq(address.as_str().to_string()))
                .select(participante_ticket::fk_id_ticket);
            query = query.filter(ticket::id_ticket.eq_any(theirs));
        }
        if let Some(words) = &$words {
            query = query.filter(words.clone());
        }
        if let Some(sla) = $sla {
            query = query.filter(sla);
        }
        query
    }};
}

impl TicketWorkRepository for Db {
    /// One query: every filter set, the cursors, at most `limit` rows (no
    /// OFFSET: a page costs the same however deep). Newest first: by id
    /// descending. Latest activity first: by `(updated_at, id)` descending
    /// (`ix_ticket_actividad`). Nearest due first: two parts in one statement, each
    /// read in the order of `ix_ticket_vencimiento` and at most `limit`
    /// long, the running clocks by `(proximo_vencimiento, id)` after the
    /// cursor, then the rest (`proximo_vencimiento` NULL) by id; merged
    /// here. The search keeps the tickets one of whose messages holds
    /// every word (`crate::search`); `sla` keeps the clocks in that state
    /// at `now` (`SlaIs`).
    async fn list_tickets(&self, q: TicketQuery) -> RepoResult<Vec<Ticket>> {
        let words = match q.text.as_deref().map(|t| HasWords::new(t, q.before_id)) {
            None => None,
            // No word to look for: nothing matches.
            Some(None) => return Ok(Vec::new()),
            Some(Some(words)) => Some(words),
        };
        if q.limit <= 0 {
            return Ok(Vec::new());
        }
        let sla = q.sla.map(|state| SlaIs::new(state, q.now));
        let mut rows: Vec<TicketRow> = db_run!(self, |conn| {
            let due = ticket::proximo_vencimiento;
            match (q.order, q.after_due) {
                (TicketOrder::Newest, after) => {
                    let mut query = filtered!(q, words, sla, TicketRow::as_select()).order(ticket::id_ticket.desc());
                    // The other order's cursor, should it come: the tickets
                    // after it in that order.
                    query = match after {
                        None => query,
                        Some((None, id)) => query.filter(due.is_null().and(ticket::id_ticket.gt(id))),
                        Some((Some(at), id)) => query.filter(
                            due.gt(at).or(due.eq(at).and(ticket::id_ticket.gt(id))).or(due.is_null()).assume_not_null(),
                        ),
                    };
                    query.load(conn).await.or_repo()
                }
                (TicketOrder::LatestActivity, _) => filtered!(q, words, sla, TicketRow::as_select())
                    .order((ticket::updated_at.desc(), ticket::id_ticket.desc()))
                    .load(conn)
                    .await
                    .or_repo(),
                (TicketOrder::NearestDue, Some((None, id))) => filtered!(q, words, sla, TicketRow::as_select())
                    .filter(due.is_null())
                    .filter(ticket::id_ticket.gt(id))
                    .order(ticket::id_ticket)
                    .load(conn)
                    .await
                    .or_repo(),
                (TicketOrder::NearestDue, after) => {
                    let mut running = filtered!(q, words, sla, TicketRow::as_select())
                        .filter(due.is_not_null())
                        .order((due, ticket::id_ticket));
                    if let Some((Some(at), id)) = after {
                        running = running.filter(due.ge(at)).filter(due.gt(at).or(ticket::id_ticket.gt(id)));
                    }
                    let rest =
                        filtered!(q, words, sla, TicketRow::as_select()).filter(due.is_null()).order(ticket::id_ticket);
                    running.union_all(rest).load(conn).await.or_repo()
                }
            }
        })?;
        if q.order == TicketOrder::NearestDue {
            rows.sort_by_key(|r| (r.proximo_vencimiento.is_none(), r.proximo_vencimiento, r.id_ticket));
            rows.truncate(q.limit as usize);
        }
        rows.into_iter().map(Ticket::try_from).collect()
    }

    /// The ids only, at most `limit` of them, counted here: a capped count
    /// reads no more rows than the cap.
    async fn count_tickets(&self, q: TicketQuery) -> RepoResult<i64> {
        let q = TicketQuery { before_id: None, after_due: None, before_activity: None, ..q };
        let words = match q.text.as_deref().map(|t| HasWords::new(t, None)) {
            None => None,
            Some(None) => return Ok(0),
            Some(Some(words)) => Some(words),
        };
        if q.limit <= 0 {
            return Ok(0);
        }
        let sla = q.sla.map(|state| SlaIs::new(state, q.now));
        let ids: Vec<i64> =
            db_run!(self, |conn| filtered!(q, words, sla, ticket::id_ticket).load(conn).await.or_repo())?;
        Ok(ids.len() as i64)
    }

    async fn events_of(&self, ticket_id: i64) -> RepoResult<Vec<TicketEvent>> {
        let rows: Vec<EventRow> = db_run!(self, |conn| evento_ticket::table
            .filter(evento_ticket::fk_id_ticket.eq(ticket_id))
            .order(evento_ticket::id_evento)
            .select(EventRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().map(TicketEvent::try_from).collect()
    }

    async fn participants_of(&self, ticket_id: i64) -> RepoResult<Vec<String>> {
        let mut addresses: Vec<String> = db_run!(self, |conn| participante_ticket::table
            .filter(participante_ticket::fk_id_ticket.eq(ticket_id))
            .select(participante_ticket::correo)
            .load(conn)
            .await
            .or_repo())?;
        // Stored lower-case; sorted here, byte by byte, whatever the
        // column's collation.
        addresses.sort();
        Ok(addresses)
    }

    async fn ticket_attachments(&self, ticket_id: i64) -> RepoResult<Vec<Attachment>> {
        let rows: Vec<AttachmentRow> = db_run!(self, |conn| {
            let messages = detalle_ticket::table
                .filter(detalle_ticket::fk_id_ticket.eq(ticket_id))
                .select(detalle_ticket::id_detalle_ticket);
            adjunto_ticket::table
                .filter(adjunto_ticket::fk_id_detalle_ticket.eq_any(messages))
                .order(adjunto_ticket::id_adjunto)
                .select(AttachmentRow::as_select())
                .load(conn)
                .await
                .or_repo()
        })?;
        Ok(rows.into_iter().map(Attachment::from).collect())
    }

    async fn find_attachment(&self, id: i64) -> RepoResult<Option<Attachment>> {
        let row: Option<AttachmentRow> = db_run!(self, |conn| adjunto_ticket::table
            .find(id)
            .select(AttachmentRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        Ok(row.map(Attachment::from))
    }

    /// One transaction, in the steps of `store_incoming`: the ticket moves
    /// on (`NotFound` when it is gone), the detail, the participants, the
    /// notices, the webhooks' events. The dedupe key's unique index answers
    /// `Duplicate`.
    async fn store_reply(&self, r: NewReply) -> RepoResult<StoredReply> {
        let headers = serde_json::to_string(&r.detail.headers).map_err(RepoError::unexpected)?;
        let participants = participants(&r.participants);
        let returning = self.returning();
        db_transaction!(self, |conn| {
            continue_ticket(conn, r.ticket_id, false, r.sla.as_ref(), r.now).await?;
            let detail_id = insert_detail(conn, returning, r.ticket_id, false, &r.detail, &headers, r.now).await?;
            index_message(conn, r.ticket_id, &r.detail.subject, &r.detail.body).await?;
            add_participants(conn, r.ticket_id, &participants).await?;
            let notice_ids =
                queue_notices(conn, returning, r.ticket_id, detail_id, &r.notices, r.now, r.notices_due_at).await?;
            record_webhook_events(conn, r.ticket_id, Some(detail_id), &r.webhook_events, r.now).await?;
            Ok(StoredReply { detail_id, notice_ids })
        })
    }

    /// One transaction: the conditional update (nothing else is written
    /// when it finds other values), the loads, the events, the notices,
    /// the webhooks' events, then the ticket read back.
    async fn update_ticket(&self, u: TicketUpdate) -> RepoResult<Ticket> {
        let returning = self.returning();
        let row: TicketRow = db_transaction!(self, |conn| {
            if !apply_update(conn, &u).await? {
                let known: i64 = ticket::table.find(u.ticket_id).count().get_result(conn).await?;
                return Err(if known == 0 { RepoError::NotFound } else { RepoError::Conflict }.into());
            }
            if let Some(clock) = &u.sla {
                write_clock(conn, u.ticket_id, clock).await?;
            }
            move_loads(conn, &u.expected, &u.new, u.now).await?;
            insert_events(conn, u.ticket_id, &u.events, u.now).await?;
            notices_on_latest(conn, returning, u.ticket_id, &u.notices, u.now).await?;
            record_webhook_events(conn, u.ticket_id, None, &u.webhook_events, u.now).await?;
            Ok::<_, TxError>(ticket::table.find(u.ticket_id).select(TicketRow::as_select()).first(conn).await?)
        })?;
        row.try_into()
    }
}

// The steps of `update_ticket`, each inside its transaction, written once
// for both backends (see the note on the steps in `tickets.rs`).

/// The ticket's fields become `u.new`, in one statement, only where they
/// still are `u.expected`; `false` when no row was (no such ticket, or
/// other values). `closed_at` is set when the ticket closes, cleared when
/// it leaves `cerrado`, kept while it stays closed.
async fn apply_update<C: Dialect>(conn: &mut C, u: &TicketUpdate) -> QueryResult<bool> {
    let (old, new) = (&u.expected, &u.new);
    let closed = TicketStatus::Closed;
    let stays_closed = old.status == closed && new.status == closed;
    let sql = format!(
        "UPDATE ticket SET estado = ?, fk_id_usuario_asignado = ?, fk_id_departamento = ?, prioridad = ?, \
         updated_at = ?{} \
         WHERE id_ticket = ? AND estado = ? AND fk_id_departamento = ? AND prioridad = ? \
         AND fk_id_usuario_asignado {} ?",
        if stays_closed { "" } else { ", closed_at = ?" },
        conn.null_safe_eq()
    );
    let mut values = vec![
        Value::Text(new.status.as_str()),
        Value::OptBigInt(new.assignee_id),
        Value::BigInt(new.department_id),
        Value::Text(new.priority.as_str()),
        Value::Timestamp(u.now),
    ];
    if !stays_closed {
        values.push(Value::OptTimestamp((new.status == closed).then_some(u.now)));
    }
    values.extend([
        Value::BigInt(u.ticket_id),
        Value::Text(old.status.as_str()),
        Value::BigInt(old.department_id),
        Value::Text(old.priority.as_str()),
        Value::OptBigInt(old.assignee_id),
    ]);
    Ok(conn.run(Statement::new(sql, values)).await? == 1)
}

/// The open-ticket counts follow the change (a ticket counts for its
/// assignee while it is not closed): one less for the old assignee if it
/// counted there and no longer does, one more for the new if it counts
/// there and did not; a new assignee's last assignment is now.
async fn move_loads<C: Dialect>(
    conn: &mut C,
    old: &TicketFields,
    new: &TicketFields,
    now: Timestamp,
) -> QueryResult<()> {
    let counted = old.assignee_id.filter(|_| old.status.is_open());
    let counts = new.assignee_id.filter(|_| new.status.is_open());
    if let Some(user) = counted.filter(|u| counts != Some(*u)) {
        change_load(conn, user, -1, None).await?;
    }
    if let Some(user) = new.assignee_id.filter(|a| old.assignee_id != Some(*a)) {
        let step = if counts == Some(user) { 1 } else { 0 };
        change_load(conn, user, step, Some(now)).await?;
    } else if let Some(user) = counts.filter(|u| counted != Some(*u)) {
        // The same assignee, and the ticket counts again.
        change_load(conn, user, 1, None).await?;
    }
    Ok(())
}
