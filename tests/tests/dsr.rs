//! Dastra-compatible data-subject requests end to end: the seed's own JSON bodies (seed
//! 002, with their translated keys and values), every list parameter alone and combined,
//! paging, the workspace boundary, access levels, and concurrent creates.
//!
//! The seed is an automatic translation of Dastra's documentation. Besides Dutch keys and
//! values it left a full stop after some string values (`"mappedState": "string".`), which
//! makes those bodies invalid JSON, and it cut the PUT body off after its 42nd line. The
//! fixtures in `tests/fixtures/dastra/` are the seed's text verbatim; `repair` removes only
//! those stray full stops, and the PUT body is completed with the rest of the seed's own
//! model, which its first 42 lines copy.

use std::collections::BTreeSet;

use koppel_e2e::*;
use serde_json::{Value, json};

const POST: &str = include_str!("../fixtures/dastra/post.txt");
const MODEL: &str = include_str!("../fixtures/dastra/model.txt");
const GET_RESPONSE: &str = include_str!("../fixtures/dastra/get-response.txt");
const LIST_RESPONSE: &str = include_str!("../fixtures/dastra/list-response.txt");
const PUT_TRUNCATED: &str = include_str!("../fixtures/dastra/put-truncated.txt");

/// The seed's text without the translation's full stops after string values.
fn repair(seed: &str) -> String {
    seed.replace("\".\n", "\"\n")
}

fn seed_json(seed: &str) -> Value {
    serde_json::from_str(&repair(seed)).expect("the repaired seed body is JSON")
}

/// The seed's PUT body: its 42 lines, then the rest of the seed's model.
fn seed_put_body() -> Value {
    let rest: Vec<&str> = MODEL.lines().skip(PUT_TRUNCATED.lines().count()).collect();
    let text = format!("{PUT_TRUNCATED}\n{}", rest.join("\n"));
    let v = seed_json(&text);
    assert_eq!(
        v["area"]["teams"][0]["areas"],
        json!([0]),
        "the PUT's own lines"
    );
    v
}

/// A workspace of its own (so totals are exact) with a `handle` connector token that may
/// make many requests: (workspace id, owner user id, `Authorization` value).
fn workspace(level: &str) -> (String, String, String) {
    let (ws_id, owner) = new_workspace("dsr e2e");
    let (_, auth) = NewConnector::sample(&ws_id, &owner)
        .description("dsr e2e")
        .level(level)
        .scopes(&["dsr:read", "dsr:write"])
        .rate_limit(1000)
        .with_token();
    (ws_id, owner, auth)
}

struct Api {
    ws: String,
    auth: String,
}

impl Api {
    fn new(level: &str) -> (Self, String) {
        let (ws, owner, auth) = workspace(level);
        (Self { ws, auth }, owner)
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1/ws/{}/DataSubjectRequests{rest}", self.ws)
    }

    async fn call(&self, method: &str, rest: &str, body: Option<&Value>) -> Reply {
        send(
            &base_url(),
            method,
            &self.path(rest),
            &[("Authorization", &self.auth)],
            body,
        )
        .await
    }

