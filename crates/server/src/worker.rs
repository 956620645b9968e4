//! The outbox worker: delivers notices that are due, forever, and keeps
//! going through any error (the next poll retries).

use std::sync::Arc;
use std::time::Duration;

use helpdesk_domain::ports::{ChatNotifier, MailNotifier, Store};
use helpdesk_domain::services::OutboxService;

/// Notices per round.
const BATCH: i64 = 50;

pub async fn run<R: Store, M: MailNotifier, C: ChatNotifier>(outbox: Arc<OutboxService<R, M, C>>, poll: Duration) {
    loop {
        match outbox.run_due(BATCH).await {
            // A full batch: there may be more, go on at once.
            Ok(n) if n as i64 == BATCH => continue,
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(delivered = n, "outbox round");
                }
            }
            Err(e) => tracing::warn!(error = %e, "outbox round failed; retrying"),
        }
        tokio::time::sleep(poll).await;
    }
}
