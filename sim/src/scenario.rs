//! Scenarios: what a simulation runs — the cluster, the workload, the network, and the faults
//! at given times — read from a TOML file or built from flags, plus the random nemesis that
//! schedules faults from the seed.
//!
//! A scenario file (every table optional; see `docs/simulation.md` and `sim/scenarios/`):
//!
//! ```toml
//! duration = "60s"
//! [cluster]
//! nodes = 5
//! [node]                 # ringstore NodeConfig: n, r, w, timings
//! n = 3
//! [workload]
//! clients = 10
//! rate = 200.0
//! [network]
//! latency = { kind = "exponential", lambda = 2.0 }
//! [[events]]
//! at = "10s"
//! action = "partition"
//! groups = [[1, 2], [3, 4, 5]]
//! [[events]]
//! at = "30s"
//! action = "heal"
//! ```
//!
//! # Invariants (after [`Scenario::validate`])
//! - every node id named by an event exists in the cluster;
//! - the node config validates, and the network's distributions and probabilities are sound.

use crate::distribution::{Distribution, DistributionError};
use crate::network::{NetworkConfig, NetworkError};
use crate::workload::{WorkloadConfig, WorkloadError};
use rand::{Rng, RngExt};
use ringstore_core::config::{ConfigError, NodeConfig};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Everything one simulation run needs besides its seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// How long the workload and the faults run (virtual time).
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Clients start after this much virtual time, once gossip has converged on one ring.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// After `duration`, every fault is healed and crashed nodes restart; the run then waits up
    /// to this long for the replicas to converge before the checkers run.
    #[serde(with = "humantime_serde")]
    pub quiesce: Duration,
    /// The nodes.
    pub cluster: ClusterConfig,
    /// The node core's configuration (N, R, W, timings), the same type the real nodes read.
    /// Fields a scenario leaves out keep the simulator's defaults ([`sim_node_defaults`]), not
    /// the production ones.
    #[serde(deserialize_with = "node_over_sim_defaults")]
    pub node: NodeConfig,
    /// The clients.
    pub workload: WorkloadConfig,
    /// The network.
    pub network: NetworkConfig,
    /// Faults at given times.
    pub events: Vec<FaultEvent>,
    /// Faults drawn from the seed, in addition to `events`.
    pub nemesis: Option<NemesisConfig>,
}

/// The nodes of the simulated cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// How many nodes (ids 1..=nodes).
    pub nodes: u64,
    /// Each node's clock starts skewed by a uniform draw in `±skew_max_ms`.
    pub skew_max_ms: u64,
    /// Each node's clock drifts by a uniform draw in `±drift_max_ppm` parts per million.
    pub drift_max_ppm: u64,
    /// Group commit in the nodes' stores: after a node handles an input, its outputs (and the
    /// sync that releases them) wait up to `group_commit_window`, so a crash in that window loses
    /// the writes not yet synced and their acknowledgements with them.
    pub group_commit: bool,
    /// How long a node batches before it releases its outputs and begins a sync (with
    /// `group_commit`).
    #[serde(with = "humantime_serde")]
    pub group_commit_window: Duration,
    /// How long a node's fsync takes (with `group_commit`): outputs that claim durability
    /// leave only when it ends, and a crash before then loses the writes it covers. The
    /// default, log-normal with a median of 0.5 ms, is slower than 5 ms about once in a
    /// hundred syncs.
    pub fsync: Distribution,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            nodes: 5,
            skew_max_ms: 0,
            drift_max_ppm: 0,
            group_commit: true,
            group_commit_window: Duration::from_millis(1),
            fsync: Distribution::LogNormal {
                mu: -std::f64::consts::LN_2,
                sigma: 1.0,
            },
        }
    }
}

/// A fault scheduled at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When (virtual time since the start).
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What.
    #[serde(flatten)]
    pub action: FaultAction,
}

