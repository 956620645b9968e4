//! Tickets, details, attachments, participants: one transaction per mail.

use std::future::Future;

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use super::audit::{AuditInsert, inserts as audit_inserts, keeping_the_outcome, unlinked_rows as audit_rows};
use super::webhooks::record_webhook_events;
use crate::conn::Pools;
use crate::dialect::{Dialect, load_slot};
use crate::error::{OrRepo, TxError};
use crate::models::*;
use crate::schema::*;
use crate::search::{index_message, index_rows, word_insert};
use crate::sql::{Finished, Kept, Script, Select, Statement, Value, marks};
use crate::{Db, db_run, db_transaction};

impl TicketRepository for Db {
    /// One transaction, in steps: the ticket (opened, or the one the mail
    /// continues), the detail, its attachments, the participants, the
    /// notices, the webhooks' events, the request's bitácora record.
    ///
    /// On MySQL and MariaDB, but not on a Galera node, a new ticket's steps
    /// are one [`Script`] instead ([`Db::open_by_script`]).
    async fn store_incoming(&self, n: NewIncoming) -> RepoResult<StoredIncoming> {
        let prepared = Prepared::of(std::slice::from_ref(&n))?;
        if let Some(mut stored) = self.open_by_script(std::slice::from_ref(&n), &prepared).await? {
            return stored.pop().ok_or_else(|| RepoError::corrupt("a new ticket's script kept no ids"));
        }
        let returning = self.returning();
        db_transaction!(self, |conn| store_one(conn, returning, &n, &prepared[0]).await)
    }

    /// One transaction for the whole batch. New tickets on a store with
    /// `RETURNING` take one multi-row statement per table for all of them;
    /// anything else takes [`store_incoming`]'s steps mail after mail.
    ///
    /// [`store_incoming`]: TicketRepository::store_incoming
    async fn store_incoming_batch(&self, batch: &[NewIncoming]) -> RepoResult<Vec<StoredIncoming>> {
        let prepared = Prepared::of(batch)?;
        if let Some(stored) = self.open_by_script(batch, &prepared).await? {
            return Ok(stored);
        }
        let returning = self.returning();
        let together = returning && batch.len() > 1 && batch.iter().all(|n| matches!(n.target, IncomingTarget::New(_)));
        db_transaction!(self, |conn| {
            if together {
                return Ok(open_tickets(conn, batch, &prepared).await?);
            }
            let mut stored = Vec::with_capacity(batch.len());
            for (n, p) in batch.iter().zip(&prepared) {
                stored.push(store_one(conn, returning, n, p).await?);
            }
            Ok(stored)
        })
    }

    async fn activity_marks(&self, ticket_id: Option<i64>) -> RepoResult<ActivityMarks> {
        use diesel::dsl::max;
        // One statement, kept prepared; each subquery the last entry of a
        // primary key or of an index by ticket.
        type Marks = (Option<i64>, Option<i64>, Option<i64>);
        let (ticket, detail, event): Marks = match ticket_id {
            None => db_run!(self, |conn| diesel::select((
                ticket::table.select(max(ticket::id_ticket)).single_value(),
                detalle_ticket::table.select(max(detalle_ticket::id_detalle_ticket)).single_value(),
                evento_ticket::table.select(max(evento_ticket::id_evento)).single_value(),
            ))
            .get_result(conn)
            .await
            .or_repo())?,
            Some(id) => db_run!(self, |conn| diesel::select((
                ticket::table.filter(ticket::id_ticket.eq(id)).select(max(ticket::id_ticket)).single_value(),
                detalle_ticket::table
                    .filter(detalle_ticket::fk_id_ticket.eq(id))
                    .select(max(detalle_ticket::id_detalle_ticket))
                    .single_value(),
                evento_ticket::table
                    .filter(evento_ticket::fk_id_ticket.eq(id))
                    .select(max(evento_ticket::id_evento))
                    .single_value(),
            ))
            .get_result(conn)
            .await
            .or_repo())?,
        };
        Ok(ActivityMarks { ticket: ticket.unwrap_or(0), detail: detail.unwrap_or(0), event: event.unwrap_or(0) })
    }

