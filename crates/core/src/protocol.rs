//! The node-to-node protocol: every message a node sends a peer, and its wire codec.
//!
//! A [`Frame`] is `postcard(version: u16, from: NodeId, message: PeerMessage)`. The version is
//! read first, so a node refuses a peer of another protocol version with
//! [`ProtocolError::IncompatibleVersion`] before it tries to understand the rest. The codec is
//! pure: [`decode`] takes a byte slice and returns a frame or an error, never panics (fuzzed by
//! a property test). On a stream each frame follows its `u32` length, big-endian
//! ([`encode_framed`], [`next_frame`]); the client protocol frames its messages with the same
//! mechanism, little-endian.
//!
//! Each [`PeerMessage`] variant says who sends it, when, and what the receiver does; the life
//! of a get, a put, a hint and an anti-entropy exchange is told in `docs/protocol.md`.
//!
//! # Invariants
//! - A frame is at most [`MAX_FRAME_BYTES`]; larger input is refused before decoding.
//! - Version sets inside messages are validated by their own decoder (`VersionSet`'s
//!   invariants hold for anything that decoded).

use crate::NodeId;
use crate::catalog::Catalog;
use crate::item::TableId;
use crate::membership::MemberInfo;
use crate::merkle::wire::{delta_indices, fixed_u32};
use crate::merkle::{HashRequest, HashResponse, LeafListing};
use crate::request::{ClientRequest, ClientResult, ReplicaFailure};
use crate::ring::TokenRange;
use crate::version::{CausalContext, VersionSet};
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. Bumped on any incompatible change of [`PeerMessage`].
pub const PROTOCOL_VERSION: u16 = 2;

/// The largest frame accepted. Values are bounded by the node's `max_value_bytes` and siblings
/// by `MAX_SIBLINGS`; batches by [`MAX_BATCH_BYTES`].
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// The most bytes of keys and values one batch message (hints, transfers, anti-entropy items)
/// carries; the rest waits for the next batch. Keeps every frame far below
/// [`MAX_FRAME_BYTES`] whatever the value sizes.
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// A coordinator's handle for one operation it has in flight; unique per node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u64);

/// One key and its version set, as moved by repair, hints, anti-entropy and handoff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersions {
    /// The key.
    pub key: Vec<u8>,
    /// Its versions.
    pub versions: VersionSet,
}

impl KeyVersions {
    /// The bytes of key and values this item carries (an estimate of its encoded size).
    pub fn approx_bytes(&self) -> usize {
        let values: usize = self
            .versions
            .siblings()
            .map(|(_, v)| v.data().map_or(0, <[u8]>::len) + 16)
            .sum();
        self.key.len() + values + 16
    }
}

/// Why a replica refused to answer an anti-entropy walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AeRefusal {
    /// It routes by another ring: its tree for the initiator covers another key set.
    OtherRing,
    /// It is in another exchange (as initiator or replica): a replica repaired by two peers
    /// at once would receive the same sets twice. The initiator tries again next round.
    Busy,
    /// Its tree for the initiator is shallower than the walk: walk again at this depth.
    Shallower {
        /// The replica's tree depth.
        depth: u8,
    },
    /// It shares no keys with the initiator (no tree), or the request was malformed.
    NoTree,
}

/// One key a replica holds at a version the initiator's listing did not match, without the
/// key or the value: its fingerprint (salted as the listing) and its version vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOffer {
    /// `merkle::key_fingerprint(key, listing salt)`, 4 bytes on the wire.
    #[serde(with = "fixed_u32")]
    pub key_fingerprint: u32,
    /// The version vector of the replica's set.
    pub context: CausalContext,
}

