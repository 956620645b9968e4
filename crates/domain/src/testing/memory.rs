//! An in-memory store that honours the repository contract: for service tests
//! and as the reference the database adapters are checked against.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::error::RepoError;
use crate::model::*;
use crate::ports::*;

#[derive(Default)]
struct Inner {
    next_id: i64,
    next_audit_id: i64,
    products: BTreeMap<i64, Product>,
    product_grants: BTreeSet<(i64, i64)>,
    departments: BTreeMap<i64, Department>,
    roles: BTreeMap<i64, Role>,
    users: BTreeMap<i64, (InternalUser, Option<String>)>,
    devices: BTreeMap<i64, Device>,
    consumers: BTreeMap<i64, Consumer>,
    audit: BTreeMap<i64, AuditEntry>,
    mail_accounts: BTreeMap<i64, MailAccount>,
    sessions: BTreeMap<String, UserSession>,
    resets: BTreeMap<i64, PasswordReset>,
    throttles: BTreeMap<String, ThrottleState>,
    systems: BTreeMap<i64, IntegratedSystem>,
    login_tickets: BTreeMap<String, LoginTicket>,
    webhooks: BTreeMap<i64, Vec<u8>>,
    tickets: BTreeMap<i64, Ticket>,
    events: BTreeMap<i64, TicketEvent>,
    details: BTreeMap<i64, (TicketDetail, Option<String>)>,
    attachments: BTreeMap<i64, Attachment>,
    participants: BTreeSet<(i64, String)>,
    last_assigned: BTreeMap<i64, Timestamp>,
    notices: BTreeMap<i64, Notice>,
    attempts: Vec<(i64, Timestamp, bool)>,
    checkpoints: BTreeMap<(i64, String), Checkpoint>,
    quarantine: BTreeMap<i64, QuarantinedMail>,
    held: BTreeMap<i64, HeldMail>,
    console_sessions: BTreeMap<String, ConsoleSession>,
    /// (ticket, user) → (answering, seen at).
    presence: BTreeMap<(i64, i64), (bool, Timestamp)>,
    hooks: BTreeMap<i64, Webhook>,
    /// Event id → (kind, ticket, body).
    hook_events: BTreeMap<String, (WebhookEventKind, i64, String)>,
    /// Deliveries, their event's and subscription's fields as of now filled
    /// in when read ([`Inner::delivery`]).
    deliveries: BTreeMap<i64, WebhookDelivery>,
    calendars: BTreeMap<i64, BusinessCalendar>,
    department_calendars: BTreeMap<i64, i64>,
    policies: BTreeMap<i64, SlaPolicy>,
    escalations: BTreeSet<(i64, SlaThreshold)>,
}

impl Inner {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// The transactional outbox of webhooks: each event some active
    /// subscription wants, with one pending delivery per such subscription.
    fn record_webhook_events(
        &mut self,
        ticket_id: i64,
        detail_id: Option<i64>,
        events: &[NewWebhookEvent],
        now: Timestamp,
    ) {
        for e in events {
            let hooks: Vec<i64> = self.hooks.values().filter(|h| h.wants(e.kind)).map(|h| h.id).collect();
            if hooks.is_empty() {
                continue;
            }
            let message_id = e.message.as_ref().and(detail_id);
            self.hook_events.insert(e.id.clone(), (e.kind, ticket_id, e.body(ticket_id, message_id)));
            for webhook_id in hooks {
                let id = self.id();
                let delivery = WebhookDelivery {
                    id,
                    event_id: e.id.clone(),
                    webhook_id,
                    kind: e.kind,
                    ticket_id,
                    body: String::new(),
                    url: String::new(),
                    sealed_secret: Vec::new(),
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    next_attempt_at: now,
                    leased_until: None,
                    last_error: None,
                    created_at: now,
                    sent_at: None,
                };
                self.deliveries.insert(id, delivery);
            }
        }
    }

    /// A delivery with its event's body and its subscription's URL and secret.
    fn delivery(&self, id: i64) -> Option<WebhookDelivery> {
        let mut d = self.deliveries.get(&id)?.clone();
        let (_, _, body) = self.hook_events.get(&d.event_id)?;
        let hook = self.hooks.get(&d.webhook_id)?;
        (d.body, d.url, d.sealed_secret) = (body.clone(), hook.url.clone(), hook.sealed_secret.clone());
        Some(d)
    }
}

/// What the SSO writes, shared by the single calls and `login_succeeded`.
impl Inner {
    fn record_login(&mut self, user_id: i64, at: Timestamp, ip: &str) -> RepoResult<()> {
        let (u, _) = self.users.get_mut(&user_id).ok_or(RepoError::NotFound)?;
        u.last_access = Some(at);
        u.ip_address = Some(ip.into());
        Ok(())
    }

    fn check_new_session(&self, session: &UserSession) -> RepoResult<()> {
        if self.sessions.contains_key(&session.token_id) {
            return Err(dup("sesion_usuario.id_sesion"));
        }
        if !self.users.contains_key(&session.user_id) {
            return Err(RepoError::MissingReference("usuario".into()));
        }
        if session.product_id.is_some_and(|p| !self.products.contains_key(&p)) {
            return Err(RepoError::MissingReference("producto".into()));
        }
        Ok(())
    }

    fn settle_attempt(&mut self, clear: &[String], refund: &[ThrottleLimit]) {
        for key in clear {
            self.throttles.remove(key);
        }
        for limit in refund {
            if let Some(st) = self.throttles.get_mut(&limit.key) {
                *st = st.refund(limit);
            }
        }
    }
}

pub struct InMemoryStore {
    inner: Mutex<Inner>,
}

impl Default for InMemoryStore {
    /// Empty but for the default calendar, as the migrations leave a database.
    fn default() -> Self {
        let mut inner = Inner::default();
        let id = inner.id();
        let general = BusinessCalendar {
            id,
            name: DEFAULT_CALENDAR.into(),
            zone: parse_zone(DEFAULT_ZONE).expect("the default zone"),
            hours: WeeklyHours::parse(DEFAULT_HOURS).expect("the default hours"),
            holidays: BTreeSet::new(),
        };
        inner.calendars.insert(id, general);
        Self { inner: Mutex::new(inner) }
    }
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, RepoError>) -> Result<T, RepoError> {
        let mut inner = self.inner.lock().map_err(|_| RepoError::corrupt("poisoned lock"))?;
        f(&mut inner)
    }
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn dup(what: &str) -> RepoError {
    RepoError::Duplicate(what.into())
}

impl ProductRepository for InMemoryStore {
    async fn create_product(&self, new: NewProduct) -> RepoResult<Product> {
        self.with(|i| {
            if i.products.values().any(|p| eq_ci(&p.alias, &new.alias)) {
                return Err(dup("producto.alias_producto"));
            }
            let p = Product {
                id: i.id(),
                alias: new.alias,
                name: new.name,
                status: Status::Active,
                access: ProductAccess::All,
                reset_url: None,
            };
            i.products.insert(p.id, p.clone());
            Ok(p)
        })
    }
    async fn find_product_by_alias(&self, alias: &str) -> RepoResult<Option<Product>> {
        self.with(|i| Ok(i.products.values().find(|p| eq_ci(&p.alias, alias)).cloned()))
    }
    async fn list_products(&self) -> RepoResult<Vec<Product>> {
        self.with(|i| Ok(i.products.values().cloned().collect()))
    }
    async fn find_product(&self, id: i64) -> RepoResult<Option<Product>> {
        self.with(|i| Ok(i.products.get(&id).cloned()))
    }
    async fn update_product(&self, alias: &str, change: ProductChange) -> RepoResult<Product> {
        self.with(|i| {
            let p = i.products.values_mut().find(|p| eq_ci(&p.alias, alias)).ok_or(RepoError::NotFound)?;
            if let Some(status) = change.status {
                p.status = status;
            }
            if let Some(access) = change.access {
                p.access = access;
            }
            if let Some(url) = change.reset_url {
                p.reset_url = url;
            }
            Ok(p.clone())
        })
    }
    async fn set_product_grant(&self, user_id: i64, product_id: i64, granted: bool) -> RepoResult<()> {
        self.with(|i| {
            if !i.users.contains_key(&user_id) || !i.products.contains_key(&product_id) {
                return Err(RepoError::MissingReference("usuario or producto".into()));
            }
            match granted {
                true => i.product_grants.insert((user_id, product_id)),
                false => i.product_grants.remove(&(user_id, product_id)),
            };
            Ok(())
        })
    }
    async fn has_product_grant(&self, user_id: i64, product_id: i64) -> RepoResult<bool> {
        self.with(|i| Ok(i.product_grants.contains(&(user_id, product_id))))
    }
}

