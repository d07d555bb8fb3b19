//! Identity management through the API, end to end: personal tokens, the revoke matrix,
//! users, connector credentials with rotation, OTP issuance by e-mail, and the audit trail.

use koppel_e2e::*;
use serde_json::{Value, json};

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A fresh workspace with its owner's token, and helpers to add people and connectors.
struct Ws {
    id: String,
    owner_id: String,
    owner: String,
}

impl Ws {
    fn new() -> Self {
        let (id, owner_id) = new_workspace("Tokens test");
        let (_, pat) = personal_token(&id, &owner_id);
        Self {
            id,
            owner_id,
            owner: bearer(&pat),
        }
    }

    /// A user with `api_access` and a personal token: (id, email, "Bearer …").
    fn user(&self, rights: &str, manage_users: bool) -> (String, String, String) {
        let u = NewUser::sample(&self.id)
            .name("U")
            .rights(rights)
            .api_access(true)
            .manage_users(manage_users)
            .add();
        let uid = s(&u["id"]).to_owned();
        let (_, pat) = personal_token(&self.id, &uid);
        (uid, s(&u["email"]).to_owned(), bearer(&pat))
    }

    fn connector(&self, description: &str) -> (String, String) {
        NewConnector::sample(&self.id, &self.owner_id)
            .description(description)
            .scopes(&["cases:read", "dsr:read"])
            .rate_limit(1000)
            .with_token()
    }
}

async fn call(auth: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    send(&base_url(), method, path, &[("Authorization", auth)], body).await
}

/// `DELETE path` as `auth`: the status.
async fn delete(auth: &str, path: &str) -> u16 {
    call(auth, "DELETE", path, None).await.status.as_u16()
}

