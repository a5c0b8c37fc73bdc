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
//! set per node at start and changed by `skew` faults, and never going backwards (the core
//! ignores an earlier `now`).
//!
//! # Crashes
//! A crashed node's volatile state and the messages in flight to it are lost; its
//! `MemoryStore` keeps what was synced (`crash()`), or nothing when the disk is lost. A message
//! sent to a node before it crashed is dropped even if it arrives after the restart (a new
//! incarnation has new connections).

use crate::network::{MessageClass, Network, copies_for};
use crate::oracle::{Oracle, ReadRecord, Supersedes, WriteRecord};
use crate::scenario::{FaultAction, FaultEvent, Scenario};
use crate::workload::{OpKind, key_name, value_of, write_id_of};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringstore_core::node::{ClientId, Input, Node, NodeIdentity, Output};
use ringstore_core::protocol::PeerMessage;
use ringstore_core::request::{ClientReply, ClientRequest, ClientResult, RequestError};
use ringstore_core::store::{MemoryStore, Store, SyncPolicy};
use ringstore_core::version::{CausalContext, VersionSet};
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
    /// Group commit: a node syncs and releases what it produced since its last flush.
    Flush { node: NodeId, incarnation: u64 },
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
    /// A scheduled fault.
    Fault(FaultAction),
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

/// One node slot: the running node, or the store it left behind when it crashed.
struct SimNode {
    id: NodeId,
    node: Option<Node<MemoryStore>>,
    crashed_store: Option<MemoryStore>,
    incarnation: u64,
    skew_us: i64,
    drift_ppm: i64,
    /// The virtual time of the pending `NodeTimer` event, if any.
    timer_at: Option<u64>,
    /// Whether a `Flush` event is pending.
    flush_pending: bool,
    /// The latest time this incarnation's clock has shown: a clock stepped back by a skew
    /// fault reads this until it catches up, as the runtime's clock never goes backwards
    /// within a process (the core checks that time never goes backwards).
    clock_floor: Time,
}

impl SimNode {
    /// What this node's clock reads at virtual time `v`, as its driver hands it to the core:
    /// the skewed, drifting clock, never below what it read before.
    fn clock(&mut self, v: u64) -> Time {
        let t = self.local(v).max(self.clock_floor);
        self.clock_floor = t;
        t
    }

    /// This node's raw clock at virtual time `v` (skew and drift, possibly stepped back).
    fn local(&self, v: u64) -> Time {
        let drifted = v as i128 + (v as i128 * self.drift_ppm as i128) / 1_000_000;
        let t = drifted + self.skew_us as i128;
        Time::from_micros(t.clamp(0, u64::MAX as i128) as u64)
    }

