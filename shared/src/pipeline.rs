//! The request pipeline every handler runs first: request id, principal from the
//! authorizer context, one tracing span, body limit, rate limit; then the route; then
//! errors as problem+json and the `RateLimit-*` headers on every response.

use std::future::Future;
use std::time::Instant;

use http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use tracing::Instrument;

use crate::error::ApiError;
use crate::principal::{Principal, Requirement, checks_made};
use crate::routes::{self, Answer, Call, Handler, Route, RouteBody};
use crate::{Ctx, time_util};
use crate::{idempotency, rate_limit};

/// Larger bodies get 413 (API Gateway itself allows 10 MB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longer path parameters are answered 404 without touching the store.
pub const MAX_PATH_PARAM_BYTES: usize = 256;

pub type RouteResult = Result<Response<Body>, ApiError>;

/// The API Gateway request id, or a fresh one when there is none.
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        _ => None,
    }
    .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
    .filter(|s| !s.is_empty())
    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The principal the authorizer put in the request context.
pub fn principal(req: &Request) -> Result<Principal, String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => Principal::from_context(&c.authorizer.fields),
        _ => Err("request has no API Gateway REST context".into()),
    }
}

/// Whether a JWT `hash` claim is the base64 SHA-256 of `body` (standard or URL-safe
/// alphabet, padded or not).
pub fn body_hash_matches(claimed: &str, body: &[u8]) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    let trimmed = claimed.trim_end_matches('=');
    [
        STANDARD.decode(claimed).ok(),
        URL_SAFE_NO_PAD.decode(trimmed).ok(),
    ]
    .into_iter()
    .flatten()
    .any(|d| d[..] == digest[..])
}

/// Serves a request from a function's route table: finds its route (404 if none, or if a
/// path parameter the route declares is missing), checks the route's scope and level, and
/// runs its handler, all inside the pipeline. Never fails: every error becomes a response.
pub async fn serve<B: RouteBody>(
    req: Request,
    ctx: &Ctx,
    routes: &'static [Route<B>],
) -> Response<B> {
    let resource = resource(&req);
    let params = req.path_parameters();
    let found = routes::find(routes, req.method(), &resource).filter(|r| {
        r.params()
            .all(|n| params.first(n).is_some_and(|v| !v.is_empty()))
    });
    let Some(route) = found else {
        let refused = ApiError::not_found().to_response(&request_id(&req), &called_path(&req));
        return refused.map(Into::into);
    };
    let handler = match route.handler {
        Handler::Credential(h) => h,
        Handler::Public(h) => return public(req, ctx, h).await,
    };
    let required = Requirement {
        scope: route.scope,
        level: route.level,
    };
    respond(req, ctx, Some(required), move |p, req| async move {
        let call = Call {
            p: &p,
            req: &req,
            ctx,
        };
        handler(&call).await
    })
    .await
}

/// A public route: no principal, so no rate limit of Koppel's own (the stage throttles);
/// still a span with the request id, and errors as problem+json.
async fn public<B: RouteBody>(
    req: Request,
    ctx: &Ctx,
    handler: for<'a> fn(&'a Request, &'a Ctx) -> routes::BoxFuture<'a, Answer<B>>,
) -> Response<B> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let path = called_path(&req);
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %path);
    async {
        let resp = match handler(&req, ctx).await {
            Ok(r) => r,
            Err(e) => failed(&e, &request_id, &path),
        };
        done(resp, &request_id, started)
    }
    .instrument(span)
    .await
}

/// The one log line of an error (in the request's span: with its id), then its answer. A
/// server error's cause is logged here and nowhere else.
fn failed<B: RouteBody>(e: &ApiError, request_id: &str, path: &str) -> Response<B> {
    if e.status.is_server_error() {
        tracing::error!(
            status = e.status.as_u16(),
            error = e.cause.as_deref(),
            "request failed"
        );
    } else {
        tracing::info!(
            status = e.status.as_u16(),
            problem = e.slug,
            "request refused"
        );
    }
    e.to_response(request_id, path).map(Into::into)
}

/// Every answer carries its request id; its status and duration are the request's one
/// `info` line, in its span.
fn done<B>(mut resp: Response<B>, request_id: &str, started: Instant) -> Response<B> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        status = resp.status().as_u16(),
        ms = format!("{ms:.1}"),
        "done"
    );
    resp
}

