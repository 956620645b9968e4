//! Working tickets: what operators list, read, answer and change.
//!
//! Rules (see docs/decisions.md, "Working tickets"):
//! - An operator sees the tickets of their own department; a `jefe` sees
//!   every department. A ticket out of sight answers as absent.
//! - A public reply is a `saliente` message mailed once, through the outbox,
//!   to the requester with the other participants in Cc, under a signed
//!   Message-ID that threads the customer's answer back; a note (`nota`) is
//!   stored and never mailed.
//! - A change (status, assignee, department, priority) is applied only if the
//!   ticket still holds what the operator's request was computed from;
//!   every changed field is a thread event; the open-ticket counts follow
//!   (a ticket counts while it is not closed); a new assignee is notified.

use std::sync::Arc;

use crate::crypto::sha256_hex;
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{Clock, TicketRepository, TicketWorkRepository, UserRepository};
use crate::services::{MessageIdSigner, addresses, bare_address};

/// The largest page of the ticket list.
pub const MAX_PAGE: i64 = 100;

/// How many times a change is recomputed when the ticket changed under it.
const CONFLICT_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// No such ticket, or not the operator's to see.
    #[error("ticket not found")]
    NotFound,
    /// No such attachment in this ticket.
    #[error("attachment not found")]
    AttachmentNotFound,
    /// The user may not work tickets at all (no department, not `jefe`).
    #[error("not an operator")]
    NotAnOperator,
    /// The new assignee is not an active operator of the department who
    /// takes tickets.
    #[error("invalid assignee")]
    InvalidAssignee,
    #[error("invalid department")]
    InvalidDepartment,
    /// Nothing to change.
    #[error("nothing to change")]
    NothingToChange,
    /// The ticket kept changing under the request.
    #[error("the ticket changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// The ports [`TicketService`] calls.
pub trait TicketPorts:
    TicketRepository + TicketWorkRepository + UserRepository + crate::ports::DepartmentRepository
{
}
impl<T: TicketRepository + TicketWorkRepository + UserRepository + crate::ports::DepartmentRepository> TicketPorts
    for T
{
}

/// Who works a ticket: an active internal user with a department, or a
/// `jefe` (who sees all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub user: InternalUser,
}

impl Operator {
    pub fn new(user: InternalUser) -> Result<Self, TicketError> {
        if !user.is_active() || (user.manager == 0 && user.department_id.is_none()) {
            return Err(TicketError::NotAnOperator);
        }
        Ok(Operator { user })
    }

    pub fn id(&self) -> i64 {
        self.user.id
    }

    pub fn sees_all(&self) -> bool {
        self.user.manager != 0
    }

    pub fn may_see(&self, ticket: &Ticket) -> bool {
        self.sees_all() || self.user.department_id == Some(ticket.department_id)
    }
}

/// The list as asked for (before the operator's confinement).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRequest {
    pub status: Option<TicketStatus>,
    pub department_id: Option<i64>,
    /// `None`: anyone; `Some(None)`: nobody; `Some(Some(id))`.
    pub assignee: AssigneeFilter,
    /// `asignado=yo`.
    pub assigned_to_me: bool,
    pub priority: Option<Priority>,
    pub text: Option<String>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// A page: the tickets, and where the next page starts (`None`: last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    pub next_before_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRequest {
    pub body: String,
    pub html: Option<String>,
    pub internal: bool,
    /// More addresses to copy (an address list).
    pub cc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyOutcome {
    pub detail_id: i64,
    /// Without angle brackets; for a note, the id it is stored under.
    pub message_id: String,
    pub notice_ids: Vec<i64>,
}

/// What an operator asks to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeRequest {
    pub status: Option<TicketStatus>,
    /// `Some(None)`: unassign.
    pub assignee: Option<Option<i64>>,
    pub department_id: Option<i64>,
    pub priority: Option<Priority>,
}

pub struct TicketService<R: TicketPorts> {
    repo: Arc<R>,
    ids: MessageIdSigner,
    clock: Arc<dyn Clock>,
    /// Whether assignees get Synology Chat bot messages.
    chat_to_users: bool,
    /// The worker leaves new notices alone this long (the request may try
    /// them first).
    first_attempt_grace: chrono::Duration,
}

impl<R: TicketPorts> TicketService<R> {
    pub fn new(
        repo: Arc<R>,
        ids: MessageIdSigner,
        clock: Arc<dyn Clock>,
        chat_to_users: bool,
        first_attempt_grace: chrono::Duration,
    ) -> Self {
        Self { repo, ids, clock, chat_to_users, first_attempt_grace }
    }

