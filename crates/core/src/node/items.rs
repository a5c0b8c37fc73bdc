//! Item operations at the coordinator: GetItem, PutItem, UpdateItem and DeleteItem on top of
//! the get and put paths (`docs/items.md`).
//!
//! # How each runs
//! - **GetItem** is a get ([`quorum_read`](super::quorum_read)) whose versions resolve to one
//!   item by the merge rule of `item::stamped`. An eventually consistent one reads R of the
//!   replicas that are up, fallbacks included; a consistent one reads
//!   `max(R, majority of N)` of the key's home replicas only, with read repair, so that with
//!   R + W > N it sees every write acknowledged by W home replicas (not one acknowledged with
//!   fallbacks' help: the sloppy quorum's known gap).
//! - **A write that depends on the item** (any UpdateItem, and any conditional write) first
//!   reads it as a consistent GetItem does, evaluates the condition and the update on the
//!   merged item at the coordinator, and writes the result with that read's causal context. It
//!   is not isolated from a concurrent writer: two conditional writes racing on an eventual
//!   table may both succeed, and the merge keeps the newer stamp of each attribute (the
//!   linearizable tables, not built yet, would close this).
//! - **An unconditional PutItem or DeleteItem** writes at once, superseding the coordinator's
//!   own copy (as `ClientOp::Overwrite`): one round trip.
//!
//! Every write is stamped by the node's hybrid clock after it has observed every stamp in the
//! state it read, and stores `merge(read state, own write)`: the version it supersedes loses
//! nothing the merge would have kept.
//!
//! # Invariants
//! - An item operation answers its client exactly once: when its write or read answers, or at
//!   its deadline, whichever comes first (the inner get or put answering later is ignored).
//! - A write's stamp is greater than every stamp in the state it was computed from (checked).

use super::coordinator::{Operation, ReplyTo, Supersedes};
use super::{Node, Release, Timer};
use crate::item::{Item, ItemError, Stamp, StampedItem};
use crate::protocol::OpId;
use crate::request::{
    ClientReply, ClientResult, ItemAction, ItemRequest, QueryRequest, RequestError,
};
use crate::store::Store;
use crate::version::{Value, VersionSet};
use std::time::Duration;

/// An item operation in flight.
pub(super) struct ItemOp {
    reply_to: ReplyTo,
    request: ItemRequest,
    w: u8,
    /// When the operation gives up (its inner get and put share it).
    deadline: crate::Time,
    phase: Phase,
}

enum Phase {
    /// Waiting for the get.
    Reading,
    /// Waiting for the put of the new version.
    Writing {
        old: Option<Item>,
        new: Option<Item>,
        stamp: Stamp,
    },
}

/// Checks an item request against its table's schema and DynamoDB's limits: everything a
/// client sent that the derived decoders did not check.
pub(super) fn validate(request: &ItemRequest) -> Result<(), RequestError> {
    let schema = &request.table.schema;
    schema.check()?;
    // The key must be one the schema could have produced (types, sizes, sort key presence).
    let attributes = schema
        .key_attributes(&request.key.key)
        .into_iter()
        .collect();
    let key = schema.key_from_attributes(&attributes)?;
    if key != request.key.key || schema.sort.is_some() != request.key.key.sort.is_some() {
        return Err(ItemError::KeyMismatch.into());
    }
    match &request.action {
        ItemAction::Get { .. } | ItemAction::Delete { .. } => {}
        ItemAction::Put { item, .. } => {
            item.check()?;
            if schema.key_of(item)? != request.key.key {
                return Err(ItemError::KeyMismatch.into());
            }
        }
        ItemAction::Update { update, .. } => update.check()?,
    }
    Ok(())
}

/// Checks a query against its table's schema: the partition key's type and size. (The sort-key
/// condition is checked when its bounds are computed.)
pub(super) fn validate_query(request: &QueryRequest) -> Result<(), RequestError> {
    let schema = &request.table.schema;
    schema.check()?;
    let attributes = [(schema.partition.name.clone(), request.partition.to_value())];
    let mut attributes: std::collections::BTreeMap<_, _> = attributes.into_iter().collect();
    // A stand-in sort key lets the schema check the partition key alone.
    if let Some(sort) = &schema.sort {
        let stand_in = match sort.key_type {
            crate::item::KeyType::S => crate::item::AttributeValue::S("x".into()),
            crate::item::KeyType::N => crate::item::AttributeValue::N(crate::item::Number::zero()),
            crate::item::KeyType::B => crate::item::AttributeValue::B(vec![0]),
        };
        attributes.insert(sort.name.clone(), stand_in);
    }
    schema.key_from_attributes(&attributes)?;
    Ok(())
}

