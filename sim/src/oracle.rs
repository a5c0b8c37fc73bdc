//! The oracle: it sees every write and read the clients make, judges each read as it
//! completes, and after the run checks the replicas against what was acknowledged.
//!
//! # What counts as correct
//! A write *w* that read the values S(w) before writing (a read-modify-write or a delete) may
//! legitimately remove them; an overwrite may remove what its coordinator's copy held (the
//! context of its acknowledgement says what that was); nothing else may. So, after heal and
//! quiescence, on every replica of a key (under the final ring):
//! 1. **durability** — every acknowledged write is live, or superseded by an acknowledged write
//!    (whose own obligation then covers it: a replica that knows a version knows its causal
//!    past), or may have been superseded by a write that was never acknowledged (it may have
//!    landed). An acknowledged delete must be known to the replica (its tombstone is there, or
//!    something that read it is), or its tombstone was collected correctly (see
//!    [`Oracle::record_collection`]).
//! 2. **no resurrection** — a value superseded by an acknowledged write is not live again. This
//!    catches lost deletes and lost merges alike.
//! 3. **convergence** — all replicas of every key hold identical version sets.
//! 4. **no foreign versions** — every live value on a replica was written by a client, under
//!    the dot its write was acknowledged with.
//! 5. **staleness** (measured as each read completes, not a violation) — did the read see the
//!    latest write acknowledged before it was issued (its context covers that write's dot, or it
//!    returned something acknowledged later)? How many acknowledged versions behind was it
//!    (k-staleness), how long after that write's ack was it issued (t-visibility)? The world's
//!    quorum-read checker turns staleness into a violation where R + W > N promises freshness.
//!
//! Sibling safety ("concurrent writes are never silently lost; a read-modify-write never loses
//! what it read") is rule 1 applied to every acknowledged write: a merge that dropped a sibling
//! leaves an acknowledged, unsuperseded value that is not live.
//!
//! # Cost
//! Per key the oracle keeps only what can still matter: the writes in flight, the *frontier*
//! (acknowledged writes that no acknowledged write superseded and no failed write may have),
//! the last [`MAX_VERSIONS_BEHIND`] acknowledgements (for k-staleness) and a short history for
//! reports; per write id it keeps three bits. So the cost of an operation does not grow with
//! the run, and memory grows with the live keys (plus bits per write), not with the history.
//! Per-operation samples (latencies, t-visibility) are kept only when the workload asks
//! ([`crate::workload::WorkloadConfig::samples`]).
//!
//! # Invariants
//! - A write id is in at most one of a key's `pending` and `frontier` (checked).
//! - A frontier write is acknowledged, neither superseded nor excused (checked).

use crate::item_oracle::ItemViolation;
use ringstore_core::NodeId;
use ringstore_core::version::{CausalContext, Dot, VersionSet};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// One write a client issued.
#[derive(Clone, Debug)]
pub struct WriteRecord {
    /// Unique id (also the first 8 bytes of its value).
    pub id: u64,
    /// Key index.
    pub key: u64,
    /// Whether it is a delete.
    pub delete: bool,
    /// What it supersedes.
    pub supersedes: Supersedes,
    /// When it was issued (virtual µs).
    pub issued_us: u64,
    /// The node the client sent it to.
    pub via: NodeId,
}

/// What a write may legitimately remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Supersedes {
    /// The write ids its read returned (a read-modify-write, a delete, a probe's write; empty
    /// for a blind write).
    Read(Vec<u64>),
    /// An overwrite: what its coordinator's copy held, which the client learns only from the
    /// context of the acknowledgement. A failed overwrite may have superseded any write of its
    /// key that was issued before it failed.
    CoordinatorCopy,
}

/// One read a client completed.
#[derive(Clone, Debug)]
pub struct ReadRecord {
    /// Key index.
    pub key: u64,
    /// When it was issued.
    pub issued_us: u64,
    /// When its answer arrived.
    pub completed_us: u64,
    /// The write ids of the values it returned.
    pub seen: Vec<u64>,
    /// Whether it found tombstones (a delete, possibly beside concurrent writes).
    pub tombstones: bool,
    /// The context it returned: the causal history of the merged answer.
    pub context: CausalContext,
}

