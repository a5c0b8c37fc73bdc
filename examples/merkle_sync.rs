//! Measures a Merkle anti-entropy exchange between two replicas of 1,000,000 keys that differ
//! in 100 keys: tree nodes compared, hashes received, round trips, bytes sent versus a full
//! transfer, and the cost of building and updating a tree.
//!
//! Run: `cargo run --release --example merkle_sync [SEED]`.
//!
//! Bytes are postcard payloads of the exchange's parts (no framing or transport headers), as
//! the node sends them (`docs/protocol.md` §7): hash requests and responses; the leaf listing
//! (a 4-byte fingerprint per key of the differing leaves); the reply (positions of unmatched
//! fingerprints, offers of key fingerprint + version vector for keys both sides hold); and the
//! version sets of the differing keys, each sent once towards the side that lacks it or holds
//! it older (a 100-byte value plus `VERSION_METADATA_BYTES` of causal metadata). A full
//! transfer sends every key with its version set, one way. End-to-end numbers through the real
//! node are in `docs/anti-entropy-bytes.md` (`ringsim experiment anti-entropy`).

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Instant;

use ringstore_core::merkle::{
    DEFAULT_DEPTH, DEFAULT_LEVELS_PER_STEP, DiffResult, DiffWalk, ExchangeConfig, KeyDifference,
    LeafEntry, LeafListing, MerkleTree, TreeShape, key_fingerprint, match_leaf,
};
use ringstore_core::protocol::KeyOffer;
use ringstore_core::ring::{TokenRange, key_token};
use ringstore_core::version::{ActorId, CausalContext};
use xxhash_rust::xxh3::xxh3_64;

/// Keys per replica.
const KEY_COUNT: u32 = 1_000_000;
/// Keys changed on replica B (both replicas hold a version, with different digests).
const CHANGED: usize = 40;
/// Keys only replica A holds.
const ONLY_ON_A: usize = 30;
/// Keys only replica B holds.
const ONLY_ON_B: usize = 30;
/// The value carried by each version.
const VALUE_BYTES: usize = 100;
/// The causal metadata of a version set with one sibling: a version vector over 3 replicas
/// (8-byte actor id + 8-byte counter each) and the sibling's dot (16 bytes).
const VERSION_METADATA_BYTES: usize = 3 * 16 + 16;
/// The default seed; pass another as the first argument.
const DEFAULT_SEED: u64 = 0x5eed_0000_0000_0001;

/// One replica's storage, ordered by (token, key) like the real store.
struct Replica {
    /// (token, key, version digest), sorted.
    entries: Vec<(u64, Vec<u8>, u64)>,
}

impl Replica {
    fn new(map: &BTreeMap<Vec<u8>, u64>) -> Self {
        let mut entries: Vec<(u64, Vec<u8>, u64)> = map
            .iter()
            .map(|(k, &d)| (key_token(k).0, k.clone(), d))
            .collect();
        entries.sort_unstable();
        Self { entries }
    }

    /// A storage scan of `range`, in ring order.
    fn scan(&self, range: TokenRange) -> Vec<LeafEntry> {
        let mut out = Vec::new();
        for (lo, hi) in range.intervals() {
            let from = self.entries.partition_point(|e| e.0 < lo);
            let to = self.entries.partition_point(|e| e.0 <= hi);
            out.extend(self.entries[from..to].iter().map(|(_, k, d)| LeafEntry {
                key: k.clone(),
                digest: *d,
            }));
        }
        out
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.entries.iter().map(|(_, k, d)| (k.as_slice(), *d))
    }
}

/// SplitMix64: a tiny seeded generator, enough to pick which keys differ.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

/// The digest of a version number (stands in for `VersionSet::digest`).
fn digest_of_version(version: u64) -> u64 {
    xxh3_64(&version.to_le_bytes())
}

/// Bytes of one version set on the wire: the value plus its causal metadata.
fn version_set_bytes() -> usize {
    VALUE_BYTES + VERSION_METADATA_BYTES
}

/// What one sync costs.
#[derive(Default)]
struct SyncCost {
    nodes_compared: u64,
    hashes_received: u64,
    tree_round_trips: u32,
    hash_bytes: usize,
    list_bytes: usize,
    reply_bytes: usize,
    value_bytes: usize,
    differences: Vec<KeyDifference>,
}

impl SyncCost {
    fn total_bytes(&self) -> usize {
        self.hash_bytes + self.list_bytes + self.reply_bytes + self.value_bytes
    }
}

