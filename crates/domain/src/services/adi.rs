//! ADI: cross-system login. An integrated system registers with a token
//! (`setToken`), asks for a single-use login ticket for one of our users
//! (`generateToken`), and whoever holds the ticket redeems it once (`Token`).

use std::sync::Arc;

use base64::Engine;
use chrono::Duration;
use subtle::ConstantTimeEq;

use crate::crypto::{TokenClaims, TokenSigner, random_token, sha256_hex};
use crate::error::RepoError;
use crate::model::*;
use crate::ports::Clock;

/// A login ticket is valid this long.
pub const TICKET_TTL_MINUTES: i64 = 10;
/// Length of generated system tokens (about 285 bits).
pub const SYSTEM_TOKEN_LEN: usize = 48;
/// The audience prefix of login tickets: a user token (whose audience is a
/// product) can never pass for one.
const TICKET_AUDIENCE: &str = "adi:";

#[derive(Debug, thiserror::Error)]
pub enum AdiError {
    /// Unknown system or wrong token.
    #[error("unknown system or wrong token")]
    InvalidSystemToken,
    #[error("the system is inactive")]
    InactiveSystem,
    /// Unknown user, name and e-mail of different users, inactive, or no
    /// access to the system: one answer for all.
    #[error("user not allowed into this system")]
    UserNotAllowed,
    /// Malformed, forged, expired or already used.
    #[error("invalid login ticket")]
    InvalidTicket,
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// What `setToken` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRegistration {
    pub system: IntegratedSystem,
    pub created: bool,
    /// The new token, shown once: on creation and on rotation.
    pub token: Option<String>,
}

/// A redeemed ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdiLogin {
    pub user: InternalUser,
    pub system: IntegratedSystem,
}

/// The ports [`AdiService`] calls: any store providing them will do (the
/// whole `Store`, or a fake or mock of just these).
pub trait AdiPorts: crate::ports::IntegratedSystemRepository + crate::ports::UserRepository {}
impl<T: crate::ports::IntegratedSystemRepository + crate::ports::UserRepository> AdiPorts for T {}

pub struct AdiService<R: AdiPorts> {
    repo: Arc<R>,
    signer: TokenSigner,
    clock: Arc<dyn Clock>,
}

fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

impl<R: AdiPorts> AdiService<R> {
    pub fn new(repo: Arc<R>, signer: TokenSigner, clock: Arc<dyn Clock>) -> Self {
        Self { repo, signer, clock }
    }

