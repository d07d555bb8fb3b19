//! Wall-clock helpers. Times are stored as RFC 3339 strings (readable in the console) and,
//! where DynamoDB's TTL needs it, as epoch seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .expect("RFC 3339 formatting of a UTC time cannot fail")
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}
