//! SSO sessions, password resets and login throttling.

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::dialect::Dialect;
use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::sql::{Statement, Value, marks};
use crate::{Db, db_run, db_transaction};

/// The statement revoking every live token that `$which` picks (a user's,
/// a family's, a user's of one product; a macro: it is built for whichever
/// backend runs it).
macro_rules! revoke_live_sessions {
    ($which:expr, $now:expr) => {
        diesel::update(sesion_usuario::table.filter($which).filter(sesion_usuario::revoked_at.is_null()))
            .set(sesion_usuario::revoked_at.eq($now))
    };
}

/// The statement storing a new session (a macro: it is built for whichever
/// backend runs it). Every column spelled out: an `Insertable` with optional
/// fields writes `DEFAULT` for `None`, which diesel will not keep prepared.
macro_rules! insert_session {
    ($row:expr) => {
        diesel::insert_into(sesion_usuario::table).values((
            sesion_usuario::id_sesion.eq(&$row.id_sesion),
            sesion_usuario::fk_id_usuario.eq($row.fk_id_usuario),
            sesion_usuario::fk_id_producto.eq($row.fk_id_producto),
            sesion_usuario::created_at.eq($row.created_at),
            sesion_usuario::expires_at.eq($row.expires_at),
            sesion_usuario::revoked_at.eq($row.revoked_at),
            sesion_usuario::familia.eq(&$row.familia),
            sesion_usuario::inicio_familia.eq($row.inicio_familia),
        ))
    };
}

/// After a successful attempt (inside a transaction): every key involved
/// locked first, in sorted order (as reservations lock theirs, so the two
/// cannot deadlock), then the cleared keys removed and the refunded ones
/// written, in one statement. A macro: built for whichever backend runs it.
macro_rules! settle_attempt {
    ($conn:expr, $clear:expr, $refund:expr) => {{
        let (clear, refund): (&[String], &[ThrottleLimit]) = ($clear, $refund);
        let mut keys: Vec<&str> =
            clear.iter().map(String::as_str).chain(refund.iter().map(|l| l.key.as_str())).collect();
        keys.sort_unstable();
        keys.dedup();
        if !keys.is_empty() {
            let states = locked_throttle_rows!($conn, &keys);
            if !clear.is_empty() {
                let sql = format!("DELETE FROM intento_login WHERE clave IN ({})", marks(clear.len()));
                Statement::new(sql, clear.iter().map(|k| Value::Text(k)).collect()).execute($conn).await?;
            }
            let next: Vec<(&str, ThrottleState)> = refund
                .iter()
                .filter(|limit| !clear.contains(&limit.key))
                .filter_map(|limit| states.get(&limit.key).map(|st| (limit.key.as_str(), st.refund(limit))))
                .collect();
            if !next.is_empty() {
                write_throttles($conn, &next).execute($conn).await?;
            }
        }
    }};
}

/// The rows of these throttle keys, by key, locked until the transaction
/// ends: one `SELECT .. FOR UPDATE` on MySQL; on SQLite every transaction
/// holds the writer's lock from its start (`BEGIN IMMEDIATE`, see
/// `Db::sqlite_transaction`). Kept prepared; a macro: built for whichever
/// backend runs it.
macro_rules! locked_throttle_rows {
    ($conn:expr, $keys:expr) => {{
        let keys: &[&str] = $keys;
        let sql = format!(
            "SELECT clave, fallos, ventana_inicio, bloqueado_hasta FROM intento_login WHERE clave IN ({}){}",
            marks(keys.len()),
            $conn.lock_rows()
        );
        crate::sql::Select(Statement::new(sql, keys.iter().map(|k| Value::Text(k)).collect()))
            .load::<KeyedThrottleRow>($conn)
            .await?
            .into_iter()
            .map(|r| {
                let state = ThrottleState {
                    failures: r.fallos,
                    window_started_at: r.ventana_inicio,
                    locked_until: r.bloqueado_hasta,
                };
                (r.clave, state)
            })
            .collect::<std::collections::BTreeMap<String, ThrottleState>>()
    }};
}

