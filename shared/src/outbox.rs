//! Nothing lost: a state change and the event it causes are written in one transaction
//! (the event as an outbox item); then the event goes to the events queue and the outbox
//! item is removed. If sending fails, the item stays for the sweep to re-send. The event id
//! is fixed before the transaction, so every retry carries the same id.

use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde::{Deserialize, Serialize};

use crate::Ctx;
use crate::store::{Key, StoreError, item, put_new, with_gsi1};
use crate::time_util::{now, rfc3339};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `evt_<uuid v7>`: time-ordered, stable across retries.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub workspace_id: String,
    pub occurred_at: String,
    pub data: serde_json::Value,
}

impl Event {
    pub fn new(event_type: &str, workspace_id: &str, data: serde_json::Value) -> Self {
        Self {
            id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
            event_type: event_type.to_owned(),
            workspace_id: workspace_id.to_owned(),
            occurred_at: rfc3339(now()),
            data,
        }
    }
}

/// The outbox item for `event`, as a transaction step.
pub fn outbox_step(table: &str, event: &Event) -> Result<TransactWriteItem, StoreError> {
    let item = with_gsi1(
        item(&Key::outbox(&event.id), event)?,
        "OUTBOX".into(),
        format!("{}#{}", event.occurred_at, event.id),
    );
    Ok(put_new(table, item))
}

/// Writes `steps` and the outbox items for `events` atomically, then publishes the events.
/// A failure after the commit is logged, not returned: the state change has happened and
/// the sweep will publish what is left.
pub async fn commit(
    ctx: &Ctx,
    mut steps: Vec<TransactWriteItem>,
    events: &[Event],
) -> Result<(), StoreError> {
    for e in events {
        steps.push(outbox_step(ctx.store.table(), e)?);
    }
    ctx.store.transact(steps).await?;
    for e in events {
        if let Err(err) = publish(ctx, e).await {
            tracing::warn!(event_id = %e.id, error = %err, "event left in outbox for the sweep");
        }
    }
    Ok(())
}

/// Sends one event to the queue, then removes its outbox item.
pub async fn publish(ctx: &Ctx, event: &Event) -> Result<(), StoreError> {
    let body = serde_json::to_string(event).map_err(|e| StoreError::Shape(e.to_string()))?;
    let attr = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .expect("data type is set")
    };
    ctx.sqs
        .send_message()
        .queue_url(&ctx.settings.events_queue_url)
        .message_body(body)
        .message_attributes("event_id", attr(&event.id))
        .message_attributes("event_type", attr(&event.event_type))
        .send()
        .await
        .map_err(|e| StoreError::Sdk(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    ctx.store
        .client()
        .delete_item()
        .table_name(ctx.store.table())
        .set_key(Some(Key::outbox(&event.id).to_item()))
        .send()
        .await
        .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_item_is_keyed_by_event_id() {
        let e = Event::new("connector.created", "ws_1", serde_json::json!({"a": 1}));
        assert!(e.id.starts_with("evt_"));
        let step = outbox_step("t", &e).unwrap();
        let put = step.put().unwrap();
        let item = put.item();
        assert_eq!(item["pk"].as_s().unwrap(), &format!("OUTBOX#{}", e.id));
        assert_eq!(item["gsi1pk"].as_s().unwrap(), "OUTBOX");
        assert_eq!(item["type"].as_s().unwrap(), "connector.created");
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
    }
}
