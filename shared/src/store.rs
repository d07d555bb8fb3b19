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

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cases::SavedSearch;
use crate::model::{Connector, Credential, User, Workspace};

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition failed: the item exists already, or changed under us.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("dynamodb: {0}")]
    Sdk(String),
    #[error("stored item does not match its model: {0}")]
    Shape(String),
}

impl StoreError {
    pub fn from_sdk<E>(e: E) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata,
    {
        let code = e.code().unwrap_or_default();
        if code == "ConditionalCheckFailedException" || code == "TransactionCanceledException" {
            return Self::Conflict(e.message().unwrap_or(code).to_owned());
        }
        Self::Sdk(DisplayErrorContext(&e).to_string())
    }
}

impl From<StoreError> for crate::ApiError {
    fn from(e: StoreError) -> Self {
        crate::ApiError::internal(e)
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

/// A transaction step that creates `item` only if its key is free.
pub fn put_new(table: &str, item: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .expect("table, item and condition are set"),
        )
        .build()
}

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

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Strongly consistent: a revocation or a disabled connector counts on the next request.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
        out.item
            .map(|i| serde_dynamo::from_item(i).map_err(|e| StoreError::Shape(e.to_string())))
            .transpose()
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
                    Err(StoreError::Sdk(format!(
                        "transaction cancelled: {reasons:?}"
                    )))
                }
            }
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }

    /// Puts `item` unless an unexpired item has its key (TTL deletes late, and never in the
    /// emulator). `Ok(false)` when a live one exists.
    pub async fn put_unless_live(&self, item: Item, now: i64) -> Result<bool, StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match r.map_err(|e| StoreError::from_sdk(e.into_service_error())) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces an item that must exist.
    pub async fn replace(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
        Ok(())
    }

    /// Every item of a workspace whose sort key starts with `prefix`, page by page, strongly
    /// consistent.
    pub async fn query_prefix<T: DeserializeOwned>(
        &self,
        ws: &str,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("WS#{ws}")))
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .consistent_read(true);
        self.all_pages(query).await
    }

    /// Every item a query matches, read page by page and deserialised.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
            for i in page.items() {
                out.push(
                    serde_dynamo::from_item(i.clone())
                        .map_err(|e| StoreError::Shape(e.to_string()))?,
                );
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
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
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", AttributeValue::S(q.pk.clone()))
                .expression_attribute_values(":p", AttributeValue::S(q.prefix.to_owned()))
                .scan_index_forward(q.forward)
                .consistent_read(true)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
            let mut last_read: Option<String> = None;
            for raw in page.items() {
                read += 1;
                let sk = raw
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.strip_prefix(q.prefix))
                    .ok_or_else(|| StoreError::Shape("listed item without its sort key".into()))?
                    .to_owned();
                let t: T = serde_dynamo::from_item(raw.clone())
                    .map_err(|e| StoreError::Shape(e.to_string()))?;
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
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => {
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

    /// Reserves `n` consecutive case ids of a workspace with one atomic counter update and
    /// returns the first. Ids taken by a create that then fails are not reused.
    pub async fn next_case_ids(&self, ws: &str, n: u64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::case_counter(ws).to_item()))
            .update_expression("ADD last_id :n")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
        let last: u64 = out
            .attributes()
            .and_then(|a| a.get("last_id"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
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

    fn user_steps(&self, user: &User) -> Result<Vec<TransactWriteItem>, StoreError> {
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
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::user(ws, user).to_item()))
            .condition_expression("attribute_exists(pk) AND #owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::Bool(owner))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        if let Some(a) = api_access {
            sets.push("api_access = :a");
            req = req.expression_attribute_values(":a", AttributeValue::Bool(a));
        }
        if let Some(r) = rights {
            sets.push("#rights = :r");
            req = req
                .expression_attribute_names("#rights", "rights")
                .expression_attribute_values(":r", AttributeValue::S(r.as_str().into()));
        }
        if sets.is_empty() {
            return self
                .user(ws, user)
                .await?
                .ok_or_else(|| StoreError::Conflict("no such user".into()));
        }
        let out = req
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
        serde_dynamo::from_item(out.attributes.unwrap_or_default())
            .map_err(|e| StoreError::Shape(e.to_string()))
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
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(e.into_service_error()))?;
        Ok(())
    }

    /// Claims `iss` for a connector (unique across Koppel: it is how a JWT finds its
    /// connector) and saves the connector's JWT configuration, atomically.
    pub async fn register_issuer(
        &self,
        con: &mut Connector,
        expected_version: u64,
        previous_issuer: Option<&str>,
    ) -> Result<(), StoreError> {
        let iss = &con.jwt.as_ref().expect("caller sets jwt").issuer;
        let claim = serde_json::json!({
            "workspace_id": con.workspace_id, "connector_id": con.connector_id,
        });
        let claim_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item(&Key::issuer(iss), &claim)?))
            .condition_expression("attribute_not_exists(pk) OR connector_id = :c")
            .expression_attribute_values(":c", AttributeValue::S(con.connector_id.clone()))
            .build()
            .expect("complete put");
        con.version = expected_version + 1;
        let con_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item(
                &Key::connector(&con.workspace_id, &con.connector_id),
                &*con,
            )?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .build()
            .expect("complete put");
        let mut steps = vec![
            TransactWriteItem::builder().put(claim_put).build(),
            TransactWriteItem::builder().put(con_put).build(),
        ];
        // Moving to another issuer frees the old one for other connectors.
        if let Some(old) = previous_issuer.filter(|old| *old != iss.as_str()) {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Key::issuer(old).to_item()))
                .condition_expression("connector_id = :c")
                .expression_attribute_values(":c", AttributeValue::S(con.connector_id.clone()))
                .build()
                .expect("complete delete");
            steps.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.transact(steps).await
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
        TransactWriteItem::builder()
            .update(
                aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(Key::credential(id).to_item()))
                    .update_expression("SET revoked_at = :t")
                    .condition_expression(
                        "attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                    )
                    .expression_attribute_values(":t", AttributeValue::S(at.into()))
                    .build()
                    .expect("table, key and expression are set"),
            )
            .build()
    }

    /// A holder's credentials (a user's personal tokens, or a connector's keys and tokens),
    /// oldest first. From gsi1, so a credential issued a moment ago may be missing.
    pub async fn credentials_of(
        &self,
        ws: &str,
        holder: &str,
    ) -> Result<Vec<Credential>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :h")
            .expression_attribute_values(
                ":h",
                AttributeValue::S(format!("WS#{ws}#HOLDER#{holder}")),
            );
        self.all_pages(query).await
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
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::credential(id).to_item()))
            .update_expression("SET secret_hash = :h, pepper_version = :v")
            .condition_expression("pepper_version = :old")
            .expression_attribute_values(":h", AttributeValue::S(hash.into()))
            .expression_attribute_values(":v", AttributeValue::S(version.into()))
            .expression_attribute_values(":old", AttributeValue::S(old_version.into()))
            .send()
            .await;
        match r.map_err(|e| StoreError::from_sdk(e.into_service_error())) {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Records use, at most once per `older_than` (an RFC 3339 time): not a write per request.
    pub async fn touch_credential(
        &self,
        id: &str,
        now: &str,
        older_than: &str,
    ) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::credential(id).to_item()))
            .update_expression("SET last_used_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at < :old)",
            )
            .expression_attribute_values(":now", AttributeValue::S(now.into()))
            .expression_attribute_values(":old", AttributeValue::S(older_than.into()))
            .send()
            .await;
        match r.map_err(|e| StoreError::from_sdk(e.into_service_error())) {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
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
        };
        let i = item(&Key::user("ws_1", "usr_1"), &u).unwrap();
        assert_eq!(i["pk"], AttributeValue::S("WS#ws_1".into()));
        assert_eq!(i["sk"], AttributeValue::S("USER#usr_1".into()));
        assert_eq!(i["rights"], AttributeValue::S("handle".into()));
        let back: User = serde_dynamo::from_item(i).unwrap();
        assert_eq!(back, u);
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
