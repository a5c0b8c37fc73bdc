//! The durable store: the [`Store`] contract on fjall, an LSM-tree engine (the lineage of
//! Bigtable's tablets, LevelDB and RocksDB; Dynamo §5 used BerkeleyDB and MySQL behind the same
//! kind of narrow interface).
//!
//! One fjall database holds three keyspaces: `data` (version sets by `token ++ key`), `hints`
//! (by `owner ++ id`) and `meta` (blobs by name). All three share the database's single
//! write-ahead journal, so one journal fsync makes every previous write of every area durable.
//!
//! # Guarantees
//! - Each mutating call is one journal entry (fjall checksums each entry and recovers the
//!   journal up to the last complete one), so a crash never leaves half a write.
//! - Journal writes are never flushed implicitly (`manual_journal_persist`): a write reaches
//!   the disk through [`Store::sync`] (group commit) or the `fdatasync` that ends each call
//!   under [`SyncPolicy::EveryWrite`]. Sync uses `fdatasync` (`PersistMode::SyncData`): the
//!   journal is a preallocated file, and `fdatasync` still persists a size change.
//! - A failed write or sync poisons the store: it returns [`StoreError::Poisoned`] from then on
//!   (fjall itself refuses writes after a failed fsync, since the page cache may have dropped
//!   the unwritten pages). Reopening recovers the durable prefix from the journal.
//!
//! # Limits
//! - [`Store::key_count`] is fjall's `approximate_len`: exact for insert-only histories, an
//!   overcount of overwritten or removed keys until compaction folds their versions.
//! - Opening scans the hint keys once (to count them and continue their ids): open time grows
//!   with the number of stored hints, not with the number of keys.
//! - fjall runs background threads (memtable flushes, compaction) and keeps a lock file: one
//!   process opens a directory at a time ([`StoreError::Engine`] with fjall's `Locked`).

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use ringstore_core::NodeId;
use ringstore_core::ring::TokenRange;
use ringstore_core::store::layout::{
    HintBody, bounds_empty, check_key, check_record, data_key, decode_hint, decode_record,
    decode_record_digest, encode_hint, encode_record, hint_key, partition_bounds, split_data_key,
    split_hint_key,
};
use ringstore_core::store::{
    Hint, HintId, KeyDigest, MergeOutcome, ScanCursor, ScanEntry, ScanPage, Store, StoreError,
    SyncPolicy, collect_page, effective_limit, merged_set,
};
use ringstore_core::version::VersionSet;
use row_cache::{CachedRow, RowCache};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(test)]
mod contract_tests;
mod row_cache;

/// The block cache fjall gets unless configured otherwise (fjall recommends 20-25% of memory
/// for large data sets; a node sets this from its memory budget).
pub const DEFAULT_CACHE_SIZE_BYTES: u64 = 64 * 1024 * 1024;

/// The journal size fjall may retain unless configured otherwise. Journal entries are kept
/// until the memtables holding them are flushed, and a reopen after a crash replays them all,
/// so this bounds restart time (replay ran at roughly 2-5 us per entry here, see
/// `docs/storage.md`); fjall's own default is 512 MiB and its minimum 64 MiB.
pub const DEFAULT_MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

/// The row cache's size unless configured otherwise ([`RowCache`]): about 120,000 rows of
/// 100-byte values, which under YCSB's Zipfian keys (exponent 0.99) over 1,000,000 keys is
/// where about 84% of the accesses fall.
pub const DEFAULT_ROW_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// The data keyspace's memtable size unless configured otherwise (fjall's default).
pub const DEFAULT_MEMTABLE_BYTES: u64 = 64 * 1024 * 1024;

/// fjall's lower limit for the retained journal size (it panics below it).
const MIN_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Keyspace of data records.
const DATA_KEYSPACE: &str = "data";
/// Keyspace of hinted-handoff hints.
const HINTS_KEYSPACE: &str = "hints";
/// Keyspace of node metadata blobs.
const META_KEYSPACE: &str = "meta";

