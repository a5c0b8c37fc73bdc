//! The consistent-read checker (item workload): a consistent GetItem sees every acknowledged
//! attribute write that a majority of the item's home replicas held throughout the read.
//!
//! A consistent GetItem reads `R' = max(R, N/2+1)` of the item's N home replicas, never a
//! fallback, whichever node coordinates it (`docs/items.md`). So when a node takes one, the
//! world notes, for each pool attribute of the item, the newest acknowledged write that set it
//! ([`ItemOracle::claims`]), provided at least `N − R' + 1` home replicas hold it: their stored
//! versions resolve to that attribute at its stamp or a newer one, or to a newer floor
//! ([`crate::item_oracle::holds`]). When the answer arrives, a noted write that the same
//! replicas still hold, in the same incarnation (so they held it throughout: a replica's
//! resolved item only moves forward while it runs), must show in the answer: its value, or a
//! value with a newer stamp; or no value, where a home replica now holds a floor or a removal
//! newer than the write. Any R' answers from home replicas include one of the holders, and the
//! merge keeps the newest stamp of each attribute.
//!
//! The home replicas come from the ring of the node that took the request, and the read is
//! judged only when every running node routes the item to the same replicas (a forwarded read
//! is coordinated elsewhere). A returned value whose stamp the oracle no longer knows (not one
//! of the item's last acknowledged writes, and gone from every home replica) is not judged.

use super::*;
use crate::item_oracle::{AttributeClaim, holds, resolve};
use ringstore_core::item::{AttributeValue, Item, ItemKey, Stamp, StampedItem};

/// An attribute write a read must reflect, with the home replicas that held it at the start.
struct Promise {
    attribute: String,
    claim: AttributeClaim,
    holders: Vec<(NodeId, u64)>,
}

/// A consistent GetItem being watched.
pub(super) struct ItemReadWatch {
    item: u64,
    key: Vec<u8>,
    needed: usize,
    via: NodeId,
    home: Vec<NodeId>,
    issued_us: u64,
    promised: Vec<Promise>,
}

impl World {
    /// The resolved item a running node's store holds for `key` (`None`: the node is down or
    /// its versions do not decode).
    fn resolved_on(&self, node: NodeId, key: &[u8]) -> Option<StampedItem> {
        let running = self.slot(node)?.node.as_ref()?;
        let set = running.store().get(key).ok()?;
        resolve(set.as_ref()).ok()
    }

    /// Node `index` has just taken consistent GetItem `id` of `key` with read quorum `r`: note
    /// what the answer must reflect.
    pub(super) fn watch_item_read(
        &mut self,
        index: usize,
        id: ClientId,
        key: &ItemKey,
        r: Option<u8>,
    ) {
        let Some(oracle) = self.item_oracle.as_ref() else {
            return;
        };
        let Some(item) = oracle.workload().index_of(key) else {
            return;
        };
        let claims = oracle.claims(item);
        if claims.is_empty() {
            return;
        }
        let n = self.scenario.node.n;
        let quorum = r.unwrap_or(self.scenario.node.r).max(n / 2 + 1);
        let needed = usize::from(n.saturating_sub(quorum)) + 1;
        let encoded = key.encode();
        let Some(ring) = self.nodes[index].node.as_ref().and_then(|n| n.ring()) else {
            return;
        };
        let home: Vec<NodeId> = ring
            .preference_list(&encoded, usize::from(n))
            .iter()
            .collect();
        let agreed = self
            .nodes
            .iter()
            .filter_map(|slot| slot.node.as_ref())
            .all(|node| {
                node.ring().is_some_and(|ring| {
                    ring.preference_list(&encoded, usize::from(n))
                        .iter()
                        .eq(home.iter().copied())
                })
            });
        if home.len() < usize::from(n) || !agreed {
            return;
        }
        let states: Vec<(NodeId, u64, StampedItem)> = home
            .iter()
            .filter_map(|&h| {
                let incarnation = self.slot(h)?.incarnation;
                Some((h, incarnation, self.resolved_on(h, &encoded)?))
            })
            .collect();
        let promised: Vec<Promise> = claims
            .into_iter()
            .filter_map(|(attribute, claim)| {
                let holders: Vec<(NodeId, u64)> = states
                    .iter()
                    .filter(|(_, _, state)| holds(state, &attribute, &claim))
                    .map(|&(h, incarnation, _)| (h, incarnation))
                    .collect();
                (holders.len() >= needed).then_some(Promise {
                    attribute,
                    claim,
                    holders,
                })
            })
            .collect();
        if !promised.is_empty() {
            let via = self.nodes[index].id;
            self.item_reads_watched.insert(
                id,
                ItemReadWatch {
                    item,
                    key: encoded,
                    needed,
                    via,
                    home,
                    issued_us: self.now,
                    promised,
                },
            );
        }
    }

