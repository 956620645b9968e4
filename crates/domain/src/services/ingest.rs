//! Incoming mail becomes a ticket (`correo/save`): dedupe, threading,
//! routing, assignment, loop protection and the notices to send, all
//! written in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

use chrono::Duration;
use regex::Regex;

use crate::crypto::{SecretHasher, sha256_hex};
use crate::error::RepoError;
use crate::model::*;
use crate::ports::Clock;
use crate::services::cache::TtlCache;
use crate::services::group::GroupCommit;
pub use crate::services::group::Pause;

#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Department for mail to an unknown mailbox; `None`: the first active one.
    pub default_department_id: Option<i64>,
    /// Acknowledgements to one sender per hour, at most.
    pub acks_per_hour: i64,
    /// Whether assignees get Synology Chat bot messages (a bot is configured).
    pub chat_to_users: bool,
    /// The request makes the first delivery attempt; the worker leaves new
    /// notices alone this long so the two do not race.
    pub first_attempt_grace: Duration,
    /// How long mailboxes, departments, whether a department has a
    /// webhook and which events outgoing webhooks subscribe to are kept in
    /// memory (zero: read for every mail).
    pub setup_cache: std::time::Duration,
    /// Our addresses besides the mailboxes (the SMTP sender,
    /// `mail.own_addresses`).
    pub own_addresses: Vec<Address>,
    /// New participants a mail from outside an existing ticket (neither its
    /// requester nor a participant) may add, at most.
    pub max_new_participants: usize,
}

/// The most addresses a thread event lists in full.
const EVENT_TEXT_MAX: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub ticket_id: i64,
    pub detail_id: i64,
    pub created_ticket: bool,
    /// The same mail was stored before; this is its first result.
    pub duplicate: bool,
    pub department: Department,
    pub assignee_id: Option<i64>,
    pub notices: Vec<Notice>,
    /// The request's bitácora record ([`IngestService::ingest_audited`])
    /// was written with the mail.
    pub audit_written: bool,
}

/// What became of a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Ingested {
    /// Stored in a ticket (or stored before: `duplicate`).
    Ticket(IngestOutcome),
    /// Held whole instead (see [`HoldReason`]); no ticket, nobody told.
    Held(HeldMail),
}

