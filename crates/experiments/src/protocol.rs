//! The protocol engine: PBS's questions answered by the real node code, in the simulator.
//!
//! A configuration (N, R, W) runs a whole simulated cluster: the profile's W, A, R and S
//! distributions go on the matching message classes (`Replicate`, its ack, `Read`, its reply;
//! see [`ringstore_sim::network::MessageClass`]), a profile's sites become extra delays on the links
//! between nodes at different sites, clients talk to nodes with no delay, group commit is off
//! (unless a scenario file sets it: it holds every output for its window), and the workload is
//! the visibility probe ([`ringstore_sim::workload::ProbeConfig`]): each client is the only writer of
//! its key and reads it once, a chosen delay after each write's ack.
//!
//! Staleness comes from the oracle: a read is fresh if it returned the latest acknowledged
//! write, and its `t` is the time since that write's ack, so P(consistent at t) is the fraction
//! of fresh reads among those issued `t` after an ack. Latencies are client-observed (issue to
//! answer, acknowledged writes and answered reads only). Availability is the fraction of
//! operations that succeeded. Mechanism counts are summed over the nodes.
//!
//! # Differences from the WARS model (by design: this is the real protocol)
//! - The coordinator is one of the replicas (a random node of an N-node cluster, by default):
//!   its own write and read are local and take no time. Compare with WARS under
//!   [`super::wars::Placement::Replica`].
//! - Read repair and anti-entropy run (unless switched off), and may make replicas fresher
//!   than WARS predicts; failures, hinted handoff and sloppy quorums come with a scenario's
//!   faults and a cluster larger than N.
//!
//! # Limits
//! - Each probe read is a separate sample at one delay: the curve has as many points as
//!   delays, each with `reads / delays` samples, so its resolution is coarser than WARS's.

use super::histogram::LogHistogram;
use super::profiles::Profile;
use ringstore_sim::distribution::Distribution;
use ringstore_sim::network::{LinkDelay, MessageClass};
use ringstore_sim::scenario::{Scenario, ScenarioError};
use ringstore_sim::workload::{ProbeConfig, WorkloadConfig};
use ringstore_sim::world::World;
use std::time::Duration;

/// Default number of probing clients (and keys).
pub const DEFAULT_WRITERS: usize = 32;
/// Default mean pause between a probe's read and its next write, in ms.
pub const DEFAULT_THINK_MS: f64 = 20.0;
/// The longest a probe run without a scenario may last in virtual time (it normally ends when
/// the clients have done their cycles).
pub const PROBE_DURATION_CAP: Duration = Duration::from_secs(24 * 3600);

/// How to run the protocol engine.
#[derive(Clone, Debug, Default)]
pub struct ProtocolOptions {
    /// A scenario to start from (cluster, node timings, network loss, faults, nemesis). With
    /// one, the probe runs for the scenario's whole duration; without, until the reads are done.
    pub scenario: Option<Scenario>,
    /// Cluster size; default: the scenario's, or N.
    pub nodes: Option<u64>,
    /// Switch read repair off.
    pub no_read_repair: bool,
    /// Switch anti-entropy off.
    pub no_anti_entropy: bool,
    /// Probing clients (0: [`DEFAULT_WRITERS`]).
    pub writers: usize,
    /// Mean pause between cycles in ms (0 or less: [`DEFAULT_THINK_MS`]).
    pub think_ms: f64,
}

/// One protocol run's configuration.
#[derive(Clone, Debug)]
pub struct ProtocolRun {
    /// Replicas.
    pub n: usize,
    /// Read quorum.
    pub r: usize,
    /// Write quorum.
    pub w: usize,
    /// Reads to measure (rounded up to a multiple of the writers).
    pub reads: u64,
    /// Delays after an ack at which reads are issued (ms).
    pub delays_ms: Vec<f64>,
    /// Request timeout (ms).
    pub timeout_ms: f64,
    /// The seed.
    pub seed: u64,
}

/// Why the protocol engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The scenario built for the run is invalid (bad N, R, W, or a bad base scenario).
    #[error("protocol engine: {0}")]
    Scenario(#[from] ScenarioError),
    /// N, R or W does not fit a node's configuration.
    #[error("protocol engine: n = {n}, r = {r}, w = {w} is out of range")]
    BadQuorum {
        /// N.
        n: usize,
        /// R.
        r: usize,
        /// W.
        w: usize,
    },
}

/// Fresh and total reads at one delay.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DelayCount {
    /// The delay after the ack (ms).
    pub t_ms: f64,
    /// Reads that returned the latest acknowledged write.
    pub fresh: u64,
    /// Reads measured.
    pub total: u64,
}

