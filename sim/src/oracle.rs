//! The oracle: it sees every write and read the clients make, and after the run checks the
//! replicas against them.
//!
//! # What counts as correct
//! A write *w* that read the values S(w) before writing (a read-modify-write or a delete) may
//! legitimately remove them; nothing else may. So, after heal and quiescence, on every replica
//! of a key (under the final ring):
//! 1. **durability** — every acknowledged write is live, or superseded: some write that read it
//!    is known to the replica (its dot is in the replica's causal history) or was never
//!    acknowledged (it may have landed). An acknowledged delete must be known to the replica
//!    (its tombstone is there, or something that read it is).
//! 2. **no resurrection** — a value read by an acknowledged write (which superseded it) is not
//!    live again. This catches lost deletes and lost merges alike.
//! 3. **convergence** — all replicas of every key hold identical version sets.
//! 4. **staleness** (measured, not a violation) — for every read: did it see the latest write
//!    acknowledged before it was issued (or something that superseded it)? How many acknowledged
//!    versions behind was it (k-staleness), and how long after that write's ack was it issued
//!    (t-visibility)?
//!
//! Sibling safety ("concurrent writes are never silently lost; a read-modify-write never loses
//! what it read") is rule 1 applied to every acknowledged write: a merge that dropped a sibling
//! leaves an acknowledged, unsuperseded value that is not live.

use ringstore_core::NodeId;
use ringstore_core::version::{CausalContext, Dot, VersionSet};
use std::collections::{BTreeMap, BTreeSet};
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
    /// When it was acknowledged, if it was.
    pub acked_us: Option<u64>,
    /// The version it created, once acknowledged.
    pub dot: Option<Dot>,
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
    /// context of the acknowledgement (`None` until then). An unacknowledged overwrite may
    /// have superseded any write of its key.
    CoordinatorCopy(Option<CausalContext>),
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
    /// A superseded value is live again.
    Resurrected {
        /// Key index.
        key: u64,
        /// The value that came back.
        write: u64,
        /// The acknowledged write that had superseded it.
        by: u64,
        /// The replica holding it.
        replica: NodeId,
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
    /// Replicas of a key still differ after quiescence.
    Diverged {
        /// Key index.
        key: u64,
        /// Replicas and their digests (`None`: the key is absent there).
        digests: Vec<(NodeId, Option<u64>)>,
    },
}

impl Violation {
    /// The key index it concerns.
    pub fn key(&self) -> u64 {
        match self {
            Violation::LostWrite { key, .. }
            | Violation::Resurrected { key, .. }
            | Violation::AckedBeforeDurable { key, .. }
            | Violation::Diverged { key, .. } => *key,
        }
    }

    /// A short name for the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::LostWrite { .. } => "lost-write",
            Violation::Resurrected { .. } => "resurrected",
            Violation::AckedBeforeDurable { .. } => "acked-before-durable",
            Violation::Diverged { .. } => "diverged",
        }
    }
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
                by,
                replica,
            } => write!(
                f,
                "resurrection: write {write} to key-{key} was superseded by acknowledged write {by} but is live again on {replica}"
            ),
            Violation::AckedBeforeDurable {
                key,
                at_us,
                by,
                w,
                holders,
            } => write!(
                f,
                "acknowledged before durable: {by} told a client at {:.6} s that its write to key-{key} succeeded with W={w}, but only {holders:?} held it durably",
                *at_us as f64 / 1e6
            ),
            Violation::Diverged { key, digests } => {
                write!(
                    f,
                    "divergence: replicas of key-{key} differ after quiescence: {digests:?}"
                )
            }
        }
    }
}

/// How far back k-staleness looks; a read further behind counts as this many versions.
pub const MAX_VERSIONS_BEHIND: usize = 1000;

/// Staleness measurements over all reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Staleness {
    /// Reads that had an acknowledged write before them.
    pub reads: u64,
    /// Of those, reads that saw the latest one (or something newer that superseded it).
    pub consistent: u64,
    /// k-staleness histogram: `versions_behind[k]` reads were k acknowledged versions behind.
    pub versions_behind: BTreeMap<u64, u64>,
    /// t-visibility samples: (µs between the latest write's ack and the read's issue, fresh?).
    pub visibility: Vec<(u64, bool)>,
    /// k-staleness per read, in the order of `visibility`: (µs between the latest write's ack
    /// and the read's issue, acknowledged versions behind).
    pub k_samples: Vec<(u64, u64)>,
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

/// Everything the clients did.
#[derive(Default)]
pub struct Oracle {
    /// Every write issued, by id.
    pub writes: BTreeMap<u64, WriteRecord>,
    /// Every read completed.
    pub reads: Vec<ReadRecord>,
}

