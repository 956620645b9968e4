//! Times as an operator reads them: in their department calendar's zone,
//! and how far from now, in words.

use chrono::TimeZone;
use chrono_tz::Tz;
use helpdesk_domain::model::Timestamp;

use crate::texts::T;

/// An instant on a page: the text people read and the machine form for
/// `<time datetime>`.
pub(crate) struct Shown {
    pub text: String,
    pub iso: String,
}

/// `at` in `zone`, with the zone's abbreviation (`2026-12-01 09:00 CST`).
pub(crate) fn local(at: Timestamp, zone: Tz) -> Shown {
    let there = zone.from_utc_datetime(&at);
    Shown { text: there.format("%Y-%m-%d %H:%M %Z").to_string(), iso: at.and_utc().to_rfc3339() }
}

/// How far `at` is from `now`, in words: `en 2 h 15 min`, `hace 3 d 4 h`,
/// `ahora` within a minute.
pub(crate) fn distance(now: Timestamp, at: Timestamp) -> String {
    let minutes = (at - now).num_minutes();
    if minutes == 0 {
        return T.just_now.to_string();
    }
    let m = minutes.unsigned_abs();
    let (days, hours, mins) = (m / 1440, m % 1440 / 60, m % 60);
    let amount = match (days, hours, mins) {
        (0, 0, m) => format!("{m} {}", T.unit_minutes),
        (0, h, 0) => format!("{h} {}", T.unit_hours),
        (0, h, m) => format!("{h} {} {m} {}", T.unit_hours, T.unit_minutes),
        (d, 0, _) => format!("{d} {}", T.unit_days),
        (d, h, _) => format!("{d} {} {h} {}", T.unit_days, T.unit_hours),
    };
    let word = if minutes > 0 { T.in_future } else { T.in_past };
    format!("{word} {amount}")
}

/// A due time in words: `vence en 2 h (2026-12-01 09:00 CST)` or `venció
/// hace 3 d 4 h (…)`.
pub(crate) fn due(now: Timestamp, at: Timestamp, zone: Tz) -> Shown {
    let verb = if at >= now { T.due } else { T.was_due };
    let shown = local(at, zone);
    Shown { text: format!("{verb} {} ({})", distance(now, at), shown.text), iso: shown.iso }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn distances_read_as_words() {
        let now = at("2026-12-01 15:00");
        for (then, words) in [
            ("2026-12-01 15:00", "ahora"),
            ("2026-12-01 15:45", "en 45 min"),
            ("2026-12-01 17:00", "en 2 h"),
            ("2026-12-01 17:15", "en 2 h 15 min"),
            ("2026-12-04 19:10", "en 3 d 4 h"),
            ("2026-12-03 15:00", "en 2 d"),
            ("2026-12-01 14:59", "hace 1 min"),
            ("2026-11-28 11:00", "hace 3 d 4 h"),
        ] {
            assert_eq!(distance(now, at(then)), words, "{then}");
        }
    }

    #[test]
    fn times_are_shown_in_the_calendars_zone() {
        let shown = local(at("2026-12-01 15:00"), chrono_tz::America::Costa_Rica);
        assert_eq!(shown.text, "2026-12-01 09:00 CST");
        assert_eq!(shown.iso, "2026-12-01T15:00:00+00:00");
        assert_eq!(local(at("2026-07-01 15:00"), chrono_tz::Europe::Madrid).text, "2026-07-01 17:00 CEST");
        let now = at("2026-12-01 15:00");
        assert_eq!(due(now, at("2026-12-01 17:15"), chrono_tz::UTC).text, "vence en 2 h 15 min (2026-12-01 17:15 UTC)");
        assert_eq!(due(now, at("2026-12-01 13:00"), chrono_tz::UTC).text, "venció hace 2 h (2026-12-01 13:00 UTC)");
    }
}
