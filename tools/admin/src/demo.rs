//! The demo workspace the run command seeds: an owner and a reader with personal tokens,
//! a connector with an API key, a token and a JWT key and a saved search, a few dozen
//! cases, data-subject requests, a service version with a mandate and an endpoint under
//! it, and a webhook subscription, written to `.koppel/demo.json`. What partners' calls
//! make is made by the functions' own handlers (see [`Caller`]), so every operation tried
//! from `/docs` finds something.

use std::path::Path;

use koppel_shared::cases::SavedSearch;
use koppel_shared::ids::new_id;

use koppel_shared::Ctx;
use koppel_shared::model::{Level, Scope, Scopes};
use koppel_shared::store::put_new;
use koppel_shared::time_util::{now, rfc3339};
use serde::Serialize;
use serde_json::{Value, json};

use crate::commands::{self as c, Done, Flags, Issue, NewConnector};
use crate::through_api::Caller;

fn issue(name: &str) -> Issue {
    Issue {
        name: name.into(),
        scopes: None,
        rate_limit: None,
        expires_in: None,
    }
}

/// `.koppel/demo.json`: what the seed made, for the run command's curl lines, the
/// end-to-end tests and the contract test.
#[derive(Serialize)]
pub struct Demo {
    base_url: String,
    workspace_id: String,
    users: DemoUsers,
    connector: DemoConnector,
    cases: DemoCases,
    jwt: DemoJwt,
    data_subject_requests: Vec<i64>,
    osr: DemoOsr,
    webhook_subscription_id: Value,
}

#[derive(Serialize)]
struct DemoUsers {
    owner: DemoUser,
    reader: DemoUser,
}

#[derive(Serialize)]
struct DemoUser {
    id: String,
    email: String,
    /// A personal access token.
    pat: String,
}

#[derive(Serialize)]
struct DemoConnector {
    id: String,
    api_key: String,
    token: String,
    access_level: Level,
    scopes: Scopes,
    saved_search_id: String,
}

#[derive(Serialize)]
struct DemoCases {
    imported: usize,
    saved_search: String,
}

/// What a partner's JWTs for the demo connector carry, and the key to sign them with.
#[derive(Serialize)]
struct DemoJwt {
    connector_id: String,
    kid: String,
    iss: String,
    aud: String,
    private_key_pem: String,
    alg: &'static str,
}

#[derive(Serialize)]
struct DemoOsr {
    service_version_id: Value,
    namespace: &'static str,
    administration_id: &'static str,
    mandate_token: Value,
    endpoint_id: Value,
}

