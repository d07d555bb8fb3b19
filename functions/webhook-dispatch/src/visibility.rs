//! What of an event a subscription's connector may see: the one place that decides the
//! `data` of a webhook. Events of a kind the connector has no read scope for are not sent
//! at all (case.* needs `cases:read`, dsr.* `dsr:read`, endpoint.* and mandate.*
//! `endpoints:read`); case data goes through the connector's saved search.

use koppel_shared::Ctx;
use koppel_shared::cases::View;
use koppel_shared::model::{Connector, Scope};
use koppel_shared::outbox::Event;
use koppel_shared::store::StoreError;
use serde_json::Value;

/// The scope a connector needs to receive events of `event_type`; `None`: never sent.
pub fn required_scope(event_type: &str) -> Option<Scope> {
    let kind = event_type.split('.').next().unwrap_or_default();
    match kind {
        "case" => Some(Scope::CasesRead),
        "dsr" => Some(Scope::DsrRead),
        "endpoint" | "mandate" => Some(Scope::EndpointsRead),
        _ => None,
    }
}

/// Whether `connector` may receive events of `event_type` at all: enabled, and holding the
/// kind's read scope (a ping and notices about its own subscriptions need none).
pub fn may_receive(event_type: &str, connector: &Connector) -> bool {
    connector.enabled
        && (event_type == koppel_shared::delivery::PING
            || event_type.starts_with("webhook.")
            || required_scope(event_type).is_some_and(|s| connector.scopes.contains(&s)))
}

/// The `data` to send `connector` for `event`; `None`: do not deliver it at all. Case
/// events go through the connector's saved search (`View::event_data`): a case it never
/// saw is not announced, and it gets only its columns.
pub async fn data_for(
    ctx: &Ctx,
    event: &Event,
    connector: &Connector,
) -> Result<Option<Value>, StoreError> {
    if !may_receive(&event.event_type, connector) {
        return Ok(None);
    }
    let scope = required_scope(&event.event_type);
    if scope == Some(Scope::CasesRead) {
        let view = View::of_connector(&ctx.store, connector).await?;
        return Ok(view.event_data(&event.data));
    }
    // Endpoints and mandates belong to one supplier connector (the API shows each only to
    // it; a mandate event carries its `mandate_token`), a subscription to one connector.
    if (scope == Some(Scope::EndpointsRead) || event.event_type.starts_with("webhook."))
        && !own_record(&event.data, connector)
    {
        return Ok(None);
    }
    Ok(Some(event.data.clone()))
}

/// Whether the event's record names `connector` as its own.
fn own_record(data: &Value, connector: &Connector) -> bool {
    data.get("connector_id").and_then(Value::as_str) == Some(connector.connector_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supplier_records_go_only_to_their_connector() {
        let mut con: Connector = serde_json::from_value(serde_json::json!({
            "workspace_id": "ws", "connector_id": "con_a", "description": "d",
            "acting_user_id": "u", "access_level": "read", "scopes": ["endpoints:read"],
            "enabled": true, "version": 1, "created_at": "t", "updated_at": "t"
        }))
        .unwrap();
        let data = serde_json::json!({"connector_id": "con_a", "mandate_token": "m"});
        assert!(own_record(&data, &con));
        con.connector_id = "con_b".into();
        assert!(!own_record(&data, &con));
        assert!(!own_record(&serde_json::json!({}), &con));
    }

    #[test]
    fn each_kind_of_event_needs_its_read_scope() {
        assert_eq!(required_scope("case.updated"), Some(Scope::CasesRead));
        assert_eq!(required_scope("dsr.created"), Some(Scope::DsrRead));
        assert_eq!(
            required_scope("endpoint.created"),
            Some(Scope::EndpointsRead)
        );
        assert_eq!(
            required_scope("mandate.revoked"),
            Some(Scope::EndpointsRead)
        );
        assert_eq!(required_scope("connector.created"), None);
        assert_eq!(required_scope("mail.send"), None);
    }
}