/// Every message between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// A node that is not in a key's preference list hands a client request to the first
    /// healthy node of it (Dynamo §4.5). The receiver coordinates and answers `ForwardReply`.
    Forward {
        /// The forwarder's handle, echoed in the reply.
        op: OpId,
        /// The client's request.
        request: ClientRequest,
    },
    /// The coordinator's answer to a `Forward`; the forwarder passes it to its client.
    ForwardReply {
        /// The forwarder's handle.
        op: OpId,
        /// The outcome.
        result: ClientResult,
    },
    /// Coordinator → replica during a put: merge `versions` into the key durably, then answer
    /// `ReplicateAck`. With `hint_for`, the receiver is a fallback (sloppy quorum): it stores the
    /// set as a hint for that owner instead of as its own data (Dynamo §4.6).
    Replicate {
        /// The coordinator's handle.
        op: OpId,
        /// The key and the coordinator's merged version set.
        item: KeyVersions,
        /// The intended owner when the receiver stands in for it.
        hint_for: Option<NodeId>,
    },
    /// Replica → coordinator: the `Replicate` is durable (or why it failed).
    ReplicateAck {
        /// The coordinator's handle.
        op: OpId,
        /// Success, or how it failed.
        outcome: Result<(), ReplicaFailure>,
    },
    /// Coordinator → replica during a get: answer with your versions of `key`.
    Read {
        /// The coordinator's handle.
        op: OpId,
        /// The key.
        key: Vec<u8>,
    },
    /// Replica → coordinator: its versions (`None`: the key is absent there).
    ReadReply {
        /// The coordinator's handle.
        op: OpId,
        /// The replica's set, or how it failed.
        outcome: Result<Option<VersionSet>, ReplicaFailure>,
    },
    /// Coordinator → a replica that answered a get with a stale or missing set (read repair):
    /// merge this. No answer.
    Repair {
        /// The key and the merged set.
        item: KeyVersions,
    },
    /// Hint holder → owner, once the owner is reachable again: merge these durably and answer
    /// `HintAck` with the ids merged; the holder deletes them only then.
    HintDelivery {
        /// The holder's batch handle.
        batch: OpId,
        /// (hint id, key and versions).
        hints: Vec<(u64, KeyVersions)>,
    },
    /// Owner → hint holder: these hints are durable here.
    HintAck {
        /// The holder's batch handle.
        batch: OpId,
        /// The hint ids merged.
        ids: Vec<u64>,
    },
    /// Gossip round: the sender's membership table. With `want_reply`, the receiver answers
    /// with its own table if it differs (push-pull).
    Gossip {
        /// Every member the sender knows.
        members: Vec<MemberInfo>,
        /// Whether the receiver should answer with its table.
        want_reply: bool,
    },
    /// Anti-entropy, initiator → replica: the hashes of these nodes of the tree over the keys
    /// both replicate (one tree per peer, over the whole ring; see `node::peer_trees`). The
    /// replica answers `AeHashesReply`. See `docs/protocol.md` §7 for the whole exchange.
    AeHashes {
        /// The initiator's session handle.
        session: OpId,
        /// The digest of the initiator's ring: trees compare only under the same ring.
        ring: u64,
        /// The walk's shape and the nodes wanted.
        request: HashRequest,
    },
    /// Anti-entropy, replica → initiator: the hashes asked for, in order, or why not.
    AeHashesReply {
        /// The session.
        session: OpId,
        /// The answer, or the refusal (the initiator ends the session, or walks again at a
        /// smaller depth).
        response: Result<HashResponse, AeRefusal>,
    },
    /// Anti-entropy, initiator → replica: one batch of differing leaves, with a 4-byte
    /// fingerprint of each (key, version) the initiator holds there. The replica answers
    /// `AeKeysReply`.
    AeKeys {
        /// The session.
        session: OpId,
        /// The digest of the initiator's ring (as in `AeHashes`).
        ring: u64,
        /// The leaves and fingerprints.
        listing: LeafListing,
    },
    /// Anti-entropy, replica → initiator: what the fingerprints did not match. The initiator
    /// merges `items` and answers `AePush` if it has sets to send or wants any.
    AeKeysReply {
        /// The session.
        session: OpId,
        /// The replica's sets of keys the initiator lacks (from leaves where every initiator
        /// fingerprint matched).
        items: Vec<KeyVersions>,
        /// The replica's other unmatched keys, by key fingerprint and version vector: the
        /// initiator tells which side is newer without either sending a value.
        offers: Vec<KeyOffer>,
        /// Positions in the listing's fingerprints that the replica did not match: keys it
        /// lacks or holds at another version.
        #[serde(with = "delta_indices")]
        unmatched: Vec<u32>,
    },
    /// Anti-entropy, initiator → replica: the initiator's sets the replica lacks or that are
    /// not older than its own, and the offers (by position) whose sets it wants. The replica
    /// merges, and answers `AePushReply` if `wanted` is not empty.
    AePush {
        /// The session.
        session: OpId,
        /// The sets.
        items: Vec<KeyVersions>,
        /// Positions in the last `AeKeysReply`'s offers.
        #[serde(with = "delta_indices")]
        wanted: Vec<u32>,
    },
    /// Anti-entropy, replica → initiator: the sets of the wanted offers. No answer.
    AePushReply {
        /// The session.
        session: OpId,
        /// The sets.
        items: Vec<KeyVersions>,
    },
    /// Anti-entropy, initiator → replica: the exchange is over; the replica may serve another.
    /// No answer.
    AeDone {
        /// The session.
        session: OpId,
    },
    /// Ownership handoff: a node holding keys it no longer replicates pushes them to their
    /// replicas; the receiver merges durably and answers `TransferAck`. The sender drops its
    /// copy only after every replica of the key acknowledged it.
    Transfer {
        /// The sender's batch handle.
        batch: OpId,
        /// The keys.
        items: Vec<KeyVersions>,
    },
    /// Answer to `Transfer`: the batch is durable (or why not).
    TransferAck {
        /// The sender's batch handle.
        batch: OpId,
        /// Success, or how it failed.
        outcome: Result<(), ReplicaFailure>,
    },
    /// Tombstone collection, checker → replica: do you hold exactly this version set?
    TombstoneCheck {
        /// The checker's handle.
        op: OpId,
        /// The key.
        key: Vec<u8>,
        /// The digest of the tombstoned set.
        digest: u64,
    },
    /// Answer to `TombstoneCheck`.
    TombstoneCheckReply {
        /// The checker's handle.
        op: OpId,
        /// Whether the replica holds a set with that digest.
        holds: bool,
    },
    /// Tombstone collection: every replica holds the tombstone; remove the key if its set still
    /// has this digest. No answer.
    TombstonePurge {
        /// The key.
        key: Vec<u8>,
        /// The digest it must still have.
        digest: u64,
    },
    /// Query, coordinator → replica: the records of one partition between two keys, in order
    /// or reversed, at most `limit` of them and about `max_bytes`. Answered `QueryReadReply`.
    QueryRead {
        /// The coordinator's handle.
        op: OpId,
        /// The partition's placement prefix.
        prefix: Vec<u8>,
        /// The lower key bound.
        from: KeyBound,
        /// The upper key bound.
        to: KeyBound,
        /// Descending order.
        reverse: bool,
        /// At most this many records.
        limit: u32,
    },
    /// Query, replica → coordinator: the records, and whether more lie beyond the last.
    QueryReadReply {
        /// The coordinator's handle.
        op: OpId,
        /// The records and whether the page was cut short, or how the replica failed.
        outcome: Result<QueryPage, ReplicaFailure>,
    },
    /// Scan, coordinator → replica: the records of one table in a token range, in ring order,
    /// after a storage key, at most `limit` of them. Answered `ScanReadReply`.
    ScanRead {
        /// The coordinator's handle.
        op: OpId,
        /// The scan's step (one per arc or continuation), echoed in the reply.
        step: u32,
        /// The table.
        table: TableId,
        /// The tokens to read.
        range: TokenRange,
        /// Continue after this storage key (token ++ key) of the range.
        after: Option<Vec<u8>>,
        /// At most this many records of the table.
        limit: u32,
    },
    /// Scan, replica → coordinator.
    ScanReadReply {
        /// The coordinator's handle.
        op: OpId,
        /// The step asked.
        step: u32,
        /// The records, and where the replica stopped, or how it failed.
        outcome: Result<TablePage, ReplicaFailure>,
    },
    /// Catalog gossip: the sender's table catalog, sent beside its membership gossip. With
    /// `want_reply`, the receiver answers with its own if it differs (push-pull).
    Catalog {
        /// Every table record the sender knows.
        catalog: Catalog,
        /// Whether the receiver should answer with its catalog.
        want_reply: bool,
    },
}

