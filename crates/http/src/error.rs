//! Every way a request can fail, and the one place where each becomes an
//! HTTP status and body.

use actix_web::http::StatusCode;
use std::sync::Arc;

use helpdesk_domain::services::{
    AccessError, AdiError, BotError, IngestError, MailAccountError, SsoError, TicketError,
};
use helpdesk_domain::{Cause, RepoError};
use serde_json::{Value, json};

use crate::validation::ValidationErrors;

/// The exact body the documentation gives for bad consumer credentials.
pub const INVALID_CONSUMER: &str = "Credenciales de consumo inválidas";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid consumer credentials")]
    InvalidConsumer,
    #[error("consumer not granted this endpoint")]
    Forbidden,
    #[error("validation failed")]
    Validation(ValidationErrors),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("payload too large")]
    PayloadTooLarge(usize),
    #[error("not found: {0}")]
    NotFound(String),
    /// Carries the `Allow` header's value.
    #[error("method not allowed")]
    MethodNotAllowed(String),
    /// A business refusal with its own status, Spanish message and `data`
    /// (usually null).
    #[error("{message}")]
    Business { status: StatusCode, message: String, data: Value },
    /// Throttled: 429 with `Retry-After`.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: i64 },
    /// Down or busy for a moment (503); the cause goes to the log.
    #[error("service unavailable: {what}")]
    Unavailable {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
    /// A server-side failure (500); the cause goes to the log, never to
    /// the client.
    #[error("internal error: {what}")]
    Internal {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
}

impl ApiError {
    /// A failure of this server with no underlying error (a wiring mistake).
    pub fn internal(what: impl Into<String>) -> Self {
        ApiError::Internal { what: what.into(), cause: None }
    }

    /// A failure of this server caused by `e`.
    pub fn internal_by(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal { what: what.into(), cause: Some(Arc::new(e)) }
    }

    pub fn unavailable(what: impl Into<String>) -> Self {
        ApiError::Unavailable { what: what.into(), cause: None }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Unavailable(_) | RepoError::Busy(_) => {
                ApiError::Unavailable { what: "the store".into(), cause: Some(Arc::new(e)) }
            }
            other => ApiError::internal_by("the store", other),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::InvalidCredentials => ApiError::InvalidConsumer,
            AccessError::Forbidden { .. } => ApiError::Forbidden,
            AccessError::Store(e) => e.into(),
        }
    }
}

impl From<MailAccountError> for ApiError {
    fn from(e: MailAccountError) -> Self {
        match e {
            MailAccountError::Store(e) => e.into(),
            unseal @ MailAccountError::Unseal(_) => ApiError::internal_by("a mailbox password", unseal),
        }
    }
}

impl From<SsoError> for ApiError {
    fn from(e: SsoError) -> Self {
        let invalid = |field: &str, message: &str| {
            let mut v = ValidationErrors::default();
            v.add(field, message.to_string());
            ApiError::Validation(v)
        };
        match e {
            SsoError::UnknownProduct => invalid("product", "The selected product is invalid."),
            SsoError::InvalidCredentials => ApiError::Business {
                status: StatusCode::UNAUTHORIZED,
                message: "Credenciales de usuario inválidas.".into(),
                data: json!({ "authenticated": false }),
            },
            SsoError::Throttled { retry_after_secs } => ApiError::TooManyRequests { retry_after_secs },
            SsoError::InvalidToken => ApiError::Business {
                status: StatusCode::UNAUTHORIZED,
                message: "Token de usuario inválido o expirado.".into(),
                data: Value::Null,
            },
            SsoError::NoProductAccess => ApiError::Business {
                status: StatusCode::FORBIDDEN,
                message: "El usuario no tiene acceso a este producto.".into(),
                data: json!({ "authenticated": false }),
            },
            SsoError::InvalidResetToken => {
                invalid("token", "El enlace para restablecer la contraseña no es válido o ha expirado.")
            }
            SsoError::PasswordPolicy(m) => invalid("password", &m),
            SsoError::Store(e) => e.into(),
        }
    }
}

/// The refusal of `SSO/ADI/Token`, in its documented shape.
pub const INVALID_TICKET: &str = "Token inválido, expirado o ya utilizado.";

