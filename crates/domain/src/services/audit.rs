//! The bitácora: opening and closing audit records, and redaction of secrets
//! before anything reaches the store or the logs.

use std::sync::Arc;

use serde_json::Value;

use crate::error::RepoError;
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use futures_util::lock::Mutex as AsyncMutex;
use futures_util::stream::FuturesUnordered;

use crate::model::{AuditEntry, AuditOutcome, AuditRecord, NewAuditEntry, SpooledAudit, Timestamp};
use crate::ports::{AuditRepository, AuditSpool, SpoolCursor, SpoolError, SpoolStats};

/// Names whose values never reach the bitácora. A field is secret when any
/// segment of its normalised name (see [`is_secret_key`]) is one of these,
/// or contains `password`, `passwd`, `secret` or `contrasena`, or ends in
/// `token` (`access_token`, `id_token`), or ends in `_pin`. Mailbox
/// passwords arrive as `password`.
pub const REDACTED_KEYS: &[&str] =
    &["password", "password_confirmation", "token", "pin", "x_user_secret", "secret", "authorization", "clave"];

/// Names that look secret by the rules above but hold none (`update_token`
/// is the flag `S`/`N` of `SSO/ADI/setToken`).
const NOT_SECRET: &[&str] = &["update_token"];

pub const REDACTED: &str = "[REDACTED]";

/// Longest body kept in a record, in characters; the rest is cut with a note.
pub const MAX_AUDIT_BODY_CHARS: usize = 16_384;

/// Longest body kept, in bytes, for a request refused before any handler
/// could trust it (400, 401, 403, 404, 405, 413, 415): anyone can send those.
pub const MAX_REFUSED_BODY_BYTES: usize = 512;

/// The segments of a field name, normalised: trimmed, lower case, `-` and
/// spaces as `_`, and PHP's brackets split off (`a[password]` is `a` and
/// `password`; `password[]` and `password[0]` are `password`; `a.password`
/// is `a` and `password`).
fn key_segments(key: &str) -> impl Iterator<Item = String> + '_ {
    key.split(['[', ']', '.'])
        .map(|seg| {
            seg.trim()
                .chars()
                .flat_map(char::to_lowercase)
                .map(|c| if c == '-' || c.is_whitespace() { '_' } else { c })
                .collect::<String>()
        })
        .filter(|seg| !seg.is_empty() && !seg.bytes().all(|b| b.is_ascii_digit()))
}

fn is_secret_segment(seg: &str) -> bool {
    if NOT_SECRET.contains(&seg) {
        return false;
    }
    REDACTED_KEYS.contains(&seg)
        || ["password", "passwd", "secret", "contrasena", "contraseña"].iter().any(|w| seg.contains(w))
        || seg.ends_with("token")
        || seg.ends_with("_pin")
}

/// Whether a field's value is a secret, by its normalised name: any case,
/// `-` or `_`, PHP-style nesting (`a[password]`, `password[]`).
pub fn is_secret_key(key: &str) -> bool {
    key_segments(key).any(|seg| is_secret_segment(&seg))
}

/// Replaces the value of every secret key, at any depth (objects inside
/// arrays included). A string that is itself a JSON object or array (JSON
/// sent inside a form field or a JSON string) is redacted inside too.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            let t = s.trim_start();
            if (t.starts_with('{') || t.starts_with('['))
                && let Ok(mut inner @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str::<Value>(s)
            {
                let before = inner.clone();
                redact(&mut inner);
                if inner != before {
                    *s = inner.to_string();
                }
            }
        }
        _ => {}
    }
}

/// The text stored for a request body: redacted JSON, or, for a body that
/// did not parse as its declared content type (`body` is `None`: malformed
/// JSON, JSON posted as a form, binary) or is not a JSON object or array,
/// only its size and content type, because a secret in it could not be found.
pub fn redacted_body_text(body: Option<Value>, raw_len: usize, content_type: &str) -> String {
    let text = match body {
        Some(mut v @ (Value::Object(_) | Value::Array(_))) => {
            redact(&mut v);
            v.to_string()
        }
        Some(_) | None if raw_len == 0 => String::new(),
        _ => {
            let ct: String = content_type.chars().filter(|c| c.is_ascii_graphic()).take(100).collect();
            let ct = if ct.is_empty() { "sin Content-Type".to_string() } else { ct };
            format!("<cuerpo de {raw_len} bytes ({ct}) omitido: no se pudo leer como su tipo de contenido>")
        }
    };
    truncate_chars(&text, MAX_AUDIT_BODY_CHARS)
}

/// Cuts a stored body to at most `max` bytes (never inside a character),
/// ending in `…` when cut.
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &s[..end])
}

/// Cuts a string to at most `max` characters (never inside a character).
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Records deleted per transaction by [`AuditService::purge_expired`].
pub const AUDIT_PURGE_BATCH: i64 = 1000;

