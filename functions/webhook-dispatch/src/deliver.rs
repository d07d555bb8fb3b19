//! Delivering one job of the deliveries queue: the body cut to what the connector may see
//! now, one HTTP try, recorded as an attempt (the receiver's answer without the
//! subscription's secrets), then the verdict:
//! - 2xx: delivered;
//! - 410 Gone: the receiver asks to stop: the subscription is disabled (an event says so);
//! - a refused destination (SSRF rules): failed at once — the address will not become
//!   allowed by waiting;
//! - anything else (429, 5xx, other 4xx, 3xx, timeouts, connection and TLS errors): tried
//!   again along the schedule — other 4xx too, as a receiver's misconfiguration is usually
//!   fixed within the day the schedule spans; then the job goes to the deliveries DLQ.
//!
//! Any failure also counts towards the subscription's failing streak; a streak longer than
//! `disable_after_secs` disables it.

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use base64::Engine;
use koppel_shared::delivery::{self, Attempt, Delivery, Job, Status};
use koppel_shared::model::Connector;
use koppel_shared::outbox::{self, Event};
use koppel_shared::store::{Key, StoreError};
use koppel_shared::time_util::{now, rfc3339};
use koppel_shared::webhook::{self, Subscription};
use rand::Rng;

use crate::client::{MAX_ERROR_TEXT, MAX_EXCERPT, Outgoing, Reply};
use crate::schedule::{self, Schedule};
use crate::{Dispatch, signature};

/// Webhook settings (template parameters).
#[derive(Clone, Debug)]
pub struct Config {
    pub schedule: Schedule,
    pub disable_after_secs: i64,
    pub allow_loopback: bool,
    /// Where a job goes after its last try.
    pub dead_letter_queue_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Gone,
    Refused,
    Retry,
}

