//! Service levels: business-hours calendars, policies per department and
//! priority, and the clock each ticket carries (due times, pauses, first
//! response, resolution). Pure arithmetic: no store, no wall clock.
//!
//! The rules (docs/decisions.md, "Service levels"):
//! - Targets are counted in business time: the opening hours of the
//!   department's calendar, in its time zone, minus its holidays.
//! - A ticket's clock starts when it opens; while it waits on the customer
//!   (`pendiente`) or is closed the clock stands still, and the time it stood
//!   still (in business time) pushes both due times back when it runs again.
//! - A change of priority or department recomputes the due times from the
//!   same start with the new policy.
//! - The state: `vencido` once a target was missed (it stays so), else
//!   `cumplido` once resolved, `pausado` while stopped, `por_vencer` past a
//!   warning threshold, else `en_tiempo`.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

use super::{Priority, TicketStatus, Timestamp};

/// The zone of a calendar nobody configured.
pub const DEFAULT_ZONE: &str = "America/Costa_Rica";
/// The calendar every department without its own uses; the migrations
/// create it (Monday to Friday, 08:00–17:00, [`DEFAULT_ZONE`]).
pub const DEFAULT_CALENDAR: &str = "general";
/// Its opening hours.
pub const DEFAULT_HOURS: &str = "lun-vie 08:00-17:00";
/// How far ahead a due time is looked for (a calendar with almost no
/// opening hours ends there rather than looping for ever).
const HORIZON_DAYS: i64 = 3 * 366;

const DAY_NAMES: [&str; 7] = ["lun", "mar", "mie", "jue", "vie", "sab", "dom"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaSetupError {
    #[error("unknown time zone {0:?} (an IANA name such as America/Costa_Rica)")]
    UnknownZone(String),
    #[error("opening hours {0:?}: {1}")]
    Hours(String, &'static str),
    #[error("a target must be at least one minute")]
    Target,
    #[error("the warning threshold is a percentage between 1 and 99")]
    Warning,
}

/// Opening hours for each day of the week (Monday first), each day a list
/// of `[start, end)` ranges in local time. Written as
/// `lun-vie 08:00-12:00 13:00-17:00; sab 08:00-12:00` (`24:00` ends a day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyHours {
    /// Seconds from local midnight.
    days: [Vec<(u32, u32)>; 7],
}

impl WeeklyHours {
    pub fn parse(text: &str) -> Result<Self, SlaSetupError> {
        let bad = |why| SlaSetupError::Hours(text.to_string(), why);
        let mut days: [Vec<(u32, u32)>; 7] = Default::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let mut words = part.split_whitespace();
            let which = words.next().ok_or(bad("a day is missing"))?;
            let day = |name: &str| {
                DAY_NAMES.iter().position(|d| *d == name).ok_or(bad("days are lun mar mie jue vie sab dom"))
            };
            let (first, last) = match which.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None => (day(which)?, day(which)?),
            };
            if first > last {
                return Err(bad("a range of days runs from Monday towards Sunday"));
            }
            let mut ranges = Vec::new();
            for range in words {
                let (a, b) = range.split_once('-').ok_or(bad("hours are written 08:00-17:00"))?;
                let (a, b) =
                    (clock_secs(a).ok_or(bad("a time is HH:MM"))?, clock_secs(b).ok_or(bad("a time is HH:MM"))?);
                if a >= b {
                    return Err(bad("a range ends after it starts"));
                }
                ranges.push((a, b));
            }
            if ranges.is_empty() {
                return Err(bad("a day needs its hours"));
            }
            for d in &mut days[first..=last] {
                d.extend(ranges.iter().copied());
            }
        }
        for d in &mut days {
            d.sort_unstable();
            if d.windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(bad("ranges of one day overlap"));
            }
        }
        if days.iter().all(Vec::is_empty) {
            return Err(bad("no opening hours at all"));
        }
        Ok(WeeklyHours { days })
    }

    fn of(&self, day: Weekday) -> &[(u32, u32)] {
        &self.days[day.num_days_from_monday() as usize]
    }
}

