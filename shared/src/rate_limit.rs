//! Per-credential rate limit: a fixed one-minute window, counted in DynamoDB by the
//! authorizer beside its reads (the function answers 429 from its count). The window item
//! expires by TTL; its key carries the window start, so a late TTL delete never matters.
//!
//! The counter hands out numbered tokens: a request is allowed when its token is at most the
//! limit. Every token number is handed out once, so no more than the limit is ever admitted in
//! a window, however many instances count. To spare a write per request, an authorizer
//! instance claims a run of tokens in one update and hands them out from memory ([`Leases`]).
//! A run starts at one token and doubles while the credential keeps calling, and never exceeds
//! an eighth of the limit nor a quarter of what the counter says is left; tokens an instance
//! claimed but did not hand out before the window ended are lost to that window, which is the
//! only way a caller can be refused before the limit (by at most that much per warm instance).

use std::collections::HashMap;
use std::sync::Mutex;

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
    let count = claim(store, credential_id, w.start, 1).await?;
    Ok(Counted {
        count,
        window_start: w.start,
    })
}

/// Takes `n` tokens of the window: the counter after them (the last token claimed).
async fn claim(store: &Store, credential_id: &str, start: i64, n: u32) -> Result<u32, StoreError> {
    let out = store
        .update(
            Update::new(
                Key::rate(credential_id, start),
                Expr::new("ADD #n :n SET #ttl = :ttl")
                    .name("#n", "count")
                    .name("#ttl", "ttl")
                    .n(":n", n)
                    .n(":ttl", start + 2 * WINDOW_SECS),
            )
            .returning(ReturnValue::UpdatedNew),
        )
        .await?;
    Ok(number(&out, "count").unwrap_or(u32::MAX))
}

/// Counts one request for `credential_id` from this instance's claimed tokens, claiming more
/// (one update, which may run beside the reads) only when none is left.
pub async fn count_leased(
    store: &Store,
    leases: &Leases,
    credential_id: &str,
    now: i64,
) -> Result<Counted, StoreError> {
    match leases.take(credential_id, now) {
        Take::Ready(c) => Ok(c),
        Take::Claim(c) => {
            let last = claim(store, credential_id, c.window_start, c.n).await?;
            Ok(leases.claimed(credential_id, c, last))
        }
    }
}

/// The most tokens one claim takes, whatever the limit.
const MAX_CLAIM: u32 = 1000;
/// Credentials remembered by one instance before windows that ended are forgotten.
const REMEMBERED: usize = 4096;

/// The tokens this instance has claimed and not handed out, per credential.
#[derive(Debug, Default)]
pub struct Leases {
    by_credential: Mutex<HashMap<String, Lease>>,
}

#[derive(Debug, Default)]
struct Lease {
    window_start: i64,
    /// Claimed token numbers not handed out yet, in runs.
    held: Vec<std::ops::RangeInclusive<u32>>,
    /// Tokens handed out in this window, and in the window before it.
    handed: u32,
    handed_before: u32,
    /// The size of the last claim in this window (0: none yet).
    last_claim: u32,
    /// The counter as the last claim left it.
    last_count: u32,
    /// The credential's limit as its last decision found it.
    limit: Option<u32>,
}

/// What [`Leases::take`] found: a token at hand, or a claim to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    Ready(Counted),
    Claim(Claim),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub window_start: i64,
    pub n: u32,
}

impl Lease {
    fn roll(&mut self, start: i64) {
        if self.window_start != start {
            let before = if self.window_start == start - WINDOW_SECS {
                self.handed
            } else {
                0
            };
            *self = Lease {
                window_start: start,
                handed_before: before,
                limit: self.limit,
                ..Lease::default()
            };
        }
    }

    fn next_held(&mut self) -> Option<u32> {
        let run = self.held.first_mut()?;
        let token = *run.start();
        if token == *run.end() {
            self.held.remove(0);
        } else {
            *run = token + 1..=*run.end();
        }
        Some(token)
    }

    /// How many tokens the next claim takes: doubling within a window, starting from a
    /// quarter of the last window's use, bounded by the limit and by what is left.
    fn claim_size(&self) -> u32 {
        let Some(limit) = self.limit else { return 1 };
        let want = if self.last_claim == 0 {
            self.handed_before / 4
        } else {
            self.last_claim.saturating_mul(2)
        };
        let left = limit.saturating_sub(self.last_count) / 4;
        want.min((limit / 8).min(MAX_CLAIM)).min(left).max(1)
    }
}

impl Leases {
    /// A token for this request if one is at hand; otherwise the claim to make. Once the
    /// counter has passed the credential's limit, the window is spent: every request until it
    /// ends is refused without a write.
    pub fn take(&self, credential_id: &str, now: i64) -> Take {
        let w = window(now);
        let mut all = self.by_credential.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() >= REMEMBERED && !all.contains_key(credential_id) {
            all.retain(|_, l| l.window_start >= w.start - WINDOW_SECS);
        }
        let lease = all.entry(credential_id.to_owned()).or_default();
        lease.roll(w.start);
        if let Some(token) = lease.next_held() {
            lease.handed += 1;
            return Take::Ready(Counted {
                count: token,
                window_start: w.start,
            });
        }
        if lease.limit.is_some_and(|l| lease.last_count >= l) {
            return Take::Ready(Counted {
                count: u32::MAX,
                window_start: w.start,
            });
        }
        Take::Claim(Claim {
            window_start: w.start,
            n: lease.claim_size(),
        })
    }