/// `secret` is dead: `GET /v1/me` with it is 401.
async fn assert_revoked(secret: &str) {
    call(secret, "GET", "/v1/me", None)
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn personal_token_lifecycle() {
    let ws = Ws::new();
    let created = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "reporting", "scopes": ["dsr:read"]})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    let secret = s(&created.body["secret"]).to_owned();
    let id = s(&created.body["id"]).to_owned();
    assert!(secret.starts_with("kpl_pat_"));

    let me_ = call(&bearer(&secret), "GET", "/v1/me", None).await;
    assert_eq!(me_.status, 200, "{}", me_.body);
    assert_eq!(me_.body["scopes"], json!(["dsr:read"]));
    assert_eq!(me_.body["user"]["id"], ws.owner_id.as_str());

    let list = call(&ws.owner, "GET", "/v1/tokens", None).await;
    let mine = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert!(mine.get("secret").is_none(), "a secret is shown once");
    assert!(!list.body.to_string().contains(&secret));
    assert!(mine["last_used_at"].is_string(), "use is recorded: {mine}");

    // A token cannot mint a token with more than it has.
    let narrow = bearer(&secret);
    let r = call(
        &narrow,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "more", "scopes": ["cases:write"]})),
    )
    .await;
    r.assert_problem(422);
    assert_eq!(r.body["errors"][0]["field"], "scopes[0]");
    let r = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "x", "colour": "red"})),
    )
    .await;
    r.assert_problem(422);
    let r = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(r.body["errors"][0]["field"], "expires_at");

    let del = call(&ws.owner, "DELETE", &format!("/v1/tokens/{id}"), None).await;
    assert_eq!(del.status, 204);
    call(&bearer(&secret), "GET", "/v1/me", None)
        .await
        .assert_problem(401);

    // Connector credentials do not manage personal tokens.
    let (_, app) = ws.connector("App");
    call(&app, "POST", "/v1/tokens", Some(&json!({"name": "x"})))
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn who_may_revoke_whose_tokens() {
    let ws = Ws::new();
    let (m_id, _, m) = ws.user("handle", true);
    let (u_id, _, u) = ws.user("read", false);
    let token_of = |auth: String| async move {
        let r = call(&auth, "POST", "/v1/tokens", Some(&json!({"name": "t"}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        (s(&r.body["id"]).to_owned(), bearer(s(&r.body["secret"])))
    };

    // Self.
    let (t, secret) = token_of(u.clone()).await;
    assert_eq!(delete(&u, &format!("/v1/tokens/{t}")).await, 204);
    assert_revoked(&secret).await;
    // manage_users on another user.
    let (t, secret) = token_of(u.clone()).await;
    let listed = call(&m, "GET", &format!("/v1/users/{u_id}/tokens"), None).await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == t.as_str())
    );
    assert_eq!(
        delete(&m, &format!("/v1/users/{u_id}/tokens/{t}")).await,
        204
    );
    assert_revoked(&secret).await;
    // Without manage_users: neither list nor revoke others'.
    let (t, _) = token_of(m.clone()).await;
    call(&u, "GET", &format!("/v1/users/{m_id}/tokens"), None)
        .await
        .assert_problem(403);
    call(&u, "DELETE", &format!("/v1/users/{m_id}/tokens/{t}"), None)
        .await
        .assert_problem(403);
    // Anyone but the owner on the owner's tokens.
    let (t, secret) = token_of(ws.owner.clone()).await;
    call(
        &m,
        "DELETE",
        &format!("/v1/users/{}/tokens/{t}", ws.owner_id),
        None,
    )
    .await
    .assert_problem(403);
    assert_eq!(call(&secret, "GET", "/v1/me", None).await.status, 200);
    // The owner on their own.
    assert_eq!(delete(&ws.owner, &format!("/v1/tokens/{t}")).await, 204);
    assert_revoked(&secret).await;
}

#[tokio::test]
async fn managing_users() {
    let ws = Ws::new();
    let (_, _, m) = ws.user("handle", true);
    let (u_id, _, u) = ws.user("handle", false);
    let list = call(&m, "GET", "/v1/users", None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
    call(&u, "GET", "/v1/users", None).await.assert_problem(403);

    let r = call(
        &m,
        "PATCH",
        &format!("/v1/users/{u_id}"),
        Some(&json!({"rights": "read"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        call(&u, "GET", "/v1/me", None).await.body["access_level"],
        "read"
    );
    let r = call(
        &m,
        "PATCH",
        &format!("/v1/users/{u_id}"),
        Some(&json!({"api_access": false})),
    )
    .await;
    assert_eq!(r.body["api_access"], false);
    call(&u, "GET", "/v1/me", None).await.assert_problem(403);
    let r = call(
        &m,
        "PATCH",
        &format!("/v1/users/{u_id}"),
        Some(&json!({"rights": "admin"})),
    )
    .await;
    r.assert_problem(422);
    call(
        &m,
        "PATCH",
        &format!("/v1/users/{}", ws.owner_id),
        Some(&json!({"api_access": false})),
    )
    .await
    .assert_problem(403);
}

#[tokio::test]
async fn connector_credentials_with_rotation() {
    let ws = Ws::new();
    let (con, _) = ws.connector("Zaakportaal");
    let path = format!("/v1/connectors/{con}/credentials");
    let key = call(
        &ws.owner,
        "POST",
        &path,
        Some(&json!({"name": "key", "kind": "api_key"})),
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.body);
    assert_eq!(key.headers["cache-control"], "no-store");
    let key_secret = s(&key.body["secret"]).to_owned();
    let key_id = s(&key.body["id"]).to_owned();
    let with_key = [
        ("API-Interface-Id", con.as_str()),
        ("API-Key", key_secret.as_str()),
    ];
    assert_eq!(me(&with_key).await.status, 200);

    // Rotation: the new one is issued and the old one revoked in one transaction.
    let rotated = call(
        &ws.owner,
        "POST",
        &path,
        Some(&json!({"name": "key 2", "kind": "api_key", "replaces": key_id})),
    )
    .await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    me(&with_key).await.assert_problem(401);
    let new_secret = s(&rotated.body["secret"]).to_owned();
    assert_eq!(
        me(&[
            ("API-Interface-Id", con.as_str()),
            ("API-Key", new_secret.as_str())
        ])
        .await
        .status,
        200
    );

    let list = call(&ws.owner, "GET", &path, None).await;
    assert!(
        !list.body.to_string().contains(&new_secret),
        "no secrets in lists"
    );
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == key_id.as_str() && c["revoked_at"].is_string())
    );

    let r = call(
        &ws.owner,
        "POST",
        &path,
        Some(&json!({"name": "x", "kind": "password", "scopes": ["endpoints:write"]})),
    )
    .await;
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["field"]))
        .collect();
    assert_eq!(fields, ["scopes[0]", "kind"]);

    let del = call(
        &ws.owner,
        "DELETE",
        &format!("{path}/{}", s(&rotated.body["id"])),
        None,
    )
    .await;
    assert_eq!(del.status, 204);
    me(&[
        ("API-Interface-Id", con.as_str()),
        ("API-Key", new_secret.as_str()),
    ])
    .await
    .assert_problem(401);

    // Without manage_connectors, or from another workspace: nothing.
    let (_, _, u) = ws.user("handle", true);
    call(&u, "GET", &path, None).await.assert_problem(403);
    let other = Ws::new();
    call(&other.owner, "GET", &path, None)
        .await
        .assert_problem(404);
    call(
        &other.owner,
        "DELETE",
        &format!("/v1/users/{}/tokens/x", ws.owner_id),
        None,
    )
    .await
    .assert_problem(404);
}

/// Waits (at most 20 s) for the `n`th mail to `to`, as the dispatcher sends it.
async fn nth_mail(to: &str, n: usize) -> (String, String) {
    for _ in 0..100 {
        let mails = mails_to(to).await;
        if mails.len() >= n {
            return mails[n - 1].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("no mail #{n} to {to}");
}

/// Redeems `code` for `email` with the app's credential.
async fn redeem(app: &str, email: &str, code: &str) -> Reply {
    call(
        app,
        "POST",
        "/v1/otp/redeem",
        Some(&json!({ "email": email, "code": code })),
    )
    .await
}

/// Asks for a code for `email` and reads it from the `n`th mail: (the code, a wrong one).
async fn request_code(app: &str, email: &str, n: usize) -> (String, &'static str) {
    let r = call(app, "POST", "/v1/otp", Some(&json!({ "email": email }))).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let code = code_in(&nth_mail(email, n).await.1);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    (code, wrong)
}

fn code_in(body: &str) -> String {
    let at = body.find(": ").expect("code after a colon") + 2;
    body[at..at + 6].to_owned()
}

#[tokio::test]
async fn otp_issues_a_token_bound_to_the_user_and_the_connector() {
    let ws = Ws::new();
    let (u_id, email, _) = ws.user("read", false);
    let (con, app) = ws.connector("Zaakportaal Burgerzaken");

    let req = call(
        &app,
        "POST",
        "/v1/otp",
        Some(&json!({"email": email.to_uppercase()})),
    )
    .await;
    assert_eq!(req.status, 202, "{}", req.body);
    let (subject, body) = nth_mail(&email, 1).await;
    assert!(subject.contains("Zaakportaal Burgerzaken"), "{subject}");
    let code = code_in(&body);

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = redeem(&app, &email, wrong).await;
    r.assert_problem(422);
    assert_eq!(r.body["errors"][0]["field"], "code");

    let ok = redeem(&app, &email, &code).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.headers["cache-control"], "no-store");
    let token = bearer(s(&ok.body["secret"]));
    let who = call(&token, "GET", "/v1/me", None).await;
    assert_eq!(who.body["user"]["id"], u_id.as_str());
    assert_eq!(who.body["connector"]["id"], con.as_str());
    assert_eq!(
        who.body["access_level"], "read",
        "min(connector handle, user read)"
    );

    // Single use.
    redeem(&app, &email, &code).await.assert_problem(422);

    // An unknown address gets the same answer, and no mail.
    let nobody = format!("niemand-{}@gemeente.example", uuid::Uuid::new_v4().simple());
    let r = call(&app, "POST", "/v1/otp", Some(&json!({"email": nobody}))).await;
    assert_eq!((r.status, &r.body), (req.status, &req.body));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(mails_to(&nobody).await.is_empty());
    redeem(&app, &nobody, "123456").await.assert_problem(422);
    call(
        &app,
        "POST",
        "/v1/otp",
        Some(&json!({"email": "not an address"})),
    )
    .await
    .assert_problem(422);
    call(&ws.owner, "POST", "/v1/otp", Some(&json!({"email": email})))
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code_and_a_new_request_does_not_revive_guessing() {
    let ws = Ws::new();
    let (_, email, _) = ws.user("read", false);
    let (_, app) = ws.connector("App");
    let (code, wrong) = request_code(&app, &email, 1).await;
    for _ in 0..5 {
        redeem(&app, &email, wrong).await.assert_problem(422);
    }
    redeem(&app, &email, &code).await.assert_problem(422);
    assert_eq!(
        call(&app, "POST", "/v1/otp", Some(&json!({"email": email})))
            .await
            .status,
        202
    );
    let fresh = code_in(&nth_mail(&email, 2).await.1);
    redeem(&app, &email, &fresh).await.assert_problem(422);
}

#[tokio::test]
async fn every_issue_and_revoke_is_audited() {
    let ws = Ws::new();
    let (_, _, plain) = ws.user("read", false);
    let created = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "audited"})),
    )
    .await;
    let id = s(&created.body["id"]).to_owned();
    call(&ws.owner, "DELETE", &format!("/v1/tokens/{id}"), None).await;
    let audit = call(&ws.owner, "GET", "/v1/audit?limit=10", None).await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let items = audit.body["items"].as_array().unwrap();
    let of = |action: &str| {
        items
            .iter()
            .find(|e| e["credential_id"] == id.as_str() && e["action"] == action)
            .cloned()
    };
    let issued = of("credential.issued").expect("issue audited");
    let revoked = of("credential.revoked").expect("revoke audited");
    assert_eq!(issued["actor_user_id"], ws.owner_id.as_str());
    assert_eq!(revoked["on_behalf_of"], ws.owner_id.as_str());
    assert!(revoked["actor_credential_id"].is_string());
    // Newest first, and pages continue with the cursor.
    let page = call(&ws.owner, "GET", "/v1/audit?limit=1", None).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    let cursor = s(&page.body["next_cursor"]).to_owned();
    let next = call(
        &ws.owner,
        "GET",
        &format!("/v1/audit?limit=1&cursor={}", cursor.replace('#', "%23")),
        None,
    )
    .await;
    assert_ne!(next.body["items"][0]["id"], page.body["items"][0]["id"]);
    call(&plain, "GET", "/v1/audit", None)
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn a_connector_credential_is_audited_on_behalf_of_its_acting_user() {
    let ws = Ws::new();
    let (clerk, _, _) = ws.user("handle", false);
    let con = NewConnector::sample(&ws.id, &clerk)
        .scopes(&["cases:read"])
        .id();
    let path = format!("/v1/connectors/{con}/credentials");
    for kind in ["api_key", "token"] {
        let issued = call(
            &ws.owner,
            "POST",
            &path,
            Some(&json!({"name": kind, "kind": kind})),
        )
        .await;
        assert_eq!(issued.status, 201, "{}", issued.body);
        let id = s(&issued.body["id"]).to_owned();
        assert_eq!(delete(&ws.owner, &format!("{path}/{id}")).await, 204);
        let audit = call(&ws.owner, "GET", "/v1/audit?limit=10", None).await;
        let entries: Vec<&Value> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["credential_id"] == id.as_str())
            .collect();
        assert_eq!(entries.len(), 2, "issued and revoked: {}", audit.body);
        for e in entries {
            // The owner did it, for the connector, on behalf of the employee it acts for.
            assert_eq!(e["actor_user_id"], ws.owner_id.as_str(), "{e}");
            assert_eq!(e["connector_id"], con.as_str(), "{e}");
            assert_eq!(e["on_behalf_of"], clerk.as_str(), "{kind}: {e}");
        }
    }
}

