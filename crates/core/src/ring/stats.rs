//! Ownership statistics: how much of the key space each node coordinates and stores, computed
//! exactly from arc widths (no sampling).
//!
//! Measures the load balance that Dynamo §4.2 seeks with virtual nodes and §6.2 found wanting
//! with random tokens: the figure of merit is `max / mean` ownership (1.0 is perfect; 1.5 means
//! the busiest node stores 50% more than average and fills its disk first).
//!
//! # Guarantees
//! - Widths are summed as exact integers (`u128` over the `2^64` circle); only the final
//!   division to a fraction rounds. Primary fractions sum to 1, replica fractions to
//!   `min(n, nodes)`.
//! - Every member appears, in node id order, even one that owns nothing.
//!
//! # Limits
//! - Ownership counts key *space*, not keys or bytes: it equals the expected share of keys
//!   only for uniformly hashed keys of similar size.

use super::hash_ring::Ring;
use super::token::TokenRange;
use crate::NodeId;

/// The size of the circle, `2^64`, in the unit arc widths are summed in.
const RING_SIZE: u128 = 1 << 64;

/// One node's share of the ring.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOwnership {
    /// The node.
    pub node: NodeId,
    /// Fraction of the key space whose primary (first replica) it is.
    pub primary: f64,
    /// Fraction of the key space it stores a replica of (its storage share).
    pub replica: f64,
}

/// Every member's share of the ring for one replication factor.
#[derive(Clone, Debug, PartialEq)]
pub struct Ownership {
    /// The replication factor the replica shares were computed for.
    pub n: usize,
    /// One entry per member, by node id.
    pub nodes: Vec<NodeOwnership>,
}

impl Ownership {
    /// `max / mean` of the primary shares: the coordinator load imbalance.
    pub fn primary_balance(&self) -> f64 {
        max_over_mean(self.nodes.iter().map(|node| node.primary))
    }

    /// `max / mean` of the replica shares: the storage imbalance.
    pub fn replica_balance(&self) -> f64 {
        max_over_mean(self.nodes.iter().map(|node| node.replica))
    }

    /// The share of `node`, if it is a member.
    pub fn of(&self, node: NodeId) -> Option<&NodeOwnership> {
        self.nodes.iter().find(|entry| entry.node == node)
    }
}

/// `max / mean` of `values` (1.0 for no values or an all-zero list).
fn max_over_mean(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let count = values.clone().count();
    let sum: f64 = values.clone().sum();
    if count == 0 || sum == 0.0 {
        return 1.0;
    }
    let max = values.fold(0.0, f64::max);
    max / (sum / count as f64)
}

/// The width of an arc in tokens (`2^64` for the whole ring).
fn arc_width(range: &TokenRange) -> u128 {
    if range.is_full() {
        RING_SIZE
    } else {
        u128::from(range.end.0.wrapping_sub(range.start.0))
    }
}

impl Ring {
    /// Each member's primary and replica share of the key space with `n` replicas per key.
    pub fn ownership(&self, n: usize) -> Ownership {
        let members = self.members();
        let mut primary = vec![0u128; members.len()];
        let mut replica = vec![0u128; members.len()];
        let index_of = |node: NodeId| members.binary_search_by_key(&node, |m| m.node).ok();
        for arc in self.ranges(n) {
            let width = arc_width(&arc.range);
            if let Some(first) = arc.replicas.primary().and_then(index_of) {
                primary[first] += width;
            }
            for node in arc.replicas.iter() {
                if let Some(index) = index_of(node) {
                    replica[index] += width;
                }
            }
        }
        let fraction = |width: u128| width as f64 / RING_SIZE as f64;
        let nodes = members
            .iter()
            .enumerate()
            .map(|(index, member)| NodeOwnership {
                node: member.node,
                primary: fraction(primary[index]),
                replica: fraction(replica[index]),
            })
            .collect();
        Ownership { n, nodes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::key_token;
    use crate::ring::member::RingMember;

    fn ring_of(count: u64, vnodes: u32) -> Ring {
        Ring::new((1..=count).map(|id| RingMember::new(NodeId(id), vnodes))).unwrap()
    }

    // Shares add up: primaries to the whole ring, replicas to n rings.
    #[test]
    fn shares_sum_to_the_ring() {
        let ring = ring_of(7, 32);
        for n in [1, 3, 7, 9] {
            let ownership = ring.ownership(n);
            let primary: f64 = ownership.nodes.iter().map(|o| o.primary).sum();
            let replica: f64 = ownership.nodes.iter().map(|o| o.replica).sum();
            assert!((primary - 1.0).abs() < 1e-9);
            assert!((replica - n.min(7) as f64).abs() < 1e-9, "n {n}: {replica}");
        }
    }

    // A lone node owns everything, and balance is perfect.
    #[test]
    fn a_single_node_owns_the_ring() {
        let ownership = ring_of(1, 4).ownership(3);
        assert_eq!(ownership.nodes[0].primary, 1.0);
        assert_eq!(ownership.nodes[0].replica, 1.0);
        assert_eq!(ownership.primary_balance(), 1.0);
    }

    // Exact shares agree with a key sample (a seeded sample of 20k keys).
    #[test]
    fn shares_match_sampled_keys() {
        let ring = ring_of(5, 16);
        let ownership = ring.ownership(1);
        let sample = 20_000u64;
        for entry in &ownership.nodes {
            let owned = (0..sample)
                .filter(|i| ring.owner_of_token(key_token(&i.to_le_bytes())) == entry.node)
                .count() as f64
                / sample as f64;
            assert!(
                (owned - entry.primary).abs() < 0.02,
                "{entry:?} sampled {owned}"
            );
        }
    }

    // Dynamo §4.2: more vnodes per node balance better (max/mean falls as V grows).
    #[test]
    fn more_vnodes_balance_better() {
        let few = ring_of(10, 4).ownership(1).primary_balance();
        let many = ring_of(10, 256).ownership(1).primary_balance();
        assert!(many < few, "V=4: {few}, V=256: {many}");
        assert!(many < 1.25, "V=256: {many}");
    }

    // Weight is honoured: a node with twice the vnodes owns about twice the share.
    #[test]
    fn weight_scales_ownership() {
        let mut members: Vec<RingMember> =
            (1..=4).map(|id| RingMember::new(NodeId(id), 256)).collect();
        members.push(RingMember::new(NodeId(5), 512));
        let ownership = Ring::new(members).unwrap().ownership(1);
        let heavy = ownership.of(NodeId(5)).unwrap().primary;
        assert!((heavy - 2.0 / 6.0).abs() < 0.05, "heavy share {heavy}");
    }
}
