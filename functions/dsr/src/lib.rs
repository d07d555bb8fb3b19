//! The `dsr` function: Dastra-compatible data-subject requests at
//! `/v1/ws/{workspaceId}/DataSubjectRequests` — create, get, paged list, update. A partner
//! that integrates with Dastra's REST API can point its client here and keep working.
//!
//! The rules live beside this file: `model` (Dastra's JSON), `aliases` (translated keys and
//! values), `reading` (every wrong type named at once), `deadline` (GDPR art. 12(3)),
//! `closing` (server-owned fields, closing, reopening, archiving), `people` (operator and
//! user must be users of the workspace), `list_query` (the list's parameters), `listing`
//! (the list's access patterns) and `records` (how a request is stored).
//!
//! Reads and writes carry `ETag: "<version>"`. A `PUT` with `If-Match` is made only on
//! that version (412 otherwise; strong comparison, so a weak tag or `*` never matches);
//! without one it is made on the version it read, as Dastra's clients send none.

pub mod aliases;
pub mod closing;
pub mod deadline;
pub mod list_query;
pub mod listing;
pub mod model;
pub mod people;
pub mod reading;
pub mod records;

use std::collections::BTreeSet;
use std::future::Future;

use http::{Method, StatusCode, header};
use koppel_shared::body::{self, Fields};
use koppel_shared::error::FieldError;
use koppel_shared::handler;
use koppel_shared::model::{Level, Scope};
use koppel_shared::outbox::{self, Event};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::preconditions;
use koppel_shared::retry::{self, Schedule};
use koppel_shared::routes::{Call, Doc, Precondition, Query, Route, schema};
use koppel_shared::store::StoreError;
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use crate::closing::Change;
use crate::model::{Dsr, DsrPage, Instant, NewDsr, UserRef};
use crate::records::Stored;

/// The list's query parameters, as `list_query` reads them (Dastra's names).
const LIST_QUERY: &[Query] = &[
    Query {
        name: "page",
        description: "The page, from 1 (default 1).",
        kind: "integer",
    },
    Query {
        name: "size",
        description: "Requests per page: 1 to 500 (default 20; larger is a 422, not clamped).",
        kind: "integer",
    },
    Query {
        name: "q",
        description: "Text (any case) in the title, given or family name, e-mail or description; at most 200 characters.",
        kind: "string",
    },
    Query {
        name: "states[]",
        description: "Only these states (`Open`, `Pending`, `InProgress`, `Closed`): repeated, \
                      or comma-separated; `states` without `[]` too.",
        kind: "array",
    },
    Query {
        name: "purposes[]",
        description: "Only requests with one of these purposes (at most 20).",
        kind: "array",
    },
    Query {
        name: "areaId",
        description: "Only requests of this area.",
        kind: "integer",
    },
    Query {
        name: "archived",
        description: "`true`: only archived requests; `false`: only those not archived.",
        kind: "boolean",
    },
    Query {
        name: "overtaking",
        description: "`true`: only requests past their deadline (`expiryTime`) and not closed.",
        kind: "boolean",
    },
    Query {
        name: "tags[]",
        description: "Only requests with one of these tags, by id or label (at most 20).",
        kind: "array",
    },
    Query {
        name: "ids[]",
        description: "Only these request ids (at most 100).",
        kind: "array",
    },
    Query {
        name: "sortBy",
        description: "`id` (default), `dateCreation`, `dateUpdate`, `expiryTime`, `title` or \
                      `state`.",
        kind: "string",
    },
    Query {
        name: "asc",
        description: "`true`: ascending; default descending.",
        kind: "boolean",
    },
];

/// What the server sets on every write, for the document.
const SERVER_OWNED: &str = "Server-owned fields are computed, not taken from the body: ids, \
    dates, `creator`, `expiryTime` (one month after receipt, three months when `complex`, \
    GDPR art. 12(3)), `remainingDays`, and `closingTime`, `dateClosed` and `closedByUser` on \
    closing (closing needs a `closedReason`). `operator`/`operatorId` and `userId` must name \
    users of the workspace.";

