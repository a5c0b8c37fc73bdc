//! The simulated clients' workload: which operation, on which key, how often.
//!
//! Each client is a sequential actor: it picks an operation by the mix, a key (uniform or
//! Zipfian), and a node at random, waits for the answer (or gives up after its timeout), then
//! thinks for an exponentially distributed time whose mean spreads the configured total rate
//! over the clients. A read-modify-write and a delete first read the key, then write with the
//! context of that read; a blind write passes no context; an overwrite passes none either and
//! supersedes what its coordinator holds.
//!
//! In probe mode ([`ProbeConfig`], for the quorum experiments) the mix is replaced: each client
//! writes its own key, reads it once a chosen delay after the ack, and starts again.
//!
//! Every value written is unique: its first 8 bytes are the write's id, so the oracle can tell
//! which write a read returned.
//!
//! In item mode ([`crate::item_workload`]) the mix is replaced too: clients run item
//! operations on two fixed tables.

use crate::item_workload::{ItemWorkload, ItemWorkloadError};
use rand::{Rng, RngExt};
use rand_distr::Distribution as _;
use serde::{Deserialize, Serialize};

/// The operation mix (weights, normalised).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpMix {
    /// Reads.
    pub get: f64,
    /// Read, then write with the read's context.
    pub rmw: f64,
    /// Write with no context.
    pub blind: f64,
    /// Read, then delete with the read's context.
    pub delete: f64,
    /// Overwrite: a write with no context that supersedes what its coordinator holds.
    pub overwrite: f64,
}

impl Default for OpMix {
    fn default() -> Self {
        Self {
            get: 0.5,
            rmw: 0.3,
            blind: 0.1,
            delete: 0.05,
            overwrite: 0.05,
        }
    }
}

/// The workload (a scenario's `[workload]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadConfig {
    /// How many clients.
    pub clients: usize,
    /// Total operations per second over all clients (a read-modify-write counts once).
    pub rate: f64,
    /// How many distinct keys.
    pub keys: u64,
    /// Zipfian exponent of key popularity; `None` for uniform keys.
    pub zipf: Option<f64>,
    /// The operation mix.
    pub mix: OpMix,
    /// Bytes per value (at least 8: the write id).
    pub value_bytes: usize,
    /// R for every read; `None` for the node's default.
    pub r: Option<u8>,
    /// W for every write; `None` for the node's default.
    pub w: Option<u8>,
    /// The visibility probe mode (replaces the mix): see [`ProbeConfig`].
    pub probe: Option<ProbeConfig>,
    /// Keep per-operation samples (latencies, t-visibility) for the experiments. Off by
    /// default: their memory grows with the run.
    pub samples: bool,
    /// The item workload (replaces the mix): see [`crate::item_workload`]. Off by default.
    pub items: Option<ItemWorkload>,
}

/// The visibility probe, for the quorum experiments (PBS t-visibility): client `c` is the only
/// writer of key `c % keys`; it writes (with the context of its previous write, so each write
/// supersedes the last), waits for the ack, waits a chosen delay, reads once, thinks, and
/// starts again. The read's delay after the ack cycles through `read_delays_ms`, so every delay
/// gets the same share of reads. When every client has done `cycles_per_client` cycles, the
/// workload ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Delays (ms) between a write's ack and its read, taken in turn.
    pub read_delays_ms: Vec<f64>,
    /// Write-then-read cycles each client runs.
    pub cycles_per_client: u64,
}

impl ProbeConfig {
    /// The read delay (µs) of client `client`'s cycle `cycle`.
    pub fn delay_micros(&self, client: usize, cycle: u64) -> u64 {
        if self.read_delays_ms.is_empty() {
            return 0;
        }
        let index = (client as u64).wrapping_add(cycle) % self.read_delays_ms.len() as u64;
        let ms = self.read_delays_ms[index as usize];
        (ms * 1000.0).clamp(0.0, 1e12) as u64
    }
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            clients: 10,
            rate: 100.0,
            keys: 50,
            zipf: None,
            mix: OpMix::default(),
            value_bytes: 16,
            r: None,
            w: None,
            probe: None,
            samples: false,
            items: None,
        }
    }
}

/// A workload that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkloadError {
    /// Zero clients, keys or rate.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The mix has no positive weight, or a negative one.
    #[error("the operation mix needs non-negative weights with a positive sum")]
    BadMix,
    /// The Zipf exponent is not positive and finite.
    #[error("zipf exponent {0} must be positive")]
    BadZipf(f64),
    /// The probe has no delay, a negative or non-finite one, or no cycle.
    #[error("probe: read_delays_ms must be non-empty, finite and >= 0, and cycles_per_client > 0")]
    BadProbe,
    /// The item workload is invalid.
    #[error(transparent)]
    Items(#[from] ItemWorkloadError),
    /// Both the probe and the item workload replace the mix: only one can.
    #[error("the probe and the item workload cannot run together")]
    ProbeAndItems,
}

