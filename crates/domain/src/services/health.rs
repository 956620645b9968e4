//! Readiness: whether this server should be sent traffic. The store must
//! answer (a ping, every time: `/ready` follows an outage at once) and take
//! writes (a write probe, at most once per `every`: its answer is kept that
//! long, however often a load balancer asks).

use std::sync::Arc;
use std::time::Duration;

use crate::Report;
use crate::ports::{Clock, StoreHealth};
use crate::services::cache::TtlCache;

/// What `/ready` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The store does not answer.
    Unreachable(String),
    /// The store answers but would refuse a write (read-only, no quorum,
    /// full), saying why.
    RefusesWrites(String),
}

pub struct HealthService<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    /// Bytes a write may need: the largest request body.
    room: u64,
    last: TtlCache<(), Readiness>,
}

impl<S: StoreHealth> HealthService<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, every: Duration, room: u64) -> Self {
        Self { store, clock, room, last: TtlCache::new(every) }
    }

    /// A ping, then the last write probe's answer if younger than `every`,
    /// else a new probe's.
    pub async fn readiness(&self) -> Readiness {
        if let Err(e) = self.store.ping().await {
            return Readiness::Unreachable(Report(&e).to_string());
        }
        let probe = async || -> Result<Readiness, std::convert::Infallible> {
            Ok(match self.store.probe_write(self.room).await {
                Ok(()) => Readiness::Ready,
                Err(e) => Readiness::RefusesWrites(Report(&e).to_string()),
            })
        };
        match self.last.get_or_load((), self.clock.now(), probe, |_| true).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RepoError;
    use crate::ports::MockStoreHealth;
    use crate::testing::ManualClock;

    #[tokio::test]
    async fn a_store_that_refuses_writes_is_not_ready_and_probes_are_spaced() {
        let mut store = MockStoreHealth::new();
        store.expect_ping().times(3).returning(|| Box::pin(async { Ok(()) }));
        let mut answers = vec![Ok(()), Err(RepoError::Unavailable("database full: 12 KiB left".into()))];
        store.expect_probe_write().times(2).withf(|room| *room == 4096).returning(move |_| {
            let a = answers.remove(answers.len() - 1);
            Box::pin(async move { a })
        });
        let clock = Arc::new(ManualClock::new(chrono::Utc::now().naive_utc()));
        let health = HealthService::new(Arc::new(store), clock.clone(), Duration::from_secs(2), 4096);
        let first = health.readiness().await;
        assert_eq!(first, Readiness::RefusesWrites("store unavailable: database full: 12 KiB left".into()));
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(health.readiness().await, first, "kept for two seconds: no second probe");
        clock.advance(chrono::Duration::seconds(2));
        assert_eq!(health.readiness().await, Readiness::Ready);
    }
}
