//! The `webhook-dispatch` function: consumes the events queue in batches and reports
//! partial batch failures, so one bad message never re-delivers the whole batch
//! (`FunctionResponseTypes: [ReportBatchItemFailures]` in template.yaml; without it a
//! returned failure list is ignored and the whole batch counts as done).
//!
//! Today it sends the internal mail events (OTP codes) with SES v2; delivering webhooks to
//! subscriptions is added by its own issue. Other events are acknowledged.
//!
//! The same function runs the scheduled outbox sweep (`sweep`); `invocation` tells the two
//! payloads apart.

pub mod invocation;
pub mod sweep;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use koppel_shared::mail::{self, Mail};
use koppel_shared::outbox::Event;
use koppel_shared::{Ctx, Settings};
use tracing::Instrument;

pub struct Dispatch {
    /// The table, queues and secrets every Koppel function shares.
    pub ctx: Ctx,
    pub ses: aws_sdk_sesv2::Client,
    /// The verified sender (`KOPPEL_MAIL_FROM`).
    pub mail_from: String,
}

impl Dispatch {
    pub fn from_vars(
        sdk: &SdkConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let from =
            var("KOPPEL_MAIL_FROM").ok_or("environment variable KOPPEL_MAIL_FROM is not set")?;
        let settings = Settings::from_vars(&var)?;
        Ok(Self {
            ctx: Ctx::new(sdk, settings),
            ses: aws_sdk_sesv2::Client::new(sdk),
            mail_from: from,
        })
    }
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
    let event: Event = serde_json::from_str(body).map_err(|e| format!("not an event: {e}"))?;
    match event.event_type.as_str() {
        mail::EVENT => {
            let mail: Mail =
                serde_json::from_value(event.data).map_err(|e| format!("bad mail: {e}"))?;
            send(d, &mail).await
        }
        // Webhook delivery comes with its own issue; until then events are acknowledged.
        _ => Ok(()),
    }
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

    #[tokio::test]
    async fn only_the_bad_message_is_reported() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let d = Dispatch::from_vars(&sdk, |k| {
            Some(match k {
                "KOPPEL_MAIL_FROM" => "no-reply@example.org".into(),
                "KOPPEL_DEFAULT_RATE_LIMIT" | "KOPPEL_JWT_MAX_LIFETIME_SECS" => return None,
                _ => format!("test-{k}"),
            })
        })
        .unwrap();
        let ok =
            serde_json::to_string(&Event::new("endpoint.created", "ws", serde_json::json!({})))
                .unwrap();
        let no_recipient = serde_json::to_string(&Event::new(
            mail::EVENT,
            "ws",
            serde_json::to_value(Mail {
                to: None,
                subject: "s".into(),
                text: "t".into(),
            })
            .unwrap(),
        ))
        .unwrap();
        let mut ev = SqsEvent::default();
        ev.records = vec![
            message("a", &ok),
            message("b", "not json"),
            message("c", &no_recipient),
        ];
        let resp = handler(ev, &d).await;
        let failed: Vec<_> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["b"]);
    }
}
