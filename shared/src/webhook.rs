//! Webhook subscriptions of a connector (PlanRadar webhooks, Zaaksysteem trigger URL), as
//! stored, and what the dispatcher needs to deliver to one.
//!
//! Secret values (the Basic password, hidden header values, signing secrets) are stored
//! only sealed with the data key (see `crypto`); [`reveal`] opens them for delivery. Each
//! sealed value is bound to its subscription and field by [`aad`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, CryptoError};
use crate::secrets::CachedSecret;
use crate::time_util::parse_rfc3339;

/// The published list of event types a subscription may ask for, with what they mean.
pub const EVENT_TYPES: [(&str, &str); 11] = [
    (
        "case.created",
        "A case visible to the connector was created.",
    ),
    ("case.updated", "A case visible to the connector changed."),
    ("case.closed", "A case visible to the connector was closed."),
    ("dsr.created", "A data-subject request was created."),
    ("dsr.updated", "A data-subject request changed."),
    ("dsr.closed", "A data-subject request was closed."),
    ("endpoint.created", "A service endpoint was registered."),
    ("endpoint.updated", "A service endpoint changed."),
    ("mandate.granted", "A mandate was granted to the connector."),
    ("mandate.revoked", "A mandate of the connector was revoked."),
    (
        "webhook.subscription_disabled",
        "One of the connector's own subscriptions was disabled (410 Gone, or failing too long).",
    ),
];

pub fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.iter().any(|(n, _)| *n == name)
}

/// The scope a connector needs to receive events of `event_type`; `None`: never sent.
pub fn required_scope(event_type: &str) -> Option<crate::model::Scope> {
    use crate::model::Scope;
    match event_type.split('.').next().unwrap_or_default() {
        "case" => Some(Scope::CasesRead),
        "dsr" => Some(Scope::DsrRead),
        "endpoint" | "mandate" => Some(Scope::EndpointsRead),
        _ => None,
    }
}

/// Whether events of `event_type` may be seen with `scopes`: a kind's read scope (a ping
/// and notices about a connector's own subscriptions need none).
pub fn visible_with(event_type: &str, scopes: &crate::model::Scopes) -> bool {
    event_type == crate::delivery::PING
        || event_type.starts_with("webhook.")
        || required_scope(event_type).is_some_and(|s| scopes.contains(&s))
}

/// How long a rotated-out signing secret keeps signing beside its successor.
pub const PREVIOUS_SECRET_VALID_SECS: i64 = 24 * 3600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicAuth {
    pub username: String,
    pub password_sealed: String,
}

/// A custom header. A hidden one keeps only its sealed value; a visible one its plain value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomHeader {
    pub name: String,
    pub hidden: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_sealed: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    /// Tells apart the secrets of one subscription (and binds the sealed value to it).
    pub id: String,
    pub sealed: String,
    pub created_at: String,
    /// Set when a newer secret replaced this one: it signs until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub workspace_id: String,
    pub connector_id: String,
    pub subscription_id: String,
    /// Absolute `https://` URL.
    pub url: String,
    /// PEM certificate(s) to trust for `url`, validated when saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_pem: Option<String>,
    pub event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub headers: Vec<CustomHeader>,
    /// The current secret first; then a previous one until it expires.
    pub signing_secrets: Vec<SigningSecret>,
    pub enabled: bool,
    /// Why the dispatcher disabled it (410 Gone, failing too long); cleared on re-enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// The associated data that binds a sealed value to its subscription and field.
pub fn aad(ws: &str, con: &str, sub: &str, field: &str) -> String {
    format!("{ws}/{con}/{sub}/{field}")
}

impl Subscription {
    pub fn aad(&self, field: &str) -> String {
        aad(
            &self.workspace_id,
            &self.connector_id,
            &self.subscription_id,
            field,
        )
    }

    /// Field name (in `aad`) of the sealed value of header `name`.
    pub fn header_field(name: &str) -> String {
        format!("header:{}", name.to_ascii_lowercase())
    }

    pub fn secret_field(id: &str) -> String {
        format!("signing_secret:{id}")
    }

    /// Signing secrets that still sign at `now`: the current one and a replaced one for
    /// [`PREVIOUS_SECRET_VALID_SECS`] after its replacement.
    pub fn live_secrets(&self, now: Timestamp) -> impl Iterator<Item = &SigningSecret> {
        self.signing_secrets.iter().filter(move |s| {
            s.expires_at
                .as_deref()
                .is_none_or(|e| parse_rfc3339(e).is_some_and(|e| e > now))
        })
    }
}

