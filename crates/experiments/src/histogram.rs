//! A log-bucketed histogram of millisecond values, for the quorum experiments' percentiles and
//! t-visibility curves without keeping every sample.
//!
//! Buckets follow the bits of an `f64`, as HDR histograms do: the exponent picks the octave and
//! the top [`SUB_BUCKET_BITS`] bits of the mantissa the bucket inside it, so indexing is a shift
//! and a subtraction (millions of samples per second, no logarithm) and every bucket is
//! `1/2^SUB_BUCKET_BITS` of its octave wide.
//!
//! # Guarantees
//! - A recorded positive value lies in a bucket whose bounds are within a factor
//!   `1 + 2^-SUB_BUCKET_BITS` (0.4%) of each other; quantiles are reported as the bucket's
//!   midpoint, so their relative error is at most 0.2% inside [`MIN_MS`, `MAX_MS`].
//! - Values `<= 0` (and NaN) are counted apart: for a staleness threshold `t*` they are the
//!   reads that were consistent at once.
//! - Merging is addition, so the result of a parallel run does not depend on how the samples
//!   were split between threads.
//!
//! # Limits
//! - Values below [`MIN_MS`] fall in the first bucket and values above [`MAX_MS`] in the last.

use serde::Serialize;

/// Bits of mantissa that select the bucket inside an octave (256 buckets per octave).
pub const SUB_BUCKET_BITS: u32 = 8;
/// Smallest distinguished value: 2^-14 ms, about 61 ns.
pub const MIN_MS: f64 = 1.0 / 16384.0;
/// Largest distinguished value: 2^27 ms, about 37 hours.
pub const MAX_MS: f64 = 134_217_728.0;

const MIN_EXPONENT: i64 = -14;
const MAX_EXPONENT: i64 = 27;
const MANTISSA_BITS: u32 = 52;
const EXPONENT_BIAS: i64 = 1023;
const BUCKETS: usize = ((MAX_EXPONENT - MIN_EXPONENT) as usize) << SUB_BUCKET_BITS;
/// The index key of the first bucket.
const FIRST_KEY: i64 = (EXPONENT_BIAS + MIN_EXPONENT) << SUB_BUCKET_BITS;

/// A histogram of millisecond values.
#[derive(Clone, Debug, PartialEq)]
pub struct LogHistogram {
    /// Samples `<= 0` or NaN.
    non_positive: u64,
    buckets: Vec<u64>,
    total: u64,
    max_ms: f64,
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

impl LogHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            non_positive: 0,
            buckets: vec![0; BUCKETS],
            total: 0,
            max_ms: 0.0,
        }
    }

    fn index(value_ms: f64) -> usize {
        let key = (value_ms.to_bits() >> (MANTISSA_BITS - SUB_BUCKET_BITS)) as i64;
        (key - FIRST_KEY).clamp(0, BUCKETS as i64 - 1) as usize
    }

    fn lower_bound(index: usize) -> f64 {
        let key = (index as i64 + FIRST_KEY) as u64;
        f64::from_bits(key << (MANTISSA_BITS - SUB_BUCKET_BITS))
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, value_ms: f64) {
        self.total += 1;
        if value_ms > 0.0 {
            self.buckets[Self::index(value_ms)] += 1;
            if value_ms > self.max_ms {
                self.max_ms = value_ms;
            }
        } else {
            self.non_positive += 1;
        }
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LogHistogram) {
        self.non_positive += other.non_positive;
        self.total += other.total;
        self.max_ms = self.max_ms.max(other.max_ms);
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The largest sample recorded (0 if none was positive).
    pub fn max_ms(&self) -> f64 {
        self.max_ms
    }

    /// The fraction of samples `<= value_ms` (a sample in the same bucket as `value_ms` counts
    /// as below it). 1 for an empty histogram.
    pub fn fraction_at_or_below(&self, value_ms: f64) -> f64 {
        if self.total == 0 {
            return 1.0;
        }
        let mut count = self.non_positive;
        if value_ms > 0.0 {
            let last = Self::index(value_ms);
            count += self.buckets[..=last].iter().sum::<u64>();
        }
        count as f64 / self.total as f64
    }

    /// The smallest value `v` with at least a fraction `p` of the samples `<= v` (0 when the
    /// non-positive samples already make up `p`), as its bucket's midpoint. 0 for an empty
    /// histogram.
    pub fn quantile(&self, p: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let target = ((p.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = self.non_positive;
        if seen >= target {
            return 0.0;
        }
        for (index, &count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= target {
                let low = Self::lower_bound(index);
                let high = Self::lower_bound(index + 1);
                return ((low + high) / 2.0).min(self.max_ms);
            }
        }
        self.max_ms
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

    // Quantiles land within the bucket precision of the exact order statistic.
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
                (got - exact).abs() / exact < 0.003,
                "p{p}: {got} vs {exact}"
            );
        }
        assert_eq!(h.total(), 10_000);
    }

    // Non-positive samples count as "at or below" every threshold and make quantiles zero.
    #[test]
    fn non_positive_samples_are_counted_apart() {
        let mut h = LogHistogram::new();
        for _ in 0..999 {
            h.record(-1.0);
        }
        h.record(0.0);
        h.record(50.0);
        assert_eq!(h.quantile(0.999), 0.0);
        assert!(h.quantile(1.0) > 49.0);
        assert!((h.fraction_at_or_below(0.0) - 1000.0 / 1001.0).abs() < 1e-12);
        assert_eq!(h.fraction_at_or_below(60.0), 1.0);
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
    }
}
