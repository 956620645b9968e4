//! Working tickets: priorities, who wrote a message, thread events, the
//! list query and the changes an operator makes.

use super::{
    Attachment, NewNotice, NewTicketDetail, NewWebhookEvent, SlaClock, SlaState, Ticket, TicketDetail, TicketStatus,
    Timestamp,
};

/// `baja`, `normal`, `alta`, `urgente`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "baja",
            Priority::Normal => "normal",
            Priority::High => "alta",
            Priority::Urgent => "urgente",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Who wrote a message of the thread: the customer (`entrante`), an
/// operator's public reply (`saliente`), or an operator's internal note
/// (`nota`, never mailed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Incoming,
    Outgoing,
    Note,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "entrante",
            Direction::Outgoing => "saliente",
            Direction::Note => "nota",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Direction::Incoming, Direction::Outgoing, Direction::Note].into_iter().find(|d| d.as_str() == s)
    }
}

/// What a thread event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Status,
    Assignee,
    Department,
    Priority,
    /// Addresses of a mail that do not parse as addresses (`antes`: what
    /// was written), never made participants.
    ParticipantDropped,
    /// Addresses not made participants: past `ingest.max_new_participants`
    /// for a mail from outside the ticket (`antes`: the addresses).
    ParticipantsSkipped,
    /// A reply could not be delivered (`antes`: the recipient, `despues`:
    /// why).
    DeliveryFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "estado",
            EventKind::Assignee => "asignado",
            EventKind::Department => "departamento",
            EventKind::Priority => "prioridad",
            EventKind::ParticipantDropped => "participante_descartado",
            EventKind::ParticipantsSkipped => "participantes_omitidos",
            EventKind::DeliveryFailed => "entrega_fallida",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EventKind::Status,
            EventKind::Assignee,
            EventKind::Department,
            EventKind::Priority,
            EventKind::ParticipantDropped,
            EventKind::ParticipantsSkipped,
            EventKind::DeliveryFailed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One change of a ticket (`evento_ticket`): who, what, from, to, when.
/// Values are the wire forms (`cerrado`, a user id, `alta`); `None` is
/// "nobody" for an assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    pub id: i64,
    pub ticket_id: i64,
    /// The operator; `None` for the system (a customer's reply reopening).
    pub actor_id: Option<i64>,
    pub kind: EventKind,
    pub before: Option<String>,
    pub after: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicketEvent {
    pub actor_id: Option<i64>,
    pub kind: EventKind,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Whose tickets a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Nobody,
    User(i64),
}

/// The order of the ticket list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TicketOrder {
    /// Newest first (by id, descending).
    #[default]
    Newest,
    /// The nearest due time first (`ticket.proximo_vencimiento`, i.e.
    /// [`SlaClock::next_due`]), tickets without a running clock last; ties
    /// and the clockless by id, ascending (oldest first).
    NearestDue,
    /// The latest activity first (`ticket.updated_at`, descending), ties by
    /// id, descending: what an operator's queue shows.
    LatestActivity,
}

/// A page of the ticket list. `visible_department`, when set, confines the
/// list to that department (what the operator may see).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TicketQuery {
    pub status: Option<TicketStatus>,
    pub department_id: Option<i64>,
    pub visible_department: Option<i64>,
    pub assignee: AssigneeFilter,
    pub priority: Option<Priority>,
    /// Words to find in the subject or any message (full-text).
    pub text: Option<String>,
    /// Created at or after.
    pub from: Option<Timestamp>,
    /// Created at or before.
    pub until: Option<Timestamp>,
    /// Tickets whose service level is in this state at `now`
    /// ([`SlaClock::state`]); tickets without a clock never match.
    pub sla: Option<SlaState>,
    /// Only tickets whose running clock is past its next due time at `now`
    /// ([`SlaClock::next_due`]: what is overdue now; a target missed and
    /// met late, or a stopped clock, is not).
    pub overdue: bool,
    /// Tickets this address takes part in (`participante_ticket`).
    pub participant: Option<super::Address>,
    /// The instant `sla` is judged at.
    pub now: Timestamp,
    pub order: TicketOrder,
    /// [`TicketOrder::Newest`]: tickets with an id below this one (the
    /// keyset cursor).
    pub before_id: Option<i64>,
    /// [`TicketOrder::NearestDue`]: tickets after this `(next due, id)` in
    /// that order (the keyset cursor).
    pub after_due: Option<(Option<Timestamp>, i64)>,
    /// [`TicketOrder::LatestActivity`]: tickets before this `(last
    /// activity, id)` in that order (the keyset cursor).
    pub before_activity: Option<(Timestamp, i64)>,
    pub limit: i64,
}

