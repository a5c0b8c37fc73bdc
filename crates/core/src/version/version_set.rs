//! [`VersionSet`]: the dotted version vector set (DVVSet) of one key.
//!
//! # Representation
//! One [`Entry`] per actor, sorted by actor: `counter` says the set knows the actor's events
//! `1..=counter`; `values` holds the live values of the newest `values.len()` of those events,
//! newest first (the value of dot `(actor, counter)` first, then `counter - 1`, …). Events
//! `1..=counter - values.len()` are known and superseded.
//!
//! Why a suffix is enough: a write discards the values its context covers, and a context is a
//! version vector (a prefix `1..=c` of every actor's events), so what survives of an actor is
//! always its newest events.
//!
//! # Invariants (checked when a set is decoded from bytes, and by `debug_assert!` after every
//! update and merge)
//! - entries are sorted by actor, each actor at most once;
//! - every counter is ≥ 1 and `values.len() <= counter`;
//! - the set holds at least one value unless it has no entries at all (every operation that adds
//!   knowledge also adds a value).

use super::{ActorId, CausalContext, Value};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::cmp::Ordering;
use xxhash_rust::xxh3::Xxh3;

/// The most live versions one key may hold. The coordinator refuses a write that would make more
/// (Riak's `max_siblings` plays the same role): siblings beyond this point mean clients that never
/// read before writing, and every read would carry them all.
pub const MAX_SIBLINGS: usize = 100;

/// An entry's live values. Inline for one: a key written through its coordinator holds one
/// live value, and a set is cloned and decoded several times per write (three heap blocks per
/// copy with `Vec`s, one with these: the value's bytes).
type Values = SmallVec<[Value; 1]>;

/// A set's entries, inline for one actor (the usual case: one coordinator per key).
type Entries = SmallVec<[Entry; 1]>;

/// One event: the `counter`-th write coordinated by `actor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// Who stamped the event.
    pub actor: ActorId,
    /// Its sequence number among that actor's events, from 1.
    pub counter: u64,
}

/// What one actor contributed to a key: see the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    actor: ActorId,
    counter: u64,
    /// Live values of dots `counter, counter - 1, …`, newest first.
    values: Values,
}

impl Entry {
    /// The highest counter of this actor that is known and superseded.
    fn obsolete_up_to(&self) -> u64 {
        self.counter - self.values.len() as u64
    }

    /// Forgets the values whose dots are `<= seen`, and learns that events up to `seen` exist.
    fn discard_seen(&mut self, seen: u64) {
        if seen >= self.counter {
            self.counter = seen;
            self.values.clear();
        } else {
            let live = (self.counter - seen).min(self.values.len() as u64) as usize;
            self.values.truncate(live);
        }
    }

    /// Merges `other`, an entry of the same actor, into this one (a dot stays live iff neither
    /// side has it superseded, and at least one side knows it); whether this entry changed.
    /// Only what comes from `other` is copied.
    fn merge_from(&mut self, other: &Entry) -> bool {
        let obsolete = self.obsolete_up_to().max(other.obsolete_up_to());
        if self.counter >= other.counter {
            // Every live dot is in our live suffix, since `self.obsolete_up_to() <= obsolete`;
            // the counter stays, so the entry changed iff values were dropped.
            let live = (self.counter - obsolete) as usize;
            let changed = live < self.values.len();
            self.values.truncate(live);
            changed
        } else {
            let live = (other.counter - obsolete) as usize;
            self.counter = other.counter;
            self.values = other.values[..live].iter().cloned().collect();
            true
        }
    }
}

/// All the live versions (siblings) of one key, with the causal history that produced them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedVersionSet")]
pub struct VersionSet {
    entries: Entries,
}

/// The wire shape of a [`VersionSet`], before its invariants are checked.
#[derive(Deserialize)]
struct UncheckedVersionSet {
    entries: Entries,
}

/// Why bytes that decoded as a version set were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionSetError {
    /// Entries out of actor order, or one actor twice.
    #[error("version set entries are not sorted by actor or repeat an actor")]
    NotCanonical,
    /// An entry with counter 0, or more values than events.
    #[error("version set entry of actor {actor} has counter {counter} and {values} values")]
    BadEntry {
        /// The actor of the bad entry.
        actor: ActorId,
        /// Its counter.
        counter: u64,
        /// How many values it held.
        values: usize,
    },
    /// Entries but not a single value: no operation produces that.
    #[error("version set has history but no value")]
    NoValue,
}

