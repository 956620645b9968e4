//! Tickets, their details (one per message), attachments and the outbox of
//! notices. Models for the ingestion issue; the ports arrive with it.

use std::collections::BTreeMap;

use super::{Direction, InternalUser, Priority, SlaClock, Timestamp};

/// `abierto`, `pendiente` (waiting on the customer), `cerrado`. A ticket
/// counts in its assignee's open tickets while it is not closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    Open,
    Pending,
    Closed,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "abierto",
            TicketStatus::Pending => "pendiente",
            TicketStatus::Closed => "cerrado",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "abierto" => Some(TicketStatus::Open),
            "pendiente" => Some(TicketStatus::Pending),
            "cerrado" => Some(TicketStatus::Closed),
            _ => None,
        }
    }
    /// Counted in the assignee's open tickets.
    pub fn is_open(self) -> bool {
        self != TicketStatus::Closed
    }
}

/// A ticket (`ticket`): one incident, opened by a mail, routed to a
/// department and assigned to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
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
    /// Its service-level clock, when a policy covered it as it opened.
    pub sla: Option<SlaClock>,
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
    /// This message opened the ticket.
    pub opened_ticket: bool,
    pub direction: Direction,
    /// The operator who wrote it (replies and notes).
    pub author_id: Option<i64>,
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

/// Types an attachment is served as, as declared: inert in a browser
/// (raster images, PDF, plain text and CSV, office documents, archives,
/// audio and video a browser only plays). Anything else a customer declares
/// (HTML, SVG, XML, JavaScript, `message/rfc822`, unknown types) is served as
/// `application/octet-stream`.
const INERT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/avif",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/zip",
    "application/x-zip-compressed",
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/x-rar-compressed",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "video/mp4",
    "video/webm",
];

/// Character sets plain text keeps (UTF-7 and the like are how scripts
/// hide from filters).
const TEXT_CHARSETS: &[&str] = &["utf-8", "us-ascii", "iso-8859-1", "iso-8859-15", "windows-1252"];

/// The type an attachment is served with: its declared type when inert
/// ([`INERT_TYPES`]; lower case, parameters dropped but a known `charset`
/// of plain text), else `application/octet-stream`.
pub fn served_type(declared: &str) -> String {
    let mut parts = declared.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !INERT_TYPES.contains(&essence.as_str()) {
        return "application/octet-stream".into();
    }
    if essence == "text/plain" || essence == "text/csv" {
        let charset = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_ascii_lowercase())
        });
        return match charset {
            Some(c) if TEXT_CHARSETS.contains(&c.as_str()) => format!("{essence}; charset={c}"),
            Some(_) => "application/octet-stream".into(),
            None => essence,
        };
    }
    essence
}

/// An attachment's name as offered for download: no control characters
/// and no bidirectional controls (`\u{202E}` makes `exe.pdf` read as
/// `fdp.exe`), trimmed; `adjunto` when nothing is left.
pub fn served_name(name: &str) -> String {
    let bidi =
        |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let clean: String = name.chars().filter(|c| !c.is_control() && !bidi(*c)).collect();
    let clean = clean.trim();
    if clean.is_empty() { "adjunto".into() } else { clean.to_string() }
}

