//! The `tokens` function: who am I (`GET /v1/me`); personal access tokens; users; other
//! users' tokens; connector keys and tokens; OTP issuance; the credential audit trail.

pub mod credentials;
pub mod docs;
pub mod otp;
pub mod views;

use credentials::{self as c, NewTokenBody, UserPatch};
use http::{Method, StatusCode};
use koppel_shared::handler;
use koppel_shared::model::Level;
use koppel_shared::organisation::NewUser;
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::principal::Held;
use koppel_shared::routes::{Doc, Query, Route, schema};
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Body, Request, Response};
use views::{AuditView, CredentialView, IssuedCredential, Items, Me, OtpAccepted, Page, UserView};

/// `?limit=&cursor=` of the shared pager (koppel_shared::paging::STANDARD).
const PAGED: &[Query] = &[
    Query {
        name: "limit",
        description: "Items per page, 1 to 200 (default 50).",
        kind: "integer",
    },
    Query {
        name: "cursor",
        description: "The `next_cursor` of the previous page of this same list.",
        kind: "string",
    },
];

/// The routes of the function, as template.yaml declares them (checked by a test).
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/v1/me",
        scope: None,
        level: Level::Read,
        summary: "Who am I: workspace, user, connector, credential, scopes, level, rate limit",
        handler: handler!(|c| me(c.p, c.req, c.ctx)),
        doc: Doc {
            response: Some(schema::<Me>),
            // The credential's workspace or user is gone (deleted meanwhile).
            errors: &[404],
            description: "Any credential. What Koppel makes of it: the workspace, the user it acts for, the connector (`null` for a personal token), the credential, the effective scopes and access level, and the rate limit.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/tokens",
        scope: None,
        level: Level::Read,
        summary: "Create a personal access token (shown once)",
        handler: handler!(|c| c::create_own(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<NewTokenBody>),
            response: Some(schema::<IssuedCredential>),
            status: 201,
            description: "A personal access token of the calling user (who needs `api_access` and a personal token: connector credentials get 403). Its scopes, expiry and rate limit stay within the calling token's. The `secret` is in this answer only (`Cache-Control: no-store`; an idempotent replay does not show it again: 409 `idempotency-secret-shown`). 409 `token-limit` at 50 live tokens.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/tokens",
        scope: None,
        level: Level::Read,
        summary: "List your personal access tokens",
        handler: handler!(|c| c::list_personal(c.p, c.ctx, &c.p.user_id)),
        doc: Doc {
            response: Some(schema::<Items<CredentialView>>),
            description: "The calling user's personal access tokens, revoked and expired ones included, never their secrets.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::DELETE,
        path: "/v1/tokens/{id}",
        scope: None,
        level: Level::Read,
        summary: "Revoke one of your personal access tokens",
        handler: handler!(|c| c::revoke_personal(c.p, c.ctx, &c.p.user_id, &c.param("id"))),
        doc: Doc {
            description: "Revokes it at once: the next request with it is a 401.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/users",
        scope: None,
        level: Level::Read,
        summary: "List the workspace's users",
        handler: handler!(|c| c::list_users(c.p, c.req, c.ctx)),
        doc: Doc {
            response: Some(schema::<Page<UserView>>),
            query: PAGED,
            // A bad `limit` or `cursor`, named.
            errors: &[422],
            description: "Needs `manage_users`. In id order.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/users",
        scope: None,
        level: Level::Read,
        summary: "Add a user",
        handler: handler!(|c| c::create_user(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<NewUser>),
            response: Some(schema::<UserView>),
            status: 201,
            // The e-mail address is taken.
            errors: &[409],
            description: "Needs `manage_users`. Rights at most your own and only permissions you hold (the owner holds all), else 422 naming the field.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/users/{id}/deactivate",
        scope: None,
        level: Level::Read,
        summary: "Deactivate a user",
        handler: handler!(|c| c::deactivate_user(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<UserView>),
            errors: &[409],
            description: "Needs `manage_users`; never the owner or oneself (403). From the next request on no credential acts for them, and their personal tokens and the tokens apps got for them through OTP are revoked (audited). 409 naming the connectors that act for them: make those act for someone else first. Deactivating again changes nothing.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::PATCH,
        path: "/v1/users/{id}",
        scope: None,
        level: Level::Read,
        summary: "Change a user's API access or rights",
        handler: handler!(|c| c::update_user(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc {
            request: Some(schema::<UserPatch>),
            response: Some(schema::<UserView>),
            // The user changed meanwhile.
            errors: &[409],
            description: "Needs `manage_users`. Only the owner changes the owner; nobody but the owner changes their own rights or grants rights above their own (403).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/users/{id}/tokens",
        scope: None,
        level: Level::Read,
        summary: "List a user's personal access tokens",
        handler: handler!(|c| c::list_personal(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<Items<CredentialView>>),
            description: "Needs `manage_users`, or the user oneself.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::DELETE,
        path: "/v1/users/{id}/tokens/{tokenId}",
        scope: None,
        level: Level::Read,
        summary: "Revoke a user's personal access token",
        handler: handler!(|c| c::revoke_personal(c.p, c.ctx, &c.param("id"), &c.param("tokenId"))),
        doc: Doc {
            description: "Needs `manage_users`, or the user oneself; only the owner revokes the owner's tokens (PlanRadar).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors/{id}/credentials",
        scope: None,
        level: Level::Read,
        summary: "Issue a connector token or API key (shown once)",
        handler: handler!(|c| c::issue_for_connector(c.p, c.req, c.ctx, &c.param("id"))),
        doc: Doc {
            request: Some(schema::<NewTokenBody>),
            response: Some(schema::<IssuedCredential>),
            status: 201,
            description: "Needs `manage_connectors` (and rights over the connector's acting user). `kind`: `token` (default) or `api_key`; scopes within the connector's and the calling token's; `replaces` revokes that credential in the same transaction (409 if it was revoked meanwhile: nothing issued). The `secret` is in this answer only (`Cache-Control: no-store`).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{id}/credentials",
        scope: None,
        level: Level::Read,
        summary: "List a connector's credentials",
        handler: handler!(|c| c::list_for_connector(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            response: Some(schema::<Items<CredentialView>>),
            description: "Needs `manage_connectors`. Its API keys and tokens (OTP-issued ones included), never their secrets.",
            ..Doc::DEFAULT
        },
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
        doc: Doc {
            description: "Needs `manage_connectors`. Revokes it at once.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/otp",
        scope: None,
        level: Level::Read,
        summary: "E-mail a one-time code to an employee (partner app)",
        handler: handler!(|c| otp::request(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<otp::RequestBody>),
            response: Some(schema::<OtpAccepted>),
            status: 202,
            description: "With the partner app's connector credential (others get 403). Mails a 6-digit code, valid 10 minutes, with the connector's description in the subject. The answer is the same whether or not the address belongs to a user.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::POST,
        path: "/v1/otp/redeem",
        scope: None,
        level: Level::Read,
        summary: "Redeem a one-time code for a token bound to the employee",
        handler: handler!(|c| otp::redeem(c.p, c.req, c.ctx)),
        doc: Doc {
            request: Some(schema::<otp::RedeemBody>),
            response: Some(schema::<IssuedCredential>),
            status: 201,
            description: "With the same connector credential: a connector token bound to the employee and the connector, with the app credential's scopes. A wrong, used or expired code, or an employee without `api_access`, is one 422 naming `code`; five wrong tries kill the code. 409 `token-limit` at 50 live tokens.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/otp/tokens",
        scope: None,
        level: Level::Read,
        summary: "The live tokens the app got through OTP (partner app)",
        handler: handler!(|c| otp::list_issued(c.p, c.req, c.ctx)),
        doc: Doc {
            response: Some(schema::<Items<CredentialView>>),
            query: &[Query {
                name: "user_id",
                description: "Only those of this employee.",
                kind: "string",
            }],
            description: "With the app's own connector credential (a token issued through OTP, or any other credential, gets 403). Oldest first, without secrets.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::DELETE,
        path: "/v1/otp/tokens/{id}",
        scope: None,
        level: Level::Read,
        summary: "Revoke a token the app got through OTP (partner app)",
        handler: handler!(|c| otp::revoke_issued(c.p, c.ctx, &c.param("id"))),
        doc: Doc {
            description: "With the app's own connector credential; audited. Any credential but one issued through OTP for this connector is 404. Revoking again changes nothing (204).",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/v1/audit",
        scope: None,
        level: Level::Read,
        summary: "The credential audit trail, newest first",
        handler: handler!(|c| c::audit(c.p, c.req, c.ctx)),
        doc: Doc {
            response: Some(schema::<Page<AuditView>>),
            query: &[
                Query {
                    name: "limit",
                    description: "Entries per page, 1 to 500 (default 50).",
                    kind: "integer",
                },
                PAGED[1],
            ],
            errors: &[422],
            description: "Needs `manage_users`. Every issue and revoke of a credential, newest first: who, when, which credential, on behalf of whom.",
            ..Doc::DEFAULT
        },
    },
    // The contract itself, public (template.yaml: `Auth: {Authorizer: NONE}`).
    Route {
        method: Method::GET,
        path: "/openapi.json",
        scope: None,
        level: Level::Read,
        summary: "This API's OpenAPI 3.1 document (no credential needed)",
        handler: koppel_shared::public_handler!(|req, _ctx| docs::openapi(req)),
        doc: Doc {
            response: Some(
                koppel_shared::routes::schema::<serde_json::Map<String, serde_json::Value>>,
            ),
            description: "The committed `openapi.json`, generated from the route tables.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/docs",
        scope: None,
        level: Level::Read,
        summary: "Interactive documentation: try any operation with your credential, copy the curl line",
        handler: koppel_shared::public_handler!(|req, _ctx| docs::page(req)),
        doc: Doc {
            media_type: "text/html",
            description: "Swagger UI over `/openapi.json`; the problem types are explained at `/docs#problems`.",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/docs/assets/docs.js",
        scope: None,
        level: Level::Read,
        summary: "The documentation page's script (Swagger UI, vendored)",
        handler: koppel_shared::public_handler!(|req, _ctx| docs::script(req)),
        doc: Doc {
            media_type: "text/javascript",
            ..Doc::DEFAULT
        },
    },
    Route {
        method: Method::GET,
        path: "/docs/assets/docs.css",
        scope: None,
        level: Level::Read,
        summary: "The documentation page's stylesheet (Swagger UI, vendored)",
        handler: koppel_shared::public_handler!(|req, _ctx| docs::stylesheet(req)),
        doc: Doc {
            media_type: "text/css",
            ..Doc::DEFAULT
        },
    },
];

pub async fn handler(req: Request, ctx: &Ctx) -> Response<Body> {
    pipeline::serve(req, ctx, ROUTES).await
}

/// The caller as Koppel sees them, so a partner can debug their setup.
async fn me(p: &Principal, req: &Request, ctx: &Ctx) -> RouteResult {
    let held = match &p.held {
        Some(h) => h.clone(),
        None => read_held(p, ctx).await?,
    };
    let mut me = Me::of(p, &held);
    me.client_certificate = views::MeClientCertificate::of_request(req);
    pipeline::json(StatusCode::OK, &me)
}

/// What the authorizer would have handed on, for a caller that came without it.
async fn read_held(p: &Principal, ctx: &Ctx) -> Result<Held, ApiError> {
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
    Ok(Held::of(&workspace, &user, connector?.as_ref()))
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
        let held = p.held.expect("the authorizer hands on what it read");
        assert_eq!(held.workspace_name, "Gemeente Demo");
        assert_eq!(p.counted.map(|c| c.count), Some(1));
    }
}
