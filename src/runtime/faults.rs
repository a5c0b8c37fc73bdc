//! Fault injection on the live transport: partitions and slow links, set through the admin
//! endpoints (`/admin/partition`, `/admin/slow`, `/admin/heal`).
//!
//! The transport consults [`Faults`] for every frame: a frame to or from a blocked peer is
//! dropped (counted as such), and a frame to a slowed peer waits the configured delay before
//! it is written. This lets a test or an operator partition a real cluster without touching
//! the network, the way the simulator partitions its virtual one.
//!
//! # Guarantees
//! - A partition is symmetric from this node's view: nothing is sent to or accepted from a
//!   blocked peer. Connections stay open (QUIC keep-alives continue), so healing is instant.
//! - Delays apply to outbound frames only: `slow` on node A delays A → B, not B → A.
//! - `heal` clears every drop and delay.
//!
//! # Known limits
//! - Faults are per process and not persisted: a restart heals.

use ringstore_core::NodeId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::time::Duration;

/// The fault state shared by the admin endpoints and the transport.
#[derive(Debug, Default)]
pub struct Faults {
    state: RwLock<FaultState>,
}

/// A snapshot of the faults in force (what `/admin/*` answers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultState {
    /// Peers whose traffic is dropped both ways.
    pub blocked: BTreeSet<NodeId>,
    /// Delay added to every outbound frame, whatever its peer (`slow` with `peers: null`).
    pub delay_all_ms: Option<u64>,
    /// Delay added to outbound frames to these peers.
    pub delay_ms: BTreeMap<NodeId, u64>,
}

impl Faults {
    /// Blocks all traffic to and from `peers` (added to those already blocked).
    pub fn partition(&self, peers: &[NodeId]) -> FaultState {
        self.update(|state| state.blocked.extend(peers.iter().copied()))
    }

    /// Delays outbound traffic to `peers`, or to every peer when `None`.
    pub fn slow(&self, peers: Option<&[NodeId]>, delay: Duration) -> FaultState {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.update(|state| match peers {
            None => state.delay_all_ms = Some(ms),
            Some(peers) => {
                for &peer in peers {
                    state.delay_ms.insert(peer, ms);
                }
            }
        })
    }

    /// Clears every drop and delay.
    pub fn heal(&self) -> FaultState {
        self.update(|state| *state = FaultState::default())
    }

    /// The faults in force.
    pub fn snapshot(&self) -> FaultState {
        self.read(|state| state.clone())
    }

    /// Whether traffic with `peer` is dropped.
    pub fn is_blocked(&self, peer: NodeId) -> bool {
        self.read(|state| state.blocked.contains(&peer))
    }

    /// How long a frame to `peer` waits before it is written (the larger of a per-peer and a
    /// global delay), if at all.
    pub fn delay_to(&self, peer: NodeId) -> Option<Duration> {
        self.read(|state| {
            let ms = state.delay_ms.get(&peer).copied().max(state.delay_all_ms)?;
            Some(Duration::from_millis(ms))
        })
    }

    fn read<T>(&self, f: impl FnOnce(&FaultState) -> T) -> T {
        // The state is plain data: a panic elsewhere cannot leave it half-updated.
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    fn update(&self, f: impl FnOnce(&mut FaultState)) -> FaultState {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
        guard.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Partitions and delays apply to the peers named, combine, and heal clears them all.
    #[test]
    fn partition_slow_and_heal() {
        let faults = Faults::default();
        faults.partition(&[NodeId(2)]);
        faults.partition(&[NodeId(3)]);
        assert!(faults.is_blocked(NodeId(2)) && faults.is_blocked(NodeId(3)));
        assert!(!faults.is_blocked(NodeId(4)));

        faults.slow(Some(&[NodeId(4)]), Duration::from_millis(50));
        assert_eq!(faults.delay_to(NodeId(4)), Some(Duration::from_millis(50)));
        assert_eq!(faults.delay_to(NodeId(5)), None);
        faults.slow(None, Duration::from_millis(20));
        assert_eq!(faults.delay_to(NodeId(5)), Some(Duration::from_millis(20)));
        assert_eq!(faults.delay_to(NodeId(4)), Some(Duration::from_millis(50)));

        let healed = faults.heal();
        assert_eq!(healed, FaultState::default());
        assert!(!faults.is_blocked(NodeId(2)));
        assert_eq!(faults.delay_to(NodeId(4)), None);
    }
}
