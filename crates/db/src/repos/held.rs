//! Mail held instead of becoming a ticket, kept whole as JSON.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::{Db, db_run, db_transaction};

impl Db {
    async fn held_row(&self, id: i64) -> RepoResult<Option<HeldMail>> {
        let row: Option<HeldRow> = db_run!(self, |conn| {
            correo_retenido::table.find(id).select(HeldRow::as_select()).first(conn).await.optional().or_repo()
        })?;
        row.map(HeldMail::try_from).transpose()
    }
}

impl HeldMailRepository for Db {
    /// Inserted unless the dedupe key is held already; the entry read back.
    async fn hold(&self, new: NewHeldMail) -> RepoResult<HeldMail> {
        let mail = serde_json::to_string(&new.mail).map_err(RepoError::unexpected)?;
        let row: HeldRow = db_transaction!(self, |conn| {
            diesel::insert_or_ignore_into(correo_retenido::table)
                .values((
                    correo_retenido::clave_dedupe.eq(&new.dedupe_key),
                    correo_retenido::motivo.eq(new.reason.as_str()),
                    correo_retenido::remitente.eq(&new.mail.from),
                    correo_retenido::asunto.eq(&new.mail.subject),
                    correo_retenido::correo.eq(&mail),
                    correo_retenido::created_at.eq(new.now),
                ))
                .execute(conn)
                .await?;
            Ok(correo_retenido::table
                .filter(correo_retenido::clave_dedupe.eq(&new.dedupe_key))
                .select(HeldRow::as_select())
                .first(conn)
                .await?)
        })?;
        row.try_into()
    }

    async fn held_mail(&self, include_released: bool) -> RepoResult<Vec<HeldMail>> {
        let rows: Vec<HeldRow> = db_run!(self, |conn| {
            let mut q = correo_retenido::table
                .select(HeldRow::as_select())
                .order(correo_retenido::id_correo_retenido)
                .into_boxed();
            if !include_released {
                q = q.filter(correo_retenido::fk_id_ticket.is_null());
            }
            q.load(conn).await.or_repo()
        })?;
        rows.into_iter().map(HeldMail::try_from).collect()
    }

    async fn find_held(&self, id: i64) -> RepoResult<Option<HeldMail>> {
        self.held_row(id).await
    }

    async fn mark_released(&self, id: i64, ticket_id: i64, now: Timestamp) -> RepoResult<HeldMail> {
        db_run!(self, |conn| diesel::update(
            correo_retenido::table.find(id).filter(correo_retenido::fk_id_ticket.is_null())
        )
        .set((correo_retenido::fk_id_ticket.eq(ticket_id), correo_retenido::liberado_en.eq(now)))
        .execute(conn)
        .await
        .or_repo())?;
        self.held_row(id).await?.ok_or(RepoError::NotFound)
    }
}
