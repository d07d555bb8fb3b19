//! The list's query parameters, as Dastra takes them: `page` (from 1), `size` (default 20,
//! at most 500: larger is refused, not clamped), `q`, `states[]`, `purposes[]`, `areaId`,
//! `archived`, `overtaking`, `tags[]`, `ids[]`, `sortBy`, `asc`. A list parameter may be
//! repeated (`states[]=Open&states[]=Closed`, with or without `[]`) or comma-separated
//! (`states=Open,Closed`). Every bad parameter is named in one 422.

use std::collections::BTreeSet;

use koppel_shared::ApiError;
use koppel_shared::body::Fields;
use strum::VariantNames;

use crate::model::{Label, State};

pub const DEFAULT_SIZE: u32 = 20;
pub const MAX_SIZE: u32 = 500;
/// Bounds on free-text and list filters: they become DynamoDB filter expressions (4 KB).
const MAX_TEXT: usize = 200;
const MAX_TERMS: usize = 20;
/// `ids[]` becomes one `IN (…)` condition, which DynamoDB caps at 100 values.
pub const MAX_IDS: usize = 100;

/// `sortBy`, named as Dastra's fields (any casing on input).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, strum::EnumString, strum::VariantNames)]
#[strum(serialize_all = "camelCase", ascii_case_insensitive)]
pub enum SortBy {
    #[default]
    Id,
    DateCreation,
    DateUpdate,
    ExpiryTime,
    Title,
    State,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub page: u32,
    pub size: u32,
    /// Lower case, trimmed; `None` when empty.
    pub q: Option<String>,
    /// Empty means every state.
    pub states: BTreeSet<State>,
    pub purposes: BTreeSet<Label>,
    pub area_id: Option<i64>,
    pub archived: Option<bool>,
    /// `true`: only requests past their deadline and not closed.
    pub overtaking: bool,
    /// Tag ids (numbers) or labels (lower case).
    pub tags: BTreeSet<String>,
    pub ids: BTreeSet<i64>,
    pub sort_by: SortBy,
    pub asc: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            page: 1,
            size: DEFAULT_SIZE,
            q: None,
            states: BTreeSet::new(),
            purposes: BTreeSet::new(),
            area_id: None,
            archived: None,
            overtaking: false,
            tags: BTreeSet::new(),
            ids: BTreeSet::new(),
            sort_by: SortBy::Id,
            asc: false,
        }
    }
}

impl ListQuery {
    /// How many items come before the page.
    pub fn offset(&self) -> usize {
        (self.page as usize - 1) * self.size as usize
    }
}

