//! The key-level step of anti-entropy on the wire: a side lists the keys of the differing
//! leaves as short salted fingerprints instead of (key, digest) pairs, and the other side
//! finds what differs by matching them against its own keys.
//!
//! After the tree walk (Dynamo §4.7) names the differing leaves, the initiator sends a
//! [`LeafListing`]: for each leaf, one 4-byte [`entry_fingerprint`] per key it holds there. The
//! peer scans the same leaf and [`match_leaf`]s: fingerprints found on both sides are the same
//! (key, version) with probability `1 - 2^-32`; the rest are keys that one side lacks or holds
//! at another version. A typical key costs 4 bytes instead of its key bytes plus a digest
//! (~20 bytes for `key-123456`), which is what makes a leaf of ~8 keys cheap to list.
//!
//! **Salt.** Fingerprints are keyed by a per-exchange salt. A fingerprint collision (a
//! differing key whose fingerprint equals another key's in the same leaf) hides a difference
//! in *this* exchange only: the leaf's 64-bit hash still differs, and the next exchange, with
//! another salt, finds it. Without the salt the same collision would hide it forever.
//!
//! # Invariants
//! - A listing's leaves are strictly ascending and inside its shape, it has one count per
//!   leaf, the counts add up to the fingerprints, and it stays within [`MAX_LISTED_LEAVES`]
//!   and [`MAX_LISTED_FINGERPRINTS`] (checked by [`LeafListing::validate`]: it comes from
//!   the network).
//! - [`match_leaf`] pairs equal fingerprints one to one (a repeated fingerprint matches as
//!   many times as it appears on both sides); whatever is left is reported, on both sides.
//! - Fingerprints only decide *what to send*. Whatever is then sent carries its real key and
//!   version set and is merged by version vectors, so a collision never corrupts data: at
//!   worst it delays a repair to the next exchange.
//!
//! # Limits
//! - 32-bit fingerprints: with `k` keys in a leaf a given difference is hidden with
//!   probability about `k / 2^32` per exchange.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::entry_hash::entry_hash;
use super::error::MerkleError;
use super::leaf_diff::LeafEntry;
use super::shape::{LeafIndex, TreeShape};
use super::wire::{delta_indices, fixed_u32s};

/// The most leaves one listing may name: bounds the storage scans a message can ask for.
pub const MAX_LISTED_LEAVES: usize = 4096;

/// The most fingerprints one listing may carry (256 KiB): bounds its size when leaves are
/// fuller than the tree's depth intends.
pub const MAX_LISTED_FINGERPRINTS: usize = 65_536;

/// Mixed into the salt for key fingerprints, so that they never equal entry fingerprints.
const KEY_FINGERPRINT_DOMAIN: u64 = 0x6b65_7966_7072_0001; // "keyfpr" + version 1

/// The 32-bit salted fingerprint of one (key, version digest) pair.
pub fn entry_fingerprint(key: &[u8], digest: u64, salt: u64) -> u32 {
    // Truncation is the point: 4 bytes on the wire.
    xxh3_64_with_seed(&entry_hash(key, digest).to_le_bytes(), salt) as u32
}

/// The 32-bit salted fingerprint of a key alone: names a key the other side holds too,
/// without sending it.
pub fn key_fingerprint(key: &[u8], salt: u64) -> u32 {
    xxh3_64_with_seed(key, salt ^ KEY_FINGERPRINT_DOMAIN) as u32
}

/// One side's keys in a batch of differing leaves, as fingerprints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafListing {
    /// The walk's shape: the leaves are leaves of this shape.
    pub shape: TreeShape,
    /// The exchange's salt for [`entry_fingerprint`] and [`key_fingerprint`].
    pub salt: u64,
    /// The leaves listed, strictly ascending (varint deltas on the wire).
    #[serde(with = "delta_indices")]
    pub leaves: Vec<LeafIndex>,
    /// How many fingerprints each leaf has, in the order of `leaves`.
    pub counts: Vec<u32>,
    /// The fingerprints, leaf after leaf (4 bytes each on the wire).
    #[serde(with = "fixed_u32s")]
    pub fingerprints: Vec<u32>,
}

impl LeafListing {
    /// An empty listing.
    pub fn new(shape: TreeShape, salt: u64) -> Self {
        Self {
            shape,
            salt,
            leaves: Vec::new(),
            counts: Vec::new(),
            fingerprints: Vec::new(),
        }
    }

