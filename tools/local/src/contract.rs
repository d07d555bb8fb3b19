//! The contract partners read: the OpenAPI document generated from every function's route
//! table, and the check that those tables and template.yaml declare the same routes.

use std::collections::BTreeSet;

use koppel_shared::openapi::{self, Group};
use serde_json::Value;

use crate::gateway::HttpFunction;
use crate::template::Template;

/// Every HTTP function's routes, as the document groups them.
pub fn groups() -> Vec<Group> {
    HttpFunction::ALL
        .into_iter()
        .map(|f| {
            let (tag, description) = match f {
                HttpFunction::Tokens => (
                    "identity",
                    "Who am I, personal access tokens, users, connector credentials, OTP issuance and the audit trail.",
                ),
                HttpFunction::Connectors => (
                    "connectors",
                    "Connector profiles and their webhook subscriptions, deliveries and replays.",
                ),
                HttpFunction::Cases => (
                    "cases",
                    "Cases as a connector's saved search shows them, their history, CSV export, and saved searches.",
                ),
                HttpFunction::Dsr => (
                    "data-subject-requests",
                    "Dastra-compatible data-subject requests (GDPR), with Dastra's field names and types.",
                ),
                HttpFunction::Endpoints => (
                    "osr",
                    "Kennisnet OSR-compatible service endpoints, mandates and service-version namespaces.",
                ),
            };
            Group {
                tag,
                description,
                routes: f.routes(),
            }
        })
        .collect()
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    openapi::document(env!("CARGO_PKG_VERSION"), &groups(), &[])
}

/// `METHOD path` of every route, with the binary that serves it and whether it is public.
type Declared = BTreeSet<(String, String, String, bool)>;

/// Where template.yaml and the route tables disagree: routes only one of them declares,
/// each as `METHOD path (binary, public|authorized)`.
pub fn differences(template: &Template) -> Result<(Vec<String>, Vec<String>), String> {
    let mut in_template = Declared::new();
    for r in template.routes() {
        let binary = template.binary(&r.function)?;
        in_template.insert((r.method.clone(), r.path.clone(), binary, !r.authorized));
    }
    let mut in_tables = Declared::new();
    for f in HttpFunction::ALL {
        let binary = f.binary().to_owned();
        for r in f.routes() {
            in_tables.insert((
                r.method.to_owned(),
                r.path.to_owned(),
                binary.clone(),
                r.public,
            ));
        }
    }
    let show = |(m, p, b, public): &(String, String, String, bool)| {
        format!(
            "{m} {p} ({b}, {})",
            if *public { "public" } else { "authorized" }
        )
    };
    Ok((
        in_template.difference(&in_tables).map(show).collect(),
        in_tables.difference(&in_template).map(show).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

    #[test]
    fn template_and_route_tables_declare_the_same_routes() {
        let t = Template::load(std::path::Path::new(&format!("{ROOT}/template.yaml"))).unwrap();
        let (only_template, only_tables) = differences(&t).unwrap();
        assert!(
            only_template.is_empty() && only_tables.is_empty(),
            "only in template.yaml: {only_template:#?}\nonly in the route tables: {only_tables:#?}"
        );
    }

    /// The committed `openapi.json` is the generated one, so every contract change shows
    /// in review. `KOPPEL_UPDATE_OPENAPI=1 cargo test -p koppel-local` rewrites it.
    #[test]
    fn the_committed_openapi_document_is_current() {
        let path = format!("{ROOT}/openapi.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
        if std::env::var("KOPPEL_UPDATE_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "openapi.json is not the generated document: run KOPPEL_UPDATE_OPENAPI=1 cargo test -p koppel-local contract"
        );
    }

    #[test]
    fn every_operation_has_a_unique_id() {
        let d = document();
        let mut ids = BTreeSet::new();
        for (_, ops) in d["paths"].as_object().unwrap() {
            for (_, op) in ops.as_object().unwrap() {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()));
            }
        }
        assert!(ids.len() >= 59, "{} operations", ids.len());
    }
}