    /// The answer to consistent GetItem `id` arrived with `found`: check what it had to
    /// reflect.
    pub(super) fn check_item_read(&mut self, id: ClientId, found: Option<&Item>) {
        let Some(watch) = self.item_reads_watched.remove(&id) else {
            return;
        };
        let now_states: Vec<(NodeId, u64, StampedItem)> = watch
            .home
            .iter()
            .filter_map(|&h| {
                let incarnation = self.slot(h)?.incarnation;
                Some((h, incarnation, self.resolved_on(h, &watch.key)?))
            })
            .collect();
        let mut judged = 0;
        let mut unjudged = 0;
        let mut stale = Vec::new();
        for p in &watch.promised {
            let held_throughout: Vec<NodeId> = p
                .holders
                .iter()
                .filter(|&&(h, incarnation)| {
                    now_states.iter().any(|(node, inc, state)| {
                        *node == h && *inc == incarnation && holds(state, &p.attribute, &p.claim)
                    })
                })
                .map(|&(h, _)| h)
                .collect();
            if held_throughout.len() < watch.needed {
                continue;
            }
            let returned = found.and_then(|item| item.get(&p.attribute));
            let verdict = match returned {
                Some(value) if *value == p.claim.value => Ok(()),
                Some(value) => {
                    let stamp = self.stamp_of_value(watch.item, &p.attribute, value, &now_states);
                    match stamp {
                        Some(stamp) if stamp > p.claim.stamp => Ok(()),
                        Some(stamp) => Err(Some((value.clone(), stamp))),
                        None => {
                            unjudged += 1;
                            continue;
                        }
                    }
                }
                None => {
                    let newer_floor = now_states.iter().any(|(_, _, state)| {
                        state.floor() > p.claim.stamp
                            || state
                                .attribute(&p.attribute)
                                .is_some_and(|a| a.value.is_none() && a.stamp > p.claim.stamp)
                    });
                    if newer_floor { Ok(()) } else { Err(None) }
                }
            };
            judged += 1;
            if let Err(returned) = verdict {
                stale.push(ItemViolation::StaleConsistentRead {
                    item: watch.item,
                    label: self.item_label(watch.item),
                    attribute: p.attribute.clone(),
                    claim: p.claim.clone(),
                    returned,
                    issued_us: watch.issued_us,
                    completed_us: self.now,
                    via: watch.via,
                    holders: held_throughout,
                });
            }
        }
        if let Some(oracle) = self.item_oracle.as_mut() {
            let counts = oracle.counts_mut();
            counts.consistent_reads_judged += u64::from(judged > 0);
            counts.consistent_attributes_judged += judged;
            counts.consistent_attributes_unjudged += unjudged;
        }
        for violation in stale {
            self.found(Violation::Item(Box::new(violation)));
        }
    }

    /// The stamp of `value` in `attribute` of `item`: from the oracle's recent
    /// acknowledgements, or from a home replica that still holds it.
    fn stamp_of_value(
        &self,
        item: u64,
        attribute: &str,
        value: &AttributeValue,
        states: &[(NodeId, u64, StampedItem)],
    ) -> Option<Stamp> {
        let acked = crate::item_workload::write_of(value)
            .and_then(|write| self.item_oracle.as_ref()?.stamp_of(item, write));
        acked.or_else(|| {
            states.iter().find_map(|(_, _, state)| {
                state
                    .attribute(attribute)
                    .filter(|a| a.value.as_ref() == Some(value))
                    .map(|a| a.stamp)
            })
        })
    }
}
