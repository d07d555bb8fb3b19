//! The contract partners read: the OpenAPI document generated from every function's route
//! table, and the check that those tables and template.yaml declare the same routes.

use std::collections::BTreeSet;

use koppel_shared::cases::CaseView;
use koppel_shared::openapi::{self, Group, Webhook};
use koppel_shared::routes::{SchemaFn, schema};
use koppel_shared::{delivery, webhook};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use crate::gateway::HttpFunction;
use crate::template::Template;

/// Every HTTP function's routes, as the document groups them.
pub fn groups() -> Vec<Group> {
    HttpFunction::ALL
        .into_iter()
        .map(|f| {
            let (tag, description) = match f {
                HttpFunction::Tokens => (
                    "identity",
                    "Who am I, personal access tokens, users, connector credentials, OTP issuance and the audit trail.",
                ),
                HttpFunction::Connectors => (
                    "connectors",
                    "Connector profiles and their webhook subscriptions, deliveries and replays.",
                ),
                HttpFunction::Cases => (
                    "cases",
                    "Cases as a connector's saved search shows them, their history, CSV export, and saved searches.",
                ),
                HttpFunction::Dsr => (
                    "data-subject-requests",
                    "Dastra-compatible data-subject requests (GDPR), with Dastra's field names and types.",
                ),
                HttpFunction::Endpoints => (
                    "osr",
                    "Kennisnet OSR-compatible service endpoints, mandates and service-version namespaces.",
                ),
            };
            Group {
                tag,
                description,
                routes: f.routes(),
            }
        })
        .collect()
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    openapi::document(env!("CARGO_PKG_VERSION"), &groups(), &webhooks())
}

// The `data` of each webhook, as the dispatcher delivers it (only what the receiving
// subscription's connector may see). Where the JSON is built with `json!`, the type here
// describes it and says where; the end-to-end tests hold deliveries to the document.

// Built by `koppel_shared::cases::View::event_data`.
/// The `data` of a case event, as the receiving connector's saved search shows it.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CaseEventData {
    /// The case as the connector's saved search shows it (its columns only); once a change
    /// took it out of the search (`visible: false`), only its `id` and `uuid`.
    case: CaseInEvent,
    /// Whether the case is in the connector's saved search after the change.
    visible: bool,
    /// The fields the change touched, only those among the connector's columns (empty on
    /// create).
    changed: Vec<String>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum CaseInEvent {
    Visible(Box<CaseView>),
    Left(CaseLeft),
}

/// A case that left the connector's saved search.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CaseLeft {
    id: u64,
    uuid: String,
}

// Built by `event` in functions/dsr.
/// The `data` of a data-subject request event.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct DsrEventData {
    id: i64,
    state: dsr::model::State,
    /// The request as `GET /v1/ws/{workspaceId}/DataSubjectRequests/{id}` shows it.
    request: dsr::model::Dsr,
}

// Built by `disable` in functions/webhook-dispatch.
/// The `data` of `webhook.subscription_disabled`: which subscription, and why.
#[derive(JsonSchema)]
#[schemars(rename = "SubscriptionDisabledData")]
#[allow(dead_code)]
struct SubscriptionDisabled {
    connector_id: String,
    subscription_id: String,
    /// Why: a 410 Gone answer, or failing for too long.
    reason: String,
}

// Built by `ping` in functions/connectors.
/// The `data` of a test ping: the subscription it was sent to.
#[derive(JsonSchema)]
#[schemars(rename = "PingData")]
#[allow(dead_code)]
struct Ping {
    connector_id: String,
    subscription_id: String,
}

/// The success schema the route table documents for `method path` (endpoint and mandate
/// events carry the same view as the API answers).
fn answer_of(method: &str, path: &str, g: &mut SchemaGenerator) -> Schema {
    let f = HttpFunction::ALL
        .into_iter()
        .flat_map(|f| f.routes())
        .find(|r| r.method == method && r.path == path)
        .and_then(|r| r.doc.response)
        .unwrap_or_else(|| panic!("{method} {path} documents no answer"));
    f(g)
}

fn endpoint_data(g: &mut SchemaGenerator) -> Schema {
    answer_of("GET", "/api/v1/endpoints/{id}", g)
}

fn mandate_data(g: &mut SchemaGenerator) -> Schema {
    answer_of("POST", "/api/v1/mandates", g)
}

