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
use comfy_table::{CellAlignment, Table, presets};
use serde::{Serialize, Serializer};

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

/// Why a sweep, or the writing of its report, failed.
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
    #[error("nothing to run: give at least one N, one (R, W) pair and one t point")]
    Empty,
    /// A CSV report could not be written: its destination (a file, standard output) failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
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
    // A report without rows would give CSVs without even a header (csv takes it from the
    // first row).
    if configs == 0 {
        return Err(QuorumError::Empty);
    }
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
    k_value(c, k).map_or_else(|| "-".into(), |p| format!("{p:.4}"))
}

fn k_value(c: &ConfigReport, k: u32) -> Option<f64> {
    c.k_staleness
        .iter()
        .find(|p| p.k == k)
        .map(|p| p.p_within_k)
}

fn t999_cell(c: &ConfigReport) -> String {
    match c.t_at_999_ms {
        Some(t) => format!("{t:.2}"),
        None => "> grid".into(),
    }
}

/// A table in the look of the hand-padded ones it replaced, which people compare by eye and
/// paste into notes: no borders or rules, columns two spaces apart, numbers right-aligned and
/// the columns in `left_aligned` (names, free text) left-aligned. Print it with `trim_fmt`, so
/// that lines end at their last character.
fn text_table(header: &[&str], left_aligned: &[usize]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(header.to_vec());
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        column.set_cell_alignment(if left_aligned.contains(&i) {
            CellAlignment::Left
        } else {
            CellAlignment::Right
        });
    }
    table
}

/// The report as an aligned text table.
pub fn to_table(report: &QuorumReport) -> String {
    let mut out = format!("profile {}, seed {}\n", report.profile, report.seed);
    let mut table = text_table(
        &[
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
            "hinted/read-repairs/AE keys",
        ],
        &[0, 13],
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
        table.add_row(vec![
            c.engine.name().to_string(),
            c.n.to_string(),
            c.r.to_string(),
            c.w.to_string(),
            c.samples.to_string(),
            lat(&c.write_latency_ms),
            lat(&c.read_latency_ms),
            format!("{:.4}", c.consistent_at_zero),
            t999_cell(c),
            k_cell(c, 2),
            k_cell(c, 3),
            format!("{:.4}", c.write_availability),
            format!("{:.4}", c.read_availability),
            mech,
        ]);
    }
    out.push_str(&table.trim_fmt());
    out.push('\n');
    if !report.comparisons.is_empty() {
        out.push_str(&format!(
            "\nt-visibility, protocol vs WARS ({} grid points from 0 to {:.2} ms):\n",
            report.t_grid_ms.len(),
            report.t_grid_ms.last().copied().unwrap_or(0.0)
        ));
        let mut table = text_table(
            &[
                "N",
                "R",
                "W",
                "RMSE vs WARS-replica",
                "max gap vs replica",
                "RMSE vs WARS-external",
            ],
            &[],
        );
        let percent = |x: f64| format!("{:.2}%", x * 100.0);
        for c in &report.comparisons {
            table.add_row(vec![
                c.n.to_string(),
                c.r.to_string(),
                c.w.to_string(),
                percent(c.rmse_vs_wars_replica),
                percent(c.max_gap_vs_wars_replica),
                percent(c.rmse_vs_wars_external),
            ]);
        }
        out.push_str(&table.trim_fmt());
        out.push('\n');
    }
    out
}

/// Writes `value` with `DECIMALS` decimals: the CSVs keep the fixed precision scripts and
/// diffs have always seen, instead of the shortest round-trip form csv would print.
fn fixed<const DECIMALS: usize, S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{value:.DECIMALS$}"))
}

/// [`fixed`] for a value that may be missing (an empty field).
fn fixed_or_empty<const DECIMALS: usize, S: Serializer>(
    value: &Option<f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => fixed::<DECIMALS, S>(value, s),
        None => s.serialize_none(),
    }
}

