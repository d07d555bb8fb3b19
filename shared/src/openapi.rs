//! The OpenAPI 3.1 document, generated from the functions' route tables
//! ([`crate::routes`]): every route with its parameters, request body, answers (the
//! problem+json ones included), security schemes and the headers Koppel sends; webhook
//! event types as OpenAPI `webhooks`. Nothing here is written by hand per route: what a
//! route's table entry says is what the document says.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::routes::{Precondition, RouteInfo, SchemaFn};

/// One function's routes under a tag (its name in the document).
pub struct Group {
    pub tag: &'static str,
    pub description: &'static str,
    pub routes: Vec<RouteInfo>,
}

/// A webhook event type and the schema of its `data`. What a receiver gets is the
/// envelope `crate::delivery::body` writes: `{type, timestamp, data}`.
pub struct Webhook {
    pub event_type: &'static str,
    pub description: &'static str,
    pub data: SchemaFn,
}

/// Where the problem `type` URIs are explained (`urn:koppel:problem:<slug>`).
pub const PROBLEMS_DOC: &str = "/docs#problems";

/// The document for `groups` and `webhooks`.
pub fn document(version: &str, groups: &[Group], webhooks: &[Webhook]) -> Value {
    // OpenAPI 3.1 schemas are JSON Schema 2020-12; the definitions go where the
    // document's references point.
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for g in groups {
        for r in &g.routes {
            let op = operation(g.tag, r, &mut generator);
            paths
                .entry(r.path)
                .or_default()
                .insert(r.method.to_ascii_lowercase(), op);
        }
    }
    let mut hooks = Map::new();
    for w in webhooks {
        let data = (w.data)(&mut generator);
        let payload = json!({
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "additionalProperties": false,
            "properties": {
                "type": { "const": w.event_type, "description": "The event type." },
                "timestamp": { "type": "string", "format": "date-time", "description": "When the event occurred (RFC 3339, UTC); the same on every retry." },
                "data": data,
            },
        });
        hooks.insert(
            w.event_type.to_owned(),
            json!({ "post": {
                "summary": w.event_type,
                "description": format!("{} Signed with Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`); answer 2xx to acknowledge, 410 to unsubscribe.", w.description),
                "operationId": format!("webhook_{}", w.event_type.replace(['.', '-'], "_")),
                "parameters": [
                    { "name": "webhook-id", "in": "header", "required": true, "schema": { "type": "string" }, "description": "The event id: the same on every retry, so receivers de-duplicate on it." },
                    { "name": "webhook-timestamp", "in": "header", "required": true, "schema": { "type": "string" }, "description": "Unix seconds of this attempt." },
                    { "name": "webhook-signature", "in": "header", "required": true, "schema": { "type": "string" }, "description": "Space-separated `v1,<base64 HMAC-SHA256>` signatures, one per signing secret in use." },
                ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": payload } } },
                "responses": {
                    "2XX": { "description": "Received." },
                    "410": { "description": "Gone: the subscription is disabled." },
                },
            }}),
        );
    }
    let mut schemas = Map::new();
    for (name, s) in generator.take_definitions(true) {
        schemas.insert(name, s);
    }
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Koppel API",
            "version": version,
            "description": format!("Koppel connects partners (suppliers, apps, other public systems) to an organisation's cases, data-subject requests and service endpoints. Every error is `application/problem+json` (RFC 9457) with a request id; its `type` is explained under [Problems](#problems).\n\n{}", crate::problems::markdown()),
            "license": { "name": "EUPL-1.2", "identifier": "EUPL-1.2" },
        },
        "servers": [{ "url": ".", "description": "This deployment (relative to the document)" }],
        "tags": groups.iter().map(|g| json!({ "name": g.tag, "description": g.description })).collect::<Vec<_>>(),
        "paths": paths,
        "webhooks": hooks,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "API-Key", "description": "A connector API key (`kpl_key_…`), sent together with `API-Interface-Id` (the Zaaksysteem koppelprofiel)." },
                "interfaceId": { "type": "apiKey", "in": "header", "name": "API-Interface-Id", "description": "The connector id the API key belongs to." },
                "bearer": { "type": "http", "scheme": "bearer", "description": "A personal access token (`kpl_pat_…`), a connector token (`kpl_ct_…`) or a JWT signed with a key registered on the connector." },
                "jwt": { "type": "apiKey", "in": "header", "name": "JWT", "description": "A JWT signed with a key registered on the connector (OSR)." },
            },
            "headers": rate_limit_headers(),
        },
    })
}