impl TryFrom<UncheckedVersionSet> for VersionSet {
    type Error = VersionSetError;

    fn try_from(raw: UncheckedVersionSet) -> Result<Self, Self::Error> {
        check_entries(&raw.entries)?;
        Ok(Self {
            entries: raw.entries,
        })
    }
}

/// The representation's invariants (module docs). Entries sorted by actor with each actor
/// once, and each entry's live values a suffix of its counter, are what make a dot impossible
/// to hold twice: a dot `(actor, c)` can only be the value at index `counter - c` of `actor`'s
/// one entry.
fn check_entries(entries: &Entries) -> Result<(), VersionSetError> {
    if !entries.windows(2).all(|w| w[0].actor < w[1].actor) {
        return Err(VersionSetError::NotCanonical);
    }
    for e in entries {
        if e.counter == 0 || e.values.len() as u64 > e.counter {
            return Err(VersionSetError::BadEntry {
                actor: e.actor,
                counter: e.counter,
                values: e.values.len(),
            });
        }
    }
    if !entries.is_empty() && entries.iter().all(|e| e.values.is_empty()) {
        return Err(VersionSetError::NoValue);
    }
    Ok(())
}

impl VersionSet {
    /// The set of a key never written.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding one version, written by `actor` with `context` (as a coordinator with no
    /// local copy of the key would make it).
    pub fn with_update(context: &CausalContext, actor: ActorId, value: Value) -> Self {
        let mut set = Self::new();
        set.update(context, actor, value);
        set
    }

