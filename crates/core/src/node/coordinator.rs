//! Coordination of client requests: validation, forwarding, answering, and the deadline of
//! every client-facing operation. The put path is [`sloppy_quorum`](super::sloppy_quorum),
//! the get path [`quorum_read`](super::quorum_read), the repair after a get
//! [`read_repair`](super::read_repair).
//!
//! # Dynamo §4.5, as ringstore does it
//! - **Any node accepts a request.** A node outside the key's preference list forwards it to the
//!   first node of the list it judges up, and relays the answer. A forwarded request is never
//!   forwarded again (rings may briefly disagree; the receiver coordinates).
//! - **Failure.** A request that cannot reach its quorum in time fails with
//!   [`RequestError::Quorum`], naming the quorum, the acknowledgements, every node tried and how
//!   each failed.
//!
//! # Invariants
//! - An operation answers its client exactly once (checked: `Node::reply_client`).
//! - R and W lie in `1..=N` once a request passed validation (checked).

use super::batch::BatchOp;
use super::items::ItemOp;
use super::query::QueryOp;
use super::quorum_read::GetOp;
use super::scan::ScanOp;
use super::sloppy_quorum::PutOp;
use super::{ClientId, Node, Release, Timer};
use crate::NodeId;
use crate::item::key::ITEM_KEY_TAG;
use crate::protocol::{OpId, PeerMessage};
use crate::request::{ClientOp, ClientRequest, ClientResult, ReplicaFailure, RequestError};
use crate::store::Store;
use crate::version::{CausalContext, Value};
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
    /// An item operation of this node (`items`), whose read or write this is.
    Item(OpId),
    /// One operation of a batch this node took (`batch`).
    Batch {
        /// The batch.
        op: OpId,
        /// The operation's place in it.
        index: u32,
    },
}

/// What a put's new version supersedes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Supersedes<'a> {
    /// What the client's context saw (a put or delete after a read).
    Context(&'a CausalContext),
    /// Every version in the coordinator's own copy ([`ClientOp::Overwrite`]).
    LocalCopy,
}

/// A client-facing operation in flight.
pub(super) enum Operation {
    Put(PutOp),
    Get(GetOp),
    Item(Box<ItemOp>),
    Query(Box<QueryOp>),
    Batch(Box<BatchOp>),
    Scan(Box<ScanOp>),
    Forwarded { reply_to: ReplyTo, target: NodeId },
}

impl<S: Store> Node<S> {
    pub(super) fn on_client_request(&mut self, reply_to: ReplyTo, request: ClientRequest) {
        let mut request = request;
        if let ClientOp::Table(table) = request.op {
            self.on_table_request(reply_to, table);
            return;
        }
        if let ClientOp::Batch(_) = &request.op {
            self.start_batch(reply_to, request);
            return;
        }
        if let ClientOp::Scan(_) = &request.op {
            self.start_scan(reply_to, request);
            return;
        }
        let table = match &request.op {
            ClientOp::Item(item) => Some(item.key.table),
            ClientOp::Query(query) => Some(query.table_id),
            _ => None,
        };
        if let Some(table) = table {
            // The table's own quorums, unless the request names its own.
            let (r, w) = self.table_quorums(table);
            request.r = request.r.or(r);
            request.w = request.w.or(w);
        }
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
        let Some(key) = request.op.key() else {
            return;
        };
        let preference = ring.preference_list(&key, n);
        let timeout = request
            .timeout_ms
            .map_or(self.config.request_timeout, Duration::from_millis);
        // Dynamo §4.5: a node outside the preference list forwards to the first one up.
        // A forwarded request is coordinated here, never forwarded again.
        let may_forward = matches!(reply_to, ReplyTo::Client(_) | ReplyTo::Batch { .. });
        if !preference.contains(self.id) && may_forward {
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
            ClientOp::Get { key } => self.start_get(reply_to, key, r, false, timeout),
            ClientOp::Item(item) => self.start_item(reply_to, *item, r, w, timeout),
            ClientOp::Query(query) => self.start_query(reply_to, *query, r, timeout),
            // Answered at the top.
            ClientOp::Table(_) | ClientOp::Batch(_) | ClientOp::Scan(_) => {}
            ClientOp::Put {
                key,
                value,
                context,
            } => {
                let basis = Supersedes::Context(&context);
                self.start_put(reply_to, key, Value::Data(value), basis, w, timeout, None);
            }
            ClientOp::Overwrite { key, value } => {
                let basis = Supersedes::LocalCopy;
                self.start_put(reply_to, key, Value::Data(value), basis, w, timeout, None);
            }
            ClientOp::Delete { key, context } => {
                let basis = Supersedes::Context(&context);
                self.start_put(reply_to, key, Value::Tombstone, basis, w, timeout, None);
            }
        }
    }

    pub(super) fn validate_request(&self, request: &ClientRequest) -> Result<(), RequestError> {
        // Table operations are answered before validation; they have no key.
        let Some(key) = request.op.key() else {
            return Ok(());
        };
        match &request.op {
            ClientOp::Item(item) => {
                super::items::validate(item)?;
                self.check_item_table(&item.table, item.key.table)?;
            }
            ClientOp::Query(query) => {
                super::items::validate_query(query)?;
                self.check_item_table(&query.table, query.table_id)?;
            }
            // Item keys start with the tag byte; a key-value key may not pose as one.
            _ if key.first() == Some(&ITEM_KEY_TAG) => return Err(RequestError::ReservedKey),
            _ => {}
        }
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
    pub(super) fn answer(&mut self, reply_to: ReplyTo, result: ClientResult, release: Release) {
        match reply_to {
            ReplyTo::Client(id) => self.reply_client(id, result, release),
            ReplyTo::Peer { node, op } => {
                let message = PeerMessage::ForwardReply { op, result };
                self.send_when(node, message, release);
            }
            ReplyTo::Item(op) => self.on_item_written(op, result, release),
            ReplyTo::Batch { op, index } => self.on_batch_answer(op, index, result, release),
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
            Some(Operation::Item(item)) => self.on_item_deadline(*item),
            Some(Operation::Query(query)) => self.on_query_deadline(*query),
            Some(Operation::Scan(scan)) => self.on_scan_deadline(*scan),
            // A batch has no deadline of its own (each of its operations has one); keep it.
            Some(Operation::Batch(batch)) => {
                self.ops.insert(op, Operation::Batch(batch));
            }
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
}
