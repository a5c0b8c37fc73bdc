//! `/tables/{table}/items/...` and `/tables/{table}/partitions/{partition}`: the items of a
//! table, in DynamoDB's attribute-value JSON ([`super::attribute_json`]), and the JSON bodies
//! of those endpoints (the node writes them, `ringstore item ...` reads them).
//!
//! - `PUT /tables/{t}/items` writes the item in the body (its key is in its key attributes);
//! - `GET`, `PATCH` (update) and `DELETE /tables/{t}/items/{pk}[/{sk}]` address one item by
//!   its key values as text in the path ([`key_value_from_text`]);
//! - `GET /tables/{t}/partitions/{pk}` queries a partition in sort-key order.
//!
//! Every request first resolves the table's name to its incarnation and key schema with a
//! `Describe` through this node's core (a catalog read, answered at once from memory; no
//! peer is asked), then runs the item operation with them.
//!
//! # Guarantees
//! - Bad input is a `400` naming the problem before anything is written: JSON that does not
//!   parse (`bad_json`), a value that is not DynamoDB JSON or an item missing a key attribute
//!   or holding one of the wrong type (`invalid_item`), a key in the path that does not fit the
//!   schema (`bad_key`), a query string that does not parse or mixes exclusive options
//!   (`bad_query`).
//! - A table that does not exist (or was deleted) is `404 table_not_found`; an item that does
//!   not exist is `404 not_found`; a `?condition=` that does not hold is `412
//!   condition_failed`.
//!
//! # Known limits
//! - Updates set, remove, add to and delete from top-level attributes only; nested paths,
//!   expressions and conditions beyond `exists`/`not_exists` come with the DynamoDB API.
//! - The table is resolved by the node that takes the request: right after a creation, a node
//!   that has not heard of the table yet answers `404 table_not_found` (wait for `ACTIVE`).

use super::attribute_json::{JsonItem, value_from_json};
use super::error::ApiError;
use super::tables::{describe_record, table_name};
use super::{HttpState, MAX_TABLE_BODY_BYTES, call, finish, json_body, parse_query, read_body};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ringstore_core::catalog::TableRecord;
use ringstore_core::item::key::KeyAttribute;
use ringstore_core::item::limits::KeyPart;
use ringstore_core::item::update::{SetValue, UpdateOperand};
use ringstore_core::item::{
    AttributePath, Condition, Item, ItemKey, ItemUpdate, KeySchema, KeyType, KeyValue, Number,
    PrimaryKey, UpdateAction,
};
use ringstore_core::request::{
    ClientOp, ClientReply, ClientRequest, ItemAction, ItemRequest, QueryRequest, RequestError,
    ScanRequest, SortKeyCondition, TableRef,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Binary key values in paths and query strings: base64url, padding optional on input,
/// written without.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A condition a write may ask for with `?condition=`, on the item's existence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemCondition {
    /// Write only if an item with the key exists (`attribute_exists` of the partition key).
    Exists,
    /// Write only if none does (create-once: `attribute_not_exists` of the partition key).
    NotExists,
}

impl ItemCondition {
    /// The core's condition for a table with `schema`.
    pub fn to_condition(self, schema: &KeySchema) -> Condition {
        let path = AttributePath::attribute_named(&schema.partition.name);
        match self {
            ItemCondition::Exists => Condition::Exists(path),
            ItemCondition::NotExists => Condition::NotExists(path),
        }
    }

    /// The query-string spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemCondition::Exists => "exists",
            ItemCondition::NotExists => "not_exists",
        }
    }
}

impl fmt::Display for ItemCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path of one item: the table and the key values as text.
#[derive(Debug, Deserialize)]
pub struct ItemPath {
    /// The table's name.
    pub table: String,
    /// The partition key's value.
    pub partition: String,
    /// The sort key's value (the table has a sort key).
    pub sort: Option<String>,
}

/// The query string of `GET /tables/{t}/items/...`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemReadQuery {
    /// Read quorum (an eventually consistent read).
    pub r: Option<u8>,
    /// Deadline of the request.
    pub timeout_ms: Option<u64>,
    /// Read a majority of the key's home replicas.
    #[serde(default)]
    pub consistent: bool,
}