impl Oracle {
    /// Records a write as issued.
    pub fn issue_write(&mut self, record: WriteRecord) {
        self.writes.insert(record.id, record);
    }

    /// Records a write's acknowledgement: its dot, and the context it returned (which, for an
    /// overwrite, tells what it superseded).
    pub fn ack_write(&mut self, id: u64, at_us: u64, dot: Dot, context: CausalContext) {
        if let Some(w) = self.writes.get_mut(&id) {
            w.acked_us = Some(at_us);
            w.dot = Some(dot);
            if let Supersedes::CoordinatorCopy(covers) = &mut w.supersedes {
                *covers = Some(context);
            }
        }
    }

    /// Records a completed read.
    pub fn complete_read(&mut self, record: ReadRecord) {
        self.reads.push(record);
    }

    /// Every write, grouped by key.
    fn writes_by_key(&self) -> BTreeMap<u64, Vec<&WriteRecord>> {
        let mut by_key: BTreeMap<u64, Vec<&WriteRecord>> = BTreeMap::new();
        for w in self.writes.values() {
            by_key.entry(w.key).or_default().push(w);
        }
        by_key
    }

    /// Writes (acknowledged or not) that may have superseded `id`: those that read it, and
    /// overwrites of its key whose acknowledged context covers its dot (or that were never
    /// acknowledged, so that what they superseded is unknown).
    fn superseders(&self) -> BTreeMap<u64, Vec<u64>> {
        let by_key = self.writes_by_key();
        let mut by: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for w in self.writes.values() {
            let same_key = by_key.get(&w.key).map(Vec::as_slice).unwrap_or_default();
            let removed = match &w.supersedes {
                Supersedes::CoordinatorCopy(None) => same_key
                    .iter()
                    .filter(|other| other.id != w.id)
                    .map(|other| other.id)
                    .collect(),
                _ => Self::superseded_by(w, same_key),
            };
            for id in removed {
                by.entry(id).or_default().push(w.id);
            }
        }
        by
    }

    /// The writes `w` superseded, as far as the oracle knows (the ids its read returned, or
    /// for an acknowledged overwrite the writes of its key whose dots its context covers).
    fn superseded_by(w: &WriteRecord, same_key: &[&WriteRecord]) -> Vec<u64> {
        match &w.supersedes {
            Supersedes::Read(ids) => ids.clone(),
            Supersedes::CoordinatorCopy(None) => Vec::new(),
            Supersedes::CoordinatorCopy(Some(context)) => same_key
                .iter()
                .filter(|other| other.id != w.id)
                .filter(|other| {
                    other
                        .dot
                        .is_some_and(|dot| context.counter(dot.actor) >= dot.counter)
                })
                .map(|other| other.id)
                .collect(),
        }
    }

    /// Checks rules 1–3 against the final replica sets: `replicas[key]` = (node, its set).
    pub fn check(
        &self,
        replicas: &BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>>,
    ) -> Vec<Violation> {
        let superseders = self.superseders();
        let by_key = self.writes_by_key();
        let mut violations = Vec::new();
        for (&key, sets) in replicas {
            let live: Vec<(NodeId, BTreeSet<u64>)> = sets
                .iter()
                .map(|(node, set)| {
                    let ids = set
                        .iter()
                        .flat_map(|s| s.siblings())
                        .filter_map(|(_, v)| v.data().and_then(crate::workload::write_id_of))
                        .collect();
                    (*node, ids)
                })
                .collect();
            // 3. convergence
            let digests: Vec<(NodeId, Option<u64>)> = sets
                .iter()
                .map(|(node, set)| (*node, set.as_ref().map(VersionSet::digest)))
                .collect();
            if digests.windows(2).any(|w| w[0].1 != w[1].1) {
                violations.push(Violation::Diverged {
                    key,
                    digests: digests.clone(),
                });
            }
            let same_key = by_key.get(&key).map(Vec::as_slice).unwrap_or_default();
            for w in same_key {
                let Some(dot) = w.dot else { continue };
                let removed = Self::superseded_by(w, same_key);
                for ((node, set), (_, ids)) in sets.iter().zip(&live) {
                    // 1. durability
                    let present = if w.delete {
                        set.as_ref().is_some_and(|s| s.knows(dot))
                    } else {
                        ids.contains(&w.id)
                    };
                    let superseded = superseders.get(&w.id).is_some_and(|list| {
                        list.iter().any(|s| {
                            let sw = &self.writes[s];
                            match sw.dot {
                                Some(d) => set.as_ref().is_some_and(|set| set.knows(d)),
                                None => sw.acked_us.is_none(),
                            }
                        })
                    });
                    if !present && !superseded {
                        violations.push(Violation::LostWrite {
                            key,
                            write: w.id,
                            replica: *node,
                        });
                    }
                    // 2. no resurrection of what this acknowledged write superseded
                    for &old in &removed {
                        if ids.contains(&old) {
                            violations.push(Violation::Resurrected {
                                key,
                                write: old,
                                by: w.id,
                                replica: *node,
                            });
                        }
                    }
                }
            }
        }
        violations
    }

