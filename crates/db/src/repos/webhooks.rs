//! Outgoing webhooks: subscriptions, the events the ticket transactions
//! record ([`record_webhook_events`], a step of `store_incoming`,
//! `store_reply` and `update_ticket`), and their deliveries: leases,
//! attempts, outcomes.

use std::collections::BTreeSet;
use std::future::Future;

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::dialect::Dialect;
use crate::error::{OrRepo, TxError};
use crate::models::*;
use crate::schema::*;
use crate::sql::{Statement, Value};
use crate::{Db, db_run, db_transaction};

/// Longest error text kept per delivery.
const MAX_ERROR: usize = 2000;

/// The columns of an event, in the order of its values.
const EVENT_COLUMNS: &[&str] = &["id_evento", "tipo", "fk_id_ticket", "cuerpo", "created_at"];

/// The columns of a delivery, in the order of its values.
const DELIVERY_COLUMNS: &[&str] =
    &["fk_id_evento", "fk_id_webhook", "estado", "intentos", "proximo_intento", "created_at"];

/// The webhooks' step of a ticket transaction: reads the active
/// subscriptions (as this transaction sees them), then writes each event
/// one of them wants, its body rendered with the ticket's id and, for an
/// event with a message, `detail_id`, and one pending delivery, due `now`,
/// per subscription that wants it: three statements at most, whatever the
/// number of events; none when there is no event.
#[expect(clippy::manual_async_fn, reason = "its future is Send by its bounds; see the note in tickets.rs")]
pub(super) fn record_webhook_events<'a, C: Dialect>(
    conn: &'a mut C,
    ticket_id: i64,
    detail_id: Option<i64>,
    events: &'a [NewWebhookEvent],
    now: Timestamp,
) -> impl Future<Output = QueryResult<()>> + Send + 'a {
    async move {
        if events.is_empty() {
            return Ok(());
        }
        let active = webhook::table
            .filter(webhook::estado.eq(Status::Active.as_str()))
            .order(webhook::id_webhook)
            .select((webhook::id_webhook, webhook::eventos));
        let hooks: Vec<(i64, String)> = conn.load_rows(active).await?;
        // Names this version does not know are left out, not refused.
        let hooks: Vec<(i64, BTreeSet<WebhookEventKind>)> = hooks
            .into_iter()
            .map(|(id, names)| (id, names.split(',').filter_map(WebhookEventKind::parse).collect()))
            .collect();
        let wanted: Vec<(&NewWebhookEvent, Vec<i64>, String)> = events
            .iter()
            .filter_map(|e| {
                let to: Vec<i64> =
                    hooks.iter().filter(|(_, kinds)| kinds.contains(&e.kind)).map(|(id, _)| *id).collect();
                let body = || e.body(ticket_id, e.message.as_ref().and(detail_id));
                (!to.is_empty()).then(|| (e, to, body()))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let rows = wanted
            .iter()
            .map(|(e, _, body)| {
                vec![
                    Value::Text(&e.id),
                    Value::Text(e.kind.as_str()),
                    Value::BigInt(ticket_id),
                    Value::Text(body),
                    Value::Timestamp(now),
                ]
            })
            .collect();
        conn.run(Statement::insert_rows("INSERT INTO webhook_evento", EVENT_COLUMNS, rows)).await?;
        let rows = wanted
            .iter()
            .flat_map(|(e, to, _)| {
                to.iter().map(move |hook| {
                    vec![
                        Value::Text(&e.id),
                        Value::BigInt(*hook),
                        Value::Text(DeliveryStatus::Pending.as_str()),
                        Value::Int(0),
                        Value::Timestamp(now),
                        Value::Timestamp(now),
                    ]
                })
            })
            .collect();
        conn.run(Statement::insert_rows("INSERT INTO webhook_entrega", DELIVERY_COLUMNS, rows)).await?;
        Ok(())
    }
}

/// Deliveries with what sending them takes, joined, by id.
macro_rules! joined_deliveries {
    () => {
        webhook_entrega::table
            .inner_join(webhook_evento::table)
            .inner_join(webhook::table)
            .order(webhook_entrega::id_entrega)
            .select((
                DeliveryRow::as_select(),
                (webhook_evento::tipo, webhook_evento::fk_id_ticket, webhook_evento::cuerpo),
                (webhook::url, webhook::secreto_cifrado),
            ))
    };
}

fn deliveries(rows: Vec<DeliveryJoin>) -> RepoResult<Vec<WebhookDelivery>> {
    rows.into_iter().map(delivery).collect()
}

impl WebhookRepository for Db {
    async fn create_webhook(&self, new: NewWebhook) -> RepoResult<Webhook> {
        let returning = self.returning();
        let events = WebhookEventKind::join(&new.events);
        let id = db_transaction!(self, |conn| {
            let insert = diesel::insert_into(webhook::table).values((
                webhook::url.eq(&new.url),
                webhook::eventos.eq(&events),
                webhook::secreto_cifrado.eq(&new.sealed_secret),
                webhook::estado.eq(new.status.as_str()),
                webhook::created_at.eq(new.now),
                webhook::updated_at.eq(new.now),
            ));
            Ok(conn.insert_id(returning, insert, webhook::id_webhook).await?)
        })?;
        Ok(Webhook {
            id,
            url: new.url,
            events: new.events,
            sealed_secret: new.sealed_secret,
            status: new.status,
            created_at: new.now,
            updated_at: new.now,
        })
    }

    async fn list_webhooks(&self) -> RepoResult<Vec<Webhook>> {
        let rows: Vec<WebhookRow> = db_run!(self, |conn| webhook::table
            .order(webhook::id_webhook)
            .select(WebhookRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().map(Webhook::try_from).collect()
    }

    async fn find_webhook(&self, id: i64) -> RepoResult<Option<Webhook>> {
        let row: Option<WebhookRow> = db_run!(self, |conn| webhook::table
            .find(id)
            .select(WebhookRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(Webhook::try_from).transpose()
    }

    async fn set_webhook_secret(&self, id: i64, sealed_secret: Vec<u8>, now: Timestamp) -> RepoResult<()> {
        let changed = db_transaction!(self, |conn| {
            Ok(diesel::update(webhook::table.find(id))
                .set((webhook::secreto_cifrado.eq(&sealed_secret), webhook::updated_at.eq(now)))
                .execute(conn)
                .await?)
        })?;
        if changed == 1 { Ok(()) } else { Err(RepoError::NotFound) }
    }

    /// One transaction: its deliveries, the subscription, then the events
    /// no delivery names any more.
    async fn remove_webhook(&self, id: i64) -> RepoResult<()> {
        db_transaction!(self, |conn| {
            diesel::delete(webhook_entrega::table.filter(webhook_entrega::fk_id_webhook.eq(id))).execute(conn).await?;
            if diesel::delete(webhook::table.find(id)).execute(conn).await? != 1 {
                return Err(RepoError::NotFound.into());
            }
            let named = webhook_entrega::table.filter(webhook_entrega::fk_id_evento.eq(webhook_evento::id_evento));
            diesel::delete(webhook_evento::table.filter(diesel::dsl::not(diesel::dsl::exists(named))))
                .execute(conn)
                .await?;
            Ok::<_, TxError>(())
        })
    }

    /// The due ones, then each leased with a conditional UPDATE: whoever
    /// changes the row holds it, so concurrent claimers never share one.
    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        limit: i64,
        lease_until: Timestamp,
    ) -> RepoResult<Vec<WebhookDelivery>> {
        let pending = DeliveryStatus::Pending.as_str();
        let candidates: Vec<i64> = db_run!(self, |conn| webhook_entrega::table
            .filter(webhook_entrega::estado.eq(pending))
            .filter(webhook_entrega::proximo_intento.le(now))
            .filter(webhook_entrega::bloqueado_hasta.is_null().or(webhook_entrega::bloqueado_hasta.le(now)))
            .order(webhook_entrega::id_entrega)
            .limit(limit.max(0))
            .select(webhook_entrega::id_entrega)
            .load(conn)
            .await
            .or_repo())?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<DeliveryJoin> = db_transaction!(self, |conn| {
            let mut won = Vec::new();
            for id in &candidates {
                let n = diesel::update(
                    webhook_entrega::table
                        .filter(webhook_entrega::id_entrega.eq(*id))
                        .filter(webhook_entrega::estado.eq(pending))
                        .filter(
                            webhook_entrega::bloqueado_hasta.is_null().or(webhook_entrega::bloqueado_hasta.le(now)),
                        ),
                )
                .set(webhook_entrega::bloqueado_hasta.eq(lease_until))
                .execute(conn)
                .await?;
                if n == 1 {
                    won.push(*id);
                }
            }
            Ok(joined_deliveries!().filter(webhook_entrega::id_entrega.eq_any(&won)).load(conn).await?)
        })?;
        deliveries(rows)
    }

    async fn record_delivery(&self, id: i64, now: Timestamp, outcome: DeliveryOutcome) -> RepoResult<WebhookDelivery> {
        let error = match &outcome {
            DeliveryOutcome::Sent => None,
            DeliveryOutcome::Retry { error, .. } | DeliveryOutcome::Failed { error } => {
                Some(error.chars().take(MAX_ERROR).collect::<String>())
            }
        };
        let row: Option<DeliveryJoin> = db_transaction!(self, |conn| {
            let row = webhook_entrega::table.find(id);
            let attempts = webhook_entrega::intentos.eq(webhook_entrega::intentos + 1);
            let released = webhook_entrega::bloqueado_hasta.eq(None::<Timestamp>);
            let changed = match &outcome {
                DeliveryOutcome::Sent => {
                    let sent = DeliveryStatus::Sent.as_str();
                    let values = (webhook_entrega::estado.eq(sent), webhook_entrega::enviada_at.eq(now));
                    diesel::update(row).set((attempts, released, values)).execute(conn).await?
                }
                DeliveryOutcome::Retry { next_attempt_at, .. } => {
                    let values = (
                        webhook_entrega::ultimo_error.eq(&error),
                        webhook_entrega::proximo_intento.eq(*next_attempt_at),
                    );
                    diesel::update(row).set((attempts, released, values)).execute(conn).await?
                }
                DeliveryOutcome::Failed { .. } => {
                    let failed = DeliveryStatus::Failed.as_str();
                    let values = (webhook_entrega::estado.eq(failed), webhook_entrega::ultimo_error.eq(&error));
                    diesel::update(row).set((attempts, released, values)).execute(conn).await?
                }
            };
            if changed != 1 {
                return Ok(None);
            }
            Ok(joined_deliveries!().filter(webhook_entrega::id_entrega.eq(id)).first(conn).await.optional()?)
        })?;
        delivery(row.ok_or(RepoError::NotFound)?)
    }

    async fn deliveries_of_event(&self, event_id: &str) -> RepoResult<Vec<WebhookDelivery>> {
        let rows: Vec<DeliveryJoin> = db_run!(self, |conn| joined_deliveries!()
            .filter(webhook_entrega::fk_id_evento.eq(event_id))
            .load(conn)
            .await
            .or_repo())?;
        deliveries(rows)
    }

    async fn pending_deliveries(&self) -> RepoResult<i64> {
        db_run!(self, |conn| webhook_entrega::table
            .filter(webhook_entrega::estado.eq(DeliveryStatus::Pending.as_str()))
            .count()
            .get_result(conn)
            .await
            .or_repo())
    }

    /// One transaction: the deliveries chosen (by the status index), their
    /// events noted, the deliveries deleted, then those events no delivery
    /// names any more.
    async fn purge_finished_deliveries(&self, before: Timestamp, limit: i64) -> RepoResult<u64> {
        let finished = [DeliveryStatus::Sent.as_str(), DeliveryStatus::Failed.as_str()];
        db_transaction!(self, |conn| {
            let old: Vec<(i64, String)> = webhook_entrega::table
                .filter(webhook_entrega::estado.eq_any(finished))
                .filter(webhook_entrega::created_at.lt(before))
                .order(webhook_entrega::id_entrega)
                .limit(limit.max(0))
                .select((webhook_entrega::id_entrega, webhook_entrega::fk_id_evento))
                .load(conn)
                .await?;
            if old.is_empty() {
                return Ok::<_, TxError>(0);
            }
            let ids: Vec<i64> = old.iter().map(|(id, _)| *id).collect();
            let mut events: Vec<&str> = old.iter().map(|(_, e)| e.as_str()).collect();
            events.sort_unstable();
            events.dedup();
            let deleted = diesel::delete(webhook_entrega::table.filter(webhook_entrega::id_entrega.eq_any(&ids)))
                .execute(conn)
                .await?;
            let named = webhook_entrega::table.filter(webhook_entrega::fk_id_evento.eq(webhook_evento::id_evento));
            diesel::delete(
                webhook_evento::table
                    .filter(webhook_evento::id_evento.eq_any(&events))
                    .filter(diesel::dsl::not(diesel::dsl::exists(named))),
            )
            .execute(conn)
            .await?;
            Ok(deleted as u64)
        })
    }
}