impl DepartmentRepository for InMemoryStore {
    async fn create_department(&self, new: NewDepartment) -> RepoResult<Department> {
        self.with(|i| {
            if i.departments.values().any(|d| eq_ci(&d.name, &new.name)) {
                return Err(dup("departamento.nombre"));
            }
            let d = Department {
                id: i.id(),
                name: new.name,
                synology_channel: new.synology_channel,
                status: Status::Active,
            };
            i.departments.insert(d.id, d.clone());
            Ok(d)
        })
    }
    async fn find_department(&self, id: i64) -> RepoResult<Option<Department>> {
        self.with(|i| Ok(i.departments.get(&id).cloned()))
    }
    async fn list_departments(&self) -> RepoResult<Vec<Department>> {
        self.with(|i| Ok(i.departments.values().cloned().collect()))
    }
    async fn set_department_webhook(&self, department_id: i64, sealed_token: Option<Vec<u8>>) -> RepoResult<()> {
        self.with(|i| {
            if !i.departments.contains_key(&department_id) {
                return Err(RepoError::NotFound);
            }
            match sealed_token {
                Some(t) => i.webhooks.insert(department_id, t),
                None => i.webhooks.remove(&department_id),
            };
            Ok(())
        })
    }
    async fn department_webhook(&self, department_id: i64) -> RepoResult<Option<Vec<u8>>> {
        self.with(|i| Ok(i.webhooks.get(&department_id).cloned()))
    }
    async fn ensure_role(&self, name: &str) -> RepoResult<Role> {
        self.with(|i| {
            if let Some(r) = i.roles.values().find(|r| eq_ci(&r.name, name)) {
                return Ok(r.clone());
            }
            let r = Role { id: i.id(), name: name.into() };
            i.roles.insert(r.id, r.clone());
            Ok(r)
        })
    }
}

impl UserRepository for InMemoryStore {
    async fn create_user(&self, new: NewInternalUser) -> RepoResult<InternalUser> {
        self.with(|i| {
            if i.users.values().any(|(u, _)| eq_ci(&u.login, &new.login)) {
                return Err(dup("usuario.login"));
            }
            if i.users.values().any(|(u, _)| eq_ci(&u.email, &new.email)) {
                return Err(dup("usuario.correo"));
            }
            if new.department_id.is_some_and(|d| !i.departments.contains_key(&d)) {
                return Err(RepoError::MissingReference("departamento".into()));
            }
            let role_name = match new.role_id {
                Some(r) => Some(i.roles.get(&r).ok_or(RepoError::MissingReference("rol".into()))?.name.clone()),
                None => None,
            };
            let u = InternalUser {
                id: i.id(),
                login: new.login.clone(),
                name: new.name,
                national_id: new.national_id,
                user_type: new.user_type,
                status: UserStatus::Active,
                accesses: String::new(),
                username: new.login,
                email: new.email,
                extension: new.extension,
                can_take_tickets: new.can_take_tickets,
                department_id: new.department_id,
                role_id: new.role_id,
                role_name,
                manager: new.manager,
                mobile: new.mobile,
                last_access: None,
                ip_address: None,
                system_access: new.system_access,
                synology_id: new.synology_id,
                code: new.code,
            };
            i.users.insert(u.id, (u.clone(), new.password_hash));
            Ok(u)
        })
    }
    async fn find_user(&self, id: i64) -> RepoResult<Option<InternalUser>> {
        self.with(|i| Ok(i.users.get(&id).map(|(u, _)| u.clone())))
    }
    async fn find_users(&self, f: UserFilter) -> RepoResult<Vec<InternalUser>> {
        if f == UserFilter::default() {
            return Ok(Vec::new());
        }
        self.with(|i| {
            Ok(i.users
                .values()
                .map(|(u, _)| u)
                .filter(|u| f.login.as_deref().is_none_or(|l| eq_ci(&u.login, l) || eq_ci(&u.username, l)))
                .filter(|u| f.email.as_deref().is_none_or(|e| eq_ci(&u.email, e)))
                .filter(|u| f.department_id.is_none_or(|d| u.department_id == Some(d)))
                .cloned()
                .collect())
        })
    }
    async fn find_user_credentials(&self, key: &str) -> RepoResult<Option<(InternalUser, Option<String>)>> {
        self.with(|i| Ok(i.users.values().find(|(u, _)| eq_ci(&u.login, key) || eq_ci(&u.email, key)).cloned()))
    }
    async fn set_password_hash(&self, user_id: i64, hash: &str) -> RepoResult<()> {
        self.with(|i| {
            let (_, h) = i.users.get_mut(&user_id).ok_or(RepoError::NotFound)?;
            *h = Some(hash.into());
            Ok(())
        })
    }
    async fn set_user_status(&self, user_id: i64, status: UserStatus) -> RepoResult<()> {
        self.with(|i| {
            i.users.get_mut(&user_id).ok_or(RepoError::NotFound)?.0.status = status;
            Ok(())
        })
    }
    async fn set_takes_tickets(&self, user_id: i64, on: bool) -> RepoResult<()> {
        self.with(|i| {
            i.users.get_mut(&user_id).ok_or(RepoError::NotFound)?.0.can_take_tickets = on;
            Ok(())
        })
    }
    async fn record_login(&self, user_id: i64, at: Timestamp, ip: &str) -> RepoResult<()> {
        self.with(|i| i.record_login(user_id, at, ip))
    }
    async fn set_synology_id(&self, user_id: i64, synology_id: i64) -> RepoResult<()> {
        self.with(|i| {
            let (u, _) = i.users.get_mut(&user_id).ok_or(RepoError::NotFound)?;
            u.synology_id = Some(synology_id);
            Ok(())
        })
    }
    async fn add_device(&self, new: NewDevice) -> RepoResult<Device> {
        self.with(|i| {
            if !i.users.contains_key(&new.user_id) {
                return Err(RepoError::MissingReference("usuario".into()));
            }
            let d = Device {
                id: i.id(),
                user_id: new.user_id,
                name: new.name,
                pin_hash: new.pin_hash,
                status: Status::Active,
            };
            i.devices.insert(d.id, d.clone());
            Ok(d)
        })
    }
    async fn find_device(&self, id: i64) -> RepoResult<Option<Device>> {
        self.with(|i| Ok(i.devices.get(&id).cloned()))
    }
}

impl ConsumerRepository for InMemoryStore {
    async fn create_consumer(&self, new: NewConsumer) -> RepoResult<Consumer> {
        self.with(|i| {
            if i.consumers.values().any(|c| eq_ci(&c.name, &new.name)) {
                return Err(dup("consumidor_api.nombre"));
            }
            let c = Consumer {
                id: i.id(),
                name: new.name,
                secret_hash: new.secret_hash,
                status: Status::Active,
                grants: new.grants,
                created_at: new.created_at,
            };
            i.consumers.insert(c.id, c.clone());
            Ok(c)
        })
    }
    async fn find_consumer(&self, name: &str) -> RepoResult<Option<Consumer>> {
        self.with(|i| Ok(i.consumers.values().find(|c| c.name == name).cloned()))
    }
    async fn list_consumers(&self) -> RepoResult<Vec<Consumer>> {
        self.with(|i| Ok(i.consumers.values().cloned().collect()))
    }
    async fn set_consumer_status(&self, name: &str, status: Status) -> RepoResult<()> {
        self.with(|i| {
            i.consumers.values_mut().find(|c| c.name == name).ok_or(RepoError::NotFound)?.status = status;
            Ok(())
        })
    }
    async fn set_consumer_grants(&self, name: &str, grants: BTreeSet<Endpoint>) -> RepoResult<()> {
        self.with(|i| {
            i.consumers.values_mut().find(|c| c.name == name).ok_or(RepoError::NotFound)?.grants = grants;
            Ok(())
        })
    }
    async fn set_consumer_secret(&self, name: &str, secret_hash: &str) -> RepoResult<()> {
        self.with(|i| {
            i.consumers.values_mut().find(|c| c.name == name).ok_or(RepoError::NotFound)?.secret_hash =
                secret_hash.into();
            Ok(())
        })
    }
}

