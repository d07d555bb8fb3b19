//! Fan-out: an event becomes one delivery per matching subscription (enabled, subscribed
//! to the type, its connector enabled and allowed to see it), each with its own job on the
//! deliveries queue, so that one failing receiver never causes another a duplicate. An
//! event sent twice creates nothing new (see `koppel_shared::delivery`).

use std::collections::HashMap;

use koppel_shared::delivery::{self, Job};
use koppel_shared::model::Connector;
use koppel_shared::outbox::Event;
use koppel_shared::webhook::{self, Subscription};

use crate::{Dispatch, visibility};

/// Whether `s` wants events of `event_type`.
pub fn subscribed(s: &Subscription, event_type: &str) -> bool {
    s.enabled && s.event_types.iter().any(|t| t == event_type)
}

pub async fn fan_out(d: &Dispatch, event: &Event) -> Result<(), String> {
    // Only the published types are delivered; internal events stop here.
    if !webhook::is_event_type(&event.event_type) {
        return Ok(());
    }
    let ctx = &d.ctx;
    let subs: Vec<Subscription> = ctx
        .store
        .query_prefix(&event.workspace_id, "SUB#")
        .await
        .map_err(|e| e.to_string())?;
    let mut connectors: HashMap<String, Option<Connector>> = HashMap::new();
    let mut created = 0;
    for s in subs.iter().filter(|s| subscribed(s, &event.event_type)) {
        if !connectors.contains_key(&s.connector_id) {
            let c = ctx
                .store
                .connector(&event.workspace_id, &s.connector_id)
                .await
                .map_err(|e| e.to_string())?;
            connectors.insert(s.connector_id.clone(), c);
        }
        let Some(con) = connectors[&s.connector_id].as_ref() else {
            continue;
        };
        let data = visibility::data_for(ctx, event, con)
            .await
            .map_err(|e| e.to_string())?;
        let Some(data) = data else { continue };
        let job = Job::new(
            &event.workspace_id,
            &s.connector_id,
            &s.subscription_id,
            &event.id,
            &event.event_type,
            delivery::body(&event.event_type, &event.occurred_at, data),
        );
        if delivery::create(ctx, &job)
            .await
            .map_err(|e| e.to_string())?
        {
            created += 1;
        }
    }
    tracing::info!(event_id = %event.id, event_type = %event.event_type, created, "fanned out");
    Ok(())
}
