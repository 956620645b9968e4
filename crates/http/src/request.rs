//! What a request carries, read once: the body (read by the bitácora
//! middleware, up to the limit), the input bag Laravel's `$request->all()`
//! would see, the client's address and the bearer token. The bitácora
//! ([`crate::audit`]) and the extractor ([`crate::extract`]) both read from
//! here; neither imports the other.

use actix_web::dev::ServiceRequest;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Which body encodings an endpoint accepts besides JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    /// JSON or `application/x-www-form-urlencoded` (Synology posts forms).
    JsonOrForm,
}

/// The request body, read (and, when it is JSON, parsed) once by the
/// bitácora middleware; the extractor takes it.
#[derive(Clone, Debug, Default)]
pub struct RawBody {
    pub bytes: Bytes,
    /// The body as JSON when it parsed as such.
    pub json: Option<Value>,
}

impl RawBody {
    /// Takes the body out of the request (handlers read it once). An error,
    /// not an empty body, when the middleware did not read it (a route
    /// outside `/api`, or taken twice): a silent empty body would be
    /// validated as "every field missing".
    pub fn take(req: &HttpRequest) -> Result<RawBody, ApiError> {
        req.extensions_mut()
            .remove::<RawBody>()
            .ok_or_else(|| ApiError::internal("the request body was not read by the bitácora middleware"))
    }
}

/// Reads the whole body, refusing more than `limit` bytes (by the declared
/// length first, then by counting).
pub(crate) async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut payload = req.take_payload();
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("No se pudo leer el cuerpo: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `application/json`, `application/*+json`, or no content type at all
/// (a body without one is read as JSON when it parses).
pub(crate) fn is_json_type(content_type: &str) -> bool {
    content_type.is_empty()
        || content_type == "application/json"
        || (content_type.starts_with("application/") && content_type.ends_with("+json"))
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
    let from_body = if is_json_type(&ct) {
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

/// A header's value when it is text.
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_taken_once_and_its_absence_is_an_error() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        assert!(RawBody::take(&req).is_err(), "never read: an error, not an empty body");
        req.extensions_mut().insert(RawBody { bytes: Bytes::from_static(b"{}"), json: None });
        assert_eq!(RawBody::take(&req).unwrap().bytes, Bytes::from_static(b"{}"));
        assert!(matches!(RawBody::take(&req), Err(ApiError::Internal { .. })), "taken twice");
    }
}
