//! `data-key reseal`: the second half of a data-key rotation. Secrets Manager keeps the new
//! key as `AWSCURRENT` and the old one as `AWSPREVIOUS`, and functions open values under
//! either; a value still sealed under the old key after the *next* rotation would no longer
//! open. So after each rotation, once every function has picked up the new key (at most
//! five minutes, `shared/src/secrets.rs`), this re-seals every value still under an older
//! version. Subscriptions written through the API are re-sealed then anyway.

use koppel_shared::retry::{Retry, Schedule};
use koppel_shared::store::{AttributeValue, Expr, Key, Update, from_item};
use koppel_shared::webhook::Subscription;
use koppel_shared::{Ctx, crypto};
use serde_json::json;

use crate::Output;

/// Five tries per subscription, at once, when a concurrent write keeps changing it.
const CHANGED_MEANWHILE: Schedule = Schedule::new(&[std::time::Duration::ZERO; 4]);

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
        let subscriptions = Expr::new("begins_with(pk, :ws) AND begins_with(sk, :sub)")
            .s(":ws", "WS#")
            .s(":sub", "SUB#");
        let page = ctx
            .store
            .scan(&subscriptions, start)
            .await
            .map_err(|e| e.to_string())?;
        for item in page.items {
            let sub: Subscription =
                from_item(item).map_err(|e| format!("a subscription item does not read: {e}"))?;
            seen += 1;
            if reseal_one(ctx, sub).await? {
                resealed += 1;
            }
        }
        start = page.next;
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
    let mut retry = Retry::new(&CHANGED_MEANWHILE);
    loop {
        let before = sub.clone();
        sub.reseal(&ctx.data_key)
            .await
            .map_err(|e| format!("{}: {e}", sub.subscription_id))?;
        if sub == before {
            return Ok(false);
        }
        let (text, basic_auth) = match &sub.basic_auth {
            Some(b) => (
                "SET headers = :h, signing_secrets = :s, basic_auth = :b",
                Some(to_av(b)?),
            ),
            None => ("SET headers = :h, signing_secrets = :s", None),
        };
        let mut sets = Expr::new(text)
            .value(":h", to_av(&sub.headers)?)
            .value(":s", to_av(&sub.signing_secrets)?);
        if let Some(b) = basic_auth {
            sets = sets.value(":b", b);
        }
        let reseal = Update::new(key.clone(), sets).when(Expr::version(before.version));
        if ctx
            .store
            .update_if(reseal)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(true);
        }
        match ctx.store.get::<Subscription>(&key).await {
            Ok(Some(now)) => sub = now,
            Ok(None) => return Ok(false),
            Err(e) => return Err(e.to_string()),
        }
        if !retry.wait().await {
            return Err(format!(
                "{}: changed {} times while being re-sealed; run again",
                sub.subscription_id,
                CHANGED_MEANWHILE.tries()
            ));
        }
    }
}

fn to_av<T: serde::Serialize>(v: &T) -> Result<AttributeValue, String> {
    serde_dynamo::to_attribute_value(v).map_err(|e| e.to_string())
}