impl<S: Store> Node<S> {
    pub(super) fn start_item(
        &mut self,
        reply_to: ReplyTo,
        request: ItemRequest,
        r: u8,
        w: u8,
        timeout: Duration,
    ) {
        let op = self.new_op_id();
        let deadline = self.now + timeout;
        let reads_first = match &request.action {
            ItemAction::Get { .. } | ItemAction::Update { .. } => true,
            ItemAction::Put { condition, .. } | ItemAction::Delete { condition } => {
                condition.is_some()
            }
        };
        let key = request.key.encode();
        let consistent = match &request.action {
            ItemAction::Get { consistent } => *consistent,
            _ => true,
        };
        let item = ItemOp {
            reply_to,
            request,
            w,
            deadline,
            phase: Phase::Reading,
        };
        self.ops.insert(op, Operation::Item(Box::new(item)));
        self.timers.set(Timer::OpDeadline(op), deadline);
        if reads_first {
            let majority = self.config.n / 2 + 1;
            let (r, home_only) = if consistent {
                (r.max(majority), true)
            } else {
                (r, false)
            };
            // The read gets 90% of the time, so that its own, detailed error reaches the client
            // before the item operation's deadline fires.
            self.start_get(ReplyTo::Item(op), key, r, home_only, timeout.mul_f64(0.9));
        } else {
            self.write_item(op, None);
        }
    }

    /// The item operation's get answered.
    pub(super) fn on_item_read(&mut self, op: OpId, result: Result<VersionSet, RequestError>) {
        let Some(Operation::Item(item)) = self.ops.get(&op) else {
            return;
        };
        let is_get = !item.request.action.is_write();
        match result {
            Err(e) => self.finish_item(op, Err(e), Release::Now),
            Ok(merged) if is_get => {
                let result = self
                    .resolve_item(merged.siblings().map(|(_, v)| v))
                    .map(|state| ClientReply::Item(state.item()))
                    .map_err(corrupt);
                self.finish_item(op, result, Release::Now);
            }
            Ok(merged) => self.write_item(op, Some(merged)),
        }
    }

    /// Computes the new version from what was read (`None`: the coordinator's own copy only)
    /// and starts its put.
    fn write_item(&mut self, op: OpId, read: Option<VersionSet>) {
        // Out of the table while the write is computed (the clock needs `&mut self`).
        let Some(Operation::Item(mut item)) = self.ops.remove(&op) else {
            return;
        };
        let key = item.request.key.encode();
        let computed = match self.store.get(&key) {
            Ok(local) => {
                let local = local.unwrap_or_default();
                self.compute_write(&item.request, read.as_ref(), &local)
                    .map(|computed| (computed, local))
            }
            Err(e) => Err(RequestError::Storage {
                detail: e.to_string(),
            }),
        };
        let ((old, new, state, stamp), local) = match computed {
            Ok(computed) => computed,
            Err(e) => {
                self.ops.insert(op, Operation::Item(item));
                self.finish_item(op, Err(e), Release::Now);
                return;
            }
        };
        item.phase = Phase::Writing { old, new, stamp };
        let w = item.w;
        // As for the read: the put's own error should reach the client first.
        let timeout = item
            .deadline
            .since(self.now)
            .mul_f64(0.9)
            .max(Duration::from_millis(1));
        self.ops.insert(op, Operation::Item(item));
        let value = state.to_value();
        match &read {
            Some(read) => {
                let context = read.context();
                let basis = Supersedes::Context(&context);
                self.start_put(
                    ReplyTo::Item(op),
                    key,
                    value,
                    basis,
                    w,
                    timeout,
                    Some(local),
                );
            }
            None => {
                let basis = Supersedes::LocalCopy;
                self.start_put(
                    ReplyTo::Item(op),
                    key,
                    value,
                    basis,
                    w,
                    timeout,
                    Some(local),
                );
            }
        }
    }

