//! The `endpoints` function: OSR-compatible service endpoints (seed 003) registered by a
//! supplier's connector under a mandate, the mandates an organisation grants, and the
//! registry of service version namespaces.
//!
//! Who does what: the organisation's users (personal access token) register service
//! versions (`manage_connectors`) and grant or revoke mandates (`handle` rights); a
//! supplier's connector (API key, token or the seed's `JWT` header) registers and changes its
//! endpoints.

mod model;
mod repo;
pub mod rules;

use std::time::Duration;

use http::{Method, StatusCode};
use jiff::Timestamp;
use koppel_shared::body::{Fields, Object};
use koppel_shared::handler;
use koppel_shared::model::{Level, Scope, User};
use koppel_shared::organisation::{self, Permission};
use koppel_shared::outbox::{self, Event};
use koppel_shared::paging::{self, Pager};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::retry::{self, Schedule};
use koppel_shared::routes::{Doc, Query, Route, schema};
use koppel_shared::store::{StoreError, item, put_new, versioned_put};
use koppel_shared::time_util::{now, rfc3339};
use koppel_shared::{ApiError, Ctx, Principal, calendar};
use lambda_http::{Body, Request, RequestExt, Response};

use model::{
    Endpoint, EndpointBody, EndpointView, Mandate, MandateBody, MandateView, Page, ServiceVersion,
    ServiceVersionBody, ServiceVersionView, Slot, SlotEntry,
};
use rules::Interval;

/// The `?limit=&cursor=` of every list (shared/src/paging.rs).
const PAGING: [Query; 2] = [
    Query {
        name: "limit",
        description: "Items per page: 1 to 200, default 50.",
        kind: "integer",
    },
    Query {
        name: "cursor",
        description: "The `next_cursor` of the previous page of this same list (same filters).",
        kind: "string",
    },
];

const ENDPOINT_QUERY: &[Query] = &[
    Query {
        name: "administration_id",
        description: "Only this administration's endpoints. With `service_version_namespace`: \
                      every endpoint the pair ever had, in start-date order.",
        kind: "string",
    },
    Query {
        name: "service_version_namespace",
        description: "Only endpoints of this service version.",
        kind: "string",
    },
    Query {
        name: "date",
        description: "`YYYY-MM-DD`: only endpoints active on that day (Europe/Amsterdam).",
        kind: "string",
    },
    PAGING[0],
    PAGING[1],
];

/// The rules of an endpoint body (seed 003), for the document.
const ENDPOINT_RULES: &str = "Needs a live mandate of the calling connector for exactly this \
    administration and service version (403 otherwise). `start_date` defaults to today and is \
    never in the past; `end_date` is never in the past nor before the start (dates in \
    Europe/Amsterdam, inclusive). At most one endpoint is active at any moment for an \
    (administration, service version): an overlap is a 409 naming the other endpoint. A JWT \
    may carry a `hash` claim, the base64 SHA-256 of the body (401 if it does not match). \
    Read-only and unknown fields are ignored.";

