//! Cases, their history and saved searches in the table (keys in `shared/src/store.rs`).

use aws_sdk_dynamodb::types::TransactWriteItem;
use koppel_shared::Ctx;
use koppel_shared::cases::{Case, SavedSearch};
use koppel_shared::outbox::{self, Event};
use koppel_shared::store::{
    Expr, Item, Key, Query, Store, StoreError, from_item, item, put_new, versioned_put,
};
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
    let q = Query::new(
        Expr::new(cond)
            .s(":pk", Key::cases_partition(ws))
            .s(":b", bound),
    )
    .forward(order == Order::Asc)
    .limit(limit);
    let out = store.query(&q).await?;
    let more = out.next.is_some();
    let cases = out
        .items
        .into_iter()
        .map(from_item)
        .collect::<Result<Vec<Case>, _>>()?;
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
    let steps = vec![
        versioned_put(table, case_item(ws, c)?, Some(expected_version)),
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
    let q = Query::new(
        Expr::new("pk = :pk AND sk > :b")
            .s(":pk", Key::case_history_partition(ws, id))
            .s(":b", Key::case_history(ws, id, after).sk),
    )
    .limit(Some(limit));
    let out = store.query(&q).await?;
    let more = out.next.is_some();
    let entries = out
        .items
        .into_iter()
        .map(from_item)
        .collect::<Result<Vec<HistoryEntry>, _>>()?;
    Ok((entries, more))
}

/// Writes imported cases (ids already reserved) in batches, retrying what DynamoDB leaves
/// unprocessed a bounded number of times.
pub async fn import(store: &Store, ws: &str, cases: &[Case]) -> Result<(), StoreError> {
    let items = cases
        .iter()
        .map(|c| case_item(ws, c))
        .collect::<Result<Vec<_>, _>>()?;
    store.batch_put(items).await
}

pub async fn saved_searches(store: &Store, ws: &str) -> Result<Vec<SavedSearch>, StoreError> {
    store.query_prefix(ws, "SEARCH#").await
}

pub fn search_item(s: &SavedSearch) -> Result<Item, StoreError> {
    item(&Key::saved_search(&s.workspace_id, &s.saved_search_id), s)
}
