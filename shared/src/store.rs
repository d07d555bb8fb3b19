//! The single DynamoDB table. Items are (de)serialised with `serde_dynamo`; the keys are
//! added here, so models stay plain data.
//!
//! # Key design and access patterns
//!
//! | item | pk | sk | gsi1pk / gsi1sk | ttl | read by |
//! |---|---|---|---|---|---|
//! | workspace | `WS#<ws>` | `WORKSPACE` | | | admin |
//! | user | `WS#<ws>` | `USER#<user>` | | | authorizer (get), list users (query `USER#` prefix) |
//! | e-mail claim | `WS#<ws>` | `EMAIL#<lower-case e-mail>` | | | unique e-mail per workspace; OTP lookup |
//! | connector | `WS#<ws>` | `CONNECTOR#<con>` | | | authorizer (get), list (query `CONNECTOR#` prefix) |
//! | webhook subscription | `WS#<ws>` | `SUB#<con>#<sub>` | | | connectors function (get; a connector's list: query `SUB#<con>#` prefix); dispatcher fan-out (query `SUB#` prefix); `koppel-admin data-key reseal` (scan, filtered on both prefixes) |
//! | credential | `CRED#<id>` | `CRED` | `WS#<ws>#HOLDER#<user or con>` / `<created_at>#<id>` | | authorizer (get by the id inside the secret); list a holder's credentials |
//! | audit entry | `WS#<ws>` | `AUDIT#<at>#<id>` | | | audit trail, newest first (query `AUDIT#` prefix, backwards) |
//! | JWT issuer claim | `ISSUER#<iss>` | `ISSUER` | | | authorizer: JWT `iss` → connector; unique issuer |
//! | used JWT id | `JTI#<con>#<jti>` | `JTI` | | token `exp` | single-use `jti` (conditional put) |
//! | rate window | `RATE#<credential>#<window start>` | `RATE` | | window end + 60 s | one conditional update per request |
//! | idempotency record | `IDEM#<credential>#<key>` | `IDEM` | | 60 s while running, 24 h when done | replay of a POST |
//! | webhook delivery (with its attempts) | `DLV#<sub>` | `DLV#<event>` | | created + 30 days | dispatcher (get, owner-conditional put); a subscription's deliveries, newest first (query `DLV#` prefix, backwards; event ids are time-ordered) |
//! | subscription health | `DLV#<sub>` | `HEALTH` | | | `failing_since` of a subscription failing without a success (disable after a while) |
//! | outbox event | `OUTBOX#<event>` | `OUTBOX` | `OUTBOX` / `<occurred_at>#<event>` | | outbox sweep: leftovers older than the minimum age, oldest first (query gsi1 `OUTBOX`, `gsi1sk <` cutoff, paged, bounded per run) |
//! | data-subject request | `WS#<ws>` | `DSR#<id, 10 digits>` | | | get by id (`dsr`); gsi2 and gsi3 below |
//! | DSR id counter | `WS#<ws>` | `DSR_COUNTER` | | | next id: one atomic `ADD last_id :1` |
//! | saved search | `WS#<ws>` | `SEARCH#<id>` | | | cases function (get; list: query `SEARCH#` prefix); connectors (reference check) |
//! | case | `WS#<ws>#CASES` | `CASE#<id, 10 digits>` | | | get by id; list and CSV export: query the partition in id order, forwards or backwards, from a cursor |
//! | case history entry | `WS#<ws>#CASE#<id, 10 digits>` | `V#<version, 10 digits>` | | | a case's history, in version order |
//! | case id counter | `WS#<ws>` | `CASE_COUNTER` | | | next id(s): one atomic `ADD last_id :n` |
//!
//! Data-subject requests are also in two more indexes, partitioned by workspace, archived
//! flag and state, so that the list's common filters and sorts are index queries (see
//! `functions/dsr/src/listing.rs`). `<part>` is `WS#<ws>#DSR#<LIVE or ARCHIVED>#<state>`;
//! a list without a state or archived filter merges the 8 partitions in sort order.
//!
//! | index | pk | sk | read by |
//! |---|---|---|---|
//! | gsi2 | `gsi2pk` = `<part>` | `gsi2sk` = `<expiryTime>#<id, 10 digits>` | sort by `expiryTime`; `overtaking` (not closed, sk < now) |
//! | gsi3 | `gsi3pk` = `<part>` | `gsi3sk` = `<id, 10 digits>` | sort by `id` / `dateCreation` / `state`; filters `states[]`, `archived` |
//!
//! Uniqueness and concurrency come from condition expressions and transactions. TTL
//! deletes late (the local emulator never does), so every read of an expiring item checks
//! its expiry itself.
//!
//! # Access
//!
//! Every DynamoDB call goes through [`Store`]: typed primitives (`put_if`, `update_if`,
//! `delete_if`, [`Store::transact`] with the step builders below, queries, batches) take a
//! [`Key`] or an [`Item`] and a condition ([`Expr`]); a failed condition is `false` / `None`
//! (or [`StoreError::Conflict`] where the caller needs an error). Conditions and stored
//! formats are the callers'; this module only carries them to DynamoDB.
//!
//! # Consistency
//!
//! Strongly consistent, because a decision is made on what is read:
//! - [`Store::get`]: a revoked credential counts on the next request; a version read for
//!   `If-Match` or for a conditional write is the current one; counters, single-use codes
//!   and leases are judged on their latest state.
//! - [`Store::query_prefix`] and [`Store::page`]: a user, connector or subscription created
//!   a moment ago is listed, and "is this saved search still used" sees every connector.
//! - [`Store::batch_get`]: a data-subject request list shows each request as it is now,
//!   whatever the (eventually consistent) index that found it said.
//!
//! Eventually consistent: [`Store::get_each`], the authorizer's one batch of a credential's
//! workspace, connector and user: a disabled connector, a deactivated user or a lowered
//! right counts as soon as DynamoDB has spread the write (typically within a second; strong
//! reads would double what every request pays for them); the indexes (gsi1: a holder's credentials, the outbox sweep;
//! gsi2 / gsi3: the data-subject request list), which DynamoDB cannot read otherwise; the
//! case list, export and history queries (`functions/cases/src/repo.rs`), which decide
//! nothing; and the data-key reseal scan, whose writes are conditional on the version read.

