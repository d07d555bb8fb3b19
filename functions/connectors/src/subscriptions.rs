//! Webhook subscriptions of a connector (PlanRadar webhooks, the Zaaksysteem trigger URL).
//!
//! - The Basic password and hidden header values are sealed with the data key when saved
//!   and never returned again: responses say `password_set` / `value_set`.
//! - The signing secret (`whsec_…`) is generated, shown once (in the create and
//!   rotate-secret answers, with `Cache-Control: no-store` so the idempotency layer never
//!   keeps it), and stored sealed. Rotation keeps the previous secret signing for 24 h.
//! - Delivery is the dispatcher's job; it opens the sealed values with
//!   `koppel_shared::webhook::reveal`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode, header};
use koppel_shared::body::{self, Fields};
use koppel_shared::crypto;
use koppel_shared::ids::new_id;
use koppel_shared::model::{Level, Scope, Scopes};
use koppel_shared::pipeline::RouteResult;
use koppel_shared::store::StoreError;
use koppel_shared::time_util::{now, rfc3339};
use koppel_shared::webhook::{
    BasicAuth, CustomHeader, PREVIOUS_SECRET_VALID_SECS, SigningSecret, Subscription, visible_with,
};
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, RequestExt, Response};
use rand::RngCore;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::input::Input;
use crate::subscription_rules as rules;
use crate::{connector_of, preconditions, repo};
use koppel_shared::pipeline::{created, versioned};

/// Bounded so that deleting a connector removes it and all its subscriptions in one
/// transaction (at most 100 items).
pub const MAX_PER_CONNECTOR: usize = 20;
/// Secrets kept per subscription: the current one and recently replaced ones.
const MAX_SIGNING_SECRETS: usize = 3;

pub(crate) const FIELDS: [&str; 6] = [
    "url",
    "ca_certificate_pem",
    "event_types",
    "basic_auth",
    "headers",
    "enabled",
];

pub(crate) fn require_scope(p: &Principal) -> Result<(), ApiError> {
    p.require(Some(Scope::WebhooksManage), Level::Read)
}

/// A fresh Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_signing_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    format!("whsec_{}", STANDARD.encode(b))
}

/// What a client may see of a subscription: hidden values and secrets only as "set".
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub connector_id: String,
    /// Absolute `https://` URL.
    pub url: String,
    /// The CA certificate(s) trusted for `url` (PEM), if any.
    pub ca_certificate_pem: Option<String>,
    pub event_types: Vec<String>,
    pub basic_auth: Option<BasicAuthView>,
    pub headers: Vec<HeaderView>,
    /// The secrets signing deliveries now: the current one first; a replaced one until
    /// `expires_at`. Their values are shown only once, as `signing_secret`.
    pub signing_secrets: Vec<SigningSecretView>,
    /// Only in the answers of create and rotate-secret: the new signing secret
    /// (`whsec_…`), shown this once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Only in the answer of enable with `replay_failed_since`: how many failed deliveries
    /// it started again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<usize>,
    pub enabled: bool,
    /// Why the dispatcher disabled it (410 Gone, failing too long).
    pub disabled_reason: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// HTTP Basic credentials: the password is never shown again.
#[derive(Serialize, JsonSchema)]
pub struct BasicAuthView {
    pub username: String,
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub password_set: bool,
}

/// A custom header: a hidden one's value is never shown again.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HeaderView {
    Hidden {
        name: String,
        /// `true`.
        #[schemars(extend("const" = true))]
        hidden: bool,
        value_set: bool,
    },
    Visible {
        name: String,
        /// `false`.
        #[schemars(extend("const" = false))]
        hidden: bool,
        value: Option<String>,
    },
}

#[derive(Serialize, JsonSchema)]
pub struct SigningSecretView {
    pub id: String,
    pub created_at: String,
    /// When a newer secret replaced this one: it signs until then.
    pub expires_at: Option<String>,
}

/// `GET /v1/connectors/{id}/subscriptions`.
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionView>,
}

