//! A pool of connections per tokio runtime, under one limit.
//!
//! A connection's socket belongs to the runtime that opened it: that
//! runtime's reactor reports its readiness. Used from another runtime, every
//! answer from the database wakes the opening runtime's thread, which then
//! wakes the caller's. The server runs its HTTP workers as runtimes of their
//! own (actix) beside the main one, and with one shared pool a lone ticket
//! cost 36 thread wake-ups, 21 of them on the main runtime's threads, which
//! had opened the connections (docs/benchmarks.md, issue 36). So on MySQL a
//! store keeps one pool per runtime that uses it, made on its first call,
//! and every call takes a connection opened on its own runtime.
//!
//! One semaphore bounds the connections in use across the pools to
//! `max_connections`, as one pool did; each pool may keep up to that many
//! open, so a store used from several runtimes holds at most that many per
//! runtime (idle ones included). SQLite keeps one pool (an in-memory
//! database is one connection, and its connections do their work on tokio's
//! blocking threads, whichever runtime asks).

use std::sync::{Arc, PoisonError, RwLock};

use deadpool::managed::{Manager, Object, Pool, PoolError};
use tokio::runtime::{Handle, Id};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Make<M> = Box<dyn Fn() -> Result<Pool<M>, String> + Send + Sync>;

pub(crate) struct RuntimePools<M: Manager> {
    make: Make<M>,
    /// One pool per runtime (`None`: called outside any runtime); with
    /// `per_runtime` off, only the first.
    pools: RwLock<Vec<(Option<Id>, Pool<M>)>>,
    per_runtime: bool,
    permits: Arc<Semaphore>,
    max: usize,
}

impl<M: Manager> RuntimePools<M> {
    /// Pools made by `make`, each of up to `max` connections, at most `max`
    /// in use across them; `per_runtime` off keeps one pool for every
    /// runtime. Makes one pool at once, so a bad configuration fails here.
    pub(crate) fn new(
        max: usize,
        per_runtime: bool,
        make: impl Fn() -> Result<Pool<M>, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let first = make()?;
        Ok(Self {
            make: Box::new(make),
            pools: RwLock::new(vec![(here(), first)]),
            per_runtime,
            permits: Arc::new(Semaphore::new(max)),
            max,
        })
    }

    /// The pool for the calling runtime.
    pub(crate) fn current(&self) -> Pool<M> {
        let here = here();
        {
            let pools = self.pools.read().unwrap_or_else(PoisonError::into_inner);
            if !self.per_runtime {
                return pools[0].1.clone();
            }
            if let Some((_, pool)) = pools.iter().find(|(id, _)| *id == here) {
                return pool.clone();
            }
        }
        let mut pools = self.pools.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, pool)) = pools.iter().find(|(id, _)| *id == here) {
            return pool.clone();
        }
        match (self.make)() {
            Ok(pool) => {
                pools.push((here, pool.clone()));
                pool
            }
            // The first pool was made by the same settings; should another
            // ever fail, the first serves (its sockets wake its runtime).
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a pool for this runtime; using the first");
                pools[0].1.clone()
            }
        }
    }

    /// A connection opened on the calling runtime, and the permit that
    /// counts it in use.
    pub(crate) async fn get(&self) -> Result<(Object<M>, OwnedSemaphorePermit), PoolError<M::Error>> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| PoolError::Closed)?;
        let conn = self.current().get().await?;
        Ok((conn, permit))
    }

    /// Connections in use across the pools, and the most allowed.
    pub(crate) fn status(&self) -> (usize, usize) {
        (self.max.saturating_sub(self.permits.available_permits()), self.max)
    }

    /// How many pools were made (one per runtime that called).
    #[cfg(test)]
    pub(crate) fn pools(&self) -> usize {
        self.pools.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

fn here() -> Option<Id> {
    Handle::try_current().ok().map(|h| h.id())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use deadpool::managed::{Metrics, RecycleResult};

    use super::*;

    /// Connections that remember the runtime they were opened on.
    struct Opener;

    impl Manager for Opener {
        type Type = Option<Id>;
        type Error = std::convert::Infallible;

        async fn create(&self) -> Result<Option<Id>, Self::Error> {
            Ok(here())
        }

        async fn recycle(&self, _: &mut Option<Id>, _: &Metrics) -> RecycleResult<Self::Error> {
            Ok(())
        }
    }

    fn pools(max: usize, per_runtime: bool) -> Arc<RuntimePools<Opener>> {
        let make = move || Pool::builder(Opener).max_size(max).build().map_err(|e| e.to_string());
        Arc::new(RuntimePools::new(max, per_runtime, make).unwrap())
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn each_runtime_gets_connections_opened_on_it() {
        let pools = pools(4, true);
        let (a, b) = (runtime(), runtime());
        let opened_on = |rt: &tokio::runtime::Runtime| {
            rt.block_on(async {
                let (conn, _permit) = pools.get().await.unwrap();
                (*conn, here())
            })
        };
        for rt in [&a, &b, &a, &b] {
            let (opened, caller) = opened_on(rt);
            assert_eq!(opened, caller, "a connection opened on the caller's runtime");
            assert!(opened.is_some());
        }
        assert_ne!(opened_on(&a).0, opened_on(&b).0);
        // The one made at construction (outside any runtime) and one per runtime.
        assert_eq!(pools.pools(), 3);

        // Off (SQLite): one pool, whoever calls.
        let one = self::pools(4, false);
        let first = a.block_on(async { *one.get().await.unwrap().0 });
        let second = b.block_on(async { *one.get().await.unwrap().0 });
        assert_eq!((first, second, one.pools()), (first, first, 1));
    }

    #[test]
    fn the_limit_holds_across_runtimes() {
        let pools = pools(1, true);
        let (a, b) = (runtime(), runtime());
        let held = a.block_on(pools.get()).unwrap();
        assert_eq!(pools.status(), (1, 1));
        let waited = b.block_on(async { tokio::time::timeout(Duration::from_millis(50), pools.get()).await });
        assert!(waited.is_err(), "the second runtime waits while the one connection allowed is in use");
        drop(held);
        assert_eq!(pools.status(), (0, 1));
        assert!(b.block_on(pools.get()).is_ok());
    }
}
