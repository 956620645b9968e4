//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use helpdesk_domain::model::SlaState;
use helpdesk_domain::ports::{Adapters, OutboxRepository, SlaRepository, StoreHealth, WebhookRepository};
use helpdesk_domain::services::Readiness;
use serde_json::json;

use crate::AppState;

/// The process is up.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers and takes writes (probed at
/// most every `server.ready_probe_secs`).
pub async fn ready<A: Adapters>(state: web::Data<AppState<A>>) -> HttpResponse {
    let (database, reason) = match state.health.readiness().await {
        Readiness::Ready => return HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Readiness::Unreachable(why) => ("unreachable", why),
        Readiness::RefusesWrites(why) => ("refuses writes", why),
    };
    tracing::warn!(%database, %reason, "not ready");
    HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "database": database, "reason": reason }))
}

/// Prometheus' text format (see `crate::metrics`).
pub async fn metrics<A: Adapters>(state: web::Data<AppState<A>>) -> HttpResponse {
    let db_up = state.store.ping().await.is_ok();
    let outbox_pending = if db_up { state.store.pending_notices().await.ok() } else { None };
    let webhook_pending = if db_up { state.store.pending_deliveries().await.ok() } else { None };
    let sla = if db_up { state.store.sla_counts(state.clock.now()).await.ok() } else { None };
    let sla =
        sla.map(|counts| SlaState::ALL.map(|s| counts.iter().filter(|(state, _)| *state == s).map(|(_, n)| *n).sum()));
    let text = state.metrics.render(crate::metrics::Gauges {
        db_up,
        outbox_pending,
        webhook_pending,
        pool: state.store.pool_usage(),
        spool: state.audit.spool_stats(),
        sla,
    });
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}