/// Ids reserved per trip to the store.
pub const AUDIT_ID_BLOCK: i64 = 1000;
/// Most records written in one transaction.
const MAX_BATCH: usize = 512;

type Ack = oneshot::Sender<Result<(), String>>;

struct Queued {
    record: AuditRecord,
    /// `None`: nobody waits (the record of a request whose client left).
    ack: Option<Ack>,
}

/// The free ids of this process's current block.
#[derive(Default)]
struct IdBlock {
    next: i64,
    end: i64,
}

/// Writes the bitácora: one write per request, grouped. Each request gets
/// its id up front from a block reserved in the store (no write), and its
/// finished record is queued; one writer stores everything queued in one
/// transaction, and each request answers once its record is durable. While
/// a transaction commits, the next requests' records gather for the next one
/// (group commit), so the bitácora costs a fraction of a commit per request;
/// with [`AuditWriter::concurrent_writes`] several groups commit at once.
///
/// With a spool ([`AuditService::with_spool`]), records the store cannot
/// take (unreachable, or not answering in time) are appended to it instead,
/// durably, and the request answers as if they were stored; while the spool
/// holds anything, new records queue behind them there, so they reach the
/// store in order. [`AuditService::drain_spool`] writes them to the store,
/// each exactly once: a record's id is its primary key, so one written
/// before a crash is recognised as such.
/// Refused calls per address and minute that keep their own records, unless
/// `audit.refused_burst` says otherwise.
pub const DEFAULT_REFUSED_BURST: u64 = 60;

pub struct AuditService<R: AuditRepository> {
    repo: Arc<R>,
    ids: Arc<AsyncMutex<IdBlock>>,
    queue: mpsc::UnboundedSender<Queued>,
    /// Where records nobody waits for go: the first writer's queue (see
    /// [`AuditService::with_own_writer`]).
    detached: mpsc::UnboundedSender<Queued>,
    spool: Option<Arc<dyn AuditSpool>>,
    /// One drain at a time.
    draining: Arc<AsyncMutex<()>>,
    /// Strangers' refused calls, past a burst, counted into one record.
    refused: Arc<super::RefusedCalls>,
}

impl<R: AuditRepository> Clone for AuditService<R> {
    fn clone(&self) -> Self {
        Self {
            repo: self.repo.clone(),
            ids: self.ids.clone(),
            queue: self.queue.clone(),
            detached: self.detached.clone(),
            spool: self.spool.clone(),
            draining: self.draining.clone(),
            refused: self.refused.clone(),
        }
    }
}

/// The writer behind an [`AuditService`]; spawn [`AuditWriter::run`].
pub struct AuditWriter<R: AuditRepository> {
    repo: Arc<R>,
    queue: mpsc::UnboundedReceiver<Queued>,
    /// Most groups being written at once.
    in_flight: usize,
    spool: Option<Arc<dyn AuditSpool>>,
    /// A worker's own writer ([`AuditService::with_own_writer`]): where the
    /// records it has not written go when it is dropped (its runtime
    /// stopping), so that the first writer stores them.
    handover: Option<mpsc::UnboundedSender<Queued>>,
}

impl<R: AuditRepository> Drop for AuditWriter<R> {
    fn drop(&mut self) {
        if let Some(handover) = &self.handover {
            // Refuse new records (their senders hear it), pass on the queued.
            self.queue.close();
            while let Ok(q) = self.queue.try_recv() {
                let _ = handover.unbounded_send(q);
            }
        }
    }
}

/// What a drain of the spool did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Records now in the store (including ones found already there).
    pub written: usize,
    /// Records the store refused for good, moved aside.
    pub rejected: usize,
}

impl<R: AuditRepository> AuditService<R> {
    /// The service and the writer it needs running (the caller spawns it;
    /// it ends when every clone of the service is dropped).
    pub fn new(repo: Arc<R>) -> (Self, AuditWriter<R>) {
        Self::build(repo, None)
    }

    /// Like [`AuditService::new`], keeping what the store cannot take in `spool`.
    pub fn with_spool(repo: Arc<R>, spool: Arc<dyn AuditSpool>) -> (Self, AuditWriter<R>) {
        Self::build(repo, Some(spool))
    }

    fn build(repo: Arc<R>, spool: Option<Arc<dyn AuditSpool>>) -> (Self, AuditWriter<R>) {
        let (tx, rx) = mpsc::unbounded();
        let service = Self {
            repo: repo.clone(),
            ids: Arc::default(),
            queue: tx.clone(),
            detached: tx,
            spool: spool.clone(),
            draining: Arc::default(),
            refused: Arc::new(super::RefusedCalls::new(DEFAULT_REFUSED_BURST)),
        };
        (service, AuditWriter { repo, queue: rx, in_flight: 1, spool, handover: None })
    }

