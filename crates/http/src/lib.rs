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
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod request;
mod routes;
pub mod security;
pub mod validation;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use helpdesk_domain::crypto::{SecretBox, SecretHasher, TokenSigner};
use helpdesk_domain::ports::{Adapters, AuditSpool, Clock, PasswordHasher};
use helpdesk_domain::services::*;
use helpdesk_domain::services::{IngestSettings, MessageIdSigner, OutboxSettings};

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

/// Everything the handlers need: the use-case services over one set of adapters.
pub struct AppState<A: Adapters> {
    pub store: Arc<A::Store>,
    pub mailer: Arc<A::Mail>,
    pub chat: Arc<A::Chat>,
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
    pub metrics: metrics::Metrics,
    pub limits: Limits,
    /// Trusted proxies, who may read `/metrics`, CORS origins.
    pub policy: Arc<HttpPolicy>,
}

/// Keys the services need.
#[derive(Clone)]
pub struct Keys {
    pub consumer_hmac: SecretHasher,
    pub secret_box: SecretBox,
    pub tokens: TokenSigner,
}

/// What the state is built from.
pub struct Wiring<A: Adapters> {
    pub store: Arc<A::Store>,
    pub mailer: Arc<A::Mail>,
    pub chat: Arc<A::Chat>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub keys: Keys,
    pub sso: SsoSettings,
    pub ingest: IngestSettings,
    pub outbox: OutboxSettings,
    /// Domain of the Message-IDs of the mail we send.
    pub message_id_domain: String,
    /// The token Synology Chat's bot sends with its outgoing webhook.
    pub bot_outgoing_token: String,
    pub limits: Limits,
    /// How long a consumer found by name is trusted without a lookup.
    pub consumer_cache: Duration,
    /// How many groups of bitácora records may commit at once.
    pub audit_writes: usize,
    /// Where bitácora records wait while the store cannot take them.
    pub audit_spool: Option<Arc<dyn AuditSpool>>,
}

impl<A: Adapters> AppState<A> {
    /// Builds the state and spawns the bitácora's writer on the current
    /// tokio runtime (call it inside one).
    pub fn new(w: Wiring<A>) -> Self {
        let store = w.store;
        let (audit, audit_writer) = match w.audit_spool {
            Some(spool) => AuditService::with_spool(store.clone(), spool),
            None => AuditService::new(store.clone()),
        };
        tokio::spawn(audit_writer.concurrent_writes(w.audit_writes).run());
        let ids = MessageIdSigner::new(w.keys.consumer_hmac.clone(), &w.message_id_domain);
        Self {
            ingest: IngestService::new(store.clone(), ids.clone(), w.clock.clone(), w.ingest),
            outbox: Arc::new(OutboxService::new(
                store.clone(),
                w.mailer.clone(),
                w.chat.clone(),
                w.keys.secret_box.clone(),
                ids,
                w.clock.clone(),
                w.outbox,
            )),
            bot: Arc::new(BotService::new(store.clone(), w.chat.clone(), &w.bot_outgoing_token)),
            chat: w.chat,
            metrics: metrics::Metrics::default(),
            access: AccessService::new(store.clone(), w.keys.consumer_hmac, w.clock.clone())
                .with_cache(w.consumer_cache),
            audit,
            directory: DirectoryService::new(store.clone()),
            mail_accounts: MailAccountService::new(store.clone(), w.keys.secret_box),
            adi: AdiService::new(store.clone(), w.keys.tokens.clone(), w.clock.clone()),
            sso: Arc::new(SsoService::new(store.clone(), w.hasher, w.keys.tokens, w.clock.clone(), w.sso)),
            mailer: w.mailer,
            store,
            clock: w.clock,
            limits: w.limits,
            policy: Arc::new(HttpPolicy::default()),
        }
    }

    /// Replaces the default network policy (nothing trusted, `/metrics`
    /// from loopback only, CORS from any origin).
    pub fn with_policy(mut self, policy: HttpPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    pub fn into_data(self) -> web::Data<Self> {
        web::Data::new(self)
    }
}
