//! The benchmark's report: a JSON document with a stable, versioned schema
//! ([`REPORT_SCHEMA`], described in docs/bench.md) and the aligned table printed on a terminal.
//!
//! # Guarantees
//! - The JSON always has every field: a run phase lists all four run operation types (read,
//!   update, insert, rmw) and both request types (get, put), with zero counts and a `null`
//!   latency summary where nothing succeeded; a load phase lists `load` and `put`.
//! - `operations = ok + failed`; `errors = failed + dropped_backlog`; `errors_by_kind` sums to
//!   `errors` (dropped operations appear as `dropped_backlog`).
//! - Percentiles are HdrHistogram values at 3 significant digits, in microseconds.
//!
//! # Limits
//! - The histograms themselves are not in the JSON, only their summaries; runs cannot be merged
//!   after the fact.

use super::host::HostReport;
use super::options::{BenchOptions, LoopShape, NodeChoice, RequestKnobs, StopAfter, UpdateMode};
use super::recorder::{Recorder, RequestKind, Stats};
use super::timeline::{self, TimelinePoint};
use super::workload::OpKind;
use hdrhistogram::Histogram;
use ringstore_core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The `schema` field of a bench report; bumped when a field changes meaning or goes away.
pub const REPORT_SCHEMA: &str = "ringstore-bench/1";

/// The error kind counted for open-loop operations that never started before the run ended.
pub const DROPPED_BACKLOG: &str = "dropped_backlog";

/// A whole `ringstore bench` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// What was run.
    pub config: ConfigReport,
    /// The load phase, if it ran.
    pub load: Option<PhaseReport>,
    /// The run phase, if it ran.
    pub run: Option<PhaseReport>,
}

/// The options of the run, as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigReport {
    /// `"a"`, `"b"`, `"c"`, `"d"` or `"f"`.
    pub workload: String,
    /// `"zipfian"`, `"uniform"` or `"latest"` (workload D).
    pub key_distribution: String,
    /// Records loaded and addressed.
    pub records: u64,
    /// Bytes per value.
    pub value_bytes: usize,
    /// How updates were sent.
    pub update_mode: UpdateMode,
    /// How nodes were chosen.
    pub node_choice: NodeChoice,
    /// `"closed"` or `"open"`.
    pub loop_mode: String,
    /// Closed loop: the number of clients.
    pub clients: Option<usize>,
    /// Clients of the load phase.
    pub load_clients: usize,
    /// Open loop: the target rate.
    pub target_rate_per_s: Option<f64>,
    /// Open loop: the most operations in flight.
    pub max_inflight: Option<usize>,
    /// Open loop: how arrivals are spaced (`"fixed_interval"`).
    pub arrival: Option<String>,
    /// The run phase's duration, when it ran for a time.
    pub duration_s: Option<f64>,
    /// The run phase's operation count, when it ran for a count.
    pub operations: Option<u64>,
    /// R, W and deadline sent with each request (`null`: the node's default).
    pub knobs: RequestKnobs,
    /// The seed.
    pub seed: u64,
    /// The nodes requests went to.
    pub nodes: Vec<NodeId>,
}

impl ConfigReport {
    /// The report of `options` run against `nodes`.
    pub fn new(options: &BenchOptions, nodes: &[NodeId]) -> Self {
        let (loop_mode, clients, rate, inflight, arrival) = match options.shape {
            LoopShape::Closed { clients } => ("closed", Some(clients), None, None, None),
            LoopShape::Open {
                rate_per_s,
                max_inflight,
            } => (
                "open",
                None,
                Some(rate_per_s),
                Some(max_inflight),
                Some("fixed_interval".to_string()),
            ),
        };
        let (duration_s, operations) = match options.stop {
            StopAfter::Duration(d) => (Some(d.as_secs_f64()), None),
            StopAfter::Operations(n) => (None, Some(n)),
        };
        Self {
            workload: options.workload.label().to_string(),
            key_distribution: options
                .workload
                .effective_distribution(options.distribution)
                .to_string(),
            records: options.records,
            value_bytes: options.value_bytes,
            update_mode: options.update_mode,
            node_choice: options.node_choice,
            loop_mode: loop_mode.to_string(),
            clients,
            load_clients: options.load_clients,
            target_rate_per_s: rate,
            max_inflight: inflight,
            arrival,
            duration_s,
            operations,
            knobs: options.knobs,
            seed: options.seed,
            nodes: nodes.to_vec(),
        }
    }
}

