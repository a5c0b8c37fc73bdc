//! The gossiped member table: who is in the cluster, where to reach them, and in what state.
//!
//! # What this implements
//! Dynamo §4.8.1 propagates membership changes and ring ownership by gossip: every second a
//! node contacts a random peer and the two reconcile their views. ringstore gossips the whole
//! table, one [`MemberInfo`] per node, in the style of Cassandra's endpoint states: each entry
//! is owned by the node it describes, which stamps it with a `(generation, version, heartbeat)`
//! triple. Merging keeps, per node, the entry that ranks highest (see [`MemberInfo::supersedes`]),
//! so the merge is the join of a semilattice and every table that has seen the same entries
//! holds the same table, whatever the order of the gossip exchanges.
//!
//! # Guarantees
//! - **Merge laws.** On entries about other nodes, [`MemberTable::merge`] is commutative,
//!   associative and idempotent (property-tested), so random pairwise gossip converges.
//! - **Self-ownership.** A node never takes a remote entry about itself. A remote entry that
//!   ranks above its own means another process uses its id (or its generation was not
//!   persisted): the merge reports it in [`MergeReport::impostors`] and raises the local entry
//!   above it, so the rightful view wins the next exchanges.
//! - **Left is sticky.** Within one generation a `Left` entry outranks every other status, so
//!   stale gossip cannot resurrect a decommissioned node; only a restart with a higher
//!   generation brings it back.
//! - **Bounded.** At most [`MAX_MEMBERS`] members; every entry taken from the network is
//!   checked by [`MemberInfo::validate`] (vnode count, address and zone lengths).
//! - **Deterministic.** Members are kept in `NodeId` order; [`MemberTable::digest`] is a
//!   stable hash of that order.
//!
//! # Known limits
//! - Left tombstones are never collected: a decommissioned id costs one entry forever.
//! - New members beyond [`MAX_MEMBERS`] are ignored (and reported), which breaks convergence
//!   for them by design: the limit is a guard, not an operating point.

use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use xxhash_rust::xxh3::Xxh3;

/// The most members a table holds: a guard against a peer that gossips made-up members. Full
/// table gossip costs O(members) per message, so clusters this large would want digests first.
pub const MAX_MEMBERS: usize = 1024;

/// The most virtual nodes one member may claim: bounds the ring a table can describe.
pub const MAX_VNODES: u32 = 4096;

/// The longest peer address accepted (bytes): a `host:port` or URL, never a payload.
pub const MAX_ADDR_LEN: usize = 256;

/// The longest zone name accepted (bytes).
pub const MAX_ZONE_LEN: usize = 64;

/// Where a member is in its life cycle. A node moves forward only, within one generation:
///
/// `Joining → Up → Leaving → Left`
///
/// A restart with a higher generation starts over (usually at `Joining` or `Up`). The variant
/// order is the life-cycle order: `set_status` and the digest rely on it (append, never
/// reorder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Announced but not yet owning ranges (optional: the node core may go straight to `Up`).
    Joining,
    /// Owns ranges: part of the ring.
    Up,
    /// Decommissioning: out of the ring at once, streaming its data to the new owners.
    Leaving,
    /// Gone. Kept as a tombstone so that stale gossip cannot resurrect the node; it may only
    /// return with a higher generation.
    Left,
}

impl MemberStatus {
    /// Whether a member in this status owns ranges of the ring (only `Up`: see
    /// `docs/membership.md`).
    pub fn in_ring(self) -> bool {
        self == MemberStatus::Up
    }
}

/// What the cluster knows about one node; written only by that node, relayed by everyone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The node described.
    pub node: NodeId,
    /// How the driver reaches the node; opaque to the core.
    pub addr: String,
    /// The failure zone (rack, availability zone) replicas should spread across.
    pub zone: Option<String>,
    /// How many virtual nodes (tokens) the node places on the ring.
    pub vnodes: u32,
    /// Where the node is in its life cycle.
    pub status: MemberStatus,
    /// Bumped each time the node process restarts (persisted by the node): a new incarnation
    /// supersedes everything the old one said.
    pub generation: u64,
    /// Bumped by the node when its address, zone, vnodes or status change.
    pub version: u64,
    /// Bumped by the node every gossip round: the liveness signal fed to the failure detector.
    pub heartbeat: u64,
}

