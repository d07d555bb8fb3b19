//! Connectors and webhook subscriptions end to end: a workspace owner with
//! `manage_connectors` administers them with a personal access token; `ETag`/`If-Match`
//! keep concurrent changes apart; disabling or deleting a connector makes its credentials
//! fail on the next request; hidden values never come back and are not plain at rest;
//! another workspace's ids are 404 on every route.

use aws_sdk_dynamodb::types::AttributeValue;
use koppel_e2e::stack::Gateway;
use koppel_e2e::*;
use koppel_shared::store::Key;
use koppel_shared::webhook::Subscription;
use koppel_shared::{Ctx, crypto};
use serde_json::{Value, json};

const CA_PEM: &str = include_str!("../../functions/connectors/testdata/ca.pem");

/// A fresh workspace with its owner's personal access token.
struct Ws {
    id: String,
    owner: String,
    pat: String,
}

impl Ws {
    fn new() -> Self {
        let (id, owner) = new_workspace("Connectors test");
        let (_, pat) = personal_token(&id, &owner);
        Self { id, owner, pat }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.call_with(method, path, &[], body).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let auth = format!("Bearer {}", self.pat);
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        send(&base_url(), method, path, &all, body).await
    }

    fn profile(&self) -> Value {
        json!({
            "description": "Zaakportaal",
            "acting_user_id": self.owner,
            "access_level": "handle",
            "scopes": ["cases:read", "dsr:read"],
            "ip_allow_list": ["192.0.2.0/24", "2001:db8::/32"],
            "rate_limit": 120,
        })
    }

    /// A connector made through the API: its id.
    async fn connector(&self) -> String {
        let r = self
            .call("POST", "/v1/connectors", Some(&self.profile()))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        s(&r.body["id"]).to_owned()
    }
}

fn subscription_body() -> Value {
    json!({
        "url": "https://hooks.partner.example/koppel",
        "ca_certificate_pem": CA_PEM,
        "event_types": ["case.created", "case.updated"],
        "basic_auth": { "username": "koppel", "password": "pw-UNSEEN-7f3a" },
        "headers": [
            { "name": "X-Api-Key", "value": "hdr-UNSEEN-91c2", "hidden": true },
            { "name": "X-Tenant", "value": "tenant-1" },
        ],
    })
}

