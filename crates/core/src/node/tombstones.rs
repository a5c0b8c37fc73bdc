//! Tombstone collection: a deleted key's tombstones are removed once no replica can resurrect
//! the value they deleted.
//!
//! A key is collectable when every live version is a tombstone. Its primary (the first node of
//! its preference list) notes when it first saw it so; once `tombstone_grace` has passed since
//! then, it asks every other replica whether it holds exactly the same set (`TombstoneCheck`,
//! by digest). If all say yes, it tells them to remove it (`TombstonePurge`) and removes its own
//! copy. Each removal is `remove_if_digest`: a write that arrived in the meantime survives.
//!
//! # Why this cannot resurrect a delete
//! - Every replica holds the tombstone before any removes it, so anti-entropy between replicas
//!   has nothing older to spread.
//! - Hints older than `hint_window` are dropped, and `hint_window < tombstone_grace` (checked
//!   by the config): a hint written before the delete expires before the tombstone goes.
//!
//! # Limits
//! - "First seen" lives in memory: a restart restarts the grace period (later, never earlier).
//! - At most [`MAX_TRACKED_TOMBSTONES`] keys are tracked and [`MAX_CHECKS_IN_FLIGHT`] checks run
//!   at a time; the rest wait for later rounds.
//! - A stale copy on a node that is not a replica (a handoff not yet finished) is not asked.

use super::{Node, Timer};
use crate::protocol::{OpId, PeerMessage};
use crate::ring::TokenRange;
use crate::store::{ScanCursor, Store};
use crate::{NodeId, Time};
use std::collections::{BTreeMap, BTreeSet};

/// Keys whose first-seen time is tracked at most.
pub const MAX_TRACKED_TOMBSTONES: usize = 100_000;
/// Tombstone checks in flight at most.
pub const MAX_CHECKS_IN_FLIGHT: usize = 64;
/// Keys examined per collection round (a full pass over 1M keys takes ~250 rounds).
pub const KEYS_PER_ROUND: usize = 4096;

struct Check {
    key: Vec<u8>,
    digest: u64,
    replicas: Vec<NodeId>,
    waiting: BTreeSet<NodeId>,
}

/// Tombstone collection state.
#[derive(Default)]
pub(super) struct TombstoneCollector {
    cursor: Option<ScanCursor>,
    first_seen: BTreeMap<Vec<u8>, Time>,
    checks: BTreeMap<OpId, Check>,
}

impl<S: Store> Node<S> {
    pub(super) fn tombstone_round(&mut self) {
        let n = usize::from(self.config.n);
        let page = match self.store.scan(
            TokenRange::full(),
            self.tombstones.cursor.as_ref(),
            KEYS_PER_ROUND,
        ) {
            Ok(page) => page,
            Err(_) => return,
        };
        self.tombstones.cursor = page.next;
        for entry in page.entries {
            if self.is_dead_key(&entry.key) {
                // A dead table's key: remove it as the scan passes (`tables`).
                let _ = self.remove_local(&entry.key, entry.versions.digest());
                self.tombstones.first_seen.remove(&entry.key);
                continue;
            }
            if !entry.versions.is_deleted() {
                self.tombstones.first_seen.remove(&entry.key);
                continue;
            }
            let replicas: Vec<NodeId> = match self.ring.as_ref() {
                Some(ring) => ring.preference_list(&entry.key, n).iter().collect(),
                None => continue,
            };
            if replicas.first() != Some(&self.id) {
                continue;
            }
            let first_seen = match self.tombstones.first_seen.get(&entry.key) {
                Some(&t) => t,
                None => {
                    if self.tombstones.first_seen.len() < MAX_TRACKED_TOMBSTONES {
                        self.tombstones
                            .first_seen
                            .insert(entry.key.clone(), self.now);
                    }
                    continue;
                }
            };
            let in_check = self.tombstones.checks.values().any(|c| c.key == entry.key);
            if self.now.since(first_seen) < self.config.tombstone_grace
                || in_check
                || self.tombstones.checks.len() >= MAX_CHECKS_IN_FLIGHT
            {
                continue;
            }
            let others: Vec<NodeId> = replicas.into_iter().filter(|&r| r != self.id).collect();
            if !others.iter().all(|&r| self.is_up(r)) {
                continue;
            }
            let digest = entry.versions.digest();
            if others.is_empty() {
                self.purge_tombstone(&entry.key, digest);
                continue;
            }
            let op = self.new_op_id();
            for &replica in &others {
                self.send(
                    replica,
                    PeerMessage::TombstoneCheck {
                        op,
                        key: entry.key.clone(),
                        digest,
                    },
                );
            }
            self.timers.set(
                Timer::TombstoneCheckDeadline(op),
                self.now + self.config.request_timeout,
            );
            self.tombstones.checks.insert(
                op,
                Check {
                    key: entry.key,
                    digest,
                    waiting: others.iter().copied().collect(),
                    replicas: others,
                },
            );
        }
    }

    pub(super) fn on_tombstone_check(&mut self, from: NodeId, op: OpId, key: Vec<u8>, digest: u64) {
        let holds = matches!(self.store.digest(&key), Ok(Some(d)) if d == digest);
        self.send(from, PeerMessage::TombstoneCheckReply { op, holds });
    }

    pub(super) fn on_tombstone_check_reply(&mut self, from: NodeId, op: OpId, holds: bool) {
        let Some(check) = self.tombstones.checks.get_mut(&op) else {
            return;
        };
        if !holds {
            self.tombstones.checks.remove(&op);
            self.timers.cancel(Timer::TombstoneCheckDeadline(op));
            return;
        }
        check.waiting.remove(&from);
        if !check.waiting.is_empty() {
            return;
        }
        let Some(check) = self.tombstones.checks.remove(&op) else {
            return;
        };
        self.timers.cancel(Timer::TombstoneCheckDeadline(op));
        for &replica in &check.replicas {
            self.send(
                replica,
                PeerMessage::TombstonePurge {
                    key: check.key.clone(),
                    digest: check.digest,
                },
            );
        }
        self.purge_tombstone(&check.key, check.digest);
    }

    pub(super) fn on_tombstone_purge(&mut self, key: Vec<u8>, digest: u64) {
        self.purge_tombstone(&key, digest);
    }

    fn purge_tombstone(&mut self, key: &[u8], digest: u64) {
        // Our dots for this key vanish with it: never stamp with this actor again.
        self.new_epoch();
        if matches!(self.remove_local(key, digest), Ok(true)) {
            self.stats.tombstones_collected += 1;
        }
        self.tombstones.first_seen.remove(key);
    }

    /// A check timed out: forget it, a later round asks again.
    pub(super) fn on_tombstone_deadline(&mut self, op: OpId) {
        self.tombstones.checks.remove(&op);
    }
}