/// The query string of the item writes (`PUT`, `PATCH`, `DELETE`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemWriteQuery {
    /// Write quorum.
    pub w: Option<u8>,
    /// Deadline of the request.
    pub timeout_ms: Option<u64>,
    /// Write only if the item exists, or only if it does not.
    pub condition: Option<ItemCondition>,
}

/// The query string of `GET /tables/{t}/partitions/{pk}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionQuery {
    /// Read quorum.
    pub r: Option<u8>,
    /// Deadline of the request.
    pub timeout_ms: Option<u64>,
    /// Read a majority of the partition's home replicas.
    #[serde(default)]
    pub consistent: bool,
    /// Smallest sort key (included).
    pub from: Option<String>,
    /// Largest sort key (included).
    pub to: Option<String>,
    /// Sort keys that begin with this (string and binary sort keys).
    pub begins_with: Option<String>,
    /// Descending sort-key order.
    #[serde(default)]
    pub reverse: bool,
    /// At most this many items.
    pub limit: Option<u32>,
    /// Continue after this sort key (the previous page's `last`).
    pub start_after: Option<String>,
}

/// `GET /tables/{t}/items`'s query string: a scan.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanQuery {
    /// Read quorum.
    pub r: Option<u8>,
    /// Deadline of the request.
    pub timeout_ms: Option<u64>,
    /// Read a majority of each range's home replicas.
    #[serde(default)]
    pub consistent: bool,
    /// Which segment (0-based; default 0).
    pub segment: Option<u32>,
    /// How many segments the table is cut into (default 1: the whole table).
    pub total_segments: Option<u32>,
    /// At most this many items.
    pub limit: Option<u32>,
    /// Continue after this item: its partition key, as text (the previous page's
    /// `last.partition`).
    pub start_after: Option<String>,
    /// With `start_after`, the item's sort key (`last.sort`).
    pub start_after_sort: Option<String>,
}

/// The key of a scan page's last item, as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastKeyBody {
    /// The partition key.
    pub partition: String,
    /// The sort key, when the table has one.
    pub sort: Option<String>,
}

/// A page of a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPageBody {
    /// The items, in ring order.
    pub items: Vec<JsonItem>,
    /// How many items were read for this page.
    pub scanned: u32,
    /// The last item's key when more may follow (pass it as `start_after` and
    /// `start_after_sort`); `null` at the segment's end.
    pub last: Option<LastKeyBody>,
}

/// `PATCH /tables/{t}/items/...`'s body: what to change, by top-level attribute name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateItemBody {
    /// Attributes to set, to DynamoDB JSON values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, serde_json::Value>,
    /// Attributes to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Numbers to add to number attributes, or elements to add to set attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, serde_json::Value>,
    /// Elements to delete from set attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delete: BTreeMap<String, serde_json::Value>,
}

impl UpdateItemBody {
    /// The core's update: every action on a top-level attribute.
    pub fn to_update(&self) -> Result<ItemUpdate, ApiError> {
        let mut actions = Vec::new();
        for (name, json) in &self.set {
            let value = value_from_json(name, json)?;
            actions.push(UpdateAction::Set {
                path: AttributePath::attribute_named(name),
                value: SetValue::Operand(UpdateOperand::Value(value)),
            });
        }
        for name in &self.remove {
            actions.push(UpdateAction::Remove {
                path: AttributePath::attribute_named(name),
            });
        }
        for (name, json) in &self.add {
            actions.push(UpdateAction::Add {
                path: AttributePath::attribute_named(name),
                value: value_from_json(name, json)?,
            });
        }
        for (name, json) in &self.delete {
            actions.push(UpdateAction::Delete {
                path: AttributePath::attribute_named(name),
                value: value_from_json(name, json)?,
            });
        }
        Ok(ItemUpdate { actions })
    }
}

/// `DELETE /tables/{t}/items/...`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedBody {
    /// The item the delete removed, as the coordinator saw it (`null`: none).
    pub old: Option<JsonItem>,
}

/// A page of a partition query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryPageBody {
    /// The items, in the query's order.
    pub items: Vec<JsonItem>,
    /// How many items were read for this page.
    pub scanned: u32,
    /// The sort key of the last item, as text, when more may follow (pass it as
    /// `start_after`); `null` at the end.
    pub last: Option<String>,
}

