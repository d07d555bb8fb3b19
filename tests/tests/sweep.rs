//! Nothing lost: a write whose function stops between the transaction commit and the queue
//! send leaves its event in the outbox, and the stack's scheduled sweep sends it, once.
//!
//! The fault is real, without a hook in the code: a second gateway (`koppel-local serve
//! --routes-only`, same emulator and table) runs the real handlers with its events queue
//! pointed at a queue that does not exist, so each commit succeeds and each send fails.
//! The test stack's own sweep (every `KOPPEL_E2E_SCHEDULE_EVERY` s, for events
//! `KOPPEL_E2E_SWEEP_MIN_AGE` s old; see tools/test.sh) must then publish the event, which
//! the events tap shows, and a receiver subscribed to it gets once (one `webhook-id`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;
use koppel_e2e::receiver::Receiver;
use koppel_e2e::stack::Gateway;
use koppel_e2e::*;
use koppel_shared::Ctx;
use koppel_shared::outbox::Event;
use koppel_shared::store::Key;
use serde_json::{Value, json};

fn secs(name: &str) -> u64 {
    var(name).parse().expect("a number of seconds")
}

/// A workspace of the test's own, with a connector token that may write data-subject
/// requests: (workspace id, `Authorization` value, owner, connector id).
fn workspace() -> (String, String, String, String) {
    let (ws, owner) = new_workspace("sweep e2e");
    let (con, auth) = NewConnector::sample(&ws, &owner)
        .description("sweep e2e")
        .scopes(&["dsr:read", "dsr:write"])
        .with_token();
    (ws, auth, owner, con)
}

