//! A node's local storage: the [`Store`] trait, its shared types and errors, the record layout
//! both implementations share ([`layout`]) and the in-memory implementation the simulator and
//! the tests use ([`MemoryStore`]). The durable one on fjall, `DurableStore`, is the runtime's
//! (`ringstore::durable_store`), since fjall does I/O.
//!
//! The store owns everything a node keeps across restarts: each key's version set (the
//! replica's data), hinted-handoff hints held for other nodes, and small metadata blobs (the
//! node's actor id, ring and membership state). It implements Dynamo's *local persistence
//! engine* (Dynamo §5: a pluggable local store behind a narrow interface), the separate local
//! hint store of hinted handoff (Dynamo §4.6), and a layout ordered by ring position so that
//! the per-range Merkle trees of anti-entropy (Dynamo §4.7) and range handoff are built from
//! contiguous scans.
//!
//! # Contract (both implementations)
//! - **Single owner.** The store belongs to one single-threaded node core: writes take
//!   `&mut self`, reads `&self`. Read-merge-write is atomic because nobody else can interleave.
//! - **Merge, never overwrite.** [`Store::merge`] folds an incoming version set into the stored
//!   one (`VersionSet::merge`: commutative, associative, idempotent) and writes only when the
//!   result differs; a coordinator's local write is "get, `update`, merge".
//! - **No empty records.** A stored version set is never empty; merging an empty set into an
//!   absent key writes nothing.
//! - **Durable before acknowledged.** Under [`SyncPolicy::EveryWrite`] a mutating call returns
//!   only once its write is on stable storage. Under [`SyncPolicy::Group`] mutating calls return
//!   before their write is durable and the owner must call [`Store::sync`] before it
//!   acknowledges any of them ("group commit = many writes, one fsync, each acknowledged only
//!   after its sync"). One `sync` covers data, hints and metadata alike.
//! - **Ring-ordered scans.** [`Store::scan`] and [`Store::scan_digests`] return the keys of a
//!   [`TokenRange`] in ring order, in pages, with a [`ScanCursor`] to continue. A paged scan is
//!   not a snapshot: a key present and unchanged for the whole scan is returned exactly once;
//!   a key written or removed meanwhile may or may not appear.
//! - **Errors, not panics.** Anything read from disk that does not decode is a
//!   [`StoreError::Corrupt`] naming the key; an I/O failure (full disk, failed fsync) is a
//!   [`StoreError::Engine`], after which the durable store refuses all further calls
//!   ([`StoreError::Poisoned`]) until it is reopened, since it can no longer tell what is durable.
//!
//! # Layout (see `docs/storage.md`)
//! A data record's storage key is `token (8 bytes, big-endian) ++ key`, with
//! `token = key_token(key)`, so storage is ordered by ring position and a token range is one or
//! two contiguous scans. Its value is a format byte, the set's digest (8 bytes, big-endian) and
//! the postcard encoding of the [`VersionSet`]; the digest in the header makes
//! [`Store::scan_digests`] and [`Store::remove_if_digest`] cheap.
//!
//! # Known limits
//! - Keys are at most [`MAX_KEY_BYTES`], encoded records at most [`MAX_RECORD_BYTES`]; a record
//!   is read and rewritten whole on each merge.
//! - Under group commit, reads may return writes that are not durable yet (a crash before the
//!   next `sync` loses them). An owner that must not serve such reads syncs first.
//! - A corrupt record stops a scan at that record (the error names it); there is no quarantine.
//! - `DurableStore`'s [`Store::key_count`] is approximate (see there).

pub mod layout;
mod memory;

pub use memory::MemoryStore;

use crate::NodeId;
use crate::ring::{Token, TokenRange};
use crate::version::VersionSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

/// The longest key the store accepts. Keys are identifiers, not payload; the limit stays well
/// below the engine's 64 KiB key limit once the 8-byte token prefix is added.
pub const MAX_KEY_BYTES: usize = 32 * 1024;

