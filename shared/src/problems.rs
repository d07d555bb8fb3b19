//! Every problem type Koppel answers with, in one table: the slug of
//! `urn:koppel:problem:<slug>`, when it happens and what the caller can do. The OpenAPI
//! document renders it under "Problems" in `info.description`, one anchor per slug
//! ([`anchor`]), so the documentation page explains each `type` at
//! `/docs#problem-<slug>` ([`doc_url`]).
//!
//! A test scans the sources (every `ApiError::new`, the helpers in `error.rs`, the gateway
//! responses in template.yaml) and fails on a slug this table does not explain.

/// One problem type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem {
    pub slug: &'static str,
    /// The HTTP statuses it comes with.
    pub status: &'static [u16],
    pub title: &'static str,
    pub when: &'static str,
    pub what_to_do: &'static str,
}

const fn p(
    slug: &'static str,
    status: &'static [u16],
    title: &'static str,
    when: &'static str,
    what_to_do: &'static str,
) -> Problem {
    Problem {
        slug,
        status,
        title,
        when,
        what_to_do,
    }
}

/// Every problem type, in the order the documentation lists them.
pub const PROBLEMS: &[Problem] = &[
    p(
        "bad-request",
        &[400],
        "Malformed request",
        "The body is not valid JSON, or not of the shape the route reads (`detail` says where it broke: line, column, field), or a header is malformed (`If-Match`, `Idempotency-Key`).",
        "Fix the request; sending it again unchanged gives the same answer.",
    ),
    p(
        "invalid-fields",
        &[422],
        "Invalid fields",
        "One or more fields or query parameters are invalid. `errors` lists every one of them at once, each with `field` (a JSON path such as `scopes[0]`, or the parameter name) and `message`.",
        "Correct every field named in `errors` and send the request again.",
    ),
    p(
        "unsupported-media-type",
        &[415],
        "Unsupported media type",
        "A body was sent without `Content-Type: application/json`.",
        "Send the body as JSON with that header.",
    ),
    p(
        "payload-too-large",
        &[413],
        "Payload too large",
        "The body exceeds 1 MiB, or the request line and headers exceed 10 KiB (the gateway answers the latter).",
        "Send less: split an import, page a list.",
    ),
    p(
        "unauthorized",
        &[401],
        "Unauthorized",
        "The credential is missing, malformed, unknown, revoked or expired, or a JWT fails its checks (signature, `exp`, `aud`, `iss`, a reused `jti`). The answer never says which.",
        "Send `API-Interface-Id` with `API-Key`, `Authorization: Bearer` with a token, or a signed JWT; issue a new secret if it was revoked or lost.",
    ),
    p(
        "body-hash-mismatch",
        &[401],
        "JWT body hash mismatch",
        "The JWT carries a `hash` claim that is not the base64 SHA-256 of this request body (OSR).",
        "Sign the exact bytes you send: compute the hash over the body as sent.",
    ),
    p(
        "forbidden",
        &[403],
        "Forbidden",
        "The credential is valid but may not do this: a missing scope or access level, a disabled connector, an address outside its IP allow-list, a user without `api_access`, a connector credential where a personal token is needed, or a permission (`manage_users`, `manage_connectors`, owner) the user lacks. `detail` names it when that reveals nothing.",
        "Use a credential that holds the scope, level or permission, or ask the organisation to grant it.",
    ),
    p(
        "not-found",
        &[404],
        "Not found",
        "No such route or method, or no such resource visible to this credential: another workspace's id, a case outside the connector's saved search.",
        "Check the path and id; list the resource to see what this credential can see.",
    ),
    p(
        "conflict",
        &[409],
        "Conflict",
        "The change conflicts with the resource's current state, named in `detail`: an overlapping endpoint, a saved search still in use, a credential revoked meanwhile, a concurrent change.",
        "Read the resource again, resolve what `detail` names, and retry.",
    ),
    p(
        "token-limit",
        &[409],
        "Too many live tokens",
        "The user already holds 50 live tokens (personal ones, or per connector the OTP-issued ones).",
        "Revoke one, or let one expire, before issuing another.",
    ),
    p(
        "idempotency-key-reused",
        &[422],
        "Idempotency key reused",
        "This `Idempotency-Key` was used within 24 hours for a different request (another route or body).",
        "Use a new key for a new request; reuse a key only to retry the very same request.",
    ),
    p(
        "idempotency-in-progress",
        &[409],
        "Idempotent request in progress",
        "A request with this `Idempotency-Key` is still being processed.",
        "Retry shortly with the same key: you will get its answer.",
    ),
    p(
        "idempotency-conflict",
        &[409],
        "Idempotent request changed meanwhile",
        "The stored record of this `Idempotency-Key` changed while this request read it.",
        "Retry with the same key.",
    ),
    p(
        "idempotency-secret-shown",
        &[409],
        "Secret already shown",
        "The first request with this `Idempotency-Key` succeeded and showed a secret, which is shown only once; nothing was created again. `Location` points at what was created.",
        "Read the resource at `Location`; if the secret was lost, revoke it and issue a new one.",
    ),
    p(
        "precondition-failed",
        &[412],
        "Precondition failed",
        "`If-Match` does not name the resource's current version: it changed since you read it (a weak tag or `*` never matches).",
        "Read the resource again, reapply your change to it, and send it with the new `ETag`.",
    ),
    p(
        "precondition-required",
        &[428],
        "Precondition required",
        "This change needs `If-Match`, so that concurrent changes are not lost.",
        "Read the resource and send its `ETag` as `If-Match`.",
    ),
    p(
        "rate-limited",
        &[429],
        "Too many requests",
        "This credential used up its requests for the current minute (30 unless its connector or token sets another); the gateway may also throttle.",
        "Wait the seconds in `Retry-After`; the `RateLimit-*` headers on every answer show what is left.",
    ),
    p(
        "gateway",
        &[400, 403, 404, 413, 415, 429],
        "Refused by the gateway",
        "API Gateway refused the request before Koppel saw it, for a reason without a more specific problem type; `detail` is the gateway's message. These answers carry no `status` member: the HTTP status is the answer's own.",
        "Read `detail`; quote the `request_id` if you contact the organisation.",
    ),
    p(
        "internal",
        &[500, 502, 503, 504],
        "Internal error",
        "Something went wrong on Koppel's side. No details are given; it is logged under the request id.",
        "Retry later (with the same `Idempotency-Key` for a `POST`); quote the `request_id` if it persists.",
    ),
];

