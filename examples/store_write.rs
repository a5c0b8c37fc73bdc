//! Measures the durable store on this machine: write throughput under `EveryWrite` and under
//! group commit with batches of 1, 16, 64 and 256 writes (100-byte values), then the reopen
//! time and full-ring scan rates of a store holding many keys.
//!
//! Run with `cargo run --release --example store_write [-- <keys for the reopen test>]`
//! (default 1,000,000). The store lives in a temporary directory on the default temp
//! filesystem (set `TMPDIR` to measure another disk).

use ringstore::durable_store::{DurableConfig, DurableStore};
use ringstore_core::ring::TokenRange;
use ringstore_core::store::{MemoryStore, ScanCursor, Store, StoreError, SyncPolicy};
use ringstore_core::version::{ActorId, CausalContext, Value, VersionSet};
use std::error::Error;
use std::time::{Duration, Instant};

/// Size of each written value.
const VALUE_BYTES: usize = 100;
/// Writes per throughput measurement with one fsync per write.
const EVERY_WRITE_COUNT: u64 = 2_000;
/// Writes per throughput measurement under group commit.
const GROUP_WRITE_COUNT: u64 = 50_000;
/// Interleaved repetitions of each throughput measurement (the median is reported).
const ROUNDS: usize = 3;
/// Keys written for the reopen measurement unless given on the command line.
const DEFAULT_REOPEN_KEYS: u64 = 1_000_000;
/// Group-commit batch used to load the reopen test's keys.
const LOAD_BATCH: u32 = 4_096;
/// Page size of the scan measurements.
const SCAN_PAGE: usize = 1_000;

fn key(i: u64) -> Vec<u8> {
    format!("user-{i:010}").into_bytes()
}

fn versions(i: u64) -> VersionSet {
    let mut value = format!("value-{i}-").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    let mut set = VersionSet::default();
    set.update(&CausalContext::default(), ActorId(1), Value::Data(value));
    set
}

/// Writes keys `first..first + count` with the owner's group-commit discipline: sync whenever
/// the batch is full, and once at the end.
fn write_keys<S: Store>(store: &mut S, first: u64, count: u64) -> Result<Duration, StoreError> {
    let started = Instant::now();
    for i in first..first + count {
        store.merge(&key(i), &versions(i))?;
        if store.sync_policy().batch_full(store.unsynced_writes()) {
            store.sync()?;
        }
    }
    store.sync()?;
    Ok(started.elapsed())
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn group(max_writes: u32) -> SyncPolicy {
    SyncPolicy::Group {
        max_delay_ms: 10,
        max_writes,
    }
}

/// One throughput configuration: a label, a policy and how many writes to time.
struct ThroughputRun {
    name: &'static str,
    policy: SyncPolicy,
    writes: u64,
}

/// Times `run` once in a fresh store, returning writes per second.
fn time_run(run: &ThroughputRun) -> Result<f64, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let mut store = DurableStore::open(dir.path(), DurableConfig::new(run.policy))?;
    let elapsed = write_keys(&mut store, 0, run.writes)?;
    store.close()?;
    Ok(rate(run.writes, elapsed))
}

