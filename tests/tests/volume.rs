//! Volume: 10,000 imported cases export completely, in order, as CSV that Python's `csv`
//! module reads. (Named to run after the other case tests; it removes its cases again,
//! since the emulator copies whole tables on every transaction.)

use koppel_e2e::admin;
use koppel_e2e::cases::*;
use serde_json::json;

#[tokio::test]
async fn ten_thousand_imported_cases_export_completely() {
    let ws = CaseWs::create();
    let id = ws.id.clone();
    let outcome = tokio::spawn(export_ten_thousand(ws)).await;
    purge_cases(&id).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn export_ten_thousand(ws: CaseWs) {
    let path = std::env::temp_dir().join(format!("koppel-import-{}.jsonl", uuid::Uuid::new_v4()));
    let mut lines = String::new();
    for i in 0..10_000 {
        let line = json!({
            "case_type": "Melding openbare ruimte",
            "subject": format!("Melding {i}, \"straat\"\n{}", if i % 100 == 0 { "=cmd" } else { "" }),
            "status": if i % 4 == 0 { "closed" } else { "open" },
            "result": if i % 4 == 0 { Some("Afgehandeld") } else { None },
            "department": "Openbare ruimte",
            "attributes": {"nummer": i},
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(&path, lines).expect("write import file");
    let out = admin(&[
        "case",
        "import",
        "--workspace",
        &ws.id,
        "--file",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out["imported"], 10_000);
    let open = ws
        .search(
            json!({"status": ["open"]}),
            &["subject", "attributes.nummer"],
        )
        .await;
    let p = ws.connector(&ws.owner, Some(&open)).await;
    let (_, text) = p.csv("/v1/cases/export.csv").await;
    let (header, rows) = python_csv(&text);
    assert_eq!(header.len(), 11);
    assert_eq!(rows.len(), 7_500);
    let mut numbers: Vec<u64> = rows
        .iter()
        .map(|r| r[10].parse().expect("number"))
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 7_500);
    assert!(rows.iter().all(|r| r[3] == "open" && r.len() == 11));
    assert!(rows[0][9].starts_with("Melding 1, \"straat\"\n"));
}
