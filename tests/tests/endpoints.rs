//! OSR endpoints end to end: a supplier's connector registers the seed's endpoint under a
//! mandate the organisation granted, with the seed's `JWT` header; every rule's rejection;
//! one active endpoint per (administration, service version) even under a 32-way race.

use base64::Engine;
use jiff::ToSpan;
use koppel_e2e::*;
use serde_json::{Value, json};
use sha2::Digest;

const NAMESPACE: &str = "http://xml.eld.nl/schemas/Overstapservice/20170601";
const ADMINISTRATION: &str = "0000000700004HR77707";

/// A fresh workspace: its owner's token, a supplier connector with a token and a JWT key,
/// the seed's service version, and a mandate for the seed's administration.
struct Osr {
    ws: String,
    owner: String,
    supplier: String,
    connector: String,
    mandate: String,
    iss: String,
    private_key_pem: String,
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn day(offset_days: i64) -> String {
    let today = koppel_shared::calendar::today(jiff::Timestamp::now());
    today.checked_add(offset_days.days()).unwrap().to_string()
}

/// A supplier's `handle` connector with the OSR scopes, acting for `employee`.
fn supplier(ws: &str, employee: &str, description: &str) -> NewConnector {
    NewConnector::sample(ws, employee)
        .description(description)
        .scopes(&["endpoints:read", "endpoints:write"])
}

impl Osr {
    async fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (ws, owner_id) = new_workspace("OSR test");
        let (_, pat) = personal_token(&ws, &owner_id);
        let (connector, supplier) = supplier(&ws, &owner_id, "Leverancier")
            .rate_limit(1000)
            .with_token();
        let iss = format!("https://supplier-{tag}.example");
        let key = jwt_key(&ws, &connector, &iss, "k1");
        let mut osr = Self {
            ws,
            owner: bearer(&pat),
            supplier,
            connector,
            mandate: String::new(),
            iss,
            private_key_pem: s(&key["private_key_pem"]).to_owned(),
        };
        let r = osr
            .as_owner(
                "POST",
                "/api/v1/service-versions",
                Some(&json!({"namespace": NAMESPACE})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        osr.mandate = osr.grant(ADMINISTRATION, None).await;
        osr
    }

    async fn grant(&self, administration: &str, end: Option<&str>) -> String {
        let body = json!({
            "connector_id": self.connector, "administration_id": administration,
            "service_version_namespace": NAMESPACE, "end_date": end,
        });
        let r = self.as_owner("POST", "/api/v1/mandates", Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        s(&r.body["mandate_token"]).to_owned()
    }

    async fn as_owner(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        send(
            &base_url(),
            method,
            path,
            &[("Authorization", &self.owner)],
            body,
        )
        .await
    }

    async fn as_supplier(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        send(
            &base_url(),
            method,
            path,
            &[("Authorization", &self.supplier)],
            body,
        )
        .await
    }

    /// The seed's POST body, verbatim but for the mandate token and dates in the future.
    fn seed_body(&self, start: &str, end: Option<&str>) -> Value {
        json!({
            "mandate_token": self.mandate,
            "administration_id": ADMINISTRATION,
            "service_version_namespace": NAMESPACE,
            "url": "https://t2.nl",
            "attributes": "LAS",
            "start_date": start,
            "end_date": end,
        })
    }

    fn jwt(&self, extra: Value) -> String {
        let n = now();
        let mut claims = json!({
            "iss": self.iss, "aud": demo()["jwt"]["aud"], "iat": n, "exp": n + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some("k1".into());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.private_key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    }

    async fn post_with_jwt(&self, raw: &str, jwt: &str) -> Reply {
        let client = reqwest::Client::new();
        let resp = client
            .post(format!("{}/api/v1/endpoints", base_url()))
            .header("JWT", jwt)
            .header("content-type", "application/json")
            .body(raw.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}

fn field_errors(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| s(&e["field"]).to_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_seed_request_with_its_jwt_header_registers_an_endpoint() {
    let osr = Osr::new().await;
    let (start, end) = (day(30), day(395));
    let raw = osr.seed_body(&start, Some(&end)).to_string();
    let r = osr.post_with_jwt(&raw, &osr.jwt(json!({}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = s(&r.body["id"]).to_owned();
    assert_eq!(
        r.headers["location"],
        format!("/api/v1/endpoints/{id}").as_str()
    );
    assert_eq!(r.body["url"], "https://t2.nl");
    assert_eq!(r.body["attributes"], "LAS");
    assert_eq!(r.body["start_date"], start.as_str());
    assert_eq!(r.body["end_date"], end.as_str());
    assert_eq!(r.body["connector_id"], osr.connector.as_str());

    let got = osr
        .as_supplier("GET", &format!("/api/v1/endpoints/{id}"), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, r.body);
    let q = format!(
        "/api/v1/endpoints?administration_id={ADMINISTRATION}&service_version_namespace={NAMESPACE}"
    );
    let all = osr.as_owner("GET", &q, None).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    let on = osr
        .as_owner("GET", &format!("{q}&date={}", day(31)), None)
        .await;
    assert_eq!(on.body["items"][0]["id"], id.as_str());
    let before = osr
        .as_owner("GET", &format!("{q}&date={}", day(29)), None)
        .await;
    assert_eq!(before.body["items"], json!([]));
    let bad = osr
        .as_owner("GET", &format!("{q}&date=tomorrow"), None)
        .await;
    bad.assert_problem(422);

    // Without dates: from today, open-ended; read-only and unknown fields are ignored.
    let mut body = osr.seed_body(&day(0), None);
    let o = body.as_object_mut().unwrap();
    o.remove("start_date");
    o.insert("id".into(), json!("client-chosen"));
    o.insert("extra".into(), json!({"ignored": true}));
    o.insert("administration_id".into(), json!("0000000700004HR77708"));
    let m2 = osr.grant("0000000700004HR77708", None).await;
    o.insert("mandate_token".into(), json!(m2));
    let r = osr
        .as_supplier("POST", "/api/v1/endpoints", Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["start_date"], day(0).as_str());
    assert_eq!(r.body["end_date"], Value::Null);
    assert_ne!(r.body["id"], "client-chosen");
}

#[tokio::test]
async fn the_jwt_hash_claim_must_match_the_body() {
    let osr = Osr::new().await;
    let raw = osr.seed_body(&day(10), Some(&day(20))).to_string();
    let hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(raw.as_bytes()));
    let wrong = osr
        .post_with_jwt(&raw, &osr.jwt(json!({"hash": "AAAA"})))
        .await;
    wrong.assert_problem(401);
    let right = osr
        .post_with_jwt(&raw, &osr.jwt(json!({ "hash": hash })))
        .await;
    assert_eq!(right.status, 201, "{}", right.body);
}

#[tokio::test]
async fn each_rule_rejects_with_the_field_named() {
    let osr = Osr::new().await;
    let post = |body: Value| {
        let osr = &osr;
        async move {
            osr.as_supplier("POST", "/api/v1/endpoints", Some(&body))
                .await
        }
    };

    let r = post(json!({})).await;
    r.assert_problem(422);
    assert_eq!(
        field_errors(&r),
        [
            "mandate_token",
            "administration_id",
            "service_version_namespace",
            "url"
        ]
    );

    let mut b = osr.seed_body(&day(1), None);
    b["url"] = json!("http://t2.nl");
    assert_eq!(field_errors(&post(b).await), ["url"]);
    let mut b = osr.seed_body(&day(1), None);
    b["url"] = json!("/relative");
    assert_eq!(field_errors(&post(b).await), ["url"]);
    let mut b = osr.seed_body(&day(1), None);
    b["url"] = json!(5);
    let r = post(b).await;
    r.assert_problem(422);
    assert_eq!(field_errors(&r), ["url"]);

    let r = post(osr.seed_body(&day(-1), None)).await;
    assert_eq!(field_errors(&r), ["start_date"]);
    let r = post(osr.seed_body(&day(5), Some(&day(4)))).await;
    assert_eq!(field_errors(&r), ["end_date"]);
    let r = post(osr.seed_body(&day(0), Some(&day(-1)))).await;
    assert_eq!(field_errors(&r), ["end_date"]);
    let r = post(osr.seed_body("2030-1-1", Some("01-01-2031"))).await;
    assert_eq!(field_errors(&r), ["start_date", "end_date"]);
    let mut b = osr.seed_body(&day(1), None);
    b["mandate_token"] = json!("not-a-uuid");
    assert_eq!(field_errors(&post(b).await), ["mandate_token"]);

    // Malformed JSON and another content type.
    let r = send(
        &base_url(),
        "POST",
        "/api/v1/endpoints",
        &[("Authorization", &osr.supplier)],
        None,
    )
    .await;
    r.assert_problem(415);
    let raw = reqwest::Client::new()
        .post(format!("{}/api/v1/endpoints", base_url()))
        .header("Authorization", &osr.supplier)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    // Mandate mismatches are one 403 that says nothing about which part failed.
    let mut b = osr.seed_body(&day(1), None);
    b["mandate_token"] = json!(uuid::Uuid::new_v4().to_string());
    let unknown = post(b).await;
    unknown.assert_problem(403);
    let mut b = osr.seed_body(&day(1), None);
    b["administration_id"] = json!("0000000700004HR99999");
    let other_admin = post(b).await;
    other_admin.assert_problem(403);
    assert_eq!(unknown.body["detail"], other_admin.body["detail"]);
}

#[tokio::test]
async fn one_active_endpoint_per_administration_and_service_version() {
    let osr = Osr::new().await;
    let post = |body: Value| {
        let osr = &osr;
        async move {
            osr.as_supplier("POST", "/api/v1/endpoints", Some(&body))
                .await
        }
    };
    let a = post(osr.seed_body(&day(10), Some(&day(20)))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a_id = s(&a.body["id"]).to_owned();

    let clash = post(osr.seed_body(&day(20), None)).await;
    clash.assert_problem(409);
    let detail = s(&clash.body["detail"]);
    assert!(
        detail.contains(&a_id) && detail.contains(&day(10)) && detail.contains(&day(20)),
        "{detail}"
    );

    // Touching is not overlapping: the day after A's end is free.
    let b = post(osr.seed_body(&day(21), Some(&day(30)))).await;
    assert_eq!(b.status, 201, "{}", b.body);
    let before = post(osr.seed_body(&day(1), Some(&day(9)))).await;
    assert_eq!(before.status, 201, "{}", before.body);

    // An update may not move into another's interval either.
    let mut moved = osr.seed_body(&day(10), Some(&day(25)));
    moved["url"] = json!("https://t3.nl");
    let r = osr
        .as_supplier("PUT", &format!("/api/v1/endpoints/{a_id}"), Some(&moved))
        .await;
    r.assert_problem(409);
    let mut renamed = osr.seed_body(&day(10), Some(&day(20)));
    renamed["url"] = json!("https://t3.nl");
    let r = osr
        .as_supplier("PUT", &format!("/api/v1/endpoints/{a_id}"), Some(&renamed))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["url"], "https://t3.nl");
}

#[tokio::test]
async fn ending_an_endpoint_today_frees_the_slot_from_tomorrow() {
    let osr = Osr::new().await;
    let open = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(0), None)),
        )
        .await;
    assert_eq!(open.status, 201, "{}", open.body);
    let id = s(&open.body["id"]).to_owned();
    // Its start is kept; its end is today.
    let mut end_today = osr.seed_body(&day(0), Some(&day(0)));
    end_today.as_object_mut().unwrap().remove("start_date");
    let r = osr
        .as_supplier("PUT", &format!("/api/v1/endpoints/{id}"), Some(&end_today))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["end_date"], day(0).as_str());
    let today_again = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(0), None)),
        )
        .await;
    today_again.assert_problem(409);
    let tomorrow = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(1), None)),
        )
        .await;
    assert_eq!(tomorrow.status, 201, "{}", tomorrow.body);
}