    /// The first virtual time at which this node's clock reads at least `local`.
    fn virtual_at(&self, local: Time) -> u64 {
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

/// What a client is doing.
enum ClientState {
    Idle,
    /// Reading; `then` says what to write with the answer.
    Reading {
        key: u64,
        then: OpKind,
        issued: u64,
    },
    /// Writing write `id`.
    Writing {
        id: u64,
    },
}

struct Client {
    state: ClientState,
    /// The current operation's number (to ignore late answers after a timeout).
    op: u64,
    /// The ClientId of the request in flight.
    request: Option<ClientId>,
    /// Probe mode: the context and id of this client's last acknowledged write, and the
    /// cycles it has started.
    probe: ProbeState,
}

/// A probing client's memory (workload probe mode).
#[derive(Default)]
struct ProbeState {
    context: CausalContext,
    last_write: Option<u64>,
    cycles: u64,
    finished: bool,
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
    oracle: Oracle,
    counters: RunCounters,
    trace: Xxh3,
    workload_running: bool,
    end_of_workload_us: u64,
    convergence_us: Option<u64>,
}

const KIND_DELIVER: u8 = 1;
const KIND_TIMER: u8 = 2;
const KIND_REQUEST: u8 = 3;
const KIND_REPLY: u8 = 4;
const KIND_FAULT: u8 = 5;
const KIND_FLUSH: u8 = 6;

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
            oracle: Oracle::default(),
            counters: RunCounters::default(),
            trace: Xxh3::new(),
            workload_running: true,
            end_of_workload_us: micros(scenario.duration),
            convergence_us: None,
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
                incarnation: 0,
                skew_us,
                drift_ppm,
                timer_at: None,
                flush_pending: false,
                clock_floor: Time::ZERO,
            });
        }
        let timeline = world.scenario.timeline(&mut rng);
        world.rng = rng;
        for index in 0..world.nodes.len() {
            world.start_node(index);
        }
        for FaultEvent { at, action } in timeline {
            world.schedule(micros(at), Event::Fault(action));
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

    /// Starts (or restarts) node `index` on the store it has.
    fn start_node(&mut self, index: usize) {
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
    fn after_step(&mut self, index: usize) {
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

    /// Syncs a node's store (inside `drain_outputs`), routes its outputs, re-arms its timer.
    fn flush(&mut self, index: usize) {
        self.nodes[index].flush_pending = false;
        let outputs = match self.nodes[index].node.as_mut() {
            Some(node) => node.drain_outputs(),
            None => return,
        };
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
                    let delay = self.network.client_delay(&mut self.rng);
                    let result = Box::new(result);
                    self.schedule(self.now + delay, Event::Reply { id, result });
                }
            }
        }
        self.rearm(index);
    }

    /// Schedules a `NodeTimer` event for the node's earliest deadline if none is pending sooner.
    fn rearm(&mut self, index: usize) {
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
                if let Some(n) = self.nodes[index].node.as_mut() {
                    n.step(
                        now,
                        Input::Client {
                            id,
                            request: *request,
                        },
                    );
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
                self.apply_fault(action);
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

    fn apply_fault(&mut self, action: FaultAction) {
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

    fn client_next(&mut self, client: usize) {
        if !self.workload_running {
            return;
        }
        if self.scenario.workload.probe.is_some() {
            self.probe_write(client);
            return;
        }
        let workload = self.scenario.workload.clone();
        let kind = workload.next_op(&mut self.rng);
        let key = workload.next_key(&mut self.rng);
        self.clients[client].op += 1;
        match kind {
            OpKind::Get | OpKind::ReadModifyWrite | OpKind::Delete => {
                self.clients[client].state = ClientState::Reading {
                    key,
                    then: kind,
                    issued: self.now,
                };
                let mut request = ClientRequest::get(key_name(key));
                request.r = workload.r;
                self.send_request(client, request);
            }
            OpKind::BlindWrite => {
                let write = ClientWrite::Put {
                    read: Vec::new(),
                    context: CausalContext::empty(),
                };
                self.start_write(client, key, write);
            }
            OpKind::Overwrite => self.start_write(client, key, ClientWrite::Overwrite),
        }
        let op = self.clients[client].op;
        let timeout = micros(self.scenario.node.request_timeout) * 3;
        self.schedule(self.now + timeout, Event::ClientTimeout { client, op });
    }

    fn start_write(&mut self, client: usize, key: u64, write: ClientWrite) {
        let id = self.next_write_id;
        self.next_write_id += 1;
        let workload = &self.scenario.workload;
        let value = || value_of(id, workload.value_bytes);
        let delete = matches!(write, ClientWrite::Delete { .. });
        let (mut request, supersedes) = match write {
            ClientWrite::Put { read, context } => (
                ClientRequest::put(key_name(key), value(), context),
                Supersedes::Read(read),
            ),
            ClientWrite::Delete { read, context } => (
                ClientRequest::delete(key_name(key), context),
                Supersedes::Read(read),
            ),
            ClientWrite::Overwrite => (
                ClientRequest::overwrite(key_name(key), value()),
                Supersedes::CoordinatorCopy(None),
            ),
        };
        request.w = workload.w;
        self.clients[client].state = ClientState::Writing { id };
        let via = self.send_request(client, request);
        self.oracle.issue_write(WriteRecord {
            id,
            key,
            delete,
            supersedes,
            issued_us: self.now,
            acked_us: None,
            dot: None,
            via,
        });
    }

    /// Sends a request to a random node; returns the node.
    fn send_request(&mut self, client: usize, request: ClientRequest) -> NodeId {
        let id = ClientId(self.next_client_id);
        self.next_client_id += 1;
        let index = self.rng.random_range(0..self.nodes.len());
        let node = self.nodes[index].id;
        let incarnation = self.nodes[index].incarnation;
        self.clients[client].request = Some(id);
        self.in_flight.insert(id, client);
        let delay = self.network.client_delay(&mut self.rng);
        self.schedule(
            self.now + delay,
            Event::Request {
                node,
                incarnation,
                id,
                request: Box::new(request),
            },
        );
        node
    }

    fn on_reply(&mut self, id: ClientId, result: ClientResult) {
        let Some(client) = self.in_flight.remove(&id) else {
            return;
        };
        self.clients[client].request = None;
        let state = std::mem::replace(&mut self.clients[client].state, ClientState::Idle);
        match (state, result) {
            (ClientState::Reading { key, then, issued }, Ok(ClientReply::Read(read))) => {
                *self.counters.ok.entry("get").or_default() += 1;
                let seen: Vec<u64> = read.values.iter().filter_map(|v| write_id_of(v)).collect();
                self.oracle.complete_read(ReadRecord {
                    key,
                    issued_us: issued,
                    completed_us: self.now,
                    seen: seen.clone(),
                    tombstones: read.has_tombstones,
                });
                match then {
                    OpKind::ReadModifyWrite => {
                        let write = ClientWrite::Put {
                            read: seen,
                            context: read.context,
                        };
                        self.start_write(client, key, write);
                    }
                    OpKind::Delete if !read.values.is_empty() => {
                        let write = ClientWrite::Delete {
                            read: seen,
                            context: read.context,
                        };
                        self.start_write(client, key, write);
                    }
                    _ => self.client_done(client),
                }
            }
            (ClientState::Writing { id }, Ok(ClientReply::Written { version, context })) => {
                let kind = match self.oracle.writes.get(&id) {
                    Some(w) if w.delete => "delete",
                    Some(w) if matches!(w.supersedes, Supersedes::CoordinatorCopy(_)) => {
                        "overwrite"
                    }
                    _ => "put",
                };
                *self.counters.ok.entry(kind).or_default() += 1;
                self.oracle
                    .ack_write(id, self.now, version, context.clone());
                if self.scenario.workload.probe.is_some() {
                    self.probe_acked(client, id, context);
                } else {
                    self.client_done(client);
                }
            }
            (state, Err(e)) => {
                *self.counters.failed.entry(failure_kind(&e)).or_default() += 1;
                *self.counters.failed_ops.entry(op_name(&state)).or_default() += 1;
                self.client_done(client);
            }
            (_, Ok(_)) => {
                *self
                    .counters
                    .failed
                    .entry("mismatched reply".into())
                    .or_default() += 1;
                self.client_done(client);
            }
        }
    }

    // ----- the visibility probe (workload probe mode) -----

    /// Starts a probe cycle: the client writes its own key with the context of its last write,
    /// or finishes when it has run its cycles (and ends the workload once every client has).
    fn probe_write(&mut self, client: usize) {
        let Some(probe) = self.scenario.workload.probe.as_ref() else {
            return;
        };
        let quota = probe.cycles_per_client;
        let state = &mut self.clients[client].probe;
        if state.cycles >= quota {
            state.finished = true;
            if self.clients.iter().all(|c| c.probe.finished) {
                self.end_of_workload_us = self.now;
                self.schedule(self.now, Event::EndOfWorkload);
            }
            return;
        }
        state.cycles += 1;
        let context = state.context.clone();
        let read: Vec<u64> = state.last_write.into_iter().collect();
        let key = client as u64 % self.scenario.workload.keys;
        self.clients[client].op += 1;
        self.start_write(client, key, ClientWrite::Put { read, context });
        self.schedule_timeout(client);
    }

    /// The probe's write was acknowledged: remember its context, read after the cycle's delay.
    fn probe_acked(&mut self, client: usize, id: u64, context: CausalContext) {
        let state = &mut self.clients[client].probe;
        state.context = context;
        state.last_write = Some(id);
        let cycle = state.cycles;
        let delay = self
            .scenario
            .workload
            .probe
            .as_ref()
            .map_or(0, |p| p.delay_micros(client, cycle));
        self.clients[client].state = ClientState::Idle;
        self.schedule(self.now + delay, Event::ProbeRead { client });
    }

    /// The probe's read of its own key.
    fn probe_read(&mut self, client: usize) {
        if !self.workload_running {
            return;
        }
        let key = client as u64 % self.scenario.workload.keys;
        self.clients[client].op += 1;
        self.clients[client].state = ClientState::Reading {
            key,
            then: OpKind::Get,
            issued: self.now,
        };
        let mut request = ClientRequest::get(key_name(key));
        request.r = self.scenario.workload.r;
        self.send_request(client, request);
        self.schedule_timeout(client);
    }

    fn schedule_timeout(&mut self, client: usize) {
        let op = self.clients[client].op;
        let timeout = micros(self.scenario.node.request_timeout) * 3;
        self.schedule(self.now + timeout, Event::ClientTimeout { client, op });
    }

    fn client_done(&mut self, client: usize) {
        self.clients[client].state = ClientState::Idle;
        if self.workload_running {
            let think = self.scenario.workload.think_micros(&mut self.rng);
            self.schedule(self.now + think, Event::ClientWake { client });
        }
    }

    // ----- checking -----

    /// Every key's replica sets under the final ring of the first running node.
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
            let sets: Vec<(NodeId, Option<VersionSet>)> = ring
                .preference_list(&name, n)
                .iter()
                .map(|node| {
                    let set = self
                        .slot(node)
                        .and_then(|s| s.node.as_ref())
                        .and_then(|n| n.store().get(&name).ok().flatten());
                    (node, set)
                })
                .collect();
            out.insert(key, sets);
        }
        out
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
        self.replica_sets().values().all(|sets| {
            sets.windows(2)
                .all(|w| w[0].1.as_ref().map(|s| s.digest()) == w[1].1.as_ref().map(|s| s.digest()))
        })
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
        let violations = self.oracle.check(&replicas);
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
        }
    }
}

