//! A local API Gateway (REST, v1 proxy events). For each request it matches a
//! template.yaml route, builds the authorizer's REQUEST event and runs the real `authorize`
//! handler, answers `Unauthorized`/deny with template.yaml's `GatewayResponses`, and on allow
//! runs the route's real handler with the authorizer context in
//! `requestContext.authorizer`. Unknown path or method gets `MISSING_AUTHENTICATION_TOKEN`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerRequestTypeRequestContext,
    ApiGatewayCustomAuthorizerRequestTypeRequestIdentity, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayProxyRequest, ApiGatewayProxyRequestContext, ApiGatewayRequestIdentity,
};
use aws_lambda_events::iam::IamPolicyEffect;
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use koppel_shared::Ctx;
use lambda_http::Body;
use lambda_http::request::LambdaRequest;
use serde_json::Value;

use crate::template::{ACCOUNT, GatewayResponse, Route};

pub mod tls;
use tls::PeerCert;

/// API Gateway's own payload limit.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;
/// API Gateway's limit on a REST request's request line and header values together
/// (10,240 bytes); a larger request is refused before any function runs.
const MAX_HEADER_BYTES: usize = 10 * 1024;

pub struct Gateway {
    pub routes: Vec<Route>,
    pub responses: HashMap<String, GatewayResponse>,
    pub stage: String,
    pub region: String,
    /// The authorizer's context, and each routed function with its context, by logical id.
    pub authorizer: Ctx,
    pub functions: HashMap<String, (HttpFunction, Ctx)>,
}

/// A response body: buffered, or streamed as the function produces it (the cases CSV).
pub type GatewayBody = UnsyncBoxBody<Bytes, lambda_http::Error>;
pub type HttpResponse = hyper::Response<GatewayBody>;

/// The HTTP functions the gateway can run, by their template `Binary` name. Start-up
/// fails if template.yaml routes to a binary that is not listed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFunction {
    Tokens,
    Endpoints,
    Dsr,
    Connectors,
    Cases,
}

impl HttpFunction {
    /// The template `Binary` name.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::Endpoints => "endpoints",
            Self::Dsr => "dsr",
            Self::Connectors => "connectors",
            Self::Cases => "cases",
        }
    }

    pub fn from_binary(binary: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.binary() == binary)
    }

    pub const ALL: [Self; 5] = [
        Self::Tokens,
        Self::Endpoints,
        Self::Dsr,
        Self::Connectors,
        Self::Cases,
    ];

    /// The function's route table, without handlers.
    pub fn routes(self) -> Vec<koppel_shared::routes::RouteInfo> {
        match self {
            Self::Tokens => tokens::ROUTES.iter().map(|r| r.info()).collect(),
            Self::Endpoints => endpoints::ROUTES.iter().map(|r| r.info()).collect(),
            Self::Dsr => dsr::ROUTES.iter().map(|r| r.info()).collect(),
            Self::Connectors => connectors::ROUTES.iter().map(|r| r.info()).collect(),
            Self::Cases => cases::ROUTES.iter().map(|r| r.info()).collect(),
        }
    }

    /// Whether the function's runtime answers in the streaming format (its `main.rs` runs
    /// `run_with_streaming_response`): its routes must then be `RESPONSE_STREAM`.
    pub fn streams(self) -> bool {
        matches!(self, Self::Cases)
    }

    /// Runs the same handler the function's Lambda `main.rs` runs.
    pub async fn call(self, req: lambda_http::Request, ctx: &Ctx) -> http::Response<GatewayBody> {
        let buffered = |r: lambda_http::Response<Body>| r.map(|b| full(body_bytes(b)));
        match self {
            Self::Tokens => buffered(tokens::handler(req, ctx).await),
            Self::Endpoints => buffered(endpoints::handler(req, ctx).await),
            Self::Dsr => buffered(dsr::handler(req, ctx).await),
            Self::Connectors => buffered(connectors::handler(req, ctx).await),
            // A streaming function: its body goes out chunk by chunk, as Lambda response
            // streaming through API Gateway sends it.
            Self::Cases => cases::handler(req, ctx).await.map(BodyExt::boxed_unsync),
        }
    }
}

fn body_bytes(body: Body) -> Bytes {
    match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    }
}

fn full(bytes: Bytes) -> GatewayBody {
    Full::new(bytes).map_err(|e| match e {}).boxed_unsync()
}

/// Matches `path` to a route template; `{name}` takes one segment, `{name+}` the rest.
pub fn match_path(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let t: Vec<&str> = template
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let p: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut params = HashMap::new();
    for (i, seg) in t.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            if i >= p.len() {
                return None;
            }
            params.insert(name.to_owned(), percent_decode(&p[i..].join("/"), false));
            return Some(params);
        }
        let part = p.get(i)?;
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.to_owned(), percent_decode(part, false));
            }
            None if seg == part => {}
            None => return None,
        }
    }
    (t.len() == p.len()).then_some(params)
}

