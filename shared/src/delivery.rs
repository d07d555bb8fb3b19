//! Webhook deliveries: one record per (subscription × event), with every attempt, kept 30
//! days; and the job message on the deliveries queue that drives it.
//!
//! # Nothing lost, nothing twice
//! A delivery is created by enqueueing its job first and then putting its record under the
//! condition that no record exists. The record names the job that owns it (`job_id`); a job
//! whose id is not the record's drops itself. So:
//! - an event sent twice (the outbox sweep may) finds the record and creates nothing;
//! - a crash between the enqueue and the put leaves a job without a record: the job puts
//!   the record itself when it runs (it carries the body), and if the event is processed
//!   again first, its new job owns the record and the orphan job drops itself;
//! - a replay gives the record a new `job_id` and sequence, so retries still queued for the
//!   old sequence drop themselves.

use serde::{Deserialize, Serialize};

use crate::Ctx;
use crate::store::{Expr, Key, Page, PageQuery, ReturnValue, StoreError, Update, item, number};
use crate::time_util::{now, rfc3339};

/// Attempts and records are kept this long (DynamoDB TTL; reads check it themselves).
pub const KEEP_SECS: i64 = 30 * 24 * 3600;
/// The most attempts one record keeps (the newest), bounding the item's size.
pub const MAX_ATTEMPTS_KEPT: usize = 60;
/// The event type of a test ping.
pub const PING: &str = "webhook.ping";
/// The event that says a subscription was disabled by the dispatcher.
pub const SUBSCRIPTION_DISABLED: &str = "webhook.subscription_disabled";

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    strum::EnumString,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    /// Queued or waiting for its next try.
    Pending,
    Delivered,
    /// No more tries: the schedule ran out, the destination was refused, or the
    /// subscription is gone or disabled. `final_reason` says which.
    Failed,
}

/// One HTTP try (or a try refused before connecting).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    pub at: String,
    /// The delivery's sequence this try belongs to (1, then +1 per replay).
    pub sequence: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// `refused`, `timeout`, `connect`, `tls`, `http_status`, `redirect`, `request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// A short, credential-free description of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the response body (at most 1 KiB), the subscription's secrets cut out
    /// before it was cut to size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub workspace_id: String,
    pub connector_id: String,
    pub subscription_id: String,
    /// Also the `webhook-id`, stable across retries and replays.
    pub event_id: String,
    pub event_type: String,
    /// The JSON body as last sent: `{type, timestamp, data}`. Every try and replay cuts it
    /// again to what the connector may see then (the dispatcher's `visibility::body_now`),
    /// so it never tells more than at the event.
    pub body: String,
    pub status: Status,
    pub sequence: u32,
    /// The job that may act on this record (see the module docs).
    pub job_id: String,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Epoch seconds after which the record is gone.
    pub ttl: i64,
}

/// The deliveries-queue message. Its single `delivery` key tells it apart from an event
/// (which has `type` and `workspace_id` at the top).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub delivery: Job,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub workspace_id: String,
    pub connector_id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    pub job_id: String,
    pub sequence: u32,
    /// Carried so the job can create its record if the creator crashed before putting it.
    pub body: String,
}

impl Job {
    pub fn new(
        workspace_id: &str,
        connector_id: &str,
        subscription_id: &str,
        event_id: &str,
        event_type: &str,
        body: String,
    ) -> Self {
        Self {
            workspace_id: workspace_id.into(),
            connector_id: connector_id.into(),
            subscription_id: subscription_id.into(),
            event_id: event_id.into(),
            event_type: event_type.into(),
            job_id: uuid::Uuid::now_v7().simple().to_string(),
            sequence: 1,
            body,
        }
    }

    /// The record this job starts, when none exists.
    pub fn record(&self) -> Delivery {
        let t = now();
        Delivery {
            workspace_id: self.workspace_id.clone(),
            connector_id: self.connector_id.clone(),
            subscription_id: self.subscription_id.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            body: self.body.clone(),
            status: Status::Pending,
            sequence: self.sequence,
            job_id: self.job_id.clone(),
            attempts: Vec::new(),
            next_attempt_at: None,
            final_reason: None,
            created_at: rfc3339(t),
            updated_at: rfc3339(t),
            ttl: t.as_second() + KEEP_SECS,
        }
    }
}

impl Delivery {
    pub fn key(&self) -> Key {
        Key::delivery(&self.subscription_id, &self.event_id)
    }

    pub fn live(&self, now_epoch: i64) -> bool {
        self.ttl > now_epoch
    }

    /// The job that continues this record (its current owner and sequence).
    pub fn job(&self) -> Job {
        Job {
            workspace_id: self.workspace_id.clone(),
            connector_id: self.connector_id.clone(),
            subscription_id: self.subscription_id.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            job_id: self.job_id.clone(),
            sequence: self.sequence,
            body: self.body.clone(),
        }
    }

