//! The item oracle: it sees every item operation the clients make (the item workload,
//! [`crate::item_workload`]), checks the converged items against the acknowledged writes at the
//! end of the run, keeps what the consistent-read checker (`world/consistent_reads.rs`) holds
//! reads to, and measures how many acknowledged attribute updates a concurrent write beat.
//!
//! # What counts as correct
//! An item write is stamped by its coordinator (`ClientReply::ItemWritten::stamp`), and
//! concurrent versions resolve attribute by attribute: each top-level attribute from its newest
//! stamp, then whatever is older than the newest row replacement or deletion (the *floor*) is
//! dropped (`docs/items.md`). So, after heal and quiescence, on every home replica of an item:
//! 1. **no acknowledged attribute write is lost except to a newer stamp** — for every
//!    acknowledged write and every top-level attribute it set (key attributes included: the row
//!    marker), the converged item's attribute carries that write's value, or a newer stamp (set
//!    or removed by another write, acknowledged or not), or was dropped by a floor newer than
//!    the write. A PutItem's and a DeleteItem's own floor must survive too: the converged floor
//!    is at least its stamp (a claim older than an acknowledged floor is that floor's to keep,
//!    so a lost floor is reported once, as the floor).
//! 2. **convergence** — every home replica resolves to the same item
//!    (`StampedItem::from_siblings(..).item()`), and every stored version decodes.
//!
//! Rule 3, a consistent GetItem sees what a majority of home replicas held, is judged while the
//! run goes (`world/consistent_reads.rs`) against [`ItemOracle::claims`].
//!
//! # The measurement: attribute updates a concurrent write beat
//! Per (item, attribute) the oracle keeps the chain of acknowledged writes that set it (or, a
//! PutItem not naming it or a DeleteItem, dropped it) in stamp order. Each write reports the
//! item it read (`old`: the consistent read of an UpdateItem or conditional PutItem, the
//! coordinator's own copy for an unconditional write). An attribute update *w* is **lost to a
//! newer stamp** when the next write of the chain, *x*, did not see it: `x.old` shows another
//! (older) value there, or none. *x* then was concurrent with *w* and won on its stamp. When
//! *x* saw a value of a write never acknowledged (its stamp unknown, possibly between *w* and
//! *x*), the update counts as *undecided*. A loss to a PutItem not naming the attribute or to a
//! DeleteItem counts apart ("to a newer row put/delete"). A chain link is decided once no write
//! can still be acknowledged with a stamp before its successor's: every stamp is at least its
//! coordinator's raw clock at the write, and the world bounds how far behind virtual time any
//! clock of the run can be ([`ItemOracle::new`]'s `max_clock_lag_us`); so no write issued at or
//! after `t` can carry a stamp below `t - max_clock_lag_us`.
//!
//! The same run also gives the counterfactual of whole-item last-writer-wins: per item, the
//! chain of every acknowledged write in stamp order; every attribute update of a write whose
//! successor's `old` shows none of its values would have been lost with the whole version.
//! (A write never acknowledged between the two that rewrote all of them makes this count too
//! high; `--sabotage item-whole-version-wins` measures the real thing in a different run.)
//!
//! *Limit:* a floor of a write never acknowledged (a DeleteItem that failed but landed) that
//! dropped *w* before *x* read makes *w* count as lost to *x*.
//!
//! # Cost
//! Per item: the writes in flight, the newest acknowledged claim per attribute (rule 1 holds for
//! every older write of that attribute once it holds for the newest, as stamps are totally
//! ordered), the newest acknowledged floor, the undecided part of each attribute's chain and of
//! the row chain (the writes of the last `max_clock_lag_us` plus a request's lifetime), the last
//! [`RECENT_STAMPS`] acknowledged stamps and [`HISTORY_PER_ITEM`] events for reports; one bit per
//! write id. Nothing grows with the length of the run except the id bits.
//!
//! # Invariants
//! - A write id is pending in at most one item, and the global issue index lists exactly the
//!   pending writes (checked in debug builds).
//! - A chain holds at most one link per stamp, and stamps are unique per write.

use crate::item_workload::{ItemOpKind, ItemWorkload, write_of};
use crate::oracle::{IdBits, Violation, secs};
use ringstore_core::NodeId;
use ringstore_core::item::{AttributeValue, Item, Stamp, StampedAttribute, StampedItem};
use ringstore_core::version::{Dot, VersionSet};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// Acknowledged stamps kept per item, to judge the values a read returns.
pub const RECENT_STAMPS: usize = 64;

/// Events of an item kept for a violation report.
pub const HISTORY_PER_ITEM: usize = 48;

/// One item write a client issued.
#[derive(Clone, Debug)]
pub struct ItemWriteRecord {
    /// Unique id (the values it sets are `w<id>`).
    pub id: u64,
    /// The item number.
    pub item: u64,
    /// PutItem, UpdateItem, DeleteItem or create-once PutItem.
    pub kind: ItemOpKind,
    /// The pool attributes it sets (none for a delete).
    pub attributes: Vec<String>,
    /// When it was issued (virtual µs).
    pub issued_us: u64,
    /// The node the client sent it to.
    pub via: NodeId,
}

