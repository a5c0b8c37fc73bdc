//! Micro-benchmarks of the local store: a put's merge (read, merge, digest, encode, write),
//! a get, and ring-ordered scans, on `MemoryStore` and on `DurableStore` (fjall, in a temporary
//! directory) under group commit and under one fsync per write.
//!
//! Run with `cargo bench --bench store`; see `docs/microbench.md`. Stores are opened and
//! filled outside the timed part; set `TMPDIR` to measure another disk.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use ringstore::durable_store::{DurableConfig, DurableStore};
use ringstore_core::ring::TokenRange;
use ringstore_core::store::{MemoryStore, Store, SyncPolicy};
use ringstore_core::version::{ActorId, CausalContext, Value, VersionSet};
use tempfile::TempDir;

fn main() {
    divan::main();
}

/// Keys every store holds before a benchmark starts; writes overwrite them in turn.
const STORE_KEYS: u64 = 10_000;

/// Size of every value written.
const VALUE_BYTES: usize = 100;

/// Writes per sync in the group-commit batch benchmark.
const BATCH_WRITES: usize = 64;

/// Entries per page in the scan benchmarks.
const SCAN_PAGE: usize = 1_000;

/// The actor stamping every version here.
const ACTOR: ActorId = ActorId(0x9E37_79B9_7F4A_7C15);

/// Group commit whose size bound is never reached by the benchmarks: the sync is explicit.
const GROUP: SyncPolicy = SyncPolicy::Group {
    max_delay_ms: 10,
    max_writes: u32::MAX,
};

fn key(i: u64) -> Vec<u8> {
    format!("user-{i:010}").into_bytes()
}

fn keys() -> Vec<Vec<u8>> {
    (0..STORE_KEYS).map(key).collect()
}

/// The set of a put whose client read version `counter` of the key: it supersedes every
/// version stamped with a lower or equal counter, so each write in turn changes the stored set.
fn put_set(counter: u64) -> VersionSet {
    let mut value = format!("value-{counter}-").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    let read = CausalContext::from_entries([(ACTOR, counter)]);
    VersionSet::with_update(&read, ACTOR, Value::Data(value))
}

/// Writes every key once (version 1) and syncs.
fn fill<S: Store>(store: &mut S) {
    for i in 0..STORE_KEYS {
        store.merge(&key(i), &put_set(0)).expect("fill write");
    }
    store.sync().expect("fill sync");
}

/// Endless (key, set) inputs: key `i mod STORE_KEYS` with an ever higher version, so that
/// every merge overwrites a stored set with a newer one.
fn overwrites() -> impl FnMut() -> (Vec<u8>, VersionSet) {
    let mut next = 0u64;
    move || {
        next += 1;
        (key(next % STORE_KEYS), put_set(next))
    }
}

fn memory_store() -> MemoryStore {
    let mut store = MemoryStore::new(SyncPolicy::EveryWrite);
    fill(&mut store);
    store
}

fn durable_store(policy: SyncPolicy) -> (TempDir, DurableStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = DurableStore::open(dir.path(), DurableConfig::new(policy)).expect("opens");
    fill(&mut store);
    (dir, store)
}

/// `MemoryStore::merge` of a newer set into a stored key (the simulator's put).
#[divan::bench]
fn memory_put(bencher: Bencher) {
    let mut store = memory_store();
    bencher
        .with_inputs(overwrites())
        .bench_local_refs(|(key, set)| store.merge(key, set));
}

/// `MemoryStore::get` of a stored key.
#[divan::bench]
fn memory_get(bencher: Bencher) {
    let store = memory_store();
    let keys = keys();
    let mut next = 0usize;
    bencher.bench_local(|| {
        next = (next + 1) % keys.len();
        store.get(black_box(&keys[next]))
    });
}

/// `DurableStore::merge` under group commit, no sync: the write path up to the journal
/// buffer and memtable (the sync is paid once per batch, see `durable_put_batch_then_sync`).
#[divan::bench(sample_count = 200, sample_size = 32, max_time = 5)]
fn durable_put_no_sync(bencher: Bencher) {
    let (_dir, mut store) = durable_store(GROUP);
    bencher
        .with_inputs(overwrites())
        .bench_local_refs(|(key, set)| store.merge(key, set));
}

/// 64 merges then one `sync` (fdatasync of the journal): group commit's cost per batch.
#[divan::bench(max_time = 5)]
fn durable_put_batch_then_sync(bencher: Bencher) {
    let (_dir, mut store) = durable_store(GROUP);
    let mut inputs = overwrites();
    bencher
        .counter(ItemsCount::new(BATCH_WRITES))
        .with_inputs(|| (0..BATCH_WRITES).map(|_| inputs()).collect::<Vec<_>>())
        .bench_local_refs(|batch| {
            for (key, set) in batch.iter() {
                store.merge(key, set)?;
            }
            store.sync()
        });
}

/// `DurableStore::merge` under `EveryWrite`: one fdatasync per write.
#[divan::bench(max_time = 5)]
fn durable_put_every_write(bencher: Bencher) {
    let (_dir, mut store) = durable_store(SyncPolicy::EveryWrite);
    bencher
        .with_inputs(overwrites())
        .bench_local_refs(|(key, set)| store.merge(key, set));
}

/// `DurableStore::get` of a stored key (memtable or block cache: the data set is small).
#[divan::bench(sample_count = 200, sample_size = 32)]
fn durable_get(bencher: Bencher) {
    let (_dir, store) = durable_store(GROUP);
    let keys = keys();
    let mut next = 0usize;
    bencher.bench_local(|| {
        next = (next + 1) % keys.len();
        store.get(black_box(&keys[next]))
    });
}

/// One page of 1,000 entries of `Store::scan` (keys with decoded version sets) from the start
/// of the ring.
#[divan::bench(args = ["memory", "durable"])]
fn scan_page(bencher: Bencher, store: &str) {
    let (_dir, store) = any_store(store);
    bencher
        .counter(ItemsCount::new(SCAN_PAGE))
        .bench_local(|| store.scan(TokenRange::full(), None, black_box(SCAN_PAGE)));
}

/// One page of 1,000 entries of `Store::scan_digests` (keys and digests only: Merkle rebuilds
/// and anti-entropy).
#[divan::bench(args = ["memory", "durable"])]
fn scan_digests_page(bencher: Bencher, store: &str) {
    let (_dir, store) = any_store(store);
    bencher
        .counter(ItemsCount::new(SCAN_PAGE))
        .bench_local(|| store.scan_digests(TokenRange::full(), None, black_box(SCAN_PAGE)));
}

/// A filled store of the kind named by a benchmark argument, with its directory if durable.
fn any_store(kind: &str) -> (Option<TempDir>, Box<dyn Store>) {
    match kind {
        "memory" => (None, Box::new(memory_store())),
        _ => {
            let (dir, store) = durable_store(GROUP);
            (Some(dir), Box::new(store))
        }
    }
}
