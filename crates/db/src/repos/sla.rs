//! Service levels: calendars and holidays, policies, the clock's columns of
//! `ticket` (written by the ticket transactions with [`write_clock`], the
//! list filtered by [`SlaIs`]), the escalation claims (`escalado_sla`) and
//! the counts per state.
//!
//! The state of a clock ([`SlaClock::state`]) is said once in SQL, below
//! (`breached!`, `at_risk!`), with the instant it is judged at bound to
//! every `?`; the list's filter and the counts use the same words.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use chrono::NaiveDate;
use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Text};
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use super::tickets::notices_on_latest;
use crate::dialect::Dialect;
use crate::error::{OrRepo, TxError, is_missing_reference, is_unique_violation};
use crate::models::*;
use crate::schema::*;
use crate::sql::{Statement, Value};
use crate::{Db, db_run, db_transaction};

// The clock's state in SQL, as `SlaClock::state` says it: a target missed
// (the first response after its due time, or none by the time the clock
// stopped or by now; the clock stopped, or now, past the resolution's due
// time) is `vencido` for good; else `cumplido` once resolved, `pausado`
// while stopped, `por_vencer` past a warning, `en_tiempo`. Each `?` is now.

/// A target was missed (two `?`).
macro_rules! breached {
    () => {
        "(ticket.vence_primera_respuesta < COALESCE(ticket.primera_respuesta_en, ticket.sla_pausado_desde, ?) \
         OR ticket.vence_resolucion < COALESCE(ticket.sla_pausado_desde, ?))"
    };
}

/// Past a warning (two `?`): the first response's while unanswered, or
/// the resolution's.
macro_rules! at_risk {
    () => {
        "((ticket.primera_respuesta_en IS NULL AND ticket.aviso_primera_respuesta <= ?) \
         OR ticket.aviso_resolucion <= ?)"
    };
}

/// The ticket has a clock.
macro_rules! clocked {
    () => {
        "ticket.fk_id_politica_sla IS NOT NULL"
    };
}

/// The condition on `ticket` of each state.
fn state_condition(state: SlaState) -> &'static str {
    match state {
        SlaState::Breached => concat!("(", clocked!(), " AND ", breached!(), ")"),
        SlaState::Met => concat!("(", clocked!(), " AND NOT ", breached!(), " AND ticket.resuelto_en IS NOT NULL)"),
        SlaState::Paused => concat!(
            "(",
            clocked!(),
            " AND NOT ",
            breached!(),
            " AND ticket.resuelto_en IS NULL AND ticket.sla_pausado_desde IS NOT NULL)"
        ),
        SlaState::AtRisk => concat!(
            "(",
            clocked!(),
            " AND NOT ",
            breached!(),
            " AND ticket.resuelto_en IS NULL AND ticket.sla_pausado_desde IS NULL AND ",
            at_risk!(),
            ")"
        ),
        SlaState::OnTime => concat!(
            "(",
            clocked!(),
            " AND NOT ",
            breached!(),
            " AND ticket.resuelto_en IS NULL AND ticket.sla_pausado_desde IS NULL AND NOT ",
            at_risk!(),
            ")"
        ),
    }
}

/// Tickets with a clock per state (the names of `SlaState::as_str`).
const COUNTS: &str = concat!(
    "SELECT estado_sla, COUNT(*) FROM (SELECT CASE WHEN ",
    breached!(),
    " THEN 'vencido' WHEN ticket.resuelto_en IS NOT NULL THEN 'cumplido' \
     WHEN ticket.sla_pausado_desde IS NOT NULL THEN 'pausado' WHEN ",
    at_risk!(),
    " THEN 'por_vencer' ELSE 'en_tiempo' END AS estado_sla FROM ticket WHERE ",
    clocked!(),
    ") clocks GROUP BY estado_sla"
);

/// Writes `sql` with `now` bound to each of its `?`.
fn walk_now<'b, DB>(sql: &str, now: &'b Timestamp, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>
where
    DB: Backend + HasSqlType<diesel::sql_types::Timestamp>,
    Timestamp: ToSql<diesel::sql_types::Timestamp, DB>,
{
    let mut parts = sql.split('?');
    out.push_sql(parts.next().unwrap_or_default());
    for part in parts {
        out.push_bind_param::<diesel::sql_types::Timestamp, _>(now)?;
        out.push_sql(part);
    }
    Ok(())
}

/// A condition on `ticket`: its clock is in this state at `now`
/// ([`SlaClock::state`]); a ticket without a clock never is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlaIs {
    sql: &'static str,
    now: Timestamp,
}