    /// Appends a leaf and the fingerprints of `entries`, this side's keys in it. Leaves must
    /// be pushed in ascending order (checked by [`LeafListing::validate`] on the other side).
    pub fn push_leaf(&mut self, leaf: LeafIndex, entries: &[LeafEntry]) {
        self.leaves.push(leaf);
        self.counts.push(entries.len() as u32);
        self.fingerprints.extend(
            entries
                .iter()
                .map(|e| entry_fingerprint(&e.key, e.digest, self.salt)),
        );
    }

    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), MerkleError> {
        if self.leaves.len() > MAX_LISTED_LEAVES
            || self.fingerprints.len() > MAX_LISTED_FINGERPRINTS
        {
            return Err(MerkleError::ListingTooLarge {
                leaves: self.leaves.len(),
                fingerprints: self.fingerprints.len(),
            });
        }
        let counted: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        if self.counts.len() != self.leaves.len() || counted != self.fingerprints.len() as u64 {
            return Err(MerkleError::ListingCountMismatch {
                leaves: self.leaves.len(),
                counts: self.counts.len(),
                fingerprints: self.fingerprints.len(),
            });
        }
        for (position, leaf) in self.leaves.iter().enumerate() {
            let ascending = position == 0 || self.leaves[position - 1] < *leaf;
            if !ascending || leaf.0 >= self.shape.leaf_count() {
                return Err(MerkleError::ListedLeafOutOfOrder { position });
            }
        }
        Ok(())
    }

    /// Each leaf with the positions of its fingerprints in `fingerprints`. Call on a
    /// validated listing (otherwise the ranges may fall short of the fingerprints).
    pub fn leaf_ranges(&self) -> impl Iterator<Item = (LeafIndex, std::ops::Range<usize>)> + '_ {
        let mut start = 0usize;
        self.leaves
            .iter()
            .zip(&self.counts)
            .map(move |(&leaf, &count)| {
                let end = (start + count as usize).min(self.fingerprints.len());
                let range = start..end;
                start = end;
                (leaf, range)
            })
    }
}

/// What differs in one leaf between a remote listing and the local keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafMatch {
    /// Positions (within the leaf's remote fingerprints) that no local key matched: keys the
    /// remote side holds and this side lacks or holds at another version.
    pub unmatched_remote: Vec<usize>,
    /// Indices of the local entries that no remote fingerprint matched: keys this side holds
    /// and the remote side lacks or holds at another version.
    pub unmatched_local: Vec<usize>,
}

impl LeafMatch {
    /// The unmatched remote positions as positions in the whole listing, for a leaf whose
    /// fingerprints start at `leaf_start` there (what `AeKeysReply::unmatched` names).
    pub fn unmatched_in_listing(&self, leaf_start: usize) -> impl Iterator<Item = u32> + '_ {
        self.unmatched_remote
            .iter()
            .map(move |&p| (leaf_start + p) as u32)
    }
}

