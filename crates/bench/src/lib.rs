//! `ringstore bench`: a YCSB-style load generator and a live staleness probe, run against a
//! cluster through anything that implements [`KvTarget`](ringstore_client::KvTarget) (the [`ringstore_client::NativeClient`]
//! on the command line, an in-memory double in the tests).
//!
//! The load generator implements the YCSB core workloads A, B, C, D and F ([`Workload`]) with
//! YCSB's key naming and request distributions ([`keys`]), a load phase, closed-loop clients
//! or an open-loop arrival schedule, and HdrHistogram latencies per operation type
//! ([`recorder`], [`report`]). The staleness probe ([`staleness`]) measures the live
//! t-visibility curve of a sloppy-quorum store (PBS, Bailis et al.): the probability that a
//! read through one node, a delay after a write through another was acknowledged, sees that
//! write. It is the live counterpart of `ringsim experiment quorum`.
//!
//! Module map:
//! - [`options`]: what a run does ([`BenchOptions`]) and its validation.
//! - [`keys`]: key names, uniform / scrambled Zipfian / latest choosers, the insert counter.
//! - [`workload`]: the operation mix of each workload and the planner that draws operations.
//! - [`execute`]: one operation as client requests (get, put, get-then-put).
//! - [`recorder`]: per-worker histograms and error counters, merged at the end.
//! - [`runner`]: the load phase, closed loop and open loop.
//! - [`report`]: the JSON report (`ringstore-bench/1`) and its terminal table.
//! - [`progress`]: the once-a-second progress line.
//! - [`timeline`]: the phase second by second (operations, errors, slowest operation).
//! - [`host`]: what the machine did during a phase (CPU split with steal, scheduling hiccups).
//! - [`staleness`]: the staleness probe (`ringstore bench staleness`).
//! - [`items`]: table items' costs (`ringstore bench items`).
//! - [`cli`]: the command-line arguments and the wiring to the native client.
//!
//! # Guarantees
//! - Every random choice (operation, key, node, value bytes) comes from RNGs derived from the
//!   run's seed: the same seed against the same cluster state plans the same operations.
//! - Open-loop latencies are measured from each operation's intended start, so a stalled
//!   cluster shows up as queueing in the percentiles instead of being hidden (coordinated
//!   omission).
//! - A failed request is counted under its [`ringstore_client::CallError::kind`], never dropped.
//!
//! # Limits
//! - No YCSB workload E (scans): the store has no range reads.
//! - One process drives the load; at high rates the client machine can be the bottleneck
//!   (watch its CPU).

pub mod cli;
pub mod execute;
pub mod host;
pub mod items;
pub mod keys;
pub mod options;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod staleness;
pub mod timeline;
pub mod workload;

#[cfg(test)]
mod test_double;

pub use options::{
    BenchOptions, KeyDistribution, LoopShape, NodeChoice, OptionsError, RequestKnobs, StopAfter,
    UpdateMode,
};
pub use report::{BenchReport, PhaseReport, REPORT_SCHEMA};
pub use runner::{BenchError, run_bench};
pub use staleness::{STALENESS_SCHEMA, StalenessOptions, StalenessReport, run_staleness};
pub use workload::{OpKind, Workload};
