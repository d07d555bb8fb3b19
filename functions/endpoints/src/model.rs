//! Service versions, mandates and endpoints, and the slot that keeps one endpoint active
//! per (administration, service version).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

/// A service version as the API shows it (not its workspace or creator).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ServiceVersion")]
pub struct ServiceVersionView<'a> {
    pub id: &'a str,
    /// The service version's namespace URI, e.g.
    /// `http://xml.eld.nl/schemas/Overstapservice/20170601`.
    pub namespace: &'a str,
    pub description: Option<&'a str>,
    /// RFC 3339.
    pub created_at: &'a str,
    /// When it was retired (RFC 3339): no new mandates or endpoints name it then.
    pub retired_at: Option<&'a str>,
}

impl ServiceVersion {
    pub fn view(&self) -> ServiceVersionView<'_> {
        ServiceVersionView {
            id: &self.id,
            namespace: &self.namespace,
            description: self.description.as_deref(),
            created_at: &self.created_at,
            retired_at: self.retired_at.as_deref(),
        }
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

/// A mandate as the API shows it.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Mandate")]
pub struct MandateView<'a> {
    /// A UUID: what the supplier sends as `mandate_token` with its endpoints.
    pub mandate_token: &'a str,
    /// The supplier's connector the mandate is granted to.
    pub connector_id: &'a str,
    pub administration_id: &'a str,
    pub service_version_namespace: &'a str,
    /// First day it is valid (`YYYY-MM-DD`, Europe/Amsterdam); `null`: from the grant.
    pub start_date: Option<&'a str>,
    /// Last day it is valid (`YYYY-MM-DD`, inclusive); `null`: no end.
    pub end_date: Option<&'a str>,
    /// The user who granted it.
    pub granted_by: &'a str,
    /// RFC 3339.
    pub created_at: &'a str,
    /// When it was revoked (RFC 3339); it covers no endpoint write from then on.
    pub revoked_at: Option<&'a str>,
}

impl Mandate {
    /// The view's JSON (event payloads carry what the API shows).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).expect("a view of strings is JSON")
    }

    pub fn view(&self) -> MandateView<'_> {
        MandateView {
            mandate_token: &self.mandate_token,
            connector_id: &self.connector_id,
            administration_id: &self.administration_id,
            service_version_namespace: &self.service_version_namespace,
            start_date: self.start_date.as_deref(),
            end_date: self.end_date.as_deref(),
            granted_by: &self.granted_by,
            created_at: &self.created_at,
            revoked_at: self.revoked_at.as_deref(),
        }
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
    /// Ended before `today`: its slot entry is gone, so it is not changed again (a new
    /// end would stretch it over the pruned entries it was checked against).
    pub fn ended_before(&self, today: jiff::civil::Date) -> bool {
        ended_before(self.end_date.as_deref(), today)
    }

    /// The view's JSON (event payloads carry what the API shows).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).expect("a view of strings is JSON")
    }

    pub fn view(&self) -> EndpointView<'_> {
        EndpointView {
            id: &self.id,
            mandate_token: &self.mandate_token,
            administration_id: &self.administration_id,
            service_version_namespace: &self.service_version_namespace,
            url: &self.url,
            attributes: self.attributes.as_deref(),
            start_date: &self.start_date,
            end_date: self.end_date.as_deref(),
            connector_id: &self.connector_id,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
        }
    }
}

/// An OSR endpoint as the API shows it: the seed's fields, with the server's.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Endpoint")]
pub struct EndpointView<'a> {
    /// A UUID.
    pub id: &'a str,
    pub mandate_token: &'a str,
    pub administration_id: &'a str,
    pub service_version_namespace: &'a str,
    /// Absolute https URL: the supplier's technical location.
    pub url: &'a str,
    pub attributes: Option<&'a str>,
    /// First day (`YYYY-MM-DD`), from midnight at its start (Europe/Amsterdam).
    pub start_date: &'a str,
    /// Last day (`YYYY-MM-DD`), to midnight at its end; `null`: no end.
    pub end_date: Option<&'a str>,
    /// The supplier's connector that registered it.
    pub connector_id: &'a str,
    /// RFC 3339.
    pub created_at: &'a str,
    /// RFC 3339.
    pub updated_at: &'a str,
}

/// A page of a list: `next_cursor` continues it (`null` on the last page).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The body of `POST /api/v1/endpoints` and `PUT /api/v1/endpoints/{id}` (seed 003).
/// Read field by field (every bad field in one 422); read-only and unknown fields are
/// ignored, as OSR clients expect, so the schema allows them.
#[derive(JsonSchema)]
#[schemars(rename = "EndpointRequest")]
#[allow(dead_code)] // A contract: `endpoint_input` reads these names (its tests hold it to this).
pub struct EndpointBody {
    /// The token of a live mandate of the calling connector for this pair.
    #[schemars(extend("format" = "uuid"))]
    pub mandate_token: String,
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    pub administration_id: String,
    /// A registered, not retired service version namespace. Neither it nor
    /// `administration_id` can change on update.
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub service_version_namespace: String,
    /// Absolute https URL.
    #[schemars(length(min = 1, max = 2000), regex(pattern = "^https://"))]
    pub url: String,
    #[schemars(length(max = 1000))]
    pub attributes: Option<String>,
    /// `YYYY-MM-DD`, not in the past; default today (on update: the stored one, which may
    /// be repeated once passed).
    #[schemars(extend("format" = "date"))]
    pub start_date: Option<String>,
    /// `YYYY-MM-DD`, inclusive, not in the past nor before the start; `null`: no end.
    #[schemars(extend("format" = "date"))]
    pub end_date: Option<String>,
}

