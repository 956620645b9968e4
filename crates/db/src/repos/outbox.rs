//! The outbox of notices: leases, attempts, outcomes.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use super::tickets::{insert_events, queue_notices, sent_to};
use super::webhooks::record_webhook_events;
use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::sql::{Select, Statement, Value, marks};
use crate::{Db, db_run, db_transaction};

/// Whose notices to read.
#[derive(Clone, Copy)]
enum NoticesOf {
    Ticket(i64),
    Detail(i64),
}

impl Db {
    /// The notices of a ticket or of one of its messages, by id.
    async fn notices_of(&self, of: NoticesOf) -> RepoResult<Vec<Notice>> {
        let rows: Vec<NoticeRow> = db_run!(self, |conn| {
            let q =
                notificacion::table.order(notificacion::id_notificacion).select(NoticeRow::as_select()).into_boxed();
            let q = match of {
                NoticesOf::Ticket(id) => q.filter(notificacion::fk_id_ticket.eq(id)),
                NoticesOf::Detail(id) => q.filter(notificacion::fk_id_detalle_ticket.eq(id)),
            };
            q.load(conn).await.or_repo()
        })?;
        rows.into_iter().map(Notice::try_from).collect()
    }
}

/// Longest error text kept per attempt.
const MAX_ERROR: usize = 2000;

fn cut(s: &str) -> String {
    s.chars().take(MAX_ERROR).collect()
}

impl Db {
    /// Leases each candidate with a conditional UPDATE: whoever changes the
    /// row holds it, so concurrent claimers never share a notice.
    async fn lease(&self, candidates: Vec<i64>, now: Timestamp, lease_until: Timestamp) -> RepoResult<Vec<Notice>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<NoticeRow> = db_transaction!(self, |conn| {
            let mut won = Vec::new();
            for id in &candidates {
                let n = diesel::update(
                    notificacion::table
                        .filter(notificacion::id_notificacion.eq(*id))
                        .filter(notificacion::estado.eq(NoticeStatus::Pending.as_str()))
                        .filter(notificacion::bloqueado_hasta.is_null().or(notificacion::bloqueado_hasta.le(now))),
                )
                .set(notificacion::bloqueado_hasta.eq(lease_until))
                .execute(conn)
                .await?;
                if n == 1 {
                    won.push(*id);
                }
            }
            Ok(notificacion::table
                .filter(notificacion::id_notificacion.eq_any(&won))
                .order(notificacion::id_notificacion)
                .select(NoticeRow::as_select())
                .load(conn)
                .await?)
        })?;
        rows.into_iter().map(Notice::try_from).collect()
    }
}

impl OutboxRepository for Db {
    async fn claim_due_notices(&self, now: Timestamp, limit: i64, lease_until: Timestamp) -> RepoResult<Vec<Notice>> {
        let candidates: Vec<i64> = db_run!(self, |conn| notificacion::table
            .filter(notificacion::estado.eq(NoticeStatus::Pending.as_str()))
            .filter(notificacion::proximo_intento.le(now))
            .filter(notificacion::bloqueado_hasta.is_null().or(notificacion::bloqueado_hasta.le(now)))
            .order(notificacion::id_notificacion)
            .limit(limit.max(0))
            .select(notificacion::id_notificacion)
            .load(conn)
            .await
            .or_repo())?;
        self.lease(candidates, now, lease_until).await
    }

    async fn claim_notices(&self, ids: Vec<i64>, now: Timestamp, lease_until: Timestamp) -> RepoResult<Vec<Notice>> {
        self.lease(ids, now, lease_until).await
    }