impl SlaIs {
    pub(crate) fn new(state: SlaState, now: Timestamp) -> Self {
        SlaIs { sql: state_condition(state), now }
    }
}

impl Expression for SlaIs {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for SlaIs where ticket::id_ticket: AppearsOnTable<QS> {}

impl<QS> SelectableExpression<QS> for SlaIs where ticket::id_ticket: SelectableExpression<QS> {}

impl<GB> ValidGrouping<GB> for SlaIs {
    type IsAggregate = is_aggregate::Never;
}

// No static id: the statement cache keys it by its text (one per state).
impl QueryId for SlaIs {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for SlaIs
where
    DB: Backend + HasSqlType<diesel::sql_types::Timestamp>,
    Timestamp: ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        walk_now(self.sql, &self.now, &mut out)
    }
}

/// A whole query whose every `?` is `now`, with rows of `ST`.
struct NowQuery<ST> {
    sql: &'static str,
    now: Timestamp,
    rows: PhantomData<ST>,
}

impl<ST> NowQuery<ST> {
    fn new(sql: &'static str, now: Timestamp) -> Self {
        NowQuery { sql, now, rows: PhantomData }
    }
}

impl<ST: 'static> QueryId for NowQuery<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> Query for NowQuery<ST> {
    type SqlType = ST;
}

impl<ST, DB> QueryFragment<DB> for NowQuery<ST>
where
    DB: Backend + HasSqlType<diesel::sql_types::Timestamp>,
    Timestamp: ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        walk_now(self.sql, &self.now, &mut out)
    }
}

/// The instant a clock crosses a threshold.
fn crossing_time(c: &SlaClock, threshold: SlaThreshold) -> Timestamp {
    match threshold {
        SlaThreshold::FirstResponseWarning => c.first_response_warning,
        SlaThreshold::FirstResponseBreach => c.first_response_due,
        SlaThreshold::ResolutionWarning => c.resolution_warning,
        SlaThreshold::ResolutionBreach => c.resolution_due,
    }
}

/// The policy's minutes as stored (`INT`).
fn minutes(value: i64, what: &str) -> Result<i32, RepoError> {
    i32::try_from(value).map_err(|_| RepoError::corrupt(format!("politica_sla.{what} {value} out of range")))
}

impl SlaRepository for Db {
    /// Four reads on one connection: calendars, holidays, policies, the
    /// departments' calendars.
    async fn sla_setup(&self) -> RepoResult<SlaSetup> {
        let (calendars, holidays, policies, departments) = db_run!(self, |conn| {
            let calendars: Vec<CalendarRow> = calendario_laboral::table
                .order(calendario_laboral::id_calendario)
                .select(CalendarRow::as_select())
                .load(conn)
                .await
                .or_repo()?;
            let holidays: Vec<(i64, NaiveDate)> =
                feriado::table.select((feriado::fk_id_calendario, feriado::fecha)).load(conn).await.or_repo()?;
            let policies: Vec<PolicyRow> = politica_sla::table
                .order(politica_sla::id_politica)
                .select(PolicyRow::as_select())
                .load(conn)
                .await
                .or_repo()?;
            let departments: Vec<(i64, Option<i64>)> = departamento::table
                .filter(departamento::fk_id_calendario.is_not_null())
                .order(departamento::id_departamento)
                .select((departamento::id_departamento, departamento::fk_id_calendario))
                .load(conn)
                .await
                .or_repo()?;
            Ok((calendars, holidays, policies, departments))
        })?;
        let mut by_calendar: BTreeMap<i64, BTreeSet<NaiveDate>> = BTreeMap::new();
        for (calendar, date) in holidays {
            by_calendar.entry(calendar).or_default().insert(date);
        }
        Ok(SlaSetup {
            policies: policies.into_iter().map(SlaPolicy::try_from).collect::<Result<_, _>>()?,
            calendars: calendars
                .into_iter()
                .map(|c| {
                    let holidays = by_calendar.remove(&c.id_calendario).unwrap_or_default();
                    c.into_domain(holidays)
                })
                .collect::<Result<_, _>>()?,
            department_calendars: departments.into_iter().filter_map(|(d, c)| Some((d, c?))).collect(),
        })
    }

