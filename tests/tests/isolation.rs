//! The isolation matrix: every route of template.yaml that takes a path parameter, called
//! by every kind of credential of workspace A with the ids of workspace B — and nothing of
//! B is reached, changed or shown.
//!
//! Routes come from template.yaml through the local gateway's own reader, so a new route is
//! in the matrix the moment it is in the template. Each `{param}` is filled by the segment
//! before it (`connectors/{id}`, `subscriptions/{subscriptionId}`, …); a parameter this file
//! has no id for fails the test with "add a foreign id for {param}", and a write route whose
//! body this file does not know fails until [`body_for`] gives it a plausible one.
//!
//! Both workspaces are fresh and hold one of every resource that has an id (A's case and
//! data-subject request numbers are below B's: those ids count per workspace, so only B's
//! later numbers are foreign to A). A's credentials: its connector's API key, connector
//! token and JWT (a key of its own registered on the connector), a token issued by OTP to
//! A's owner through that connector, and the owner's personal access token — all allowed
//! 1000 requests a minute, so the demo's rate limits are not shared with other tests.
//!
//! The rule, for each route, each credential kind and each way of filling the parameters
//! with B's ids (all of them, or A's own for a leading part and B's for the rest, e.g. A's
//! connector with B's subscription):
//! - the answer is 401, 403 or 404 — never 2xx, never 5xx, and nothing that means the
//!   resource was found (409, 412, 422, …);
//! - it is the answer (status and problem type) the same call gets with ids that exist
//!   nowhere: a foreign id is indistinguishable from a missing one, so a 401 or 403 is only
//!   allowed where the credential kind is refused for that route whatever the id;
//! - where that kind reads the route with A's own ids (GET, 2xx), a foreign id is 404;
//! - no answer (body or headers) carries any of B's ids other than those in the URL, nor B's
//!   names or secret values;
//! - at least one credential kind gets 404 (gets as far as looking the id up), and for a
//!   `GET` route at least one reads A's own ids: otherwise the matrix proves nothing.
//!
//! Afterwards every one of B's resources reads (with B's owner's token) as before, and B's
//! webhook receiver got nothing beyond B's own ping. The `GET` routes without parameters
//! are called by every kind too (with B's administration and namespace where the route
//! filters by them), and must show nothing of B.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use koppel_e2e::receiver::Receiver;
use koppel_e2e::*;
use koppel_local::template::{Route, Template};
use serde_json::{Value, json};

/// Requests in flight at once (the machine and the emulator are small).
const WORKERS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ApiKey,
    ConnectorToken,
    OtpToken,
    PersonalToken,
    Jwt,
}

const KINDS: [Kind; 5] = [
    Kind::ApiKey,
    Kind::ConnectorToken,
    Kind::OtpToken,
    Kind::PersonalToken,
    Kind::Jwt,
];

/// A's credentials, one of each kind.
struct Creds {
    connector: String,
    api_key: String,
    token: String,
    otp_token: String,
    pat: String,
    jwt_pem: String,
    jwt_kid: String,
    jwt_iss: String,
    aud: Value,
}

impl Creds {
    /// The headers that present `kind` (a JWT is signed afresh: its `jti` is single-use).
    fn headers(&self, kind: Kind) -> Vec<(String, String)> {
        let bearer = |t: &str| vec![("Authorization".to_owned(), format!("Bearer {t}"))];
        match kind {
            Kind::ApiKey => vec![
                ("API-Interface-Id".to_owned(), self.connector.clone()),
                ("API-Key".to_owned(), self.api_key.clone()),
            ],
            Kind::ConnectorToken => bearer(&self.token),
            Kind::OtpToken => bearer(&self.otp_token),
            Kind::PersonalToken => bearer(&self.pat),
            Kind::Jwt => {
                let n = now();
                let claims = json!({
                    "iss": self.jwt_iss, "aud": self.aud, "iat": n, "exp": n + 300,
                    "jti": uuid::Uuid::new_v4().to_string(), "sub": "isolation",
                });
                let key = json!({ "jwt": { "private_key_pem": self.jwt_pem } });
                bearer(&sign(&key, &self.jwt_kid, &claims))
            }
        }
    }
}

/// A workspace with one of every resource that has an id, made through the API by its
/// owner (and its connector, for the endpoint), names marked with `tag`.
struct World {
    tag: String,
    ws: String,
    owner: String,
    owner_email: String,
    owner_pat_id: String,
    /// "Bearer …" of the owner's personal token.
    owner_auth: String,
    clerk: String,
    clerk_pat_id: String,
    connector: String,
    api_key_id: String,
    api_key: String,
    token_id: String,
    token: String,
    jwt_pem: String,
    jwt_kid: String,
    jwt_iss: String,
    search: String,
    cases: Vec<(u64, String)>,
    dsrs: Vec<i64>,
    service_version: String,
    namespace: String,
    administration: String,
    mandate: String,
    endpoint: String,
    subscription: String,
    delivery: String,
    certificate: String,
    secrets: [String; 2],
    receiver: Receiver,
}

