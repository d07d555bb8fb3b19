//! Webhooks end to end: receivers started here on 127.0.0.1 (HTTPS, their own test CA),
//! the stack's dispatcher delivering to them (loopback allowed and retries shortened to
//! 1 s, a failing streak disabling after 20 s, by tools/test.sh). Signatures are checked
//! with the Python `standardwebhooks` library, as a receiver would. The SSRF test runs a
//! stack of its own with loopback refused, as template.yaml has it.

use std::time::{Duration, Instant};

use koppel_e2e::receiver::{Answer, Cert, Receiver, verify_with_standardwebhooks};
use koppel_e2e::stack::Gateway;
use koppel_e2e::*;
use serde_json::{Value, json};

/// A fresh workspace whose owner manages connectors with a personal access token.
struct Ws {
    id: String,
    owner: String,
    pat: String,
    base: String,
}

impl Ws {
    fn new() -> Self {
        let (id, owner) = new_workspace("Webhooks test");
        let (_, pat) = personal_token(&id, &owner);
        Self {
            id,
            owner,
            pat,
            base: base_url(),
        }
    }

    /// A fresh workspace on another stack.
    fn on(gw: &Gateway) -> Self {
        let admin = |args: &[&str]| gw.admin(args);
        let (id, owner) = new_workspace_by(&admin, "Webhooks test");
        let (_, pat) = personal_token_by(&admin, &id, &owner);
        Self {
            id,
            owner,
            pat,
            base: gw.url.clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {}", self.pat);
        send(&self.base, method, path, &[("Authorization", &auth)], body).await
    }

    /// A PATCH with `If-Match` of `version`.
    async fn patch(&self, path: &str, version: u64, body: &Value) -> Reply {
        let auth = format!("Bearer {}", self.pat);
        let tag = format!("\"{version}\"");
        let h = [("Authorization", auth.as_str()), ("If-Match", tag.as_str())];
        send(&self.base, "PATCH", path, &h, Some(body)).await
    }

    async fn connector(&self, scopes: &[&str]) -> String {
        let body = json!({
            "description": "Webhook partner",
            "acting_user_id": self.owner,
            "access_level": "handle",
            "scopes": scopes,
        });
        let r = self.call("POST", "/v1/connectors", Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        s(&r.body["id"]).to_owned()
    }

    /// A subscription of `con`: (its path, its signing secret).
    async fn subscribe(&self, con: &str, body: Value) -> (String, String) {
        let r = self
            .call(
                "POST",
                &format!("/v1/connectors/{con}/subscriptions"),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let path = r.headers["location"].to_str().unwrap().to_owned();
        (path, s(&r.body["signing_secret"]).to_owned())
    }

    /// Sends a test ping: the delivery's id (the `webhook-id`).
    async fn ping(&self, sub: &str) -> String {
        let r = self.call("POST", &format!("{sub}/ping"), None).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["status"], "pending");
        s(&r.body["id"]).to_owned()
    }

    async fn delivery(&self, sub: &str, id: &str) -> Value {
        let r = self
            .call("GET", &format!("{sub}/deliveries/{id}"), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// Waits (at most `secs`) until the delivery is no longer pending.
    async fn settled(&self, sub: &str, id: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let d = self.delivery(sub, id).await;
            if d["status"] != "pending" || Instant::now() > deadline {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn hook(url: &str, ca: Option<&str>, types: &[&str]) -> Value {
    json!({ "url": url, "ca_certificate_pem": ca, "event_types": types })
}

fn codes(d: &Value) -> Vec<Value> {
    d["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["status_code"].clone())
        .collect()
}

#[tokio::test]
async fn a_ping_arrives_signed_with_basic_auth_and_custom_headers() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[]).await;
    let mut body = hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]);
    body["basic_auth"] = json!({ "username": "koppel", "password": "pw-UNSEEN-5b1e" });
    body["headers"] = json!([
        { "name": "X-Api-Key", "value": "hdr-UNSEEN-0c7d", "hidden": true },
        { "name": "X-Tenant", "value": "tenant-7" },
    ]);
    let (sub, secret) = ws.subscribe(&con, body).await;
    let id = ws.ping(&sub).await;

    let got = rx.wait_for(1, 20).await;
    assert_eq!(got.len(), 1, "the receiver got the ping");
    let r = &got[0];
    assert_eq!(r.header("webhook-id"), Some(id.as_str()));
    verify_with_standardwebhooks(&secret, r).expect("standardwebhooks accepts the signature");
    assert!(verify_with_standardwebhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", r).is_err());
    let payload: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(payload["type"], "webhook.ping");
    assert!(payload["timestamp"].is_string());
    assert_eq!(
        payload["data"]["subscription_id"],
        sub.rsplit('/').next().unwrap()
    );
    assert!(
        r.header("user-agent")
            .unwrap()
            .starts_with("Koppel-Webhooks/")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    // "koppel:pw-UNSEEN-5b1e" in base64.
    assert_eq!(
        r.header("authorization"),
        Some("Basic a29wcGVsOnB3LVVOU0VFTi01YjFl")
    );
    assert_eq!(r.header("x-api-key"), Some("hdr-UNSEEN-0c7d"));
    assert_eq!(r.header("x-tenant"), Some("tenant-7"));

    let d = ws.settled(&sub, &id, 10).await;
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(codes(&d), [json!(200)]);
    assert_eq!(d["attempts"][0]["response_excerpt"], "answered 200");
    assert!(d["attempts"][0]["duration_ms"].is_u64());
    // No answer about the subscription or its deliveries shows a hidden value.
    for path in [
        sub.clone(),
        format!("{sub}/deliveries"),
        format!("{sub}/deliveries/{id}"),
        format!("/v1/connectors/{con}/subscriptions"),
    ] {
        let r = ws.call("GET", &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let text = r.body.to_string();
        assert!(!text.contains("UNSEEN"), "{path}: {text}");
        assert!(!text.contains(&secret[6..]), "{path}: {text}");
    }
    let list = ws
        .call("GET", &format!("{sub}/deliveries"), None)
        .await
        .body;
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["status"], "delivered");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_verify() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[]).await;
    let (sub, old) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let r = ws.call("POST", &format!("{sub}/rotate-secret"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new = s(&r.body["signing_secret"]).to_owned();
    ws.ping(&sub).await;
    let got = rx.wait_for(1, 20).await;
    assert_eq!(got.len(), 1);
    let sigs = got[0].header("webhook-signature").unwrap();
    assert_eq!(sigs.split(' ').count(), 2, "{sigs}");
    verify_with_standardwebhooks(&old, &got[0]).expect("the previous secret verifies");
    verify_with_standardwebhooks(&new, &got[0]).expect("the new secret verifies");
}

#[tokio::test]
async fn failures_are_retried_on_schedule_until_delivered() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[500, 500, 500]).await;
    let (sub, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let id = ws.ping(&sub).await;
    let d = ws.settled(&sub, &id, 40).await;
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(codes(&d), [json!(500), json!(500), json!(500), json!(200)]);
    assert_eq!(d["attempts"][0]["error_kind"], "http_status");
    assert_eq!(d["attempts"][0]["response_excerpt"], "answered 500");
    let got = rx.received();
    assert_eq!(got.len(), 4);
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == Some(id.as_str()))
    );

    // A replay is a new sequence of tries with the same webhook-id.
    let r = ws
        .call("POST", &format!("{sub}/deliveries/{id}/replay"), None)
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["sequence"], 2);
    let got = rx.wait_for(5, 20).await;
    assert_eq!(got.len(), 5);
    assert_eq!(got[4].header("webhook-id"), Some(id.as_str()));
    let d = ws.settled(&sub, &id, 10).await;
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"][4]["sequence"], 2);
    // An unknown delivery is a 404, a bad cursor a 422 naming it.
    let r = ws
        .call("POST", &format!("{sub}/deliveries/evt_nope/replay"), None)
        .await;
    r.assert_problem(404);
    let r = ws
        .call("GET", &format!("{sub}/deliveries?cursor=x&limit=0"), None)
        .await;
    r.assert_problem(422);
}

#[tokio::test]
async fn a_410_disables_the_subscription_until_it_is_enabled_again() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[410]).await;
    let (sub, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    // The connector's own alert subscription hears of it; another connector does not.
    let alerts = Receiver::start(&[]).await;
    let notice = hook(
        &alerts.url,
        Some(&alerts.ca_pem),
        &["webhook.subscription_disabled"],
    );
    ws.subscribe(&con, notice.clone()).await;
    let other = ws.connector(&["dsr:read"]).await;
    let elsewhere = Receiver::start(&[]).await;
    let mut other_notice = notice;
    other_notice["url"] = json!(elsewhere.url);
    other_notice["ca_certificate_pem"] = json!(elsewhere.ca_pem);
    ws.subscribe(&other, other_notice).await;
    let id = ws.ping(&sub).await;
    let d = ws.settled(&sub, &id, 20).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(codes(&d), [json!(410)]);
    let s1 = ws.call("GET", &sub, None).await.body;
    assert_eq!(s1["enabled"], false, "{s1}");
    assert!(s(&s1["disabled_reason"]).contains("410"));
    let got = alerts.wait_for(1, 30).await;
    assert_eq!(got.len(), 1);
    let p: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(p["type"], "webhook.subscription_disabled");
    assert_eq!(p["data"]["subscription_id"], s1["id"]);
    assert!(elsewhere.received().is_empty());
    ws.call("POST", &format!("{sub}/ping"), None)
        .await
        .assert_problem(409);
    let r = ws.call("POST", &format!("{sub}/enable"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["disabled_reason"], Value::Null);
    let id = ws.ping(&sub).await;
    let d = ws.settled(&sub, &id, 20).await;
    assert_eq!(d["status"], "delivered", "{d}");
}

#[tokio::test]
async fn a_subscription_failing_for_too_long_is_disabled() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[503; 40]).await;
    let (sub, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let id = ws.ping(&sub).await;
    let d = ws.settled(&sub, &id, 30).await;
    assert_eq!(d["final_reason"], "retries exhausted", "{d}");
    assert_eq!(codes(&d), vec![json!(503); 4]);
    assert_eq!(ws.call("GET", &sub, None).await.body["enabled"], true);
    // The streak began with the first try; the stack disables after 20 s of it.
    let first = s(&d["attempts"][0]["at"]).to_owned();
    let began = koppel_shared::time_util::parse_rfc3339(&first).unwrap();
    let wait = began + jiff::SignedDuration::from_secs(21) - jiff::Timestamp::now();
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
    let id = ws.ping(&sub).await;
    let d = ws.settled(&sub, &id, 30).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["final_reason"], "subscription disabled", "{d}");
    let s1 = ws.call("GET", &sub, None).await.body;
    assert_eq!(s1["enabled"], false, "{s1}");
    assert_eq!(
        s1["disabled_reason"],
        "deliveries kept failing for 20 seconds"
    );
}

#[tokio::test]
async fn the_registered_ca_is_trusted_and_required() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[]).await;
    let other = Receiver::start(&[]).await;
    // Without a CA the receiver's test certificate is not trusted (public roots only); with
    // another CA registered neither: the registered CA replaces the public roots.
    for ca in [None, Some(other.ca_pem.as_str())] {
        let (sub, _) = ws
            .subscribe(&con, hook(&rx.url, ca, &["dsr.created"]))
            .await;
        let id = ws.ping(&sub).await;
        let d = ws.settled(&sub, &id, 30).await;
        assert_eq!(d["status"], "failed", "{d}");
        assert_eq!(d["final_reason"], "retries exhausted");
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(
            attempts.len(),
            4,
            "the shortened schedule's four tries: {d}"
        );
        assert!(attempts.iter().all(|a| a["error_kind"] == "tls"), "{d}");
    }
    assert!(rx.received().is_empty(), "no request got through");
    let (sub, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let id = ws.ping(&sub).await;
    assert_eq!(ws.settled(&sub, &id, 20).await["status"], "delivered");
}

