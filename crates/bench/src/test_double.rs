//! An in-memory [`KvTarget`] for the bench's tests: one shared map of keys, with injectable
//! per-call delays (tokio time, so paused-clock tests never sleep for real), injected errors,
//! and a visibility lag (a write is seen by reads only some time after it was acknowledged).
//!
//! Versions follow a one-actor emulation of the store's semantics: a put with a context drops
//! the versions that context covers and adds one; a blind put adds a sibling; past
//! `MAX_SIBLINGS` a put fails with `too_many_siblings`.
//!
//! # Limits
//! - One counter for the whole key stands in for a dotted version vector: enough for the bench
//!   (contexts supersede what they saw, blind writes make siblings), not a model of the store.

use ringstore_client::{CallError, KvTarget};
use ringstore_core::NodeId;
use ringstore_core::request::{ClientOp, ClientReply, ClientRequest, ReadResult, RequestError};
use ringstore_core::version::{ActorId, CausalContext, Dot, MAX_SIBLINGS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The one actor the double stamps versions with.
const ACTOR: ActorId = ActorId(1);

/// Decides the delay of call number `n` (0-based).
pub type DelayFn = Arc<dyn Fn(u64, &ClientRequest) -> Duration + Send + Sync>;
/// Decides whether call number `n` to `node` fails, and how.
pub type FailFn = Arc<dyn Fn(u64, NodeId, &ClientRequest) -> Option<CallError> + Send + Sync>;

/// One request as the double saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenCall {
    /// The node it was addressed to.
    pub node: NodeId,
    /// Its key.
    pub key: Vec<u8>,
    /// Whether it was a get.
    pub is_get: bool,
    /// R and W it carried.
    pub r: Option<u8>,
    /// W it carried.
    pub w: Option<u8>,
}

#[derive(Clone, Debug)]
struct Snapshot {
    at: Instant,
    versions: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct KeyState {
    counter: u64,
    history: Vec<Snapshot>,
}

/// The test double.
#[derive(Clone)]
pub struct MemoryTarget {
    nodes: Vec<NodeId>,
    keys: Arc<Mutex<HashMap<Vec<u8>, KeyState>>>,
    calls: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<SeenCall>>>,
    delay: Option<DelayFn>,
    fail: Option<FailFn>,
    visibility_lag: Duration,
}

impl MemoryTarget {
    /// A double with nodes `1..=nodes`, no delays, no errors.
    pub fn new(nodes: u64) -> Self {
        Self {
            nodes: (1..=nodes).map(NodeId).collect(),
            keys: Arc::default(),
            calls: Arc::default(),
            seen: Arc::default(),
            delay: None,
            fail: None,
            visibility_lag: Duration::ZERO,
        }
    }

    /// Every call waits `delay(n, request)` (tokio time) before it is answered.
    pub fn with_delay(
        mut self,
        delay: impl Fn(u64, &ClientRequest) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.delay = Some(Arc::new(delay));
        self
    }

    /// Call `n` to `node` fails with `fail(n, node, request)` when that is `Some`.
    pub fn with_failures(
        mut self,
        fail: impl Fn(u64, NodeId, &ClientRequest) -> Option<CallError> + Send + Sync + 'static,
    ) -> Self {
        self.fail = Some(Arc::new(fail));
        self
    }

