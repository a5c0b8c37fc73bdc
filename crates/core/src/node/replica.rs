//! What a node does as a replica: merge what coordinators, repairers and handoffs send it, and
//! answer reads.
//!
//! Every write goes through [`Node::merge_local`], the one place where the store is written and
//! the per-peer Merkle trees are kept in step with it (incrementally, from the digest before and
//! after the merge).
//!
//! # Invariants
//! - A `ReplicateAck` or `TransferAck` that says "ok" is released only after the store synced
//!   (see `Node::drain_outputs`).
//! - A fallback stores a hinted write only in the hint area, never as its own data: it is not a
//!   replica of the key, and its reads must not answer for it.

use super::Node;
use crate::NodeId;
use crate::protocol::{KeyVersions, OpId, PeerMessage};
use crate::request::ReplicaFailure;
use crate::store::{MergeOutcome, Store, StoreError};
use crate::version::VersionSet;

impl<S: Store> Node<S> {
    /// Merges `set` into the key's stored set and keeps the Merkle trees in step.
    pub(super) fn merge_local(
        &mut self,
        key: &[u8],
        set: &VersionSet,
    ) -> Result<MergeOutcome, StoreError> {
        if self.is_dead_key(key) {
            // A dead table's data never comes back (`tables`): nothing is written.
            return Ok(MergeOutcome {
                merged: set.clone(),
                previous_digest: None,
                digest: set.digest(),
                changed: false,
            });
        }
        let outcome = if self.config.sabotaged(|s| s.single_sibling_merge) {
            let current = self.store.get(key)?;
            let mut merged = current.clone().unwrap_or_default();
            merged.merge(set);
            merged.sabotage_keep_one_sibling();
            if let Some(current) = &current {
                self.store.remove_if_digest(key, current.digest())?;
            }
            let mut outcome = self.store.merge(key, &merged)?;
            outcome.previous_digest = current.map(|c| c.digest());
            outcome.changed = outcome.previous_digest != Some(outcome.digest);
            outcome
        } else {
            self.store.merge(key, set)?
        };
        if self.config.sabotaged(|s| s.purge_tombstones_at_once) && outcome.merged.is_deleted() {
            self.store.remove_if_digest(key, outcome.digest)?;
            self.trees.on_write(
                self.ring.as_ref(),
                self.id,
                usize::from(self.config.n),
                key,
                outcome.previous_digest,
                None,
            );
            return Ok(outcome);
        }
        if outcome.changed {
            self.trees.on_write(
                self.ring.as_ref(),
                self.id,
                usize::from(self.config.n),
                key,
                outcome.previous_digest,
                Some(outcome.digest),
            );
        }
        Ok(outcome)
    }

    /// Removes a key whose set still has `digest`, keeping the Merkle trees in step.
    pub(super) fn remove_local(&mut self, key: &[u8], digest: u64) -> Result<bool, StoreError> {
        let removed = self.store.remove_if_digest(key, digest)?;
        if removed {
            self.trees.on_write(
                self.ring.as_ref(),
                self.id,
                usize::from(self.config.n),
                key,
                Some(digest),
                None,
            );
        }
        Ok(removed)
    }

    pub(super) fn on_replicate(
        &mut self,
        from: NodeId,
        op: OpId,
        item: KeyVersions,
        hint_for: Option<NodeId>,
    ) {
        let outcome = match hint_for {
            Some(owner) if owner != self.id => self.store_hint(owner, &item),
            _ => self
                .merge_local(&item.key, &item.versions)
                .map(|_| ())
                .map_err(|e| ReplicaFailure::Storage {
                    detail: e.to_string(),
                }),
        };
        let message = PeerMessage::ReplicateAck { op, outcome };
        self.send_after_sync(from, message);
    }

    pub(super) fn on_read(&mut self, from: NodeId, op: OpId, key: Vec<u8>) {
        let outcome = self.store.get(&key).map_err(|e| ReplicaFailure::Storage {
            detail: e.to_string(),
        });
        self.send(from, PeerMessage::ReadReply { op, outcome });
    }

    pub(super) fn on_repair(&mut self, item: KeyVersions) {
        // A failed repair is retried by anti-entropy.
        let _ = self.merge_local(&item.key, &item.versions);
    }

    /// Range handoff: merge every key, answer once durable.
    pub(super) fn on_transfer(&mut self, from: NodeId, batch: OpId, items: Vec<KeyVersions>) {
        let mut outcome = Ok(());
        for item in &items {
            if let Err(e) = self.merge_local(&item.key, &item.versions) {
                outcome = Err(ReplicaFailure::Storage {
                    detail: e.to_string(),
                });
                break;
            }
        }
        self.send_after_sync(from, PeerMessage::TransferAck { batch, outcome });
    }
}
