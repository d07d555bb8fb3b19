//! Dastra's documentation that partners copied from is an automatic translation: some keys
//! and enum values appear in Dutch. Koppel answers with Dastra's canonical English names
//! and accepts the translated spellings on input, in any letter case.

use serde_json::{Map, Value};

/// Translated key (lower case) → Dastra's key.
const KEYS: &[(&str, &str)] = &[
    ("doeleinden", "purposes"),
    ("gebieden", "areas"),
    ("gebruikers", "users"),
    ("volgorde", "order"),
];

/// Translated enum value (lower case) → Dastra's value.
const VALUES: &[(&str, &str)] = &[("geen", "None"), ("onbekend", "Unknown")];

/// Enum values Koppel knows by Dastra's spelling, so that any letter case maps to it.
/// Values not listed are kept as sent (Dastra adds values over time).
const KNOWN_VALUES: &[&str] = &[
    // closedReason, accessLevel and others
    "None",
    // purposes
    "Unknown",
    "Access",
    "Rectification",
    "Erasure",
    "Portability",
    "Opposition",
    "Limitation",
    "Other",
    // personCategory
    "Prospect",
    "Customer",
    "Employee",
    "Candidate",
    "Supplier",
    // channel
    "Internal",
    "Email",
    "Mail",
    "Phone",
    "Form",
    "Widget",
    // types in nested objects
    "Entity",
    "Physical",
    "Moral",
    "B2B",
    "B2C",
    "DataProcessing",
    "DataSubject",
];

/// Renames translated keys to Dastra's, at every depth. When both spellings are present
/// the canonical one wins.
pub fn normalize_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            let mut translated = Vec::new();
            for (k, v) in map {
                match canonical_key(&k) {
                    Some(c) => translated.push((c, normalize_keys(v))),
                    None => {
                        out.insert(k, normalize_keys(v));
                    }
                }
            }
            for (k, v) in translated {
                out.entry(k).or_insert(v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_keys).collect()),
        other => other,
    }
}

/// Dastra's key for a translated one.
pub fn canonical_key(key: &str) -> Option<&'static str> {
    let lower = key.to_lowercase();
    KEYS.iter().find(|(t, _)| *t == lower).map(|(_, c)| *c)
}

/// Dastra's spelling of an enum value: a translation or a known value in any case maps to
/// the canonical spelling; anything else is kept as sent.
pub fn canonical_value(value: &str) -> String {
    let lower = value.to_lowercase();
    if let Some((_, c)) = VALUES.iter().find(|(t, _)| *t == lower) {
        return (*c).to_owned();
    }
    KNOWN_VALUES
        .iter()
        .find(|k| k.to_lowercase() == lower)
        .map_or_else(|| value.to_owned(), |k| (*k).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn translated_keys_at_every_depth_in_any_case() {
        let v = normalize_keys(json!({
            "Doeleinden": ["onbekend"],
            "area": { "teams": [{ "GEBIEDEN": [1], "gebruikers": [2] }] },
            "workFlowStep": { "volgorde": 3 },
            "title": "Geen",
        }));
        assert_eq!(
            v,
            json!({
                "purposes": ["onbekend"],
                "area": { "teams": [{ "areas": [1], "users": [2] }] },
                "workFlowStep": { "order": 3 },
                "title": "Geen",
            })
        );
    }

    #[test]
    fn canonical_key_wins_over_its_translation() {
        let v = normalize_keys(json!({ "purposes": ["Access"], "doeleinden": ["Erasure"] }));
        assert_eq!(v, json!({ "purposes": ["Access"] }));
    }

    #[test]
    fn translated_and_canonical_values() {
        assert_eq!(canonical_value("Geen"), "None");
        assert_eq!(canonical_value("GEEN"), "None");
        assert_eq!(canonical_value("onbekend"), "Unknown");
        assert_eq!(canonical_value("Onbekend"), "Unknown");
        assert_eq!(canonical_value("none"), "None");
        assert_eq!(canonical_value("prospect"), "Prospect");
        assert_eq!(canonical_value("datasubject"), "DataSubject");
        assert_eq!(canonical_value("SomethingNew"), "SomethingNew");
    }

    #[test]
    fn unrelated_keys_are_untouched() {
        assert_eq!(canonical_key("order"), None);
        assert_eq!(canonical_key("title"), None);
        assert_eq!(canonical_key("Volgorde"), Some("order"));
    }
}