/// Every fault the simulator can inject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultAction {
    /// Cut every link between the groups, both ways (a majority/minority split is two groups).
    Partition {
        /// Node ids per side.
        groups: Vec<Vec<u64>>,
    },
    /// Cut the links from `from` to `to` only.
    OneWay {
        /// Senders whose messages are lost.
        from: Vec<u64>,
        /// Receivers that never hear them.
        to: Vec<u64>,
    },
    /// Cut the links between the two sides, except through `bridge`, which sees both.
    Bridge {
        /// The two sides (without the bridge).
        sides: Vec<Vec<u64>>,
        /// The node that keeps its links to both sides.
        bridge: u64,
    },
    /// Partition and heal in turn every `period` until `until`.
    Flap {
        /// The sides.
        groups: Vec<Vec<u64>>,
        /// Time between a cut and a heal.
        #[serde(with = "humantime_serde")]
        period: Duration,
        /// When flapping stops (healed).
        #[serde(with = "humantime_serde")]
        until: Duration,
    },
    /// Every message to or from `node` takes `extra` longer.
    Slow {
        /// The slow node.
        node: u64,
        /// The extra delay.
        extra: Distribution,
    },
    /// Remove every partition and slowness.
    Heal,
    /// The node crashes: its volatile state and in-flight messages are lost; its store keeps
    /// what was synced (or nothing, with `lose_disk`).
    Crash {
        /// The node.
        node: u64,
        /// Whether its disk is lost too.
        #[serde(default)]
        lose_disk: bool,
    },
    /// A crashed node starts again on what its store kept.
    Restart {
        /// The node.
        node: u64,
    },
    /// Set a node's clock offset and drift from now on.
    Skew {
        /// The node.
        node: u64,
        /// Offset of its clock in milliseconds (may be negative).
        skew_ms: i64,
        /// Drift in parts per million (may be negative).
        drift_ppm: i64,
    },
}

impl FaultAction {
    /// The node ids this action names.
    fn nodes(&self) -> Vec<u64> {
        match self {
            FaultAction::Partition { groups } | FaultAction::Flap { groups, .. } => {
                groups.iter().flatten().copied().collect()
            }
            FaultAction::OneWay { from, to } => from.iter().chain(to).copied().collect(),
            FaultAction::Bridge { sides, bridge } => sides
                .iter()
                .flatten()
                .copied()
                .chain(std::iter::once(*bridge))
                .collect(),
            FaultAction::Slow { node, .. }
            | FaultAction::Crash { node, .. }
            | FaultAction::Restart { node }
            | FaultAction::Skew { node, .. } => vec![*node],
            FaultAction::Heal => Vec::new(),
        }
    }
}

/// The random nemesis: faults drawn from the seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NemesisConfig {
    /// Mean time between the start of two faults (exponentially distributed).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Mean time a fault lasts before its heal or restart.
    #[serde(with = "humantime_serde")]
    pub fault_duration: Duration,
    /// Which kinds of fault to draw.
    pub kinds: Vec<NemesisKind>,
}

/// The kinds of fault the nemesis draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    /// A majority/minority split.
    Partition,
    /// A one-way cut between two random sets.
    OneWay,
    /// Two sides joined only through one bridge node.
    Bridge,
    /// A node crashes and restarts later, with what it had synced.
    Crash,
    /// A node crashes, loses its disk, and restarts empty later (refilled by read repair and
    /// anti-entropy from the other replicas).
    DiskLoss,
    /// A node's links slow down.
    Slow,
    /// A split that comes and goes.
    Flap,
    /// A node's clock jumps and drifts.
    Skew,
}