/// The body of `POST /api/v1/mandates`.
#[derive(JsonSchema)]
#[schemars(rename = "MandateRequest")]
#[allow(dead_code)] // A contract: `grant_mandate` reads these names (its tests hold it to this).
pub struct MandateBody {
    /// A connector of this workspace: the supplier.
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    pub connector_id: String,
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    pub administration_id: String,
    /// A registered, not retired service version namespace.
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    pub service_version_namespace: String,
    /// `YYYY-MM-DD`; may lie in the past. Absent: valid from the grant.
    #[schemars(extend("format" = "date"))]
    pub start_date: Option<String>,
    /// `YYYY-MM-DD`, inclusive, not in the past nor before the start.
    #[schemars(extend("format" = "date"))]
    pub end_date: Option<String>,
}

/// The body of `POST /api/v1/service-versions`.
#[derive(JsonSchema)]
#[schemars(rename = "ServiceVersionRequest")]
#[allow(dead_code)] // A contract: `create_service_version` reads these names (its tests hold it to this).
pub struct ServiceVersionBody {
    /// An absolute URI, unique in the workspace.
    #[schemars(length(min = 1, max = 500), extend("format" = "uri"))]
    pub namespace: String,
    #[schemars(length(max = 500))]
    pub description: Option<String>,
}

/// An endpoint as its administration's list holds it (see `repo`): enough to filter a
/// page by namespace, viewer and date before the endpoints themselves are read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub id: String,
    pub connector_id: String,
    pub service_version_namespace: String,
    pub start_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

impl ListEntry {
    pub fn of(e: &Endpoint) -> Self {
        Self {
            id: e.id.clone(),
            connector_id: e.connector_id.clone(),
            service_version_namespace: e.service_version_namespace.clone(),
            start_date: e.start_date.clone(),
            end_date: e.end_date.clone(),
        }
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

impl SlotEntry {
    /// Whether it ended before `today` (Europe/Amsterdam). An endpoint written from today
    /// on never reaches before today (starts are never in the past, a kept start is one
    /// that did not overlap, and an ended endpoint is not changed again), so such an
    /// entry can never overlap one again.
    pub fn ended_before(&self, today: jiff::civil::Date) -> bool {
        ended_before(self.end_date.as_deref(), today)
    }
}

/// Whether an inclusive end date lies before `today`. An end that does not read has not
/// ended: dropping its entry could let an overlap in.
fn ended_before(end: Option<&str>, today: jiff::civil::Date) -> bool {
    end.and_then(koppel_shared::calendar::parse_date)
        .is_some_and(|end| end < today)
}

/// The endpoints of one (administration, service version) that have not ended before
/// today, read and written as one item under a version condition: this is what makes "at
/// most one active" race-free. Every write drops the entries that have ended (see
/// [`Slot::written`]), so the item stays small however long the pair is in use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub version: u64,
    #[serde(default)]
    pub entries: Vec<SlotEntry>,
}

impl Slot {
    /// The slot to write back after `entry` was saved on `today`: its other entries that
    /// have not ended before today, then `entry`, one version on.
    pub fn written(&self, entry: SlotEntry, today: jiff::civil::Date) -> Slot {
        let mut entries: Vec<SlotEntry> = self
            .entries
            .iter()
            .filter(|e| e.id != entry.id && !e.ended_before(today))
            .cloned()
            .collect();
        entries.push(entry);
        Slot {
            version: self.version + 1,
            entries,
        }
    }
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

    fn entry(id: &str, start: &str, end: Option<&str>) -> SlotEntry {
        SlotEntry {
            id: id.into(),
            start_date: start.into(),
            end_date: end.map(Into::into),
        }
    }

    #[test]
    fn a_write_drops_the_entries_that_ended_before_today() {
        let slot = Slot {
            version: 7,
            entries: vec![
                entry("past", "2026-01-01", Some("2027-02-28")),
                entry("yesterday", "2027-03-01", Some("2027-03-09")),
                entry("today", "2027-03-05", Some("2027-03-10")),
                entry("open", "2027-04-01", None),
                entry("me", "2027-05-01", None),
            ],
        };
        let next = slot.written(entry("me", "2027-06-01", None), date(2027, 3, 10));
        assert_eq!(next.version, 8);
        let ids: Vec<&str> = next.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["today", "open", "me"]);
        assert_eq!(next.entries[2].start_date, "2027-06-01");
        // The day after, the one ending today goes too.
        let later = next.written(
            entry("new", "2027-03-11", Some("2027-03-20")),
            date(2027, 3, 11),
        );
        let ids: Vec<&str> = later.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["open", "me", "new"]);
    }

    #[test]
    fn ended_before_is_by_the_inclusive_end_date() {
        let today = date(2027, 3, 10);
        assert!(entry("a", "2027-01-01", Some("2027-03-09")).ended_before(today));
        assert!(!entry("a", "2027-01-01", Some("2027-03-10")).ended_before(today));
        assert!(!entry("a", "2027-01-01", None).ended_before(today));
        // An end that does not read is kept: dropping it could let an overlap in.
        assert!(!entry("a", "2027-01-01", Some("garbage")).ended_before(today));
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
