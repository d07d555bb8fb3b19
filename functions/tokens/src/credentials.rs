//! Personal access tokens, users, and connector credentials over the API.
//!
//! Rules (PlanRadar, AFAS):
//! - a user with `api_access` manages their own personal tokens with a personal token; a new
//!   token's scopes stay within the scopes of the token that creates it;
//! - `manage_users` lists users, changes their `api_access` and `rights`, lists and revokes
//!   their tokens; only the owner revokes the owner's tokens or changes the owner;
//! - `manage_connectors` issues (optionally replacing one in the same transaction), lists
//!   and revokes a connector's keys and tokens;
//! - a secret is in the create response only (`Cache-Control: no-store`), never again.

use http::{StatusCode, header};
use koppel_shared::audit::Actor;
use koppel_shared::body::{self, Fields};
use koppel_shared::credential::CredentialKind;
use koppel_shared::issue::{self, NewCredential};
use koppel_shared::model::{Connector, Credential, Level, Scope, Scopes, User};
use koppel_shared::organisation::{self, NewUser, Permission};
use koppel_shared::paging::{self, Pager};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::store::{Key, PageQuery, StoreError};
use koppel_shared::time_util::{now, parse_rfc3339, rfc3339};
use koppel_shared::{ApiError, Ctx, Principal};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::views::{CredentialView, IssuedCredential, Items, Page, UserView};

/// The audit trail keeps the page sizes it had before lists shared one pager.
const AUDIT_LIMITS: paging::Limits = paging::Limits {
    default: 50,
    max: 500,
};

/// A create response that shows a secret: never cached, never kept for idempotent replay.
pub fn created_with_secret(cred: &Credential, secret: &str, location: String) -> RouteResult {
    let v = IssuedCredential {
        credential: CredentialView::of(cred),
        secret: secret.to_owned(),
    };
    let mut r = pipeline::json(StatusCode::CREATED, &v)?;
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    h.insert(
        header::LOCATION,
        location.parse().map_err(ApiError::internal)?,
    );
    Ok(r)
}

/// [`created_with_secret`] for a credential of connector `connector_id`, found under it.
pub fn created_for_connector(cred: &Credential, secret: &str, connector_id: &str) -> RouteResult {
    created_with_secret(
        cred,
        secret,
        format!(
            "/v1/connectors/{connector_id}/credentials/{}",
            cred.credential_id
        ),
    )
}

pub fn actor(p: &Principal) -> Actor {
    Actor {
        user_id: p.user_id.clone(),
        credential_id: Some(p.credential_id.clone()),
    }
}

/// The calling user, who must be acting with their personal token (not through a
/// connector): managing people and credentials is the organisation's own business.
pub async fn calling_user(p: &Principal, ctx: &Ctx) -> Result<User, ApiError> {
    organisation::user(p, ctx, None).await
}

/// Body of a new token or key. `kind` and `replaces` are for connector credentials only
/// (a personal token with either is a 422).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "NewToken")]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// What it is for, 1 to 100 characters (trimmed).
    #[schemars(length(min = 1, max = 100))]
    name: String,
    /// Narrows it to these scopes, each within the creating token's (and the connector's);
    /// absent: all of those.
    #[serde(default)]
    #[schemars(with = "Option<Vec<Scope>>")]
    scopes: Option<Vec<String>>,
    /// RFC 3339, in the future and not after the creating token's own expiry; absent: that
    /// expiry (none: never).
    #[serde(default)]
    #[schemars(extend("format" = "date-time"))]
    expires_at: Option<String>,
    /// Requests per minute, at most the creating token's own limit.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100_000))]
    rate_limit: Option<u32>,
    /// Connector credentials only: `token` (default, `Authorization: Bearer`) or `api_key`
    /// (`API-Interface-Id` + `API-Key`).
    #[serde(default)]
    #[schemars(extend("enum" = ["token", "api_key", null]))]
    kind: Option<String>,
    /// Connector credentials only: the id of a live credential of this connector to revoke
    /// in the same transaction (rotation).
    #[serde(default)]
    replaces: Option<String>,
}

struct Checked {
    scopes: Option<Scopes>,
    expires_at: Option<jiff::Timestamp>,
}

