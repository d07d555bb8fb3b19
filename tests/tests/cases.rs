//! Cases end to end: two connectors with different saved searches see different rows and
//! columns of the same cases, in JSON and CSV; the seed's curl line works verbatim; writes
//! need `handle` after the min(connector, employee) rule; `If-Match` guards changes; a
//! change can move a case out of view; history names employee and connector; 10,000
//! (see `volume.rs` for 10,000 cases in CSV).

use std::process::Command;

use koppel_e2e::cases::*;
use koppel_e2e::*;
use serde_json::{Value, json};

/// Six cases: (department, status, confidentiality) vary.
async fn six_cases(ws: &CaseWs) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, (dep, status, conf)) in [
        ("Vergunningen", "open", "internal"),
        ("Vergunningen", "in_progress", "internal"),
        ("Vergunningen", "open", "confidential"),
        ("Burgerzaken", "open", "internal"),
        ("Burgerzaken", "suspended", "public"),
        ("Openbare ruimte", "open", "internal"),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(
            ws.case(json!({
                "case_type": "Omgevingsvergunning",
                "subject": format!("=Aanvraag {i}"),
                "status": status,
                "department": dep,
                "confidentiality": conf,
                "requester": {"name": format!("Aanvrager {i}"), "bsn": "111222333"},
                "attributes": {"priority": i, "paid": i % 2 == 0},
            }))
            .await,
        );
    }
    out
}

#[tokio::test]
async fn two_connectors_see_different_rows_and_columns() {
    let ws = CaseWs::create();
    let c = six_cases(&ws).await;
    let a = ws
        .search(
            json!({"department": ["Vergunningen"], "max_confidentiality": "internal"}),
            &["subject", "requester.name"],
        )
        .await;
    let b = ws
        .search(
            json!({"status": ["open"]}),
            &["department", "requester.bsn", "attributes.priority"],
        )
        .await;
    let pa = ws.connector(&ws.owner, Some(&a)).await;
    let pb = ws.connector(&ws.owner, Some(&b)).await;
    let none = ws.connector(&ws.owner, None).await;

    let la = pa.call("GET", "/v1/cases", &[], None).await;
    assert_eq!(la.status, 200, "{}", la.body);
    assert_eq!(ids(&la.body), [c[0], c[1]]);
    let lb = pb.call("GET", "/v1/cases", &[], None).await;
    assert_eq!(ids(&lb.body), [c[0], c[2], c[3], c[5]]);
    assert_eq!(
        ids(&none.call("GET", "/v1/cases", &[], None).await.body),
        Vec::<u64>::new()
    );

    let first_a = &la.body["items"][0];
    assert_eq!(first_a["subject"], "=Aanvraag 0");
    assert_eq!(first_a["requester"], json!({"name": "Aanvrager 0"}));
    for hidden in ["department", "attributes", "confidentiality"] {
        assert!(first_a.get(hidden).is_none(), "{hidden} leaked: {first_a}");
    }
    let first_b = &lb.body["items"][0];
    assert_eq!(first_b["requester"], json!({"bsn": "111222333"}));
    assert_eq!(first_b["attributes"], json!({"priority": 0}));
    assert!(first_b.get("subject").is_none());
    assert_eq!(first_b["status"], "open");

    // One case, both ways: visible to A with A's columns, absent for B.
    let one = pa
        .call("GET", &format!("/v1/cases/{}", c[1]), &[], None)
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.headers["etag"], "\"1\"");
    pb.call("GET", &format!("/v1/cases/{}", c[1]), &[], None)
        .await
        .assert_problem(404);
    pb.call("GET", &format!("/v1/cases/{}/history", c[1]), &[], None)
        .await
        .assert_problem(404);

    // The same in CSV: A's columns in A's order, formulas neutralised.
    let (h, text) = pa.csv("/v1/cases/export.csv").await;
    assert!(s_header(&h, "content-type").starts_with("text/csv"));
    let (header, rows) = python_csv(&text);
    assert_eq!(
        header,
        [
            "id",
            "uuid",
            "case_type",
            "status",
            "registration_date",
            "target_date",
            "closing_date",
            "created_at",
            "updated_at",
            "subject",
            "requester.name"
        ]
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][9], "'=Aanvraag 0");
    let (header, rows) = python_csv(&pb.csv("/app/api2csv?bom=true").await.1);
    assert_eq!(
        &header[9..],
        ["department", "requester.bsn", "attributes.priority"]
    );
    assert_eq!(header[0], "id", "the BOM is not part of the first name");
    let listed: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(listed, [c[0], c[2], c[3], c[5]]);
    assert!(!text.contains("111222333"), "A's CSV holds a hidden BSN");

    // Filtering on a hidden field would reveal it: refused.
    pa.call("GET", "/v1/cases?department=Burgerzaken", &[], None)
        .await
        .assert_problem(400);
    let filtered = pb
        .call("GET", "/v1/cases?department=Burgerzaken", &[], None)
        .await;
    assert_eq!(ids(&filtered.body), [c[3]]);
}

