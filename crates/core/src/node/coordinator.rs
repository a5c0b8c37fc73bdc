//! Coordination of client requests: forwarding, sloppy-quorum puts, quorum gets, read repair.
//!
//! # Dynamo §4.5 and §4.6, as ringstore does them
//! - **Any node accepts a request.** A node outside the key's preference list forwards it to the
//!   first node of the list it judges up, and relays the answer. A forwarded request is never
//!   forwarded again (rings may briefly disagree; the receiver coordinates).
//! - **Put.** The coordinator stamps the new version from its local copy and the client's
//!   context, stores it durably, and sends the merged set to the other targets. Targets are the
//!   N nodes of the preference list, each one judged down replaced by the next healthy node of
//!   the extended list, which receives the write with a hint naming the intended owner. A target
//!   that has not answered after `sloppy_after` (or that failed) is replaced the same way. The
//!   client is answered after W acknowledgements (the coordinator's own included when it is a
//!   target), each durable at its sender.
//! - **Get.** The coordinator asks the first N nodes of the extended list it judges up, answers
//!   after R responses with the merged set, keeps collecting until every target answered or the
//!   deadline, then sends the merged set to every target whose answer was stale or missing (read
//!   repair), after the client has its answer. With `read_fanout = "quorum"` it asks only R of
//!   them (itself first when it is one), one more for each that fails, and all the rest once
//!   `read_speculate_after` passes without R answers (Cassandra's speculative retry).
//! - **Failure.** A request that cannot reach its quorum in time fails with
//!   [`RequestError::Quorum`], naming the quorum, the acknowledgements, every node tried and how
//!   each failed.
//!
//! # Invariants
//! - An operation answers its client exactly once.
//! - A put's coordinator durably stores every version it stamps (even when it is not a target),
//!   so that its actor's counter for the key never goes back (see `node` on epochs).

use super::{ClientId, Node, Release, Timer};
use crate::NodeId;
use crate::config::ReadFanout;
use crate::protocol::{KeyVersions, OpId, PeerMessage};
use crate::request::{
    ClientOp, ClientReply, ClientRequest, ClientResult, ReadResult, ReplicaFailure, RequestError,
};
use crate::store::Store;
use crate::version::{CausalContext, Dot, MAX_SIBLINGS, Value, VersionSet};
use std::time::Duration;

/// Where an operation's answer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReplyTo {
    /// A client of this node.
    Client(ClientId),
    /// A node that forwarded the request.
    Peer {
        /// The forwarder.
        node: NodeId,
        /// Its handle.
        op: OpId,
    },
}

/// What a put's new version supersedes.
#[derive(Clone, Copy, Debug)]
enum Supersedes<'a> {
    /// What the client's context saw (a put or delete after a read).
    Context(&'a CausalContext),
    /// Every version in the coordinator's own copy ([`ClientOp::Overwrite`]).
    LocalCopy,
}

/// A client-facing operation in flight.
pub(super) enum Operation {
    Put(PutOp),
    Get(GetOp),
    Forwarded { reply_to: ReplyTo, target: NodeId },
}

#[derive(Clone, Debug, PartialEq)]
enum TargetState {
    Pending,
    Acked,
    Failed(ReplicaFailure),
}

/// One node a put was sent to.
struct PutTarget {
    node: NodeId,
    /// The owner this node stands in for (sloppy quorum).
    hint_for: Option<NodeId>,
    state: TargetState,
    /// Whether a fallback has already been sent in this target's place.
    replaced: bool,
}

pub(super) struct PutOp {
    reply_to: ReplyTo,
    /// The version this put created.
    version: Dot,
    item: KeyVersions,
    w: u8,
    targets: Vec<PutTarget>,
    /// The extended preference list, for fallbacks.
    walk: Vec<NodeId>,
    n: usize,
    replied: bool,
    /// When the coordinator's own write of the new version is durable.
    local_write: Release,
}

pub(super) struct GetOp {
    reply_to: ReplyTo,
    key: Vec<u8>,
    r: u8,
    /// The targets asked so far.
    targets: Vec<NodeId>,
    /// Targets not asked yet (`read_fanout = "quorum"`), in preference order: asked one per
    /// failure, or all at once after `read_speculate_after`.
    spares: Vec<NodeId>,
    responses: Vec<(NodeId, Option<VersionSet>)>,
    failures: Vec<(NodeId, ReplicaFailure)>,
    replied: bool,
}

