//! The `cases` function: cases (zaken) as a connector's saved search shows them, and the
//! saved searches themselves.
//!
//! | route | scope, level | what |
//! |---|---|---|
//! | `GET /v1/cases` | `cases:read` | the visible cases, filtered, in id order, cursor-paged |
//! | `POST /v1/cases` | `cases:write`, `handle` | create |
//! | `GET /v1/cases/{id}` | `cases:read` | one case (`ETag`) |
//! | `PATCH /v1/cases/{id}` | `cases:write`, `handle` | JSON merge patch; `If-Match` required |
//! | `GET /v1/cases/{id}/history` | `cases:read` | who changed what, through which connector |
//! | `GET /v1/cases/export.csv`, `GET /app/api2csv` | `cases:export` | the saved search as CSV, streamed |
//! | `/v1/saved-searches[/{id}]` | user with `manage_connectors` | saved search CRUD |
//!
//! A case outside the caller's saved search does not exist for it (404, absent from lists
//! and CSV); fields outside its columns are never returned and cannot be written (422).
//! A change that moves a visible case out of the search is made, and answered with
//! `200`, `Koppel-Case-Visible: false` and `{"id", "uuid", "visible": false, "detail"}`
//! instead of the case: from then on it is 404 for that caller.

pub mod csv_out;
pub mod query;
pub mod repo;
mod searches;
pub mod write;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use koppel_shared::cases::{Case, View};
use koppel_shared::model::{Level, Scope};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::preconditions;
use koppel_shared::store::Store;
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use query::ListQuery;

/// The body of every cases response: buffered, or the CSV stream.
pub type ResponseBody = UnsyncBoxBody<Bytes, lambda_http::Error>;

/// How many cases a list request may read (in DynamoDB pages) looking for matches before it
/// answers with what it found and a cursor: a narrow search must not make one request
/// read the whole workspace.
const LIST_READ_BUDGET: usize = 5_000;
/// Cases a list reads per DynamoDB query (the export reads whole 1 MB pages).
const PAGE: i32 = 500;

/// What the export route hands back to [`handler`] to stream once the pipeline said yes.
struct Export {
    ws: String,
    view: View,
    query: ListQuery,
}

pub async fn handler(req: Request, ctx: &Ctx) -> Response<ResponseBody> {
    let slot: Arc<Mutex<Option<Export>>> = Arc::default();
    let export = slot.clone();
    let resp = pipeline::run(req, ctx, |p, req| route(p, req, ctx, export)).await;
    let (parts, body) = resp.into_parts();
    let plan = slot.lock().ok().and_then(|mut s| s.take());
    match plan {
        Some(e) if parts.status == StatusCode::OK => {
            Response::from_parts(parts, csv_stream(ctx.store.clone(), e))
        }
        _ => Response::from_parts(parts, buffered(body)),
    }
}

fn buffered(body: Body) -> ResponseBody {
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Full::new(bytes).map_err(|e| match e {}).boxed_unsync()
}

