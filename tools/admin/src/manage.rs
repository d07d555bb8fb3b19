//! Listing, reading, changing and deleting what the operator administers: workspaces and
//! users through the store (the API has no route for workspaces, and none that acts as
//! the operator on users), connectors and saved searches through the API's own handlers
//! as the workspace's owner ([`Caller::owner`]), so every field rule, precondition and
//! refusal is the API's.

use std::path::Path;

use koppel_shared::Ctx;
use koppel_shared::audit::Actor;
use koppel_shared::model::{Level, Scope, User, Workspace};
use koppel_shared::store::{Expr, Key};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokens::views::UserView;

use crate::commands::{Done, store_err};
use crate::through_api::{Call, Caller, answered, describe};
use koppel_shared::lambda_http;
use koppel_shared::pipeline::RouteResult;

type Res<T> = Result<Done<T>, String>;

// ---- workspaces ------------------------------------------------------------------------------

#[derive(Serialize)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl WorkspaceView {
    fn of(w: &Workspace) -> Self {
        Self {
            id: w.workspace_id.clone(),
            name: w.name.clone(),
            created_at: w.created_at.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

fn lines<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// Every item of the table `filter` matches (a scan: the operator's, never the API's);
/// only their keys with `keys_only`.
async fn scan_all(
    ctx: &Ctx,
    filter: &Expr,
    keys_only: bool,
) -> Result<Vec<koppel_shared::store::Item>, String> {
    let (mut out, mut start) = (Vec::new(), None);
    loop {
        let page = match keys_only {
            true => ctx.store.scan_keys(filter, start).await,
            false => ctx.store.scan(filter, start).await,
        }
        .map_err(store_err)?;
        out.extend(page.items);
        match page.next {
            Some(k) => start = Some(k),
            None => return Ok(out),
        }
    }
}

pub async fn list_workspaces(ctx: &Ctx) -> Res<Items<WorkspaceView>> {
    let found = scan_all(ctx, &Expr::new("sk = :w").s(":w", "WORKSPACE"), false).await?;
    let mut items: Vec<WorkspaceView> = found
        .into_iter()
        .map(|i| koppel_shared::store::from_item::<Workspace>(i).map(|w| WorkspaceView::of(&w)))
        .collect::<Result<_, _>>()
        .map_err(store_err)?;
    items.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Done {
        text: lines(&items, |w| format!("{} {}", w.id, w.name)),
        view: Items { items },
    })
}

async fn workspace(ctx: &Ctx, ws: &str) -> Result<Workspace, String> {
    ctx.store
        .workspace(ws)
        .await
        .map_err(store_err)?
        .ok_or(format!("no workspace {ws}"))
}

pub async fn get_workspace(ctx: &Ctx, ws: &str) -> Res<WorkspaceView> {
    let w = workspace(ctx, ws).await?;
    Ok(Done {
        text: format!("{} {} (since {})", w.workspace_id, w.name, w.created_at),
        view: WorkspaceView::of(&w),
    })
}

pub async fn rename_workspace(ctx: &Ctx, ws: &str, name: &str) -> Res<WorkspaceView> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err("--name must be 1 to 200 characters".into());
    }
    let mut w = workspace(ctx, ws).await?;
    w.name = name.to_owned();
    let item = koppel_shared::store::item(&Key::workspace(ws), &w).map_err(store_err)?;
    if !ctx
        .store
        .put_if(item, Expr::new("attribute_exists(pk)"))
        .await
        .map_err(store_err)?
    {
        return Err(format!("no workspace {ws}"));
    }
    Ok(Done {
        text: format!("workspace {ws} is now {name}"),
        view: WorkspaceView::of(&w),
    })
}

#[derive(Serialize)]
pub struct Deleted {
    pub id: String,
    pub items_deleted: usize,
}

