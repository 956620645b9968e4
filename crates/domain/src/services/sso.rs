//! SSO: login by password or device PIN, token refresh with rotation,
//! password forgot and reset, and login throttling.

use std::sync::Arc;

use chrono::Duration;
use subtle::ConstantTimeEq;

use crate::crypto::{TokenClaims, TokenSigner, random_token, sha256_hex};
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{Clock, MailNotifier, NotifyError, PasswordHasher};
use crate::services::check_password_policy;

/// A PHC string of a random password with the same parameters as real
/// hashes: unknown users are checked against it, so they cost the same.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=7168,t=5,p=1$cmFuZG9tc2FsdHZhbHVl$1c2ZcQ/6Gq3j1M1D3o3cW1S6pQpXq1d0mS0iJp2hY6M";

/// A reset link is valid this long (Laravel's broker default).
pub const RESET_TTL_MINUTES: i64 = 60;
/// A second reset request within this many seconds sends nothing new.
pub const RESET_COOLDOWN_SECONDS: i64 = 60;

/// How hard failures are throttled. An attempt is counted under three keys
/// at once: the account from this address (so an attacker elsewhere cannot
/// lock the owner out), the account from anywhere (a higher ceiling, so that
/// many addresses do not multiply the tries), and the address across all
/// accounts. The account is the resolved user: login and e-mail share one
/// counter. PINs are short, so they get fewer tries and longer locks.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    pub window: Duration,
    /// Password attempts per account from one address.
    pub password_failures: i32,
    /// Password attempts per account from all addresses.
    pub password_account_failures: i32,
    pub password_lock: Duration,
    /// PIN attempts per account and device from one address.
    pub pin_failures: i32,
    /// PIN attempts per account and device from all addresses.
    pub pin_account_failures: i32,
    pub pin_lock: Duration,
    /// Failures from one address across all accounts.
    pub address_failures: i32,
    pub address_lock: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::minutes(15),
            password_failures: 5,
            password_account_failures: 50,
            password_lock: Duration::minutes(15),
            pin_failures: 3,
            pin_account_failures: 10,
            pin_lock: Duration::minutes(30),
            address_failures: 30,
            address_lock: Duration::minutes(15),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub token_ttl: Duration,
    /// No token outlives the login it was refreshed from by more than this.
    pub session_max: Duration,
    /// The reset link: `<reset_url>?id=<id>&token=<token>`.
    pub reset_url: String,
    pub throttle: ThrottlePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Password(String),
    Pin { pin: String, device_id: i64 },
}

#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub product: String,
    /// Login or e-mail.
    pub login: String,
    pub credentials: Credentials,
    pub client_ip: String,
}

#[derive(Debug, Clone)]
pub struct LoginSuccess {
    pub user: InternalUser,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// `product` names no active `producto.alias_producto`.
    #[error("unknown product")]
    UnknownProduct,
    /// The user may not sign in to this product (`producto.acceso`).
    #[error("the user has no access to this product")]
    NoProductAccess,
    /// Same answer whether the user exists or not.
    #[error("invalid user credentials")]
    InvalidCredentials,
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    /// Expired, revoked, forged, for another product, or its user inactive.
    #[error("invalid user token")]
    InvalidToken,
    /// Unknown, used, expired or wrong reset token.
    #[error("invalid password reset token")]
    InvalidResetToken,
    #[error("{0}")]
    PasswordPolicy(String),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// The ports [`SsoService`] calls: any store providing them will do (the
/// whole `Store`, or a fake or mock of just these).
pub trait SsoPorts:
    crate::ports::ProductRepository
    + crate::ports::UserRepository
    + crate::ports::SessionRepository
    + crate::ports::PasswordResetRepository
    + crate::ports::ThrottleRepository
{
}
impl<
    T: crate::ports::ProductRepository
        + crate::ports::UserRepository
        + crate::ports::SessionRepository
        + crate::ports::PasswordResetRepository
        + crate::ports::ThrottleRepository,
> SsoPorts for T
{
}

/// Throttle keys deleted per transaction by [`SsoService::purge_stale_throttles`].
pub const THROTTLE_PURGE_BATCH: i64 = 1000;

pub struct SsoService<R: SsoPorts> {
    repo: Arc<R>,
    hasher: Arc<dyn PasswordHasher>,
    signer: TokenSigner,
    clock: Arc<dyn Clock>,
    settings: SsoSettings,
    verifying: KeyedLocks,
}

/// One async lock per key, created on demand and dropped when unused.
#[derive(Default)]
struct KeyedLocks {
    locks: std::sync::Mutex<std::collections::HashMap<String, Arc<futures_util::lock::Mutex<()>>>>,
}

impl KeyedLocks {
    async fn lock(&self, key: &str) -> KeyedGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        KeyedGuard { locks: self, key: key.to_string(), lock, guard: Some(guard) }
    }
}

struct KeyedGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    lock: Arc<futures_util::lock::Mutex<()>>,
    guard: Option<futures_util::lock::OwnedMutexGuard<()>>,
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.locks.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's and ours: nobody else waits for this key.
        if Arc::strong_count(&self.lock) <= 2 {
            locks.remove(&self.key);
        }
    }
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

impl<R: SsoPorts> SsoService<R> {
    pub fn new(
        repo: Arc<R>,
        hasher: Arc<dyn PasswordHasher>,
        signer: TokenSigner,
        clock: Arc<dyn Clock>,
        settings: SsoSettings,
    ) -> Self {
        Self { repo, hasher, signer, clock, settings, verifying: KeyedLocks::default() }
    }

