//! One-off repairs of stored data that SQL alone cannot make, run by the
//! server at start-up after the migrations: each works in batches (one
//! transaction each, safe to stop and to run on several servers at once)
//! and is recorded in `reparacion_datos` when done, so it runs once.

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::{Direction, MessageId, Timestamp};
use helpdesk_domain::ports::RepoResult;

use crate::error::{OrRepo, TxError};
use crate::schema::*;
use crate::{Db, db_run, db_transaction};

/// Rows read per transaction.
const BATCH: i64 = 500;

/// The repairs, by the name each is recorded under.
const MESSAGE_IDS: &str = "message_id_normalizado";

/// What the start-up repairs changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Operators' messages whose Message-ID hash and dedupe key were
    /// written again in the one form ([`MessageId`]).
    pub message_ids: u64,
}

impl Db {
    /// Makes every repair not recorded as done yet; see the module.
    pub async fn repair_data(&self, now: Timestamp) -> RepoResult<Repaired> {
        let mut repaired = Repaired::default();
        if !self.repaired(MESSAGE_IDS).await? {
            repaired.message_ids = self.rehash_message_ids().await?;
            self.record_repair(MESSAGE_IDS, now).await?;
        }
        Ok(repaired)
    }

    async fn repaired(&self, name: &str) -> RepoResult<bool> {
        let found: Option<String> = db_run!(self, |conn| reparacion_datos::table
            .find(name)
            .select(reparacion_datos::nombre)
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        Ok(found.is_some())
    }

    async fn record_repair(&self, name: &str, now: Timestamp) -> RepoResult<()> {
        let result = db_run!(self, |conn| diesel::insert_into(reparacion_datos::table)
            .values((reparacion_datos::nombre.eq(name), reparacion_datos::hecho_en.eq(now)))
            .execute(conn)
            .await
            .or_repo());
        match result {
            // Another server finished it too.
            Ok(_) | Err(RepoError::Duplicate(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The operators' replies and notes were stored with their Message-ID
    /// hashed as written, in mixed case, while ingestion compares the
    /// lower-case form: a copy of a reply read back was not known as that
    /// reply. Their hash and dedupe key are written again from the one form
    /// (the Message-ID itself stays as it was sent, for the References of
    /// later mail). A dedupe key another message already holds (the copy
    /// that was stored as a customer's) is left: that copy answers for it.
    async fn rehash_message_ids(&self) -> RepoResult<u64> {
        let incoming = Direction::Incoming.as_str();
        let mut after = 0i64;
        let mut changed = 0u64;
        loop {
            let (last, n) = db_transaction!(self, |conn| {
                let rows: Vec<(i64, Option<String>, Option<String>, String)> = detalle_ticket::table
                    .filter(detalle_ticket::id_detalle_ticket.gt(after))
                    .filter(detalle_ticket::direccion.ne(incoming))
                    .filter(detalle_ticket::message_id.is_not_null())
                    .order(detalle_ticket::id_detalle_ticket)
                    .limit(BATCH)
                    .select((
                        detalle_ticket::id_detalle_ticket,
                        detalle_ticket::message_id,
                        detalle_ticket::message_id_hash,
                        detalle_ticket::clave_dedupe,
                    ))
                    .load(conn)
                    .await?;
                let mut n = 0u64;
                for (id, message_id, hash, key) in &rows {
                    let Some(m) = message_id.as_deref().and_then(MessageId::parse) else { continue };
                    if hash.as_deref() != Some(m.hash().as_str()) {
                        diesel::update(detalle_ticket::table.find(id))
                            .set(detalle_ticket::message_id_hash.eq(m.hash()))
                            .execute(conn)
                            .await?;
                        n += 1;
                    }
                    let new_key = m.dedupe_key();
                    if *key != new_key {
                        let taken: i64 = detalle_ticket::table
                            .filter(detalle_ticket::clave_dedupe.eq(&new_key))
                            .count()
                            .get_result(conn)
                            .await?;
                        if taken == 0 {
                            diesel::update(detalle_ticket::table.find(id))
                                .set(detalle_ticket::clave_dedupe.eq(&new_key))
                                .execute(conn)
                                .await?;
                        }
                    }
                }
                Ok::<_, TxError>((rows.last().map(|r| r.0), n))
            })?;
            changed += n;
            match last {
                Some(last) => after = last,
                None => return Ok(changed),
            }
        }
    }
}

#[cfg(feature = "testing")]
impl Db {
    /// Stores a message's Message-ID hash and dedupe key as a server before
    /// the repair did (hashed as written), and forgets that the repair was
    /// made: for tests of [`Db::repair_data`].
    pub async fn unrepair_message_id(&self, detail_id: i64, as_written: &str) -> RepoResult<()> {
        use helpdesk_domain::crypto::sha256_hex;
        db_transaction!(self, |conn| {
            diesel::update(detalle_ticket::table.find(detail_id))
                .set((
                    detalle_ticket::message_id.eq(as_written),
                    detalle_ticket::message_id_hash.eq(sha256_hex(as_written.as_bytes())),
                    detalle_ticket::clave_dedupe.eq(sha256_hex(format!("mid:{as_written}").as_bytes())),
                ))
                .execute(conn)
                .await?;
            diesel::delete(reparacion_datos::table).execute(conn).await?;
            Ok::<(), TxError>(())
        })
    }
}
