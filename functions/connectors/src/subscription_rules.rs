//! The rules for a webhook subscription's fields, as pure functions over `Fields`.
//!
//! - `url`: absolute `https://` (shared rule, `koppel_shared::https_url`).
//! - `ca_certificate_pem`: one or more PEM `CERTIFICATE` blocks that parse as X.509 and
//!   have not expired; anything else (garbage, a private key) is a 422.
//! - `event_types`: at least one, each from the published list (`webhook::EVENT_TYPES`).
//! - `basic_auth`: a user name without `:` (RFC 7617) and a password.
//! - `headers`: valid HTTP names and values, no duplicates, none of the names the
//!   dispatcher owns ([`reserved_header`]).

use http::{HeaderName, HeaderValue};
use koppel_shared::body::Fields;
use koppel_shared::model::Scopes;
use koppel_shared::webhook::{is_event_type, required_scope, visible_with};
use x509_cert::Certificate;
use x509_cert::der::DecodePem;

pub const MAX_URL: usize = 2000;
pub const MAX_PEM: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE: usize = 4000;
pub const MAX_CREDENTIAL: usize = 500;

/// Names the dispatcher sets itself, or that would break or smuggle the request.
/// `Authorization` is reserved when Basic credentials are set (they produce it).
pub fn reserved_header(name: &str, basic_set: bool) -> bool {
    const RESERVED: [&str; 15] = [
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "proxy-authorization",
        "proxy-connection",
        "user-agent",
        "cookie",
    ];
    let n = name.to_ascii_lowercase();
    RESERVED.contains(&n.as_str())
        || n.starts_with("webhook-")
        || (basic_set && n == "authorization")
}

/// Whether two subscription URLs reach the same receiver: same scheme, host, port (the
/// scheme's default when none is written) and userinfo. Stored secrets were given for one
/// receiver: on any other they must be sent again. Unparsable URLs are never the same.
pub fn same_origin(a: &str, b: &str) -> bool {
    let parts = |u: &str| {
        url::Url::parse(u).ok().map(|u| {
            (
                u.scheme().to_owned(),
                u.host().map(|h| h.to_owned()),
                u.port_or_known_default(),
                u.username().to_owned(),
                u.password().map(str::to_owned),
            )
        })
    };
    matches!((parts(a), parts(b)), (Some(x), Some(y)) if x == y)
}

/// The fields that must be sent again when a subscription moves to another receiver
/// (see [`same_origin`]): the Basic password when Basic credentials are kept without a
/// new one, and each kept hidden header's value (by its index in the new list).
pub fn secrets_to_resend(
    basic_kept_without_password: bool,
    kept_hidden_headers: &[usize],
    errors: &mut Fields,
) {
    const WHY: &str = "must be sent again: the URL now points at another receiver (scheme, \
                       host or port changed), and stored secrets only go where they were given";
    if basic_kept_without_password {
        errors.push("basic_auth.password", WHY);
    }
    for i in kept_hidden_headers {
        errors.push(format!("headers[{i}].value"), WHY);
    }
}

pub fn url(u: &str, errors: &mut Fields) {
    if u.len() > MAX_URL {
        errors.push("url", format!("must be at most {MAX_URL} characters"));
        return;
    }
    koppel_shared::https_url::check(u, "url", errors);
}

/// Parses every certificate in `pem`; `now` is a Unix time.
pub fn ca_certificate_pem(pem: &str, now: i64, errors: &mut Fields) {
    const F: &str = "ca_certificate_pem";
    if pem.len() > MAX_PEM {
        errors.push(F, format!("must be at most {MAX_PEM} bytes"));
        return;
    }
    if pem.contains("PRIVATE KEY") {
        errors.push(F, "contains a private key: send the CA certificate only");
        return;
    }
    let blocks: Vec<&str> = pem
        .split_inclusive("-----END CERTIFICATE-----")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .collect();
    if blocks.is_empty()
        || !blocks
            .iter()
            .all(|b| b.starts_with("-----BEGIN CERTIFICATE-----"))
    {
        errors.push(F, "must be one or more PEM `CERTIFICATE` blocks");
        return;
    }
    for (i, block) in blocks.iter().enumerate() {
        match Certificate::from_pem(block.as_bytes()) {
            Err(_) => {
                errors.push(
                    F,
                    format!("certificate {} is not a valid X.509 certificate", i + 1),
                );
                return;
            }
            Ok(cert) => {
                let not_after = cert
                    .tbs_certificate
                    .validity
                    .not_after
                    .to_unix_duration()
                    .as_secs();
                if i64::try_from(not_after).is_ok_and(|t| t < now) {
                    errors.push(F, format!("certificate {} has expired", i + 1));
                    return;
                }
            }
        }
    }
}

