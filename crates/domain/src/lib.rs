//! The helpdesk domain: what a ticket, an operator, a consumer of the API and an
//! audit entry are, the ports (repository and notifier traits) through which the
//! outside world is reached, and the use-case services built on those ports.
//!
//! This crate performs no I/O. Adapters (databases, SMTP, Synology Chat, HTTP)
//! live in other crates and depend on this one, never the reverse.

pub mod crypto;
pub mod error;
pub mod model;
pub mod ports;
pub mod services;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Cause, RepoError, Report};
