//! Identity of a physical node in the cluster.
//!
//! A [`NodeId`] names a node process in membership, in the ring, in hints and in `cluster.json`.
//! It is chosen by the operator (or `cluster up`) and never reused for a different machine's
//! data: version vectors do not use it directly (see `version::ActorId`), so a node that lost its
//! disk and came back under the same id cannot collide with its old writes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A physical node's identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}
