//! The query parameters of the list and the CSV export: the caller's own filters on top of
//! the saved search, the order, the page size and the opaque cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use koppel_shared::ApiError;
use koppel_shared::cases::{Case, Status, View};
use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    #[default]
    #[serde(rename = "asc")]
    Asc,
    #[serde(rename = "desc")]
    Desc,
}

/// Filters a caller adds to its saved search. Filters on a field the caller cannot see are
/// refused: matching on a hidden field would reveal its value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    pub status: Vec<Status>,
    pub case_type: Vec<String>,
    pub department: Vec<String>,
    pub assignee: Vec<String>,
    pub registered_from: Option<String>,
    pub registered_to: Option<String>,
    pub updated_since: Option<String>,
    pub order: Order,
    pub limit: usize,
    /// Continue after this case id (in `order`).
    pub after: Option<u64>,
    /// CSV only: start with a UTF-8 byte order mark, for Excel.
    pub bom: bool,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// The last case id the previous page looked at.
    a: u64,
    o: Order,
}

pub fn encode_cursor(after: u64, order: Order) -> String {
    let raw = serde_json::to_vec(&Cursor { a: after, o: order }).expect("plain struct");
    URL_SAFE_NO_PAD.encode(raw)
}

fn bad(param: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("Query parameter `{param}` {why}."))
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ListQuery {
    /// Reads `params` (name, value; repeated names allowed) for a caller with `view`.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        view: &View,
        csv: bool,
    ) -> Result<Self, ApiError> {
        let mut q = ListQuery {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        let mut cursor = None;
        for (k, v) in params {
            let date = |v: &str| {
                koppel_shared::calendar::parse_date(v)
                    .map(|_| v.to_owned())
                    .ok_or_else(|| bad(k, "must be a date (YYYY-MM-DD)"))
            };
            match k {
                "status" => {
                    for s in list(v) {
                        q.status.push(Status::parse(&s).ok_or_else(|| {
                            bad(k, "takes open, in_progress, suspended or closed")
                        })?);
                    }
                }
                "case_type" => q.case_type.extend(list(v)),
                "department" | "assignee" if !view.sees_field(k) => {
                    return Err(bad(k, "filters on a field this connector cannot see"));
                }
                "department" => q.department.extend(list(v)),
                "assignee" => q.assignee.extend(list(v)),
                "registered_from" => q.registered_from = Some(date(v)?),
                "registered_to" => q.registered_to = Some(date(v)?),
                "updated_since" => {
                    koppel_shared::time_util::parse_rfc3339(v)
                        .ok_or_else(|| bad(k, "must be an RFC 3339 time"))?;
                    q.updated_since = Some(v.to_owned());
                }
                "order" => {
                    q.order = match v {
                        "asc" => Order::Asc,
                        "desc" => Order::Desc,
                        _ => return Err(bad(k, "is `asc` or `desc` (by case id)")),
                    }
                }
                "limit" if !csv => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad(k, &format!("must be 1 to {MAX_LIMIT}")))?;
                }
                "cursor" if !csv => cursor = Some(v.to_owned()),
                "bom" if csv => {
                    q.bom = match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad(k, "is `true` or `false`")),
                    }
                }
                _ => return Err(bad(k, "is not known")),
            }
        }
        if let Some(c) = cursor {
            let c: Cursor = URL_SAFE_NO_PAD
                .decode(c.as_bytes())
                .ok()
                .and_then(|raw| serde_json::from_slice(&raw).ok())
                .ok_or_else(|| bad("cursor", "is not a cursor this API gave out"))?;
            if c.o != q.order {
                return Err(bad("cursor", "belongs to the other order"));
            }
            q.after = Some(c.a);
        }
        Ok(q)
    }

    pub fn matches(&self, c: &Case) -> bool {
        let any = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|l| l == v))
        };
        (self.status.is_empty() || self.status.contains(&c.status))
            && any(&self.case_type, Some(&c.case_type))
            && any(&self.department, c.department.as_deref())
            && any(&self.assignee, c.assignee.as_deref())
            && self
                .registered_from
                .as_deref()
                .is_none_or(|f| c.registration_date.as_str() >= f)
            && self
                .registered_to
                .as_deref()
                .is_none_or(|t| c.registration_date.as_str() <= t)
            && self.updated_since.as_deref().is_none_or(|s| {
                let at = koppel_shared::time_util::parse_rfc3339(&c.updated_at);
                at.zip(koppel_shared::time_util::parse_rfc3339(s))
                    .is_some_and(|(at, since)| at >= since)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koppel_shared::cases::SavedSearch;

    fn search(columns: &[&str]) -> View {
        View::Search(Box::new(SavedSearch {
            workspace_id: "ws".into(),
            saved_search_id: "s".into(),
            name: "n".into(),
            filters: Default::default(),
            columns: columns.iter().map(|s| (*s).to_owned()).collect(),
            version: 1,
            created_at: "t".into(),
            updated_at: "t".into(),
        }))
    }

    #[test]
    fn parses_and_round_trips_the_cursor() {
        let c = encode_cursor(42, Order::Desc);
        let q = ListQuery::parse(
            [
                ("status", "open,closed"),
                ("order", "desc"),
                ("cursor", c.as_str()),
                ("limit", "10"),
            ],
            &View::All,
            false,
        )
        .unwrap();
        assert_eq!(q.status, [Status::Open, Status::Closed]);
        assert_eq!((q.after, q.order, q.limit), (Some(42), Order::Desc, 10));
    }

    #[test]
    fn refuses_bad_and_hidden_parameters() {
        let v = search(&["subject"]);
        for p in [
            ("department", "x"),
            ("limit", "501"),
            ("limit", "0"),
            ("status", "gone"),
            ("cursor", "garbage"),
            ("colour", "red"),
            ("bom", "true"),
            ("registered_from", "2026-13-01"),
        ] {
            let e = ListQuery::parse([p], &v, false).unwrap_err();
            assert!(e.detail.contains(p.0), "{p:?}: {}", e.detail);
        }
        let asc = encode_cursor(1, Order::Asc);
        assert!(
            ListQuery::parse([("cursor", asc.as_str()), ("order", "desc")], &v, false).is_err()
        );
        assert!(ListQuery::parse([("bom", "true")], &v, true).unwrap().bom);
        assert!(ListQuery::parse([("limit", "5")], &v, true).is_err());
        assert!(ListQuery::parse([("department", "x")], &search(&["department"]), false).is_ok());
    }
}
