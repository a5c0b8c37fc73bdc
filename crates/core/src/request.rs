//! Client requests and their answers: what a client asks any node, and what it gets back.
//!
//! These types are shared by every front end (HTTP, CLI, the native client, the simulator's
//! clients) and travel between nodes when a node forwards a request to a key's coordinator.
//!
//! # Invariants
//! - A [`RequestError`] always says what to do about it: which limit was passed, or for a quorum
//!   failure how many replicas answered of how many needed, and which were tried.

use crate::NodeId;
use crate::catalog::{CatalogError, TableRecord, TableSettings};
use crate::item::key::partition_prefix;
use crate::item::{
    Condition, Item, ItemError, ItemKey, ItemUpdate, KeySchema, KeyValue, PrimaryKey, Stamp,
    TableId, UpdateError,
};
use crate::version::{CausalContext, Dot};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One client operation on one key. New variants go at the end: the variant's index is its
/// wire tag in both protocols.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOp {
    /// Read the key: its live versions and their context.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Write a value that supersedes what `context` saw (empty context: a blind write).
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
        /// The context of the read this write follows.
        context: CausalContext,
    },
    /// Delete what `context` saw, by writing a tombstone.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// The context of the read this delete follows.
        context: CausalContext,
    },
    /// Write a value that supersedes every version the coordinator's own replica holds: the
    /// coordinator takes its copy's context, as if the client had read at R=1 from it just
    /// before. This is the blind write of Cassandra and DynamoDB users, without
    /// last-writer-wins' silent loss: versions the coordinator has not seen yet (a concurrent
    /// write still in flight to it) stay as siblings.
    Overwrite {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// An item operation of a table (`docs/items.md`); boxed, as it is much larger than the
    /// key-value operations.
    Item(Box<ItemRequest>),
    /// A table operation: the catalog, answered by the node that takes it.
    Table(TableRequest),
    /// A query of one partition (`docs/items.md`); boxed like items.
    Query(Box<QueryRequest>),
    /// Several item operations at once (BatchGetItem, BatchWriteItem): each item atomic, the
    /// batch not.
    Batch(Box<BatchRequest>),
    /// A scan of one segment of a table, a page at a time; boxed like items.
    Scan(Box<ScanRequest>),
}

impl ClientOp {
    /// The storage key the operation is about (an item's is its encoded [`ItemKey`]); `None`
    /// for a table operation, which has none.
    pub fn key(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            ClientOp::Get { key }
            | ClientOp::Put { key, .. }
            | ClientOp::Overwrite { key, .. }
            | ClientOp::Delete { key, .. } => Some(Cow::Borrowed(key)),
            ClientOp::Item(request) => Some(Cow::Owned(request.key.encode())),
            ClientOp::Table(_) | ClientOp::Batch(_) | ClientOp::Scan(_) => None,
            // A partition's items all place by its prefix.
            ClientOp::Query(query) => Some(Cow::Owned(partition_prefix(
                query.table_id,
                &query.partition,
            ))),
        }
    }
}

/// A scan: every item of a table in one of `total_segments` equal slices of the ring, in ring
/// order (not key order), a page at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// The table, as the node that took the request resolved it.
    pub table: TableRef,
    /// The table's incarnation.
    pub table_id: TableId,
    /// Which slice (0-based, below `total_segments`).
    pub segment: u32,
    /// How many slices the ring is cut into (1 to 1,000,000, as DynamoDB).
    pub total_segments: u32,
    /// At most this many items are evaluated (before the filter).
    pub limit: Option<u32>,
    /// Continue after this item (the previous page's `last`).
    pub start_after: Option<PrimaryKey>,
    /// Read a majority of each range's home replicas.
    pub consistent: bool,
    /// Keep only the items that satisfy this (after `limit`).
    pub filter: Option<Condition>,
}

/// The most gets one batch holds (DynamoDB's BatchGetItem).
pub const MAX_BATCH_GETS: usize = 100;

/// The most writes one batch holds (DynamoDB's BatchWriteItem).
pub const MAX_BATCH_WRITES: usize = 25;

/// A batch: gets only (at most [`MAX_BATCH_GETS`]) or unconditional puts and deletes only (at
/// most [`MAX_BATCH_WRITES`]), on any tables, no key twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// The operations.
    pub items: Vec<ItemRequest>,
}

/// How one operation of a batch ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchOutcome {
    /// A get found this (`None`: no such item).
    Read(Option<Item>),
    /// A put or delete was acknowledged.
    Written,
    /// It failed: the client should retry it (DynamoDB's `UnprocessedItems`/`UnprocessedKeys`).
    Unprocessed(RequestError),
}

