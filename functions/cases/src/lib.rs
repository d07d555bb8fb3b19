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
#[cfg(test)]
mod fixtures;
mod paths;
pub mod query;
pub mod repo;
mod rules;
pub mod searches;
pub mod write;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use koppel_shared::cases::{Case, CaseAnswer, CaseMovedOut, CaseView, View};
use koppel_shared::handler;
use koppel_shared::model::{Level, Scope};
pub(crate) use koppel_shared::pipeline::versioned;
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::routes::{Answer, Doc, Precondition, Query, Route, RouteBody, schema};
use koppel_shared::store::Store;
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, RequestExt, Response};
use schemars::JsonSchema;
use serde::Serialize;
use tracing::Instrument;

use query::ListQuery;
use repo::HistoryEntry;

/// How many cases a list request may read (in DynamoDB pages) looking for matches before it
/// answers with what it found and a cursor: a narrow search must not make one request
/// read the whole workspace.
const LIST_READ_BUDGET: usize = 5_000;
/// Most cases a list reads per DynamoDB query (the export reads whole 1 MB pages). The
/// first query asks for `limit`, and each further one twice the last: a list whose cases
/// all match reads about `limit`, a narrow filter still gets through quickly.
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
        doc: Doc {
            response: Some(schema::<CaseList>),
            query: LIST_QUERY,
            errors: &[400, 422],
            description: "The cases the caller's saved search shows (a workspace user: all), with the caller's own filters on top, in case id order. A page may hold fewer than `limit` cases: follow `next_cursor` until it is `null`. A filter on a field outside the saved search's columns is a 400; a bad `limit` or `cursor` a 422 naming it.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/cases",
        scope: Some(Scope::CasesWrite),
        level: Level::Handle,
        summary: "Create a case",
        handler: handler!(ResponseBody, |c| create(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<write::NewCase>),
            response: Some(schema::<CaseAnswer>),
            status: 201,
            etag: true,
            description: "A JSON merge patch over an empty case. Fields outside the caller's saved search cannot be written (422 naming each). A case created outside the caller's saved search is answered with `Koppel-Case-Visible: false` and `{id, uuid, visible: false, detail}` (no `ETag`).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/cases/export.csv",
        scope: Some(Scope::CasesExport),
        level: Level::Read,
        summary: "Export the saved search as CSV",
        handler: handler!(ResponseBody, |c| export(c.p, c.req, c.ctx)),
        doc: CSV_DOC,
    },
    Route {
        method: Method::GET,
        path: "/app/api2csv",
        scope: Some(Scope::CasesExport),
        level: Level::Read,
        summary: "Export the saved search as CSV (Zaaksysteem koppelprofiel path)",
        handler: handler!(ResponseBody, |c| export(c.p, c.req, c.ctx)),
        doc: CSV_DOC,
    },
    Route {
        method: Method::GET,
        path: "/v1/cases/{id}",
        scope: Some(Scope::CasesRead),
        level: Level::Read,
        summary: "Read a case",
        handler: handler!(ResponseBody, |c| get(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<CaseView>),
            etag: true,
            description: "The case with the fields the caller's saved search shows. A case outside it is a 404.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::PATCH,
        path: "/v1/cases/{id}",
        scope: Some(Scope::CasesWrite),
        level: Level::Handle,
        summary: "Change a case (JSON merge patch)",
        handler: handler!(ResponseBody, |c| update(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc {
            request: Some(schema::<write::CasePatch>),
            response: Some(schema::<CaseAnswer>),
            precondition: Precondition::Required,
            etag: true,
            description: "A JSON merge patch (RFC 7396) over the case: `null` clears a field. Fields outside the caller's saved search cannot be written (422 naming each). A change that moves the case out of the caller's saved search is saved and answered with `Koppel-Case-Visible: false` and `{id, uuid, visible: false, detail}` (no `ETag`).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/cases/{id}/history",
        scope: Some(Scope::CasesRead),
        level: Level::Read,
        summary: "A case's history",
        handler: handler!(ResponseBody, |c| history(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<HistoryPage>),
            query: &[
                Query {
                    name: "after_version",
                    description: "Continue after this version (the previous page's `next_after_version`).",
                    kind: "integer",
                },
                Query {
                    name: "limit",
                    description: "Versions per page, 1 to 500 (default 100).",
                    kind: "integer",
                },
            ],
            errors: &[400, 422],
            description: "Who changed what, when, on behalf of which employee and through which connector, oldest first; only the fields the caller can see, and only versions that changed one of them. An unknown query parameter is a 400; a bad `limit` or `after_version` a 422 naming it.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/saved-searches",
        scope: None,
        level: Level::Read,
        summary: "List saved searches",
        handler: handler!(ResponseBody, |c| searches::list(c.p, c.ctx)),
        doc: Doc {
            response: Some(schema::<searches::SavedSearchList>),
            description: searches::MANAGED,
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/saved-searches",
        scope: None,
        level: Level::Read,
        summary: "Create a saved search",
        handler: handler!(ResponseBody, |c| searches::create(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<searches::NewSavedSearch>),
            response: Some(schema::<searches::SavedSearchView>),
            status: 201,
            etag: true,
            description: searches::MANAGED,
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/saved-searches/{id}",
        scope: None,
        level: Level::Read,
        summary: "Read a saved search",
        handler: handler!(ResponseBody, |c| searches::get(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<searches::SavedSearchView>),
            etag: true,
            description: searches::MANAGED,
            ..Doc::DEFAULT
        },
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
        doc: Doc {
            request: Some(schema::<searches::Input>),
            response: Some(schema::<searches::SavedSearchView>),
            precondition: Precondition::Required,
            etag: true,
            description: "An absent field stays as it is. Managed by the workspace's users with `manage_connectors`, with a personal access token.",
            ..Doc::DEFAULT
        },
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
        doc: Doc {
            precondition: Precondition::Optional,
            errors: &[409],
            description: "Refused (409) while a connector uses it. Managed by the workspace's users with `manage_connectors`, with a personal access token.",
            ..Doc::DEFAULT
        },
    },
];

/// The filters the list and the CSV export read (`ListQuery::parse`).
const FILTERS: [Query; 8] = [
    Query {
        name: "status",
        description: "open, in_progress, suspended or closed; comma-separated or repeated (any of them).",
        kind: "array",
    },
    Query {
        name: "case_type",
        description: "Comma-separated or repeated (any of them).",
        kind: "array",
    },
    Query {
        name: "department",
        description: "Comma-separated or repeated (any of them); only when `department` is one of the saved search's columns (400 otherwise).",
        kind: "array",
    },
    Query {
        name: "assignee",
        description: "A user id; comma-separated or repeated (any of them); only when `assignee` is one of the saved search's columns (400 otherwise).",
        kind: "array",
    },
    Query {
        name: "registered_from",
        description: "Registration date on or after (YYYY-MM-DD).",
        kind: "string",
    },
    Query {
        name: "registered_to",
        description: "Registration date on or before (YYYY-MM-DD).",
        kind: "string",
    },
    Query {
        name: "updated_since",
        description: "Changed at or after (RFC 3339).",
        kind: "string",
    },
    Query {
        name: "order",
        description: "`asc` (default) or `desc`, by case id.",
        kind: "string",
    },
];

const LIST_QUERY: &[Query] = &with_filters::<10>(&[
    Query {
        name: "limit",
        description: "Cases per page, 1 to 500 (default 50).",
        kind: "integer",
    },
    Query {
        name: "cursor",
        description: "The previous page's `next_cursor` (same order and filters).",
        kind: "string",
    },
]);

/// [`FILTERS`] then `extra`, as one list of `N` (checked when it is built).
const fn with_filters<const N: usize>(extra: &[Query]) -> [Query; N] {
    assert!(N == FILTERS.len() + extra.len());
    let mut all = [FILTERS[0]; N];
    let mut i = 0;
    while i < N {
        all[i] = if i < FILTERS.len() {
            FILTERS[i]
        } else {
            extra[i - FILTERS.len()]
        };
        i += 1;
    }
    all
}

const CSV_DOC: Doc = Doc {
    media_type: "text/csv",
    query: &with_filters::<9>(&[Query {
        name: "bom",
        description: "Start with a UTF-8 byte order mark (for Excel): `true`/`1` or `false`/`0`.",
        kind: "boolean",
    }]),
    errors: &[400],
    description: "The saved search as CSV (RFC 4180, UTF-8, `header=present`), streamed: the base fields, then the saved search's columns in its order (a workspace user: every column, custom attributes as one JSON column). Text cells that would start a spreadsheet formula begin with `'`.",
    ..Doc::DEFAULT
};

/// A page of `GET /v1/cases`.
#[derive(Serialize, JsonSchema)]
pub struct CaseList {
    pub items: Vec<CaseView>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of `GET /v1/cases/{id}/history`.
#[derive(Serialize, JsonSchema)]
pub struct HistoryPage {
    pub items: Vec<HistoryEntry>,
    /// Pass as `after_version` for the next page; `null` on the last page.
    pub next_after_version: Option<u64>,
}

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
    let query = ListQuery::parse(pairs(&query_pairs(req)), &view, true, &p.workspace_id)?;
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
    let (view, c) = view_and_case(p, ctx, id).await?;
    versioned(StatusCode::OK, &view.view(&c), c.version)
}

async fn update(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let (view, c) = view_and_case(p, ctx, id).await?;
    write::update(p, req, ctx, &view, c).await
}

/// The caller's view and the case it names (read together), if the view shows it; else 404.
async fn view_and_case(p: &Principal, ctx: &Ctx, id: &str) -> Result<(View, Case), ApiError> {
    let id = number(id)?;
    let (view, case) = tokio::join!(view_of(p, ctx), repo::get(&ctx.store, &p.workspace_id, id));
    let view = view?;
    let case = case?
        .filter(|c| view.sees(c))
        .ok_or_else(ApiError::not_found)?;
    Ok((view, case))
}

/// The query's (name, value) pairs by name (a stable sort: a repeated name keeps its values'
/// order). The event's map has no order, and a 422 lists its bad parameters in this one.
fn query_pairs(req: &Request) -> Vec<(String, String)> {
    let q = req.query_string_parameters();
    let mut pairs: Vec<(String, String)> = q
        .iter()
        .flat_map(|(k, _)| {
            q.all(k)
                .unwrap_or_default()
                .into_iter()
                .map(move |v| (k.to_owned(), v.to_owned()))
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

fn pairs(v: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// How the caller sees cases: a workspace user everything, a connector its saved search.
pub async fn view_of(p: &Principal, ctx: &Ctx) -> Result<View, ApiError> {
    let Some(con) = &p.connector_id else {
        return Ok(View::All);
    };
    if let Some(held) = p.held.as_ref().and_then(|h| h.connector.as_ref()) {
        let search = held.saved_search_id.as_deref();
        return Ok(ctx.store.case_view_through(&p.workspace_id, search).await?);
    }
    match ctx.store.connector(&p.workspace_id, con).await? {
        Some(con) => Ok(ctx.store.case_view(&con).await?),
        None => Ok(View::of(None)),
    }
}

async fn list(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let view = view_of(p, ctx).await?;
    let q = ListQuery::parse(pairs(&query_pairs(req)), &view, false, &p.workspace_id)?;
    let mut items = Vec::new();
    let mut after = q.after;
    let mut read = 0;
    let mut next = None;
    let mut size = i32::try_from(q.limit).unwrap_or(PAGE).clamp(1, PAGE);
    if !matches!(view, View::Nothing) {
        'pages: loop {
            let (cases, more) =
                repo::page(&ctx.store, &p.workspace_id, q.order, after, Some(size)).await?;
            size = size.saturating_mul(2).min(PAGE);
            for c in &cases {
                read += 1;
                after = Some(c.id);
                if view.sees(c) && q.matches(c) {
                    items.push(view.view(c));
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
        &CaseList {
            items,
            next_cursor: next.map(|id| q.next_cursor(id)),
        },
    )
}

async fn history(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let (view, case) = view_and_case(p, ctx, id).await?;
    let id = case.id;
    let (after, limit) = query::history_query(pairs(&query_pairs(req)))?;
    let (entries, more) = repo::history(&ctx.store, &p.workspace_id, id, after, limit).await?;
    let last = entries.last().map(|e| e.version);
    // Only fields the caller may see, and only versions that changed one of them.
    let items: Vec<HistoryEntry> = entries
        .into_iter()
        .filter_map(|mut e| {
            e.changes.retain(|c| view.sees_field(&c.field));
            (!e.changes.is_empty()).then_some(e)
        })
        .collect();
    pipeline::json(
        StatusCode::OK,
        &HistoryPage {
            items,
            next_after_version: if more { last } else { None },
        },
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
    let columns = csv_out::columns(&view);
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
    let moved = CaseMovedOut {
        id: c.id,
        uuid: c.uuid.clone(),
        visible: false,
        detail: "The change was saved, and moved the case out of this connector's saved \
                 search: from now on it does not exist for this connector."
            .into(),
    };
    let mut r = pipeline::json(status, &CaseAnswer::MovedOut(moved))?;
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
        let q = ListQuery::parse(pairs(&query_pairs(&req)), &View::All, true, "ws").unwrap();
        assert!(q.bom);
    }

    #[test]
    fn the_status_filter_names_every_status() {
        assert!(
            FILTERS[0]
                .description
                .starts_with(&format!("{};", query::statuses()))
        );
    }
}
