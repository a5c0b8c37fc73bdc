//! Identity of a physical node in the cluster.
//!
//! A [`NodeId`] names a node process in membership, in the ring, in hints and in `cluster.json`.
//! It is chosen by the operator (or `cluster up`) and never reused for a different machine's
//! data: version vectors do not use it directly (see `version::ActorId`), so a node that lost its
//! disk and came back under the same id cannot collide with its old writes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A physical node's identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Node `n`: lets tests and tools write `3` for `NodeId(3)`.
impl From<u64> for NodeId {
    fn from(id: u64) -> Self {
        NodeId(id)
    }
}

/// Text that is not a node id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a node id (like 3 or n3)")]
pub struct ParseNodeIdError {
    /// What was given.
    pub text: String,
}

/// Parses a node id as people write it: `3` or `n3` (the form [`NodeId`] displays as).
impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix('n').unwrap_or(text);
        digits
            .parse::<u64>()
            .map(NodeId)
            .map_err(|_| ParseNodeIdError {
                text: text.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node id reads back from both the bare and the displayed form; other text is refused
    /// with an error that quotes it.
    #[test]
    fn node_ids_parse_from_what_people_write() {
        assert_eq!("3".parse(), Ok(NodeId(3)));
        assert_eq!("n12".parse(), Ok(NodeId(12)));
        assert_eq!(NodeId(7).to_string().parse(), Ok(NodeId(7)));
        let error = "node3".parse::<NodeId>().unwrap_err();
        assert!(error.to_string().contains("node3"), "{error}");
    }
}
