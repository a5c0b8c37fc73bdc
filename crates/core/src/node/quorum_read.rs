//! The get path: a quorum read of R replicas (Dynamo §4.5).
//!
//! The coordinator asks the first N nodes of the extended list it judges up, answers after R
//! responses with the merged set, keeps collecting until every target answered or the
//! deadline, then hands the answers to [`read_repair`](super::read_repair), after the client
//! has its answer. With `read_fanout = "quorum"` it asks only R of them (itself first when it
//! is one), one more for each that fails, and all the rest once `read_speculate_after` passes
//! without R answers (Cassandra's speculative retry).

use super::coordinator::{Operation, ReplyTo};
use super::{Node, Release, Timer};
use crate::NodeId;
use crate::config::ReadFanout;
use crate::protocol::{OpId, PeerMessage};
use crate::request::{ClientReply, ReadResult, ReplicaFailure, RequestError};
use crate::ring::{Token, key_token};
use crate::store::Store;
use crate::version::{Value, VersionSet};
use std::time::Duration;

pub(super) struct GetOp {
    pub(super) reply_to: ReplyTo,
    pub(super) key: Vec<u8>,
    pub(super) r: u8,
    /// The targets asked so far.
    pub(super) targets: Vec<NodeId>,
    /// Targets not asked yet (`read_fanout = "quorum"`), in preference order: asked one per
    /// failure, or all at once after `read_speculate_after`.
    pub(super) spares: Vec<NodeId>,
    pub(super) responses: Vec<(NodeId, Option<VersionSet>)>,
    pub(super) failures: Vec<(NodeId, ReplicaFailure)>,
    pub(super) replied: bool,
}

impl GetOp {
    pub(super) fn merged(&self) -> VersionSet {
        let mut merged = VersionSet::new();
        for (_, set) in self.responses.iter() {
            if let Some(set) = set {
                merged.merge(set);
            }
        }
        merged
    }

    pub(super) fn quorum_error(&self) -> RequestError {
        let answered = self.responses.iter().map(|(n, _)| *n);
        read_quorum_error(self.r, &self.targets, answered, &self.failures)
    }

    /// Every target asked so far has answered.
    pub(super) fn asked_all_answered(&self) -> bool {
        self.responses.len() + self.failures.len() >= self.targets.len()
    }

    /// Nothing more will come: every target asked answered, and no spare is still to be
    /// asked (or the client has its answer, so none will be).
    pub(super) fn all_answered(&self) -> bool {
        self.asked_all_answered() && (self.replied || self.spares.is_empty())
    }
}

/// A read's quorum failure (a get's, a query's, a scan step's): R needed, the targets asked,
/// how each failed, and every target that has not answered as timed out.
pub(super) fn read_quorum_error(
    r: u8,
    targets: &[NodeId],
    answered: impl Iterator<Item = NodeId>,
    failures: &[(NodeId, ReplicaFailure)],
) -> RequestError {
    let answered: Vec<NodeId> = answered.collect();
    let mut all_failures = failures.to_vec();
    for &node in targets {
        if !answered.contains(&node) && !failures.iter().any(|(n, _)| *n == node) {
            all_failures.push((node, ReplicaFailure::TimedOut));
        }
    }
    RequestError::Quorum {
        needed: r,
        acks: u8::try_from(answered.len()).unwrap_or(u8::MAX),
        tried: targets.to_vec(),
        failures: all_failures,
    }
}

/// The client's view of a merged set.
pub(super) fn read_result(set: &VersionSet) -> ReadResult {
    let mut has_tombstones = false;
    let mut values = Vec::new();
    for value in set.distinct_values() {
        match value {
            Value::Data(bytes) => values.push(bytes.clone()),
            Value::Tombstone | Value::ItemTombstone(_) => has_tombstones = true,
        }
    }
    ReadResult {
        values,
        context: set.context(),
        has_tombstones,
    }
}

impl<S: Store> Node<S> {
    /// Starts a get of R replicas: the first N nodes of the extended list judged up, or, for
    /// `home_only` (a consistent item read), the key's N home replicas only, those judged up
    /// first (fallbacks never count towards a consistent read).
    pub(super) fn start_get(
        &mut self,
        reply_to: ReplyTo,
        key: Vec<u8>,
        r: u8,
        home_only: bool,
        timeout: Duration,
    ) {
        let targets = self.read_targets(&key, home_only);
        let (targets, spares) = match self.config.read_fanout {
            ReadFanout::All => (targets, Vec::new()),
            ReadFanout::Quorum => {
                let mut targets = targets;
                // The coordinator's own copy costs no message: ask it first.
                if let Some(i) = targets.iter().position(|&t| t == self.id) {
                    targets[..=i].rotate_right(1);
                }
                let spares = targets.split_off(usize::from(r).min(targets.len()));
                (targets, spares)
            }
        };
        let op = self.new_op_id();
        let mut get = GetOp {
            reply_to,
            key: key.clone(),
            r,
            targets: Vec::with_capacity(targets.len() + spares.len()),
            spares,
            responses: Vec::new(),
            failures: Vec::new(),
            replied: false,
        };
        for target in targets {
            self.ask_for_read(op, &mut get, target);
        }
        if !get.spares.is_empty() && self.config.read_speculate_after < timeout {
            let at = self.now + self.config.read_speculate_after;
            self.timers.set(Timer::ReadSpeculate(op), at);
        }
        self.ops.insert(op, Operation::Get(get));
        self.timers.set(Timer::OpDeadline(op), self.now + timeout);
        self.check_get(op);
    }

