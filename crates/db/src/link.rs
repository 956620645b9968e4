//! The state of the link to the database, and the deadline of every call.
//!
//! Every repository call goes through [`Link::run`]: it checks a connection
//! out with [`Link::checkout`] (bounded by the acquire timeout as a whole:
//! waiting for a slot, verifying and connecting together) and runs under the
//! statement timeout. The
//! connection comes as a [`Lease`]: it goes back to the pool only when the
//! call ended cleanly. A call that timed out, failed at the protocol or
//! socket level, or was dropped half-way (a client that left) takes its
//! connection out of the pool for good, so a socket in an unknown state is
//! never reused.
//!
//! Link failures are also remembered: every pooled connection that was
//! handed out before the latest failure is verified with a query before it
//! is reused (see `conn::Recycler`), so after a database restart the dead
//! sockets are replaced at once, without costing a round trip per call when
//! nothing failed. And while the latest call ended in a link failure the
//! link is "down": the bitácora writes its records to the local spool at
//! once instead of waiting out another deadline.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool::managed::{Manager, Object};
use tokio::sync::OwnedSemaphorePermit;

use crate::pools::RuntimePools;
use helpdesk_domain::RepoError;

/// Link state shared by a [`crate::Db`] and its pool's manager.
#[derive(Debug)]
pub(crate) struct Link {
    origin: Instant,
    /// Nanoseconds after `origin` of the latest link failure; 0: none yet.
    failed_at: AtomicU64,
    down: AtomicBool,
    pub(crate) acquire: Duration,
    pub(crate) statement: Duration,
}

impl Link {
    pub(crate) fn new(acquire: Duration, statement: Duration) -> Self {
        Link { origin: Instant::now(), failed_at: AtomicU64::new(0), down: AtomicBool::new(false), acquire, statement }
    }

    /// Records a failure of the link (not of a statement's logic).
    pub(crate) fn failed(&self) {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        self.failed_at.fetch_max(nanos, Ordering::Relaxed);
        self.down.store(true, Ordering::Relaxed);
    }

    /// Records a call that reached the database and came back.
    pub(crate) fn succeeded(&self) {
        if self.down.load(Ordering::Relaxed) {
            self.down.store(false, Ordering::Relaxed);
        }
    }

    /// Whether the latest call that ended did so in a link failure.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Whether a link failure happened at or after `since`.
    pub(crate) fn failed_since(&self, since: Instant) -> bool {
        match self.failed_at.load(Ordering::Relaxed) {
            0 => false,
            nanos => self.origin + Duration::from_nanos(nanos) >= since,
        }
    }

    /// Runs `call` on a connection checked out of `pool` ([`Link::checkout`]),
    /// under the statement timeout, and settles the lease by how it ended
    /// ([`Link::settle`]).
    pub(crate) async fn run<M, T>(
        &self,
        pool: &RuntimePools<M>,
        call: impl AsyncFnOnce(&mut M::Type) -> Result<T, RepoError>,
    ) -> Result<T, RepoError>
    where
        M: Manager,
        M::Error: std::fmt::Display,
    {
        let deadline = self.statement;
        let mut lease = self.checkout(pool).await?;
        let outcome = tokio::time::timeout(deadline, call(&mut *lease)).await;
        self.settle(lease, outcome, deadline)
    }

    /// A connection from `pool` (opened on the calling runtime), within the
    /// acquire timeout.
    async fn checkout<M>(&self, pool: &RuntimePools<M>) -> Result<Lease<M>, RepoError>
    where
        M: Manager,
        M::Error: std::fmt::Display,
    {
        self.checkout_within(pool, self.acquire).await
    }

    async fn checkout_within<M>(&self, pool: &RuntimePools<M>, within: Duration) -> Result<Lease<M>, RepoError>
    where
        M: Manager,
        M::Error: std::fmt::Display,
    {
        match tokio::time::timeout(within, pool.get()).await {
            Ok(Ok((obj, permit))) => Ok(Lease { obj: Some(obj), keep: false, _permit: permit }),
            Ok(Err(e)) => {
                self.failed();
                Err(RepoError::Unavailable(e.to_string()))
            }
            Err(_) => {
                self.failed();
                Err(RepoError::Unavailable(format!("no database connection within {} ms", within.as_millis())))
            }
        }
    }

    /// Settles a call's outcome: a clean end (a value, or an error of the
    /// statement's own, like a duplicate key) gives the connection back; a
    /// link error or the deadline passing discards it.
    fn settle<M: Manager, T>(
        &self,
        lease: Lease<M>,
        outcome: Result<Result<T, RepoError>, tokio::time::error::Elapsed>,
        deadline: Duration,
    ) -> Result<T, RepoError> {
        match outcome {
            Ok(Ok(v)) => {
                self.succeeded();
                lease.give_back();
                Ok(v)
            }
            Ok(Err(e)) if e.is_unavailable() => {
                self.failed();
                Err(e)
            }
            Ok(Err(e)) => {
                self.succeeded();
                lease.give_back();
                Err(e)
            }
            Err(_) => {
                self.failed();
                Err(RepoError::Unavailable(format!("the database did not answer within {} ms", deadline.as_millis())))
            }
        }
    }
}

/// A pooled connection that is discarded when dropped, unless the call
/// using it ended cleanly ([`Lease::give_back`]).
pub(crate) struct Lease<M: Manager> {
    obj: Option<Object<M>>,
    keep: bool,
    /// Counts the connection in use until the lease ends.
    _permit: OwnedSemaphorePermit,
}

impl<M: Manager> Lease<M> {
    fn give_back(mut self) {
        self.keep = true;
    }
}

impl<M: Manager> Deref for Lease<M> {
    type Target = M::Type;
    fn deref(&self) -> &M::Type {
        self.obj.as_ref().expect("present until dropped")
    }
}

impl<M: Manager> DerefMut for Lease<M> {
    fn deref_mut(&mut self) -> &mut M::Type {
        self.obj.as_mut().expect("present until dropped")
    }
}

impl<M: Manager> Drop for Lease<M> {
    fn drop(&mut self) {
        if let (false, Some(obj)) = (self.keep, self.obj.take()) {
            drop(Object::take(obj));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_remembered_by_time() {
        let link = Link::new(Duration::from_secs(1), Duration::from_secs(1));
        let before = Instant::now();
        assert!(!link.failed_since(before) && !link.is_down());
        link.failed();
        assert!(link.failed_since(before) && link.is_down());
        std::thread::sleep(Duration::from_millis(2));
        assert!(!link.failed_since(Instant::now()), "only failures after the instant count");
        link.succeeded();
        assert!(!link.is_down());
    }
}