/// `PUT /tables/{table}/items`.
pub async fn put(
    State(state): State<Arc<HttpState>>,
    table: Result<Path<String>, PathRejection>,
    query: Result<Query<ItemWriteQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let table = table_name(table)?;
        let query = parse_query(query)?;
        let body = read_body(body, MAX_TABLE_BODY_BYTES)?;
        let json: serde_json::Value = json_body(&body)?;
        let item = super::attribute_json::item_from_json(&json)?;
        let record = describe_record(&state, &table, query.timeout_ms).await?;
        let key = record
            .schema
            .key_of(&item)
            .map_err(|e| ApiError::Request(e.into()))?;
        let condition = query.condition.map(|c| c.to_condition(&record.schema));
        let action = ItemAction::Put { item, condition };
        let mut request = item_request(&record, key, action);
        request.w = query.w;
        request.timeout_ms = query.timeout_ms;
        let (_, new) = written(call(&state, request).await, query.condition)?;
        Ok((Json(new.map(JsonItem)).into_response(), "ok"))
    }
    .await;
    finish(&state, "put_item", started, outcome)
}

/// `GET /tables/{table}/items/{partition}[/{sort}]`.
pub async fn get(
    State(state): State<Arc<HttpState>>,
    path: Result<Path<ItemPath>, PathRejection>,
    query: Result<Query<ItemReadQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let path = item_path(path)?;
        let query = parse_query(query)?;
        let record = describe_record(&state, &path.table, query.timeout_ms).await?;
        let key = key_from_path(&record.schema, &path)?;
        let action = ItemAction::Get {
            consistent: query.consistent,
        };
        let mut request = item_request(&record, key, action);
        request.r = query.r;
        request.timeout_ms = query.timeout_ms;
        match call(&state, request).await? {
            ClientReply::Item(Some(item)) => Ok((Json(JsonItem(item)).into_response(), "ok")),
            ClientReply::Item(None) => Err(ApiError::ItemNotFound { table: path.table }),
            _ => Err(ApiError::MismatchedReply),
        }
    }
    .await;
    finish(&state, "get_item", started, outcome)
}

/// `PATCH /tables/{table}/items/{partition}[/{sort}]`.
pub async fn update(
    State(state): State<Arc<HttpState>>,
    path: Result<Path<ItemPath>, PathRejection>,
    query: Result<Query<ItemWriteQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let path = item_path(path)?;
        let query = parse_query(query)?;
        let body: UpdateItemBody = json_body(&read_body(body, MAX_TABLE_BODY_BYTES)?)?;
        let update = body.to_update()?;
        let record = describe_record(&state, &path.table, query.timeout_ms).await?;
        let key = key_from_path(&record.schema, &path)?;
        let condition = query.condition.map(|c| c.to_condition(&record.schema));
        let action = ItemAction::Update { update, condition };
        let mut request = item_request(&record, key, action);
        request.w = query.w;
        request.timeout_ms = query.timeout_ms;
        let (_, new) = written(call(&state, request).await, query.condition)?;
        Ok((Json(new.map(JsonItem)).into_response(), "ok"))
    }
    .await;
    finish(&state, "update_item", started, outcome)
}

/// `DELETE /tables/{table}/items/{partition}[/{sort}]`.
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    path: Result<Path<ItemPath>, PathRejection>,
    query: Result<Query<ItemWriteQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let path = item_path(path)?;
        let query = parse_query(query)?;
        let record = describe_record(&state, &path.table, query.timeout_ms).await?;
        let key = key_from_path(&record.schema, &path)?;
        let condition = query.condition.map(|c| c.to_condition(&record.schema));
        let mut request = item_request(&record, key, ItemAction::Delete { condition });
        request.w = query.w;
        request.timeout_ms = query.timeout_ms;
        let (old, _) = written(call(&state, request).await, query.condition)?;
        let body = DeletedBody {
            old: old.map(JsonItem),
        };
        Ok((Json(body).into_response(), "ok"))
    }
    .await;
    finish(&state, "delete_item", started, outcome)
}

