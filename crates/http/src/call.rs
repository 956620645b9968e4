//! The common path of every documented endpoint: authenticate the consumer,
//! read the input bag, validate it, run the use case, render the answer.

use std::future::Future;

use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use helpdesk_domain::model::{Consumer, Endpoint};
use helpdesk_domain::ports::Adapters;
use serde_json::{Map, Value};

use crate::AppState;
use crate::audit::{AuditCtx, RawBody};
use crate::envelope::{Reply, render};
use crate::error::ApiError;

/// Which body encodings an endpoint accepts besides JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    /// JSON or `application/x-www-form-urlencoded` (Synology posts forms).
    JsonOrForm,
}

/// Reads the input bag as Laravel's `$request->all()` does: the query
/// string, overlaid by the body's fields.
pub fn input(req: &HttpRequest, raw: RawBody, accept: Accept) -> Result<Map<String, Value>, ApiError> {
    let body: &[u8] = &raw.bytes;
    let mut bag: Map<String, Value> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(bag);
    }
    let ct = req.content_type().to_ascii_lowercase();
    let is_json = ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"));
    let from_body = if is_json || ct.is_empty() {
        let parsed = match raw.json {
            Some(v) => Ok(v),
            None => serde_json::from_slice(body),
        };
        let v: Value = parsed.map_err(|e| {
            if ct.is_empty() {
                ApiError::UnsupportedMediaType(
                    "Falta el encabezado Content-Type y el cuerpo no es JSON; envíe application/json.".into(),
                )
            } else {
                ApiError::BadRequest(format!("El cuerpo de la solicitud no es JSON válido: {e}."))
            }
        })?;
        match v {
            Value::Object(m) => m,
            _ => {
                return Err(ApiError::BadRequest("El cuerpo JSON debe ser un objeto.".into()));
            }
        }
    } else if ct == "application/x-www-form-urlencoded" && accept == Accept::JsonOrForm {
        url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()
    } else {
        let wanted = match accept {
            Accept::Json => "application/json",
            Accept::JsonOrForm => "application/json o application/x-www-form-urlencoded",
        };
        return Err(ApiError::UnsupportedMediaType(format!("Tipo de contenido no soportado: {ct}; use {wanted}.")));
    };
    bag.extend(from_body);
    Ok(bag)
}

/// The client's address: the TCP peer, or, when the peer is one of
/// `server.trusted_proxies`, the right-most `X-Forwarded-For` address that
/// is not a trusted proxy (resolved once per request by
/// [`crate::security`]'s middleware). Used by the bitácora and by login
/// throttling.
pub fn client_ip(req: &HttpRequest) -> String {
    crate::security::ClientAddr::of(req).map(|ip| ip.to_string()).unwrap_or_default()
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Runs an endpoint guarded by consumer credentials. `f` receives the
/// authenticated consumer and the input bag.
pub async fn guarded<A, F, Fut>(
    state: &AppState<A>,
    req: &HttpRequest,
    endpoint: Endpoint,
    accept: Accept,
    f: F,
) -> HttpResponse
where
    A: Adapters,
    F: FnOnce(Consumer, Map<String, Value>) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    let ctx = AuditCtx::of(req);
    let result = async {
        let consumer = state
            .access
            .authorize(header(req, "X-User-Consumo"), header(req, "X-User-Secret"), endpoint)
            .await
            .inspect_err(|e| {
                if let helpdesk_domain::services::AccessError::Forbidden { .. } = e {
                    tracing::warn!(endpoint = %endpoint, "consumer outside its grants");
                }
            });
        let consumer = consumer?;
        ctx.set_consumer(consumer.id);
        let bag = input(req, RawBody::take(req)?, accept)?;
        f(consumer, bag).await
    }
    .await;
    render(Some(endpoint), ctx.id, result)
}

/// Runs an endpoint that is not guarded by consumer credentials (the
/// Synology webhook authenticates by its own token): same input, audit and
/// rendering as `guarded`.
pub async fn unguarded<A, F, Fut>(req: &HttpRequest, endpoint: Endpoint, accept: Accept, f: F) -> HttpResponse
where
    A: Adapters,
    F: FnOnce(Map<String, Value>) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    let ctx = AuditCtx::of(req);
    let result = async {
        let bag = input(req, RawBody::take(req)?, accept)?;
        f(bag).await
    }
    .await;
    render(Some(endpoint), ctx.id, result)
}

/// A validated optional text field: `None` when absent (Laravel's sense).
pub fn opt_string(bag: &Map<String, Value>, key: &str) -> Option<String> {
    match bag.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// A validated optional integer field (a number or a string of digits).
pub fn opt_int(bag: &Map<String, Value>, key: &str) -> Option<i64> {
    bag.get(key).and_then(crate::validation::as_integer)
}
