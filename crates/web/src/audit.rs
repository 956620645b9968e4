//! The bitácora of the console: every state-changing request (sign-in,
//! sign-out, a reply, a change) gets a record like an API call's, with the
//! acting user. The id is reserved before the work; the record is written
//! before the answer leaves, or the answer says the service is unavailable.

use std::future::Future;
use std::time::Instant;

use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use helpdesk_domain::model::{AuditOutcome, AuditRecord, NewAuditEntry};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::redacted_body_text;
use serde_json::{Map, Value};

use crate::WebState;
use crate::render::failed;
use crate::session::CSRF_FIELD;

/// The user a console request acts as, once known (the session's, or the
/// one who just signed in).
#[derive(Debug, Clone, Copy)]
pub struct ActingUser(pub i64);

/// Runs `handle` for a state-changing request, recorded in the bitácora.
pub async fn audited<A: Adapters>(
    state: &WebState<A>,
    req: &HttpRequest,
    body: &[u8],
    handle: impl Future<Output = HttpResponse>,
) -> HttpResponse {
    let started = Instant::now();
    let id = match state.audit.reserve_id().await {
        Ok(id) => id,
        Err(e) => return failed(&e),
    };
    let res = handle.await;
    let user_id = req.extensions().get::<ActingUser>().map(|u| u.0);
    // The form as sent, but for its CSRF token; secrets (the password) redacted.
    let fields: Map<String, Value> = url::form_urlencoded::parse(body)
        .into_owned()
        .filter(|(k, _)| k != CSRF_FIELD)
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let entry = NewAuditEntry {
        at: state.clock.now(),
        consumer_name: None,
        endpoint: req.path().trim_start_matches('/').to_string(),
        method: req.method().to_string(),
        client_ip: (state.client_ip)(req).map(|ip| ip.to_string()).unwrap_or_default(),
        body: redacted_body_text(Some(Value::Object(fields)), body.len(), "application/x-www-form-urlencoded"),
        parent_id: None,
    };
    let duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
    let outcome = AuditOutcome { consumer_id: None, status: res.status().as_u16(), duration_us, user_id };
    match state.audit.record(AuditRecord { id, entry, outcome }).await {
        Ok(()) => res,
        Err(e) => failed(&e),
    }
}