/// The path below the stage. Like execute-api, `/{stage}/…` reaches the stage's routes;
/// like a custom domain mapped at the root, so does `/…`. Either way the client's own
/// path is what `requestContext.path` and `$context.path` carry.
pub fn strip_stage(stage: &str, called: &str) -> String {
    match called.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => called.to_owned(),
    }
}

/// The most specific matching route: most literal segments first, as API Gateway does.
pub fn find_route<'a>(
    routes: &'a [Route],
    method: &Method,
    path: &str,
) -> Option<(&'a Route, HashMap<String, String>)> {
    let literal = |r: &Route| {
        r.path
            .split('/')
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .count()
    };
    let mut candidates: Vec<_> = routes
        .iter()
        .filter(|r| r.method == "ANY" || r.method == method.as_str())
        .filter_map(|r| match_path(&r.path, path).map(|p| (r, p)))
        .collect();
    candidates.sort_by_key(|(r, _)| std::cmp::Reverse(literal(r)));
    candidates.into_iter().next()
}

pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query string → (last value per name, all values per name), decoded.
pub fn query_maps(query: Option<&str>) -> (QueryMap, QueryMap) {
    let mut multi: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        multi
            .entry(percent_decode(k, true))
            .or_default()
            .push(percent_decode(v, true));
    }
    let single: HashMap<String, String> = multi
        .iter()
        .filter_map(|(k, v)| v.last().map(|l| (k.clone(), l.clone())))
        .collect();
    (QueryMap::from(single), QueryMap::from(multi))
}