/// One phase (load or run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Wall time from the first operation's (intended) start until the last one ended.
    pub elapsed_s: f64,
    /// Operations that ran to an answer: `ok` plus failed.
    pub operations: u64,
    /// Operations that succeeded.
    pub ok: u64,
    /// Failed operations plus `dropped_backlog`.
    pub errors: u64,
    /// Open loop: operations scheduled before the end that never got a slot.
    pub dropped_backlog: u64,
    /// `operations / elapsed_s`.
    pub throughput_ops_per_s: f64,
    /// `ok / elapsed_s`.
    pub ok_per_s: f64,
    /// Per operation type (`read`, `update`, `insert`, `rmw`, or `load`).
    pub ops: BTreeMap<String, OpReport>,
    /// Per request type (`get`, `put`): each network call, timed from when it was sent.
    pub requests: BTreeMap<String, OpReport>,
    /// Every error, by kind (`CallError::kind()` or `dropped_backlog`).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Open loop only: from each operation's intended start until a worker sent it (waiting
    /// for a free slot; 0 when the scheduler sent it on time or early); `null` in a closed
    /// loop.
    pub start_delay_us: Option<LatencySummary>,
    /// What the machine did meanwhile: its CPU split (with the hypervisor's steal) and
    /// scheduling hiccups ([`HostReport`]); `null` if not watched. (Absent from reports
    /// written before it existed, which still read.)
    #[serde(default)]
    pub host: Option<HostReport>,
    /// The phase second by second ([`TimelinePoint`]); empty if not sampled.
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
}

/// Counts and latency of one operation or request type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpReport {
    /// Successes plus failures.
    pub count: u64,
    /// Successes.
    pub ok: u64,
    /// Failures.
    pub errors: u64,
    /// Successful reads (or the reads of a read-modify-write) that found no value.
    pub not_found: u64,
    /// Latency of the successes; `null` when there were none.
    pub latency_us: Option<LatencySummary>,
    /// Failures by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// The fastest.
    pub min: u64,
    /// The mean.
    pub mean: f64,
    /// The median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The slowest.
    pub max: u64,
}

