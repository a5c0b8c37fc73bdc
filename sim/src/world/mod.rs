//! The world: an event queue under virtual time that drives K real `ringstore` nodes, the
//! network between them, the clients and the faults, all from one seed.
//!
//! # Determinism
//! Every random choice (latencies, loss, the workload, the nemesis, each node's own RNG seed)
//! flows from one `ChaCha8Rng` seeded with the run's seed; events at the same virtual instant
//! run in the order they were scheduled; nodes are visited in id order. So the same seed and
//! scenario give a bit-identical run, which the trace hash (every processed event folded into
//! xxh3) makes visible.
//!
//! # Time
//! Virtual time is in microseconds. Each node sees its own clock: `skew + v · (1 + drift)`,
//! set per node at start and changed by `skew` faults. A node's driver hands its core the
//! clock's reading but never less than the last one of that process (`SimNode::clock`), as
//! the runtime's does: the core checks that time never goes backwards.
//!
//! # Crashes
//! A crashed node's volatile state and the messages in flight to it are lost; its
//! `MemoryStore` keeps what was synced (`crash()`), or nothing when the disk is lost. A message
//! sent to a node before it crashed is dropped even if it arrives after the restart (a new
//! incarnation has new connections).
//!
//! # Items
//! With the item workload (`WorkloadConfig::items`) the clients run item operations
//! (`item_clients.rs`), the item oracle (`crate::item_oracle`) records them, consistent reads
//! are judged as they answer (`consistent_reads.rs`), and the convergence probe and the final
//! check cover the items' keys too; when the item clients query, the run ends with the
//! end-of-run query check (`query_check.rs`). Without it, none of this draws from the RNG or changes an
//! event, so a kv run is the same run, bit for bit.

mod clients;
mod consistent_reads;
mod faults;
mod item_clients;
mod nodes;
pub mod query_check;
mod quorum_reads;

use crate::item_oracle::{ItemOracle, ItemViolation};
use crate::network::{MessageClass, Network, copies_for};
use crate::oracle::{Oracle, ReadRecord, Supersedes, Violation, WriteRecord};
use crate::scenario::{FaultAction, FaultEvent, Scenario};
use crate::workload::{OpKind, key_index, key_name, value_of, write_id_of};
use clients::{Client, ClientState, ProbeState, op_name};
use nodes::SimNode;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringstore_core::node::{ClientId, Input, Node, NodeIdentity, Output, OutputGate, SyncTicket};
use ringstore_core::protocol::PeerMessage;
use ringstore_core::request::{
    ClientOp, ClientReply, ClientRequest, ClientResult, ItemAction, RequestError,
};
use ringstore_core::store::{MemoryStore, Store, SyncPolicy};
use ringstore_core::version::{CausalContext, Dot, VersionSet};
use ringstore_core::{NodeId, Time};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;
use xxhash_rust::xxh3::Xxh3;

/// Something that happens at a virtual instant.
enum Event {
    /// A message arrives at `to` (if `to` is still the incarnation it was sent to).
    Deliver {
        from: NodeId,
        to: NodeId,
        incarnation: u64,
        /// Boxed: the queue moves events around, and messages are large.
        message: Box<PeerMessage>,
    },
    /// A node's earliest deadline may have come.
    NodeTimer { node: NodeId },
    /// Group commit: a node releases what it produced since its last flush and begins a sync
    /// of its writes, if none is under way (the output gate).
    Flush { node: NodeId, incarnation: u64 },
    /// A node's simulated fsync ended: what it covered may leave.
    SyncDone {
        node: NodeId,
        incarnation: u64,
        ticket: SyncTicket,
    },
    /// A client request arrives at a node.
    Request {
        node: NodeId,
        incarnation: u64,
        id: ClientId,
        request: Box<ClientRequest>,
    },
    /// A node's answer arrives at its client.
    Reply {
        id: ClientId,
        result: Box<ClientResult>,
    },
    /// A client's think time is over.
    ClientWake { client: usize },
    /// A probing client's delay after its write's ack is over: it reads (workload probe mode).
    ProbeRead { client: usize },
    /// A client gives up on its pending operation.
    ClientTimeout { client: usize, op: u64 },
    /// A scheduled fault (boxed: the queue moves events around, and faults are large).
    Fault(Box<FaultAction>),
    /// The workload ends; faults are healed and crashed nodes restart.
    EndOfWorkload,
    /// Check whether the replicas have converged.
    Probe,
}