/// `GET /tables/{table}/partitions/{partition}`.
pub async fn query(
    State(state): State<Arc<HttpState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<PartitionQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let (table, partition) =
            path.map(|Path(p)| p)
                .map_err(|rejection| ApiError::BadItemKey {
                    detail: rejection.body_text(),
                })?;
        let query = parse_query(query)?;
        let record = describe_record(&state, &table, query.timeout_ms).await?;
        let request = query_request(&record, &partition, &query)?;
        match call(&state, request).await? {
            ClientReply::Items {
                items,
                scanned,
                last,
            } => {
                let body = QueryPageBody {
                    items: items.into_iter().map(JsonItem).collect(),
                    scanned,
                    // A partition of a table without a sort key holds one item: nothing
                    // follows it.
                    last: last
                        .and_then(|key| key.sort)
                        .map(|sort| key_value_text(&sort)),
                };
                Ok((Json(body).into_response(), "ok"))
            }
            _ => Err(ApiError::MismatchedReply),
        }
    }
    .await;
    finish(&state, "query", started, outcome)
}

/// `GET /tables/{table}/items`: a page of a scan of one segment.
pub async fn scan(
    State(state): State<Arc<HttpState>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ScanQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let table = path
            .map(|Path(p)| p)
            .map_err(|rejection| ApiError::BadItemKey {
                detail: rejection.body_text(),
            })?;
        let query = parse_query(query)?;
        let record = describe_record(&state, &table, query.timeout_ms).await?;
        let start_after = match &query.start_after {
            None => None,
            Some(partition) => {
                let path = ItemPath {
                    table: table.clone(),
                    partition: partition.clone(),
                    sort: query.start_after_sort.clone(),
                };
                Some(key_from_path(&record.schema, &path)?)
            }
        };
        let mut request = ClientRequest::new(ClientOp::Scan(Box::new(ScanRequest {
            table: TableRef {
                name: record.name.clone(),
                schema: record.schema.clone(),
            },
            table_id: record.id,
            segment: query.segment.unwrap_or(0),
            total_segments: query.total_segments.unwrap_or(1),
            limit: query.limit,
            start_after,
            consistent: query.consistent,
            filter: None,
        })));
        request.r = query.r;
        request.timeout_ms = query.timeout_ms;
        match call(&state, request).await? {
            ClientReply::Items {
                items,
                scanned,
                last,
            } => {
                let body = ScanPageBody {
                    items: items.into_iter().map(JsonItem).collect(),
                    scanned,
                    last: last.map(|key| LastKeyBody {
                        partition: key_value_text(&key.partition),
                        sort: key.sort.as_ref().map(key_value_text),
                    }),
                };
                Ok((Json(body).into_response(), "ok"))
            }
            _ => Err(ApiError::MismatchedReply),
        }
    }
    .await;
    finish(&state, "scan", started, outcome)
}

/// The item operation on `key` of the table `record`.
fn item_request(record: &TableRecord, key: PrimaryKey, action: ItemAction) -> ClientRequest {
    ClientRequest::new(ClientOp::Item(Box::new(ItemRequest {
        table: TableRef {
            name: record.name.clone(),
            schema: record.schema.clone(),
        },
        key: ItemKey {
            table: record.id,
            key,
        },
        action,
    })))
}

/// The item before and after a write, or its error (a failed `?condition=` named as such).
fn written(
    result: Result<ClientReply, ApiError>,
    condition: Option<ItemCondition>,
) -> Result<(Option<Item>, Option<Item>), ApiError> {
    match result {
        Ok(ClientReply::ItemWritten { old, new, .. }) => Ok((old, new)),
        Ok(_) => Err(ApiError::MismatchedReply),
        Err(ApiError::Request(RequestError::ConditionFailed { item })) => match condition {
            Some(condition) => Err(ApiError::ConditionFailed {
                condition,
                exists: item.is_some(),
            }),
            None => Err(ApiError::Request(RequestError::ConditionFailed { item })),
        },
        Err(error) => Err(error),
    }
}

