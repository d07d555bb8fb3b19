//! One way to page a list, for every list route: `?limit=&cursor=` in, `{items,
//! next_cursor}` out (`next_cursor` is `null` on the last page).
//!
//! - `limit`: a whole number from 1 to the list's maximum ([`STANDARD`]: default 50, at most
//!   200); anything else is a 422 naming `limit`, on every list.
//! - `cursor`: opaque. It is `base64url(version ‖ position ‖ check)`, where the position is
//!   where the list stopped (for a table list, the part of the sort key after the list's
//!   prefix) and the check is a SHA-256 over the position *and the list it belongs to*
//!   (route, workspace, filters, the caller's view). So a cursor is never a raw table key,
//!   and a changed byte or another list's cursor (another workspace's, or the same list
//!   with other filters) is a 422 naming `cursor`.
//!
//!   The check is not a secret, and needs none: what keeps a crafted cursor harmless is
//!   that a position only ever says where to start *inside* the caller's own list — the
//!   store rebuilds the start key from the caller's partition and the list's prefix
//!   (`Store::page`), so no cursor reaches another workspace or another kind of item. (A
//!   keyed tag would need every list function to read a root secret it otherwise has no
//!   use for.)
//!
//! A page may hold fewer than `limit` items when a list filters what it reads (the store
//! reads a bounded number of items per request): follow `next_cursor` until it is `null`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::body::Fields;

/// A list's page sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub default: usize,
    pub max: usize,
}

/// Users, connectors, endpoints, mandates, service versions.
pub const STANDARD: Limits = Limits {
    default: 50,
    max: 200,
};

/// The cursor format's version byte: a new format gets a new number, old cursors then 422.
const VERSION: u8 = 1;
const CHECK_LEN: usize = 16;
/// Longer input is refused before decoding; positions are short sort-key parts.
const MAX_CURSOR_LEN: usize = 1024;

/// What a cursor belongs to: the list and everything that decides its items. Built by the
/// route, e.g. `Scope::new("users", ws)` or `.with("administration_id", a)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    pub fn new(list: &str, workspace: &str) -> Self {
        let mut s = Self(String::new());
        s.push(list);
        s.push(workspace);
        s
    }

    /// Adds a filter or view that changes which items the list holds (`None`: not set).
    pub fn with(mut self, name: &str, value: Option<&str>) -> Self {
        self.push(name);
        match value {
            Some(v) => {
                self.0.push('=');
                self.push(v);
            }
            None => self.0.push('-'),
        }
        self
    }

    /// Length-prefixed parts, so no two different scopes have the same text.
    fn push(&mut self, part: &str) {
        self.0.push_str(&format!("{}:{part};", part.len()));
    }
}

/// The check that binds a position to its list.
fn check(scope: &Scope, payload: &[u8]) -> [u8; CHECK_LEN] {
    let mut h = Sha256::new();
    h.update(b"koppel list cursor v1\0");
    h.update(scope.0.as_bytes());
    h.update([0]);
    h.update(payload);
    let full = h.finalize();
    let mut out = [0; CHECK_LEN];
    out.copy_from_slice(&full[..CHECK_LEN]);
    out
}

/// The cursor that continues `scope` after `position`.
pub fn seal(scope: &Scope, position: &str) -> String {
    let mut raw = vec![VERSION];
    raw.extend_from_slice(position.as_bytes());
    let c = check(scope, &raw);
    raw.extend_from_slice(&c);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The position in a cursor this API gave out for `scope`, or `None`.
pub fn open(scope: &Scope, cursor: &str) -> Option<String> {
    if cursor.len() > MAX_CURSOR_LEN {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    if raw.len() < 1 + CHECK_LEN || raw[0] != VERSION {
        return None;
    }
    let (payload, c) = raw.split_at(raw.len() - CHECK_LEN);
    if check(scope, payload) != c {
        return None;
    }
    String::from_utf8(payload[1..].to_vec()).ok()
}

/// A parsed `?limit=&cursor=` of one list.
#[derive(Debug)]
pub struct Pager {
    pub limit: usize,
    /// Where the previous page stopped: continue after it.
    pub after: Option<String>,
    scope: Scope,
}

impl Pager {
    /// Reads `limit` and `cursor`; one 422 names each bad one.
    pub fn parse(
        limit: Option<&str>,
        cursor: Option<&str>,
        limits: Limits,
        scope: Scope,
    ) -> Result<Self, ApiError> {
        let mut e = Fields::new();
        let limit = match limit {
            None => limits.default,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=limits.max).contains(&n) => n,
                _ => {
                    e.push(
                        "limit",
                        format!("must be a whole number from 1 to {}", limits.max),
                    );
                    limits.default
                }
            },
        };
        let after = match cursor {
            None => None,
            Some(c) => {
                let p = open(&scope, c);
                if p.is_none() {
                    e.push(
                        "cursor",
                        "must be the `next_cursor` of an earlier page of this same list",
                    );
                }
                p
            }
        };
        e.finish()?;
        Ok(Self {
            limit,
            after,
            scope,
        })
    }

    /// [`Pager::parse`] of a request's query string.
    pub fn from_request(
        req: &lambda_http::Request,
        limits: Limits,
        scope: Scope,
    ) -> Result<Self, ApiError> {
        use lambda_http::RequestExt;
        let q = req.query_string_parameters();
        Self::parse(q.first("limit"), q.first("cursor"), limits, scope)
    }

    /// The `{items, next_cursor}` body; `next` is the position after the page's last item,
    /// `None` on the last page.
    pub fn body(&self, items: Vec<Value>, next: Option<&str>) -> Value {
        serde_json::json!({
            "items": items,
            "next_cursor": next.map(|p| seal(&self.scope, p)),
        })
    }

    /// The cursor that continues after `position` (for lists that answer in their own shape).
    pub fn cursor(&self, position: &str) -> String {
        seal(&self.scope, position)
    }
}

