//! Outgoing webhooks (see docs/decisions.md, "Outgoing webhooks"):
//! subscriptions managed by the admin ([`WebhookService`]) and the delivery
//! of what the ticket transactions recorded ([`WebhookDispatcher`]): claim
//! with a lease, sign, POST, record; 2xx is sent, 410 Gone gives up at once,
//! anything else (another status, no answer) is retried with exponential
//! backoff until the attempts run out. At least once: a delivery whose
//! outcome could not be recorded is sent again when its lease runs out,
//! under the same event id (`X-Helpdesk-Delivery`).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;

use crate::crypto::{SecretBox, random_token, webhook_signature};
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{Clock, WebhookRepository, WebhookSender};

/// The headers of every delivery (besides `Content-Type` and `User-Agent`).
pub const EVENT_HEADER: &str = "X-Helpdesk-Event";
pub const DELIVERY_HEADER: &str = "X-Helpdesk-Delivery";
pub const TIMESTAMP_HEADER: &str = "X-Helpdesk-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Helpdesk-Signature";

/// Longest URL a subscription may have.
const MAX_URL: usize = 2048;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Attempts before a delivery is given up (`fallida`).
    pub max_attempts: i32,
    /// The first retry's delay; doubles with each failed attempt, up to
    /// `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimer holds a delivery: longer than an attempt may take
    /// (the sender's timeout), so no two workers send it at once.
    pub lease: Duration,
    /// How long finished deliveries (sent or given up) are kept; `None`:
    /// for ever.
    pub keep: Option<Duration>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_backoff: Duration::seconds(10),
            max_backoff: Duration::hours(1),
            lease: Duration::seconds(70),
            keep: Some(Duration::days(30)),
        }
    }
}

/// The delay before the next attempt, once `attempts` attempts failed:
/// `base_backoff * 2^(attempts - 1)`, at most `max_backoff`.
pub fn backoff(settings: &WebhookSettings, attempts: i32) -> Duration {
    let doublings = (attempts - 1).clamp(0, 30) as u32;
    let factor = 1i32.checked_shl(doublings).unwrap_or(i32::MAX);
    settings.base_backoff.checked_mul(factor).unwrap_or(settings.max_backoff).min(settings.max_backoff)
}

/// What an attempt's answer means, `attempts` counting it: 2xx sent; 410
/// Gone given up at once (the receiver asks us to stop); any other status,
/// or no answer, retried after [`backoff`] until `max_attempts`.
pub fn outcome_of(
    answer: Result<u16, String>,
    attempts: i32,
    now: Timestamp,
    settings: &WebhookSettings,
) -> DeliveryOutcome {
    let error = match answer {
        Ok(status) if (200..300).contains(&status) => return DeliveryOutcome::Sent,
        Ok(410) => return DeliveryOutcome::Failed { error: "HTTP 410 Gone: the receiver asked to stop".into() },
        Ok(status) => format!("HTTP {status}"),
        Err(e) => e,
    };
    if attempts >= settings.max_attempts {
        DeliveryOutcome::Failed { error: format!("gave up after {attempts} attempts: {error}") }
    } else {
        DeliveryOutcome::Retry { error, next_attempt_at: now + backoff(settings, attempts) }
    }
}

/// The signed POST of a delivery at `timestamp` (Unix seconds).
pub fn signed_post(delivery: &WebhookDelivery, secret: &str, timestamp: i64) -> WebhookPost {
    WebhookPost {
        url: delivery.url.clone(),
        headers: vec![
            ("Content-Type", "application/json".into()),
            ("User-Agent", "helpdesk-webhooks/1".into()),
            (EVENT_HEADER, delivery.kind.as_str().into()),
            (DELIVERY_HEADER, delivery.event_id.clone()),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, webhook_signature(secret, timestamp, &delivery.body)),
        ],
        body: delivery.body.clone(),
    }
}

/// How a round of deliveries went.
#[derive(Debug, Default)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Attempts whose outcome could not be recorded (they are tried again
    /// when their lease runs out), and the last such error.
    pub unrecorded: usize,
    pub error: Option<RepoError>,
}

impl DeliveryReport {
    pub fn attempts(&self) -> usize {
        self.sent + self.retried + self.failed + self.unrecorded
    }
}