/// One end of a key range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyBound {
    /// Up to and including this key.
    Included(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Up to this key, not including it.
    Excluded(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The partition's end.
    Unbounded,
}

impl KeyBound {
    /// As a standard bound.
    pub fn to_bound(&self) -> std::ops::Bound<Vec<u8>> {
        match self {
            KeyBound::Included(k) => std::ops::Bound::Included(k.clone()),
            KeyBound::Excluded(k) => std::ops::Bound::Excluded(k.clone()),
            KeyBound::Unbounded => std::ops::Bound::Unbounded,
        }
    }
}

/// A replica's page of a query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryPage {
    /// The records, in the query's order.
    pub entries: Vec<KeyVersions>,
    /// Each record's digest, in the same order (replicas that agree are recognised without
    /// merging or hashing their sets).
    pub digests: Vec<u64>,
    /// Whether the replica stopped before the range's end (limit or size).
    pub truncated: bool,
}

/// A replica's page of a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePage {
    /// The table's records, in ring order.
    pub entries: Vec<KeyVersions>,
    /// The storage key after which the replica stopped, when it did not reach the range's end:
    /// it knows nothing of what lies beyond.
    pub resume_after: Option<Vec<u8>>,
}

/// A message with the sender's identity and protocol version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The sender's protocol version.
    pub version: u16,
    /// The sender.
    pub from: NodeId,
    /// The message.
    pub message: PeerMessage,
}