fn fields(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| s(&e["field"]).to_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn connector_lifecycle_with_etags() {
    let ws = Ws::new();
    let r = ws.call("POST", "/v1/connectors", Some(&ws.profile())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = s(&r.body["id"]).to_owned();
    assert_eq!(r.headers["location"], format!("/v1/connectors/{id}"));
    assert_eq!(r.headers["etag"], "\"1\"");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["scopes"], json!(["cases:read", "dsr:read"]));

    let path = format!("/v1/connectors/{id}");
    let got = ws.call("GET", &path, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["etag"], "\"1\"");
    let list = ws.call("GET", "/v1/connectors", None).await;
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str())
    );

    let change = json!({ "description": "Zaakportaal v2", "rate_limit": null });
    ws.call("PATCH", &path, Some(&change))
        .await
        .assert_problem(428);
    let r = ws
        .call_with("PATCH", &path, &[("If-Match", "\"1\"")], Some(&change))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["etag"], "\"2\"");
    assert_eq!(r.body["description"], "Zaakportaal v2");
    assert_eq!(r.body["rate_limit"], Value::Null);
    // The version it was read at is gone: 412, and nothing changed.
    let stale = json!({ "description": "lost update" });
    ws.call_with("PATCH", &path, &[("If-Match", "\"1\"")], Some(&stale))
        .await
        .assert_problem(412);
    assert_eq!(
        ws.call("GET", &path, None).await.body["description"],
        "Zaakportaal v2"
    );

    // JWT issuer with a public key; a private or symmetric key is refused by name.
    let (_, public) = koppel_jwk();
    let iss = format!("https://{}.partner.example", uuid::Uuid::new_v4().simple());
    let r = ws
        .call_with(
            "PATCH",
            &path,
            &[("If-Match", "\"2\"")],
            Some(&json!({ "jwt": { "issuer": iss, "keys": [public] } })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["jwt"]["issuer"], iss.as_str());
    let bad = json!({ "jwt": { "issuer": iss, "keys": [
        { "kty": "oct", "k": "c2VjcmV0", "kid": "s" },
        { "kty": "EC", "crv": "P-256", "kid": "p", "d": "AAAA", "x": "AAAA", "y": "AAAA" },
    ] } });
    let r = ws
        .call_with("PATCH", &path, &[("If-Match", "\"3\"")], Some(&bad))
        .await;
    r.assert_problem(422);
    assert_eq!(fields(&r), ["jwt.keys[0]", "jwt.keys[1]"]);
    assert!(r.body.to_string().contains("symmetric"));
    assert!(r.body.to_string().contains("private"));
    // Another connector cannot take the issuer.
    let other = ws.connector().await;
    let r = ws
        .call_with(
            "PATCH",
            &format!("/v1/connectors/{other}"),
            &[("If-Match", "\"1\"")],
            Some(&json!({ "jwt": { "issuer": iss } })),
        )
        .await;
    r.assert_problem(409);

    // Deleting frees the issuer.
    let r = ws.call("DELETE", &path, None).await;
    assert_eq!(r.status, 204);
    ws.call("GET", &path, None).await.assert_problem(404);
    let r = ws
        .call_with(
            "PATCH",
            &format!("/v1/connectors/{other}"),
            &[("If-Match", "\"1\"")],
            Some(&json!({ "jwt": { "issuer": iss } })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A public JWK (and its unused private PEM) from the admin CLI's key generator.
fn koppel_jwk() -> (String, Value) {
    let (pem, jwk) = {
        use p256::elliptic_curve::rand_core::OsRng;
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p256::SecretKey::random(&mut OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = "k1".into();
        jwk["alg"] = "ES256".into();
        (pem, jwk)
    };
    (pem, jwk)
}

#[tokio::test]
async fn every_bad_field_is_listed_once() {
    let ws = Ws::new();
    let r = ws
        .call(
            "POST",
            "/v1/connectors",
            Some(&json!({
                "description": " ",
                "acting_user_id": "usr_nobody",
                "access_level": "admin",
                "scopes": ["cases:read", "cases:delete"],
                "ip_allow_list": ["10.0.0.0/8", "10.0.0.0/33", "example.org"],
                "rate_limit": 0,
                "colour": "red",
            })),
        )
        .await;
    r.assert_problem(422);
    let mut f = fields(&r);
    f.sort();
    assert_eq!(
        f,
        [
            "access_level",
            "acting_user_id",
            "colour",
            "description",
            "ip_allow_list[1]",
            "ip_allow_list[2]",
            "rate_limit",
            "scopes[1]"
        ]
    );
    let r = ws
        .call_with(
            "POST",
            "/v1/connectors",
            &[("Content-Type", "text/plain")],
            Some(&ws.profile()),
        )
        .await;
    r.assert_problem(415);
    let big = json!({ "description": "x".repeat(1024 * 1024 + 1) });
    ws.call("POST", "/v1/connectors", Some(&big))
        .await
        .assert_problem(413);
    assert!(
        ws.call("GET", "/v1/connectors", None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn concurrent_updates_one_wins_the_other_412() {
    let ws = Ws::new();
    let id = ws.connector().await;
    let path = format!("/v1/connectors/{id}");
    for round in 1..=3u64 {
        let tag = format!("\"{round}\"");
        let a = json!({ "description": format!("A{round}") });
        let b = json!({ "description": format!("B{round}") });
        let if_match = [("If-Match", tag.as_str())];
        let (ra, rb) = tokio::join!(
            ws.call_with("PATCH", &path, &if_match, Some(&a)),
            ws.call_with("PATCH", &path, &if_match, Some(&b)),
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 412], "{} / {}", ra.body, rb.body);
        let winner = if ra.status == 200 { &ra } else { &rb };
        let now = ws.call("GET", &path, None).await;
        assert_eq!(now.body["description"], winner.body["description"]);
        assert_eq!(now.body["version"], round + 1);
    }
}

#[tokio::test]
async fn disabling_or_deleting_a_connector_kills_its_credentials_at_once() {
    let ws = Ws::new();
    let id = ws.connector().await;
    let path = format!("/v1/connectors/{id}");
    // No allow-list, so the local gateway's loopback address is let in.
    let r = ws
        .call_with(
            "PATCH",
            &path,
            &[("If-Match", "\"1\"")],
            Some(&json!({ "ip_allow_list": [] })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, key) = NewCredential::key(&ws.id, &id).secret();
    let (_, token) = NewCredential::token(&ws.id, &id).secret();
    let bearer = format!("Bearer {token}");
    let with_key = [("API-Interface-Id", id.as_str()), ("API-Key", &key)];
    let with_token = [("Authorization", bearer.as_str())];
    assert_eq!(me(&with_key).await.status, 200);
    assert_eq!(me(&with_token).await.status, 200);

    let r = ws.call("POST", &format!("{path}/disable"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["enabled"], false);
    me(&with_key).await.assert_problem(403);
    me(&with_token).await.assert_problem(403);

    let r = ws.call("POST", &format!("{path}/enable"), None).await;
    assert_eq!(r.body["enabled"], true);
    assert_eq!(me(&with_key).await.status, 200);

    // A connector's own credential cannot manage connectors.
    let r = send(&base_url(), "GET", "/v1/connectors", &with_key, None).await;
    r.assert_problem(403);

    assert_eq!(ws.call("DELETE", &path, None).await.status, 204);
    me(&with_key).await.assert_problem(401);
    me(&with_token).await.assert_problem(401);
}

#[tokio::test]
async fn users_without_manage_connectors_are_refused() {
    let ws = Ws::new();
    let u = NewUser::sample(&ws.id).name("R").api_access(true).id();
    let (_, pat) = NewCredential::pat(&ws.id, &u).secret();
    let auth = format!("Bearer {pat}");
    let r = send(
        &base_url(),
        "GET",
        "/v1/connectors",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    r.assert_problem(403);
}

async fn raw_item(ws: &str, con: &str, sub: &str) -> String {
    let ctx = Ctx::from_env().await.expect("KOPPEL_* settings");
    let key = Key::subscription(ws, con, sub);
    let out = ctx
        .store
        .client()
        .get_item()
        .table_name(ctx.store.table())
        .key("pk", AttributeValue::S(key.pk))
        .key("sk", AttributeValue::S(key.sk))
        .send()
        .await
        .expect("get item");
    format!("{:?}", out.item.expect("the subscription is stored"))
}

async fn reveal(ws: &str, con: &str, sub: &str) -> koppel_shared::webhook::Revealed {
    let ctx = Ctx::from_env().await.expect("KOPPEL_* settings");
    let stored: koppel_shared::webhook::Subscription = ctx
        .store
        .get(&Key::subscription(ws, con, sub))
        .await
        .unwrap()
        .unwrap();
    koppel_shared::webhook::reveal(&ctx.data_key, &stored, jiff::Timestamp::now())
        .await
        .expect("the dispatcher can open what was sealed")
}

#[tokio::test]
async fn subscription_secrets_are_shown_once_and_sealed_at_rest() {
    let ws = Ws::new();
    let con = ws.connector().await;
    let base = format!("/v1/connectors/{con}/subscriptions");
    let r = ws.call("POST", &base, Some(&subscription_body())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let sub = s(&r.body["id"]).to_owned();
    let secret = s(&r.body["signing_secret"]).to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        r.body["basic_auth"],
        json!({ "username": "koppel", "password_set": true })
    );
    assert_eq!(
        r.body["headers"],
        json!([
            { "name": "X-Api-Key", "hidden": true, "value_set": true },
            { "name": "X-Tenant", "hidden": false, "value": "tenant-1" },
        ])
    );
    let path = format!("{base}/{sub}");
    assert_eq!(r.headers["location"], path.as_str());

    let hidden = ["pw-UNSEEN-7f3a", "hdr-UNSEEN-91c2"];
    let create_text = r.body.to_string();
    assert!(hidden.iter().all(|h| !create_text.contains(h)));
    for reply in [
        ws.call("GET", &path, None).await,
        ws.call("GET", &base, None).await,
    ] {
        assert_eq!(reply.status, 200);
        let text = reply.body.to_string();
        assert!(
            !text.contains(&secret),
            "signing secret shown again: {text}"
        );
        assert!(hidden.iter().all(|h| !text.contains(h)), "{text}");
    }

    // At rest: none of the secrets in the clear; the dispatcher gets them back.
    let raw = raw_item(&ws.id, &con, &sub).await;
    assert!(!raw.contains(&secret[6..]), "{raw}");
    assert!(hidden.iter().all(|h| !raw.contains(h)), "{raw}");
    assert!(raw.contains("kdk1."));
    let open = reveal(&ws.id, &con, &sub).await;
    assert_eq!(open.basic, Some(("koppel".into(), "pw-UNSEEN-7f3a".into())));
    assert_eq!(
        open.headers,
        [
            ("X-Api-Key".to_owned(), "hdr-UNSEEN-91c2".to_owned()),
            ("X-Tenant".to_owned(), "tenant-1".to_owned()),
        ]
    );
    assert_eq!(open.signing_secrets, std::slice::from_ref(&secret));

    // An update that leaves the hidden values out keeps them.
    let change = json!({
        "basic_auth": { "username": "koppel2" },
        "headers": [ { "name": "X-Api-Key", "hidden": true } ],
        "enabled": false,
    });
    ws.call("PATCH", &path, Some(&change))
        .await
        .assert_problem(428);
    let r = ws
        .call_with("PATCH", &path, &[("If-Match", "\"1\"")], Some(&change))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["etag"], "\"2\"");
    assert_eq!(r.body["enabled"], false);
    let open = reveal(&ws.id, &con, &sub).await;
    assert_eq!(
        open.basic,
        Some(("koppel2".into(), "pw-UNSEEN-7f3a".into()))
    );
    assert_eq!(
        open.headers,
        [("X-Api-Key".to_owned(), "hdr-UNSEEN-91c2".to_owned())]
    );

    // Rotation: a new secret, shown once; the previous one keeps signing for 24 h.
    let r = ws
        .call("POST", &format!("{path}/rotate-secret"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let next = s(&r.body["signing_secret"]).to_owned();
    assert!(next.starts_with("whsec_") && next != secret);
    let keys = r.body["signing_secrets"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["expires_at"], Value::Null);
    assert!(keys[1]["expires_at"].is_string());
    let open = reveal(&ws.id, &con, &sub).await;
    assert_eq!(open.signing_secrets, [next.clone(), secret.clone()]);
    let text = ws.call("GET", &path, None).await.body.to_string();
    assert!(!text.contains(&next) && !text.contains(&secret));

    // Deleting the connector takes its subscriptions along.
    assert_eq!(
        ws.call("DELETE", &format!("/v1/connectors/{con}"), None)
            .await
            .status,
        204
    );
    let ctx = Ctx::from_env().await.unwrap();
    let gone: Option<koppel_shared::webhook::Subscription> = ctx
        .store
        .get(&Key::subscription(&ws.id, &con, &sub))
        .await
        .unwrap();
    assert!(gone.is_none());
}

#[tokio::test]
async fn subscription_input_is_checked_field_by_field() {
    let ws = Ws::new();
    let con = ws.connector().await;
    let base = format!("/v1/connectors/{con}/subscriptions");
    let r = ws
        .call(
            "POST",
            &base,
            Some(&json!({
                "url": "http://hooks.partner.example/koppel",
                "ca_certificate_pem": "not a certificate",
                "event_types": ["case.created", "case.exploded"],
                "basic_auth": { "username": "a:b", "password": "pw" },
                "headers": [
                    { "name": "Host", "value": "evil.example" },
                    { "name": "Authorization", "value": "Bearer x" },
                    { "name": "Webhook-Signature", "value": "v1,forged" },
                    { "name": "X-Secret", "hidden": true },
                ],
            })),
        )
        .await;
    r.assert_problem(422);
    assert_eq!(
        fields(&r),
        [
            "url",
            "ca_certificate_pem",
            "event_types[1]",
            "basic_auth.username",
            "headers[0].name",
            "headers[1].name",
            "headers[2].name",
            "headers[3].value",
        ]
    );
    // One at a time, the seed's two rules: https only, and a CA that is a certificate.
    let mut body = subscription_body();
    body["url"] = "http://hooks.partner.example/".into();
    let r = ws.call("POST", &base, Some(&body)).await;
    r.assert_problem(422);
    assert_eq!(fields(&r), ["url"]);
    let mut body = subscription_body();
    body["ca_certificate_pem"] =
        "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n".into();
    let r = ws.call("POST", &base, Some(&body)).await;
    r.assert_problem(422);
    assert_eq!(fields(&r), ["ca_certificate_pem"]);
    // Nothing was stored by the refused requests.
    assert!(
        ws.call("GET", &base, None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Authorization is fine without Basic credentials.
    let mut body = subscription_body();
    body.as_object_mut().unwrap().remove("basic_auth");
    body["headers"] = json!([{ "name": "Authorization", "value": "Bearer x", "hidden": true }]);
    let r = ws.call("POST", &base, Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let types = ws.call("GET", "/v1/webhook-event-types", None).await;
    assert!(
        types.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "case.created")
    );
}

#[tokio::test]
async fn another_workspaces_ids_are_404_on_every_route() {
    let a = Ws::new();
    let b = Ws::new();
    let con = a.connector().await;
    let r = a
        .call(
            "POST",
            &format!("/v1/connectors/{con}/subscriptions"),
            Some(&subscription_body()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sub = s(&r.body["id"]).to_owned();
    let c = format!("/v1/connectors/{con}");
    let su = format!("{c}/subscriptions/{sub}");
    let patch = json!({ "description": "hijack" });
    let sub_patch = json!({ "url": "https://evil.example/" });
    let m1 = [("If-Match", "\"1\"")];
    let new_sub = subscription_body();
    let routes: Vec<(&str, String, Option<&Value>)> = vec![
        ("GET", c.clone(), None),
        ("PATCH", c.clone(), Some(&patch)),
        ("POST", format!("{c}/disable"), None),
        ("POST", format!("{c}/enable"), None),
        ("GET", format!("{c}/subscriptions"), None),
        ("POST", format!("{c}/subscriptions"), Some(&new_sub)),
        ("GET", su.clone(), None),
        ("PATCH", su.clone(), Some(&sub_patch)),
        ("POST", format!("{su}/rotate-secret"), None),
        ("POST", format!("{su}/enable"), None),
        ("POST", format!("{su}/ping"), None),
        ("GET", format!("{su}/deliveries"), None),
        (
            "GET",
            format!("{su}/deliveries/evt_0196b4a1c2d37e8f9a0b1c2d3e4f5a6b"),
            None,
        ),
        (
            "POST",
            format!("{su}/deliveries/evt_0196b4a1c2d37e8f9a0b1c2d3e4f5a6b/replay"),
            None,
        ),
        ("DELETE", su.clone(), None),
        ("DELETE", c.clone(), None),
    ];
    for (method, path, body) in &routes {
        let r = b.call_with(method, path, &m1, *body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        r.assert_problem(404);
    }
    // A's connector and subscription are untouched.
    let got = a.call("GET", &c, None).await;
    assert_eq!(got.body["version"], 1);
    assert_eq!(got.body["enabled"], true);
    assert_eq!(a.call("GET", &su, None).await.body["version"], 1);
    assert!(
        b.call("GET", "/v1/connectors", None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sealed_values_still_open_after_a_data_key_rotation() {
    let ws = Ws::new();
    let con = ws.connector().await;
    let r = ws
        .call(
            "POST",
            &format!("/v1/connectors/{con}/subscriptions"),
            Some(&subscription_body()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sub = s(&r.body["id"]).to_owned();
    let secret = s(&r.body["signing_secret"]).to_owned();

    let ctx = Ctx::from_env().await.expect("KOPPEL_* settings");
    let before = ctx.data_key.ring().await.unwrap().current.version.clone();
    let sm = aws_sdk_secretsmanager::Client::new(&Ctx::sdk_config().await);
    sm.put_secret_value()
        .secret_id(&ctx.settings.data_key_secret_id)
        .secret_string(koppel_shared::ids::new_id("datakey"))
        .send()
        .await
        .expect("rotate the data key");

    // A fresh reader holds the new key as current and the old one as previous.
    let fresh = Ctx::from_env().await.unwrap();
    let ring = fresh.data_key.ring().await.unwrap();
    assert_ne!(ring.current.version, before);
    assert_eq!(
        ring.previous.as_ref().map(|p| p.version.as_str()),
        Some(before.as_str())
    );
    let open = reveal(&ws.id, &con, &sub).await;
    assert_eq!(open.basic, Some(("koppel".into(), "pw-UNSEEN-7f3a".into())));
    assert_eq!(open.signing_secrets, std::slice::from_ref(&secret));
}

/// Every sealed value of `sub` names data-key version `v`.
fn sealed_under(sub: &Subscription, v: &str) -> bool {
    sub.basic_auth
        .iter()
        .map(|b| b.password_sealed.as_str())
        .chain(sub.headers.iter().filter_map(|h| h.value_sealed.as_deref()))
        .chain(sub.signing_secrets.iter().map(|s| s.sealed.as_str()))
        .all(|sealed| crypto::version_of(sealed).is_ok_and(|got| got == v))
}

#[tokio::test]
async fn after_a_reseal_the_next_rotation_loses_nothing() {
    // Two rotations of the test stack's data key would strand other tests' values sealed
    // meanwhile by a function still holding the old key: this runs on a stack of its own.
    let gw = Gateway::own_stack(&[]).await;
    let admin = |args: &[&str]| gw.admin(args);
    let (ws, owner) = new_workspace_by(&admin, "Data key rotation");
    let (_, pat) = personal_token_by(&admin, &ws, &owner);
    let auth = format!("Bearer {pat}");
    let con = NewConnector::sample(&ws, &owner)
        .description("rotation")
        .create_by(&admin);
    let con = s(&con["id"]);
    let path = format!("/v1/connectors/{con}/subscriptions");
    let r = send(
        &gw.url,
        "POST",
        &path,
        &[("Authorization", &auth)],
        Some(&subscription_body()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (sub, secret) = (
        s(&r.body["id"]).to_owned(),
        s(&r.body["signing_secret"]).to_owned(),
    );
    let key = Key::subscription(&ws, con, &sub);
    let stored = |ctx: Ctx| {
        let key = key.clone();
        async move {
            ctx.store
                .get::<Subscription>(&key)
                .await
                .unwrap()
                .expect("stored")
        }
    };

    let ctx = gw.ctx().await;
    let v0 = ctx.data_key.ring().await.unwrap().current.version.clone();
    assert!(sealed_under(&stored(gw.ctx().await).await, &v0));
    let sm = &aws_sdk_secretsmanager::Client::new(&Ctx::sdk_config().await);
    let secret_id = ctx.settings.data_key_secret_id.as_str();
    let rotate = || async move {
        let out = sm
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(koppel_shared::ids::new_id("datakey"))
            .send()
            .await
            .expect("rotate the data key");
        out.version_id().expect("a version").to_owned()
    };

    let v1 = rotate().await;
    let out = gw.admin(&["data-key", "reseal"]);
    assert_eq!(out["subscriptions"], 1, "{out}");
    assert_eq!(out["resealed"], 1, "{out}");
    assert_eq!(out["data_key_version"], v1.as_str());
    let after = stored(gw.ctx().await).await;
    assert!(sealed_under(&after, &v1), "{after:?}");
    assert_eq!(
        after.version, 1,
        "a re-seal is not a change: same version and ETag"
    );
    assert_eq!(
        gw.admin(&["data-key", "reseal"])["resealed"],
        0,
        "nothing left to do"
    );

    // The next rotation drops v0 from the ring; everything still opens.
    let v2 = rotate().await;
    let fresh = gw.ctx().await;
    let ring = fresh.data_key.ring().await.unwrap();
    assert_eq!(ring.current.version, v2);
    assert!(ring.get(&v0).is_none(), "v0 is gone");
    let open = koppel_shared::webhook::reveal(&fresh.data_key, &after, jiff::Timestamp::now())
        .await
        .expect("what was re-sealed opens");
    assert_eq!(open.basic, Some(("koppel".into(), "pw-UNSEEN-7f3a".into())));
    assert_eq!(
        open.headers
            .iter()
            .find(|(n, _)| n == "X-Api-Key")
            .map(|(_, v)| v.as_str()),
        Some("hdr-UNSEEN-91c2")
    );
    assert_eq!(open.signing_secrets, [secret]);
}

#[tokio::test]
async fn moving_a_subscription_to_another_host_needs_its_secrets_again() {
    let ws = Ws::new();
    let con = ws.connector().await;
    let base = format!("/v1/connectors/{con}/subscriptions");
    let r = ws.call("POST", &base, Some(&subscription_body())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("{base}/{}", s(&r.body["id"]));
    let etag = r.headers["etag"].to_str().unwrap().to_owned();

    // Same host, other path: the stored secrets stay.
    let same = json!({ "url": "https://hooks.partner.example/koppel/v2" });
    let r = ws
        .call_with("PATCH", &path, &[("If-Match", &etag)], Some(&same))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();

    // Another host: the password and the hidden value must come again.
    let moved = json!({ "url": "https://elsewhere.example/hook" });
    let r = ws
        .call_with("PATCH", &path, &[("If-Match", &etag)], Some(&moved))
        .await;
    r.assert_problem(422);
    assert_eq!(fields(&r), ["basic_auth.password", "headers[0].value"]);
    let resent = json!({
        "url": "https://elsewhere.example/hook",
        "basic_auth": { "username": "koppel", "password": "new-pw" },
        "headers": [
            { "name": "X-Api-Key", "value": "new-hdr", "hidden": true },
            { "name": "X-Tenant", "value": "tenant-1" },
        ],
    });
    let r = ws
        .call_with("PATCH", &path, &[("If-Match", &etag)], Some(&resent))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A `read` user with `manage_connectors` may not take over a `handle` connector that
/// acts for the owner: no credential for it, no change to it, no subscription on it; their
/// own connector stays theirs to manage.
#[tokio::test]
async fn a_reader_with_manage_connectors_cannot_take_over_the_owners_connector() {
    let ws = Ws::new();
    let owners = ws.connector().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let reader_id = NewUser::sample(&ws.id)
        .name("Mia Meekijker")
        .rights("read")
        .api_access(true)
        .manage_connectors(true)
        .id();
    let (_, pat) = personal_token(&ws.id, &reader_id);
    let auth = format!("Bearer {pat}");
    let as_reader =
        |method: &'static str, path: String, body: Option<Value>, etag: Option<String>| {
            let auth = auth.clone();
            async move {
                let mut h = vec![("Authorization", auth.as_str())];
                if let Some(e) = etag.as_deref() {
                    h.push(("If-Match", e));
                }
                send(&base_url(), method, &path, &h, body.as_ref()).await
            }
        };

    let r = as_reader(
        "POST",
        format!("/v1/connectors/{owners}/credentials"),
        Some(json!({"name": "mine now"})),
        None,
    )
    .await;
    r.assert_problem(403);
    let etag = ws
        .call("GET", &format!("/v1/connectors/{owners}"), None)
        .await
        .headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    for patch in [
        json!({"scopes": ["cases:read", "cases:write"]}),
        json!({"ip_allow_list": []}),
        json!({"saved_search_id": null}),
        json!({"jwt": {"issuer": format!("https://evil-{tag}.example"), "keys": []}}),
        json!({"description": "harmless?"}),
    ] {
        let r = as_reader(
            "PATCH",
            format!("/v1/connectors/{owners}"),
            Some(patch.clone()),
            Some(etag.clone()),
        )
        .await;
        r.assert_problem(403);
    }
    let r = as_reader(
        "POST",
        format!("/v1/connectors/{owners}/disable"),
        None,
        None,
    )
    .await;
    r.assert_problem(403);
    let r = as_reader(
        "POST",
        format!("/v1/connectors/{owners}/subscriptions"),
        Some(subscription_body()),
        None,
    )
    .await;
    r.assert_problem(403);
    let r = as_reader("DELETE", format!("/v1/connectors/{owners}"), None, None).await;
    r.assert_problem(403);
    // Nothing changed, nothing was issued.
    let after = ws
        .call("GET", &format!("/v1/connectors/{owners}"), None)
        .await;
    assert_eq!(after.headers["etag"].to_str().unwrap(), etag);
    let creds = ws
        .call("GET", &format!("/v1/connectors/{owners}/credentials"), None)
        .await;
    assert_eq!(creds.body["items"], json!([]), "{}", creds.body);

    // Their own `read` connector is theirs: a credential for it works, at `read`.
    let mine = as_reader(
        "POST",
        "/v1/connectors".into(),
        Some(json!({
            "description": "Mijn koppeling", "acting_user_id": reader_id,
            "access_level": "read", "scopes": ["cases:read"],
        })),
        None,
    )
    .await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    let id = s(&mine.body["id"]).to_owned();
    let cred = as_reader(
        "POST",
        format!("/v1/connectors/{id}/credentials"),
        Some(json!({"name": "k"})),
        None,
    )
    .await;
    assert_eq!(cred.status, 201, "{}", cred.body);
    let token = format!("Bearer {}", s(&cred.body["secret"]));
    let me = me(&[("Authorization", &token)]).await;
    assert_eq!(me.body["access_level"], "read", "{}", me.body);
}

/// `GET /v1/connectors` is paged: following `next_cursor` with `limit=1` (and 2) lists every
/// connector exactly once, in id order; another workspace's cursor is refused here.
#[tokio::test]
async fn connectors_are_paged_with_an_opaque_cursor() {
    let ws = Ws::new();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(ws.connector().await);
    }
    ids.sort();
    let auth = format!("Bearer {}", ws.pat);
    for limit in [1, 2, 200] {
        let got = all_pages(&auth, &format!("/v1/connectors?limit={limit}"), limit, 20).await;
        let seen: Vec<String> = got.iter().map(|c| s(&c["id"]).to_owned()).collect();
        assert_eq!(seen, ids, "limit={limit}");
    }
    let other = Ws::new();
    other.connector().await;
    other.connector().await;
    let theirs = other.call("GET", "/v1/connectors?limit=1", None).await;
    let theirs = s(&theirs.body["next_cursor"]).to_owned();
    assert_paging_refuses(&auth, "/v1/connectors", &[&theirs]).await;
}

/// A connector's own credential acts for the connector's acting user as it is now: the
/// authorizer reads the user it was issued under beside the connector, and the one the
/// connector names when that changed.
#[tokio::test]
async fn a_connector_credential_follows_a_change_of_acting_user() {
    let ws = Ws::new();
    let r = ws
        .call(
            "POST",
            "/v1/connectors",
            Some(&json!({
                "description": "Wisselt van medewerker", "acting_user_id": ws.owner,
                "access_level": "handle", "scopes": ["cases:read"],
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let con = s(&r.body["id"]).to_owned();
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let path = format!("/v1/connectors/{con}");
    let cred = ws
        .call(
            "POST",
            &format!("{path}/credentials"),
            Some(&json!({"name": "k"})),
        )
        .await;
    assert_eq!(cred.status, 201, "{}", cred.body);
    let token = format!("Bearer {}", s(&cred.body["secret"]));
    let before = me(&[("Authorization", &token)]).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["user"]["id"], ws.owner.as_str());
    assert_eq!(before.body["access_level"], "handle");

    let clerk = NewUser::sample(&ws.id)
        .name("Nieuwe Lezer")
        .rights("read")
        .id();
    let changed = ws
        .call_with(
            "PATCH",
            &path,
            &[("If-Match", &etag)],
            Some(&json!({ "acting_user_id": clerk })),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let after = me(&[("Authorization", &token)]).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.body["user"]["id"], clerk.as_str());
    assert_eq!(after.body["user"]["name"], "Nieuwe Lezer");
    assert_eq!(after.body["connector"]["acting_user_id"], clerk.as_str());
    // The new acting user's rights cap the connector from the next request on.
    assert_eq!(after.body["access_level"], "read");
}

#[tokio::test]
async fn a_partner_is_set_up_in_one_call_with_its_user_and_first_token() {
    let ws = Ws::new();
    let email = format!("portaal-{}@partner.example", now());
    let mut body = ws.profile();
    body.as_object_mut().unwrap().remove("acting_user_id");
    body.as_object_mut().unwrap().remove("ip_allow_list");
    body["create_connector_user"] = json!({ "email": email, "name": "Portaal", "rights": "read" });
    body["generate_token"] = json!({});
    let r = ws.call("POST", "/v1/connectors", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let con = s(&r.body["id"]).to_owned();
    let user = &r.body["connector_user"];
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["api_access"], false);
    assert_eq!(user["manage_users"], false);
    assert_eq!(r.body["acting_user_id"], user["id"]);
    let cred = &r.body["credential"];
    assert_eq!(cred["kind"], "connector_token");
    assert_eq!(cred["connector_id"], con.as_str());
    assert_eq!(cred["name"], "Zaakportaal");
    // The token works at once, for the new user, capped by their rights.
    let token = format!("Bearer {}", s(&cred["secret"]));
    let me = send(
        &base_url(),
        "GET",
        "/v1/me",
        &[("Authorization", &token)],
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["user"]["id"], user["id"]);
    assert_eq!(me.body["access_level"], "read", "{}", me.body);
    // The new user exists, without API access: no personal token for them.
    let users = ws.call("GET", "/v1/users", None).await;
    assert!(users.body.to_string().contains(&email), "{}", users.body);
    // The connector reads back without the secret.
    let again = ws.call("GET", &format!("/v1/connectors/{con}"), None).await;
    assert!(again.body.get("credential").is_none(), "{}", again.body);

    // An API key, acting for an existing user, needs no new user.
    let mut key = ws.profile();
    key.as_object_mut().unwrap().remove("ip_allow_list");
    key["generate_token"] = json!({ "kind": "api_key", "name": "Sleutel" });
    let r = ws.call("POST", "/v1/connectors", Some(&key)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.get("connector_user").is_none());
    let id = s(&r.body["id"]).to_owned();
    let secret = s(&r.body["credential"]["secret"]).to_owned();
    let h = [
        ("API-Interface-Id", id.as_str()),
        ("API-Key", secret.as_str()),
    ];
    let me = koppel_e2e::me(&h).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["user"]["id"], ws.owner.as_str());
    assert_eq!(me.body["credential"]["kind"], "api_key", "{}", me.body);
}

#[tokio::test]
async fn a_set_up_that_fails_leaves_nothing_behind() {
    let ws = Ws::new();
    let email = format!("dubbel-{}@partner.example", now());
    let mut body = ws.profile();
    body.as_object_mut().unwrap().remove("acting_user_id");
    body["create_connector_user"] = json!({ "email": email, "name": "Eerste", "rights": "read" });
    let first = ws.call("POST", "/v1/connectors", Some(&body)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let before = all_pages(&format!("Bearer {}", ws.pat), "/v1/connectors", 50, 10).await;

    // The e-mail address is taken: 409, and neither connector nor token was made.
    body["generate_token"] = json!({});
    let r = ws.call("POST", "/v1/connectors", Some(&body)).await;
    r.assert_problem(409);
    assert!(s(&r.body["detail"]).contains(&email), "{}", r.body);
    let after = all_pages(&format!("Bearer {}", ws.pat), "/v1/connectors", 50, 10).await;
    assert_eq!(before.len(), after.len());

    // Every bad field at once, named; acting_user_id beside a new user is one of them.
    let bad = json!({
        "description": "Zaakportaal", "access_level": "handle", "scopes": ["cases:read"],
        "acting_user_id": ws.owner,
        "create_connector_user": { "email": "not-an-address", "name": " ", "rights": "read" },
        "generate_token": { "kind": "password", "name": "" },
    });
    let r = ws.call("POST", "/v1/connectors", Some(&bad)).await;
    let mut fields = problem_fields(&r);
    fields.sort();
    assert_eq!(
        fields,
        [
            "acting_user_id",
            "create_connector_user.email",
            "create_connector_user.name",
            "generate_token.kind",
            "generate_token.name",
        ],
        "{}",
        r.body
    );
    let unknown = json!({
        "description": "Zaakportaal", "access_level": "read", "scopes": ["cases:read"],
        "create_connector_user": { "email": "a@b.example", "name": "A", "rights": "read", "api_access": true },
    });
    let r = ws.call("POST", "/v1/connectors", Some(&unknown)).await;
    assert_eq!(problem_fields(&r), ["create_connector_user"], "{}", r.body);

    // Making a connector user is managing users: a connector manager without it may not.
    let manager = NewUser::sample(&ws.id)
        .rights("handle")
        .api_access(true)
        .manage_connectors(true)
        .id();
    let (_, pat) = personal_token(&ws.id, &manager);
    let auth = format!("Bearer {pat}");
    let mut theirs = body.clone();
    theirs["create_connector_user"]["email"] = json!(format!("ander-{email}"));
    let r = send(
        &base_url(),
        "POST",
        "/v1/connectors",
        &[("Authorization", &auth)],
        Some(&theirs),
    )
    .await;
    r.assert_problem(403);
}

#[test]
fn the_admin_cli_sets_a_partner_up_in_one_command() {
    let ws = Ws::new();
    let email = format!("cli-{}@partner.example", now());
    let made = admin(&[
        "connector",
        "create",
        "--workspace",
        &ws.id,
        "--description",
        "CLI partner",
        "--new-user-email",
        &email,
        "--new-user-name",
        "CLI",
        "--new-user-rights",
        "read",
        "--access-level",
        "handle",
        "--scope",
        "cases:read",
        "--generate-token",
        "api-key",
    ]);
    assert_eq!(made["connector_user"]["email"], email.as_str(), "{made}");
    assert_eq!(made["acting_user_id"], made["connector_user"]["id"]);
    assert_eq!(made["credential"]["kind"], "api_key");
    assert!(s(&made["credential"]["secret"]).starts_with("kpl_"));
}

#[tokio::test]
async fn a_partners_manifest_sets_what_its_connector_may_do() {
    let ws = Ws::new();
    let con = ws.connector().await;
    let path = format!("/v1/connectors/{con}/manifest");
    let manifest = json!({
        "description": "Zaakportaal (manifest)", "scopes": ["cases:read", "dsr:read"],
        "event_types": ["case.created", "dsr.closed"],
    });
    let r = ws.call("POST", &path, Some(&manifest)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scopes"], json!(["cases:read", "dsr:read"]));
    assert_eq!(r.body["description"], "Zaakportaal (manifest)");
    assert_eq!(
        r.body["manifest"]["event_types"],
        json!(["case.created", "dsr.closed"])
    );
    let version = r.body["version"].as_u64().unwrap();
    // Every unknown entry at once, and nothing changed.
    let bad = json!({
        "scopes": ["cases:read", "cases:purge"], "event_types": ["case.archived", "endpoint.created"],
        "callback": "https://partner.example",
    });
    let r = ws.call("POST", &path, Some(&bad)).await;
    assert_eq!(
        problem_fields(&r),
        ["callback", "scopes[1]", "event_types[0]", "event_types[1]"],
        "{}",
        r.body
    );
    let now = ws.call("GET", &format!("/v1/connectors/{con}"), None).await;
    assert_eq!(now.body["version"], version);
    // A stale If-Match is refused; a connector's own credential may not import.
    let stale = ws
        .call_with("POST", &path, &[("If-Match", "\"1\"")], Some(&manifest))
        .await;
    stale.assert_problem(412);
    let (_, token) = NewCredential::token(&ws.id, &con).secret();
    let auth = format!("Bearer {token}");
    send(
        &base_url(),
        "POST",
        &path,
        &[("Authorization", &auth)],
        Some(&manifest),
    )
    .await
    .assert_problem(403);
}