impl SubscriptionView {
    pub fn of(s: &Subscription) -> Self {
        let headers = s
            .headers
            .iter()
            .map(|h| match h.hidden {
                true => HeaderView::Hidden {
                    name: h.name.clone(),
                    hidden: true,
                    value_set: h.value_sealed.is_some(),
                },
                false => HeaderView::Visible {
                    name: h.name.clone(),
                    hidden: false,
                    value: h.value.clone(),
                },
            })
            .collect();
        let signing_secrets = s
            .live_secrets(now())
            .map(|k| SigningSecretView {
                id: k.id.clone(),
                created_at: k.created_at.clone(),
                expires_at: k.expires_at.clone(),
            })
            .collect();
        Self {
            id: s.subscription_id.clone(),
            connector_id: s.connector_id.clone(),
            url: s.url.clone(),
            ca_certificate_pem: s.ca_certificate_pem.clone(),
            event_types: s.event_types.clone(),
            basic_auth: s.basic_auth.as_ref().map(|b| BasicAuthView {
                username: b.username.clone(),
                password_set: true,
            }),
            headers,
            signing_secrets,
            signing_secret: None,
            replayed: None,
            enabled: s.enabled,
            disabled_reason: s.disabled_reason.clone(),
            version: s.version,
            created_at: s.created_at.clone(),
            updated_at: s.updated_at.clone(),
        }
    }
}

/// The answer that carries a secret, shown once: never cached, never kept for replay.
fn with_secret(mut resp: Response<Body>) -> Response<Body> {
    no_store(&mut resp);
    resp
}

/// An answer carrying a secret is kept nowhere: not by caches, not for idempotent replay.
pub(crate) fn no_store(resp: &mut Response<Body>) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// New secret values from the body, sealed after every field has been checked.
#[derive(Default)]
struct NewValues {
    basic_password: Option<String>,
    /// (index into `headers`, value) of hidden headers given a new value.
    hidden_headers: Vec<(usize, String)>,
}

/// Applies the body to `s` (url and event types required on create), listing every bad
/// field; then seals the new secret values into it.
/// `seen`: the scopes a connector caller reads with ([`seen_with`]); its event types stay
/// within them.
async fn apply(
    ctx: &Ctx,
    body: &Map<String, Value>,
    s: &mut Subscription,
    creating: bool,
    seen: Option<&Scopes>,
) -> Result<(), ApiError> {
    let o = Input::new(body, &FIELDS);
    let mut e = Fields::new();
    o.unknown_fields(&mut e);
    let mut new = NewValues::default();
    let old_url = s.url.clone();
    if let Some(u) = o.string("url", creating, &mut e) {
        rules::url(u, &mut e);
        s.url = u.to_owned();
    }
    if let Some(pem) = o.nullable_string("ca_certificate_pem", &mut e) {
        if let Some(pem) = pem {
            rules::ca_certificate_pem(pem, now().as_second(), &mut e);
        }
        s.ca_certificate_pem = pem.map(|p| format!("{}\n", p.trim()));
    }
    if let Some(types) = o.strings("event_types", creating, &mut e) {
        let within = seen.map(|scopes| (scopes, "this credential's scopes"));
        s.event_types = rules::event_types_within(&types, within, &mut e);
    }
    if let Some(b) = o.bool("enabled", &mut e) {
        s.enabled = b;
        if b {
            s.disabled_reason = None;
        }
    }
    if let Some(basic) = o.nullable_object("basic_auth", &mut e) {
        s.basic_auth = match basic {
            None => None,
            Some(m) => basic_auth(m, s.basic_auth.take(), &mut new, &mut e),
        };
    }
    let basic_set = s.basic_auth.is_some();
    match o.array("headers", &mut e) {
        Some(list) => s.headers = headers(list, &s.headers, basic_set, &mut new, &mut e),
        None => {
            // Unchanged headers must still fit the (possibly new) Basic credentials.
            if s.headers
                .iter()
                .any(|h| rules::reserved_header(&h.name, basic_set))
            {
                e.push(
                    "headers",
                    "an `Authorization` header conflicts with basic_auth: remove one of them",
                );
            }
        }
    }
    // Stored secrets were given for one receiver: a move to another origin (scheme, host,
    // port) must not carry them along unseen. Refused, naming what to send again, rather
    // than dropped: a subscription that silently lost its credentials would fail later.
    if !creating && !rules::same_origin(&old_url, &s.url) {
        let kept: Vec<usize> = s
            .headers
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                h.hidden
                    && h.value_sealed.is_some()
                    && !new.hidden_headers.iter().any(|(j, _)| j == i)
            })
            .map(|(i, _)| i)
            .collect();
        let basic_kept = s.basic_auth.is_some() && new.basic_password.is_none();
        rules::secrets_to_resend(basic_kept, &kept, &mut e);
    }
    e.finish()?;
    if let Some(pw) = new.basic_password {
        let sealed = crypto::seal(&ctx.data_key, &s.aad("basic_password"), &pw).await?;
        if let Some(b) = s.basic_auth.as_mut() {
            b.password_sealed = sealed;
        }
    }
    for (i, value) in new.hidden_headers {
        let field = Subscription::header_field(&s.headers[i].name);
        s.headers[i].value_sealed =
            Some(crypto::seal(&ctx.data_key, &s.aad(&field), &value).await?);
    }
    Ok(())
}