impl World {
    /// `numbered` cases and data-subject requests: B makes more than A, so that its last
    /// numbers exist in B only.
    async fn build(name: &str, numbered: usize) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let owner_email = format!("owner-{tag}@isolatie.example");
        let w = NewWorkspace::sample(&format!("Gemeente {name} {tag}"))
            .owner_email(&owner_email)
            .owner_name(&format!("Eigenaar {tag}"))
            .create();
        let ws = s(&w["id"]).to_owned();
        let owner = s(&w["owner"]["id"]).to_owned();
        let (owner_pat_id, owner_pat) = personal_token(&ws, &owner);
        let clerk = NewUser::sample(&ws)
            .email(&format!("clerk-{tag}@isolatie.example"))
            .name(&format!("Medewerker {tag}"))
            .rights("read")
            .api_access(true)
            .id();
        let (clerk_pat_id, _) = personal_token(&ws, &clerk);
        let mut w = World {
            tag: tag.clone(),
            ws,
            owner,
            owner_email,
            owner_pat_id,
            owner_auth: format!("Bearer {owner_pat}"),
            clerk,
            clerk_pat_id,
            connector: String::new(),
            api_key_id: String::new(),
            api_key: String::new(),
            token_id: String::new(),
            token: String::new(),
            jwt_pem: String::new(),
            jwt_kid: String::new(),
            jwt_iss: String::new(),
            search: String::new(),
            cases: Vec::new(),
            dsrs: Vec::new(),
            service_version: String::new(),
            namespace: format!("https://{tag}.isolatie.example/osr/v1"),
            administration: format!("ADM{tag}"),
            mandate: String::new(),
            endpoint: String::new(),
            subscription: String::new(),
            delivery: String::new(),
            certificate: String::new(),
            secrets: [format!("pw-{tag}"), format!("hdr-{tag}")],
            receiver: Receiver::start(&[]).await,
        };
        // A search that shows every case and every column: a case is hidden from A's
        // connector only by belonging to another workspace.
        w.search = w
            .created(
                "/v1/saved-searches",
                json!({
                    "name": format!("Alles {tag}"), "filters": {},
                    "columns": ["subject", "phase", "requester.name", "requester.email",
                        "requester.bsn", "requester.kvk", "assignee", "department", "result",
                        "confidentiality"],
                }),
            )
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        w.connector = w
            .created(
                "/v1/connectors",
                json!({
                    "description": format!("Partner {tag}"),
                    "acting_user_id": w.owner, "access_level": "handle",
                    "scopes": ["cases:read", "cases:write", "cases:export", "dsr:read",
                        "dsr:write", "endpoints:read", "endpoints:write", "webhooks:manage"],
                    "rate_limit": 1000, "saved_search_id": w.search,
                }),
            )
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        (w.api_key_id, w.api_key) = NewCredential::key(&w.ws, &w.connector)
            .rate_limit(1000)
            .secret();
        (w.token_id, w.token) = NewCredential::token(&w.ws, &w.connector)
            .rate_limit(1000)
            .secret();
        w.jwt_iss = format!("https://{tag}.isolatie.example/jwt");
        let jwt = jwt_key(&w.ws, &w.connector, &w.jwt_iss, &format!("k-{tag}"));
        w.jwt_pem = s(&jwt["private_key_pem"]).to_owned();
        w.jwt_kid = s(&jwt["kid"]).to_owned();

        let sub = w
            .created(
                &format!("/v1/connectors/{}/subscriptions", w.connector),
                json!({
                    "url": w.receiver.url, "ca_certificate_pem": w.receiver.ca_pem,
                    // An event nothing in this test causes — unless B's mandate is revoked.
                    "event_types": ["mandate.revoked"],
                    "basic_auth": { "username": "koppel", "password": w.secrets[0] },
                    "headers": [{ "name": "X-Partner-Key", "value": w.secrets[1], "hidden": true }],
                }),
            )
            .await;
        w.subscription = s(&sub["id"]).to_owned();
        let sub_path = format!(
            "/v1/connectors/{}/subscriptions/{}",
            w.connector, w.subscription
        );
        let ping = w
            .owner_call("POST", &format!("{sub_path}/ping"), None)
            .await;
        assert_eq!(ping.status, 202, "{}", ping.body);
        w.delivery = s(&ping.body["id"]).to_owned();

