//! Membership by gossip, failure detection, and the ring derived from both (Dynamo §4.8).
//!
//! Every `gossip_interval` the node bumps its heartbeat and sends its whole member table to one
//! peer drawn at random from its seeded RNG (push-pull: the peer answers with its own table).
//! Merging is per member, newest entry wins (`membership::MemberTable`). A member whose
//! heartbeat advanced feeds the phi accrual detector, which the coordinator, hint replay,
//! anti-entropy and handoff consult. The ring is a pure function of the table's `Up` members, so
//! all nodes whose tables agree route identically; its digest guards anti-entropy.
//!
//! # Limits
//! - Full-table gossip: a message is O(members). Fine for the hundreds of nodes targeted.
//! - A node judged down stays in the ring (Dynamo: failures are transient); only an explicit
//!   leave removes it.

use super::{Node, Timer};
use crate::NodeId;
use crate::membership::{MemberInfo, MemberStatus};
use crate::protocol::PeerMessage;
use crate::ring::{Ring, RingMember, Zone};
use crate::store::Store;
use rand::Rng;
use xxhash_rust::xxh3::xxh3_64;

/// The digest of a ring: equal rings, equal digests (members are sorted by the ring).
pub(super) fn ring_digest(ring: Option<&Ring>) -> u64 {
    let Some(ring) = ring else {
        return 0;
    };
    let mut bytes = Vec::new();
    for m in ring.members() {
        bytes.extend_from_slice(&m.node.0.to_le_bytes());
        bytes.extend_from_slice(&m.vnodes.to_le_bytes());
        if let Some(zone) = &m.zone {
            bytes.extend_from_slice(zone.as_str().as_bytes());
        }
        bytes.push(0xff);
    }
    xxh3_64(&bytes)
}

impl<S: Store> Node<S> {
    pub(super) fn gossip_round(&mut self) {
        self.members.bump_heartbeat();
        let peers = self.known_peers();
        if peers.is_empty() {
            return;
        }
        let index = (self.rng.next_u64() % peers.len() as u64) as usize;
        let members: Vec<MemberInfo> = self.members.entries().cloned().collect();
        self.send(
            peers[index],
            PeerMessage::Gossip {
                members,
                want_reply: true,
            },
        );
        self.send_catalog(peers[index], true);
    }

    pub(super) fn on_gossip(&mut self, from: NodeId, members: Vec<MemberInfo>, want_reply: bool) {
        let before = self.members.digest();
        let report = self.members.merge(&members);
        for &node in &report.heartbeats {
            if node != self.id {
                self.detector.heartbeat(node, self.now);
            }
        }
        if !report.invalid.is_empty() {
            self.stats.messages_ignored += 1;
        }
        if !report.impostors.is_empty() {
            // The table raised our own entry above an impostor's: keep that generation.
            let generation = self.members.local().generation;
            let _ = self
                .store
                .set_meta(super::META_GENERATION, &generation.to_le_bytes());
        }
        if !report.changed.is_empty() || !report.impostors.is_empty() {
            for &node in &report.changed {
                if node == self.id {
                    continue;
                }
                let left = self
                    .members
                    .get(node)
                    .is_some_and(|m| m.status == MemberStatus::Left);
                if left {
                    self.detector.remove(node);
                } else {
                    self.detector.expect(node, self.now);
                }
            }
            self.rebuild_ring();
            self.persist_members();
        }
        let after = self.members.digest();
        if want_reply {
            // Push-pull: answer unless the sender's table was exactly ours.
            let theirs_was_ours = before == after && members.len() == self.members.member_count();
            if !theirs_was_ours || !report.is_quiet() {
                let members: Vec<MemberInfo> = self.members.entries().cloned().collect();
                self.send(
                    from,
                    PeerMessage::Gossip {
                        members,
                        want_reply: false,
                    },
                );
            }
        }
    }

    /// Recomputes the ring from the `Up` members; on a change, the Merkle trees are rebuilt.
    pub(super) fn rebuild_ring(&mut self) {
        let members: Vec<RingMember> = self
            .members
            .ring_members()
            .into_iter()
            .map(|(node, zone, vnodes)| RingMember {
                node,
                zone: zone.map(Zone::new),
                vnodes,
            })
            .collect();
        let ring = Ring::new(members).ok();
        if ring_digest(ring.as_ref()) != ring_digest(self.ring.as_ref()) {
            self.ring = ring;
            self.trees.invalidate();
            // Start the (paged) rebuild now rather than at the next exchange's turn.
            self.timers.set(Timer::TreeRebuild, self.now);
            self.handoff.ring_changed();
        }
    }

    /// Decommission: leave the ring now; handoff moves every key away, then the node is `Left`.
    pub(super) fn start_leaving(&mut self) {
        if self
            .members
            .set_status(MemberStatus::Leaving)
            .unwrap_or(false)
        {
            self.rebuild_ring();
            self.persist_members();
            // Tell a few peers at once rather than waiting for the next round.
            let members: Vec<MemberInfo> = self.members.entries().cloned().collect();
            for peer in self.known_peers().into_iter().take(3) {
                self.send(
                    peer,
                    PeerMessage::Gossip {
                        members: members.clone(),
                        want_reply: false,
                    },
                );
            }
        }
    }

    /// Handoff found nothing left to move: the leave is complete.
    pub(super) fn finish_leaving(&mut self) {
        if self.status() == MemberStatus::Leaving
            && self.members.set_status(MemberStatus::Left).unwrap_or(false)
        {
            self.persist_members();
            let members: Vec<MemberInfo> = self.members.entries().cloned().collect();
            for peer in self.known_peers() {
                self.send(
                    peer,
                    PeerMessage::Gossip {
                        members: members.clone(),
                        want_reply: false,
                    },
                );
            }
        }
    }
}