impl AuditRepository for InMemoryStore {
    async fn reserve_audit_ids(&self, count: i64) -> RepoResult<i64> {
        self.with(|i| {
            let first = i.next_audit_id.max(i.audit.keys().next_back().map_or(1, |k| k + 1));
            i.next_audit_id = first + count.max(1);
            Ok(first)
        })
    }
    async fn write_audit(&self, records: &[AuditRecord]) -> RepoResult<()> {
        self.with(|i| i.write_audit(records))
    }
    async fn find_audit(&self, id: i64) -> RepoResult<Option<AuditEntry>> {
        self.with(|i| Ok(i.audit.get(&id).cloned()))
    }
    async fn recent_audit(&self, limit: i64) -> RepoResult<Vec<AuditEntry>> {
        self.with(|i| Ok(i.audit.values().rev().take(limit.max(0) as usize).cloned().collect()))
    }
    async fn purge_audit(&self, before: Timestamp, limit: i64) -> RepoResult<u64> {
        self.with(|i| {
            let mut old: Vec<(Timestamp, i64)> =
                i.audit.values().filter(|e| e.at < before).map(|e| (e.at, e.id)).collect();
            old.sort_unstable();
            old.truncate(usize::try_from(limit).unwrap_or(0));
            for (_, id) in &old {
                i.audit.remove(id);
            }
            Ok(old.len() as u64)
        })
    }
}

impl MailAccountRepository for InMemoryStore {
    async fn create_mail_account(&self, new: NewMailAccount) -> RepoResult<MailAccount> {
        self.with(|i| {
            if i.mail_accounts.values().any(|a| eq_ci(&a.user, &new.user)) {
                return Err(dup("cuenta_correo.user"));
            }
            if !i.departments.contains_key(&new.department_id) {
                return Err(RepoError::MissingReference("departamento".into()));
            }
            let a = MailAccount {
                id: i.id(),
                host: new.host,
                user: new.user,
                sealed_password: new.sealed_password,
                port: new.port,
                mailboxes: new.mailboxes,
                department_id: new.department_id,
                status: new.status,
                send_acknowledgement: new.send_acknowledgement,
            };
            i.mail_accounts.insert(a.id, a.clone());
            Ok(a)
        })
    }
    async fn find_mail_accounts(&self, f: MailAccountFilter) -> RepoResult<Vec<MailAccount>> {
        self.with(|i| {
            Ok(i.mail_accounts
                .values()
                .filter(|a| f.id.is_none_or(|id| a.id == id))
                .filter(|a| f.user.as_deref().is_none_or(|u| eq_ci(&a.user, u)))
                .filter(|a| f.department_id.is_none_or(|d| a.department_id == d))
                .filter(|a| f.status.is_none_or(|s| a.status == s))
                .cloned()
                .collect())
        })
    }
}

impl SessionRepository for InMemoryStore {
    async fn create_session(&self, session: UserSession) -> RepoResult<()> {
        self.with(|i| {
            i.check_new_session(&session)?;
            i.sessions.insert(session.token_id.clone(), session);
            Ok(())
        })
    }
    async fn find_session(&self, token_id: &str) -> RepoResult<Option<UserSession>> {
        self.with(|i| Ok(i.sessions.get(token_id).cloned()))
    }
    async fn rotate_session(&self, old_id: &str, new: UserSession, now: Timestamp) -> RepoResult<()> {
        self.with(|i| {
            match i.sessions.get(old_id) {
                Some(s) if s.revoked_at.is_none() => {}
                _ => return Err(RepoError::NotFound),
            }
            if i.sessions.contains_key(&new.token_id) {
                return Err(dup("sesion_usuario.id_sesion"));
            }
            i.sessions.get_mut(old_id).expect("checked").revoked_at = Some(now);
            i.sessions.insert(new.token_id.clone(), new);
            Ok(())
        })
    }
    async fn revoke_session_family(&self, family_id: &str, now: Timestamp) -> RepoResult<u64> {
        self.with(|i| {
            let mut n = 0;
            for s in i.sessions.values_mut().filter(|s| s.family_id == family_id && s.revoked_at.is_none()) {
                s.revoked_at = Some(now);
                n += 1;
            }
            Ok(n)
        })
    }
    async fn revoke_user_sessions(&self, user_id: i64, now: Timestamp) -> RepoResult<u64> {
        self.revoke_sessions_where(now, |s| s.user_id == user_id)
    }
    async fn revoke_product_sessions(&self, user_id: i64, product_id: i64, now: Timestamp) -> RepoResult<u64> {
        self.revoke_sessions_where(now, |s| s.user_id == user_id && s.product_id == Some(product_id))
    }
}

impl InMemoryStore {
    /// Revokes the live sessions `which` picks; returns how many.
    fn revoke_sessions_where(&self, now: Timestamp, which: impl Fn(&UserSession) -> bool) -> RepoResult<u64> {
        self.with(|i| {
            let mut n = 0;
            for s in i.sessions.values_mut().filter(|s| s.revoked_at.is_none() && which(s)) {
                s.revoked_at = Some(now);
                n += 1;
            }
            Ok(n)
        })
    }
}

impl PasswordResetRepository for InMemoryStore {
    async fn create_reset(&self, user_id: i64, token_hash: &str, now: Timestamp) -> RepoResult<PasswordReset> {
        self.with(|i| {
            if !i.users.contains_key(&user_id) {
                return Err(RepoError::MissingReference("usuario".into()));
            }
            let r =
                PasswordReset { id: i.id(), user_id, token_hash: token_hash.into(), created_at: now, used_at: None };
            i.resets.insert(r.id, r.clone());
            Ok(r)
        })
    }
    async fn find_reset(&self, id: i64) -> RepoResult<Option<PasswordReset>> {
        self.with(|i| Ok(i.resets.get(&id).cloned()))
    }
    async fn latest_reset(&self, user_id: i64) -> RepoResult<Option<PasswordReset>> {
        self.with(|i| {
            Ok(i.resets.values().filter(|r| r.user_id == user_id).max_by_key(|r| (r.created_at, r.id)).cloned())
        })
    }
    async fn complete_reset(&self, reset_id: i64, new_password_hash: &str, now: Timestamp) -> RepoResult<()> {
        self.with(|i| {
            let user_id = match i.resets.get(&reset_id) {
                Some(r) if r.used_at.is_none() => r.user_id,
                _ => return Err(RepoError::NotFound),
            };
            i.resets.get_mut(&reset_id).expect("checked").used_at = Some(now);
            i.users.get_mut(&user_id).ok_or(RepoError::NotFound)?.1 = Some(new_password_hash.into());
            for s in i.sessions.values_mut().filter(|s| s.user_id == user_id && s.revoked_at.is_none()) {
                s.revoked_at = Some(now);
            }
            Ok(())
        })
    }
}

impl ThrottleRepository for InMemoryStore {
    async fn throttle_state(&self, key: &str) -> RepoResult<Option<ThrottleState>> {
        self.with(|i| Ok(i.throttles.get(key).cloned()))
    }
    async fn reserve_attempt(
        &self,
        limits: &[ThrottleLimit],
        now: Timestamp,
        window_start: Timestamp,
    ) -> RepoResult<Reservation> {
        self.with(|i| {
            let mut next = Vec::with_capacity(limits.len());
            for limit in limits {
                match ThrottleState::reserve(i.throttles.get(&limit.key), limit, now, window_start) {
                    Ok(st) => next.push((limit.key.clone(), st)),
                    Err(retry_after_secs) => {
                        // Every key of the attempt is kept, as the stores do.
                        for limit in limits {
                            i.throttles.entry(limit.key.clone()).or_insert(ThrottleState {
                                failures: 0,
                                window_started_at: now,
                                locked_until: None,
                            });
                        }
                        return Ok(Reservation::Refused { retry_after_secs });
                    }
                }
            }
            i.throttles.extend(next);
            Ok(Reservation::Granted)
        })
    }
    async fn attempt_succeeded(&self, clear: &[String], refund: &[ThrottleLimit]) -> RepoResult<()> {
        self.with(|i| {
            i.settle_attempt(clear, refund);
            Ok(())
        })
    }
    async fn clear_throttle(&self, key: &str) -> RepoResult<()> {
        self.with(|i| {
            i.throttles.remove(key);
            Ok(())
        })
    }
    async fn purge_stale_throttles(&self, window_start: Timestamp, now: Timestamp, limit: i64) -> RepoResult<u64> {
        self.with(|i| {
            let stale: Vec<String> = i
                .throttles
                .iter()
                .filter(|(_, st)| st.is_stale(window_start, now))
                .map(|(k, _)| k.clone())
                .take(usize::try_from(limit).unwrap_or(0))
                .collect();
            for key in &stale {
                i.throttles.remove(key);
            }
            Ok(stale.len() as u64)
        })
    }
    async fn login_succeeded(&self, done: LoginDone) -> RepoResult<()> {
        self.with(|i| {
            // Everything that can refuse is checked before anything is written.
            if !i.users.contains_key(&done.user_id) {
                return Err(RepoError::NotFound);
            }
            i.check_new_session(&done.session)?;
            i.settle_attempt(&done.clear, &done.refund);
            i.record_login(done.user_id, done.at, &done.ip)?;
            i.sessions.insert(done.session.token_id.clone(), done.session);
            Ok(())
        })
    }
}

