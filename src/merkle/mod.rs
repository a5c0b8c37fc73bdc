//! Merkle trees for anti-entropy (stub: being written).
