//! Tables at a node: answering table requests from the catalog, gossiping the catalog, and
//! keeping dead tables' data out (`docs/items.md`).
//!
//! - **Requests** (create, describe, list, delete, update) are answered by the node that takes
//!   them, from its own catalog: the catalog is cluster metadata every node holds. A change is
//!   stamped by the node's hybrid clock, persisted (metadata `catalog`) and pushed to a few
//!   peers at once; gossip carries it to the rest.
//! - **Gossip**: each membership round also sends the catalog to the same peer (push-pull). A
//!   node records which peers showed it which tables: a table is `Active` at a node once every
//!   member that is up has shown it the table, `Creating` before.
//! - **Dead tables** (deleted, or superseded by a concurrent creation of the name) take no item
//!   request, their keys are never written again here (`Node::merge_local` drops them, so
//!   neither a coordinator, a hint, a handoff, read repair nor anti-entropy can bring any back),
//!   and the tombstone collector's scan removes the keys already stored, as it passes them.
//!
//! # Invariants
//! - The persisted catalog is never older than one this node answered from (it is written
//!   before the answer leaves).
//! - No key of a table this node knows to be dead is written to its store (checked in
//!   `merge_local`).

use super::coordinator::ReplyTo;
use super::{Node, Release};
use crate::NodeId;
use crate::catalog::{Catalog, TableRecord};
use crate::item::TableId;
use crate::item::key::table_of;
use crate::membership::MemberStatus;
use crate::protocol::PeerMessage;
use crate::request::{
    ClientReply, RequestError, TableDescription, TableRef, TableRequest, TableStatus,
};
use crate::store::Store;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Metadata name of the persisted catalog.
pub(crate) const META_CATALOG: &str = "catalog";

/// The most names one list answers (DynamoDB's ListTables limit).
const MAX_LIST: u32 = 100;

/// How many peers a catalog change is pushed to at once.
const PUSH_FANOUT: usize = 3;

/// A node's catalog and what it knows of its peers' copies.
#[derive(Default)]
pub(super) struct Tables {
    pub(super) catalog: Catalog,
    /// For each table, the peers whose catalog showed it to this node.
    seen_by: BTreeMap<TableId, BTreeSet<NodeId>>,
}

impl Tables {
    pub(super) fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            seen_by: BTreeMap::new(),
        }
    }
}

impl<S: Store> Node<S> {
    /// The table catalog as this node knows it.
    pub fn catalog(&self) -> &Catalog {
        &self.tables.catalog
    }

    pub(super) fn on_table_request(&mut self, reply_to: ReplyTo, request: TableRequest) {
        let result = self.table_request(request);
        if result.is_err() {
            self.stats.requests_failed += 1;
        }
        self.answer(reply_to, result, Release::Now);
    }

    fn table_request(&mut self, request: TableRequest) -> Result<ClientReply, RequestError> {
        match request {
            TableRequest::Create {
                name,
                schema,
                settings,
            } => {
                schema.check()?;
                self.check_settings(&settings)?;
                let id = TableId(self.rng.next_u64());
                let created = self.clock.stamp(self.now, self.actor);
                let record = self
                    .tables
                    .catalog
                    .create(&name, schema, settings, id, created)?
                    .clone();
                self.catalog_changed()?;
                Ok(ClientReply::Table(self.describe(record)))
            }
            TableRequest::Describe { name } => {
                let record = self.live_table(&name)?.clone();
                Ok(ClientReply::Table(self.describe(record)))
            }
            TableRequest::List { start_after, limit } => {
                let limit = limit.unwrap_or(MAX_LIST).clamp(1, MAX_LIST) as usize;
                let names: Vec<String> = self
                    .tables
                    .catalog
                    .live_tables()
                    .map(|r| r.name.clone())
                    .filter(|name| start_after.as_ref().is_none_or(|after| name > after))
                    .take(limit + 1)
                    .collect();
                let more = names.len() > limit;
                let names: Vec<String> = names.into_iter().take(limit).collect();
                let last = if more { names.last().cloned() } else { None };
                Ok(ClientReply::TableList { names, last })
            }
            TableRequest::Delete { name } => {
                let at = self.clock.stamp(self.now, self.actor);
                let record = self.tables.catalog.delete(&name, at)?;
                self.catalog_changed()?;
                Ok(ClientReply::Table(TableDescription {
                    record,
                    status: TableStatus::Deleting,
                }))
            }
            TableRequest::Update { name, settings } => {
                self.check_settings(&settings)?;
                let at = self.clock.stamp(self.now, self.actor);
                let record = self
                    .tables
                    .catalog
                    .update_settings(&name, settings, at)?
                    .clone();
                self.catalog_changed()?;
                Ok(ClientReply::Table(self.describe(record)))
            }
        }
    }

