//! The data-subject request as Dastra's API shows it: Dastra's names and types (ints for
//! ids, ISO-8601 UTC timestamps with milliseconds, enums as strings). One type serves the
//! stored document, the request body (after translated keys are renamed and read-only
//! fields removed) and the response.

use jiff::Timestamp;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use strum::{VariantArray, VariantNames};

use crate::aliases;

/// Fields the server owns: taken out of every body before it is read, so a client can
/// neither set them nor fail on their type.
pub const READ_ONLY: &[&str] = &[
    "id",
    "dateCreation",
    "dateUpdate",
    "creator",
    "expiryTime",
    "remainingDays",
    "closingTime",
    "dateClosed",
    "closedByUser",
    "archivedDate",
];

/// A point in time, written as Dastra writes it: `2022-08-31T10:24:32.381Z`. Accepts any
/// RFC 3339 time (converted to UTC), and a time without offset as UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub Timestamp);

impl Instant {
    pub fn format(&self) -> String {
        self.0.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(t) = s.parse::<Timestamp>() {
            return Some(Self(t));
        }
        let civil: jiff::civil::DateTime = s.parse().ok()?;
        civil
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| Self(z.timestamp()))
    }
}

impl JsonSchema for Instant {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DastraInstant".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "UTC with milliseconds, e.g. `2022-08-31T10:24:32.381Z`. On input \
                any RFC 3339 time (converted to UTC) or one without offset (taken as UTC).",
        })
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.format())
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            de::Error::custom(format!(
                "`{s}` is not an ISO-8601 time such as 2022-08-31T10:24:32.381Z"
            ))
        })
    }
}

/// An enum value as a string: translated and differently cased spellings map to Dastra's
/// (see `aliases`); it must be a plain word.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(pub String);

impl Label {
    pub fn new(s: &str) -> Self {
        Self(aliases::canonical_value(s))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let word = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && s.len() <= 64;
        if word {
            Ok(Self::new(s))
        } else {
            Err(format!("`{s}` is not an enum value"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn none() -> Self {
        Self("None".into())
    }

    pub fn is_none(&self) -> bool {
        self.0 == "None"
    }
}

impl JsonSchema for Label {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DastraEnumValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z][A-Za-z0-9_]*$",
            "maxLength": 64,
            "description": "A Dastra enum value, e.g. `Access` or `None`. On input, translated \
                spellings (`Geen`, `Onbekend`) and other casings are taken as Dastra's.",
        })
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

/// Where a request is in its life. A fixed set: the list's indexes are partitioned by it.
/// Named by its variants (any casing on input); serde goes through `Display`/`FromStr`.
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
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
    serde_with::SerializeDisplay,
    serde_with::DeserializeFromStr,
)]
#[strum(ascii_case_insensitive, parse_err_ty = String, parse_err_fn = not_a_state)]
pub enum State {
    #[default]
    Open,
    Pending,
    InProgress,
    Closed,
}

fn not_a_state(s: &str) -> String {
    format!(
        "`{s}` is not a state (one of {})",
        <State as VariantNames>::VARIANTS.join(", ")
    )
}

impl State {
    pub const ALL: &'static [State] = <Self as VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl JsonSchema for State {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DastraState".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": <Self as VariantNames>::VARIANTS,
            "description": "Where the request is in its life (any casing on input).",
        })
    }
}

/// A user as Dastra shows one. Dastra's user ids are numbers; Koppel's are strings, so
/// `id` is a stable number derived from the Koppel user id, which `koppelUserId` carries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraUser")]
pub struct UserRef {
    pub id: Option<i64>,
    pub display_name: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub email: Option<String>,
    pub color: Option<String>,
    pub avatar_url: Option<String>,
    pub tenant_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub koppel_user_id: Option<String>,
}

/// The number Dastra clients see as the id of the Koppel user `user_id`: stable, positive,
/// and not unique (two users may share one; `koppelUserId` names a user for certain).
pub fn dastra_id(user_id: &str) -> i64 {
    i64::from(crc32fast::hash(user_id.as_bytes()) & 0x7fff_ffff)
}

