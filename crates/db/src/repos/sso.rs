//! SSO sessions, password resets and login throttling.

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::conn::Dialect;
use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::{Db, db_run, db_transaction};

/// The statement revoking every live token of a user (a macro: it is built
/// for whichever backend runs it).
macro_rules! revoke_live_sessions {
    ($user_id:expr, $now:expr) => {
        diesel::update(
            sesion_usuario::table
                .filter(sesion_usuario::fk_id_usuario.eq($user_id))
                .filter(sesion_usuario::revoked_at.is_null()),
        )
        .set(sesion_usuario::revoked_at.eq($now))
    };
}

impl SessionRepository for Db {
    async fn create_session(&self, session: UserSession) -> RepoResult<()> {
        let row = SessionRow::from(session);
        // Every column spelled out: an `Insertable` with optional fields
        // writes `DEFAULT` for `None`, which diesel will not keep prepared.
        db_run!(self, |conn| diesel::insert_into(sesion_usuario::table)
            .values((
                sesion_usuario::id_sesion.eq(&row.id_sesion),
                sesion_usuario::fk_id_usuario.eq(row.fk_id_usuario),
                sesion_usuario::fk_id_producto.eq(row.fk_id_producto),
                sesion_usuario::created_at.eq(row.created_at),
                sesion_usuario::expires_at.eq(row.expires_at),
                sesion_usuario::revoked_at.eq(row.revoked_at),
            ))
            .execute(conn)
            .await
            .map(|_| ())
            .or_repo())
    }

    async fn find_session(&self, token_id: &str) -> RepoResult<Option<UserSession>> {
        let row: Option<SessionRow> = db_run!(self, |conn| sesion_usuario::table
            .find(token_id)
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo()?);
        Ok(row.map(UserSession::from))
    }

    async fn rotate_session(&self, old_id: &str, new: UserSession, now: Timestamp) -> RepoResult<()> {
        let row = SessionRow::from(new);
        db_transaction!(self, |conn| {
            let revoked = diesel::update(
                sesion_usuario::table
                    .filter(sesion_usuario::id_sesion.eq(old_id))
                    .filter(sesion_usuario::revoked_at.is_null()),
            )
            .set(sesion_usuario::revoked_at.eq(now))
            .execute(conn)
            .await?;
            if revoked != 1 {
                return Err(RepoError::NotFound.into());
            }
            diesel::insert_into(sesion_usuario::table).values(&row).execute(conn).await?;
            Ok(())
        })
    }

    async fn revoke_user_sessions(&self, user_id: i64, now: Timestamp) -> RepoResult<u64> {
        let n = db_run!(self, |conn| revoke_live_sessions!(user_id, now).execute(conn).await.or_repo()?);
        Ok(n as u64)
    }
}

impl PasswordResetRepository for Db {
    async fn create_reset(&self, user_id: i64, token_hash: &str, now: Timestamp) -> RepoResult<PasswordReset> {
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(password_reset::table)
                .values((
                    password_reset::fk_id_usuario.eq(user_id),
                    password_reset::token_hash.eq(token_hash),
                    password_reset::created_at.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(conn.last_insert_id().await?)
        })?;
        Ok(PasswordReset { id, user_id, token_hash: token_hash.into(), created_at: now, used_at: None })
    }

    async fn find_reset(&self, id: i64) -> RepoResult<Option<PasswordReset>> {
        let row: Option<ResetRow> = db_run!(self, |conn| password_reset::table
            .find(id)
            .select(ResetRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo()?);
        Ok(row.map(PasswordReset::from))
    }

    async fn latest_reset(&self, user_id: i64) -> RepoResult<Option<PasswordReset>> {
        let row: Option<ResetRow> = db_run!(self, |conn| password_reset::table
            .filter(password_reset::fk_id_usuario.eq(user_id))
            .order((password_reset::created_at.desc(), password_reset::id_password_reset.desc()))
            .select(ResetRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo()?);
        Ok(row.map(PasswordReset::from))
    }

    async fn complete_reset(&self, reset_id: i64, new_password_hash: &str, now: Timestamp) -> RepoResult<()> {
        db_transaction!(self, |conn| {
            let used = diesel::update(
                password_reset::table
                    .filter(password_reset::id_password_reset.eq(reset_id))
                    .filter(password_reset::used_at.is_null()),
            )
            .set(password_reset::used_at.eq(now))
            .execute(conn)
            .await?;
            if used != 1 {
                return Err(RepoError::NotFound.into());
            }
            let user_id: i64 =
                password_reset::table.find(reset_id).select(password_reset::fk_id_usuario).first(conn).await?;
            diesel::update(usuario::table.find(user_id))
                .set(usuario::password_hash.eq(new_password_hash))
                .execute(conn)
                .await?;
            revoke_live_sessions!(user_id, now).execute(conn).await?;
            Ok(())
        })
    }
}

impl ThrottleRepository for Db {
    async fn throttle_state(&self, key: &str) -> RepoResult<Option<ThrottleState>> {
        let row: Option<ThrottleRow> = db_run!(self, |conn| intento_login::table
            .find(key)
            .select(ThrottleRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo()?);
        Ok(row.map(ThrottleState::from))
    }

    /// Atomic by construction: the counter is incremented in SQL (the row
    /// lock serialises concurrent failures on MySQL; SQLite has one writer).
    async fn record_failure(
        &self,
        key: &str,
        now: Timestamp,
        window_start: Timestamp,
        max_failures: i32,
        lock_until: Timestamp,
    ) -> RepoResult<ThrottleState> {
        db_transaction!(self, |conn| {
            // Insert-or-increment in one statement: no gap between "is there a
            // row" and "add one" for a concurrent failure to fall into.
            conn.count_failure(key, now).await?;
            // A stale, unlocked window starts over with this failure.
            diesel::update(
                intento_login::table
                    .filter(intento_login::clave.eq(key))
                    .filter(intento_login::ventana_inicio.lt(window_start))
                    .filter(intento_login::bloqueado_hasta.is_null().or(intento_login::bloqueado_hasta.le(now))),
            )
            .set((
                intento_login::fallos.eq(1),
                intento_login::ventana_inicio.eq(now),
                intento_login::bloqueado_hasta.eq(None::<Timestamp>),
            ))
            .execute(conn)
            .await?;
            diesel::update(
                intento_login::table
                    .filter(intento_login::clave.eq(key))
                    .filter(intento_login::fallos.ge(max_failures))
                    .filter(intento_login::bloqueado_hasta.is_null().or(intento_login::bloqueado_hasta.le(now))),
            )
            .set(intento_login::bloqueado_hasta.eq(lock_until))
            .execute(conn)
            .await?;
            let row: ThrottleRow = intento_login::table.find(key).select(ThrottleRow::as_select()).first(conn).await?;
            Ok(ThrottleState::from(row))
        })
    }

    async fn clear_throttle(&self, key: &str) -> RepoResult<()> {
        db_run!(self, |conn| diesel::delete(intento_login::table.find(key)).execute(conn).await.map(|_| ()).or_repo())
    }
}
