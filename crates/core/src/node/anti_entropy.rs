//! Anti-entropy (Dynamo §4.7): replicas compare Merkle trees and exchange only what differs,
//! sending as few bytes as they can.
//!
//! Every `anti_entropy_interval`, if this node is in no exchange, it picks the next peer it
//! shares keys with (round robin, skipping peers judged down) and runs one exchange over
//! everything they share:
//!
//! 1. **Walk** (`AeHashes` / `AeHashesReply`, repeated): the initiator walks down the tree it
//!    keeps for the peer (`merkle::DiffWalk`, one level per round trip, one hash per
//!    differing node thanks to the XOR of the children). The peer answers only under the
//!    same ring, and only if it is in no other exchange. Trees of different depths compare
//!    at the smaller one: a peer whose tree is shallower says so and the walk restarts there.
//! 2. **Listing** (`AeKeys`): for a batch of differing leaves, the initiator sends a salted
//!    4-byte fingerprint of each (key, version) it holds there (`merkle::LeafListing`).
//! 3. **Match** (`AeKeysReply`): the peer matches them against its own keys. In a leaf where
//!    all the initiator's fingerprints matched, its unmatched keys are ones the initiator
//!    lacks: it sends their sets at once. In a leaf where both sides have unmatched keys, it
//!    *offers* them (key fingerprint + version vector, no value). It also names the
//!    initiator's unmatched fingerprints.
//! 4. **Push** (`AePush`): the initiator sends its sets the peer lacks or holds older, and
//!    names the offers it wants (the peer's version is newer or concurrent); the peer answers
//!    those with `AePushReply`. Then the next batch, until every differing leaf is done, and
//!    `AeDone`.
//!
//! So a value crosses the network once, and only towards a replica that lacks it or holds an
//! older version (both ways only for concurrent versions); a key that agrees costs 4 bytes in
//! a listing, and only in a leaf that differs.
//!
//! # Invariants
//! - Both sides merge by version vectors, so the exchange is safe in any order, under any
//!   duplication, and whatever the fingerprints wrongly match or miss: everything sent carries
//!   its real key and set. A miss only delays a repair to the next exchange (new salt).
//! - A node takes part in one exchange at a time, as initiator or as replica (a replica
//!   repaired by two peers at once would receive every set twice). Two nodes that start an
//!   exchange with each other at once: the lower id keeps its own. A newer session from the
//!   peer a node serves replaces the old one (its `AeDone` was lost).
//! - One message in flight per exchange; each batch lists at most `anti_entropy_max_keys`
//!   leaves (and `MAX_LISTED_FINGERPRINTS` fingerprints), each message carries at most
//!   [`MAX_BATCH_BYTES`] of sets: repair proceeds batch by batch and cannot starve clients.
//!
//! # Limits
//! - An exchange whose peer stays silent for `request_timeout` is dropped; a replica forgets
//!   an exchange that stays silent as long.
//! - Sets beyond `MAX_BATCH_BYTES` in one reply wait for a later exchange.

use super::peer_trees::shared_with;
use super::{Node, Timer};
use crate::NodeId;
use crate::merkle::{
    DiffWalk, ExchangeConfig, HashRequest, HashResponse, LeafEntry, LeafIndex, LeafListing,
    MAX_LISTED_FINGERPRINTS, MAX_LISTED_LEAVES, TreeShape, key_fingerprint, match_leaf,
};
use crate::protocol::{
    AeRefusal, KeyOffer, KeyVersions, MAX_BATCH_BYTES, OpId, PeerMessage, encoded_len,
};
use crate::ring::TokenRange;
use crate::store::{Store, StoreError};
use crate::version::VersionSet;
use rand::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Between two pages of a trees' rebuild the core serves whatever arrived: a rebuild of
/// 1,000,000 keys takes about 2,000 pages, so a few seconds.
const TREE_REBUILD_STEP: Duration = Duration::from_millis(1);