/// What an acknowledged write obliges one attribute of the converged item to show: this value
/// at this stamp, or something newer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeClaim {
    /// The write.
    pub write: u64,
    /// Its kind.
    pub kind: ItemOpKind,
    /// Its stamp.
    pub stamp: Stamp,
    /// The value it set.
    pub value: AttributeValue,
    /// When it was acknowledged (virtual µs).
    pub acked_us: u64,
}

/// The newest acknowledged row replacement or deletion of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FloorClaim {
    write: u64,
    kind: ItemOpKind,
    stamp: Stamp,
    acked_us: u64,
}

/// One link of an attribute's chain (see the module docs).
#[derive(Clone, Debug)]
struct Link {
    write: u64,
    /// It set the attribute (otherwise it dropped it: a row put or delete).
    sets_value: bool,
    /// The write whose value of the attribute the item it read showed, if any.
    saw: Option<u64>,
}

/// One link of an item's whole-row chain: the counterfactual of whole-item last-writer-wins.
#[derive(Clone, Debug)]
struct RowLink {
    write: u64,
    /// How many pool attributes it set.
    attributes: u64,
    /// The writes whose values the item it read showed.
    saw: Vec<u64>,
}

/// An event of an item's history, for reports.
#[derive(Clone, Debug)]
enum ItemEvent {
    Issued(ItemWriteRecord),
    Acked {
        id: u64,
        stamp: Stamp,
        version: Dot,
    },
    Failed {
        id: u64,
    },
    ConditionFailed {
        id: u64,
    },
    Read {
        kind: ItemOpKind,
        completed_us: u64,
        shown: String,
    },
}

/// What the oracle keeps of one item.
#[derive(Default)]
struct ItemState {
    pending: BTreeMap<u64, ItemWriteRecord>,
    claims: BTreeMap<String, AttributeClaim>,
    floor: Option<FloorClaim>,
    chains: BTreeMap<String, BTreeMap<Stamp, Link>>,
    rows: BTreeMap<Stamp, RowLink>,
    recent: VecDeque<(u64, Stamp)>,
    history: VecDeque<(u64, ItemEvent)>,
}

impl ItemState {
    fn note(&mut self, at_us: u64, event: ItemEvent) {
        if self.history.len() == HISTORY_PER_ITEM {
            self.history.pop_front();
        }
        self.history.push_back((at_us, event));
    }
}

/// The measurement and the consistent-read checker's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemCounts {
    /// Acknowledged (write, pool attribute) pairs a PutItem or UpdateItem set.
    pub attribute_writes_acked: u64,
    /// Of those, overwritten by the next write of the chain, which had seen them.
    pub overwritten_after_seen: u64,
    /// Lost to a concurrent write of the same attribute with a newer stamp.
    pub lost_to_newer_stamp: u64,
    /// Lost to a concurrent row put or delete with a newer stamp.
    pub lost_to_newer_row: u64,
    /// The next write had seen a value of a write never acknowledged.
    pub undecided: u64,
    /// Acknowledged attribute updates whole-item last-writer-wins would have lost in the same
    /// run: those of every write the next write of the item (any attribute) had not seen.
    pub whole_item_would_lose: u64,
    /// Consistent reads held to the majority's promise (at least one attribute judged).
    pub consistent_reads_judged: u64,
    /// Attributes those reads were judged on.
    pub consistent_attributes_judged: u64,
    /// Attributes not judged: the read returned a value whose stamp was no longer known.
    pub consistent_attributes_unjudged: u64,
    /// End-of-run queries checked (`world/query_check.rs`).
    pub final_queries_checked: u64,
    /// End-of-run queries that got no complete answer (not judged).
    pub final_queries_failed: u64,
}

impl ItemCounts {
    /// Adds `other`'s counts (a sweep's totals).
    pub fn add(&mut self, other: &ItemCounts) {
        self.attribute_writes_acked += other.attribute_writes_acked;
        self.overwritten_after_seen += other.overwritten_after_seen;
        self.lost_to_newer_stamp += other.lost_to_newer_stamp;
        self.lost_to_newer_row += other.lost_to_newer_row;
        self.undecided += other.undecided;
        self.whole_item_would_lose += other.whole_item_would_lose;
        self.consistent_reads_judged += other.consistent_reads_judged;
        self.consistent_attributes_judged += other.consistent_attributes_judged;
        self.consistent_attributes_unjudged += other.consistent_attributes_unjudged;
        self.final_queries_checked += other.final_queries_checked;
        self.final_queries_failed += other.final_queries_failed;
    }
}