#[tokio::test]
async fn of_32_concurrent_overlapping_creates_exactly_one_wins() {
    let osr = Osr::new().await;
    let body = osr.seed_body(&day(3), Some(&day(60)));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let mut b = body.clone();
            b["url"] = json!(format!("https://supplier-{i}.example/osr"));
            let auth = osr.supplier.clone();
            tokio::spawn(async move {
                send(
                    &base_url(),
                    "POST",
                    "/api/v1/endpoints",
                    &[("Authorization", &auth)],
                    Some(&b),
                )
                .await
                .status
                .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let created = statuses.iter().filter(|s| **s == 201).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, conflicts), (1, 31), "statuses: {statuses:?}");
    let q = format!(
        "/api/v1/endpoints?administration_id={ADMINISTRATION}&service_version_namespace={NAMESPACE}"
    );
    let all = osr.as_owner("GET", &q, None).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_revoked_or_expired_mandate_stops_working_at_once() {
    let osr = Osr::new().await;
    let r = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(5), Some(&day(6)))),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = s(&r.body["id"]).to_owned();
    let revoked = osr
        .as_owner("DELETE", &format!("/api/v1/mandates/{}", osr.mandate), None)
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body["revoked_at"].is_string());
    osr.as_supplier(
        "POST",
        "/api/v1/endpoints",
        Some(&osr.seed_body(&day(7), None)),
    )
    .await
    .assert_problem(403);
    osr.as_supplier(
        "PUT",
        &format!("/api/v1/endpoints/{id}"),
        Some(&osr.seed_body(&day(5), Some(&day(6)))),
    )
    .await
    .assert_problem(403);

    // A mandate whose dates have passed: grants cannot be made in the past, so one that
    // starts in the future stands in for "not live today".
    let body = json!({
        "connector_id": osr.connector, "administration_id": "ADM-LATER",
        "service_version_namespace": NAMESPACE, "start_date": day(30),
    });
    let later = osr.as_owner("POST", "/api/v1/mandates", Some(&body)).await;
    assert_eq!(later.status, 201, "{}", later.body);
    let mut b = osr.seed_body(&day(1), None);
    b["mandate_token"] = later.body["mandate_token"].clone();
    b["administration_id"] = json!("ADM-LATER");
    osr.as_supplier("POST", "/api/v1/endpoints", Some(&b))
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn other_workspaces_and_other_suppliers_see_nothing() {
    let a = Osr::new().await;
    let b = Osr::new().await;
    let r = a
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&a.seed_body(&day(2), None)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("/api/v1/endpoints/{}", s(&r.body["id"]));
    b.as_supplier("GET", &path, None).await.assert_problem(404);
    b.as_owner("GET", &path, None).await.assert_problem(404);
    b.as_supplier("PUT", &path, Some(&b.seed_body(&day(2), None)))
        .await
        .assert_problem(404);
    b.as_owner("DELETE", &format!("/api/v1/mandates/{}", a.mandate), None)
        .await
        .assert_problem(404);
    // B's mandate token does not work in A's workspace either.
    let mut stolen = a.seed_body(&day(2), None);
    stolen["mandate_token"] = json!(b.mandate);
    a.as_supplier("POST", "/api/v1/endpoints", Some(&stolen))
        .await
        .assert_problem(403);

    // Another supplier in A's workspace, with its own token, does not see A's endpoint.
    let employee = NewUser::sample(&a.ws).name("U").id();
    let (_, other) = supplier(&a.ws, &employee, "Ander").with_token();
    let r2 = get(&base_url(), &path, &[("Authorization", &other)]).await;
    r2.assert_problem(404);
}

