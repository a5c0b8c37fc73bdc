//! The node: ringstore's protocol logic for one node, as a deterministic state machine.
//!
//! # Shape (sans-IO)
//! A [`Node`] owns its [`Store`], its membership view and every operation in flight. A driver
//! feeds it inputs with the current time and drains its outputs:
//!
//! ```text
//! node.step(now, Input::Peer { from, message })      // a message arrived
//! node.step(now, Input::Client { id, request })      // a get / put / delete
//! node.tick(now)                                     // its earliest deadline passed
//! for out in node.drain_outputs() { ... }            // Send { to, message } | Reply { id, result }
//! node.next_deadline()                               // sleep until then
//! ```
//!
//! The node never reads a clock, never blocks, never spawns, and draws randomness only from the
//! seeded RNG it was built with: the simulator and the real runtime drive this same code.
//!
//! # Durability (raft-rs's `Ready` rule)
//! Every output that claims durability (a replica's ack, a client's "written", a hint or
//! transfer ack) records the writes it vouches for, and leaves only once a sync that began
//! after those writes has completed. A driver that syncs once per batch of inputs gets group
//! commit: many writes, one fsync, each acknowledged only after its sync. If the sync fails,
//! those outputs turn into failures.
//!
//! Outputs that wait for a sync stay inside the node until it completes. Two ways to drive it:
//! [`Node::drain_outputs`] syncs the store inline (when anything is unsynced) and returns every
//! output (the simulator's and the tests' way); or the driver calls [`Node::take_ready`] for
//! what may leave now, [`Node::begin_sync`] to start a sync of every write so far, runs the
//! fsync wherever it likes (the real runtime: on a syncer thread, so the core never blocks
//! on the disk) and reports it with [`Node::complete_sync`]; the next `take_ready` releases
//! what it covered. Either way a coordinator's `Replicate` messages never wait for its own
//! fsync, and a put's reply waits only for the sync of the coordinator's own write: one fsync
//! on a write's critical path instead of three.
//!
//! # The mechanisms (Dynamo §4), one file each
//! - [`coordinator`](self::coordinator): validating, forwarding and answering client requests
//!   (§4.5);
//! - [`sloppy_quorum`](self::sloppy_quorum): puts, with fallbacks for replicas that are down
//!   (§4.6);
//! - [`quorum_read`](self::quorum_read): gets of R replicas, speculative retry (§4.5);
//! - [`read_repair`](self::read_repair): repairing the stale replicas a get found (§4.5);
//! - [`replica`](self::replica): what a replica does with writes, reads and repairs it receives;
//! - [`hinted_handoff`](self::hinted_handoff): durable hints for unreachable replicas and
//!   their replay (§4.6);
//! - [`anti_entropy`](self::anti_entropy): Merkle-tree exchanges with each peer (§4.7);
//! - [`gossip`](self::gossip): membership, failure detection and the ring (§4.8);
//! - [`range_handoff`](self::range_handoff): moving keys to their new owners after a join or
//!   leave (§4.9);
//! - [`tombstones`](self::tombstones): collecting tombstones once every replica has them;
//! - [`items`](self::items): GetItem, PutItem, UpdateItem and DeleteItem on the get and put
//!   paths;
//! - [`tables`](self::tables): the table catalog: requests, gossip, dead tables' data;
//! - [`query`](self::query): queries of one partition, merged from R replicas' pages;
//! - [`batch`](self::batch): batches of item operations;
//! - [`scan`](self::scan): scans of a table's segment, arc by arc.
//!
//! # Actors and epochs
//! A node stamps versions with an [`ActorId`] drawn from its RNG, which is seeded from the driver's
//! seed, the node id and the node's persisted *generation* (incremented and synced at every
//! start), so no two starts share an actor. It draws a new one at every start and before it
//! drops keys (handoff, tombstone collection): a version it
//! stamped may exist on other nodes while its own copy is gone, and stamping again from an empty
//! local copy with the same actor would reuse a dot (Riak's "vnode epochs" solve the same
//! problem). The cost is one version-vector entry per (key, epoch that wrote it).
//!
//! # Invariants (`debug_assert!`, on in tests and in the simulator)
//! - Every client request is answered at most once: a second answer to the same [`ClientId`],
//!   or an answer to one never fed, panics. (At least once is the simulator's check: every
//!   request it sends gets a reply or its node crashed.)
//! - Time never goes backwards: `step` and `tick` refuse a `now` before the last one (the
//!   runtime and the simulator both clamp their clocks).
//! - An output that claims durability (a replica's, a transfer's or a hint's ack, a client's
//!   "written") is queued only with the release rule of [`Node::durability_point`] or one
//!   derived from it, never through the path that ignores syncs; and `take_ready` releases an
//!   output that waits for a sync only once a sync begun after it completed.
//! - R and W of every operation lie in `1..=N` (validation refuses the others first).
//! - One deadline timer per operation (`timers`); a version set never holds a dot twice
//!   (`version::version_set`).

