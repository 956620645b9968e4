//! Background work of the API server, each a loop that keeps going through
//! any error (the next round retries) until told to stop:
//! - the outbox: delivers notices that are due;
//! - outgoing webhooks: delivers the events that are due, and counts the
//!   attempts for `/metrics`;
//! - the bitácora's spool: writes records kept on local disk while the
//!   database was unreachable, once it answers again.

use helpdesk_domain::Report;
use std::sync::Arc;
use std::time::Duration;

use helpdesk_domain::RepoError;
use helpdesk_domain::ports::{
    Adapters, AuditRepository, ChatNotifier, Clock, MailNotifier, Store, StoreHealth, WebhookRepository,
};
use helpdesk_domain::services::{AuditService, DeliveryReport, OutboxService, SsoPorts, SsoService, WebhookDispatcher};
use helpdesk_http::AppState;
use tokio::sync::watch;

/// Notices per round.
const BATCH: i64 = 50;

/// Webhook deliveries per round (attempted all at once).
const WEBHOOK_BATCH: i64 = 20;

/// Tells the workers to stop after their current round.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// The signal and the handle that raises it.
    pub fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    fn raised(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `period`; `false` when the stop was raised meanwhile.
    async fn pause(&mut self, period: Duration) -> bool {
        let raised = tokio::select! {
            _ = self.0.wait_for(|stop| *stop) => true,
            () = tokio::time::sleep(period) => false,
        };
        !raised && !self.raised()
    }
}

pub async fn outbox<R: Store, M: MailNotifier, C: ChatNotifier>(
    outbox: Arc<OutboxService<R, M, C>>,
    poll: Duration,
    mut stop: Stop,
) {
    while !stop.raised() {
        match outbox.run_due(BATCH).await {
            // A full batch: there may be more, go on at once.
            Ok(n) if n as i64 == BATCH => continue,
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(delivered = n, "outbox round");
                }
            }
            Err(e) => tracing::warn!(error = %Report(&e), "outbox round failed; retrying"),
        }
        if !stop.pause(poll).await {
            break;
        }
    }
}

/// Delivers the webhooks' events that are due, `poll` apart (at once again
/// after a full round); `count` hears how each round went.
pub async fn webhooks<R: WebhookRepository>(
    dispatcher: Arc<WebhookDispatcher<R>>,
    poll: Duration,
    mut stop: Stop,
    count: impl Fn(&DeliveryReport) + Send,
) {
    while !stop.raised() {
        match dispatcher.run_due(WEBHOOK_BATCH).await {
            Ok(report) => {
                count(&report);
                if let Some(e) = &report.error {
                    tracing::warn!(error = %Report(e), unrecorded = report.unrecorded, "webhook attempts not recorded; they will be sent again");
                }
                if report.attempts() > 0 {
                    tracing::debug!(
                        sent = report.sent,
                        retry = report.retried,
                        failed = report.failed,
                        "webhook round"
                    );
                }
                if report.attempts() as i64 == WEBHOOK_BATCH {
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %Report(&e), "webhook round failed; retrying"),
        }
        if !stop.pause(poll).await {
            break;
        }
    }
}

/// Tickets announced or assigned per round.
const SLA_BATCH: i64 = 100;

/// Service levels, `poll` apart: announces the thresholds crossed (each
/// ticket's once, whatever the number of servers: the store decides) and
/// counts the breaches for `/metrics`; assigns waiting tickets to operators
/// who became available.
pub async fn sla<A: Adapters>(state: actix_web::web::Data<AppState<A>>, poll: Duration, mut stop: Stop) {
    while !stop.raised() {
        match state.sla.escalate_due(SLA_BATCH).await {
            Ok(done) => {
                let breaches = done.iter().filter(|e| e.threshold.is_breach()).count();
                state.metrics.count_sla_breaches(breaches);
                if !done.is_empty() {
                    tracing::info!(announced = done.len(), breaches, "service-level round");
                }
            }
            Err(e) => tracing::warn!(error = %Report(&e), "service-level round failed; retrying"),
        }
        match state.tickets.assign_waiting(SLA_BATCH).await {
            Ok(assigned) if !assigned.is_empty() => {
                tracing::info!(assigned = assigned.len(), "waiting tickets assigned")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %Report(&e), "assigning waiting tickets failed; retrying"),
        }
        if !stop.pause(poll).await {
            break;
        }
    }
}

/// How often the retention workers delete what is past keeping.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Runs `purge` at start and then every [`PURGE_EVERY`] until told to stop;
/// `what` names what it deletes, for the logs.
async fn purge_hourly<F: Future<Output = Result<u64, RepoError>>>(
    what: &str,
    mut purge: impl FnMut() -> F,
    mut stop: Stop,
) {
    loop {
        match purge().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "{what} deleted"),
            Err(e) => tracing::warn!(error = %Report(&e), "{what} not deleted; retrying in an hour"),
        }
        if !stop.pause(PURGE_EVERY).await {
            return;
        }
    }
}