/// `states[]`, `states[0]` and `states` are one parameter.
fn base_name(name: &str) -> &str {
    match name.find('[') {
        Some(i) if name.ends_with(']') => &name[..i],
        _ => name,
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Parses `(name, value)` pairs, already percent-decoded, in any order.
pub fn parse<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery::default();
    let mut errors = Fields::new();
    for (name, value) in pairs {
        let name = base_name(name);
        let values = || value.split(',').map(str::trim).filter(|v| !v.is_empty());
        match name {
            "page" => match value.parse::<u32>() {
                Ok(n) if n >= 1 => q.page = n,
                _ => errors.push("page", "must be a whole number from 1"),
            },
            "size" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_SIZE).contains(&n) => q.size = n,
                _ => errors.push(
                    "size",
                    format!("must be a whole number from 1 to {MAX_SIZE}"),
                ),
            },
            "q" => {
                let t = value.trim().to_lowercase();
                // Bounded: it becomes part of a filter expression, which DynamoDB caps.
                if t.chars().count() > MAX_TEXT {
                    errors.push("q", format!("must be at most {MAX_TEXT} characters"));
                }
                q.q = (!t.is_empty()).then_some(t);
            }
            "states" => {
                for v in values() {
                    match State::parse(v) {
                        Ok(s) => {
                            q.states.insert(s);
                        }
                        Err(e) => errors.push("states", e),
                    }
                }
            }
            "purposes" => {
                for v in values() {
                    match Label::parse(v) {
                        Ok(l) => {
                            q.purposes.insert(l);
                        }
                        Err(e) => errors.push("purposes", e),
                    }
                }
                if q.purposes.len() > MAX_TERMS {
                    errors.push("purposes", format!("at most {MAX_TERMS} purposes"));
                }
            }
            "tags" => {
                for v in values() {
                    if v.chars().count() > MAX_TEXT {
                        errors.push(
                            "tags",
                            format!("each must be at most {MAX_TEXT} characters"),
                        );
                    }
                    q.tags.insert(v.to_lowercase());
                }
                if q.tags.len() > MAX_TERMS {
                    errors.push("tags", format!("at most {MAX_TERMS} tags"));
                }
            }
            "ids" => {
                for v in values() {
                    match v.parse::<i64>() {
                        Ok(n) => {
                            q.ids.insert(n);
                        }
                        Err(_) => errors.push("ids", format!("`{v}` is not a request id")),
                    }
                }
            }
            "areaId" => match value.parse::<i64>() {
                Ok(n) => q.area_id = Some(n),
                Err(_) => errors.push("areaId", "must be a whole number"),
            },
            "archived" => match parse_bool(value) {
                Some(b) => q.archived = Some(b),
                None => errors.push("archived", "must be true or false"),
            },
            "overtaking" => match parse_bool(value) {
                Some(b) => q.overtaking = b,
                None => errors.push("overtaking", "must be true or false"),
            },
            "asc" => match parse_bool(value) {
                Some(b) => q.asc = b,
                None => errors.push("asc", "must be true or false"),
            },
            "sortBy" => match value.parse() {
                Ok(s) => q.sort_by = s,
                Err(_) => errors.push(
                    "sortBy",
                    format!("must be one of {}", SortBy::VARIANTS.join(", ")),
                ),
            },
            // Other parameters are ignored, as Dastra's clients expect.
            _ => {}
        }
    }
    if q.ids.len() > MAX_IDS {
        errors.push("ids", format!("at most {MAX_IDS} ids"));
    }
    errors.finish()?;
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        parse(pairs.iter().copied())
    }

    #[test]
    fn defaults() {
        let q = p(&[]).unwrap();
        assert_eq!(
            (q.page, q.size, q.sort_by, q.asc),
            (1, 20, SortBy::Id, false)
        );
        assert_eq!(q.offset(), 0);
    }

    #[test]
    fn repeated_bracketed_and_comma_separated_lists() {
        let a = p(&[("states[]", "Open"), ("states[]", "Closed")]).unwrap();
        let b = p(&[("states", "Open,Closed")]).unwrap();
        let c = p(&[("states", "open"), ("states[0]", "CLOSED")]).unwrap();
        let want: BTreeSet<_> = [State::Open, State::Closed].into();
        assert_eq!(a.states, want);
        assert_eq!(b.states, want);
        assert_eq!(c.states, want);
        let q = p(&[
            ("purposes[]", "Onbekend"),
            ("purposes", "access,Erasure"),
            ("ids", "3,1"),
            ("ids[]", "2"),
        ])
        .unwrap();
        assert_eq!(
            q.purposes.iter().map(Label::as_str).collect::<Vec<_>>(),
            ["Access", "Erasure", "Unknown"]
        );
        assert_eq!(q.ids, [1, 2, 3].into());
    }

    #[test]
    fn every_parameter() {
        let q = p(&[
            ("page", "3"),
            ("size", "500"),
            ("q", "  Jansen "),
            ("areaId", "12"),
            ("archived", "false"),
            ("overtaking", "true"),
            ("tags[]", "VIP"),
            ("sortBy", "expirytime"),
            ("asc", "true"),
            ("unknown", "ignored"),
        ])
        .unwrap();
        assert_eq!((q.page, q.size), (3, 500));
        assert_eq!(q.offset(), 1000);
        assert_eq!(q.q.as_deref(), Some("jansen"));
        assert_eq!(q.area_id, Some(12));
        assert_eq!(q.archived, Some(false));
        assert!(q.overtaking);
        assert_eq!(q.tags, ["vip".to_owned()].into());
        assert_eq!(q.sort_by, SortBy::ExpiryTime);
        assert!(q.asc);
    }

    #[test]
    fn bad_parameters_are_one_422_naming_each() {
        let e = p(&[
            ("size", "501"),
            ("page", "0"),
            ("states", "Open,Done"),
            ("sortBy", "colour"),
            ("archived", "maybe"),
            ("ids", "x"),
        ])
        .unwrap_err();
        assert_eq!(e.status, 422);
        let fields: Vec<_> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["size", "page", "states", "sortBy", "archived", "ids"]
        );
        assert_eq!(
            e.errors[3].message,
            "must be one of id, dateCreation, dateUpdate, expiryTime, title, state"
        );
        assert_eq!(p(&[("size", "0")]).unwrap_err().errors[0].field, "size");
        let many: String = (1..=101)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(p(&[("ids", &many)]).unwrap_err().errors[0].field, "ids");
        assert_eq!(p(&[("ids", "1,2,3")]).unwrap().ids.len(), 3);
    }
}
