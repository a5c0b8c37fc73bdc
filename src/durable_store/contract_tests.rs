//! The shared test suite: each behaviour of the [`Store`] contract is a generic function, run
//! against [`MemoryStore`] and [`DurableStore`] (in a temporary directory) under both sync
//! policies, plus a property test that the two implementations agree on random histories.

use super::*;
use proptest::prelude::*;
use ringstore_core::ring::key_token;
use ringstore_core::ring::{Token, TokenRange};
use ringstore_core::store::*;
use ringstore_core::version::{ActorId, CausalContext, Value};

/// A one-version set written by `actor`.
fn set_of(actor: u64, payload: &[u8]) -> VersionSet {
    let mut set = VersionSet::default();
    set.update(
        &CausalContext::default(),
        ActorId(actor),
        Value::Data(payload.to_vec()),
    );
    set
}

/// A group-commit policy whose bounds the tests never reach on their own.
fn group_policy() -> SyncPolicy {
    SyncPolicy::Group {
        max_delay_ms: 10,
        max_writes: 1_000,
    }
}

/// Every policy each behaviour runs under.
fn policies() -> [SyncPolicy; 2] {
    [SyncPolicy::EveryWrite, group_policy()]
}

/// Where the ring order of a scan of `range` puts `token`: distance from the range's start.
fn ring_position(range: TokenRange, token: Token) -> u64 {
    token.0.wrapping_sub(range.start.0.wrapping_add(1))
}

/// Every entry of a paged scan, following cursors with pages of `limit`.
fn scan_all<S: Store>(store: &S, range: TokenRange, limit: usize) -> Vec<ScanEntry> {
    let mut entries = Vec::new();
    let mut cursor: Option<ScanCursor> = None;
    loop {
        let page = store.scan(range, cursor.as_ref(), limit).unwrap();
        assert!(page.entries.len() <= limit.max(1));
        entries.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return entries,
        }
    }
}

/// Every (key, digest) of a paged digest scan.
fn scan_all_digests<S: Store>(store: &S, range: TokenRange, limit: usize) -> Vec<KeyDigest> {
    let mut entries = Vec::new();
    let mut cursor: Option<ScanCursor> = None;
    loop {
        let page = store.scan_digests(range, cursor.as_ref(), limit).unwrap();
        entries.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return entries,
        }
    }
}

// An absent key reads as nothing; a merge into it stores the incoming set as is.
fn merge_into_absent_key_stores_incoming<S: Store>(store: &mut S) {
    assert_eq!(store.get(b"k").unwrap(), None);
    assert_eq!(store.digest(b"k").unwrap(), None);
    let incoming = set_of(1, b"v1");
    let outcome = store.merge(b"k", &incoming).unwrap();
    assert!(outcome.changed);
    assert_eq!(outcome.previous_digest, None);
    assert_eq!(outcome.merged, incoming);
    assert_eq!(outcome.digest, incoming.digest());
    assert_eq!(store.get(b"k").unwrap(), Some(incoming.clone()));
    assert_eq!(store.digest(b"k").unwrap(), Some(incoming.digest()));
    assert_eq!(store.key_count(), 1);
}

// Merging a set already contained writes nothing (idempotence), under either policy.
fn merge_is_idempotent<S: Store>(store: &mut S) {
    let a = set_of(1, b"a");
    let b = set_of(2, b"b");
    store.merge(b"k", &a).unwrap();
    store.merge(b"k", &b).unwrap();
    store.sync().unwrap();
    let stored = store.get(b"k").unwrap();
    for again in [&a, &b] {
        let outcome = store.merge(b"k", again).unwrap();
        assert!(!outcome.changed, "re-merging {again:?} changed the set");
        assert_eq!(outcome.previous_digest, Some(outcome.digest));
        assert_eq!(store.unsynced_writes(), 0, "an unchanged merge was written");
    }
    assert_eq!(store.get(b"k").unwrap(), stored);
}

