// The streaming runtime's future type is deeply nested.
#![recursion_limit = "256"]

use koppel_shared::Ctx;
use lambda_http::{Error, service_fn};

/// A streaming runtime: the CSV export sends page after page instead of one buffered body
/// (every cases route is `ResponseTransferMode: STREAM` in template.yaml).
#[tokio::main]
async fn main() -> Result<(), Error> {
    koppel_shared::telemetry::init();
    let ctx: &'static Ctx = Box::leak(Box::new(Ctx::from_env().await?));
    lambda_http::run_with_streaming_response(service_fn(move |req| async move {
        Ok::<_, Error>(cases::handler(req, ctx).await)
    }))
    .await
}