impl fmt::Display for WeeklyHours {
    /// One day per part, in the form [`WeeklyHours::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |s: u32| format!("{:02}:{:02}", s / 3600, s % 3600 / 60);
        let mut parts = Vec::new();
        for (name, ranges) in DAY_NAMES.iter().zip(&self.days) {
            if !ranges.is_empty() {
                let r: Vec<String> = ranges.iter().map(|(a, b)| format!("{}-{}", hm(*a), hm(*b))).collect();
                parts.push(format!("{name} {}", r.join(" ")));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

fn clock_secs(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 3600 + m * 60)
}

/// A business-hours calendar (`calendario_laboral` and its `feriado`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessCalendar {
    pub id: i64,
    pub name: String,
    pub zone: Tz,
    pub hours: WeeklyHours,
    pub holidays: BTreeSet<NaiveDate>,
}

/// A calendar as the admin writes it (replaced whole by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCalendar {
    pub name: String,
    pub zone: String,
    pub hours: String,
}

pub fn parse_zone(name: &str) -> Result<Tz, SlaSetupError> {
    name.parse::<Tz>().map_err(|_| SlaSetupError::UnknownZone(name.to_string()))
}

impl BusinessCalendar {
    /// The UTC instant of a local time; a time skipped by a daylight-saving
    /// change counts from the change, a repeated one from its first pass.
    fn instant(&self, local: NaiveDateTime) -> Timestamp {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.naive_utc(),
            LocalResult::Ambiguous(a, _) => a.naive_utc(),
            LocalResult::None => {
                // In a gap: the first valid local minute after it.
                let mut probe = local;
                for _ in 0..(4 * 60) {
                    probe += Duration::minutes(1);
                    if let Some(t) = self.zone.from_local_datetime(&probe).earliest() {
                        return t.naive_utc();
                    }
                }
                local
            }
        }
    }

    /// An instant as the calendar's people read it (`2026-12-01 09:00
    /// America/Costa_Rica`).
    pub fn local_text(&self, at: Timestamp) -> String {
        format!("{} {}", self.zone.from_utc_datetime(&at).format("%Y-%m-%d %H:%M"), self.zone.name())
    }

    /// The opening-hour intervals (UTC) from `start` on, in order, the first
    /// cut at `start`.
    fn intervals_from(&self, start: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let first_day = self.zone.from_utc_datetime(&start).date_naive();
        (0..HORIZON_DAYS)
            .map(move |n| first_day + Duration::days(n))
            .filter(|day| !self.holidays.contains(day))
            .flat_map(move |day| {
                self.hours.of(day.weekday()).iter().map(move |&(a, b)| {
                    let at = |secs: u32| {
                        let midnight = day.and_time(NaiveTime::MIN);
                        self.instant(midnight + Duration::seconds(secs as i64))
                    };
                    (at(a), at(b))
                })
            })
            .filter(move |(_, b)| *b > start)
            .map(move |(a, b)| (a.max(start), b))
    }

    /// The instant `business` of opening hours after `start` (at the next
    /// opening when `business` is zero and `start` is outside hours).
    pub fn add(&self, start: Timestamp, business: Duration) -> Timestamp {
        let mut left = business.max(Duration::zero());
        let mut last = start;
        for (a, b) in self.intervals_from(start) {
            if left <= b - a {
                return a + left;
            }
            left -= b - a;
            last = b;
        }
        last + left
    }

    /// The opening hours between two instants (zero when `to` is not after
    /// `from`).
    pub fn between(&self, from: Timestamp, to: Timestamp) -> Duration {
        let mut sum = Duration::zero();
        if to <= from {
            return sum;
        }
        for (a, b) in self.intervals_from(from) {
            if a >= to {
                break;
            }
            sum += b.min(to) - a;
        }
        sum
    }
}

