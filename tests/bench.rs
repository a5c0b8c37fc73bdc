//! End-to-end test of `ringstore bench` over real processes: a 3-node cluster started by the
//! same code as `ringstore cluster up`, benchmarked and probed by the `ringstore` binary through
//! the native client, with the JSON reports checked.
//!
//! The bench's logic is tested in `src/bench` against an in-memory double; this file checks the
//! wiring: flags, the connection from a cluster directory, the report on stdout.

// Unwrap is fine in tests (team rule); helpers outside #[test] fns need the allowance.
#![allow(clippy::unwrap_used)]

use ringstore::cli::cluster::{self, Cluster, UpOptions};
use std::process::{Command, Output};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_ringstore");

/// Stops every node when dropped, whether the test passed or not.
struct Guard {
    cluster: Cluster,
    dir: tempfile::TempDir,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cluster.down();
    }
}

fn up(nodes: usize) -> Guard {
    let dir = tempfile::tempdir().unwrap();
    let mut options = UpOptions::new(dir.path().join("cluster"));
    options.nodes = nodes;
    options.binary = Some(BINARY.into());
    options.ready_timeout = Duration::from_secs(45);
    let cluster = match cluster::up(&options) {
        Ok(cluster) => cluster,
        Err(e) => panic!("cluster up failed: {e}"),
    };
    Guard { cluster, dir }
}

fn bench(args: &[&str]) -> Output {
    let output = Command::new(BINARY)
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "ringstore bench {args:?}: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn bench_and_staleness_probe_run_against_a_real_cluster() {
    // Goal: `ringstore bench --dir` loads and runs a workload over the native client and
    // reports every operation as JSON; `bench staleness` completes its trials; a directory
    // without a cluster is an error, not a panic.
    let guard = up(3);
    let dir = guard.dir.path().join("cluster");
    let dir = dir.to_str().unwrap();

    let out = bench(&[
        "--dir",
        dir,
        "--load",
        "--records",
        "200",
        "--clients",
        "4",
        "--operations",
        "300",
        "--workload",
        "f",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let report = json(&out);
    assert_eq!(report["schema"], "ringstore-bench/1");
    assert_eq!(report["load"]["ops"]["load"]["ok"], 200);
    let run = &report["run"];
    assert_eq!(run["operations"], 300);
    assert_eq!(run["ok"], 300, "errors: {}", run["errors_by_kind"]);
    // Loaded records are found by the reads that follow.
    assert_eq!(run["ops"]["read"]["not_found"], 0);
    assert!(run["ops"]["rmw"]["latency_us"]["p50"].as_u64().unwrap() > 0);

    let out = bench(&[
        "staleness",
        "--dir",
        dir,
        "--write-node",
        "1",
        "--read-node",
        "2",
        "--delays-ms",
        "0,5",
        "--trials",
        "5",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let report = json(&out);
    assert_eq!(report["schema"], "ringstore-bench-staleness/1");
    for delay in report["delays"].as_array().unwrap() {
        let done = delay["trials"].as_u64().unwrap() + delay["errors"].as_u64().unwrap();
        assert_eq!(done, 5, "{delay}");
    }

    let empty = tempfile::tempdir().unwrap();
    let out = bench(&["--dir", empty.path().to_str().unwrap(), "--operations", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
}
