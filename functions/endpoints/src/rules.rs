//! OSR's rules for endpoints (seed 003), as pure functions.
//!
//! - `url`: an absolute `https://` URL with a host (and no credentials in it).
//! - `start_date` defaults to today and is never in the past; `end_date` is never in the
//!   past and not before the start. A date means the whole day in Europe/Amsterdam: the
//!   start at midnight at its beginning, the end at midnight at its end. So an endpoint
//!   covers the inclusive dates `[start, end]`, and one ending on day D and another
//!   starting on D+1 do not overlap.

use jiff::civil::Date;
use koppel_shared::body::Fields;
use koppel_shared::calendar::parse_date;

/// An endpoint's inclusive dates; `end: None` is open-ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start: Date,
    pub end: Option<Date>,
}

impl Interval {
    pub fn overlaps(&self, other: &Interval) -> bool {
        let before_end = |d: Date, end: Option<Date>| end.is_none_or(|e| d <= e);
        before_end(self.start, other.end) && before_end(other.start, self.end)
    }

    pub fn contains(&self, d: Date) -> bool {
        self.start <= d && self.end.is_none_or(|e| d <= e)
    }
}

pub use koppel_shared::https_url::check as check_url;

/// Checks `start_date`/`end_date` against today (in Amsterdam). `kept_start` is the stored
/// start of an endpoint being updated: repeating it is allowed once it has passed.
pub fn check_dates(
    start: Option<&str>,
    end: Option<&str>,
    today: Date,
    kept_start: Option<Date>,
    errors: &mut Fields,
) -> Option<Interval> {
    let errors_before = errors.len();
    let parse = |name: &str, v: Option<&str>, errors: &mut Fields| match v {
        None => Ok(None),
        Some(s) => match parse_date(s) {
            Some(d) => Ok(Some(d)),
            None => {
                errors.push(name, "must be a date as YYYY-MM-DD");
                Err(())
            }
        },
    };
    let start = parse("start_date", start, errors);
    let end = parse("end_date", end, errors);
    let (Ok(start), Ok(end)) = (start, end) else {
        return None;
    };
    let start = start.or(kept_start).unwrap_or(today);
    if start < today && Some(start) != kept_start {
        errors.push("start_date", "may not be in the past");
    }
    if let Some(e) = end {
        if e < today {
            errors.push("end_date", "may not be in the past");
        } else if e < start {
            errors.push("end_date", "may not be before start_date");
        }
    }
    (errors.len() == errors_before).then_some(Interval { start, end })
}

/// Text fields with a bound, as OSR stores them.
pub fn check_len(value: &str, max: usize, field: &str, errors: &mut Fields) {
    if value.chars().count() > max {
        errors.push(field, format!("must be at most {max} characters"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn iv(s: Date, e: Option<Date>) -> Interval {
        Interval { start: s, end: e }
    }

    #[test]
    fn touching_intervals_do_not_overlap() {
        let a = iv(date(2027, 1, 1), Some(date(2027, 1, 31)));
        assert!(!a.overlaps(&iv(date(2027, 2, 1), None)));
        assert!(a.overlaps(&iv(date(2027, 1, 31), None)));
        assert!(a.overlaps(&iv(date(2026, 12, 1), Some(date(2027, 1, 1)))));
        assert!(!a.overlaps(&iv(date(2026, 12, 1), Some(date(2026, 12, 31)))));
        assert!(iv(date(2027, 1, 1), None).overlaps(&iv(date(2030, 1, 1), None)));
        assert!(a.contains(date(2027, 1, 31)) && !a.contains(date(2027, 2, 1)));
    }

    fn dates(
        start: Option<&str>,
        end: Option<&str>,
        kept: Option<Date>,
    ) -> Result<Interval, Vec<String>> {
        let mut f = Fields::new();
        let r = check_dates(start, end, date(2027, 4, 1), kept, &mut f);
        match f.finish() {
            Ok(()) => Ok(r.unwrap()),
            Err(e) => Err(e
                .errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect()),
        }
    }

    #[test]
    fn date_rules() {
        assert_eq!(dates(None, None, None), Ok(iv(date(2027, 4, 1), None)));
        assert_eq!(
            dates(Some("2027-04-01"), Some("2027-04-01"), None),
            Ok(iv(date(2027, 4, 1), Some(date(2027, 4, 1))))
        );
        assert_eq!(
            dates(Some("2027-03-31"), None, None),
            Err(vec!["start_date: may not be in the past".into()])
        );
        assert_eq!(
            dates(None, Some("2027-03-31"), None),
            Err(vec!["end_date: may not be in the past".into()])
        );
        assert_eq!(
            dates(Some("2027-05-01"), Some("2027-04-15"), None),
            Err(vec!["end_date: may not be before start_date".into()])
        );
        assert_eq!(
            dates(Some("01-05-2027"), Some("2027-13-01"), None),
            Err(vec![
                "start_date: must be a date as YYYY-MM-DD".into(),
                "end_date: must be a date as YYYY-MM-DD".into()
            ])
        );
        // An update may keep a start that has passed, not move it into the past.
        let kept = date(2027, 1, 1);
        assert!(dates(Some("2027-01-01"), None, Some(kept)).is_ok());
        assert!(dates(None, Some("2027-04-01"), Some(kept)).is_ok());
        assert!(dates(Some("2027-01-02"), None, Some(kept)).is_err());
    }

    #[test]
    fn amsterdam_today_decides_the_past() {
        // 23:30 UTC on 31 March is 1 April in Amsterdam: 31 March is then in the past.
        let today = koppel_shared::calendar::today("2027-03-31T23:30:00Z".parse().unwrap());
        let mut f = Fields::new();
        check_dates(Some("2027-03-31"), None, today, None, &mut f);
        assert!(!f.is_empty());
        let mut f = Fields::new();
        check_dates(Some("2027-04-01"), None, today, None, &mut f);
        assert!(f.is_empty());
    }

    #[test]
    fn urls() {
        let bad = |u: &str| {
            let mut f = Fields::new();
            check_url(u, "url", &mut f);
            !f.is_empty()
        };
        assert!(!bad("https://t2.nl"));
        assert!(!bad("https://t2.nl:8443/osr/endpoint?x=1"));
        assert!(bad("http://t2.nl"));
        assert!(bad("t2.nl"));
        assert!(bad("https://user:pw@t2.nl/"));
        assert!(bad("mailto:a@t2.nl"));
    }
}
