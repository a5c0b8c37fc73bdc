//! The quorum sweep behind `ringsim experiment quorum`: every (N, R, W) asked for, by the WARS
//! engine, the protocol engine, or both, summarised the same way, plus the comparison of the
//! two engines' t-visibility curves.
//!
//! # What each number means (see docs/experiments.md)
//! - latencies: p50/p99/p99.9 in ms of a write (until W acks) and a read (until R answers);
//! - `consistent_at_zero`: P(a read issued right after a write's commit returns it);
//! - `t_visibility`: P(consistent) for reads issued t ms after the commit, on a grid of t;
//! - `t_at_999_ms`: the t from which 99.9% of reads are consistent (WARS: exact percentile of
//!   the Monte Carlo samples; protocol: the first grid point from which every later point is at
//!   or above 99.9%, `None` if none: a grid estimate, as coarse as the grid and as noisy as the
//!   reads per point);
//! - `k_staleness`: P(a read at t = 0 returns one of the last k versions);
//! - availability: the fraction of writes and reads that succeeded (WARS: that finished within
//!   the timeout; protocol: that were answered successfully, under the scenario's faults).
//!
//! # Invariants
//! - The t grid is shared by every configuration and both engines, so curves compare point by
//!   point; it starts at 0 and is denser near 0 (quadratic spacing), where curves move most.

use super::histogram::Percentiles;
use super::profiles::Profile;
use super::protocol::{self, ProtocolOptions, ProtocolOutcome, ProtocolRun};
use super::wars::{self, Placement, WarsOptions, WarsSweep};
use serde::Serialize;
use std::fmt::Write as _;

/// WARS trials run only to place the t grid when the protocol engine runs alone.
pub const GRID_TRIALS: u64 = 200_000;

/// The default last grid point, as a multiple of the largest WARS t at 99.9%.
pub const T_MAX_FACTOR: f64 = 1.25;

/// Which engines to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// The PBS WARS Monte Carlo model only.
    Wars,
    /// The real protocol in the simulator only.
    Protocol,
    /// Both, and compare their t-visibility curves.
    Both,
}

/// The engine that produced a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// WARS with the coordinator outside the replicas (PBS's assumption).
    WarsExternal,
    /// WARS with the coordinator one of the replicas (ringstore's design).
    WarsReplica,
    /// The protocol engine.
    Protocol,
}

impl Engine {
    /// A short name for tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Engine::WarsExternal => "wars-external",
            Engine::WarsReplica => "wars-replica",
            Engine::Protocol => "protocol",
        }
    }
}

/// Everything a sweep needs.
#[derive(Clone, Debug)]
pub struct QuorumSpec {
    /// The latency profile.
    pub profile: Profile,
    /// Replication factors to sweep.
    pub ns: Vec<usize>,
    /// (R, W) pairs to run; `None`: every R, W in 1..=N.
    pub pairs: Option<Vec<(usize, usize)>>,
    /// Engines.
    pub engine: EngineChoice,
    /// WARS coordinator placement(s) to report (with `both`, both placements always run, for
    /// the comparison).
    pub placement: Placement,
    /// WARS trials per N.
    pub trials: u64,
    /// Protocol reads per configuration.
    pub protocol_reads: u64,
    /// The seed.
    pub seed: u64,
    /// Request timeout (ms), for availability.
    pub timeout_ms: f64,
    /// Points of the t grid.
    pub t_points: usize,
    /// Last point of the t grid; default: [`T_MAX_FACTOR`] × the largest WARS t at 99.9%.
    pub t_max_ms: Option<f64>,
    /// Largest k for k-staleness.
    pub k_max: u32,
    /// Threads for WARS.
    pub threads: usize,
    /// Protocol engine options.
    pub protocol: ProtocolOptions,
}

/// One point of a t-visibility curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct VisibilityPoint {
    /// Time after the commit (ms).
    pub t_ms: f64,
    /// P(consistent read).
    pub p_consistent: f64,
    /// Samples behind this point.
    pub samples: u64,
}

/// One point of a k-staleness curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KPoint {
    /// Versions.
    pub k: u32,
    /// P(the read returns one of the last k versions).
    pub p_within_k: f64,
}