#[tokio::test]
async fn parallel_guesses_each_spend_an_attempt() {
    let ws = Ws::new();
    let (_, email, _) = ws.user("read", false);
    let (_, app) = ws.connector("App");
    let (code, wrong) = request_code(&app, &email, 1).await;
    let guesses: Vec<_> = (0..20)
        .map(|_| {
            let (app, email) = (app.clone(), email.clone());
            tokio::spawn(async move { redeem(&app, &email, wrong).await.status })
        })
        .collect();
    for g in guesses {
        assert_eq!(g.await.unwrap(), 422);
    }
    // Twenty guesses at once could not get past the limit of five: the right code is dead.
    redeem(&app, &email, &code).await.assert_problem(422);
}

#[tokio::test]
async fn setting_up_a_connector_stays_within_the_callers_reach() {
    let ws = Ws::new();
    let uid = NewUser::sample(&ws.id)
        .name("C")
        .rights("read")
        .api_access(true)
        .manage_connectors(true)
        .id();
    let (_, pat) = personal_token(&ws.id, &uid);
    let me_ = bearer(&pat);
    let body = |acting: &str, level: &str| {
        json!({"description": "Mijn koppeling", "acting_user_id": acting,
               "access_level": level, "scopes": ["cases:read"]})
    };
    // Acting for the owner needs the owner or manage_users.
    call(
        &me_,
        "POST",
        "/v1/connectors",
        Some(&body(&ws.owner_id, "read")),
    )
    .await
    .assert_problem(403);
    // A `read` user cannot make a `handle` connector.
    let r = call(&me_, "POST", "/v1/connectors", Some(&body(&uid, "handle"))).await;
    r.assert_problem(422);
    assert_eq!(r.body["errors"][0]["field"], "access_level");
    let ok = call(&me_, "POST", "/v1/connectors", Some(&body(&uid, "read"))).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[tokio::test]
async fn a_narrow_token_cannot_mint_a_broader_connector_key() {
    let ws = Ws::new();
    let (con, _) = ws.connector("Zaakportaal");
    let narrow = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "n", "scopes": ["dsr:read"]})),
    )
    .await;
    let narrow = bearer(s(&narrow.body["secret"]));
    let path = format!("/v1/connectors/{con}/credentials");
    let r = call(
        &narrow,
        "POST",
        &path,
        Some(&json!({"name": "k", "scopes": ["cases:read"]})),
    )
    .await;
    assert_eq!(r.body["errors"][0]["field"], "scopes[0]");
    let key = call(
        &narrow,
        "POST",
        &path,
        Some(&json!({"name": "k", "kind": "api_key"})),
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let who = me(&[
        ("API-Interface-Id", con.as_str()),
        ("API-Key", s(&key.body["secret"])),
    ])
    .await;
    assert_eq!(who.body["scopes"], json!(["dsr:read"]));
    // Nor raise its own rate limit.
    let r = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "fast", "rate_limit": 5000})),
    )
    .await;
    assert_eq!(r.body["errors"][0]["field"], "rate_limit");
}

