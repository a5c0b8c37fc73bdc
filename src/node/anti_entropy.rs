//! Anti-entropy (Dynamo §4.7): replicas compare Merkle trees and exchange only what differs.
//!
//! Every `anti_entropy_interval`, if no exchange is running, the node picks the next peer it
//! shares keys with (round robin, skipping peers judged down) and runs one exchange:
//!
//! 1. `AeHashes` / `AeHashesReply`, repeated: the initiator walks down the tree it shares with
//!    the peer (`merkle::DiffWalk`), asking only for the children of nodes whose hashes differ.
//!    The peer answers only if it routes by the same ring (digest) and has a tree of the same
//!    shape.
//! 2. `AeKeys`: the initiator sends its (key, digest) pairs in the differing leaves.
//! 3. `AeKeysReply`: the peer sends its version sets for keys that differ or that the initiator
//!    lacks, and names the keys it wants.
//! 4. `AePush`: the initiator merges what it got and sends what was wanted.
//!
//! Both sides merge by version vectors, so the exchange is safe in any order and under any
//! duplication. Leaves are listed until `anti_entropy_max_keys` keys would be passed (at least
//! one leaf is always listed, whole), each side sends at most `anti_entropy_max_keys` sets and
//! [`MAX_BATCH_BYTES`] per message, and one exchange runs at a time: repair cannot starve
//! clients. What is left over waits for the next round.
//!
//! # Limits
//! - An exchange whose peer does not answer within the request timeout is dropped.
//! - Keys that differ in leaves beyond the per-exchange bound wait for a later round.

use super::peer_trees::shared_with;
use super::{Node, Timer};
use crate::NodeId;
use crate::merkle::{DiffWalk, ExchangeConfig, HashRequest, HashResponse, LeafEntry};
use crate::protocol::{KeyVersions, MAX_BATCH_BYTES, OpId, PeerMessage, encoded_len};
use crate::ring::{TokenRange, key_token};
use crate::store::{Store, StoreError};
use crate::version::VersionSet;
use std::collections::BTreeMap;

/// The most leaves a peer may name in one `AeKeys` (bounds the work a message can ask for).
const MAX_LEAVES_PER_EXCHANGE: usize = 4096;

/// An exchange this node started, by step.
enum Session {
    /// Step 1: walking down the differing subtrees.
    Walking { peer: NodeId, walk: DiffWalk },
    /// Steps 2–3: our keys were sent, waiting for the peer's.
    AwaitingKeys { peer: NodeId },
}

impl Session {
    fn peer(&self) -> NodeId {
        match self {
            Session::Walking { peer, .. } | Session::AwaitingKeys { peer } => *peer,
        }
    }
}

/// Anti-entropy state: the exchange in flight and whose turn is next.
#[derive(Default)]
pub(super) struct AntiEntropy {
    sessions: BTreeMap<OpId, Session>,
    next_peer: usize,
}

impl<S: Store> Node<S> {
    /// Rebuilds the per-peer trees if the ring changed since they were built.
    fn ensure_trees(&mut self) -> Result<(), StoreError> {
        if self.trees.is_fresh() {
            return Ok(());
        }
        let n = usize::from(self.config.n);
        let depth = self.config.anti_entropy_tree_depth;
        self.trees
            .rebuild(&self.store, self.ring.as_ref(), self.id, n, depth)
    }

