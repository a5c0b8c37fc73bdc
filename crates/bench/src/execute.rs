//! One planned operation as client requests: a read is a get; an insert (and a load) is a
//! blind put of a new key; an update is one overwrite (a put that supersedes what its
//! coordinator holds, `--update-mode overwrite`, the default), a get then a put with the get's
//! context (`rmw`) or a put with an empty context (`blind`); workload F's read-modify-write is always a get then a put with its
//! context (Dynamo §4.4: a write carries the context of the read it follows, so it supersedes
//! what was read instead of becoming a sibling of it).
//!
//! # Guarantees
//! - Every request sent is recorded (latency or error kind) in the worker's [`Recorder`]; the
//!   operation's own outcome is returned for the caller to time from the right start.
//! - A get-then-put whose get fails sends no put; the operation fails with the get's error.
//! - An insert's index is acknowledged to the [`InsertCounter`] when it ends, whatever its
//!   outcome, so workload D's readers move on.
//!
//! # Limits
//! - A read-modify-write does not retry when its put fails (e.g. `too_many_siblings`); the
//!   failure is counted.

use super::keys::{InsertCounter, key_name};
use super::options::{RequestKnobs, UpdateMode};
use super::recorder::{OpOutcome, Recorder, RequestKind};
use super::workload::{OpKind, PlannedOp};
use ringstore_client::{CallError, KvTarget};
use ringstore_core::NodeId;
use ringstore_core::request::{ClientReply, ClientRequest};
use ringstore_core::version::CausalContext;
use tokio::time::Instant;

/// What every operation of a phase shares: the target, the request knobs, how updates are
/// sent, and the insert counter.
#[derive(Clone, Debug)]
pub struct Executor<T> {
    /// Where requests go.
    pub target: T,
    /// R, W and the deadline of every request.
    pub knobs: RequestKnobs,
    /// How updates are sent.
    pub update_mode: UpdateMode,
    /// Acknowledges finished inserts (workload D).
    pub inserts: std::sync::Arc<InsertCounter>,
}

impl<T: KvTarget> Executor<T> {
    /// Sends `op`'s requests and returns how the operation ended.
    pub async fn execute(&self, op: &PlannedOp, recorder: &mut Recorder) -> OpOutcome {
        let key = key_name(op.record);
        let result = match op.kind {
            OpKind::Read => self
                .get(op.node, &key, recorder)
                .await
                .map(|(_, found)| found),
            OpKind::Insert | OpKind::Load => {
                let written = self
                    .put(op.node, &key, &op.value, CausalContext::empty(), recorder)
                    .await;
                if op.kind == OpKind::Insert {
                    self.inserts.ack(op.record);
                }
                written.map(|()| true)
            }
            OpKind::Update if self.update_mode == UpdateMode::Overwrite => self
                .write(
                    op.node,
                    ClientRequest::overwrite(key, op.value.as_slice()),
                    recorder,
                )
                .await
                .map(|()| true),
            OpKind::Update if self.update_mode == UpdateMode::Blind => self
                .put(op.node, &key, &op.value, CausalContext::empty(), recorder)
                .await
                .map(|()| true),
            OpKind::Update | OpKind::ReadModifyWrite => {
                match self.get(op.node, &key, recorder).await {
                    Ok((context, found)) => self
                        .put(op.node, &key, &op.value, context, recorder)
                        .await
                        .map(|()| found),
                    Err(error) => Err(error),
                }
            }
        };
        match result {
            Ok(found) => OpOutcome::Ok { not_found: !found },
            Err(error) => OpOutcome::Failed(error.kind()),
        }
    }

    /// A get: the context to write with, and whether a value was found.
    async fn get(
        &self,
        node: NodeId,
        key: &[u8],
        recorder: &mut Recorder,
    ) -> Result<(CausalContext, bool), CallError> {
        let mut request = ClientRequest::get(key);
        request.r = self.knobs.r;
        request.timeout_ms = self.knobs.timeout_ms;
        let sent = Instant::now();
        let answer = self.target.call(node, request).await;
        let latency = sent.elapsed();
        let result = match answer {
            Ok(ClientReply::Read(read)) => Ok((read.context, !read.values.is_empty())),
            Ok(_) => Err(CallError::MismatchedReply),
            Err(error) => Err(error),
        };
        match &result {
            Ok((_, found)) => {
                recorder.record_request(RequestKind::Get, latency, None);
                if !found {
                    recorder.record_request_not_found(RequestKind::Get);
                }
            }
            Err(error) => recorder.record_request(RequestKind::Get, latency, Some(error.kind())),
        }
        result
    }

    /// A put of `value` with `context`.
    async fn put(
        &self,
        node: NodeId,
        key: &[u8],
        value: &[u8],
        context: CausalContext,
        recorder: &mut Recorder,
    ) -> Result<(), CallError> {
        self.write(node, ClientRequest::put(key, value, context), recorder)
            .await
    }

    /// A put or overwrite, with the phase's W and deadline.
    async fn write(
        &self,
        node: NodeId,
        mut request: ClientRequest,
        recorder: &mut Recorder,
    ) -> Result<(), CallError> {
        request.w = self.knobs.w;
        request.timeout_ms = self.knobs.timeout_ms;
        let sent = Instant::now();
        let answer = self.target.call(node, request).await;
        let latency = sent.elapsed();
        let result = match answer {
            Ok(ClientReply::Written { .. }) => Ok(()),
            Ok(_) => Err(CallError::MismatchedReply),
            Err(error) => Err(error),
        };
        recorder.record_request(
            RequestKind::Put,
            latency,
            result.as_ref().err().map(CallError::kind),
        );
        result
    }
}
