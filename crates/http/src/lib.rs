//! The HTTP adapter: the documented endpoints on actix-web.
//!
//! Thin by design: each handler receives its typed, validated input
//! ([`extract::Valid`]), calls one domain service and maps the result.
//! Consumer authentication, the bitácora, the envelope and error mapping
//! are shared (see [`extract`], [`audit`], [`envelope`], [`error`]).

pub mod audit;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod files;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod request;
pub mod route;
mod routes;
pub mod security;
pub mod validation;

use std::sync::Arc;
use std::time::Duration;

use helpdesk_domain::ports::{Adapters, Clock};
use helpdesk_domain::services::*;
use tokio_util::task::TaskTracker;

pub use routes::configure;
pub use security::{Cidr, CorsOrigins, HttpPolicy, parse_cidrs};

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub body_bytes: usize,
    /// How long `correo/save` waits for the first delivery attempt of its
    /// notices before answering; `None`: no attempt, the worker sends them.
    pub inline_delivery: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { body_bytes: 2 * 1024 * 1024, inline_delivery: Some(Duration::from_millis(1500)) }
    }
}

/// Everything the handlers need: the use-case services over one set of
/// adapters. The server builds it (`helpdesk_server::Parts`, `startup.rs`);
/// this crate only serves with it.
pub struct AppState<A: Adapters> {
    pub store: Arc<A::Store>,
    pub mailer: Arc<A::Mail>,
    pub clock: Arc<dyn Clock>,
    pub access: AccessService<A::Store>,
    pub audit: AuditService<A::Store>,
    pub directory: DirectoryService<A::Store>,
    pub mail_accounts: MailAccountService<A::Store>,
    pub sso: Arc<SsoService<A::Store>>,
    pub adi: AdiService<A::Store>,
    pub ingest: IngestService<A::Store>,
    pub outbox: Arc<OutboxService<A::Store, A::Mail, A::Chat>>,
    pub bot: Arc<BotService<A::Store, A::Chat>>,
    pub tickets: TicketService<A::Store>,
    /// Service levels: escalation and the counts for `/metrics`.
    pub sla: Arc<SlaService<A::Store>>,
    /// `/ready`'s probes, spaced.
    pub health: HealthService<A::Store>,
    /// Where attachments' files live (`reader.storage_dir`); routes are
    /// relative to it.
    pub attachments_dir: std::path::PathBuf,
    pub metrics: metrics::Metrics,
    pub limits: Limits,
    /// Trusted proxies, who may read `/metrics`, CORS origins.
    pub policy: Arc<HttpPolicy>,
    /// Work a handler leaves running after its answer (the password-reset
    /// e-mail, a retried Synology reply, a delivery attempt that outlasts
    /// its wait): the server closes the set on shutdown and waits for it.
    pub tasks: TaskTracker,
}
