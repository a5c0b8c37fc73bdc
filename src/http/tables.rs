//! `/tables`: create, list, describe, update and delete tables, and the JSON bodies of those
//! endpoints (the node writes them, `ringstore table ...` reads them: one type each).
//!
//! A table request is answered by the node that takes it, from its copy of the catalog
//! (`docs/items.md`): a table created through one node is `CREATING` until every live member
//! has shown it that table, then `ACTIVE`; other nodes know it once gossip reaches them.
//!
//! # Guarantees
//! - Bodies are JSON whatever their content type; a body that does not parse or has a field
//!   this API does not know is `400 bad_json` naming the field.
//! - `PATCH` changes only the settings its body names (`null` resets `r` or `w` to the node's
//!   default); it reads the current settings first, so two concurrent `PATCH`es of different
//!   settings may lose one of them (the later write of the whole settings wins).

use super::error::ApiError;
use super::{HttpState, finish, json_body, read_body};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ringstore_core::catalog::{TableRecord, TableSettings};
use ringstore_core::item::key::KeyAttribute;
use ringstore_core::item::{KeySchema, KeyType};
use ringstore_core::request::{
    ClientOp, ClientReply, ClientRequest, RequestError, TableDescription, TableRequest, TableStatus,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The most names one page of `GET /tables` holds (the core's limit).
pub const MAX_LIST_LIMIT: u32 = 100;

/// One key attribute: `{"name": "user", "type": "S"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAttributeBody {
    /// The attribute's name.
    pub name: String,
    /// `S`, `N` or `B`.
    #[serde(rename = "type")]
    pub key_type: KeyType,
}

/// A key schema: `{"partition": {...}, "sort": {...}}` (`sort` optional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySchemaBody {
    /// The partition key.
    pub partition: KeyAttributeBody,
    /// The sort key, if the table has one.
    #[serde(default)]
    pub sort: Option<KeyAttributeBody>,
}

impl From<&KeySchema> for KeySchemaBody {
    fn from(schema: &KeySchema) -> Self {
        let body = |attribute: &KeyAttribute| KeyAttributeBody {
            name: attribute.name.clone(),
            key_type: attribute.key_type,
        };
        Self {
            partition: body(&schema.partition),
            sort: schema.sort.as_ref().map(body),
        }
    }
}

impl KeySchemaBody {
    /// The core's schema.
    pub fn to_schema(&self) -> KeySchema {
        let schema = KeySchema::partition_only(&self.partition.name, self.partition.key_type);
        match &self.sort {
            Some(sort) => schema.with_sort(&sort.name, sort.key_type),
            None => schema,
        }
    }
}

/// `POST /tables`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTableBody {
    /// The table's name: 3 to 255 of `a-z A-Z 0-9 _ - .`.
    pub name: String,
    /// Its key schema, fixed for its life.
    pub key_schema: KeySchemaBody,
    /// The read quorum of its requests (absent: the node's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<u8>,
    /// The write quorum (absent: the node's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u8>,
    /// Tags, name to value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// `PATCH /tables/{table}`'s body: the settings to change. An absent field keeps its setting;
/// `"r": null` (or `w`) resets it to the node's default; `tags` replaces every tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTableBody {
    /// The new read quorum (`Some(None)`: the node's default).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub r: Option<Option<u8>>,
    /// The new write quorum (`Some(None)`: the node's default).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub w: Option<Option<u8>>,
    /// The new tags (all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// A field that is present (even as `null`) is `Some`; an absent one defaults to `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl UpdateTableBody {
    /// `current` with this body's changes.
    pub fn apply(&self, current: &TableSettings) -> TableSettings {
        TableSettings {
            r: self.r.unwrap_or(current.r),
            w: self.w.unwrap_or(current.w),
            tags: self.tags.clone().unwrap_or_else(|| current.tags.clone()),
        }
    }
}

/// A table's lifecycle, as JSON spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TableStatusBody {
    /// Not every live member has confirmed the table yet.
    Creating,
    /// Every live member has it.
    Active,
    /// Deleted; its data is being removed.
    Deleting,
}

impl From<TableStatus> for TableStatusBody {
    fn from(status: TableStatus) -> Self {
        match status {
            TableStatus::Creating => Self::Creating,
            TableStatus::Active => Self::Active,
            TableStatus::Deleting => Self::Deleting,
        }
    }
}