/// The operation a client state stands for, for the per-operation failure counts.
/// A client's write, with what it supersedes.
enum ClientWrite {
    /// A put after a read that returned the values `read` and `context` (a blind write: both
    /// empty).
    Put {
        read: Vec<u64>,
        context: CausalContext,
    },
    /// A delete after a read.
    Delete {
        read: Vec<u64>,
        context: CausalContext,
    },
    /// An overwrite: its coordinator decides what it supersedes.
    Overwrite,
}

fn op_name(state: &ClientState) -> &'static str {
    match state {
        ClientState::Reading { .. } => "get",
        ClientState::Writing { .. } | ClientState::Idle => "put",
    }
}

/// A name for a failure kind, for the report.
fn failure_kind(e: &RequestError) -> String {
    match e {
        RequestError::Quorum { .. } => "quorum",
        RequestError::InvalidQuorum { .. } => "invalid quorum",
        RequestError::EmptyKey | RequestError::KeyTooLarge { .. } => "bad key",
        RequestError::ValueTooLarge { .. } => "value too large",
        RequestError::TooManySiblings { .. } => "too many siblings",
        RequestError::Overloaded { .. } => "overloaded",
        RequestError::NoReplicas => "no replicas",
        RequestError::Storage { .. } => "storage",
    }
    .to_string()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