/// What a protocol run measured.
#[derive(Clone, Debug)]
pub struct ProtocolOutcome {
    /// Fresh/total reads per delay, in the order of the delays.
    pub by_delay: Vec<DelayCount>,
    /// Client-observed latency of acknowledged writes.
    pub write_latency: LogHistogram,
    /// Client-observed latency of answered reads.
    pub read_latency: LogHistogram,
    /// Versions behind of each read at the first delay (k-staleness samples).
    pub versions_behind_at_first_delay: Vec<u64>,
    /// Writes acknowledged / attempted.
    pub writes_ok: u64,
    /// Writes that failed or got no answer.
    pub writes_failed: u64,
    /// Reads answered.
    pub reads_ok: u64,
    /// Reads that failed or got no answer.
    pub reads_failed: u64,
    /// Writes that went to a fallback with a hint (sloppy quorum).
    pub hinted_writes: u64,
    /// Replicas repaired by reads.
    pub read_repairs: u64,
    /// Keys repaired by anti-entropy.
    pub anti_entropy_keys: u64,
    /// Oracle violations after quiescence (lost writes, resurrections, divergence).
    pub violations: usize,
    /// Whether the replicas converged after the workload.
    pub converged: bool,
}

impl ProtocolOutcome {
    /// P(consistent) per delay: (t ms, fraction fresh, reads).
    pub fn curve(&self) -> Vec<(f64, f64, u64)> {
        self.by_delay
            .iter()
            .map(|d| {
                let p = if d.total == 0 {
                    f64::NAN
                } else {
                    d.fresh as f64 / d.total as f64
                };
                (d.t_ms, p, d.total)
            })
            .collect()
    }

    /// Reads measured in all.
    pub fn reads(&self) -> u64 {
        self.by_delay.iter().map(|d| d.total).sum()
    }
}

/// The scenario a run simulates.
pub fn scenario_for(
    profile: &Profile,
    run: &ProtocolRun,
    options: &ProtocolOptions,
) -> Result<Scenario, ProtocolError> {
    let bad = || ProtocolError::BadQuorum {
        n: run.n,
        r: run.r,
        w: run.w,
    };
    let n = u8::try_from(run.n).map_err(|_| bad())?;
    let r = u8::try_from(run.r).map_err(|_| bad())?;
    let w = u8::try_from(run.w).map_err(|_| bad())?;
    let mut s = options.scenario.clone().unwrap_or_default();
    let nodes = options.nodes.unwrap_or(if options.scenario.is_some() {
        s.cluster.nodes
    } else {
        run.n as u64
    });
    s.cluster.nodes = nodes;
    s.node.n = n;
    s.node.r = r;
    s.node.w = w;
    s.node.request_timeout = Duration::from_secs_f64(run.timeout_ms.max(1.0) / 1000.0);
    s.node.sabotage.no_read_repair |= options.no_read_repair;
    s.node.sabotage.no_anti_entropy |= options.no_anti_entropy;
    let legs = [
        (MessageClass::Write, &profile.legs.w),
        (MessageClass::WriteAck, &profile.legs.a),
        (MessageClass::Read, &profile.legs.r),
        (MessageClass::ReadResponse, &profile.legs.s),
    ];
    for (class, d) in legs {
        s.network.per_class.insert(class, d.clone());
    }
    s.network.client_latency = Distribution::constant(0.0);
    if let Some(sites) = &profile.sites {
        let count = sites.count.max(1) as u64;
        for from in 1..=nodes {
            for to in 1..=nodes {
                let (a, b) = ((from - 1) % count, (to - 1) % count);
                let extra = match (&sites.extra_ms, &sites.remote) {
                    (Some(m), _) => Some(Distribution::constant(m[a as usize][b as usize])),
                    (None, Some(remote)) if a != b => Some(remote.clone()),
                    _ => None,
                };
                if let Some(extra) = extra {
                    s.network.link_extra.push(LinkDelay { from, to, extra });
                }
            }
        }
    }
    let writers = if options.writers == 0 {
        DEFAULT_WRITERS
    } else {
        options.writers
    };
    let think_ms = if options.think_ms > 0.0 {
        options.think_ms
    } else {
        DEFAULT_THINK_MS
    };
    let cycles = if options.scenario.is_some() {
        u64::MAX
    } else {
        run.reads.div_ceil(writers as u64).max(1)
    };
    s.workload = WorkloadConfig {
        clients: writers,
        keys: writers as u64,
        rate: writers as f64 / (think_ms / 1000.0),
        r: Some(r),
        w: Some(w),
        probe: Some(ProbeConfig {
            read_delays_ms: run.delays_ms.clone(),
            cycles_per_client: cycles,
        }),
        samples: true,
        ..s.workload
    };
    if options.scenario.is_none() {
        s.duration = PROBE_DURATION_CAP;
        // Group commit holds every output for its window: a delay WARS does not have.
        s.cluster.group_commit = false;
    }
    s.validate()?;
    Ok(s)
}