impl IntegratedSystemRepository for InMemoryStore {
    async fn create_system(
        &self,
        alias: &str,
        status: Status,
        token_hash: &str,
        now: Timestamp,
    ) -> RepoResult<IntegratedSystem> {
        self.with(|i| {
            if i.systems.values().any(|s| eq_ci(&s.alias, alias)) {
                return Err(dup("sistema_integrado.alias_sistema"));
            }
            let s = IntegratedSystem {
                id: i.id(),
                alias: alias.into(),
                status,
                token_hash: token_hash.into(),
                created_at: now,
                updated_at: now,
            };
            i.systems.insert(s.id, s.clone());
            Ok(s)
        })
    }
    async fn find_system(&self, alias: &str) -> RepoResult<Option<IntegratedSystem>> {
        self.with(|i| Ok(i.systems.values().find(|s| eq_ci(&s.alias, alias)).cloned()))
    }
    async fn find_system_by_id(&self, id: i64) -> RepoResult<Option<IntegratedSystem>> {
        self.with(|i| Ok(i.systems.get(&id).cloned()))
    }
    async fn list_systems(&self) -> RepoResult<Vec<IntegratedSystem>> {
        self.with(|i| Ok(i.systems.values().cloned().collect()))
    }
    async fn update_system(
        &self,
        alias: &str,
        status: Option<Status>,
        token_hash: Option<String>,
        now: Timestamp,
    ) -> RepoResult<IntegratedSystem> {
        self.with(|i| {
            let s = i.systems.values_mut().find(|s| eq_ci(&s.alias, alias)).ok_or(RepoError::NotFound)?;
            if let Some(st) = status {
                s.status = st;
            }
            if let Some(h) = token_hash {
                s.token_hash = h;
            }
            s.updated_at = now;
            Ok(s.clone())
        })
    }
    async fn create_login_ticket(&self, t: LoginTicket) -> RepoResult<()> {
        self.with(|i| {
            if i.login_tickets.contains_key(&t.ticket_id) {
                return Err(dup("ticket_acceso_adi.id_ticket_adi"));
            }
            if !i.users.contains_key(&t.user_id) {
                return Err(RepoError::MissingReference("usuario".into()));
            }
            if !i.systems.contains_key(&t.system_id) {
                return Err(RepoError::MissingReference("sistema_integrado".into()));
            }
            i.login_tickets.insert(t.ticket_id.clone(), t);
            Ok(())
        })
    }
    async fn use_login_ticket(&self, ticket_id: &str, now: Timestamp) -> RepoResult<LoginTicket> {
        self.with(|i| {
            let t = i.login_tickets.get_mut(ticket_id).ok_or(RepoError::NotFound)?;
            if t.used_at.is_some() || t.expires_at <= now {
                return Err(RepoError::NotFound);
            }
            t.used_at = Some(now);
            Ok(t.clone())
        })
    }
}

impl TicketRepository for InMemoryStore {
    async fn loads_and_notices_sent(
        &self,
        users: &[i64],
        kind: NoticeKind,
        recipients: &[String],
        since: Timestamp,
    ) -> RepoResult<(Vec<(i64, Option<Timestamp>)>, Vec<i64>)> {
        Ok((self.user_loads(users).await?, self.count_notices_to(kind, recipients, since).await?))
    }
    async fn store_incoming(&self, n: NewIncoming) -> RepoResult<StoredIncoming> {
        self.with(|i| i.store_incoming(&n))
    }
    async fn store_incoming_batch(&self, batch: &[NewIncoming]) -> RepoResult<Vec<StoredIncoming>> {
        self.with(|i| {
            // All or nothing: every check first, then every write.
            let mut keys = BTreeSet::new();
            for n in batch {
                let key = &n.detail.dedupe_key;
                if !keys.insert(key) || i.details.values().any(|(d, _)| &d.dedupe_key == key) {
                    return Err(dup("detalle_ticket.clave_dedupe"));
                }
                if let IncomingTarget::New(t) = &n.target
                    && !i.departments.contains_key(&t.department_id)
                {
                    return Err(RepoError::MissingReference("departamento".into()));
                }
                if let IncomingTarget::Existing { ticket_id, .. } = &n.target
                    && !i.tickets.contains_key(ticket_id)
                {
                    return Err(RepoError::NotFound);
                }
            }
            batch.iter().map(|n| i.store_incoming(n)).collect()
        })
    }
    async fn find_ticket(&self, id: i64) -> RepoResult<Option<Ticket>> {
        self.with(|i| Ok(i.tickets.get(&id).cloned()))
    }
    async fn activity_marks(&self, ticket_id: Option<i64>) -> RepoResult<ActivityMarks> {
        self.with(|i| {
            let ours = |t: i64| ticket_id.is_none_or(|id| id == t);
            Ok(ActivityMarks {
                ticket: i.tickets.keys().copied().filter(|t| ours(*t)).max().unwrap_or(0),
                detail: i.details.values().filter(|(d, _)| ours(d.ticket_id)).map(|(d, _)| d.id).max().unwrap_or(0),
                event: i.events.values().filter(|e| ours(e.ticket_id)).map(|e| e.id).max().unwrap_or(0),
            })
        })
    }
    async fn find_detail(&self, id: i64) -> RepoResult<Option<TicketDetail>> {
        self.with(|i| Ok(i.details.get(&id).map(|(d, _)| d.clone())))
    }
    async fn find_detail_by_dedupe(&self, key: &str) -> RepoResult<Option<TicketDetail>> {
        self.with(|i| Ok(i.details.values().find(|(d, _)| d.dedupe_key == key).map(|(d, _)| d.clone())))
    }
    async fn find_details_by_dedupe(&self, keys: &[String]) -> RepoResult<Vec<TicketDetail>> {
        self.with(|i| {
            Ok(i.details.values().filter(|(d, _)| keys.contains(&d.dedupe_key)).map(|(d, _)| d.clone()).collect())
        })
    }
    async fn ticket_of_message(&self, hash: &str) -> RepoResult<Option<i64>> {
        self.with(|i| Ok(i.details.values().find(|(_, h)| h.as_deref() == Some(hash)).map(|(d, _)| d.ticket_id)))
    }
    async fn details_of(&self, ticket_id: i64) -> RepoResult<Vec<TicketDetail>> {
        self.with(|i| {
            Ok(i.details.values().filter(|(d, _)| d.ticket_id == ticket_id).map(|(d, _)| d.clone()).collect())
        })
    }
    async fn attachments_of(&self, detail_id: i64) -> RepoResult<Vec<Attachment>> {
        self.with(|i| Ok(i.attachments.values().filter(|a| a.detail_id == detail_id).cloned().collect()))
    }
    async fn is_participant(&self, ticket_id: i64, email: &str) -> RepoResult<bool> {
        self.with(|i| Ok(i.participants.contains(&(ticket_id, email.to_lowercase()))))
    }
    async fn operator_loads(&self, department_id: i64) -> RepoResult<Vec<OperatorLoad>> {
        self.with(|i| {
            Ok(i.users
                .values()
                .map(|(u, _)| u)
                .filter(|u| u.department_id == Some(department_id) && u.is_active() && u.can_take_tickets)
                .map(|u| OperatorLoad {
                    user: u.clone(),
                    open_tickets: i
                        .tickets
                        .values()
                        .filter(|t| t.assignee_id == Some(u.id) && t.status.is_open())
                        .count() as i64,
                    last_assigned_at: i.last_assigned.get(&u.id).copied(),
                })
                .collect())
        })
    }
    async fn user_loads(&self, users: &[i64]) -> RepoResult<Vec<(i64, Option<Timestamp>)>> {
        self.with(|i| {
            Ok(users
                .iter()
                .map(|u| {
                    let open = i.tickets.values().filter(|t| t.assignee_id == Some(*u) && t.status.is_open()).count();
                    (open as i64, i.last_assigned.get(u).copied())
                })
                .collect())
        })
    }
    async fn set_ticket_status(&self, ticket_id: i64, status: TicketStatus, now: Timestamp) -> RepoResult<()> {
        self.with(|i| {
            let t = i.tickets.get_mut(&ticket_id).ok_or(RepoError::NotFound)?;
            t.status = status;
            t.updated_at = now;
            t.closed_at = (status == TicketStatus::Closed).then_some(now);
            Ok(())
        })
    }
}