/// Why bytes from a peer were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {theirs}; this node speaks {ours}")]
    IncompatibleVersion {
        /// Ours.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The bytes do not decode as a frame (or break a version set's invariants).
    #[error("malformed frame: {0}")]
    Malformed(postcard::Error),
    /// Bytes were left after the frame.
    #[error("{0} bytes left after the frame")]
    TrailingBytes(usize),
}

/// A postcard flavour that appends to a borrowed buffer (postcard's own `to_extend` takes its
/// writer by value and pushes through an iterator), so frames are encoded in place.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The frame as serialised: the message borrowed, so encoding copies nothing first.
#[derive(Serialize)]
struct FrameRef<'a> {
    version: u16,
    from: NodeId,
    message: &'a PeerMessage,
}

/// Encodes a message from `from` as a frame of the current version.
pub fn encode(from: NodeId, message: &PeerMessage) -> Result<Vec<u8>, ProtocolError> {
    let frame = FrameRef {
        version: PROTOCOL_VERSION,
        from,
        message,
    };
    let bytes = postcard::to_stdvec(&frame).map_err(ProtocolError::Malformed)?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(bytes)
}

/// Appends the frame [`encode`] would make to `out` in its stream form, behind its big-endian
/// `u32` length, encoding it in place; on an error `out` is left as it was.
pub fn encode_framed(
    from: NodeId,
    message: &PeerMessage,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    let frame = FrameRef {
        version: PROTOCOL_VERSION,
        from,
        message,
    };
    append_prefixed(out, &frame, MAX_FRAME_BYTES, PrefixOrder::Big)
}

/// The first whole frame of a peer stream at the start of `buf` (as [`encode_framed`] wrote
/// it): the frame and the bytes it takes, prefix included, or `None` while more bytes are
/// needed. An error means the stream cannot be cut into frames any more.
pub fn next_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    cut_prefixed(buf, MAX_FRAME_BYTES, PrefixOrder::Big)
}

