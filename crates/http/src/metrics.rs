//! `/metrics` in Prometheus' text format: requests by endpoint and status, a
//! latency histogram per endpoint, the outbox backlog, outgoing webhooks'
//! delivery attempts and backlog, and the database pool.
//! Kept by hand (a few counters behind one mutex) rather than pulling in a
//! metrics stack for five series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use helpdesk_domain::model::SlaState;
use helpdesk_domain::ports::SpoolStats;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    /// Webhook delivery attempts by outcome: sent, retry, failed.
    webhooks: [u64; 3],
    /// Service-level breaches this process announced.
    sla_breaches: u64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// The outbox backlog last read, shown while the database is unreachable.
    last_pending: Mutex<Option<i64>>,
    /// The same for the webhooks' deliveries.
    last_webhook_pending: Mutex<Option<i64>>,
}

/// Gauges read at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Whether the database answered a ping just now.
    pub db_up: bool,
    /// Notices waiting; `None` when it could not be read (the last value read is shown).
    pub outbox_pending: Option<i64>,
    /// Webhook deliveries waiting (the same).
    pub webhook_pending: Option<i64>,
    /// Database connections in use and the pool's maximum.
    pub pool: Option<(usize, usize)>,
    /// The bitácora's spool, when there is one.
    pub spool: Option<SpoolStats>,
    /// Tickets per service-level state, in the order of [`SlaState::ALL`];
    /// `None` when it could not be read.
    pub sla: Option<[i64; 5]>,
}

/// The label of a path below `/api/`: its route's template below `/api/`
/// (ids never become label values), or "other" (so that arbitrary 404
/// paths cannot grow the series without bound).
pub fn endpoint_label(path: &str) -> &'static str {
    crate::route::find(&format!("/api/{path}")).map_or("other", |r| r.label())
}

impl Metrics {
    pub fn observe(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        let Ok(mut m) = self.inner.lock() else { return };
        *m.requests.entry((endpoint, status)).or_default() += 1;
        let h = m.latency.entry(endpoint).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts a round of webhook delivery attempts by outcome (the worker
    /// calls it).
    pub fn count_webhook_deliveries(&self, sent: usize, retried: usize, failed: usize) {
        let Ok(mut m) = self.inner.lock() else { return };
        for (slot, n) in m.webhooks.iter_mut().zip([sent, retried, failed]) {
            *slot += n as u64;
        }
    }

    pub fn count_sla_breaches(&self, n: usize) {
        if let Ok(mut m) = self.inner.lock() {
            m.sla_breaches += n as u64;
        }
    }

    /// The text exposition, with the gauges read at scrape time.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let outbox_pending = last_known(gauges.outbox_pending, &self.last_pending);
        let webhook_pending = last_known(gauges.webhook_pending, &self.last_webhook_pending);
        let Ok(m) = self.inner.lock() else { return out };
        out.push_str("# HELP helpdesk_http_requests_total API requests by endpoint and HTTP status.\n");
        out.push_str("# TYPE helpdesk_http_requests_total counter\n");
        for ((endpoint, status), n) in &m.requests {
            let _ = writeln!(out, "helpdesk_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP helpdesk_http_request_duration_seconds API request latency by endpoint.\n");
        out.push_str("# TYPE helpdesk_http_request_duration_seconds histogram\n");
        for (endpoint, h) in &m.latency {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "helpdesk_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "helpdesk_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "helpdesk_http_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}", h.sum);
            let _ =
                writeln!(out, "helpdesk_http_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}", h.count);
        }
        gauge(
            &mut out,
            "helpdesk_db_up",
            "Whether the database answered a ping at this scrape (1) or not (0).",
            &[("", u64::from(gauges.db_up))],
        );
        if let Some(pending) = outbox_pending {
            out.push_str("# HELP helpdesk_outbox_pending Notices waiting for delivery (the last value read while the database is unreachable).\n");
            out.push_str("# TYPE helpdesk_outbox_pending gauge\n");
            let _ = writeln!(out, "helpdesk_outbox_pending {pending}");
        }
        out.push_str("# HELP helpdesk_webhook_deliveries_total Outgoing webhook delivery attempts by outcome (sent: 2xx; retry: to be tried again; failed: given up).\n");
        out.push_str("# TYPE helpdesk_webhook_deliveries_total counter\n");
        for (result, n) in ["sent", "retry", "failed"].into_iter().zip(m.webhooks) {
            let _ = writeln!(out, "helpdesk_webhook_deliveries_total{{result=\"{result}\"}} {n}");
        }
        if let Some(pending) = webhook_pending {
            gauge(
                &mut out,
                "helpdesk_webhook_pending",
                "Outgoing webhook deliveries waiting (the last value read while the database is unreachable).",
                &[("", pending.max(0) as u64)],
            );
        }
        out.push_str("# HELP helpdesk_sla_breaches_total Service-level breaches announced by this process (each ticket's threshold once across processes).\n");
        out.push_str("# TYPE helpdesk_sla_breaches_total counter\n");
        let _ = writeln!(out, "helpdesk_sla_breaches_total {}", m.sla_breaches);
        if let Some(counts) = gauges.sla {
            let labels: Vec<(String, u64)> = SlaState::ALL
                .iter()
                .zip(counts)
                .map(|(s, n)| (format!("{{estado=\"{}\"}}", s.as_str()), n.max(0) as u64))
                .collect();
            let labels: Vec<(&str, u64)> = labels.iter().map(|(l, n)| (l.as_str(), *n)).collect();
            gauge(&mut out, "helpdesk_sla_tickets", "Tickets with a service level, by its state now.", &labels);
        }
        if let Some((in_use, max)) = gauges.pool {
            gauge(
                &mut out,
                "helpdesk_db_pool_connections",
                "Database connections in use and the pool's maximum.",
                &[("{state=\"in_use\"}", in_use as u64), ("{state=\"max\"}", max as u64)],
            );
        }
        if let Some(spool) = gauges.spool {
            gauge(
                &mut out,
                "helpdesk_audit_spool_records",
                "Bitácora records waiting in the local spool.",
                &[("", spool.records)],
            );
            gauge(
                &mut out,
                "helpdesk_audit_spool_bytes",
                "Bytes held by the bitácora's local spool.",
                &[("", spool.bytes)],
            );
            gauge(
                &mut out,
                "helpdesk_audit_spool_quarantined",
                "Spooled entries set aside since start (unreadable, or refused by the database).",
                &[("", spool.quarantined)],
            );
        }
        out
    }
}

/// The value read now, kept as the last known; the last known when it
/// could not be read.
fn last_known(now: Option<i64>, last: &Mutex<Option<i64>>) -> Option<i64> {
    match (now, last.lock()) {
        (Some(now), Ok(mut last)) => {
            *last = Some(now);
            Some(now)
        }
        (None, Ok(last)) => *last,
        (now, Err(_)) => now,
    }
}

/// One gauge: its help, type and a sample per label set.
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_paths_are_labelled_by_their_route() {
        assert_eq!(endpoint_label("tickets"), "tickets");
        assert_eq!(endpoint_label("tickets/4821"), "tickets/{id}");
        assert_eq!(endpoint_label("tickets/4821/respuestas"), "tickets/{id}/respuestas");
        assert_eq!(endpoint_label("tickets/4821/adjuntos/7"), "tickets/{id}/adjuntos/{id_adjunto}");
        for other in ["tickets/abc", "tickets/1/otra", "tickets/1/adjuntos/x", "ticketsx"] {
            assert_eq!(endpoint_label(other), "other", "{other}");
        }
    }