#[tokio::test]
async fn who_may_do_what() {
    let osr = Osr::new().await;
    // The organisation's user does not register endpoints; a supplier does not grant.
    osr.as_owner(
        "POST",
        "/api/v1/endpoints",
        Some(&osr.seed_body(&day(1), None)),
    )
    .await
    .assert_problem(403);
    let grant = json!({"connector_id": osr.connector, "administration_id": "X",
                       "service_version_namespace": NAMESPACE});
    osr.as_supplier("POST", "/api/v1/mandates", Some(&grant))
        .await
        .assert_problem(403);
    osr.as_supplier(
        "POST",
        "/api/v1/service-versions",
        Some(&json!({"namespace": "urn:x"})),
    )
    .await
    .assert_problem(403);
    // A read-level connector cannot write.
    let employee = NewUser::sample(&osr.ws).name("R").rights("read").id();
    let (_, reader) = supplier(&osr.ws, &employee, "Lezer").with_token();
    let r = send(
        &base_url(),
        "POST",
        "/api/v1/endpoints",
        &[("Authorization", &reader)],
        Some(&osr.seed_body(&day(1), None)),
    )
    .await;
    r.assert_problem(403);

    // Service versions: unique, listed, retired ones refuse new mandates and endpoints.
    let dup = osr
        .as_owner(
            "POST",
            "/api/v1/service-versions",
            Some(&json!({"namespace": NAMESPACE})),
        )
        .await;
    dup.assert_problem(409);
    let list = osr.as_owner("GET", "/api/v1/service-versions", None).await;
    let sv = &list.body["items"][0];
    assert_eq!(sv["namespace"], NAMESPACE);
    let retired = osr
        .as_owner(
            "POST",
            &format!("/api/v1/service-versions/{}/retire", s(&sv["id"])),
            None,
        )
        .await;
    assert!(retired.body["retired_at"].is_string(), "{}", retired.body);
    let r = osr.as_owner("POST", "/api/v1/mandates", Some(&grant)).await;
    assert_eq!(field_errors(&r), ["service_version_namespace"]);
    let r = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(1), None)),
        )
        .await;
    assert_eq!(field_errors(&r), ["service_version_namespace"]);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response() {
    let osr = Osr::new().await;
    let key = uuid::Uuid::new_v4().to_string();
    let body = osr.seed_body(&day(4), Some(&day(5)));
    let headers = [
        ("Authorization", osr.supplier.as_str()),
        ("Idempotency-Key", key.as_str()),
    ];
    let first = send(
        &base_url(),
        "POST",
        "/api/v1/endpoints",
        &headers,
        Some(&body),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send(
        &base_url(),
        "POST",
        "/api/v1/endpoints",
        &headers,
        Some(&body),
    )
    .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers["location"], first.headers["location"]);
    let mut other = body.clone();
    other["url"] = json!("https://elsewhere.example");
    send(
        &base_url(),
        "POST",
        "/api/v1/endpoints",
        &headers,
        Some(&other),
    )
    .await
    .assert_problem(422);
    // Without the key the same body is a new request, which overlaps.
    osr.as_supplier("POST", "/api/v1/endpoints", Some(&body))
        .await
        .assert_problem(409);
}

