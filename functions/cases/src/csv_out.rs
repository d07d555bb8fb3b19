//! CSV of a saved search: RFC 4180 (CRLF, quotes where needed), UTF-8, a header row of
//! column names in the search's order, and text cells that a spreadsheet would run as a
//! formula neutralised with a leading `'` (OWASP's advice). Numbers, dates and booleans
//! are written as values, not text, so they are never altered.

use std::borrow::Cow;
use std::collections::HashMap;

use csv::{Terminator, WriterBuilder};
use koppel_shared::cases::{BASE_FIELDS, COLUMNS, Case, View};
use serde_json::Value;

pub const BOM: &str = "\u{feff}";

/// Prefixes text that starts like a formula (`=`, `+`, `-`, `@`, tab, CR).
pub fn neutralise(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => neutralise(s).into_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => neutralise(&other.to_string()).into_owned(),
    }
}

fn write(records: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = WriterBuilder::new()
        .terminator(Terminator::CRLF)
        .from_writer(Vec::new());
    for r in records {
        // Writing to memory cannot fail.
        let _ = w.write_record(&r);
    }
    w.into_inner().unwrap_or_default()
}

/// CSV column names, in order: the base fields, then the search's columns. A workspace
/// user gets every column, with the custom attributes as one JSON column.
pub fn columns(view: &View) -> Vec<String> {
    let mut out: Vec<String> = BASE_FIELDS.iter().map(|s| (*s).to_owned()).collect();
    match view {
        View::All => {
            out.extend(COLUMNS.iter().map(|s| (*s).to_owned()));
            out.push("attributes".into());
        }
        View::Search(s) => out.extend(s.columns.iter().cloned()),
        View::Nothing => {}
    }
    out
}

/// The header row (with the byte order mark first if asked for).
pub fn header(columns: &[String], bom: bool) -> Vec<u8> {
    let mut out = if bom {
        BOM.as_bytes().to_vec()
    } else {
        Vec::new()
    };
    out.extend(write([columns.to_vec()]));
    out
}

/// One row per case, `columns` in order. The `attributes` column (workspace users) holds
/// every custom attribute as JSON.
pub fn rows<'a>(columns: &[String], cases: impl IntoIterator<Item = &'a Case>) -> Vec<u8> {
    write(cases.into_iter().map(|c| {
        let fields: HashMap<String, Value> = c.fields().into_iter().collect();
        columns
            .iter()
            .map(|col| match col.as_str() {
                "attributes" => cell(&Value::String(
                    serde_json::to_string(&c.attributes).unwrap_or_default(),
                )),
                _ => fields.get(col).map(cell).unwrap_or_default(),
            })
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case() -> Case {
        serde_json::from_value(serde_json::json!({
            "id": 1, "uuid": "u", "case_type": "permit", "subject": "=HYPERLINK(\"x\")",
            "status": "open", "requester": {"name": "Jansen, \"Jan\"\r\nline"},
            "registration_date": "2026-11-01", "attributes": {"n": -3, "paid": false,
            "note": "@SUM(A1)", "t": "\tx", "m": "-1+1"},
            "version": 1, "created_at": "t", "updated_at": "t"
        }))
        .unwrap()
    }

    #[test]
    fn formulas_are_neutralised() {
        for s in ["=1+1", "+1", "-1", "@x", "\tx", "\rx"] {
            assert!(neutralise(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(neutralise("plain"), "plain");
        assert_eq!(neutralise(""), "");
    }

    #[test]
    fn rows_quote_escape_and_type() {
        let cols: Vec<String> = [
            "id",
            "subject",
            "requester.name",
            "attributes.n",
            "attributes.paid",
            "attributes.note",
            "attributes.t",
            "attributes.m",
            "target_date",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let out = String::from_utf8(rows(&cols, [&case()])).unwrap();
        assert_eq!(
            out,
            "1,\"'=HYPERLINK(\"\"x\"\")\",\"Jansen, \"\"Jan\"\"\r\nline\",-3,false,'@SUM(A1),'\tx,'-1+1,\r\n"
        );
        let all = [header(&cols, false), rows(&cols, [&case()])].concat();
        let mut r = csv::Reader::from_reader(all.as_slice());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[2], "Jansen, \"Jan\"\r\nline");
    }

    #[test]
    fn columns_follow_the_search() {
        let v = crate::fixtures::search(serde_json::json!({}), &["department", "subject"]);
        let cols = columns(&v);
        assert_eq!(&cols[..4], ["id", "uuid", "case_type", "status"]);
        assert_eq!(&cols[cols.len() - 2..], ["department", "subject"]);
        assert!(columns(&View::Nothing).len() == BASE_FIELDS.len());
        assert_eq!(columns(&View::All).last().unwrap(), "attributes");
    }

    #[test]
    fn header_with_bom() {
        let h = header(&["id".into(), "status".into()], true);
        assert_eq!(h, "\u{feff}id,status\r\n".as_bytes());
    }
}
