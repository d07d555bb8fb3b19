//! Support for the end-to-end tests: the running stack's address, the seeded demo, the
//! admin CLI for fixtures, and request helpers. `tools/test.sh` starts the stack and sets
//! the `KOPPEL_E2E_*` variables.

pub mod admin;
pub mod cases;
pub mod contract;
pub mod receiver;
pub mod stack;

use std::process::Command;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub use admin::{NewConnector, NewCredential, NewUser, NewWorkspace, jwt_key};

pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the end-to-end tests through tools/test.sh")
    })
}

pub fn base_url() -> String {
    var("KOPPEL_E2E_BASE_URL")
}

pub fn base_url_v6() -> String {
    var("KOPPEL_E2E_BASE_URL_V6")
}

/// The demo workspace `koppel-admin demo` wrote.
pub fn demo() -> Value {
    let path = var("KOPPEL_E2E_DEMO");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("demo JSON")
}

pub fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// Runs `koppel-admin --json <args>` and returns its JSON; panics if it fails.
pub fn admin(args: &[&str]) -> Value {
    admin_with(&[], args)
}

/// [`admin`] with `env` over this process's environment (another stack's resources).
pub fn admin_with(env: &[(String, String)], args: &[&str]) -> Value {
    let out = Command::new(var("KOPPEL_E2E_ADMIN"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--json")
        .args(args)
        .output()
        .expect("run koppel-admin");
    assert!(
        out.status.success(),
        "koppel-admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("koppel-admin prints JSON")
}

/// `koppel-admin --json args` expected to fail: the error it prints (JSON on stderr).
pub fn admin_error(args: &[&str]) -> String {
    let out = Command::new(var("KOPPEL_E2E_ADMIN"))
        .arg("--json")
        .args(args)
        .output()
        .expect("run koppel-admin");
    assert!(
        !out.status.success(),
        "koppel-admin {args:?} should have failed"
    );
    let err: Value = serde_json::from_slice(&out.stderr).expect("the error as JSON");
    err["error"]["message"]
        .as_str()
        .expect("an error message")
        .to_owned()
}

/// A connector of the demo workspace acting for `acting_user`, with `cases:read` and
/// `dsr:read`.
pub fn demo_connector(acting_user: &str) -> NewConnector {
    NewConnector::sample(s(&demo()["workspace_id"]), acting_user)
        .scopes(&["cases:read", "dsr:read"])
}

/// An API key of a demo workspace connector.
pub fn demo_key(connector: &str) -> NewCredential {
    NewCredential::key(s(&demo()["workspace_id"]), connector)
}

/// A connector token of a demo workspace connector.
pub fn demo_token(connector: &str) -> NewCredential {
    NewCredential::token(s(&demo()["workspace_id"]), connector)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts a problem+json error with `status` that carries the request id.
    pub fn assert_problem(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.headers["content-type"], "application/problem+json");
        assert_eq!(self.body["status"], status, "body: {}", self.body);
        let rid = s(&self.body["request_id"]);
        assert!(!rid.is_empty());
        assert_eq!(self.headers["x-amzn-requestid"], rid);
        assert!(s(&self.body["type"]).starts_with("urn:koppel:problem:"));
    }
}

pub async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(base, "GET", path, headers, None).await
}

/// Any request; `body`, when given, is sent as `application/json` unless `headers` name
/// another `Content-Type`.
pub async fn send(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(b) = body {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.header("content-type", "application/json");
        }
        req = req.body(b.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request reaches the local gateway");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn me(headers: &[(&str, &str)]) -> Reply {
    get(&base_url(), "/v1/me", headers).await
}

pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Claims the demo connector's JWTs carry, valid for five minutes, with a fresh `jti`.
pub fn jwt_claims(d: &Value) -> Value {
    let n = now();
    json!({
        "iss": d["jwt"]["iss"], "aud": d["jwt"]["aud"], "iat": n, "exp": n + 300,
        "jti": uuid::Uuid::new_v4().to_string(), "sub": "e2e",
    })
}

/// Signs `claims` with the demo's private key (ES256) under `kid`.
pub fn sign(d: &Value, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ec_pem(s(&d["jwt"]["private_key_pem"]).as_bytes()).expect("PEM");
    encode(&h, claims, &key).expect("sign")
}

/// The queue the local stack copies every consumed event to (`koppel-local serve
/// --tap-queue`): tests watch events there, as the stack's dispatcher takes them from the
/// events queue itself.
pub async fn events_tap_url(sqs: &aws_sdk_sqs::Client) -> String {
    let name = var("KOPPEL_E2E_EVENTS_TAP");
    sqs.get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("tap queue {name}: {e}"))
        .queue_url()
        .expect("queue url")
        .to_owned()
}

/// A new workspace of a test's own (its counts are exact and no rate limit is shared with
/// other tests): (workspace id, owner user id).
pub fn new_workspace(name: &str) -> (String, String) {
    new_workspace_by(&admin, name)
}

/// [`new_workspace`] through `admin` (e.g. another stack's).
pub fn new_workspace_by(admin: admin::Admin, name: &str) -> (String, String) {
    let w = NewWorkspace::sample(name).create_by(admin);
    (s(&w["id"]).to_owned(), s(&w["owner"]["id"]).to_owned())
}

/// A personal access token for `user`, allowed 1000 requests a minute: (id, secret).
pub fn personal_token(workspace: &str, user: &str) -> (String, String) {
    personal_token_by(&admin, workspace, user)
}

/// [`personal_token`] through `admin` (e.g. another stack's).
pub fn personal_token_by(admin: admin::Admin, workspace: &str, user: &str) -> (String, String) {
    let pat = NewCredential::pat(workspace, user)
        .rate_limit(1000)
        .issue_by(admin);
    (s(&pat["id"]).to_owned(), s(&pat["secret"]).to_owned())
}

/// Every page of a list, following `next_cursor` from `path` (which carries `limit=`), with
/// the `Authorization` header `auth`: the items in order. Fails if a page is not a 200,
/// holds more than `limit` items, or the list does not end within `max_pages`.
pub async fn all_pages(auth: &str, path: &str, limit: usize, max_pages: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..max_pages {
        let url = match &cursor {
            None => path.to_owned(),
            Some(c) => format!("{path}{sep}cursor={c}"),
        };
        let r = get(&base_url(), &url, &[("Authorization", auth)]).await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        let page = r.body["items"].as_array().expect("items").clone();
        assert!(page.len() <= limit, "{url}: {} items", page.len());
        items.extend(page);
        match r.body["next_cursor"].as_str() {
            None => {
                assert!(r.body["next_cursor"].is_null(), "{}", r.body);
                return items;
            }
            Some(c) => cursor = Some(c.to_owned()),
        }
    }
    panic!("{path}: no last page within {max_pages} pages");
}

/// The fields a 422 names.
pub fn problem_fields(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| s(&e["field"]).to_owned()).collect())
        .unwrap_or_default()
}