/// A broken rule of the item workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemViolation {
    /// Rule 1: an acknowledged attribute write is gone, and nothing newer beat it.
    LostAttribute {
        /// The item number and its name.
        item: u64,
        /// The item's name.
        label: String,
        /// The attribute.
        attribute: String,
        /// The claim that was lost.
        claim: AttributeClaim,
        /// The replica.
        replica: NodeId,
        /// What the converged item holds there instead (an older stamp), if anything.
        found: Option<StampedAttribute>,
        /// The converged item's floor.
        floor: Stamp,
    },
    /// Rule 1: an acknowledged PutItem's or DeleteItem's floor is gone.
    LostFloor {
        /// The item number.
        item: u64,
        /// The item's name.
        label: String,
        /// The write.
        write: u64,
        /// Its kind.
        kind: ItemOpKind,
        /// Its stamp.
        stamp: Stamp,
        /// When it was acknowledged.
        acked_us: u64,
        /// The replica.
        replica: NodeId,
        /// The converged item's floor there (older).
        floor: Stamp,
    },
    /// Rule 2: home replicas resolve to different items.
    Diverged {
        /// The item number.
        item: u64,
        /// The item's name.
        label: String,
        /// Each home replica's item (`None`: none).
        items: Vec<(NodeId, Option<Item>)>,
    },
    /// Rule 2: a stored version does not decode as an item.
    Corrupt {
        /// The item number.
        item: u64,
        /// The item's name.
        label: String,
        /// The replica.
        replica: NodeId,
        /// The decoder's error.
        detail: String,
    },
    /// Rule 3: a consistent GetItem missed an acknowledged attribute write that a majority of
    /// the home replicas held throughout the read.
    StaleConsistentRead {
        /// The item number.
        item: u64,
        /// The item's name.
        label: String,
        /// The attribute.
        attribute: String,
        /// The write it missed.
        claim: AttributeClaim,
        /// What it returned there (`None`: nothing), and that value's stamp.
        returned: Option<(AttributeValue, Stamp)>,
        /// When the read reached its node.
        issued_us: u64,
        /// When its answer arrived.
        completed_us: u64,
        /// The node the client sent it to.
        via: NodeId,
        /// The home replicas that held the write (or newer) from the read's start to its end.
        holders: Vec<NodeId>,
    },
    /// Checker (c): an end-of-run consistent query returned other items than the home replicas
    /// resolve to (no majority of them merges to its answer), or missed an acknowledged write a
    /// majority must show, or broke its order or range.
    QueryMismatch {
        /// The first item concerned.
        item: u64,
        /// The partition (`sorted/p1`).
        partition: String,
        /// The query: range, direction, limit.
        query: String,
        /// The node each page was sent to.
        via: Vec<NodeId>,
        /// Items in the range the answer lacks, with what a majority of replicas resolves to.
        missing: Vec<String>,
        /// Items the answer holds that no majority of replicas resolves to (or outside the
        /// range).
        extra: Vec<String>,
        /// Items whose attributes differ from every majority's, with both.
        different: Vec<String>,
        /// Acknowledged writes a majority of home replicas held that the answer does not show.
        missed: Vec<String>,
        /// Order breaches: the sort keys as returned, when not strictly in the query's order.
        order: Option<Vec<i64>>,
    },
    /// A client was told an item write succeeded while fewer than W nodes held it durably.
    AckedBeforeDurable {
        /// The item number.
        item: u64,
        /// The item's name.
        label: String,
        /// Virtual time of the acknowledgement, µs.
        at_us: u64,
        /// The node that answered.
        by: NodeId,
        /// The write quorum.
        w: u8,
        /// The nodes whose durable storage held it then.
        holders: Vec<NodeId>,
    },
}

impl ItemViolation {
    /// The item number it concerns.
    pub fn item(&self) -> u64 {
        match self {
            ItemViolation::LostAttribute { item, .. }
            | ItemViolation::LostFloor { item, .. }
            | ItemViolation::Diverged { item, .. }
            | ItemViolation::Corrupt { item, .. }
            | ItemViolation::StaleConsistentRead { item, .. }
            | ItemViolation::QueryMismatch { item, .. }
            | ItemViolation::AckedBeforeDurable { item, .. } => *item,
        }
    }

    /// A short name for the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ItemViolation::LostAttribute { .. } => "lost-attribute",
            ItemViolation::LostFloor { .. } => "lost-floor",
            ItemViolation::Diverged { .. } => "item-diverged",
            ItemViolation::Corrupt { .. } => "corrupt-item",
            ItemViolation::StaleConsistentRead { .. } => "stale-consistent-read",
            ItemViolation::QueryMismatch { .. } => "query-mismatch",
            ItemViolation::AckedBeforeDurable { .. } => "item-acked-before-durable",
        }
    }
}

fn show_value(value: &Option<AttributeValue>) -> String {
    value
        .as_ref()
        .map_or_else(|| "(removed)".into(), crate::item_workload::show)
}