    /// Attempts of the current sequence.
    pub fn tries(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.sequence == self.sequence)
            .count()
    }

    /// Adds an attempt, keeping the newest [`MAX_ATTEMPTS_KEPT`].
    pub fn push_attempt(&mut self, a: Attempt) {
        self.attempts.push(a);
        let extra = self.attempts.len().saturating_sub(MAX_ATTEMPTS_KEPT);
        self.attempts.drain(..extra);
    }
}

/// The webhook body: `{type, timestamp, data}`, the timestamp being when the event occurred.
pub fn body(event_type: &str, occurred_at: &str, data: serde_json::Value) -> String {
    serde_json::json!({ "type": event_type, "timestamp": occurred_at, "data": data }).to_string()
}

/// Puts `job` on the deliveries queue.
pub async fn enqueue(ctx: &Ctx, job: &Job) -> Result<(), StoreError> {
    let body = serde_json::to_string(&JobMessage {
        delivery: job.clone(),
    })
    .map_err(|e| StoreError::Shape(e.to_string()))?;
    ctx.sqs
        .send_message()
        .queue_url(&ctx.settings.deliveries_queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| StoreError::aws("sqs", e))?;
    Ok(())
}

/// Puts a new record; `Ok(false)` if one exists already.
pub async fn put_new(ctx: &Ctx, d: &Delivery) -> Result<bool, StoreError> {
    ctx.store.put_if(item(&d.key(), d)?, Expr::absent()).await
}

/// Saves `d` if `owner` still owns it; `Ok(false)` if another job took it over.
pub async fn save_owned(ctx: &Ctx, d: &Delivery, owner: &str) -> Result<bool, StoreError> {
    let owned = Expr::new("job_id = :j").s(":j", owner);
    ctx.store.put_if(item(&d.key(), d)?, owned).await
}

/// Creates the delivery of one event to one subscription: enqueue, then record (see the
/// module docs). `Ok(false)` when it existed already.
pub async fn create(ctx: &Ctx, job: &Job) -> Result<bool, StoreError> {
    if get(ctx, &job.subscription_id, &job.event_id)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    enqueue(ctx, job).await?;
    put_new(ctx, &job.record()).await?;
    Ok(true)
}

/// A live delivery record.
pub async fn get(ctx: &Ctx, sub: &str, event_id: &str) -> Result<Option<Delivery>, StoreError> {
    let d: Option<Delivery> = ctx.store.get(&Key::delivery(sub, event_id)).await?;
    Ok(d.filter(|d| d.live(now().as_second())))
}

/// A page of a subscription's live deliveries, newest first (event ids are time-ordered),
/// after the event id `after`; `next` is the event id to continue after.
/// A filtered page reads at most [`crate::store::PAGE_SCAN_BUDGET`] records and may end short
/// of `limit` with a `next` to go on from.
pub async fn list(
    ctx: &Ctx,
    sub: &str,
    filter: &Filter,
    limit: usize,
    after: Option<&str>,
) -> Result<Page<Delivery>, StoreError> {
    let now_epoch = now().as_second();
    let q = PageQuery {
        pk: Key::delivery(sub, "").pk,
        prefix: "DLV#",
        after,
        limit,
        forward: false,
    };
    ctx.store
        .page(&q, |d: &Delivery| d.live(now_epoch) && filter.matches(d))
        .await
}

/// Which deliveries a list shows: `?status=` and `?event_type=`, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<Status>,
    pub event_type: Option<String>,
    /// Only event types visible with these scopes (`webhook::visible_with`); `None`: all.
    pub scopes: Option<crate::model::Scopes>,
}

impl Filter {
    /// The filter of a list's query parameters; a value that can match nothing is a 422
    /// naming the parameter (a typo must not look like an empty log).
    pub fn parse(status: Option<&str>, event_type: Option<&str>) -> Result<Self, crate::ApiError> {
        use strum::VariantNames;
        let mut e = crate::body::Fields::new();
        let status = status.and_then(|s| match s.parse::<Status>() {
            Ok(s) => Some(s),
            Err(_) => {
                e.push(
                    "status",
                    format!("must be one of {}", Status::VARIANTS.join(", ")),
                );
                None
            }
        });
        if let Some(t) = event_type
            && !(crate::webhook::is_event_type(t) || t == PING)
        {
            e.push(
                "event_type",
                format!("`{t}` is not a published event type (GET /v1/webhook-event-types)"),
            );
        }
        e.finish()?;
        Ok(Self {
            status,
            event_type: event_type.map(str::to_owned),
            scopes: None,
        })
    }