/// A condition on the sort key of a query (DynamoDB's KeyConditionExpression, after the
/// partition key's equality).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKeyCondition {
    /// `sk = v`.
    Eq(KeyValue),
    /// `sk < v`.
    Lt(KeyValue),
    /// `sk <= v`.
    Le(KeyValue),
    /// `sk > v`.
    Gt(KeyValue),
    /// `sk >= v`.
    Ge(KeyValue),
    /// `sk BETWEEN a AND b` (both included).
    Between(KeyValue, KeyValue),
    /// `begins_with(sk, prefix)`, for string and binary sort keys.
    BeginsWith(KeyValue),
}

/// A query: the items of one partition, in sort-key order, a page at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// The table, as the node that took the request resolved it.
    pub table: TableRef,
    /// The table's incarnation.
    pub table_id: TableId,
    /// The partition key's value.
    pub partition: KeyValue,
    /// Which sort keys (`None`: the whole partition).
    pub sort: Option<SortKeyCondition>,
    /// Ascending sort-key order (`false`: descending).
    pub forward: bool,
    /// At most this many items are evaluated (before the filter); `None`: as many as fit the
    /// page.
    pub limit: Option<u32>,
    /// Continue after this item (the previous page's `last`).
    pub start_after: Option<PrimaryKey>,
    /// Read a majority of the partition's home replicas (as a consistent GetItem).
    pub consistent: bool,
    /// Keep only the items that satisfy this (applied after `limit`, as DynamoDB does).
    pub filter: Option<Condition>,
}

/// A table operation (CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableRequest {
    /// Create a table (a new incarnation, empty).
    Create {
        /// Its name (DynamoDB's rule: 3 to 255 of `a-z A-Z 0-9 _ - .`).
        name: String,
        /// Its key schema, fixed for its life.
        schema: KeySchema,
        /// Its settings.
        settings: TableSettings,
    },
    /// Describe the live table of a name.
    Describe {
        /// The name.
        name: String,
    },
    /// List live tables by name, in pages.
    List {
        /// Start after this name (the previous page's `last`).
        start_after: Option<String>,
        /// At most this many names (1 to 100; `None`: 100).
        limit: Option<u32>,
    },
    /// Delete a table and, on every node, its data.
    Delete {
        /// The name.
        name: String,
    },
    /// Replace a table's settings.
    Update {
        /// The name.
        name: String,
        /// The new settings.
        settings: TableSettings,
    },
}

/// A table's lifecycle as the answering node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableStatus {
    /// Created; not every live member has confirmed it yet.
    Creating,
    /// Every live member has it.
    Active,
    /// Deleted; its data is being removed.
    Deleting,
}

/// What DescribeTable (and CreateTable, DeleteTable, UpdateTable) answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDescription {
    /// The catalog's record.
    pub record: TableRecord,
    /// Its status.
    pub status: TableStatus,
}

/// The table an item operation is on, as the node that took the request resolved its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRef {
    /// The table's name.
    pub name: String,
    /// Its key schema.
    pub schema: KeySchema,
}

/// One item operation: which item, and what to do with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRequest {
    /// The table.
    pub table: TableRef,
    /// The item's address (its table id and primary key).
    pub key: ItemKey,
    /// What to do.
    pub action: ItemAction,
}

/// What an item operation does. New variants go at the end (wire tags).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemAction {
    /// GetItem.
    Get {
        /// Read a strict quorum of the key's home replicas (no fallbacks), with read repair;
        /// otherwise R of whichever replicas answer.
        consistent: bool,
    },
    /// PutItem: replace the item (its key attributes must match the request's key).
    Put {
        /// The new item.
        item: Item,
        /// What the current item must satisfy.
        condition: Option<Condition>,
    },
    /// UpdateItem: change the attributes the update names (creating the item if needed).
    Update {
        /// The actions.
        update: ItemUpdate,
        /// What the current item must satisfy.
        condition: Option<Condition>,
    },
    /// DeleteItem.
    Delete {
        /// What the current item must satisfy.
        condition: Option<Condition>,
    },
}

impl ItemAction {
    /// Whether the action writes.
    pub fn is_write(&self) -> bool {
        !matches!(self, ItemAction::Get { .. })
    }
}

/// A client operation with its per-request quorum and deadline (defaults from `NodeConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// What to do.
    pub op: ClientOp,
    /// Read quorum for this request; `None` for the node's default.
    pub r: Option<u8>,
    /// Write quorum for this request; `None` for the node's default.
    pub w: Option<u8>,
    /// Deadline for this request in milliseconds; `None` for the node's default.
    pub timeout_ms: Option<u64>,
}

