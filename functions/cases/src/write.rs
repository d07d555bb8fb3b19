//! Creating and changing cases. A body is a JSON merge patch (RFC 7396) over the case: on
//! create over an empty case, on `PATCH` over the current one. Every field it names must be
//! known, writable and visible to the caller; every problem is listed in one 422.

use http::{HeaderValue, StatusCode, header};
use koppel_shared::body::{self, Fields};
use koppel_shared::cases::{Case, CaseAnswer, Confidentiality, Requester, Status, View};
use koppel_shared::outbox::Event;
use koppel_shared::pipeline::RouteResult;
use koppel_shared::preconditions;
use koppel_shared::store::StoreError;
use koppel_shared::time_util::{now, rfc3339};
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::Request;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::repo::{self, Change, HistoryEntry};
use crate::{paths, rules};

/// Every top-level field of a case.
const KNOWN: [&str; 17] = [
    "id",
    "uuid",
    "case_type",
    "subject",
    "status",
    "phase",
    "requester",
    "assignee",
    "department",
    "registration_date",
    "target_date",
    "closing_date",
    "result",
    "confidentiality",
    "attributes",
    "version",
    "created_at",
];

/// Fields the server owns: a create or patch naming them is refused.
const READ_ONLY: [&str; 7] = [
    "id",
    "uuid",
    "closing_date",
    "version",
    "created_at",
    "updated_at",
    "registration_date",
];

// What [`check_fields`] and [`merge`] accept, as JSON Schema for the contract: the body is
// read as a merge patch (a JSON object), not as these types, which only describe it. Kept
// here, next to the checks, so a change to one shows beside the other (a unit test holds
// their field names to `KNOWN` and `READ_ONLY`). `serde(default, skip_serializing_if)` with
// `schemars(with)` marks a field optional but not nullable: `null` is refused for it.

/// A new case: a merge patch over an empty case. Every field outside the caller's saved
/// search's columns is refused (422 naming it).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct NewCase {
    pub case_type: String,
    pub subject: String,
    /// Default `open`; closing needs a `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Status")]
    pub status: Option<Status>,
    pub phase: Option<String>,
    pub requester: Option<Requester>,
    /// A user id of this workspace.
    pub assignee: Option<String>,
    pub department: Option<String>,
    /// `YYYY-MM-DD`; default today (Europe/Amsterdam).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub registration_date: Option<String>,
    /// `YYYY-MM-DD`.
    pub target_date: Option<String>,
    pub result: Option<String>,
    /// Default `internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Confidentiality")]
    pub confidentiality: Option<Confidentiality>,
    #[schemars(schema_with = "attribute_patch")]
    pub attributes: Option<Map<String, Value>>,
}

/// A change: a JSON merge patch (RFC 7396) over the case; `null` clears a field (an
/// attribute, a requester part). `case_type` and the fields Koppel sets cannot be written.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct CasePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub subject: Option<String>,
    /// Closing needs a `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Status")]
    pub status: Option<Status>,
    pub phase: Option<String>,
    pub requester: Option<Requester>,
    /// A user id of this workspace.
    pub assignee: Option<String>,
    pub department: Option<String>,
    /// `YYYY-MM-DD`.
    pub target_date: Option<String>,
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Confidentiality")]
    pub confidentiality: Option<Confidentiality>,
    #[schemars(schema_with = "attribute_patch")]
    pub attributes: Option<Map<String, Value>>,
}

/// Attributes in a body: text, a number, a boolean, or `null` to remove one.
fn attribute_patch(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["object", "null"],
        "propertyNames": { "pattern": "^[a-z][a-z0-9_]{0,63}$" },
        "additionalProperties": { "type": ["string", "number", "boolean", "null"] },
    })
}

/// Refuses unknown, read-only and hidden fields, naming each.
pub fn check_fields(
    body: &Map<String, Value>,
    view: &View,
    creating: bool,
) -> Result<(), ApiError> {
    let mut e = Fields::new();
    for k in body.keys() {
        let k = k.as_str();
        if !KNOWN.contains(&k) && k != "updated_at" {
            e.push(k, "is not a known field");
        } else if READ_ONLY.contains(&k) && !(creating && k == "registration_date") {
            e.push(k, "is set by Koppel and cannot be written");
        } else if !creating && k == "case_type" {
            e.push(k, "cannot change once the case exists");
        }
    }
    if e.is_empty() {
        for path in paths::patch_paths(body) {
            if !view.sees_field(&path) {
                e.push(
                    path,
                    "is not visible to this connector's saved search, so it cannot be written",
                );
            }
        }
    }
    for f in ["case_type", "subject", "status", "confidentiality"] {
        if body.get(f).is_some_and(Value::is_null) {
            e.push(f, "cannot be null");
        }
    }
    // Closing needs a result; a caller that cannot see `result` gets the same answer
    // whatever the stored one is, so the refusal tells it nothing about a hidden field.
    if body.get("status").and_then(Value::as_str) == Some("closed") && !view.sees_field("result") {
        e.push(
            "status",
            "closing needs a `result`, which is not in this connector's columns",
        );
    }
    if creating {
        for f in ["case_type", "subject"] {
            if !body.contains_key(f) {
                e.push(f, "is required");
            }
        }
    }
    e.finish()
}