impl fmt::Display for ItemViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemViolation::LostAttribute {
                label,
                attribute,
                claim,
                replica,
                found,
                floor,
                ..
            } => {
                let now = match found {
                    Some(a) => format!("{} at older stamp {}", show_value(&a.value), a.stamp),
                    None => "nothing".into(),
                };
                write!(
                    f,
                    "lost attribute update: {} write {} set {attribute} of {label} at stamp {} (acknowledged at {:.6} s), but on {replica} the converged item holds {now} and floor {floor}: no newer stamp beat it",
                    claim.kind.name(),
                    claim.write,
                    claim.stamp,
                    secs(claim.acked_us)
                )
            }
            ItemViolation::LostFloor {
                label,
                write,
                kind,
                stamp,
                acked_us,
                replica,
                floor,
                ..
            } => write!(
                f,
                "lost row floor: {} write {write} of {label} at stamp {stamp} (acknowledged at {:.6} s), but on {replica} the converged floor is {floor}",
                kind.name(),
                secs(*acked_us)
            ),
            ItemViolation::Diverged { label, items, .. } => write!(
                f,
                "item divergence: home replicas of {label} resolve to different items after quiescence: {items:?}"
            ),
            ItemViolation::Corrupt {
                label,
                replica,
                detail,
                ..
            } => write!(
                f,
                "corrupt item: a version of {label} on {replica} does not decode: {detail}"
            ),
            ItemViolation::StaleConsistentRead {
                label,
                attribute,
                claim,
                returned,
                issued_us,
                completed_us,
                via,
                holders,
                ..
            } => {
                let shown = match returned {
                    Some((value, stamp)) => format!(
                        "{attribute} = {} at older stamp {stamp}",
                        show_value(&Some(value.clone()))
                    ),
                    None => format!("no {attribute}, and no home replica holds a newer floor"),
                };
                write!(
                    f,
                    "stale consistent read: a consistent GetItem of {label} sent to {via} at {:.6} s and answered at {:.6} s returned {shown}, missing acknowledged {} write {} ({attribute} = w{} at stamp {}), which home replicas {holders:?} held throughout",
                    secs(*issued_us),
                    secs(*completed_us),
                    claim.kind.name(),
                    claim.write,
                    claim.write,
                    claim.stamp
                )
            }
            ItemViolation::QueryMismatch {
                partition,
                query,
                via,
                missing,
                extra,
                different,
                missed,
                order,
                ..
            } => {
                write!(
                    f,
                    "query mismatch: the end-of-run consistent query of {partition} ({query}, pages sent to {via:?}) does not match its home replicas"
                )?;
                let lists = [
                    ("missing", missing),
                    ("extra", extra),
                    ("different", different),
                    ("missed acknowledged writes", missed),
                ];
                for (name, list) in lists {
                    if !list.is_empty() {
                        write!(f, "; {name}: {}", list.join(", "))?;
                    }
                }
                if let Some(order) = order {
                    write!(f, "; sort keys returned out of order: {order:?}")?;
                }
                Ok(())
            }
            ItemViolation::AckedBeforeDurable {
                label,
                at_us,
                by,
                w,
                holders,
                ..
            } => write!(
                f,
                "acknowledged before durable: {by} told a client at {:.6} s that its write to {label} succeeded with W={w}, but only {holders:?} held it durably",
                secs(*at_us)
            ),
        }
    }
}

/// Whether `state` holds `claim` on `attribute`, or something that legitimately replaced it: a
/// newer stamp on the attribute, or a newer floor.
pub fn holds(state: &StampedItem, attribute: &str, claim: &AttributeClaim) -> bool {
    let attribute_ok = state.attribute(attribute).is_some_and(|a| {
        a.stamp > claim.stamp || (a.stamp == claim.stamp && a.value.as_ref() == Some(&claim.value))
    });
    attribute_ok || state.floor() > claim.stamp
}

/// Resolves a replica's stored versions of an item (`None`: the key is absent there).
pub fn resolve(set: Option<&VersionSet>) -> Result<StampedItem, String> {
    match set {
        Some(set) => {
            StampedItem::from_siblings(set.siblings().map(|(_, v)| v)).map_err(|e| e.to_string())
        }
        None => Ok(StampedItem::absent()),
    }
}

/// Everything the item clients did, as far as it can still matter.
pub struct ItemOracle {
    workload: ItemWorkload,
    attributes: Vec<String>,
    max_clock_lag_us: u64,
    items: BTreeMap<u64, ItemState>,
    /// (issued µs, write id) of every write in flight.
    pending_issue: BTreeSet<(u64, u64)>,
    /// Item writes acknowledged to their client.
    acked: IdBits,
    counts: ItemCounts,
    pinned: BTreeMap<u64, Vec<String>>,
}

impl ItemOracle {
    /// An oracle for `workload`, where no node's clock is ever more than `max_clock_lag_us`
    /// behind virtual time (the measurement's horizon, see the module docs).
    pub fn new(workload: ItemWorkload, max_clock_lag_us: u64) -> Self {
        ItemOracle {
            attributes: workload.attribute_names(),
            workload,
            max_clock_lag_us,
            items: BTreeMap::new(),
            pending_issue: BTreeSet::new(),
            acked: IdBits::default(),
            counts: ItemCounts::default(),
            pinned: BTreeMap::new(),
        }
    }

    /// The workload it records.
    pub fn workload(&self) -> &ItemWorkload {
        &self.workload
    }

    /// The measurement and the consistent-read counts so far.
    pub fn counts(&self) -> &ItemCounts {
        &self.counts
    }

    pub(crate) fn counts_mut(&mut self) -> &mut ItemCounts {
        &mut self.counts
    }

