//! Reading a prepared body (see `model::writable_part` and `model::overlay`) as Dastra's
//! model so that one 422 names every field of the wrong type. serde stops at the first
//! error, so when the whole body does not read, each field is read on its own (inside an
//! object, each of its fields), and the fields that fail are set aside: the rest is read
//! as the request, so the rules that follow can add their errors to the same answer.

use koppel_shared::body;
use koppel_shared::error::FieldError;
use serde_json::{Map, Value};

use crate::model::Dsr;

/// How deep objects are split to find each bad field; below that, a field's first error
/// names it.
const MAX_DEPTH: usize = 4;

/// The request `prepared` describes, and one error per field that does not read. A field
/// that does not read takes its value from `fallback` (the stored request on an update)
/// or is left out (on a create).
pub fn read(prepared: Value, fallback: Option<&Value>) -> (Dsr, Vec<FieldError>) {
    if let Ok(d) = parse(&prepared) {
        return (d, Vec::new());
    }
    let mut errors = Vec::new();
    let mut rest = match prepared {
        Value::Object(map) => map,
        other => {
            errors.push(FieldError {
                field: String::new(),
                message: format!("must be a JSON object, not {other}"),
            });
            return (Dsr::default(), errors);
        }
    };
    let keys: Vec<String> = rest.keys().cloned().collect();
    for k in keys {
        let before = errors.len();
        probe(&[k.as_str()], &rest[&k], &mut errors);
        if errors.len() > before {
            match fallback.and_then(|f| f.get(&k)) {
                Some(kept) => rest.insert(k, kept.clone()),
                None => rest.remove(&k),
            };
        }
    }
    match parse(&Value::Object(rest)) {
        Ok(d) => (d, errors),
        // Every field read on its own; should they still fail together, say so.
        Err(e) => {
            errors.extend(e.errors);
            (Dsr::default(), errors)
        }
    }
}

fn parse(v: &Value) -> Result<Dsr, koppel_shared::ApiError> {
    let bytes = serde_json::to_vec(v).map_err(koppel_shared::ApiError::internal)?;
    body::parse(&bytes)
}

/// `value` at `path` in an otherwise empty request (every field of the model is optional).
fn nest(path: &[&str], value: &Value) -> Value {
    path.iter().rev().fold(value.clone(), |inner, k| {
        let mut m = Map::new();
        m.insert((*k).to_owned(), inner);
        Value::Object(m)
    })
}

/// Records the errors of the field at `path`: of each of its fields when the error lies
/// inside an object, else its first.
fn probe(path: &[&str], value: &Value, errors: &mut Vec<FieldError>) {
    let Err(e) = parse(&nest(path, value)) else {
        return;
    };
    let here = path.join(".");
    let first = e.errors.into_iter().next().unwrap_or_else(|| FieldError {
        field: here.clone(),
        message: "is not valid".into(),
    });
    if let Value::Object(m) = value
        && first.field != here
        && path.len() < MAX_DEPTH
    {
        let before = errors.len();
        for (k, v) in m {
            let mut inner = path.to_vec();
            inner.push(k);
            probe(&inner, v, errors);
        }
        if errors.len() > before {
            return;
        }
    }
    errors.push(first);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_good_body_reads_whole() {
        let (d, errors) = read(json!({ "title": "t", "complex": true }), None);
        assert!(errors.is_empty());
        assert_eq!((d.title.as_deref(), d.complex), (Some("t"), true));
    }

    #[test]
    fn every_bad_field_is_named_and_the_rest_is_read() {
        let body = json!({
            "complex": "yes", "areaId": "seven", "title": "kept", "state": "Done",
            "area": { "order": "first", "label": "ok", "id": "x" },
            "tags": [{ "id": 1 }, { "id": "two" }],
        });
        let (d, errors) = read(body, None);
        assert_eq!(
            fields(&errors),
            [
                "area.id",
                "area.order",
                "areaId",
                "complex",
                "state",
                "tags[1].id"
            ]
        );
        assert!(errors[0].message.contains("expected i64"), "{errors:?}");
        assert_eq!(d.title.as_deref(), Some("kept"));
        assert_eq!((d.area, d.area_id, d.complex), (None, None, false));
    }

    #[test]
    fn a_bad_field_keeps_the_fallback_value() {
        let stored = json!({ "title": "stored", "complex": true });
        let (d, errors) = read(json!({ "title": 5, "complex": true }), Some(&stored));
        assert_eq!(fields(&errors), ["title"]);
        assert_eq!(d.title.as_deref(), Some("stored"));
        assert!(d.complex);
    }

    #[test]
    fn an_object_where_a_text_belongs_is_one_error() {
        let (_, errors) = read(json!({ "title": { "a": 1, "b": 2 } }), None);
        assert_eq!(fields(&errors), ["title"]);
    }

    #[test]
    fn not_an_object() {
        let (_, errors) = read(json!([1]), None);
        assert_eq!(fields(&errors), [""]);
    }
}