pub fn verdict(r: &Reply) -> Verdict {
    match (r.status, r.error_kind) {
        (Some(s), _) if (200..300).contains(&s) => Verdict::Delivered,
        (Some(410), _) => Verdict::Gone,
        (None, Some("refused")) => Verdict::Refused,
        _ => Verdict::Retry,
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `job`. `Err` means: report the message as failed (after a scheduled retry has set
/// its visibility, or for an infrastructure error, after the queue's visibility timeout).
pub async fn run(d: &Dispatch, job: Job, m: &SqsMessage) -> Result<(), String> {
    let Some(mut rec) = owned_record(d, &job).await? else {
        tracing::info!(event_id = %job.event_id, "not this job's delivery (any more)");
        return Ok(());
    };
    let key = Key::subscription(&job.workspace_id, &job.connector_id, &job.subscription_id);
    let sub = match d.ctx.store.get::<Subscription>(&key).await.map_err(err)? {
        Some(s) if s.enabled => s,
        Some(_) => return finish(d, &mut rec, &job, Status::Failed, "subscription disabled").await,
        None => return finish(d, &mut rec, &job, Status::Failed, "subscription deleted").await,
    };
    // The connector may have been disabled or lost the scope since the fan-out (retries
    // and replays come much later): then it gets nothing more.
    let Some(con) = receiver_connector(d, &rec).await? else {
        let why = "the connector may no longer receive this event";
        return finish(d, &mut rec, &job, Status::Failed, why).await;
    };
    // Nor may it see more than its saved search shows now: the body is cut again at every
    // try and replay, and the record keeps the body as sent.
    let now_body = crate::visibility::body_now(&d.ctx, &rec, &con)
        .await
        .map_err(err)?;
    let Some(body) = now_body.send else {
        rec.body = now_body.body;
        let why = "the case is no longer visible to the connector";
        return finish(d, &mut rec, &job, Status::Failed, why).await;
    };
    rec.body = body;
    let t = now();
    let reply = attempt(d, &sub, &rec, t).await?;
    let v = verdict(&reply);
    tracing::info!(
        event_id = %rec.event_id, subscription = %sub.subscription_id,
        status = ?reply.status, error_kind = ?reply.error_kind, verdict = ?v, "webhook attempt"
    );
    rec.push_attempt(recorded(&reply, v, rfc3339(t), rec.sequence));
    // Side effects (disable, dead letter, failing streak) come before the record is
    // closed: if one fails, the message returns and finds the record still pending,
    // instead of a closed record that would drop the retry.
    match v {
        Verdict::Delivered => {
            delivery::clear_failures(&d.ctx, &sub.subscription_id)
                .await
                .map_err(err)?;
            finish(d, &mut rec, &job, Status::Delivered, "").await
        }
        Verdict::Gone => {
            disable(d, &sub, "the receiver answered 410 Gone").await?;
            let why = "receiver answered 410 Gone";
            finish(d, &mut rec, &job, Status::Failed, why).await
        }
        Verdict::Refused => {
            failing(d, &sub).await?;
            finish(d, &mut rec, &job, Status::Failed, "destination refused").await
        }
        Verdict::Retry => {
            let Some(scheduled) = d.webhooks.schedule.delay_after(rec.tries()) else {
                dead_letter(d, m).await?;
                failing(d, &sub).await?;
                return finish(d, &mut rec, &job, Status::Failed, "retries exhausted").await;
            };
            let delay = schedule::next_delay(
                schedule::jitter(scheduled, rand::thread_rng().r#gen()),
                reply.retry_after,
            );
            rec.next_attempt_at = Some(rfc3339(t + jiff::SignedDuration::from_secs(delay.into())));
            if !save(d, &rec, &job).await? {
                return Ok(());
            }
            // The delay first: the try is recorded, so it must not come back early.
            wait(d, m, delay).await?;
            if let Err(e) = failing(d, &sub).await {
                tracing::warn!(error = %e, "failing streak not updated");
            }
            Err(format!("next try in {delay} s"))
        }
    }
}

/// The delivery's connector if it still may receive the event: it exists, is enabled and
/// holds the read scope of the event's kind.
async fn receiver_connector(d: &Dispatch, rec: &Delivery) -> Result<Option<Connector>, String> {
    let con = d
        .ctx
        .store
        .connector(&rec.workspace_id, &rec.connector_id)
        .await
        .map_err(err)?;
    Ok(con.filter(|c| crate::visibility::may_receive(&rec.event_type, c)))
}

/// The record `job` may act on: pending and owned by it; `None` when it is not.
async fn owned_record(d: &Dispatch, job: &Job) -> Result<Option<Delivery>, String> {
    let ctx = &d.ctx;
    let rec = match delivery::get(ctx, &job.subscription_id, &job.event_id)
        .await
        .map_err(err)?
    {
        Some(r) => r,
        // Not put yet (the creator enqueues first), or the creator stopped between the
        // enqueue and the put: the job puts the record. If the creator's put came first,
        // the record is read again and decides (it names its owning job).
        None => {
            let r = job.record();
            if delivery::put_new(ctx, &r).await.map_err(err)? {
                r
            } else {
                let again = delivery::get(ctx, &job.subscription_id, &job.event_id);
                again
                    .await
                    .map_err(err)?
                    .ok_or("delivery record vanished")?
            }
        }
    };
    Ok((rec.job_id == job.job_id && rec.status == Status::Pending).then_some(rec))
}

/// One signed request of `rec` to `sub`'s receiver at `t`.
async fn attempt(
    d: &Dispatch,
    sub: &Subscription,
    rec: &Delivery,
    t: jiff::Timestamp,
) -> Result<Reply, String> {
    let secrets = webhook::reveal(&d.ctx.data_key, sub, t)
        .await
        .map_err(err)?;
    let timestamp = t.as_second();
    let signature = signature::sign(
        &rec.event_id,
        timestamp,
        rec.body.as_bytes(),
        &secrets.signing_secrets,
    )
    .map_err(err)?;
    let basic = secrets.basic.as_ref();
    let mut reply = d
        .sender
        .send(&Outgoing {
            url: &sub.url,
            ca_certificate_pem: sub.ca_certificate_pem.as_deref(),
            webhook_id: &rec.event_id,
            timestamp,
            signature: &signature,
            basic: basic.map(|(u, p)| (u.as_str(), p.as_str())),
            headers: &secrets.headers,
            body: &rec.body,
        })
        .await;
    // A receiver may echo the request: what it sends back is recorded and shown by the
    // API, so the revealed values are cut out of it first.
    let mut hidden: Vec<String> = sub
        .headers
        .iter()
        .filter(|h| h.hidden)
        .filter_map(|h| {
            secrets
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&h.name))
                .map(|(_, v)| v.clone())
        })
        .collect();
    if let Some((u, p)) = basic {
        hidden.push(p.clone());
        hidden.push(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
    }
    hidden.extend(secrets.signing_secrets.iter().cloned());
    if let Some(text) = &mut reply.excerpt {
        *text = clean(text, &hidden, MAX_EXCERPT, reply.excerpt_cut);
    }
    if let Some(text) = &mut reply.error {
        *text = clean(text, &hidden, MAX_ERROR_TEXT, false);
    }
    Ok(reply)
}

/// Secret values shorter than this are not looked for (they would match everywhere).
const MIN_SECRET: usize = 4;

/// `text` with every occurrence of a `secrets` value replaced.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET)
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "[redacted]"))
}

