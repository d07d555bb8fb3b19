//! `data-key reseal`: the second half of a data-key rotation. Secrets Manager keeps the new
//! key as `AWSCURRENT` and the old one as `AWSPREVIOUS`, and functions open values under
//! either; a value still sealed under the old key after the *next* rotation would no longer
//! open. So after each rotation, once every function has picked up the new key (at most
//! five minutes, `shared/src/secrets.rs`), this re-seals every value still under an older
//! version. Subscriptions written through the API are re-sealed then anyway.

use aws_sdk_dynamodb::types::AttributeValue;
use koppel_shared::store::{Key, StoreError};
use koppel_shared::webhook::Subscription;
use koppel_shared::{Ctx, crypto};
use serde_json::json;

use crate::Output;

/// Tries per subscription when a concurrent write keeps changing it.
const TRIES: usize = 5;

pub async fn reseal(ctx: &Ctx) -> Result<Output, String> {
    let version = crypto::ring(&ctx.data_key)
        .await
        .map_err(|e| e.to_string())?
        .current
        .version
        .clone();
    let (mut seen, mut resealed) = (0u64, 0u64);
    let mut start = None;
    loop {
        // A maintenance pass over the whole table: no index serves "every subscription".
        let page = ctx
            .store
            .client()
            .scan()
            .table_name(ctx.store.table())
            .filter_expression("begins_with(pk, :ws) AND begins_with(sk, :sub)")
            .expression_attribute_values(":ws", AttributeValue::S("WS#".into()))
            .expression_attribute_values(":sub", AttributeValue::S("SUB#".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(e.into_service_error()).to_string())?;
        for item in page.items() {
            let sub: Subscription = serde_dynamo::from_item(item.clone())
                .map_err(|e| format!("a subscription item does not read: {e}"))?;
            seen += 1;
            if reseal_one(ctx, sub).await? {
                resealed += 1;
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    Ok(Output {
        text: format!(
            "{resealed} of {seen} subscriptions re-sealed; all are under data-key version {version}"
        ),
        json: json!({ "subscriptions": seen, "resealed": resealed, "data_key_version": version }),
    })
}

/// Re-seals one subscription if it needs it; `true` if it was written. Only the sealed
/// values change (not its version or ETag), on condition that nothing wrote it meanwhile;
/// if something did, it is read again.
async fn reseal_one(ctx: &Ctx, mut sub: Subscription) -> Result<bool, String> {
    let key = Key::subscription(&sub.workspace_id, &sub.connector_id, &sub.subscription_id);
    for _ in 0..TRIES {
        let before = sub.clone();
        sub.reseal(&ctx.data_key)
            .await
            .map_err(|e| format!("{}: {e}", sub.subscription_id))?;
        if sub == before {
            return Ok(false);
        }
        let mut update = ctx
            .store
            .client()
            .update_item()
            .table_name(ctx.store.table())
            .set_key(Some(key.to_item()))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(before.version.to_string()))
            .expression_attribute_values(":h", to_av(&sub.headers)?)
            .expression_attribute_values(":s", to_av(&sub.signing_secrets)?);
        update = match &sub.basic_auth {
            Some(b) => update
                .update_expression("SET headers = :h, signing_secrets = :s, basic_auth = :b")
                .expression_attribute_values(":b", to_av(b)?),
            None => update.update_expression("SET headers = :h, signing_secrets = :s"),
        };
        match update
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(e.into_service_error()))
        {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict(_)) => match ctx.store.get::<Subscription>(&key).await {
                Ok(Some(now)) => sub = now,
                Ok(None) => return Ok(false),
                Err(e) => return Err(e.to_string()),
            },
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!(
        "{}: changed {TRIES} times while being re-sealed; run again",
        sub.subscription_id
    ))
}

fn to_av<T: serde::Serialize>(v: &T) -> Result<AttributeValue, String> {
    serde_dynamo::to_attribute_value(v).map_err(|e| e.to_string())
}
