//! Views answered by more than one function: a credential (and the one answer that carries
//! its secret) and a user. `tokens` issues credentials and manages users; `connectors`
//! issues a new connector's first credential and user in one call.
//! Optional fields are sent as `null`, not left out, as the API always has: the schemas
//! say so ([`always_sent`]).

use schemars::JsonSchema;
use serde::Serialize;

use crate::credential::CredentialKind;
use crate::model::{Credential, Level, Scopes, User};

/// Marks every property of an answer's schema as required: the views serialize every
/// field, `null` included, while the document's generator follows the deserialize
/// contract (where an `Option` field may be absent).
pub fn always_sent(schema: &mut schemars::Schema) {
    let names: Vec<serde_json::Value> = schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|p| p.keys().map(|k| k.as_str().into()).collect())
        .unwrap_or_default();
    if !names.is_empty() {
        schema.insert("required".into(), names.into());
    }
}

/// A credential without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(rename = "Credential")]
#[schemars(transform = always_sent)]
pub struct CredentialView {
    pub id: String,
    pub kind: CredentialKind,
    pub name: String,
    /// The user a personal token belongs to, or the employee an OTP token acts for.
    pub user_id: Option<String>,
    pub connector_id: Option<String>,
    /// `null`: everything its holder may do; otherwise narrowed to these.
    pub scopes: Option<Scopes>,
    /// Requests per minute; `null`: the connector's or the default (30).
    pub rate_limit: Option<u32>,
    /// RFC 3339; `null`: never expires.
    pub expires_at: Option<String>,
    pub created_at: String,
    /// The user who issued it.
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl CredentialView {
    pub fn of(c: &Credential) -> Self {
        Self {
            id: c.credential_id.clone(),
            kind: c.kind,
            name: c.name.clone(),
            user_id: c.user_id.clone(),
            connector_id: c.connector_id.clone(),
            scopes: c.scopes.clone(),
            rate_limit: c.rate_limit,
            expires_at: c.expires_at.clone(),
            created_at: c.created_at.clone(),
            created_by: c.created_by.clone(),
            last_used_at: c.last_used_at.clone(),
            revoked_at: c.revoked_at.clone(),
        }
    }
}

/// A credential just issued: the only answer that ever carries its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(rename = "IssuedCredential")]
#[schemars(transform = always_sent)]
pub struct IssuedCredential {
    #[serde(flatten)]
    pub credential: CredentialView,
    /// `kpl_<kind>_…`: shown this once, stored only as a keyed hash. Lost: revoke it and
    /// issue a new one.
    pub secret: String,
}

/// A workspace user and what they may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(rename = "User")]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    /// The employee's own rights; a connector acting for them never exceeds these.
    pub rights: Level,
    /// May hold personal access tokens (PlanRadar "API access").
    pub api_access: bool,
    /// May list users, change their access and revoke their tokens.
    pub manage_users: bool,
    pub manage_connectors: bool,
    /// One per workspace; only the owner changes the owner or revokes the owner's tokens.
    pub owner: bool,
    /// When they were deactivated; `null` while active.
    pub deactivated_at: Option<String>,
}

impl UserView {
    pub fn of(u: &User) -> Self {
        Self {
            id: u.user_id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            rights: u.rights,
            api_access: u.api_access,
            manage_users: u.manage_users,
            manage_connectors: u.manage_connectors,
            owner: u.owner,
            deactivated_at: u.deactivated_at.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credential() -> Credential {
        serde_json::from_value(json!({
            "credential_id": "cred_1", "workspace_id": "ws_1", "kind": "connector_token",
            "name": "n", "connector_id": "con_1", "created_by": "usr_1",
            "created_at": "2026-01-01T00:00:00Z", "secret_hash": "h", "pepper_version": "v",
        }))
        .unwrap()
    }

    #[test]
    fn a_credential_shows_every_field_with_nulls_and_no_secret() {
        let v = serde_json::to_value(CredentialView::of(&credential())).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "cred_1", "kind": "connector_token", "name": "n", "user_id": null,
                "connector_id": "con_1", "scopes": null, "rate_limit": null, "expires_at": null,
                "created_at": "2026-01-01T00:00:00Z", "created_by": "usr_1",
                "last_used_at": null, "revoked_at": null,
            })
        );
        let issued = IssuedCredential {
            credential: CredentialView::of(&credential()),
            secret: "kpl_ct_x".into(),
        };
        let v = serde_json::to_value(issued).unwrap();
        assert_eq!(v["secret"], "kpl_ct_x");
        assert_eq!(v["id"], "cred_1");
    }

    #[test]
    fn the_schemas_say_what_is_always_sent() {
        let s = schemars::schema_for!(CredentialView);
        let required = s.get("required").unwrap().as_array().unwrap();
        // Every field is always present (null when unset), so all are required.
        assert_eq!(required.len(), 12, "{required:?}");
        let s = schemars::schema_for!(IssuedCredential);
        let required = s.get("required").unwrap().as_array().unwrap();
        assert!(required.iter().any(|r| r == "secret"));
        assert!(required.iter().any(|r| r == "id"));
    }
}