/// A broken rule, with the key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged write is neither live nor superseded on a replica.
    LostWrite {
        /// Key index.
        key: u64,
        /// The write.
        write: u64,
        /// The replica that lost it.
        replica: NodeId,
    },
    /// A value an acknowledged write superseded is live again.
    Resurrected {
        /// Key index.
        key: u64,
        /// The value that came back.
        write: u64,
        /// The replica holding it.
        replica: NodeId,
    },
    /// A replica holds a value no client wrote, or under another dot than its write's.
    ForeignVersion {
        /// Key index.
        key: u64,
        /// The replica.
        replica: NodeId,
        /// The sibling's dot.
        dot: Dot,
        /// The write id its value names, if any.
        write: Option<u64>,
    },
    /// A client was told a write succeeded while fewer than W nodes held it (or a version
    /// that supersedes it) in durable storage: a crash at that instant could lose it.
    AckedBeforeDurable {
        /// Key index.
        key: u64,
        /// Virtual time of the acknowledgement, µs.
        at_us: u64,
        /// The node that answered the client.
        by: NodeId,
        /// The write quorum the client asked for.
        w: u8,
        /// The nodes whose durable storage held it then (data or hint).
        holders: Vec<NodeId>,
    },
    /// A quorum read missed an acknowledged write that enough home replicas held throughout
    /// the read for every R of them to include one.
    StaleQuorumRead {
        /// Key index.
        key: u64,
        /// The write it missed.
        write: u64,
        /// When the read was issued and answered, µs.
        issued_us: u64,
        /// When its answer arrived, µs.
        completed_us: u64,
        /// The read quorum.
        r: u8,
        /// The home replicas that held the write from the read's start to its end.
        holders: Vec<NodeId>,
    },
    /// A node collected a key's tombstones while a home replica did not hold them.
    EarlyCollection {
        /// Key index.
        key: u64,
        /// Virtual time of the collection, µs.
        at_us: u64,
        /// The node that collected.
        by: NodeId,
        /// Home replicas that did not hold the same tombstones then.
        missing: Vec<NodeId>,
    },
    /// Replicas of a key still differ after quiescence.
    Diverged {
        /// Key index.
        key: u64,
        /// Replicas and their digests (`None`: the key is absent there).
        digests: Vec<(NodeId, Option<u64>)>,
    },
    /// A rule of the item workload broken (see [`crate::item_oracle`]); boxed, as item
    /// violations carry items and stamps.
    Item(Box<ItemViolation>),
}

impl Violation {
    /// The key index it concerns (`None`: it concerns an item, see [`Violation::item`]).
    pub fn key(&self) -> Option<u64> {
        match self {
            Violation::LostWrite { key, .. }
            | Violation::Resurrected { key, .. }
            | Violation::ForeignVersion { key, .. }
            | Violation::AckedBeforeDurable { key, .. }
            | Violation::StaleQuorumRead { key, .. }
            | Violation::EarlyCollection { key, .. }
            | Violation::Diverged { key, .. } => Some(*key),
            Violation::Item(_) => None,
        }
    }

    /// The item number it concerns, if it is an item violation.
    pub fn item(&self) -> Option<u64> {
        match self {
            Violation::Item(v) => Some(v.item()),
            _ => None,
        }
    }

    /// A short name for the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::LostWrite { .. } => "lost-write",
            Violation::Resurrected { .. } => "resurrected",
            Violation::ForeignVersion { .. } => "foreign-version",
            Violation::AckedBeforeDurable { .. } => "acked-before-durable",
            Violation::StaleQuorumRead { .. } => "stale-quorum-read",
            Violation::EarlyCollection { .. } => "early-collection",
            Violation::Diverged { .. } => "diverged",
            Violation::Item(v) => v.kind(),
        }
    }
}

