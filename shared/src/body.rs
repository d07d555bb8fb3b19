//! Request bodies: content type, JSON parsing with errors that say where and what, and a
//! collector for field errors so a 422 lists every bad field at once.

use http::{StatusCode, header};
use lambda_http::{Body, Request};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// The raw bytes of a request body.
pub fn bytes(req: &Request) -> &[u8] {
    body_bytes(req.body())
}

/// The raw bytes of a request or response body.
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// `application/json` and any `application/*+json`, parameters ignored.
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Parses a JSON body: 415 for another content type, 400 (with line and column) for
/// malformed JSON, 422 naming the field for a wrong type, a missing or an unknown field.
pub fn json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !is_json_content_type(content_type) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the body as `Content-Type: application/json`.",
        ));
    }
    parse(bytes(req))
}

/// The parsing half of [`json`], for bodies already known to be JSON.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("A JSON body is required."));
    }
    let de = &mut serde_json::Deserializer::from_slice(raw);
    let e = match serde_path_to_error::deserialize(de) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let inner = e.inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            // serde_json appends " at line L column C"; the field path says where.
            let text = inner.to_string();
            let message = text.split(" at line ").next().unwrap_or(&text).to_owned();
            let (field, message) = match message.strip_prefix("missing field `") {
                Some(rest) => {
                    let name = rest.trim_end_matches('`');
                    let f = if field.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{field}.{name}")
                    };
                    (f, "is required".to_owned())
                }
                None => (field, message),
            };
            Err(ApiError::unprocessable(vec![FieldError { field, message }]))
        }
        _ => Err(ApiError::bad_request(format!(
            "Malformed JSON at line {}, column {}: {}",
            inner.line(),
            inner.column(),
            inner
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
        ))),
    }
}

/// Collects field errors; `finish` answers 422 listing all of them.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.push(field, message);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::unprocessable(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Thing {
        name: String,
        count: u32,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    fn err(raw: &str) -> ApiError {
        parse::<Thing>(raw.as_bytes()).unwrap_err()
    }

    #[test]
    fn content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type(""));
    }

    #[test]
    fn malformed_json_is_400_with_position() {
        let e = err("{\"name\": \"x\",\n \"count\": }");
        assert_eq!(e.status, 400);
        assert!(e.detail.contains("line 2"), "{}", e.detail);
        assert_eq!(err("  ").status, 400);
    }

    #[test]
    fn data_errors_are_422_naming_the_field() {
        let e = err(r#"{"name": "x", "count": "three"}"#);
        assert_eq!(e.status, 422);
        assert_eq!(e.errors[0].field, "count");
        let e = err(r#"{"name": "x", "count": 1, "inner": {"flag": 3}}"#);
        assert_eq!(e.errors[0].field, "inner.flag");
        let e = err(r#"{"name": "x"}"#);
        assert_eq!(e.errors[0].field, "count");
        assert_eq!(e.errors[0].message, "is required");
        let e = err(r#"{"name": "x", "count": 1, "colour": "red"}"#);
        assert_eq!(e.status, 422);
        assert!(e.errors[0].message.contains("colour"));
    }

    #[test]
    fn fields_collects_all() {
        let mut f = Fields::new();
        f.check(true, "a", "fine");
        f.check(false, "b", "bad");
        f.push("c", "worse");
        let e = f.finish().unwrap_err();
        assert_eq!(e.errors.len(), 2);
    }
}

/// A JSON object read field by field, for APIs whose clients send read-only and unknown
/// fields that must be ignored (OSR, Dastra). Wrong types are recorded in `Fields`.
pub struct Object<'a>(pub &'a serde_json::Map<String, serde_json::Value>);

impl<'a> Object<'a> {
    /// Parses the body as a JSON object (415/400/422 as [`json`]).
    pub fn map(req: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        json(req)
    }

    /// A string field; `null` or absent is `None`, another type is an error.
    pub fn opt_str(&self, name: &str, errors: &mut Fields) -> Option<&'a str> {
        match self.0.get(name) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                errors.push(name, "must be a string");
                None
            }
        }
    }

    /// A required, non-blank string field.
    pub fn str(&self, name: &str, errors: &mut Fields) -> Option<&'a str> {
        let present = self.0.get(name).is_some_and(|v| !v.is_null());
        match self.opt_str(name, errors) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                errors.push(name, "must not be empty");
                None
            }
            None if !present => {
                errors.push(name, "is required");
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod object_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_by_type() {
        let v = json!({"a": "x", "b": 3, "c": null, "d": " ", "extra": [1]});
        let o = Object(v.as_object().unwrap());
        let mut f = Fields::new();
        assert_eq!(o.str("a", &mut f), Some("x"));
        assert_eq!(o.opt_str("c", &mut f), None);
        assert_eq!(o.opt_str("missing", &mut f), None);
        assert!(f.is_empty());
        assert_eq!(o.opt_str("b", &mut f), None);
        assert_eq!(o.str("d", &mut f), None);
        assert_eq!(o.str("missing", &mut f), None);
        let e = f.finish().unwrap_err();
        let named: Vec<_> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["b", "d", "missing"]);
    }
}