    /// The same bitácora (its ids, spool and counts) with a writer of its
    /// own, `in_flight` groups at a time (see [`AuditWriter::concurrent_writes`]):
    /// spawned on the runtime that uses the returned service (an HTTP
    /// worker's), a request's record is handed over, written and
    /// acknowledged without waking another thread. Records nobody waits for
    /// ([`AuditService::record_detached`]) still go to the first writer,
    /// which outlives the HTTP workers. The writer ends when every clone of
    /// the returned service is dropped.
    pub fn with_own_writer(&self, in_flight: usize) -> (Self, AuditWriter<R>) {
        let (tx, rx) = mpsc::unbounded();
        let service = Self { queue: tx, ..self.clone() };
        let writer = AuditWriter {
            repo: self.repo.clone(),
            queue: rx,
            in_flight: 1,
            spool: self.spool.clone(),
            handover: Some(self.detached.clone()),
        };
        (service, writer.concurrent_writes(in_flight))
    }

    /// Calls refused for their credentials, per client address and minute,
    /// that keep records of their own; the rest are counted into one
    /// aggregated record (see [`super::RefusedCalls`]).
    pub fn with_refused_burst(mut self, burst: u64) -> Self {
        self.refused = Arc::new(super::RefusedCalls::new(burst));
        self
    }

    /// A call refused for its credentials (no or wrong consumer headers,
    /// the webhook's wrong token) from `address`: whether it keeps its own
    /// record or is counted into the aggregate, whose id it then answers
    /// with.
    pub async fn note_refused(
        &self,
        address: &str,
        endpoint: &str,
        at: Timestamp,
    ) -> Result<super::RefusedFate, RepoError> {
        super::refused::note_refused(&self.refused, address, endpoint, at, || self.reserve_id()).await
    }

    /// Writes the aggregated records of the minutes that ended before
    /// `now` (of every minute when `all`: the server is stopping); returns
    /// how many.
    pub async fn flush_refused(&self, now: Timestamp, all: bool) -> Result<usize, RepoError> {
        let records = self.refused.take_finished(now, all);
        let n = records.len();
        for record in records {
            self.record(record).await?;
        }
        Ok(n)
    }

    /// An id for a request about to be handled (the store is asked for a
    /// new block every [`AUDIT_ID_BLOCK`] ids).
    pub async fn reserve_id(&self) -> Result<i64, RepoError> {
        let mut block = self.ids.lock().await;
        if block.next >= block.end {
            let first = self.repo.reserve_audit_ids(AUDIT_ID_BLOCK).await?;
            *block = IdBlock { next: first, end: first + AUDIT_ID_BLOCK };
        }
        block.next += 1;
        Ok(block.next - 1)
    }

    /// Stores a finished record; returns once it is durable. The body must
    /// already be redacted (see [`redacted_body_text`]).
    pub async fn record(&self, record: AuditRecord) -> Result<(), RepoError> {
        let (ack, done) = oneshot::channel();
        self.queue
            .unbounded_send(Queued { record, ack: Some(ack) })
            .map_err(|_| RepoError::Unavailable("the bitácora writer has stopped".into()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RepoError::Unavailable(e)),
            Err(_) => Err(RepoError::Unavailable("the bitácora writer has stopped".into())),
        }
    }

    /// Stores the record of a request that got no id (none could be
    /// reserved: the store is down). It goes to the spool, which numbers it
    /// when it drains; without a spool it cannot be kept.
    pub async fn record_unnumbered(&self, entry: NewAuditEntry, outcome: AuditOutcome) -> Result<(), RepoError> {
        let spool = self.spool.as_ref().ok_or_else(|| RepoError::Unavailable("no bitácora id and no spool".into()))?;
        spool.append(&[SpooledAudit { id: None, entry, outcome }]).await.map_err(spool_error)
    }

    /// Queues a record without waiting for it (a request whose client
    /// left before the answer: nobody is there to wait).
    pub fn record_detached(&self, record: AuditRecord) {
        // Fails only when the writer is gone, which the next `record`
        // reports as unavailable.
        let _ = self.detached.unbounded_send(Queued { record, ack: None });
    }

    /// Deletes the records dated more than `keep` before `now`, in rounds of
    /// [`AUDIT_PURGE_BATCH`] so that no transaction grows large; returns how
    /// many went.
    pub async fn purge_expired(&self, now: Timestamp, keep: chrono::Duration) -> Result<u64, RepoError> {
        let before = now - keep;
        super::purge_in_rounds(AUDIT_PURGE_BATCH, |limit| self.repo.purge_audit(before, limit)).await
    }

    pub async fn find(&self, id: i64) -> Result<Option<AuditEntry>, RepoError> {
        self.repo.find_audit(id).await
    }