/// What a notice is, which decides its channel and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// E-mail to the sender of a new ticket, its number in the subject.
    Acknowledgement,
    /// Synology Chat bot message to the assignee (`id_synology`).
    AssigneeChat,
    /// E-mail to the assignee.
    AssigneeMail,
    /// Synology Chat incoming-webhook message to the department's channel.
    DepartmentChannel,
    /// An operator's public reply, mailed to the requester (participants in
    /// Cc) under the detail's own Message-ID.
    Reply,
    /// E-mail to an operator a ticket was just assigned to.
    AssignedMail,
    /// Synology Chat bot message to an operator a ticket was just assigned to.
    AssignedChat,
    /// Synology Chat bot message to the assignee: a service-level target is
    /// near (`warning`) or missed.
    SlaWarningChat,
    SlaBreachChat,
    /// The same to the department's channel.
    SlaWarningChannel,
    SlaBreachChannel,
    /// E-mail to the assignee and the department's `jefe`: a target was
    /// missed.
    SlaBreachMail,
    /// E-mail to the assignee: an operator's reply could not be delivered.
    DeliveryFailedMail,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Acknowledgement => "acuse",
            NoticeKind::AssigneeChat => "sla_synology_usuario",
            NoticeKind::AssigneeMail => "sla_correo",
            NoticeKind::DepartmentChannel => "sla_synology_canal",
            NoticeKind::Reply => "respuesta",
            NoticeKind::AssignedMail => "asignacion_correo",
            NoticeKind::AssignedChat => "asignacion_synology",
            NoticeKind::SlaWarningChat => "sla_aviso_synology_usuario",
            NoticeKind::SlaBreachChat => "sla_vencido_synology_usuario",
            NoticeKind::SlaWarningChannel => "sla_aviso_synology_canal",
            NoticeKind::SlaBreachChannel => "sla_vencido_synology_canal",
            NoticeKind::SlaBreachMail => "sla_vencido_correo",
            NoticeKind::DeliveryFailedMail => "entrega_fallida_correo",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Acknowledgement,
            Self::AssigneeChat,
            Self::AssigneeMail,
            Self::DepartmentChannel,
            Self::Reply,
            Self::AssignedMail,
            Self::AssignedChat,
            Self::SlaWarningChat,
            Self::SlaBreachChat,
            Self::SlaWarningChannel,
            Self::SlaBreachChannel,
            Self::SlaBreachMail,
            Self::DeliveryFailedMail,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
    pub fn is_chat(self) -> bool {
        matches!(
            self,
            NoticeKind::AssigneeChat
                | NoticeKind::DepartmentChannel
                | NoticeKind::AssignedChat
                | NoticeKind::SlaWarningChat
                | NoticeKind::SlaBreachChat
                | NoticeKind::SlaWarningChannel
                | NoticeKind::SlaBreachChannel
        )
    }

    /// Addressed to an operator (by e-mail or Synology id): never sent once
    /// that operator is inactive.
    pub fn is_for_operator(self) -> bool {
        matches!(
            self,
            NoticeKind::AssigneeChat
                | NoticeKind::AssigneeMail
                | NoticeKind::AssignedMail
                | NoticeKind::AssignedChat
                | NoticeKind::SlaWarningChat
                | NoticeKind::SlaBreachChat
                | NoticeKind::SlaBreachMail
                | NoticeKind::DeliveryFailedMail
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeStatus {
    Pending,
    Sent,
    /// Gave up after the maximum number of attempts, or refused for good.
    Failed,
}

impl NoticeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Pending => "pendiente",
            NoticeStatus::Sent => "enviada",
            NoticeStatus::Failed => "fallida",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed].into_iter().find(|k| k.as_str() == s)
    }
}

/// A notice in the transactional outbox (`notificacion`): written in the
/// same transaction as the ticket, delivered later with retries. Its text is
/// rendered at delivery from the ticket, so it is always current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: i64,
    pub ticket_id: i64,
    pub detail_id: i64,
    pub kind: NoticeKind,
    /// An e-mail address, a Synology user id, or a department id (channel).
    pub recipient: String,
    pub status: NoticeStatus,
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    /// A worker holds the notice until then (a lease, so a crashed worker's
    /// notices are picked up again).
    pub leased_until: Option<Timestamp>,
    pub last_error: Option<String>,
    /// What the other side answered (Synology's JSON, the Message-ID sent).
    pub result: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

impl Notice {
    /// A notice as queued: pending, never attempted, first due at `due`.
    pub fn pending(id: i64, ticket_id: i64, detail_id: i64, spec: NewNotice, now: Timestamp, due: Timestamp) -> Self {
        Notice {
            id,
            ticket_id,
            detail_id,
            kind: spec.kind,
            recipient: spec.recipient,
            status: NoticeStatus::Pending,
            attempts: 0,
            next_attempt_at: due,
            leased_until: None,
            last_error: None,
            result: None,
            created_at: now,
            sent_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    pub kind: NoticeKind,
    pub recipient: String,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Sent {
        result: String,
    },
    Retry {
        error: String,
        next_attempt_at: Timestamp,
    },
    /// Given up; `follow_up` is written with it.
    Failed {
        error: String,
        follow_up: FailureFollowUp,
    },
}

/// What a notice given up writes in the same transaction, so that a reply
/// that cannot be delivered is said where the operator looks: the thread's
/// event, notices (on the failed notice's message) and outgoing webhooks'
/// events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureFollowUp {
    pub events: Vec<super::NewTicketEvent>,
    pub notices: Vec<NewNotice>,
    pub webhook_events: Vec<super::NewWebhookEvent>,
}

/// Where an outgoing message is in its delivery (`entrega`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not tried yet.
    Queued,
    Sent,
    /// Tried and failed; tried again later.
    Retrying,
    /// Given up.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "en_cola",
            DeliveryState::Sent => "enviado",
            DeliveryState::Retrying => "reintentando",
            DeliveryState::Failed => "fallido",
        }
    }
}

/// Characters of a delivery's error shown (`motivo`).
pub const DELIVERY_REASON_CHARS: usize = 300;

/// The newest rows of the tickets' tables (of one ticket's, or of all):
/// every change writes one (a ticket, a message, or an event for each field
/// changed), and ids only grow, whatever the servers' clocks say. A page
/// whose marks have not moved has nothing new to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityMarks {
    pub ticket: i64,
    pub detail: i64,
    pub event: i64,
}