/// Applies `body` to `current` as a merge patch and reads the result as a case (422 naming
/// the field for a wrong type).
pub fn merge(current: &Case, body: &Map<String, Value>) -> Result<Case, ApiError> {
    let mut doc = serde_json::to_value(current).map_err(ApiError::internal)?;
    json_patch::merge(&mut doc, &Value::Object(body.clone()));
    let raw = serde_json::to_vec(&doc).map_err(ApiError::internal)?;
    let mut c: Case = body::parse(&raw)?;
    if c.requester
        .as_ref()
        .is_some_and(|r| *r == Default::default())
    {
        c.requester = None;
    }
    Ok(c)
}

/// The server's part of a change: the closing date follows the status.
pub fn settle(old: Option<&Case>, c: &mut Case, today: &str) {
    let was_closed = old.is_some_and(|o| o.status == Status::Closed);
    c.closing_date = match (c.status, was_closed) {
        (Status::Closed, true) => old.and_then(|o| o.closing_date.clone()),
        (Status::Closed, false) => Some(today.to_owned()),
        _ => None,
    };
}

/// Shape and rules of a case, plus those that need the store: a new assignee exists (one
/// set before and since removed does not block changes to other fields).
async fn check(ctx: &Ctx, ws: &str, c: &Case, old: Option<&Case>) -> Result<(), ApiError> {
    let mut e = Fields::new();
    rules::validate(c, &mut e);
    if let Some(a) = &c.assignee
        && old.is_none_or(|o| o.assignee.as_ref() != Some(a))
        && !assignee_exists(ctx, ws, a).await?
    {
        e.push("assignee", "no such user in this workspace");
    }
    e.finish()
}

async fn assignee_exists(ctx: &Ctx, ws: &str, user: &str) -> Result<bool, StoreError> {
    Ok(user.len() <= 64 && ctx.store.user(ws, user).await?.is_some())
}

pub fn today() -> String {
    koppel_shared::calendar::today(jiff::Timestamp::now()).to_string()
}

/// A new case from a create body (id and uuid still to be given).
pub fn new_case(
    body: &Map<String, Value>,
    view: &View,
    at: &str,
    today: &str,
) -> Result<Case, ApiError> {
    check_fields(body, view, true)?;
    let blank = Case {
        id: 0,
        uuid: String::new(),
        case_type: String::new(),
        subject: String::new(),
        status: Status::Open,
        phase: None,
        requester: None,
        assignee: None,
        department: None,
        registration_date: today.to_owned(),
        target_date: None,
        closing_date: None,
        result: None,
        confidentiality: Confidentiality::default(),
        attributes: Default::default(),
        version: 1,
        created_at: at.to_owned(),
        updated_at: at.to_owned(),
    };
    let mut c = merge(&blank, body)?;
    settle(None, &mut c, today);
    Ok(c)
}

fn entry(p: &Principal, version: u64, at: &str, changes: Vec<Change>) -> HistoryEntry {
    HistoryEntry {
        version,
        at: at.to_owned(),
        user_id: p.user_id.clone(),
        connector_id: p.connector_id.clone(),
        credential_id: p.credential_id.clone(),
        changes,
    }
}

/// The event a subscriber's dispatcher filters per connector: the whole case, what
/// changed, and (on updates) the case before, so it can tell whether the connector saw it.
fn event(kind: &str, ws: &str, c: &Case, previous: Option<&Case>, changed: &[Change]) -> Event {
    Event::new(
        kind,
        ws,
        json!({
            "case": c,
            "previous": previous,
            "changed": changed.iter().map(|ch| ch.field.as_str()).collect::<Vec<_>>(),
        }),
    )
}

