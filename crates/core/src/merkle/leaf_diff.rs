//! The key-level step of anti-entropy: given both sides' (key, version digest) lists for a
//! differing token range, find the keys whose versions differ or that one side lacks.
//!
//! After the tree walk (Dynamo §4.7) names the differing leaves, each side scans its storage
//! for the leaf's token range; one side sends its list to the other, which merge-joins the two
//! lists. Keys found here are then exchanged as full version sets and merged (both ways when
//! both sides hold a version: digests cannot tell which set dominates).
//!
//! # Invariants
//! - Lists are in *ring order* from the range's start: by the token's offset after
//!   `range.start`, then by key bytes. That is the order a storage ordered by `(token, key)`
//!   yields when it scans `range.intervals()` in turn, so no sorting is needed.
//! - The result holds exactly the keys present on one side only or with different digests,
//!   in ring order; lists that are out of order, repeat a key or stray outside the range are
//!   refused (the remote one came from the network).
//!
//! # Limits
//! - The lists are held in memory: a leaf's list is about `keys_per_leaf` entries (the depth
//!   is chosen for that); paging huge leaves is the network layer's business.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::error::{MerkleError, Side};
use crate::ring::{TokenRange, key_token};

/// One key of a storage scan, as the key-level step compares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The digest of the key's version set.
    pub digest: u64,
}

/// A key that the two sides disagree on. At least one digest is present, and they differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDifference {
    /// The key.
    pub key: Vec<u8>,
    /// The local version digest, `None` if the key is missing locally.
    pub local_digest: Option<u64>,
    /// The remote version digest, `None` if the key is missing remotely.
    pub remote_digest: Option<u64>,
}

/// Sorts `entries` into the ring order of `range` that [`diff_leaf_entries`] expects (a
/// storage scan of `range.intervals()` already is in this order).
pub fn sort_in_ring_order(range: TokenRange, entries: &mut [LeafEntry]) {
    entries.sort_by(|a, b| ring_order(range, &a.key, &b.key));
}

/// The keys that differ between `local` and `remote`, two lists of the keys in `range` in
/// ring order (see the module doc).
pub fn diff_leaf_entries(
    range: TokenRange,
    local: &[LeafEntry],
    remote: &[LeafEntry],
) -> Result<Vec<KeyDifference>, MerkleError> {
    check_list(range, local, Side::Local)?;
    check_list(range, remote, Side::Remote)?;
    let mut differences = Vec::new();
    let (mut l, mut r) = (0, 0);
    loop {
        let order = match (local.get(l), remote.get(r)) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => ring_order(range, &a.key, &b.key),
        };
        let (key, local_digest, remote_digest) = match order {
            Ordering::Less => {
                l += 1;
                (&local[l - 1].key, Some(local[l - 1].digest), None)
            }
            Ordering::Greater => {
                r += 1;
                (&remote[r - 1].key, None, Some(remote[r - 1].digest))
            }
            Ordering::Equal => {
                l += 1;
                r += 1;
                let (a, b) = (local[l - 1].digest, remote[r - 1].digest);
                if a == b {
                    continue;
                }
                (&local[l - 1].key, Some(a), Some(b))
            }
        };
        differences.push(KeyDifference {
            key: key.clone(),
            local_digest,
            remote_digest,
        });
    }
    Ok(differences)
}

/// Checks that a list is strictly increasing in ring order and inside `range`.
fn check_list(range: TokenRange, list: &[LeafEntry], side: Side) -> Result<(), MerkleError> {
    for (position, entry) in list.iter().enumerate() {
        if !range.contains(key_token(&entry.key)) {
            return Err(MerkleError::EntryOutsideRange { side, position });
        }
        if position > 0 && ring_order(range, &list[position - 1].key, &entry.key).is_ge() {
            return Err(MerkleError::EntriesOutOfOrder { side, position });
        }
    }
    Ok(())
}