pub(crate) fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LostWrite {
                key,
                write,
                replica,
            } => write!(
                f,
                "lost write: write {write} to key-{key} was acknowledged but is neither live nor superseded on {replica}"
            ),
            Violation::Resurrected {
                key,
                write,
                replica,
            } => write!(
                f,
                "resurrection: write {write} to key-{key} was superseded by an acknowledged write but is live again on {replica}"
            ),
            Violation::ForeignVersion {
                key,
                replica,
                dot,
                write,
            } => match write {
                Some(id) => write!(
                    f,
                    "foreign version: {replica} holds write {id} to key-{key} under dot {}:{}, not the dot it was acknowledged with",
                    dot.actor, dot.counter
                ),
                None => write!(
                    f,
                    "foreign version: {replica} holds a value of key-{key} (dot {}:{}) that no client wrote",
                    dot.actor, dot.counter
                ),
            },
            Violation::AckedBeforeDurable {
                key,
                at_us,
                by,
                w,
                holders,
            } => write!(
                f,
                "acknowledged before durable: {by} told a client at {:.6} s that its write to key-{key} succeeded with W={w}, but only {holders:?} held it durably",
                secs(*at_us)
            ),
            Violation::StaleQuorumRead {
                key,
                write,
                issued_us,
                completed_us,
                r,
                holders,
            } => write!(
                f,
                "stale quorum read: a read of key-{key} with R={r} issued at {:.6} s and answered at {:.6} s missed acknowledged write {write}, which home replicas {holders:?} held throughout",
                secs(*issued_us),
                secs(*completed_us)
            ),
            Violation::EarlyCollection {
                key,
                at_us,
                by,
                missing,
            } => write!(
                f,
                "early tombstone collection: {by} collected key-{key} at {:.6} s while home replicas {missing:?} did not hold its tombstones",
                secs(*at_us)
            ),
            Violation::Diverged { key, digests } => {
                write!(
                    f,
                    "divergence: replicas of key-{key} differ after quiescence: {digests:?}"
                )
            }
            Violation::Item(v) => v.fmt(f),
        }
    }
}

/// How far back k-staleness looks; a read further behind counts as this many versions.
pub const MAX_VERSIONS_BEHIND: usize = 100;

/// Events of a key kept for a violation report.
pub const HISTORY_PER_KEY: usize = 48;

/// Staleness measurements over all reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Staleness {
    /// Reads that had an acknowledged write before them.
    pub reads: u64,
    /// Of those, reads that saw the latest one (or something newer that superseded it).
    pub consistent: u64,
    /// k-staleness histogram: `versions_behind[k]` reads were k acknowledged versions behind.
    pub versions_behind: BTreeMap<u64, u64>,
}

impl Staleness {
    /// The fraction of reads that were consistent.
    pub fn consistent_fraction(&self) -> f64 {
        if self.reads == 0 {
            1.0
        } else {
            self.consistent as f64 / self.reads as f64
        }
    }
}

/// Per-operation samples, kept only when the workload asks (their memory grows with the run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// t-visibility samples: (µs between the latest write's ack and the read's issue, fresh?).
    pub visibility: Vec<(u64, bool)>,
    /// k-staleness per read, in the order of `visibility`: (µs between the latest write's ack
    /// and the read's issue, acknowledged versions behind).
    pub k_samples: Vec<(u64, u64)>,
    /// Latency of every acknowledged write, µs.
    pub write_latency_us: Vec<u64>,
    /// Latency of every completed read, µs.
    pub read_latency_us: Vec<u64>,
}

/// A growable set of write ids, one bit each.
#[derive(Default)]
pub(crate) struct IdBits(Vec<u64>);

impl IdBits {
    pub(crate) fn insert(&mut self, id: u64) {
        let word = usize::try_from(id / 64).unwrap_or(usize::MAX);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (id % 64);
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        usize::try_from(id / 64)
            .ok()
            .and_then(|word| self.0.get(word))
            .is_some_and(|bits| bits & (1 << (id % 64)) != 0)
    }
}

