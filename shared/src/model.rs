//! The stored entities. Item keys are added by `store`; these types are the data only.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use strum::{VariantArray, VariantNames};

use crate::credential::CredentialKind;

pub mod client_cert;

/// Access level: `read` (raadplegen) or `handle` (behandelen). `Read < Handle`, so the
/// effective level of a connector acting for an employee is the `min` of the two.
// Serde keeps its own derive (its error text reaches clients); strum gives the same names
// to `as_str`, `FromStr` and `Display`, which a test holds to serde's.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = String,
    parse_err_fn = not_a_level
)]
pub enum Level {
    Read,
    Handle,
}

fn not_a_level(s: &str) -> String {
    format!(
        "`{s}` is not an access level ({})",
        <Level as VariantNames>::VARIANTS.join(", ")
    )
}

impl Level {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The operations a connector can be linked to (AFAS: only linked connectors are callable).
// No case rule yields `cases:read`, so each name is given to serde and to strum; the
// round-trip test holds them equal.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[strum(parse_err_ty = String, parse_err_fn = not_a_scope)]
pub enum Scope {
    #[serde(rename = "cases:read")]
    #[strum(serialize = "cases:read")]
    CasesRead,
    #[serde(rename = "cases:write")]
    #[strum(serialize = "cases:write")]
    CasesWrite,
    #[serde(rename = "cases:export")]
    #[strum(serialize = "cases:export")]
    CasesExport,
    #[serde(rename = "dsr:read")]
    #[strum(serialize = "dsr:read")]
    DsrRead,
    #[serde(rename = "dsr:write")]
    #[strum(serialize = "dsr:write")]
    DsrWrite,
    #[serde(rename = "endpoints:read")]
    #[strum(serialize = "endpoints:read")]
    EndpointsRead,
    #[serde(rename = "endpoints:write")]
    #[strum(serialize = "endpoints:write")]
    EndpointsWrite,
    #[serde(rename = "webhooks:manage")]
    #[strum(serialize = "webhooks:manage")]
    WebhooksManage,
}

fn not_a_scope(s: &str) -> String {
    format!("`{s}` is not a known scope")
}

impl Scope {
    pub const ALL: &'static [Scope] = <Self as VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

pub type Scopes = BTreeSet<Scope>;

/// A plausible e-mail address: one `@`, a local part, a dotted domain, no white space.
pub fn is_email(s: &str) -> bool {
    s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    }) && !s.contains(char::is_whitespace)
        && s.len() <= 254
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub workspace_id: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub workspace_id: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub rights: Level,
    /// May hold personal access tokens (PlanRadar "API-åtkomst").
    pub api_access: bool,
    /// May list and revoke other users' tokens.
    pub manage_users: bool,
    pub manage_connectors: bool,
    /// One per workspace; only the owner can revoke the owner's tokens.
    pub owner: bool,
    pub created_at: String,
    /// Deactivated (`POST /v1/users/{id}/deactivate`): no credential acts for them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<String>,
}

/// A connector's registered JWT issuer and its public keys (a JWK set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JwtConfig {
    pub issuer: String,
    #[serde(default)]
    pub keys: Vec<serde_json::Value>,
}

/// A connector profile (koppelprofiel / app connector).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connector {
    pub workspace_id: String,
    pub connector_id: String,
    pub description: String,
    /// Changes are made on behalf of this employee; their rights cap the connector's.
    pub acting_user_id: String,
    pub access_level: Level,
    pub scopes: Scopes,
    /// CIDRs; empty allows every address.
    #[serde(default)]
    pub ip_allow_list: Vec<String>,
    /// Requests per minute per credential; `None` is the deployment default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    pub enabled: bool,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// The saved search that decides which cases and columns the connector sees; without
    /// one it sees no cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_search_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Mutual TLS: only a registered certificate, valid now, may come with its credentials.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_client_certificate: bool,
    /// Absent on connectors that never registered one, so their items stay as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_certificates: Vec<client_cert::ClientCertificate>,
    /// The partner's manifest last imported onto it (`POST /v1/connectors/{id}/manifest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ImportedManifest>,
}

/// What a connector keeps of the partner's manifest beyond the scopes it set: the webhook
/// event types the partner's app declares it needs, for the organisation to subscribe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportedManifest {
    pub event_types: Vec<String>,
    pub imported_at: String,
}

