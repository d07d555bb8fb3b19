//! Who is calling: built by the authorizer, handed to functions through API Gateway's
//! authorizer context. That context only carries strings, numbers and booleans, and REST
//! APIs pass every value on as a string, so parsing accepts both.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::credential::CredentialKind;
use crate::error::ApiError;
use crate::model::{Connector, Level, Scope, Scopes, User, Workspace};
use crate::rate_limit::Counted;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: String,
    pub user_id: String,
    pub connector_id: Option<String>,
    pub credential_id: String,
    pub credential_kind: CredentialKind,
    pub scopes: Scopes,
    pub access_level: Level,
    /// Requests per minute for this credential.
    pub rate_limit: u32,
    /// A JWT's `hash` claim (OSR): base64 SHA-256 of the request body, which the pipeline
    /// checks, as the authorizer never sees the body.
    pub body_hash: Option<String>,
    /// What the authorizer read of the caller; `None` from a caller without an authorizer
    /// (the admin CLI's in-process demo), whose functions read it themselves.
    pub held: Option<Held>,
    /// The authorizer's count of this request; without one the pipeline counts.
    pub counted: Option<Counted>,
}

/// What the authorizer read of the caller and hands on, so functions need not read it again:
/// it was read strongly consistent a moment ago, within the same request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Held {
    pub workspace_name: String,
    pub user: HeldUser,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<HeldConnector>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldUser {
    pub email: String,
    pub name: String,
    pub rights: Level,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldConnector {
    pub description: String,
    pub access_level: Level,
    pub scopes: Scopes,
    pub acting_user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_search_id: Option<String>,
}

impl Held {
    pub fn of(w: &Workspace, u: &User, c: Option<&Connector>) -> Self {
        Self {
            workspace_name: w.name.clone(),
            user: HeldUser {
                email: u.email.clone(),
                name: u.name.clone(),
                rights: u.rights,
            },
            connector: c.map(|c| HeldConnector {
                description: c.description.clone(),
                access_level: c.access_level,
                scopes: c.scopes.clone(),
                acting_user_id: c.acting_user_id.clone(),
                saved_search_id: c.saved_search_id.clone(),
            }),
        }
    }
}

impl Principal {
    /// The authorizer's `principalId`: the acting user.
    pub fn principal_id(&self) -> &str {
        &self.user_id
    }

    pub fn scopes_string(&self) -> String {
        self.scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn to_context(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        put("workspace_id", self.workspace_id.clone().into());
        put("user_id", self.user_id.clone().into());
        put(
            "connector_id",
            self.connector_id.clone().unwrap_or_default().into(),
        );
        put("credential_id", self.credential_id.clone().into());
        put("credential_kind", self.credential_kind.as_str().into());
        put("scopes", self.scopes_string().into());
        put("access_level", self.access_level.as_str().into());
        put("rate_limit", self.rate_limit.into());
        if let Some(h) = &self.body_hash {
            put("jwt_body_hash", h.clone().into());
        }
        if let Some(h) = &self.held {
            let json = serde_json::to_string(h).expect("plain data serializes");
            put("held", json.into());
        }
        if let Some(c) = &self.counted {
            put("rate_count", c.count.into());
            put("rate_window", c.window_start.into());
        }
        m
    }

    pub fn from_context(fields: &HashMap<String, Value>) -> Result<Self, String> {
        let text = |k: &str| -> Result<String, String> {
            match fields.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(format!("authorizer context lacks `{k}`")),
            }
        };
        let connector_id = text("connector_id")?;
        Ok(Self {
            workspace_id: text("workspace_id")?,
            user_id: text("user_id")?,
            connector_id: (!connector_id.is_empty()).then_some(connector_id),
            credential_id: text("credential_id")?,
            credential_kind: CredentialKind::parse(&text("credential_kind")?)
                .ok_or("bad credential_kind")?,
            scopes: text("scopes")?
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()?,
            access_level: text("access_level")?.parse()?,
            rate_limit: text("rate_limit")?
                .parse()
                .map_err(|_| "bad rate_limit".to_owned())?,
            body_hash: text("jwt_body_hash").ok(),
            held: match text("held") {
                Ok(json) => {
                    Some(serde_json::from_str(&json).map_err(|e| format!("bad held: {e}"))?)
                }
                Err(_) => None,
            },
            counted: match (text("rate_count"), text("rate_window")) {
                (Ok(n), Ok(w)) => Some(Counted {
                    count: n.parse().map_err(|_| "bad rate_count".to_owned())?,
                    window_start: w.parse().map_err(|_| "bad rate_window".to_owned())?,
                }),
                _ => None,
            },
        })
    }

    /// The check every route makes: the scope it needs, and for writes the level. Each check
    /// is remembered for the request (see [`checks_made`]), so that an idempotent replay
    /// makes the same checks against the credential as it is now.
    pub fn require(&self, scope: Option<Scope>, level: Level) -> Result<(), ApiError> {
        let _ = CHECKS.try_with(|c| {
            c.lock()
                .expect("not poisoned")
                .push(Requirement { scope, level })
        });
        if let Some(scope) = scope
            && !self.scopes.contains(&scope)
        {
            return Err(ApiError::forbidden(format!(
                "This credential lacks the scope `{scope}`."
            )));
        }
        if self.access_level < level {
            return Err(ApiError::forbidden(format!(
                "This needs access level `{level}`; this credential has `{}`.",
                self.access_level
            )));
        }
        Ok(())
    }
}

/// One scope-and-level check a route made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requirement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub level: Level,
}