    async fn find_ticket(&self, id: i64) -> RepoResult<Option<Ticket>> {
        let row: Option<TicketRow> = db_run!(self, |conn| ticket::table
            .find(id)
            .select(TicketRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(Ticket::try_from).transpose()
    }

    async fn find_detail(&self, id: i64) -> RepoResult<Option<TicketDetail>> {
        let row: Option<DetailRow> = db_run!(self, |conn| detalle_ticket::table
            .find(id)
            .select(DetailRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(TicketDetail::try_from).transpose()
    }

    async fn find_detail_by_dedupe(&self, key: &str) -> RepoResult<Option<TicketDetail>> {
        let row: Option<DetailRow> = db_run!(self, |conn| detalle_ticket::table
            .filter(detalle_ticket::clave_dedupe.eq(key))
            .select(DetailRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(TicketDetail::try_from).transpose()
    }

    async fn find_details_by_dedupe(&self, keys: &[String]) -> RepoResult<Vec<TicketDetail>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<DetailRow> = db_run!(self, |conn| detalle_ticket::table
            .filter(detalle_ticket::clave_dedupe.eq_any(keys))
            .select(DetailRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().map(TicketDetail::try_from).collect()
    }

    async fn ticket_of_message(&self, hash: &str) -> RepoResult<Option<i64>> {
        db_run!(self, |conn| detalle_ticket::table
            .filter(detalle_ticket::message_id_hash.eq(hash))
            .order(detalle_ticket::id_detalle_ticket)
            .select(detalle_ticket::fk_id_ticket)
            .first::<i64>(conn)
            .await
            .optional()
            .or_repo())
    }

    async fn details_of(&self, ticket_id: i64) -> RepoResult<Vec<TicketDetail>> {
        let rows: Vec<DetailRow> = db_run!(self, |conn| detalle_ticket::table
            .filter(detalle_ticket::fk_id_ticket.eq(ticket_id))
            .order(detalle_ticket::id_detalle_ticket)
            .select(DetailRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().map(TicketDetail::try_from).collect()
    }

    async fn attachments_of(&self, detail_id: i64) -> RepoResult<Vec<Attachment>> {
        let rows: Vec<AttachmentRow> = db_run!(self, |conn| adjunto_ticket::table
            .filter(adjunto_ticket::fk_id_detalle_ticket.eq(detail_id))
            .order(adjunto_ticket::id_adjunto)
            .select(AttachmentRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        Ok(rows.into_iter().map(Attachment::from).collect())
    }

    async fn is_participant(&self, ticket_id: i64, email: &str) -> RepoResult<bool> {
        let email = email.trim().to_lowercase();
        let n: i64 = db_run!(self, |conn| participante_ticket::table
            .filter(participante_ticket::fk_id_ticket.eq(ticket_id))
            .filter(participante_ticket::correo.eq(&email))
            .count()
            .get_result(conn)
            .await
            .or_repo())?;
        Ok(n > 0)
    }

    async fn operator_loads(&self, department_id: i64) -> RepoResult<Vec<OperatorLoad>> {
        // One indexed read: the operators, each with its load slots summed
        // (kept by the writes, never recounted here).
        let rows: Vec<(UserRow, Option<String>, i64, Option<Timestamp>)> = db_run!(self, |conn| usuario::table
            .left_join(rol::table)
            .filter(usuario::fk_id_departamento.eq(department_id))
            .filter(usuario::status.eq(UserStatus::Active.as_str()))
            .filter(usuario::acceso_ticket.eq("S"))
            .order(usuario::id_usuario)
            .select((
                UserRow::as_select(),
                rol::nombre.nullable(),
                SlotsOf::<diesel::sql_types::BigInt>::new(OPEN_TICKETS),
                SlotsOf::<diesel::sql_types::Nullable<diesel::sql_types::Timestamp>>::new(LAST_ASSIGNED),
            ))
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter()
            .map(|(u, role, open_tickets, last_assigned_at)| {
                Ok(OperatorLoad { user: u.into_domain(role)?, open_tickets, last_assigned_at })
            })
            .collect()
    }

    async fn user_loads(&self, users: &[i64]) -> RepoResult<Vec<(i64, Option<Timestamp>)>> {
        #[derive(QueryableByName)]
        struct Load {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            fk_id_usuario: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            abiertos: i64,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
            ultima: Option<Timestamp>,
        }
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // One read of the users' slots, on `carga_operador`'s primary key.
        let sql = format!(
            "SELECT fk_id_usuario, {OPEN_TICKETS} AS abiertos, {LAST_ASSIGNED} AS ultima FROM carga_operador c \
             WHERE fk_id_usuario IN ({}) GROUP BY fk_id_usuario",
            marks(users.len())
        );
        let values: Vec<Value<'_>> = users.iter().map(|u| Value::BigInt(*u)).collect();
        let loads: Vec<Load> =
            db_run!(self, |conn| Select(Statement::new(sql.clone(), values.clone())).load(conn).await.or_repo())?;
        let loads: std::collections::HashMap<i64, (i64, Option<Timestamp>)> =
            loads.into_iter().map(|l| (l.fk_id_usuario, (l.abiertos, l.ultima))).collect();
        Ok(users.iter().map(|u| loads.get(u).copied().unwrap_or_default()).collect())
    }

    /// On MySQL one statement, the two reads as a `UNION ALL` (one round
    /// trip less for every ticket opened); on SQLite, in-process, the two.
    async fn loads_and_notices_sent(
        &self,
        users: &[i64],
        kind: NoticeKind,
        recipients: &[String],
        since: Timestamp,
    ) -> RepoResult<(Vec<(i64, Option<Timestamp>)>, Vec<i64>)> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp as Ts};
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Nullable<BigInt>)]
            usuario: Option<i64>,
            #[diesel(sql_type = Nullable<Text>)]
            destino: Option<String>,
            #[diesel(sql_type = BigInt)]
            n: i64,
            #[diesel(sql_type = Nullable<Ts>)]
            ultima: Option<Timestamp>,
        }
        if users.is_empty() || recipients.is_empty() || !matches!(self.backend, Pools::Mysql(_)) {
            return Ok((self.user_loads(users).await?, self.count_notices_to(kind, recipients, since).await?));
        }
        let sql = format!(
            "SELECT fk_id_usuario AS usuario, NULL AS destino, {OPEN_TICKETS} AS n, {LAST_ASSIGNED} AS ultima \
             FROM carga_operador c WHERE fk_id_usuario IN ({}) GROUP BY fk_id_usuario \
             UNION ALL SELECT NULL, destino, COUNT(*), NULL FROM notificacion \
             WHERE tipo = ? AND destino IN ({}) AND created_at >= ? GROUP BY destino",
            marks(users.len()),
            marks(recipients.len())
        );
        let values: Vec<Value<'_>> = (users.iter().map(|u| Value::BigInt(*u)))
            .chain([Value::Text(kind.as_str())])
            .chain(recipients.iter().map(|r| Value::Text(r)))
            .chain([Value::Timestamp(since)])
            .collect();
        let rows: Vec<Row> =
            db_run!(self, |conn| Select(Statement::new(sql.clone(), values.clone())).load(conn).await.or_repo())?;
        let mut loads = std::collections::HashMap::new();
        let mut counts = Vec::new();
        for r in rows {
            match (r.usuario, r.destino) {
                (Some(user), None) => {
                    loads.insert(user, (r.n, r.ultima));
                }
                (None, Some(to)) => counts.push((to, r.n)),
                _ => return Err(RepoError::corrupt("a row of loads and notices that is neither")),
            }
        }
        Ok((users.iter().map(|u| loads.get(u).copied().unwrap_or_default()).collect(), sent_to(recipients, &counts)))
    }

    async fn set_ticket_status(&self, ticket_id: i64, status: TicketStatus, now: Timestamp) -> RepoResult<()> {
        db_transaction!(self, |conn| {
            if conn.set_status(ticket_id, status, now).await? { Ok(()) } else { Err(RepoError::NotFound.into()) }
        })
    }
}

// The steps of `store_incoming` (some also of `store_reply` and
// `update_ticket`, in `work.rs`), each inside its transaction, written once
// for both backends (generic over the connection: see `crate::dialect`).
// Those that insert with `Dialect::insert_id` or read with
// `Dialect::load_ids` declare their futures `Send` instead of being
// `async fn`: rustc proves it here, from the bounds, but not when the future
// of an `async fn` leaks into the transaction's body (the higher-ranked
// lifetimes of rust-lang/rust#100013).

/// What a mail's rows need besides the mail, worked out before the
/// transaction: its headers as JSON, its participants in order.
struct Prepared {
    headers: String,
    participants: Vec<String>,
}

impl Prepared {
    fn of(batch: &[NewIncoming]) -> RepoResult<Vec<Prepared>> {
        batch
            .iter()
            .map(|n| {
                let headers = serde_json::to_string(&n.detail.headers).map_err(RepoError::unexpected)?;
                Ok(Prepared { headers, participants: participants(&n.participants) })
            })
            .collect()
    }
}

/// One mail's steps: the ticket (opened, or the one the mail continues),
/// the detail, its words, attachments, participants, notices, the
/// webhooks' events, the request's bitácora record.
async fn store_one<C: Dialect>(
    conn: &mut C,
    returning: bool,
    n: &NewIncoming,
    p: &Prepared,
) -> Result<StoredIncoming, TxError> {
    let (ticket_id, created_ticket) = match &n.target {
        IncomingTarget::New(t) => (open_ticket(conn, returning, t, n.now).await?, true),
        IncomingTarget::Existing { ticket_id, reopen, sla } => {
            continue_ticket(conn, *ticket_id, *reopen, sla.as_ref(), n.now).await?;
            (*ticket_id, false)
        }
    };
    let detail_id = insert_detail(conn, returning, ticket_id, created_ticket, &n.detail, &p.headers, n.now).await?;
    index_message(conn, ticket_id, &n.detail.subject, &n.detail.body).await?;
    insert_attachments(conn, detail_id, &n.attachments).await?;
    add_participants(conn, ticket_id, &p.participants).await?;
    insert_events(conn, ticket_id, &n.events, n.now).await?;
    let notice_ids = queue_notices(conn, returning, ticket_id, detail_id, &n.notices, n.now, n.notices_due_at).await?;
    record_webhook_events(conn, ticket_id, Some(detail_id), &n.webhook_events, n.now).await?;
    let audit = audit_rows(n.audit.iter());
    for statement in audit_inserts(&audit) {
        conn.run(keeping_the_outcome::<C>(statement)).await?;
    }
    Ok(StoredIncoming { ticket_id, detail_id, created_ticket, notice_ids })
}

/// Most bytes of a new ticket's [`Script`] (its text, and a block's bound
/// values): a longer mail takes the steps (a text script writes text in
/// hex, twice its size, and MySQL's packets are capped, 16 MiB by default).
const MAX_SCRIPT_BYTES: usize = 1 << 20;

impl Db {
    /// New tickets on MySQL as one [`Script`]: one round trip for the
    /// transaction and one to read the new ids (on MariaDB, a prepared
    /// block, one for both), where the steps took a dozen. `None` when the script is not the cheaper way and the caller
    /// takes the steps: on SQLite (no round trips), on a Galera node (see
    /// `Db::scripts`), for a batch of more than [`SMALL_BATCH`] on MariaDB,
    /// or when the script cannot carry the batch ([`opening_script`]).
    async fn open_by_script(
        &self,
        batch: &[NewIncoming],
        prepared: &[Prepared],
    ) -> RepoResult<Option<Vec<StoredIncoming>>> {
        let Pools::Mysql(pool) = &self.backend else { return Ok(None) };
        if !self.scripts() || (batch.len() > SMALL_BATCH && self.returning()) {
            return Ok(None);
        }
        // On MariaDB (it has `RETURNING`) as one compound statement.
        let block = self.returning();
        let lists = Lists::of(batch, prepared, block).map_err(RepoError::unexpected)?;
        let Some(mut script) = opening_script::<AsyncMysqlConnection>(batch, prepared, &lists, block).or_repo()? else {
            return Ok(None);
        };
        script.keep_prepared_if(|text| self.keeps_block(text));
        let kept = self.mysql_script(pool, script).await?;
        let (tickets, details, notices) =
            (kept.of(Kept::Ticket).or_repo()?, kept.of(Kept::Detail).or_repo()?, kept.of(Kept::Notice).or_repo()?);
        if tickets.len() != batch.len()
            || details.len() != batch.len()
            || notices.len() != batch.iter().map(|n| n.notices.len()).sum::<usize>()
        {
            return Err(RepoError::corrupt(format!("{} new tickets' script kept {kept:?}", batch.len())));
        }
        let mut notices = notices.into_iter();
        let stored = batch
            .iter()
            .zip(tickets.into_iter().zip(details))
            .map(|(n, (ticket_id, detail_id))| {
                let notice_ids = notices.by_ref().take(n.notices.len()).collect();
                StoredIncoming { ticket_id, detail_id, created_ticket: true, notice_ids }
            })
            .collect();
        Ok(Some(stored))
    }
}

/// What a new ticket's [`Script`] binds besides the mails: each mail's
/// words for the search, and for a block its words and participants as
/// JSON arrays ([`Statement::insert_each`]); the requests' bitácora rows.
struct Lists<'a> {
    words: Vec<Vec<String>>,
    json: Vec<(String, String)>,
    audit: Vec<AuditInsert<'a>>,
}

impl<'a> Lists<'a> {
    fn of(batch: &'a [NewIncoming], prepared: &[Prepared], block: bool) -> Result<Self, serde_json::Error> {
        let words: Vec<Vec<String>> = batch.iter().map(|n| message_words(&n.detail.subject, &n.detail.body)).collect();
        let json = if block {
            words
                .iter()
                .zip(prepared)
                .map(|(w, p)| Ok((serde_json::to_string(w)?, serde_json::to_string(&p.participants)?)))
                .collect::<Result<_, serde_json::Error>>()?
        } else {
            Vec::new()
        };
        Ok(Self { words, json, audit: audit_rows(batch.iter().filter_map(|n| n.audit.as_ref())) })
    }
}

/// Most mails of a batch written as a block on MariaDB. Larger batches take
/// the steps, whose multi-row inserts cost MariaDB less per ticket than a
/// block's inserts one ticket at a time (as an unprepared compound
/// statement, 0.59 against 0.28 ms of its CPU per ticket at 16
/// connections); a small batch is written sooner as a block (at 4
/// connections 1.26x the tickets/s, MariaDB's CPU per ticket 0.89x:
/// docs/benchmarks.md, "A prepared block").
const SMALL_BATCH: usize = 4;

/// The shapes of a block kept prepared: a mail with more attachments,
/// events or notices than these is rare, its block prepared and closed (as
/// are the shapes past `Db::keeps_block`'s bound).
const COMMON_SHAPE: usize = 4;

/// New tickets' writes as one [`Script`] (MySQL): the rows the steps write
/// (`store_one`'s, `open_tickets`'), in their order — the assignees' loads,
/// then for each mail the ticket, its detail, words, attachments,
/// participants, events and notices, and last the requests' bitácora
/// records — with each new ticket's and detail's
/// id kept for the rows after it; a block (`block`, MariaDB) or a text.
/// `None` when a script cannot carry them: a
/// mail that continues a ticket, webhook events (their bodies name the new
/// ids, and only the active webhooks read in the transaction say who gets
/// them), or a script past [`MAX_SCRIPT_BYTES`].
fn opening_script<'a, C: Dialect>(
    batch: &'a [NewIncoming],
    prepared: &'a [Prepared],
    lists: &'a Lists<'a>,
    block: bool,
) -> QueryResult<Option<Finished<'a>>> {
    let mut new = Vec::with_capacity(batch.len());
    for n in batch {
        match &n.target {
            IncomingTarget::New(t) if n.webhook_events.is_empty() => new.push(t),
            _ => return Ok(None),
        }
    }
    let (ticket, detail) = (Value::Kept(Kept::Ticket), Value::Kept(Kept::Detail));
    let mut script = if block { Script::block() } else { Script::transaction() };
    for (user, (step, at)) in assignee_loads(batch) {
        script.push(&load_change(C::ADD_TO_LOAD, user, step, Some(at)))?;
    }
    for (i, ((n, t), p)) in batch.iter().zip(new).zip(prepared).enumerate() {
        script.push(&Statement::insert_rows("INSERT INTO ticket", TICKET_COLUMNS, vec![ticket_row(t, n.now)]))?;
        script.keep(Kept::Ticket);
        let row = detail_row(ticket, true, &n.detail, &p.headers, n.now);
        script.push(&Statement::insert_rows("INSERT INTO detalle_ticket", DETAIL_COLUMNS, vec![row]))?;
        script.keep(Kept::Detail);
        let words = &lists.words[i];
        match lists.json.get(i) {
            // A list of any length is one statement of the same text.
            Some((words_json, _)) if !words.is_empty() => {
                let head = format!("{} INTO palabra_ticket", C::INSERT_IGNORE);
                script.push(&Statement::insert_each(&head, "palabra", ("fk_id_ticket", ticket), words_json))?;
            }
            _ if !words.is_empty() => {
                script.push(&word_insert::<C>(words.iter().map(|w| vec![Value::Text(w), ticket]).collect()))?
            }
            _ => {}
        }
        if !n.attachments.is_empty() {
            let rows = n.attachments.iter().map(|a| attachment_row(detail, a)).collect();
            script.push(&Statement::insert_rows("INSERT INTO adjunto_ticket", ATTACHMENT_COLUMNS, rows))?;
        }
        match lists.json.get(i) {
            Some((_, participants_json)) if !p.participants.is_empty() => {
                let head = format!("{} INTO participante_ticket", C::INSERT_IGNORE);
                script.push(&Statement::insert_each(&head, "correo", ("fk_id_ticket", ticket), participants_json))?;
            }
            _ if !p.participants.is_empty() => {
                let rows = p.participants.iter().map(|a| vec![ticket, Value::Text(a)]).collect();
                script.push(&participant_insert::<C>(rows))?;
            }
            _ => {}
        }
        if !n.events.is_empty() {
            script.push(&event_insert(ticket, &n.events, n.now))?;
        }
        // One insert each, each id kept (a multi-row insert's ids need not
        // be consecutive: Galera steps them by the cluster's size).
        for nn in &n.notices {
            let row = notice_row(ticket, detail, nn, n.now, n.notices_due_at);
            script.push(&Statement::insert_rows("INSERT INTO notificacion", NOTICE_COLUMNS, vec![row]))?;
            script.keep(Kept::Notice);
        }
        if script.len() > MAX_SCRIPT_BYTES {
            return Ok(None);
        }
    }
    // The requests' bitácora records, committed with their mails.
    for statement in audit_inserts(&lists.audit) {
        script.push(&keeping_the_outcome::<C>(statement))?;
    }
    if script.len() > MAX_SCRIPT_BYTES {
        return Ok(None);
    }
    script.keep_prepared(
        batch.iter().all(|n| n.attachments.len().max(n.events.len()).max(n.notices.len()) <= COMMON_SHAPE),
    );
    Ok(Some(script.finish()))
}

/// The open tickets each assignee gains from new tickets among `batch`,
/// with their latest assignment.
fn assignee_loads(batch: &[NewIncoming]) -> std::collections::BTreeMap<i64, (i64, Timestamp)> {
    let mut loads: std::collections::BTreeMap<i64, (i64, Timestamp)> = Default::default();
    for n in batch {
        if let IncomingTarget::New(NewTicket { assignee_id: Some(a), .. }) = &n.target {
            let load = loads.entry(*a).or_insert((0, n.now));
            load.0 += 1;
            load.1 = load.1.max(n.now);
        }
    }
    loads
}

/// The columns of a new ticket, in the order of [`ticket_row`]'s values.
const TICKET_COLUMNS: &[&str] = &[
    "asunto",
    "estado",
    "fk_id_departamento",
    "fk_id_usuario_asignado",
    "solicitante",
    "fk_id_cuenta_correo",
    "sistema",
    "created_at",
    "updated_at",
    "fk_id_politica_sla",
    "fk_id_calendario",
    "sla_inicio",
    "sla_pausa_seg",
    "sla_pausado_desde",
    "vence_primera_respuesta",
    "aviso_primera_respuesta",
    "primera_respuesta_en",
    "vence_resolucion",
    "aviso_resolucion",
    "resuelto_en",
    "proximo_vencimiento",
];

fn ticket_row(t: &NewTicket, now: Timestamp) -> Vec<Value<'_>> {
    let c = t.sla.as_ref();
    vec![
        Value::Text(&t.subject),
        Value::Text(TicketStatus::Open.as_str()),
        Value::BigInt(t.department_id),
        Value::OptBigInt(t.assignee_id),
        Value::Text(&t.requester),
        Value::OptBigInt(t.mail_account_id),
        Value::Text(&t.system),
        Value::Timestamp(now),
        Value::Timestamp(now),
        Value::OptBigInt(c.map(|c| c.policy_id)),
        Value::OptBigInt(c.map(|c| c.calendar_id)),
        Value::OptTimestamp(c.map(|c| c.started_at)),
        Value::BigInt(c.map_or(0, |c| c.paused_secs)),
        Value::OptTimestamp(c.and_then(|c| c.paused_since)),
        Value::OptTimestamp(c.map(|c| c.first_response_due)),
        Value::OptTimestamp(c.map(|c| c.first_response_warning)),
        Value::OptTimestamp(c.and_then(|c| c.first_response_at)),
        Value::OptTimestamp(c.map(|c| c.resolution_due)),
        Value::OptTimestamp(c.map(|c| c.resolution_warning)),
        Value::OptTimestamp(c.and_then(|c| c.resolved_at)),
        Value::OptTimestamp(c.and_then(SlaClock::next_due)),
    ]
}

/// The columns of a new detail, in the order of [`detail_row`]'s values.
const DETAIL_COLUMNS: &[&str] = &[
    "fk_id_ticket",
    "clave_dedupe",
    "message_id",
    "message_id_hash",
    "remitente",
    "destinatario",
    "cc",
    "bcc",
    "reply_to",
    "asunto",
    "cuerpo",
    "html",
    "fecha",
    "headers",
    "automatico",
    "nuevo_ticket",
    "created_at",
    "direccion",
    "fk_id_usuario_autor",
];

fn detail_row<'a>(
    ticket: Value<'a>,
    created_ticket: bool,
    d: &'a NewTicketDetail,
    headers: &'a str,
    now: Timestamp,
) -> Vec<Value<'a>> {
    vec![
        ticket,
        Value::Text(&d.dedupe_key),
        Value::OptText(d.message_id.as_deref()),
        Value::OptText(d.message_id_hash.as_deref()),
        Value::Text(&d.from),
        Value::Text(&d.to),
        Value::OptText(d.cc.as_deref()),
        Value::OptText(d.bcc.as_deref()),
        Value::OptText(d.reply_to.as_deref()),
        Value::Text(&d.subject),
        Value::Text(&d.body),
        Value::Text(&d.html),
        Value::Timestamp(d.date),
        Value::Text(headers),
        Value::Int(d.automatic.into()),
        Value::Int(created_ticket.into()),
        Value::Timestamp(now),
        Value::Text(d.direction.as_str()),
        Value::OptBigInt(d.author_id),
    ]
}

/// New tickets, one multi-row statement per table (a store with
/// `RETURNING`): the assignees' loads, the tickets, their details, words,
/// participants and notices; attachments and webhook events per mail. The
/// new ids come back in the order of the rows (each row's id is larger than
/// the one before), so sorted they line up with `batch`.
#[expect(clippy::manual_async_fn, reason = "its future is Send by its bounds; see the note above")]
fn open_tickets<'a, C: Dialect>(
    conn: &'a mut C,
    batch: &'a [NewIncoming],
    prepared: &'a [Prepared],
) -> impl Future<Output = QueryResult<Vec<StoredIncoming>>> + Send + 'a {
    async move {
        let new: Vec<&NewTicket> = batch
            .iter()
            .filter_map(|n| match &n.target {
                IncomingTarget::New(t) => Some(t),
                IncomingTarget::Existing { .. } => None,
            })
            .collect();
        for (user, (step, at)) in assignee_loads(batch) {
            change_load(conn, user, step, Some(at)).await?;
        }
        let rows = new.iter().zip(batch).map(|(t, n)| ticket_row(t, n.now)).collect();
        let insert = Statement::insert_rows("INSERT INTO ticket", TICKET_COLUMNS, rows);
        let mut ticket_ids = conn.load_ids(crate::sql::returning(insert, ticket::id_ticket)).await?;
        ticket_ids.sort_unstable();
        let rows = batch
            .iter()
            .zip(prepared)
            .zip(&ticket_ids)
            .map(|((n, p), t)| detail_row(Value::BigInt(*t), true, &n.detail, &p.headers, n.now))
            .collect();
        let insert = Statement::insert_rows("INSERT INTO detalle_ticket", DETAIL_COLUMNS, rows);
        let mut detail_ids = conn.load_ids(crate::sql::returning(insert, detalle_ticket::id_detalle_ticket)).await?;
        detail_ids.sort_unstable();
        if ticket_ids.len() != batch.len() || detail_ids.len() != batch.len() {
            return Err(diesel::result::Error::QueryBuilderError("fewer ids than rows inserted".into()));
        }
        let words: Vec<(String, i64)> = batch
            .iter()
            .zip(&ticket_ids)
            .flat_map(|(n, t)| message_words(&n.detail.subject, &n.detail.body).into_iter().map(|w| (w, *t)))
            .collect();
        index_rows(conn, &words).await?;
        let rows: Vec<Vec<Value<'_>>> = batch
            .iter()
            .zip(&detail_ids)
            .flat_map(|(n, d)| n.attachments.iter().map(|a| attachment_row(Value::BigInt(*d), a)))
            .collect();
        if !rows.is_empty() {
            conn.run(Statement::insert_rows("INSERT INTO adjunto_ticket", ATTACHMENT_COLUMNS, rows)).await?;
        }
        let rows: Vec<Vec<Value<'_>>> = prepared
            .iter()
            .zip(&ticket_ids)
            .flat_map(|(p, t)| p.participants.iter().map(|a| vec![Value::BigInt(*t), Value::Text(a)]))
            .collect();
        if !rows.is_empty() {
            conn.run(participant_insert::<C>(rows)).await?;
        }
        let rows: Vec<Vec<Value<'_>>> = batch
            .iter()
            .zip(ticket_ids.iter().zip(&detail_ids))
            .flat_map(|(n, (t, d))| {
                n.notices.iter().map(|nn| notice_row(Value::BigInt(*t), Value::BigInt(*d), nn, n.now, n.notices_due_at))
            })
            .collect();
        let mut notice_ids = if rows.is_empty() {
            Vec::new()
        } else {
            let insert = Statement::insert_rows("INSERT INTO notificacion", NOTICE_COLUMNS, rows);
            conn.load_ids(crate::sql::returning(insert, notificacion::id_notificacion)).await?
        };
        notice_ids.sort_unstable();
        let mut notice_ids = notice_ids.into_iter();
        let mut stored = Vec::with_capacity(batch.len());
        for (n, (ticket_id, detail_id)) in batch.iter().zip(ticket_ids.into_iter().zip(detail_ids)) {
            insert_events(conn, ticket_id, &n.events, n.now).await?;
            record_webhook_events(conn, ticket_id, Some(detail_id), &n.webhook_events, n.now).await?;
            let notice_ids = notice_ids.by_ref().take(n.notices.len()).collect();
            stored.push(StoredIncoming { ticket_id, detail_id, created_ticket: true, notice_ids });
        }
        let audit = audit_rows(batch.iter().filter_map(|n| n.audit.as_ref()));
        for statement in audit_inserts(&audit) {
            conn.run(keeping_the_outcome::<C>(statement)).await?;
        }
        Ok(stored)
    }
}

