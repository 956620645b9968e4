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
//! - Outgoing webhooks are told of a public reply
//!   (`ticket.respuesta_operador`), of a new assignee (`ticket.asignado`) and
//!   of a new status (`ticket.estado`), in the transaction of the change.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::RepoError;
use crate::model::*;
use crate::ports::{Clock, SlaRepository, TicketRepository, TicketWorkRepository, UserRepository};
use crate::services::cache::TtlCache;
use crate::services::{MessageIdSigner, OwnAddresses, SlaBook, bare_address, least_loaded};

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
    /// A reply or note without text, or longer than [`MAX_REPLY_CHARS`].
    #[error("a reply needs 1 to {MAX_REPLY_CHARS} characters")]
    InvalidReply,
    /// The ticket kept changing under the request.
    #[error("the ticket changed meanwhile")]
    Conflict,
    /// Messages by someone else arrived after the last one the operator's
    /// page showed: the reply was not stored.
    #[error("{0} newer message(s) since the operator's page")]
    NewerMessages(usize),
    /// Someone else changed these fields since the operator's page showed
    /// them: nothing was changed.
    #[error("changed meanwhile by someone else: {0:?}")]
    ChangedMeanwhile(Vec<EventKind>),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// Longest reply or note, in characters (the API's `cuerpo` rule too).
pub const MAX_REPLY_CHARS: usize = 100_000;

/// The ports [`TicketService`] calls.
pub trait TicketPorts:
    TicketRepository
    + TicketWorkRepository
    + UserRepository
    + crate::ports::DepartmentRepository
    + SlaRepository
    + crate::ports::MailAccountRepository
    + crate::ports::OutboxRepository
{
}
impl<
    T: TicketRepository
        + TicketWorkRepository
        + UserRepository
        + crate::ports::DepartmentRepository
        + SlaRepository
        + crate::ports::MailAccountRepository
        + crate::ports::OutboxRepository,
> TicketPorts for T
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
    /// Only tickets whose service level is in this state now.
    pub sla: Option<SlaState>,
    /// Only tickets overdue now (a running clock past its next due time).
    pub overdue: bool,
    /// Only tickets this address takes part in.
    pub participant: Option<Address>,
    pub order: TicketOrder,
    /// Where the page starts (from the previous page, in the same order).
    pub cursor: Option<TicketCursor>,
    pub limit: i64,
}

/// Where a page of the list starts: after the last ticket of the previous
/// one, in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketCursor {
    /// [`TicketOrder::Newest`]: ids below this.
    Before(i64),
    /// [`TicketOrder::NearestDue`]: after this `(next due, id)`.
    AfterDue(Option<Timestamp>, i64),
    /// [`TicketOrder::LatestActivity`]: before this `(last activity, id)`.
    BeforeActivity(Timestamp, i64),
}

const CURSOR_TIME: &str = "%Y%m%d%H%M%S%.6f";

impl TicketCursor {
    /// Opaque to clients: base64url of `antes:<id>` (newest first),
    /// `vence:<due or ->:<id>` (nearest due first) or `act:<time>:<id>`
    /// (latest activity first), after the last ticket shown.
    pub fn encode(self) -> String {
        use base64::Engine;
        let time = |t: Timestamp| t.format(CURSOR_TIME).to_string();
        let text = match self {
            TicketCursor::Before(id) => format!("antes:{id}"),
            TicketCursor::AfterDue(due, id) => format!("vence:{}:{id}", due.map(time).unwrap_or("-".into())),
            TicketCursor::BeforeActivity(at, id) => format!("act:{}:{id}", time(at)),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    /// The cursor `text` encodes, if it is one of `order`'s.
    pub fn decode(text: &str, order: TicketOrder) -> Option<TicketCursor> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let id = |s: &str| s.parse().ok().filter(|id: &i64| *id > 0);
        let time = |s: &str| chrono::NaiveDateTime::parse_from_str(s, CURSOR_TIME).ok();
        match order {
            TicketOrder::Newest => Some(TicketCursor::Before(id(text.strip_prefix("antes:")?)?)),
            TicketOrder::NearestDue => {
                let (due, last) = text.strip_prefix("vence:")?.rsplit_once(':')?;
                let due = match due {
                    "-" => None,
                    d => Some(time(d)?),
                };
                Some(TicketCursor::AfterDue(due, id(last)?))
            }
            TicketOrder::LatestActivity => {
                let (at, last) = text.strip_prefix("act:")?.rsplit_once(':')?;
                Some(TicketCursor::BeforeActivity(time(at)?, id(last)?))
            }
        }
    }
}

/// A page: the tickets, and where the next page starts (`None`: last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    pub next: Option<TicketCursor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRequest {
    pub body: String,
    pub html: Option<String>,
    pub internal: bool,
    /// More addresses to copy (an address list).
    pub cc: Option<String>,
    /// The last message the operator's page showed: a newer one by someone
    /// else holds the reply ([`TicketError::NewerMessages`]). `None`: no
    /// check (the API).
    pub seen_last: Option<i64>,
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
    sla: SlaBook<R>,
    own: OwnAddresses,
    /// Counts kept this long (`None`: never kept), by query.
    counts: Option<TtlCache<TicketQuery, i64>>,
}

impl<R: TicketPorts> TicketService<R> {
    /// `setup_cache`: how long the service-level policies are kept in memory.
    pub fn new(
        repo: Arc<R>,
        ids: MessageIdSigner,
        clock: Arc<dyn Clock>,
        chat_to_users: bool,
        setup_cache: std::time::Duration,
    ) -> Self {
        let sla = SlaBook::new(repo.clone(), clock.clone(), setup_cache);
        let own = OwnAddresses::new(Vec::new(), setup_cache);
        Self { repo, ids, clock, chat_to_users, sla, own, counts: None }
    }

    /// Keeps each count of [`Self::count`] for `ttl` (a searched text is
    /// never kept): a view's count read by every page of a team, and by
    /// pages that refresh themselves, costs one query per `ttl`. Zero: none
    /// kept.
    pub fn with_count_cache(mut self, ttl: std::time::Duration) -> Self {
        self.counts = (!ttl.is_zero()).then(|| TtlCache::new(ttl));
        self
    }