/// The events of `ws` waiting in the outbox (gsi1 `OUTBOX`, as the sweep reads it).
async fn outbox_of(ctx: &Ctx, ws: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = ctx
            .store
            .client()
            .query()
            .table_name(ctx.store.table())
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S("OUTBOX".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query the outbox");
        for i in page.items() {
            let e: Event = serde_dynamo::from_item(i.clone()).expect("an outbox event");
            if e.workspace_id == ws {
                out.push(e);
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

async fn in_outbox(ctx: &Ctx, event_id: &str) -> bool {
    ctx.store
        .client()
        .get_item()
        .table_name(ctx.store.table())
        .set_key(Some(Key::outbox(event_id).to_item()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .is_some()
}

/// Watches the events tap until `settle` after `event_id` first shows (or `bound` without
/// it) and returns the tap messages that carried it, with their bodies. Others' messages
/// are set aside for a while, not taken.
async fn copies_on_tap(
    ctx: &Ctx,
    event_id: &str,
    bound: Duration,
    settle: Duration,
) -> Vec<(String, Value)> {
    let tap = events_tap_url(&ctx.sqs).await;
    let mut seen = Vec::new();
    let mut ids = BTreeSet::new();
    let mut deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        let out = ctx
            .sqs
            .receive_message()
            .queue_url(&tap)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let mut aside = Vec::new();
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap();
            let handle = m.receipt_handle().unwrap_or_default().to_owned();
            if body["id"] != event_id {
                aside.push(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{}", aside.len()))
                        .receipt_handle(handle)
                        .visibility_timeout(30)
                        .build()
                        .expect("entry"),
                );
                continue;
            }
            if seen.is_empty() {
                deadline = Instant::now() + settle;
            }
            let id = m.message_id().unwrap_or_default().to_owned();
            if ids.insert(id.clone()) {
                seen.push((id, body));
            }
            ctx.sqs
                .delete_message()
                .queue_url(&tap)
                .receipt_handle(handle)
                .send()
                .await
                .expect("delete");
        }
        if !aside.is_empty() {
            ctx.sqs
                .change_message_visibility_batch()
                .queue_url(&tap)
                .set_entries(Some(aside))
                .send()
                .await
                .expect("set aside");
        }
    }
    seen
}

#[tokio::test]
async fn an_event_left_in_the_outbox_is_sent_by_the_sweep_exactly_once() {
    let every = Duration::from_secs(secs("KOPPEL_E2E_SCHEDULE_EVERY"));
    let min_age = Duration::from_secs(secs("KOPPEL_E2E_SWEEP_MIN_AGE"));
    let ctx = Ctx::from_env().await.expect("KOPPEL_* settings");
    let (ws, auth, owner, con) = workspace();
    // A receiver subscribed to the event: it must get it exactly once.
    let rx = Receiver::start(&[]).await;
    let (_, pat) = personal_token(&ws, &owner);
    let sub = send(
        &base_url(),
        "POST",
        &format!("/v1/connectors/{con}/subscriptions"),
        &[("Authorization", &format!("Bearer {pat}"))],
        Some(&json!({"url": rx.url, "ca_certificate_pem": rx.ca_pem, "event_types": ["dsr.created"]})),
    )
    .await;
    assert_eq!(sub.status, 201, "{}", sub.body);

    // Same account and emulator, but a queue that does not exist: every send fails.
    let events_queue = &ctx.settings.events_queue_url;
    let (base, _) = events_queue.rsplit_once('/').expect("a queue URL");
    let missing = format!(
        "{base}/koppel-e2e-missing-{}",
        uuid::Uuid::new_v4().simple()
    );
    let broken = Gateway::routes_only(&[("KOPPEL_EVENTS_QUEUE_URL", &missing)]).await;

    let before = Instant::now();
    let r = send(
        &broken.url,
        "POST",
        &format!("/v1/ws/{ws}/DataSubjectRequests"),
        &[("Authorization", &auth)],
        Some(&json!({ "title": "left in the outbox", "purposes": ["Access"] })),
    )
    .await;
    assert_eq!(r.status, 201, "the write itself succeeds: {}", r.body);
    drop(broken);

    let left = outbox_of(&ctx, &ws).await;
    // The event was created after `before`, so the sweep cannot have taken it yet.
    assert!(
        before.elapsed() < min_age,
        "too slow to look before the sweep may take the event"
    );
    assert_eq!(left.len(), 1, "the event stays in the outbox: {left:?}");
    let event = &left[0];
    assert_eq!(event.event_type, "dsr.created");
    assert_eq!(event.data["id"], r.body["id"]);
    assert!(in_outbox(&ctx, &event.id).await);

    // The sweep takes it once it is `min_age` old (to the second), at its next run.
    let bound = min_age + every * 2 + Duration::from_secs(20);
    let settle = every * 3 + Duration::from_secs(1);
    let copies = copies_on_tap(&ctx, &event.id, bound, settle).await;
    assert_eq!(
        copies.len(),
        1,
        "the swept event reaches the events queue exactly once: {copies:?}"
    );
    let sent: Event = serde_json::from_value(copies[0].1.clone()).expect("an event");
    assert_eq!(&sent, event, "the committed event, id included");
    assert!(
        !in_outbox(&ctx, &event.id).await,
        "the outbox item is removed once sent"
    );
    assert!(outbox_of(&ctx, &ws).await.is_empty());

    // And at the receiver: one request, whose `webhook-id` is the event's id.
    rx.wait_for(1, 30).await;
    tokio::time::sleep(settle).await;
    let got = rx.received();
    assert_eq!(got.len(), 1, "delivered exactly once: {got:?}");
    assert_eq!(got[0].header("webhook-id"), Some(event.id.as_str()));
}

/// The normal path: the write sends its event, the dispatcher handles it and removes the
/// outbox item (the request itself makes no third DynamoDB call for it).
#[tokio::test]
async fn a_handled_event_leaves_the_outbox() {
    let ctx = Ctx::from_env().await.expect("KOPPEL_* settings");
    let (ws, auth, _, _) = workspace();
    let r = send(
        &base_url(),
        "POST",
        &format!("/v1/ws/{ws}/DataSubjectRequests"),
        &[("Authorization", &auth)],
        Some(&json!({ "title": "handled", "purposes": ["Access"] })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = outbox_of(&ctx, &ws).await;
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = outbox_of(&ctx, &ws).await;
    }
    assert!(left.is_empty(), "still in the outbox after 30 s: {left:?}");
}