    /// What the spool holds (`None`: no spool).
    pub fn spool_stats(&self) -> Option<SpoolStats> {
        self.spool.as_ref().map(|s| s.stats())
    }

    /// Writes the spooled records to the store, oldest first, until the
    /// spool is empty or the store fails; the unwritten rest stays for the
    /// next drain. Records without an id are numbered first (the numbers
    /// are kept in the spool before any is written, so a crash cannot give
    /// one record two ids). A record already stored (written before a crash
    /// that kept it in the spool) counts as written; one the store refuses
    /// for another reason is moved aside with the reason.
    pub async fn drain_spool(&self) -> Result<DrainReport, RepoError> {
        let mut report = DrainReport::default();
        let Some(spool) = &self.spool else { return Ok(report) };
        let _one = self.draining.lock().await;
        loop {
            let read = spool.peek(MAX_BATCH).await.map_err(spool_error)?;
            if read.records.is_empty() {
                if read.cursor != SpoolCursor::default() {
                    spool.settle(read.cursor, Vec::new()).await.map_err(spool_error)?;
                }
                return Ok(report);
            }
            let unnumbered = read.records.iter().filter(|r| r.id.is_none()).count();
            if unnumbered > 0 {
                let first = self.repo.reserve_audit_ids(unnumbered as i64).await?;
                let mut next = first;
                let numbered = read
                    .records
                    .into_iter()
                    .map(|mut r| {
                        if r.id.is_none() {
                            r.id = Some(next);
                            next += 1;
                        }
                        r
                    })
                    .collect();
                spool.settle(read.cursor, numbered).await.map_err(spool_error)?;
                continue;
            }
            let records: Vec<AuditRecord> = read
                .records
                .iter()
                .filter_map(|r| r.id.map(|id| AuditRecord { id, entry: r.entry.clone(), outcome: r.outcome.clone() }))
                .collect();
            match self.repo.write_audit(&records).await {
                Ok(()) => report.written += records.len(),
                Err(e) if e.is_unavailable() => return Err(e),
                // One at a time: find the ones already there, or refused.
                Err(_) => {
                    for (record, spooled) in records.iter().zip(&read.records) {
                        match self.repo.write_audit(std::slice::from_ref(record)).await {
                            Ok(()) | Err(RepoError::Duplicate(_)) => report.written += 1,
                            Err(e) if e.is_unavailable() => return Err(e),
                            Err(e) => {
                                spool.reject(spooled, &e.to_string()).await.map_err(spool_error)?;
                                report.rejected += 1;
                            }
                        }
                    }
                }
            }
            spool.settle(read.cursor, Vec::new()).await.map_err(spool_error)?;
        }
    }
}

fn spool_error(e: SpoolError) -> RepoError {
    RepoError::Unavailable(e.to_string())
}

impl<R: AuditRepository> AuditWriter<R> {
    /// Lets up to `n` groups be written at once (default 1). With one, the
    /// records that arrive while a group commits wait for it to finish
    /// before theirs starts; with more, they start at once on another
    /// connection and the database merges the flushes. A store with a
    /// single writer (SQLite) gains nothing from more than one.
    pub fn concurrent_writes(mut self, n: usize) -> Self {
        self.in_flight = n.max(1);
        self
    }

    /// Writes queued records until every sender is gone.
    pub async fn run(mut self) {
        let mut writing = FuturesUnordered::new();
        loop {
            let first = if writing.is_empty() {
                match self.queue.next().await {
                    Some(q) => q,
                    None => return,
                }
            } else if writing.len() >= self.in_flight {
                writing.next().await;
                continue;
            } else {
                match select(self.queue.next(), writing.next()).await {
                    Either::Left((Some(q), _)) => q,
                    Either::Left((None, _)) => {
                        while writing.next().await.is_some() {}
                        return;
                    }
                    Either::Right(_) => continue,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(q) => batch.push(q),
                    _ => break,
                }
            }
            // A record naming a parent is kept linked only if the parent is
            // stored: let the groups already on their way land first.
            if batch.iter().any(|q| q.record.entry.parent_id.is_some()) {
                while writing.next().await.is_some() {}
            }
            writing.push(write_group(self.repo.clone(), self.spool.clone(), batch, self.handover.clone()));
        }
    }
}

/// A group being written; dropped before it is (its writer's runtime
/// stopping), it hands its records, with whoever waits for them, over.
struct Unwritten {
    records: Vec<AuditRecord>,
    acks: Vec<Option<Ack>>,
    handover: Option<mpsc::UnboundedSender<Queued>>,
}

impl Drop for Unwritten {
    fn drop(&mut self) {
        if let Some(handover) = self.handover.take() {
            for (record, ack) in self.records.drain(..).zip(self.acks.drain(..)) {
                let _ = handover.unbounded_send(Queued { record, ack });
            }
        }
    }
}