impl UserRef {
    pub fn of(user: &koppel_shared::model::User) -> Self {
        Self {
            id: Some(dastra_id(&user.user_id)),
            display_name: Some(user.name.clone()),
            email: Some(user.email.clone()),
            koppel_user_id: Some(user.user_id.clone()),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraTeam")]
pub struct Team {
    pub id: Option<i64>,
    pub label: Option<String>,
    pub r#ref: Option<String>,
    pub areas: Option<Vec<i64>>,
    pub users: Option<Vec<i64>>,
}

/// An actor (DPO, referent, representative) of an area.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraActor")]
pub struct Actor {
    pub id: Option<i64>,
    pub display_name: Option<String>,
    pub date_creation: Option<Instant>,
    pub date_update: Option<Instant>,
    pub logo_url: Option<String>,
    pub actor_type: Option<Label>,
    pub vendor_type: Option<Label>,
    pub access_level: Option<Label>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub company_name: Option<String>,
    pub description: Option<String>,
    pub country_code: Option<String>,
    pub readonly: Option<bool>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub contact_name: Option<String>,
    pub contact_position: Option<String>,
    pub immatriculation_number: Option<String>,
    pub website_url: Option<String>,
    pub address: Option<String>,
    pub zip_code: Option<String>,
    pub city: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraAuthority")]
pub struct Authority {
    pub id: Option<i64>,
    pub label: Option<String>,
    #[serde(rename = "siteURL")]
    pub site_url: Option<String>,
    pub phone_number: Option<String>,
    pub email: Option<String>,
    pub country_code: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub zip_code: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraArea")]
pub struct Area {
    pub order: Option<i64>,
    /// Dastra's documentation shows strings here; kept as sent.
    pub children: Option<Vec<Value>>,
    pub teams: Option<Vec<Team>>,
    pub id: Option<i64>,
    pub r#type: Option<Label>,
    pub parent_id: Option<i64>,
    pub r#ref: Option<String>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    pub address: Option<String>,
    pub zip_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<String>,
    pub immatriculation_number: Option<String>,
    pub phone_number: Option<String>,
    pub mail_address: Option<String>,
    pub dpo: Option<Actor>,
    pub referent: Option<Actor>,
    pub representative: Option<Actor>,
    pub data_protection_authority: Option<Authority>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraAttachment")]
pub struct Attachment {
    pub id: Option<String>,
    pub extension: Option<String>,
    pub size: Option<i64>,
    pub nb_download: Option<i64>,
    pub transmitted: Option<bool>,
    pub file_name: Option<String>,
    pub label: Option<String>,
    pub user_request_message_id: Option<String>,
    pub user_request_id: Option<i64>,
    pub date_creation: Option<Instant>,
    pub date_update: Option<Instant>,
    pub creator: Option<UserRef>,
    pub expiration: Option<Instant>,
    pub date_last_download: Option<Instant>,
    pub date_file_removed: Option<Instant>,
    pub deleted: Option<bool>,
    pub expired: Option<bool>,
    pub color: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraTag")]
pub struct Tag {
    pub id: Option<i64>,
    pub label: Option<String>,
    pub r#type: Option<Label>,
    pub color: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DastraWorkFlowStep")]
pub struct WorkFlowStep {
    pub id: Option<i64>,
    pub label: Option<String>,
    pub color: Option<String>,
    pub order: Option<i64>,
    pub item_limit: Option<i64>,
    pub r#type: Option<Label>,
    pub final_step: Option<bool>,
    pub initial_step: Option<bool>,
    pub description_html: Option<String>,
    pub mapped_state: Option<String>,
}

/// A data-subject request, field for field as in Dastra's model. On input the read-only
/// fields (server-owned) and unknown fields are ignored, and the translated keys
/// (`doeleinden`, `gebieden`, `gebruikers`, `volgorde`) are taken as Dastra's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "DataSubjectRequest")]
pub struct Dsr {
    #[schemars(extend("readOnly" = true))]
    pub closed_by_user: Option<UserRef>,
    pub area: Option<Area>,
    #[schemars(extend("readOnly" = true))]
    pub creator: Option<UserRef>,
    pub operator: Option<UserRef>,
    pub operator_id: Option<i64>,
    pub attachments: Option<Vec<Attachment>>,
    pub tags: Option<Vec<Tag>>,
    #[schemars(extend("readOnly" = true))]
    pub id: i64,
    pub title: Option<String>,
    pub locale: Option<String>,
    pub archived: bool,
    #[schemars(extend("readOnly" = true))]
    pub archived_date: Option<Instant>,
    pub person_category: Option<Label>,
    pub complex: bool,
    #[schemars(extend("readOnly" = true))]
    pub date_closed: Option<Instant>,
    pub area_id: Option<i64>,
    pub state: State,
    pub description: Option<String>,
    pub message: Option<String>,
    pub resolution_message: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    #[schemars(extend("readOnly" = true))]
    pub date_creation: Option<Instant>,
    #[schemars(extend("readOnly" = true))]
    pub date_update: Option<Instant>,
    pub work_flow_step: Option<WorkFlowStep>,
    pub work_flow_step_id: Option<i64>,
    pub channel: Option<Label>,
    pub ref_id: Option<String>,
    pub user_id: Option<String>,
    pub purposes: Vec<Label>,
    pub closed_reason: Option<Label>,
    pub closed_reason_description: Option<String>,
    #[schemars(extend("readOnly" = true))]
    pub expiry_time: Option<Instant>,
    pub address: Option<String>,
    pub zip_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<String>,
    pub nb_messages: i64,
    pub nb_messages_not_viewed: i64,
    /// Computed when the request is read; never stored.
    #[schemars(extend("readOnly" = true))]
    pub remaining_days: Option<i64>,
    #[schemars(extend("readOnly" = true))]
    pub closing_time: Option<i64>,
    pub additional_datas: Option<String>,
    pub user_notified: Option<bool>,
    pub date_user_notified: Option<Instant>,
    pub send_notification: Option<bool>,
    pub email_validation_date: Option<Instant>,
    pub mail_validated: Option<bool>,
    pub referrer_url: Option<String>,
    pub demand_id: Option<String>,
    pub identity_validated: Option<bool>,
    pub date_identity_validated: Option<Instant>,
    pub widget_id: Option<i64>,
}

/// The create body: a [`Dsr`] with at least one purpose.
pub struct NewDsr;

impl JsonSchema for NewDsr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NewDataSubjectRequest".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let dsr = g.subschema_for::<Dsr>();
        json_schema!({
            "description": "A data-subject request to create: at least one purpose.",
            "allOf": [dsr],
            "required": ["purposes"],
            "properties": { "purposes": { "minItems": 1 } },
        })
    }
}

/// A page of the list, as Dastra answers it.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "DataSubjectRequestPage")]
pub struct DsrPage {
    pub items: Vec<Dsr>,
    /// How many requests match, on every page.
    pub total: usize,
    pub size: u32,
    /// From 1.
    pub page: u32,
}

/// A body as a client sent it, made ready to read: translated keys renamed, read-only
/// fields removed. Unknown fields stay; reading ignores them.
pub fn writable_part(body: Value) -> Value {
    let mut v = aliases::normalize_keys(body);
    if let Value::Object(map) = &mut v {
        for k in READ_ONLY {
            map.remove(*k);
        }
    }
    v
}

/// `stored` with every writable field present in `body` replaced: a PUT changes what it
/// sends (`null` clears) and keeps what it leaves out.
pub fn overlay(stored: &Dsr, body: Value) -> Value {
    let mut merged = serde_json::to_value(stored).expect("a Dsr is JSON");
    if let (Value::Object(m), Value::Object(b)) = (&mut merged, writable_part(body)) {
        for (k, v) in b {
            m.insert(k, v);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instants_are_written_with_milliseconds_in_utc() {
        let i = Instant::parse("2022-08-31T12:24:32.38+02:00").unwrap();
        assert_eq!(i.format(), "2022-08-31T10:24:32.380Z");
        assert_eq!(
            Instant::parse("2022-08-31T10:24:32").unwrap().format(),
            "2022-08-31T10:24:32.000Z"
        );
        assert!(Instant::parse("31-08-2022").is_none());
    }

    #[test]
    fn labels_and_states() {
        assert_eq!(Label::parse("Geen").unwrap().as_str(), "None");
        assert!(Label::parse("two words").is_err());
        assert!(Label::parse("").is_err());
        assert_eq!(State::parse("closed").unwrap(), State::Closed);
        assert_eq!(State::parse("INPROGRESS").unwrap(), State::InProgress);
        assert_eq!(
            State::parse("Done").unwrap_err(),
            "`Done` is not a state (one of Open, Pending, InProgress, Closed)"
        );
    }

    #[test]
    fn a_state_has_one_name() {
        let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["Open", "Pending", "InProgress", "Closed"]);
        for &st in State::ALL {
            assert_eq!(serde_json::to_value(st).unwrap(), json!(st.as_str()));
            assert_eq!(st.to_string(), st.as_str());
            let lower = st.as_str().to_lowercase();
            assert_eq!(serde_json::from_value::<State>(json!(lower)).unwrap(), st);
        }
        let e = serde_json::from_value::<State>(json!("Done")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`Done` is not a state (one of Open, Pending, InProgress, Closed)"
        );
    }

    #[test]
    fn read_only_fields_are_dropped_and_translations_renamed() {
        let v = writable_part(json!({
            "id": "not a number", "remainingDays": "x", "title": "t", "doeleinden": ["Onbekend"],
        }));
        assert_eq!(v, json!({ "title": "t", "purposes": ["Onbekend"] }));
        let d: Dsr = serde_json::from_value(v).unwrap();
        assert_eq!(d.purposes, vec![Label("Unknown".into())]);
    }

    /// The document's schemas, as the OpenAPI generator builds them.
    fn definitions() -> serde_json::Map<String, Value> {
        let mut g = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        g.subschema_for::<NewDsr>();
        g.subschema_for::<DsrPage>();
        g.take_definitions(true)
    }

    #[test]
    fn the_schema_has_dastras_names_marks_the_read_only_fields_and_allows_others() {
        let defs = definitions();
        let dsr = &defs["DataSubjectRequest"];
        let props = dsr["properties"].as_object().unwrap();
        // Every field of the JSON a request is written as, by its camelCase name.
        let written = serde_json::to_value(Dsr::default()).unwrap();
        let mut want: Vec<&String> = written.as_object().unwrap().keys().collect();
        let mut have: Vec<&String> = props.keys().collect();
        have.sort();
        want.sort();
        assert_eq!(have, want);
        let mut read_only: Vec<&str> = props
            .iter()
            .filter(|(_, v)| v["readOnly"] == json!(true))
            .map(|(k, _)| k.as_str())
            .collect();
        read_only.sort();
        let mut owned = READ_ONLY.to_vec();
        owned.sort();
        assert_eq!(read_only, owned);
        // Unknown fields are ignored, so nothing forbids them; nothing is required.
        assert!(dsr.get("additionalProperties").is_none());
        assert!(dsr.get("required").is_none());
        assert_eq!(props["state"]["$ref"], "#/$defs/DastraState");
        assert_eq!(
            defs["DastraState"]["enum"],
            json!(["Open", "Pending", "InProgress", "Closed"])
        );
        assert_eq!(
            props["purposes"]["items"]["$ref"],
            "#/$defs/DastraEnumValue"
        );
        let area = defs["DastraArea"]["properties"].as_object().unwrap();
        assert!(area.contains_key("dataProtectionAuthority") && area.contains_key("parentId"));
        assert!(defs["DastraAuthority"]["properties"]["siteURL"].is_object());
    }

    #[test]
    fn a_create_needs_a_purpose_and_a_list_page_is_dastras() {
        let defs = definitions();
        let new = &defs["NewDataSubjectRequest"];
        assert_eq!(new["allOf"][0]["$ref"], "#/$defs/DataSubjectRequest");
        assert_eq!(new["required"], json!(["purposes"]));
        assert_eq!(new["properties"]["purposes"]["minItems"], 1);
        let page = &defs["DataSubjectRequestPage"];
        let mut keys: Vec<&String> = page["properties"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["items", "page", "size", "total"]);
        let body = DsrPage {
            items: vec![Dsr::default()],
            total: 41,
            size: 20,
            page: 3,
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            (v["total"].clone(), v["size"].clone(), v["page"].clone()),
            (json!(41), json!(20), json!(3))
        );
        assert_eq!(v["items"][0]["state"], "Open");
    }

    #[test]
    fn overlay_keeps_what_the_body_leaves_out() {
        let stored = Dsr {
            id: 7,
            title: Some("a".into()),
            email: Some("x@example.org".into()),
            ..Dsr::default()
        };
        let merged: Dsr =
            serde_json::from_value(overlay(&stored, json!({ "id": 99, "email": null }))).unwrap();
        assert_eq!(merged.id, 7);
        assert_eq!(merged.title.as_deref(), Some("a"));
        assert_eq!(merged.email, None);
    }
}
