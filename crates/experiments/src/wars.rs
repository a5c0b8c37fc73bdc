//! The WARS model of PBS (Bailis et al., "Probabilistically Bounded Staleness for Practical
//! Partial Quorums", VLDB 2012, §5), by Monte Carlo: how stale and how slow a Dynamo-style
//! partial quorum is, from the delay distributions of its four message legs alone.
//!
//! # The model (PBS §5.1)
//! One trial draws, for each of the N replicas, the delays W (write request), A (write ack),
//! R (read request) and S (read response). The write starts at 0 and commits when the W-th
//! fastest `W_i + A_i` arrives (`commit`). A read issued `t` ms after the commit goes to all N
//! replicas and returns with the R fastest `R_i + S_i`; it is consistent iff one of those R
//! replicas had the write when the read reached it: `W_i <= commit + t + R_i`.
//!
//! The responders do not depend on `t`, so one trial gives the whole curve: the read is
//! consistent exactly for `t >= t*`, with `t* = min over the first R responders of
//! (W_i - R_i) - commit`. Each trial records `t*` once, and P(consistent at t) is the fraction
//! of trials with `t* <= t`: the t-visibility curve is the CDF of `t*`, and the t at which 99.9%
//! of reads are consistent is its 99.9th percentile. One draw of the legs also serves every
//! (R, W) pair of a given N (common random numbers), so a whole N sweep costs one pass.
//!
//! k-staleness follows PBS §3.3 / the PBS predictor: if each write is missed independently with
//! probability `p_s = 1 - P(consistent at t)`, a read is within k versions with probability
//! `1 - p_s^k`.
//!
//! # Coordinator placement
//! PBS assumes the coordinator is not a replica ([`Placement::External`]). In ringstore (and
//! Dynamo) the coordinator is one of the N replicas, and its own write and read take no network
//! time ([`Placement::Replica`]: one replica, drawn per operation, has `W = A = 0` for the write
//! and another, drawn independently, `R = S = 0` for the read). The protocol engine is compared
//! with the latter.
//!
//! # Sites
//! With a profile's sites, replica `i` is at site `i % count`; the write's and the read's
//! coordinator each sit at a uniformly drawn site (External) or at their replica's site
//! (Replica), and every leg between two different sites gets the extra delay.
//!
//! # Guarantees
//! - Same seed, same options: same result, whatever the number of threads (trials are cut in
//!   fixed chunks, chunk `i` uses stream `i` of a ChaCha8 generator seeded with the seed, and
//!   histograms merge by addition).
//! - No allocation per trial: the N delays live in fixed arrays on the stack.
//!
//! # Limits
//! - N is at most [`MAX_N`]. Failures are not modelled (availability only counts operations
//!   slower than the timeout), nor are read repair and anti-entropy (the protocol engine has
//!   them).

use super::histogram::LogHistogram;
use super::profiles::Profile;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution as _;
use ringstore_sim::distribution::Distribution;
use serde::{Deserialize, Serialize};

/// The largest N the engine accepts (ringstore's own limit on replicas).
pub const MAX_N: usize = ringstore_core::config::MAX_REPLICAS as usize;

/// Trials per chunk: the unit of parallel work and of progress reports.
pub const CHUNK_TRIALS: u64 = 1 << 15;

/// Where the coordinator of an operation is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Not a replica: every leg crosses the network (PBS's assumption).
    #[default]
    External,
    /// One of the N replicas, drawn per operation: its own legs take no time (ringstore,
    /// Dynamo).
    Replica,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct WarsOptions {
    /// Replicas.
    pub n: usize,
    /// Monte Carlo trials.
    pub trials: u64,
    /// The seed.
    pub seed: u64,
    /// Coordinator placement.
    pub placement: Placement,
    /// Worker threads (at least 1).
    pub threads: usize,
}

