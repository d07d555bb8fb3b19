//! The `connectors` function: connector profiles (koppelprofiel / app connector) and their
//! webhook subscriptions, administered by a workspace's own users who hold
//! `manage_connectors`, with a personal access token.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/connectors`, `GET /v1/connectors?limit=&cursor=` | create, list (paged, id order) |
//! | `GET`, `PATCH`, `DELETE /v1/connectors/{id}` | read (`ETag`), change (`If-Match` required), delete |
//! | `POST /v1/connectors/{id}/disable`, `…/enable` | its credentials fail (403) / work again at once |
//! | `…/{id}/subscriptions[/{subscriptionId}]` | webhook subscriptions, see `subscriptions.rs` |
//! | `POST …/subscriptions/{subscriptionId}/enable[?replay_failed_since=]` | re-enable a (dispatcher-)disabled subscription, optionally replaying what failed |
//! | `…/subscriptions/{subscriptionId}/deliveries[/{deliveryId}[/replay]]`, `…/ping` | delivery log, replay, test ping: see `deliveries.rs` |
//! | `GET /v1/webhook-event-types` | the published event types |
//! | `POST`, `GET …/{id}/certificates`, `DELETE …/certificates/{fingerprint}` | client certificates (mutual TLS), see `certificates.rs` |
//!
//! Webhook subscriptions and their deliveries are also managed by the connector itself,
//! with a credential holding `webhooks:manage`, for its own subscriptions only.
//!
//! The authorizer reads the connector on every request, so disabling it (403) or deleting it
//! (401) makes all its credentials fail on their next request.

pub mod certificates;
mod deliveries;
pub mod input;
pub mod manifest;
pub use koppel_shared::preconditions;
mod repo;
pub mod setup;
pub mod subscription_rules;
mod subscriptions;

use std::future::Future;
use std::time::Duration;

use http::{Method, StatusCode};
use koppel_shared::body::{self, Fields};
use koppel_shared::connector_rules as rules;
use koppel_shared::handler;
use koppel_shared::ids::new_id;
use koppel_shared::model::{Connector, ImportedManifest, JwtConfig, User};
use koppel_shared::model::{Level, Scope, Scopes};
use koppel_shared::organisation::{self, Permission};
use koppel_shared::paging::{self, Pager};
use koppel_shared::pipeline::{self, RouteResult, versioned};
use koppel_shared::retry::{Schedule, run_with_retries};
use koppel_shared::routes::{Call, Doc, Precondition, Query, Route, schema};
use koppel_shared::store::StoreError;
use koppel_shared::time_util::{now, rfc3339};
use koppel_shared::webhook::EVENT_TYPES;
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use certificates::CertificateList;
use deliveries::{DeliveryList, DeliveryView};
use input::Input;
use koppel_shared::model::client_cert::{self, ClientCertificate};
use subscriptions::{SubscriptionList, SubscriptionView};

/// A route's description, ending with who may call every route of the function.
macro_rules! managed {
    () => {
        "Managed by the workspace's users with `manage_connectors`, with a personal access token (a connector's credentials get 403)."
    };
    ($d:literal) => {
        concat!($d, " ", managed!())
    };
}

/// A webhook route's description, ending with who may call it.
macro_rules! webhooks {
    () => {
        "Managed by the workspace's users with `manage_connectors` (personal access token), and by the connector itself with a credential holding `webhooks:manage`, for its own subscriptions only (another connector's id is 404)."
    };
    ($d:literal) => {
        concat!($d, " ", webhooks!())
    };
}

/// `f(p, req, ctx, {id}, {subscriptionId})`: a route's call on one subscription.
macro_rules! on_subscription {
    ($c:ident, $f:path) => {
        $f(
            $c.p,
            $c.req,
            $c.ctx,
            &$c.param("id"),
            &$c.param("subscriptionId"),
        )
    };
}

/// `f(p, ctx, {id}, {subscriptionId}, {deliveryId})`: a route's call on one delivery.
macro_rules! on_delivery {
    ($c:ident, $f:path) => {
        $f(
            $c.p,
            $c.ctx,
            &$c.param("id"),
            &$c.param("subscriptionId"),
            &$c.param("deliveryId"),
        )
    };
}