/// Validates the common fields; `within` bounds the scopes a new credential may carry.
fn check_new(b: &NewTokenBody, within: &Scopes, errors: &mut Fields) -> Checked {
    let name = b.name.trim();
    errors.check(!name.is_empty(), "name", "must not be empty");
    errors.check(
        name.chars().count() <= 100,
        "name",
        "must be at most 100 characters",
    );
    let mut scopes = Scopes::new();
    for (i, s) in b.scopes.iter().flatten().enumerate() {
        match s.parse::<Scope>() {
            Ok(sc) if within.contains(&sc) => {
                scopes.insert(sc);
            }
            Ok(_) => errors.push(
                format!("scopes[{i}]"),
                format!("`{s}` is beyond what may be granted here"),
            ),
            Err(e) => errors.push(format!("scopes[{i}]"), e),
        }
    }
    let expires_at = b.expires_at.as_deref().and_then(|s| {
        let t = parse_rfc3339(s);
        match t {
            None => errors.push("expires_at", "must be an RFC 3339 date-time"),
            Some(t) if t <= now() => errors.push("expires_at", "must be in the future"),
            Some(_) => {}
        }
        t
    });
    if let Some(r) = b.rate_limit {
        errors.check(
            (1..=100_000).contains(&r),
            "rate_limit",
            "must be 1 to 100000 per minute",
        );
    }
    Checked {
        scopes: b.scopes.as_ref().map(|_| scopes),
        expires_at,
    }
}

// ---- personal tokens and users -------------------------------------------------------------

/// `POST /v1/tokens`: the caller's own new personal token.
pub async fn create_own(p: &Principal, req: &lambda_http::Request, ctx: &Ctx) -> RouteResult {
    let user = calling_user(p, ctx).await?;
    let b: NewTokenBody = body::json(req)?;
    let mut errors = Fields::new();
    let c = check_new(&b, &p.scopes, &mut errors);
    errors.check(
        b.kind.is_none(),
        "kind",
        "is for connector credentials only",
    );
    errors.check(
        b.replaces.is_none(),
        "replaces",
        "is for connector credentials only",
    );
    let expires_at = issue::within_caller(p, ctx, c.expires_at, b.rate_limit, &mut errors).await?;
    errors.finish()?;
    issue::within_token_cap(ctx, &p.workspace_id, &user.user_id, &user.user_id).await?;
    let (cred, secret) = issue::issue(
        ctx,
        NewCredential {
            workspace_id: p.workspace_id.clone(),
            kind: CredentialKind::PersonalAccessToken,
            name: b.name.trim().to_owned(),
            user_id: Some(user.user_id.clone()),
            connector_id: None,
            acting_user_id: None,
            // Never beyond the creating token's own scopes.
            scopes: Some(c.scopes.unwrap_or_else(|| p.scopes.clone())),
            rate_limit: b.rate_limit,
            expires_at,
            created_by: user.user_id.clone(),
        },
        &actor(p),
        None,
    )
    .await?;
    created_with_secret(&cred, &secret, format!("/v1/tokens/{}", cred.credential_id))
}

/// The user whose tokens `path_user` names, if the caller may see them.
async fn token_owner(p: &Principal, ctx: &Ctx, path_user: &str) -> Result<(User, User), ApiError> {
    let me = calling_user(p, ctx).await?;
    if path_user == me.user_id {
        return Ok((me.clone(), me));
    }
    organisation::holds(&me, Permission::ManageUsers)?;
    let other = ctx
        .store
        .user(&p.workspace_id, path_user)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok((me, other))
}

/// `GET /v1/tokens`, `GET /v1/users/{id}/tokens`: personal tokens, without secrets.
pub async fn list_personal(p: &Principal, ctx: &Ctx, user_id: &str) -> RouteResult {
    let (_, owner) = token_owner(p, ctx, user_id).await?;
    let items = ctx
        .store
        .credentials_of(&p.workspace_id, &owner.user_id)
        .await?
        .iter()
        .filter(|c| c.kind == CredentialKind::PersonalAccessToken)
        .map(CredentialView::of)
        .collect();
    pipeline::json(StatusCode::OK, &Items { items })
}

