//! The engine's store on DynamoDB.
//!
//! Three tables. The state table has key (`pk` = space and the key's first
//! part, the cluster or credential; `sk` = key), so a key prefix is a
//! `begins_with` query on one partition; the alerts table has key
//! `alert_id` and flat attributes (severity, cluster, rules, times, status)
//! beside the full alert, so table exports can be queried with Athena; the
//! history table keeps one item per revision (`alert_id`, `revision`), with
//! what it changed and who changed the status. Without a history table the
//! history lives in the state table. Versions are
//! numbers checked by condition expressions; expiry is kept in milliseconds
//! (`expires_ms`, for exact reads) and in seconds (`ttl`, the table's TTL
//! attribute, for DynamoDB to delete expired items eventually).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use chrono::{DateTime, TimeZone, Utc};
use sentinel_core::alert::AlertRecord;
use sentinel_core::store::{
    Document, Expect, GROUP_LIMIT, Put, ReadAhead, Record, Space, Store, StoreError, next_version,
};
use serde_json::Value;
use tokio::runtime::Handle;

/// The store on a state table and an alerts table.
pub struct DynamoStore {
    client: Client,
    state_table: String,
    alerts_table: String,
    history_table: Option<String>,
    handle: Handle,
}

type Item = HashMap<String, AttributeValue>;

/// A failed call: the environment, classified once from the service's error code.
fn backend<E>(call: &str, table: &str, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    StoreError::Backend(crate::fault::from_sdk(format!("DynamoDB {call} on table {table}"), e))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn corrupt(space: Space, key: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        space: space.as_str(),
        key: key.to_owned(),
        source: <serde_json::Error as serde::de::Error>::custom(message),
    }
}

impl DynamoStore {
    /// A store on the two tables; `handle` runs the SDK's futures.
    pub fn new(
        client: Client,
        state_table: impl Into<String>,
        alerts_table: impl Into<String>,
        handle: Handle,
    ) -> Self {
        Self { client, state_table: state_table.into(), alerts_table: alerts_table.into(), history_table: None, handle }
    }

    /// The same store, with the alerts' history in its own table (key
    /// `alert_id`, `revision`).
    #[must_use]
    pub fn with_history_table(mut self, table: impl Into<String>) -> Self {
        self.history_table = Some(table.into());
        self
    }

    fn history(&self, space: Space) -> Option<&str> {
        self.history_table.as_deref().filter(|_| space == Space::History)
    }