    /// The old item, the new item, the stamped state to write and the write's stamp.
    fn compute_write(
        &mut self,
        request: &ItemRequest,
        read: Option<&VersionSet>,
        local: &VersionSet,
    ) -> Result<(Option<Item>, Option<Item>, StampedItem, Stamp), RequestError> {
        let siblings = read
            .into_iter()
            .chain(std::iter::once(local))
            .flat_map(|set| set.siblings().map(|(_, v)| v));
        let state = self.resolve_item(siblings).map_err(corrupt)?;
        let old = state.item();
        let condition = match &request.action {
            ItemAction::Put { condition, .. }
            | ItemAction::Update { condition, .. }
            | ItemAction::Delete { condition } => condition.as_ref(),
            ItemAction::Get { .. } => None,
        };
        if let Some(condition) = condition
            && !condition.holds(old.as_ref())
        {
            return Err(RequestError::ConditionFailed { item: old });
        }
        self.clock.observe(state.newest_stamp());
        let stamp = self.clock.stamp(self.now, self.actor);
        invariant!(
            stamp > state.newest_stamp(),
            "item write stamped {stamp} at or before the state it read"
        );
        let schema = &request.table.schema;
        let own = match &request.action {
            ItemAction::Put { item, .. } => StampedItem::put(item, stamp),
            ItemAction::Delete { .. } => StampedItem::delete(stamp),
            ItemAction::Update { update, .. } => {
                let key_attributes = schema.key_attributes(&request.key.key);
                let outcome = update.apply(
                    old.as_ref(),
                    |name| schema.is_key_attribute(name),
                    &key_attributes,
                )?;
                let mut changes = outcome.changes;
                // The key attributes at the update's stamp: the row marker.
                for (name, value) in key_attributes {
                    changes.insert(name, Some(value));
                }
                StampedItem::update(changes, stamp)
            }
            // Not reached: a get never writes. Writing the state back unchanged is harmless.
            ItemAction::Get { .. } => StampedItem::absent(),
        };
        let state = state.merged(&own);
        let new = state.item();
        Ok((old, new, state, stamp))
    }

    /// The one item that versions resolve to (`StampedItem::from_siblings`), or what one of the
    /// simulator's sabotages makes of them.
    pub(super) fn resolve_item<'a>(
        &self,
        values: impl Iterator<Item = &'a Value>,
    ) -> Result<StampedItem, ItemError> {
        if !self.config.sabotaged(|s| s.any()) {
            return StampedItem::from_siblings(values);
        }
        let values: Vec<&Value> = values.collect();
        if self.config.sabotaged(|s| s.item_deletion_wins)
            && values.iter().any(|v| matches!(v, Value::ItemTombstone(_)))
        {
            return Ok(StampedItem::absent());
        }
        if self.config.sabotaged(|s| s.item_whole_version_wins) {
            let mut newest = StampedItem::absent();
            for value in values {
                let version = StampedItem::from_siblings(std::iter::once(value))?;
                if version.newest_stamp() > newest.newest_stamp() {
                    newest = version;
                }
            }
            return Ok(newest);
        }
        StampedItem::from_siblings(values)
    }

    /// The item operation's put answered.
    pub(super) fn on_item_written(&mut self, op: OpId, result: ClientResult, release: Release) {
        let Some(Operation::Item(item)) = self.ops.get(&op) else {
            return;
        };
        let Phase::Writing { old, new, stamp } = &item.phase else {
            return;
        };
        let result = match result {
            Ok(ClientReply::Written { version, .. }) => Ok(ClientReply::ItemWritten {
                old: old.clone(),
                new: new.clone(),
                stamp: *stamp,
                version,
            }),
            other => other,
        };
        self.finish_item(op, result, release);
    }

    /// Answers the item operation and forgets it.
    fn finish_item(&mut self, op: OpId, result: ClientResult, release: Release) {
        if let Some(Operation::Item(item)) = self.ops.remove(&op) {
            self.timers.cancel(Timer::OpDeadline(op));
            self.answer(item.reply_to, result, release);
        }
    }

    /// The item operation's deadline passed before its read or write answered.
    pub(super) fn on_item_deadline(&mut self, item: ItemOp) {
        let needed = match item.phase {
            Phase::Reading => 1,
            Phase::Writing { .. } => item.w,
        };
        let e = RequestError::Quorum {
            needed,
            acks: 0,
            tried: Vec::new(),
            failures: Vec::new(),
        };
        self.stats.requests_failed += 1;
        self.answer(item.reply_to, Err(e), Release::Now);
    }
}

/// Stored versions that do not decode as an item: a corrupt record or a peer's garbage.
fn corrupt(e: ItemError) -> RequestError {
    RequestError::Storage {
        detail: format!("stored item does not decode: {e}"),
    }
}