    pub fn matches(&self, d: &Delivery) -> bool {
        self.status.is_none_or(|s| s == d.status)
            && self.event_type.as_deref().is_none_or(|t| t == d.event_type)
            && self
                .scopes
                .as_ref()
                .is_none_or(|s| crate::webhook::visible_with(&d.event_type, s))
    }
}

/// Starts a new attempt sequence of `d` (same `webhook-id`), owned by a new job.
pub async fn replay(ctx: &Ctx, mut d: Delivery) -> Result<Delivery, StoreError> {
    let previous_owner = d.job_id.clone();
    let t = now();
    d.job_id = uuid::Uuid::now_v7().simple().to_string();
    d.sequence += 1;
    d.status = Status::Pending;
    d.final_reason = None;
    d.next_attempt_at = None;
    d.updated_at = rfc3339(t);
    d.ttl = t.as_second() + KEEP_SECS;
    if !save_owned(ctx, &d, &previous_owner).await? {
        return Err(StoreError::Conflict(
            "the delivery changed meanwhile".into(),
        ));
    }
    enqueue(ctx, &d.job()).await?;
    Ok(d)
}

/// A failure this long after the previous one starts a new streak: failing "continuously"
/// means failing at every try, and no retry waits longer than this.
pub const STREAK_GAP_SECS: i64 = 43_200;

/// Since when a subscription has been failing without a success in between (epoch
/// seconds); marks `now` if it was not failing, or if its last failure was more than
/// [`STREAK_GAP_SECS`] ago (quiet days between two failures are not a failing streak).
pub async fn note_failure(ctx: &Ctx, sub: &str, now_epoch: i64) -> Result<i64, StoreError> {
    let update = |expr: &str| {
        Update::new(
            Key::delivery_health(sub),
            Expr::new(expr).n(":now", now_epoch),
        )
        .returning(ReturnValue::AllNew)
    };
    let continued =
        update("SET failing_since = if_not_exists(failing_since, :now), last_failure_at = :now")
            .when(
                Expr::new("attribute_not_exists(last_failure_at) OR last_failure_at >= :cut")
                    .n(":cut", now_epoch - STREAK_GAP_SECS),
            );
    let out = match ctx.store.update_if(continued).await? {
        Some(out) => out,
        None => {
            ctx.store
                .update(update("SET failing_since = :now, last_failure_at = :now"))
                .await?
        }
    };
    Ok(number(&out, "failing_since").unwrap_or(now_epoch))
}

/// A success (or a re-enable) ends a failing streak.
pub async fn clear_failures(ctx: &Ctx, sub: &str) -> Result<(), StoreError> {
    ctx.store.delete(&Key::delivery_health(sub)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_starts_its_record_and_the_record_continues_the_job() {
        let job = Job::new("ws", "con", "sub", "evt_1", "dsr.created", "{}".into());
        let d = job.record();
        assert_eq!(d.status, Status::Pending);
        assert_eq!(d.job(), job);
        assert_eq!(d.key(), Key::delivery("sub", "evt_1"));
        let msg = serde_json::to_value(JobMessage { delivery: job }).unwrap();
        assert!(msg.get("type").is_none() && msg["delivery"]["job_id"].is_string());
    }

    #[test]
    fn a_filter_names_what_can_match_nothing() {
        let mut d = Job::new("ws", "con", "sub", "evt_1", PING, "{}".into()).record();
        let f = Filter::parse(Some("failed"), Some(PING)).unwrap();
        assert!(!f.matches(&d));
        d.status = Status::Failed;
        assert!(f.matches(&d));
        assert!(Filter::parse(None, None).unwrap().matches(&d));
        assert!(
            !Filter::parse(None, Some("case.created"))
                .unwrap()
                .matches(&d)
        );
        let e = Filter::parse(Some("Failed"), Some("case.nope")).unwrap_err();
        let fields: Vec<_> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["status", "event_type"]);
        assert!(e.errors[0].message.contains("pending, delivered, failed"));
    }

    #[test]
    fn only_the_newest_attempts_are_kept() {
        let mut d = Job::new("ws", "con", "sub", "evt_1", "t", "{}".into()).record();
        for i in 0..(MAX_ATTEMPTS_KEPT + 5) {
            d.push_attempt(Attempt {
                at: i.to_string(),
                sequence: 1,
                status_code: Some(500),
                duration_ms: 1,
                error_kind: None,
                error: None,
                response_excerpt: None,
            });
        }
        assert_eq!(d.attempts.len(), MAX_ATTEMPTS_KEPT);
        assert_eq!(d.attempts[0].at, "5");
        assert_eq!(d.tries(), MAX_ATTEMPTS_KEPT);
    }
}
