//! Use cases, generic over their ports so a test can swap any adapter for a
//! mock or the in-memory fake.

mod access;
mod adi;
mod admin;
mod audit;
mod bot;
mod cache;
mod directory;
mod group;
mod ingest;
mod mail_accounts;
mod outbox;
mod reader;
mod sla;
mod sso;
mod tickets;
mod webhooks;

pub use access::*;
pub use adi::*;
pub use admin::*;
pub use audit::*;
pub use bot::*;
pub use directory::*;
pub use ingest::*;
pub use mail_accounts::*;
pub use outbox::*;
pub use reader::*;
pub use sla::*;
pub use sso::*;
pub use tickets::*;
pub use webhooks::*;