impl Subscription {
    /// Brings every sealed value of the subscription to the current data-key version (see
    /// [`crypto::reseal`]); called whenever a subscription is written.
    pub async fn reseal(&mut self, data_key: &CachedSecret) -> Result<(), CryptoError> {
        let basic = self.aad("basic_password");
        if let Some(b) = self.basic_auth.as_mut()
            && let Some(new) = crypto::reseal(data_key, &basic, &b.password_sealed).await?
        {
            b.password_sealed = new;
        }
        for i in 0..self.headers.len() {
            let aad = self.aad(&Self::header_field(&self.headers[i].name));
            if let Some(sealed) = &self.headers[i].value_sealed
                && let Some(new) = crypto::reseal(data_key, &aad, sealed).await?
            {
                self.headers[i].value_sealed = Some(new);
            }
        }
        for i in 0..self.signing_secrets.len() {
            let aad = self.aad(&Self::secret_field(&self.signing_secrets[i].id));
            if let Some(new) =
                crypto::reseal(data_key, &aad, &self.signing_secrets[i].sealed).await?
            {
                self.signing_secrets[i].sealed = new;
            }
        }
        Ok(())
    }
}

/// A subscription's secrets in the clear, for delivery only; never logged.
pub struct Revealed {
    pub basic: Option<(String, String)>,
    /// Every custom header with its value, hidden or not.
    pub headers: Vec<(String, String)>,
    /// `whsec_…` secrets that sign now: the current one first.
    pub signing_secrets: Vec<String>,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed").finish_non_exhaustive()
    }
}

/// Opens a subscription's sealed values with the data key (the dispatcher's entry point).
pub async fn reveal(
    data_key: &CachedSecret,
    sub: &Subscription,
    now: Timestamp,
) -> Result<Revealed, CryptoError> {
    let basic = match &sub.basic_auth {
        Some(b) => Some((
            b.username.clone(),
            crypto::open(data_key, &sub.aad("basic_password"), &b.password_sealed).await?,
        )),
        None => None,
    };
    let mut headers = Vec::with_capacity(sub.headers.len());
    for h in &sub.headers {
        let value = match (&h.value, &h.value_sealed) {
            (_, Some(sealed)) => {
                let field = Subscription::header_field(&h.name);
                crypto::open(data_key, &sub.aad(&field), sealed).await?
            }
            (Some(v), None) => v.clone(),
            (None, None) => continue,
        };
        headers.push((h.name.clone(), value));
    }
    let mut signing_secrets = Vec::new();
    for s in sub.live_secrets(now) {
        let field = Subscription::secret_field(&s.id);
        signing_secrets.push(crypto::open(data_key, &sub.aad(&field), &s.sealed).await?);
    }
    Ok(Revealed {
        basic,
        headers,
        signing_secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, expires_at: Option<&str>) -> SigningSecret {
        SigningSecret {
            id: id.into(),
            sealed: "kdk1.v.x".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: expires_at.map(str::to_owned),
        }
    }

    #[test]
    fn a_replaced_secret_signs_until_it_expires() {
        let sub = Subscription {
            workspace_id: "ws".into(),
            connector_id: "con".into(),
            subscription_id: "sub".into(),
            url: "https://h.example/".into(),
            ca_certificate_pem: None,
            event_types: vec!["case.created".into()],
            basic_auth: None,
            headers: vec![],
            signing_secrets: vec![
                secret("new", None),
                secret("old", Some("2026-01-02T00:00:00.5Z")),
            ],
            enabled: true,
            disabled_reason: None,
            version: 1,
            created_at: "t".into(),
            updated_at: "t".into(),
        };
        let ids = |t| {
            sub.live_secrets(t)
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(parse_rfc3339("2026-01-02T00:00:00.25Z").unwrap()),
            ["new", "old"]
        );
        assert_eq!(
            ids(parse_rfc3339("2026-01-02T00:00:00.5Z").unwrap()),
            ["new"]
        );
        assert_eq!(sub.aad("basic_password"), "ws/con/sub/basic_password");
        assert_eq!(Subscription::header_field("X-Api-Key"), "header:x-api-key");
        assert!(is_event_type("case.created") && !is_event_type("case.deleted"));
    }
}