pub async fn create(p: &Principal, req: &Request, ctx: &Ctx, view: &View) -> RouteResult {
    let body: Map<String, Value> = body::json(req)?;
    let at = rfc3339(now());
    let mut c = new_case(&body, view, &at, &today())?;
    check(ctx, &p.workspace_id, &c, None).await?;
    c.id = ctx.store.next_case_ids(&p.workspace_id, 1).await?;
    c.uuid = uuid::Uuid::new_v4().to_string();
    let changes: Vec<Change> = c
        .fields()
        .into_iter()
        .filter(|(f, v)| {
            !v.is_null() && !matches!(f.as_str(), "id" | "uuid" | "created_at" | "updated_at")
        })
        .map(|(field, new)| Change {
            field,
            old: Value::Null,
            new,
        })
        .collect();
    let ev = event("case.created", &p.workspace_id, &c, None, &changes);
    repo::create(ctx, &p.workspace_id, &c, &entry(p, 1, &at, changes), &[ev]).await?;
    let location = format!("/v1/cases/{}", c.id);
    let mut r = if view.sees(&c) {
        crate::versioned(
            StatusCode::CREATED,
            &CaseAnswer::Visible(Box::new(view.view(&c))),
            c.version,
        )?
    } else {
        crate::no_longer_visible(StatusCode::CREATED, &c)?
    };
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(ApiError::internal)?,
    );
    Ok(r)
}

pub async fn update(
    p: &Principal,
    req: &Request,
    ctx: &Ctx,
    view: &View,
    current: Case,
) -> RouteResult {
    preconditions::require(req, current.version)?;
    let body: Map<String, Value> = body::json(req)?;
    check_fields(&body, view, false)?;
    let mut c = merge(&current, &body)?;
    settle(Some(&current), &mut c, &today());
    check(ctx, &p.workspace_id, &c, Some(&current)).await?;
    let changes: Vec<Change> = paths::changes(&current, &c)
        .into_iter()
        .map(|(field, old, new)| Change { field, old, new })
        .collect();
    if changes.is_empty() {
        return crate::versioned(
            StatusCode::OK,
            &CaseAnswer::Visible(Box::new(view.view(&current))),
            current.version,
        );
    }
    let at = rfc3339(now());
    c.version = current.version + 1;
    c.updated_at = at.clone();
    let ws = &p.workspace_id;
    let mut events = vec![event("case.updated", ws, &c, Some(&current), &changes)];
    if c.status == Status::Closed && current.status != Status::Closed {
        events.push(event("case.closed", ws, &c, Some(&current), &changes));
    }
    match repo::update(
        ctx,
        ws,
        &c,
        current.version,
        &entry(p, c.version, &at, changes),
        &events,
    )
    .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(preconditions::lost_race()),
        Err(e) => return Err(e.into()),
    }
    if view.sees(&c) {
        crate::versioned(
            StatusCode::OK,
            &CaseAnswer::Visible(Box::new(view.view(&c))),
            c.version,
        )
    } else {
        crate::no_longer_visible(StatusCode::OK, &c)
    }
}

/// Checks import lines as a workspace user's creates (assignees included), listing up to
/// 20 problems by line: the cases, not yet numbered or written.
pub async fn check_import(
    ctx: &Ctx,
    ws: &str,
    bodies: &[(usize, Map<String, Value>)],
) -> Result<Vec<Case>, String> {
    let at = rfc3339(now());
    let today = today();
    let mut known: std::collections::HashMap<String, bool> = Default::default();
    let mut cases = Vec::with_capacity(bodies.len());
    let mut problems = Vec::new();
    for (line, body) in bodies {
        let mut checked = new_case(body, &View::All, &at, &today).and_then(|c| {
            let mut e = Fields::new();
            rules::validate(&c, &mut e);
            e.finish().map(|()| c)
        });
        if let Ok(c) = &checked
            && let Some(a) = &c.assignee
        {
            let exists = match known.get(a) {
                Some(v) => *v,
                None => {
                    let v = assignee_exists(ctx, ws, a)
                        .await
                        .map_err(|e| e.to_string())?;
                    known.insert(a.clone(), v);
                    v
                }
            };
            if !exists {
                checked = Err(ApiError::unprocessable(vec![
                    koppel_shared::error::FieldError {
                        field: "assignee".into(),
                        message: "no such user in this workspace".into(),
                    },
                ]));
            }
        }
        match checked {
            Ok(c) => cases.push(c),
            Err(e) if e.errors.is_empty() => problems.push(format!("line {line}: {}", e.detail)),
            Err(e) => problems.extend(
                e.errors
                    .iter()
                    .map(|f| format!("line {line}: {} {}", f.field, f.message)),
            ),
        }
        if problems.len() >= 20 {
            break;
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems.join("\n"))
    }
}

