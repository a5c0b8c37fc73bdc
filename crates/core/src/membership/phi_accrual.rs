//! The φ accrual failure detector: how suspicious the silence of each peer is.
//!
//! # What this implements
//! Hayashibara, Défago, Yared, Katayama, "The φ Accrual Failure Detector" (2004), in the form
//! Cassandra and Akka use. Instead of a yes/no verdict after a fixed timeout, the detector keeps
//! the recent inter-arrival times of a peer's heartbeats, models them as a normal distribution,
//! and reports
//!
//! ```text
//! φ(elapsed) = -log10(1 - CDF(elapsed))
//! ```
//!
//! the (negated log of the) probability that a heartbeat would still arrive after this much
//! silence. φ = 1 means a 10% chance of being wrong when suspecting the peer now, φ = 8 means
//! 10⁻⁸. A peer is *up* while φ is below [`PhiConfig::threshold`]. A peer whose heartbeats are
//! irregular gets a wider distribution and so more tolerance than a regular one.
//!
//! Like Akka, the CDF uses the mean plus an *acceptable heartbeat pause* (room for a GC pause or
//! a lost gossip message), a standard deviation of at least [`PhiConfig::min_std_deviation`]
//! (a perfectly regular peer would otherwise be suspected after a few microseconds of lateness),
//! and the logistic approximation of the normal CDF (Bowling et al., "A logistic approximation
//! to the cumulative normal distribution", 2009; max error ≈ 1.4·10⁻⁴):
//!
//! ```text
//! y = (elapsed - (mean + acceptable_pause)) / max(std_dev, min_std_dev)
//! CDF(y) ≈ 1 / (1 + e^(-a)),  a = y · (1.5976 + 0.070566 · y²)
//! φ = -log10(1 - CDF) = log10(1 + e^a) = softplus(a) / ln 10
//! ```
//!
//! Written as a softplus, φ is finite and keeps growing for any silence (Akka's form rounds
//! to +∞ once e^(-a) underflows).
//!
//! # Guarantees
//! - O(1) per heartbeat and per query: the window keeps exact integer running sums of the
//!   intervals and of their squares (microseconds, `u128`), so mean and variance never drift.
//! - The window holds at most [`PhiConfig::max_sample_size`] intervals (oldest dropped first).
//! - No panic and no NaN on any input: time going backwards or a repeated instant records no
//!   interval; φ is always finite and ≥ 0. Configurations are checked by
//!   [`PhiConfig::validate`] before use.
//! - Deterministic: no clock, no randomness; the driver passes the time in.
//!
//! # Unknown peers
//! A peer never heard from is *unknown*: its φ is 0 and it counts as up, so that a freshly
//! started cluster can serve requests before the first gossip round completes (Dynamo treats a
//! node as up until communication with it fails). The node core calls
//! [`FailureDetector::expect`] for every member it learns of: that starts the peer's clock as if
//! a heartbeat had arrived then, so a peer that never speaks is judged down once φ passes the
//! threshold from the moment it was first expected.
//!
//! # Known limits
//! - The normal model fits direct, periodic heartbeats. Heartbeats that arrive by gossip
//!   (a member's counter advances whenever any peer relays a newer table) arrive irregularly,
//!   closer to exponential inter-arrival times; the adaptive standard deviation and the
//!   acceptable pause absorb this, at the cost of slower detection (see `docs/membership.md`).
//! - Until a peer has sent a few heartbeats, the window is dominated by the two seed samples
//!   derived from [`PhiConfig::first_heartbeat_estimate`].
//! - Intervals longer than [`PhiConfig::max_sample_interval`] are treated as outages and not
//!   recorded (Cassandra does the same), so the detector does not learn to tolerate them.

use crate::NodeId;
use crate::Time;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The largest window a configuration may ask for: bounds memory per peer and keeps the running
/// sums far from overflow.
pub const MAX_SAMPLE_SIZE_LIMIT: usize = 100_000;

/// The longest interval a configuration may allow to be recorded (one hour): bounds every
/// sample so that the `u128` running sums of squares cannot overflow.
pub const MAX_SAMPLE_INTERVAL_LIMIT: Duration = Duration::from_secs(3600);

/// Coefficients of the logistic approximation of the standard normal CDF (Bowling et al. 2009).
const LOGISTIC_LINEAR: f64 = 1.5976;
const LOGISTIC_CUBIC: f64 = 0.070566;

