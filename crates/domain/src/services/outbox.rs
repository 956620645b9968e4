//! Delivery of the outbox: claim, say what each notice is about from the
//! current ticket (the notifier adapters write the words), send, record the
//! attempt; retries with exponential backoff.

use std::sync::Arc;

use chrono::Duration;

use crate::crypto::SecretBox;
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{BoxFuture, ChatNotifier, Clock, MailNotifier, NotifyError};
use crate::services::{MessageIdSigner, OwnAddresses};

#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Attempts before a notice is given up (`fallida`).
    pub max_attempts: i32,
    /// How long a claimer holds a notice before others may take it.
    pub lease: Duration,
    /// First retry delay; doubles each attempt, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            lease: Duration::seconds(60),
            base_backoff: Duration::seconds(5),
            max_backoff: Duration::hours(1),
        }
    }
}

/// The ports [`OutboxService`] calls: any store providing them will do (the
/// whole `Store`, or a fake or mock of just these).
pub trait OutboxPorts:
    crate::ports::OutboxRepository
    + crate::ports::TicketRepository
    + crate::ports::DepartmentRepository
    + crate::ports::UserRepository
    + crate::ports::SlaRepository
    + crate::ports::MailAccountRepository
{
}
impl<
    T: crate::ports::OutboxRepository
        + crate::ports::TicketRepository
        + crate::ports::DepartmentRepository
        + crate::ports::UserRepository
        + crate::ports::SlaRepository
        + crate::ports::MailAccountRepository,
> OutboxPorts for T
{
}

pub struct OutboxService<R: OutboxPorts, M: MailNotifier, C: ChatNotifier> {
    repo: Arc<R>,
    mail: Arc<M>,
    chat: Arc<C>,
    secret_box: SecretBox,
    ids: MessageIdSigner,
    clock: Arc<dyn Clock>,
    settings: OutboxSettings,
    own: OwnAddresses,
}

impl<R: OutboxPorts, M: MailNotifier, C: ChatNotifier> OutboxService<R, M, C> {
    pub fn new(
        repo: Arc<R>,
        mail: Arc<M>,
        chat: Arc<C>,
        secret_box: SecretBox,
        ids: MessageIdSigner,
        clock: Arc<dyn Clock>,
        settings: OutboxSettings,
    ) -> Self {
        Self { repo, mail, chat, secret_box, ids, clock, settings, own: OwnAddresses::mailboxes_only() }
    }

    /// Our addresses besides the mailboxes: a reply is never mailed to them.
    pub fn with_own_addresses(mut self, own: OwnAddresses) -> Self {
        self.own = own;
        self
    }

    /// Delivers what is due now, at most `limit`; returns how many were tried.
    pub async fn run_due(&self, limit: i64) -> Result<usize, RepoError> {
        let now = self.clock.now();
        let claimed = self.repo.claim_due_notices(now, limit, now + self.settings.lease).await?;
        Ok(self.deliver_all(claimed).await?.len())
    }

    /// Tries these notices once now, if nobody else holds them; returns the
    /// ones tried, in their new state.
    pub async fn deliver_now(&self, ids: Vec<i64>) -> Result<Vec<Notice>, RepoError> {
        let now = self.clock.now();
        let claimed = self.repo.claim_notices(ids, now, now + self.settings.lease).await?;
        self.deliver_all(claimed).await
    }