/// Targets for tickets of one priority, in one department or (department
/// `None`) in every department without its own (`politica_sla`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaPolicy {
    pub id: i64,
    pub department_id: Option<i64>,
    pub priority: Priority,
    /// Business minutes to the first public reply.
    pub first_response_mins: i64,
    /// Business minutes to closing.
    pub resolution_mins: i64,
    /// Percentage of a target at which the assignee is warned.
    pub warning_pct: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSlaPolicy {
    pub department_id: Option<i64>,
    pub priority: Priority,
    pub first_response_mins: i64,
    pub resolution_mins: i64,
    pub warning_pct: Option<i64>,
}

impl NewSlaPolicy {
    pub fn check(&self) -> Result<(), SlaSetupError> {
        if self.first_response_mins < 1 || self.resolution_mins < 1 {
            return Err(SlaSetupError::Target);
        }
        if self.warning_pct.is_some_and(|p| !(1..=99).contains(&p)) {
            return Err(SlaSetupError::Warning);
        }
        Ok(())
    }
}

/// Everything the service levels are computed from: policies, calendars,
/// and which calendar each department keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlaSetup {
    pub policies: Vec<SlaPolicy>,
    pub calendars: Vec<BusinessCalendar>,
    /// `(department, calendar)`; departments not listed use
    /// [`DEFAULT_CALENDAR`].
    pub department_calendars: Vec<(i64, i64)>,
}

impl SlaSetup {
    /// The terms a ticket of this department and priority is held to, if
    /// any policy covers it.
    pub fn terms(&self, department_id: i64, priority: Priority) -> Option<SlaTerms<'_>> {
        let policy = self
            .policies
            .iter()
            .find(|p| p.department_id == Some(department_id) && p.priority == priority)
            .or_else(|| self.policies.iter().find(|p| p.department_id.is_none() && p.priority == priority))?;
        let calendar = self
            .department_calendars
            .iter()
            .find(|(d, _)| *d == department_id)
            .and_then(|(_, c)| self.calendars.iter().find(|cal| cal.id == *c))
            .or_else(|| self.calendars.iter().find(|c| c.name == DEFAULT_CALENDAR))?;
        Some(SlaTerms { policy, calendar })
    }

    /// The zone a department's people read times in: its calendar's, else
    /// the default calendar's, else [`DEFAULT_ZONE`].
    pub fn zone_of(&self, department_id: Option<i64>) -> Tz {
        let own = department_id.and_then(|d| self.department_calendars.iter().find(|(dep, _)| *dep == d));
        own.and_then(|(_, c)| self.calendar(*c))
            .or_else(|| self.calendars.iter().find(|c| c.name == DEFAULT_CALENDAR))
            .map(|c| c.zone)
            .unwrap_or(chrono_tz::America::Costa_Rica)
    }

    /// The calendar a clock was computed with (for its pauses).
    pub fn calendar(&self, id: i64) -> Option<&BusinessCalendar> {
        self.calendars.iter().find(|c| c.id == id)
    }
}

/// A policy with the calendar its time is counted in.
#[derive(Debug, Clone, Copy)]
pub struct SlaTerms<'a> {
    pub policy: &'a SlaPolicy,
    pub calendar: &'a BusinessCalendar,
}

/// A ticket's service-level clock (columns of `ticket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaClock {
    pub policy_id: i64,
    pub calendar_id: i64,
    /// When the clock started (the ticket opened).
    pub started_at: Timestamp,
    /// Business seconds the clock stood still, pushing the due times back.
    pub paused_secs: i64,
    /// Stopped since (waiting on the customer, or closed).
    pub paused_since: Option<Timestamp>,
    pub first_response_due: Timestamp,
    pub first_response_warning: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub resolution_due: Timestamp,
    pub resolution_warning: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

/// `en_tiempo`, `por_vencer`, `vencido`, `pausado`, `cumplido`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlaState {
    OnTime,
    AtRisk,
    Breached,
    Paused,
    Met,
}

