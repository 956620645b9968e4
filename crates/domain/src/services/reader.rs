//! The mail-reading channel: every active mail account's mailboxes are read
//! from their last checkpoint, each mail becomes a ticket through the same
//! ingestion as `correo/save`, and only then is it flagged and the
//! checkpoint moved. A crash at any point re-reads rather than loses; the
//! ingestion's dedupe makes the re-read harmless. A mail that cannot become
//! a ticket goes to the quarantine with its reason, never nowhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::{StreamExt, stream};

use crate::crypto::SecretBox;
use crate::error::RepoError;
use crate::model::*;
use crate::ports::*;
use crate::services::{IngestError, IngestService, Ingested, MessageIdSigner, header, subject_ticket_number};

#[derive(Debug, Clone)]
pub struct ReaderSettings {
    /// Mail larger than this (octets, as the server lists it) is quarantined
    /// without being downloaded.
    pub max_message_bytes: u64,
    /// `sistema` recorded on the tickets (`canal_lectura`, as documented).
    pub system: String,
    /// Mails downloaded, flagged and checkpointed together (at most
    /// [`BATCH_BYTES`] by their listed sizes). 1: each on its own.
    pub batch_size: usize,
    /// Mails of a batch ingested at once. A mail that continues another of
    /// the same batch (In-Reply-To, References, a ticket number) waits until
    /// that one is stored. 1: one at a time.
    pub concurrency: usize,
}

/// Most octets downloaded in one batch, by the sizes the server lists; a
/// larger mail (up to the size limit) makes a batch on its own.
pub const BATCH_BYTES: u64 = 32 << 20;

/// What became of the mail listed in one run. They add up:
/// `listed = imported + duplicate + held + quarantined + vanished + deferred`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    pub listed: u64,
    /// New ticket details (a new ticket or a reply to one).
    pub imported: u64,
    /// Stored before (a re-read after a crash, or the same mail twice).
    pub duplicate: u64,
    /// From one of our own addresses and continuing no ticket: held (see
    /// `IngestService`), not a ticket.
    pub held: u64,
    pub quarantined: u64,
    /// Expunged by someone else between the listing and the fetch.
    pub vanished: u64,
    /// Left for the next run because the account's run stopped on an error.
    pub deferred: u64,
}

impl ReadCounts {
    pub fn add(&mut self, other: ReadCounts) {
        self.listed += other.listed;
        self.imported += other.imported;
        self.duplicate += other.duplicate;
        self.held += other.held;
        self.quarantined += other.quarantined;
        self.vanished += other.vanished;
        self.deferred += other.deferred;
    }

