//! Calendar dates in Europe/Amsterdam, where Koppel's organisations are. "Today", "midnight
//! at the start of a day" and "midnight at its end" are taken there, whatever the server's
//! clock zone; the time zone database is bundled, as Lambda images may lack one.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

pub const ZONE: &str = "Europe/Amsterdam";

pub fn zone() -> TimeZone {
    TimeZone::get(ZONE).expect("the bundled time zone database has Europe/Amsterdam")
}

/// The calendar date in Amsterdam at `now`.
pub fn today(now: Timestamp) -> Date {
    now.to_zoned_datetime(zone()).date()
}

/// Midnight at the start of `d` in Amsterdam.
pub fn start_of_day(d: Date) -> Timestamp {
    d.to_zoned_datetime(zone())
        .expect("midnight exists in Europe/Amsterdam")
        .timestamp()
}

/// Midnight at the end of `d` in Amsterdam (the start of the next day).
pub fn end_of_day(d: Date) -> Timestamp {
    start_of_day(
        d.checked_add(1.day())
            .expect("dates far from the calendar's end"),
    )
}

/// A `YYYY-MM-DD` date, strictly.
pub fn parse_date(s: &str) -> Option<Date> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return None;
    }
    // Years beyond 9000 are refused so that `end_of_day` always exists.
    s.parse().ok().filter(|d: &Date| d.year() <= 9000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn today_is_amsterdam_today() {
        // 23:30 UTC on 31 March is already 1 April in Amsterdam (UTC+2 in summer time).
        assert_eq!(today(ts("2027-03-31T23:30:00Z")), date(2027, 4, 1));
        // In winter (UTC+1), 22:59 UTC is still the same day.
        assert_eq!(today(ts("2027-01-15T22:59:00Z")), date(2027, 1, 15));
        assert_eq!(today(ts("2027-01-15T23:00:00Z")), date(2027, 1, 16));
    }

    #[test]
    fn days_around_the_dst_switch() {
        // 28 March 2027: clocks go forward, the day lasts 23 hours.
        let d = date(2027, 3, 28);
        assert_eq!(start_of_day(d), ts("2027-03-27T23:00:00Z"));
        assert_eq!(end_of_day(d), ts("2027-03-28T22:00:00Z"));
        // 31 October 2027: clocks go back, the day lasts 25 hours.
        let d = date(2027, 10, 31);
        assert_eq!(end_of_day(d).duration_since(start_of_day(d)).as_hours(), 25);
    }

    #[test]
    fn strict_dates() {
        assert_eq!(parse_date("2027-02-28"), Some(date(2027, 2, 28)));
        assert_eq!(parse_date("2027-02-30"), None);
        assert_eq!(parse_date("2027-2-28"), None);
        assert_eq!(parse_date("28-02-2027"), None);
        assert_eq!(parse_date("2027-02-28T00:00"), None);
        assert_eq!(parse_date("9999-12-31"), None);
    }
}
