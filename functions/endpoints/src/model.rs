//! Service versions, mandates and endpoints, and the slot that keeps one endpoint active
//! per (administration, service version).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A registered service version namespace, e.g.
/// `http://xml.eld.nl/schemas/Overstapservice/20170601`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVersion {
    pub workspace_id: String,
    pub id: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

impl ServiceVersion {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "namespace": self.namespace, "description": self.description,
            "created_at": self.created_at, "retired_at": self.retired_at,
        })
    }
}

/// An institution's grant to a supplier (a connector) for one administration and service
/// version; its token is what the supplier sends as `mandate_token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mandate {
    pub workspace_id: String,
    pub mandate_token: String,
    pub connector_id: String,
    pub administration_id: String,
    pub service_version_namespace: String,
    /// Inclusive validity dates in Europe/Amsterdam; absent is unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    pub granted_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl Mandate {
    pub fn to_json(&self) -> Value {
        json!({
            "mandate_token": self.mandate_token, "connector_id": self.connector_id,
            "administration_id": self.administration_id,
            "service_version_namespace": self.service_version_namespace,
            "start_date": self.start_date, "end_date": self.end_date,
            "granted_by": self.granted_by, "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        })
    }

    /// Not revoked and `today` within its dates.
    pub fn is_live(&self, today: jiff::civil::Date) -> bool {
        let date = |s: &Option<String>| s.as_deref().and_then(koppel_shared::calendar::parse_date);
        self.revoked_at.is_none()
            && date(&self.start_date).is_none_or(|s| s <= today)
            && date(&self.end_date).is_none_or(|e| today <= e)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub workspace_id: String,
    pub id: String,
    /// The supplier's connector that registered it.
    pub connector_id: String,
    pub mandate_token: String,
    pub administration_id: String,
    pub service_version_namespace: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
    pub start_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl Endpoint {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "mandate_token": self.mandate_token,
            "administration_id": self.administration_id,
            "service_version_namespace": self.service_version_namespace,
            "url": self.url, "attributes": self.attributes,
            "start_date": self.start_date, "end_date": self.end_date,
            "connector_id": self.connector_id,
            "created_at": self.created_at, "updated_at": self.updated_at,
        })
    }
}

/// One endpoint's dates, as kept in its slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotEntry {
    pub id: String,
    pub start_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

/// Every endpoint of one (administration, service version), read and written as one item
/// under a version condition: this is what makes "at most one active" race-free.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub version: u64,
    #[serde(default)]
    pub entries: Vec<SlotEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn mandate(start: Option<&str>, end: Option<&str>, revoked: bool) -> Mandate {
        Mandate {
            workspace_id: "ws".into(),
            mandate_token: "t".into(),
            connector_id: "con".into(),
            administration_id: "a".into(),
            service_version_namespace: "n".into(),
            start_date: start.map(Into::into),
            end_date: end.map(Into::into),
            granted_by: "u".into(),
            created_at: "2027-01-01T00:00:00Z".into(),
            revoked_at: revoked.then(|| "2027-01-02T00:00:00Z".into()),
        }
    }

    #[test]
    fn a_mandate_is_live_within_its_inclusive_dates_until_revoked() {
        let m = mandate(Some("2027-03-01"), Some("2027-03-31"), false);
        assert!(!m.is_live(date(2027, 2, 28)));
        assert!(m.is_live(date(2027, 3, 1)));
        assert!(m.is_live(date(2027, 3, 31)));
        assert!(
            !m.is_live(date(2027, 4, 1)),
            "expired the day after its end"
        );
        assert!(mandate(None, None, false).is_live(date(2099, 1, 1)));
        assert!(!mandate(None, None, true).is_live(date(2027, 3, 1)));
    }
}