/// The detector's tuning, shared by all peers. See `docs/membership.md` for the choice of the
/// defaults (a LAN with a 1 s gossip interval).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhiConfig {
    /// φ at or above which a peer is judged down. 8 means a 10⁻⁸ chance (under the model) that
    /// the peer was merely slow.
    pub threshold: f64,
    /// How many inter-arrival intervals the window keeps (older ones are forgotten, so the
    /// detector follows a peer whose behaviour changes).
    pub max_sample_size: usize,
    /// The floor of the standard deviation: a very regular peer is not suspected the moment it
    /// is slightly late.
    pub min_std_deviation: Duration,
    /// Silence tolerated on top of the mean interval (GC pauses, a lost gossip message).
    pub acceptable_heartbeat_pause: Duration,
    /// The interval assumed before any was measured; seeds the window with two samples,
    /// estimate ± estimate/4, as Akka does.
    pub first_heartbeat_estimate: Duration,
    /// Longer intervals are outages, not samples: recording them would widen the distribution
    /// and slow the next detection.
    pub max_sample_interval: Duration,
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig {
            threshold: 8.0,
            max_sample_size: 1000,
            min_std_deviation: Duration::from_millis(200),
            acceptable_heartbeat_pause: Duration::from_secs(1),
            first_heartbeat_estimate: Duration::from_secs(1),
            max_sample_interval: Duration::from_secs(10),
        }
    }
}

/// Why a [`PhiConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PhiConfigError {
    /// The threshold is not a finite number greater than zero.
    #[error("phi threshold must be finite and > 0, got {0}")]
    Threshold(f64),
    /// The window size is 0 or above [`MAX_SAMPLE_SIZE_LIMIT`].
    #[error("max_sample_size must be in 1..={MAX_SAMPLE_SIZE_LIMIT}, got {0}")]
    SampleSize(usize),
    /// The standard deviation floor is below one microsecond (φ would divide by zero).
    #[error("min_std_deviation must be at least 1 µs")]
    MinStdDeviation,
    /// The acceptable pause exceeds [`MAX_SAMPLE_INTERVAL_LIMIT`].
    #[error("acceptable_heartbeat_pause must be at most {MAX_SAMPLE_INTERVAL_LIMIT:?}")]
    AcceptablePause,
    /// The first estimate is zero or above `max_sample_interval`.
    #[error("first_heartbeat_estimate must be in 1 µs..=max_sample_interval")]
    FirstEstimate,
    /// The longest recorded interval is zero or above [`MAX_SAMPLE_INTERVAL_LIMIT`].
    #[error("max_sample_interval must be in 1 µs..={MAX_SAMPLE_INTERVAL_LIMIT:?}")]
    MaxSampleInterval,
}

impl PhiConfig {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), PhiConfigError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(PhiConfigError::Threshold(self.threshold));
        }
        if self.max_sample_size == 0 || self.max_sample_size > MAX_SAMPLE_SIZE_LIMIT {
            return Err(PhiConfigError::SampleSize(self.max_sample_size));
        }
        if self.min_std_deviation < Duration::from_micros(1) {
            return Err(PhiConfigError::MinStdDeviation);
        }
        if self.acceptable_heartbeat_pause > MAX_SAMPLE_INTERVAL_LIMIT {
            return Err(PhiConfigError::AcceptablePause);
        }
        if self.max_sample_interval < Duration::from_micros(1)
            || self.max_sample_interval > MAX_SAMPLE_INTERVAL_LIMIT
        {
            return Err(PhiConfigError::MaxSampleInterval);
        }
        if self.first_heartbeat_estimate < Duration::from_micros(1)
            || self.first_heartbeat_estimate > self.max_sample_interval
        {
            return Err(PhiConfigError::FirstEstimate);
        }
        Ok(())
    }
}

/// Whole microseconds of a duration, saturating (validated durations are far below the limit).
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The recent heartbeat inter-arrival intervals of one peer, with running sums.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IntervalWindow {
    intervals_us: VecDeque<u64>,
    capacity: usize,
    sum_us: u128,
    sum_of_squares_us2: u128,
}

impl IntervalWindow {
    fn new(capacity: usize) -> Self {
        IntervalWindow {
            intervals_us: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            sum_us: 0,
            sum_of_squares_us2: 0,
        }
    }

    fn push(&mut self, interval_us: u64) {
        if self.intervals_us.len() >= self.capacity
            && let Some(oldest) = self.intervals_us.pop_front()
        {
            self.sum_us -= u128::from(oldest);
            self.sum_of_squares_us2 -= u128::from(oldest) * u128::from(oldest);
        }
        self.intervals_us.push_back(interval_us);
        self.sum_us += u128::from(interval_us);
        self.sum_of_squares_us2 += u128::from(interval_us) * u128::from(interval_us);
    }