/// The routes of the function, as template.yaml declares them (checked by a test).
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::POST,
        path: "/v1/ws/{workspaceId}/DataSubjectRequests",
        scope: Some(Scope::DsrWrite),
        level: Level::Handle,
        summary: "Create a data-subject request",
        handler: handler!(|c| in_workspace(c, create(c.p, c.req, c.ctx))),
        doc: Doc {
            request: Some(schema::<NewDsr>),
            response: Some(schema::<Dsr>),
            status: 201,
            etag: true,
            description: SERVER_OWNED,
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/ws/{workspaceId}/DataSubjectRequests",
        scope: Some(Scope::DsrRead),
        level: Level::Read,
        summary: "List data-subject requests (paged, filtered)",
        handler: handler!(|c| in_workspace(c, list(c.p, c.req, c.ctx))),
        doc: Doc {
            response: Some(schema::<DsrPage>),
            query: LIST_QUERY,
            errors: &[422],
            description: "Dastra's paged list: `{items, total, size, page}`. Every bad \
                          parameter is named in one 422; unknown parameters are ignored.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/ws/{workspaceId}/DataSubjectRequests/{id}",
        scope: Some(Scope::DsrRead),
        level: Level::Read,
        summary: "Read a data-subject request",
        handler: handler!(|c| in_workspace(c, get(c.p, &c.param("id"), c.ctx))),
        doc: Doc {
            response: Some(schema::<Dsr>),
            etag: true,
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::PUT,
        path: "/v1/ws/{workspaceId}/DataSubjectRequests/{id}",
        scope: Some(Scope::DsrWrite),
        level: Level::Handle,
        summary: "Update a data-subject request",
        handler: handler!(|c| in_workspace(c, update(c.p, &c.param("id"), c.req, c.ctx))),
        doc: Doc {
            request: Some(schema::<Dsr>),
            response: Some(schema::<Dsr>),
            precondition: Precondition::Optional,
            etag: true,
            errors: &[409],
            description: "Fields in the body replace the stored ones (`null` clears); fields \
                          left out are kept. With `If-Match` the change is made only on that \
                          version (412); without, on the version read (409 if it changed \
                          meanwhile), as Dastra's clients send none.",
            ..Doc::DEFAULT
        },
    },
];

pub async fn handler(req: Request, ctx: &Ctx) -> Response<Body> {
    pipeline::serve(req, ctx, ROUTES).await
}

/// Another workspace's requests do not exist for this caller: 404 before anything is read.
async fn in_workspace(c: &Call<'_>, then: impl Future<Output = RouteResult>) -> RouteResult {
    if c.param("workspaceId") != c.p.workspace_id {
        return Err(ApiError::not_found());
    }
    then.await
}

/// Request ids are positive integers; anything else names no request.
fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(ApiError::not_found)
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// `POST …/DataSubjectRequests`: the body is Dastra's model; server-owned fields are set here.
async fn create(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let body = model::writable_part(object_body(req)?);
    let sent = sent_fields(&body);
    let (mut asked, bad) = reading::read(body, None);
    let actor = acting_user(p, ctx).await?;
    let mut errors = Fields::new();
    // The rules first, so that a refused body takes no id; they do not depend on the time.
    closing::settle(None, &mut asked.clone(), &actor, now(), &mut errors);
    check_people(ctx, &p.workspace_id, &sent, &bad, &mut asked, &mut errors).await?;
    finish(bad, errors)?;

    // The counter is atomic, so an id is never handed out twice; should one be taken all
    // the same (a table restored from a backup behind its counter), take the next.
    // The store's result outside (a conflict is tried again), the route's inside.
    let (asked, actor) = (&asked, &actor);
    let created = retry::on_conflict(&ID_TAKEN, || async move {
        let (id, at) = records::next_id(&ctx.store, &p.workspace_id, now()).await?;
        let mut next = asked.clone();
        let change = closing::settle(None, &mut next, actor, at.0, &mut Fields::new());
        next.id = id;
        let stored = match Stored::of(&p.workspace_id, &next, 1) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let step = records::create_step(ctx.store.table(), &stored)?;
        let r = outbox::commit(ctx, vec![step], &[event(p, change, &next)]).await;
        if r.as_ref().is_err_and(StoreError::is_conflict) {
            tracing::warn!(id = next.id, "request id already taken; taking the next");
        }
        r.map(|()| Ok((next, at)))
    })
    .await;
    let (next, at) = created??;
    respond(StatusCode::CREATED, p, next, at.0, 1)
}

/// Three tries at once: a taken id means the counter is behind, and the next one is free.
const ID_TAKEN: Schedule = Schedule::new(&[std::time::Duration::ZERO; 2]);

/// `GET …/DataSubjectRequests/{id}`.
async fn get(p: &Principal, id: &str, ctx: &Ctx) -> RouteResult {
    let id = parse_id(id)?;
    let stored = records::get(&ctx.store, &p.workspace_id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    respond(StatusCode::OK, p, stored.dsr()?, now(), stored.version)
}

/// `PUT …/DataSubjectRequests/{id}`: fields in the body replace the stored ones (`null`
/// clears); fields left out are kept; read-only and unknown fields are ignored.
async fn update(p: &Principal, id: &str, req: &Request, ctx: &Ctx) -> RouteResult {
    let id = parse_id(id)?;
    let body = model::writable_part(object_body(req)?);
    let stored = records::get(&ctx.store, &p.workspace_id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let version = stored.version;
    let conditional = preconditions::optional(req, version)?;
    let before = stored.dsr()?;
    let sent = sent_fields(&body);
    let kept = serde_json::to_value(&before).map_err(ApiError::internal)?;
    let (mut next, bad) = reading::read(model::overlay(&before, body), Some(&kept));
    let actor = acting_user(p, ctx).await?;
    let at = now();
    let mut errors = Fields::new();
    let change = closing::settle(Some(&before), &mut next, &actor, at, &mut errors);
    check_people(ctx, &p.workspace_id, &sent, &bad, &mut next, &mut errors).await?;
    finish(bad, errors)?;

    let replacement = Stored::of(&p.workspace_id, &next, version + 1)?;
    let step = records::replace_step(ctx.store.table(), &replacement, version)?;
    match outbox::commit(ctx, vec![step], &[event(p, change, &next)]).await {
        // The version named in `If-Match` is gone: the same answer as a stale one.
        Err(StoreError::Conflict(_)) if conditional => Err(preconditions::lost_race()),
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "The request was changed at the same time; read it again and retry.",
        )),
        r => {
            r?;
            respond(StatusCode::OK, p, next, at, version + 1)
        }
    }
}

/// The top-level fields a prepared body sends.
fn sent_fields(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// One 422 with every bad field: wrong types first, then the rules' findings for fields
/// that read (a field named once).
fn finish(mut all: Vec<FieldError>, rules: Fields) -> Result<(), ApiError> {
    if let Err(e) = rules.finish() {
        for f in e.errors {
            if !all.iter().any(|a| a.field == f.field) {
                all.push(f);
            }
        }
    }
    if all.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(all))
    }
}

