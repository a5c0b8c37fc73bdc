//! Range handoff (Dynamo §4.9): keys this node holds but no longer replicates move to the nodes
//! that do, and are dropped here only once those nodes have them.
//!
//! Joins and leaves are both a ring change. After one, some keys on this node fall outside
//! their preference list: a node that left the ring (`Leaving`) holds only such keys; an old
//! owner holds the arcs a new node took over. Every `handoff_interval`, the node scans the next
//! stretch of its store (a cursor walks the ring) for up to `handoff_batch` such keys and sends
//! each to every node of its preference list (`Transfer`). Each receiver merges durably and
//! acknowledges (`TransferAck`). A key is removed here only if every replica acknowledged it,
//! and only if its set did not change since it was sent (`remove_if_digest`); otherwise a later
//! round sends it again. No key is lost in a join or a leave, whatever fails in between.
//!
//! A leaving node whose full pass over the ring found nothing left to move, and that holds no
//! hint, gossips `Left`.
//!
//! # Limits
//! - A key whose replicas are not all judged up waits for a later round.
//! - One batch in flight at a time; a batch not fully acknowledged by the request timeout
//!   drops only the keys it could and retries the rest later.

use super::{Node, Timer};
use crate::NodeId;
use crate::membership::MemberStatus;
use crate::protocol::{KeyVersions, MAX_BATCH_BYTES, OpId, PeerMessage};
use crate::request::ReplicaFailure;
use crate::ring::TokenRange;
use crate::store::{ScanCursor, Store};
use std::collections::{BTreeMap, BTreeSet};

/// Pages scanned per round at most, so that a node full of owned keys does bounded work.
const MAX_PAGES_PER_ROUND: usize = 16;

/// One key being handed off.
struct Moving {
    key: Vec<u8>,
    digest: u64,
    /// The transfer messages (one per replica) carrying it.
    carried_by: Vec<OpId>,
}

/// A batch in flight.
struct Batch {
    keys: Vec<Moving>,
    /// Transfer message → its receiver.
    pending: BTreeMap<OpId, NodeId>,
    acked: BTreeSet<OpId>,
    /// The transfer whose deadline times the batch out.
    deadline_op: OpId,
}

/// Handoff state: the scan cursor and the batch in flight.
#[derive(Default)]
pub(super) struct Handoff {
    cursor: Option<ScanCursor>,
    batch: Option<Batch>,
    /// Whether the current pass over the ring found any key to move.
    found_in_pass: bool,
}

impl Handoff {
    /// The ring changed: a new pass starts, so a leave cannot complete on an old pass.
    pub(super) fn ring_changed(&mut self) {
        self.found_in_pass = true;
    }
}

impl<S: Store> Node<S> {
    pub(super) fn handoff_round(&mut self) {
        if self.handoff.batch.is_some() {
            return;
        }
        let n = usize::from(self.config.n);
        let mut moving: Vec<(KeyVersions, Vec<NodeId>)> = Vec::new();
        let mut moving_bytes = 0;
        let mut pass_ended = false;
        for _ in 0..MAX_PAGES_PER_ROUND {
            let page = match self.store.scan(
                TokenRange::full(),
                self.handoff.cursor.as_ref(),
                self.config.handoff_batch,
            ) {
                Ok(page) => page,
                Err(_) => return,
            };
            for entry in page.entries {
                let replicas: Vec<NodeId> = match self.ring.as_ref() {
                    Some(ring) => ring.preference_list(&entry.key, n).iter().collect(),
                    None => Vec::new(),
                };
                if replicas.is_empty() || replicas.contains(&self.id) {
                    continue;
                }
                self.handoff.found_in_pass = true;
                if replicas.iter().all(|&r| self.is_up(r)) {
                    let item = KeyVersions {
                        key: entry.key,
                        versions: entry.versions,
                    };
                    moving_bytes += item.approx_bytes();
                    moving.push((item, replicas));
                }
            }
            self.handoff.cursor = page.next;
            if self.handoff.cursor.is_none() {
                pass_ended = true;
                break;
            }
            if moving.len() >= self.config.handoff_batch || moving_bytes > MAX_BATCH_BYTES {
                break;
            }
        }
        if pass_ended {
            let found = std::mem::replace(&mut self.handoff.found_in_pass, false);
            let leaving = self.status() == MemberStatus::Leaving;
            if leaving && !found && moving.is_empty() && self.store.hint_counts().is_empty() {
                self.finish_leaving();
            }
        }
        if !moving.is_empty() {
            self.send_handoff_batch(moving);
        }
    }

    fn send_handoff_batch(&mut self, moving: Vec<(KeyVersions, Vec<NodeId>)>) {
        let mut per_target: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for (index, (_, replicas)) in moving.iter().enumerate() {
            for &replica in replicas {
                per_target.entry(replica).or_default().push(index);
            }
        }
        let mut keys: Vec<Moving> = moving
            .iter()
            .map(|(item, _)| Moving {
                key: item.key.clone(),
                digest: item.versions.digest(),
                carried_by: Vec::new(),
            })
            .collect();
        let mut pending = BTreeMap::new();
        let mut first_op = None;
        for (target, indices) in per_target {
            let op = self.new_op_id();
            first_op.get_or_insert(op);
            pending.insert(op, target);
            let items: Vec<KeyVersions> = indices
                .iter()
                .map(|&i| {
                    keys[i].carried_by.push(op);
                    moving[i].0.clone()
                })
                .collect();
            self.send(target, PeerMessage::Transfer { batch: op, items });
        }
        let Some(deadline_op) = first_op else {
            return;
        };
        self.timers.set(
            Timer::HandoffBatchDeadline(deadline_op),
            self.now + self.config.request_timeout,
        );
        self.handoff.batch = Some(Batch {
            keys,
            pending,
            acked: BTreeSet::new(),
            deadline_op,
        });
    }

    pub(super) fn on_transfer_ack(
        &mut self,
        from: NodeId,
        op: OpId,
        outcome: Result<(), ReplicaFailure>,
    ) {
        let Some(batch) = self.handoff.batch.as_mut() else {
            self.stats.messages_ignored += 1;
            return;
        };
        if batch.pending.get(&op) != Some(&from) {
            self.stats.messages_ignored += 1;
            return;
        }
        batch.pending.remove(&op);
        if outcome.is_ok() {
            batch.acked.insert(op);
        }
        if batch.pending.is_empty() {
            self.finish_handoff_batch();
        }
    }

    /// Drops every key all of whose replicas acknowledged it.
    fn finish_handoff_batch(&mut self) {
        let Some(batch) = self.handoff.batch.take() else {
            return;
        };
        self.timers
            .cancel(Timer::HandoffBatchDeadline(batch.deadline_op));
        let delivered: Vec<&Moving> = batch
            .keys
            .iter()
            .filter(|m| m.carried_by.iter().all(|op| batch.acked.contains(op)))
            .collect();
        if delivered.is_empty() {
            return;
        }
        // Our versions of these keys now live only elsewhere: never stamp with this actor again.
        self.new_epoch();
        for moving in delivered {
            if matches!(self.remove_local(&moving.key, moving.digest), Ok(true)) {
                self.stats.keys_handed_off += 1;
            }
        }
    }

    /// A batch timed out: keep what was fully delivered, retry the rest later.
    pub(super) fn on_handoff_deadline(&mut self, op: OpId) {
        if self
            .handoff
            .batch
            .as_ref()
            .is_some_and(|batch| batch.deadline_op == op)
        {
            self.finish_handoff_batch();
        }
    }
}