// A merge stores exactly what VersionSet::merge makes of the stored and incoming sets.
fn merge_stores_the_version_set_merge<S: Store>(store: &mut S) {
    let a = set_of(1, b"from actor 1");
    let b = set_of(2, b"from actor 2");
    store.merge(b"k", &a).unwrap();
    let outcome = store.merge(b"k", &b).unwrap();
    let mut expected = a.clone();
    expected.merge(&b);
    assert_eq!(outcome.merged, expected);
    assert_eq!(outcome.previous_digest, Some(a.digest()));
    assert_eq!(outcome.changed, expected != a);
    assert_eq!(store.get(b"k").unwrap(), Some(expected));
}

// Merging an empty set into an absent key stores nothing (no empty records).
fn empty_merge_into_absent_key_writes_nothing<S: Store>(store: &mut S) {
    let outcome = store.merge(b"k", &VersionSet::default()).unwrap();
    assert!(!outcome.changed);
    assert_eq!(store.get(b"k").unwrap(), None);
    assert_eq!(store.unsynced_writes(), 0);
    assert!(
        store
            .scan(TokenRange::full(), None, 10)
            .unwrap()
            .entries
            .is_empty()
    );
}

// Tombstone collection removes a key only while its digest is the one judged collectable.
fn remove_if_digest_checks_the_digest<S: Store>(store: &mut S) {
    let mut set = set_of(1, b"v");
    set.update(&set.context(), ActorId(1), Value::Tombstone);
    store.merge(b"k", &set).unwrap();
    let digest = set.digest();
    assert!(
        !store
            .remove_if_digest(b"k", digest.wrapping_add(1))
            .unwrap()
    );
    assert_eq!(store.get(b"k").unwrap(), Some(set));
    assert!(store.remove_if_digest(b"k", digest).unwrap());
    assert_eq!(store.get(b"k").unwrap(), None);
    assert!(!store.remove_if_digest(b"k", digest).unwrap());
    assert!(!store.remove_if_digest(b"never", digest).unwrap());
}

/// Stores `count` keys `key-<i>` and returns them.
fn fill<S: Store>(store: &mut S, count: usize) -> Vec<Vec<u8>> {
    let keys: Vec<Vec<u8>> = (0..count)
        .map(|i| format!("key-{i}").into_bytes())
        .collect();
    for (i, key) in keys.iter().enumerate() {
        store.merge(key, &set_of(1, &i.to_be_bytes())).unwrap();
    }
    store.sync().unwrap();
    keys
}

// A full-ring scan returns every key once, in token order, with its stored set and digest.
fn scan_full_ring_in_token_order<S: Store>(store: &mut S) {
    let keys = fill(store, 150);
    let entries = scan_all(store, TokenRange::full(), 1_000);
    assert_eq!(entries.len(), keys.len());
    for pair in entries.windows(2) {
        assert!((pair[0].token, &pair[0].key) < (pair[1].token, &pair[1].key));
    }
    for entry in &entries {
        assert_eq!(entry.token, key_token(&entry.key));
        assert_eq!(store.get(&entry.key).unwrap(), Some(entry.versions.clone()));
    }
    let digests = scan_all_digests(store, TokenRange::full(), 1_000);
    let expected: Vec<KeyDigest> = entries
        .iter()
        .map(|e| KeyDigest {
            token: e.token,
            key: e.key.clone(),
            digest: e.versions.digest(),
        })
        .collect();
    assert_eq!(digests, expected);
}

// A wrapping range is scanned in ring order (the high arc, then the low arc), paged with any
// limit, and returns exactly the keys whose token it contains.
fn scan_wrapping_range_pages_in_ring_order<S: Store>(store: &mut S) {
    let keys = fill(store, 120);
    let range = TokenRange::new(Token(u64::MAX / 4 * 3), Token(u64::MAX / 4));
    let mut expected: Vec<(Token, Vec<u8>)> = keys
        .iter()
        .map(|k| (key_token(k), k.clone()))
        .filter(|(t, _)| range.contains(*t))
        .collect();
    expected.sort_by_key(|(t, k)| (ring_position(range, *t), k.clone()));
    assert!(
        expected.len() > 20 && expected.len() < 100,
        "{}",
        expected.len()
    );
    for limit in [0, 1, 7, expected.len(), 500] {
        let got: Vec<(Token, Vec<u8>)> = scan_all(store, range, limit)
            .into_iter()
            .map(|e| (e.token, e.key))
            .collect();
        assert_eq!(got, expected, "limit {limit}");
        let digests: Vec<(Token, Vec<u8>)> = scan_all_digests(store, range, limit)
            .into_iter()
            .map(|e| (e.token, e.key))
            .collect();
        assert_eq!(digests, expected, "digests, limit {limit}");
    }
    let last_page = store.scan(range, None, expected.len()).unwrap();
    assert_eq!(last_page.next, None, "an exhausted range has no cursor");
}