mod anti_entropy;
mod batch;
mod coordinator;
mod gossip;
mod hinted_handoff;
mod items;
mod output_gate;
mod peer_trees;
mod query;
mod quorum_read;
mod range_handoff;
mod read_repair;
mod replica;
mod scan;
mod sloppy_quorum;
mod tables;
mod timers;
mod tombstones;

/// Whether `message` tells its receiver that writes are durable here, so that the receiver
/// may count it towards a quorum or delete its own copy: such messages wait for a sync.
fn claims_durability(message: &PeerMessage) -> bool {
    matches!(
        message,
        PeerMessage::ReplicateAck {
            outcome: Ok(()),
            ..
        } | PeerMessage::TransferAck {
            outcome: Ok(()),
            ..
        } | PeerMessage::HintAck { .. }
            | PeerMessage::ForwardReply {
                result: Ok(ClientReply::Written { .. } | ClientReply::ItemWritten { .. }),
                ..
            }
    )
}

#[cfg(test)]
mod item_tests;
#[cfg(test)]
mod tests;

pub use output_gate::{OutputGate, Released};
pub use timers::Timer;

use crate::config::NodeConfig;
use crate::item::HybridClock;
use crate::membership::{FailureDetector, MemberInfo, MemberStatus, MemberTable, PhiConfig};
use crate::protocol::{OpId, PeerMessage};
use crate::request::{ClientReply, ClientRequest, ClientResult, ReplicaFailure, RequestError};
use crate::ring::Ring;
use crate::store::{Store, StoreError};
use crate::version::ActorId;
use crate::{NodeId, Time};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use timers::TimerQueue;

/// A driver's handle for one client request; echoed in the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// What a driver feeds the node.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from a peer.
    Peer {
        /// The sender.
        from: NodeId,
        /// The message.
        message: PeerMessage,
    },
    /// A client request.
    Client {
        /// The driver's handle, echoed in the reply.
        id: ClientId,
        /// The request.
        request: ClientRequest,
    },
    /// An operator command.
    Admin(AdminCommand),
}

/// Operator commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// Decommission: leave the ring, hand every key to its new owners, then report `Left`.
    Leave,
}

/// What the node asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a message to a peer.
    Send {
        /// The peer.
        to: NodeId,
        /// The message.
        message: PeerMessage,
    },
    /// Answer a client request.
    Reply {
        /// The driver's handle.
        id: ClientId,
        /// The answer.
        result: ClientResult,
    },
}

/// Why a node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The store failed while loading the node's metadata.
    #[error("store failed at start-up: {0}")]
    Store(#[from] StoreError),
    /// The node's own member entry is invalid (address or zone too long, bad vnodes).
    #[error("the identity of node {0} is invalid (address, zone or vnodes)")]
    BadIdentity(NodeId),
    /// The persisted metadata does not decode.
    #[error("persisted node metadata \"{0}\" is corrupt")]
    CorruptMeta(&'static str),
}

/// How a node first enters the cluster.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    /// The node's id.
    pub id: NodeId,
    /// Its peer address, as gossiped to others (opaque to the core).
    pub addr: String,
    /// Its zone (failure domain), if any.
    pub zone: Option<String>,
    /// Nodes to gossip with until the membership table knows better.
    pub seeds: Vec<NodeId>,
}