impl From<AdiError> for ApiError {
    fn from(e: AdiError) -> Self {
        let refuse = |status: StatusCode, message: &str, data: Value| ApiError::Business {
            status,
            message: message.into(),
            data,
        };
        match e {
            AdiError::InvalidSystemToken => {
                refuse(StatusCode::UNAUTHORIZED, "Sistema o token de sistema inválido.", Value::Null)
            }
            AdiError::InactiveSystem => refuse(StatusCode::FORBIDDEN, "El sistema está inactivo.", Value::Null),
            AdiError::UserNotAllowed => {
                refuse(StatusCode::FORBIDDEN, "El usuario no tiene acceso a este sistema.", Value::Null)
            }
            AdiError::InvalidTicket => refuse(
                StatusCode::UNAUTHORIZED,
                INVALID_TICKET,
                json!({ "authenticated": false, "message": INVALID_TICKET }),
            ),
            AdiError::Store(e) => e.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::UnsafeRoute(i) => {
                let field = format!("attachments.{i}.route");
                let mut v = ValidationErrors::default();
                v.add(&field, format!("The {field} field format is invalid."));
                ApiError::Validation(v)
            }
            IngestError::NoDepartment => ApiError::unavailable("no department configured to receive mail"),
            IngestError::Store(e) => e.into(),
        }
    }
}

impl From<BotError> for ApiError {
    fn from(e: BotError) -> Self {
        match e {
            BotError::InvalidToken => ApiError::Business {
                status: StatusCode::UNAUTHORIZED,
                message: "Token de Synology inválido.".into(),
                data: Value::Null,
            },
            BotError::UnknownUser(name) => ApiError::Business {
                status: StatusCode::NOT_FOUND,
                message: format!("Usuario {name} no encontrado."),
                data: Value::Null,
            },
            BotError::Store(e) => e.into(),
        }
    }
}

/// One field's Laravel-style 422.
fn invalid_field(field: &str, message: String) -> ApiError {
    let mut v = ValidationErrors::default();
    v.add(field, message);
    ApiError::Validation(v)
}

impl From<TicketError> for ApiError {
    fn from(e: TicketError) -> Self {
        let refuse = |status: StatusCode, message: &str| ApiError::Business {
            status,
            message: message.into(),
            data: Value::Null,
        };
        match e {
            // Absent, or another department's: the same answer.
            TicketError::NotFound => refuse(StatusCode::NOT_FOUND, "Ticket no encontrado."),
            TicketError::AttachmentNotFound => refuse(StatusCode::NOT_FOUND, "Adjunto no encontrado."),
            TicketError::NotAnOperator => {
                refuse(StatusCode::FORBIDDEN, "El usuario no atiende tickets (sin departamento ni jefatura).")
            }
            TicketError::InvalidAssignee => invalid_field("asignado", "The selected asignado is invalid.".into()),
            TicketError::InvalidDepartment => {
                invalid_field("departamento", "The selected departamento is invalid.".into())
            }
            TicketError::NothingToChange => invalid_field(
                "estado",
                "The estado field is required when none of asignado / departamento / prioridad are present.".into(),
            ),
            TicketError::InvalidReply => invalid_field("cuerpo", "The cuerpo field is required.".into()),
            // The last two come from the console's pages only (the API asks
            // for no such check).
            TicketError::Conflict | TicketError::NewerMessages(_) | TicketError::ChangedMeanwhile(_) => {
                refuse(StatusCode::CONFLICT, "El ticket cambió mientras tanto; consúltelo e intente de nuevo.")
            }
            TicketError::Store(e) => e.into(),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidConsumer => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Business { status, .. } => *status,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the client: Spanish, and never internal detail.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::InvalidConsumer => INVALID_CONSUMER.into(),
            ApiError::Forbidden => "El consumidor no tiene permiso para usar este endpoint.".into(),
            ApiError::Validation(v) => v.message(),
            ApiError::BadRequest(m) | ApiError::UnsupportedMediaType(m) | ApiError::NotFound(m) => m.clone(),
            ApiError::PayloadTooLarge(limit) => {
                format!("El cuerpo de la solicitud supera el límite de {limit} bytes.")
            }
            ApiError::MethodNotAllowed(_) => "Método HTTP no permitido para este endpoint.".into(),
            ApiError::Business { message, .. } => message.clone(),
            ApiError::TooManyRequests { retry_after_secs } => {
                format!("Demasiados intentos fallidos. Intente de nuevo en {} minuto(s).", (retry_after_secs + 59) / 60)
            }
            ApiError::Unavailable { .. } => "Servicio no disponible temporalmente; intente de nuevo.".into(),
            ApiError::Internal { .. } => "Error interno del servidor.".into(),
        }
    }

    /// The body: fixed shapes for 401 and 422 (as documented and as Laravel
    /// answers), the error envelope for everything else.
    pub fn body(&self, bitacora: Value) -> Value {
        match self {
            ApiError::InvalidConsumer => json!({ "message": INVALID_CONSUMER }),
            ApiError::Validation(v) => v.to_json(),
            ApiError::Business { data, .. } => json!({
                "data": data,
                "status": "error",
                "message": self.public_message(),
                "code": self.status().as_u16(),
                "id_bitacora_log": bitacora,
            }),
            other => json!({
                "data": null,
                "status": "error",
                "message": other.public_message(),
                "code": other.status().as_u16(),
                "id_bitacora_log": bitacora,
            }),
        }
    }
}