/// A queued event; ordered by time, then by scheduling order.
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Counts of what happened, for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCounters {
    /// Events processed.
    pub events: u64,
    /// Messages delivered to a node.
    pub deliveries: u64,
    /// Messages dropped by partitions or loss.
    pub dropped: u64,
    /// Client operations completed successfully, by kind ("get", "put", "overwrite", "delete").
    pub ok: BTreeMap<&'static str, u64>,
    /// Client operations that failed, by kind of failure.
    pub failed: BTreeMap<String, u64>,
    /// Client operations that failed or got no answer, by operation ("get", "put").
    pub failed_ops: BTreeMap<&'static str, u64>,
    /// Reads the quorum-read checker judged (it had an acknowledged write to hold them to).
    pub quorum_reads_judged: u64,
}

/// The outcome of one run.
pub struct RunResult {
    /// The oracle's records (for reports and the experiments).
    pub oracle: Oracle,
    /// Rule violations found after quiescence.
    pub violations: Vec<crate::oracle::Violation>,
    /// Virtual time from the end of the workload (heal) to convergence, if reached.
    pub convergence_us: Option<u64>,
    /// Virtual time simulated.
    pub virtual_us: u64,
    /// Counters.
    pub counters: RunCounters,
    /// The trace hash.
    pub trace_hash: u64,
    /// Summed node statistics.
    pub node_stats: ringstore_core::node::NodeStats,
    /// Final version sets of every key's replicas (for reports).
    pub replicas: BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>>,
    /// The item oracle's records, with the item workload.
    pub item_oracle: Option<ItemOracle>,
    /// Final version sets of every item's home replicas, by item number (item workload).
    pub item_replicas: BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>>,
}

/// The simulated world.
pub struct World {
    scenario: Scenario,
    seed: u64,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<SimNode>,
    network: Network,
    clients: Vec<Client>,
    next_client_id: u64,
    next_write_id: u64,
    /// ClientId → client index.
    in_flight: BTreeMap<ClientId, usize>,
    /// Writes in flight: their key, W and when they were sent, for the durability check at
    /// acknowledgement.
    acks_owed: BTreeMap<ClientId, (Vec<u8>, u8, u64)>,
    /// Gets in flight that must reflect some acknowledged write (the quorum-read checker).
    reads_watched: BTreeMap<ClientId, quorum_reads::ReadWatch>,
    /// Consistent GetItems in flight that must reflect some acknowledged attribute write.
    item_reads_watched: BTreeMap<ClientId, consistent_reads::ItemReadWatch>,
    /// Violations found while running (durability at acknowledgement, quorum reads).
    live_violations: Vec<Violation>,
    oracle: Oracle,
    /// The item workload's oracle (`None` without the item workload).
    item_oracle: Option<ItemOracle>,
    counters: RunCounters,
    trace: Xxh3,
    workload_running: bool,
    end_of_workload_us: u64,
    convergence_us: Option<u64>,
    /// The end-of-run query in flight and its answer once it arrived (`query_check.rs`).
    final_query: Option<(ClientId, Option<ClientResult>)>,
}

// The queue moves events on every push and pop: keep them small.
const _: () = assert!(std::mem::size_of::<Scheduled>() <= 56);

const KIND_DELIVER: u8 = 1;

const KIND_TIMER: u8 = 2;

const KIND_REQUEST: u8 = 3;

const KIND_REPLY: u8 = 4;

const KIND_FAULT: u8 = 5;

const KIND_FLUSH: u8 = 6;
const KIND_SYNC_DONE: u8 = 7;