/// Every word of the query (of three letters or more) is a word of the
/// message's subject or body.
/// Whether the messages of a ticket together hold every word of `query`.
fn text_matches<'a>(query: &str, messages: impl Iterator<Item = &'a TicketDetail>) -> bool {
    let wanted = search_words(query);
    let have: BTreeSet<String> = messages.flat_map(|d| message_words(&d.subject, &d.body)).collect();
    !wanted.is_empty() && wanted.iter().all(|w| have.contains(w))
}

impl Inner {
    /// The records, all or none (an id stored before refuses them all).
    fn write_audit(&mut self, records: &[AuditRecord]) -> RepoResult<()> {
        let i = self;
        if records.iter().any(|r| i.audit.contains_key(&r.id)) {
            return Err(dup("bitacora_log.id_bitacora_log"));
        }
        for r in records.iter().cloned() {
            let parent_id = r.entry.parent_id.filter(|p| i.audit.contains_key(p));
            let e = r.entry;
            i.audit.insert(
                r.id,
                AuditEntry {
                    id: r.id,
                    at: e.at,
                    consumer_id: r.outcome.consumer_id,
                    consumer_name: e.consumer_name,
                    endpoint: e.endpoint,
                    method: e.method,
                    client_ip: e.client_ip,
                    status: Some(r.outcome.status),
                    duration_us: Some(r.outcome.duration_us),
                    body: e.body,
                    parent_id,
                    user_id: r.outcome.user_id,
                },
            );
        }
        Ok(())
    }

    /// One incoming mail's writes ([`TicketRepository::store_incoming`]).
    fn store_incoming(&mut self, n: &NewIncoming) -> RepoResult<StoredIncoming> {
        let i = self;
        if i.details.values().any(|(d, _)| d.dedupe_key == n.detail.dedupe_key) {
            return Err(dup("detalle_ticket.clave_dedupe"));
        }
        let (ticket_id, created_ticket) = match &n.target {
            IncomingTarget::New(t) => {
                if !i.departments.contains_key(&t.department_id) {
                    return Err(RepoError::MissingReference("departamento".into()));
                }
                let id = i.id();
                i.tickets.insert(
                    id,
                    Ticket {
                        id,
                        subject: t.subject.clone(),
                        status: TicketStatus::Open,
                        priority: Priority::Normal,
                        department_id: t.department_id,
                        assignee_id: t.assignee_id,
                        requester: t.requester.clone(),
                        mail_account_id: t.mail_account_id,
                        system: t.system.clone(),
                        created_at: n.now,
                        updated_at: n.now,
                        closed_at: None,
                        sla: t.sla,
                    },
                );
                if let Some(a) = t.assignee_id {
                    i.last_assigned.insert(a, n.now);
                }
                (id, true)
            }
            IncomingTarget::Existing { ticket_id, reopen, sla } => {
                let t = i.tickets.get_mut(ticket_id).ok_or(RepoError::NotFound)?;
                t.updated_at = n.now;
                set_sla(t, *sla);
                if *reopen {
                    t.status = TicketStatus::Open;
                    t.closed_at = None;
                }
                (*ticket_id, false)
            }
        };
        let detail_id = i.insert_detail(ticket_id, &n.detail, created_ticket, n.now);
        for a in &n.attachments {
            let id = i.id();
            i.attachments.insert(
                id,
                Attachment {
                    id,
                    detail_id,
                    name: a.name.clone(),
                    route: a.route.clone(),
                    mime_type: a.mime_type.clone(),
                },
            );
        }
        for p in &n.participants {
            i.participants.insert((ticket_id, p.to_lowercase()));
        }
        i.insert_events(ticket_id, &n.events, n.now);
        let notice_ids = i.insert_notices(ticket_id, detail_id, &n.notices, n.now, n.notices_due_at);
        i.record_webhook_events(ticket_id, Some(detail_id), &n.webhook_events, n.now);
        // A record stored before (its request recorded as 499 meanwhile)
        // takes the outcome the mail's writes carry.
        match n.audit.as_ref().map(|r| (r, i.audit.get_mut(&r.id))) {
            Some((r, Some(e))) => {
                (e.status, e.duration_us) = (Some(r.outcome.status), Some(r.outcome.duration_us));
                (e.consumer_id, e.user_id) = (r.outcome.consumer_id, r.outcome.user_id);
            }
            Some((r, None)) => i.write_audit(std::slice::from_ref(r))?,
            None => {}
        }
        Ok(StoredIncoming { ticket_id, detail_id, created_ticket, notice_ids })
    }

    /// The thread's events of a change or a mail.
    fn insert_events(&mut self, ticket_id: i64, events: &[NewTicketEvent], now: Timestamp) {
        for e in events {
            let id = self.id();
            let event = TicketEvent {
                id,
                ticket_id,
                actor_id: e.actor_id,
                kind: e.kind,
                before: e.before.clone(),
                after: e.after.clone(),
                at: now,
            };
            self.events.insert(id, event);
        }
    }

    /// The ticket's latest message (notices of a change attach to it).
    fn latest_detail(&self, ticket_id: i64) -> Result<i64, RepoError> {
        self.details
            .values()
            .filter(|(d, _)| d.ticket_id == ticket_id)
            .map(|(d, _)| d.id)
            .max()
            .ok_or_else(|| RepoError::corrupt("a ticket without messages"))
    }

    /// Stores a message of a ticket; gives its id.
    fn insert_detail(&mut self, ticket_id: i64, d: &NewTicketDetail, opened_ticket: bool, now: Timestamp) -> i64 {
        let id = self.id();
        let detail = TicketDetail {
            id,
            ticket_id,
            dedupe_key: d.dedupe_key.clone(),
            message_id: d.message_id.clone(),
            from: d.from.clone(),
            to: d.to.clone(),
            cc: d.cc.clone(),
            bcc: d.bcc.clone(),
            reply_to: d.reply_to.clone(),
            subject: d.subject.clone(),
            body: d.body.clone(),
            html: d.html.clone(),
            date: d.date,
            headers: d.headers.clone(),
            automatic: d.automatic,
            opened_ticket,
            direction: d.direction,
            author_id: d.author_id,
            created_at: now,
        };
        self.details.insert(id, (detail, d.message_id_hash.clone()));
        id
    }

    fn insert_notices(
        &mut self,
        ticket_id: i64,
        detail_id: i64,
        notices: &[NewNotice],
        now: Timestamp,
        due: Timestamp,
    ) -> Vec<i64> {
        let mut ids = Vec::new();
        for nn in notices {
            let id = self.id();
            self.notices.insert(id, Notice::pending(id, ticket_id, detail_id, nn.clone(), now, due));
            ids.push(id);
        }
        ids
    }
}