/// An acknowledged write on a key's frontier.
#[derive(Clone, Debug)]
struct AckedWrite {
    dot: Dot,
    delete: bool,
}

/// One acknowledgement, for k-staleness.
#[derive(Clone, Copy, Debug)]
struct Ack {
    at_us: u64,
    id: u64,
    dot: Dot,
    delete: bool,
}

/// An event of a key's history, for reports.
#[derive(Clone, Debug)]
enum KeyEvent {
    Issued(WriteRecord),
    Acked { id: u64, dot: Dot },
    Failed { id: u64 },
    Read { seen: Vec<u64>, completed_us: u64 },
    Collected { by: NodeId },
}

/// What the oracle keeps of one key.
#[derive(Default)]
struct KeyState {
    pending: BTreeMap<u64, WriteRecord>,
    frontier: BTreeMap<u64, AckedWrite>,
    /// The join of every acknowledged overwrite's context: a write whose dot it covers was in
    /// some acknowledged overwrite's coordinator copy, so it is superseded.
    overwrite_cover: CausalContext,
    /// The join of the contexts of tombstone sets collected while every home replica held them.
    collected: CausalContext,
    recent_acks: VecDeque<Ack>,
    history: VecDeque<(u64, KeyEvent)>,
}

impl KeyState {
    fn note(&mut self, at_us: u64, event: KeyEvent) {
        if self.history.len() == HISTORY_PER_KEY {
            self.history.pop_front();
        }
        self.history.push_back((at_us, event));
    }
}

/// Everything the clients did, as far as it can still matter.
#[derive(Default)]
pub struct Oracle {
    keys: BTreeMap<u64, KeyState>,
    /// Writes acknowledged to their client.
    acked: IdBits,
    /// Writes superseded by an acknowledged write.
    superseded: IdBits,
    /// Writes a failed write may have superseded.
    excused: IdBits,
    /// One more than the largest write id issued.
    next_id: u64,
    staleness: Staleness,
    samples: Option<Samples>,
    /// Key histories as they were when a violation concerning the key was found.
    pinned: BTreeMap<u64, Vec<String>>,
}

impl Oracle {
    /// An oracle that keeps per-operation samples.
    pub fn with_samples() -> Self {
        Oracle {
            samples: Some(Samples::default()),
            ..Oracle::default()
        }
    }

    /// Records a write as issued.
    pub fn issue_write(&mut self, record: WriteRecord) {
        self.next_id = self.next_id.max(record.id + 1);
        let ks = self.keys.entry(record.key).or_default();
        ks.note(record.issued_us, KeyEvent::Issued(record.clone()));
        ks.pending.insert(record.id, record);
    }

    /// The record of a write still in flight.
    pub fn pending_write(&self, key: u64, id: u64) -> Option<&WriteRecord> {
        self.keys.get(&key).and_then(|ks| ks.pending.get(&id))
    }

    /// Records a write's acknowledgement: its dot, and the context it returned (which, for an
    /// overwrite, tells what it superseded).
    pub fn ack_write(&mut self, key: u64, id: u64, at_us: u64, dot: Dot, context: CausalContext) {
        let Some(ks) = self.keys.get_mut(&key) else {
            return;
        };
        let Some(w) = ks.pending.remove(&id) else {
            return;
        };
        ks.note(at_us, KeyEvent::Acked { id, dot });
        self.acked.insert(id);
        if let Some(samples) = self.samples.as_mut() {
            samples
                .write_latency_us
                .push(at_us.saturating_sub(w.issued_us));
        }
        match &w.supersedes {
            Supersedes::Read(ids) => {
                for &old in ids {
                    self.superseded.insert(old);
                    ks.frontier.remove(&old);
                }
            }
            Supersedes::CoordinatorCopy => {
                ks.overwrite_cover = ks.overwrite_cover.join(&context);
                let covered: Vec<u64> = ks
                    .frontier
                    .iter()
                    .filter(|(_, a)| context.knows(a.dot))
                    .map(|(&old, _)| old)
                    .collect();
                for old in covered {
                    self.superseded.insert(old);
                    ks.frontier.remove(&old);
                }
            }
        }
        if ks.recent_acks.len() == MAX_VERSIONS_BEHIND {
            ks.recent_acks.pop_front();
        }
        ks.recent_acks.push_back(Ack {
            at_us,
            id,
            dot,
            delete: w.delete,
        });
        // An overwrite's own context covers its own dot; it supersedes only others.
        let own_overwrite = matches!(w.supersedes, Supersedes::CoordinatorCopy);
        let covered = !own_overwrite && ks.overwrite_cover.knows(dot);
        if covered {
            self.superseded.insert(id);
        }
        if !covered && !self.superseded.contains(id) && !self.excused.contains(id) {
            ks.frontier.insert(
                id,
                AckedWrite {
                    dot,
                    delete: w.delete,
                },
            );
        }
        debug_assert!(frontier_holds(
            ks,
            &self.acked,
            &self.superseded,
            &self.excused
        ));
    }