/// What a client does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A read.
    Get,
    /// A read then a write with its context.
    ReadModifyWrite,
    /// A write without context.
    BlindWrite,
    /// A read then a delete with its context.
    Delete,
    /// A write that supersedes what its coordinator holds.
    Overwrite,
}

impl WorkloadConfig {
    /// Checks counts, the mix and the Zipf exponent.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.clients == 0 {
            return Err(WorkloadError::Zero("clients"));
        }
        if self.keys == 0 {
            return Err(WorkloadError::Zero("keys"));
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err(WorkloadError::Zero("rate"));
        }
        let m = &self.mix;
        let weights = [m.get, m.rmw, m.blind, m.delete, m.overwrite];
        let all_valid = weights.iter().all(|w| w.is_finite() && *w >= 0.0);
        let total = weights.iter().sum::<f64>();
        if !all_valid || total <= 0.0 {
            return Err(WorkloadError::BadMix);
        }
        if let Some(s) = self.zipf
            && !(s > 0.0 && s.is_finite())
        {
            return Err(WorkloadError::BadZipf(s));
        }
        if let Some(probe) = &self.probe {
            let delays_ok = !probe.read_delays_ms.is_empty()
                && probe
                    .read_delays_ms
                    .iter()
                    .all(|d| d.is_finite() && *d >= 0.0);
            if !delays_ok || probe.cycles_per_client == 0 {
                return Err(WorkloadError::BadProbe);
            }
        }
        if let Some(items) = &self.items {
            items.validate()?;
            if self.probe.is_some() {
                return Err(WorkloadError::ProbeAndItems);
            }
        }
        Ok(())
    }

    /// Draws the next operation.
    pub fn next_op<R: Rng + ?Sized>(&self, rng: &mut R) -> OpKind {
        let m = &self.mix;
        let total = m.get + m.rmw + m.blind + m.overwrite + m.delete;
        let mut x = rng.random_range(0.0..total);
        for (w, kind) in [
            (m.get, OpKind::Get),
            (m.rmw, OpKind::ReadModifyWrite),
            (m.blind, OpKind::BlindWrite),
            (m.overwrite, OpKind::Overwrite),
        ] {
            if x < w {
                return kind;
            }
            x -= w;
        }
        OpKind::Delete
    }

    /// Draws the next key index in `0..keys`.
    pub fn next_key<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self.zipf {
            Some(s) => match rand_distr::Zipf::new(self.keys as f64, s) {
                Ok(z) => (z.sample(rng) as u64).saturating_sub(1).min(self.keys - 1),
                Err(_) => rng.random_range(0..self.keys),
            },
            None => rng.random_range(0..self.keys),
        }
    }

    /// A client's think time in microseconds: exponential with mean `clients / rate` seconds.
    pub fn think_micros<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let mean_s = self.clients as f64 / self.rate;
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        (-u.ln() * mean_s * 1e6) as u64
    }
}

/// The key bytes of key index `k`.
pub fn key_name(k: u64) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

/// The key index of key bytes made by [`key_name`].
pub fn key_index(name: &[u8]) -> Option<u64> {
    std::str::from_utf8(name)
        .ok()?
        .strip_prefix("key-")?
        .parse()
        .ok()
}

/// The unique value of write `id`, `len` bytes long (at least 8).
pub fn value_of(id: u64, len: usize) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.resize(len.max(8), b'.');
    v
}

/// The write id a value carries, if it is one of ours.
pub fn write_id_of(value: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = value.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    // The mix, the key choice and values behave as configured.
    #[test]
    fn mix_keys_and_values() {
        let seed = 9;
        println!("seed {seed}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w = WorkloadConfig {
            zipf: Some(1.2),
            keys: 100,
            ..WorkloadConfig::default()
        };
        w.validate().unwrap();
        let n = 20_000;
        let gets = (0..n)
            .filter(|_| w.next_op(&mut rng) == OpKind::Get)
            .count();
        assert!((gets as f64 / n as f64 - 0.5).abs() < 0.02);
        let hot = (0..n).filter(|_| w.next_key(&mut rng) == 0).count();
        assert!(
            hot as f64 / n as f64 > 0.1,
            "key 0 is hot under zipf: {hot}"
        );
        assert!((0..n).all(|_| w.next_key(&mut rng) < 100));
        assert_eq!(write_id_of(&value_of(77, 16)), Some(77));
        assert_eq!(value_of(77, 3).len(), 8);
        let bad = WorkloadConfig {
            mix: OpMix {
                get: 0.0,
                rmw: 0.0,
                blind: 0.0,
                delete: 0.0,
                overwrite: 0.0,
            },
            ..WorkloadConfig::default()
        };
        assert_eq!(bad.validate(), Err(WorkloadError::BadMix));
    }
}
