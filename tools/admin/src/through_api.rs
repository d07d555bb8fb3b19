//! Calling a function's own handler in process, as the gateway would after the authorizer
//! allowed a credential: the demo seeds its data this way, and the admin commands that
//! manage connectors and saved searches go through the API's own rules this way too.

use koppel_shared::credential::CredentialKind;
use koppel_shared::ids::new_id;
use koppel_shared::lambda_http::{self, Body, Request, Response};
use koppel_shared::model::{Level, Scope, User};
use koppel_shared::{Ctx, Principal};
use serde_json::{Value, json};

/// Calls a function's real handler as the gateway would after the authorizer allowed a
/// credential of this workspace: the demo's records are made by the code partners call,
/// with every rule it checks. The credential id is the seed's own, so no demo credential's
/// rate-limit window is spent before the tests use it.
pub struct Caller<'a> {
    ctx: &'a Ctx,
    principal: Principal,
}

impl<'a> Caller<'a> {
    pub fn new(ctx: &'a Ctx, ws: &str, user: &str, connector: Option<&str>) -> Self {
        let kind = if connector.is_some() {
            CredentialKind::ConnectorToken
        } else {
            CredentialKind::PersonalAccessToken
        };
        Caller {
            ctx,
            principal: Principal {
                workspace_id: ws.to_owned(),
                user_id: user.to_owned(),
                connector_id: connector.map(str::to_owned),
                credential_id: "koppel-admin-demo".into(),
                credential_kind: kind,
                scopes: Scope::ALL.iter().copied().collect(),
                access_level: Level::Handle,
                rate_limit: 1000,
                body_hash: None,
                held: None,
                counted: None,
            },
        }
    }

    /// The operator through the API: as the workspace's owner (every rule the API makes
    /// for them holds for the operator), with a credential id that names `koppel-admin`.
    pub async fn owner(ctx: &'a Ctx, ws: &str) -> Result<Self, String> {
        let users: Vec<User> = ctx
            .store
            .query_prefix(ws, "USER#")
            .await
            .map_err(crate::commands::store_err)?;
        let owner = users
            .iter()
            .find(|u| u.owner)
            .ok_or(format!("no workspace {ws} (or it has no owner)"))?;
        let mut c = Self::new(ctx, ws, &owner.user_id, None);
        c.principal.credential_id = "koppel-admin".into();
        Ok(c)
    }

    /// `method path` (of template resource `resource`, with `params`) with a JSON body;
    /// the answer's JSON if it is a success.
    pub async fn call<F, Fut>(
        &self,
        handler: F,
        method: &str,
        resource: &str,
        path: &str,
        params: Value,
        body: Option<Value>,
    ) -> Result<Value, String>
    where
        F: FnOnce(Request, &'a Ctx) -> Fut,
        Fut: std::future::Future<Output = Response<Body>>,
    {
        let call = Call {
            method,
            resource,
            path,
            params,
            body,
            ..Call::default()
        };
        self.send(handler, call).await.map(|(_, v)| v)
    }

    /// `call` as the API answers it: the `ETag` version and the JSON (`null` for 204), or
    /// the problem described (its `detail` and every field named).
    pub async fn send<F, Fut>(
        &self,
        handler: F,
        c: Call<'_>,
    ) -> Result<(Option<u64>, Value), String>
    where
        F: FnOnce(Request, &'a Ctx) -> Fut,
        Fut: std::future::Future<Output = Response<Body>>,
    {
        let req = self.request(&c)?;
        answered(handler(req, self.ctx).await, &c)
    }

    /// The request `c` as the gateway hands it on.
    pub fn request(&self, c: &Call<'_>) -> Result<Request, String> {
        rest_event(&self.principal, c)
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// A handler's answer to `c`: the `ETag` version and the JSON (`null` for 204), or the
/// problem described (its `detail` and every field named).
pub fn answered(resp: Response<Body>, c: &Call<'_>) -> Result<(Option<u64>, Value), String> {
    let status = resp.status();
    let version = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_matches('"').parse().ok());
    let text = String::from_utf8_lossy(koppel_shared::body::body_bytes(resp.body())).into_owned();
    let json: Value = match text.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(&text)
            .map_err(|e| format!("{} {}: {e}: {text}", c.method, c.path))?,
    };
    if !status.is_success() {
        return Err(problem(status.as_u16(), &json));
    }
    Ok((version, json))
}

/// A request to a function's handler.
#[derive(Default)]
pub struct Call<'c> {
    pub method: &'c str,
    /// The template's resource path (`/v1/connectors/{id}`).
    pub resource: &'c str,
    pub path: &'c str,
    pub params: Value,
    pub query: Option<Value>,
    pub if_match: Option<u64>,
    pub body: Option<Value>,
}

/// A handler's error as [`problem`] describes its answer.
pub fn describe(e: &koppel_shared::ApiError) -> String {
    let resp = e.to_response("koppel-admin", "");
    let body =
        serde_json::from_slice(koppel_shared::body::body_bytes(resp.body())).unwrap_or(Value::Null);
    problem(e.status.as_u16(), &body)
}

/// A problem answer as one line: `404 Not Found: …; field: message`.
fn problem(status: u16, p: &Value) -> String {
    let mut s = format!(
        "{status} {}: {}",
        p["title"].as_str().unwrap_or_default(),
        p["detail"].as_str().unwrap_or_default()
    );
    for f in p["errors"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "; {}: {}",
            f["field"].as_str().unwrap_or_default(),
            f["message"].as_str().unwrap_or_default()
        ));
    }
    s
}

/// The REST (v1) proxy event API Gateway hands a function, with the authorizer's context
/// for `p` (every value a string, as a REST API passes them).
fn rest_event(p: &Principal, c: &Call<'_>) -> Result<Request, String> {
    let Call {
        method,
        resource,
        path,
        ..
    } = *c;
    let mut headers = json!({ "Content-Type": "application/json", "Host": "koppel-admin.local" });
    if let Some(v) = c.if_match {
        headers["If-Match"] = format!("\"{v}\"").into();
    }
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    let multi_query: Option<serde_json::Map<String, Value>> = c.query.as_ref().map(|q| {
        q.as_object()
            .expect("an object")
            .iter()
            .map(|(k, v)| (k.clone(), json!([v])))
            .collect()
    });
    let mut authorizer: serde_json::Map<String, Value> = p
        .to_context()
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, Value::String(s)),
            other => (k, Value::String(other.to_string())),
        })
        .collect();
    authorizer.insert("principalId".into(), p.principal_id().into());
    let event = json!({
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": c.query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": c.params,
        "stageVariables": null,
        "requestContext": {
            "accountId": "000000000000",
            "resourceId": resource,
            "stage": "demo",
            "requestId": new_id("demo"),
            "identity": { "sourceIp": "127.0.0.1" },
            "resourcePath": resource,
            "path": path,
            "httpMethod": method,
            "apiId": "koppel-admin",
            "authorizer": authorizer,
        },
        "body": c.body.as_ref().map(|b| b.to_string()),
        "isBase64Encoded": false,
    });
    lambda_http::request::from_str(&event.to_string()).map_err(|e| format!("request event: {e}"))
}