#[tokio::test]
async fn manage_users_cannot_raise_rights_above_its_own() {
    let ws = Ws::new();
    let (m_id, _, m) = ws.user("read", true);
    let (u_id, _, _) = ws.user("read", false);
    call(
        &m,
        "PATCH",
        &format!("/v1/users/{m_id}"),
        Some(&json!({"rights": "handle"})),
    )
    .await
    .assert_problem(403);
    call(
        &m,
        "PATCH",
        &format!("/v1/users/{u_id}"),
        Some(&json!({"rights": "handle"})),
    )
    .await
    .assert_problem(403);
    let r = call(
        &m,
        "PATCH",
        &format!("/v1/users/{u_id}"),
        Some(&json!({"api_access": false})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rights"], "read");
}

/// An OTP token is its employee using the partner app: it stops the moment they lose API
/// access and works again when it comes back; an employee without API access gets no OTP
/// token at all. The connector's own token, acting for the same user, is not affected.
#[tokio::test]
async fn an_otp_token_follows_its_employees_api_access() {
    let ws = Ws::new();
    let (u_id, email, _) = ws.user("handle", false);
    let (_, app) = ws.connector("Zaakportaal");
    let (code, _) = request_code(&app, &email, 1).await;
    let ok = redeem(&app, &email, &code).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let token = bearer(s(&ok.body["secret"]));
    assert_eq!(call(&token, "GET", "/v1/me", None).await.status, 200);

    let access = |on: bool| {
        let owner = ws.owner.clone();
        let path = format!("/v1/users/{u_id}");
        async move {
            let r = call(&owner, "PATCH", &path, Some(&json!({"api_access": on}))).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    };
    access(false).await;
    call(&token, "GET", "/v1/me", None)
        .await
        .assert_problem(403);
    // The app's own credential still works.
    assert_eq!(call(&app, "GET", "/v1/me", None).await.status, 200);
    // And no new OTP token is issued for them meanwhile.
    let (code, _) = request_code(&app, &email, 2).await;
    redeem(&app, &email, &code).await.assert_problem(422);

    access(true).await;
    assert_eq!(call(&token, "GET", "/v1/me", None).await.status, 200);
}

/// `GET /v1/users` is paged: with `limit=1` (and 2, 3) following `next_cursor` lists every
/// user exactly once, in id order; the cursor is opaque and bound to this workspace's list.
#[tokio::test]
async fn users_are_paged_with_an_opaque_cursor() {
    let ws = Ws::new();
    let mut ids = vec![ws.owner_id.clone()];
    for _ in 0..4 {
        ids.push(ws.user("read", false).0);
    }
    ids.sort();
    for limit in [1, 2, 3, 200] {
        let got = all_pages(&ws.owner, &format!("/v1/users?limit={limit}"), limit, 20).await;
        let seen: Vec<String> = got.iter().map(|u| s(&u["id"]).to_owned()).collect();
        assert_eq!(seen, ids, "limit={limit}");
    }
    let first = call(&ws.owner, "GET", "/v1/users?limit=2", None).await;
    let cursor = s(&first.body["next_cursor"]);
    assert!(
        !cursor.contains("USER") && !cursor.contains("usr_"),
        "{cursor}"
    );
    // Another workspace's cursor, and this workspace's audit cursor, are not this list's.
    let other = Ws::new();
    other.user("read", false);
    let theirs = call(&other.owner, "GET", "/v1/users?limit=1", None).await;
    let theirs = s(&theirs.body["next_cursor"]).to_owned();
    let audit = call(&ws.owner, "GET", "/v1/audit?limit=1", None).await;
    let audit = s(&audit.body["next_cursor"]).to_owned();
    assert_paging_refuses(&ws.owner, "/v1/users", &[&theirs, &audit]).await;
}

/// A user holds at most 50 live personal tokens: each has a rate limit of its own, so more
/// would multiply theirs. Revoking one makes room again.
#[tokio::test]
async fn a_user_holds_at_most_fifty_live_tokens() {
    let ws = Ws::new();
    // The owner's own token from the admin CLI is the first.
    let mut last = String::new();
    for i in 1..50 {
        let r = call(
            &ws.owner,
            "POST",
            "/v1/tokens",
            Some(&json!({"name": format!("t{i}")})),
        )
        .await;
        assert_eq!(r.status, 201, "token {i}: {}", r.body);
        last = s(&r.body["id"]).to_owned();
    }
    let r = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "one too many"})),
    )
    .await;
    r.assert_problem(409);
    assert_eq!(r.body["type"], "urn:koppel:problem:token-limit");
    let gone = call(&ws.owner, "DELETE", &format!("/v1/tokens/{last}"), None).await;
    assert_eq!(gone.status, 204);
    let r = call(
        &ws.owner,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "room again"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Asserts `r` has `status` and a body the served document describes for that operation.
fn conforms_to(doc: &Value, method: &str, path: &str, r: &Reply, status: u16) {
    use koppel_e2e::contract::{assert_conforms, response_schema};
    assert_eq!(r.status, status, "{method} {path}: {}", r.body);
    assert_conforms(doc, response_schema(doc, method, path, status), &r.body);
}

/// Asserts `body` is a valid request body of the operation, as the document describes it.
fn valid_request(doc: &Value, method: &str, path: &str, body: &Value) {
    let op = koppel_e2e::contract::operation(doc, method, path);
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no request body"
    );
    koppel_e2e::contract::assert_conforms(doc, schema, body);
}

