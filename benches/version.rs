//! Micro-benchmarks of version sets (DVVSet): a coordinator's update, a replica's merge, the
//! client context's encode/decode, and the digest Merkle trees and anti-entropy compare.
//!
//! Run with `cargo bench --bench version`; see `docs/microbench.md`. Sets are built outside the
//! timed part; values are 100 bytes, actor ids are random 64-bit numbers as a node draws them.

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use ringstore_core::version::{ActorId, CausalContext, Value, VersionSet};

fn main() {
    divan::main();
}

/// Size of every value written.
const VALUE_BYTES: usize = 100;

/// Actor `i`: spread over the whole `u64` range like the random ids nodes draw, so that the
/// context's varints have their real length.
fn actor(i: usize) -> ActorId {
    ActorId((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn value(tag: usize) -> Value {
    let mut bytes = format!("value-{tag}-").into_bytes();
    bytes.resize(VALUE_BYTES, b'.');
    Value::Data(bytes)
}

/// A set in which `actors` actors each wrote once in turn (each read before writing), then, if
/// `siblings > 1`, `siblings` more writes were made concurrently from the same read: `actors`
/// entries and `siblings` live values.
fn set_of(actors: usize, siblings: usize) -> VersionSet {
    let mut set = VersionSet::new();
    for i in 0..actors {
        set.update(&set.context(), actor(i), value(i));
    }
    let read = set.context();
    if siblings > 1 {
        for j in 0..siblings {
            set.update(&read, actor(j % actors), value(actors + j));
        }
    }
    assert_eq!(set.sibling_count(), siblings);
    set
}

/// A coordinator's put: `update` with the context of a read of the stored set (the new value
/// supersedes every sibling). The clone of the stored set is not timed.
#[divan::bench(args = [1, 3, 10])]
fn update(bencher: Bencher, actors: usize) {
    let stored = set_of(actors, 1);
    let context = stored.context();
    let new_value = value(999);
    bencher
        .with_inputs(|| (stored.clone(), new_value.clone()))
        .bench_local_refs(|(set, value)| {
            let value = std::mem::replace(value, Value::Tombstone);
            set.update(black_box(&context), actor(0), value)
        });
}

/// A replica's merge of the coordinator's newer set into its stored one (the common case of a
/// put: the incoming set dominates). `ACTORS` entries, `siblings` live values in the stored set.
#[divan::bench(consts = [1, 3, 10], args = [1, 3])]
fn merge_newer<const ACTORS: usize>(bencher: Bencher, siblings: usize) {
    let stored = set_of(ACTORS, siblings);
    let mut incoming = stored.clone();
    incoming.update(&stored.context(), actor(0), value(999));
    bencher
        .with_inputs(|| stored.clone())
        .bench_local_refs(|set| set.merge(black_box(&incoming)));
}

/// A merge of two concurrent sets (each side wrote once more from the same read): the result
/// keeps both new values as siblings.
#[divan::bench(consts = [1, 3, 10], args = [1, 3])]
fn merge_concurrent<const ACTORS: usize>(bencher: Bencher, siblings: usize) {
    let base = set_of(ACTORS, siblings);
    let read = base.context();
    let mut left = base.clone();
    left.update(&read, actor(0), value(1000));
    let mut right = base;
    right.update(&read, actor(ACTORS), value(1001));
    bencher
        .with_inputs(|| left.clone())
        .bench_local_refs(|set| set.merge(black_box(&right)));
}

/// `VersionSet::context` and `CausalContext::encode`: what a get returns to its client.
#[divan::bench(args = [1, 3, 10])]
fn context_encode(bencher: Bencher, actors: usize) {
    let set = set_of(actors, 1);
    bencher.bench_local(|| black_box(&set).context().encode());
}

/// `CausalContext::decode` of what a client sends back with its put.
#[divan::bench(args = [1, 3, 10])]
fn context_decode(bencher: Bencher, actors: usize) {
    let text = set_of(actors, 1).context().encode();
    bencher
        .counter(BytesCount::of_str(&text))
        .bench_local(|| CausalContext::decode(black_box(&text)));
}

/// `VersionSet::digest` (xxh3 over entries and values): computed on every store merge.
#[divan::bench(args = [1, 3, 10])]
fn digest(bencher: Bencher, siblings: usize) {
    let set = set_of(3, siblings);
    bencher
        .counter(BytesCount::new(siblings * VALUE_BYTES))
        .bench_local(|| black_box(&set).digest());
}