#[tokio::test]
async fn non_global_destinations_are_refused_before_connecting() {
    // A stack of the test's own with the loopback switch off, as in template.yaml; the
    // test stack allows loopback for its receivers.
    let gw = Gateway::own_stack(&[
        ("WebhookAllowLoopback", "false"),
        ("WebhookRetrySchedule", "1,1,1"),
    ])
    .await;
    let ws = Ws::on(&gw);
    let con = ws.connector(&["dsr:read"]).await;
    // A receiver that would take the request if it were sent: its CA is registered.
    let rx = Receiver::start(&[]).await;
    let port = rx
        .url
        .trim_start_matches("https://127.0.0.1:")
        .trim_end_matches("/hook");
    let loopback = [
        rx.url.clone(),
        format!("https://localhost:{port}/"),
        format!("https://[::1]:{port}/"),
        "https://127.1.2.3/hook".to_owned(),
    ];
    let others = [
        "https://10.0.0.1/hook",
        "https://172.16.0.1/hook",
        "https://192.168.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[::]/hook",
        "https://[fd00::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://224.0.0.1/hook",
        "https://[ff02::1]/hook",
    ];
    for url in loopback.iter().map(String::as_str).chain(others) {
        let (sub, _) = ws
            .subscribe(&con, hook(url, Some(&rx.ca_pem), &["dsr.created"]))
            .await;
        let id = ws.ping(&sub).await;
        let d = ws.settled(&sub, &id, 20).await;
        assert_eq!(d["status"], "failed", "{url}: {d}");
        assert_eq!(d["final_reason"], "destination refused", "{url}");
        assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{url}: {d}");
        assert_eq!(d["attempts"][0]["error_kind"], "refused", "{url}");
        assert_eq!(d["attempts"][0]["status_code"], Value::Null, "{url}");
    }
    assert!(rx.received().is_empty(), "nothing reached the receiver");
}

