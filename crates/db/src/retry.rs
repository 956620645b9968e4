//! Running a MySQL transaction again when InnoDB picked it as a deadlock
//! victim, or a Galera cluster refused it at commit because a transaction on
//! another node wrote the same rows first (reported as the same error):
//! the whole transaction rolled back, so it is safe to repeat.

use std::time::Duration;

use helpdesk_domain::RepoError;

use crate::error::TxError;

/// Attempts after the first.
const RETRIES: u32 = 12;
/// The first pause; it doubles per attempt, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(200);

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
            Err(e) if e.is_deadlock() => {
                Some(Err(RepoError::Busy(format!("write conflict after {} attempts", self.attempt + 1))))
            }
            other => Some(other.map_err(RepoError::from)),
        }
    }
}

/// "Full jitter" exponential backoff: a random pause between zero and
/// `FIRST_PAUSE * 2^attempt` (capped), so that transactions that collided
/// spread out instead of colliding again in step.
fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_PAUSE.saturating_mul(1 << attempt.min(16)).min(MAX_PAUSE);
    ceiling.mul_f64(rand::random::<f64>())
}
