//! What the helpdesk sends: e-mails and Synology Chat messages.
//!
//! The domain decides *what* to say, as data ([`MailContent`],
//! [`ChatContent`]); the words are written by the adapter that sends it
//! (`helpdesk_notify_smtp::templates`, `helpdesk_notify_synology::messages`).
//! Envelope matters (recipient, Message-ID, In-Reply-To, extra headers) stay
//! the domain's.

use super::Timestamp;

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to: String,
    /// More recipients, copied (bare addresses).
    pub cc: Vec<String>,
    /// What it says; the mail adapter writes the subject and the body.
    pub content: MailContent,
    /// Without angle brackets; the adapter generates one when `None`.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    /// The thread's earlier Message-IDs, oldest first, without brackets
    /// (`References`); `in_reply_to` is added at the end when missing.
    pub references: Vec<String>,
    /// Extra headers (for example `Auto-Submitted: auto-replied`).
    pub headers: Vec<(String, String)>,
}

/// What an e-mail says. Every variant but [`MailContent::Plain`] is ours:
/// its subject and body are written by the mail adapter's templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailContent {
    /// To the sender of a mail that opened ticket `number`: it was received,
    /// and how to add to it (keep the ticket's tag in the subject).
    TicketAcknowledgement {
        number: i64,
        /// The ticket's subject, as stored.
        subject: String,
    },
    /// To the ticket's assignee: a new ticket (`opened_ticket`) or a new
    /// message on theirs.
    AssigneeNotice {
        opened_ticket: bool,
        number: i64,
        subject: String,
        /// The message's sender, as received.
        from: String,
        /// When the message was written (UTC).
        date: Timestamp,
        /// The beginning of the message's body.
        excerpt: String,
    },
    /// A password-reset link for the user called `name`, valid
    /// `valid_minutes`.
    PasswordReset { name: String, link: String, valid_minutes: i64 },
    /// An operator's public reply on ticket `number`: their words as
    /// written; the subject carries the ticket's tag.
    OperatorReply { number: i64, subject: String, text: String, html: Option<String> },
    /// To an operator: ticket `number` was just assigned to them.
    TicketAssigned { number: i64, subject: String, requester: String },
    /// To the assignee and the department's `jefe`: ticket `number` missed
    /// its `target`, due at `due` (the calendar's local time, with its
    /// zone); `assignee` names who holds it (`None`: nobody).
    SlaBreach { number: i64, subject: String, target: super::SlaTarget, due: String, assignee: Option<String> },
    /// To the assignee: an operator's reply to `recipient` was given up.
    DeliveryFailed { number: i64, subject: String, recipient: String, reason: String },
    /// Finished text we did not write: sent as is.
    Plain { subject: String, text: String, html: Option<String> },
}

/// What a Synology Chat message says. Every variant but
/// [`ChatContent::Plain`] is ours: its text is written by the chat adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatContent {
    /// To the ticket's assignee, through the bot: a new ticket
    /// (`opened_ticket`) or a new message on theirs.
    AssigneeNotice { opened_ticket: bool, number: i64, subject: String, from: String },
    /// To a department's channel: a new ticket.
    NewTicket { number: i64, subject: String, from: String },
    /// To an operator, through the bot: ticket `number` was just assigned
    /// to them.
    TicketAssigned { number: i64, subject: String },
    /// To the assignee (bot) or the department's channel: ticket `number`
    /// is near its `target`'s due time (`breached: false`) or missed it;
    /// `due` in the calendar's local time, with its zone.
    SlaAlert { number: i64, subject: String, target: super::SlaTarget, due: String, breached: bool },
    /// The bot's answer once a Synology user is linked to the internal user
    /// `login`, called `name`.
    LinkGreeting { name: String, login: String },
    /// Finished text we did not write: sent as is.
    Plain { text: String },
}