    fn check_settings(&self, settings: &crate::catalog::TableSettings) -> Result<(), RequestError> {
        let n = self.config.n;
        for (which, asked) in [('r', settings.r), ('w', settings.w)] {
            if let Some(asked) = asked
                && (asked == 0 || asked > n)
            {
                return Err(RequestError::InvalidQuorum { which, asked, n });
            }
        }
        Ok(())
    }

    fn live_table(&self, name: &str) -> Result<&TableRecord, RequestError> {
        self.tables
            .catalog
            .live(name)
            .ok_or_else(|| RequestError::TableNotFound {
                name: name.to_string(),
            })
    }

    fn describe(&self, record: TableRecord) -> TableDescription {
        let seen = self.tables.seen_by.get(&record.id);
        let everyone_has_it = self
            .members
            .entries()
            .filter(|m| m.node != self.id && m.status == MemberStatus::Up && self.is_up(m.node))
            .all(|m| seen.is_some_and(|s| s.contains(&m.node)));
        let status = if everyone_has_it {
            TableStatus::Active
        } else {
            TableStatus::Creating
        };
        TableDescription { record, status }
    }

    /// Persists the catalog and pushes it to a few peers.
    fn catalog_changed(&mut self) -> Result<(), RequestError> {
        self.persist_catalog()?;
        let peers = self.known_peers();
        for peer in peers.into_iter().take(PUSH_FANOUT) {
            self.send_catalog(peer, true);
        }
        Ok(())
    }

    fn persist_catalog(&mut self) -> Result<(), RequestError> {
        let bytes =
            postcard::to_stdvec(&self.tables.catalog).map_err(|e| RequestError::Storage {
                detail: format!("catalog does not encode: {e}"),
            })?;
        self.store
            .set_meta(META_CATALOG, &bytes)
            .map_err(|e| RequestError::Storage {
                detail: e.to_string(),
            })
    }

    /// Sends the catalog to `peer` (nothing while it is empty and no reply is due).
    pub(super) fn send_catalog(&mut self, peer: NodeId, want_reply: bool) {
        if self.tables.catalog.is_empty() && want_reply {
            return;
        }
        let catalog = self.tables.catalog.clone();
        self.send(
            peer,
            PeerMessage::Catalog {
                catalog,
                want_reply,
            },
        );
    }

    pub(super) fn on_catalog(&mut self, from: NodeId, catalog: Catalog, want_reply: bool) {
        for record in catalog.records() {
            self.tables
                .seen_by
                .entry(record.id)
                .or_default()
                .insert(from);
        }
        if self.tables.catalog.merge(&catalog) {
            // A failure here is retried by the next change or gossip; the merged catalog
            // is in memory and answers at once.
            let _ = self.persist_catalog();
        }
        if want_reply && self.tables.catalog != catalog {
            self.send_catalog(from, false);
        }
    }

    /// Whether `key` belongs to a table this node knows to be dead.
    pub(super) fn is_dead_key(&self, key: &[u8]) -> bool {
        !self.tables.catalog.is_empty()
            && table_of(key).is_some_and(|id| self.tables.catalog.is_dead(id))
    }

    /// Checks an item request against the catalog: a dead incarnation is not found, a known
    /// one must have the request's schema. An incarnation the catalog does not know yet is
    /// taken (its creation may still be on its way here).
    pub(super) fn check_item_table(
        &self,
        table: &TableRef,
        id: TableId,
    ) -> Result<(), RequestError> {
        let not_found = || RequestError::TableNotFound {
            name: table.name.clone(),
        };
        if self.tables.catalog.is_dead(id) {
            return Err(not_found());
        }
        match self.tables.catalog.get(id) {
            Some(record) if record.schema != table.schema => {
                Err(crate::item::ItemError::KeyMismatch.into())
            }
            _ => Ok(()),
        }
    }

    /// The table's quorum settings for an item request, when the catalog knows it.
    pub(super) fn table_quorums(&self, table: TableId) -> (Option<u8>, Option<u8>) {
        match self.tables.catalog.get(table) {
            Some(record) => (record.settings.r, record.settings.w),
            None => (None, None),
        }
    }
}