    /// Records that a write failed or got no answer: it may still have landed, so whatever it
    /// may have superseded is excused from rule 1.
    pub fn fail_write(&mut self, key: u64, id: u64, at_us: u64) {
        let Some(ks) = self.keys.get_mut(&key) else {
            return;
        };
        let Some(w) = ks.pending.remove(&id) else {
            return;
        };
        ks.note(at_us, KeyEvent::Failed { id });
        match &w.supersedes {
            Supersedes::Read(ids) => {
                for &old in ids {
                    self.excused.insert(old);
                    ks.frontier.remove(&old);
                }
            }
            Supersedes::CoordinatorCopy => {
                for old in ks.frontier.keys().chain(ks.pending.keys()) {
                    self.excused.insert(*old);
                }
                ks.frontier.clear();
            }
        }
    }

    /// Records a completed read and measures its staleness.
    pub fn complete_read(&mut self, record: ReadRecord) {
        let ks = self.keys.entry(record.key).or_default();
        ks.note(
            record.issued_us,
            KeyEvent::Read {
                seen: record.seen.clone(),
                completed_us: record.completed_us,
            },
        );
        if let Some(samples) = self.samples.as_mut() {
            samples
                .read_latency_us
                .push(record.completed_us.saturating_sub(record.issued_us));
        }
        // The acknowledgements before the read was issued: a prefix of `recent_acks`.
        let before = ks
            .recent_acks
            .partition_point(|a| a.at_us <= record.issued_us);
        let Some(latest) = before.checked_sub(1).map(|i| ks.recent_acks[i]) else {
            return;
        };
        self.staleness.reads += 1;
        // Versions are ordered by acknowledgement time (PBS's commit order). The read is as new
        // as the newest value it returned (a value not acknowledged counts as newer than
        // everything, one acknowledged too long ago as older); an empty answer, or tombstones,
        // show the newest delete before it.
        let shows_delete = record.seen.is_empty() || record.tombstones;
        let seen_at = record
            .seen
            .iter()
            .map(
                |&id| match ks.recent_acks.iter().rev().find(|a| a.id == id) {
                    Some(a) => a.at_us,
                    None if self.acked.contains(id) => 0,
                    None => u64::MAX,
                },
            )
            .max();
        let delete_at = if shows_delete {
            ks.recent_acks
                .range(..before)
                .rev()
                .find(|a| a.delete)
                .map(|a| a.at_us)
        } else {
            None
        };
        let newest = seen_at.into_iter().chain(delete_at).max();
        let fresh = record.context.knows(latest.dot) || newest.is_some_and(|at| at >= latest.at_us);
        let behind = if fresh {
            self.staleness.consistent += 1;
            0
        } else {
            let shown = newest.unwrap_or(0);
            let after = ks
                .recent_acks
                .range(..before)
                .filter(|a| a.at_us > shown)
                .count();
            if shown == 0 && ks.recent_acks.len() == MAX_VERSIONS_BEHIND {
                MAX_VERSIONS_BEHIND as u64
            } else {
                after as u64
            }
        };
        *self.staleness.versions_behind.entry(behind).or_default() += 1;
        if let Some(samples) = self.samples.as_mut() {
            let since_ack_us = record.issued_us.saturating_sub(latest.at_us);
            samples.visibility.push((since_ack_us, fresh));
            samples.k_samples.push((since_ack_us, behind));
        }
    }