/// The pipeline around one route: request id, span, principal, rate limit, input bounds,
/// the route's own requirement, idempotency; errors as problem+json; the headers every
/// response carries.
async fn respond<B, F, Fut>(
    req: Request,
    ctx: &Ctx,
    required: Option<Requirement>,
    route: F,
) -> Response<B>
where
    B: RouteBody,
    F: FnOnce(Principal, Request) -> Fut,
    Fut: Future<Output = Answer<B>>,
{
    let started = Instant::now();
    let request_id = request_id(&req);
    // Problems name, and `Location` starts from, the path the client called.
    let path = called_path(&req);
    let base = base_path(&path, &resource(&req)).to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %path,
        workspace = tracing::field::Empty,
        credential = tracing::field::Empty,
        user = tracing::field::Empty,
    );
    async move {
        let mut standing = None;
        let result = async {
            let p = principal(&req).map_err(ApiError::internal)?;
            let span = tracing::Span::current();
            span.record("workspace", p.workspace_id.as_str());
            span.record("credential", p.credential_id.as_str());
            span.record("user", p.user_id.as_str());

            let now = time_util::now().as_second();
            let s = match p.counted {
                Some(c) => c.standing(p.rate_limit, now),
                None => rate_limit::hit(&ctx.store, &p.credential_id, p.rate_limit, now).await?,
            };
            standing = Some(s);
            if !s.allowed {
                return Err(ApiError::too_many_requests(
                    s.reset_after.clamp(1, i64::from(u32::MAX)) as u32,
                    s.limit,
                ));
            }
            // No id of Koppel's is this long; such a value would overflow a DynamoDB key.
            if req
                .path_parameters()
                .iter()
                .any(|(_, v)| v.len() > MAX_PATH_PARAM_BYTES)
            {
                return Err(ApiError::not_found());
            }
            if crate::body::bytes(&req).len() > MAX_BODY_BYTES {
                return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
            }
            if let Some(claimed) = &p.body_hash
                && !body_hash_matches(claimed, crate::body::bytes(&req))
            {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "body-hash-mismatch",
                    "The JWT's `hash` claim is not the base64 SHA-256 of this request body.",
                ));
            }
            if let Some(r) = required {
                p.require(r.scope, r.level)?;
            }
            let Some(key) = idempotency::key_of(&req)? else {
                return route(p, req).await;
            };
            let fp = idempotency::fingerprint(&req);
            let credential = p.credential_id.clone();
            match idempotency::claim(&ctx.store, &p, &key, &fp, now).await? {
                idempotency::Claim::Replay(resp) => Ok(resp.map(Into::into)),
                idempotency::Claim::SecretShown { location } => {
                    Err(idempotency::secret_shown(location.as_deref()))
                }
                idempotency::Claim::Fresh => {
                    let (resp, made) = checks_made(route(p, req)).await;
                    let resp = resp.unwrap_or_else(|e| failed(&e, &request_id, &path));
                    let checks = required.into_iter().chain(made).collect();
                    // The change is made: a failure to record it must not answer 500 (a
                    // retry would run it again once the claim expires), so it is logged.
                    if let Err(e) = idempotency::finish(
                        &ctx.store,
                        &credential,
                        &key,
                        &fp,
                        (resp.status(), resp.headers(), resp.body().buffered()),
                        checks,
                        now,
                    )
                    .await
                    {
                        tracing::error!(error = %e, "idempotency record not saved");
                    }
                    Ok(resp)
                }
            }
        }
        .await;
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => failed(&e, &request_id, &path),
        };
        if let Some(s) = standing {
            s.apply(resp.headers_mut());
        }
        // Handlers write `Location` from the route (`/v1/cases/7`); the client reaches it
        // under the same base as the path it called.
        if let Some(v) = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            && let Some(rebased) = rebase(v, &base)
            && let Ok(v) = HeaderValue::from_str(&rebased)
        {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        done(resp, &request_id, started)
    }
    .instrument(span)
    .await
}

/// `201 Created` with the resource's `Location` (a path from the API's root: the
/// pipeline moves it under the base the client called) and its `ETag`.
pub fn created<T: Serialize>(location: &str, value: &T, version: Option<u64>) -> RouteResult {
    let mut r = json(StatusCode::CREATED, value)?;
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(ApiError::internal)?,
    );
    Ok(match version {
        Some(v) => crate::preconditions::with_etag(r, v),
        None => r,
    })
}

/// A JSON answer with the resource's `ETag`.
pub fn versioned<T: Serialize>(status: StatusCode, value: &T, version: u64) -> RouteResult {
    Ok(crate::preconditions::with_etag(
        json(status, value)?,
        version,
    ))
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static response")
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> RouteResult {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Ok(Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .expect("static headers are valid"))
}

/// The route's resource path as template.yaml declares it (`/v1/cases/{id}`), which is
/// what functions dispatch on.
pub fn resource(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.resource_path.clone(),
        _ => None,
    }
    .unwrap_or_else(|| req.uri().path().to_owned())
}

/// The path the client called, as API Gateway saw it (`requestContext.path`): with the
/// stage on an execute-api URL (`/live/v1/me`), with the base path or none on a custom
/// domain (`/v1/me`). lambda_http's URI always adds the stage and the event's `path`
/// never has it (but has a custom domain's base path), so neither fits both.
pub fn called_path(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.path.clone(),
        _ => None,
    }
    .filter(|p| p.starts_with('/'))
    .unwrap_or_else(|| req.uri().path().to_owned())
}

