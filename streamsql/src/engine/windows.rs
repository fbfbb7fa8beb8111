//! Event time and windows: a record's time from its TIMESTAMP column, and
//! the tumbling or hopping windows it falls in.

use crate::ast::WindowDef;
use crate::value::Value;

/// The windows `[start, end)` that contain `ts`.
pub fn window_bounds(w: WindowDef, ts: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    window_bounds_into(w, ts, &mut out);
    out
}

/// [`window_bounds`] into a reused buffer, oldest window first.
pub(super) fn window_bounds_into(w: WindowDef, ts: i64, out: &mut Vec<(i64, i64)>) {
    match w {
        WindowDef::Tumbling { size_ms, .. } => {
            let start = ts - ts.rem_euclid(size_ms);
            out.push((start, start + size_ms));
        }
        WindowDef::Hopping {
            size_ms,
            advance_ms,
            ..
        } => {
            let last = ts - ts.rem_euclid(advance_ms);
            let first = out.len();
            let mut start = last;
            while start > ts - size_ms {
                out.push((start, start + size_ms));
                start -= advance_ms;
            }
            out[first..].reverse();
        }
    }
}

pub(super) fn event_time(v: &Value) -> Option<i64> {
    match v {
        Value::Int(ms) => Some(*ms),
        Value::Str(s) => parse_timestamp_ms(s),
        _ => None,
    }
}

/// An ISO-8601 timestamp to epoch milliseconds: RFC 3339 (`Z` or
/// `±HH:MM`, a `T` or a space between date and time), or with no offset,
/// read as UTC as ksqlDB reads one. An impossible date or time (month 13,
/// day 45, hour 25) is not a timestamp.
pub(super) fn parse_timestamp_ms(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(s, format).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_windows_cover_the_record() {
        let w = WindowDef::Hopping {
            size_ms: 300,
            advance_ms: 100,
            grace_ms: None,
        };
        assert_eq!(
            window_bounds(w, 250),
            vec![(0, 300), (100, 400), (200, 500)]
        );
        let t = WindowDef::Tumbling {
            size_ms: 60,
            grace_ms: None,
        };
        assert_eq!(window_bounds(t, 125), vec![(120, 180)]);
    }

    #[test]
    fn iso_timestamps_parse() {
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_timestamp_ms("2026-11-24T07:47:40.000Z"),
            Some(1_795_506_460_000)
        );
        assert_eq!(parse_timestamp_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:02Z"), Some(2000));
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:03.25"), Some(3250));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:04"), Some(4000));
        assert_eq!(parse_timestamp_ms("nope"), None);
        // Impossible dates and times are not timestamps.
        assert_eq!(parse_timestamp_ms("2026-13-45T00:00:00Z"), None);
        assert_eq!(parse_timestamp_ms("2026-02-30T00:00:00Z"), None);
        assert_eq!(parse_timestamp_ms("2026-01-01T25:00:00Z"), None);
        assert_eq!(parse_timestamp_ms("2026-01-01T00:00:00+01"), None);
    }
}