    /// Our addresses besides the mailboxes (the SMTP sender,
    /// `mail.own_addresses`): never copied on a reply.
    pub fn with_own_addresses(mut self, own: OwnAddresses) -> Self {
        self.own = own;
        self
    }

    /// A page of the tickets the operator may see, newest first.
    pub async fn list(&self, op: &Operator, req: ListRequest) -> Result<TicketPage, TicketError> {
        let limit = req.limit.clamp(1, MAX_PAGE);
        let order = req.order;
        // One more than asked: whether a next page exists.
        let query = self.query(op, req, limit + 1);
        let mut tickets = self.repo.list_tickets(query).await?;
        let next = if tickets.len() as i64 > limit {
            tickets.truncate(limit as usize);
            tickets.last().map(|t| match order {
                TicketOrder::Newest => TicketCursor::Before(t.id),
                TicketOrder::NearestDue => TicketCursor::AfterDue(t.sla.and_then(|c| c.next_due()), t.id),
                TicketOrder::LatestActivity => TicketCursor::BeforeActivity(t.updated_at, t.id),
            })
        } else {
            None
        };
        Ok(TicketPage { tickets, next })
    }

    /// How many tickets the operator may see match `req` (its cursor and
    /// limit ignored), counted up to `cap`; as counted up to the count
    /// cache's lifetime ago when there is one ([`Self::with_count_cache`]).
    pub async fn count(&self, op: &Operator, req: ListRequest, cap: i64) -> Result<i64, TicketError> {
        let req = ListRequest { cursor: None, ..req };
        let query = self.query(op, req, cap.max(0));
        match &self.counts {
            Some(cache) if query.text.is_none() => {
                // The same query whenever it is asked: `now` only moves the
                // service-level states, which the lifetime bounds too.
                let key = TicketQuery { now: Timestamp::default(), ..query.clone() };
                let load = || self.repo.count_tickets(query);
                Ok(cache.get_or_load(key, self.clock.now(), load, |_| true).await?)
            }
            _ => Ok(self.repo.count_tickets(query).await?),
        }
    }

    /// The store's query for `req`, confined to what the operator may see.
    fn query(&self, op: &Operator, req: ListRequest, limit: i64) -> TicketQuery {
        let visible_department = if op.sees_all() { None } else { op.user.department_id };
        let assignee = if req.assigned_to_me { AssigneeFilter::User(op.id()) } else { req.assignee };
        TicketQuery {
            status: req.status,
            department_id: req.department_id,
            visible_department,
            assignee,
            priority: req.priority,
            text: req.text.filter(|t| !t.trim().is_empty()),
            from: req.from,
            until: req.until,
            sla: req.sla,
            overdue: req.overdue,
            participant: req.participant,
            now: self.clock.now(),
            order: req.order,
            before_id: match req.cursor {
                Some(TicketCursor::Before(id)) => Some(id),
                _ => None,
            },
            after_due: match req.cursor {
                Some(TicketCursor::AfterDue(due, id)) => Some((due, id)),
                _ => None,
            },
            before_activity: match req.cursor {
                Some(TicketCursor::BeforeActivity(at, id)) => Some((at, id)),
                _ => None,
            },
            limit,
        }
    }

    /// The requester's other tickets the operator may see (those their
    /// address takes part in), the latest activity first, at most `limit`.
    pub async fn requesters_others(
        &self,
        op: &Operator,
        ticket: &Ticket,
        limit: i64,
    ) -> Result<Vec<Ticket>, TicketError> {
        let Some(requester) = Address::parse(&ticket.requester) else { return Ok(Vec::new()) };
        let req = ListRequest {
            participant: Some(requester),
            order: TicketOrder::LatestActivity,
            limit: limit + 1,
            ..ListRequest::default()
        };
        let mut others = self.list(op, req).await?.tickets;
        others.retain(|t| t.id != ticket.id);
        others.truncate(limit.max(0) as usize);
        Ok(others)
    }

    /// The zone the operator reads times in: their department's calendar's
    /// (a lead without a department: the default calendar's).
    pub async fn zone_of(&self, op: &Operator) -> Result<chrono_tz::Tz, TicketError> {
        Ok(self.sla.setup().await?.zone_of(op.user.department_id))
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
        let deliveries = self.deliveries(ticket_id).await?;
        Ok(TicketThread { ticket, details, events, participants, deliveries })
    }

    /// Each public reply's delivery, by its message's id.
    async fn deliveries(&self, ticket_id: i64) -> Result<BTreeMap<i64, Delivery>, TicketError> {
        let notices = self.repo.notices_of_ticket(ticket_id).await?;
        Ok(notices.iter().filter(|n| n.kind == NoticeKind::Reply).map(|n| (n.detail_id, Delivery::of(n))).collect())
    }

    /// The newest rows of all tickets: what the queue's pages show of the
    /// tickets changes only after they move (or as time passes).
    pub async fn activity_stamp(&self) -> Result<ActivityMarks, TicketError> {
        Ok(self.repo.activity_marks(None).await?)
    }

