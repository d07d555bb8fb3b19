//! The query parameters of the list and the CSV export: the caller's own filters on top of
//! the saved search, the order, the page size and the opaque cursor; and those of a case's
//! history.
//!
//! `limit` and `cursor` are read by the shared pager (`koppel_shared::paging`), as on every
//! list: a bad one is a 422 naming it, and a cursor is bound to the list it came from (the
//! workspace, the caller's view, the order and the filters). Other bad parameters are a 400.

use koppel_shared::ApiError;
use koppel_shared::body::Fields;
use koppel_shared::cases::{Case, Status, View};
use koppel_shared::error::FieldError;
use koppel_shared::paging::{self, Limits, Pager};
use serde::{Deserialize, Serialize};
use strum::VariantNames;

/// The case list's page sizes (larger than the standard lists': cases are read in bulk).
pub const LIMITS: Limits = Limits {
    default: 50,
    max: 500,
};

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
    /// What the list's cursors are bound to (`None` for the CSV, which has none).
    pub cursor_scope: Option<paging::Scope>,
}

fn bad(param: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("Query parameter `{param}` {why}."))
}

/// Every case status, for a message: `open, in_progress, suspended or closed`.
pub(crate) fn statuses() -> String {
    match Status::VARIANTS.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A history page's size: default and most.
pub const HISTORY_LIMITS: Limits = Limits {
    default: 100,
    max: 500,
};

/// `after_version` and `limit` of `GET /v1/cases/{id}/history`: a bad value is a 422
/// naming each bad one, as on the lists; an unknown parameter a 400.
pub fn history_query<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(u64, i32), ApiError> {
    let mut e = Fields::new();
    let (mut after, mut limit) = (0, HISTORY_LIMITS.default);
    for (k, v) in params {
        match k {
            "after_version" => match v.parse() {
                Ok(n) => after = n,
                Err(_) => e.push(k, "must be a whole number (a version)"),
            },
            "limit" => match v.parse() {
                Ok(n) if (1..=HISTORY_LIMITS.max).contains(&n) => limit = n,
                _ => e.push(
                    k,
                    format!("must be a whole number from 1 to {}", HISTORY_LIMITS.max),
                ),
            },
            _ => return Err(bad(k, "is not known")),
        }
    }
    e.finish()?;
    // At most HISTORY_LIMITS.max, so it fits.
    Ok((after, limit as i32))
}

impl ListQuery {
    /// Reads `params` (name, value; repeated names allowed) for a caller in workspace `ws`
    /// with `view`.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        view: &View,
        csv: bool,
        ws: &str,
    ) -> Result<Self, ApiError> {
        let mut q = ListQuery::default();
        let (mut limit, mut cursor) = (None, None);
        for (k, v) in params {
            let date = |v: &str| {
                koppel_shared::calendar::parse_date(v)
                    .map(|_| v.to_owned())
                    .ok_or_else(|| bad(k, "must be a date (YYYY-MM-DD)"))
            };
            match k {
                "status" => {
                    for s in list(v) {
                        q.status.push(
                            s.parse()
                                .map_err(|_| bad(k, &format!("takes {}", statuses())))?,
                        );
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
                "limit" if !csv => limit = Some(v),
                "cursor" if !csv => cursor = Some(v),
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
        if csv {
            return Ok(q);
        }
        let scope = q.scope(ws, view);
        let pager = Pager::parse(limit, cursor, LIMITS, scope.clone())?;
        q.limit = pager.limit;
        // A position is a case id this list sealed: anything else cannot pass the check.
        q.after = match pager.after {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| {
                ApiError::unprocessable(vec![FieldError {
                    field: "cursor".into(),
                    message: "must be the `next_cursor` of an earlier page of this same list"
                        .into(),
                }])
            })?),
        };
        q.cursor_scope = Some(scope);
        Ok(q)
    }

    /// The list a cursor belongs to: the workspace, who sees it how, the order and every
    /// filter (a cursor of another order or other filters would start in the wrong place).
    fn scope(&self, ws: &str, view: &View) -> paging::Scope {
        let joined = |v: &[String]| v.join(",");
        let statuses: Vec<String> = self.status.iter().map(|s| s.as_str().to_owned()).collect();
        let seen_by = match view {
            View::All => "all".to_owned(),
            View::Search(s) => format!("search:{}", s.saved_search_id),
            View::Nothing => "nothing".to_owned(),
        };
        paging::Scope::new("cases", ws)
            .with("view", Some(&seen_by))
            .with(
                "order",
                Some(if self.order == Order::Asc {
                    "asc"
                } else {
                    "desc"
                }),
            )
            .with("status", Some(&joined(&statuses)))
            .with("case_type", Some(&joined(&self.case_type)))
            .with("department", Some(&joined(&self.department)))
            .with("assignee", Some(&joined(&self.assignee)))
            .with("registered_from", self.registered_from.as_deref())
            .with("registered_to", self.registered_to.as_deref())
            .with("updated_since", self.updated_since.as_deref())
    }

    /// The cursor that continues this list after case `id`.
    pub fn next_cursor(&self, id: u64) -> String {
        match &self.cursor_scope {
            Some(scope) => paging::seal(scope, &id.to_string()),
            None => String::new(),
        }
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
    use crate::fixtures::search;
    use serde_json::json;

    fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        view: &View,
    ) -> Result<ListQuery, ApiError> {
        ListQuery::parse(params, view, false, "ws_1")
    }

    fn fields(e: ApiError) -> Vec<String> {
        assert_eq!(e.status, 422, "{}", e.detail);
        e.errors.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn parses_and_round_trips_the_cursor() {
        let first = parse([("status", "open,closed"), ("order", "desc")], &View::All).unwrap();
        let c = first.next_cursor(42);
        let q = parse(
            [
                ("status", "open,closed"),
                ("order", "desc"),
                ("cursor", c.as_str()),
                ("limit", "10"),
            ],
            &View::All,
        )
        .unwrap();
        assert_eq!(q.status, [Status::Open, Status::Closed]);
        assert_eq!((q.after, q.order, q.limit), (Some(42), Order::Desc, 10));
        assert_eq!(parse([], &View::All).unwrap().limit, 50);
        assert_eq!(parse([("limit", "500")], &View::All).unwrap().limit, 500);
    }

    #[test]
    fn a_bad_limit_or_cursor_is_a_422_naming_it() {
        let v = search(json!({}), &["subject"]);
        for l in ["0", "501", "-1", "ten", "", "1.5"] {
            assert_eq!(
                fields(parse([("limit", l)], &v).unwrap_err()),
                ["limit"],
                "{l}"
            );
        }
        let asc = parse([], &v).unwrap().next_cursor(7);
        let other_ws = ListQuery::parse([], &v, false, "ws_2")
            .unwrap()
            .next_cursor(7);
        let other_view = parse([], &View::All).unwrap().next_cursor(7);
        let filtered = parse([("status", "open")], &v).unwrap().next_cursor(7);
        for c in [
            "garbage",
            "",
            "eyJhIjo3LCJvIjoiYXNjIn0",
            other_ws.as_str(),
            other_view.as_str(),
            filtered.as_str(),
        ] {
            assert_eq!(
                fields(parse([("cursor", c)], &v).unwrap_err()),
                ["cursor"],
                "{c}"
            );
        }
        // Another order is another list.
        let e = parse([("cursor", asc.as_str()), ("order", "desc")], &v).unwrap_err();
        assert_eq!(fields(e), ["cursor"]);
        let e = parse([("limit", "0"), ("cursor", "junk")], &v).unwrap_err();
        assert_eq!(fields(e), ["limit", "cursor"]);
        assert_eq!(
            parse([("cursor", asc.as_str())], &v).unwrap().after,
            Some(7)
        );
    }

    #[test]
    fn refuses_bad_and_hidden_parameters() {
        let v = search(json!({}), &["subject"]);
        for p in [
            ("department", "x"),
            ("status", "gone"),
            ("colour", "red"),
            ("bom", "true"),
            ("registered_from", "2026-13-01"),
        ] {
            let e = parse([p], &v).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.detail.contains(p.0), "{p:?}: {}", e.detail);
        }
        let csv = |p| ListQuery::parse(p, &v, true, "ws_1");
        assert!(csv([("bom", "true")]).unwrap().bom);
        assert!(csv([("limit", "5")]).is_err());
        assert!(csv([("cursor", "x")]).is_err());
        assert!(parse([("department", "x")], &search(json!({}), &["department"])).is_ok());
        assert_eq!(
            parse([("status", "open,gone")], &v).unwrap_err().detail,
            "Query parameter `status` takes open, in_progress, suspended or closed."
        );
    }

    #[test]
    fn history_parameters() {
        assert_eq!(history_query([]).unwrap(), (0, 100));
        assert_eq!(
            history_query([("after_version", "3"), ("limit", "500")]).unwrap(),
            (3, 500)
        );
        let e = history_query([("after_version", "x"), ("limit", "501")]).unwrap_err();
        assert_eq!(fields(e), ["after_version", "limit"]);
        assert_eq!(history_query([("colour", "red")]).unwrap_err().status, 400);
    }
}
