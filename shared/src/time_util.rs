//! Wall-clock helpers. Times are stored as RFC 3339 strings (readable in the console) and,
//! where DynamoDB's TTL needs it, as epoch seconds.
//!
//! Stored times are compared and sorted as text (`last_used_at < :old`, index sort keys
//! like `<created_at>#<id>`), so they are always written in one fixed-width form: UTC,
//! six fractional digits, `Z` (`2026-12-02T06:26:56.123456Z`). RFC 3339's own formatter
//! drops trailing zeros, and `…56Z` sorts after `…56.5Z`.

use jiff::Timestamp;

/// The one stored form: `%.6f` always writes six digits (cut, not rounded).
const STORED: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

pub fn now() -> Timestamp {
    Timestamp::now()
}

/// `t` in UTC as fixed-width RFC 3339 (microseconds; finer digits are cut).
pub fn rfc3339(t: Timestamp) -> String {
    jiff::fmt::strtime::format(STORED, t)
        .expect("formatting a timestamp in years 0000-9999 cannot fail")
}

/// An RFC 3339 time with any offset (`Z`, `z`, `±hh:mm`), any single-byte date/time
/// separator and any number of fractional digits (beyond nanoseconds they are cut).
/// jiff's own parser also takes ISO 8601 and RFC 9557 forms RFC 3339 does not (basic
/// format, `24:00`, a comma fraction, `[Europe/Amsterdam]`), so the shape is checked
/// here and jiff reads a normalised copy. A leap second (`23:59:60` UTC) reads as `23:59:59`;
/// `:60` at any other minute is refused.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let digits = |at: usize, n: usize| {
        b.get(at..at + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let is = |at: usize, c: u8| b.get(at) == Some(&c);
    let shape = digits(0, 4)
        && is(4, b'-')
        && digits(5, 2)
        && is(7, b'-')
        && digits(8, 2)
        && b.get(10).is_some_and(u8::is_ascii)
        && digits(11, 2)
        && is(13, b':')
        && digits(14, 2)
        && is(16, b':')
        && digits(17, 2);
    if !shape {
        return None;
    }
    let mut at = 19;
    let mut fraction = "";
    if is(at, b'.') {
        let n = b[at + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if n == 0 {
            return None;
        }
        fraction = &s[at..at + 1 + n.min(9)];
        at += 1 + n;
    }
    let offset = match &s[at..] {
        "Z" | "z" => "Z",
        o => match o.as_bytes() {
            [
                b'+' | b'-',
                h1 @ b'0'..=b'2',
                h2 @ b'0'..=b'9',
                b':',
                b'0'..=b'5',
                b'0'..=b'9',
            ] if (h1 - b'0') * 10 + (h2 - b'0') <= 23 => o,
            _ => return None,
        },
    };
    // A leap second ends a UTC day (23:59:60Z, or that instant in another offset); jiff
    // would take `:60` at any minute, so it is read as `:59` and the minute checked.
    let leap = &s[17..19] == "60";
    let second = if leap { "59" } else { &s[17..19] };
    let t: Timestamp = format!("{}T{}{second}{fraction}{offset}", &s[..10], &s[11..17])
        .parse()
        .ok()?;
    (!leap || t.as_second().rem_euclid(86_400) == 86_399).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn stored_times_have_one_width_and_sort_as_text() {
        let whole = rfc3339(at("2026-12-02T06:26:56Z"));
        let half = rfc3339(at("2026-12-02T06:26:56.5Z"));
        let nanos = rfc3339(at("2026-12-02T06:26:56.123456789Z"));
        assert_eq!(whole, "2026-12-02T06:26:56.000000Z");
        assert_eq!(half, "2026-12-02T06:26:56.500000Z");
        assert_eq!(nanos, "2026-12-02T06:26:56.123456Z");
        assert!(whole < nanos && nanos < half);
        // Other offsets are stored in UTC.
        assert_eq!(
            rfc3339(at("2026-12-02T08:00:00+02:00")),
            "2026-12-02T06:00:00.000000Z"
        );
        assert_eq!(parse_rfc3339(&half), Some(at("2026-12-02T06:26:56.5Z")));
        // Early years keep four digits; the epoch is all zeros.
        assert_eq!(
            rfc3339(Timestamp::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            rfc3339(at("0099-01-01T00:00:00Z")),
            "0099-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn rfc3339_with_any_offset_is_read() {
        let t = at("2026-12-02T06:26:56Z");
        for s in [
            "2026-12-02T06:26:56Z",
            "2026-12-02t06:26:56z",
            "2026-12-02 06:26:56Z",
            "2026-12-02T07:26:56+01:00",
            "2026-12-02T01:56:56-04:30",
            "2026-12-02T06:26:56.000Z",
            "2026-12-02T06:26:56-00:00",
        ] {
            assert_eq!(parse_rfc3339(s), Some(t), "{s}");
        }
        // A leap second only ends a UTC day, in whatever offset it is written.
        let leap = Some(at("2016-12-31T23:59:59Z"));
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), leap);
        assert_eq!(parse_rfc3339("2017-01-01T00:59:60+01:00"), leap);
        assert_eq!(parse_rfc3339("2016-12-31T18:29:60-05:30"), leap);
        assert_eq!(parse_rfc3339("2026-12-02T06:26:60Z"), None);
        assert_eq!(parse_rfc3339("2026-12-02T23:59:61Z"), None);
        // Digits beyond nanoseconds are cut.
        assert_eq!(
            parse_rfc3339("2026-12-02T06:26:56.1234567891Z"),
            Some(at("2026-12-02T06:26:56.123456789Z"))
        );
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00Z").map(Timestamp::as_second),
            Some(0)
        );
    }

    #[test]
    fn other_forms_are_refused() {
        for s in [
            "",
            "2026-12-02",
            "2026-12-02T06:26Z",
            "2026-12-02T06:26:56",
            "2026-12-02T06:26:56.Z",
            "2026-12-02T06:26:56,5Z",
            "2026-12-02T06:26:56+0100",
            "2026-12-02T06:26:56+24:00",
            "2026-12-02T06:26:56+01:60",
            "2026-12-02T06:26:56Z[Europe/Amsterdam]",
            "20261202T062656Z",
            "2026-02-30T06:26:56Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T06:26:56Z ",
            "+2026-12-02T06:26:56Z",
            "2026-12-02\u{e9}06:26:56Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }
}