/// `DELETE /v1/tokens/{id}`, `DELETE /v1/users/{id}/tokens/{tokenId}`.
pub async fn revoke_personal(
    p: &Principal,
    ctx: &Ctx,
    user_id: &str,
    token_id: &str,
) -> RouteResult {
    let (me, owner) = token_owner(p, ctx, user_id).await?;
    let cred = ctx
        .store
        .credential(token_id)
        .await?
        .filter(|c| {
            c.workspace_id == p.workspace_id
                && c.kind == CredentialKind::PersonalAccessToken
                && c.user_id.as_deref() == Some(owner.user_id.as_str())
        })
        .ok_or_else(ApiError::not_found)?;
    // Only the owner revokes the owner's tokens (PlanRadar).
    if owner.owner && !me.owner {
        return Err(ApiError::forbidden(
            "Only the owner can revoke the owner's tokens.",
        ));
    }
    issue::revoke(ctx, &cred, &actor(p)).await?;
    Ok(pipeline::no_content())
}

/// `GET /v1/users?limit=&cursor=`: a page of the workspace's users, in id order.
pub async fn list_users(p: &Principal, req: &lambda_http::Request, ctx: &Ctx) -> RouteResult {
    let me = calling_user(p, ctx).await?;
    organisation::holds(&me, Permission::ManageUsers)?;
    let ws = &p.workspace_id;
    let pager = Pager::from_request(req, paging::STANDARD, paging::Scope::new("users", ws))?;
    let q = PageQuery::workspace(ws, "USER#", pager.after.as_deref(), pager.limit);
    let page = ctx.store.page::<User>(&q, |_| true).await?;
    let body = Page {
        items: page.items.iter().map(UserView::of).collect(),
        next_cursor: page.next.as_deref().map(|n| pager.cursor(n)),
    };
    pipeline::json(StatusCode::OK, &body)
}

/// `POST /v1/users`: a new employee (see [`NewUser::user`] for what one may give).
pub async fn create_user(p: &Principal, req: &lambda_http::Request, ctx: &Ctx) -> RouteResult {
    let me = calling_user(p, ctx).await?;
    organisation::holds(&me, Permission::ManageUsers)?;
    let new: NewUser = body::json(req)?;
    let mut errors = Fields::new();
    let user = new.user(&p.workspace_id, &me, "", &mut errors);
    errors.finish()?;
    match ctx.store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(organisation::email_taken(&user.email)),
        Err(e) => return Err(e.into()),
    }
    pipeline::created(
        &format!("/v1/users/{}", user.user_id),
        &UserView::of(&user),
        None,
    )
}

/// `POST /v1/users/{id}/deactivate`: nothing acts for them from the next request on (the
/// authorizer refuses a deactivated user), and their live personal tokens and the tokens
/// apps got for them through OTP are revoked, each audited. Refused (409, naming them)
/// while connectors act for them: those are the organisation's integrations, moved to
/// another employee first (`PATCH /v1/connectors/{id}`), never stopped as a side effect.
pub async fn deactivate_user(p: &Principal, ctx: &Ctx, user_id: &str) -> RouteResult {
    let me = calling_user(p, ctx).await?;
    organisation::holds(&me, Permission::ManageUsers)?;
    if user_id == me.user_id {
        return Err(ApiError::forbidden("You cannot deactivate yourself."));
    }
    let user = deactivate(ctx, &p.workspace_id, user_id, &actor(p)).await?;
    pipeline::json(StatusCode::OK, &UserView::of(&user))
}