    /// Records a write as issued.
    pub fn issue_write(&mut self, record: ItemWriteRecord) {
        self.pending_issue.insert((record.issued_us, record.id));
        let state = self.items.entry(record.item).or_default();
        state.note(record.issued_us, ItemEvent::Issued(record.clone()));
        state.pending.insert(record.id, record);
    }

    fn take_pending(&mut self, item: u64, id: u64) -> Option<ItemWriteRecord> {
        let record = self.items.get_mut(&item)?.pending.remove(&id)?;
        self.pending_issue.remove(&(record.issued_us, id));
        debug_assert_eq!(
            self.pending_issue.len(),
            self.items.values().map(|s| s.pending.len()).sum::<usize>()
        );
        Some(record)
    }

    /// Records a write's acknowledgement: its stamp, its version, and the item it read.
    pub fn ack_write(
        &mut self,
        item: u64,
        id: u64,
        at_us: u64,
        stamp: Stamp,
        version: Dot,
        old: Option<&Item>,
    ) {
        let Some(record) = self.take_pending(item, id) else {
            return;
        };
        self.acked.insert(id);
        let key_attributes: Vec<(String, AttributeValue)> = self
            .workload
            .key(item)
            .map(|key| {
                ItemWorkload::table_ref(key.table)
                    .schema
                    .key_attributes(&key.key)
            })
            .unwrap_or_default();
        let Some(state) = self.items.get_mut(&item) else {
            return;
        };
        state.note(at_us, ItemEvent::Acked { id, stamp, version });
        if state.recent.len() == RECENT_STAMPS {
            state.recent.pop_front();
        }
        state.recent.push_back((id, stamp));
        let kind = record.kind;
        // Rule 1's claims: the newest acknowledged write of each attribute and floor.
        let mut claim = |name: &str, value: AttributeValue| {
            let new = AttributeClaim {
                write: id,
                kind,
                stamp,
                value,
                acked_us: at_us,
            };
            match state.claims.get_mut(name) {
                Some(old) if old.stamp >= stamp => {}
                Some(old) => *old = new,
                None => {
                    state.claims.insert(name.to_string(), new);
                }
            }
        };
        if kind != ItemOpKind::Delete {
            for (name, value) in &key_attributes {
                claim(name, value.clone());
            }
            for name in &record.attributes {
                claim(name, crate::item_workload::value_of(id));
            }
            self.counts.attribute_writes_acked += record.attributes.len() as u64;
        }
        if kind.replaces_row() && state.floor.as_ref().is_none_or(|f| f.stamp < stamp) {
            state.floor = Some(FloorClaim {
                write: id,
                kind,
                stamp,
                acked_us: at_us,
            });
        }
        // The measurement's chains.
        for name in &self.attributes {
            let sets_value = record.attributes.contains(name);
            if !sets_value && !kind.replaces_row() {
                continue;
            }
            let saw = old.and_then(|old| old.get(name)).and_then(write_of);
            let link = Link {
                write: id,
                sets_value,
                saw,
            };
            state
                .chains
                .entry(name.clone())
                .or_default()
                .insert(stamp, link);
        }
        let saw: Vec<u64> = old
            .map(|old| {
                self.attributes
                    .iter()
                    .filter_map(|name| old.get(name).and_then(write_of))
                    .collect()
            })
            .unwrap_or_default();
        let row = RowLink {
            write: id,
            attributes: record.attributes.len() as u64,
            saw,
        };
        state.rows.insert(stamp, row);
        let bound = self.settled_bound(at_us);
        self.settle(item, bound);
    }

    /// No write acknowledged from now on carries a stamp below this (µs of node time).
    fn settled_bound(&self, now_us: u64) -> u64 {
        let oldest_pending = self
            .pending_issue
            .first()
            .map_or(now_us, |&(issued, _)| issued);
        now_us
            .min(oldest_pending)
            .saturating_sub(self.max_clock_lag_us)
    }

    /// Decides the chain links of `item` whose successor's stamp is below `bound`.
    fn settle(&mut self, item: u64, bound: u64) {
        let Some(state) = self.items.get_mut(&item) else {
            return;
        };
        for chain in state.chains.values_mut() {
            loop {
                let mut links = chain.iter();
                let (Some((&first, w)), Some((next, x))) = (links.next(), links.next()) else {
                    break;
                };
                if next.micros >= bound {
                    break;
                }
                if w.sets_value {
                    let c = &mut self.counts;
                    match x.saw {
                        Some(seen) if seen == w.write => c.overwritten_after_seen += 1,
                        Some(seen) if !self.acked.contains(seen) => c.undecided += 1,
                        _ if x.sets_value => c.lost_to_newer_stamp += 1,
                        _ => c.lost_to_newer_row += 1,
                    }
                }
                chain.remove(&first);
            }
        }
        loop {
            let mut links = state.rows.iter();
            let (Some((&first, w)), Some((next, x))) = (links.next(), links.next()) else {
                break;
            };
            if next.micros >= bound {
                break;
            }
            if !x.saw.contains(&w.write) {
                self.counts.whole_item_would_lose += w.attributes;
            }
            state.rows.remove(&first);
        }
    }

