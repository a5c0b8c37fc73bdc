//! The hash of one (key, version digest) pair: a key's contribution to its Merkle leaf.
//!
//! `entry_hash(key, digest) = xxh3_64_with_seed(key, digest ^ ENTRY_HASH_DOMAIN)`: XXH3 of the
//! key bytes, keyed by the version digest. A leaf is the XOR of its entries' hashes (Riak's
//! "tictac" trees), so the hash must behave like a random 64-bit value per pair: then a change
//! of any key's versions flips the leaf with probability `1 - 2^-64`.
//!
//! # Invariants
//! - Stable: the same on every platform and release (XXH3 is a frozen, specified algorithm);
//!   a test pins it, because both replicas of an exchange must compute the same value.
//! - The domain constant keeps `entry_hash(key, 0)` from equalling the key's ring token.
//!
//! # Limits
//! - Not cryptographic: a peer that chooses keys and digests could forge collisions. Replicas
//!   trust each other (Dynamo §4.7 assumes a trusted environment).

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Mixed into the seed so that entry hashes live in a different domain from key tokens.
const ENTRY_HASH_DOMAIN: u64 = 0x6d65_726b_6c65_0001; // "merkle" + version 1

/// A key's contribution to its leaf: a 64-bit hash of the key and its version digest.
pub fn entry_hash(key: &[u8], version_digest: u64) -> u64 {
    xxh3_64_with_seed(key, version_digest ^ ENTRY_HASH_DOMAIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::key_token;

    // Both replicas must agree on the hash forever: pin it so that a change fails CI.
    #[test]
    fn entry_hash_is_pinned() {
        assert_eq!(entry_hash(b"", 0), 0x4d80_8558_d88e_e30d);
        assert_eq!(entry_hash(b"key-1", 42), 0xa721_4f81_d3dd_2e48);
    }

    // Changing the digest or the key changes the hash; a zero digest is not the token.
    #[test]
    fn entry_hash_depends_on_key_and_digest() {
        assert_ne!(entry_hash(b"k", 1), entry_hash(b"k", 2));
        assert_ne!(entry_hash(b"k", 1), entry_hash(b"j", 1));
        assert_ne!(entry_hash(b"k", 0), key_token(b"k").0);
    }
}