async fn route(
    p: Principal,
    req: Request,
    ctx: &Ctx,
    export: Arc<Mutex<Option<Export>>>,
) -> RouteResult {
    let id = req
        .path_parameters()
        .first("id")
        .unwrap_or_default()
        .to_owned();
    let resource = pipeline::resource(&req);
    match (req.method().clone(), resource.as_str()) {
        (m, r) if r.starts_with("/v1/saved-searches") => {
            searches::route(&p, &req, ctx, &m, r, &id).await
        }
        (Method::GET, "/v1/cases") => {
            p.require(Some(Scope::CasesRead), Level::Read)?;
            list(&p, &req, ctx).await
        }
        (Method::POST, "/v1/cases") => {
            p.require(Some(Scope::CasesWrite), Level::Handle)?;
            write::create(&p, &req, ctx, &view_of(&p, ctx).await?).await
        }
        (Method::GET, "/v1/cases/export.csv" | "/app/api2csv") => {
            p.require(Some(Scope::CasesExport), Level::Read)?;
            let view = view_of(&p, ctx).await?;
            let query = ListQuery::parse(pairs(&query_pairs(&req)), &view, true)?;
            let disposition = "attachment; filename=\"cases.csv\"";
            let resp = Response::builder()
                .status(StatusCode::OK)
                .header(
                    header::CONTENT_TYPE,
                    "text/csv; charset=utf-8; header=present",
                )
                .header(header::CONTENT_DISPOSITION, disposition)
                .header(header::CACHE_CONTROL, "no-store")
                .body(Body::Empty)
                .map_err(ApiError::internal)?;
            if let Ok(mut slot) = export.lock() {
                *slot = Some(Export {
                    ws: p.workspace_id.clone(),
                    view,
                    query,
                });
            }
            Ok(resp)
        }
        (m, "/v1/cases/{id}" | "/v1/cases/{id}/history") => {
            let Ok(number) = id.parse::<u64>() else {
                return Err(ApiError::not_found());
            };
            let view = view_of(&p, ctx).await?;
            match (m, resource.as_str()) {
                (Method::GET, "/v1/cases/{id}") => {
                    p.require(Some(Scope::CasesRead), Level::Read)?;
                    let c = visible(&p, ctx, &view, number).await?;
                    versioned(StatusCode::OK, &view.project(&c), c.version)
                }
                (Method::PATCH, "/v1/cases/{id}") => {
                    p.require(Some(Scope::CasesWrite), Level::Handle)?;
                    let c = visible(&p, ctx, &view, number).await?;
                    write::update(&p, &req, ctx, &view, c).await
                }
                (Method::GET, "/v1/cases/{id}/history") => {
                    p.require(Some(Scope::CasesRead), Level::Read)?;
                    visible(&p, ctx, &view, number).await?;
                    history(&p, &req, ctx, &view, number).await
                }
                _ => Err(ApiError::not_found()),
            }
        }
        _ => Err(ApiError::not_found()),
    }
}

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    let q = req.query_string_parameters();
    q.iter()
        .flat_map(|(k, _)| {
            q.all(k)
                .unwrap_or_default()
                .into_iter()
                .map(move |v| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn pairs(v: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// How the caller sees cases: a workspace user everything, a connector its saved search.
pub async fn view_of(p: &Principal, ctx: &Ctx) -> Result<View, ApiError> {
    let Some(con) = &p.connector_id else {
        return Ok(View::All);
    };
    match ctx.store.connector(&p.workspace_id, con).await? {
        Some(con) => Ok(View::of_connector(&ctx.store, &con).await?),
        None => Ok(View::Nothing),
    }
}

/// The case, if it exists and the caller's view shows it; else 404.
async fn visible(p: &Principal, ctx: &Ctx, view: &View, id: u64) -> Result<Case, ApiError> {
    repo::get(&ctx.store, &p.workspace_id, id)
        .await?
        .filter(|c| view.sees(c))
        .ok_or_else(ApiError::not_found)
}

pub(crate) fn versioned(status: StatusCode, value: &Value, version: u64) -> RouteResult {
    Ok(preconditions::with_etag(
        pipeline::json(status, value)?,
        version,
    ))
}

async fn list(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let view = view_of(p, ctx).await?;
    let q = ListQuery::parse(pairs(&query_pairs(req)), &view, false)?;
    let mut items = Vec::new();
    let mut after = q.after;
    let mut read = 0;
    let mut next = None;
    if !matches!(view, View::Nothing) {
        'pages: loop {
            let (cases, more) =
                repo::page(&ctx.store, &p.workspace_id, q.order, after, Some(PAGE)).await?;
            for c in &cases {
                read += 1;
                after = Some(c.id);
                if view.sees(c) && q.matches(c) {
                    items.push(view.project(c));
                    if items.len() == q.limit {
                        next = Some(c.id);
                        break 'pages;
                    }
                }
            }
            if !more {
                break;
            }
            if read >= LIST_READ_BUDGET {
                next = after;
                break;
            }
        }
    }
    pipeline::json(
        StatusCode::OK,
        &json!({
            "items": items,
            "next_cursor": next.map(|id| query::encode_cursor(id, q.order)),
        }),
    )
}

async fn history(p: &Principal, req: &Request, ctx: &Ctx, view: &View, id: u64) -> RouteResult {
    let params = query_pairs(req);
    let mut after = 0;
    let mut limit = 100;
    for (k, v) in pairs(&params) {
        match k {
            "after_version" => {
                after = v.parse().map_err(|_| {
                    ApiError::bad_request("Query parameter `after_version` must be a number.")
                })?;
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request("Query parameter `limit` must be 1 to 500.")
                    })?;
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Query parameter `{k}` is not known."
                )));
            }
        }
    }
    let (entries, more) = repo::history(&ctx.store, &p.workspace_id, id, after, limit).await?;
    let last = entries.last().map(|e| e.version);
    // Only fields the caller may see, and only versions that changed one of them.
    let items: Vec<Value> = entries
        .into_iter()
        .filter_map(|mut e| {
            e.changes.retain(|c| view.sees_field(&c.field));
            (!e.changes.is_empty()).then(|| serde_json::to_value(e).unwrap_or(Value::Null))
        })
        .collect();
    pipeline::json(
        StatusCode::OK,
        &json!({
            "items": items,
            "next_after_version": if more { last } else { None },
        }),
    )
}

