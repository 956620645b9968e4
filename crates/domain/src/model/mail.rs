//! Mailboxes polled by the mail-reading channel.

use super::Status;

/// A mailbox account (`cuenta_correo`). The password is sealed with the
/// server's AEAD key and opened only to answer `correo/getConfigCorreos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAccount {
    pub id: i64,
    pub host: String,
    /// The account's user, which is also the mailbox address tickets arrive at.
    pub user: String,
    pub sealed_password: Vec<u8>,
    /// Kept as a string, as documented (`"993"`).
    pub port: String,
    pub mailboxes: Vec<String>,
    pub department_id: i64,
    pub status: Status,
    /// Whether senders of new tickets get an acknowledgement e-mail.
    pub send_acknowledgement: bool,
}

#[derive(Debug, Clone)]
pub struct NewMailAccount {
    pub host: String,
    pub user: String,
    pub sealed_password: Vec<u8>,
    pub port: String,
    pub mailboxes: Vec<String>,
    pub department_id: i64,
    pub status: Status,
    pub send_acknowledgement: bool,
}

/// Filter of `correo/getConfigCorreos`: every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailAccountFilter {
    pub id: Option<i64>,
    pub user: Option<String>,
    pub department_id: Option<i64>,
    pub status: Option<Status>,
}

/// A mail account with its password opened, for the one answer that needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAccountWithPassword {
    pub account: MailAccount,
    pub password: String,
}