use std::collections::HashMap;
use std::error::Error;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
pub use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    WriteRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cases::{SavedSearch, View};
use crate::model::{Connector, Credential, User, Workspace};
use crate::retry::{Retry, Schedule};

pub type Item = HashMap<String, AttributeValue>;

type BoxError = Box<dyn Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition failed: the item exists already, or changed under us.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An AWS service refused or failed the call; the SDK's error is the source.
    #[error("{service}: {}", DisplayErrorContext(&**source))]
    Sdk {
        service: &'static str,
        #[source]
        source: BoxError,
    },
    /// The service answered but left work undone (batch items it kept unprocessed, a
    /// secret without a value).
    #[error("{0}")]
    Unfinished(String),
    #[error("stored item does not match its model: {0}")]
    Shape(String),
}

impl StoreError {
    /// An AWS service's error, kept as the source.
    pub fn aws(service: &'static str, e: impl Error + Send + Sync + 'static) -> Self {
        Self::Sdk {
            service,
            source: Box::new(e),
        }
    }

    /// A failed condition: a lost race.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// A DynamoDB error: a failed condition is a `Conflict`.
    fn dynamo<E>(e: E) -> Self
    where
        E: Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let code = e.code().unwrap_or_default();
        if code == "ConditionalCheckFailedException" || code == "TransactionCanceledException" {
            return Self::Conflict(e.message().unwrap_or(code).to_owned());
        }
        Self::aws("dynamodb", e)
    }
}

impl From<StoreError> for crate::ApiError {
    fn from(e: StoreError) -> Self {
        crate::ApiError::internal(e)
    }
}

/// A DynamoDB call's result, its error in our terms (a macro: the SDK's bound for
/// `into_service_error` is not nameable outside the SDK).
macro_rules! sent {
    ($call:expr $(,)?) => {
        $call.map_err(|e| StoreError::dynamo(e.into_service_error()))
    };
}

/// A conditional call's result: `None` when the condition failed.
fn unless_conflict<O>(r: Result<O, StoreError>) -> Result<Option<O>, StoreError> {
    match r {
        Ok(o) => Ok(Some(o)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}
impl Key {
    fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    pub fn workspace(ws: &str) -> Self {
        Self::new(format!("WS#{ws}"), "WORKSPACE")
    }
    pub fn user(ws: &str, user: &str) -> Self {
        Self::new(format!("WS#{ws}"), format!("USER#{user}"))
    }
    pub fn email(ws: &str, email: &str) -> Self {
        Self::new(
            format!("WS#{ws}"),
            format!("EMAIL#{}", email.to_lowercase()),
        )
    }
    pub fn connector(ws: &str, con: &str) -> Self {
        Self::new(format!("WS#{ws}"), format!("CONNECTOR#{con}"))
    }
    pub fn subscription(ws: &str, con: &str, sub: &str) -> Self {
        Self::new(format!("WS#{ws}"), format!("SUB#{con}#{sub}"))
    }
    pub fn credential(id: &str) -> Self {
        Self::new(format!("CRED#{id}"), "CRED")
    }
    pub fn issuer(iss: &str) -> Self {
        Self::new(format!("ISSUER#{iss}"), "ISSUER")
    }
    pub fn jti(con: &str, jti: &str) -> Self {
        Self::new(format!("JTI#{con}#{jti}"), "JTI")
    }
    pub fn rate(credential: &str, window_start: i64) -> Self {
        Self::new(format!("RATE#{credential}#{window_start}"), "RATE")
    }
    pub fn idempotency(credential: &str, key: &str) -> Self {
        Self::new(format!("IDEM#{credential}#{key}"), "IDEM")
    }
    /// A webhook delivery of one event to one subscription (subscription ids are unique).
    pub fn delivery(sub: &str, event_id: &str) -> Self {
        Self::new(format!("DLV#{sub}"), format!("DLV#{event_id}"))
    }
    pub fn delivery_health(sub: &str) -> Self {
        Self::new(format!("DLV#{sub}"), "HEALTH")
    }
    pub fn outbox(event_id: &str) -> Self {
        Self::new(format!("OUTBOX#{event_id}"), "OUTBOX")
    }
    /// A data-subject request; the id is zero-padded so the sort key sorts by id.
    pub fn dsr(ws: &str, id: i64) -> Self {
        Self::new(format!("WS#{ws}"), format!("DSR#{id:010}"))
    }
    /// The counter that hands out a workspace's data-subject request ids.
    pub fn dsr_counter(ws: &str) -> Self {
        Self::new(format!("WS#{ws}"), "DSR_COUNTER")
    }

    pub fn saved_search(ws: &str, id: &str) -> Self {
        Self::new(format!("WS#{ws}"), format!("SEARCH#{id}"))
    }
    /// The partition of a workspace's cases, in id order.
    pub fn cases_partition(ws: &str) -> String {
        format!("WS#{ws}#CASES")
    }
    pub fn case(ws: &str, id: u64) -> Self {
        Self::new(Self::cases_partition(ws), format!("CASE#{id:010}"))
    }
    pub fn case_history_partition(ws: &str, id: u64) -> String {
        format!("WS#{ws}#CASE#{id:010}")
    }
    pub fn case_history(ws: &str, id: u64, version: u64) -> Self {
        Self::new(
            Self::case_history_partition(ws, id),
            format!("V#{version:010}"),
        )
    }
    pub fn case_counter(ws: &str) -> Self {
        Self::new(format!("WS#{ws}"), "CASE_COUNTER")
    }

    pub fn to_item(&self) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// The gsi1 partition of a credential's holder: a connector for connector credentials
/// (also those bound to a user through OTP), else the user of a personal token.
fn holder_key(ws: &str, cred: &Credential) -> String {
    let holder = cred
        .connector_id
        .as_deref()
        .or(cred.user_id.as_deref())
        .unwrap_or_default();
    format!("WS#{ws}#HOLDER#{holder}")
}

/// Builds a full item: the model's attributes plus its keys.
pub fn item<T: Serialize>(key: &Key, data: &T) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(data).map_err(|e| StoreError::Shape(e.to_string()))?;
    item.extend(key.to_item());
    Ok(item)
}

pub fn with_gsi1(mut item: Item, pk: String, sk: String) -> Item {
    item.insert("gsi1pk".into(), AttributeValue::S(pk));
    item.insert("gsi1sk".into(), AttributeValue::S(sk));
    item
}

pub fn with_ttl(mut item: Item, epoch_secs: i64) -> Item {
    item.insert("ttl".into(), AttributeValue::N(epoch_secs.to_string()));
    item
}

/// Reads an item into its model.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Shape(e.to_string()))
}

/// A number attribute of `item` (a counter an update returned), if it is there and parses.
pub fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// A condition, update or key expression with the `#name`s and `:value`s it uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: Item,
}

