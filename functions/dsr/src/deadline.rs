//! GDPR art. 12(3) deadlines: a data-subject request is answered within one month of
//! receipt, or three months when it is complex. Months are calendar months in
//! Europe/Amsterdam: the same wall-clock time on the same day of the month, clamped to the
//! month's last day (31 January + 1 month = 28 or 29 February). A daylight-saving change
//! in between does not move the date.

use jiff::{Timestamp, ToSpan};
use koppel_shared::calendar;

/// When the answer is due for a request received at `receipt`.
pub fn expiry(receipt: Timestamp, complex: bool) -> Timestamp {
    let months = if complex { 3 } else { 1 };
    receipt
        .to_zoned_datetime(calendar::zone())
        .checked_add(months.months())
        .expect("dates far from the calendar's end")
        .timestamp()
}

/// Whole calendar days (in Amsterdam) from `now` until the day of `expiry`: 0 on the day
/// itself, negative once that day has passed.
pub fn remaining_days(expiry: Timestamp, now: Timestamp) -> i64 {
    let (today, due) = (calendar::today(now), calendar::today(expiry));
    i64::from(today.until(due).expect("dates in range").get_days())
}

/// Whether the deadline has passed (`overtaking` in Dastra's list filter).
pub fn overdue(expiry: Timestamp, now: Timestamp) -> bool {
    expiry < now
}

/// Whole calendar days (in Amsterdam) a closed request took: `closingTime`.
pub fn closing_days(received: Timestamp, closed: Timestamp) -> i64 {
    remaining_days(closed, received)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn one_month_or_three_when_complex() {
        let r = ts("2027-05-10T08:15:00.250Z");
        assert_eq!(expiry(r, false), ts("2027-06-10T08:15:00.250Z"));
        assert_eq!(expiry(r, true), ts("2027-08-10T08:15:00.250Z"));
    }

    #[test]
    fn month_ends_clamp() {
        // 31 January + 1 month: 28 February, or 29 in a leap year.
        assert_eq!(
            expiry(ts("2027-01-31T10:00:00Z"), false),
            ts("2027-02-28T10:00:00Z")
        );
        assert_eq!(
            expiry(ts("2028-01-31T10:00:00Z"), false),
            ts("2028-02-29T10:00:00Z")
        );
        // 30 November + 3 months: end of February.
        assert_eq!(
            expiry(ts("2027-11-30T10:00:00Z"), true),
            ts("2028-02-29T10:00:00Z")
        );
        assert_eq!(
            expiry(ts("2026-11-30T10:00:00Z"), true),
            ts("2027-02-28T10:00:00Z")
        );
        // 31 March + 1 month: 30 April.
        assert_eq!(
            expiry(ts("2027-03-31T09:00:00Z"), false),
            ts("2027-04-30T09:00:00Z")
        );
    }

    #[test]
    fn the_amsterdam_date_counts_not_the_utc_date() {
        // 23:30 UTC on 31 January is 00:30 on 1 February in Amsterdam: due 1 March.
        assert_eq!(
            expiry(ts("2027-01-31T23:30:00Z"), false),
            ts("2027-02-28T23:30:00Z")
        );
        assert_eq!(
            calendar::today(expiry(ts("2027-01-31T23:30:00Z"), false)),
            jiff::civil::date(2027, 3, 1)
        );
    }

    #[test]
    fn dst_change_does_not_shift_the_date() {
        // Received 10:00 in winter (UTC+1), due 10:00 in summer (UTC+2) on the same day
        // of the next month: one hour less in UTC, same local date and time.
        let r = ts("2027-03-15T09:00:00Z");
        let due = expiry(r, false);
        assert_eq!(due, ts("2027-04-15T08:00:00Z"));
        let local = due.to_zoned_datetime(calendar::zone());
        assert_eq!((local.month(), local.day(), local.hour()), (4, 15, 10));
        // And back: received in summer, due after the October change.
        let due = expiry(ts("2027-10-20T22:30:00Z"), false); // 00:30 on 21 Oct, local
        let local = due.to_zoned_datetime(calendar::zone());
        assert_eq!((local.month(), local.day(), local.hour()), (11, 21, 0));
        assert_eq!(due, ts("2027-11-20T23:30:00Z"));
    }

    #[test]
    fn remaining_days_counts_calendar_days() {
        let due = ts("2027-02-28T10:00:00Z");
        assert_eq!(remaining_days(due, ts("2027-02-01T09:00:00Z")), 27);
        assert_eq!(remaining_days(due, ts("2027-02-27T23:30:00Z")), 0); // 28th in Amsterdam
        assert_eq!(remaining_days(due, ts("2027-02-28T22:00:00Z")), 0);
        assert_eq!(remaining_days(due, ts("2027-03-01T00:00:00Z")), -1);
        assert_eq!(remaining_days(due, ts("2027-03-10T12:00:00Z")), -10);
        // Across the spring DST change a 23-hour day is still one day.
        let due = ts("2027-03-29T10:00:00Z");
        assert_eq!(remaining_days(due, ts("2027-03-27T10:00:00Z")), 2);
    }

    #[test]
    fn overdue_and_closing_days() {
        let due = ts("2027-02-28T10:00:00Z");
        assert!(!overdue(due, ts("2027-02-28T09:59:59Z")));
        assert!(overdue(due, ts("2027-02-28T10:00:01Z")));
        assert_eq!(
            closing_days(ts("2027-02-01T09:00:00Z"), ts("2027-02-03T08:00:00Z")),
            2
        );
    }
}
