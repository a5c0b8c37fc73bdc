//! Batches (BatchGetItem, BatchWriteItem): the node that takes a batch runs each of its item
//! operations as if a client had sent it alone, then answers once with every outcome.
//!
//! Each operation routes, forwards and coordinates on its own (its key's preference list), so
//! a batch over many partitions runs in parallel across the cluster. Each item is atomic, the
//! batch is not: an operation that fails is reported `Unprocessed` with its error, for the
//! client to retry (DynamoDB's `UnprocessedItems`), while the others stand.
//!
//! # Invariants
//! - A batch answers its client exactly once, after every operation answered (each one does:
//!   its own deadline guarantees it), and only once every write it reports is durable where
//!   its coordinator said so (the answer waits for the latest of their releases).
//! - A batch holds gets only or unconditional puts and deletes only, within DynamoDB's sizes,
//!   and no key twice (validated before any operation starts).

use super::coordinator::{Operation, ReplyTo};
use super::{Node, Release};
use crate::protocol::OpId;
use crate::request::{
    BatchOutcome, BatchRequest, ClientOp, ClientReply, ClientRequest, ClientResult, ItemAction,
    MAX_BATCH_GETS, MAX_BATCH_WRITES, RequestError,
};
use crate::store::Store;
use std::collections::BTreeSet;

/// A batch in flight.
pub(super) struct BatchOp {
    reply_to: ReplyTo,
    outcomes: Vec<Option<BatchOutcome>>,
    /// The latest release among the writes answered so far.
    release: Release,
}

fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::InvalidBatch {
        message: message.into(),
    }
}

/// Checks the batch rules of the module docs.
pub(super) fn validate_batch(batch: &BatchRequest) -> Result<(), RequestError> {
    let gets = batch
        .items
        .iter()
        .filter(|i| matches!(i.action, ItemAction::Get { .. }))
        .count();
    if batch.items.is_empty() {
        return Err(invalid("a batch needs at least one operation"));
    }
    if gets != 0 && gets != batch.items.len() {
        return Err(invalid("a batch holds gets only, or puts and deletes only"));
    }
    let max = if gets > 0 {
        MAX_BATCH_GETS
    } else {
        MAX_BATCH_WRITES
    };
    if batch.items.len() > max {
        return Err(invalid(format!(
            "a batch holds at most {max} of these operations, not {}",
            batch.items.len()
        )));
    }
    let mut keys = BTreeSet::new();
    for item in &batch.items {
        match &item.action {
            ItemAction::Update { .. } => {
                return Err(invalid("a batch cannot hold an update"));
            }
            ItemAction::Put {
                condition: Some(_), ..
            }
            | ItemAction::Delete { condition: Some(_) } => {
                return Err(invalid("a batch write cannot have a condition"));
            }
            _ => {}
        }
        if !keys.insert(item.key.encode()) {
            return Err(invalid("provided list of item keys contains duplicates"));
        }
    }
    Ok(())
}

fn later(a: Release, b: Release) -> Release {
    match (a, b) {
        (Release::Now, other) | (other, Release::Now) => other,
        (Release::AfterSync { syncs_begun: x }, Release::AfterSync { syncs_begun: y }) => {
            Release::AfterSync {
                syncs_begun: x.max(y),
            }
        }
    }
}

impl<S: Store> Node<S> {
    pub(super) fn start_batch(&mut self, reply_to: ReplyTo, request: ClientRequest) {
        let ClientOp::Batch(batch) = request.op else {
            return;
        };
        if let Err(e) = validate_batch(&batch) {
            self.stats.requests_failed += 1;
            self.answer(reply_to, Err(e), Release::Now);
            return;
        }
        let op = self.new_op_id();
        let count = batch.items.len();
        let state = BatchOp {
            reply_to,
            outcomes: vec![None; count],
            release: Release::Now,
        };
        self.ops.insert(op, Operation::Batch(Box::new(state)));
        for (index, item) in batch.items.into_iter().enumerate() {
            let one = ClientRequest {
                op: ClientOp::Item(Box::new(item)),
                r: request.r,
                w: request.w,
                timeout_ms: request.timeout_ms,
            };
            // Each answers through `on_batch_answer`, at once or later.
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            self.on_client_request(ReplyTo::Batch { op, index }, one);
        }
    }

    /// One operation of a batch answered.
    pub(super) fn on_batch_answer(
        &mut self,
        op: OpId,
        index: u32,
        result: ClientResult,
        release: Release,
    ) {
        let Some(Operation::Batch(batch)) = self.ops.get_mut(&op) else {
            return;
        };
        let outcome = match result {
            Ok(ClientReply::Item(item)) => BatchOutcome::Read(item),
            Ok(ClientReply::ItemWritten { .. }) => {
                batch.release = later(batch.release, release);
                BatchOutcome::Written
            }
            Ok(_) => BatchOutcome::Unprocessed(RequestError::InvalidBatch {
                message: "an operation of the batch got an answer of another kind".into(),
            }),
            Err(e) => BatchOutcome::Unprocessed(e),
        };
        if let Some(slot) = batch.outcomes.get_mut(index as usize) {
            invariant!(slot.is_none(), "batch operation {index} answered twice");
            *slot = Some(outcome);
        }
        if batch.outcomes.iter().all(Option::is_some)
            && let Some(Operation::Batch(batch)) = self.ops.remove(&op)
        {
            let outcomes = batch.outcomes.into_iter().flatten().collect();
            self.answer(
                batch.reply_to,
                Ok(ClientReply::Batch(outcomes)),
                batch.release,
            );
        }
    }
}
