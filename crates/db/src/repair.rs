//! One-off repairs of stored data that SQL alone cannot make, run by the
//! server at start-up after the migrations: each works in batches (one
//! transaction each, safe to stop and to run on several servers at once)
//! and is recorded in `reparacion_datos` when done, so it runs once.

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::{Address, Direction, EventKind, MessageId, NewTicketEvent, Timestamp};
use helpdesk_domain::ports::RepoResult;

use crate::error::{OrRepo, TxError};
use crate::repos::insert_events;
use crate::schema::*;
use crate::{Db, db_run, db_transaction};

/// Rows read per transaction.
const BATCH: i64 = 500;

/// The repairs, by the name each is recorded under.
const MESSAGE_IDS: &str = "message_id_normalizado";
const PARTICIPANTS: &str = "participantes_validos";

/// What the start-up repairs changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Operators' messages whose Message-ID hash and dedupe key were
    /// written again in the one form ([`MessageId`]).
    pub message_ids: u64,
    /// Participants that are no address (older versions stored any text
    /// of a Cc), removed, each ticket's thread saying which.
    pub participants: u64,
}

impl Db {
    /// Makes every repair not recorded as done yet; see the module.
    pub async fn repair_data(&self, now: Timestamp) -> RepoResult<Repaired> {
        let mut repaired = Repaired::default();
        if !self.repaired(MESSAGE_IDS).await? {
            repaired.message_ids = self.rehash_message_ids().await?;
            self.record_repair(MESSAGE_IDS, now).await?;
        }
        if !self.repaired(PARTICIPANTS).await? {
            repaired.participants = self.drop_invalid_participants(now).await?;
            self.record_repair(PARTICIPANTS, now).await?;
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

impl Db {
    /// Participants that do not parse as an address (the domain's parser,
    /// as new mail is held to) are removed; each ticket's thread gets one
    /// `participante_descartado` event listing its own.
    async fn drop_invalid_participants(&self, now: Timestamp) -> RepoResult<u64> {
        let mut after: (i64, String) = (0, String::new());
        let mut dropped = 0u64;
        loop {
            let (last, n) = db_transaction!(self, |conn| {
                let rows: Vec<(i64, String)> = participante_ticket::table
                    .filter(participante_ticket::fk_id_ticket.gt(after.0).or(
                        participante_ticket::fk_id_ticket.eq(after.0).and(participante_ticket::correo.gt(&after.1)),
                    ))
                    .order((participante_ticket::fk_id_ticket, participante_ticket::correo))
                    .limit(BATCH)
                    .select((participante_ticket::fk_id_ticket, participante_ticket::correo))
                    .load(conn)
                    .await?;
                let bad: Vec<&(i64, String)> = rows.iter().filter(|(_, a)| Address::parse_bare(a).is_none()).collect();
                let mut by_ticket: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
                for (t, a) in &bad {
                    diesel::delete(participante_ticket::table.find((t, a))).execute(conn).await?;
                    by_ticket.entry(*t).or_default().push(a.clone());
                }
                for (t, addresses) in by_ticket {
                    let event = NewTicketEvent {
                        actor_id: None,
                        kind: EventKind::ParticipantDropped,
                        before: Some(addresses.join(", ")),
                        after: None,
                    };
                    insert_events(conn, t, &[event], now).await?;
                }
                Ok::<_, TxError>((rows.last().cloned(), bad.len() as u64))
            })?;
            dropped += n;
            match last {
                Some(last) => after = last,
                None => return Ok(dropped),
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