/// How a [`DurableStore`] is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableConfig {
    /// When writes become durable.
    pub sync_policy: SyncPolicy,
    /// fjall's block cache size.
    pub cache_size_bytes: u64,
    /// The most journal fjall retains before it forces memtable flushes (bounds crash-restart
    /// replay); values below 64 MiB are raised to 64 MiB.
    pub max_journal_bytes: u64,
    /// The size at which the data keyspace's memtable is sealed and flushed. fjall records it
    /// when the keyspace is created; a store reopened keeps the size it was created with.
    pub memtable_bytes: u64,
    /// The row cache's capacity in bytes (0: no row cache).
    pub row_cache_bytes: u64,
}

impl DurableConfig {
    /// The given policy with the default cache size.
    pub fn new(sync_policy: SyncPolicy) -> Self {
        Self {
            sync_policy,
            cache_size_bytes: DEFAULT_CACHE_SIZE_BYTES,
            max_journal_bytes: DEFAULT_MAX_JOURNAL_BYTES,
            memtable_bytes: DEFAULT_MEMTABLE_BYTES,
            row_cache_bytes: DEFAULT_ROW_CACHE_BYTES,
        }
    }

    /// This config with a memtable size that differs by node: 64, 72, 80 or 88 MiB by
    /// `node_id` mod 4. Replicas receive the same writes, so with equal memtables they flush
    /// at the same moment; while lsm-tree installs the flushed table it holds its version lock
    /// across several fsyncs, stalling every read of that node, and three flushes at once
    /// share one disk on a single machine. Staggered, the stalls fall at different times and
    /// a quorum of the other replicas can answer meanwhile.
    pub fn with_staggered_memtable(mut self, node_id: u64) -> Self {
        self.memtable_bytes = DEFAULT_MEMTABLE_BYTES + (node_id % 4) * DEFAULT_MEMTABLE_BYTES / 8;
        self
    }
}

/// A node's store on disk (fjall).
pub struct DurableStore {
    dir: PathBuf,
    db: Database,
    data: Keyspace,
    hints: Keyspace,
    meta: Keyspace,
    config: DurableConfig,
    unsynced_writes: u64,
    hint_counts: BTreeMap<NodeId, u64>,
    next_hint_id: u64,
    /// Decoded records of recently used keys (equal to the data keyspace's).
    rows: RowCache,
    /// Set by a failed write or sync, here or in the [`JournalSyncer`].
    poisoned: Arc<AtomicBool>,
}

/// Wraps a fjall error with what the store was doing.
fn engine(context: &'static str) -> impl FnOnce(fjall::Error) -> StoreError {
    move |source| StoreError::Engine {
        context,
        source: Box::new(source),
    }
}

impl DurableStore {
    /// Opens (or creates) the store in `dir`, recovering every write whose journal entry
    /// reached the disk.
    pub fn open(dir: impl AsRef<Path>, config: DurableConfig) -> Result<Self, StoreError> {
        let db = Database::builder(dir.as_ref())
            .cache_size(config.cache_size_bytes)
            .manual_journal_persist(true)
            .max_journaling_size(config.max_journal_bytes.max(MIN_JOURNAL_BYTES))
            .open()
            .map_err(engine("opening the database"))?;
        let options = || KeyspaceCreateOptions::default().manual_journal_persist(true);
        let data = db
            .keyspace(DATA_KEYSPACE, || {
                options().max_memtable_size(config.memtable_bytes)
            })
            .map_err(engine("opening the data keyspace"))?;
        let hints = db
            .keyspace(HINTS_KEYSPACE, options)
            .map_err(engine("opening the hints keyspace"))?;
        let meta = db
            .keyspace(META_KEYSPACE, options)
            .map_err(engine("opening the meta keyspace"))?;

        let mut hint_counts = BTreeMap::new();
        let mut next_hint_id = 0u64;
        for guard in hints.iter() {
            let storage_key = guard.key().map_err(engine("counting hints"))?;
            let (owner, id) = split_hint_key(&storage_key)?;
            *hint_counts.entry(owner).or_insert(0u64) += 1;
            next_hint_id = next_hint_id.max(id.0.saturating_add(1));
        }

        Ok(Self {
            dir: dir.as_ref().to_path_buf(),
            db,
            data,
            hints,
            meta,
            config,
            unsynced_writes: 0,
            hint_counts,
            next_hint_id,
            rows: RowCache::new(config.row_cache_bytes),
            poisoned: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Syncs and closes the store, reporting a sync failure that dropping it would swallow.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.sync()
    }

    /// A syncer for this store's journal, to run on another thread after
    /// [`Store::prepare_external_sync`].
    pub fn journal_syncer(&self) -> JournalSyncer {
        JournalSyncer {
            dir: self.dir.clone(),
            active: None,
            poisoned: self.poisoned.clone(),
        }
    }

    /// Bytes the store occupies on disk (journal and tables).
    pub fn disk_space_bytes(&self) -> Result<u64, StoreError> {
        self.db.disk_space().map_err(engine("measuring disk space"))
    }

    /// Refuses every call once a write or sync has failed.
    fn usable(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::Poisoned);
        }
        Ok(())
    }

