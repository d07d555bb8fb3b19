//! The contract, served without a credential: `GET /openapi.json` is the committed
//! document byte for byte, `GET /docs` the interactive documentation whose links follow the
//! base the client called (with the stage, as on an execute-api URL, or without), and its
//! script and stylesheet are the vendored Swagger UI. No credential is asked for, none is
//! looked at, and no rate-limit window is spent. (The page itself, in a browser:
//! tests/browser/docs.test.mjs.)

use koppel_e2e::*;

const STAGE: &str = "/live";

fn committed_document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn the_document_is_served_without_a_credential_as_committed() {
    let committed = committed_document();
    for base in ["", STAGE] {
        let r = reqwest::get(format!("{}{base}/openapi.json", base_url()))
            .await
            .expect("the local gateway answers");
        assert_eq!(r.status(), 200, "{base}/openapi.json");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(
            r.headers().get("ratelimit-limit").is_none(),
            "public: no window"
        );
        let served = r.text().await.unwrap();
        assert!(
            served == committed,
            "{base}/openapi.json is not openapi.json"
        );
        let d: serde_json::Value = serde_json::from_str(&served).unwrap();
        assert_eq!(d["openapi"], "3.1.0");
        assert_eq!(
            d["paths"]["/openapi.json"]["get"]["security"],
            serde_json::json!([])
        );
    }
}

#[tokio::test]
async fn a_credential_is_neither_needed_nor_checked() {
    let d = demo();
    let bad = "Bearer kpl_pat_not-a-real-token";
    let good = format!("Bearer {}", s(&d["users"]["owner"]["pat"]));
    for auth in [bad, good.as_str()] {
        let r = get(&base_url(), "/docs", &[("Authorization", auth)]).await;
        assert_eq!(r.status, 200, "{auth}: {}", r.body);
    }
    // Beside it, a credential route still refuses a bad one.
    me(&[("Authorization", bad)]).await.assert_problem(401);
}

#[tokio::test]
async fn the_page_links_under_the_base_called() {
    for base in ["", STAGE] {
        let r = get(&base_url(), &format!("{base}/docs"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
        let html = s(&r.body);
        assert!(html.contains(&format!(r#"<script src="{base}/docs/assets/docs.js">"#)));
        assert!(html.contains(&format!(r#"href="{base}/docs/assets/docs.css""#)));
        assert!(html.contains(&format!(r#"data-base="{base}""#)));
        assert!(html.contains(r##"href="#problems""##));
        assert!(!html.contains("https://"), "nothing from a CDN");
    }
}

#[tokio::test]
async fn the_assets_are_the_vendored_swagger_ui() {
    let version = include_str!("../../functions/tokens/docs/swagger-ui/VERSION").trim();
    for base in ["", STAGE] {
        let r = get(&base_url(), &format!("{base}/docs/assets/docs.js"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "text/javascript; charset=utf-8");
        let js = s(&r.body);
        assert!(js.contains("SwaggerUIBundle") && js.contains("koppel-docs"));
        assert!(
            js.contains(&format!("\"{version}\"")),
            "Swagger UI {version}"
        );
        let r = get(&base_url(), &format!("{base}/docs/assets/docs.css"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "text/css; charset=utf-8");
        assert!(s(&r.body).contains(".swagger-ui"));
    }
}

#[tokio::test]
async fn only_get_is_public_and_unknown_documents_are_404() {
    let r = send(&base_url(), "POST", "/openapi.json", &[], None).await;
    r.assert_problem(404);
    let r = get(&base_url(), "/docs/assets/other.js", &[]).await;
    r.assert_problem(404);
    let r = get(&base_url(), "/openapi.yaml", &[]).await;
    r.assert_problem(404);
}

/// Operations tried from /docs find something: the demo has data for every seed, made
/// through the functions themselves, and names it in demo.json.
#[tokio::test]
async fn the_demo_has_data_for_every_seed() {
    let d = demo();
    let ws = s(&d["workspace_id"]);
    let connector = format!("Bearer {}", s(&d["connector"]["token"]));
    let owner = format!("Bearer {}", s(&d["users"]["owner"]["pat"]));
    let base = base_url();

    // Dastra (seed 002): the requests, with the server-owned deadline computed.
    let ids = d["data_subject_requests"].as_array().expect("dsr ids");
    assert!(ids.len() >= 3, "{ids:?}");
    for id in ids {
        let path = format!("/v1/ws/{ws}/DataSubjectRequests/{id}");
        let r = get(&base, &path, &[("Authorization", &connector)]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.body["purposes"].as_array().is_some_and(|p| !p.is_empty()));
        assert!(r.body["expiryTime"].is_string(), "{}", r.body);
    }

    // OSR (seed 003): the service version, the connector's mandate, the endpoint under it.
    let osr = &d["osr"];
    let r = get(
        &base,
        "/api/v1/service-versions",
        &[("Authorization", &owner)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.to_string().contains(s(&osr["namespace"])),
        "{}",
        r.body
    );
    let r = get(&base, "/api/v1/mandates", &[("Authorization", &owner)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.to_string().contains(s(&osr["administration_id"])));
    let path = format!("/api/v1/endpoints/{}", s(&osr["endpoint_id"]));
    let r = get(&base, &path, &[("Authorization", &connector)]).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert_eq!(r.body["administration_id"], osr["administration_id"]);
    assert_eq!(r.body["service_version_namespace"], osr["namespace"]);

    // PlanRadar (seed 004): a subscription with Basic credentials and a hidden header whose
    // value is not shown again; disabled, so nothing is sent to its example receiver.
    let path = format!(
        "/v1/connectors/{}/subscriptions/{}",
        s(&d["connector"]["id"]),
        s(&d["webhook_subscription_id"])
    );
    let r = get(&base, &path, &[("Authorization", &owner)]).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert_eq!(r.body["enabled"], false);
    let text = r.body.to_string();
    assert!(
        text.contains("X-Partner-Secret") && !text.contains("demo-secret"),
        "{text}"
    );
    assert!(!text.contains("demo-password"), "{text}");
}
