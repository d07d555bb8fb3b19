//! The paged list, without loading a workspace's requests into memory. Every list is a
//! walk over index partitions (see `koppel_shared::store`): one per (archived, state) the
//! filters allow, read page by page with only keys and the sort value projected, and
//! merged in sort order. The walk counts every match (`total` is exact) and keeps only the
//! keys of the requested page, which are then fetched in full. Filters that are not part
//! of a key (`q`, `purposes[]`, `tags[]`, `ids[]`, `areaId`) run in DynamoDB as filter
//! expressions, so non-matching items never reach the function.
//!
//! | sort / filter | how |
//! |---|---|
//! | `id`, `dateCreation` (ids follow receipt times: `records::next_id`) | gsi3 partitions merged by id |
//! | `expiryTime` | gsi2 partitions merged by deadline |
//! | `state` | gsi3 partitions, one state after the other, by id within a state |
//! | `states[]`, `archived` | only the matching partitions are read |
//! | `overtaking` | the partitions of states other than `Closed`; with `expiryTime` sort a key condition `gsi2sk < now`, otherwise a filter |
//! | `title`, `dateUpdate` | the same walk, keeping the best `page × size` (key, sort value) pairs |

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use aws_sdk_dynamodb::types::AttributeValue;
use koppel_shared::store::{Expr, Item, Query, Store, StoreError, from_item};

use crate::list_query::{ListQuery, SortBy};
use crate::model::State;
use crate::records::{Stored, partition};

/// A filter expression with its names and values.
#[derive(Debug, Default)]
struct Filter {
    clauses: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Filter {
    fn name(&mut self, attr: &str) -> String {
        let n = format!("#{attr}");
        self.names.insert(n.clone(), attr.to_owned());
        n
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let n = format!(":f{}", self.values.len());
        self.values.insert(n.clone(), v);
        n
    }

    /// `(contains(attr, v1) OR …)`; nothing when there are no values (DynamoDB refuses
    /// names and values an expression does not use).
    fn any_contains(&mut self, attr: &str, values: impl IntoIterator<Item = String>) {
        let values: Vec<String> = values.into_iter().collect();
        if values.is_empty() {
            return;
        }
        let name = self.name(attr);
        let parts: Vec<String> = values
            .into_iter()
            .map(|v| {
                let p = self.value(AttributeValue::S(v));
                format!("contains({name}, {p})")
            })
            .collect();
        self.clauses.push(format!("({})", parts.join(" OR ")));
    }

    fn of(q: &ListQuery, overdue_filter: Option<&str>) -> Self {
        let mut f = Self::default();
        if let Some(text) = &q.q {
            f.any_contains("search", [text.clone()]);
        }
        f.any_contains("purposes", q.purposes.iter().map(|p| p.as_str().to_owned()));
        f.any_contains(
            "tag_keys",
            q.tags
                .iter()
                .flat_map(|t| [format!("id:{t}"), format!("label:{t}")]),
        );
        if !q.ids.is_empty() {
            let name = f.name("dsr_id");
            let list: Vec<String> = q
                .ids
                .iter()
                .map(|i| f.value(AttributeValue::N(i.to_string())))
                .collect();
            f.clauses.push(format!("{name} IN ({})", list.join(", ")));
        }
        if let Some(a) = q.area_id {
            let name = f.name("area_id");
            let v = f.value(AttributeValue::N(a.to_string()));
            f.clauses.push(format!("{name} = {v}"));
        }
        if let Some(now) = overdue_filter {
            let name = f.name("expiry_time");
            let v = f.value(AttributeValue::S(now.to_owned()));
            f.clauses.push(format!("{name} < {v}"));
        }
        f
    }
}

/// One index partition, read lazily page by page in sort order.
struct Partition {
    index: &'static str,
    pk: String,
    /// Only sort keys below this (the `overtaking` key condition).
    below: Option<String>,
    buffer: VecDeque<(String, Item)>,
    start: Option<Item>,
    done: bool,
}

struct Walk<'a> {
    store: &'a Store,
    forward: bool,
    filter: &'a Filter,
    /// Attributes projected besides the keys.
    extra: &'static [&'static str],
}