        // A registered client certificate (not required), named by its fingerprint.
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("Partner {tag}"));
        let pem = p.self_signed(&key).expect("certificate").pem();
        w.certificate = s(&w
            .created(
                &format!("/v1/connectors/{}/certificates", w.connector),
                json!({ "certificate_pem": pem }),
            )
            .await["fingerprint"])
        .to_owned();

        for n in 0..numbered {
            let c = w
                .created(
                    "/v1/cases",
                    json!({
                        "case_type": "Melding openbare ruimte",
                        "subject": format!("Zaak {n} {tag}"),
                        "requester": { "name": format!("Burger {tag}") },
                    }),
                )
                .await;
            w.cases
                .push((c["id"].as_u64().expect("id"), s(&c["uuid"]).to_owned()));
            let d = w
                .created(
                    &format!("/v1/ws/{}/DataSubjectRequests", w.ws),
                    json!({ "title": format!("Inzage {n} {tag}"), "purposes": ["Access"] }),
                )
                .await;
            w.dsrs.push(d["id"].as_i64().expect("id"));
        }

        w.service_version = w
            .created(
                "/api/v1/service-versions",
                json!({ "namespace": w.namespace, "description": format!("Dienst {tag}") }),
            )
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        w.mandate = w
            .created(
                "/api/v1/mandates",
                json!({
                    "connector_id": w.connector, "administration_id": w.administration,
                    "service_version_namespace": w.namespace,
                }),
            )
            .await["mandate_token"]
            .as_str()
            .expect("mandate_token")
            .to_owned();
        let key = [
            ("API-Interface-Id", w.connector.as_str()),
            ("API-Key", w.api_key.as_str()),
        ];
        let e = send(
            &base_url(),
            "POST",
            "/api/v1/endpoints",
            &key,
            Some(&w.endpoint_body()),
        )
        .await;
        assert_eq!(e.status, 201, "{}", e.body);
        w.endpoint = s(&e.body["id"]).to_owned();

        // Settle the ping, so that B's delivery log no longer changes by itself.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = w
                .owner_call(
                    "GET",
                    &format!("{sub_path}/deliveries/{}", w.delivery),
                    None,
                )
                .await;
            assert_eq!(d.status, 200, "{}", d.body);
            if d.body["status"] != "pending" {
                assert_eq!(d.body["status"], "delivered", "{}", d.body);
                break;
            }
            assert!(Instant::now() < deadline, "the ping was not delivered");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        w
    }

    async fn owner_call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        send(
            &base_url(),
            method,
            path,
            &[("Authorization", &self.owner_auth)],
            body,
        )
        .await
    }

    async fn created(&self, path: &str, body: Value) -> Value {
        let r = self.owner_call("POST", path, Some(&body)).await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.body);
        r.body
    }

    /// An OSR endpoint body under this world's mandate.
    fn endpoint_body(&self) -> Value {
        json!({
            "mandate_token": self.mandate, "administration_id": self.administration,
            "service_version_namespace": self.namespace,
            "url": format!("https://{}.isolatie.example/endpoint", self.tag),
        })
    }

    /// The id for each kind of path parameter, keyed as [`param_key`] names them: the last
    /// case and request, which in B are numbers A does not have.
    fn ids(&self) -> HashMap<&'static str, String> {
        let last_case = self.cases.last().expect("a case").0;
        let last_dsr = *self.dsrs.last().expect("a request");
        HashMap::from([
            ("tokens/{id}", self.clerk_pat_id.clone()),
            ("users/{id}", self.clerk.clone()),
            ("tokens/{tokenId}", self.clerk_pat_id.clone()),
            ("connectors/{id}", self.connector.clone()),
            ("credentials/{credentialId}", self.api_key_id.clone()),
            ("endpoints/{id}", self.endpoint.clone()),
            ("mandates/{mandate_token}", self.mandate.clone()),
            ("service-versions/{id}", self.service_version.clone()),
            ("cases/{id}", last_case.to_string()),
            ("saved-searches/{id}", self.search.clone()),
            ("ws/{workspaceId}", self.ws.clone()),
            ("DataSubjectRequests/{id}", last_dsr.to_string()),
            ("subscriptions/{subscriptionId}", self.subscription.clone()),
            ("deliveries/{deliveryId}", self.delivery.clone()),
            ("certificates/{fingerprint}", self.certificate.clone()),
        ])
    }

    /// What must never reach another workspace: every id (numbers aside: they count per
    /// workspace), the tag in every name, and the secret values.
    fn markers(&self) -> Vec<String> {
        let mut m = vec![
            self.tag.clone(),
            self.ws.clone(),
            self.owner.clone(),
            self.owner_pat_id.clone(),
            self.clerk.clone(),
            self.clerk_pat_id.clone(),
            self.connector.clone(),
            self.api_key_id.clone(),
            self.token_id.clone(),
            self.search.clone(),
            self.service_version.clone(),
            self.mandate.clone(),
            self.endpoint.clone(),
            self.subscription.clone(),
            self.delivery.clone(),
            self.certificate.clone(),
            self.receiver.url.clone(),
        ];
        m.extend(self.cases.iter().map(|(_, uuid)| uuid.clone()));
        m.extend(self.secrets.iter().cloned());
        m
    }

    /// Everything of this world as its owner reads it, without what changes by reading.
    async fn snapshot(&self) -> BTreeMap<String, Value> {
        let con = format!("/v1/connectors/{}", self.connector);
        let sub = format!("{con}/subscriptions/{}", self.subscription);
        let dsr = format!("/v1/ws/{}/DataSubjectRequests", self.ws);
        let mut paths = vec![
            "/v1/users".to_owned(),
            format!("/v1/users/{}/tokens", self.owner),
            format!("/v1/users/{}/tokens", self.clerk),
            "/v1/connectors".to_owned(),
            con.clone(),
            format!("{con}/credentials"),
            format!("{con}/subscriptions"),
            sub.clone(),
            format!("{sub}/deliveries"),
            format!("{sub}/deliveries/{}", self.delivery),
            "/v1/saved-searches".to_owned(),
            format!("/v1/saved-searches/{}", self.search),
            "/v1/cases".to_owned(),
            format!("{dsr}?size=500"),
            format!("/api/v1/endpoints/{}", self.endpoint),
            "/api/v1/endpoints".to_owned(),
            "/api/v1/mandates".to_owned(),
            "/api/v1/service-versions".to_owned(),
            "/v1/audit".to_owned(),
        ];
        for (id, _) in &self.cases {
            paths.push(format!("/v1/cases/{id}"));
            paths.push(format!("/v1/cases/{id}/history"));
        }
        for id in &self.dsrs {
            paths.push(format!("{dsr}/{id}"));
        }
        let mut out = BTreeMap::new();
        for p in paths {
            let r = self.owner_call("GET", &p, None).await;
            assert_eq!(r.status, 200, "GET {p}: {}", r.body);
            let mut body = r.body;
            strip_volatile(&mut body);
            out.insert(p, body);
        }
        out
    }
}

