//! How a data-subject request is stored: the Dastra document as JSON in `doc`, beside the
//! attributes the list's indexes and filters read. Keys and indexes are described in
//! `koppel_shared::store`; this file builds them.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use koppel_shared::ApiError;
use koppel_shared::retry::{Retry, Schedule};
use koppel_shared::store::{
    Expr, Item, Key, ReturnValue, StoreError, Update, item, number, put_new, versioned_put,
};
use serde::{Deserialize, Serialize};

use jiff::Timestamp;

use crate::model::{Dsr, Instant, State};

/// DynamoDB items are at most 400 KB; the document must leave room for the rest.
pub const MAX_DOC_BYTES: usize = 300 * 1024;

/// Index partition of a request: workspace, archived or not, state.
pub fn partition(ws: &str, archived: bool, state: State) -> String {
    let shelf = if archived { "ARCHIVED" } else { "LIVE" };
    format!("WS#{ws}#DSR#{shelf}#{state}")
}

pub fn padded(id: i64) -> String {
    format!("{id:010}")
}

/// The stored form. Attribute names are the ones `listing` queries and filters on.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stored {
    pub workspace_id: String,
    pub dsr_id: i64,
    /// Bumped by every write; a write succeeds only on the version it read.
    pub version: u64,
    pub state: String,
    pub archived: bool,
    pub expiry_time: String,
    pub date_update: String,
    /// Lower-case title, for sorting by title.
    pub title_key: String,
    /// Lower-case title, names, e-mail and description, for `q`.
    pub search: String,
    pub purposes: Vec<String>,
    /// `id:<tag id>` and `label:<lower-case label>` per tag, for `tags[]`.
    pub tag_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_id: Option<i64>,
    pub doc: String,
}

impl Stored {
    pub fn of(ws: &str, d: &Dsr, version: u64) -> Result<Self, ApiError> {
        let doc = serde_json::to_string(d).map_err(ApiError::internal)?;
        let lower = |s: &Option<String>| s.as_deref().unwrap_or_default().to_lowercase();
        let search = [
            &d.title,
            &d.given_name,
            &d.family_name,
            &d.email,
            &d.description,
        ]
        .into_iter()
        .map(lower)
        .collect::<Vec<_>>()
        .join("\n");
        let tag_keys = d
            .tags
            .iter()
            .flatten()
            .flat_map(|t| {
                let id = t.id.map(|i| format!("id:{i}"));
                let label = t
                    .label
                    .as_ref()
                    .map(|l| format!("label:{}", l.to_lowercase()));
                id.into_iter().chain(label)
            })
            .collect::<Vec<String>>();
        // The whole item counts against DynamoDB's 400 KB, and the search copy of the text
        // fields repeats them: bound what is stored, not only the document.
        let stored = doc.len() + search.len() + tag_keys.iter().map(String::len).sum::<usize>();
        if stored > MAX_DOC_BYTES {
            return Err(ApiError::payload_too_large(MAX_DOC_BYTES));
        }
        Ok(Self {
            workspace_id: ws.to_owned(),
            dsr_id: d.id,
            version,
            state: d.state.as_str().to_owned(),
            archived: d.archived,
            expiry_time: d.expiry_time.map(|e| e.format()).unwrap_or_default(),
            date_update: d.date_update.map(|e| e.format()).unwrap_or_default(),
            title_key: lower(&d.title),
            search,
            purposes: d.purposes.iter().map(|p| p.as_str().to_owned()).collect(),
            tag_keys,
            area_id: d.area_id,
            doc,
        })
    }

    pub fn dsr(&self) -> Result<Dsr, StoreError> {
        serde_json::from_str(&self.doc).map_err(|e| StoreError::Shape(e.to_string()))
    }

    /// The full item: keys, index keys and attributes.
    pub fn to_item(&self) -> Result<Item, StoreError> {
        let state = State::parse(&self.state).map_err(StoreError::Shape)?;
        let part = partition(&self.workspace_id, self.archived, state);
        let id = padded(self.dsr_id);
        let mut i = item(&Key::dsr(&self.workspace_id, self.dsr_id), self)?;
        let s = |v: String| AttributeValue::S(v);
        i.insert("gsi2pk".into(), s(part.clone()));
        i.insert("gsi2sk".into(), s(format!("{}#{id}", self.expiry_time)));
        i.insert("gsi3pk".into(), s(part));
        i.insert("gsi3sk".into(), s(id));
        Ok(i)
    }
}

