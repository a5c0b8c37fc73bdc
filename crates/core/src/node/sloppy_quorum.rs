//! The put path with a sloppy quorum (Dynamo §4.6): where a write goes when replicas are down.
//!
//! The coordinator stamps the new version from its local copy and the client's context, stores
//! it durably, and sends the merged set to the other targets. Targets are the N nodes of the
//! preference list, each one judged down replaced by the next healthy node of the extended
//! list, which receives the write with a hint naming the intended owner (hinted handoff:
//! [`hinted_handoff`](super::hinted_handoff) delivers it later). A target that has not answered
//! after `sloppy_after` (or that failed) is replaced the same way. The client is answered after
//! W acknowledgements (the coordinator's own included when it is a target), each durable at its
//! sender.
//!
//! # Invariants
//! - A put's coordinator durably stores every version it stamps (even when it is not a target),
//!   so that its actor's counter for the key never goes back (see `node` on epochs).
//! - The client's "written" leaves only after the coordinator's own write is synced
//!   (`local_write`) and W targets acknowledged, each durably.

use super::coordinator::{Operation, ReplyTo, Supersedes};
use super::{Node, Release, Timer};
use crate::NodeId;
use crate::protocol::{KeyVersions, OpId, PeerMessage};
use crate::request::{ClientReply, ReplicaFailure, RequestError};
use crate::store::Store;
use crate::version::{Dot, MAX_SIBLINGS, Value, VersionSet};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum TargetState {
    Pending,
    Acked,
    Failed(ReplicaFailure),
}

/// One node a put was sent to.
pub(super) struct PutTarget {
    pub(super) node: NodeId,
    /// The owner this node stands in for (sloppy quorum).
    pub(super) hint_for: Option<NodeId>,
    pub(super) state: TargetState,
    /// Whether a fallback has already been sent in this target's place.
    pub(super) replaced: bool,
}

pub(super) struct PutOp {
    pub(super) reply_to: ReplyTo,
    /// The version this put created.
    pub(super) version: Dot,
    pub(super) item: KeyVersions,
    pub(super) w: u8,
    pub(super) targets: Vec<PutTarget>,
    /// The extended preference list, for fallbacks.
    pub(super) walk: Vec<NodeId>,
    pub(super) n: usize,
    pub(super) replied: bool,
    /// When the coordinator's own write of the new version is durable.
    pub(super) local_write: Release,
}

impl PutOp {
    pub(super) fn acks(&self) -> u8 {
        let acked = self
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Acked)
            .count();
        u8::try_from(acked).unwrap_or(u8::MAX)
    }

    pub(super) fn quorum_error(&self) -> RequestError {
        let mut tried: Vec<NodeId> = self.targets.iter().map(|t| t.node).collect();
        tried.dedup();
        let failures = self
            .targets
            .iter()
            .filter_map(|t| match &t.state {
                TargetState::Pending => Some((t.node, ReplicaFailure::TimedOut)),
                TargetState::Failed(f) => Some((t.node, f.clone())),
                TargetState::Acked => None,
            })
            .collect();
        RequestError::Quorum {
            needed: self.w,
            acks: self.acks(),
            tried,
            failures,
        }
    }
}

