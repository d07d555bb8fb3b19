//! The admin operations. Each validates its input, writes through the shared store, and
//! returns what it did: a line for people and, for scripts, what the API answers for the
//! same resource (its functions' own views); secrets appear in the output exactly once.

use connectors::ConnectorView;
use connectors::setup::{CreatedConnector, Issuer, Setup};
use koppel_shared::Ctx;
use koppel_shared::audit::Actor;
use koppel_shared::body::Fields;
use koppel_shared::connector_rules as rules;
use koppel_shared::credential::CredentialKind;
use koppel_shared::ids::new_id;
use koppel_shared::issue::{self as issuing, NewCredential, issue};
use koppel_shared::model::{
    Connector, Credential, JwtConfig, Level, Scope, Scopes, User, Workspace,
};
use koppel_shared::store::StoreError;
use koppel_shared::time_util::{now, rfc3339};
use p256::elliptic_curve::rand_core::OsRng;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde::Serialize;
use serde_json::Value;
use tokens::views::{CredentialView, IssuedCredential, MeWorkspace, UserView};

use crate::Output;

/// What a command did: `text` for people, `view` (printed by `--json`) for scripts.
pub struct Done<T> {
    pub text: String,
    pub view: T,
}

impl<T: Serialize> From<Done<T>> for Output {
    fn from(d: Done<T>) -> Self {
        Output {
            text: d.text,
            json: serde_json::to_value(d.view).expect("a view serializes"),
        }
    }
}

type Res<T> = Result<Done<T>, String>;

pub fn store_err(e: StoreError) -> String {
    match e {
        StoreError::Sdk { .. } => explain_aws(&e.to_string()),
        other => other.to_string(),
    }
}

/// An AWS SDK error as an operator can act on it: what is likely wrong and which setting
/// to look at, then what the SDK said (without its debug dump).
pub fn explain_aws(said: &str) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map(|e| format!("AWS_ENDPOINT_URL is `{e}`"))
        .unwrap_or_else(|_| "AWS_ENDPOINT_URL is not set (real AWS)".into());
    let has = |needles: &[&str]| needles.iter().any(|n| said.contains(n));
    let hint = if has(&["unexpected token", "DeserializeError", "Expected one of"]) {
        format!("the endpoint answered with something that is not AWS (a web page?): {endpoint}")
    } else if has(&[
        "dns error",
        "Connection refused",
        "tcp connect error",
        "timed out",
    ]) {
        format!("cannot reach AWS: {endpoint}; check it, AWS_REGION and the network")
    } else if has(&[
        "UnrecognizedClient",
        "InvalidSignature",
        "security token",
        "ExpiredToken",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    ]) {
        "AWS refused the credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)".into()
    } else if has(&["AccessDenied", "not authorized"]) {
        "these credentials may not do this (IAM): use the operator's role".into()
    } else if has(&["ResourceNotFound", "NonExistentQueue", "does not exist"]) {
        "a table, queue or secret named by KOPPEL_TABLE, KOPPEL_*_QUEUE_URL or KOPPEL_*_SECRET does not exist in this account and region (AWS_REGION)".into()
    } else if has(&[
        "no credentials",
        "CredentialsNotLoaded",
        "failed to load credentials",
    ]) {
        "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            .into()
    } else {
        return said.to_owned();
    };
    // The SDK's message up to its debug dump of the same error.
    let short = said.split(" (Unhandled(").next().unwrap_or(said);
    format!("{hint}\n  AWS said: {short}")
}

/// `90s`, `15m`, `12h`, `30d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<jiff::SignedDuration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90s, 15m, 12h, 30d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    if secs <= 0 {
        return Err("a lifetime must be positive".into());
    }
    Ok(jiff::SignedDuration::from_secs(secs))
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Flags {
    pub api_access: Option<bool>,
    pub manage_users: Option<bool>,
    pub manage_connectors: Option<bool>,
}