/// A table's description: what every table endpoint but the list answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDescriptionBody {
    /// The name.
    pub name: String,
    /// The incarnation (`t` and 16 hex digits): a table deleted and created again gets a
    /// new one.
    pub id: String,
    /// The key schema.
    pub key_schema: KeySchemaBody,
    /// `CREATING`, `ACTIVE` or `DELETING`, as the answering node sees it.
    pub status: TableStatusBody,
    /// When it was created, in milliseconds since the Unix epoch (the creating node's clock).
    pub created_ms: u64,
    /// The table's read quorum (`null`: the node's default).
    pub r: Option<u8>,
    /// The table's write quorum (`null`: the node's default).
    pub w: Option<u8>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl From<&TableDescription> for TableDescriptionBody {
    fn from(description: &TableDescription) -> Self {
        let record: &TableRecord = &description.record;
        Self {
            name: record.name.clone(),
            id: record.id.to_string(),
            key_schema: KeySchemaBody::from(&record.schema),
            status: description.status.into(),
            created_ms: record.created.micros / 1000,
            r: record.settings.r,
            w: record.settings.w,
            tags: record.settings.tags.clone(),
        }
    }
}

/// `GET /tables`'s answer: one page of names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableListBody {
    /// The names, in order.
    pub tables: Vec<String>,
    /// The last name when more may follow (pass it as `start_after`); `null` at the end.
    pub last: Option<String>,
}

/// `GET /tables`'s query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many names (1 to 100; default 100).
    pub limit: Option<u32>,
    /// Start after this name (the previous page's `last`).
    pub start_after: Option<String>,
    /// Deadline of the request.
    pub timeout_ms: Option<u64>,
}

/// The query string of the other table endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableQuery {
    /// Deadline of the request.
    pub timeout_ms: Option<u64>,
}

/// `POST /tables`.
pub async fn create(
    State(state): State<Arc<HttpState>>,
    query: Result<Query<TableQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let query = parse_query(query)?;
        let body: CreateTableBody = json_body(&read_body(body, super::MAX_TABLE_BODY_BYTES)?)?;
        let request = TableRequest::Create {
            name: body.name,
            schema: body.key_schema.to_schema(),
            settings: TableSettings {
                r: body.r,
                w: body.w,
                tags: body.tags,
            },
        };
        let description = table_call(&state, request, query.timeout_ms).await?;
        Ok(described(StatusCode::CREATED, &description))
    }
    .await;
    finish(&state, "table", started, outcome)
}

/// `GET /tables`.
pub async fn list(
    State(state): State<Arc<HttpState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let query = parse_query(query)?;
        if let Some(limit) = query.limit
            && !(1..=MAX_LIST_LIMIT).contains(&limit)
        {
            return Err(ApiError::BadQuery {
                detail: format!("limit = {limit} is out of range 1..={MAX_LIST_LIMIT}"),
            });
        }
        let mut request = ClientRequest::new(ClientOp::Table(TableRequest::List {
            start_after: query.start_after,
            limit: query.limit,
        }));
        request.timeout_ms = query.timeout_ms;
        match super::call(&state, request).await? {
            ClientReply::TableList { names, last } => Ok((
                Json(TableListBody {
                    tables: names,
                    last,
                })
                .into_response(),
                "ok",
            )),
            _ => Err(ApiError::MismatchedReply),
        }
    }
    .await;
    finish(&state, "table", started, outcome)
}

/// `GET /tables/{table}`.
pub async fn describe(
    State(state): State<Arc<HttpState>>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<TableQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let name = table_name(name)?;
        let query = parse_query(query)?;
        let description =
            table_call(&state, TableRequest::Describe { name }, query.timeout_ms).await?;
        Ok(described(StatusCode::OK, &description))
    }
    .await;
    finish(&state, "table", started, outcome)
}

/// `DELETE /tables/{table}`.
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<TableQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let name = table_name(name)?;
        let query = parse_query(query)?;
        let description =
            table_call(&state, TableRequest::Delete { name }, query.timeout_ms).await?;
        Ok(described(StatusCode::OK, &description))
    }
    .await;
    finish(&state, "table", started, outcome)
}

/// `PATCH /tables/{table}`.
pub async fn update(
    State(state): State<Arc<HttpState>>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<TableQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let name = table_name(name)?;
        let query = parse_query(query)?;
        let body: UpdateTableBody = json_body(&read_body(body, super::MAX_TABLE_BODY_BYTES)?)?;
        let current = describe_record(&state, &name, query.timeout_ms).await?;
        let settings = body.apply(&current.settings);
        let request = TableRequest::Update { name, settings };
        let description = table_call(&state, request, query.timeout_ms).await?;
        Ok(described(StatusCode::OK, &description))
    }
    .await;
    finish(&state, "table", started, outcome)
}

/// The live table of `name`, as this node's catalog has it (`404 table_not_found` if none).
pub(super) async fn describe_record(
    state: &HttpState,
    name: &str,
    timeout_ms: Option<u64>,
) -> Result<TableRecord, ApiError> {
    let request = TableRequest::Describe {
        name: name.to_string(),
    };
    Ok(table_call(state, request, timeout_ms).await?.record)
}