impl SlaState {
    pub const ALL: [SlaState; 5] =
        [SlaState::OnTime, SlaState::AtRisk, SlaState::Breached, SlaState::Paused, SlaState::Met];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::OnTime => "en_tiempo",
            SlaState::AtRisk => "por_vencer",
            SlaState::Breached => "vencido",
            SlaState::Paused => "pausado",
            SlaState::Met => "cumplido",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which target a threshold belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlaTarget {
    FirstResponse,
    Resolution,
}

/// A point a ticket's clock crosses, announced once per ticket
/// (`escalado_sla`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlaThreshold {
    FirstResponseWarning,
    FirstResponseBreach,
    ResolutionWarning,
    ResolutionBreach,
}

impl SlaThreshold {
    pub const ALL: [SlaThreshold; 4] = [
        SlaThreshold::FirstResponseWarning,
        SlaThreshold::FirstResponseBreach,
        SlaThreshold::ResolutionWarning,
        SlaThreshold::ResolutionBreach,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaThreshold::FirstResponseWarning => "aviso_primera_respuesta",
            SlaThreshold::FirstResponseBreach => "vence_primera_respuesta",
            SlaThreshold::ResolutionWarning => "aviso_resolucion",
            SlaThreshold::ResolutionBreach => "vence_resolucion",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_breach(self) -> bool {
        matches!(self, SlaThreshold::FirstResponseBreach | SlaThreshold::ResolutionBreach)
    }

    pub fn target(self) -> SlaTarget {
        match self {
            SlaThreshold::FirstResponseWarning | SlaThreshold::FirstResponseBreach => SlaTarget::FirstResponse,
            SlaThreshold::ResolutionWarning | SlaThreshold::ResolutionBreach => SlaTarget::Resolution,
        }
    }

    /// The warning that goes before a breach (claimed silently when both
    /// were crossed at once).
    pub fn warning(self) -> Option<SlaThreshold> {
        match self {
            SlaThreshold::FirstResponseBreach => Some(SlaThreshold::FirstResponseWarning),
            SlaThreshold::ResolutionBreach => Some(SlaThreshold::ResolutionWarning),
            _ => None,
        }
    }
}

impl<'a> SlaTerms<'a> {
    /// The clock of a ticket opening at `now`.
    pub fn start(&self, now: Timestamp) -> SlaClock {
        let mut clock = SlaClock {
            policy_id: self.policy.id,
            calendar_id: self.calendar.id,
            started_at: now,
            paused_secs: 0,
            paused_since: None,
            first_response_due: now,
            first_response_warning: now,
            first_response_at: None,
            resolution_due: now,
            resolution_warning: now,
            resolved_at: None,
        };
        self.recompute(&mut clock);
        clock
    }

    /// The clock with this policy's due times (from the same start, the
    /// same pauses): a change of priority or department.
    pub fn apply(&self, clock: &SlaClock) -> SlaClock {
        let mut clock = *clock;
        clock.policy_id = self.policy.id;
        clock.calendar_id = self.calendar.id;
        self.recompute(&mut clock);
        clock
    }

    fn recompute(&self, clock: &mut SlaClock) {
        let at = |mins: i64, pct: i64| {
            let business = Duration::seconds(mins * 60 * pct / 100 + clock.paused_secs);
            self.calendar.add(clock.started_at, business)
        };
        let warn = self.policy.warning_pct.unwrap_or(100);
        clock.first_response_due = at(self.policy.first_response_mins, 100);
        clock.first_response_warning = at(self.policy.first_response_mins, warn);
        clock.resolution_due = at(self.policy.resolution_mins, 100);
        clock.resolution_warning = at(self.policy.resolution_mins, warn);
    }

