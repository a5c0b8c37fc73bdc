//! [`NodeConfig`]: every knob of the node core in one place, with documented defaults.
//!
//! The core reads nothing else: no environment, no files. The runtime fills this from a config
//! file (durations written as `"200ms"`, `"2s"`, `"3h"`); the simulator from its scenario. [`NodeConfig::validate`] refuses inconsistent values
//! with an error that names the field.
//!
//! # Invariants (after `validate`)
//! - `1 <= r <= n`, `1 <= w <= n`, `n <= MAX_REPLICAS`;
//! - every interval and timeout is non-zero;
//! - `hint_window < tombstone_grace`: a hint for a key is dropped before that key's tombstone
//!   may be collected, so a stale hint cannot resurrect a collected delete.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest replication factor accepted.
pub const MAX_REPLICAS: u8 = 16;

/// Which replicas a get asks (see [`NodeConfig::read_fanout`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFanout {
    /// Every one of the N targets: read repair reaches every replica that answers.
    #[default]
    All,
    /// R targets (the coordinator first when it is one); the others only after a failure or
    /// `read_speculate_after`. Replicas not asked are left to anti-entropy.
    Quorum,
}

/// Timings and limits of one node. `Default` gives a LAN cluster of a few nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Replicas per key (Dynamo's N). Default 3.
    pub n: u8,
    /// Default read quorum (R); a request may ask for another. Default 2.
    pub r: u8,
    /// Default write quorum (W); a request may ask for another. Default 2.
    pub w: u8,
    /// Virtual nodes (tokens) this node owns on the ring: its weight. Default 256 (the
    /// balance measured in docs/ring.md).
    pub vnodes: u32,
    /// Default time a client request may take before it fails. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long the coordinator waits for a replica before it sends the write to the next
    /// healthy node of the extended preference list with a hint (sloppy quorum). Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub sloppy_after: Duration,
    /// Which replicas a get asks: all N (`all`, Dynamo's and Riak's way, the default) or R
    /// (`quorum`, Cassandra's way: fewer messages and store reads per get, more only when one
    /// fails or is slower than `read_speculate_after`).
    pub read_fanout: ReadFanout,
    /// With `read_fanout = "quorum"`: how long a get waits for its R replicas before it asks
    /// the remaining ones too (speculative retry). Default 20 ms.
    #[serde(with = "humantime_serde")]
    pub read_speculate_after: Duration,
    /// Gossip round interval: heartbeat and membership exchange. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub gossip_interval: Duration,
    /// Phi above which a peer is judged down (phi accrual detector). Default 8.
    pub phi_threshold: f64,
    /// Interval between hint replay rounds. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub hint_replay_interval: Duration,
    /// Hints older than this are dropped; anti-entropy repairs what they carried. Default 3 h.
    #[serde(with = "humantime_serde")]
    pub hint_window: Duration,
    /// Most hints kept for one owner; past it a fallback refuses the hinted write and the
    /// coordinator tries the next fallback. Default 100,000.
    pub max_hints_per_owner: u64,
    /// Hints sent to an owner in one batch. Default 256.
    pub hint_batch: usize,
    /// Interval between anti-entropy exchanges: each compares everything this node shares with
    /// one peer (peers taken in turn). Default 10 s.
    #[serde(with = "humantime_serde")]
    pub anti_entropy_interval: Duration,
    /// Most differing leaves one anti-entropy batch lists (about the keys one batch
    /// repairs; an exchange sends its batches one after the other), so that repair proceeds
    /// in bounded steps and cannot starve clients. Default 1,000.
    pub anti_entropy_max_keys: usize,
    /// Largest depth of the per-peer anti-entropy Merkle trees. Each tree is built at the
    /// depth that leaves about 8 keys per leaf (16 bytes of tree per leaf), up to this; nodes
    /// may differ (an exchange compares at the smaller depth of its two sides). Default 18
    /// (262,144 leaves, 4 MiB for a tree of 2 million keys or more).
    pub anti_entropy_tree_depth: u8,
    /// Interval between ownership-handoff rounds (keys this node holds but no longer owns are
    /// pushed to their owners, then dropped). Default 2 s.
    #[serde(with = "humantime_serde")]
    pub handoff_interval: Duration,
    /// Keys moved in one handoff batch. Default 256.
    pub handoff_batch: usize,
    /// A tombstone may be collected this long after this node first saw it, once every
    /// replica has it. Default 24 h.
    #[serde(with = "humantime_serde")]
    pub tombstone_grace: Duration,
    /// Interval between tombstone-collection rounds. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub tombstone_gc_interval: Duration,
    /// Largest key accepted, in bytes. Default 1 KiB.
    pub max_key_bytes: usize,
    /// Largest value accepted, in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// Most client requests in flight at one coordinator; more are refused as overloaded.
    /// Default 10,000.
    pub max_inflight_requests: usize,
    /// Switches that break mechanisms on purpose, so that the simulator's checkers can be shown
    /// to catch each breakage. Only in builds with the `sabotage` feature (the simulator's and
    /// the experiments'; the `ringstore` binary never enables it) and in the core's own tests;
    /// never read from a config file.
    #[cfg(any(test, feature = "sabotage"))]
    #[serde(skip)]
    pub sabotage: Sabotage,
}