/// The notices counted for each of `recipients`, in their order, from the
/// counts a `GROUP BY destino` read: MySQL's collation ignores case, so it
/// may name a recipient in another case than asked (and group two
/// spellings together).
pub(super) fn sent_to(recipients: &[String], counts: &[(String, i64)]) -> Vec<i64> {
    recipients.iter().map(|r| counts.iter().filter(|(d, _)| d.eq_ignore_ascii_case(r)).map(|(_, n)| n).sum()).collect()
}

/// The addresses that may post into the ticket: trimmed, lower-case, each
/// once, none empty.
pub(super) fn participants(addresses: &[String]) -> Vec<String> {
    let mut participants: Vec<String> = addresses.iter().map(|p| p.trim().to_lowercase()).collect();
    participants.sort();
    participants.dedup();
    participants.retain(|p| !p.is_empty());
    participants
}

/// Opens a ticket with its clock: counts it in its assignee's load, inserts
/// it, gives its id.
#[expect(clippy::manual_async_fn, reason = "its future is Send by its bounds; see the note above")]
fn open_ticket<C: Dialect>(
    conn: &mut C,
    returning: bool,
    t: &NewTicket,
    now: Timestamp,
) -> impl Future<Output = QueryResult<i64>> + Send {
    async move {
        if let Some(assignee) = t.assignee_id {
            add_assignment(conn, assignee, now).await?;
        }
        let c = t.sla.as_ref();
        let insert = diesel::insert_into(ticket::table).values((
            ticket::asunto.eq(&t.subject),
            ticket::estado.eq(TicketStatus::Open.as_str()),
            ticket::fk_id_departamento.eq(t.department_id),
            ticket::fk_id_usuario_asignado.eq(t.assignee_id),
            ticket::solicitante.eq(&t.requester),
            ticket::fk_id_cuenta_correo.eq(t.mail_account_id),
            ticket::sistema.eq(&t.system),
            ticket::created_at.eq(now),
            ticket::updated_at.eq(now),
            ticket::fk_id_politica_sla.eq(c.map(|c| c.policy_id)),
            ticket::fk_id_calendario.eq(c.map(|c| c.calendar_id)),
            ticket::sla_inicio.eq(c.map(|c| c.started_at)),
            ticket::sla_pausa_seg.eq(c.map_or(0, |c| c.paused_secs)),
            ticket::sla_pausado_desde.eq(c.and_then(|c| c.paused_since)),
            ticket::vence_primera_respuesta.eq(c.map(|c| c.first_response_due)),
            ticket::aviso_primera_respuesta.eq(c.map(|c| c.first_response_warning)),
            ticket::primera_respuesta_en.eq(c.and_then(|c| c.first_response_at)),
            ticket::vence_resolucion.eq(c.map(|c| c.resolution_due)),
            ticket::aviso_resolucion.eq(c.map(|c| c.resolution_warning)),
            ticket::resuelto_en.eq(c.and_then(|c| c.resolved_at)),
            ticket::proximo_vencimiento.eq(c.and_then(SlaClock::next_due)),
        ));
        conn.insert_id(returning, insert, ticket::id_ticket).await
    }
}

