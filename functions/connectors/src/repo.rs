//! Store access for the connectors function. Keys are in shared/src/store.rs (connector
//! `WS#<ws>`/`CONNECTOR#<con>`, issuer claim `ISSUER#<iss>`, subscription
//! `WS#<ws>`/`SUB#<con>#<sub>`). Every change is one transaction under a version condition,
//! so of two concurrent writers one wins and the other gets a `Conflict` (→ 412).

use koppel_shared::Ctx;
use koppel_shared::model::Connector;
use koppel_shared::store::{
    Expr, Key, Page, PageQuery, StoreError, check_step, delete_step, item, versioned_put,
};
use koppel_shared::webhook::Subscription;

/// Deletes a connector at `version` with its issuer claim and its subscriptions, at once.
/// Its credentials fail from then on: the authorizer finds no connector (401).
pub async fn delete_connector(
    ctx: &Ctx,
    con: &Connector,
    subscriptions: &[Subscription],
) -> Result<(), StoreError> {
    let t = ctx.store.table();
    let mut steps = vec![delete_step(
        t,
        &Key::connector(&con.workspace_id, &con.connector_id),
        Some(Expr::version(con.version)),
    )];
    if let Some(j) = &con.jwt {
        let held = Expr::new("connector_id = :c").s(":c", con.connector_id.clone());
        steps.push(delete_step(t, &Key::issuer(&j.issuer), Some(held)));
    }
    for s in subscriptions {
        steps.push(delete_step(t, &sub_key(s), None));
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
    let t = ctx.store.table();
    let con_key = Key::connector(&s.workspace_id, &s.connector_id);
    ctx.store
        .transact(vec![
            versioned_put(t, item(&sub_key(s), s)?, expected),
            check_step(t, &con_key, Expr::exists()),
        ])
        .await
}

pub async fn delete_subscription(ctx: &Ctx, s: &Subscription) -> Result<(), StoreError> {
    let step = delete_step(
        ctx.store.table(),
        &sub_key(s),
        Some(Expr::version(s.version)),
    );
    ctx.store.transact(vec![step]).await
}