fn s_header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h[name].to_str().expect("text")
}

#[tokio::test]
async fn pages_follow_the_cursor_in_both_orders() {
    let ws = CaseWs::create();
    let mut all = Vec::new();
    for i in 0..7 {
        all.push(
            ws.case(json!({"case_type": "t", "subject": format!("s{i}")}))
                .await,
        );
    }
    for (order, expect) in [
        ("asc", all.clone()),
        ("desc", all.iter().rev().copied().collect()),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let path = match &cursor {
                None => format!("/v1/cases?limit=3&order={order}"),
                Some(c) => format!("/v1/cases?limit=3&order={order}&cursor={c}"),
            };
            let r = ws.call("GET", &path, None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            seen.extend(
                r.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["id"].as_u64().unwrap()),
            );
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, expect, "{order}");
    }
    // As on every list: a bad `limit` or `cursor` is a 422 naming it.
    for limit in ["0", "501", "-1", "ten", "1.5", ""] {
        let r = ws
            .call("GET", &format!("/v1/cases?limit={limit}"), None)
            .await;
        r.assert_problem(422);
        assert_eq!(problem_fields(&r), ["limit"], "limit={limit}: {}", r.body);
    }
    let first = ws.call("GET", "/v1/cases?limit=2", None).await;
    let real = s(&first.body["next_cursor"]).to_owned();
    let mut tampered: Vec<char> = real.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    // The old format's `{"a":7,"o":"asc"}`, another order, other filters, another
    // workspace: none is a cursor of this list.
    let other = CaseWs::create();
    other.case(json!({"case_type": "t", "subject": "x"})).await;
    other.case(json!({"case_type": "t", "subject": "y"})).await;
    let foreign = other.call("GET", "/v1/cases?limit=1", None).await;
    let foreign = s(&foreign.body["next_cursor"]).to_owned();
    for (query, c) in [
        ("", "nonsense"),
        ("", "eyJhIjo3LCJvIjoiYXNjIn0"),
        ("", tampered.as_str()),
        ("", foreign.as_str()),
        ("&order=desc", real.as_str()),
        ("&status=open", real.as_str()),
    ] {
        let r = ws
            .call("GET", &format!("/v1/cases?limit=2{query}&cursor={c}"), None)
            .await;
        r.assert_problem(422);
        assert_eq!(problem_fields(&r), ["cursor"], "{query} {c}: {}", r.body);
    }
    let both = ws
        .call("GET", &format!("/v1/cases?limit=0&cursor={tampered}"), None)
        .await;
    assert_eq!(problem_fields(&both), ["limit", "cursor"], "{}", both.body);
    let next = ws
        .call("GET", &format!("/v1/cases?limit=2&cursor={real}"), None)
        .await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(ids(&next.body), all[2..4]);
    // A history page the same way.
    let history = format!("/v1/cases/{}/history", all[0]);
    let r = ws
        .call("GET", &format!("{history}?limit=501&after_version=x"), None)
        .await;
    r.assert_problem(422);
    assert_eq!(problem_fields(&r), ["after_version", "limit"], "{}", r.body);
    assert_eq!(
        ws.call("GET", &format!("{history}?limit=1"), None)
            .await
            .status,
        200
    );
    // Other unreadable parameters stay a 400.
    ws.call("GET", "/v1/cases?colour=red", None)
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn the_seed_curl_line_works_verbatim() {
    let d = demo();
    let (id, key) = (s(&d["connector"]["id"]), s(&d["connector"]["api_key"]));
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--max-time",
            "30",
            "--header",
            &format!("API-Interface-Id: {id}"),
            "--header",
            &format!("API-Key: {key}"),
            &format!("{}/app/api2csv", base_url()),
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, rows) = python_csv(&String::from_utf8(out.stdout).expect("UTF-8"));
    assert_eq!(header[0], "id");
    assert!(header.contains(&"subject".to_owned()));
    assert!(!header.contains(&"requester.bsn".to_owned()));
    assert!(!rows.is_empty() && rows.len() < 36, "{} rows", rows.len());
    let status = header.iter().position(|h| h == "status").unwrap();
    assert!(rows.iter().all(|r| r[status] != "closed"));
}