/// Bulk load for demos, migrations and load tests: the lines are checked
/// ([`check_import`]), ids reserved with one counter update, and the cases written in
/// batches. An import is not a change by anyone, so it writes no history and emits no
/// events.
pub async fn import(
    ctx: &Ctx,
    ws: &str,
    bodies: &[(usize, Map<String, Value>)],
) -> Result<Vec<u64>, String> {
    let mut cases = check_import(ctx, ws, bodies).await?;
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    let first = ctx
        .store
        .next_case_ids(ws, cases.len() as u64)
        .await
        .map_err(|e| e.to_string())?;
    for (i, c) in cases.iter_mut().enumerate() {
        c.id = first + i as u64;
        c.uuid = uuid::Uuid::new_v4().to_string();
    }
    repo::import(&ctx.store, ws, &cases)
        .await
        .map_err(|e| e.to_string())?;
    Ok(cases.iter().map(|c| c.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::search;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn fields_of(e: ApiError) -> Vec<String> {
        e.errors.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn create_needs_type_and_subject_and_refuses_server_fields() {
        let e = new_case(
            &obj(json!({"id": 3, "colour": "red"})),
            &View::All,
            "t",
            "2026-11-23",
        )
        .unwrap_err();
        assert_eq!(fields_of(e), ["colour", "id", "case_type", "subject"]);
        let c = new_case(
            &obj(
                json!({"case_type": "permit", "subject": "x", "status": "closed", "result": "ok"}),
            ),
            &View::All,
            "t",
            "2026-11-23",
        )
        .unwrap();
        assert_eq!(c.closing_date.as_deref(), Some("2026-11-23"));
        assert_eq!(c.registration_date, "2026-11-23");
    }

    #[test]
    fn hidden_fields_cannot_be_written() {
        let v = search(json!({"status": ["open"]}), &["subject", "requester.name"]);
        let e = check_fields(
            &obj(json!({"subject": "x", "requester": {"name": "a", "bsn": "111222333"}, "department": "d", "attributes": {"a": 1}})),
            &v,
            false,
        )
        .unwrap_err();
        let mut f = fields_of(e);
        f.sort();
        assert_eq!(f, ["attributes.a", "department", "requester.bsn"]);
        assert!(
            check_fields(
                &obj(json!({"subject": "x", "requester": {"name": null}})),
                &v,
                false
            )
            .is_ok()
        );
        let e = check_fields(&obj(json!({"case_type": "x"})), &View::All, false).unwrap_err();
        assert_eq!(fields_of(e), ["case_type"]);
    }

    #[test]
    fn merge_patch_semantics() {
        let base = new_case(
            &obj(json!({"case_type": "permit", "subject": "x", "requester": {"name": "a", "kvk": "12345678"}, "attributes": {"a": 1, "b": true}})),
            &View::All,
            "t",
            "2026-11-01",
        )
        .unwrap();
        let c = merge(
            &base,
            &obj(json!({"requester": {"kvk": null}, "attributes": {"a": null, "c": "x"}})),
        )
        .unwrap();
        assert_eq!(c.requester.as_ref().unwrap().name.as_deref(), Some("a"));
        assert_eq!(c.requester.as_ref().unwrap().kvk, None);
        assert_eq!(c.attributes.keys().collect::<Vec<_>>(), ["b", "c"]);
        let c = merge(
            &base,
            &obj(json!({"requester": {"name": null, "kvk": null}})),
        )
        .unwrap();
        assert_eq!(c.requester, None);
        let e = merge(&base, &obj(json!({"status": "lost"}))).unwrap_err();
        assert_eq!(fields_of(e), ["status"]);
        let e = merge(&base, &obj(json!({"requester": {"phone": "1"}}))).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn closing_date_follows_status() {
        let mut c = new_case(
            &obj(json!({"case_type": "t", "subject": "s"})),
            &View::All,
            "t",
            "2026-11-01",
        )
        .unwrap();
        let open = c.clone();
        c.status = Status::Closed;
        settle(Some(&open), &mut c, "2026-11-02");
        assert_eq!(c.closing_date.as_deref(), Some("2026-11-02"));
        let closed = c.clone();
        settle(Some(&closed), &mut c, "2026-11-05");
        assert_eq!(c.closing_date.as_deref(), Some("2026-11-02"));
        c.status = Status::Open;
        settle(Some(&closed), &mut c, "2026-11-05");
        assert_eq!(c.closing_date, None);
    }
}