/// An outgoing message's delivery, as its notice tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub state: DeliveryState,
    pub attempts: i32,
    /// The last error while it is retried or once given up (the adapters
    /// keep secrets out of their errors), cut to [`DELIVERY_REASON_CHARS`].
    pub reason: Option<String>,
}

impl Delivery {
    pub fn of(notice: &Notice) -> Self {
        let state = match notice.status {
            NoticeStatus::Sent => DeliveryState::Sent,
            NoticeStatus::Failed => DeliveryState::Failed,
            NoticeStatus::Pending if notice.attempts == 0 => DeliveryState::Queued,
            NoticeStatus::Pending => DeliveryState::Retrying,
        };
        let reason = match state {
            DeliveryState::Retrying | DeliveryState::Failed => {
                notice.last_error.as_ref().map(|e| e.chars().take(DELIVERY_REASON_CHARS).collect())
            }
            DeliveryState::Queued | DeliveryState::Sent => None,
        };
        Delivery { state, attempts: notice.attempts, reason }
    }
}

/// The ticket a stored mail goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingTarget {
    New(NewTicket),
    /// An existing ticket; `reopen` when it was closed.
    Existing {
        ticket_id: i64,
        reopen: bool,
        /// The ticket's service-level clock as it becomes (running again
        /// after a pause); `None` leaves it as it is.
        sla: Option<SlaClock>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub subject: String,
    pub department_id: i64,
    pub assignee_id: Option<i64>,
    pub requester: String,
    pub mail_account_id: Option<i64>,
    pub system: String,
    pub sla: Option<SlaClock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicketDetail {
    pub dedupe_key: String,
    pub message_id: Option<String>,
    pub message_id_hash: Option<String>,
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
    pub automatic: bool,
    pub direction: Direction,
    pub author_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewAttachment {
    pub name: String,
    pub route: String,
    pub mime_type: String,
}

/// Everything one incoming mail writes, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncoming {
    pub target: IncomingTarget,
    pub detail: NewTicketDetail,
    pub attachments: Vec<NewAttachment>,
    /// Addresses that may later post into the ticket by its number.
    pub participants: Vec<String>,
    /// What the thread says of the mail beyond the message (addresses
    /// dropped or not added).
    pub events: Vec<super::NewTicketEvent>,
    pub notices: Vec<NewNotice>,
    /// What subscribers of outgoing webhooks are told, written with the
    /// rest (the ticket's id and the detail's completing each body).
    pub webhook_events: Vec<super::NewWebhookEvent>,
    pub now: Timestamp,
    /// When the worker may first take the notices (the request makes the
    /// first attempt itself until then).
    pub notices_due_at: Timestamp,
    /// The bitácora record of the request that brought the mail, written
    /// in the same transaction (and not at all if the mail is not stored):
    /// the request's answer then needs no write of its own.
    pub audit: Option<super::AuditRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIncoming {
    pub ticket_id: i64,
    pub detail_id: i64,
    pub created_ticket: bool,
    pub notice_ids: Vec<i64>,
}

/// An operator who may take tickets, and how busy they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorLoad {
    pub user: InternalUser,
    pub open_tickets: i64,
    pub last_assigned_at: Option<Timestamp>,
}

/// A mail as the reading channel posts it (serialisable: a held mail is
/// kept whole).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncomingMail {
    pub system: String,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub reply_to: Option<String>,
    pub body: String,
    pub html: String,
    pub date: Timestamp,
    pub headers: BTreeMap<String, String>,
    pub attachments: Vec<NewAttachment>,
    /// The mail account whose mailbox the mail was read from, when known
    /// (this workspace's reader); otherwise the account is the first To or
    /// Cc address that is an active account's.
    pub received_by: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inert_types_are_served_as_declared() {
        assert_eq!(served_type("image/PNG"), "image/png");
        assert_eq!(served_type("application/pdf; name=x.pdf"), "application/pdf");
        assert_eq!(served_type("text/plain; charset=\"UTF-8\""), "text/plain; charset=utf-8");
        assert_eq!(served_type("text/plain"), "text/plain");
        for hostile in [
            "text/html",
            "image/svg+xml",
            "application/javascript",
            "text/javascript",
            "application/xhtml+xml",
            "text/xml",
            "text/plain; charset=utf-7",
            "message/rfc822",
            "application/x-shockwave-flash",
            "",
            "nonsense",
        ] {
            assert_eq!(served_type(hostile), "application/octet-stream", "{hostile}");
        }
    }

    #[test]
    fn names_lose_bidirectional_and_control_characters() {
        assert_eq!(served_name("factura\u{202E}fdp.exe"), "facturafdp.exe");
        assert_eq!(served_name("a\u{2066}b\u{200F}c\u{0007}.txt"), "abc.txt");
        assert_eq!(served_name("año 2026.pdf"), "año 2026.pdf");
        assert_eq!(served_name("\u{202E}\u{0000} "), "adjunto");
    }
}