/// The CSV: the header, then one chunk per page of cases read, so memory stays flat however
/// many cases match. A failure half-way ends the stream with an error (the status line is
/// sent already), which the client sees as a broken transfer, never as a complete file.
fn csv_stream(store: Store, e: Export) -> ResponseBody {
    struct State {
        store: Store,
        e: Export,
        columns: Vec<String>,
        after: Option<u64>,
        header_sent: bool,
        done: bool,
    }
    let columns = e.view.csv_columns();
    let state = State {
        store,
        e,
        columns,
        after: None,
        header_sent: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if !s.header_sent {
            s.header_sent = true;
            let h = csv_out::header(&s.columns, s.e.query.bom);
            return Some((Ok(http_body::Frame::data(Bytes::from(h))), s));
        }
        if s.done || matches!(s.e.view, View::Nothing) {
            return None;
        }
        match repo::page(&s.store, &s.e.ws, s.e.query.order, s.after, None).await {
            Err(err) => {
                tracing::error!(error = %err, "CSV export broke off");
                s.done = true;
                Some((Err(lambda_http::Error::from(err.to_string())), s))
            }
            Ok((cases, more)) => {
                s.after = cases.last().map(|c| c.id).or(s.after);
                s.done = !more;
                let rows = csv_out::rows(
                    &s.columns,
                    cases
                        .iter()
                        .filter(|c| s.e.view.sees(c) && s.e.query.matches(c)),
                );
                Some((Ok(http_body::Frame::data(Bytes::from(rows))), s))
            }
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

/// The `Koppel-Case-Visible: false` answer to a change that moved the case out of the
/// caller's saved search.
pub(crate) fn no_longer_visible(status: StatusCode, c: &Case) -> RouteResult {
    let mut r = pipeline::json(
        status,
        &json!({
            "id": c.id,
            "uuid": c.uuid,
            "visible": false,
            "detail": "The change was saved, and moved the case out of this connector's saved \
                       search: from now on it does not exist for this connector.",
        }),
    )?;
    r.headers_mut()
        .insert("koppel-case-visible", HeaderValue::from_static("false"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_event_is_the_seed_export() {
        let text = include_str!("../../../events/cases-api2csv.json");
        let req = lambda_http::request::from_str(text).unwrap();
        assert_eq!(pipeline::resource(&req), "/app/api2csv");
        let p = pipeline::principal(&req).unwrap();
        assert!(p.scopes.contains(&Scope::CasesExport));
        let q = ListQuery::parse(pairs(&query_pairs(&req)), &View::All, true).unwrap();
        assert!(q.bom);
    }
}
