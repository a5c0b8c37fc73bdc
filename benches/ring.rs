//! Micro-benchmarks of the ring: the key hash, preference lists and building a ring.
//!
//! Run with `cargo bench --bench ring`; see `docs/microbench.md` for what each one measures and
//! the numbers measured so far. Every ring is built outside the timed part.

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use ringstore_core::NodeId;
use ringstore_core::ring::{Ring, RingMember, key_token};

fn main() {
    divan::main();
}

/// Virtual nodes per member in every ring here (the node's default).
const VNODES: u32 = 256;

/// Replication factor of the preference-list benchmarks.
const N: usize = 3;

/// Distinct keys cycled through, so that a benchmark does not query one ring position only.
const KEY_COUNT: usize = 1024;

fn ring_of(nodes: u64) -> Ring {
    Ring::new((1..=nodes).map(|id| RingMember::new(NodeId(id), VNODES))).expect("a valid ring")
}

fn keys() -> Vec<Vec<u8>> {
    (0..KEY_COUNT)
        .map(|i| format!("user-{i:010}").into_bytes())
        .collect()
}

/// `key_token` (xxh3-64) of one key of the given length.
#[divan::bench(args = [16, 64, 256])]
fn key_token_hash(bencher: Bencher, key_bytes: usize) {
    let key: Vec<u8> = (0..key_bytes).map(|i| i as u8).collect();
    bencher
        .counter(BytesCount::new(key_bytes))
        .bench(|| key_token(black_box(&key)));
}

/// `Ring::preference_list(key, 3)` on rings of 5, 20 and 100 nodes (hash included).
#[divan::bench(args = [5, 20, 100])]
fn preference_list(bencher: Bencher, nodes: u64) {
    let ring = ring_of(nodes);
    let keys = keys();
    let mut next = 0usize;
    bencher.bench_local(|| {
        next = (next + 1) % KEY_COUNT;
        black_box(&ring).preference_list(black_box(&keys[next]), N)
    });
}

/// `Ring::walk(key)` collected into a `Vec` (every node, in preference order), as the
/// coordinator of a get or a put does to have its fallbacks at hand (hash included).
#[divan::bench(args = [5, 20, 100, 1000])]
fn walk_collect(bencher: Bencher, nodes: u64) {
    let ring = ring_of(nodes);
    let keys = keys();
    let mut next = 0usize;
    bencher.bench_local(|| {
        next = (next + 1) % KEY_COUNT;
        black_box(&ring)
            .walk(black_box(&keys[next]))
            .collect::<Vec<NodeId>>()
    });
}

/// `Ring::new` from the member list: derives, sorts and dedups `nodes × 256` tokens.
#[divan::bench(args = [5, 20, 100])]
fn build_ring(bencher: Bencher, nodes: u64) {
    let members: Vec<RingMember> = (1..=nodes)
        .map(|id| RingMember::new(NodeId(id), VNODES))
        .collect();
    bencher
        .counter(ItemsCount::new(nodes as usize * VNODES as usize))
        .with_inputs(|| members.clone())
        .bench_local_values(Ring::new);
}
