//! The live staleness probe (`ringstore bench staleness`): how often does a read through one
//! node, a given delay after a write through another node was acknowledged, return that write?
//!
//! This measures the t-visibility curve of Probabilistically Bounded Staleness (Bailis et al.,
//! "Probabilistically Bounded Staleness for Practical Partial Quorums", §3-4) on a running
//! cluster: with R + W ≤ N a read may miss the newest write until replication (and read repair,
//! hinted handoff, anti-entropy) catches up. `ringsim experiment quorum` predicts the same curve
//! in the simulator (docs/experiments.md); `ringstore cluster slow` shapes the live links.
//!
//! One trial on a probe key: put a fresh value (it encodes the key's write sequence number)
//! through the write node with the context of the key's previous write (so versions form a
//! chain, not siblings) and W; when it is acknowledged, wait the delay; get through the read
//! node with R. The read is *consistent* when the newest sequence number it returned is the
//! one just written, and otherwise *stale* by k versions (PBS's k-staleness: how many
//! acknowledged writes newer than the one read exist; reading nothing counts every write).
//!
//! # Guarantees
//! - Trials cycle through the delays (trial `t` uses delay `t mod len`), so a cluster that
//!   drifts during the probe affects every delay alike instead of the last ones.
//! - Each of the `concurrency` probe streams owns its key, so its trials never overlap: the
//!   only write a read can miss is one acknowledged before it.
//! - A trial whose write or read fails counts as an error of that delay, by kind, and not as
//!   consistent or stale.
//! - Delays are waited on the tokio clock (tests run it paused: no real sleeping).
//!
//! # Limits
//! - The probe measures visibility from the client's acknowledgement, which includes one
//!   client-to-node hop each way; PBS's t is from the write's commit at the coordinator.
//! - Probe keys are `{key_prefix}-{stream}`; the command line makes the prefix unique per run,
//!   so old runs' values never look newer.

use super::options::RequestKnobs;
use super::progress::ProgressLine;
use super::recorder::{HistogramError, LiveCounters, Stats};
use super::report::OpReport;
use ringstore_client::{CallError, KvTarget};
use ringstore_core::NodeId;
use ringstore_core::request::{ClientReply, ClientRequest};
use ringstore_core::version::CausalContext;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The `schema` field of a staleness report.
pub const STALENESS_SCHEMA: &str = "ringstore-bench-staleness/1";

/// What every probe value starts with, before its sequence number.
pub const PROBE_VALUE_PREFIX: &str = "stale-probe:";

/// Digits of the sequence number in a probe value.
const SEQ_DIGITS: usize = 20;

/// The most probe streams (each is one task and one key).
pub const MAX_PROBE_CONCURRENCY: usize = 1024;

/// What the probe does.
#[derive(Clone, Debug, PartialEq)]
pub struct StalenessOptions {
    /// Writes go through this node.
    pub write_node: NodeId,
    /// Reads go through this node.
    pub read_node: NodeId,
    /// The delays between a write's acknowledgement and the read.
    pub delays: Vec<Duration>,
    /// Trials per delay.
    pub trials_per_delay: u64,
    /// R and W of the probe's requests (PBS is about R + W ≤ N, so usually 1 and 1).
    pub knobs: RequestKnobs,
    /// Probe streams running at once (each on its own key).
    pub concurrency: usize,
    /// Probe keys are `{key_prefix}-{stream}`.
    pub key_prefix: String,
    /// Bytes per value (at least the encoded sequence number).
    pub value_bytes: usize,
}

impl StalenessOptions {
    /// The probe's defaults: delays 0 to 100 ms, 500 trials each, R = W = 1, one stream.
    pub fn new(write_node: NodeId, read_node: NodeId, key_prefix: impl Into<String>) -> Self {
        Self {
            write_node,
            read_node,
            delays: [0, 1, 2, 5, 10, 20, 50, 100]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            trials_per_delay: 500,
            knobs: RequestKnobs {
                r: Some(1),
                w: Some(1),
                timeout_ms: None,
            },
            concurrency: 1,
            key_prefix: key_prefix.into(),
            value_bytes: 100,
        }
    }
}