impl Default for NemesisConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            fault_duration: Duration::from_secs(5),
            kinds: vec![
                NemesisKind::Partition,
                NemesisKind::OneWay,
                NemesisKind::Bridge,
                NemesisKind::Crash,
                NemesisKind::DiskLoss,
                NemesisKind::Slow,
                NemesisKind::Flap,
                NemesisKind::Skew,
            ],
        }
    }
}

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("scenario {path} is invalid: {source}")]
    Parse {
        /// The path.
        path: String,
        /// What the parser said (line and column included).
        source: toml::de::Error,
    },
    /// The node configuration is invalid.
    #[error("[node]: {0}")]
    Node(#[from] ConfigError),
    /// The network configuration is invalid.
    #[error("[network]: {0}")]
    Network(#[from] NetworkError),
    /// The workload is invalid.
    #[error("[workload]: {0}")]
    Workload(#[from] WorkloadError),
    /// The fsync latency distribution is invalid.
    #[error("[cluster] fsync: {0}")]
    Fsync(#[source] DistributionError),
    /// The cluster has no node.
    #[error("[cluster]: nodes must be at least 1")]
    NoNodes,
    /// An event is set after the workload ends: the run heals everything then, and a later
    /// fault would break the quiescence the checkers rely on.
    #[error("event at {at:?} is not before the end of the workload (duration {duration:?})")]
    AfterEnd {
        /// The event's time.
        at: Duration,
        /// The workload's duration.
        duration: Duration,
    },
    /// An event names a node the cluster does not have.
    #[error("event at {at:?} names node {node}, but the cluster has nodes 1..={nodes}")]
    UnknownNode {
        /// The event's time.
        at: Duration,
        /// The node named.
        node: u64,
        /// How many nodes there are.
        nodes: u64,
    },
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(60),
            warmup: Duration::from_secs(2),
            quiesce: Duration::from_secs(120),
            cluster: ClusterConfig::default(),
            node: sim_node_defaults(),
            workload: WorkloadConfig::default(),
            network: NetworkConfig::default(),
            events: Vec::new(),
            nemesis: None,
        }
    }
}

/// Reads a `[node]` table over the simulator's defaults: only the fields it names change.
fn node_over_sim_defaults<'de, D>(deserializer: D) -> Result<NodeConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let overrides = toml::Table::deserialize(deserializer)?;
    let mut table = toml::Table::try_from(sim_node_defaults()).map_err(D::Error::custom)?;
    for (key, value) in overrides {
        table.insert(key, value);
    }
    table.try_into().map_err(D::Error::custom)
}

/// Node timings for simulation: the production defaults are tuned for hours of uptime; a
/// simulated minute needs gossip, hints and anti-entropy on a scale of seconds.
pub fn sim_node_defaults() -> NodeConfig {
    NodeConfig {
        vnodes: 16,
        gossip_interval: Duration::from_millis(200),
        hint_replay_interval: Duration::from_millis(500),
        anti_entropy_interval: Duration::from_secs(1),
        handoff_interval: Duration::from_secs(1),
        request_timeout: Duration::from_millis(500),
        sloppy_after: Duration::from_millis(50),
        anti_entropy_tree_depth: 10,
        ..NodeConfig::default()
    }
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &str) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_string(),
            source,
        })?;
        let scenario: Scenario = toml::from_str(&text).map_err(|source| ScenarioError::Parse {
            path: path.to_string(),
            source,
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.cluster.nodes == 0 {
            return Err(ScenarioError::NoNodes);
        }
        self.node.validate()?;
        self.network.validate()?;
        self.cluster
            .fsync
            .validate()
            .map_err(ScenarioError::Fsync)?;
        self.workload.validate()?;
        for event in &self.events {
            if event.at >= self.duration {
                return Err(ScenarioError::AfterEnd {
                    at: event.at,
                    duration: self.duration,
                });
            }
            for node in event.action.nodes() {
                if node == 0 || node > self.cluster.nodes {
                    return Err(ScenarioError::UnknownNode {
                        at: event.at,
                        node,
                        nodes: self.cluster.nodes,
                    });
                }
            }
        }
        Ok(())
    }

    /// The scheduled events plus the nemesis's, drawn from `rng`, sorted by time (stable).
    pub fn timeline<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<FaultEvent> {
        let mut events = self.events.clone();
        if let Some(nemesis) = &self.nemesis {
            events.extend(draw_nemesis(
                nemesis,
                self.cluster.nodes,
                self.duration,
                rng,
            ));
        }
        let mut expanded = Vec::with_capacity(events.len());
        for event in events {
            match &event.action {
                FaultAction::Flap {
                    groups,
                    period,
                    until,
                } if !period.is_zero() => {
                    let mut t = event.at;
                    let mut cut = true;
                    while t < *until {
                        let action = if cut {
                            FaultAction::Partition {
                                groups: groups.clone(),
                            }
                        } else {
                            FaultAction::Heal
                        };
                        expanded.push(FaultEvent { at: t, action });
                        cut = !cut;
                        t += *period;
                    }
                    expanded.push(FaultEvent {
                        at: *until,
                        action: FaultAction::Heal,
                    });
                }
                _ => expanded.push(event),
            }
        }
        expanded.sort_by_key(|e| e.at);
        expanded
    }
}