/// One more open ticket in the assignee's load, assigned now.
async fn add_assignment<C: Dialect>(conn: &mut C, assignee: i64, now: Timestamp) -> QueryResult<()> {
    change_load(conn, assignee, 1, Some(now)).await
}

/// Adds `step` open tickets to the user's load, and sets their last
/// assignment when `assigned_at` is given, in a random slot: concurrent
/// tickets for one operator seldom touch the same row.
pub(super) async fn change_load<C: Dialect>(
    conn: &mut C,
    user: i64,
    step: i64,
    assigned_at: Option<Timestamp>,
) -> QueryResult<()> {
    conn.run(load_change(conn.add_to_load(), user, step, assigned_at)).await?;
    Ok(())
}

/// The upsert behind [`change_load`] (`add_to_load`: the dialect's).
fn load_change(add_to_load: &str, user: i64, step: i64, assigned_at: Option<Timestamp>) -> Statement<'static> {
    let sql = format!(
        "INSERT INTO carga_operador (fk_id_usuario, ranura, tickets_abiertos, ultima_asignacion) VALUES (?, ?, ?, ?){add_to_load}"
    );
    let values =
        vec![Value::BigInt(user), Value::Int(load_slot()), Value::BigInt(step), Value::OptTimestamp(assigned_at)];
    Statement::new(sql, values)
}