    /// Records that a write failed or got no answer: it may have landed.
    pub fn fail_write(&mut self, item: u64, id: u64, at_us: u64) {
        if self.take_pending(item, id).is_some()
            && let Some(state) = self.items.get_mut(&item)
        {
            state.note(at_us, ItemEvent::Failed { id });
        }
    }

    /// Records that a conditional write's condition failed: it wrote nothing.
    pub fn condition_failed(&mut self, item: u64, id: u64, at_us: u64) {
        if self.take_pending(item, id).is_some()
            && let Some(state) = self.items.get_mut(&item)
        {
            state.note(at_us, ItemEvent::ConditionFailed { id });
        }
    }

    /// Records a completed GetItem (for reports).
    pub fn complete_read(
        &mut self,
        item: u64,
        kind: ItemOpKind,
        issued_us: u64,
        completed_us: u64,
        found: Option<&Item>,
    ) {
        let shown = match found {
            Some(found) => found
                .attributes()
                .iter()
                .filter(|(name, _)| self.attributes.contains(name))
                .map(|(name, value)| format!("{name}={}", show_value(&Some(value.clone()))))
                .collect::<Vec<_>>()
                .join(" "),
            None => "no item".into(),
        };
        let state = self.items.entry(item).or_default();
        state.note(
            issued_us,
            ItemEvent::Read {
                kind,
                completed_us,
                shown,
            },
        );
    }

    /// The newest acknowledged write of each pool attribute of `item`: what a read issued now
    /// must reflect, where a majority of home replicas hold it.
    pub fn claims(&self, item: u64) -> Vec<(String, AttributeClaim)> {
        let Some(state) = self.items.get(&item) else {
            return Vec::new();
        };
        state
            .claims
            .iter()
            .filter(|(name, _)| self.attributes.contains(name))
            .map(|(name, claim)| (name.clone(), claim.clone()))
            .collect()
    }

    /// The stamp of a recently acknowledged write of `item`.
    pub fn stamp_of(&self, item: u64, write: u64) -> Option<Stamp> {
        let state = self.items.get(&item)?;
        state
            .recent
            .iter()
            .rev()
            .find(|(id, _)| *id == write)
            .map(|(_, stamp)| *stamp)
    }

    /// Checks rules 1 and 2 against the final replica sets (`replicas[item]` = each home
    /// replica and its set), and decides the rest of the measurement. Writes still in flight
    /// count as failed from here on.
    pub fn check(
        &mut self,
        replicas: &BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>>,
        now_us: u64,
    ) -> Vec<Violation> {
        let in_flight: Vec<(u64, u64)> = self
            .items
            .iter()
            .flat_map(|(&item, s)| s.pending.keys().map(move |&id| (item, id)))
            .collect();
        for (item, id) in in_flight {
            self.fail_write(item, id, now_us);
        }
        let items: Vec<u64> = self.items.keys().copied().collect();
        for item in items {
            self.settle(item, u64::MAX);
        }
        let mut violations = Vec::new();
        let empty = ItemState::default();
        for (&item, sets) in replicas {
            let state = self.items.get(&item).unwrap_or(&empty);
            let label = self.workload.label(item);
            let mut resolved: Vec<(NodeId, StampedItem)> = Vec::new();
            for (node, set) in sets {
                match resolve(set.as_ref()) {
                    Ok(stamped) => resolved.push((*node, stamped)),
                    Err(detail) => {
                        violations.push(Violation::Item(Box::new(ItemViolation::Corrupt {
                            item,
                            label: label.clone(),
                            replica: *node,
                            detail,
                        })))
                    }
                }
            }
            // 2. convergence
            let shown: Vec<(NodeId, Option<Item>)> =
                resolved.iter().map(|(node, s)| (*node, s.item())).collect();
            if shown.windows(2).any(|w| w[0].1 != w[1].1) {
                violations.push(Violation::Item(Box::new(ItemViolation::Diverged {
                    item,
                    label: label.clone(),
                    items: shown,
                })));
            }
            // 1. no acknowledged attribute write lost except to a newer stamp
            for (node, stamped) in &resolved {
                for (attribute, claim) in &state.claims {
                    // A claim older than an acknowledged floor is the floor's to keep: if it is
                    // gone, the lost floor below is the violation.
                    let floored = state.floor.as_ref().is_some_and(|f| f.stamp > claim.stamp);
                    if !floored && !holds(stamped, attribute, claim) {
                        violations.push(Violation::Item(Box::new(ItemViolation::LostAttribute {
                            item,
                            label: label.clone(),
                            attribute: attribute.clone(),
                            claim: claim.clone(),
                            replica: *node,
                            found: stamped.attribute(attribute).cloned(),
                            floor: stamped.floor(),
                        })));
                    }
                }
                if let Some(floor) = &state.floor
                    && stamped.floor() < floor.stamp
                {
                    violations.push(Violation::Item(Box::new(ItemViolation::LostFloor {
                        item,
                        label: label.clone(),
                        write: floor.write,
                        kind: floor.kind,
                        stamp: floor.stamp,
                        acked_us: floor.acked_us,
                        replica: *node,
                        floor: stamped.floor(),
                    })));
                }
            }
        }
        violations
    }

