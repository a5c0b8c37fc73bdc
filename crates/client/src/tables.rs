//! Tables and items over the native protocol: [`NativeClient`]'s `create_table`,
//! `describe_table`, `list_tables`, `update_table`, `delete_table`, `put_item`, `get_item`,
//! `update_item`, `delete_item` and `query`.
//!
//! An item request must carry its table's incarnation id and key schema (`ItemRequest`). The
//! client keeps them in a small cache, table name to [`TableHandle`], filled by every
//! `create_table`, `describe_table` and `update_table` answer and, on a miss, by a
//! `describe_table` through the node the item call goes to; `delete_table` drops the entry.
//!
//! # Guarantees
//! - Every method answers with a typed result, or [`CallError::MismatchedReply`] when the node
//!   answers with a reply of another kind.
//! - A cached table that was deleted, or deleted and created again under its name, is noticed
//!   at its next use: the node answers `TableNotFound`, the client drops the entry, describes
//!   the table again and, if a new incarnation has the name, sends the request once more with
//!   it. This is safe for writes: a request refused as `TableNotFound` wrote nothing.
//! - An item that has no key attributes of the schema's types is refused before anything is
//!   sent (`RequestError::InvalidItem`, as the node would say).
//!
//! # Known limits
//! - A table is resolved by the node asked: right after a creation, a node gossip has not
//!   reached yet answers `TableNotFound`, and a node that has not heard of a deletion yet still
//!   takes the old incarnation's writes (which are then removed with it).

use crate::{CallError, NativeClient};
use ringstore_core::NodeId;
use ringstore_core::catalog::TableSettings;
use ringstore_core::item::{
    Condition, Item, ItemKey, ItemUpdate, KeySchema, KeyValue, PrimaryKey, Stamp, TableId,
};
use ringstore_core::request::{
    BatchOutcome, BatchRequest, ClientOp, ClientReply, ClientRequest, ItemAction, ItemRequest,
    QueryRequest, RequestError, ScanRequest, SortKeyCondition, TableDescription, TableRef,
    TableRequest,
};
use ringstore_core::version::Dot;

/// What an item request needs to know of its table, as the client caches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableHandle {
    /// The table's name.
    pub name: String,
    /// Its incarnation.
    pub id: TableId,
    /// Its key schema.
    pub schema: KeySchema,
}

impl TableHandle {
    /// The handle of a described table.
    pub fn of(description: &TableDescription) -> Self {
        Self {
            name: description.record.name.clone(),
            id: description.record.id,
            schema: description.record.schema.clone(),
        }
    }

    fn table_ref(&self) -> TableRef {
        TableRef {
            name: self.name.clone(),
            schema: self.schema.clone(),
        }
    }

    fn item_request(&self, key: PrimaryKey, action: ItemAction) -> ClientRequest {
        ClientRequest::new(ClientOp::Item(Box::new(ItemRequest {
            table: self.table_ref(),
            key: ItemKey {
                table: self.id,
                key,
            },
            action,
        })))
    }
}

/// A page of table names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePage {
    /// The names, in order.
    pub names: Vec<String>,
    /// The last name when more may follow (pass it as `start_after`).
    pub last: Option<String>,
}

/// What an item write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemWrite {
    /// The item before the write, as the coordinator read it (`None`: there was none).
    pub old: Option<Item>,
    /// The item after the write (`None` after a delete).
    pub new: Option<Item>,
    /// The write's stamp.
    pub stamp: Stamp,
    /// The version written.
    pub version: Dot,
}

/// A partition query ([`NativeClient::query`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The partition key's value.
    pub partition: KeyValue,
    /// Which sort keys (`None`: all).
    pub sort: Option<SortKeyCondition>,
    /// Ascending sort-key order (`false`: descending).
    pub forward: bool,
    /// At most this many items are read.
    pub limit: Option<u32>,
    /// Continue after this key (the previous page's `last`).
    pub start_after: Option<PrimaryKey>,
    /// Read a majority of the partition's home replicas.
    pub consistent: bool,
    /// Keep only the items that satisfy this (after `limit`).
    pub filter: Option<Condition>,
    /// Read quorum (`None`: the table's, else the node's).
    pub r: Option<u8>,
}

