//! The row cache: decoded data records of recently used keys, in front of fjall.
//!
//! A point read in fjall searches the active memtable (a skiplist of every write since the
//! last flush, old versions included), then the sealed ones, then the tables, and the record
//! it finds must still be decoded. Under a skewed workload most reads and merges touch a few
//! hot keys again and again; profiles of YCSB-A put the memtable search first among the
//! node's costs. The cache answers those from a hash map (Cassandra's row cache, Riak's
//! leveldb block cache one level up). It holds absences too, so a write of a new key does not
//! search every level twice.
//!
//! # Invariants
//! - An entry equals what the data keyspace holds for its key: the [`super::DurableStore`]
//!   updates it after every successful write of the key and invalidates it after a failed one,
//!   and nothing else writes the data keyspace.
//! - The cache never holds a write fjall has not accepted, so it is never ahead of the store;
//!   it starts empty at every open.
//! - Its size is bounded by weight (key bytes plus encoded record bytes plus a fixed overhead),
//!   evicted by quick_cache's CLOCK-PRO-like policy, so one huge record cannot crowd out the rest
//!   unnoticed and a scan-like burst of cold keys does not flush the hot ones.
//!
//! Interior mutability: reads are `&self` in the [`super::Store`] contract, and a read miss
//! fills the cache. The store is owned by one node core on one thread, so a `RefCell` is
//! enough; no borrow is held across a call out of this module.

use quick_cache::Weighter;
use quick_cache::unsync::Cache;
use ringstore_core::version::VersionSet;
use std::cell::RefCell;

/// Per-entry bookkeeping bytes counted on top of the key and record (hash-map slot, `Vec`
/// headers, the set's entry vector).
const ENTRY_OVERHEAD_BYTES: u64 = 96;

/// A key's stored state: its record's digest, its decoded set and the record's size, or
/// `Absent` when the store holds nothing for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CachedRow {
    /// The key is not stored.
    Absent,
    /// The key's record.
    Present {
        /// The record's digest (as stored in its header).
        digest: u64,
        /// The decoded version set.
        set: VersionSet,
        /// Bytes of the encoded record (its weight in the cache).
        record_bytes: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct RowWeighter;

impl Weighter<Vec<u8>, CachedRow> for RowWeighter {
    fn weight(&self, key: &Vec<u8>, row: &CachedRow) -> u64 {
        let record = match row {
            CachedRow::Absent => 0,
            CachedRow::Present { record_bytes, .. } => u64::from(*record_bytes),
        };
        key.len() as u64 + record + ENTRY_OVERHEAD_BYTES
    }
}

/// The cache (see the module docs). Capacity 0 disables it.
pub struct RowCache {
    rows: Option<RefCell<Cache<Vec<u8>, CachedRow, RowWeighter>>>,
}

impl RowCache {
    /// A cache of at most `capacity_bytes` of weight; 0 keeps nothing.
    pub fn new(capacity_bytes: u64) -> Self {
        if capacity_bytes == 0 {
            return Self { rows: None };
        }
        // quick_cache sizes its tables from an estimate of the item count.
        let per_item = 256;
        let items = usize::try_from(capacity_bytes / per_item)
            .unwrap_or(usize::MAX)
            .max(16);
        let cache = Cache::with_weighter(items, capacity_bytes, RowWeighter);
        Self {
            rows: Some(RefCell::new(cache)),
        }
    }

    /// The cached row of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<CachedRow> {
        let rows = self.rows.as_ref()?.borrow();
        rows.get(key).cloned()
    }

    /// The digest of `key`'s cached row (`Some(None)`: cached as absent), without copying
    /// the set.
    pub fn digest(&self, key: &[u8]) -> Option<Option<u64>> {
        let rows = self.rows.as_ref()?.borrow();
        rows.get(key).map(|row| match row {
            CachedRow::Present { digest, .. } => Some(*digest),
            CachedRow::Absent => None,
        })
    }

    /// Removes and returns the cached row of `key` (a merge about to replace it: no copy).
    pub fn take(&self, key: &[u8]) -> Option<CachedRow> {
        let rows = self.rows.as_ref()?;
        rows.borrow_mut().remove(key).map(|(_, row)| row)
    }

    /// Records `row` as what the store now holds for `key`.
    pub fn put(&self, key: &[u8], row: CachedRow) {
        if let Some(rows) = &self.rows {
            rows.borrow_mut().insert(key.to_vec(), row);
        }
    }

    /// Forgets `key` (after a write whose outcome is unknown).
    pub fn invalidate(&self, key: &[u8]) {
        if let Some(rows) = &self.rows {
            rows.borrow_mut().remove(key);
        }
    }

    /// Entries held.
    fn len(&self) -> usize {
        self.rows.as_ref().map_or(0, |rows| rows.borrow().len())
    }
}

impl std::fmt::Debug for RowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowCache")
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::version::{ActorId, CausalContext, Value};

    fn row(payload: &[u8]) -> CachedRow {
        let set = VersionSet::with_update(
            &CausalContext::empty(),
            ActorId(1),
            Value::Data(payload.to_vec()),
        );
        CachedRow::Present {
            digest: set.digest(),
            set,
            record_bytes: payload.len() as u32 + 20,
        }
    }

    // What was put is returned, absences included; invalidation forgets; 0 bytes keeps nothing.
    #[test]
    fn rows_are_returned_until_invalidated() {
        let cache = RowCache::new(1 << 20);
        assert_eq!(cache.get(b"k"), None);
        cache.put(b"k", row(b"v1"));
        cache.put(b"gone", CachedRow::Absent);
        assert_eq!(cache.get(b"k"), Some(row(b"v1")));
        assert_eq!(cache.get(b"gone"), Some(CachedRow::Absent));
        assert_eq!(cache.digest(b"gone"), Some(None));
        assert_eq!(cache.digest(b"never"), None);
        cache.put(b"k", row(b"v2"));
        assert_eq!(cache.get(b"k"), Some(row(b"v2")));
        assert_eq!(cache.take(b"k"), Some(row(b"v2")));
        assert_eq!(cache.get(b"k"), None, "taken");
        cache.put(b"k", row(b"v3"));
        cache.invalidate(b"k");
        assert_eq!(cache.get(b"k"), None);
        let off = RowCache::new(0);
        off.put(b"k", row(b"v1"));
        assert_eq!(off.get(b"k"), None);
    }

    // The weight bound holds: far more rows than fit leave the cache within its capacity.
    #[test]
    fn capacity_bounds_the_rows_kept() {
        let cache = RowCache::new(64 * 1024);
        let payload = vec![7u8; 400];
        for i in 0..10_000u32 {
            cache.put(format!("key-{i}").as_bytes(), row(&payload));
        }
        let kept = cache.len();
        assert!(kept > 0, "something is kept");
        assert!(kept * 500 <= 64 * 1024 + 1024, "{kept} rows exceed 64 KiB");
    }
}