    /// Keeps the history of `item` as it is now (a violation concerning it was found while
    /// running).
    pub fn pin_history(&mut self, item: u64) {
        if !self.pinned.contains_key(&item) {
            let lines = self.recent_history(item);
            self.pinned.insert(item, lines);
        }
    }

    /// The history of one item for a violation report: as pinned when a violation was found
    /// while running, then as it ends.
    pub fn item_history(&self, item: u64) -> Vec<String> {
        match self.pinned.get(&item) {
            Some(pinned) => {
                let mut lines = pinned.clone();
                lines.push("  (then, at the end of the run)".to_string());
                lines.extend(self.recent_history(item));
                lines
            }
            None => self.recent_history(item),
        }
    }

    fn recent_history(&self, item: u64) -> Vec<String> {
        let Some(state) = self.items.get(&item) else {
            return Vec::new();
        };
        let ms = |us: u64| us as f64 / 1000.0;
        let mut out = Vec::with_capacity(state.history.len() + 1);
        if state.history.len() == HISTORY_PER_ITEM {
            out.push(format!("  (the last {HISTORY_PER_ITEM} events)"));
        }
        let mut lines: Vec<(u64, String)> = state
            .history
            .iter()
            .map(|(at, event)| {
                let line = match event {
                    ItemEvent::Issued(w) => format!(
                        "  {:>10.3} ms  {:<12} {} via {} sets {:?}",
                        ms(*at),
                        w.kind.name(),
                        w.id,
                        w.via,
                        w.attributes
                    ),
                    ItemEvent::Acked { id, stamp, version } => format!(
                        "  {:>10.3} ms  ack          {id} stamp {stamp} as {}:{}",
                        ms(*at),
                        version.actor,
                        version.counter
                    ),
                    ItemEvent::Failed { id } => {
                        format!(
                            "  {:>10.3} ms  failed       {id} (may have landed)",
                            ms(*at)
                        )
                    }
                    ItemEvent::ConditionFailed { id } => format!(
                        "  {:>10.3} ms  not written  {id} (condition failed)",
                        ms(*at)
                    ),
                    ItemEvent::Read {
                        kind,
                        completed_us,
                        shown,
                    } => format!(
                        "  {:>10.3} ms  {:<12} saw {shown} (answered at {:.3} ms)",
                        ms(*at),
                        kind.name(),
                        ms(*completed_us)
                    ),
                };
                (*at, line)
            })
            .collect();
        lines.sort_by_key(|(at, _)| *at);
        out.extend(lines.into_iter().map(|(_, line)| line));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_workload::value_of;
    use ringstore_core::version::ActorId;

    fn stamp(micros: u64, actor: u64) -> Stamp {
        Stamp {
            micros,
            logical: 0,
            actor: ActorId(actor),
        }
    }

    fn dot(counter: u64) -> Dot {
        Dot {
            actor: ActorId(1),
            counter,
        }
    }

    fn oracle() -> ItemOracle {
        ItemOracle::new(ItemWorkload::default(), 0)
    }

    fn write(oracle: &mut ItemOracle, id: u64, kind: ItemOpKind, attributes: &[&str]) {
        oracle.issue_write(ItemWriteRecord {
            id,
            item: 0,
            kind,
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
            issued_us: id,
            via: NodeId(1),
        });
    }

    fn item(attributes: &[(&str, u64)]) -> Item {
        let mut all: BTreeMap<String, AttributeValue> =
            BTreeMap::from([("pk".to_string(), AttributeValue::S("p0".into()))]);
        for (name, id) in attributes {
            all.insert(name.to_string(), value_of(*id));
        }
        Item::new(all).expect("valid")
    }

    /// The replica sets of item 0 holding one version: `state`.
    fn replicas(state: &StampedItem) -> BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>> {
        let mut set = VersionSet::new();
        set.update(
            &ringstore_core::version::CausalContext::empty(),
            ActorId(1),
            state.to_value(),
        );
        BTreeMap::from([(
            0,
            vec![(NodeId(1), Some(set.clone())), (NodeId(2), Some(set))],
        )])
    }

    fn kinds(violations: &[Violation]) -> Vec<&'static str> {
        violations.iter().map(Violation::kind).collect()
    }

    #[test]
    fn an_attribute_kept_or_beaten_by_a_newer_stamp_or_floor_passes_and_a_lost_one_fails() {
        let mut o = oracle();
        write(&mut o, 1, ItemOpKind::Update, &["a1"]);
        o.ack_write(0, 1, 10, stamp(100, 1), dot(1), None);
        let kept = StampedItem::update(
            BTreeMap::from([
                ("pk".to_string(), Some(AttributeValue::S("p0".into()))),
                ("a1".to_string(), Some(value_of(1))),
            ]),
            stamp(100, 1),
        );
        assert_eq!(kinds(&o.check(&replicas(&kept), 20)), Vec::<&str>::new());
        // A newer write of another attribute only: a1 is lost (whole-item last-writer-wins).
        let lost = StampedItem::update(
            BTreeMap::from([
                ("pk".to_string(), Some(AttributeValue::S("p0".into()))),
                ("a2".to_string(), Some(value_of(9))),
            ]),
            stamp(200, 2),
        );
        let found = kinds(&o.check(&replicas(&lost), 20));
        assert_eq!(found, vec!["lost-attribute", "lost-attribute"], "{found:?}");
        // A newer floor drops it legitimately.
        let deleted = kept.merged(&StampedItem::delete(stamp(300, 2)));
        assert_eq!(kinds(&o.check(&replicas(&deleted), 20)), Vec::<&str>::new());
    }