/// Repair and failure-handling work the protocol engine saw.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Mechanisms {
    /// Writes sent to a fallback with a hint (sloppy quorum).
    pub hinted_writes: u64,
    /// Stale replicas repaired by reads.
    pub read_repairs: u64,
    /// Keys repaired by anti-entropy.
    pub anti_entropy_keys: u64,
    /// Oracle violations (must be 0).
    pub violations: usize,
    /// Whether the replicas converged after the run.
    pub converged: bool,
}

/// One configuration's results under one engine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigReport {
    /// The engine.
    pub engine: Engine,
    /// Replicas.
    pub n: usize,
    /// Read quorum.
    pub r: usize,
    /// Write quorum.
    pub w: usize,
    /// Trials (WARS) or reads measured (protocol).
    pub samples: u64,
    /// Write latency.
    pub write_latency_ms: Percentiles,
    /// Read latency.
    pub read_latency_ms: Percentiles,
    /// P(consistent) for a read right after the commit.
    pub consistent_at_zero: f64,
    /// The t-visibility curve.
    pub t_visibility: Vec<VisibilityPoint>,
    /// The t from which 99.9% of reads are consistent.
    pub t_at_999_ms: Option<f64>,
    /// k-staleness at t = 0.
    pub k_staleness: Vec<KPoint>,
    /// Fraction of writes that succeeded.
    pub write_availability: f64,
    /// Fraction of reads that succeeded.
    pub read_availability: f64,
    /// Protocol engine only.
    pub mechanisms: Option<Mechanisms>,
}

/// How close the protocol's curve is to WARS's for one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Replicas.
    pub n: usize,
    /// Read quorum.
    pub r: usize,
    /// Write quorum.
    pub w: usize,
    /// RMSE (probability, 0–1) against WARS with the coordinator a replica (like-for-like).
    pub rmse_vs_wars_replica: f64,
    /// RMSE against WARS with an external coordinator (PBS's model as published).
    pub rmse_vs_wars_external: f64,
    /// Largest pointwise gap against WARS-replica.
    pub max_gap_vs_wars_replica: f64,
    /// Grid points compared.
    pub points: usize,
}

