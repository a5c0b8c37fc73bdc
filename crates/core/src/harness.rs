//! The node harness: several [`Node`]s on [`MemoryStore`]s in one process, exchanging messages
//! through one FIFO queue, under virtual time. The node scenario tests and the golden scripts
//! (`crates/core/tests/golden/`) drive nodes through it.
//!
//! # Model
//! - **Network**: a message sent is queued; [`Cluster::deliver_next`] hands the oldest one to
//!   its receiver at the current time, instantly. A message from or to a node that is down, or
//!   across a cut (an isolated node, or two sides of a partition), is dropped when delivered.
//! - **Time**: moves only when the queue is empty, to the earliest deadline of any node
//!   ([`Cluster::run_until`]), so a run is a function of its inputs and the seed.
//! - **Disks**: a crash keeps only synced writes ([`MemoryStore::crash`]); a lost disk keeps
//!   nothing. Outputs are taken with [`Node::drain_outputs`] (sync inline, then everything):
//!   the group-commit window is one drain.
//!
//! # Why the simulator does not use it
//! `ringstore-sim`'s `World` drives the same nodes, but its network is the point of it:
//! per-link latency distributions, loss, duplication, one-way and flapping partitions, clock
//! skew and drift, a group-commit window in virtual time, and one event queue shared with its
//! clients and its nemesis. Instant FIFO delivery here is what makes a golden script's
//! message list short and exact; the simulator's delays are what make its runs find races.
//! The anti-entropy bytes experiment (`ringstore-experiments`) keeps a loop of its own for the
//! same reason: it measures exchanges over the simulator's network (latency, a partition) on
//! stores preloaded with a million keys, with per-node configurations.
//!
//! # Invariants
//! - Every message sent is delivered or dropped exactly once, in send order.
//! - Virtual time never goes backwards (the nodes check it too).
//! - A client request's reply is kept until taken; each [`ClientId`] is used once.

use crate::config::NodeConfig;
use crate::node::{ClientId, Input, Node, NodeIdentity, Output};
use crate::protocol::PeerMessage;
use crate::request::{ClientReply, ClientRequest, ClientResult, ReadResult};
use crate::store::{MemoryStore, Store, SyncPolicy};
use crate::version::{CausalContext, VersionSet};
use crate::{NodeId, Time};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// The longest a [`Cluster::request`] waits for its reply, in virtual time.
pub const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// The seed every harness cluster's nodes draw their randomness from (a run is a function of
/// its inputs and this).
pub const HARNESS_SEED: u64 = 7;

/// Short timings for harness runs, so that scenarios take virtual seconds: gossip every
/// 100 ms, hint replay and handoff every 200 ms, a 500 ms request deadline and 100 ms before a
/// put goes sloppy, 16 virtual nodes; anti-entropy and tombstone collection hourly (off,
/// unless a run waits that long or sets its own).
pub fn fast_config() -> NodeConfig {
    NodeConfig {
        gossip_interval: Duration::from_millis(100),
        hint_replay_interval: Duration::from_millis(200),
        anti_entropy_interval: Duration::from_secs(3600),
        handoff_interval: Duration::from_millis(200),
        tombstone_gc_interval: Duration::from_secs(3600),
        request_timeout: Duration::from_millis(500),
        sloppy_after: Duration::from_millis(100),
        vnodes: 16,
        ..NodeConfig::default()
    }
}

/// A message in the queue.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// What it says.
    pub message: PeerMessage,
}

/// What happened to a message handed on by [`Cluster::deliver_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The receiver stepped it.
    Delivered,
    /// The receiver is down (crashed or never started).
    ReceiverDown,
    /// A cut (isolation or partition) lies between sender and receiver.
    Cut,
}

/// Why the harness could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No node with this id is running.
    #[error("{0} is not running")]
    NotRunning(NodeId),
    /// No crashed node with this id waits for a restart.
    #[error("{0} is not crashed")]
    NotCrashed(NodeId),
    /// A node refused to start.
    #[error("{node} did not start: {reason}")]
    Start {
        /// The node.
        node: NodeId,
        /// What it said.
        reason: String,
    },
    /// A request got no reply within [`REQUEST_WAIT`].
    #[error("no reply from {node} within {REQUEST_WAIT:?} of virtual time")]
    NoReply {
        /// The node asked.
        node: NodeId,
    },
}

