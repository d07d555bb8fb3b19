//! Every credential kind on `/v1/me`, and every way a credential is refused, end to end
//! through the local gateway, the real authorizer and the `tokens` function.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use koppel_e2e::*;
use koppel_shared::credential::{self, CredentialKind};
use p256::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};

fn api_key_headers(d: &Value) -> [(&'static str, String); 2] {
    [
        ("API-Interface-Id", s(&d["connector"]["id"]).to_owned()),
        ("API-Key", s(&d["connector"]["api_key"]).to_owned()),
    ]
}

fn refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

#[tokio::test]
async fn api_key_with_interface_id_is_accepted() {
    let d = demo();
    let r = me(&refs(&api_key_headers(&d))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["workspace"]["id"], d["workspace_id"]);
    assert_eq!(r.body["connector"]["id"], d["connector"]["id"]);
    assert_eq!(r.body["credential"]["kind"], "api_key");
    assert_eq!(r.body["user"]["id"], d["users"]["owner"]["id"]);
    assert_eq!(r.body["access_level"], "handle");
    assert_eq!(r.body["scopes"], d["connector"]["scopes"]);
    assert_eq!(r.body["rate_limit"]["limit"], 30);
    assert_eq!(r.headers["ratelimit-limit"], "30");
    assert!(r.headers.contains_key("ratelimit-remaining"));
    assert!(r.headers.contains_key("ratelimit-reset"));
}

#[tokio::test]
async fn connector_token_is_accepted() {
    let d = demo();
    let r = me(&[("Authorization", &bearer(s(&d["connector"]["token"])))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["credential"]["kind"], "connector_token");
    assert_eq!(r.body["connector"]["id"], d["connector"]["id"]);
}

#[tokio::test]
async fn personal_access_token_is_accepted() {
    let d = demo();
    let r = me(&[("Authorization", &bearer(s(&d["users"]["reader"]["pat"])))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["credential"]["kind"], "personal_access_token");
    assert_eq!(r.body["user"]["id"], d["users"]["reader"]["id"]);
    assert_eq!(r.body["connector"], Value::Null);
    assert_eq!(r.body["access_level"], "read");
}

#[tokio::test]
async fn jwt_in_bearer_and_in_jwt_header_are_accepted() {
    let d = demo();
    let kid = s(&d["jwt"]["kid"]);
    let t = sign(&d, kid, &jwt_claims(&d));
    let r = me(&[("Authorization", &bearer(&t))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["credential"]["kind"], "jwt");
    assert_eq!(r.body["connector"]["id"], d["jwt"]["connector_id"]);

    let t = sign(&d, kid, &jwt_claims(&d));
    let r = me(&[("JWT", &t)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["credential"]["kind"], "jwt");
}

#[tokio::test]
async fn missing_and_malformed_credentials_are_401() {
    me(&[]).await.assert_problem(401);
    for h in [
        ("Authorization", "Token abc"),
        ("Authorization", "Bearer"),
        ("Authorization", "Basic dXNlcjpwYXNz"),
        ("Authorization", "Bearer not-a-koppel-token"),
        ("JWT", "not.a.jwt!"),
        ("API-Interface-Id", "con_x"),
    ] {
        let r = me(&[h]).await;
        r.assert_problem(401);
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"koppel\"");
    }
}

#[tokio::test]
async fn bad_checksum_and_wrong_keys_are_401() {
    let d = demo();
    let con = s(&d["connector"]["id"]);
    let key = s(&d["connector"]["api_key"]);

    // One character of the secret changed: the checksum catches it.
    let pos = key.len() - 12;
    let c = if &key[pos..=pos] == "a" { "b" } else { "a" };
    let typo = format!("{}{c}{}", &key[..pos], &key[pos + 1..]);
    assert!(matches!(
        credential::parse(&typo),
        Err(credential::FormatError::BadChecksum)
    ));
    me(&[("API-Interface-Id", con), ("API-Key", &typo)])
        .await
        .assert_problem(401);

    // Well formed, but no such key.
    let unknown = credential::generate(CredentialKind::ApiKey).plaintext;
    me(&[("API-Interface-Id", con), ("API-Key", &unknown)])
        .await
        .assert_problem(401);

    // The real key id with another secret and a valid checksum.
    let id_part = &key[..key.len() - 6 - 32];
    let body = format!("{id_part}{}", "Z".repeat(32));
    let forged = format!("{body}{}", credential::checksum(&body));
    assert!(credential::parse(&forged).is_ok());
    me(&[("API-Interface-Id", con), ("API-Key", &forged)])
        .await
        .assert_problem(401);

    // A connector token presented as an API key, and an API key as a bearer token.
    let token = s(&d["connector"]["token"]);
    me(&[("API-Interface-Id", con), ("API-Key", token)])
        .await
        .assert_problem(401);
    me(&[("Authorization", &bearer(key))])
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn key_of_another_connector_is_401() {
    let d = demo();
    let other = demo_connector(s(&d["users"]["owner"]["id"]))
        .level("read")
        .id();
    let (_, other_key) = demo_key(&other).secret();
    assert_eq!(
        me(&[("API-Interface-Id", &other), ("API-Key", &other_key)])
            .await
            .status,
        200
    );
    let r = me(&[
        ("API-Interface-Id", s(&d["connector"]["id"])),
        ("API-Key", &other_key),
    ])
    .await;
    r.assert_problem(401);
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_401() {
    let d = demo();
    let con = s(&d["connector"]["id"]);
    let (id, token) = demo_token(con).name("to revoke").secret();
    assert_eq!(me(&[("Authorization", &bearer(&token))]).await.status, 200);
    admin(&["credential", "revoke", "--credential", &id]);
    me(&[("Authorization", &bearer(&token))])
        .await
        .assert_problem(401);

    let (_, short) = demo_token(con).expires_in("1s").secret();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    me(&[("Authorization", &bearer(&short))])
        .await
        .assert_problem(401);

    let ws = s(&d["workspace_id"]);
    let owner = s(&d["users"]["owner"]["id"]);
    let pat = NewCredential::pat(ws, owner).expires_in("1s").issue();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    me(&[("Authorization", &bearer(s(&pat["secret"])))])
        .await
        .assert_problem(401);
}

/// The demo key pair's public half, as registered.
fn public_jwk(d: &Value) -> Value {
    let sk = p256::SecretKey::from_pkcs8_pem(s(&d["jwt"]["private_key_pem"])).expect("PEM");
    let mut jwk: Value = serde_json::from_str(&sk.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = d["jwt"]["kid"].clone();
    jwk
}

#[tokio::test]
async fn bad_jwts_are_401() {
    let d = demo();
    let kid = s(&d["jwt"]["kid"]);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": kid})),
        b64(&jwt_claims(&d))
    );
    me(&[("Authorization", &bearer(&none))])
        .await
        .assert_problem(401);
    me(&[("JWT", &none)]).await.assert_problem(401);

    // HS256 with the public key as the shared secret: the classic key-confusion attack.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.into());
    let secret = public_jwk(&d).to_string();
    let hs = encode(
        &h,
        &jwt_claims(&d),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    me(&[("JWT", &hs)]).await.assert_problem(401);

    let mut expired = jwt_claims(&d);
    expired["iat"] = json!(now() - 600);
    expired["exp"] = json!(now() - 120);
    me(&[("JWT", &sign(&d, kid, &expired))])
        .await
        .assert_problem(401);

    let mut too_long = jwt_claims(&d);
    too_long["exp"] = json!(now() + 86_400);
    me(&[("JWT", &sign(&d, kid, &too_long))])
        .await
        .assert_problem(401);

    let mut aud = jwt_claims(&d);
    aud["aud"] = json!("someone-else");
    me(&[("JWT", &sign(&d, kid, &aud))])
        .await
        .assert_problem(401);

    let mut iss = jwt_claims(&d);
    iss["iss"] = json!("https://unknown-issuer.example");
    me(&[("JWT", &sign(&d, kid, &iss))])
        .await
        .assert_problem(401);

    let mut no_exp = jwt_claims(&d);
    no_exp.as_object_mut().unwrap().remove("exp");
    me(&[("JWT", &sign(&d, kid, &no_exp))])
        .await
        .assert_problem(401);

    me(&[("JWT", &sign(&d, "no-such-kid", &jwt_claims(&d)))])
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn replayed_jti_is_401() {
    let d = demo();
    let t = sign(&d, s(&d["jwt"]["kid"]), &jwt_claims(&d));
    assert_eq!(me(&[("JWT", &t)]).await.status, 200);
    me(&[("JWT", &t)]).await.assert_problem(401);
    me(&[("Authorization", &bearer(&t))])
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn disabled_connector_is_403_and_enabling_restores_it() {
    let d = demo();
    let ws = s(&d["workspace_id"]);
    let con = demo_connector(s(&d["users"]["owner"]["id"]))
        .level("read")
        .id();
    let (_, key) = demo_key(&con).secret();
    let (_, token) = demo_token(&con).secret();
    assert_eq!(
        me(&[("API-Interface-Id", &con), ("API-Key", &key)])
            .await
            .status,
        200
    );
    admin(&[
        "connector",
        "disable",
        "--workspace",
        ws,
        "--connector",
        &con,
    ]);
    me(&[("API-Interface-Id", &con), ("API-Key", &key)])
        .await
        .assert_problem(403);
    me(&[("Authorization", &bearer(&token))])
        .await
        .assert_problem(403);
    admin(&[
        "connector",
        "enable",
        "--workspace",
        ws,
        "--connector",
        &con,
    ]);
    assert_eq!(me(&[("Authorization", &bearer(&token))]).await.status, 200);
}

#[tokio::test]
async fn user_without_api_access_is_403() {
    let d = demo();
    let ws = s(&d["workspace_id"]);
    let uid = &NewUser::sample(ws).name("Tijdelijk").api_access(true).id();
    let pat = NewCredential::pat(ws, uid).issue();
    let auth = bearer(s(&pat["secret"]));
    assert_eq!(me(&[("Authorization", &auth)]).await.status, 200);
    admin(&[
        "user",
        "update",
        "--workspace",
        ws,
        "--user",
        uid,
        "--api-access",
        "false",
    ]);
    let r = me(&[("Authorization", &auth)]).await;
    r.assert_problem(403);
    // A denial never says which check failed.
    assert!(!r.body.to_string().contains("api_access"));
}

#[tokio::test]
async fn ip_allow_list_v4_and_v6() {
    let d = demo();
    let owner = s(&d["users"]["owner"]["id"]);
    let key_for = |allow: &[&str]| {
        let con = demo_connector(owner).level("read").allow_ips(allow).id();
        let (_, key) = demo_key(&con).secret();
        (con, key)
    };
    let v4 = base_url();
    let v6 = base_url_v6();
    let call = |base: &str, con: &str, key: &str| {
        let (base, con, key) = (base.to_owned(), con.to_owned(), key.to_owned());
        async move {
            get(
                &base,
                "/v1/me",
                &[("API-Interface-Id", &con), ("API-Key", &key)],
            )
            .await
        }
    };

    let (con, key) = key_for(&["10.0.0.0/8"]);
    call(&v4, &con, &key).await.assert_problem(403);

    let (con, key) = key_for(&["127.0.0.1/32"]);
    assert_eq!(call(&v4, &con, &key).await.status, 200);
    call(&v6, &con, &key).await.assert_problem(403);

    let (con, key) = key_for(&["2001:db8::/32"]);
    call(&v6, &con, &key).await.assert_problem(403);

    let (con, key) = key_for(&["::1/128"]);
    assert_eq!(call(&v6, &con, &key).await.status, 200);
    call(&v4, &con, &key).await.assert_problem(403);
}

#[tokio::test]
async fn handle_connector_for_read_employee_reports_read() {
    let d = demo();
    let con = demo_connector(s(&d["users"]["reader"]["id"]))
        .level("handle")
        .id();
    let (_, token) = demo_token(&con).secret();
    let r = me(&[("Authorization", &bearer(&token))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["connector"]["access_level"], "handle");
    assert_eq!(r.body["user"]["rights"], "read");
    assert_eq!(r.body["access_level"], "read");
}

#[tokio::test]
async fn token_scopes_are_intersected_with_the_connector() {
    let d = demo();
    let con = demo_connector(s(&d["users"]["owner"]["id"]))
        .level("read")
        .id();
    let (_, token) = demo_token(&con)
        .scope("dsr:read")
        .scope("cases:write")
        .secret();
    let r = me(&[("Authorization", &bearer(&token))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scopes"], json!(["dsr:read"]));
}

#[tokio::test]
async fn the_31st_request_in_a_minute_is_429() {
    let d = demo();
    let con = demo_connector(s(&d["users"]["owner"]["id"]))
        .level("read")
        .id();
    let (_, token) = demo_token(&con).secret();
    let auth = bearer(&token);
    // Stay inside one fixed window: start early in a minute (waits at most 20 s).
    let into_minute = now().rem_euclid(60);
    if into_minute > 40 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - into_minute) as u64)).await;
    }
    for i in 1..=30 {
        let r = me(&[("Authorization", &auth)]).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
        assert_eq!(
            r.headers["ratelimit-remaining"],
            (30 - i).to_string().as_str()
        );
    }
    let r = me(&[("Authorization", &auth)]).await;
    r.assert_problem(429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert_eq!(r.headers["ratelimit-limit"], "30");
    // Another credential is not affected.
    assert_eq!(me(&refs(&api_key_headers(&d))).await.status, 200);
}

#[tokio::test]
async fn configured_rate_limit_applies() {
    let d = demo();
    let con = demo_connector(s(&d["users"]["owner"]["id"]))
        .level("read")
        .rate_limit(100)
        .id();
    let (_, token) = demo_token(&con).secret();
    let r = me(&[("Authorization", &bearer(&token))]).await;
    assert_eq!(r.body["rate_limit"]["limit"], 100);
    assert_eq!(r.headers["ratelimit-limit"], "100");
    let (_, narrow) = demo_token(&con).rate_limit(5).secret();
    let r = me(&[("Authorization", &bearer(&narrow))]).await;
    assert_eq!(r.headers["ratelimit-limit"], "5");
}

#[tokio::test]
async fn unknown_route_or_method_is_404_problem() {
    let d = demo();
    let auth = bearer(s(&d["connector"]["token"]));
    get(&base_url(), "/v1/nope", &[("Authorization", &auth)])
        .await
        .assert_problem(404);
    let client = reqwest::Client::new();
    let r = client
        .delete(format!("{}/v1/me", base_url()))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

/// A validly signed JWT above the credential bound (8 KiB) is refused unread: 401 from
/// the authorizer, and above API Gateway's 10 KiB of headers the gateway itself refuses.
#[tokio::test]
async fn an_oversized_signed_jwt_is_refused() {
    let d = demo();
    let kid = s(&d["jwt"]["kid"]).to_owned();
    let padded = |bytes: usize| {
        let mut claims = jwt_claims(&d);
        claims["pad"] = "x".repeat(bytes).into();
        sign(&d, &kid, &claims)
    };
    // Just under the bound it is an ordinary JWT.
    // Base64 makes a claim a third longer.
    let fits = padded(5500);
    assert!(fits.len() < 8 * 1024);
    assert_eq!(me(&[("JWT", &fits)]).await.status, 200);
    let big = padded(6800);
    assert!(big.len() > 8 * 1024 && big.len() < 10 * 1024 - 200);
    me(&[("JWT", &big)]).await.assert_problem(401);
    let bearer = format!("Bearer {big}");
    me(&[("Authorization", &bearer)]).await.assert_problem(401);
    let huge = padded(100 * 1024);
    me(&[("JWT", &huge)]).await.assert_problem(413);
}
