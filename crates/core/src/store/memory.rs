//! The in-memory store, for the simulator: the [`Store`] contract on `BTreeMap`s, plus a model
//! of what a crash keeps.
//!
//! # Durability model
//! - Under [`SyncPolicy::EveryWrite`] every write is durable when its call returns; a crash
//!   loses nothing.
//! - Under [`SyncPolicy::Group`] every write is applied at once (reads see it) and recorded in
//!   an undo log of unsynced writes; [`Store::sync`] makes them durable (clears the log);
//!   [`MemoryStore::crash`] rolls back every unsynced write, as a power loss loses what was
//!   not fsynced; [`MemoryStore::crash_keeping`] keeps only a prefix of them, as a journal
//!   that reached the disk partly does (a write-ahead journal is recovered up to its first
//!   missing or torn entry, so what survives is always a prefix of the write order).
//! - A sync another party performs (the simulator's, after a simulated fsync latency) is two
//!   steps, as the runtime's is: [`Store::prepare_external_sync`] moves the unsynced writes into
//!   a batch being synced, [`Store::external_sync_done`] makes that batch durable (or, when the
//!   sync failed, unsynced again). A crash in between loses the batch too.
//! - After a crash the store is as `DurableStore` (the runtime's) is when reopened: durable writes
//!   only, hint ids continuing after the largest surviving id.
//!
//! # Invariants
//! - Iteration order is deterministic (ordered maps keyed like the durable layout), so scans
//!   return exactly what the durable store's scans return for the same contents.
//! - The undo log and the batch being synced are empty under `EveryWrite` and right after
//!   `sync` or a crash; what a crash rolls back is always a suffix of the write order
//!   (the batch being synced comes before every unsynced write).
//!
//! # Limits
//! - It never fails on I/O (no fault injection yet) and does not encode records, so
//!   [`super::MAX_RECORD_BYTES`] is not enforced; key length is.

use super::layout::{
    HintBody, bounds_empty, check_key, data_key, partition_bounds, split_data_key,
};
use super::{
    Hint, HintId, KeyDigest, MergeOutcome, ScanCursor, ScanEntry, ScanPage, Store, StoreError,
    SyncPolicy, collect_page, effective_limit, merged_set,
};
use crate::NodeId;
use crate::ring::TokenRange;
use crate::version::{Dot, VersionSet};
use std::collections::BTreeMap;
use std::ops::Bound;

/// A stored version set with the digest computed when it was written.
#[derive(Clone, Debug, PartialEq)]
struct MemRecord {
    digest: u64,
    versions: VersionSet,
}

/// One unsynced write, with what it replaced, so that a crash can roll it back.
#[derive(Clone, Debug)]
enum UndoEntry {
    /// A data record was written or removed.
    Data {
        storage_key: Vec<u8>,
        previous: Option<MemRecord>,
    },
    /// A hint was written or removed.
    Hint {
        owner: NodeId,
        id: HintId,
        previous: Option<HintBody>,
    },
    /// A metadata blob was set.
    Meta {
        name: String,
        previous: Option<Vec<u8>>,
    },
}

/// The simulator's store: the [`Store`] contract in memory, with a crash model.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    policy: SyncPolicy,
    /// Data records by storage key (token ++ key), so iteration is ring order.
    data: BTreeMap<Vec<u8>, MemRecord>,
    hints: BTreeMap<(NodeId, HintId), HintBody>,
    hint_counts: BTreeMap<NodeId, u64>,
    meta: BTreeMap<String, Vec<u8>>,
    /// Unsynced writes, oldest first (always empty under `EveryWrite`).
    unsynced: Vec<UndoEntry>,
    /// Writes handed to an external sync that has not completed, oldest first; all older
    /// than every entry of `unsynced`.
    syncing: Vec<UndoEntry>,
    next_hint_id: u64,
}

impl MemoryStore {
    /// An empty store with the given sync policy.
    pub fn new(policy: SyncPolicy) -> Self {
        Self {
            policy,
            data: BTreeMap::new(),
            hints: BTreeMap::new(),
            hint_counts: BTreeMap::new(),
            meta: BTreeMap::new(),
            unsynced: Vec::new(),
            syncing: Vec::new(),
            next_hint_id: 0,
        }
    }

