//! Holds live answers to the served OpenAPI document: the schema an operation documents
//! for a status, and whether a JSON value conforms to it. A small JSON Schema subset —
//! what the generated document uses: `$ref`, `allOf`, `anyOf`/`oneOf`, `type` (one or a
//! list), `enum`, `const`, `properties`, `required`, `additionalProperties: false`,
//! `items`, `minItems`. Formats and patterns are not checked.

use serde_json::Value;

use crate::{base_url, get};

/// The served document (`GET /openapi.json`, no credential).
pub async fn document() -> Value {
    let r = get(&base_url(), "/openapi.json", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The operation at `path` (as the document writes it, `/v1/cases/{id}`) and `method`.
pub fn operation<'d>(doc: &'d Value, method: &str, path: &str) -> &'d Value {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {path} is not in the document");
    op
}

/// The JSON schema the operation documents for `status`.
pub fn response_schema<'d>(doc: &'d Value, method: &str, path: &str, status: u16) -> &'d Value {
    let op = operation(doc, method, path);
    let s = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(!s.is_null(), "{method} {path} documents no {status} body");
    s
}

/// The names of the operation's parameters `in` (`query`, `header`, `path`).
pub fn parameters(op: &Value, r#in: &str) -> Vec<String> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == r#in)
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `schema` with its `$ref` followed (within `doc`).
pub fn resolve<'d>(doc: &'d Value, schema: &'d Value) -> &'d Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling {r}"));
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Panics, naming where and why, unless `value` conforms to `schema`.
pub fn assert_conforms(doc: &Value, schema: &Value, value: &Value) {
    if let Err(e) = conforms(doc, schema, value, "$") {
        panic!("the answer violates the document: {e}\n{value}");
    }
}

pub fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if schema == &Value::Bool(true) {
        return Ok(());
    }
    let schema = resolve(doc, schema);
    for s in schema["allOf"].as_array().into_iter().flatten() {
        conforms(doc, s, v, at)?;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema[key].as_array()
            && !alts.iter().any(|s| conforms(doc, s, v, at).is_ok())
        {
            return Err(format!("{at}: matches none of {key}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| is_type(t, v)) {
        return Err(format!("{at}: {v} is not {types:?}"));
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        return Err(format!("{at}: {v} is not {c}"));
    }
    if let Value::Object(m) = v {
        let props = schema["properties"].as_object();
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !m.contains_key(name) {
                return Err(format!("{at}: `{name}` is required"));
            }
        }
        for (k, child) in m {
            match props.and_then(|p| p.get(k)) {
                Some(s) => conforms(doc, s, child, &format!("{at}.{k}"))?,
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    return Err(format!("{at}: `{k}` is not a documented property"));
                }
                None => {}
            }
        }
    }
    if let Value::Array(items) = v {
        if let Some(min) = schema["minItems"].as_u64()
            && (items.len() as u64) < min
        {
            return Err(format!("{at}: fewer than {min} items"));
        }
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, s, item, &format!("{at}[{i}]"))?;
            }
        }
    }
    Ok(())
}

fn is_type(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// The properties a schema (after `$ref`) documents, sorted.
pub fn property_names(doc: &Value, schema: &Value) -> Vec<String> {
    let mut names: Vec<String> = resolve(doc, schema)["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}