/// Why a member entry (local, or received by gossip) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// The vnode count is 0 or above [`MAX_VNODES`].
    #[error("member {node} claims {vnodes} vnodes; allowed 1..={MAX_VNODES}")]
    Vnodes {
        /// The member.
        node: NodeId,
        /// Its claimed vnode count.
        vnodes: u32,
    },
    /// The address is empty or longer than [`MAX_ADDR_LEN`] bytes.
    #[error("member {node} has an address of {len} bytes; allowed 1..={MAX_ADDR_LEN}")]
    Addr {
        /// The member.
        node: NodeId,
        /// The address length in bytes.
        len: usize,
    },
    /// The zone is empty or longer than [`MAX_ZONE_LEN`] bytes.
    #[error("member {node} has a zone of {len} bytes; allowed 1..={MAX_ZONE_LEN}")]
    Zone {
        /// The member.
        node: NodeId,
        /// The zone length in bytes.
        len: usize,
    },
    /// The local node asked to move its status backwards (or out of `Left`) within one
    /// generation; only a restart with a higher generation can do that.
    #[error("member status cannot go from {from:?} to {to:?} within a generation")]
    StatusBackwards {
        /// The current status.
        from: MemberStatus,
        /// The status asked for.
        to: MemberStatus,
    },
    /// A decoded table holds more than [`MAX_MEMBERS`] members.
    #[error("member table holds {count} members; the limit is {MAX_MEMBERS}")]
    TooManyMembers {
        /// How many it holds.
        count: usize,
    },
    /// A decoded table files an entry under another node's id, or lists the local node among
    /// the others.
    #[error("member table files the entry of {node} under {key}")]
    Misfiled {
        /// The id the entry is filed under.
        key: NodeId,
        /// The node the entry describes.
        node: NodeId,
    },
}

impl MemberInfo {
    /// Checks the limits that matter for data received from the network.
    pub fn validate(&self) -> Result<(), MemberError> {
        if self.vnodes == 0 || self.vnodes > MAX_VNODES {
            return Err(MemberError::Vnodes {
                node: self.node,
                vnodes: self.vnodes,
            });
        }
        if self.addr.is_empty() || self.addr.len() > MAX_ADDR_LEN {
            return Err(MemberError::Addr {
                node: self.node,
                len: self.addr.len(),
            });
        }
        if let Some(zone) = &self.zone
            && (zone.is_empty() || zone.len() > MAX_ZONE_LEN)
        {
            return Err(MemberError::Zone {
                node: self.node,
                len: zone.len(),
            });
        }
        Ok(())
    }

    /// The merge order of two entries about the same node: a higher generation wins; within a
    /// generation a `Left` entry wins (tombstones are sticky); then the higher version, then
    /// the higher heartbeat. Entries equal on all of those (only a buggy or impostor node makes
    /// them) are ordered by their content, so that the order is total and the merge
    /// deterministic.
    pub fn supersedes(&self, other: &MemberInfo) -> bool {
        self.rank() > other.rank()
    }

    #[allow(clippy::type_complexity)]
    fn rank(&self) -> (u64, bool, u64, u64, MemberStatus, u32, &str, Option<&str>) {
        (
            self.generation,
            self.status == MemberStatus::Left,
            self.version,
            self.heartbeat,
            self.status,
            self.vnodes,
            &self.addr,
            self.zone.as_deref(),
        )
    }

    /// Whether the two entries differ in what the rest of the system acts on (address, zone,
    /// vnodes, status, incarnation), as opposed to version and heartbeat alone.
    fn differs_in_substance(&self, other: &MemberInfo) -> bool {
        self.generation != other.generation
            || self.status != other.status
            || self.vnodes != other.vnodes
            || self.addr != other.addr
            || self.zone != other.zone
    }

    /// Whether replacing `older` by `self` is a sign of life of the node: a new incarnation,
    /// or a higher heartbeat in the same one.
    fn heartbeat_advanced_over(&self, older: &MemberInfo) -> bool {
        self.generation > older.generation
            || (self.generation == older.generation && self.heartbeat > older.heartbeat)
    }

