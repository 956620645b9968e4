//! Use cases, generic over their ports so a test can swap any adapter for a
//! mock or the in-memory fake.

mod access;
mod adi;
mod admin;
mod audit;
mod bot;
mod cache;
mod console;
mod directory;
mod group;
mod health;
mod ingest;
mod mail_accounts;
mod outbox;
mod own;
mod reader;
mod refused;
mod sla;
mod sso;
mod tickets;
mod webhooks;

pub use access::*;
pub use adi::*;
pub use admin::*;
pub use audit::*;
pub use bot::*;
pub use console::*;
pub use directory::*;
pub use health::{HealthService, Readiness};
pub use ingest::*;
pub use mail_accounts::*;
pub use outbox::*;
pub use own::*;
pub use reader::*;
pub use refused::{AGGREGATED_ENDPOINT, RefusedCalls, RefusedFate};
pub use sla::*;
pub use sso::*;
pub use tickets::*;
pub use webhooks::*;

/// Runs `round(batch)` until a round deletes fewer than `batch` rows (the
/// last one); returns how many went in all. A purge in rounds keeps each
/// transaction small, whatever has piled up.
async fn purge_in_rounds<F: Future<Output = Result<u64, crate::RepoError>>>(
    batch: i64,
    mut round: impl FnMut(i64) -> F,
) -> Result<u64, crate::RepoError> {
    let mut purged = 0;
    loop {
        let n = round(batch).await?;
        purged += n;
        if n < batch as u64 {
            return Ok(purged);
        }
    }
}