    /// The replicas a read asks: the first N nodes of the extended list judged up, or with
    /// `home_only` the key's N home replicas, those judged up first.
    pub(super) fn read_targets(&self, key: &[u8], home_only: bool) -> Vec<NodeId> {
        self.read_targets_for_token(key_token(key), home_only)
    }

    /// [`Node::read_targets`] for the keys at `token`.
    pub(super) fn read_targets_for_token(&self, token: Token, home_only: bool) -> Vec<NodeId> {
        let n = usize::from(self.config.n);
        match self.ring.as_ref() {
            Some(ring) if home_only => {
                let (up, down): (Vec<NodeId>, Vec<NodeId>) = ring
                    .walk_from_token(token)
                    .take(n)
                    .partition(|&node| self.is_up(node));
                up.into_iter().chain(down).collect()
            }
            Some(ring) => {
                let walk: Vec<NodeId> = ring.walk_from_token(token).collect();
                let mut up: Vec<NodeId> = walk
                    .iter()
                    .copied()
                    .filter(|&node| self.is_up(node))
                    .take(n)
                    .collect();
                if up.is_empty() {
                    up = walk.into_iter().take(n).collect();
                }
                up
            }
            None => Vec::new(),
        }
    }

    /// Adds `target` to the get's targets and asks it: a `Read`, or the local store at once.
    pub(super) fn ask_for_read(&mut self, op: OpId, get: &mut GetOp, target: NodeId) {
        get.targets.push(target);
        if target == self.id {
            match self.store.get(&get.key) {
                Ok(set) => get.responses.push((self.id, set)),
                Err(e) => get.failures.push((
                    self.id,
                    ReplicaFailure::Storage {
                        detail: e.to_string(),
                    },
                )),
            }
        } else {
            let key = get.key.clone();
            self.send(target, PeerMessage::Read { op, key });
        }
    }

    /// Asks up to `count` of the get's spare targets (a target failed, or they are slow).
    pub(super) fn widen_get(&mut self, op: OpId, count: usize) {
        let Some(Operation::Get(mut get)) = self.ops.remove(&op) else {
            return;
        };
        let count = count.min(get.spares.len());
        let asked: Vec<NodeId> = get.spares.drain(..count).collect();
        for target in asked {
            self.ask_for_read(op, &mut get, target);
        }
        self.ops.insert(op, Operation::Get(get));
    }

    pub(super) fn on_read_reply(
        &mut self,
        from: NodeId,
        op: OpId,
        outcome: Result<Option<VersionSet>, ReplicaFailure>,
    ) {
        let Some(Operation::Get(get)) = self.ops.get_mut(&op) else {
            return;
        };
        let known = get.targets.contains(&from)
            && !get.responses.iter().any(|(n, _)| *n == from)
            && !get.failures.iter().any(|(n, _)| *n == from);
        if !known {
            return;
        }
        match outcome {
            Ok(set) => get.responses.push((from, set)),
            Err(f) => {
                get.failures.push((from, f));
                if !get.replied {
                    self.widen_get(op, 1);
                }
            }
        }
        self.check_get(op);
    }

    /// Answers the get at R responses (or fails it when R can no longer be reached); repairs
    /// and forgets it once every target answered.
    pub(super) fn check_get(&mut self, op: OpId) {
        loop {
            // Everyone asked has answered, too few of them well: ask as many spares as needed
            // (again if the coordinator's own store, asked at once, fails).
            let short = match self.ops.get(&op) {
                Some(Operation::Get(get))
                    if !get.replied && get.asked_all_answered() && !get.spares.is_empty() =>
                {
                    usize::from(get.r).saturating_sub(get.responses.len())
                }
                _ => 0,
            };
            if short == 0 {
                break;
            }
            self.widen_get(op, short);
        }
        let Some(Operation::Get(get)) = self.ops.get_mut(&op) else {
            return;
        };
        let mut answer = None;
        if !get.replied {
            let responses = get.responses.len();
            let reachable = get.targets.len() + get.spares.len() - get.failures.len();
            if responses >= usize::from(get.r) {
                get.replied = true;
                let merged = if self.config.sabotaged(|s| s.read_first_answer) {
                    get.responses[0].1.clone().unwrap_or_default()
                } else {
                    get.merged()
                };
                answer = Some(Ok(merged));
            } else if reachable < usize::from(get.r) {
                get.replied = true;
                answer = Some(Err(get.quorum_error()));
            }
        }
        let reply_to = get.reply_to;
        let done = get.all_answered();
        if let Some(result) = answer {
            match &result {
                Ok(_) => self.stats.reads_ok += 1,
                Err(_) => self.stats.requests_failed += 1,
            }
            match reply_to {
                // An item operation reads the versions themselves (their stamps).
                ReplyTo::Item(item_op) => self.on_item_read(item_op, result),
                _ => {
                    let result = result.map(|merged| ClientReply::Read(read_result(&merged)));
                    self.answer(reply_to, result, Release::Now);
                }
            }
        }
        if done && let Some(Operation::Get(get)) = self.ops.remove(&op) {
            self.timers.cancel(Timer::OpDeadline(op));
            self.timers.cancel(Timer::ReadSpeculate(op));
            self.read_repair(&get);
        }
    }

    /// `read_fanout = "quorum"`: the get's R replicas are slow; ask the others too.
    pub(super) fn on_read_speculate_timer(&mut self, op: OpId) {
        if let Some(Operation::Get(get)) = self.ops.get(&op)
            && !get.replied
        {
            self.widen_get(op, usize::MAX);
            self.check_get(op);
        }
    }
}
