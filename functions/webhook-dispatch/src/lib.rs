//! The `webhook-dispatch` function: consumes the events queue in batches and reports
//! partial batch failures, so one bad message never re-delivers the whole batch
//! (`FunctionResponseTypes: [ReportBatchItemFailures]` in template.yaml; without it a
//! returned failure list is ignored and the whole batch counts as done).
//!
//! It consumes two queues, telling their messages apart by shape:
//! - the events queue: an `Event` (`type`, `workspace_id`, …): `mail.send` is opened (it
//!   is sealed under the data key) and sent with SES v2 (OTP codes); a published webhook
//!   event is fanned out (`fanout.rs`) to one job per matching subscription on the
//!   deliveries queue; other events are acknowledged;
//! - the deliveries queue: `{"delivery": Job}`: one webhook try (`deliver.rs`), retried
//!   along the schedule (`schedule.rs`) by the message's visibility.
//!
//! The same function runs the scheduled outbox sweep (`sweep.rs`); `invocation.rs` tells
//! a scheduled event from an SQS batch.

pub mod client;
pub mod deliver;
pub mod destination;
pub mod fanout;
pub mod invocation;
pub mod schedule;
pub mod signature;
pub mod sweep;
pub mod tls;
pub mod visibility;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use koppel_shared::delivery::JobMessage;
use koppel_shared::mail::{self, Mail};
use koppel_shared::outbox::{self, Event};
use koppel_shared::{Ctx, Settings};
use tracing::Instrument;

pub struct Dispatch {
    /// The table, queues and secrets every Koppel function shares.
    pub ctx: Ctx,
    pub ses: aws_sdk_sesv2::Client,
    /// The verified sender (`KOPPEL_MAIL_FROM`).
    pub mail_from: String,
    pub webhooks: deliver::Config,
    pub sender: client::Sender,
}

impl Dispatch {
    pub fn from_vars(
        sdk: &SdkConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let from =
            var("KOPPEL_MAIL_FROM").ok_or("environment variable KOPPEL_MAIL_FROM is not set")?;
        let settings = Settings::from_vars(&var)?;
        let webhooks = webhook_config(&var)?;
        Ok(Self {
            ctx: Ctx::new(sdk, settings),
            ses: aws_sdk_sesv2::Client::new(sdk),
            mail_from: from,
            sender: client::Sender::new(webhooks.allow_loopback)?,
            webhooks,
        })
    }
}

/// `KOPPEL_WEBHOOK_RETRY_SCHEDULE` (seconds, comma-separated), `KOPPEL_WEBHOOK_DISABLE_AFTER_SECS`,
/// `KOPPEL_WEBHOOK_ALLOW_LOOPBACK` (`true` for local use and tests only) and
/// `KOPPEL_DELIVERIES_DLQ_URL`.
fn webhook_config(var: &impl Fn(&str) -> Option<String>) -> Result<deliver::Config, String> {
    let schedule = match var("KOPPEL_WEBHOOK_RETRY_SCHEDULE") {
        Some(s) if !s.trim().is_empty() => schedule::Schedule::parse(&s)?,
        _ => schedule::Schedule::default(),
    };
    let disable_after_secs = match var("KOPPEL_WEBHOOK_DISABLE_AFTER_SECS") {
        Some(s) => s
            .parse()
            .map_err(|_| "KOPPEL_WEBHOOK_DISABLE_AFTER_SECS must be a number of seconds")?,
        None => schedule::DEFAULT_DISABLE_AFTER_SECS,
    };
    let allow_loopback = match var("KOPPEL_WEBHOOK_ALLOW_LOOPBACK").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err("KOPPEL_WEBHOOK_ALLOW_LOOPBACK must be true or false".into()),
    };
    Ok(deliver::Config {
        schedule,
        disable_after_secs,
        allow_loopback,
        dead_letter_queue_url: var("KOPPEL_DELIVERIES_DLQ_URL")
            .ok_or("environment variable KOPPEL_DELIVERIES_DLQ_URL is not set")?,
    })
}

