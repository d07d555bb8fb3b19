//! The `tokens` function: who am I (`GET /v1/me`); personal access tokens; users; other
//! users' tokens; connector keys and tokens; OTP issuance; the credential audit trail.

pub mod credentials;
pub mod otp;

use http::{Method, StatusCode};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, Response};
use serde_json::json;

pub async fn handler(req: Request, ctx: &Ctx) -> Response<Body> {
    pipeline::run(req, ctx, |p, req| route(p, req, ctx)).await
}

async fn route(p: Principal, req: Request, ctx: &Ctx) -> RouteResult {
    use credentials as c;
    use lambda_http::RequestExt;
    let params = req.path_parameters();
    let param = |name: &str| params.first(name).unwrap_or_default().to_owned();
    let me_id = p.user_id.clone();
    match (req.method().clone(), pipeline::resource(&req).as_str()) {
        (Method::GET, "/v1/me") => me(&p, ctx).await,
        (Method::POST, "/v1/tokens") => c::create_own(&p, &req, ctx).await,
        (Method::GET, "/v1/tokens") => c::list_personal(&p, ctx, &me_id).await,
        (Method::DELETE, "/v1/tokens/{id}") => {
            c::revoke_personal(&p, ctx, &me_id, &param("id")).await
        }
        (Method::GET, "/v1/users") => c::list_users(&p, &req, ctx).await,
        (Method::PATCH, "/v1/users/{id}") => c::update_user(&p, &req, ctx, &param("id")).await,
        (Method::GET, "/v1/users/{id}/tokens") => c::list_personal(&p, ctx, &param("id")).await,
        (Method::DELETE, "/v1/users/{id}/tokens/{tokenId}") => {
            c::revoke_personal(&p, ctx, &param("id"), &param("tokenId")).await
        }
        (Method::POST, "/v1/connectors/{id}/credentials") => {
            c::issue_for_connector(&p, &req, ctx, &param("id")).await
        }
        (Method::GET, "/v1/connectors/{id}/credentials") => {
            c::list_for_connector(&p, ctx, &param("id")).await
        }
        (Method::DELETE, "/v1/connectors/{id}/credentials/{credentialId}") => {
            c::revoke_for_connector(&p, ctx, &param("id"), &param("credentialId")).await
        }
        (Method::POST, "/v1/otp") => otp::request(&p, &req, ctx).await,
        (Method::POST, "/v1/otp/redeem") => otp::redeem(&p, &req, ctx).await,
        (Method::GET, "/v1/audit") => c::audit(&p, &req, ctx).await,
        _ => Err(ApiError::not_found()),
    }
}

/// The caller as Koppel sees them, so a partner can debug their setup.
async fn me(p: &Principal, ctx: &Ctx) -> RouteResult {
    let ws = &p.workspace_id;
    let (workspace, user, connector) = tokio::join!(
        ctx.store.workspace(ws),
        ctx.store.user(ws, &p.user_id),
        async {
            match &p.connector_id {
                Some(c) => ctx.store.connector(ws, c).await,
                None => Ok(None),
            }
        }
    );
    let (workspace, user) = (
        workspace?.ok_or_else(ApiError::not_found)?,
        user?.ok_or_else(ApiError::not_found)?,
    );
    let connector = connector?.map(|c| {
        json!({
            "id": c.connector_id,
            "description": c.description,
            "access_level": c.access_level,
            "scopes": c.scopes,
            "acting_user_id": c.acting_user_id,
        })
    });
    pipeline::json(
        StatusCode::OK,
        &json!({
            "workspace": { "id": workspace.workspace_id, "name": workspace.name },
            "user": {
                "id": user.user_id,
                "email": user.email,
                "name": user.name,
                "rights": user.rights,
            },
            "connector": connector,
            "credential": { "id": p.credential_id, "kind": p.credential_kind.as_str() },
            "scopes": p.scopes,
            "access_level": p.access_level,
            "rate_limit": { "limit": p.rate_limit, "window_seconds": koppel_shared::rate_limit::WINDOW_SECS },
        }),
    )
}

#[cfg(test)]
mod tests {
    use koppel_shared::model::Level;

    #[test]
    fn the_sample_event_parses_with_its_principal() {
        let text = include_str!("../../../events/tokens-me.json");
        let req = lambda_http::request::from_str(text).unwrap();
        assert_eq!(koppel_shared::pipeline::resource(&req), "/v1/me");
        assert_eq!(
            koppel_shared::pipeline::request_id(&req),
            "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        );
        let p = koppel_shared::pipeline::principal(&req).unwrap();
        assert_eq!(p.workspace_id, "ws_0123456789abcdef");
        assert_eq!(p.connector_id.as_deref(), Some("con_0123456789abcdef"));
        assert_eq!(p.access_level, Level::Read);
        assert_eq!(p.rate_limit, 30);
        assert_eq!(p.scopes.len(), 2);
    }
}
