//! API consumers and their grants.

use std::collections::{BTreeMap, BTreeSet};

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

/// Replaces the grants of consumer `$id` with `$grants`, inside the
/// transaction of `$conn` (a macro: the body is stamped per backend).
/// One insert per grant: there are at most eleven, and SQLite through the
/// async wrapper has no batch insert.
macro_rules! replace_grants {
    ($conn:ident, $id:expr, $grants:expr) => {{
        diesel::delete(consumidor_permiso::table.filter(consumidor_permiso::fk_id_consumidor.eq($id)))
            .execute($conn)
            .await?;
        for g in $grants.iter() {
            diesel::insert_into(consumidor_permiso::table)
                .values((consumidor_permiso::fk_id_consumidor.eq($id), consumidor_permiso::endpoint.eq(g)))
                .execute($conn)
                .await?;
        }
    }};
}

impl ConsumerRepository for Db {
    async fn create_consumer(&self, new: NewConsumer) -> RepoResult<Consumer> {
        let grants: Vec<String> = new.grants.iter().map(|g| g.path().to_string()).collect();
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(consumidor_api::table)
                .values((
                    consumidor_api::nombre.eq(&new.name),
                    consumidor_api::secreto_hmac.eq(&new.secret_hash),
                    consumidor_api::estado.eq(Status::Active.as_str()),
                    consumidor_api::created_at.eq(new.created_at),
                ))
                .execute(conn)
                .await?;
            let id = conn.last_insert_id().await?;
            replace_grants!(conn, id, grants);
            Ok(id)
        })?;
        Ok(Consumer {
            id,
            name: new.name,
            secret_hash: new.secret_hash,
            status: Status::Active,
            grants: new.grants,
            created_at: new.created_at,
        })
    }

    async fn find_consumer(&self, name: &str) -> RepoResult<Option<Consumer>> {
        let found: Option<(ConsumerRow, Vec<String>)> = db_run!(self, |conn| {
            // The column compares ignoring case; the lookup must not.
            let rows: Vec<ConsumerRow> = consumidor_api::table
                .filter(consumidor_api::nombre.eq(name))
                .select(ConsumerRow::as_select())
                .load(conn)
                .await
                .or_repo()?;
            match rows.into_iter().find(|r| r.nombre == name) {
                None => Ok(None),
                Some(row) => {
                    let grants = consumidor_permiso::table
                        .filter(consumidor_permiso::fk_id_consumidor.eq(row.id_consumidor))
                        .select(consumidor_permiso::endpoint)
                        .load::<String>(conn)
                        .await
                        .or_repo()?;
                    Ok(Some((row, grants)))
                }
            }
        })?;
        found.map(|(row, grants)| row.into_domain(grants)).transpose()
    }

    async fn list_consumers(&self) -> RepoResult<Vec<Consumer>> {
        let (rows, grants): (Vec<ConsumerRow>, Vec<(i64, String)>) = db_run!(self, |conn| {
            let rows = consumidor_api::table
                .order(consumidor_api::id_consumidor)
                .select(ConsumerRow::as_select())
                .load(conn)
                .await
                .or_repo()?;
            let grants = consumidor_permiso::table
                .select((consumidor_permiso::fk_id_consumidor, consumidor_permiso::endpoint))
                .load(conn)
                .await
                .or_repo()?;
            Ok((rows, grants))
        })?;
        let mut by_consumer: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (id, g) in grants {
            by_consumer.entry(id).or_default().push(g);
        }
        rows.into_iter()
            .map(|r| {
                let g = by_consumer.remove(&r.id_consumidor).unwrap_or_default();
                r.into_domain(g)
            })
            .collect()
    }

    async fn set_consumer_status(&self, name: &str, status: Status) -> RepoResult<()> {
        let id = self.consumer_id(name).await?;
        db_run!(self, |conn| diesel::update(consumidor_api::table.find(id))
            .set(consumidor_api::estado.eq(status.as_str()))
            .execute(conn)
            .await
            .or_repo())?;
        Ok(())
    }

    async fn set_consumer_grants(&self, name: &str, grants: BTreeSet<Endpoint>) -> RepoResult<()> {
        let id = self.consumer_id(name).await?;
        let grants: Vec<String> = grants.iter().map(|g| g.path().to_string()).collect();
        db_transaction!(self, |conn| {
            replace_grants!(conn, id, grants);
            Ok(())
        })
    }

    async fn set_consumer_secret(&self, name: &str, secret_hash: &str) -> RepoResult<()> {
        let id = self.consumer_id(name).await?;
        db_run!(self, |conn| diesel::update(consumidor_api::table.find(id))
            .set(consumidor_api::secreto_hmac.eq(secret_hash))
            .execute(conn)
            .await
            .or_repo())?;
        Ok(())
    }
}

impl Db {
    /// The id of the consumer named exactly `name`.
    async fn consumer_id(&self, name: &str) -> RepoResult<i64> {
        let rows: Vec<(i64, String)> = db_run!(self, |conn| consumidor_api::table
            .filter(consumidor_api::nombre.eq(name))
            .select((consumidor_api::id_consumidor, consumidor_api::nombre))
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().find(|(_, n)| n == name).map(|(id, _)| id).ok_or(RepoError::NotFound)
    }
}