/// Deletes a workspace and everything of it: every item in its partitions (users,
/// connectors, subscriptions, cases and their history, requests, endpoints, …) and every
/// item elsewhere that names it (credentials, JWT issuer claims, deliveries). A table scan:
/// the operator's rare act. Credentials go first (nothing of it works from then on), the
/// workspace item last, so a run cut short can be run again. Rate-limit, idempotency and
/// JWT-id records expire by themselves.
pub async fn delete_workspace(ctx: &Ctx, ws: &str) -> Res<Deleted> {
    let mine = Expr::new("pk = :p OR begins_with(pk, :pp) OR workspace_id = :ws")
        .s(":p", format!("WS#{ws}"))
        .s(":pp", format!("WS#{ws}#"))
        .s(":ws", ws);
    let mut keys = scan_all(ctx, &mine, true).await?;
    if keys.is_empty() {
        return Err(format!("no workspace {ws}"));
    }
    let text = |k: &koppel_shared::store::Item, a: &str| {
        k.get(a)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    // Credentials first, the workspace item last.
    keys.sort_by_key(|k| {
        match (
            text(k, "pk").starts_with("CRED#"),
            text(k, "sk") == "WORKSPACE",
        ) {
            (true, _) => 0,
            (_, false) => 1,
            (_, true) => 2,
        }
    });
    let n = keys.len();
    ctx.store.batch_delete(keys).await.map_err(store_err)?;
    Ok(Done {
        text: format!("workspace {ws} deleted ({n} items)"),
        view: Deleted {
            id: ws.to_owned(),
            items_deleted: n,
        },
    })
}

// ---- users -----------------------------------------------------------------------------------

pub async fn list_users(ctx: &Ctx, ws: &str) -> Res<Items<UserView>> {
    workspace(ctx, ws).await?;
    let users: Vec<User> = ctx
        .store
        .query_prefix(ws, "USER#")
        .await
        .map_err(store_err)?;
    let items: Vec<UserView> = users.iter().map(UserView::of).collect();
    Ok(Done {
        text: lines(&items, |u| {
            let off = if u.deactivated_at.is_some() {
                " deactivated"
            } else {
                ""
            };
            format!("{} {} <{}> {}{off}", u.id, u.name, u.email, u.rights)
        }),
        view: Items { items },
    })
}

pub async fn get_user(ctx: &Ctx, ws: &str, user: &str) -> Res<UserView> {
    let u = ctx
        .store
        .user(ws, user)
        .await
        .map_err(store_err)?
        .ok_or(format!("no user {user} in {ws}"))?;
    Ok(Done {
        text: format!("{} {} <{}> {}", u.user_id, u.name, u.email, u.rights),
        view: UserView::of(&u),
    })
}

/// As `POST /v1/users/{id}/deactivate`, audited as `koppel-admin`.
pub async fn deactivate_user(ctx: &Ctx, ws: &str, user: &str) -> Res<UserView> {
    let u = tokens::credentials::deactivate(ctx, ws, user, &Actor::admin_cli())
        .await
        .map_err(|e| describe(&e))?;
    Ok(Done {
        text: format!("user {user} deactivated; their tokens are revoked"),
        view: UserView::of(&u),
    })
}

// ---- connectors and saved searches, through the API ------------------------------------------

fn connector_params(id: &str) -> Value {
    json!({ "id": id })
}

/// Every page of a list route (`{items, next_cursor}`).
async fn all_pages<'a, F, Fut>(
    api: &Caller<'a>,
    handler: F,
    path: &str,
) -> Result<Vec<Value>, String>
where
    F: Fn(lambda_http::Request, &'a Ctx) -> Fut + Copy,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>>,
{
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = json!({ "limit": "200" });
        if let Some(c) = &cursor {
            query["cursor"] = c.clone().into();
        }
        let call = Call {
            method: "GET",
            resource: path,
            path,
            query: Some(query),
            ..Call::default()
        };
        let (_, page) = api.send(handler, call).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(items),
        }
    }
}

fn connector_line(c: &Value) -> String {
    format!(
        "{} {} ({}, acting for {}{})",
        c["id"].as_str().unwrap_or_default(),
        c["description"].as_str().unwrap_or_default(),
        c["access_level"].as_str().unwrap_or_default(),
        c["acting_user_id"].as_str().unwrap_or_default(),
        if c["enabled"] == false {
            ", disabled"
        } else {
            ""
        }
    )
}

pub async fn list_connectors(ctx: &Ctx, ws: &str) -> Res<Items<Value>> {
    let api = Caller::owner(ctx, ws).await?;
    let items = all_pages(&api, connectors::handler, "/v1/connectors").await?;
    Ok(Done {
        text: lines(&items, connector_line),
        view: Items { items },
    })
}

