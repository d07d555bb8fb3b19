//! Test data shared by the crate's unit tests.

use koppel_shared::cases::{Case, SavedSearch, View};
use serde_json::{Value, json};

/// Case 7: open, internal, a requester with a name and a BSN, two attributes.
pub fn case() -> Case {
    serde_json::from_value(json!({
        "id": 7, "uuid": "u-7", "case_type": "permit", "subject": "Dakkapel",
        "status": "open", "requester": {"name": "J. Jansen", "bsn": "111222333"},
        "department": "Vergunningen", "registration_date": "2026-11-01",
        "confidentiality": "internal", "attributes": {"priority": 2, "paid": true},
        "version": 3, "created_at": "t", "updated_at": "t"
    }))
    .unwrap()
}

/// A connector's view through a saved search with these filters and columns.
pub fn search(filters: Value, columns: &[&str]) -> View {
    View::of(Some(SavedSearch {
        workspace_id: "ws".into(),
        saved_search_id: "s".into(),
        name: "n".into(),
        filters: serde_json::from_value(filters).unwrap(),
        columns: columns.iter().map(|s| (*s).to_owned()).collect(),
        version: 1,
        created_at: "t".into(),
        updated_at: "t".into(),
    }))
}