    /// Feeds a stable, explicit encoding of the entry to `hasher` (independent of serde).
    fn hash_into(&self, hasher: &mut Xxh3) {
        hasher.update(&self.node.0.to_le_bytes());
        hasher.update(&self.generation.to_le_bytes());
        hasher.update(&self.version.to_le_bytes());
        hasher.update(&self.heartbeat.to_le_bytes());
        hasher.update(&[self.status as u8]);
        hasher.update(&self.vnodes.to_le_bytes());
        hasher.update(&(self.addr.len() as u64).to_le_bytes());
        hasher.update(self.addr.as_bytes());
        match &self.zone {
            None => hasher.update(&[0]),
            Some(zone) => {
                hasher.update(&[1]);
                hasher.update(&(zone.len() as u64).to_le_bytes());
                hasher.update(zone.as_bytes());
            }
        }
    }
}

/// What a merge changed, for the node core to act on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Members that are new, or whose address, zone, vnodes, status or generation changed:
    /// the ring may have changed. Sorted, without repeats.
    pub changed: Vec<NodeId>,
    /// Members whose heartbeat advanced (or who are new, or restarted): feed the failure
    /// detector. Sorted, without repeats.
    pub heartbeats: Vec<NodeId>,
    /// Remote entries about the local node that ranked above its own: another process uses
    /// this id, or this node's generation was not persisted. The local entry now ranks above
    /// them (possibly with a higher generation, which the node core must persist).
    pub impostors: Vec<MemberInfo>,
    /// New members ignored because the table already holds [`MAX_MEMBERS`].
    pub rejected_over_limit: Vec<NodeId>,
    /// Remote entries ignored because they failed [`MemberInfo::validate`].
    pub invalid: Vec<MemberError>,
}

impl MergeReport {
    /// Whether the merge changed nothing worth acting on and found nothing suspicious.
    pub fn is_quiet(&self) -> bool {
        self.changed.is_empty()
            && self.heartbeats.is_empty()
            && self.impostors.is_empty()
            && self.rejected_over_limit.is_empty()
            && self.invalid.is_empty()
    }
}

/// One node's view of the cluster membership: its own entry, which only it writes, and the
/// latest entry it has seen of every other node.
///
/// Decoding (serde) checks every entry and the invariants below, so a persisted table cannot
/// smuggle in what gossip would refuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MemberTableWire")]
pub struct MemberTable {
    /// The local node's entry.
    local: MemberInfo,
    /// Every other member, filed under its own id; never the local node.
    others: BTreeMap<NodeId, MemberInfo>,
}

/// The wire shape of a [`MemberTable`], before its invariants are checked.
#[derive(Deserialize)]
struct MemberTableWire {
    local: MemberInfo,
    others: BTreeMap<NodeId, MemberInfo>,
}

impl TryFrom<MemberTableWire> for MemberTable {
    type Error = MemberError;

    fn try_from(wire: MemberTableWire) -> Result<Self, MemberError> {
        let count = wire.others.len().saturating_add(1);
        if count > MAX_MEMBERS {
            return Err(MemberError::TooManyMembers { count });
        }
        wire.local.validate()?;
        for (&key, info) in &wire.others {
            if key != info.node || key == wire.local.node {
                return Err(MemberError::Misfiled {
                    key,
                    node: info.node,
                });
            }
            info.validate()?;
        }
        Ok(MemberTable {
            local: wire.local,
            others: wire.others,
        })
    }
}

impl MemberTable {
    /// A table that knows only the local node, described by `local`.
    pub fn new(local: MemberInfo) -> Result<Self, MemberError> {
        local.validate()?;
        Ok(MemberTable {
            local,
            others: BTreeMap::new(),
        })
    }

    /// The node that owns this table.
    pub fn me(&self) -> NodeId {
        self.local.node
    }

    /// The local node's own entry.
    pub fn local(&self) -> &MemberInfo {
        &self.local
    }

    /// The entry of `node` (the local one included), if known.
    pub fn get(&self, node: NodeId) -> Option<&MemberInfo> {
        if node == self.local.node {
            Some(&self.local)
        } else {
            self.others.get(&node)
        }
    }

    /// How many members the table holds, the local node included (at least 1).
    pub fn member_count(&self) -> usize {
        self.others.len() + 1
    }