/// Matches one leaf's remote fingerprints with the local entries of the same leaf.
pub fn match_leaf(remote: &[u32], local: &[LeafEntry], salt: u64) -> LeafMatch {
    let mut theirs: Vec<(u32, usize)> = remote.iter().copied().zip(0..).collect();
    let mut ours: Vec<(u32, usize)> = local
        .iter()
        .map(|e| entry_fingerprint(&e.key, e.digest, salt))
        .zip(0..)
        .collect();
    theirs.sort_unstable();
    ours.sort_unstable();
    let mut out = LeafMatch::default();
    let (mut t, mut o) = (0, 0);
    while t < theirs.len() || o < ours.len() {
        match (theirs.get(t), ours.get(o)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                t += 1;
                o += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.unmatched_remote.push(a.1);
                t += 1;
            }
            (Some(a), None) => {
                out.unmatched_remote.push(a.1);
                t += 1;
            }
            (_, Some(b)) => {
                out.unmatched_local.push(b.1);
                o += 1;
            }
            (None, None) => break,
        }
    }
    out.unmatched_remote.sort_unstable();
    out.unmatched_local.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::TokenRange;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn entry(i: u16, digest: u64) -> LeafEntry {
        LeafEntry {
            key: format!("key-{i}").into_bytes(),
            digest,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        // Dynamo §4.7, key level: the unmatched entries on each side are exactly the keys
        // that side holds at a version the other does not (absent or different digest).
        #[test]
        fn match_finds_exactly_the_differences(
            a in proptest::collection::btree_map(0u16..200, 0u64..3, 0..40),
            b in proptest::collection::btree_map(0u16..200, 0u64..3, 0..40),
            salt in any::<u64>(),
        ) {
            let la: Vec<LeafEntry> = a.iter().map(|(&k, &d)| entry(k, d)).collect();
            let lb: Vec<LeafEntry> = b.iter().map(|(&k, &d)| entry(k, d)).collect();
            let remote: Vec<u32> =
                la.iter().map(|e| entry_fingerprint(&e.key, e.digest, salt)).collect();
            let m = match_leaf(&remote, &lb, salt);
            let only = |x: &BTreeMap<u16, u64>, y: &BTreeMap<u16, u64>| -> Vec<u16> {
                x.iter().filter(|(k, d)| y.get(k) != Some(d)).map(|(k, _)| *k).collect()
            };
            let keys_a: Vec<u16> = a.keys().copied().collect();
            let keys_b: Vec<u16> = b.keys().copied().collect();
            let remote_found: Vec<u16> = m.unmatched_remote.iter().map(|&i| keys_a[i]).collect();
            let local_found: Vec<u16> = m.unmatched_local.iter().map(|&i| keys_b[i]).collect();
            prop_assert_eq!(remote_found, only(&a, &b));
            prop_assert_eq!(local_found, only(&b, &a));
        }

        // Any listing that validates has leaf ranges that tile its fingerprints.
        #[test]
        fn valid_listings_tile_their_fingerprints(
            counts in proptest::collection::vec(0u32..5, 0..20), salt in any::<u64>(),
        ) {
            let shape = TreeShape::new(TokenRange::full(), 6).unwrap();
            let mut listing = LeafListing::new(shape, salt);
            for (i, &c) in counts.iter().enumerate() {
                let entries: Vec<LeafEntry> = (0..c as u16).map(|k| entry(k, i as u64)).collect();
                listing.push_leaf(LeafIndex(i as u32 * 3), &entries);
            }
            listing.validate().unwrap();
            let mut next = 0;
            for ((_, range), &c) in listing.leaf_ranges().zip(&counts) {
                prop_assert_eq!(range.start, next);
                prop_assert_eq!(range.len(), c as usize);
                next = range.end;
            }
            prop_assert_eq!(next, listing.fingerprints.len());
            let wire = postcard::to_stdvec(&listing).unwrap();
            prop_assert_eq!(postcard::from_bytes::<LeafListing>(&wire).unwrap(), listing);
        }
    }

    // Malformed listings from a peer are refused by name.
    #[test]
    fn malformed_listings_are_refused() {
        let shape = TreeShape::new(TokenRange::full(), 4).unwrap();
        let mut good = LeafListing::new(shape, 1);
        good.push_leaf(LeafIndex(2), &[entry(1, 1)]);
        good.push_leaf(LeafIndex(5), &[]);
        good.validate().unwrap();

        let mut unordered = good.clone();
        unordered.leaves = vec![LeafIndex(5), LeafIndex(2)];
        assert_eq!(
            unordered.validate(),
            Err(MerkleError::ListedLeafOutOfOrder { position: 1 })
        );
        let mut outside = good.clone();
        outside.leaves[1] = LeafIndex(16);
        assert_eq!(
            outside.validate(),
            Err(MerkleError::ListedLeafOutOfOrder { position: 1 })
        );
        let mut miscounted = good.clone();
        miscounted.counts[0] = 2;
        assert!(matches!(
            miscounted.validate(),
            Err(MerkleError::ListingCountMismatch { .. })
        ));
        let mut huge = LeafListing::new(shape, 1);
        huge.fingerprints = vec![0; MAX_LISTED_FINGERPRINTS + 1];
        huge.leaves = vec![LeafIndex(0)];
        huge.counts = vec![huge.fingerprints.len() as u32];
        assert!(matches!(
            huge.validate(),
            Err(MerkleError::ListingTooLarge { .. })
        ));
    }

    // The salt changes every fingerprint (so a collision does not repeat), the key
    // fingerprint ignores the digest, and a listing costs about 4 bytes per key.
    #[test]
    fn fingerprints_are_salted_and_small() {
        let e = entry(7, 3);
        assert_ne!(
            entry_fingerprint(&e.key, e.digest, 1),
            entry_fingerprint(&e.key, e.digest, 2)
        );
        assert_ne!(key_fingerprint(&e.key, 1), key_fingerprint(&e.key, 2));
        assert_ne!(
            entry_fingerprint(&e.key, 3, 1),
            entry_fingerprint(&e.key, 4, 1)
        );
        let shape = TreeShape::new(TokenRange::full(), 17).unwrap();
        let mut listing = LeafListing::new(shape, u64::MAX);
        for leaf in 0..100u32 {
            let entries: Vec<LeafEntry> = (0..8).map(|k| entry(k, u64::from(leaf))).collect();
            listing.push_leaf(LeafIndex(leaf * 1000), &entries);
        }
        let wire = postcard::to_stdvec(&listing).unwrap();
        // 800 fingerprints at 4 bytes, plus ~2 bytes of leaf delta and 1 of count per leaf.
        assert!(wire.len() < 800 * 4 + 100 * 3 + 40, "{} bytes", wire.len());
    }
}