    /// An upsert by name, then its id read back.
    async fn save_calendar(&self, new: NewCalendar) -> RepoResult<i64> {
        // The caller checked them; a store never keeps what it cannot read.
        parse_zone(&new.zone).map_err(RepoError::unexpected)?;
        WeeklyHours::parse(&new.hours).map_err(RepoError::unexpected)?;
        db_transaction!(self, |conn| {
            let sql = format!(
                "INSERT INTO calendario_laboral (nombre, zona_horaria, horario) VALUES (?, ?, ?){}",
                conn.on_conflict_update("nombre", &["zona_horaria", "horario"])
            );
            let values = vec![Value::Text(&new.name), Value::Text(&new.zone), Value::Text(&new.hours)];
            conn.run(Statement::new(sql, values)).await?;
            let id = calendario_laboral::table
                .filter(calendario_laboral::nombre.eq(&new.name))
                .select(calendario_laboral::id_calendario)
                .first(conn)
                .await?;
            Ok(id)
        })
    }

    async fn set_holiday(&self, calendar_id: i64, date: NaiveDate, on: bool) -> RepoResult<()> {
        db_transaction!(self, |conn| {
            let known: i64 = calendario_laboral::table.find(calendar_id).count().get_result(conn).await?;
            if known == 0 {
                return Err(RepoError::NotFound.into());
            }
            if on {
                diesel::insert_or_ignore_into(feriado::table)
                    .values((feriado::fk_id_calendario.eq(calendar_id), feriado::fecha.eq(date)))
                    .execute(conn)
                    .await?;
            } else {
                diesel::delete(feriado::table.find((calendar_id, date))).execute(conn).await?;
            }
            Ok(())
        })
    }

    async fn set_department_calendar(&self, department_id: i64, calendar_id: Option<i64>) -> RepoResult<()> {
        db_transaction!(self, |conn| {
            if let Some(calendar) = calendar_id {
                let known: i64 = calendario_laboral::table.find(calendar).count().get_result(conn).await?;
                if known == 0 {
                    return Err(RepoError::NotFound.into());
                }
            }
            let n = diesel::update(departamento::table.find(department_id))
                .set(departamento::fk_id_calendario.eq(calendar_id))
                .execute(conn)
                .await?;
            if n == 0 { Err(RepoError::NotFound.into()) } else { Ok(()) }
        })
    }

    /// An upsert on `(alcance, prioridad)` (`alcance`: the department, or 0
    /// for the default policy), then the row read back. An unknown
    /// department is refused by its foreign key.
    async fn save_policy(&self, new: NewSlaPolicy) -> RepoResult<SlaPolicy> {
        let first = minutes(new.first_response_mins, "primera_respuesta_min")?;
        let resolution = minutes(new.resolution_mins, "resolucion_min")?;
        let warning = new.warning_pct.map(|p| minutes(p, "aviso_pct")).transpose()?;
        let scope = new.department_id.unwrap_or(0);
        let row: PolicyRow = db_transaction!(self, |conn| {
            let sql = format!(
                "INSERT INTO politica_sla (fk_id_departamento, alcance, prioridad, primera_respuesta_min, \
                 resolucion_min, aviso_pct) VALUES (?, ?, ?, ?, ?, ?){}",
                conn.on_conflict_update(
                    "alcance, prioridad",
                    &["primera_respuesta_min", "resolucion_min", "aviso_pct"]
                )
            );
            let values = vec![
                Value::OptBigInt(new.department_id),
                Value::BigInt(scope),
                Value::Text(new.priority.as_str()),
                Value::Int(first),
                Value::Int(resolution),
                Value::OptInt(warning),
            ];
            conn.run(Statement::new(sql, values)).await?;
            Ok(politica_sla::table
                .filter(politica_sla::alcance.eq(scope))
                .filter(politica_sla::prioridad.eq(new.priority.as_str()))
                .select(PolicyRow::as_select())
                .first(conn)
                .await?)
        })?;
        row.try_into()
    }

    async fn remove_policy(&self, id: i64) -> RepoResult<bool> {
        let n = db_run!(self, |conn| diesel::delete(politica_sla::table.find(id)).execute(conn).await.or_repo())?;
        Ok(n > 0)
    }

