//! The node slots of the world: each a running node or the store its crash left, its clock
//! (skew, drift, never backwards within a process), starting a node, routing its outputs into
//! the network, and re-arming its timer.

use super::*;

/// One node slot: the running node, or the store it left behind when it crashed.
pub(super) struct SimNode {
    pub(super) id: NodeId,
    pub(super) node: Option<Node<MemoryStore>>,
    pub(super) crashed_store: Option<MemoryStore>,
    /// When the node last lost its disk (virtual µs): copies it acknowledged before are gone,
    /// rightly, and the durability check at acknowledgement does not count on them.
    pub(super) disk_lost_at: Option<u64>,
    pub(super) incarnation: u64,
    pub(super) skew_us: i64,
    pub(super) drift_ppm: i64,
    /// The virtual time of the pending `NodeTimer` event, if any.
    pub(super) timer_at: Option<u64>,
    /// Whether a `Flush` event is pending.
    pub(super) flush_pending: bool,
    /// The latest time this incarnation's clock has shown: a clock stepped back by a skew
    /// fault reads this until it catches up, as the runtime's clock never goes backwards
    /// within a process (the core checks that time never goes backwards).
    pub(super) clock_floor: Time,
    /// What may leave when, and the sync under way: the runtime's rule (`OutputGate`).
    pub(super) gate: OutputGate,
}

impl SimNode {
    /// What this node's clock reads at virtual time `v`, as its driver hands it to the core:
    /// the skewed, drifting clock, never below what it read before.
    pub(super) fn clock(&mut self, v: u64) -> Time {
        let t = self.local(v).max(self.clock_floor);
        self.clock_floor = t;
        t
    }

    /// This node's raw clock at virtual time `v` (skew and drift, possibly stepped back).
    pub(super) fn local(&self, v: u64) -> Time {
        let drifted = v as i128 + (v as i128 * self.drift_ppm as i128) / 1_000_000;
        let t = drifted + self.skew_us as i128;
        Time::from_micros(t.clamp(0, u64::MAX as i128) as u64)
    }

    /// The first virtual time at which this node's clock reads at least `local`.
    pub(super) fn virtual_at(&self, local: Time) -> u64 {
        let target = local.as_micros() as i128 - self.skew_us as i128;
        let scale = 1_000_000 + self.drift_ppm as i128;
        if scale <= 0 {
            return u64::MAX;
        }
        // ceil(target * 1e6 / scale)
        let v = (target * 1_000_000 + scale - 1).div_euclid(scale);
        v.clamp(0, u64::MAX as i128) as u64
    }
}

impl World {
    /// Starts (or restarts) node `index` on the store it has.
    pub(super) fn start_node(&mut self, index: usize) {
        let seeds: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let slot = &mut self.nodes[index];
        let Some(store) = slot.crashed_store.take() else {
            return;
        };
        slot.incarnation += 1;
        let identity = NodeIdentity {
            id: slot.id,
            addr: format!("sim-{}", slot.id.0),
            zone: None,
            seeds: seeds.into_iter().filter(|&s| s != slot.id).collect(),
        };
        let node_seed = self.rng.random::<u64>();
        let now = slot.clock(self.now);
        match Node::new(self.scenario.node.clone(), identity, store, node_seed, now) {
            Ok(node) => slot.node = Some(node),
            Err(e) => {
                // A start-up failure is a finding, not a crash of the simulator.
                *self
                    .counters
                    .failed
                    .entry(format!("node start: {e}"))
                    .or_default() += 1;
            }
        }
        self.after_step(index);
    }

    /// After a node handled an input: flush now, or within the group-commit window.
    pub(super) fn after_step(&mut self, index: usize) {
        let window = micros(self.scenario.cluster.group_commit_window);
        if !self.scenario.cluster.group_commit || window == 0 {
            self.flush(index);
            return;
        }
        if !self.nodes[index].flush_pending && self.nodes[index].node.is_some() {
            self.nodes[index].flush_pending = true;
            let node = self.nodes[index].id;
            let incarnation = self.nodes[index].incarnation;
            self.schedule(self.now + window, Event::Flush { node, incarnation });
        }
        self.rearm(index);
    }

    /// Releases what may leave (through the output gate, as the runtime's driver does), routes
    /// it, begins a sync whose end comes after a simulated fsync latency, re-arms the timer.
    /// Outputs that claim durability wait in the node until that sync ends; a crash before
    /// then loses the writes the sync would have made durable.
    pub(super) fn flush(&mut self, index: usize) {
        self.nodes[index].flush_pending = false;
        let slot = &mut self.nodes[index];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let released = slot.gate.after_inputs(node);
        if let Some(ticket) = released.begin_sync {
            let node = slot.id;
            let incarnation = slot.incarnation;
            let fsync = self.scenario.cluster.fsync.sample_micros(&mut self.rng);
            let event = Event::SyncDone {
                node,
                incarnation,
                ticket,
            };
            self.schedule(self.now + fsync.max(1), event);
        }
        let outputs = released.outputs;
        let from = self.nodes[index].id;
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    let class = MessageClass::of(&message);
                    let delays = self.network.route(&mut self.rng, from, to, class);
                    if delays.is_empty() {
                        self.counters.dropped += 1;
                        continue;
                    }
                    let incarnation = self.slot(to).map_or(0, |slot| slot.incarnation);
                    for (delay, message) in copies_for(delays, Box::new(message)) {
                        let event = Event::Deliver {
                            from,
                            to,
                            incarnation,
                            message,
                        };
                        self.schedule(self.now + delay, event);
                    }
                }
                Output::Reply { id, result } => {
                    if let Ok(
                        ClientReply::Written { version, .. }
                        | ClientReply::ItemWritten { version, .. },
                    ) = &result
                    {
                        self.check_ack(from, id, *version);
                    }
                    let delay = self.network.client_delay(&mut self.rng);
                    let result = Box::new(result);
                    self.schedule(self.now + delay, Event::Reply { id, result });
                }
            }
        }
        self.rearm(index);
    }

    /// Schedules a `NodeTimer` event for the node's earliest deadline if none is pending sooner.
    pub(super) fn rearm(&mut self, index: usize) {
        let slot = &self.nodes[index];
        let Some(deadline) = slot.node.as_ref().and_then(|n| n.next_deadline()) else {
            return;
        };
        let at = slot.virtual_at(deadline).max(self.now + 1);
        if slot.timer_at.is_some_and(|t| t <= at && t > self.now) {
            return;
        }
        let node = slot.id;
        self.nodes[index].timer_at = Some(at);
        self.schedule(at, Event::NodeTimer { node });
    }
}