    /// Models a power loss and restart: every write not yet synced is lost.
    pub fn crash(&mut self) {
        self.crash_keeping(0);
    }

    /// Models a power loss after which the first `kept` unsynced writes (in write order)
    /// reached the disk and the rest did not. `kept` beyond the unsynced count keeps them all.
    pub fn crash_keeping(&mut self, kept: usize) {
        // A sync under way had not completed: its writes are as unsynced as the rest, and
        // older than them.
        let mut pending = std::mem::take(&mut self.syncing);
        pending.append(&mut self.unsynced);
        self.unsynced = pending;
        while self.unsynced.len() > kept {
            let Some(entry) = self.unsynced.pop() else {
                break;
            };
            self.undo(entry);
        }
        self.unsynced.clear();
        self.next_hint_id = self
            .hints
            .keys()
            .map(|(_, id)| id.0.saturating_add(1))
            .max()
            .unwrap_or(0);
    }

    /// Whether what a crash now would keep of `key` knows `dot` (holds that version or one that
    /// supersedes it), as this node's data or in a hint it holds for another node: the
    /// simulator's check that an acknowledgement is backed by durable copies.
    pub fn durably_knows(&self, key: &[u8], dot: Dot) -> bool {
        let storage_key = data_key(key);
        // The oldest pending write of a record holds the record's durable state in `previous`.
        let mut durable_data: Option<Option<&MemRecord>> = None;
        let mut durable_hints: BTreeMap<(NodeId, HintId), Option<&HintBody>> = BTreeMap::new();
        for entry in self.syncing.iter().chain(self.unsynced.iter()) {
            match entry {
                UndoEntry::Data {
                    storage_key: written,
                    previous,
                } if *written == storage_key && durable_data.is_none() => {
                    durable_data = Some(previous.as_ref());
                }
                UndoEntry::Hint {
                    owner,
                    id,
                    previous,
                } => {
                    durable_hints
                        .entry((*owner, *id))
                        .or_insert(previous.as_ref());
                }
                _ => {}
            }
        }
        let data = durable_data.unwrap_or_else(|| self.data.get(&storage_key));
        if data.is_some_and(|record| record.versions.knows(dot)) {
            return true;
        }
        let knows = |body: &HintBody| body.key == key && body.versions.knows(dot);
        self.hints
            .iter()
            .filter(|(hint, _)| !durable_hints.contains_key(hint))
            .any(|(_, body)| knows(body))
            || durable_hints.values().flatten().any(|body| knows(body))
    }

    /// Rolls back one write.
    fn undo(&mut self, entry: UndoEntry) {
        match entry {
            UndoEntry::Data {
                storage_key,
                previous,
            } => {
                match previous {
                    Some(record) => self.data.insert(storage_key, record),
                    None => self.data.remove(&storage_key),
                };
            }
            UndoEntry::Hint {
                owner,
                id,
                previous,
            } => {
                match previous {
                    Some(body) => self.insert_hint(owner, id, body),
                    None => self.remove_hint_entry(owner, id),
                };
            }
            UndoEntry::Meta { name, previous } => {
                match previous {
                    Some(value) => self.meta.insert(name, value),
                    None => self.meta.remove(&name),
                };
            }
        }
    }

    /// Records a write for rollback if it is not durable yet.
    fn log_write(&mut self, entry: UndoEntry) {
        if matches!(self.policy, SyncPolicy::Group { .. }) {
            self.unsynced.push(entry);
        }
    }

    fn insert_hint(&mut self, owner: NodeId, id: HintId, body: HintBody) -> Option<HintBody> {
        let previous = self.hints.insert((owner, id), body);
        if previous.is_none() {
            *self.hint_counts.entry(owner).or_insert(0) += 1;
        }
        previous
    }

