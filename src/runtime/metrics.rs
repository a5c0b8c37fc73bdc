//! The node's metrics, exported as Prometheus text on `GET /metrics`.
//!
//! Three sources feed one registry:
//! - the HTTP front end: requests by kind and outcome, and latency histograms by kind;
//! - the transport: frames sent, received and dropped (by reason), refused handshakes,
//!   protocol errors, connected peers;
//! - the node core: its [`NodeStats`] counters, hints pending and peers judged up, copied in
//!   at each scrape from a status snapshot ([`Metrics::observe_core`]).
//!
//! # Guarantees
//! - Every counter is monotonic; core counters are advanced to the core's value at each scrape
//!   (they never go backwards, even if snapshots arrive out of order).
//! - Recording is lock-free on the request path (atomics), except a family's first use of a
//!   label set.
//!
//! # Known limits
//! - Core values are as fresh as the last scrape's snapshot.

use super::status::NodeStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Latency buckets: 100 µs doubling up to ~3.3 s (16 buckets), covering a LAN quorum round
/// trip to a request timeout.
const LATENCY_BUCKET_START_SECONDS: f64 = 0.0001;
/// Number of latency buckets.
const LATENCY_BUCKET_COUNT: u16 = 16;

/// Labels of a client request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// "get", "put" or "delete".
    pub kind: &'static str,
    /// "ok", "not_found", "siblings", or the error kind of the HTTP body.
    pub outcome: &'static str,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// "get", "put" or "delete".
    pub kind: &'static str,
}

/// Why the transport dropped a frame.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DropReason {
    /// The peer's outbound queue was full.
    QueueFull,
    /// The peer was unreachable (no address, or connecting failed).
    Unreachable,
    /// An admin partition blocks the peer.
    Partitioned,
    /// The driver's input queue was full when the frame arrived.
    InboxFull,
    /// The frame could not be encoded (over the size limit).
    Unencodable,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Unreachable => "unreachable",
            DropReason::Partitioned => "partitioned",
            DropReason::InboxFull => "inbox_full",
            DropReason::Unencodable => "unencodable",
        }
    }
}

/// Labels of the dropped-frames counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        LATENCY_BUCKET_START_SECONDS,
        2.0,
        LATENCY_BUCKET_COUNT,
    ))
}

/// The core's counters, mirrored.
#[derive(Default)]
struct CoreCounters {
    writes_ok: Counter,
    reads_ok: Counter,
    requests_failed: Counter,
    hinted_writes: Counter,
    hints_delivered: Counter,
    hints_dropped: Counter,
    read_repairs: Counter,
    anti_entropy_keys: Counter,
    anti_entropy_rounds: Counter,
    keys_handed_off: Counter,
    tombstones_collected: Counter,
    messages_ignored: Counter,
}

