//! Store access for the endpoints function. Keys (beside those in shared/src/store.rs):
//!
//! | item | pk | sk | read by |
//! |---|---|---|---|
//! | service version | `WS#<ws>` | `SVCVER#<id>` | list (paged query of the `SVCVER#` prefix), retire |
//! | namespace claim | `WS#<ws>` | `SVCNS#<namespace>` | unique namespace per workspace; namespace → version |
//! | mandate | `WS#<ws>` | `MANDATE#<token>` | endpoint writes (get by the body's token), list (paged query of the `MANDATE#` prefix) |
//! | endpoint | `WS#<ws>` | `ENDPOINT#<id>` | get, update, list (paged query of the `ENDPOINT#` prefix) |
//! | slot | `WS#<ws>` | `EPSLOT#<administration>#<namespace>` | overlap check for one pair (holds only the endpoints that have not ended) |
//! | list entry | `WS#<ws>#EPADM#<administration>` | `EP#<start_date>#<id>` | list for one pair, every endpoint ever registered: paged query of the administration's partition (start-date order), keeping the namespace |
//!
//! A list entry is written in the endpoint's own transaction (moved when its start date
//! changes), so it always agrees with the endpoint. It is a partition of its own because an
//! administration id is free text: as the whole rest of a partition key it needs no escaping,
//! whereas a sort-key prefix holding it could match another administration's.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use koppel_shared::Ctx;
use koppel_shared::paging::Pager;
use koppel_shared::store::{Key, Page, PageQuery, StoreError, item, put_new};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{Endpoint, ListEntry, Mandate, ServiceVersion, Slot};

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

/// The partition of an administration's list entries.
fn administration_pk(ws: &str, administration: &str) -> String {
    format!("WS#{ws}#EPADM#{administration}")
}
const LIST_ENTRY: &str = "EP#";

/// Where an endpoint's list entry is: its position in the list is `<start_date>#<id>`.
pub fn list_entry_key(ws: &str, administration: &str, start_date: &str, id: &str) -> Key {
    Key {
        pk: administration_pk(ws, administration),
        sk: format!("{LIST_ENTRY}{start_date}#{id}"),
    }
}

/// The steps that keep `endpoint`'s list entry with it: write it where its start date puts
/// it, and remove the one under the start date it had (`before`), if that moved.
pub fn list_entry_steps(
    table: &str,
    endpoint: &Endpoint,
    before: Option<&Endpoint>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let ws = &endpoint.workspace_id;
    let entry = ListEntry::of(endpoint);
    let key = list_entry_key(
        ws,
        &endpoint.administration_id,
        &entry.start_date,
        &entry.id,
    );
    let mut steps = vec![plain_put(table, &key, &entry)?];
    if let Some(b) = before.filter(|b| b.start_date != endpoint.start_date) {
        let old = list_entry_key(ws, &b.administration_id, &b.start_date, &b.id);
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(old.to_item()))
            .build()
            .expect("table and key are set");
        steps.push(TransactWriteItem::builder().delete(delete).build());
    }
    Ok(steps)
}

fn plain_put<T: Serialize>(
    table: &str,
    key: &Key,
    value: &T,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item(key, value)?))
        .build()
        .expect("table and item are set");
    Ok(TransactWriteItem::builder().put(put).build())
}

/// One page of the list entries of `administration`, in (start date, id) order, those
/// `keep` accepts, where `pager` says.
pub async fn list_entries(
    ctx: &Ctx,
    ws: &str,
    administration: &str,
    pager: &Pager,
    keep: impl Fn(&ListEntry) -> bool,
) -> Result<Page<ListEntry>, StoreError> {
    let q = PageQuery {
        pk: administration_pk(ws, administration),
        prefix: LIST_ENTRY,
        after: pager.after.as_deref(),
        limit: pager.limit,
        forward: true,
    };
    ctx.store.page(&q, keep).await
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

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn endpoint(start: &str, end: Option<&str>) -> Endpoint {
        Endpoint {
            workspace_id: "ws_1".into(),
            id: "e1".into(),
            connector_id: "con".into(),
            mandate_token: "m".into(),
            administration_id: "ADM#1".into(),
            service_version_namespace: "https://ns.example/v1".into(),
            url: "https://t2.nl".into(),
            attributes: None,
            start_date: start.into(),
            end_date: end.map(Into::into),
            created_at: "c".into(),
            updated_at: "u".into(),
            version: 1,
        }
    }

    fn s(v: &AttributeValue) -> &str {
        v.as_s().unwrap()
    }

    #[test]
    fn a_list_entry_follows_its_endpoint_start_date() {
        let now = endpoint("2027-03-02", Some("2027-03-09"));
        // New, or the same start: one put, where the start date puts it.
        for before in [None, Some(endpoint("2027-03-02", None))] {
            let steps = list_entry_steps("t", &now, before.as_ref()).unwrap();
            assert_eq!(steps.len(), 1);
            let put = steps[0].put().unwrap();
            assert_eq!(s(&put.item()["pk"]), "WS#ws_1#EPADM#ADM#1");
            assert_eq!(s(&put.item()["sk"]), "EP#2027-03-02#e1");
            assert_eq!(s(&put.item()["end_date"]), "2027-03-09");
            assert_eq!(
                s(&put.item()["service_version_namespace"]),
                "https://ns.example/v1"
            );
        }
        // A moved start: the entry under the old one goes in the same transaction.
        let before = endpoint("2027-03-01", None);
        let steps = list_entry_steps("t", &now, Some(&before)).unwrap();
        assert_eq!(steps.len(), 2);
        let gone = steps[1].delete().unwrap();
        assert_eq!(s(&gone.key()["pk"]), "WS#ws_1#EPADM#ADM#1");
        assert_eq!(s(&gone.key()["sk"]), "EP#2027-03-01#e1");
    }
}
