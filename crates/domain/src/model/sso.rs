//! SSO sessions, password resets and integrated systems (ADI). Models for
//! the SSO and ADI issues; their ports arrive with them.

use super::{Status, Timestamp};

/// An issued user token (`sesion_usuario`): the JWT's id is recorded so that
/// the token can be revoked before it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    pub token_id: String,
    pub user_id: i64,
    pub product_id: Option<i64>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The token id of the login this token was refreshed from (its own for
    /// a login): a rotated token presented again revokes the whole family.
    pub family_id: String,
    /// When that login happened: no token of the family outlives it by more
    /// than the absolute session lifetime.
    pub family_started_at: Timestamp,
}

/// A password reset request (`password_reset`): the token is stored hashed,
/// valid 60 minutes, single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// A system integrated through ADI (`sistema_integrado`). Its token is
/// stored as SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegratedSystem {
    pub id: i64,
    pub alias: String,
    pub status: Status,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A single-use cross-system login ticket (`ticket_acceso_adi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTicket {
    pub ticket_id: String,
    pub user_id: i64,
    pub system_id: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// Failed attempts under one throttle key (`intento_login`): an account and
/// address for passwords, an account and device for PINs, an address alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i32,
    pub window_started_at: Timestamp,
    pub locked_until: Option<Timestamp>,
}

impl ThrottleState {
    /// The state of a key after one more attempt is reserved under `limit`
    /// at `now`, or the seconds to wait when the key refuses (see
    /// `ThrottleRepository::reserve_attempt`). Shared by every store, so they
    /// decide alike.
    pub fn reserve(
        state: Option<&ThrottleState>,
        limit: &ThrottleLimit,
        now: Timestamp,
        window_start: Timestamp,
    ) -> Result<ThrottleState, i64> {
        let fresh = ThrottleState { failures: 0, window_started_at: now, locked_until: None };
        let mut st = state.cloned().unwrap_or_else(|| fresh.clone());
        if let Some(until) = st.locked_until.filter(|until| *until > now) {
            return Err((until - now).num_seconds().max(1));
        }
        // A window that ended, or a lock that was served, starts over.
        if st.window_started_at < window_start || st.locked_until.is_some() {
            st = fresh;
        }
        if st.failures >= limit.max {
            // At the limit but not locked (a lock shorter than the window):
            // wait for the window to end.
            return Err((st.window_started_at - window_start).num_seconds().max(1));
        }
        st.failures += 1;
        st.locked_until = (st.failures >= limit.max).then_some(limit.lock_until);
        Ok(st)
    }

    /// Whether the key counts for nothing any more: its lock was served by
    /// `now`, or it has no lock and its window started before `window_start`
    /// ([`ThrottleState::reserve`] starts such a key over, as if absent).
    pub fn is_stale(&self, window_start: Timestamp, now: Timestamp) -> bool {
        match self.locked_until {
            Some(until) => until <= now,
            None => self.window_started_at < window_start,
        }
    }

    /// One attempt given back: a success that must not count.
    pub fn refund(&self, limit: &ThrottleLimit) -> ThrottleState {
        let failures = (self.failures - 1).max(0);
        let locked_until = self.locked_until.filter(|_| failures >= limit.max);
        ThrottleState { failures, window_started_at: self.window_started_at, locked_until }
    }
}

/// One key an attempt is counted under, and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleLimit {
    pub key: String,
    /// Attempts allowed per window; reaching it locks the key.
    pub max: i32,
    pub lock_until: Timestamp,
}

/// What a successful login writes, at once (see
/// `ThrottleRepository::login_succeeded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDone {
    /// Throttle keys removed (the account's counter from this address).
    pub clear: Vec<String>,
    /// Throttle keys given their attempt back.
    pub refund: Vec<ThrottleLimit>,
    pub user_id: i64,
    /// The user's last access, from `ip`.
    pub at: Timestamp,
    pub ip: String,
    /// The login's new session.
    pub session: UserSession,
}

/// The answer to a reservation of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Granted,
    /// A key is locked or at its limit; nothing was counted.
    Refused {
        retry_after_secs: i64,
    },
}