impl<S: Store> Node<S> {
    /// Starts a put. `local` is the coordinator's copy of the key when the caller has just
    /// read it (an item write), so that it is not read twice; `None` reads it here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_put(
        &mut self,
        reply_to: ReplyTo,
        key: Vec<u8>,
        value: Value,
        basis: Supersedes<'_>,
        w: u8,
        timeout: Duration,
        local: Option<VersionSet>,
    ) {
        let read = match local {
            Some(local) => Ok(Some(local)),
            None => self.store.get(&key),
        };
        let local = match read {
            Ok(local) => local,
            Err(e) => {
                self.stats.requests_failed += 1;
                let detail = e.to_string();
                self.answer(
                    reply_to,
                    Err(RequestError::Storage { detail }),
                    Release::Now,
                );
                return;
            }
        };
        let mut set = local.unwrap_or_default();
        let version = match basis {
            Supersedes::Context(context) => set.update(context, self.actor, value),
            Supersedes::LocalCopy => {
                let context = set.context();
                set.update(&context, self.actor, value)
            }
        };
        if set.sibling_count() > MAX_SIBLINGS {
            self.stats.requests_failed += 1;
            let e = RequestError::TooManySiblings {
                count: set.sibling_count(),
                max: MAX_SIBLINGS,
            };
            self.answer(reply_to, Err(e), Release::Now);
            return;
        }
        let merged = match self.merge_local(&key, &set) {
            Ok(outcome) => outcome.merged,
            Err(e) => {
                self.stats.requests_failed += 1;
                let detail = e.to_string();
                self.answer(
                    reply_to,
                    Err(RequestError::Storage { detail }),
                    Release::Now,
                );
                return;
            }
        };
        let local_write = self.durability_point();
        let walk: Vec<NodeId> = match self.ring.as_ref() {
            Some(ring) => ring.walk(&key).collect(),
            None => Vec::new(),
        };
        let n = usize::from(self.config.n).min(walk.len());
        let mut targets: Vec<PutTarget> = Vec::with_capacity(n);
        for i in 0..n {
            let owner = walk[i];
            if self.is_up(owner) {
                targets.push(PutTarget {
                    node: owner,
                    hint_for: None,
                    state: TargetState::Pending,
                    replaced: false,
                });
            } else {
                match self.next_fallback(&walk, n, &targets) {
                    Some(fallback) => targets.push(PutTarget {
                        node: fallback,
                        hint_for: Some(owner),
                        state: TargetState::Pending,
                        replaced: false,
                    }),
                    // No healthy node left: try the owner anyway, it may be up after all.
                    None => targets.push(PutTarget {
                        node: owner,
                        hint_for: None,
                        state: TargetState::Pending,
                        replaced: false,
                    }),
                }
            }
        }
        let item = KeyVersions {
            key,
            versions: merged,
        };
        let op = self.new_op_id();
        let put = PutOp {
            reply_to,
            version,
            item,
            w,
            targets,
            walk,
            n,
            replied: false,
            local_write,
        };
        let count = put.targets.len();
        self.ops.insert(op, Operation::Put(put));
        for index in 0..count {
            self.dispatch_put(op, index);
        }
        self.timers.set(Timer::OpDeadline(op), self.now + timeout);
        if self.config.sloppy_after < timeout {
            self.timers
                .set(Timer::Sloppy(op), self.now + self.config.sloppy_after);
        }
        self.check_put(op);
    }

    /// Sends the put to target `index`; a target that is this node is served at once (the set
    /// is already in the local store; a hint for another owner goes to the hint area).
    pub(super) fn dispatch_put(&mut self, op: OpId, index: usize) {
        let Some(Operation::Put(put)) = self.ops.get(&op) else {
            return;
        };
        let target = &put.targets[index];
        let (node, hint_for) = (target.node, target.hint_for);
        if hint_for.is_some() {
            self.stats.hinted_writes += 1;
        }
        if node != self.id {
            let message = PeerMessage::Replicate {
                op,
                item: put.item.clone(),
                hint_for,
            };
            self.send(node, message);
            return;
        }
        let state = match hint_for {
            None => TargetState::Acked,
            Some(owner) => {
                let item = put.item.clone();
                match self.store_hint(owner, &item) {
                    Ok(()) => TargetState::Acked,
                    Err(f) => TargetState::Failed(f),
                }
            }
        };
        if let Some(Operation::Put(put)) = self.ops.get_mut(&op) {
            put.targets[index].state = state;
        }
    }

    /// The next node of the extended list past the first `n` that is up and not yet a target.
    pub(super) fn next_fallback(
        &self,
        walk: &[NodeId],
        n: usize,
        targets: &[PutTarget],
    ) -> Option<NodeId> {
        walk.iter()
            .skip(n)
            .copied()
            .find(|&node| self.is_up(node) && !targets.iter().any(|t| t.node == node))
    }

    /// Answers the put once it has W acks; forgets it once every target has answered.
    pub(super) fn check_put(&mut self, op: OpId) {
        let Some(Operation::Put(put)) = self.ops.get_mut(&op) else {
            return;
        };
        let mut answer = None;
        let all_resolved = put.targets.iter().all(|t| t.state != TargetState::Pending);
        if !put.replied && put.acks() >= put.w {
            put.replied = true;
            answer = Some((
                put.reply_to,
                Ok(ClientReply::Written {
                    context: put.item.versions.context(),
                    version: put.version,
                }),
            ));
        } else if !put.replied && all_resolved {
            // Every target answered and no fallback is left: W cannot be reached any more.
            put.replied = true;
            answer = Some((put.reply_to, Err(put.quorum_error())));
        }
        let done = put
            .targets
            .iter()
            .all(|t| t.state != TargetState::Pending || t.replaced);
        let replied = put.replied;
        let local_write = put.local_write;
        if let Some((reply_to, result)) = answer {
            let ok = result.is_ok();
            if ok {
                self.stats.writes_ok += 1;
            } else {
                self.stats.requests_failed += 1;
            }
            // A successful write vouches for the coordinator's own copy of it.
            let release = if ok { local_write } else { Release::Now };
            self.answer(reply_to, result, release);
        }
        if done && replied {
            self.ops.remove(&op);
            self.timers.cancel(Timer::OpDeadline(op));
            self.timers.cancel(Timer::Sloppy(op));
        }
    }

    pub(super) fn on_replicate_ack(
        &mut self,
        from: NodeId,
        op: OpId,
        outcome: Result<(), ReplicaFailure>,
    ) {
        let Some(Operation::Put(put)) = self.ops.get_mut(&op) else {
            return;
        };
        let Some(index) = put
            .targets
            .iter()
            .position(|t| t.node == from && t.state == TargetState::Pending)
        else {
            return;
        };
        let failed = outcome.is_err();
        put.targets[index].state = match outcome {
            Ok(()) => TargetState::Acked,
            Err(f) => TargetState::Failed(f),
        };
        if failed {
            self.replace_target(op, index);
        }
        self.check_put(op);
    }

    /// Sends the write meant for target `index` to the next fallback, with a hint.
    pub(super) fn replace_target(&mut self, op: OpId, index: usize) {
        let Some(Operation::Put(put)) = self.ops.get_mut(&op) else {
            return;
        };
        let target = &put.targets[index];
        if target.replaced {
            return;
        }
        let owner = target.hint_for.unwrap_or(target.node);
        let Some(Operation::Put(put)) = self.ops.get(&op) else {
            return;
        };
        let Some(fallback) = self.next_fallback(&put.walk, put.n, &put.targets) else {
            return;
        };
        let Some(Operation::Put(put)) = self.ops.get_mut(&op) else {
            return;
        };
        put.targets[index].replaced = true;
        put.targets.push(PutTarget {
            node: fallback,
            hint_for: Some(owner),
            state: TargetState::Pending,
            replaced: false,
        });
        let new_index = put.targets.len() - 1;
        self.dispatch_put(op, new_index);
    }

    /// Dynamo §4.6: targets that have not answered in time are replaced by fallbacks.
    pub(super) fn on_sloppy_timer(&mut self, op: OpId) {
        let pending: Vec<usize> = match self.ops.get(&op) {
            Some(Operation::Put(put)) if !put.replied => put
                .targets
                .iter()
                .enumerate()
                .filter(|(_, t)| t.state == TargetState::Pending && !t.replaced)
                .map(|(i, _)| i)
                .collect(),
            _ => return,
        };
        for index in pending {
            self.replace_target(op, index);
        }
        self.check_put(op);
    }
}