/// Handles a batch, its messages concurrently; the ones that failed are reported for
/// redelivery.
pub async fn handler(event: SqsEvent, d: &Dispatch) -> SqsBatchResponse {
    let results = futures_util::future::join_all(event.records.iter().map(|m| {
        let id = m.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", message_id = %id);
        async move { (id, process(m, d).await) }.instrument(span)
    }))
    .await;
    let mut resp = SqsBatchResponse::default();
    for (id, r) in results {
        if let Err(e) = r {
            tracing::warn!(message_id = %id, error = %e, "will be retried");
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            resp.batch_item_failures.push(f);
        }
    }
    resp
}

async fn process(m: &SqsMessage, d: &Dispatch) -> Result<(), String> {
    let body = m.body.as_deref().ok_or("message without body")?;
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("delivery").is_some() {
        let job: JobMessage =
            serde_json::from_value(value).map_err(|e| format!("not a delivery job: {e}"))?;
        return deliver::run(d, job.delivery, m).await;
    }
    let event: Event = serde_json::from_value(value).map_err(|e| format!("not an event: {e}"))?;
    match event.event_type.as_str() {
        mail::EVENT => {
            let mail = mail::open(&d.ctx.data_key, &event).await?;
            send(d, &mail).await?;
        }
        _ => fanout::fan_out(d, &event).await?,
    }
    // Handled: the outbox item goes. Should that fail, the sweep re-sends the event, which
    // fan-out and receivers take once.
    if let Err(e) = outbox::handled(&d.ctx, &event.id).await {
        tracing::warn!(event_id = %event.id, error = %e, "outbox item not removed");
    }
    Ok(())
}

async fn send(d: &Dispatch, mail: &Mail) -> Result<(), String> {
    let Some(to) = &mail.to else {
        return Ok(());
    };
    let content = |s: &str| {
        Content::builder()
            .data(s)
            .charset("UTF-8")
            .build()
            .map_err(|e| e.to_string())
    };
    let message = Message::builder()
        .subject(content(&mail.subject)?)
        .body(Body::builder().text(content(&mail.text)?).build())
        .build();
    d.ses
        .send_email()
        .from_email_address(&d.mail_from)
        .destination(Destination::builder().to_addresses(to).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map_err(|e| aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string())?;
    tracing::info!("mail sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m
    }

    #[test]
    fn the_sample_event_is_a_delivery_job() {
        let text = include_str!("../../../events/webhook-dispatch-delivery.json");
        let ev: SqsEvent = serde_json::from_str(text).unwrap();
        let body = ev.records[0].body.as_deref().unwrap();
        let job: JobMessage = serde_json::from_str(body).unwrap();
        assert_eq!(job.delivery.event_type, "dsr.created");
        let sent: serde_json::Value = serde_json::from_str(&job.delivery.body).unwrap();
        assert_eq!(sent["type"], "dsr.created");
    }

    #[tokio::test]
    async fn only_the_bad_message_is_reported() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let d = Dispatch::from_vars(&sdk, |k| {
            Some(match k {
                "KOPPEL_MAIL_FROM" => "no-reply@example.org".into(),
                "KOPPEL_DEFAULT_RATE_LIMIT" | "KOPPEL_JWT_MAX_LIFETIME_SECS" => return None,
                k if k.starts_with("KOPPEL_WEBHOOK_") => return None,
                _ => format!("test-{k}"),
            })
        })
        .unwrap();
        let ok = serde_json::to_string(&Event::new(
            "connector.created",
            "ws",
            serde_json::json!({}),
        ))
        .unwrap();
        let mut ev = SqsEvent::default();
        ev.records = vec![message("a", &ok), message("b", "not json")];
        let resp = handler(ev, &d).await;
        let failed: Vec<_> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["b"]);
    }
}
