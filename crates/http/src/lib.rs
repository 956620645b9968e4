//! The HTTP adapter: the documented endpoints on actix-web.
//!
//! Thin by design: each handler extracts and validates its input, calls one
//! domain service and maps the result. Consumer authentication, the
//! bitácora, the envelope and error mapping are shared (see [`call`],
//! [`audit`], [`envelope`], [`error`]).

pub mod audit;
pub mod call;
pub mod envelope;
pub mod error;
mod routes;
pub mod validation;

use std::sync::Arc;

use actix_web::web;
use helpdesk_domain::crypto::{SecretBox, SecretHasher, TokenSigner};
use helpdesk_domain::ports::{Adapters, Clock, PasswordHasher};
use helpdesk_domain::services::*;

pub use routes::configure;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { body_bytes: 2 * 1024 * 1024 }
    }
}

/// Everything the handlers need: the use-case services over one set of adapters.
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
    pub limits: Limits,
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
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub keys: Keys,
    pub sso: SsoSettings,
    pub limits: Limits,
}

impl<A: Adapters> AppState<A> {
    pub fn new(w: Wiring<A>) -> Self {
        let store = w.store;
        Self {
            access: AccessService::new(store.clone(), w.keys.consumer_hmac, w.clock.clone()),
            audit: AuditService::new(store.clone()),
            directory: DirectoryService::new(store.clone()),
            mail_accounts: MailAccountService::new(store.clone(), w.keys.secret_box),
            adi: AdiService::new(store.clone(), w.keys.tokens.clone(), w.clock.clone()),
            sso: Arc::new(SsoService::new(store.clone(), w.hasher, w.keys.tokens, w.clock.clone(), w.sso)),
            mailer: w.mailer,
            store,
            clock: w.clock,
            limits: w.limits,
        }
    }

    pub fn into_data(self) -> web::Data<Self> {
        web::Data::new(self)
    }
}