/// Ring order within `range`: by the token's offset after the range's start, then by bytes.
fn ring_order(range: TokenRange, a: &[u8], b: &[u8]) -> Ordering {
    let offset = |key: &[u8]| key_token(key).0.wrapping_sub(range.start.0).wrapping_sub(1);
    offset(a).cmp(&offset(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{MerkleTree, TreeShape, diff};
    use crate::ring::Token;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Model = BTreeMap<Vec<u8>, u64>;

    /// What a storage scan of `range` would return, in ring order.
    fn scan(model: &Model, range: TokenRange) -> Vec<LeafEntry> {
        let mut entries: Vec<LeafEntry> = model
            .iter()
            .filter(|(k, _)| range.contains(key_token(k)))
            .map(|(k, &digest)| LeafEntry {
                key: k.clone(),
                digest,
            })
            .collect();
        sort_in_ring_order(range, &mut entries);
        entries
    }

    fn entry(key: &str, digest: u64) -> LeafEntry {
        LeafEntry {
            key: key.as_bytes().to_vec(),
            digest,
        }
    }

    fn arb_range() -> impl Strategy<Value = TokenRange> {
        prop_oneof![
            Just(TokenRange::full()),
            (any::<u64>(), (u64::MAX / 4)..u64::MAX)
                .prop_map(|(s, w)| TokenRange::new(Token(s), Token(s.wrapping_add(w)))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // Tree walk then key step finds exactly the differing keys, one-sided ones included,
        // with the right digests on each side (Dynamo §4.7, end to end).
        #[test]
        fn walk_then_key_step_finds_exactly_the_differing_keys(
            range in arb_range(), depth in 0u8..=8,
            a_keys in proptest::collection::btree_map(0u32..300, 0u64..3, 0..200),
            b_keys in proptest::collection::btree_map(0u32..300, 0u64..3, 0..200),
        ) {
            let to_model = |m: BTreeMap<u32, u64>| -> Model {
                m.into_iter()
                    .map(|(i, d)| (format!("key-{i}").into_bytes(), d))
                    .filter(|(k, _)| range.contains(key_token(k)))
                    .collect()
            };
            let (a, b) = (to_model(a_keys), to_model(b_keys));
            let shape = TreeShape::new(range, depth).unwrap();
            let tree = |m: &Model| MerkleTree::rebuild_from(shape, m.iter().map(|(k, &d)| (k, d)));
            let result = diff(&tree(&a).unwrap(), &tree(&b).unwrap()).unwrap();
            let mut found: BTreeMap<Vec<u8>, (Option<u64>, Option<u64>)> = BTreeMap::new();
            for leaf_range in result.coalesced_ranges() {
                let differences = diff_leaf_entries(leaf_range, &scan(&a, leaf_range),
                                                    &scan(&b, leaf_range)).unwrap();
                for d in differences {
                    prop_assert_ne!(d.local_digest, d.remote_digest);
                    prop_assert!(found.insert(d.key, (d.local_digest, d.remote_digest)).is_none());
                }
            }
            let mut expected = BTreeMap::new();
            for k in a.keys().chain(b.keys()) {
                let pair = (a.get(k).copied(), b.get(k).copied());
                if pair.0 != pair.1 {
                    expected.insert(k.clone(), pair);
                }
            }
            prop_assert_eq!(found, expected);
        }
    }

    // One-sided and changed keys are reported with the right sides; equal keys are not.
    #[test]
    fn key_step_reports_each_kind_of_difference() {
        let range = TokenRange::full();
        let mut local = vec![
            entry("same", 1),
            entry("changed", 1),
            entry("only-local", 5),
        ];
        let mut remote = vec![
            entry("same", 1),
            entry("changed", 2),
            entry("only-remote", 7),
        ];
        sort_in_ring_order(range, &mut local);
        sort_in_ring_order(range, &mut remote);
        let mut differences = diff_leaf_entries(range, &local, &remote).unwrap();
        differences.sort_by(|a, b| a.key.cmp(&b.key));
        let summary: Vec<(&[u8], Option<u64>, Option<u64>)> = differences
            .iter()
            .map(|d| (d.key.as_slice(), d.local_digest, d.remote_digest))
            .collect();
        assert_eq!(
            summary,
            vec![
                (&b"changed"[..], Some(1), Some(2)),
                (&b"only-local"[..], Some(5), None),
                (&b"only-remote"[..], None, Some(7)),
            ]
        );
    }

    // A wrapping range orders keys after u64::MAX behind those before it.
    #[test]
    fn wrapping_range_uses_ring_order() {
        // Find two keys on either side of the wrap of the arc (MAX - 2^62, 2^62].
        let range = TokenRange::new(Token(u64::MAX - (1 << 62)), Token(1 << 62));
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let high = keys
            .iter()
            .find(|k| key_token(k.as_bytes()).0 > u64::MAX - (1 << 62))
            .unwrap();
        let low = keys
            .iter()
            .find(|k| key_token(k.as_bytes()).0 <= 1 << 62)
            .unwrap();
        let ordered = [entry(high, 1), entry(low, 1)];
        assert!(
            diff_leaf_entries(range, &ordered, &ordered)
                .unwrap()
                .is_empty()
        );
        let reversed = [entry(low, 1), entry(high, 1)];
        assert!(matches!(
            diff_leaf_entries(range, &ordered, &reversed),
            Err(MerkleError::EntriesOutOfOrder {
                side: Side::Remote,
                position: 1
            })
        ));
    }

    // Malformed lists are refused: duplicates and keys outside the range.
    #[test]
    fn malformed_lists_are_refused() {
        let range = TokenRange::full();
        let twice = [entry("a", 1), entry("a", 2)];
        assert!(matches!(
            diff_leaf_entries(range, &twice, &[]),
            Err(MerkleError::EntriesOutOfOrder {
                side: Side::Local,
                position: 1
            })
        ));
        let token = key_token(b"a").0;
        let elsewhere = TokenRange::new(Token(token), Token(token.wrapping_add(10)));
        assert!(matches!(
            diff_leaf_entries(elsewhere, &[], &[entry("a", 1)]),
            Err(MerkleError::EntryOutsideRange {
                side: Side::Remote,
                position: 0
            })
        ));
    }
}