pub struct Issue {
    pub name: String,
    pub scopes: Option<Scopes>,
    pub rate_limit: Option<u32>,
    pub expires_in: Option<jiff::SignedDuration>,
}

/// A credential just issued, as the API shows one (the only time its secret is shown).
fn issued(c: &Credential, secret: &str) -> IssuedCredential {
    IssuedCredential {
        credential: CredentialView::of(c),
        secret: secret.to_owned(),
    }
}

fn check_email(email: &str) -> Result<(), String> {
    if koppel_shared::model::is_email(email) {
        Ok(())
    } else {
        Err(format!("`{email}` is not an e-mail address"))
    }
}

/// A new workspace as `GET /v1/me` shows one, with its owner as `GET /v1/users` does (the
/// API has no route that creates a workspace).
#[derive(Serialize)]
pub struct NewWorkspace {
    #[serde(flatten)]
    pub workspace: MeWorkspace,
    pub owner: UserView,
}

pub async fn create_workspace(
    ctx: &Ctx,
    name: &str,
    owner_email: &str,
    owner_name: &str,
) -> Res<NewWorkspace> {
    check_email(owner_email)?;
    let at = rfc3339(now());
    let ws = Workspace {
        workspace_id: new_id("ws"),
        name: name.to_owned(),
        created_at: at.clone(),
    };
    let owner = User {
        workspace_id: ws.workspace_id.clone(),
        user_id: new_id("usr"),
        email: owner_email.to_owned(),
        name: owner_name.to_owned(),
        rights: Level::Handle,
        api_access: true,
        manage_users: true,
        manage_connectors: true,
        owner: true,
        created_at: at,
        deactivated_at: None,
    };
    ctx.store
        .create_workspace(&ws, &owner)
        .await
        .map_err(store_err)?;
    Ok(Done {
        text: format!(
            "workspace {} ({name}), owner {} <{owner_email}>",
            ws.workspace_id, owner.user_id
        ),
        view: NewWorkspace {
            workspace: MeWorkspace {
                id: ws.workspace_id,
                name: ws.name,
            },
            owner: UserView::of(&owner),
        },
    })
}

async fn workspace_exists(ctx: &Ctx, ws: &str) -> Result<(), String> {
    match ctx.store.workspace(ws).await.map_err(store_err)? {
        Some(_) => Ok(()),
        None => Err(format!("no workspace {ws}")),
    }
}

pub async fn add_user(
    ctx: &Ctx,
    ws: &str,
    email: &str,
    name: &str,
    rights: Level,
    f: Flags,
) -> Res<UserView> {
    check_email(email)?;
    workspace_exists(ctx, ws).await?;
    let user = User {
        workspace_id: ws.to_owned(),
        user_id: new_id("usr"),
        email: email.to_owned(),
        name: name.to_owned(),
        rights,
        api_access: f.api_access.unwrap_or(false),
        manage_users: f.manage_users.unwrap_or(false),
        manage_connectors: f.manage_connectors.unwrap_or(false),
        owner: false,
        created_at: rfc3339(now()),
        deactivated_at: None,
    };
    ctx.store.create_user(&user).await.map_err(|e| match e {
        StoreError::Conflict(_) => format!("a user with e-mail {email} exists in {ws}"),
        other => other.to_string(),
    })?;
    Ok(Done {
        text: format!("user {} <{email}> ({rights})", user.user_id),
        view: UserView::of(&user),
    })
}

pub async fn update_user(
    ctx: &Ctx,
    ws: &str,
    user_id: &str,
    rights: Option<Level>,
    f: Flags,
) -> Res<UserView> {
    let mut user = ctx
        .store
        .user(ws, user_id)
        .await
        .map_err(store_err)?
        .ok_or(format!("no user {user_id} in {ws}"))?;
    if let Some(r) = rights {
        user.rights = r;
    }
    if let Some(v) = f.api_access {
        user.api_access = v;
    }
    if let Some(v) = f.manage_users {
        user.manage_users = v;
    }
    if let Some(v) = f.manage_connectors {
        user.manage_connectors = v;
    }
    ctx.store.save_user(&user).await.map_err(store_err)?;
    Ok(Done {
        text: format!("user {user_id} updated"),
        view: UserView::of(&user),
    })
}