/// Stores the keys' new states, all in one statement (an upsert: every row
/// exists, the transaction created the missing ones).
fn write_throttles<'a>(conn: &impl Dialect, states: &'a [(&'a str, ThrottleState)]) -> Statement<'a> {
    let rows = states
        .iter()
        .map(|(key, st)| {
            vec![
                Value::Text(key),
                Value::Int(st.failures),
                Value::Timestamp(st.window_started_at),
                Value::OptTimestamp(st.locked_until),
            ]
        })
        .collect();
    Statement::insert_rows("INSERT INTO intento_login", &["clave", "fallos", "ventana_inicio", "bloqueado_hasta"], rows)
        .then(&conn.on_conflict_update("clave", &["fallos", "ventana_inicio", "bloqueado_hasta"]))
}

impl SessionRepository for Db {
    async fn create_session(&self, session: UserSession) -> RepoResult<()> {
        let row = SessionRow::from(session);
        db_run!(self, |conn| insert_session!(row).execute(conn).await.map(|_| ()).or_repo())
    }

    async fn find_session(&self, token_id: &str) -> RepoResult<Option<UserSession>> {
        let row: Option<SessionRow> = db_run!(self, |conn| sesion_usuario::table
            .find(token_id)
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
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

    async fn revoke_session_family(&self, family_id: &str, now: Timestamp) -> RepoResult<u64> {
        let family = sesion_usuario::familia.eq(family_id);
        let n = db_run!(self, |conn| revoke_live_sessions!(family, now).execute(conn).await.or_repo())?;
        Ok(n as u64)
    }

    async fn revoke_user_sessions(&self, user_id: i64, now: Timestamp) -> RepoResult<u64> {
        let user = sesion_usuario::fk_id_usuario.eq(user_id);
        let n = db_run!(self, |conn| revoke_live_sessions!(user, now).execute(conn).await.or_repo())?;
        Ok(n as u64)
    }

    async fn revoke_product_sessions(&self, user_id: i64, product_id: i64, now: Timestamp) -> RepoResult<u64> {
        let theirs = sesion_usuario::fk_id_usuario.eq(user_id).and(sesion_usuario::fk_id_producto.eq(product_id));
        let n = db_run!(self, |conn| revoke_live_sessions!(theirs, now).execute(conn).await.or_repo())?;
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
            .or_repo())?;
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
            .or_repo())?;
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
            revoke_live_sessions!(sesion_usuario::fk_id_usuario.eq(user_id), now).execute(conn).await?;
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
            .or_repo())?;
        Ok(row.map(ThrottleState::from))
    }

    /// Atomic: in one transaction, the keys' rows are created if missing,
    /// read locked (`locked_throttle_rows!`), decided on by
    /// `ThrottleState::reserve`, and written back. Keys
    /// are locked in sorted order, so two logins sharing keys cannot deadlock.
    async fn reserve_attempt(
        &self,
        limits: &[ThrottleLimit],
        now: Timestamp,
        window_start: Timestamp,
    ) -> RepoResult<Reservation> {
        let mut limits: Vec<&ThrottleLimit> = limits.iter().collect();
        limits.sort_by(|a, b| a.key.cmp(&b.key));
        limits.dedup_by(|a, b| a.key == b.key);
        let keys: Vec<&str> = limits.iter().map(|l| l.key.as_str()).collect();
        db_transaction!(self, |conn| {
            // Create the missing rows, then read them all locked.
            let rows = keys.iter().map(|k| vec![Value::Text(k), Value::Int(0), Value::Timestamp(now)]).collect();
            let head = format!("{} INTO intento_login", conn.insert_ignore());
            Statement::insert_rows(&head, &["clave", "fallos", "ventana_inicio"], rows).execute(conn).await?;
            let states = locked_throttle_rows!(conn, &keys);
            let mut next = Vec::with_capacity(limits.len());
            for limit in &limits {
                match ThrottleState::reserve(states.get(&limit.key), limit, now, window_start) {
                    Ok(st) => next.push((limit.key.as_str(), st)),
                    Err(retry_after_secs) => return Ok(Reservation::Refused { retry_after_secs }),
                }
            }
            if !next.is_empty() {
                write_throttles(conn, &next).execute(conn).await?;
            }
            Ok(Reservation::Granted)
        })
    }

    /// One transaction: see [`settle_attempt`].
    async fn attempt_succeeded(&self, clear: &[String], refund: &[ThrottleLimit]) -> RepoResult<()> {
        if clear.is_empty() && refund.is_empty() {
            return Ok(());
        }
        db_transaction!(self, |conn| {
            settle_attempt!(conn, clear, refund);
            Ok(())
        })
    }

    async fn clear_throttle(&self, key: &str) -> RepoResult<()> {
        db_run!(self, |conn| diesel::delete(intento_login::table.find(key)).execute(conn).await.map(|_| ()).or_repo())
    }

    /// The keys found, then deleted with the condition checked again in the
    /// `DELETE` itself (a reservation may have started one over meanwhile):
    /// the same condition as `ThrottleState::is_stale`.
    async fn purge_stale_throttles(&self, window_start: Timestamp, now: Timestamp, limit: i64) -> RepoResult<u64> {
        const STALE: &str = "(bloqueado_hasta <= ? OR (bloqueado_hasta IS NULL AND ventana_inicio < ?))";
        let stale = [Value::Timestamp(now), Value::Timestamp(window_start)];
        db_transaction!(self, |conn| {
            let mut values = stale.to_vec();
            values.push(Value::BigInt(limit.max(0)));
            let sql = format!(
                "SELECT clave, fallos, ventana_inicio, bloqueado_hasta FROM intento_login WHERE {STALE} ORDER BY clave LIMIT ?"
            );
            let keys: Vec<String> = crate::sql::Select(Statement::new(sql, values))
                .load::<KeyedThrottleRow>(&mut *conn)
                .await?
                .into_iter()
                .map(|r| r.clave)
                .collect();
            if keys.is_empty() {
                return Ok(0);
            }
            let sql = format!("DELETE FROM intento_login WHERE clave IN ({}) AND {STALE}", marks(keys.len()));
            let mut values: Vec<Value> = keys.iter().map(|k| Value::Text(k)).collect();
            values.extend(stale);
            let n = Statement::new(sql, values).execute(&mut *conn).await?;
            Ok(n as u64)
        })
    }

    /// One transaction, one commit: the throttle settled, the login
    /// recorded on the user, the session stored; an unknown user rolls it
    /// all back.
    async fn login_succeeded(&self, done: LoginDone) -> RepoResult<()> {
        let ip = super::directory::login_ip(&done.ip);
        let row = SessionRow::from(done.session);
        db_transaction!(self, |conn| {
            settle_attempt!(conn, &done.clear, &done.refund);
            if super::directory::record_login(done.user_id, done.at, &ip).execute(conn).await? == 0 {
                return Err(RepoError::NotFound.into());
            }
            insert_session!(row).execute(conn).await?;
            Ok(())
        })
    }
}
