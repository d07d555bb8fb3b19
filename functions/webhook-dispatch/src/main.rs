use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use webhook_dispatch::{Dispatch, handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    koppel_shared::telemetry::init();
    let sdk = koppel_shared::Ctx::sdk_config().await;
    let d: &'static Dispatch = Box::leak(Box::new(Dispatch::from_vars(&sdk, |k| {
        std::env::var(k).ok()
    })?));
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handler(ev.payload, d).await)
    }))
    .await
}
