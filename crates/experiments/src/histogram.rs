//! Millisecond histograms behind the quorum experiments' percentiles and t-visibility curves, so
//! that millions of samples per second are summarised without keeping any of them.
//!
//! A thin layer over [`hdrhistogram`], which only counts integers: it picks the unit and the
//! range once for every caller, and gives non-positive values (the reads that were consistent
//! at once, for a staleness threshold `t*`) their own exact bucket.
//!
//! # Guarantees
//! - Values are counted in whole picoseconds, with [`SIGNIFICANT_DIGITS`] = 3: from 1.024 ns to
//!   [`MAX_MS`] every bucket is at most 1/1024 of its values wide, and below 1.024 ns buckets
//!   are 1 ps wide. (The hand-written histogram this replaced had 1/256-wide buckets between
//!   2^-14 ms and 2^27 ms.)
//! - A quantile is the top of its bucket: never below the exact order statistic, and above it
//!   by at most 0.1% plus 1 ps. So `fraction_at_or_below(quantile(p)) >= p` holds exactly.
//! - Values `<= 0` (and NaN) are recorded as exactly 0, and positive values round up to the next
//!   whole picosecond, so `fraction_at_or_below(0.0)` counts exactly the non-positive samples.
//! - Merging is addition, so the result of a parallel run does not depend on how the samples
//!   were split between threads.
//!
//! # Limits
//! - Values above [`MAX_MS`] are counted as [`MAX_MS`].
//! - Each histogram holds 48 × 1024 counters (384 KiB), whatever it records.
//! - Recording is a call into hdrhistogram that does not get inlined: a WARS run at N = 3 takes
//!   about 15% more CPU time than with the hand-written histogram, at N = 16 (288 histograms
//!   per thread, 110 MiB) about twice as much.

use hdrhistogram::Histogram;
use serde::Serialize;

/// HdrHistogram's precision: 3 digits is the least that is at least as fine as the 1/256-wide
/// buckets the tables were first checked with (2 digits gives 1/128).
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Largest distinguished value: 2^27 ms, about 37 hours, far beyond any profile's tail.
pub const MAX_MS: f64 = 134_217_728.0;

/// Picoseconds: fine enough that the 1/1024 relative precision reaches down to 1 ns.
const UNITS_PER_MS: f64 = 1e9;
const MAX_UNITS: u64 = 134_217_728 * 1_000_000_000;