impl PutOp {
    fn acks(&self) -> u8 {
        let acked = self
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Acked)
            .count();
        u8::try_from(acked).unwrap_or(u8::MAX)
    }

    fn quorum_error(&self) -> RequestError {
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

impl GetOp {
    fn merged(&self) -> VersionSet {
        let mut merged = VersionSet::new();
        for (_, set) in self.responses.iter() {
            if let Some(set) = set {
                merged.merge(set);
            }
        }
        merged
    }

    fn quorum_error(&self) -> RequestError {
        let mut failures = self.failures.clone();
        for &node in &self.targets {
            let answered = self.responses.iter().any(|(n, _)| *n == node)
                || self.failures.iter().any(|(n, _)| *n == node);
            if !answered {
                failures.push((node, ReplicaFailure::TimedOut));
            }
        }
        RequestError::Quorum {
            needed: self.r,
            acks: u8::try_from(self.responses.len()).unwrap_or(u8::MAX),
            tried: self.targets.clone(),
            failures,
        }
    }

    /// Every target asked so far has answered.
    fn asked_all_answered(&self) -> bool {
        self.responses.len() + self.failures.len() >= self.targets.len()
    }

    /// Nothing more will come: every target asked answered, and no spare is still to be
    /// asked (or the client has its answer, so none will be).
    fn all_answered(&self) -> bool {
        self.asked_all_answered() && (self.replied || self.spares.is_empty())
    }
}

/// The client's view of a merged set.
pub(super) fn read_result(set: &VersionSet) -> ReadResult {
    let mut has_tombstones = false;
    let mut values = Vec::new();
    for value in set.distinct_values() {
        match value {
            Value::Data(bytes) => values.push(bytes.clone()),
            Value::Tombstone => has_tombstones = true,
        }
    }
    ReadResult {
        values,
        context: set.context(),
        has_tombstones,
    }
}

impl<S: Store> Node<S> {
    pub(super) fn on_client_request(&mut self, reply_to: ReplyTo, request: ClientRequest) {
        if let Err(e) = self.validate_request(&request) {
            self.stats.requests_failed += 1;
            self.answer(reply_to, Err(e), Release::Now);
            return;
        }
        if self.ops.len() >= self.config.max_inflight_requests {
            self.stats.requests_failed += 1;
            let e = RequestError::Overloaded {
                inflight: self.ops.len(),
                max: self.config.max_inflight_requests,
            };
            self.answer(reply_to, Err(e), Release::Now);
            return;
        }
        let Some(ring) = self.ring.as_ref() else {
            self.stats.requests_failed += 1;
            self.answer(reply_to, Err(RequestError::NoReplicas), Release::Now);
            return;
        };
        let n = usize::from(self.config.n);
        let preference = ring.preference_list(request.op.key(), n);
        let timeout = request
            .timeout_ms
            .map_or(self.config.request_timeout, Duration::from_millis);
        // Dynamo §4.5: a node outside the preference list forwards to the first one up.
        if !preference.contains(self.id) && matches!(reply_to, ReplyTo::Client(_)) {
            let up = preference.iter().find(|&node| self.is_up(node));
            if let Some(target) = up {
                let op = self.new_op_id();
                self.ops
                    .insert(op, Operation::Forwarded { reply_to, target });
                // The coordinator gets 90% of the time, so that its own, detailed error reaches
                // the client before the forwarder's deadline fires.
                let mut request = request;
                let inner = timeout.mul_f64(0.9).as_millis();
                request.timeout_ms = Some(u64::try_from(inner).unwrap_or(u64::MAX).max(1));
                self.send(target, PeerMessage::Forward { op, request });
                self.timers.set(Timer::OpDeadline(op), self.now + timeout);
                return;
            }
        }
        let r = request.r.unwrap_or(self.config.r);
        let w = request.w.unwrap_or(self.config.w);
        invariant!(
            (1..=self.config.n).contains(&r) && (1..=self.config.n).contains(&w),
            "quorum r={r} w={w} outside 1..=n={} passed validation",
            self.config.n
        );
        match request.op {
            ClientOp::Get { key } => self.start_get(reply_to, key, r, timeout),
            ClientOp::Put {
                key,
                value,
                context,
            } => {
                let basis = Supersedes::Context(&context);
                self.start_put(reply_to, key, Value::Data(value), basis, w, timeout);
            }
            ClientOp::Overwrite { key, value } => {
                let basis = Supersedes::LocalCopy;
                self.start_put(reply_to, key, Value::Data(value), basis, w, timeout);
            }
            ClientOp::Delete { key, context } => {
                let basis = Supersedes::Context(&context);
                self.start_put(reply_to, key, Value::Tombstone, basis, w, timeout);
            }
        }
    }

    fn validate_request(&self, request: &ClientRequest) -> Result<(), RequestError> {
        let key = request.op.key();
        if key.is_empty() {
            return Err(RequestError::EmptyKey);
        }
        if key.len() > self.config.max_key_bytes {
            return Err(RequestError::KeyTooLarge {
                len: key.len(),
                max: self.config.max_key_bytes,
            });
        }
        if let ClientOp::Put { value, .. } | ClientOp::Overwrite { value, .. } = &request.op
            && value.len() > self.config.max_value_bytes
        {
            return Err(RequestError::ValueTooLarge {
                len: value.len(),
                max: self.config.max_value_bytes,
            });
        }
        let n = self.config.n;
        for (which, asked) in [('r', request.r), ('w', request.w)] {
            if let Some(asked) = asked
                && (asked == 0 || asked > n)
            {
                return Err(RequestError::InvalidQuorum { which, asked, n });
            }
        }
        Ok(())
    }

    /// Sends an operation's answer where it belongs, once `release` allows.
    fn answer(&mut self, reply_to: ReplyTo, result: ClientResult, release: Release) {
        match reply_to {
            ReplyTo::Client(id) => self.reply_client(id, result, release),
            ReplyTo::Peer { node, op } => {
                let message = PeerMessage::ForwardReply { op, result };
                self.send_when(node, message, release);
            }
        }
    }

    fn start_put(
        &mut self,
        reply_to: ReplyTo,
        key: Vec<u8>,
        value: Value,
        basis: Supersedes<'_>,
        w: u8,
        timeout: Duration,
    ) {
        let local = match self.store.get(&key) {
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
    fn dispatch_put(&mut self, op: OpId, index: usize) {
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
    fn next_fallback(&self, walk: &[NodeId], n: usize, targets: &[PutTarget]) -> Option<NodeId> {
        walk.iter()
            .skip(n)
            .copied()
            .find(|&node| self.is_up(node) && !targets.iter().any(|t| t.node == node))
    }

    /// Answers the put once it has W acks; forgets it once every target has answered.
    fn check_put(&mut self, op: OpId) {
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
    fn replace_target(&mut self, op: OpId, index: usize) {
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

    /// `read_fanout = "quorum"`: the get's R replicas are slow; ask the others too.
    pub(super) fn on_read_speculate_timer(&mut self, op: OpId) {
        if let Some(Operation::Get(get)) = self.ops.get(&op)
            && !get.replied
        {
            self.widen_get(op, usize::MAX);
            self.check_get(op);
        }
    }

    pub(super) fn on_op_deadline(&mut self, op: OpId) {
        self.timers.cancel(Timer::Sloppy(op));
        self.timers.cancel(Timer::ReadSpeculate(op));
        match self.ops.remove(&op) {
            Some(Operation::Put(put)) if !put.replied => {
                self.stats.requests_failed += 1;
                let e = put.quorum_error();
                self.answer(put.reply_to, Err(e), Release::Now);
            }
            Some(Operation::Get(get)) => {
                if !get.replied {
                    self.stats.requests_failed += 1;
                    let e = get.quorum_error();
                    self.answer(get.reply_to, Err(e), Release::Now);
                }
                self.read_repair(&get);
            }
            Some(Operation::Forwarded { reply_to, target }) => {
                self.stats.requests_failed += 1;
                let e = RequestError::Quorum {
                    needed: 1,
                    acks: 0,
                    tried: vec![target],
                    failures: vec![(target, ReplicaFailure::TimedOut)],
                };
                self.answer(reply_to, Err(e), Release::Now);
            }
            // A put answered already (its replicas' late acks no longer matter), or an
            // operation answered and removed (answering cancels its deadline).
            Some(Operation::Put(_)) | None => {}
        }
    }

    pub(super) fn on_forward_reply(&mut self, op: OpId, result: ClientResult) {
        if let Some(Operation::Forwarded { reply_to, .. }) = self.ops.get(&op) {
            let reply_to = *reply_to;
            self.ops.remove(&op);
            self.timers.cancel(Timer::OpDeadline(op));
            self.answer(reply_to, result, Release::Now);
        } else {
            self.stats.messages_ignored += 1;
        }
    }

    fn start_get(&mut self, reply_to: ReplyTo, key: Vec<u8>, r: u8, timeout: Duration) {
        let n = usize::from(self.config.n);
        let targets: Vec<NodeId> = match self.ring.as_ref() {
            Some(ring) => {
                let walk: Vec<NodeId> = ring.walk(&key).collect();
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
        };
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

    /// Adds `target` to the get's targets and asks it: a `Read`, or the local store at once.
    fn ask_for_read(&mut self, op: OpId, get: &mut GetOp, target: NodeId) {
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
    fn widen_get(&mut self, op: OpId, count: usize) {
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
    fn check_get(&mut self, op: OpId) {
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
                answer = Some(Ok(ClientReply::Read(read_result(&get.merged()))));
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
            self.answer(reply_to, result, Release::Now);
        }
        if done && let Some(Operation::Get(get)) = self.ops.remove(&op) {
            self.timers.cancel(Timer::OpDeadline(op));
            self.timers.cancel(Timer::ReadSpeculate(op));
            self.read_repair(&get);
        }
    }

    /// Dynamo §4.5 read repair: every target that answered with a stale or missing set gets
    /// the merged one. Targets that did not answer are left to hints and anti-entropy.
    fn read_repair(&mut self, get: &GetOp) {
        if self.config.sabotaged(|s| s.no_read_repair) {
            return;
        }
        let merged = get.merged();
        if merged.is_empty() {
            return;
        }
        let digest = merged.digest();
        for (node, set) in &get.responses {
            let stale = set.as_ref().is_none_or(|s| s.digest() != digest);
            if !stale {
                continue;
            }
            self.stats.read_repairs += 1;
            if *node == self.id {
                // A failure here is repaired later by anti-entropy.
                let _ = self.merge_local(&get.key, &merged);
            } else {
                let item = KeyVersions {
                    key: get.key.clone(),
                    versions: merged.clone(),
                };
                self.send(*node, PeerMessage::Repair { item });
            }
        }
    }
}
