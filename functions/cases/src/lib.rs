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

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use koppel_shared::cases::{Case, View};
use koppel_shared::handler;
use koppel_shared::model::{Level, Scope};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::preconditions;
use koppel_shared::routes::{Answer, Doc, Route, RouteBody};
use koppel_shared::store::Store;
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use tracing::Instrument;

use query::ListQuery;

/// How many cases a list request may read (in DynamoDB pages) looking for matches before it
/// answers with what it found and a cursor: a narrow search must not make one request
/// read the whole workspace.
const LIST_READ_BUDGET: usize = 5_000;
/// Cases a list reads per DynamoDB query (the export reads whole 1 MB pages).
const PAGE: i32 = 500;

/// The routes of the function, as template.yaml declares them (checked by a test).
pub static ROUTES: &[Route<ResponseBody>] = &[
    Route {
        method: Method::GET,
        path: "/v1/cases",
        scope: Some(Scope::CasesRead),
        level: Level::Read,
        summary: "List the visible cases",
        handler: handler!(ResponseBody, |c| list(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::POST,
        path: "/v1/cases",
        scope: Some(Scope::CasesWrite),
        level: Level::Handle,
        summary: "Create a case",
        handler: handler!(ResponseBody, |c| create(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/cases/export.csv",
        scope: Some(Scope::CasesExport),
        level: Level::Read,
        summary: "Export the saved search as CSV",
        handler: handler!(ResponseBody, |c| export(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/app/api2csv",
        scope: Some(Scope::CasesExport),
        level: Level::Read,
        summary: "Export the saved search as CSV (Zaaksysteem koppelprofiel path)",
        handler: handler!(ResponseBody, |c| export(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/cases/{id}",
        scope: Some(Scope::CasesRead),
        level: Level::Read,
        summary: "Read a case",
        handler: handler!(ResponseBody, |c| get(c.p, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::PATCH,
        path: "/v1/cases/{id}",
        scope: Some(Scope::CasesWrite),
        level: Level::Handle,
        summary: "Change a case (JSON merge patch)",
        handler: handler!(ResponseBody, |c| update(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/cases/{id}/history",
        scope: Some(Scope::CasesRead),
        level: Level::Read,
        summary: "A case's history",
        handler: handler!(ResponseBody, |c| history(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/saved-searches",
        scope: None,
        level: Level::Read,
        summary: "List saved searches",
        handler: handler!(ResponseBody, |c| searches::list(c.p, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::POST,
        path: "/v1/saved-searches",
        scope: None,
        level: Level::Read,
        summary: "Create a saved search",
        handler: handler!(ResponseBody, |c| searches::create(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/saved-searches/{id}",
        scope: None,
        level: Level::Read,
        summary: "Read a saved search",
        handler: handler!(ResponseBody, |c| searches::get(c.p, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::PATCH,
        path: "/v1/saved-searches/{id}",
        scope: None,
        level: Level::Read,
        summary: "Change a saved search",
        handler: handler!(ResponseBody, |c| searches::update(
            c.p,
            c.req,
            c.ctx,
            &c.param("id")
        )),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::DELETE,
        path: "/v1/saved-searches/{id}",
        scope: None,
        level: Level::Read,
        summary: "Delete a saved search",
        handler: handler!(ResponseBody, |c| searches::delete(
            c.p,
            c.req,
            c.ctx,
            &c.param("id")
        )),
        doc: Doc::DEFAULT,
    },
];

pub async fn handler(req: Request, ctx: &Ctx) -> Response<ResponseBody> {
    pipeline::serve(req, ctx, ROUTES).await
}

/// The body of every cases response: buffered, or the CSV stream.
pub enum ResponseBody {
    Buffered(Bytes),
    Stream(UnsyncBoxBody<Bytes, lambda_http::Error>),
}

impl From<Body> for ResponseBody {
    fn from(b: Body) -> Self {
        Self::Buffered(match b {
            Body::Text(t) => Bytes::from(t),
            Body::Binary(b) => Bytes::from(b),
            _ => Bytes::new(),
        })
    }
}

impl RouteBody for ResponseBody {
    fn buffered(&self) -> Option<&[u8]> {
        match self {
            Self::Buffered(b) => Some(b),
            Self::Stream(_) => None,
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = lambda_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Buffered(b) if b.is_empty() => Poll::Ready(None),
            Self::Buffered(b) => Poll::Ready(Some(Ok(http_body::Frame::data(std::mem::take(b))))),
            Self::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Buffered(b) => b.is_empty(),
            Self::Stream(s) => s.is_end_stream(),
        }
    }
}

async fn create(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    write::create(p, req, ctx, &view_of(p, ctx).await?).await
}

/// The saved search as CSV, streamed page by page inside the request's span.
async fn export(p: &Principal, req: &Request, ctx: &Ctx) -> Answer<ResponseBody> {
    let view = view_of(p, ctx).await?;
    let query = ListQuery::parse(pairs(&query_pairs(req)), &view, true)?;
    let body = csv_stream(ctx.store.clone(), p.workspace_id.clone(), view, query);
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8; header=present",
        )
        .header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"cases.csv\"",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(ResponseBody::Stream(body))
        .map_err(ApiError::internal)
}

/// A case number from the path; anything else names no case.
fn number(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

async fn get(p: &Principal, ctx: &Ctx, id: &str) -> RouteResult {
    let view = view_of(p, ctx).await?;
    let c = visible(p, ctx, &view, number(id)?).await?;
    versioned(StatusCode::OK, &view.project(&c), c.version)
}

async fn update(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let view = view_of(p, ctx).await?;
    let c = visible(p, ctx, &view, number(id)?).await?;
    write::update(p, req, ctx, &view, c).await
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

async fn history(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let view = view_of(p, ctx).await?;
    let id = number(id)?;
    visible(p, ctx, &view, id).await?;
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
fn csv_stream(
    store: Store,
    ws: String,
    view: View,
    query: ListQuery,
) -> UnsyncBoxBody<Bytes, lambda_http::Error> {
    struct Export {
        ws: String,
        view: View,
        query: ListQuery,
    }
    struct State {
        store: Store,
        e: Export,
        columns: Vec<String>,
        after: Option<u64>,
        header_sent: bool,
        done: bool,
    }
    let columns = view.csv_columns();
    let state = State {
        store,
        e: Export { ws, view, query },
        columns,
        after: None,
        header_sent: false,
        done: false,
    };
    // The body is read after the handler returned: each page is read in the request's
    // span, so a failure is logged with its request id.
    let span = tracing::Span::current();
    let stream = futures_util::stream::unfold(state, move |mut s| {
        let span = span.clone();
        async move {
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
        }
        .instrument(span)
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