    /// A write becomes visible to reads only `lag` after it was applied.
    pub fn with_visibility_lag(mut self, lag: Duration) -> Self {
        self.visibility_lag = lag;
        self
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<SeenCall> {
        self.seen.lock().unwrap().clone()
    }

    /// The current (newest) values of `key`.
    pub fn values(&self, key: &[u8]) -> Vec<Vec<u8>> {
        let keys = self.keys.lock().unwrap();
        keys.get(key)
            .and_then(|state| state.history.last())
            .map(|snapshot| snapshot.versions.iter().map(|(_, v)| v.clone()).collect())
            .unwrap_or_default()
    }

    fn answer(&self, request: &ClientRequest) -> Result<ClientReply, CallError> {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap();
        match &request.op {
            ClientOp::Get { key } => {
                let visible = keys.get(key).and_then(|state| {
                    state
                        .history
                        .iter()
                        .rev()
                        .find(|snapshot| snapshot.at + self.visibility_lag <= now)
                });
                let (values, context) = match visible {
                    Some(snapshot) => {
                        let newest = snapshot.versions.iter().map(|(c, _)| *c).max().unwrap_or(0);
                        (
                            snapshot.versions.iter().map(|(_, v)| v.clone()).collect(),
                            CausalContext::from_entries([(ACTOR, newest)]),
                        )
                    }
                    None => (Vec::new(), CausalContext::empty()),
                };
                Ok(ClientReply::Read(ReadResult {
                    values,
                    context,
                    has_tombstones: false,
                }))
            }
            // The double models the key-value API only.
            ClientOp::Item(_)
            | ClientOp::Table(_)
            | ClientOp::Query(_)
            | ClientOp::Batch(_)
            | ClientOp::Scan(_) => Err(CallError::MismatchedReply),
            ClientOp::Put { .. } | ClientOp::Overwrite { .. } | ClientOp::Delete { .. } => {
                // An overwrite supersedes everything the double holds (its one "replica").
                let (key, value, seen_up_to) = match &request.op {
                    ClientOp::Put {
                        key,
                        value,
                        context,
                    } => (key, Some(value), Some(context.counter(ACTOR))),
                    ClientOp::Overwrite { key, value } => (key, Some(value), None),
                    ClientOp::Delete { key, context } => (key, None, Some(context.counter(ACTOR))),
                    ClientOp::Get { .. }
                    | ClientOp::Item(_)
                    | ClientOp::Table(_)
                    | ClientOp::Query(_)
                    | ClientOp::Batch(_)
                    | ClientOp::Scan(_) => {
                        return Err(CallError::MismatchedReply);
                    }
                };
                let state = keys.entry(key.clone()).or_default();
                let seen_up_to = seen_up_to.unwrap_or(state.counter);
                let mut versions: Vec<(u64, Vec<u8>)> = state
                    .history
                    .last()
                    .map(|s| s.versions.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(counter, _)| *counter > seen_up_to)
                    .collect();
                if versions.len() + 1 > MAX_SIBLINGS {
                    return Err(CallError::Request(RequestError::TooManySiblings {
                        count: versions.len() + 1,
                        max: MAX_SIBLINGS,
                    }));
                }
                state.counter += 1;
                let counter = state.counter;
                if let Some(value) = value {
                    versions.push((counter, value.clone()));
                }
                state.history.push(Snapshot { at: now, versions });
                // Keep the newest snapshot old enough to be visible, and every newer one.
                let lag = self.visibility_lag;
                if let Some(keep_from) = state
                    .history
                    .iter()
                    .rposition(|snapshot| snapshot.at + lag <= now)
                {
                    state.history.drain(..keep_from);
                }
                Ok(ClientReply::Written {
                    context: CausalContext::from_entries([(ACTOR, counter)]),
                    version: Dot {
                        actor: ACTOR,
                        counter,
                    },
                })
            }
        }
    }
}

impl KvTarget for MemoryTarget {
    fn nodes(&self) -> Vec<NodeId> {
        self.nodes.clone()
    }

    async fn call(&self, node: NodeId, request: ClientRequest) -> Result<ClientReply, CallError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        self.seen.lock().unwrap().push(SeenCall {
            node,
            key: request.op.key().map(|k| k.to_vec()).unwrap_or_default(),
            is_get: matches!(request.op, ClientOp::Get { .. }),
            r: request.r,
            w: request.w,
        });
        if let Some(delay) = &self.delay {
            let wait = delay(n, &request);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        if !self.nodes.contains(&node) {
            return Err(CallError::UnknownNode { node });
        }
        if let Some(fail) = &self.fail
            && let Some(error) = fail(n, node, &request)
        {
            return Err(error);
        }
        self.answer(&request)
    }
}
