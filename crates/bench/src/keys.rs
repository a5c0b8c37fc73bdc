//! Which key an operation touches: YCSB's key names and request distributions.
//!
//! Records are numbered `0..records` in insert order. A record's key is [`KEY_PREFIX`]
//! followed by a fixed-width number hashed from its index (YCSB's "hashed insert order"), so
//! consecutive inserts land on unrelated ring positions. Choosers:
//! - uniform: every record equally likely;
//! - scrambled Zipfian (YCSB's `ScrambledZipfianGenerator` idea): draw a Zipf rank with
//!   exponent [`ZIPFIAN_CONSTANT`] over `records`, then scramble it with a hash modulo
//!   `records`, so the hot records are spread over the key space instead of being the first
//!   ones inserted;
//! - latest (workload D, YCSB's `SkewedLatestGenerator`): a Zipf rank counted back from the
//!   newest acknowledged insert, so recent records are the hot ones.
//!
//! # Guarantees
//! - Distinct record indices give distinct keys (the index hash is a bijection on `u64`).
//! - Every chooser returns an index below the number of records it was built for; "latest"
//!   returns only records whose insert was acknowledged (every index below
//!   [`InsertCounter::acknowledged`]), so a D read never asks for a key still being written.
//!
//! # Limits
//! - Scrambling by hash-modulo merges some ranks and leaves some records never hot, as YCSB's
//!   does; the skew (a few records take most requests) is what matters.
//! - An insert that failed is still acknowledged (YCSB does the same), so a later read of it
//!   finds nothing and is counted as `not_found`.

use super::options::KeyDistribution;
use rand::Rng;
use rand_distr::{Distribution, Zipf};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every key starts with this, as in YCSB.
pub const KEY_PREFIX: &str = "user";

/// YCSB's Zipfian constant: the exponent of the rank-frequency law.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;

/// Digits of the number after [`KEY_PREFIX`]: enough for every `u64`, so all keys have the same
/// length.
pub const KEY_DIGITS: usize = 20;

/// Salt that makes the Zipf scramble hash differ from the key-name hash.
const SCRAMBLE_SALT: u64 = 0x5bd1_e995_9e37_79b9;

/// A bijective 64-bit mix (splitmix64's finaliser): neighbouring inputs give unrelated outputs.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key of record `index`: `user` and a zero-padded hash of the index.
pub fn key_name(index: u64) -> Vec<u8> {
    format!("{KEY_PREFIX}{:0width$}", mix64(index), width = KEY_DIGITS).into_bytes()
}

/// Hands out insert indices and tracks which inserts have been acknowledged, for workload D
/// (YCSB's acknowledged counter): reads of "latest" only ask for acknowledged records.
#[derive(Debug)]
pub struct InsertCounter {
    /// The next index an insert will claim.
    next: AtomicU64,
    /// Every index below this was acknowledged (mirror of `window.below` for lock-free reads).
    acknowledged: AtomicU64,
    /// Acknowledgements that arrived out of order.
    window: Mutex<AckWindow>,
}

#[derive(Debug)]
struct AckWindow {
    below: u64,
    out_of_order: BTreeSet<u64>,
}

impl InsertCounter {
    /// A counter for a store already holding records `0..existing`.
    pub fn new(existing: u64) -> Self {
        Self {
            next: AtomicU64::new(existing),
            acknowledged: AtomicU64::new(existing),
            window: Mutex::new(AckWindow {
                below: existing,
                out_of_order: BTreeSet::new(),
            }),
        }
    }

    /// Claims the next record index for an insert.
    pub fn claim(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks the insert of `index` as finished (whatever its outcome).
    pub fn ack(&self, index: u64) {
        let mut window = match self.window.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if index < window.below {
            return;
        }
        window.out_of_order.insert(index);
        loop {
            let below = window.below;
            if !window.out_of_order.remove(&below) {
                break;
            }
            window.below = below + 1;
        }
        self.acknowledged.store(window.below, Ordering::Release);
    }

    /// How many records exist for readers: every index below this was acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Acquire)
    }