    /// A claim's answer (`last`: the counter after it): this request gets the first token
    /// claimed, the instance keeps the rest for the window.
    pub fn claimed(&self, credential_id: &str, c: Claim, last: u32) -> Counted {
        let first = last.saturating_sub(c.n - 1);
        let mut all = self.by_credential.lock().unwrap_or_else(|e| e.into_inner());
        let lease = all.entry(credential_id.to_owned()).or_default();
        // A claim answered after its window ended is this request's token only.
        if lease.window_start == c.window_start {
            lease.handed += 1;
            lease.last_claim = c.n;
            lease.last_count = lease.last_count.max(last);
            if first < last {
                lease.held.push(first + 1..=last);
            }
        }
        Counted {
            count: first,
            window_start: c.window_start,
        }
    }

    /// The credential's limit, as the decision just made found it: it sizes later claims.
    pub fn learn_limit(&self, credential_id: &str, limit: u32) {
        let mut all = self.by_credential.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lease) = all.get_mut(credential_id) {
            lease.limit = Some(limit);
        }
    }
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

    /// The counter in DynamoDB, as `claim` moves it.
    struct Counter(u32);

    impl Counter {
        fn count(&mut self, leases: &Leases, id: &str, now: i64) -> (Counted, bool) {
            match leases.take(id, now) {
                Take::Ready(c) => (c, false),
                Take::Claim(c) => {
                    self.0 += c.n;
                    (leases.claimed(id, c, self.0), true)
                }
            }
        }
    }

    #[test]
    fn one_instance_admits_exactly_the_limit_with_fewer_writes() {
        let leases = Leases::default();
        let mut db = Counter(0);
        let mut writes = 0;
        for i in 1..=1000u32 {
            let (c, wrote) = db.count(&leases, "c", 600);
            writes += u32::from(wrote);
            leases.learn_limit("c", 1000);
            assert_eq!(c.count, i, "tokens are handed out in order");
            assert!(c.standing(1000, 600).allowed);
        }
        let (c, _) = db.count(&leases, "c", 601);
        assert!(!c.standing(1000, 601).allowed);
        assert!(writes <= 40, "{writes} writes for 1000 requests");
        // The window is spent: refused without another write until it ends.
        assert!(matches!(leases.take("c", 630), Take::Ready(c) if c.count == u32::MAX));
        assert!(matches!(leases.take("c", 660), Take::Claim(_)));
    }

    #[test]
    fn many_instances_never_admit_more_than_the_limit() {
        let instances: Vec<Leases> = (0..7).map(|_| Leases::default()).collect();
        let mut db = Counter(0);
        let mut admitted = std::collections::HashSet::new();
        let mut refused = 0;
        // A fixed interleaving that still mixes the instances unevenly.
        for i in 0..2000usize {
            let l = &instances[(i * 7919) % 7 * (i % 3 + 1) % 7];
            let (c, _) = db.count(l, "c", 600);
            l.learn_limit("c", 500);
            if c.standing(500, 600).allowed {
                assert!(admitted.insert(c.count), "token {} handed twice", c.count);
            } else {
                refused += 1;
            }
        }
        assert!(admitted.len() <= 500);
        // What the instances hold unused is all that is lost: bounded by their claims.
        assert!(
            admitted.len() >= 500 - 7 * 500 / 8,
            "{} admitted",
            admitted.len()
        );
        assert_eq!(refused, 2000 - admitted.len());
    }

    #[test]
    fn claims_grow_from_the_last_window_and_shrink_near_the_limit() {
        let leases = Leases::default();
        let mut db = Counter(0);
        db.count(&leases, "c", 0);
        assert!(
            matches!(leases.take("c", 0), Take::Claim(Claim { n: 1, .. })),
            "limit unknown"
        );
        leases.learn_limit("c", 800);
        for _ in 0..400 {
            db.count(&leases, "c", 1);
        }
        // A new window starts from a quarter of the last one's use (capped at limit / 8).
        assert!(matches!(
            leases.take("c", 60),
            Take::Claim(Claim { n: 100, .. })
        ));
        // Near the limit, a claim takes at most a quarter of what is left.
        let l = Leases::default();
        let c = l.claimed(
            "d",
            Claim {
                window_start: 0,
                n: 1,
            },
            790,
        );
        assert_eq!(c.count, 790);
        l.learn_limit("d", 800);
        assert!(matches!(l.take("d", 1), Take::Claim(Claim { n: 2, .. })));
    }

    #[test]
    fn a_claim_answered_after_its_window_keeps_nothing() {
        let leases = Leases::default();
        let Take::Claim(c) = leases.take("c", 59) else {
            panic!()
        };
        let _ = leases.take("c", 61);
        let counted = leases.claimed("c", Claim { n: 5, ..c }, 5);
        assert_eq!(counted.count, 1);
        assert_eq!(counted.window_start, 0);
        assert!(matches!(leases.take("c", 62), Take::Claim(_)));
    }
}