/// The `data` schema of `event_type`; `None` for one this function does not know.
fn data_of(event_type: &str) -> Option<SchemaFn> {
    Some(match event_type {
        "case.created" | "case.updated" | "case.closed" => schema::<CaseEventData>,
        "dsr.created" | "dsr.updated" | "dsr.closed" => schema::<DsrEventData>,
        "endpoint.created" | "endpoint.updated" => endpoint_data,
        "mandate.granted" | "mandate.revoked" => mandate_data,
        delivery::SUBSCRIPTION_DISABLED => schema::<SubscriptionDisabled>,
        delivery::PING => schema::<Ping>,
        _ => return None,
    })
}

/// Every published event type, and the test ping.
pub fn webhooks() -> Vec<Webhook> {
    webhook::EVENT_TYPES
        .iter()
        .copied()
        .chain([(
            delivery::PING,
            "A test ping (`POST /v1/connectors/{id}/subscriptions/{subscriptionId}/ping`); sent to that subscription whatever its event types.",
        )])
        .map(|(event_type, description)| Webhook {
            event_type,
            description,
            data: data_of(event_type)
                .unwrap_or_else(|| panic!("no webhook payload schema for `{event_type}`")),
        })
        .collect()
}

/// `METHOD path` of every route, with the binary that serves it and whether it is public.
type Declared = BTreeSet<(String, String, String, bool)>;

/// Where template.yaml and the route tables disagree: routes only one of them declares,
/// each as `METHOD path (binary, public|authorized)`.
pub fn differences(template: &Template) -> Result<(Vec<String>, Vec<String>), String> {
    let mut in_template = Declared::new();
    for r in template.routes() {
        let binary = template.binary(&r.function)?;
        in_template.insert((r.method.clone(), r.path.clone(), binary, !r.authorized));
    }
    let mut in_tables = Declared::new();
    for f in HttpFunction::ALL {
        let binary = f.binary().to_owned();
        for r in f.routes() {
            in_tables.insert((
                r.method.to_owned(),
                r.path.to_owned(),
                binary.clone(),
                r.public,
            ));
        }
    }
    let show = |(m, p, b, public): &(String, String, String, bool)| {
        format!(
            "{m} {p} ({b}, {})",
            if *public { "public" } else { "authorized" }
        )
    };
    Ok((
        in_template.difference(&in_tables).map(show).collect(),
        in_tables.difference(&in_template).map(show).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

    #[test]
    fn template_and_route_tables_declare_the_same_routes() {
        let t = Template::load(std::path::Path::new(&format!("{ROOT}/template.yaml"))).unwrap();
        let (only_template, only_tables) = differences(&t).unwrap();
        assert!(
            only_template.is_empty() && only_tables.is_empty(),
            "only in template.yaml: {only_template:#?}\nonly in the route tables: {only_tables:#?}"
        );
    }

    /// The committed `openapi.json` is the generated one, so every contract change shows
    /// in review. `KOPPEL_UPDATE_OPENAPI=1 cargo test -p koppel-local` rewrites it.
    #[test]
    fn the_committed_openapi_document_is_current() {
        let path = format!("{ROOT}/openapi.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
        if std::env::var("KOPPEL_UPDATE_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "openapi.json is not the generated document: run KOPPEL_UPDATE_OPENAPI=1 cargo test -p koppel-local contract"
        );
    }

    #[test]
    fn every_published_event_type_is_a_webhook_of_the_document() {
        for (t, _) in webhook::EVENT_TYPES {
            assert!(data_of(t).is_some(), "`{t}` has no payload schema");
        }
        let d = document();
        let hooks = d["webhooks"].as_object().unwrap();
        let mut expected: BTreeSet<&str> = webhook::EVENT_TYPES.iter().map(|(t, _)| *t).collect();
        expected.insert(delivery::PING);
        assert_eq!(
            hooks.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            expected
        );
        // Each payload is the delivered envelope with that type and its data.
        let body =
            &hooks["case.updated"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["properties"]["type"]["const"], "case.updated");
        assert_eq!(
            body["properties"]["data"]["$ref"],
            "#/components/schemas/CaseEventData"
        );
        let body = &hooks["endpoint.created"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert_eq!(
            body["properties"]["data"],
            d["paths"]["/api/v1/endpoints/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
                ["schema"]
        );
    }

    #[test]
    fn an_unknown_event_type_has_no_payload_schema() {
        assert!(data_of("case.deleted").is_none());
    }

    #[test]
    fn every_operation_has_a_unique_id() {
        let d = document();
        let mut ids = BTreeSet::new();
        for (_, ops) in d["paths"].as_object().unwrap() {
            for (_, op) in ops.as_object().unwrap() {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()));
            }
        }
        assert!(ids.len() >= 59, "{} operations", ids.len());
    }
}