/// A whole sweep's results.
#[derive(Clone, Debug, Serialize)]
pub struct QuorumReport {
    /// The profile's name.
    pub profile: String,
    /// The seed.
    pub seed: u64,
    /// The shared t grid (ms).
    pub t_grid_ms: Vec<f64>,
    /// Every configuration under every engine run.
    pub configs: Vec<ConfigReport>,
    /// Protocol vs WARS (engine `both` only).
    pub comparisons: Vec<Comparison>,
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The WARS engine refused its options.
    #[error(transparent)]
    Wars(#[from] wars::WarsError),
    /// The protocol engine could not run.
    #[error(transparent)]
    Protocol(#[from] protocol::ProtocolError),
    /// An (R, W) pair does not fit N.
    #[error("r = {r}, w = {w} must be between 1 and n = {n}")]
    BadPair {
        /// N.
        n: usize,
        /// R.
        r: usize,
        /// W.
        w: usize,
    },
    /// Nothing to sweep.
    #[error("nothing to run: give at least one N and one t point")]
    Empty,
}

/// Progress of a sweep, for a progress bar.
pub trait Progress: Sync {
    /// Work units of the whole sweep are known.
    fn set_total(&self, units: u64);
    /// `units` more are done.
    fn advance(&self, units: u64);
    /// What is running now.
    fn stage(&self, what: &str);
}

/// No progress reporting.
pub struct Silent;

impl Progress for Silent {
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn stage(&self, _: &str) {}
}

/// `points` values from 0 to `t_max`, quadratically spaced (denser near 0), rounded to µs.
pub fn t_grid(t_max_ms: f64, points: usize) -> Vec<f64> {
    if points <= 1 {
        return vec![0.0];
    }
    (0..points)
        .map(|i| {
            let x = i as f64 / (points - 1) as f64;
            (t_max_ms * x * x * 1000.0).round() / 1000.0
        })
        .collect()
}

fn pairs_for(spec: &QuorumSpec, n: usize) -> Result<Vec<(usize, usize)>, QuorumError> {
    match &spec.pairs {
        None => Ok((1..=n).flat_map(|r| (1..=n).map(move |w| (r, w))).collect()),
        Some(pairs) => {
            for &(r, w) in pairs {
                if r == 0 || w == 0 || r > n || w > n {
                    return Err(QuorumError::BadPair { n, r, w });
                }
            }
            Ok(pairs.clone())
        }
    }
}

fn wars_report(
    engine: Engine,
    sweep: &WarsSweep,
    r: usize,
    w: usize,
    grid: &[f64],
    spec: &QuorumSpec,
) -> ConfigReport {
    let write = &sweep.write_latency[w - 1];
    let read = &sweep.read_latency[r - 1];
    ConfigReport {
        engine,
        n: sweep.n,
        r,
        w,
        samples: sweep.trials,
        write_latency_ms: write.percentiles(),
        read_latency_ms: read.percentiles(),
        consistent_at_zero: sweep.p_consistent(r, w, 0.0),
        t_visibility: grid
            .iter()
            .map(|&t_ms| VisibilityPoint {
                t_ms,
                p_consistent: sweep.p_consistent(r, w, t_ms),
                samples: sweep.trials,
            })
            .collect(),
        t_at_999_ms: Some(sweep.t_visibility(r, w, 0.999)),
        k_staleness: (1..=spec.k_max)
            .map(|k| KPoint {
                k,
                p_within_k: sweep.p_within_k(r, w, 0.0, k),
            })
            .collect(),
        write_availability: write.fraction_at_or_below(spec.timeout_ms),
        read_availability: read.fraction_at_or_below(spec.timeout_ms),
        mechanisms: None,
    }
}

fn fraction(ok: u64, failed: u64) -> f64 {
    if ok + failed == 0 {
        1.0
    } else {
        ok as f64 / (ok + failed) as f64
    }
}

fn protocol_report(
    out: &ProtocolOutcome,
    n: usize,
    r: usize,
    w: usize,
    spec: &QuorumSpec,
) -> ConfigReport {
    let curve = out.curve();
    let t_visibility: Vec<VisibilityPoint> = curve
        .iter()
        .map(|&(t_ms, p, samples)| VisibilityPoint {
            t_ms,
            p_consistent: p,
            samples,
        })
        .collect();
    // The first grid point from which every later point is at 99.9% or more: one noisy point
    // reaching 99.9% early does not count.
    let measured: Vec<&VisibilityPoint> = t_visibility.iter().filter(|p| p.samples > 0).collect();
    let t_at_999_ms = (0..measured.len())
        .find(|&i| measured[i..].iter().all(|p| p.p_consistent >= 0.999))
        .map(|i| measured[i].t_ms);
    let behind = &out.versions_behind_at_first_delay;
    let k_staleness = (1..=spec.k_max)
        .map(|k| KPoint {
            k,
            p_within_k: if behind.is_empty() {
                f64::NAN
            } else {
                behind.iter().filter(|&&b| b < u64::from(k)).count() as f64 / behind.len() as f64
            },
        })
        .collect();
    ConfigReport {
        engine: Engine::Protocol,
        n,
        r,
        w,
        samples: out.reads(),
        write_latency_ms: out.write_latency.percentiles(),
        read_latency_ms: out.read_latency.percentiles(),
        consistent_at_zero: t_visibility.first().map_or(f64::NAN, |p| p.p_consistent),
        t_visibility,
        t_at_999_ms,
        k_staleness,
        write_availability: fraction(out.writes_ok, out.writes_failed),
        read_availability: fraction(out.reads_ok, out.reads_failed),
        mechanisms: Some(Mechanisms {
            hinted_writes: out.hinted_writes,
            read_repairs: out.read_repairs,
            anti_entropy_keys: out.anti_entropy_keys,
            violations: out.violations,
            converged: out.converged,
        }),
    }
}

/// RMSE and largest gap between two curves on the same grid (points with no sample skipped).
fn compare(protocol: &[VisibilityPoint], wars: &[VisibilityPoint]) -> (f64, f64, usize) {
    let mut sum = 0.0;
    let mut max: f64 = 0.0;
    let mut count = 0;
    for (p, m) in protocol.iter().zip(wars) {
        if p.samples == 0 || !p.p_consistent.is_finite() {
            continue;
        }
        let d = p.p_consistent - m.p_consistent;
        sum += d * d;
        max = max.max(d.abs());
        count += 1;
    }
    let rmse = if count == 0 {
        f64::NAN
    } else {
        (sum / count as f64).sqrt()
    };
    (rmse, max, count)
}

/// Runs the sweep.
pub fn run(spec: &QuorumSpec, progress: &dyn Progress) -> Result<QuorumReport, QuorumError> {
    if spec.ns.is_empty() || spec.t_points == 0 {
        return Err(QuorumError::Empty);
    }
    let mut plan = Vec::new();
    for &n in &spec.ns {
        plan.push((n, pairs_for(spec, n)?));
    }
    let placements: Vec<Placement> = match spec.engine {
        EngineChoice::Wars => vec![spec.placement],
        // The protocol needs WARS for the grid (and, with `both`, for the comparison).
        EngineChoice::Protocol | EngineChoice::Both => {
            vec![Placement::External, Placement::Replica]
        }
    };
    let wars_trials = match spec.engine {
        // Only the grid is needed: a smaller run does.
        EngineChoice::Protocol => spec.trials.min(GRID_TRIALS),
        _ => spec.trials,
    };
    let run_protocol = spec.engine != EngineChoice::Wars;
    let configs: u64 = plan.iter().map(|(_, p)| p.len() as u64).sum();
    let total = wars_trials * (plan.len() * placements.len()) as u64
        + if run_protocol {
            configs * spec.protocol_reads
        } else {
            0
        };
    progress.set_total(total);
    let mut sweeps: Vec<(usize, Placement, WarsSweep)> = Vec::new();
    for &(n, _) in &plan {
        for &placement in &placements {
            progress.stage(&format!("WARS N={n} ({placement:?} coordinator)"));
            let options = WarsOptions {
                n,
                trials: wars_trials,
                seed: spec.seed,
                placement,
                threads: spec.threads,
            };
            let sweep = wars::run_sweep(&spec.profile, &options, &|units| progress.advance(units))?;
            sweeps.push((n, placement, sweep));
        }
    }
    let t_max = spec.t_max_ms.unwrap_or_else(|| {
        let worst = sweeps
            .iter()
            .flat_map(|(_, _, s)| s.staleness.iter().map(|h| h.quantile(0.999)))
            .fold(0.0, f64::max);
        (worst * T_MAX_FACTOR).max(1.0)
    });
    let grid = t_grid(t_max, spec.t_points);
    let mut report = QuorumReport {
        profile: spec.profile.name.clone(),
        seed: spec.seed,
        t_grid_ms: grid.clone(),
        configs: Vec::new(),
        comparisons: Vec::new(),
    };
    let engine_of = |p: Placement| match p {
        Placement::External => Engine::WarsExternal,
        Placement::Replica => Engine::WarsReplica,
    };
    for (n, pairs) in &plan {
        for &(r, w) in pairs {
            let wars_rows: Vec<ConfigReport> = sweeps
                .iter()
                .filter(|(sn, _, _)| sn == n)
                .map(|(_, placement, sweep)| {
                    wars_report(engine_of(*placement), sweep, r, w, &grid, spec)
                })
                .collect();
            if spec.engine != EngineChoice::Protocol {
                report.configs.extend(wars_rows.iter().cloned());
            }
            if !run_protocol {
                continue;
            }
            progress.stage(&format!("protocol N={n} R={r} W={w}"));
            let run = ProtocolRun {
                n: *n,
                r,
                w,
                reads: spec.protocol_reads,
                delays_ms: grid.clone(),
                timeout_ms: spec.timeout_ms,
                seed: spec.seed.wrapping_add((n * 10_000 + r * 100 + w) as u64),
            };
            let out = protocol::run_config(&spec.profile, &run, &spec.protocol)?;
            progress.advance(spec.protocol_reads);
            let row = protocol_report(&out, *n, r, w, spec);
            if spec.engine == EngineChoice::Both {
                let curve_of = |engine: Engine| {
                    wars_rows
                        .iter()
                        .find(|c| c.engine == engine)
                        .map(|c| c.t_visibility.clone())
                        .unwrap_or_default()
                };
                let (rmse_r, max_r, points) =
                    compare(&row.t_visibility, &curve_of(Engine::WarsReplica));
                let (rmse_e, _, _) = compare(&row.t_visibility, &curve_of(Engine::WarsExternal));
                report.comparisons.push(Comparison {
                    n: *n,
                    r,
                    w,
                    rmse_vs_wars_replica: rmse_r,
                    rmse_vs_wars_external: rmse_e,
                    max_gap_vs_wars_replica: max_r,
                    points,
                });
            }
            report.configs.push(row);
        }
    }
    Ok(report)
}

fn k_cell(c: &ConfigReport, k: u32) -> String {
    c.k_staleness
        .iter()
        .find(|p| p.k == k)
        .map_or_else(|| "-".into(), |p| format!("{:.4}", p.p_within_k))
}

fn t999_cell(c: &ConfigReport) -> String {
    match c.t_at_999_ms {
        Some(t) => format!("{t:.2}"),
        None => "> grid".into(),
    }
}

/// The report as an aligned text table.
pub fn to_table(report: &QuorumReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "profile {}, seed {}", report.profile, report.seed);
    let _ = writeln!(
        out,
        "{:<14} {:>2} {:>2} {:>2} {:>9} | {:>24} | {:>24} | {:>8} {:>9} {:>7} {:>7} | {:>7} {:>7} | hinted/read-repairs/AE keys",
        "engine",
        "N",
        "R",
        "W",
        "samples",
        "write ms p50/p99/p99.9",
        "read ms p50/p99/p99.9",
        "P(t=0)",
        "t@99.9%",
        "k<=2",
        "k<=3",
        "w-avail",
        "r-avail",
    );
    for c in &report.configs {
        let lat = |p: &Percentiles| format!("{:.2}/{:.2}/{:.2}", p.p50, p.p99, p.p999);
        let mech = c.mechanisms.map_or_else(String::new, |m| {
            format!(
                "{}/{}/{}{}",
                m.hinted_writes,
                m.read_repairs,
                m.anti_entropy_keys,
                if m.violations > 0 {
                    format!(" VIOLATIONS {}", m.violations)
                } else {
                    String::new()
                }
            )
        });
        let _ = writeln!(
            out,
            "{:<14} {:>2} {:>2} {:>2} {:>9} | {:>24} | {:>24} | {:>8.4} {:>9} {:>7} {:>7} | {:>7.4} {:>7.4} | {}",
            c.engine.name(),
            c.n,
            c.r,
            c.w,
            c.samples,
            lat(&c.write_latency_ms),
            lat(&c.read_latency_ms),
            c.consistent_at_zero,
            t999_cell(c),
            k_cell(c, 2),
            k_cell(c, 3),
            c.write_availability,
            c.read_availability,
            mech
        );
    }
    if !report.comparisons.is_empty() {
        let _ = writeln!(
            out,
            "\nt-visibility, protocol vs WARS ({} grid points from 0 to {:.2} ms):",
            report.t_grid_ms.len(),
            report.t_grid_ms.last().copied().unwrap_or(0.0)
        );
        let _ = writeln!(
            out,
            "{:>2} {:>2} {:>2}  {:>22} {:>22} {:>22}",
            "N", "R", "W", "RMSE vs WARS-replica", "max gap vs replica", "RMSE vs WARS-external"
        );
        for c in &report.comparisons {
            let _ = writeln!(
                out,
                "{:>2} {:>2} {:>2}  {:>21.2}% {:>21.2}% {:>21.2}%",
                c.n,
                c.r,
                c.w,
                c.rmse_vs_wars_replica * 100.0,
                c.max_gap_vs_wars_replica * 100.0,
                c.rmse_vs_wars_external * 100.0
            );
        }
    }
    out
}

/// One CSV row per configuration and engine (curves in [`curves_csv`]).
pub fn to_csv(report: &QuorumReport) -> String {
    let mut out = String::from(
        "profile,engine,n,r,w,samples,write_p50_ms,write_p99_ms,write_p999_ms,read_p50_ms,read_p99_ms,read_p999_ms,consistent_at_zero,t_at_999_ms,k2,k3,write_availability,read_availability,hinted_writes,read_repairs,anti_entropy_keys,violations\n",
    );
    for c in &report.configs {
        let k = |k: u32| {
            c.k_staleness
                .iter()
                .find(|p| p.k == k)
                .map_or(String::new(), |p| format!("{:.6}", p.p_within_k))
        };
        let m = c.mechanisms;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.6},{},{},{},{:.6},{:.6},{},{},{},{}",
            report.profile,
            c.engine.name(),
            c.n,
            c.r,
            c.w,
            c.samples,
            c.write_latency_ms.p50,
            c.write_latency_ms.p99,
            c.write_latency_ms.p999,
            c.read_latency_ms.p50,
            c.read_latency_ms.p99,
            c.read_latency_ms.p999,
            c.consistent_at_zero,
            c.t_at_999_ms.map_or(String::new(), |t| format!("{t:.4}")),
            k(2),
            k(3),
            c.write_availability,
            c.read_availability,
            m.map_or(String::new(), |m| m.hinted_writes.to_string()),
            m.map_or(String::new(), |m| m.read_repairs.to_string()),
            m.map_or(String::new(), |m| m.anti_entropy_keys.to_string()),
            m.map_or(String::new(), |m| m.violations.to_string()),
        );
    }
    out
}