pub struct NewConnector<'a> {
    pub workspace: &'a str,
    pub description: &'a str,
    /// Who it acts for: an existing user, or one made with it.
    pub acting: Acting<'a>,
    pub access_level: Level,
    pub scopes: Vec<Scope>,
    pub allow_ips: Vec<String>,
    pub rate_limit: Option<u32>,
    pub saved_search_id: Option<String>,
    /// Its first credential, issued with it.
    pub generate: Option<CredentialKind>,
}

pub enum Acting<'a> {
    User(&'a str),
    /// A new employee (e-mail, name, rights) without API access of their own.
    NewUser(&'a str, &'a str, Level),
}

/// `POST /v1/connectors` from the command line: the same rules and the same one
/// transaction (connector, new user, first credential).
pub async fn create_connector(ctx: &Ctx, n: NewConnector<'_>) -> Res<CreatedConnector> {
    let mut errors = Fields::new();
    rules::description(n.description, &mut errors);
    let ip_allow_list = rules::ip_allow_list(&n.allow_ips, &mut errors);
    if let Some(limit) = n.rate_limit {
        rules::rate_limit(limit, &mut errors);
    }
    errors.finish().map_err(|e| rules::describe(&e))?;
    workspace_exists(ctx, n.workspace).await?;
    let mut setup = Setup {
        token: n.generate.map(|k| (k, None)),
        ..Setup::default()
    };
    let acting_user = match n.acting {
        Acting::User(u) => {
            let user = ctx
                .store
                .user(n.workspace, u)
                .await
                .map_err(store_err)?
                .ok_or(format!("no user {u} in workspace {}", n.workspace))?;
            if user.deactivated_at.is_some() {
                return Err(format!("user {u} is deactivated"));
            }
            u.to_owned()
        }
        Acting::NewUser(email, name, rights) => {
            let (email, name) = (email.trim(), name.trim());
            check_email(email)?;
            if name.is_empty() {
                return Err("--new-user-name must not be empty".into());
            }
            let u = User {
                workspace_id: n.workspace.to_owned(),
                user_id: new_id("usr"),
                email: email.to_owned(),
                name: name.to_owned(),
                rights,
                api_access: false,
                manage_users: false,
                manage_connectors: false,
                owner: false,
                created_at: rfc3339(now()),
                deactivated_at: None,
            };
            let id = u.user_id.clone();
            setup.user = Some(u);
            id
        }
    };
    let con = Connector {
        description: n.description.to_owned(),
        acting_user_id: acting_user,
        access_level: n.access_level,
        scopes: n.scopes.into_iter().collect(),
        ip_allow_list,
        rate_limit: n.rate_limit,
        saved_search_id: n.saved_search_id,
        ..Connector::new(n.workspace.to_owned(), new_id("con"), rfc3339(now()))
    };
    let by = Issuer {
        actor: Actor::admin_cli(),
        scopes: None,
        expires_at: None,
    };
    let made = connectors::setup::store(ctx, &con, setup, &by)
        .await
        .map_err(|e| e.detail)?;
    let mut text = format!("connector {} ({})", con.connector_id, con.description);
    if let Some(u) = &made.connector_user {
        text.push_str(&format!("\nacting for new user {} <{}>", u.id, u.email));
    }
    if let Some(c) = &made.credential {
        text.push_str(&format!(
            "\n{} {}: {}",
            c.credential.kind, c.credential.id, c.secret
        ));
    }
    Ok(Done { text, view: made })
}

