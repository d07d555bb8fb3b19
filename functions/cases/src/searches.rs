//! Saved searches (zoekopdrachten), managed by the workspace's users who hold
//! `manage_connectors`, with a personal token. A connector points to one.

use http::{HeaderValue, StatusCode, header};
use koppel_shared::body::{self, Fields};
use koppel_shared::cases::{Filters, SavedSearch};
use koppel_shared::ids::new_id;
use koppel_shared::model::Connector;
use koppel_shared::organisation::{self, Permission};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::preconditions;
use koppel_shared::store::{Expr, Key};
use koppel_shared::time_util::{now, rfc3339};
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::Request;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::repo;
use crate::rules::{FilterRules, validate_columns};

/// Who may use the saved-search routes (for the contract).
pub const MANAGED: &str = "Managed by the workspace's users with `manage_connectors`, with a personal access token (a connector's credentials get 403).";

/// A create or update body. On update an absent (or `null`) field stays as it is.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// 1 to 200 characters.
    name: Option<String>,
    /// Which cases the connectors using the search see; every given filter must match.
    filters: Option<Filters>,
    /// The fields shown besides the base fields, in CSV order: `subject`, `phase`,
    /// `requester.name`, `requester.email`, `requester.bsn`, `requester.kvk`, `assignee`,
    /// `department`, `result`, `confidentiality`, or `attributes.<name>`.
    columns: Option<Vec<String>>,
}

/// What `POST /v1/saved-searches` accepts: [`Input`] with `name` required (a schema only;
/// the body is read as `Input`).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct NewSavedSearch {
    /// 1 to 200 characters.
    name: String,
    filters: Option<Filters>,
    /// As in [`Input`].
    columns: Option<Vec<String>>,
}

/// A saved search as the API shows it.
#[derive(Serialize, JsonSchema)]
pub struct SavedSearchView {
    pub id: String,
    pub name: String,
    pub filters: Filters,
    pub columns: Vec<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /v1/saved-searches`: every saved search of the workspace.
#[derive(Serialize, JsonSchema)]
pub struct SavedSearchList {
    pub items: Vec<SavedSearchView>,
}

/// Far above any real search, far below DynamoDB's 400 KB item limit.
const MAX_SEARCH_BYTES: usize = 32 * 1024;

fn view(s: &SavedSearch) -> SavedSearchView {
    SavedSearchView {
        id: s.saved_search_id.clone(),
        name: s.name.clone(),
        filters: s.filters.clone(),
        columns: s.columns.clone(),
        version: s.version,
        created_at: s.created_at.clone(),
        updated_at: s.updated_at.clone(),
    }
}

fn apply(input: Input, s: &mut SavedSearch, creating: bool) -> Result<(), ApiError> {
    let mut e = Fields::new();
    match input.name {
        Some(n) if n.trim().is_empty() || n.chars().count() > 200 => {
            e.push("name", "must be 1 to 200 characters")
        }
        Some(n) => s.name = n.trim().to_owned(),
        None if creating => e.push("name", "is required"),
        None => {}
    }
    if let Some(f) = input.filters {
        f.validate(&mut e);
        s.filters = f;
    }
    if let Some(c) = input.columns {
        validate_columns(&c, &mut e);
        s.columns = c;
    }
    if serde_json::to_vec(&*s).map_or(0, |v| v.len()) > MAX_SEARCH_BYTES {
        e.push("filters", "make the saved search larger than 32 KiB");
    }
    e.finish()
}

/// Saved searches are managed by the organisation's users holding `manage_connectors`.
async fn manager(p: &Principal, ctx: &Ctx) -> Result<(), ApiError> {
    organisation::user(p, ctx, Some(Permission::ManageConnectors)).await?;
    Ok(())
}

async fn find(p: &Principal, ctx: &Ctx, id: &str) -> Result<SavedSearch, ApiError> {
    ctx.store
        .saved_search(&p.workspace_id, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Writes `s`, which was read at `expected` (or is new).
async fn save(ctx: &Ctx, s: &SavedSearch, expected: Option<u64>) -> Result<(), ApiError> {
    let condition = expected.map_or_else(Expr::absent, Expr::version);
    if ctx.store.put_if(repo::search_item(s)?, condition).await? {
        Ok(())
    } else {
        Err(preconditions::lost_race())
    }
}

/// `GET /v1/saved-searches`.
pub async fn list(p: &Principal, ctx: &Ctx) -> RouteResult {
    manager(p, ctx).await?;
    let items = repo::saved_searches(&ctx.store, &p.workspace_id)
        .await?
        .iter()
        .map(view)
        .collect();
    pipeline::json(StatusCode::OK, &SavedSearchList { items })
}

/// `POST /v1/saved-searches`.
pub async fn create(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    manager(p, ctx).await?;
    let input: Input = body::json(req)?;
    let at = rfc3339(now());
    let mut s = SavedSearch {
        workspace_id: p.workspace_id.clone(),
        saved_search_id: new_id("srch"),
        name: String::new(),
        filters: Filters::default(),
        columns: Vec::new(),
        version: 1,
        created_at: at.clone(),
        updated_at: at,
    };
    apply(input, &mut s, true)?;
    save(ctx, &s, None).await?;
    let mut r = crate::versioned(StatusCode::CREATED, &view(&s), s.version)?;
    let location = format!("/v1/saved-searches/{}", s.saved_search_id);
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(ApiError::internal)?,
    );
    Ok(r)
}

/// `GET /v1/saved-searches/{id}`.
pub async fn get(p: &Principal, ctx: &Ctx, id: &str) -> RouteResult {
    manager(p, ctx).await?;
    let s = find(p, ctx, id).await?;
    crate::versioned(StatusCode::OK, &view(&s), s.version)
}

/// `PATCH /v1/saved-searches/{id}`: `If-Match` required.
pub async fn update(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    manager(p, ctx).await?;
    let mut s = find(p, ctx, id).await?;
    preconditions::require(req, s.version)?;
    let input: Input = body::json(req)?;
    apply(input, &mut s, false)?;
    let expected = s.version;
    s.version += 1;
    s.updated_at = rfc3339(now());
    save(ctx, &s, Some(expected)).await?;
    crate::versioned(StatusCode::OK, &view(&s), s.version)
}

/// `DELETE /v1/saved-searches/{id}`: refused while a connector uses it.
pub async fn delete(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    manager(p, ctx).await?;
    let s = find(p, ctx, id).await?;
    preconditions::optional(req, s.version)?;
    let users: Vec<Connector> = ctx
        .store
        .query_prefix(&p.workspace_id, "CONNECTOR#")
        .await?;
    if let Some(c) = users
        .iter()
        .find(|c| c.saved_search_id.as_deref() == Some(id))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "Connector {} uses this saved search; point it elsewhere first.",
                c.connector_id
            ),
        ));
    }
    // Only the version checked above: a change meanwhile is a 412, not lost.
    let key = Key::saved_search(&p.workspace_id, id);
    if !ctx.store.delete_if(&key, Expr::version(s.version)).await? {
        return Err(preconditions::lost_race());
    }
    lambda_http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(lambda_http::Body::Empty)
        .map_err(ApiError::internal)
}