    #[test]
    fn counts_buckets_and_labels() {
        let m = Metrics::default();
        m.observe(endpoint_label("correo/save"), 200, Duration::from_millis(3));
        m.observe(endpoint_label("correo/save"), 200, Duration::from_millis(30));
        m.observe(endpoint_label("no/existe/123"), 404, Duration::from_millis(1));
        let spool = Some(SpoolStats { records: 3, bytes: 900, quarantined: 1 });
        m.count_webhook_deliveries(2, 1, 0);
        m.count_webhook_deliveries(1, 0, 1);
        let gauges = Gauges {
            db_up: true,
            outbox_pending: Some(7),
            webhook_pending: Some(4),
            pool: Some((2, 8)),
            spool,
            sla: Some([3, 1, 2, 0, 5]),
        };
        let text = m.render(gauges);
        assert!(text.contains("helpdesk_http_requests_total{endpoint=\"correo/save\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("helpdesk_http_requests_total{endpoint=\"other\",status=\"404\"} 1"));
        assert!(
            text.contains("helpdesk_http_request_duration_seconds_bucket{endpoint=\"correo/save\",le=\"0.005\"} 1")
        );
        assert!(text.contains("helpdesk_http_request_duration_seconds_bucket{endpoint=\"correo/save\",le=\"0.05\"} 2"));
        assert!(text.contains("helpdesk_http_request_duration_seconds_count{endpoint=\"correo/save\"} 2"));
        assert!(text.contains("helpdesk_outbox_pending 7"));
        assert!(text.contains("helpdesk_webhook_deliveries_total{result=\"sent\"} 3\n"), "{text}");
        assert!(text.contains("helpdesk_webhook_deliveries_total{result=\"retry\"} 1\n"), "{text}");
        assert!(text.contains("helpdesk_webhook_deliveries_total{result=\"failed\"} 1\n"), "{text}");
        assert!(text.contains("helpdesk_webhook_pending 4\n"), "{text}");
        m.count_sla_breaches(2);
        let text = m.render(gauges);
        assert!(text.contains("helpdesk_sla_breaches_total 2\n"), "{text}");
        assert!(text.contains("helpdesk_sla_tickets{estado=\"en_tiempo\"} 3\n"), "{text}");
        assert!(text.contains("helpdesk_sla_tickets{estado=\"por_vencer\"} 1\n"), "{text}");
        assert!(text.contains("helpdesk_sla_tickets{estado=\"cumplido\"} 5\n"), "{text}");
        assert!(text.contains("helpdesk_db_pool_connections{state=\"max\"} 8"));
        assert!(text.contains("helpdesk_db_up 1\n"), "{text}");
        assert!(text.contains("helpdesk_audit_spool_records 3\n") && text.contains("helpdesk_audit_spool_bytes 900\n"));
        // The database unreachable: its gauge drops, the backlog keeps its last value.
        let text = m.render(Gauges {
            db_up: false,
            outbox_pending: None,
            webhook_pending: None,
            pool: Some((0, 8)),
            spool,
            sla: None,
        });
        assert!(text.contains("helpdesk_db_up 0\n"), "{text}");
        assert!(text.contains("helpdesk_outbox_pending 7\n"), "{text}");
        assert!(text.contains("helpdesk_webhook_pending 4\n"), "{text}");
    }
}