/// Where an exchange this node started stands.
enum Step {
    /// Walking down the differing subtrees.
    Walking(DiffWalk),
    /// A batch was listed; waiting for `AeKeysReply`. Holds the listed entries, in listing
    /// order, so that the reply's positions name keys.
    Listed(Vec<LeafEntry>),
    /// `AePush` asked for offers; waiting for `AePushReply`.
    Pulling,
}

/// An exchange this node started.
struct Session {
    peer: NodeId,
    /// The salt of this exchange's fingerprints.
    salt: u64,
    /// The walk's shape (its depth may be below this node's tree).
    shape: TreeShape,
    /// Differing leaves not listed yet.
    remaining: VecDeque<LeafIndex>,
    step: Step,
}

/// An exchange this node serves as the replica.
struct Serving {
    peer: NodeId,
    session: OpId,
    /// Forgotten after this (refreshed by every message of the exchange).
    until: crate::Time,
    /// The keys of the last `AeKeysReply`'s offers, in order.
    offered: Vec<Vec<u8>>,
}

/// Anti-entropy state: the exchange this node started or serves, and whose turn is next.
#[derive(Default)]
pub(super) struct AntiEntropy {
    /// At most one (see the module invariants); keyed for the deadline timer.
    sessions: BTreeMap<OpId, Session>,
    serving: Option<Serving>,
    next_peer: usize,
}

/// What the initiator does with one key both sides hold at different versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// The peer's version is newer: fetch it.
    Pull,
    /// Ours is newer: send it.
    Push,
    /// Concurrent (or equal vectors with different sets): both ways.
    Both,
}

/// The walk of an exchange with this salt (the default step, hashes shortened by the salt).
fn walk_config(salt: u64) -> ExchangeConfig {
    ExchangeConfig {
        salt,
        ..ExchangeConfig::default()
    }
}

/// Decides by version vectors which way a key that differs must travel.
fn direction(ours: &VersionSet, theirs: &crate::version::CausalContext) -> Direction {
    let mine = ours.context();
    if mine == *theirs {
        Direction::Both
    } else if theirs.dominates(&mine) {
        Direction::Pull
    } else if mine.dominates(theirs) {
        Direction::Push
    } else {
        Direction::Both
    }
}

impl<S: Store> Node<S> {
    /// Whether the per-peer trees are fresh (a ring change or a tree outgrowing its depth makes
    /// them stale); if not, makes sure a paged rebuild is under way (one
    /// page per `Timer::TreeRebuild`), so that a later exchange finds them fresh.
    fn trees_ready(&mut self) -> bool {
        if self.trees.is_fresh() {
            return true;
        }
        if !self.timers.is_set(Timer::TreeRebuild) {
            self.timers.set(Timer::TreeRebuild, self.now);
        }
        false
    }

    /// One page of the trees' rebuild; re-armed until they are fresh.
    pub(super) fn on_tree_rebuild_timer(&mut self) {
        let n = usize::from(self.config.n);
        let depth = self.config.anti_entropy_tree_depth;
        let done = self
            .trees
            .rebuild_step(&self.store, self.ring.as_ref(), self.id, n, depth);
        match done {
            Ok(true) => {}
            Ok(false) => {
                let at = self.now + TREE_REBUILD_STEP;
                self.timers.set(Timer::TreeRebuild, at);
            }
            // The store failed: start over at the next exchange's request.
            Err(_) => self.trees.invalidate(),
        }
    }

    /// Whether this node is serving an exchange that has not gone silent.
    fn serving_active(&self) -> bool {
        self.anti_entropy
            .serving
            .as_ref()
            .is_some_and(|s| s.until > self.now)
    }