#[tokio::test]
async fn writes_need_handle_and_fresh_versions() {
    let ws = CaseWs::create();
    let reader = ws.user("read");
    let everything = ws.search(json!({}), &["subject", "department"]).await;
    let capped = ws.connector(&reader, Some(&everything)).await;
    let handler = ws.connector(&ws.owner, Some(&everything)).await;
    let id = ws
        .case(json!({"case_type": "t", "subject": "s", "department": "A"}))
        .await;
    let path = format!("/v1/cases/{id}");

    // A `handle` connector acting for a `read` employee can only read.
    assert_eq!(capped.call("GET", &path, &[], None).await.status, 200);
    capped
        .call(
            "PATCH",
            &path,
            &[("If-Match", "\"1\"")],
            Some(&json!({"subject": "x"})),
        )
        .await
        .assert_problem(403);
    capped
        .call(
            "POST",
            "/v1/cases",
            &[],
            Some(&json!({"case_type": "t", "subject": "x"})),
        )
        .await
        .assert_problem(403);

    let patch = json!({"subject": "Nieuw"});
    handler
        .call("PATCH", &path, &[], Some(&patch))
        .await
        .assert_problem(428);
    handler
        .call("PATCH", &path, &[("If-Match", "\"7\"")], Some(&patch))
        .await
        .assert_problem(412);
    // `*` would be a blind overwrite: only the version read counts.
    handler
        .call("PATCH", &path, &[("If-Match", "*")], Some(&patch))
        .await
        .assert_problem(412);
    let ok = handler
        .call("PATCH", &path, &[("If-Match", "\"1\"")], Some(&patch))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.headers["etag"], "\"2\"");
    assert_eq!(ok.body["subject"], "Nieuw");
    handler
        .call(
            "PATCH",
            &path,
            &[("If-Match", "\"1\"")],
            Some(&json!({"subject": "late"})),
        )
        .await
        .assert_problem(412);

    // Hidden, unknown and read-only fields are refused, each named.
    let bad = handler
        .call(
            "PATCH",
            &path,
            &[("If-Match", "\"2\"")],
            Some(&json!({"requester": {"bsn": "111222333"}, "colour": "red", "id": 9})),
        )
        .await;
    bad.assert_problem(422);
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["field"]))
        .collect();
    assert_eq!(fields, ["colour", "id"]);
    let hidden = handler
        .call(
            "PATCH",
            &path,
            &[("If-Match", "\"2\"")],
            Some(&json!({"requester": {"bsn": "111222333"}})),
        )
        .await;
    hidden.assert_problem(422);
    assert_eq!(hidden.body["errors"][0]["field"], "requester.bsn");
    let closing = handler
        .call(
            "PATCH",
            &path,
            &[("If-Match", "\"2\"")],
            Some(&json!({"status": "closed"})),
        )
        .await;
    closing.assert_problem(422);
    // `result` is not in this connector's columns: the same answer, whatever is stored.
    assert_eq!(closing.body["errors"][0]["field"], "status");
    let stored = ws.call("GET", &path, None).await;
    assert_eq!(
        stored.body["subject"], "Nieuw",
        "a refused change altered the case"
    );
    assert_eq!(stored.headers["etag"], "\"2\"");

    // Another workspace has no such case.
    let other = CaseWs::create();
    other.call("GET", &path, None).await.assert_problem(404);
    other
        .call("GET", "/v1/cases/abc", None)
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn a_change_can_move_a_case_out_of_view_and_history_names_who() {
    let ws = CaseWs::create();
    let open_only = ws
        .search(
            json!({"status": ["open", "in_progress"]}),
            &["subject", "result"],
        )
        .await;
    let p = ws.connector(&ws.owner, Some(&open_only)).await;
    let id = ws
        .case(json!({"case_type": "t", "subject": "s", "department": "Geheim", "requester": {"bsn": "111222333"}}))
        .await;
    let path = format!("/v1/cases/{id}");
    let r = p
        .call(
            "PATCH",
            &path,
            &[("If-Match", "\"1\"")],
            Some(&json!({"status": "in_progress", "subject": "In behandeling"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let gone = p
        .call(
            "PATCH",
            &path,
            &[("If-Match", "\"2\"")],
            Some(&json!({"status": "closed", "result": "Verleend"})),
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(gone.headers["koppel-case-visible"], "false");
    assert_eq!(gone.body["visible"], false);
    assert!(gone.headers.get("etag").is_none());
    p.call("GET", &path, &[], None).await.assert_problem(404);
    let mine = ws.call("GET", &path, None).await;
    assert_eq!(mine.body["status"], "closed");
    assert!(mine.body["closing_date"].is_string());

    let h = ws.call("GET", &format!("{path}/history"), None).await;
    assert_eq!(h.status, 200, "{}", h.body);
    let entries = h.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["connector_id"], Value::Null);
    let second = &entries[1];
    assert_eq!(second["user_id"], ws.owner.as_str());
    assert_eq!(second["connector_id"], p.id.as_str());
    let changed: Vec<&str> = second["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["field"]))
        .collect();
    assert_eq!(changed, ["status", "subject"]);
    assert_eq!(second["changes"][1]["old"], "s");
    assert_eq!(second["changes"][1]["new"], "In behandeling");
    // The owner's view of the creation lists hidden fields; a connector's never would.
    let created: Vec<&str> = entries[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["field"]))
        .collect();
    assert!(created.contains(&"requester.bsn") && created.contains(&"department"));

    // Through a connector that still sees the case: only its columns in the history.
    let all = ws.search(json!({}), &["subject"]).await;
    let q = ws.connector(&ws.owner, Some(&all)).await;
    let h = q.call("GET", &format!("{path}/history"), &[], None).await;
    let text = h.body.to_string();
    assert!(
        !text.contains("111222333") && !text.contains("Geheim"),
        "{text}"
    );
    assert!(!text.contains("\"result\""), "{text}");
}
