//! What a case and a saved search must satisfy beyond their shape (the 422s of a create,
//! a change or an import, and of a saved search's filters and columns). Every problem is
//! pushed into one [`Fields`], so a request hears of all of them at once.

use koppel_shared::body::Fields;
use koppel_shared::calendar::parse_date;
use koppel_shared::cases::{AttrOp, COLUMNS, Case, Filters, Status};
use serde_json::Value;

const MAX_ATTRIBUTES: usize = 100;
const MAX_TEXT: usize = 4096;
/// A case's JSON at most: its event carries it twice (before and after) and must stay
/// well inside SQS's 256 KiB, its item inside DynamoDB's 400 KB.
const MAX_CASE_BYTES: usize = 64 * 1024;

/// Checks the rules a case must satisfy beyond its shape; every problem goes into `e`.
pub fn validate(c: &Case, e: &mut Fields) {
    let text = |e: &mut Fields, field: &str, v: &str, required: bool| {
        if required && v.trim().is_empty() {
            e.push(field, "must not be empty");
        }
        if v.chars().count() > MAX_TEXT {
            e.push(field, format!("is longer than {MAX_TEXT} characters"));
        }
    };
    text(e, "case_type", &c.case_type, true);
    text(e, "subject", &c.subject, true);
    for (field, v) in [
        ("phase", &c.phase),
        ("department", &c.department),
        ("result", &c.result),
        ("assignee", &c.assignee),
    ] {
        if let Some(v) = v {
            text(e, field, v, true);
        }
    }
    if let Some(r) = &c.requester {
        if let Some(n) = &r.name {
            text(e, "requester.name", n, true);
        }
        if let Some(m) = &r.email
            && !koppel_shared::model::is_email(m)
        {
            e.push("requester.email", "is not an e-mail address");
        }
        if let Some(b) = &r.bsn
            && !is_bsn(b)
        {
            e.push(
                "requester.bsn",
                "is not a valid BSN (9 digits, eleven-test)",
            );
        }
        if let Some(k) = &r.kvk
            && !(k.len() == 8 && k.bytes().all(|b| b.is_ascii_digit()))
        {
            e.push("requester.kvk", "is not a KvK number (8 digits)");
        }
    }
    if parse_date(&c.registration_date).is_none() {
        e.push("registration_date", "must be a date (YYYY-MM-DD)");
    }
    if let Some(d) = &c.target_date
        && parse_date(d).is_none()
    {
        e.push("target_date", "must be a date (YYYY-MM-DD)");
    }
    if c.status == Status::Closed && c.result.as_deref().is_none_or(|r| r.trim().is_empty()) {
        e.push("result", "is required to close a case");
    }
    if c.attributes.len() > MAX_ATTRIBUTES {
        e.push(
            "attributes",
            format!("has more than {MAX_ATTRIBUTES} entries"),
        );
    }
    if serde_json::to_vec(c).map_or(0, |v| v.len()) > MAX_CASE_BYTES {
        e.push(
            "attributes",
            format!("make the case larger than {} KiB", MAX_CASE_BYTES / 1024),
        );
    }
    for (k, v) in &c.attributes {
        let field = format!("attributes.{k}");
        if !is_attribute_name(k) {
            e.push(
                &field,
                "name must be lower-case letters, digits and `_`, starting with a letter",
            );
        }
        match v {
            Value::String(s) => text(e, &field, s, false),
            Value::Bool(_) => {}
            Value::Number(n) if n.as_f64().is_some_and(storable) => {}
            Value::Number(_) => e.push(
                &field,
                "must be between -1e15 and 1e15 (and not below 1e-15 in size)",
            ),
            _ => e.push(&field, "must be text, a number, a boolean or a date"),
        }
    }
}

/// A number DynamoDB stores exactly as sent (its range is 1e-130 to 1e126; these bounds
/// keep well inside it and inside what JSON clients read as a double).
fn storable(x: f64) -> bool {
    x.is_finite() && (x == 0.0 || (1e-15..=1e15).contains(&x.abs()))
}

/// The Dutch BSN eleven-test.
fn is_bsn(s: &str) -> bool {
    if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let d: Vec<i64> = s.bytes().map(|b| i64::from(b - b'0')).collect();
    let sum: i64 = (0..8).map(|i| d[i] * (9 - i as i64)).sum::<i64>() - d[8];
    sum % 11 == 0
}

/// The rules of a saved search's filters. A trait so that `filters.validate(&mut e)` reads
/// as a method although [`Filters`] belongs to the shared crate.
pub trait FilterRules {
    fn validate(&self, e: &mut Fields);
}