/// What of a receiver's `text` may be recorded: the secrets cut out first, then at most
/// `max` bytes on a character boundary, so that no cut can keep part of a secret.
/// `source_cut`: `text` itself stops where the receiver sent more, so a start of a secret
/// at its very end is dropped too.
pub fn clean(text: &str, secrets: &[String], max: usize, source_cut: bool) -> String {
    let mut out = redact(text, secrets);
    if source_cut {
        let partial = secrets
            .iter()
            .filter(|s| s.len() >= MIN_SECRET)
            .filter_map(|s| {
                (1..s.len())
                    .rev()
                    .filter(|&n| s.is_char_boundary(n))
                    .find(|&n| out.ends_with(&s[..n]))
            })
            .max()
            .unwrap_or(0);
        out.truncate(out.len() - partial);
    }
    let mut cut = out.len().min(max);
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out
}

/// The attempt as recorded: an answer that is not 2xx has the error kind `http_status`.
pub fn recorded(reply: &Reply, v: Verdict, at: String, sequence: u32) -> Attempt {
    let kind = match (reply.error_kind, reply.status) {
        _ if v == Verdict::Delivered => None,
        (Some(k), _) => Some(k),
        (None, Some(_)) => Some("http_status"),
        (None, None) => Some("request"),
    };
    Attempt {
        at,
        sequence,
        status_code: reply.status,
        duration_ms: reply.duration_ms,
        error_kind: kind.map(str::to_owned),
        error: reply.error.clone(),
        response_excerpt: reply.excerpt.clone(),
    }
}