/// Counters for metrics, `/status` and the simulator's report. Monotonic over the node's life.
/// Readers of `/status` decode it with missing fields defaulted, so counters can be added.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NodeStats {
    /// Puts and deletes that reached W.
    pub writes_ok: u64,
    /// Gets that reached R.
    pub reads_ok: u64,
    /// Client requests that failed.
    pub requests_failed: u64,
    /// Writes sent to a fallback with a hint.
    pub hinted_writes: u64,
    /// Hints delivered to their owner and removed.
    pub hints_delivered: u64,
    /// Hints dropped because they outlived the hint window or exceeded the per-owner limit.
    pub hints_dropped: u64,
    /// Read-repair messages sent.
    pub read_repairs: u64,
    /// Keys sent or received by anti-entropy.
    pub anti_entropy_keys: u64,
    /// Anti-entropy exchanges completed.
    pub anti_entropy_rounds: u64,
    /// Bytes of every anti-entropy message this node sent (the encoded frame, as
    /// `protocol::encode` makes it; transport framing not included). Summed over the nodes,
    /// the bytes anti-entropy put on the wire in both directions.
    pub anti_entropy_bytes_sent: u64,
    /// Keys whose stored version set an anti-entropy merge changed on this node.
    pub anti_entropy_keys_repaired: u64,
    /// When the last anti-entropy exchange completed (this node's clock).
    pub last_anti_entropy: Option<Time>,
    /// Keys handed off to new owners and dropped here.
    pub keys_handed_off: u64,
    /// Tombstones collected.
    pub tombstones_collected: u64,
    /// Messages from peers that could not be handled (unknown operation, refused).
    pub messages_ignored: u64,
}

impl NodeStats {
    /// Adds another node's counters to these (cluster totals); keeps the later exchange time.
    pub fn accumulate(&mut self, other: &NodeStats) {
        self.writes_ok += other.writes_ok;
        self.reads_ok += other.reads_ok;
        self.requests_failed += other.requests_failed;
        self.hinted_writes += other.hinted_writes;
        self.hints_delivered += other.hints_delivered;
        self.hints_dropped += other.hints_dropped;
        self.read_repairs += other.read_repairs;
        self.anti_entropy_keys += other.anti_entropy_keys;
        self.anti_entropy_rounds += other.anti_entropy_rounds;
        self.anti_entropy_bytes_sent += other.anti_entropy_bytes_sent;
        self.anti_entropy_keys_repaired += other.anti_entropy_keys_repaired;
        self.last_anti_entropy = self.last_anti_entropy.max(other.last_anti_entropy);
        self.keys_handed_off += other.keys_handed_off;
        self.tombstones_collected += other.tombstones_collected;
        self.messages_ignored += other.messages_ignored;
    }
}

/// When an output may leave the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// At once: it claims nothing about durability, or what it claims is already durable.
    Now,
    /// Once a sync begun after the writes it vouches for has completed, i.e. once the node has
    /// completed a sync whose ticket exceeds `syncs_begun`, the node's count of begun syncs
    /// when those writes were made.
    AfterSync {
        /// Syncs begun when the writes were made.
        syncs_begun: u64,
    },
}

impl Release {
    /// Whether an output released this way must still wait, given the highest ticket of a
    /// completed sync.
    fn waits(self, synced_through: u64) -> bool {
        match self {
            Release::Now => false,
            Release::AfterSync { syncs_begun } => syncs_begun >= synced_through,
        }
    }
}

/// An output and when it may leave.
struct PendingOutput {
    output: Output,
    release: Release,
}

/// A sync in progress: covers every write made before [`Node::begin_sync`] returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SyncTicket(u64);