impl Connector {
    /// A connector just created, enabled, at version 1, that may do nothing yet: read
    /// level, no scopes, no address limit, no JWT issuer, no saved search, no certificates.
    pub fn new(workspace_id: String, connector_id: String, at: String) -> Self {
        Self {
            workspace_id,
            connector_id,
            description: String::new(),
            acting_user_id: String::new(),
            access_level: Level::Read,
            scopes: Scopes::new(),
            ip_allow_list: Vec::new(),
            rate_limit: None,
            enabled: true,
            version: 1,
            jwt: None,
            saved_search_id: None,
            created_at: at.clone(),
            updated_at: at,
            require_client_certificate: false,
            client_certificates: Vec::new(),
            manifest: None,
        }
    }
}

/// An issued secret credential (token or API key). Only the keyed hash is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub credential_id: String,
    pub workspace_id: String,
    pub kind: CredentialKind,
    pub name: String,
    /// The user a personal token belongs to, or a token bound to a user through a connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    /// A connector's own key or token: the connector's acting user when it was issued, so
    /// the authorizer can read that user beside the connector (it checks the connector
    /// still names them, and reads the one it names if not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user_id: Option<String>,
    /// `None`: everything the holder may do; otherwise narrowed to these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Scopes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    pub created_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    pub secret_hash: String,
    /// The Secrets Manager version of the pepper the hash was made with.
    pub pepper_version: String,
}

#[cfg(test)]
impl Credential {
    /// A live personal token of `usr_1` in `ws_1`, for tests to change.
    pub fn sample() -> Self {
        Self {
            credential_id: "cred_1".into(),
            workspace_id: "ws_1".into(),
            kind: CredentialKind::PersonalAccessToken,
            name: "t".into(),
            user_id: Some("usr_1".into()),
            connector_id: None,
            acting_user_id: None,
            scopes: None,
            rate_limit: None,
            expires_at: None,
            revoked_at: None,
            created_by: "usr_1".into(),
            created_at: "2026-01-01T00:00:00.000000000Z".into(),
            last_used_at: None,
            secret_hash: "x".into(),
            pepper_version: "v".into(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Debug;
    use std::str::FromStr;

    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_new_connector_is_stored_without_the_optional_fields() {
        let con = Connector::new("ws".into(), "con".into(), "t".into());
        assert_eq!(
            serde_json::to_value(&con).unwrap(),
            json!({
                "workspace_id": "ws", "connector_id": "con", "description": "",
                "acting_user_id": "", "access_level": "read", "scopes": [],
                "ip_allow_list": [], "enabled": true, "version": 1,
                "created_at": "t", "updated_at": "t",
            })
        );
    }

    /// Every variant of `T` has one name: serde writes and reads it, strum's `as_str`
    /// (`Into<&str>`), `FromStr` and `VariantNames` agree.
    pub(crate) fn serde_and_strum_agree<T>()
    where
        T: VariantArray + VariantNames + Serialize + DeserializeOwned + Copy + Debug + PartialEq,
        T: Into<&'static str> + FromStr<Err: Debug> + std::fmt::Display,
    {
        let names: Vec<&str> = <T as VariantArray>::VARIANTS
            .iter()
            .map(|&v| v.into())
            .collect();
        assert_eq!(names, <T as VariantNames>::VARIANTS);
        for (&v, name) in <T as VariantArray>::VARIANTS.iter().zip(names) {
            assert_eq!(serde_json::to_value(v).unwrap(), json!(name));
            assert_eq!(serde_json::from_value::<T>(json!(name)).unwrap(), v);
            assert_eq!(name.parse::<T>().unwrap(), v);
            assert_eq!(v.to_string(), name);
        }
    }

    #[test]
    fn levels_and_scopes_have_one_name_each() {
        serde_and_strum_agree::<Level>();
        serde_and_strum_agree::<Scope>();
        assert_eq!(Level::Handle.as_str(), "handle");
        assert_eq!(Scope::EndpointsWrite.as_str(), "endpoints:write");
        assert_eq!(
            "admin".parse::<Level>().unwrap_err(),
            "`admin` is not an access level (read, handle)"
        );
        assert_eq!(
            "cases:delete".parse::<Scope>().unwrap_err(),
            "`cases:delete` is not a known scope"
        );
        assert_eq!(Scope::ALL.len(), 8);
    }
}
