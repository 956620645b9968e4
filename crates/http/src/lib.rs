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
use helpdesk_domain::crypto::{SecretBox, SecretHasher};
use helpdesk_domain::ports::{Clock, Store};
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

/// Everything the handlers need: the use-case services over one store.
pub struct AppState<S: Store> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
    pub access: AccessService<S>,
    pub audit: AuditService<S>,
    pub directory: DirectoryService<S>,
    pub mail_accounts: MailAccountService<S>,
    pub limits: Limits,
}

/// Keys the services need.
#[derive(Clone)]
pub struct Keys {
    pub consumer_hmac: SecretHasher,
    pub secret_box: SecretBox,
}

impl<S: Store> AppState<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, keys: Keys, limits: Limits) -> Self {
        Self {
            access: AccessService::new(store.clone(), keys.consumer_hmac, clock.clone()),
            audit: AuditService::new(store.clone()),
            directory: DirectoryService::new(store.clone()),
            mail_accounts: MailAccountService::new(store.clone(), keys.secret_box),
            store,
            clock,
            limits,
        }
    }

    pub fn into_data(self) -> web::Data<Self> {
        web::Data::new(self)
    }
}
