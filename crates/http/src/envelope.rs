//! The documented success envelope and how the bitácora id is written.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use helpdesk_domain::Report;
use helpdesk_domain::model::Endpoint;
use serde_json::{Value, json};

use crate::error::ApiError;

/// What a handler produces on success.
#[derive(Debug)]
pub enum Reply {
    /// `{"data", "status": "ok", "message", "code", "id_bitacora_log"}`,
    /// with `code` the HTTP status (200, or 201 for what was created).
    Envelope { status: StatusCode, data: Value, message: String },
    /// A body of its own (`correo/save` answers flat).
    Raw { status: StatusCode, body: Value },
    /// A finished response (a file).
    Response(HttpResponse),
}

impl Reply {
    pub fn ok(data: impl serde::Serialize, message: impl Into<String>) -> Result<Reply, ApiError> {
        Self::with_status(StatusCode::OK, data, message)
    }

    pub fn created(data: impl serde::Serialize, message: impl Into<String>) -> Result<Reply, ApiError> {
        Self::with_status(StatusCode::CREATED, data, message)
    }

    fn with_status(
        status: StatusCode,
        data: impl serde::Serialize,
        message: impl Into<String>,
    ) -> Result<Reply, ApiError> {
        let data = serde_json::to_value(data).map_err(|e| ApiError::internal_by("the answer does not serialize", e))?;
        Ok(Reply::Envelope { status, data, message: message.into() })
    }
}

/// The id as the documentation types it for this endpoint: a string for
/// `SSO/access` and `SSO/refreshUserToken`, an integer elsewhere; `null`
/// when the record could not be written.
pub fn bitacora_value(endpoint: Option<Endpoint>, id: Option<i64>) -> Value {
    match (id, endpoint) {
        (None, _) => Value::Null,
        (Some(id), Some(Endpoint::SsoAccess | Endpoint::SsoRefreshUserToken)) => Value::String(id.to_string()),
        (Some(id), _) => Value::from(id),
    }
}

pub fn render(endpoint: Option<Endpoint>, audit_id: Option<i64>, result: Result<Reply, ApiError>) -> HttpResponse {
    let bitacora = bitacora_value(endpoint, audit_id);
    match result {
        Ok(Reply::Envelope { status, data, message }) => HttpResponse::build(status).json(json!({
            "data": data,
            "status": "ok",
            "message": message,
            "code": status.as_u16(),
            "id_bitacora_log": bitacora,
        })),
        Ok(Reply::Raw { status, body }) => HttpResponse::build(status).json(body),
        Ok(Reply::Response(response)) => response,
        // `correo/save` answers flat, errors too (but the documented 401 and
        // Laravel's 422 keep their own shapes).
        Err(e @ (ApiError::InvalidConsumer | ApiError::Validation(_))) => error_response(&e, bitacora),
        Err(e) if endpoint == Some(Endpoint::MailSave) => {
            log(&e);
            HttpResponse::build(e.status()).json(json!({ "success": false, "message": e.public_message() }))
        }
        Err(e) => error_response(&e, bitacora),
    }
}

/// Server-side failures go to the log with their cause; clients only see
/// a generic message.
fn log(e: &ApiError) {
    match e {
        ApiError::Internal { .. } => tracing::error!(error = %Report(e), "internal error"),
        ApiError::Unavailable { .. } => tracing::warn!(error = %Report(e), "service unavailable"),
        _ => {}
    }
}

pub fn error_response(e: &ApiError, bitacora: Value) -> HttpResponse {
    log(e);
    let mut builder = HttpResponse::build(e.status());
    match e {
        ApiError::MethodNotAllowed(allow) => {
            builder.insert_header(("Allow", allow.as_str()));
        }
        ApiError::TooManyRequests { retry_after_secs } => {
            builder.insert_header(("Retry-After", retry_after_secs.max(&1).to_string()));
        }
        // Down or busy for a moment: clients (and proxies) may come back soon.
        ApiError::Unavailable { .. } => {
            builder.insert_header(("Retry-After", "1"));
        }
        _ => {}
    }
    builder.json(e.body(bitacora))
}
