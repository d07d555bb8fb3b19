//! A partner's manifest (AFAS "Importeren GetConnectoren"): the partner ships, with its app,
//! a JSON file naming what the app needs — the scopes (operations) it uses, a description,
//! and the webhook event types it listens to — and the organisation applies it to the
//! connector it made for the app (`POST /v1/connectors/{id}/manifest`, or
//! `koppel-admin connector import --file`), instead of ticking every operation by hand.
//!
//! ```json
//! { "description": "Zaakportaal", "scopes": ["cases:read", "cases:write"],
//!   "event_types": ["case.created", "case.updated"] }
//! ```
//!
//! One 422 lists every unknown field, scope and event type, and every event type the
//! manifest's own scopes would not let the connector receive. Applied, the scopes replace
//! the connector's, the description (if given) replaces its own, and the event types are
//! kept on the connector for the organisation to subscribe to.

use koppel_shared::ApiError;
use koppel_shared::body::Fields;
use koppel_shared::connector_rules as rules;
use koppel_shared::model::{Connector, ImportedManifest, Scopes};
use serde_json::{Map, Value};

use crate::input::Input;

pub(crate) const FIELDS: [&str; 3] = ["description", "scopes", "event_types"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub description: Option<String>,
    pub scopes: Scopes,
    pub event_types: Vec<String>,
}

/// The manifest in `body`, or one 422 naming everything wrong with it.
pub fn parse(body: &Map<String, Value>) -> Result<Manifest, ApiError> {
    let o = Input::new(body, &FIELDS);
    let mut e = Fields::new();
    o.unknown_fields(&mut e);
    let description = o.string("description", false, &mut e).map(|d| {
        rules::description(d, &mut e);
        d.trim().to_owned()
    });
    let scopes = match o.strings("scopes", true, &mut e) {
        Some(s) => {
            e.check(!s.is_empty(), "scopes", "name at least one scope");
            rules::scopes(&s, &mut e)
        }
        None => Scopes::new(),
    };
    let event_types = match o.strings("event_types", false, &mut e) {
        Some(types) if !types.is_empty() => crate::subscription_rules::event_types_within(
            &types,
            Some((&scopes, "the manifest's scopes")),
            &mut e,
        ),
        _ => Vec::new(),
    };
    e.finish()?;
    Ok(Manifest {
        description,
        scopes,
        event_types,
    })
}

impl Manifest {
    /// Applies it to `con` (the caller saves it).
    pub fn apply_to(&self, con: &mut Connector, at: &str) {
        if let Some(d) = &self.description {
            con.description = d.clone();
        }
        con.scopes = self.scopes.clone();
        con.manifest = Some(ImportedManifest {
            event_types: self.event_types.clone(),
            imported_at: at.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koppel_shared::model::Scope;
    use serde_json::json;

    fn parsed(v: Value) -> Result<Manifest, Vec<String>> {
        parse(v.as_object().unwrap()).map_err(|e| e.errors.into_iter().map(|f| f.field).collect())
    }

    #[test]
    fn a_manifest_sets_scopes_and_description_and_keeps_its_event_types() {
        let m = parsed(json!({
            "description": " Zaakportaal ", "scopes": ["cases:read", "dsr:read"],
            "event_types": ["case.created", "webhook.subscription_disabled", "case.created"],
        }))
        .unwrap();
        assert_eq!(m.description.as_deref(), Some("Zaakportaal"));
        assert_eq!(
            m.event_types,
            ["case.created", "webhook.subscription_disabled"]
        );
        let mut con = Connector::new("ws".into(), "con".into(), "t0".into());
        m.apply_to(&mut con, "t1");
        assert_eq!(con.scopes, [Scope::CasesRead, Scope::DsrRead].into());
        assert_eq!(con.description, "Zaakportaal");
        assert_eq!(con.manifest.unwrap().imported_at, "t1");
    }

    #[test]
    fn every_unknown_entry_is_named_at_once() {
        let bad = parsed(json!({
            "scopes": ["cases:read", "cases:delete"],
            "event_types": ["case.created", "case.deleted", "dsr.created"],
            "webhook_url": "https://x.example",
        }))
        .unwrap_err();
        assert_eq!(
            bad,
            [
                "webhook_url",
                "scopes[1]",
                "event_types[1]",
                "event_types[2]"
            ]
        );
        assert_eq!(parsed(json!({})).unwrap_err(), ["scopes"]);
        assert_eq!(parsed(json!({"scopes": []})).unwrap_err(), ["scopes"]);
    }
}
