//! What of an event a subscription's connector may see: the one place that decides the
//! `data` of a webhook. Events of a kind the connector has no read scope for are not sent
//! at all (case.* needs `cases:read`, dsr.* `dsr:read`, endpoint.* and mandate.*
//! `endpoints:read`); case data goes through the connector's saved search, at the fan-out
//! ([`data_for`]) and again at every try and replay ([`body_now`]), as the connector's
//! saved search may have changed in between.

use koppel_shared::Ctx;
use koppel_shared::cases::{Case, View};
use koppel_shared::delivery::Delivery;
use koppel_shared::model::{Connector, Scope};
use koppel_shared::outbox::Event;
use koppel_shared::store::{Key, StoreError};
pub use koppel_shared::webhook::{required_scope, visible_with};
use serde_json::Value;

/// Whether `connector` may receive events of `event_type` at all: enabled, and holding the
/// kind's read scope (a ping and notices about its own subscriptions need none).
pub fn may_receive(event_type: &str, connector: &Connector) -> bool {
    connector.enabled && visible_with(event_type, &connector.scopes)
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
        let view = ctx.store.case_view(connector).await?;
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

/// A delivery's body as its connector may see it at this try.
#[derive(Debug, PartialEq)]
pub struct BodyNow {
    /// `None`: not to be sent now.
    pub send: Option<String>,
    /// The body to keep on the record (cut as `send` would be).
    pub body: String,
}

/// The body of `rec` cut to what `connector` may see now (see [`case_data_now`]); other
/// events' bodies are as they were (who may receive them is checked per try already).
pub async fn body_now(
    ctx: &Ctx,
    rec: &Delivery,
    connector: &Connector,
) -> Result<BodyNow, StoreError> {
    let unchanged = || BodyNow {
        send: Some(rec.body.clone()),
        body: rec.body.clone(),
    };
    if required_scope(&rec.event_type) != Some(Scope::CasesRead) {
        return Ok(unchanged());
    }
    let Ok(mut body) = serde_json::from_str::<Value>(&rec.body) else {
        return Ok(unchanged());
    };
    let view = ctx.store.case_view(connector).await?;
    let id = body
        .pointer("/data/case/id")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let current: Option<Case> = ctx.store.get(&Key::case(&rec.workspace_id, id)).await?;
    let (data, send) = case_data_now(&view, &body["data"], current.as_ref());
    body["data"] = data;
    let text = body.to_string();
    Ok(BodyNow {
        send: send.then(|| text.clone()),
        body: text,
    })
}

/// A case event's webhook `data` (`{case, visible, changed}`, as [`View::event_data`] made
/// it at the event) as `view` shows it now, and whether to send it:
/// - fields the view no longer shows are removed from `case` and `changed` (a field it
///   shows only now is not added: the body never tells more than it did at the event);
/// - a visible case is sent only while the case, as it now stands (`current`), is inside
///   the view: a case outside a connector's saved search does not exist for it;
/// - an update whose every changed field is now hidden is not sent (nothing to tell);
/// - the notice that a case left the view (`visible: false`, its id and uuid only) is
///   sent as it is.
pub fn case_data_now(view: &View, data: &Value, current: Option<&Case>) -> (Value, bool) {
    let mut data = data.clone();
    let visible = data.get("visible").and_then(Value::as_bool) == Some(true);
    if let Some(Value::Object(case)) = data.get_mut("case") {
        case.retain(|k, v| match v {
            Value::Object(inner) if k == "requester" || k == "attributes" => {
                inner.retain(|sub, _| view.sees_field(&format!("{k}.{sub}")));
                !inner.is_empty()
            }
            _ => view.sees_field(k),
        });
    }
    let mut nothing_changed = false;
    if let Some(Value::Array(changed)) = data.get_mut("changed") {
        let before = changed.len();
        changed.retain(|f| f.as_str().is_some_and(|f| view.sees_field(f)));
        nothing_changed = before > 0 && changed.is_empty();
    }
    let send = !visible || (current.is_some_and(|c| view.sees(c)) && !nothing_changed);
    (data, send)
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

    fn search(filters: Value, columns: &[&str]) -> View {
        View::Search(Box::new(
            serde_json::from_value(serde_json::json!({
                "workspace_id": "ws", "saved_search_id": "ss", "name": "n",
                "filters": filters, "columns": columns, "version": 1,
                "created_at": "t", "updated_at": "t"
            }))
            .unwrap(),
        ))
    }

    fn case(status: &str) -> Case {
        serde_json::from_value(serde_json::json!({
            "id": 7, "uuid": "u-7", "case_type": "t", "subject": "s", "status": status,
            "requester": {"name": "Jansen", "bsn": "111222333"},
            "registration_date": "2026-01-01", "version": 2,
            "created_at": "t", "updated_at": "t"
        }))
        .unwrap()
    }

    /// The data of a case event as the fan-out made it for a view with these columns.
    fn sent(columns: &[&str], changed: &[&str]) -> Value {
        let then = search(serde_json::json!({}), columns);
        let full = serde_json::json!({"case": case("open"), "previous": null, "changed": changed});
        then.event_data(&full).unwrap()
    }

    #[test]
    fn a_column_dropped_since_the_event_is_not_sent() {
        let data = sent(
            &["subject", "requester.name"],
            &["subject", "requester.name"],
        );
        assert_eq!(data["case"]["requester"]["name"], "Jansen");
        let now = search(serde_json::json!({}), &["subject"]);
        let (cut, send) = case_data_now(&now, &data, Some(&case("open")));
        assert!(send);
        assert_eq!(cut["case"].get("requester"), None, "{cut}");
        assert_eq!(cut["case"]["subject"], "s");
        assert_eq!(cut["changed"], serde_json::json!(["subject"]));
        // A column added since is not filled in: the body never tells more than it did.
        let wider = search(
            serde_json::json!({}),
            &["subject", "requester.name", "requester.bsn"],
        );
        let (same, _) = case_data_now(&wider, &data, Some(&case("open")));
        assert_eq!(same, data);
    }

    #[test]
    fn a_case_outside_the_view_now_is_not_sent() {
        let data = sent(&["subject"], &["subject"]);
        let open_only = search(serde_json::json!({"status": ["open"]}), &["subject"]);
        assert!(case_data_now(&open_only, &data, Some(&case("open"))).1);
        assert!(!case_data_now(&open_only, &data, Some(&case("closed"))).1);
        assert!(!case_data_now(&open_only, &data, None).1);
        assert!(!case_data_now(&View::Nothing, &data, Some(&case("open"))).1);
        // Nothing it can still see changed: nothing to tell.
        let update = sent(&["subject", "requester.name"], &["requester.name"]);
        let now = search(serde_json::json!({}), &["subject"]);
        assert!(!case_data_now(&now, &update, Some(&case("open"))).1);
        // The notice that the case left the view goes out as it is.
        let left = serde_json::json!({"case": {"id": 7, "uuid": "u-7"}, "visible": false, "changed": ["status"]});
        assert_eq!(
            case_data_now(&View::Nothing, &left, None),
            (left.clone(), true)
        );
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