/// What precedes the route in the called path: `/live` for `/live/v1/cases/7` of
/// `/v1/cases/{id}`, empty on a custom domain mapped at the root. Each segment of the
/// resource (a `{name}` too) is one segment at the end of the called path.
pub fn base_path<'a>(called: &'a str, resource: &str) -> &'a str {
    let segments = resource.split('/').filter(|s| !s.is_empty()).count();
    let mut end = called.trim_end_matches('/').len();
    for _ in 0..segments {
        match called[..end].rfind('/') {
            Some(i) => end = i,
            None => return "",
        }
    }
    &called[..end]
}

/// A `Location` under `base`: only an absolute path is moved, a full URL stays as it is.
pub fn rebase(location: &str, base: &str) -> Option<String> {
    (!base.is_empty() && location.starts_with('/') && !location.starts_with("//"))
        .then(|| format!("{base}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_what_precedes_the_route() {
        assert_eq!(base_path("/live/v1/cases/7", "/v1/cases/{id}"), "/live");
        assert_eq!(base_path("/v1/cases/7", "/v1/cases/{id}"), "");
        assert_eq!(base_path("/koppel/live/v1/me", "/v1/me"), "/koppel/live");
        assert_eq!(base_path("/live/v1/me/", "/v1/me"), "/live");
        assert_eq!(base_path("/v1/me", "/v1/me"), "");
        // A resource longer than the path (no context): nothing to keep.
        assert_eq!(base_path("/me", "/v1/me"), "");
    }

    #[test]
    fn only_absolute_paths_are_rebased() {
        assert_eq!(
            rebase("/v1/cases/7", "/live").as_deref(),
            Some("/live/v1/cases/7")
        );
        assert_eq!(rebase("/v1/cases/7", ""), None);
        assert_eq!(rebase("https://x.example/v1", "/live"), None);
        assert_eq!(rebase("//x.example/v1", "/live"), None);
    }

    #[test]
    fn the_called_path_comes_from_the_request_context() {
        let mut ev = aws_lambda_events::apigw::ApiGatewayProxyRequest::default();
        ev.path = Some("/v1/me".into());
        ev.resource = Some("/v1/me".into());
        ev.request_context.stage = Some("live".into());
        ev.request_context.resource_path = Some("/v1/me".into());
        ev.http_method = http::Method::GET;
        // On a custom domain mapped at the root, no stage in what the client called.
        ev.request_context.path = Some("/v1/me".into());
        let req: Request = lambda_http::request::LambdaRequest::ApiGatewayV1(ev.clone()).into();
        // lambda_http itself would say the stage was called.
        assert_eq!(req.uri().path(), "/live/v1/me");
        assert_eq!(called_path(&req), "/v1/me");
        ev.request_context.path = Some("/live/v1/me".into());
        let req: Request = lambda_http::request::LambdaRequest::ApiGatewayV1(ev).into();
        assert_eq!(called_path(&req), "/live/v1/me");
        assert_eq!(base_path(&called_path(&req), &resource(&req)), "/live");
    }

    /// What a test's subscriber wrote.
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn failing<'a>(_: &'a Request, _: &'a Ctx) -> routes::BoxFuture<'a, Answer<Body>> {
        Box::pin(async { Err(ApiError::internal("table koppel is gone")) })
    }

    #[tokio::test]
    async fn an_internal_cause_is_logged_once_with_the_request_id() {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        // No I/O: the clients are made, never called.
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let settings = crate::Settings::from_vars(|k| {
            (!k.contains("RATE") && !k.contains("LIFETIME")).then(|| "x".to_owned())
        })
        .unwrap();
        let ctx = Ctx::new(&sdk, settings);
        let mut ev = aws_lambda_events::apigw::ApiGatewayProxyRequest::default();
        ev.http_method = http::Method::GET;
        ev.path = Some("/v1/openapi.json".into());
        ev.request_context.request_id = Some("req-7".into());
        let req: Request = lambda_http::request::LambdaRequest::ApiGatewayV1(ev).into();

        let resp = public(req, &ctx, failing).await;
        assert_eq!(resp.status(), 500);
        let Body::Text(t) = resp.body() else {
            panic!("text body")
        };
        assert!(!t.contains("koppel is gone"));
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("koppel is gone"))
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(lines[0].contains("req-7") && lines[0].contains("request failed"));
    }

    #[test]
    fn body_hash_claims() {
        // SHA-256 of the empty string.
        assert!(body_hash_matches(
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            b""
        ));
        assert!(body_hash_matches(
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
            b""
        ));
        assert!(!body_hash_matches(
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            b"x"
        ));
        assert!(!body_hash_matches("not base64!", b""));
    }
}
