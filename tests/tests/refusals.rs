//! What the shared pipeline refuses before any handler runs is in the served document, for
//! every operation it can happen on: a malformed `Idempotency-Key` (400, on every POST, a
//! body or none), an `If-Match` that is not text (400), a query parameter out of bounds
//! (422). Schemathesis (tools/py/contract_test.py) holds every answer to the document;
//! this holds these three to it one by one.

use koppel_e2e::*;
use serde_json::Value;

async fn document() -> Value {
    let r = get(&base_url(), "/openapi.json", &[]).await;
    assert_eq!(r.status, 200);
    r.body
}

fn documented(doc: &Value, method: &str, path: &str) -> Vec<String> {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the document");
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The owner of a workspace of the test's own, with a personal token.
fn owner() -> (String, String, String) {
    let (ws, owner) = new_workspace("Gemeente Weigering");
    let (_, pat) = personal_token(&ws, &owner);
    (ws, owner, format!("Bearer {pat}"))
}

#[tokio::test]
async fn every_credential_post_documents_the_malformed_idempotency_key() {
    let doc = document().await;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(op) = ops.get("post") else { continue };
        if op["security"] == serde_json::json!([]) {
            continue;
        }
        let key = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("POST {path} takes no Idempotency-Key"));
        // The header's schema is the pipeline's rule: visible ASCII, 1 to 255.
        assert_eq!(key["schema"]["pattern"], "^[!-~]{1,255}$", "POST {path}");
        assert!(
            op["responses"].get("400").is_some(),
            "POST {path} does not document 400"
        );
    }
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_a_documented_400_on_a_post_without_a_body() {
    let doc = document().await;
    let (ws, owner, auth) = owner();
    let con = NewConnector::sample(&ws, &owner)
        .description("refusals")
        .level("read")
        .id();
    let path = format!("/v1/connectors/{con}/disable");
    for key in ["two words", "", &"k".repeat(256)] {
        let r = send(
            &base_url(),
            "POST",
            &path,
            &[("Authorization", &auth), ("Idempotency-Key", key)],
            None,
        )
        .await;
        r.assert_problem(400);
    }
    assert!(documented(&doc, "post", "/v1/connectors/{id}/disable").contains(&"400".into()));
    // Nothing was done: the connector is still enabled.
    let r = get(
        &base_url(),
        &format!("/v1/connectors/{con}"),
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["enabled"], true);
}

#[tokio::test]
async fn an_if_match_that_is_not_text_is_a_documented_400() {
    let doc = document().await;
    let (ws, owner, auth) = owner();
    let con = NewConnector::sample(&ws, &owner)
        .description("refusals")
        .level("read")
        .id();
    // obs-text: a valid header value in HTTP, but not text.
    let not_text = reqwest::header::HeaderValue::from_bytes(b"\"\xff1\"").unwrap();
    let r = reqwest::Client::new()
        .delete(format!("{}/v1/connectors/{con}", base_url()))
        .header("Authorization", &auth)
        .header("If-Match", not_text)
        .send()
        .await
        .expect("the local gateway answers");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(documented(&doc, "delete", "/v1/connectors/{id}").contains(&"400".into()));
    let r = get(
        &base_url(),
        &format!("/v1/connectors/{con}"),
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, 200, "not deleted: {}", r.body);
}

#[tokio::test]
async fn a_query_parameter_out_of_bounds_is_a_documented_422() {
    let doc = document().await;
    let (_, _, auth) = owner();
    for (path, query) in [("/v1/users", "limit=0"), ("/v1/connectors", "limit=x")] {
        let r = get(
            &base_url(),
            &format!("{path}?{query}"),
            &[("Authorization", &auth)],
        )
        .await;
        r.assert_problem(422);
        assert!(
            documented(&doc, "get", path).contains(&"422".into()),
            "GET {path} does not document 422"
        );
    }
}