/// Every curve point: profile, engine, n, r, w, t, P(consistent), samples.
pub fn curves_csv(report: &QuorumReport) -> String {
    let mut out = String::from("profile,engine,n,r,w,t_ms,p_consistent,samples\n");
    for c in &report.configs {
        for p in &c.t_visibility {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{:.6},{}",
                report.profile,
                c.engine.name(),
                c.n,
                c.r,
                c.w,
                p.t_ms,
                p.p_consistent,
                p.samples
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(engine: EngineChoice) -> QuorumSpec {
        QuorumSpec {
            profile: Profile::builtin("lnkd-disk").unwrap(),
            ns: vec![3],
            pairs: Some(vec![(1, 1), (2, 2)]),
            engine,
            placement: Placement::External,
            trials: 50_000,
            protocol_reads: 800,
            seed: 3,
            timeout_ms: 10_000.0,
            t_points: 9,
            t_max_ms: None,
            k_max: 3,
            threads: 2,
            protocol: ProtocolOptions::default(),
        }
    }

    // The grid starts at 0, ends at the maximum, and is increasing and denser near 0.
    #[test]
    fn grid_is_quadratic() {
        let g = t_grid(100.0, 11);
        assert_eq!(g[0], 0.0);
        assert_eq!(g[10], 100.0);
        assert!(g.windows(2).all(|w| w[0] < w[1]));
        assert!(g[1] - g[0] < g[10] - g[9]);
    }

    // Both engines run; strict quorums are fresh under both; the comparison covers the grid,
    // and the protocol is closer to WARS-replica than to WARS-external for R = W = 1.
    #[test]
    fn both_engines_and_comparison() {
        let report = run(&spec(EngineChoice::Both), &Silent).unwrap();
        print!("{}", to_table(&report));
        // wars-external, wars-replica and protocol rows for each of the two pairs.
        assert_eq!(report.configs.len(), 6);
        for c in report.configs.iter().filter(|c| c.r == 2 && c.w == 2) {
            assert_eq!(c.consistent_at_zero, 1.0, "{:?}", c.engine);
            assert_eq!(c.t_at_999_ms, Some(0.0));
        }
        assert_eq!(report.comparisons.len(), 2);
        let weak = report.comparisons.iter().find(|c| c.r == 1).unwrap();
        assert_eq!(weak.points, 9);
        assert!(
            weak.rmse_vs_wars_replica < weak.rmse_vs_wars_external,
            "{weak:?}"
        );
        let csv = to_csv(&report);
        assert_eq!(csv.lines().count(), 7);
        assert_eq!(curves_csv(&report).lines().count(), 1 + 6 * 9);
    }

    // A pair that does not fit N is refused by name.
    #[test]
    fn bad_pairs_are_refused() {
        let mut s = spec(EngineChoice::Wars);
        s.pairs = Some(vec![(4, 1)]);
        assert!(matches!(
            run(&s, &Silent),
            Err(QuorumError::BadPair { r: 4, .. })
        ));
    }
}
