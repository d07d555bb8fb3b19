//! Store access for the endpoints function. Keys (beside those in shared/src/store.rs):
//!
//! | item | pk | sk | read by |
//! |---|---|---|---|
//! | service version | `WS#<ws>` | `SVCVER#<id>` | list (paged query of the `SVCVER#` prefix), retire |
//! | namespace claim | `WS#<ws>` | `SVCNS#<namespace>` | unique namespace per workspace; namespace → version |
//! | mandate | `WS#<ws>` | `MANDATE#<token>` | endpoint writes (get by the body's token), list (paged query of the `MANDATE#` prefix) |
//! | endpoint | `WS#<ws>` | `ENDPOINT#<id>` | get, update, list (paged query of the `ENDPOINT#` prefix) |
//! | slot | `WS#<ws>` | `EPSLOT#<administration>#<namespace>` | overlap check and list for one pair |

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use koppel_shared::Ctx;
use koppel_shared::paging::Pager;
use koppel_shared::store::{Key, Page, PageQuery, StoreError, item, put_new};
use serde::de::DeserializeOwned;

use crate::model::{Endpoint, Mandate, ServiceVersion, Slot};

fn key(ws: &str, sk: String) -> Key {
    Key {
        pk: format!("WS#{ws}"),
        sk,
    }
}

pub fn service_version_key(ws: &str, id: &str) -> Key {
    key(ws, format!("SVCVER#{id}"))
}
pub fn namespace_key(ws: &str, ns: &str) -> Key {
    key(ws, format!("SVCNS#{ns}"))
}
pub fn mandate_key(ws: &str, token: &str) -> Key {
    key(ws, format!("MANDATE#{token}"))
}
pub fn endpoint_key(ws: &str, id: &str) -> Key {
    key(ws, format!("ENDPOINT#{id}"))
}
pub fn slot_key(ws: &str, administration: &str, ns: &str) -> Key {
    key(ws, format!("EPSLOT#{administration}#{ns}"))
}

/// One page of a workspace's items whose sort key starts with `prefix` (in sort-key order),
/// those `keep` accepts, where `pager` says.
pub async fn page<T: DeserializeOwned>(
    ctx: &Ctx,
    ws: &str,
    prefix: &str,
    pager: &Pager,
    keep: impl Fn(&T) -> bool,
) -> Result<Page<T>, StoreError> {
    let q = PageQuery::workspace(ws, prefix, pager.after.as_deref(), pager.limit);
    ctx.store.page(&q, keep).await
}

/// The service version registered for `namespace`, if any.
pub async fn service_version_by_namespace(
    ctx: &Ctx,
    ws: &str,
    ns: &str,
) -> Result<Option<ServiceVersion>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Claim {
        id: String,
    }
    match ctx.store.get::<Claim>(&namespace_key(ws, ns)).await? {
        Some(c) => ctx.store.get(&service_version_key(ws, &c.id)).await,
        None => Ok(None),
    }
}

/// The steps that create a service version and claim its namespace.
pub fn create_service_version_steps(
    ctx: &Ctx,
    sv: &ServiceVersion,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let t = ctx.store.table();
    let claim = serde_json::json!({ "id": sv.id });
    Ok(vec![
        put_new(t, item(&service_version_key(&sv.workspace_id, &sv.id), sv)?),
        put_new(
            t,
            item(&namespace_key(&sv.workspace_id, &sv.namespace), &claim)?,
        ),
    ])
}

/// A put of `value` that requires the item to be at `expected` version (0: absent).
pub fn versioned_put<T: serde::Serialize>(
    ctx: &Ctx,
    key: &Key,
    value: &T,
    expected: u64,
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder()
        .table_name(ctx.store.table())
        .set_item(Some(item(key, value)?));
    put = if expected == 0 {
        put.condition_expression("attribute_not_exists(pk)")
    } else {
        put.condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
    };
    Ok(TransactWriteItem::builder()
        .put(put.build().expect("table, item and condition are set"))
        .build())
}

pub async fn slot(ctx: &Ctx, ws: &str, administration: &str, ns: &str) -> Result<Slot, StoreError> {
    Ok(ctx
        .store
        .get(&slot_key(ws, administration, ns))
        .await?
        .unwrap_or_default())
}

pub async fn endpoint(ctx: &Ctx, ws: &str, id: &str) -> Result<Option<Endpoint>, StoreError> {
    ctx.store.get(&endpoint_key(ws, id)).await
}

pub async fn mandate(ctx: &Ctx, ws: &str, token: &str) -> Result<Option<Mandate>, StoreError> {
    ctx.store.get(&mandate_key(ws, token)).await
}