/// Fields that change by reading or by the clock alone.
fn strip_volatile(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !matches!(k.as_str(), "last_used_at" | "remainingDays"));
            m.values_mut().for_each(strip_volatile);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

/// The key a path parameter's id is looked up by: the segment before it and its name,
/// e.g. `subscriptions/{subscriptionId}`.
fn param_key(path: &str) -> Vec<(String, String)> {
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .enumerate()
        .filter_map(|(i, seg)| {
            let name = seg.strip_prefix('{')?.strip_suffix('}')?;
            let before = if i > 0 { segments[i - 1] } else { "" };
            Some((format!("{before}/{seg}"), name.to_owned()))
        })
        .collect()
}

/// `path` with its parameters replaced, in order, by `values`.
fn fill(path: &str, values: &[String]) -> String {
    let mut values = values.iter();
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                values.next().expect("a value for every parameter").clone()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// An id of the same shape as `id` that was never issued: a number far beyond any count,
/// or every character after the type prefix turned within its class (digits, `a`–`f`,
/// `g`–`z`, `A`–`Z`), so hex stays hex and the length stays the same.
fn nowhere(id: &str) -> String {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        return format!("9000000{id}");
    }
    let (prefix, rest) = match id.split_once('_') {
        Some((p, r)) if p.bytes().all(|b| b.is_ascii_lowercase()) => (&id[..=p.len()], r),
        _ => ("", id),
    };
    let turn = |c: char, lo: u8, n: u8, by: u8| (lo + (c as u8 - lo + by) % n) as char;
    let rest: String = rest
        .chars()
        .map(|c| match c {
            '0'..='9' => turn(c, b'0', 10, 5),
            'a'..='f' => turn(c, b'a', 6, 3),
            'g'..='z' => turn(c, b'g', 20, 10),
            'A'..='Z' => turn(c, b'A', 26, 13),
            other => other,
        })
        .collect();
    format!("{prefix}{rest}")
}

/// How many leading parameters get A's own id in each variant: 0 (all B's) up to all but
/// the last (a foreign resource under a parent A owns).
fn own_prefixes(params: usize) -> std::ops::Range<usize> {
    0..params
}

/// What an answer is judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    problem: Option<String>,
}

/// The rule of this file (see the top): `foreign` is the answer for B's ids, `missing` for
/// ids that exist nowhere, `own` (GET routes only) for A's own ids.
fn judge(foreign: &Outcome, missing: &Outcome, own: Option<&Outcome>) -> Result<(), String> {
    let s = foreign.status;
    if (200..300).contains(&s) {
        return Err(format!(
            "answered {s}: another workspace's resource was reached"
        ));
    }
    if s >= 500 {
        return Err(format!("answered {s}"));
    }
    if ![401, 403, 404].contains(&s) {
        return Err(format!(
            "answered {s}: the request got past the id (or its body is not plausible: give \
             the route one in body_for)"
        ));
    }
    if foreign != missing {
        return Err(format!(
            "answered {foreign:?} for another workspace's id but {missing:?} for an id that \
             exists nowhere"
        ));
    }
    if own.is_some_and(|o| (200..300).contains(&o.status)) && s != 404 {
        return Err(format!(
            "answered {s}: this credential reads A's own ids, so another workspace's must be 404"
        ));
    }
    Ok(())
}

/// The markers in `text` that the request did not name itself in `url`.
fn leaked<'a>(text: &str, markers: &'a [String], url: &str) -> Vec<&'a str> {
    markers
        .iter()
        .filter(|m| !url.contains(m.as_str()) && text.contains(m.as_str()))
        .map(String::as_str)
        .collect()
}