/// Runs a table request other than a list.
async fn table_call(
    state: &HttpState,
    request: TableRequest,
    timeout_ms: Option<u64>,
) -> Result<TableDescription, ApiError> {
    let mut request = ClientRequest::new(ClientOp::Table(request));
    request.timeout_ms = timeout_ms;
    match super::call(state, request).await? {
        ClientReply::Table(description) => Ok(description),
        _ => Err(ApiError::MismatchedReply),
    }
}

fn described(status: StatusCode, description: &TableDescription) -> (Response, &'static str) {
    let body = TableDescriptionBody::from(description);
    ((status, Json(body)).into_response(), "ok")
}

/// The table name of the path (percent-decoded).
pub(super) fn table_name(name: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    name.map(|Path(name)| name).map_err(|rejection| {
        ApiError::Request(RequestError::InvalidTable {
            message: format!("the path does not name a table: {}", rejection.body_text()),
        })
    })
}

fn parse_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    super::parse_query(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::item::{Stamp, TableId};
    use ringstore_core::version::ActorId;

    // The key schema reads as documented, and types other than S, N, B are refused by name.
    #[test]
    fn create_bodies_parse_as_documented() {
        let body: CreateTableBody = serde_json::from_str(
            r#"{"name": "events", "key_schema": {"partition": {"name": "user", "type": "S"},
                "sort": {"name": "at", "type": "N"}}, "r": 2, "tags": {"team": "a"}}"#,
        )
        .unwrap();
        assert_eq!(
            body.key_schema.to_schema(),
            KeySchema::partition_only("user", KeyType::S).with_sort("at", KeyType::N)
        );
        assert_eq!((body.r, body.w), (Some(2), None));
        let bad = serde_json::from_str::<CreateTableBody>(
            r#"{"name": "t1x", "key_schema": {"partition": {"name": "k", "type": "BOOL"}}}"#,
        )
        .unwrap_err();
        assert!(bad.to_string().contains("unknown variant `BOOL`"), "{bad}");
        let bad = serde_json::from_str::<CreateTableBody>(
            r#"{"name": "t1x", "key_schema": {"partition": {"name": "k", "type": "S"}}, "x": 1}"#,
        )
        .unwrap_err();
        assert!(bad.to_string().contains("unknown field `x`"), "{bad}");
        let missing = serde_json::from_str::<CreateTableBody>(r#"{"name": "t1x"}"#).unwrap_err();
        assert!(missing.to_string().contains("missing field `key_schema`"));
    }

    // A PATCH changes what it names; null resets a quorum; absent keeps it.
    #[test]
    fn patches_change_only_what_they_name() {
        let current = TableSettings {
            r: Some(2),
            w: Some(2),
            tags: BTreeMap::from([("a".to_string(), "1".to_string())]),
        };
        let body: UpdateTableBody = serde_json::from_str(r#"{"r": null, "w": 3}"#).unwrap();
        let settings = body.apply(&current);
        assert_eq!((settings.r, settings.w), (None, Some(3)));
        assert_eq!(settings.tags, current.tags);
        let body: UpdateTableBody = serde_json::from_str(r#"{"tags": {}}"#).unwrap();
        assert_eq!(body.apply(&current).tags, BTreeMap::new());
        assert_eq!(body.apply(&current).r, Some(2));
        // What a client sends for "keep r, reset w" reads back the same.
        let sent = UpdateTableBody {
            r: None,
            w: Some(None),
            tags: None,
        };
        let text = serde_json::to_string(&sent).unwrap();
        assert_eq!(text, r#"{"w":null}"#);
        assert_eq!(
            serde_json::from_str::<UpdateTableBody>(&text).unwrap(),
            sent
        );
    }

    // A description names the table, its id, schema, status, creation time and quorums.
    #[test]
    fn descriptions_carry_what_the_docs_promise() {
        let record = TableRecord {
            name: "events".into(),
            id: TableId(0xabc),
            schema: KeySchema::partition_only("user", KeyType::S),
            created: Stamp {
                micros: 1_700_000_000_123_456,
                logical: 0,
                actor: ActorId(1),
            },
            settings: TableSettings {
                r: Some(2),
                w: None,
                tags: BTreeMap::new(),
            },
            settings_stamp: Stamp::ZERO,
            deleted: None,
        };
        let body = TableDescriptionBody::from(&TableDescription {
            record,
            status: TableStatus::Active,
        });
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "events", "id": "t0000000000000abc",
                "key_schema": {"partition": {"name": "user", "type": "S"}, "sort": null},
                "status": "ACTIVE", "created_ms": 1_700_000_000_123u64, "r": 2, "w": null,
                "tags": {}
            })
        );
    }
}
