//! The quorum-read checker: where R + W > N promises a read sees an acknowledged write, it
//! must.
//!
//! When a get has been taken by its node, the world notes every acknowledged write on the key's
//! frontier (see [`Oracle::frontier`]) that at least N − R + 1 of the key's home replicas hold,
//! provided the read cannot go sloppy: the node is a home replica (so it coordinates the get
//! itself), every home replica is running, and the node judged them all up in the step that
//! took the get, so its targets (and spares) are exactly the home replicas. When the
//! answer arrives, a noted write that the same home replicas still hold, in the same
//! incarnation (so they held it throughout), must be covered by the answer's context: any R
//! answers from home replicas include one of those holders.
//!
//! This is deliberately conservative: forwarded reads, and reads while a home replica is down
//! or suspected, are not judged (sloppy quorums allow them to be stale), nor are writes held by fewer replicas than
//! the promise needs (a W that landed only on fallbacks, or lost a copy with a disk).

use super::*;

/// A write a read must reflect, with the home replicas that held it when the read arrived.
struct Promised {
    write: u64,
    dot: Dot,
    holders: Vec<(NodeId, u64)>,
}

/// A get being watched.
pub(super) struct ReadWatch {
    key: u64,
    r: u8,
    issued_us: u64,
    promised: Vec<Promised>,
}

impl World {
    /// Whether node `id` is running and its store knows `dot` of `key`.
    fn replica_knows(&self, id: NodeId, key: &[u8], dot: Dot) -> bool {
        self.slot(id)
            .and_then(|s| s.node.as_ref())
            .and_then(|n| n.store().get(key).ok().flatten())
            .is_some_and(|set| set.knows(dot))
    }

    /// Node `index` has just taken a get of `key` with read quorum `r` and client handle `id`
    /// (and asked its targets in that step): note what the get must reflect.
    pub(super) fn watch_read(&mut self, index: usize, id: ClientId, key: &[u8], r: Option<u8>) {
        let Some(key_index) = key_index(key) else {
            return;
        };
        let n = self.scenario.node.n;
        let r = r.unwrap_or(self.scenario.node.r);
        let Some(coordinator) = self.nodes[index].node.as_ref() else {
            return;
        };
        let Some(ring) = coordinator.ring() else {
            return;
        };
        let home: Vec<NodeId> = ring.preference_list(key, usize::from(n)).iter().collect();
        // The node coordinates the get itself only when it is a home replica, and asks only
        // home replicas only when it judged them all up in the step that took the get (its
        // judgement now is that step's: it has not been stepped since).
        if home.len() < usize::from(n)
            || !home.contains(&coordinator.id())
            || home.iter().any(|&h| !coordinator.is_up(h))
            || home
                .iter()
                .any(|&h| self.slot(h).is_none_or(|s| s.node.is_none()))
        {
            return;
        }
        let needed = usize::from(n.saturating_sub(r)) + 1;
        let mut promised = Vec::new();
        for (write, dot) in self.oracle.frontier(key_index) {
            let holders: Vec<(NodeId, u64)> = home
                .iter()
                .filter(|&&h| self.replica_knows(h, key, dot))
                .filter_map(|&h| self.slot(h).map(|s| (h, s.incarnation)))
                .collect();
            if holders.len() >= needed {
                promised.push(Promised {
                    write,
                    dot,
                    holders,
                });
            }
        }
        if !promised.is_empty() {
            self.reads_watched.insert(
                id,
                ReadWatch {
                    key: key_index,
                    r,
                    issued_us: self.now,
                    promised,
                },
            );
        }
    }

    /// The answer to get `id` arrived with `context`: check what it had to reflect.
    pub(super) fn check_read(&mut self, id: ClientId, context: &CausalContext) {
        let Some(watch) = self.reads_watched.remove(&id) else {
            return;
        };
        let n = self.scenario.node.n;
        let needed = usize::from(n.saturating_sub(watch.r)) + 1;
        self.counters.quorum_reads_judged += 1;
        let name = key_name(watch.key);
        for p in &watch.promised {
            let held_throughout: Vec<NodeId> = p
                .holders
                .iter()
                .filter(|&&(h, incarnation)| {
                    self.slot(h).is_some_and(|s| s.incarnation == incarnation)
                        && self.replica_knows(h, &name, p.dot)
                })
                .map(|&(h, _)| h)
                .collect();
            if held_throughout.len() >= needed && !context.knows(p.dot) {
                self.found(Violation::StaleQuorumRead {
                    key: watch.key,
                    write: p.write,
                    issued_us: watch.issued_us,
                    completed_us: self.now,
                    r: watch.r,
                    holders: held_throughout,
                });
            }
        }
    }

    /// A get (or a consistent GetItem) ended without an answer: nothing to check.
    pub(super) fn forget_read(&mut self, id: ClientId) {
        self.reads_watched.remove(&id);
        self.item_reads_watched.remove(&id);
    }
}