/// One node's protocol state. See the module docs.
pub struct Node<S: Store> {
    id: NodeId,
    config: NodeConfig,
    store: S,
    rng: ChaCha8Rng,
    actor: ActorId,
    /// Stamps item writes (`items`).
    clock: HybridClock,
    members: MemberTable,
    detector: FailureDetector,
    ring: Option<Ring>,
    seeds: Vec<NodeId>,
    outputs: Vec<PendingOutput>,
    /// Syncs begun by this node; the last one's ticket (see [`Release`]).
    syncs_begun: u64,
    /// The highest ticket of a sync that completed successfully.
    synced_through: u64,
    timers: TimerQueue,
    next_op: u64,
    ops: BTreeMap<OpId, coordinator::Operation>,
    hints: hinted_handoff::HintReplay,
    anti_entropy: anti_entropy::AntiEntropy,
    trees: peer_trees::PeerTrees,
    handoff: range_handoff::Handoff,
    tombstones: tombstones::TombstoneCollector,
    tables: tables::Tables,
    stats: NodeStats,
    now: Time,
    /// Client requests fed and not answered yet (debug builds: the answered-once check).
    #[cfg(any(debug_assertions, feature = "invariants"))]
    open_requests: std::collections::BTreeSet<ClientId>,
}

/// Metadata names in the store.
pub(crate) const META_MEMBERS: &str = "members";
pub(crate) const META_GENERATION: &str = "generation";

impl<S: Store> Node<S> {
    /// Starts a node on `store`, restoring its membership view from the store when it has one.
    /// Every random choice of the node's life flows from `seed`.
    pub fn new(
        config: NodeConfig,
        identity: NodeIdentity,
        mut store: S,
        seed: u64,
        now: Time,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        let generation = match store.meta(META_GENERATION)? {
            Some(bytes) => {
                let arr: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| NodeError::CorruptMeta(META_GENERATION))?;
                u64::from_le_bytes(arr) + 1
            }
            None => 1,
        };
        // The generation is persisted (and synced before any output leaves) so that every
        // start draws from a different RNG stream: a restarted node never reuses an actor, even
        // when its driver passes the same seed again.
        let mut stream = Vec::with_capacity(24);
        stream.extend_from_slice(&seed.to_le_bytes());
        stream.extend_from_slice(&identity.id.0.to_le_bytes());
        stream.extend_from_slice(&generation.to_le_bytes());
        let mut rng = ChaCha8Rng::seed_from_u64(xxhash_rust::xxh3::xxh3_64(&stream));
        // A fresh actor at every start (see the module docs on epochs).
        let actor = ActorId(rng.next_u64());
        store.set_meta(META_GENERATION, &generation.to_le_bytes())?;
        let local = MemberInfo {
            node: identity.id,
            addr: identity.addr.clone(),
            zone: identity.zone.clone(),
            vnodes: config.vnodes,
            status: MemberStatus::Up,
            generation,
            version: 1,
            heartbeat: 0,
        };
        let mut members =
            MemberTable::new(local).map_err(|_| NodeError::BadIdentity(identity.id))?;
        if let Some(bytes) = store.meta(META_MEMBERS)? {
            let saved: Vec<MemberInfo> =
                postcard::from_bytes(&bytes).map_err(|_| NodeError::CorruptMeta(META_MEMBERS))?;
            // Our own saved entry is older than the fresh one, except for a status we chose:
            // a node that was leaving keeps leaving after a restart.
            let own_status = saved
                .iter()
                .find(|m| m.node == identity.id)
                .map(|m| m.status);
            let others: Vec<MemberInfo> = saved
                .into_iter()
                .filter(|m| m.node != identity.id)
                .collect();
            members.merge(&others);
            if let Some(status @ (MemberStatus::Leaving | MemberStatus::Left)) = own_status {
                // Forward-only within a generation; a fresh generation may move anywhere.
                let _ = members.set_status(status);
            }
        }
        let catalog = match store.meta(tables::META_CATALOG)? {
            Some(bytes) => postcard::from_bytes(&bytes)
                .map_err(|_| NodeError::CorruptMeta(tables::META_CATALOG))?,
            None => crate::catalog::Catalog::new(),
        };
        let phi = PhiConfig {
            threshold: config.phi_threshold,
            ..PhiConfig::default()
        };
        let detector = FailureDetector::new(phi)
            .map_err(|_| NodeError::Config(crate::config::ConfigError::Zero("phi_threshold")))?;
        let mut node = Node {
            id: identity.id,
            config,
            store,
            rng,
            actor,
            clock: HybridClock::new(),
            members,
            detector,
            ring: None,
            seeds: identity.seeds,
            outputs: Vec::new(),
            syncs_begun: 0,
            synced_through: 0,
            timers: TimerQueue::default(),
            next_op: 1,
            ops: BTreeMap::new(),
            hints: hinted_handoff::HintReplay::default(),
            anti_entropy: anti_entropy::AntiEntropy::default(),
            trees: peer_trees::PeerTrees::default(),
            handoff: range_handoff::Handoff::default(),
            tombstones: tombstones::TombstoneCollector::default(),
            tables: tables::Tables::new(catalog),
            stats: NodeStats::default(),
            now,
            #[cfg(any(debug_assertions, feature = "invariants"))]
            open_requests: Default::default(),
        };
        node.rebuild_ring();
        node.persist_members();
        for peer in node.known_peers() {
            node.detector.expect(peer, now);
        }
        // Spread the periodic timers so that nodes started together do not act in lockstep.
        let periodic = [
            (Timer::Gossip, node.config.gossip_interval),
            (Timer::HintReplay, node.config.hint_replay_interval),
            (Timer::AntiEntropy, node.config.anti_entropy_interval),
            (Timer::Handoff, node.config.handoff_interval),
            (Timer::TombstoneGc, node.config.tombstone_gc_interval),
        ];
        for (timer, interval) in periodic {
            let jitter = node.jitter(interval);
            node.timers.set(timer, now + jitter);
        }
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The configuration in force.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The store (read-only), for status pages and checkers.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back (a crash in the simulator, a shutdown in the runtime).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The membership table as this node sees it.
    pub fn members(&self) -> &MemberTable {
        &self.members
    }