fn operation(tag: &str, r: &RouteInfo, g: &mut schemars::SchemaGenerator) -> Value {
    let d = &r.doc;
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    for q in d.query {
        let schema = if q.kind == "array" {
            json!({ "type": "array", "items": { "type": "string" } })
        } else {
            json!({ "type": q.kind })
        };
        params.push(json!({ "name": q.name, "in": "query", "required": false, "description": q.description, "schema": schema, "explode": true }));
    }
    match d.precondition {
        Precondition::None => {}
        p => params.push(json!({
            "name": "If-Match", "in": "header", "required": p == Precondition::Required,
            "description": "The `ETag` of the version this change is based on (strong: a weak tag or `*` never matches).",
            "schema": { "type": "string" },
        })),
    }
    if r.method == "POST" && !r.public {
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1 to 255 visible ASCII characters: the same key and body within 24 hours replay the first answer (`Idempotent-Replayed: true`) instead of running again.",
            "schema": { "type": "string", "pattern": "^[!-~]{1,255}$" },
        }));
    }
    let status = match (d.status, r.method) {
        (0, "DELETE") => 204,
        (0, _) => 200,
        (s, _) => s,
    };
    let mut headers = Map::new();
    if !r.public {
        for h in [
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
        ] {
            headers.insert(
                h.into(),
                json!({ "$ref": format!("#/components/headers/{h}") }),
            );
        }
    }
    if d.etag {
        headers.insert("ETag".into(), json!({ "description": "The version of the resource, for `If-Match`.", "schema": { "type": "string" } }));
    }
    if status == 201 {
        headers.insert("Location".into(), json!({ "description": "Where the created resource is.", "schema": { "type": "string" } }));
    }
    let mut ok = json!({ "description": reason(status), "headers": headers });
    if let Some(f) = d.response {
        ok["content"] = json!({ d.media_type: { "schema": f(g) } });
    } else if status != 204 && d.media_type != "application/json" {
        ok["content"] = json!({ d.media_type: { "schema": { "type": "string" } } });
    }
    let mut responses = Map::new();
    responses.insert(status.to_string(), ok);
    for code in problems(r) {
        responses.insert(
            code.to_string(),
            json!({ "description": reason(code), "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }),
        );
    }
    let mut description = String::from(d.description);
    if !r.public {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        match r.scope {
            Some(s) => description.push_str(&format!(
                "Needs the scope `{s}` and access level `{}`.",
                r.level
            )),
            None => description.push_str(&format!("Needs access level `{}`.", r.level)),
        }
    }
    let mut op = json!({
        "tags": [tag],
        "summary": r.summary,
        "description": description,
        "operationId": operation_id(r),
        "parameters": params,
        "responses": responses,
        "security": if r.public { json!([]) } else { json!([{ "apiKey": [], "interfaceId": [] }, { "bearer": [] }, { "jwt": [] }]) },
    });
    if let Some(scope) = r.scope {
        op["x-koppel-scope"] = scope.as_str().into();
    }
    if let Some(f) = d.request {
        op["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": f(g) } } });
    }
    op
}

