//! Service levels at work: the clocks tickets carry as they open, wait and
//! close ([`SlaBook`]), and the escalation of the thresholds they cross
//! ([`SlaService`]). The arithmetic is in [`crate::model::SlaClock`].
//!
//! Escalation (docs/decisions.md, "Service levels"): each threshold of each
//! ticket is announced once, whatever the number of processes running the
//! worker: the store's unique key on `(ticket, threshold)` decides who
//! writes the notices, in the same transaction. A warning goes to the
//! assignee and the department's channel on Synology; a breach goes there
//! too and by e-mail to the assignee and the department's `jefe`s. A breach
//! found together with its warning (the worker was away) claims the
//! warning silently: nobody is warned of what is already late.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::RepoError;
use crate::model::*;
use crate::ports::{Clock, DepartmentRepository, SlaRepository, TicketRepository, UserRepository};
use crate::services::cache::TtlCache;

/// The policies and calendars, read through a short cache (an
/// administrator's change shows within its lifetime).
pub struct SlaBook<R: SlaRepository> {
    repo: Arc<R>,
    clock: Arc<dyn Clock>,
    cache: TtlCache<(), Arc<SlaSetup>>,
}

impl<R: SlaRepository> SlaBook<R> {
    pub fn new(repo: Arc<R>, clock: Arc<dyn Clock>, ttl: std::time::Duration) -> Self {
        Self { repo, clock, cache: TtlCache::new(ttl) }
    }

    pub async fn setup(&self) -> Result<Arc<SlaSetup>, RepoError> {
        let load = || async { Ok(Arc::new(self.repo.sla_setup().await?)) };
        self.cache.get_or_load((), self.clock.now(), load, |_| true).await
    }

    /// The clock of a ticket opening now, if a policy covers it.
    pub async fn start(
        &self,
        department_id: i64,
        priority: Priority,
        now: Timestamp,
    ) -> Result<Option<SlaClock>, RepoError> {
        Ok(self.setup().await?.terms(department_id, priority).map(|t| t.start(now)))
    }

    /// The ticket's clock once its fields become `new` at `now` (`None`:
    /// unchanged). A new department or priority recomputes the due times
    /// under its policy (a ticket that had none starts one from its
    /// creation); a new status stops or restarts it.
    pub async fn after_change(
        &self,
        ticket: &Ticket,
        new: TicketFields,
        now: Timestamp,
    ) -> Result<Option<SlaClock>, RepoError> {
        let setup = self.setup().await?;
        let mut clock = ticket.sla;
        if new.department_id != ticket.department_id || new.priority != ticket.priority {
            if let Some(terms) = setup.terms(new.department_id, new.priority) {
                clock = Some(match clock {
                    Some(c) => terms.apply(&c),
                    None => {
                        let c = terms.start(ticket.created_at);
                        // Stopped as the ticket is, from now.
                        terms.on_status(&c, ticket.status, now)
                    }
                });
            }
        }
        let Some(c) = clock else { return Ok(None) };
        let changed = if new.status != ticket.status {
            match terms_of(&setup, &c) {
                Some(terms) => terms.on_status(&c, new.status, now),
                None => c,
            }
        } else {
            c
        };
        Ok((Some(changed) != ticket.sla).then_some(changed))
    }
}

/// The terms a clock was computed with.
fn terms_of<'a>(setup: &'a SlaSetup, clock: &SlaClock) -> Option<SlaTerms<'a>> {
    let policy = setup.policies.iter().find(|p| p.id == clock.policy_id)?;
    let calendar = setup.calendar(clock.calendar_id)?;
    Some(SlaTerms { policy, calendar })
}

/// The ports [`SlaService`] calls.
pub trait SlaPorts: SlaRepository + TicketRepository + UserRepository + DepartmentRepository {}
impl<T: SlaRepository + TicketRepository + UserRepository + DepartmentRepository> SlaPorts for T {}

/// One threshold announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub ticket_id: i64,
    pub threshold: SlaThreshold,
    pub notice_ids: Vec<i64>,
}

pub struct SlaService<R: SlaPorts> {
    repo: Arc<R>,
    clock: Arc<dyn Clock>,
    book: SlaBook<R>,
    /// Whether assignees get Synology Chat bot messages.
    chat_to_users: bool,
    /// Breaches this process announced (`helpdesk_sla_breaches_total`).
    breaches: AtomicU64,
}