/// Deactivates `user_id` of `ws` as [`deactivate_user`] says, for `by` (the API's caller,
/// or `koppel-admin`): the user as they are now.
pub async fn deactivate(ctx: &Ctx, ws: &str, user_id: &str, by: &Actor) -> Result<User, ApiError> {
    // Read before the connectors are listed: a connector made to act for them after
    // this moves their `acting_epoch`, and the deactivation below fails.
    let raw: Option<serde_json::Value> = ctx.store.get(&Key::user(ws, user_id)).await?;
    let epoch = raw.as_ref().and_then(|u| u["acting_epoch"].as_u64());
    let user: User = match raw {
        Some(v) => serde_json::from_value(v).map_err(ApiError::internal)?,
        None => return Err(ApiError::not_found()),
    };
    if user.owner {
        return Err(ApiError::forbidden("The owner cannot be deactivated."));
    }
    let connectors: Vec<Connector> = ctx.store.query_prefix(ws, "CONNECTOR#").await?;
    let acting: Vec<&str> = connectors
        .iter()
        .filter(|c| c.acting_user_id == user.user_id)
        .map(|c| c.connector_id.as_str())
        .collect();
    if !acting.is_empty() {
        return Err(ApiError::conflict(format!(
            "Connectors act for this user: {}. Make them act for someone else first (PATCH /v1/connectors/{{id}}, `acting_user_id`).",
            acting.join(", ")
        )));
    }
    let user = ctx
        .store
        .deactivate_user(ws, &user.user_id, &rfc3339(now()), epoch)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict(
                "A connector was made to act for this user meanwhile: look again.",
            ),
            other => other.into(),
        })?;
    // Their tokens: personal ones, and per connector those issued to them through OTP.
    use futures_util::{StreamExt, TryStreamExt};
    let mut held = ctx.store.credentials_of(ws, &user.user_id).await?;
    let ids: Vec<String> = connectors.into_iter().map(|c| c.connector_id).collect();
    let per_connector: Vec<Vec<Credential>> = futures_util::stream::iter(ids)
        .map(|id| async move { ctx.store.credentials_of(ws, &id).await })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    held.extend(
        per_connector
            .into_iter()
            .flatten()
            .filter(|c| c.user_id.as_deref() == Some(&user.user_id)),
    );
    let at = now();
    for cred in held.iter().filter(|c| issue::is_live(c, at)) {
        issue::revoke(ctx, cred, by).await?;
    }
    Ok(user)
}

/// What `PATCH /v1/users/{id}` changes; absent fields stay as they are.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// May hold personal access tokens.
    #[serde(default)]
    api_access: Option<bool>,
    /// At most the caller's own; not one's own unless the owner.
    #[serde(default)]
    rights: Option<Level>,
}

/// `PATCH /v1/users/{id}`: `api_access` and `rights`.
pub async fn update_user(
    p: &Principal,
    req: &lambda_http::Request,
    ctx: &Ctx,
    user_id: &str,
) -> RouteResult {
    let me = calling_user(p, ctx).await?;
    organisation::holds(&me, Permission::ManageUsers)?;
    let patch: UserPatch = body::json(req)?;
    let user = ctx
        .store
        .user(&p.workspace_id, user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if user.owner && !me.owner {
        return Err(ApiError::forbidden("Only the owner can change the owner."));
    }
    if let Some(r) = patch.rights {
        // `manage_users` is not a way to raise oneself or others above oneself.
        if user.user_id == me.user_id && !me.owner {
            return Err(ApiError::forbidden("You cannot change your own rights."));
        }
        if r > me.rights {
            return Err(ApiError::forbidden(format!(
                "You cannot grant rights above your own (`{}`).",
                me.rights
            )));
        }
    }
    let user = ctx
        .store
        .update_user_access(
            &p.workspace_id,
            user_id,
            user.owner,
            patch.api_access,
            patch.rights,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "The user changed meanwhile; read it again.",
            ),
            other => other.into(),
        })?;
    pipeline::json(StatusCode::OK, &UserView::of(&user))
}

// ---- connector credentials -----------------------------------------------------------------