/// Runs one configuration.
pub fn run_config(
    profile: &Profile,
    run: &ProtocolRun,
    options: &ProtocolOptions,
) -> Result<ProtocolOutcome, ProtocolError> {
    let scenario = scenario_for(profile, run, options)?;
    let result = World::new(scenario, run.seed).run();
    let empty = ringstore_sim::oracle::Samples::default();
    let samples = result.oracle.samples().unwrap_or(&empty);
    let delays_us: Vec<u64> = run
        .delays_ms
        .iter()
        .map(|ms| (ms * 1000.0).clamp(0.0, 1e12) as u64)
        .collect();
    let nearest = |since_us: u64| -> usize {
        let mut best = 0;
        for (i, &d) in delays_us.iter().enumerate() {
            if d.abs_diff(since_us) < delays_us[best].abs_diff(since_us) {
                best = i;
            }
        }
        best
    };
    let mut by_delay: Vec<DelayCount> = run
        .delays_ms
        .iter()
        .map(|&t_ms| DelayCount {
            t_ms,
            ..DelayCount::default()
        })
        .collect();
    for &(since_us, fresh) in &samples.visibility {
        if let Some(slot) = by_delay.get_mut(nearest(since_us)) {
            slot.total += 1;
            slot.fresh += u64::from(fresh);
        }
    }
    let versions_behind_at_first_delay = samples
        .k_samples
        .iter()
        .filter(|(since_us, _)| nearest(*since_us) == 0)
        .map(|&(_, behind)| behind)
        .collect();
    let mut write_latency = LogHistogram::new();
    for &us in &samples.write_latency_us {
        write_latency.record(us as f64 / 1000.0);
    }
    let mut read_latency = LogHistogram::new();
    for &us in &samples.read_latency_us {
        read_latency.record(us as f64 / 1000.0);
    }
    let c = &result.counters;
    let count = |map: &std::collections::BTreeMap<&'static str, u64>, k: &str| {
        map.get(k).copied().unwrap_or(0)
    };
    Ok(ProtocolOutcome {
        by_delay,
        write_latency,
        read_latency,
        versions_behind_at_first_delay,
        writes_ok: count(&c.ok, "put"),
        writes_failed: count(&c.failed_ops, "put"),
        reads_ok: count(&c.ok, "get"),
        reads_failed: count(&c.failed_ops, "get"),
        hinted_writes: result.node_stats.hinted_writes,
        read_repairs: result.node_stats.read_repairs,
        anti_entropy_keys: result.node_stats.anti_entropy_keys,
        violations: result.violations.len(),
        converged: result.convergence_us.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize, r: usize, w: usize, reads: u64, delays_ms: Vec<f64>) -> ProtocolRun {
        ProtocolRun {
            n,
            r,
            w,
            reads,
            delays_ms,
            timeout_ms: 10_000.0,
            seed: 5,
        }
    }

    // A strict quorum (R + W > N) over the real protocol never returns a stale value, the
    // oracle finds no violation, and every operation succeeds (Dynamo §4.5).
    #[test]
    fn strict_quorum_is_always_fresh() {
        let profile = Profile::builtin("lnkd-disk").unwrap();
        let out = run_config(
            &profile,
            &run(3, 2, 2, 600, vec![0.0, 5.0]),
            &ProtocolOptions::default(),
        )
        .unwrap();
        println!("{:?}", out.by_delay);
        assert!(out.reads() >= 600);
        assert!(
            out.by_delay
                .iter()
                .all(|d| d.fresh == d.total && d.total > 0)
        );
        assert_eq!(out.violations, 0);
        assert!(out.converged);
        assert_eq!((out.writes_failed, out.reads_failed), (0, 0));
        assert!(out.write_latency.quantile(0.5) > 0.0);
    }

    // A partial quorum is sometimes stale right after the ack and fresher later; with the
    // coordinator a replica, R = W = 1 at t = 0 is fresh about 1/N of the time plus the reads
    // that reach a replica the write already reached (WARS with Placement::Replica).
    #[test]
    fn partial_quorum_is_stale_at_first_then_fresh() {
        let profile = Profile::builtin("lnkd-disk").unwrap();
        let out = run_config(
            &profile,
            &run(3, 1, 1, 1200, vec![0.0, 200.0]),
            &ProtocolOptions::default(),
        )
        .unwrap();
        let curve = out.curve();
        println!("{curve:?}");
        assert!(curve[0].1 < 0.8, "{curve:?}");
        assert!(curve[0].1 > 0.2, "{curve:?}");
        assert!(curve[1].1 > 0.98, "{curve:?}");
        assert_eq!(out.violations, 0);
        // Every stale read at t = 0 was exactly one version behind.
        let behind = &out.versions_behind_at_first_delay;
        assert!(behind.iter().all(|&k| k <= 1));
    }

    // A profile's sites become extra delays on the links between nodes at different sites.
    #[test]
    fn sites_become_link_delays() {
        let profile = Profile::builtin("wan").unwrap();
        let s = scenario_for(
            &profile,
            &run(3, 1, 1, 10, vec![0.0]),
            &ProtocolOptions::default(),
        )
        .unwrap();
        assert_eq!(s.cluster.nodes, 3);
        // 3 nodes at 3 sites: every ordered pair of distinct nodes.
        assert_eq!(s.network.link_extra.len(), 6);
        assert!(s.network.link_extra.iter().all(|l| l.from != l.to));
    }
}