/// A plausible body for a write route, so that a handler that found the resource would
/// act on it (and B's snapshot would show it); `If-Match: "1"` goes with every PATCH.
fn body_for(method: &str, path: &str, a: &World) -> Option<Value> {
    let taken = format!("taken over {}", a.tag);
    Some(match (method, path) {
        ("PATCH", "/v1/users/{id}") => json!({ "api_access": false }),
        ("POST", "/v1/connectors/{id}/credentials") => json!({ "name": taken }),
        ("PUT", "/api/v1/endpoints/{id}") => a.endpoint_body(),
        ("PATCH", "/v1/cases/{id}") => json!({ "subject": taken }),
        ("PATCH", "/v1/saved-searches/{id}") => json!({ "name": taken }),
        ("POST", "/v1/ws/{workspaceId}/DataSubjectRequests") => {
            json!({ "title": taken, "purposes": ["Access"] })
        }
        ("PUT", "/v1/ws/{workspaceId}/DataSubjectRequests/{id}") => json!({ "title": taken }),
        ("PATCH", "/v1/connectors/{id}") => json!({ "description": taken }),
        ("POST", "/v1/connectors/{id}/manifest") => {
            json!({ "description": taken, "scopes": ["cases:read"] })
        }
        ("POST", "/v1/connectors/{id}/certificates") => {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            p.distinguished_name.push(rcgen::DnType::CommonName, taken);
            json!({ "certificate_pem": p.self_signed(&key).expect("certificate").pem() })
        }
        ("POST", "/v1/connectors/{id}/subscriptions") => json!({
            "url": "https://attacker.isolatie.example/hook", "event_types": ["case.created"],
        }),
        ("PATCH", "/v1/connectors/{id}/subscriptions/{subscriptionId}") => {
            json!({ "url": "https://attacker.isolatie.example/hook" })
        }
        _ => return None,
    })
}

/// Query strings for the parameterless lists that filter by something of B's.
fn list_query(path: &str, b: &World) -> String {
    match path {
        "/api/v1/endpoints" => format!(
            "?administration_id={}&service_version_namespace={}",
            b.administration, b.namespace
        ),
        _ => String::new(),
    }
}

/// One request of the matrix.
#[derive(Clone)]
struct Job {
    kind: Kind,
    method: String,
    url: String,
    body: Option<Value>,
}

struct Answer {
    outcome: Outcome,
    /// Body and header values, for the leak check.
    text: String,
}

