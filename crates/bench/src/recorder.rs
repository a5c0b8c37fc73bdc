//! What a worker measured: an HdrHistogram of successful latencies, and counts of successes,
//! errors by kind and reads that found nothing, per operation type and per request type.
//!
//! Each worker (a closed-loop client, an open-loop slot, a load client) owns a [`Recorder`], so
//! recording takes no lock; the runner merges them when the phase ends. Live totals for the
//! progress line go through [`LiveCounters`] (two relaxed atomic adds per operation).
//!
//! Two levels are recorded:
//! - operations (read, update, insert, rmw, load): what the workload asked, timed from the
//!   operation's start (closed loop) or intended start (open loop) to its end;
//! - requests (get, put): each network call, timed from when it was sent. A read-modify-write
//!   is one operation and two requests.
//!
//! # Guarantees
//! - Latencies are in microseconds, from 1 µs to [`MAX_LATENCY_US`] with
//!   [`SIGNIFICANT_DIGITS`] significant digits (0.1% relative error); a longer latency is
//!   recorded as the maximum, never dropped.
//! - Every operation is counted once: as a success (in the histogram) or as an error of one
//!   kind.
//!
//! # Limits
//! - Failed operations' latencies are not in the histograms (a timeout would dominate them);
//!   they are counted by kind.

use super::workload::OpKind;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest latency a histogram holds (one hour, in µs); longer ones are clamped to it.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Significant decimal digits the histograms keep.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// `duration` in whole microseconds, the histograms' unit (saturating: no duration is lost).
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Why a histogram could not be built or merged (only if the constants above were wrong).
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// The bounds were refused.
    #[error("latency histogram: {0}")]
    Create(#[from] hdrhistogram::CreationError),
    /// Two histograms did not merge.
    #[error("latency histogram merge: {0}")]
    Merge(#[from] hdrhistogram::AdditionError),
}

/// The request types (one per network call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// A get.
    Get,
    /// A put.
    Put,
}

impl RequestKind {
    /// Both, in report order.
    pub const ALL: [RequestKind; 2] = [RequestKind::Get, RequestKind::Put];

    /// The name in reports and JSON.
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Get => "get",
            RequestKind::Put => "put",
        }
    }

    fn index(self) -> usize {
        match self {
            RequestKind::Get => 0,
            RequestKind::Put => 1,
        }
    }
}

/// Counts and latencies of one operation or request type.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Latencies of the successes, in µs.
    pub histogram: Histogram<u64>,
    /// Successes.
    pub ok: u64,
    /// Failures by `CallError::kind()`.
    pub errors: BTreeMap<&'static str, u64>,
    /// Successful reads that found no value (the key was never loaded, or not yet visible).
    pub not_found: u64,
}

impl Stats {
    /// Empty stats. The histogram starts small and grows to the largest latency it records
    /// (up to [`MAX_LATENCY_US`]): one sized for an hour from the start is 184 KiB, and an
    /// open loop's hundreds of workers each hold eight.
    pub fn new() -> Result<Self, HistogramError> {
        Ok(Self {
            histogram: Histogram::new(SIGNIFICANT_DIGITS)?,
            ok: 0,
            errors: BTreeMap::new(),
            not_found: 0,
        })
    }

    /// Records a success that took `latency`.
    pub fn record_ok(&mut self, latency: Duration) {
        let micros = micros(latency).clamp(1, MAX_LATENCY_US);
        // `record` grows the histogram to the value (`saturating_record` would clamp it to
        // the current top instead); it fails only if growing fails, and then the value is
        // kept as the largest the histogram holds rather than lost.
        if self.histogram.record(micros).is_err() {
            self.histogram.saturating_record(micros);
        }
        self.ok += 1;
    }

    /// Records a failure of kind `kind`.
    pub fn record_error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Failures of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) -> Result<(), HistogramError> {
        self.histogram.add(&other.histogram)?;
        self.ok += other.ok;
        self.not_found += other.not_found;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        Ok(())
    }
}

/// Totals shared by every worker of a phase, read by the progress line.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Operations finished (successes and failures).
    pub done: AtomicU64,
    /// Operations that failed.
    pub errors: AtomicU64,
    /// The longest latency (µs) of an operation finished since the timeline last took it.
    pub max_latency_us: AtomicU64,
}

impl LiveCounters {
    /// Finished operations so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Failed operations so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The longest latency since the last call (µs), resetting it.
    pub fn take_max_latency_us(&self) -> u64 {
        self.max_latency_us.swap(0, Ordering::Relaxed)
    }
}

/// How an operation ended, as the runner records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    /// It succeeded.
    Ok {
        /// A read (or the read of a read-modify-write) found no value.
        not_found: bool,
    },
    /// It failed with this `CallError::kind()`.
    Failed(&'static str),
}

/// One worker's measurements.
#[derive(Clone, Debug)]
pub struct Recorder {
    ops: Vec<Stats>,
    requests: Vec<Stats>,
    start_delay: Stats,
    live: Arc<LiveCounters>,
}

