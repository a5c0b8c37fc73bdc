//! The QUIC settings every ringstore connection uses, node to node and native client to node,
//! so that both ends of a connection agree on keep-alives, idle timeouts, stream limits and
//! acknowledgement frequency (see `docs/architecture.md`, "Transport").

use quinn::VarInt;
use std::time::Duration;

/// Unidirectional streams a peer may have open towards this node at once.
pub const MAX_CONCURRENT_UNI_STREAMS: u32 = 256;

/// Bidirectional streams a native client may have open on one connection: a client pipelines
/// its requests on one long-lived stream (see `native_service`), so a handful is plenty.
pub const MAX_CONCURRENT_CLIENT_STREAMS: u32 = 8;

/// Packets a connection's other side may receive before it must acknowledge them.
pub const ACK_ELICITING_THRESHOLD: u32 = 8;

/// QUIC keep-alive interval: keeps idle connections open and detects dead peers.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// A connection silent this long is dead (also the handshake timeout).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// quinn refused a setting (only possible if a constant above is out of QUIC's range).
#[derive(Debug, thiserror::Error)]
pub enum QuicSettingsError {
    /// The idle timeout does not fit QUIC's variable-length integer.
    #[error("invalid QUIC idle timeout")]
    IdleTimeout,
}

/// The QUIC settings of every ringstore connection: node to node, and native clients.
pub fn transport_config() -> Result<quinn::TransportConfig, QuicSettingsError> {
    let mut config = quinn::TransportConfig::default();
    // Ask the other side to acknowledge every ACK_ELICITING_THRESHOLD + 1 packets rather than
    // every second one (the ACK frequency extension, which quinn speaks on both sides): with
    // small request and reply packets, pure ACK packets were most of the datagrams.
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(VarInt::from_u32(ACK_ELICITING_THRESHOLD));
    config.ack_frequency_config(Some(acks));
    config.keep_alive_interval(Some(KEEP_ALIVE_INTERVAL));
    config.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(IDLE_TIMEOUT).map_err(|_| QuicSettingsError::IdleTimeout)?,
    ));
    config.max_concurrent_uni_streams(VarInt::from_u32(MAX_CONCURRENT_UNI_STREAMS));
    // Peers never open bidirectional streams (an unexpected one on a peer connection is never
    // accepted); native clients pipeline their requests on one.
    config.max_concurrent_bidi_streams(VarInt::from_u32(MAX_CONCURRENT_CLIENT_STREAMS));
    Ok(config)
}
