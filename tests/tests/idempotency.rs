//! `Idempotency-Key` end to end: a replay is checked against the credential as it is now,
//! and a create whose answer showed a secret never creates twice.

use koppel_e2e::*;
use serde_json::{Value, json};

/// A fresh workspace: its owner's `Authorization` value, and a `handle` connector (made
/// through the API) with a token: (workspace, owner auth, connector id, connector auth).
async fn setup() -> (String, String, String, String) {
    let (ws, owner) = new_workspace("Idempotency test");
    let (_, pat) = personal_token(&ws, &owner);
    let owner_auth = format!("Bearer {pat}");
    let con = send(
        &base_url(),
        "POST",
        "/v1/connectors",
        &[("Authorization", &owner_auth)],
        Some(&json!({
            "description": "Idempotent partner", "acting_user_id": owner,
            "access_level": "handle", "scopes": ["dsr:read", "dsr:write"], "rate_limit": 1000,
        })),
    )
    .await;
    assert_eq!(con.status, 201, "{}", con.body);
    let con_id = s(&con.body["id"]).to_owned();
    let (_, token) = NewCredential::token(&ws, &con_id).secret();
    (ws, owner_auth, con_id, format!("Bearer {token}"))
}

async fn post(auth: &str, path: &str, key: &str, body: &Value) -> Reply {
    send(
        &base_url(),
        "POST",
        path,
        &[("Authorization", auth), ("Idempotency-Key", key)],
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_replay_is_refused_once_the_credential_lost_the_scope() {
    let (ws, owner, con, app) = setup().await;
    let path = format!("/v1/ws/{ws}/DataSubjectRequests");
    let key = uuid::Uuid::new_v4().to_string();
    let body = json!({ "title": "Inzage", "purposes": ["Access"] });
    let first = post(&app, &path, &key, &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = post(&app, &path, &key, &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body);

    // The connector loses `dsr:write`: the same key no longer answers 201.
    let read = send(
        &base_url(),
        "GET",
        &format!("/v1/connectors/{con}"),
        &[("Authorization", &owner)],
        None,
    )
    .await;
    let etag = read.headers["etag"].to_str().unwrap().to_owned();
    let r = send(
        &base_url(),
        "PATCH",
        &format!("/v1/connectors/{con}"),
        &[("Authorization", &owner), ("If-Match", &etag)],
        Some(&json!({ "scopes": ["dsr:read"] })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let replay = post(&app, &path, &key, &body).await;
    replay.assert_problem(403);
    assert!(replay.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_create_that_showed_a_secret_is_never_made_twice() {
    let (_, owner, con, _) = setup().await;
    let key = uuid::Uuid::new_v4().to_string();
    let subs = format!("/v1/connectors/{con}/subscriptions");
    let body = json!({
        "url": "https://hooks.partner.example/koppel",
        "event_types": ["dsr.created"],
    });
    let first = post(&owner, &subs, &key, &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.headers["cache-control"], "no-store");
    let again = post(&owner, &subs, &key, &body).await;
    again.assert_problem(409);
    assert_eq!(
        again.body["type"],
        "urn:koppel:problem:idempotency-secret-shown"
    );
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert!(!again.body.to_string().contains("whsec_"), "{}", again.body);
    let list = send(
        &base_url(),
        "GET",
        &subs,
        &[("Authorization", &owner)],
        None,
    )
    .await;
    assert_eq!(
        list.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.body
    );

    // The same for a connector credential: one credential, its secret shown once.
    let creds = format!("/v1/connectors/{con}/credentials");
    let key = uuid::Uuid::new_v4().to_string();
    let first = post(&owner, &creds, &key, &json!({"name": "once"})).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = post(&owner, &creds, &key, &json!({"name": "once"})).await;
    again.assert_problem(409);
    assert_eq!(again.headers["location"], first.headers["location"]);
    let list = send(
        &base_url(),
        "GET",
        &creds,
        &[("Authorization", &owner)],
        None,
    )
    .await;
    let named_once = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "once")
        .count();
    assert_eq!(named_once, 1, "{}", list.body);
}