/// Mechanisms a test may break on purpose (all off by default). See `sim/` and
/// `docs/simulation.md`: a checker that cannot catch these is not checking anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sabotage {
    /// Hints are stored but never replayed.
    pub no_hint_replay: bool,
    /// Gets never repair stale replicas.
    pub no_read_repair: bool,
    /// Anti-entropy never starts an exchange.
    pub no_anti_entropy: bool,
    /// Every merge keeps only one sibling (a last-writer-wins store in disguise).
    pub single_sibling_merge: bool,
    /// A key whose live versions are all tombstones is removed at once, with no grace period
    /// and no check that the other replicas have the tombstone.
    pub purge_tombstones_at_once: bool,
    /// A get answers with its first response instead of merging the R it waited for.
    pub read_first_answer: bool,
    /// Concurrent versions of an item resolve to the whole version with the newest stamp
    /// (whole-item last-writer-wins) instead of attribute by attribute.
    pub item_whole_version_wins: bool,
    /// A row deletion among an item's versions removes the whole item, even attributes
    /// written after it.
    pub item_deletion_wins: bool,
    /// A query answers from the first replica's page, whatever its R.
    pub query_one_replica: bool,
}

impl NodeConfig {
    /// Whether the deliberate bug `which` picks is switched on. Always `false` in a build
    /// without the `sabotage` feature, where the check compiles to nothing.
    #[inline]
    pub(crate) fn sabotaged(&self, which: impl Fn(&Sabotage) -> bool) -> bool {
        #[cfg(any(test, feature = "sabotage"))]
        return which(&self.sabotage);
        #[cfg(not(any(test, feature = "sabotage")))]
        {
            let _ = which;
            false
        }
    }
}

impl Sabotage {
    /// Whether any mechanism is broken.
    pub fn any(&self) -> bool {
        self.no_hint_replay
            || self.no_read_repair
            || self.no_anti_entropy
            || self.single_sibling_merge
            || self.purge_tombstones_at_once
            || self.read_first_answer
            || self.item_whole_version_wins
            || self.item_deletion_wins
            || self.query_one_replica
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            n: 3,
            r: 2,
            w: 2,
            vnodes: 256,
            request_timeout: Duration::from_secs(2),
            sloppy_after: Duration::from_millis(200),
            read_fanout: ReadFanout::All,
            read_speculate_after: Duration::from_millis(20),
            gossip_interval: Duration::from_secs(1),
            phi_threshold: 8.0,
            hint_replay_interval: Duration::from_secs(1),
            hint_window: Duration::from_secs(3 * 3600),
            max_hints_per_owner: 100_000,
            hint_batch: 256,
            anti_entropy_interval: Duration::from_secs(10),
            anti_entropy_max_keys: 1000,
            anti_entropy_tree_depth: 18,
            handoff_interval: Duration::from_secs(2),
            handoff_batch: 256,
            tombstone_grace: Duration::from_secs(24 * 3600),
            tombstone_gc_interval: Duration::from_secs(60),
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_inflight_requests: 10_000,
            #[cfg(any(test, feature = "sabotage"))]
            sabotage: Sabotage::default(),
        }
    }
}

