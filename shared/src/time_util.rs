//! Wall-clock helpers. Times are stored as RFC 3339 strings (readable in the console) and,
//! where DynamoDB's TTL needs it, as epoch seconds.
//!
//! Stored times are compared and sorted as text (`last_used_at < :old`, index sort keys
//! like `<created_at>#<id>`), so they are always written in one fixed-width form: UTC,
//! six fractional digits, `Z` (`2026-12-02T06:26:56.123456Z`). RFC 3339's own formatter
//! drops trailing zeros, and `…56Z` sorts after `…56.5Z`.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `t` in UTC as fixed-width RFC 3339 (microseconds; finer digits are cut).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .expect("formatting a UTC time in years 0000-9999 cannot fail")
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn stored_times_have_one_width_and_sort_as_text() {
        let whole = rfc3339(datetime!(2026-12-02 06:26:56 UTC));
        let half = rfc3339(datetime!(2026-12-02 06:26:56.5 UTC));
        let nanos = rfc3339(datetime!(2026-12-02 06:26:56.123456789 UTC));
        assert_eq!(whole, "2026-12-02T06:26:56.000000Z");
        assert_eq!(half, "2026-12-02T06:26:56.500000Z");
        assert_eq!(nanos, "2026-12-02T06:26:56.123456Z");
        assert!(whole < nanos && nanos < half);
        // Other offsets are stored in UTC.
        assert_eq!(
            rfc3339(datetime!(2026-12-02 08:00:00 +02:00)),
            "2026-12-02T06:00:00.000000Z"
        );
        assert_eq!(
            parse_rfc3339(&half),
            Some(datetime!(2026-12-02 06:26:56.5 UTC))
        );
    }
}
