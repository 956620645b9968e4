//! Tickets, their details (one per message), attachments and the outbox of
//! notices. Models for the ingestion issue; the ports arrive with it.

use std::collections::BTreeMap;

use super::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    Open,
    Closed,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "abierto",
            TicketStatus::Closed => "cerrado",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "abierto" => Some(TicketStatus::Open),
            "cerrado" => Some(TicketStatus::Closed),
            _ => None,
        }
    }
}

/// A ticket (`ticket`): one incident, opened by a mail, routed to a
/// department and assigned to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub department_id: i64,
    pub assignee_id: Option<i64>,
    /// Address of whoever opened the ticket.
    pub requester: String,
    pub mail_account_id: Option<i64>,
    /// `sistema` that delivered the first mail (for example `canal_lectura`).
    pub system: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// One message of a ticket (`detalle_ticket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDetail {
    pub id: i64,
    pub ticket_id: i64,
    /// SHA-256 (hex) of the Message-ID, or of sender, date, subject and body
    /// when there is none; unique, which makes ingestion idempotent.
    pub dedupe_key: String,
    pub message_id: Option<String>,
    pub from: String,
    pub to: String,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub body: String,
    pub html: String,
    pub date: Timestamp,
    pub headers: BTreeMap<String, String>,
    /// Auto-reply, bounce or bulk mail: stored, never acknowledged.
    pub automatic: bool,
    pub created_at: Timestamp,
}

/// An attachment's metadata (`adjunto_ticket`); the file lives in the reading
/// channel's storage under `route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: i64,
    pub detail_id: i64,
    pub name: String,
    pub route: String,
    pub mime_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeChannel {
    /// A chatbot message to one Synology Chat user.
    SynologyUser,
    /// An incoming-webhook message to a department's channel.
    SynologyChannel,
    /// An e-mail.
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeStatus {
    Pending,
    Sent,
    /// Gave up after the maximum number of attempts.
    Failed,
}

/// A notice in the transactional outbox (`notificacion`): written in the
/// same transaction as the ticket, delivered later with retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub channel: NoticeChannel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// The Message-ID of an e-mail notice (carries a signed tag).
    pub message_id: Option<String>,
    pub status: NoticeStatus,
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}