impl StalenessOptions {
    /// Refuses a probe that cannot run (the nodes are checked against the cluster later).
    pub fn validate(&self) -> Result<(), StalenessError> {
        if self.delays.is_empty() {
            return Err(StalenessError::NoDelays);
        }
        if self.trials_per_delay == 0 {
            return Err(StalenessError::NoTrials);
        }
        if self.concurrency == 0 || self.concurrency > MAX_PROBE_CONCURRENCY {
            return Err(StalenessError::BadConcurrency(self.concurrency));
        }
        Ok(())
    }
}

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum StalenessError {
    /// A node named by the options is not one the target knows.
    #[error("node {0} is not in the cluster (known: {1:?})")]
    UnknownNode(NodeId, Vec<NodeId>),
    /// No delay was given.
    #[error("--delays-ms needs at least one delay")]
    NoDelays,
    /// Zero trials per delay.
    #[error("--trials must be at least 1")]
    NoTrials,
    /// Concurrency out of `1..=MAX_PROBE_CONCURRENCY`.
    #[error("--concurrency must be in 1..={max}, not {0}", max = MAX_PROBE_CONCURRENCY)]
    BadConcurrency(usize),
    /// A histogram could not be built or merged.
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    /// A probe task panicked.
    #[error("a probe worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// The probe's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StalenessReport {
    /// Always [`STALENESS_SCHEMA`].
    pub schema: String,
    /// What was run.
    pub config: StalenessConfigReport,
    /// One entry per delay, in the order given: the t-visibility curve.
    pub delays: Vec<DelayReport>,
    /// Every probe write (through the write node).
    pub writes: OpReport,
    /// Every probe read (through the read node).
    pub reads: OpReport,
    /// Wall time of the whole probe.
    pub elapsed_s: f64,
}

/// The probe's options, as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StalenessConfigReport {
    /// The write node.
    pub write_node: NodeId,
    /// The read node.
    pub read_node: NodeId,
    /// R, W and deadline of every request.
    pub knobs: RequestKnobs,
    /// Trials per delay.
    pub trials_per_delay: u64,
    /// Probe streams.
    pub concurrency: usize,
    /// Probe key prefix.
    pub key_prefix: String,
    /// Bytes per value.
    pub value_bytes: usize,
}

/// The outcome of the trials at one delay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelayReport {
    /// The delay between the write's acknowledgement and the read, in ms.
    pub delay_ms: f64,
    /// Trials that completed (consistent + stale).
    pub trials: u64,
    /// Reads that returned the write just acknowledged.
    pub consistent: u64,
    /// Reads that returned an older version or none.
    pub stale: u64,
    /// Trials whose write or read failed.
    pub errors: u64,
    /// `consistent / trials`; `null` when no trial completed.
    pub p_consistent: Option<f64>,
    /// Stale reads by how many versions behind they were (k ≥ 1).
    pub k_staleness: BTreeMap<u64, u64>,
    /// Failed trials by error kind.
    pub errors_by_kind: BTreeMap<String, u64>,
}

/// A probe value for sequence number `seq`, padded to `len` bytes.
pub fn probe_value(seq: u64, len: usize) -> Vec<u8> {
    let mut value = format!("{PROBE_VALUE_PREFIX}{seq:0width$}", width = SEQ_DIGITS).into_bytes();
    if value.len() < len {
        value.resize(len, b'.');
    }
    value
}