    /// Registers `alias`, or updates it: `rotate` issues a new token (the old
    /// one stops working at once); `status` changes the status.
    pub async fn set_system(
        &self,
        alias: &str,
        status: Option<Status>,
        rotate: bool,
    ) -> Result<SystemRegistration, AdiError> {
        let now = self.clock.now();
        let alias = alias.trim();
        if self.repo.find_system(alias).await?.is_none() {
            let token = random_token(SYSTEM_TOKEN_LEN);
            match self.repo.create_system(alias, status.unwrap_or(Status::Active), &token_hash(&token), now).await {
                Ok(system) => return Ok(SystemRegistration { system, created: true, token: Some(token) }),
                // Registered concurrently: treat as an update below.
                Err(RepoError::Duplicate(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let token = rotate.then(|| random_token(SYSTEM_TOKEN_LEN));
        let system = self.repo.update_system(alias, status, token.as_deref().map(token_hash), now).await?;
        Ok(SystemRegistration { system, created: false, token })
    }

    pub async fn list_systems(&self) -> Result<Vec<IntegratedSystem>, AdiError> {
        Ok(self.repo.list_systems().await?)
    }

    /// Checks the system and its token (in constant time), and that the user
    /// named by both `username` and `email` is active and may enter the
    /// system; returns a signed, single-use ticket, base64-encoded.
    pub async fn generate_ticket(
        &self,
        alias: &str,
        system_token: &str,
        username: &str,
        email: &str,
    ) -> Result<String, AdiError> {
        let now = self.clock.now();
        let system = self.repo.find_system(alias.trim()).await?;
        let presented = token_hash(system_token);
        let stored = system.as_ref().map(|s| s.token_hash.clone()).unwrap_or_else(|| "0".repeat(64));
        let matches: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
        let system = system.filter(|_| matches).ok_or(AdiError::InvalidSystemToken)?;
        if !system.status.is_active() {
            return Err(AdiError::InactiveSystem);
        }
        let filter =
            UserFilter { login: Some(username.trim().into()), email: Some(email.trim().into()), ..Default::default() };
        let user = self
            .repo
            .find_users(filter)
            .await?
            .into_iter()
            .find(|u| {
                u.login.eq_ignore_ascii_case(username.trim()) && u.is_active() && u.may_enter_system(&system.alias)
            })
            .ok_or(AdiError::UserNotAllowed)?;
        let ticket = LoginTicket {
            ticket_id: random_token(32),
            user_id: user.id,
            system_id: system.id,
            created_at: now,
            expires_at: now + Duration::minutes(TICKET_TTL_MINUTES),
            used_at: None,
        };
        let jwt = self.signer.sign(&TokenClaims {
            iss: self.signer.issuer().to_string(),
            sub: user.id.to_string(),
            aud: format!("{TICKET_AUDIENCE}{}", system.alias),
            jti: ticket.ticket_id.clone(),
            iat: now.and_utc().timestamp(),
            exp: ticket.expires_at.and_utc().timestamp(),
        });
        self.repo.create_login_ticket(ticket).await?;
        Ok(base64::engine::general_purpose::STANDARD.encode(jwt))
    }

    /// Redeems a ticket: signature, expiry, and first use, atomically.
    pub async fn redeem(&self, ticket: &str) -> Result<AdiLogin, AdiError> {
        let now = self.clock.now();
        let jwt = base64::engine::general_purpose::STANDARD
            .decode(ticket.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(AdiError::InvalidTicket)?;
        let claims = self.signer.verify(&jwt).map_err(|_| AdiError::InvalidTicket)?;
        if !claims.aud.starts_with(TICKET_AUDIENCE) || claims.exp <= now.and_utc().timestamp() {
            return Err(AdiError::InvalidTicket);
        }
        let used = match self.repo.use_login_ticket(&claims.jti, now).await {
            Ok(t) => t,
            Err(RepoError::NotFound) => return Err(AdiError::InvalidTicket),
            Err(e) => return Err(e.into()),
        };
        if used.user_id.to_string() != claims.sub {
            return Err(AdiError::InvalidTicket);
        }
        let user = self.repo.find_user(used.user_id).await?.filter(InternalUser::is_active);
        let system = self.repo.find_system_by_id(used.system_id).await?.filter(|s| s.status.is_active());
        match (user, system) {
            (Some(user), Some(system)) => Ok(AdiLogin { user, system }),
            _ => Err(AdiError::InvalidTicket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::*;
    use crate::testing::contract::sample_user;
    use crate::testing::{InMemoryStore, ManualClock};

    async fn fixture() -> (AdiService<InMemoryStore>, Arc<InMemoryStore>, Arc<ManualClock>) {
        let store = Arc::new(InMemoryStore::new());
        let mut u = sample_user("ana", "ana@example.test", None);
        u.system_access = "factura_profesional, portal".into();
        store.create_user(u).await.unwrap();
        store.create_user(sample_user("bea", "bea@example.test", None)).await.unwrap();
        let clock = Arc::new(ManualClock::now_utc());
        (AdiService::new(store.clone(), TokenSigner::new([4; 32], "helpdesk"), clock.clone()), store, clock)
    }

    #[tokio::test]
    async fn register_rotate_and_generate() {
        let (svc, _, _) = fixture().await;
        let reg = svc.set_system("factura_profesional", None, false).await.unwrap();
        assert!(reg.created);
        let token = reg.token.unwrap();
        assert_eq!(token.len(), SYSTEM_TOKEN_LEN);
        let again = svc.set_system("factura_profesional", None, false).await.unwrap();
        assert_eq!((again.created, again.token), (false, None));
        let ticket = svc.generate_ticket("factura_profesional", &token, "ana", "ana@example.test").await.unwrap();
        let login = svc.redeem(&ticket).await.unwrap();
        assert_eq!((login.user.login.as_str(), login.system.alias.as_str()), ("ana", "factura_profesional"));
        assert!(matches!(svc.redeem(&ticket).await, Err(AdiError::InvalidTicket)), "once");

        let rotated = svc.set_system("factura_profesional", None, true).await.unwrap().token.unwrap();
        assert!(matches!(
            svc.generate_ticket("factura_profesional", &token, "ana", "ana@example.test").await,
            Err(AdiError::InvalidSystemToken)
        ));
        svc.generate_ticket("factura_profesional", &rotated, "ana", "ana@example.test").await.unwrap();
        svc.set_system("factura_profesional", Some(Status::Inactive), false).await.unwrap();
        assert!(matches!(
            svc.generate_ticket("factura_profesional", &rotated, "ana", "ana@example.test").await,
            Err(AdiError::InactiveSystem)
        ));
    }

    #[tokio::test]
    async fn users_must_match_and_have_access() {
        let (svc, _, _) = fixture().await;
        let token = svc.set_system("portal", None, false).await.unwrap().token.unwrap();
        let ticket = |u: &'static str, e: &'static str| svc.generate_ticket("portal", &token, u, e);
        assert!(ticket("ana", "ana@example.test").await.is_ok());
        assert!(matches!(ticket("ana", "bea@example.test").await, Err(AdiError::UserNotAllowed)));
        assert!(matches!(ticket("bea", "bea@example.test").await, Err(AdiError::UserNotAllowed)), "no access");
        assert!(matches!(ticket("nadie", "ana@example.test").await, Err(AdiError::UserNotAllowed)));
    }

    #[tokio::test]
    async fn tickets_expire_and_forgeries_fail() {
        let (svc, _, clock) = fixture().await;
        let token = svc.set_system("portal", None, false).await.unwrap().token.unwrap();
        let ticket = svc.generate_ticket("portal", &token, "ana", "ana@example.test").await.unwrap();
        clock.advance(Duration::minutes(TICKET_TTL_MINUTES));
        assert!(matches!(svc.redeem(&ticket).await, Err(AdiError::InvalidTicket)), "expired");
        let other = AdiService::new(svc.repo.clone(), TokenSigner::new([5; 32], "helpdesk"), clock.clone());
        let forged = other.generate_ticket("portal", &token, "ana", "ana@example.test").await.unwrap();
        assert!(matches!(svc.redeem(&forged).await, Err(AdiError::InvalidTicket)), "another key");
        assert!(matches!(svc.redeem("no es base64 !").await, Err(AdiError::InvalidTicket)));
        // A user token is not a ticket, even re-encoded.
        let user_token = svc.signer.sign(&TokenClaims {
            iss: "helpdesk".into(),
            sub: "1".into(),
            aud: "mesa".into(),
            jti: "x".into(),
            iat: 0,
            exp: i64::MAX / 2,
        });
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_token);
        assert!(matches!(svc.redeem(&encoded).await, Err(AdiError::InvalidTicket)));
    }
}