    /// Every entry, the local one included, in `NodeId` order: what a gossip message carries.
    pub fn entries(&self) -> impl Iterator<Item = &MemberInfo> {
        let me = self.local.node;
        self.others
            .range(..me)
            .map(|(_, info)| info)
            .chain(std::iter::once(&self.local))
            .chain(self.others.range(me..).map(|(_, info)| info))
    }

    /// Bumps the local heartbeat: once per gossip round, before sending the table.
    pub fn bump_heartbeat(&mut self) {
        self.local.heartbeat = self.local.heartbeat.saturating_add(1);
    }

    /// Moves the local node to `status` (forward only within a generation) and bumps its
    /// version. Returns whether anything changed.
    pub fn set_status(&mut self, status: MemberStatus) -> Result<bool, MemberError> {
        if status == self.local.status {
            return Ok(false);
        }
        if status < self.local.status {
            return Err(MemberError::StatusBackwards {
                from: self.local.status,
                to: status,
            });
        }
        self.local.status = status;
        self.local.version = self.local.version.saturating_add(1);
        Ok(true)
    }

    /// Changes the local node's address, zone and vnode count (checked by
    /// [`MemberInfo::validate`]) and bumps its version if any changed. Returns whether
    /// anything changed.
    pub fn update_info(
        &mut self,
        addr: String,
        zone: Option<String>,
        vnodes: u32,
    ) -> Result<bool, MemberError> {
        let mut updated = self.local.clone();
        updated.addr = addr;
        updated.zone = zone;
        updated.vnodes = vnodes;
        updated.validate()?;
        if !updated.differs_in_substance(&self.local) {
            return Ok(false);
        }
        updated.version = updated.version.saturating_add(1);
        self.local = updated;
        Ok(true)
    }

    /// Merges a table received by gossip: per member, the higher-ranked entry wins (see
    /// [`MemberInfo::supersedes`]); entries about the local node are never taken (see
    /// [`MergeReport::impostors`]); invalid entries and new members over [`MAX_MEMBERS`] are
    /// ignored and reported.
    pub fn merge(&mut self, remote: &[MemberInfo]) -> MergeReport {
        let mut report = MergeReport::default();
        let mut changed = BTreeSet::new();
        let mut heartbeats = BTreeSet::new();
        for entry in remote {
            if let Err(error) = entry.validate() {
                report.invalid.push(error);
                continue;
            }
            if entry.node == self.local.node {
                if entry.supersedes(&self.local) {
                    self.outrank_impostor(entry);
                    report.impostors.push(entry.clone());
                }
                continue;
            }
            let member_count = self.member_count();
            match self.others.get_mut(&entry.node) {
                Some(current) => {
                    if entry.supersedes(current) {
                        if entry.differs_in_substance(current) {
                            changed.insert(entry.node);
                        }
                        if entry.heartbeat_advanced_over(current) {
                            heartbeats.insert(entry.node);
                        }
                        *current = entry.clone();
                    }
                }
                None if member_count >= MAX_MEMBERS => {
                    report.rejected_over_limit.push(entry.node);
                }
                None => {
                    changed.insert(entry.node);
                    heartbeats.insert(entry.node);
                    self.others.insert(entry.node, entry.clone());
                }
            }
        }
        report.changed = changed.into_iter().collect();
        report.heartbeats = heartbeats.into_iter().collect();
        report
    }

    /// Raises the local entry just above `impostor` (an entry about this node that ranks above
    /// it): the same generation with a higher version if that suffices, else the next
    /// generation. At the very top of the `u64` range the local entry is left as it is.
    fn outrank_impostor(&mut self, impostor: &MemberInfo) {
        if let Some(version) = impostor.version.checked_add(1) {
            let candidate = MemberInfo {
                generation: impostor.generation,
                version,
                ..self.local.clone()
            };
            if candidate.supersedes(impostor) {
                self.local = candidate;
                return;
            }
        }
        if let Some(generation) = impostor.generation.checked_add(1) {
            self.local.generation = generation;
            self.local.version = self.local.version.saturating_add(1);
        }
    }

    /// The members that own ranges (status `Up`), in `NodeId` order, as
    /// `(node, zone, vnodes)`: the input of the ring.
    pub fn ring_members(&self) -> Vec<(NodeId, Option<String>, u32)> {
        self.entries()
            .filter(|info| info.status.in_ring())
            .map(|info| (info.node, info.zone.clone(), info.vnodes))
            .collect()
    }