impl Ingested {
    /// The ticket's outcome, when it went to one.
    pub fn ticket(self) -> Option<IngestOutcome> {
        match self {
            Ingested::Ticket(o) => Some(o),
            Ingested::Held(_) => None,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// Attachment `index`'s route is absolute or climbs out of the storage.
    #[error("attachment {0} has an unsafe route")]
    UnsafeRoute(usize),
    /// No department to route to (none configured and none active).
    #[error("no department to route the mail to")]
    NoDepartment,
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// A route relative to the channel's storage: not empty, not absolute (no
/// leading `/` or `\`, no drive letter, no URL scheme, no `~`), no `..`
/// segment, no control characters. Judged on the route as a file system or
/// a later decoder might read it: percent-decoded (repeatedly: `%252e` is
/// `%2e` is `.`), NFKC-normalised (a fullwidth `．．` is `..`), each segment
/// trimmed (`.. ` is `..` to some systems).
pub fn is_safe_route(route: &str) -> bool {
    let mut r = route.to_string();
    for _ in 0..4 {
        let decoded = percent_encoding::percent_decode_str(&r).decode_utf8_lossy().into_owned();
        if decoded == r {
            break;
        }
        r = decoded;
    }
    let r: String = unicode_normalization::UnicodeNormalization::nfkc(r.trim()).collect();
    if r.is_empty() || r.chars().any(char::is_control) || r.contains('%') {
        return false;
    }
    if r.starts_with(['/', '\\', '~']) || r.contains(':') {
        return false;
    }
    // A segment of dots and blanks with two dots or more climbs (or, on
    // some systems, is trimmed into `..`).
    !r.split(['/', '\\'])
        .any(|seg| seg.chars().all(|c| c == '.' || c.is_whitespace()) && seg.chars().filter(|c| *c == '.').count() >= 2)
}

/// The value of a header, ignoring the name's case.
pub fn header<'a>(headers: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

/// The bare address of `Name <addr>` or `addr`, lower-cased.
pub fn bare_address(s: &str) -> String {
    let s = s.trim();
    let inner = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    inner.trim().trim_matches('"').to_lowercase()
}

/// Auto-replies, bounces and bulk mail: stored, never acknowledged, and
/// in a ticket they change nothing (no reopening, no clock, no notice).
/// `Auto-Submitted` with any value but `no` (`auto-replied`,
/// `auto-generated`, `auto-notified`, ...; its parameters ignored),
/// `X-Autoreply` / `X-Autorespond`, `Precedence: auto_reply|bulk|junk|list`,
/// `X-Auto-Response-Suppress`, `X-Loop`, an empty `Return-Path`, a
/// mailer-daemon or postmaster, one of our own addresses.
pub fn is_automatic(mail: &IncomingMail, own: &super::OwnSet) -> bool {
    let h = &mail.headers;
    let auto_submitted = header(h, "Auto-Submitted")
        .is_some_and(|v| !v.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("no"));
    let autoreply = ["X-Autoreply", "X-Autorespond"].iter().any(|n| header(h, n).is_some());
    let precedence = header(h, "Precedence")
        .is_some_and(|v| ["auto_reply", "bulk", "junk", "list"].iter().any(|p| v.eq_ignore_ascii_case(p)));
    let suppress = header(h, "X-Auto-Response-Suppress").is_some();
    let looped = header(h, "X-Loop").is_some();
    let empty_return_path = header(h, "Return-Path").is_some_and(|v| v.trim_matches(['<', '>', ' ']).is_empty());
    let from = bare_address(&mail.from);
    let local = from.split('@').next().unwrap_or_default();
    let daemon = ["mailer-daemon", "postmaster"].iter().any(|d| local.eq_ignore_ascii_case(d));
    let ours = own.contains(&from);
    auto_submitted || autoreply || precedence || suppress || looped || empty_return_path || daemon || ours
}

static SUBJECT_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bticket\s*#\s*(\d{1,18})\b").expect("valid regex"));

/// The ticket number written in a subject (`[Ticket #132]`, `Ticket #132`).
pub fn subject_ticket_number(subject: &str) -> Option<i64> {
    SUBJECT_NUMBER.captures(subject).and_then(|c| c[1].parse().ok())
}

/// Message-IDs of the mail we send carry a signed tag naming the ticket,
/// so a reply threads without a lookup and a forged tag is ignored:
/// `ticket<N>.<notice>.<16 hex of HMAC>@<domain>`.
#[derive(Clone, Debug)]
pub struct MessageIdSigner {
    hasher: SecretHasher,
    domain: String,
}

impl MessageIdSigner {
    /// The ids it writes are in [`MessageId`]'s form (lower case), so
    /// that what is sent is what is stored and compared.
    pub fn new(hasher: SecretHasher, domain: &str) -> Self {
        Self { hasher, domain: domain.trim().to_lowercase() }
    }

    fn tag(&self, ticket_id: i64) -> String {
        self.hasher.hash(&format!("message-id:ticket:{ticket_id}"))[..16].to_string()
    }

    /// Without angle brackets.
    pub fn for_notice(&self, ticket_id: i64, notice_id: i64) -> String {
        format!("ticket{ticket_id}.{notice_id}.{}@{}", self.tag(ticket_id), self.domain)
    }

    /// The Message-ID of an operator's reply: the same signed tag, with a
    /// random part where a notice's id goes (the reply is stored before any
    /// notice exists), so the customer's answer threads without a lookup.
    pub fn for_reply(&self, ticket_id: i64) -> MessageId {
        let nonce = crate::crypto::random_token(20).to_lowercase();
        let id = format!("ticket{ticket_id}.r{nonce}.{}@{}", self.tag(ticket_id), self.domain);
        MessageId::parse(&id).expect("not empty")
    }

    /// The ticket a Message-ID we sent names, if its tag is genuine.
    pub fn ticket_of(&self, id: &MessageId) -> Option<i64> {
        let local = id.as_str().split('@').next()?;
        let mut parts = local.split('.');
        let ticket: i64 = parts.next()?.strip_prefix("ticket")?.parse().ok()?;
        let _notice = parts.next()?;
        let tag = parts.next()?;
        use subtle::ConstantTimeEq;
        let ok: bool = tag.as_bytes().ct_eq(self.tag(ticket).as_bytes()).into();
        ok.then_some(ticket)
    }
}

/// The ports [`IngestService`] calls: any store providing them will do (the
/// whole `Store`, or a fake or mock of just these).
pub trait IngestPorts:
    crate::ports::TicketRepository
    + crate::ports::DepartmentRepository
    + crate::ports::MailAccountRepository
    + crate::ports::UserRepository
    + crate::ports::OutboxRepository
    + crate::ports::WebhookRepository
    + crate::ports::SlaRepository
    + crate::ports::HeldMailRepository
    + crate::ports::TicketWorkRepository
{
}
impl<
    T: crate::ports::TicketRepository
        + crate::ports::DepartmentRepository
        + crate::ports::MailAccountRepository
        + crate::ports::UserRepository
        + crate::ports::OutboxRepository
        + crate::ports::WebhookRepository
        + crate::ports::SlaRepository
        + crate::ports::HeldMailRepository
        + crate::ports::TicketWorkRepository,
> IngestPorts for T
{
}

pub struct IngestService<R: IngestPorts> {
    repo: Arc<R>,
    ids: MessageIdSigner,
    clock: Arc<dyn Clock>,
    settings: IngestSettings,
    setup: SetupCache,
    own: super::OwnAddresses,
    sla: super::SlaBook<R>,
    /// New tickets arriving together are written in one transaction.
    openings: GroupCommit<Arc<Opening>, Result<IngestOutcome, IngestError>>,
}

/// Most new tickets written in one transaction.
const MAX_OPENINGS_PER_BATCH: usize = 16;

/// What routing reads for every mail and an administrator rarely changes.
struct SetupCache {
    accounts: TtlCache<(), Vec<MailAccount>>,
    departments: TtlCache<i64, Option<Department>>,
    /// The first active department: where mail to no known mailbox goes
    /// when `ingest.default_department_id` names none.
    fallback: TtlCache<(), Option<Department>>,
    webhooks: TtlCache<i64, bool>,
    /// The events some active outgoing webhook subscribes to.
    subscribed: TtlCache<(), BTreeSet<WebhookEventKind>>,
    /// Each department's operators (active, taking tickets); their loads
    /// are read for every mail.
    operators: TtlCache<i64, Vec<InternalUser>>,
}

impl<R: IngestPorts> IngestService<R> {
    pub fn new(repo: Arc<R>, ids: MessageIdSigner, clock: Arc<dyn Clock>, settings: IngestSettings) -> Self {
        let ttl = settings.setup_cache;
        let setup = SetupCache {
            accounts: TtlCache::new(ttl),
            departments: TtlCache::new(ttl),
            fallback: TtlCache::new(ttl),
            webhooks: TtlCache::new(ttl),
            subscribed: TtlCache::new(ttl),
            operators: TtlCache::new(ttl),
        };
        let sla = super::SlaBook::new(repo.clone(), clock.clone(), ttl);
        let own = super::OwnAddresses::new(settings.own_addresses.clone(), ttl);
        Self { repo, ids, clock, settings, setup, own, sla, openings: GroupCommit::new(MAX_OPENINGS_PER_BATCH) }
    }

    /// Lets the request writing new tickets wait up to `wait` for others to
    /// join its batch while mails come in company (see `GroupCommit`);
    /// `pause` waits on the caller's runtime.
    pub fn with_linger(mut self, wait: std::time::Duration, pause: Pause) -> Self {
        self.openings = self.openings.with_linger(wait, pause);
        self
    }

    async fn mail_accounts(&self) -> Result<Vec<MailAccount>, RepoError> {
        let load = || self.repo.find_mail_accounts(MailAccountFilter::default());
        self.setup.accounts.get_or_load((), self.clock.now(), load, |_| true).await
    }

    async fn department(&self, id: i64) -> Result<Option<Department>, RepoError> {
        self.setup.departments.get_or_load(id, self.clock.now(), || self.repo.find_department(id), |_| true).await
    }

    async fn has_webhook(&self, department_id: i64) -> Result<bool, RepoError> {
        let load = || async move { Ok(self.repo.department_webhook(department_id).await?.is_some()) };
        self.setup.webhooks.get_or_load(department_id, self.clock.now(), load, |_| true).await
    }

    /// The department's operators: its active users who take tickets.
    async fn operators(&self, department_id: i64) -> Result<Vec<InternalUser>, RepoError> {
        let load = || async move {
            let filter = UserFilter { department_id: Some(department_id), ..UserFilter::default() };
            let mut users = self.repo.find_users(filter).await?;
            users.retain(|u| u.is_active() && u.can_take_tickets && u.department_id == Some(department_id));
            Ok(users)
        };
        self.setup.operators.get_or_load(department_id, self.clock.now(), load, |_| true).await
    }

    /// The kinds of event some active subscription wants: an event of
    /// another kind is not even built.
    async fn subscribed(&self) -> Result<BTreeSet<WebhookEventKind>, RepoError> {
        let load = || async {
            let hooks = self.repo.list_webhooks().await?;
            Ok(hooks.iter().filter(|h| h.status.is_active()).flat_map(|h| h.events.iter().copied()).collect())
        };
        self.setup.subscribed.get_or_load((), self.clock.now(), load, |_| true).await
    }

    pub fn message_ids(&self) -> &MessageIdSigner {
        &self.ids
    }

    /// Stores a mail: in the ticket it continues, else in a new ticket,
    /// or, when it is from one of our own addresses and continues nothing,
    /// held.
    pub async fn ingest(&self, mail: IncomingMail) -> Result<Ingested, IngestError> {
        self.ingest_as(mail, Hold::OwnMail, None).await
    }

    /// [`ingest`](Self::ingest), writing the bitácora record of the request
    /// that posted the mail in the mail's own transaction: one commit for
    /// both. The outcome's `audit_written` says whether it was; when it was
    /// not (the mail was stored before, held, or not stored), the record is
    /// the caller's to write.
    pub async fn ingest_audited(&self, mail: IncomingMail, audit: AuditRecord) -> Result<Ingested, IngestError> {
        self.ingest_as(mail, Hold::OwnMail, Some(audit)).await
    }

    /// Releases a held mail into a ticket (an administrator asked for it):
    /// ingested as any mail, without being held again. Returns the entry,
    /// released.
    pub async fn release(&self, id: i64) -> Result<Option<(HeldMail, IngestOutcome)>, IngestError> {
        let Some(held) = self.repo.find_held(id).await? else { return Ok(None) };
        let outcome = match self.ingest_as(held.mail.clone(), Hold::Never, None).await? {
            Ingested::Ticket(o) => o,
            // `Hold::Never` holds nothing; said as an error, not a panic.
            Ingested::Held(_) => return Err(RepoError::corrupt("a released mail was held again").into()),
        };
        let released = self.repo.mark_released(id, outcome.ticket_id, self.clock.now()).await?;
        Ok(Some((released, outcome)))
    }

    /// The mail held, oldest first (released ones too when asked).
    pub async fn held(&self, include_released: bool) -> Result<Vec<HeldMail>, IngestError> {
        Ok(self.repo.held_mail(include_released).await?)
    }

    async fn ingest_as(
        &self,
        mail: IncomingMail,
        hold: Hold,
        audit: Option<AuditRecord>,
    ) -> Result<Ingested, IngestError> {
        if let Some(i) = mail.attachments.iter().position(|a| !is_safe_route(&a.route)) {
            return Err(IngestError::UnsafeRoute(i));
        }
        // No lookup of the dedupe key first: the store's unique key answers
        // a mail stored before (`Duplicate`, then its first result is read).
        let keys = MailKeys::of(&mail);
        let now = self.clock.now();
        let accounts = self.mail_accounts().await?;
        let own = self.own.with_accounts(&accounts);
        let automatic = is_automatic(&mail, &own);
        let sender = bare_address(&mail.from);
        let account = match mail.received_by {
            Some(id) => accounts.iter().find(|a| a.id == id && a.status.is_active()),
            None => {
                let recipients = Address::list(&mail.to)
                    .valid
                    .into_iter()
                    .chain(mail.cc.as_deref().map(|cc| Address::list(cc).valid).unwrap_or_default());
                recipients.into_iter().find_map(|r| {
                    accounts.iter().find(|a| a.user.eq_ignore_ascii_case(r.as_str()) && a.status.is_active())
                })
            }
        };
        if let Some(ticket) = self.thread(&mail, &sender).await? {
            return self.continue_thread(mail, ticket, keys, &sender, &own, now, audit).await.map(Ingested::Ticket);
        }
        if hold == Hold::OwnMail && own.contains(&sender) {
            return self.hold_own(mail, keys, now).await;
        }
        let department = self.route(account).await?;
        let ack_to = (!automatic && account.is_none_or(|a| a.send_acknowledgement))
            .then(|| mail.reply_to.as_deref().map(bare_address).filter(|a| a.contains('@')).unwrap_or(sender.clone()))
            .filter(|a| !own.contains(a) && Address::parse_bare(a).is_some());
        let opening = Arc::new(Opening {
            sla: self.sla.start(department.id, Priority::Normal, now).await?,
            mail,
            keys,
            automatic,
            sender,
            account_id: account.map(|a| a.id),
            ack_to,
            department,
            own,
            now,
            audit,
        });
        let outcome = match self.openings.submit(opening.clone(), |batch| self.open_batch(batch)).await {
            Some(outcome) => outcome,
            // The request that took it to write was dropped before it
            // answered: whether it was written, its dedupe key tells.
            None => self.open_batch(vec![opening]).await.pop().expect("one result per opening"),
        };
        outcome.map(Ingested::Ticket)
    }

    /// Mail from our own address that continues no ticket: a copy of a mail
    /// we sent, or a loop. Stored before (as a reply of ours, or released),
    /// it is that message; otherwise it is held, whole, and nobody is told.
    async fn hold_own(&self, mail: IncomingMail, keys: MailKeys, now: Timestamp) -> Result<Ingested, IngestError> {
        if let Some(detail) = self.repo.find_detail_by_dedupe(&keys.dedupe_key).await? {
            return self.outcome_of(detail, true).await.map(Ingested::Ticket);
        }
        let new = NewHeldMail { dedupe_key: keys.dedupe_key, reason: HoldReason::OwnAddress, mail, now };
        Ok(Ingested::Held(self.repo.hold(new).await?))
    }

    /// A mail that continues `ticket`: stored on its own.
    #[allow(clippy::too_many_arguments)]
    async fn continue_thread(
        &self,
        mail: IncomingMail,
        ticket: Ticket,
        keys: MailKeys,
        sender: &str,
        own: &super::OwnSet,
        now: Timestamp,
        audit: Option<AuditRecord>,
    ) -> Result<IngestOutcome, IngestError> {
        let department = self.department(ticket.department_id).await?.ok_or(IngestError::NoDepartment)?;
        let automatic = is_automatic(&mail, own);
        if automatic {
            // An out-of-office or a bounce is kept in the thread for the
            // operator to read, and that is all: the ticket stays as it is
            // and nobody is told (telling is how loops start).
            let target = IncomingTarget::Existing { ticket_id: ticket.id, reopen: false, sla: None };
            let mut incoming =
                self.incoming(target, &mail, keys, automatic, Participants::default(), Vec::new(), Vec::new(), now);
            incoming.audit = self.audit_until_now(audit);
            let planned = Planned::new(incoming, department, ticket.assignee_id);
            return self.store_one(planned).await;
        }
        // The customer's answer reopens a closed ticket and ends the wait of
        // a pending one: its clock runs again.
        let reopen = ticket.status != TicketStatus::Open;
        let sla = if reopen {
            let open = TicketFields { status: TicketStatus::Open, ..TicketFields::of(&ticket) };
            self.sla.after_change(&ticket, open, now).await?
        } else {
            None
        };
        let target = IncomingTarget::Existing { ticket_id: ticket.id, reopen, sla };
        let assignee = match ticket.assignee_id {
            Some(a) => self.repo.find_user(a).await?,
            None => None,
        };
        let notices = self.notices(None, assignee.as_ref(), None).await?;
        let mut participants = Participants::of(&mail, sender, assignee.as_ref(), own);
        let outsider =
            !ticket.requester.eq_ignore_ascii_case(sender) && !self.repo.is_participant(ticket.id, sender).await?;
        if outsider {
            let known = self.repo.participants_of(ticket.id).await?;
            participants.cap(&known, self.settings.max_new_participants);
        }
        let webhook_events =
            self.webhook_events(&mail, Some(ticket), &department, assignee.as_ref(), automatic, now).await?;
        let mut incoming = self.incoming(target, &mail, keys, automatic, participants, notices, webhook_events, now);
        incoming.audit = self.audit_until_now(audit);
        let planned = Planned::new(incoming, department, assignee.map(|a| a.id));
        self.store_one(planned).await
    }

    /// New tickets, written together: each gets the operator least loaded
    /// counting the tickets assigned before it in the batch, and an
    /// acknowledgement while its sender is under the hourly limit counting
    /// those before it. Every result is the one the mail would get alone.
    async fn open_batch(&self, batch: Vec<Arc<Opening>>) -> Vec<Result<IngestOutcome, IngestError>> {
        let plans = match self.plan_openings(&batch).await {
            Ok(plans) => plans,
            Err(e) => return batch.iter().map(|_| Err(e.clone())).collect(),
        };
        if let [_] = plans.as_slice() {
            let plan = plans.into_iter().next().expect("one");
            return vec![self.store_one(plan).await];
        }
        let (incomings, answers): (Vec<NewIncoming>, Vec<Answer>) = plans.into_iter().map(Planned::split).unzip();
        match self.repo.store_incoming_batch(&incomings).await {
            Ok(stored) => answers.into_iter().zip(stored).map(|(answer, s)| Ok(answer.outcome(s))).collect(),
            Err(e) if e.is_unavailable() => answers.iter().map(|_| Err(e.clone().into())).collect(),
            // Mail stored before (a mailbox read again): one lookup finds
            // them, and the rest are written together again.
            Err(RepoError::Duplicate(_)) => self.open_batch_without_stored(incomings, answers).await,
            Err(_) => self.each_on_its_own(incomings, answers).await,
        }
    }

    /// A batch the store refused for a duplicate: the mails it already holds
    /// answer with their first result (one lookup for all), the others are
    /// written together; should that fail again (a duplicate within the
    /// batch, another server storing one meanwhile), each on its own.
    async fn open_batch_without_stored(
        &self,
        incomings: Vec<NewIncoming>,
        answers: Vec<Answer>,
    ) -> Vec<Result<IngestOutcome, IngestError>> {
        let keys: Vec<String> = incomings.iter().map(|n| n.detail.dedupe_key.clone()).collect();
        let mut stored: HashMap<String, TicketDetail> = match self.repo.find_details_by_dedupe(&keys).await {
            Ok(found) => found.into_iter().map(|d| (d.dedupe_key.clone(), d)).collect(),
            Err(e) => return answers.iter().map(|_| Err(e.clone().into())).collect(),
        };
        if stored.is_empty() {
            return self.each_on_its_own(incomings, answers).await;
        }
        let mut outcomes: Vec<Option<Result<IngestOutcome, IngestError>>> = Vec::with_capacity(keys.len());
        let (mut rest, mut rest_answers, mut rest_at) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (incoming, answer)) in incomings.into_iter().zip(answers).enumerate() {
            match stored.remove(&incoming.detail.dedupe_key) {
                Some(detail) => outcomes.push(Some(self.outcome_of(detail, true).await)),
                None => {
                    outcomes.push(None);
                    rest.push(incoming);
                    rest_answers.push(answer);
                    rest_at.push(i);
                }
            }
        }
        let written = match rest.len() {
            0 => Vec::new(),
            1 => {
                let plan = Planned { incoming: rest.pop().expect("one"), answer: rest_answers.pop().expect("one") };
                vec![self.store_one(plan).await]
            }
            _ => match self.repo.store_incoming_batch(&rest).await {
                Ok(s) => rest_answers.into_iter().zip(s).map(|(answer, s)| Ok(answer.outcome(s))).collect(),
                Err(e) if e.is_unavailable() => rest_answers.iter().map(|_| Err(e.clone().into())).collect(),
                Err(_) => self.each_on_its_own(rest, rest_answers).await,
            },
        };
        for (i, outcome) in rest_at.into_iter().zip(written) {
            outcomes[i] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(RepoError::corrupt("a mail of the batch went unanswered").into())))
            .collect()
    }

    /// One of them spoils the batch: each on its own, so the others are not
    /// refused for it.
    async fn each_on_its_own(
        &self,
        incomings: Vec<NewIncoming>,
        answers: Vec<Answer>,
    ) -> Vec<Result<IngestOutcome, IngestError>> {
        let mut outcomes = Vec::with_capacity(answers.len());
        for (incoming, answer) in incomings.into_iter().zip(answers) {
            outcomes.push(self.store_one(Planned { incoming, answer }).await);
        }
        outcomes
    }

    async fn plan_openings(&self, batch: &[Arc<Opening>]) -> Result<Vec<Planned>, IngestError> {
        let mut operators: BTreeMap<i64, Vec<InternalUser>> = BTreeMap::new();
        for o in batch {
            if let std::collections::btree_map::Entry::Vacant(e) = operators.entry(o.department.id) {
                e.insert(self.operators(o.department.id).await?);
            }
        }
        // One read for the operators' loads (they change with every ticket)
        // and every sender's acknowledgements; these from the earliest
        // mail's hour, so a later one may count a little more than its own
        // hour, never less.
        let users: Vec<i64> = operators.values().flatten().map(|u| u.id).collect();
        let to_ack: Vec<String> =
            batch.iter().filter_map(|o| o.ack_to.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let first = batch.iter().map(|o| o.now).min().unwrap_or_else(|| self.clock.now());
        let (user_loads, counts) = self
            .repo
            .loads_and_notices_sent(&users, NoticeKind::Acknowledgement, &to_ack, first - Duration::hours(1))
            .await?;
        let mut user_loads = user_loads.into_iter();
        let mut loads: BTreeMap<i64, Vec<OperatorLoad>> = operators
            .into_iter()
            .map(|(department, users)| {
                let loads = users
                    .into_iter()
                    .zip(user_loads.by_ref())
                    .map(|(user, (open_tickets, last_assigned_at))| OperatorLoad {
                        user,
                        open_tickets,
                        last_assigned_at,
                    })
                    .collect();
                (department, loads)
            })
            .collect();
        let mut acks_sent: BTreeMap<String, i64> = to_ack.into_iter().zip(counts).collect();
        let mut plans = Vec::with_capacity(batch.len());
        for o in batch {
            let assignee = loads.get_mut(&o.department.id).and_then(|l| take_least_loaded(l, o.now));
            let ack_to = o.ack_to.clone().filter(|to| {
                let sent = acks_sent.entry(to.clone()).or_default();
                *sent += 1;
                *sent <= self.settings.acks_per_hour
            });
            let notices = self.notices(ack_to, assignee.as_ref(), Some(&o.department)).await?;
            let participants = Participants::of(&o.mail, &o.sender, assignee.as_ref(), &o.own);
            let webhook_events =
                self.webhook_events(&o.mail, None, &o.department, assignee.as_ref(), o.automatic, o.now).await?;
            let target = IncomingTarget::New(NewTicket {
                subject: o.mail.subject.clone(),
                department_id: o.department.id,
                assignee_id: assignee.as_ref().map(|u| u.id),
                requester: o.sender.clone(),
                mail_account_id: o.account_id,
                system: o.mail.system.clone(),
                sla: o.sla,
            });
            let mut incoming = self.incoming(
                target,
                &o.mail,
                o.keys.clone(),
                o.automatic,
                participants,
                notices,
                webhook_events,
                o.now,
            );
            incoming.audit = self.audit_until_now(o.audit.clone());
            plans.push(Planned::new(incoming, o.department.clone(), assignee.map(|a| a.id)));
        }
        Ok(plans)
    }

    /// One mail's writes in a transaction of its own; a mail stored before
    /// answers with its first result.
    async fn store_one(&self, plan: Planned) -> Result<IngestOutcome, IngestError> {
        let key = plan.incoming.detail.dedupe_key.clone();
        let (incoming, answer) = plan.split();
        match self.repo.store_incoming(incoming).await {
            Ok(stored) => Ok(answer.outcome(stored)),
            Err(RepoError::Duplicate(_)) => match self.repo.find_detail_by_dedupe(&key).await? {
                Some(detail) => self.outcome_of(detail, true).await,
                None => Err(RepoError::corrupt("duplicate detail vanished").into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The notices a mail queues: the acknowledgement (`ack_to`), the
    /// assignee's, and for a new ticket (`opened_in`) its department's
    /// channel when the department has a webhook.
    async fn notices(
        &self,
        ack_to: Option<String>,
        assignee: Option<&InternalUser>,
        opened_in: Option<&Department>,
    ) -> Result<Vec<NewNotice>, RepoError> {
        let mut notices = Vec::new();
        if let Some(to) = ack_to {
            notices.push(NewNotice { kind: NoticeKind::Acknowledgement, recipient: to });
        }
        if let Some(a) = assignee {
            if let Some(sid) = a.synology_id.filter(|_| self.settings.chat_to_users) {
                notices.push(NewNotice { kind: NoticeKind::AssigneeChat, recipient: sid.to_string() });
            }
            notices.push(NewNotice { kind: NoticeKind::AssigneeMail, recipient: a.email.clone() });
        }
        if let Some(d) = opened_in
            && self.has_webhook(d.id).await?
        {
            notices.push(NewNotice { kind: NoticeKind::DepartmentChannel, recipient: d.id.to_string() });
        }
        Ok(notices)
    }

    /// The request's record as it goes to the store with the mail: its
    /// duration runs to now, when the writes are sent (the request measured
    /// it from its own start, `entry.at`, as the domain's clock tells).
    fn audit_until_now(&self, audit: Option<AuditRecord>) -> Option<AuditRecord> {
        let now = self.clock.now();
        audit.map(|mut r| {
            let so_far = (now - r.entry.at).num_microseconds().unwrap_or(i64::MAX);
            r.outcome.duration_us = r.outcome.duration_us.max(so_far);
            r
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn incoming(
        &self,
        target: IncomingTarget,
        mail: &IncomingMail,
        keys: MailKeys,
        automatic: bool,
        participants: Participants,
        notices: Vec<NewNotice>,
        webhook_events: Vec<NewWebhookEvent>,
        now: Timestamp,
    ) -> NewIncoming {
        NewIncoming {
            target,
            detail: NewTicketDetail {
                dedupe_key: keys.dedupe_key,
                message_id_hash: keys.message_id.as_ref().map(MessageId::hash),
                message_id: keys.message_id.map(|m| m.as_str().to_string()),
                from: mail.from.trim().to_string(),
                to: mail.to.trim().to_string(),
                cc: mail.cc.clone(),
                bcc: mail.bcc.clone(),
                reply_to: mail.reply_to.clone(),
                subject: mail.subject.clone(),
                body: mail.body.clone(),
                html: mail.html.clone(),
                date: mail.date,
                headers: mail.headers.clone(),
                automatic,
                direction: Direction::Incoming,
                author_id: None,
            },
            attachments: mail.attachments.clone(),
            participants: participants.list,
            events: participants.events,
            notices,
            webhook_events,
            now,
            notices_due_at: now + self.settings.first_attempt_grace,
            audit: None,
        }
    }

    /// What the mail tells outgoing webhooks: `ticket.creado` for a new
    /// ticket (`existing` is `None`); else `ticket.respuesta_cliente`, and
    /// `ticket.estado` when it reopens the ticket. Only the kinds some
    /// subscription wants.
    async fn webhook_events(
        &self,
        mail: &IncomingMail,
        existing: Option<Ticket>,
        department: &Department,
        assignee: Option<&InternalUser>,
        automatic: bool,
        now: Timestamp,
    ) -> Result<Vec<NewWebhookEvent>, RepoError> {
        let wanted = self.subscribed().await?;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut ticket = EventTicket {
            subject: mail.subject.clone(),
            status: TicketStatus::Open,
            priority: Priority::Normal,
            department_id: department.id,
            department: department.name.clone(),
            assignee: assignee.map(EventPerson::of),
            requester: bare_address(&mail.from),
        };
        let message = EventMessage::new(Direction::Incoming, mail.from.trim(), &mail.body, automatic);
        let event =
            |kind, ticket: &EventTicket| NewWebhookEvent::new(kind, ticket.clone(), now).with_message(message.clone());
        let mut events = Vec::new();
        match existing {
            None => events.push(event(WebhookEventKind::TicketCreated, &ticket)),
            Some(t) => {
                (ticket.subject, ticket.priority, ticket.requester) = (t.subject, t.priority, t.requester);
                events.push(event(WebhookEventKind::CustomerReply, &ticket));
                if t.status != TicketStatus::Open {
                    let change = EventChange::Status { from: t.status, to: TicketStatus::Open };
                    events.push(event(WebhookEventKind::StatusChanged, &ticket).with_change(change));
                }
            }
        }
        events.retain(|e| wanted.contains(&e.kind));
        Ok(events)
    }

    /// The ticket this mail continues: by a header naming a message we sent
    /// (signed tag) or stored, else by the subject's number when the sender
    /// already takes part in that ticket.
    async fn thread(&self, mail: &IncomingMail, sender: &str) -> Result<Option<Ticket>, IngestError> {
        let mut refs: Vec<MessageId> = header(&mail.headers, "In-Reply-To").map(MessageId::list).unwrap_or_default();
        let mut references = header(&mail.headers, "References").map(MessageId::list).unwrap_or_default();
        references.reverse();
        refs.extend(references);
        for r in &refs {
            let ticket_id = match self.ids.ticket_of(r) {
                Some(t) => Some(t),
                None => self.repo.ticket_of_message(&r.hash()).await?,
            };
            if let Some(t) = ticket_id
                && let Some(ticket) = self.repo.find_ticket(t).await?
            {
                return Ok(Some(ticket));
            }
        }
        if let Some(n) = subject_ticket_number(&mail.subject)
            && let Some(ticket) = self.repo.find_ticket(n).await?
            && self.repo.is_participant(ticket.id, sender).await?
        {
            return Ok(Some(ticket));
        }
        Ok(None)
    }

    async fn route(&self, account: Option<&MailAccount>) -> Result<Department, IngestError> {
        if let Some(a) = account
            && let Some(d) = self.department(a.department_id).await?
        {
            return Ok(d);
        }
        if let Some(id) = self.settings.default_department_id
            && let Some(d) = self.department(id).await?
        {
            return Ok(d);
        }
        let load = || async {
            Ok::<_, RepoError>(self.repo.list_departments().await?.into_iter().find(|d| d.status.is_active()))
        };
        // Kept only when there is one: the first department made is used at once.
        let first: Option<Department> =
            self.setup.fallback.get_or_load((), self.clock.now(), load, Option::is_some).await?;
        first.ok_or(IngestError::NoDepartment)
    }

    async fn outcome_of(&self, detail: TicketDetail, duplicate: bool) -> Result<IngestOutcome, IngestError> {
        let ticket = self
            .repo
            .find_ticket(detail.ticket_id)
            .await?
            .ok_or_else(|| RepoError::corrupt("detail without ticket"))?;
        let department = self.repo.find_department(ticket.department_id).await?.ok_or(IngestError::NoDepartment)?;
        Ok(IngestOutcome {
            ticket_id: ticket.id,
            detail_id: detail.id,
            created_ticket: detail.opened_ticket,
            duplicate,
            department,
            assignee_id: ticket.assignee_id,
            notices: self.repo.notices_of_detail(detail.id).await?,
            audit_written: false,
        })
    }
}

/// Who takes the next ticket: the operator with the fewest open tickets,
/// then the one who waited longest since their last assignment (never
/// assigned first), then by id.
pub fn least_loaded(loads: Vec<OperatorLoad>) -> Option<InternalUser> {
    loads.into_iter().min_by_key(load_order).map(|l| l.user)
}

fn load_order(l: &OperatorLoad) -> (i64, bool, Option<Timestamp>, i64) {
    (l.open_tickets, l.last_assigned_at.is_some(), l.last_assigned_at, l.user.id)
}

/// [`least_loaded`], counting the ticket in the chosen operator's load (as
/// assigned `now`) for the next pick.
fn take_least_loaded(loads: &mut [OperatorLoad], now: Timestamp) -> Option<InternalUser> {
    let chosen = loads.iter_mut().min_by_key(|l| load_order(l))?;
    chosen.open_tickets += 1;
    chosen.last_assigned_at = Some(now);
    Some(chosen.user.clone())
}

/// What identifies a mail: its dedupe key (from the Message-ID, or from
/// its content when it has none) and its normalised Message-ID.
#[derive(Debug, Clone)]
struct MailKeys {
    dedupe_key: String,
    message_id: Option<MessageId>,
}

impl MailKeys {
    fn of(mail: &IncomingMail) -> Self {
        let message_id = header(&mail.headers, "Message-ID").and_then(MessageId::parse);
        let dedupe_key = match &message_id {
            Some(m) => m.dedupe_key(),
            None => sha256_hex(
                format!(
                    "content:{}\n{}\n{}\n{}",
                    bare_address(&mail.from),
                    mail.date.format("%Y-%m-%d %H:%M:%S"),
                    mail.subject,
                    mail.body
                )
                .as_bytes(),
            ),
        };
        Self { dedupe_key, message_id }
    }
}

/// A mail that opens a ticket, read and routed, waiting for its batch
/// (where it gets its assignee and notices).
struct Opening {
    mail: IncomingMail,
    keys: MailKeys,
    automatic: bool,
    sender: String,
    account_id: Option<i64>,
    /// Where its acknowledgement goes, should the sender's hourly limit
    /// allow one.
    ack_to: Option<String>,
    department: Department,
    sla: Option<SlaClock>,
    /// Our addresses as the mail was read.
    own: super::OwnSet,
    now: Timestamp,
    /// The request's bitácora record, written with the ticket.
    audit: Option<AuditRecord>,
}

/// Whether mail from our own addresses is held (a release is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    OwnMail,
    Never,
}

/// A mail's writes, decided, and what its answer says besides the ids.
struct Planned {
    incoming: NewIncoming,
    answer: Answer,
}

impl Planned {
    fn new(incoming: NewIncoming, department: Department, assignee_id: Option<i64>) -> Self {
        let answer = Answer {
            department,
            assignee_id,
            notices: incoming.notices.clone(),
            now: incoming.now,
            due: incoming.notices_due_at,
            audit: incoming.audit.is_some(),
        };
        Planned { incoming, answer }
    }

    /// The writes, to hand to the store, and the answer to give once they
    /// are stored.
    fn split(self) -> (NewIncoming, Answer) {
        (self.incoming, self.answer)
    }
}

/// What a stored mail's answer says besides the ids.
struct Answer {
    department: Department,
    assignee_id: Option<i64>,
    notices: Vec<NewNotice>,
    now: Timestamp,
    due: Timestamp,
    /// The writes carry the request's bitácora record.
    audit: bool,
}

impl Answer {
    /// The answer once stored: the notices as queued, without reading them
    /// back.
    fn outcome(self, stored: StoredIncoming) -> IngestOutcome {
        IngestOutcome {
            ticket_id: stored.ticket_id,
            detail_id: stored.detail_id,
            created_ticket: stored.created_ticket,
            duplicate: false,
            department: self.department,
            assignee_id: self.assignee_id,
            notices: self
                .notices
                .into_iter()
                .zip(stored.notice_ids)
                .map(|(spec, id)| Notice::pending(id, stored.ticket_id, stored.detail_id, spec, self.now, self.due))
                .collect(),
            audit_written: self.audit,
        }
    }
}

/// Who may write into the ticket later by its number: the sender, the
/// Reply-To, the Cc and the assignee; each an address that parses (the
/// domain's one parser, as the API's `to`), none of ours. What does not
/// parse is dropped and said in the thread.
#[derive(Debug, Default)]
struct Participants {
    list: Vec<String>,
    events: Vec<NewTicketEvent>,
}

impl Participants {
    fn of(mail: &IncomingMail, sender: &str, assignee: Option<&InternalUser>, own: &super::OwnSet) -> Self {
        let mut found = vec![Address::parse(sender)];
        let mut invalid = Vec::new();
        if let Some(r) = mail.reply_to.as_deref().filter(|r| !r.trim().is_empty()) {
            found.push(Address::parse(r));
        }
        if let Some(cc) = mail.cc.as_deref() {
            let list = Address::list(cc);
            found.extend(list.valid.into_iter().map(Some));
            invalid = list.invalid;
        }
        found.push(assignee.and_then(|a| Address::parse(&a.email)));
        let mut list: Vec<String> = Vec::new();
        for a in found.into_iter().flatten() {
            if !own.contains(a.as_str()) && !list.iter().any(|p| p == a.as_str()) {
                list.push(a.as_str().to_string());
            }
        }
        let events = if invalid.is_empty() {
            Vec::new()
        } else {
            vec![NewTicketEvent {
                actor_id: None,
                kind: EventKind::ParticipantDropped,
                before: Some(event_text(&invalid)),
                after: None,
            }]
        };
        Participants { list, events }
    }

    /// A mail from outside the ticket adds at most `max` participants it
    /// does not have yet (`known`); the rest are said in the thread.
    fn cap(&mut self, known: &[String], max: usize) {
        let (mut new, mut skipped) = (0, Vec::new());
        self.list.retain(|p| {
            if known.iter().any(|k| k.eq_ignore_ascii_case(p)) {
                return true;
            }
            new += 1;
            if new > max {
                skipped.push(p.clone());
            }
            new <= max
        });
        if !skipped.is_empty() {
            self.events.push(NewTicketEvent {
                actor_id: None,
                kind: EventKind::ParticipantsSkipped,
                before: Some(event_text(&skipped)),
                after: None,
            });
        }
    }
}

/// A list for a thread event, cut to a readable length.
fn event_text(items: &[String]) -> String {
    let text = items.join(", ");
    if text.chars().count() <= EVENT_TEXT_MAX {
        return text;
    }
    let cut: String = text.chars().take(EVENT_TEXT_MAX).collect();
    format!("{cut}… ({} en total)", items.len())
}

/// What a summary says when no notice of its kind was queued.
pub const NOT_NOTIFIED: &str = "No emitida";

/// What `notificacion_SLA_Synology` says: each chat notice's state.
pub fn synology_summary(notices: &[Notice], department: &Department) -> String {
    let parts: Vec<String> = notices
        .iter()
        .filter(|n| n.kind.is_chat())
        .map(|n| {
            let whom = match n.kind {
                NoticeKind::DepartmentChannel => {
                    format!("canal {}", department.synology_channel.clone().unwrap_or_else(|| department.name.clone()))
                }
                _ => format!("usuario {}", n.recipient),
            };
            state_text(n, &whom)
        })
        .collect();
    if parts.is_empty() { NOT_NOTIFIED.into() } else { parts.join("; ") }
}

/// What `notificacion_SLA_Correo` says: the assignee's e-mail notice.
pub fn mail_summary(notices: &[Notice]) -> String {
    let parts: Vec<String> =
        notices.iter().filter(|n| n.kind == NoticeKind::AssigneeMail).map(|n| state_text(n, &n.recipient)).collect();
    if parts.is_empty() { NOT_NOTIFIED.into() } else { parts.join("; ") }
}

fn state_text(n: &Notice, whom: &str) -> String {
    match n.status {
        NoticeStatus::Sent => format!("Enviada a {whom}"),
        NoticeStatus::Pending => format!("En cola para {whom} (se reintentará)"),
        NoticeStatus::Failed => format!("Fallida para {whom}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        for ok in ["logs/error_log.txt", "a.txt", "2025/10/x y.pdf", "dir\\file.txt"] {
            assert!(is_safe_route(ok), "{ok}");
        }
        for bad in ["/etc/passwd", "../x", "a/../../x", "a/..", "\\\\server\\x", "C:\\x", "file:///x", "", "a\u{0}b"] {
            assert!(!is_safe_route(bad), "{bad}");
        }
        // What the security pass got through, and relatives.
        for bad in [
            "%2e%2e/%2e%2e/etc/passwd",
            "%252e%252e/x",
            ".. /x",
            " ../x",
            "a/. ./x",
            "\u{ff0e}\u{ff0e}/x",
            "a/\u{ff0e}\u{ff0e}/b",
            "~/.ssh/id_rsa",
            "%2fetc/passwd",
            "C\u{ff1a}\\x",
            "a/%00b",
            ".../x",
        ] {
            assert!(!is_safe_route(bad), "{bad}");
        }
        for ok in ["a/.hidden", "v1.2/notes..txt", "./x", "100%20.txt"] {
            assert!(is_safe_route(ok), "{ok}");
        }
        // A `%` left after decoding might decode again later: refused.
        assert!(!is_safe_route("100%25.txt"));
    }

    #[test]
    fn addresses_and_subjects() {
        assert_eq!(bare_address("Ana Pérez <Ana@Cliente.TEST>"), "ana@cliente.test");
        let list = Address::list("a@x.test, B <b@y.test>; nada");
        assert_eq!(list.valid.iter().map(Address::as_str).collect::<Vec<_>>(), vec!["a@x.test", "b@y.test"]);
        assert_eq!(list.invalid, vec!["nada"]);
        assert_eq!(subject_ticket_number("Re: [Ticket #132] No funciona"), Some(132));
        assert_eq!(subject_ticket_number("RE: ticket#7"), Some(7));
        assert_eq!(subject_ticket_number("Pedido #132"), None);
    }

    #[test]
    fn signed_message_ids() {
        let s = MessageIdSigner::new(SecretHasher::new([1; 32]), "Helpdesk.Test");
        let id_of = |raw: &str| MessageId::parse(raw).unwrap();
        let id = s.for_notice(132, 9);
        assert_eq!(id, id.to_lowercase(), "written in the form it is compared in");
        assert_eq!(s.ticket_of(&id_of(&format!("<{id}>"))), Some(132));
        assert_eq!(s.ticket_of(&id_of(&id.to_uppercase())), Some(132), "whatever case it comes back in");
        assert_eq!(s.ticket_of(&id_of(&id.replace("ticket132", "ticket133"))), None, "forged number");
        assert_eq!(MessageIdSigner::new(SecretHasher::new([2; 32]), "x").ticket_of(&id_of(&id)), None, "another key");
        assert_eq!(s.ticket_of(&id_of("cualquier@otro.test")), None);
        let reply = s.for_reply(132);
        assert_eq!(reply.as_str(), reply.as_str().to_lowercase());
        assert_eq!(s.ticket_of(&reply), Some(132), "{reply}");
        assert_ne!(reply, s.for_reply(132), "each reply its own id");
        assert_eq!(s.ticket_of(&id_of(&reply.as_str().replace("ticket132", "ticket7"))), None, "forged number");
    }

    #[tokio::test]
    async fn routing_setup_is_cached_for_its_lifetime() {
        use crate::ports::{DepartmentRepository, MailAccountRepository};
        use crate::testing::{InMemoryStore, ManualClock};
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(crate::ports::SystemClock.now()));
        let first =
            store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let ventas =
            store.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap();
        let settings = test_settings(std::time::Duration::from_secs(5));
        let ids = MessageIdSigner::new(SecretHasher::new([1; 32]), "helpdesk.test");
        let ingest = IngestService::new(store.clone(), ids, clock.clone(), settings);
        let to_ventas = |n: u32| IncomingMail {
            to: "ventas@helpdesk.test".into(),
            ..mail(&[("Message-ID", &format!("<m{n}@cliente.test>"))], "c@cliente.test")
        };
        assert_eq!(
            ingest.ingest(to_ventas(1)).await.unwrap().ticket().unwrap().department.id,
            first.id,
            "no mailbox yet: the first"
        );
        store
            .create_mail_account(NewMailAccount {
                host: "imap.helpdesk.test".into(),
                user: "ventas@helpdesk.test".into(),
                sealed_password: vec![0; 40],
                port: "993".into(),
                mailboxes: vec!["INBOX".into()],
                department_id: ventas.id,
                status: Status::Active,
                send_acknowledgement: false,
            })
            .await
            .unwrap();
        assert_eq!(
            ingest.ingest(to_ventas(2)).await.unwrap().ticket().unwrap().department.id,
            first.id,
            "the mailboxes are cached"
        );
        clock.advance(Duration::seconds(6));
        assert_eq!(
            ingest.ingest(to_ventas(3)).await.unwrap().ticket().unwrap().department.id,
            ventas.id,
            "and read again after 5 s"
        );
    }

    /// A department's operators come from the routing cache, their loads
    /// are read for every mail: a new operator waits for the cache to
    /// expire, a ticket closed counts at once.
    #[tokio::test]
    async fn operators_are_cached_and_their_loads_read_for_every_mail() {
        use crate::ports::{DepartmentRepository, TicketRepository, UserRepository};
        use crate::testing::contract::sample_user;
        use crate::testing::{InMemoryStore, ManualClock};
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(crate::ports::SystemClock.now()));
        let d =
            store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let ana = store.create_user(sample_user("ana", "ana@helpdesk.test", Some(d.id))).await.unwrap();
        let bea = store.create_user(sample_user("bea", "bea@helpdesk.test", Some(d.id))).await.unwrap();
        let ids = MessageIdSigner::new(SecretHasher::new([1; 32]), "helpdesk.test");
        let ingest =
            IngestService::new(store.clone(), ids, clock.clone(), test_settings(std::time::Duration::from_secs(5)));
        let open = |n: u32| {
            let ingest = &ingest;
            async move {
                let mail = mail(&[("Message-ID", &format!("<o{n}@cliente.test>"))], &format!("c{n}@cliente.test"));
                ingest.ingest(mail).await.unwrap().ticket().unwrap()
            }
        };
        let first = open(1).await;
        let second = open(2).await;
        let mut got = [first.assignee_id, second.assignee_id];
        got.sort();
        assert_eq!(got, [Some(ana.id), Some(bea.id)], "one each");
        let carla = store.create_user(sample_user("carla", "carla@helpdesk.test", Some(d.id))).await.unwrap();
        let third = open(3).await;
        assert_ne!(third.assignee_id, Some(carla.id), "the operators are cached");
        // Close every open ticket of whoever got the first: 0 open, read now.
        for t in [&first, &third].into_iter().filter(|t| t.assignee_id == first.assignee_id) {
            store.set_ticket_status(t.ticket_id, TicketStatus::Closed, clock.now()).await.unwrap();
        }
        assert_eq!(open(4).await.assignee_id, first.assignee_id, "loads are read for every mail");
        clock.advance(Duration::seconds(6));
        assert_eq!(open(5).await.assignee_id, Some(carla.id), "and the operators again after 5 s");
    }

    #[tokio::test]
    async fn mail_is_announced_to_the_webhooks_that_want_it() {
        use crate::ports::{DepartmentRepository, TicketRepository, WebhookRepository};
        use crate::testing::{InMemoryStore, ManualClock};
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(crate::ports::SystemClock.now()));
        store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let settings = test_settings(std::time::Duration::from_secs(5));
        let ids = MessageIdSigner::new(SecretHasher::new([1; 32]), "helpdesk.test");
        let ingest = IngestService::new(store.clone(), ids, clock.clone(), settings);
        let pending = || async {
            let far = clock.now() + Duration::days(1);
            let claimed = store.claim_due_deliveries(far, 100, far).await.unwrap();
            let bodies = claimed.iter().map(|d| (d.kind, serde_json::from_str(&d.body).unwrap()));
            bodies.collect::<Vec<(WebhookEventKind, serde_json::Value)>>()
        };
        let first = ingest
            .ingest(mail(&[("Message-ID", "<m1@cliente.test>")], "c@cliente.test"))
            .await
            .unwrap()
            .ticket()
            .unwrap();
        assert!(pending().await.is_empty(), "no subscription");

        let now = clock.now();
        let kinds = [WebhookEventKind::TicketCreated, WebhookEventKind::CustomerReply, WebhookEventKind::StatusChanged];
        let events = kinds.into_iter().collect();
        let hook =
            NewWebhook { url: "http://r.test/".into(), events, sealed_secret: vec![1], status: Status::Active, now };
        store.create_webhook(hook).await.unwrap();
        let second = ingest
            .ingest(mail(&[("Message-ID", "<m2@cliente.test>")], "c@cliente.test"))
            .await
            .unwrap()
            .ticket()
            .unwrap();
        assert!(pending().await.is_empty(), "the subscriptions are cached for 5 s");
        clock.advance(Duration::seconds(6));
        let third = ingest
            .ingest(mail(&[("Message-ID", "<m3@cliente.test>")], "Cliente <c@cliente.test>"))
            .await
            .unwrap()
            .ticket()
            .unwrap();
        let got = pending().await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, WebhookEventKind::TicketCreated);
        let body = &got[0].1;
        assert_eq!(
            (&body["ticket"]["id_ticket"], &body["mensaje"]["id_detalle_ticket"]),
            (&third.ticket_id.into(), &third.detail_id.into())
        );
        assert_eq!(
            (body["ticket"]["solicitante"].as_str(), body["mensaje"]["remitente"].as_str()),
            (Some("c@cliente.test"), Some("Cliente <c@cliente.test>"))
        );
        assert_eq!(
            (body["ticket"]["estado"].as_str(), body["ticket"]["departamento"].as_str()),
            (Some("abierto"), Some("Soporte"))
        );
        let _ = second;

        // An answer to the first ticket, closed meanwhile: a customer's
        // reply, and the status it reopened.
        store.set_ticket_status(first.ticket_id, TicketStatus::Closed, clock.now()).await.unwrap();
        let answer =
            mail(&[("Message-ID", "<m4@cliente.test>"), ("In-Reply-To", "<m1@cliente.test>")], "c@cliente.test");
        let stored = ingest.ingest(answer).await.unwrap().ticket().unwrap();
        assert_eq!(stored.ticket_id, first.ticket_id);
        let got = pending().await;
        let kinds: Vec<WebhookEventKind> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [WebhookEventKind::TicketCreated, WebhookEventKind::CustomerReply, WebhookEventKind::StatusChanged]
        );
        for (_, body) in &got[1..] {
            assert_eq!(body["ticket"]["id_ticket"], first.ticket_id);
            assert_eq!(body["mensaje"]["id_detalle_ticket"], stored.detail_id);
            assert_eq!(body["ticket"]["estado"], "abierto");
        }
        assert_eq!(
            got[2].1["cambio"],
            serde_json::json!({"campo": "estado", "anterior": "cerrado", "nuevo": "abierto"})
        );
        // An answer to an open ticket changes no status.
        let again =
            mail(&[("Message-ID", "<m5@cliente.test>"), ("In-Reply-To", "<m1@cliente.test>")], "c@cliente.test");
        ingest.ingest(again).await.unwrap().ticket().unwrap();
        let kinds: Vec<WebhookEventKind> = pending().await.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds.len(), 4);
        assert_eq!(kinds[3], WebhookEventKind::CustomerReply);
    }

    /// A ticket number in the subject threads only a participant's mail: a
    /// stranger who writes `[Ticket #N]` opens a ticket of their own.
    #[tokio::test]
    async fn a_subject_number_threads_participants_only() {
        use crate::ports::DepartmentRepository;
        use crate::testing::InMemoryStore;
        let store = Arc::new(InMemoryStore::new());
        store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let settings = test_settings(std::time::Duration::ZERO);
        let ids = MessageIdSigner::new(SecretHasher::new([5; 32]), "helpdesk.test");
        let ingest = IngestService::new(store.clone(), ids, Arc::new(crate::ports::SystemClock), settings);
        let mut first = mail(&[("Message-ID", "<p1@cliente.test>")], "cliente@cliente.test");
        first.cc = Some("colega@cliente.test".into());
        let t = ingest.ingest(first).await.unwrap().ticket().unwrap().ticket_id;
        let by_subject = |id: &str, from: &str| IncomingMail {
            subject: format!("Re: [Ticket #{t}] s"),
            ..mail(&[("Message-ID", &format!("<{id}@x.test>"))], from)
        };
        let colleague =
            ingest.ingest(by_subject("p2", "Colega <colega@cliente.test>")).await.unwrap().ticket().unwrap();
        assert_eq!((colleague.ticket_id, colleague.created_ticket), (t, false), "a participant joins");
        let stranger = ingest.ingest(by_subject("p3", "intruso@otro.test")).await.unwrap().ticket().unwrap();
        assert!(stranger.created_ticket && stranger.ticket_id != t, "a stranger opens their own");
    }

    /// Settings for these tests: no acknowledgements, `setup_cache` as given.
    fn test_settings(setup_cache: std::time::Duration) -> IngestSettings {
        IngestSettings {
            default_department_id: None,
            acks_per_hour: 0,
            chat_to_users: false,
            first_attempt_grace: Duration::seconds(3),
            setup_cache,
            own_addresses: vec![],
            max_new_participants: 20,
        }
    }

    fn mail(headers: &[(&str, &str)], from: &str) -> IncomingMail {
        IncomingMail {
            system: "canal".into(),
            subject: "s".into(),
            from: from.into(),
            to: "soporte@helpdesk.test".into(),
            cc: None,
            bcc: None,
            reply_to: None,
            body: "b".into(),
            html: String::new(),
            date: crate::ports::SystemClock.now(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            attachments: vec![],
            received_by: None,
        }
    }

    #[test]
    fn loops_are_recognised() {
        let own = crate::services::OwnAddresses::new(
            vec![Address::parse("soporte@helpdesk.test").unwrap()],
            std::time::Duration::ZERO,
        )
        .with_accounts(&[]);
        assert!(!is_automatic(&mail(&[], "cliente@x.test"), &own));
        assert!(!is_automatic(&mail(&[("Auto-Submitted", "no")], "cliente@x.test"), &own));
        assert!(!is_automatic(&mail(&[("Auto-Submitted", " No ; x=y")], "cliente@x.test"), &own));
        for h in [
            ("auto-submitted", "auto-replied"),
            ("Auto-Submitted", "auto-generated"),
            ("Auto-Submitted", "auto-notified; owner-email=x@x.test"),
            ("X-Autoreply", "yes"),
            ("X-Autorespond", "x"),
            ("Precedence", "auto_reply"),
            ("Precedence", "junk"),
            ("Precedence", "bulk"),
            ("Precedence", "List"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-Loop", "x"),
            ("Return-Path", "<>"),
        ] {
            assert!(is_automatic(&mail(&[h], "cliente@x.test"), &own), "{h:?}");
        }
        assert!(is_automatic(&mail(&[], "MAILER-DAEMON@x.test"), &own));
        assert!(is_automatic(&mail(&[], "postmaster@x.test"), &own));
        assert!(is_automatic(&mail(&[], "Soporte <soporte@helpdesk.test>"), &own));
    }
}
