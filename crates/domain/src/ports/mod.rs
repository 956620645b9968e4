//! Ports: the traits through which services reach the outside world.
//!
//! Methods return `impl Future + Send` rather than using `async fn`, so that
//! generic code may `tokio::spawn` them. Traits are `Send + Sync + 'static` and
//! not `Clone` (hold adapters in an `Arc`). Every adapter runs the contract
//! suite in [`crate::testing`] (feature `testing`), which checks the "MUST"s
//! written on each method.

mod audit_spool;
mod clock;
mod hashing;
mod mail_reading;
mod notifiers;
mod repositories;

pub use audit_spool::*;
pub use clock::*;
pub use hashing::*;
pub use mail_reading::*;
pub use notifiers::*;
pub use repositories::*;

use std::collections::BTreeSet;
use std::future::Future;

use crate::error::RepoError;
use crate::model::*;

pub type RepoResult<T> = Result<T, RepoError>;

/// A boxed future, for the object-safe ports.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Every repository port at once: what a complete store adapter provides.
pub trait Store:
    ProductRepository
    + DepartmentRepository
    + UserRepository
    + ConsumerRepository
    + AuditRepository
    + MailAccountRepository
    + SessionRepository
    + ConsoleSessionRepository
    + PasswordResetRepository
    + ThrottleRepository
    + IntegratedSystemRepository
    + TicketRepository
    + TicketWorkRepository
    + SlaRepository
    + OutboxRepository
    + WebhookRepository
    + ReaderStateRepository
    + HeldMailRepository
    + StoreHealth
{
}

impl<T> Store for T where
    T: ProductRepository
        + DepartmentRepository
        + UserRepository
        + ConsumerRepository
        + AuditRepository
        + MailAccountRepository
        + SessionRepository
        + ConsoleSessionRepository
        + PasswordResetRepository
        + ThrottleRepository
        + IntegratedSystemRepository
        + TicketRepository
        + TicketWorkRepository
        + SlaRepository
        + OutboxRepository
        + WebhookRepository
        + ReaderStateRepository
        + HeldMailRepository
        + StoreHealth
{
}

/// The adapters an application is wired with, named by one type, so that
/// the HTTP layer is generic over a single parameter.
pub trait Adapters: Send + Sync + 'static {
    type Store: Store;
    type Mail: MailNotifier;
    type Chat: ChatNotifier;
}
