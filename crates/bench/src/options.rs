//! What one benchmark run does: workload, keys, value size, load shape, stop rule, quorum and
//! seed ([`BenchOptions`]), and the checks that refuse a run that cannot mean anything.
//!
//! These are plain types, independent of the command line (`bench::cli` builds them from
//! flags), so tests and other front ends can describe a run directly.
//!
//! # Guarantees
//! - [`BenchOptions::validate`] accepts only runs that can start: at least one record, one
//!   client, a positive finite rate, a non-zero stop rule, a value no larger than
//!   [`MAX_VALUE_BYTES`], and at least one phase to run.
//!
//! # Limits
//! - The node may still refuse a valid run's requests (a value over its `max_value_bytes`, an R
//!   above N): those are counted as errors by kind, not refused here.

use super::workload::Workload;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest value the bench will generate: each in-flight operation holds one, so this
/// bounds the client's memory. A node's own limit (`max_value_bytes`) may be lower.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// How keys are drawn for reads and updates (YCSB's `requestdistribution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum KeyDistribution {
    /// YCSB's scrambled Zipfian (constant 0.99): a few hot keys spread over the key space.
    Zipfian,
    /// Every record equally likely.
    Uniform,
}

/// How an "update" of workloads A and B is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum UpdateMode {
    /// One request: an overwrite (`ClientOp::Overwrite`), a put whose coordinator supersedes
    /// every version its own replica holds. YCSB's update is one blind write; this is that
    /// write without a Dynamo store's sibling pile-up (versions the coordinator has not seen
    /// yet still become siblings, nothing is silently lost).
    Overwrite,
    /// Get the key, then put with the context of that get: the write supersedes what it read,
    /// as a Dynamo client should write. Costs two requests.
    Rmw,
    /// Put with an empty context, like YCSB's blind update. In a Dynamo store concurrent blind
    /// writes to one key become siblings, and past the store's sibling limit
    /// (`version::MAX_SIBLINGS`) they fail with `too_many_siblings`.
    Blind,
}

impl UpdateMode {
    /// The name on the command line and in reports.
    pub fn label(self) -> &'static str {
        match self {
            UpdateMode::Overwrite => "overwrite",
            UpdateMode::Rmw => "rmw",
            UpdateMode::Blind => "blind",
        }
    }
}

/// Which node each request is sent to (that node coordinates or forwards it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NodeChoice {
    /// A node drawn uniformly from the seeded RNG for every operation.
    Random,
    /// The nodes in turn; each client starts at a different node.
    RoundRobin,
}

/// How operations are issued.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoopShape {
    /// A fixed number of clients, each issuing its next operation when the previous one ends.
    /// Throughput is whatever the cluster sustains; latency is from each operation's start.
    Closed {
        /// How many clients.
        clients: usize,
    },
    /// Operations scheduled at a fixed rate (one every `1 / rate` seconds), each measured from
    /// its intended start. At most `max_inflight` run at once; later ones wait for a slot and
    /// that wait is part of their latency.
    Open {
        /// Operations per second.
        rate_per_s: f64,
        /// The most operations in flight at once.
        max_inflight: usize,
    },
}

/// When the run phase ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopAfter {
    /// No operation starts after this long (those in flight finish).
    Duration(Duration),
    /// Exactly this many operations.
    Operations(u64),
}

/// Per-request quorum and deadline, sent with every request (`None`: the node's default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestKnobs {
    /// Read quorum R.
    pub r: Option<u8>,
    /// Write quorum W.
    pub w: Option<u8>,
    /// The request's deadline, in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// Everything one `ringstore bench` run does.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchOptions {
    /// The YCSB core workload.
    pub workload: Workload,
    /// Key distribution for reads and updates (workload D always reads "latest").
    pub distribution: KeyDistribution,
    /// How many records the load phase inserts and the run phase addresses.
    pub records: u64,
    /// Bytes per value written.
    pub value_bytes: usize,
    /// Run the load phase (insert records `0..records`) first.
    pub load: bool,
    /// Run the run phase (the workload's mix).
    pub run: bool,
    /// Concurrent clients of the load phase.
    pub load_clients: usize,
    /// Closed or open loop for the run phase.
    pub shape: LoopShape,
    /// When the run phase ends.
    pub stop: StopAfter,
    /// R, W and deadline of every request.
    pub knobs: RequestKnobs,
    /// How A/B/D updates are sent.
    pub update_mode: UpdateMode,
    /// Which node each operation goes to.
    pub node_choice: NodeChoice,
    /// The seed every RNG of the run is derived from.
    pub seed: u64,
}

