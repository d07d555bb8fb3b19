//! Errors as RFC 9457 `application/problem+json`, always with the request id.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field in a 422.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An error a route answers with. `detail` is shown to the caller; an internal cause
/// travels in `cause`, which the pipeline logs in the request's span and no response carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Short stable name; the problem `type` is `urn:koppel:problem:<slug>`.
    pub slug: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Seconds (a rate-limit window is a minute); u32 keeps `ApiError` small.
    pub retry_after: Option<u32>,
    /// Sent as `Location`: where the resource the problem is about lives.
    pub location: Option<String>,
    /// What went wrong inside: for the log only. A boxed `str`: `ApiError` travels in
    /// every `Result`, so it stays small.
    pub cause: Option<Box<str>>,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            location: None,
            cause: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 409: the change conflicts with the resource's state (named in `detail`).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such resource, or not visible to this credential.",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("The request body exceeds {limit} bytes."),
        )
    }

    pub fn too_many_requests(retry_after: u32, limit: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!(
                    "This credential may make {limit} requests per minute; retry after {retry_after} s."
                ),
            )
        }
    }

    pub fn unprocessable(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-fields",
                "One or more fields are invalid.",
            )
        }
    }

    /// A bare 500; `cause` is kept for the pipeline's log (once, with the request id).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(cause.to_string().into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on our side. Quote the request id if you contact us.",
            )
        }
    }

    pub fn to_response(&self, request_id: &str, instance: &str) -> Response<Body> {
        let mut body = json!({
            "type": format!("urn:koppel:problem:{}", self.slug),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "instance": instance,
            "request_id": request_id,
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        let mut resp = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, PROBLEM_JSON)
            .body(Body::Text(body.to_string()))
            .expect("static headers are valid");
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(v) = self
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.slug, self.detail)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_json_shape() {
        let r = ApiError::too_many_requests(12, 30).to_response("req-1", "/v1/me");
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["content-type"], PROBLEM_JSON);
        assert_eq!(r.headers()["retry-after"], "12");
        let Body::Text(t) = r.body() else {
            panic!("text body")
        };
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["status"], 429);
        assert_eq!(v["type"], "urn:koppel:problem:rate-limited");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["instance"], "/v1/me");
    }

    #[test]
    fn field_errors_listed() {
        let e = ApiError::unprocessable(vec![FieldError {
            field: "scopes[0]".into(),
            message: "unknown".into(),
        }]);
        let Body::Text(t) = e.to_response("r", "/x").into_body() else {
            panic!()
        };
        assert!(t.contains("\"field\":\"scopes[0]\""));
    }

    #[test]
    fn an_internal_cause_is_kept_but_never_answered() {
        let e = ApiError::internal("table koppel is gone");
        assert_eq!(e.cause.as_deref(), Some("table koppel is gone"));
        let Body::Text(t) = e.to_response("r", "/x").into_body() else {
            panic!()
        };
        assert!(!t.contains("koppel is gone"));
        assert!(!e.to_string().contains("koppel is gone"));
    }
}