    /// The acknowledged writes of `key` no acknowledged write superseded (and no failed one may
    /// have): what a read issued now must reflect, where a quorum promises it.
    pub fn frontier(&self, key: u64) -> Vec<(u64, Dot)> {
        self.keys
            .get(&key)
            .map(|ks| ks.frontier.iter().map(|(&id, a)| (id, a.dot)).collect())
            .unwrap_or_default()
    }

    /// Records that `by` collected the tombstones of `key` (whose causal history was
    /// `context`) while every home replica held them: the deletes they cover count as known
    /// for rule 1 from now on.
    pub fn record_collection(&mut self, key: u64, at_us: u64, by: NodeId, context: &CausalContext) {
        let ks = self.keys.entry(key).or_default();
        ks.collected = ks.collected.join(context);
        ks.note(at_us, KeyEvent::Collected { by });
    }

    /// Checks rules 1–4 against the final replica sets: `replicas[key]` = (node, its set).
    /// Writes still in flight count as failed from here on.
    pub fn check(
        &mut self,
        replicas: &BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>>,
        now_us: u64,
    ) -> Vec<Violation> {
        let in_flight: Vec<(u64, u64)> = self
            .keys
            .iter()
            .flat_map(|(&key, ks)| ks.pending.keys().map(move |&id| (key, id)))
            .collect();
        for (key, id) in in_flight {
            self.fail_write(key, id, now_us);
        }
        let mut violations = Vec::new();
        let empty = KeyState::default();
        for (&key, sets) in replicas {
            let ks = self.keys.get(&key).unwrap_or(&empty);
            // 3. convergence
            let digests: Vec<(NodeId, Option<u64>)> = sets
                .iter()
                .map(|(node, set)| (*node, set.as_ref().map(VersionSet::digest)))
                .collect();
            if digests.windows(2).any(|w| w[0].1 != w[1].1) {
                violations.push(Violation::Diverged { key, digests });
            }
            for (node, set) in sets {
                let live: BTreeMap<u64, Dot> = set
                    .iter()
                    .flat_map(|s| s.siblings())
                    .filter_map(|(dot, v)| {
                        v.data()
                            .map(|bytes| (crate::workload::write_id_of(bytes), dot))
                    })
                    .filter_map(|(id, dot)| match id {
                        Some(id) if id < self.next_id => Some((id, dot)),
                        _ => {
                            violations.push(Violation::ForeignVersion {
                                key,
                                replica: *node,
                                dot,
                                write: id,
                            });
                            None
                        }
                    })
                    .collect();
                // 1. durability
                for (&id, acked) in &ks.frontier {
                    let present = if acked.delete {
                        set.as_ref().is_some_and(|s| s.knows(acked.dot))
                            || ks.collected.knows(acked.dot)
                    } else {
                        live.contains_key(&id)
                    };
                    if !present {
                        violations.push(Violation::LostWrite {
                            key,
                            write: id,
                            replica: *node,
                        });
                    }
                }
                for (&id, &dot) in &live {
                    // 2. no resurrection
                    if self.superseded.contains(id) {
                        violations.push(Violation::Resurrected {
                            key,
                            write: id,
                            replica: *node,
                        });
                    }
                    // 4. the dot its write was acknowledged with
                    if let Some(acked) = ks.frontier.get(&id)
                        && acked.dot != dot
                    {
                        violations.push(Violation::ForeignVersion {
                            key,
                            replica: *node,
                            dot,
                            write: Some(id),
                        });
                    }
                }
            }
        }
        violations
    }

    /// Rule 5: staleness of every read so far.
    pub fn staleness(&self) -> Staleness {
        self.staleness.clone()
    }