impl BenchOptions {
    /// A small closed-loop run of `workload` with YCSB-like defaults (100 000 records of 100
    /// bytes, Zipfian keys, 64 clients, 30 s, read-modify-write updates, random nodes).
    pub fn new(workload: Workload) -> Self {
        Self {
            workload,
            distribution: KeyDistribution::Zipfian,
            records: 100_000,
            value_bytes: 100,
            load: false,
            run: true,
            load_clients: 64,
            shape: LoopShape::Closed { clients: 64 },
            stop: StopAfter::Duration(Duration::from_secs(30)),
            knobs: RequestKnobs::default(),
            update_mode: UpdateMode::Overwrite,
            node_choice: NodeChoice::Random,
            seed: 1,
        }
    }

    /// Refuses a run that cannot start or cannot mean anything.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if !self.load && !self.run {
            return Err(OptionsError::NothingToDo);
        }
        if self.records == 0 {
            return Err(OptionsError::NoRecords);
        }
        if self.value_bytes > MAX_VALUE_BYTES {
            return Err(OptionsError::ValueTooLarge {
                len: self.value_bytes,
                max: MAX_VALUE_BYTES,
            });
        }
        if self.load_clients == 0 {
            return Err(OptionsError::NoClients);
        }
        match self.shape {
            LoopShape::Closed { clients: 0 } => return Err(OptionsError::NoClients),
            LoopShape::Open { rate_per_s, .. } if !(rate_per_s.is_finite() && rate_per_s > 0.0) => {
                return Err(OptionsError::BadRate(rate_per_s));
            }
            LoopShape::Open {
                max_inflight: 0, ..
            } => return Err(OptionsError::NoInflight),
            _ => {}
        }
        match self.stop {
            StopAfter::Duration(d) if d.is_zero() => Err(OptionsError::ZeroStop),
            StopAfter::Operations(0) => Err(OptionsError::ZeroStop),
            _ => Ok(()),
        }
    }
}

/// Why a run was refused before it started.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptionsError {
    /// Neither the load nor the run phase was asked for.
    #[error("nothing to do: --no-run without --load")]
    NothingToDo,
    /// `records` was 0.
    #[error("--records must be at least 1")]
    NoRecords,
    /// A phase had no clients.
    #[error("--clients must be at least 1")]
    NoClients,
    /// The open-loop rate was not a positive finite number.
    #[error("--rate must be a positive number of operations per second, not {0}")]
    BadRate(f64),
    /// The open loop allowed no operation in flight.
    #[error("--max-inflight must be at least 1")]
    NoInflight,
    /// The run would stop before its first operation.
    #[error("--duration and --operations must be above 0")]
    ZeroStop,
    /// The value size is above [`MAX_VALUE_BYTES`].
    #[error("--value-bytes {len} is above the bench's limit of {max}")]
    ValueTooLarge {
        /// The size asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_runs_are_refused() {
        // Goal: every way a run cannot start is refused with its own error.
        let ok = BenchOptions::new(Workload::A);
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(BenchOptions, OptionsError)> = vec![
            (
                BenchOptions {
                    run: false,
                    ..ok.clone()
                },
                OptionsError::NothingToDo,
            ),
            (
                BenchOptions {
                    records: 0,
                    ..ok.clone()
                },
                OptionsError::NoRecords,
            ),
            (
                BenchOptions {
                    shape: LoopShape::Closed { clients: 0 },
                    ..ok.clone()
                },
                OptionsError::NoClients,
            ),
            (
                BenchOptions {
                    shape: LoopShape::Open {
                        rate_per_s: f64::NAN,
                        max_inflight: 4,
                    },
                    ..ok.clone()
                },
                OptionsError::BadRate(f64::NAN),
            ),
            (
                BenchOptions {
                    shape: LoopShape::Open {
                        rate_per_s: 10.0,
                        max_inflight: 0,
                    },
                    ..ok.clone()
                },
                OptionsError::NoInflight,
            ),
            (
                BenchOptions {
                    stop: StopAfter::Operations(0),
                    ..ok.clone()
                },
                OptionsError::ZeroStop,
            ),
            (
                BenchOptions {
                    value_bytes: MAX_VALUE_BYTES + 1,
                    ..ok.clone()
                },
                OptionsError::ValueTooLarge {
                    len: MAX_VALUE_BYTES + 1,
                    max: MAX_VALUE_BYTES,
                },
            ),
        ];
        for (options, expected) in cases {
            let got = options.validate().unwrap_err();
            // NaN != NaN: compare the rendered messages.
            assert_eq!(got.to_string(), expected.to_string());
        }
    }
}
