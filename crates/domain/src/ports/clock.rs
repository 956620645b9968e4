//! The source of "now".

use super::*;

/// The source of "now", injected so that expiry can be tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real clock, truncated to microseconds (what both databases keep).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        use chrono::{SubsecRound, Utc};
        Utc::now().naive_utc().trunc_subsecs(6)
    }
}
