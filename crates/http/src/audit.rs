//! The bitácora middleware: every request under `/api/` gets one audit
//! record. Its id is reserved before the handler runs (the answer carries
//! it); the finished record, with status and duration, is written once,
//! group-committed with those of concurrent requests, before the answer
//! leaves. A request dropped before its answer is recorded as 499.
//!
//! It also reads the body once, up to the configured limit, and hands it to
//! the handler through the request's extensions; a larger body is refused
//! with 413 (and audited) before any handler runs.

use helpdesk_domain::Report;
use std::sync::atomic::{AtomicI64, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest};
use helpdesk_domain::model::{AuditOutcome, AuditRecord, NewAuditEntry};
use helpdesk_domain::ports::{Adapters, AuditRepository};
use helpdesk_domain::services::{
    AuditService, MAX_REFUSED_BODY_BYTES, RefusedFate, redacted_body_text, truncate_bytes,
};
use serde_json::{Map, Value};

use crate::AppState;
use crate::envelope::error_response;
use crate::error::ApiError;
use crate::request::{RawBody, client_ip, is_json_type, read_body};

/// What the middleware leaves in the request's extensions.
#[derive(Clone, Debug)]
pub struct AuditCtx {
    /// `None` when the record could not be written (store down).
    pub id: Option<i64>,
    consumer_id: Arc<AtomicI64>,
    /// The operator behind the user token, once admitted (0: none).
    user_id: Arc<AtomicI64>,
    /// The record until it is finished (taken then, or by the guard of a
    /// request dropped first).
    entry: Arc<Mutex<Option<NewAuditEntry>>>,
    started: Instant,
    /// The status a handler's own transaction wrote the record with
    /// ([`AuditCtx::written_with`]; 0: none did).
    written: Arc<AtomicU16>,
}

impl AuditCtx {
    pub fn of(req: &HttpRequest) -> AuditCtx {
        req.extensions().get::<AuditCtx>().cloned().unwrap_or_else(|| AuditCtx::new(None))
    }

    fn new(id: Option<i64>) -> AuditCtx {
        AuditCtx {
            id,
            consumer_id: Arc::new(AtomicI64::new(0)),
            user_id: Arc::new(AtomicI64::new(0)),
            entry: Arc::new(Mutex::new(None)),
            started: Instant::now(),
            written: Arc::new(AtomicU16::new(0)),
        }
    }

    /// The record as it would be finished now, answered with `status`, for
    /// a handler to write in its own transaction (one commit for both;
    /// [`AuditCtx::written_with`] once it has). `None` when there is none
    /// to write: no id, or the request names an earlier record (the
    /// bitácora's writer checks the parent is stored).
    pub fn record_for_own_write(&self, status: u16) -> Option<AuditRecord> {
        let id = self.id?;
        let entry = self.entry.lock().ok()?.as_ref().filter(|e| e.parent_id.is_none())?.clone();
        let duration_us = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        Some(AuditRecord {
            id,
            entry,
            outcome: AuditOutcome { consumer_id: self.consumer(), status, duration_us, user_id: self.user() },
        })
    }

    /// The handler's transaction wrote [`AuditCtx::record_for_own_write`]'s
    /// record with `status`: if the answer has that status, the middleware
    /// writes nothing more.
    pub fn written_with(&self, status: u16) {
        self.written.store(status, Ordering::Relaxed);
    }

    /// The record, finished, once: `None` if it was taken before.
    fn take_entry(&self) -> Option<NewAuditEntry> {
        self.entry.lock().ok()?.take()
    }

    /// Records which consumer the request authenticated as.
    pub fn set_consumer(&self, id: i64) {
        self.consumer_id.store(id, Ordering::Relaxed);
    }

    fn consumer(&self) -> Option<i64> {
        Some(self.consumer_id.load(Ordering::Relaxed)).filter(|id| *id != 0)
    }

    /// Records which user (an operator's token) the request acts as.
    pub fn set_user(&self, id: i64) {
        self.user_id.store(id, Ordering::Relaxed);
    }

    fn user(&self) -> Option<i64> {
        Some(self.user_id.load(Ordering::Relaxed)).filter(|id| *id != 0)
    }
}

/// Longest header value copied into the record.
const MAX_CONSUMER_HEADER: usize = 100;

/// An HTTP worker's own bitácora writer ([`AuditService::with_own_writer`],
/// spawned on the worker's runtime), given as app data by the server: the
/// API's records are then written without waking another thread. Without
/// it the middleware uses the state's service.
pub struct WorkerAudit<R: AuditRepository>(pub AuditService<R>);