fn exp_draw<R: Rng + ?Sized>(rng: &mut R, mean: Duration) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    mean.mul_f64(-u.ln())
}

/// Random faults over `[0, duration)`, each healed (or restarted) after a random time.
fn draw_nemesis<R: Rng + ?Sized>(
    config: &NemesisConfig,
    nodes: u64,
    duration: Duration,
    rng: &mut R,
) -> Vec<FaultEvent> {
    let mut out = Vec::new();
    if config.kinds.is_empty() || nodes < 2 {
        return out;
    }
    let mut t = exp_draw(rng, config.interval);
    while t < duration {
        let kind = config.kinds[rng.random_range(0..config.kinds.len())];
        let lasts = exp_draw(rng, config.fault_duration);
        let end = (t + lasts).min(duration);
        let mut ids: Vec<u64> = (1..=nodes).collect();
        // Fisher–Yates with the run's RNG: a random split of the nodes.
        for i in (1..ids.len()).rev() {
            let j = rng.random_range(0..=i);
            ids.swap(i, j);
        }
        let minority = (nodes as usize - 1) / 2;
        let minority = minority.max(1);
        let (small, large) = ids.split_at(minority);
        let (small, large) = (small.to_vec(), large.to_vec());
        let node = ids[0];
        let (start, stop) = match kind {
            NemesisKind::Partition => (
                FaultAction::Partition {
                    groups: vec![small, large],
                },
                FaultAction::Heal,
            ),
            NemesisKind::OneWay => (
                FaultAction::OneWay {
                    from: small,
                    to: large,
                },
                FaultAction::Heal,
            ),
            NemesisKind::Bridge if nodes >= 3 => {
                let bridge = large[0];
                (
                    FaultAction::Bridge {
                        sides: vec![small, large[1..].to_vec()],
                        bridge,
                    },
                    FaultAction::Heal,
                )
            }
            NemesisKind::Bridge => (FaultAction::Heal, FaultAction::Heal),
            NemesisKind::Crash => (
                FaultAction::Crash {
                    node,
                    lose_disk: false,
                },
                FaultAction::Restart { node },
            ),
            NemesisKind::DiskLoss => (
                FaultAction::Crash {
                    node,
                    lose_disk: true,
                },
                FaultAction::Restart { node },
            ),
            NemesisKind::Slow => (
                FaultAction::Slow {
                    node,
                    extra: Distribution::Exponential { lambda: 0.05 },
                },
                FaultAction::Heal,
            ),
            NemesisKind::Flap => (
                FaultAction::Flap {
                    groups: vec![small, large],
                    period: Duration::from_millis(700),
                    until: end,
                },
                FaultAction::Heal,
            ),
            NemesisKind::Skew => (
                FaultAction::Skew {
                    node,
                    skew_ms: rng.random_range(-2000..=2000),
                    drift_ppm: rng.random_range(-500..=500),
                },
                FaultAction::Skew {
                    node,
                    skew_ms: 0,
                    drift_ppm: 0,
                },
            ),
        };
        out.push(FaultEvent {
            at: t,
            action: start,
        });
        out.push(FaultEvent {
            at: end,
            action: stop,
        });
        t = end + exp_draw(rng, config.interval);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    // A scenario file with every kind of event parses and validates.
    #[test]
    fn parses_every_event_kind() {
        let text = r#"
            duration = "30s"
            [cluster]
            nodes = 5
            [node]
            n = 3
            w = 3
            gossip_interval = "100ms"
            [workload]
            clients = 4
            rate = 50.0
            [network]
            loss = 0.01
            latency = { kind = "uniform", low_ms = 1.0, high_ms = 3.0 }
            [[events]]
            at = "1s"
            action = "partition"
            groups = [[1, 2], [3, 4, 5]]
            [[events]]
            at = "2s"
            action = "one-way"
            from = [1]
            to = [2, 3]
            [[events]]
            at = "3s"
            action = "bridge"
            sides = [[1, 2], [4, 5]]
            bridge = 3
            [[events]]
            at = "4s"
            action = "flap"
            groups = [[1], [2, 3, 4, 5]]
            period = "500ms"
            until = "6s"
            [[events]]
            at = "7s"
            action = "slow"
            node = 2
            extra = { kind = "constant", ms = 50.0 }
            [[events]]
            at = "8s"
            action = "crash"
            node = 4
            lose_disk = true
            [[events]]
            at = "9s"
            action = "restart"
            node = 4
            [[events]]
            at = "10s"
            action = "skew"
            node = 1
            skew_ms = -300
            drift_ppm = 200
            [[events]]
            at = "11s"
            action = "heal"
        "#;
        let s: Scenario = toml::from_str(text).unwrap();
        s.validate().unwrap();
        assert_eq!(s.events.len(), 9);
        assert_eq!(s.node.w, 3);
        assert_eq!(s.node.gossip_interval, Duration::from_millis(100));
        // Fields the [node] table leaves out keep the simulator's defaults.
        assert_eq!(
            s.node.anti_entropy_interval,
            sim_node_defaults().anti_entropy_interval
        );
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let timeline = s.timeline(&mut rng);
        // The flap expands into cuts and heals every 500 ms from 4 s to 6 s.
        let flaps = timeline
            .iter()
            .filter(|e| e.at >= Duration::from_secs(4) && e.at <= Duration::from_secs(6))
            .count();
        assert_eq!(flaps, 5);
    }

    // Unknown nodes and unknown fields are refused with a message naming them.
    #[test]
    fn bad_scenarios_are_refused_by_name() {
        let text = "[[events]]\nat = \"1s\"\naction = \"crash\"\nnode = 9\n";
        let s: Scenario = toml::from_str(text).unwrap();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("node 9"), "{e}");
        for unknown in ["[cluster]\nnodez = 3\n", "[node]\nnn = 5\n"] {
            let e = toml::from_str::<Scenario>(unknown).unwrap_err().to_string();
            assert!(e.contains("nodez") || e.contains("nn"), "{e}");
        }
        let late = "duration = \"10s\"\n[[events]]\nat = \"11s\"\naction = \"heal\"\n";
        let s: Scenario = toml::from_str(late).unwrap();
        assert!(matches!(s.validate(), Err(ScenarioError::AfterEnd { .. })));
    }

    // The nemesis is a function of the seed, and every fault it starts it also ends.
    #[test]
    fn nemesis_is_seeded_and_balanced() {
        let s = Scenario {
            nemesis: Some(NemesisConfig::default()),
            ..Scenario::default()
        };
        let draw = |seed| s.timeline(&mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(draw(4), draw(4));
        assert_ne!(draw(4), draw(5));
        let crashes = draw(4)
            .iter()
            .filter(|e| matches!(e.action, FaultAction::Crash { .. }))
            .count();
        let restarts = draw(4)
            .iter()
            .filter(|e| matches!(e.action, FaultAction::Restart { .. }))
            .count();
        assert_eq!(crashes, restarts);
        // Over a few seeds the default nemesis also takes disks away, not only processes.
        let lost_disks: usize = (1..=20)
            .map(|seed| {
                draw(seed)
                    .iter()
                    .filter(|e| {
                        matches!(
                            e.action,
                            FaultAction::Crash {
                                lose_disk: true,
                                ..
                            }
                        )
                    })
                    .count()
            })
            .sum();
        assert!(
            lost_disks > 0,
            "no disk loss in 20 seeds of the default nemesis"
        );
    }
}