impl World {
    /// Builds the world for `scenario` and `seed` (the scenario must be valid).
    pub fn new(scenario: Scenario, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let network = Network::new(scenario.network.clone());
        let mut world = World {
            seed,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            network,
            clients: Vec::new(),
            next_client_id: 1,
            next_write_id: 1,
            in_flight: BTreeMap::new(),
            acks_owed: BTreeMap::new(),
            reads_watched: BTreeMap::new(),
            item_reads_watched: BTreeMap::new(),
            live_violations: Vec::new(),
            item_oracle: None,
            oracle: if scenario.workload.samples {
                Oracle::with_samples()
            } else {
                Oracle::default()
            },
            counters: RunCounters::default(),
            trace: Xxh3::new(),
            workload_running: true,
            end_of_workload_us: micros(scenario.duration),
            convergence_us: None,
            final_query: None,
            rng: ChaCha8Rng::seed_from_u64(0),
            scenario,
        };
        let skew_max = world.scenario.cluster.skew_max_ms as i64 * 1000;
        let drift_max = world.scenario.cluster.drift_max_ppm as i64;
        for id in 1..=world.scenario.cluster.nodes {
            let skew_us = if skew_max > 0 {
                rng.random_range(-skew_max..=skew_max)
            } else {
                0
            };
            let drift_ppm = if drift_max > 0 {
                rng.random_range(-drift_max..=drift_max)
            } else {
                0
            };
            world.nodes.push(SimNode {
                id: NodeId(id),
                node: None,
                crashed_store: Some(MemoryStore::new(world.store_policy())),
                disk_lost_at: None,
                incarnation: 0,
                skew_us,
                drift_ppm,
                timer_at: None,
                flush_pending: false,
                clock_floor: Time::ZERO,
                gate: OutputGate::default(),
            });
        }
        let timeline = world.scenario.timeline(&mut rng);
        if let Some(items) = world.scenario.workload.items.clone() {
            let lag = world.clock_lag_bound(&timeline);
            world.item_oracle = Some(ItemOracle::new(items, lag));
        }
        world.rng = rng;
        for index in 0..world.nodes.len() {
            world.start_node(index);
        }
        for FaultEvent { at, action } in timeline {
            world.schedule(micros(at), Event::Fault(Box::new(action)));
        }
        for client in 0..world.scenario.workload.clients {
            world.clients.push(Client {
                state: ClientState::Idle,
                op: 0,
                request: None,
                probe: ProbeState::default(),
            });
            let think = world.scenario.workload.think_micros(&mut world.rng);
            let start = micros(world.scenario.warmup) + think;
            world.schedule(start, Event::ClientWake { client });
        }
        let end = world.end_of_workload_us;
        world.schedule(end, Event::EndOfWorkload);
        world
    }