/// Endpoints, mandates and service versions are paged: following `next_cursor` with
/// `limit=1` (and 2) lists every item exactly once; the pair's list keeps start-date order;
/// a cursor only continues the list (with the same filters) it came from.
#[tokio::test]
async fn endpoints_mandates_and_service_versions_are_paged() {
    let osr = Osr::new().await;
    let ids_of = |items: &[Value], key: &str| -> Vec<String> {
        items.iter().map(|i| s(&i[key]).to_owned()).collect()
    };
    let post = |body: Value| {
        let osr = &osr;
        async move {
            let r = osr
                .as_supplier("POST", "/api/v1/endpoints", Some(&body))
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            s(&r.body["id"]).to_owned()
        }
    };
    // Four endpoints of the seed's pair, one day each (no overlap), created out of order.
    let mut pair = Vec::new();
    for d in [3, 1, 4, 2] {
        pair.push((d, post(osr.seed_body(&day(d), Some(&day(d)))).await));
    }
    pair.sort();
    let pair: Vec<String> = pair.into_iter().map(|(_, id)| id).collect();
    // Two more administrations, one endpoint each, and their mandates.
    let mut all = pair.clone();
    let mut mandates = vec![osr.mandate.clone()];
    for adm in ["ADM-PAGED-1", "ADM-PAGED-2"] {
        let token = osr.grant(adm, None).await;
        let mut body = osr.seed_body(&day(1), None);
        body["mandate_token"] = json!(token);
        body["administration_id"] = json!(adm);
        all.push(post(body).await);
        mandates.push(token);
    }
    all.sort();
    mandates.sort();

    for (who, auth) in [("supplier", &osr.supplier), ("owner", &osr.owner)] {
        for limit in [1, 2, 200] {
            let got = all_pages(auth, &format!("/api/v1/endpoints?limit={limit}"), limit, 20).await;
            assert_eq!(ids_of(&got, "id"), all, "{who} limit={limit}");
            let path = format!(
                "/api/v1/endpoints?administration_id={ADMINISTRATION}\
                 &service_version_namespace={NAMESPACE}&limit={limit}"
            );
            let got = all_pages(auth, &path, limit, 20).await;
            assert_eq!(ids_of(&got, "id"), pair, "{who} pair, limit={limit}");
            let path =
                format!("/api/v1/endpoints?administration_id={ADMINISTRATION}&limit={limit}");
            let mut got = ids_of(&all_pages(auth, &path, limit, 20).await, "id");
            got.sort();
            let mut want = pair.clone();
            want.sort();
            assert_eq!(got, want, "{who} administration, limit={limit}");
            let got = all_pages(auth, &format!("/api/v1/mandates?limit={limit}"), limit, 20).await;
            assert_eq!(
                ids_of(&got, "mandate_token"),
                mandates,
                "{who} limit={limit}"
            );
        }
    }
    let on_day_2 = format!(
        "/api/v1/endpoints?administration_id={ADMINISTRATION}\
         &service_version_namespace={NAMESPACE}&date={}&limit=1",
        day(2)
    );
    let got = all_pages(&osr.supplier, &on_day_2, 1, 5).await;
    assert_eq!(ids_of(&got, "id"), [pair[1].clone()]);

    // Service versions: the seed's and two more.
    let mut versions = Vec::new();
    for n in 1..=2 {
        let ns = format!("https://ns.example/paged/{n}");
        let r = osr
            .as_owner(
                "POST",
                "/api/v1/service-versions",
                Some(&json!({"namespace": ns})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        versions.push(s(&r.body["id"]).to_owned());
    }
    let first = osr
        .as_owner("GET", "/api/v1/service-versions?limit=200", None)
        .await;
    let everything = ids_of(first.body["items"].as_array().unwrap(), "id");
    assert_eq!(everything.len(), 3, "{}", first.body);
    assert!(versions.iter().all(|v| everything.contains(v)));
    for limit in [1, 2] {
        let path = format!("/api/v1/service-versions?limit={limit}");
        let got = all_pages(&osr.owner, &path, limit, 20).await;
        assert_eq!(ids_of(&got, "id"), everything, "limit={limit}");
    }

    // Refusals: every list says the same about a bad limit or cursor, and a cursor of one
    // list (or of the same list with other filters) does not continue another.
    let cursor_of = |path: String| {
        let osr = &osr;
        async move {
            let r = osr.as_owner("GET", &path, None).await;
            s(&r.body["next_cursor"]).to_owned()
        }
    };
    let pair_cursor = cursor_of(format!(
        "/api/v1/endpoints?administration_id={ADMINISTRATION}\
         &service_version_namespace={NAMESPACE}&limit=1"
    ))
    .await;
    let mandates_cursor = cursor_of("/api/v1/mandates?limit=1".into()).await;
    let versions_cursor = cursor_of("/api/v1/service-versions?limit=1".into()).await;
    let endpoints_cursor = cursor_of("/api/v1/endpoints?limit=1".into()).await;
    assert_paging_refuses(
        &osr.owner,
        "/api/v1/endpoints",
        &[&pair_cursor, &mandates_cursor],
    )
    .await;
    assert_paging_refuses(&osr.owner, "/api/v1/mandates", &[&versions_cursor]).await;
    assert_paging_refuses(&osr.owner, "/api/v1/service-versions", &[&endpoints_cursor]).await;
    // The owner's cursor is not the supplier's: they see different lists.
    let r = osr
        .as_supplier(
            "GET",
            &format!("/api/v1/mandates?limit=1&cursor={mandates_cursor}"),
            None,
        )
        .await;
    assert_eq!(field_errors(&r), ["cursor"], "{}", r.body);
    // A bad date and a bad limit are named together.
    let r = osr
        .as_owner("GET", "/api/v1/endpoints?date=tomorrow&limit=0", None)
        .await;
    r.assert_problem(422);
    let mut named = field_errors(&r);
    named.sort();
    assert_eq!(named, ["date", "limit"], "{}", r.body);
}

/// The slot item of the seed's (administration, service version) in `ws`, as stored.
async fn slot_item(ctx: &koppel_shared::Ctx, ws: &str) -> Value {
    let key = koppel_shared::store::Key {
        pk: format!("WS#{ws}"),
        sk: format!("EPSLOT#{ADMINISTRATION}#{NAMESPACE}"),
    };
    ctx.store
        .get::<Value>(&key)
        .await
        .expect("read the slot")
        .expect("the slot exists")
}

/// Writes `value` under `sk` in `ws`, as the endpoints function stores its items.
async fn put_raw(ctx: &koppel_shared::Ctx, ws: &str, sk: String, value: &Value) {
    put_at(ctx, format!("WS#{ws}"), sk, value).await;
}

/// Writes `value` under (`pk`, `sk`).
async fn put_at(ctx: &koppel_shared::Ctx, pk: String, sk: String, value: &Value) {
    let key = koppel_shared::store::Key { pk, sk };
    let item = koppel_shared::store::item(&key, value).expect("an item");
    ctx.store
        .client()
        .put_item()
        .table_name(ctx.store.table())
        .set_item(Some(item))
        .send()
        .await
        .expect("write");
}

#[tokio::test]
async fn a_write_prunes_the_slot_of_intervals_that_ended_before_today() {
    let osr = Osr::new().await;
    let ctx = koppel_shared::Ctx::from_env()
        .await
        .expect("KOPPEL_* settings");
    let r = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(0), Some(&day(0)))),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ends_today = s(&r.body["id"]).to_owned();
    // Years of use: the slot holds endpoints that ended long ago, and one that ended
    // yesterday (as time passing leaves them; the API takes no end in the past).
    let mut slot = slot_item(&ctx, &osr.ws).await;
    let mut entries = slot["entries"].as_array().unwrap().clone();
    for n in 0..200 {
        entries.push(json!({
            "id": format!("old-{n}"), "start_date": "2020-01-01", "end_date": "2020-01-31",
        }));
    }
    entries.push(json!({ "id": "yesterday", "start_date": day(-30), "end_date": day(-1) }));
    slot["entries"] = json!(entries);
    put_raw(
        &ctx,
        &osr.ws,
        format!("EPSLOT#{ADMINISTRATION}#{NAMESPACE}"),
        &slot,
    )
    .await;
    let version = slot["version"].as_u64().unwrap();

    // The next write keeps what has not ended: the one ending today, and its own.
    let r = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(1), None)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let next = s(&r.body["id"]).to_owned();
    let slot = slot_item(&ctx, &osr.ws).await;
    let ids: Vec<&str> = slot["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["id"]))
        .collect();
    assert_eq!(ids, [ends_today.as_str(), next.as_str()]);
    assert_eq!(slot["version"].as_u64(), Some(version + 1));
    // The overlap rule still holds over what is kept.
    let r = osr
        .as_supplier(
            "POST",
            "/api/v1/endpoints",
            Some(&osr.seed_body(&day(0), None)),
        )
        .await;
    r.assert_problem(409);
}