    pub fn adds_up(&self) -> bool {
        self.listed == self.imported + self.duplicate + self.held + self.quarantined + self.vanished + self.deferred
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReport {
    pub account_id: i64,
    pub user: String,
    pub counts: ReadCounts,
    /// Why the account's run stopped early (the rest is deferred).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub accounts: Vec<AccountReport>,
}

impl RunReport {
    pub fn totals(&self) -> ReadCounts {
        let mut t = ReadCounts::default();
        for a in &self.accounts {
            t.add(a.counts);
        }
        t
    }

    pub fn failed_accounts(&self) -> usize {
        self.accounts.iter().filter(|a| a.error.is_some()).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] RepoError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the password of mail account {0} cannot be opened with this server's key")]
    Password(i64),
    #[error("no quarantined mail with id {0}")]
    NotFound(i64),
    /// A quarantined mail that was never downloaded can no longer be fetched.
    #[error("{0}")]
    Unavailable(String),
}

/// What a quarantined mail tried again says when it was held instead.
const HELD_INSTEAD: &str = "from one of our own addresses and continuing no ticket: held (helpdesk-server held list)";

/// What one mail came to.
enum Decision {
    Ticket { ticket_id: i64, duplicate: bool },
    Held,
    Refused(QuarantineReason, String, Option<String>),
}

enum Fate {
    Imported,
    Duplicate,
    Held,
    Quarantined,
    Vanished,
}

/// A mail of a batch once downloaded (a batch's worth at most, moved once).
#[allow(clippy::large_enum_variant)]
enum Item {
    /// Over the size limit (by the listed size, or by what came).
    TooLarge(u64),
    /// Expunged by someone else between the listing and the fetch.
    Vanished,
    Fetched {
        raw: Vec<u8>,
        decoded: Result<Ready, String>,
    },
}

/// A mail decoded, ready for ingestion; its attachments not yet stored.
struct Ready {
    mail: IncomingMail,
    attachments: Vec<DecodedAttachment>,
}

/// What one mail of a batch came to before the quarantine is written.
enum Outcome {
    Done(Fate),
    Refused(QuarantineReason, String, Option<String>),
}

/// The ports [`ReaderService`] calls: any store providing them will do (the
/// whole `Store`, or a fake or mock of just these).
pub trait ReaderPorts: crate::services::IngestPorts + crate::ports::ReaderStateRepository {}
impl<T: crate::services::IngestPorts + crate::ports::ReaderStateRepository> ReaderPorts for T {}

pub struct ReaderService<R: ReaderPorts, S: MailboxSource> {
    p: ReaderParts<R, S>,
}

/// Everything the reader is wired with.
pub struct ReaderParts<R: ReaderPorts, S: MailboxSource> {
    pub repo: Arc<R>,
    pub ingest: Arc<IngestService<R>>,
    pub source: Arc<S>,
    pub decoder: Arc<dyn MessageDecoder>,
    pub files: Arc<dyn FileStore>,
    pub secrets: SecretBox,
    pub clock: Arc<dyn Clock>,
    pub settings: ReaderSettings,
}

impl<R: ReaderPorts, S: MailboxSource> ReaderService<R, S> {
    pub fn new(p: ReaderParts<R, S>) -> Self {
        Self { p }
    }

    /// Reads every active account once. Only failing to list the accounts
    /// is an error; an account's failure is in its report.
    pub async fn run_once(&self) -> Result<RunReport, RepoError> {
        let filter = MailAccountFilter { status: Some(Status::Active), ..Default::default() };
        let mut report = RunReport::default();
        for account in self.p.repo.find_mail_accounts(filter).await? {
            let mut counts = ReadCounts::default();
            let error = self.read_account(&account, &mut counts).await.err().map(|e| e.to_string());
            report.accounts.push(AccountReport { account_id: account.id, user: account.user.clone(), counts, error });
        }
        Ok(report)
    }

    async fn connect(&self, account: &MailAccount) -> Result<S::Session, ReadError> {
        let password = self.p.secrets.open(&account.sealed_password).map_err(|_| ReadError::Password(account.id))?;
        Ok(self.p.source.connect(account, &password).await?)
    }

    async fn read_account(&self, account: &MailAccount, counts: &mut ReadCounts) -> Result<(), ReadError> {
        let mut session = self.connect(account).await?;
        let mut result = Ok(());
        for mailbox in &account.mailboxes {
            result = self.read_mailbox(account, mailbox, &mut session, counts).await;
            if result.is_err() {
                break;
            }
        }
        session.logout().await;
        result
    }

    async fn read_mailbox(
        &self,
        account: &MailAccount,
        mailbox: &str,
        session: &mut S::Session,
        counts: &mut ReadCounts,
    ) -> Result<(), ReadError> {
        // The first read of a mailbox takes its unseen mail only (what was
        // read before the helpdesk was connected is history, not new
        // tickets); later reads take everything above the checkpoint.
        let checkpoint = self.p.repo.checkpoint(account.id, mailbox).await?;
        let mut opened = match checkpoint {
            Some(c) => session.open(mailbox, c.last_uid, false).await?,
            None => session.open(mailbox, 0, true).await?,
        };
        if checkpoint.is_some_and(|c| c.uid_validity != opened.uid_validity) {
            // The server renumbered the mailbox: read its unseen mail again;
            // what was imported before is recognised as a duplicate.
            opened = session.open(mailbox, 0, true).await?;
        }
        let total = opened.mail.len() as u64;
        counts.listed += total;
        let mut done = 0u64;
        let mut rest = opened.mail.as_slice();
        while !rest.is_empty() {
            let (batch, after) = rest.split_at(self.batch_len(rest));
            let (fates, error) = self.read_batch(account.id, mailbox, opened.uid_validity, batch, session).await;
            for fate in &fates {
                match fate {
                    Fate::Imported => counts.imported += 1,
                    Fate::Duplicate => counts.duplicate += 1,
                    Fate::Held => counts.held += 1,
                    Fate::Quarantined => counts.quarantined += 1,
                    Fate::Vanished => counts.vanished += 1,
                }
            }
            done += fates.len() as u64;
            if let Some(e) = error {
                counts.deferred += total - done;
                return Err(e);
            }
            rest = after;
        }
        // Everything below `uid_next` was listed (or, on a first read, was
        // seen mail left alone): the next read starts above it.
        let end = Checkpoint { uid_validity: opened.uid_validity, last_uid: opened.uid_next.saturating_sub(1) };
        let last = opened.mail.last().map_or(0, |m| m.uid);
        if end.last_uid > last
            && checkpoint.is_none_or(|c| c.uid_validity != end.uid_validity || c.last_uid < end.last_uid)
        {
            self.p.repo.save_checkpoint(account.id, mailbox, end, self.p.clock.now()).await?;
        }
        Ok(())
    }

    /// How many of `mail` go in the next batch: `batch_size` at most, and
    /// no more than [`BATCH_BYTES`] by their listed sizes (a larger mail
    /// alone). Mail over the size limit is not downloaded, so it weighs
    /// nothing.
    fn batch_len(&self, mail: &[ListedMail]) -> usize {
        let max = self.p.settings.max_message_bytes;
        let mut bytes = 0u64;
        let mut n = 0;
        for m in mail.iter().take(self.p.settings.batch_size.max(1)) {
            let weight = if m.size > max { 0 } else { m.size };
            if n > 0 && bytes + weight > BATCH_BYTES {
                break;
            }
            bytes += weight;
            n += 1;
        }
        n
    }

    /// Reads one batch: one download for all of it, then its mails ingested
    /// up to `concurrency` at once (a mail that continues another of the
    /// batch only after it: see [`threads`]), then, in UID order, the
    /// quarantine entries, one flag for all and one checkpoint. Returns the
    /// fates of the mails done, the longest run from the batch's start
    /// whose every step succeeded, and the error that stopped the rest.
    /// Mail after that run is left for the next read even when its ticket
    /// was committed: it is read again as a duplicate.
    async fn read_batch(
        &self,
        account_id: i64,
        mailbox: &str,
        uid_validity: u32,
        batch: &[ListedMail],
        session: &mut S::Session,
    ) -> (Vec<Fate>, Option<ReadError>) {
        let max = self.p.settings.max_message_bytes;
        let at = |uid| MailLocation { account_id, mailbox: mailbox.to_string(), uid_validity, uid };
        let wanted: Vec<u32> = batch.iter().filter(|m| m.size <= max).map(|m| m.uid).collect();
        let mut fetched: BTreeMap<u32, Vec<u8>> = if wanted.is_empty() {
            BTreeMap::new()
        } else {
            match session.fetch_many(&wanted).await {
                Ok(f) => f.into_iter().collect(),
                Err(e) => return (Vec::new(), Some(e.into())),
            }
        };
        let items: Vec<Item> = batch
            .iter()
            .map(|m| match (m.size > max, fetched.remove(&m.uid)) {
                (true, _) => Item::TooLarge(m.size),
                (false, None) => Item::Vanished,
                (false, Some(raw)) if raw.len() as u64 > max => Item::TooLarge(raw.len() as u64),
                (false, Some(raw)) => {
                    let decoded = self.decode(&at(m.uid), &raw);
                    Item::Fetched { raw, decoded }
                }
            })
            .collect();

        // Ingested thread by thread: the mails of one thread in UID order,
        // up to `concurrency` threads at once.
        let signer = self.p.ingest.message_ids();
        let groups = threads(&items, |mail| thread_keys(mail, signer));
        let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
        let jobs: Vec<Vec<(usize, Item)>> = groups
            .into_iter()
            .map(|g| g.into_iter().map(|i| (i, items[i].take().expect("each mail in one thread"))).collect())
            .collect();
        let mut results: Vec<Option<Result<Outcome, ReadError>>> = batch.iter().map(|_| None).collect();
        let run = |job: Vec<(usize, Item)>| async {
            let mut out = Vec::with_capacity(job.len());
            for (i, item) in job {
                let r = self.handle(&at(batch[i].uid), item).await;
                let failed = r.is_err();
                out.push((i, r));
                if failed {
                    // The rest of the thread may continue this mail: it waits.
                    break;
                }
            }
            out
        };
        let mut running = stream::iter(jobs).map(run).buffer_unordered(self.p.settings.concurrency.max(1));
        while let Some(out) = running.next().await {
            for (i, r) in out {
                results[i] = Some(r);
            }
        }
        drop(running);

        // In UID order: the quarantine, as far as every mail succeeded.
        let mut fates = Vec::new();
        let mut error = None;
        for (m, r) in batch.iter().zip(results.iter_mut()) {
            let fate = match r.take() {
                Some(Ok(Outcome::Done(fate))) => fate,
                Some(Ok(Outcome::Refused(reason, detail, raw_route))) => {
                    let new = NewQuarantined {
                        location: at(m.uid),
                        size: m.size as i64,
                        reason,
                        detail,
                        raw_route,
                        now: self.p.clock.now(),
                    };
                    match self.p.repo.quarantine(new).await {
                        Ok(_) => Fate::Quarantined,
                        Err(e) => {
                            error = Some(e.into());
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    error = Some(e);
                    break;
                }
                // Its thread stopped at an earlier mail, whose error comes first.
                None => break,
            };
            fates.push(fate);
        }
        if error.is_none() && fates.len() < batch.len() {
            error = results.into_iter().flatten().find_map(Result::err);
        }
        let Some(last) = batch[..fates.len()].last() else {
            return (fates, error);
        };
        let seen: Vec<u32> =
            batch.iter().zip(&fates).filter(|(_, f)| !matches!(f, Fate::Vanished)).map(|(m, _)| m.uid).collect();
        let flagged = async {
            if !seen.is_empty() {
                session.mark_seen_many(&seen).await?;
            }
            let checkpoint = Checkpoint { uid_validity, last_uid: last.uid };
            self.p.repo.save_checkpoint(account_id, mailbox, checkpoint, self.p.clock.now()).await?;
            Ok::<_, ReadError>(())
        };
        match flagged.await {
            Ok(()) => (fates, error),
            // Committed, maybe flagged, but not recorded: all read again.
            Err(e) => (Vec::new(), Some(e)),
        }
    }

    /// What became of one mail of a batch; a refusal is quarantined later,
    /// in UID order.
    async fn handle(&self, at: &MailLocation, item: Item) -> Result<Outcome, ReadError> {
        let decision = match item {
            Item::Vanished => return Ok(Outcome::Done(Fate::Vanished)),
            Item::TooLarge(size) => self.too_large(size),
            Item::Fetched { raw, decoded: Ok(ready) } => self.ingest_ready(at, &raw, ready).await?,
            Item::Fetched { raw, decoded: Err(why) } => {
                self.refuse(at, &raw, QuarantineReason::Unparsable, why).await?
            }
        };
        Ok(match decision {
            Decision::Ticket { duplicate: true, .. } => Outcome::Done(Fate::Duplicate),
            Decision::Ticket { duplicate: false, .. } => Outcome::Done(Fate::Imported),
            Decision::Held => Outcome::Done(Fate::Held),
            Decision::Refused(reason, detail, raw_route) => Outcome::Refused(reason, detail, raw_route),
        })
    }

    fn too_large(&self, size: u64) -> Decision {
        let max = self.p.settings.max_message_bytes;
        Decision::Refused(QuarantineReason::TooLarge, format!("{size} octets, over the channel's limit of {max}"), None)
    }

    /// A refused mail: its raw copy is kept in the storage for the quarantine.
    async fn refuse(
        &self,
        at: &MailLocation,
        raw: &[u8],
        reason: QuarantineReason,
        detail: String,
    ) -> Result<Decision, ReadError> {
        let route = self.p.files.put_raw(at, raw).await?;
        Ok(Decision::Refused(reason, detail, Some(route)))
    }

    /// Decodes a raw mail into what ingestion takes (no I/O); the error
    /// says why it is unusable.
    fn decode(&self, at: &MailLocation, raw: &[u8]) -> Result<Ready, String> {
        let decoded = self.p.decoder.decode(raw)?;
        let mut mail = decoded.mail;
        mail.system = self.p.settings.system.clone();
        mail.received_by = Some(at.account_id);
        if !decoded.dated {
            mail.date = self.p.clock.now();
        }
        if header(&mail.headers, "Message-ID").is_none_or(str::is_empty) {
            // A stable identity for a mail without one, so a re-read of the
            // same mail is recognised.
            mail.headers.insert(
                "Message-ID".into(),
                format!("<imap.{}.{}.{}.{}@reader.invalid>", at.account_id, at.uid_validity, at.uid, mailbox_tag(at)),
            );
        }
        Ok(Ready { mail, attachments: decoded.attachments })
    }

    /// Stores a decoded mail's attachments and ingests it.
    async fn ingest_ready(&self, at: &MailLocation, raw: &[u8], ready: Ready) -> Result<Decision, ReadError> {
        let Ready { mut mail, attachments } = ready;
        for a in attachments {
            let route = self.p.files.put_attachment(&a.name, &a.content).await?;
            mail.attachments.push(NewAttachment { name: a.name, route, mime_type: a.mime_type });
        }
        match self.p.ingest.ingest(mail).await {
            Ok(Ingested::Ticket(o)) => Ok(Decision::Ticket { ticket_id: o.ticket_id, duplicate: o.duplicate }),
            Ok(Ingested::Held(_)) => Ok(Decision::Held),
            Err(IngestError::Store(e)) => Err(e.into()),
            Err(e) => self.refuse(at, raw, QuarantineReason::Rejected, e.to_string()).await,
        }
    }

    /// Decodes and ingests one raw mail (a quarantined one tried again).
    async fn decide(&self, at: &MailLocation, raw: &[u8]) -> Result<Decision, ReadError> {
        match self.decode(at, raw) {
            Ok(ready) => self.ingest_ready(at, raw, ready).await,
            Err(why) => self.refuse(at, raw, QuarantineReason::Unparsable, why).await,
        }
    }

    /// The quarantine, oldest first.
    pub async fn quarantined(&self, include_resolved: bool) -> Result<Vec<QuarantinedMail>, ReadError> {
        Ok(self.p.repo.quarantined(include_resolved).await?)
    }

    /// Tries a quarantined mail again, without the size limit (an operator
    /// asked for it). Its raw copy is used, or it is fetched again from the
    /// mailbox when it was never downloaded. Returns the updated entry.
    pub async fn retry(&self, id: i64) -> Result<QuarantinedMail, ReadError> {
        let entry = self.p.repo.find_quarantined(id).await?.ok_or(ReadError::NotFound(id))?;
        if entry.is_resolved() {
            return Ok(entry);
        }
        let at = &entry.location;
        let decision = match &entry.raw_route {
            Some(route) => {
                let raw = self.p.files.get(route).await?;
                self.decide(at, &raw).await?
            }
            None => {
                let account = self
                    .p
                    .repo
                    .find_mail_accounts(MailAccountFilter { id: Some(at.account_id), ..Default::default() })
                    .await?
                    .pop()
                    .ok_or_else(|| {
                        ReadError::Unavailable(format!("mail account {} no longer exists", at.account_id))
                    })?;
                let mut session = self.connect(&account).await?;
                let fetched = self.fetch_again(&mut session, at).await;
                session.logout().await;
                self.decide(at, &fetched?).await?
            }
        };
        let outcome = match decision {
            Decision::Ticket { ticket_id, .. } => Ok(ticket_id),
            // Kept whole among the held mail, which is where it is released.
            Decision::Held => Err((QuarantineReason::Rejected, HELD_INSTEAD.to_string())),
            Decision::Refused(reason, detail, _) => Err((reason, detail)),
        };
        Ok(self.p.repo.record_retry(id, outcome, self.p.clock.now()).await?)
    }

    async fn fetch_again(&self, session: &mut S::Session, at: &MailLocation) -> Result<Vec<u8>, ReadError> {
        let opened = session.open(&at.mailbox, at.uid.saturating_sub(1), false).await?;
        if opened.uid_validity != at.uid_validity {
            return Err(ReadError::Unavailable(format!(
                "mailbox {} was renumbered (UIDVALIDITY {} is now {}); the mail cannot be found again",
                at.mailbox, at.uid_validity, opened.uid_validity
            )));
        }
        session
            .fetch(at.uid)
            .await?
            .ok_or_else(|| ReadError::Unavailable(format!("UID {} is no longer in mailbox {}", at.uid, at.mailbox)))
    }
}

/// The mails of a batch grouped by thread, each group in UID order, the
/// groups by their first mail. Two mails are in one thread when one names
/// the other (its Message-ID in In-Reply-To or References) or both name the
/// same message or ticket (References, a Message-ID we signed, the subject's
/// ticket number), directly or through other mails of the batch. Ingesting
/// a group in order stores every parent before its replies, whatever runs
/// beside it; mail that is not decoded is a group of its own.
fn threads(items: &[Item], keys: impl Fn(&IncomingMail) -> Vec<String>) -> Vec<Vec<usize>> {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..items.len()).collect();
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let Item::Fetched { decoded: Ok(ready), .. } = item else { continue };
        for key in keys(&ready.mail) {
            let j = *first.entry(key).or_insert(i);
            let (a, b) = (root(&mut parent, i), root(&mut parent, j));
            // The earlier mail is the root: groups are ordered by it.
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..items.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups.into_values().collect()
}

/// What ties a mail to its thread: its own Message-ID, the ones it answers
/// or refers to, and the tickets it names (a Message-ID we signed, the
/// subject's number), normalised as ingestion compares them.
fn thread_keys(mail: &IncomingMail, signer: &MessageIdSigner) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(own) = header(&mail.headers, "Message-ID").and_then(MessageId::parse) {
        keys.push(format!("m:{own}"));
    }
    for name in ["In-Reply-To", "References"] {
        for id in MessageId::list(header(&mail.headers, name).unwrap_or_default()) {
            if let Some(ticket) = signer.ticket_of(&id) {
                keys.push(format!("t:{ticket}"));
            }
            keys.push(format!("m:{id}"));
        }
    }
    if let Some(n) = subject_ticket_number(&mail.subject) {
        keys.push(format!("t:{n}"));
    }
    keys
}

/// A short, header-safe tag of the mailbox name.
fn mailbox_tag(at: &MailLocation) -> String {
    crate::crypto::sha256_hex(at.mailbox.as_bytes())[..8].to_string()
}

#[cfg(test)]
mod tests {
    //! The reader's bookkeeping against in-memory fakes: a fake mail server
    //! whose steps can be made to fail, a one-line decoder, files in memory.
    //! The IMAP, mail-parser and directory adapters are tested for real in
    //! their crate and end to end in the server's tests.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use chrono::NaiveDate;

    use super::*;
    use crate::crypto::SecretHasher;
    use crate::model::IncomingMail;
    use crate::services::{IngestSettings, MessageIdSigner};
    use crate::testing::{InMemoryStore, ManualClock};

    /// A mailbox: its UIDVALIDITY and its mails, `(uid, raw, seen)`.
    type Mailbox = (u32, Vec<(u32, Vec<u8>, bool)>);

    #[derive(Default)]
    struct Server {
        /// mailbox → its contents
        boxes: BTreeMap<String, Mailbox>,
        refuse_login: bool,
        fail_fetch_of: Option<u32>,
        fail_flag_of: Option<u32>,
        fetches: u32,
    }

    #[derive(Clone, Default)]
    struct FakeSource(Arc<Mutex<Server>>);

    struct FakeSession {
        server: Arc<Mutex<Server>>,
        open: String,
    }

    impl FakeSource {
        fn deliver(&self, mailbox: &str, raw: &str, seen: bool) -> u32 {
            let mut s = self.0.lock().unwrap();
            let (_, mail) = s.boxes.entry(mailbox.into()).or_insert((7, Vec::new()));
            let uid = mail.last().map_or(1, |m| m.0 + 1);
            mail.push((uid, raw.as_bytes().to_vec(), seen));
            uid
        }
        fn seen(&self, mailbox: &str) -> Vec<(u32, bool)> {
            self.0.lock().unwrap().boxes[mailbox].1.iter().map(|m| (m.0, m.2)).collect()
        }
    }

    impl MailboxSource for FakeSource {
        type Session = FakeSession;
        async fn connect(&self, _: &MailAccount, password: &str) -> Result<FakeSession, SourceError> {
            if self.0.lock().unwrap().refuse_login || password != "clave" {
                return Err(SourceError::Server("LOGIN refused".into()));
            }
            Ok(FakeSession { server: self.0.clone(), open: String::new() })
        }
    }

    impl MailboxSession for FakeSession {
        async fn open(&mut self, mailbox: &str, after: u32, unseen_only: bool) -> Result<OpenedMailbox, SourceError> {
            let s = self.server.lock().unwrap();
            let (validity, mail) = s.boxes.get(mailbox).ok_or_else(|| SourceError::Server("no such mailbox".into()))?;
            self.open = mailbox.into();
            Ok(OpenedMailbox {
                uid_validity: *validity,
                uid_next: mail.last().map_or(1, |m| m.0 + 1),
                mail: mail
                    .iter()
                    .filter(|m| m.0 > after && !(unseen_only && m.2))
                    .map(|m| ListedMail { uid: m.0, size: m.1.len() as u64 })
                    .collect(),
            })
        }
        async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, SourceError> {
            let mut s = self.server.lock().unwrap();
            s.fetches += 1;
            if s.fail_fetch_of == Some(uid) {
                return Err(SourceError::Server("connection reset".into()));
            }
            Ok(s.boxes[&self.open].1.iter().find(|m| m.0 == uid).map(|m| m.1.clone()))
        }
        async fn mark_seen(&mut self, uid: u32) -> Result<(), SourceError> {
            let mut s = self.server.lock().unwrap();
            if s.fail_flag_of == Some(uid) {
                return Err(SourceError::Server("connection reset".into()));
            }
            let open = self.open.clone();
            if let Some(m) = s.boxes.get_mut(&open).unwrap().1.iter_mut().find(|m| m.0 == uid) {
                m.2 = true;
            }
            Ok(())
        }
        async fn logout(self) {}
    }

    /// `Header: value` lines, a blank line, the body. No From: refused.
    struct LineDecoder;
    impl MessageDecoder for LineDecoder {
        fn decode(&self, raw: &[u8]) -> Result<DecodedMail, String> {
            let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
            let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
            let headers: BTreeMap<String, String> =
                head.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let from = headers.get("From").cloned().ok_or("no sender")?;
            let attachments = headers
                .get("X-Attach")
                .map(|n| {
                    vec![DecodedAttachment { name: n.clone(), mime_type: "text/plain".into(), content: b"x".to_vec() }]
                })
                .unwrap_or_default();
            let mail = IncomingMail {
                system: String::new(),
                subject: headers.get("Subject").cloned().unwrap_or_default(),
                from,
                to: "soporte@helpdesk.test".into(),
                cc: None,
                bcc: None,
                reply_to: None,
                body: body.into(),
                html: String::new(),
                date: Timestamp::MIN,
                headers,
                attachments: Vec::new(),
                received_by: None,
            };
            Ok(DecodedMail { mail, attachments, dated: false })
        }
    }

    #[derive(Default)]
    struct MemoryFiles(Mutex<BTreeMap<String, Vec<u8>>>);
    impl FileStore for MemoryFiles {
        fn put_attachment<'a>(&'a self, name: &'a str, content: &'a [u8]) -> FileFuture<'a, String> {
            let route = format!("adjuntos/{}/{name}", &crate::crypto::sha256_hex(content)[..8]);
            self.0.lock().unwrap().insert(route.clone(), content.to_vec());
            // Slow, as a real write is: the other mails of a batch run meanwhile.
            Box::pin(async move {
                for _ in 0..50 {
                    tokio::task::yield_now().await;
                }
                Ok(route)
            })
        }
        fn put_raw<'a>(&'a self, at: &'a MailLocation, raw: &'a [u8]) -> FileFuture<'a, String> {
            let route = format!("cuarentena/{}-{}.eml", at.uid_validity, at.uid);
            self.0.lock().unwrap().insert(route.clone(), raw.to_vec());
            Box::pin(async move { Ok(route) })
        }
        fn get<'a>(&'a self, route: &'a str) -> FileFuture<'a, Vec<u8>> {
            let found = self.0.lock().unwrap().get(route).cloned();
            Box::pin(async move { found.ok_or_else(|| StorageError(format!("no file {route}"))) })
        }
    }

    struct Fixture {
        store: Arc<InMemoryStore>,
        server: FakeSource,
        reader: ReaderService<InMemoryStore, FakeSource>,
        account: MailAccount,
    }

    /// `(batch_size, concurrency)`: one mail at a time (as the reader was
    /// first written), and batches of 50 ingested 8 at a time.
    const SEQUENTIAL: (usize, usize) = (1, 1);
    const CONCURRENT: (usize, usize) = (50, 8);
    const MODES: [(usize, usize); 2] = [SEQUENTIAL, CONCURRENT];

    async fn fixture(max_message_bytes: u64) -> Fixture {
        fixture_with(max_message_bytes, SEQUENTIAL).await
    }

    async fn fixture_with(max_message_bytes: u64, (batch_size, concurrency): (usize, usize)) -> Fixture {
        let store = Arc::new(InMemoryStore::new());
        let clock =
            Arc::new(ManualClock::new(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap().and_hms_opt(8, 0, 0).unwrap()));
        let d =
            store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let secrets = SecretBox::new([3; 32]);
        let account = store
            .create_mail_account(NewMailAccount {
                host: "imap.helpdesk.test".into(),
                user: "soporte@helpdesk.test".into(),
                sealed_password: secrets.seal("clave"),
                port: "993".into(),
                mailboxes: vec!["INBOX".into(), "Urgente".into()],
                department_id: d.id,
                status: Status::Active,
                send_acknowledgement: false,
            })
            .await
            .unwrap();
        let settings = IngestSettings {
            default_department_id: None,
            acks_per_hour: 3,
            chat_to_users: false,
            first_attempt_grace: chrono::Duration::seconds(30),
            setup_cache: std::time::Duration::ZERO,
            own_addresses: vec![],
            max_new_participants: 20,
        };
        let ids = MessageIdSigner::new(SecretHasher::new([4; 32]), "helpdesk.test");
        let ingest = Arc::new(IngestService::new(store.clone(), ids, clock.clone(), settings));
        let server = FakeSource::default();
        server.0.lock().unwrap().boxes.insert("INBOX".into(), (7, Vec::new()));
        server.0.lock().unwrap().boxes.insert("Urgente".into(), (7, Vec::new()));
        let reader = ReaderService::new(ReaderParts {
            repo: store.clone(),
            ingest,
            source: Arc::new(server.clone()),
            decoder: Arc::new(LineDecoder),
            files: Arc::new(MemoryFiles::default()),
            secrets,
            clock,
            settings: ReaderSettings { max_message_bytes, system: "canal_lectura".into(), batch_size, concurrency },
        });
        Fixture { store, server, reader, account }
    }

    fn mail(id: &str) -> String {
        format!("From: cliente@cliente.test\nMessage-ID: <{id}@cliente.test>\nSubject: asunto {id}\n\ncuerpo {id}")
    }

    fn counts(
        listed: u64,
        imported: u64,
        duplicate: u64,
        quarantined: u64,
        vanished: u64,
        deferred: u64,
    ) -> ReadCounts {
        ReadCounts { listed, imported, duplicate, held: 0, quarantined, vanished, deferred }
    }

    async fn all_tickets(store: &InMemoryStore) -> Vec<Ticket> {
        let mut out = Vec::new();
        for id in 1..500 {
            out.extend(store.find_ticket(id).await.unwrap());
        }
        out
    }

    async fn tickets(store: &InMemoryStore) -> usize {
        all_tickets(store).await.len()
    }

    #[tokio::test]
    async fn first_read_takes_unseen_mail_then_everything_above_the_checkpoint() {
        for mode in MODES {
            let f = fixture_with(1 << 20, mode).await;
            f.server.deliver("INBOX", &mail("viejo"), true);
            f.server.deliver("INBOX", &mail("a"), false);
            f.server.deliver("Urgente", &mail("b"), false);
            let report = f.reader.run_once().await.unwrap();
            assert_eq!(report.totals(), counts(2, 2, 0, 0, 0, 0));
            assert_eq!(report.accounts[0].error, None);
            assert_eq!(f.server.seen("INBOX"), [(1, true), (2, true)]);
            assert_eq!(
                f.store.checkpoint(f.account.id, "INBOX").await.unwrap(),
                Some(Checkpoint { uid_validity: 7, last_uid: 2 })
            );
            // Later reads take new mail, seen or not, and nothing twice.
            f.server.deliver("INBOX", &mail("c"), true);
            assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(1, 1, 0, 0, 0, 0));
            assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(0, 0, 0, 0, 0, 0));
            assert_eq!(tickets(&f.store).await, 3);
        }
    }

    #[tokio::test]
    async fn a_failed_flag_rereads_the_mail_as_a_duplicate_and_a_failed_fetch_defers_the_rest() {
        let f = fixture(1 << 20).await;
        for id in ["a", "b", "c"] {
            f.server.deliver("INBOX", &mail(id), false);
        }
        f.server.0.lock().unwrap().fail_flag_of = Some(2);
        let report = f.reader.run_once().await.unwrap();
        let t = report.totals();
        // b's ticket is committed but its flag failed: b and c are left for the
        // next run (a mail counts once its ticket, flag and checkpoint are done).
        assert_eq!(t, counts(3, 1, 0, 0, 0, 2));
        assert!(t.adds_up());
        assert!(report.accounts[0].error.as_deref().unwrap().contains("connection reset"));
        assert_eq!(f.store.checkpoint(f.account.id, "INBOX").await.unwrap().unwrap().last_uid, 1);
        f.server.0.lock().unwrap().fail_flag_of = None;
        f.server.0.lock().unwrap().fail_fetch_of = Some(3);
        assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(2, 0, 1, 0, 0, 1));
        f.server.0.lock().unwrap().fail_fetch_of = None;
        assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(1, 1, 0, 0, 0, 0));
        assert_eq!(tickets(&f.store).await, 3, "no mail lost, none twice");
        assert_eq!(f.server.seen("INBOX"), [(1, true), (2, true), (3, true)]);
    }

    #[tokio::test]
    async fn unusable_mail_is_quarantined_once_and_a_retry_makes_its_ticket() {
        for mode in MODES {
            let f = fixture_with(200, mode).await;
            f.server.deliver("INBOX", "Subject: sin remitente\n\nx", false);
            let big = format!("{}\n{}", mail("grande"), "x".repeat(300));
            f.server.deliver("INBOX", &big, false);
            let report = f.reader.run_once().await.unwrap();
            assert_eq!(report.totals(), counts(2, 0, 0, 2, 0, 0));
            assert_eq!(f.server.0.lock().unwrap().fetches, 1, "the oversized mail is not downloaded");
            let q = f.reader.quarantined(false).await.unwrap();
            assert_eq!(q.len(), 2);
            assert_eq!((q[0].reason, q[0].detail.as_str()), (QuarantineReason::Unparsable, "no sender"));
            assert!(q[0].raw_route.is_some());
            assert_eq!(
                (q[1].reason, q[1].raw_route.as_ref(), q[1].location.uid),
                (QuarantineReason::TooLarge, None, 2)
            );
            assert_eq!(f.server.seen("INBOX"), [(1, true), (2, true)], "set aside counts as handled");

            // The unparsable one fails again (same reason, one more attempt);
            // the oversized one is fetched again and becomes a ticket.
            let again = f.reader.retry(q[0].id).await.unwrap();
            assert_eq!((again.attempts, again.ticket_id), (1, None));
            let done = f.reader.retry(q[1].id).await.unwrap();
            assert_eq!(done.attempts, 1);
            let ticket = f.store.find_ticket(done.ticket_id.unwrap()).await.unwrap().unwrap();
            assert_eq!(ticket.subject, "asunto grande");
            assert_eq!(f.reader.quarantined(false).await.unwrap(), vec![again]);
            assert!(matches!(f.reader.retry(9999).await, Err(ReadError::NotFound(9999))));
            // Re-quarantining the same location does not add an entry.
            assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(0, 0, 0, 0, 0, 0));
            assert_eq!(f.reader.quarantined(true).await.unwrap().len(), 2);
        }
    }

    #[tokio::test]
    async fn a_renumbered_mailbox_is_read_again_without_duplicates() {
        for mode in MODES {
            let f = fixture_with(1 << 20, mode).await;
            f.server.deliver("INBOX", &mail("a"), false);
            f.reader.run_once().await.unwrap();
            {
                let mut s = f.server.0.lock().unwrap();
                let b = s.boxes.get_mut("INBOX").unwrap();
                b.0 = 8;
                b.1[0].2 = false;
            }
            assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(1, 0, 1, 0, 0, 0));
            assert_eq!(
                f.store.checkpoint(f.account.id, "INBOX").await.unwrap(),
                Some(Checkpoint { uid_validity: 8, last_uid: 1 })
            );
            assert_eq!(tickets(&f.store).await, 1);
        }
    }

    #[tokio::test]
    async fn one_account_failing_does_not_stop_the_others_and_mail_without_an_id_is_not_doubled() {
        for mode in MODES {
            let f = fixture_with(1 << 20, mode).await;
            let broken = f
                .store
                .create_mail_account(NewMailAccount {
                    user: "ventas@helpdesk.test".into(),
                    sealed_password: SecretBox::new([9; 32]).seal("clave"),
                    ..NewMailAccount {
                        host: f.account.host.clone(),
                        user: String::new(),
                        sealed_password: Vec::new(),
                        port: "993".into(),
                        mailboxes: vec!["INBOX".into()],
                        department_id: f.account.department_id,
                        status: Status::Active,
                        send_acknowledgement: false,
                    }
                })
                .await
                .unwrap();
            f.server.deliver("INBOX", "From: x@cliente.test\nX-Attach: notas.txt\n\nsin id", false);
            let report = f.reader.run_once().await.unwrap();
            assert_eq!(report.accounts.len(), 2);
            assert_eq!(report.failed_accounts(), 1);
            let failed = report.accounts.iter().find(|a| a.account_id == broken.id).unwrap();
            assert!(failed.error.as_deref().unwrap().contains("password"), "{failed:?}");
            assert_eq!(report.totals(), counts(1, 1, 0, 0, 0, 0));
            // Crash before the flag: the same mail read again is a duplicate,
            // thanks to the Message-ID the reader gave it.
            f.server.0.lock().unwrap().boxes.get_mut("INBOX").unwrap().1[0].2 = false;
            f.store
                .save_checkpoint(f.account.id, "INBOX", Checkpoint { uid_validity: 7, last_uid: 0 }, Timestamp::MIN)
                .await
                .unwrap();
            assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(1, 0, 1, 0, 0, 0));
            let ticket = &all_tickets(&f.store).await[0];
            let details = f.store.details_of(ticket.id).await.unwrap();
            assert_eq!(details.len(), 1);
            assert!(details[0].message_id.as_deref().unwrap().starts_with("imap."));
            f.server.0.lock().unwrap().refuse_login = true;
            let r = f.reader.run_once().await.unwrap();
            assert_eq!(r.failed_accounts(), 2);
            assert!(r.totals().adds_up());
        }
    }

    fn with_attachment(id: &str) -> String {
        mail(id).replacen("\n\n", &format!("\nX-Attach: {id}.txt\n\n"), 1)
    }

    fn reply(id: &str, headers: &str) -> String {
        format!(
            "From: cliente@cliente.test\nMessage-ID: <{id}@cliente.test>\n{headers}\nSubject: Re: asunto\n\ncuerpo {id}"
        )
    }

    #[tokio::test]
    async fn replies_read_in_the_same_batch_as_their_parents_join_their_tickets() {
        let f = fixture_with(1 << 20, CONCURRENT).await;
        // Each parent has an attachment, whose write lets the mails after
        // it run first: a reply not held back would find no parent.
        for i in 0..12 {
            f.server.deliver("INBOX", &with_attachment(&format!("p{i}")), false);
            f.server.deliver("INBOX", &reply(&format!("r{i}"), &format!("In-Reply-To: <p{i}@cliente.test>")), false);
            let refs = format!("References: <p{i}@cliente.test> <r{i}@cliente.test>");
            f.server.deliver("INBOX", &reply(&format!("rr{i}"), &refs), false);
        }
        assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(36, 36, 0, 0, 0, 0));
        let tickets = all_tickets(&f.store).await;
        assert_eq!(tickets.len(), 12, "one ticket per parent");
        for t in &tickets {
            let ids: Vec<String> =
                f.store.details_of(t.id).await.unwrap().into_iter().map(|d| d.message_id.unwrap()).collect();
            let i = ids[0].trim_start_matches('p').split('@').next().unwrap().to_string();
            let want: Vec<String> = ["p", "r", "rr"].iter().map(|k| format!("{k}{i}@cliente.test")).collect();
            assert_eq!(ids, want, "parent, reply and its reply in one ticket, in that order");
        }
        assert!(f.server.seen("INBOX").iter().all(|(_, seen)| *seen));
        assert_eq!(f.store.checkpoint(f.account.id, "INBOX").await.unwrap().unwrap().last_uid, 36);
    }

    #[tokio::test]
    async fn replies_spread_over_batches_join_their_tickets() {
        // Batches of 50 of 200 mails: parents one batch, replies the next,
        // replies to replies anywhere after.
        let f = fixture_with(1 << 20, CONCURRENT).await;
        for i in 0..100 {
            let parent = with_attachment(&format!("p{i}"));
            f.server.deliver("INBOX", &parent, false);
            if i >= 30 {
                let p = i - 30;
                f.server.deliver(
                    "INBOX",
                    &reply(&format!("r{p}"), &format!("In-Reply-To: <p{p}@cliente.test>")),
                    false,
                );
            }
        }
        for p in 70..100 {
            f.server.deliver("INBOX", &reply(&format!("r{p}"), &format!("In-Reply-To: <p{p}@cliente.test>")), false);
        }
        assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(200, 200, 0, 0, 0, 0));
        let tickets = all_tickets(&f.store).await;
        assert_eq!(tickets.len(), 100);
        for t in &tickets {
            assert_eq!(f.store.details_of(t.id).await.unwrap().len(), 2, "{t:?}");
        }
    }

    #[tokio::test]
    async fn in_a_batch_a_failed_flag_or_fetch_leaves_the_batch_for_the_next_read() {
        let f = fixture_with(1 << 20, CONCURRENT).await;
        for id in ["a", "b", "c"] {
            f.server.deliver("INBOX", &mail(id), false);
        }
        f.server.0.lock().unwrap().fail_flag_of = Some(2);
        let report = f.reader.run_once().await.unwrap();
        // The three tickets are committed, but a mail counts once its flag
        // and checkpoint are done too: the whole batch is read again.
        assert_eq!(report.totals(), counts(3, 0, 0, 0, 0, 3));
        assert!(report.accounts[0].error.as_deref().unwrap().contains("connection reset"));
        assert_eq!(f.store.checkpoint(f.account.id, "INBOX").await.unwrap(), None);
        assert_eq!(tickets(&f.store).await, 3);
        f.server.0.lock().unwrap().fail_flag_of = None;
        // a was flagged before b failed: a first read takes the unseen ones.
        assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(2, 0, 2, 0, 0, 0));
        assert_eq!(f.server.seen("INBOX"), [(1, true), (2, true), (3, true)]);

        for id in ["d", "e"] {
            f.server.deliver("INBOX", &mail(id), false);
        }
        f.server.0.lock().unwrap().fail_fetch_of = Some(5);
        assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(2, 0, 0, 0, 0, 2));
        assert_eq!(tickets(&f.store).await, 3, "nothing of a batch that could not be downloaded");
        f.server.0.lock().unwrap().fail_fetch_of = None;
        assert_eq!(f.reader.run_once().await.unwrap().totals(), counts(2, 2, 0, 0, 0, 0));
        assert_eq!(tickets(&f.store).await, 5, "no mail lost, none twice");
        assert_eq!(f.store.checkpoint(f.account.id, "INBOX").await.unwrap().unwrap().last_uid, 5);
    }

    #[test]
    fn threads_join_mail_that_names_each_other_or_the_same_message_or_ticket() {
        let signer = MessageIdSigner::new(SecretHasher::new([4; 32]), "helpdesk.test");
        let signed = signer.for_notice(77, 1);
        let raw = [
            mail("a"),                                                          // 0
            mail("b"),                                                          // 1
            reply("c", "In-Reply-To: <A@cliente.test>"),                        // 2: answers 0 (case)
            reply("d", "References: <viejo@cliente.test> <c@cliente.test>"),    // 3: through 2
            reply("e", "References: <viejo@cliente.test>"),                     // 4: same old message as 3
            reply("f", &format!("In-Reply-To: {signed}")),                      // 5: ticket 77
            "From: x@cliente.test\nSubject: Re: [Ticket #77] hola\n\nx".into(), // 6: ticket 77 by subject
            "Subject: sin remitente\n\nx".into(),                               // 7: not decoded
            mail("b"),                                                          // 8: 1 again
        ];
        let items: Vec<Item> = raw
            .iter()
            .map(|r| Item::Fetched {
                raw: r.as_bytes().to_vec(),
                decoded: LineDecoder.decode(r.as_bytes()).map(|d| Ready { mail: d.mail, attachments: d.attachments }),
            })
            .collect();
        let groups = threads(&items, |m| thread_keys(m, &signer));
        assert_eq!(groups, vec![vec![0, 2, 3, 4], vec![1, 8], vec![5, 6], vec![7]]);
    }
}