impl FilterRules for Filters {
    fn validate(&self, e: &mut Fields) {
        for (name, r) in [
            ("registration_date", &self.registration_date),
            ("target_date", &self.target_date),
            ("closing_date", &self.closing_date),
        ] {
            let Some(r) = r else { continue };
            for (end, v) in [("from", &r.from), ("to", &r.to)] {
                if let Some(v) = v
                    && parse_date(v).is_none()
                {
                    e.push(
                        format!("filters.{name}.{end}"),
                        "must be a date (YYYY-MM-DD)",
                    );
                }
            }
        }
        for (name, list) in [
            ("case_type", &self.case_type),
            ("department", &self.department),
            ("assignee", &self.assignee),
        ] {
            if list.iter().any(|v| v.chars().count() > 256) {
                e.push(
                    format!("filters.{name}"),
                    "holds a value longer than 256 characters",
                );
            }
        }
        for (i, f) in self.attributes.iter().enumerate() {
            match &f.value {
                None | Some(Value::Bool(_)) => {}
                Some(Value::Number(n)) if n.as_f64().is_some_and(storable) => {}
                Some(Value::String(s)) if s.chars().count() <= 256 => {}
                Some(_) => e.push(
                    format!("filters.attributes[{i}].value"),
                    "must be text (at most 256 characters), a number or a boolean",
                ),
            }
            if !is_attribute_name(&f.name) {
                e.push(
                    format!("filters.attributes[{i}].name"),
                    "is not an attribute name",
                );
            }
            if (f.op == AttrOp::Exists) != f.value.is_none() {
                e.push(
                    format!("filters.attributes[{i}].value"),
                    "is required for every operator but `exists`, which takes none",
                );
            }
        }
        let lists = self.case_type.len()
            + self.department.len()
            + self.assignee.len()
            + self.attributes.len();
        if lists > 200 {
            e.push("filters", "has more than 200 values");
        }
    }
}

/// A saved search's columns: known, each once, and not too many.
pub fn validate_columns(columns: &[String], e: &mut Fields) {
    if columns.len() > 150 {
        e.push("columns", "has more than 150 entries");
    }
    for (i, c) in columns.iter().enumerate() {
        if !is_column(c) {
            e.push(format!("columns[{i}]"), format!("`{c}` is not a column"));
        } else if columns[..i].contains(c) {
            e.push(format!("columns[{i}]"), format!("`{c}` is listed twice"));
        }
    }
}

/// A custom attribute's name: lower-case letters, digits and `_`, starting with a letter.
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether `name` is a column a saved search may list.
fn is_column(name: &str) -> bool {
    COLUMNS.contains(&name)
        || name
            .strip_prefix("attributes.")
            .is_some_and(is_attribute_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::case;
    use koppel_shared::cases::Requester;
    use serde_json::json;

    #[test]
    fn bsn_eleven_test() {
        assert!(is_bsn("111222333"));
        assert!(!is_bsn("111222334"));
        assert!(!is_bsn("11122233"));
    }

    #[test]
    fn validation_names_fields() {
        let mut c = case();
        c.status = Status::Closed;
        c.requester = Some(Requester {
            bsn: Some("123".into()),
            email: Some("nope".into()),
            ..Default::default()
        });
        c.attributes.insert("Bad".into(), json!([1]));
        for i in 0..20 {
            c.attributes
                .insert(format!("a{i}"), json!("x".repeat(4000)));
        }
        let mut e = Fields::new();
        validate(&c, &mut e);
        let err = e.finish().unwrap_err();
        let names: Vec<_> = err.errors.iter().map(|f| f.field.as_str()).collect();
        for f in [
            "result",
            "requester.bsn",
            "requester.email",
            "attributes.Bad",
            "attributes",
        ] {
            assert!(names.contains(&f), "{f} not reported: {names:?}");
        }
    }

    #[test]
    fn filter_rules_name_fields() {
        let f: Filters = serde_json::from_value(json!({
            "registration_date": {"from": "2026-13-01"},
            "attributes": [
                {"name": "Bad", "op": "exists"},
                {"name": "priority", "op": "eq"},
                {"name": "paid", "op": "eq", "value": [true]}
            ]
        }))
        .unwrap();
        let mut e = Fields::new();
        f.validate(&mut e);
        let err = e.finish().unwrap_err();
        let names: Vec<_> = err.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "filters.registration_date.from",
                "filters.attributes[0].name",
                "filters.attributes[1].value",
                "filters.attributes[2].value",
            ]
        );
    }

    #[test]
    fn column_names() {
        assert!(is_column("requester.bsn"));
        assert!(is_column("attributes.priority"));
        assert!(!is_column("attributes.Priority"));
        assert!(!is_column("id"));
        let mut e = Fields::new();
        validate_columns(&["subject".into(), "subject".into(), "x".into()], &mut e);
        assert_eq!(e.len(), 2);
    }
}
