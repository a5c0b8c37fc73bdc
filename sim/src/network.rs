//! The simulated network: per-link latency, loss, duplication, partitions and slow nodes.
//!
//! Every decision draws from the world's seeded RNG, in the order messages are sent, so a run
//! is a function of its seed. Reordering is not a separate knob: two messages on one link with
//! independently drawn delays arrive in either order, as on a real network.
//!
//! # Invariants
//! - `blocked` is a set of *directed* links: a symmetric partition blocks both directions, a
//!   one-way partition one; a bridge node keeps its links to both sides.
//! - Loss and duplication probabilities are in `[0, 1]` (checked by [`NetworkConfig::validate`]).

use crate::distribution::{Distribution, DistributionError};
use rand::{Rng, RngExt};
use ringstore_core::NodeId;
use ringstore_core::protocol::PeerMessage;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The class of a message, for per-class latency (the quorum experiments give writes, write
/// acks, reads and read responses their own distributions, as PBS's WARS model does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageClass {
    /// Coordinator → replica: a write (`Replicate`). PBS's W.
    Write,
    /// Replica → coordinator: a write ack. PBS's A.
    WriteAck,
    /// Coordinator → replica: a read. PBS's R.
    Read,
    /// Replica → coordinator: a read response. PBS's S.
    ReadResponse,
    /// Everything else (gossip, hints, anti-entropy, handoff, forwarding).
    Other,
}

impl MessageClass {
    /// The class of a message.
    pub fn of(message: &PeerMessage) -> Self {
        match message {
            PeerMessage::Replicate { .. } => MessageClass::Write,
            PeerMessage::ReplicateAck { .. } => MessageClass::WriteAck,
            PeerMessage::Read { .. } => MessageClass::Read,
            PeerMessage::ReadReply { .. } => MessageClass::ReadResponse,
            _ => MessageClass::Other,
        }
    }
}

/// The latency of one directed link (a scenario's `[[network.links]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkLatency {
    /// Sender node id.
    pub from: u64,
    /// Receiver node id.
    pub to: u64,
    /// The link's latency.
    pub latency: Distribution,
}

/// The network's configuration (a scenario's `[network]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Latency of every link unless overridden.
    pub latency: Distribution,
    /// Latency per message class, overriding `latency`.
    pub per_class: BTreeMap<MessageClass, Distribution>,
    /// Latency of particular directed links, overriding `per_class` and `latency`.
    pub links: Vec<LinkLatency>,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Latency between a client and the node it talks to (each way).
    pub client_latency: Distribution,
    /// Extra delay on given directed links (e.g. between datacenters), added to whatever
    /// latency applies (link, class or default): the quorum experiments keep the W/A/R/S
    /// distributions and add the distance.
    pub link_extra: Vec<LinkDelay>,
}

/// An extra delay on every message from one node to another (one direction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDelay {
    /// Sender node id.
    pub from: u64,
    /// Receiver node id.
    pub to: u64,
    /// The extra delay.
    pub extra: Distribution,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            latency: Distribution::Exponential { lambda: 2.0 },
            per_class: BTreeMap::new(),
            links: Vec::new(),
            loss: 0.0,
            duplicate: 0.0,
            client_latency: Distribution::constant(0.1),
            link_extra: Vec::new(),
        }
    }
}

/// A network configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkError {
    /// A latency distribution is invalid.
    #[error("latency: {0}")]
    Latency(#[from] DistributionError),
    /// A probability is outside `[0, 1]`.
    #[error("{what} = {value} is not a probability")]
    NotAProbability {
        /// The knob.
        what: &'static str,
        /// Its value.
        value: f64,
    },
}

impl NetworkConfig {
    /// Checks distributions and probabilities.
    pub fn validate(&self) -> Result<(), NetworkError> {
        self.latency.validate()?;
        self.client_latency.validate()?;
        for d in self.per_class.values() {
            d.validate()?;
        }
        for link in &self.links {
            link.latency.validate()?;
        }
        for link in &self.link_extra {
            link.extra.validate()?;
        }
        for (what, value) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(NetworkError::NotAProbability { what, value });
            }
        }
        Ok(())
    }
}

/// The live network: configuration plus the faults currently in force.
pub struct Network {
    config: NetworkConfig,
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Extra delay added to every message to or from a slow node.
    slow: BTreeMap<NodeId, Distribution>,
    /// Extra delay per directed link (from the configuration's `link_extra`).
    link_extra: BTreeMap<(NodeId, NodeId), Distribution>,
}