// A cursor from one range is refused by a scan of a disjoint range.
fn scan_refuses_a_foreign_cursor<S: Store>(store: &mut S) {
    fill(store, 50);
    let low = TokenRange::new(Token(0), Token(u64::MAX / 2));
    let high = TokenRange::new(Token(u64::MAX / 2), Token(u64::MAX));
    let page = store.scan(low, None, 1).unwrap();
    let cursor = page
        .next
        .expect("50 keys leave more than one in half the ring");
    assert!(matches!(
        store.scan(high, Some(&cursor), 10),
        Err(StoreError::CursorOutsideRange)
    ));
}

// Hints are kept per owner in id order, paged by id, counted per owner and removed once.
fn hints_are_listed_counted_and_removed<S: Store>(store: &mut S) {
    let (n1, n2) = (NodeId(1), NodeId(2));
    let mut ids = Vec::new();
    for i in 0..5u64 {
        let owner = if i % 2 == 0 { n1 } else { n2 };
        let id = store
            .put_hint(owner, format!("k{i}").as_bytes(), &set_of(9, b"h"), 100 + i)
            .unwrap();
        ids.push((owner, id));
    }
    let mut sorted = ids.clone();
    sorted.sort_by_key(|(_, id)| *id);
    assert_eq!(ids, sorted, "hint ids increase");
    assert_eq!(store.hint_counts(), BTreeMap::from([(n1, 3), (n2, 2)]));

    let n1_hints = store.hints_for(n1, None, 10).unwrap();
    let keys: Vec<&[u8]> = n1_hints.iter().map(|h| h.key.as_slice()).collect();
    assert_eq!(keys, [b"k0", b"k2", b"k4"]);
    assert!(n1_hints.iter().all(|h| h.owner == n1));
    assert_eq!(n1_hints[1].created_at_ms, 102);
    assert_eq!(n1_hints[1].versions, set_of(9, b"h"));
    let page = store.hints_for(n1, Some(n1_hints[0].id), 1).unwrap();
    assert_eq!(page, vec![n1_hints[1].clone()]);

    assert!(store.remove_hint(n1, n1_hints[0].id).unwrap());
    assert!(!store.remove_hint(n1, n1_hints[0].id).unwrap());
    assert!(
        !store.remove_hint(n2, n1_hints[1].id).unwrap(),
        "wrong owner"
    );
    assert_eq!(store.hints_for(n1, None, 10).unwrap().len(), 2);
    for hint in store.hints_for(n2, None, 10).unwrap() {
        assert!(store.remove_hint(n2, hint.id).unwrap());
    }
    assert_eq!(store.hint_counts(), BTreeMap::from([(n1, 2)]));
}

// Metadata blobs are set, replaced and read back by name.
fn meta_is_set_and_replaced<S: Store>(store: &mut S) {
    assert_eq!(store.meta("actor_id").unwrap(), None);
    store.set_meta("actor_id", b"first").unwrap();
    store.set_meta("ring", b"").unwrap();
    store.set_meta("actor_id", b"second").unwrap();
    assert_eq!(store.meta("actor_id").unwrap(), Some(b"second".to_vec()));
    assert_eq!(store.meta("ring").unwrap(), Some(Vec::new()));
}

// Oversized keys are refused with an error, before anything is written.
fn oversized_keys_are_refused<S: Store>(store: &mut S) {
    let key = vec![b'x'; MAX_KEY_BYTES + 1];
    assert!(matches!(
        store.merge(&key, &set_of(1, b"v")),
        Err(StoreError::KeyTooLarge { .. })
    ));
    assert!(store.get(&key).is_err());
    assert_eq!(store.unsynced_writes(), 0);
    let longest = vec![b'x'; MAX_KEY_BYTES];
    store.merge(&longest, &set_of(1, b"v")).unwrap();
    assert!(store.get(&longest).unwrap().is_some());
}

