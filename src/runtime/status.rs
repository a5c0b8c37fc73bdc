//! A node's status as `GET /status` reports it: membership, ring, keys, hints and counters.
//!
//! The driver task builds a [`NodeStatus`] from its `Node` when asked (the core is owned by
//! that task alone), and the HTTP handler serialises it. The JSON shape is the runtime
//! contract's §3.
//!
//! # Guarantees
//! - A snapshot is consistent: it is taken between two batches of inputs.
//! - Ownership is recomputed only when the ring changes (it walks every vnode).
//!
//! # Known limits
//! - `keys` is the store's approximate count.

use ringstore_core::NodeId;
use ringstore_core::node::{Node, NodeStats};
use ringstore_core::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What `GET /status` answers. The CLI reads it back with the same type: unknown fields are
/// ignored and missing ones take their defaults, so tools survive additions to the status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    /// This node's id.
    pub id: u64,
    /// The status it gossips for itself ("Up", "Leaving", "Left").
    pub status: String,
    /// The digest of the ring it routes by: nodes that agree on the ring agree on it.
    pub ring_digest: u64,
    /// Every member it knows, itself included.
    pub members: Vec<MemberView>,
    /// The ring it routes by.
    pub ring: RingView,
    /// Keys in its store (approximate).
    pub keys: u64,
    /// Hints held, per owner id.
    pub hints_pending: BTreeMap<String, u64>,
    /// When the last anti-entropy exchange completed, in milliseconds since the Unix epoch.
    pub last_anti_entropy_ms: Option<u64>,
    /// Operations in flight at the core.
    pub ops_in_flight: u64,
    /// The core's counters.
    pub stats: NodeStats,
}

/// One member as this node sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberView {
    /// Its id.
    pub id: u64,
    /// Its QUIC address.
    pub addr: String,
    /// Its gossiped status.
    pub status: String,
    /// Whether this node's failure detector judges it up.
    pub up: bool,
    /// The detector's suspicion (0 for this node itself).
    pub phi: f64,
}

/// The ring this node routes by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RingView {
    /// Members on the ring.
    pub nodes: u64,
    /// Each member's replica share of the key space at N, by id.
    pub ownership: BTreeMap<String, f64>,
}

/// Builds snapshots, caching the ring ownership per ring digest.
#[derive(Default)]
pub struct StatusBuilder {
    ownership: Option<(u64, RingView)>,
}

impl StatusBuilder {
    /// A snapshot of `node`.
    pub fn build<S: Store>(&mut self, node: &Node<S>) -> NodeStatus {
        let id = node.id();
        let members = node
            .members()
            .entries()
            .map(|m| MemberView {
                id: m.node.0,
                addr: m.addr.clone(),
                status: format!("{:?}", m.status),
                up: node.is_up(m.node),
                phi: if m.node == id { 0.0 } else { node.phi(m.node) },
            })
            .collect();
        let digest = node.ring_digest();
        let ring = match &self.ownership {
            Some((cached, view)) if *cached == digest => view.clone(),
            _ => {
                let view = ring_view(node);
                self.ownership = Some((digest, view.clone()));
                view
            }
        };
        let stats = node.stats();
        NodeStatus {
            id: id.0,
            status: format!("{:?}", node.status()),
            ring_digest: digest,
            members,
            ring,
            keys: node.store().key_count(),
            hints_pending: node
                .hints_pending()
                .into_iter()
                .map(|(owner, count): (NodeId, u64)| (owner.0.to_string(), count))
                .collect(),
            last_anti_entropy_ms: stats.last_anti_entropy.map(|t| t.as_millis()),
            ops_in_flight: node.ops_in_flight() as u64,
            stats: stats.clone(),
        }
    }
}

fn ring_view<S: Store>(node: &Node<S>) -> RingView {
    let Some(ring) = node.ring() else {
        return RingView::default();
    };
    let ownership = ring.ownership(usize::from(node.config().n));
    RingView {
        nodes: ring.node_count() as u64,
        ownership: ownership
            .nodes
            .iter()
            .map(|share| (share.node.0.to_string(), share.replica))
            .collect(),
    }
}

#[cfg(test)]
impl NodeStatus {
    /// An empty snapshot for tests of consumers.
    pub fn empty_for_tests() -> Self {
        Self {
            id: 1,
            status: "Up".into(),
            ring_digest: 0,
            members: Vec::new(),
            ring: RingView::default(),
            keys: 0,
            hints_pending: BTreeMap::new(),
            last_anti_entropy_ms: None,
            ops_in_flight: 0,
            stats: NodeStats::default(),
        }
    }
}
