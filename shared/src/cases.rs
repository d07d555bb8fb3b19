//! Cases (zaken) and the saved searches (zoekopdrachten) through which connectors see them.
//!
//! A connector sees a case only if its saved search's filters match it, and then only the
//! base metadata (seed 000: id, type, status, dates) plus the search's columns. The same
//! [`View`] decides this for the API, the CSV export, history and webhooks, so a hidden
//! case or field cannot leak through one of them.
//!
//! Only the model lives here, the part other functions read too (webhooks project case
//! events through [`View`]). What a case must satisfy, and how a write is checked, belong
//! to the cases function; the caller reads a connector's saved search and hands it to
//! [`View::of`], so this model does not depend on the store.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// Serde keeps its own derive (its error text reaches clients); strum gives the same names
// to `as_str` and `FromStr`, which a test holds to serde's. (Not a doc comment: that would
// become the schema's description.)
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    Open,
    InProgress,
    Suspended,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Ordered: a search with `max_confidentiality: internal` sees public and internal cases.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidentiality {
    Public,
    #[default]
    Internal,
    Confidential,
}

/// The person or organisation that asked for the case: personal data, so each part is a
/// column of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Burgerservicenummer (9 digits, eleven-test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsn: Option<String>,
    /// KvK number (8 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvk: Option<String>,
}

/// A case as stored and as the workspace's own users see it. (Unknown fields in a request
/// are refused before it is read as a `Case`: stored items carry their keys too.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The workspace's running number.
    pub id: u64,
    pub uuid: String,
    pub case_type: String,
    pub subject: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<Requester>,
    /// A workspace user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// `YYYY-MM-DD`, Europe/Amsterdam.
    pub registration_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_date: Option<String>,
    /// Set by Koppel when the status becomes `closed`, cleared when it is reopened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default)]
    pub confidentiality: Confidentiality,
    /// Typed custom attributes: text, number, bool, or a date as `YYYY-MM-DD` text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// Always visible (seed 000's base metadata: id, type, status, dates), in CSV order.
pub const BASE_FIELDS: [&str; 9] = [
    "id",
    "uuid",
    "case_type",
    "status",
    "registration_date",
    "target_date",
    "closing_date",
    "created_at",
    "updated_at",
];

/// The columns a saved search can add, besides `attributes.<name>`.
pub const COLUMNS: [&str; 10] = [
    "subject",
    "phase",
    "requester.name",
    "requester.email",
    "requester.bsn",
    "requester.kvk",
    "assignee",
    "department",
    "result",
    "confidentiality",
];

impl Case {
    /// Every field as `(path, value)`: base fields, columns, then `attributes.<name>`.
    /// Absent values are `null`. History, CSV and projection all read cases this way.
    pub fn fields(&self) -> Vec<(String, Value)> {
        let s = |v: &str| Value::String(v.to_owned());
        let o = |v: &Option<String>| v.as_deref().map_or(Value::Null, s);
        let r = self.requester.clone().unwrap_or_default();
        let mut out = vec![
            ("id".to_owned(), Value::from(self.id)),
            ("uuid".into(), s(&self.uuid)),
            ("case_type".into(), s(&self.case_type)),
            ("status".into(), s(self.status.as_str())),
            ("registration_date".into(), s(&self.registration_date)),
            ("target_date".into(), o(&self.target_date)),
            ("closing_date".into(), o(&self.closing_date)),
            ("created_at".into(), s(&self.created_at)),
            ("updated_at".into(), s(&self.updated_at)),
            ("subject".into(), s(&self.subject)),
            ("phase".into(), o(&self.phase)),
            ("requester.name".into(), o(&r.name)),
            ("requester.email".into(), o(&r.email)),
            ("requester.bsn".into(), o(&r.bsn)),
            ("requester.kvk".into(), o(&r.kvk)),
            ("assignee".into(), o(&self.assignee)),
            ("department".into(), o(&self.department)),
            ("result".into(), o(&self.result)),
            (
                "confidentiality".into(),
                serde_json::to_value(self.confidentiality).unwrap_or(Value::Null),
            ),
        ];
        for (k, v) in &self.attributes {
            out.push((format!("attributes.{k}"), v.clone()));
        }
        out
    }
}

