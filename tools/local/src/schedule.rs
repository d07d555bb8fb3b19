//! Local EventBridge schedules: runs a function's real handler with a `Scheduled Event`
//! every period, one run at a time (a run that overruns delays the next, rather than
//! overlapping it).

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use koppel_shared::outbox::SweepLimits;

use crate::template::ACCOUNT;

/// The scheduled functions the local stack can run, by their template `Binary` name.
pub enum ScheduledFunction {
    /// The outbox sweep.
    WebhookDispatch(Box<webhook_dispatch::Dispatch>, SweepLimits),
}

impl ScheduledFunction {
    pub fn from_binary(
        binary: &str,
        sdk: &aws_config::SdkConfig,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Option<Self>, String> {
        let var = |k: &str| env.get(k).cloned();
        Ok(match binary {
            "webhook-dispatch" => Some(Self::WebhookDispatch(
                Box::new(webhook_dispatch::Dispatch::from_vars(sdk, var)?),
                SweepLimits::from_vars(var)?,
            )),
            _ => None,
        })
    }

    async fn call(&self, event: EventBridgeEvent) -> Result<serde_json::Value, String> {
        match self {
            Self::WebhookDispatch(d, limits) => {
                let report = webhook_dispatch::sweep::handler(event, &d.ctx, limits).await?;
                serde_json::to_value(report).map_err(|e| e.to_string())
            }
        }
    }
}

/// The event an EventBridge rule named `rule` sends.
pub fn scheduled_event(rule: &str, region: &str, now: jiff::Timestamp) -> EventBridgeEvent {
    let v = serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": koppel_shared::time_util::rfc3339(jiff::Timestamp::from_second(now.as_second()).expect("a whole second of a valid time")),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:{ACCOUNT}:rule/{rule}")],
        "detail": {},
    });
    serde_json::from_value(v).expect("a well-formed scheduled event")
}

pub struct Scheduler {
    /// `<function>.<event>`, for logs and the rule name.
    pub name: String,
    /// The stack's name, which prefixes the rule's.
    pub stack: String,
    pub function: ScheduledFunction,
    pub every: Duration,
    pub region: String,
}

impl Scheduler {
    /// Runs every period until the process ends; the first run is one period after start,
    /// as with a new rule.
    pub async fn run(self) {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + self.every, self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rule = format!("{}-{}", self.stack, self.name.replace('.', "-"));
        loop {
            tick.tick().await;
            let event = scheduled_event(&rule, &self.region, koppel_shared::time_util::now());
            match self.function.call(event).await {
                Ok(out) => {
                    tracing::debug!(schedule = %self.name, result = %out, "scheduled run done")
                }
                Err(e) => tracing::warn!(schedule = %self.name, error = %e, "scheduled run failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_event_is_what_the_function_takes_as_a_schedule() {
        let now = "2026-11-23T18:30:00.5Z".parse::<jiff::Timestamp>().unwrap();
        let e = scheduled_event("koppel-Fn-Sweep", "eu-west-1", now);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["time"], "2026-11-23T18:30:00Z");
        assert_eq!(
            v["resources"][0],
            "arn:aws:events:eu-west-1:123456789012:rule/koppel-Fn-Sweep"
        );
        assert!(matches!(
            webhook_dispatch::invocation::Invocation::parse(v),
            Ok(webhook_dispatch::invocation::Invocation::Schedule(_))
        ));
    }
}