/// One connector as the API shows it, with its version.
async fn read_connector(api: &Caller<'_>, id: &str) -> Result<(Option<u64>, Value), String> {
    let path = format!("/v1/connectors/{id}");
    let call = Call {
        method: "GET",
        resource: "/v1/connectors/{id}",
        path: &path,
        params: connector_params(id),
        ..Call::default()
    };
    api.send(connectors::handler, call).await
}

pub async fn get_connector(ctx: &Ctx, ws: &str, id: &str) -> Res<Value> {
    let api = Caller::owner(ctx, ws).await?;
    let (_, c) = read_connector(&api, id).await?;
    Ok(Done {
        text: connector_line(&c),
        view: c,
    })
}

/// What `connector update` changes; `None` leaves a field as it is.
#[derive(Default)]
pub struct ConnectorChange {
    pub description: Option<String>,
    pub acting_user: Option<String>,
    pub access_level: Option<Level>,
    pub scopes: Option<Vec<Scope>>,
    pub allow_ips: Option<Vec<String>>,
    /// `Some(None)`: the deployment default.
    pub rate_limit: Option<Option<u32>>,
    /// `Some(None)`: no saved search (the connector sees no cases).
    pub saved_search: Option<Option<String>>,
}

impl ConnectorChange {
    /// The `PATCH /v1/connectors/{id}` body.
    fn body(&self) -> Map<String, Value> {
        let mut b = Map::new();
        let mut put = |k: &str, v: Value| {
            b.insert(k.to_owned(), v);
        };
        if let Some(d) = &self.description {
            put("description", d.clone().into());
        }
        if let Some(u) = &self.acting_user {
            put("acting_user_id", u.clone().into());
        }
        if let Some(l) = self.access_level {
            put("access_level", l.as_str().into());
        }
        if let Some(s) = &self.scopes {
            put(
                "scopes",
                s.iter().map(|s| s.as_str()).collect::<Vec<_>>().into(),
            );
        }
        if let Some(ips) = &self.allow_ips {
            put("ip_allow_list", ips.clone().into());
        }
        if let Some(r) = self.rate_limit {
            put("rate_limit", r.into());
        }
        if let Some(s) = &self.saved_search {
            put("saved_search_id", s.clone().into());
        }
        b
    }
}

/// `PATCH` over the version just read: a change meanwhile is refused, not lost.
pub async fn update_connector(
    ctx: &Ctx,
    ws: &str,
    id: &str,
    change: ConnectorChange,
) -> Res<Value> {
    let body = change.body();
    if body.is_empty() {
        return Err("nothing to change: give at least one option".into());
    }
    let api = Caller::owner(ctx, ws).await?;
    let (version, _) = read_connector(&api, id).await?;
    let path = format!("/v1/connectors/{id}");
    let call = Call {
        method: "PATCH",
        resource: "/v1/connectors/{id}",
        path: &path,
        params: connector_params(id),
        if_match: version,
        body: Some(body.into()),
        ..Call::default()
    };
    let (_, c) = api.send(connectors::handler, call).await?;
    Ok(Done {
        text: format!("changed: {}", connector_line(&c)),
        view: c,
    })
}

pub async fn delete_connector(ctx: &Ctx, ws: &str, id: &str) -> Res<Value> {
    let api = Caller::owner(ctx, ws).await?;
    let path = format!("/v1/connectors/{id}");
    let call = Call {
        method: "DELETE",
        resource: "/v1/connectors/{id}",
        path: &path,
        params: connector_params(id),
        ..Call::default()
    };
    api.send(connectors::handler, call).await?;
    Ok(Done {
        text: format!("connector {id} deleted; its credentials fail from now on"),
        view: json!({ "id": id, "deleted": true }),
    })
}

fn json_file(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))
}

/// `POST /v1/connectors/{id}/manifest` with the partner's manifest file.
pub async fn import_manifest(ctx: &Ctx, ws: &str, id: &str, file: &Path) -> Res<Value> {
    let manifest = json_file(file)?;
    let api = Caller::owner(ctx, ws).await?;
    let path = format!("/v1/connectors/{id}/manifest");
    let call = Call {
        method: "POST",
        resource: "/v1/connectors/{id}/manifest",
        path: &path,
        params: connector_params(id),
        body: Some(manifest),
        ..Call::default()
    };
    let (_, c) = api.send(connectors::handler, call).await?;
    Ok(Done {
        text: format!(
            "manifest imported: {} (scopes {})",
            connector_line(&c),
            c["scopes"]
        ),
        view: c,
    })
}