    fn len(&self) -> usize {
        self.intervals_us.len()
    }

    fn mean_us(&self) -> f64 {
        match self.len() {
            0 => 0.0,
            n => self.sum_us as f64 / n as f64,
        }
    }

    /// Population standard deviation, from the exact integer identity
    /// `n²·var = n·Σx² − (Σx)²` (non-negative, no cancellation drift).
    fn std_deviation_us(&self) -> f64 {
        let n = self.len() as u128;
        if n == 0 {
            return 0.0;
        }
        let scaled_variance =
            (n * self.sum_of_squares_us2).saturating_sub(self.sum_us * self.sum_us);
        (scaled_variance as f64).sqrt() / n as f64
    }
}

/// The φ accrual detector of one peer.
#[derive(Clone, Debug, PartialEq)]
pub struct PhiAccrualDetector {
    config: PhiConfig,
    window: IntervalWindow,
    last_heartbeat: Time,
}

impl PhiAccrualDetector {
    /// A detector whose clock starts at `now`, as if a heartbeat had just arrived; the window
    /// is seeded from [`PhiConfig::first_heartbeat_estimate`].
    pub fn new(config: PhiConfig, now: Time) -> Result<Self, PhiConfigError> {
        config.validate()?;
        let mut window = IntervalWindow::new(config.max_sample_size);
        let estimate_us = micros(config.first_heartbeat_estimate);
        let spread_us = estimate_us / 4;
        window.push(estimate_us - spread_us);
        window.push(estimate_us + spread_us);
        Ok(PhiAccrualDetector {
            config,
            window,
            last_heartbeat: now,
        })
    }

    /// Records a heartbeat received at `now`. An interval longer than
    /// [`PhiConfig::max_sample_interval`] restarts the clock without being recorded; a
    /// heartbeat at or before the previous one (a duplicate, or a clock that went backwards)
    /// changes nothing.
    pub fn heartbeat(&mut self, now: Time) {
        if now <= self.last_heartbeat {
            return;
        }
        let interval = now.since(self.last_heartbeat);
        if interval <= self.config.max_sample_interval {
            self.window.push(micros(interval));
        }
        self.last_heartbeat = now;
    }

    /// The suspicion level at `now`: finite, ≥ 0, non-decreasing in `now`.
    pub fn phi(&self, now: Time) -> f64 {
        let elapsed_us = micros(now.since(self.last_heartbeat)) as f64;
        let mean_us = self.window.mean_us() + micros(self.config.acceptable_heartbeat_pause) as f64;
        let std_us = self
            .window
            .std_deviation_us()
            .max(micros(self.config.min_std_deviation) as f64);
        let y = (elapsed_us - mean_us) / std_us;
        let a = y * (LOGISTIC_LINEAR + LOGISTIC_CUBIC * y * y);
        softplus(a) / std::f64::consts::LN_10
    }

    /// Whether the peer counts as alive at `now`: φ below the threshold.
    pub fn is_up(&self, now: Time) -> bool {
        self.phi(now) < self.config.threshold
    }

    /// When the last heartbeat (or the expectation that started the clock) arrived.
    pub fn last_heartbeat(&self) -> Time {
        self.last_heartbeat
    }

    /// How many intervals the window holds (seeds included).
    pub fn sample_count(&self) -> usize {
        self.window.len()
    }

    /// The mean of the window's intervals.
    pub fn mean_interval(&self) -> Duration {
        Duration::from_secs_f64(self.window.mean_us() / 1e6)
    }

    /// The standard deviation of the window's intervals (before the floor is applied).
    pub fn std_deviation(&self) -> Duration {
        Duration::from_secs_f64(self.window.std_deviation_us() / 1e6)
    }
}

/// `ln(1 + e^a)` without overflow for large `a` nor loss of precision for very negative `a`.
fn softplus(a: f64) -> f64 {
    if a > 0.0 {
        a + (-a).exp().ln_1p()
    } else {
        a.exp().ln_1p()
    }
}

/// One φ accrual detector per peer, with the shared configuration (`Default`: the default
/// [`PhiConfig`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailureDetector {
    config: PhiConfig,
    peers: BTreeMap<NodeId, PhiAccrualDetector>,
}