/// The problem statuses a route may answer: those of every credential route, of a route
/// with path parameters, a body, query parameters or `If-Match`, and the route's own.
fn problems(r: &RouteInfo) -> Vec<u16> {
    let mut codes = vec![];
    if !r.public {
        codes.extend([401, 403, 429]);
    }
    if r.path.contains('{') {
        codes.push(404);
    }
    if r.doc.request.is_some() {
        codes.extend([400, 413, 415, 422]);
    }
    // A malformed `Idempotency-Key` is 400 before the body is read.
    if r.method == "POST" && !r.public {
        codes.extend([400, 409, 422]);
    }
    // A query parameter out of its bounds is 422 naming it.
    if !r.doc.query.is_empty() {
        codes.push(422);
    }
    match r.doc.precondition {
        Precondition::None => {}
        // An `If-Match` that is not text is 400.
        Precondition::Optional => codes.extend([400, 412]),
        Precondition::Required => codes.extend([400, 412, 428]),
    }
    codes.extend(r.doc.errors);
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// `GET /v1/cases/{id}` → `get_v1_cases_id`.
fn operation_id(r: &RouteInfo) -> String {
    let path: String = r
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut id = format!(
        "{}_{}",
        r.method.to_ascii_lowercase(),
        path.trim_matches('_')
    );
    while id.contains("__") {
        id = id.replace("__", "_");
    }
    id
}

fn reason(code: u16) -> &'static str {
    http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Answer")
}

fn rate_limit_headers() -> Value {
    json!({
        "RateLimit-Limit": { "description": "Requests allowed per window for this credential.", "schema": { "type": "integer" } },
        "RateLimit-Remaining": { "description": "Requests left in this window.", "schema": { "type": "integer" } },
        "RateLimit-Reset": { "description": "Seconds until the window resets.", "schema": { "type": "integer" } },
        "RateLimit-Policy": { "description": "The policy, e.g. `30;w=60`.", "schema": { "type": "string" } },
    })
}