/// Creates a data-subject request through a connector of `ws` with `dsr:write`.
async fn create_dsr(ws: &Ws) -> Value {
    let (_, auth) = NewConnector::sample(&ws.id, &ws.owner)
        .description("dsr writer")
        .scopes(&["dsr:write", "dsr:read"])
        .with_token();
    let r = send(
        &base_url(),
        "POST",
        &format!("/v1/ws/{}/DataSubjectRequests", ws.id),
        &[("Authorization", &auth)],
        Some(&json!({ "purposes": ["Access"] })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[tokio::test]
async fn an_event_fans_out_once_to_the_subscriptions_allowed_to_see_it() {
    let ws = Ws::new();
    let reader = ws.connector(&["dsr:read"]).await;
    let blind = ws.connector(&["cases:read"]).await;
    let rx = Receiver::start(&[]).await;
    let rx_blind = Receiver::start(&[]).await;
    let (sub, secret) = ws
        .subscribe(&reader, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let (blind_sub, _) = ws
        .subscribe(
            &blind,
            hook(&rx_blind.url, Some(&rx_blind.ca_pem), &["dsr.created"]),
        )
        .await;
    let (other_type, _) = ws
        .subscribe(
            &reader,
            hook(&rx_blind.url, Some(&rx_blind.ca_pem), &["dsr.closed"]),
        )
        .await;
    let dsr = create_dsr(&ws).await;

    let got = rx.wait_for(1, 30).await;
    assert_eq!(got.len(), 1);
    verify_with_standardwebhooks(&secret, &got[0]).expect("signature verifies");
    let payload: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(payload["type"], "dsr.created");
    assert_eq!(payload["data"]["id"], dsr["id"]);
    let event_id = got[0].header("webhook-id").unwrap().to_owned();

    // The event again, as a second send by the outbox sweep would bring it: no new delivery.
    let ctx = koppel_shared::Ctx::from_env()
        .await
        .expect("KOPPEL_* settings");
    let again = json!({
        "id": event_id, "type": "dsr.created", "workspace_id": ws.id,
        "occurred_at": payload["timestamp"], "data": payload["data"],
    });
    ctx.sqs
        .send_message()
        .queue_url(&ctx.settings.events_queue_url)
        .message_body(again.to_string())
        .send()
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(rx.received().len(), 1, "delivered once per webhook-id");
    assert!(
        rx_blind.received().is_empty(),
        "no dsr:read, or another type: nothing"
    );
    for (path, n) in [(&sub, 1), (&blind_sub, 0), (&other_type, 0)] {
        let list = ws
            .call("GET", &format!("{path}/deliveries"), None)
            .await
            .body;
        assert_eq!(list["items"].as_array().unwrap().len(), n, "{path}: {list}");
    }
}

#[tokio::test]
async fn case_webhooks_follow_the_connectors_saved_search() {
    use koppel_e2e::cases::CaseWs;
    let ws = CaseWs::create();
    let open = ws.search(json!({"status": ["open"]}), &["subject"]).await;
    let partner = ws.connector(&ws.owner, Some(&open)).await;
    let rx = Receiver::start(&[]).await;
    let r = ws
        .call(
            "POST",
            &format!("/v1/connectors/{}/subscriptions", partner.id),
            Some(&hook(
                &rx.url,
                Some(&rx.ca_pem),
                &["case.created", "case.updated"],
            )),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = s(&r.body["signing_secret"]).to_owned();

    // Outside the search: never announced.
    ws.case(json!({"case_type": "t", "subject": "verborgen", "status": "suspended"}))
        .await;
    // Inside it, with fields outside its columns.
    let shown = ws
        .case(
            json!({"case_type": "t", "subject": "zichtbaar", "department": "Geheim",
                     "requester": {"bsn": "111222333"}}),
        )
        .await;
    let path = format!("/v1/cases/{shown}");
    let auth = format!("Bearer {}", ws.pat);
    // Only a hidden field changes first (nothing to tell this connector), then the subject.
    for (version, body) in [
        ("\"1\"", json!({"department": "Elders"})),
        ("\"2\"", json!({"subject": "nieuw"})),
    ] {
        let r = send(
            &base_url(),
            "PATCH",
            &path,
            &[("Authorization", &auth), ("If-Match", version)],
            Some(&body),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    rx.wait_for(2, 30).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = rx.received();
    let mut types: Vec<(String, Value)> = got
        .iter()
        .map(|g| {
            verify_with_standardwebhooks(&secret, g).expect("signature verifies");
            for hidden in ["verborgen", "Geheim", "Elders", "111222333", "department"] {
                assert!(!g.body.contains(hidden), "{hidden} leaked: {}", g.body);
            }
            let p: Value = serde_json::from_str(&g.body).unwrap();
            assert_eq!(p["data"]["case"]["id"], shown);
            (s(&p["type"]).to_owned(), p["data"].clone())
        })
        .collect();
    types.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = types.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["case.created", "case.updated"], "{got:?}");
    assert_eq!(types[1].1["changed"], json!(["subject"]));
    assert_eq!(types[1].1["case"]["subject"], "nieuw");
}

/// The problem's field names, sorted.
fn bad_fields(r: &Reply) -> Vec<String> {
    let mut f: Vec<String> = r.body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| s(&e["field"]).to_owned()).collect())
        .unwrap_or_default();
    f.sort();
    f
}

#[tokio::test]
async fn an_echoed_secret_straddling_the_excerpt_limit_is_cut_out_whole() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let secret = "hdr-UNSEEN-straddles-the-cut-4e1d";
    // The receiver echoes the hidden header after 1014 bytes: the value spans byte 1024,
    // where the recorded excerpt ends.
    let echo = Answer {
        echo: Some(("x-api-key".to_owned(), 1024 - 10)),
    };
    let rx = Receiver::start_with(&[], Cert::Issued, echo).await;
    let mut body = hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]);
    body["headers"] = json!([{ "name": "X-Api-Key", "value": secret, "hidden": true }]);
    let (sub, _) = ws.subscribe(&con, body).await;
    let id = ws.ping(&sub).await;
    let d = ws.settled(&sub, &id, 20).await;
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(rx.received()[0].header("x-api-key"), Some(secret));
    let excerpt = s(&d["attempts"][0]["response_excerpt"]);
    assert!(excerpt.len() <= 1024, "{}", excerpt.len());
    assert!(excerpt.starts_with("xxxx"), "{excerpt}");
    // Not even the secret's first part is kept.
    assert!(!excerpt.contains("hdr-"), "{excerpt}");
    assert!(excerpt.ends_with("[redacted]"), "{excerpt}");
    let text = ws
        .call("GET", &format!("{sub}/deliveries"), None)
        .await
        .body;
    assert!(!text.to_string().contains("hdr-UNSEEN"), "{text}");
}

#[tokio::test]
async fn a_subscription_moved_to_another_port_must_be_given_its_secrets_again() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let first = Receiver::start(&[]).await;
    // Same host (127.0.0.1), another port: another receiver.
    let moved = Receiver::start(&[]).await;
    let mut body = hook(&first.url, Some(&first.ca_pem), &["dsr.created"]);
    body["basic_auth"] = json!({ "username": "koppel", "password": "pw-UNSEEN-first" });
    body["headers"] = json!([
        { "name": "X-Api-Key", "value": "hdr-UNSEEN-first", "hidden": true },
        { "name": "X-Tenant", "value": "tenant-7" },
    ]);
    let (sub, _) = ws.subscribe(&con, body).await;

    // Another path on the same receiver keeps them.
    let same = json!({ "url": format!("{}/v2", first.url) });
    let r = ws.patch(&sub, 1, &same).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Another port (or scheme): refused, naming every secret to send again; nothing saved.
    let to_port = json!({ "url": moved.url, "ca_certificate_pem": moved.ca_pem });
    let r = ws.patch(&sub, 2, &to_port).await;
    r.assert_problem(422);
    assert_eq!(
        bad_fields(&r),
        ["basic_auth.password", "headers[0].value"],
        "{}",
        r.body
    );
    let stored = ws.call("GET", &sub, None).await.body;
    assert_eq!(stored["url"], format!("{}/v2", first.url), "{stored}");
    assert_eq!(stored["version"], 2);
    // Sending the hidden header again but not the password still names the password.
    let partly = json!({
        "url": moved.url, "ca_certificate_pem": moved.ca_pem,
        "headers": [
            { "name": "X-Api-Key", "value": "hdr-UNSEEN-moved", "hidden": true },
            { "name": "X-Tenant", "value": "tenant-7" },
        ],
    });
    let r = ws.patch(&sub, 2, &partly).await;
    r.assert_problem(422);
    assert_eq!(bad_fields(&r), ["basic_auth.password"], "{}", r.body);

    // With both sent again the move is saved, and only the new values reach the new port.
    let mut whole = partly.clone();
    whole["basic_auth"] = json!({ "username": "koppel", "password": "pw-UNSEEN-moved" });
    let r = ws.patch(&sub, 2, &whole).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = ws.ping(&sub).await;
    let got = moved.wait_for(1, 20).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-api-key"), Some("hdr-UNSEEN-moved"));
    // "koppel:pw-UNSEEN-moved" in base64.
    assert_eq!(
        got[0].header("authorization"),
        Some("Basic a29wcGVsOnB3LVVOU0VFTi1tb3ZlZA==")
    );
    assert_eq!(ws.settled(&sub, &id, 10).await["status"], "delivered");
    assert!(first.received().is_empty());
}