/// An inclusive date range; an open end is unbounded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl DateRange {
    /// ISO dates compare as text.
    fn contains(&self, date: Option<&str>) -> bool {
        let Some(d) = date else {
            return false;
        };
        self.from.as_deref().is_none_or(|f| d >= f) && self.to.as_deref().is_none_or(|t| d <= t)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttrOp {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    Exists,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttrFilter {
    pub name: String,
    pub op: AttrOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl AttrFilter {
    fn matches(&self, v: Option<&Value>) -> bool {
        let Some(v) = v else {
            return false;
        };
        let Some(want) = &self.value else {
            return self.op == AttrOp::Exists;
        };
        let ord = match (v, want) {
            (Value::Number(a), Value::Number(b)) => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        };
        use std::cmp::Ordering::*;
        match (self.op, ord) {
            (AttrOp::Exists, _) => true,
            (AttrOp::Ne, None) => true,
            (_, None) => false,
            (AttrOp::Eq, Some(o)) => o == Equal,
            (AttrOp::Ne, Some(o)) => o != Equal,
            (AttrOp::Lt, Some(o)) => o == Less,
            (AttrOp::Lte, Some(o)) => o != Greater,
            (AttrOp::Gt, Some(o)) => o == Greater,
            (AttrOp::Gte, Some(o)) => o != Less,
        }
    }
}

/// A saved search's filters; every given filter must match (an empty list matches all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<Status>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub case_type: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub department: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignee: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_date: Option<DateRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_date: Option<DateRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing_date: Option<DateRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_confidentiality: Option<Confidentiality>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttrFilter>,
}

fn any_of(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|l| l == v))
}

impl Filters {
    pub fn matches(&self, c: &Case) -> bool {
        (self.status.is_empty() || self.status.contains(&c.status))
            && any_of(&self.case_type, Some(&c.case_type))
            && any_of(&self.department, c.department.as_deref())
            && any_of(&self.assignee, c.assignee.as_deref())
            && self
                .registration_date
                .as_ref()
                .is_none_or(|r| r.contains(Some(&c.registration_date)))
            && self
                .target_date
                .as_ref()
                .is_none_or(|r| r.contains(c.target_date.as_deref()))
            && self
                .closing_date
                .as_ref()
                .is_none_or(|r| r.contains(c.closing_date.as_deref()))
            && self
                .max_confidentiality
                .is_none_or(|m| c.confidentiality <= m)
            && self
                .attributes
                .iter()
                .all(|f| f.matches(c.attributes.get(&f.name)))
    }
}

/// A saved search (zoekopdracht): which cases a connector sees, and which columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedSearch {
    pub workspace_id: String,
    pub saved_search_id: String,
    pub name: String,
    #[serde(default)]
    pub filters: Filters,
    /// In CSV order, after the base fields.
    #[serde(default)]
    pub columns: Vec<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A case as a caller sees it ([`View::view`]): the base fields always (seed 000's
/// metadata), every other field only when the caller's saved search lists it as a column
/// and it has a value (an absent field is never `null`). The answer of `GET
/// /v1/cases/{id}`, the list, and webhooks.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct CaseView {
    /// The workspace's running number.
    pub id: u64,
    pub uuid: String,
    pub case_type: String,
    pub status: Status,
    /// `YYYY-MM-DD`, Europe/Amsterdam.
    pub registration_date: String,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub target_date: Option<String>,
    /// Set by Koppel when the status becomes `closed` (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub closing_date: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// A column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub subject: Option<String>,
    /// A column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub phase: Option<String>,
    /// Each part is a column (`requester.name`, `requester.bsn`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Requester")]
    pub requester: Option<Requester>,
    /// A workspace user id; a column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub assignee: Option<String>,
    /// A column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub department: Option<String>,
    /// A column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub result: Option<String>,
    /// A column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Confidentiality")]
    pub confidentiality: Option<Confidentiality>,
    /// Custom attributes, each a column (`attributes.<name>`): text, number, boolean, or a
    /// date as `YYYY-MM-DD` text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "attribute_values")]
    pub attributes: BTreeMap<String, Value>,
}