impl LatencySummary {
    /// The summary of `histogram` (in µs); `None` when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        let h = histogram;
        (!h.is_empty()).then(|| LatencySummary {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

impl OpReport {
    /// The report of `stats`.
    pub fn from_stats(stats: &Stats) -> Self {
        let latency_us = LatencySummary::of(&stats.histogram);
        let errors = stats.error_count();
        Self {
            count: stats.ok + errors,
            ok: stats.ok,
            errors,
            not_found: stats.not_found,
            latency_us,
            errors_by_kind: stats
                .errors
                .iter()
                .map(|(kind, count)| (kind.to_string(), *count))
                .collect(),
        }
    }
}

impl PhaseReport {
    /// The report of a phase that recorded `recorder` for operation types `kinds`, took
    /// `elapsed`, and dropped `dropped_backlog` scheduled operations.
    pub fn new(
        kinds: &[OpKind],
        recorder: &Recorder,
        elapsed: Duration,
        dropped_backlog: u64,
    ) -> Self {
        let ops: BTreeMap<String, OpReport> = kinds
            .iter()
            .map(|kind| {
                (
                    kind.label().to_string(),
                    OpReport::from_stats(recorder.op(*kind)),
                )
            })
            .collect();
        let requests = RequestKind::ALL
            .iter()
            .filter(|kind| kinds != [OpKind::Load] || **kind == RequestKind::Put)
            .map(|kind| {
                (
                    kind.label().to_string(),
                    OpReport::from_stats(recorder.request(*kind)),
                )
            })
            .collect();
        let mut errors_by_kind: BTreeMap<String, u64> = BTreeMap::new();
        for op in ops.values() {
            for (kind, count) in &op.errors_by_kind {
                *errors_by_kind.entry(kind.clone()).or_default() += count;
            }
        }
        if dropped_backlog > 0 {
            *errors_by_kind
                .entry(DROPPED_BACKLOG.to_string())
                .or_default() += dropped_backlog;
        }
        let ok: u64 = ops.values().map(|op| op.ok).sum();
        let failed: u64 = ops.values().map(|op| op.errors).sum();
        let operations = ok + failed;
        let elapsed_s = elapsed.as_secs_f64();
        let per_s = |n: u64| {
            if elapsed_s > 0.0 {
                n as f64 / elapsed_s
            } else {
                0.0
            }
        };
        Self {
            elapsed_s,
            operations,
            ok,
            errors: failed + dropped_backlog,
            dropped_backlog,
            throughput_ops_per_s: per_s(operations),
            ok_per_s: per_s(ok),
            ops,
            requests,
            errors_by_kind,
            start_delay_us: LatencySummary::of(&recorder.start_delay().histogram),
            host: None,
            timeline: Vec::new(),
        }
    }

    /// The aligned table of this phase, each line indented by two spaces.
    pub fn render(&self, title: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{title}: {} ops in {:.1} s = {:.1} ops/s (ok {}, errors {})",
            self.operations, self.elapsed_s, self.throughput_ops_per_s, self.ok, self.errors
        );
        let header = format!(
            "  {:<9} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "",
            "count",
            "ok",
            "errors",
            "not_found",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        let _ = writeln!(out, "{header}");
        let op_order = OpKind::ALL.iter().map(|kind| kind.label());
        for label in op_order {
            if let Some(op) = self.ops.get(label)
                && op.count > 0
            {
                let _ = writeln!(out, "{}", row(label, op));
            }
        }
        for kind in RequestKind::ALL {
            if let Some(op) = self.requests.get(kind.label())
                && op.count > 0
            {
                let _ = writeln!(out, "{}", row(&format!("({})", kind.label()), op));
            }
        }
        if let Some(delay) = &self.start_delay_us {
            let _ = writeln!(
                out,
                "  start delay (intended start to send): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                ms(delay.p50),
                ms(delay.p99),
                ms(delay.max)
            );
        }
        if let Some(line) = timeline::summary(&self.timeline) {
            let _ = writeln!(out, "{line}");
        }
        if let Some(host) = &self.host {
            let _ = writeln!(out, "{}", host_line(host));
        }
        if !self.errors_by_kind.is_empty() {
            let list: Vec<String> = self
                .errors_by_kind
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            let _ = writeln!(out, "  errors: {}", list.join(", "));
        }
        out
    }
}

/// Microseconds as milliseconds, the unit of the table.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The machine's line: CPU split and hiccups, whichever are known.
fn host_line(host: &HostReport) -> String {
    let mut parts = Vec::new();
    if let Some(cpu) = &host.cpu {
        parts.push(format!(
            "cpu user {:.1}%, system {:.1}%, idle {:.1}%, steal {:.1}%",
            cpu.user_pct, cpu.system_pct, cpu.idle_pct, cpu.steal_pct
        ));
    }
    if let Some(hiccups) = &host.hiccup_us {
        parts.push(format!(
            "hiccups (5 ms sleep overrun) p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            ms(hiccups.p99),
            ms(hiccups.p999),
            ms(hiccups.max)
        ));
    }
    if parts.is_empty() {
        parts.push("not measured".to_string());
    }
    format!("  host: {}", parts.join("; "))
}

/// One table row: counts, then percentiles in milliseconds.
fn row(label: &str, op: &OpReport) -> String {
    let cell = |us: u64| format!("{:.3}", ms(us));
    let (p50, p90, p99, p999, max) = match &op.latency_us {
        Some(l) => (
            cell(l.p50),
            cell(l.p90),
            cell(l.p99),
            cell(l.p999),
            cell(l.max),
        ),
        None => Default::default(),
    };
    format!(
        "  {label:<9} {:>10} {:>10} {:>8} {:>9} {p50:>9} {p90:>9} {p99:>9} {p999:>9} {max:>9}",
        op.count, op.ok, op.errors, op.not_found
    )
}

impl BenchReport {
    /// The terminal table of the whole run.
    pub fn render(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let quorum = |q: Option<u8>| q.map_or("default".to_string(), |q| q.to_string());
        let nodes: Vec<String> = c.nodes.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(
            out,
            "workload {} ({} keys), {} records of {} bytes, {} updates, R={} W={}, seed {}, nodes {}",
            c.workload,
            c.key_distribution,
            c.records,
            c.value_bytes,
            c.update_mode.label(),
            quorum(c.knobs.r),
            quorum(c.knobs.w),
            c.seed,
            nodes.join(",")
        );
        if let Some(load) = &self.load {
            let title = format!("load ({} clients)", c.load_clients);
            out.push_str(&load.render(&title));
        }
        if let Some(run) = &self.run {
            let shape = match (c.clients, c.target_rate_per_s, c.max_inflight) {
                (Some(clients), _, _) => format!("closed loop, {clients} clients"),
                (None, Some(rate), Some(inflight)) => {
                    format!("open loop, {rate} ops/s target, max {inflight} in flight")
                }
                _ => "run".to_string(),
            };
            out.push_str(&run.render(&format!("run ({shape})")));
            if c.loop_mode == "open" {
                out.push_str(
                    "  (open loop: operation latency is from the intended start; (get)/(put) \
                     rows are per request, from when it was sent)\n",
                );
            }
        }
        out
    }
}
