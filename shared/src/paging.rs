//! One way to page a list, for every list route: `?limit=&cursor=` in, `{items,
//! next_cursor}` out (`next_cursor` is `null` on the last page).
//!
//! - `limit`: a whole number from 1 to the list's maximum ([`STANDARD`]: default 50, at most
//!   200); anything else is a 422 naming `limit`, on every list.
//! - `cursor`: opaque. It is `base64url(version ‖ position ‖ tag)`, where the position is
//!   where the list stopped (for a table list, the part of the sort key after the list's
//!   prefix) and the tag is an HMAC over the position *and the list it belongs to* (route,
//!   workspace, filters, the caller's view) under a key derived from the token pepper. So a
//!   cursor is never a raw table key, a changed byte or another list's cursor (another
//!   workspace's, or the same list with other filters) is a 422 naming `cursor`, and the
//!   store rebuilds the start key inside the caller's own partition anyway.
//!
//! A page may hold fewer than `limit` items when a list filters what it reads (the store
//! reads a bounded number of items per request): follow `next_cursor` until it is `null`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::body::Fields;
use crate::secrets::SecretRing;
use crate::{ApiError, Ctx};

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
const TAG_LEN: usize = 16;
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

/// The keys cursors are tagged with: the current one, then the one before a rotation (so a
/// cursor handed out just before a rotation still works).
#[derive(Clone)]
pub struct CursorKeys(Vec<[u8; 32]>);

/// Never prints the keys.
impl std::fmt::Debug for CursorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CursorKeys").field(&self.0.len()).finish()
    }
}

impl CursorKeys {
    /// Derived from root secret values (current first); the label keeps them apart from
    /// the credential hashes made with the same pepper.
    pub fn derive<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self(
            secrets
                .into_iter()
                .map(|s| {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(s).expect("HMAC takes keys of any length");
                    mac.update(b"koppel list cursor key v1");
                    mac.finalize().into_bytes().into()
                })
                .collect(),
        )
    }

    pub fn from_ring(ring: &SecretRing) -> Self {
        Self::derive(
            std::iter::once(ring.current.value.as_slice())
                .chain(ring.previous.as_ref().map(|p| p.value.as_slice())),
        )
    }

    pub async fn of(ctx: &Ctx) -> Result<Self, ApiError> {
        Ok(Self::from_ring(&*ctx.pepper.ring().await?))
    }

    fn tag(key: &[u8; 32], scope: &Scope, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(scope.0.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The cursor that continues `scope` after `position`.
    pub fn seal(&self, scope: &Scope, position: &str) -> String {
        let key = self.0.first().expect("a ring has a current secret");
        let mut raw = vec![VERSION];
        raw.extend_from_slice(position.as_bytes());
        let tag = Self::tag(key, scope, &raw);
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The position in a cursor this API gave out for `scope`, or `None`.
    pub fn open(&self, scope: &Scope, cursor: &str) -> Option<String> {
        if cursor.len() > MAX_CURSOR_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
        if raw.len() < 1 + TAG_LEN || raw[0] != VERSION {
            return None;
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        let tagged = self.0.iter().any(|k| {
            use subtle::ConstantTimeEq;
            Self::tag(k, scope, payload)[..].ct_eq(tag).into()
        });
        if !tagged {
            return None;
        }
        String::from_utf8(payload[1..].to_vec()).ok()
    }
}

/// A parsed `?limit=&cursor=` of one list.
#[derive(Debug)]
pub struct Pager {
    pub limit: usize,
    /// Where the previous page stopped: continue after it.
    pub after: Option<String>,
    scope: Scope,
    keys: CursorKeys,
}

impl Pager {
    /// Reads `limit` and `cursor`; one 422 names each bad one.
    pub fn parse(
        limit: Option<&str>,
        cursor: Option<&str>,
        limits: Limits,
        scope: Scope,
        keys: CursorKeys,
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
                let p = keys.open(&scope, c);
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
            keys,
        })
    }

    /// [`Pager::parse`] of a request's query string, with the workspace's cursor keys.
    pub async fn from_request(
        ctx: &Ctx,
        req: &lambda_http::Request,
        limits: Limits,
        scope: Scope,
    ) -> Result<Self, ApiError> {
        use lambda_http::RequestExt;
        let q = req.query_string_parameters();
        let keys = CursorKeys::of(ctx).await?;
        Self::parse(q.first("limit"), q.first("cursor"), limits, scope, keys)
    }

    /// The `{items, next_cursor}` body; `next` is the position after the page's last item,
    /// `None` on the last page.
    pub fn body(&self, items: Vec<Value>, next: Option<&str>) -> Value {
        serde_json::json!({
            "items": items,
            "next_cursor": next.map(|p| self.keys.seal(&self.scope, p)),
        })
    }

    /// The cursor that continues after `position` (for lists that answer in their own shape).
    pub fn cursor(&self, position: &str) -> String {
        self.keys.seal(&self.scope, position)
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

    fn keys() -> CursorKeys {
        CursorKeys::derive([b"pepper-now".as_slice()])
    }

    fn parse(limit: Option<&str>, cursor: Option<&str>, scope: Scope) -> Result<Pager, ApiError> {
        Pager::parse(limit, cursor, STANDARD, scope, keys())
    }

    fn fields(e: ApiError) -> Vec<String> {
        assert_eq!(e.status, 422);
        e.errors.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_cursor_round_trips_and_is_no_table_key() {
        let scope = Scope::new("users", "ws_1");
        let c = keys().seal(&scope, "usr_abc");
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
        assert_eq!(keys().open(&scope, &next).as_deref(), Some("usr_xyz"));
        assert!(p.body(vec![], None)["next_cursor"].is_null());
    }

    #[test]
    fn tampered_foreign_and_garbage_cursors_are_422_naming_cursor() {
        let scope = Scope::new("users", "ws_1");
        let c = keys().seal(&scope, "usr_abc");
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        raw[3] ^= 1;
        let flipped = URL_SAFE_NO_PAD.encode(&raw);
        let mut reversioned = URL_SAFE_NO_PAD.decode(&c).unwrap();
        reversioned[0] = 2;
        let reversioned = URL_SAFE_NO_PAD.encode(&reversioned);
        let other_ws = keys().seal(&Scope::new("users", "ws_2"), "usr_abc");
        let other_list = keys().seal(&Scope::new("connectors", "ws_1"), "usr_abc");
        let other_key = CursorKeys::derive([b"another pepper".as_slice()]).seal(&scope, "usr_abc");
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        for bad in [
            flipped.as_str(),
            reversioned.as_str(),
            &other_ws,
            &other_list,
            &other_key,
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
        let c = keys().seal(&a, "ep_1");
        assert!(keys().open(&a, &c).is_some());
        assert!(keys().open(&b, &c).is_none());
        assert!(keys().open(&none, &c).is_none());
        // Parts are delimited: ("ab", "c") is not ("a", "bc").
        assert_ne!(Scope::new("ab", "c"), Scope::new("a", "bc"));
    }

    #[test]
    fn a_cursor_from_before_a_rotation_still_opens() {
        let scope = Scope::new("users", "ws_1");
        let old = CursorKeys::derive([b"old".as_slice()]).seal(&scope, "usr_1");
        let rotated = CursorKeys::derive([b"new".as_slice(), b"old".as_slice()]);
        assert_eq!(rotated.open(&scope, &old).as_deref(), Some("usr_1"));
        let newer = rotated.seal(&scope, "usr_2");
        assert_eq!(
            CursorKeys::derive([b"new".as_slice()])
                .open(&scope, &newer)
                .as_deref(),
            Some("usr_2")
        );
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
