//! Calls refused for their credentials (no or wrong consumer headers, the
//! Synology webhook's wrong token) cost strangers nothing and wrote one
//! bitácora row each. Beyond a burst per client address and minute they are
//! counted into one aggregated record of that address and minute instead.
//! Counted per server: each server of a cluster keeps its own tally.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::Timelike;
use serde_json::json;

use crate::model::{AuditOutcome, AuditRecord, NewAuditEntry, Timestamp};

/// Addresses tallied at once, at most; past it a new address's refused
/// calls keep their own records (the flush empties the tally every minute).
const MAX_ADDRESSES: usize = 100_000;

/// Endpoints an aggregated record names, at most.
const MAX_ENDPOINTS: usize = 20;

/// What the aggregated record's `endpoint` says.
pub const AGGREGATED_ENDPOINT: &str = "(llamadas rechazadas agregadas)";

/// What becomes of one refused call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedFate {
    /// Within the burst: a record of its own, as any call.
    Own,
    /// Counted into its address's aggregated record for the minute, whose
    /// id is this.
    Counted(i64),
}

/// One address's refused calls in one minute.
#[derive(Debug, Clone)]
struct Window {
    minute: Timestamp,
    calls: u64,
    /// Calls beyond the burst, counted into the aggregate.
    counted: u64,
    first: Timestamp,
    last: Timestamp,
    endpoints: BTreeSet<String>,
    id: Option<i64>,
}

impl Window {
    fn new(minute: Timestamp) -> Self {
        Window { minute, calls: 0, counted: 0, first: minute, last: minute, endpoints: BTreeSet::new(), id: None }
    }
}

/// The tally; see the module.
pub struct RefusedCalls {
    burst: u64,
    windows: Mutex<HashMap<String, Window>>,
    /// Windows whose minute ended with calls counted, waiting to be written.
    closed: Mutex<Vec<(String, Window)>>,
}

fn minute_of(at: Timestamp) -> Timestamp {
    at.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(at)
}

impl RefusedCalls {
    pub fn new(burst: u64) -> Self {
        Self { burst, windows: Mutex::default(), closed: Mutex::default() }
    }

    /// Counts a refused call of `address` to `endpoint` at `at`. Beyond the
    /// burst, the window's aggregate needs an id: `Err(())` asks the caller
    /// to reserve one and call [`Self::counted_with`].
    fn note(&self, address: &str, endpoint: &str, at: Timestamp) -> Result<RefusedFate, ()> {
        let minute = minute_of(at);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(address) && windows.len() >= MAX_ADDRESSES {
            return Ok(RefusedFate::Own);
        }
        let w = windows.entry(address.to_string()).or_insert_with(|| Window::new(minute));
        if w.minute != minute {
            let ended = std::mem::replace(w, Window::new(minute));
            if ended.counted > 0 {
                self.closed.lock().unwrap_or_else(|e| e.into_inner()).push((address.to_string(), ended));
            }
        }
        w.calls += 1;
        if w.calls <= self.burst {
            return Ok(RefusedFate::Own);
        }
        let Some(id) = w.id else { return Err(()) };
        Self::count(w, endpoint, at);
        Ok(RefusedFate::Counted(id))
    }

    fn count(w: &mut Window, endpoint: &str, at: Timestamp) {
        if w.counted == 0 {
            w.first = at;
        }
        w.counted += 1;
        w.last = w.last.max(at);
        if w.endpoints.len() < MAX_ENDPOINTS {
            w.endpoints.insert(endpoint.to_string());
        }
    }

    /// [`Self::note`] once an id is at hand for the window's aggregate (the
    /// window's own id wins if another call set one meanwhile).
    fn counted_with(&self, address: &str, endpoint: &str, at: Timestamp, id: i64) -> RefusedFate {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get_mut(address).filter(|w| w.minute == minute_of(at)) {
            Some(w) => {
                let id = *w.id.get_or_insert(id);
                Self::count(w, endpoint, at);
                RefusedFate::Counted(id)
            }
            // The minute turned meanwhile: this call counts as the next
            // window's first, with a record of its own.
            None => RefusedFate::Own,
        }
    }