/// Why the engine refused to run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WarsError {
    /// N is 0 or above [`MAX_N`].
    #[error("n = {0} is out of range 1..={MAX_N}")]
    BadN(usize),
    /// No trial to run.
    #[error("trials must be at least 1")]
    NoTrials,
}

/// The outcome of a sweep over every (R, W) of one N.
#[derive(Clone, Debug)]
pub struct WarsSweep {
    /// Replicas.
    pub n: usize,
    /// Trials run.
    pub trials: u64,
    /// Write latency (commit time) for W = 1..=N, at index W - 1.
    pub write_latency: Vec<LogHistogram>,
    /// Read latency for R = 1..=N, at index R - 1.
    pub read_latency: Vec<LogHistogram>,
    /// `t*` (the time after commit from which the read is consistent) for (R, W), at index
    /// `(R - 1) * N + (W - 1)`.
    pub staleness: Vec<LogHistogram>,
}

impl WarsSweep {
    /// The `t*` histogram of (R, W).
    pub fn staleness_of(&self, r: usize, w: usize) -> &LogHistogram {
        &self.staleness[(r - 1) * self.n + (w - 1)]
    }

    /// P(a read issued `t_ms` after the commit is consistent) under (R, W).
    pub fn p_consistent(&self, r: usize, w: usize, t_ms: f64) -> f64 {
        self.staleness_of(r, w).fraction_at_or_below(t_ms)
    }

    /// The t after which a fraction `p` of reads are consistent under (R, W) (0 if they are at
    /// once).
    pub fn t_visibility(&self, r: usize, w: usize, p: f64) -> f64 {
        self.staleness_of(r, w).quantile(p)
    }

    /// P(a read issued `t_ms` after the commit returns one of the last `k` versions), PBS
    /// §3.3: `1 - p_s^k` with `p_s` the probability of an inconsistent read at `t_ms`.
    pub fn p_within_k(&self, r: usize, w: usize, t_ms: f64, k: u32) -> f64 {
        let stale = 1.0 - self.p_consistent(r, w, t_ms);
        1.0 - stale.powi(k as i32)
    }
}

/// A [`Distribution`] prepared for fast sampling: parameters inverted, mixture weights summed.
#[derive(Clone, Debug)]
enum Sampler {
    Constant(f64),
    Uniform {
        low: f64,
        width: f64,
    },
    Exponential {
        mean: f64,
    },
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    Pareto {
        x_m: f64,
        inv_alpha: f64,
    },
    /// Cumulative normalised weights and parts.
    Mixture {
        cumulative: Vec<f64>,
        parts: Vec<Sampler>,
    },
}

impl Sampler {
    fn new(d: &Distribution) -> Self {
        match d {
            Distribution::Constant { ms } => Sampler::Constant(*ms),
            Distribution::Uniform { low_ms, high_ms } => Sampler::Uniform {
                low: *low_ms,
                width: (high_ms - low_ms).max(0.0),
            },
            Distribution::Exponential { lambda } => Sampler::Exponential { mean: 1.0 / lambda },
            Distribution::LogNormal { mu, sigma } => Sampler::LogNormal {
                mu: *mu,
                sigma: *sigma,
            },
            Distribution::Pareto { x_m, alpha } => Sampler::Pareto {
                x_m: *x_m,
                inv_alpha: 1.0 / alpha,
            },
            Distribution::Mixture { parts } => {
                let total: f64 = parts.iter().map(|(w, _)| w.max(0.0)).sum();
                let mut acc = 0.0;
                let mut cumulative = Vec::with_capacity(parts.len());
                for (w, _) in parts {
                    acc += w.max(0.0) / total;
                    cumulative.push(acc);
                }
                Sampler::Mixture {
                    cumulative,
                    parts: parts.iter().map(|(_, d)| Sampler::new(d)).collect(),
                }
            }
        }
    }