impl FailureDetector {
    /// An empty detector map; refuses an invalid configuration.
    pub fn new(config: PhiConfig) -> Result<Self, PhiConfigError> {
        config.validate()?;
        Ok(FailureDetector {
            config,
            peers: BTreeMap::new(),
        })
    }

    /// The configuration every peer's detector uses.
    pub fn config(&self) -> &PhiConfig {
        &self.config
    }

    /// Records a heartbeat of `node` at `now`; the first one starts its detector.
    pub fn heartbeat(&mut self, node: NodeId, now: Time) {
        match self.peers.get_mut(&node) {
            Some(detector) => detector.heartbeat(now),
            None => self.insert(node, now),
        }
    }

    /// Starts the clock of a peer not yet heard from, as if it had sent a heartbeat at `now`;
    /// does nothing for a peer already known (its silence keeps counting).
    pub fn expect(&mut self, node: NodeId, now: Time) {
        if !self.peers.contains_key(&node) {
            self.insert(node, now);
        }
    }

    fn insert(&mut self, node: NodeId, now: Time) {
        // The configuration was validated in `new` (or is the default), so this cannot fail;
        // on the impossible error the peer simply stays unknown.
        if let Ok(detector) = PhiAccrualDetector::new(self.config, now) {
            self.peers.insert(node, detector);
        }
    }

    /// The suspicion level of `node` at `now`; 0 for a peer neither heard from nor expected.
    pub fn phi(&self, node: NodeId, now: Time) -> f64 {
        self.peers
            .get(&node)
            .map_or(0.0, |detector| detector.phi(now))
    }

    /// Whether `node` counts as alive at `now`; an unknown peer counts as up (see module docs).
    pub fn is_up(&self, node: NodeId, now: Time) -> bool {
        self.peers
            .get(&node)
            .is_none_or(|detector| detector.is_up(now))
    }

    /// Whether `node` has a detector (was heard from or expected).
    pub fn is_known(&self, node: NodeId) -> bool {
        self.peers.contains_key(&node)
    }

    /// The detector of `node`, for metrics and debugging.
    pub fn detector(&self, node: NodeId) -> Option<&PhiAccrualDetector> {
        self.peers.get(&node)
    }