    fn remove_hint_entry(&mut self, owner: NodeId, id: HintId) -> Option<HintBody> {
        let previous = self.hints.remove(&(owner, id));
        if previous.is_some()
            && let Some(count) = self.hint_counts.get_mut(&owner)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.hint_counts.remove(&owner);
            }
        }
        previous
    }

    /// The entries of a ring-ordered scan, mapped by `entry`, plus whether more remain.
    fn scan_with<E>(
        &self,
        range: TokenRange,
        after: Option<&ScanCursor>,
        limit: usize,
        entry: impl Fn(&[u8], &MemRecord) -> Result<E, StoreError>,
    ) -> Result<ScanPage<E>, StoreError> {
        let read = |bounds| self.data.range::<Vec<u8>, _>(bounds).map(Ok);
        collect_page(range, after, limit, read, entry)
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<VersionSet>, StoreError> {
        check_key(key)?;
        Ok(self.data.get(&data_key(key)).map(|r| r.versions.clone()))
    }

    fn digest(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        check_key(key)?;
        Ok(self.data.get(&data_key(key)).map(|r| r.digest))
    }

    fn merge(&mut self, key: &[u8], incoming: &VersionSet) -> Result<MergeOutcome, StoreError> {
        check_key(key)?;
        let storage_key = data_key(key);
        let previous = self.data.get(&storage_key);
        let previous_digest = previous.map(|r| r.digest);
        let (merged, changed) = merged_set(previous.map(|r| r.versions.clone()), incoming);
        let digest = merged.digest();
        if changed {
            let previous = if merged.is_empty() {
                self.data.remove(&storage_key)
            } else {
                let record = MemRecord {
                    digest,
                    versions: merged.clone(),
                };
                self.data.insert(storage_key.clone(), record)
            };
            self.log_write(UndoEntry::Data {
                storage_key,
                previous,
            });
        }
        Ok(MergeOutcome {
            merged,
            previous_digest,
            digest,
            changed,
        })
    }

    fn remove_if_digest(&mut self, key: &[u8], expected_digest: u64) -> Result<bool, StoreError> {
        check_key(key)?;
        let storage_key = data_key(key);
        match self.data.get(&storage_key) {
            Some(record) if record.digest == expected_digest => {
                let previous = self.data.remove(&storage_key);
                self.log_write(UndoEntry::Data {
                    storage_key,
                    previous,
                });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn scan(
        &self,
        range: TokenRange,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage<ScanEntry>, StoreError> {
        self.scan_with(range, after, limit, |storage_key, record| {
            let (token, key) = split_data_key(storage_key)?;
            Ok(ScanEntry {
                token,
                key: key.to_vec(),
                versions: record.versions.clone(),
                digest: record.digest,
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
        let (lower, upper) = partition_bounds(prefix, from, to);
        if bounds_empty(&lower, &upper) {
            return Ok(Vec::new());
        }
        let range = self.data.range::<Vec<u8>, _>((lower, upper));
        let records: Box<dyn Iterator<Item = (&Vec<u8>, &MemRecord)>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut entries = Vec::new();
        for (storage_key, record) in records {
            let (token, key) = split_data_key(storage_key)?;
            // Another partition whose token collides shares the run: skip its keys.
            if !key.starts_with(prefix) {
                continue;
            }
            entries.push(ScanEntry {
                token,
                key: key.to_vec(),
                versions: record.versions.clone(),
                digest: record.digest,
            });
            if entries.len() >= limit.max(1) {
                break;
            }
        }
        Ok(entries)
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
                digest: record.digest,
            })
        })
    }

    fn key_count(&self) -> u64 {
        self.data.len() as u64
    }

    fn put_hint(
        &mut self,
        owner: NodeId,
        key: &[u8],
        versions: &VersionSet,
        created_at_ms: u64,
    ) -> Result<HintId, StoreError> {
        check_key(key)?;
        let id = HintId(self.next_hint_id);
        self.next_hint_id = self.next_hint_id.saturating_add(1);
        let body = HintBody {
            key: key.to_vec(),
            versions: versions.clone(),
            created_at_ms,
        };
        let previous = self.insert_hint(owner, id, body);
        self.log_write(UndoEntry::Hint {
            owner,
            id,
            previous,
        });
        Ok(id)
    }

    fn hints_for(
        &self,
        owner: NodeId,
        after: Option<HintId>,
        limit: usize,
    ) -> Result<Vec<Hint>, StoreError> {
        let start = match after {
            Some(id) => Bound::Excluded((owner, id)),
            None => Bound::Included((owner, HintId(0))),
        };
        let end = Bound::Included((owner, HintId(u64::MAX)));
        Ok(self
            .hints
            .range((start, end))
            .take(effective_limit(limit))
            .map(|(&(owner, id), body)| body.clone().into_hint(owner, id))
            .collect())
    }

    fn remove_hint(&mut self, owner: NodeId, id: HintId) -> Result<bool, StoreError> {
        let previous = self.remove_hint_entry(owner, id);
        let existed = previous.is_some();
        if existed {
            self.log_write(UndoEntry::Hint {
                owner,
                id,
                previous,
            });
        }
        Ok(existed)
    }

    fn hint_counts(&self) -> BTreeMap<NodeId, u64> {
        self.hint_counts.clone()
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(name.as_bytes())?;
        Ok(self.meta.get(name).cloned())
    }

    fn set_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(name.as_bytes())?;
        let previous = self.meta.insert(name.to_owned(), value.to_vec());
        self.log_write(UndoEntry::Meta {
            name: name.to_owned(),
            previous,
        });
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.syncing.clear();
        self.unsynced.clear();
        Ok(())
    }

    fn prepare_external_sync(&mut self) -> Result<(), StoreError> {
        self.syncing.append(&mut self.unsynced);
        Ok(())
    }

    fn external_sync_done(&mut self, synced: bool) {
        if synced {
            self.syncing.clear();
        } else {
            // Not durable after all: the next sync takes them again, oldest first.
            let mut retry = std::mem::take(&mut self.syncing);
            retry.append(&mut self.unsynced);
            self.unsynced = retry;
        }
    }

    fn unsynced_writes(&self) -> u64 {
        self.unsynced.len() as u64
    }

    fn sync_policy(&self) -> SyncPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{ActorId, CausalContext, Value};

    fn set_of(payload: &[u8]) -> VersionSet {
        VersionSet::with_update(
            &CausalContext::empty(),
            ActorId(1),
            Value::Data(payload.to_vec()),
        )
    }

    fn group() -> SyncPolicy {
        SyncPolicy::Group {
            max_delay_ms: 5,
            max_writes: 64,
        }
    }

    // A crash keeping a prefix of the unsynced writes keeps exactly that prefix, in all areas.
    #[test]
    fn crash_keeping_keeps_a_prefix_of_unsynced_writes() {
        let mut store = MemoryStore::new(group());
        store.merge(b"synced", &set_of(b"s")).unwrap();
        store.sync().unwrap();
        store.merge(b"first", &set_of(b"1")).unwrap();
        store.set_meta("m", b"meta").unwrap();
        let hint = store.put_hint(NodeId(4), b"h", &set_of(b"h"), 10).unwrap();
        store.merge(b"fourth", &set_of(b"4")).unwrap();
        assert_eq!(store.unsynced_writes(), 4);

        store.crash_keeping(2);
        assert_eq!(store.unsynced_writes(), 0);
        assert!(store.get(b"synced").unwrap().is_some());
        assert!(store.get(b"first").unwrap().is_some());
        assert_eq!(store.meta("m").unwrap(), Some(b"meta".to_vec()));
        assert!(store.hints_for(NodeId(4), None, 10).unwrap().is_empty());
        assert!(store.hint_counts().is_empty());
        assert!(store.get(b"fourth").unwrap().is_none());
        // The lost hint's id may be reused after the crash, as after a durable reopen.
        let again = store.put_hint(NodeId(4), b"h", &set_of(b"h"), 11).unwrap();
        assert_eq!(again, hint);
    }

    // A crash rolls back removals and overwrites to the synced state, newest first.
    #[test]
    fn crash_restores_overwritten_and_removed_records() {
        let mut store = MemoryStore::new(group());
        let original = set_of(b"original");
        store.merge(b"k", &original).unwrap();
        store.set_meta("m", b"old").unwrap();
        store.sync().unwrap();
        assert!(store.remove_if_digest(b"k", original.digest()).unwrap());
        store.set_meta("m", b"new").unwrap();
        store.set_meta("m", b"newer").unwrap();
        store.crash();
        assert_eq!(store.get(b"k").unwrap(), Some(original));
        assert_eq!(store.meta("m").unwrap(), Some(b"old".to_vec()));
    }

    // An external sync is durable only once it is done: a crash between preparing and
    // finishing loses its writes (and every later one); a failed sync leaves them unsynced,
    // oldest first, for the next sync.
    #[test]
    fn an_external_sync_is_durable_only_when_done() {
        let mut store = MemoryStore::new(group());
        store.merge(b"a", &set_of(b"a")).unwrap();
        store.prepare_external_sync().unwrap();
        assert_eq!(store.unsynced_writes(), 0, "handed to the sync");
        store.merge(b"b", &set_of(b"b")).unwrap();
        let mut crashed = store.clone();
        crashed.crash();
        assert!(
            crashed.get(b"a").unwrap().is_none(),
            "the sync never completed"
        );
        assert!(crashed.get(b"b").unwrap().is_none());

        let mut failed = store.clone();
        failed.external_sync_done(false);
        assert_eq!(failed.unsynced_writes(), 2, "a then b, to sync again");
        failed.crash_keeping(1);
        assert!(
            failed.get(b"a").unwrap().is_some(),
            "the oldest write is the prefix kept"
        );
        assert!(failed.get(b"b").unwrap().is_none());

        store.external_sync_done(true);
        store.crash();
        assert!(
            store.get(b"a").unwrap().is_some(),
            "durable once the sync is done"
        );
        assert!(
            store.get(b"b").unwrap().is_none(),
            "written after the sync began"
        );
    }

    // What a crash would keep is what `durably_knows` reports: a write becomes durable (as
    // data or as a hint) only when its sync is done, and an older durable version of a key
    // still answers for the dots it knows while a newer write of it is pending.
    #[test]
    fn durably_knows_what_a_crash_would_keep() {
        let mut store = MemoryStore::new(group());
        let mut first = VersionSet::default();
        let dot1 = first.update(
            &CausalContext::default(),
            ActorId(1),
            Value::Data(b"1".to_vec()),
        );
        store.merge(b"k", &first).unwrap();
        assert!(!store.durably_knows(b"k", dot1), "unsynced");
        store.sync().unwrap();
        assert!(store.durably_knows(b"k", dot1));
        let mut second = first.clone();
        let dot2 = second.update(&first.context(), ActorId(1), Value::Data(b"2".to_vec()));
        store.merge(b"k", &second).unwrap();
        assert!(
            store.durably_knows(b"k", dot1),
            "the synced version still knows it"
        );
        assert!(!store.durably_knows(b"k", dot2));
        let hinted =
            VersionSet::with_update(&CausalContext::default(), ActorId(9), Value::Tombstone);
        let dot9 = Dot {
            actor: ActorId(9),
            counter: 1,
        };
        store.put_hint(NodeId(3), b"h", &hinted, 0).unwrap();
        store.prepare_external_sync().unwrap();
        assert!(
            !store.durably_knows(b"h", dot9),
            "prepared is not yet durable"
        );
        store.external_sync_done(true);
        assert!(store.durably_knows(b"k", dot2));
        assert!(store.durably_knows(b"h", dot9), "a durable hint counts");
        assert!(!store.durably_knows(b"other", dot9));
    }

    // Under EveryWrite nothing is ever unsynced, so a crash loses nothing.
    #[test]
    fn every_write_crash_loses_nothing() {
        let mut store = MemoryStore::new(SyncPolicy::EveryWrite);
        store.merge(b"k", &set_of(b"v")).unwrap();
        store.put_hint(NodeId(1), b"k", &set_of(b"v"), 0).unwrap();
        assert_eq!(store.unsynced_writes(), 0);
        store.crash();
        assert!(store.get(b"k").unwrap().is_some());
        assert_eq!(store.hint_counts().get(&NodeId(1)), Some(&1));
    }
}