    /// The clock after the ticket became `status` at `now`: stopped while
    /// not open (and resolved while closed), running again with its due
    /// times pushed back by the business time it stood still.
    pub fn on_status(&self, clock: &SlaClock, status: TicketStatus, now: Timestamp) -> SlaClock {
        let mut c = *clock;
        let running = status == TicketStatus::Open;
        match (c.paused_since, running) {
            (None, false) => c.paused_since = Some(now),
            (Some(since), true) => {
                c.paused_secs += self.calendar.between(since, now).num_seconds();
                c.paused_since = None;
                self.recompute(&mut c);
            }
            _ => {}
        }
        c.resolved_at = match status {
            TicketStatus::Closed => c.resolved_at.or(Some(now)),
            _ => None,
        };
        c
    }
}

impl SlaClock {
    /// The clock once an operator first answered in public.
    pub fn responded(&self, now: Timestamp) -> SlaClock {
        SlaClock { first_response_at: self.first_response_at.or(Some(now)), ..*self }
    }

    /// The nearest due time of a running clock (`None` while stopped): the
    /// first response's until it is met, then the resolution's.
    pub fn next_due(&self) -> Option<Timestamp> {
        if self.paused_since.is_some() {
            return None;
        }
        Some(match self.first_response_at {
            None => self.first_response_due.min(self.resolution_due),
            Some(_) => self.resolution_due,
        })
    }

    /// What the ticket's service level is at `now` (see the module's rules;
    /// the stores' list filters say the same in SQL).
    pub fn state(&self, now: Timestamp) -> SlaState {
        let stop = self.paused_since.unwrap_or(now);
        let breached = self.first_response_due < self.first_response_at.unwrap_or(stop) || self.resolution_due < stop;
        if breached {
            SlaState::Breached
        } else if self.resolved_at.is_some() {
            SlaState::Met
        } else if self.paused_since.is_some() {
            SlaState::Paused
        } else if (self.first_response_at.is_none() && self.first_response_warning <= now)
            || self.resolution_warning <= now
        {
            SlaState::AtRisk
        } else {
            SlaState::OnTime
        }
    }

    /// The target a running clock is nearest to missing, and its due time:
    /// what an alert is about.
    pub fn pressing(&self) -> (SlaTarget, Timestamp) {
        match self.first_response_at {
            None if self.first_response_due <= self.resolution_due => {
                (SlaTarget::FirstResponse, self.first_response_due)
            }
            _ => (SlaTarget::Resolution, self.resolution_due),
        }
    }