pub(crate) async fn audit_middleware<A: Adapters>(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    // Without the state nothing can be audited: refuse loudly rather than
    // serve unaudited (a wiring mistake, never a client's).
    let Some(state) = req.app_data::<actix_web::web::Data<AppState<A>>>().cloned() else {
        tracing::error!("the bitácora middleware runs without the application state");
        let e = ApiError::internal("the application state is missing");
        return Ok(req.into_response(error_response(&e, Value::Null)));
    };
    let worker = req.app_data::<actix_web::web::Data<WorkerAudit<A::Store>>>().cloned();
    let audit = worker.as_deref().map_or(&state.audit, |w| &w.0);
    let limit = state.limits.body_bytes;
    let body = read_body(&mut req, limit).await;
    let body_len = body.as_ref().map(|b| b.len()).unwrap_or(0);

    let endpoint = req.path().strip_prefix("/api/").unwrap_or(req.path()).to_string();
    let audited_path = endpoint.clone();
    let content_type = req.content_type().to_ascii_lowercase();
    let parsed = body.as_ref().ok().and_then(|b| parse_for_audit(&content_type, b));
    // The handler gets the JSON parsed here; forms are read again (cheap).
    let json_for_handler = if is_json_type(&content_type) { parsed.clone() } else { None };
    let parent_id = parent_id(parsed.as_ref(), req.query_string());
    let consumer_name = req
        .headers()
        .get("X-User-Consumo")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(MAX_CONSUMER_HEADER).collect());
    let address = client_ip(req.request());
    let entry = NewAuditEntry {
        at: state.clock.now(),
        consumer_name,
        endpoint,
        method: req.method().to_string(),
        client_ip: address.clone(),
        body: redacted_body_text(parsed, body_len, &content_type),
        parent_id,
    };
    let id = match audit.reserve_id().await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::error!(error = %Report(&e), "cannot reserve a bitácora id");
            None
        }
    };
    let ctx = AuditCtx { started, ..AuditCtx::new(id) };
    req.extensions_mut().insert(ctx.clone());
    // Should the client leave before the answer, the future is dropped
    // here; the guard then records the request as 499.
    let (mut pending, mut unnumbered) = match id {
        Some(id) => {
            if let Ok(mut slot) = ctx.entry.lock() {
                *slot = Some(entry);
            }
            (Some(Pending { audit, id, ctx: &ctx }), None)
        }
        None => (None, Some(entry)),
    };

    let method = req.method().to_string();
    let path = req.path().to_string();
    let mut result: Result<ServiceResponse<BoxBody>, actix_web::Error> = match (id, body) {
        // No audit record, no service: the contract wants every request audited.
        (None, _) => {
            let e = ApiError::unavailable("audit log unavailable");
            Ok(req.into_response(error_response(&e, Value::Null)))
        }
        (Some(_), Err(e)) => Ok(req.into_response(error_response(&e, crate::envelope::bitacora_value(None, id)))),
        (Some(_), Ok(bytes)) => {
            req.extensions_mut().insert(RawBody { bytes, json: json_for_handler });
            next.call(req).await.map(ServiceResponse::map_into_boxed_body)
        }
    };

    let mut status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    if id.is_none() {
        // No id could be reserved (the store is down): the record is kept
        // unnumbered in the spool, which numbers it when the store is back.
        let duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let outcome = AuditOutcome { consumer_id: ctx.consumer(), status, duration_us, user_id: ctx.user() };
        let mut entry = unnumbered.take().expect("kept for this");
        cap_refused_body(&mut entry, status);
        if let Err(e) = audit.record_unnumbered(entry, outcome).await {
            tracing::error!(error = %Report(&e), "cannot keep the audit record of an unnumbered request");
        }
    }
    // Refused for its credentials (401, no consumer admitted): past the
    // burst of its address and minute, counted into one aggregated record,
    // whose id the answer carries where it carries one.
    if status == 401 && ctx.consumer().is_none() && id.is_some() {
        match audit.note_refused(&address, &audited_path, state.clock.now()).await {
            Ok(RefusedFate::Counted(aggregate)) => {
                if let Some(p) = pending.as_mut() {
                    p.discard();
                }
                if let Ok(res) = result {
                    result = Ok(with_bitacora_id(res, aggregate).await);
                }
            }
            Ok(RefusedFate::Own) => {}
            Err(e) => tracing::warn!(error = %Report(&e), "refused call not counted; recorded on its own"),
        }
    }
    // Written by the handler with its own transaction: as answered, or, if
    // the answer changed after, as the handler said (loudly).
    match ctx.written.load(Ordering::Relaxed) {
        0 => {}
        written => {
            if written != status {
                tracing::error!(bitacora = id, written, status, "the bitácora record was written with another status");
            }
            if let Some(p) = pending.as_mut() {
                p.discard();
            }
        }
    }
    if let Some(record) = pending.as_mut().and_then(|p| p.record(status))
        && let Err(e) = audit.record(record).await
    {
        // The answer may not leave unaudited; the store is down, so the
        // handler's own work has most likely failed too.
        tracing::error!(bitacora = id, error = %Report(&e), "cannot write the audit record");
        if let Ok(res) = result {
            let e = ApiError::unavailable("audit log unavailable");
            let (req, _) = res.into_parts();
            result = Ok(ServiceResponse::new(req, error_response(&e, Value::Null)));
            status = 503;
        }
    }
    let elapsed = started.elapsed();
    let duration_us = i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX);
    state.metrics.observe(crate::metrics::endpoint_label(&audited_path), status, elapsed);
    tracing::info!(bitacora = id, %method, %path, status, duration_us, "request");
    result
}