/// Stores one group and tells each waiting request how its record fared.
async fn write_group<R: AuditRepository>(
    repo: Arc<R>,
    spool: Option<Arc<dyn AuditSpool>>,
    batch: Vec<Queued>,
    handover: Option<mpsc::UnboundedSender<Queued>>,
) {
    let (records, acks) = batch.into_iter().map(|q| (q.record, q.ack)).unzip();
    let mut group = Unwritten { records, acks, handover };
    let records = &group.records;
    // While the spool holds records, these queue behind them.
    let behind_spool = spool.as_ref().is_some_and(|s| s.stats().records > 0);
    let first = if behind_spool {
        Err(RepoError::Unavailable("the spool is draining".into()))
    } else {
        repo.write_audit(records).await
    };
    let mut outcomes: Vec<Result<(), RepoError>> = match first {
        Ok(()) => vec![Ok(()); records.len()],
        Err(e) if e.is_unavailable() => vec![Err(e); records.len()],
        // One bad record must not fail its neighbours: write each alone, so
        // only the records that cannot be stored fail.
        Err(_) => {
            let mut outcomes = Vec::with_capacity(records.len());
            for r in records {
                outcomes.push(repo.write_audit(std::slice::from_ref(r)).await);
            }
            outcomes
        }
    };
    // What the store could not take goes to the spool, in order.
    if let Some(spool) = &spool {
        let unstored: Vec<SpooledAudit> = records
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.as_ref().is_err_and(RepoError::is_unavailable))
            .map(|(r, _)| SpooledAudit::from(r.clone()))
            .collect();
        if !unstored.is_empty() {
            let spooled = spool.append(&unstored).await.map_err(spool_error);
            for o in outcomes.iter_mut().filter(|o| o.as_ref().is_err_and(RepoError::is_unavailable)) {
                *o = spooled.clone();
            }
        }
    }
    // Written (or spooled): nothing to hand over.
    group.handover = None;
    for (ack, outcome) in std::mem::take(&mut group.acks).into_iter().zip(outcomes) {
        if let Some(ack) = ack {
            let _ = ack.send(outcome.map_err(|e| e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_case() {
        let mut v = json!({
            "usuario": "ana", "Password": "p1", "pin": "1234",
            "nested": {"token": "t", "list": [{"password_confirmation": "p2"}]},
            "X-User-Secret": "s"
        });
        redact(&mut v);
        let s = v.to_string();
        for secret in ["p1", "1234", "\"t\"", "p2", "\"s\""] {
            assert!(!s.contains(secret), "{secret} leaked in {s}");
        }
        assert!(s.contains("ana"));
        assert_eq!(v["nested"]["list"][0]["password_confirmation"], REDACTED);
    }

    fn record(id: i64) -> AuditRecord {
        use crate::ports::Clock;
        AuditRecord {
            id,
            entry: crate::model::NewAuditEntry {
                at: crate::ports::SystemClock.now(),
                consumer_name: None,
                endpoint: format!("e{id}"),
                method: "POST".into(),
                client_ip: "::1".into(),
                body: String::new(),
                parent_id: None,
            },
            outcome: crate::model::AuditOutcome { consumer_id: None, status: 200, duration_us: 1, user_id: None },
        }
    }

    #[tokio::test]
    async fn ids_come_from_blocks_and_one_bad_record_fails_alone() {
        use crate::ports::AuditRepository;
        use crate::testing::InMemoryStore;
        let store = Arc::new(InMemoryStore::new());
        let (audit, writer) = AuditService::new(store.clone());
        tokio::spawn(writer.run());
        let ids: Vec<i64> = futures_util::future::join_all((0..5).map(|_| audit.reserve_id()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "{ids:?}");
        // A second service (another server) gets a block after the first.
        let (other, _) = AuditService::new(store.clone());
        assert!(other.reserve_id().await.unwrap() >= sorted[0] + AUDIT_ID_BLOCK);
        store.write_audit(&[record(ids[0])]).await.unwrap();
        let (dup, fresh) = tokio::join!(audit.record(record(ids[0])), audit.record(record(ids[1])));
        assert!(dup.is_err(), "an id stored before is refused");
        fresh.unwrap();
        assert!(store.find_audit(ids[1]).await.unwrap().is_some(), "stored before record() returned");
        audit.record_detached(record(ids[2]));
        audit.record(record(ids[3])).await.unwrap();
        assert!(store.find_audit(ids[2]).await.unwrap().is_some(), "queued in order with the others");
    }

    #[tokio::test]
    async fn a_worker_s_own_writer_shares_the_ids_and_leaves_detached_records_to_the_first() {
        use crate::testing::InMemoryStore;
        let store = Arc::new(InMemoryStore::new());
        let (audit, first) = AuditService::new(store.clone());
        let (local, own) = audit.with_own_writer(1);
        // Only the worker's writer runs: its records are written, and a
        // detached one waits for the first writer.
        let own = tokio::spawn(own.run());
        let (a, b) = (audit.reserve_id().await.unwrap(), local.reserve_id().await.unwrap());
        assert_eq!(b, a + 1, "one block of ids for both");
        local.record(record(b)).await.unwrap();
        assert!(store.find_audit(b).await.unwrap().is_some(), "written by the worker's own writer");
        let c = local.reserve_id().await.unwrap();
        local.record_detached(record(c));
        tokio::task::yield_now().await;
        assert!(store.find_audit(c).await.unwrap().is_none(), "not on the worker's writer");
        let first = tokio::spawn(first.run());
        audit.record(record(a)).await.unwrap();
        assert!(store.find_audit(c).await.unwrap().is_some(), "the first writer took it, in order");
        // The worker's writer ends with the last clone of its service.
        drop(local);
        tokio::time::timeout(std::time::Duration::from_secs(5), own).await.unwrap().unwrap();
        drop(audit);
        tokio::time::timeout(std::time::Duration::from_secs(5), first).await.unwrap().unwrap();
    }

    /// A store whose writes wait for a permit, announcing each group.
    struct Gated {
        inner: crate::testing::InMemoryStore,
        started: tokio::sync::mpsc::UnboundedSender<Vec<i64>>,
        gate: tokio::sync::Semaphore,
    }

    impl AuditRepository for Gated {
        async fn reserve_audit_ids(&self, count: i64) -> Result<i64, RepoError> {
            self.inner.reserve_audit_ids(count).await
        }
        async fn write_audit(&self, records: &[AuditRecord]) -> Result<(), RepoError> {
            let _ = self.started.send(records.iter().map(|r| r.id).collect());
            self.gate.acquire().await.expect("open").forget();
            self.inner.write_audit(records).await
        }
        async fn find_audit(&self, id: i64) -> Result<Option<AuditEntry>, RepoError> {
            self.inner.find_audit(id).await
        }
        async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, RepoError> {
            self.inner.recent_audit(limit).await
        }
        async fn purge_audit(&self, before: Timestamp, limit: i64) -> Result<u64, RepoError> {
            self.inner.purge_audit(before, limit).await
        }
    }

    #[tokio::test]
    async fn groups_commit_concurrently_up_to_the_limit_and_parents_wait() {
        let (started, mut groups) = tokio::sync::mpsc::unbounded_channel();
        let store = Arc::new(Gated { inner: Default::default(), started, gate: tokio::sync::Semaphore::new(0) });
        let (audit, writer) = AuditService::new(store.clone());
        tokio::spawn(writer.concurrent_writes(2).run());
        async fn quiet(groups: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<i64>>) -> bool {
            tokio::time::timeout(std::time::Duration::from_millis(50), groups.recv()).await.is_err()
        }
        let spawn = |r: AuditRecord| {
            let audit = audit.clone();
            tokio::spawn(async move { audit.record(r).await })
        };
        let one = spawn(record(1));
        assert_eq!(groups.recv().await.unwrap(), vec![1]);
        let two = spawn(record(2));
        assert_eq!(groups.recv().await.unwrap(), vec![2], "a second group starts while the first commits");
        let three = spawn(record(3));
        assert!(quiet(&mut groups).await, "no third group while two are in flight");
        store.gate.add_permits(1);
        assert_eq!(groups.recv().await.unwrap(), vec![3], "the third starts when one lands");
        store.gate.add_permits(2);
        for r in [one, two, three] {
            r.await.unwrap().unwrap();
        }
        // A record naming a parent waits until the groups in flight land.
        let four = spawn(record(4));
        assert_eq!(groups.recv().await.unwrap(), vec![4]);
        let mut child = record(5);
        child.entry.parent_id = Some(4);
        let five = spawn(child);
        assert!(quiet(&mut groups).await, "the child waits for its parent's group");
        store.gate.add_permits(2);
        assert_eq!(groups.recv().await.unwrap(), vec![5]);
        four.await.unwrap().unwrap();
        five.await.unwrap().unwrap();
        let stored = store.find_audit(5).await.unwrap().unwrap();
        assert_eq!(stored.parent_id, Some(4), "linked: the parent was stored first");
    }

    #[tokio::test]
    async fn a_worker_s_writer_dropped_mid_write_hands_its_records_to_the_first() {
        let (started, mut groups) = tokio::sync::mpsc::unbounded_channel();
        let store = Arc::new(Gated { inner: Default::default(), started, gate: tokio::sync::Semaphore::new(0) });
        let (audit, first) = AuditService::new(store.clone());
        let (local, own) = audit.with_own_writer(1);
        let own = tokio::spawn(own.run());
        let spawn = |r: AuditRecord| {
            let local = local.clone();
            tokio::spawn(async move { local.record(r).await })
        };
        let one = spawn(record(1));
        assert_eq!(groups.recv().await.unwrap(), vec![1], "the worker's writer is writing it");
        let two = spawn(record(2));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The worker's runtime stops: its writer is dropped mid-write, one
        // record in its group and one queued behind.
        own.abort();
        assert!(own.await.unwrap_err().is_cancelled());
        tokio::spawn(first.run());
        store.gate.add_permits(4);
        let handed: Vec<i64> = groups.recv().await.unwrap();
        assert_eq!(handed, vec![1, 2], "both written by the first writer, in order");
        one.await.unwrap().unwrap();
        two.await.unwrap().unwrap();
        for id in [1, 2] {
            assert!(store.find_audit(id).await.unwrap().is_some(), "record {id} stored");
        }
        // Its service now refuses, loudly, rather than queue for nobody.
        assert!(local.record(record(3)).await.is_err());
    }

    /// The in-memory store, with a switch that makes its bitácora writes
    /// fail as an unreachable database would.
    #[derive(Default)]
    struct Unplugged {
        inner: crate::testing::InMemoryStore,
        down: std::sync::atomic::AtomicBool,
        writes: std::sync::atomic::AtomicUsize,
        /// A record id the store refuses for good.
        refused: std::sync::atomic::AtomicI64,
    }

    impl Unplugged {
        fn set_down(&self, down: bool) {
            self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        }
        fn check(&self) -> Result<(), RepoError> {
            match self.down.load(std::sync::atomic::Ordering::SeqCst) {
                true => Err(RepoError::Unavailable("unplugged".into())),
                false => Ok(()),
            }
        }
    }

    impl AuditRepository for Unplugged {
        async fn reserve_audit_ids(&self, count: i64) -> Result<i64, RepoError> {
            self.check()?;
            self.inner.reserve_audit_ids(count).await
        }
        async fn write_audit(&self, records: &[AuditRecord]) -> Result<(), RepoError> {
            self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.check()?;
            let refused = self.refused.load(std::sync::atomic::Ordering::SeqCst);
            if records.iter().any(|r| r.id == refused) {
                return Err(RepoError::corrupt("refused"));
            }
            self.inner.write_audit(records).await
        }
        async fn find_audit(&self, id: i64) -> Result<Option<AuditEntry>, RepoError> {
            self.inner.find_audit(id).await
        }
        async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, RepoError> {
            self.inner.recent_audit(limit).await
        }
        async fn purge_audit(&self, before: Timestamp, limit: i64) -> Result<u64, RepoError> {
            self.inner.purge_audit(before, limit).await
        }
    }

    #[tokio::test]
    async fn records_the_store_cannot_take_are_spooled_then_drained_once_in_order() {
        let store = Arc::new(Unplugged::default());
        let spool = Arc::new(crate::testing::MemorySpool::default());
        let (audit, writer) = AuditService::with_spool(store.clone(), spool.clone());
        tokio::spawn(writer.run());
        let a = audit.reserve_id().await.unwrap();
        let b = audit.reserve_id().await.unwrap();
        audit.record(record(a)).await.unwrap();
        assert!(store.find_audit(a).await.unwrap().is_some());
        assert!(spool.records().is_empty());

        store.set_down(true);
        audit.record(record(b)).await.expect("answered: the record is in the spool");
        assert_eq!(spool.records().iter().map(|r| r.id).collect::<Vec<_>>(), vec![Some(b)]);
        // No id can be reserved: the record goes to the spool unnumbered.
        let mut late = record(0).entry;
        late.endpoint = "sin-id".into();
        audit.record_unnumbered(late, record(0).outcome).await.unwrap();
        assert!(audit.drain_spool().await.is_err(), "the store is still down");
        assert_eq!(spool.records().len(), 2, "nothing lost by a failed drain");

        store.set_down(false);
        // While the spool holds records, new ones queue behind them.
        let c = audit.reserve_id().await.unwrap();
        let writes = store.writes.load(std::sync::atomic::Ordering::SeqCst);
        audit.record(record(c)).await.unwrap();
        assert_eq!(store.writes.load(std::sync::atomic::Ordering::SeqCst), writes, "not written ahead of the spool");
        assert_eq!(spool.records().len(), 3);

        let report = audit.drain_spool().await.unwrap();
        assert_eq!(report, DrainReport { written: 3, rejected: 0 });
        assert!(spool.records().is_empty());
        for id in [b, c] {
            assert!(store.find_audit(id).await.unwrap().is_some(), "{id} stored");
        }
        let recent = store.recent_audit(10).await.unwrap();
        let unnumbered: Vec<_> = recent.iter().filter(|e| e.endpoint == "sin-id").collect();
        assert_eq!(unnumbered.len(), 1, "numbered once and stored once: {recent:?}");
        assert!(unnumbered[0].id > c.max(b), "its id comes from a block reserved at drain time");
        assert_eq!(recent.len(), 4);

        // A drain interrupted after writing (the spool kept what it wrote)
        // writes nothing twice, and a record the store refuses is set aside.
        spool.append(&[SpooledAudit::from(record(b))]).await.unwrap();
        spool.append(&[SpooledAudit::from(record(c + 1000))]).await.unwrap();
        store.refused.store(c + 2000, std::sync::atomic::Ordering::SeqCst);
        spool.append(&[SpooledAudit::from(record(c + 2000))]).await.unwrap();
        let report = audit.drain_spool().await.unwrap();
        assert_eq!(report, DrainReport { written: 2, rejected: 1 });
        assert_eq!(store.recent_audit(10).await.unwrap().len(), 5);
        assert!(spool.records().is_empty());
        assert_eq!(spool.rejected().iter().map(|(r, _)| r.id).collect::<Vec<_>>(), vec![Some(c + 2000)]);
    }

    #[tokio::test]
    async fn expired_records_are_purged_in_rounds_until_one_is_short() {
        use crate::ports::Clock;
        let now = crate::ports::SystemClock.now();
        let before = now - chrono::Duration::days(90);
        let mut repo = crate::ports::MockAuditRepository::new();
        let mut rounds = vec![7, AUDIT_PURGE_BATCH as u64];
        repo.expect_purge_audit()
            .withf(move |b, limit| *b == before && *limit == AUDIT_PURGE_BATCH)
            .times(2)
            .returning(move |_, _| {
                let n = rounds.pop().expect("two rounds");
                Box::pin(std::future::ready(Ok(n)))
            });
        let (audit, _writer) = AuditService::new(Arc::new(repo));
        let purged = audit.purge_expired(now, chrono::Duration::days(90)).await.unwrap();
        assert_eq!(purged, AUDIT_PURGE_BATCH as u64 + 7);
    }

    #[test]
    fn unparsable_bodies_are_not_stored() {
        let t = redacted_body_text(None, 17, "application/json");
        assert!(t.contains("17 bytes") && t.contains("application/json"), "{t}");
        assert_eq!(redacted_body_text(None, 0, "application/json"), "");
        assert!(redacted_body_text(Some(json!("password=x")), 10, "application/json").contains("10 bytes"));
        let t = redacted_body_text(None, 5, "");
        assert!(t.contains("5 bytes") && t.contains("sin Content-Type"), "{t}");
        // A hostile content type is cut and kept printable.
        let t = redacted_body_text(None, 5, &format!("text/x\n{}", "a".repeat(500)));
        assert!(t.len() < 250 && !t.contains('\n'), "{t}");
    }

    #[test]
    fn secret_keys_are_recognised_by_their_normalised_name() {
        for key in [
            "password",
            "Password",
            "PASSWORD",
            " password ",
            "password[]",
            "password[0]",
            "a[password]",
            "a[0][Password]",
            "usuario.password",
            "new_password",
            "mailbox-password",
            "password-confirmation",
            "X-User-Secret",
            "x_user_secret",
            "client_secret",
            "access_token",
            "refreshToken",
            "Authorization",
            "device_pin",
            "PIN",
            "clave",
            "contraseña",
        ] {
            assert!(is_secret_key(key), "{key} is a secret");
        }
        for key in ["usuario", "update_token", "pinned", "shipping", "id_bitacora_log", "user_id", "subject"] {
            assert!(!is_secret_key(key), "{key} is not a secret");
        }
    }

    #[test]
    fn secrets_are_redacted_in_arrays_forms_and_json_inside_strings() {
        let mut v = json!({
            "password[]": "p1",
            "a[password]": "p2",
            "list": [[{"Password": "p3"}], {"deep": [{"token": "p4"}]}],
            "data": "{\"password\": \"p5\"}",
            "update_token": "S",
            "text": "[no es JSON"
        });
        redact(&mut v);
        let s = v.to_string();
        for secret in ["p1", "p2", "p3", "p4", "p5"] {
            assert!(!s.contains(secret), "{secret} leaked in {s}");
        }
        assert_eq!(v["update_token"], "S");
        assert_eq!(v["text"], "[no es JSON");
    }

    #[test]
    fn refused_bodies_are_cut_by_bytes() {
        assert_eq!(truncate_bytes("abc", 512), "abc");
        let cut = truncate_bytes(&"ñ".repeat(1000), MAX_REFUSED_BODY_BYTES);
        assert!(cut.len() <= MAX_REFUSED_BODY_BYTES && cut.ends_with('…'), "{}", cut.len());
        assert!(cut.len() >= MAX_REFUSED_BODY_BYTES - 4);
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("ñañaña", 3), "ñañ…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