    /// One statement, four parts (one per threshold), each an ordered
    /// range of its index (`ix_ticket_sla_aviso_primera`,
    /// `ix_ticket_sla_vence_primera`, `ix_ticket_sla_aviso_resolucion`,
    /// `ix_ticket_sla_vence_resolucion`: running clocks, `sla_pausado_desde`
    /// NULL, past the point, in the order they crossed it) read until
    /// `limit` unclaimed ones, the claimed left out by a lookup of
    /// `escalado_sla`'s key (an anti-join). Merged here, earliest crossing
    /// first.
    async fn sla_crossings(&self, now: Timestamp, limit: i64) -> RepoResult<Vec<(Ticket, SlaThreshold)>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(TicketRow, String)> = db_run!(self, |conn| {
            macro_rules! crossing {
                ($threshold:expr, $at:expr $(, $condition:expr)*) => {{
                    let claim = escalado_sla::fk_id_ticket
                        .eq(ticket::id_ticket)
                        .and(escalado_sla::umbral.eq($threshold.as_str()));
                    ticket::table
                        .left_join(escalado_sla::table.on(claim))
                        .filter(ticket::sla_pausado_desde.is_null())
                        $(.filter($condition))*
                        .filter($at.le(now))
                        .filter(escalado_sla::fk_id_ticket.nullable().is_null())
                        .order(($at, ticket::id_ticket))
                        .limit(limit)
                        .select((
                            TicketRow::as_select(),
                            diesel::dsl::sql::<Text>(&format!("'{}' AS umbral_cruzado", $threshold.as_str())),
                        ))
                        .into_boxed()
                }};
            }
            let unanswered = ticket::primera_respuesta_en.is_null();
            let first_warning =
                crossing!(SlaThreshold::FirstResponseWarning, ticket::aviso_primera_respuesta, unanswered);
            let first_breach =
                crossing!(SlaThreshold::FirstResponseBreach, ticket::vence_primera_respuesta, unanswered);
            let resolution_warning = crossing!(SlaThreshold::ResolutionWarning, ticket::aviso_resolucion);
            let resolution_breach = crossing!(SlaThreshold::ResolutionBreach, ticket::vence_resolucion);
            first_warning
                .union_all(first_breach)
                .union_all(resolution_warning)
                .union_all(resolution_breach)
                .load(conn)
                .await
                .or_repo()
        })?;
        let mut found = Vec::with_capacity(rows.len());
        for (row, name) in rows {
            let threshold =
                SlaThreshold::parse(&name).ok_or_else(|| RepoError::corrupt(format!("unknown threshold {name:?}")))?;
            let ticket = Ticket::try_from(row)?;
            let clock = ticket.sla.ok_or_else(|| RepoError::corrupt("a crossing without a clock"))?;
            found.push((crossing_time(&clock, threshold), ticket, threshold));
        }
        found.sort_by_key(|(at, t, threshold)| (*at, t.id, *threshold));
        found.truncate(limit as usize);
        Ok(found.into_iter().map(|(_, t, threshold)| (t, threshold)).collect())
    }

    /// One transaction: the claim first (its key refuses a second one,
    /// from any process: then nothing is written), then the notices.
    async fn escalate(
        &self,
        ticket_id: i64,
        threshold: SlaThreshold,
        notices: Vec<NewNotice>,
        now: Timestamp,
    ) -> RepoResult<Option<Vec<i64>>> {
        let returning = self.returning();
        db_transaction!(self, |conn| {
            let claim = Statement::new(
                "INSERT INTO escalado_sla (fk_id_ticket, umbral, fecha) VALUES (?, ?, ?)",
                vec![Value::BigInt(ticket_id), Value::Text(threshold.as_str()), Value::Timestamp(now)],
            );
            match conn.run(claim).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(None),
                Err(e) if is_missing_reference(&e) => return Err(RepoError::NotFound.into()),
                Err(e) => return Err(e.into()),
            }
            let ids = notices_on_latest(conn, returning, ticket_id, &notices, now).await?;
            Ok::<_, TxError>(Some(ids))
        })
    }

    async fn sla_counts(&self, now: Timestamp) -> RepoResult<Vec<(SlaState, i64)>> {
        let rows: Vec<(String, i64)> =
            db_run!(self, |conn| NowQuery::<(Text, BigInt)>::new(COUNTS, now).load(conn).await.or_repo())?;
        let mut counts = rows
            .into_iter()
            .map(|(name, n)| {
                let state = SlaState::parse(&name)
                    .ok_or_else(|| RepoError::corrupt(format!("unknown service-level state {name:?}")))?;
                Ok((state, n))
            })
            .collect::<RepoResult<Vec<_>>>()?;
        counts.sort();
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_named_and_every_condition_binds_now() {
        for state in SlaState::ALL {
            assert!(COUNTS.contains(&format!("'{}'", state.as_str())), "{state:?}");
            let binds = state_condition(state).matches('?').count();
            assert!(binds == 2 || binds == 4, "{state:?}: {binds}");
        }
        assert_eq!(COUNTS.matches('?').count(), 4);
    }
}