/// One page of `sorted` (in list order, each with its position) after `after`: at most
/// `limit` items, and the position to continue after if any are left. For lists held in
/// one item (a slot's entries), paged the same way as table lists.
pub fn page_of<T>(
    sorted: impl IntoIterator<Item = (String, T)>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut out: Vec<(String, T)> = Vec::with_capacity(limit);
    for (pos, item) in sorted {
        if after.is_some_and(|a| pos.as_str() <= a) {
            continue;
        }
        if out.len() == limit {
            let next = out.last().map(|(p, _)| p.clone());
            return (out.into_iter().map(|(_, t)| t).collect(), next);
        }
        out.push((pos, item));
    }
    (out.into_iter().map(|(_, t)| t).collect(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(limit: Option<&str>, cursor: Option<&str>, scope: Scope) -> Result<Pager, ApiError> {
        Pager::parse(limit, cursor, STANDARD, scope)
    }

    fn fields(e: ApiError) -> Vec<String> {
        assert_eq!(e.status, 422);
        e.errors.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_cursor_round_trips_and_is_no_table_key() {
        let scope = Scope::new("users", "ws_1");
        let c = seal(&scope, "usr_abc");
        assert!(!c.contains("USER#") && !c.contains("usr_abc"));
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let p = parse(Some("10"), Some(&c), scope.clone()).unwrap();
        assert_eq!((p.limit, p.after.as_deref()), (10, Some("usr_abc")));
        let next = p.body(vec![], Some("usr_xyz"))["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(open(&scope, &next).as_deref(), Some("usr_xyz"));
        assert!(p.body(vec![], None)["next_cursor"].is_null());
    }

    #[test]
    fn tampered_foreign_and_garbage_cursors_are_422_naming_cursor() {
        let scope = Scope::new("users", "ws_1");
        let c = seal(&scope, "usr_abc");
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        raw[3] ^= 1;
        let flipped = URL_SAFE_NO_PAD.encode(&raw);
        let mut reversioned = URL_SAFE_NO_PAD.decode(&c).unwrap();
        reversioned[0] = 2;
        let reversioned = URL_SAFE_NO_PAD.encode(&reversioned);
        let other_ws = seal(&Scope::new("users", "ws_2"), "usr_abc");
        let other_list = seal(&Scope::new("connectors", "ws_1"), "usr_abc");
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        for bad in [
            flipped.as_str(),
            reversioned.as_str(),
            &other_ws,
            &other_list,
            "garbage!",
            "",
            "AAAA",
            "USER#usr_abc",
            &long,
        ] {
            let e = parse(None, Some(bad), scope.clone()).unwrap_err();
            assert_eq!(fields(e), ["cursor"], "{bad}");
        }
    }

    #[test]
    fn a_cursor_is_bound_to_the_filters() {
        let a = Scope::new("endpoints", "ws_1").with("administration_id", Some("A"));
        let b = Scope::new("endpoints", "ws_1").with("administration_id", Some("B"));
        let none = Scope::new("endpoints", "ws_1").with("administration_id", None);
        let c = seal(&a, "ep_1");
        assert!(open(&a, &c).is_some());
        assert!(open(&b, &c).is_none());
        assert!(open(&none, &c).is_none());
        // Parts are delimited: ("ab", "c") is not ("a", "bc").
        assert_ne!(Scope::new("ab", "c"), Scope::new("a", "bc"));
    }

    #[test]
    fn limits_default_max_and_bad_values() {
        let s = || Scope::new("users", "ws_1");
        assert_eq!(parse(None, None, s()).unwrap().limit, 50);
        assert_eq!(parse(Some("1"), None, s()).unwrap().limit, 1);
        assert_eq!(parse(Some("200"), None, s()).unwrap().limit, 200);
        for bad in [
            "0",
            "201",
            "-1",
            "ten",
            "",
            "1.5",
            " 5",
            "99999999999999999999999",
        ] {
            let e = parse(Some(bad), None, s()).unwrap_err();
            assert_eq!(fields(e), ["limit"], "{bad}");
        }
        let e = parse(Some("0"), Some("junk"), s()).unwrap_err();
        assert_eq!(fields(e), ["limit", "cursor"]);
    }

    #[test]
    fn page_of_a_sorted_list() {
        let items = || (1..=5).map(|i| (format!("p{i}"), i));
        assert_eq!(page_of(items(), None, 2), (vec![1, 2], Some("p2".into())));
        assert_eq!(
            page_of(items(), Some("p2"), 2),
            (vec![3, 4], Some("p4".into()))
        );
        assert_eq!(page_of(items(), Some("p4"), 2), (vec![5], None));
        // A full last page has no next cursor.
        assert_eq!(page_of(items(), Some("p3"), 2), (vec![4, 5], None));
        assert_eq!(page_of(items(), Some("p5"), 2), (vec![], None));
        assert_eq!(page_of(items(), None, 10).1, None);
    }
}