/// The schema of a case's `attributes`: names to text, numbers or booleans.
pub fn attribute_values(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "pattern": "^[a-z][a-z0-9_]{0,63}$" },
        "additionalProperties": { "type": ["string", "number", "boolean"] },
    })
}

/// The answer to a change that moved the case out of the caller's saved search (header
/// `Koppel-Case-Visible: false`): from then on the case does not exist for that caller.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct CaseMovedOut {
    pub id: u64,
    pub uuid: String,
    /// Always `false`.
    #[schemars(extend("const" = false))]
    pub visible: bool,
    pub detail: String,
}

/// What a create or change of a case answers: the case as the caller sees it, or, when the
/// change moved it out of the caller's saved search, [`CaseMovedOut`].
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum CaseAnswer {
    Visible(Box<CaseView>),
    MovedOut(CaseMovedOut),
}

/// How a caller sees cases.
#[derive(Clone, Debug)]
pub enum View {
    /// A workspace user with a personal token: every case, every field.
    All,
    /// A connector: only what its saved search shows.
    Search(Box<SavedSearch>),
    /// A connector without a saved search sees no cases.
    Nothing,
}

impl View {
    /// A connector's view: its saved search, or nothing without one (the caller reads it,
    /// so this model stays apart from the store).
    pub fn of(search: Option<SavedSearch>) -> View {
        search.map_or(View::Nothing, |s| View::Search(Box::new(s)))
    }

    pub fn sees(&self, c: &Case) -> bool {
        match self {
            View::All => true,
            View::Search(s) => s.filters.matches(c),
            View::Nothing => false,
        }
    }

    /// Whether the field at `path` (`subject`, `requester.bsn`, `attributes.x`) is visible.
    pub fn sees_field(&self, path: &str) -> bool {
        match self {
            View::All => true,
            View::Search(s) => BASE_FIELDS.contains(&path) || s.columns.iter().any(|c| c == path),
            View::Nothing => BASE_FIELDS.contains(&path),
        }
    }