    /// A stable 64-bit hash of every entry (xxh3 over an explicit encoding, in `NodeId`
    /// order): equal tables have equal digests on every node and every build.
    pub fn digest(&self) -> u64 {
        let mut hasher = Xxh3::new();
        hasher.update(&(self.member_count() as u64).to_le_bytes());
        for info in self.entries() {
            info.hash_into(&mut hasher);
        }
        hasher.digest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(node: u64, generation: u64, version: u64, heartbeat: u64) -> MemberInfo {
        MemberInfo {
            node: NodeId(node),
            addr: format!("10.0.0.{node}:7000"),
            zone: Some(format!("z{}", node % 3)),
            vnodes: 16,
            status: MemberStatus::Up,
            generation,
            version,
            heartbeat,
        }
    }

    fn with_status(mut entry: MemberInfo, status: MemberStatus) -> MemberInfo {
        entry.status = status;
        entry
    }

    fn table(entries: &[MemberInfo]) -> MemberTable {
        let mut table = MemberTable::new(entries[0].clone()).unwrap();
        table.merge(&entries[1..]);
        table
    }

    fn snapshot(table: &MemberTable) -> Vec<MemberInfo> {
        table.entries().cloned().collect()
    }

    /// A splitmix64 step: the tests' seeded RNG.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Entries about nodes 1..=5 with small counters, so that collisions and ties are common.
    fn arb_entry() -> impl Strategy<Value = MemberInfo> {
        (
            1u64..=5,
            0u64..3,
            0u64..4,
            0u64..4,
            0usize..4,
            1u32..4,
            0u8..2,
        )
            .prop_map(
                |(node, generation, version, heartbeat, status, vnodes, addr)| {
                    let status = [
                        MemberStatus::Joining,
                        MemberStatus::Up,
                        MemberStatus::Leaving,
                        MemberStatus::Left,
                    ][status];
                    MemberInfo {
                        node: NodeId(node),
                        addr: format!("host{addr}"),
                        zone: None,
                        vnodes,
                        status,
                        generation,
                        version,
                        heartbeat,
                    }
                },
            )
    }

    /// A table owned by `owner` (outside 1..=5, so that no pool entry is about it) that has
    /// merged `entries`.
    fn owned_table(owner: u64, entries: &[MemberInfo]) -> MemberTable {
        let mut table = MemberTable::new(info(owner, 0, 0, 0)).unwrap();
        table.merge(entries);
        table
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // `supersedes` is a strict total order on distinct entries about one node, which is
        // what makes the merge a semilattice join.
        #[test]
        fn supersedes_is_a_strict_total_order(
            a in arb_entry(),
            mut b in arb_entry(),
            mut c in arb_entry(),
        ) {
            b.node = a.node;
            c.node = a.node;
            prop_assert!(!a.supersedes(&a));
            if a != b {
                prop_assert!(a.supersedes(&b) != b.supersedes(&a));
            }
            if a.supersedes(&b) && b.supersedes(&c) {
                prop_assert!(a.supersedes(&c));
            }
        }

        // Merge laws on the table (Dynamo §4.8.1 relies on them for gossip to converge):
        // commutative, associative, idempotent, whatever the entries and their order.
        #[test]
        fn merge_is_commutative_associative_idempotent(
            xs in proptest::collection::vec(arb_entry(), 0..12),
            ys in proptest::collection::vec(arb_entry(), 0..12),
            zs in proptest::collection::vec(arb_entry(), 0..12),
        ) {
            let (a, b, c) = (owned_table(100, &xs), owned_table(101, &ys), owned_table(102, &zs));

            let mut ab = a.clone();
            ab.merge(&snapshot(&b));
            let mut ba = b.clone();
            ba.merge(&snapshot(&a));
            prop_assert_eq!(snapshot(&ab), snapshot(&ba));
            prop_assert_eq!(ab.digest(), ba.digest());

            let mut ab_c = ab.clone();
            ab_c.merge(&snapshot(&c));
            let mut bc = b.clone();
            bc.merge(&snapshot(&c));
            let mut a_bc = a.clone();
            a_bc.merge(&snapshot(&bc));
            prop_assert_eq!(snapshot(&ab_c), snapshot(&a_bc));

            let mut aa = a.clone();
            let report = aa.merge(&snapshot(&a));
            prop_assert_eq!(&aa, &a);
            prop_assert!(report.is_quiet());
            let mut abb = ab.clone();
            abb.merge(&snapshot(&b));
            prop_assert_eq!(&abb, &ab);
        }

        // Whatever order the entries arrive in, the table ends with the highest-ranked entry
        // of each node.
        #[test]
        fn merge_keeps_the_highest_entry(
            mut xs in proptest::collection::vec(arb_entry(), 1..20),
        ) {
            let table = owned_table(100, &xs);
            xs.reverse();
            let reversed = owned_table(100, &xs);
            prop_assert_eq!(snapshot(&table), snapshot(&reversed));
            for x in &xs {
                let kept = table.get(x.node).unwrap();
                prop_assert!(kept == x || kept.supersedes(x));
            }
        }

        // Random pairwise gossip among tables that keep changing converges once the changes
        // stop: every table ends equal to every other, with equal digests (Dynamo §4.8.1).
        #[test]
        fn random_gossip_converges(seed in any::<u64>()) {
            let node_count = 8u64;
            let mut rng = seed;
            let mut tables: Vec<MemberTable> = (1..=node_count)
                .map(|node| MemberTable::new(info(node, 1, 0, 0)).unwrap())
                .collect();
            let pick = |rng: &mut u64, n: u64| (splitmix(rng) % n) as usize;
            // Phase 1: gossip while nodes bump heartbeats and change status.
            for _ in 0..100 {
                let from = pick(&mut rng, node_count);
                let to = pick(&mut rng, node_count);
                match splitmix(&mut rng) % 10 {
                    0 => {
                        let status = [MemberStatus::Leaving, MemberStatus::Left][pick(&mut rng, 2)];
                        let _ = tables[from].set_status(status);
                    }
                    1 => {
                        let _ = tables[from].update_info(
                            format!("moved{}", splitmix(&mut rng) % 4),
                            None,
                            8,
                        );
                    }
                    _ => tables[from].bump_heartbeat(),
                }
                let sent = snapshot(&tables[from]);
                let report = tables[to].merge(&sent);
                prop_assert!(report.impostors.is_empty() && report.invalid.is_empty());
            }
            // Phase 2: no more changes; each round, every node pushes to a random peer.
            let mut rounds = 0;
            while !tables.windows(2).all(|w| snapshot(&w[0]) == snapshot(&w[1])) {
                rounds += 1;
                prop_assert!(rounds <= 60, "no convergence after 60 rounds (seed {seed})");
                for from in 0..node_count as usize {
                    let to = pick(&mut rng, node_count);
                    let sent = snapshot(&tables[from]);
                    tables[to].merge(&sent);
                }
            }
            let digest = tables[0].digest();
            prop_assert!(tables.iter().all(|t| t.digest() == digest));
            // Each node's own entry is what everyone holds about it.
            for t in &tables {
                prop_assert_eq!(tables[0].get(t.me()), Some(t.local()));
            }
        }
    }

    // A remote entry about the local node that ranks above it is never taken: it is reported
    // as an impostor and the local entry is raised above it, so the local view wins next time.
    #[test]
    fn own_entry_cannot_be_overwritten_by_an_impostor() {
        let mut mine = table(&[info(1, 3, 2, 40), info(2, 1, 0, 0)]);
        let impostor = MemberInfo {
            addr: "evil:1".into(),
            ..info(1, 3, 7, 5)
        };
        let report = mine.merge(std::slice::from_ref(&impostor));
        assert_eq!(report.impostors, vec![impostor.clone()]);
        assert!(report.changed.is_empty());
        let local = mine.local();
        assert_eq!(local.addr, "10.0.0.1:7000");
        assert_eq!((local.generation, local.heartbeat), (3, 40));
        assert!(local.supersedes(&impostor));
        // A third node that heard the impostor first still ends with the rightful entry.
        let mut other = table(&[info(2, 1, 0, 0), impostor.clone()]);
        other.merge(&snapshot(&mine));
        assert_eq!(other.get(NodeId(1)), Some(mine.local()));
        // An impostor that says the node Left forces a new generation (Left is sticky).
        let left = with_status(info(1, 3, 9, 0), MemberStatus::Left);
        let report = mine.merge(std::slice::from_ref(&left));
        assert_eq!(report.impostors.len(), 1);
        assert_eq!(mine.local().generation, 4);
        assert_eq!(mine.local().status, MemberStatus::Up);
        assert!(mine.local().supersedes(&left));
        // An older entry about the node (its previous life) is not an impostor.
        assert!(mine.merge(&[info(1, 2, 50, 50)]).is_quiet());
    }

    // Left is sticky within a generation: stale Up entries, even with a higher version or
    // heartbeat, do not resurrect a decommissioned node; a higher generation does.
    #[test]
    fn left_is_sticky_and_higher_generation_revives() {
        let left = with_status(info(2, 5, 4, 100), MemberStatus::Left);
        let mut t = table(&[info(1, 1, 0, 0), left.clone()]);
        let stale = [info(2, 5, 3, 99), info(2, 5, 9, 500), info(2, 4, 99, 999)];
        let report = t.merge(&stale);
        assert!(report.is_quiet(), "{report:?}");
        assert_eq!(t.get(NodeId(2)), Some(&left));
        assert!(
            t.ring_members()
                .iter()
                .all(|(node, _, _)| *node != NodeId(2))
        );

        let reborn = with_status(info(2, 6, 0, 0), MemberStatus::Joining);
        let report = t.merge(std::slice::from_ref(&reborn));
        assert_eq!(report.changed, vec![NodeId(2)]);
        assert_eq!(report.heartbeats, vec![NodeId(2)]);
        assert_eq!(t.get(NodeId(2)), Some(&reborn));
    }

    // The report separates ring-relevant changes from mere heartbeats, and says nothing about
    // entries that did not win.
    #[test]
    fn report_distinguishes_changes_from_heartbeats() {
        let mut t = table(&[info(1, 1, 0, 0), info(2, 1, 0, 10), info(3, 1, 0, 10)]);
        let report = t.merge(&[
            info(2, 1, 0, 11),
            with_status(info(3, 1, 1, 10), MemberStatus::Leaving),
            info(4, 1, 0, 0),
            info(2, 1, 0, 11),
        ]);
        assert_eq!(report.heartbeats, vec![NodeId(2), NodeId(4)]);
        assert_eq!(report.changed, vec![NodeId(3), NodeId(4)]);
        assert!(t.merge(&[info(2, 1, 0, 9)]).is_quiet());
    }

    // The local node moves forward through its life cycle only, each move bumping its version.
    #[test]
    fn local_status_moves_forward_only() {
        let mut t = MemberTable::new(with_status(info(1, 1, 0, 0), MemberStatus::Joining)).unwrap();
        assert_eq!(t.set_status(MemberStatus::Up), Ok(true));
        assert_eq!(t.local().version, 1);
        assert_eq!(t.set_status(MemberStatus::Up), Ok(false));
        assert_eq!(t.set_status(MemberStatus::Leaving), Ok(true));
        assert!(matches!(
            t.set_status(MemberStatus::Up),
            Err(MemberError::StatusBackwards { .. })
        ));
        assert_eq!(t.set_status(MemberStatus::Left), Ok(true));
        assert!(t.set_status(MemberStatus::Joining).is_err());
        assert_eq!(t.local().version, 3);
        t.bump_heartbeat();
        assert_eq!((t.local().version, t.local().heartbeat), (3, 1));
    }

    // Only Up members are in the ring, in node order, with their zone and vnodes.
    #[test]
    fn ring_members_are_the_up_members() {
        let t = table(&[
            info(3, 1, 0, 0),
            with_status(info(1, 1, 0, 0), MemberStatus::Joining),
            info(2, 1, 0, 0),
            with_status(info(4, 1, 0, 0), MemberStatus::Leaving),
            with_status(info(5, 1, 0, 0), MemberStatus::Left),
            info(6, 1, 0, 0),
        ]);
        let ring: Vec<NodeId> = t.ring_members().into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(ring, vec![NodeId(2), NodeId(3), NodeId(6)]);
        assert_eq!(t.ring_members()[0], (NodeId(2), Some("z2".into()), 16));
        let order: Vec<NodeId> = t.entries().map(|e| e.node).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]) && order.len() == 6);
    }

    // Invalid entries from the network are skipped and reported; valid ones in the same
    // message still apply.
    #[test]
    fn invalid_entries_are_refused() {
        let mut t = table(&[info(1, 1, 0, 0)]);
        let bad = [
            MemberInfo {
                vnodes: 0,
                ..info(2, 1, 0, 0)
            },
            MemberInfo {
                vnodes: MAX_VNODES + 1,
                ..info(3, 1, 0, 0)
            },
            MemberInfo {
                addr: String::new(),
                ..info(4, 1, 0, 0)
            },
            MemberInfo {
                addr: "a".repeat(MAX_ADDR_LEN + 1),
                ..info(5, 1, 0, 0)
            },
            MemberInfo {
                zone: Some(String::new()),
                ..info(6, 1, 0, 0)
            },
            MemberInfo {
                zone: Some("z".repeat(MAX_ZONE_LEN + 1)),
                ..info(7, 1, 0, 0)
            },
            info(8, 1, 0, 0),
        ];
        let report = t.merge(&bad);
        assert_eq!(report.invalid.len(), 6);
        assert_eq!(report.changed, vec![NodeId(8)]);
        assert_eq!(t.member_count(), 2);
        assert!(MemberTable::new(bad[0].clone()).is_err());
        assert!(t.update_info(String::new(), None, 4).is_err());
        assert_eq!(t.update_info("new:1".into(), None, 4), Ok(true));
        assert_eq!(t.local().version, 1);
    }

    // The table never grows beyond MAX_MEMBERS; updates to known members still apply.
    #[test]
    fn member_limit_holds() {
        let mut t = table(&[info(0, 1, 0, 0)]);
        let many: Vec<MemberInfo> = (1..MAX_MEMBERS as u64 + 10)
            .map(|n| info(n, 1, 0, 0))
            .collect();
        let report = t.merge(&many);
        assert_eq!(t.member_count(), MAX_MEMBERS);
        assert_eq!(report.rejected_over_limit.len(), 10);
        let report = t.merge(&[info(5, 1, 0, 1), info(5_000, 1, 0, 0)]);
        assert_eq!(report.heartbeats, vec![NodeId(5)]);
        assert_eq!(report.rejected_over_limit, vec![NodeId(5_000)]);
    }

    // Tables travel through postcard unchanged, and decoding refuses a table that breaks the
    // invariants (a misfiled entry, an invalid entry).
    #[test]
    fn serde_roundtrip_and_validation() {
        let t = table(&[info(1, 1, 2, 3), info(2, 1, 0, 0), info(3, 4, 5, 6)]);
        let bytes = postcard::to_allocvec(&t).unwrap();
        let back: MemberTable = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.digest(), t.digest());
        let entries = snapshot(&t);
        let bytes = postcard::to_allocvec(&entries).unwrap();
        assert_eq!(
            postcard::from_bytes::<Vec<MemberInfo>>(&bytes).unwrap(),
            entries
        );

        #[derive(Serialize)]
        struct Wire {
            local: MemberInfo,
            others: BTreeMap<NodeId, MemberInfo>,
        }
        let misfiled = Wire {
            local: info(1, 1, 0, 0),
            others: BTreeMap::from([(NodeId(9), info(2, 1, 0, 0))]),
        };
        let bytes = postcard::to_allocvec(&misfiled).unwrap();
        assert!(postcard::from_bytes::<MemberTable>(&bytes).is_err());
        let invalid = Wire {
            local: MemberInfo {
                vnodes: 0,
                ..info(1, 1, 0, 0)
            },
            others: BTreeMap::new(),
        };
        let bytes = postcard::to_allocvec(&invalid).unwrap();
        assert!(postcard::from_bytes::<MemberTable>(&bytes).is_err());
    }

    // The digest tells tables apart by any field and does not depend on who owns the table.
    #[test]
    fn digest_reflects_content_not_owner() {
        let a = table(&[info(1, 1, 0, 0), info(2, 1, 0, 0)]);
        let b = table(&[info(2, 1, 0, 0), info(1, 1, 0, 0)]);
        assert_eq!(a.digest(), b.digest());
        let mut c = a.clone();
        c.bump_heartbeat();
        assert_ne!(a.digest(), c.digest());
        let d = table(&[
            info(1, 1, 0, 0),
            MemberInfo {
                zone: None,
                ..info(2, 1, 0, 0)
            },
        ]);
        assert_ne!(a.digest(), d.digest());
    }
}
