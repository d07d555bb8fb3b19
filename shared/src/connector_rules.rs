//! The rules for a connector profile's fields, shared by the `connectors` function and the
//! admin CLI. Each checks one field and records what is wrong in `Fields`, so a 422 lists
//! every bad field.

use std::collections::BTreeSet;

use crate::body::Fields;
use crate::ip_allow::parse_cidr;
use crate::jwt::validate_public_jwk;
use crate::model::{Level, Scope, Scopes};

pub const MAX_DESCRIPTION: usize = 200;
pub const MAX_ALLOW_LIST: usize = 100;
pub const MAX_RATE_LIMIT: u32 = 100_000;
pub const MAX_ISSUER: usize = 500;
pub const MAX_JWT_KEYS: usize = 10;

pub fn description(s: &str, errors: &mut Fields) {
    if s.trim().is_empty() {
        errors.push("description", "must not be empty");
    } else if s.chars().count() > MAX_DESCRIPTION {
        errors.push(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        );
    }
}

pub fn access_level(s: &str, errors: &mut Fields) -> Option<Level> {
    s.parse()
        .map_err(|e: String| errors.push("access_level", e))
        .ok()
}

/// Known scopes only (`Scope::ALL`); each bad entry is named by its index.
pub fn scopes<S: AsRef<str>>(items: &[S], errors: &mut Fields) -> Scopes {
    let mut out = BTreeSet::new();
    for (i, s) in items.iter().enumerate() {
        match s.as_ref().parse::<Scope>() {
            Ok(scope) => {
                out.insert(scope);
            }
            Err(e) => errors.push(format!("scopes[{i}]"), e),
        }
    }
    out
}

/// Valid IPv4/IPv6 CIDRs (or single addresses), stored normalised.
pub fn ip_allow_list<S: AsRef<str>>(items: &[S], errors: &mut Fields) -> Vec<String> {
    if items.len() > MAX_ALLOW_LIST {
        errors.push("ip_allow_list", format!("at most {MAX_ALLOW_LIST} entries"));
    }
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match parse_cidr(s.as_ref()) {
            Ok(net) if !out.contains(&net.to_string()) => out.push(net.to_string()),
            Ok(_) => {}
            Err(e) => errors.push(format!("ip_allow_list[{i}]"), e),
        }
    }
    out
}

pub fn rate_limit(n: u32, errors: &mut Fields) {
    errors.check(
        (1..=MAX_RATE_LIMIT).contains(&n),
        "rate_limit",
        &format!("must be between 1 and {MAX_RATE_LIMIT} requests per minute"),
    );
}

pub fn issuer(s: &str, field: &str, errors: &mut Fields) {
    if s.trim().is_empty() {
        errors.push(field, "must not be empty");
    } else if s.len() > MAX_ISSUER {
        errors.push(field, format!("must be at most {MAX_ISSUER} characters"));
    }
}

/// Public asymmetric JWKs with distinct `kid`s; private and symmetric keys are refused
/// with a message saying so.
pub fn jwt_keys(keys: &[serde_json::Value], field: &str, errors: &mut Fields) {
    if keys.len() > MAX_JWT_KEYS {
        errors.push(field, format!("at most {MAX_JWT_KEYS} keys"));
    }
    let mut kids = BTreeSet::new();
    for (i, k) in keys.iter().enumerate() {
        match validate_public_jwk(k) {
            Ok(jwk) => {
                if !kids.insert(jwk.common.key_id.unwrap_or_default()) {
                    errors.push(format!("{field}[{i}]"), "duplicate `kid`");
                }
            }
            Err(e) => errors.push(format!("{field}[{i}]"), e),
        }
    }
}

/// The field errors as one line, for the CLI.
pub fn describe(e: &crate::ApiError) -> String {
    if e.errors.is_empty() {
        return e.detail.clone();
    }
    e.errors
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(e: Fields) -> Vec<String> {
        e.finish()
            .err()
            .map(|e| e.errors.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_bad_entry_is_named() {
        let mut e = Fields::new();
        let s = scopes(&["cases:read", "cases:delete", "dsr:read"], &mut e);
        assert_eq!(s.len(), 2);
        let ips = ip_allow_list(
            &["10.0.0.0/8", "300.1.1.1", "2001:db8::/32", "10.1.0.0/8"],
            &mut e,
        );
        assert_eq!(ips, ["10.0.0.0/8", "2001:db8::/32"]);
        rate_limit(0, &mut e);
        description(" ", &mut e);
        assert_eq!(
            fields(e),
            ["scopes[1]", "ip_allow_list[1]", "rate_limit", "description"]
        );
    }

    #[test]
    fn jwt_keys_refuse_private_and_symmetric() {
        let mut e = Fields::new();
        jwt_keys(
            &[
                json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}),
                json!({"kty": "EC", "crv": "P-256", "kid": "p", "d": "x", "x": "a", "y": "b"}),
            ],
            "jwt.keys",
            &mut e,
        );
        let err = e.finish().unwrap_err();
        assert!(err.errors[0].message.contains("symmetric"));
        assert!(err.errors[1].message.contains("private"));
        assert_eq!(err.errors[1].field, "jwt.keys[1]");
    }
}
