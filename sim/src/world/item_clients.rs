//! The world's item clients (item workload): each draws an item operation and an item, sends
//! the request to a random node as the kv clients do, and records what happened in the item
//! oracle. A query is followed page by page (`start_after` = the previous page's `last`, each
//! page to a new random node) until `last` is `None`; what it returns is judged at the end of
//! the run, not here (`query_check.rs`). Also the world's side of the item oracle: which item a storage key is, and how far
//! behind virtual time a node's clock can be (the oracle's measurement horizon).

use super::clients::failure_kind;
use super::*;
use crate::item_oracle::ItemWriteRecord;
use crate::item_workload::{ItemOpKind, QueryShape, create_once, set_update};
use ringstore_core::item::{ItemKey, PrimaryKey};

/// An item operation in flight.
pub(in crate::world) struct ItemCall {
    /// The item number.
    pub(in crate::world) item: u64,
    /// What it is.
    pub(in crate::world) kind: ItemOpKind,
    /// Its write id, if it writes.
    pub(in crate::world) write: Option<u64>,
    /// When the client sent it.
    pub(in crate::world) issued: u64,
    /// A query's shape and the pages answered so far.
    pub(in crate::world) query: Option<(QueryShape, u32)>,
}

/// The most pages a workload query follows (a partition holds at most `sorts` items, so a
/// correct core never gets near it).
const MAX_QUERY_PAGES: u32 = 64;

impl World {
    /// Starts the next item operation of `client`.
    pub(super) fn item_next(&mut self, client: usize) {
        let Some(items) = self.scenario.workload.items.clone() else {
            return;
        };
        let kind = items.next_op(&mut self.rng);
        let item = items.next_item(&mut self.rng);
        self.clients[client].op += 1;
        let mut write = None;
        let mut attributes = Vec::new();
        if matches!(kind, ItemOpKind::Query | ItemOpKind::ConsistentQuery) {
            let shape = items.draw_query(&mut self.rng, kind == ItemOpKind::ConsistentQuery);
            self.send_query(client, item, kind, shape, None, 0);
            return;
        }
        let action = match kind {
            ItemOpKind::Get => Some(ItemAction::Get { consistent: false }),
            ItemOpKind::ConsistentGet => Some(ItemAction::Get { consistent: true }),
            ItemOpKind::Put | ItemOpKind::Create => {
                attributes = items.draw_attributes(&mut self.rng, 1, 3);
                let id = self.new_write_id();
                write = Some(id);
                let condition = (kind == ItemOpKind::Create).then(create_once);
                items
                    .put_item(item, id, &attributes)
                    .map(|item| ItemAction::Put { item, condition })
            }
            ItemOpKind::Update => {
                attributes = items.draw_attributes(&mut self.rng, 1, 2);
                let id = self.new_write_id();
                write = Some(id);
                Some(ItemAction::Update {
                    update: set_update(id, &attributes),
                    condition: None,
                })
            }
            ItemOpKind::Delete => {
                write = Some(self.new_write_id());
                Some(ItemAction::Delete { condition: None })
            }
            // Sent above.
            ItemOpKind::Query | ItemOpKind::ConsistentQuery => None,
        };
        let Some(mut request) = action.and_then(|action| items.request(item, action)) else {
            // Not reached: the workload numbers only items it can build.
            self.client_done(client);
            return;
        };
        request.r = self.scenario.workload.r;
        request.w = self.scenario.workload.w;
        self.clients[client].state = ClientState::Item(ItemCall {
            item,
            kind,
            write,
            issued: self.now,
            query: None,
        });
        let via = self.send_request(client, request);
        if let (Some(id), Some(oracle)) = (write, self.item_oracle.as_mut()) {
            oracle.issue_write(ItemWriteRecord {
                id,
                item,
                kind,
                attributes,
                issued_us: self.now,
                via,
            });
        }
        self.schedule_timeout(client);
    }

    /// Sends page `pages + 1` of query `shape` for client `client` (the operation's `item` is
    /// unused by queries; it is the draw the other operations use).
    fn send_query(
        &mut self,
        client: usize,
        item: u64,
        kind: ItemOpKind,
        shape: QueryShape,
        start_after: Option<PrimaryKey>,
        pages: u32,
    ) {
        let Some(items) = self.scenario.workload.items.as_ref() else {
            return;
        };
        let mut request = ClientRequest::new(ClientOp::Query(Box::new(
            items.query_request(&shape, start_after),
        )));
        request.r = self.scenario.workload.r;
        self.clients[client].state = ClientState::Item(ItemCall {
            item,
            kind,
            write: None,
            issued: self.now,
            query: Some((shape, pages)),
        });
        self.send_request(client, request);
        self.schedule_timeout(client);
    }

    fn new_write_id(&mut self) -> u64 {
        let id = self.next_write_id;
        self.next_write_id += 1;
        id
    }

