//! The demo workspace the run command seeds: an owner and a reader with personal tokens,
//! a connector with an API key, a token and a JWT key, written to `.koppel/demo.json`.

use std::path::Path;

use koppel_shared::Ctx;
use koppel_shared::model::{Level, Scope};
use serde_json::json;

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
        },
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
         \n  curl -s {base_url}/v1/me -H 'Authorization: Bearer {owner_pat}'\n",
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