    pub(super) fn start_anti_entropy(&mut self) {
        if self.config.sabotaged(|s| s.no_anti_entropy) {
            return;
        }
        if !self.anti_entropy.sessions.is_empty() || self.serving_active() || !self.trees_ready() {
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
        let Some(shape) = self.trees.tree(peer).map(|t| t.shape()) else {
            return;
        };
        let salt = self.rng.next_u64();
        let Ok(mut walk) = DiffWalk::new(shape, walk_config(salt)) else {
            return;
        };
        let Some(request) = walk.next_request() else {
            return;
        };
        let session = self.new_op_id();
        self.anti_entropy.sessions.insert(
            session,
            Session {
                peer,
                salt,
                shape,
                remaining: VecDeque::new(),
                step: Step::Walking(walk),
            },
        );
        self.send_hashes(peer, session, request);
    }

    fn send_hashes(&mut self, peer: NodeId, session: OpId, request: HashRequest) {
        let ring = self.ring_digest();
        self.send_session(
            peer,
            session,
            PeerMessage::AeHashes {
                session,
                ring,
                request,
            },
        );
    }

    /// Sends a message of an exchange this node started and restarts its deadline.
    fn send_session(&mut self, peer: NodeId, session: OpId, message: PeerMessage) {
        self.timers.set(
            Timer::AntiEntropyDeadline(session),
            self.now + self.config.request_timeout,
        );
        self.send_ae(peer, message);
    }

    /// Sends an anti-entropy message, counting its encoded bytes.
    fn send_ae(&mut self, to: NodeId, message: PeerMessage) {
        self.stats.anti_entropy_bytes_sent += encoded_len(self.id, &message) as u64;
        self.send(to, message);
    }

    /// Takes `from`'s exchange `session` as the replica, unless this node is in another one.
    fn admit(&mut self, from: NodeId, session: OpId) -> bool {
        let until = self.now + self.config.request_timeout;
        if let Some(serving) = &mut self.anti_entropy.serving
            && serving.peer == from
        {
            // A peer runs one exchange at a time, numbered upwards: a newer session replaces
            // the old one (whose end was lost); a late message of an older one is refused.
            if session < serving.session {
                return false;
            }
            if session > serving.session {
                serving.session = session;
                serving.offered.clear();
            }
            serving.until = until;
            return true;
        }
        if self.serving_active() {
            return false;
        }
        if let Some((&own, started)) = self.anti_entropy.sessions.first_key_value() {
            // Both started with each other at once: the lower id keeps its own exchange.
            if started.peer != from || self.id < from {
                return false;
            }
            self.anti_entropy.sessions.remove(&own);
            self.timers.cancel(Timer::AntiEntropyDeadline(own));
        }
        self.anti_entropy.serving = Some(Serving {
            peer: from,
            session,
            until,
            offered: Vec::new(),
        });
        true
    }

    /// The replica's side of the walk.
    pub(super) fn on_ae_hashes(
        &mut self,
        from: NodeId,
        session: OpId,
        ring: u64,
        request: HashRequest,
    ) {
        let response = self.answer_hashes(from, session, ring, &request);
        self.send_ae(from, PeerMessage::AeHashesReply { session, response });
    }

    fn answer_hashes(
        &mut self,
        from: NodeId,
        session: OpId,
        ring: u64,
        request: &HashRequest,
    ) -> Result<HashResponse, AeRefusal> {
        if ring != self.ring_digest() {
            return Err(AeRefusal::OtherRing);
        }
        if !self.trees_ready() {
            return Err(AeRefusal::NoTree);
        }
        let shape = self
            .trees
            .tree(from)
            .map(|t| t.shape())
            .ok_or(AeRefusal::NoTree)?;
        if shape.range() == request.shape.range() && shape.depth() < request.shape.depth() {
            return Err(AeRefusal::Shallower {
                depth: shape.depth(),
            });
        }
        if !self.admit(from, session) {
            return Err(AeRefusal::Busy);
        }
        let answer = self
            .trees
            .tree(from)
            .and_then(|tree| tree.answer(request).ok());
        if answer.is_none() {
            // A malformed request ends the exchange here: the initiator sends no `AeDone`
            // after a refusal, so forget it now.
            self.anti_entropy.serving = None;
        }
        answer.ok_or(AeRefusal::NoTree)
    }

    /// The initiator's side of the walk: descend, walk again shallower, or start listing.
    pub(super) fn on_ae_hashes_reply(
        &mut self,
        from: NodeId,
        session: OpId,
        response: Result<HashResponse, AeRefusal>,
    ) {
        let Some(mut state) = self.anti_entropy.sessions.remove(&session) else {
            return;
        };
        let Step::Walking(walk) = &mut state.step else {
            self.anti_entropy.sessions.insert(session, state);
            return;
        };
        if state.peer != from {
            self.anti_entropy.sessions.insert(session, state);
            return;
        }
        let response = match response {
            Ok(response) => response,
            Err(AeRefusal::Shallower { depth }) if depth < walk.shape().depth() => {
                // The peer's tree is shallower: the top of ours stands for it.
                let restarted = state.shape.with_depth(depth).ok().and_then(|shape| {
                    Some((shape, DiffWalk::new(shape, walk_config(state.salt)).ok()?))
                });
                if let Some((shape, mut walk)) = restarted
                    && let Some(request) = walk.next_request()
                {
                    state.shape = shape;
                    state.step = Step::Walking(walk);
                    self.anti_entropy.sessions.insert(session, state);
                    self.send_hashes(from, session, request);
                } else {
                    self.timers.cancel(Timer::AntiEntropyDeadline(session));
                }
                return;
            }
            Err(_) => {
                // Refused before it started: nothing to release on the peer.
                self.timers.cancel(Timer::AntiEntropyDeadline(session));
                return;
            }
        };
        let received = match self.trees.tree(from) {
            Some(tree) => walk.receive(tree, &response).is_ok(),
            None => false,
        };
        if !received {
            self.end_session(session, from, false);
            return;
        }
        if let Some(request) = walk.next_request() {
            self.anti_entropy.sessions.insert(session, state);
            self.send_hashes(from, session, request);
            return;
        }
        let Step::Walking(walk) = std::mem::replace(&mut state.step, Step::Pulling) else {
            return;
        };
        let Some(result) = walk.into_result() else {
            self.end_session(session, from, false);
            return;
        };
        state.remaining = result.differing_leaves.iter().map(|l| l.leaf).collect();
        self.anti_entropy.sessions.insert(session, state);
        self.next_batch(session);
    }

    /// Lists the next batch of differing leaves, or ends the exchange when none is left.
    fn next_batch(&mut self, session: OpId) {
        let Some(mut state) = self.anti_entropy.sessions.remove(&session) else {
            return;
        };
        let peer = state.peer;
        let max_leaves = self.config.anti_entropy_max_keys.min(MAX_LISTED_LEAVES);
        let mut listing = LeafListing::new(state.shape, state.salt);
        let mut listed = Vec::new();
        while listing.leaves.len() < max_leaves {
            let Some(leaf) = state.remaining.pop_front() else {
                break;
            };
            let Ok(mine) = self.shared_entries(peer, state.shape.leaf_range(leaf)) else {
                self.end_session(session, peer, false);
                return;
            };
            if listed.len() + mine.len() > MAX_LISTED_FINGERPRINTS {
                if listing.leaves.is_empty() {
                    // A leaf too full to list (a tree far too shallow): skip it this round.
                    continue;
                }
                state.remaining.push_front(leaf);
                break;
            }
            listing.push_leaf(leaf, &mine);
            listed.extend(mine);
        }
        if listing.leaves.is_empty() {
            self.end_session(session, peer, true);
            return;
        }
        state.step = Step::Listed(listed);
        self.anti_entropy.sessions.insert(session, state);
        let ring = self.ring_digest();
        self.send_session(
            peer,
            session,
            PeerMessage::AeKeys {
                session,
                ring,
                listing,
            },
        );
    }

    /// Ends an exchange this node started: tells the peer, and counts it if it completed.
    fn end_session(&mut self, session: OpId, peer: NodeId, completed: bool) {
        self.anti_entropy.sessions.remove(&session);
        self.timers.cancel(Timer::AntiEntropyDeadline(session));
        self.send_ae(peer, PeerMessage::AeDone { session });
        if completed {
            self.stats.anti_entropy_rounds += 1;
            self.stats.last_anti_entropy = Some(self.now);
        }
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

    /// The replica's side of a listing: match it, send what the initiator surely lacks, offer
    /// the rest, name the initiator's unmatched keys.
    pub(super) fn on_ae_keys(
        &mut self,
        from: NodeId,
        session: OpId,
        ring: u64,
        listing: LeafListing,
    ) {
        if ring != self.ring_digest() || listing.validate().is_err() || !self.admit(from, session) {
            self.stats.messages_ignored += 1;
            return;
        }
        let mut items = Vec::new();
        let mut items_bytes = 0;
        let mut offers = Vec::new();
        let mut offered = Vec::new();
        let mut unmatched = Vec::new();
        for (leaf, positions) in listing.leaf_ranges() {
            let Ok(mine) = self.shared_entries(from, listing.shape.leaf_range(leaf)) else {
                return;
            };
            let found = match_leaf(
                &listing.fingerprints[positions.clone()],
                &mine,
                listing.salt,
            );
            unmatched.extend(found.unmatched_in_listing(positions.start));
            for &i in &found.unmatched_local {
                let key = &mine[i].key;
                let Ok(Some(versions)) = self.store.get(key) else {
                    continue;
                };
                if found.unmatched_remote.is_empty() {
                    // Every key the initiator has here matched: it lacks this one.
                    if items_bytes > MAX_BATCH_BYTES {
                        continue;
                    }
                    let item = KeyVersions {
                        key: key.clone(),
                        versions,
                    };
                    items_bytes += item.approx_bytes();
                    items.push(item);
                } else {
                    offers.push(KeyOffer {
                        key_fingerprint: key_fingerprint(key, listing.salt),
                        context: versions.context(),
                    });
                    offered.push(key.clone());
                }
            }
        }
        if let Some(serving) = &mut self.anti_entropy.serving {
            serving.offered = offered;
        }
        self.stats.anti_entropy_keys += items.len() as u64;
        self.send_ae(
            from,
            PeerMessage::AeKeysReply {
                session,
                items,
                offers,
                unmatched,
            },
        );
    }

    /// The initiator's side of the match: merge what came, push what the peer needs, pull
    /// the offers that are newer or concurrent.
    pub(super) fn on_ae_keys_reply(
        &mut self,
        from: NodeId,
        session: OpId,
        items: Vec<KeyVersions>,
        offers: Vec<KeyOffer>,
        unmatched: Vec<u32>,
    ) {
        // Take the listed entries; the step becomes Pulling until the push is decided.
        let taken = self
            .anti_entropy
            .sessions
            .get_mut(&session)
            .filter(|state| state.peer == from)
            .and_then(
                |state| match std::mem::replace(&mut state.step, Step::Pulling) {
                    Step::Listed(listed) => Some((listed, state.salt)),
                    other => {
                        state.step = other;
                        None
                    }
                },
            );
        let Some((listed, salt)) = taken else {
            self.stats.messages_ignored += 1;
            return;
        };
        self.stats.anti_entropy_keys += items.len() as u64;
        for item in &items {
            self.merge_repair(&item.key, &item.versions);
        }
        // Offers by key fingerprint; a fingerprint offered twice matches neither.
        let mut by_fingerprint: BTreeMap<u32, Option<usize>> = BTreeMap::new();
        for (j, offer) in offers.iter().enumerate() {
            by_fingerprint
                .entry(offer.key_fingerprint)
                .and_modify(|slot| *slot = None)
                .or_insert(Some(j));
        }
        let mut claimed = vec![false; offers.len()];
        let mut push = Vec::new();
        let mut push_bytes = 0;
        let mut wanted = Vec::new();
        for position in unmatched {
            let Some(entry) = listed.get(position as usize) else {
                continue;
            };
            let Ok(Some(versions)) = self.store.get(&entry.key) else {
                continue;
            };
            let offer = by_fingerprint
                .get(&key_fingerprint(&entry.key, salt))
                .copied()
                .flatten();
            let way = match offer {
                Some(j) => {
                    claimed[j] = true;
                    direction(&versions, &offers[j].context)
                }
                None => Direction::Push,
            };
            if let (Direction::Pull | Direction::Both, Some(j)) = (way, offer) {
                wanted.push(j as u32);
            }
            if way != Direction::Pull && push_bytes <= MAX_BATCH_BYTES {
                let item = KeyVersions {
                    key: entry.key.clone(),
                    versions,
                };
                push_bytes += item.approx_bytes();
                push.push(item);
            }
        }
        // Offers no listed key claimed are keys this node lacks.
        wanted.extend(
            claimed
                .iter()
                .enumerate()
                .filter(|&(_, &c)| !c)
                .map(|(j, _)| j as u32),
        );
        wanted.sort_unstable();
        self.stats.anti_entropy_keys += push.len() as u64;
        let pulling = !wanted.is_empty();
        if !push.is_empty() || pulling {
            self.send_session(
                from,
                session,
                PeerMessage::AePush {
                    session,
                    items: push,
                    wanted,
                },
            );
        }
        if !pulling {
            self.next_batch(session);
        }
    }

    /// The replica's side of a push: merge, and answer the wanted offers.
    pub(super) fn on_ae_push(
        &mut self,
        from: NodeId,
        session: OpId,
        items: Vec<KeyVersions>,
        wanted: Vec<u32>,
    ) {
        if !self.admit(from, session) {
            self.stats.messages_ignored += 1;
            return;
        }
        self.stats.anti_entropy_keys += items.len() as u64;
        for item in &items {
            self.merge_repair(&item.key, &item.versions);
        }
        if wanted.is_empty() {
            return;
        }
        let offered = self
            .anti_entropy
            .serving
            .as_mut()
            .map(|s| std::mem::take(&mut s.offered))
            .unwrap_or_default();
        let mut reply = Vec::new();
        let mut reply_bytes = 0;
        for position in wanted {
            if reply_bytes > MAX_BATCH_BYTES {
                break;
            }
            let Some(key) = offered.get(position as usize) else {
                continue;
            };
            if let Ok(Some(versions)) = self.store.get(key) {
                let item = KeyVersions {
                    key: key.clone(),
                    versions,
                };
                reply_bytes += item.approx_bytes();
                reply.push(item);
            }
        }
        self.stats.anti_entropy_keys += reply.len() as u64;
        self.send_ae(
            from,
            PeerMessage::AePushReply {
                session,
                items: reply,
            },
        );
    }

    /// The initiator's side of the pull: merge, then the next batch.
    pub(super) fn on_ae_push_reply(
        &mut self,
        from: NodeId,
        session: OpId,
        items: Vec<KeyVersions>,
    ) {
        match self.anti_entropy.sessions.get(&session) {
            Some(state) if state.peer == from && matches!(state.step, Step::Pulling) => {}
            _ => {
                self.stats.messages_ignored += 1;
                return;
            }
        }
        self.stats.anti_entropy_keys += items.len() as u64;
        for item in &items {
            self.merge_repair(&item.key, &item.versions);
        }
        self.next_batch(session);
    }

    /// The initiator ended the exchange this node serves.
    pub(super) fn on_ae_done(&mut self, from: NodeId, session: OpId) {
        if self
            .anti_entropy
            .serving
            .as_ref()
            .is_some_and(|s| s.peer == from && s.session == session)
        {
            self.anti_entropy.serving = None;
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

    /// An exchange timed out.
    pub(super) fn on_ae_deadline(&mut self, session: OpId) {
        self.anti_entropy.sessions.remove(&session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{ActorId, CausalContext, Value};

    fn set(context: &CausalContext, actor: u64) -> VersionSet {
        VersionSet::with_update(context, ActorId(actor), Value::Data(b"v".to_vec()))
    }

    // A key travels towards the older side only; concurrent versions travel both ways.
    #[test]
    fn direction_follows_the_version_vectors() {
        let old = set(&CausalContext::empty(), 1);
        let new = set(&old.context(), 2);
        let concurrent = set(&CausalContext::empty(), 3);
        assert_eq!(direction(&old, &new.context()), Direction::Pull);
        assert_eq!(direction(&new, &old.context()), Direction::Push);
        assert_eq!(direction(&old, &concurrent.context()), Direction::Both);
        assert_eq!(direction(&old, &old.context()), Direction::Both);
    }
}