fn basic_auth(
    m: &Map<String, Value>,
    existing: Option<BasicAuth>,
    new: &mut NewValues,
    e: &mut Fields,
) -> Option<BasicAuth> {
    let o = Input::new(m, &["username", "password"]).nested("basic_auth");
    o.unknown_fields(e);
    let username = o.string("username", true, e);
    if let Some(u) = username {
        rules::basic_username(u, e);
    }
    let kept = existing.map(|b| b.password_sealed);
    match o.string("password", kept.is_none(), e) {
        Some(pw) => {
            rules::basic_password(pw, e);
            new.basic_password = Some(pw.to_owned());
        }
        // Omitted on an update: the stored password stays.
        None if kept.is_some() => {}
        None => return None,
    }
    Some(BasicAuth {
        username: username?.to_owned(),
        password_sealed: kept.unwrap_or_default(),
    })
}

/// The new header list. A hidden header sent without a value keeps its stored value.
fn headers(
    list: &[Value],
    existing: &[CustomHeader],
    basic_set: bool,
    new: &mut NewValues,
    e: &mut Fields,
) -> Vec<CustomHeader> {
    if list.len() > rules::MAX_HEADERS {
        e.push("headers", format!("at most {} headers", rules::MAX_HEADERS));
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let Some(m) = v.as_object() else {
            e.push(
                format!("headers[{i}]"),
                "must be an object with name, value, hidden",
            );
            continue;
        };
        let o = Input::new(m, &["name", "value", "hidden"]).nested(&format!("headers[{i}]"));
        o.unknown_fields(e);
        let name = o.string("name", true, e);
        let hidden = o.bool("hidden", e).unwrap_or(false);
        let value = o.string("value", false, e);
        let Some(name) = name else { continue };
        rules::header_name(name, i, basic_set, &mut seen, e);
        if let Some(v) = value {
            rules::header_value(v, i, e);
        }
        let kept = existing
            .iter()
            .find(|h| h.hidden && h.name.eq_ignore_ascii_case(name))
            .and_then(|h| h.value_sealed.clone());
        let header = match (hidden, value) {
            (false, Some(v)) => CustomHeader {
                name: name.to_owned(),
                hidden: false,
                value: Some(v.to_owned()),
                value_sealed: None,
            },
            (true, Some(v)) => {
                new.hidden_headers.push((out.len(), v.to_owned()));
                CustomHeader {
                    name: name.to_owned(),
                    hidden: true,
                    value: None,
                    value_sealed: None,
                }
            }
            (true, None) if kept.is_some() => CustomHeader {
                name: name.to_owned(),
                hidden: true,
                value: None,
                value_sealed: kept,
            },
            (_, None) => {
                e.push(format!("headers[{i}].value"), "is required");
                continue;
            }
        };
        out.push(header);
    }
    out
}

/// What a caller may see of webhooks: everything for the organisation's users; for the
/// connector itself, the event types its credential's scopes show it (a credential
/// narrowed to `webhooks:manage` must not route case data anywhere).
pub(crate) fn seen_with(p: &Principal) -> Option<&Scopes> {
    p.connector_id.is_some().then_some(&p.scopes)
}

fn visible(p: &Principal, s: &Subscription) -> bool {
    seen_with(p).is_none_or(|scopes| s.event_types.iter().all(|t| visible_with(t, scopes)))
}

pub(crate) async fn subscription_of(
    p: &Principal,
    ctx: &Ctx,
    con: &str,
    sub: &str,
) -> Result<Subscription, ApiError> {
    // The connector first: another workspace's connector is a 404 like any unknown id.
    connector_of(p, ctx, con).await?;
    repo::subscription(ctx, &p.workspace_id, con, sub)
        .await?
        .filter(|s| visible(p, s))
        .ok_or_else(ApiError::not_found)
}

fn location(s: &Subscription) -> String {
    format!(
        "/v1/connectors/{}/subscriptions/{}",
        s.connector_id, s.subscription_id
    )
}

