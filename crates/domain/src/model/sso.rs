//! SSO sessions, password resets and integrated systems (ADI). Models for
//! the SSO and ADI issues; their ports arrive with them.

use super::{Status, Timestamp};

/// An issued user token (`sesion_usuario`): the JWT's id is recorded so that
/// the token can be revoked before it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    pub token_id: String,
    pub user_id: i64,
    pub product_id: Option<i64>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A password reset request (`password_reset`): the token is stored hashed,
/// valid 60 minutes, single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// A system integrated through ADI (`sistema_integrado`). Its token is
/// stored as SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegratedSystem {
    pub id: i64,
    pub alias: String,
    pub status: Status,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A single-use cross-system login ticket (`ticket_acceso_adi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTicket {
    pub ticket_id: String,
    pub user_id: i64,
    pub system_id: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// Failed attempts under one throttle key (`intento_login`): an account and
/// address for passwords, an account and device for PINs, an address alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i32,
    pub window_started_at: Timestamp,
    pub locked_until: Option<Timestamp>,
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Without angle brackets; the adapter generates one when `None`.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    /// Extra headers (for example `Auto-Submitted: auto-replied`).
    pub headers: Vec<(String, String)>,
}
