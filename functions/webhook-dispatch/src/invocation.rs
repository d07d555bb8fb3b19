//! What invoked the function: a batch from the events queue, or the outbox sweep's
//! EventBridge schedule. One Lambda function has one payload type, so the payload is read
//! as JSON and told apart by its shape; anything else is refused, never guessed at.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;

#[derive(Debug)]
pub enum Invocation {
    Queue(SqsEvent),
    Schedule(EventBridgeEvent),
}

impl Invocation {
    pub fn parse(payload: Value) -> Result<Self, String> {
        if payload.get("Records").is_some() {
            return serde_json::from_value(payload)
                .map(Self::Queue)
                .map_err(|e| format!("not an SQS batch: {e}"));
        }
        if payload["source"] == "aws.events" && payload["detail-type"] == "Scheduled Event" {
            return serde_json::from_value(payload)
                .map(Self::Schedule)
                .map_err(|e| format!("not a scheduled event: {e}"));
        }
        Err("unknown payload: neither an SQS batch nor a scheduled event".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_fixture_is_a_scheduled_event() {
        let text = include_str!("../../../events/webhook-dispatch-schedule.json");
        let Invocation::Schedule(e) =
            Invocation::parse(serde_json::from_str(text).unwrap()).unwrap()
        else {
            panic!("not a schedule")
        };
        assert_eq!(e.source, "aws.events");
        assert!(e.resources.unwrap()[0].contains(":rule/"));
    }

    #[test]
    fn a_batch_is_a_queue_invocation() {
        let batch = serde_json::json!({"Records": [{
            "messageId": "m1", "body": "{}", "eventSource": "aws:sqs",
        }]});
        let Invocation::Queue(b) = Invocation::parse(batch).unwrap() else {
            panic!("not a batch")
        };
        assert_eq!(b.records[0].message_id.as_deref(), Some("m1"));
    }

    #[test]
    fn anything_else_is_refused() {
        for payload in [
            serde_json::json!({}),
            serde_json::json!({"source": "aws.events", "detail-type": "EC2 Instance State-change Notification", "detail": {}}),
            serde_json::json!({"source": "koppel", "detail-type": "Scheduled Event", "detail": {}}),
            serde_json::json!([1, 2]),
        ] {
            assert!(Invocation::parse(payload.clone()).is_err(), "{payload}");
        }
    }
}