    /// How many inserts were claimed (records that exist or are being written).
    pub fn claimed(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

/// Draws the record index of a read or update.
#[derive(Clone, Debug)]
pub enum KeyChooser {
    /// Every record in `0..records` equally likely.
    Uniform {
        /// The number of records.
        records: u64,
    },
    /// YCSB's scrambled Zipfian over `0..records`.
    ScrambledZipfian {
        /// The number of records.
        records: u64,
        /// Zipf over ranks `1..=records`.
        zipf: Zipf<f64>,
    },
    /// Zipf over recency: rank 1 is the newest acknowledged insert.
    Latest,
}

impl KeyChooser {
    /// A chooser for `distribution` over `records` records (at least 1).
    pub fn new(distribution: KeyDistribution, records: u64) -> Self {
        match distribution {
            KeyDistribution::Uniform => KeyChooser::Uniform { records },
            KeyDistribution::Zipfian => match Zipf::new(records.max(1) as f64, ZIPFIAN_CONSTANT) {
                Ok(zipf) => KeyChooser::ScrambledZipfian { records, zipf },
                // Unreachable for records >= 1 and a positive constant; uniform is the safe
                // fallback rather than a panic.
                Err(_) => KeyChooser::Uniform { records },
            },
        }
    }

    /// The next record index. `inserts` supplies the newest record for [`KeyChooser::Latest`].
    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R, inserts: &InsertCounter) -> u64 {
        match self {
            KeyChooser::Uniform { records } => uniform_below(rng, *records),
            KeyChooser::ScrambledZipfian { records, zipf } => {
                let rank = zipf_rank(zipf.sample(rng), *records);
                mix64(rank ^ SCRAMBLE_SALT) % records.max(&1)
            }
            KeyChooser::Latest => {
                let newest = inserts.acknowledged();
                if newest == 0 {
                    return 0;
                }
                let rank = match Zipf::new(newest as f64, ZIPFIAN_CONSTANT) {
                    Ok(zipf) => zipf_rank(zipf.sample(rng), newest),
                    Err(_) => 0,
                };
                newest - 1 - rank
            }
        }
    }
}

/// A Zipf sample (a float in `1..=n`) as a rank in `0..n`.
fn zipf_rank(sample: f64, n: u64) -> u64 {
    (sample as u64).saturating_sub(1).min(n.saturating_sub(1))
}

/// A uniform index in `0..n` (0 when `n` is 0).
fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    use rand::RngExt;
    if n == 0 { 0 } else { rng.random_range(0..n) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    const SEED: u64 = 0xbe7c_0001;

    /// How many of `draws` samples the most popular 1% of `records` received.
    fn top_percent_share(chooser: &KeyChooser, records: u64, draws: usize) -> f64 {
        println!("seed {SEED}");
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let inserts = InsertCounter::new(records);
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for _ in 0..draws {
            let index = chooser.next(&mut rng, &inserts);
            assert!(index < records, "index {index} out of 0..{records}");
            *counts.entry(index).or_default() += 1;
        }
        let mut sorted: Vec<usize> = counts.into_values().collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top = (records as usize / 100).max(1);
        sorted.iter().take(top).sum::<usize>() as f64 / draws as f64
    }

    #[test]
    fn zipfian_is_skewed_and_uniform_is_not() {
        // Goal: with YCSB's constant, the hottest 1% of records take a large share of the
        // requests under Zipfian and about 1% under uniform; all indices stay in range.
        let records = 10_000;
        let zipf = top_percent_share(
            &KeyChooser::new(KeyDistribution::Zipfian, records),
            records,
            50_000,
        );
        let uniform = top_percent_share(
            &KeyChooser::new(KeyDistribution::Uniform, records),
            records,
            50_000,
        );
        // Zipf(0.99) over 10^4 ranks: the top 100 ranks hold ~ H(100)/H(10^4) ≈ 0.5 of the mass.
        assert!(zipf > 0.35, "zipfian top-1% share {zipf}");
        assert!(uniform < 0.03, "uniform top-1% share {uniform}");
    }

    #[test]
    fn keys_are_distinct_and_fixed_width() {
        // Goal: the key hash never maps two records to one key, and every key has one length.
        let keys: std::collections::HashSet<Vec<u8>> = (0..100_000).map(key_name).collect();
        assert_eq!(keys.len(), 100_000);
        assert!(
            keys.iter()
                .all(|k| k.len() == KEY_PREFIX.len() + KEY_DIGITS)
        );
        assert_eq!(key_name(7), key_name(7));
        assert!(key_name(u64::MAX).starts_with(KEY_PREFIX.as_bytes()));
    }

    #[test]
    fn latest_reads_only_acknowledged_records_and_favours_new_ones() {
        // Goal: workload D's chooser never returns an insert still in flight, and the newest
        // records are the most requested.
        let inserts = InsertCounter::new(1000);
        let claimed: Vec<u64> = (0..3).map(|_| inserts.claim()).collect();
        assert_eq!(claimed, vec![1000, 1001, 1002]);
        // 1001 and 1002 finish before 1000: nothing new is readable yet.
        inserts.ack(1002);
        inserts.ack(1001);
        assert_eq!(inserts.acknowledged(), 1000);
        inserts.ack(1000);
        assert_eq!(inserts.acknowledged(), 1003);

        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        println!("seed {SEED}");
        let chooser = KeyChooser::Latest;
        let draws: Vec<u64> = (0..20_000)
            .map(|_| chooser.next(&mut rng, &inserts))
            .collect();
        assert!(draws.iter().all(|&i| i < 1003));
        let newest_ten = draws.iter().filter(|&&i| i >= 993).count();
        let oldest_ten = draws.iter().filter(|&&i| i < 10).count();
        assert!(
            newest_ten > 10 * oldest_ten.max(1),
            "newest {newest_ten} oldest {oldest_ten}"
        );
    }
}
