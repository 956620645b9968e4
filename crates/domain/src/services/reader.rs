//! The mail-reading channel: every active mail account's mailboxes are read
//! from their last checkpoint, each mail becomes a ticket through the same
//! ingestion as `correo/save`, and only then is it flagged and the
//! checkpoint moved. A crash at any point re-reads rather than loses; the
//! ingestion's dedupe makes the re-read harmless. A mail that cannot become
//! a ticket goes to the quarantine with its reason, never nowhere.

use std::sync::Arc;

use crate::crypto::SecretBox;
use crate::error::RepoError;
use crate::model::*;
use crate::ports::*;
use crate::services::{IngestError, IngestService, header};

#[derive(Debug, Clone)]
pub struct ReaderSettings {
    /// Mail larger than this (octets, as the server lists it) is quarantined
    /// without being downloaded.
    pub max_message_bytes: u64,
    /// `sistema` recorded on the tickets (`canal_lectura`, as documented).
    pub system: String,
}

/// What became of the mail listed in one run. They add up:
/// `listed = imported + duplicate + quarantined + vanished + deferred`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    pub listed: u64,
    /// New ticket details (a new ticket or a reply to one).
    pub imported: u64,
    /// Stored before (a re-read after a crash, or the same mail twice).
    pub duplicate: u64,
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
        self.quarantined += other.quarantined;
        self.vanished += other.vanished;
        self.deferred += other.deferred;
    }

    pub fn adds_up(&self) -> bool {
        self.listed == self.imported + self.duplicate + self.quarantined + self.vanished + self.deferred
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

/// What one mail came to.
enum Decision {
    Ticket { ticket_id: i64, duplicate: bool },
    Refused(QuarantineReason, String, Option<String>),
}

enum Fate {
    Imported,
    Duplicate,
    Quarantined,
    Vanished,
}

pub struct ReaderService<R: Store, S: MailboxSource> {
    repo: Arc<R>,
    ingest: Arc<IngestService<R>>,
    source: Arc<S>,
    decoder: Arc<dyn MessageDecoder>,
    files: Arc<dyn FileStore>,
    secrets: SecretBox,
    clock: Arc<dyn Clock>,
    settings: ReaderSettings,
}

/// Everything the reader is wired with.
pub struct ReaderParts<R: Store, S: MailboxSource> {
    pub repo: Arc<R>,
    pub ingest: Arc<IngestService<R>>,
    pub source: Arc<S>,
    pub decoder: Arc<dyn MessageDecoder>,
    pub files: Arc<dyn FileStore>,
    pub secrets: SecretBox,
    pub clock: Arc<dyn Clock>,
    pub settings: ReaderSettings,
}

impl<R: Store, S: MailboxSource> ReaderService<R, S> {
    pub fn new(p: ReaderParts<R, S>) -> Self {
        Self {
            repo: p.repo,
            ingest: p.ingest,
            source: p.source,
            decoder: p.decoder,
            files: p.files,
            secrets: p.secrets,
            clock: p.clock,
            settings: p.settings,
        }
    }

    /// Reads every active account once. Only failing to list the accounts
    /// is an error; an account's failure is in its report.
    pub async fn run_once(&self) -> Result<RunReport, RepoError> {
        let filter = MailAccountFilter { status: Some(Status::Active), ..Default::default() };
        let mut report = RunReport::default();
        for account in self.repo.find_mail_accounts(filter).await? {
            let mut counts = ReadCounts::default();
            let error = self.read_account(&account, &mut counts).await.err().map(|e| e.to_string());
            report.accounts.push(AccountReport { account_id: account.id, user: account.user.clone(), counts, error });
        }
        Ok(report)
    }

    async fn connect(&self, account: &MailAccount) -> Result<S::Session, ReadError> {
        let password = self.secrets.open(&account.sealed_password).map_err(|_| ReadError::Password(account.id))?;
        Ok(self.source.connect(account, &password).await?)
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
        let checkpoint = self.repo.checkpoint(account.id, mailbox).await?;
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
        for (done, listed) in opened.mail.iter().enumerate() {
            let location = MailLocation {
                account_id: account.id,
                mailbox: mailbox.to_string(),
                uid_validity: opened.uid_validity,
                uid: listed.uid,
            };
            let step = async {
                let fate = self.read_one(session, &location, listed.size).await?;
                if !matches!(fate, Fate::Vanished) {
                    session.mark_seen(listed.uid).await?;
                }
                let checkpoint = Checkpoint { uid_validity: opened.uid_validity, last_uid: listed.uid };
                self.repo.save_checkpoint(account.id, mailbox, checkpoint, self.clock.now()).await?;
                Ok::<_, ReadError>(fate)
            };
            match step.await {
                Ok(fate) => match fate {
                    Fate::Imported => counts.imported += 1,
                    Fate::Duplicate => counts.duplicate += 1,
                    Fate::Quarantined => counts.quarantined += 1,
                    Fate::Vanished => counts.vanished += 1,
                },
                Err(e) => {
                    counts.deferred += total - done as u64;
                    return Err(e);
                }
            }
        }
        // Everything below `uid_next` was listed (or, on a first read, was
        // seen mail left alone): the next read starts above it.
        let end = Checkpoint { uid_validity: opened.uid_validity, last_uid: opened.uid_next.saturating_sub(1) };
        let last = opened.mail.last().map_or(0, |m| m.uid);
        if end.last_uid > last && checkpoint.is_none_or(|c| c.uid_validity != end.uid_validity || c.last_uid < end.last_uid) {
            self.repo.save_checkpoint(account.id, mailbox, end, self.clock.now()).await?;
        }
        Ok(())
    }

    async fn read_one(&self, session: &mut S::Session, at: &MailLocation, size: u64) -> Result<Fate, ReadError> {
        let max = self.settings.max_message_bytes;
        let too_large =
            |size: u64| (QuarantineReason::TooLarge, format!("{size} octets, over the channel's limit of {max}"), None);
        let decision = if size > max {
            too_large(size).into()
        } else {
            let Some(raw) = session.fetch(at.uid).await? else {
                return Ok(Fate::Vanished);
            };
            if raw.len() as u64 > max { too_large(raw.len() as u64).into() } else { self.decide(at, &raw).await? }
        };
        Ok(match decision {
            Decision::Ticket { duplicate: true, .. } => Fate::Duplicate,
            Decision::Ticket { duplicate: false, .. } => Fate::Imported,
            Decision::Refused(reason, detail, raw_route) => {
                let new = NewQuarantined {
                    location: at.clone(),
                    size: size as i64,
                    reason,
                    detail,
                    raw_route,
                    now: self.clock.now(),
                };
                self.repo.quarantine(new).await?;
                Fate::Quarantined
            }
        })
    }

    /// Decodes and ingests one raw mail. A refused mail's raw copy is kept
    /// in the storage for the quarantine.
    async fn decide(&self, at: &MailLocation, raw: &[u8]) -> Result<Decision, ReadError> {
        let refused = async |reason, detail: String| -> Result<Decision, ReadError> {
            let route = self.files.put_raw(at, raw).await?;
            Ok(Decision::Refused(reason, detail, Some(route)))
        };
        let decoded = match self.decoder.decode(raw) {
            Ok(d) => d,
            Err(why) => return refused(QuarantineReason::Unparsable, why).await,
        };
        let mut mail = decoded.mail;
        mail.system = self.settings.system.clone();
        if !decoded.dated {
            mail.date = self.clock.now();
        }
        if header(&mail.headers, "Message-ID").is_none_or(str::is_empty) {
            // A stable identity for a mail without one, so a re-read of the
            // same mail is recognised.
            mail.headers.insert(
                "Message-ID".into(),
                format!("<imap.{}.{}.{}.{}@reader.invalid>", at.account_id, at.uid_validity, at.uid, mailbox_tag(at)),
            );
        }
        for a in decoded.attachments {
            let route = self.files.put_attachment(&a.name, &a.content).await?;
            mail.attachments.push(NewAttachment { name: a.name, route, mime_type: a.mime_type });
        }
        match self.ingest.ingest(mail).await {
            Ok(o) => Ok(Decision::Ticket { ticket_id: o.ticket_id, duplicate: o.duplicate }),
            Err(IngestError::Store(e)) => Err(e.into()),
            Err(e) => refused(QuarantineReason::Rejected, e.to_string()).await,
        }
    }

    /// The quarantine, oldest first.
    pub async fn quarantined(&self, include_resolved: bool) -> Result<Vec<QuarantinedMail>, ReadError> {
        Ok(self.repo.quarantined(include_resolved).await?)
    }

    /// Tries a quarantined mail again, without the size limit (an operator
    /// asked for it). Its raw copy is used, or it is fetched again from the
    /// mailbox when it was never downloaded. Returns the updated entry.
    pub async fn retry(&self, id: i64) -> Result<QuarantinedMail, ReadError> {
        let entry = self.repo.find_quarantined(id).await?.ok_or(ReadError::NotFound(id))?;
        if entry.is_resolved() {
            return Ok(entry);
        }
        let at = &entry.location;
        let decision = match &entry.raw_route {
            Some(route) => {
                let raw = self.files.get(route).await?;
                self.decide(at, &raw).await?
            }
            None => {
                let account = self
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
            Decision::Refused(reason, detail, _) => Err((reason, detail)),
        };
        Ok(self.repo.record_retry(id, outcome, self.clock.now()).await?)
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

/// A short, header-safe tag of the mailbox name.
fn mailbox_tag(at: &MailLocation) -> String {
    crate::crypto::sha256_hex(at.mailbox.as_bytes())[..8].to_string()
}

impl From<(QuarantineReason, String, Option<String>)> for Decision {
    fn from((reason, detail, route): (QuarantineReason, String, Option<String>)) -> Self {
        Decision::Refused(reason, detail, route)
    }
}