async fn connector(ctx: &Ctx, ws: &str, con: &str) -> Result<Connector, String> {
    ctx.store
        .connector(ws, con)
        .await
        .map_err(store_err)?
        .ok_or(format!("no connector {con} in {ws}"))
}

pub async fn set_connector_enabled(
    ctx: &Ctx,
    ws: &str,
    con_id: &str,
    enabled: bool,
) -> Res<ConnectorView> {
    let mut con = connector(ctx, ws, con_id).await?;
    let v = con.version;
    con.enabled = enabled;
    con.updated_at = rfc3339(now());
    ctx.store
        .save_connector(&mut con, v)
        .await
        .map_err(store_err)?;
    let word = if enabled { "enabled" } else { "disabled" };
    Ok(Done {
        text: format!("connector {con_id} {word}"),
        view: ConnectorView::of(&con),
    })
}

fn expiry(i: &Issue) -> Option<jiff::Timestamp> {
    i.expires_in.map(|d| now() + d)
}

pub async fn issue_connector_credential(
    ctx: &Ctx,
    ws: &str,
    con_id: &str,
    api_key: bool,
    i: Issue,
) -> Res<IssuedCredential> {
    let con = connector(ctx, ws, con_id).await?;
    let kind = if api_key {
        CredentialKind::ApiKey
    } else {
        CredentialKind::ConnectorToken
    };
    let (cred, secret) = issue(
        ctx,
        NewCredential {
            workspace_id: ws.to_owned(),
            kind,
            name: i.name.clone(),
            user_id: None,
            connector_id: Some(con.connector_id.clone()),
            acting_user_id: Some(con.acting_user_id.clone()),
            scopes: i.scopes.clone(),
            rate_limit: i.rate_limit,
            expires_at: expiry(&i),
            created_by: con.acting_user_id.clone(),
        },
        &Actor::admin_cli(),
        None,
    )
    .await
    .map_err(store_err)?;
    let how = if api_key {
        format!("headers:  API-Interface-Id: {con_id}\n          API-Key: {secret}")
    } else {
        format!("header:   Authorization: Bearer {secret}")
    };
    Ok(Done {
        text: format!(
            "{} {} for connector {con_id} (shown once, store it now)\n{how}",
            kind.as_str(),
            cred.credential_id
        ),
        view: issued(&cred, &secret),
    })
}

pub async fn issue_pat(ctx: &Ctx, ws: &str, user_id: &str, i: Issue) -> Res<IssuedCredential> {
    let user = ctx
        .store
        .user(ws, user_id)
        .await
        .map_err(store_err)?
        .ok_or(format!("no user {user_id} in {ws}"))?;
    if !user.api_access {
        return Err(format!(
            "user {user_id} has no api_access: grant it first (user update --api-access true)"
        ));
    }
    let (cred, secret) = issue(
        ctx,
        NewCredential {
            workspace_id: ws.to_owned(),
            kind: CredentialKind::PersonalAccessToken,
            name: i.name.clone(),
            user_id: Some(user_id.to_owned()),
            connector_id: None,
            acting_user_id: None,
            scopes: i.scopes.clone(),
            rate_limit: i.rate_limit,
            expires_at: expiry(&i),
            created_by: user_id.to_owned(),
        },
        &Actor::admin_cli(),
        None,
    )
    .await
    .map_err(store_err)?;
    Ok(Done {
        text: format!(
            "personal access token {} for {} (shown once, store it now)\nheader:   Authorization: Bearer {secret}",
            cred.credential_id, user.email
        ),
        view: issued(&cred, &secret),
    })
}

async fn credential(ctx: &Ctx, id: &str) -> Result<Credential, String> {
    ctx.store
        .credential(id)
        .await
        .map_err(store_err)?
        .ok_or(format!("no credential {id}"))
}

