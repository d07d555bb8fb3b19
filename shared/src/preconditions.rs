//! Optimistic concurrency over HTTP: a resource's `ETag` is its version; a change names
//! the version it was made from in `If-Match`. Missing where required → 428; another
//! version → 412.

use crate::ApiError;
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};

pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

pub fn with_etag(mut resp: Response<Body>, version: u64) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn stale() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        "The resource changed since you read it (`If-Match` does not name its current version): \
         read it again and retry.",
    )
}

/// Whether an `If-Match` value (`"3"`, or a list) names `current`. Comparison is strong
/// (RFC 9110): a weak tag never matches, and neither does `*`, which would make a blind
/// overwrite out of a change that must name the version it was made from.
pub fn matches(if_match: &str, current: u64) -> bool {
    if_match.split(',').map(str::trim).any(|tag| {
        tag.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|v| v == current)
    })
}

fn header(req: &Request) -> Result<Option<&str>, ApiError> {
    match req.headers().get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::bad_request("`If-Match` is not readable text.")),
    }
}

/// An update: `If-Match` is required and must name the current version.
pub fn require(req: &Request, current: u64) -> Result<(), ApiError> {
    match header(req)? {
        None => Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "Send `If-Match` with the `ETag` you read, so that concurrent changes are not lost.",
        )),
        Some(v) if matches(v, current) => Ok(()),
        Some(_) => Err(stale()),
    }
}

/// An action that is safe without a precondition (disable, delete): checked when given.
/// `Ok(true)` when the caller sent one.
pub fn optional(req: &Request, current: u64) -> Result<bool, ApiError> {
    match header(req)? {
        None => Ok(false),
        Some(v) if matches(v, current) => Ok(true),
        Some(_) => Err(stale()),
    }
}

/// The answer when a versioned write lost a race.
pub fn lost_race() -> ApiError {
    stale()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        assert!(matches("\"3\"", 3));
        assert!(!matches("W/\"3\"", 3));
        assert!(matches("\"1\", \"3\"", 3));
        assert!(!matches("*", 7));
        assert!(!matches("\"2\"", 3));
        assert!(!matches("garbage", 3));
        assert_eq!(etag(4), "\"4\"");
    }
}