impl Expr {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// An expression whose placeholders were collected elsewhere.
    pub fn with(
        text: impl Into<String>,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
    ) -> Self {
        Self {
            text: text.into(),
            names,
            values,
        }
    }

    /// The key is free: nothing is stored under it.
    pub fn absent() -> Self {
        Self::new("attribute_not_exists(pk)")
    }

    /// Something is stored under the key.
    pub fn exists() -> Self {
        Self::new("attribute_exists(pk)")
    }

    /// The stored item is at `version` (optimistic concurrency).
    pub fn version(version: u64) -> Self {
        Self::new("version = :v").n(":v", version)
    }

    /// `placeholder` (`#…`) stands for the attribute `attribute`.
    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    /// `placeholder` (`:…`) stands for `value`.
    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// A number value.
    pub fn n(self, placeholder: &str, value: impl ToString) -> Self {
        self.value(placeholder, AttributeValue::N(value.to_string()))
    }

    /// A string value.
    pub fn s(self, placeholder: &str, value: impl Into<String>) -> Self {
        self.value(placeholder, AttributeValue::S(value.into()))
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Adds `other`'s placeholders (one request has one set for all its expressions).
    fn absorb(&mut self, other: &Expr) {
        self.names.extend(other.names.clone());
        self.values.extend(other.values.clone());
    }

    /// DynamoDB refuses empty placeholder maps: `None` when there are none.
    fn names(&self) -> Option<HashMap<String, String>> {
        non_empty(self.names.clone())
    }

    fn values(&self) -> Option<Item> {
        non_empty(self.values.clone())
    }
}

fn non_empty<K, V>(m: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

/// A transaction step that puts `item` if `condition` holds.
pub fn put_step(table: &str, item: Item, condition: Expr) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition.text())
        .set_expression_attribute_names(condition.names())
        .set_expression_attribute_values(condition.values())
        .build()
        .expect("table, item and condition are set");
    TransactWriteItem::builder().put(put).build()
}

/// A transaction step that creates `item` only if its key is free.
pub fn put_new(table: &str, item: Item) -> TransactWriteItem {
    put_step(table, item, Expr::absent())
}

/// A transaction step that puts `item` over the stored version `expected`, or, for `None`,
/// only if its key is free.
pub fn versioned_put(table: &str, item: Item, expected: Option<u64>) -> TransactWriteItem {
    match expected {
        Some(v) => put_step(table, item, Expr::version(v)),
        None => put_new(table, item),
    }
}

/// A transaction step that deletes `key`, if `condition` holds when there is one.
pub fn delete_step(table: &str, key: &Key, condition: Option<Expr>) -> TransactWriteItem {
    let c = condition.unwrap_or_default();
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key.to_item()))
        .set_condition_expression(non_empty_text(&c))
        .set_expression_attribute_names(c.names())
        .set_expression_attribute_values(c.values())
        .build()
        .expect("table and key are set");
    TransactWriteItem::builder().delete(delete).build()
}

/// A transaction step that writes nothing but fails the transaction unless `condition`
/// holds for `key`.
pub fn check_step(table: &str, key: &Key, condition: Expr) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key.to_item()))
        .condition_expression(condition.text())
        .set_expression_attribute_names(condition.names())
        .set_expression_attribute_values(condition.values())
        .build()
        .expect("table, key and condition are set");
    TransactWriteItem::builder().condition_check(check).build()
}

/// A transaction step that applies `update` (its key, expression and condition).
pub fn update_step(table: &str, update: &Update) -> TransactWriteItem {
    let (names, values) = update.placeholders();
    let u = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(update.key.to_item()))
        .update_expression(update.expr.text())
        .set_condition_expression(update.condition.as_ref().and_then(non_empty_text))
        .set_expression_attribute_names(non_empty(names))
        .set_expression_attribute_values(non_empty(values))
        .build()
        .expect("table, key and expression are set");
    TransactWriteItem::builder().update(u).build()
}

fn non_empty_text(e: &Expr) -> Option<String> {
    (!e.text.is_empty()).then(|| e.text.clone())
}

/// One UpdateItem: an update expression (`SET …`, `ADD …`) on a key, under an optional
/// condition, answering with the attributes `returns` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    key: Key,
    expr: Expr,
    condition: Option<Expr>,
    returns: ReturnValue,
}

impl Update {
    pub fn new(key: Key, expr: Expr) -> Self {
        Self {
            key,
            expr,
            condition: None,
            returns: ReturnValue::None,
        }
    }

    /// Only if `condition` holds.
    pub fn when(mut self, condition: Expr) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Which attributes the answer carries (`UpdatedNew`, `AllNew`, …).
    pub fn returning(mut self, returns: ReturnValue) -> Self {
        self.returns = returns;
        self
    }

    fn placeholders(&self) -> (HashMap<String, String>, Item) {
        let mut all = self.expr.clone();
        if let Some(c) = &self.condition {
            all.absorb(c);
        }
        (all.names, all.values)
    }
}

/// One Query or Scan request: a page of items, from `start`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    index: Option<String>,
    /// The key condition, with the placeholders of the filter too.
    key: Expr,
    filter: Option<String>,
    projection: Option<String>,
    backwards: bool,
    limit: Option<i32>,
    consistent: bool,
    start: Option<Item>,
}

impl Query {
    /// Items matching the key condition `key`, in sort-key order, eventually consistent.
    pub fn new(key: Expr) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// Items of partition `pk` whose sort key starts with `prefix`.
    pub fn prefix(pk: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self::new(
            Expr::new("pk = :pk AND begins_with(sk, :p)")
                .s(":pk", pk)
                .s(":p", prefix),
        )
    }

    pub fn index(mut self, index: &str) -> Self {
        self.index = Some(index.to_owned());
        self
    }