/// Every answer of the tokens function is what the served OpenAPI document says: the same
/// fields, `null`s where it says so, 201/202/204 where it says so.
#[tokio::test]
async fn every_tokens_answer_is_what_the_document_describes() {
    let doc = koppel_e2e::contract::document().await;
    let ws = Ws::new();
    let (uid, email, _) = ws.user("read", false);
    let (con, app) = ws.connector("Documented app");

    // Who am I, with a personal token (no connector) and with a connector token.
    let me = call(&ws.owner, "GET", "/v1/me", None).await;
    conforms_to(&doc, "GET", "/v1/me", &me, 200);
    assert!(me.body["connector"].is_null());
    let me = call(&app, "GET", "/v1/me", None).await;
    conforms_to(&doc, "GET", "/v1/me", &me, 200);
    assert_eq!(me.body["connector"]["id"], con.as_str());

    let body = json!({ "name": "documented", "scopes": ["cases:read"], "rate_limit": 10 });
    valid_request(&doc, "POST", "/v1/tokens", &body);
    let r = call(&ws.owner, "POST", "/v1/tokens", Some(&body)).await;
    conforms_to(&doc, "POST", "/v1/tokens", &r, 201);
    assert!(s(&r.body["secret"]).starts_with("kpl_pat_"));
    assert!(r.body["expires_at"].is_null() && r.body["last_used_at"].is_null());
    let token_id = s(&r.body["id"]).to_owned();
    let r = call(&ws.owner, "GET", "/v1/tokens", None).await;
    conforms_to(&doc, "GET", "/v1/tokens", &r, 200);
    assert!(
        !r.body.to_string().contains("kpl_pat_"),
        "no secrets listed"
    );

    let r = call(&ws.owner, "GET", "/v1/users?limit=1", None).await;
    conforms_to(&doc, "GET", "/v1/users", &r, 200);
    assert!(r.body["next_cursor"].is_string(), "{}", r.body);
    let patch = json!({ "api_access": true, "rights": "read" });
    valid_request(&doc, "PATCH", "/v1/users/{id}", &patch);
    let r = call(
        &ws.owner,
        "PATCH",
        &format!("/v1/users/{uid}"),
        Some(&patch),
    )
    .await;
    conforms_to(&doc, "PATCH", "/v1/users/{id}", &r, 200);
    let r = call(&ws.owner, "GET", &format!("/v1/users/{uid}/tokens"), None).await;
    conforms_to(&doc, "GET", "/v1/users/{id}/tokens", &r, 200);

    let path = format!("/v1/connectors/{con}/credentials");
    let body = json!({ "name": "documented key", "kind": "api_key" });
    valid_request(&doc, "POST", "/v1/connectors/{id}/credentials", &body);
    let r = call(&ws.owner, "POST", &path, Some(&body)).await;
    conforms_to(&doc, "POST", "/v1/connectors/{id}/credentials", &r, 201);
    assert_eq!(r.body["kind"], "api_key");
    let r = call(&ws.owner, "GET", &path, None).await;
    conforms_to(&doc, "GET", "/v1/connectors/{id}/credentials", &r, 200);

    // OTP: the request answers 202, the redeem 201 with the new token.
    let body = json!({ "email": email });
    valid_request(&doc, "POST", "/v1/otp", &body);
    let r = call(&app, "POST", "/v1/otp", Some(&body)).await;
    conforms_to(&doc, "POST", "/v1/otp", &r, 202);
    let code = code_in(&nth_mail(&email, 1).await.1);
    let body = json!({ "email": email, "code": code });
    valid_request(&doc, "POST", "/v1/otp/redeem", &body);
    let r = call(&app, "POST", "/v1/otp/redeem", Some(&body)).await;
    conforms_to(&doc, "POST", "/v1/otp/redeem", &r, 201);
    assert_eq!(r.body["user_id"], uid.as_str());

    let r = call(&ws.owner, "GET", "/v1/audit?limit=2", None).await;
    conforms_to(&doc, "GET", "/v1/audit", &r, 200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);

    // Revokes answer 204 as documented.
    let op = koppel_e2e::contract::operation(&doc, "DELETE", "/v1/tokens/{id}");
    assert!(op["responses"]["204"].is_object());
    let r = call(&ws.owner, "DELETE", &format!("/v1/tokens/{token_id}"), None).await;
    assert_eq!(r.status, 204);
}

