//! Per-credential rate limit: a fixed one-minute window counted by one DynamoDB update per
//! request, made by the authorizer beside its reads (the function answers 429 from its
//! count). The window item expires by TTL; its key carries the window start, so a late TTL
//! delete never matters.

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

/// One request counted in its credential's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Requests in the window, this one included.
    pub count: u32,
    pub window_start: i64,
}

impl Counted {
    /// The standing under `limit` at `now`: the authorizer counts, the function (a moment
    /// later, perhaps past the window's end) answers.
    pub fn standing(&self, limit: u32, now: i64) -> Standing {
        let w = Window {
            start: self.window_start,
            reset_after: (self.window_start + WINDOW_SECS - now).clamp(0, WINDOW_SECS),
        };
        Standing::from_count(limit, self.count, w)
    }
}

/// Counts one request for `credential_id`: one unconditional update, so it can run beside
/// the reads that find the credential's limit.
pub async fn count(store: &Store, credential_id: &str, now: i64) -> Result<Counted, StoreError> {
    let w = window(now);
    let out = store
        .update(
            Update::new(
                Key::rate(credential_id, w.start),
                Expr::new("ADD #n :one SET #ttl = :ttl")
                    .name("#n", "count")
                    .name("#ttl", "ttl")
                    .n(":one", 1)
                    .n(":ttl", w.start + 2 * WINDOW_SECS),
            )
            .returning(ReturnValue::UpdatedNew),
        )
        .await?;
    Ok(Counted {
        count: number(&out, "count").unwrap_or(u32::MAX),
        window_start: w.start,
    })
}

/// Counts one request for `credential_id` and says where it stands under `limit`.
pub async fn hit(
    store: &Store,
    credential_id: &str,
    limit: u32,
    now: i64,
) -> Result<Standing, StoreError> {
    Ok(count(store, credential_id, now).await?.standing(limit, now))
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

    #[test]
    fn a_count_taken_earlier_stands_in_its_own_window() {
        let c = Counted {
            count: 31,
            window_start: 120,
        };
        let s = c.standing(30, 130);
        assert!(!s.allowed);
        assert_eq!(s.reset_after, 50);
        // Answered after its window ended: it resets now, never a negative wait.
        assert_eq!(c.standing(30, 200).reset_after, 0);
        assert!(c.standing(31, 130).allowed);
    }
}
