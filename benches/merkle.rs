//! Micro-benchmarks of the Merkle trees: the per-write update, the diff walk between two
//! replicas' trees, a rebuild from storage, and the key-level diff of one leaf.
//!
//! Run with `cargo bench --bench merkle`; see `docs/microbench.md`. Trees are full-ring trees,
//! as the node's per-peer trees are; they are built outside the timed part.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use ringstore_core::merkle::{
    LeafEntry, LeafIndex, MerkleTree, TreeShape, diff, diff_leaf_entries, sort_in_ring_order,
};
use ringstore_core::ring::{TokenRange, key_token};

fn main() {
    divan::main();
}

/// Keys in the trees compared by the diff benchmarks (and rebuilt by the rebuild benchmark).
const TREE_KEYS: u64 = 100_000;

/// Keys whose versions differ between the two trees of the diff benchmarks.
const DIFFERING_KEYS: u64 = 100;

/// Distinct keys cycled through by the update benchmark.
const UPDATE_KEYS: usize = 1024;

fn key(i: u64) -> Vec<u8> {
    format!("user-{i:010}").into_bytes()
}

/// A stand-in for the version digest of key `i` at its `generation`-th write.
fn digest(i: u64, generation: u64) -> u64 {
    (i << 8 | generation).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn full_ring_shape(depth: u8) -> TreeShape {
    TreeShape::new(TokenRange::full(), depth).expect("a valid depth")
}

/// `MerkleTree::update` of one key whose digest changed: key hash, entry hashes, and
/// `depth + 1` XORs up to the root. Depth 12 is the node's default.
#[divan::bench(args = [10, 12, 17])]
fn update(bencher: Bencher, depth: u8) {
    let keys: Vec<Vec<u8>> = (0..UPDATE_KEYS as u64).map(key).collect();
    let mut tree = MerkleTree::new(full_ring_shape(depth));
    let mut next = 0usize;
    let mut generation = 0u64;
    bencher.bench_local(|| {
        next = (next + 1) % UPDATE_KEYS;
        generation += 1;
        let old = Some(digest(next as u64, generation));
        let new = Some(digest(next as u64, generation + 1));
        tree.update(black_box(&keys[next]), old, new)
    });
}

/// `merkle::diff` of two trees over 100,000 keys that differ in 100 keys: the whole
/// request/answer walk from the root to the differing leaves, run in-process (no network).
#[divan::bench(args = [10, 14, 17])]
fn diff_walk(bencher: Bencher, depth: u8) {
    let shape = full_ring_shape(depth);
    let local = MerkleTree::rebuild_from(shape, (0..TREE_KEYS).map(|i| (key(i), digest(i, 0))))
        .expect("keys fit the full ring");
    // Every 1000th key has a newer version on the remote side.
    let stride = TREE_KEYS / DIFFERING_KEYS;
    let remote = MerkleTree::rebuild_from(
        shape,
        (0..TREE_KEYS).map(|i| (key(i), digest(i, u64::from(i % stride == 0)))),
    )
    .expect("keys fit the full ring");
    bencher.bench_local(|| diff(black_box(&local), black_box(&remote)));
}

/// `MerkleTree::rebuild_from` 100,000 (key, digest) pairs, as after a ring change.
#[divan::bench(args = [10, 14, 17], max_time = 3)]
fn rebuild(bencher: Bencher, depth: u8) {
    let shape = full_ring_shape(depth);
    let entries: Vec<(Vec<u8>, u64)> = (0..TREE_KEYS).map(|i| (key(i), digest(i, 0))).collect();
    bencher.counter(ItemsCount::new(TREE_KEYS)).bench_local(|| {
        MerkleTree::rebuild_from(shape, black_box(&entries).iter().map(|(k, d)| (k, *d)))
    });
}

/// `diff_leaf_entries` of one leaf's key lists (the key-level step after the walk), one key
/// differing.
#[divan::bench]
fn leaf_diff(bencher: Bencher) {
    // Depth 14 over 100,000 keys: about 6 keys a leaf; take the leaf of key 0 (it holds 4).
    let shape = full_ring_shape(14);
    let leaf: LeafIndex = shape.leaf_of(key_token(&key(0))).expect("full ring");
    let range = shape.leaf_range(leaf);
    let mut local: Vec<LeafEntry> = (0..TREE_KEYS)
        .map(key)
        .filter(|k| range.contains(key_token(k)))
        .enumerate()
        .map(|(n, key)| LeafEntry {
            key,
            digest: digest(n as u64, 0),
        })
        .collect();
    sort_in_ring_order(range, &mut local);
    let mut remote = local.clone();
    remote[0].digest ^= 1;
    bencher
        .counter(ItemsCount::new(local.len()))
        .bench_local(|| diff_leaf_entries(range, black_box(&local), black_box(&remote)));
}