/// Runs `jobs` with [`WORKERS`] in flight; answers in the order of `jobs`.
async fn run(creds: Arc<Creds>, jobs: Vec<Job>) -> Vec<Answer> {
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let answers: Arc<Mutex<Vec<Option<Answer>>>> =
        Arc::new(Mutex::new((0..jobs.len()).map(|_| None).collect()));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (jobs, next, answers, creds) =
            (jobs.clone(), next.clone(), answers.clone(), creds.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(i) else { return };
                let mut headers = creds.headers(job.kind);
                if job.method == "PATCH" {
                    headers.push(("If-Match".to_owned(), "\"1\"".to_owned()));
                }
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let r = send(&base_url(), &job.method, &job.url, &h, job.body.as_ref()).await;
                let mut text = r.body.to_string();
                for v in r.headers.values() {
                    text.push('\n');
                    text.push_str(&String::from_utf8_lossy(v.as_bytes()));
                }
                let problem = r.body["type"].as_str().map(str::to_owned);
                answers.lock().expect("answers")[i] = Some(Answer {
                    outcome: Outcome {
                        status: r.status.as_u16(),
                        problem,
                    },
                    text,
                });
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let answers = std::mem::take(&mut *answers.lock().expect("answers"));
    answers
        .into_iter()
        .map(|a| a.expect("every job answered"))
        .collect()
}

/// A connector token issued by OTP to A's owner through A's connector.
async fn otp_token(a: &World) -> String {
    let app = [("Authorization", format!("Bearer {}", a.token))];
    let app: Vec<(&str, &str)> = app.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = send(
        &base_url(),
        "POST",
        "/v1/otp",
        &app,
        Some(&json!({ "email": a.owner_email })),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let mut body = None;
    for _ in 0..100 {
        if let Some((_, b)) = mails_to(&a.owner_email).await.pop() {
            body = Some(b);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = body.expect("the OTP mail within 20 s");
    let at = body.find(": ").expect("the code after a colon") + 2;
    let code = &body[at..at + 6];
    let r = send(
        &base_url(),
        "POST",
        "/v1/otp/redeem",
        &app,
        Some(&json!({ "email": a.owner_email, "code": code })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    s(&r.body["secret"]).to_owned()
}

/// The template's routes behind the authorizer.
fn routes() -> Vec<Route> {
    let t =
        Template::load(std::path::Path::new(&var("KOPPEL_E2E_TEMPLATE"))).expect("template.yaml");
    let routes: Vec<Route> = t.routes().into_iter().filter(|r| r.authorized).collect();
    assert!(routes.len() > 20, "template.yaml routes: {routes:?}");
    routes
}

// Several threads: the admin CLI blocks the thread it runs on, and the receivers must keep
// answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_workspaces_ids_reach_nothing_on_any_route_with_any_credential() {
    let routes = routes();
    // Routes with ids go through the matrix; of the others, the lists are read.
    let mut param_routes = Vec::new();
    let mut lists = Vec::new();
    for r in &routes {
        let params = param_key(&r.path);
        if params.is_empty() {
            if r.method == "GET" {
                lists.push(r.clone());
            }
            continue;
        }
        param_routes.push((r.clone(), params));
    }

    let (a, b) = tokio::join!(World::build("A", 1), World::build("B", 2));
    let creds = Arc::new(Creds {
        connector: a.connector.clone(),
        api_key: a.api_key.clone(),
        token: a.token.clone(),
        otp_token: otp_token(&a).await,
        pat: a.owner_auth.trim_start_matches("Bearer ").to_owned(),
        jwt_pem: a.jwt_pem.clone(),
        jwt_kid: a.jwt_kid.clone(),
        jwt_iss: a.jwt_iss.clone(),
        aud: demo()["jwt"]["aud"].clone(),
    });
    let (a_ids, b_ids) = (a.ids(), b.ids());
    for (route, params) in &param_routes {
        for (key, name) in params {
            assert!(
                a_ids.contains_key(key.as_str()) && b_ids.contains_key(key.as_str()),
                "add a foreign id for {name} (`{key}` in {} {}) to World::ids",
                route.method,
                route.path
            );
        }
    }
    // Every kind is a working credential of A.
    let probe: Vec<Job> = KINDS
        .iter()
        .map(|&kind| Job {
            kind,
            method: "GET".into(),
            url: "/v1/me".into(),
            body: None,
        })
        .collect();
    for (job, ans) in probe.iter().zip(run(creds.clone(), probe.clone()).await) {
        assert_eq!(ans.outcome.status, 200, "{:?}: {}", job.kind, ans.text);
        assert!(ans.text.contains(&a.ws), "{:?}: {}", job.kind, ans.text);
    }

    let before = b.snapshot().await;
    let markers = b.markers();

    // The jobs: per route and kind, ids that exist nowhere, A's own (GET only), then each
    // variant with B's.
    struct Planned {
        route: usize,
        kind: Kind,
        what: What,
    }
    #[derive(Clone, PartialEq)]
    enum What {
        Missing,
        Own,
        Foreign(String),
    }
    let started = Instant::now();
    let mut jobs = Vec::new();
    let mut planned = Vec::new();
    for (i, (route, params)) in param_routes.iter().enumerate() {
        let get = |ids: &HashMap<&str, String>, key: &str| ids[key].clone();
        let foreign_all: Vec<String> = params.iter().map(|(k, _)| get(&b_ids, k)).collect();
        let own: Vec<String> = params.iter().map(|(k, _)| get(&a_ids, k)).collect();
        let missing: Vec<String> = foreign_all.iter().map(|id| nowhere(id)).collect();
        let body = body_for(&route.method, &route.path, &a);
        let mut urls = vec![(What::Missing, fill(&route.path, &missing))];
        if route.method == "GET" {
            urls.push((What::Own, fill(&route.path, &own)));
        }
        for n_own in own_prefixes(params.len()) {
            let values: Vec<String> = own[..n_own]
                .iter()
                .chain(&foreign_all[n_own..])
                .cloned()
                .collect();
            let label = params
                .iter()
                .enumerate()
                .map(|(j, (_, name))| format!("{name}: {}", if j < n_own { "A" } else { "B" }))
                .collect::<Vec<_>>()
                .join(", ");
            urls.push((What::Foreign(label), fill(&route.path, &values)));
        }
        for &kind in &KINDS {
            for (what, url) in &urls {
                jobs.push(Job {
                    kind,
                    method: route.method.clone(),
                    url: url.clone(),
                    body: body.clone(),
                });
                planned.push(Planned {
                    route: i,
                    kind,
                    what: what.clone(),
                });
            }
        }
    }
    let list_start = jobs.len();
    for route in &lists {
        for &kind in &KINDS {
            jobs.push(Job {
                kind,
                method: "GET".into(),
                url: format!("{}{}", route.path, list_query(&route.path, &b)),
                body: None,
            });
        }
    }
    let urls: Vec<(Kind, String, String)> = jobs
        .iter()
        .map(|j| (j.kind, j.method.clone(), j.url.clone()))
        .collect();
    let answers = run(creds.clone(), jobs).await;
    let requests = answers.len();

    let mut failures = Vec::new();
    for (i, ((kind, method, url), ans)) in urls.iter().zip(&answers).enumerate() {
        let found = leaked(&ans.text, &markers, url);
        if !found.is_empty() {
            failures.push(format!(
                "{method} {url} with {kind:?}: B's {found:?} in the answer {}",
                ans.text
            ));
        }
        // The lists are judged here; the routes with ids by the rule below.
        if i >= list_start && ans.outcome.status >= 500 {
            failures.push(format!("{method} {url} with {kind:?}: {}", ans.text));
        }
    }
    for (i, (route, _)) in param_routes.iter().enumerate() {
        let mut reached_lookup = false;
        let mut read_own = false;
        for &kind in &KINDS {
            let of = |w: &What| {
                planned
                    .iter()
                    .zip(&answers)
                    .find(|(p, _)| p.route == i && p.kind == kind && p.what == *w)
                    .map(|(_, a)| &a.outcome)
            };
            let missing = of(&What::Missing).expect("planned");
            let own = of(&What::Own);
            read_own |= own.is_some_and(|o| (200..300).contains(&o.status));
            for (j, p) in planned.iter().enumerate() {
                let (true, true, What::Foreign(label)) = (p.route == i, p.kind == kind, &p.what)
                else {
                    continue;
                };
                let foreign = &answers[j].outcome;
                reached_lookup |= foreign.status == 404;
                if let Err(e) = judge(foreign, missing, own) {
                    failures.push(format!(
                        "{} {} [{label}] with {kind:?} ({}): {e}: {}",
                        route.method, route.path, urls[j].2, answers[j].text
                    ));
                }
            }
        }
        if !reached_lookup {
            failures.push(format!(
                "{} {}: no credential kind got as far as looking the id up, so the matrix \
                 proves nothing for it",
                route.method, route.path
            ));
        }
        if route.method == "GET" && !read_own {
            failures.push(format!(
                "{} {}: no credential kind reads A's own ids, so the matrix proves nothing for it",
                route.method, route.path
            ));
        }
    }
    failures.extend(ids_in_bodies(&a, &b, &creds, &markers).await);

    // B is as it was, and its receiver heard only its own ping.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = b.snapshot().await;
    for (path, was) in &before {
        if after.get(path) != Some(was) {
            failures.push(format!(
                "B's {path} changed:\n  before {was}\n  after  {}",
                after[path]
            ));
        }
    }
    let heard = b.receiver.received().len();
    if heard != 1 {
        failures.push(format!(
            "B's receiver got {heard} requests, not just its ping"
        ));
    }
    eprintln!(
        "isolation matrix: {} routes with ids, {} lists, {requests} requests in {:?}",
        param_routes.len(),
        lists.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} isolation failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// B's ids inside A's request bodies, on the routes whose bodies name another resource:
/// each is refused as an id that does not exist in A (422 naming the field, or the
/// endpoint rule's single 403), and an OTP for B's owner's address is answered as for an
/// unknown address and sends no mail. The failures, if any.
/// A request whose body names B's resources, and the answer it must get.
struct Check {
    kinds: Vec<Kind>,
    method: &'static str,
    path: String,
    body: Value,
    want: u16,
    /// The fields a 422 must name.
    fields: Vec<&'static str>,
}

async fn ids_in_bodies(a: &World, b: &World, creds: &Creds, markers: &[String]) -> Vec<String> {
    use Kind::*;
    let con = format!("/v1/connectors/{}", a.connector);
    let etag = send(
        &base_url(),
        "GET",
        &con,
        &[("Authorization", &a.owner_auth)],
        None,
    )
    .await
    .headers["etag"]
        .to_str()
        .expect("ETag")
        .to_owned();
    let unknown = format!("niemand-{}@isolatie.example", a.tag);
    let checks = [
        Check {
            kinds: vec![PersonalToken],
            method: "POST",
            path: "/v1/connectors".into(),
            body: json!({
                "description": "mixed", "acting_user_id": b.owner, "access_level": "read",
                "scopes": ["cases:read"], "saved_search_id": b.search,
            }),
            want: 422,
            fields: vec!["acting_user_id", "saved_search_id"],
        },
        Check {
            kinds: vec![PersonalToken],
            method: "PATCH",
            path: con.clone(),
            body: json!({ "acting_user_id": b.clerk, "saved_search_id": b.search }),
            want: 422,
            fields: vec!["acting_user_id", "saved_search_id"],
        },
        Check {
            kinds: vec![PersonalToken],
            method: "POST",
            path: format!("{con}/credentials"),
            body: json!({ "name": "rotation", "replaces": b.api_key_id }),
            want: 422,
            fields: vec!["replaces"],
        },
        Check {
            kinds: vec![PersonalToken, ApiKey],
            method: "POST",
            path: "/v1/cases".into(),
            body: json!({ "case_type": "Melding", "subject": "mixed", "assignee": b.clerk }),
            want: 422,
            fields: vec!["assignee"],
        },
        Check {
            kinds: vec![PersonalToken],
            method: "POST",
            path: "/api/v1/mandates".into(),
            body: json!({
                "connector_id": b.connector, "administration_id": a.administration,
                "service_version_namespace": a.namespace,
            }),
            want: 422,
            fields: vec!["connector_id"],
        },
        Check {
            kinds: vec![PersonalToken],
            method: "POST",
            path: "/api/v1/mandates".into(),
            body: json!({
                "connector_id": a.connector, "administration_id": a.administration,
                "service_version_namespace": b.namespace,
            }),
            want: 422,
            fields: vec!["service_version_namespace"],
        },
        Check {
            kinds: vec![ApiKey, Jwt],
            method: "POST",
            path: "/api/v1/endpoints".into(),
            body: b.endpoint_body(),
            want: 403,
            fields: vec![],
        },
        Check {
            kinds: vec![ConnectorToken],
            method: "POST",
            path: "/v1/otp/redeem".into(),
            body: json!({ "email": b.owner_email, "code": "123456" }),
            want: 422,
            fields: vec![],
        },
    ];
    let mut failures = Vec::new();
    for Check {
        kinds,
        method,
        path,
        body,
        want,
        fields,
    } in checks
    {
        for kind in kinds {
            let mut h = creds.headers(kind);
            if method == "PATCH" {
                h.push(("If-Match".to_owned(), etag.clone()));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let r = send(&base_url(), method, &path, &h, Some(&body)).await;
            let named: Vec<&str> = r.body["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["field"].as_str())
                .collect();
            let sent = format!("{path} {body}");
            let found = leaked(&r.body.to_string(), markers, &sent);
            if r.status != want || !fields.iter().all(|f| named.contains(f)) || !found.is_empty() {
                failures.push(format!(
                    "{method} {path} {body} with {kind:?}: want {want} naming {fields:?} and \
                     nothing else of B, got {} {}",
                    r.status, r.body
                ));
            }
        }
    }
    // OTP: B's owner's address is as unknown to A's connector as any other.
    let app = creds.headers(ConnectorToken);
    let app: Vec<(&str, &str)> = app.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let otp = |email: String| {
        let app = app.clone();
        async move {
            let r = send(
                &base_url(),
                "POST",
                "/v1/otp",
                &app,
                Some(&json!({ "email": email })),
            )
            .await;
            (r.status, r.body)
        }
    };
    let (theirs, nobody) = (otp(b.owner_email.clone()).await, otp(unknown).await);
    if theirs != nobody {
        failures.push(format!(
            "POST /v1/otp for B's owner answered {theirs:?}, for an unknown address {nobody:?}"
        ));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    if !mails_to(&b.owner_email).await.is_empty() {
        failures.push("A's connector had an OTP mailed to B's owner".to_owned());
    }
    failures
}

#[test]
fn parameters_are_keyed_by_the_segment_before_them() {
    assert_eq!(
        param_key("/v1/connectors/{id}/subscriptions/{subscriptionId}"),
        [
            ("connectors/{id}".to_owned(), "id".to_owned()),
            (
                "subscriptions/{subscriptionId}".to_owned(),
                "subscriptionId".to_owned()
            ),
        ]
    );
    assert!(param_key("/v1/cases/export.csv").is_empty());
    assert_eq!(
        fill(
            "/v1/ws/{workspaceId}/DataSubjectRequests/{id}",
            &["ws_1".into(), "7".into()]
        ),
        "/v1/ws/ws_1/DataSubjectRequests/7"
    );
}

#[test]
fn an_id_from_nowhere_keeps_the_shape_and_differs() {
    assert_eq!(nowhere("12"), "900000012");
    let con = "con_a1B2c3D4e5F6g7H8";
    let n = nowhere(con);
    assert!(
        n.starts_with("con_") && n.len() == con.len() && n != con,
        "{n}"
    );
    assert!(
        con.chars()
            .zip(n.chars())
            .skip(4)
            .all(|(x, y)| x != y && x.is_ascii_digit() == y.is_ascii_digit()),
        "{n}"
    );
    let uuid = "6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    let n = nowhere(uuid);
    assert!(uuid::Uuid::parse_str(&n).is_ok() && n != uuid, "{n}");
    // Credential ids are base 36 with no prefix.
    let n = nowhere("k3x9z0q1w2e4r5t6");
    assert_eq!(n.len(), 16);
    assert!(
        n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
}

#[test]
fn the_rule_allows_only_what_a_missing_id_gets() {
    let o = |status, problem: &str| Outcome {
        status,
        problem: Some(problem.to_owned()),
    };
    let not_found = o(404, "urn:koppel:problem:not_found");
    let forbidden = o(403, "urn:koppel:problem:forbidden");
    let ok = o(200, "");
    assert!(judge(&not_found, &not_found, Some(&ok)).is_ok());
    // A kind refused on the route whatever the id.
    assert!(judge(&forbidden, &forbidden, Some(&forbidden)).is_ok());
    assert!(judge(&forbidden, &forbidden, None).is_ok());
    // Found it.
    assert!(judge(&ok, &not_found, None).is_err());
    assert!(judge(&o(204, ""), &not_found, None).is_err());
    assert!(judge(&o(412, "x"), &not_found, None).is_err());
    assert!(judge(&o(422, "x"), &o(422, "x"), None).is_err());
    assert!(judge(&o(500, "x"), &o(500, "x"), None).is_err());
    // 403 for a foreign id where a missing one is 404: the id told it something.
    assert!(judge(&forbidden, &not_found, None).is_err());
    // 403 for every unknown id, while A's own ids read: foreign ids must be 404.
    assert!(judge(&forbidden, &forbidden, Some(&ok)).is_err());
}

#[test]
fn a_marker_named_in_the_url_is_not_a_leak() {
    let markers = vec!["con_B".to_owned(), "sub_B".to_owned()];
    assert_eq!(
        leaked(
            r#"{"instance":"/v1/connectors/con_B","x":"sub_B"}"#,
            &markers,
            "/v1/connectors/con_B"
        ),
        ["sub_B"]
    );
    assert!(leaked("{}", &markers, "/").is_empty());
}

#[test]
fn volatile_fields_are_left_out_of_snapshots() {
    let mut v = json!({"items": [{"id": "t", "last_used_at": "now"}], "remainingDays": 3});
    strip_volatile(&mut v);
    assert_eq!(v, json!({"items": [{"id": "t"}]}));
}