/// A request's record until it is written: finished with the outcome, or,
/// if the request is dropped first (the client left), queued as 499.
struct Pending<'a, R: AuditRepository> {
    audit: &'a AuditService<R>,
    id: i64,
    ctx: &'a AuditCtx,
}

impl<R: AuditRepository> Pending<'_, R> {
    /// Nothing to write: the request is counted elsewhere, or its record
    /// was written by its handler.
    fn discard(&mut self) {
        self.ctx.take_entry();
    }

    /// The finished record, once (afterwards the guard has nothing to do).
    fn record(&mut self, status: u16) -> Option<AuditRecord> {
        let mut entry = self.ctx.take_entry()?;
        cap_refused_body(&mut entry, status);
        let duration_us = i64::try_from(self.ctx.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let outcome = AuditOutcome { consumer_id: self.ctx.consumer(), status, duration_us, user_id: self.ctx.user() };
        Some(AuditRecord { id: self.id, entry, outcome })
    }
}

impl<R: AuditRepository> Drop for Pending<'_, R> {
    fn drop(&mut self) {
        // Written by the handler: the request's work is done and recorded.
        if self.ctx.written.load(Ordering::Relaxed) != 0 {
            return;
        }
        if let Some(record) = self.record(CLIENT_CLOSED_REQUEST) {
            tracing::info!(bitacora = self.id, "request dropped before its answer");
            self.audit.record_detached(record);
        }
    }
}

/// The answer with its `id_bitacora_log`, where it has one, set to `id` (as
/// a string where it was one).
async fn with_bitacora_id(res: ServiceResponse<BoxBody>, id: i64) -> ServiceResponse<BoxBody> {
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let bytes = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut map)) if map.contains_key("id_bitacora_log") => {
            let value = match map.get("id_bitacora_log") {
                Some(Value::String(_)) => Value::String(id.to_string()),
                _ => Value::from(id),
            };
            map.insert("id_bitacora_log".into(), value);
            serde_json::to_vec(&Value::Object(map)).map(Bytes::from).unwrap_or(bytes)
        }
        _ => bytes,
    };
    ServiceResponse::new(req, head.set_body(BoxBody::new(bytes)))
}

/// nginx's status for a request whose client closed the connection.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Statuses answered before any handler trusted the request (bad or no
/// credentials, no such route or method, body too large, malformed or of
/// the wrong type, the webhook's token in the URL): anyone can cause them,
/// so only [`MAX_REFUSED_BODY_BYTES`] of their body are kept. The status is known only now, when the record is
/// finished, so the body decided before the handler is cut here.
fn cap_refused_body(entry: &mut NewAuditEntry, status: u16) {
    if matches!(status, 400 | 401 | 403 | 404 | 405 | 413 | 415) && entry.body.len() > MAX_REFUSED_BODY_BYTES {
        entry.body = truncate_bytes(&entry.body, MAX_REFUSED_BODY_BYTES);
    }
}

/// The body as JSON for the record, or `None` when it does not parse as its
/// declared content type: JSON for JSON (or none), a well-formed form for
/// `application/x-www-form-urlencoded` (JSON posted as a form is not one),
/// and nothing for any other type. `None` stores only the size and type.
fn parse_for_audit(content_type: &str, body: &Bytes) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    if content_type == "application/x-www-form-urlencoded" {
        return parse_form_strictly(body).map(Value::Object);
    }
    if is_json_type(content_type) {
        return serde_json::from_slice(body).ok();
    }
    None
}

/// A form whose every field has a plain name (letters, digits, `_`, `-`,
/// `.`, spaces and PHP's `[...]`); anything else (JSON text, binary) is not
/// read as a form, since a secret in it could hide under any name. A name
/// sent twice (`a[]=1&a[]=2`) keeps every value, as an array.
fn parse_form_strictly(body: &[u8]) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        let plain =
            !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '[' | ']'));
        if !plain {
            return None;
        }
        let v = Value::String(v.into_owned());
        match map.get_mut(k.as_ref()) {
            Some(Value::Array(items)) => items.push(v),
            Some(prev) => *prev = Value::Array(vec![prev.take(), v]),
            None => {
                map.insert(k.into_owned(), v);
            }
        }
    }
    Some(map)
}

/// The `id_bitacora_log` a client sent (body or query; string or number).
fn parent_id(body: Option<&Value>, query: &str) -> Option<i64> {
    let from_body = body.and_then(|b| b.get("id_bitacora_log")).and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    from_body.or_else(|| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "id_bitacora_log")
            .and_then(|(_, v)| v.trim().parse().ok())
    })
}