impl ClientRequest {
    /// A request with the node's default quorum and timeout.
    pub fn new(op: ClientOp) -> Self {
        Self {
            op,
            r: None,
            w: None,
            timeout_ms: None,
        }
    }

    /// A get of `key`.
    pub fn get(key: impl Into<Vec<u8>>) -> Self {
        Self::new(ClientOp::Get { key: key.into() })
    }

    /// A put of `value` under `key` following a read that returned `context`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, context: CausalContext) -> Self {
        Self::new(ClientOp::Put {
            key: key.into(),
            value: value.into(),
            context,
        })
    }

    /// A put of `value` under `key` that supersedes what the coordinator holds (see
    /// [`ClientOp::Overwrite`]).
    pub fn overwrite(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::new(ClientOp::Overwrite {
            key: key.into(),
            value: value.into(),
        })
    }

    /// A delete of `key` following a read that returned `context`.
    pub fn delete(key: impl Into<Vec<u8>>, context: CausalContext) -> Self {
        Self::new(ClientOp::Delete {
            key: key.into(),
            context,
        })
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// The answer to a get.
    Read(ReadResult),
    /// The answer to a put or delete: the context of the version just written, so the client
    /// can write again without reading.
    Written {
        /// Context covering the new version.
        context: CausalContext,
        /// The identity of the version this write created (its dot), for tracing and for
        /// checkers that follow a write through replication.
        version: Dot,
    },
    /// The answer to a table operation other than a list.
    Table(TableDescription),
    /// The answer to a table list.
    TableList {
        /// The names of this page.
        names: Vec<String>,
        /// The last name when more may follow (pass it as `start_after`).
        last: Option<String>,
    },
    /// The answer to a query: a page of items.
    Items {
        /// The items that passed the filter, in the query's order.
        items: Vec<Item>,
        /// How many items were evaluated (before the filter).
        scanned: u32,
        /// The key of the last item evaluated, when more may follow (pass it as
        /// `start_after`).
        last: Option<PrimaryKey>,
    },
    /// The answer to a batch: one outcome per operation, in the request's order.
    Batch(Vec<BatchOutcome>),
    /// The answer to GetItem: the item, or `None` when it does not exist.
    Item(Option<Item>),
    /// The answer to PutItem, UpdateItem and DeleteItem: the item before and after the write
    /// (as the coordinator's read saw it, and as written), for DynamoDB's `ReturnValues`.
    ItemWritten {
        /// The item the write replaced (`None`: there was none).
        old: Option<Item>,
        /// The item after the write (`None` after a delete).
        new: Option<Item>,
        /// The write's stamp: every attribute it wrote carries it (checkers name the stamp
        /// that beat a lost update).
        stamp: Stamp,
        /// The identity of the version written.
        version: Dot,
    },
}

/// What a get found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadResult {
    /// The distinct live values; more than one means siblings. Empty when absent or deleted.
    pub values: Vec<Vec<u8>>,
    /// Context to pass back with the next write; empty when the key was never written.
    pub context: CausalContext,
    /// Whether tombstones were found (the key was deleted; `values` may still hold writes
    /// concurrent with the delete).
    pub has_tombstones: bool,
}

/// The answer to a client request.
pub type ClientResult = Result<ClientReply, RequestError>;

/// How a replica failed a coordinator's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ReplicaFailure {
    /// It did not answer before the deadline.
    #[error("timed out")]
    TimedOut,
    /// Its store refused the operation (disk full, I/O error, corrupt record).
    #[error("storage error: {detail}")]
    Storage {
        /// What the store said.
        detail: String,
    },
    /// It refused: it is overloaded or leaving.
    #[error("refused")]
    Refused,
}