    /// A page of the tickets the operator may see, newest first.
    pub async fn list(&self, op: &Operator, req: ListRequest) -> Result<TicketPage, TicketError> {
        let limit = req.limit.clamp(1, MAX_PAGE);
        let visible_department = if op.sees_all() { None } else { op.user.department_id };
        let assignee = if req.assigned_to_me { AssigneeFilter::User(op.id()) } else { req.assignee };
        let query = TicketQuery {
            status: req.status,
            department_id: req.department_id,
            visible_department,
            assignee,
            priority: req.priority,
            text: req.text.filter(|t| !t.trim().is_empty()),
            from: req.from,
            until: req.until,
            before_id: req.before_id,
            // One more than asked: whether a next page exists.
            limit: limit + 1,
        };
        let mut tickets = self.repo.list_tickets(query).await?;
        let next_before_id = if tickets.len() as i64 > limit {
            tickets.truncate(limit as usize);
            tickets.last().map(|t| t.id)
        } else {
            None
        };
        Ok(TicketPage { tickets, next_before_id })
    }

    /// The ticket, if the operator may see it.
    async fn visible(&self, op: &Operator, ticket_id: i64) -> Result<Ticket, TicketError> {
        match self.repo.find_ticket(ticket_id).await? {
            Some(t) if op.may_see(&t) => Ok(t),
            _ => Err(TicketError::NotFound),
        }
    }

    /// The whole thread.
    pub async fn show(&self, op: &Operator, ticket_id: i64) -> Result<TicketThread, TicketError> {
        let ticket = self.visible(op, ticket_id).await?;
        let details = self.repo.details_of(ticket_id).await?;
        let mut attachments = self.repo.ticket_attachments(ticket_id).await?;
        let details = details
            .into_iter()
            .map(|d| {
                let (mine, rest): (Vec<_>, Vec<_>) = attachments.drain(..).partition(|a| a.detail_id == d.id);
                attachments = rest;
                (d, mine)
            })
            .collect();
        let events = self.repo.events_of(ticket_id).await?;
        let participants = self.repo.participants_of(ticket_id).await?;
        Ok(TicketThread { ticket, details, events, participants })
    }

    /// An attachment of a ticket the operator may see.
    pub async fn attachment(
        &self,
        op: &Operator,
        ticket_id: i64,
        attachment_id: i64,
    ) -> Result<Attachment, TicketError> {
        self.visible(op, ticket_id).await?;
        let attachment = self.repo.find_attachment(attachment_id).await?.ok_or(TicketError::AttachmentNotFound)?;
        let detail = self.repo.find_detail(attachment.detail_id).await?;
        match detail {
            Some(d) if d.ticket_id == ticket_id => Ok(attachment),
            _ => Err(TicketError::AttachmentNotFound),
        }
    }

    /// A public reply (mailed) or an internal note (never mailed).
    pub async fn reply(&self, op: &Operator, ticket_id: i64, req: ReplyRequest) -> Result<ReplyOutcome, TicketError> {
        let ticket = self.visible(op, ticket_id).await?;
        let now = self.clock.now();
        let message_id = self.ids.for_reply(ticket.id);
        let participants = self.repo.participants_of(ticket_id).await?;
        let extra_cc: Vec<String> = req.cc.as_deref().map(addresses).unwrap_or_default();
        let requester = ticket.requester.to_lowercase();
        let operator_address = bare_address(&op.user.email);
        // The requester in To; everyone else who takes part in Cc, except
        // the operator writing and the helpdesk's own mailboxes (those are
        // not participants).
        let mut cc: Vec<String> = Vec::new();
        for p in participants.iter().chain(extra_cc.iter()) {
            let p = p.to_lowercase();
            if p != requester && p != operator_address && !cc.contains(&p) {
                cc.push(p);
            }
        }
        let direction = if req.internal { Direction::Note } else { Direction::Outgoing };
        let subject = format!("Re: {}", ticket.subject);
        let detail = NewTicketDetail {
            dedupe_key: sha256_hex(format!("mid:{message_id}").as_bytes()),
            message_id_hash: Some(sha256_hex(message_id.as_bytes())),
            message_id: Some(message_id.clone()),
            from: op.user.email.clone(),
            to: if req.internal { String::new() } else { ticket.requester.clone() },
            cc: (!req.internal && !cc.is_empty()).then(|| cc.join(", ")),
            bcc: None,
            reply_to: None,
            subject,
            body: req.body,
            html: req.html.unwrap_or_default(),
            date: now,
            headers: Default::default(),
            automatic: false,
            direction,
            author_id: Some(op.id()),
        };
        let notices = if req.internal {
            Vec::new()
        } else {
            vec![NewNotice { kind: NoticeKind::Reply, recipient: ticket.requester.clone() }]
        };
        let reply = NewReply {
            ticket_id,
            detail,
            participants: if req.internal { Vec::new() } else { extra_cc },
            notices,
            now,
            notices_due_at: now + self.first_attempt_grace,
        };
        let stored = self.repo.store_reply(reply).await?;
        Ok(ReplyOutcome { detail_id: stored.detail_id, message_id, notice_ids: stored.notice_ids })
    }