    pub(super) fn start_anti_entropy(&mut self) {
        if self.config.sabotage.no_anti_entropy {
            return;
        }
        if !self.anti_entropy.sessions.is_empty() || self.ensure_trees().is_err() {
            return;
        }
        let peers: Vec<NodeId> = self
            .trees
            .peers()
            .into_iter()
            .filter(|&p| self.is_up(p))
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.anti_entropy.next_peer % peers.len()];
        self.anti_entropy.next_peer = self.anti_entropy.next_peer.wrapping_add(1);
        let Some(tree) = self.trees.tree(peer) else {
            return;
        };
        let Ok(mut walk) = DiffWalk::new(tree.shape(), ExchangeConfig::default()) else {
            return;
        };
        let Some(request) = walk.next_request() else {
            return;
        };
        let session = self.new_op_id();
        self.anti_entropy
            .sessions
            .insert(session, Session::Walking { peer, walk });
        self.timers.set(
            Timer::OpDeadline(session),
            self.now + self.config.request_timeout,
        );
        let ring = super::gossip::ring_digest(self.ring.as_ref());
        self.send_ae(
            peer,
            PeerMessage::AeHashes {
                session,
                ring,
                request,
            },
        );
    }

    /// The peer's side of step 1.
    pub(super) fn on_ae_hashes(
        &mut self,
        from: NodeId,
        session: OpId,
        ring: u64,
        request: HashRequest,
    ) {
        let same_ring = ring == super::gossip::ring_digest(self.ring.as_ref());
        let response = if same_ring && self.ensure_trees().is_ok() {
            self.trees
                .tree(from)
                .and_then(|tree| tree.answer(&request).ok())
        } else {
            None
        };
        self.send_ae(from, PeerMessage::AeHashesReply { session, response });
    }

    /// The initiator's side of step 1: descend, or move on to the keys.
    pub(super) fn on_ae_hashes_reply(
        &mut self,
        from: NodeId,
        session: OpId,
        response: Option<HashResponse>,
    ) {
        let Some(Session::Walking { peer, mut walk }) = self.anti_entropy.sessions.remove(&session)
        else {
            return;
        };
        let (Some(response), true) = (response, peer == from) else {
            self.timers.cancel(Timer::OpDeadline(session));
            return;
        };
        let received = match self.trees.tree(from) {
            Some(tree) => walk.receive(tree, &response).is_ok(),
            None => false,
        };
        if !received {
            self.timers.cancel(Timer::OpDeadline(session));
            return;
        }
        if let Some(request) = walk.next_request() {
            let ring = super::gossip::ring_digest(self.ring.as_ref());
            self.anti_entropy
                .sessions
                .insert(session, Session::Walking { peer, walk });
            self.send_ae(
                from,
                PeerMessage::AeHashes {
                    session,
                    ring,
                    request,
                },
            );
            return;
        }
        let Some(result) = walk.into_result() else {
            self.timers.cancel(Timer::OpDeadline(session));
            return;
        };
        if result.is_equal() {
            self.timers.cancel(Timer::OpDeadline(session));
            self.stats.anti_entropy_rounds += 1;
            self.stats.last_anti_entropy = Some(self.now);
            return;
        }
        // Step 2: our keys in the differing leaves, up to the per-exchange bound.
        let mut leaves = Vec::new();
        let mut entries = Vec::new();
        for leaf in result.differing_leaves.iter().take(MAX_LEAVES_PER_EXCHANGE) {
            let Ok(mine) = self.shared_entries(from, leaf.range) else {
                break;
            };
            if !leaves.is_empty() && entries.len() + mine.len() > self.config.anti_entropy_max_keys
            {
                break;
            }
            leaves.push(leaf.range);
            entries.extend(mine);
        }
        self.anti_entropy
            .sessions
            .insert(session, Session::AwaitingKeys { peer: from });
        self.send_ae(
            from,
            PeerMessage::AeKeys {
                session,
                leaves,
                entries,
            },
        );
    }

    /// This node's (key, digest) pairs in `range` that it shares with `peer`, in ring order.
    fn shared_entries(
        &self,
        peer: NodeId,
        range: TokenRange,
    ) -> Result<Vec<LeafEntry>, StoreError> {
        let Some(ring) = self.ring.as_ref() else {
            return Ok(Vec::new());
        };
        let n = usize::from(self.config.n);
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.scan_digests(
                range,
                cursor.as_ref(),
                self.config.anti_entropy_max_keys,
            )?;
            for entry in page.entries {
                if shared_with(ring, n, self.id, peer, &entry.key) {
                    out.push(LeafEntry {
                        key: entry.key,
                        digest: entry.digest,
                    });
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The peer's side of step 2: compare key by key, send ours, ask for theirs.
    pub(super) fn on_ae_keys(
        &mut self,
        from: NodeId,
        session: OpId,
        leaves: Vec<TokenRange>,
        entries: Vec<LeafEntry>,
    ) {
        if leaves.len() > MAX_LEAVES_PER_EXCHANGE {
            self.stats.messages_ignored += 1;
            return;
        }
        let theirs: BTreeMap<Vec<u8>, u64> = entries
            .into_iter()
            .filter(|e| leaves.iter().any(|leaf| leaf.contains(key_token(&e.key))))
            .map(|e| (e.key, e.digest))
            .collect();
        let mut mine: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for leaf in &leaves {
            match self.shared_entries(from, *leaf) {
                Ok(entries) => mine.extend(entries.into_iter().map(|e| (e.key, e.digest))),
                Err(_) => return,
            }
        }
        let max_keys = self.config.anti_entropy_max_keys;
        let mut items = Vec::new();
        let mut items_bytes = 0;
        for (key, digest) in &mine {
            if items.len() >= max_keys || items_bytes > MAX_BATCH_BYTES {
                break;
            }
            if theirs.get(key) != Some(digest)
                && let Ok(Some(versions)) = self.store.get(key)
            {
                let item = KeyVersions {
                    key: key.clone(),
                    versions,
                };
                items_bytes += item.approx_bytes();
                items.push(item);
            }
        }
        let wanted: Vec<Vec<u8>> = theirs
            .iter()
            .filter(|(key, digest)| mine.get(*key) != Some(*digest))
            .map(|(key, _)| key.clone())
            .take(max_keys)
            .collect();
        self.stats.anti_entropy_keys += items.len() as u64;
        self.send_ae(
            from,
            PeerMessage::AeKeysReply {
                session,
                items,
                wanted,
            },
        );
    }

    /// The initiator's side of step 3: merge theirs, push ours.
    pub(super) fn on_ae_keys_reply(
        &mut self,
        from: NodeId,
        session: OpId,
        items: Vec<KeyVersions>,
        wanted: Vec<Vec<u8>>,
    ) {
        match self.anti_entropy.sessions.get(&session) {
            Some(state @ Session::AwaitingKeys { .. }) if state.peer() == from => {}
            _ => {
                self.stats.messages_ignored += 1;
                return;
            }
        }
        self.anti_entropy.sessions.remove(&session);
        self.timers.cancel(Timer::OpDeadline(session));
        self.stats.anti_entropy_keys += items.len() as u64;
        for item in &items {
            // A failed merge is retried at a later round.
            self.merge_repair(&item.key, &item.versions);
        }
        let mut push = Vec::new();
        let mut push_bytes = 0;
        for key in wanted.into_iter().take(self.config.anti_entropy_max_keys) {
            if push_bytes > MAX_BATCH_BYTES {
                break;
            }
            if let Ok(Some(versions)) = self.store.get(&key) {
                let item = KeyVersions { key, versions };
                push_bytes += item.approx_bytes();
                push.push(item);
            }
        }
        self.stats.anti_entropy_keys += push.len() as u64;
        self.stats.anti_entropy_rounds += 1;
        self.stats.last_anti_entropy = Some(self.now);
        if !push.is_empty() {
            self.send_ae(
                from,
                PeerMessage::AePush {
                    session,
                    items: push,
                },
            );
        }
    }

    /// The peer's side of step 4.
    pub(super) fn on_ae_push(&mut self, items: Vec<KeyVersions>) {
        for item in &items {
            self.merge_repair(&item.key, &item.versions);
        }
    }

    /// Merges a set received by anti-entropy; a failed merge is retried at a later round.
    fn merge_repair(&mut self, key: &[u8], versions: &VersionSet) {
        if let Ok(outcome) = self.merge_local(key, versions)
            && outcome.changed
        {
            self.stats.anti_entropy_keys_repaired += 1;
        }
    }

    /// Sends an anti-entropy message, counting its encoded bytes.
    fn send_ae(&mut self, to: NodeId, message: PeerMessage) {
        self.stats.anti_entropy_bytes_sent += encoded_len(self.id, &message) as u64;
        self.send(to, message);
    }

    /// An exchange timed out.
    pub(super) fn on_ae_deadline(&mut self, session: OpId) -> bool {
        self.anti_entropy.sessions.remove(&session).is_some()
    }
}