    /// Only items `filter` accepts come back (read all the same: `limit` counts them).
    pub fn filter(mut self, filter: Expr) -> Self {
        self.key.absorb(&filter);
        self.filter = Some(filter.text);
        self
    }

    /// Only these attributes (names in the key condition's placeholders).
    pub fn projection(mut self, attributes: impl Into<String>) -> Self {
        self.projection = Some(attributes.into());
        self
    }

    pub fn forward(mut self, forward: bool) -> Self {
        self.backwards = !forward;
        self
    }

    pub fn limit(mut self, limit: Option<i32>) -> Self {
        self.limit = limit;
        self
    }

    /// Strongly consistent (not on an index).
    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    /// After the item whose key DynamoDB gave as the previous page's end.
    pub fn after(mut self, start: Option<Item>) -> Self {
        self.start = start;
        self
    }
}

/// One page of raw items, and where the next begins (`None`: nothing more).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub items: Vec<Item>,
    pub next: Option<Item>,
}

impl Found {
    fn new(items: Option<Vec<Item>>, last: Option<Item>) -> Self {
        Self {
            items: items.unwrap_or_default(),
            next: last.filter(|k| !k.is_empty()),
        }
    }
}

/// Pauses between batch writes that DynamoDB left partly unprocessed (it throttled).
const BATCH_WRITE_RETRIES: Schedule = Schedule::new(&[
    std::time::Duration::from_millis(50),
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(400),
    std::time::Duration::from_millis(800),
    std::time::Duration::from_millis(1600),
    std::time::Duration::from_millis(3200),
    std::time::Duration::from_millis(6400),
]);

/// The most items [`Store::page`] reads for one page.
pub const PAGE_SCAN_BUDGET: usize = 1000;

/// Which list [`Store::page`] reads, and from where.
#[derive(Clone, Debug)]
pub struct PageQuery<'a> {
    pub pk: String,
    pub prefix: &'a str,
    /// The sort key after `prefix` of the item the previous page ended with.
    pub after: Option<&'a str>,
    pub limit: usize,
    pub forward: bool,
}

impl<'a> PageQuery<'a> {
    /// A workspace's items under `prefix` (users, connectors, ...), in sort-key order.
    pub fn workspace(ws: &str, prefix: &'a str, after: Option<&'a str>, limit: usize) -> Self {
        Self {
            pk: format!("WS#{ws}"),
            prefix,
            after,
            limit,
            forward: true,
        }
    }
}

