//! The mail-reading channel's adapters, behind the domain's ports:
//!
//! - [`ImapSource`], a [`MailboxSource`](helpdesk_domain::ports::MailboxSource)
//!   over IMAP4rev1 with async-imap on tokio; TLS by rustls (port 993:
//!   implicit TLS, other ports STARTTLS, plaintext only when allowed).
//! - [`MailParserDecoder`], a [`MessageDecoder`](helpdesk_domain::ports::MessageDecoder)
//!   with mail-parser (RFC 5322 and MIME, encoded words, every charset).
//! - [`DirFileStore`], a [`FileStore`](helpdesk_domain::ports::FileStore) in a
//!   directory: content-addressed attachments and quarantined raw mail.

mod decode;
mod files;
mod source;
#[cfg(feature = "testing")]
pub mod testing;

pub use decode::MailParserDecoder;
pub use files::DirFileStore;
pub use source::{ImapOptions, ImapSession, ImapSource};