tokio::task_local! {
    static CHECKS: Arc<Mutex<Vec<Requirement>>>;
}

/// Runs `fut` (a route) and returns its output with the [`Principal::require`] checks it
/// made.
pub async fn checks_made<F: Future>(fut: F) -> (F::Output, Vec<Requirement>) {
    let checks = Arc::new(Mutex::new(Vec::new()));
    let out = CHECKS.scope(checks.clone(), fut).await;
    let made = std::mem::take(&mut *checks.lock().expect("not poisoned"));
    (out, made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips_even_when_stringified() {
        let p = Principal {
            workspace_id: "ws_1".into(),
            user_id: "usr_1".into(),
            connector_id: None,
            credential_id: "abc".into(),
            credential_kind: CredentialKind::PersonalAccessToken,
            scopes: [Scope::CasesRead, Scope::DsrWrite].into_iter().collect(),
            access_level: Level::Handle,
            rate_limit: 30,
            body_hash: Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into()),
            held: Some(Held {
                workspace_name: "Gemeente Demo".into(),
                user: HeldUser {
                    email: "a@example.org".into(),
                    name: "A \"quoted\" name".into(),
                    rights: Level::Handle,
                },
                connector: Some(HeldConnector {
                    description: "App".into(),
                    access_level: Level::Read,
                    scopes: [Scope::CasesRead].into_iter().collect(),
                    acting_user_id: "usr_1".into(),
                    saved_search_id: Some("ss_1".into()),
                }),
            }),
            counted: Some(Counted {
                count: 3,
                window_start: 1_800_000_000,
            }),
        };
        let ctx: HashMap<String, Value> = p.to_context().into_iter().collect();
        assert_eq!(Principal::from_context(&ctx).unwrap(), p);
        // API Gateway REST hands every context value on as a string.
        let stringified: HashMap<String, Value> = ctx
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, Value::String(s))
            })
            .collect();
        assert_eq!(Principal::from_context(&stringified).unwrap(), p);
    }

    #[test]
    fn require_checks_scope_then_level() {
        let p = Principal {
            workspace_id: "w".into(),
            user_id: "u".into(),
            connector_id: Some("c".into()),
            credential_id: "x".into(),
            credential_kind: CredentialKind::ApiKey,
            scopes: [Scope::CasesRead].into_iter().collect(),
            access_level: Level::Read,
            rate_limit: 30,
            body_hash: None,
            held: None,
            counted: None,
        };
        assert!(p.require(Some(Scope::CasesRead), Level::Read).is_ok());
        assert!(p.require(Some(Scope::CasesWrite), Level::Read).is_err());
        assert!(p.require(Some(Scope::CasesRead), Level::Handle).is_err());
        assert!(p.require(None, Level::Read).is_ok());
    }

    #[tokio::test]
    async fn the_checks_a_route_made_are_remembered() {
        let p = Principal {
            workspace_id: "w".into(),
            user_id: "u".into(),
            connector_id: None,
            credential_id: "x".into(),
            credential_kind: CredentialKind::PersonalAccessToken,
            scopes: [Scope::DsrWrite].into_iter().collect(),
            access_level: Level::Handle,
            rate_limit: 30,
            body_hash: None,
            held: None,
            counted: None,
        };
        let (out, made) =
            checks_made(async { p.require(Some(Scope::DsrWrite), Level::Handle) }).await;
        assert!(out.is_ok());
        assert_eq!(
            made,
            [Requirement {
                scope: Some(Scope::DsrWrite),
                level: Level::Handle
            }]
        );
        // Outside a route nothing is recorded, and nothing fails.
        assert!(p.require(None, Level::Read).is_ok());
    }
}