    /// The per-operation samples, if this oracle keeps them.
    pub fn samples(&self) -> Option<&Samples> {
        self.samples.as_ref()
    }

    /// Keeps the history of `key` as it is now (a violation concerning it was found while
    /// running, and the bounded history would forget what led to it).
    pub fn pin_history(&mut self, key: u64) {
        if !self.pinned.contains_key(&key) {
            let lines = self.recent_history(key);
            self.pinned.insert(key, lines);
        }
    }

    /// The history of one key for a violation report: as pinned when a violation was found
    /// while running, then as it ends.
    pub fn key_history(&self, key: u64) -> Vec<String> {
        match self.pinned.get(&key) {
            Some(pinned) => {
                let mut lines = pinned.clone();
                lines.push("  (then, at the end of the run)".to_string());
                lines.extend(self.recent_history(key));
                lines
            }
            None => self.recent_history(key),
        }
    }

    fn recent_history(&self, key: u64) -> Vec<String> {
        let Some(ks) = self.keys.get(&key) else {
            return Vec::new();
        };
        let ms = |us: u64| us as f64 / 1000.0;
        let mut lines: Vec<(u64, String)> = ks
            .history
            .iter()
            .map(|(at, event)| {
                let line = match event {
                    KeyEvent::Issued(w) => format!(
                        "  {:>10.3} ms  {} {} via {} supersedes {:?}",
                        ms(*at),
                        if w.delete { "delete" } else { "write " },
                        w.id,
                        w.via,
                        w.supersedes
                    ),
                    KeyEvent::Acked { id, dot } => format!(
                        "  {:>10.3} ms  ack    {id} as {}:{}",
                        ms(*at),
                        dot.actor,
                        dot.counter
                    ),
                    KeyEvent::Failed { id } => {
                        format!("  {:>10.3} ms  failed {id} (may have landed)", ms(*at))
                    }
                    KeyEvent::Read { seen, completed_us } => format!(
                        "  {:>10.3} ms  read   saw {seen:?} (answered at {:.3} ms)",
                        ms(*at),
                        ms(*completed_us)
                    ),
                    KeyEvent::Collected { by } => {
                        format!("  {:>10.3} ms  tombstones collected by {by}", ms(*at))
                    }
                };
                (*at, line)
            })
            .collect();
        lines.sort_by_key(|(at, _)| *at);
        let mut out = Vec::with_capacity(lines.len() + 1);
        if ks.history.len() == HISTORY_PER_KEY {
            out.push(format!("  (the last {HISTORY_PER_KEY} events)"));
        }
        out.extend(lines.into_iter().map(|(_, line)| line));
        out
    }
}

