//! The admin CLI end to end, against the running stack's emulator: every administered
//! resource can be listed, read, changed and deleted from the command line, connectors and
//! saved searches under the API's own rules (what the API refuses, the CLI refuses, with
//! the same reasons), and a script asking for JSON gets its errors as JSON.

use koppel_e2e::*;
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| s(&i["id"]).to_owned())
        .collect()
}

fn file(name: &str, v: &Value) -> String {
    let dir = std::env::temp_dir().join(format!("koppel-admin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn workspaces_are_listed_renamed_and_deleted_with_everything_in_them() {
    let (ws, owner) = new_workspace("CLI test");
    assert!(ids(&admin(&["workspace", "list"])).contains(&ws));
    let renamed = admin(&[
        "workspace",
        "update",
        "--workspace",
        &ws,
        "--name",
        "Gemeente CLI",
    ]);
    assert_eq!(renamed["name"], "Gemeente CLI");
    assert_eq!(
        admin(&["workspace", "get", "--workspace", &ws])["name"],
        "Gemeente CLI"
    );
    let con = NewConnector::sample(&ws, &owner).id();
    let (_, token) = NewCredential::token(&ws, &con).secret();
    let (_, pat) = personal_token(&ws, &owner);
    let users = admin(&["user", "list", "--workspace", &ws]);
    assert_eq!(ids(&users), [owner.as_str()]);
    // Deleting needs --yes; then nothing of it is left and none of its credentials work.
    let no = std::process::Command::new(var("KOPPEL_E2E_ADMIN"))
        .args(["workspace", "delete", "--workspace", &ws])
        .output()
        .unwrap();
    assert!(!no.status.success());
    let gone = admin(&["workspace", "delete", "--workspace", &ws, "--yes"]);
    assert!(gone["items_deleted"].as_u64().unwrap() >= 5, "{gone}");
    assert!(admin_error(&["workspace", "get", "--workspace", &ws]).contains("no workspace"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    for secret in [token, pat] {
        let auth = format!("Bearer {secret}");
        assert_eq!(rt.block_on(me(&[("Authorization", &auth)])).status, 401);
    }
}

#[test]
fn connectors_and_saved_searches_follow_the_apis_rules_from_the_command_line() {
    let (ws, owner) = new_workspace("CLI connectors");
    let con = NewConnector::sample(&ws, &owner).id();
    assert_eq!(
        ids(&admin(&["connector", "list", "--workspace", &ws])),
        [con.as_str()]
    );

    let search = admin(&[
        "saved-search",
        "create",
        "--workspace",
        &ws,
        "--file",
        &file(
            "search.json",
            &json!({ "name": "Open", "filters": { "status": ["open"] }, "columns": ["subject"] }),
        ),
    ]);
    let search_id = s(&search["id"]).to_owned();
    assert_eq!(
        ids(&admin(&["saved-search", "list", "--workspace", &ws])),
        [search_id.as_str()]
    );
    let changed = admin(&[
        "saved-search",
        "update",
        "--workspace",
        &ws,
        "--search",
        &search_id,
        "--file",
        &file("patch.json", &json!({ "name": "Open zaken" })),
    ]);
    assert_eq!(changed["name"], "Open zaken");
    assert_eq!(changed["version"], 2);

    let updated = admin(&[
        "connector",
        "update",
        "--workspace",
        &ws,
        "--connector",
        &con,
        "--description",
        "Portaal",
        "--scope",
        "cases:read",
        "--scope",
        "dsr:read",
        "--rate-limit",
        "90",
        "--saved-search",
        &search_id,
    ]);
    assert_eq!(updated["description"], "Portaal");
    assert_eq!(updated["saved_search_id"], search_id.as_str());
    assert_eq!(updated["rate_limit"], 90);
    assert_eq!(updated["version"], 2);
    // The API's refusals, with its reasons.
    let e = admin_error(&[
        "saved-search",
        "delete",
        "--workspace",
        &ws,
        "--search",
        &search_id,
    ]);
    assert!(e.contains(&con), "{e}");
    let e = admin_error(&[
        "connector",
        "update",
        "--workspace",
        &ws,
        "--connector",
        &con,
        "--acting-user",
        "usr_nobody",
    ]);
    assert!(e.contains("acting_user_id"), "{e}");
    let e = admin_error(&[
        "connector",
        "import",
        "--workspace",
        &ws,
        "--connector",
        &con,
        "--file",
        &file(
            "bad.json",
            &json!({ "scopes": ["cases:read", "cases:delete"], "event_types": ["dsr.created"] }),
        ),
    ]);
    assert!(
        e.contains("scopes[1]") && e.contains("event_types[0]"),
        "{e}"
    );

    let imported = admin(&[
        "connector",
        "import",
        "--workspace",
        &ws,
        "--connector",
        &con,
        "--file",
        &file(
            "manifest.json",
            &json!({
                "description": "Zaakportaal 2", "scopes": ["cases:read", "cases:write"],
                "event_types": ["case.created", "case.updated"],
            }),
        ),
    ]);
    assert_eq!(imported["scopes"], json!(["cases:read", "cases:write"]));
    assert_eq!(
        imported["manifest"]["event_types"],
        json!(["case.created", "case.updated"])
    );
    let read = admin(&["connector", "get", "--workspace", &ws, "--connector", &con]);
    assert_eq!(read["description"], "Zaakportaal 2");

    // Detach, then both go.
    admin(&[
        "connector",
        "update",
        "--workspace",
        &ws,
        "--connector",
        &con,
        "--saved-search",
        "none",
    ]);
    admin(&[
        "saved-search",
        "delete",
        "--workspace",
        &ws,
        "--search",
        &search_id,
    ]);
    admin(&[
        "connector",
        "delete",
        "--workspace",
        &ws,
        "--connector",
        &con,
    ]);
    assert!(ids(&admin(&["connector", "list", "--workspace", &ws])).is_empty());
    assert!(ids(&admin(&["saved-search", "list", "--workspace", &ws])).is_empty());
}

#[test]
fn users_are_read_and_deactivated_from_the_command_line() {
    let (ws, owner) = new_workspace("CLI users");
    let clerk = NewUser::sample(&ws).rights("read").api_access(true).id();
    let (_, pat) = personal_token(&ws, &clerk);
    assert_eq!(
        admin(&["user", "get", "--workspace", &ws, "--user", &clerk])["id"],
        clerk.as_str()
    );
    let con = NewConnector::sample(&ws, &clerk).id();
    let e = admin_error(&["user", "deactivate", "--workspace", &ws, "--user", &clerk]);
    assert!(e.contains("409") && e.contains(&con), "{e}");
    admin(&[
        "connector",
        "update",
        "--workspace",
        &ws,
        "--connector",
        &con,
        "--acting-user",
        &owner,
    ]);
    let off = admin(&["user", "deactivate", "--workspace", &ws, "--user", &clerk]);
    assert!(off["deactivated_at"].is_string(), "{off}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let auth = format!("Bearer {pat}");
    assert_eq!(rt.block_on(me(&[("Authorization", &auth)])).status, 401);
    // The revocation is audited as the operator's.
    let (_, owner_pat) = personal_token(&ws, &owner);
    let auth = format!("Bearer {owner_pat}");
    let audit = rt.block_on(get(
        &base_url(),
        "/v1/audit?limit=20",
        &[("Authorization", &auth)],
    ));
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "credential.revoked" && e["actor_user_id"] == "koppel-admin"),
        "{}",
        audit.body
    );
    assert!(
        admin_error(&["user", "deactivate", "--workspace", &ws, "--user", &owner])
            .contains("owner")
    );
}