fn measure_throughput() -> Result<(), Box<dyn Error>> {
    println!(
        "write throughput, {VALUE_BYTES}-byte values, new keys; {ROUNDS} interleaved rounds, \
         median (min-max)"
    );
    let runs = [
        ThroughputRun {
            name: "EveryWrite",
            policy: SyncPolicy::EveryWrite,
            writes: EVERY_WRITE_COUNT,
        },
        ThroughputRun {
            name: "Group batch 1",
            policy: group(1),
            writes: EVERY_WRITE_COUNT,
        },
        ThroughputRun {
            name: "Group batch 16",
            policy: group(16),
            writes: GROUP_WRITE_COUNT,
        },
        ThroughputRun {
            name: "Group batch 64",
            policy: group(64),
            writes: GROUP_WRITE_COUNT,
        },
        ThroughputRun {
            name: "Group batch 256",
            policy: group(256),
            writes: GROUP_WRITE_COUNT,
        },
    ];
    // Rounds interleave the configurations so that a burst of disk contention from other
    // processes does not land on one configuration only.
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for _ in 0..ROUNDS {
        for (run, rates) in runs.iter().zip(rates.iter_mut()) {
            rates.push(time_run(run)?);
        }
    }
    for (run, mut rates) in runs.iter().zip(rates) {
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        let syncs_per_write = match run.policy {
            SyncPolicy::EveryWrite => 1.0,
            SyncPolicy::Group { max_writes, .. } => 1.0 / f64::from(max_writes),
        };
        println!(
            "  {:<16} {:>9.0} writes/s ({:.0}-{:.0}), {:>6.0} syncs/s, {:>7.1} us/write",
            run.name,
            median,
            rates[0],
            rates[rates.len() - 1],
            median * syncs_per_write,
            1e6 / median,
        );
    }
    let mut memory = MemoryStore::new(SyncPolicy::EveryWrite);
    let elapsed = write_keys(&mut memory, 0, GROUP_WRITE_COUNT)?;
    println!(
        "  {:<16} {:>9.0} writes/s (in-memory baseline)",
        "MemoryStore",
        rate(GROUP_WRITE_COUNT, elapsed),
    );
    Ok(())
}

fn measure_reopen(keys: u64) -> Result<(), Box<dyn Error>> {
    println!("reopen and scan, {keys} keys of {VALUE_BYTES}-byte values");
    let dir = tempfile::tempdir()?;
    let config = DurableConfig::new(group(LOAD_BATCH));
    let mut store = DurableStore::open(dir.path(), config)?;
    let elapsed = write_keys(&mut store, 0, keys)?;
    println!(
        "  load (Group batch {LOAD_BATCH}): {:.2} s, {:.0} writes/s",
        elapsed.as_secs_f64(),
        rate(keys, elapsed)
    );
    store.close()?;

    for attempt in ["first reopen (journal replay)", "second reopen"] {
        let started = Instant::now();
        let store = DurableStore::open(dir.path(), config)?;
        let found = store.get(&key(keys / 2))?;
        let elapsed = started.elapsed();
        assert_eq!(found, Some(versions(keys / 2)));
        println!(
            "  {attempt}: open + one get {:.3} s; key_count {}, disk {:.1} MiB",
            elapsed.as_secs_f64(),
            store.key_count(),
            store.disk_space_bytes()? as f64 / (1024.0 * 1024.0),
        );
        if attempt == "second reopen" {
            measure_scans(&store, keys)?;
        }
        store.close()?;
    }
    Ok(())
}

fn measure_scans(store: &DurableStore, keys: u64) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut cursor: Option<ScanCursor> = None;
    let mut seen = 0u64;
    loop {
        let page = store.scan_digests(TokenRange::full(), cursor.as_ref(), SCAN_PAGE)?;
        seen += page.entries.len() as u64;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let digests = started.elapsed();
    let started = Instant::now();
    let mut cursor: Option<ScanCursor> = None;
    let mut decoded = 0u64;
    loop {
        let page = store.scan(TokenRange::full(), cursor.as_ref(), SCAN_PAGE)?;
        decoded += page.entries.len() as u64;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let full = started.elapsed();
    assert_eq!((seen, decoded), (keys, keys));
    println!(
        "  full-ring scan_digests: {:.3} s ({:.0} keys/s); scan with decode: {:.3} s ({:.0} keys/s)",
        digests.as_secs_f64(),
        rate(keys, digests),
        full.as_secs_f64(),
        rate(keys, full),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let keys = match std::env::args().nth(1) {
        Some(arg) => arg.parse().unwrap_or(DEFAULT_REOPEN_KEYS),
        None => DEFAULT_REOPEN_KEYS,
    };
    measure_throughput()?;
    measure_reopen(keys)?;
    Ok(())
}