#[tokio::test]
async fn an_endpoint_that_has_ended_is_not_changed_again() {
    let osr = Osr::new().await;
    let ctx = koppel_shared::Ctx::from_env()
        .await
        .expect("KOPPEL_* settings");
    // An endpoint of this supplier that ended yesterday (its slot entry pruned since):
    // a new end date would stretch it over whatever was active after it.
    let id = uuid::Uuid::new_v4().to_string();
    let ended = json!({
        "workspace_id": osr.ws, "id": id, "connector_id": osr.connector,
        "mandate_token": osr.mandate, "administration_id": ADMINISTRATION,
        "service_version_namespace": NAMESPACE, "url": "https://t2.nl",
        "start_date": day(-30), "end_date": day(-1),
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "version": 1,
    });
    put_raw(&ctx, &osr.ws, format!("ENDPOINT#{id}"), &ended).await;
    let mut body = osr.seed_body(&day(0), Some(&day(10)));
    body.as_object_mut().unwrap().remove("start_date");
    let r = osr
        .as_supplier("PUT", &format!("/api/v1/endpoints/{id}"), Some(&body))
        .await;
    r.assert_problem(409);
    assert!(s(&r.body["detail"]).contains(&day(-1)), "{}", r.body);
    let g = osr
        .as_supplier("GET", &format!("/api/v1/endpoints/{id}"), None)
        .await;
    assert_eq!(g.body["end_date"], day(-1).as_str());
}