/// Moves on the ticket a mail or reply continues (reopened when asked, its
/// clock written when given); `RepoError::NotFound` when there is no such
/// ticket.
pub(super) async fn continue_ticket<C: Dialect>(
    conn: &mut C,
    ticket_id: i64,
    reopen: bool,
    sla: Option<&SlaClock>,
    now: Timestamp,
) -> Result<(), TxError> {
    let found = if reopen {
        conn.set_status(ticket_id, TicketStatus::Open, now).await?
    } else {
        conn.run(diesel::update(ticket::table.find(ticket_id)).set(ticket::updated_at.eq(now))).await? == 1
    };
    if !found {
        return Err(RepoError::NotFound.into());
    }
    if let Some(clock) = sla {
        write_clock(conn, ticket_id, clock).await?;
    }
    Ok(())
}

/// Inserts the mail as a detail of its ticket (`headers`: its headers as
/// JSON) and gives its id.
#[expect(clippy::manual_async_fn, reason = "its future is Send by its bounds; see the note above")]
pub(super) fn insert_detail<C: Dialect>(
    conn: &mut C,
    returning: bool,
    ticket_id: i64,
    created_ticket: bool,
    d: &NewTicketDetail,
    headers: &str,
    now: Timestamp,
) -> impl Future<Output = QueryResult<i64>> + Send {
    async move {
        let insert = diesel::insert_into(detalle_ticket::table).values((
            detalle_ticket::fk_id_ticket.eq(ticket_id),
            detalle_ticket::clave_dedupe.eq(&d.dedupe_key),
            detalle_ticket::message_id.eq(&d.message_id),
            detalle_ticket::message_id_hash.eq(&d.message_id_hash),
            detalle_ticket::remitente.eq(&d.from),
            detalle_ticket::destinatario.eq(&d.to),
            detalle_ticket::cc.eq(&d.cc),
            detalle_ticket::bcc.eq(&d.bcc),
            detalle_ticket::reply_to.eq(&d.reply_to),
            detalle_ticket::asunto.eq(&d.subject),
            detalle_ticket::cuerpo.eq(&d.body),
            detalle_ticket::html.eq(&d.html),
            detalle_ticket::fecha.eq(d.date),
            detalle_ticket::headers.eq(headers),
            detalle_ticket::automatico.eq(d.automatic),
            detalle_ticket::nuevo_ticket.eq(created_ticket),
            detalle_ticket::created_at.eq(now),
            detalle_ticket::direccion.eq(d.direction.as_str()),
            detalle_ticket::fk_id_usuario_autor.eq(d.author_id),
        ));
        conn.insert_id(returning, insert, detalle_ticket::id_detalle_ticket).await
    }
}