/// Checks a key's frontier against the id bits (the invariants above).
fn frontier_holds(ks: &KeyState, acked: &IdBits, superseded: &IdBits, excused: &IdBits) -> bool {
    ks.frontier.keys().all(|&id| {
        acked.contains(id)
            && !superseded.contains(id)
            && !excused.contains(id)
            && !ks.pending.contains_key(&id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::version::ActorId;

    fn dot(actor: u64, counter: u64) -> Dot {
        Dot {
            actor: ActorId(actor),
            counter,
        }
    }

    fn write(id: u64, supersedes: Supersedes) -> WriteRecord {
        WriteRecord {
            id,
            key: 0,
            delete: false,
            supersedes,
            issued_us: id,
            via: NodeId(1),
        }
    }

    /// Issues write `id` and acknowledges it at `at_us` as `dot`.
    fn acked(oracle: &mut Oracle, id: u64, supersedes: Supersedes, at_us: u64, dot: Dot) {
        oracle.issue_write(write(id, supersedes));
        oracle.ack_write(0, id, at_us, dot, CausalContext::empty());
    }

    #[test]
    fn an_acknowledged_read_modify_write_takes_what_it_read_off_the_frontier() {
        let mut oracle = Oracle::default();
        acked(&mut oracle, 1, Supersedes::Read(vec![]), 10, dot(1, 1));
        assert_eq!(oracle.frontier(0), vec![(1, dot(1, 1))]);
        acked(&mut oracle, 2, Supersedes::Read(vec![1]), 20, dot(1, 2));
        assert_eq!(oracle.frontier(0), vec![(2, dot(1, 2))]);
        assert!(oracle.superseded.contains(1));
    }

    #[test]
    fn a_failed_overwrite_excuses_every_write_of_its_key_issued_before_it_failed() {
        let mut oracle = Oracle::default();
        acked(&mut oracle, 1, Supersedes::Read(vec![]), 10, dot(1, 1));
        oracle.issue_write(write(2, Supersedes::Read(vec![])));
        oracle.issue_write(write(3, Supersedes::CoordinatorCopy));
        oracle.fail_write(0, 3, 30);
        oracle.ack_write(0, 2, 40, dot(2, 1), CausalContext::empty());
        assert!(oracle.frontier(0).is_empty());
        acked(&mut oracle, 4, Supersedes::Read(vec![]), 50, dot(2, 2));
        assert_eq!(oracle.frontier(0), vec![(4, dot(2, 2))]);
    }

    #[test]
    fn an_overwrite_supersedes_what_its_context_covers_even_if_acknowledged_later() {
        let mut oracle = Oracle::default();
        oracle.issue_write(write(1, Supersedes::Read(vec![])));
        oracle.issue_write(write(2, Supersedes::CoordinatorCopy));
        let context = CausalContext::from_entries([(ActorId(1), 1), (ActorId(2), 1)]);
        oracle.ack_write(0, 2, 20, dot(2, 1), context);
        oracle.ack_write(0, 1, 30, dot(1, 1), CausalContext::empty());
        assert_eq!(oracle.frontier(0), vec![(2, dot(2, 1))]);
        assert!(oracle.superseded.contains(1));
    }

    #[test]
    fn a_read_whose_context_covers_the_latest_write_is_fresh_and_one_that_misses_it_is_not() {
        let mut oracle = Oracle::default();
        acked(&mut oracle, 1, Supersedes::Read(vec![]), 10, dot(1, 1));
        acked(&mut oracle, 2, Supersedes::Read(vec![1]), 20, dot(1, 2));
        let read = |seen: Vec<u64>, counter: u64| ReadRecord {
            key: 0,
            issued_us: 25,
            completed_us: 26,
            seen,
            tombstones: false,
            context: CausalContext::from_entries([(ActorId(1), counter)]),
        };
        oracle.complete_read(read(vec![2], 2));
        oracle.complete_read(read(vec![1], 1));
        let s = oracle.staleness();
        assert_eq!((s.reads, s.consistent), (2, 1));
        assert_eq!(s.versions_behind.get(&1), Some(&1));
    }

    #[test]
    fn the_final_check_finds_a_lost_write_a_resurrection_and_a_foreign_version() {
        let mut oracle = Oracle::default();
        acked(&mut oracle, 1, Supersedes::Read(vec![]), 10, dot(1, 1));
        acked(&mut oracle, 2, Supersedes::Read(vec![1]), 20, dot(1, 2));
        acked(&mut oracle, 3, Supersedes::Read(vec![]), 30, dot(2, 1));
        // The replica holds write 1 (superseded), write 3 under a wrong dot, and not write 2.
        let mut set = VersionSet::new();
        set.update(
            &CausalContext::empty(),
            ActorId(1),
            ringstore_core::version::Value::Data(crate::workload::value_of(1, 8)),
        );
        set.update(
            &CausalContext::empty(),
            ActorId(1),
            ringstore_core::version::Value::Data(crate::workload::value_of(3, 8)),
        );
        let replicas = BTreeMap::from([(0, vec![(NodeId(1), Some(set))])]);
        let kinds: Vec<&str> = oracle
            .check(&replicas, 100)
            .iter()
            .map(Violation::kind)
            .collect();
        assert!(kinds.contains(&"lost-write"), "{kinds:?}");
        assert!(kinds.contains(&"resurrected"), "{kinds:?}");
        assert!(kinds.contains(&"foreign-version"), "{kinds:?}");
    }
}