    /// Persists the journal as `mode` says if any write is unsynced; a failure poisons the
    /// store.
    fn persist_journal(
        &mut self,
        mode: PersistMode,
        context: &'static str,
    ) -> Result<(), StoreError> {
        self.usable()?;
        if self.unsynced_writes == 0 {
            return Ok(());
        }
        if let Err(source) = self.db.persist(mode) {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(engine(context)(source));
        }
        self.unsynced_writes = 0;
        Ok(())
    }

    /// Completes a mutating call: poisons the store if the write failed, then makes the write
    /// durable now (`EveryWrite`) or counts it for the next sync (`Group`).
    fn finish_write(
        &mut self,
        written: fjall::Result<()>,
        context: &'static str,
    ) -> Result<(), StoreError> {
        if let Err(source) = written {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(engine(context)(source));
        }
        self.unsynced_writes += 1;
        match self.config.sync_policy {
            SyncPolicy::EveryWrite => self.sync(),
            SyncPolicy::Group { .. } => Ok(()),
        }
    }

    /// Refuses a malformed key, and any access once the store is poisoned; every per-key entry
    /// point calls it once, before the row cache or fjall.
    fn checked(&self, key: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.usable()
    }

    /// What the store holds for `key`: from the row cache, or read, decoded and cached.
    fn row(&self, key: &[u8]) -> Result<CachedRow, StoreError> {
        self.checked(key)?;
        if let Some(row) = self.rows.get(key) {
            return Ok(row);
        }
        let row = self.read_row(key)?;
        self.rows.put(key, row.clone());
        Ok(row)
    }

    /// What the store holds for `key`, read and decoded, bypassing the row cache.
    fn read_row(&self, key: &[u8]) -> Result<CachedRow, StoreError> {
        Ok(match self.raw_record(key)? {
            Some(record) => {
                let (digest, set) = decode_record(key, &record)?;
                CachedRow::Present {
                    digest,
                    set,
                    record_bytes: u32::try_from(record.len()).unwrap_or(u32::MAX),
                }
            }
            None => CachedRow::Absent,
        })
    }

    /// The digest of `key`'s record: from the row cache, or from the record's header (no
    /// decode of the set). The caller has [`Self::checked`] the key.
    fn stored_digest(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        if let Some(digest) = self.rows.digest(key) {
            return Ok(digest);
        }
        match self.raw_record(key)? {
            Some(record) => Ok(Some(decode_record_digest(key, &record)?)),
            None => Ok(None),
        }
    }

    /// The raw data record of `key`, if any. The caller has [`Self::checked`] the key.
    fn raw_record(&self, key: &[u8]) -> Result<Option<fjall::Slice>, StoreError> {
        self.data
            .get(data_key(key))
            .map_err(engine("reading a data record"))
    }