    /// The key attributes of items in `table`.
    fn key_names(&self, table: &str) -> &'static [&'static str] {
        if table == self.alerts_table {
            &["alert_id"]
        } else if self.history_table.as_deref() == Some(table) {
            &["alert_id", "revision"]
        } else {
            &["pk", "sk"]
        }
    }

    fn table(&self, space: Space) -> &str {
        match space {
            Space::Alert => &self.alerts_table,
            _ => self.history(space).unwrap_or(&self.state_table),
        }
    }

    fn key(&self, space: Space, key: &str) -> Item {
        if space == Space::Alert {
            HashMap::from([("alert_id".to_owned(), s(key))])
        } else if self.history(space).is_some() {
            let (alert_id, revision) = key.rsplit_once('|').unwrap_or((key, "0"));
            let revision = revision.trim_start_matches('0');
            HashMap::from([
                ("alert_id".to_owned(), s(alert_id)),
                ("revision".to_owned(), n(if revision.is_empty() { "0" } else { revision })),
            ])
        } else {
            HashMap::from([("pk".to_owned(), s(partition(space, key))), ("sk".to_owned(), s(key))])
        }
    }

    /// The store's key of a history table item.
    fn history_key(item: &Item) -> Option<String> {
        let (Some(AttributeValue::S(id)), Some(AttributeValue::N(rev))) = (item.get("alert_id"), item.get("revision"))
        else {
            return None;
        };
        Some(sentinel_core::keys::revision(id, rev.parse().ok()?))
    }

    fn record(space: Space, key: &str, item: &Item) -> Result<Record, StoreError> {
        let version = match item.get("version") {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(space, key, format!("version {v:?}")))?,
            _ => return Err(corrupt(space, key, "no version".into())),
        };
        let expires_at = match item.get("expires_ms") {
            Some(AttributeValue::N(ms)) => {
                let ms: i64 = ms.parse().map_err(|_| corrupt(space, key, format!("expires_ms {ms:?}")))?;
                Some(
                    Utc.timestamp_millis_opt(ms)
                        .single()
                        .ok_or_else(|| corrupt(space, key, "expires_ms out of range".into()))?,
                )
            }
            _ => None,
        };
        let value = match item.get("doc") {
            Some(doc) => serde_dynamo::from_attribute_value::<_, Value>(doc.clone())
                .map_err(|e| corrupt(space, key, e.to_string()))?,
            None => Value::Null,
        };
        Ok(Record { value: Document::new(value), version, expires_at })
    }

    async fn read(&self, space: Space, key: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table(space))
            .set_key(Some(self.key(space, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", self.table(space), e))?;
        out.item.as_ref().map(|item| Self::record(space, key, item)).transpose()
    }

    /// Reads `keys` with `BatchGetItem` (100 at a time, across both tables,
    /// strongly consistent), in order; keys DynamoDB leaves unprocessed are
    /// asked for again with a backoff, then read one by one.
    async fn read_many(&self, keys: &[(Space, String)]) -> Result<Vec<Option<Record>>, StoreError> {
        /// A key's identity, whatever the order of its attributes.
        fn id(table: &str, key: &Item) -> String {
            let mut parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            parts.sort();
            format!("{table}|{}", parts.join("|"))
        }
        let mut out: Vec<Option<Record>> = vec![None; keys.len()];
        // A key asked for again in the same batch takes the first one's answer.
        let mut again: Vec<(usize, usize)> = Vec::new();
        for (chunk_at, chunk) in keys.chunks(100).enumerate() {
            let mut wanted: HashMap<String, usize> = HashMap::new();
            let mut request: HashMap<String, Vec<Item>> = HashMap::new();
            for (i, (space, key)) in chunk.iter().enumerate() {
                let item = self.key(*space, key);
                match wanted.entry(id(self.table(*space), &item)) {
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(chunk_at * 100 + i);
                        request.entry(self.table(*space).to_owned()).or_default().push(item);
                    }
                    std::collections::hash_map::Entry::Occupied(first) => {
                        again.push((chunk_at * 100 + i, *first.get()))
                    }
                }
            }
            let mut pending: HashMap<String, KeysAndAttributes> = HashMap::new();
            for (table, items) in request {
                let ka = KeysAndAttributes::builder().set_keys(Some(items)).consistent_read(true).build();
                pending.insert(table, ka.map_err(|e| corrupt(Space::Baseline, "batch", e.to_string()))?);
            }
            for attempt in 0..5u32 {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                let tables = pending.keys().cloned().collect::<Vec<_>>().join(", ");
                let answer = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(std::mem::take(&mut pending)))
                    .send()
                    .await
                    .map_err(|e| backend("BatchGetItem", &tables, e))?;
                for (table, items) in answer.responses.unwrap_or_default() {
                    let names = self.key_names(&table);
                    for item in items {
                        let key: Item =
                            names.iter().filter_map(|n| Some(((*n).to_owned(), item.get(*n)?.clone()))).collect();
                        if let Some(&at) = wanted.get(&id(&table, &key)) {
                            let (space, key) = &keys[at];
                            out[at] = Some(Self::record(*space, key, &item)?);
                        }
                    }
                }
                pending = answer.unprocessed_keys.unwrap_or_default();
                pending.retain(|_, ka| !ka.keys().is_empty());
            }
            // Still unprocessed after the backoff: one by one.
            for (table, ka) in pending {
                for key in ka.keys() {
                    if let Some(&at) = wanted.get(&id(&table, key)) {
                        let (space, k) = &keys[at];
                        out[at] = self.read(*space, k).await?;
                    }
                }
            }
        }
        for (i, first) in again {
            out[i] = out[first].clone();
        }
        Ok(out)
    }

    /// The caller's expectation as a write's condition, and the version the
    /// write will have. Expiry is judged as every store judges it (an item
    /// past `expires_ms` is absent, TTL deletion lagging or not): no read.
    /// `Any` still counts versions up: it reads the current one and writes
    /// on the condition that it did not change in between.
    async fn condition(
        &self,
        space: Space,
        key: &str,
        expect: Expect,
        now: DateTime<Utc>,
    ) -> Result<(u64, Condition), StoreError> {
        let key_attr = self.key_names(self.table(space))[0];
        let now_ms = n(now.timestamp_millis());
        Ok(match expect {
            Expect::Absent => {
                (1, Condition::new(format!("attribute_not_exists({key_attr}) OR #e <= :now"), vec![(":now", now_ms)]))
            }
            Expect::Version(v) => (
                v + 1,
                Condition::new(
                    "#v = :v AND (attribute_not_exists(#e) OR #e > :now)".to_owned(),
                    vec![(":v", n(v)), (":now", now_ms)],
                ),
            ),
            Expect::Any => {
                let current = self.read(space, key).await?;
                let version = next_version(space, key, current.as_ref().map(Record::stamp), expect, now)?;
                match &current {
                    Some(c) => (version, Condition::new("#v = :v".to_owned(), vec![(":v", n(c.version))])),
                    None => (version, Condition::new(format!("attribute_not_exists({key_attr})"), vec![])),
                }
            }
        })
    }

    /// The item written for a document, with the attributes reports filter on.
    fn item(
        &self,
        space: Space,
        key: &str,
        value: &Value,
        version: u64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Item, StoreError> {
        let mut item = self.key(space, key);
        let doc = serde_dynamo::to_attribute_value(value).map_err(|e| corrupt(space, key, e.to_string()))?;
        item.insert("doc".into(), doc);
        item.insert("version".into(), n(version));
        if let Some(t) = expires_at {
            item.insert("expires_ms".into(), n(t.timestamp_millis()));
            item.insert("ttl".into(), n(t.timestamp()));
        }
        if space == Space::Alert {
            flatten_alert(value, &mut item);
        }
        if self.history(space).is_some() {
            flatten_revision(value, &mut item);
        }
        Ok(item)
    }

    /// One conditional `PutItem`. `Any` means no condition on the caller's
    /// side: a race with another writer is retried here rather than reported.
    async fn write(
        &self,
        space: Space,
        key: &str,
        value: &Value,
        expect: Expect,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut attempts = 0;
        loop {
            match self.put_item(space, key, value, expect, expires_at, now).await {
                Err(StoreError::Conflict { .. }) if expect == Expect::Any && attempts < 5 => attempts += 1,
                other => return other,
            }
        }
    }

    async fn put_item(
        &self,
        space: Space,
        key: &str,
        value: &Value,
        expect: Expect,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (version, condition) = self.condition(space, key, expect, now).await?;
        let item = self.item(space, key, value, version, expires_at)?;
        let put = self
            .client
            .put_item()
            .table_name(self.table(space))
            .set_item(Some(item))
            .condition_expression(&condition.expression)
            .set_expression_attribute_names(condition.names())
            .set_expression_attribute_values(condition.values());
        match put.send().await {
            Ok(_) => Ok(version),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::Conflict { space: space.as_str(), key: key.to_owned() })
            }
            Err(e) => Err(backend("PutItem", self.table(space), e)),
        }
    }

    /// Writes a group with `TransactWriteItems`, every condition kept: all
    /// or nothing. A cancelled transaction names the put whose condition
    /// failed, or that another transaction held, as a conflict.
    async fn write_group(&self, puts: &[Put]) -> Result<Vec<u64>, StoreError> {
        let mut versions = Vec::with_capacity(puts.len());
        let mut items = Vec::with_capacity(puts.len());
        for p in puts {
            let (version, condition) = self.condition(p.space, &p.key, p.expect, p.now).await?;
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(self.table(p.space))
                .set_item(Some(self.item(p.space, &p.key, &p.value, version, p.expires_at)?))
                .condition_expression(&condition.expression)
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .build()
                .map_err(|e| corrupt(p.space, &p.key, e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
            versions.push(version);
        }
        let tables: Vec<&str> = {
            let mut t: Vec<&str> = puts.iter().map(|p| self.table(p.space)).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(versions),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                let reasons = match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => c.cancellation_reasons(),
                    _ => &[],
                };
                let conflict = reasons
                    .iter()
                    .position(|r| matches!(r.code(), Some("ConditionalCheckFailed" | "TransactionConflict")));
                match conflict.and_then(|i| puts.get(i)) {
                    Some(p) => Err(StoreError::Conflict { space: p.space.as_str(), key: p.key.clone() }),
                    None => Err(backend("TransactWriteItems", &tables.join(", "), SdkError::ServiceError(e))),
                }
            }
            Err(e) => Err(backend("TransactWriteItems", &tables.join(", "), e)),
        }
    }

    /// Scans one space's prefix (a query where the key allows), in key order.
    async fn scan_prefix(
        &self,
        space: Space,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = if let Some(table) = self.history(space) {
                // One alert's revisions: its partition. Every revision: the table.
                match prefix.strip_suffix('|') {
                    Some(alert_id) => self
                        .client
                        .query()
                        .table_name(table)
                        .consistent_read(true)
                        .key_condition_expression("alert_id = :id")
                        .expression_attribute_values(":id", s(alert_id))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map(|o| (o.items.unwrap_or_default(), o.last_evaluated_key))
                        .map_err(|e| backend("Query", table, e))?,
                    None => self
                        .client
                        .scan()
                        .table_name(table)
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map(|o| (o.items.unwrap_or_default(), o.last_evaluated_key))
                        .map_err(|e| backend("Scan", table, e))?,
                }
            } else if space == Space::Alert {
                self.client
                    .scan()
                    .table_name(&self.alerts_table)
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map(|o| (o.items.unwrap_or_default(), o.last_evaluated_key))
                    .map_err(|e| backend("Scan", &self.alerts_table, e))?
            } else if let Some(pk) = scan_partition(space, prefix) {
                let mut q = self
                    .client
                    .query()
                    .table_name(&self.state_table)
                    .consistent_read(true)
                    .expression_attribute_values(":pk", s(pk))
                    .set_exclusive_start_key(start.take());
                q = if prefix.is_empty() {
                    q.key_condition_expression("pk = :pk")
                } else {
                    q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                        .expression_attribute_values(":prefix", s(prefix))
                };
                q.send()
                    .await
                    .map(|o| (o.items.unwrap_or_default(), o.last_evaluated_key))
                    .map_err(|e| backend("Query", &self.state_table, e))?
            } else {
                // A prefix shorter than a partition spans them all: a table
                // scan. The engine never asks for one (its roles may not
                // Scan); the CLI and tests may.
                self.client
                    .scan()
                    .table_name(&self.state_table)
                    .consistent_read(true)
                    .filter_expression("begins_with(pk, :space) AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":space", s(format!("{}#", space.as_str())))
                    .expression_attribute_values(":prefix", s(prefix))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map(|o| (o.items.unwrap_or_default(), o.last_evaluated_key))
                    .map_err(|e| backend("Scan", &self.state_table, e))?
            };
            for item in &page.0 {
                let key = if self.history(space).is_some() {
                    match Self::history_key(item) {
                        Some(k) => k,
                        None => continue,
                    }
                } else {
                    match item.get(if space == Space::Alert { "alert_id" } else { "sk" }) {
                        Some(AttributeValue::S(k)) => k.clone(),
                        _ => continue,
                    }
                };
                if !key.starts_with(prefix) {
                    continue;
                }
                let record = Self::record(space, &key, item)?;
                if record.live(now) {
                    out.push((key, record));
                }
            }
            match page.1 {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The state table's partition of a key: its space and the key's first
/// part (the cluster, `<account>/<cluster>` for another account's, or the
/// credential of an identity record), so no kind of state is one hot
/// partition and a busy cluster never slows another. Alerts waiting for
/// CloudTrail, few and read all together, share one.
fn partition(space: Space, key: &str) -> String {
    match space {
        Space::Pending => space.as_str().to_owned(),
        _ => format!("{}#{}", space.as_str(), key.split('|').next().unwrap_or_default()),
    }
}

/// The one partition every key under `prefix` lives in, if there is one:
/// the prefix must hold the whole first part of its keys.
fn scan_partition(space: Space, prefix: &str) -> Option<String> {
    (space == Space::Pending || prefix.contains('|')).then(|| partition(space, prefix))
}

/// A write's condition expression and its placeholders.
struct Condition {
    expression: String,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Condition {
    fn new(expression: String, values: Vec<(&'static str, AttributeValue)>) -> Self {
        Self { expression, values }
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        let names: HashMap<String, String> = [("#v", "version"), ("#e", "expires_ms")]
            .into_iter()
            .filter(|(placeholder, _)| self.expression.contains(placeholder))
            .map(|(p, a)| (p.to_owned(), a.to_owned()))
            .collect();
        (!names.is_empty()).then_some(names)
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        let values: HashMap<String, AttributeValue> =
            self.values.iter().map(|(p, v)| ((*p).to_owned(), v.clone())).collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Copies what reports filter on beside a history item's full record.
fn flatten_revision(value: &Value, item: &mut Item) {
    for field in ["revised_for", "status", "severity", "recorded_at", "title"] {
        if let Some(v) = value.get(field).and_then(Value::as_str) {
            item.insert(field.to_owned(), s(v));
        }
    }
    if let Some(change) = value.get("status_change") {
        for (field, attr) in [("by", "changed_by"), ("reason", "reason"), ("from", "from_status")] {
            if let Some(v) = change.get(field).and_then(Value::as_str) {
                item.insert(attr.to_owned(), s(v));
            }
        }
    }
}

/// The sparse index of unpublished revisions (the outbox): an alert item
/// carries `outbox` only while its latest revision is unpublished.
pub const OUTBOX_INDEX: &str = "outbox";

/// Copies the fields reports filter on beside the full alert, and marks an
/// unpublished revision for the outbox index.
fn flatten_alert(value: &Value, item: &mut Item) {
    if let Ok(record) = serde_json::from_value::<AlertRecord>(value.clone())
        && record.unpublished()
    {
        let at = record.recorded_at.map_or(0, |t| t.timestamp_millis());
        item.insert("outbox".to_owned(), s("pending"));
        item.insert("outbox_at".to_owned(), n(at));
    }
    let Some(alert) = value.get("alert") else { return };
    for field in ["severity", "cluster", "first_seen", "last_seen", "title", "actor_key", "identity_status", "status"] {
        if let Some(v) = alert.get(field).and_then(Value::as_str) {
            item.insert(field.to_owned(), s(v));
        }
    }
    if let Some(rev) = alert.get("revision").and_then(Value::as_u64) {
        item.insert("revision".to_owned(), n(rev));
    }
    // The person, only where the evidence named one (never a session name).
    if let Some(origin) = alert.pointer("/actor/originating_principal").and_then(Value::as_str) {
        item.insert("originating_principal".to_owned(), s(origin));
    }
    if let Some(approved) = alert.get("approved").and_then(Value::as_bool) {
        item.insert("approved".to_owned(), AttributeValue::Bool(approved));
    }
    for (attr, list, field) in [("namespaces", "resources", "namespace"), ("rules", "signals", "rule")] {
        string_set(alert, list, field, attr, item);
    }
}

/// Sets `attr` to the distinct `field` strings of the objects in `alert[list]`
/// (a string set cannot be empty: none, no attribute).
fn string_set(alert: &Value, list: &str, field: &str, attr: &str, item: &mut Item) {
    let mut values: Vec<String> = alert
        .get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get(field).and_then(Value::as_str).map(str::to_owned))
        .collect();
    values.sort();
    values.dedup();
    if !values.is_empty() {
        item.insert(attr.to_owned(), AttributeValue::Ss(values));
    }
}

impl Store for DynamoStore {
    fn get(&self, space: Space, key: &str, now: DateTime<Utc>) -> Result<Option<Record>, StoreError> {
        Ok(self.handle.block_on(self.read(space, key))?.filter(|r| r.live(now)))
    }

    fn put(
        &self,
        space: Space,
        key: &str,
        value: Document,
        expect: Expect,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.handle.block_on(self.write(space, key, &value, expect, expires_at, now))
    }

    fn get_many(&self, keys: &[(Space, String)], now: DateTime<Utc>) -> Result<Vec<Option<Record>>, StoreError> {
        let records = self.handle.block_on(self.read_many(keys))?;
        Ok(records.into_iter().map(|r| r.filter(|r| r.live(now))).collect())
    }

    fn scan(&self, space: Space, prefix: &str, now: DateTime<Utc>) -> Result<Vec<(String, Record)>, StoreError> {
        self.handle.block_on(self.scan_prefix(space, prefix, now))
    }

    fn read_ahead(
        &self,
        keys: &[(Space, String)],
        scans: &[(Space, String)],
        now: DateTime<Utc>,
    ) -> Result<ReadAhead, StoreError> {
        // The batch and the scans at the same time: one round trip.
        let (records, scanned) = self.handle.block_on(async {
            let scanned = async {
                let mut out = Vec::with_capacity(scans.len());
                for (space, prefix) in scans {
                    out.push(self.scan_prefix(*space, prefix, now).await?);
                }
                Ok::<_, StoreError>(out)
            };
            tokio::join!(self.read_many(keys), scanned)
        });
        let records = records?.into_iter().map(|r| r.filter(|r| r.live(now))).collect();
        Ok(ReadAhead { records, scanned: scanned? })
    }

    fn put_all(&self, puts: &[Put]) -> Result<Vec<u64>, StoreError> {
        self.handle.block_on(async {
            let mut versions = Vec::with_capacity(puts.len());
            for part in puts.chunks(GROUP_LIMIT) {
                versions.extend(match part {
                    [one] => {
                        vec![self.write(one.space, &one.key, &one.value, one.expect, one.expires_at, one.now).await?]
                    }
                    _ => self.write_group(part).await?,
                });
            }
            Ok(versions)
        })
    }

    fn unpublished_alerts(&self, before: DateTime<Utc>, _now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.handle.block_on(async {
            let mut out = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.alerts_table)
                    .index_name(OUTBOX_INDEX)
                    .key_condition_expression("outbox = :pending AND outbox_at < :before")
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":before", n(before.timestamp_millis()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| backend("Query (outbox index)", &self.alerts_table, e))?;
                out.extend(page.items().iter().filter_map(|i| i.get("alert_id")?.as_s().ok().cloned()));
                match page.last_evaluated_key {
                    Some(next) if !next.is_empty() => start = Some(next),
                    _ => return Ok(out),
                }
            }
        })
    }

    fn delete(&self, space: Space, key: &str) -> Result<(), StoreError> {
        self.handle.block_on(async {
            self.client
                .delete_item()
                .table_name(self.table(space))
                .set_key(Some(self.key(space, key)))
                .send()
                .await
                .map_err(|e| backend("DeleteItem", self.table(space), e))?;
            Ok(())
        })
    }
}