/// A version vector of 3 replicas, as an offer carries it.
fn three_replica_context() -> CausalContext {
    CausalContext::from_entries((1..=3).map(|i| (ActorId(u64::MAX / i), 1_000 + i)))
}

/// The delta-coded wire form of a position list, as `AeKeysReply.unmatched` sends it.
#[derive(serde::Serialize)]
struct Positions(#[serde(with = "ringstore_core::merkle::wire::delta_indices")] Vec<u32>);

/// Runs the whole protocol from A's side against B, counting the bytes of every message.
fn sync(
    a: &Replica,
    tree_a: &MerkleTree,
    b: &Replica,
    tree_b: &MerkleTree,
    config: ExchangeConfig,
) -> Result<SyncCost, Box<dyn Error>> {
    let mut cost = SyncCost::default();
    // 1. Tree walk: A asks for hashes, B answers.
    let mut walk = DiffWalk::new(tree_a.shape(), config)?;
    while let Some(request) = walk.next_request() {
        let response = tree_b.answer(&request)?;
        cost.hash_bytes += postcard::to_allocvec(&request)?.len();
        cost.hash_bytes += postcard::to_allocvec(&response)?.len();
        walk.receive(tree_a, &response)?;
    }
    let result: DiffResult = walk.into_result().ok_or("walk did not finish")?;
    cost.nodes_compared = result.nodes_compared;
    cost.hashes_received = result.hashes_received;
    cost.tree_round_trips = result.round_trips;
    // 2. Listing: A sends a fingerprint of each key it holds in the differing leaves.
    let salt = config.salt;
    let mut listing = LeafListing::new(tree_a.shape(), salt);
    let mut listed = Vec::new();
    for leaf in &result.differing_leaves {
        let mine = a.scan(leaf.range);
        listing.push_leaf(leaf.leaf, &mine);
        listed.extend(mine);
    }
    cost.list_bytes = postcard::to_allocvec(&listing)?.len();
    // 3. B matches each leaf: it names A's unmatched fingerprints, sends its sets of keys A
    //    lacks (leaves where all of A matched), and offers its other unmatched keys.
    let mut unmatched = Vec::new();
    let mut offers = Vec::new();
    let mut b_unmatched: Vec<LeafEntry> = Vec::new();
    for (leaf, positions) in listing.leaf_ranges() {
        let theirs = b.scan(tree_a.shape().leaf_range(leaf));
        let found = match_leaf(&listing.fingerprints[positions.clone()], &theirs, salt);
        unmatched.extend(found.unmatched_in_listing(positions.start));
        for &i in &found.unmatched_local {
            if !found.unmatched_remote.is_empty() {
                offers.push(KeyOffer {
                    key_fingerprint: key_fingerprint(&theirs[i].key, salt),
                    context: three_replica_context(),
                });
            }
            b_unmatched.push(theirs[i].clone());
        }
    }
    cost.reply_bytes = postcard::to_allocvec(&Positions(unmatched.clone()))?.len()
        + postcard::to_allocvec(&offers)?.len();
    // 4. Values: each differing key's set crosses once (B's changed keys are newer).
    let a_unmatched: Vec<&LeafEntry> = unmatched.iter().map(|&p| &listed[p as usize]).collect();
    let mut differences: BTreeMap<Vec<u8>, (Option<u64>, Option<u64>)> = BTreeMap::new();
    for e in a_unmatched {
        differences.entry(e.key.clone()).or_default().0 = Some(e.digest);
    }
    for e in &b_unmatched {
        differences.entry(e.key.clone()).or_default().1 = Some(e.digest);
    }
    for key in differences.keys() {
        cost.value_bytes += key.len() + 1 + version_set_bytes();
    }
    cost.differences = differences
        .into_iter()
        .map(|(key, (local_digest, remote_digest))| KeyDifference {
            key,
            local_digest,
            remote_digest,
        })
        .collect();
    Ok(cost)
}

fn main() -> Result<(), Box<dyn Error>> {
    let seed = match std::env::args().nth(1) {
        Some(s) => s.parse()?,
        None => DEFAULT_SEED,
    };
    println!("merkle_sync: {KEY_COUNT} keys per replica, seed {seed}");

    // Replica A: every key at version 1. Replica B: the same, then the planted differences.
    let map_a: BTreeMap<Vec<u8>, u64> = (0..KEY_COUNT)
        .map(|i| (key(i), digest_of_version(1)))
        .collect();
    let mut map_b = map_a.clone();
    let mut rng = SplitMix64(seed);
    let mut planted: BTreeMap<Vec<u8>, (Option<u64>, Option<u64>)> = BTreeMap::new();
    while planted.len() < CHANGED + ONLY_ON_A {
        let k = key((rng.next() % u64::from(KEY_COUNT)) as u32);
        if planted.contains_key(&k) {
            continue;
        }
        let old = map_a[&k];
        if planted.len() < CHANGED {
            let new = digest_of_version(2);
            map_b.insert(k.clone(), new);
            planted.insert(k, (Some(old), Some(new)));
        } else {
            map_b.remove(&k);
            planted.insert(k, (Some(old), None));
        }
    }
    for j in 0..ONLY_ON_B as u32 {
        let k = key(KEY_COUNT + j);
        map_b.insert(k.clone(), digest_of_version(1));
        planted.insert(k, (None, Some(digest_of_version(1))));
    }
    let differing_keys = planted.len();
    let a = Replica::new(&map_a);
    let b = Replica::new(&map_b);
    drop((map_a, map_b));

    // Build / update costs. The keys are taken in byte order, the order they were allocated
    // in, so that reading them is cache-friendly as on a store's write path (where the key is
    // hot) and the timing shows the tree's own cost; the tree is hit in random leaf order.
    let writes: Vec<(&[u8], u64)> = {
        let mut w: Vec<(&[u8], u64)> = b.iter().collect();
        w.sort_unstable_by_key(|(k, _)| *k);
        w
    };
    let shape = TreeShape::for_expected_keys(TokenRange::full(), u64::from(KEY_COUNT))?;
    let tree_a = MerkleTree::rebuild_from(shape, a.iter())?;
    let (tree_b, timing) = time_tree_ops(shape, &writes)?;
    let default_shape = TreeShape::new(TokenRange::full(), DEFAULT_DEPTH)?;
    let (_, default_timing) = time_tree_ops(default_shape, &writes)?;

    let leaves = u64::from(shape.leaf_count());
    let log2_leaves = u64::from(shape.depth());
    let d = differing_keys as u64;
    println!();
    println!(
        "depth {} ({} leaves, {:.1} keys per leaf), tree memory {} KiB",
        shape.depth(),
        leaves,
        a.entries.len() as f64 / leaves as f64,
        tree_a.memory_bytes() / 1024
    );
    println!("per-key tree costs (update = XOR old contribution out, new one in):");
    for (depth, t) in [(shape.depth(), timing), (DEFAULT_DEPTH, default_timing)] {
        println!(
            "  depth {depth:>2}: rebuild {:.0} ns/key, insert {:.0} ns/key, update {:.0} ns/key",
            t.rebuild_ns, t.insert_ns, t.update_ns
        );
    }
    println!(
        "differences planted: {CHANGED} changed, {ONLY_ON_A} only on A, {ONLY_ON_B} only on B (d = {d})"
    );

    let full_bytes: usize = a
        .entries
        .iter()
        .map(|(_, k, _)| k.len() + 1 + version_set_bytes())
        .sum();
    println!();
    println!(
        "full transfer (every key + {}-byte version set, one way): {:.1} MB",
        version_set_bytes(),
        full_bytes as f64 / 1e6
    );
    println!();
    println!(
        "{:>6} {:>9} {:>8} {:>10} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>9}",
        "levels",
        "compared",
        "hashes",
        "d*log2(L)",
        "round",
        "hash",
        "listing",
        "reply",
        "value",
        "total",
        "vs full"
    );
    println!(
        "{:>6} {:>9} {:>8} {:>10} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>9}",
        "/step", "nodes", "received", "", "trips", "bytes", "bytes", "bytes", "bytes", "bytes", ""
    );
    for levels in [1u8, 2, 3, 4] {
        let config = ExchangeConfig {
            levels_per_step: levels,
            salt: seed,
        };
        let cost = sync(&a, &tree_a, &b, &tree_b, config)?;
        check_found(&cost.differences, &planted)?;
        let bound = d * log2_leaves;
        println!(
            "{:>6} {:>9} {:>8} {:>10} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8.4}%{}",
            levels,
            cost.nodes_compared,
            cost.hashes_received,
            bound,
            format!("{}+2", cost.tree_round_trips),
            cost.hash_bytes,
            cost.list_bytes,
            cost.reply_bytes,
            cost.value_bytes,
            cost.total_bytes(),
            100.0 * cost.total_bytes() as f64 / full_bytes as f64,
            if levels == DEFAULT_LEVELS_PER_STEP {
                "  (default)"
            } else {
                ""
            },
        );
    }
    println!(
        "(round trips: tree walk + 1 for the listing + 1 for values; all {d} planted keys found each time)"
    );

    // The depth trade-off: deeper trees mean shorter key lists but more hashes and memory.
    println!();
    println!("depth trade-off at {DEFAULT_LEVELS_PER_STEP} levels/step:");
    println!(
        "{:>5} {:>9} {:>10} {:>9} {:>8} {:>7} {:>8} {:>9} {:>8}",
        "depth",
        "keys/leaf",
        "tree KiB",
        "compared",
        "hashes",
        "trips",
        "hash B",
        "listing B",
        "total B"
    );
    for depth in [12u8, 14, 15, 16, 17, 18, 20] {
        let shape = TreeShape::new(TokenRange::full(), depth)?;
        let ta = MerkleTree::rebuild_from(shape, a.iter())?;
        let tb = MerkleTree::rebuild_from(shape, b.iter())?;
        let config = ExchangeConfig {
            salt: seed,
            ..ExchangeConfig::default()
        };
        let cost = sync(&a, &ta, &b, &tb, config)?;
        check_found(&cost.differences, &planted)?;
        println!(
            "{:>5} {:>9.1} {:>10} {:>9} {:>8} {:>7} {:>8} {:>9} {:>8}",
            depth,
            a.entries.len() as f64 / f64::from(shape.leaf_count()),
            ta.memory_bytes() / 1024,
            cost.nodes_compared,
            cost.hashes_received,
            cost.tree_round_trips + 2,
            cost.hash_bytes,
            cost.list_bytes,
            cost.total_bytes()
        );
    }

    // Equal replicas: one round trip, one hash.
    let equal = sync(&a, &tree_a, &a, &tree_a, ExchangeConfig::default())?;
    println!();
    println!(
        "equal replicas: {} node compared, {} round trip, {} bytes",
        equal.nodes_compared,
        equal.tree_round_trips,
        equal.total_bytes()
    );
    Ok(())
}

/// Per-key costs of building and maintaining a tree, in nanoseconds.
#[derive(Clone, Copy)]
struct Timing {
    rebuild_ns: f64,
    insert_ns: f64,
    update_ns: f64,
}

/// Times a rebuild, incremental inserts, and updates (every key rewritten to another digest
/// and back) of a tree over `writes`; checks that the incremental tree equals the rebuild.
fn time_tree_ops(
    shape: TreeShape,
    writes: &[(&[u8], u64)],
) -> Result<(MerkleTree, Timing), Box<dyn Error>> {
    let per_key = |started: Instant, ops: usize| started.elapsed().as_nanos() as f64 / ops as f64;
    let started = Instant::now();
    let rebuilt = MerkleTree::rebuild_from(shape, writes.iter().copied())?;
    let rebuild_ns = per_key(started, writes.len());
    let started = Instant::now();
    let mut tree = MerkleTree::new(shape);
    for &(k, d) in writes {
        tree.insert(k, d)?;
    }
    let insert_ns = per_key(started, writes.len());
    let started = Instant::now();
    for &(k, d) in writes {
        tree.update(k, Some(d), Some(digest_of_version(3)))?;
    }
    for &(k, d) in writes {
        tree.update(k, Some(digest_of_version(3)), Some(d))?;
    }
    let update_ns = per_key(started, 2 * writes.len());
    if rebuilt != tree {
        return Err("incremental tree differs from its rebuild".into());
    }
    let timing = Timing {
        rebuild_ns,
        insert_ns,
        update_ns,
    };
    Ok((tree, timing))
}

/// Checks that the sync found exactly the planted differences, with the right digests.
fn check_found(
    found: &[KeyDifference],
    planted: &BTreeMap<Vec<u8>, (Option<u64>, Option<u64>)>,
) -> Result<(), Box<dyn Error>> {
    let found: BTreeMap<Vec<u8>, (Option<u64>, Option<u64>)> = found
        .iter()
        .map(|d| (d.key.clone(), (d.local_digest, d.remote_digest)))
        .collect();
    if &found != planted {
        return Err(format!(
            "found {} differences, planted {}",
            found.len(),
            planted.len()
        )
        .into());
    }
    Ok(())
}