    /// Rule 4: staleness of every read.
    pub fn staleness(&self) -> Staleness {
        let superseders = self.superseders();
        // Acknowledged writes per key, by ack time.
        let mut acked: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        for w in self.writes.values() {
            if let Some(at) = w.acked_us {
                acked.entry(w.key).or_default().push((at, w.id));
            }
        }
        for list in acked.values_mut() {
            list.sort_unstable();
        }
        // Whether a read that returned `seen` (and showed a delete, if `shows_delete`) reflects
        // write `id`: it returned it, or a write that (transitively) superseded it, or showed a
        // delete that did.
        let reflects = |seen: &[u64], shows_delete: bool, id: u64| -> bool {
            let mut frontier = vec![id];
            let mut visited = BTreeSet::new();
            while let Some(x) = frontier.pop() {
                let is_delete = self.writes.get(&x).is_some_and(|w| w.delete);
                if seen.contains(&x) || (x != id && is_delete && shows_delete) {
                    return true;
                }
                if visited.insert(x)
                    && let Some(next) = superseders.get(&x)
                {
                    frontier.extend(next);
                }
            }
            false
        };
        let mut out = Staleness::default();
        for read in &self.reads {
            let Some(list) = acked.get(&read.key) else {
                continue;
            };
            // The acknowledged writes before the read was issued: a prefix of `list`.
            let before = &list[..list.partition_point(|(at, _)| *at <= read.issued_us)];
            let Some(&(latest_at, latest)) = before.last() else {
                continue;
            };
            out.reads += 1;
            // Versions are ordered by acknowledgement time (PBS's commit order). The read is as
            // new as the newest value it returned (a value not yet acknowledged counts as newer
            // than everything); an empty answer, or tombstones, show the newest delete before it.
            let shows_delete = read.seen.is_empty() || read.tombstones;
            let seen_at = read
                .seen
                .iter()
                .map(|id| {
                    self.writes
                        .get(id)
                        .and_then(|w| w.acked_us)
                        .unwrap_or(u64::MAX)
                })
                .max();
            let delete_at = if shows_delete {
                before
                    .iter()
                    .rev()
                    .find(|(_, id)| self.writes[id].delete)
                    .map(|(at, _)| *at)
            } else {
                None
            };
            let newest = seen_at.into_iter().chain(delete_at).max();
            let fresh = reflects(&read.seen, shows_delete, latest)
                || newest.is_some_and(|at| at >= latest_at);
            // k: how many acknowledged versions came after the newest one the read shows.
            let behind = if fresh {
                out.consistent += 1;
                0
            } else {
                let shown = newest.unwrap_or(0);
                (before.len() - before.partition_point(|(at, _)| *at <= shown))
                    .min(MAX_VERSIONS_BEHIND) as u64
            };
            *out.versions_behind.entry(behind).or_default() += 1;
            let since_ack_us = read.issued_us.saturating_sub(latest_at);
            out.visibility.push((since_ack_us, fresh));
            out.k_samples.push((since_ack_us, behind));
        }
        out
    }

    /// The history of one key, for a violation report.
    pub fn key_history(&self, key: u64) -> Vec<String> {
        let mut lines: Vec<(u64, String)> = Vec::new();
        for w in self.writes.values().filter(|w| w.key == key) {
            lines.push((
                w.issued_us,
                format!(
                    "  {:>10.3} ms  {} {} via {} supersedes {:?} -> {}",
                    w.issued_us as f64 / 1000.0,
                    if w.delete { "delete" } else { "write " },
                    w.id,
                    w.via,
                    w.supersedes,
                    match (w.acked_us, w.dot) {
                        (Some(at), Some(dot)) => format!(
                            "acked at {:.3} ms as {}:{}",
                            at as f64 / 1000.0,
                            dot.actor,
                            dot.counter
                        ),
                        _ => "not acknowledged".to_string(),
                    }
                ),
            ));
        }
        for r in self.reads.iter().filter(|r| r.key == key) {
            lines.push((
                r.issued_us,
                format!(
                    "  {:>10.3} ms  read   saw {:?} (answered at {:.3} ms)",
                    r.issued_us as f64 / 1000.0,
                    r.seen,
                    r.completed_us as f64 / 1000.0
                ),
            ));
        }
        lines.sort_by_key(|(at, _)| *at);
        lines.into_iter().map(|(_, line)| line).collect()
    }
}
