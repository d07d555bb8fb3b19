//! The stored entities. Item keys are added by `store`; these types are the data only.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::credential::CredentialKind;

/// Access level: `read` (raadplegen) or `handle` (behandelen). `Read < Handle`, so the
/// effective level of a connector acting for an employee is the `min` of the two.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Read,
    Handle,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Handle => "handle",
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Self::Read),
            "handle" => Ok(Self::Handle),
            _ => Err(format!("`{s}` is not an access level (read, handle)")),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations a connector can be linked to (AFAS: only linked connectors are callable).
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
)]
pub enum Scope {
    #[serde(rename = "cases:read")]
    CasesRead,
    #[serde(rename = "cases:write")]
    CasesWrite,
    #[serde(rename = "cases:export")]
    CasesExport,
    #[serde(rename = "dsr:read")]
    DsrRead,
    #[serde(rename = "dsr:write")]
    DsrWrite,
    #[serde(rename = "endpoints:read")]
    EndpointsRead,
    #[serde(rename = "endpoints:write")]
    EndpointsWrite,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Self::CasesRead,
        Self::CasesWrite,
        Self::CasesExport,
        Self::DsrRead,
        Self::DsrWrite,
        Self::EndpointsRead,
        Self::EndpointsWrite,
        Self::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CasesRead => "cases:read",
            Self::CasesWrite => "cases:write",
            Self::CasesExport => "cases:export",
            Self::DsrRead => "dsr:read",
            Self::DsrWrite => "dsr:write",
            Self::EndpointsRead => "endpoints:read",
            Self::EndpointsWrite => "endpoints:write",
            Self::WebhooksManage => "webhooks:manage",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a known scope"))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
