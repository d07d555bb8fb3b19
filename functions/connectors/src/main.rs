use koppel_shared::Ctx;
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    koppel_shared::telemetry::init();
    let ctx: &'static Ctx = Box::leak(Box::new(Ctx::from_env().await?));
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Error>(connectors::handler(req, ctx).await)
    }))
    .await
}
