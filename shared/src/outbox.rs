//! Nothing lost: a state change and the event it causes are written in one transaction
//! (the event as an outbox item); then the event goes to the events queue. The queue's
//! consumer removes the outbox item once it has handled the event ([`handled`]), so the
//! request that made the change waits for no third DynamoDB call. If sending fails, the item
//! stays for the sweep to re-send. The event id is fixed before the transaction, so every
//! retry carries the same id.
//!
//! The sweep ([`sweep`]) re-sends what a crash or a queue outage left behind, and removes
//! each item it re-sent (an event its consumer keeps failing must not be re-sent on every
//! run). It may also re-send an event still waiting in the queue longer than the sweep's
//! minimum age: delivery is at-least-once, fan-out records each (event, subscription) once,
//! and receivers de-duplicate on the event id (`webhook-id`).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_sqs::types::MessageAttributeValue;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Ctx;
use crate::store::{Expr, Item, Key, Query, StoreError, item, put_new, with_gsi1};
use crate::time_util::{now, rfc3339};

/// The gsi1 partition of every outbox item; its sort key is `<occurred_at>#<event id>`.
const OUTBOX_PARTITION: &str = "OUTBOX";

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
        OUTBOX_PARTITION.into(),
        format!("{}#{}", event.occurred_at, event.id),
    );
    Ok(put_new(table, item))
}

/// Writes `steps` and the outbox items for `events` atomically, then sends the events.
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
        if let Err(err) = send(ctx, e).await {
            tracing::warn!(event_id = %e.id, error = %err, "event left in outbox for the sweep");
        }
    }
    Ok(())
}

/// Sends one event to the queue, then removes its outbox item (the sweep's re-send).
pub async fn publish(ctx: &Ctx, event: &Event) -> Result<(), StoreError> {
    send(ctx, event).await?;
    handled(ctx, &event.id).await
}

/// The events queue's consumer has handled `event_id`: its outbox item goes. Unconditional:
/// the sweep may have removed it already.
pub async fn handled(ctx: &Ctx, event_id: &str) -> Result<(), StoreError> {
    ctx.store.delete(&Key::outbox(event_id)).await
}

/// Puts one event on the events queue; its outbox item stays until [`handled`].
pub async fn send(ctx: &Ctx, event: &Event) -> Result<(), StoreError> {
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
        .map_err(|e| StoreError::aws("sqs", e))?;
    Ok(())
}

/// How much one sweep does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepLimits {
    /// Only items at least this old are re-sent: younger ones are most likely being
    /// published right now by the function that wrote them.
    pub min_age: Duration,
    /// At most this many items per run...
    pub max_items: usize,
    /// ...and no new page after this long, so that one run ends well within the function's
    /// timeout (30 s in template.yaml); what is left waits for the next run.
    pub time_budget: Duration,
}

impl SweepLimits {
    /// `KOPPEL_OUTBOX_SWEEP_MIN_AGE_SECS` (default 60) through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        const KEY: &str = "KOPPEL_OUTBOX_SWEEP_MIN_AGE_SECS";
        let min_age = var(KEY).map_or(Ok(60), |v| {
            v.parse::<u64>()
                .map_err(|_| format!("{KEY} must be a whole number of seconds"))
        })?;
        Ok(Self {
            min_age: Duration::from_secs(min_age),
            max_items: 500,
            time_budget: Duration::from_secs(20),
        })
    }
}

/// What a sweep did; `complete` is false when a limit stopped it before the last item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub found: usize,
    pub sent: usize,
    pub failed: usize,
    pub complete: bool,
}

/// Items on one page of the sweep's query.
const SWEEP_PAGE: usize = 25;

/// The exclusive upper bound of the gsi1 sort keys the sweep takes: `now - min_age` to the
/// second, without fraction or offset: every key of an earlier second sorts below this
/// bound, every key of its own second or later (`…:05.000000Z#…`) above it. So a swept
/// item is always at least `min_age` old.
pub fn sweep_cutoff(now: Timestamp, min_age: Duration) -> String {
    let mut at = rfc3339(now - min_age);
    at.truncate("yyyy-mm-ddThh:mm:ss".len());
    at
}