    /// The answer to client `client`'s item operation `call` (client handle `id`).
    pub(super) fn on_item_reply(
        &mut self,
        client: usize,
        id: ClientId,
        call: ItemCall,
        result: ClientResult,
    ) {
        let now = self.now;
        if let Some((shape, pages)) = call.query {
            match result {
                Ok(ClientReply::Items {
                    last: Some(last), ..
                }) if pages + 1 < MAX_QUERY_PAGES => {
                    *self.counters.ok.entry("query-page").or_default() += 1;
                    self.clients[client].op += 1;
                    self.send_query(client, call.item, call.kind, shape, Some(last), pages + 1);
                    return;
                }
                Ok(ClientReply::Items { last: None, .. }) => {
                    *self.counters.ok.entry("query-page").or_default() += 1;
                    *self.counters.ok.entry(call.kind.name()).or_default() += 1;
                }
                other => {
                    let kind = match &other {
                        Err(e) => failure_kind(e),
                        Ok(ClientReply::Items { .. }) => "query without end".to_string(),
                        Ok(_) => "mismatched reply".to_string(),
                    };
                    *self.counters.failed.entry(kind).or_default() += 1;
                    *self
                        .counters
                        .failed_ops
                        .entry(call.kind.name())
                        .or_default() += 1;
                }
            }
            self.client_done(client);
            return;
        }
        match (call.write, result) {
            (None, Ok(ClientReply::Item(found))) => {
                self.check_item_read(id, found.as_ref());
                *self.counters.ok.entry(call.kind.name()).or_default() += 1;
                if let Some(oracle) = self.item_oracle.as_mut() {
                    oracle.complete_read(call.item, call.kind, call.issued, now, found.as_ref());
                }
            }
            (
                Some(write),
                Ok(ClientReply::ItemWritten {
                    old,
                    stamp,
                    version,
                    ..
                }),
            ) => {
                *self.counters.ok.entry(call.kind.name()).or_default() += 1;
                if let Some(oracle) = self.item_oracle.as_mut() {
                    oracle.ack_write(call.item, write, now, stamp, version, old.as_ref());
                }
            }
            (Some(write), Err(RequestError::ConditionFailed { .. }))
                if call.kind == ItemOpKind::Create =>
            {
                // A correct answer: the item existed, and nothing was written.
                *self.counters.ok.entry("create-item-exists").or_default() += 1;
                if let Some(oracle) = self.item_oracle.as_mut() {
                    oracle.condition_failed(call.item, write, now);
                }
            }
            (write, result) => {
                self.forget_read(id);
                if let (Some(write), Some(oracle)) = (write, self.item_oracle.as_mut()) {
                    oracle.fail_write(call.item, write, now);
                }
                let kind = match &result {
                    Err(e) => failure_kind(e),
                    Ok(_) => "mismatched reply".to_string(),
                };
                *self.counters.failed.entry(kind).or_default() += 1;
                *self
                    .counters
                    .failed_ops
                    .entry(call.kind.name())
                    .or_default() += 1;
            }
        }
        self.client_done(client);
    }

    /// The item number of storage key `key`, if it is one of the item workload's.
    pub(super) fn item_of(&self, key: &[u8]) -> Option<u64> {
        let items = self.scenario.workload.items.as_ref()?;
        items.index_of(&ItemKey::decode(key).ok()?)
    }

    /// The name of item `item`.
    pub(super) fn item_label(&self, item: u64) -> String {
        match &self.scenario.workload.items {
            Some(items) => items.label(item),
            None => format!("item-{item}"),
        }
    }

    /// How far behind virtual time any node's raw clock can be during the run, in µs: the
    /// worst of every skew and drift the nodes start with or a `skew` fault of `timeline` sets
    /// (or 0: the end of the workload resets them), over the run's longest span. A node's
    /// clock reads `v + v·drift + skew`, and its driver never hands the core less than that.
    pub(super) fn clock_lag_bound(&self, timeline: &[FaultEvent]) -> u64 {
        let v_max = self
            .end_of_workload_us
            .saturating_add(micros(self.scenario.quiesce)) as i128;
        let lag = |skew_us: i64, drift_ppm: i64| -> i128 {
            let behind = -(skew_us as i128);
            let drift_behind = (-(drift_ppm as i128)).max(0) * v_max / 1_000_000;
            behind + drift_behind
        };
        let initial = self.nodes.iter().map(|n| lag(n.skew_us, n.drift_ppm));
        let faults = timeline.iter().filter_map(|event| match &event.action {
            FaultAction::Skew {
                skew_ms, drift_ppm, ..
            } => Some(lag(
                skew_ms.saturating_mul(1000),
                (*drift_ppm).clamp(-999_999, 1_000_000),
            )),
            _ => None,
        });
        let worst = initial.chain(faults).fold(0, i128::max);
        // A millisecond more for the integer rounding of drift.
        u64::try_from(worst + 1000).unwrap_or(u64::MAX)
    }
}