    /// A uniform draw in (0, 1].
    #[inline]
    fn open_unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
        1.0 - rng.random::<f64>()
    }

    #[inline]
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let v = match self {
            Sampler::Constant(ms) => *ms,
            Sampler::Uniform { low, width } => low + rng.random::<f64>() * width,
            Sampler::Exponential { mean } => -Self::open_unit(rng).ln() * mean,
            Sampler::LogNormal { mu, sigma } => {
                let z: f64 = rand_distr::StandardNormal.sample(rng);
                (mu + sigma * z).exp()
            }
            // x_m / u^(1/α), with exp and ln: a third of the cost of powf.
            Sampler::Pareto { x_m, inv_alpha } => {
                x_m * (-Self::open_unit(rng).ln() * inv_alpha).exp()
            }
            Sampler::Mixture { cumulative, parts } => {
                let u = rng.random::<f64>();
                let index = cumulative
                    .iter()
                    .position(|&c| u < c)
                    .unwrap_or(parts.len().saturating_sub(1));
                parts.get(index).map_or(0.0, |p| p.sample(rng))
            }
        };
        if v.is_finite() && v >= 0.0 { v } else { 0.0 }
    }
}

/// Extra delay between sites, prepared.
struct SiteDelays {
    count: usize,
    remote: Option<Sampler>,
    matrix: Option<Vec<f64>>,
}

impl SiteDelays {
    #[inline]
    fn extra<R: Rng + ?Sized>(&self, from: usize, to: usize, rng: &mut R) -> f64 {
        if let Some(m) = &self.matrix {
            return m[from * self.count + to];
        }
        match &self.remote {
            Some(s) if from != to => s.sample(rng),
            _ => 0.0,
        }
    }
}

/// A profile prepared for sampling.
struct Model {
    w: Sampler,
    a: Sampler,
    r: Sampler,
    s: Sampler,
    sites: Option<SiteDelays>,
    placement: Placement,
}

impl Model {
    fn new(profile: &Profile, placement: Placement) -> Self {
        Self {
            w: Sampler::new(&profile.legs.w),
            a: Sampler::new(&profile.legs.a),
            r: Sampler::new(&profile.legs.r),
            s: Sampler::new(&profile.legs.s),
            sites: profile.sites.as_ref().map(|s| SiteDelays {
                count: s.count.max(1),
                remote: s.remote.as_ref().map(Sampler::new),
                matrix: s
                    .extra_ms
                    .as_ref()
                    .map(|m| m.iter().flatten().copied().collect()),
            }),
            placement,
        }
    }
}

/// Per-thread accumulators.
struct Accumulators {
    write_latency: Vec<LogHistogram>,
    read_latency: Vec<LogHistogram>,
    staleness: Vec<LogHistogram>,
}

impl Accumulators {
    fn new(n: usize) -> Self {
        Self {
            write_latency: vec![LogHistogram::new(); n],
            read_latency: vec![LogHistogram::new(); n],
            staleness: vec![LogHistogram::new(); n * n],
        }
    }

    fn merge(&mut self, other: &Accumulators) {
        let pairs = self
            .write_latency
            .iter_mut()
            .zip(&other.write_latency)
            .chain(self.read_latency.iter_mut().zip(&other.read_latency))
            .chain(self.staleness.iter_mut().zip(&other.staleness));
        for (mine, theirs) in pairs {
            mine.merge(theirs);
        }
    }
}

/// Sorts `values[..n]` ascending (insertion sort: N is small).
#[inline]
fn sort_small(values: &mut [f64; MAX_N], n: usize) {
    for i in 1..n {
        let v = values[i];
        let mut j = i;
        while j > 0 && values[j - 1] > v {
            values[j] = values[j - 1];
            j -= 1;
        }
        values[j] = v;
    }
}

/// Sorts `order[..n]` by `keys[order[..]]` ascending.
#[inline]
fn order_small(order: &mut [usize; MAX_N], keys: &[f64; MAX_N], n: usize) {
    for (i, slot) in order.iter_mut().enumerate().take(n) {
        *slot = i;
    }
    for i in 1..n {
        let v = order[i];
        let mut j = i;
        while j > 0 && keys[order[j - 1]] > keys[v] {
            order[j] = order[j - 1];
            j -= 1;
        }
        order[j] = v;
    }
}

