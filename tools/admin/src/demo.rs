//! The demo workspace the run command seeds: an owner and a reader with personal tokens,
//! a connector with an API key, a token and a JWT key and a saved search, and a few dozen
//! cases, written to `.koppel/demo.json`.

use std::path::Path;

use koppel_shared::Ctx;
use koppel_shared::cases::SavedSearch;
use koppel_shared::ids::new_id;
use koppel_shared::model::{Level, Scope};
use koppel_shared::store::put_new;
use koppel_shared::time_util::{now, rfc3339};
use serde_json::{Value, json};

use crate::Output;
use crate::commands::{self as c, Flags, Issue, NewConnector};

fn issue(name: &str) -> Issue {
    Issue {
        name: name.into(),
        scopes: None,
        rate_limit: None,
        expires_in: None,
    }
}

pub async fn seed(ctx: &Ctx, base_url: &str, out: &Path) -> Result<Output, String> {
    let ws = c::create_workspace(
        ctx,
        "Gemeente Voorbeeld",
        "eigenaar@voorbeeld.example",
        "Eva Eigenaar",
    )
    .await?
    .json;
    let ws_id = ws["workspace_id"].as_str().expect("id").to_owned();
    let owner = &ws["owner"];
    let owner_id = owner["id"].as_str().expect("id");
    let reader = c::add_user(
        ctx,
        &ws_id,
        "lezer@voorbeeld.example",
        "Ruud Raadpleger",
        Level::Read,
        Flags {
            api_access: Some(true),
            ..Flags::default()
        },
    )
    .await?
    .json;
    let reader_id = reader["id"].as_str().expect("id");
    let owner_pat = c::issue_pat(ctx, &ws_id, owner_id, issue("demo"))
        .await?
        .json;
    let reader_pat = c::issue_pat(ctx, &ws_id, reader_id, issue("demo"))
        .await?
        .json;

    let search = saved_search(ctx, &ws_id).await?;
    let con = c::create_connector(
        ctx,
        NewConnector {
            workspace: &ws_id,
            description: "Zaakportaal Demo",
            acting_user: owner_id,
            access_level: Level::Handle,
            scopes: Scope::ALL.to_vec(),
            allow_ips: vec![],
            rate_limit: None,
            saved_search_id: Some(search.saved_search_id.clone()),
        },
    )
    .await?
    .json;
    let con_id = con["id"].as_str().expect("id");
    let key = c::issue_connector_credential(ctx, &ws_id, con_id, true, issue("demo key"))
        .await?
        .json;
    let token = c::issue_connector_credential(ctx, &ws_id, con_id, false, issue("demo token"))
        .await?
        .json;
    let imported = cases::write::import(ctx, &ws_id, &demo_cases(owner_id, reader_id)).await?;
    let issuer = format!("https://partner.example/{ws_id}");
    let jwt = c::generate_jwt_key(ctx, &ws_id, con_id, &issuer, "demo-1")
        .await?
        .json;

    let demo = json!({
        "base_url": base_url,
        "workspace_id": ws_id,
        "users": {
            "owner": { "id": owner_id, "email": owner["email"], "pat": owner_pat["secret"] },
            "reader": { "id": reader_id, "email": reader["email"], "pat": reader_pat["secret"] },
        },
        "connector": {
            "id": con_id, "api_key": key["secret"], "token": token["secret"],
            "access_level": con["access_level"], "scopes": con["scopes"],
            "saved_search_id": search.saved_search_id,
        },
        "cases": { "imported": imported.len(), "saved_search": search.name },
        "jwt": {
            "connector_id": con_id, "kid": jwt["kid"], "iss": issuer,
            "aud": ctx.settings.jwt_audience, "private_key_pem": jwt["private_key_pem"], "alg": jwt["alg"],
        },
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(
        out,
        serde_json::to_string_pretty(&demo).expect("JSON") + "\n",
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;

    let text = format!(
        "Demo workspace {ws_id} (written to {out})\n\
         \n  owner   {owner_email}  personal access token: {owner_pat}\
         \n  reader  {reader_email}  personal access token: {reader_pat}\
         \n  connector {con_id} \"Zaakportaal Demo\" (handle, all scopes)\
         \n    API key: {key}\
         \n    token:   {token}\
         \n    JWT:     iss {issuer}, kid demo-1, ES256 (private key in {out})\n\
         \nTry it:\n\
         \n  curl -s {base_url}/v1/me -H 'API-Interface-Id: {con_id}' -H 'API-Key: {key}'\
         \n  curl -s {base_url}/v1/me -H 'Authorization: Bearer {token}'\
         \n  curl -s {base_url}/v1/me -H 'Authorization: Bearer {owner_pat}'\
         \n  curl --header \"API-Interface-Id: {con_id}\" --header \"API-Key: {key}\" {base_url}/app/api2csv\n\
         \n{cases} demo cases; the connector sees those of its saved search \"{search}\".\n",
        cases = imported.len(),
        search = search.name,
        out = out.display(),
        owner_email = owner["email"].as_str().unwrap_or_default(),
        reader_email = reader["email"].as_str().unwrap_or_default(),
        owner_pat = owner_pat["secret"].as_str().unwrap_or_default(),
        reader_pat = reader_pat["secret"].as_str().unwrap_or_default(),
        key = key["secret"].as_str().unwrap_or_default(),
        token = token["secret"].as_str().unwrap_or_default(),
    );
    Ok(Output { text, json: demo })
}

/// The connector's saved search: the running permit and nuisance cases, not the
/// confidential ones, with the columns a case portal shows.
async fn saved_search(ctx: &Ctx, ws: &str) -> Result<SavedSearch, String> {
    let at = rfc3339(now());
    let s = SavedSearch {
        workspace_id: ws.to_owned(),
        saved_search_id: new_id("srch"),
        name: "Lopende zaken Vergunningen en Openbare ruimte".into(),
        filters: serde_json::from_value(json!({
            "status": ["open", "in_progress", "suspended"],
            "department": ["Vergunningen", "Openbare ruimte"],
            "max_confidentiality": "internal",
        }))
        .expect("valid filters"),
        columns: [
            "subject",
            "phase",
            "department",
            "assignee",
            "requester.name",
            "attributes.priority",
            "attributes.fee_paid",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        version: 1,
        created_at: at.clone(),
        updated_at: at,
    };
    let item = cases::repo::search_item(&s).map_err(|e| e.to_string())?;
    ctx.store
        .transact(vec![put_new(ctx.store.table(), item)])
        .await
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// 36 cases across types, departments, states and confidentiality levels.
fn demo_cases(owner: &str, reader: &str) -> Vec<(usize, serde_json::Map<String, Value>)> {
    const TYPES: [(&str, &str, &str); 6] = [
        ("Omgevingsvergunning", "Vergunningen", "Aanvraag dakkapel"),
        ("Omgevingsvergunning", "Vergunningen", "Kappen van een boom"),
        (
            "Melding openbare ruimte",
            "Openbare ruimte",
            "Losliggende stoeptegel",
        ),
        (
            "Melding openbare ruimte",
            "Openbare ruimte",
            "Kapotte lantaarnpaal",
        ),
        (
            "Parkeervergunning",
            "Burgerzaken",
            "Parkeervergunning bewoner",
        ),
        ("Subsidieaanvraag", "Subsidies", "Subsidie buurtfeest"),
    ];
    const PEOPLE: [(&str, &str, &str); 4] = [
        ("J. de Vries", "j.devries@example.org", "111222333"),
        ("A. Jansen", "a.jansen@example.org", "123456782"),
        ("M. Bakker", "m.bakker@example.org", "999999990"),
        ("S. Visser", "s.visser@example.org", "100000009"),
    ];
    const STATES: [&str; 4] = ["open", "in_progress", "suspended", "closed"];
    (0..36)
        .map(|i| {
            let (case_type, department, subject) = TYPES[i % TYPES.len()];
            let (name, email, bsn) = PEOPLE[i % PEOPLE.len()];
            let status = STATES[(i / 6) % STATES.len()];
            let mut body = json!({
                "case_type": case_type,
                "subject": format!("{subject} {}", 10 + i),
                "status": status,
                "phase": if status == "open" { "Intake" } else { "Behandeling" },
                "department": department,
                "assignee": if i % 3 == 0 { reader } else { owner },
                "requester": { "name": name, "email": email, "bsn": bsn },
                "registration_date": format!("2026-{:02}-{:02}", 1 + i % 10, 1 + i % 27),
                "target_date": format!("2026-{:02}-{:02}", 3 + i % 10, 1 + i % 27),
                "confidentiality": if i % 7 == 0 { "confidential" } else { "internal" },
                "attributes": { "priority": 1 + (i % 3), "fee_paid": i % 2 == 0 },
            });
            if status == "closed" {
                body["result"] = json!("Verleend");
            }
            (i + 1, body.as_object().expect("object").clone())
        })
        .collect()
}