/// RFC 9457, as [`crate::error::ApiError`] writes it.
fn problem_schema() -> Value {
    let types: Vec<String> = crate::problems::PROBLEMS
        .iter()
        .map(|p| crate::problems::type_uri(p.slug))
        .collect();
    json!({
        "type": "object",
        "description": format!("An error (RFC 9457). `type` is `urn:koppel:problem:<slug>`, explained at {PROBLEMS_DOC} (each at `/docs#problem-<slug>`)."),
        // The gateway's catch-all answers (`gateway`, `internal`) cannot name their status.
        "required": ["type", "title", "detail", "instance", "request_id"],
        "externalDocs": { "description": "What each problem type means and what to do", "url": PROBLEMS_DOC },
        "properties": {
            "type": { "type": "string", "enum": types, "description": format!("One of the problem types explained at {PROBLEMS_DOC}.") },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "instance": { "type": "string", "description": "The path called." },
            "request_id": { "type": "string" },
            "errors": {
                "type": "array",
                "description": "With 422: every invalid field.",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": { "field": { "type": "string" }, "message": { "type": "string" } },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, Scope};
    use crate::routes::{Doc, schema};

    #[derive(schemars::JsonSchema, serde::Serialize)]
    #[allow(dead_code)]
    struct Thing {
        id: String,
        version: u64,
    }

    fn info(method: &'static str, path: &'static str, doc: Doc) -> RouteInfo {
        RouteInfo {
            method,
            path,
            scope: Some(Scope::CasesRead),
            level: Level::Read,
            summary: "s",
            public: false,
            doc,
        }
    }

    #[test]
    fn a_route_becomes_an_operation_with_its_parameters_answers_and_schemas() {
        let doc = Doc {
            request: Some(schema::<Thing>),
            response: Some(schema::<Thing>),
            precondition: Precondition::Required,
            etag: true,
            ..Doc::DEFAULT
        };
        let d = document(
            "1",
            &[Group {
                tag: "things",
                description: "",
                routes: vec![info("PATCH", "/v1/things/{id}", doc)],
            }],
            &[],
        );
        let op = &d["paths"]["/v1/things/{id}"]["patch"];
        assert_eq!(op["operationId"], "patch_v1_things_id");
        assert_eq!(op["parameters"][0]["name"], "id");
        assert_eq!(op["parameters"][1]["name"], "If-Match");
        assert_eq!(op["parameters"][1]["required"], true);
        let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(
            codes,
            [
                "200", "400", "401", "403", "404", "412", "413", "415", "422", "428", "429"
            ]
        );
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Thing"
        );
        assert!(d["components"]["schemas"]["Thing"]["properties"]["version"].is_object());
        assert!(op["responses"]["200"]["headers"]["ETag"].is_object());
        assert_eq!(op["x-koppel-scope"], "cases:read");
    }

    fn codes(r: RouteInfo) -> Vec<u16> {
        problems(&r)
    }

    #[test]
    fn problems_follow_what_the_pipeline_can_refuse() {
        // Only the credential's problems for a plain read.
        assert_eq!(
            codes(info("GET", "/v1/things", Doc::DEFAULT)),
            [401, 403, 429]
        );
        // A POST without a described body still reads `Idempotency-Key` (400 if malformed).
        assert_eq!(
            codes(info("POST", "/v1/things/{id}/ping", Doc::DEFAULT)),
            [400, 401, 403, 404, 409, 422, 429]
        );
        // Query parameters out of bounds are 422.
        let query = Doc {
            query: &[crate::routes::Query {
                name: "limit",
                description: "",
                kind: "integer",
            }],
            ..Doc::DEFAULT
        };
        assert_eq!(
            codes(info("GET", "/v1/things", query)),
            [401, 403, 422, 429]
        );
        // An unreadable `If-Match` is 400, a stale one 412.
        let optional = Doc {
            precondition: Precondition::Optional,
            ..Doc::DEFAULT
        };
        assert_eq!(
            codes(info("DELETE", "/v1/things/{id}", optional)),
            [400, 401, 403, 404, 412, 429]
        );
    }

    #[test]
    fn the_idempotency_key_schema_is_the_pipeline_rule() {
        let d = document(
            "1",
            &[Group {
                tag: "things",
                description: "",
                routes: vec![info("POST", "/v1/things", Doc::DEFAULT)],
            }],
            &[],
        );
        let key = &d["paths"]["/v1/things"]["post"]["parameters"][0];
        assert_eq!(key["name"], "Idempotency-Key");
        let re = key["schema"]["pattern"].as_str().unwrap();
        assert_eq!(re, "^[!-~]{1,255}$");
        // `!`..`~` is exactly the visible ASCII the pipeline accepts.
        assert!((b'!'..=b'~').all(|b| b.is_ascii_graphic()));
        assert!(!b' '.is_ascii_graphic() && !0x7f_u8.is_ascii_graphic());
    }

    #[test]
    fn webhooks_carry_the_delivered_envelope_and_problems_are_explained() {
        let d = document(
            "1",
            &[],
            &[Webhook {
                event_type: "thing.created",
                description: "A thing was created.",
                data: schema::<Thing>,
            }],
        );
        let hook = &d["webhooks"]["thing.created"]["post"];
        assert_eq!(hook["operationId"], "webhook_thing_created");
        let body = &hook["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["properties"]["type"]["const"], "thing.created");
        assert_eq!(body["required"], json!(["type", "timestamp", "data"]));
        assert_eq!(
            body["properties"]["data"]["$ref"],
            "#/components/schemas/Thing"
        );
        // The delivered body has exactly those members.
        let sent: Value =
            serde_json::from_str(&crate::delivery::body("thing.created", "t", json!({}))).unwrap();
        let mut keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["data", "timestamp", "type"]);

        let info = d["info"]["description"].as_str().unwrap();
        assert!(info.contains("<a id=\"problems\"></a>"));
        assert!(info.contains("<a id=\"problem-token-limit\"></a>"));
        let types = d["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap();
        assert!(types.iter().any(|t| t == "urn:koppel:problem:not-found"));
        assert_eq!(types.len(), crate::problems::PROBLEMS.len());
    }
}