/// Runs one trial and records it for every (R, W).
#[inline]
fn trial<R: Rng + ?Sized>(model: &Model, n: usize, rng: &mut R, acc: &mut Accumulators) {
    let mut write_arrival = [0.0f64; MAX_N];
    let mut write_round_trip = [0.0f64; MAX_N];
    let mut read_request = [0.0f64; MAX_N];
    let mut read_round_trip = [0.0f64; MAX_N];
    let (write_coordinator, read_coordinator) = match model.placement {
        Placement::External => (None, None),
        Placement::Replica => (Some(rng.random_range(0..n)), Some(rng.random_range(0..n))),
    };
    let (write_site, read_site) = match (&model.sites, write_coordinator, read_coordinator) {
        (Some(s), Some(wc), Some(rc)) => (wc % s.count, rc % s.count),
        (Some(s), _, _) => (rng.random_range(0..s.count), rng.random_range(0..s.count)),
        (None, _, _) => (0, 0),
    };
    for i in 0..n {
        let mut w = model.w.sample(rng);
        let mut a = model.a.sample(rng);
        let mut r = model.r.sample(rng);
        let mut s = model.s.sample(rng);
        if let Some(sites) = &model.sites {
            let site = i % sites.count;
            w += sites.extra(write_site, site, rng);
            a += sites.extra(site, write_site, rng);
            r += sites.extra(read_site, site, rng);
            s += sites.extra(site, read_site, rng);
        }
        if write_coordinator == Some(i) {
            (w, a) = (0.0, 0.0);
        }
        if read_coordinator == Some(i) {
            (r, s) = (0.0, 0.0);
        }
        write_arrival[i] = w;
        write_round_trip[i] = w + a;
        read_request[i] = r;
        read_round_trip[i] = r + s;
    }
    let mut order = [0usize; MAX_N];
    order_small(&mut order, &read_round_trip, n);
    // earliest[k]: min over the first k+1 responders of (W_i - R_i).
    let mut earliest = [0.0f64; MAX_N];
    let mut best = f64::INFINITY;
    for k in 0..n {
        let i = order[k];
        best = best.min(write_arrival[i] - read_request[i]);
        earliest[k] = best;
    }
    let mut commits = write_round_trip;
    sort_small(&mut commits, n);
    for (w_index, &commit) in commits.iter().enumerate().take(n) {
        acc.write_latency[w_index].record(commit);
    }
    for r_index in 0..n {
        acc.read_latency[r_index].record(read_round_trip[order[r_index]]);
        let row = r_index * n;
        for (w_index, &commit) in commits.iter().enumerate().take(n) {
            acc.staleness[row + w_index].record(earliest[r_index] - commit);
        }
    }
}

/// Runs `options.trials` trials of `profile` and returns the histograms of every (R, W) for
/// that N. `progress` is called with the number of trials each finished chunk ran.
pub fn run_sweep(
    profile: &Profile,
    options: &WarsOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WarsSweep, WarsError> {
    let n = options.n;
    if n == 0 || n > MAX_N {
        return Err(WarsError::BadN(n));
    }
    if options.trials == 0 {
        return Err(WarsError::NoTrials);
    }
    let model = Model::new(profile, options.placement);
    let chunks = options.trials.div_ceil(CHUNK_TRIALS);
    let next = std::sync::atomic::AtomicU64::new(0);
    let threads = options.threads.max(1).min(chunks as usize);
    let work = || {
        let mut acc = Accumulators::new(n);
        loop {
            let chunk = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if chunk >= chunks {
                break;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
            rng.set_stream(chunk);
            let start = chunk * CHUNK_TRIALS;
            let count = CHUNK_TRIALS.min(options.trials - start);
            for _ in 0..count {
                trial(&model, n, &mut rng, &mut acc);
            }
            progress(count);
        }
        acc
    };
    // The first worker's histograms become the total (a histogram is 384 KiB, and N = 16 has
    // 288 of them).
    let mut total: Option<Accumulators> = None;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
        for handle in handles {
            // A worker cannot panic short of a bug; its histograms are then simply missing.
            if let Ok(acc) = handle.join() {
                match &mut total {
                    Some(total) => total.merge(&acc),
                    None => total = Some(acc),
                }
            }
        }
    });
    let total = total.unwrap_or_else(|| Accumulators::new(n));
    Ok(WarsSweep {
        n,
        trials: options.trials,
        write_latency: total.write_latency,
        read_latency: total.read_latency,
        staleness: total.staleness,
    })
}