/// A problem's `type` is explained in the document: in its problem table (an anchor per
/// type under "Problems", where the docs page's `#problem-<slug>` lands) and in the
/// Problem schema's list of types; the answer conforms to that schema.
#[tokio::test]
async fn every_problem_type_answered_is_explained_in_the_document() {
    let doc = koppel_e2e::contract::document().await;
    let problems = doc["info"]["description"].as_str().unwrap();
    assert!(
        problems.contains("<a id=\"problems\"></a>"),
        "a Problems section"
    );
    let schema = json!({ "$ref": "#/components/schemas/Problem" });
    let ws = Ws::new();
    let (_, app) = ws.connector("Problem app");
    let base = base_url();
    let answers = [
        // The gateway: no credential, an unknown route.
        get(&base, "/v1/me", &[]).await,
        get(&base, "/v1/no-such-route", &[("Authorization", &ws.owner)]).await,
        // The function: a connector credential where a personal token is needed, a bad
        // field, malformed JSON, a wrong content type, a foreign id.
        call(&app, "GET", "/v1/tokens", None).await,
        call(
            &ws.owner,
            "POST",
            "/v1/tokens",
            Some(&json!({ "name": "" })),
        )
        .await,
        send(
            &base,
            "POST",
            "/v1/otp",
            &[
                ("Authorization", &app),
                ("Content-Type", "application/json"),
            ],
            None,
        )
        .await,
        call(&ws.owner, "DELETE", "/v1/tokens/cred_doesnotexist", None).await,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for r in &answers {
        assert!(r.status.as_u16() >= 400, "{}", r.body);
        koppel_e2e::contract::assert_conforms(&doc, &schema, &r.body);
        let slug = s(&r.body["type"])
            .strip_prefix("urn:koppel:problem:")
            .unwrap_or_else(|| panic!("{}", r.body));
        assert!(
            problems.contains(&format!("<a id=\"problem-{slug}\"></a>")),
            "`{slug}` is not explained in the document"
        );
        seen.insert(slug.to_owned());
    }
    assert!(seen.len() >= 4, "{seen:?}");
}

/// What a receiver gets is the payload the document's `webhooks` describe for its event
/// type: a ping, a case event through the connector's saved search, a data-subject request
/// event.
#[tokio::test]
async fn delivered_webhooks_are_the_documented_payloads() {
    use koppel_e2e::cases::CaseWs;
    use koppel_e2e::receiver::Receiver;
    let doc = koppel_e2e::contract::document().await;
    let ws = CaseWs::create();
    let search = ws.search(json!({}), &["subject"]).await;
    let cases = ws.connector(&ws.owner, Some(&search)).await;
    let dsr_id = NewConnector::sample(&ws.id, &ws.owner)
        .description("dsr writer")
        .scopes(&["dsr:write", "dsr:read"])
        .id();
    let rx = Receiver::start(&[]).await;
    let mut subs = vec![];
    for (con, types) in [
        (cases.id.as_str(), ["case.created"]),
        (dsr_id.as_str(), ["dsr.created"]),
    ] {
        let body = json!({ "url": rx.url, "ca_certificate_pem": rx.ca_pem, "event_types": types });
        let r = ws
            .call(
                "POST",
                &format!("/v1/connectors/{con}/subscriptions"),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        subs.push(r.headers["location"].to_str().unwrap().to_owned());
    }
    let r = ws.call("POST", &format!("{}/ping", subs[0]), None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    ws.case(json!({ "case_type": "Omgevingsvergunning", "subject": "Dakkapel" }))
        .await;
    let token = NewCredential::token(&ws.id, &dsr_id).issue();
    let r = send(
        &base_url(),
        "POST",
        &format!("/v1/ws/{}/DataSubjectRequests", ws.id),
        &[("Authorization", &bearer(s(&token["secret"])))],
        Some(&json!({ "purposes": ["Access"] })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let got = rx.wait_for(3, 40).await;
    let mut types = std::collections::BTreeSet::new();
    for r in &got {
        let payload: Value = serde_json::from_str(&r.body).unwrap();
        let t = s(&payload["type"]).to_owned();
        let hook = &doc["webhooks"][&t]["post"];
        assert!(hook.is_object(), "`{t}` is not a webhook of the document");
        for h in hook["parameters"].as_array().unwrap() {
            let name = s(&h["name"]);
            assert!(r.header(name).is_some(), "{t}: no `{name}` header");
        }
        let schema = &hook["requestBody"]["content"]["application/json"]["schema"];
        koppel_e2e::contract::assert_conforms(&doc, schema, &payload);
        types.insert(t);
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["case.created", "dsr.created", "webhook.ping"],
        "{got:?}"
    );
}

#[tokio::test]
async fn users_are_added_and_deactivated_over_the_api() {
    let ws = Ws::new();
    let email = format!("nieuw-{}@gemeente.example", now());
    let body = json!({ "email": email, "name": "Nieuwe Medewerker", "rights": "read", "api_access": true });
    let r = call(&ws.owner, "POST", "/v1/users", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = s(&r.body["id"]).to_owned();
    assert_eq!(r.headers["location"], format!("/v1/users/{id}").as_str());
    assert_eq!(r.body["api_access"], true);
    assert_eq!(r.body["deactivated_at"], Value::Null);
    // The address is the user's, whatever its case.
    let again = json!({ "email": email.to_uppercase(), "name": "Dubbel", "rights": "read" });
    call(&ws.owner, "POST", "/v1/users", Some(&again))
        .await
        .assert_problem(409);
    // Nobody gives more than they hold.
    let (_, _, manager) = ws.user("read", true);
    let above = json!({ "email": "hoger@gemeente.example", "name": "H", "rights": "handle", "manage_connectors": true });
    let r = call(&manager, "POST", "/v1/users", Some(&above)).await;
    let mut fields = problem_fields(&r);
    fields.sort();
    assert_eq!(fields, ["manage_connectors", "rights"], "{}", r.body);
    let (_, _, plain) = ws.user("handle", false);
    call(&plain, "POST", "/v1/users", Some(&body))
        .await
        .assert_problem(403);

    // The new user's token works until they are deactivated.
    let (_, pat) = personal_token(&ws.id, &id);
    let theirs = bearer(&pat);
    assert_eq!(call(&theirs, "GET", "/v1/me", None).await.status, 200);
    // A connector acting for them blocks it, named, until it acts for someone else.
    let con = NewConnector::sample(&ws.id, &id)
        .scopes(&["cases:read"])
        .id();
    let deactivate = format!("/v1/users/{id}/deactivate");
    let r = call(&ws.owner, "POST", &deactivate, None).await;
    r.assert_problem(409);
    assert!(s(&r.body["detail"]).contains(&con), "{}", r.body);
    let path = format!("/v1/connectors/{con}");
    let tag = call(&ws.owner, "GET", &path, None).await.headers["etag"].clone();
    let h = [
        ("Authorization", ws.owner.as_str()),
        ("If-Match", tag.to_str().unwrap()),
    ];
    let moved = send(
        &base_url(),
        "PATCH",
        &path,
        &h,
        Some(&json!({ "acting_user_id": ws.owner_id })),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);

    let r = call(&ws.owner, "POST", &deactivate, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["deactivated_at"].is_string());
    assert_eq!(r.body["api_access"], false);
    call(&theirs, "GET", "/v1/me", None)
        .await
        .assert_problem(401);
    let tokens = call(&ws.owner, "GET", &format!("/v1/users/{id}/tokens"), None).await;
    assert!(
        tokens.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["revoked_at"].is_string()),
        "{}",
        tokens.body
    );
    // Nothing is made to act for them again.
    let tag = call(&ws.owner, "GET", &path, None).await.headers["etag"].clone();
    let h = [
        ("Authorization", ws.owner.as_str()),
        ("If-Match", tag.to_str().unwrap()),
    ];
    let back = send(
        &base_url(),
        "PATCH",
        &path,
        &h,
        Some(&json!({ "acting_user_id": id })),
    )
    .await;
    assert_eq!(problem_fields(&back), ["acting_user_id"], "{}", back.body);
    // Again: nothing changes. The owner and oneself: never.
    assert_eq!(call(&ws.owner, "POST", &deactivate, None).await.status, 200);
    let own = format!("/v1/users/{}/deactivate", ws.owner_id);
    call(&ws.owner, "POST", &own, None)
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn the_app_lists_and_revokes_the_tokens_it_got_through_otp_and_nothing_else() {
    let ws = Ws::new();
    let (u_id, email, _) = ws.user("read", false);
    let (con, app) = NewConnector::sample(&ws.id, &ws.owner_id)
        .description("Zaakportaal OTP")
        .scopes(&["cases:read", "dsr:read", "webhooks:manage"])
        .rate_limit(1000)
        .with_token();
    let (_, other_app) = ws.connector("Ander portaal");
    let (code, _) = request_code(&app, &email, 1).await;
    let r = redeem(&app, &email, &code).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let otp_id = s(&r.body["id"]).to_owned();
    let otp = bearer(s(&r.body["secret"]));

    let list = call(&app, "GET", "/v1/otp/tokens", None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["id"]))
        .collect();
    assert_eq!(ids, [otp_id.as_str()]);
    assert!(
        !list.body.to_string().contains("kpl_"),
        "no secrets: {}",
        list.body
    );
    let mine = call(&app, "GET", &format!("/v1/otp/tokens?user_id={u_id}"), None).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    let none = call(&app, "GET", "/v1/otp/tokens?user_id=usr_nobody", None).await;
    assert!(none.body["items"].as_array().unwrap().is_empty());

    // Not with the employee's token, not another app, not an organisation user.
    call(&otp, "GET", "/v1/otp/tokens", None)
        .await
        .assert_problem(403);
    call(&otp, "DELETE", &format!("/v1/otp/tokens/{otp_id}"), None)
        .await
        .assert_problem(403);
    assert!(
        call(&other_app, "GET", "/v1/otp/tokens", None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        delete(&other_app, &format!("/v1/otp/tokens/{otp_id}")).await,
        404
    );
    call(&ws.owner, "GET", "/v1/otp/tokens", None)
        .await
        .assert_problem(403);
    // An employee's session is not the app: it manages none of the app's webhooks either.
    let subs = format!("/v1/connectors/{con}/subscriptions");
    assert_eq!(call(&app, "GET", &subs, None).await.status, 200);
    call(&otp, "GET", &subs, None).await.assert_problem(403);
    // The app's own credential is not one it got through OTP.
    let own = s(&call(&app, "GET", "/v1/me", None).await.body["credential"]["id"]).to_owned();
    assert_eq!(delete(&app, &format!("/v1/otp/tokens/{own}")).await, 404);

    assert_eq!(delete(&app, &format!("/v1/otp/tokens/{otp_id}")).await, 204);
    assert_revoked(&otp).await;
    assert_eq!(delete(&app, &format!("/v1/otp/tokens/{otp_id}")).await, 204);
    let list = call(&app, "GET", "/v1/otp/tokens", None).await;
    assert!(
        list.body["items"].as_array().unwrap().is_empty(),
        "{}",
        list.body
    );
    let audit = call(&ws.owner, "GET", "/v1/audit?limit=10", None).await;
    let revoked = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["credential_id"] == otp_id.as_str() && e["action"] == "credential.revoked")
        .cloned()
        .expect("the revoke audited");
    assert_eq!(revoked["on_behalf_of"], u_id.as_str());
    assert_eq!(revoked["actor_credential_id"], own.as_str());
}