/// A list at `path` (no query string) refuses a bad `limit` and any cursor it did not give
/// out for this very list with a 422 naming the parameter: made up, a table key, changed in
/// one character, or `foreign` (a real cursor of another list or workspace).
pub async fn assert_paging_refuses(auth: &str, path: &str, foreign: &[&str]) {
    let call = |query: String| async move {
        get(
            &base_url(),
            &format!("{path}?{query}"),
            &[("Authorization", auth)],
        )
        .await
    };
    for limit in ["0", "201", "-1", "ten", "1.5", ""] {
        let r = call(format!("limit={limit}")).await;
        r.assert_problem(422);
        assert_eq!(problem_fields(&r), ["limit"], "limit={limit}: {}", r.body);
    }
    let first = call("limit=1".into()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let real = s(&first.body["next_cursor"]).to_owned();
    // One character changed in the middle: the tag no longer matches.
    let mut tampered: Vec<char> = real.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let mut bad = vec![
        "garbage",
        "VVNFUiN1c3Jf",
        "USER%23x",
        "AAAAAAAAAAAAAAAAAAAAAAAA",
    ];
    bad.push(&tampered);
    bad.extend_from_slice(foreign);
    for c in bad {
        let r = call(format!("limit=1&cursor={c}")).await;
        r.assert_problem(422);
        assert_eq!(problem_fields(&r), ["cursor"], "cursor={c}: {}", r.body);
    }
    let r = call(format!("limit=0&cursor={tampered}")).await;
    assert_eq!(problem_fields(&r), ["limit", "cursor"], "{}", r.body);
    // The real one still works.
    assert_eq!(call(format!("limit=1&cursor={real}")).await.status, 200);
}

/// Mails the emulator's SES has sent to `to`, oldest first: (subject, body). Read from the
/// emulator's own `/koppel/mail` (tools/py/emulator.py), as a developer reads them locally.
pub async fn mails_to(to: &str) -> Vec<(String, String)> {
    let endpoint = var("AWS_ENDPOINT_URL");
    let endpoint = endpoint.trim_end_matches('/');
    let url = url::Url::parse_with_params(&format!("{endpoint}/koppel/mail"), [("to", to)])
        .expect("endpoint URL");
    let data: Value = reqwest::get(url)
        .await
        .expect("emulator")
        .json()
        .await
        .expect("JSON");
    let mut mails: Vec<(String, String)> = data["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["subject"].as_str().unwrap_or_default().to_owned(),
                m["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    mails.reverse();
    mails
}
