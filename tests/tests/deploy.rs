//! As deployed: the local gateway answers both URL forms API Gateway has — with the stage
//! (`/live/v1/…`, execute-api) and without (a custom domain mapped at the root) — and what
//! the API gives back (a problem's `instance`, `Location`) is the path the client called,
//! whichever form it used. The cases function streams, so its routes must be
//! response-streaming integrations: the local gateway, like API Gateway, answers 502 for a
//! streaming function behind a buffered route.

use koppel_e2e::cases::*;
use koppel_e2e::*;
use serde_json::json;

/// template.yaml's default `StageName`, which tools/test.sh keeps.
const STAGE: &str = "/live";

#[tokio::test]
async fn gateway_problems_name_the_path_called() {
    for path in ["/v1/me", "/live/v1/me"] {
        let r = get(&base_url(), path, &[]).await;
        r.assert_problem(401);
        assert_eq!(r.body["instance"], path, "{}", r.body);
    }
    let r = get(&base_url(), "/live/v1/no-such-route", &[]).await;
    r.assert_problem(404);
    assert_eq!(r.body["instance"], "/live/v1/no-such-route");
}

#[tokio::test]
async fn function_problems_name_the_path_called() {
    let ws = CaseWs::create();
    let auth = format!("Bearer {}", ws.pat);
    for base in ["", STAGE] {
        let path = format!("{base}/v1/cases/987654321");
        let r = get(&base_url(), &path, &[("Authorization", &auth)]).await;
        r.assert_problem(404);
        assert_eq!(r.body["instance"], path.as_str(), "{}", r.body);

        // A function outside the streaming one, and a 422 rather than a 404.
        let path = format!("{base}/v1/tokens");
        let r = send(
            &base_url(),
            "POST",
            &path,
            &[("Authorization", &auth)],
            Some(&json!({"name": 5})),
        )
        .await;
        r.assert_problem(422);
        assert_eq!(r.body["instance"], path.as_str(), "{}", r.body);
    }
}

#[tokio::test]
async fn location_is_under_the_base_the_client_called() {
    let ws = CaseWs::create();
    let auth = format!("Bearer {}", ws.pat);
    for base in ["", STAGE] {
        let r = send(
            &base_url(),
            "POST",
            &format!("{base}/v1/cases"),
            &[("Authorization", &auth)],
            Some(&json!({"case_type": "Melding", "subject": "Lantaarnpaal", "status": "open"})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let location = r.headers["location"].to_str().expect("ascii").to_owned();
        let id = r.body["id"].as_u64().expect("id");
        assert_eq!(location, format!("{base}/v1/cases/{id}"));
        // The client can follow it as it is.
        let got = get(&base_url(), &location, &[("Authorization", &auth)]).await;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(got.body["id"], id);
    }
}

#[tokio::test]
async fn the_streamed_routes_answer_including_the_seed_export() {
    let ws = CaseWs::create();
    ws.case(json!({"case_type": "Melding", "subject": "Stoeptegel", "status": "open"}))
        .await;
    let search = ws.search(json!({}), &["subject"]).await;
    let partner = ws.connector(&ws.owner, Some(&search)).await;
    // Through a buffered integration the streamed answer would be a 502.
    let (headers, csv) = partner.csv("/app/api2csv").await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(csv.contains("Stoeptegel"), "{csv}");
    let (_, csv) = partner.csv("/live/v1/cases/export.csv").await;
    assert!(csv.contains("Stoeptegel"), "{csv}");
    let r = partner.call("GET", "/v1/cases", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
