//! Crash test of the durable store: every acknowledged write survives a SIGKILL.
//!
//! The test re-executes its own binary as a child (selected by an environment variable and a
//! test-name filter) that opens a `DurableStore`, writes keys in a loop and prints `ack <i>`
//! only once write `i` is durable under the store's contract (`EveryWrite`: when `merge`
//! returns; `Group`: after the `sync` that covers it). The parent reads the acks, SIGKILLs the
//! child as soon as it has seen `ACKS_BEFORE_KILL` of them (while the child is still writing),
//! reopens the store and checks that every acknowledged key is there with its value.
//!
//! A SIGKILL loses what the process held in memory (fjall's journal buffer, since the store
//! never flushes it implicitly) but not the page cache: this test checks the write path and
//! journal recovery, not the fsync itself; power loss is modelled by `MemoryStore::crash`.

// Child processes are killed with SIGKILL and inspected with Unix exit statuses.
#![cfg(unix)]
// clippy.toml allows unwrap inside #[test] fns only; the helpers below are test code too.
#![allow(clippy::unwrap_used)]

use ringstore::durable_store::{DurableConfig, DurableStore};
use ringstore_core::ring::TokenRange;
use ringstore_core::store::{ScanCursor, Store, StoreError, SyncPolicy};
use ringstore_core::version::{ActorId, CausalContext, Value, VersionSet};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Selects the child role and names its sync policy (`every` or `group`).
const CHILD_POLICY_ENV: &str = "RINGSTORE_CRASH_CHILD_POLICY";
/// The directory the child's store lives in.
const CHILD_DIR_ENV: &str = "RINGSTORE_CRASH_CHILD_DIR";
/// How many acknowledgements the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 3_000;
/// The longest the parent waits for any single line from the child before failing.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);
/// Group-commit batch size of the child.
const GROUP_MAX_WRITES: u32 = 64;
/// The child stops on its own after this many writes (the parent kills it long before).
const CHILD_MAX_WRITES: u64 = 10_000_000;
/// Selects the full-disk child role and names its directory.
const FULL_DISK_DIR_ENV: &str = "RINGSTORE_FULL_DISK_CHILD_DIR";
/// The largest file the full-disk child may write (`RLIMIT_FSIZE`): fjall preallocates 64 MiB
/// journals, so the journal can be created but not grown past that.
const FULL_DISK_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Value size of the full-disk child's writes.
const LARGE_VALUE_BYTES: usize = 256 * 1024;
/// The full-disk child gives up (and the test fails) after this many successful writes.
const FULL_DISK_MAX_WRITES: u64 = 2_000;
/// The size of each written value.
const VALUE_BYTES: usize = 100;

fn policy_named(name: &str) -> SyncPolicy {
    match name {
        "every" => SyncPolicy::EveryWrite,
        "group" => SyncPolicy::Group {
            max_delay_ms: 5,
            max_writes: GROUP_MAX_WRITES,
        },
        other => panic!("unknown policy {other}"),
    }
}

/// A large, incompressible value (so the journal grows as fast as the writes).
fn large_versions(i: u64) -> VersionSet {
    let mut state = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let value: Vec<u8> = (0..LARGE_VALUE_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut set = VersionSet::default();
    set.update(&CausalContext::default(), ActorId(1), Value::Data(value));
    set
}

fn key(i: u64) -> Vec<u8> {
    format!("crash-key-{i:08}").into_bytes()
}

fn versions(i: u64) -> VersionSet {
    let mut value = format!("value-{i}-").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    let mut set = VersionSet::default();
    set.update(&CausalContext::default(), ActorId(1), Value::Data(value));
    set
}

/// The child role: writes keys forever, acknowledging each once it is durable. Ignored in
/// normal runs; the crash tests run it with `--ignored --exact` and the environment set.
#[test]
#[ignore = "child role of the crash tests, run by them in a separate process"]
fn crash_child() {
    let Ok(policy_name) = std::env::var(CHILD_POLICY_ENV) else {
        return;
    };
    let dir = std::env::var(CHILD_DIR_ENV).expect("child needs a directory");
    let policy = policy_named(&policy_name);
    let mut store = DurableStore::open(&dir, DurableConfig::new(policy)).unwrap();
    let mut out = std::io::stdout().lock();
    let mut pending = Vec::new();
    for i in 0..CHILD_MAX_WRITES {
        store.merge(&key(i), &versions(i)).unwrap();
        pending.push(i);
        if store.sync_policy().batch_full(store.unsynced_writes()) {
            store.sync().unwrap();
        }
        if store.unsynced_writes() == 0 {
            for acked in pending.drain(..) {
                writeln!(out, "ack {acked}").unwrap();
            }
            out.flush().unwrap();
        }
    }
}

/// The child role of the full-disk test: writes large values until the file-size limit it
/// runs under makes a write fail, then checks the store refuses further work.
#[test]
#[ignore = "child role of the full-disk test, run by it in a separate process"]
fn full_disk_child() {
    let Ok(dir) = std::env::var(FULL_DISK_DIR_ENV) else {
        return;
    };
    let mut store = DurableStore::open(&dir, DurableConfig::new(SyncPolicy::EveryWrite)).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..FULL_DISK_MAX_WRITES {
        match store.merge(&key(i), &large_versions(i)) {
            Ok(_) => writeln!(out, "ack {i}").unwrap(),
            Err(error) => {
                writeln!(out, "error {error}").unwrap();
                let poisoned = matches!(
                    store.merge(&key(i + 1), &versions(i + 1)),
                    Err(StoreError::Poisoned)
                ) && matches!(store.sync(), Err(StoreError::Poisoned));
                writeln!(out, "poisoned {poisoned}").unwrap();
                out.flush().unwrap();
                return;
            }
        }
        out.flush().unwrap();
    }
    writeln!(out, "never failed").unwrap();
}

/// Kills and reaps the child if the test fails before it does so itself.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Parses an `ack <i>` line.
fn ack_of(line: &str) -> Option<u64> {
    line.strip_prefix("ack ")?.parse().ok()
}

/// Every key in the store, by full-ring paged scan, checked to be one the child wrote.
fn stored_indices(store: &DurableStore) -> BTreeSet<u64> {
    let mut indices = BTreeSet::new();
    let mut cursor: Option<ScanCursor> = None;
    loop {
        let page = store
            .scan(TokenRange::full(), cursor.as_ref(), 1_000)
            .unwrap();
        for entry in page.entries {
            let name = String::from_utf8(entry.key).unwrap();
            let i: u64 = name.strip_prefix("crash-key-").unwrap().parse().unwrap();
            assert_eq!(entry.versions, versions(i), "key {i} has a wrong value");
            indices.insert(i);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return indices,
        }
    }
}

/// Runs a child under `policy_name`, kills it mid-stream, and checks the acknowledged writes.
fn crash_and_check(policy_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_POLICY_ENV, policy_name)
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut acked = BTreeSet::new();
    while acked.len() < ACKS_BEFORE_KILL {
        match lines_rx.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => acked.extend(ack_of(&line)),
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no output from the child for {LINE_TIMEOUT:?} ({} acks)",
                    acked.len()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.0.wait().unwrap();
                panic!("child ended after {} acks: {status}", acked.len())
            }
        }
    }
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child must die by SIGKILL mid-stream"
    );
    // Acks the child printed before it died were durable too: read them all.
    acked.extend(lines_rx.iter().filter_map(|line| ack_of(&line)));
    reader.join().unwrap();

    let store =
        DurableStore::open(dir.path(), DurableConfig::new(policy_named(policy_name))).unwrap();
    check_acked_survived(&store, &acked, policy_name);
}

