//! Running a MySQL transaction again when InnoDB picked it as a deadlock
//! victim: the whole transaction rolled back, so it is safe to repeat.

use std::time::Duration;

use helpdesk_domain::RepoError;

use crate::error::TxError;

/// Attempts after the first.
const RETRIES: u32 = 8;

/// The retries of one transaction: [`Deadlocks::settle`] each attempt's
/// result; `None` means "run it again" (after a growing, jittered sleep, so
/// the retried transactions do not collide again), at most [`RETRIES`] times.
#[derive(Default)]
pub(crate) struct Deadlocks {
    attempt: u32,
}

impl Deadlocks {
    pub(crate) async fn settle<T>(&mut self, result: Result<T, TxError>) -> Option<Result<T, RepoError>> {
        match result {
            Err(e) if self.attempt < RETRIES && e.is_deadlock() => {
                self.attempt += 1;
                tokio::time::sleep(backoff(self.attempt)).await;
                None
            }
            other => Some(other.map_err(RepoError::from)),
        }
    }
}

/// Up to 5 ms times the attempt number, drawn from the clock's nanoseconds.
fn backoff(attempt: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 5_000_000)
        .unwrap_or(0);
    Duration::from_nanos(u64::from(jitter) * u64::from(attempt))
}