    /// The thresholds a running clock has crossed at `now` (the escalation
    /// worker announces each once).
    pub fn crossed(&self, now: Timestamp) -> Vec<SlaThreshold> {
        if self.paused_since.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.first_response_at.is_none() {
            if self.first_response_warning <= now {
                out.push(SlaThreshold::FirstResponseWarning);
            }
            if self.first_response_due <= now {
                out.push(SlaThreshold::FirstResponseBreach);
            }
        }
        if self.resolution_warning <= now {
            out.push(SlaThreshold::ResolutionWarning);
        }
        if self.resolution_due <= now {
            out.push(SlaThreshold::ResolutionBreach);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(zone: &str, hours: &str, holidays: &[&str]) -> BusinessCalendar {
        BusinessCalendar {
            id: 1,
            name: "general".into(),
            zone: parse_zone(zone).unwrap(),
            hours: WeeklyHours::parse(hours).unwrap(),
            holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    /// A UTC instant.
    fn at(s: &str) -> Timestamp {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    /// Costa Rica is UTC-6 all year: 08:00 local = 14:00 UTC.
    fn cr() -> BusinessCalendar {
        cal("America/Costa_Rica", "lun-vie 08:00-17:00", &["2026-12-25"])
    }

    #[test]
    fn opening_hours_are_read_and_written_back() {
        let h = WeeklyHours::parse("lun-vie 08:00-12:00 13:00-17:00; sab 08:00-12:00").unwrap();
        assert_eq!(
            h.to_string(),
            "lun 08:00-12:00 13:00-17:00; mar 08:00-12:00 13:00-17:00; mie 08:00-12:00 13:00-17:00; jue 08:00-12:00 13:00-17:00; vie 08:00-12:00 13:00-17:00; sab 08:00-12:00"
        );
        assert_eq!(WeeklyHours::parse(&h.to_string()).unwrap(), h);
        assert_eq!(WeeklyHours::parse("dom 00:00-24:00").unwrap().to_string(), "dom 00:00-24:00");
        for bad in [
            "",
            "lun",
            "lunes 08:00-17:00",
            "vie-lun 08:00-17:00",
            "lun 17:00-08:00",
            "lun 8-17",
            "lun 08:00-12:00 11:00-13:00",
            "lun 25:00-26:00",
        ] {
            assert!(WeeklyHours::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_zone("Marte/Olympus").is_err());
    }

    #[test]
    fn a_department_reads_times_in_its_calendars_zone() {
        let madrid =
            BusinessCalendar { id: 2, name: "europa".into(), ..cal("Europe/Madrid", "lun-vie 09:00-18:00", &[]) };
        let setup = SlaSetup { policies: vec![], calendars: vec![cr(), madrid], department_calendars: vec![(7, 2)] };
        assert_eq!(setup.zone_of(Some(7)), chrono_tz::Europe::Madrid);
        assert_eq!(setup.zone_of(Some(8)), chrono_tz::America::Costa_Rica, "the default calendar's");
        assert_eq!(setup.zone_of(None), chrono_tz::America::Costa_Rica);
        let lima = cal("America/Lima", "lun-vie 08:00-17:00", &[]);
        let elsewhere = SlaSetup { policies: vec![], calendars: vec![lima], department_calendars: vec![] };
        assert_eq!(elsewhere.zone_of(None), chrono_tz::America::Lima, "the default calendar moved");
        let none = SlaSetup { policies: vec![], calendars: vec![], department_calendars: vec![] };
        assert_eq!(none.zone_of(Some(7)).name(), DEFAULT_ZONE);
    }

    #[test]
    fn time_inside_one_day() {
        // Monday 2026-11-30 09:00 local = 15:00 UTC, plus 4 h = 13:00 local.
        assert_eq!(cr().add(at("2026-11-30 15:00"), Duration::hours(4)), at("2026-11-30 19:00"));
        assert_eq!(cr().between(at("2026-11-30 15:00"), at("2026-11-30 19:00")), Duration::hours(4));
    }

    #[test]
    fn a_target_that_ends_at_closing_time_ends_that_day() {
        // Monday 16:00 local + 1 h is 17:00, closing time: due that evening,
        // not at Tuesday's opening (the calendar's `<=`).
        assert_eq!(cr().add(at("2026-11-30 22:00"), Duration::hours(1)), at("2026-11-30 23:00"));
        // The whole day from the opening: 9 h from 08:00 is 17:00.
        assert_eq!(cr().add(at("2026-11-30 14:00"), Duration::hours(9)), at("2026-11-30 23:00"));
        // One minute more runs into Tuesday.
        assert_eq!(cr().add(at("2026-11-30 22:00"), Duration::minutes(61)), at("2026-12-01 14:01"));
    }

    #[test]
    fn nights_are_skipped() {
        // Monday 16:00 local + 2 h: one hour on Monday, one on Tuesday from 08:00.
        assert_eq!(cr().add(at("2026-11-30 22:00"), Duration::hours(2)), at("2026-12-01 15:00"));
        assert_eq!(cr().between(at("2026-11-30 22:00"), at("2026-12-01 15:00")), Duration::hours(2));
    }

    #[test]
    fn weekends_and_holidays_are_skipped() {
        // Friday 2026-12-04 16:00 local + 2 h: Monday 09:00.
        assert_eq!(cr().add(at("2026-12-04 22:00"), Duration::hours(2)), at("2026-12-07 15:00"));
        // Thursday 2026-12-24 16:00 + 2 h: the 25th is a holiday, then a
        // weekend: Monday the 28th at 09:00.
        assert_eq!(cr().add(at("2026-12-24 22:00"), Duration::hours(2)), at("2026-12-28 15:00"));
        // A whole week is 45 business hours.
        assert_eq!(cr().between(at("2026-11-30 06:00"), at("2026-12-07 06:00")), Duration::hours(45));
    }

    #[test]
    fn a_ticket_opened_outside_hours_starts_at_the_opening() {
        // Saturday 2026-12-05 at noon local: nothing counts until Monday 08:00.
        let c = cr();
        assert_eq!(c.add(at("2026-12-05 18:00"), Duration::minutes(30)), at("2026-12-07 14:30"));
        assert_eq!(c.add(at("2026-12-05 18:00"), Duration::zero()), at("2026-12-07 14:00"));
        assert_eq!(c.between(at("2026-12-05 18:00"), at("2026-12-07 14:00")), Duration::zero());
    }

    #[test]
    fn daylight_saving_changes_are_followed() {
        // New York, 2026-03-08: clocks go from 02:00 to 03:00. Open every
        // day 00:00-24:00: that Sunday has 23 hours.
        let ny = cal("America/New_York", "lun-dom 00:00-24:00", &[]);
        let saturday_midnight = at("2026-03-07 05:00"); // 00:00 EST
        let monday_midnight = at("2026-03-09 04:00"); // 00:00 EDT
        assert_eq!(ny.between(saturday_midnight, monday_midnight), Duration::hours(47));
        // 9-to-5 the Friday before and the Monday after: 09:00 local is
        // 14:00 UTC before, 13:00 UTC after the change.
        let ny = cal("America/New_York", "lun-vie 09:00-17:00", &[]);
        assert_eq!(ny.add(at("2026-03-06 21:00"), Duration::hours(2)), at("2026-03-09 14:00"));
        // Autumn back: 2026-11-01 is Sunday; Monday 09:00 EST = 14:00 UTC.
        assert_eq!(ny.add(at("2026-10-30 20:00"), Duration::hours(2)), at("2026-11-02 15:00"));
    }

    fn policy(first: i64, resolution: i64, warning: Option<i64>) -> SlaPolicy {
        SlaPolicy {
            id: 7,
            department_id: None,
            priority: Priority::Normal,
            first_response_mins: first,
            resolution_mins: resolution,
            warning_pct: warning,
        }
    }

    #[test]
    fn a_clock_starts_with_its_due_times_in_business_time() {
        let c = cr();
        let p = policy(120, 16 * 60, Some(80));
        let clock = SlaTerms { policy: &p, calendar: &c }.start(at("2026-11-30 22:00")); // Mon 16:00
        assert_eq!(clock.first_response_due, at("2026-12-01 15:00")); // Tue 09:00
        assert_eq!(clock.first_response_warning, at("2026-12-01 14:36")); // 96 min
        assert_eq!(clock.resolution_due, at("2026-12-02 20:00")); // 1 + 9 + 6 h: Wed 14:00
        assert_eq!(clock.state(at("2026-12-01 14:00")), SlaState::OnTime);
        assert_eq!(clock.state(at("2026-12-01 14:40")), SlaState::AtRisk);
        assert_eq!(clock.state(at("2026-12-01 15:01")), SlaState::Breached);
        assert_eq!(clock.crossed(at("2026-12-01 14:40")), vec![SlaThreshold::FirstResponseWarning]);
        assert_eq!(clock.next_due(), Some(at("2026-12-01 15:00")));
    }

    #[test]
    fn pauses_push_the_due_times_back_by_business_time() {
        let c = cr();
        let p = policy(120, 16 * 60, None);
        let terms = SlaTerms { policy: &p, calendar: &c };
        let clock = terms.start(at("2026-11-30 15:00")); // Mon 09:00
        assert_eq!(clock.first_response_due, at("2026-11-30 17:00"));
        // Waiting on the customer from Mon 10:00 until Tue 10:00: 7 + 2 business hours.
        let paused = terms.on_status(&clock, TicketStatus::Pending, at("2026-11-30 16:00"));
        assert_eq!(paused.state(at("2026-12-01 16:00")), SlaState::Paused);
        assert_eq!(paused.next_due(), None);
        assert!(paused.crossed(at("2026-12-09 16:00")).is_empty(), "a stopped clock crosses nothing");
        let resumed = terms.on_status(&paused, TicketStatus::Open, at("2026-12-01 16:00"));
        assert_eq!(resumed.paused_secs, 9 * 3600);
        assert_eq!(resumed.paused_since, None);
        assert_eq!(resumed.first_response_due, at("2026-12-01 17:00")); // Tue 11:00
        assert_eq!(resumed.state(at("2026-12-01 16:30")), SlaState::OnTime);
    }

    #[test]
    fn first_response_and_resolution() {
        let c = cr();
        let p = policy(120, 16 * 60, None);
        let terms = SlaTerms { policy: &p, calendar: &c };
        let clock = terms.start(at("2026-11-30 15:00"));
        let answered = clock.responded(at("2026-11-30 16:00"));
        assert_eq!(answered.responded(at("2026-11-30 16:30")).first_response_at, Some(at("2026-11-30 16:00")));
        assert_eq!(answered.next_due(), Some(answered.resolution_due));
        // Past the first-response due time, answered in time: on time.
        assert_eq!(answered.state(at("2026-11-30 18:00")), SlaState::OnTime);
        let closed = terms.on_status(&answered, TicketStatus::Closed, at("2026-12-01 15:00"));
        assert_eq!(closed.resolved_at, Some(at("2026-12-01 15:00")));
        assert_eq!(closed.state(at("2027-01-01 00:00")), SlaState::Met);
        // Answered late: breached for good, even once closed.
        let late = clock.responded(at("2026-11-30 18:00"));
        assert_eq!(
            terms.on_status(&late, TicketStatus::Closed, at("2026-11-30 19:00")).state(at("2026-12-01 00:00")),
            SlaState::Breached
        );
        // Reopened: resolved no more, running again.
        let reopened = terms.on_status(&closed, TicketStatus::Open, at("2026-12-02 15:00"));
        assert_eq!((reopened.resolved_at, reopened.paused_since), (None, None));
        assert_eq!(reopened.paused_secs, 9 * 3600);
    }

    #[test]
    fn a_priority_change_recomputes_from_the_same_start() {
        let c = cr();
        let normal = policy(120, 16 * 60, None);
        let urgent = SlaPolicy {
            id: 8,
            priority: Priority::Urgent,
            first_response_mins: 30,
            resolution_mins: 240,
            ..normal.clone()
        };
        let clock = SlaTerms { policy: &normal, calendar: &c }.start(at("2026-11-30 15:00"));
        let moved = SlaTerms { policy: &urgent, calendar: &c }.apply(&clock);
        assert_eq!(moved.policy_id, 8);
        assert_eq!(moved.started_at, clock.started_at);
        assert_eq!(moved.first_response_due, at("2026-11-30 15:30"));
        assert_eq!(moved.resolution_due, at("2026-11-30 19:00"));
    }

    #[test]
    fn policies_and_calendars_are_found_for_a_department() {
        let mut ventas = cr();
        ventas.id = 2;
        ventas.name = "ventas".into();
        let setup = SlaSetup {
            policies: vec![
                policy(120, 960, None),
                SlaPolicy { id: 9, department_id: Some(5), ..policy(60, 480, None) },
            ],
            calendars: vec![cr(), ventas],
            department_calendars: vec![(5, 2)],
        };
        let t = setup.terms(5, Priority::Normal).unwrap();
        assert_eq!((t.policy.id, t.calendar.id), (9, 2));
        let t = setup.terms(4, Priority::Normal).unwrap();
        assert_eq!((t.policy.id, t.calendar.id), (7, 1));
        assert!(setup.terms(4, Priority::Urgent).is_none(), "no policy for urgent tickets");
        assert!(
            NewSlaPolicy {
                department_id: None,
                priority: Priority::Low,
                first_response_mins: 0,
                resolution_mins: 5,
                warning_pct: None
            }
            .check()
            .is_err()
        );
        assert!(
            NewSlaPolicy {
                department_id: None,
                priority: Priority::Low,
                first_response_mins: 5,
                resolution_mins: 5,
                warning_pct: Some(100)
            }
            .check()
            .is_err()
        );
    }
}
