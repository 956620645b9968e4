//! The console's sessions (`sesion_consola`) and who has which ticket open
//! (`presencia`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::{Db, db_run};

impl ConsoleSessionRepository for Db {
    async fn create_console_session(&self, s: ConsoleSession) -> RepoResult<()> {
        db_run!(self, |conn| diesel::insert_into(sesion_consola::table)
            .values((
                sesion_consola::id_hash.eq(&s.id_hash),
                sesion_consola::fk_id_usuario.eq(s.user_id),
                sesion_consola::csrf.eq(&s.csrf),
                sesion_consola::created_at.eq(s.created_at),
                sesion_consola::ultimo_uso.eq(s.last_seen_at),
                sesion_consola::cerrada_en.eq(s.ended_at),
            ))
            .execute(conn)
            .await
            .map(|_| ())
            .or_repo())
    }

    async fn find_console_session(&self, id_hash: &str) -> RepoResult<Option<ConsoleSession>> {
        let row: Option<ConsoleSessionRow> = db_run!(self, |conn| sesion_consola::table
            .find(id_hash)
            .select(ConsoleSessionRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        Ok(row.map(ConsoleSession::from))
    }

    async fn touch_console_session(&self, id_hash: &str, at: Timestamp) -> RepoResult<()> {
        db_run!(self, |conn| diesel::update(
            sesion_consola::table.find(id_hash).filter(sesion_consola::ultimo_uso.lt(at))
        )
        .set(sesion_consola::ultimo_uso.eq(at))
        .execute(conn)
        .await
        .map(|_| ())
        .or_repo())
    }

    async fn end_console_session(&self, id_hash: &str, at: Timestamp) -> RepoResult<bool> {
        let ended = db_run!(self, |conn| diesel::update(
            sesion_consola::table.find(id_hash).filter(sesion_consola::cerrada_en.is_null())
        )
        .set(sesion_consola::cerrada_en.eq(at))
        .execute(conn)
        .await
        .or_repo())?;
        Ok(ended == 1)
    }

    async fn mark_presence(&self, ticket_id: i64, user_id: i64, answering: bool, at: Timestamp) -> RepoResult<()> {
        db_run!(self, |conn| diesel::replace_into(presencia::table)
            .values((
                presencia::fk_id_ticket.eq(ticket_id),
                presencia::fk_id_usuario.eq(user_id),
                presencia::respondiendo.eq(answering),
                presencia::visto_en.eq(at),
            ))
            .execute(conn)
            .await
            .map(|_| ())
            .or_repo())
    }

    async fn presence_on(&self, ticket_ids: &[i64], since: Timestamp) -> RepoResult<Vec<Presence>> {
        if ticket_ids.is_empty() {
            return Ok(Vec::new());
        }
        // The same query by one ticket or by a list: a ticket's page asks
        // for one, and an equality keeps the statement prepared (diesel
        // prepares an IN list at every call).
        macro_rules! present_where {
            ($on:expr) => {
                db_run!(self, |conn| presencia::table
                    .inner_join(usuario::table)
                    .filter($on)
                    .filter(presencia::visto_en.ge(since))
                    .order((presencia::fk_id_ticket, usuario::nombre, presencia::fk_id_usuario))
                    .select((
                        presencia::fk_id_ticket,
                        presencia::fk_id_usuario,
                        usuario::nombre,
                        presencia::respondiendo,
                        presencia::visto_en,
                    ))
                    .load::<(i64, i64, String, bool, Timestamp)>(conn)
                    .await
                    .or_repo())
            };
        }
        let rows = match ticket_ids {
            [one] => present_where!(presencia::fk_id_ticket.eq(*one))?,
            many => present_where!(presencia::fk_id_ticket.eq_any(many))?,
        };
        Ok(rows
            .into_iter()
            .map(|(ticket_id, user_id, name, answering, seen_at)| Presence {
                ticket_id,
                user_id,
                name,
                answering,
                seen_at,
            })
            .collect())
    }

    async fn answering_since(&self, since: Timestamp) -> RepoResult<Vec<(i64, i64)>> {
        db_run!(self, |conn| presencia::table
            .filter(presencia::visto_en.ge(since))
            .filter(presencia::respondiendo.eq(true))
            .order((presencia::fk_id_ticket, presencia::fk_id_usuario))
            .select((presencia::fk_id_ticket, presencia::fk_id_usuario))
            .load(conn)
            .await
            .or_repo())
    }

    async fn forget_presence(&self, before: Timestamp) -> RepoResult<u64> {
        let gone = db_run!(self, |conn| diesel::delete(presencia::table.filter(presencia::visto_en.lt(before)))
            .execute(conn)
            .await
            .or_repo())?;
        Ok(gone as u64)
    }
}
