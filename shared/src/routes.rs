//! Routes as data. Each function crate declares its routes once, in a table of [`Route`]s
//! (method, template resource path, the scope and level it needs, the handler); the
//! pipeline ([`crate::pipeline::serve`]) dispatches on it and makes the scope and level
//! check, a test holds the union of the tables to template.yaml, and the OpenAPI document
//! is generated from them.
//!
//! Handlers stay plain async functions over the principal, the request and `Ctx`; a
//! table entry adapts one with [`handler!`](crate::handler).

use std::future::Future;
use std::pin::Pin;

use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::error::ApiError;
use crate::model::{Level, Scope};
use crate::{Ctx, Principal};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a handler answers: a response with the table's body type, or an error.
pub type Answer<B> = Result<Response<B>, ApiError>;

/// A table entry's handler: for a credential's request (after the authorizer), or for a
/// public route (no authorizer in template.yaml: the API's own documentation).
pub enum Handler<B> {
    Credential(for<'a> fn(&'a Call<'a>) -> BoxFuture<'a, Answer<B>>),
    Public(for<'a> fn(&'a Request, &'a Ctx) -> BoxFuture<'a, Answer<B>>),
}

/// One request as a handler sees it: who calls, the request, the clients, and the path
/// parameters the route's path declares (all present: the pipeline answers 404 otherwise).
pub struct Call<'a> {
    pub p: &'a Principal,
    pub req: &'a Request,
    pub ctx: &'a Ctx,
}

impl Call<'_> {
    /// The path parameter `name` of the route's path (`{name}`).
    pub fn param(&self, name: &str) -> String {
        self.req
            .path_parameters()
            .first(name)
            .unwrap_or_default()
            .to_owned()
    }
}

/// A response body a route table may answer with: `lambda_http::Body`, or a function's
/// own streaming body.
pub trait RouteBody: From<Body> + Send + 'static {
    /// The whole body, when it is buffered: only such answers are kept for idempotent
    /// replay.
    fn buffered(&self) -> Option<&[u8]>;
}

impl RouteBody for Body {
    fn buffered(&self) -> Option<&[u8]> {
        Some(crate::body::body_bytes(self))
    }
}

pub struct Route<B = Body> {
    pub method: Method,
    /// The resource path exactly as template.yaml declares it (`/v1/cases/{id}`).
    pub path: &'static str,
    /// The scope a credential needs (`None`: any), checked before the handler runs.
    pub scope: Option<Scope>,
    /// The access level it needs (`handle` for writes through a connector).
    pub level: Level,
    pub summary: &'static str,
    pub handler: Handler<B>,
    /// What the OpenAPI document says beyond the above.
    pub doc: Doc,
}

/// A JSON Schema of a type, for the OpenAPI document: [`schema::<T>`](schema).
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// The schema of `T` (a reference into the document's components).
pub fn schema<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

/// Whether a route takes `If-Match`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// Checked when sent (412 if stale).
    Optional,
    /// Required (428 without, 412 if stale).
    Required,
}

/// A query parameter a route reads.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema type: `string`, `integer`, `boolean`; `array` is a repeated parameter.
    pub kind: &'static str,
}

/// A route's contract beyond method, path and access, for the OpenAPI document.
#[derive(Clone, Copy)]
pub struct Doc {
    /// The JSON request body, if the route reads one.
    pub request: Option<SchemaFn>,
    /// The success answer's body (`None`: no body, or not described).
    pub response: Option<SchemaFn>,
    /// The success status; 0 takes the method's usual one (201 for POST that creates is
    /// set explicitly).
    pub status: u16,
    /// The success answer's media type.
    pub media_type: &'static str,
    pub query: &'static [Query],
    pub precondition: Precondition,
    /// Answers with the resource's `ETag`.
    pub etag: bool,
    /// Problem statuses the route may answer beyond the ones every route of its kind may
    /// (401, 403, 429; 404 with path parameters; 400, 413, 415, 422 with a body).
    pub errors: &'static [u16],
    pub description: &'static str,
}