/// The sequence number in a probe value, if it is one.
pub fn probe_seq(value: &[u8]) -> Option<u64> {
    let rest = value.strip_prefix(PROBE_VALUE_PREFIX.as_bytes())?;
    let digits = rest.get(..SEQ_DIGITS)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One delay's tallies while the probe runs.
#[derive(Clone, Debug, Default)]
struct DelayTally {
    consistent: u64,
    stale: u64,
    k_staleness: BTreeMap<u64, u64>,
    errors: BTreeMap<&'static str, u64>,
}

/// What one stream measured.
struct StreamResult {
    tallies: Vec<DelayTally>,
    writes: Stats,
    reads: Stats,
}

/// Runs the probe against `target`.
pub async fn run_staleness<T: KvTarget>(
    target: T,
    options: &StalenessOptions,
    show_progress: bool,
) -> Result<StalenessReport, StalenessError> {
    let nodes = target.nodes();
    for node in [options.write_node, options.read_node] {
        if !nodes.contains(&node) {
            return Err(StalenessError::UnknownNode(node, nodes));
        }
    }
    options.validate()?;
    let total = options.trials_per_delay * options.delays.len() as u64;
    let next_trial = Arc::new(AtomicU64::new(0));
    let live = Arc::new(LiveCounters::default());
    let progress = ProgressLine::start("staleness", Arc::clone(&live), None, show_progress);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(options.concurrency);
    for stream in 0..options.concurrency {
        let probe = Stream {
            target: target.clone(),
            options: options.clone(),
            key: format!("{}-{stream}", options.key_prefix).into_bytes(),
            next_trial: Arc::clone(&next_trial),
            total,
            live: Arc::clone(&live),
        };
        let empty = StreamResult {
            tallies: vec![DelayTally::default(); options.delays.len()],
            writes: Stats::new()?,
            reads: Stats::new()?,
        };
        handles.push(tokio::spawn(probe.run(empty)));
    }
    let mut tallies = vec![DelayTally::default(); options.delays.len()];
    let mut writes = Stats::new()?;
    let mut reads = Stats::new()?;
    for handle in handles {
        let result = handle.await?;
        writes.merge(&result.writes)?;
        reads.merge(&result.reads)?;
        for (into, from) in tallies.iter_mut().zip(result.tallies) {
            into.consistent += from.consistent;
            into.stale += from.stale;
            for (k, n) in from.k_staleness {
                *into.k_staleness.entry(k).or_default() += n;
            }
            for (kind, n) in from.errors {
                *into.errors.entry(kind).or_default() += n;
            }
        }
    }
    let elapsed = start.elapsed();
    progress.finish();
    let delays = options
        .delays
        .iter()
        .zip(tallies)
        .map(|(delay, tally)| {
            let trials = tally.consistent + tally.stale;
            DelayReport {
                delay_ms: delay.as_secs_f64() * 1000.0,
                trials,
                consistent: tally.consistent,
                stale: tally.stale,
                errors: tally.errors.values().sum(),
                p_consistent: (trials > 0).then(|| tally.consistent as f64 / trials as f64),
                k_staleness: tally.k_staleness,
                errors_by_kind: tally
                    .errors
                    .into_iter()
                    .map(|(kind, n)| (kind.to_string(), n))
                    .collect(),
            }
        })
        .collect();
    Ok(StalenessReport {
        schema: STALENESS_SCHEMA.to_string(),
        config: StalenessConfigReport {
            write_node: options.write_node,
            read_node: options.read_node,
            knobs: options.knobs,
            trials_per_delay: options.trials_per_delay,
            concurrency: options.concurrency,
            key_prefix: options.key_prefix.clone(),
            value_bytes: options.value_bytes,
        },
        delays,
        writes: OpReport::from_stats(&writes),
        reads: OpReport::from_stats(&reads),
        elapsed_s: elapsed.as_secs_f64(),
    })
}

/// One probe stream: sequential trials on its own key.
struct Stream<T> {
    target: T,
    options: StalenessOptions,
    key: Vec<u8>,
    next_trial: Arc<AtomicU64>,
    total: u64,
    live: Arc<LiveCounters>,
}

impl<T: KvTarget> Stream<T> {
    async fn run(self, mut result: StreamResult) -> StreamResult {
        let mut seq = 0u64;
        let mut context = CausalContext::empty();
        loop {
            let trial = self.next_trial.fetch_add(1, Ordering::Relaxed);
            if trial >= self.total {
                break;
            }
            let delay_index = (trial % self.options.delays.len() as u64) as usize;
            let delay = self.options.delays[delay_index];
            seq += 1;
            let outcome = self.trial(seq, &mut context, delay, &mut result).await;
            let tally = &mut result.tallies[delay_index];
            match outcome {
                Ok(None) => tally.consistent += 1,
                Ok(Some(k)) => {
                    tally.stale += 1;
                    *tally.k_staleness.entry(k).or_default() += 1;
                }
                Err(kind) => {
                    *tally.errors.entry(kind).or_default() += 1;
                    self.live.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.live.done.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// One trial: `Ok(None)` consistent, `Ok(Some(k))` stale by k versions, `Err` the error.
    async fn trial(
        &self,
        seq: u64,
        context: &mut CausalContext,
        delay: Duration,
        result: &mut StreamResult,
    ) -> Result<Option<u64>, &'static str> {
        let value = probe_value(seq, self.options.value_bytes);
        let mut put = ClientRequest::put(self.key.clone(), value, context.clone());
        put.w = self.options.knobs.w;
        put.timeout_ms = self.options.knobs.timeout_ms;
        let sent = Instant::now();
        match self.target.call(self.options.write_node, put).await {
            Ok(ClientReply::Written {
                context: written, ..
            }) => {
                result.writes.record_ok(sent.elapsed());
                *context = written;
            }
            Ok(_) => {
                return Err(fail(&mut result.writes, CallError::MismatchedReply));
            }
            Err(error) => return Err(fail(&mut result.writes, error)),
        }
        tokio::time::sleep(delay).await;
        let mut get = ClientRequest::get(self.key.clone());
        get.r = self.options.knobs.r;
        get.timeout_ms = self.options.knobs.timeout_ms;
        let sent = Instant::now();
        let read = match self.target.call(self.options.read_node, get).await {
            Ok(ClientReply::Read(read)) => {
                result.reads.record_ok(sent.elapsed());
                read
            }
            Ok(_) => {
                return Err(fail(&mut result.reads, CallError::MismatchedReply));
            }
            Err(error) => return Err(fail(&mut result.reads, error)),
        };
        let newest = read
            .values
            .iter()
            .filter_map(|v| probe_seq(v))
            .max()
            .unwrap_or(0);
        if read.values.is_empty() {
            result.reads.not_found += 1;
        }
        Ok((newest < seq).then(|| seq - newest))
    }
}

/// Counts `error` in `stats` and returns its kind.
fn fail(stats: &mut Stats, error: CallError) -> &'static str {
    let kind = error.kind();
    stats.record_error(kind);
    kind
}

impl StalenessReport {
    /// The terminal table: the t-visibility curve, then request latencies.
    pub fn render(&self) -> String {
        let c = &self.config;
        let quorum = |q: Option<u8>| q.map_or("default".to_string(), |q| q.to_string());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "staleness probe: write via {} (W={}), read via {} (R={}), {} trials per delay, \
             {} stream(s), {:.1} s",
            c.write_node,
            quorum(c.knobs.w),
            c.read_node,
            quorum(c.knobs.r),
            c.trials_per_delay,
            c.concurrency,
            self.elapsed_s
        );
        let _ = writeln!(
            out,
            "  {:>9} {:>8} {:>10} {:>7} {:>7} {:>13}  k-staleness of stale reads (k: count)",
            "delay ms", "trials", "consistent", "stale", "errors", "P(consistent)"
        );
        for d in &self.delays {
            let p = d
                .p_consistent
                .map_or("-".to_string(), |p| format!("{p:.4}"));
            let ks: Vec<String> = d
                .k_staleness
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  {:>9} {:>8} {:>10} {:>7} {:>7} {:>13}  {}",
                d.delay_ms,
                d.trials,
                d.consistent,
                d.stale,
                d.errors,
                p,
                ks.join(", ")
            );
        }
        for (label, op) in [("writes", &self.writes), ("reads", &self.reads)] {
            let latency = op.latency_us.map_or("-".to_string(), |l| {
                format!(
                    "p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
                    l.p50 as f64 / 1000.0,
                    l.p99 as f64 / 1000.0,
                    l.p999 as f64 / 1000.0,
                    l.max as f64 / 1000.0
                )
            });
            let errors: Vec<String> = op
                .errors_by_kind
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  {label}: {} ok, {} errors{}; {latency}",
                op.ok,
                op.errors,
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join(", "))
                }
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_double::MemoryTarget;

    #[test]
    fn probe_values_round_trip() {
        // Goal: a probe value carries its sequence number and any padding; others carry none.
        let value = probe_value(42, 100);
        assert_eq!(value.len(), 100);
        assert_eq!(probe_seq(&value), Some(42));
        assert_eq!(probe_seq(&probe_value(u64::MAX, 0)), Some(u64::MAX));
        assert_eq!(probe_seq(b"user123"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn visibility_lag_shows_as_the_t_visibility_step() {
        // Goal: against a store where a write becomes readable exactly 10 ms after it is
        // acknowledged, P(consistent) is 0 below 10 ms and 1 from 10 ms on, and stale reads are
        // at least one version behind (PBS t-visibility and k-staleness, §3).
        let lag = Duration::from_millis(10);
        let target = MemoryTarget::new(3).with_visibility_lag(lag);
        let mut options = StalenessOptions::new(NodeId(1), NodeId(2), "probe");
        options.delays = [0, 1, 5, 9, 10, 11, 20, 50]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        options.trials_per_delay = 40;
        options.concurrency = 2;
        let report = run_staleness(target.clone(), &options, false)
            .await
            .unwrap();
        for d in &report.delays {
            assert_eq!(d.trials, 40, "{d:?}");
            let p = d.p_consistent.unwrap();
            if d.delay_ms < 10.0 {
                assert_eq!(p, 0.0, "{d:?}");
                assert!(d.k_staleness.keys().all(|&k| k >= 1));
                assert_eq!(d.k_staleness.values().sum::<u64>(), d.stale);
            } else {
                assert_eq!(p, 1.0, "{d:?}");
            }
        }
        // Writes go through node 1, reads through node 2, with the asked quorums.
        let seen = target.seen();
        assert!(seen.iter().all(|c| if c.is_get {
            c.node == NodeId(2) && c.r == Some(1)
        } else {
            c.node == NodeId(1) && c.w == Some(1)
        }));
        // Each stream chains its writes by context: no siblings build up.
        assert_eq!(target.values(b"probe-0").len(), 1);
        assert_eq!(report.writes.ok, 8 * 40);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_trials_are_errors_by_kind_not_stale() {
        // Goal: a trial whose read fails is an error of its delay (by kind), not a stale read,
        // and an unknown node is refused before anything is sent.
        let target = MemoryTarget::new(3).with_failures(|n, node, _| {
            (node == NodeId(2) && n % 6 == 1).then_some(CallError::TimedOut {
                node,
                waited: Duration::from_secs(1),
            })
        });
        let mut options = StalenessOptions::new(NodeId(1), NodeId(2), "probe");
        options.delays = vec![Duration::ZERO, Duration::from_millis(3)];
        options.trials_per_delay = 20;
        let report = run_staleness(target.clone(), &options, false)
            .await
            .unwrap();
        let errors: u64 = report.delays.iter().map(|d| d.errors).sum();
        assert!(errors > 0);
        assert_eq!(report.reads.errors, errors);
        for d in &report.delays {
            assert_eq!(d.trials + d.errors, 20);
            assert_eq!(d.stale, 0, "{d:?}");
            assert_eq!(
                d.errors_by_kind.get("client_timeout").copied().unwrap_or(0),
                d.errors
            );
        }
        let bad = StalenessOptions::new(NodeId(1), NodeId(9), "probe");
        assert!(matches!(
            run_staleness(target, &bad, false).await,
            Err(StalenessError::UnknownNode(NodeId(9), _))
        ));
    }
}