/// The job's message comes back after `delay` seconds (SQS visibility, at most 12 h).
async fn wait(d: &Dispatch, m: &SqsMessage, delay: u32) -> Result<(), String> {
    d.ctx
        .sqs
        .change_message_visibility()
        .queue_url(&d.ctx.settings.deliveries_queue_url)
        .receipt_handle(m.receipt_handle.as_deref().unwrap_or_default())
        .visibility_timeout(i32::try_from(delay).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    Ok(())
}

async fn save(d: &Dispatch, rec: &Delivery, job: &Job) -> Result<bool, String> {
    let mut rec = rec.clone();
    rec.updated_at = rfc3339(now());
    delivery::save_owned(&d.ctx, &rec, &job.job_id)
        .await
        .map_err(err)
}

/// Ends the delivery with `status`; `reason` (empty for none) says why it failed.
async fn finish(
    d: &Dispatch,
    rec: &mut Delivery,
    job: &Job,
    status: Status,
    reason: &str,
) -> Result<(), String> {
    rec.status = status;
    rec.final_reason = (!reason.is_empty()).then(|| reason.to_owned());
    rec.next_attempt_at = None;
    save(d, rec, job).await.map(|_| ())
}

/// Moves the job's message to the deliveries DLQ (the caller acknowledges the original).
async fn dead_letter(d: &Dispatch, m: &SqsMessage) -> Result<(), String> {
    d.ctx
        .sqs
        .send_message()
        .queue_url(&d.webhooks.dead_letter_queue_url)
        .message_body(m.body.clone().unwrap_or_default())
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    Ok(())
}

/// Counts a failure towards the subscription's failing streak; disables it once the streak
/// is long enough.
async fn failing(d: &Dispatch, sub: &Subscription) -> Result<(), String> {
    let t = now().as_second();
    let since = delivery::note_failure(&d.ctx, &sub.subscription_id, t)
        .await
        .map_err(err)?;
    if schedule::should_disable(since, t, d.webhooks.disable_after_secs) {
        let reason = format!(
            "deliveries kept failing for {}",
            schedule::duration_text(d.webhooks.disable_after_secs)
        );
        return disable(d, sub, &reason).await;
    }
    Ok(())
}

/// Disables `sub` (bumping its version) and emits `webhook.subscription_disabled`, in one
/// transaction with the outbox. Already disabled: nothing to do.
pub async fn disable(d: &Dispatch, sub: &Subscription, reason: &str) -> Result<(), String> {
    let ctx = &d.ctx;
    let key = Key::subscription(&sub.workspace_id, &sub.connector_id, &sub.subscription_id);
    let update = Update::builder()
        .table_name(ctx.store.table())
        .set_key(Some(key.to_item()))
        .update_expression(
            "SET enabled = :f, disabled_reason = :r, version = version + :one, updated_at = :t",
        )
        .condition_expression("enabled = :true")
        .expression_attribute_values(":f", AttributeValue::Bool(false))
        .expression_attribute_values(":true", AttributeValue::Bool(true))
        .expression_attribute_values(":r", AttributeValue::S(reason.to_owned()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":t", AttributeValue::S(rfc3339(now())))
        .build()
        .map_err(err)?;
    let event = Event::new(
        delivery::SUBSCRIPTION_DISABLED,
        &sub.workspace_id,
        serde_json::json!({
            "connector_id": sub.connector_id,
            "subscription_id": sub.subscription_id,
            "reason": reason,
        }),
    );
    let step = TransactWriteItem::builder().update(update).build();
    match outbox::commit(ctx, vec![step], &[event]).await {
        Ok(()) => {
            tracing::warn!(subscription = %sub.subscription_id, reason, "subscription disabled");
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_secrets_are_cut_out() {
        let secrets = vec![
            "s3cr3t-pass".to_owned(),
            "dXNlcjpzM2NyM3QtcGFzcw==".to_owned(),
            "abc".to_owned(),
        ];
        let echoed = "Authorization: Basic dXNlcjpzM2NyM3QtcGFzcw== x-key: s3cr3t-pass abc";
        assert_eq!(
            redact(echoed, &secrets),
            "Authorization: Basic [redacted] x-key: [redacted] abc"
        );
    }

    #[test]
    fn secrets_are_cut_out_before_the_answer_is_cut_to_size() {
        let secret = "hdr-SECRET-value-0123456789".to_owned();
        // The secret straddles the size limit: cutting first would keep its first part.
        let pad = "x".repeat(MAX_EXCERPT - 10);
        let echoed = format!("{pad}{secret} and more");
        let out = clean(&echoed, std::slice::from_ref(&secret), MAX_EXCERPT, false);
        assert!(out.len() <= MAX_EXCERPT, "{}", out.len());
        assert!(!out.contains("hdr-"), "{out}");
        assert!(out.ends_with("x[redacted]"), "{out}");
        // Cutting first, as before, kept the first ten characters of the secret.
        assert!(
            redact(&echoed[..MAX_EXCERPT], std::slice::from_ref(&secret)).ends_with("hdr-SECRET")
        );
    }

    #[test]
    fn a_secret_cut_by_the_read_limit_leaves_no_start_behind() {
        let secret = "pw-ÜNSEEN-5b1e".to_owned();
        let text = format!("ok {}", &secret[..6]);
        assert_eq!(
            clean(&text, std::slice::from_ref(&secret), 100, true),
            "ok "
        );
        // An answer that ended there by itself is kept as it is.
        assert_eq!(
            clean(&text, std::slice::from_ref(&secret), 100, false),
            text
        );
        // Cuts land on character boundaries.
        let wide = "é".repeat(10);
        assert_eq!(clean(&wide, &[], 5, false), "éé");
    }

    fn reply(status: Option<u16>, kind: Option<&'static str>) -> Reply {
        Reply {
            status,
            error_kind: kind,
            ..Reply::default()
        }
    }

    #[test]
    fn attempts_name_their_error_kind() {
        let at = || "t".to_owned();
        let ok = reply(Some(200), None);
        assert_eq!(recorded(&ok, verdict(&ok), at(), 1).error_kind, None);
        let e = reply(Some(503), None);
        let a = recorded(&e, verdict(&e), at(), 2);
        assert_eq!(
            (a.error_kind.as_deref(), a.status_code, a.sequence),
            (Some("http_status"), Some(503), 2)
        );
        let e = reply(None, Some("timeout"));
        assert_eq!(
            recorded(&e, verdict(&e), at(), 1).error_kind.as_deref(),
            Some("timeout")
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(&reply(Some(200), None)), Verdict::Delivered);
        assert_eq!(verdict(&reply(Some(204), None)), Verdict::Delivered);
        assert_eq!(verdict(&reply(Some(410), None)), Verdict::Gone);
        assert_eq!(verdict(&reply(None, Some("refused"))), Verdict::Refused);
        for s in [301, 400, 404, 429, 500, 503] {
            assert_eq!(verdict(&reply(Some(s), None)), Verdict::Retry, "{s}");
        }
        for k in ["timeout", "connect", "tls"] {
            assert_eq!(verdict(&reply(None, Some(k))), Verdict::Retry, "{k}");
        }
    }
}