/// The revoked credential as the API lists it (`revoked_at` set; the API's revoke itself
/// answers 204).
pub async fn revoke(ctx: &Ctx, id: &str) -> Res<CredentialView> {
    let cred = credential(ctx, id).await?;
    let newly = issuing::revoke(ctx, &cred, &Actor::admin_cli())
        .await
        .map_err(store_err)?;
    let text = if newly {
        "revoked"
    } else {
        "was revoked already"
    };
    Ok(Done {
        text: format!("credential {id} {text}"),
        view: CredentialView::of(&credential(ctx, id).await?),
    })
}

pub async fn register_jwt(
    ctx: &Ctx,
    ws: &str,
    con_id: &str,
    issuer: &str,
    keys: Vec<Value>,
) -> Res<ConnectorView> {
    let mut errors = Fields::new();
    rules::issuer(issuer, "issuer", &mut errors);
    rules::jwt_keys(&keys, "keys", &mut errors);
    errors.finish().map_err(|e| rules::describe(&e))?;
    let mut con = connector(ctx, ws, con_id).await?;
    let v = con.version;
    let previous_issuer = con.jwt.as_ref().map(|j| j.issuer.clone());
    let mut all = match &con.jwt {
        Some(j) if j.issuer == issuer => j.keys.clone(),
        _ => Vec::new(),
    };
    for k in keys {
        all.retain(|old| old["kid"] != k["kid"]);
        all.push(k);
    }
    con.jwt = Some(JwtConfig {
        issuer: issuer.to_owned(),
        keys: all,
    });
    con.updated_at = rfc3339(now());
    ctx.store
        .register_issuer(&mut con, v, previous_issuer.as_deref()).await.map_err(|e| match e {
        StoreError::Conflict(_) => format!("issuer {issuer} is registered by another connector, or the connector changed meanwhile"),
        other => other.to_string(),
    })?;
    Ok(Done {
        text: format!("connector {con_id} accepts JWTs from {issuer}"),
        view: ConnectorView::of(&con),
    })
}

/// A fresh P-256 key pair: (private key PEM, public JWK).
pub fn generate_es256(kid: &str) -> (String, Value) {
    let secret = p256::SecretKey::random(&mut OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 encoding")
        .to_string();
    let mut jwk: Value =
        serde_json::from_str(&secret.public_key().to_jwk_string()).expect("JWK JSON");
    jwk["kid"] = kid.into();
    jwk["alg"] = "ES256".into();
    jwk["use"] = "sig".into();
    (pem, jwk)
}

/// A key pair made for a connector: the connector as registered, and the private key
/// (shown this once; Koppel keeps only the public half).
#[derive(Serialize)]
pub struct GeneratedKey {
    pub connector: ConnectorView,
    pub kid: String,
    pub alg: &'static str,
    pub issuer: String,
    pub public_jwk: Value,
    pub private_key_pem: String,
}

pub async fn generate_jwt_key(
    ctx: &Ctx,
    ws: &str,
    con_id: &str,
    issuer: &str,
    kid: &str,
) -> Res<GeneratedKey> {
    let (pem, jwk) = generate_es256(kid);
    let out = register_jwt(ctx, ws, con_id, issuer, vec![jwk.clone()]).await?;
    Ok(Done {
        text: format!(
            "{}\nkid {kid}, alg ES256; private key (shown once):\n{pem}",
            out.text
        ),
        view: GeneratedKey {
            connector: out.view,
            kid: kid.to_owned(),
            alg: "ES256",
            issuer: issuer.to_owned(),
            public_jwk: jwk,
            private_key_pem: pem,
        },
    })
}

/// Cases read and written per round, so a large file never sits in memory whole.
const IMPORT_CHUNK: usize = 1000;

type Line = (usize, serde_json::Map<String, Value>);

/// `path` as JSON lines, in chunks of [`IMPORT_CHUNK`] `(line number, body)` pairs.
fn chunks(
    path: &std::path::Path,
) -> Result<impl Iterator<Item = Result<Vec<Line>, String>> + use<>, String> {
    use std::io::BufRead;
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut lines = std::io::BufReader::new(file).lines().enumerate();
    Ok(std::iter::from_fn(move || {
        let mut chunk = Vec::new();
        for (i, line) in lines.by_ref() {
            let line = match line {
                Ok(l) => l,
                Err(e) => return Some(Err(format!("{shown}: {e}"))),
            };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(body) => chunk.push((i + 1, body)),
                Err(e) => return Some(Err(format!("line {}: {e}", i + 1))),
            }
            if chunk.len() == IMPORT_CHUNK {
                break;
            }
        }
        (!chunk.is_empty()).then_some(Ok(chunk))
    }))
}

