//! The outbox on the emulator: a state change and its event commit together, the event
//! reaches the events queue with a stable id, and the outbox item stays until the queue's
//! consumer has handled it; a failed transaction leaves neither the change nor the event.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use koppel_shared::Ctx;
use koppel_shared::outbox::{self, Event};
use koppel_shared::store::{Item, Key, item, put_new};
use serde_json::json;

/// The stack's settings, but events go to a queue of this test's own: the local stack's
/// dispatcher consumes the real events queue.
async fn ctx() -> Ctx {
    let mut ctx = Ctx::from_env()
        .await
        .expect("KOPPEL_* settings: run through tools/test.sh");
    let queue = ctx
        .sqs
        .create_queue()
        .queue_name(format!(
            "koppel-e2e-outbox-{}",
            uuid::Uuid::new_v4().simple()
        ))
        .send()
        .await
        .expect("create a private queue");
    ctx.settings.events_queue_url = queue.queue_url().expect("queue url").to_owned();
    ctx
}

/// Receives from the test's queue until `event_id` arrives (bounded by `secs`); anything
/// else is put back at once.
async fn receive(ctx: &Ctx, event_id: &str, secs: u64) -> Option<Event> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let out = ctx
            .sqs
            .receive_message()
            .queue_url(&ctx.settings.events_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let e: Event = serde_json::from_str(m.body().unwrap_or_default()).expect("event JSON");
            if e.id == event_id {
                ctx.sqs
                    .delete_message()
                    .queue_url(&ctx.settings.events_queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
                return Some(e);
            }
            ctx.sqs
                .change_message_visibility()
                .queue_url(&ctx.settings.events_queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await
                .expect("release");
        }
    }
    None
}

async fn stored(ctx: &Ctx, key: &Key) -> Option<Item> {
    ctx.store
        .client()
        .get_item()
        .table_name(ctx.store.table())
        .set_key(Some(key.to_item()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
}

async fn exists(ctx: &Ctx, key: &Key) -> bool {
    stored(ctx, key).await.is_some()
}

#[tokio::test]
async fn change_and_event_commit_together_and_the_event_is_published() {
    let ctx = ctx().await;
    let key = Key {
        pk: format!("E2E#{}", uuid::Uuid::new_v4()),
        sk: "THING".into(),
    };
    let step = put_new(
        ctx.store.table(),
        item(&key, &json!({"name": "thing"})).unwrap(),
    );
    let event = Event::new("e2e.thing_created", "ws_e2e", json!({"key": key.pk}));

    outbox::commit(&ctx, vec![step], std::slice::from_ref(&event))
        .await
        .expect("commit");

    assert!(exists(&ctx, &key).await, "the change is stored");
    let got = receive(&ctx, &event.id, 20)
        .await
        .expect("the event reaches the queue");
    assert_eq!(
        got, event,
        "the queued event is the committed one, id included"
    );
    // Nobody consumes this test's queue: the item waits for its consumer (or the sweep).
    assert!(
        exists(&ctx, &Key::outbox(&event.id)).await,
        "the outbox item stays until the event is handled"
    );
    outbox::handled(&ctx, &event.id).await.expect("handled");
    assert!(
        !exists(&ctx, &Key::outbox(&event.id)).await,
        "the outbox item is removed once handled"
    );
}

#[tokio::test]
async fn a_failed_change_publishes_nothing() {
    let ctx = ctx().await;
    let key = Key {
        pk: format!("E2E#{}", uuid::Uuid::new_v4()),
        sk: "THING".into(),
    };
    let first = put_new(ctx.store.table(), item(&key, &json!({"n": 1})).unwrap());
    outbox::commit(&ctx, vec![first], &[])
        .await
        .expect("first write");

    // Creating the same item again fails its condition: nothing may be written.
    let again = put_new(ctx.store.table(), item(&key, &json!({"n": 2})).unwrap());
    let event = Event::new("e2e.thing_created", "ws_e2e", json!({}));
    assert!(
        outbox::commit(&ctx, vec![again], std::slice::from_ref(&event))
            .await
            .is_err()
    );
    assert!(!exists(&ctx, &Key::outbox(&event.id)).await);
    let kept = stored(&ctx, &key).await.expect("the first write stays");
    assert_eq!(kept["n"], AttributeValue::N("1".into()));
    assert!(receive(&ctx, &event.id, 3).await.is_none());
}