    /// The ring this node routes by (`None` until it knows at least one Up member).
    pub fn ring(&self) -> Option<&Ring> {
        self.ring.as_ref()
    }

    /// The digest of the ring this node routes by: nodes that agree on the ring agree on it.
    pub fn ring_digest(&self) -> u64 {
        gossip::ring_digest(self.ring.as_ref())
    }

    /// Whether this node judges `peer` up at `now`.
    pub fn is_up(&self, peer: NodeId) -> bool {
        peer == self.id || self.detector.is_up(peer, self.now)
    }

    /// The failure detector's suspicion of `peer`.
    pub fn phi(&self, peer: NodeId) -> f64 {
        self.detector.phi(peer, self.now)
    }

    /// Counters since start.
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// The status this node gossips for itself.
    pub fn status(&self) -> MemberStatus {
        self.members
            .get(self.id)
            .map_or(MemberStatus::Up, |m| m.status)
    }

    /// How many operations (client requests, exchanges, batches) are in flight.
    pub fn ops_in_flight(&self) -> usize {
        self.ops.len()
    }

    /// The earliest time the node wants [`Node::tick`] to be called.
    pub fn next_deadline(&self) -> Option<Time> {
        self.timers.next_deadline()
    }

    /// Feeds one input. Timers due at `now` fire first.
    pub fn step(&mut self, now: Time, input: Input) {
        self.tick(now);
        match input {
            Input::Peer { from, message } => self.on_peer_message(from, message),
            Input::Client { id, request } => {
                #[cfg(any(debug_assertions, feature = "invariants"))]
                assert!(
                    self.open_requests.insert(id),
                    "client request {id:?} fed while a request with that id is open"
                );
                self.on_client_request(coordinator::ReplyTo::Client(id), request)
            }
            Input::Admin(AdminCommand::Leave) => self.start_leaving(),
        }
    }

    /// Fires every timer due at or before `now`.
    pub fn tick(&mut self, now: Time) {
        invariant!(
            now >= self.now,
            "time went backwards: {now:?} after {:?}",
            self.now
        );
        if now > self.now {
            self.now = now;
        }
        while let Some(timer) = self.timers.pop_due(self.now) {
            self.on_timer(timer);
        }
    }

    /// Takes every output, syncing the store first when any write is unsynced (so the window
    /// of unsynced writes is bounded by how often the driver drains). If the sync fails, the
    /// outputs that waited on it come out as failures.
    pub fn drain_outputs(&mut self) -> Vec<Output> {
        self.sync_store();
        self.take_ready()
    }

