use koppel_shared::outbox::SweepLimits;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use webhook_dispatch::invocation::Invocation;
use webhook_dispatch::{Dispatch, handler, sweep};

#[tokio::main]
async fn main() -> Result<(), Error> {
    koppel_shared::telemetry::init();
    let sdk = koppel_shared::Ctx::sdk_config().await;
    let d: &'static Dispatch = Box::leak(Box::new(Dispatch::from_vars(&sdk, |k| {
        std::env::var(k).ok()
    })?));
    let limits = SweepLimits::from_vars(|k| std::env::var(k).ok())?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(match Invocation::parse(ev.payload)? {
            Invocation::Queue(batch) => serde_json::to_value(handler(batch, d).await)?,
            Invocation::Schedule(e) => {
                serde_json::to_value(sweep::handler(e, &d.ctx, &limits).await?)?
            }
        })
    }))
    .await
}
