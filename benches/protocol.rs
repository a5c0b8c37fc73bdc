//! Micro-benchmarks of the peer wire codec: `protocol::encode` and `protocol::decode` of the
//! messages a put, a gossip round and an anti-entropy exchange send.
//!
//! Run with `cargo bench --bench protocol`; see `docs/microbench.md`. Messages (and, for
//! decode, their encoded frames) are built outside the timed part; the counter is the frame's
//! length in bytes.

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use ringstore_core::NodeId;
use ringstore_core::membership::{MemberInfo, MemberStatus};
use ringstore_core::merkle::{
    HashRequest, HashResponse, LeafEntry, LeafIndex, LeafListing, NodeIndex, TreeShape,
};
use ringstore_core::protocol::{KeyVersions, OpId, PeerMessage, decode, encode};
use ringstore_core::ring::TokenRange;
use ringstore_core::version::{ActorId, Value, VersionSet};

fn main() {
    divan::main();
}

/// The messages benchmarked (divan argument names).
const MESSAGES: [&str; 7] = [
    "replicate",
    "replicate_64k",
    "replicate_ack",
    "gossip_20",
    "ae_hashes_64",
    "ae_hashes_reply_64",
    "ae_keys_100",
];

/// Size of the value a `Replicate` carries.
const VALUE_BYTES: usize = 100;

/// Size of the value of the large `Replicate` (to show the codec's per-byte cost).
const LARGE_VALUE_BYTES: usize = 64 * 1024;

/// The sender of every frame.
const FROM: NodeId = NodeId(7);

/// A random-looking 64-bit number (actor ids, hashes and digests are uniformly spread).
fn spread(i: u64) -> u64 {
    (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn key(i: u64) -> Vec<u8> {
    format!("user-{i:010}").into_bytes()
}

/// The coordinator's set after puts by three actors: three entries, one sibling of
/// `value_bytes` bytes.
fn put_versions(value_bytes: usize) -> VersionSet {
    let mut set = VersionSet::new();
    for i in 0..3 {
        let mut value = format!("value-{i}-").into_bytes();
        value.resize(value_bytes, b'.');
        set.update(&set.context(), ActorId(spread(i)), Value::Data(value));
    }
    set
}

fn member(i: u64) -> MemberInfo {
    MemberInfo {
        node: NodeId(i),
        addr: format!("10.0.{}.{}:7400", i / 256, i % 256),
        zone: Some(format!("zone-{}", i % 3)),
        vnodes: 256,
        status: MemberStatus::Up,
        generation: 1_700_000_000 + i,
        version: 3,
        heartbeat: 86_400 + i,
    }
}

fn message(name: &str) -> PeerMessage {
    let shape = TreeShape::new(TokenRange::full(), 12).expect("a valid depth");
    match name {
        "replicate" => PeerMessage::Replicate {
            op: OpId(spread(1)),
            item: KeyVersions {
                key: key(42),
                versions: put_versions(VALUE_BYTES),
            },
            hint_for: None,
        },
        "replicate_64k" => PeerMessage::Replicate {
            op: OpId(spread(1)),
            item: KeyVersions {
                key: key(42),
                versions: put_versions(LARGE_VALUE_BYTES),
            },
            hint_for: None,
        },
        "replicate_ack" => PeerMessage::ReplicateAck {
            op: OpId(spread(1)),
            outcome: Ok(()),
        },
        "gossip_20" => PeerMessage::Gossip {
            members: (1..=20).map(member).collect(),
            want_reply: true,
        },
        // One step of the walk at two levels a step: 16 differing nodes, 4 children each.
        "ae_hashes_64" => PeerMessage::AeHashes {
            session: OpId(spread(2)),
            ring: spread(3),
            request: HashRequest {
                shape,
                rotation: 17,
                nodes: (0..64).map(|i| NodeIndex(256 + i * 7)).collect(),
            },
        },
        "ae_hashes_reply_64" => PeerMessage::AeHashesReply {
            session: OpId(spread(2)),
            response: Ok(HashResponse {
                hashes: (0..64).map(|i| spread(i) as u32).collect(),
            }),
        },
        // The initiator's listing of 13 differing leaves (about 8 keys a leaf), as fingerprints.
        "ae_keys_100" => {
            let mut listing = LeafListing::new(shape, spread(4));
            for leaf in 0..13u64 {
                let entries: Vec<LeafEntry> = (leaf * 8..(leaf * 8 + 8).min(100))
                    .map(|i| LeafEntry {
                        key: key(i),
                        digest: spread(i),
                    })
                    .collect();
                let index = u32::try_from(leaf * 300).expect("small");
                listing.push_leaf(LeafIndex(index), &entries);
            }
            PeerMessage::AeKeys {
                session: OpId(spread(2)),
                ring: spread(3),
                listing,
            }
        }
        other => panic!("no message named {other}"),
    }
}

/// `protocol::encode` of the message into a new frame.
#[divan::bench(args = MESSAGES)]
fn encode_frame(bencher: Bencher, name: &str) {
    let message = message(name);
    let len = encode(FROM, &message).expect("encodes").len();
    bencher
        .counter(BytesCount::new(len))
        .bench_local(|| encode(FROM, black_box(&message)));
}

/// `protocol::decode` of the message's frame (with its version sets' invariant checks).
#[divan::bench(args = MESSAGES)]
fn decode_frame(bencher: Bencher, name: &str) {
    let bytes = encode(FROM, &message(name)).expect("encodes");
    bencher
        .counter(BytesCount::new(bytes.len()))
        .bench_local(|| decode(black_box(&bytes)));
}
