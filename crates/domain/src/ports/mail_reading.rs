//! The mail-reading channel: the mail server, the decoder, the file store.

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Connection, login or protocol failure: this account's run stops and
    /// the next run starts over from the checkpoint.
    #[error("mailbox server: {0}")]
    Server(String),
    /// The account cannot be read as configured (bad port, plaintext refused).
    #[error("mail account configuration: {0}")]
    Config(String),
}

/// A mail listed in a mailbox: its UID and size in octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedMail {
    pub uid: u32,
    pub size: u64,
}

/// One mailbox opened for reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedMailbox {
    pub uid_validity: u32,
    /// The UID the next mail will get: every mail below it was in the
    /// mailbox when it was opened.
    pub uid_next: u32,
    /// Mail with a UID above the one asked for, by ascending UID.
    pub mail: Vec<ListedMail>,
}

/// The mail server of an account (IMAP in production).
pub trait MailboxSource: Send + Sync + 'static {
    type Session: MailboxSession;
    fn connect(
        &self,
        account: &MailAccount,
        password: &str,
    ) -> impl Future<Output = Result<Self::Session, SourceError>> + Send;
}

/// A logged-in connection to one account.
pub trait MailboxSession: Send {
    /// Selects `mailbox` and lists its mail with a UID above `after_uid`
    /// (only the unseen ones when `unseen_only`).
    fn open(
        &mut self,
        mailbox: &str,
        after_uid: u32,
        unseen_only: bool,
    ) -> impl Future<Output = Result<OpenedMailbox, SourceError>> + Send;
    /// The raw RFC 5322 message with this UID in the open mailbox (`None`:
    /// it is gone).
    fn fetch(&mut self, uid: u32) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send;
    /// Flags the message as seen; called only once its ticket is committed.
    fn mark_seen(&mut self, uid: u32) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// The raw messages with these UIDs (ascending) in the open mailbox, as
    /// `(uid, message)`; the ones that are gone are left out. An adapter
    /// should ask for them in one request; by default, one `fetch` each.
    fn fetch_many(&mut self, uids: &[u32]) -> impl Future<Output = Result<Vec<(u32, Vec<u8>)>, SourceError>> + Send {
        async move {
            let mut out = Vec::with_capacity(uids.len());
            for &uid in uids {
                if let Some(raw) = self.fetch(uid).await? {
                    out.push((uid, raw));
                }
            }
            Ok(out)
        }
    }
    /// Flags these messages as seen (each one's ticket committed). An
    /// adapter should do it in one request; by default, one `mark_seen` each.
    fn mark_seen_many(&mut self, uids: &[u32]) -> impl Future<Output = Result<(), SourceError>> + Send {
        async move {
            for &uid in uids {
                self.mark_seen(uid).await?;
            }
            Ok(())
        }
    }
    fn logout(self) -> impl Future<Output = ()> + Send;
}

/// A part of a mail that is kept as a file (attachment or inline image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedAttachment {
    pub name: String,
    pub mime_type: String,
    pub content: Vec<u8>,
}

/// A raw message decoded: the mail as `correo/save` takes it, attachments
/// still in memory (their routes are empty until stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMail {
    pub mail: IncomingMail,
    pub attachments: Vec<DecodedAttachment>,
    /// `false`: the mail had no usable date and `mail.date` is a placeholder.
    pub dated: bool,
}

/// Decodes RFC 5322 (no I/O). The error says why the message is unusable.
pub trait MessageDecoder: Send + Sync + 'static {
    fn decode(&self, raw: &[u8]) -> Result<DecodedMail, String>;
}

#[derive(Debug, thiserror::Error)]
#[error("channel storage: {0}")]
pub struct StorageError(pub String);

pub type FileFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// The reading channel's storage directory: attachment files and the raw
/// copies of quarantined mail. Routes are relative to it. Object-safe.
pub trait FileStore: Send + Sync + 'static {
    /// Stores an attachment; the same content and name MUST give the same
    /// route (a re-read mail overwrites nothing and adds no file).
    fn put_attachment<'a>(&'a self, name: &'a str, content: &'a [u8]) -> FileFuture<'a, String>;
    fn put_raw<'a>(&'a self, location: &'a MailLocation, raw: &'a [u8]) -> FileFuture<'a, String>;
    fn get<'a>(&'a self, route: &'a str) -> FileFuture<'a, Vec<u8>>;
}