/// A handful of nodes exchanging messages through one queue (see the module docs).
pub struct Cluster {
    config: NodeConfig,
    policy: SyncPolicy,
    nodes: BTreeMap<NodeId, Node<MemoryStore>>,
    /// Stores of crashed nodes, waiting for a restart.
    crashed: BTreeMap<NodeId, MemoryStore>,
    queue: VecDeque<Envelope>,
    /// Nodes cut off from everyone.
    isolated: BTreeSet<NodeId>,
    /// Partition sides: a node's side number; nodes on different sides cannot talk. Empty
    /// when healed; a node in no side talks to everyone.
    sides: BTreeMap<NodeId, usize>,
    replies: BTreeMap<ClientId, ClientResult>,
    /// Every message stepped or dropped and every reply, in order, while recording.
    log: Option<Vec<Happening>>,
    now: Time,
    next_client: u64,
}

/// One entry of the recording (see [`Cluster::record`]).
#[derive(Clone, Debug)]
pub enum Happening {
    /// A message left the queue.
    Message {
        /// The message.
        envelope: Envelope,
        /// What became of it.
        fate: Fate,
    },
    /// A node answered a client.
    Reply {
        /// The node.
        node: NodeId,
        /// The request.
        id: ClientId,
        /// The answer.
        result: ClientResult,
    },
}

impl Cluster {
    /// `count` nodes (ids 1..=count) on empty stores that sync every write, each seeded with
    /// node 1 (and every node started before it).
    pub fn new(count: u64, config: NodeConfig) -> Result<Self, HarnessError> {
        Self::with_policy(count, config, SyncPolicy::EveryWrite)
    }

    /// Like [`Cluster::new`], on stores with `policy` (group commit leaves writes unsynced
    /// until the next drain).
    pub fn with_policy(
        count: u64,
        config: NodeConfig,
        policy: SyncPolicy,
    ) -> Result<Self, HarnessError> {
        Self::with_stores(
            config,
            policy,
            (1..=count).map(|id| (NodeId(id), MemoryStore::new(policy))),
        )
    }

    /// Nodes on the given stores (already filled, say), started in the order given.
    pub fn with_stores(
        config: NodeConfig,
        policy: SyncPolicy,
        stores: impl IntoIterator<Item = (NodeId, MemoryStore)>,
    ) -> Result<Self, HarnessError> {
        let mut cluster = Cluster {
            config,
            policy,
            nodes: BTreeMap::new(),
            crashed: BTreeMap::new(),
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            sides: BTreeMap::new(),
            replies: BTreeMap::new(),
            log: None,
            now: Time::from_millis(1),
            next_client: 1,
        };
        for (id, store) in stores {
            cluster.start(id, store)?;
        }
        Ok(cluster)
    }

    /// Starts node `id` on `store`, seeded with node 1 and every node already running.
    pub fn start(&mut self, id: NodeId, store: MemoryStore) -> Result<(), HarnessError> {
        let seeds: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .chain(std::iter::once(NodeId(1)))
            .filter(|&n| n != id)
            .collect();
        let identity = NodeIdentity {
            id,
            addr: format!("node-{}", id.0),
            zone: None,
            seeds,
        };
        let node = Node::new(self.config.clone(), identity, store, HARNESS_SEED, self.now)
            .map_err(|e| HarnessError::Start {
                node: id,
                reason: e.to_string(),
            })?;
        self.nodes.insert(id, node);
        Ok(())
    }

    /// The configuration nodes start with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The configuration for nodes started from now on (restarts included).
    pub fn config_mut(&mut self) -> &mut NodeConfig {
        &mut self.config
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// A running node.
    pub fn node(&self, id: impl Into<NodeId>) -> Option<&Node<MemoryStore>> {
        self.nodes.get(&id.into())
    }

    /// A running node, to step by hand.
    pub fn node_mut(&mut self, id: impl Into<NodeId>) -> Option<&mut Node<MemoryStore>> {
        self.nodes.get_mut(&id.into())
    }

    /// The running nodes, by id.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node<MemoryStore>)> {
        self.nodes.iter().map(|(&id, node)| (id, node))
    }