/// Bytes of the length prefix in front of every frame on a stream, peer or client.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// The byte order of a stream's length prefixes: the peer protocol's are big-endian, the
/// client protocol's little-endian.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PrefixOrder {
    Big,
    Little,
}

impl PrefixOrder {
    fn write(self, len: u32) -> [u8; LENGTH_PREFIX_BYTES] {
        match self {
            PrefixOrder::Big => len.to_be_bytes(),
            PrefixOrder::Little => len.to_le_bytes(),
        }
    }

    fn read(self, prefix: [u8; LENGTH_PREFIX_BYTES]) -> u32 {
        match self {
            PrefixOrder::Big => u32::from_be_bytes(prefix),
            PrefixOrder::Little => u32::from_le_bytes(prefix),
        }
    }
}

/// Appends `value` to `out` as a length-prefixed frame of at most `max` bytes (prefix not
/// counted), serialised in place; on an error `out` is left as it was.
pub(crate) fn append_prefixed<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    max: usize,
    order: PrefixOrder,
) -> Result<(), ProtocolError> {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX_BYTES]);
    let payload_start = out.len();
    if let Err(error) = postcard::serialize_with_flavor(value, Append(&mut *out)) {
        out.truncate(start);
        return Err(ProtocolError::Malformed(error));
    }
    let len = out.len() - payload_start;
    let prefix = match u32::try_from(len) {
        Ok(prefix) if len <= max => prefix,
        _ => {
            out.truncate(start);
            return Err(ProtocolError::TooLarge { len, max });
        }
    };
    out[start..payload_start].copy_from_slice(&order.write(prefix));
    Ok(())
}

/// The first whole length-prefixed frame at the start of `buf`: its payload and the bytes it
/// takes (prefix included), or `None` when more bytes are needed. An error means the prefix
/// is over `max`, so the stream cannot be cut into frames any more.
pub(crate) fn cut_prefixed(
    buf: &[u8],
    max: usize,
    order: PrefixOrder,
) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let Some((prefix, rest)) = buf.split_first_chunk::<LENGTH_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let len = order.read(*prefix) as usize;
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    Ok(rest
        .get(..len)
        .map(|payload| (payload, LENGTH_PREFIX_BYTES + len)))
}

/// The length of the frame [`encode`] would produce for this message, without building it
/// (counters of bytes sent, e.g. anti-entropy's).
pub fn encoded_len(from: NodeId, message: &PeerMessage) -> usize {
    let frame = FrameRef {
        version: PROTOCOL_VERSION,
        from,
        message,
    };
    // Serialising to a size counter cannot fail for these types.
    postcard::serialize_with_flavor(&frame, postcard::ser_flavors::Size::default()).unwrap_or(0)
}