/// Every metric of one node.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    frames_sent: Counter,
    frames_received: Counter,
    frames_dropped: Family<DropLabels, Counter>,
    handshakes_refused: Counter,
    protocol_errors: Counter,
    peers_connected: Gauge,
    peers_up: Gauge,
    hints_pending: Gauge,
    keys: Gauge,
    core: CoreCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ringstore");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds =
            Family::<KindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let frames_dropped = Family::<DropLabels, Counter>::default();
        let metrics = Self {
            requests,
            request_seconds,
            frames_sent: Counter::default(),
            frames_received: Counter::default(),
            frames_dropped,
            handshakes_refused: Counter::default(),
            protocol_errors: Counter::default(),
            peers_connected: Gauge::default(),
            peers_up: Gauge::default(),
            hints_pending: Gauge::default(),
            keys: Gauge::default(),
            core: CoreCounters::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "Client requests by kind and outcome",
            metrics.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Client request latency at this node's HTTP front end",
            metrics.request_seconds.clone(),
        );
        r.register(
            "frames_sent",
            "Frames written to peers",
            metrics.frames_sent.clone(),
        );
        r.register(
            "frames_received",
            "Frames received from peers and handed to the core",
            metrics.frames_received.clone(),
        );
        r.register(
            "frames_dropped",
            "Frames dropped by the transport, by reason",
            metrics.frames_dropped.clone(),
        );
        r.register(
            "handshakes_refused",
            "Inbound QUIC handshakes that failed (e.g. a certificate not signed by the cluster CA)",
            metrics.handshakes_refused.clone(),
        );
        r.register(
            "protocol_errors",
            "Connections closed for a malformed frame, another protocol version or a spoofed sender",
            metrics.protocol_errors.clone(),
        );
        r.register(
            "peers_connected",
            "Peers with an established outbound connection",
            metrics.peers_connected.clone(),
        );
        r.register(
            "peers_up",
            "Peers the failure detector judges up",
            metrics.peers_up.clone(),
        );
        r.register(
            "hints_pending",
            "Hinted-handoff hints held for other nodes",
            metrics.hints_pending.clone(),
        );
        r.register(
            "keys",
            "Keys in the local store (approximate)",
            metrics.keys.clone(),
        );
        let core = &metrics.core;
        let core_counters: [(&str, &str, &Counter); 12] = [
            (
                "writes_ok",
                "Puts and deletes that reached W",
                &core.writes_ok,
            ),
            ("reads_ok", "Gets that reached R", &core.reads_ok),
            (
                "requests_failed",
                "Client requests the core failed",
                &core.requests_failed,
            ),
            (
                "hinted_writes",
                "Writes sent to a fallback with a hint",
                &core.hinted_writes,
            ),
            (
                "hints_delivered",
                "Hints delivered to their owner",
                &core.hints_delivered,
            ),
            (
                "hints_dropped",
                "Hints dropped (expired or over the per-owner limit)",
                &core.hints_dropped,
            ),
            (
                "read_repairs",
                "Read-repair messages sent",
                &core.read_repairs,
            ),
            (
                "anti_entropy_keys_repaired",
                "Keys sent or received by anti-entropy",
                &core.anti_entropy_keys,
            ),
            (
                "anti_entropy_rounds",
                "Anti-entropy exchanges completed",
                &core.anti_entropy_rounds,
            ),
            (
                "keys_handed_off",
                "Keys handed off to new owners",
                &core.keys_handed_off,
            ),
            (
                "tombstones_collected",
                "Tombstones collected",
                &core.tombstones_collected,
            ),
            (
                "messages_ignored",
                "Peer messages the core could not handle",
                &core.messages_ignored,
            ),
        ];
        for (name, help, counter) in core_counters {
            r.register(name, help, counter.clone());
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// Records one client request's outcome and latency.
    pub fn record_request(&self, kind: &'static str, outcome: &'static str, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { kind, outcome })
            .inc();
        self.request_seconds
            .get_or_create(&KindLabels { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts frames written to a peer.
    pub fn frames_sent(&self, count: u64) {
        self.frames_sent.inc_by(count);
    }

    /// Counts a frame received and handed to the core.
    pub fn frame_received(&self) {
        self.frames_received.inc();
    }

    /// Counts dropped frames.
    pub fn frames_dropped(&self, reason: DropReason, count: u64) {
        self.frames_dropped
            .get_or_create(&DropLabels {
                reason: reason.label(),
            })
            .inc_by(count);
    }

    /// How many frames were dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.frames_dropped
            .get_or_create(&DropLabels {
                reason: reason.label(),
            })
            .get()
    }

    /// Counts a refused inbound handshake.
    pub fn handshake_refused(&self) {
        self.handshakes_refused.inc();
    }

    /// Refused inbound handshakes so far.
    pub fn handshakes_refused(&self) -> u64 {
        self.handshakes_refused.get()
    }

    /// Counts a connection closed for a protocol error.
    pub fn protocol_error(&self) {
        self.protocol_errors.inc();
    }

    /// Connections closed for protocol errors so far.
    pub fn protocol_errors(&self) -> u64 {
        self.protocol_errors.get()
    }

    /// An outbound connection came up (`true`) or went down (`false`).
    pub fn peer_connected(&self, up: bool) {
        if up {
            self.peers_connected.inc();
        } else {
            self.peers_connected.dec();
        }
    }

    /// Copies the core's counters and gauges from a status snapshot.
    pub fn observe_core(&self, status: &NodeStatus) {
        let stats = &status.stats;
        let core = &self.core;
        let pairs = [
            (&core.writes_ok, stats.writes_ok),
            (&core.reads_ok, stats.reads_ok),
            (&core.requests_failed, stats.requests_failed),
            (&core.hinted_writes, stats.hinted_writes),
            (&core.hints_delivered, stats.hints_delivered),
            (&core.hints_dropped, stats.hints_dropped),
            (&core.read_repairs, stats.read_repairs),
            (&core.anti_entropy_keys, stats.anti_entropy_keys),
            (&core.anti_entropy_rounds, stats.anti_entropy_rounds),
            (&core.keys_handed_off, stats.keys_handed_off),
            (&core.tombstones_collected, stats.tombstones_collected),
            (&core.messages_ignored, stats.messages_ignored),
        ];
        for (counter, value) in pairs {
            advance_to(counter, value);
        }
        let peers_up = status
            .members
            .iter()
            .filter(|m| m.id != status.id && m.up)
            .count();
        self.peers_up.set(to_gauge(peers_up as u64));
        self.hints_pending
            .set(to_gauge(status.hints_pending.values().sum()));
        self.keys.set(to_gauge(status.keys));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Advances a counter to `value` (never backwards).
fn advance_to(counter: &Counter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn to_gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded requests, drops and core counters appear in the exposition with their labels.
    #[test]
    fn exposition_carries_labels_and_core_counters() {
        let metrics = Metrics::new();
        metrics.record_request("put", "ok", Duration::from_millis(3));
        metrics.frames_dropped(DropReason::QueueFull, 2);
        let mut status = NodeStatus::empty_for_tests();
        status.stats.anti_entropy_keys = 5;
        metrics.observe_core(&status);
        status.stats.anti_entropy_keys = 3; // an older snapshot: the counter does not go back
        metrics.observe_core(&status);
        let text = metrics.encode();
        assert!(
            text.contains(r#"ringstore_requests_total{kind="put",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ringstore_frames_dropped_total{reason="queue_full"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("ringstore_anti_entropy_keys_repaired_total 5"),
            "{text}"
        );
        assert!(
            text.contains(r#"ringstore_request_duration_seconds_count{kind="put"} 1"#),
            "{text}"
        );
    }
}