impl Query {
    /// The whole partition, ascending, eventually consistent.
    pub fn partition(partition: KeyValue) -> Self {
        Self {
            partition,
            sort: None,
            forward: true,
            limit: None,
            start_after: None,
            consistent: false,
            filter: None,
            r: None,
        }
    }
}

/// A page of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemPage {
    /// The items, in the query's order.
    pub items: Vec<Item>,
    /// How many items were read (before the filter).
    pub scanned: u32,
    /// The key of the last item read, when more may follow (pass it as `start_after`).
    pub last: Option<PrimaryKey>,
}

impl NativeClient {
    /// Creates a table through `node`.
    pub async fn create_table(
        &self,
        node: NodeId,
        name: &str,
        schema: KeySchema,
        settings: TableSettings,
    ) -> Result<TableDescription, CallError> {
        let request = TableRequest::Create {
            name: name.to_string(),
            schema,
            settings,
        };
        self.table_call(node, request).await
    }

    /// Describes the live table `name` as `node`'s catalog has it.
    pub async fn describe_table(
        &self,
        node: NodeId,
        name: &str,
    ) -> Result<TableDescription, CallError> {
        let request = TableRequest::Describe {
            name: name.to_string(),
        };
        self.table_call(node, request).await
    }

    /// Lists live tables by name, a page at a time (`limit` 1 to 100, default 100).
    pub async fn list_tables(
        &self,
        node: NodeId,
        start_after: Option<String>,
        limit: Option<u32>,
    ) -> Result<TablePage, CallError> {
        let request =
            ClientRequest::new(ClientOp::Table(TableRequest::List { start_after, limit }));
        match self.request(node, request).await? {
            ClientReply::TableList { names, last } => Ok(TablePage { names, last }),
            _ => Err(CallError::MismatchedReply),
        }
    }

    /// Replaces the settings of the table `name`.
    pub async fn update_table(
        &self,
        node: NodeId,
        name: &str,
        settings: TableSettings,
    ) -> Result<TableDescription, CallError> {
        let request = TableRequest::Update {
            name: name.to_string(),
            settings,
        };
        self.table_call(node, request).await
    }

    /// Deletes the table `name` (and, on every node, its items).
    pub async fn delete_table(
        &self,
        node: NodeId,
        name: &str,
    ) -> Result<TableDescription, CallError> {
        self.forget_table(name);
        let request = ClientRequest::new(ClientOp::Table(TableRequest::Delete {
            name: name.to_string(),
        }));
        match self.request(node, request).await? {
            ClientReply::Table(description) => Ok(description),
            _ => Err(CallError::MismatchedReply),
        }
    }

    /// Writes `item` to `table` (its key attributes say where), if `condition` holds.
    pub async fn put_item(
        &self,
        node: NodeId,
        table: &str,
        item: Item,
        condition: Option<Condition>,
        w: Option<u8>,
    ) -> Result<ItemWrite, CallError> {
        let reply = self
            .item_call(node, table, |handle| {
                let key = handle
                    .schema
                    .key_of(&item)
                    .map_err(|e| CallError::Request(e.into()))?;
                let action = ItemAction::Put {
                    item: item.clone(),
                    condition: condition.clone(),
                };
                let mut request = handle.item_request(key, action);
                request.w = w;
                Ok(request)
            })
            .await?;
        item_written(reply)
    }

    /// Reads the item of `key` in `table` (`None`: there is none).
    pub async fn get_item(
        &self,
        node: NodeId,
        table: &str,
        key: PrimaryKey,
        consistent: bool,
        r: Option<u8>,
    ) -> Result<Option<Item>, CallError> {
        let reply = self
            .item_call(node, table, |handle| {
                let mut request = handle.item_request(key.clone(), ItemAction::Get { consistent });
                request.r = r;
                Ok(request)
            })
            .await?;
        match reply {
            ClientReply::Item(item) => Ok(item),
            _ => Err(CallError::MismatchedReply),
        }
    }

    /// Applies `update` to the item of `key` (creating it if needed), if `condition` holds.
    pub async fn update_item(
        &self,
        node: NodeId,
        table: &str,
        key: PrimaryKey,
        update: ItemUpdate,
        condition: Option<Condition>,
        w: Option<u8>,
    ) -> Result<ItemWrite, CallError> {
        let reply = self
            .item_call(node, table, |handle| {
                let action = ItemAction::Update {
                    update: update.clone(),
                    condition: condition.clone(),
                };
                let mut request = handle.item_request(key.clone(), action);
                request.w = w;
                Ok(request)
            })
            .await?;
        item_written(reply)
    }