/// Delivers what the ticket transactions recorded.
pub struct WebhookDispatcher<R: WebhookRepository> {
    repo: Arc<R>,
    sender: Arc<dyn WebhookSender>,
    secret_box: SecretBox,
    clock: Arc<dyn Clock>,
    settings: WebhookSettings,
}

/// Finished deliveries deleted per transaction.
pub const WEBHOOK_PURGE_BATCH: i64 = 500;

impl<R: WebhookRepository> WebhookDispatcher<R> {
    pub fn new(
        repo: Arc<R>,
        sender: Arc<dyn WebhookSender>,
        secret_box: SecretBox,
        clock: Arc<dyn Clock>,
        settings: WebhookSettings,
    ) -> Self {
        Self { repo, sender, secret_box, clock, settings }
    }

    /// Claims up to `limit` due deliveries and makes one attempt at each,
    /// all at once (so a round lasts about one sender timeout, well within
    /// the lease).
    pub async fn run_due(&self, limit: i64) -> Result<DeliveryReport, RepoError> {
        let now = self.clock.now();
        let claimed = self.repo.claim_due_deliveries(now, limit, now + self.settings.lease).await?;
        let attempts = futures_util::future::join_all(claimed.into_iter().map(|d| self.deliver(d))).await;
        let mut report = DeliveryReport::default();
        for attempt in attempts {
            match attempt {
                Ok(DeliveryOutcome::Sent) => report.sent += 1,
                Ok(DeliveryOutcome::Retry { .. }) => report.retried += 1,
                Ok(DeliveryOutcome::Failed { .. }) => report.failed += 1,
                Err(e) => {
                    report.unrecorded += 1;
                    report.error = Some(e);
                }
            }
        }
        Ok(report)
    }

    /// Deletes the deliveries finished longer ago than `settings.keep` (by
    /// when they were created: a delivery is finished within hours of its
    /// event), and the events left without any, in rounds of
    /// [`WEBHOOK_PURGE_BATCH`] so that no transaction grows large. Returns how many
    /// deliveries went.
    pub async fn purge_finished(&self) -> Result<u64, RepoError> {
        let Some(keep) = self.settings.keep else { return Ok(0) };
        let before = self.clock.now() - keep;
        super::purge_in_rounds(WEBHOOK_PURGE_BATCH, |limit| self.repo.purge_finished_deliveries(before, limit)).await
    }