impl Recorder {
    /// An empty recorder that also counts into `live`.
    pub fn new(live: Arc<LiveCounters>) -> Result<Self, HistogramError> {
        let empty = Stats::new()?;
        Ok(Self {
            ops: vec![empty.clone(); OpKind::ALL.len()],
            requests: vec![empty.clone(); RequestKind::ALL.len()],
            start_delay: empty,
            live,
        })
    }

    /// Records an operation of `kind` that ended with `outcome` after `latency`.
    pub fn record_op(&mut self, kind: OpKind, latency: Duration, outcome: OpOutcome) {
        let stats = &mut self.ops[kind.index()];
        match outcome {
            OpOutcome::Ok { not_found } => {
                stats.record_ok(latency);
                if not_found {
                    stats.not_found += 1;
                }
            }
            OpOutcome::Failed(error) => {
                stats.record_error(error);
                self.live.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.live
            .max_latency_us
            .fetch_max(micros, Ordering::Relaxed);
        self.live.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one request of `kind`: its latency if it succeeded, its error kind otherwise.
    pub fn record_request(
        &mut self,
        kind: RequestKind,
        latency: Duration,
        error: Option<&'static str>,
    ) {
        let stats = &mut self.requests[kind.index()];
        match error {
            None => stats.record_ok(latency),
            Some(error) => stats.record_error(error),
        }
    }

    /// Marks the last successful `kind` request as a read that found nothing.
    pub fn record_request_not_found(&mut self, kind: RequestKind) {
        self.requests[kind.index()].not_found += 1;
    }

    /// Records how long after its intended start an open-loop operation was sent (timer
    /// resolution plus waiting for a free slot).
    pub fn record_start_delay(&mut self, delay: Duration) {
        self.start_delay.record_ok(delay);
    }

    /// Open loop: the delays between intended starts and sends.
    pub fn start_delay(&self) -> &Stats {
        &self.start_delay
    }

    /// The stats of operations of `kind`.
    pub fn op(&self, kind: OpKind) -> &Stats {
        &self.ops[kind.index()]
    }

    /// The stats of requests of `kind`.
    pub fn request(&self, kind: RequestKind) -> &Stats {
        &self.requests[kind.index()]
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Recorder) -> Result<(), HistogramError> {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.merge(theirs)?;
        }
        for (mine, theirs) in self.requests.iter_mut().zip(&other.requests) {
            mine.merge(theirs)?;
        }
        self.start_delay.merge(&other.start_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_latencies() {
        // Goal: merging two workers' recorders loses no operation, error or latency.
        let live = Arc::new(LiveCounters::default());
        let mut a = Recorder::new(Arc::clone(&live)).unwrap();
        let mut b = Recorder::new(Arc::clone(&live)).unwrap();
        a.record_op(
            OpKind::Read,
            Duration::from_micros(100),
            OpOutcome::Ok { not_found: true },
        );
        b.record_op(
            OpKind::Read,
            Duration::from_micros(900),
            OpOutcome::Ok { not_found: false },
        );
        b.record_op(
            OpKind::Read,
            Duration::from_micros(5),
            OpOutcome::Failed("connection"),
        );
        b.record_request(
            RequestKind::Put,
            Duration::from_micros(7),
            Some("quorum_failed"),
        );
        a.merge(&b).unwrap();
        let read = a.op(OpKind::Read);
        assert_eq!(read.ok, 2);
        assert_eq!(read.not_found, 1);
        assert_eq!(read.errors.get("connection"), Some(&1));
        assert_eq!(read.histogram.len(), 2);
        assert!(read.histogram.max() >= 900);
        assert_eq!(
            a.request(RequestKind::Put).errors.get("quorum_failed"),
            Some(&1)
        );
        assert_eq!(live.done(), 3);
        assert_eq!(live.errors(), 1);
    }

    #[test]
    fn a_histogram_grows_to_the_latencies_it_records() {
        // Goal: a fresh histogram is small, yet a latency far above its starting range is kept
        // as itself, not clamped to that range.
        let mut stats = Stats::new().unwrap();
        let small = stats.histogram.distinct_values();
        stats.record_ok(Duration::from_micros(3));
        stats.record_ok(Duration::from_secs(10));
        assert!(
            stats
                .histogram
                .equivalent(stats.histogram.max(), 10_000_000)
        );
        assert!(stats.histogram.equivalent(stats.histogram.min(), 3));
        assert!(stats.histogram.distinct_values() > small, "it grew");
        let mut merged = Stats::new().unwrap();
        merged.merge(&stats).unwrap();
        assert!(
            merged
                .histogram
                .equivalent(merged.histogram.max(), 10_000_000)
        );
    }

    #[test]
    fn huge_latencies_are_clamped_not_lost() {
        // Goal: a latency above the histogram's range is still counted (as the maximum).
        let mut stats = Stats::new().unwrap();
        stats.record_ok(Duration::from_secs(10 * 3600));
        stats.record_ok(Duration::ZERO);
        assert_eq!(stats.histogram.len(), 2);
        assert!(stats.histogram.max() >= MAX_LATENCY_US);
    }
}