const ATTACHMENT_COLUMNS: &[&str] = &["fk_id_detalle_ticket", "nombre", "ruta", "tipo"];

fn attachment_row<'a>(detail: Value<'a>, a: &'a NewAttachment) -> Vec<Value<'a>> {
    vec![detail, Value::Text(&a.name), Value::Text(&a.route), Value::Text(&a.mime_type)]
}

/// One row per attachment of the detail.
async fn insert_attachments<C: Dialect>(
    conn: &mut C,
    detail_id: i64,
    attachments: &[NewAttachment],
) -> QueryResult<()> {
    for a in attachments {
        let insert = diesel::insert_into(adjunto_ticket::table).values((
            adjunto_ticket::fk_id_detalle_ticket.eq(detail_id),
            adjunto_ticket::nombre.eq(&a.name),
            adjunto_ticket::ruta.eq(&a.route),
            adjunto_ticket::tipo.eq(&a.mime_type),
        ));
        conn.run(insert).await?;
    }
    Ok(())
}

/// All participants in one statement; one already known is skipped (the
/// primary key).
pub(super) async fn add_participants<C: Dialect>(
    conn: &mut C,
    ticket_id: i64,
    participants: &[String],
) -> QueryResult<()> {
    if participants.is_empty() {
        return Ok(());
    }
    let rows = participants.iter().map(|p| vec![Value::BigInt(ticket_id), Value::Text(p)]).collect();
    conn.run(participant_insert::<C>(rows)).await?;
    Ok(())
}