/// The routes of the function, as template.yaml declares them (checked by a test).
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/v1/webhook-event-types",
        scope: None,
        level: Level::Read,
        summary: "The published webhook event types",
        handler: handler!(|_c| async { event_types() }),
        doc: Doc {
            response: Some(schema::<EventTypeList>),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors",
        scope: None,
        level: Level::Read,
        summary: "Create a connector",
        handler: handler!(|c| managed(c, create(c.p, c.req, c.ctx))),
        doc: Doc {
            request: Some(schema::<input::NewConnector>),
            response: Some(schema::<setup::CreatedConnector>),
            status: 201,
            etag: true,
            errors: &[409],
            description: managed!(
                "409 when the JWT issuer is registered by another connector, or the new connector user's e-mail address is taken. Acting for someone else, or creating a connector user (`create_connector_user`), needs the owner or `manage_users` (403). With `generate_token` the answer holds the connector's first credential, its secret shown this once (`Cache-Control: no-store`); all of it is made in one transaction."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors",
        scope: None,
        level: Level::Read,
        summary: "List connectors",
        handler: handler!(|c| managed(c, list(c.p, c.req, c.ctx))),
        doc: Doc {
            response: Some(schema::<ConnectorList>),
            query: PAGE_QUERY,
            errors: &[422],
            description: managed!(
                "The workspace's connectors in id order, paged (`limit` 1 to 200, default 50)."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}",
        scope: None,
        level: Level::Read,
        summary: "Read a connector",
        handler: handler!(|c| managed(c, get(c.p, c.ctx, &c.param("id")))),
        doc: Doc {
            response: Some(schema::<ConnectorView>),
            etag: true,
            description: managed!(),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::PATCH,
        path: "/v1/connectors/{id}",
        scope: None,
        level: Level::Read,
        summary: "Change a connector",
        handler: handler!(|c| managed(c, update(c.p, c.req, c.ctx, &c.param("id")))),
        doc: Doc {
            request: Some(schema::<input::ConnectorPatch>),
            response: Some(schema::<ConnectorView>),
            precondition: Precondition::Required,
            etag: true,
            errors: &[409],
            description: managed!(
                "An absent field stays as it is; `null` clears `rate_limit`, `jwt` or `saved_search_id`. 409 when the JWT issuer is registered by another connector."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::DELETE,
        path: "/v1/connectors/{id}",
        scope: None,
        level: Level::Read,
        summary: "Delete a connector",
        handler: handler!(|c| managed(c, delete(c.p, c.req, c.ctx, &c.param("id")))),
        doc: Doc {
            precondition: Precondition::Optional,
            description: managed!(
                "With its subscriptions; every credential of it fails (401) from the next request on."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/manifest",
        scope: None,
        level: Level::Read,
        summary: "Import a partner's manifest onto a connector",
        handler: handler!(|c| managed(c, import_manifest(c.p, c.req, c.ctx, &c.param("id")))),
        doc: Doc {
            request: Some(schema::<input::ManifestInput>),
            response: Some(schema::<ConnectorView>),
            precondition: Precondition::Optional,
            etag: true,
            description: managed!(
                "AFAS \"Importeren GetConnectoren\": the scopes (operations) the partner's app needs replace the connector's, its description (if given) replaces the connector's, and the webhook event types it declares are kept (`manifest`). One 422 names every unknown field, scope and event type, and every event type its scopes would not let the connector receive."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/disable",
        scope: None,
        level: Level::Read,
        summary: "Disable a connector",
        handler: handler!(|c| managed(c, set_enabled(c.p, c.req, c.ctx, &c.param("id"), false))),
        doc: Doc {
            response: Some(schema::<ConnectorView>),
            precondition: Precondition::Optional,
            etag: true,
            description: managed!(
                "Every credential of the connector gets 403 from the next request on. Safe to repeat."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/enable",
        scope: None,
        level: Level::Read,
        summary: "Enable a connector",
        handler: handler!(|c| managed(c, set_enabled(c.p, c.req, c.ctx, &c.param("id"), true))),
        doc: Doc {
            response: Some(schema::<ConnectorView>),
            precondition: Precondition::Optional,
            etag: true,
            description: managed!(
                "Its credentials work again from the next request on. Safe to repeat."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/certificates",
        scope: None,
        level: Level::Read,
        summary: "Register a client certificate",
        // Who and which connector are checked before the body (another workspace's id is
        // a 404 whatever is sent), and again on every try of the change (certificates.rs).
        handler: handler!(|c| changing(
            c,
            certificates::register(c.p, c.req, c.ctx, &c.param("id"))
        )),
        doc: Doc {
            request: Some(schema::<input::NewClientCertificate>),
            response: Some(schema::<ClientCertificate>),
            status: 201,
            errors: &[409],
            description: managed!(
                "For mutual TLS: Koppel keeps the SHA-256 fingerprint, subject, issuer, serial and validity, never a key (a PEM holding a private key is a 422). Expired is refused; not yet valid is accepted. 409 when it is registered already or the connector has 10. With `require_client_certificate` the connector's credentials work only with one of these, valid now (it can be switched on only when one is)."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/certificates",
        scope: None,
        level: Level::Read,
        summary: "List a connector's client certificates",
        handler: handler!(|c| managed(c, certificates::list(c.p, c.ctx, &c.param("id")))),
        doc: Doc {
            response: Some(schema::<CertificateList>),
            description: managed!("Oldest first."),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/certificates/{fingerprint}",
        scope: None,
        level: Level::Read,
        summary: "Get a client certificate",
        handler: handler!(|c| managed(
            c,
            certificates::get(c.p, c.ctx, &c.param("id"), &c.param("fingerprint"))
        )),
        doc: Doc {
            response: Some(schema::<ClientCertificate>),
            description: managed!("By its SHA-256 fingerprint (hex)."),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::DELETE,
        path: "/v1/connectors/{id}/certificates/{fingerprint}",
        scope: None,
        level: Level::Read,
        summary: "Delete a client certificate",
        handler: handler!(|c| certificates::delete(
            c.p,
            c.ctx,
            &c.param("id"),
            &c.param("fingerprint")
        )),
        doc: Doc {
            description: managed!(
                "By its SHA-256 fingerprint (hex). It no longer admits the connector's credentials from the next request on. 409 when the connector requires a certificate and this is its last one valid now: register the successor first, or disable the connector to stop it at once."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/subscriptions",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Create a webhook subscription",
        handler: handler!(|c| webhooks(
            c,
            Changing,
            subscriptions::create(c.p, c.req, c.ctx, &c.param("id"))
        )),
        doc: Doc {
            request: Some(schema::<input::NewSubscription>),
            response: Some(schema::<SubscriptionView>),
            status: 201,
            etag: true,
            description: webhooks!(
                "The answer holds the signing secret (`signing_secret`), shown this once (`Cache-Control: no-store`). A connector has at most 20 subscriptions (409)."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/subscriptions",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "List a connector's subscriptions",
        handler: handler!(|c| webhooks(
            c,
            Reading,
            subscriptions::list(c.p, c.ctx, &c.param("id"))
        )),
        doc: Doc {
            response: Some(schema::<SubscriptionList>),
            description: webhooks!("Oldest first."),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Read a subscription",
        handler: handler!(|c| webhooks(
            c,
            Reading,
            subscriptions::get(c.p, c.ctx, &c.param("id"), &c.param("subscriptionId"))
        )),
        doc: Doc {
            response: Some(schema::<SubscriptionView>),
            etag: true,
            description: webhooks!(),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::PATCH,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Change a subscription",
        handler: handler!(|c| webhooks(c, Changing, on_subscription!(c, subscriptions::update))),
        doc: Doc {
            request: Some(schema::<input::SubscriptionPatch>),
            response: Some(schema::<SubscriptionView>),
            precondition: Precondition::Required,
            etag: true,
            description: webhooks!(
                "An absent field stays as it is. A hidden header sent without `value` keeps its stored value; a new URL on another origin (scheme, host, port) needs the Basic password and hidden header values again (422 naming them)."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::DELETE,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Delete a subscription",
        handler: handler!(|c| webhooks(c, Changing, on_subscription!(c, subscriptions::delete))),
        doc: Doc {
            precondition: Precondition::Optional,
            description: webhooks!(),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}/rotate-secret",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Rotate a subscription's signing secret",
        handler: handler!(|c| webhooks(
            c,
            Changing,
            on_subscription!(c, subscriptions::rotate_secret)
        )),
        doc: Doc {
            response: Some(schema::<SubscriptionView>),
            precondition: Precondition::Optional,
            etag: true,
            description: webhooks!(
                "A new signing secret (`signing_secret`), shown this once (`Cache-Control: no-store`); the one it replaces keeps signing for 24 hours."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}/enable",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Re-enable a disabled subscription",
        handler: handler!(|c| webhooks(c, Changing, on_subscription!(c, subscriptions::enable))),
        doc: Doc {
            response: Some(schema::<SubscriptionView>),
            precondition: Precondition::Optional,
            etag: true,
            query: &[Query {
                name: "replay_failed_since",
                description: "An RFC 3339 time: the deliveries made since then that failed are tried again (newest first, at most 100 per call, from the last 1000 deliveries; call again for the rest). The answer's `replayed` says how many.",
                kind: "string",
            }],
            errors: &[422],
            description: webhooks!(
                "After the dispatcher disabled it (410 Gone, or failing too long): its failing streak starts afresh. With `replay_failed_since`, what failed meanwhile is tried again."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}/ping",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Send a test ping",
        handler: handler!(|c| webhooks(
            c,
            Changing,
            deliveries::ping(c.p, c.ctx, &c.param("id"), &c.param("subscriptionId"))
        )),
        doc: Doc {
            response: Some(schema::<DeliveryView>),
            status: 202,
            description: webhooks!(
                "A `webhook.ping` event, delivered like any other; the answer is its delivery (`Location`). 409 while the subscription is disabled."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}/deliveries",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "List a subscription's deliveries",
        handler: handler!(|c| webhooks(c, Reading, on_subscription!(c, deliveries::list))),
        doc: Doc {
            response: Some(schema::<DeliveryList>),
            query: DELIVERY_QUERY,
            errors: &[422],
            description: webhooks!(
                "Newest first, kept 30 days, paged (`limit` 1 to 100, default 20); without attempts and payload. `status` and `event_type` filter it (a filtered page reads at most 1000 deliveries, so it may hold fewer than `limit` and still have a `next_cursor`)."
            ),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}/deliveries/{deliveryId}",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Read a delivery with its attempts",
        handler: handler!(|c| webhooks(c, Reading, on_delivery!(c, deliveries::get))),
        doc: Doc {
            response: Some(schema::<DeliveryView>),
            description: webhooks!("With every attempt and the body sent (never the headers)."),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/subscriptions/{subscriptionId}/deliveries/{deliveryId}/replay",
        scope: Some(Scope::WebhooksManage),
        level: Level::Read,
        summary: "Replay a delivery",
        handler: handler!(|c| webhooks(c, Changing, on_delivery!(c, deliveries::replay))),
        doc: Doc {
            response: Some(schema::<DeliveryView>),
            status: 202,
            description: webhooks!(
                "A new sequence of tries with the same `webhook-id`, cut to what the connector may see now. 409 while it is still being tried or the subscription is disabled."
            ),
            ..Doc::DEFAULT
        },
    },
];

/// `?limit=&cursor=` of a paged list (`koppel_shared::paging`).
const PAGE_QUERY: &[Query] = &[
    Query {
        name: "limit",
        description: "Items per page.",
        kind: "integer",
    },
    Query {
        name: "cursor",
        description: "The previous page's `next_cursor`.",
        kind: "string",
    },
];

/// A delivery list's query: its filters, then the page.
const DELIVERY_QUERY: &[Query] = &[
    Query {
        name: "status",
        description: "Only deliveries in this state: `pending`, `delivered` or `failed`.",
        kind: "string",
    },
    Query {
        name: "event_type",
        description: "Only deliveries of this event type (or `webhook.ping`).",
        kind: "string",
    },
    PAGE_QUERY[0],
    PAGE_QUERY[1],
];

pub async fn handler(req: Request, ctx: &Ctx) -> Response<Body> {
    pipeline::serve(req, ctx, ROUTES).await
}

/// Runs `then` for a user who holds `manage_connectors` (see [`manager`]).
async fn managed(c: &Call<'_>, then: impl Future<Output = RouteResult>) -> RouteResult {
    manager(c.p, c.ctx).await?;
    then.await
}

/// Runs `then` for a manager who may also change the connector `{id}`: changing its
/// subscriptions is changing the connector (where its data goes).
async fn changing(c: &Call<'_>, then: impl Future<Output = RouteResult>) -> RouteResult {
    let me = manager(c.p, c.ctx).await?;
    administered(c.p, &me, c.ctx, &c.param("id")).await?;
    then.await
}

/// What a webhook route does to the connector's subscriptions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Webhooks {
    Reading,
    /// Changing a connector's subscriptions is changing the connector (where its data goes).
    Changing,
}
use Webhooks::{Changing, Reading};

/// Runs `then` for whoever may manage the webhooks of the connector `{id}`: the
/// organisation's connector managers ([`managed`], [`changing`]), or the connector itself,
/// through its own credentials (the route asked for `webhooks:manage`; never a token an
/// employee got through OTP). To a connector, another connector's id is as unknown as a
/// missing one; and it subscribes to and reads only the event types its credential's
/// scopes show it (`subscriptions::apply`, `deliveries`).
async fn webhooks(
    c: &Call<'_>,
    what: Webhooks,
    then: impl Future<Output = RouteResult>,
) -> RouteResult {
    match (c.p.connector_id.is_some(), what) {
        (true, _) => {
            if organisation::connector_itself(c.p, c.ctx).await? != c.param("id") {
                return Err(ApiError::not_found());
            }
            then.await
        }
        (false, Reading) => managed(c, then).await,
        (false, Changing) => changing(c, then).await,
    }
}

/// Connectors are administered by the organisation's users (personal access token) who
/// hold `manage_connectors`; never by a connector's own credentials.
pub(crate) async fn manager(p: &Principal, ctx: &Ctx) -> Result<User, ApiError> {
    organisation::user(p, ctx, Some(Permission::ManageConnectors)).await
}

/// A published webhook event type.
#[derive(Serialize, JsonSchema)]
pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
}

/// `GET /v1/webhook-event-types`.
#[derive(Serialize, JsonSchema)]
pub struct EventTypeList {
    pub items: Vec<EventType>,
}

fn event_types() -> RouteResult {
    let items = EVENT_TYPES
        .iter()
        .map(|&(name, description)| EventType { name, description })
        .collect();
    pipeline::json(StatusCode::OK, &EventTypeList { items })
}

pub(crate) async fn connector_of(
    p: &Principal,
    ctx: &Ctx,
    id: &str,
) -> Result<Connector, ApiError> {
    ctx.store
        .connector(&p.workspace_id, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// A lost race (someone else changed the connector meanwhile) is tried again, from the read.
pub(crate) const CONCURRENT_CHANGE: Schedule = Schedule::new(&[Duration::ZERO; 4]);

/// The connector, if the caller may change it (`connector_rules::may_administer`).
pub(crate) async fn administered(
    p: &Principal,
    me: &User,
    ctx: &Ctx,
    id: &str,
) -> Result<Connector, ApiError> {
    let con = connector_of(p, ctx, id).await?;
    rules::may_administer(me, &con)?;
    Ok(con)
}

/// A connector profile as the API shows it.
#[derive(Serialize, JsonSchema)]
pub struct ConnectorView {
    pub id: String,
    pub description: String,
    /// The employee the connector acts for; their rights cap its level.
    pub acting_user_id: String,
    pub access_level: Level,
    /// The operations the connector is linked to.
    pub scopes: Scopes,
    /// CIDRs (IPv4, IPv6); empty allows every address.
    pub ip_allow_list: Vec<String>,
    /// Requests per minute per credential; `null` is the deployment default (30).
    pub rate_limit: Option<u32>,
    /// A disabled connector's credentials get 403.
    pub enabled: bool,
    pub jwt: Option<JwtView>,
    /// The saved search that decides which cases and fields it sees; none: no cases.
    pub saved_search_id: Option<String>,
    /// Mutual TLS: its credentials work only with one of `client_certificates`, valid now.
    pub require_client_certificate: bool,
    /// Registered client certificates (see `…/certificates`).
    pub client_certificates: Vec<ClientCertificate>,
    /// The partner's manifest last imported (`…/manifest`): the event types its app needs.
    pub manifest: Option<ImportedManifest>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// The JWT issuer a connector registered and its public keys.
#[derive(Serialize, JsonSchema)]
pub struct JwtView {
    pub issuer: String,
    /// Public JWKs (`kid`, asymmetric keys only).
    pub keys: Vec<Value>,
}

impl ConnectorView {
    pub fn of(c: &Connector) -> Self {
        Self {
            id: c.connector_id.clone(),
            description: c.description.clone(),
            acting_user_id: c.acting_user_id.clone(),
            access_level: c.access_level,
            scopes: c.scopes.clone(),
            ip_allow_list: c.ip_allow_list.clone(),
            rate_limit: c.rate_limit,
            enabled: c.enabled,
            jwt: c.jwt.as_ref().map(|j| JwtView {
                issuer: j.issuer.clone(),
                keys: j.keys.clone(),
            }),
            saved_search_id: c.saved_search_id.clone(),
            require_client_certificate: c.require_client_certificate,
            client_certificates: c.client_certificates.clone(),
            manifest: c.manifest.clone(),
            version: c.version,
            created_at: c.created_at.clone(),
            updated_at: c.updated_at.clone(),
        }
    }
}

/// A page of `GET /v1/connectors`.
#[derive(Serialize, JsonSchema)]
pub struct ConnectorList {
    pub items: Vec<ConnectorView>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

const CONNECTOR_FIELDS: [&str; 10] = [
    "description",
    "acting_user_id",
    "access_level",
    "scopes",
    "ip_allow_list",
    "rate_limit",
    "enabled",
    "jwt",
    "saved_search_id",
    "require_client_certificate",
];

/// Applies the body's fields to `con` (all required on create), listing every bad field.
/// `setup` is what create takes besides (`setup.rs`), `e` what it found wrong.
async fn apply(
    ctx: &Ctx,
    caller: &User,
    body: &Map<String, Value>,
    con: &mut Connector,
    creating: bool,
    setup: Option<&setup::Setup>,
    mut e: Fields,
) -> Result<(), ApiError> {
    let o = Input::new(body, &CONNECTOR_FIELDS);
    o.unknown_fields(&mut e);
    if let Some(d) = o.string("description", creating, &mut e) {
        rules::description(d, &mut e);
        con.description = d.trim().to_owned();
    }
    // A connector acts for an employee and is capped by their rights; whoever sets it up
    // may not reach beyond their own: acting for someone else needs the owner or
    // `manage_users`, and the level never exceeds the caller's own rights.
    let asked = setup.is_some_and(|s| s.user_asked);
    if asked {
        if body.contains_key("acting_user_id") {
            e.push(
                "acting_user_id",
                "leave it out with `create_connector_user`: the connector acts for its new user",
            );
        }
        if let Some(u) = setup.and_then(|s| s.user.as_ref()) {
            con.acting_user_id = u.user_id.clone();
        }
    } else if let Some(u) = o.string("acting_user_id", creating, &mut e) {
        if u.len() > 64 {
            e.push("acting_user_id", "no such user in this workspace");
            return e.finish();
        }
        if !rules::may_act_for(caller, u) {
            return Err(ApiError::forbidden(
                "Only the owner or a user with `manage_users` may make a connector act for someone else.",
            ));
        }
        match ctx.store.user(&con.workspace_id, u).await? {
            Some(user) if user.deactivated_at.is_some() => {
                e.push("acting_user_id", "is deactivated")
            }
            Some(_) => con.acting_user_id = u.to_owned(),
            None => e.push("acting_user_id", "no such user in this workspace"),
        }
    }
    if let Some(l) = o
        .string("access_level", creating, &mut e)
        .and_then(|l| rules::access_level(l, &mut e))
    {
        if !rules::level_within(caller, l) {
            e.push(
                "access_level",
                format!("may not exceed your own rights (`{}`)", caller.rights),
            );
        }
        con.access_level = l;
    }
    if let Some(s) = o.strings("scopes", creating, &mut e) {
        con.scopes = rules::scopes(&s, &mut e);
    }
    if let Some(ips) = o.strings("ip_allow_list", false, &mut e) {
        con.ip_allow_list = rules::ip_allow_list(&ips, &mut e);
    }
    if let Some(limit) = o.nullable_u32("rate_limit", &mut e) {
        if let Some(n) = limit {
            rules::rate_limit(n, &mut e);
        }
        con.rate_limit = limit;
    }
    if let Some(b) = o.bool("enabled", &mut e) {
        con.enabled = b;
    }
    if let Some(b) = o.bool("require_client_certificate", &mut e) {
        // Switched on without a certificate valid now, it would lock the connector out.
        if !client_cert::usable(b, &con.client_certificates, now()) {
            e.push(
                "require_client_certificate",
                "register a client certificate valid now first (POST /v1/connectors/{id}/certificates)",
            );
        }
        con.require_client_certificate = b;
    }
    if let Some(jwt) = o.nullable_object("jwt", &mut e) {
        con.jwt = jwt.and_then(|j| jwt_config(j, &mut e));
    }
    if let Some(id) = o.nullable_string("saved_search_id", &mut e) {
        match id {
            Some(id)
                if id.len() > 64
                    || ctx
                        .store
                        .saved_search(&con.workspace_id, id)
                        .await?
                        .is_none() =>
            {
                e.push("saved_search_id", "no such saved search in this workspace")
            }
            _ => con.saved_search_id = id.map(str::to_owned),
        }
    }
    e.finish()
}

fn jwt_config(j: &Map<String, Value>, e: &mut Fields) -> Option<JwtConfig> {
    let o = Input::new(j, &["issuer", "keys"]).nested("jwt");
    o.unknown_fields(e);
    let issuer = o.string("issuer", true, e);
    if let Some(iss) = issuer {
        rules::issuer(iss, "jwt.issuer", e);
    }
    let keys = match j.get("keys") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(keys)) => {
            rules::jwt_keys(keys, "jwt.keys", e);
            keys.clone()
        }
        Some(_) => {
            e.push("jwt.keys", "must be an array of JWKs");
            Vec::new()
        }
    };
    Some(JwtConfig {
        issuer: issuer?.to_owned(),
        keys,
    })
}

/// 409 if another connector registered `issuer`.
async fn issuer_free(ctx: &Ctx, con: &Connector) -> Result<(), ApiError> {
    if let Some(j) = &con.jwt
        && let Some((_, holder)) = ctx.store.issuer(&j.issuer).await?
        && holder != con.connector_id
    {
        return Err(ApiError::conflict(format!(
            "The JWT issuer {} is registered by another connector.",
            j.issuer
        )));
    }
    Ok(())
}

async fn create(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let me = &manager(p, ctx).await?;
    let mut body: Map<String, Value> = body::json(req)?;
    let mut e = Fields::new();
    let setup = setup::Setup::take(&mut body, &p.workspace_id, me, &mut e)?;
    let mut con = Connector::new(p.workspace_id.clone(), new_id("con"), rfc3339(now()));
    apply(ctx, me, &body, &mut con, true, Some(&setup), e).await?;
    issuer_free(ctx, &con).await?;
    let with_secret = setup.token.is_some();
    let by = setup::Issuer::of(p, ctx, &setup).await?;
    let out = setup::store(ctx, &con, setup, &by).await?;
    tracing::info!(connector = %con.connector_id, "connector created");
    let mut r = pipeline::created(
        &format!("/v1/connectors/{}", con.connector_id),
        &out,
        Some(con.version),
    )?;
    if with_secret {
        subscriptions::no_store(&mut r);
    }
    Ok(r)
}

/// `GET /v1/connectors?limit=&cursor=`: a page of the workspace's connectors, in id order.
async fn list(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let ws = &p.workspace_id;
    let scope = paging::Scope::new("connectors", ws);
    let pager = Pager::from_request(req, paging::STANDARD, scope)?;
    let page = repo::connectors(ctx, ws, pager.after.as_deref(), pager.limit).await?;
    let list = ConnectorList {
        items: page.items.iter().map(ConnectorView::of).collect(),
        next_cursor: page.next.as_deref().map(|p| pager.cursor(p)),
    };
    pipeline::json(StatusCode::OK, &list)
}

async fn get(p: &Principal, ctx: &Ctx, id: &str) -> RouteResult {
    let con = connector_of(p, ctx, id).await?;
    versioned(StatusCode::OK, &ConnectorView::of(&con), con.version)
}

/// Saves `con` over `expected`; a lost race is a 412.
async fn save_over(
    ctx: &Ctx,
    con: &mut Connector,
    expected: u64,
    previous_issuer: Option<&str>,
    acting_changed: bool,
) -> Result<(), ApiError> {
    con.version = expected + 1;
    con.updated_at = rfc3339(now());
    let mut steps = ctx
        .store
        .connector_steps(con, Some(expected), previous_issuer)?;
    if acting_changed {
        steps.push(ctx.store.acting_user_check(con));
    }
    match ctx.store.transact(steps).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) if acting_changed => {
            Err(match setup::acting_user_gone(ctx, con).await? {
                Some(e) => e,
                None => preconditions::lost_race(),
            })
        }
        Err(StoreError::Conflict(_)) => Err(preconditions::lost_race()),
        Err(e) => Err(e.into()),
    }
}

async fn update(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let me = &manager(p, ctx).await?;
    let mut con = administered(p, me, ctx, id).await?;
    preconditions::require(req, con.version)?;
    let body: Map<String, Value> = body::json(req)?;
    let expected = con.version;
    let previous_issuer = con.jwt.as_ref().map(|j| j.issuer.clone());
    let previous_acting = con.acting_user_id.clone();
    apply(ctx, me, &body, &mut con, false, None, Fields::new()).await?;
    issuer_free(ctx, &con).await?;
    let acting_changed = con.acting_user_id != previous_acting;
    save_over(
        ctx,
        &mut con,
        expected,
        previous_issuer.as_deref(),
        acting_changed,
    )
    .await?;
    versioned(StatusCode::OK, &ConnectorView::of(&con), con.version)
}

/// `POST /v1/connectors/{id}/manifest` (see `manifest.rs`). Safe without `If-Match`
/// (checked when sent).
async fn import_manifest(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let me = &manager(p, ctx).await?;
    // Who and which connector before the body: another workspace's id is a 404 whatever
    // is sent. Read again on every try below.
    administered(p, me, ctx, id).await?;
    let body: Map<String, Value> = body::json(req)?;
    let m = manifest::parse(&body)?;
    let pinned = req.headers().contains_key(http::header::IF_MATCH);
    // Without a pinned version, someone else's change is no reason to fail: read again.
    let retry = |e: &ApiError| !pinned && e.status == StatusCode::PRECONDITION_FAILED;
    run_with_retries(&CONCURRENT_CHANGE, retry, || async {
        let mut con = administered(p, me, ctx, id).await?;
        preconditions::optional(req, con.version)?;
        let expected = con.version;
        let issuer = con.jwt.as_ref().map(|j| j.issuer.clone());
        m.apply_to(&mut con, &rfc3339(now()));
        save_over(ctx, &mut con, expected, issuer.as_deref(), false).await?;
        versioned(StatusCode::OK, &ConnectorView::of(&con), con.version)
    })
    .await
}

/// Disable or enable. Safe without `If-Match` (checked when sent); takes effect on the
/// next request of every credential of the connector.
async fn set_enabled(
    p: &Principal,
    req: &Request,
    ctx: &Ctx,
    id: &str,
    enabled: bool,
) -> RouteResult {
    let me = &manager(p, ctx).await?;
    let pinned = req.headers().contains_key(http::header::IF_MATCH);
    // Without a pinned version, someone else's change is no reason to fail: read again.
    let retry = |e: &ApiError| !pinned && e.status == StatusCode::PRECONDITION_FAILED;
    run_with_retries(&CONCURRENT_CHANGE, retry, || async {
        let mut con = administered(p, me, ctx, id).await?;
        preconditions::optional(req, con.version)?;
        if con.enabled != enabled {
            con.enabled = enabled;
            let expected = con.version;
            let issuer = con.jwt.as_ref().map(|j| j.issuer.clone());
            save_over(ctx, &mut con, expected, issuer.as_deref(), false).await?;
            tracing::info!(connector = %id, enabled, "connector switched");
        }
        versioned(StatusCode::OK, &ConnectorView::of(&con), con.version)
    })
    .await
}

async fn delete(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let me = &manager(p, ctx).await?;
    let con = administered(p, me, ctx, id).await?;
    preconditions::optional(req, con.version)?;
    let subs = repo::subscriptions(ctx, &p.workspace_id, id).await?;
    match repo::delete_connector(ctx, &con, &subs).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(preconditions::lost_race()),
        Err(e) => return Err(e.into()),
    }
    // A subscription created between our read and the delete committed before it: none
    // can be added now (a subscription is written only while its connector exists).
    for leftover in repo::subscriptions(ctx, &p.workspace_id, id).await? {
        if let Err(e) = repo::delete_subscription(ctx, &leftover).await {
            tracing::warn!(error = %e, subscription = %leftover.subscription_id, "left over");
        }
    }
    tracing::info!(connector = %id, "connector deleted");
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static response"))
}