/// Trials per point in the paper's t sweeps (PBS §5.4).
pub const PAPER_TRIALS_PER_POINT: u64 = 50_000;

/// The paper's own estimator of the t at which a fraction `p` of reads are consistent: scan t
/// upwards from `start_ms` in steps of `step_ms`, running `trials_per_point` fresh trials at
/// each point, and return the first t whose estimate reaches `p` (or the t after `max_points`).
///
/// Each point is noisy and the first of many noisy points to cross wins, so this estimator is
/// biased low on flat tails; [`WarsSweep::t_visibility`] is the exact percentile. It exists to
/// compare with the paper's published numbers like for like.
#[allow(clippy::too_many_arguments)]
pub fn paper_t_visibility_estimate(
    profile: &Profile,
    n: usize,
    r: usize,
    w: usize,
    p: f64,
    start_ms: f64,
    step_ms: f64,
    trials_per_point: u64,
    seed: u64,
    max_points: u64,
) -> Result<f64, WarsError> {
    let mut t = start_ms;
    for point in 0..max_points {
        let options = WarsOptions {
            n,
            trials: trials_per_point,
            seed: seed.wrapping_mul(1_000_003).wrapping_add(point),
            placement: Placement::External,
            threads: 1,
        };
        let sweep = run_sweep(profile, &options, &|_| {})?;
        if sweep.p_consistent(r, w, t) >= p {
            return Ok(t);
        }
        t += step_ms;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{Legs, Sites};

    fn constant_profile(w: f64, a: f64, r: f64, s: f64) -> Profile {
        Profile {
            name: "const".into(),
            description: String::new(),
            legs: Legs {
                w: Distribution::constant(w),
                a: Distribution::constant(a),
                r: Distribution::constant(r),
                s: Distribution::constant(s),
            },
            sites: None,
        }
    }

    fn options(n: usize, trials: u64, seed: u64) -> WarsOptions {
        WarsOptions {
            n,
            trials,
            seed,
            placement: Placement::External,
            threads: 2,
        }
    }

    // PBS §5.1 by hand: constant legs give exactly known t* and latencies.
    #[test]
    fn constant_legs_give_the_analytic_answer() {
        // W = 10, A = 1, R = 2, S = 2: commit at 11; the read reaches replicas at 11 + t + 2 and
        // the write is there from 10, so every read is consistent at once (t* = 10 - 2 - 11).
        let sweep = run_sweep(
            &constant_profile(10.0, 1.0, 2.0, 2.0),
            &options(3, 1000, 1),
            &|_| {},
        )
        .unwrap();
        assert_eq!(sweep.p_consistent(1, 1, 0.0), 1.0);
        assert!((sweep.write_latency[0].quantile(0.5) - 11.0).abs() < 0.05);
        assert!((sweep.read_latency[2].quantile(0.999) - 4.0).abs() < 0.02);
        // Two-point write delays: replica i gets its write after 1 or 9 ms.
        let mixed = Profile {
            legs: Legs {
                w: Distribution::Mixture {
                    parts: vec![
                        (0.5, Distribution::constant(1.0)),
                        (0.5, Distribution::constant(9.0)),
                    ],
                },
                ..constant_profile(0.0, 0.0, 0.0, 0.0).legs
            },
            ..constant_profile(0.0, 0.0, 0.0, 0.0)
        };
        // N = 1, R = W = 1: commit = W_1, so always consistent.
        let one = run_sweep(&mixed, &options(1, 10_000, 2), &|_| {}).unwrap();
        assert_eq!(one.p_consistent(1, 1, 0.0), 1.0);
        // N = 2, R = W = 1, reads go to the replica listed first among equal round trips (both
        // are 0), i.e. replica 0: stale iff replica 0 has W = 9 and replica 1 has W = 1 (commit
        // at 1): probability 1/4, consistent from t = 8.
        let two = run_sweep(&mixed, &options(2, 100_000, 3), &|_| {}).unwrap();
        let p0 = two.p_consistent(1, 1, 0.0);
        assert!((p0 - 0.75).abs() < 0.01, "{p0}");
        assert!((two.p_consistent(1, 1, 7.9) - 0.75).abs() < 0.01);
        assert_eq!(two.p_consistent(1, 1, 8.0), 1.0);
        // Strict quorums (R + W > N) are always consistent.
        assert_eq!(two.p_consistent(2, 1, 0.0), 1.0);
        assert_eq!(two.p_consistent(1, 2, 0.0), 1.0);
    }

    // The result depends on the seed only, not on the number of threads.
    #[test]
    fn reproducible_across_thread_counts() {
        let profile = Profile::builtin("lnkd-disk").unwrap();
        let mut one = options(3, 100_000, 7);
        one.threads = 1;
        let mut four = one.clone();
        four.threads = 4;
        let a = run_sweep(&profile, &one, &|_| {}).unwrap();
        let b = run_sweep(&profile, &four, &|_| {}).unwrap();
        assert_eq!(a.staleness, b.staleness);
        assert_eq!(a.write_latency, b.write_latency);
        let c = run_sweep(&profile, &options(3, 100_000, 8), &|_| {}).unwrap();
        assert_ne!(a.staleness, c.staleness);
    }

    // A coordinator that is a replica makes W = 1 writes and R = 1 reads free, so an R = W = 1
    // read at t = 0 is consistent exactly when both operations picked the same coordinator
    // (probability 1/N).
    #[test]
    fn replica_placement_zeroes_the_local_legs() {
        let profile = Profile::builtin("lnkd-disk").unwrap();
        let mut opts = options(3, 200_000, 9);
        opts.placement = Placement::Replica;
        let sweep = run_sweep(&profile, &opts, &|_| {}).unwrap();
        assert_eq!(sweep.write_latency[0].quantile(0.999), 0.0);
        let p0 = sweep.p_consistent(1, 1, 0.0);
        assert!((p0 - 1.0 / 3.0).abs() < 0.01, "{p0}");
        assert!(sweep.p_consistent(1, 1, 1000.0) > 0.999);
        assert_eq!(sweep.read_latency[0].quantile(0.999), 0.0);
    }

    // Sites add their extra delay to the legs between different sites only.
    #[test]
    fn sites_add_remote_delay() {
        let mut profile = constant_profile(1.0, 1.0, 1.0, 1.0);
        profile.sites = Some(Sites {
            count: 3,
            remote: Some(Distribution::constant(75.0)),
            extra_ms: None,
        });
        let sweep = run_sweep(&profile, &options(3, 10_000, 4), &|_| {}).unwrap();
        // W = 1: the local replica acks in 2 ms; W = 2 needs a remote one: 152 ms.
        assert!((sweep.write_latency[0].quantile(0.5) - 2.0).abs() < 0.01);
        assert!((sweep.write_latency[1].quantile(0.5) - 152.0).abs() < 0.5);
        // k-staleness is 1 - p_s^k.
        let p1 = sweep.p_within_k(1, 1, 0.0, 1);
        let p3 = sweep.p_within_k(1, 1, 0.0, 3);
        assert!((1.0 - p3 - (1.0 - p1).powi(3)).abs() < 1e-12);
    }
}
