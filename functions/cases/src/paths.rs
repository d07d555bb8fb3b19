//! The field paths of a write (`subject`, `requester.bsn`, `attributes.x`): which a merge
//! patch touches, and which changed between two versions of a case (its history entry and
//! the event's `changed`).

use std::collections::BTreeMap;

use koppel_shared::cases::Case;
use serde_json::{Map, Value};

/// Flattens a JSON merge-patch object into the field paths it touches (`requester.bsn`,
/// `attributes.x`; other objects are one field).
pub fn patch_paths(patch: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in patch {
        match v {
            Value::Object(inner) if k == "requester" || k == "attributes" => {
                out.extend(inner.keys().map(|sub| format!("{k}.{sub}")));
            }
            // `requester: null` clears every requester field.
            Value::Null if k == "requester" => {
                out.extend(
                    ["name", "email", "bsn", "kvk"]
                        .iter()
                        .map(|s| format!("requester.{s}")),
                );
            }
            _ => out.push(k.clone()),
        }
    }
    out
}

/// What changed between two versions: `(path, old, new)` for every differing field, except
/// the bookkeeping ones.
pub fn changes(old: &Case, new: &Case) -> Vec<(String, Value, Value)> {
    let before: BTreeMap<String, Value> = old.fields().into_iter().collect();
    let after: BTreeMap<String, Value> = new.fields().into_iter().collect();
    let mut paths: Vec<&String> = before.keys().chain(after.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| !matches!(p.as_str(), "updated_at" | "version"))
        .filter_map(|p| {
            let (a, b) = (
                before.get(p).cloned().unwrap_or(Value::Null),
                after.get(p).cloned().unwrap_or(Value::Null),
            );
            (a != b).then(|| (p.clone(), a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::case;
    use koppel_shared::cases::Status;
    use serde_json::json;

    #[test]
    fn changes_list_every_differing_field() {
        let a = case();
        let mut b = a.clone();
        b.status = Status::Closed;
        b.result = Some("granted".into());
        b.attributes.remove("paid");
        b.version = 4;
        let ch = changes(&a, &b);
        let paths: Vec<&str> = ch.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, ["attributes.paid", "result", "status"]);
        assert_eq!(ch[0].2, Value::Null);
    }

    #[test]
    fn patch_paths_flatten_nested_objects() {
        let p = json!({"subject": "x", "requester": {"bsn": null}, "attributes": {"a": 1}});
        let mut paths = patch_paths(p.as_object().unwrap());
        paths.sort();
        assert_eq!(paths, ["attributes.a", "requester.bsn", "subject"]);
    }
}