/// The largest encoded record (a version set with its header, or a hint, or a metadata blob)
/// the store accepts. A record is read and rewritten whole on every merge, so it must stay
/// small enough to do that on each write; siblings multiply a value's size.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// When writes become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncPolicy {
    /// Every mutating call is durable (fsynced) before it returns. Simple; one fsync per write.
    EveryWrite,
    /// Group commit: mutating calls return before their write is durable; the owner calls
    /// [`Store::sync`] before acknowledging any of them. The store only counts unsynced writes
    /// ([`Store::unsynced_writes`]); the owner, who owns time, enforces both bounds.
    Group {
        /// The longest a write may wait for its sync, measured by the owner from the first
        /// unsynced write.
        max_delay_ms: u64,
        /// Sync as soon as this many writes are waiting.
        max_writes: u32,
    },
}

impl SyncPolicy {
    /// Whether `unsynced_writes` waiting writes already call for a sync under this policy
    /// (the size bound of group commit; the time bound is the owner's).
    pub fn batch_full(&self, unsynced_writes: u64) -> bool {
        match self {
            SyncPolicy::EveryWrite => unsynced_writes > 0,
            SyncPolicy::Group { max_writes, .. } => unsynced_writes >= u64::from(*max_writes),
        }
    }
}

/// What [`Store::merge`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOutcome {
    /// The stored set after the merge (the incoming set merged into the previous one).
    pub merged: VersionSet,
    /// The digest of the set stored before, if the key existed (for incremental Merkle updates).
    pub previous_digest: Option<u64>,
    /// The digest of `merged`.
    pub digest: u64,
    /// Whether the stored set changed (and was written); `false` means nothing was written.
    pub changed: bool,
}

/// Where a paged scan stopped: continue with the entries strictly after it, in ring order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCursor {
    /// The storage key (token ++ key) of the last entry returned.
    storage_key: Vec<u8>,
}

/// One page of a ring-ordered scan.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanPage<E> {
    /// The entries, in ring order (token, then key bytes).
    pub entries: Vec<E>,
    /// Where to continue; `None` once the range is exhausted.
    pub next: Option<ScanCursor>,
}

/// A key and its version set, as returned by [`Store::scan`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScanEntry {
    /// The key's ring position (its `key_token`).
    pub token: Token,
    /// The key.
    pub key: Vec<u8>,
    /// The stored version set.
    pub versions: VersionSet,
    /// Its digest, as stored in the record's header.
    pub digest: u64,
}

/// A key and its version set's digest, as returned by [`Store::scan_digests`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDigest {
    /// The key's ring position (its `key_token`).
    pub token: Token,
    /// The key.
    pub key: Vec<u8>,
    /// The digest of the stored version set.
    pub digest: u64,
}

/// The identity of a stored hint, unique within one store (assigned by the store, increasing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HintId(pub u64);

/// A write held for a node that could not take it (hinted handoff, Dynamo §4.6).
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    /// The hint's identity, to remove it once delivered.
    pub id: HintId,
    /// The node the write is meant for.
    pub owner: NodeId,
    /// The key written.
    pub key: Vec<u8>,
    /// The version set to deliver (merged into the owner's on delivery).
    pub versions: VersionSet,
    /// When the hint was stored, in the owner core's clock (for expiry).
    pub created_at_ms: u64,
}

/// Which part of the store a record belongs to (for error reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreArea {
    /// Key version sets.
    Data,
    /// Hinted-handoff hints.
    Hints,
    /// Node metadata blobs.
    Meta,
}

impl fmt::Display for StoreArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreArea::Data => "data",
            StoreArea::Hints => "hint",
            StoreArea::Meta => "metadata",
        })
    }
}

/// Why a stored record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CorruptReason {
    /// The record is shorter than its fixed header, or its storage key is malformed.
    #[error("truncated record or key ({len} bytes)")]
    Truncated {
        /// The length found.
        len: usize,
    },
    /// The record's format byte is not one this build knows (written by a newer version, or
    /// garbage).
    #[error("unknown record format {0}")]
    UnknownFormat(u8),
    /// The record body did not decode.
    #[error("undecodable body: {0}")]
    Body(#[source] postcard::Error),
    /// The record body decoded but left bytes over.
    #[error("{count} trailing bytes after the body")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A data record stored under a token that is not its key's token.
    #[error("stored under token {stored:#018x}, key hashes to {expected:#018x}")]
    WrongToken {
        /// The token in the storage key.
        stored: u64,
        /// `key_token(key)`.
        expected: u64,
    },
}