impl Doc {
    pub const DEFAULT: Doc = Doc {
        request: None,
        response: None,
        status: 0,
        media_type: "application/json",
        query: &[],
        precondition: Precondition::None,
        etag: false,
        errors: &[],
        description: "",
    };
}

/// A route without its handler: what the template check and the OpenAPI document read.
#[derive(Clone, Copy)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    pub scope: Option<Scope>,
    pub level: Level,
    pub summary: &'static str,
    pub public: bool,
    pub doc: Doc,
}

impl<B> Route<B> {
    /// Whether the route is served without a credential.
    pub fn is_public(&self) -> bool {
        matches!(self.handler, Handler::Public(_))
    }

    pub fn info(&self) -> RouteInfo {
        RouteInfo {
            method: method_name(&self.method),
            path: self.path,
            scope: self.scope,
            level: self.level,
            summary: self.summary,
            public: self.is_public(),
            doc: self.doc,
        }
    }

    /// The names of the path's `{parameters}`, in order.
    pub fn params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route of `routes` for `method` and the template resource path `resource`.
pub fn find<'r, B>(
    routes: &'r [Route<B>],
    method: &Method,
    resource: &str,
) -> Option<&'r Route<B>> {
    routes
        .iter()
        .find(|r| r.method == method && r.path == resource)
}

/// A table entry's handler from an expression over `c: &Call` that is a future of a
/// `Result<Response<_>, ApiError>` whose body converts into the table's:
/// `handler!(|c| get(c.p, c.ctx, &c.param("id")))`. Give the body type first for a table
/// of another body than `lambda_http::Body`: `handler!(Streamed, |c| …)`.
#[macro_export]
macro_rules! handler {
    (|$c:ident| $body:expr) => {
        $crate::handler!($crate::lambda_http::Body, |$c| $body)
    };
    ($b:ty, |$c:ident| $body:expr) => {{
        fn h<'a>(
            $c: &'a $crate::routes::Call<'a>,
        ) -> $crate::routes::BoxFuture<'a, $crate::routes::Answer<$b>> {
            Box::pin(async move { $body.await.map(|r| r.map(::core::convert::Into::into)) })
        }
        $crate::routes::Handler::Credential(h)
    }};
}

/// A public route's handler, from an expression over the request and `Ctx`:
/// `public_handler!(|req, ctx| openapi(req, ctx))`.
#[macro_export]
macro_rules! public_handler {
    (|$req:ident, $ctx:ident| $body:expr) => {{
        fn h<'a>(
            $req: &'a $crate::lambda_http::Request,
            $ctx: &'a $crate::Ctx,
        ) -> $crate::routes::BoxFuture<'a, $crate::routes::Answer<$crate::lambda_http::Body>>
        {
            Box::pin(async move { $body.await.map(|r| r.map(::core::convert::Into::into)) })
        }
        $crate::routes::Handler::Public(h)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn hello(_: &Principal) -> crate::pipeline::RouteResult {
        crate::pipeline::json(http::StatusCode::OK, &"hello")
    }

    static ROUTES: &[Route] = &[
        Route {
            method: Method::GET,
            path: "/v1/things/{id}/parts/{partId}",
            scope: Some(Scope::CasesRead),
            level: Level::Read,
            summary: "A part",
            handler: crate::handler!(|c| hello(c.p)),
            doc: Doc::DEFAULT,
        },
        Route {
            method: Method::POST,
            path: "/v1/things",
            scope: None,
            level: Level::Handle,
            summary: "A thing",
            handler: crate::handler!(|c| hello(c.p)),
            doc: Doc::DEFAULT,
        },
    ];

    #[test]
    fn routes_are_found_by_method_and_template_path() {
        let r = find(ROUTES, &Method::GET, "/v1/things/{id}/parts/{partId}").unwrap();
        assert_eq!(r.params().collect::<Vec<_>>(), ["id", "partId"]);
        assert!(find(ROUTES, &Method::GET, "/v1/things").is_none());
        assert_eq!(
            find(ROUTES, &Method::POST, "/v1/things").unwrap().summary,
            "A thing"
        );
    }
}