async fn managed_connector(
    p: &Principal,
    ctx: &Ctx,
    connector_id: &str,
) -> Result<koppel_shared::model::Connector, ApiError> {
    let me = calling_user(p, ctx).await?;
    organisation::holds(&me, Permission::ManageConnectors)?;
    let con = ctx
        .store
        .connector(&p.workspace_id, connector_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    koppel_shared::connector_rules::may_administer(&me, &con)?;
    Ok(con)
}

/// `POST /v1/connectors/{id}/credentials`: a token (default) or an API key, shown once.
pub async fn issue_for_connector(
    p: &Principal,
    req: &lambda_http::Request,
    ctx: &Ctx,
    connector_id: &str,
) -> RouteResult {
    let con = managed_connector(p, ctx, connector_id).await?;
    let b: NewTokenBody = body::json(req)?;
    let mut errors = Fields::new();
    // Within the connector's scopes and the creating token's: a narrow token cannot mint a
    // broader key through a connector.
    let grantable: Scopes = con.scopes.intersection(&p.scopes).copied().collect();
    let c = check_new(&b, &grantable, &mut errors);
    let expires_at = issue::within_caller(p, ctx, c.expires_at, b.rate_limit, &mut errors).await?;
    let kind = CredentialKind::of_connector(b.kind.as_deref()).unwrap_or_else(|| {
        errors.push("kind", "must be `token` or `api_key`");
        CredentialKind::ConnectorToken
    });
    let replaces = match &b.replaces {
        None => None,
        Some(id) => {
            let old = ctx.store.credential(id).await?.filter(|old| {
                old.connector_id.as_deref() == Some(connector_id)
                    && old.workspace_id == p.workspace_id
                    && old.revoked_at.is_none()
            });
            if old.is_none() {
                errors.push("replaces", "is not a live credential of this connector");
            }
            old
        }
    };
    errors.finish()?;
    let (cred, secret) = issue::issue(
        ctx,
        NewCredential {
            workspace_id: p.workspace_id.clone(),
            kind,
            name: b.name.trim().to_owned(),
            user_id: None,
            connector_id: Some(con.connector_id.clone()),
            acting_user_id: Some(con.acting_user_id.clone()),
            // Unnarrowed, it follows the connector's scopes if the caller had them all.
            scopes: c
                .scopes
                .or_else(|| (grantable != con.scopes).then(|| grantable.clone())),
            rate_limit: b.rate_limit,
            expires_at,
            created_by: p.user_id.clone(),
        },
        &actor(p),
        replaces.as_ref(),
    )
    .await
    .map_err(|e| match e {
        // The credential to replace was revoked meanwhile: nothing was issued.
        StoreError::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "The credential to replace was revoked meanwhile; nothing was issued.",
        ),
        other => other.into(),
    })?;
    created_for_connector(&cred, &secret, connector_id)
}

/// `GET /v1/connectors/{id}/credentials`: without secrets.
pub async fn list_for_connector(p: &Principal, ctx: &Ctx, connector_id: &str) -> RouteResult {
    let con = managed_connector(p, ctx, connector_id).await?;
    let items = ctx
        .store
        .credentials_of(&p.workspace_id, &con.connector_id)
        .await?
        .iter()
        .map(CredentialView::of)
        .collect();
    pipeline::json(StatusCode::OK, &Items { items })
}

/// `DELETE /v1/connectors/{id}/credentials/{credentialId}`.
pub async fn revoke_for_connector(
    p: &Principal,
    ctx: &Ctx,
    connector_id: &str,
    id: &str,
) -> RouteResult {
    managed_connector(p, ctx, connector_id).await?;
    let cred = ctx
        .store
        .credential(id)
        .await?
        .filter(|c| {
            c.workspace_id == p.workspace_id && c.connector_id.as_deref() == Some(connector_id)
        })
        .ok_or_else(ApiError::not_found)?;
    issue::revoke(ctx, &cred, &actor(p)).await?;
    Ok(pipeline::no_content())
}

/// `GET /v1/audit?limit=&cursor=`: the credential audit trail, newest first.
pub async fn audit(p: &Principal, req: &lambda_http::Request, ctx: &Ctx) -> RouteResult {
    let me = calling_user(p, ctx).await?;
    organisation::holds(&me, Permission::ManageUsers)?;
    let ws = &p.workspace_id;
    let pager = Pager::from_request(req, AUDIT_LIMITS, paging::Scope::new("audit", ws))?;
    let page =
        koppel_shared::audit::list(&ctx.store, ws, pager.limit, pager.after.as_deref()).await?;
    let body = Page {
        items: page.items,
        next_cursor: page.next.as_deref().map(|n| pager.cursor(n)),
    };
    pipeline::json(StatusCode::OK, &body)
}