impl Network {
    /// A network with no faults.
    pub fn new(config: NetworkConfig) -> Self {
        let link_extra = config
            .link_extra
            .iter()
            .map(|l| ((NodeId(l.from), NodeId(l.to)), l.extra.clone()))
            .collect();
        Self {
            config,
            blocked: BTreeSet::new(),
            slow: BTreeMap::new(),
            link_extra,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The delays (µs) after which copies of a message from `from` to `to` arrive: none if it
    /// is dropped, two if it is duplicated.
    pub fn route<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        from: NodeId,
        to: NodeId,
        class: MessageClass,
    ) -> Vec<u64> {
        if self.blocked.contains(&(from, to)) {
            return Vec::new();
        }
        if self.config.loss > 0.0 && rng.random_bool(self.config.loss) {
            return Vec::new();
        }
        let copies = if self.config.duplicate > 0.0 && rng.random_bool(self.config.duplicate) {
            2
        } else {
            1
        };
        let base = self
            .config
            .links
            .iter()
            .find(|l| l.from == from.0 && l.to == to.0)
            .map(|l| &l.latency)
            .or_else(|| self.config.per_class.get(&class))
            .unwrap_or(&self.config.latency);
        (0..copies)
            .map(|_| {
                let mut delay = base.sample_micros(rng);
                if let Some(extra) = self.link_extra.get(&(from, to)) {
                    delay += extra.sample_micros(rng);
                }
                for node in [from, to] {
                    if let Some(extra) = self.slow.get(&node) {
                        delay += extra.sample_micros(rng);
                    }
                }
                delay
            })
            .collect()
    }

    /// A client ↔ node delay (µs).
    pub fn client_delay<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        self.config.client_latency.sample_micros(rng)
    }

    /// Cuts every link between different groups, both ways. Nodes in no group keep their links.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            self.blocked.insert((x, y));
                        }
                    }
                }
            }
        }
    }

    /// Cuts the links from every node of `from` to every node of `to` (one way).
    pub fn one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        for &x in from {
            for &y in to {
                if x != y {
                    self.blocked.insert((x, y));
                }
            }
        }
    }

    /// Makes `node` slow: every message to or from it takes `extra` longer.
    pub fn slow(&mut self, node: NodeId, extra: Distribution) {
        self.slow.insert(node, extra);
    }

    /// Removes every partition and slowness.
    pub fn heal(&mut self) {
        self.blocked.clear();
        self.slow.clear();
    }

    /// Whether any fault is in force.
    pub fn is_faulty(&self) -> bool {
        !self.blocked.is_empty() || !self.slow.is_empty()
    }
}

/// Pairs each delay of [`Network::route`] with a copy of `message`: every copy but the last is
/// a clone, the last takes the message itself (no clone when there is one delay).
pub fn copies_for<T: Clone>(delays: Vec<u64>, message: T) -> impl Iterator<Item = (u64, T)> {
    let last = delays.len().saturating_sub(1);
    let mut message = Some(message);
    delays
        .into_iter()
        .enumerate()
        .filter_map(move |(i, delay)| {
            let copy = if i == last {
                message.take()
            } else {
                message.clone()
            };
            copy.map(|m| (delay, m))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    // Partitions block exactly the links between groups; a bridge keeps both sides; heal clears.
    #[test]
    fn partitions_block_the_right_links() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut net = Network::new(NetworkConfig::default());
        let (a, b, bridge) = (NodeId(1), NodeId(2), NodeId(3));
        net.partition(&[vec![a], vec![b]]);
        assert!(net.route(&mut rng, a, b, MessageClass::Other).is_empty());
        assert!(net.route(&mut rng, b, a, MessageClass::Other).is_empty());
        assert_eq!(net.route(&mut rng, a, bridge, MessageClass::Other).len(), 1);
        assert_eq!(net.route(&mut rng, bridge, b, MessageClass::Other).len(), 1);
        net.heal();
        net.one_way(&[a], &[b]);
        assert!(net.route(&mut rng, a, b, MessageClass::Other).is_empty());
        assert_eq!(net.route(&mut rng, b, a, MessageClass::Other).len(), 1);
    }

    // A link override wins over the class and the default latency, in one direction only.
    #[test]
    fn link_latency_overrides() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let net = Network::new(NetworkConfig {
            latency: Distribution::constant(1.0),
            links: vec![LinkLatency {
                from: 1,
                to: 2,
                latency: Distribution::constant(75.0),
            }],
            ..NetworkConfig::default()
        });
        assert_eq!(
            net.route(&mut rng, NodeId(1), NodeId(2), MessageClass::Write),
            vec![75_000]
        );
        assert_eq!(
            net.route(&mut rng, NodeId(2), NodeId(1), MessageClass::Write),
            vec![1_000]
        );
    }

    // Loss and duplication happen at about their configured rates.
    #[test]
    fn loss_and_duplication_rates() {
        let seed = 3;
        println!("seed {seed}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = Network::new(NetworkConfig {
            loss: 0.1,
            duplicate: 0.05,
            ..NetworkConfig::default()
        });
        let n = 100_000;
        let (mut lost, mut doubled) = (0, 0);
        for _ in 0..n {
            match net
                .route(&mut rng, NodeId(1), NodeId(2), MessageClass::Other)
                .len()
            {
                0 => lost += 1,
                2 => doubled += 1,
                _ => {}
            }
        }
        assert!((lost as f64 / n as f64 - 0.1).abs() < 0.01);
        assert!((doubled as f64 / (n - lost) as f64 - 0.05).abs() < 0.01);
        let bad = NetworkConfig {
            loss: 1.5,
            ..NetworkConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
