//! The mail-reading channel's checkpoints and quarantine.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::{Db, db_run, db_transaction};

macro_rules! at_location {
    ($l:expr) => {
        correo_cuarentena::fk_id_cuenta_correo
            .eq($l.account_id)
            .and(correo_cuarentena::mailbox.eq(&$l.mailbox))
            .and(correo_cuarentena::uid_validity.eq(i64::from($l.uid_validity)))
            .and(correo_cuarentena::uid.eq(i64::from($l.uid)))
    };
}

impl Db {
    async fn quarantine_row(&self, id: i64) -> RepoResult<Option<QuarantinedMail>> {
        let row: Option<QuarantineRow> = db_run!(self, |conn| {
            correo_cuarentena::table.find(id).select(QuarantineRow::as_select()).first(conn).await.optional().or_repo()
        })?;
        row.map(QuarantinedMail::try_from).transpose()
    }
}

impl ReaderStateRepository for Db {
    async fn checkpoint(&self, account_id: i64, mailbox: &str) -> RepoResult<Option<Checkpoint>> {
        let row: Option<(i64, i64)> = db_run!(self, |conn| {
            correo_lectura::table
                .find((account_id, mailbox))
                .select((correo_lectura::uid_validity, correo_lectura::ultimo_uid))
                .first(conn)
                .await
                .optional()
                .or_repo()
        })?;
        row.map(|(v, u)| Ok(Checkpoint { uid_validity: uid32(v)?, last_uid: uid32(u)? })).transpose()
    }

    async fn save_checkpoint(&self, account_id: i64, mailbox: &str, c: Checkpoint, now: Timestamp) -> RepoResult<()> {
        db_transaction!(self, |conn| {
            diesel::replace_into(correo_lectura::table)
                .values((
                    correo_lectura::fk_id_cuenta_correo.eq(account_id),
                    correo_lectura::mailbox.eq(mailbox),
                    correo_lectura::uid_validity.eq(i64::from(c.uid_validity)),
                    correo_lectura::ultimo_uid.eq(i64::from(c.last_uid)),
                    correo_lectura::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    async fn quarantine(&self, new: NewQuarantined) -> RepoResult<QuarantinedMail> {
        let l = &new.location;
        let row: QuarantineRow = db_transaction!(self, |conn| {
            diesel::insert_or_ignore_into(correo_cuarentena::table)
                .values((
                    correo_cuarentena::fk_id_cuenta_correo.eq(l.account_id),
                    correo_cuarentena::mailbox.eq(&l.mailbox),
                    correo_cuarentena::uid_validity.eq(i64::from(l.uid_validity)),
                    correo_cuarentena::uid.eq(i64::from(l.uid)),
                    correo_cuarentena::tamano.eq(new.size),
                    correo_cuarentena::motivo.eq(new.reason.as_str()),
                    correo_cuarentena::detalle.eq(&new.detail),
                    correo_cuarentena::ruta_original.eq(&new.raw_route),
                    correo_cuarentena::intentos.eq(0),
                    correo_cuarentena::created_at.eq(new.now),
                    correo_cuarentena::updated_at.eq(new.now),
                ))
                .execute(conn)
                .await?;
            Ok(correo_cuarentena::table.filter(at_location!(l)).select(QuarantineRow::as_select()).first(conn).await?)
        })?;
        row.try_into()
    }

    async fn quarantined(&self, include_resolved: bool) -> RepoResult<Vec<QuarantinedMail>> {
        let rows: Vec<QuarantineRow> = db_run!(self, |conn| {
            let mut q = correo_cuarentena::table
                .select(QuarantineRow::as_select())
                .order(correo_cuarentena::id_cuarentena)
                .into_boxed();
            if !include_resolved {
                q = q.filter(correo_cuarentena::fk_id_ticket.is_null());
            }
            q.load(conn).await.or_repo()
        })?;
        rows.into_iter().map(QuarantinedMail::try_from).collect()
    }

    async fn find_quarantined(&self, id: i64) -> RepoResult<Option<QuarantinedMail>> {
        self.quarantine_row(id).await
    }

    async fn record_retry(
        &self,
        id: i64,
        outcome: Result<i64, (QuarantineReason, String)>,
        now: Timestamp,
    ) -> RepoResult<QuarantinedMail> {
        let changed = db_transaction!(self, |conn| {
            let target = correo_cuarentena::table.find(id);
            let bump = (
                correo_cuarentena::intentos.eq(correo_cuarentena::intentos + 1),
                correo_cuarentena::updated_at.eq(now),
            );
            Ok(match &outcome {
                Ok(ticket_id) => {
                    diesel::update(target)
                        .set((bump, correo_cuarentena::fk_id_ticket.eq(ticket_id)))
                        .execute(conn)
                        .await?
                }
                Err((reason, detail)) => {
                    diesel::update(target)
                        .set((
                            bump,
                            correo_cuarentena::motivo.eq(reason.as_str()),
                            correo_cuarentena::detalle.eq(detail),
                        ))
                        .execute(conn)
                        .await?
                }
            })
        })?;
        if changed == 0 {
            return Err(RepoError::NotFound);
        }
        self.quarantine_row(id).await?.ok_or(RepoError::NotFound)
    }
}