    /// What a ticket's page shows of the ticket changes only when this
    /// text does (the same as [`TicketThread::stamp`] of [`show`](Self::show)):
    /// its row, its newest message and event, its replies' deliveries.
    /// Three reads where `show` makes six; `NotFound` as there.
    pub async fn thread_stamp(&self, op: &Operator, ticket_id: i64) -> Result<String, TicketError> {
        let ticket = self.visible(op, ticket_id).await?;
        let marks = self.repo.activity_marks(Some(ticket_id)).await?;
        Ok(thread_stamp(&ticket, marks, &self.deliveries(ticket_id).await?))
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
        if req.body.trim().is_empty() || req.body.chars().count() > MAX_REPLY_CHARS {
            return Err(TicketError::InvalidReply);
        }
        let ticket = self.visible(op, ticket_id).await?;
        if let Some(seen) = req.seen_last {
            let details = self.repo.details_of(ticket_id).await?;
            let newer = details.iter().filter(|d| d.id > seen && d.author_id != Some(op.id())).count();
            if newer > 0 {
                return Err(TicketError::NewerMessages(newer));
            }
        }
        let now = self.clock.now();
        let message_id = self.ids.for_reply(ticket.id);
        let participants = self.repo.participants_of(ticket_id).await?;
        let own = self.own.load(&*self.repo, now).await?;
        // Our own addresses take no copy; an address that does not parse
        // (stored by older versions) is passed over, never the reason a
        // reply to the requester fails.
        let extra_cc: Vec<String> = req
            .cc
            .as_deref()
            .map(|cc| Address::list(cc).valid)
            .unwrap_or_default()
            .into_iter()
            .filter(|a| !own.contains(a.as_str()))
            .map(|a| a.to_string())
            .collect();
        let requester = ticket.requester.to_lowercase();
        // The requester in To; everyone else who takes part in Cc, except
        // the helpdesk's own people (the assignee takes part too): an
        // internal address is not for the customer to see.
        let mut cc: Vec<String> = Vec::new();
        for p in participants.iter().chain(extra_cc.iter()) {
            let Some(p) = Address::parse_bare(p.trim()).map(|a| a.to_string()) else { continue };
            if p == requester || cc.contains(&p) || p == bare_address(&op.user.email) || own.contains(&p) {
                continue;
            }
            let internal = UserFilter { email: Some(p.clone()), ..Default::default() };
            if self.repo.find_users(internal).await?.is_empty() {
                cc.push(p);
            }
        }
        let direction = if req.internal { Direction::Note } else { Direction::Outgoing };
        let subject = format!("Re: {}", ticket.subject);
        let detail = NewTicketDetail {
            dedupe_key: message_id.dedupe_key(),
            message_id_hash: Some(message_id.hash()),
            message_id: Some(message_id.as_str().to_string()),
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
        let (notices, webhook_events) = if req.internal {
            (Vec::new(), Vec::new())
        } else {
            let message = EventMessage::new(Direction::Outgoing, &detail.from, &detail.body, false);
            let announced = self.event_ticket(&ticket, TicketFields::of(&ticket)).await?;
            let event = NewWebhookEvent::new(WebhookEventKind::OperatorReply, announced, now)
                .with_message(message)
                .with_actor(Some(EventPerson::of(&op.user)));
            (vec![NewNotice { kind: NoticeKind::Reply, recipient: ticket.requester.clone() }], vec![event])
        };
        let reply = NewReply {
            ticket_id,
            detail,
            participants: if req.internal { Vec::new() } else { extra_cc },
            notices,
            webhook_events,
            now,
            // No attempt from the request: the worker sends it at once.
            notices_due_at: now,
            // A public reply meets the first-response target.
            sla: ticket.sla.filter(|c| !req.internal && c.first_response_at.is_none()).map(|c| c.responded(now)),
        };
        let stored = self.repo.store_reply(reply).await?;
        Ok(ReplyOutcome {
            detail_id: stored.detail_id,
            message_id: message_id.to_string(),
            notice_ids: stored.notice_ids,
        })
    }

    /// Changes status, assignee, department or priority; answers the ticket
    /// as it became.
    pub async fn change(&self, op: &Operator, ticket_id: i64, req: ChangeRequest) -> Result<Ticket, TicketError> {
        for _ in 0..CONFLICT_RETRIES {
            let ticket = self.visible(op, ticket_id).await?;
            let update = match self.plan(Some(&op.user), &ticket, req).await? {
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

    /// A change from a page that showed the ticket's fields as `seen`: the
    /// fields the operator set apart from `seen` change; the others stay as
    /// they are now (a stale page reverts nobody's change). A field the
    /// operator changes that someone else changed since is refused
    /// ([`TicketError::ChangedMeanwhile`], nothing written) unless it already
    /// holds what the operator wants.
    pub async fn change_seen(
        &self,
        op: &Operator,
        ticket_id: i64,
        seen: TicketFields,
        wanted: TicketFields,
    ) -> Result<Ticket, TicketError> {
        let now = TicketFields::of(&self.visible(op, ticket_id).await?);
        let mut clashes = Vec::new();
        let mut req = ChangeRequest::default();
        // Per field: whether the operator changes it, whether it already
        // holds what they want, whether someone else changed it meanwhile.
        fn compare<T: PartialEq>(seen: T, wanted: T, now: T) -> (bool, bool, bool) {
            (wanted != seen, now == wanted, now != seen)
        }
        let mut field = |kind: EventKind, (asked, done, clash): (bool, bool, bool)| {
            if clash && asked && !done {
                clashes.push(kind);
            }
            asked && !done && !clash
        };
        if field(EventKind::Status, compare(seen.status, wanted.status, now.status)) {
            req.status = Some(wanted.status);
        }
        if field(EventKind::Assignee, compare(seen.assignee_id, wanted.assignee_id, now.assignee_id)) {
            req.assignee = Some(wanted.assignee_id);
        }
        if field(EventKind::Department, compare(seen.department_id, wanted.department_id, now.department_id)) {
            req.department_id = Some(wanted.department_id);
        }
        if field(EventKind::Priority, compare(seen.priority, wanted.priority, now.priority)) {
            req.priority = Some(wanted.priority);
        }
        if !clashes.is_empty() {
            return Err(TicketError::ChangedMeanwhile(clashes));
        }
        if req == ChangeRequest::default() {
            return Err(TicketError::NothingToChange);
        }
        self.change(op, ticket_id, req).await
    }

    /// The update a request makes of the ticket as read, by `actor` (`None`:
    /// the system); `None` when it changes nothing.
    async fn plan(
        &self,
        actor: Option<&InternalUser>,
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
        let actor_id = actor.map(|a| a.id);
        let mut events = Vec::new();
        let mut event = |kind, before: Option<String>, after: Option<String>| {
            events.push(NewTicketEvent { actor_id, kind, before, after })
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
        if let Some(user) = new_assignee.filter(|u| Some(u.id) != expected.assignee_id && Some(u.id) != actor_id) {
            if let Some(sid) = user.synology_id.filter(|_| self.chat_to_users) {
                notices.push(NewNotice { kind: NoticeKind::AssignedChat, recipient: sid.to_string() });
            }
            notices.push(NewNotice { kind: NoticeKind::AssignedMail, recipient: user.email.clone() });
        }
        let now = self.clock.now();
        let mut webhook_events = Vec::new();
        if new.status != expected.status || new.assignee_id != expected.assignee_id {
            let announced = self.event_ticket(ticket, new).await?;
            let event = |kind, change| {
                NewWebhookEvent::new(kind, announced.clone(), now)
                    .with_change(change)
                    .with_actor(actor.map(EventPerson::of))
            };
            if new.assignee_id != expected.assignee_id {
                let change = EventChange::Assignee { from: expected.assignee_id, to: new.assignee_id };
                webhook_events.push(event(WebhookEventKind::Assigned, change));
            }
            if new.status != expected.status {
                let change = EventChange::Status { from: expected.status, to: new.status };
                webhook_events.push(event(WebhookEventKind::StatusChanged, change));
            }
        }
        let sla = self.sla.after_change(ticket, new, now).await?;
        Ok(Some(TicketUpdate { ticket_id: ticket.id, expected, new, events, notices, webhook_events, now, sla }))
    }

    /// Assigns waiting tickets (open or pending, nobody's) of every active
    /// department to whoever takes tickets there now, the nearest due first,
    /// at most `limit`; returns the tickets assigned. Run by the worker, so
    /// an operator who becomes available (activated, or `acceso_ticket`
    /// switched on) gets the tickets that arrived while nobody could.
    pub async fn assign_waiting(&self, limit: i64) -> Result<Vec<i64>, TicketError> {
        let mut assigned = Vec::new();
        for department in self.repo.list_departments().await? {
            if !department.status.is_active() || (assigned.len() as i64) >= limit {
                continue;
            }
            if self.repo.operator_loads(department.id).await?.is_empty() {
                continue;
            }
            // Open ones first, then those waiting on the customer (closed
            // ones stay with nobody).
            for status in [TicketStatus::Open, TicketStatus::Pending] {
                let query = TicketQuery {
                    status: Some(status),
                    department_id: Some(department.id),
                    assignee: AssigneeFilter::Nobody,
                    order: TicketOrder::NearestDue,
                    now: self.clock.now(),
                    limit: limit - assigned.len() as i64,
                    ..Default::default()
                };
                if query.limit <= 0 {
                    break;
                }
                for ticket in self.repo.list_tickets(query).await? {
                    if self.reassign(&ticket, None).await? {
                        assigned.push(ticket.id);
                    }
                }
            }
        }
        Ok(assigned)
    }

    /// The open tickets of an operator who no longer works (deactivated):
    /// each to the least-loaded other operator of its department, or to
    /// nobody (then [`Self::assign_waiting`] places it later). Returns how
    /// many moved.
    pub async fn release(&self, user_id: i64) -> Result<usize, TicketError> {
        let mut moved = 0;
        let mut before_id = None;
        loop {
            let query = TicketQuery {
                assignee: AssigneeFilter::User(user_id),
                now: self.clock.now(),
                before_id,
                limit: MAX_PAGE,
                ..Default::default()
            };
            let page = self.repo.list_tickets(query).await?;
            let Some(last) = page.last() else { break };
            before_id = Some(last.id);
            for ticket in page.iter().filter(|t| t.status.is_open()) {
                if self.reassign(ticket, Some(user_id)).await? {
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    /// Gives `ticket` to the least-loaded operator of its department other
    /// than `leaving` (nobody when there is none and `leaving` holds it);
    /// `false` when nothing changed (it changed meanwhile, or nobody takes it).
    async fn reassign(&self, ticket: &Ticket, leaving: Option<i64>) -> Result<bool, TicketError> {
        let loads = self.repo.operator_loads(ticket.department_id).await?;
        let next = least_loaded(loads.into_iter().filter(|l| Some(l.user.id) != leaving).collect());
        let req = ChangeRequest { assignee: Some(next.map(|u| u.id)), ..Default::default() };
        if req.assignee == Some(ticket.assignee_id) {
            return Ok(false);
        }
        let Some(update) = self.plan(None, ticket, req).await? else { return Ok(false) };
        match self.repo.update_ticket(update).await {
            Ok(_) => Ok(true),
            // Someone changed it meanwhile: theirs stands.
            Err(RepoError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The ticket as outgoing webhooks describe it, with `fields`.
    async fn event_ticket(&self, ticket: &Ticket, fields: TicketFields) -> Result<EventTicket, TicketError> {
        let department = self.repo.find_department(fields.department_id).await?.map(|d| d.name).unwrap_or_default();
        let assignee = match fields.assignee_id {
            Some(id) => self.repo.find_user(id).await?.map(|u| EventPerson::of(&u)),
            None => None,
        };
        Ok(EventTicket {
            subject: ticket.subject.clone(),
            status: fields.status,
            priority: fields.priority,
            department_id: fields.department_id,
            department,
            assignee,
            requester: ticket.requester.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretHasher;
    use crate::ports::{DepartmentRepository, OutboxRepository};
    use crate::testing::contract::{new_incoming, sample_user};
    use crate::testing::{InMemoryStore, ManualClock};

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        use base64::Engine;
        let (newest, due, activity) = (TicketOrder::Newest, TicketOrder::NearestDue, TicketOrder::LatestActivity);
        let before = TicketCursor::Before(4821);
        assert_eq!(TicketCursor::decode(&before.encode(), newest), Some(before));
        for bad in ["", "xyz", "YW50ZXM6", "YW50ZXM6LTE", "!!!"] {
            assert_eq!(TicketCursor::decode(bad, newest), None, "{bad}");
        }
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap().and_hms_micro_opt(15, 0, 0, 123_456).unwrap();
        for c in [TicketCursor::AfterDue(Some(at), 7), TicketCursor::AfterDue(None, 9)] {
            assert_eq!(TicketCursor::decode(&c.encode(), due), Some(c));
            assert_eq!(TicketCursor::decode(&c.encode(), newest), None, "a cursor of another order");
            assert_eq!(TicketCursor::decode(&c.encode(), activity), None, "a cursor of another order");
        }
        let latest = TicketCursor::BeforeActivity(at, 12);
        assert_eq!(TicketCursor::decode(&latest.encode(), activity), Some(latest));
        assert_eq!(TicketCursor::decode(&latest.encode(), due), None, "a cursor of another order");
        assert_eq!(TicketCursor::decode(&before.encode(), due), None, "a cursor of another order");
        let b64 = |t: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
        for bad in ["vence:-", "vence:ayer:3", "vence:-:0", "vence::3"] {
            assert_eq!(TicketCursor::decode(&b64(bad), due), None, "{bad}");
        }
        for bad in ["act:-:3", "act:20261201150000.000000:0", "act::3", "act:20261201150000.000000"] {
            assert_eq!(TicketCursor::decode(&b64(bad), activity), None, "{bad}");
        }
    }

    struct Fixture {
        store: Arc<InMemoryStore>,
        svc: TicketService<InMemoryStore>,
        support: i64,
        sales: i64,
        ana: Operator,
        carla: InternalUser,
        beto: Operator,
        ticket: i64,
    }

    async fn fixture() -> Fixture {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(crate::ports::SystemClock.now()));
        let ids = MessageIdSigner::new(SecretHasher::new([3; 32]), "helpdesk.test");
        let svc = TicketService::new(store.clone(), ids, clock.clone(), true, std::time::Duration::ZERO);
        let dep = |name: &str| NewDepartment { name: name.into(), synology_channel: None };
        let support = store.create_department(dep("Soporte")).await.unwrap().id;
        let sales = store.create_department(dep("Ventas")).await.unwrap().id;
        let ana = store.create_user(sample_user("ana", "ana@helpdesk.test", Some(support))).await.unwrap();
        let mut carla = sample_user("carla", "carla@helpdesk.test", Some(support));
        carla.synology_id = Some(77);
        let carla = store.create_user(carla).await.unwrap();
        let beto = store.create_user(sample_user("beto", "beto@helpdesk.test", Some(sales))).await.unwrap();
        let stored = store.store_incoming(new_incoming(support, Some(ana.id), "m1", "cliente@cliente.test")).await;
        Fixture {
            svc,
            support,
            sales,
            ana: Operator::new(ana).unwrap(),
            carla,
            beto: Operator::new(beto).unwrap(),
            ticket: stored.unwrap().ticket_id,
            store,
        }
    }

    /// Counts kept for the cache's lifetime, per query and operator's
    /// sight; a search is never kept; none kept without a cache.
    #[tokio::test]
    async fn counts_are_kept_for_the_caches_lifetime() {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(crate::ports::SystemClock.now()));
        let ids = MessageIdSigner::new(SecretHasher::new([3; 32]), "helpdesk.test");
        let new = |ttl| {
            TicketService::new(store.clone(), ids.clone(), clock.clone(), true, std::time::Duration::ZERO)
                .with_count_cache(ttl)
        };
        let (kept, fresh) = (new(std::time::Duration::from_secs(2)), new(std::time::Duration::ZERO));
        let support = store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None });
        let support = support.await.unwrap().id;
        let ana = store.create_user(sample_user("ana", "ana@helpdesk.test", Some(support))).await.unwrap();
        let ana = Operator::new(ana).unwrap();
        let open = || ListRequest { status: Some(TicketStatus::Open), ..ListRequest::default() };
        let search = || ListRequest { text: Some("mensaje".into()), ..ListRequest::default() };
        let mail = |key: &str| new_incoming(support, None, key, "cliente@cliente.test");
        store.store_incoming(mail("c1")).await.unwrap();
        assert_eq!(kept.count(&ana, open(), 1000).await.unwrap(), 1);
        assert_eq!(kept.count(&ana, search(), 1000).await.unwrap(), 1);
        store.store_incoming(mail("c2")).await.unwrap();
        assert_eq!(kept.count(&ana, open(), 1000).await.unwrap(), 1, "kept");
        assert_eq!(kept.count(&ana, open(), 5).await.unwrap(), 2, "another cap, another query");
        assert_eq!(kept.count(&ana, search(), 1000).await.unwrap(), 2, "a search is not kept");
        assert_eq!(fresh.count(&ana, open(), 1000).await.unwrap(), 2, "no cache");
        clock.advance(chrono::Duration::seconds(3));
        assert_eq!(kept.count(&ana, open(), 1000).await.unwrap(), 2, "the lifetime is over");
    }

    /// A reply from a page that did not show the customer's newest message
    /// is held (nothing stored); the operator's own later messages hold
    /// nothing; without a page (the API) nothing is checked.
    #[tokio::test]
    async fn a_reply_after_a_newer_message_is_held() {
        let f = fixture().await;
        let first = f.store.details_of(f.ticket).await.unwrap()[0].id;
        let mut more = new_incoming(f.support, None, "m2", "cliente@cliente.test");
        more.target = IncomingTarget::Existing { ticket_id: f.ticket, reopen: false, sla: None };
        let newer = f.store.store_incoming(more).await.unwrap().detail_id;
        let reply = |seen_last| ReplyRequest { body: "Hola".into(), html: None, internal: false, cc: None, seen_last };
        let held = f.svc.reply(&f.ana, f.ticket, reply(Some(first))).await;
        assert!(matches!(held, Err(TicketError::NewerMessages(1))), "{held:?}");
        assert_eq!(f.store.details_of(f.ticket).await.unwrap().len(), 2, "nothing stored");
        f.svc.reply(&f.ana, f.ticket, reply(Some(newer))).await.unwrap();
        f.svc.reply(&f.ana, f.ticket, reply(Some(newer))).await.expect("her own reply holds nothing");
        let carla = Operator::new(f.carla.clone()).unwrap();
        let held = f.svc.reply(&carla, f.ticket, reply(Some(newer))).await;
        assert!(matches!(held, Err(TicketError::NewerMessages(2))), "another operator's replies: {held:?}");
        f.svc.reply(&carla, f.ticket, reply(None)).await.expect("no page, no check");
    }

    /// A change from a stale page changes what its operator changed and
    /// leaves what someone else changed meanwhile; changing that too is
    /// refused, nothing written.
    /// The stamp a ticket's live updates read is the one its page showed,
    /// and moves with a reply, its delivery and a change.
    #[tokio::test]
    async fn a_threads_stamp_is_read_as_its_page_shows_it_and_moves_with_it() {
        let f = fixture().await;
        let stamps = async || {
            let read = f.svc.thread_stamp(&f.ana, f.ticket).await.unwrap();
            assert_eq!(read, f.svc.show(&f.ana, f.ticket).await.unwrap().stamp(), "read as shown");
            read
        };
        let first = stamps().await;
        let req = ReplyRequest { body: "Hola".into(), html: None, internal: false, cc: None, seen_last: None };
        let out = f.svc.reply(&f.ana, f.ticket, req).await.unwrap();
        let replied = stamps().await;
        assert_ne!(replied, first);
        let notice = f.store.notices_of_detail(out.detail_id).await.unwrap()[0].id;
        let now = f.store.find_ticket(f.ticket).await.unwrap().unwrap().updated_at;
        let sent = AttemptOutcome::Sent { result: "250 ok".into() };
        f.store.record_attempt(notice, now, sent).await.unwrap();
        let delivered = stamps().await;
        assert_ne!(delivered, replied, "the delivery");
        let high = ChangeRequest { priority: Some(Priority::High), ..ChangeRequest::default() };
        f.svc.change(&f.ana, f.ticket, high).await.unwrap();
        assert_ne!(stamps().await, delivered, "the change");
        assert!(matches!(f.svc.thread_stamp(&f.beto, f.ticket).await, Err(TicketError::NotFound)), "as show");
    }

    #[tokio::test]
    async fn a_stale_page_changes_only_what_its_operator_changed() {
        let f = fixture().await;
        let carla = Operator::new(f.carla.clone()).unwrap();
        let seen = TicketFields::of(&f.store.find_ticket(f.ticket).await.unwrap().unwrap());
        let high = ChangeRequest { priority: Some(Priority::High), ..ChangeRequest::default() };
        f.svc.change(&carla, f.ticket, high).await.unwrap();
        let pending = TicketFields { status: TicketStatus::Pending, ..seen };
        let t = f.svc.change_seen(&f.ana, f.ticket, seen, pending).await.unwrap();
        assert_eq!((t.status, t.priority), (TicketStatus::Pending, Priority::High), "carla's priority stays");
        let low = TicketFields { priority: Priority::Low, ..seen };
        let clash = f.svc.change_seen(&f.ana, f.ticket, seen, low).await;
        assert!(
            matches!(&clash, Err(TicketError::ChangedMeanwhile(k)) if k == &vec![EventKind::Priority]),
            "{clash:?}"
        );
        let t = f.store.find_ticket(f.ticket).await.unwrap().unwrap();
        assert_eq!((t.status, t.priority), (TicketStatus::Pending, Priority::High), "nothing written");
        let same = TicketFields { priority: Priority::High, ..seen };
        let nothing = f.svc.change_seen(&f.ana, f.ticket, seen, same).await;
        assert!(matches!(nothing, Err(TicketError::NothingToChange)), "already so: {nothing:?}");
    }

    /// An attachment is served only through its own ticket: another
    /// ticket's number (one the operator may see) finds nothing.
    #[tokio::test]
    async fn an_attachment_is_found_only_through_its_own_ticket() {
        let f = fixture().await;
        let first = f.store.details_of(f.ticket).await.unwrap()[0].id;
        let attachment = f.store.attachments_of(first).await.unwrap()[0].id;
        let other = f.store.store_incoming(new_incoming(f.support, None, "m2", "otro@cliente.test")).await.unwrap();
        assert_eq!(f.svc.attachment(&f.ana, f.ticket, attachment).await.unwrap().id, attachment);
        let wrong = f.svc.attachment(&f.ana, other.ticket_id, attachment).await;
        assert!(matches!(wrong, Err(TicketError::AttachmentNotFound)), "{wrong:?}");
        let unknown = f.svc.attachment(&f.ana, f.ticket, attachment + 1000).await;
        assert!(matches!(unknown, Err(TicketError::AttachmentNotFound)), "{unknown:?}");
    }

    #[tokio::test]
    async fn operators_see_their_department_and_a_jefe_all() {
        let f = fixture().await;
        assert_eq!(f.svc.show(&f.ana, f.ticket).await.unwrap().ticket.id, f.ticket);
        assert!(matches!(f.svc.show(&f.beto, f.ticket).await, Err(TicketError::NotFound)));
        assert!(matches!(f.svc.show(&f.ana, 999).await, Err(TicketError::NotFound)));
        let reply = ReplyRequest { body: "x".into(), html: None, internal: false, cc: None, seen_last: None };
        assert!(matches!(f.svc.reply(&f.beto, f.ticket, reply).await, Err(TicketError::NotFound)));
        let close = ChangeRequest { status: Some(TicketStatus::Closed), ..Default::default() };
        assert!(matches!(f.svc.change(&f.beto, f.ticket, close).await, Err(TicketError::NotFound)));
        let page = f.svc.list(&f.beto, ListRequest { limit: 10, ..Default::default() }).await.unwrap();
        assert!(page.tickets.is_empty(), "not listed either");
        let mut jefe = f.beto.user.clone();
        jefe.manager = 1;
        let jefe = Operator::new(jefe).unwrap();
        assert_eq!(f.svc.show(&jefe, f.ticket).await.unwrap().ticket.id, f.ticket);
        let mut nobody = f.beto.user.clone();
        nobody.department_id = None;
        assert!(matches!(Operator::new(nobody), Err(TicketError::NotAnOperator)));
        let mut inactive = f.ana.user.clone();
        inactive.status = UserStatus::Inactive;
        assert!(matches!(Operator::new(inactive), Err(TicketError::NotAnOperator)));
    }

    #[tokio::test]
    async fn a_reply_is_queued_once_for_the_customer_and_a_note_never() {
        let f = fixture().await;
        let req = ReplyRequest {
            body: "Hola".into(),
            html: None,
            internal: false,
            cc: Some("Jefe <jefe@cliente.test>, carla@helpdesk.test".into()),
            seen_last: None,
        };
        let out = f.svc.reply(&f.ana, f.ticket, req).await.unwrap();
        assert_eq!(
            MessageIdSigner::new(SecretHasher::new([3; 32]), "x")
                .ticket_of(&MessageId::parse(&out.message_id).unwrap()),
            Some(f.ticket)
        );
        let detail = f.store.find_detail(out.detail_id).await.unwrap().unwrap();
        assert_eq!((detail.direction, detail.author_id), (Direction::Outgoing, Some(f.ana.id())));
        assert_eq!(detail.to, "cliente@cliente.test");
        // Participants and the extra Cc, but not the helpdesk's own people.
        assert_eq!(detail.cc.as_deref(), Some("copia@cliente.test, jefe@cliente.test"));
        let notices = f.store.notices_of_detail(out.detail_id).await.unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!((notices[0].kind, notices[0].recipient.as_str()), (NoticeKind::Reply, "cliente@cliente.test"));
        assert!(f.store.participants_of(f.ticket).await.unwrap().contains(&"jefe@cliente.test".to_string()));

        let note = ReplyRequest {
            body: "interno".into(),
            html: None,
            internal: true,
            cc: Some("x@y.test".into()),
            seen_last: None,
        };
        let out = f.svc.reply(&f.ana, f.ticket, note).await.unwrap();
        let detail = f.store.find_detail(out.detail_id).await.unwrap().unwrap();
        assert_eq!((detail.direction, detail.cc), (Direction::Note, None));
        assert!(f.store.notices_of_detail(out.detail_id).await.unwrap().is_empty());
        assert!(!f.store.participants_of(f.ticket).await.unwrap().contains(&"x@y.test".to_string()));
    }

    #[tokio::test]
    async fn changes_are_events_and_the_new_assignee_is_told() {
        let f = fixture().await;
        let req = ChangeRequest {
            assignee: Some(Some(f.carla.id)),
            priority: Some(Priority::Urgent),
            status: Some(TicketStatus::Pending),
            ..Default::default()
        };
        let t = f.svc.change(&f.ana, f.ticket, req).await.unwrap();
        assert_eq!((t.assignee_id, t.priority, t.status), (Some(f.carla.id), Priority::Urgent, TicketStatus::Pending));
        let events = f.store.events_of(f.ticket).await.unwrap();
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Status, EventKind::Assignee, EventKind::Priority]);
        assert!(events.iter().all(|e| e.actor_id == Some(f.ana.id())));
        let thread = f.store.details_of(f.ticket).await.unwrap();
        let notices = f.store.notices_of_detail(thread.last().unwrap().id).await.unwrap();
        let told: Vec<(NoticeKind, &str)> = notices.iter().map(|n| (n.kind, n.recipient.as_str())).collect();
        assert!(told.contains(&(NoticeKind::AssignedChat, "77")), "{told:?}");
        assert!(told.contains(&(NoticeKind::AssignedMail, "carla@helpdesk.test")), "{told:?}");

        // The same values again: nothing changes, nothing is recorded.
        let again = ChangeRequest { priority: Some(Priority::Urgent), ..Default::default() };
        f.svc.change(&f.ana, f.ticket, again).await.unwrap();
        assert_eq!(f.store.events_of(f.ticket).await.unwrap().len(), 3);
        assert!(matches!(
            f.svc.change(&f.ana, f.ticket, ChangeRequest::default()).await,
            Err(TicketError::NothingToChange)
        ));

        // Another department's operator may not take it; moving the ticket
        // there lets its assignee go.
        let wrong = ChangeRequest { assignee: Some(Some(f.beto.id())), ..Default::default() };
        assert!(matches!(f.svc.change(&f.ana, f.ticket, wrong).await, Err(TicketError::InvalidAssignee)));
        let gone = ChangeRequest { department_id: Some(999), ..Default::default() };
        assert!(matches!(f.svc.change(&f.ana, f.ticket, gone).await, Err(TicketError::InvalidDepartment)));
        let moved = ChangeRequest { department_id: Some(f.sales), ..Default::default() };
        let t = f.svc.change(&f.ana, f.ticket, moved).await.unwrap();
        assert_eq!((t.department_id, t.assignee_id), (f.sales, None));
        assert!(matches!(f.svc.show(&f.ana, f.ticket).await, Err(TicketError::NotFound)), "out of ana's sight now");
        let mine = ChangeRequest { assignee: Some(Some(f.beto.id())), ..Default::default() };
        f.svc.change(&f.beto, f.ticket, mine).await.unwrap();
        let thread = f.store.details_of(f.ticket).await.unwrap();
        let notices = f.store.notices_of_detail(thread.last().unwrap().id).await.unwrap();
        assert!(
            !notices.iter().any(|n| n.recipient == "beto@helpdesk.test"),
            "nobody is told of what they did themselves"
        );
        let _ = f.support;
    }

    /// (kind, body) of every pending delivery, oldest first.
    async fn announced(store: &InMemoryStore) -> Vec<(WebhookEventKind, serde_json::Value)> {
        use crate::ports::WebhookRepository;
        let far = crate::ports::SystemClock.now() + chrono::Duration::days(365);
        let claimed = store.claim_due_deliveries(far, 100, far).await.unwrap();
        claimed.into_iter().map(|d| (d.kind, serde_json::from_str(&d.body).unwrap())).collect()
    }

    #[tokio::test]
    async fn replies_and_changes_are_announced_to_webhooks_but_notes_are_not() {
        use crate::ports::WebhookRepository;
        let f = fixture().await;
        let all = WebhookEventKind::ALL.into_iter().collect();
        let now = crate::ports::SystemClock.now();
        let hook = NewWebhook {
            url: "http://r.test/".into(),
            events: all,
            sealed_secret: vec![1],
            status: Status::Active,
            now,
        };
        f.store.create_webhook(hook).await.unwrap();

        let note = ReplyRequest { body: "interno".into(), html: None, internal: true, cc: None, seen_last: None };
        f.svc.reply(&f.ana, f.ticket, note).await.unwrap();
        assert!(announced(&f.store).await.is_empty(), "a note is not announced");
        let reply = ReplyRequest { body: "Hola".into(), html: None, internal: false, cc: None, seen_last: None };
        let out = f.svc.reply(&f.ana, f.ticket, reply).await.unwrap();
        let events = announced(&f.store).await;
        assert_eq!(events.len(), 1);
        let (kind, body) = &events[0];
        assert_eq!(*kind, WebhookEventKind::OperatorReply);
        assert_eq!(body["ticket"]["id_ticket"], f.ticket);
        assert_eq!(body["ticket"]["departamento"], "Soporte");
        assert_eq!(body["ticket"]["asignado"]["id_usuario"], f.ana.id());
        assert_eq!(body["mensaje"]["id_detalle_ticket"], out.detail_id);
        assert_eq!(
            (body["mensaje"]["direccion"].as_str(), body["mensaje"]["extracto"].as_str()),
            (Some("saliente"), Some("Hola"))
        );
        assert_eq!(body["autor"]["correo"], "ana@helpdesk.test");

        let priority = ChangeRequest { priority: Some(Priority::High), ..Default::default() };
        f.svc.change(&f.ana, f.ticket, priority).await.unwrap();
        assert_eq!(announced(&f.store).await.len(), 1, "a priority is not announced");
        let req = ChangeRequest {
            assignee: Some(Some(f.carla.id)),
            status: Some(TicketStatus::Closed),
            ..Default::default()
        };
        f.svc.change(&f.ana, f.ticket, req).await.unwrap();
        let events = announced(&f.store).await;
        let kinds: Vec<WebhookEventKind> = events.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [WebhookEventKind::OperatorReply, WebhookEventKind::Assigned, WebhookEventKind::StatusChanged]
        );
        let (assigned, closed) = (&events[1].1, &events[2].1);
        assert_eq!(
            assigned["cambio"],
            serde_json::json!({"campo": "asignado", "anterior": f.ana.id(), "nuevo": f.carla.id})
        );
        assert_eq!(closed["cambio"], serde_json::json!({"campo": "estado", "anterior": "abierto", "nuevo": "cerrado"}));
        for body in [assigned, closed] {
            assert_eq!(
                (body["ticket"]["estado"].as_str(), body["ticket"]["prioridad"].as_str()),
                (Some("cerrado"), Some("alta"))
            );
            assert_eq!(body["ticket"]["asignado"]["correo"], "carla@helpdesk.test");
            assert_eq!(
                (&body["mensaje"], &body["autor"]["id_usuario"]),
                (&serde_json::Value::Null, &f.ana.id().into())
            );
        }
        assert_ne!(assigned["id"], closed["id"]);
    }

    #[tokio::test]
    async fn pages_are_clamped_and_say_where_the_next_starts() {
        let f = fixture().await;
        for i in 2..=5 {
            let key = format!("m{i}");
            f.store.store_incoming(new_incoming(f.support, None, &key, "otro@cliente.test")).await.unwrap();
        }
        let first = f.svc.list(&f.ana, ListRequest { limit: 2, ..Default::default() }).await.unwrap();
        assert_eq!(first.tickets.len(), 2);
        let next = first.next.expect("more to come");
        assert_eq!(next, TicketCursor::Before(first.tickets[1].id));
        let rest =
            f.svc.list(&f.ana, ListRequest { limit: 500, cursor: Some(next), ..Default::default() }).await.unwrap();
        assert_eq!((rest.tickets.len(), rest.next), (3, None));
        let mine = ListRequest { assigned_to_me: true, limit: 10, ..Default::default() };
        let mine = f.svc.list(&f.ana, mine).await.unwrap();
        assert_eq!(mine.tickets.iter().map(|t| t.id).collect::<Vec<_>>(), vec![f.ticket]);
        let nobody = ListRequest { assignee: AssigneeFilter::Nobody, limit: 10, ..Default::default() };
        assert_eq!(f.svc.list(&f.ana, nobody).await.unwrap().tickets.len(), 4);
    }

    /// The worker's pass gives open tickets nobody holds to whoever takes
    /// tickets; closed ones stay with nobody and do not use up the pass.
    #[tokio::test]
    async fn waiting_tickets_go_to_whoever_takes_them_and_closed_ones_stay() {
        let f = fixture().await;
        let now = crate::ports::SystemClock.now();
        let mut closed = Vec::new();
        for i in 0..3 {
            let incoming = new_incoming(f.support, None, &format!("w{i}"), "c@cliente.test");
            let t = f.store.store_incoming(incoming).await.unwrap().ticket_id;
            f.store.set_ticket_status(t, TicketStatus::Closed, now).await.unwrap();
            closed.push(t);
        }
        let open = f.store.store_incoming(new_incoming(f.support, None, "w9", "c@cliente.test")).await.unwrap();
        assert_eq!(f.svc.assign_waiting(2).await.unwrap(), vec![open.ticket_id]);
        assert!(f.store.find_ticket(open.ticket_id).await.unwrap().unwrap().assignee_id.is_some());
        for t in closed {
            assert_eq!(f.store.find_ticket(t).await.unwrap().unwrap().assignee_id, None);
        }
        assert!(f.svc.assign_waiting(2).await.unwrap().is_empty(), "nothing left waiting");
    }
}