fn item_path(path: Result<Path<ItemPath>, PathRejection>) -> Result<ItemPath, ApiError> {
    path.map(|Path(path)| path)
        .map_err(|rejection| ApiError::BadItemKey {
            detail: rejection.body_text(),
        })
}

/// The primary key the path names, checked against the schema (types, sizes, a sort key
/// exactly when the table has one).
pub fn key_from_path(schema: &KeySchema, path: &ItemPath) -> Result<PrimaryKey, ApiError> {
    let bad = |detail: String| ApiError::BadItemKey { detail };
    let partition =
        key_value_from_text(KeyPart::Partition, &schema.partition, &path.partition).map_err(bad)?;
    let sort = match (&schema.sort, &path.sort) {
        (Some(attribute), Some(text)) => {
            Some(key_value_from_text(KeyPart::Sort, attribute, text).map_err(bad)?)
        }
        (None, None) => None,
        (Some(attribute), None) => {
            return Err(bad(format!(
                "table `{}` has the sort key `{}` ({}): address an item as \
                 /tables/{}/items/{{partition}}/{{sort}}, or query the partition at \
                 /tables/{}/partitions/{{partition}}",
                path.table,
                attribute.name,
                attribute.key_type.type_name(),
                path.table,
                path.table
            )));
        }
        (None, Some(_)) => {
            return Err(bad(format!(
                "table `{}` has no sort key: address an item as /tables/{}/items/{{partition}}",
                path.table, path.table
            )));
        }
    };
    let key = PrimaryKey { partition, sort };
    checked_key(schema, key).map_err(bad)
}

/// `key` if its values fit the schema's limits (sizes), else the reason.
fn checked_key(schema: &KeySchema, key: PrimaryKey) -> Result<PrimaryKey, String> {
    let attributes = schema.key_attributes(&key).into_iter().collect();
    schema
        .key_from_attributes(&attributes)
        .map_err(|e| e.to_string())
}

/// A key value from its text in a path or query string: `S` as it is, `N` parsed as a
/// number, `B` as base64url. The error names the key attribute and its type.
pub fn key_value_from_text(
    part: KeyPart,
    attribute: &KeyAttribute,
    text: &str,
) -> Result<KeyValue, String> {
    match attribute.key_type {
        KeyType::S => Ok(KeyValue::S(text.to_string())),
        KeyType::N => Number::parse(text)
            .map(KeyValue::N)
            .map_err(|e| format!("the {part} `{}` is a number (N): {e}", attribute.name)),
        KeyType::B => BASE64URL.decode(text).map(KeyValue::B).map_err(|e| {
            format!(
                "the {part} `{}` is binary (B), written base64url: {e}",
                attribute.name
            )
        }),
    }
}

/// A key value as text, as [`key_value_from_text`] reads it.
pub fn key_value_text(value: &KeyValue) -> String {
    match value {
        KeyValue::S(text) => text.clone(),
        KeyValue::N(number) => number.to_string(),
        KeyValue::B(bytes) => BASE64URL.encode(bytes),
    }
}

