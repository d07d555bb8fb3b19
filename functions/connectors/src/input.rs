//! Reading a v1 JSON object field by field, so that one 422 lists every bad field
//! (wrong types, missing and unknown fields alike). On create every required field must be
//! present; on `PATCH` an absent field is left as it is and `null` clears an optional one.
//!
//! The bodies read this way (connectors in `lib.rs`, subscriptions in `subscriptions.rs`)
//! are described for the contract by the schema-only types at the end of this file, kept
//! here in one place; a test holds their fields to the parsers' lists of known fields.

use koppel_shared::body::Fields;
use koppel_shared::model::{Level, Scope};
use schemars::JsonSchema;
use serde_json::{Map, Value};

pub struct Input<'a> {
    map: &'a Map<String, Value>,
    known: &'a [&'a str],
    prefix: String,
}

impl<'a> Input<'a> {
    pub fn new(map: &'a Map<String, Value>, known: &'a [&'a str]) -> Self {
        Self {
            map,
            known,
            prefix: String::new(),
        }
    }

    /// Field names are reported as `<prefix>.<name>`.
    pub fn nested(mut self, prefix: &str) -> Self {
        self.prefix = format!("{prefix}.");
        self
    }

    pub fn field(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Koppel's own resources reject unknown fields (a typo must not be silently ignored).
    pub fn unknown_fields(&self, e: &mut Fields) {
        for k in self.map.keys() {
            if !self.known.contains(&k.as_str()) {
                e.push(self.field(k), "is not a known field");
            }
        }
    }

    fn get(&self, name: &str, required: bool, e: &mut Fields) -> Option<&'a Value> {
        match self.map.get(name) {
            None if required => {
                e.push(self.field(name), "is required");
                None
            }
            None => None,
            Some(v) => Some(v),
        }
    }

    pub fn string(&self, name: &str, required: bool, e: &mut Fields) -> Option<&'a str> {
        match self.get(name, required, e)? {
            Value::String(s) => Some(s),
            _ => {
                e.push(self.field(name), "must be a string");
                None
            }
        }
    }

    /// `Some(None)` for an explicit `null`.
    pub fn nullable_string(&self, name: &str, e: &mut Fields) -> Option<Option<&'a str>> {
        match self.get(name, false, e)? {
            Value::Null => Some(None),
            Value::String(s) => Some(Some(s)),
            _ => {
                e.push(self.field(name), "must be a string or null");
                None
            }
        }
    }

    pub fn strings(&self, name: &str, required: bool, e: &mut Fields) -> Option<Vec<&'a str>> {
        let v = self.get(name, required, e)?;
        let all: Option<Vec<&str>> = v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect());
        if all.is_none() {
            e.push(self.field(name), "must be an array of strings");
        }
        all
    }

    pub fn bool(&self, name: &str, e: &mut Fields) -> Option<bool> {
        match self.get(name, false, e)? {
            Value::Bool(b) => Some(*b),
            _ => {
                e.push(self.field(name), "must be true or false");
                None
            }
        }
    }

    pub fn nullable_u32(&self, name: &str, e: &mut Fields) -> Option<Option<u32>> {
        match self.get(name, false, e)? {
            Value::Null => Some(None),
            v => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Some(Some(n)),
                None => {
                    e.push(self.field(name), "must be a whole number or null");
                    None
                }
            },
        }
    }

    pub fn nullable_object(
        &self,
        name: &str,
        e: &mut Fields,
    ) -> Option<Option<&'a Map<String, Value>>> {
        match self.get(name, false, e)? {
            Value::Null => Some(None),
            Value::Object(m) => Some(Some(m)),
            _ => {
                e.push(self.field(name), "must be an object or null");
                None
            }
        }
    }

    pub fn array(&self, name: &str, e: &mut Fields) -> Option<&'a Vec<Value>> {
        match self.get(name, false, e)? {
            Value::Array(a) => Some(a),
            _ => {
                e.push(self.field(name), "must be an array");
                None
            }
        }
    }
}

// What the parsers accept, as JSON Schema (types for the OpenAPI document only: bodies are
// read with `Input`). A field that is optional but may not be `null` is an `Option` with
// `serde(default, skip_serializing_if)` and `schemars(with)` the non-null type; a plain
// `Option` may be `null` (which clears it).

