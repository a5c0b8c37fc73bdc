//! Dotted version vector sets (STUB: the real implementation is being written; the signatures
//! below are the contract other modules may rely on).

use serde::{Deserialize, Serialize};

/// The identity that stamps versions: one per replica store incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActorId(pub u64);

/// One version's payload: a value, or a tombstone left by a delete.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    /// The bytes a client put.
    Data(Vec<u8>),
    /// A delete: a version like any other, so that it can supersede and be superseded.
    Tombstone,
}

/// The causal context a read returns and a write passes back (a version vector).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalContext {
    entries: Vec<(ActorId, u64)>,
}

/// All the live versions (siblings) of one key, with the causal history that produced them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSet {
    stub: Vec<Value>,
}

impl VersionSet {
    /// Adds a new version written by `actor` with the client's `context`.
    pub fn update(&mut self, _context: &CausalContext, _actor: ActorId, value: Value) {
        self.stub = vec![value];
    }
    /// Merges another replica's set into this one (commutative, associative, idempotent).
    pub fn merge(&mut self, other: &VersionSet) {
        if self.stub.is_empty() {
            self.stub = other.stub.clone();
        }
    }
    /// The causal context covering every version in this set.
    pub fn context(&self) -> CausalContext {
        CausalContext::default()
    }
    /// The live versions.
    pub fn siblings(&self) -> impl Iterator<Item = &Value> {
        self.stub.iter()
    }
    /// Whether the set holds no version.
    pub fn is_empty(&self) -> bool {
        self.stub.is_empty()
    }
    /// Whether every live version is a tombstone (and there is at least one).
    pub fn is_deleted(&self) -> bool {
        !self.stub.is_empty() && self.stub.iter().all(|v| matches!(v, Value::Tombstone))
    }
    /// A stable 64-bit digest of the set (equal sets, equal digests), for Merkle leaves.
    pub fn digest(&self) -> u64 {
        self.stub.len() as u64
    }
}
