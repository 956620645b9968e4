//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use helpdesk_domain::ports::{Adapters, StoreHealth};
use serde_json::json;

use crate::AppState;

/// The process is up.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers.
pub async fn ready<A: Adapters>(state: web::Data<AppState<A>>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "database": "unreachable" }))
        }
    }
}
