//! The end-of-run query checker (item workload, checker (c) of the query issue): a consistent
//! query returns exactly the items its home replicas hold for its range, as the reference model
//! of the acknowledged writes says they must be.
//!
//! It runs only when the workload queries ([`ItemWorkload::queries_on`]), after the settle and
//! convergence phase and after the other final checks (faults are healed, every node runs).
//! For each partition of the sorted table the world sends two consistent queries through the
//! ordinary request path, one at a time, each page to a random node: the whole partition
//! forward with a limit of 2 (followed page by page until `last` is `None`), and the whole
//! partition backward in one page. Each answer is judged against the home replicas' stored
//! versions, taken just before the query's first page and again after its last (plus
//! [`SETTLE_US`], so the query's own read repairs have landed):
//!
//! - **exact match**: for every item of the range, what the query returned (an item, or
//!   nothing) is what some set of at least R' = max(R, N/2+1) running home replicas resolves to
//!   when their versions are united (the core's merge), in one of the two snapshots. After
//!   convergence every replica holds the same, so this is *the* converged item; when repair is
//!   off and replicas differ, it is what some majority the query may have read holds. A query
//!   that answers from fewer replicas than R' shows a replica's lag as a mismatch whenever no
//!   majority agrees with that replica;
//! - **the reference model**: every acknowledged attribute write (the item oracle's
//!   [`crate::item_oracle::ItemOracle::claims`], the same newest-claim-per-attribute and
//!   "newer stamp wins" rule as the lost-attribute checker) that at least N − R' + 1 home
//!   replicas hold shows in the answer: its value, a value with a newer stamp, or no value
//!   where a replica holds a newer floor or removal. (Claims no majority must show are the
//!   lost-attribute checker's.) This follows from the exact match; it is kept to name the
//!   acknowledged write a mismatch lost;
//! - **order and range**: every returned item is an item of the range, once, in strictly
//!   ascending sort-key order (descending for a backward query).
//!
//! A query that gets no complete answer within three request timeouts is counted
//! (`final_queries_failed`) and not judged.
//!
//! # Invariants
//! - Nothing here runs, draws from the RNG or schedules an event unless the workload queries:
//!   other runs are bit-identical to what they were.
//! - One end-of-run query is in flight at a time; its reply is taken by [`World::on_reply`]
//!   before any client's.

use super::*;
use crate::item_oracle::{AttributeClaim, holds, resolve};
use crate::item_workload::{ItemWorkload, QueryShape, SORTED, SortRange, show};
use ringstore_core::item::{Item, ItemKey, StampedItem};

/// Virtual time the checker waits after a query, so its read repairs land before the next
/// snapshot.
pub const SETTLE_US: u64 = 100_000;

/// The most pages an end-of-run query follows.
const MAX_PAGES: usize = 64;

/// Per item of a range, each running home replica and its stored versions.
pub type Snapshot = BTreeMap<u64, Vec<(NodeId, Option<VersionSet>)>>;

impl World {
    /// Runs the end-of-run queries and judges them (nothing without workload queries).
    pub(super) fn check_queries(&mut self) -> Vec<Violation> {
        let Some(items) = self.scenario.workload.items.clone() else {
            return Vec::new();
        };
        if !items.queries_on() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for partition in 0..items.partitions {
            for (forward, limit) in [(true, Some(2)), (false, None)] {
                let shape = QueryShape {
                    partition,
                    range: SortRange::All,
                    forward,
                    limit,
                    consistent: true,
                };
                if let Some(v) = self.final_query(&items, shape) {
                    out.push(Violation::Item(Box::new(v)));
                }
            }
        }
        out
    }

    /// The stored versions of the range's items on their running home replicas.
    fn snapshot(&self, items: &ItemWorkload, shape: &QueryShape) -> Snapshot {
        let mut out = Snapshot::new();
        let Some(ring) = self
            .nodes
            .iter()
            .find_map(|n| n.node.as_ref().and_then(|n| n.ring().cloned()))
        else {
            return out;
        };
        let n = usize::from(self.scenario.node.n);
        for (index, _) in items.items_in(shape.partition, shape.range) {
            let Some(key) = items.key(index) else {
                continue;
            };
            let key = key.encode();
            let sets = ring
                .preference_list(&key, n)
                .iter()
                .filter_map(|node| {
                    let running = self.slot(node)?.node.as_ref()?;
                    Some((node, running.store().get(&key).ok().flatten()))
                })
                .collect();
            out.insert(index, sets);
        }
        out
    }