/// `POST /v1/connectors`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct NewConnector {
    /// 1 to 200 characters; the subject of its OTP mails.
    #[schemars(length(min = 1, max = 200))]
    pub description: String,
    /// A user of this workspace the connector acts for: yourself, or anyone if you are the
    /// owner or hold `manage_users`. Required, unless `create_connector_user` makes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub acting_user_id: Option<String>,
    /// At most your own rights.
    pub access_level: Level,
    pub scopes: Vec<Scope>,
    /// IPv4/IPv6 CIDRs or addresses, at most 100; empty or absent allows every address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>", length(max = 100))]
    pub ip_allow_list: Option<Vec<String>>,
    /// Requests per minute per credential, 1 to 100000; `null`: the deployment default.
    #[schemars(range(min = 1, max = 100_000))]
    pub rate_limit: Option<u32>,
    /// Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub enabled: Option<bool>,
    pub jwt: Option<JwtInput>,
    /// A saved search of this workspace; none: the connector sees no cases.
    pub saved_search_id: Option<String>,
    /// Mutual TLS: its credentials work only with a client certificate it registered
    /// (`…/certificates`), valid now. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub require_client_certificate: Option<bool>,
    /// A new employee for the connector to act for, made in the same transaction (AFAS
    /// "Maak nieuwe gebruikersgroep"): no API access of their own, rights within yours.
    /// Needs the owner or `manage_users`; leave `acting_user_id` out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ConnectorUser")]
    pub create_connector_user: Option<ConnectorUser>,
    /// Issue the connector's first credential in the same transaction (AFAS "Automatisch
    /// token genereren"); the answer's `credential.secret` shows it this once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "GenerateToken")]
    pub generate_token: Option<GenerateToken>,
}

/// The employee a new connector acts for, created with it.
#[derive(Clone, Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorUser {
    pub email: String,
    pub name: String,
    /// At most your own rights.
    pub rights: Level,
}

/// A new connector's first credential.
#[derive(Clone, Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateToken {
    /// `token` (default, `Authorization: Bearer`) or `api_key` (`API-Interface-Id` +
    /// `API-Key`).
    #[serde(default)]
    #[schemars(extend("enum" = ["token", "api_key", null]))]
    pub kind: Option<String>,
    /// 1 to 100 characters; default: the connector's description.
    #[serde(default)]
    #[schemars(length(min = 1, max = 100))]
    pub name: Option<String>,
}

/// `POST /v1/connectors/{id}/manifest`: what a partner's app needs (see `manifest.rs`).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct ManifestInput {
    /// 1 to 200 characters; replaces the connector's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(min = 1, max = 200))]
    pub description: Option<String>,
    /// The operations the app uses; they replace the connector's.
    #[schemars(length(min = 1))]
    pub scopes: Vec<Scope>,
    /// The webhook event types the app listens to, each within `scopes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>")]
    pub event_types: Option<Vec<String>>,
}

/// `PATCH /v1/connectors/{id}`: any fields of [`NewConnector`] but the set-up ones.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct ConnectorPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(min = 1, max = 200))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub acting_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Level")]
    pub access_level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<Scope>")]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>", length(max = 100))]
    pub ip_allow_list: Option<Vec<String>>,
    #[schemars(range(min = 1, max = 100_000))]
    pub rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub enabled: Option<bool>,
    pub jwt: Option<JwtInput>,
    pub saved_search_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub require_client_certificate: Option<bool>,
}

/// `POST /v1/connectors/{id}/certificates`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct NewClientCertificate {
    /// One PEM `CERTIFICATE` block (the client certificate, not its chain); a PEM holding
    /// a private key is refused.
    pub certificate_pem: String,
}

/// A connector's JWT issuer (unique across Koppel) and its public keys.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct JwtInput {
    pub issuer: String,
    /// Public JWKs with a `kid`; asymmetric keys only; at most 10.
    #[schemars(length(max = 10))]
    pub keys: Option<Vec<Map<String, Value>>>,
}

/// `POST /v1/connectors/{id}/subscriptions`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct NewSubscription {
    /// Absolute `https://` URL, at most 2000 characters.
    #[schemars(length(max = 2000))]
    pub url: String,
    /// PEM `CERTIFICATE` block(s) to trust for `url` (not expired; no private key).
    pub ca_certificate_pem: Option<String>,
    #[schemars(schema_with = "event_type_names")]
    pub event_types: Vec<String>,
    pub basic_auth: Option<BasicAuthInput>,
    /// At most 20; the names the dispatcher sets itself are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<HeaderInput>", length(max = 20))]
    pub headers: Option<Vec<HeaderInput>>,
    /// Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub enabled: Option<bool>,
}

/// `PATCH /v1/connectors/{id}/subscriptions/{subscriptionId}`: any fields of
/// [`NewSubscription`]; `headers` replaces the list.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct SubscriptionPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 2000))]
    pub url: Option<String>,
    pub ca_certificate_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "event_type_names")]
    pub event_types: Option<Vec<String>>,
    pub basic_auth: Option<BasicAuthInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<HeaderInput>", length(max = 20))]
    pub headers: Option<Vec<HeaderInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub enabled: Option<bool>,
}