/// The problem type URI of `slug`.
pub fn type_uri(slug: &str) -> String {
    format!("urn:koppel:problem:{slug}")
}

/// The anchor of `slug`'s entry in the documentation.
pub fn anchor(slug: &str) -> String {
    format!("problem-{slug}")
}

/// Where the documentation page explains `slug`.
pub fn doc_url(slug: &str) -> String {
    format!("/docs#{}", anchor(slug))
}

pub fn find(slug: &str) -> Option<&'static Problem> {
    PROBLEMS.iter().find(|p| p.slug == slug)
}

/// The "Problems" section of the document's description (CommonMark with HTML anchors,
/// which is what OpenAPI renderers show).
pub fn markdown() -> String {
    let mut out = String::from(
        "<a id=\"problems\"></a>\n\n## Problems\n\n\
         Every error is `application/problem+json` (RFC 9457): `type`, `title`, `status`, \
         `detail`, `instance` (the path called) and `request_id` (quote it when you ask for \
         help); a 422 adds `errors`, every invalid field. The `type` is \
         `urn:koppel:problem:<slug>`, explained below at `#problem-<slug>`.\n\n\
         | type | status | title |\n| --- | --- | --- |\n",
    );
    for p in PROBLEMS {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | {} |\n",
            p.slug,
            anchor(p.slug),
            statuses(p),
            p.title
        ));
    }
    for p in PROBLEMS {
        out.push_str(&format!(
            "\n<a id=\"{}\"></a>\n\n### {} ({})\n\n`{}`\n\n**When:** {}\n\n**What to do:** {}\n",
            anchor(p.slug),
            p.title,
            statuses(p),
            type_uri(p.slug),
            p.when,
            p.what_to_do
        ));
    }
    out
}