/// Whether an IAM policy statement list allows `execute-api:Invoke` on `arn`.
pub fn policy_allows(resp: &ApiGatewayCustomAuthorizerResponse, arn: &str) -> bool {
    let matches = |pattern: &str, s: &str| wildcard(pattern.as_bytes(), s.as_bytes());
    let hits = |effect: IamPolicyEffect| {
        resp.policy_document.statement.iter().any(|st| {
            st.effect == effect
                && st.action.iter().any(|a| matches(a, "execute-api:Invoke"))
                && st.resource.iter().any(|r| matches(r, arn))
        })
    };
    !hits(IamPolicyEffect::Deny) && hits(IamPolicyEffect::Allow)
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

impl Gateway {
    /// A gateway-written response, as template.yaml's `GatewayResponses` declare it.
    pub fn gateway_response(
        &self,
        kind: &str,
        default_status: u16,
        message: &str,
        request_id: &str,
        path: &str,
    ) -> HttpResponse {
        let fallback = if default_status >= 500 {
            "DEFAULT_5XX"
        } else {
            "DEFAULT_4XX"
        };
        let r = self
            .responses
            .get(kind)
            .or_else(|| self.responses.get(fallback))
            .cloned()
            .unwrap_or_default();
        let status = r.status.unwrap_or(default_status);
        let body = r
            .template
            .unwrap_or_else(|| r#"{"message":$context.error.messageString}"#.to_owned())
            .replace("$context.requestId", request_id)
            .replace("$context.path", path)
            .replace(
                "$context.error.messageString",
                &Value::String(message.into()).to_string(),
            )
            .replace("$context.error.message", message);
        let mut b = hyper::Response::builder()
            .status(status)
            .header("x-amzn-requestid", request_id)
            .header("x-amzn-errortype", kind);
        let mut has_type = false;
        for (k, v) in &r.headers {
            has_type |= k.eq_ignore_ascii_case("content-type");
            b = b.header(k, v);
        }
        if !has_type {
            b = b.header("content-type", "application/json");
        }
        b.body(full(Bytes::from(body))).expect("valid response")
    }

    pub async fn handle(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> HttpResponse {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let mut authorizer = None;
        let resp = self.dispatch(req, peer, &request_id, &mut authorizer).await;
        // The authorizer's own time apart: the bench bills it as its own invocation.
        let authorizer_ms = authorizer.map(|d: std::time::Duration| d.as_secs_f64() * 1000.0);
        tracing::info!(
            %method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64,
            authorizer_ms, request_id = %request_id, "gateway"
        );
        resp
    }

    async fn dispatch(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        request_id: &str,
        authorizer_took: &mut Option<std::time::Duration>,
    ) -> HttpResponse {
        let (parts, body) = req.into_parts();
        let called = parts.uri.path().to_owned();
        // The TLS listener puts the connection's client certificate here (`serve
        // --client-ca`); API Gateway's mTLS answers one it cannot verify with 403. Written
        // as the authorizer's deny is, so a caller cannot tell which check failed.
        let peer_cert = parts.extensions.get::<Arc<PeerCert>>().cloned();
        if let Some(PeerCert::Refused(why)) = peer_cert.as_deref() {
            tracing::info!(reason = %why, "client certificate refused");
            return self.gateway_response("ACCESS_DENIED", 403, "Forbidden", request_id, &called);
        }
        let path = strip_stage(&self.stage, &called);
        let Some((route, path_params)) = find_route(&self.routes, &parts.method, &path) else {
            return self.gateway_response(
                "MISSING_AUTHENTICATION_TOKEN",
                403,
                "Missing Authentication Token",
                request_id,
                &called,
            );
        };
        if header_bytes(&parts) > MAX_HEADER_BYTES {
            return self.gateway_response(
                "REQUEST_TOO_LARGE",
                413,
                "Request Header Fields Too Large",
                request_id,
                &called,
            );
        }
        let body = match Limited::new(body, MAX_PAYLOAD).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return self.gateway_response(
                    "REQUEST_TOO_LARGE",
                    413,
                    "Request Too Long",
                    request_id,
                    &called,
                );
            }
        };
        let (query, multi_query) = query_maps(parts.uri.query());
        // API Gateway reports the client address as sourceIp; v4 clients of a dual-stack
        // socket appear as IPv4-mapped v6 addresses, which it would show as plain v4.
        let source_ip = koppel_shared::ip_allow::canonical(peer.ip()).to_string();
        let method_arn = format!(
            "arn:aws:execute-api:{}:{ACCOUNT}:local/{}/{}{}",
            self.region, self.stage, parts.method, path
        );
        let headers = single_headers(&parts.headers);

        let mut context_fields = HashMap::new();
        if route.authorized {
            let mut identity = ApiGatewayCustomAuthorizerRequestTypeRequestIdentity::default();
            identity.source_ip = Some(source_ip.clone());
            if let Some(PeerCert::Verified(c)) = peer_cert.as_deref() {
                identity.client_cert = Some(c.to_event());
            }
            let mut rc = ApiGatewayCustomAuthorizerRequestTypeRequestContext::default();
            rc.path = Some(called.clone());
            rc.account_id = Some(ACCOUNT.into());
            rc.resource_id = Some(route.path.clone());
            rc.stage = Some(self.stage.clone());
            rc.request_id = Some(request_id.to_owned());
            rc.identity = Some(identity);
            rc.resource_path = Some(route.path.clone());
            rc.http_method = Some(parts.method.clone());
            rc.apiid = Some("local".into());
            let mut ev = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
            ev.type_ = Some("REQUEST".into());
            ev.method_arn = Some(method_arn.clone());
            ev.resource = Some(route.path.clone());
            ev.path = Some(path.clone());
            ev.http_method = Some(parts.method.clone());
            ev.headers = headers.clone();
            ev.multi_value_headers = parts.headers.clone();
            ev.query_string_parameters = query.clone();
            ev.multi_value_query_string_parameters = multi_query.clone();
            ev.path_parameters = path_params.clone();
            ev.request_context = rc;
            let asked = Instant::now();
            let decided = authorize::handler(ev, &self.authorizer).await;
            *authorizer_took = Some(asked.elapsed());
            match decided {
                Err(authorize::AuthorizerError::Unauthorized) => {
                    return self.gateway_response(
                        "UNAUTHORIZED",
                        401,
                        "Unauthorized",
                        request_id,
                        &called,
                    );
                }
                Err(_) => {
                    return self.gateway_response(
                        "AUTHORIZER_FAILURE",
                        500,
                        "Internal server error",
                        request_id,
                        &called,
                    );
                }
                Ok(resp) if !policy_allows(&resp, &method_arn) => {
                    return self.gateway_response(
                        "ACCESS_DENIED",
                        403,
                        "User is not authorized to access this resource with an explicit deny",
                        request_id,
                        &called,
                    );
                }
                Ok(resp) => {
                    // A REST API hands every context value on as a string.
                    for (k, v) in resp.context.as_object().into_iter().flatten() {
                        let s = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        context_fields.insert(k.clone(), Value::String(s));
                    }
                    if let Some(p) = resp.principal_id {
                        context_fields.insert("principalId".into(), Value::String(p));
                    }
                }
            }
        }

        let bad_gateway = || {
            self.gateway_response(
                "DEFAULT_5XX",
                502,
                "Internal server error",
                request_id,
                &called,
            )
        };
        let Some((function, ctx)) = self.functions.get(&route.function) else {
            return bad_gateway();
        };
        // API Gateway takes a streamed answer on a buffered integration (and the other way
        // round) for a malformed Lambda response: 502, whatever the function did.
        if function.streams() != route.streaming {
            tracing::error!(
                function = %route.function, route = %route.path,
                "the function streams only if its routes are ResponseTransferMode: RESPONSE_STREAM"
            );
            return bad_gateway();
        }
        let mut identity = ApiGatewayRequestIdentity::default();
        identity.source_ip = Some(source_ip);
        let mut rc = ApiGatewayProxyRequestContext::default();
        rc.account_id = Some(ACCOUNT.into());
        rc.resource_id = Some(route.path.clone());
        rc.stage = Some(self.stage.clone());
        rc.request_id = Some(request_id.to_owned());
        rc.identity = identity;
        rc.resource_path = Some(route.path.clone());
        rc.path = Some(called.clone());
        rc.http_method = parts.method.clone();
        rc.protocol = Some("HTTP/1.1".into());
        rc.request_time_epoch = koppel_shared::time_util::now().as_second() * 1000;
        rc.apiid = Some("local".into());
        rc.authorizer.fields = context_fields;
        let mut ev = ApiGatewayProxyRequest::default();
        ev.resource = Some(route.path.clone());
        ev.path = Some(path.clone());
        ev.http_method = parts.method.clone();
        ev.headers = headers;
        ev.multi_value_headers = parts.headers.clone();
        ev.query_string_parameters = query;
        ev.multi_value_query_string_parameters = multi_query;
        ev.path_parameters = path_params;
        ev.request_context = rc;
        if !body.is_empty() {
            match std::str::from_utf8(&body) {
                Ok(s) => ev.body = Some(s.to_owned()),
                Err(_) => {
                    ev.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
                    ev.is_base64_encoded = true;
                }
            }
        }
        let lambda_req: lambda_http::Request = LambdaRequest::ApiGatewayV1(ev).into();
        let resp = function.call(lambda_req, ctx).await;
        let (mut rp, body) = resp.into_parts();
        rp.headers.insert(
            "x-amzn-requestid",
            HeaderValue::from_str(request_id).expect("uuid"),
        );
        hyper::Response::from_parts(rp, body)
    }
}

/// The v1 event's `headers`: the last value of each header.
/// The size API Gateway counts: the request line and every header name and value.
fn header_bytes(parts: &http::request::Parts) -> usize {
    let line = parts.method.as_str().len() + parts.uri.to_string().len() + " HTTP/1.1".len();
    line + parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

fn single_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in h {
        out.insert(k.clone(), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, method: &str) -> Route {
        Route {
            function: "F".into(),
            path: path.into(),
            method: method.into(),
            authorized: true,
            streaming: false,
        }
    }

    #[test]
    fn stage_prefix_is_optional() {
        assert_eq!(strip_stage("live", "/live/v1/me"), "/v1/me");
        assert_eq!(strip_stage("live", "/v1/me"), "/v1/me");
        assert_eq!(strip_stage("live", "/lively/v1"), "/lively/v1");
        assert_eq!(strip_stage("live", "/live"), "/live");
        assert_eq!(strip_stage("live", "/"), "/");
    }

    #[test]
    fn path_matching() {
        assert_eq!(match_path("/v1/me", "/v1/me"), Some(HashMap::new()));
        assert_eq!(match_path("/v1/me", "/v1/me/x"), None);
        let p = match_path(
            "/v1/ws/{workspaceId}/DataSubjectRequests/{id}",
            "/v1/ws/w%201/DataSubjectRequests/7",
        )
        .unwrap();
        assert_eq!(p["workspaceId"], "w 1");
        assert_eq!(p["id"], "7");
        let p = match_path("/files/{proxy+}", "/files/a/b").unwrap();
        assert_eq!(p["proxy"], "a/b");
        assert_eq!(match_path("/files/{proxy+}", "/files"), None);
    }

    #[test]
    fn literal_routes_win() {
        let routes = vec![
            route("/v1/cases/{id}", "GET"),
            route("/v1/cases/export.csv", "GET"),
        ];
        let (r, _) = find_route(&routes, &Method::GET, "/v1/cases/export.csv").unwrap();
        assert_eq!(r.path, "/v1/cases/export.csv");
        assert!(find_route(&routes, &Method::POST, "/v1/cases/1").is_none());
        let any = vec![route("/x", "ANY")];
        assert!(find_route(&any, &Method::DELETE, "/x").is_some());
    }

    #[test]
    fn query_and_decoding() {
        let (single, multi) = query_maps(Some("states[]=Open&states[]=Closed&q=a+b%21&empty"));
        assert_eq!(single.first("q"), Some("a b!"));
        assert_eq!(multi.all("states[]").unwrap(), vec!["Open", "Closed"]);
        assert_eq!(single.first("empty"), Some(""));
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz", false), "%zz");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(
            b"arn:*:local/*",
            b"arn:aws:execute-api:local/live/GET/v1/me"
        ));
        assert!(!wildcard(b"arn:x", b"arn:y"));
        assert!(wildcard(b"execute-api:*", b"execute-api:Invoke"));
    }
}
