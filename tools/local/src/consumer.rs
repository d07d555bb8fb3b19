//! Local event source mapping: polls a queue the way Lambda's SQS integration does, hands
//! batches to the function's real handler, deletes what succeeded and leaves the reported
//! failures for redelivery after the visibility timeout (then the dead-letter queue).

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;

/// The queue-fed functions the local stack can run, by their template `Binary` name.
pub enum QueueFunction {
    WebhookDispatch(webhook_dispatch::Dispatch),
}

impl QueueFunction {
    pub fn from_binary(
        binary: &str,
        sdk: &aws_config::SdkConfig,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Option<Self>, String> {
        Ok(match binary {
            "webhook-dispatch" => Some(Self::WebhookDispatch(
                webhook_dispatch::Dispatch::from_vars(sdk, |k| env.get(k).cloned())?,
            )),
            _ => None,
        })
    }

    async fn call(&self, event: SqsEvent) -> SqsBatchResponse {
        match self {
            Self::WebhookDispatch(d) => webhook_dispatch::handler(event, d).await,
        }
    }
}

pub struct Consumer {
    pub name: String,
    pub function: QueueFunction,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
    /// A queue that gets a copy of every message before the function sees it, so events can
    /// be watched locally without competing with the function for them.
    pub tap_url: Option<String>,
}

impl Consumer {
    /// Polls until the process ends.
    pub async fn run(self) {
        loop {
            if let Err(e) = self.once().await {
                tracing::warn!(consumer = %self.name, error = %e, "polling failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    async fn once(&self) -> Result<(), String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        let messages = out.messages();
        if messages.is_empty() {
            return Ok(());
        }
        let mut event = SqsEvent::default();
        for m in messages {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id.clone();
            r.receipt_handle = m.receipt_handle.clone();
            r.body = m.body.clone();
            r.md5_of_body = m.md5_of_body.clone();
            r.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            r.event_source = Some("aws:sqs".into());
            r.event_source_arn = Some(self.queue_arn.clone());
            r.aws_region = Some(self.region.clone());
            event.records.push(r);
        }
        if let Some(tap) = &self.tap_url {
            for m in messages {
                self.sqs
                    .send_message()
                    .queue_url(tap)
                    .message_body(m.body().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
            }
        }
        let resp = self.function.call(event).await;
        let failed: HashSet<String> = resp
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        // Without ReportBatchItemFailures, Lambda treats any failure as the whole batch's.
        if !self.report_batch_item_failures && !failed.is_empty() {
            return Ok(());
        }
        for m in messages {
            if failed.contains(m.message_id().unwrap_or_default()) {
                continue;
            }
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        }
        Ok(())
    }
}
