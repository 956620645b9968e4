//! The repository ports, implemented once for both backends.

mod adi;
mod audit;
mod console;
mod consumers;
mod directory;
mod held;
mod mail_accounts;
mod outbox;
mod reader;
mod sla;
mod sso;
mod tickets;
mod webhooks;
mod work;
pub(crate) use tickets::insert_events;