    /// The active product with this alias; an inactive one is as unknown.
    pub async fn product(&self, alias: &str) -> Result<Product, SsoError> {
        let product = self.repo.find_product_by_alias(alias.trim()).await?;
        product.filter(|p| p.status.is_active()).ok_or(SsoError::UnknownProduct)
    }

    /// Whether the user may sign in to the product.
    /// The user, if still active and still allowed into the product
    /// (by its access rule, and the product still active): what a session
    /// kept elsewhere than in a token (the console's) checks on every use.
    pub async fn active_user_of(&self, product: &str, user_id: i64) -> Result<Option<InternalUser>, SsoError> {
        let product = match self.product(product).await {
            Ok(p) => p,
            Err(SsoError::UnknownProduct) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(user) = self.repo.find_user(user_id).await?.filter(InternalUser::is_active) else {
            return Ok(None);
        };
        Ok(self.may_use(&user, &product).await?.then_some(user))
    }

    async fn may_use(&self, user: &InternalUser, product: &Product) -> Result<bool, SsoError> {
        Ok(match product.access {
            ProductAccess::All => true,
            ProductAccess::Granted => self.repo.has_product_grant(user.id, product.id).await?,
        })
    }

    /// The keys a login attempt is counted under, in order: the account
    /// from this address, the account from anywhere, the address. The
    /// account is the user the login or e-mail names (one counter for both),
    /// or, for a name no user has, that name.
    fn limits(&self, req: &LoginRequest, account: &str, now: Timestamp) -> [ThrottleLimit; 3] {
        let t = &self.settings.throttle;
        let ip = &req.client_ip;
        let limit =
            |key: String, max: i32, lock: Duration| ThrottleLimit { key: cut_key(key), max, lock_until: now + lock };
        match &req.credentials {
            Credentials::Password(_) => [
                limit(format!("pwd:{account}:{ip}"), t.password_failures, t.password_lock),
                limit(format!("pwd:{account}"), t.password_account_failures, t.password_lock),
                limit(format!("ip:{ip}"), t.address_failures, t.address_lock),
            ],
            Credentials::Pin { device_id, .. } => [
                limit(format!("pin:{account}:{device_id}:{ip}"), t.pin_failures, t.pin_lock),
                limit(format!("pin:{account}:{device_id}"), t.pin_account_failures, t.pin_lock),
                limit(format!("ip:{ip}"), t.address_failures, t.address_lock),
            ],
        }
    }

    /// Deletes the throttle keys that count for nothing any more (see
    /// [`ThrottleState::is_stale`]); without it every address that ever
    /// failed a login would keep its row, and addresses are plenty (IPv6).
    /// Returns how many went.
    pub async fn purge_stale_throttles(&self) -> Result<u64, RepoError> {
        let now = self.clock.now();
        let window_start = now - self.settings.throttle.window;
        super::purge_in_rounds(THROTTLE_PURGE_BATCH, |limit| self.repo.purge_stale_throttles(window_start, now, limit))
            .await
    }

    /// Logs in by password or device PIN. The attempt is counted (reserved
    /// atomically in the store) before any hash is computed, so attempts
    /// sent in parallel cannot all be verified; a refused attempt costs no
    /// hash. One attempt per account is verified at a time in this process.
    pub async fn login(&self, req: LoginRequest) -> Result<LoginSuccess, SsoError> {
        let product = self.product(&req.product).await?;
        let found = self.repo.find_user_credentials(req.login.trim()).await?;
        let account = match &found {
            Some((user, _)) => format!("u{}", user.id),
            None => format!("n:{}", lower(&req.login)),
        };
        let _one_at_a_time = self.verifying.lock(&account).await;
        let now = self.clock.now();
        let limits = self.limits(&req, &account, now);
        let window_start = now - self.settings.throttle.window;
        if let Reservation::Refused { retry_after_secs } = self.repo.reserve_attempt(&limits, now, window_start).await?
        {
            return Err(SsoError::Throttled { retry_after_secs });
        }
        // A failure stays counted; a success clears the account's counter
        // from this address and gives the attempt back to the others.
        let Some(user) = self.check_credentials(found, &req.credentials).await? else {
            return Err(SsoError::InvalidCredentials);
        };
        let [own, account_wide, address] = limits;
        let (clear, refund) = (vec![own.key], vec![account_wide, address]);
        if !self.may_use(&user, &product).await? {
            self.repo.attempt_succeeded(&clear, &refund).await?;
            return Err(SsoError::NoProductAccess);
        }
        // The throttle settled, the login recorded and the session stored
        // at once: one commit.
        let session = self.new_session(&user, &product, now, None);
        let token = self.sign(&session, &product);
        let done = LoginDone { clear, refund, user_id: user.id, at: now, ip: req.client_ip.clone(), session };
        self.repo.login_succeeded(done).await?;
        Ok(LoginSuccess { user, token })
    }

    /// The user when the credentials are right; always one Argon2 check.
    async fn check_credentials(
        &self,
        found: Option<(InternalUser, Option<String>)>,
        creds: &Credentials,
    ) -> Result<Option<InternalUser>, SsoError> {
        let (secret, stored, user) = match creds {
            Credentials::Password(pw) => {
                let (user, hash) = match found {
                    Some((u, h)) => (Some(u), h),
                    None => (None, None),
                };
                (pw.clone(), hash, user)
            }
            Credentials::Pin { pin, device_id } => {
                let device = self.repo.find_device(*device_id).await?;
                match (found, device) {
                    (Some((u, _)), Some(d)) if d.user_id == u.id && d.status.is_active() => {
                        (pin.clone(), Some(d.pin_hash), Some(u))
                    }
                    _ => (pin.clone(), None, None),
                }
            }
        };
        let Some(stored) = stored else {
            self.hasher.verify(secret, DUMMY_HASH.to_string()).await;
            return Ok(None);
        };
        let rehash = matches!(creds, Credentials::Password(_)) && crate::crypto::needs_rehash(&stored);
        let ok = self.hasher.verify(secret.clone(), stored).await;
        let Some(user) = user.filter(|u| ok && u.is_active()) else { return Ok(None) };
        // A password hashed at an older cost is hashed again at today's,
        // now that it is known (once per user).
        if rehash {
            let new = self.hasher.hash(secret).await;
            self.repo.set_password_hash(user.id, &new).await?;
        }
        Ok(Some(user))
    }

    /// A new token: of a new family (a login), or of `family` (a refresh),
    /// never outliving the family's absolute lifetime.
    fn new_session(
        &self,
        user: &InternalUser,
        product: &Product,
        now: Timestamp,
        family: Option<(&str, Timestamp)>,
    ) -> UserSession {
        let token_id = random_token(32);
        let (family_id, family_started_at) = match family {
            Some((id, started)) => (id.to_string(), started),
            None => (token_id.clone(), now),
        };
        UserSession {
            token_id,
            user_id: user.id,
            product_id: Some(product.id),
            created_at: now,
            expires_at: (now + self.settings.token_ttl).min(family_started_at + self.settings.session_max),
            revoked_at: None,
            family_id,
            family_started_at,
        }
    }

    fn sign(&self, s: &UserSession, product: &Product) -> String {
        self.signer.sign(&TokenClaims {
            iss: self.signer.issuer().to_string(),
            sub: s.user_id.to_string(),
            aud: product.alias.clone(),
            jti: s.token_id.clone(),
            iat: s.created_at.and_utc().timestamp(),
            exp: s.expires_at.and_utc().timestamp(),
        })
    }

    /// The active user a live token (from `SSO/access` or a refresh)
    /// belongs to: signature, expiry, its session neither revoked (nor
    /// exchanged) nor past the family's lifetime. Used by the operators'
    /// ticket API; the token is not rotated.
    pub async fn authenticate(&self, token: &str) -> Result<InternalUser, SsoError> {
        let now = self.clock.now();
        let claims = self.signer.verify(token).map_err(|_| SsoError::InvalidToken)?;
        if claims.exp <= now.and_utc().timestamp() || claims.aud.starts_with("adi:") {
            return Err(SsoError::InvalidToken);
        }
        let session = self.repo.find_session(&claims.jti).await?.ok_or(SsoError::InvalidToken)?;
        let live = session.user_id.to_string() == claims.sub
            && session.revoked_at.is_none()
            && session.expires_at > now
            && session.family_started_at + self.settings.session_max > now;
        if !live {
            return Err(SsoError::InvalidToken);
        }
        let user = self
            .repo
            .find_user(session.user_id)
            .await?
            .filter(InternalUser::is_active)
            .ok_or(SsoError::InvalidToken)?;
        // The token follows its product: made inactive, or the user's
        // access to it revoked, and the token works no more.
        if let Some(product_id) = session.product_id {
            let product = self.repo.find_product(product_id).await?.filter(|p| p.status.is_active());
            match product {
                Some(p) if self.may_use(&user, &p).await? => {}
                _ => return Err(SsoError::InvalidToken),
            }
        }
        Ok(user)
    }

    /// Exchanges a live token for a new one, for `product`, and revokes the
    /// old (rotation).
    pub async fn refresh(&self, token: &str, product: &str) -> Result<LoginSuccess, SsoError> {
        let product = self.product(product).await?;
        let now = self.clock.now();
        let claims = self.signer.verify(token).map_err(|_| SsoError::InvalidToken)?;
        // Single sign-on: a token of one product may be refreshed for another
        // (the new token names the product asked for). Login tickets (ADI)
        // are not user tokens.
        if claims.exp <= now.and_utc().timestamp() || claims.aud.starts_with("adi:") {
            return Err(SsoError::InvalidToken);
        }
        let session = self.repo.find_session(&claims.jti).await?.ok_or(SsoError::InvalidToken)?;
        if session.user_id.to_string() != claims.sub {
            return Err(SsoError::InvalidToken);
        }
        if session.revoked_at.is_some() {
            // A token already exchanged (or revoked) presented again: whoever
            // holds it may hold the chain too; end the chain.
            self.repo.revoke_session_family(&session.family_id, now).await?;
            return Err(SsoError::InvalidToken);
        }
        if session.expires_at <= now || session.family_started_at + self.settings.session_max <= now {
            return Err(SsoError::InvalidToken);
        }
        let user = self
            .repo
            .find_user(session.user_id)
            .await?
            .filter(InternalUser::is_active)
            .ok_or(SsoError::InvalidToken)?;
        if !self.may_use(&user, &product).await? {
            return Err(SsoError::NoProductAccess);
        }
        let new = self.new_session(&user, &product, now, Some((&session.family_id, session.family_started_at)));
        let token = self.sign(&new, &product);
        match self.repo.rotate_session(&session.token_id, new, now).await {
            Ok(()) => Ok(LoginSuccess { user, token }),
            // A concurrent refresh of the same token won.
            Err(RepoError::NotFound) => Err(SsoError::InvalidToken),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts a password reset for the active user with this e-mail, if any,
    /// and mails the link. Says nothing about whether the user exists: the
    /// caller answers the same either way (and should not wait for this).
    ///
    /// `product` (from [`SsoService::product`]) names the page the link
    /// leads to (its own, or the default); a user who may not use it gets
    /// nothing.
    pub async fn forgot<M: MailNotifier>(&self, mailer: &M, product: &Product, email: &str) -> Result<(), ForgotError> {
        let now = self.clock.now();
        let filter = UserFilter { email: Some(email.trim().to_string()), ..Default::default() };
        let Some(user) = self.repo.find_users(filter).await?.into_iter().find(InternalUser::is_active) else {
            return Ok(());
        };
        if !self.may_use(&user, product).await.map_err(|e| match e {
            SsoError::Store(e) => ForgotError::Store(e),
            other => ForgotError::Store(RepoError::unexpected(other)),
        })? {
            return Ok(());
        }
        if let Some(last) = self.repo.latest_reset(user.id).await?
            && last.used_at.is_none()
            && now - last.created_at < Duration::seconds(RESET_COOLDOWN_SECONDS)
        {
            return Ok(());
        }
        let token = random_token(40);
        let reset = self.repo.create_reset(user.id, &sha256_hex(token.as_bytes()), now).await?;
        let page = product.reset_url.as_deref().unwrap_or(&self.settings.reset_url);
        let link = format!("{page}?id={}&token={token}", reset.id);
        mailer.send(reset_mail(&user, link)).await?;
        Ok(())
    }

    /// Completes a reset: the token must be the latest, unused, younger than
    /// 60 minutes; the password must meet the policy. Revokes every token.
    pub async fn reset(&self, product: &str, id: &str, token: &str, password: &str) -> Result<(), SsoError> {
        let product = self.product(product).await?;
        let now = self.clock.now();
        let id: i64 = id.trim().parse().map_err(|_| SsoError::InvalidResetToken)?;
        let reset = self.repo.find_reset(id).await?.ok_or(SsoError::InvalidResetToken)?;
        let matches: bool = sha256_hex(token.as_bytes()).as_bytes().ct_eq(reset.token_hash.as_bytes()).into();
        let fresh = now - reset.created_at < Duration::minutes(RESET_TTL_MINUTES);
        let latest = self.repo.latest_reset(reset.user_id).await?.is_some_and(|l| l.id == reset.id);
        if !matches || !fresh || !latest || reset.used_at.is_some() {
            return Err(SsoError::InvalidResetToken);
        }
        check_password_policy(password).map_err(SsoError::PasswordPolicy)?;
        let user = self.repo.find_user(reset.user_id).await?.ok_or(SsoError::InvalidResetToken)?;
        if !self.may_use(&user, &product).await? {
            return Err(SsoError::NoProductAccess);
        }
        let hash = self.hasher.hash(password.to_string()).await;
        match self.repo.complete_reset(reset.id, &hash, now).await {
            Ok(()) => Ok(()),
            Err(RepoError::NotFound) => Err(SsoError::InvalidResetToken),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForgotError {
    #[error(transparent)]
    Store(#[from] RepoError),
    #[error(transparent)]
    Mail(#[from] NotifyError),
}

/// Keys are stored in a 191-character column.
fn cut_key(s: String) -> String {
    s.chars().take(191).collect()
}

fn reset_mail(user: &InternalUser, link: String) -> OutgoingMail {
    OutgoingMail {
        to: user.email.clone(),
        content: MailContent::PasswordReset { name: user.name.clone(), link, valid_minutes: RESET_TTL_MINUTES },
        message_id: None,
        in_reply_to: None,
        references: vec![],
        cc: vec![],
        headers: vec![("Auto-Submitted".into(), "auto-generated".into())],
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ports::*;
    use crate::testing::contract::sample_user;
    use crate::testing::{InMemoryStore, ManualClock};

    struct Fixture {
        svc: SsoService<InMemoryStore>,
        store: Arc<InMemoryStore>,
        clock: Arc<ManualClock>,
        user: InternalUser,
        device: Device,
        hasher: Arc<CountingHasher>,
    }

    /// Argon2 inline, counting verifications.
    #[derive(Default)]
    struct CountingHasher(std::sync::atomic::AtomicUsize);

    impl CountingHasher {
        fn verified(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl PasswordHasher for CountingHasher {
        fn hash(&self, secret: String) -> std::pin::Pin<Box<dyn Future<Output = String> + Send>> {
            InlineHasher.hash(secret)
        }
        fn verify(&self, secret: String, phc: String) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            InlineHasher.verify(secret, phc)
        }
    }

    async fn fixture() -> Fixture {
        let store = Arc::new(InMemoryStore::new());
        store.create_product(NewProduct { alias: "mesa".into(), name: "Mesa".into() }).await.unwrap();
        let mut new = sample_user("ana", "ana@example.test", None);
        new.password_hash = Some(crate::crypto::hash_password("Clave-correcta-1"));
        let user = store.create_user(new).await.unwrap();
        let device = store
            .add_device(NewDevice {
                user_id: user.id,
                name: "tel".into(),
                pin_hash: crate::crypto::hash_password("4821"),
            })
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(8, 0, 0).unwrap(),
        ));
        let hasher = Arc::new(CountingHasher::default());
        let svc = SsoService::new(
            store.clone(),
            hasher.clone(),
            TokenSigner::new([9; 32], "helpdesk"),
            clock.clone(),
            SsoSettings {
                token_ttl: Duration::hours(8),
                session_max: Duration::days(30),
                reset_url: "https://ayuda.example.test/restablecer".into(),
                throttle: ThrottlePolicy::default(),
            },
        );
        Fixture { svc, store, clock, user, device, hasher }
    }

    fn pin(pin: &str, device_id: i64) -> LoginRequest {
        LoginRequest { credentials: Credentials::Pin { pin: pin.into(), device_id }, ..pw("ana", "") }
    }

    fn from(mut req: LoginRequest, ip: &str) -> LoginRequest {
        req.client_ip = ip.into();
        req
    }

    #[tokio::test]
    async fn a_password_of_an_older_cost_is_hashed_again_once_it_is_right() {
        let f = fixture().await;
        let stored = || async { f.store.find_user_credentials("ana").await.unwrap().unwrap().1.unwrap() };
        let old = argon2::PasswordHasher::hash_password(
            &argon2::Argon2::default(),
            b"Clave-correcta-1",
            &argon2::password_hash::SaltString::generate(&mut rand::thread_rng()),
        )
        .unwrap()
        .to_string();
        f.store.set_password_hash(f.user.id, &old).await.unwrap();
        assert!(matches!(f.svc.login(pw("ana", "mala")).await, Err(SsoError::InvalidCredentials)));
        assert_eq!(stored().await, old, "a wrong password changes nothing");
        f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        let new = stored().await;
        assert!(new.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");
        assert_eq!(crate::crypto::verify_password("Clave-correcta-1", &new), Ok(true));
        f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        assert_eq!(stored().await, new, "hashed again once");
    }

    #[tokio::test]
    async fn parallel_attempts_are_counted_before_any_is_verified() {
        let f = Arc::new(fixture().await);
        let tries: Vec<_> = (0..40)
            .map(|_| {
                let f = f.clone();
                tokio::spawn(async move { f.svc.login(pw("ana", "mala")).await })
            })
            .collect();
        let mut wrong = 0;
        let mut throttled = 0;
        for t in tries {
            match t.await.unwrap() {
                Err(SsoError::InvalidCredentials) => wrong += 1,
                Err(SsoError::Throttled { .. }) => throttled += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((wrong, throttled), (5, 35));
        assert_eq!(f.hasher.verified(), 5, "only the granted attempts were hashed");
        // A locked attempt costs no hash, right password or not.
        for password in ["mala", "Clave-correcta-1"] {
            assert!(matches!(f.svc.login(pw("ana", password)).await, Err(SsoError::Throttled { .. })));
        }
        assert_eq!(f.hasher.verified(), 5);
    }

    #[tokio::test]
    async fn login_and_email_share_one_counter_and_a_success_resets_it() {
        let f = fixture().await;
        for login in ["ana", "ANA@example.test", "ana", "ana@example.test"] {
            assert!(matches!(f.svc.login(pw(login, "mala")).await, Err(SsoError::InvalidCredentials)));
        }
        // Four failures, then a success: the account starts over.
        f.svc.login(pw("ana@example.test", "Clave-correcta-1")).await.unwrap();
        for _ in 0..4 {
            assert!(matches!(f.svc.login(pw("ana", "mala")).await, Err(SsoError::InvalidCredentials)));
        }
        f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        // Five in a row, under either name, lock both names.
        for login in ["ana", "ana@example.test", "ana", "ana@example.test", "ana"] {
            assert!(matches!(f.svc.login(pw(login, "mala")).await, Err(SsoError::InvalidCredentials)));
        }
        let err = f.svc.login(pw("ana@example.test", "Clave-correcta-1")).await.unwrap_err();
        assert!(matches!(err, SsoError::Throttled { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn many_addresses_meet_the_account_ceiling() {
        let f = fixture().await;
        for n in 0..10 {
            for _ in 0..5 {
                let r = f.svc.login(from(pw("ana", "mala"), &format!("10.1.0.{n}"))).await;
                assert!(matches!(r, Err(SsoError::InvalidCredentials)), "{n}: {r:?}");
            }
        }
        let r = f.svc.login(from(pw("ana", "Clave-correcta-1"), "10.2.0.1")).await;
        assert!(matches!(r, Err(SsoError::Throttled { .. })), "50 tries from anywhere lock the account: {r:?}");
    }

    #[tokio::test]
    async fn one_address_is_locked_across_accounts() {
        let f = fixture().await;
        for n in 0..30 {
            let r = f.svc.login(pw(&format!("nadie{n}"), "mala")).await;
            assert!(matches!(r, Err(SsoError::InvalidCredentials)), "{n}: {r:?}");
        }
        let r = f.svc.login(pw("ana", "Clave-correcta-1")).await;
        assert!(matches!(r, Err(SsoError::Throttled { .. })), "{r:?}");
        f.svc.login(from(pw("ana", "Clave-correcta-1"), "10.0.0.9")).await.unwrap();
    }

    #[tokio::test]
    async fn wrong_pins_elsewhere_do_not_lock_the_owner_out() {
        let f = fixture().await;
        let d = f.device.id;
        for _ in 0..3 {
            let r = f.svc.login(from(pin("0000", d), "203.0.113.7")).await;
            assert!(matches!(r, Err(SsoError::InvalidCredentials)), "{r:?}");
        }
        let r = f.svc.login(from(pin("4821", d), "203.0.113.7")).await;
        assert!(matches!(r, Err(SsoError::Throttled { .. })), "the attacker's address is locked: {r:?}");
        f.svc.login(pin("4821", d)).await.expect("the owner, from their address, is not");
        // Across addresses, the device's PIN gets 10 tries in all.
        for n in 0..3 {
            for _ in 0..3 {
                let _ = f.svc.login(from(pin("0000", d), &format!("198.51.100.{n}"))).await;
            }
        }
        let before = f.hasher.verified();
        let r = f.svc.login(from(pin("4821", d), "198.51.100.99")).await;
        assert!(matches!(r, Err(SsoError::Throttled { .. })), "the ceiling: {r:?}");
        assert_eq!(f.hasher.verified(), before, "refused before any hash");
    }

    fn pw(login: &str, password: &str) -> LoginRequest {
        LoginRequest {
            product: "mesa".into(),
            login: login.into(),
            credentials: Credentials::Password(password.into()),
            client_ip: "10.0.0.1".into(),
        }
    }

    #[test]
    fn the_dummy_hash_costs_a_real_argon2_run() {
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
        assert_eq!(crate::crypto::verify_password("x", DUMMY_HASH), Ok(false));
        assert!(!crate::crypto::needs_rehash(DUMMY_HASH), "the cost of real hashes");
    }

    #[tokio::test]
    async fn password_login_by_login_or_email() {
        let f = fixture().await;
        let ok = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        assert_eq!(ok.user.id, f.user.id);
        let ok2 = f.svc.login(pw("ANA@example.test", "Clave-correcta-1")).await.unwrap();
        assert_ne!(ok.token, ok2.token);
        let after = f.store.find_user(f.user.id).await.unwrap().unwrap();
        assert_eq!(after.ip_address.as_deref(), Some("10.0.0.1"));
        assert!(matches!(f.svc.login(pw("ana", "mala")).await, Err(SsoError::InvalidCredentials)));
        assert!(matches!(f.svc.login(pw("nadie", "Clave-correcta-1")).await, Err(SsoError::InvalidCredentials)));
        let mut other = pw("ana", "Clave-correcta-1");
        other.product = "otro".into();
        assert!(matches!(f.svc.login(other).await, Err(SsoError::UnknownProduct)));
        f.store.set_user_status(f.user.id, UserStatus::Inactive).await.unwrap();
        assert!(matches!(f.svc.login(pw("ana", "Clave-correcta-1")).await, Err(SsoError::InvalidCredentials)));
    }

    #[tokio::test]
    async fn pins_are_bound_to_their_device() {
        let f = fixture().await;
        f.svc.login(pin("4821", f.device.id)).await.unwrap();
        assert!(matches!(f.svc.login(pin("4822", f.device.id)).await, Err(SsoError::InvalidCredentials)));
        assert!(matches!(f.svc.login(pin("4821", f.device.id + 99)).await, Err(SsoError::InvalidCredentials)));
        // Another user's device does not work with this user's PIN.
        let bea = f.store.create_user(sample_user("bea", "bea@example.test", None)).await.unwrap();
        let d2 = f
            .store
            .add_device(NewDevice { user_id: bea.id, name: "x".into(), pin_hash: crate::crypto::hash_password("4821") })
            .await
            .unwrap();
        assert!(matches!(f.svc.login(pin("4821", d2.id)).await, Err(SsoError::InvalidCredentials)));
    }

    #[tokio::test]
    async fn failures_throttle_then_the_lock_expires() {
        let f = fixture().await;
        for _ in 0..5 {
            assert!(matches!(f.svc.login(pw("ana", "mala")).await, Err(SsoError::InvalidCredentials)));
        }
        let err = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap_err();
        assert!(matches!(err, SsoError::Throttled { retry_after_secs: 900 }), "{err:?}");
        // The same account from another address is not locked out.
        let mut elsewhere = pw("ana", "Clave-correcta-1");
        elsewhere.client_ip = "10.0.0.2".into();
        f.svc.login(elsewhere).await.unwrap();
        f.clock.advance(Duration::minutes(15));
        f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
    }

    #[tokio::test]
    async fn stale_throttle_keys_go_once_their_lock_or_window_is_over() {
        let f = fixture().await;
        for _ in 0..5 {
            assert!(matches!(f.svc.login(pw("ana", "mala")).await, Err(SsoError::InvalidCredentials)));
        }
        let keys = || async { f.store.throttle_state("ip:10.0.0.1").await.unwrap() };
        assert_eq!(f.svc.purge_stale_throttles().await.unwrap(), 0, "the lock runs 15 minutes");
        assert!(keys().await.is_some());
        f.clock.advance(Duration::minutes(15));
        // The account's lock from this address is served; the address's and
        // the account-wide counters (no lock) are in their window's last instant.
        assert_eq!(f.svc.purge_stale_throttles().await.unwrap(), 1);
        assert!(keys().await.is_some());
        f.clock.advance(Duration::seconds(1));
        assert_eq!(f.svc.purge_stale_throttles().await.unwrap(), 2, "their window ended");
        assert_eq!(keys().await, None);
        f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
    }

    #[tokio::test]
    async fn refresh_rotates_and_expiry_follows_the_clock() {
        let f = fixture().await;
        let first = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        let second = f.svc.refresh(&first.token, "mesa").await.unwrap();
        f.store.create_product(NewProduct { alias: "otro".into(), name: "Otro".into() }).await.unwrap();
        let other = f.svc.refresh(&second.token, "otro").await.unwrap();
        let foreign = TokenSigner::new([8; 32], "helpdesk").sign(&f.svc.signer.verify(&other.token).unwrap());
        assert!(matches!(f.svc.refresh(&foreign, "mesa").await, Err(SsoError::InvalidToken)), "another key");
        let second = f.svc.refresh(&other.token, "mesa").await.unwrap();
        assert!(matches!(f.svc.refresh(&second.token, "nada").await, Err(SsoError::UnknownProduct)));
        f.clock.advance(Duration::hours(8));
        assert!(matches!(f.svc.refresh(&second.token, "mesa").await, Err(SsoError::InvalidToken)), "expired");
    }

    #[tokio::test]
    async fn authenticate_names_the_user_of_a_live_token_only() {
        let f = fixture().await;
        let first = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        assert_eq!(f.svc.authenticate(&first.token).await.unwrap().id, f.user.id);
        assert_eq!(f.svc.authenticate(&first.token).await.unwrap().id, f.user.id, "not rotated by use");
        let second = f.svc.refresh(&first.token, "mesa").await.unwrap();
        assert!(matches!(f.svc.authenticate(&first.token).await, Err(SsoError::InvalidToken)), "exchanged");
        assert!(matches!(f.svc.authenticate("no-es-un-token").await, Err(SsoError::InvalidToken)));
        f.clock.advance(Duration::hours(8));
        assert!(matches!(f.svc.authenticate(&second.token).await, Err(SsoError::InvalidToken)), "expired");
    }

    /// A token follows its account: deactivating the user revokes it for
    /// good (activating them again revives nothing), and so do revoking
    /// their access to its product or making the product inactive.
    #[tokio::test]
    async fn tokens_follow_the_account_and_the_product() {
        use crate::ports::ProductRepository;
        let f = fixture().await;
        let admin = crate::services::AdminService::new(f.store.clone());
        let now = f.clock.now();
        let token = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap().token;
        assert_eq!(admin.set_user_status(f.user.id, UserStatus::Inactive, now).await.unwrap(), 1);
        assert!(matches!(f.svc.authenticate(&token).await, Err(SsoError::InvalidToken)), "inactive user");
        assert_eq!(admin.set_user_status(f.user.id, UserStatus::Active, now).await.unwrap(), 0);
        assert!(matches!(f.svc.authenticate(&token).await, Err(SsoError::InvalidToken)), "not revived");

        // Access to the product revoked (it is restricted to those granted).
        let change = ProductChange { access: Some(ProductAccess::Granted), ..Default::default() };
        let mesa = f.store.update_product("mesa", change).await.unwrap();
        admin.set_product_grant(f.user.id, mesa.id, true, now).await.unwrap();
        let token = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap().token;
        f.svc.authenticate(&token).await.unwrap();
        assert_eq!(admin.set_product_grant(f.user.id, mesa.id, false, now).await.unwrap(), 1);
        assert!(matches!(f.svc.authenticate(&token).await, Err(SsoError::InvalidToken)), "access revoked");

        // Granted again, a new token; then the product made inactive (no
        // revocation: the check alone refuses it).
        admin.set_product_grant(f.user.id, mesa.id, true, now).await.unwrap();
        let token = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap().token;
        f.store.set_product_grant(f.user.id, mesa.id, false).await.unwrap();
        assert!(matches!(f.svc.authenticate(&token).await, Err(SsoError::InvalidToken)), "grant gone, however");
        f.store.set_product_grant(f.user.id, mesa.id, true).await.unwrap();
        f.svc.authenticate(&token).await.unwrap();
        let inactive = ProductChange { status: Some(Status::Inactive), ..Default::default() };
        f.store.update_product("mesa", inactive).await.unwrap();
        assert!(matches!(f.svc.authenticate(&token).await, Err(SsoError::InvalidToken)), "inactive product");
    }

    #[tokio::test]
    async fn a_replayed_token_ends_its_chain() {
        let f = fixture().await;
        let first = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        let second = f.svc.refresh(&first.token, "mesa").await.unwrap();
        let third = f.svc.refresh(&second.token, "mesa").await.unwrap();
        // Someone presents a token that was already exchanged.
        assert!(matches!(f.svc.refresh(&first.token, "mesa").await, Err(SsoError::InvalidToken)), "old is dead");
        assert!(
            matches!(f.svc.refresh(&third.token, "mesa").await, Err(SsoError::InvalidToken)),
            "the newest of the chain is revoked with it"
        );
        // Another login of the same user is another chain, untouched.
        let other = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        let _ = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        f.svc.refresh(&other.token, "mesa").await.expect("another chain");
    }

    #[tokio::test]
    async fn refreshing_does_not_extend_a_session_past_its_absolute_lifetime() {
        let f = fixture().await;
        let login_at = f.clock.now();
        let mut token = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap().token;
        let end = login_at + Duration::days(30);
        while f.clock.now() + Duration::hours(7) < end {
            f.clock.advance(Duration::hours(7));
            token = f.svc.refresh(&token, "mesa").await.expect("within the lifetime").token;
            let exp = f.svc.signer.verify(&token).unwrap().exp;
            assert!(exp <= end.and_utc().timestamp(), "no token outlives the login by 30 days");
        }
        f.clock.advance(Duration::hours(7));
        assert!(matches!(f.svc.refresh(&token, "mesa").await, Err(SsoError::InvalidToken)), "30 days after login");
    }

    struct Outbox(Mutex<Vec<OutgoingMail>>);
    impl MailNotifier for Outbox {
        async fn send(&self, mail: OutgoingMail) -> Result<String, NotifyError> {
            self.0.lock().unwrap().push(mail);
            Ok("id@test".into())
        }
    }

    /// The reset link a mail carries (the mail adapter's templates put it
    /// in the text and the HTML; their tests check that).
    fn link_of(mail: &OutgoingMail) -> &str {
        match &mail.content {
            MailContent::PasswordReset { link, valid_minutes, .. } => {
                assert_eq!(*valid_minutes, RESET_TTL_MINUTES);
                link
            }
            other => panic!("not a reset e-mail: {other:?}"),
        }
    }

    fn link_parts(mail: &OutgoingMail) -> (String, String) {
        let link = link_of(mail);
        assert!(link.starts_with("https://"), "{link}");
        let q = link.split_once('?').unwrap().1;
        let mut id = String::new();
        let mut token = String::new();
        for pair in q.split('&') {
            match pair.split_once('=').unwrap() {
                ("id", v) => id = v.into(),
                ("token", v) => token = v.into(),
                _ => {}
            }
        }
        (id, token)
    }

    #[tokio::test]
    async fn reset_flow_single_use_expiry_and_cooldown() {
        let f = fixture().await;
        let outbox = Outbox(Mutex::new(Vec::new()));
        let session = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        let mesa = f.svc.product("mesa").await.unwrap();
        f.svc.forgot(&outbox, &mesa, "nadie@example.test").await.unwrap();
        assert!(outbox.0.lock().unwrap().is_empty(), "unknown address: nothing sent");
        f.svc.forgot(&outbox, &mesa, "ANA@example.test").await.unwrap();
        f.svc.forgot(&outbox, &mesa, "ana@example.test").await.unwrap();
        assert_eq!(outbox.0.lock().unwrap().len(), 1, "second request within 60 s sends nothing");
        let (id, token) = link_parts(&outbox.0.lock().unwrap()[0]);
        assert!(matches!(f.svc.reset("mesa", &id, "wrong", "Nueva-clave-22").await, Err(SsoError::InvalidResetToken)));
        assert!(matches!(f.svc.reset("mesa", &id, &token, "corta").await, Err(SsoError::PasswordPolicy(_))));
        f.svc.reset("mesa", &id, &token, "Nueva-clave-22").await.unwrap();
        assert!(matches!(f.svc.reset("mesa", &id, &token, "Otra-clave-33").await, Err(SsoError::InvalidResetToken)));
        assert!(matches!(f.svc.refresh(&session.token, "mesa").await, Err(SsoError::InvalidToken)), "revoked");
        f.svc.login(pw("ana", "Nueva-clave-22")).await.unwrap();

        f.clock.advance(Duration::seconds(61));
        f.svc.forgot(&outbox, &mesa, "ana@example.test").await.unwrap();
        let (id, token) = link_parts(&outbox.0.lock().unwrap()[1]);
        f.clock.advance(Duration::minutes(60));
        assert!(matches!(f.svc.reset("mesa", &id, &token, "Nueva-clave-44").await, Err(SsoError::InvalidResetToken)));
    }

    /// A reset link works only for a product the user may use: taken for
    /// one product, presented to another the user may not use, it changes
    /// nothing and stays usable where it belongs.
    #[tokio::test]
    async fn a_reset_is_refused_for_a_product_the_user_may_not_use() {
        let f = fixture().await;
        let outbox = Outbox(Mutex::new(Vec::new()));
        let mesa = f.svc.product("mesa").await.unwrap();
        f.svc.forgot(&outbox, &mesa, "ana@example.test").await.unwrap();
        let (id, token) = link_parts(&outbox.0.lock().unwrap()[0]);
        f.store.create_product(NewProduct { alias: "otro".into(), name: "Otro".into() }).await.unwrap();
        let restricted = ProductChange { access: Some(ProductAccess::Granted), ..Default::default() };
        f.store.update_product("otro", restricted).await.unwrap();
        assert!(matches!(f.svc.reset("otro", &id, &token, "Nueva-clave-22").await, Err(SsoError::NoProductAccess)));
        f.svc.login(pw("ana", "Clave-correcta-1")).await.expect("the password is unchanged");
        f.svc.reset("mesa", &id, &token, "Nueva-clave-22").await.unwrap();
        f.svc.login(pw("ana", "Nueva-clave-22")).await.unwrap();
    }

    #[tokio::test]
    async fn products_refuse_inactive_and_ungranted_and_link_to_their_own_page() {
        let f = fixture().await;
        let outbox = Outbox(Mutex::new(Vec::new()));
        let granted = ProductChange { access: Some(ProductAccess::Granted), ..Default::default() };
        let closed = f.store.update_product("mesa", granted).await.unwrap();
        assert!(matches!(f.svc.login(pw("ana", "Clave-correcta-1")).await, Err(SsoError::NoProductAccess)));
        assert!(matches!(f.svc.login(pw("ana", "mala")).await, Err(SsoError::InvalidCredentials)), "says nothing more");
        f.svc.forgot(&outbox, &closed, "ana@example.test").await.unwrap();
        assert!(outbox.0.lock().unwrap().is_empty(), "no link for a product the user may not use");
        f.store.set_product_grant(f.user.id, closed.id, true).await.unwrap();
        let session = f.svc.login(pw("ana", "Clave-correcta-1")).await.unwrap();
        // Refreshing into a product the user may not use is refused too.
        f.store.create_product(NewProduct { alias: "otro".into(), name: "Otro".into() }).await.unwrap();
        f.store
            .update_product("otro", ProductChange { access: Some(ProductAccess::Granted), ..Default::default() })
            .await
            .unwrap();
        assert!(matches!(f.svc.refresh(&session.token, "otro").await, Err(SsoError::NoProductAccess)));
        // Each product's reset e-mail links to its own page.
        let page = ProductChange {
            reset_url: Some(Some("https://mesa.example.test/nueva-clave".into())),
            ..Default::default()
        };
        let mesa = f.store.update_product("mesa", page).await.unwrap();
        f.svc.forgot(&outbox, &mesa, "ana@example.test").await.unwrap();
        let mail = outbox.0.lock().unwrap()[0].clone();
        assert!(link_of(&mail).starts_with("https://mesa.example.test/nueva-clave?id="), "{mail:?}");
        // An inactive product is as unknown.
        f.store
            .update_product("mesa", ProductChange { status: Some(Status::Inactive), ..Default::default() })
            .await
            .unwrap();
        assert!(matches!(f.svc.login(pw("ana", "Clave-correcta-1")).await, Err(SsoError::UnknownProduct)));
        assert!(matches!(f.svc.product("mesa").await, Err(SsoError::UnknownProduct)));
        let (id, token) = link_parts(&mail);
        assert!(matches!(f.svc.reset("mesa", &id, &token, "Nueva-clave-22").await, Err(SsoError::UnknownProduct)));
    }
}