    /// Messages waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Starts recording what happens (messages and replies), dropping an earlier recording.
    pub fn record(&mut self) {
        self.log = Some(Vec::new());
    }

    /// What happened since [`Cluster::record`] or the last call; recording goes on.
    pub fn take_recording(&mut self) -> Vec<Happening> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Moves every node's outputs into the queue and the reply map.
    fn collect(&mut self) {
        for (&node, running) in self.nodes.iter_mut() {
            for out in running.drain_outputs() {
                match out {
                    Output::Send { to, message } => self.queue.push_back(Envelope {
                        from: node,
                        to,
                        message,
                    }),
                    Output::Reply { id, result } => {
                        if let Some(log) = self.log.as_mut() {
                            log.push(Happening::Reply {
                                node,
                                id,
                                result: result.clone(),
                            });
                        }
                        self.replies.insert(id, result);
                    }
                }
            }
        }
    }

    /// Whether a cut lies between `a` and `b`.
    fn cut(&self, a: NodeId, b: NodeId) -> bool {
        if self.isolated.contains(&a) || self.isolated.contains(&b) {
            return true;
        }
        matches!((self.sides.get(&a), self.sides.get(&b)), (Some(x), Some(y)) if x != y)
    }

    /// Collects outputs, then hands the oldest queued message to its receiver (or drops it);
    /// `None` when the queue is empty.
    pub fn deliver_next(&mut self) -> Option<(Envelope, Fate)> {
        self.collect();
        let envelope = self.queue.pop_front()?;
        let fate = if self.cut(envelope.from, envelope.to) {
            Fate::Cut
        } else if let Some(node) = self.nodes.get_mut(&envelope.to) {
            let input = Input::Peer {
                from: envelope.from,
                message: envelope.message.clone(),
            };
            node.step(self.now, input);
            Fate::Delivered
        } else {
            Fate::ReceiverDown
        };
        if let Some(log) = self.log.as_mut() {
            log.push(Happening::Message {
                envelope: envelope.clone(),
                fate: fate.clone(),
            });
        }
        self.collect();
        Some((envelope, fate))
    }

    /// Delivers every queued message, and what they cause, without moving time.
    pub fn stabilize(&mut self) {
        while self.deliver_next().is_some() {}
    }

