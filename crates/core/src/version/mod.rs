//! Versions of a key: dotted version vector sets, siblings, causal contexts and tombstones.
//!
//! # What this implements
//! Dynamo (§4.4) versions every object with a vector clock so that concurrent writes survive as
//! *siblings* and a client that read a set of versions can write one that supersedes them. Plain
//! vector clocks keyed by the coordinating server lose concurrent updates (two clients writing
//! through the same server look sequential), and keyed by client they grow without bound.
//! ringstore uses a **dotted version vector set** (DVVSet; Preguiça, Baquero, Almeida, Fonte,
//! Gonçalves, "Dotted Version Vectors: Logical Clocks for Optimistic Replication", 2010, and the
//! compact "DVVSet" of Riak's `dvvset` module): one [`VersionSet`] per key holds a single
//! version vector with one entry per *actor* (a replica that coordinated a write), and, for each
//! actor, the values of its most recent events that no later write has superseded.
//!
//! # Guarantees
//! - **Exact concurrency.** Two writes are siblings iff neither's causal context covered the
//!   other; a write made with the context of a read supersedes exactly the versions that read
//!   saw, no more (no lost update) and no fewer (no false conflict). A property test checks this
//!   against an oracle that tracks every version's full causal past.
//! - **Bounded growth.** The vector has one entry per actor that ever wrote the key; the live
//!   values are at most one per concurrent writer: `k` clients looping read-modify-write keep at
//!   most `k` siblings.
//! - **Merge laws.** [`VersionSet::merge`] is commutative, associative and idempotent, so
//!   replicas may exchange sets in any order, any number of times (read repair, hinted handoff
//!   and anti-entropy all just merge).
//! - **Tombstones are versions.** A delete writes [`Value::Tombstone`] with the reader's context:
//!   it supersedes what the reader saw, and a write concurrent with it survives as a sibling.
//!
//! # Actors
//! Dots are stamped by an [`ActorId`], not by the `NodeId`: a node draws a fresh random actor id
//! when its store is created, so a node that lost its disk and rejoins under the same node id
//! cannot reuse old dots (which would make two different values share one dot and lose one).
//!
//! # Known limits
//! - A client retrying a write with the same context makes one extra sibling per retry (the
//!   retry is a new event). Siblings with equal values are shown once by
//!   [`VersionSet::distinct_values`], and the next read-modify-write clears them.
//! - Entries for actors are never dropped while the key lives; tombstone collection (the node
//!   core) removes the whole set once every replica has the tombstone.

mod context;
mod version_set;

pub use context::{CausalContext, ContextError, MAX_CONTEXT_ENCODED_LEN};
pub use version_set::{Dot, MAX_SIBLINGS, VersionSet, VersionSetError};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The identity that stamps versions: one per replica store incarnation (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActorId(pub u64);

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a{:016x}", self.0)
    }
}

/// One version's payload: a value, or a tombstone left by a delete.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Value {
    /// The bytes a client put. Serialised as one byte string (`serde_bytes`), not as a
    /// sequence of `u8`: postcard writes both as `varint(len) ++ bytes`, but the sequence path
    /// goes through serde once per byte (about 1 ns a byte, see `docs/microbench.md`).
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A delete: a version like any other, so that it can supersede and be superseded.
    Tombstone,
    /// An item's row deletion at a write stamp (`item::StampedItem`): a tombstone that also
    /// says when, so that a concurrent sibling's attributes older than the deletion are dropped
    /// and newer ones survive. Collected like any tombstone.
    ItemTombstone(crate::item::Stamp),
}

impl Value {
    /// Whether this version is a delete.
    pub fn is_tombstone(&self) -> bool {
        matches!(self, Value::Tombstone | Value::ItemTombstone(_))
    }

    /// The bytes of a data version; `None` for a tombstone.
    pub fn data(&self) -> Option<&[u8]> {
        match self {
            Value::Data(bytes) => Some(bytes),
            Value::Tombstone | Value::ItemTombstone(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Value` as it was serialised before `Data` became a byte string: a sequence of `u8`.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum ValueAsSequence {
        Data(Vec<u8>),
        Tombstone,
    }

    proptest! {
        // Serialising values as byte strings kept the postcard bytes: stored records and peers
        // of the previous build read them as before, and the other way round.
        #[test]
        fn value_wire_format_is_unchanged(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let pairs = [
                (Value::Data(bytes.clone()), ValueAsSequence::Data(bytes)),
                (Value::Tombstone, ValueAsSequence::Tombstone),
            ];
            for (value, old) in pairs {
                let encoded = postcard::to_stdvec(&value).unwrap();
                prop_assert_eq!(&encoded, &postcard::to_stdvec(&old).unwrap());
                prop_assert_eq!(postcard::from_bytes::<ValueAsSequence>(&encoded).unwrap(), old);
                prop_assert_eq!(postcard::from_bytes::<Value>(&encoded).unwrap(), value);
            }
        }
    }
}