/// Writes `value` in Rust's shortest form (`0`, `1.022`), as grid points always were: csv
/// itself would write `0.0`.
fn shortest<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// One line of summary.csv. The field names are the header, in order, and scripts read them:
/// rename or reorder only with the scripts (the test `summary_csv_reads_back` holds the list).
#[derive(Serialize)]
struct SummaryRow<'a> {
    profile: &'a str,
    engine: &'static str,
    n: usize,
    r: usize,
    w: usize,
    samples: u64,
    #[serde(serialize_with = "fixed::<4, _>")]
    write_p50_ms: f64,
    #[serde(serialize_with = "fixed::<4, _>")]
    write_p99_ms: f64,
    #[serde(serialize_with = "fixed::<4, _>")]
    write_p999_ms: f64,
    #[serde(serialize_with = "fixed::<4, _>")]
    read_p50_ms: f64,
    #[serde(serialize_with = "fixed::<4, _>")]
    read_p99_ms: f64,
    #[serde(serialize_with = "fixed::<4, _>")]
    read_p999_ms: f64,
    #[serde(serialize_with = "fixed::<6, _>")]
    consistent_at_zero: f64,
    #[serde(serialize_with = "fixed_or_empty::<4, _>")]
    t_at_999_ms: Option<f64>,
    #[serde(serialize_with = "fixed_or_empty::<6, _>")]
    k2: Option<f64>,
    #[serde(serialize_with = "fixed_or_empty::<6, _>")]
    k3: Option<f64>,
    #[serde(serialize_with = "fixed::<6, _>")]
    write_availability: f64,
    #[serde(serialize_with = "fixed::<6, _>")]
    read_availability: f64,
    hinted_writes: Option<u64>,
    read_repairs: Option<u64>,
    anti_entropy_keys: Option<u64>,
    violations: Option<usize>,
}

/// One line of curves.csv (same rule as [`SummaryRow`] for its field names).
#[derive(Serialize)]
struct CurveRow<'a> {
    profile: &'a str,
    engine: &'static str,
    n: usize,
    r: usize,
    w: usize,
    #[serde(serialize_with = "shortest")]
    t_ms: f64,
    #[serde(serialize_with = "fixed::<6, _>")]
    p_consistent: f64,
    samples: u64,
}

