//! The retry schedule, as data: the delays between tries of one delivery. After the last
//! delay's try fails, the delivery is given up (its job moved to the deliveries DLQ).
//!
//! Waiting is done by SQS, never in the Lambda: the job's message is made invisible for the
//! delay (`ChangeMessageVisibility`, at most 12 h) and reported as failed, so it comes back
//! then. The deliveries queue's `maxReceiveCount` (20, template.yaml) is only a safety net
//! for crashes: a schedule may have at most [`MAX_DELAYS`] entries so that the explicit
//! move to the DLQ always comes first.

use std::time::SystemTime;

/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight tries over about a day.
pub const DEFAULT: [u32; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// SQS's visibility limit is 12 h; a little below it.
pub const MAX_DELAY_SECS: u32 = 43_000;
/// Fewer than the deliveries queue's `maxReceiveCount` (20) minus room for crash retries.
pub const MAX_DELAYS: usize = 16;
/// A subscription failing without a success for this long is disabled (5 days).
pub const DEFAULT_DISABLE_AFTER_SECS: i64 = 5 * 24 * 3600;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(Vec<u32>);

impl Default for Schedule {
    fn default() -> Self {
        Self(DEFAULT.to_vec())
    }
}

impl Schedule {
    /// `KOPPEL_WEBHOOK_RETRY_SCHEDULE`: seconds, comma-separated, e.g. `1,1,1`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let delays = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("retry schedule `{s}`: seconds, comma-separated"))?;
        if delays.len() > MAX_DELAYS || delays.iter().any(|d| !(1..=MAX_DELAY_SECS).contains(d)) {
            return Err(format!(
                "retry schedule `{s}`: at most {MAX_DELAYS} delays of 1..={MAX_DELAY_SECS} s"
            ));
        }
        Ok(Self(delays))
    }

    /// The delay before the next try after `tries` failed tries (≥ 1); `None`: give up.
    pub fn delay_after(&self, tries: usize) -> Option<u32> {
        tries.checked_sub(1).and_then(|i| self.0.get(i)).copied()
    }
}

/// `delay` spread by ±10 % (`r` in [0, 1)), so that a receiver's outage does not bring all
/// of its retries back at the same moment.
pub fn jitter(delay: u32, r: f64) -> u32 {
    let f = 0.9 + 0.2 * r.clamp(0.0, 1.0);
    ((f64::from(delay) * f).round() as u32).clamp(1, MAX_DELAY_SECS)
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as seconds from `now`.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<u64> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).map_or(0, |d| d.as_secs()))
}

/// The wait before the next try: the schedule's, or longer if the receiver asked for it
/// with `Retry-After` (never shorter — a `Retry-After: 0` must not turn into a storm — and
/// never past SQS's 12 h).
pub fn next_delay(scheduled: u32, retry_after: Option<u64>) -> u32 {
    let asked = retry_after.map_or(0, |s| s.min(u64::from(MAX_DELAY_SECS)) as u32);
    scheduled.max(asked)
}

/// Whether a subscription failing since `failing_since` has failed long enough.
pub fn should_disable(failing_since: i64, now: i64, after_secs: i64) -> bool {
    now - failing_since >= after_secs
}

/// `secs` for people: whole days, else whole hours, else seconds.
pub fn duration_text(secs: i64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_default_schedule_gives_eight_tries_over_about_a_day() {
        let s = Schedule::default();
        let delays: Vec<u32> = (1..).map_while(|n| s.delay_after(n)).collect();
        assert_eq!(delays, DEFAULT);
        assert_eq!(s.delay_after(8), None);
        assert_eq!(s.delay_after(0), None);
        let total: u32 = delays.iter().sum();
        assert!((24 * 3600..30 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn a_schedule_is_configurable_and_bounded() {
        assert_eq!(Schedule::parse("1, 1,2").unwrap(), Schedule(vec![1, 1, 2]));
        assert!(Schedule::parse("1,x").is_err());
        assert!(Schedule::parse("0").is_err());
        assert!(Schedule::parse("50000").is_err());
        assert!(Schedule::parse(&vec!["1"; MAX_DELAYS + 1].join(",")).is_err());
        assert_eq!(Schedule::parse("1,1,1").unwrap().delay_after(4), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        assert_eq!(jitter(300, 0.0), 270);
        assert_eq!(jitter(300, 0.5), 300);
        assert_eq!(jitter(300, 0.999_999), 330);
        assert_eq!(jitter(1, 0.0), 1);
        assert_eq!(jitter(MAX_DELAY_SECS, 0.99), MAX_DELAY_SECS);
    }

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("120", now), Some(120));
        // RFC 9110's example date, 10 s after `now`.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(10)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_within_twelve_hours() {
        assert_eq!(next_delay(300, None), 300);
        assert_eq!(next_delay(300, Some(0)), 300);
        assert_eq!(next_delay(300, Some(900)), 900);
        assert_eq!(next_delay(300, Some(10_000_000)), MAX_DELAY_SECS);
    }

    #[test]
    fn disabled_after_failing_long_enough() {
        let d = DEFAULT_DISABLE_AFTER_SECS;
        assert!(!should_disable(1000, 1000 + d - 1, d));
        assert!(should_disable(1000, 1000 + d, d));
        assert_eq!(duration_text(d), "5 days");
        assert_eq!(duration_text(7200), "2 hours");
        assert_eq!(duration_text(20), "20 seconds");
    }
}