    /// The first delivery attempt of notices just queued, made for the
    /// request that queued them so that its answer can say "sent".
    ///
    /// The attempt ([`Self::deliver_now`]) is handed to `spawn` to run on its
    /// own, and this waits for it until `deadline` resolves, whichever ends
    /// first. Attempt ended in time (whatever its outcome: the notices record
    /// it): the notices of `detail_id` read again. Otherwise `queued` as they
    /// were: the attempt goes on in its task, and the worker retries what it
    /// leaves undelivered.
    ///
    /// The domain has no runtime: the caller lends one. `spawn` runs a task
    /// in the background (the HTTP adapter puts it in the tracked set that
    /// shutdown waits for), `deadline` is a timer (`tokio::time::sleep`); a
    /// test can hold the task, or pass a deadline that never comes.
    pub async fn first_attempt(
        self: &Arc<Self>,
        queued: Vec<Notice>,
        detail_id: i64,
        spawn: impl FnOnce(BoxFuture<'static, ()>),
        deadline: impl Future<Output = ()>,
    ) -> Result<Vec<Notice>, RepoError> {
        let ids: Vec<i64> = queued.iter().map(|n| n.id).collect();
        let (done, ended) = futures_channel::oneshot::channel();
        let outbox = self.clone();
        spawn(Box::pin(async move {
            // Its outcome is in the notices; only its end matters here.
            let _ = outbox.deliver_now(ids).await;
            let _ = done.send(());
        }));
        // Dropped without an answer (the attempt panicked) counts as ended.
        match futures_util::future::select(ended, std::pin::pin!(deadline)).await {
            futures_util::future::Either::Left(_) => self.repo.notices_of_detail(detail_id).await,
            futures_util::future::Either::Right(_) => Ok(queued),
        }
    }

    async fn deliver_all(&self, claimed: Vec<Notice>) -> Result<Vec<Notice>, RepoError> {
        let mut out = Vec::with_capacity(claimed.len());
        for notice in claimed {
            out.push(self.deliver(notice).await?);
        }
        Ok(out)
    }

    /// One attempt at a claimed notice, recorded.
    async fn deliver(&self, notice: Notice) -> Result<Notice, RepoError> {
        let result = self.send(&notice).await;
        let now = self.clock.now();
        let outcome = match result {
            Ok(result) => AttemptOutcome::Sent { result },
            Err(NotifyError::Permanent(error)) => {
                AttemptOutcome::Failed { follow_up: self.follow_up(&notice, &error, now).await?, error }
            }
            Err(NotifyError::Temporary(e)) if notice.attempts + 1 >= self.settings.max_attempts => {
                let error = format!("gave up after {} attempts: {e}", notice.attempts + 1);
                AttemptOutcome::Failed { follow_up: self.follow_up(&notice, &error, now).await?, error }
            }
            Err(NotifyError::Temporary(e)) => {
                let factor = 1i32.checked_shl(notice.attempts.clamp(0, 20) as u32).unwrap_or(i32::MAX);
                let delay = (self.settings.base_backoff * factor).min(self.settings.max_backoff);
                AttemptOutcome::Retry { error: e, next_attempt_at: now + delay }
            }
        };
        self.repo.record_attempt(notice.id, now, outcome).await
    }

    /// What a notice given up writes with it: for an operator's reply, the
    /// thread's `entrega_fallida` event, a mail to the ticket's assignee
    /// (when active) and the `ticket.entrega_fallida` webhook event; for any
    /// other notice, nothing (a notice about a notice could loop).
    async fn follow_up(&self, notice: &Notice, error: &str, now: Timestamp) -> Result<FailureFollowUp, RepoError> {
        if notice.kind != NoticeKind::Reply {
            return Ok(FailureFollowUp::default());
        }
        let Some(ticket) = self.repo.find_ticket(notice.ticket_id).await? else {
            return Ok(FailureFollowUp::default());
        };
        let reason: String = error.chars().take(DELIVERY_REASON_CHARS).collect();
        let event = NewTicketEvent {
            actor_id: None,
            kind: EventKind::DeliveryFailed,
            before: Some(notice.recipient.clone()),
            after: Some(reason.clone()),
        };
        let assignee = match ticket.assignee_id {
            Some(id) => self.repo.find_user(id).await?.filter(InternalUser::is_active),
            None => None,
        };
        let notices = assignee
            .iter()
            .map(|a| NewNotice { kind: NoticeKind::DeliveryFailedMail, recipient: a.email.clone() })
            .collect();
        let department = self.repo.find_department(ticket.department_id).await?.map(|d| d.name).unwrap_or_default();
        let announced = EventTicket {
            subject: ticket.subject.clone(),
            status: ticket.status,
            priority: ticket.priority,
            department_id: ticket.department_id,
            department,
            assignee: assignee.as_ref().map(EventPerson::of),
            requester: ticket.requester.clone(),
        };
        let mut webhook_event = NewWebhookEvent::new(WebhookEventKind::DeliveryFailed, announced, now)
            .with_failure(EventFailure { recipient: notice.recipient.clone(), reason });
        if let Some(detail) = self.repo.find_detail(notice.detail_id).await? {
            webhook_event =
                webhook_event.with_message(EventMessage::new(detail.direction, &detail.from, &detail.body, false));
        }
        Ok(FailureFollowUp { events: vec![event], notices, webhook_events: vec![webhook_event] })
    }

    async fn send(&self, notice: &Notice) -> Result<String, NotifyError> {
        let store = |e: RepoError| NotifyError::Temporary(format!("store: {e}"));
        let ticket = self
            .repo
            .find_ticket(notice.ticket_id)
            .await
            .map_err(store)?
            .ok_or_else(|| NotifyError::Permanent("ticket gone".into()))?;
        let detail = self
            .repo
            .find_detail(notice.detail_id)
            .await
            .map_err(store)?
            .ok_or_else(|| NotifyError::Permanent("detail gone".into()))?;
        if notice.kind.is_for_operator() && self.recipient_inactive(notice, &ticket).await.map_err(store)? {
            return Err(NotifyError::Permanent("the operator is inactive".into()));
        }
        let number = ticket.id;
        let subject = ticket.subject.clone();
        let message_id = self.ids.for_notice(ticket.id, notice.id);
        match notice.kind {
            NoticeKind::Acknowledgement => {
                self.mail
                    .send(OutgoingMail {
                        to: notice.recipient.clone(),
                        content: MailContent::TicketAcknowledgement { number, subject },
                        message_id: Some(message_id),
                        in_reply_to: detail.message_id.clone(),
                        references: vec![],
                        cc: vec![],
                        headers: vec![
                            ("Auto-Submitted".into(), "auto-replied".into()),
                            ("X-Auto-Response-Suppress".into(), "All".into()),
                            ("X-Loop".into(), "helpdesk".into()),
                        ],
                    })
                    .await
            }
            NoticeKind::AssigneeMail => {
                let excerpt: String = detail.body.chars().take(2000).collect();
                self.mail
                    .send(OutgoingMail {
                        to: notice.recipient.clone(),
                        content: MailContent::AssigneeNotice {
                            opened_ticket: detail.opened_ticket,
                            number,
                            subject,
                            from: detail.from.clone(),
                            date: detail.date,
                            excerpt,
                        },
                        message_id: Some(message_id),
                        in_reply_to: None,
                        references: vec![],
                        cc: vec![],
                        headers: vec![("Auto-Submitted".into(), "auto-generated".into())],
                    })
                    .await
            }
            NoticeKind::AssigneeChat => {
                let user: i64 =
                    notice.recipient.parse().map_err(|_| NotifyError::Permanent("bad Synology user id".into()))?;
                let message = ChatContent::AssigneeNotice {
                    opened_ticket: detail.opened_ticket,
                    number,
                    subject,
                    from: detail.from.clone(),
                };
                self.chat.send_to_user(user, message).await.map(|v| v.to_string())
            }
            NoticeKind::Reply => {
                // A human reply: threaded under the customer's messages, its
                // own Message-ID (stored with it, so the answer threads
                // back), no Auto-Submitted.
                let earlier: Vec<String> = self
                    .repo
                    .details_of(ticket.id)
                    .await
                    .map_err(store)?
                    .into_iter()
                    .filter(|d| d.id < detail.id && d.direction != Direction::Note)
                    .filter_map(|d| d.message_id)
                    .collect();
                let in_reply_to = earlier.last().cloned();
                let own_id = detail.message_id.clone().unwrap_or(message_id);
                let html = Some(detail.html.clone()).filter(|h| !h.trim().is_empty());
                // Never to ourselves (a loop); a Cc that does not parse or
                // is ours is left out, never the reason the reply fails.
                let ours = self.own.load(&*self.repo, self.clock.now()).await.map_err(store)?;
                if ours.contains(&notice.recipient) {
                    return Err(NotifyError::Permanent("the recipient is one of the helpdesk's own addresses".into()));
                }
                let cc: Vec<String> = detail
                    .cc
                    .as_deref()
                    .map(|cc| Address::list(cc).valid)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| !ours.contains(a.as_str()))
                    .map(|a| a.to_string())
                    .collect();
                self.mail
                    .send(OutgoingMail {
                        to: notice.recipient.clone(),
                        cc,
                        content: MailContent::OperatorReply {
                            number,
                            subject: detail.subject.clone(),
                            text: detail.body.clone(),
                            html,
                        },
                        message_id: Some(own_id),
                        in_reply_to,
                        references: earlier,
                        headers: vec![],
                    })
                    .await
            }
            NoticeKind::AssignedMail => {
                self.mail
                    .send(OutgoingMail {
                        to: notice.recipient.clone(),
                        cc: vec![],
                        content: MailContent::TicketAssigned { number, subject, requester: ticket.requester.clone() },
                        message_id: Some(message_id),
                        in_reply_to: None,
                        references: vec![],
                        headers: vec![("Auto-Submitted".into(), "auto-generated".into())],
                    })
                    .await
            }
            NoticeKind::DeliveryFailedMail => {
                let notices = self.repo.notices_of_detail(detail.id).await.map_err(store)?;
                let failed = notices
                    .iter()
                    .find(|n| n.kind == NoticeKind::Reply && n.status == NoticeStatus::Failed)
                    .ok_or_else(|| NotifyError::Permanent("no failed reply on this message".into()))?;
                let reason = Delivery::of(failed).reason.unwrap_or_default();
                self.mail
                    .send(OutgoingMail {
                        to: notice.recipient.clone(),
                        cc: vec![],
                        content: MailContent::DeliveryFailed {
                            number,
                            subject,
                            recipient: failed.recipient.clone(),
                            reason,
                        },
                        message_id: Some(message_id),
                        in_reply_to: None,
                        references: vec![],
                        headers: vec![("Auto-Submitted".into(), "auto-generated".into())],
                    })
                    .await
            }
            NoticeKind::AssignedChat => {
                let user: i64 =
                    notice.recipient.parse().map_err(|_| NotifyError::Permanent("bad Synology user id".into()))?;
                self.chat
                    .send_to_user(user, ChatContent::TicketAssigned { number, subject })
                    .await
                    .map(|v| v.to_string())
            }
            NoticeKind::DepartmentChannel => {
                let token = self.channel_token(&notice.recipient).await?;
                let message = ChatContent::NewTicket { number, subject, from: detail.from.clone() };
                self.chat.send_to_channel(token, message).await.map(|v| v.to_string())
            }
            NoticeKind::SlaWarningChat | NoticeKind::SlaBreachChat => {
                let user: i64 =
                    notice.recipient.parse().map_err(|_| NotifyError::Permanent("bad Synology user id".into()))?;
                let (target, due) = self.alert(&ticket).await?;
                let breached = notice.kind == NoticeKind::SlaBreachChat;
                let message = ChatContent::SlaAlert { number, subject, target, due, breached };
                self.chat.send_to_user(user, message).await.map(|v| v.to_string())
            }
            NoticeKind::SlaWarningChannel | NoticeKind::SlaBreachChannel => {
                let token = self.channel_token(&notice.recipient).await?;
                let (target, due) = self.alert(&ticket).await?;
                let breached = notice.kind == NoticeKind::SlaBreachChannel;
                let message = ChatContent::SlaAlert { number, subject, target, due, breached };
                self.chat.send_to_channel(token, message).await.map(|v| v.to_string())
            }
            NoticeKind::SlaBreachMail => {
                let (target, due) = self.alert(&ticket).await?;
                let assignee = match ticket.assignee_id {
                    Some(id) => self.repo.find_user(id).await.map_err(store)?.map(|u| u.name),
                    None => None,
                };
                self.mail
                    .send(OutgoingMail {
                        to: notice.recipient.clone(),
                        cc: vec![],
                        content: MailContent::SlaBreach { number, subject, target, due, assignee },
                        message_id: Some(message_id),
                        in_reply_to: None,
                        references: vec![],
                        headers: vec![("Auto-Submitted".into(), "auto-generated".into())],
                    })
                    .await
            }
        }
    }