impl TicketWorkRepository for InMemoryStore {
    async fn list_tickets(&self, q: TicketQuery) -> RepoResult<Vec<Ticket>> {
        self.with(|i| {
            let matches_text = |t: &Ticket| match &q.text {
                None => true,
                Some(text) => text_matches(text, i.details.values().map(|(d, _)| d).filter(|d| d.ticket_id == t.id)),
            };
            let mut tickets: Vec<&Ticket> = i.tickets.values().rev().collect();
            match q.order {
                TicketOrder::Newest => {}
                TicketOrder::NearestDue => tickets.sort_by_key(|t| due_key(t)),
                TicketOrder::LatestActivity => tickets.sort_by_key(|t| std::cmp::Reverse((t.updated_at, t.id))),
            }
            Ok(tickets
                .into_iter()
                .filter(|t| q.status.is_none_or(|s| t.status == s))
                .filter(|t| q.department_id.is_none_or(|d| t.department_id == d))
                .filter(|t| q.visible_department.is_none_or(|d| t.department_id == d))
                .filter(|t| match q.assignee {
                    AssigneeFilter::Anyone => true,
                    AssigneeFilter::Nobody => t.assignee_id.is_none(),
                    AssigneeFilter::User(u) => t.assignee_id == Some(u),
                })
                .filter(|t| q.priority.is_none_or(|p| t.priority == p))
                .filter(|t| q.from.is_none_or(|f| t.created_at >= f))
                .filter(|t| q.until.is_none_or(|u| t.created_at <= u))
                .filter(|t| q.before_id.is_none_or(|b| t.id < b))
                .filter(|t| q.after_due.is_none_or(|(due, id)| due_key(t) > (due.is_none(), due, id)))
                .filter(|t| q.before_activity.is_none_or(|at| (t.updated_at, t.id) < at))
                .filter(|t| !q.overdue || t.sla.and_then(|c| c.next_due()).is_some_and(|due| due < q.now))
                .filter(|t| q.participant.as_ref().is_none_or(|a| i.participants.contains(&(t.id, a.to_string()))))
                .filter(|t| q.sla.is_none_or(|s| t.sla.is_some_and(|c| c.state(q.now) == s)))
                .filter(|t| matches_text(t))
                .take(q.limit.max(0) as usize)
                .cloned()
                .collect())
        })
    }
    async fn count_tickets(&self, q: TicketQuery) -> RepoResult<i64> {
        let q =
            TicketQuery { order: TicketOrder::Newest, before_id: None, after_due: None, before_activity: None, ..q };
        Ok(self.list_tickets(q).await?.len() as i64)
    }
    async fn events_of(&self, ticket_id: i64) -> RepoResult<Vec<TicketEvent>> {
        self.with(|i| Ok(i.events.values().filter(|e| e.ticket_id == ticket_id).cloned().collect()))
    }
    async fn participants_of(&self, ticket_id: i64) -> RepoResult<Vec<String>> {
        self.with(|i| Ok(i.participants.iter().filter(|(t, _)| *t == ticket_id).map(|(_, p)| p.clone()).collect()))
    }
    async fn ticket_attachments(&self, ticket_id: i64) -> RepoResult<Vec<Attachment>> {
        self.with(|i| {
            Ok(i.attachments
                .values()
                .filter(|a| i.details.get(&a.detail_id).is_some_and(|(d, _)| d.ticket_id == ticket_id))
                .cloned()
                .collect())
        })
    }
    async fn find_attachment(&self, id: i64) -> RepoResult<Option<Attachment>> {
        self.with(|i| Ok(i.attachments.get(&id).cloned()))
    }
    async fn store_reply(&self, r: NewReply) -> RepoResult<StoredReply> {
        self.with(|i| {
            if i.details.values().any(|(d, _)| d.dedupe_key == r.detail.dedupe_key) {
                return Err(dup("detalle_ticket.clave_dedupe"));
            }
            let t = i.tickets.get_mut(&r.ticket_id).ok_or(RepoError::NotFound)?;
            t.updated_at = r.now;
            set_sla(t, r.sla);
            let detail_id = i.insert_detail(r.ticket_id, &r.detail, false, r.now);
            for p in &r.participants {
                i.participants.insert((r.ticket_id, p.trim().to_lowercase()));
            }
            let notice_ids = i.insert_notices(r.ticket_id, detail_id, &r.notices, r.now, r.notices_due_at);
            i.record_webhook_events(r.ticket_id, Some(detail_id), &r.webhook_events, r.now);
            Ok(StoredReply { detail_id, notice_ids })
        })
    }
    async fn update_ticket(&self, u: TicketUpdate) -> RepoResult<Ticket> {
        self.with(|i| {
            let t = i.tickets.get(&u.ticket_id).ok_or(RepoError::NotFound)?;
            if TicketFields::of(t) != u.expected {
                return Err(RepoError::Conflict);
            }
            if !i.departments.contains_key(&u.new.department_id) {
                return Err(RepoError::MissingReference("departamento".into()));
            }
            let latest = i.latest_detail(u.ticket_id)?;
            let t = i.tickets.get_mut(&u.ticket_id).ok_or(RepoError::NotFound)?;
            t.status = u.new.status;
            t.assignee_id = u.new.assignee_id;
            t.department_id = u.new.department_id;
            t.priority = u.new.priority;
            t.updated_at = u.now;
            set_sla(t, u.sla);
            if u.new.status == TicketStatus::Closed && u.expected.status != TicketStatus::Closed {
                t.closed_at = Some(u.now);
            } else if u.new.status != TicketStatus::Closed {
                t.closed_at = None;
            }
            let ticket = t.clone();
            if let Some(a) = u.new.assignee_id.filter(|a| Some(*a) != u.expected.assignee_id) {
                i.last_assigned.insert(a, u.now);
            }
            i.insert_events(u.ticket_id, &u.events, u.now);
            i.insert_notices(u.ticket_id, latest, &u.notices, u.now, u.now);
            i.record_webhook_events(u.ticket_id, None, &u.webhook_events, u.now);
            Ok(ticket)
        })
    }
}

/// A ticket's clock as a write leaves it: replaced, keeping an earlier first
/// response.
fn set_sla(t: &mut Ticket, sla: Option<SlaClock>) {
    if let Some(mut new) = sla {
        new.first_response_at = t.sla.and_then(|c| c.first_response_at).or(new.first_response_at);
        t.sla = Some(new);
    }
}

/// The list's order as a sort key: the nearest due first (clockless last),
/// then the oldest.
fn due_key(t: &Ticket) -> (bool, Option<Timestamp>, i64) {
    let due = t.sla.and_then(|c| c.next_due());
    (due.is_none(), due, t.id)
}

fn claimable(n: &Notice, now: Timestamp) -> bool {
    n.status == NoticeStatus::Pending && n.leased_until.is_none_or(|l| l <= now)
}

impl OutboxRepository for InMemoryStore {
    async fn claim_due_notices(&self, now: Timestamp, limit: i64, lease_until: Timestamp) -> RepoResult<Vec<Notice>> {
        self.with(|i| {
            let mut out = Vec::new();
            for n in i.notices.values_mut() {
                if out.len() as i64 >= limit {
                    break;
                }
                if claimable(n, now) && n.next_attempt_at <= now {
                    n.leased_until = Some(lease_until);
                    out.push(n.clone());
                }
            }
            Ok(out)
        })
    }
    async fn claim_notices(&self, ids: Vec<i64>, now: Timestamp, lease_until: Timestamp) -> RepoResult<Vec<Notice>> {
        self.with(|i| {
            let mut out = Vec::new();
            for id in ids {
                if let Some(n) = i.notices.get_mut(&id).filter(|n| claimable(n, now)) {
                    n.leased_until = Some(lease_until);
                    out.push(n.clone());
                }
            }
            Ok(out)
        })
    }
    async fn record_attempt(&self, notice_id: i64, now: Timestamp, outcome: AttemptOutcome) -> RepoResult<Notice> {
        self.with(|i| {
            let n = i.notices.get_mut(&notice_id).ok_or(RepoError::NotFound)?;
            n.attempts += 1;
            n.leased_until = None;
            let ok = matches!(outcome, AttemptOutcome::Sent { .. });
            match outcome {
                AttemptOutcome::Sent { result } => {
                    n.status = NoticeStatus::Sent;
                    n.sent_at = Some(now);
                    n.result = Some(result);
                }
                AttemptOutcome::Retry { error, next_attempt_at } => {
                    n.last_error = Some(error);
                    n.next_attempt_at = next_attempt_at;
                }
                AttemptOutcome::Failed { error, follow_up } => {
                    n.status = NoticeStatus::Failed;
                    n.last_error = Some(error);
                    let (ticket_id, detail_id) = (n.ticket_id, n.detail_id);
                    i.insert_events(ticket_id, &follow_up.events, now);
                    i.insert_notices(ticket_id, detail_id, &follow_up.notices, now, now);
                    i.record_webhook_events(ticket_id, Some(detail_id), &follow_up.webhook_events, now);
                }
            }
            let n = i.notices[&notice_id].clone();
            i.attempts.push((notice_id, now, ok));
            Ok(n)
        })
    }
    async fn notices_of_detail(&self, detail_id: i64) -> RepoResult<Vec<Notice>> {
        self.with(|i| Ok(i.notices.values().filter(|n| n.detail_id == detail_id).cloned().collect()))
    }
    async fn notices_of_ticket(&self, ticket_id: i64) -> RepoResult<Vec<Notice>> {
        self.with(|i| Ok(i.notices.values().filter(|n| n.ticket_id == ticket_id).cloned().collect()))
    }
    async fn count_notices_since(&self, kind: NoticeKind, recipient: &str, since: Timestamp) -> RepoResult<i64> {
        Ok(self.count_notices_to(kind, &[recipient.to_string()], since).await?[0])
    }
    async fn count_notices_to(
        &self,
        kind: NoticeKind,
        recipients: &[String],
        since: Timestamp,
    ) -> RepoResult<Vec<i64>> {
        self.with(|i| {
            Ok(recipients
                .iter()
                .map(|r| {
                    i.notices
                        .values()
                        .filter(|n| n.kind == kind && eq_ci(&n.recipient, r) && n.created_at >= since)
                        .count() as i64
                })
                .collect())
        })
    }
    async fn attempts_of(&self, notice_id: i64) -> RepoResult<Vec<(Timestamp, bool)>> {
        self.with(|i| Ok(i.attempts.iter().filter(|(id, _, _)| *id == notice_id).map(|(_, t, ok)| (*t, *ok)).collect()))
    }
    async fn pending_notices(&self) -> RepoResult<i64> {
        self.with(|i| Ok(i.notices.values().filter(|n| n.status == NoticeStatus::Pending).count() as i64))
    }
}