    /// The aggregated records of every window whose minute ended before
    /// `now` (every window when `all`), taken out of the tally.
    pub fn take_finished(&self, now: Timestamp, all: bool) -> Vec<AuditRecord> {
        let current = minute_of(now);
        let mut finished: Vec<(String, Window)> =
            std::mem::take(&mut *self.closed.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            let ended: Vec<String> =
                windows.iter().filter(|(_, w)| all || w.minute < current).map(|(a, _)| a.clone()).collect();
            for address in ended {
                if let Some(w) = windows.remove(&address)
                    && w.counted > 0
                {
                    finished.push((address, w));
                }
            }
        }
        finished.into_iter().filter_map(|(address, w)| Some(aggregate(&address, &w, w.id?))).collect()
    }
}

/// The record of a window's counted calls.
fn aggregate(address: &str, w: &Window, id: i64) -> AuditRecord {
    let stamp = |t: Timestamp| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let body = json!({
        "llamadas": w.counted,
        "primera": stamp(w.first),
        "ultima": stamp(w.last),
        "endpoints": w.endpoints,
    });
    AuditRecord {
        id,
        entry: NewAuditEntry {
            at: w.first,
            consumer_name: None,
            endpoint: AGGREGATED_ENDPOINT.into(),
            method: "*".into(),
            client_ip: address.into(),
            body: body.to_string(),
            parent_id: None,
        },
        outcome: AuditOutcome { consumer_id: None, status: 401, duration_us: 0, user_id: None },
    }
}

/// What [`crate::services::AuditService::note_refused`] needs of the
/// service: an id for a new aggregate.
pub(crate) async fn note_refused<F, Fut, E>(
    calls: &RefusedCalls,
    address: &str,
    endpoint: &str,
    at: Timestamp,
    reserve: F,
) -> Result<RefusedFate, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<i64, E>>,
{
    match calls.note(address, endpoint, at) {
        Ok(fate) => Ok(fate),
        Err(()) => {
            let id = reserve().await?;
            Ok(calls.counted_with(address, endpoint, at, id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: u32, sec: u32) -> Timestamp {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_opt(23, min, sec).unwrap()
    }

    async fn note(c: &RefusedCalls, ip: &str, endpoint: &str, t: Timestamp, next: &mut i64) -> RefusedFate {
        note_refused(c, ip, endpoint, t, || {
            *next += 1;
            let id = *next;
            async move { Ok::<_, ()>(id) }
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn beyond_the_burst_calls_are_counted_per_address_and_minute() {
        let c = RefusedCalls::new(3);
        let mut ids = 100;
        for s in 0..3 {
            assert_eq!(note(&c, "10.0.0.1", "a", at(0, s), &mut ids).await, RefusedFate::Own);
        }
        let mut fates = Vec::new();
        for s in 3..8 {
            fates.push(note(&c, "10.0.0.1", if s % 2 == 0 { "a" } else { "b" }, at(0, s), &mut ids).await);
        }
        assert_eq!(fates, vec![RefusedFate::Counted(101); 5], "one aggregate, one id");
        assert_eq!(note(&c, "10.0.0.2", "a", at(0, 9), &mut ids).await, RefusedFate::Own, "another address");
        assert!(c.take_finished(at(0, 59), false).is_empty(), "the minute is not over");

        // The next minute starts over; the last one's aggregate is finished.
        assert_eq!(note(&c, "10.0.0.1", "a", at(1, 0), &mut ids).await, RefusedFate::Own);
        let records = c.take_finished(at(1, 30), false);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.id, r.entry.client_ip.as_str(), r.entry.at, r.outcome.status), (101, "10.0.0.1", at(0, 3), 401));
        let body: serde_json::Value = serde_json::from_str(&r.entry.body).unwrap();
        assert_eq!(body["llamadas"], 5);
        assert_eq!(body["endpoints"], serde_json::json!(["a", "b"]));
        assert_eq!(body["ultima"], "2026-12-06 23:00:07.000000");
        assert!(c.take_finished(at(1, 30), false).is_empty(), "taken once");
        assert!(c.take_finished(at(1, 30), true).is_empty(), "nothing counted in minute 1");
    }

    #[tokio::test]
    async fn a_burst_of_zero_counts_every_refused_call() {
        let c = RefusedCalls::new(0);
        let mut ids = 0;
        assert_eq!(note(&c, "::1", "a", at(5, 0), &mut ids).await, RefusedFate::Counted(1));
        assert_eq!(note(&c, "::1", "a", at(5, 1), &mut ids).await, RefusedFate::Counted(1));
        let all = c.take_finished(at(5, 2), true);
        assert_eq!(all.len(), 1, "a stop writes the open minutes too");
    }
}