/// Decodes one frame; any input gives a frame or an error.
pub fn decode(bytes: &[u8]) -> Result<Frame, ProtocolError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(ProtocolError::Malformed)?;
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::IncompatibleVersion {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    let (frame, rest) =
        postcard::take_from_bytes::<Frame>(bytes).map_err(ProtocolError::Malformed)?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes(rest.len()));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{LeafEntry, LeafIndex, NodeIndex, TreeShape};
    use crate::ring::TokenRange;
    use crate::version::{ActorId, Value};
    use proptest::prelude::*;

    fn sample() -> PeerMessage {
        let versions = VersionSet::with_update(
            &CausalContext::empty(),
            ActorId(7),
            Value::Data(b"v".to_vec()),
        );
        PeerMessage::Replicate {
            op: OpId(42),
            item: KeyVersions {
                key: b"k".to_vec(),
                versions,
            },
            hint_for: Some(NodeId(3)),
        }
    }

    // A frame round-trips through the codec.
    #[test]
    fn frames_round_trip() {
        let bytes = encode(NodeId(1), &sample()).unwrap();
        let frame = decode(&bytes).unwrap();
        assert_eq!(frame.from, NodeId(1));
        assert_eq!(frame.version, PROTOCOL_VERSION);
        assert_eq!(frame.message, sample());
    }

    /// One message of each anti-entropy kind, with content in every field.
    fn ae_samples() -> Vec<PeerMessage> {
        let PeerMessage::Replicate { item, .. } = sample() else {
            unreachable!("sample() is a Replicate");
        };
        let shape = TreeShape::new(TokenRange::full(), 17).unwrap();
        let mut listing = LeafListing::new(shape, 0xfeed);
        listing.push_leaf(
            LeafIndex(70_000),
            &[LeafEntry {
                key: b"k".to_vec(),
                digest: 9,
            }],
        );
        let session = OpId(5);
        vec![
            PeerMessage::AeHashes {
                session,
                ring: u64::MAX,
                request: HashRequest {
                    shape,
                    rotation: 63,
                    nodes: vec![NodeIndex(1 << 17), NodeIndex(2 + (1 << 17))],
                },
            },
            PeerMessage::AeHashesReply {
                session,
                response: Ok(HashResponse {
                    hashes: vec![1, u32::MAX],
                }),
            },
            PeerMessage::AeHashesReply {
                session,
                response: Err(AeRefusal::Shallower { depth: 12 }),
            },
            PeerMessage::AeKeys {
                session,
                ring: 3,
                listing,
            },
            PeerMessage::AeKeysReply {
                session,
                items: vec![item.clone()],
                offers: vec![KeyOffer {
                    key_fingerprint: u32::MAX,
                    context: item.versions.context(),
                }],
                unmatched: vec![0, 7, 3],
            },
            PeerMessage::AePush {
                session,
                items: vec![item.clone()],
                wanted: vec![1, 5, 300],
            },
            PeerMessage::AePushReply {
                session,
                items: vec![item],
            },
            PeerMessage::AeDone { session },
        ]
    }

    // Anti-entropy messages round-trip, and the computed frame length is the encoded length.
    #[test]
    fn ae_messages_round_trip_and_encoded_len_is_the_frame_length() {
        for message in ae_samples().into_iter().chain([sample()]) {
            let bytes = encode(NodeId(300), &message).unwrap();
            assert_eq!(encoded_len(NodeId(300), &message), bytes.len());
            assert_eq!(decode(&bytes).unwrap().message, message);
        }
    }

    // A peer of another version is refused by name, before the rest is read.
    #[test]
    fn other_versions_are_refused() {
        let mut bytes = encode(NodeId(1), &sample()).unwrap();
        bytes[0] = 9;
        assert_eq!(
            decode(&bytes),
            Err(ProtocolError::IncompatibleVersion {
                ours: PROTOCOL_VERSION,
                theirs: 9
            })
        );
    }

    // Trailing bytes and truncation are errors.
    #[test]
    fn truncated_and_padded_frames_are_refused() {
        let bytes = encode(NodeId(1), &sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(decode(&padded), Err(ProtocolError::TrailingBytes(1)));
    }

    proptest! {
        // Arbitrary bytes never panic the decoder (a peer speaking garbage is an Err).
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        // Flipping bytes of a valid frame never panics either.
        #[test]
        fn corrupted_frames_never_panic(i in any::<prop::sample::Index>(), b in any::<u8>()) {
            let mut bytes = encode(NodeId(1), &sample()).unwrap();
            let at = i.index(bytes.len());
            bytes[at] = b;
            let _ = decode(&bytes);
        }

        // Nor does flipping bytes of any anti-entropy frame.
        #[test]
        fn corrupted_ae_frames_never_panic(
            which in any::<prop::sample::Index>(),
            i in any::<prop::sample::Index>(),
            b in any::<u8>(),
        ) {
            let samples = ae_samples();
            let mut bytes = encode(NodeId(1), which.get(&samples)).unwrap();
            let at = i.index(bytes.len());
            bytes[at] = b;
            let _ = decode(&bytes);
        }
    }
}