/// The insert of (ticket, address) rows; one already there is skipped (the
/// primary key).
fn participant_insert<C: Dialect>(rows: Vec<Vec<Value<'_>>>) -> Statement<'_> {
    let head = format!("{} INTO participante_ticket", C::INSERT_IGNORE);
    Statement::insert_rows(&head, &["fk_id_ticket", "correo"], rows)
}

/// The columns of a new notice, in the order of its values.
const NOTICE_COLUMNS: &[&str] =
    &["fk_id_ticket", "fk_id_detalle_ticket", "tipo", "destino", "estado", "intentos", "proximo_intento", "created_at"];

/// The insert of notices of one detail, all in one statement (`due`: when
/// they may first be attempted).
pub(super) fn notice_insert<'a>(
    ticket_id: i64,
    detail_id: i64,
    notices: &'a [NewNotice],
    now: Timestamp,
    due: Timestamp,
) -> Statement<'a> {
    let rows =
        notices.iter().map(|nn| notice_row(Value::BigInt(ticket_id), Value::BigInt(detail_id), nn, now, due)).collect();
    Statement::insert_rows("INSERT INTO notificacion", NOTICE_COLUMNS, rows)
}

/// A new notice's values, in the order of [`NOTICE_COLUMNS`].
fn notice_row<'a>(
    ticket: Value<'a>,
    detail: Value<'a>,
    nn: &'a NewNotice,
    now: Timestamp,
    due: Timestamp,
) -> Vec<Value<'a>> {
    vec![
        ticket,
        detail,
        Value::Text(nn.kind.as_str()),
        Value::Text(&nn.recipient),
        Value::Text(NoticeStatus::Pending.as_str()),
        Value::Int(0),
        Value::Timestamp(due),
        Value::Timestamp(now),
    ]
}

/// Puts the notices of a new detail in the outbox, all in one statement, and
/// gives their ids in the order of `notices`: returned by the insert
/// (SQLite, MariaDB) or read after it (MySQL; the detail is new, so its
/// notices are exactly these).
#[expect(clippy::manual_async_fn, reason = "its future is Send by its bounds; see the note above")]
pub(super) fn queue_notices<C: Dialect>(
    conn: &mut C,
    returning: bool,
    ticket_id: i64,
    detail_id: i64,
    notices: &[NewNotice],
    now: Timestamp,
    due: Timestamp,
) -> impl Future<Output = QueryResult<Vec<i64>>> + Send {
    async move {
        if notices.is_empty() {
            return Ok(Vec::new());
        }
        let insert = notice_insert(ticket_id, detail_id, notices, now, due);
        let mut ids = if returning {
            conn.load_ids(crate::sql::returning(insert, notificacion::id_notificacion)).await?
        } else {
            conn.run(insert).await?;
            let of_detail = notificacion::table
                .filter(notificacion::fk_id_detalle_ticket.eq(detail_id))
                .select(notificacion::id_notificacion);
            conn.load_ids(of_detail).await?
        };
        // In the order of `notices` (ids increase row by row).
        ids.sort_unstable();
        Ok(ids)
    }
}