/// A saved-search handler's answer (the cases function's handler streams, so these call
/// its saved-search functions, behind the same checks, directly).
async fn searches(
    api: &Caller<'_>,
    c: Call<'_>,
    run: impl AsyncFnOnce(&koppel_shared::Principal, &lambda_http::Request) -> RouteResult,
) -> Result<(Option<u64>, Value), String> {
    let req = api.request(&c)?;
    match run(api.principal(), &req).await {
        Ok(resp) => answered(resp, &c),
        Err(e) => Err(describe(&e)),
    }
}

fn search_line(s: &Value) -> String {
    format!(
        "{} {} (columns: {})",
        s["id"].as_str().unwrap_or_default(),
        s["name"].as_str().unwrap_or_default(),
        s["columns"]
    )
}

fn search_call<'c>(method: &'c str, path: &'c str, id: Option<&str>) -> Call<'c> {
    Call {
        method,
        resource: if id.is_some() {
            "/v1/saved-searches/{id}"
        } else {
            "/v1/saved-searches"
        },
        path,
        params: id.map_or(Value::Null, |id| json!({ "id": id })),
        ..Call::default()
    }
}

pub async fn list_searches(ctx: &Ctx, ws: &str) -> Res<Items<Value>> {
    let api = Caller::owner(ctx, ws).await?;
    let c = search_call("GET", "/v1/saved-searches", None);
    let (_, list) = searches(&api, c, async |p, _| cases::searches::list(p, ctx).await).await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    Ok(Done {
        text: lines(&items, search_line),
        view: Items { items },
    })
}

pub async fn get_search(ctx: &Ctx, ws: &str, id: &str) -> Res<Value> {
    let api = Caller::owner(ctx, ws).await?;
    let path = format!("/v1/saved-searches/{id}");
    let c = search_call("GET", &path, Some(id));
    let (_, s) = searches(&api, c, async |p, _| cases::searches::get(p, ctx, id).await).await?;
    Ok(Done {
        text: search_line(&s),
        view: s,
    })
}

/// `POST /v1/saved-searches` with the body in `file` (`{name, filters, columns}`).
pub async fn create_search(ctx: &Ctx, ws: &str, file: &Path) -> Res<Value> {
    let api = Caller::owner(ctx, ws).await?;
    let c = Call {
        body: Some(json_file(file)?),
        ..search_call("POST", "/v1/saved-searches", None)
    };
    let (_, s) = searches(&api, c, async |p, req| {
        cases::searches::create(p, req, ctx).await
    })
    .await?;
    Ok(Done {
        text: format!("created: {}", search_line(&s)),
        view: s,
    })
}

/// `PATCH /v1/saved-searches/{id}` with the fields in `file`, over the version just read.
pub async fn update_search(ctx: &Ctx, ws: &str, id: &str, file: &Path) -> Res<Value> {
    let api = Caller::owner(ctx, ws).await?;
    let path = format!("/v1/saved-searches/{id}");
    let (version, _) = searches(&api, search_call("GET", &path, Some(id)), async |p, _| {
        cases::searches::get(p, ctx, id).await
    })
    .await?;
    let c = Call {
        body: Some(json_file(file)?),
        if_match: version,
        ..search_call("PATCH", &path, Some(id))
    };
    let (_, s) = searches(&api, c, async |p, req| {
        cases::searches::update(p, req, ctx, id).await
    })
    .await?;
    Ok(Done {
        text: format!("changed: {}", search_line(&s)),
        view: s,
    })
}

/// Refused while a connector uses it, as the API refuses.
pub async fn delete_search(ctx: &Ctx, ws: &str, id: &str) -> Res<Value> {
    let api = Caller::owner(ctx, ws).await?;
    let path = format!("/v1/saved-searches/{id}");
    searches(
        &api,
        search_call("DELETE", &path, Some(id)),
        async |p, req| cases::searches::delete(p, req, ctx, id).await,
    )
    .await?;
    Ok(Done {
        text: format!("saved search {id} deleted"),
        view: json!({ "id": id, "deleted": true }),
    })
}
