//! Running a MySQL transaction again when InnoDB picked it as a deadlock
//! victim, or a Galera cluster refused it at commit because a transaction on
//! another node wrote the same rows first (reported as the same error):
//! the whole transaction rolled back, so it is safe to repeat.

use std::time::Duration;

use diesel_async::AsyncConnection;
use helpdesk_domain::RepoError;

use crate::error::TxError;
use crate::tx::{TxBody, transaction};

/// Attempts after the first.
const RETRIES: u32 = 12;
/// The first pause; it doubles per attempt, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// The retries of one transaction: while it ends in a deadlock,
/// [`Deadlocks::settle`] has it run again after a growing, jittered sleep (so
/// the retried transactions do not collide again), at most [`RETRIES`] times;
/// after that a deadlock is [`RepoError::Busy`].
#[derive(Default)]
pub(crate) struct Deadlocks {
    attempt: u32,
}

impl Deadlocks {
    /// One attempt: `body` in a transaction on `conn` ([`transaction`]).
    /// Its value, or its error mapped by `RepoError::from` (so that the
    /// lease sees a link failure), except a deadlock, which is kept whole
    /// (`Ok(Err(_))`) for [`Deadlocks::settle`] to decide on.
    pub(crate) async fn attempt<C, T, F>(conn: &mut C, body: &F) -> Result<Result<T, TxError>, RepoError>
    where
        C: AsyncConnection + 'static,
        T: Send,
        F: for<'r> AsyncFn(&'r mut C) -> Result<T, TxError> + for<'r> TxBody<'r, C, T> + Sync,
    {
        match transaction(&mut *conn, body).await {
            Err(e) if e.is_deadlock() => Ok(Err(e)),
            other => other.map(Ok).map_err(RepoError::from),
        }
    }

    /// One attempt's result; `None` means "run it again" (after the pause).
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

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::*;

    fn deadlock() -> TxError {
        let message = "Deadlock found when trying to get lock; try restarting transaction".to_string();
        TxError::Diesel(DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message)))
    }

    #[tokio::test]
    async fn a_deadlock_is_retried_twelve_times_then_busy() {
        let mut retry = Deadlocks::default();
        let mut attempts = 1;
        let done = loop {
            match retry.settle::<()>(Err(deadlock())).await {
                None => attempts += 1,
                Some(done) => break done,
            }
        };
        assert_eq!(attempts, 1 + RETRIES);
        assert!(matches!(&done, Err(RepoError::Busy(m)) if m == "write conflict after 13 attempts"), "{done:?}");
    }

    #[tokio::test]
    async fn a_retried_transaction_may_succeed_and_other_errors_are_not_retried() {
        let mut retry = Deadlocks::default();
        assert!(retry.settle::<i64>(Err(deadlock())).await.is_none());
        assert!(matches!(retry.settle(Ok(7)).await, Some(Ok(7))));
        let mut retry = Deadlocks::default();
        let done = retry.settle::<()>(Err(TxError::Repo(RepoError::NotFound))).await;
        assert!(matches!(done, Some(Err(RepoError::NotFound))), "{done:?}");
    }

    #[test]
    fn pauses_are_jittered_below_a_doubling_capped_ceiling() {
        for attempt in 1..=RETRIES {
            let ceiling = FIRST_PAUSE.saturating_mul(1 << attempt).min(MAX_PAUSE);
            assert!((0..50).all(|_| backoff(attempt) <= ceiling), "attempt {attempt}");
        }
    }
}