    /// The case as this view shows it: hidden fields removed (nested ones too), and no
    /// `version` (that is the `ETag`).
    pub fn view(&self, c: &Case) -> CaseView {
        let shown = |path: &str, v: &Option<String>| v.clone().filter(|_| self.sees_field(path));
        let requester = c.requester.as_ref().map(|r| Requester {
            name: shown("requester.name", &r.name),
            email: shown("requester.email", &r.email),
            bsn: shown("requester.bsn", &r.bsn),
            kvk: shown("requester.kvk", &r.kvk),
        });
        let attributes: BTreeMap<String, Value> = c
            .attributes
            .iter()
            .filter(|(k, _)| self.sees_field(&format!("attributes.{k}")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        CaseView {
            id: c.id,
            uuid: c.uuid.clone(),
            case_type: c.case_type.clone(),
            status: c.status,
            registration_date: c.registration_date.clone(),
            target_date: c.target_date.clone(),
            closing_date: c.closing_date.clone(),
            created_at: c.created_at.clone(),
            updated_at: c.updated_at.clone(),
            subject: self.sees_field("subject").then(|| c.subject.clone()),
            phase: shown("phase", &c.phase),
            requester: requester.filter(|r| *r != Requester::default()),
            assignee: shown("assignee", &c.assignee),
            department: shown("department", &c.department),
            result: shown("result", &c.result),
            confidentiality: self
                .sees_field("confidentiality")
                .then_some(c.confidentiality),
            attributes,
        }
    }

    /// [`View::view`] as JSON.
    pub fn project(&self, c: &Case) -> Value {
        serde_json::to_value(self.view(c)).unwrap_or(Value::Null)
    }

    /// What a `case.*` event (`{case, previous, changed}`) may tell this view, or `None`
    /// when it must not hear of it: the case was never visible to it, or nothing it can
    /// see changed. A case that left the view is announced once, as `{id, uuid}` with
    /// `"visible": false`.
    pub fn event_data(&self, data: &Value) -> Option<Value> {
        let case: Case = serde_json::from_value(data.get("case")?.clone()).ok()?;
        let previous: Option<Case> = data
            .get("previous")
            .filter(|p| !p.is_null())
            .and_then(|p| serde_json::from_value(p.clone()).ok());
        let now = self.sees(&case);
        let before = previous.as_ref().is_some_and(|p| self.sees(p));
        if !now && !before {
            return None;
        }
        let changed: Vec<&str> = data
            .get("changed")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let changed: Vec<&str> = changed.into_iter().filter(|f| self.sees_field(f)).collect();
        if previous.is_some() && now == before && changed.is_empty() {
            return None;
        }
        let shown = if now {
            self.project(&case)
        } else {
            serde_json::json!({ "id": case.id, "uuid": case.uuid })
        };
        Some(serde_json::json!({ "case": shown, "visible": now, "changed": changed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn case() -> Case {
        serde_json::from_value(json!({
            "id": 7, "uuid": "u-7", "case_type": "permit", "subject": "Dakkapel",
            "status": "open", "requester": {"name": "J. Jansen", "bsn": "111222333"},
            "department": "Vergunningen", "registration_date": "2026-11-01",
            "confidentiality": "internal", "attributes": {"priority": 2, "paid": true},
            "version": 3, "created_at": "t", "updated_at": "t"
        }))
        .unwrap()
    }

    fn search(filters: Value, columns: &[&str]) -> View {
        View::of(Some(SavedSearch {
            workspace_id: "ws".into(),
            saved_search_id: "s".into(),
            name: "n".into(),
            filters: serde_json::from_value(filters).unwrap(),
            columns: columns.iter().map(|s| (*s).to_owned()).collect(),
            version: 1,
            created_at: "t".into(),
            updated_at: "t".into(),
        }))
    }

    #[test]
    fn events_show_only_what_the_view_sees() {
        let v = search(json!({"status": ["open"]}), &["subject"]);
        let c = case();
        let data = |c: &Case, prev: Option<&Case>, changed: &[&str]| json!({"case": c, "previous": prev, "changed": changed});
        let created = v
            .event_data(&data(&c, None, &["subject", "department"]))
            .unwrap();
        assert_eq!(created["changed"], json!(["subject"]));
        assert_eq!(created["case"]["subject"], "Dakkapel");
        assert!(created["case"].get("department").is_none());
        assert!(created["case"].get("requester").is_none());
        // Only a hidden field changed: nothing to tell.
        let mut moved = c.clone();
        moved.department = Some("Elders".into());
        assert!(
            v.event_data(&data(&moved, Some(&c), &["department"]))
                .is_none()
        );
        // Left the view: announced once, without its fields.
        let mut closed = c.clone();
        closed.status = Status::Closed;
        let gone = v.event_data(&data(&closed, Some(&c), &["status"])).unwrap();
        assert_eq!(gone["visible"], false);
        assert_eq!(gone["case"], json!({"id": 7, "uuid": "u-7"}));
        // Never visible: nothing at all.
        assert!(
            v.event_data(&data(&closed, Some(&closed), &["status"]))
                .is_none()
        );
        assert!(
            View::Nothing
                .event_data(&data(&c, None, &["subject"]))
                .is_none()
        );
        assert!(View::All.event_data(&data(&c, None, &[])).is_some());
    }

    #[test]
    fn status_names_are_serdes() {
        use strum::VariantNames;
        for name in Status::VARIANTS {
            let s: Status = name.parse().unwrap();
            assert_eq!(serde_json::to_value(s).unwrap(), *name);
            assert_eq!(serde_json::from_value::<Status>(json!(name)).unwrap(), s);
            assert_eq!(s.as_str(), *name);
        }
        assert_eq!(Status::VARIANTS.len(), 4);
        assert!("Open".parse::<Status>().is_err());
    }

    #[test]
    fn filters_match() {
        let c = case();
        assert!(search(json!({}), &[]).sees(&c));
        assert!(search(json!({"status": ["open", "closed"]}), &[]).sees(&c));
        assert!(!search(json!({"status": ["closed"]}), &[]).sees(&c));
        assert!(!search(json!({"department": ["Burgerzaken"]}), &[]).sees(&c));
        assert!(!search(json!({"assignee": ["usr_1"]}), &[]).sees(&c));
        assert!(
            search(
                json!({"registration_date": {"from": "2026-11-01", "to": "2026-11-30"}}),
                &[]
            )
            .sees(&c)
        );
        assert!(!search(json!({"registration_date": {"from": "2026-11-02"}}), &[]).sees(&c));
        assert!(!search(json!({"target_date": {"from": "2026-01-01"}}), &[]).sees(&c));
        assert!(search(json!({"max_confidentiality": "internal"}), &[]).sees(&c));
        assert!(!search(json!({"max_confidentiality": "public"}), &[]).sees(&c));
        let attr = |f: Value| search(json!({ "attributes": [f] }), &[]).sees(&c);
        assert!(attr(json!({"name": "priority", "op": "gte", "value": 2})));
        assert!(!attr(json!({"name": "priority", "op": "gt", "value": 2})));
        assert!(attr(json!({"name": "paid", "op": "eq", "value": true})));
        assert!(attr(json!({"name": "paid", "op": "exists"})));
        assert!(!attr(json!({"name": "missing", "op": "exists"})));
        assert!(!attr(json!({"name": "priority", "op": "eq", "value": "2"})));
        assert!(!View::Nothing.sees(&c));
        assert!(!View::of(None).sees(&c));
    }

    #[test]
    fn projection_keeps_base_and_columns_only() {
        let c = case();
        let v = search(json!({}), &["subject", "requester.name", "attributes.paid"]);
        let p = v.project(&c);
        assert_eq!(p["id"], 7);
        assert_eq!(p["status"], "open");
        assert_eq!(p["subject"], "Dakkapel");
        assert_eq!(p["requester"], json!({"name": "J. Jansen"}));
        assert_eq!(p["attributes"], json!({"paid": true}));
        for hidden in ["department", "confidentiality", "version"] {
            assert!(p.get(hidden).is_none(), "{hidden} leaked");
        }
        let bare = search(json!({}), &[]).project(&c);
        assert!(bare.get("requester").is_none() && bare.get("attributes").is_none());
        assert!(!v.sees_field("requester.bsn"));
        assert!(v.sees_field("registration_date"));
    }

    #[test]
    fn a_workspace_user_sees_the_whole_case_but_its_version() {
        let c = case();
        let mut full = serde_json::to_value(&c).unwrap();
        full.as_object_mut().unwrap().remove("version");
        assert_eq!(View::All.project(&c), full);
        let mut bare = c.clone();
        bare.requester = None;
        bare.attributes.clear();
        let shown = View::All.project(&bare);
        assert!(shown.get("requester").is_none() && shown.get("attributes").is_none());
    }

    #[test]
    fn the_case_schema_requires_the_base_fields_only() {
        let s = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<CaseView>();
        let v = s.as_value();
        assert_eq!(
            v["required"],
            json!([
                "id",
                "uuid",
                "case_type",
                "status",
                "registration_date",
                "created_at",
                "updated_at"
            ])
        );
        // Present fields are never null.
        assert_eq!(v["properties"]["subject"]["type"], "string");
        assert_eq!(v["properties"]["target_date"]["type"], "string");
        // Every column of a saved search is a property.
        for col in COLUMNS {
            let top = col.split('.').next().unwrap();
            assert!(v["properties"].get(top).is_some(), "{col}");
        }
    }
}
