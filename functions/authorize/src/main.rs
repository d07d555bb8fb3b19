use authorize::handler;
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use koppel_shared::Ctx;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    koppel_shared::telemetry::init();
    let ctx: &'static Ctx = Box::leak(Box::new(Ctx::from_env().await?));
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            handler(ev.payload, ctx).await
        },
    ))
    .await
}