pub async fn seed(ctx: &Ctx, base_url: &str, out: &Path) -> Result<Done<Demo>, String> {
    let ws = c::create_workspace(
        ctx,
        "Gemeente Voorbeeld",
        "eigenaar@voorbeeld.example",
        "Eva Eigenaar",
    )
    .await?
    .view;
    let ws_id = ws.workspace.id;
    let owner = ws.owner;
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
    .view;
    let owner_pat = c::issue_pat(ctx, &ws_id, &owner.id, issue("demo"))
        .await?
        .view
        .secret;
    let reader_pat = c::issue_pat(ctx, &ws_id, &reader.id, issue("demo"))
        .await?
        .view
        .secret;

    let search = saved_search(ctx, &ws_id).await?;
    let con = c::create_connector(
        ctx,
        NewConnector {
            workspace: &ws_id,
            description: "Zaakportaal Demo",
            acting: c::Acting::User(&owner.id),
            access_level: Level::Handle,
            scopes: Scope::ALL.to_vec(),
            allow_ips: vec![],
            rate_limit: None,
            saved_search_id: Some(search.saved_search_id.clone()),
            generate: None,
        },
    )
    .await?
    .view
    .connector;
    let con_id = con.id.as_str();
    let key = c::issue_connector_credential(ctx, &ws_id, con_id, true, issue("demo key"))
        .await?
        .view
        .secret;
    let token = c::issue_connector_credential(ctx, &ws_id, con_id, false, issue("demo token"))
        .await?
        .view
        .secret;
    let imported = cases::write::import(ctx, &ws_id, &demo_cases(&owner.id, &reader.id)).await?;
    let issuer = format!("https://partner.example/{ws_id}");
    let jwt = c::generate_jwt_key(ctx, &ws_id, con_id, &issuer, "demo-1")
        .await?
        .view;

    let as_owner = Caller::new(ctx, &ws_id, &owner.id, None);
    let as_connector = Caller::new(ctx, &ws_id, &owner.id, Some(con_id));
    let seeded = seed_partner_data(&as_owner, &as_connector, con_id).await?;

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
         \n{cases} demo cases; the connector sees those of its saved search \"{search}\".\
         \n{dsrs} data-subject requests (ids {dsr_ids}); OSR: service version {namespace}, a mandate\
         \n  of administration {administration} for the connector, endpoint {endpoint} under it;\
         \n  webhook subscription {subscription} (disabled: its receiver is an example).\n",
        dsrs = seeded.dsr_ids.len(),
        dsr_ids = seeded
            .dsr_ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        namespace = DEMO_NAMESPACE,
        administration = DEMO_ADMINISTRATION,
        endpoint = seeded.endpoint["id"].as_str().unwrap_or_default(),
        subscription = seeded.subscription["id"].as_str().unwrap_or_default(),
        cases = imported.len(),
        search = search.name,
        out = out.display(),
        owner_email = owner.email,
        reader_email = reader.email,
    );
    let demo = Demo {
        base_url: base_url.to_owned(),
        users: DemoUsers {
            owner: DemoUser {
                id: owner.id,
                email: owner.email,
                pat: owner_pat,
            },
            reader: DemoUser {
                id: reader.id,
                email: reader.email,
                pat: reader_pat,
            },
        },
        connector: DemoConnector {
            id: con.id.clone(),
            api_key: key,
            token,
            access_level: con.access_level,
            scopes: con.scopes,
            saved_search_id: search.saved_search_id,
        },
        cases: DemoCases {
            imported: imported.len(),
            saved_search: search.name,
        },
        jwt: DemoJwt {
            connector_id: con.id,
            kid: jwt.kid,
            iss: issuer,
            aud: ctx.settings.jwt_audience.clone(),
            private_key_pem: jwt.private_key_pem,
            alg: jwt.alg,
        },
        data_subject_requests: seeded.dsr_ids,
        osr: DemoOsr {
            service_version_id: seeded.service_version["id"].clone(),
            namespace: DEMO_NAMESPACE,
            administration_id: DEMO_ADMINISTRATION,
            mandate_token: seeded.mandate["mandate_token"].clone(),
            endpoint_id: seeded.endpoint["id"].clone(),
        },
        webhook_subscription_id: seeded.subscription["id"].clone(),
        workspace_id: ws_id,
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(
        out,
        serde_json::to_string_pretty(&demo).expect("JSON") + "\n",
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(Done { text, view: demo })
}

/// The OSR service version the demo registers (seed 003's namespace form).
const DEMO_NAMESPACE: &str = "http://purl.edustandaard.nl/koppelpunt/demo/v1";
/// The administration (institution) that grants the connector its mandate.
const DEMO_ADMINISTRATION: &str = "0000000700025RB99999";

/// What the partner-facing functions made for the demo.
struct Seeded {
    dsr_ids: Vec<i64>,
    service_version: Value,
    mandate: Value,
    endpoint: Value,
    subscription: Value,
}

/// Data for every seed beyond cases, through the functions' handlers: data-subject
/// requests (Dastra, seed 002), a service version, a mandate and an endpoint (OSR, seed
/// 003), and a webhook subscription with Basic credentials and a hidden header (PlanRadar,
/// seed 004). The subscription is disabled, as its receiver is an example address: events
/// are not sent anywhere until a user points it at a receiver of their own.
async fn seed_partner_data(
    owner: &Caller<'_>,
    connector: &Caller<'_>,
    con_id: &str,
) -> Result<Seeded, String> {
    let ws = owner.principal().workspace_id.clone();
    let dsr_path = format!("/v1/ws/{ws}/DataSubjectRequests");
    let mut dsr_ids = vec![];
    for body in demo_dsrs() {
        let d = connector
            .call(
                dsr::handler,
                "POST",
                "/v1/ws/{workspaceId}/DataSubjectRequests",
                &dsr_path,
                json!({ "workspaceId": ws }),
                Some(body),
            )
            .await?;
        dsr_ids.push(
            d["id"]
                .as_i64()
                .ok_or("a data-subject request without an id")?,
        );
    }
    let service_version = owner
        .call(
            endpoints::handler,
            "POST",
            "/api/v1/service-versions",
            "/api/v1/service-versions",
            json!(null),
            Some(json!({ "namespace": DEMO_NAMESPACE, "description": "Demo: leermiddelen bestellen" })),
        )
        .await?;
    let mandate = owner
        .call(
            endpoints::handler,
            "POST",
            "/api/v1/mandates",
            "/api/v1/mandates",
            json!(null),
            Some(json!({
                "connector_id": con_id,
                "administration_id": DEMO_ADMINISTRATION,
                "service_version_namespace": DEMO_NAMESPACE,
            })),
        )
        .await?;
    let endpoint = connector
        .call(
            endpoints::handler,
            "POST",
            "/api/v1/endpoints",
            "/api/v1/endpoints",
            json!(null),
            Some(json!({
                "mandate_token": mandate["mandate_token"],
                "administration_id": DEMO_ADMINISTRATION,
                "service_version_namespace": DEMO_NAMESPACE,
                "url": "https://leverancier.example/koppelpunt",
                "attributes": "LAS",
            })),
        )
        .await?;
    let subscription = owner
        .call(
            connectors::handler,
            "POST",
            "/v1/connectors/{id}/subscriptions",
            &format!("/v1/connectors/{con_id}/subscriptions"),
            json!({ "id": con_id }),
            Some(json!({
                "url": "https://partner.example/koppel/webhooks",
                "event_types": ["case.created", "case.updated", "dsr.created", "endpoint.created"],
                "basic_auth": { "username": "koppel", "password": "demo-password" },
                "headers": [
                    { "name": "X-Partner-Tenant", "value": "voorbeeld", "hidden": false },
                    { "name": "X-Partner-Secret", "value": "demo-secret", "hidden": true },
                ],
                "enabled": false,
            })),
        )
        .await?;
    Ok(Seeded {
        dsr_ids,
        service_version,
        mandate,
        endpoint,
        subscription,
    })
}

/// Data-subject requests as a partner app files them (Dastra's model): an access request,
/// a complex erasure request, a rectification.
fn demo_dsrs() -> Vec<Value> {
    vec![
        json!({
            "title": "Inzageverzoek J. de Vries",
            "purposes": ["Access"],
            "givenName": "Jan", "familyName": "de Vries", "email": "j.devries@example.org",
            "channel": "Email", "personCategory": "Customer",
            "description": "Wil weten welke gegevens de gemeente over hem verwerkt.",
        }),
        json!({
            "title": "Verwijderverzoek A. Jansen",
            "purposes": ["Erasure"],
            "complex": true,
            "givenName": "Anna", "familyName": "Jansen", "email": "a.jansen@example.org",
            "channel": "Form",
            "description": "Verwijdering van alle gegevens uit het zaakportaal.",
        }),
        json!({
            "title": "Correctie adres M. Bakker",
            "purposes": ["Rectification"],
            "givenName": "Mila", "familyName": "Bakker", "email": "m.bakker@example.org",
            "address": "Dorpsstraat 1", "zipCode": "1234 AB", "city": "Voorbeeld", "countryCode": "NL",
        }),
    ]
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