/// The store's errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O error, full disk, failed fsync, unreadable files). The
    /// operation did not take effect durably and must not be acknowledged; a durable store is
    /// poisoned afterwards.
    #[error("storage engine failed while {context}: {source}")]
    Engine {
        /// What the store was doing.
        context: &'static str,
        /// The engine's error (fjall's, for `DurableStore`): boxed, so the trait names no engine.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored record did not decode. Never a panic: the caller decides (skip, repair, stop).
    #[error("corrupt {area} record for key \"{}\": {reason}", .key.escape_ascii())]
    Corrupt {
        /// The area holding the record.
        area: StoreArea,
        /// The key (data: the user key; hints: the 16-byte hint key; meta: the name).
        key: Vec<u8>,
        /// What is wrong with it.
        #[source]
        reason: CorruptReason,
    },
    /// A version set or hint could not be encoded (a bug in the value types, not a disk error).
    #[error("could not encode a record: {0}")]
    Encode(#[source] postcard::Error),
    /// Syncing the journal from the syncer thread failed (see `JournalSyncer`); the store is
    /// poisoned.
    #[error("syncing the journal {path} failed: {source}")]
    JournalSync {
        /// The journal file (or its directory, if listing it failed).
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("key of {len} bytes exceeds the limit of {MAX_KEY_BYTES} bytes")]
    KeyTooLarge {
        /// The key's length.
        len: usize,
    },
    /// The encoded record is larger than [`MAX_RECORD_BYTES`]; nothing was written.
    #[error("record of {len} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes")]
    RecordTooLarge {
        /// The encoded record's length.
        len: usize,
    },
    /// The scan cursor does not lie in the range being scanned (it came from another range).
    #[error("scan cursor lies outside the scanned range")]
    CursorOutsideRange,
    /// An earlier write or sync failed: the store can no longer tell what is durable and
    /// refuses every call. Reopen it (restart the node) to recover from the journal.
    #[error("store is poisoned by an earlier write or sync failure; reopen it")]
    Poisoned,
}

/// A node's local storage (see the module documentation for the contract).
///
/// Writes take `&mut self`: the store is owned by one single-threaded node core, which makes
/// read-merge-write atomic. The trait is object safe.
pub trait Store {
    /// The key's stored version set, if any.
    fn get(&self, key: &[u8]) -> Result<Option<VersionSet>, StoreError>;

    /// The digest of the key's stored version set, if any, without decoding the set.
    fn digest(&self, key: &[u8]) -> Result<Option<u64>, StoreError>;

    /// Merges `incoming` into the key's stored set and stores the result if it changed.
    /// Durable on return under `EveryWrite`; counted as unsynced under `Group`.
    fn merge(&mut self, key: &[u8], incoming: &VersionSet) -> Result<MergeOutcome, StoreError>;

    /// Removes the key only if its stored set still has `expected_digest` (tombstone
    /// collection: the set has not changed since it was judged collectable). Returns whether
    /// it removed the key.
    fn remove_if_digest(&mut self, key: &[u8], expected_digest: u64) -> Result<bool, StoreError>;

    /// Up to `limit` (at least 1) keys of `range` with their version sets, in ring order,
    /// starting after `after`.
    fn scan(
        &self,
        range: TokenRange,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage<ScanEntry>, StoreError>;

    /// Like [`Store::scan`], but only keys and digests: reads record headers, never decodes
    /// version sets (Merkle rebuilds, anti-entropy comparisons).
    fn scan_digests(
        &self,
        range: TokenRange,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage<KeyDigest>, StoreError>;

    /// Up to `limit` records of one partition: keys that start with `prefix` (an item
    /// partition's placement prefix, so all share one token and one contiguous run of storage)
    /// and lie within `from` and `to` (keys, not storage keys; `Unbounded` means the
    /// partition's end), in key order, or reversed with `reverse`. A query of a sort-key range
    /// is one such scan.
    fn scan_partition(
        &self,
        prefix: &[u8],
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<ScanEntry>, StoreError>;

    /// The number of stored keys. [`MemoryStore`]: exact. `DurableStore`: an estimate that
    /// is exact for insert-only histories and overcounts overwritten or removed keys until
    /// compaction folds them.
    fn key_count(&self) -> u64;

    /// Stores a hint for `owner` and returns its id (ids increase within a store's life).
    fn put_hint(
        &mut self,
        owner: NodeId,
        key: &[u8],
        versions: &VersionSet,
        created_at_ms: u64,
    ) -> Result<HintId, StoreError>;

    /// Up to `limit` (at least 1) of `owner`'s hints in id order, starting after `after`.
    fn hints_for(
        &self,
        owner: NodeId,
        after: Option<HintId>,
        limit: usize,
    ) -> Result<Vec<Hint>, StoreError>;

    /// Removes one hint (once delivered). Returns whether it existed.
    fn remove_hint(&mut self, owner: NodeId, id: HintId) -> Result<bool, StoreError>;

    /// The number of stored hints per owner (owners with none are absent).
    fn hint_counts(&self) -> BTreeMap<NodeId, u64>;

    /// A named metadata blob, if set.
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets a named metadata blob (replacing any previous value).
    fn set_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Makes every previous write durable. Under `Group`, call before acknowledging writes.
    fn sync(&mut self) -> Result<(), StoreError>;

    /// Readies every previous write for a sync that another thread performs (a durable
    /// store's `JournalSyncer`), and counts them as no longer unsynced. A store that cannot
    /// be synced from elsewhere syncs here, inline (the default).
    fn prepare_external_sync(&mut self) -> Result<(), StoreError> {
        self.sync()
    }

    /// Tells the store how the external sync prepared last ended: `true`, its writes are
    /// durable; `false`, they are not. A store whose syncer makes writes durable on its own
    /// (`DurableStore`'s `JournalSyncer`) ignores it (the default); `MemoryStore` models the
    /// window between the two calls, in which a crash loses the prepared writes.
    fn external_sync_done(&mut self, synced: bool) {
        let _ = synced;
    }

    /// The number of writes not yet durable (always 0 under `EveryWrite`).
    fn unsynced_writes(&self) -> u64;

    /// The store's sync policy.
    fn sync_policy(&self) -> SyncPolicy;
}

/// The limit a paged call uses: callers' `0` means 1, so that paging always progresses.
pub fn effective_limit(limit: usize) -> usize {
    limit.max(1)
}

/// One page of a ring-ordered scan, for either store: reads each storage-key interval of
/// `range` after `after` with `read` (in key order, records as the store holds them), maps
/// each with `entry`, and stops after `limit` entries (at least one) with a cursor to go on.
pub fn collect_page<K, R, E, I>(
    range: TokenRange,
    after: Option<&ScanCursor>,
    limit: usize,
    mut read: impl FnMut(layout::KeyBounds) -> I,
    entry: impl Fn(&[u8], R) -> Result<E, StoreError>,
) -> Result<ScanPage<E>, StoreError>
where
    K: AsRef<[u8]>,
    I: Iterator<Item = Result<(K, R), StoreError>>,
{
    let limit = effective_limit(limit);
    let mut entries = Vec::new();
    let mut last_key: Option<K> = None;
    for bounds in layout::scan_bounds(range, after)? {
        for item in read(bounds) {
            let (storage_key, record) = item?;
            if entries.len() == limit {
                let next = last_key.map(|key| layout::cursor_after(key.as_ref().to_vec()));
                return Ok(ScanPage { entries, next });
            }
            entries.push(entry(storage_key.as_ref(), record)?);
            last_key = Some(storage_key);
        }
    }
    Ok(ScanPage {
        entries,
        next: None,
    })
}

/// The set a merge stores, and whether it differs from `previous` (exactly, by structure:
/// see [`VersionSet::merge`]; a digest comparison could drop a write on a collision).
/// `previous` is taken by value and merged into in place: only `incoming`'s new parts are
/// copied.
pub fn merged_set(previous: Option<VersionSet>, incoming: &VersionSet) -> (VersionSet, bool) {
    match previous {
        Some(mut merged) => {
            let changed = merged.merge(incoming);
            (merged, changed)
        }
        None => (incoming.clone(), !incoming.is_empty()),
    }
}