    /// The department channel's webhook token (`recipient`: the department id).
    async fn channel_token(&self, recipient: &str) -> Result<String, NotifyError> {
        let department: i64 = recipient.parse().map_err(|_| NotifyError::Permanent("bad department id".into()))?;
        let sealed = self
            .repo
            .department_webhook(department)
            .await
            .map_err(|e| NotifyError::Temporary(format!("store: {e}")))?
            .ok_or_else(|| NotifyError::Permanent("the department has no Synology webhook".into()))?;
        self.secret_box.open(&sealed).map_err(|_| NotifyError::Permanent("the webhook token cannot be opened".into()))
    }

    /// What a service-level alert is about: the target the ticket's clock
    /// is nearest to missing and its due time in the calendar's zone.
    async fn alert(&self, ticket: &Ticket) -> Result<(SlaTarget, String), NotifyError> {
        let clock = ticket.sla.ok_or_else(|| NotifyError::Permanent("the ticket has no service level".into()))?;
        let (target, due) = clock.pressing();
        let setup = self.repo.sla_setup().await.map_err(|e| NotifyError::Temporary(format!("store: {e}")))?;
        let due = match setup.calendar(clock.calendar_id) {
            Some(c) => c.local_text(due),
            None => format!("{} UTC", due.format("%Y-%m-%d %H:%M")),
        };
        Ok((target, due))
    }