    /// Changes status, assignee, department or priority; answers the ticket
    /// as it became.
    pub async fn change(&self, op: &Operator, ticket_id: i64, req: ChangeRequest) -> Result<Ticket, TicketError> {
        for _ in 0..CONFLICT_RETRIES {
            let ticket = self.visible(op, ticket_id).await?;
            let update = match self.plan(op, &ticket, req).await? {
                Some(update) => update,
                None => return Ok(ticket),
            };
            match self.repo.update_ticket(update).await {
                Ok(t) => return Ok(t),
                Err(RepoError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(TicketError::Conflict)
    }

    /// The update a request makes of the ticket as read; `None` when it
    /// changes nothing.
    async fn plan(
        &self,
        op: &Operator,
        ticket: &Ticket,
        req: ChangeRequest,
    ) -> Result<Option<TicketUpdate>, TicketError> {
        if req == ChangeRequest::default() {
            return Err(TicketError::NothingToChange);
        }
        let expected = TicketFields::of(ticket);
        let mut new = expected;
        if let Some(d) = req.department_id {
            let department = self.repo.find_department(d).await?;
            if !department.is_some_and(|d| d.status.is_active()) {
                return Err(TicketError::InvalidDepartment);
            }
            new.department_id = d;
        }
        if let Some(s) = req.status {
            new.status = s;
        }
        if let Some(p) = req.priority {
            new.priority = p;
        }
        let mut new_assignee: Option<InternalUser> = None;
        match req.assignee {
            Some(Some(user_id)) => {
                let user = self.repo.find_user(user_id).await?;
                let user = user
                    .filter(|u| u.is_active() && u.can_take_tickets && u.department_id == Some(new.department_id))
                    .ok_or(TicketError::InvalidAssignee)?;
                new.assignee_id = Some(user.id);
                new_assignee = Some(user);
            }
            Some(None) => new.assignee_id = None,
            // Moved to another department, the assignee goes unless they
            // belong to it too.
            None if new.department_id != expected.department_id => {
                if let Some(a) = expected.assignee_id {
                    let keeps =
                        self.repo.find_user(a).await?.is_some_and(|u| u.department_id == Some(new.department_id));
                    if !keeps {
                        new.assignee_id = None;
                    }
                }
            }
            None => {}
        }
        if new == expected {
            return Ok(None);
        }
        let actor = Some(op.id());
        let mut events = Vec::new();
        let mut event = |kind, before: Option<String>, after: Option<String>| {
            events.push(NewTicketEvent { actor_id: actor, kind, before, after })
        };
        if new.status != expected.status {
            event(EventKind::Status, Some(expected.status.as_str().into()), Some(new.status.as_str().into()));
        }
        if new.assignee_id != expected.assignee_id {
            event(
                EventKind::Assignee,
                expected.assignee_id.map(|a| a.to_string()),
                new.assignee_id.map(|a| a.to_string()),
            );
        }
        if new.department_id != expected.department_id {
            event(EventKind::Department, Some(expected.department_id.to_string()), Some(new.department_id.to_string()));
        }
        if new.priority != expected.priority {
            event(EventKind::Priority, Some(expected.priority.as_str().into()), Some(new.priority.as_str().into()));
        }
        let mut notices = Vec::new();
        if let Some(user) = new_assignee.filter(|u| Some(u.id) != expected.assignee_id && u.id != op.id()) {
            if let Some(sid) = user.synology_id.filter(|_| self.chat_to_users) {
                notices.push(NewNotice { kind: NoticeKind::AssignedChat, recipient: sid.to_string() });
            }
            notices.push(NewNotice { kind: NoticeKind::AssignedMail, recipient: user.email.clone() });
        }
        Ok(Some(TicketUpdate { ticket_id: ticket.id, expected, new, events, notices, now: self.clock.now() }))
    }
}