/// A config value that cannot work, named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// N is 0 or above [`MAX_REPLICAS`].
    #[error("n = {0} is out of range 1..={MAX_REPLICAS}")]
    BadN(u8),
    /// R is 0 or above N.
    #[error("r = {r} must be between 1 and n = {n}")]
    BadR {
        /// The R given.
        r: u8,
        /// The N in force.
        n: u8,
    },
    /// W is 0 or above N.
    #[error("w = {w} must be between 1 and n = {n}")]
    BadW {
        /// The W given.
        w: u8,
        /// The N in force.
        n: u8,
    },
    /// A duration or count that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The hint window is not shorter than the tombstone grace period.
    #[error("hint_window ({hint_window:?}) must be shorter than tombstone_grace ({grace:?})")]
    HintWindowNotBelowGrace {
        /// The hint window.
        hint_window: Duration,
        /// The grace period.
        grace: Duration,
    },
}

impl NodeConfig {
    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n == 0 || self.n > MAX_REPLICAS {
            return Err(ConfigError::BadN(self.n));
        }
        if self.r == 0 || self.r > self.n {
            return Err(ConfigError::BadR {
                r: self.r,
                n: self.n,
            });
        }
        if self.w == 0 || self.w > self.n {
            return Err(ConfigError::BadW {
                w: self.w,
                n: self.n,
            });
        }
        let durations = [
            ("request_timeout", self.request_timeout),
            ("sloppy_after", self.sloppy_after),
            ("read_speculate_after", self.read_speculate_after),
            ("gossip_interval", self.gossip_interval),
            ("hint_replay_interval", self.hint_replay_interval),
            ("hint_window", self.hint_window),
            ("anti_entropy_interval", self.anti_entropy_interval),
            ("handoff_interval", self.handoff_interval),
            ("tombstone_grace", self.tombstone_grace),
            ("tombstone_gc_interval", self.tombstone_gc_interval),
        ];
        for (name, d) in durations {
            if d.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        let counts = [
            ("vnodes", self.vnodes as usize),
            ("hint_batch", self.hint_batch),
            ("anti_entropy_max_keys", self.anti_entropy_max_keys),
            ("handoff_batch", self.handoff_batch),
            ("max_key_bytes", self.max_key_bytes),
            ("max_value_bytes", self.max_value_bytes),
            ("max_inflight_requests", self.max_inflight_requests),
            (
                "anti_entropy_tree_depth",
                usize::from(self.anti_entropy_tree_depth),
            ),
        ];
        for (name, c) in counts {
            if c == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.hint_window >= self.tombstone_grace {
            return Err(ConfigError::HintWindowNotBelowGrace {
                hint_window: self.hint_window,
                grace: self.tombstone_grace,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A config round-trips through TOML-like text with human-readable durations.
    #[test]
    fn durations_are_human_readable() {
        let json = r#"{"n": 5, "request_timeout": "750ms", "hint_window": "2h"}"#;
        let config: NodeConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.n, 5);
        assert_eq!(config.request_timeout, Duration::from_millis(750));
        assert_eq!(config.hint_window, Duration::from_secs(7200));
        assert_eq!(config.r, NodeConfig::default().r);
    }

    // The defaults are valid, and each broken value is named in its error.
    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        assert_eq!(NodeConfig::default().validate(), Ok(()));
        let bad_r = NodeConfig {
            r: 4,
            ..NodeConfig::default()
        };
        assert_eq!(bad_r.validate(), Err(ConfigError::BadR { r: 4, n: 3 }));
        let zero = NodeConfig {
            gossip_interval: Duration::ZERO,
            ..NodeConfig::default()
        };
        assert_eq!(zero.validate(), Err(ConfigError::Zero("gossip_interval")));
        let window = NodeConfig {
            hint_window: Duration::from_secs(10),
            tombstone_grace: Duration::from_secs(5),
            ..NodeConfig::default()
        };
        assert!(matches!(
            window.validate(),
            Err(ConfigError::HintWindowNotBelowGrace { .. })
        ));
    }
}