impl WebhookRepository for InMemoryStore {
    async fn create_webhook(&self, new: NewWebhook) -> RepoResult<Webhook> {
        self.with(|i| {
            let hook = Webhook {
                id: i.id(),
                url: new.url,
                events: new.events,
                sealed_secret: new.sealed_secret,
                status: new.status,
                created_at: new.now,
                updated_at: new.now,
            };
            i.hooks.insert(hook.id, hook.clone());
            Ok(hook)
        })
    }
    async fn list_webhooks(&self) -> RepoResult<Vec<Webhook>> {
        self.with(|i| Ok(i.hooks.values().cloned().collect()))
    }
    async fn find_webhook(&self, id: i64) -> RepoResult<Option<Webhook>> {
        self.with(|i| Ok(i.hooks.get(&id).cloned()))
    }
    async fn set_webhook_secret(&self, id: i64, sealed_secret: Vec<u8>, now: Timestamp) -> RepoResult<()> {
        self.with(|i| {
            let hook = i.hooks.get_mut(&id).ok_or(RepoError::NotFound)?;
            (hook.sealed_secret, hook.updated_at) = (sealed_secret, now);
            Ok(())
        })
    }
    async fn remove_webhook(&self, id: i64) -> RepoResult<()> {
        self.with(|i| {
            i.hooks.remove(&id).ok_or(RepoError::NotFound)?;
            i.deliveries.retain(|_, d| d.webhook_id != id);
            let named: BTreeSet<String> = i.deliveries.values().map(|d| d.event_id.clone()).collect();
            i.hook_events.retain(|e, _| named.contains(e));
            Ok(())
        })
    }
    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        limit: i64,
        lease_until: Timestamp,
    ) -> RepoResult<Vec<WebhookDelivery>> {
        self.with(|i| {
            let due: Vec<i64> = i
                .deliveries
                .values()
                .filter(|d| d.status == DeliveryStatus::Pending && d.next_attempt_at <= now)
                .filter(|d| d.leased_until.is_none_or(|l| l <= now))
                .map(|d| d.id)
                .take(limit.max(0) as usize)
                .collect();
            let mut out = Vec::new();
            for id in due {
                if let Some(d) = i.deliveries.get_mut(&id) {
                    d.leased_until = Some(lease_until);
                }
                out.extend(i.delivery(id));
            }
            Ok(out)
        })
    }
    async fn record_delivery(&self, id: i64, now: Timestamp, outcome: DeliveryOutcome) -> RepoResult<WebhookDelivery> {
        self.with(|i| {
            let d = i.deliveries.get_mut(&id).ok_or(RepoError::NotFound)?;
            d.attempts += 1;
            d.leased_until = None;
            match outcome {
                DeliveryOutcome::Sent => (d.status, d.sent_at) = (DeliveryStatus::Sent, Some(now)),
                DeliveryOutcome::Retry { error, next_attempt_at } => {
                    (d.last_error, d.next_attempt_at) = (Some(error), next_attempt_at)
                }
                DeliveryOutcome::Failed { error } => (d.status, d.last_error) = (DeliveryStatus::Failed, Some(error)),
            }
            i.delivery(id).ok_or(RepoError::NotFound)
        })
    }
    async fn deliveries_of_event(&self, event_id: &str) -> RepoResult<Vec<WebhookDelivery>> {
        self.with(|i| {
            let ids: Vec<i64> = i.deliveries.values().filter(|d| d.event_id == event_id).map(|d| d.id).collect();
            Ok(ids.into_iter().filter_map(|id| i.delivery(id)).collect())
        })
    }
    async fn pending_deliveries(&self) -> RepoResult<i64> {
        self.with(|i| Ok(i.deliveries.values().filter(|d| d.status == DeliveryStatus::Pending).count() as i64))
    }
    async fn purge_finished_deliveries(&self, before: Timestamp, limit: i64) -> RepoResult<u64> {
        self.with(|i| {
            let old: Vec<(i64, String)> = i
                .deliveries
                .values()
                .filter(|d| d.status != DeliveryStatus::Pending && d.created_at < before)
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|d| (d.id, d.event_id.clone()))
                .collect();
            for (id, _) in &old {
                i.deliveries.remove(id);
            }
            let named: BTreeSet<&String> = i.deliveries.values().map(|d| &d.event_id).collect();
            let orphans: Vec<String> = old.iter().map(|(_, e)| e.clone()).filter(|e| !named.contains(e)).collect();
            for event in orphans {
                i.hook_events.remove(&event);
            }
            Ok(old.len() as u64)
        })
    }
}

impl ReaderStateRepository for InMemoryStore {
    async fn checkpoint(&self, account_id: i64, mailbox: &str) -> RepoResult<Option<Checkpoint>> {
        self.with(|i| Ok(i.checkpoints.get(&(account_id, mailbox.to_string())).copied()))
    }
    async fn save_checkpoint(&self, account_id: i64, mailbox: &str, c: Checkpoint, _now: Timestamp) -> RepoResult<()> {
        self.with(|i| {
            i.checkpoints.insert((account_id, mailbox.to_string()), c);
            Ok(())
        })
    }
    async fn quarantine(&self, new: NewQuarantined) -> RepoResult<QuarantinedMail> {
        self.with(|i| {
            if let Some(q) = i.quarantine.values().find(|q| q.location == new.location) {
                return Ok(q.clone());
            }
            let q = QuarantinedMail {
                id: i.id(),
                location: new.location,
                size: new.size,
                reason: new.reason,
                detail: new.detail,
                raw_route: new.raw_route,
                attempts: 0,
                created_at: new.now,
                updated_at: new.now,
                ticket_id: None,
            };
            i.quarantine.insert(q.id, q.clone());
            Ok(q)
        })
    }
    async fn quarantined(&self, include_resolved: bool) -> RepoResult<Vec<QuarantinedMail>> {
        self.with(|i| Ok(i.quarantine.values().filter(|q| include_resolved || !q.is_resolved()).cloned().collect()))
    }
    async fn find_quarantined(&self, id: i64) -> RepoResult<Option<QuarantinedMail>> {
        self.with(|i| Ok(i.quarantine.get(&id).cloned()))
    }
    async fn record_retry(
        &self,
        id: i64,
        outcome: Result<i64, (QuarantineReason, String)>,
        now: Timestamp,
    ) -> RepoResult<QuarantinedMail> {
        self.with(|i| {
            let q = i.quarantine.get_mut(&id).ok_or(RepoError::NotFound)?;
            q.attempts += 1;
            q.updated_at = now;
            match outcome {
                Ok(ticket_id) => q.ticket_id = Some(ticket_id),
                Err((reason, detail)) => (q.reason, q.detail) = (reason, detail),
            }
            Ok(q.clone())
        })
    }
}