/// The routes of the function, as template.yaml declares them (checked by a test).
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::POST,
        path: "/api/v1/endpoints",
        scope: Some(Scope::EndpointsWrite),
        level: Level::Handle,
        summary: "Register a service endpoint (OSR)",
        handler: handler!(|c| save_endpoint(c.p, c.req, c.ctx, None)),
        doc: Doc {
            request: Some(schema::<EndpointBody>),
            response: Some(schema::<EndpointView>),
            status: 201,
            description: ENDPOINT_RULES,
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/api/v1/endpoints",
        scope: Some(Scope::EndpointsRead),
        level: Level::Read,
        summary: "List service endpoints",
        handler: handler!(|c| list_endpoints(c.p, c.req, c.ctx)),
        doc: Doc {
            response: Some(schema::<Page<EndpointView>>),
            query: ENDPOINT_QUERY,
            errors: &[422],
            description: "A supplier's connector sees its own endpoints, the organisation's \
                          users all. In id order, or by (start date, id) for one pair.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/api/v1/endpoints/{id}",
        scope: Some(Scope::EndpointsRead),
        level: Level::Read,
        summary: "Read a service endpoint",
        handler: handler!(|c| get_endpoint(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<EndpointView>),
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::PUT,
        path: "/api/v1/endpoints/{id}",
        scope: Some(Scope::EndpointsWrite),
        level: Level::Handle,
        summary: "Update a service endpoint",
        handler: handler!(|c| save_endpoint(c.p, c.req, c.ctx, Some(c.param("id")))),
        doc: Doc {
            request: Some(schema::<EndpointBody>),
            response: Some(schema::<EndpointView>),
            errors: &[409],
            description: "The whole endpoint, as on registering; `administration_id` and \
                          `service_version_namespace` cannot change. An endpoint that has \
                          ended is not changed again (409).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/api/v1/mandates",
        scope: Some(Scope::EndpointsWrite),
        level: Level::Handle,
        summary: "Grant a supplier a mandate",
        handler: handler!(|c| grant_mandate(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<MandateBody>),
            response: Some(schema::<MandateView>),
            status: 201,
            description: "By the organisation's users with a personal access token. The \
                          answer's `mandate_token` is what the supplier sends with its \
                          endpoints.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/api/v1/mandates",
        scope: Some(Scope::EndpointsRead),
        level: Level::Read,
        summary: "List mandates",
        handler: handler!(|c| list_mandates(c.p, c.req, c.ctx)),
        doc: Doc {
            response: Some(schema::<Page<MandateView>>),
            query: &PAGING,
            errors: &[422],
            description: "In token order. A supplier's connector sees the mandates granted \
                          to it, the organisation's users all.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::DELETE,
        path: "/api/v1/mandates/{mandate_token}",
        scope: Some(Scope::EndpointsWrite),
        level: Level::Handle,
        summary: "Revoke a mandate",
        handler: handler!(|c| revoke_mandate(c.p, c.ctx, &c.param("mandate_token"))),
        doc: Doc {
            response: Some(schema::<MandateView>),
            status: 200,
            description: "By the organisation's users with a personal access token; answers \
                          the revoked mandate (again on a repeat).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/api/v1/service-versions",
        scope: Some(Scope::EndpointsWrite),
        level: Level::Read,
        summary: "Register a service version namespace",
        handler: handler!(|c| create_service_version(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<ServiceVersionBody>),
            response: Some(schema::<ServiceVersionView>),
            status: 201,
            description: "By the organisation's users with `manage_connectors`, with a \
                          personal access token. A namespace is registered once (409).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/api/v1/service-versions",
        scope: Some(Scope::EndpointsRead),
        level: Level::Read,
        summary: "List service versions",
        handler: handler!(|c| list_service_versions(c.p, c.req, c.ctx)),
        doc: Doc {
            response: Some(schema::<Page<ServiceVersionView>>),
            query: &PAGING,
            errors: &[422],
            description: "In id order.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/api/v1/service-versions/{id}/retire",
        scope: Some(Scope::EndpointsWrite),
        level: Level::Read,
        summary: "Retire a service version",
        handler: handler!(|c| retire_service_version(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<ServiceVersionView>),
            status: 200,
            description: "By the organisation's users with `manage_connectors`. No new \
                          mandate or endpoint names it afterwards; existing ones stay. \
                          Retiring again answers the same.",
            ..Doc::DEFAULT
        },
    },
];

pub async fn handler(req: Request, ctx: &Ctx) -> Response<Body> {
    pipeline::serve(req, ctx, ROUTES).await
}

fn today() -> jiff::civil::Date {
    calendar::today(Timestamp::now())
}

/// The supplier's connector; endpoints belong to a connector.
fn supplier(p: &Principal) -> Result<&str, ApiError> {
    p.connector_id.as_deref().ok_or_else(|| {
        ApiError::forbidden("Endpoints are registered with a supplier's connector credential.")
    })
}

/// The organisation's user acting with a personal access token (not through a connector).
async fn organisation_user(
    p: &Principal,
    ctx: &Ctx,
    need_manage_connectors: bool,
) -> Result<User, ApiError> {
    let need = need_manage_connectors.then_some(Permission::ManageConnectors);
    organisation::user(p, ctx, need).await
}

// ---- service versions ----------------------------------------------------------------

/// The fields of a service version body ([`ServiceVersionBody`]), every bad one in one 422.
fn service_version_input<'a>(o: &Object<'a>) -> Result<(&'a str, Option<&'a str>), ApiError> {
    let mut errors = Fields::new();
    let namespace = o.str("namespace", &mut errors);
    let description = o.opt_str("description", &mut errors);
    if let Some(ns) = namespace {
        errors.check(
            url::Url::parse(ns).is_ok(),
            "namespace",
            "must be an absolute URI",
        );
        rules::check_len(ns, 500, "namespace", &mut errors);
    }
    if let Some(d) = description {
        rules::check_len(d, 500, "description", &mut errors);
    }
    errors.finish()?;
    Ok((namespace.expect("checked"), description))
}

async fn create_service_version(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let user = organisation_user(p, ctx, true).await?;
    let body = Object::map(req)?;
    let (namespace, description) = service_version_input(&Object(&body))?;
    let sv = ServiceVersion {
        workspace_id: p.workspace_id.clone(),
        id: koppel_shared::ids::new_id("svc"),
        namespace: namespace.to_owned(),
        description: description.map(str::to_owned),
        created_by: user.user_id,
        created_at: rfc3339(now()),
        retired_at: None,
    };
    match ctx
        .store
        .transact(repo::create_service_version_steps(ctx, &sv)?)
        .await
    {
        Ok(()) => pipeline::created(
            &format!("/api/v1/service-versions/{}", sv.id),
            &sv.view(),
            None,
        ),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(format!(
            "The namespace {} is registered already.",
            sv.namespace
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/service-versions?limit=&cursor=`: a page of the registry, in id order.
async fn list_service_versions(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let ws = &p.workspace_id;
    let scope = paging::Scope::new("service-versions", ws);
    let pager = Pager::from_request(req, paging::STANDARD, scope)?;
    let page = repo::page::<ServiceVersion>(ctx, ws, "SVCVER#", &pager, |_| true).await?;
    let body = Page {
        items: page.items.iter().map(ServiceVersion::view).collect(),
        next_cursor: page.next.map(|p| pager.cursor(&p)),
    };
    pipeline::json(StatusCode::OK, &body)
}

async fn retire_service_version(p: &Principal, ctx: &Ctx, id: &str) -> RouteResult {
    organisation_user(p, ctx, true).await?;
    let key = repo::service_version_key(&p.workspace_id, id);
    let mut sv: ServiceVersion = ctx.store.get(&key).await?.ok_or_else(ApiError::not_found)?;
    if sv.retired_at.is_none() {
        sv.retired_at = Some(rfc3339(now()));
        ctx.store.replace(item(&key, &sv)?).await?;
    }
    pipeline::json(StatusCode::OK, &sv.view())
}

// ---- mandates -------------------------------------------------------------------------

/// The fields of a mandate body ([`MandateBody`]) that read; what did not is in `errors`.
struct MandateInput<'a> {
    connector_id: Option<&'a str>,
    administration: Option<&'a str>,
    namespace: Option<&'a str>,
    start: Option<&'a str>,
    interval: Option<Interval>,
}

fn mandate_input<'a>(o: &Object<'a>, errors: &mut Fields) -> MandateInput<'a> {
    let connector_id = o.str("connector_id", errors);
    let administration = o.str("administration_id", errors);
    let namespace = o.str("service_version_namespace", errors);
    let start = o.opt_str("start_date", errors);
    let end = o.opt_str("end_date", errors);
    if let Some(a) = administration {
        rules::check_len(a, 100, "administration_id", errors);
    }
    // A mandate may have started already; only its end is held to "not in the past".
    let interval = rules::check_dates(
        start,
        end,
        today(),
        start.and_then(calendar::parse_date),
        errors,
    );
    MandateInput {
        connector_id,
        administration,
        namespace,
        start,
        interval,
    }
}

async fn grant_mandate(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let user = organisation_user(p, ctx, false).await?;
    let body = Object::map(req)?;
    let mut errors = Fields::new();
    let MandateInput {
        connector_id,
        administration,
        namespace,
        start,
        interval,
    } = mandate_input(&Object(&body), &mut errors);
    let ws = &p.workspace_id;
    if let Some(c) = connector_id
        && ctx.store.connector(ws, c).await?.is_none()
    {
        errors.push("connector_id", "no such connector in this workspace");
    }
    if let Some(ns) = namespace {
        match repo::service_version_by_namespace(ctx, ws, ns).await? {
            None => errors.push(
                "service_version_namespace",
                "is not a registered service version",
            ),
            Some(sv) if sv.retired_at.is_some() => {
                errors.push("service_version_namespace", "is retired")
            }
            Some(_) => {}
        }
    }
    errors.finish()?;
    let interval = interval.expect("checked");
    let m = Mandate {
        workspace_id: ws.clone(),
        mandate_token: uuid::Uuid::new_v4().to_string(),
        connector_id: connector_id.expect("checked").to_owned(),
        administration_id: administration.expect("checked").to_owned(),
        service_version_namespace: namespace.expect("checked").to_owned(),
        start_date: start.map(|_| interval.start.to_string()),
        end_date: interval.end.map(|d| d.to_string()),
        granted_by: user.user_id,
        created_at: rfc3339(now()),
        revoked_at: None,
    };
    let step = put_new(
        ctx.store.table(),
        item(&repo::mandate_key(ws, &m.mandate_token), &m)?,
    );
    let event = Event::new("mandate.granted", ws, m.to_json());
    outbox::commit(ctx, vec![step], &[event]).await?;
    pipeline::created(
        &format!("/api/v1/mandates/{}", m.mandate_token),
        &m.view(),
        None,
    )
}

/// `GET /api/v1/mandates?limit=&cursor=`: a page of mandates, in token order. A supplier
/// sees the mandates granted to it; the organisation sees all.
async fn list_mandates(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let ws = &p.workspace_id;
    let viewer = p.connector_id.as_deref();
    let scope = paging::Scope::new("mandates", ws).with("connector", viewer);
    let pager = Pager::from_request(req, paging::STANDARD, scope)?;
    let page = repo::page::<Mandate>(ctx, ws, "MANDATE#", &pager, |m| {
        viewer.is_none_or(|c| c == m.connector_id)
    })
    .await?;
    let body = Page {
        items: page.items.iter().map(Mandate::view).collect(),
        next_cursor: page.next.map(|p| pager.cursor(&p)),
    };
    pipeline::json(StatusCode::OK, &body)
}

async fn revoke_mandate(p: &Principal, ctx: &Ctx, token: &str) -> RouteResult {
    organisation_user(p, ctx, false).await?;
    let ws = &p.workspace_id;
    let mut m = repo::mandate(ctx, ws, token)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if m.revoked_at.is_none() {
        m.revoked_at = Some(rfc3339(now()));
        let key = repo::mandate_key(ws, token);
        let step = aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(
                aws_sdk_dynamodb::types::Put::builder()
                    .table_name(ctx.store.table())
                    .set_item(Some(item(&key, &m)?))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(ApiError::internal)?,
            )
            .build();
        let event = Event::new("mandate.revoked", ws, m.to_json());
        outbox::commit(ctx, vec![step], &[event]).await?;
    }
    pipeline::json(StatusCode::OK, &m.view())
}

// ---- endpoints ------------------------------------------------------------------------

/// The fields of an OSR endpoint body. Read-only and unknown fields are ignored, as OSR
/// clients expect; every invalid field is listed in one 422.
struct EndpointInput<'a> {
    mandate_token: &'a str,
    administration_id: &'a str,
    namespace: &'a str,
    url: &'a str,
    attributes: Option<&'a str>,
    interval: Interval,
}

fn endpoint_input<'a>(
    o: &Object<'a>,
    existing: Option<&Endpoint>,
) -> Result<EndpointInput<'a>, ApiError> {
    let mut errors = Fields::new();
    let mandate_token = o.str("mandate_token", &mut errors);
    let administration_id = o.str("administration_id", &mut errors);
    let namespace = o.str("service_version_namespace", &mut errors);
    let url = o.str("url", &mut errors);
    let attributes = o.opt_str("attributes", &mut errors);
    let start = o.opt_str("start_date", &mut errors);
    let end = o.opt_str("end_date", &mut errors);
    if let Some(t) = mandate_token {
        errors.check(
            uuid::Uuid::parse_str(t).is_ok(),
            "mandate_token",
            "must be a UUID",
        );
    }
    if let Some(a) = administration_id {
        rules::check_len(a, 100, "administration_id", &mut errors);
    }
    if let Some(ns) = namespace {
        rules::check_len(ns, 500, "service_version_namespace", &mut errors);
    }
    if let Some(u) = url {
        rules::check_len(u, 2000, "url", &mut errors);
        rules::check_url(u, "url", &mut errors);
    }
    if let Some(a) = attributes {
        rules::check_len(a, 1000, "attributes", &mut errors);
    }
    if let Some(e) = existing {
        // An endpoint stays in its slot; another pair is another endpoint.
        if administration_id.is_some_and(|a| a != e.administration_id) {
            errors.push(
                "administration_id",
                "cannot be changed; register a new endpoint",
            );
        }
        if namespace.is_some_and(|n| n != e.service_version_namespace) {
            errors.push(
                "service_version_namespace",
                "cannot be changed; register a new endpoint",
            );
        }
    }
    let kept_start = existing.and_then(|e| calendar::parse_date(&e.start_date));
    let interval = rules::check_dates(start, end, today(), kept_start, &mut errors);
    errors.finish()?;
    Ok(EndpointInput {
        mandate_token: mandate_token.expect("checked"),
        administration_id: administration_id.expect("checked"),
        namespace: namespace.expect("checked"),
        url: url.expect("checked"),
        attributes,
        interval: interval.expect("checked"),
    })
}

fn interval_of(start: &str, end: Option<&str>) -> Option<Interval> {
    Some(Interval {
        start: calendar::parse_date(start)?,
        end: match end {
            Some(e) => Some(calendar::parse_date(e)?),
            None => None,
        },
    })
}

fn describe(e: &SlotEntry) -> String {
    match &e.end_date {
        Some(end) => format!(
            "endpoint {} is active from {} to {}",
            e.id, e.start_date, end
        ),
        None => format!(
            "endpoint {} is active from {} with no end date",
            e.id, e.start_date
        ),
    }
}

/// Creates (`id: None`) or updates an endpoint. Race-free: the slot of its (administration,
/// service version) is read, checked for overlap and written back under a version condition
/// in the same transaction as the endpoint, so of two concurrent writers one fails its
/// condition, re-reads, and sees the other's interval.
async fn save_endpoint(p: &Principal, req: &Request, ctx: &Ctx, id: Option<String>) -> RouteResult {
    let connector = supplier(p)?;
    let ws = &p.workspace_id;
    let existing = match &id {
        Some(id) => Some(
            repo::endpoint(ctx, ws, id)
                .await?
                .filter(|e| e.connector_id == connector)
                .ok_or_else(ApiError::not_found)?,
        ),
        None => None,
    };
    if let Some(e) = existing.as_ref().filter(|e| e.ended_before(today())) {
        return Err(ApiError::conflict(format!(
            "Endpoint {} ended on {}; an endpoint that has ended is not changed again: \
             register a new one.",
            e.id,
            e.end_date.as_deref().unwrap_or_default()
        )));
    }
    let body = Object::map(req)?;
    let input = endpoint_input(&Object(&body), existing.as_ref())?;

    let endpoint_id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Everything the checks and the first try need, read at once.
    let (mandate, service_version, first) = tokio::join!(
        repo::mandate(ctx, ws, input.mandate_token),
        repo::service_version_by_namespace(ctx, ws, input.namespace),
        async {
            tokio::join!(
                repo::slot(ctx, ws, input.administration_id, input.namespace),
                repo::endpoint(ctx, ws, &endpoint_id)
            )
        }
    );
    // The mandate: held by this connector, live, for exactly this pair. One answer for
    // every failure, so a caller learns nothing about other suppliers' mandates.
    let covered = mandate?.is_some_and(|m| {
        m.connector_id == connector
            && m.is_live(today())
            && m.administration_id == input.administration_id
            && m.service_version_namespace == input.namespace
    });
    if !covered {
        return Err(ApiError::forbidden(
            "No live mandate of this connector covers this administration and service version.",
        ));
    }
    if service_version?.is_none_or(|sv| sv.retired_at.is_some()) {
        return Err(ApiError::unprocessable(vec![
            koppel_shared::error::FieldError {
                field: "service_version_namespace".into(),
                message: "is not a current service version".into(),
            },
        ]));
    }

    let at = rfc3339(now());
    let slot_key = repo::slot_key(ws, input.administration_id, input.namespace);
    let endpoint_key = repo::endpoint_key(ws, &endpoint_id);
    let event_type = if existing.is_some() {
        "endpoint.updated"
    } else {
        "endpoint.created"
    };

    // Someone changed the slot or the endpoint meanwhile: look again. The store's result
    // outside (a conflict is tried again), the route's answer inside.
    let (input, existing, endpoint_id, at) = (&input, &existing, &endpoint_id, &at);
    let (slot_key, endpoint_key) = (&slot_key, &endpoint_key);
    // The first try uses what was read above; a retry reads slot and endpoint again.
    let mut first = Some(first);
    let saved = retry::on_conflict(&CONCURRENT_WRITES, || {
        let read = first.take();
        async move {
            let (slot, current) = match read {
                Some(r) => r,
                None => {
                    tokio::join!(
                        repo::slot(ctx, ws, input.administration_id, input.namespace),
                        repo::endpoint(ctx, ws, endpoint_id)
                    )
                }
            };
            let (slot, current): (Slot, Option<Endpoint>) = (slot?, current?);
            if existing.is_some() && current.is_none() {
                return Ok(Err(ApiError::not_found()));
            }
            if existing.is_none() && current.is_some() {
                return Ok(Err(ApiError::internal("endpoint id collision")));
            }
            if let Some(other) = slot
                .entries
                .iter()
                .filter(|e| e.id != *endpoint_id)
                .find(|e| {
                    interval_of(&e.start_date, e.end_date.as_deref())
                        .is_some_and(|i| i.overlaps(&input.interval))
                })
            {
                return Ok(Err(ApiError::conflict(format!(
                    "Only one endpoint may be active at a time for an administration and service \
                 version: {}.",
                    describe(other)
                ))));
            }
            let endpoint = Endpoint {
                workspace_id: ws.clone(),
                id: endpoint_id.clone(),
                connector_id: connector.to_owned(),
                mandate_token: input.mandate_token.to_owned(),
                administration_id: input.administration_id.to_owned(),
                service_version_namespace: input.namespace.to_owned(),
                url: input.url.to_owned(),
                attributes: input.attributes.map(str::to_owned),
                start_date: input.interval.start.to_string(),
                end_date: input.interval.end.map(|d| d.to_string()),
                created_at: current
                    .as_ref()
                    .map_or_else(|| at.clone(), |c| c.created_at.clone()),
                updated_at: at.clone(),
                version: current.as_ref().map_or(1, |c| c.version + 1),
            };
            // Entries that ended before today go in the same write, so the slot stays small.
            let entry = SlotEntry {
                id: endpoint_id.clone(),
                start_date: endpoint.start_date.clone(),
                end_date: endpoint.end_date.clone(),
            };
            let next = slot.written(entry, today());
            let table = ctx.store.table();
            // A slot never written reads as the default, at version 0.
            let slot_version = (slot.version > 0).then_some(slot.version);
            let mut steps = vec![
                versioned_put(table, item(slot_key, &next)?, slot_version),
                versioned_put(
                    table,
                    item(endpoint_key, &endpoint)?,
                    current.as_ref().map(|c| c.version),
                ),
            ];
            steps.extend(repo::list_entry_steps(table, &endpoint, current.as_ref())?);
            let event = Event::new(event_type, ws, endpoint.to_json());
            outbox::commit(ctx, steps, &[event]).await?;
            Ok(if existing.is_some() {
                pipeline::json(StatusCode::OK, &endpoint.view())
            } else {
                pipeline::created(
                    &format!("/api/v1/endpoints/{endpoint_id}"),
                    &endpoint.view(),
                    None,
                )
            })
        }
    })
    .await;
    match saved {
        Ok(answer) => answer,
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "Too many concurrent changes to endpoints of this administration and service version; retry.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Ten tries, pausing up to 40 ms more before each: writers of one slot collided and
/// should not collide again in step.
const CONCURRENT_WRITES: Schedule = Schedule::new(&[
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(120),
    Duration::from_millis(160),
    Duration::from_millis(200),
    Duration::from_millis(240),
    Duration::from_millis(280),
    Duration::from_millis(320),
    Duration::from_millis(360),
])
.jittered();

/// An endpoint is visible to its own supplier's connector and to the organisation's users.
fn visible(p: &Principal, e: &Endpoint) -> bool {
    p.connector_id.as_ref().is_none_or(|c| *c == e.connector_id)
}

async fn get_endpoint(p: &Principal, ctx: &Ctx, id: &str) -> RouteResult {
    let e = repo::endpoint(ctx, &p.workspace_id, id)
        .await?
        .filter(|e| visible(p, e))
        .ok_or_else(ApiError::not_found)?;
    pipeline::json(StatusCode::OK, &e.view())
}

/// `?administration_id=&service_version_namespace=&date=&limit=&cursor=`: with both of the
/// pair, a paged query of the administration's list entries, in (start date, id) order,
/// keeping the namespace: every endpoint the pair ever had (not the slot, which forgets the
/// ended ones); otherwise a paged query of the workspace's endpoints in id order. `date`
/// keeps those active on that day.
async fn list_endpoints(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let q = req.query_string_parameters();
    let administration = q.first("administration_id");
    let namespace = q.first("service_version_namespace");
    let mut errors = Fields::new();
    let date = q.first("date").and_then(|d| {
        let parsed = calendar::parse_date(d);
        errors.check(parsed.is_some(), "date", "must be a date as YYYY-MM-DD");
        parsed
    });
    let ws = &p.workspace_id;
    let viewer = p.connector_id.as_deref();
    let scope = paging::Scope::new("endpoints", ws)
        .with("administration_id", administration)
        .with("service_version_namespace", namespace)
        .with("date", q.first("date"))
        .with("connector", viewer);
    // One 422 names every bad parameter, paging ones included.
    let pager = match Pager::from_request(req, paging::STANDARD, scope) {
        Ok(pager) => pager,
        Err(mut e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            if let Err(dated) = errors.finish() {
                e.errors.extend(dated.errors);
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    errors.finish()?;
    let active = |start: &str, end: Option<&str>| {
        date.is_none_or(|d| interval_of(start, end).is_some_and(|i| i.contains(d)))
    };
    let (found, next) = match (administration, namespace) {
        (Some(a), Some(n)) => {
            let page = repo::list_entries(ctx, ws, a, &pager, |e| {
                e.service_version_namespace == n
                    && viewer.is_none_or(|c| c == e.connector_id)
                    && active(&e.start_date, e.end_date.as_deref())
            })
            .await?;
            let mut out = Vec::with_capacity(page.items.len());
            for entry in page.items {
                // Written with its endpoint, so it is found; checked again all the same.
                if let Some(e) = repo::endpoint(ctx, ws, &entry.id)
                    .await?
                    .filter(|e| visible(p, e))
                {
                    out.push(e);
                }
            }
            (out, page.next)
        }
        _ => {
            let page = repo::page::<Endpoint>(ctx, ws, "ENDPOINT#", &pager, |e| {
                visible(p, e)
                    && administration.is_none_or(|a| a == e.administration_id)
                    && namespace.is_none_or(|n| n == e.service_version_namespace)
                    && active(&e.start_date, e.end_date.as_deref())
            })
            .await?;
            (page.items, page.next)
        }
    };
    let body = Page {
        items: found.iter().map(Endpoint::view).collect(),
        next_cursor: next.map(|p| pager.cursor(&p)),
    };
    pipeline::json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The properties of `T`'s schema, and the required ones.
    fn contract<T: schemars::JsonSchema>() -> (Vec<String>, Vec<String>) {
        let s = schemars::schema_for!(T);
        let props = s.get("properties").and_then(Value::as_object).unwrap();
        let names = |v: Option<&Value>| -> Vec<String> {
            let mut n: Vec<String> = v
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            n.sort();
            n
        };
        let mut all: Vec<String> = props.keys().cloned().collect();
        all.sort();
        // Nothing forbids the read-only and unknown fields OSR clients send.
        assert!(s.get("additionalProperties").is_none());
        (all, names(s.get("required")))
    }

    /// Holds a body reader to the schema the document gives for it: every property is read
    /// (a wrong type is named), exactly the required ones are required, and the valid body
    /// reads.
    fn holds_to<T: schemars::JsonSchema>(valid: Value, reads: impl Fn(&Value) -> Vec<String>) {
        let (all, required) = contract::<T>();
        let mut sent: Vec<String> = valid.as_object().unwrap().keys().cloned().collect();
        sent.sort();
        assert_eq!(sent, all, "the valid body sends every property");
        assert_eq!(reads(&valid), Vec::<String>::new());
        for name in &all {
            let mut wrong = valid.clone();
            wrong[name] = json!(5);
            assert_eq!(
                reads(&wrong),
                std::slice::from_ref(name),
                "{name} as a number"
            );
            let mut left_out = valid.clone();
            left_out.as_object_mut().unwrap().remove(name);
            let named = reads(&left_out);
            if required.contains(name) {
                assert_eq!(named, std::slice::from_ref(name), "{name} left out");
            } else {
                assert!(named.is_empty(), "{name} is optional: {named:?}");
            }
        }
        let mut unknown = valid.clone();
        unknown["id"] = json!("read-only");
        unknown["extra"] = json!([1]);
        assert!(reads(&unknown).is_empty(), "unknown fields are ignored");
    }

    fn fields_of(e: ApiError) -> Vec<String> {
        e.errors.into_iter().map(|f| f.field).collect()
    }

    fn day(offset: i64) -> String {
        use jiff::ToSpan;
        today().checked_add(offset.days()).unwrap().to_string()
    }

    #[test]
    fn the_endpoint_schema_is_what_endpoint_input_reads() {
        let valid = json!({
            "mandate_token": "6a47bfdd-81a7-46cd-b41f-d907e91ebdfc",
            "administration_id": "0000000700004HR77707",
            "service_version_namespace": "http://xml.eld.nl/schemas/Overstapservice/20170601",
            "url": "https://t2.nl", "attributes": "LAS",
            "start_date": day(0), "end_date": day(1),
        });
        holds_to::<EndpointBody>(valid, |v| {
            match endpoint_input(&Object(v.as_object().unwrap()), None) {
                Ok(_) => vec![],
                Err(e) => fields_of(e),
            }
        });
    }

    #[test]
    fn the_mandate_schema_is_what_mandate_input_reads() {
        let valid = json!({
            "connector_id": "con_1", "administration_id": "0000000700004HR77707",
            "service_version_namespace": "http://xml.eld.nl/schemas/Overstapservice/20170601",
            "start_date": day(-10), "end_date": day(10),
        });
        holds_to::<MandateBody>(valid, |v| {
            let mut errors = Fields::new();
            mandate_input(&Object(v.as_object().unwrap()), &mut errors);
            errors.finish().err().map(fields_of).unwrap_or_default()
        });
    }

    #[test]
    fn the_service_version_schema_is_what_service_version_input_reads() {
        let valid = json!({ "namespace": "https://ns.example/v1", "description": "d" });
        holds_to::<ServiceVersionBody>(valid, |v| {
            match service_version_input(&Object(v.as_object().unwrap())) {
                Ok(_) => vec![],
                Err(e) => fields_of(e),
            }
        });
    }

    #[test]
    fn views_are_the_json_the_api_answers() {
        let e = Endpoint {
            workspace_id: "ws".into(),
            id: "e1".into(),
            connector_id: "con".into(),
            mandate_token: "m".into(),
            administration_id: "a".into(),
            service_version_namespace: "n".into(),
            url: "https://t2.nl".into(),
            attributes: None,
            start_date: "2027-01-01".into(),
            end_date: None,
            created_at: "c".into(),
            updated_at: "u".into(),
            version: 3,
        };
        // Every field, `null` when unset; not the workspace nor the version.
        assert_eq!(
            e.to_json(),
            json!({
                "id": "e1", "mandate_token": "m", "administration_id": "a",
                "service_version_namespace": "n", "url": "https://t2.nl", "attributes": null,
                "start_date": "2027-01-01", "end_date": null, "connector_id": "con",
                "created_at": "c", "updated_at": "u",
            })
        );
        let (names, required) = contract::<EndpointView>();
        let mut keys: Vec<String> = e.to_json().as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(names, keys);
        let mut must: Vec<String> = keys
            .into_iter()
            .filter(|k| !["attributes", "end_date"].contains(&k.as_str()))
            .collect();
        must.sort();
        assert_eq!(required, must, "only the nullable ones may be null");
    }
}