    /// Adds a new version coordinated by `actor` for a client that read `context`: the versions
    /// the context covers are superseded, the others stay as siblings. Returns the new dot.
    ///
    /// Dynamo §4.4: the coordinator, not the client, stamps the version; the client passes back
    /// the context of its read.
    pub fn update(&mut self, context: &CausalContext, actor: ActorId, value: Value) -> Dot {
        // Discard what the context saw; learn the events it knows that this replica does not.
        let mut merged = Entries::with_capacity(self.entries.len() + context.entries().len());
        let mut mine = std::mem::take(&mut self.entries).into_iter().peekable();
        let mut seen = context.entries().iter().copied().peekable();
        loop {
            let order = match (mine.peek(), seen.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(e), Some(&(actor, _))) => e.actor.cmp(&actor),
            };
            match order {
                Ordering::Less => merged.extend(mine.next()),
                Ordering::Greater => {
                    if let Some((actor, counter)) = seen.next() {
                        merged.push(Entry {
                            actor,
                            counter,
                            values: Values::new(),
                        });
                    }
                }
                Ordering::Equal => {
                    if let (Some(mut e), Some((_, counter))) = (mine.next(), seen.next()) {
                        e.discard_seen(counter);
                        merged.push(e);
                    }
                }
            }
        }
        // The new event: one past everything known of this actor.
        let index = match merged.binary_search_by_key(&actor, |e| e.actor) {
            Ok(i) => i,
            Err(i) => {
                merged.insert(
                    i,
                    Entry {
                        actor,
                        counter: 0,
                        values: Values::new(),
                    },
                );
                i
            }
        };
        let entry = &mut merged[index];
        entry.counter += 1;
        entry.values.insert(0, value);
        let dot = Dot {
            actor,
            counter: entry.counter,
        };
        self.entries = merged;
        invariant!(check_entries(&self.entries).is_ok(), "update broke the set");
        invariant!(
            self.is_live(dot),
            "the new dot {dot:?} is not live after its update"
        );
        dot
    }

    /// Merges another replica's set into this one: the result knows what either knew, and keeps
    /// exactly the versions neither has seen superseded. Commutative, associative, idempotent.
    /// Returns whether this set changed (exactly: `false` iff it equals what it was), so a
    /// store need not keep a copy to compare with.
    pub fn merge(&mut self, other: &VersionSet) -> bool {
        if other.entries.is_empty() {
            return false;
        }
        let mut changed = false;
        let mut merged = Entries::with_capacity(self.entries.len().max(other.entries.len()));
        let mut mine = std::mem::take(&mut self.entries).into_iter().peekable();
        let mut theirs = other.entries.iter().peekable();
        loop {
            let order = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.actor.cmp(&b.actor),
            };
            match order {
                Ordering::Less => merged.extend(mine.next()),
                Ordering::Greater => {
                    // An actor this set did not know: a new entry.
                    changed = true;
                    merged.extend(theirs.next().cloned());
                }
                Ordering::Equal => {
                    if let (Some(mut a), Some(b)) = (mine.next(), theirs.next()) {
                        changed |= a.merge_from(b);
                        merged.push(a);
                    }
                }
            }
        }
        self.entries = merged;
        invariant!(check_entries(&self.entries).is_ok(), "merge broke the set");
        invariant!(
            other.entries.iter().all(|e| self.knows(Dot {
                actor: e.actor,
                counter: e.counter
            })),
            "a merge must know every event the other side knew"
        );
        changed
    }

    /// The merge of two sets, leaving both as they are.
    pub fn merged(&self, other: &VersionSet) -> VersionSet {
        let mut out = self.clone();
        let _ = out.merge(other);
        out
    }

    /// The causal context covering every version in this set: what a read returns.
    pub fn context(&self) -> CausalContext {
        CausalContext::from_entries(self.entries.iter().map(|e| (e.actor, e.counter)))
    }

    /// The live versions with their dots, in actor order, newest first within an actor.
    pub fn siblings(&self) -> impl Iterator<Item = (Dot, &Value)> {
        self.entries.iter().flat_map(|e| {
            e.values.iter().enumerate().map(move |(i, v)| {
                let dot = Dot {
                    actor: e.actor,
                    counter: e.counter - i as u64,
                };
                (dot, v)
            })
        })
    }

    /// The live values, each distinct value once (a retried write leaves equal siblings; a
    /// reader needs to see it only once), in the order of [`VersionSet::siblings`].
    pub fn distinct_values(&self) -> Vec<&Value> {
        let mut out: Vec<&Value> = Vec::new();
        for (_, value) in self.siblings() {
            if !out.contains(&value) {
                out.push(value);
            }
        }
        out
    }

    /// How many live versions the set holds (equal values counted apart).
    pub fn sibling_count(&self) -> usize {
        self.entries.iter().map(|e| e.values.len()).sum()
    }

    /// Whether the set holds no version: the key was never written (or was collected).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether every live version is a tombstone (and there is at least one).
    pub fn is_deleted(&self) -> bool {
        !self.is_empty() && self.siblings().all(|(_, v)| v.is_tombstone())
    }

    /// Whether the event `dot` is known here (live or superseded).
    pub fn knows(&self, dot: Dot) -> bool {
        self.entries
            .binary_search_by_key(&dot.actor, |e| e.actor)
            .is_ok_and(|i| self.entries[i].counter >= dot.counter)
    }

    /// Whether `dot` is one of the live versions.
    pub fn is_live(&self, dot: Dot) -> bool {
        self.entries
            .binary_search_by_key(&dot.actor, |e| e.actor)
            .is_ok_and(|i| {
                let e = &self.entries[i];
                dot.counter <= e.counter && dot.counter > e.obsolete_up_to()
            })
    }

    /// Whether this set knows everything `other` knows and keeps no version `other` superseded:
    /// merging `other` in would change nothing.
    pub fn covers(&self, other: &VersionSet) -> bool {
        !self.clone().merge(other)
    }

    /// Test-only sabotage: keeps one sibling and forgets the others' values (while keeping the
    /// knowledge that they existed), as a last-writer-wins store would. Used to show that the
    /// simulator's checkers catch lost siblings; never called by the real protocol.
    #[doc(hidden)]
    pub fn sabotage_keep_one_sibling(&mut self) {
        let mut kept = false;
        for e in self.entries.iter_mut() {
            if kept {
                e.values.clear();
            } else if !e.values.is_empty() {
                e.values.truncate(1);
                kept = true;
            }
        }
    }

    /// A stable 64-bit digest: equal sets have equal digests on every platform and version.
    /// Merkle leaves and anti-entropy compare these instead of whole sets.
    pub fn digest(&self) -> u64 {
        let mut hasher = Xxh3::new();
        for e in &self.entries {
            hasher.update(&e.actor.0.to_le_bytes());
            hasher.update(&e.counter.to_le_bytes());
            hasher.update(&(e.values.len() as u64).to_le_bytes());
            for v in &e.values {
                match v {
                    Value::Data(bytes) => {
                        hasher.update(&[1]);
                        hasher.update(&(bytes.len() as u64).to_le_bytes());
                        hasher.update(bytes);
                    }
                    Value::Tombstone => hasher.update(&[0]),
                    Value::ItemTombstone(stamp) => {
                        hasher.update(&[2]);
                        hasher.update(&stamp.micros.to_le_bytes());
                        hasher.update(&stamp.logical.to_le_bytes());
                        hasher.update(&stamp.actor.0.to_le_bytes());
                    }
                }
            }
        }
        hasher.digest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const A: ActorId = ActorId(1);
    const B: ActorId = ActorId(2);
    const C: ActorId = ActorId(3);

    fn data(s: &str) -> Value {
        Value::Data(s.as_bytes().to_vec())
    }

    fn values(set: &VersionSet) -> Vec<Value> {
        let mut v: Vec<Value> = set.siblings().map(|(_, v)| v.clone()).collect();
        v.sort();
        v
    }

    // Dynamo §4.4: two writes that did not see each other are both kept, as siblings.
    #[test]
    fn two_blind_writes_are_siblings() {
        let mut set = VersionSet::new();
        set.update(&CausalContext::empty(), A, data("x"));
        set.update(&CausalContext::empty(), A, data("y"));
        assert_eq!(values(&set), vec![data("x"), data("y")]);
        // The same through two coordinators whose sets are merged later.
        let a = VersionSet::with_update(&CausalContext::empty(), A, data("x"));
        let b = VersionSet::with_update(&CausalContext::empty(), B, data("y"));
        assert_eq!(values(&a.merged(&b)), vec![data("x"), data("y")]);
    }

    // A write carrying the context of a read supersedes exactly what that read saw.
    #[test]
    fn read_then_write_supersedes_what_was_read() {
        let mut set = VersionSet::new();
        set.update(&CausalContext::empty(), A, data("x"));
        set.update(&CausalContext::empty(), B, data("y"));
        let ctx = set.context();
        // A concurrent blind write the reader did not see.
        set.update(&CausalContext::empty(), C, data("z"));
        set.update(&ctx, A, data("xy"));
        assert_eq!(values(&set), vec![data("xy"), data("z")]);
    }

    // A replica that missed the read-modify-write drops the superseded value on merge.
    #[test]
    fn merge_drops_versions_superseded_elsewhere() {
        let old = VersionSet::with_update(&CausalContext::empty(), A, data("x"));
        // The coordinator B never held the key: it learns the context from the client.
        let new = VersionSet::with_update(&old.context(), B, data("x2"));
        assert_eq!(values(&old.merged(&new)), vec![data("x2")]);
        assert_eq!(values(&new.merged(&old)), vec![data("x2")]);
    }

    // Tombstones are versions: a delete with context supersedes, a concurrent write survives.
    #[test]
    fn tombstones_supersede_and_concurrent_writes_survive_them() {
        let mut set = VersionSet::with_update(&CausalContext::empty(), A, data("x"));
        let ctx = set.context();
        let mut deleted = set.clone();
        deleted.update(&ctx, A, Value::Tombstone);
        assert!(deleted.is_deleted());
        assert_eq!(deleted.sibling_count(), 1);
        // A write concurrent with the delete, made on another replica from the same read.
        set.update(&ctx, B, data("y"));
        let merged = set.merged(&deleted);
        assert!(!merged.is_deleted());
        assert_eq!(values(&merged), vec![data("y"), Value::Tombstone]);
        // A later read-modify-write clears the tombstone too.
        let mut resolved = merged.clone();
        resolved.update(&merged.context(), A, data("z"));
        assert_eq!(values(&resolved), vec![data("z")]);
    }

    // A retried write adds an equal sibling, shown once to readers and cleared by the next write.
    #[test]
    fn retries_do_not_multiply_what_readers_see() {
        let mut set = VersionSet::with_update(&CausalContext::empty(), A, data("x"));
        let ctx = set.context();
        for _ in 0..3 {
            set.update(&ctx, A, data("x2"));
        }
        assert_eq!(set.sibling_count(), 3);
        assert_eq!(set.distinct_values(), vec![&data("x2")]);
        let ctx = set.context();
        set.update(&ctx, B, data("x3"));
        assert_eq!(set.sibling_count(), 1);
    }

    // A context that knows more of the coordinator's own events than its local copy still
    // yields a fresh dot (no reuse of a dot another replica holds).
    #[test]
    fn new_dot_is_past_the_context() {
        let mut far = VersionSet::new();
        for i in 0..5 {
            far.update(&CausalContext::empty(), A, data(&i.to_string()));
        }
        let mut stale = VersionSet::new();
        let dot = stale.update(&far.context(), A, data("new"));
        assert_eq!(dot.counter, 6);
        assert_eq!(values(&stale.merged(&far)), vec![data("new")]);
    }

    // Bytes that decode but break an invariant are refused with an error.
    #[test]
    fn invalid_encodings_are_refused() {
        let bad = |entries: Vec<Entry>| {
            let entries = Entries::from_vec(entries);
            let bytes = postcard::to_stdvec(&VersionSet { entries }).unwrap();
            postcard::from_bytes::<VersionSet>(&bytes)
        };
        let e = |actor, counter, n: usize| Entry {
            actor: ActorId(actor),
            counter,
            values: Values::from_vec(vec![Value::Tombstone; n]),
        };
        assert!(bad(vec![e(2, 1, 1), e(1, 1, 1)]).is_err());
        assert!(bad(vec![e(1, 1, 1), e(1, 2, 1)]).is_err());
        assert!(bad(vec![e(1, 0, 0)]).is_err());
        assert!(bad(vec![e(1, 1, 2)]).is_err());
        assert!(bad(vec![e(1, 3, 0)]).is_err());
        assert!(bad(vec![e(1, 3, 1), e(4, 2, 2)]).is_ok());
        assert!(postcard::from_bytes::<VersionSet>(&[0xff, 0xff, 0xff]).is_err());
    }

    // ----- histories: replicas, clients, reads, writes and syncs, checked against an oracle ----

    /// One step of a random history over `REPLICAS` replicas and `CLIENTS` clients.
    #[derive(Clone, Debug)]
    enum Op {
        /// The client reads from the replicas in the mask (merged, as a quorum read does).
        Read { client: usize, mask: u8 },
        /// The client writes through a replica, with its last read's context or blind.
        Write {
            client: usize,
            replica: usize,
            blind: bool,
        },
        /// One replica sends its set to another (read repair, hint or anti-entropy).
        Sync { from: usize, to: usize },
    }

    const REPLICAS: usize = 3;
    const CLIENTS: usize = 3;

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..CLIENTS, 1u8..8).prop_map(|(client, mask)| Op::Read { client, mask }),
            (0..CLIENTS, 0..REPLICAS, prop::bool::weighted(0.2)).prop_map(
                |(client, replica, blind)| Op::Write {
                    client,
                    replica,
                    blind
                }
            ),
            (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Op::Sync { from, to }),
        ]
    }

    /// The oracle's replica: every version it ever received, with that version's causal past.
    #[derive(Clone, Default)]
    struct OracleReplica {
        versions: BTreeMap<Dot, (Value, CausalContext)>,
    }

    impl OracleReplica {
        /// Live = not in the causal past of any version this replica received.
        fn live(&self) -> BTreeMap<Dot, Value> {
            self.versions
                .iter()
                .filter(|(dot, _)| {
                    !self
                        .versions
                        .values()
                        .any(|(_, past)| past.counter(dot.actor) >= dot.counter)
                })
                .map(|(dot, (v, _))| (*dot, v.clone()))
                .collect()
        }
    }

    struct History {
        sets: Vec<VersionSet>,
        oracle: Vec<OracleReplica>,
    }

    fn run(ops: &[Op]) -> History {
        let mut sets = vec![VersionSet::new(); REPLICAS];
        let mut oracle = vec![OracleReplica::default(); REPLICAS];
        let mut contexts = vec![CausalContext::empty(); CLIENTS];
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Read { client, mask } => {
                    let mut read = VersionSet::new();
                    for (r, set) in sets.iter().enumerate() {
                        if mask & (1 << r) != 0 {
                            read.merge(set);
                        }
                    }
                    contexts[client] = read.context();
                }
                Op::Write {
                    client,
                    replica,
                    blind,
                } => {
                    let ctx = if blind {
                        CausalContext::empty()
                    } else {
                        contexts[client].clone()
                    };
                    let value = Value::Data(format!("c{client}s{step}").into_bytes());
                    let actor = ActorId(replica as u64 + 1);
                    let dot = sets[replica].update(&ctx, actor, value.clone());
                    oracle[replica].versions.insert(dot, (value, ctx));
                }
                Op::Sync { from, to } => {
                    let sent = sets[from].clone();
                    sets[to].merge(&sent);
                    let received = oracle[from].versions.clone();
                    oracle[to].versions.extend(received);
                }
            }
        }
        History { sets, oracle }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // The DVV set keeps exactly the versions that no received version's causal past covers:
        // no lost update, no false concurrency.
        #[test]
        fn live_versions_match_the_causal_oracle(ops in proptest::collection::vec(arb_op(), 0..60)) {
            let h = run(&ops);
            for (set, oracle) in h.sets.iter().zip(&h.oracle) {
                let live: BTreeMap<Dot, Value> = set.siblings().map(|(d, v)| (d, v.clone())).collect();
                prop_assert_eq!(live, oracle.live());
            }
        }

        // Merge is commutative, associative and idempotent on sets real histories produce.
        #[test]
        fn merge_laws(ops in proptest::collection::vec(arb_op(), 0..60)) {
            let h = run(&ops);
            let (a, b, c) = (&h.sets[0], &h.sets[1], &h.sets[2]);
            prop_assert_eq!(a.merged(b), b.merged(a));
            prop_assert_eq!(a.merged(b).merged(c), a.merged(&b.merged(c)));
            prop_assert_eq!(a.merged(a), a.clone());
            prop_assert_eq!(a.merged(b).digest(), b.merged(a).digest());
            prop_assert!(a.merged(b).covers(a) && a.merged(b).covers(b));
        }

        // `merge` reports a change exactly when the set is no longer equal to what it was:
        // stores rely on it to skip writing an unchanged set without keeping a copy.
        #[test]
        fn merge_reports_exactly_whether_it_changed(
            ops in proptest::collection::vec(arb_op(), 0..60),
        ) {
            let h = run(&ops);
            for a in &h.sets {
                for b in &h.sets {
                    let mut merged = a.clone();
                    let changed = merged.merge(b);
                    prop_assert_eq!(changed, merged != *a);
                }
                let mut same = a.clone();
                prop_assert!(!same.merge(a));
            }
        }

        // Sets round-trip through postcard, and the digest separates different sets.
        #[test]
        fn encoding_round_trips(ops in proptest::collection::vec(arb_op(), 0..40)) {
            let h = run(&ops);
            for set in &h.sets {
                let bytes = postcard::to_stdvec(set).unwrap();
                let back: VersionSet = postcard::from_bytes(&bytes).unwrap();
                prop_assert_eq!(&back, set);
            }
            if h.sets[0] != h.sets[1] {
                prop_assert_ne!(h.sets[0].digest(), h.sets[1].digest());
            }
        }

        // k clients looping read-modify-write keep at most k siblings, whichever replica they
        // write through, as long as each read sees the replica the client last wrote to
        // (a quorum read after a quorum write, R + W > N). Here: all replicas sync after a write.
        #[test]
        fn k_read_modify_write_clients_keep_at_most_k_siblings(
            k in 1usize..6,
            schedule in proptest::collection::vec((0usize..6, 0usize..REPLICAS), 1..200),
        ) {
            let mut sets = vec![VersionSet::new(); REPLICAS];
            let mut read: Vec<Option<CausalContext>> = vec![None; k];
            for (step, &(who, replica)) in schedule.iter().enumerate() {
                let client = who % k;
                match read[client].take() {
                    None => read[client] = Some(sets[replica].context()),
                    Some(ctx) => {
                        let value = Value::Data(format!("{client}/{step}").into_bytes());
                        sets[replica].update(&ctx, ActorId(replica as u64 + 1), value);
                        let written = sets[replica].clone();
                        for set in sets.iter_mut() {
                            set.merge(&written);
                        }
                    }
                }
                for set in &sets {
                    prop_assert!(set.sibling_count() <= k, "{} siblings for {k} clients", set.sibling_count());
                }
            }
        }
    }
}