fn check_acked_survived(store: &DurableStore, acked: &BTreeSet<u64>, policy_name: &str) {
    for &i in acked {
        assert_eq!(
            store.get(&key(i)).unwrap(),
            Some(versions(i)),
            "acknowledged key {i} was lost ({policy_name})"
        );
    }
    let stored = stored_indices(store);
    assert!(stored.is_superset(acked));
    // Writes are sequential, so what survived is a prefix of the write order.
    let highest = stored.last().copied().unwrap_or(0);
    assert_eq!(
        stored.len() as u64,
        highest + 1,
        "survivors are not a prefix"
    );
    eprintln!(
        "{policy_name}: {} writes acknowledged, all present; {} unacknowledged writes also \
         survived",
        acked.len(),
        stored.len() - acked.len()
    );
}

// Every write acknowledged under EveryWrite survives a SIGKILL in the middle of writing.
#[test]
fn acknowledged_writes_survive_sigkill_every_write() {
    crash_and_check("every");
}

// Every write acknowledged after its group-commit sync survives a SIGKILL mid-stream.
#[test]
fn acknowledged_writes_survive_sigkill_group_commit() {
    crash_and_check("group");
}

// The checker itself fails when an acknowledged key is missing (so the tests above can fail).
#[test]
#[should_panic(expected = "acknowledged key 3 was lost")]
fn checker_detects_a_lost_acknowledged_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        DurableStore::open(dir.path(), DurableConfig::new(SyncPolicy::EveryWrite)).unwrap();
    for i in 0..3 {
        store.merge(&key(i), &versions(i)).unwrap();
    }
    check_acked_survived(&store, &(0..4).collect(), "every");
}

// A full disk (here: a file-size limit, the same EFBIG/ENOSPC path) makes a write return an
// error, never a panic; the store then refuses further writes, and reopening it without the
// limit recovers every acknowledged write.
#[test]
#[cfg(target_os = "linux")] // prlimit(1) is util-linux
fn full_disk_is_an_error_and_acknowledged_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    // SIGXFSZ would kill the child; ignoring it (inherited across exec) turns it into EFBIG.
    let output = Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\""])
        .arg(FULL_DISK_FILE_BYTES.to_string())
        .arg(std::env::current_exe().unwrap())
        .args(["full_disk_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(FULL_DISK_DIR_ENV, dir.path())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {}\n{stdout}",
        output.status
    );
    let acked: BTreeSet<u64> = stdout.lines().filter_map(ack_of).collect();
    let error = stdout.lines().find(|l| l.starts_with("error "));
    assert!(error.is_some(), "no write failed:\n{stdout}");
    assert!(stdout.lines().any(|l| l == "poisoned true"), "{stdout}");
    assert!(!acked.is_empty(), "no write succeeded before the limit");
    eprintln!(
        "full disk after {} writes: {}",
        acked.len(),
        error.unwrap_or_default()
    );

    let store = DurableStore::open(dir.path(), DurableConfig::new(SyncPolicy::EveryWrite)).unwrap();
    for &i in &acked {
        assert_eq!(
            store.get(&key(i)).unwrap(),
            Some(large_versions(i)),
            "lost {i}"
        );
    }
}
