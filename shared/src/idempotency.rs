//! `Idempotency-Key` on POST: the same key with the same request replays the first response;
//! the same key with another request is refused; a key whose first request is still running
//! gets 409. Keys are scoped to the credential and kept for 24 hours.
//!
//! The record is claimed with a conditional put before the route runs (so two concurrent
//! requests cannot both run), completed with the response afterwards, and released if the
//! route failed on our side, so a retry can run again. A claim whose request died expires
//! after a minute.
//!
//! A replay is an answer to *this* request: the scope and level checks the first run made
//! ([`crate::principal::checks_made`]) are made again against the credential as it is now,
//! so a narrowed credential gets 403, not its stored answer. A response that showed a
//! secret (`Cache-Control: no-store`) is never kept, as secrets are stored only hashed or
//! sealed; the same key then answers 409 `idempotency-secret-shown` with the created
//! resource's `Location`, so a retry never creates a second resource with a second secret.

use std::collections::HashMap;

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::principal::{Principal, Requirement};
use crate::store::{Key, Store, StoreError, item, with_ttl};

pub const HEADER: &str = "idempotency-key";
const KEEP_SECS: i64 = 24 * 3600;
const CLAIM_SECS: i64 = 60;
/// Response headers worth replaying.
const REPLAYED_HEADERS: [&str; 3] = ["content-type", "location", "etag"];

/// The key a request carries, if it is a POST with one. 400 if the key is malformed.
pub fn key_of(req: &Request) -> Result<Option<String>, ApiError> {
    if req.method() != http::Method::POST {
        return Ok(None);
    }
    let Some(v) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let k = v.to_str().unwrap_or_default();
    if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        ));
    }
    Ok(Some(k.to_owned()))
}

/// What identifies "the same request": method, path and body.
pub fn fingerprint(req: &Request) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update([0]);
    h.update(req.uri().path());
    h.update([0]);
    h.update(crate::body::bytes(req));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    /// `None` while the first request runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    headers: HashMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    body: String,
    /// The first answer showed a secret and is not kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    secret_shown: bool,
    /// The scope and level checks the first run made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    required: Vec<Requirement>,
}

pub enum Claim {
    /// First use: run the route, then [`finish`].
    Fresh,
    Replay(Response<Body>),
    /// The first run created a resource and showed its secret once: 409, with where the
    /// resource is.
    SecretShown {
        location: Option<String>,
    },
}

/// The answer for [`Claim::SecretShown`].
pub fn secret_shown(location: Option<&str>) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::CONFLICT,
        "idempotency-secret-shown",
        "A request with this Idempotency-Key succeeded and showed a secret, which is shown only once; \
         nothing was created again. Read the resource at its Location, or issue a new secret.",
    );
    e.location = location.map(str::to_owned);
    e
}

/// Claims the key for `p`'s credential, or answers from the first run's record.
pub async fn claim(
    store: &Store,
    p: &Principal,
    k: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Claim, ApiError> {
    let credential_id = p.credential_id.as_str();
    let record = Record {
        fingerprint: fingerprint.to_owned(),
        status: None,
        headers: HashMap::new(),
        body: String::new(),
        secret_shown: false,
        required: Vec::new(),
    };
    let it = with_ttl(
        item(&Key::idempotency(credential_id, k), &record)?,
        now + CLAIM_SECS,
    );
    if store.put_unless_live(it, now).await? {
        return Ok(Claim::Fresh);
    }
    let Some(existing) = store
        .get::<Record>(&Key::idempotency(credential_id, k))
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency-conflict",
            "A request with this Idempotency-Key changed state meanwhile; retry.",
        ));
    };
    if existing.fingerprint != fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "This Idempotency-Key was used for a different request.",
        ));
    }
    let Some(status) = existing.status else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency-in-progress",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        ));
    };
    for r in &existing.required {
        p.require(r.scope, r.level)?;
    }
    if existing.secret_shown {
        return Ok(Claim::SecretShown {
            location: existing.headers.get("location").cloned(),
        });
    }
    let mut resp = Response::builder()
        .status(status)
        .body(Body::Text(existing.body))
        .map_err(ApiError::internal)?;
    for (name, value) in existing.headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Claim::Replay(resp))
}

/// Stores the response for replay, with the checks the route made. Failures on our side
/// release the key instead, so a retry runs again.
pub async fn finish(
    store: &Store,
    credential_id: &str,
    k: &str,
    fingerprint: &str,
    (s, headers, body): (StatusCode, &http::HeaderMap, Option<&[u8]>),
    required: Vec<Requirement>,
    now: i64,
) -> Result<(), StoreError> {
    // A response that carries a secret says `Cache-Control: no-store`: its body is not
    // kept, only that it happened and where the resource is.
    let secret_shown = headers
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("no-store"));
    // A streamed answer is not kept either: the key is released.
    let Some(body) = body.filter(|_| !s.is_server_error() && s != StatusCode::TOO_MANY_REQUESTS)
    else {
        return store.delete(&Key::idempotency(credential_id, k)).await;
    };
    let record = Record {
        fingerprint: fingerprint.to_owned(),
        status: Some(s.as_u16()),
        headers: REPLAYED_HEADERS
            .iter()
            .filter_map(|h| {
                let v = headers.get(*h)?.to_str().ok()?;
                Some(((*h).to_owned(), v.to_owned()))
            })
            .collect(),
        body: if secret_shown {
            String::new()
        } else {
            String::from_utf8_lossy(body).into_owned()
        },
        secret_shown,
        required,
    };
    let it = with_ttl(
        item(&Key::idempotency(credential_id, k), &record)?,
        now + KEEP_SECS,
    );
    store.put(it).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: &str, key: Option<&str>) -> Request {
        let mut b = http::Request::builder().method("POST").uri(path);
        if let Some(k) = key {
            b = b.header(HEADER, k);
        }
        b.body(Body::Text(body.into())).unwrap()
    }

    #[test]
    fn keys_only_on_post_and_well_formed() {
        assert_eq!(
            key_of(&post("/x", "{}", Some("abc-1"))).unwrap().as_deref(),
            Some("abc-1")
        );
        assert_eq!(key_of(&post("/x", "{}", None)).unwrap(), None);
        assert!(key_of(&post("/x", "{}", Some("has space"))).is_err());
        let long = "k".repeat(256);
        assert!(key_of(&post("/x", "{}", Some(&long))).is_err());
        let get = http::Request::builder()
            .method("GET")
            .uri("/x")
            .header(HEADER, "abc")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(key_of(&get).unwrap(), None);
    }

    #[test]
    fn fingerprint_covers_path_and_body() {
        let a = fingerprint(&post("/x", "{\"a\":1}", None));
        assert_eq!(a, fingerprint(&post("/x", "{\"a\":1}", None)));
        assert_ne!(a, fingerprint(&post("/y", "{\"a\":1}", None)));
        assert_ne!(a, fingerprint(&post("/x", "{\"a\":2}", None)));
    }
}