#[tokio::test]
async fn a_replay_sends_only_what_the_saved_search_shows_now() {
    use koppel_e2e::cases::CaseWs;
    let ws = CaseWs::create();
    let search = ws.search(json!({}), &["subject", "requester.name"]).await;
    let partner = ws.connector(&ws.owner, Some(&search)).await;
    let rx = Receiver::start(&[]).await;
    let r = ws
        .call(
            "POST",
            &format!("/v1/connectors/{}/subscriptions", partner.id),
            Some(&hook(&rx.url, Some(&rx.ca_pem), &["case.created"])),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = s(&r.body["signing_secret"]).to_owned();
    let sub = r.headers["location"].to_str().unwrap().to_owned();
    let id = ws
        .case(
            json!({"case_type": "t", "subject": "aanvraag", "requester": {"name": "Jansen-NAAM"}}),
        )
        .await;
    let got = rx.wait_for(1, 30).await;
    assert_eq!(got.len(), 1);
    let first: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(first["data"]["case"]["requester"]["name"], "Jansen-NAAM");
    let delivery = got[0].header("webhook-id").unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ws
        .call("GET", &format!("{sub}/deliveries/{delivery}"), None)
        .await
        .body["status"]
        == "pending"
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The saved search drops the requester's name; then the delivery is replayed.
    let auth = format!("Bearer {}", ws.pat);
    let r = send(
        &base_url(),
        "PATCH",
        &format!("/v1/saved-searches/{search}"),
        &[("Authorization", &auth), ("If-Match", "\"1\"")],
        Some(&json!({"columns": ["subject"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = ws
        .call("POST", &format!("{sub}/deliveries/{delivery}/replay"), None)
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let got = rx.wait_for(2, 30).await;
    assert_eq!(got.len(), 2, "the replay arrived");
    let again = &got[1];
    assert_eq!(again.header("webhook-id"), Some(delivery.as_str()));
    verify_with_standardwebhooks(&secret, again).expect("the cut body is what was signed");
    assert!(!again.body.contains("Jansen-NAAM"), "{}", again.body);
    let p: Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(p["data"]["case"]["id"], id);
    assert_eq!(p["data"]["case"]["subject"], "aanvraag");
    assert_eq!(p["data"]["case"].get("requester"), None, "{p}");
    // The delivery log keeps the body as sent: no longer the name either.
    let d = ws
        .call("GET", &format!("{sub}/deliveries/{delivery}"), None)
        .await
        .body;
    assert!(!d.to_string().contains("Jansen-NAAM"), "{d}");

    // A search that no longer shows the case at all: the replay is not sent.
    let r = send(
        &base_url(),
        "PATCH",
        &format!("/v1/saved-searches/{search}"),
        &[("Authorization", &auth), ("If-Match", "\"2\"")],
        Some(&json!({"filters": {"status": ["closed"]}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut r = ws
        .call("POST", &format!("{sub}/deliveries/{delivery}/replay"), None)
        .await;
    // The previous replay may still be closing.
    while r.status == 409 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        r = ws
            .call("POST", &format!("{sub}/deliveries/{delivery}/replay"), None)
            .await;
    }
    assert_eq!(r.status, 202, "{}", r.body);
    let mut d = r.body;
    while d["status"] == "pending" && Instant::now() < deadline + Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        d = ws
            .call("GET", &format!("{sub}/deliveries/{delivery}"), None)
            .await
            .body;
    }
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(
        d["final_reason"],
        "the case is no longer visible to the connector"
    );
    assert_eq!(rx.received().len(), 2, "nothing more was sent");
}

#[tokio::test]
async fn a_self_signed_receiver_certificate_is_trusted_as_registered() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    // As `openssl req -x509 -subj /CN=127.0.0.1` makes it: CA:TRUE, the server's own.
    let rx = Receiver::start_with(&[], Cert::SelfSigned, Answer::default()).await;
    let (sub, secret) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let id = ws.ping(&sub).await;
    let d = ws.settled(&sub, &id, 20).await;
    assert_eq!(d["status"], "delivered", "{d}");
    let got = rx.received();
    assert_eq!(got.len(), 1);
    verify_with_standardwebhooks(&secret, &got[0]).expect("signature verifies");

    // The pin is for exactly that certificate and the name it carries: another
    // self-signed certificate, or the same one under another host name, is not trusted.
    let other = Receiver::start_with(&[], Cert::SelfSigned, Answer::default()).await;
    let port = rx
        .url
        .trim_start_matches("https://127.0.0.1:")
        .trim_end_matches("/hook");
    for (url, pem) in [
        (rx.url.clone(), other.ca_pem.as_str()),
        (format!("https://localhost:{port}/hook"), rx.ca_pem.as_str()),
    ] {
        let (sub, _) = ws
            .subscribe(&con, hook(&url, Some(pem), &["dsr.created"]))
            .await;
        let id = ws.ping(&sub).await;
        let d = ws.settled(&sub, &id, 30).await;
        assert_eq!(d["status"], "failed", "{url}: {d}");
        let attempts = d["attempts"].as_array().unwrap();
        assert!(attempts.iter().all(|a| a["error_kind"] == "tls"), "{d}");
    }
    assert_eq!(rx.received().len(), 1, "no untrusted request got through");
}

/// A subscription's deliveries are paged like every list: newest first, each once with
/// `limit=1`; another subscription's cursor does not continue this one's list.
#[tokio::test]
async fn deliveries_are_paged_with_an_opaque_cursor() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[]).await;
    let (sub, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let (other, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(ws.ping(&sub).await);
        ws.ping(&other).await;
    }
    ids.reverse();
    let auth = format!("Bearer {}", ws.pat);
    for limit in [1, 2, 100] {
        let got = all_pages(&auth, &format!("{sub}/deliveries?limit={limit}"), limit, 10).await;
        let seen: Vec<&str> = got.iter().map(|d| s(&d["id"])).collect();
        assert_eq!(seen, ids, "limit={limit}");
    }
    let theirs = ws
        .call("GET", &format!("{other}/deliveries?limit=1"), None)
        .await;
    let theirs = s(&theirs.body["next_cursor"]).to_owned();
    assert_paging_refuses(&auth, &format!("{sub}/deliveries"), &[&theirs]).await;
}

/// A connector's own credential holding `webhooks:manage`: its own subscriptions only.
struct Partner {
    base: String,
    auth: String,
}

impl Partner {
    fn token(ws: &Ws, con: &str) -> Self {
        let (_, token) = NewCredential::token(&ws.id, con).secret();
        Self {
            base: ws.base.clone(),
            auth: format!("Bearer {token}"),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let h = [("Authorization", self.auth.as_str())];
        send(&self.base, method, path, &h, body).await
    }
}

#[tokio::test]
async fn a_connector_manages_its_own_webhooks_and_no_one_elses() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read", "webhooks:manage"]).await;
    let other = ws.connector(&["dsr:read", "webhooks:manage"]).await;
    let unscoped = ws.connector(&["dsr:read"]).await;
    let rx = Receiver::start(&[]).await;
    let (theirs, _) = ws
        .subscribe(&other, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let app = Partner::token(&ws, &con);

    let mine = format!("/v1/connectors/{con}/subscriptions");
    let created = app
        .call(
            "POST",
            &mine,
            Some(&hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"])),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let sub = created.headers["location"].to_str().unwrap().to_owned();
    let secret = s(&created.body["signing_secret"]).to_owned();
    assert!(secret.starts_with("whsec_"));
    let list = app.call("GET", &mine, None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    // Change, rotate, ping, read the delivery, replay it, enable: all on its own.
    let h = [("Authorization", app.auth.as_str()), ("If-Match", "\"1\"")];
    let body = json!({ "event_types": ["dsr.created", "dsr.closed"] });
    let changed = send(&app.base, "PATCH", &sub, &h, Some(&body)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let rotated = app
        .call("POST", &format!("{sub}/rotate-secret"), None)
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let newer = s(&rotated.body["signing_secret"]).to_owned();
    let ping = app.call("POST", &format!("{sub}/ping"), None).await;
    assert_eq!(ping.status, 202, "{}", ping.body);
    let id = s(&ping.body["id"]).to_owned();
    let got = rx.wait_for(1, 20).await;
    assert_eq!(got.len(), 1);
    verify_with_standardwebhooks(&newer, &got[0]).expect("signed with the new secret");
    let deadline = Instant::now() + Duration::from_secs(20);
    let d = loop {
        let d = app
            .call("GET", &format!("{sub}/deliveries/{id}"), None)
            .await;
        assert_eq!(d.status, 200, "{}", d.body);
        if d.body["status"] != "pending" || Instant::now() > deadline {
            break d.body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(d["status"], "delivered", "{d}");
    let listed = app.call("GET", &format!("{sub}/deliveries"), None).await;
    assert_eq!(
        listed.body["items"][0]["id"],
        id.as_str(),
        "{}",
        listed.body
    );
    let replayed = app
        .call("POST", &format!("{sub}/deliveries/{id}/replay"), None)
        .await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    let enabled = app.call("POST", &format!("{sub}/enable"), None).await;
    assert_eq!(enabled.status, 200, "{}", enabled.body);

    // The organisation still sees and manages what the partner made.
    let seen = ws.call("GET", &sub, None).await;
    assert_eq!(seen.status, 200, "{}", seen.body);

    // Another connector's subscriptions are unknown to it, whatever the route.
    let foreign = format!("/v1/connectors/{other}/subscriptions");
    for (method, path) in [
        ("GET", foreign.clone()),
        ("POST", foreign.clone()),
        ("GET", theirs.clone()),
        ("DELETE", theirs.clone()),
        ("POST", format!("{theirs}/ping")),
        ("POST", format!("{theirs}/rotate-secret")),
        ("GET", format!("{theirs}/deliveries")),
    ] {
        let body = (method == "POST").then(|| hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]));
        let r = app.call(method, &path, body.as_ref()).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    assert_eq!(ws.call("GET", &theirs, None).await.status, 200);
    // The connector itself stays the organisation's to administer.
    app.call("GET", &format!("/v1/connectors/{con}"), None)
        .await
        .assert_problem(403);
    // A credential narrowed to `webhooks:manage` routes no data it may not read itself:
    // it cannot subscribe to what it cannot see, nor see a subscription that carries it.
    let (_, narrow) = NewCredential::token(&ws.id, &con)
        .scope("webhooks:manage")
        .secret();
    let narrow = Partner {
        base: ws.base.clone(),
        auth: format!("Bearer {narrow}"),
    };
    let r = narrow
        .call(
            "POST",
            &mine,
            Some(&hook(
                &rx.url,
                Some(&rx.ca_pem),
                &["webhook.subscription_disabled", "dsr.created"],
            )),
        )
        .await;
    assert_eq!(problem_fields(&r), ["event_types[1]"], "{}", r.body);
    let (org_made, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    assert_eq!(narrow.call("GET", &org_made, None).await.status, 404);
    let listed = narrow.call("GET", &mine, None).await;
    assert!(
        !listed
            .body
            .to_string()
            .contains(&org_made[org_made.rfind('/').unwrap() + 1..])
    );
    let notices = narrow
        .call(
            "POST",
            &mine,
            Some(&hook(
                &rx.url,
                Some(&rx.ca_pem),
                &["webhook.subscription_disabled"],
            )),
        )
        .await;
    assert_eq!(notices.status, 201, "{}", notices.body);
    assert_eq!(ws.call("DELETE", &org_made, None).await.status, 204);

    // Without `webhooks:manage`, not even its own.
    let plain = Partner::token(&ws, &unscoped);
    plain
        .call(
            "GET",
            &format!("/v1/connectors/{unscoped}/subscriptions"),
            None,
        )
        .await
        .assert_problem(403);

    let gone = app.call("DELETE", &sub, None).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
}

#[tokio::test]
async fn deliveries_are_filtered_and_what_failed_is_replayed_on_enable() {
    let ws = Ws::new();
    let con = ws.connector(&["dsr:read"]).await;
    // Each ping is tried four times (retries after 1 s) and fails; then the receiver heals.
    let rx = Receiver::start(&[500; 8]).await;
    let (sub, _) = ws
        .subscribe(&con, hook(&rx.url, Some(&rx.ca_pem), &["dsr.created"]))
        .await;
    let first = ws.ping(&sub).await;
    assert_eq!(ws.settled(&sub, &first, 30).await["status"], "failed");
    let second = ws.ping(&sub).await;
    let d = ws.settled(&sub, &second, 30).await;
    assert_eq!(d["status"], "failed", "{d}");
    let since = s(&d["created_at"]).to_owned();

    let ids = |r: &Reply| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| s(&d["id"]).to_owned())
            .collect()
    };
    let ws = &ws;
    let list = |q: &str| {
        let path = format!("{sub}/deliveries?{q}");
        async move { ws.call("GET", &path, None).await }
    };
    assert_eq!(
        ids(&list("status=failed").await),
        [second.as_str(), first.as_str()]
    );
    assert!(ids(&list("status=delivered").await).is_empty());
    assert_eq!(ids(&list("event_type=webhook.ping").await).len(), 2);
    assert!(ids(&list("event_type=dsr.created").await).is_empty());
    // A filtered list pages like any other, and its cursor serves that filter only.
    let page = list("status=failed&limit=1").await;
    assert_eq!(ids(&page), [second.as_str()]);
    let cursor = s(&page.body["next_cursor"]).replace('#', "%23");
    let next = list(&format!("status=failed&limit=1&cursor={cursor}")).await;
    assert_eq!(ids(&next), [first.as_str()]);
    list(&format!("status=delivered&limit=1&cursor={cursor}"))
        .await
        .assert_problem(422);
    for (q, field) in [
        ("status=broken", "status"),
        ("event_type=case.nope", "event_type"),
    ] {
        let r = list(q).await;
        assert_eq!(problem_fields(&r), [field], "{q}: {}", r.body);
    }

    let enable = |q: String| {
        let path = format!("{sub}/enable{q}");
        async move { ws.call("POST", &path, None).await }
    };
    for bad in ["yesterday", "2999-01-01T00:00:00Z"] {
        let r = enable(format!("?replay_failed_since={bad}")).await;
        assert_eq!(problem_fields(&r), ["replay_failed_since"], "{}", r.body);
    }
    let r = enable(format!(
        "?replay_failed_since={}",
        since.replace('+', "%2B")
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["replayed"], 1,
        "only what failed since then: {}",
        r.body
    );
    let again = ws.settled(&sub, &second, 20).await;
    assert_eq!(again["status"], "delivered", "{again}");
    assert_eq!(again["sequence"], 2);
    assert_eq!(ws.delivery(&sub, &first).await["status"], "failed");
}