    /// Forgets `node` (it left the cluster); it becomes unknown again.
    pub fn remove(&mut self, node: NodeId) {
        self.peers.remove(&node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PEER: NodeId = NodeId(7);

    /// A detector fed heartbeats at the given intervals (ms), starting at t = 0; returns it and
    /// the time of the last heartbeat.
    fn fed(config: PhiConfig, intervals_ms: &[u64]) -> (PhiAccrualDetector, Time) {
        let mut now = Time::ZERO;
        let mut detector = PhiAccrualDetector::new(config, now).unwrap();
        for &interval in intervals_ms {
            now = now + Duration::from_millis(interval);
            detector.heartbeat(now);
        }
        (detector, now)
    }

    /// The first silence (ms after `last`, 10 ms steps) at which the detector judges the peer
    /// down.
    fn detection_ms(detector: &PhiAccrualDetector, last: Time) -> u64 {
        (0..100_000u64)
            .step_by(10)
            .find(|&ms| !detector.is_up(last + Duration::from_millis(ms)))
            .unwrap()
    }

    /// A splitmix64 step: the tests' seeded RNG.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    // φ rises with silence (Hayashibara §3: φ is monotone in the time since the last arrival)
    // and eventually crosses the threshold.
    #[test]
    fn phi_grows_with_silence() {
        let (detector, last) = fed(PhiConfig::default(), &[1000; 20]);
        let mut previous = detector.phi(last);
        let mut crossed = false;
        for ms in (100..20_000).step_by(100) {
            let phi = detector.phi(last + Duration::from_millis(ms));
            assert!(
                phi >= previous,
                "phi fell from {previous} to {phi} at {ms} ms"
            );
            assert!(phi.is_finite());
            previous = phi;
            crossed |= phi >= detector.config.threshold;
        }
        assert!(crossed, "20 s of silence never crossed the threshold");
        // Far beyond any float underflow of the CDF, phi still grows and stays finite.
        let far = detector.phi(last + Duration::from_secs(3000));
        let farther = detector.phi(last + Duration::from_secs(3600));
        assert!(far.is_finite() && farther > far);
    }

    // A peer beating every second stays well below the threshold right up to each heartbeat.
    #[test]
    fn regular_heartbeats_keep_phi_low() {
        let config = PhiConfig::default();
        let mut now = Time::ZERO;
        let mut detector = PhiAccrualDetector::new(config, now).unwrap();
        for _ in 0..200 {
            let next = now + Duration::from_millis(1000);
            let phi = detector.phi(next);
            assert!(phi < 1.0, "phi {phi} just before a punctual heartbeat");
            assert!(detector.is_up(next));
            detector.heartbeat(next);
            now = next;
        }
    }

    // Hayashibara §3: the detector adapts to the observed distribution, so a jittery peer is
    // given more time than a regular one with the same mean interval.
    #[test]
    fn jittery_peer_gets_wider_tolerance() {
        let seed = 0x5eed_0001;
        println!("seed {seed:#x}");
        let mut rng = seed;
        // Uniform in 200..=1800 ms: mean ~1000 ms, standard deviation ~460 ms.
        let jittery: Vec<u64> = (0..500).map(|_| 200 + splitmix(&mut rng) % 1601).collect();
        // The regular peer's interval is at least the jittery mean, so that only the spread,
        // not a shorter mean, can give the jittery peer more tolerance.
        let jittery_mean_ms = jittery.iter().sum::<u64>().div_ceil(jittery.len() as u64);
        let regular: Vec<u64> = vec![jittery_mean_ms; 500];
        let config = PhiConfig::default();
        let (regular_detector, regular_last) = fed(config, &regular);
        let (jittery_detector, jittery_last) = fed(config, &jittery);

        let mean_ms = jittery_detector.mean_interval().as_secs_f64() * 1000.0;
        assert!(
            (900.0..1100.0).contains(&mean_ms),
            "jittery mean {mean_ms} ms"
        );
        let silence = Duration::from_millis(3000);
        assert!(
            jittery_detector.phi(jittery_last + silence)
                < regular_detector.phi(regular_last + silence)
        );
        assert!(
            detection_ms(&jittery_detector, jittery_last)
                > detection_ms(&regular_detector, regular_last)
        );
    }

    // A peer judged down is up again as soon as its heartbeats resume, and stays up while they
    // continue: the outage is not recorded as a sample (it exceeds max_sample_interval).
    #[test]
    fn peer_comes_back_up_after_heartbeats_resume() {
        let mut fd = FailureDetector::default();
        let mut now = Time::ZERO;
        for _ in 0..50 {
            now = now + Duration::from_millis(1000);
            fd.heartbeat(PEER, now);
        }
        let before_outage = fd.detector(PEER).unwrap().mean_interval();
        let outage_end = now + Duration::from_secs(60);
        assert!(!fd.is_up(PEER, outage_end));
        fd.heartbeat(PEER, outage_end);
        assert!(fd.is_up(PEER, outage_end));
        now = outage_end;
        for _ in 0..10 {
            let next = now + Duration::from_millis(1000);
            assert!(fd.is_up(PEER, next));
            fd.heartbeat(PEER, next);
            now = next;
        }
        assert_eq!(fd.detector(PEER).unwrap().mean_interval(), before_outage);
    }

    // The window never holds more than max_sample_size intervals, and its running mean and
    // deviation equal a recomputation over the last max_sample_size intervals.
    #[test]
    fn window_bound_holds() {
        let config = PhiConfig {
            max_sample_size: 100,
            ..PhiConfig::default()
        };
        let mut rng = 0x5eed_0002;
        println!("seed {rng:#x}");
        let intervals: Vec<u64> = (0..5000).map(|_| 1 + splitmix(&mut rng) % 5000).collect();
        let (detector, _) = fed(config, &intervals);
        assert_eq!(detector.sample_count(), 100);
        let last: Vec<f64> = intervals[intervals.len() - 100..]
            .iter()
            .map(|&ms| ms as f64 * 1000.0)
            .collect();
        let mean = last.iter().sum::<f64>() / 100.0;
        let std = (last.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 100.0).sqrt();
        assert!((detector.window.mean_us() - mean).abs() < 1e-6 * mean);
        assert!((detector.window.std_deviation_us() - std).abs() < 1e-6 * std);
    }

    // A peer that is expected but never speaks counts as up at first and is judged down once
    // the threshold passes; a peer neither heard from nor expected is unknown and up.
    #[test]
    fn expected_peer_that_never_speaks_goes_down() {
        let mut fd = FailureDetector::default();
        let start = Time::from_millis(5000);
        assert!(fd.is_up(PEER, start) && fd.phi(PEER, start) == 0.0 && !fd.is_known(PEER));
        fd.expect(PEER, start);
        assert!(fd.is_up(PEER, start + Duration::from_millis(1500)));
        assert!(!fd.is_up(PEER, start + Duration::from_secs(10)));
        // A second expect does not restart the clock.
        fd.expect(PEER, start + Duration::from_secs(10));
        assert!(!fd.is_up(PEER, start + Duration::from_secs(10)));
        // Forgetting the peer makes it unknown (and up) again.
        fd.remove(PEER);
        assert!(!fd.is_known(PEER) && fd.is_up(PEER, start + Duration::from_secs(10)));
    }

    // A clock that goes backwards or repeats records nothing and never makes phi negative,
    // NaN or infinite.
    #[test]
    fn backwards_and_repeated_times_are_harmless() {
        let (mut detector, last) = fed(PhiConfig::default(), &[1000; 10]);
        let count = detector.sample_count();
        detector.heartbeat(last);
        detector.heartbeat(Time::ZERO);
        assert_eq!(detector.sample_count(), count);
        assert_eq!(detector.last_heartbeat(), last);
        let phi = detector.phi(Time::ZERO);
        assert!(phi.is_finite() && phi >= 0.0);
    }

    // Configurations outside the documented ranges are refused rather than producing NaN.
    #[test]
    fn invalid_configs_are_refused() {
        let base = PhiConfig::default();
        assert!(base.validate().is_ok());
        let cases = [
            PhiConfig {
                threshold: f64::NAN,
                ..base
            },
            PhiConfig {
                threshold: 0.0,
                ..base
            },
            PhiConfig {
                threshold: f64::INFINITY,
                ..base
            },
            PhiConfig {
                max_sample_size: 0,
                ..base
            },
            PhiConfig {
                max_sample_size: MAX_SAMPLE_SIZE_LIMIT + 1,
                ..base
            },
            PhiConfig {
                min_std_deviation: Duration::ZERO,
                ..base
            },
            PhiConfig {
                first_heartbeat_estimate: Duration::ZERO,
                ..base
            },
            PhiConfig {
                first_heartbeat_estimate: Duration::from_secs(11),
                ..base
            },
            PhiConfig {
                max_sample_interval: Duration::ZERO,
                ..base
            },
            PhiConfig {
                max_sample_interval: Duration::from_secs(3601),
                ..base
            },
            PhiConfig {
                acceptable_heartbeat_pause: Duration::from_secs(3601),
                ..base
            },
        ];
        for config in cases {
            assert!(FailureDetector::new(config).is_err(), "{config:?} accepted");
            assert!(PhiAccrualDetector::new(config, Time::ZERO).is_err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // On any heartbeat times (in any order, with repeats) phi is finite, non-negative and
        // non-decreasing in the query time, and the window stays within its bound.
        #[test]
        fn no_nan_no_panic_any_times(
            times in proptest::collection::vec(any::<u64>(), 0..200),
            size in 1usize..20,
            queries in proptest::collection::vec(any::<u64>(), 1..20),
        ) {
            let config = PhiConfig { max_sample_size: size, ..PhiConfig::default() };
            let mut fd = FailureDetector::new(config).unwrap();
            for &t in &times {
                fd.heartbeat(PEER, Time(t));
            }
            let mut queries = queries;
            queries.sort_unstable();
            let mut previous = 0.0f64;
            for &q in &queries {
                let phi = fd.phi(PEER, Time(q));
                prop_assert!(phi.is_finite() && phi >= 0.0, "phi {} at {}", phi, q);
                prop_assert!(phi >= previous);
                previous = phi;
            }
            if let Some(detector) = fd.detector(PEER) {
                prop_assert!(detector.sample_count() <= size);
            }
        }

        // The running sums equal a recomputation over the retained intervals, whatever they are.
        #[test]
        fn running_sums_are_exact(
            intervals in proptest::collection::vec(1u64..10_000_000, 1..300),
            size in 1usize..50,
        ) {
            let mut window = IntervalWindow::new(size);
            for &i in &intervals {
                window.push(i);
            }
            let kept = &intervals[intervals.len().saturating_sub(size)..];
            let sum: u128 = kept.iter().map(|&x| u128::from(x)).sum();
            let squares: u128 = kept.iter().map(|&x| u128::from(x) * u128::from(x)).sum();
            prop_assert_eq!(window.len(), kept.len());
            prop_assert_eq!(window.sum_us, sum);
            prop_assert_eq!(window.sum_of_squares_us2, squares);
            prop_assert!(window.std_deviation_us() >= 0.0);
        }
    }
}