// Group commit counts every mutating call until a sync; EveryWrite never leaves one unsynced.
fn unsynced_writes_follow_the_policy<S: Store>(store: &mut S) {
    store.merge(b"a", &set_of(1, b"a")).unwrap();
    store.set_meta("m", b"m").unwrap();
    store
        .put_hint(NodeId(3), b"a", &set_of(1, b"a"), 0)
        .unwrap();
    let expected = match store.sync_policy() {
        SyncPolicy::EveryWrite => 0,
        SyncPolicy::Group { .. } => 3,
    };
    assert_eq!(store.unsynced_writes(), expected);
    store.sync().unwrap();
    assert_eq!(store.unsynced_writes(), 0);
}

fn scan_partition_returns_one_partition_in_sort_key_order<S: Store>(store: &mut S) {
    use ringstore_core::item::key::partition_prefix;
    use ringstore_core::item::{ItemKey, KeyValue, Number, PrimaryKey, TableId};
    use std::ops::Bound;
    let key = |partition: &str, sort: i64| {
        ItemKey {
            table: TableId(1),
            key: PrimaryKey {
                partition: KeyValue::S(partition.to_string()),
                sort: Some(KeyValue::N(Number::from_i64(sort))),
            },
        }
        .encode()
    };
    for sort in [5, -3, 0, 12, 7] {
        store.merge(&key("p", sort), &set_of(1, b"v")).unwrap();
    }
    store.merge(&key("other", 1), &set_of(1, b"v")).unwrap();
    store.merge(b"plain key", &set_of(1, b"v")).unwrap();
    let prefix = partition_prefix(TableId(1), &KeyValue::S("p".into()));
    let sorts = |entries: Vec<ScanEntry>| -> Vec<i64> {
        entries
            .iter()
            .map(|e| match ItemKey::decode(&e.key).unwrap().key.sort {
                Some(KeyValue::N(n)) => n.to_string().parse().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let all = store
        .scan_partition(&prefix, Bound::Unbounded, Bound::Unbounded, false, 100)
        .unwrap();
    assert_eq!(sorts(all), vec![-3, 0, 5, 7, 12]);
    let reversed = store
        .scan_partition(&prefix, Bound::Unbounded, Bound::Unbounded, true, 2)
        .unwrap();
    assert_eq!(sorts(reversed), vec![12, 7]);
    let between = store
        .scan_partition(
            &prefix,
            Bound::Excluded(key("p", 0)),
            Bound::Included(key("p", 7)),
            false,
            100,
        )
        .unwrap();
    assert_eq!(sorts(between), vec![5, 7]);
    let empty = store
        .scan_partition(
            &prefix,
            Bound::Included(key("p", 9)),
            Bound::Excluded(key("p", 9)),
            false,
            100,
        )
        .unwrap();
    assert!(empty.is_empty());
}

/// Instantiates each generic behaviour for both stores under both policies.
macro_rules! for_both_stores {
    ($($behaviour:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[test]
                fn $behaviour() {
                    for policy in super::policies() {
                        super::$behaviour(&mut ringstore_core::store::MemoryStore::new(policy));
                    }
                }
            )*
        }
        mod durable_store {
            $(
                #[test]
                fn $behaviour() {
                    for policy in super::policies() {
                        let dir = tempfile::tempdir().unwrap();
                        let config = super::DurableConfig::new(policy);
                        let mut store = super::DurableStore::open(dir.path(), config).unwrap();
                        super::$behaviour(&mut store);
                    }
                }
            )*
        }
    };
}

for_both_stores!(
    merge_into_absent_key_stores_incoming,
    merge_is_idempotent,
    merge_stores_the_version_set_merge,
    empty_merge_into_absent_key_writes_nothing,
    remove_if_digest_checks_the_digest,
    scan_full_ring_in_token_order,
    scan_wrapping_range_pages_in_ring_order,
    scan_refuses_a_foreign_cursor,
    hints_are_listed_counted_and_removed,
    meta_is_set_and_replaced,
    oversized_keys_are_refused,
    unsynced_writes_follow_the_policy,
    scan_partition_returns_one_partition_in_sort_key_order,
);

// Reopening a durable store keeps data, hints (counts, and ids continue) and metadata.
#[test]
fn durable_reopen_keeps_everything() {
    for policy in policies() {
        let dir = tempfile::tempdir().unwrap();
        let config = DurableConfig::new(policy);
        let mut store = DurableStore::open(dir.path(), config).unwrap();
        let keys = fill(&mut store, 40);
        let hint = store
            .put_hint(NodeId(5), b"h", &set_of(2, b"h"), 7)
            .unwrap();
        store.set_meta("actor_id", b"42").unwrap();
        store.sync().unwrap();
        let before = scan_all(&store, TokenRange::full(), 16);
        drop(store);

        let mut store = DurableStore::open(dir.path(), config).unwrap();
        assert_eq!(scan_all(&store, TokenRange::full(), 16), before);
        assert_eq!(before.len(), keys.len());
        assert_eq!(store.key_count(), keys.len() as u64);
        assert_eq!(store.hint_counts(), BTreeMap::from([(NodeId(5), 1)]));
        let hints = store.hints_for(NodeId(5), None, 10).unwrap();
        assert_eq!(hints.len(), 1);
        assert_eq!((hints[0].id, hints[0].created_at_ms), (hint, 7));
        let next = store
            .put_hint(NodeId(6), b"h", &set_of(2, b"h"), 8)
            .unwrap();
        assert!(next > hint, "hint ids continue after reopen");
        assert_eq!(store.meta("actor_id").unwrap(), Some(b"42".to_vec()));
        store.close().unwrap();
    }
}

// A MemoryStore crash drops exactly the unsynced writes and keeps the synced ones.
#[test]
fn memory_crash_drops_unsynced_and_keeps_synced() {
    let mut store = MemoryStore::new(group_policy());
    let keys = fill(&mut store, 30);
    store.set_meta("actor_id", b"1").unwrap();
    store.sync().unwrap();
    let synced = scan_all(&store, TokenRange::full(), 100);
    store.merge(b"unsynced", &set_of(1, b"u")).unwrap();
    store.merge(&keys[0], &set_of(2, b"concurrent")).unwrap();
    store.set_meta("actor_id", b"2").unwrap();
    store
        .put_hint(NodeId(1), b"unsynced", &set_of(1, b"u"), 0)
        .unwrap();
    assert!(
        store.get(b"unsynced").unwrap().is_some(),
        "reads see unsynced writes"
    );
    store.crash();
    assert_eq!(scan_all(&store, TokenRange::full(), 100), synced);
    assert_eq!(store.meta("actor_id").unwrap(), Some(b"1".to_vec()));
    assert!(store.hint_counts().is_empty());
    assert_eq!(store.unsynced_writes(), 0);
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Op {
    Merge { key: u8, actor: u64, payload: u8 },
    Get { key: u8 },
    RemoveIfDigest { key: u8, use_current: bool },
    PutHint { owner: u64, key: u8 },
    RemoveFirstHint { owner: u64 },
    SetMeta { name: u8, value: u8 },
    Sync,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..24, 1u64..4, any::<u8>())
            .prop_map(|(key, actor, payload)| Op::Merge { key, actor, payload }),
        3 => (0u8..24).prop_map(|key| Op::Get { key }),
        2 => (0u8..24, any::<bool>())
            .prop_map(|(key, use_current)| Op::RemoveIfDigest { key, use_current }),
        1 => (1u64..4, 0u8..24).prop_map(|(owner, key)| Op::PutHint { owner, key }),
        1 => (1u64..4).prop_map(|owner| Op::RemoveFirstHint { owner }),
        1 => (0u8..3, any::<u8>()).prop_map(|(name, value)| Op::SetMeta { name, value }),
        1 => Just(Op::Sync),
    ]
}

/// Applies one step to a store, returning what it observably did.
fn apply<S: Store>(store: &mut S, op: &Op) -> String {
    match op {
        Op::Merge {
            key,
            actor,
            payload,
        } => {
            let outcome = store.merge(&[*key], &set_of(*actor, &[*payload])).unwrap();
            format!("{outcome:?}")
        }
        Op::Get { key } => {
            let set = store.get(&[*key]).unwrap();
            format!("{set:?} {:?}", store.digest(&[*key]).unwrap())
        }
        Op::RemoveIfDigest { key, use_current } => {
            let digest = match (use_current, store.digest(&[*key]).unwrap()) {
                (true, Some(digest)) => digest,
                (_, digest) => digest.unwrap_or(0).wrapping_add(1),
            };
            format!("{:?}", store.remove_if_digest(&[*key], digest).unwrap())
        }
        Op::PutHint { owner, key } => {
            let id = store.put_hint(NodeId(*owner), &[*key], &set_of(1, &[*key]), 0);
            format!("{:?}", id.unwrap())
        }
        Op::RemoveFirstHint { owner } => {
            let first = store.hints_for(NodeId(*owner), None, 1).unwrap();
            match first.first() {
                Some(hint) => format!("{:?}", store.remove_hint(hint.owner, hint.id).unwrap()),
                None => "none".to_owned(),
            }
        }
        Op::SetMeta { name, value } => {
            store.set_meta(&format!("m{name}"), &[*value]).unwrap();
            "set".to_owned()
        }
        Op::Sync => {
            store.sync().unwrap();
            "synced".to_owned()
        }
    }
}

/// Everything observable in a store.
fn contents<S: Store>(store: &S) -> String {
    let data = scan_all(store, TokenRange::full(), 5);
    let hints: Vec<Vec<Hint>> = (1..4)
        .map(|owner| store.hints_for(NodeId(owner), None, 100).unwrap())
        .collect();
    let meta: Vec<Option<Vec<u8>>> = (0..3)
        .map(|name| store.meta(&format!("m{name}")).unwrap())
        .collect();
    format!(
        "{data:?} {hints:?} {:?} {meta:?} {}",
        store.hint_counts(),
        store.unsynced_writes()
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    // The durable store behaves exactly like the in-memory model on any history, step by step,
    // with its row cache off, evicting all the time (a few hundred bytes), or holding it all.
    #[test]
    fn durable_store_matches_memory_store(
        ops in prop::collection::vec(op_strategy(), 1..60),
        every_write in any::<bool>(),
        row_cache_bytes in prop_oneof![Just(0u64), Just(600), Just(DEFAULT_ROW_CACHE_BYTES)],
    ) {
        let policy = if every_write { SyncPolicy::EveryWrite } else { group_policy() };
        let dir = tempfile::tempdir().unwrap();
        let config = DurableConfig { row_cache_bytes, ..DurableConfig::new(policy) };
        let mut durable = DurableStore::open(dir.path(), config).unwrap();
        let mut memory = MemoryStore::new(policy);
        for op in &ops {
            prop_assert_eq!(apply(&mut memory, op), apply(&mut durable, op), "{:?}", op);
        }
        prop_assert_eq!(contents(&memory), contents(&durable));
        prop_assert_eq!(memory.key_count(), scan_all(&durable, TokenRange::full(), 100).len() as u64);
    }

    // A crash after any history leaves the MemoryStore as a durable store reopened after the
    // same history's synced prefix: what `sync` made durable survives, nothing else.
    #[test]
    fn memory_crash_matches_durable_reopen_of_synced_writes(
        ops in prop::collection::vec(op_strategy(), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = DurableConfig::new(group_policy());
        let mut memory = MemoryStore::new(group_policy());
        {
            let mut durable = DurableStore::open(dir.path(), config).unwrap();
            let last_sync = ops.iter().rposition(|op| matches!(op, Op::Sync));
            for (i, op) in ops.iter().enumerate() {
                apply(&mut memory, op);
                if last_sync.is_some_and(|last| i <= last) {
                    apply(&mut durable, op);
                }
            }
            durable.close().unwrap();
        }
        memory.crash();
        let reopened = DurableStore::open(dir.path(), config).unwrap();
        prop_assert_eq!(contents(&memory), contents(&reopened));
    }
}