/// The notices, due `now`, attached to the ticket's latest message, all
/// in one statement; their ids in the order of `notices`: returned by the
/// insert where the store has `RETURNING`, else one insert each, each
/// followed by its id (the latest message may carry other notices).
#[expect(clippy::manual_async_fn, reason = "its future is Send by its bounds; see the note in tickets.rs")]
pub(super) fn notices_on_latest<C: Dialect>(
    conn: &mut C,
    returning: bool,
    ticket_id: i64,
    notices: &[NewNotice],
    now: Timestamp,
) -> impl Future<Output = QueryResult<Vec<i64>>> + Send {
    async move {
        if notices.is_empty() {
            return Ok(Vec::new());
        }
        let latest = detalle_ticket::table
            .filter(detalle_ticket::fk_id_ticket.eq(ticket_id))
            .order(detalle_ticket::id_detalle_ticket.desc())
            .select(detalle_ticket::id_detalle_ticket)
            .limit(1);
        let detail_id = conn.get_id(latest).await?;
        if returning {
            let insert = notice_insert(ticket_id, detail_id, notices, now, now);
            let mut ids = conn.load_ids(crate::sql::returning(insert, notificacion::id_notificacion)).await?;
            ids.sort_unstable();
            return Ok(ids);
        }
        let mut ids = Vec::with_capacity(notices.len());
        for one in notices.chunks(1) {
            conn.run(notice_insert(ticket_id, detail_id, one, now, now)).await?;
            ids.push(conn.last_insert_id().await?);
        }
        Ok(ids)
    }
}

/// The columns of an event, in the order of its values.
const EVENT_COLUMNS: &[&str] = &["fk_id_ticket", "fk_id_usuario", "tipo", "valor_anterior", "valor_nuevo", "fecha"];

/// The events, all in one statement.
pub(crate) async fn insert_events<C: Dialect>(
    conn: &mut C,
    ticket_id: i64,
    events: &[NewTicketEvent],
    now: Timestamp,
) -> QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    conn.run(event_insert(Value::BigInt(ticket_id), events, now)).await?;
    Ok(())
}

/// The insert of a ticket's events, all in one statement.
fn event_insert<'a>(ticket: Value<'a>, events: &'a [NewTicketEvent], now: Timestamp) -> Statement<'a> {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                ticket,
                Value::OptBigInt(e.actor_id),
                Value::Text(e.kind.as_str()),
                Value::OptText(e.before.as_deref()),
                Value::OptText(e.after.as_deref()),
                Value::Timestamp(now),
            ]
        })
        .collect();
    Statement::insert_rows("INSERT INTO evento_ticket", EVENT_COLUMNS, rows)
}

/// The clock's columns of `ticket` become `c`'s, in the caller's
/// transaction, but for a first response already stored, which is kept
/// (and `proximo_vencimiento`, [`SlaClock::next_due`], follows the clock
/// as stored). `false` when there is no such ticket.
pub(super) async fn write_clock<C: Dialect>(conn: &mut C, ticket_id: i64, c: &SlaClock) -> QueryResult<bool> {
    // The nearest due time with the first response still to come, and met.
    let unanswered = SlaClock { first_response_at: None, ..*c }.next_due();
    let answered = SlaClock { first_response_at: Some(c.started_at), ..*c }.next_due();
    // `proximo_vencimiento` reads `primera_respuesta_en` before it is set
    // (SQLite reads the old values, MySQL assigns from left to right): the
    // same either way, as the value set is the one read or the one given.
    let sql = "UPDATE ticket SET fk_id_politica_sla = ?, fk_id_calendario = ?, sla_inicio = ?, sla_pausa_seg = ?, \
               sla_pausado_desde = ?, vence_primera_respuesta = ?, aviso_primera_respuesta = ?, \
               vence_resolucion = ?, aviso_resolucion = ?, resuelto_en = ?, \
               proximo_vencimiento = CASE WHEN COALESCE(primera_respuesta_en, ?) IS NULL THEN ? ELSE ? END, \
               primera_respuesta_en = COALESCE(primera_respuesta_en, ?) \
               WHERE id_ticket = ?";
    let values = vec![
        Value::BigInt(c.policy_id),
        Value::BigInt(c.calendar_id),
        Value::Timestamp(c.started_at),
        Value::BigInt(c.paused_secs),
        Value::OptTimestamp(c.paused_since),
        Value::Timestamp(c.first_response_due),
        Value::Timestamp(c.first_response_warning),
        Value::Timestamp(c.resolution_due),
        Value::Timestamp(c.resolution_warning),
        Value::OptTimestamp(c.resolved_at),
        Value::OptTimestamp(c.first_response_at),
        Value::OptTimestamp(unanswered),
        Value::OptTimestamp(answered),
        Value::OptTimestamp(c.first_response_at),
        Value::BigInt(ticket_id),
    ];
    Ok(conn.run(Statement::new(sql, values)).await? == 1)
}

/// An operator's open tickets, summed over its load slots. `CAST(.. AS
/// SIGNED)`: MySQL sums to DECIMAL (SQLite reads the type as NUMERIC, an
/// integer here).
const OPEN_TICKETS: &str = "CAST(COALESCE(SUM(c.tickets_abiertos), 0) AS SIGNED)";
/// An operator's last assignment, over its load slots.
const LAST_ASSIGNED: &str = "MAX(c.ultima_asignacion)";

/// `(SELECT <aggregate> FROM carga_operador c WHERE c.fk_id_usuario =
/// usuario.id_usuario)`: a subquery on `carga_operador`'s primary key for
/// each operator listed. Its own type so that the query is kept prepared
/// (diesel's `sql` literal is prepared and closed at every call).
struct SlotsOf<ST> {
    aggregate: &'static str,
    sql_type: std::marker::PhantomData<ST>,
}

impl<ST> SlotsOf<ST> {
    fn new(aggregate: &'static str) -> Self {
        Self { aggregate, sql_type: std::marker::PhantomData }
    }
}

impl<ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType> diesel::Expression for SlotsOf<ST> {
    type SqlType = ST;
}

impl<ST, QS> diesel::AppearsOnTable<QS> for SlotsOf<ST>
where
    Self: diesel::Expression,
    usuario::id_usuario: diesel::AppearsOnTable<QS>,
{
}

impl<ST, QS> diesel::SelectableExpression<QS> for SlotsOf<ST>
where
    Self: diesel::Expression,
    usuario::id_usuario: diesel::SelectableExpression<QS>,
{
}

impl<ST, GB> diesel::expression::ValidGrouping<GB> for SlotsOf<ST> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl<ST> diesel::query_builder::QueryId for SlotsOf<ST> {
    type QueryId = ();
    // No static id: the statement cache keys the query by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST, DB: diesel::backend::Backend> diesel::query_builder::QueryFragment<DB> for SlotsOf<ST> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("(SELECT ");
        out.push_sql(self.aggregate);
        out.push_sql(" FROM carga_operador c WHERE c.fk_id_usuario = usuario.id_usuario)");
        Ok(())
    }
}
