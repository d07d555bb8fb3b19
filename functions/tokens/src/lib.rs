//! The `tokens` function: who am I (`GET /v1/me`); personal access tokens; users; other
//! users' tokens; connector keys and tokens; OTP issuance; the credential audit trail.

pub mod credentials;
pub mod otp;

use credentials as c;
use http::{Method, StatusCode};
use koppel_shared::handler;
use koppel_shared::model::Level;
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::routes::{Doc, Route};
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// The routes of the function, as template.yaml declares them (checked by a test).
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/v1/me",
        scope: None,
        level: Level::Read,
        summary: "Who am I: workspace, user, connector, credential, scopes, level, rate limit",
        handler: handler!(|c| me(c.p, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::POST,
        path: "/v1/tokens",
        scope: None,
        level: Level::Read,
        summary: "Create a personal access token (shown once)",
        handler: handler!(|c| c::create_own(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/tokens",
        scope: None,
        level: Level::Read,
        summary: "List your personal access tokens",
        handler: handler!(|c| c::list_personal(c.p, c.ctx, &c.p.user_id)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::DELETE,
        path: "/v1/tokens/{id}",
        scope: None,
        level: Level::Read,
        summary: "Revoke one of your personal access tokens",
        handler: handler!(|c| c::revoke_personal(c.p, c.ctx, &c.p.user_id, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/users",
        scope: None,
        level: Level::Read,
        summary: "List the workspace's users",
        handler: handler!(|c| c::list_users(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::PATCH,
        path: "/v1/users/{id}",
        scope: None,
        level: Level::Read,
        summary: "Change a user's API access or rights",
        handler: handler!(|c| c::update_user(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/users/{id}/tokens",
        scope: None,
        level: Level::Read,
        summary: "List a user's personal access tokens",
        handler: handler!(|c| c::list_personal(c.p, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::DELETE,
        path: "/v1/users/{id}/tokens/{tokenId}",
        scope: None,
        level: Level::Read,
        summary: "Revoke a user's personal access token",
        handler: handler!(|c| c::revoke_personal(c.p, c.ctx, &c.param("id"), &c.param("tokenId"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/credentials",
        scope: None,
        level: Level::Read,
        summary: "Issue a connector token or API key (shown once)",
        handler: handler!(|c| c::issue_for_connector(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/credentials",
        scope: None,
        level: Level::Read,
        summary: "List a connector's credentials",
        handler: handler!(|c| c::list_for_connector(c.p, c.ctx, &c.param("id"))),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::DELETE,
        path: "/v1/connectors/{id}/credentials/{credentialId}",
        scope: None,
        level: Level::Read,
        summary: "Revoke a connector credential",
        handler: handler!(|c| c::revoke_for_connector(
            c.p,
            c.ctx,
            &c.param("id"),
            &c.param("credentialId")
        )),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::POST,
        path: "/v1/otp",
        scope: None,
        level: Level::Read,
        summary: "E-mail a one-time code to an employee (partner app)",
        handler: handler!(|c| otp::request(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::POST,
        path: "/v1/otp/redeem",
        scope: None,
        level: Level::Read,
        summary: "Redeem a one-time code for a token bound to the employee",
        handler: handler!(|c| otp::redeem(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
    Route {
        method: Method::GET,
        path: "/v1/audit",
        scope: None,
        level: Level::Read,
        summary: "The credential audit trail, newest first",
        handler: handler!(|c| c::audit(c.p, c.req, c.ctx)),
        doc: Doc::DEFAULT,
    },
];

pub async fn handler(req: Request, ctx: &Ctx) -> Response<Body> {
    pipeline::serve(req, ctx, ROUTES).await
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