    /// The entries of a ring-ordered scan, mapped by `entry` from (storage key, record).
    fn scan_with<E>(
        &self,
        range: TokenRange,
        after: Option<&ScanCursor>,
        limit: usize,
        entry: impl Fn(&[u8], &[u8]) -> Result<E, StoreError>,
    ) -> Result<ScanPage<E>, StoreError> {
        self.usable()?;
        let read = |bounds| {
            self.data
                .range::<Vec<u8>, _>(bounds)
                .map(|guard| guard.into_inner().map_err(engine("scanning data records")))
        };
        collect_page(range, after, limit, read, |key, record: fjall::Slice| {
            entry(key, &record)
        })
    }
}

impl Store for DurableStore {
    fn get(&self, key: &[u8]) -> Result<Option<VersionSet>, StoreError> {
        match self.row(key)? {
            CachedRow::Present { set, .. } => Ok(Some(set)),
            CachedRow::Absent => Ok(None),
        }
    }

    fn digest(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        self.checked(key)?;
        self.stored_digest(key)
    }

    fn merge(&mut self, key: &[u8], incoming: &VersionSet) -> Result<MergeOutcome, StoreError> {
        self.checked(key)?;
        // Taken out of the cache, not copied: the merged set is built in it and replaces it.
        let previous_row = match self.rows.take(key) {
            Some(row) => row,
            None => self.read_row(key)?,
        };
        let (previous, previous_digest, previous_bytes) = match previous_row {
            CachedRow::Present {
                digest,
                set,
                record_bytes,
            } => (Some(set), Some(digest), record_bytes),
            CachedRow::Absent => (None, None, 0),
        };
        let (merged, changed) = merged_set(previous, incoming);
        if !changed {
            let row = match previous_digest {
                Some(digest) => CachedRow::Present {
                    digest,
                    set: merged.clone(),
                    record_bytes: previous_bytes,
                },
                None => CachedRow::Absent,
            };
            self.rows.put(key, row);
            return Ok(MergeOutcome {
                // Unchanged, so the digest is the stored one (an empty set has none stored).
                digest: previous_digest.unwrap_or_else(|| merged.digest()),
                merged,
                previous_digest,
                changed,
            });
        }
        let digest = merged.digest();
        let (written, row) = if merged.is_empty() {
            (self.data.remove(data_key(key)), CachedRow::Absent)
        } else {
            let record = encode_record(&merged, digest)?;
            let row = CachedRow::Present {
                digest,
                set: merged.clone(),
                record_bytes: u32::try_from(record.len()).unwrap_or(u32::MAX),
            };
            (self.data.insert(data_key(key), record), row)
        };
        let written_ok = written.is_ok();
        if let Err(e) = self.finish_write(written, "writing a data record") {
            // The insert may have reached the memtable before the failure (a failed sync).
            self.rows.invalidate(key);
            return Err(e);
        }
        if written_ok {
            self.rows.put(key, row);
        }
        Ok(MergeOutcome {
            merged,
            previous_digest,
            digest,
            changed,
        })
    }

    fn remove_if_digest(&mut self, key: &[u8], expected_digest: u64) -> Result<bool, StoreError> {
        self.checked(key)?;
        if self.stored_digest(key)? != Some(expected_digest) {
            return Ok(false);
        }
        let removed = self.data.remove(data_key(key));
        if let Err(e) = self.finish_write(removed, "removing a data record") {
            self.rows.invalidate(key);
            return Err(e);
        }
        self.rows.put(key, CachedRow::Absent);
        Ok(true)
    }