pub fn event_types<S: AsRef<str>>(items: &[S], errors: &mut Fields) -> Vec<String> {
    event_types_within(items, None, errors)
}

/// [`event_types`], each also visible with `within` (scopes, and whose they are, for the
/// message): a connector subscribes only to what its credential may read, a manifest
/// declares only what its scopes let the connector receive.
pub fn event_types_within<S: AsRef<str>>(
    items: &[S],
    within: Option<(&Scopes, &str)>,
    errors: &mut Fields,
) -> Vec<String> {
    if items.is_empty() {
        errors.push("event_types", "name at least one event type");
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in items.iter().enumerate() {
        let t = t.as_ref();
        let lacking = within.and_then(|(scopes, whose)| {
            required_scope(t)
                .filter(|_| !visible_with(t, scopes))
                .map(|need| format!("needs `{need}`, which {whose} lack"))
        });
        if !is_event_type(t) {
            errors.push(
                format!("event_types[{i}]"),
                format!("`{t}` is not a published event type (GET /v1/webhook-event-types)"),
            );
        } else if let Some(m) = lacking {
            errors.push(format!("event_types[{i}]"), m);
        } else if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

/// `replay_failed_since`: an RFC 3339 time, not in the future.
pub fn replay_since(v: &str, now: jiff::Timestamp, errors: &mut Fields) -> Option<jiff::Timestamp> {
    const F: &str = "replay_failed_since";
    match v.parse::<jiff::Timestamp>() {
        Ok(t) if t <= now => Some(t),
        Ok(_) => {
            errors.push(F, "must not be in the future");
            None
        }
        Err(_) => {
            errors.push(F, "must be an RFC 3339 time, e.g. 2026-12-01T08:00:00Z");
            None
        }
    }
}

pub fn basic_username(u: &str, errors: &mut Fields) {
    const F: &str = "basic_auth.username";
    if u.is_empty() {
        errors.push(F, "must not be empty");
    } else if u.contains(':') || u.chars().any(char::is_control) {
        errors.push(F, "must not contain `:` or control characters");
    } else if u.len() > MAX_CREDENTIAL {
        errors.push(F, format!("must be at most {MAX_CREDENTIAL} characters"));
    }
}

pub fn basic_password(p: &str, errors: &mut Fields) {
    const F: &str = "basic_auth.password";
    if p.is_empty() {
        errors.push(F, "must not be empty");
    } else if p.chars().any(char::is_control) || p.len() > MAX_CREDENTIAL {
        errors.push(
            F,
            format!("must be at most {MAX_CREDENTIAL} characters, without control characters"),
        );
    }
}

/// One custom header's name; `i` is its index, `seen` the lower-case names before it.
pub fn header_name(
    name: &str,
    i: usize,
    basic_set: bool,
    seen: &mut Vec<String>,
    errors: &mut Fields,
) {
    let f = format!("headers[{i}].name");
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        errors.push(f, "is not a valid HTTP header name");
    } else if reserved_header(name, basic_set) {
        errors.push(
            f,
            format!("`{name}` is reserved: Koppel sets it when it delivers"),
        );
    } else if seen.contains(&name.to_ascii_lowercase()) {
        errors.push(f, "is a duplicate");
    } else {
        seen.push(name.to_ascii_lowercase());
    }
}

pub fn header_value(value: &str, i: usize, errors: &mut Fields) {
    let f = format!("headers[{i}].value");
    if value.len() > MAX_HEADER_VALUE {
        errors.push(f, format!("must be at most {MAX_HEADER_VALUE} bytes"));
    } else if HeaderValue::from_str(value).is_err() {
        errors.push(f, "is not a valid HTTP header value");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed test CA (P-256), valid 2026-2036, made for these tests only.
    pub const CA_PEM: &str = include_str!("../testdata/ca.pem");

    fn errs(f: impl FnOnce(&mut Fields)) -> Vec<String> {
        let mut e = Fields::new();
        f(&mut e);
        e.finish()
            .err()
            .map(|e| {
                e.errors
                    .into_iter()
                    .map(|x| format!("{}: {}", x.field, x.message))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_replay_starts_at_a_past_rfc3339_time() {
        let now: jiff::Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let mut e = Fields::new();
        let t = replay_since("2026-12-01T08:00:00+01:00", now, &mut e);
        assert_eq!(t, Some("2026-12-01T07:00:00Z".parse().unwrap()));
        assert!(replay_since("2026-12-03T12:00:00Z", now, &mut e).is_some());
        assert!(e.is_empty());
        let bad = errs(|e| {
            replay_since("2026-12-04T00:00:00Z", now, e);
            replay_since("yesterday", now, e);
        });
        assert_eq!(bad.len(), 2);
        assert!(bad.iter().all(|m| m.starts_with("replay_failed_since: ")));
    }

    #[test]
    fn urls_must_be_https() {
        assert!(errs(|e| url("https://hooks.example/koppel", e)).is_empty());
        assert_eq!(errs(|e| url("http://hooks.example/", e)).len(), 1);
        assert_eq!(errs(|e| url("https://u:p@hooks.example/", e)).len(), 1);
        assert_eq!(errs(|e| url("/relative", e)).len(), 1);
    }

    #[test]
    fn any_change_of_scheme_host_port_or_userinfo_is_another_receiver() {
        let a = "https://hooks.example/koppel";
        // Path and query may change; the default port may be written out.
        for same in [
            "https://hooks.example/other?x=1",
            "https://HOOKS.example:443/koppel",
        ] {
            assert!(same_origin(a, same), "{same}");
        }
        for other in [
            "https://hooks.example:8443/koppel",
            "http://hooks.example/koppel",
            "https://evil.example/koppel",
            "https://sub.hooks.example/koppel",
            "https://u@hooks.example/koppel",
            "https://u:p@hooks.example/koppel",
            "not a url",
        ] {
            assert!(!same_origin(a, other), "{other}");
        }
        assert!(same_origin(
            "https://127.0.0.1:9443/a",
            "https://127.0.0.1:9443/b"
        ));
        assert!(!same_origin(
            "https://127.0.0.1:9443/a",
            "https://127.0.0.1:9444/a"
        ));
        assert!(!same_origin("https://[::1]/", "https://127.0.0.1/"));
        assert!(!same_origin("garbage", "garbage"));
    }

    #[test]
    fn every_secret_to_resend_is_named() {
        let out = errs(|e| secrets_to_resend(true, &[0, 2], e));
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].starts_with("basic_auth.password: must be sent again"));
        assert!(out[1].starts_with("headers[0].value"));
        assert!(out[2].starts_with("headers[2].value"));
        assert!(errs(|e| secrets_to_resend(false, &[], e)).is_empty());
    }

    #[test]
    fn ca_pem_must_be_a_live_certificate() {
        let now = 1_800_000_000; // 2027
        assert!(errs(|e| ca_certificate_pem(CA_PEM, now, e)).is_empty());
        let chain = format!("{CA_PEM}\n{CA_PEM}");
        assert!(errs(|e| ca_certificate_pem(&chain, now, e)).is_empty());
        assert_eq!(errs(|e| ca_certificate_pem("garbage", now, e)).len(), 1);
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(errs(|e| ca_certificate_pem(broken, now, e))[0].contains("not a valid X.509"));
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(errs(|e| ca_certificate_pem(key, now, e))[0].contains("private key"));
        let later = 2_500_000_000; // 2049
        assert!(errs(|e| ca_certificate_pem(CA_PEM, later, e))[0].contains("expired"));
    }

    #[test]
    fn event_types_from_the_list() {
        let mut e = Fields::new();
        let t = event_types(&["case.created", "case.created", "case.exploded"], &mut e);
        assert_eq!(t, ["case.created"]);
        assert_eq!(e.finish().unwrap_err().errors[0].field, "event_types[2]");
        assert_eq!(
            errs(|e| {
                event_types::<&str>(&[], e);
            })
            .len(),
            1
        );
    }

    #[test]
    fn reserved_and_bad_headers() {
        for name in [
            "Host",
            "content-length",
            "Webhook-Signature",
            "webhook-id",
            "Transfer-Encoding",
        ] {
            assert!(reserved_header(name, false), "{name}");
        }
        assert!(reserved_header("Authorization", true));
        assert!(!reserved_header("Authorization", false));
        assert!(!reserved_header("X-Api-Key", true));
        let out = errs(|e| {
            let mut seen = Vec::new();
            header_name("X-Api-Key", 0, false, &mut seen, e);
            header_name("x-api-key", 1, false, &mut seen, e);
            header_name("bad name", 2, false, &mut seen, e);
            header_name("Host", 3, false, &mut seen, e);
            header_value("line\r\nbreak", 4, e);
        });
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out[0].starts_with("headers[1].name"));
        assert!(out[2].contains("reserved"));
    }

    #[test]
    fn basic_credentials() {
        assert!(errs(|e| basic_username("koppel", e)).is_empty());
        assert_eq!(errs(|e| basic_username("a:b", e)).len(), 1);
        assert_eq!(errs(|e| basic_password("", e)).len(), 1);
    }
}
