//! Per-credential rate limit: a fixed one-minute window counted by one conditional
//! DynamoDB update per request. The window item expires by TTL; its key carries the
//! window start, so a late TTL delete never matters.

use http::HeaderMap;

use crate::store::{Expr, Key, ReturnValue, Store, StoreError, Update, number};

pub const WINDOW_SECS: i64 = 60;

/// The window `now` (epoch seconds) falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    /// Seconds until the next window starts (1..=60).
    pub reset_after: i64,
}

pub fn window(now: i64) -> Window {
    let start = now - now.rem_euclid(WINDOW_SECS);
    Window {
        start,
        reset_after: start + WINDOW_SECS - now,
    }
}

/// Where a credential stands after this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub limit: u32,
    pub remaining: u32,
    pub reset_after: i64,
    pub allowed: bool,
}

impl Standing {
    pub fn from_count(limit: u32, count: u32, w: Window) -> Self {
        Self {
            limit,
            remaining: limit.saturating_sub(count),
            reset_after: w.reset_after,
            allowed: count <= limit,
        }
    }

    /// `RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers, the widely used form).
    pub fn apply(&self, headers: &mut HeaderMap) {
        let mut set = |k: &'static str, v: String| {
            headers.insert(k, v.parse().expect("digits are a valid header value"));
        };
        set("ratelimit-limit", self.limit.to_string());
        set("ratelimit-remaining", self.remaining.to_string());
        set("ratelimit-reset", self.reset_after.to_string());
        set(
            "ratelimit-policy",
            format!("{};w={WINDOW_SECS}", self.limit),
        );
    }
}

/// Counts one request for `credential_id`. Over the limit the count is not raised further.
pub async fn hit(
    store: &Store,
    credential_id: &str,
    limit: u32,
    now: i64,
) -> Result<Standing, StoreError> {
    let w = window(now);
    let count = Update::new(
        Key::rate(credential_id, w.start),
        Expr::new("ADD #n :one SET #ttl = :ttl")
            .name("#n", "count")
            .name("#ttl", "ttl")
            .n(":one", 1)
            .n(":ttl", w.start + 2 * WINDOW_SECS),
    )
    .when(Expr::new("attribute_not_exists(#n) OR #n < :limit").n(":limit", limit))
    .returning(ReturnValue::UpdatedNew);
    match store.update_if(count).await? {
        Some(o) => Ok(Standing::from_count(
            limit,
            number(&o, "count").unwrap_or(limit),
            w,
        )),
        None => Ok(Standing {
            limit,
            remaining: 0,
            reset_after: w.reset_after,
            allowed: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds() {
        assert_eq!(
            window(120),
            Window {
                start: 120,
                reset_after: 60
            }
        );
        assert_eq!(
            window(179),
            Window {
                start: 120,
                reset_after: 1
            }
        );
        assert_eq!(
            window(181),
            Window {
                start: 180,
                reset_after: 59
            }
        );
    }

    #[test]
    fn standing_from_count() {
        let w = window(100);
        let s = Standing::from_count(30, 30, w);
        assert!(s.allowed);
        assert_eq!(s.remaining, 0);
        let s = Standing::from_count(30, 1, w);
        assert_eq!(s.remaining, 29);
        assert_eq!(s.reset_after, 20);
        let mut h = HeaderMap::new();
        s.apply(&mut h);
        assert_eq!(h["ratelimit-limit"], "30");
        assert_eq!(h["ratelimit-remaining"], "29");
        assert_eq!(h["ratelimit-policy"], "30;w=60");
    }
}
