//! API consumers (`X-User-Consumo`) and the endpoints they are granted.

use std::collections::BTreeSet;

use super::{Status, Timestamp};

/// The documented endpoints. A consumer is granted a set of them; the
/// documentation demands segmented, single-purpose consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    SsoAccess,
    SsoRefreshUserToken,
    SsoPasswordForgot,
    SsoPasswordReset,
    AdiSetToken,
    AdiGenerateToken,
    AdiToken,
    MailAccounts,
    MailSave,
    InternalUsers,
    SynologyBot,
    /// The operators' ticket API (not in the published documentation).
    TicketList,
    TicketShow,
    TicketReply,
    TicketUpdate,
    TicketAttachment,
}

impl Endpoint {
    /// The eleven endpoints of the published documentation.
    pub const ALL: [Endpoint; 11] = [
        Endpoint::SsoAccess,
        Endpoint::SsoRefreshUserToken,
        Endpoint::SsoPasswordForgot,
        Endpoint::SsoPasswordReset,
        Endpoint::AdiSetToken,
        Endpoint::AdiGenerateToken,
        Endpoint::AdiToken,
        Endpoint::MailAccounts,
        Endpoint::MailSave,
        Endpoint::InternalUsers,
        Endpoint::SynologyBot,
    ];

    /// The operators' ticket API.
    pub const TICKETS: [Endpoint; 5] = [
        Endpoint::TicketList,
        Endpoint::TicketShow,
        Endpoint::TicketReply,
        Endpoint::TicketUpdate,
        Endpoint::TicketAttachment,
    ];

    /// Every endpoint a consumer may be granted.
    pub fn every() -> impl Iterator<Item = Endpoint> {
        Endpoint::ALL.into_iter().chain(Endpoint::TICKETS)
    }

    /// The grant's name: for the documented endpoints their path below
    /// `/api/`; for the ticket API (whose paths carry ids) the method and
    /// the route's template.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::SsoAccess => "SSO/access",
            Endpoint::SsoRefreshUserToken => "SSO/refreshUserToken",
            Endpoint::SsoPasswordForgot => "SSO/password/forgot",
            Endpoint::SsoPasswordReset => "SSO/password/reset",
            Endpoint::AdiSetToken => "SSO/ADI/setToken",
            Endpoint::AdiGenerateToken => "SSO/ADI/generateToken",
            Endpoint::AdiToken => "SSO/ADI/Token",
            Endpoint::MailAccounts => "correo/getConfigCorreos",
            Endpoint::MailSave => "correo/save",
            Endpoint::InternalUsers => "UsuarioInterno/get",
            Endpoint::SynologyBot => "Synology/BotAsistencia/configurarIdUsuario",
            Endpoint::TicketList => "GET tickets",
            Endpoint::TicketShow => "GET tickets/{id}",
            Endpoint::TicketReply => "POST tickets/{id}/respuestas",
            Endpoint::TicketUpdate => "PATCH tickets/{id}",
            Endpoint::TicketAttachment => "GET tickets/{id}/adjuntos/{id_adjunto}",
        }
    }

    /// Parses a grant name; paths are case-sensitive, as the routes are.
    pub fn from_path(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches('/');
        let s = s.strip_prefix("api/").unwrap_or(s);
        Endpoint::every().find(|e| e.path() == s)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

/// A consumer of the API (`consumidor_api`). Only a keyed hash of its secret is
/// stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: i64,
    pub name: String,
    /// Hex HMAC-SHA-256 of the secret under the server's consumer key.
    pub secret_hash: String,
    pub status: Status,
    pub grants: BTreeSet<Endpoint>,
    pub created_at: Timestamp,
}

impl Consumer {
    pub fn may_call(&self, endpoint: Endpoint) -> bool {
        self.status.is_active() && self.grants.contains(&endpoint)
    }
}

#[derive(Debug, Clone)]
pub struct NewConsumer {
    pub name: String,
    pub secret_hash: String,
    pub grants: BTreeSet<Endpoint>,
    pub created_at: Timestamp,
}
