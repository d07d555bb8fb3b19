//! Store access for the connectors function. Keys are in shared/src/store.rs (connector
//! `WS#<ws>`/`CONNECTOR#<con>`, issuer claim `ISSUER#<iss>`, subscription
//! `WS#<ws>`/`SUB#<con>#<sub>`). Every change is one transaction under a version condition,
//! so of two concurrent writers one wins and the other gets a `Conflict` (→ 412).

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use koppel_shared::Ctx;
use koppel_shared::model::Connector;
use koppel_shared::store::{Key, Page, PageQuery, StoreError, item, put_new};
use koppel_shared::webhook::Subscription;

/// Puts `item` if the stored version is `expected` (`None`: only if the key is free).
fn versioned_put(
    ctx: &Ctx,
    item: koppel_shared::store::Item,
    expected: Option<u64>,
) -> TransactWriteItem {
    let Some(v) = expected else {
        return put_new(ctx.store.table(), item);
    };
    let put = Put::builder()
        .table_name(ctx.store.table())
        .set_item(Some(item))
        .condition_expression("version = :v")
        .expression_attribute_values(":v", AttributeValue::N(v.to_string()))
        .build()
        .expect("table, item and condition are set");
    TransactWriteItem::builder().put(put).build()
}

fn delete(
    ctx: &Ctx,
    key: &Key,
    condition: Option<(&str, &str, AttributeValue)>,
) -> TransactWriteItem {
    let mut d = Delete::builder()
        .table_name(ctx.store.table())
        .set_key(Some(key.to_item()));
    if let Some((expr, name, value)) = condition {
        d = d
            .condition_expression(expr)
            .expression_attribute_values(name, value);
    }
    TransactWriteItem::builder()
        .delete(d.build().expect("table and key are set"))
        .build()
}

/// Saves a connector: created when `expected` is `None`, else only over that version. A
/// changed JWT issuer is claimed (unique across Koppel) and the old claim freed in the same
/// transaction.
pub async fn save_connector(
    ctx: &Ctx,
    con: &Connector,
    expected: Option<u64>,
    previous_issuer: Option<&str>,
) -> Result<(), StoreError> {
    let key = Key::connector(&con.workspace_id, &con.connector_id);
    let mut steps = vec![versioned_put(ctx, item(&key, con)?, expected)];
    let issuer = con.jwt.as_ref().map(|j| j.issuer.as_str());
    if issuer != previous_issuer {
        let mine = || AttributeValue::S(con.connector_id.clone());
        if let Some(iss) = issuer {
            let claim = serde_json::json!({
                "workspace_id": con.workspace_id, "connector_id": con.connector_id,
            });
            let put = Put::builder()
                .table_name(ctx.store.table())
                .set_item(Some(item(&Key::issuer(iss), &claim)?))
                .condition_expression("attribute_not_exists(pk) OR connector_id = :c")
                .expression_attribute_values(":c", mine())
                .build()
                .expect("complete put");
            steps.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(old) = previous_issuer {
            steps.push(delete(
                ctx,
                &Key::issuer(old),
                Some(("connector_id = :c", ":c", mine())),
            ));
        }
    }
    ctx.store.transact(steps).await
}

/// Deletes a connector at `version` with its issuer claim and its subscriptions, at once.
/// Its credentials fail from then on: the authorizer finds no connector (401).
pub async fn delete_connector(
    ctx: &Ctx,
    con: &Connector,
    subscriptions: &[Subscription],
) -> Result<(), StoreError> {
    let mut steps = vec![delete(
        ctx,
        &Key::connector(&con.workspace_id, &con.connector_id),
        Some((
            "version = :v",
            ":v",
            AttributeValue::N(con.version.to_string()),
        )),
    )];
    if let Some(j) = &con.jwt {
        steps.push(delete(
            ctx,
            &Key::issuer(&j.issuer),
            Some((
                "connector_id = :c",
                ":c",
                AttributeValue::S(con.connector_id.clone()),
            )),
        ));
    }
    for s in subscriptions {
        steps.push(delete(ctx, &sub_key(s), None));
    }
    ctx.store.transact(steps).await
}

/// A page of a workspace's connectors in id order, after the connector id `after`.
pub async fn connectors(
    ctx: &Ctx,
    ws: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<Connector>, StoreError> {
    let q = PageQuery::workspace(ws, "CONNECTOR#", after, limit);
    ctx.store.page(&q, |_| true).await
}

fn sub_key(s: &Subscription) -> Key {
    Key::subscription(&s.workspace_id, &s.connector_id, &s.subscription_id)
}

pub async fn subscription(
    ctx: &Ctx,
    ws: &str,
    con: &str,
    sub: &str,
) -> Result<Option<Subscription>, StoreError> {
    ctx.store.get(&Key::subscription(ws, con, sub)).await
}

pub async fn subscriptions(
    ctx: &Ctx,
    ws: &str,
    con: &str,
) -> Result<Vec<Subscription>, StoreError> {
    ctx.store.query_prefix(ws, &format!("SUB#{con}#")).await
}

/// Saves a subscription (created when `expected` is `None`) while its connector still
/// exists, so a subscription never outlives a concurrently deleted connector.
pub async fn save_subscription(
    ctx: &Ctx,
    s: &Subscription,
    expected: Option<u64>,
) -> Result<(), StoreError> {
    let con_exists = aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(ctx.store.table())
        .set_key(Some(
            Key::connector(&s.workspace_id, &s.connector_id).to_item(),
        ))
        .condition_expression("attribute_exists(pk)")
        .build()
        .expect("complete check");
    ctx.store
        .transact(vec![
            versioned_put(ctx, item(&sub_key(s), s)?, expected),
            TransactWriteItem::builder()
                .condition_check(con_exists)
                .build(),
        ])
        .await
}

pub async fn delete_subscription(ctx: &Ctx, s: &Subscription) -> Result<(), StoreError> {
    ctx.store
        .transact(vec![delete(
            ctx,
            &sub_key(s),
            Some((
                "version = :v",
                ":v",
                AttributeValue::N(s.version.to_string()),
            )),
        )])
        .await
}
