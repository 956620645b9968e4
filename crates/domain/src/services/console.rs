//! The operators' console's sessions: sign-in through [`SsoService`] (its
//! throttle, password rules and product access, for the product
//! [`CONSOLE_PRODUCT`]), then a session of its own that a browser holds as a
//! random key (the store keeps its SHA-256), ending at sign-out, after
//! `idle` without a request, or `max` after sign-in, and as soon as its user
//! is deactivated or loses access to the console.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::Duration;

use crate::crypto::{random_token, sha256_hex};
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{Clock, ConsoleSessionRepository, MailNotifier, NotifyError};
use crate::services::{Credentials, ForgotError, LoginRequest, Operator, SsoError, SsoPorts, SsoService};

/// The product the console signs in to (a migration creates it).
pub const CONSOLE_PRODUCT: &str = "consola";
/// Characters of a session key or CSRF token (about 256 bits).
const KEY_LEN: usize = 43;
/// A session's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// A session unused this long has ended.
    pub idle: Duration,
    /// No session outlives its sign-in by more than this.
    pub max: Duration,
    /// The console's own password-reset page (`<public_url>/consola/restablecer`),
    /// which the reset e-mail links to unless the `consola` product names
    /// another.
    pub reset_url: String,
    /// How long the queue's view counts are kept.
    pub counts_cache: std::time::Duration,
    /// An operator's presence on a ticket counts this long after their
    /// page last reported it.
    pub presence: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No such session, or it has ended (signed out, idle, too old, its
    /// user deactivated or no longer allowed in).
    #[error("signed out")]
    SignedOut,
    /// Signed in, but the user works no tickets (no department, not a lead).
    #[error("the user works no tickets")]
    NotAnOperator,
    /// The sign-in was refused (credentials, throttle, product access).
    #[error(transparent)]
    Sso(#[from] SsoError),
    /// The reset e-mail could not be sent.
    #[error("the reset e-mail was not sent")]
    Mail(#[source] NotifyError),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// A session just opened: `key` goes to the browser, once.
pub struct SignedIn {
    pub key: String,
    pub session: ConsoleSession,
    pub operator: Operator,
}

/// A request of a live session.
#[derive(Clone)]
pub struct Visit {
    pub session: ConsoleSession,
    pub operator: Operator,
}

pub struct ConsoleService<R: SsoPorts + ConsoleSessionRepository> {
    repo: Arc<R>,
    sso: Arc<SsoService<R>>,
    clock: Arc<dyn Clock>,
    settings: ConsoleSettings,
    /// Sessions checked for pages' own requests, by key hash, with when.
    unattended: Mutex<HashMap<String, (Visit, Timestamp)>>,
}

/// A page's own requests (every 2 s) are answered from a session checked
/// this recently: a sign-out through another server, or a user
/// deactivated, stops them this much later (a sign-out here, at once).
const UNATTENDED_CHECK: Duration = Duration::seconds(10);
/// Sessions kept for [`UNATTENDED_CHECK`] at most (then all are checked again).
const UNATTENDED_KEPT: usize = 10_000;

impl<R: SsoPorts + ConsoleSessionRepository> ConsoleService<R> {
    pub fn new(repo: Arc<R>, sso: Arc<SsoService<R>>, clock: Arc<dyn Clock>, settings: ConsoleSettings) -> Self {
        Self { repo, sso, clock, settings, unattended: Mutex::new(HashMap::new()) }
    }

    pub fn settings(&self) -> &ConsoleSettings {
        &self.settings
    }

    /// Starts a password reset for the console: the SSO's rules (nothing
    /// is said about whether the address exists; one mail per cooldown),
    /// the link to the console's own reset page unless the product names
    /// another.
    pub async fn forgot<M: MailNotifier>(&self, mailer: &M, email: &str) -> Result<(), ConsoleError> {
        let mut product = match self.sso.product(CONSOLE_PRODUCT).await {
            Ok(p) => p,
            // The console closed to everyone: nobody gets a link.
            Err(SsoError::UnknownProduct) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if product.reset_url.is_none() {
            product.reset_url = Some(self.settings.reset_url.clone());
        }
        self.sso.forgot(mailer, &product, email).await.map_err(|e| match e {
            ForgotError::Store(e) => ConsoleError::Store(e),
            ForgotError::Mail(e) => ConsoleError::Mail(e),
        })
    }

    /// Completes a reset from the console's page.
    pub async fn reset(&self, id: &str, token: &str, password: &str) -> Result<(), ConsoleError> {
        Ok(self.sso.reset(CONSOLE_PRODUCT, id, token, password).await?)
    }

    /// Signs in with a password, opening a new session (a new key at every
    /// sign-in: a key known before it is worth nothing after).
    pub async fn sign_in(&self, login: &str, password: &str, client_ip: &str) -> Result<SignedIn, ConsoleError> {
        let done = self
            .sso
            .login(LoginRequest {
                product: CONSOLE_PRODUCT.into(),
                login: login.into(),
                credentials: Credentials::Password(password.into()),
                client_ip: client_ip.into(),
            })
            .await?;
        let operator = Operator::new(done.user).map_err(|_| ConsoleError::NotAnOperator)?;
        let now = self.clock.now();
        let key = random_token(KEY_LEN);
        let session = ConsoleSession {
            id_hash: sha256_hex(key.as_bytes()),
            user_id: operator.id(),
            csrf: random_token(KEY_LEN),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
        };
        self.repo.create_console_session(session.clone()).await?;
        Ok(SignedIn { key, session, operator })
    }

    /// The live session `key` opens, its use recorded.
    pub async fn resume(&self, key: &str) -> Result<Visit, ConsoleError> {
        self.resuming(key, true).await
    }

    /// The live session `key` opens, for a request its page makes by
    /// itself (the live updates): the same checks, its use not recorded, so
    /// that a page left open still ends its session after `idle`.
    /// A session checked less than [`UNATTENDED_CHECK`] ago is not read
    /// again.
    pub async fn resume_unattended(&self, key: &str) -> Result<Visit, ConsoleError> {
        let hash = sha256_hex(key.as_bytes());
        let now = self.clock.now();
        let kept = self.kept().get(&hash).filter(|(_, at)| now - *at < UNATTENDED_CHECK).map(|(v, _)| v.clone());
        if let Some(visit) = kept {
            return Ok(visit);
        }
        let found = self.resuming(key, false).await;
        let mut kept = self.kept();
        match &found {
            Ok(visit) => {
                if kept.len() >= UNATTENDED_KEPT {
                    kept.clear();
                }
                kept.insert(hash, (visit.clone(), now));
            }
            Err(_) => {
                kept.remove(&hash);
            }
        }
        found
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Visit, Timestamp)>> {
        self.unattended.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn resuming(&self, key: &str, used: bool) -> Result<Visit, ConsoleError> {
        if key.len() != KEY_LEN || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConsoleError::SignedOut);
        }
        let Some(session) = self.repo.find_console_session(&sha256_hex(key.as_bytes())).await? else {
            return Err(ConsoleError::SignedOut);
        };
        let now = self.clock.now();
        let live = session.ended_at.is_none()
            && now - session.last_seen_at < self.settings.idle
            && now - session.created_at < self.settings.max;
        if !live {
            return Err(ConsoleError::SignedOut);
        }
        let Some(user) = self.sso.active_user_of(CONSOLE_PRODUCT, session.user_id).await? else {
            self.repo.end_console_session(&session.id_hash, now).await?;
            return Err(ConsoleError::SignedOut);
        };
        let operator = Operator::new(user).map_err(|_| ConsoleError::SignedOut)?;
        if used && now - session.last_seen_at >= TOUCH_EVERY {
            self.repo.touch_console_session(&session.id_hash, now).await?;
        }
        Ok(Visit { session, operator })
    }

    /// Records that the visit's operator has the ticket open (`answering`:
    /// writing a reply) and returns the other operators who have it open
    /// now. The row is written when it would otherwise expire within two
    /// thirds of the presence time or when `answering` changed, not at
    /// every call. The caller has checked that the operator sees the
    /// ticket.
    pub async fn present(&self, visit: &Visit, ticket_id: i64, answering: bool) -> Result<Vec<Presence>, ConsoleError> {
        let now = self.clock.now();
        let me = visit.operator.id();
        let (mine, others): (Vec<Presence>, Vec<Presence>) = self
            .repo
            .presence_on(&[ticket_id], now - self.settings.presence)
            .await?
            .into_iter()
            .partition(|p| p.user_id == me);
        let fresh =
            mine.first().is_some_and(|p| p.answering == answering && now - p.seen_at < self.settings.presence / 3);
        if !fresh {
            self.repo.mark_presence(ticket_id, me, answering, now).await?;
        }
        Ok(others)
    }

    /// Of `ticket_ids`, those another operator is answering now, with
    /// their names.
    pub async fn answering(
        &self,
        visit: &Visit,
        ticket_ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<String>>, ConsoleError> {
        let mut by_ticket: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        if ticket_ids.is_empty() {
            return Ok(by_ticket);
        }
        let since = self.clock.now() - self.settings.presence;
        for p in self.repo.presence_on(ticket_ids, since).await? {
            if p.answering && p.user_id != visit.operator.id() {
                by_ticket.entry(p.ticket_id).or_default().push(p.name);
            }
        }
        Ok(by_ticket)
    }

    /// Every (ticket, operator) pair of another operator answering now: the
    /// queue's marks change only when this does.
    pub async fn answering_now(&self, visit: &Visit) -> Result<Vec<(i64, i64)>, ConsoleError> {
        let since = self.clock.now() - self.settings.presence;
        let mut pairs = self.repo.answering_since(since).await?;
        pairs.retain(|(_, user)| *user != visit.operator.id());
        Ok(pairs)
    }

    /// Deletes the presence rows that have long stopped counting.
    pub async fn forget_presence(&self) -> Result<u64, RepoError> {
        self.repo.forget_presence(self.clock.now() - self.settings.presence * 2).await
    }

    /// Ends the session `key` opens (nothing when it had ended).
    pub async fn sign_out(&self, key: &str) -> Result<(), ConsoleError> {
        let hash = sha256_hex(key.as_bytes());
        self.kept().remove(&hash);
        self.repo.end_console_session(&hash, self.clock.now()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::TokenSigner;
    use crate::ports::{DepartmentRepository, InlineHasher, ProductRepository, UserRepository};
    use crate::services::{AdminService, SsoSettings, ThrottlePolicy};
    use crate::testing::contract::sample_user;
    use crate::testing::{InMemoryStore, ManualClock};

    struct Fixture {
        console: ConsoleService<InMemoryStore>,
        store: Arc<InMemoryStore>,
        clock: Arc<ManualClock>,
        user: InternalUser,
    }

    async fn fixture() -> Fixture {
        let store = Arc::new(InMemoryStore::new());
        store.create_product(NewProduct { alias: CONSOLE_PRODUCT.into(), name: "Consola".into() }).await.unwrap();
        let department =
            store.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let mut new = sample_user("ana", "ana@example.test", Some(department.id));
        new.password_hash = Some(crate::crypto::hash_password("Clave-correcta-1"));
        let user = store.create_user(new).await.unwrap();
        let clock = Arc::new(ManualClock::new(
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(8, 0, 0).unwrap(),
        ));
        let sso = Arc::new(SsoService::new(
            store.clone(),
            Arc::new(InlineHasher),
            TokenSigner::new([9; 32], "helpdesk"),
            clock.clone(),
            SsoSettings {
                token_ttl: Duration::hours(8),
                session_max: Duration::days(30),
                reset_url: "https://ayuda.example.test/restablecer".into(),
                throttle: ThrottlePolicy::default(),
            },
        ));
        let settings = ConsoleSettings {
            idle: Duration::minutes(30),
            max: Duration::hours(12),
            reset_url: "https://mesa.example.test/consola/restablecer".into(),
            counts_cache: std::time::Duration::ZERO,
            presence: Duration::seconds(30),
        };
        let console = ConsoleService::new(store.clone(), sso, clock.clone(), settings);
        Fixture { console, store, clock, user }
    }

    #[tokio::test]
    async fn a_session_lives_while_used_and_ends_at_sign_out() {
        let f = fixture().await;
        assert!(matches!(
            f.console.sign_in("ana", "Clave-incorrecta-1", "10.0.0.1").await,
            Err(ConsoleError::Sso(SsoError::InvalidCredentials))
        ));
        let first = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        let second = f.console.sign_in("ANA@example.test", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        assert_ne!(first.key, second.key, "a new key at every sign-in");
        assert_ne!(first.session.csrf, second.session.csrf);
        assert_eq!(first.operator.id(), f.user.id);
        let stored = f.store.find_console_session(&first.session.id_hash).await.unwrap().unwrap();
        assert!(!stored.id_hash.contains(&first.key), "only the key's hash is stored");

        // Used every 20 minutes, it lives past the idle limit.
        for _ in 0..3 {
            f.clock.advance(Duration::minutes(20));
            let visit = f.console.resume(&first.key).await.unwrap();
            assert_eq!(visit.session.csrf, first.session.csrf);
        }
        f.console.sign_out(&first.key).await.unwrap();
        assert!(matches!(f.console.resume(&first.key).await, Err(ConsoleError::SignedOut)));
        for bad in ["", "x", &first.key[1..], &"a".repeat(43)] {
            assert!(matches!(f.console.resume(bad).await, Err(ConsoleError::SignedOut)), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_page_polling_by_itself_does_not_keep_its_session_alive() {
        let f = fixture().await;
        let signed = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        for _ in 0..14 {
            f.clock.advance(Duration::minutes(2));
            f.console.resume_unattended(&signed.key).await.unwrap();
        }
        f.clock.advance(Duration::minutes(2));
        assert!(matches!(f.console.resume_unattended(&signed.key).await, Err(ConsoleError::SignedOut)));
        assert!(matches!(f.console.resume(&signed.key).await, Err(ConsoleError::SignedOut)));
    }

    #[tokio::test]
    async fn a_pages_own_requests_recheck_their_session_every_ten_seconds() {
        let f = fixture().await;
        let signed = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        f.console.resume_unattended(&signed.key).await.unwrap();
        // Signed out through another server: still served from memory...
        f.store.end_console_session(&signed.session.id_hash, f.clock.now()).await.unwrap();
        f.clock.advance(Duration::seconds(9));
        f.console.resume_unattended(&signed.key).await.unwrap();
        // ...until it is checked again.
        f.clock.advance(Duration::seconds(1));
        assert!(matches!(f.console.resume_unattended(&signed.key).await, Err(ConsoleError::SignedOut)));
        // A sign-out here ends it at once.
        let again = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        f.console.resume_unattended(&again.key).await.unwrap();
        f.console.sign_out(&again.key).await.unwrap();
        assert!(matches!(f.console.resume_unattended(&again.key).await, Err(ConsoleError::SignedOut)));
    }

    #[tokio::test]
    async fn presence_shows_the_others_is_written_sparingly_and_expires() {
        let f = fixture().await;
        let mut new = sample_user("bea", "bea@example.test", f.user.department_id);
        new.password_hash = Some(crate::crypto::hash_password("Clave-correcta-2"));
        f.store.create_user(new).await.unwrap();
        let ana = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        let ana = f.console.resume(&ana.key).await.unwrap();
        let bea = f.console.sign_in("bea", "Clave-correcta-2", "10.0.0.2").await.unwrap();
        let bea = f.console.resume(&bea.key).await.unwrap();
        let who = |v: Vec<Presence>| v.into_iter().map(|p| (p.name, p.answering)).collect::<Vec<_>>();

        assert_eq!(who(f.console.present(&ana, 5, false).await.unwrap()), vec![]);
        assert_eq!(who(f.console.present(&bea, 5, true).await.unwrap()), vec![("Nombre de ana".into(), false)]);
        assert_eq!(who(f.console.present(&ana, 5, false).await.unwrap()), vec![("Nombre de bea".into(), true)]);
        let answering = f.console.answering(&ana, &[5, 6]).await.unwrap();
        assert_eq!(answering, BTreeMap::from([(5, vec!["Nombre de bea".to_string()])]));
        assert!(f.console.answering(&bea, &[5, 6]).await.unwrap().is_empty(), "never oneself");
        assert_eq!(f.console.answering_now(&ana).await.unwrap(), vec![(5, bea.operator.id())]);
        assert!(f.console.answering_now(&bea).await.unwrap().is_empty(), "never oneself");

        let seen_at = async |v: &Visit| {
            let all = f.store.presence_on(&[5], f.clock.now() - Duration::hours(1)).await.unwrap();
            all.into_iter().find(|p| p.user_id == v.operator.id()).map(|p| p.seen_at)
        };
        let first = seen_at(&ana).await;
        f.clock.advance(Duration::seconds(9));
        f.console.present(&ana, 5, false).await.unwrap();
        assert_eq!(seen_at(&ana).await, first, "not rewritten within a third of the presence time");
        f.console.present(&ana, 5, true).await.unwrap();
        assert_eq!(seen_at(&ana).await, Some(f.clock.now()), "rewritten when answering changes");
        f.clock.advance(Duration::seconds(11));
        f.console.present(&ana, 5, true).await.unwrap();
        assert_eq!(seen_at(&ana).await, Some(f.clock.now()), "rewritten before it expires");

        // Bea's page stopped reporting 20 s ago; 11 s later she is gone.
        f.clock.advance(Duration::seconds(11));
        assert_eq!(who(f.console.present(&ana, 5, true).await.unwrap()), vec![]);
        assert!(f.console.answering(&ana, &[5]).await.unwrap().is_empty());
        f.clock.advance(Duration::seconds(30));
        assert_eq!(f.console.forget_presence().await.unwrap(), 1, "bea's row, past twice the presence time");
    }

    #[tokio::test]
    async fn idle_too_long_too_old_or_no_longer_allowed_ends_it() {
        let f = fixture().await;
        let idle = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        f.clock.advance(Duration::minutes(30));
        assert!(matches!(f.console.resume(&idle.key).await, Err(ConsoleError::SignedOut)), "idle");

        let old = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        for _ in 0..(12 * 3 - 1) {
            f.clock.advance(Duration::minutes(20));
            f.console.resume(&old.key).await.unwrap();
        }
        f.clock.advance(Duration::minutes(20));
        assert!(matches!(f.console.resume(&old.key).await, Err(ConsoleError::SignedOut)), "12 hours");

        let revoked = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        let change = ProductChange { access: Some(ProductAccess::Granted), ..Default::default() };
        f.store.update_product(CONSOLE_PRODUCT, change).await.unwrap();
        assert!(matches!(f.console.resume(&revoked.key).await, Err(ConsoleError::SignedOut)), "access restricted");
        let session = f.store.find_console_session(&revoked.session.id_hash).await.unwrap().unwrap();
        assert!(session.ended_at.is_some(), "and ended for good");

        let admin = AdminService::new(f.store.clone());
        let product = f.store.find_product_by_alias(CONSOLE_PRODUCT).await.unwrap().unwrap();
        admin.set_product_grant(f.user.id, product.id, true, f.clock.now()).await.unwrap();
        let granted = f.console.sign_in("ana", "Clave-correcta-1", "10.0.0.1").await.unwrap();
        f.console.resume(&granted.key).await.unwrap();
        admin.set_user_status(f.user.id, UserStatus::Inactive, f.clock.now()).await.unwrap();
        assert!(matches!(f.console.resume(&granted.key).await, Err(ConsoleError::SignedOut)), "deactivated");
    }
}