    /// An operator's notice whose operator is inactive now: by e-mail, a
    /// user with that address; by Synology, the ticket's assignee with that
    /// Synology id.
    async fn recipient_inactive(&self, notice: &Notice, ticket: &Ticket) -> Result<bool, RepoError> {
        if notice.kind.is_chat() {
            let Some(id) = ticket.assignee_id else { return Ok(false) };
            let user = self.repo.find_user(id).await?;
            return Ok(user.is_some_and(|u| {
                u.synology_id.map(|s| s.to_string()).as_deref() == Some(notice.recipient.as_str()) && !u.is_active()
            }));
        }
        let filter = UserFilter { email: Some(notice.recipient.clone()), ..Default::default() };
        let users = self.repo.find_users(filter).await?;
        Ok(!users.is_empty() && users.iter().all(|u| !u.is_active()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::crypto::SecretHasher;
    use crate::ports::{MockChatNotifier, MockMailNotifier, SystemClock};
    use crate::testing::InMemoryStore;

    type Outbox = OutboxService<InMemoryStore, MockMailNotifier, MockChatNotifier>;

    fn outbox() -> Arc<Outbox> {
        Arc::new(OutboxService::new(
            Arc::new(InMemoryStore::new()),
            Arc::new(MockMailNotifier::new()),
            Arc::new(MockChatNotifier::new()),
            SecretBox::new([7; 32]),
            MessageIdSigner::new(SecretHasher::new([8; 32]), "mesa.test"),
            Arc::new(SystemClock),
            OutboxSettings::default(),
        ))
    }

    /// The first attempt runs in the task given to `spawn`; the caller waits
    /// for it until the deadline, and not longer.
    #[tokio::test]
    async fn first_attempt_waits_for_its_task_until_the_deadline() {
        let outbox = outbox();
        // No deadline: answers once the task ended.
        let read =
            outbox.first_attempt(vec![], 1, |task| drop(tokio::spawn(task)), std::future::pending()).await.unwrap();
        assert!(read.is_empty());

        // The deadline came first: answers at once, the task is left to run.
        let held = Mutex::new(None);
        let read = outbox
            .first_attempt(vec![], 1, |task| *held.lock().unwrap() = Some(task), std::future::ready(()))
            .await
            .unwrap();
        assert!(read.is_empty());
        let task = held.lock().unwrap().take().expect("the attempt was handed over, not run inline");
        task.await;

        // A task dropped unrun (as if it panicked) counts as ended.
        let read = outbox.first_attempt(vec![], 1, drop, std::future::pending()).await.unwrap();
        assert!(read.is_empty());
    }

    /// A notice for an operator who became inactive is given up, not sent.
    #[tokio::test]
    async fn notices_to_inactive_operators_are_not_sent() {
        use crate::ports::{DepartmentRepository, OutboxRepository, TicketRepository, UserRepository};
        use crate::testing::contract::{new_incoming, sample_user};
        let store = Arc::new(InMemoryStore::new());
        let d =
            store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let ana = store.create_user(sample_user("ana", "ana@helpdesk.test", Some(d.id))).await.unwrap();
        let mut incoming = new_incoming(d.id, Some(ana.id), "m1", "cliente@cliente.test");
        incoming.notices = vec![NewNotice { kind: NoticeKind::AssignedMail, recipient: "ana@helpdesk.test".into() }];
        let stored = store.store_incoming(incoming).await.unwrap();
        store.set_user_status(ana.id, UserStatus::Inactive).await.unwrap();
        // A mailer that fails the test if called.
        let mail = MockMailNotifier::new();
        let outbox = OutboxService::new(
            store.clone(),
            Arc::new(mail),
            Arc::new(MockChatNotifier::new()),
            SecretBox::new([7; 32]),
            MessageIdSigner::new(SecretHasher::new([8; 32]), "mesa.test"),
            Arc::new(SystemClock),
            OutboxSettings::default(),
        );
        let tried = outbox.deliver_now(stored.notice_ids.clone()).await.unwrap();
        assert_eq!(tried.len(), 1);
        assert_eq!(tried[0].status, NoticeStatus::Failed, "{tried:?}");
        assert_eq!(tried[0].last_error.as_deref(), Some("the operator is inactive"));
        assert_eq!(store.pending_notices().await.unwrap(), 0);
    }
}
