//! Faults applied to the world as the scenario's timeline and the nemesis fire them:
//! partitions, one-way and flapping links, slow nodes, crashes with or without the disk,
//! restarts, clock skew.

use super::*;

impl World {
    pub(super) fn apply_fault(&mut self, action: FaultAction) {
        let ids = |v: &[u64]| -> Vec<NodeId> { v.iter().map(|&n| NodeId(n)).collect() };
        match action {
            FaultAction::Partition { groups } => {
                let groups: Vec<Vec<NodeId>> = groups.iter().map(|g| ids(g)).collect();
                self.network.partition(&groups);
            }
            FaultAction::OneWay { from, to } => self.network.one_way(&ids(&from), &ids(&to)),
            FaultAction::Bridge { sides, .. } => {
                let groups: Vec<Vec<NodeId>> = sides.iter().map(|g| ids(g)).collect();
                self.network.partition(&groups);
            }
            FaultAction::Flap { groups, .. } => {
                // Expanded by the timeline; a bare flap partitions once.
                let groups: Vec<Vec<NodeId>> = groups.iter().map(|g| ids(g)).collect();
                self.network.partition(&groups);
            }
            FaultAction::Slow { node, extra } => self.network.slow(NodeId(node), extra),
            FaultAction::Heal => self.network.heal(),
            FaultAction::Crash { node, lose_disk } => {
                let Some(index) = self.index_of(NodeId(node)) else {
                    return;
                };
                if lose_disk {
                    self.nodes[index].disk_lost_at = Some(self.now);
                }
                if lose_disk && self.nodes[index].node.is_none() {
                    // Already down: its disk goes now.
                    self.nodes[index].crashed_store = Some(MemoryStore::new(self.store_policy()));
                }
                if let Some(running) = self.nodes[index].node.take() {
                    let mut store = running.into_store();
                    if lose_disk {
                        store = MemoryStore::new(self.store_policy());
                    } else {
                        store.crash();
                    }
                    self.nodes[index].crashed_store = Some(store);
                    self.nodes[index].incarnation += 1;
                    self.nodes[index].timer_at = None;
                    self.nodes[index].flush_pending = false;
                    // Its sync under way, if any, never ends: the new process starts afresh.
                    self.nodes[index].gate = OutputGate::default();
                    // A new process: its clock starts from the raw clock again.
                    self.nodes[index].clock_floor = Time::ZERO;
                }
            }
            FaultAction::Restart { node } => {
                if let Some(index) = self.index_of(NodeId(node))
                    && self.nodes[index].node.is_none()
                {
                    self.start_node(index);
                }
            }
            FaultAction::Skew {
                node,
                skew_ms,
                drift_ppm,
            } => {
                if let Some(index) = self.index_of(NodeId(node)) {
                    self.nodes[index].skew_us = skew_ms.saturating_mul(1000);
                    self.nodes[index].drift_ppm = drift_ppm.clamp(-999_999, 1_000_000);
                    self.nodes[index].timer_at = None;
                    self.rearm(index);
                }
            }
        }
    }

    // ----- clients -----
}