    /// Deletes the item of `key`, if `condition` holds.
    pub async fn delete_item(
        &self,
        node: NodeId,
        table: &str,
        key: PrimaryKey,
        condition: Option<Condition>,
        w: Option<u8>,
    ) -> Result<ItemWrite, CallError> {
        let reply = self
            .item_call(node, table, |handle| {
                let action = ItemAction::Delete {
                    condition: condition.clone(),
                };
                let mut request = handle.item_request(key.clone(), action);
                request.w = w;
                Ok(request)
            })
            .await?;
        item_written(reply)
    }

    /// Reads a page of a partition of `table`.
    pub async fn query(
        &self,
        node: NodeId,
        table: &str,
        query: Query,
    ) -> Result<ItemPage, CallError> {
        let reply = self
            .item_call(node, table, |handle| {
                let mut request = ClientRequest::new(ClientOp::Query(Box::new(QueryRequest {
                    table: handle.table_ref(),
                    table_id: handle.id,
                    partition: query.partition.clone(),
                    sort: query.sort.clone(),
                    forward: query.forward,
                    limit: query.limit,
                    start_after: query.start_after.clone(),
                    consistent: query.consistent,
                    filter: query.filter.clone(),
                })));
                request.r = query.r;
                Ok(request)
            })
            .await?;
        item_page(reply)
    }

    /// The cached handle of `name`, if any.
    pub fn cached_table(&self, name: &str) -> Option<TableHandle> {
        self.table_cache().get(name).cloned()
    }

    /// Drops the cached handle of `name` (the next item call describes the table again).
    pub fn forget_table(&self, name: &str) {
        self.table_cache().remove(name);
    }

    /// A table request answered with a description, which refreshes the cache.
    async fn table_call(
        &self,
        node: NodeId,
        request: TableRequest,
    ) -> Result<TableDescription, CallError> {
        let name = match &request {
            TableRequest::Create { name, .. }
            | TableRequest::Describe { name }
            | TableRequest::Delete { name }
            | TableRequest::Update { name, .. } => name.clone(),
            TableRequest::List { .. } => String::new(),
        };
        let result = self
            .request(node, ClientRequest::new(ClientOp::Table(request)))
            .await;
        match result {
            Ok(ClientReply::Table(description)) => {
                self.table_cache()
                    .insert(name, TableHandle::of(&description));
                Ok(description)
            }
            Ok(_) => Err(CallError::MismatchedReply),
            Err(error) => {
                if matches!(
                    error,
                    CallError::Request(RequestError::TableNotFound { .. })
                ) {
                    self.forget_table(&name);
                }
                Err(error)
            }
        }
    }

    /// The handle of `name`: cached, or described through `node`.
    async fn table_handle(
        &self,
        node: NodeId,
        name: &str,
    ) -> Result<(TableHandle, bool), CallError> {
        if let Some(handle) = self.cached_table(name) {
            return Ok((handle, true));
        }
        let description = self.describe_table(node, name).await?;
        Ok((TableHandle::of(&description), false))
    }

    /// One page of a scan of `table`'s segment `segment` of `total_segments` (1 for the whole
    /// table), continuing after `start_after` (the previous page's `last`).
    pub async fn scan(
        &self,
        node: NodeId,
        table: &str,
        segment: u32,
        total_segments: u32,
        limit: Option<u32>,
        start_after: Option<PrimaryKey>,
    ) -> Result<ItemPage, CallError> {
        let reply = self
            .item_call(node, table, |handle| {
                Ok(ClientRequest::new(ClientOp::Scan(Box::new(ScanRequest {
                    table: handle.table_ref(),
                    table_id: handle.id,
                    segment,
                    total_segments,
                    limit,
                    start_after: start_after.clone(),
                    consistent: false,
                    filter: None,
                }))))
            })
            .await?;
        item_page(reply)
    }