    async fn record_attempt(&self, notice_id: i64, now: Timestamp, outcome: AttemptOutcome) -> RepoResult<Notice> {
        let (ok, detail) = match &outcome {
            AttemptOutcome::Sent { result } => (true, cut(result)),
            AttemptOutcome::Retry { error, .. } | AttemptOutcome::Failed { error, .. } => (false, cut(error)),
        };
        let returning = self.returning();
        let row: NoticeRow = db_transaction!(self, |conn| {
            let changed = match &outcome {
                AttemptOutcome::Sent { .. } => {
                    diesel::update(notificacion::table.find(notice_id))
                        .set((
                            notificacion::estado.eq(NoticeStatus::Sent.as_str()),
                            notificacion::intentos.eq(notificacion::intentos + 1),
                            notificacion::bloqueado_hasta.eq(None::<Timestamp>),
                            notificacion::resultado.eq(&detail),
                            notificacion::enviada_at.eq(now),
                        ))
                        .execute(conn)
                        .await?
                }
                AttemptOutcome::Retry { next_attempt_at, .. } => {
                    diesel::update(notificacion::table.find(notice_id))
                        .set((
                            notificacion::intentos.eq(notificacion::intentos + 1),
                            notificacion::bloqueado_hasta.eq(None::<Timestamp>),
                            notificacion::ultimo_error.eq(&detail),
                            notificacion::proximo_intento.eq(*next_attempt_at),
                        ))
                        .execute(conn)
                        .await?
                }
                AttemptOutcome::Failed { .. } => {
                    diesel::update(notificacion::table.find(notice_id))
                        .set((
                            notificacion::estado.eq(NoticeStatus::Failed.as_str()),
                            notificacion::intentos.eq(notificacion::intentos + 1),
                            notificacion::bloqueado_hasta.eq(None::<Timestamp>),
                            notificacion::ultimo_error.eq(&detail),
                        ))
                        .execute(conn)
                        .await?
                }
            };
            if changed != 1 {
                return Err(RepoError::NotFound.into());
            }
            if let AttemptOutcome::Failed { follow_up, .. } = &outcome {
                let (ticket_id, detail_id): (i64, i64) = notificacion::table
                    .find(notice_id)
                    .select((notificacion::fk_id_ticket, notificacion::fk_id_detalle_ticket))
                    .first(conn)
                    .await?;
                insert_events(conn, ticket_id, &follow_up.events, now).await?;
                queue_notices(conn, returning, ticket_id, detail_id, &follow_up.notices, now, now).await?;
                record_webhook_events(conn, ticket_id, Some(detail_id), &follow_up.webhook_events, now).await?;
            }
            diesel::insert_into(notificacion_intento::table)
                .values((
                    notificacion_intento::fk_id_notificacion.eq(notice_id),
                    notificacion_intento::fecha.eq(now),
                    notificacion_intento::exito.eq(ok),
                    notificacion_intento::detalle.eq(&detail),
                ))
                .execute(conn)
                .await?;
            Ok(notificacion::table.find(notice_id).select(NoticeRow::as_select()).first(conn).await?)
        })?;
        Notice::try_from(row)
    }

    async fn notices_of_ticket(&self, ticket_id: i64) -> RepoResult<Vec<Notice>> {
        self.notices_of(NoticesOf::Ticket(ticket_id)).await
    }

    async fn notices_of_detail(&self, detail_id: i64) -> RepoResult<Vec<Notice>> {
        self.notices_of(NoticesOf::Detail(detail_id)).await
    }

    async fn count_notices_since(&self, kind: NoticeKind, recipient: &str, since: Timestamp) -> RepoResult<i64> {
        let recipient = recipient.to_string();
        db_run!(self, |conn| notificacion::table
            .filter(notificacion::tipo.eq(kind.as_str()))
            .filter(notificacion::destino.eq(&recipient))
            .filter(notificacion::created_at.ge(since))
            .count()
            .get_result(conn)
            .await
            .or_repo())
    }

    async fn count_notices_to(
        &self,
        kind: NoticeKind,
        recipients: &[String],
        since: Timestamp,
    ) -> RepoResult<Vec<i64>> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::Text)]
            destino: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let sql = format!(
            "SELECT destino, COUNT(*) AS n FROM notificacion WHERE tipo = ? AND destino IN ({}) AND created_at >= ? \
             GROUP BY destino",
            marks(recipients.len())
        );
        let values: Vec<Value<'_>> = std::iter::once(Value::Text(kind.as_str()))
            .chain(recipients.iter().map(|r| Value::Text(r)))
            .chain([Value::Timestamp(since)])
            .collect();
        let counts: Vec<Count> =
            db_run!(self, |conn| Select(Statement::new(sql.clone(), values.clone())).load(conn).await.or_repo())?;
        let counts: Vec<(String, i64)> = counts.into_iter().map(|c| (c.destino, c.n)).collect();
        Ok(sent_to(recipients, &counts))
    }

    async fn attempts_of(&self, notice_id: i64) -> RepoResult<Vec<(Timestamp, bool)>> {
        db_run!(self, |conn| notificacion_intento::table
            .filter(notificacion_intento::fk_id_notificacion.eq(notice_id))
            .order(notificacion_intento::id_intento)
            .select((notificacion_intento::fecha, notificacion_intento::exito))
            .load(conn)
            .await
            .or_repo())
    }

    async fn pending_notices(&self) -> RepoResult<i64> {
        db_run!(self, |conn| notificacion::table
            .filter(notificacion::estado.eq(NoticeStatus::Pending.as_str()))
            .count()
            .get_result(conn)
            .await
            .or_repo())
    }
}
