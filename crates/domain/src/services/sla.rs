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
        if (new.department_id != ticket.department_id || new.priority != ticket.priority)
            && let Some(terms) = setup.terms(new.department_id, new.priority)
        {
            clock = Some(match clock {
                Some(c) => terms.apply(&c),
                None => {
                    let c = terms.start(ticket.created_at);
                    // Stopped as the ticket is, from now.
                    terms.on_status(&c, ticket.status, now)
                }
            });
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
        if let Some(a) = &assignee
            && let Some(sid) = a.synology_id.filter(|_| self.chat_to_users)
        {
            let kind = if breach { NoticeKind::SlaBreachChat } else { NoticeKind::SlaWarningChat };
            notices.push(notice(kind, sid.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{OutboxRepository, SlaRepository, TicketRepository};
    use crate::testing::contract::{new_incoming, sample_user};
    use crate::testing::{InMemoryStore, ManualClock};

    fn at(s: &str) -> Timestamp {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    /// A ticket opened Monday 09:00 in Costa Rica under `normal`: 60 min to
    /// the first response (warned at 50 %), 240 to resolution.
    async fn fixture() -> (Arc<InMemoryStore>, Arc<ManualClock>, SlaService<InMemoryStore>, i64) {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(at("2026-11-30 15:00")));
        let d =
            store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let mut ana = sample_user("ana", "ana@helpdesk.test", Some(d.id));
        ana.synology_id = Some(77);
        let ana = store.create_user(ana).await.unwrap();
        let mut jefa = sample_user("jefa", "jefa@helpdesk.test", Some(d.id));
        jefa.manager = 1;
        store.create_user(jefa).await.unwrap();
        let policy = NewSlaPolicy {
            department_id: None,
            priority: Priority::Normal,
            first_response_mins: 60,
            resolution_mins: 240,
            warning_pct: Some(50),
        };
        store.save_policy(policy).await.unwrap();
        let svc = SlaService::new(store.clone(), clock.clone(), std::time::Duration::ZERO, true);
        let mut incoming = new_incoming(d.id, Some(ana.id), "m1", "cliente@cliente.test");
        if let IncomingTarget::New(t) = &mut incoming.target {
            t.sla = svc.book().start(d.id, Priority::Normal, clock.now()).await.unwrap();
        }
        incoming.notices.clear();
        let ticket = store.store_incoming(incoming).await.unwrap().ticket_id;
        (store, clock, svc, ticket)
    }

    async fn told(store: &InMemoryStore, ticket: i64) -> Vec<(NoticeKind, String)> {
        let detail = store.details_of(ticket).await.unwrap().last().unwrap().id;
        store.notices_of_detail(detail).await.unwrap().into_iter().map(|n| (n.kind, n.recipient)).collect()
    }

    #[tokio::test]
    async fn each_threshold_is_announced_once() {
        let (store, clock, svc, t) = fixture().await;
        assert!(svc.escalate_due(10).await.unwrap().is_empty(), "nothing crossed yet");
        clock.advance(chrono::Duration::minutes(31));
        let done = svc.escalate_due(10).await.unwrap();
        assert_eq!(done.iter().map(|e| e.threshold).collect::<Vec<_>>(), vec![SlaThreshold::FirstResponseWarning]);
        assert_eq!(told(&store, t).await, vec![(NoticeKind::SlaWarningChat, "77".to_string())]);
        assert!(svc.escalate_due(10).await.unwrap().is_empty(), "announced once");
        clock.advance(chrono::Duration::minutes(30));
        let done = svc.escalate_due(10).await.unwrap();
        assert_eq!(done.iter().map(|e| e.threshold).collect::<Vec<_>>(), vec![SlaThreshold::FirstResponseBreach]);
        let mut notices = told(&store, t).await;
        notices.sort_by_key(|(k, r)| (k.as_str(), r.clone()));
        assert_eq!(
            notices,
            vec![
                (NoticeKind::SlaWarningChat, "77".to_string()),
                (NoticeKind::SlaBreachMail, "ana@helpdesk.test".to_string()),
                (NoticeKind::SlaBreachMail, "jefa@helpdesk.test".to_string()),
                (NoticeKind::SlaBreachChat, "77".to_string()),
            ]
        );
        assert_eq!(svc.breaches(), 1);
        assert!(svc.escalate_due(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_breach_found_with_its_warning_leaves_the_warning_unsaid() {
        let (store, clock, svc, t) = fixture().await;
        clock.advance(chrono::Duration::minutes(90));
        let done = svc.escalate_due(10).await.unwrap();
        assert_eq!(done.iter().map(|e| e.threshold).collect::<Vec<_>>(), vec![SlaThreshold::FirstResponseBreach]);
        assert!(told(&store, t).await.iter().all(|(k, _)| *k != NoticeKind::SlaWarningChat));
        assert!(svc.escalate_due(10).await.unwrap().is_empty(), "the warning was claimed with the breach");
        assert!(store.pending_notices().await.unwrap() > 0);
    }
}