    /// Several gets (up to 100) or unconditional puts and deletes (up to 25) of one table's
    /// items in one request; one outcome per operation, in order (`Unprocessed` ones are for
    /// the caller to retry).
    pub async fn batch(
        &self,
        node: NodeId,
        table: &str,
        operations: Vec<(PrimaryKey, ItemAction)>,
    ) -> Result<Vec<BatchOutcome>, CallError> {
        let reply = self
            .item_call(node, table, |handle| {
                let items = operations
                    .iter()
                    .map(|(key, action)| ItemRequest {
                        table: handle.table_ref(),
                        key: ItemKey {
                            table: handle.id,
                            key: key.clone(),
                        },
                        action: action.clone(),
                    })
                    .collect();
                Ok(ClientRequest::new(ClientOp::Batch(Box::new(
                    BatchRequest { items },
                ))))
            })
            .await?;
        match reply {
            ClientReply::Batch(outcomes) => Ok(outcomes),
            _ => Err(CallError::MismatchedReply),
        }
    }

    /// Runs the request `make` builds for the table's handle; a cached handle that the node
    /// no longer knows is refreshed and the request sent once more (module docs).
    async fn item_call(
        &self,
        node: NodeId,
        table: &str,
        make: impl Fn(&TableHandle) -> Result<ClientRequest, CallError>,
    ) -> Result<ClientReply, CallError> {
        let (handle, cached) = self.table_handle(node, table).await?;
        let result = self.request(node, make(&handle)?).await;
        match result {
            Err(CallError::Request(RequestError::TableNotFound { .. })) if cached => {
                self.forget_table(table);
                let fresh = TableHandle::of(&self.describe_table(node, table).await?);
                if fresh.id == handle.id {
                    return result;
                }
                self.request(node, make(&fresh)?).await
            }
            other => other,
        }
    }
}

fn item_page(reply: ClientReply) -> Result<ItemPage, CallError> {
    match reply {
        ClientReply::Items {
            items,
            scanned,
            last,
        } => Ok(ItemPage {
            items,
            scanned,
            last,
        }),
        _ => Err(CallError::MismatchedReply),
    }
}

fn item_written(reply: ClientReply) -> Result<ItemWrite, CallError> {
    match reply {
        ClientReply::ItemWritten {
            old,
            new,
            stamp,
            version,
        } => Ok(ItemWrite {
            old,
            new,
            stamp,
            version,
        }),
        _ => Err(CallError::MismatchedReply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::catalog::TableRecord;
    use ringstore_core::item::{AttributeValue, KeyType};
    use ringstore_core::version::ActorId;
    use std::collections::BTreeMap;

    fn description() -> TableDescription {
        TableDescription {
            record: TableRecord {
                name: "events".into(),
                id: TableId(9),
                schema: KeySchema::partition_only("user", KeyType::S),
                created: Stamp::ZERO,
                settings: TableSettings::default(),
                settings_stamp: Stamp::ZERO,
                deleted: None,
            },
            status: ringstore_core::request::TableStatus::Active,
        }
    }

    // A handle addresses items of its incarnation with its schema.
    #[test]
    fn handles_build_item_requests_of_their_incarnation() {
        let handle = TableHandle::of(&description());
        let key = PrimaryKey {
            partition: KeyValue::S("u1".into()),
            sort: None,
        };
        let request = handle.item_request(key.clone(), ItemAction::Get { consistent: true });
        let ClientOp::Item(item) = request.op else {
            panic!("an item request")
        };
        assert_eq!(
            item.key,
            ItemKey {
                table: TableId(9),
                key
            }
        );
        assert_eq!(item.table.schema, handle.schema);
    }

    // Replies of the wrong kind are MismatchedReply; a write's reply keeps every field.
    #[test]
    fn write_replies_are_typed() {
        assert_eq!(
            item_written(ClientReply::Item(None)),
            Err(CallError::MismatchedReply)
        );
        let item = Item::new(BTreeMap::from([(
            "user".to_string(),
            AttributeValue::S("u1".into()),
        )]))
        .unwrap();
        let version = Dot {
            actor: ActorId(1),
            counter: 2,
        };
        let written = item_written(ClientReply::ItemWritten {
            old: None,
            new: Some(item.clone()),
            stamp: Stamp::ZERO,
            version,
        })
        .unwrap();
        assert_eq!(written.new, Some(item));
        assert_eq!(written.version, version);
    }
}