pub async fn create(p: &Principal, req: &Request, ctx: &Ctx, con: &str) -> RouteResult {
    require_scope(p)?;
    connector_of(p, ctx, con).await?;
    let body: Map<String, Value> = body::json(req)?;
    if repo::subscriptions(ctx, &p.workspace_id, con).await?.len() >= MAX_PER_CONNECTOR {
        return Err(ApiError::conflict(format!(
            "A connector has at most {MAX_PER_CONNECTOR} subscriptions."
        )));
    }
    let at = rfc3339(now());
    let mut s = Subscription {
        workspace_id: p.workspace_id.clone(),
        connector_id: con.to_owned(),
        subscription_id: new_id("sub"),
        url: String::new(),
        ca_certificate_pem: None,
        event_types: Vec::new(),
        basic_auth: None,
        headers: Vec::new(),
        signing_secrets: Vec::new(),
        enabled: true,
        disabled_reason: None,
        version: 1,
        created_at: at.clone(),
        updated_at: at.clone(),
    };
    apply(ctx, &body, &mut s, true, seen_with(p)).await?;
    let (secret, sealed) = mint_signing_secret(ctx, &s, at).await?;
    s.signing_secrets.push(sealed);
    match repo::save_subscription(ctx, &s, None).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(ApiError::not_found()),
        Err(e) => return Err(e.into()),
    }
    let mut out = SubscriptionView::of(&s);
    out.signing_secret = Some(secret);
    Ok(with_secret(created(&location(&s), &out, Some(s.version))?))
}

/// A new signing secret for `s`: the plaintext (shown once) and its sealed record.
async fn mint_signing_secret(
    ctx: &Ctx,
    s: &Subscription,
    created_at: String,
) -> Result<(String, SigningSecret), ApiError> {
    let secret = new_signing_secret();
    let id = new_id("key");
    let sealed = crypto::seal(
        &ctx.data_key,
        &s.aad(&Subscription::secret_field(&id)),
        &secret,
    )
    .await?;
    Ok((
        secret,
        SigningSecret {
            id,
            sealed,
            created_at,
            expires_at: None,
        },
    ))
}

pub async fn list(p: &Principal, ctx: &Ctx, con: &str) -> RouteResult {
    require_scope(p)?;
    connector_of(p, ctx, con).await?;
    let mut all = repo::subscriptions(ctx, &p.workspace_id, con).await?;
    all.sort_by(|a, b| {
        (&a.created_at, &a.subscription_id).cmp(&(&b.created_at, &b.subscription_id))
    });
    let items = all
        .iter()
        .filter(|s| visible(p, s))
        .map(SubscriptionView::of)
        .collect();
    koppel_shared::pipeline::json(StatusCode::OK, &SubscriptionList { items })
}

pub async fn get(p: &Principal, ctx: &Ctx, con: &str, sub: &str) -> RouteResult {
    require_scope(p)?;
    let s = subscription_of(p, ctx, con, sub).await?;
    versioned(StatusCode::OK, &SubscriptionView::of(&s), s.version)
}

async fn save_over(ctx: &Ctx, s: &mut Subscription, expected: u64) -> Result<(), ApiError> {
    s.reseal(&ctx.data_key).await?;
    s.version = expected + 1;
    s.updated_at = rfc3339(now());
    match repo::save_subscription(ctx, s, Some(expected)).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(preconditions::lost_race()),
        Err(e) => Err(e.into()),
    }
}

pub async fn update(p: &Principal, req: &Request, ctx: &Ctx, con: &str, sub: &str) -> RouteResult {
    require_scope(p)?;
    let mut s = subscription_of(p, ctx, con, sub).await?;
    preconditions::require(req, s.version)?;
    let body: Map<String, Value> = body::json(req)?;
    let expected = s.version;
    let was_enabled = s.enabled;
    apply(ctx, &body, &mut s, false, seen_with(p)).await?;
    save_over(ctx, &mut s, expected).await?;
    // Turned on again: as with `…/enable`, the failing streak starts afresh.
    if s.enabled && !was_enabled {
        koppel_shared::delivery::clear_failures(ctx, &s.subscription_id).await?;
    }
    versioned(StatusCode::OK, &SubscriptionView::of(&s), s.version)
}

pub async fn delete(p: &Principal, req: &Request, ctx: &Ctx, con: &str, sub: &str) -> RouteResult {
    require_scope(p)?;
    let s = subscription_of(p, ctx, con, sub).await?;
    preconditions::optional(req, s.version)?;
    match repo::delete_subscription(ctx, &s).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(preconditions::lost_race()),
        Err(e) => return Err(e.into()),
    }
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static response"))
}