    /// One end-of-run query, page by page, and its verdict.
    fn final_query(&mut self, items: &ItemWorkload, shape: QueryShape) -> Option<ItemViolation> {
        let before = self.snapshot(items, &shape);
        let mut returned = Vec::new();
        let mut via = Vec::new();
        let mut start_after = None;
        loop {
            let mut request = ClientRequest::new(ClientOp::Query(Box::new(
                items.query_request(&shape, start_after.take()),
            )));
            request.r = self.scenario.workload.r;
            let (node, reply) = self.final_call(request);
            via.push(node);
            match reply {
                Some(Ok(ClientReply::Items {
                    items: page, last, ..
                })) => {
                    returned.extend(page);
                    match last {
                        None => break,
                        Some(last) if via.len() < MAX_PAGES => start_after = Some(last),
                        Some(_) => return self.final_query_failed(),
                    }
                }
                _ => return self.final_query_failed(),
            }
        }
        self.run_until(self.now + SETTLE_US);
        let after = self.snapshot(items, &shape);
        let n = self.scenario.node.n;
        let quorum = self
            .scenario
            .workload
            .r
            .unwrap_or(self.scenario.node.r)
            .max(n / 2 + 1);
        let oracle = self.item_oracle.as_mut()?;
        oracle.counts_mut().final_queries_checked += 1;
        let claims: BTreeMap<u64, Vec<(String, AttributeClaim)>> = items
            .items_in(shape.partition, shape.range)
            .into_iter()
            .map(|(index, _)| (index, oracle.claims(index)))
            .collect();
        let verdict = judge(
            items,
            &shape,
            usize::from(quorum),
            usize::from(n),
            &returned,
            &[before, after],
            &claims,
        );
        verdict.map(|mut v| {
            if let ItemViolation::QueryMismatch { via: v_via, .. } = &mut v {
                *v_via = via;
            }
            v
        })
    }

    fn final_query_failed(&mut self) -> Option<ItemViolation> {
        if let Some(oracle) = self.item_oracle.as_mut() {
            oracle.counts_mut().final_queries_failed += 1;
        }
        None
    }

    /// Sends `request` to a random node and runs the world until its answer arrives or three
    /// request timeouts pass; returns the node and the answer.
    fn final_call(&mut self, request: ClientRequest) -> (NodeId, Option<ClientResult>) {
        let id = ClientId(self.next_client_id);
        self.next_client_id += 1;
        let index = self.rng.random_range(0..self.nodes.len());
        let node = self.nodes[index].id;
        let incarnation = self.nodes[index].incarnation;
        self.final_query = Some((id, None));
        let delay = self.network.client_delay(&mut self.rng);
        self.schedule(
            self.now + delay,
            Event::Request {
                node,
                incarnation,
                id,
                request: Box::new(request),
            },
        );
        let deadline = self.now + micros(self.scenario.node.request_timeout) * 3;
        while self.now < deadline && matches!(self.final_query, Some((_, None))) {
            let t = (self.now + 1_000).min(deadline);
            self.run_until(t);
        }
        let reply = self.final_query.take().and_then(|(_, reply)| reply);
        (node, reply)
    }
}

