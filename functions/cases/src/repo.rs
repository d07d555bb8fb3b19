//! Cases, their history and saved searches in the table (keys in `shared/src/store.rs`).

use aws_sdk_dynamodb::types::{AttributeValue, Put, PutRequest, TransactWriteItem, WriteRequest};
use koppel_shared::Ctx;
use koppel_shared::cases::{Case, SavedSearch};
use koppel_shared::outbox::{self, Event};
use koppel_shared::store::{Item, Key, Store, StoreError, item, put_new};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::query::Order;

/// One field of a version: its path (`subject`, `requester.bsn`, `attributes.x`) and its
/// values before and after (`null`: absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Change {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// One version of a case: what changed, when, by which employee, through which connector
/// and credential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryEntry {
    pub version: u64,
    pub at: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    pub credential_id: String,
    pub changes: Vec<Change>,
}

pub async fn get(store: &Store, ws: &str, id: u64) -> Result<Option<Case>, StoreError> {
    store.get(&Key::case(ws, id)).await
}

/// One page of a workspace's cases in id order, after `after` (exclusive): at most `limit`
/// items read, or without one as many as DynamoDB returns at once (1 MB). Returns the
/// cases and whether the partition has more.
pub async fn page(
    store: &Store,
    ws: &str,
    order: Order,
    after: Option<u64>,
    limit: Option<i32>,
) -> Result<(Vec<Case>, bool), StoreError> {
    let bound = match (order, after) {
        (_, Some(id)) => Key::case(ws, id).sk,
        (Order::Asc, None) => "CASE#".to_owned(),
        // `$` sorts right after `#`: below it is every case key.
        (Order::Desc, None) => "CASE$".to_owned(),
    };
    let cond = match order {
        Order::Asc => "pk = :pk AND sk > :b",
        Order::Desc => "pk = :pk AND sk < :b",
    };
    let out = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression(cond)
        .expression_attribute_values(":pk", AttributeValue::S(Key::cases_partition(ws)))
        .expression_attribute_values(":b", AttributeValue::S(bound))
        .scan_index_forward(order == Order::Asc)
        .set_limit(limit)
        .send()
        .await
        .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
    let cases = out
        .items()
        .iter()
        .map(|i| serde_dynamo::from_item(i.clone()).map_err(|e| StoreError::Shape(e.to_string())))
        .collect::<Result<Vec<Case>, _>>()?;
    let more = out.last_evaluated_key().is_some_and(|k| !k.is_empty());
    Ok((cases, more))
}

pub fn case_item(ws: &str, c: &Case) -> Result<Item, StoreError> {
    item(&Key::case(ws, c.id), c)
}

fn history_step(
    ws: &str,
    table: &str,
    id: u64,
    h: &HistoryEntry,
) -> Result<TransactWriteItem, StoreError> {
    Ok(put_new(
        table,
        item(&Key::case_history(ws, id, h.version), h)?,
    ))
}

/// Creates a case with its first history entry and its events, atomically.
pub async fn create(
    ctx: &Ctx,
    ws: &str,
    c: &Case,
    h: &HistoryEntry,
    events: &[Event],
) -> Result<(), StoreError> {
    let table = ctx.store.table();
    let steps = vec![
        put_new(table, case_item(ws, c)?),
        history_step(ws, table, c.id, h)?,
    ];
    outbox::commit(ctx, steps, events).await
}

/// Replaces a case read at `expected_version` (else `Conflict`), with its history entry and
/// events, atomically.
pub async fn update(
    ctx: &Ctx,
    ws: &str,
    c: &Case,
    expected_version: u64,
    h: &HistoryEntry,
    events: &[Event],
) -> Result<(), StoreError> {
    let table = ctx.store.table();
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(case_item(ws, c)?))
        .condition_expression("version = :v")
        .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
        .build()
        .expect("table, item and condition are set");
    let steps = vec![
        TransactWriteItem::builder().put(put).build(),
        history_step(ws, table, c.id, h)?,
    ];
    outbox::commit(ctx, steps, events).await
}

/// A case's history in version order, after version `after`, at most `limit` entries, and
/// whether there is more.
pub async fn history(
    store: &Store,
    ws: &str,
    id: u64,
    after: u64,
    limit: i32,
) -> Result<(Vec<HistoryEntry>, bool), StoreError> {
    let out = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk AND sk > :b")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(Key::case_history_partition(ws, id)),
        )
        .expression_attribute_values(":b", AttributeValue::S(Key::case_history(ws, id, after).sk))
        .limit(limit)
        .send()
        .await
        .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
    let entries = out
        .items()
        .iter()
        .map(|i| serde_dynamo::from_item(i.clone()).map_err(|e| StoreError::Shape(e.to_string())))
        .collect::<Result<Vec<HistoryEntry>, _>>()?;
    Ok((
        entries,
        out.last_evaluated_key().is_some_and(|k| !k.is_empty()),
    ))
}

/// Writes imported cases (ids already reserved) in batches of 25, retrying what DynamoDB
/// leaves unprocessed a bounded number of times.
pub async fn import(store: &Store, ws: &str, cases: &[Case]) -> Result<(), StoreError> {
    for chunk in cases.chunks(25) {
        let mut requests = chunk
            .iter()
            .map(|c| {
                let put = PutRequest::builder()
                    .set_item(Some(case_item(ws, c)?))
                    .build()
                    .expect("item is set");
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for attempt in 0.. {
            let out = store
                .client()
                .batch_write_item()
                .request_items(store.table(), requests)
                .send()
                .await
                .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
            requests = out
                .unprocessed_items()
                .and_then(|m| m.get(store.table()))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                break;
            }
            if attempt == 8 {
                return Err(StoreError::Sdk("batch write kept items unprocessed".into()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
    }
    Ok(())
}

pub async fn saved_searches(store: &Store, ws: &str) -> Result<Vec<SavedSearch>, StoreError> {
    store.query_prefix(ws, "SEARCH#").await
}

pub fn search_item(s: &SavedSearch) -> Result<Item, StoreError> {
    item(&Key::saved_search(&s.workspace_id, &s.saved_search_id), s)
}