    /// Delivers queued messages, then advances time to the next deadline, until `until`.
    pub fn run_until(&mut self, until: Time) {
        loop {
            self.stabilize();
            let next = self.nodes.values().filter_map(|n| n.next_deadline()).min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    for node in self.nodes.values_mut() {
                        node.tick(self.now);
                    }
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
    }

    /// [`Cluster::run_until`] `d` from now.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Hands `request` to node `at` and returns its handle; nothing else runs.
    pub fn submit(
        &mut self,
        at: impl Into<NodeId>,
        request: ClientRequest,
    ) -> Result<ClientId, HarnessError> {
        let at = at.into();
        let id = ClientId(self.next_client);
        let now = self.now;
        let node = self
            .nodes
            .get_mut(&at)
            .ok_or(HarnessError::NotRunning(at))?;
        self.next_client += 1;
        node.step(now, Input::Client { id, request });
        self.collect();
        Ok(id)
    }

    /// Whether the reply to `id` came (and was not taken yet).
    pub fn has_reply(&mut self, id: ClientId) -> bool {
        self.collect();
        self.replies.contains_key(&id)
    }

    /// The reply to `id`, if it came (taken: a second call returns `None`).
    pub fn take_reply(&mut self, id: ClientId) -> Option<ClientResult> {
        self.collect();
        self.replies.remove(&id)
    }

    /// Sends a request to node `at` and runs until it is answered, at most [`REQUEST_WAIT`].
    pub fn request(
        &mut self,
        at: impl Into<NodeId>,
        request: ClientRequest,
    ) -> Result<ClientResult, HarnessError> {
        let at = at.into();
        let id = self.submit(at, request)?;
        let deadline = self.now + REQUEST_WAIT;
        // In steps of 10 ms, at least one: what the request sent is delivered (or dropped by
        // the cuts in force) before the caller changes them, even when the answer came at once.
        loop {
            let step = self.now + Duration::from_millis(10);
            self.run_until(step);
            if self.replies.contains_key(&id) || self.now >= deadline {
                break;
            }
        }
        self.replies
            .remove(&id)
            .ok_or(HarnessError::NoReply { node: at })
    }

    /// A put through node `at`.
    pub fn put(
        &mut self,
        at: impl Into<NodeId>,
        key: &str,
        value: &str,
        context: CausalContext,
    ) -> Result<ClientResult, HarnessError> {
        self.request(at, ClientRequest::put(key, value, context))
    }

    /// A get through node `at`: what it read, or the error it answered.
    pub fn get(&mut self, at: impl Into<NodeId>, key: &str) -> Result<ClientResult, HarnessError> {
        self.request(at, ClientRequest::get(key))
    }

    /// The version set node `id` stores for `key` (`None`: absent, or the node is down).
    pub fn stored(&self, id: impl Into<NodeId>, key: &str) -> Option<VersionSet> {
        self.nodes
            .get(&id.into())
            .and_then(|node| node.store().get(key.as_bytes()).ok().flatten())
    }

    /// Crashes node `id`: its unsynced writes are lost, or its whole disk with `lose_disk`.
    pub fn crash(&mut self, id: impl Into<NodeId>, lose_disk: bool) -> Result<(), HarnessError> {
        let id = id.into();
        let node = self.nodes.remove(&id).ok_or(HarnessError::NotRunning(id))?;
        let mut store = node.into_store();
        if lose_disk {
            store = MemoryStore::new(self.policy);
        } else {
            store.crash();
        }
        self.crashed.insert(id, store);
        Ok(())
    }

    /// Restarts a crashed node on what its disk kept.
    pub fn restart(&mut self, id: impl Into<NodeId>) -> Result<(), HarnessError> {
        let id = id.into();
        let store = self
            .crashed
            .remove(&id)
            .ok_or(HarnessError::NotCrashed(id))?;
        self.start(id, store)
    }

    /// Cuts node `id` off from everyone (`false`: lets it talk again).
    pub fn isolate(&mut self, id: NodeId, isolated: bool) {
        if isolated {
            self.isolated.insert(id);
        } else {
            self.isolated.remove(&id);
        }
    }

    /// Splits the nodes into sides that cannot talk to each other; a node in no side talks
    /// to everyone.
    pub fn partition(&mut self, sides: &[Vec<NodeId>]) {
        self.sides.clear();
        for (side, nodes) in sides.iter().enumerate() {
            for &node in nodes {
                self.sides.insert(node, side);
            }
        }
    }

    /// Removes every cut: partitions and isolations.
    pub fn heal(&mut self) {
        self.sides.clear();
        self.isolated.clear();
    }

    /// The replicas of `key` as node `at` routes (empty while it has no ring).
    pub fn replicas(&self, at: impl Into<NodeId>, key: &str) -> Vec<NodeId> {
        let Some(ring) = self.nodes.get(&at.into()).and_then(|node| node.ring()) else {
            return Vec::new();
        };
        ring.preference_list(key.as_bytes(), usize::from(self.config.n))
            .iter()
            .collect()
    }
}

/// The context of a successful write, or the failure as text.
pub fn written(result: &ClientResult) -> Result<CausalContext, String> {
    match result {
        Ok(ClientReply::Written { context, .. }) => Ok(context.clone()),
        other => Err(format!("not a successful write: {other:?}")),
    }
}

/// What a successful get read, or the failure as text.
pub fn read(result: ClientResult) -> Result<ReadResult, String> {
    match result {
        Ok(ClientReply::Read(read)) => Ok(read),
        other => Err(format!("not a successful read: {other:?}")),
    }
}
