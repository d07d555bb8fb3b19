//! Fixtures for the cases tests (and webhooks of cases): a workspace with its owner's
//! token, saved searches, connectors with API keys, CSV read by Python's `csv`.

use std::process::Command;

use serde_json::{Value, json};

use crate::*;

/// A fresh workspace, its owner's personal token, and a reader employee.
pub struct CaseWs {
    pub id: String,
    pub owner: String,
    pub pat: String,
}

impl CaseWs {
    pub fn create() -> Self {
        let (id, owner) = new_workspace("Cases test");
        let (_, pat) = personal_token(&id, &owner);
        Self { id, owner, pat }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {}", self.pat);
        send(&base_url(), method, path, &[("Authorization", &auth)], body).await
    }

    pub async fn case(&self, body: Value) -> u64 {
        let r = self.call("POST", "/v1/cases", Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_u64().expect("id")
    }

    pub async fn search(&self, filters: Value, columns: &[&str]) -> String {
        let r = self
            .call(
                "POST",
                "/v1/saved-searches",
                Some(&json!({"name": "e2e", "filters": filters, "columns": columns})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        s(&r.body["id"]).to_owned()
    }

    /// A connector acting for `acting_user` with `search`, and an API key for it.
    pub async fn connector(&self, acting_user: &str, search: Option<&str>) -> Partner {
        let r = self
            .call(
                "POST",
                "/v1/connectors",
                Some(&json!({
                    "description": "Zaakportaal",
                    "acting_user_id": acting_user,
                    "access_level": "handle",
                    "scopes": ["cases:read", "cases:write", "cases:export"],
                    "rate_limit": 1000,
                    "saved_search_id": search,
                })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = s(&r.body["id"]).to_owned();
        let (_, key) = NewCredential::key(&self.id, &id).rate_limit(1000).secret();
        Partner { id, key }
    }

    pub fn user(&self, rights: &str) -> String {
        NewUser::sample(&self.id).rights(rights).id()
    }
}

pub struct Partner {
    pub id: String,
    pub key: String,
}

impl Partner {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut h = vec![
            ("API-Interface-Id", self.id.as_str()),
            ("API-Key", self.key.as_str()),
        ];
        h.extend_from_slice(extra);
        send(&base_url(), method, path, &h, body).await
    }

    pub async fn csv(&self, path: &str) -> (reqwest::header::HeaderMap, String) {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", base_url()))
            .header("API-Interface-Id", &self.id)
            .header("API-Key", &self.key)
            .send()
            .await
            .expect("reaches the gateway");
        assert_eq!(resp.status(), 200);
        let h = resp.headers().clone();
        (h, resp.text().await.expect("body"))
    }
}

pub fn ids(list: &Value) -> Vec<u64> {
    let mut v: Vec<u64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_u64().expect("id"))
        .collect();
    v.sort();
    v
}

/// Parses CSV with Python's standard `csv` module: (header, rows).
pub fn python_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = std::env::temp_dir().join(format!("koppel-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).expect("write CSV");
    let python = std::env::var("KOPPEL_E2E_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            "import csv, json, sys\n\
             with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:\n\
             \x20   rows = list(csv.reader(f, strict=True))\n\
             print(json.dumps(rows))",
        ])
        .arg(&path)
        .output()
        .expect("python3");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).expect("JSON rows");
    let header = rows.remove(0);
    (header, rows)
}

/// Deletes a workspace's cases (bulk tests clean up after themselves: the emulator copies
/// whole tables on every transaction, so a large table slows every later test).
pub async fn purge_cases(ws: &str) {
    use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
    let sdk = koppel_shared::Ctx::sdk_config().await;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let table = var("KOPPEL_TABLE");
    let pk = koppel_shared::store::Key::cases_partition(ws);
    loop {
        let page = db
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .projection_expression("pk, sk")
            .limit(500)
            .send()
            .await
            .expect("query cases");
        if page.items().is_empty() {
            return;
        }
        for chunk in page.items().chunks(25) {
            let deletes = chunk
                .iter()
                .map(|k| {
                    let d = DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .expect("key");
                    WriteRequest::builder().delete_request(d).build()
                })
                .collect();
            db.batch_write_item()
                .request_items(&table, deletes)
                .send()
                .await
                .expect("delete cases");
        }
    }
}