/// Why a client request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RequestError {
    /// R or W was 0 or above N.
    #[error("{which} = {asked} is out of range 1..={n}")]
    InvalidQuorum {
        /// "r" or "w".
        which: char,
        /// The quorum asked for.
        asked: u8,
        /// The replication factor.
        n: u8,
    },
    /// The key was empty.
    #[error("the key is empty")]
    EmptyKey,
    /// A key-value key starts with byte 0xFF, which marks the keys of table items.
    #[error("keys starting with byte 0xFF are reserved for table items")]
    ReservedKey,
    /// The key was longer than the limit.
    #[error("the key is {len} bytes; the limit is {max}")]
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value was longer than the limit.
    #[error("the value is {len} bytes; the limit is {max}")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Fewer replicas than the quorum acknowledged before the deadline.
    #[error(
        "quorum not reached: {acks} of {needed} replicas answered (tried {tried:?}; failed {failures:?})"
    )]
    Quorum {
        /// The quorum (R or W) needed.
        needed: u8,
        /// How many answered in time.
        acks: u8,
        /// Every node the coordinator sent to.
        tried: Vec<NodeId>,
        /// The nodes that failed, and how.
        failures: Vec<(NodeId, ReplicaFailure)>,
    },
    /// The write would leave more siblings than the limit: read, merge and write with the
    /// context instead.
    #[error("the key has {count} siblings; the limit is {max}: read and resolve them first")]
    TooManySiblings {
        /// Siblings the write would leave.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The coordinator has too many requests in flight.
    #[error("overloaded: {inflight} requests in flight (limit {max})")]
    Overloaded {
        /// Requests in flight.
        inflight: usize,
        /// The limit.
        max: usize,
    },
    /// No node is known to be up for this key (e.g. the ring is empty).
    #[error("no replica of this key is reachable")]
    NoReplicas,
    /// The coordinator's own store failed.
    #[error("storage error at the coordinator: {detail}")]
    Storage {
        /// What the store said.
        detail: String,
    },
    /// CreateTable of a name a live table has.
    #[error("table already exists: {name}")]
    TableExists {
        /// The name.
        name: String,
    },
    /// No live table has the name (or the request's incarnation was deleted or superseded).
    #[error("requested resource not found: table {name}")]
    TableNotFound {
        /// The name.
        name: String,
    },
    /// A batch breaks the batch rules (size, mixed kinds, a key twice, a condition).
    #[error("{message}")]
    InvalidBatch {
        /// What was wrong.
        message: String,
    },
    /// A table operation's arguments are invalid (the message says which).
    #[error("{message}")]
    InvalidTable {
        /// What was wrong.
        message: String,
    },
    /// A conditional item write's condition did not hold for the item the coordinator read.
    #[error("the conditional request failed")]
    ConditionFailed {
        /// The item the condition was evaluated on (`None`: there was none).
        item: Option<Item>,
    },
    /// An item, key or value breaks DynamoDB's rules or limits (the message names which).
    #[error("{message}")]
    InvalidItem {
        /// The `ItemError`'s message.
        message: String,
    },
    /// An update cannot be applied to the current item (the message says why).
    #[error("{message}")]
    InvalidUpdate {
        /// The `UpdateError`'s message.
        message: String,
    },
}

impl From<ItemError> for RequestError {
    fn from(e: ItemError) -> Self {
        RequestError::InvalidItem {
            message: e.to_string(),
        }
    }
}

impl From<CatalogError> for RequestError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Exists { name } => RequestError::TableExists { name },
            CatalogError::NotFound { name } => RequestError::TableNotFound { name },
            other => RequestError::InvalidTable {
                message: other.to_string(),
            },
        }
    }
}

impl From<UpdateError> for RequestError {
    fn from(e: UpdateError) -> Self {
        RequestError::InvalidUpdate {
            message: e.to_string(),
        }
    }
}

impl RequestError {
    /// A short stable label for the error (the HTTP API's error `kind`, metrics' `outcome`
    /// label, `ringstore bench`'s errors by kind).
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::InvalidQuorum { .. } => "invalid_quorum",
            RequestError::EmptyKey
            | RequestError::ReservedKey
            | RequestError::KeyTooLarge { .. } => "bad_key",
            RequestError::ValueTooLarge { .. } => "value_too_large",
            RequestError::TooManySiblings { .. } => "too_many_siblings",
            RequestError::Quorum { .. } => "quorum_not_reached",
            RequestError::Overloaded { .. } => "overloaded",
            RequestError::NoReplicas => "no_replicas",
            RequestError::Storage { .. } => "storage",
            RequestError::ConditionFailed { .. } => "condition_failed",
            RequestError::TableExists { .. } => "table_exists",
            RequestError::TableNotFound { .. } => "table_not_found",
            RequestError::InvalidTable { .. } => "invalid_table",
            RequestError::InvalidBatch { .. } => "invalid_batch",
            RequestError::InvalidItem { .. } => "invalid_item",
            RequestError::InvalidUpdate { .. } => "invalid_update",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A variant's index is its postcard tag on the wire: clients and peers of the previous
    // release keep meaning the same operations.
    #[test]
    fn op_wire_tags_are_stable() {
        let ops = [
            (ClientOp::Get { key: b"k".to_vec() }, 0),
            (ClientRequest::put("k", "v", CausalContext::empty()).op, 1),
            (ClientRequest::delete("k", CausalContext::empty()).op, 2),
            (ClientRequest::overwrite("k", "v").op, 3),
        ];
        for (op, tag) in ops {
            let bytes = postcard::to_allocvec(&op).unwrap();
            assert_eq!(bytes[0], tag, "{op:?}");
            assert_eq!(postcard::from_bytes::<ClientOp>(&bytes).unwrap(), op);
        }
    }
}