/// Stores an endpoint of the seed's pair that ended yesterday, as a month of use leaves it:
/// the endpoint and its administration's list entry, and no slot entry (pruned since).
async fn ended_yesterday(osr: &Osr, ctx: &koppel_shared::Ctx) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let (start, end) = (day(-30), day(-1));
    let ended = json!({
        "workspace_id": osr.ws, "id": id, "connector_id": osr.connector,
        "mandate_token": osr.mandate, "administration_id": ADMINISTRATION,
        "service_version_namespace": NAMESPACE, "url": "https://t2.nl",
        "start_date": start, "end_date": end,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "version": 1,
    });
    put_raw(ctx, &osr.ws, format!("ENDPOINT#{id}"), &ended).await;
    let entry = json!({
        "id": id, "connector_id": osr.connector, "service_version_namespace": NAMESPACE,
        "start_date": start, "end_date": end,
    });
    put_at(
        ctx,
        format!("WS#{}#EPADM#{ADMINISTRATION}", osr.ws),
        format!("EP#{start}#{id}"),
        &entry,
    )
    .await;
    id
}

#[tokio::test]
async fn the_list_of_a_pair_keeps_the_endpoints_that_have_ended() {
    let osr = Osr::new().await;
    let ctx = koppel_shared::Ctx::from_env()
        .await
        .expect("KOPPEL_* settings");
    let ended = ended_yesterday(&osr, &ctx).await;
    let post = |start: String, end: Option<String>| {
        let osr = &osr;
        async move {
            let body = osr.seed_body(&start, end.as_deref());
            let r = osr
                .as_supplier("POST", "/api/v1/endpoints", Some(&body))
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            s(&r.body["id"]).to_owned()
        }
    };
    // Registered later, out of start order; the writes prune the slot.
    let later = post(day(5), None).await;
    let today = post(day(0), Some(day(2))).await;
    let slot = slot_item(&ctx, &osr.ws).await;
    assert!(
        !slot["entries"].to_string().contains(&ended),
        "the slot forgot it: {slot}"
    );
    // Another service version of the same administration is not this pair's.
    let other_ns = "https://ns.example/other";
    let r = osr
        .as_owner(
            "POST",
            "/api/v1/service-versions",
            Some(&json!({ "namespace": other_ns })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let grant = json!({
        "connector_id": osr.connector, "administration_id": ADMINISTRATION,
        "service_version_namespace": other_ns,
    });
    let r = osr.as_owner("POST", "/api/v1/mandates", Some(&grant)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut body = osr.seed_body(&day(0), None);
    body["mandate_token"] = r.body["mandate_token"].clone();
    body["service_version_namespace"] = json!(other_ns);
    let r = osr
        .as_supplier("POST", "/api/v1/endpoints", Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let pair = |extra: String, limit: usize| {
        format!(
            "/api/v1/endpoints?administration_id={ADMINISTRATION}\
             &service_version_namespace={NAMESPACE}{extra}&limit={limit}"
        )
    };
    let ids = |items: Vec<Value>| -> Vec<String> {
        items.iter().map(|i| s(&i["id"]).to_owned()).collect()
    };
    for auth in [&osr.supplier, &osr.owner] {
        // A past date: the endpoint active then, though it ended yesterday.
        let got = all_pages(auth, &pair(format!("&date={}", day(-10)), 1), 1, 5).await;
        assert_eq!(ids(got.clone()), std::slice::from_ref(&ended));
        assert_eq!(got[0]["end_date"], day(-1).as_str());
        // Every endpoint the pair ever had, in start-date order, one page at a time.
        for limit in [1, 2, 50] {
            let got = all_pages(auth, &pair(String::new(), limit), limit, 10).await;
            assert_eq!(
                ids(got),
                [ended.clone(), today.clone(), later.clone()],
                "limit={limit}"
            );
        }
        let got = all_pages(auth, &pair(format!("&date={}", day(6)), 50), 50, 2).await;
        assert_eq!(ids(got), std::slice::from_ref(&later));
    }

    // A moved start moves the endpoint in the list; it is listed once.
    let mut moved = osr.seed_body(&day(3), Some(&day(4)));
    moved["url"] = json!("https://moved.example");
    let r = osr
        .as_supplier("PUT", &format!("/api/v1/endpoints/{today}"), Some(&moved))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = all_pages(&osr.owner, &pair(String::new(), 50), 50, 2).await;
    assert_eq!(
        ids(got.clone()),
        [ended.clone(), today.clone(), later.clone()]
    );
    assert_eq!(got[1]["start_date"], day(3).as_str());
    assert_eq!(got[1]["url"], "https://moved.example");
    let got = all_pages(&osr.owner, &pair(format!("&date={}", day(0)), 50), 50, 2).await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn the_served_document_describes_the_osr_routes_and_the_answers_conform() {
    use koppel_e2e::contract::{self, assert_conforms, operation, parameters, property_names};
    let doc = contract::document().await;
    let osr = Osr::new().await;
    let conforms = |method: &str, path: &str, status: u16, body: &Value| {
        let schema = contract::response_schema(&doc, method, path, status);
        assert_conforms(&doc, schema, body);
        // Every field answered is a documented one, by the seed's own name.
        let mut answered: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        answered.sort();
        assert_eq!(answered, property_names(&doc, schema), "{method} {path}");
    };

    // The seed's POST body is the documented request, field for field.
    let create = operation(&doc, "POST", "/api/v1/endpoints");
    let request = contract::resolve(
        &doc,
        &create["requestBody"]["content"]["application/json"]["schema"],
    );
    assert!(request.get("additionalProperties").is_none());
    let mut required: Vec<&str> = request["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(
        required,
        [
            "administration_id",
            "mandate_token",
            "service_version_namespace",
            "url"
        ]
    );
    let body = osr.seed_body(&day(1), Some(&day(2)));
    let mut sent: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    sent.sort();
    assert_eq!(sent, property_names(&doc, request));
    assert_conforms(&doc, request, &body);
    assert!(create["responses"]["409"].is_object());
    assert!(create["responses"]["201"]["headers"]["Location"].is_object());

    let r = osr
        .as_supplier("POST", "/api/v1/endpoints", Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    conforms("POST", "/api/v1/endpoints", 201, &r.body);
    let path = format!("/api/v1/endpoints/{}", s(&r.body["id"]));
    let g = osr.as_supplier("GET", &path, None).await;
    conforms("GET", "/api/v1/endpoints/{id}", 200, &g.body);
    let u = osr.as_supplier("PUT", &path, Some(&body)).await;
    assert_eq!(u.status, 200, "{}", u.body);
    conforms("PUT", "/api/v1/endpoints/{id}", 200, &u.body);
    let list = operation(&doc, "GET", "/api/v1/endpoints");
    assert_eq!(
        parameters(list, "query"),
        [
            "administration_id",
            "service_version_namespace",
            "date",
            "limit",
            "cursor"
        ]
    );
    let l = osr.as_owner("GET", "/api/v1/endpoints?limit=1", None).await;
    conforms("GET", "/api/v1/endpoints", 200, &l.body);
    assert!(l.body["next_cursor"].is_null());

    let m = osr.as_owner("GET", "/api/v1/mandates", None).await;
    conforms("GET", "/api/v1/mandates", 200, &m.body);
    conforms("POST", "/api/v1/mandates", 201, &m.body["items"][0]);
    let v = osr.as_owner("GET", "/api/v1/service-versions", None).await;
    conforms("GET", "/api/v1/service-versions", 200, &v.body);
    conforms("POST", "/api/v1/service-versions", 201, &v.body["items"][0]);
    let retire = format!(
        "/api/v1/service-versions/{}/retire",
        s(&v.body["items"][0]["id"])
    );
    let r = osr.as_owner("POST", &retire, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    conforms("POST", "/api/v1/service-versions/{id}/retire", 200, &r.body);
    assert!(r.body["retired_at"].is_string());
    let revoke = format!("/api/v1/mandates/{}", osr.mandate);
    let r = osr.as_owner("DELETE", &revoke, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    conforms("DELETE", "/api/v1/mandates/{mandate_token}", 200, &r.body);
    assert!(r.body["revoked_at"].is_string());
}