/// HTTP Basic credentials for the receiver.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct BasicAuthInput {
    /// No `:` or control characters.
    pub username: String,
    /// Required unless a password is stored (then absent keeps it); never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub password: Option<String>,
}

/// A custom header sent with every delivery.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct HeaderInput {
    pub name: String,
    /// Required unless the header is hidden and has a stored value (absent keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 4000))]
    pub value: Option<String>,
    /// A hidden value is never shown again. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub hidden: Option<bool>,
}

/// At least one of the published event types (`GET /v1/webhook-event-types`).
fn event_type_names(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = koppel_shared::webhook::EVENT_TYPES
        .iter()
        .map(|(n, _)| *n)
        .collect();
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "items": { "type": "string", "enum": names },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_problem_is_listed() {
        let v = json!({"a": 1, "b": ["x", 2], "c": "yes", "zz": true, "n": -1});
        let m = v.as_object().unwrap();
        let i = Input::new(m, &["a", "b", "c", "d", "n"]);
        let mut e = Fields::new();
        i.unknown_fields(&mut e);
        assert_eq!(i.string("a", true, &mut e), None);
        assert_eq!(i.strings("b", true, &mut e), None);
        assert_eq!(i.bool("c", &mut e), None);
        assert_eq!(i.string("d", true, &mut e), None);
        assert_eq!(i.nullable_u32("n", &mut e), None);
        let fields: Vec<_> = e
            .finish()
            .unwrap_err()
            .errors
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["zz", "a", "b", "c", "d", "n"]);
    }

    #[test]
    fn nested_names() {
        let v = json!({"x": 1});
        let i = Input::new(v.as_object().unwrap(), &[]).nested("jwt");
        let mut e = Fields::new();
        i.unknown_fields(&mut e);
        assert_eq!(e.finish().unwrap_err().errors[0].field, "jwt.x");
    }

    fn properties<T: JsonSchema>() -> Vec<String> {
        let s = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<T>();
        let mut names: Vec<String> = s
            .get("properties")
            .and_then(Value::as_object)
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        v.sort();
        v
    }

    fn required<T: JsonSchema>() -> Vec<String> {
        let s = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<T>();
        let mut names: Vec<String> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn the_schemas_name_what_the_parsers_read() {
        let connector = sorted(&crate::CONNECTOR_FIELDS);
        let setup: Vec<&str> = crate::CONNECTOR_FIELDS
            .iter()
            .chain(&crate::setup::FIELDS)
            .copied()
            .collect();
        assert_eq!(properties::<NewConnector>(), sorted(&setup));
        assert_eq!(properties::<ConnectorPatch>(), connector);
        assert_eq!(
            required::<NewConnector>(),
            ["access_level", "description", "scopes"]
        );
        assert_eq!(properties::<ConnectorUser>(), ["email", "name", "rights"]);
        assert_eq!(
            properties::<ManifestInput>(),
            sorted(&crate::manifest::FIELDS)
        );
        assert_eq!(required::<ManifestInput>(), ["scopes"]);
        assert_eq!(properties::<GenerateToken>(), ["kind", "name"]);
        assert!(required::<ConnectorPatch>().is_empty());
        let subscription = sorted(&crate::subscriptions::FIELDS);
        assert_eq!(properties::<NewSubscription>(), subscription);
        assert_eq!(properties::<SubscriptionPatch>(), subscription);
        assert_eq!(required::<NewSubscription>(), ["event_types", "url"]);
        assert!(required::<SubscriptionPatch>().is_empty());
        assert_eq!(properties::<JwtInput>(), ["issuer", "keys"]);
        assert_eq!(
            properties::<NewClientCertificate>(),
            sorted(&crate::certificates::FIELDS)
        );
        assert_eq!(properties::<BasicAuthInput>(), ["password", "username"]);
        assert_eq!(properties::<HeaderInput>(), ["hidden", "name", "value"]);
    }

    #[test]
    fn optional_fields_that_refuse_null_do_not_allow_it() {
        let s = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<ConnectorPatch>();
        let p = &s.as_value()["properties"];
        assert_eq!(p["enabled"]["type"], "boolean");
        assert_eq!(p["description"]["type"], "string");
        // `null` clears these.
        assert_eq!(p["rate_limit"]["type"], json!(["integer", "null"]));
        assert_eq!(p["saved_search_id"]["type"], json!(["string", "null"]));
        assert_eq!(s.as_value()["additionalProperties"], false);
    }
}