/// Deletes finished webhook deliveries past `webhooks.keep_days`.
pub async fn webhook_retention<R: WebhookRepository>(dispatcher: Arc<WebhookDispatcher<R>>, stop: Stop) {
    purge_hourly("finished webhook deliveries past webhooks.keep_days", || dispatcher.purge_finished(), stop).await
}

/// Deletes the bitácora records older than `keep`.
pub async fn audit_retention<R: AuditRepository>(
    audit: AuditService<R>,
    clock: Arc<dyn Clock>,
    keep: chrono::Duration,
    stop: Stop,
) {
    purge_hourly("bitácora records past audit.keep_days", || audit.purge_expired(clock.now(), keep), stop).await
}

/// Deletes the login-throttle keys that count for nothing any more.
pub async fn throttle_cleanup<R: SsoPorts>(sso: Arc<SsoService<R>>, stop: Stop) {
    purge_hourly("stale login throttle keys", || sso.purge_stale_throttles(), stop).await
}

/// Deletes the console's presence rows that stopped counting long ago (the
/// pages read only recent ones; this keeps the table small).
pub async fn presence_cleanup<A: helpdesk_domain::ports::Adapters>(
    pages: actix_web::web::Data<helpdesk_web::WebState<A>>,
    stop: Stop,
) {
    purge_hourly("console presence rows past consola.presence_secs", || pages.console.forget_presence(), stop).await
}

/// Offers the spool to the database every `period` while it holds records
/// (after a ping, so that a database still down costs one bounded query).
pub async fn audit_spool<R: AuditRepository + StoreHealth>(
    audit: AuditService<R>,
    store: Arc<R>,
    period: Duration,
    mut stop: Stop,
) {
    while stop.pause(period).await {
        if audit.spool_stats().is_none_or(|s| s.records == 0) || store.ping().await.is_err() {
            continue;
        }
        match audit.drain_spool().await {
            Ok(report) => tracing::info!(
                written = report.written,
                rejected = report.rejected,
                "bitácora spool written to the database"
            ),
            Err(e) => tracing::warn!(error = %Report(&e), "bitácora spool not drained yet; retrying"),
        }
    }
}

/// How often the aggregated records of strangers' refused calls are
/// written (each once its minute has ended).
const REFUSED_FLUSH: Duration = Duration::from_secs(5);

/// Writes the aggregated records of refused calls whose minute ended, every
/// few seconds, and all that are open when the server stops.
pub async fn refused_calls<R: AuditRepository>(audit: AuditService<R>, clock: Arc<dyn Clock>, mut stop: Stop) {
    loop {
        let running = stop.pause(REFUSED_FLUSH).await;
        match audit.flush_refused(clock.now(), !running).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "aggregated records of refused calls written"),
            Err(e) => tracing::warn!(error = %Report(&e), "aggregated records of refused calls not written; retrying"),
        }
        if !running {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_domain::model::{AuditOutcome, AuditRecord, NewAuditEntry};
    use helpdesk_domain::testing::{InMemoryStore, ManualClock};

    #[tokio::test]
    async fn the_bitacora_past_its_days_goes_at_start_and_the_worker_stops_when_told() {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::now_utc());
        let first = store.reserve_audit_ids(2).await.unwrap();
        let record = |id: i64, days_ago: i64| AuditRecord {
            id,
            entry: NewAuditEntry {
                at: clock.now() - chrono::Duration::days(days_ago),
                consumer_name: None,
                endpoint: "UsuarioInterno/get".into(),
                method: "POST".into(),
                client_ip: "10.0.0.1".into(),
                body: String::new(),
                parent_id: None,
            },
            outcome: AuditOutcome { consumer_id: None, status: 200, duration_us: 1, user_id: None },
        };
        store.write_audit(&[record(first, 31), record(first + 1, 29)]).await.unwrap();
        let (audit, _writer) = AuditService::new(store.clone());
        let (raise, stop) = Stop::new();
        let worker = tokio::spawn(audit_retention(audit, clock.clone(), chrono::Duration::days(30), stop));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while store.find_audit(first).await.unwrap().is_some() {
            assert!(tokio::time::Instant::now() < deadline, "the 31-day-old record is still there");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.find_audit(first + 1).await.unwrap().is_some(), "the 29-day-old one is kept");
        raise.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), worker).await.expect("stopped when told").unwrap();
    }
}
