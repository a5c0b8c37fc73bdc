//! Hinted handoff (Dynamo §4.6): writes held for an owner that could not take them.
//!
//! A fallback that receives a `Replicate` with `hint_for` stores the set durably in the store's
//! hint area and acknowledges; the write counts toward W. Every `hint_replay_interval`, for each
//! owner with hints that the failure detector judges up, the holder sends one batch
//! (`HintDelivery`); the owner merges the sets durably and acknowledges the ids (`HintAck`); only
//! then does the holder delete them. Hints live in the store, so they survive a restart of the
//! holder.
//!
//! # Limits (Cassandra's hint window, ringstore's choices)
//! - A hint older than `hint_window` is dropped at replay time: after a long outage, anti-entropy
//!   repairs the owner instead. `hint_window < tombstone_grace` (checked by the config) so a
//!   dropped-late hint cannot resurrect a collected delete.
//! - At most `max_hints_per_owner` hints per owner: past that a fallback refuses the hinted write
//!   and the coordinator tries the next fallback (or fails the quorum).
//! - One batch per owner in flight; a batch not acknowledged by the request timeout is resent
//!   at a later round (merging is idempotent, so a duplicate delivery is harmless).
//! - Hints for an owner that has left the cluster, and every hint of a node that is leaving, are
//!   merged into the holder's own data, where range handoff moves them to the key's current
//!   replicas.

use super::{Node, Timer};
use crate::NodeId;
use crate::membership::MemberStatus;
use crate::protocol::{KeyVersions, MAX_BATCH_BYTES, OpId, PeerMessage};
use crate::request::ReplicaFailure;
use crate::store::{HintId, Store};
use std::collections::BTreeMap;

/// Hint batches in flight: batch handle → (owner, hint ids).
#[derive(Default)]
pub(super) struct HintReplay {
    in_flight: BTreeMap<OpId, (NodeId, Vec<HintId>)>,
}

impl<S: Store> Node<S> {
    /// Stores a hinted write for `owner`, or refuses it when the owner already has too many.
    pub(super) fn store_hint(
        &mut self,
        owner: NodeId,
        item: &KeyVersions,
    ) -> Result<(), ReplicaFailure> {
        let held = self.store.hint_counts().get(&owner).copied().unwrap_or(0);
        if held >= self.config.max_hints_per_owner {
            self.stats.hints_dropped += 1;
            return Err(ReplicaFailure::Refused);
        }
        self.store
            .put_hint(owner, &item.key, &item.versions, self.now.as_millis())
            .map(|_| ())
            .map_err(|e| ReplicaFailure::Storage {
                detail: e.to_string(),
            })
    }

    /// The number of hints this node holds, per owner.
    pub fn hints_pending(&self) -> BTreeMap<NodeId, u64> {
        self.store.hint_counts()
    }

    pub(super) fn replay_hints(&mut self) {
        if self.config.sabotaged(|s| s.no_hint_replay) {
            return;
        }
        let leaving = self.status() != MemberStatus::Up;
        let window_ms = u64::try_from(self.config.hint_window.as_millis()).unwrap_or(u64::MAX);
        let now_ms = self.now.as_millis();
        for (owner, _) in self.store.hint_counts() {
            if self.hints.in_flight.values().any(|(o, _)| *o == owner) {
                continue;
            }
            let owner_gone = self
                .members
                .get(owner)
                .is_some_and(|m| m.status == MemberStatus::Left);
            let absorb = leaving || owner_gone || owner == self.id;
            if !absorb && !self.is_up(owner) {
                self.drop_expired_hints(owner, window_ms, now_ms);
                continue;
            }
            let Ok(hints) = self.store.hints_for(owner, None, self.config.hint_batch) else {
                continue;
            };
            let mut batch = Vec::with_capacity(hints.len());
            let mut ids = Vec::with_capacity(hints.len());
            let mut batch_bytes = 0;
            for hint in hints {
                if now_ms.saturating_sub(hint.created_at_ms) >= window_ms {
                    if let Ok(true) = self.store.remove_hint(owner, hint.id) {
                        self.stats.hints_dropped += 1;
                    }
                    continue;
                }
                if absorb {
                    // Range handoff takes it from here.
                    if self.merge_local(&hint.key, &hint.versions).is_ok() {
                        let _ = self.store.remove_hint(owner, hint.id);
                    }
                    continue;
                }
                let item = KeyVersions {
                    key: hint.key,
                    versions: hint.versions,
                };
                batch_bytes += item.approx_bytes();
                if !batch.is_empty() && batch_bytes > MAX_BATCH_BYTES {
                    break;
                }
                ids.push(hint.id);
                batch.push((hint.id.0, item));
            }
            if batch.is_empty() {
                continue;
            }
            let op = self.new_op_id();
            self.hints.in_flight.insert(op, (owner, ids));
            self.timers.set(
                Timer::HintBatchDeadline(op),
                self.now + self.config.request_timeout,
            );
            self.send(
                owner,
                PeerMessage::HintDelivery {
                    batch: op,
                    hints: batch,
                },
            );
        }
    }

    /// Drops the oldest hints of `owner` that outlived the hint window (one batch per round).
    fn drop_expired_hints(&mut self, owner: NodeId, window_ms: u64, now_ms: u64) {
        let Ok(hints) = self.store.hints_for(owner, None, self.config.hint_batch) else {
            return;
        };
        for hint in hints {
            if now_ms.saturating_sub(hint.created_at_ms) < window_ms {
                break;
            }
            if let Ok(true) = self.store.remove_hint(owner, hint.id) {
                self.stats.hints_dropped += 1;
            }
        }
    }

    /// The owner's side: merge each hinted set durably, acknowledge the ids merged.
    pub(super) fn on_hint_delivery(
        &mut self,
        from: NodeId,
        batch: OpId,
        hints: Vec<(u64, KeyVersions)>,
    ) {
        let mut ids = Vec::with_capacity(hints.len());
        for (id, item) in hints {
            if self.merge_local(&item.key, &item.versions).is_ok() {
                ids.push(id);
            }
        }
        self.send_after_sync(from, PeerMessage::HintAck { batch, ids });
    }

    /// The holder's side: the owner has these durably; delete them.
    pub(super) fn on_hint_ack(&mut self, from: NodeId, batch: OpId, ids: Vec<u64>) {
        let Some((owner, sent)) = self.hints.in_flight.remove(&batch) else {
            self.stats.messages_ignored += 1;
            return;
        };
        self.timers.cancel(Timer::HintBatchDeadline(batch));
        if owner != from {
            self.stats.messages_ignored += 1;
            return;
        }
        for id in ids {
            let id = HintId(id);
            if sent.contains(&id) && matches!(self.store.remove_hint(owner, id), Ok(true)) {
                self.stats.hints_delivered += 1;
            }
        }
    }

    /// A hint batch timed out: forget it, the next round resends.
    pub(super) fn on_hint_batch_deadline(&mut self, op: OpId) {
        self.hints.in_flight.remove(&op);
    }
}
