//! The scheduled outbox sweep (`OutboxSweep` in template.yaml, every minute): re-sends
//! events whose function committed them but did not get them to the queue, and removes
//! them once sent. The work is `koppel_shared::outbox::sweep`; this is its trigger.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use koppel_shared::Ctx;
use koppel_shared::outbox::{self, SweepLimits, SweepReport};
use tracing::Instrument;

/// Runs one bounded sweep and logs what it did. Items it could not send stay for the next
/// run; only an unreadable outbox fails the invocation.
pub async fn handler(
    event: EventBridgeEvent,
    ctx: &Ctx,
    limits: &SweepLimits,
) -> Result<SweepReport, String> {
    let span = tracing::info_span!(
        "outbox_sweep",
        schedule_event = event.id.as_deref().unwrap_or_default()
    );
    let r = outbox::sweep(ctx, limits)
        .instrument(span)
        .await
        .map_err(|e| format!("outbox sweep: {e}"))?;
    if r.failed > 0 || !r.complete {
        tracing::warn!(
            found = r.found,
            sent = r.sent,
            failed = r.failed,
            complete = r.complete,
            "outbox sweep left events behind"
        );
    } else if r.found > 0 {
        tracing::info!(found = r.found, sent = r.sent, "outbox sweep done");
    } else {
        // Most runs find nothing; every minute at info would drown the logs.
        tracing::debug!("outbox sweep found nothing");
    }
    Ok(r)
}