    fn store_policy(&self) -> SyncPolicy {
        if self.scenario.cluster.group_commit {
            SyncPolicy::Group {
                max_delay_ms: 2,
                max_writes: 64,
            }
        } else {
            SyncPolicy::EveryWrite
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn trace(&mut self, kind: u8, a: u64, b: u64) {
        let mut record = [0u8; 25];
        record[..8].copy_from_slice(&self.now.to_le_bytes());
        record[8] = kind;
        record[9..17].copy_from_slice(&a.to_le_bytes());
        record[17..].copy_from_slice(&b.to_le_bytes());
        self.trace.update(&record);
    }

    fn slot(&self, id: NodeId) -> Option<&SimNode> {
        self.index_of(id).map(|i| &self.nodes[i])
    }

    fn index_of(&self, id: NodeId) -> Option<usize> {
        let i = usize::try_from(id.0).ok()?.checked_sub(1)?;
        (i < self.nodes.len()).then_some(i)
    }

    /// Runs until the queue is empty or `until` (virtual µs).
    fn run_until(&mut self, until: u64) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(Scheduled { at, event, .. })) = self.queue.pop() else {
                break;
            };
            self.now = self.now.max(at);
            self.counters.events += 1;
            self.handle(event);
        }
        self.now = self.now.max(until);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver {
                from,
                to,
                incarnation,
                message,
            } => {
                self.trace(KIND_DELIVER, from.0, to.0);
                let Some(index) = self.index_of(to) else {
                    return;
                };
                if self.nodes[index].incarnation != incarnation {
                    self.counters.dropped += 1;
                    return;
                }
                let now = self.nodes[index].clock(self.now);
                let Some(node) = self.nodes[index].node.as_mut() else {
                    self.counters.dropped += 1;
                    return;
                };
                self.counters.deliveries += 1;
                node.step(
                    now,
                    Input::Peer {
                        from,
                        message: *message,
                    },
                );
                self.after_step(index);
            }
            Event::NodeTimer { node } => {
                let Some(index) = self.index_of(node) else {
                    return;
                };
                if self.nodes[index].timer_at != Some(self.now) {
                    return;
                }
                self.nodes[index].timer_at = None;
                self.trace(KIND_TIMER, node.0, 0);
                let now = self.nodes[index].clock(self.now);
                if let Some(n) = self.nodes[index].node.as_mut() {
                    n.tick(now);
                }
                self.after_step(index);
            }
            Event::Flush { node, incarnation } => {
                self.trace(KIND_FLUSH, node.0, incarnation);
                if let Some(index) = self.index_of(node)
                    && self.nodes[index].incarnation == incarnation
                {
                    self.flush(index);
                }
            }
            Event::SyncDone {
                node,
                incarnation,
                ticket,
            } => {
                self.trace(KIND_SYNC_DONE, node.0, incarnation);
                if let Some(index) = self.index_of(node)
                    && self.nodes[index].incarnation == incarnation
                {
                    let slot = &mut self.nodes[index];
                    if let Some(running) = slot.node.as_mut() {
                        slot.gate.sync_ended(running, ticket, Ok(()));
                    }
                    self.flush(index);
                }
            }
            Event::Request {
                node,
                incarnation,
                id,
                request,
            } => {
                self.trace(KIND_REQUEST, node.0, id.0);
                let Some(index) = self.index_of(node) else {
                    return;
                };
                if self.nodes[index].incarnation != incarnation {
                    return;
                }
                let now = self.nodes[index].clock(self.now);
                let get = match &request.op {
                    ClientOp::Get { key } => Some((key.clone(), request.r)),
                    _ => None,
                };
                let consistent_get = match &request.op {
                    ClientOp::Item(item)
                        if matches!(item.action, ItemAction::Get { consistent: true }) =>
                    {
                        Some((item.key.clone(), request.r))
                    }
                    _ => None,
                };
                if let Some(n) = self.nodes[index].node.as_mut() {
                    n.step(
                        now,
                        Input::Client {
                            id,
                            request: *request,
                        },
                    );
                    if let Some((key, r)) = get {
                        self.watch_read(index, id, &key, r);
                    }
                    if let Some((key, r)) = consistent_get {
                        self.watch_item_read(index, id, &key, r);
                    }
                    self.after_step(index);
                }
            }
            Event::Reply { id, result } => {
                self.trace(KIND_REPLY, id.0, u64::from(result.is_ok()));
                self.on_reply(id, *result);
            }
            Event::ClientWake { client } => self.client_next(client),
            Event::ProbeRead { client } => self.probe_read(client),
            Event::ClientTimeout { client, op } => {
                if self.clients[client].op == op
                    && !matches!(self.clients[client].state, ClientState::Idle)
                {
                    if let Some(id) = self.clients[client].request.take() {
                        self.in_flight.remove(&id);
                        self.forget_read(id);
                    }
                    if let ClientState::Writing { key, id } = self.clients[client].state {
                        self.oracle.fail_write(key, id, self.now);
                    }
                    if let ClientState::Item(call) = &self.clients[client].state
                        && let (Some(write), Some(oracle)) = (call.write, self.item_oracle.as_mut())
                    {
                        oracle.fail_write(call.item, write, self.now);
                    }
                    *self.counters.failed.entry("no answer".into()).or_default() += 1;
                    *self
                        .counters
                        .failed_ops
                        .entry(op_name(&self.clients[client].state))
                        .or_default() += 1;
                    self.client_done(client);
                }
            }
            Event::Fault(action) => {
                self.trace(KIND_FAULT, 0, 0);
                self.apply_fault(*action);
            }
            Event::EndOfWorkload => {
                if !self.workload_running {
                    // The probe workload ended early; this is the original end.
                    return;
                }
                self.workload_running = false;
                self.network.heal();
                for index in 0..self.nodes.len() {
                    if self.nodes[index].node.is_none() {
                        self.start_node(index);
                    }
                    self.nodes[index].skew_us = 0;
                    self.nodes[index].drift_ppm = 0;
                }
                self.schedule(self.now + 100_000, Event::Probe);
            }
            Event::Probe => {
                if self.converged() {
                    self.convergence_us = Some(self.now - self.end_of_workload_us);
                } else {
                    self.schedule(self.now + 100_000, Event::Probe);
                }
            }
        }
    }

    /// Every key's replica sets under the final ring of the first running node.
    /// Durability at acknowledgement: when node `by` tells client request `id` its write
    /// succeeded, at least W distinct nodes (home or fallback, each once) must hold the version
    /// in storage a crash would keep. Hints count; copies not yet synced do not. A node that
    /// lost its disk while the write was in flight may have acknowledged it and lost it since,
    /// rightly (its acknowledgement was true when it was made): each such node lowers the
    /// count required by one.
    fn check_ack(&mut self, by: NodeId, id: ClientId, version: Dot) {
        let Some((key, w, sent_at)) = self.acks_owed.remove(&id) else {
            return;
        };
        let lost_disks = self
            .nodes
            .iter()
            .filter(|slot| slot.disk_lost_at.is_some_and(|at| at >= sent_at))
            .count();
        let holders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|slot| {
                let store = slot
                    .node
                    .as_ref()
                    .map(|n| n.store())
                    .or(slot.crashed_store.as_ref());
                store.is_some_and(|store| store.durably_knows(&key, version))
            })
            .map(|slot| slot.id)
            .collect();
        if holders.len() + lost_disks < usize::from(w) {
            let violation = match self.item_of(&key) {
                Some(item) => Violation::Item(Box::new(ItemViolation::AckedBeforeDurable {
                    item,
                    label: self.item_label(item),
                    at_us: self.now,
                    by,
                    w,
                    holders,
                })),
                None => Violation::AckedBeforeDurable {
                    key: key_index(&key).unwrap_or(u64::MAX),
                    at_us: self.now,
                    by,
                    w,
                    holders,
                },
            };
            self.found(violation);
        }
    }

    /// A violation found while running: kept, with its key's (or item's) history as it is now.
    fn found(&mut self, violation: Violation) {
        if let Some(key) = violation.key() {
            self.oracle.pin_history(key);
        }
        if let (Some(item), Some(oracle)) = (violation.item(), self.item_oracle.as_mut()) {
            oracle.pin_history(item);
        }
        self.live_violations.push(violation);
    }

    fn replica_sets(&self) -> BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>> {
        let mut out = BTreeMap::new();
        let Some(ring) = self
            .nodes
            .iter()
            .find_map(|n| n.node.as_ref().and_then(|n| n.ring().cloned()))
        else {
            return out;
        };
        let n = usize::from(self.scenario.node.n);
        for key in 0..self.scenario.workload.keys {
            let name = key_name(key);
            out.insert(key, self.sets_of(&ring, &name, n));
        }
        out
    }

    /// Every item's home replica sets under the final ring of the first running node (empty
    /// without the item workload).
    fn item_replica_sets(&self) -> BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>> {
        let mut out = BTreeMap::new();
        let Some(items) = self.scenario.workload.items.as_ref() else {
            return out;
        };
        let Some(ring) = self
            .nodes
            .iter()
            .find_map(|n| n.node.as_ref().and_then(|n| n.ring().cloned()))
        else {
            return out;
        };
        let n = usize::from(self.scenario.node.n);
        for item in 0..items.items() {
            if let Some(key) = items.key(item) {
                out.insert(item, self.sets_of(&ring, &key.encode(), n));
            }
        }
        out
    }

    /// The version sets of `key` on its `n` home replicas under `ring`.
    fn sets_of(
        &self,
        ring: &ringstore_core::ring::Ring,
        key: &[u8],
        n: usize,
    ) -> Vec<(NodeId, Option<VersionSet>)> {
        ring.preference_list(key, n)
            .iter()
            .map(|node| {
                let set = self
                    .slot(node)
                    .and_then(|s| s.node.as_ref())
                    .and_then(|n| n.store().get(key).ok().flatten());
                (node, set)
            })
            .collect()
    }

    fn converged(&self) -> bool {
        let rings: Vec<u64> = self
            .nodes
            .iter()
            .filter_map(|n| n.node.as_ref().map(|n| n.ring_digest()))
            .collect();
        if rings.windows(2).any(|w| w[0] != w[1]) {
            return false;
        }
        let hints = self
            .nodes
            .iter()
            .filter_map(|n| n.node.as_ref())
            .any(|n| !n.hints_pending().is_empty());
        if hints {
            return false;
        }
        let same = |sets: &Vec<(NodeId, Option<VersionSet>)>| {
            sets.windows(2)
                .all(|w| w[0].1.as_ref().map(|s| s.digest()) == w[1].1.as_ref().map(|s| s.digest()))
        };
        self.replica_sets().values().all(same) && self.item_replica_sets().values().all(same)
    }

    /// Runs the scenario to the end: workload, heal, quiescence, checks.
    pub fn run(mut self) -> RunResult {
        // Run in slices so that quiescence can stop early once converged. The end is read
        // again each slice: the probe workload may end early.
        let slice = 500_000;
        let mut t = 0;
        loop {
            let end = self.end_of_workload_us + micros(self.scenario.quiesce);
            if t >= end {
                break;
            }
            t = (t + slice).min(end);
            self.run_until(t);
            if self.convergence_us.is_some() {
                break;
            }
        }
        let replicas = self.replica_sets();
        let item_replicas = self.item_replica_sets();
        let mut violations = std::mem::take(&mut self.live_violations);
        violations.extend(self.oracle.check(&replicas, self.now));
        if let Some(oracle) = self.item_oracle.as_mut() {
            violations.extend(oracle.check(&item_replicas, self.now));
        }
        violations.extend(self.check_queries());
        let mut node_stats = ringstore_core::node::NodeStats::default();
        for n in self.nodes.iter().filter_map(|n| n.node.as_ref()) {
            node_stats.accumulate(n.stats());
        }
        self.trace.update(&self.seed.to_le_bytes());
        RunResult {
            trace_hash: self.trace.digest(),
            oracle: self.oracle,
            violations,
            convergence_us: self.convergence_us,
            virtual_us: self.now,
            counters: self.counters,
            node_stats,
            replicas,
            item_oracle: self.item_oracle,
            item_replicas,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