/// The next id of a workspace's requests and the time it was received, taken together in
/// one conditional counter update: concurrent creates never share an id, and ids follow
/// receipt times, so `sortBy=dateCreation` is the id order. Creates reach the counter in
/// any order and Lambdas' clocks differ a little, so a time read before or after taking
/// an id would not follow the ids; the counter keeps the last time it handed out, and a
/// create whose clock is behind it takes that time instead (see [`receipt`]). An id taken
/// by a create that then fails is not reused.
pub async fn next_id(
    store: &koppel_shared::store::Store,
    ws: &str,
    now: Timestamp,
) -> Result<(i64, Instant), StoreError> {
    let mut at = Instant(now).format();
    let mut retry = Retry::new(&COUNTER_MOVED);
    loop {
        let take = Update::new(
            Key::dsr_counter(ws),
            Expr::new("ADD last_id :one SET last_at = :at")
                .n(":one", 1)
                .s(":at", at.clone()),
        )
        .when(Expr::new("attribute_not_exists(last_at) OR last_at <= :at"))
        .returning(ReturnValue::UpdatedNew);
        if let Some(out) = store.update_if(take).await? {
            let id = number(&out, "last_id")
                .ok_or_else(|| StoreError::Shape("counter update returned no last_id".into()))?;
            let at = Instant::parse(&at)
                .ok_or_else(|| StoreError::Shape(format!("receipt time {at}")))?;
            return Ok((id, at));
        }
        // Another create moved the counter on meanwhile: take its time if it is later.
        #[derive(Deserialize)]
        struct Counter {
            last_at: Option<String>,
        }
        let last = store
            .get::<Counter>(&Key::dsr_counter(ws))
            .await?
            .and_then(|c| c.last_at);
        at = receipt(&at, last.as_deref());
        if !retry.wait().await {
            return Err(StoreError::Conflict(
                "the request counter kept moving; retry".into(),
            ));
        }
    }
}

/// Ten tries at once: a lost race on the counter is another create's, over in a moment.
const COUNTER_MOVED: Schedule = Schedule::new(&[std::time::Duration::ZERO; 9]);

/// The receipt time of the next id: the clock's time `now`, or the last time the counter
/// handed out when that is later. Both are [`Instant::format`] text, whose order is the
/// time order.
pub fn receipt(now: &str, last: Option<&str>) -> String {
    match last {
        Some(l) if l > now => l.to_owned(),
        _ => now.to_owned(),
    }
}

/// A request and its version, read strongly consistently.
pub async fn get(
    store: &koppel_shared::store::Store,
    ws: &str,
    id: i64,
) -> Result<Option<Stored>, StoreError> {
    store.get(&Key::dsr(ws, id)).await
}

/// The transaction step that creates a request.
pub fn create_step(table: &str, s: &Stored) -> Result<TransactWriteItem, StoreError> {
    Ok(put_new(table, s.to_item()?))
}

/// The transaction step that replaces a request read at `expected_version`.
pub fn replace_step(
    table: &str,
    s: &Stored,
    expected_version: u64,
) -> Result<TransactWriteItem, StoreError> {
    Ok(versioned_put(table, s.to_item()?, Some(expected_version)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Tag};

    #[test]
    fn item_carries_keys_indexes_and_filter_attributes() {
        let d = Dsr {
            id: 42,
            title: Some("Inzage Jansen".into()),
            email: Some("J@Example.org".into()),
            state: State::InProgress,
            archived: true,
            purposes: vec![Label::new("Access")],
            tags: Some(vec![Tag {
                id: Some(7),
                label: Some("VIP".into()),
                ..Tag::default()
            }]),
            expiry_time: Some(Instant("2027-02-28T10:00:00Z".parse().unwrap())),
            ..Dsr::default()
        };
        let s = Stored::of("ws_1", &d, 3).unwrap();
        let i = s.to_item().unwrap();
        let text = |k: &str| i[k].as_s().unwrap().clone();
        assert_eq!(text("pk"), "WS#ws_1");
        assert_eq!(text("sk"), "DSR#0000000042");
        assert_eq!(text("gsi2pk"), "WS#ws_1#DSR#ARCHIVED#InProgress");
        assert_eq!(text("gsi2sk"), "2027-02-28T10:00:00.000Z#0000000042");
        assert_eq!(text("gsi3sk"), "0000000042");
        assert!(text("search").contains("inzage jansen\n\n\nj@example.org"));
        assert_eq!(s.tag_keys, ["id:7", "label:vip"]);
        assert!(!i.contains_key("area_id"));
        let back: Stored = serde_dynamo::from_item(i).unwrap();
        assert_eq!(back.dsr().unwrap(), d);
    }

    #[test]
    fn a_receipt_time_is_never_before_the_last_one_handed_out() {
        let now = "2027-01-01T10:00:00.005Z";
        assert_eq!(receipt(now, None), now);
        assert_eq!(receipt(now, Some("2027-01-01T10:00:00.004Z")), now);
        assert_eq!(receipt(now, Some(now)), now);
        // Another Lambda's clock is 7 ms ahead: this id is received at its time.
        assert_eq!(
            receipt(now, Some("2027-01-01T10:00:00.012Z")),
            "2027-01-01T10:00:00.012Z"
        );
        // Fixed-width text orders as time does, across every field.
        assert_eq!(
            receipt("2027-01-01T10:00:00.005Z", Some("2026-12-31T23:59:59.999Z")),
            "2027-01-01T10:00:00.005Z"
        );
    }

    #[test]
    fn a_create_needs_a_free_key_and_a_replace_the_version_it_read() {
        let d = Dsr {
            id: 1,
            purposes: vec![Label::new("Access")],
            ..Dsr::default()
        };
        let create = create_step("t", &Stored::of("w", &d, 1).unwrap()).unwrap();
        assert_eq!(
            create.put().unwrap().condition_expression(),
            Some("attribute_not_exists(pk)")
        );
        let replace = replace_step("t", &Stored::of("w", &d, 5).unwrap(), 4).unwrap();
        let put = replace.put().unwrap();
        assert_eq!(put.condition_expression(), Some("version = :v"));
        assert_eq!(
            put.expression_attribute_values().unwrap()[":v"],
            AttributeValue::N("4".into())
        );
        assert_eq!(put.item()["version"], AttributeValue::N("5".into()));
    }
}