/// Enables a subscription again (after the dispatcher disabled it on a 410 or a long
/// failing streak): its streak starts afresh. Safe without `If-Match` (checked when sent).
/// With `?replay_failed_since=`, the deliveries made since then that failed are tried again
/// (see [`crate::deliveries::replay_failed`]).
pub async fn enable(p: &Principal, req: &Request, ctx: &Ctx, con: &str, sub: &str) -> RouteResult {
    require_scope(p)?;
    let since = match req.query_string_parameters().first("replay_failed_since") {
        None => None,
        Some(v) => {
            let mut e = Fields::new();
            let t = rules::replay_since(v, now(), &mut e);
            e.finish()?;
            t
        }
    };
    let mut s = subscription_of(p, ctx, con, sub).await?;
    preconditions::optional(req, s.version)?;
    if !s.enabled {
        s.enabled = true;
        s.disabled_reason = None;
        let expected = s.version;
        save_over(ctx, &mut s, expected).await?;
    }
    koppel_shared::delivery::clear_failures(ctx, &s.subscription_id).await?;
    let mut out = SubscriptionView::of(&s);
    if let Some(t) = since {
        out.replayed = Some(crate::deliveries::replay_failed(p, ctx, &s, t).await?);
    }
    versioned(StatusCode::OK, &out, s.version)
}

/// A new signing secret, shown once. The one it replaces keeps signing for 24 h, so a
/// receiver can switch over without losing deliveries; older ones stop at once.
pub async fn rotate_secret(
    p: &Principal,
    req: &Request,
    ctx: &Ctx,
    con: &str,
    sub: &str,
) -> RouteResult {
    require_scope(p)?;
    let mut s = subscription_of(p, ctx, con, sub).await?;
    preconditions::optional(req, s.version)?;
    let t = now();
    let until = rfc3339(t + jiff::SignedDuration::from_secs(PREVIOUS_SECRET_VALID_SECS));
    let live: Vec<SigningSecret> = s.live_secrets(t).cloned().collect();
    let mut kept: Vec<SigningSecret> = live
        .into_iter()
        .map(|mut k| {
            k.expires_at.get_or_insert_with(|| until.clone());
            k
        })
        .collect();
    kept.truncate(MAX_SIGNING_SECRETS - 1);
    let (secret, sealed) = mint_signing_secret(ctx, &s, rfc3339(t)).await?;
    s.signing_secrets = std::iter::once(sealed).chain(kept).collect();
    let expected = s.version;
    save_over(ctx, &mut s, expected).await?;
    let mut out = SubscriptionView::of(&s);
    out.signing_secret = Some(secret);
    Ok(with_secret(versioned(StatusCode::OK, &out, s.version)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_event_is_a_subscription_create_by_a_user() {
        let text = include_str!("../../../events/connectors-create-subscription.json");
        let req = lambda_http::request::from_str(text).unwrap();
        assert_eq!(
            koppel_shared::pipeline::resource(&req),
            "/v1/connectors/{id}/subscriptions"
        );
        use lambda_http::RequestExt;
        assert_eq!(
            req.path_parameters().first("id"),
            Some("con_0123456789abcdef")
        );
        let p = koppel_shared::pipeline::principal(&req).unwrap();
        assert_eq!(p.connector_id, None);
        assert!(require_scope(&p).is_ok());
        let body: Map<String, Value> = body::json(&req).unwrap();
        assert!(body.contains_key("url"));
    }

    #[test]
    fn signing_secrets_are_standard_webhooks_secrets() {
        let s = new_signing_secret();
        let raw = STANDARD.decode(s.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(s, new_signing_secret());
    }

    #[test]
    fn hidden_values_are_never_in_the_json() {
        let sub = Subscription {
            workspace_id: "ws".into(),
            connector_id: "con".into(),
            subscription_id: "sub".into(),
            url: "https://h.example/".into(),
            ca_certificate_pem: None,
            event_types: vec!["case.created".into()],
            basic_auth: Some(BasicAuth {
                username: "u".into(),
                password_sealed: "kdk1.v.SEALEDPW".into(),
            }),
            headers: vec![CustomHeader {
                name: "X-Key".into(),
                hidden: true,
                value: None,
                value_sealed: Some("kdk1.v.SEALEDHDR".into()),
            }],
            signing_secrets: vec![SigningSecret {
                id: "key_1".into(),
                sealed: "kdk1.v.SEALEDSIG".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                expires_at: None,
            }],
            enabled: true,
            disabled_reason: None,
            version: 1,
            created_at: "t".into(),
            updated_at: "t".into(),
        };
        let text = serde_json::to_string(&SubscriptionView::of(&sub)).unwrap();
        assert!(!text.contains("SEALED"), "{text}");
        assert!(text.contains("\"password_set\":true"));
        assert!(text.contains("\"value_set\":true"));
    }
}