    /// One attempt at a claimed delivery, recorded.
    async fn deliver(&self, delivery: WebhookDelivery) -> Result<DeliveryOutcome, RepoError> {
        let attempts = delivery.attempts + 1;
        let outcome = match self.secret_box.open(&delivery.sealed_secret) {
            Ok(secret) => {
                let timestamp = self.clock.now().and_utc().timestamp();
                let answer = self.sender.post(signed_post(&delivery, &secret, timestamp)).await;
                outcome_of(answer, attempts, self.clock.now(), &self.settings)
            }
            // Another keys.secret_box: no attempt can sign it.
            Err(_) => DeliveryOutcome::Failed { error: "the subscription's secret cannot be opened".into() },
        };
        self.repo.record_delivery(delivery.id, self.clock.now(), outcome.clone()).await?;
        Ok(outcome)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid URL: {0}")]
    BadUrl(String),
    #[error("no event to subscribe to")]
    NoEvents,
    #[error("no webhook {0}")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// An absolute `http://` or `https://` URL with a host, no blanks or
/// control characters, at most 2048 characters.
pub fn check_webhook_url(url: &str) -> Result<(), WebhookError> {
    let bad = |why: &str| Err(WebhookError::BadUrl(format!("{url:?}: {why}")));
    if url.len() > MAX_URL {
        return bad("longer than 2048 characters");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("holds blanks or control characters");
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return bad("only http:// and https:// URLs are allowed");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return bad("no host");
    }
    Ok(())
}

/// A new subscription's secret: `whsec_` and 32 random letters and digits.
fn new_secret() -> String {
    format!("whsec_{}", random_token(32))
}

/// Subscriptions, for the admin commands.
pub struct WebhookService<R: WebhookRepository> {
    repo: Arc<R>,
    secret_box: SecretBox,
    clock: Arc<dyn Clock>,
}

impl<R: WebhookRepository> WebhookService<R> {
    pub fn new(repo: Arc<R>, secret_box: SecretBox, clock: Arc<dyn Clock>) -> Self {
        Self { repo, secret_box, clock }
    }

    /// Subscribes `url` to `events`; returns the subscription and its
    /// secret (stored sealed: this is the only time it is seen).
    pub async fn add(&self, url: &str, events: BTreeSet<WebhookEventKind>) -> Result<(Webhook, String), WebhookError> {
        let url = url.trim();
        check_webhook_url(url)?;
        if events.is_empty() {
            return Err(WebhookError::NoEvents);
        }
        let secret = new_secret();
        let new = NewWebhook {
            url: url.to_string(),
            events,
            sealed_secret: self.secret_box.seal(&secret),
            status: Status::Active,
            now: self.clock.now(),
        };
        Ok((self.repo.create_webhook(new).await?, secret))
    }

    pub async fn list(&self) -> Result<Vec<Webhook>, WebhookError> {
        Ok(self.repo.list_webhooks().await?)
    }

    /// Ends the subscription: its pending deliveries are dropped.
    pub async fn remove(&self, id: i64) -> Result<(), WebhookError> {
        self.repo.remove_webhook(id).await.map_err(|e| not_found(e, id))
    }

    /// A new secret (returned, stored sealed); the old one signs nothing
    /// from now on.
    pub async fn rotate_secret(&self, id: i64) -> Result<String, WebhookError> {
        let secret = new_secret();
        let sealed = self.secret_box.seal(&secret);
        self.repo.set_webhook_secret(id, sealed, self.clock.now()).await.map_err(|e| not_found(e, id))?;
        Ok(secret)
    }
}

fn not_found(e: RepoError, id: i64) -> WebhookError {
    match e {
        RepoError::NotFound => WebhookError::NotFound(id),
        e => WebhookError::Store(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::crypto::verify_webhook_signature;
    use crate::ports::{BoxFuture, TicketRepository, WebhookRepository};
    use crate::testing::contract::new_incoming;
    use crate::testing::{InMemoryStore, ManualClock};

    fn settings() -> WebhookSettings {
        WebhookSettings {
            max_attempts: 4,
            base_backoff: Duration::seconds(10),
            max_backoff: Duration::seconds(45),
            lease: Duration::seconds(60),
            keep: Some(Duration::days(30)),
        }
    }

    #[tokio::test]
    async fn finished_deliveries_are_purged_in_rounds_past_the_kept_days() {
        let clock = Arc::new(ManualClock::now_utc());
        let before = clock.now() - Duration::days(30);
        let mut repo = crate::ports::MockWebhookRepository::new();
        let mut rounds = vec![3, WEBHOOK_PURGE_BATCH as u64, WEBHOOK_PURGE_BATCH as u64];
        repo.expect_purge_finished_deliveries()
            .withf(move |b, limit| *b == before && *limit == WEBHOOK_PURGE_BATCH)
            .times(3)
            .returning(move |_, _| {
                let n = rounds.pop().expect("three rounds");
                Box::pin(std::future::ready(Ok(n)))
            });
        let repo = Arc::new(repo);
        let sender = Arc::new(Receiver::default());
        let keys = SecretBox::new([5; 32]);
        let dispatcher = WebhookDispatcher::new(repo, sender.clone(), keys.clone(), clock.clone(), settings());
        assert_eq!(
            dispatcher.purge_finished().await.unwrap(),
            2 * WEBHOOK_PURGE_BATCH as u64 + 3,
            "until a round is short"
        );
        // Kept for ever: the store is not asked.
        let forever = WebhookSettings { keep: None, ..settings() };
        let untouched = Arc::new(crate::ports::MockWebhookRepository::new());
        let dispatcher = WebhookDispatcher::new(untouched, sender, keys, clock, forever);
        assert_eq!(dispatcher.purge_finished().await.unwrap(), 0);
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_ceiling() {
        let s = settings();
        let delays: Vec<i64> = (1..=6).map(|n| backoff(&s, n).num_seconds()).collect();
        assert_eq!(delays, [10, 20, 40, 45, 45, 45]);
        assert_eq!(backoff(&s, 0), Duration::seconds(10));
        let huge = WebhookSettings { max_backoff: Duration::days(10_000), ..s };
        assert_eq!(backoff(&huge, 1_000), backoff(&huge, 31), "no overflow");
    }

    #[test]
    fn answers_decide_sent_retry_or_give_up() {
        let s = settings();
        let now = crate::ports::SystemClock.now();
        for ok in [200, 201, 204, 299] {
            assert_eq!(outcome_of(Ok(ok), 1, now, &s), DeliveryOutcome::Sent, "{ok}");
        }
        assert_eq!(
            outcome_of(Ok(500), 2, now, &s),
            DeliveryOutcome::Retry { error: "HTTP 500".into(), next_attempt_at: now + Duration::seconds(20) }
        );
        for other in [301, 400, 404, 429, 503] {
            assert!(matches!(outcome_of(Ok(other), 1, now, &s), DeliveryOutcome::Retry { .. }), "{other}");
        }
        let refused = outcome_of(Err("connection refused".into()), 1, now, &s);
        assert_eq!(
            refused,
            DeliveryOutcome::Retry { error: "connection refused".into(), next_attempt_at: now + Duration::seconds(10) }
        );
        assert!(matches!(outcome_of(Ok(410), 1, now, &s), DeliveryOutcome::Failed { .. }), "410 gives up at once");
        let last = outcome_of(Ok(500), 4, now, &s);
        assert_eq!(last, DeliveryOutcome::Failed { error: "gave up after 4 attempts: HTTP 500".into() });
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        for ok in ["http://127.0.0.1:9000/hook", "https://integra.example.com/x?y=1", "HTTPS://a.example"] {
            assert!(check_webhook_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://a.example/x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "a.example/hook",
            "http://",
            "http:///x",
            "http://:80/x",
            "http://a.example/ x",
            "http://a.example/\nx",
        ] {
            assert!(matches!(check_webhook_url(bad), Err(WebhookError::BadUrl(_))), "{bad}");
        }
        assert!(check_webhook_url(&format!("https://a.example/{}", "x".repeat(2048))).is_err());
    }

    /// Answers from a script; keeps what it was sent.
    #[derive(Default)]
    struct Receiver {
        answers: Mutex<Vec<Result<u16, String>>>,
        got: Mutex<Vec<WebhookPost>>,
    }

    impl WebhookSender for Receiver {
        fn post(&self, post: WebhookPost) -> BoxFuture<'_, Result<u16, String>> {
            self.got.lock().unwrap().push(post);
            let answer = self.answers.lock().unwrap().pop().unwrap_or(Ok(200));
            Box::pin(std::future::ready(answer))
        }
    }

    fn header<'a>(post: &'a WebhookPost, name: &str) -> &'a str {
        post.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()).unwrap()
    }

    #[tokio::test]
    async fn deliveries_are_signed_retried_with_backoff_and_given_up() {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::now_utc());
        let keys = SecretBox::new([5; 32]);
        let admin = WebhookService::new(store.clone(), keys.clone(), clock.clone());
        let all: BTreeSet<_> = WebhookEventKind::ALL.into_iter().collect();
        assert!(matches!(admin.add("ftp://x.example", all.clone()).await, Err(WebhookError::BadUrl(_))));
        assert!(matches!(admin.add("http://x.example", BTreeSet::new()).await, Err(WebhookError::NoEvents)));
        let (hook, secret) = admin.add(" http://receptor.test/hook ", all).await.unwrap();
        assert_eq!(hook.url, "http://receptor.test/hook");
        assert!(secret.starts_with("whsec_") && secret.len() == 38, "{secret}");
        assert_eq!(keys.open(&hook.sealed_secret).unwrap(), secret, "stored sealed");

        let department = crate::ports::DepartmentRepository::create_department(
            &*store,
            NewDepartment { name: "Soporte".into(), synology_channel: None },
        )
        .await
        .unwrap();
        let mut incoming = new_incoming(department.id, None, "m1", "cliente@cliente.test");
        let ticket = EventTicket {
            subject: "No imprime".into(),
            status: TicketStatus::Open,
            priority: Priority::Normal,
            department_id: department.id,
            department: department.name.clone(),
            assignee: None,
            requester: "cliente@cliente.test".into(),
        };
        let event = NewWebhookEvent::new(WebhookEventKind::TicketCreated, ticket, clock.now());
        incoming.webhook_events = vec![event.clone()];
        incoming.now = clock.now();
        store.store_incoming(incoming).await.unwrap();

        let receiver = Arc::new(Receiver::default());
        // Popped from the end: no answer, then 503, then 200.
        *receiver.answers.lock().unwrap() = vec![Ok(200), Ok(503), Err("connection refused".into())];
        let s = settings();
        let dispatcher = WebhookDispatcher::new(store.clone(), receiver.clone(), keys, clock.clone(), s.clone());
        let report = dispatcher.run_due(10).await.unwrap();
        assert_eq!((report.retried, report.attempts()), (1, 1));
        assert_eq!(dispatcher.run_due(10).await.unwrap().attempts(), 0, "not due before its backoff");
        clock.advance(backoff(&s, 1));
        assert_eq!(dispatcher.run_due(10).await.unwrap().retried, 1);
        clock.advance(backoff(&s, 2) - Duration::seconds(1));
        assert_eq!(dispatcher.run_due(10).await.unwrap().attempts(), 0, "the delay doubled");
        clock.advance(Duration::seconds(1));
        assert_eq!(dispatcher.run_due(10).await.unwrap().sent, 1);
        clock.advance(Duration::hours(2));
        assert_eq!(dispatcher.run_due(10).await.unwrap().attempts(), 0, "sent once and for all");

        let got = receiver.got.lock().unwrap().clone();
        assert_eq!(got.len(), 3);
        for post in &got {
            assert_eq!(post.url, "http://receptor.test/hook");
            assert_eq!(header(post, DELIVERY_HEADER), event.id, "the same event id on every attempt");
            assert_eq!(header(post, EVENT_HEADER), "ticket.creado");
            assert_eq!(header(post, "Content-Type"), "application/json");
            let ts: i64 = header(post, TIMESTAMP_HEADER).parse().unwrap();
            let sig = header(post, SIGNATURE_HEADER);
            assert!(verify_webhook_signature(&secret, ts, &post.body, sig, ts, 0), "{sig}");
        }
        assert_eq!(got[0].body, got[2].body, "the same bytes on every attempt");
        let delivery = &store.deliveries_of_event(&event.id).await.unwrap()[0];
        assert_eq!((delivery.status, delivery.attempts), (DeliveryStatus::Sent, 3));
        assert_eq!(store.pending_deliveries().await.unwrap(), 0);

        // A rotated secret signs from the next attempt; a receiver that
        // keeps failing is given up after max_attempts.
        let new_secret = admin.rotate_secret(hook.id).await.unwrap();
        assert_ne!(new_secret, secret);
        assert!(matches!(admin.rotate_secret(hook.id + 1000).await, Err(WebhookError::NotFound(_))));
        let mut again = new_incoming(department.id, None, "m2", "cliente@cliente.test");
        let second = NewWebhookEvent { id: new_event_id(), ..event.clone() };
        again.webhook_events = vec![second.clone()];
        store.store_incoming(again).await.unwrap();
        *receiver.answers.lock().unwrap() = vec![Ok(500); 10];
        for attempt in 1..=s.max_attempts {
            let report = dispatcher.run_due(10).await.unwrap();
            let expected = if attempt < s.max_attempts { (1, 0) } else { (0, 1) };
            assert_eq!((report.retried, report.failed), expected, "attempt {attempt}");
            clock.advance(s.max_backoff);
        }
        let post = receiver.got.lock().unwrap().last().cloned().unwrap();
        let ts: i64 = header(&post, TIMESTAMP_HEADER).parse().unwrap();
        assert!(verify_webhook_signature(&new_secret, ts, &post.body, header(&post, SIGNATURE_HEADER), ts, 0));
        let given_up = &store.deliveries_of_event(&second.id).await.unwrap()[0];
        assert_eq!((given_up.status, given_up.attempts), (DeliveryStatus::Failed, s.max_attempts));
        assert_eq!(given_up.last_error.as_deref(), Some("gave up after 4 attempts: HTTP 500"));
        assert_eq!(dispatcher.run_due(10).await.unwrap().attempts(), 0);

        admin.remove(hook.id).await.unwrap();
        assert!(admin.list().await.unwrap().is_empty());
        assert!(store.deliveries_of_event(&event.id).await.unwrap().is_empty());
        assert!(matches!(admin.remove(hook.id).await, Err(WebhookError::NotFound(_))));
    }
}