impl Walk<'_> {
    fn pk_attr(index: &str) -> String {
        format!("{index}pk")
    }
    fn sk_attr(index: &str) -> String {
        format!("{index}sk")
    }

    async fn fill(&self, p: &mut Partition) -> Result<(), StoreError> {
        while p.buffer.is_empty() && !p.done {
            let (pk_attr, sk_attr) = (Self::pk_attr(p.index), Self::sk_attr(p.index));
            let mut condition = "#ipk = :ipk".to_owned();
            let mut names = self.filter.names.clone();
            names.insert("#ipk".into(), pk_attr);
            names.insert("#isk".into(), sk_attr.clone());
            let mut values = self.filter.values.clone();
            values.insert(":ipk".into(), AttributeValue::S(p.pk.clone()));
            if let Some(b) = &p.below {
                condition.push_str(" AND #isk < :ibelow");
                values.insert(":ibelow".into(), AttributeValue::S(b.clone()));
            }
            let mut projection = vec!["pk".to_owned(), "sk".to_owned(), "#isk".to_owned()];
            for e in self.extra {
                let n = format!("#x_{e}");
                names.insert(n.clone(), (*e).to_owned());
                projection.push(n);
            }
            let mut q = Query::new(Expr::with(condition, names, values))
                .index(p.index)
                .projection(projection.join(", "))
                .forward(self.forward)
                .after(p.start.take());
            if !self.filter.clauses.is_empty() {
                q = q.filter(Expr::new(self.filter.clauses.join(" AND ")));
            }
            let out = self.store.query(&q).await?;
            for item in out.items {
                let sort = item
                    .get(&sk_attr)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                p.buffer.push_back((sort, item));
            }
            p.start = out.next;
            p.done = p.start.is_none();
        }
        Ok(())
    }

    /// The next item of `parts` merged in sort order.
    async fn next(&self, parts: &mut [Partition]) -> Result<Option<Item>, StoreError> {
        // Each partition's next page at once: a list over six partitions starts with one
        // round trip, not six.
        futures_util::future::try_join_all(parts.iter_mut().map(|p| self.fill(p))).await?;
        let best = parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.buffer.front().map(|(s, _)| (i, s)))
            .reduce(|a, b| {
                let better = if self.forward { b.1 < a.1 } else { b.1 > a.1 };
                if better { b } else { a }
            })
            .map(|(i, _)| i);
        Ok(best.and_then(|i| parts[i].buffer.pop_front().map(|(_, item)| item)))
    }
}

/// The keys of one page, in order, and how many requests match in all.
#[derive(Debug, Default)]
pub struct PageKeys {
    pub total: usize,
    pub keys: Vec<Item>,
}

fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| *k == "pk" || *k == "sk")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A (sort value, id) pair for the sorts no index holds, ordered so that the heap keeps
/// the best `n` seen.
struct Ranked {
    value: String,
    id: String,
    forward: bool,
    key: Item,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        let o = (&self.value, &self.id).cmp(&(&other.value, &other.id));
        if self.forward { o } else { o.reverse() }
    }
}
impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Walks the index partitions `q` needs and returns the page's keys and the total.
pub async fn page_keys(
    store: &Store,
    ws: &str,
    q: &ListQuery,
    now: &str,
) -> Result<PageKeys, StoreError> {
    let mut states: Vec<State> = if q.states.is_empty() {
        State::ALL.to_vec()
    } else {
        q.states.iter().copied().collect()
    };
    if q.overtaking {
        states.retain(|s| *s != State::Closed);
    }
    let shelves: Vec<bool> = q.archived.map_or(vec![false, true], |a| vec![a]);
    let by_expiry = q.sort_by == SortBy::ExpiryTime;
    let index = if by_expiry { "gsi2" } else { "gsi3" };
    let below = (q.overtaking && by_expiry).then(|| now.to_owned());
    let filter = Filter::of(q, (q.overtaking && !by_expiry).then_some(now));
    let partitions = |states: &[State]| -> Vec<Partition> {
        states
            .iter()
            .flat_map(|st| shelves.iter().map(move |a| (*st, *a)))
            .map(|(st, a)| Partition {
                index,
                pk: partition(ws, a, st),
                below: below.clone(),
                buffer: VecDeque::new(),
                start: None,
                done: false,
            })
            .collect()
    };
    // One group walked after the other; within a group, partitions merge in sort order.
    let groups: Vec<Vec<Partition>> = if q.sort_by == SortBy::State {
        let mut ordered = states.clone();
        ordered.sort();
        if !q.asc {
            ordered.reverse();
        }
        ordered.iter().map(|s| partitions(&[*s])).collect()
    } else {
        vec![partitions(&states)]
    };
    let (from, until) = (q.offset(), q.offset() + q.size as usize);
    let ranked_attr = match q.sort_by {
        SortBy::Title => Some("title_key"),
        SortBy::DateUpdate => Some("date_update"),
        _ => None,
    };
    let walk = Walk {
        store,
        forward: q.asc,
        filter: &filter,
        extra: match ranked_attr {
            Some("title_key") => &["title_key"],
            Some(_) => &["date_update"],
            None => &[],
        },
    };
    let mut out = PageKeys::default();
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::new();
    for mut group in groups {
        while let Some(item) = walk.next(&mut group).await? {
            let i = out.total;
            out.total += 1;
            match ranked_attr {
                None => {
                    if (from..until).contains(&i) {
                        out.keys.push(key_of(&item));
                    }
                }
                Some(attr) => {
                    let text = |k: &str| {
                        item.get(k)
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .unwrap_or_default()
                    };
                    heap.push(Ranked {
                        value: text(attr),
                        id: text("sk"),
                        forward: q.asc,
                        key: key_of(&item),
                    });
                    // The heap's top is the worst kept; beyond `until` it cannot be on
                    // the page or before it.
                    if heap.len() > until {
                        heap.pop();
                    }
                }
            }
        }
    }
    if ranked_attr.is_some() {
        let sorted = heap.into_sorted_vec();
        out.keys = sorted
            .into_iter()
            .skip(from)
            .take(q.size as usize)
            .map(|r| r.key)
            .collect();
    }
    Ok(out)
}

/// The full requests for `keys`, in the same order (strongly consistent).
pub async fn fetch(store: &Store, keys: &[Item]) -> Result<Vec<Stored>, StoreError> {
    let mut found: HashMap<String, Stored> = HashMap::new();
    for item in store.batch_get(keys).await? {
        let sk = item
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        found.insert(sk, from_item(item)?);
    }
    Ok(keys
        .iter()
        .filter_map(|k| k.get("sk").and_then(|v| v.as_s().ok()))
        .filter_map(|sk| found.remove(sk))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list_query::parse;

    #[test]
    fn a_filter_names_only_what_it_uses() {
        let f = Filter::of(&parse([]).unwrap(), None);
        assert!(f.clauses.is_empty() && f.names.is_empty() && f.values.is_empty());
        let q = parse([
            ("q", "Jan"),
            ("tags[]", "7"),
            ("ids", "1,2"),
            ("areaId", "3"),
        ])
        .unwrap();
        let f = Filter::of(&q, Some("2027-01-01T00:00:00.000Z"));
        assert_eq!(
            f.clauses.join(" AND "),
            "(contains(#search, :f0)) AND (contains(#tag_keys, :f1) OR contains(#tag_keys, :f2)) \
             AND #dsr_id IN (:f3, :f4) AND #area_id = :f5 AND #expiry_time < :f6"
        );
        assert_eq!(f.names.len(), 5);
        assert_eq!(f.values.len(), 7);
        assert_eq!(f.values[":f0"], AttributeValue::S("jan".into()));
    }
}
