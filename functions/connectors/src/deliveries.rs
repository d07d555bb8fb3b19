//! A subscription's webhook deliveries (kept 30 days), its test ping and replays, under
//! `/v1/connectors/{id}/subscriptions/{subscriptionId}`:
//!
//! | route | what |
//! |---|---|
//! | `GET …/deliveries?status=&event_type=&limit=&cursor=` | newest first, filtered, paged by `next_cursor` |
//! | `GET …/deliveries/{deliveryId}` | one delivery (id = the event's `webhook-id`) with its attempts and body |
//! | `POST …/deliveries/{deliveryId}/replay` | a new sequence of tries, same `webhook-id` (202) |
//! | `POST …/ping` | a `webhook.ping` event delivered through the same path (202) |
//!
//! Answers carry no credentials: a delivery holds the body sent, never the headers.

use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use koppel_shared::delivery::{self, Attempt, Delivery, Filter, Job, Status};
use koppel_shared::outbox::Event;
use koppel_shared::paging::{self, Pager};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::store::{PAGE_SCAN_BUDGET, StoreError};
use koppel_shared::webhook::Subscription;
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::{Request, RequestExt};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::subscriptions::{require_scope, seen_with, subscription_of};

/// A webhook delivery (one event to one subscription) as the API shows it.
#[derive(Serialize, JsonSchema)]
pub struct DeliveryView {
    /// The event id, also the `webhook-id` header: the same on every try and replay.
    pub id: String,
    pub event_type: String,
    pub status: Status,
    /// 1, then one more per replay.
    pub sequence: u32,
    pub attempt_count: usize,
    pub last_attempt: Option<Attempt>,
    pub next_attempt_at: Option<String>,
    /// Why no more tries are made (`failed`).
    pub final_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// One delivery's answers only (not the list): every try kept, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<Attempt>>,
    /// One delivery's answers only: the body as last sent, `{type, timestamp, data}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

impl DeliveryView {
    pub fn of(d: &Delivery, with_attempts: bool) -> Self {
        Self {
            id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status,
            sequence: d.sequence,
            attempt_count: d.attempts.len(),
            last_attempt: d.attempts.last().cloned(),
            next_attempt_at: d.next_attempt_at.clone(),
            final_reason: d.final_reason.clone(),
            created_at: d.created_at.clone(),
            updated_at: d.updated_at.clone(),
            attempts: with_attempts.then(|| d.attempts.clone()),
            payload: with_attempts.then(|| serde_json::from_str(&d.body).unwrap_or(Value::Null)),
        }
    }
}

/// A page of a subscription's deliveries, newest first.
#[derive(Serialize, JsonSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An event id as Koppel makes them (`evt_` + 32 hex digits); anything else is no delivery.
fn is_event_id(s: &str) -> bool {
    s.strip_prefix("evt_")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Deliveries keep the page sizes they had before lists shared one pager.
pub const LIMITS: paging::Limits = paging::Limits {
    default: 20,
    max: 100,
};

pub async fn list(p: &Principal, req: &Request, ctx: &Ctx, con: &str, sub: &str) -> RouteResult {
    require_scope(p)?;
    let s = subscription_of(p, ctx, con, sub).await?;
    let q = req.query_string_parameters();
    let (status, event_type) = (q.first("status"), q.first("event_type"));
    let filter = Filter {
        scopes: seen_with(p).cloned(),
        ..Filter::parse(status, event_type)?
    };
    // A cursor continues the same filtered list only.
    let scope = paging::Scope::new("deliveries", &p.workspace_id)
        .with("subscription", Some(sub))
        .with("status", status)
        .with("event_type", event_type);
    let pager = Pager::from_request(req, LIMITS, scope)?;
    let page = delivery::list(
        ctx,
        &s.subscription_id,
        &filter,
        pager.limit,
        pager.after.as_deref(),
    )
    .await?;
    let list = DeliveryList {
        items: page
            .items
            .iter()
            .map(|d| DeliveryView::of(d, false))
            .collect(),
        next_cursor: page.next.as_deref().map(|p| pager.cursor(p)),
    };
    pipeline::json(StatusCode::OK, &list)
}

/// Every delivery the caller may see ([`seen_with`]).
fn seen(p: &Principal) -> Filter {
    Filter {
        scopes: seen_with(p).cloned(),
        ..Filter::default()
    }
}

async fn delivery_of(
    p: &Principal,
    ctx: &Ctx,
    con: &str,
    sub: &str,
    id: &str,
) -> Result<Delivery, ApiError> {
    let s = subscription_of(p, ctx, con, sub).await?;
    if !is_event_id(id) {
        return Err(ApiError::not_found());
    }
    let seen = seen(p);
    delivery::get(ctx, &s.subscription_id, id)
        .await?
        .filter(|d| seen.matches(d))
        .ok_or_else(ApiError::not_found)
}

pub async fn get(p: &Principal, ctx: &Ctx, con: &str, sub: &str, id: &str) -> RouteResult {
    require_scope(p)?;
    let d = delivery_of(p, ctx, con, sub, id).await?;
    pipeline::json(StatusCode::OK, &DeliveryView::of(&d, true))
}

fn accepted(d: &Delivery) -> RouteResult {
    let mut r = pipeline::json(StatusCode::ACCEPTED, &DeliveryView::of(d, true))?;
    let location = format!(
        "/v1/connectors/{}/subscriptions/{}/deliveries/{}",
        d.connector_id, d.subscription_id, d.event_id
    );
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(ApiError::internal)?,
    );
    Ok(r)
}

fn disabled() -> ApiError {
    ApiError::conflict("The subscription is disabled: enable it first (POST …/enable).")
}

pub async fn replay(p: &Principal, ctx: &Ctx, con: &str, sub: &str, id: &str) -> RouteResult {
    require_scope(p)?;
    let s = subscription_of(p, ctx, con, sub).await?;
    if !s.enabled {
        return Err(disabled());
    }
    let d = delivery_of(p, ctx, con, sub, id).await?;
    if d.status == Status::Pending {
        return Err(ApiError::conflict(
            "The delivery is still being tried; replay it once it is delivered or failed.",
        ));
    }
    match delivery::replay(ctx, d).await {
        Ok(d) => accepted(&d),
        Err(StoreError::Conflict(_)) => Err(crate::preconditions::lost_race()),
        Err(e) => Err(e.into()),
    }
}

/// The most deliveries one enable starts again; calling it again goes on with the rest
/// (those started are no longer `failed`).
pub const MAX_REPLAYED: usize = 100;

/// Starts again the subscription's deliveries made at or after `since` that failed (newest
/// first, at most [`MAX_REPLAYED`], reading at most [`PAGE_SCAN_BUDGET`] records, as one
/// filtered page would); how many it started. One whose record changed meanwhile (a retry,
/// another replay) is left to that.
pub async fn replay_failed(
    p: &Principal,
    ctx: &Ctx,
    s: &Subscription,
    since: jiff::Timestamp,
) -> Result<usize, ApiError> {
    let seen = seen(p);
    // One page reads at most PAGE_SCAN_BUDGET records, newest first.
    let page = delivery::list(ctx, &s.subscription_id, &seen, PAGE_SCAN_BUDGET, None).await?;
    let picked: Vec<Delivery> = page
        .items
        .into_iter()
        .take_while(|d| {
            d.created_at
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t >= since)
        })
        .filter(|d| d.status == Status::Failed)
        .take(MAX_REPLAYED)
        .collect();
    let started = futures_util::stream::iter(picked)
        .map(|d| delivery::replay(ctx, d))
        .buffer_unordered(8)
        .fold(Ok(0usize), |n, r| async move {
            match (n, r) {
                (Err(e), _) => Err(e),
                (Ok(n), Ok(_)) => Ok(n + 1),
                (Ok(n), Err(StoreError::Conflict(_))) => Ok(n),
                (Ok(_), Err(e)) => Err(e),
            }
        })
        .await?;
    Ok(started)
}

pub async fn ping(p: &Principal, ctx: &Ctx, con: &str, sub: &str) -> RouteResult {
    require_scope(p)?;
    let s = subscription_of(p, ctx, con, sub).await?;
    if !s.enabled {
        return Err(disabled());
    }
    let event = Event::new(
        delivery::PING,
        &p.workspace_id,
        json!({ "connector_id": s.connector_id, "subscription_id": s.subscription_id }),
    );
    let job = Job::new(
        &s.workspace_id,
        &s.connector_id,
        &s.subscription_id,
        &event.id,
        &event.event_type,
        delivery::body(&event.event_type, &event.occurred_at, event.data.clone()),
    );
    delivery::create(ctx, &job).await?;
    accepted(&job.record())
}