impl ConsoleSessionRepository for InMemoryStore {
    async fn create_console_session(&self, session: ConsoleSession) -> RepoResult<()> {
        self.with(|i| {
            if i.console_sessions.contains_key(&session.id_hash) {
                return Err(dup("sesion_consola.id_hash"));
            }
            if !i.users.contains_key(&session.user_id) {
                return Err(RepoError::MissingReference("usuario".into()));
            }
            i.console_sessions.insert(session.id_hash.clone(), session);
            Ok(())
        })
    }
    async fn find_console_session(&self, id_hash: &str) -> RepoResult<Option<ConsoleSession>> {
        self.with(|i| Ok(i.console_sessions.get(id_hash).cloned()))
    }
    async fn touch_console_session(&self, id_hash: &str, at: Timestamp) -> RepoResult<()> {
        self.with(|i| {
            if let Some(s) = i.console_sessions.get_mut(id_hash) {
                s.last_seen_at = s.last_seen_at.max(at);
            }
            Ok(())
        })
    }
    async fn end_console_session(&self, id_hash: &str, at: Timestamp) -> RepoResult<bool> {
        self.with(|i| match i.console_sessions.get_mut(id_hash) {
            Some(s) if s.ended_at.is_none() => {
                s.ended_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        })
    }
    async fn mark_presence(&self, ticket_id: i64, user_id: i64, answering: bool, at: Timestamp) -> RepoResult<()> {
        self.with(|i| {
            i.presence.insert((ticket_id, user_id), (answering, at));
            Ok(())
        })
    }
    async fn presence_on(&self, ticket_ids: &[i64], since: Timestamp) -> RepoResult<Vec<Presence>> {
        self.with(|i| {
            let mut found: Vec<Presence> = i
                .presence
                .iter()
                .filter(|((t, _), (_, seen))| ticket_ids.contains(t) && *seen >= since)
                .filter_map(|((t, u), (answering, seen))| {
                    Some(Presence {
                        ticket_id: *t,
                        user_id: *u,
                        name: i.users.get(u)?.0.name.clone(),
                        answering: *answering,
                        seen_at: *seen,
                    })
                })
                .collect();
            found.sort_by(|a, b| (a.ticket_id, &a.name).cmp(&(b.ticket_id, &b.name)));
            Ok(found)
        })
    }
    async fn answering_since(&self, since: Timestamp) -> RepoResult<Vec<(i64, i64)>> {
        self.with(|i| {
            Ok(i.presence
                .iter()
                .filter(|(_, (answering, seen))| *answering && *seen >= since)
                .map(|(k, _)| *k)
                .collect())
        })
    }
    async fn forget_presence(&self, before: Timestamp) -> RepoResult<u64> {
        self.with(|i| {
            let was = i.presence.len();
            i.presence.retain(|_, (_, seen)| *seen >= before);
            Ok((was - i.presence.len()) as u64)
        })
    }
}

impl HeldMailRepository for InMemoryStore {
    async fn hold(&self, new: NewHeldMail) -> RepoResult<HeldMail> {
        self.with(|i| {
            if let Some(h) = i.held.values().find(|h| h.dedupe_key == new.dedupe_key) {
                return Ok(h.clone());
            }
            let h = HeldMail {
                id: i.id(),
                dedupe_key: new.dedupe_key,
                reason: new.reason,
                mail: new.mail,
                created_at: new.now,
                ticket_id: None,
                released_at: None,
            };
            i.held.insert(h.id, h.clone());
            Ok(h)
        })
    }
    async fn held_mail(&self, include_released: bool) -> RepoResult<Vec<HeldMail>> {
        self.with(|i| Ok(i.held.values().filter(|h| include_released || !h.is_released()).cloned().collect()))
    }
    async fn find_held(&self, id: i64) -> RepoResult<Option<HeldMail>> {
        self.with(|i| Ok(i.held.get(&id).cloned()))
    }
    async fn mark_released(&self, id: i64, ticket_id: i64, now: Timestamp) -> RepoResult<HeldMail> {
        self.with(|i| {
            let h = i.held.get_mut(&id).ok_or(RepoError::NotFound)?;
            if h.ticket_id.is_none() {
                (h.ticket_id, h.released_at) = (Some(ticket_id), Some(now));
            }
            Ok(h.clone())
        })
    }
}

impl SlaRepository for InMemoryStore {
    async fn sla_setup(&self) -> RepoResult<SlaSetup> {
        self.with(|i| {
            Ok(SlaSetup {
                policies: i.policies.values().cloned().collect(),
                calendars: i.calendars.values().cloned().collect(),
                department_calendars: i.department_calendars.iter().map(|(d, c)| (*d, *c)).collect(),
            })
        })
    }
    async fn save_calendar(&self, new: NewCalendar) -> RepoResult<i64> {
        let zone = parse_zone(&new.zone).map_err(RepoError::unexpected)?;
        let hours = WeeklyHours::parse(&new.hours).map_err(RepoError::unexpected)?;
        self.with(|i| {
            if let Some(c) = i.calendars.values_mut().find(|c| c.name == new.name) {
                (c.zone, c.hours) = (zone, hours);
                return Ok(c.id);
            }
            let id = i.id();
            let calendar = BusinessCalendar { id, name: new.name, zone, hours, holidays: BTreeSet::new() };
            i.calendars.insert(id, calendar);
            Ok(id)
        })
    }
    async fn set_holiday(&self, calendar_id: i64, date: chrono::NaiveDate, on: bool) -> RepoResult<()> {
        self.with(|i| {
            let c = i.calendars.get_mut(&calendar_id).ok_or(RepoError::NotFound)?;
            if on {
                c.holidays.insert(date);
            } else {
                c.holidays.remove(&date);
            }
            Ok(())
        })
    }
    async fn set_department_calendar(&self, department_id: i64, calendar_id: Option<i64>) -> RepoResult<()> {
        self.with(|i| {
            if !i.departments.contains_key(&department_id) || calendar_id.is_some_and(|c| !i.calendars.contains_key(&c))
            {
                return Err(RepoError::NotFound);
            }
            match calendar_id {
                Some(c) => i.department_calendars.insert(department_id, c),
                None => i.department_calendars.remove(&department_id),
            };
            Ok(())
        })
    }
    async fn save_policy(&self, new: NewSlaPolicy) -> RepoResult<SlaPolicy> {
        self.with(|i| {
            if new.department_id.is_some_and(|d| !i.departments.contains_key(&d)) {
                return Err(RepoError::MissingReference("departamento".into()));
            }
            let existing =
                i.policies.values().find(|p| p.department_id == new.department_id && p.priority == new.priority);
            let id = match existing {
                Some(p) => p.id,
                None => i.id(),
            };
            let policy = SlaPolicy {
                id,
                department_id: new.department_id,
                priority: new.priority,
                first_response_mins: new.first_response_mins,
                resolution_mins: new.resolution_mins,
                warning_pct: new.warning_pct,
            };
            i.policies.insert(id, policy.clone());
            Ok(policy)
        })
    }
    async fn remove_policy(&self, id: i64) -> RepoResult<bool> {
        self.with(|i| Ok(i.policies.remove(&id).is_some()))
    }
    async fn sla_crossings(&self, now: Timestamp, limit: i64) -> RepoResult<Vec<(Ticket, SlaThreshold)>> {
        self.with(|i| {
            let mut out: Vec<(Timestamp, Ticket, SlaThreshold)> = Vec::new();
            for t in i.tickets.values() {
                let Some(clock) = t.sla else { continue };
                for th in clock.crossed(now) {
                    if !i.escalations.contains(&(t.id, th)) {
                        let at = match th {
                            SlaThreshold::FirstResponseWarning => clock.first_response_warning,
                            SlaThreshold::FirstResponseBreach => clock.first_response_due,
                            SlaThreshold::ResolutionWarning => clock.resolution_warning,
                            SlaThreshold::ResolutionBreach => clock.resolution_due,
                        };
                        out.push((at, t.clone(), th));
                    }
                }
            }
            out.sort_by_key(|(at, t, th)| (*at, t.id, *th));
            Ok(out.into_iter().take(limit.max(0) as usize).map(|(_, t, th)| (t, th)).collect())
        })
    }
    async fn escalate(
        &self,
        ticket_id: i64,
        threshold: SlaThreshold,
        notices: Vec<NewNotice>,
        now: Timestamp,
    ) -> RepoResult<Option<Vec<i64>>> {
        self.with(|i| {
            if !i.tickets.contains_key(&ticket_id) {
                return Err(RepoError::NotFound);
            }
            if i.escalations.contains(&(ticket_id, threshold)) {
                return Ok(None);
            }
            let latest = i.latest_detail(ticket_id)?;
            i.escalations.insert((ticket_id, threshold));
            Ok(Some(i.insert_notices(ticket_id, latest, &notices, now, now)))
        })
    }
    async fn sla_counts(&self, now: Timestamp) -> RepoResult<Vec<(SlaState, i64)>> {
        self.with(|i| {
            let mut counts: BTreeMap<SlaState, i64> = BTreeMap::new();
            for c in i.tickets.values().filter_map(|t| t.sla) {
                *counts.entry(c.state(now)).or_default() += 1;
            }
            Ok(counts.into_iter().collect())
        })
    }
}

impl StoreHealth for InMemoryStore {
    async fn ping(&self) -> RepoResult<()> {
        Ok(())
    }
    async fn probe_write(&self, _room: u64) -> RepoResult<()> {
        Ok(())
    }
    fn pool_usage(&self) -> Option<(usize, usize)> {
        None
    }
}

#[cfg(test)]
mod contract_on_memory {
    async fn fresh() -> super::InMemoryStore {
        super::InMemoryStore::new()
    }
    crate::repository_contract_tests!(fresh);
}