impl<R: SlaPorts> SlaService<R> {
    pub fn new(repo: Arc<R>, clock: Arc<dyn Clock>, setup_cache: std::time::Duration, chat_to_users: bool) -> Self {
        let book = SlaBook::new(repo.clone(), clock.clone(), setup_cache);
        Self { repo, clock, book, chat_to_users, breaches: AtomicU64::new(0) }
    }

    /// Breaches announced by this process since it started.
    pub fn breaches(&self) -> u64 {
        self.breaches.load(Ordering::Relaxed)
    }

    /// Tickets per service-level state now.
    pub async fn counts(&self) -> Result<Vec<(SlaState, i64)>, RepoError> {
        self.repo.sla_counts(self.clock.now()).await
    }

    /// Announces the thresholds crossed by now, at most `limit` read at a
    /// time; returns what this call announced (others may have claimed the
    /// rest).
    pub async fn escalate_due(&self, limit: i64) -> Result<Vec<Escalation>, RepoError> {
        let now = self.clock.now();
        let crossings = self.repo.sla_crossings(now, limit).await?;
        let mut done = Vec::new();
        for (ticket, threshold) in &crossings {
            // The warning of a breach found in the same pass is claimed and
            // goes unsaid.
            if !threshold.is_breach()
                && crossings.iter().any(|(t, th)| t.id == ticket.id && th.warning() == Some(*threshold))
            {
                self.repo.escalate(ticket.id, *threshold, Vec::new(), now).await?;
                continue;
            }
            let notices = self.notices(ticket, *threshold).await?;
            if let Some(notice_ids) = self.repo.escalate(ticket.id, *threshold, notices, now).await? {
                if threshold.is_breach() {
                    self.breaches.fetch_add(1, Ordering::Relaxed);
                }
                done.push(Escalation { ticket_id: ticket.id, threshold: *threshold, notice_ids });
            }
        }
        Ok(done)
    }

    /// Who is told of a crossed threshold: the assignee (Synology, if
    /// linked and the bot is configured) and the department's channel (if
    /// it has one); on a breach also the assignee and the department's
    /// `jefe`s by e-mail (every active `jefe` when the department has
    /// none). Inactive users are never addressed.
    async fn notices(&self, ticket: &Ticket, threshold: SlaThreshold) -> Result<Vec<NewNotice>, RepoError> {
        let breach = threshold.is_breach();
        let mut notices = Vec::new();
        let assignee = match ticket.assignee_id {
            Some(id) => self.repo.find_user(id).await?.filter(|u| u.is_active()),
            None => None,
        };
        let notice = |kind, recipient: String| NewNotice { kind, recipient };
        if let Some(a) = &assignee {
            if let Some(sid) = a.synology_id.filter(|_| self.chat_to_users) {
                let kind = if breach { NoticeKind::SlaBreachChat } else { NoticeKind::SlaWarningChat };
                notices.push(notice(kind, sid.to_string()));
            }
        }
        if self.repo.department_webhook(ticket.department_id).await?.is_some() {
            let kind = if breach { NoticeKind::SlaBreachChannel } else { NoticeKind::SlaWarningChannel };
            notices.push(notice(kind, ticket.department_id.to_string()));
        }
        if breach {
            let mut to: Vec<String> = assignee.iter().map(|a| a.email.to_lowercase()).collect();
            let department = UserFilter { department_id: Some(ticket.department_id), ..Default::default() };
            let mut managers: Vec<InternalUser> =
                self.repo.find_users(department).await?.into_iter().filter(|u| u.manager != 0).collect();
            if managers.is_empty() {
                managers =
                    self.repo.find_users(UserFilter::default()).await?.into_iter().filter(|u| u.manager != 0).collect();
            }
            to.extend(managers.into_iter().filter(|u| u.is_active()).map(|u| u.email.to_lowercase()));
            to.sort();
            to.dedup();
            notices.extend(to.into_iter().map(|r| notice(NoticeKind::SlaBreachMail, r)));
        }
        Ok(notices)
    }

    pub fn book(&self) -> &SlaBook<R> {
        &self.book
    }
}
