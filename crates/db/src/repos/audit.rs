//! The bitácora.

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

/// Longest endpoint / consumer text kept (the column widths).
const MAX_ENDPOINT: usize = 255;
const MAX_CONSUMER: usize = 100;

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl AuditRepository for Db {
    async fn open_audit(&self, e: NewAuditEntry) -> RepoResult<i64> {
        let endpoint = cut(&e.endpoint, MAX_ENDPOINT);
        let consumer = e.consumer_name.as_deref().map(|c| cut(c, MAX_CONSUMER));
        let method = cut(&e.method, 10);
        let ip = cut(&e.client_ip, 45);
        db_transaction!(self, |conn| {
            let parent = match e.parent_id {
                Some(p) => bitacora_log::table
                    .find(p)
                    .select(bitacora_log::id_bitacora_log)
                    .first::<i64>(conn)
                    .await
                    .optional()?,
                None => None,
            };
            diesel::insert_into(bitacora_log::table)
                .values((
                    bitacora_log::fecha.eq(e.at),
                    bitacora_log::consumidor.eq(&consumer),
                    bitacora_log::endpoint.eq(&endpoint),
                    bitacora_log::metodo.eq(&method),
                    bitacora_log::ip.eq(&ip),
                    bitacora_log::cuerpo.eq(&e.body),
                    bitacora_log::fk_id_bitacora_padre.eq(parent),
                ))
                .execute(conn)
                .await?;
            Ok(conn.last_insert_id().await?)
        })
    }

    async fn close_audit(&self, id: i64, o: AuditOutcome) -> RepoResult<()> {
        let n = db_run!(self, |conn| diesel::update(bitacora_log::table.find(id))
            .set((
                bitacora_log::fk_id_consumidor.eq(o.consumer_id),
                bitacora_log::status_http.eq(i32::from(o.status)),
                bitacora_log::duracion_us.eq(o.duration_us),
            ))
            .execute(conn)
            .await
            .or_repo()?);
        if n == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn find_audit(&self, id: i64) -> RepoResult<Option<AuditEntry>> {
        let row: Option<AuditRow> = db_run!(self, |conn| bitacora_log::table
            .find(id)
            .select(AuditRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo()?);
        Ok(row.map(AuditEntry::from))
    }

    async fn recent_audit(&self, limit: i64) -> RepoResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = db_run!(self, |conn| bitacora_log::table
            .order(bitacora_log::id_bitacora_log.desc())
            .limit(limit.max(0))
            .select(AuditRow::as_select())
            .load(conn)
            .await
            .or_repo()?);
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}