/// The core's query for a partition query string.
pub fn query_request(
    record: &TableRecord,
    partition: &str,
    query: &PartitionQuery,
) -> Result<ClientRequest, ApiError> {
    let schema = &record.schema;
    let bad_query = |detail: String| ApiError::BadQuery { detail };
    let partition = key_value_from_text(KeyPart::Partition, &schema.partition, partition)
        .map_err(|detail| ApiError::BadItemKey { detail })?;
    let ranged = query.from.is_some() || query.to.is_some();
    if ranged && query.begins_with.is_some() {
        return Err(bad_query(
            "begins_with cannot be combined with from or to".to_string(),
        ));
    }
    if query.limit == Some(0) {
        return Err(bad_query("limit must be at least 1".to_string()));
    }
    let sort_attribute = schema.sort.as_ref();
    let sort_value = |name: &str, text: &Option<String>| -> Result<Option<KeyValue>, ApiError> {
        let Some(text) = text else {
            return Ok(None);
        };
        let Some(attribute) = sort_attribute else {
            return Err(bad_query(format!(
                "{name}: table `{}` has no sort key",
                record.name
            )));
        };
        key_value_from_text(KeyPart::Sort, attribute, text)
            .map(Some)
            .map_err(|detail| bad_query(format!("{name}: {detail}")))
    };
    let from = sort_value("from", &query.from)?;
    let to = sort_value("to", &query.to)?;
    let begins_with = sort_value("begins_with", &query.begins_with)?;
    let start_after = sort_value("start_after", &query.start_after)?;
    if begins_with.is_some() && sort_attribute.is_some_and(|a| a.key_type == KeyType::N) {
        return Err(bad_query(
            "begins_with applies to string and binary sort keys, not numbers".to_string(),
        ));
    }
    let sort = match (from, to, begins_with) {
        (Some(from), Some(to), _) => Some(SortKeyCondition::Between(from, to)),
        (Some(from), None, _) => Some(SortKeyCondition::Ge(from)),
        (None, Some(to), _) => Some(SortKeyCondition::Le(to)),
        (None, None, Some(prefix)) => Some(SortKeyCondition::BeginsWith(prefix)),
        (None, None, None) => None,
    };
    let start_after = start_after.map(|sort| PrimaryKey {
        partition: partition.clone(),
        sort: Some(sort),
    });
    let mut request = ClientRequest::new(ClientOp::Query(Box::new(QueryRequest {
        table: TableRef {
            name: record.name.clone(),
            schema: schema.clone(),
        },
        table_id: record.id,
        partition,
        sort,
        forward: !query.reverse,
        limit: query.limit,
        start_after,
        consistent: query.consistent,
        filter: None,
    })));
    request.r = query.r;
    request.timeout_ms = query.timeout_ms;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::catalog::TableSettings;
    use ringstore_core::item::{Stamp, TableId};

    fn schema() -> KeySchema {
        KeySchema::partition_only("user", KeyType::S).with_sort("at", KeyType::N)
    }

    fn record(schema: KeySchema) -> TableRecord {
        TableRecord {
            name: "events".into(),
            id: TableId(7),
            schema,
            created: Stamp::ZERO,
            settings: TableSettings::default(),
            settings_stamp: Stamp::ZERO,
            deleted: None,
        }
    }

    fn path(partition: &str, sort: Option<&str>) -> ItemPath {
        ItemPath {
            table: "events".into(),
            partition: partition.into(),
            sort: sort.map(str::to_string),
        }
    }

    fn n(text: &str) -> KeyValue {
        KeyValue::N(Number::parse(text).unwrap())
    }

    fn refusal(result: Result<impl fmt::Debug, ApiError>) -> (u16, &'static str, String) {
        let error = result.unwrap_err();
        (error.status().as_u16(), error.kind(), error.to_string())
    }

    // Path keys parse by the schema's types; each misfit is a 400 naming the key attribute.
    #[test]
    fn path_keys_parse_by_the_schema() {
        let key = key_from_path(&schema(), &path("u1", Some("-1.50"))).unwrap();
        assert_eq!(key.partition, KeyValue::S("u1".into()));
        assert_eq!(key.sort, Some(n("-1.5")));
        let cases = [
            (path("u1", Some("abc")), "the sort key `at` is a number (N)"),
            (path("u1", None), "has the sort key `at` (N)"),
            (path("", Some("1")), "the partition key `user` is 0 bytes"),
            (path("u1", Some("1E+300")), "magnitude above the largest"),
        ];
        for (path, expected) in cases {
            let (status, kind, detail) = refusal(key_from_path(&schema(), &path));
            assert_eq!((status, kind), (400, "bad_key"));
            assert!(detail.contains(expected), "`{detail}` lacks `{expected}`");
        }
        let only = KeySchema::partition_only("id", KeyType::B);
        let key = key_from_path(&only, &path("AAE", None)).unwrap();
        assert_eq!(key.partition, KeyValue::B(vec![0, 1]));
        let (_, _, detail) = refusal(key_from_path(&only, &path("AAE", Some("x"))));
        assert!(detail.contains("has no sort key"), "{detail}");
        let (_, _, detail) = refusal(key_from_path(&only, &path("*", None)));
        assert!(
            detail.contains("`id` is binary (B), written base64url"),
            "{detail}"
        );
    }

    // Key values written as text read back as themselves.
    #[test]
    fn key_text_round_trips() {
        let attribute = |key_type| KeyAttribute {
            name: "k".into(),
            key_type,
        };
        for value in [
            KeyValue::S("a/b c".into()),
            n("12345678901234567890123456789012345678"),
            n("-0.001"),
            KeyValue::B(vec![0xff, 0, 0xfe]),
        ] {
            let text = key_value_text(&value);
            let back = key_value_from_text(KeyPart::Sort, &attribute(value.key_type()), &text);
            assert_eq!(back, Ok(value));
        }
    }

    // A partition query string becomes the core's query; exclusive or misfit options are
    // refused by name.
    #[test]
    fn partition_queries_parse_and_refuse_by_name() {
        let record = record(schema());
        let query = PartitionQuery {
            from: Some("1".into()),
            to: Some("5".into()),
            reverse: true,
            limit: Some(2),
            start_after: Some("4".into()),
            ..PartitionQuery::default()
        };
        let request = query_request(&record, "u1", &query).unwrap();
        let ClientOp::Query(query) = request.op else {
            panic!("a query")
        };
        assert_eq!(query.sort, Some(SortKeyCondition::Between(n("1"), n("5"))));
        assert!(!query.forward);
        assert_eq!(query.limit, Some(2));
        assert_eq!(query.start_after.unwrap().sort, Some(n("4")));
        assert_eq!(query.table_id, TableId(7));
        let refused = [
            (
                PartitionQuery {
                    from: Some("1".into()),
                    begins_with: Some("a".into()),
                    ..PartitionQuery::default()
                },
                "begins_with cannot be combined",
            ),
            (
                PartitionQuery {
                    begins_with: Some("1".into()),
                    ..PartitionQuery::default()
                },
                "not numbers",
            ),
            (
                PartitionQuery {
                    to: Some("x".into()),
                    ..PartitionQuery::default()
                },
                "to: the sort key `at` is a number (N)",
            ),
            (
                PartitionQuery {
                    limit: Some(0),
                    ..PartitionQuery::default()
                },
                "limit must be at least 1",
            ),
        ];
        for (query, expected) in refused {
            let (status, kind, detail) = refusal(query_request(&record, "u1", &query));
            assert_eq!((status, kind), (400, "bad_query"));
            assert!(detail.contains(expected), "`{detail}` lacks `{expected}`");
        }
        let only = self::record(KeySchema::partition_only("user", KeyType::S));
        let query = PartitionQuery {
            from: Some("a".into()),
            ..PartitionQuery::default()
        };
        let (_, _, detail) = refusal(query_request(&only, "u1", &query));
        assert!(detail.contains("has no sort key"), "{detail}");
    }

    // An update body becomes top-level actions; a bad value is refused naming the attribute.
    #[test]
    fn update_bodies_become_actions() {
        let body: UpdateItemBody = serde_json::from_str(
            r#"{"set": {"name": {"S": "x"}}, "remove": ["old"], "add": {"n": {"N": "1"}},
                "delete": {"tags": {"SS": ["a"]}}}"#,
        )
        .unwrap();
        assert_eq!(body.to_update().unwrap().actions.len(), 4);
        let body: UpdateItemBody =
            serde_json::from_str(r#"{"set": {"name": {"N": "one"}}}"#).unwrap();
        let (status, kind, detail) = refusal(body.to_update());
        assert_eq!((status, kind), (400, "invalid_item"));
        assert!(detail.contains("attribute `name`"), "{detail}");
        let unknown = serde_json::from_str::<UpdateItemBody>(r#"{"sett": {}}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown field `sett`"));
    }

    // A failed ?condition= is a 412 saying which condition and why; without one the core's
    // error stays.
    #[test]
    fn failed_conditions_are_412_naming_the_condition() {
        let failed = || {
            Err(ApiError::Request(RequestError::ConditionFailed {
                item: None,
            }))
        };
        let (status, kind, detail) = refusal(written(failed(), Some(ItemCondition::Exists)));
        assert_eq!((status, kind), (412, "condition_failed"));
        assert!(
            detail.contains("condition exists failed: no item"),
            "{detail}"
        );
        let (status, _, _) = refusal(written(failed(), None));
        assert_eq!(status, 412);
    }
}
