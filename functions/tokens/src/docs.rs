//! The contract partners read, served without a credential: the committed OpenAPI
//! document at `/openapi.json` and the interactive documentation at `/docs` (Swagger UI,
//! vendored in `docs/swagger-ui/` and embedded in the binary: nothing is loaded from
//! elsewhere at run time).

use http::{StatusCode, header};
use koppel_shared::pipeline::{self, RouteResult};
use lambda_http::{Body, Request, Response};

/// The committed document; a test of koppel-local holds it equal to the one generated
/// from the route tables, so what is served is what review saw.
pub const OPENAPI: &str = include_str!("../../../openapi.json");

/// Swagger UI's bundle, then the page's own script, as one file.
pub const SCRIPT: &str = concat!(
    "/*! Swagger UI (npm swagger-ui-dist, Apache-2.0, SmartBear Software), version in functions/tokens/docs/swagger-ui/VERSION; licences beside it. */\n",
    include_str!("../docs/swagger-ui/swagger-ui-bundle.js"),
    "\n;\n",
    include_str!("../docs/koppel-docs.js"),
);

/// Swagger UI's stylesheet, then the page's own.
pub const STYLESHEET: &str = concat!(
    include_str!("../docs/swagger-ui/swagger-ui.css"),
    "\n",
    include_str!("../docs/koppel-docs.css"),
);

const PAGE: &str = include_str!("../docs/page.html");

/// Only this deployment's own script, styles and API; inline styles because Swagger UI
/// sets some, `data:` images for its icons.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn openapi(_: &Request) -> RouteResult {
    Ok(text(
        "application/json",
        OPENAPI,
        "public, max-age=300",
        None,
    ))
}

pub async fn page(req: &Request) -> RouteResult {
    Ok(text(
        "text/html; charset=utf-8",
        page_html(&base(req)),
        "no-cache",
        Some(PAGE_POLICY),
    ))
}

pub async fn script(_: &Request) -> RouteResult {
    Ok(text(
        "text/javascript; charset=utf-8",
        SCRIPT,
        "public, max-age=3600",
        None,
    ))
}

pub async fn stylesheet(_: &Request) -> RouteResult {
    Ok(text(
        "text/css; charset=utf-8",
        STYLESHEET,
        "public, max-age=3600",
        None,
    ))
}

/// What precedes the route in the path the client called: `/live` on an execute-api URL,
/// empty on a custom domain mapped at the root. The page's links start from it, so they
/// work with or without a trailing slash and under any base.
fn base(req: &Request) -> String {
    pipeline::base_path(&pipeline::called_path(req), &pipeline::resource(req)).to_owned()
}

/// The page, with its links under `base`.
pub fn page_html(base: &str) -> String {
    PAGE.replace("{{base}}", &attribute(base))
}

/// `s` safe inside a double-quoted HTML attribute or text.
fn attribute(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn text(
    content_type: &str,
    body: impl Into<String>,
    cache: &str,
    policy: Option<&str>,
) -> Response<Body> {
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if let Some(p) = policy {
        b = b.header(header::CONTENT_SECURITY_POLICY, p);
    }
    b.body(Body::Text(body.into()))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_everything_under_the_base_it_was_called_with() {
        let html = page_html("/live");
        assert!(html.contains(r#"<script src="/live/docs/assets/docs.js">"#));
        assert!(html.contains(r#"href="/live/docs/assets/docs.css""#));
        assert!(html.contains(r#"data-base="/live""#));
        assert!(html.contains(r#"href="/live/openapi.json""#));
        assert!(!html.contains("{{"));
        let root = page_html("");
        assert!(root.contains(r#"<script src="/docs/assets/docs.js">"#));
        // Nothing from another origin: no CDN at run time.
        for h in [&html, &root] {
            assert!(!h.contains("http://") && !h.contains("https://") && !h.contains("//cdn"));
            // Inline scripts would break the page's policy.
            assert_eq!(h.matches("<script").count(), 1);
        }
    }

    #[test]
    fn a_base_cannot_break_out_of_its_attribute() {
        let html = page_html(r#"/x"><script>alert('1')</script>"#);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("/x&quot;&gt;&lt;script&gt;alert(&#39;1&#39;)"));
    }

    #[test]
    fn the_served_document_is_openapi_3_1_with_its_own_public_routes() {
        let d: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(d["openapi"], "3.1.0");
        for path in [
            "/openapi.json",
            "/docs",
            "/docs/assets/docs.js",
            "/docs/assets/docs.css",
        ] {
            let op = &d["paths"][path]["get"];
            assert!(op.is_object(), "{path} is not in openapi.json");
            assert_eq!(op["security"], serde_json::json!([]), "{path} is public");
        }
    }

    #[test]
    fn the_assets_are_swagger_ui_and_the_page_script() {
        assert!(SCRIPT.contains("SwaggerUIBundle"));
        assert!(SCRIPT.trim_end().ends_with("})();"));
        assert!(SCRIPT.contains("landOnFragment"));
        assert!(STYLESHEET.contains(".swagger-ui"));
        assert!(STYLESHEET.contains(".koppel-header"));
    }

    #[test]
    fn the_page_policy_allows_only_this_origin() {
        for d in PAGE_POLICY.split(';') {
            let d = d.trim();
            assert!(!d.contains('*') && !d.contains("http"), "{d}");
            assert!(!d.contains("unsafe-eval"), "{d}");
        }
        assert!(PAGE_POLICY.contains("script-src 'self';"));
        assert!(PAGE_POLICY.contains("connect-src 'self'"));
    }
}