    async fn create(&self, body: Value) -> Value {
        let r = self.call("POST", "", Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    async fn put(&self, id: &Value, body: Value) -> Reply {
        self.call("PUT", &format!("/{id}"), Some(&body)).await
    }

    /// A change to request `id` and a new request are both refused with `status`.
    async fn assert_writes_refused(&self, id: &Value, status: u16) {
        self.put(id, json!({ "title": "x" }))
            .await
            .assert_problem(status);
        self.call("POST", "", Some(&json!({ "purposes": ["Access"] })))
            .await
            .assert_problem(status);
    }

    /// The list for `query`; asserts 200.
    async fn list(&self, query: &str) -> Value {
        let r = self.call("GET", &format!("?{query}"), None).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r.body
    }

    /// The ids of the list for `query`, in order, and its total.
    async fn ids(&self, query: &str) -> (Vec<i64>, u64) {
        let b = self.list(query).await;
        let ids = b["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["id"].as_i64().expect("int id"))
            .collect();
        (ids, b["total"].as_u64().expect("total"))
    }
}

/// Sends a raw body (not necessarily JSON).
async fn send_text(api: &Api, method: &str, rest: &str, text: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{}", base_url(), api.path(rest)),
        )
        .header("Authorization", &api.auth)
        .header("Content-Type", "application/json")
        .body(text.to_owned())
        .send()
        .await
        .expect("gateway");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The fields a 422 names, in order.
fn field_names(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|e| e.iter().map(|f| s(&f["field"]).to_owned()).collect())
        .unwrap_or_default()
}

fn time(v: &Value) -> jiff::Timestamp {
    let t = s(v);
    assert_eq!(t.len(), 24, "ISO-8601 UTC with milliseconds: {t}");
    assert!(t.ends_with('Z'), "{t}");
    koppel_shared::time_util::parse_rfc3339(t).unwrap()
}

fn no_translated_names(v: &Value) {
    let text = v.to_string();
    for dutch in [
        "doeleinden",
        "gebieden",
        "gebruikers",
        "volgorde",
        "Geen",
        "Onbekend",
    ] {
        assert!(!text.contains(dutch), "{dutch} in {text}");
    }
}

#[tokio::test]
async fn the_seeds_post_body_creates_a_request() {
    let (api, owner) = Api::new("handle");
    // Verbatim, the translation's full stop makes it malformed JSON: 400 saying where.
    let (status, body) = send_text(&api, "POST", "", POST).await;
    assert_eq!(status, 400, "{body}");
    assert!(s(&body["detail"]).contains("line 31"), "{body}");

    // Its `userId` is the placeholder "string", which names no user of the workspace.
    let mut body = seed_json(POST);
    let r = api.call("POST", "", Some(&body)).await;
    r.assert_problem(422);
    assert_eq!(field_names(&r), ["userId"], "{}", r.body);
    body["userId"] = json!(owner);
    let r = api.call("POST", "", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let d = &r.body;
    no_translated_names(d);
    assert_eq!(d["userId"], owner.as_str());
    // An open request keeps the closedReasonDescription it was sent.
    assert_eq!(d["closedReasonDescription"], "string");
    assert_eq!(r.headers["etag"], "\"1\"");
    assert!(d["id"].as_i64().unwrap() >= 1);
    assert_eq!(
        r.headers["location"],
        api.path(&format!("/{}", d["id"])).as_str()
    );
    assert_eq!(d["purposes"], json!(["Unknown"]));
    assert_eq!(d["state"], "Open");
    assert_eq!(d["closedReason"], "None");
    assert_eq!(d["personCategory"], "Prospect");
    assert_eq!(d["channel"], "Internal");
    assert_eq!(d["workFlowStep"]["order"], 0);
    assert_eq!(d["workFlowStep"]["type"], "DataSubject");
    assert_eq!(d["title"], "string");
    assert_eq!(d["widgetId"], 0);
    assert_eq!(d["dateUserNotified"], "2022-08-31T10:24:32.381Z");
    // Server-owned fields are computed, never taken from the body.
    let created = time(&d["dateCreation"]);
    assert!((jiff::Timestamp::now() - created).as_mins().abs() < 5);
    assert_eq!(d["dateUpdate"], d["dateCreation"]);
    assert_eq!(d["creator"]["koppelUserId"], owner.as_str());
    assert!(d["creator"]["id"].is_i64());
    assert_eq!(d["dateClosed"], Value::Null);
    assert_eq!(d["closedByUser"], Value::Null);
    assert_eq!(d["closingTime"], Value::Null);
    // The body says complex: three months.
    assert_eq!(d["complex"], true);
    let days = (time(&d["expiryTime"]) - created).as_hours() / 24;
    assert!((89..=92).contains(&days), "{days}");
    let left = d["remainingDays"].as_i64().unwrap();
    assert!((88..=92).contains(&left), "{left}");
    // Archived in the body: archived now.
    assert_eq!(d["archived"], true);
    assert_eq!(d["archivedDate"], d["dateCreation"]);

    let g = api.call("GET", &format!("/{}", d["id"]), None).await;
    assert_eq!(g.status, 200);
    assert_eq!(&g.body, d);
}

#[tokio::test]
async fn the_seeds_model_get_list_and_put_bodies_update_a_request() {
    let (api, owner) = Api::new("handle");
    let created = api
        .create(json!({ "title": "Inzage", "doeleinden": ["Access"] }))
        .await;
    assert_eq!(created["complex"], false);
    let days = (time(&created["expiryTime"]) - time(&created["dateCreation"])).as_hours() / 24;
    assert!((28..=31).contains(&days), "{days}");
    let id = &created["id"];

    let list_item = seed_json(LIST_RESPONSE)["items"][0].clone();
    let dastra_owner = created["creator"]["id"].clone();
    for (name, mut body, placeholders) in [
        ("PUT", seed_put_body(), &["operator", "userId"][..]),
        ("model", seed_json(MODEL), &["operator", "userId"]),
        (
            "GET response",
            seed_json(GET_RESPONSE),
            &["operator", "operatorId", "userId"],
        ),
        (
            "list item",
            list_item,
            &["operator", "operatorId", "userId"],
        ),
    ] {
        // The seed's people are placeholders (id 0, "string"): each is refused, together.
        let r = api.put(id, body.clone()).await;
        r.assert_problem(422);
        assert_eq!(field_names(&r), placeholders, "{name}: {}", r.body);
        body["operator"] = json!({ "koppelUserId": owner, "displayName": "string" });
        if body.get("operatorId").is_some() {
            body["operatorId"] = dastra_owner.clone();
        }
        body["userId"] = json!(owner);
        let r = api.put(id, body).await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let d = &r.body;
        // The operator as Koppel knows the user, not as the body described it.
        assert_eq!(d["operator"]["koppelUserId"], owner.as_str(), "{name}");
        assert_eq!(d["operator"]["displayName"], "Eva Eigenaar", "{name}");
        assert_eq!(d["operatorId"], dastra_owner, "{name}");
        assert_eq!(d["userId"], owner.as_str(), "{name}");
        no_translated_names(d);
        assert_eq!(&d["id"], id, "{name}");
        assert_eq!(d["dateCreation"], created["dateCreation"], "{name}");
        assert_eq!(d["creator"], created["creator"], "{name}");
        assert_eq!(d["purposes"], json!(["Unknown"]), "{name}");
        assert_eq!(d["closedReason"], "None", "{name}");
        assert_eq!(d["state"], "Open");
        assert_eq!(d["workFlowStep"]["order"], 0, "{name}");
        assert_eq!(d["tags"][0]["type"], "DataProcessing");
        assert_eq!(
            d["attachments"][0]["id"],
            "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        );
        assert_eq!(d["attachments"][0]["creator"]["tenantId"], 0);
        assert_eq!(d["area"]["order"], 0, "{name}");
        assert_eq!(d["area"]["teams"][0]["areas"], json!([0]), "{name}");
        assert_eq!(d["area"]["teams"][0]["users"], json!([0]), "{name}");
        assert_eq!(d["area"]["dpo"]["actorType"], "Physical");
        assert_eq!(d["area"]["dataProtectionAuthority"]["siteURL"], "string");
        assert!(
            d["area"]["dpo"]["dateCreation"]
                .as_str()
                .unwrap()
                .starts_with("2022-08-")
        );
        // Read-only values in the body are ignored.
        assert_eq!(d["closedByUser"], Value::Null);
        assert_eq!(d["dateClosed"], Value::Null);
        assert_ne!(d["expiryTime"], "2022-08-31T10:30:53.840Z");
        assert!(time(&d["dateUpdate"]) >= time(&created["dateUpdate"]));
        // Complex now: three months from the same receipt.
        let days = (time(&d["expiryTime"]) - time(&d["dateCreation"])).as_hours() / 24;
        assert!((89..=92).contains(&days), "{name}: {days}");
        assert_eq!(d["archived"], true);
        assert!(time(&d["archivedDate"]) >= time(&created["dateCreation"]));

        let g = api.call("GET", &format!("/{id}"), None).await;
        assert_eq!(&g.body, d, "{name}");
    }
    let r = api.put(id, json!({ "title": "only the title" })).await;
    assert_eq!(r.body["title"], "only the title");
    assert_eq!(r.body["area"]["teams"][0]["areas"], json!([0]), "kept");
    assert_eq!(r.body["creator"]["koppelUserId"], owner.as_str());
}

#[tokio::test]
async fn wrong_types_are_422_naming_the_field_and_unknown_fields_are_ignored() {
    let (api, _) = Api::new("handle");
    let cases = [
        (json!({ "title": 5, "purposes": ["Access"] }), "title"),
        (json!({ "purposes": "Access" }), "purposes"),
        (
            json!({ "purposes": ["Access"], "areaId": "seven" }),
            "areaId",
        ),
        (json!({ "purposes": ["Access"], "state": "Done" }), "state"),
        (
            json!({ "purposes": ["Access"], "area": { "teams": [{ "gebieden": ["x"] }] } }),
            "area.teams[0].areas[0]",
        ),
        (
            json!({ "purposes": ["Access"], "dateUserNotified": "yesterday" }),
            "dateUserNotified",
        ),
        (json!({ "title": "no purpose" }), "purposes"),
        (json!({ "purposes": [] }), "purposes"),
    ];
    for (body, field) in cases {
        let r = api.call("POST", "", Some(&body)).await;
        r.assert_problem(422);
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.body);
    }
    let d = api
        .create(json!({
            "id": "not even a number", "remainingDays": "soon", "expiryTime": 3,
            "somethingNew": { "x": 1 }, "DOELEINDEN": ["onbekend"], "closedReason": "geen",
        }))
        .await;
    assert_eq!(d["purposes"], json!(["Unknown"]));
    assert!(d.get("somethingNew").is_none());

    let r = api.put(&d["id"], json!({ "complex": "yes" })).await;
    r.assert_problem(422);
    assert_eq!(r.body["errors"][0]["field"], "complex");
    let (status, _) = send_text(&api, "PUT", &format!("/{}", d["id"]), "{\"title\": ").await;
    assert_eq!(status, 400);
    for not_an_object in [json!([]), json!("title"), json!(null)] {
        let r = api.put(&d["id"], not_an_object.clone()).await;
        r.assert_problem(422);
        let r = api.call("POST", "", Some(&not_an_object)).await;
        r.assert_problem(422);
    }
    let r = api
        .call("PUT", "/999999", Some(&json!({ "title": "x" })))
        .await;
    r.assert_problem(404);
    let r = api.call("GET", "/abc", None).await;
    r.assert_problem(404);
}

#[tokio::test]
async fn closing_needs_a_reason_and_reopening_clears_it() {
    let (api, owner) = Api::new("handle");
    let d = api.create(json!({ "purposes": ["Erasure"] })).await;
    let id = &d["id"];
    for body in [
        json!({ "state": "Closed" }),
        json!({ "state": "Closed", "closedReason": "None" }),
        json!({ "state": "closed", "closedReason": "Geen" }),
    ] {
        let r = api.put(id, body.clone()).await;
        r.assert_problem(422);
        assert_eq!(r.body["errors"][0]["field"], "closedReason", "{body}");
    }
    let r = api
        .put(
            id,
            json!({ "state": "Closed", "closedReason": "Completed", "closedReasonDescription": "sent" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = &r.body;
    assert_eq!(c["state"], "Closed");
    assert_eq!(c["closedReason"], "Completed");
    assert_eq!(c["closedByUser"]["koppelUserId"], owner.as_str());
    assert_eq!(c["closingTime"], 0);
    assert_eq!(c["remainingDays"], Value::Null);
    assert!(time(&c["dateClosed"]) >= time(&d["dateCreation"]));

    let r = api.put(id, json!({ "state": "Open" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for f in [
        "dateClosed",
        "closedByUser",
        "closingTime",
        "closedReasonDescription",
    ] {
        assert_eq!(r.body[f], Value::Null, "{f}");
    }
    assert_eq!(r.body["closedReason"], "None");
    assert!(r.body["remainingDays"].is_i64());

    // Closed at creation: closing fields set at once.
    let d = api
        .create(json!({ "purposes": ["Access"], "state": "Closed", "closedReason": "Rejected" }))
        .await;
    assert_eq!(d["closedByUser"]["koppelUserId"], owner.as_str());
    assert_eq!(d["dateClosed"], d["dateCreation"]);
}

/// Ten requests with known fields; returns their ids in creation order.
async fn seed_list(api: &Api) -> Vec<i64> {
    let specs = [
        json!({ "title": "Inzage Jansen", "givenName": "Piet", "familyName": "Jansen", "purposes": ["Access"], "areaId": 1, "tags": [{ "id": 7, "label": "VIP" }] }),
        json!({ "title": "Wissen", "email": "KLAAS@example.org", "purposes": ["Erasure"], "areaId": 2, "complex": true }),
        json!({ "title": "alpha", "description": "Over jansen", "purposes": ["Access", "Erasure"], "areaId": 1, "state": "InProgress" }),
        json!({ "title": "Bravo", "purposes": ["Portability"], "areaId": 2, "state": "Pending", "tags": [{ "id": 8, "label": "Urgent" }] }),
        json!({ "title": "charlie", "purposes": ["Access"], "state": "Closed", "closedReason": "Completed" }),
        json!({ "title": "Delta", "purposes": ["Opposition"], "archived": true }),
        json!({ "title": "echo", "purposes": ["Access"], "archived": true, "state": "Closed", "closedReason": "Rejected", "tags": [{ "id": 7, "label": "VIP" }] }),
        json!({ "title": "Foxtrot", "purposes": ["Onbekend"], "areaId": 1 }),
        json!({ "title": "golf", "purposes": ["Erasure"], "complex": true, "state": "InProgress" }),
        json!({ "title": "Hotel", "purposes": ["Access"], "areaId": 3 }),
    ];
    let mut ids = Vec::new();
    for s in specs {
        ids.push(api.create(s).await["id"].as_i64().unwrap());
    }
    ids
}

#[tokio::test]
async fn every_list_parameter_alone_and_combined() {
    let (api, _) = Api::new("handle");
    let id = seed_list(&api).await;
    let pick = |ns: &[usize]| ns.iter().map(|n| id[*n]).collect::<Vec<_>>();
    let rev = |mut v: Vec<i64>| {
        v.reverse();
        v
    };

    let all = api.list("").await;
    assert_eq!(
        (
            all["total"].as_u64(),
            all["size"].as_u64(),
            all["page"].as_u64()
        ),
        (Some(10), Some(20), Some(1))
    );
    // Default order: newest first.
    assert_eq!(api.ids("").await, (rev(id.clone()), 10));
    no_translated_names(&all);

    let cases: Vec<(&str, Vec<i64>)> = vec![
        ("q=JANSEN&asc=true", pick(&[0, 2])),
        ("q=klaas@example&asc=true", pick(&[1])),
        ("states[]=InProgress&asc=true", pick(&[2, 8])),
        (
            "states[]=Open&states[]=Pending&asc=true",
            pick(&[0, 1, 3, 5, 7, 9]),
        ),
        ("states=Open,Pending&asc=true", pick(&[0, 1, 3, 5, 7, 9])),
        ("states=closed&asc=true", pick(&[4, 6])),
        ("purposes[]=Access&asc=true", pick(&[0, 2, 4, 6, 9])),
        (
            "purposes[]=Portability&purposes[]=Opposition&asc=true",
            pick(&[3, 5]),
        ),
        ("purposes=onbekend&asc=true", pick(&[7])),
        ("areaId=1&asc=true", pick(&[0, 2, 7])),
        ("archived=true&asc=true", pick(&[5, 6])),
        ("archived=false&asc=true", pick(&[0, 1, 2, 3, 4, 7, 8, 9])),
        ("tags[]=7&asc=true", pick(&[0, 6])),
        ("tags=urgent,vip&asc=true", pick(&[0, 3, 6])),
        (
            &*Box::leak(format!("ids[]={}&ids[]={}&asc=true", id[9], id[1]).into_boxed_str()),
            pick(&[1, 9]),
        ),
        (
            &*Box::leak(format!("ids={},{}", id[2], id[4]).into_boxed_str()),
            pick(&[4, 2]),
        ),
        ("sortBy=id&asc=true", id.clone()),
        ("sortBy=dateCreation&asc=false", rev(id.clone())),
        ("sortBy=dateUpdate&asc=true", id.clone()),
        (
            "sortBy=title&asc=true",
            pick(&[2, 3, 4, 5, 6, 7, 8, 9, 0, 1]),
        ),
        ("sortBy=title", rev(pick(&[2, 3, 4, 5, 6, 7, 8, 9, 0, 1]))),
        // Open, Pending, InProgress, Closed; by id within a state.
        (
            "sortBy=state&asc=true",
            pick(&[0, 1, 5, 7, 9, 3, 2, 8, 4, 6]),
        ),
        (
            "sortBy=expiryTime&asc=true",
            pick(&[0, 2, 3, 4, 5, 6, 7, 9, 1, 8]),
        ),
        ("overtaking=false&asc=true", id.clone()),
        ("overtaking=true", vec![]),
        // Combined.
        (
            "states[]=Open&purposes[]=Access&areaId=1&archived=false&asc=true",
            pick(&[0]),
        ),
        (
            "q=a&purposes=Access,Erasure&archived=false&sortBy=title&asc=true",
            pick(&[2, 4, 0, 1]),
        ),
        (
            "states=Open,InProgress&tags[]=vip&sortBy=expiryTime",
            pick(&[0]),
        ),
        (
            "archived=true&states[]=Closed&purposes[]=Access&tags[]=7",
            pick(&[6]),
        ),
        ("sortBy=state&asc=false&areaId=2", pick(&[3, 1])),
    ];
    for (query, want) in cases {
        let (got, total) = api.ids(query).await;
        assert_eq!(got, want, "{query}");
        assert_eq!(total as usize, want.len(), "{query}");
    }

    // Paging: exact total on every page, empty past the end.
    let (p1, t1) = api.ids("size=4&page=1&asc=true").await;
    let (p3, t3) = api.ids("size=4&page=3&asc=true").await;
    let (p4, t4) = api.ids("size=4&page=4&asc=true").await;
    assert_eq!((p1, t1), (pick(&[0, 1, 2, 3]), 10));
    assert_eq!((p3, t3), (pick(&[8, 9]), 10));
    assert_eq!((p4, t4), (vec![], 10));
    let past = api.list("page=99&size=500&states[]=Open").await;
    assert_eq!(past["items"], json!([]));
    assert_eq!(
        (
            past["total"].as_u64(),
            past["size"].as_u64(),
            past["page"].as_u64()
        ),
        (Some(5), Some(500), Some(99))
    );
    let (t, _) = api.ids("sortBy=title&size=3&page=2&asc=true").await;
    assert_eq!(t, pick(&[5, 6, 7]));
    let (t, _) = api.ids("sortBy=expiryTime&size=2&page=5&asc=true").await;
    assert_eq!(t, pick(&[1, 8]));

    for bad in [
        "size=501",
        "size=0",
        "page=0",
        "states[]=Done",
        "sortBy=colour",
        "archived=maybe",
        "areaId=x",
        "ids[]=x",
    ] {
        let r = api.call("GET", &format!("?{bad}"), None).await;
        r.assert_problem(422);
        let field = bad.split(['=', '[']).next().unwrap();
        assert_eq!(r.body["errors"][0]["field"], field, "{bad}");
    }
}

#[tokio::test]
async fn overtaking_lists_open_requests_past_their_deadline() {
    let (api, _) = Api::new("handle");
    let id = seed_list(&api).await;
    // Nothing is overdue yet; move three deadlines into the past, one of them closed.
    for n in [1, 4, 8] {
        backdate(&api.ws, id[n]).await;
    }
    let (got, total) = api.ids("overtaking=true&asc=true").await;
    assert_eq!((got, total), (vec![id[1], id[8]], 2));
    let (got, _) = api.ids("overtaking=true&sortBy=expiryTime&asc=true").await;
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        [id[1], id[8]].into()
    );
    let (got, _) = api.ids("overtaking=true&states[]=InProgress").await;
    assert_eq!(got, vec![id[8]]);
    let (got, _) = api.ids("overtaking=true&sortBy=title&q=wis").await;
    assert_eq!(got, vec![id[1]]);
    let r = api.call("GET", &format!("/{}", id[1]), None).await;
    assert!(r.body["remainingDays"].as_i64().unwrap() < 0, "{}", r.body);
}

/// Moves a request's deadline 40 days into the past, the way time would: in the stored
/// document and in the attributes the list reads.
async fn backdate(ws: &str, id: i64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ctx = koppel_shared::Ctx::from_env()
        .await
        .expect("KOPPEL_* settings");
    let key = koppel_shared::store::Key::dsr(ws, id);
    let item = ctx
        .store
        .client()
        .get_item()
        .table_name(ctx.store.table())
        .set_key(Some(key.to_item()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(40 * 24);
    // Dastra's form (milliseconds), as the DSR function writes it.
    let past = past.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string();
    let mut doc: Value = serde_json::from_str(item["doc"].as_s().unwrap()).unwrap();
    doc["expiryTime"] = json!(past);
    let mut item = item;
    item.insert("doc".into(), AttributeValue::S(doc.to_string()));
    item.insert("expiry_time".into(), AttributeValue::S(past.clone()));
    item.insert(
        "gsi2sk".into(),
        AttributeValue::S(format!("{past}#{id:010}")),
    );
    ctx.store
        .client()
        .put_item()
        .table_name(ctx.store.table())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn another_workspace_is_404() {
    let (api, _) = Api::new("handle");
    let d = api.create(json!({ "purposes": ["Access"] })).await;
    let (other, _) = Api::new("handle");
    // The other workspace's caller, with this workspace's path: not found.
    let foreign = Api {
        ws: api.ws.clone(),
        auth: other.auth.clone(),
    };
    foreign
        .call("GET", &format!("/{}", d["id"]), None)
        .await
        .assert_problem(404);
    foreign.call("GET", "", None).await.assert_problem(404);
    foreign.assert_writes_refused(&d["id"], 404).await;
    // Its own workspace has no request of that id.
    other
        .call("GET", &format!("/{}", d["id"]), None)
        .await
        .assert_problem(404);
    // The demo connector token, which has every scope, in a made-up workspace.
    let demo = demo();
    let r = send(
        &base_url(),
        "GET",
        "/v1/ws/ws_doesnotexist/DataSubjectRequests",
        &[(
            "Authorization",
            &format!("Bearer {}", s(&demo["connector"]["token"])),
        )],
        None,
    )
    .await;
    r.assert_problem(404);
}

#[tokio::test]
async fn a_read_caller_can_read_but_not_write() {
    let (api, owner) = Api::new("handle");
    let d = api.create(json!({ "purposes": ["Access"] })).await;
    // A `read` connector in the same workspace, with the dsr:write scope all the same.
    let (_, auth) = NewConnector::sample(&api.ws, &owner)
        .description("reader")
        .level("read")
        .scopes(&["dsr:read", "dsr:write"])
        .with_token();
    let reader = Api {
        ws: api.ws.clone(),
        auth,
    };
    assert_eq!(
        reader
            .call("GET", &format!("/{}", d["id"]), None)
            .await
            .status,
        200
    );
    assert_eq!(reader.call("GET", "", None).await.status, 200);
    reader.assert_writes_refused(&d["id"], 403).await;
    // Without the dsr scopes: 403 for reads too.
    let (_, auth) = NewConnector::sample(&api.ws, &owner)
        .description("cases only")
        .with_token();
    let none = Api {
        ws: api.ws.clone(),
        auth,
    };
    none.call("GET", "", None).await.assert_problem(403);
    // The demo reader's personal token (a `read` employee) cannot write in the demo.
    let demo = demo();
    let r = send(
        &base_url(),
        "POST",
        &format!("/v1/ws/{}/DataSubjectRequests", s(&demo["workspace_id"])),
        &[(
            "Authorization",
            &format!("Bearer {}", s(&demo["users"]["reader"]["pat"])),
        )],
        Some(&json!({ "purposes": ["Access"] })),
    )
    .await;
    r.assert_problem(403);
}

#[tokio::test]
async fn concurrent_creates_get_distinct_ids() {
    let (api, _) = Api::new("handle");
    let api = std::sync::Arc::new(api);
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                api.create(json!({ "title": format!("race {n}"), "purposes": ["Access"] }))
                    .await["id"]
                    .as_i64()
                    .unwrap()
            })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 20);
    assert_eq!(api.ids("size=500").await.1, 20);
}

#[tokio::test]
async fn every_change_emits_its_event() {
    let (api, _) = Api::new("handle");
    let d = api
        .create(json!({ "title": "events", "purposes": ["Access"] }))
        .await;
    let id = d["id"].as_i64().unwrap();
    let r = api.put(&d["id"], json!({ "title": "renamed" })).await;
    assert_eq!(r.status, 200);
    let r = api
        .put(
            &d["id"],
            json!({ "state": "Closed", "closedReason": "Completed" }),
        )
        .await;
    assert_eq!(r.status, 200);
    let ctx = koppel_shared::Ctx::from_env()
        .await
        .expect("KOPPEL_* settings");
    let tap = koppel_e2e::events_tap_url(&ctx.sqs).await;
    let mut seen = BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        let out = ctx
            .sqs
            .receive_message()
            .queue_url(&tap)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let e: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap();
            let ours = e["workspace_id"] == api.ws.as_str();
            if ours {
                assert_eq!(e["data"]["id"], id);
                assert_eq!(e["data"]["request"]["id"], id);
                seen.insert(s(&e["type"]).to_owned());
            }
            // Ours are done with; others are set aside for a while, not lost.
            let handle = m.receipt_handle().unwrap_or_default();
            if ours {
                ctx.sqs
                    .delete_message()
                    .queue_url(&tap)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            } else {
                ctx.sqs
                    .change_message_visibility()
                    .queue_url(&tap)
                    .receipt_handle(handle)
                    .visibility_timeout(20)
                    .send()
                    .await
                    .expect("set aside");
            }
        }
    }
    let want: BTreeSet<String> = ["dsr.created", "dsr.updated", "dsr.closed"]
        .map(String::from)
        .into();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_put_with_several_wrong_types_names_every_field_and_changes_nothing() {
    let (api, _) = Api::new("handle");
    let d = api
        .create(json!({ "title": "kept", "purposes": ["Access"] }))
        .await;
    let id = &d["id"];
    let r = api
        .put(
            id,
            json!({
                "title": 5, "complex": "yes", "areaId": "seven", "description": "fine",
                "area": { "order": "first", "id": "x" }, "purposes": [],
            }),
        )
        .await;
    r.assert_problem(422);
    // Wrong types in key order, then the rules' findings for the fields that read.
    assert_eq!(
        field_names(&r),
        [
            "area.id",
            "area.order",
            "areaId",
            "complex",
            "title",
            "purposes"
        ],
        "{}",
        r.body
    );
    let g = api.call("GET", &format!("/{id}"), None).await;
    assert_eq!(g.body, d, "nothing changed");

    // The same on create: every bad field, and the missing purpose beside them.
    let r = api
        .call(
            "POST",
            "",
            Some(&json!({ "title": 5, "state": "Done", "userId": "usr_nobody" })),
        )
        .await;
    r.assert_problem(422);
    assert_eq!(
        field_names(&r),
        ["state", "title", "purposes", "userId"],
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_closed_reason_description_on_an_open_request_is_kept() {
    let (api, _) = Api::new("handle");
    let d = api
        .create(json!({ "purposes": ["Access"], "closedReasonDescription": "asked by phone" }))
        .await;
    assert_eq!(d["state"], "Open");
    assert_eq!(d["closedReasonDescription"], "asked by phone");
    let id = &d["id"];
    let r = api.put(id, json!({ "title": "renamed" })).await;
    assert_eq!(r.body["closedReasonDescription"], "asked by phone");
    let r = api
        .put(id, json!({ "closedReasonDescription": "changed" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let g = api.call("GET", &format!("/{id}"), None).await;
    assert_eq!(g.body["closedReasonDescription"], "changed");
}

#[tokio::test]
async fn updates_honour_if_match_and_every_answer_carries_an_etag() {
    let (api, _) = Api::new("handle");
    let r = api
        .call("POST", "", Some(&json!({ "purposes": ["Access"] })))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.headers["etag"], "\"1\"");
    let id = r.body["id"].clone();
    let path = format!("/{id}");
    let g = api.call("GET", &path, None).await;
    assert_eq!(g.headers["etag"], "\"1\"");

    let put = |if_match: Option<&'static str>, title: &'static str| {
        let api = &api;
        let path = path.clone();
        async move {
            let mut headers = vec![("Authorization", api.auth.as_str())];
            if let Some(m) = if_match {
                headers.push(("If-Match", m));
            }
            send(
                &base_url(),
                "PUT",
                &api.path(&path),
                &headers,
                Some(&json!({ "title": title })),
            )
            .await
        }
    };
    let r = put(Some("\"1\""), "first").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["etag"], "\"2\"");
    // Stale, weak and `*` are all refused: nothing changes.
    for stale in ["\"1\"", "W/\"2\"", "*", "\"3\""] {
        let r = put(Some(stale), "lost").await;
        r.assert_problem(412);
    }
    let g = api.call("GET", &path, None).await;
    assert_eq!(g.body["title"], "first");
    assert_eq!(g.headers["etag"], "\"2\"");
    // A list of tags naming the current one matches; no If-Match at all is allowed, as
    // Dastra's clients send none.
    let r = put(Some("\"1\", \"2\""), "second").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(None, "third").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["etag"], "\"4\"");
}

/// Makes request `id` look as if a Lambda whose clock runs `ahead` of this one created it:
/// its receipt time, and the last receipt time the workspace's counter handed out.
async fn created_by_a_clock_ahead(ws: &str, id: i64, ahead: jiff::SignedDuration) -> String {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ctx = koppel_shared::Ctx::from_env()
        .await
        .expect("KOPPEL_* settings");
    let at = jiff::Timestamp::now() + ahead;
    let at = at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let key = koppel_shared::store::Key::dsr(ws, id);
    let mut item = ctx
        .store
        .client()
        .get_item()
        .table_name(ctx.store.table())
        .set_key(Some(key.to_item()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut doc: Value = serde_json::from_str(item["doc"].as_s().unwrap()).unwrap();
    doc["dateCreation"] = json!(at);
    item.insert("doc".into(), AttributeValue::S(doc.to_string()));
    ctx.store
        .client()
        .put_item()
        .table_name(ctx.store.table())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    ctx.store
        .client()
        .update_item()
        .table_name(ctx.store.table())
        .set_key(Some(koppel_shared::store::Key::dsr_counter(ws).to_item()))
        .update_expression("SET last_at = :at")
        .expression_attribute_values(":at", AttributeValue::S(at.clone()))
        .send()
        .await
        .unwrap();
    at
}

/// The receipt times of a list, in its order.
fn receipt_times(list: &Value) -> Vec<jiff::Timestamp> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| time(&i["dateCreation"]))
        .collect()
}

#[tokio::test]
async fn ids_follow_receipt_times_so_sort_by_date_creation_is_creation_order() {
    let (api, _) = Api::new("handle");
    let first = api.create(json!({ "purposes": ["Access"] })).await;
    // Clocks differ between Lambdas: the last request was received at a time ahead of
    // this clock. The next one, numbered after it, is not received before it.
    let ahead = created_by_a_clock_ahead(
        &api.ws,
        first["id"].as_i64().unwrap(),
        jiff::SignedDuration::from_secs(90),
    )
    .await;
    let second = api.create(json!({ "purposes": ["Access"] })).await;
    assert!(second["id"].as_i64() > first["id"].as_i64());
    assert!(
        time(&second["dateCreation"]) >= time(&json!(ahead)),
        "{second}"
    );
    for (query, want) in [
        ("sortBy=dateCreation&asc=true", [&first, &second]),
        ("sortBy=dateCreation&asc=false", [&second, &first]),
    ] {
        let list = api.list(query).await;
        let ids: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["id"])
            .collect();
        assert_eq!(ids, want.map(|d| &d["id"]), "{query}");
        let mut times = receipt_times(&list);
        if query.ends_with("false") {
            times.reverse();
        }
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{query}: {times:?}");
    }

    // Concurrent creates reach the counter in any order: still, ids follow receipt times
    // (in a workspace of their own, with no clock ahead).
    let (api, _) = Api::new("handle");
    let api = std::sync::Arc::new(api);
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                api.create(json!({ "title": format!("race {n}"), "purposes": ["Access"] }))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let list = api.list("sortBy=dateCreation&asc=true&size=500").await;
    let times = receipt_times(&list);
    assert_eq!(times.len(), 16);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let (by_id, _) = api.ids("sortBy=id&asc=true&size=500").await;
    let by_date: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(by_id, by_date);
}

#[tokio::test]
async fn operator_and_user_must_be_users_of_the_workspace() {
    let (api, owner) = Api::new("handle");
    let (_, stranger) = new_workspace("dsr stranger");
    // The owner by Koppel id, as operator and as user: set as Koppel knows the owner.
    let d = api
        .create(json!({
            "purposes": ["Access"], "userId": owner,
            "operator": { "koppelUserId": owner, "displayName": "someone else" },
        }))
        .await;
    assert_eq!(d["operator"]["koppelUserId"], owner.as_str());
    assert_eq!(d["operator"]["displayName"], "Eva Eigenaar");
    assert_eq!(d["operatorId"], d["operator"]["id"]);
    assert_eq!(d["operatorId"], d["creator"]["id"]);
    let dastra_owner = d["creator"]["id"].as_i64().unwrap();
    let id = &d["id"];

    // Another workspace's user, made-up ids, and references that disagree: refused,
    // every field named, nothing changed.
    let refused = [
        (json!({ "userId": stranger }), vec!["userId"]),
        (
            json!({ "operator": { "koppelUserId": stranger } }),
            vec!["operator"],
        ),
        (
            json!({ "operatorId": dastra_owner + 1 }),
            vec!["operatorId"],
        ),
        (
            json!({ "operator": { "displayName": "Eva" } }),
            vec!["operator"],
        ),
        (
            json!({ "operator": { "koppelUserId": owner }, "operatorId": dastra_owner + 1 }),
            vec!["operatorId"],
        ),
        (
            json!({ "operator": { "id": 0 }, "operatorId": 0, "userId": "string" }),
            vec!["operator", "operatorId", "userId"],
        ),
    ];
    for (body, fields) in refused {
        let r = api.put(id, body.clone()).await;
        r.assert_problem(422);
        assert_eq!(field_names(&r), fields, "{body}: {}", r.body);
        let r = api
            .call(
                "POST",
                "",
                Some(&{
                    let mut b = body.clone();
                    b["purposes"] = json!(["Access"]);
                    b
                }),
            )
            .await;
        r.assert_problem(422);
        assert_eq!(field_names(&r), fields, "POST {body}: {}", r.body);
    }
    let g = api.call("GET", &format!("/{id}"), None).await;
    assert_eq!(g.body, d);

    // By Dastra id alone; and null clears operator and operatorId together.
    let r = api
        .put(id, json!({ "operator": null, "userId": null }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["operator"], &r.body["operatorId"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(r.body["userId"], Value::Null);
    let r = api.put(id, json!({ "operatorId": dastra_owner })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["operator"]["koppelUserId"], owner.as_str());
}

#[tokio::test]
async fn the_served_document_describes_the_dastra_routes_and_the_answers_conform() {
    use koppel_e2e::contract::{self, assert_conforms, operation, parameters, property_names};
    let doc = contract::document().await;
    let list_path = "/v1/ws/{workspaceId}/DataSubjectRequests";
    let one_path = "/v1/ws/{workspaceId}/DataSubjectRequests/{id}";

    // The list takes Dastra's parameters by Dastra's names, arrays as `states[]`.
    let list = operation(&doc, "GET", list_path);
    assert_eq!(
        parameters(list, "query"),
        [
            "page",
            "size",
            "q",
            "states[]",
            "purposes[]",
            "areaId",
            "archived",
            "overtaking",
            "tags[]",
            "ids[]",
            "sortBy",
            "asc"
        ]
    );
    let states = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "states[]")
        .unwrap();
    assert_eq!(states["schema"]["type"], "array");
    assert_eq!(states["explode"], true);
    assert!(list["responses"]["422"].is_object());
    // A create needs a purpose; nothing forbids the read-only and unknown fields clients send.
    let create = operation(&doc, "POST", list_path);
    let new = contract::resolve(
        &doc,
        &create["requestBody"]["content"]["application/json"]["schema"],
    );
    assert_eq!(new["required"], json!(["purposes"]));
    let dsr = contract::resolve(&doc, &new["allOf"][0]);
    assert!(dsr.get("additionalProperties").is_none());
    for owned in [
        "id",
        "dateCreation",
        "expiryTime",
        "remainingDays",
        "closedByUser",
    ] {
        assert_eq!(dsr["properties"][owned]["readOnly"], true, "{owned}");
    }
    assert!(create["responses"]["201"]["headers"]["ETag"].is_object());
    assert!(create["responses"]["201"]["headers"]["Location"].is_object());
    let update = operation(&doc, "PUT", one_path);
    assert!(parameters(update, "header").contains(&"If-Match".to_owned()));
    for code in ["412", "409", "422", "404"] {
        assert!(update["responses"][code].is_object(), "PUT answers {code}");
    }
    assert!(update["responses"]["200"]["headers"]["ETag"].is_object());

    // What the routes answer is what the document says, field for field.
    let (api, owner) = Api::new("handle");
    let mut body = seed_json(POST);
    body["userId"] = json!(owner);
    let r = api.call("POST", "", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = contract::response_schema(&doc, "POST", list_path, 201);
    assert_conforms(&doc, created, &r.body);
    let mut answered: Vec<String> = r.body.as_object().unwrap().keys().cloned().collect();
    answered.sort();
    assert_eq!(answered, property_names(&doc, created));
    let id = r.body["id"].clone();
    let g = api.call("GET", &format!("/{id}"), None).await;
    assert_conforms(
        &doc,
        contract::response_schema(&doc, "GET", one_path, 200),
        &g.body,
    );
    let mut put = seed_put_body();
    put["operator"] = json!({ "koppelUserId": owner });
    put["userId"] = json!(owner);
    put["state"] = json!("Closed");
    put["closedReason"] = json!("Completed");
    let r = api.put(&id, put).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["closedByUser"]["koppelUserId"], owner.as_str());
    assert_conforms(
        &doc,
        contract::response_schema(&doc, "PUT", one_path, 200),
        &r.body,
    );
    let page = api.list("states[]=Closed&size=5").await;
    let page_schema = contract::response_schema(&doc, "GET", list_path, 200);
    assert_conforms(&doc, page_schema, &page);
    assert_eq!(
        property_names(&doc, page_schema),
        ["items", "page", "size", "total"]
    );
    assert_eq!(page["items"][0]["id"], id);
}