/// Writes summary.csv: one row per configuration and engine (curves in [`write_curves_csv`]).
pub fn write_csv<W: std::io::Write>(report: &QuorumReport, out: W) -> Result<(), QuorumError> {
    let mut writer = csv::Writer::from_writer(out);
    for c in &report.configs {
        let m = c.mechanisms;
        writer.serialize(SummaryRow {
            profile: &report.profile,
            engine: c.engine.name(),
            n: c.n,
            r: c.r,
            w: c.w,
            samples: c.samples,
            write_p50_ms: c.write_latency_ms.p50,
            write_p99_ms: c.write_latency_ms.p99,
            write_p999_ms: c.write_latency_ms.p999,
            read_p50_ms: c.read_latency_ms.p50,
            read_p99_ms: c.read_latency_ms.p99,
            read_p999_ms: c.read_latency_ms.p999,
            consistent_at_zero: c.consistent_at_zero,
            t_at_999_ms: c.t_at_999_ms,
            k2: k_value(c, 2),
            k3: k_value(c, 3),
            write_availability: c.write_availability,
            read_availability: c.read_availability,
            hinted_writes: m.map(|m| m.hinted_writes),
            read_repairs: m.map(|m| m.read_repairs),
            anti_entropy_keys: m.map(|m| m.anti_entropy_keys),
            violations: m.map(|m| m.violations),
        })?;
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(())
}

/// Writes curves.csv: every curve point (profile, engine, n, r, w, t, P(consistent), samples).
pub fn write_curves_csv<W: std::io::Write>(
    report: &QuorumReport,
    out: W,
) -> Result<(), QuorumError> {
    let mut writer = csv::Writer::from_writer(out);
    for c in &report.configs {
        for p in &c.t_visibility {
            writer.serialize(CurveRow {
                profile: &report.profile,
                engine: c.engine.name(),
                n: c.n,
                r: c.r,
                w: c.w,
                t_ms: p.t_ms,
                p_consistent: p.p_consistent,
                samples: p.samples,
            })?;
        }
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(())
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
        let mut summary = Vec::new();
        write_csv(&report, &mut summary).unwrap();
        assert_eq!(summary.iter().filter(|&&b| b == b'\n').count(), 7);
        let mut curves = Vec::new();
        write_curves_csv(&report, &mut curves).unwrap();
        assert_eq!(curves.iter().filter(|&&b| b == b'\n').count(), 1 + 6 * 9);
    }

    /// A report with a different value in every field, so that a column written from the wrong
    /// field shows; its profile name needs CSV quoting.
    fn hand_made_report() -> QuorumReport {
        let point = |t_ms, p_consistent| VisibilityPoint {
            t_ms,
            p_consistent,
            samples: 200_000,
        };
        let wars = ConfigReport {
            engine: Engine::WarsExternal,
            n: 3,
            r: 1,
            w: 2,
            samples: 200_000,
            write_latency_ms: Percentiles {
                p50: 1.234_56,
                p99: 6.543_21,
                p999: 11.015_6,
            },
            read_latency_ms: Percentiles {
                p50: 0.488_8,
                p99: 0.561_5,
                p999: 0.661_1,
            },
            consistent_at_zero: 0.436_875,
            t_visibility: vec![point(0.0, 0.436_875), point(1.022, 0.585_92)],
            t_at_999_ms: Some(52.312_5),
            k_staleness: (1..=3)
                .map(|k| KPoint {
                    k,
                    p_within_k: 0.5 + f64::from(k) / 10.0,
                })
                .collect(),
            write_availability: 0.999_1,
            read_availability: 0.998_2,
            mechanisms: None,
        };
        let protocol = ConfigReport {
            engine: Engine::Protocol,
            samples: 3_008,
            t_at_999_ms: None,
            k_staleness: vec![KPoint {
                k: 2,
                p_within_k: 0.987_654_3,
            }],
            mechanisms: Some(Mechanisms {
                hinted_writes: 7,
                read_repairs: 1_584,
                anti_entropy_keys: 88,
                violations: 2,
                converged: true,
            }),
            ..wars.clone()
        };
        QuorumReport {
            profile: "my, \"odd\" profile".into(),
            seed: 3,
            t_grid_ms: vec![0.0, 1.022],
            configs: vec![wars, protocol],
            comparisons: vec![Comparison {
                n: 3,
                r: 1,
                w: 2,
                rmse_vs_wars_replica: 0.013_9,
                rmse_vs_wars_external: 0.060_9,
                max_gap_vs_wars_replica: 0.022_2,
                points: 2,
            }],
        }
    }

    /// Reads `bytes` back with the csv crate: the header, and each row as (column -> field).
    fn read_back(bytes: &[u8]) -> (Vec<String>, Vec<Vec<(String, String)>>) {
        let mut reader = csv::Reader::from_reader(bytes);
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|record| {
                let record = record.unwrap();
                assert_eq!(record.len(), header.len());
                header
                    .iter()
                    .cloned()
                    .zip(record.iter().map(String::from))
                    .collect()
            })
            .collect();
        (header, rows)
    }

    fn field<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
        row.iter()
            .find(|(column, _)| column == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no column {name}"))
    }

    fn number(row: &[(String, String)], name: &str) -> f64 {
        let text = field(row, name);
        text.parse()
            .unwrap_or_else(|e| panic!("{name} = {text:?}: {e}"))
    }

    // summary.csv has today's 22 columns in today's order, and each field is the report's
    // value (at the CSV's 4 or 6 decimals), with empty fields where a value is missing.
    #[test]
    fn summary_csv_reads_back() {
        let report = hand_made_report();
        let mut bytes = Vec::new();
        write_csv(&report, &mut bytes).unwrap();
        let (header, rows) = read_back(&bytes);
        assert_eq!(
            header,
            [
                "profile",
                "engine",
                "n",
                "r",
                "w",
                "samples",
                "write_p50_ms",
                "write_p99_ms",
                "write_p999_ms",
                "read_p50_ms",
                "read_p99_ms",
                "read_p999_ms",
                "consistent_at_zero",
                "t_at_999_ms",
                "k2",
                "k3",
                "write_availability",
                "read_availability",
                "hinted_writes",
                "read_repairs",
                "anti_entropy_keys",
                "violations",
            ]
        );
        assert_eq!(rows.len(), report.configs.len());
        for (row, c) in rows.iter().zip(&report.configs) {
            assert_eq!(field(row, "profile"), report.profile);
            assert_eq!(field(row, "engine"), c.engine.name());
            assert_eq!(number(row, "n"), c.n as f64);
            assert_eq!(number(row, "r"), c.r as f64);
            assert_eq!(number(row, "w"), c.w as f64);
            assert_eq!(number(row, "samples"), c.samples as f64);
            let close = |name: &str, want: f64, decimals: i32| {
                let got = number(row, name);
                assert!(
                    (got - want).abs() <= 0.5 * 10f64.powi(-decimals) + 1e-12,
                    "{name}: {got} vs {want}"
                );
            };
            close("write_p50_ms", c.write_latency_ms.p50, 4);
            close("write_p99_ms", c.write_latency_ms.p99, 4);
            close("write_p999_ms", c.write_latency_ms.p999, 4);
            close("read_p50_ms", c.read_latency_ms.p50, 4);
            close("read_p99_ms", c.read_latency_ms.p99, 4);
            close("read_p999_ms", c.read_latency_ms.p999, 4);
            close("consistent_at_zero", c.consistent_at_zero, 6);
            close("write_availability", c.write_availability, 6);
            close("read_availability", c.read_availability, 6);
        }
        let (wars, protocol) = (&rows[0], &rows[1]);
        assert_eq!(field(wars, "write_p50_ms"), "1.2346");
        assert_eq!(field(wars, "t_at_999_ms"), "52.3125");
        assert_eq!(field(wars, "k2"), "0.700000");
        assert_eq!(field(wars, "k3"), "0.800000");
        for name in [
            "hinted_writes",
            "read_repairs",
            "anti_entropy_keys",
            "violations",
        ] {
            assert_eq!(field(wars, name), "", "{name}");
        }
        assert_eq!(field(protocol, "t_at_999_ms"), "");
        assert_eq!(field(protocol, "k2"), "0.987654");
        assert_eq!(field(protocol, "k3"), "");
        assert_eq!(field(protocol, "hinted_writes"), "7");
        assert_eq!(field(protocol, "read_repairs"), "1584");
        assert_eq!(field(protocol, "anti_entropy_keys"), "88");
        assert_eq!(field(protocol, "violations"), "2");
    }

    // curves.csv keeps its 8 columns, one row per curve point, t in its shortest form.
    #[test]
    fn curves_csv_reads_back() {
        let report = hand_made_report();
        let mut bytes = Vec::new();
        write_curves_csv(&report, &mut bytes).unwrap();
        let (header, rows) = read_back(&bytes);
        assert_eq!(
            header,
            [
                "profile",
                "engine",
                "n",
                "r",
                "w",
                "t_ms",
                "p_consistent",
                "samples"
            ]
        );
        assert_eq!(rows.len(), 4);
        let second = &rows[1];
        assert_eq!(field(second, "profile"), report.profile);
        assert_eq!(field(second, "engine"), "wars-external");
        assert_eq!(field(second, "w"), "2");
        assert_eq!(field(&rows[0], "t_ms"), "0");
        assert_eq!(field(second, "t_ms"), "1.022");
        assert_eq!(field(second, "p_consistent"), "0.585920");
        assert_eq!(field(second, "samples"), "200000");
        assert_eq!(field(&rows[3], "engine"), "protocol");
    }

    // The tables keep their look: a row per configuration under a header, numbers right-aligned
    // under their column names, names left-aligned, no trailing blanks.
    #[test]
    fn tables_line_up() {
        let report = hand_made_report();
        let text = to_table(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "profile my, \"odd\" profile, seed 3");
        assert!(lines.iter().all(|l| *l == l.trim_end()), "{text}");
        let header = lines[1];
        let rows = &lines[2..4];
        assert!(rows[0].starts_with("wars-external  ") && rows[1].starts_with("protocol  "));
        let right_aligned = |header: &str, rows: &[&str], name: &str, values: &[&str]| {
            let end = header.find(name).unwrap() + name.len();
            for (row, value) in rows.iter().zip(values) {
                assert_eq!(
                    row.get(end - value.len()..end),
                    Some(*value),
                    "{name}:\n{text}"
                );
                assert!(row[..end - value.len()].ends_with(' '), "{name}:\n{text}");
            }
        };
        right_aligned(header, rows, "samples", &["200000", "3008"]);
        right_aligned(header, rows, "P(t=0)", &["0.4369", "0.4369"]);
        right_aligned(header, rows, "t@99.9%", &["52.31", "> grid"]);
        right_aligned(header, rows, "k<=3", &["0.8000", "-"]);
        right_aligned(header, rows, "r-avail", &["0.9982", "0.9982"]);
        let mech = header.find("hinted/read-repairs/AE keys").unwrap();
        assert_eq!(&rows[1][mech..], "7/1584/88 VIOLATIONS 2");
        assert_eq!(rows[0].len(), mech - 2);
        assert_eq!(
            lines[5],
            "t-visibility, protocol vs WARS (2 grid points from 0 to 1.02 ms):"
        );
        right_aligned(lines[6], &lines[7..8], "max gap vs replica", &["2.22%"]);
        right_aligned(lines[6], &lines[7..8], "RMSE vs WARS-external", &["6.09%"]);
        assert_eq!(lines.len(), 8);
    }

    // A pair that does not fit N is refused by name; no pair at all is nothing to run.
    #[test]
    fn bad_pairs_are_refused() {
        let mut s = spec(EngineChoice::Wars);
        s.pairs = Some(vec![(4, 1)]);
        assert!(matches!(
            run(&s, &Silent),
            Err(QuorumError::BadPair { r: 4, .. })
        ));
        s.pairs = Some(Vec::new());
        assert!(matches!(run(&s, &Silent), Err(QuorumError::Empty)));
    }
}