fn statuses(p: &Problem) -> String {
    p.status
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The slugs `text` (Rust source) uses: the second argument of every `ApiError::new(`
/// call (and of `Self::new(` in `ApiError`'s own file, `in_error_rs`), which must be a
/// string literal, and every `urn:koppel:problem:<slug>` written out. `Err` names a call
/// whose slug is not a literal, so that no slug escapes the table by being computed.
pub fn slugs_in_source(text: &str, in_error_rs: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let calls: &[&str] = if in_error_rs {
        &["ApiError::new(", "Self::new("]
    } else {
        &["ApiError::new("]
    };
    for &call in calls {
        let mut rest = text;
        while let Some(i) = rest.find(call) {
            rest = &rest[i + call.len()..];
            // The status is an expression without commas or string literals.
            let Some(comma) = rest.find(',') else { break };
            let arg = rest[comma + 1..].trim_start();
            let literal = arg
                .strip_prefix('"')
                .and_then(|a| a.split_once('"'))
                .map(|(s, _)| s);
            match literal {
                Some(s) => out.push(s.to_owned()),
                // `Self { ..Self::new(…) }` spreads and the like.
                None if call == "Self::new(" && !arg.starts_with(char::is_alphabetic) => {}
                None => {
                    let line: String = rest.chars().take(60).collect();
                    return Err(format!("a slug that is not a string literal: {call}{line}"));
                }
            }
        }
    }
    out.extend(urn_slugs(text));
    Ok(out)
}

/// The slugs of the `urn:koppel:problem:<slug>` URIs written out in `text`.
pub fn urn_slugs(text: &str) -> Vec<String> {
    const URN: &str = "urn:koppel:problem:";
    text.match_indices(URN)
        .map(|(i, _)| {
            text[i + URN.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name();
            if path.is_dir() {
                if name != "target"
                    && name != "node_modules"
                    && !name.to_string_lossy().starts_with('.')
                {
                    rust_files(&path, out);
                }
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_slug_the_code_and_the_gateway_use_is_in_the_table() {
        let mut files = Vec::new();
        for dir in ["shared/src", "functions", "tools"] {
            rust_files(&Path::new(ROOT).join(dir), &mut files);
        }
        assert!(files.len() > 20, "found only {files:?}");
        let mut unknown = Vec::new();
        let mut used = std::collections::BTreeSet::new();
        for f in files
            .iter()
            .filter(|f| !f.ends_with("shared/src/problems.rs"))
        {
            let text = std::fs::read_to_string(f).unwrap();
            let slugs = slugs_in_source(&text, f.ends_with("shared/src/error.rs"))
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            for s in slugs {
                if find(&s).is_none() {
                    unknown.push(format!("{}: {s}", f.display()));
                }
                used.insert(s);
            }
        }
        let template = std::fs::read_to_string(Path::new(ROOT).join("template.yaml")).unwrap();
        let gateway = urn_slugs(&template);
        assert!(gateway.len() >= 5, "{gateway:?}");
        for s in gateway {
            if find(&s).is_none() {
                unknown.push(format!("template.yaml: {s}"));
            }
            used.insert(s);
        }
        assert!(
            unknown.is_empty(),
            "problem slugs not in shared::problems::PROBLEMS: {unknown:#?}"
        );
        // And the table explains nothing that nothing answers with.
        let unused: Vec<_> = PROBLEMS
            .iter()
            .filter(|p| !used.contains(p.slug))
            .map(|p| p.slug)
            .collect();
        assert!(unused.is_empty(), "explained but never used: {unused:?}");
    }

    #[test]
    fn the_scanner_finds_literal_slugs_and_refuses_computed_ones() {
        let src = r#"
            ApiError::new(StatusCode::CONFLICT, "token-limit", "x");
            ApiError::new(
                http::StatusCode::CONFLICT,
                "made-up", format!("y"));
            Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
            "type": "urn:koppel:problem:gateway", format!("urn:koppel:problem:{}", s)
        "#;
        assert_eq!(
            slugs_in_source(src, true).unwrap(),
            ["token-limit", "made-up", "bad-request", "gateway"]
        );
        // `Self::new` elsewhere is another type's constructor.
        assert_eq!(
            slugs_in_source(src, false).unwrap(),
            ["token-limit", "made-up", "gateway"]
        );
        assert!(
            slugs_in_source("ApiError::new(StatusCode::CONFLICT, slug, \"d\")", false).is_err()
        );
        assert!(slugs_in_source("Self::new(StatusCode::CONFLICT, slug, \"d\")", true).is_err());
    }

    #[test]
    fn slugs_are_unique_and_every_entry_is_complete() {
        let mut seen = std::collections::BTreeSet::new();
        for p in PROBLEMS {
            assert!(seen.insert(p.slug), "{} twice", p.slug);
            assert!(
                p.slug.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                p.slug
            );
            assert!(!p.status.is_empty() && !p.title.is_empty());
            assert!(
                p.when.ends_with('.') && p.what_to_do.ends_with('.'),
                "{}",
                p.slug
            );
        }
    }

    #[test]
    fn the_markdown_has_one_anchor_per_slug_and_the_section_anchor() {
        let md = markdown();
        assert!(md.contains("<a id=\"problems\"></a>") && md.contains("## Problems"));
        for p in PROBLEMS {
            let a = format!("<a id=\"{}\"></a>", anchor(p.slug));
            assert_eq!(md.matches(&a).count(), 1, "{}", p.slug);
            assert!(md.contains(&format!("](#{})", anchor(p.slug))));
            assert!(md.contains(&format!("`{}`", type_uri(p.slug))));
        }
        assert_eq!(doc_url("not-found"), "/docs#problem-not-found");
    }
}