/// Checks the users the body names (see `people`) and sets them as Koppel knows them.
/// A field that did not read (`bad`) is not checked again.
async fn check_people(
    ctx: &Ctx,
    ws: &str,
    sent: &BTreeSet<String>,
    bad: &[FieldError],
    d: &mut Dsr,
    errors: &mut Fields,
) -> Result<(), ApiError> {
    let unread = |k: &str| {
        bad.iter()
            .any(|e| e.field.split(['.', '[']).next() == Some(k))
    };
    let is_sent = |k: &str| sent.contains(k) && !unread(k);
    let wanted = people::wanted(&is_sent, d, errors);
    let (ids, everyone) = wanted.lookups();
    // A Dastra id is a hash of a user id: finding its user means reading them all.
    let users = if everyone {
        ctx.store.users(ws).await?
    } else {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(ctx.store.user(ws, id).await?);
        }
        found
    };
    people::apply(&wanted, &users, d, errors);
    Ok(())
}

/// `GET …/DataSubjectRequests`: `{items, total, size, page}`.
async fn list(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let params = req.query_string_parameters();
    let q = list_query::parse(params.iter())?;
    let at = now();
    let page = listing::page_keys(&ctx.store, &p.workspace_id, &q, &Instant(at).format()).await?;
    let items = listing::fetch(&ctx.store, &page.keys)
        .await?
        .iter()
        .map(|s| s.dsr().map(|d| closing::for_reading(d, at)))
        .collect::<Result<Vec<_>, _>>()?;
    let body = DsrPage {
        items,
        total: page.total,
        size: q.size,
        page: q.page,
    };
    pipeline::json(StatusCode::OK, &body)
}