/// A page of items, and the position (sort key after the prefix) to continue after.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    fn new(items: Vec<(String, T)>, next: Option<String>) -> Self {
        Self {
            items: items.into_iter().map(|(_, t)| t).collect(),
            next,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The raw SDK client, for the end-to-end tests' arrangements and inspections only
    /// (`tests/`): functions and tools use the primitives below, so that conditions, error
    /// mapping and consistency are decided here.
    #[doc(hidden)]
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Strongly consistent: a revocation or a disabled connector counts on the next request.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        let out = sent!(
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key.to_item()))
                .consistent_read(true)
                .send()
                .await,
        )?;
        out.item.map(from_item).transpose()
    }

    /// Puts `item`, whatever is stored under its key.
    pub async fn put(&self, item: Item) -> Result<(), StoreError> {
        sent!(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await,
        )?;
        Ok(())
    }

    /// Puts `item` if `condition` holds; `false` if it did not.
    pub async fn put_if(&self, item: Item, condition: Expr) -> Result<bool, StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition.text())
            .set_expression_attribute_names(condition.names())
            .set_expression_attribute_values(condition.values())
            .send()
            .await;
        Ok(unless_conflict(sent!(r))?.is_some())
    }

    /// Deletes `key`; deleting nothing is fine.
    pub async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        sent!(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key.to_item()))
                .send()
                .await,
        )?;
        Ok(())
    }

    /// Deletes `key` if `condition` holds; `false` if it did not.
    pub async fn delete_if(&self, key: &Key, condition: Expr) -> Result<bool, StoreError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .condition_expression(condition.text())
            .set_expression_attribute_names(condition.names())
            .set_expression_attribute_values(condition.values())
            .send()
            .await;
        Ok(unless_conflict(sent!(r))?.is_some())
    }

    /// Applies `update`; a failed condition is a `Conflict`. Returns the attributes asked
    /// for (none unless [`Update::returning`] says).
    pub async fn update(&self, update: Update) -> Result<Item, StoreError> {
        let (names, values) = update.placeholders();
        let out = sent!(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(update.key.to_item()))
                .update_expression(update.expr.text())
                .set_condition_expression(update.condition.as_ref().and_then(non_empty_text))
                .set_expression_attribute_names(non_empty(names))
                .set_expression_attribute_values(non_empty(values))
                .return_values(update.returns)
                .send()
                .await,
        )?;
        Ok(out.attributes.unwrap_or_default())
    }

    /// Applies `update`; `None` if its condition failed.
    pub async fn update_if(&self, update: Update) -> Result<Option<Item>, StoreError> {
        unless_conflict(self.update(update).await)
    }

    /// Writes all steps or none. A failed condition is a `Conflict`; a transaction cancelled
    /// for another reason (a concurrent transaction, throttling) is not.
    pub async fn transact(&self, steps: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let r = self
            .client
            .transact_write_items()
            .set_transact_items(Some(steps))
            .send()
            .await;
        match r.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(()),
            Err(TransactWriteItemsError::TransactionCanceledException(t)) => {
                let reasons: Vec<&str> = t
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|r| r.code())
                    .collect();
                if reasons.contains(&"ConditionalCheckFailed") {
                    Err(StoreError::Conflict(reasons.join(",")))
                } else {
                    Err(StoreError::aws("dynamodb", t))
                }
            }
            Err(e) => Err(StoreError::dynamo(e)),
        }
    }

    /// One page of a query.
    pub async fn query(&self, q: &Query) -> Result<Found, StoreError> {
        let out = sent!(
            self.client
                .query()
                .table_name(&self.table)
                .set_index_name(q.index.clone())
                .key_condition_expression(q.key.text())
                .set_filter_expression(q.filter.clone())
                .set_projection_expression(q.projection.clone())
                .set_expression_attribute_names(q.key.names())
                .set_expression_attribute_values(q.key.values())
                .scan_index_forward(!q.backwards)
                .set_limit(q.limit)
                .consistent_read(q.consistent)
                .set_exclusive_start_key(q.start.clone())
                .send()
                .await,
        )?;
        Ok(Found::new(out.items, out.last_evaluated_key))
    }

    /// One page of a scan of the whole table, keeping what `filter` accepts. For maintenance
    /// only: no index serves it.
    pub async fn scan(&self, filter: &Expr, start: Option<Item>) -> Result<Found, StoreError> {
        self.scan_projected(filter, None, start).await
    }

    /// [`Store::scan`] returning only the keys of what matches.
    pub async fn scan_keys(&self, filter: &Expr, start: Option<Item>) -> Result<Found, StoreError> {
        self.scan_projected(filter, Some("pk, sk"), start).await
    }

    async fn scan_projected(
        &self,
        filter: &Expr,
        projection: Option<&str>,
        start: Option<Item>,
    ) -> Result<Found, StoreError> {
        let out = sent!(
            self.client
                .scan()
                .table_name(&self.table)
                .set_projection_expression(projection.map(str::to_owned))
                .filter_expression(filter.text())
                .set_expression_attribute_names(filter.names())
                .set_expression_attribute_values(filter.values())
                .set_exclusive_start_key(start)
                .send()
                .await,
        )?;
        Ok(Found::new(out.items, out.last_evaluated_key))
    }

    /// Every item a query matches, read page by page and deserialised.
    async fn all_pages<T: DeserializeOwned>(&self, q: Query) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self.query(&q.clone().after(start)).await?;
            for i in page.items {
                out.push(from_item(i)?);
            }
            match page.next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// The items under `keys` (strongly consistent), in no particular order; keys without
    /// an item are left out. 100 keys per request, unprocessed ones asked again.
    pub async fn batch_get(&self, keys: &[Item]) -> Result<Vec<Item>, StoreError> {
        self.batch_read(keys, true).await
    }

    async fn batch_read(&self, keys: &[Item], consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(consistent)
                    .build()
                    .expect("keys are set"),
            );
            while let Some(request) = pending.take() {
                let out = sent!(
                    self.client
                        .batch_get_item()
                        .request_items(&self.table, request)
                        .send()
                        .await,
                )?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(found)
    }

    /// The items under `keys` (eventually consistent, distinct keys) in one round trip, each
    /// in its key's place: `None` where there is no item.
    pub async fn get_each(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let items = self
            .batch_read(&keys.iter().map(Key::to_item).collect::<Vec<_>>(), false)
            .await?;
        let mut out = vec![None; keys.len()];
        for item in items {
            let attr = |n: &str| item.get(n).and_then(|v| v.as_s().ok());
            let place = keys
                .iter()
                .position(|k| attr("pk") == Some(&k.pk) && attr("sk") == Some(&k.sk));
            if let Some(i) = place {
                out[i] = Some(item);
            }
        }
        Ok(out)
    }

    /// Puts `items` unconditionally, 25 per request, asking again for what DynamoDB leaves
    /// unprocessed after the pauses of [`BATCH_WRITE_RETRIES`].
    pub async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|i| {
                let put = PutRequest::builder()
                    .set_item(Some(i))
                    .build()
                    .expect("item is set");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        self.batch_write(requests).await
    }

    /// Deletes these keys (unconditionally), 25 at a time.
    pub async fn batch_delete(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(k))
                    .build()
                    .expect("key is set");
                WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        self.batch_write(requests).await
    }

    async fn batch_write(&self, all: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in all.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk.to_vec();
            let mut retry = Retry::new(&BATCH_WRITE_RETRIES);
            loop {
                let out = sent!(
                    self.client
                        .batch_write_item()
                        .request_items(&self.table, requests)
                        .send()
                        .await,
                )?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if !retry.wait().await {
                    return Err(StoreError::Unfinished(
                        "batch write kept items unprocessed".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Puts `item` unless an unexpired item has its key (TTL deletes late, and never in the
    /// emulator). `Ok(false)` when a live one exists.
    pub async fn put_unless_live(&self, item: Item, now: i64) -> Result<bool, StoreError> {
        let live = Expr::new("attribute_not_exists(pk) OR #ttl < :now")
            .name("#ttl", "ttl")
            .n(":now", now);
        self.put_if(item, live).await
    }

    /// Replaces an item that must exist.
    pub async fn replace(&self, item: Item) -> Result<(), StoreError> {
        if self.put_if(item, Expr::exists()).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("no such item".into()))
        }
    }

    /// Every item of a workspace whose sort key starts with `prefix`, page by page, strongly
    /// consistent.
    pub async fn query_prefix<T: DeserializeOwned>(
        &self,
        ws: &str,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.all_pages(Query::prefix(format!("WS#{ws}"), prefix).consistent())
            .await
    }

    /// One page of the items in partition `pk` whose sort key starts with `prefix`, in
    /// sort-key order (`forward`) or backwards, after the item whose sort key is `prefix` +
    /// `after`; only those `keep` accepts. DynamoDB `Query` with `Limit` and
    /// `ExclusiveStartKey`, strongly consistent: memory holds one page, never the list.
    ///
    /// The start key is rebuilt from `pk` and `prefix` here, so a position can never reach
    /// outside the list. Reads stop after [`PAGE_SCAN_BUDGET`] items even when `keep` left
    /// the page short, so a narrow filter costs a bounded amount per request; `next` then
    /// continues after the last item read.
    pub async fn page<T: DeserializeOwned>(
        &self,
        q: &PageQuery<'_>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Page<T>, StoreError> {
        let start_key =
            |suffix: &str| Key::new(q.pk.clone(), format!("{}{suffix}", q.prefix)).to_item();
        let mut start = q.after.map(start_key);
        let mut out: Vec<(String, T)> = Vec::new();
        let mut read = 0usize;
        loop {
            let want = (q.limit + 1).min(PAGE_SCAN_BUDGET - read).max(1);
            let query = Query::prefix(q.pk.clone(), q.prefix)
                .forward(q.forward)
                .consistent()
                .limit(Some(i32::try_from(want).unwrap_or(i32::MAX)))
                .after(start);
            let page = self.query(&query).await?;
            let mut last_read: Option<String> = None;
            for raw in page.items {
                read += 1;
                let sk = raw
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.strip_prefix(q.prefix))
                    .ok_or_else(|| StoreError::Shape("listed item without its sort key".into()))?
                    .to_owned();
                let t: T = from_item(raw)?;
                if keep(&t) {
                    out.push((sk.clone(), t));
                }
                if out.len() > q.limit {
                    // One more than asked: the page is full and the list goes on.
                    out.truncate(q.limit);
                    let next = out.last().map(|(sk, _)| sk.clone());
                    return Ok(Page::new(out, next));
                }
                last_read = Some(sk);
            }
            match page.next {
                Some(k) => {
                    if read >= PAGE_SCAN_BUDGET {
                        let next = last_read.or_else(|| out.last().map(|(sk, _)| sk.clone()));
                        return Ok(Page::new(out, next));
                    }
                    start = Some(k);
                }
                _ => return Ok(Page::new(out, None)),
            }
        }
    }

    pub async fn saved_search(
        &self,
        ws: &str,
        id: &str,
    ) -> Result<Option<SavedSearch>, StoreError> {
        self.get(&Key::saved_search(ws, id)).await
    }

    /// How `connector` sees cases: through its saved search, or not at all without one.
    pub async fn case_view(&self, connector: &Connector) -> Result<View, StoreError> {
        self.case_view_through(
            &connector.workspace_id,
            connector.saved_search_id.as_deref(),
        )
        .await
    }

    /// How a connector with `saved_search_id` sees the cases of `ws`.
    pub async fn case_view_through(
        &self,
        ws: &str,
        saved_search_id: Option<&str>,
    ) -> Result<View, StoreError> {
        let search = match saved_search_id {
            Some(id) => self.saved_search(ws, id).await?,
            None => None,
        };
        Ok(View::of(search))
    }

    /// Reserves `n` consecutive case ids of a workspace with one atomic counter update and
    /// returns the first. Ids taken by a create that then fails are not reused.
    pub async fn next_case_ids(&self, ws: &str, n: u64) -> Result<u64, StoreError> {
        let out = self
            .update(
                Update::new(
                    Key::case_counter(ws),
                    Expr::new("ADD last_id :n").n(":n", n),
                )
                .returning(ReturnValue::UpdatedNew),
            )
            .await?;
        let last: u64 = number(&out, "last_id")
            .ok_or_else(|| StoreError::Shape("counter update returned no last_id".into()))?;
        Ok(last + 1 - n)
    }

    pub async fn users(&self, ws: &str) -> Result<Vec<User>, StoreError> {
        self.query_prefix(ws, "USER#").await
    }

    pub async fn workspace(&self, ws: &str) -> Result<Option<Workspace>, StoreError> {
        self.get(&Key::workspace(ws)).await
    }

    pub async fn user(&self, ws: &str, user: &str) -> Result<Option<User>, StoreError> {
        self.get(&Key::user(ws, user)).await
    }

    pub async fn connector(&self, ws: &str, con: &str) -> Result<Option<Connector>, StoreError> {
        self.get(&Key::connector(ws, con)).await
    }

    pub async fn credential(&self, id: &str) -> Result<Option<Credential>, StoreError> {
        self.get(&Key::credential(id)).await
    }

    /// A workspace with its owner, in one transaction.
    pub async fn create_workspace(&self, ws: &Workspace, owner: &User) -> Result<(), StoreError> {
        let mut steps = vec![put_new(
            &self.table,
            item(&Key::workspace(&ws.workspace_id), ws)?,
        )];
        steps.extend(self.user_steps(owner)?);
        self.transact(steps).await
    }

    /// A user and the claim on their e-mail address: e-mail is unique per workspace.
    pub async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let steps = self.user_steps(user)?;
        self.transact(steps).await
    }

    pub fn user_steps(&self, user: &User) -> Result<Vec<TransactWriteItem>, StoreError> {
        let claim = serde_json::json!({ "user_id": user.user_id });
        Ok(vec![
            put_new(
                &self.table,
                item(&Key::user(&user.workspace_id, &user.user_id), user)?,
            ),
            put_new(
                &self.table,
                item(&Key::email(&user.workspace_id, &user.email), &claim)?,
            ),
        ])
    }

    /// Changes a user's `api_access` and `rights` only, if the user's `owner` flag is still
    /// `owner` (a whole-item write would undo concurrent changes to other fields).
    pub async fn update_user_access(
        &self,
        ws: &str,
        user: &str,
        owner: bool,
        api_access: Option<bool>,
        rights: Option<crate::model::Level>,
    ) -> Result<User, StoreError> {
        let mut sets = Vec::new();
        let mut expr = Expr::default();
        if let Some(a) = api_access {
            sets.push("api_access = :a");
            expr = expr.value(":a", AttributeValue::Bool(a));
        }
        if let Some(r) = rights {
            sets.push("#rights = :r");
            expr = expr.name("#rights", "rights").s(":r", r.as_str());
        }
        if sets.is_empty() {
            return self
                .user(ws, user)
                .await?
                .ok_or_else(|| StoreError::Conflict("no such user".into()));
        }
        expr.text = format!("SET {}", sets.join(", "));
        let still = Expr::new("attribute_exists(pk) AND #owner = :owner")
            .name("#owner", "owner")
            .value(":owner", AttributeValue::Bool(owner));
        let out = self
            .update(
                Update::new(Key::user(ws, user), expr)
                    .when(still)
                    .returning(ReturnValue::AllNew),
            )
            .await?;
        from_item(out)
    }

    /// Deactivates a user who is not the owner (and takes their API access): only these two
    /// fields, so concurrent changes to others stand; deactivating again keeps the first
    /// time. Only while no connector was made to act for them since `acting_epoch` was read
    /// (see [`Store::acting_user_check`]): else a conflict, and the caller looks again.
    pub async fn deactivate_user(
        &self,
        ws: &str,
        user: &str,
        at: &str,
        acting_epoch: Option<u64>,
    ) -> Result<User, StoreError> {
        let no = || AttributeValue::Bool(false);
        let set =
            Expr::new("SET deactivated_at = if_not_exists(deactivated_at, :at), api_access = :no")
                .s(":at", at)
                .value(":no", no());
        let epoch = match acting_epoch {
            Some(_) => "acting_epoch = :e",
            None => "attribute_not_exists(acting_epoch)",
        };
        let mut still = Expr::new(format!("attribute_exists(pk) AND #owner = :no AND {epoch}"))
            .name("#owner", "owner")
            .value(":no", no());
        if let Some(e) = acting_epoch {
            still = still.n(":e", e);
        }
        let out = self
            .update(
                Update::new(Key::user(ws, user), set)
                    .when(still)
                    .returning(ReturnValue::AllNew),
            )
            .await?;
        from_item(out)
    }

    /// The transaction step that makes `con` act for its acting user: it holds only while
    /// that user exists and is not deactivated, and counts on them (`acting_epoch`), so a
    /// deactivation that looked for their connectors before this commits fails and looks
    /// again. Either the connector is saved or the user is deactivated, never both.
    pub fn acting_user_check(&self, con: &Connector) -> TransactWriteItem {
        let claim = Update::new(
            Key::user(&con.workspace_id, &con.acting_user_id),
            Expr::new("ADD acting_epoch :one").n(":one", 1),
        )
        .when(Expr::new(
            "attribute_exists(pk) AND attribute_not_exists(deactivated_at)",
        ));
        update_step(&self.table, &claim)
    }

    pub async fn save_user(&self, user: &User) -> Result<(), StoreError> {
        self.replace(item(&Key::user(&user.workspace_id, &user.user_id), user)?)
            .await
    }

    pub async fn create_connector(&self, con: &Connector) -> Result<(), StoreError> {
        let item = item(&Key::connector(&con.workspace_id, &con.connector_id), con)?;
        self.transact(vec![put_new(&self.table, item)]).await
    }

    /// Saves a changed connector if nobody changed it since `expected_version` was read;
    /// bumps its version.
    pub async fn save_connector(
        &self,
        con: &mut Connector,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        con.version = expected_version + 1;
        let item = item(&Key::connector(&con.workspace_id, &con.connector_id), &*con)?;
        if self.put_if(item, Expr::version(expected_version)).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(
                "the connector changed meanwhile".into(),
            ))
        }
    }

    /// The transaction steps that save a connector (created when `expected` is `None`, else
    /// only over that version), claim its JWT issuer (unique across Koppel: it is how a JWT
    /// finds its connector; claimed again when unchanged too, which repairs a lost claim)
    /// and, when the issuer changed from `previous_issuer`, free the old one.
    pub fn connector_steps(
        &self,
        con: &Connector,
        expected: Option<u64>,
        previous_issuer: Option<&str>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let key = Key::connector(&con.workspace_id, &con.connector_id);
        let mut steps = vec![versioned_put(&self.table, item(&key, con)?, expected)];
        let issuer = con.jwt.as_ref().map(|j| j.issuer.as_str());
        let mine = || Expr::default().s(":c", con.connector_id.clone());
        if let Some(iss) = issuer {
            let claim = serde_json::json!({
                "workspace_id": con.workspace_id, "connector_id": con.connector_id,
            });
            let free_or_mine = Expr {
                text: "attribute_not_exists(pk) OR connector_id = :c".into(),
                ..mine()
            };
            steps.push(put_step(
                &self.table,
                item(&Key::issuer(iss), &claim)?,
                free_or_mine,
            ));
        }
        if let Some(old) = previous_issuer.filter(|&old| Some(old) != issuer) {
            let held = Expr {
                text: "connector_id = :c".into(),
                ..mine()
            };
            steps.push(delete_step(&self.table, &Key::issuer(old), Some(held)));
        }
        Ok(steps)
    }

    /// Saves a connector whose JWT issuer may have changed, atomically with the issuer's
    /// claim ([`Store::connector_steps`]).
    pub async fn save_connector_with_issuer(
        &self,
        con: &Connector,
        expected: Option<u64>,
        previous_issuer: Option<&str>,
    ) -> Result<(), StoreError> {
        let steps = self.connector_steps(con, expected, previous_issuer)?;
        self.transact(steps).await
    }

    /// Claims `iss` for a connector and saves the connector's JWT configuration over
    /// `expected_version`, atomically; bumps its version.
    pub async fn register_issuer(
        &self,
        con: &mut Connector,
        expected_version: u64,
        previous_issuer: Option<&str>,
    ) -> Result<(), StoreError> {
        con.version = expected_version + 1;
        self.save_connector_with_issuer(con, Some(expected_version), previous_issuer)
            .await
    }

    /// The connector that registered `iss`, if any: `(workspace, connector)`.
    pub async fn issuer(&self, iss: &str) -> Result<Option<(String, String)>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Claim {
            workspace_id: String,
            connector_id: String,
        }
        Ok(self
            .get::<Claim>(&Key::issuer(iss))
            .await?
            .map(|c| (c.workspace_id, c.connector_id)))
    }

    /// The transaction step that stores a new credential, findable by its holder.
    pub fn credential_step(&self, cred: &Credential) -> Result<TransactWriteItem, StoreError> {
        let item = with_gsi1(
            item(&Key::credential(&cred.credential_id), cred)?,
            holder_key(&cred.workspace_id, cred),
            format!("{}#{}", cred.created_at, cred.credential_id),
        );
        Ok(put_new(&self.table, item))
    }

    /// The transaction step that revokes a credential that exists and is not revoked yet.
    pub fn revoke_step(&self, id: &str, at: &str) -> TransactWriteItem {
        let revoke = Update::new(
            Key::credential(id),
            Expr::new("SET revoked_at = :t").s(":t", at),
        )
        .when(Expr::new(
            "attribute_exists(pk) AND attribute_not_exists(revoked_at)",
        ));
        update_step(&self.table, &revoke)
    }

    /// A holder's credentials (a user's personal tokens, or a connector's keys and tokens),
    /// oldest first. From gsi1, so a credential issued a moment ago may be missing.
    pub async fn credentials_of(
        &self,
        ws: &str,
        holder: &str,
    ) -> Result<Vec<Credential>, StoreError> {
        let q = Query::new(Expr::new("gsi1pk = :h").s(":h", format!("WS#{ws}#HOLDER#{holder}")))
            .index("gsi1");
        self.all_pages(q).await
    }

    /// Re-hashes a credential with the current pepper after it verified with an older one,
    /// so the next rotation does not lock it out. Lost races are fine: someone re-hashed.
    pub async fn rehash_credential(
        &self,
        id: &str,
        old_version: &str,
        hash: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        let rehash = Update::new(
            Key::credential(id),
            Expr::new("SET secret_hash = :h, pepper_version = :v")
                .s(":h", hash)
                .s(":v", version),
        )
        .when(Expr::new("pepper_version = :old").s(":old", old_version));
        self.update_if(rehash).await?;
        Ok(())
    }

    /// Records use, at most once per `older_than` (an RFC 3339 time): not a write per request.
    pub async fn touch_credential(
        &self,
        id: &str,
        now: &str,
        older_than: &str,
    ) -> Result<(), StoreError> {
        let touch = Update::new(
            Key::credential(id),
            Expr::new("SET last_used_at = :now").s(":now", now),
        )
        .when(
            Expr::new(
                "attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at < :old)",
            )
            .s(":old", older_than),
        );
        self.update_if(touch).await?;
        Ok(())
    }

    /// Records a JWT id as used until `until`; `false` if it was used before.
    pub async fn consume_jti(
        &self,
        con: &str,
        jti: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.put_unless_live(with_ttl(Key::jti(con, jti).to_item(), until), now)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;

    #[test]
    fn item_has_keys_and_fields_and_reads_back() {
        let u = User {
            workspace_id: "ws_1".into(),
            user_id: "usr_1".into(),
            email: "A@Example.org".into(),
            name: "A".into(),
            rights: Level::Handle,
            api_access: true,
            manage_users: false,
            manage_connectors: false,
            owner: true,
            created_at: "2026-01-01T00:00:00Z".into(),
            deactivated_at: None,
        };
        let i = item(&Key::user("ws_1", "usr_1"), &u).unwrap();
        assert_eq!(i["pk"], AttributeValue::S("WS#ws_1".into()));
        assert_eq!(i["sk"], AttributeValue::S("USER#usr_1".into()));
        assert_eq!(i["rights"], AttributeValue::S("handle".into()));
        let back: User = serde_dynamo::from_item(i).unwrap();
        assert_eq!(back, u);
    }

    #[test]
    fn a_versioned_put_is_over_its_version_or_on_a_free_key() {
        let i = Key::workspace("w").to_item();
        let over = versioned_put("t", i.clone(), Some(4));
        let put = over.put().unwrap();
        assert_eq!(put.condition_expression(), Some("version = :v"));
        assert_eq!(
            put.expression_attribute_values().unwrap()[":v"],
            AttributeValue::N("4".into())
        );
        let new = versioned_put("t", i, None);
        let put = new.put().unwrap();
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
        // DynamoDB refuses empty placeholder maps.
        assert!(put.expression_attribute_values().is_none());
        assert!(put.expression_attribute_names().is_none());
    }

    #[test]
    fn steps_carry_their_conditions_and_nothing_else() {
        let k = Key::issuer("iss");
        let free = delete_step("t", &k, None);
        let d = free.delete().unwrap();
        assert_eq!(d.condition_expression(), None);
        assert!(d.expression_attribute_values().is_none());
        let held = delete_step("t", &k, Some(Expr::new("connector_id = :c").s(":c", "con")));
        let d = held.delete().unwrap();
        assert_eq!(d.condition_expression(), Some("connector_id = :c"));
        assert_eq!(
            d.expression_attribute_values().unwrap()[":c"],
            AttributeValue::S("con".into())
        );
        let check = check_step("t", &k, Expr::exists());
        assert_eq!(
            check.condition_check().unwrap().condition_expression(),
            "attribute_exists(pk)"
        );
    }

    #[test]
    fn an_update_merges_the_placeholders_of_its_expression_and_condition() {
        let u = Update::new(
            Key::rate("c", 60),
            Expr::new("ADD #n :one").name("#n", "count").n(":one", 1),
        )
        .when(Expr::new("#n < :limit").n(":limit", 30));
        let (names, values) = u.placeholders();
        assert_eq!(names.len(), 1);
        assert_eq!(values.len(), 2);
        let step = update_step("t", &u);
        let up = step.update().unwrap();
        assert_eq!(up.update_expression(), "ADD #n :one");
        assert_eq!(up.condition_expression(), Some("#n < :limit"));
        let plain = Update::new(Key::rate("c", 60), Expr::new("REMOVE x"));
        assert!(
            update_step("t", &plain)
                .update()
                .unwrap()
                .expression_attribute_values()
                .is_none()
        );
    }

    #[test]
    fn a_query_keeps_its_key_condition_and_takes_the_filter_placeholders() {
        let q =
            Query::prefix("WS#w", "USER#").filter(Expr::new("#a = :a").name("#a", "a").n(":a", 1));
        assert_eq!(q.key.text(), "pk = :pk AND begins_with(sk, :p)");
        assert_eq!(q.filter.as_deref(), Some("#a = :a"));
        assert_eq!(q.key.values.len(), 3);
        assert_eq!(q.key.names.len(), 1);
    }

    #[test]
    fn an_sdk_error_stays_the_source() {
        use std::error::Error as _;
        let e = StoreError::aws("sqs", std::io::Error::other("queue gone"));
        assert!(e.to_string().starts_with("sqs: queue gone"));
        assert_eq!(e.source().unwrap().to_string(), "queue gone");
        assert!(!e.is_conflict() && StoreError::Conflict("c".into()).is_conflict());
    }

    #[test]
    fn absent_options_are_not_stored_as_null() {
        // A NULL attribute "exists" for `if_not_exists` and `attribute_not_exists`.
        let c = crate::model::Credential {
            credential_id: "c".into(),
            workspace_id: "w".into(),
            kind: crate::credential::CredentialKind::ApiKey,
            name: "n".into(),
            user_id: None,
            connector_id: Some("con".into()),
            acting_user_id: None,
            scopes: None,
            rate_limit: None,
            expires_at: None,
            revoked_at: None,
            created_by: "u".into(),
            created_at: "t".into(),
            last_used_at: None,
            secret_hash: "h".into(),
            pepper_version: "v".into(),
        };
        let i = item(&Key::credential("c"), &c).unwrap();
        for absent in [
            "revoked_at",
            "last_used_at",
            "expires_at",
            "scopes",
            "user_id",
        ] {
            assert!(!i.contains_key(absent), "{absent} stored");
        }
        let back: crate::model::Credential = serde_dynamo::from_item(i).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            Key::email("ws_1", "A@Example.org").sk,
            "EMAIL#a@example.org"
        );
    }
}