    /// Takes the outputs that may leave now; those waiting for a sync stay until a sync that
    /// covers them completes ([`Node::complete_sync`]).
    pub fn take_ready(&mut self) -> Vec<Output> {
        let synced_through = self.synced_through;
        self.outputs
            .extract_if(.., |pending| !pending.release.waits(synced_through))
            .map(|pending| {
                invariant!(
                    match pending.release {
                        Release::Now => true,
                        Release::AfterSync { syncs_begun } => syncs_begun < synced_through,
                    },
                    "an output left before the sync it waits for"
                );
                pending.output
            })
            .collect()
    }

    /// Starts a sync of every write made so far, or `None` when nothing is unsynced.
    fn begin_sync(&mut self) -> Option<SyncTicket> {
        if self.store.unsynced_writes() == 0 {
            return None;
        }
        self.syncs_begun += 1;
        Some(SyncTicket(self.syncs_begun))
    }

    /// Starts a sync of every write made so far that another thread performs (after
    /// [`Store::prepare_external_sync`]; a durable store's `JournalSyncer`), or `None` when
    /// nothing is unsynced or the preparation failed (then what waited on it comes out as
    /// failures). Report the sync's end with [`Node::complete_sync`].
    pub fn begin_external_sync(&mut self) -> Option<SyncTicket> {
        let ticket = self.begin_sync()?;
        match self.store.prepare_external_sync() {
            Ok(()) => Some(ticket),
            Err(e) => {
                self.complete_sync(ticket, Err(e.to_string()));
                None
            }
        }
    }

    /// Reports how the sync of `ticket` ended. On success, the outputs it covers may leave
    /// (at the next [`Node::take_ready`]); on failure they turn into failures (a replica's
    /// ack into a storage failure, a client's "written" into a storage error) or are
    /// dropped (a hint or transfer ack: the sender retries).
    pub fn complete_sync(&mut self, ticket: SyncTicket, result: Result<(), String>) {
        self.store.external_sync_done(result.is_ok());
        match result {
            Ok(()) => self.synced_through = self.synced_through.max(ticket.0),
            Err(detail) => {
                for pending in std::mem::take(&mut self.outputs) {
                    match pending.release {
                        Release::AfterSync { syncs_begun }
                            if syncs_begun < ticket.0
                                && pending.release.waits(self.synced_through) =>
                        {
                            if let Some(failed) = Self::as_failure(pending.output, &detail) {
                                self.outputs.push(PendingOutput {
                                    output: failed,
                                    release: Release::Now,
                                });
                            }
                        }
                        _ => self.outputs.push(pending),
                    }
                }
            }
        }
    }

    /// Syncs the store inline if any write is unsynced.
    pub fn sync_store(&mut self) {
        if let Some(ticket) = self.begin_sync() {
            let result = self.store.sync().map_err(|e| e.to_string());
            self.complete_sync(ticket, result);
        }
    }