    #[test]
    fn a_lost_delete_floor_and_diverged_replicas_are_reported() {
        let mut o = oracle();
        write(&mut o, 1, ItemOpKind::Delete, &[]);
        o.ack_write(0, 1, 10, stamp(100, 1), dot(1), None);
        let older = StampedItem::put(&item(&[("a0", 7)]), stamp(50, 2));
        let found = kinds(&o.check(&replicas(&older), 20));
        assert_eq!(found, vec!["lost-floor", "lost-floor"], "{found:?}");
        let mut sets = replicas(&StampedItem::delete(stamp(100, 1)));
        if let Some(list) = sets.get_mut(&0) {
            list[1].1 = None;
            list[0].1 = replicas(&older).remove(&0).and_then(|mut l| l.remove(0).1);
        }
        let found = kinds(&o.check(&sets, 20));
        assert!(found.contains(&"item-diverged"), "{found:?}");
    }

    #[test]
    fn an_update_older_than_a_lost_delete_is_reported_once_as_the_lost_floor() {
        let mut o = oracle();
        write(&mut o, 1, ItemOpKind::Update, &["a1"]);
        o.ack_write(0, 1, 10, stamp(100, 1), dot(1), None);
        write(&mut o, 2, ItemOpKind::Delete, &[]);
        o.ack_write(0, 2, 20, stamp(200, 1), dot(2), None);
        // The replicas kept neither the update nor the delete's floor.
        let found = kinds(&o.check(&replicas(&StampedItem::absent()), 30));
        assert_eq!(found, vec!["lost-floor", "lost-floor"], "{found:?}");
    }

    #[test]
    fn the_measurement_tells_a_seen_overwrite_from_a_blind_one() {
        let mut o = oracle();
        // 1 sets a0; 2 read it and overwrote it; 3 read an item without 2's a0 (concurrent)
        // and overwrote it at a newer stamp: 2 is lost to a newer stamp of the same attribute.
        write(&mut o, 1, ItemOpKind::Update, &["a0"]);
        o.ack_write(0, 1, 10, stamp(100, 1), dot(1), None);
        write(&mut o, 2, ItemOpKind::Update, &["a0"]);
        o.ack_write(0, 2, 20, stamp(200, 1), dot(2), Some(&item(&[("a0", 1)])));
        write(&mut o, 3, ItemOpKind::Update, &["a0", "a1"]);
        o.ack_write(0, 3, 30, stamp(300, 2), dot(3), Some(&item(&[("a0", 1)])));
        // 4 is a delete that saw 3's a0 and a1: both overwritten after being seen.
        write(&mut o, 4, ItemOpKind::Delete, &[]);
        o.ack_write(
            0,
            4,
            40,
            stamp(400, 1),
            dot(4),
            Some(&item(&[("a0", 3), ("a1", 3)])),
        );
        // Nothing is decided while the successors' stamps lie ahead of the clock.
        assert_eq!(o.counts().overwritten_after_seen, 0);
        let _ = o.check(&BTreeMap::new(), 1_000);
        let c = o.counts();
        assert_eq!(c.attribute_writes_acked, 4);
        assert_eq!(c.overwritten_after_seen, 3, "{c:?}");
        assert_eq!(c.lost_to_newer_stamp, 1, "{c:?}");
        assert_eq!((c.lost_to_newer_row, c.undecided), (0, 0), "{c:?}");
    }

    #[test]
    fn a_link_waits_until_no_earlier_stamp_can_still_be_acknowledged() {
        // With a lag bound of 1 s, a successor stamped at 0.3 s is not settled at 1 s.
        let mut o = ItemOracle::new(ItemWorkload::default(), 1_000_000);
        write(&mut o, 1, ItemOpKind::Update, &["a0"]);
        o.ack_write(0, 1, 1_000_000, stamp(200_000, 1), dot(1), None);
        write(&mut o, 2, ItemOpKind::Update, &["a0"]);
        o.ack_write(0, 2, 1_000_000, stamp(300_000, 2), dot(2), None);
        assert_eq!(o.counts().lost_to_newer_stamp, 0);
        // A write stamped between them is acknowledged later: 1's successor is 3, which saw 1.
        write(&mut o, 3, ItemOpKind::Update, &["a0"]);
        o.ack_write(
            0,
            3,
            1_100_000,
            stamp(250_000, 3),
            dot(3),
            Some(&item(&[("a0", 1)])),
        );
        let _ = o.check(&BTreeMap::new(), 5_000_000);
        let c = o.counts();
        assert_eq!(c.overwritten_after_seen, 1, "{c:?}");
        assert_eq!(c.lost_to_newer_stamp, 1, "{c:?}");
    }
}