/// A JSON object body: 415 for another content type, 400 for malformed JSON, 422 for
/// JSON that is not an object.
fn object_body(req: &Request) -> Result<Value, ApiError> {
    let v: Value = body::json(req)?;
    if !v.is_object() {
        let mut errors = Fields::new();
        errors.push("", "the body must be a JSON object: a data-subject request");
        errors.finish()?;
    }
    Ok(v)
}

async fn acting_user(p: &Principal, ctx: &Ctx) -> Result<UserRef, ApiError> {
    let user = ctx
        .store
        .user(&p.workspace_id, &p.user_id)
        .await?
        .ok_or_else(|| ApiError::internal("the acting user of a credential does not exist"))?;
    Ok(UserRef::of(&user))
}

fn event(p: &Principal, change: Change, d: &Dsr) -> Event {
    let data = json!({ "id": d.id, "state": d.state, "request": d });
    Event::new(change.event_type(), &p.workspace_id, data)
}

fn respond(
    status: StatusCode,
    p: &Principal,
    d: Dsr,
    now: jiff::Timestamp,
    version: u64,
) -> RouteResult {
    let location = format!("/v1/ws/{}/DataSubjectRequests/{}", p.workspace_id, d.id);
    let mut resp = preconditions::with_etag(
        pipeline::json(status, &closing::for_reading(d, now))?,
        version,
    );
    if status == StatusCode::CREATED
        && let Ok(v) = http::HeaderValue::from_str(&location)
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list_query::SortBy;
    use crate::model::State;

    #[test]
    fn the_sample_event_parses_with_its_route_and_query() {
        let text = include_str!("../../../events/dsr-list.json");
        let req = lambda_http::request::from_str(text).unwrap();
        assert_eq!(pipeline::resource(&req), ROUTES[1].path);
        assert_eq!(
            req.path_parameters().first("workspaceId"),
            Some("ws_0123456789abcdef")
        );
        let q = list_query::parse(req.query_string_parameters().iter()).unwrap();
        assert_eq!(q.states, [State::Open, State::Closed].into());
        assert_eq!((q.size, q.sort_by), (50, SortBy::ExpiryTime));
        assert_eq!(
            pipeline::principal(&req).unwrap().workspace_id,
            "ws_0123456789abcdef"
        );
    }

    #[test]
    fn one_422_names_each_field_once_wrong_types_first() {
        let bad = vec![FieldError {
            field: "purposes".into(),
            message: "invalid type".into(),
        }];
        let mut rules = Fields::new();
        rules.push("purposes", "at least one purpose is required");
        rules.push("userId", "names no user");
        let e = finish(bad, rules).unwrap_err();
        assert_eq!(e.status, 422);
        let named: Vec<(&str, &str)> = e
            .errors
            .iter()
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            named,
            [("purposes", "invalid type"), ("userId", "names no user")]
        );
        assert!(finish(Vec::new(), Fields::new()).is_ok());
    }

    #[test]
    fn sent_fields_are_the_top_level_keys() {
        let body = model::writable_part(json!({ "doeleinden": [], "id": 4, "title": "t" }));
        assert_eq!(
            sent_fields(&body),
            ["purposes".to_owned(), "title".to_owned()].into()
        );
    }

    #[test]
    fn ids_are_positive_integers() {
        assert_eq!(parse_id("42").unwrap(), 42);
        for bad in ["0", "-1", "abc", "1.5", ""] {
            assert_eq!(parse_id(bad).unwrap_err().status, 404, "{bad}");
        }
    }
}
