//! Integrated systems (ADI) and their single-use login tickets.

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
use crate::{Db, db_run, db_transaction};

impl IntegratedSystemRepository for Db {
    async fn create_system(
        &self,
        alias: &str,
        status: Status,
        token_hash: &str,
        now: Timestamp,
    ) -> RepoResult<IntegratedSystem> {
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(sistema_integrado::table)
                .values((
                    sistema_integrado::alias_sistema.eq(alias),
                    sistema_integrado::estado.eq(status.as_str()),
                    sistema_integrado::token_hash.eq(token_hash),
                    sistema_integrado::created_at.eq(now),
                    sistema_integrado::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(conn.last_insert_id().await?)
        })?;
        Ok(IntegratedSystem {
            id,
            alias: alias.into(),
            status,
            token_hash: token_hash.into(),
            created_at: now,
            updated_at: now,
        })
    }

    async fn find_system(&self, alias: &str) -> RepoResult<Option<IntegratedSystem>> {
        let row: Option<SystemRow> = db_run!(self, |conn| sistema_integrado::table
            .filter(sistema_integrado::alias_sistema.eq(alias))
            .select(SystemRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(IntegratedSystem::try_from).transpose()
    }

    async fn find_system_by_id(&self, id: i64) -> RepoResult<Option<IntegratedSystem>> {
        let row: Option<SystemRow> = db_run!(self, |conn| sistema_integrado::table
            .find(id)
            .select(SystemRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(IntegratedSystem::try_from).transpose()
    }

    async fn list_systems(&self) -> RepoResult<Vec<IntegratedSystem>> {
        let rows: Vec<SystemRow> = db_run!(self, |conn| sistema_integrado::table
            .order(sistema_integrado::id_sistema)
            .select(SystemRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().map(IntegratedSystem::try_from).collect()
    }

    async fn update_system(
        &self,
        alias: &str,
        status: Option<Status>,
        token_hash: Option<String>,
        now: Timestamp,
    ) -> RepoResult<IntegratedSystem> {
        let row: SystemRow = db_transaction!(self, |conn| {
            let found = sistema_integrado::table
                .filter(sistema_integrado::alias_sistema.eq(alias))
                .select(SystemRow::as_select())
                .first(conn)
                .await
                .optional()?;
            let Some(mut row) = found else { return Err(RepoError::NotFound.into()) };
            if let Some(st) = status {
                row.estado = st.as_str().to_string();
            }
            if let Some(h) = &token_hash {
                row.token_hash = h.clone();
            }
            row.updated_at = now;
            diesel::update(sistema_integrado::table.find(row.id_sistema))
                .set((
                    sistema_integrado::estado.eq(&row.estado),
                    sistema_integrado::token_hash.eq(&row.token_hash),
                    sistema_integrado::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(row)
        })?;
        IntegratedSystem::try_from(row)
    }

    async fn create_login_ticket(&self, ticket: LoginTicket) -> RepoResult<()> {
        let row = LoginTicketRow::from(ticket);
        db_run!(self, |conn| diesel::insert_into(ticket_acceso_adi::table)
            .values(&row)
            .execute(conn)
            .await
            .map(|_| ())
            .or_repo())
    }

    async fn use_login_ticket(&self, ticket_id: &str, now: Timestamp) -> RepoResult<LoginTicket> {
        let row: LoginTicketRow = db_transaction!(self, |conn| {
            let used = diesel::update(
                ticket_acceso_adi::table
                    .filter(ticket_acceso_adi::id_ticket_adi.eq(ticket_id))
                    .filter(ticket_acceso_adi::used_at.is_null())
                    .filter(ticket_acceso_adi::expires_at.gt(now)),
            )
            .set(ticket_acceso_adi::used_at.eq(now))
            .execute(conn)
            .await?;
            if used != 1 {
                return Err(RepoError::NotFound.into());
            }
            Ok(ticket_acceso_adi::table.find(ticket_id).select(LoginTicketRow::as_select()).first(conn).await?)
        })?;
        Ok(LoginTicket::from(row))
    }
}