/// A histogram of millisecond values.
#[derive(Clone, Debug, PartialEq)]
pub struct LogHistogram {
    inner: Histogram<u64>,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// p50, p99 and p99.9 of a latency, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// Rounds a positive value up to the next whole picosecond (at most 1 ps up), so that it never
/// lands in the bucket of exact zeros, and maps every value through the same non-decreasing
/// function, so that a sample at or below a threshold is never counted above it. Truncating
/// and adding 1 rather than `ceil`, which is a libm call on baseline x86-64 (3% of a WARS run).
fn to_units(value_ms: f64) -> u64 {
    if value_ms > 0.0 {
        // `as` truncates and saturates: infinity becomes u64::MAX, which recording clamps to
        // MAX_UNITS.
        ((value_ms * UNITS_PER_MS) as u64).saturating_add(1)
    } else {
        0
    }
}

impl LogHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let inner = Histogram::new_with_bounds(1, MAX_UNITS, SIGNIFICANT_DIGITS)
            // The bounds are constants that satisfy every condition hdrhistogram checks (low
            // >= 1, high >= 2 low, at most 5 digits); every test builds one.
            .expect("constant histogram bounds are valid");
        Self { inner }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, value_ms: f64) {
        self.inner.saturating_record(to_units(value_ms));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LogHistogram) {
        self.inner
            .add(&other.inner)
            // Addition only fails when `other` holds values beyond this histogram's range; both
            // come from `new` and recording clamps to that range.
            .expect("histograms of the same bounds always add");
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.inner.len()
    }

    /// The fraction of samples `<= value_ms` (a sample in the same bucket as `value_ms` counts
    /// as below it). 1 for an empty histogram.
    pub fn fraction_at_or_below(&self, value_ms: f64) -> f64 {
        self.inner.quantile_below(to_units(value_ms))
    }

    /// The smallest value `v` with at least a fraction `p` of the samples `<= v` (0 when the
    /// non-positive samples already make up `p`), as the top of its bucket. 0 for an empty
    /// histogram.
    pub fn quantile(&self, p: f64) -> f64 {
        self.inner.value_at_quantile(p) as f64 / UNITS_PER_MS
    }

    /// p50, p99 and p99.9.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Quantiles are the exact order statistic or at most 0.1% above it.
    #[test]
    fn quantiles_match_sorted_samples() {
        let values: Vec<f64> = (1..=10_000).map(|i| (i as f64).powf(1.7) / 100.0).collect();
        let mut h = LogHistogram::new();
        for &v in &values {
            h.record(v);
        }
        for p in [0.5, 0.9, 0.99, 0.999] {
            let exact = values[(p * values.len() as f64).ceil() as usize - 1];
            let got = h.quantile(p);
            assert!(
                got >= exact && (got - exact) / exact <= 1.0 / 1024.0,
                "p{p}: {got} vs {exact}"
            );
        }
        assert_eq!(h.total(), 10_000);
    }

    // The precision holds over the whole range the old histogram covered (2^-14 ms to 2^27
    // ms), not just where latencies usually are: a coarser unit (whole nanoseconds) fails at
    // the bottom, a coarser precision (2 digits) everywhere.
    #[test]
    fn precision_holds_across_the_range() {
        let mut value = 1.0 / 16384.0;
        while value <= MAX_MS {
            for v in [value, value * 1.37, value * 1.999].map(|v| v.min(MAX_MS)) {
                let mut h = LogHistogram::new();
                h.record(v);
                let got = h.quantile(1.0);
                assert!(
                    got >= v * (1.0 - 1e-12) && (got - v) / v <= 1.0 / 1024.0,
                    "{v} ms reported as {got} ms"
                );
                assert_eq!(h.fraction_at_or_below(v), 1.0, "{v} ms");
                assert_eq!(h.fraction_at_or_below(v * 0.99), 0.0, "{v} ms");
            }
            value *= 2.0;
        }
    }

    // Non-positive samples count as "at or below" every threshold and make quantiles zero; a
    // tiny positive sample is not mistaken for one.
    #[test]
    fn non_positive_samples_are_counted_apart() {
        let mut h = LogHistogram::new();
        for _ in 0..999 {
            h.record(-1.0);
        }
        h.record(0.0);
        h.record(f64::NAN);
        h.record(1e-12);
        h.record(50.0);
        assert_eq!(h.quantile(0.99), 0.0);
        // The 1002nd sample is the 1e-12 ms one, counted as 1 ps.
        let tiny = h.quantile(1001.5 / 1003.0);
        assert!(tiny > 0.0 && tiny <= 1e-9, "{tiny}");
        assert!(h.quantile(1.0) >= 50.0);
        assert!((h.fraction_at_or_below(0.0) - 1001.0 / 1003.0).abs() < 1e-12);
        assert!((h.fraction_at_or_below(-5.0) - 1001.0 / 1003.0).abs() < 1e-12);
        assert_eq!(h.fraction_at_or_below(60.0), 1.0);
        assert_eq!(LogHistogram::new().fraction_at_or_below(1.0), 1.0);
        assert_eq!(LogHistogram::new().quantile(0.5), 0.0);
    }

    // Values beyond the range are counted at its top, not dropped.
    #[test]
    fn values_beyond_the_range_are_clamped() {
        let mut h = LogHistogram::new();
        h.record(1e12);
        h.record(f64::INFINITY);
        assert_eq!(h.total(), 2);
        let top = h.quantile(1.0);
        assert!(
            (MAX_MS..=MAX_MS * (1.0 + 1.0 / 1024.0)).contains(&top),
            "{top}"
        );
    }

    // Merging two halves gives the histogram of the whole.
    #[test]
    fn merge_is_addition() {
        let (mut a, mut b, mut whole) = (
            LogHistogram::new(),
            LogHistogram::new(),
            LogHistogram::new(),
        );
        for i in 0..1000 {
            let v = i as f64 * 0.37 - 20.0;
            if i % 2 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            whole.record(v);
        }
        a.merge(&b);
        assert_eq!(a, whole);
        assert_eq!(a.total(), 1000);
    }
}