    fn scan(
        &self,
        range: TokenRange,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage<ScanEntry>, StoreError> {
        self.scan_with(range, after, limit, |storage_key, record| {
            let (token, key) = split_data_key(storage_key)?;
            let (digest, versions) = decode_record(key, record)?;
            Ok(ScanEntry {
                token,
                key: key.to_vec(),
                versions,
                digest,
            })
        })
    }

    fn scan_digests(
        &self,
        range: TokenRange,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage<KeyDigest>, StoreError> {
        self.scan_with(range, after, limit, |storage_key, record| {
            let (token, key) = split_data_key(storage_key)?;
            Ok(KeyDigest {
                token,
                key: key.to_vec(),
                digest: decode_record_digest(key, record)?,
            })
        })
    }

    fn scan_partition(
        &self,
        prefix: &[u8],
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<ScanEntry>, StoreError> {
        self.usable()?;
        let (lower, upper) = partition_bounds(prefix, from, to);
        if bounds_empty(&lower, &upper) {
            return Ok(Vec::new());
        }
        let range = self.data.range::<Vec<u8>, _>((lower, upper));
        let records: Box<dyn Iterator<Item = fjall::Guard>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut entries = Vec::new();
        for guard in records {
            let (storage_key, record) =
                guard.into_inner().map_err(engine("scanning a partition"))?;
            let (token, key) = split_data_key(&storage_key)?;
            // Another partition whose token collides shares the run: skip its keys.
            if !key.starts_with(prefix) {
                continue;
            }
            let (digest, versions) = decode_record(key, &record)?;
            entries.push(ScanEntry {
                token,
                key: key.to_vec(),
                versions,
                digest,
            });
            if entries.len() >= limit.max(1) {
                break;
            }
        }
        Ok(entries)
    }

    fn key_count(&self) -> u64 {
        self.data.approximate_len() as u64
    }

    fn put_hint(
        &mut self,
        owner: NodeId,
        key: &[u8],
        versions: &VersionSet,
        created_at_ms: u64,
    ) -> Result<HintId, StoreError> {
        check_key(key)?;
        self.usable()?;
        let id = HintId(self.next_hint_id);
        let record = encode_hint(&HintBody {
            key: key.to_vec(),
            versions: versions.clone(),
            created_at_ms,
        })?;
        let written = self.hints.insert(hint_key(owner, id), record);
        self.finish_write(written, "writing a hint")?;
        self.next_hint_id = self.next_hint_id.saturating_add(1);
        *self.hint_counts.entry(owner).or_insert(0) += 1;
        Ok(id)
    }

    fn hints_for(
        &self,
        owner: NodeId,
        after: Option<HintId>,
        limit: usize,
    ) -> Result<Vec<Hint>, StoreError> {
        self.usable()?;
        let start = match after {
            Some(id) => Bound::Excluded(hint_key(owner, id)),
            None => Bound::Included(hint_key(owner, HintId(0))),
        };
        let end = Bound::Included(hint_key(owner, HintId(u64::MAX)));
        let mut hints = Vec::new();
        for guard in self
            .hints
            .range::<[u8; 16], _>((start, end))
            .take(effective_limit(limit))
        {
            let (storage_key, record) = guard.into_inner().map_err(engine("reading hints"))?;
            let (owner, id) = split_hint_key(&storage_key)?;
            hints.push(decode_hint(&storage_key, &record)?.into_hint(owner, id));
        }
        Ok(hints)
    }

    fn remove_hint(&mut self, owner: NodeId, id: HintId) -> Result<bool, StoreError> {
        self.usable()?;
        let storage_key = hint_key(owner, id);
        let exists = self
            .hints
            .contains_key(storage_key)
            .map_err(engine("looking up a hint"))?;
        if !exists {
            return Ok(false);
        }
        let removed = self.hints.remove(storage_key);
        self.finish_write(removed, "removing a hint")?;
        if let Some(count) = self.hint_counts.get_mut(&owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.hint_counts.remove(&owner);
            }
        }
        Ok(true)
    }

    fn hint_counts(&self) -> BTreeMap<NodeId, u64> {
        self.hint_counts.clone()
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(name.as_bytes())?;
        self.usable()?;
        let value = self
            .meta
            .get(name.as_bytes())
            .map_err(engine("reading metadata"))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn set_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(name.as_bytes())?;
        check_record(value)?;
        self.usable()?;
        let written = self.meta.insert(name.as_bytes(), value);
        self.finish_write(written, "writing metadata")
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.persist_journal(PersistMode::SyncData, "syncing the journal")
    }

    fn prepare_external_sync(&mut self) -> Result<(), StoreError> {
        // Hands fjall's buffered journal bytes to the OS (a write, no fsync) under fjall's
        // journal lock, which its own fsync would hold for the whole fsync.
        self.persist_journal(PersistMode::Buffer, "flushing the journal buffer")
    }

    fn unsynced_writes(&self) -> u64 {
        self.unsynced_writes
    }

    fn sync_policy(&self) -> SyncPolicy {
        self.config.sync_policy
    }
}

/// Makes a [`DurableStore`]'s journal durable from another thread, so that the thread that
/// writes never waits for the disk (the runtime's syncer thread; see `runtime::driver`).
///
/// Why it is correct (fjall 3.1, pinned in Cargo.lock): fjall appends every write to the active
/// journal file `<dir>/<id>.jnl`, the one with the highest id; `prepare_external_sync` has
/// pushed every buffered byte into that file's page cache; and fjall seals a journal only
/// after fsyncing it (`Writer::rotate` persists with `SyncAll`) before it creates the next.
/// So an `fdatasync` of the highest-numbered journal, found after the prepare, covers every
/// write made before it: either the bytes are still in that file, or a rotation already made
/// them durable. `tests/store_crash.rs` and the store tests check the ack-after-sync contract;
/// a power loss is not testable here.
pub struct JournalSyncer {
    dir: PathBuf,
    /// The active journal's id and an open handle on it.
    active: Option<(u64, std::fs::File)>,
    poisoned: Arc<AtomicBool>,
}

impl JournalSyncer {
    /// Makes every write prepared before this call durable; poisons the store on failure.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        let result = self.sync_active();
        if result.is_err() {
            self.poisoned.store(true, Ordering::SeqCst);
        }
        result
    }

    /// The highest journal id in the directory, if any.
    fn newest_journal(&self) -> std::io::Result<Option<u64>> {
        let mut newest = None;
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jnl"))
                .and_then(|n| n.parse::<u64>().ok());
            newest = newest.max(id);
        }
        Ok(newest)
    }