/// What each set of at least `quorum` of `sets` resolves to when united (the candidates a
/// correct consistent query may return for one item). A version set that does not decode
/// yields no candidate (the corrupt-item checker reports it).
fn majority_items(sets: &[(NodeId, Option<VersionSet>)], quorum: usize) -> Vec<Option<Item>> {
    let count = sets.len().min(16);
    let mut out = Vec::new();
    for mask in 1u32..(1 << count) {
        if (mask.count_ones() as usize) < quorum {
            continue;
        }
        let mut union: Option<VersionSet> = None;
        for (i, (_, set)) in sets.iter().take(count).enumerate() {
            if mask & (1 << i) != 0
                && let Some(set) = set
            {
                union = Some(match union {
                    Some(u) => u.merged(set),
                    None => set.clone(),
                });
            }
        }
        if let Ok(stamped) = resolve(union.as_ref()) {
            let item = stamped.item();
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    out
}

/// An item's pool attributes as reports show them: `{a0=w3, a2=w9}`, or `nothing`.
fn show_item(item: Option<&Item>) -> String {
    match item {
        None => "nothing".into(),
        Some(item) => {
            let shown: Vec<String> = item
                .attributes()
                .iter()
                .map(|(name, value)| format!("{name}={}", show(value)))
                .collect();
            format!("{{{}}}", shown.join(", "))
        }
    }
}

/// Judges one end-of-run query's answer `returned` (every page, in order) against the home
/// replicas' `snapshots` and the oracle's `claims` per item (see the module docs). `None`: it
/// passes.
pub fn judge(
    items: &ItemWorkload,
    shape: &QueryShape,
    quorum: usize,
    n: usize,
    returned: &[Item],
    snapshots: &[Snapshot],
    claims: &BTreeMap<u64, Vec<(String, AttributeClaim)>>,
) -> Option<ItemViolation> {
    let in_range = items.items_in(shape.partition, shape.range);
    let schema = ItemWorkload::table_ref(SORTED).schema;
    let mut got: BTreeMap<u64, &Item> = BTreeMap::new();
    let mut sorts = Vec::new();
    let mut extra = Vec::new();
    let mut concerned = Vec::new();
    for item in returned {
        let index = schema
            .key_of(item)
            .ok()
            .and_then(|key| items.index_of(&ItemKey { table: SORTED, key }));
        match index.and_then(|i| in_range.iter().find(|(j, _)| *j == i)) {
            Some(&(index, sort)) => {
                sorts.push(sort);
                if got.insert(index, item).is_some() {
                    extra.push(format!("{} returned twice", items.label(index)));
                    concerned.push(index);
                }
            }
            None => extra.push(format!("{} outside the range", show_item(Some(item)))),
        }
    }
    let ordered = sorts.windows(2).all(|w| {
        if shape.forward {
            w[0] < w[1]
        } else {
            w[0] > w[1]
        }
    });
    let mut missing = Vec::new();
    let mut different = Vec::new();
    let mut missed = Vec::new();
    for &(index, _) in &in_range {
        let label = items.label(index);
        let answer = got.get(&index).copied();
        let candidates: Vec<Option<Item>> = snapshots
            .iter()
            .flat_map(|s| majority_items(s.get(&index).map_or(&[][..], |v| v), quorum))
            .collect();
        if !candidates.iter().any(|c| c.as_ref() == answer) {
            concerned.push(index);
            let expected = candidates
                .iter()
                .find(|c| c.is_some())
                .or(candidates.first())
                .and_then(|c| c.as_ref());
            match answer {
                None => missing.push(format!(
                    "{label} (a majority of its home replicas resolves to {})",
                    show_item(expected)
                )),
                Some(a) if expected.is_none() => extra.push(format!(
                    "{label} = {} (no majority of its home replicas holds it)",
                    show_item(Some(a))
                )),
                Some(a) => different.push(format!(
                    "{label} = {} where a majority of its home replicas resolves to {}",
                    show_item(Some(a)),
                    show_item(expected)
                )),
            }
        }
        // The reference model: acknowledged writes a majority must show.
        let resolved = |s: &Snapshot| -> Vec<StampedItem> {
            s.get(&index)
                .map(|sets| {
                    sets.iter()
                        .filter_map(|(_, set)| resolve(set.as_ref()).ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let first = snapshots.first().map(resolved).unwrap_or_default();
        let all: Vec<StampedItem> = snapshots.iter().flat_map(resolved).collect();
        for (attribute, claim) in claims.get(&index).map_or(&[][..], |c| c) {
            let holders = first.iter().filter(|s| holds(s, attribute, claim)).count();
            if holders < n.saturating_sub(quorum) + 1 {
                continue;
            }
            let shown = answer.and_then(|item| item.get(attribute));
            let ok = match shown {
                Some(value) if *value == claim.value => true,
                Some(value) => all.iter().any(|s| {
                    s.attribute(attribute)
                        .is_some_and(|a| a.value.as_ref() == Some(value) && a.stamp > claim.stamp)
                }),
                None => all.iter().any(|s| {
                    s.floor() > claim.stamp
                        || s.attribute(attribute)
                            .is_some_and(|a| a.value.is_none() && a.stamp > claim.stamp)
                }),
            };
            if !ok {
                concerned.push(index);
                missed.push(format!(
                    "{} write {} of {label} set {attribute} = {} at stamp {} ({holders} home replicas held it; the answer shows {})",
                    claim.kind.name(),
                    claim.write,
                    show(&claim.value),
                    claim.stamp,
                    shown.map_or_else(|| "none".to_string(), show)
                ));
            }
        }
    }
    if ordered
        && extra.is_empty()
        && missing.is_empty()
        && different.is_empty()
        && missed.is_empty()
    {
        return None;
    }
    let limit = shape
        .limit
        .map_or_else(|| "no limit".to_string(), |l| format!("limit {l}"));
    Some(ItemViolation::QueryMismatch {
        item: concerned
            .first()
            .copied()
            .or(in_range.first().map(|(i, _)| *i))
            .unwrap_or(0),
        partition: ItemWorkload::partition_label(shape.partition),
        query: format!(
            "{}, {}, {limit}",
            shape.range,
            if shape.forward { "forward" } else { "backward" }
        ),
        via: Vec::new(),
        missing,
        extra,
        different,
        missed,
        order: (!ordered).then_some(sorts),
    })
}