/// A ticket with everything an operator reads: its messages in order with
/// their attachments, its events, and who takes part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketThread {
    pub ticket: Ticket,
    pub details: Vec<(TicketDetail, Vec<Attachment>)>,
    pub events: Vec<TicketEvent>,
    pub participants: Vec<String>,
    /// Each public reply's delivery, by its message's id.
    pub deliveries: std::collections::BTreeMap<i64, super::Delivery>,
}

impl TicketThread {
    /// What a page of this thread shows of the ticket, as
    /// [`thread_stamp`] reads it without the thread.
    pub fn stamp(&self) -> String {
        let marks = super::ActivityMarks {
            ticket: self.ticket.id,
            detail: self.details.iter().map(|(d, _)| d.id).max().unwrap_or(0),
            event: self.events.iter().map(|e| e.id).max().unwrap_or(0),
        };
        thread_stamp(&self.ticket, marks, &self.deliveries)
    }
}

/// A ticket's stamp: its row, its newest message and event, its replies'
/// deliveries; it moves with anything a page of it shows of the ticket.
pub fn thread_stamp(
    ticket: &super::Ticket,
    marks: super::ActivityMarks,
    deliveries: &std::collections::BTreeMap<i64, super::Delivery>,
) -> String {
    let mut stamp = format!("{ticket:?}|{marks:?}");
    for (detail, d) in deliveries {
        stamp.push_str(&format!("|{detail}:{d:?}"));
    }
    stamp
}

/// An operator's reply or note, written in one transaction with its
/// notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReply {
    pub ticket_id: i64,
    pub detail: NewTicketDetail,
    /// Addresses added by the reply (`cc`), who take part from now on.
    pub participants: Vec<String>,
    pub notices: Vec<NewNotice>,
    /// What subscribers of outgoing webhooks are told (`ticket.respuesta_operador`).
    pub webhook_events: Vec<NewWebhookEvent>,
    pub now: Timestamp,
    pub notices_due_at: Timestamp,
    /// The ticket's service-level clock as it becomes (the first response
    /// met); `None` leaves it. Stores keep an earlier `first_response_at`.
    pub sla: Option<SlaClock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    pub detail_id: i64,
    pub notice_ids: Vec<i64>,
}

/// The fields of a ticket an operator may change, as they are to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketFields {
    pub status: TicketStatus,
    pub assignee_id: Option<i64>,
    pub department_id: i64,
    pub priority: Priority,
}

impl TicketFields {
    pub fn of(t: &Ticket) -> Self {
        TicketFields {
            status: t.status,
            assignee_id: t.assignee_id,
            department_id: t.department_id,
            priority: t.priority,
        }
    }
}

/// A change applied only if the ticket still holds `expected` (else
/// [`crate::RepoError::Conflict`]): the open-ticket counts, the events and
/// the notices go with it, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketUpdate {
    pub ticket_id: i64,
    pub expected: TicketFields,
    pub new: TicketFields,
    pub events: Vec<NewTicketEvent>,
    /// Notices (the new assignee's), attached to the ticket's latest message.
    pub notices: Vec<NewNotice>,
    /// What subscribers of outgoing webhooks are told (`ticket.asignado`,
    /// `ticket.estado`).
    pub webhook_events: Vec<NewWebhookEvent>,
    pub now: Timestamp,
    /// The ticket's service-level clock as it becomes (stopped, running
    /// again, recomputed for a new policy); `None` leaves it. Stores keep an
    /// earlier `first_response_at`.
    pub sla: Option<SlaClock>,
}

/// The words of a text as full-text search sees them: lower-case, without
/// accents, split at anything not a letter or digit.
pub fn folded_words(text: &str) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = text
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// What a search for `text` ([`TicketQuery::text`]) looks for: its words
/// ([`folded_words`]) of three letters or more, each once, in order. A
/// ticket matches when its messages (subjects and bodies) hold every one of
/// them, in one message or spread over several; none at all matches
/// nothing. Only letters and digits remain, so nothing the user types
/// reaches a store as search syntax.
/// The longest word a store indexes (longer runs are hashes, encoded data,
/// not words anyone types).
pub const MAX_WORD_CHARS: usize = 64;
/// The most distinct words indexed per message.
pub const MAX_WORDS_PER_MESSAGE: usize = 2000;

/// The words a message adds to its ticket's search index: those of its
/// subject and body as [`search_words`] reads them, at most
/// [`MAX_WORD_CHARS`] long, at most [`MAX_WORDS_PER_MESSAGE`] of them.
pub fn message_words(subject: &str, body: &str) -> Vec<String> {
    let mut words = search_words(&format!("{subject}\n{body}"));
    words.retain(|w| w.chars().count() <= MAX_WORD_CHARS);
    words.truncate(MAX_WORDS_PER_MESSAGE);
    words
}

pub fn search_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in folded_words(text) {
        if w.chars().count() >= 3 && !words.contains(&w) {
            words.push(w);
        }
    }
    words
}