/// Re-sends outbox items older than `limits.min_age`, oldest first, and removes each once
/// it is sent. An item that cannot be read or sent is counted as failed and stays for the
/// next run. Errors only when the outbox cannot be read at all.
pub async fn sweep(ctx: &Ctx, limits: &SweepLimits) -> Result<SweepReport, StoreError> {
    let started = Instant::now();
    let cutoff = sweep_cutoff(now(), limits.min_age);
    let mut report = SweepReport::default();
    let mut start: Option<Item> = None;
    loop {
        let room = limits.max_items.saturating_sub(report.found);
        if room == 0 || started.elapsed() >= limits.time_budget {
            return Ok(report);
        }
        // The index cannot be read consistently: an item published a moment ago may still
        // show here and be sent twice, which at-least-once allows.
        let query = Query::new(
            Expr::new("gsi1pk = :p AND gsi1sk < :cutoff")
                .s(":p", OUTBOX_PARTITION)
                .s(":cutoff", cutoff.clone()),
        )
        .index("gsi1")
        .limit(Some(room.min(SWEEP_PAGE) as i32))
        .after(start);
        let page = ctx.store.query(&query).await?;
        let items = &page.items;
        report.found += items.len();
        let results = futures_util::future::join_all(items.iter().map(|i| resend(ctx, i))).await;
        for ok in results {
            if ok {
                report.sent += 1;
            } else {
                report.failed += 1;
            }
        }
        match page.next {
            Some(k) => start = Some(k),
            None => {
                report.complete = true;
                return Ok(report);
            }
        }
    }
}

/// Publishes one swept item; `false` (logged) if it could not be read or sent.
async fn resend(ctx: &Ctx, item: &Item) -> bool {
    let event: Event = match serde_dynamo::from_item(item.clone()) {
        Ok(e) => e,
        Err(e) => {
            let pk = item.get("pk").and_then(|v| v.as_s().ok());
            tracing::error!(item = ?pk, error = %e, "outbox item is not an event");
            return false;
        }
    };
    match publish(ctx, &event).await {
        Ok(()) => {
            tracing::info!(event_id = %event.id, occurred_at = %event.occurred_at, "swept event sent");
            true
        }
        Err(e) => {
            tracing::warn!(event_id = %event.id, error = %e, "swept event not sent; next run retries");
            false
        }
    }
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

    fn sort_key(occurred_at: &str) -> String {
        format!("{occurred_at}#evt_0190")
    }

    #[test]
    fn the_cutoff_takes_items_of_earlier_seconds_only() {
        let now = "2026-11-23T18:30:05.25Z"
            .parse::<jiff::Timestamp>()
            .unwrap();
        let cutoff = sweep_cutoff(now, Duration::from_secs(60));
        assert_eq!(cutoff, "2026-11-23T18:29:05");
        // Older than a minute, whatever the length of the fraction.
        for old in [
            "2026-11-23T18:29:04Z",
            "2026-11-23T18:29:04.999999999Z",
            "2026-11-23T18:28:59.5Z",
            "2025-12-31T23:59:59Z",
        ] {
            assert!(sort_key(old) < cutoff, "{old} is swept");
        }
        // Within a minute (to the second), or written just now.
        for young in [
            "2026-11-23T18:29:05Z",
            "2026-11-23T18:29:05.000000001Z",
            "2026-11-23T18:29:05.9Z",
            "2026-11-23T18:30:05.25Z",
            &rfc3339(now),
        ] {
            assert!(sort_key(young) > cutoff, "{young} is left alone");
        }
    }

    #[test]
    fn the_cutoff_of_a_zero_age_is_the_current_second() {
        let now = "2026-01-02T03:04:05Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!(sweep_cutoff(now, Duration::ZERO), "2026-01-02T03:04:05");
    }

    #[test]
    fn sweep_limits_default_to_a_minute_and_read_the_environment() {
        let l = SweepLimits::from_vars(|_| None).unwrap();
        assert_eq!(l.min_age, Duration::from_secs(60));
        assert!(l.max_items > 0 && l.time_budget < Duration::from_secs(30));
        let l = SweepLimits::from_vars(|k| {
            (k == "KOPPEL_OUTBOX_SWEEP_MIN_AGE_SECS").then(|| "3".to_owned())
        })
        .unwrap();
        assert_eq!(l.min_age, Duration::from_secs(3));
        assert!(SweepLimits::from_vars(|_| Some("soon".into())).is_err());
    }

    #[test]
    fn swept_items_read_back_as_their_event() {
        let e = Event::new("dsr.created", "ws_1", serde_json::json!({"id": 7}));
        let step = outbox_step("t", &e).unwrap();
        let item = step.put().unwrap().item().clone();
        let back: Event = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back, e);
    }
}