/// Imports a JSON-lines file: every line is checked first (nothing is written if one is
/// bad), then the cases are written chunk by chunk; the file is read twice rather than
/// held in memory.
/// What an import wrote: case ids are sequential per workspace, so the first and last
/// bound them (`null` for an empty file).
#[derive(Serialize)]
pub struct Imported {
    pub workspace_id: String,
    pub imported: usize,
    pub first_id: Option<u64>,
    pub last_id: Option<u64>,
}

pub async fn import_cases(ctx: &Ctx, ws: &str, path: &std::path::Path) -> Res<Imported> {
    ctx.store
        .workspace(ws)
        .await
        .map_err(store_err)?
        .ok_or(format!("no workspace {ws}"))?;
    for chunk in chunks(path)? {
        cases::write::check_import(ctx, ws, &chunk?).await?;
    }
    let (mut count, mut first, mut last) = (0usize, None, None);
    for chunk in chunks(path)? {
        let ids = cases::write::import(ctx, ws, &chunk?).await?;
        count += ids.len();
        first = first.or(ids.first().copied());
        last = ids.last().copied().or(last);
    }
    Ok(Done {
        text: match (first, last) {
            (Some(f), Some(l)) => format!("imported {count} cases into {ws}: ids {f} to {l}"),
            _ => format!("no cases in {}", path.display()),
        },
        view: Imported {
            workspace_id: ws.to_owned(),
            imported: count,
            first_id: first,
            last_id: last,
        },
    })
}

#[cfg(test)]
mod aws_errors {
    use super::explain_aws;

    #[test]
    fn what_the_sdk_says_becomes_what_to_check() {
        let html = "dynamodb: unhandled error: Error at offset 0: unexpected token '<'. Expected one of '{', '[' (Unhandled(Unhandled { source: DeserializeError { kind: UnexpectedToken } }))";
        let e = explain_aws(html);
        assert!(
            e.starts_with("the endpoint answered with something that is not AWS"),
            "{e}"
        );
        assert!(
            e.contains("AWS said: dynamodb: unhandled error: Error at offset 0")
                && !e.contains("Unhandled {")
        );
        let refused = "dynamodb: unhandled error: dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111) (Unhandled(…))";
        assert!(explain_aws(refused).starts_with("cannot reach AWS"));
        let key = "dynamodb: service error: UnrecognizedClientException: The security token included in the request is invalid.";
        assert!(explain_aws(key).starts_with("AWS refused the credentials"));
        assert_eq!(explain_aws("something else"), "something else");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koppel_shared::jwt::validate_public_jwk;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90").unwrap(),
            jiff::SignedDuration::from_secs(90)
        );
        assert_eq!(
            parse_duration("15m").unwrap(),
            jiff::SignedDuration::from_mins(15)
        );
        assert_eq!(
            parse_duration("30d").unwrap(),
            jiff::SignedDuration::from_hours(30 * 24)
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn generated_key_is_a_registrable_public_jwk() {
        let (pem, jwk) = generate_es256("k9");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(validate_public_jwk(&jwk).is_ok());
        assert!(jwk.get("d").is_none());
    }

    #[test]
    fn emails() {
        assert!(check_email("a@b.nl").is_ok());
        assert!(check_email("a b@c.nl").is_err());
        assert!(check_email("nope").is_err());
    }
}