    fn sync_active(&mut self) -> Result<(), StoreError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::JournalSync { path, source }
        };
        let newest = match &self.active {
            // fjall numbers journals in sequence: step past the open one while a newer exists
            // (a stat each) rather than list the directory on every sync.
            Some((open, _)) => {
                let mut id = *open;
                while self.dir.join(format!("{}.jnl", id + 1)).exists() {
                    id += 1;
                }
                Some(id)
            }
            None => self.newest_journal().map_err(failed(&self.dir))?,
        };
        let Some(id) = newest else {
            // No journal at all: nothing was ever written, so nothing to make durable.
            return Ok(());
        };
        let path = self.dir.join(format!("{id}.jnl"));
        if self.active.as_ref().is_none_or(|(open, _)| *open != id) {
            let file = std::fs::File::open(&path).map_err(failed(&path))?;
            self.active = Some((id, file));
        }
        match &self.active {
            Some((_, file)) => file.sync_data().map_err(failed(&path)),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore")
            .field("path", &self.data.path())
            .field("config", &self.config)
            .field("unsynced_writes", &self.unsynced_writes)
            .field("hint_counts", &self.hint_counts)
            .field("next_hint_id", &self.next_hint_id)
            .field("poisoned", &self.poisoned.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::store::{CorruptReason, StoreArea};
    use ringstore_core::version::{ActorId, CausalContext, Value};

    // A sync prepared on the writing thread and performed by a JournalSyncer on another
    // thread leaves nothing unsynced and keeps the store writable: every write is there
    // after reopening. (Journal rotation is covered by fjall sealing journals with an fsync;
    // see `JournalSyncer`.)
    #[test]
    fn external_syncs_cover_every_prepared_write() {
        let dir = tempfile::tempdir().unwrap();
        let policy = SyncPolicy::Group {
            max_delay_ms: 1,
            max_writes: 1_000,
        };
        let mut store = DurableStore::open(dir.path(), DurableConfig::new(policy)).unwrap();
        let mut syncer = store.journal_syncer();
        // Nothing written yet: a sync with no journal content is fine.
        syncer.sync().unwrap();
        for round in 0..20u32 {
            for i in 0..50u32 {
                let key = format!("k{round}-{i}");
                store.merge(key.as_bytes(), &set_of(b"v")).unwrap();
            }
            assert_eq!(store.unsynced_writes(), 50);
            store.prepare_external_sync().unwrap();
            assert_eq!(store.unsynced_writes(), 0);
            let mut moved = syncer;
            syncer = std::thread::spawn(move || {
                moved.sync().unwrap();
                moved
            })
            .join()
            .unwrap();
        }
        drop(store);
        let store = DurableStore::open(dir.path(), DurableConfig::new(policy)).unwrap();
        for round in 0..20u32 {
            for i in 0..50u32 {
                let key = format!("k{round}-{i}");
                assert!(store.get(key.as_bytes()).unwrap().is_some(), "{key}");
            }
        }
    }

    fn set_of(payload: &[u8]) -> VersionSet {
        VersionSet::with_update(
            &CausalContext::empty(),
            ActorId(1),
            Value::Data(payload.to_vec()),
        )
    }

    fn open(dir: &Path) -> DurableStore {
        DurableStore::open(dir, DurableConfig::new(SyncPolicy::EveryWrite)).unwrap()
    }

    // A record that does not decode is an error naming its key from get, merge and scan, not
    // a panic; a digest scan still works while the header is intact.
    #[test]
    fn corrupt_records_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store.merge(b"good", &set_of(b"g")).unwrap();
        let digest = 0x1234_5678_9abc_def0u64;
        let mut bad_body = vec![ringstore_core::store::layout::RECORD_FORMAT_V1];
        bad_body.extend_from_slice(&digest.to_be_bytes());
        bad_body.extend_from_slice(&[0xff; 12]);
        store.data.insert(data_key(b"bad"), bad_body).unwrap();

        let is_corrupt_bad = |result: Result<_, StoreError>| match result {
            Err(StoreError::Corrupt { area, key, reason }) => {
                assert_eq!(area, StoreArea::Data);
                assert_eq!(key, b"bad");
                assert!(matches!(reason, CorruptReason::Body(_)), "{reason:?}");
                true
            }
            _ => false,
        };
        assert!(is_corrupt_bad(store.get(b"bad").map(|_| ())));
        assert!(is_corrupt_bad(
            store.merge(b"bad", &set_of(b"x")).map(|_| ())
        ));
        assert!(is_corrupt_bad(
            store.scan(TokenRange::full(), None, 10).map(|_| ())
        ));
        assert_eq!(store.digest(b"bad").unwrap(), Some(digest));
        let digests = store.scan_digests(TokenRange::full(), None, 10).unwrap();
        assert_eq!(digests.entries.len(), 2);
        assert_eq!(store.get(b"good").unwrap(), Some(set_of(b"g")));
        // The corrupt record can still be collected by its (intact) digest.
        assert!(store.remove_if_digest(b"bad", digest).unwrap());
        assert_eq!(
            store
                .scan(TokenRange::full(), None, 10)
                .unwrap()
                .entries
                .len(),
            1
        );

        store
            .data
            .insert(data_key(b"unknown"), vec![7u8; 20])
            .unwrap();
        assert!(matches!(
            store.get(b"unknown"),
            Err(StoreError::Corrupt {
                reason: CorruptReason::UnknownFormat(7),
                ..
            })
        ));
    }

    // Opening where a database cannot live is an error, not a panic.
    #[test]
    fn open_on_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"x").unwrap();
        let result = DurableStore::open(&file, DurableConfig::new(SyncPolicy::EveryWrite));
        assert!(
            matches!(result, Err(StoreError::Engine { .. })),
            "{result:?}"
        );
    }

    // A second open of a directory in use is refused (fjall's lock), not a shared database.
    #[test]
    fn second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _store = open(dir.path());
        let second = DurableStore::open(dir.path(), DurableConfig::new(SyncPolicy::EveryWrite));
        assert!(
            matches!(second, Err(StoreError::Engine { .. })),
            "{second:?}"
        );
    }
}