    /// What a durability-claiming output becomes when the sync failed (or `None`: drop it and
    /// let the sender retry).
    fn as_failure(output: Output, detail: &str) -> Option<Output> {
        let failure = ReplicaFailure::Storage {
            detail: detail.to_string(),
        };
        match output {
            Output::Reply { id, result: Ok(_) } => Some(Output::Reply {
                id,
                result: Err(RequestError::Storage {
                    detail: detail.to_string(),
                }),
            }),
            Output::Send {
                to,
                message: PeerMessage::ReplicateAck { op, .. },
            } => Some(Output::Send {
                to,
                message: PeerMessage::ReplicateAck {
                    op,
                    outcome: Err(failure),
                },
            }),
            Output::Send {
                to,
                message: PeerMessage::TransferAck { batch, .. },
            } => Some(Output::Send {
                to,
                message: PeerMessage::TransferAck {
                    batch,
                    outcome: Err(failure),
                },
            }),
            Output::Send {
                to,
                message: PeerMessage::ForwardReply { op, result: Ok(_) },
            } => Some(Output::Send {
                to,
                message: PeerMessage::ForwardReply {
                    op,
                    result: Err(RequestError::Storage {
                        detail: detail.to_string(),
                    }),
                },
            }),
            // Hint acks and anything else: drop; the sender retries.
            _ => None,
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::OpDeadline(op) => self.on_op_deadline(op),
            Timer::HintBatchDeadline(op) => self.on_hint_batch_deadline(op),
            Timer::AntiEntropyDeadline(session) => self.on_ae_deadline(session),
            Timer::HandoffBatchDeadline(op) => self.on_handoff_deadline(op),
            Timer::TombstoneCheckDeadline(op) => self.on_tombstone_deadline(op),
            Timer::Sloppy(op) => self.on_sloppy_timer(op),
            Timer::ReadSpeculate(op) => self.on_read_speculate_timer(op),
            Timer::Gossip => {
                self.gossip_round();
                let at = self.now + self.config.gossip_interval;
                self.timers.set(Timer::Gossip, at);
            }
            Timer::HintReplay => {
                self.replay_hints();
                let at = self.now + self.config.hint_replay_interval;
                self.timers.set(Timer::HintReplay, at);
            }
            Timer::AntiEntropy => {
                self.start_anti_entropy();
                let at = self.now + self.config.anti_entropy_interval;
                self.timers.set(Timer::AntiEntropy, at);
            }
            Timer::Handoff => {
                self.handoff_round();
                let at = self.now + self.config.handoff_interval;
                self.timers.set(Timer::Handoff, at);
            }
            Timer::TreeRebuild => self.on_tree_rebuild_timer(),
            Timer::TombstoneGc => {
                self.tombstone_round();
                let at = self.now + self.config.tombstone_gc_interval;
                self.timers.set(Timer::TombstoneGc, at);
            }
        }
    }

    fn on_peer_message(&mut self, from: NodeId, message: PeerMessage) {
        match message {
            PeerMessage::Forward { op, request } => {
                self.on_client_request(coordinator::ReplyTo::Peer { node: from, op }, request)
            }
            PeerMessage::ForwardReply { op, result } => self.on_forward_reply(op, result),
            PeerMessage::Replicate { op, item, hint_for } => {
                self.on_replicate(from, op, item, hint_for)
            }
            PeerMessage::ReplicateAck { op, outcome } => self.on_replicate_ack(from, op, outcome),
            PeerMessage::Read { op, key } => self.on_read(from, op, key),
            PeerMessage::ReadReply { op, outcome } => self.on_read_reply(from, op, outcome),
            PeerMessage::Repair { item } => self.on_repair(item),
            PeerMessage::HintDelivery { batch, hints } => self.on_hint_delivery(from, batch, hints),
            PeerMessage::HintAck { batch, ids } => self.on_hint_ack(from, batch, ids),
            PeerMessage::Gossip {
                members,
                want_reply,
            } => self.on_gossip(from, members, want_reply),
            PeerMessage::AeHashes {
                session,
                ring,
                request,
            } => self.on_ae_hashes(from, session, ring, request),
            PeerMessage::AeHashesReply { session, response } => {
                self.on_ae_hashes_reply(from, session, response)
            }
            PeerMessage::AeKeys {
                session,
                ring,
                listing,
            } => self.on_ae_keys(from, session, ring, listing),
            PeerMessage::AeKeysReply {
                session,
                items,
                offers,
                unmatched,
            } => self.on_ae_keys_reply(from, session, items, offers, unmatched),
            PeerMessage::AePush {
                session,
                items,
                wanted,
            } => self.on_ae_push(from, session, items, wanted),
            PeerMessage::AePushReply { session, items } => {
                self.on_ae_push_reply(from, session, items)
            }
            PeerMessage::AeDone { session } => self.on_ae_done(from, session),
            PeerMessage::Transfer { batch, items } => self.on_transfer(from, batch, items),
            PeerMessage::TransferAck { batch, outcome } => {
                self.on_transfer_ack(from, batch, outcome)
            }
            PeerMessage::TombstoneCheck { op, key, digest } => {
                self.on_tombstone_check(from, op, key, digest)
            }
            PeerMessage::TombstoneCheckReply { op, holds } => {
                self.on_tombstone_check_reply(from, op, holds)
            }
            PeerMessage::TombstonePurge { key, digest } => self.on_tombstone_purge(key, digest),
            PeerMessage::Catalog {
                catalog,
                want_reply,
            } => self.on_catalog(from, catalog, want_reply),
            PeerMessage::QueryRead {
                op,
                prefix,
                from: lower,
                to,
                reverse,
                limit,
            } => self.on_query_read(from, op, (prefix, lower, to), reverse, limit),
            PeerMessage::QueryReadReply { op, outcome } => {
                self.on_query_read_reply(from, op, outcome)
            }
            PeerMessage::ScanRead {
                op,
                step,
                table,
                range,
                after,
                limit,
            } => self.on_scan_read(from, op, step, table, range, after, limit),
            PeerMessage::ScanReadReply { op, step, outcome } => {
                self.on_scan_read_reply(from, op, step, outcome)
            }
        }
    }

