//! The rules for a connector profile's fields, shared by the `connectors` function and the
//! admin CLI. Each checks one field and records what is wrong in `Fields`, so a 422 lists
//! every bad field.

use std::collections::BTreeSet;

use crate::body::Fields;
use crate::ip_allow::parse_cidr;
use crate::jwt::validate_public_jwk;
use crate::model::{Connector, Level, Scope, Scopes, User};

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

/// Whether `caller` may make a connector act for `acting_user_id`: for oneself always,
/// for someone else only as the owner or with `manage_users`.
pub fn may_act_for(caller: &User, acting_user_id: &str) -> bool {
    acting_user_id == caller.user_id || caller.owner || caller.manage_users
}

/// Whether `caller` may give a connector `level`: never above their own rights.
pub fn level_within(caller: &User, level: Level) -> bool {
    level <= caller.rights
}

/// The one rule for changing a connector, or issuing or revoking its credentials: the
/// caller must be someone who could have set it up as it stands (it acts for them, or
/// they may choose whom it acts for, and its level is within their rights). Otherwise a
/// `read` user with `manage_connectors` could mint a key for a `handle` connector that
/// acts for the owner and write as the owner. Create and update check the fields they
/// change with [`may_act_for`] and [`level_within`] as well.
pub fn may_administer(caller: &User, con: &Connector) -> Result<(), crate::ApiError> {
    if may_act_for(caller, &con.acting_user_id) && level_within(caller, con.access_level) {
        Ok(())
    } else {
        Err(crate::ApiError::forbidden(
            "This connector acts for another user or at a level above your own rights; \
             only someone who could have set it up so may change it or manage its credentials.",
        ))
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

    fn user(id: &str, rights: Level, manage_users: bool, owner: bool) -> User {
        User {
            workspace_id: "ws".into(),
            user_id: id.into(),
            email: format!("{id}@example.org"),
            name: id.into(),
            rights,
            api_access: true,
            manage_users,
            manage_connectors: true,
            owner,
            created_at: String::new(),
            deactivated_at: None,
        }
    }

    fn connector(acting: &str, level: Level) -> Connector {
        Connector {
            description: "d".into(),
            acting_user_id: acting.into(),
            access_level: level,
            ..Connector::new("ws".into(), "con".into(), String::new())
        }
    }

    #[test]
    fn a_reader_may_not_administer_a_handle_connector_acting_for_the_owner() {
        let reader = user("reader", Level::Read, false, false);
        assert!(may_administer(&reader, &connector("owner", Level::Handle)).is_err());
        // Not even at `read`: it acts for someone else.
        assert!(may_administer(&reader, &connector("owner", Level::Read)).is_err());
        // Their own connector at their own level is theirs to manage.
        assert!(may_administer(&reader, &connector("reader", Level::Read)).is_ok());
        assert!(may_administer(&reader, &connector("reader", Level::Handle)).is_err());
    }

    #[test]
    fn choosing_whom_a_connector_acts_for_needs_the_owner_or_manage_users() {
        let admin = user("admin", Level::Read, true, false);
        assert!(may_administer(&admin, &connector("owner", Level::Read)).is_ok());
        assert!(may_administer(&admin, &connector("owner", Level::Handle)).is_err());
        let owner = user("owner", Level::Handle, false, true);
        assert!(may_administer(&owner, &connector("someone", Level::Handle)).is_ok());
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