    // ----- helpers shared by the mechanisms -----

    fn send(&mut self, to: NodeId, message: PeerMessage) {
        invariant!(
            !claims_durability(&message),
            "{message:?} claims durability but was sent without waiting for a sync"
        );
        self.outputs.push(PendingOutput {
            output: Output::Send { to, message },
            release: Release::Now,
        });
    }

    /// Sends a message that claims durability of everything this node wrote so far.
    fn send_after_sync(&mut self, to: NodeId, message: PeerMessage) {
        let release = self.durability_point();
        self.send_when(to, message, release);
    }

    /// Sends a message once `release` allows.
    fn send_when(&mut self, to: NodeId, message: PeerMessage, release: Release) {
        self.outputs.push(PendingOutput {
            output: Output::Send { to, message },
            release,
        });
    }

    fn reply_client(&mut self, id: ClientId, result: ClientResult, release: Release) {
        #[cfg(any(debug_assertions, feature = "invariants"))]
        assert!(
            self.open_requests.remove(&id),
            "client request {id:?} answered twice, or never fed"
        );
        self.outputs.push(PendingOutput {
            output: Output::Reply { id, result },
            release,
        });
    }

    /// When an output vouching for every write made so far may leave.
    fn durability_point(&self) -> Release {
        if self.store.unsynced_writes() > 0 {
            // Some write waits for a sync not begun yet.
            Release::AfterSync {
                syncs_begun: self.syncs_begun,
            }
        } else if self.synced_through < self.syncs_begun {
            // Every write was handed to the sync under way, which has not ended: an output
            // vouching for them (a duplicate `Replicate` merged as "no change" while the first
            // copy's fsync runs, say) waits for that sync's end, not for nothing.
            Release::AfterSync {
                syncs_begun: self.syncs_begun - 1,
            }
        } else {
            Release::Now
        }
    }

    fn new_op_id(&mut self) -> OpId {
        let id = OpId(self.next_op);
        self.next_op += 1;
        id
    }

    /// A random delay in `[0, interval)`.
    fn jitter(&mut self, interval: std::time::Duration) -> std::time::Duration {
        let micros = u64::try_from(interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        std::time::Duration::from_micros(self.rng.next_u64() % micros)
    }

    /// Draws a new actor: called before this node drops keys (see the module docs).
    fn new_epoch(&mut self) {
        self.actor = ActorId(self.rng.next_u64());
    }

    /// Every member other than this node that has not left, plus seeds.
    fn known_peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self
            .members
            .entries()
            .filter(|m| m.node != self.id && m.status != MemberStatus::Left)
            .map(|m| m.node)
            .collect();
        for &seed in &self.seeds {
            if seed != self.id && !peers.contains(&seed) && self.members.get(seed).is_none() {
                peers.push(seed);
            }
        }
        peers
    }

    /// Saves the membership table so that a restart routes at once.
    fn persist_members(&mut self) {
        let entries: Vec<MemberInfo> = self.members.entries().cloned().collect();
        if let Ok(bytes) = postcard::to_stdvec(&entries) {
            // A failure here only costs a slower restart; the next change retries.
            let _ = self.store.set_meta(META_MEMBERS, &bytes);
        }
    }
}
