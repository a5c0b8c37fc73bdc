//! The driver: the one task that owns the node core and feeds it.
//!
//! The sans-IO [`Node`] is driven by one task on the node's tokio runtime, beside the QUIC
//! and HTTP tasks that feed it. Everything else talks to it through one bounded channel of
//! [`DriverInput`]s ([`inbox`]), which they `try_send` into: a full channel means the node is
//! overloaded, and the sender answers 503 (a client) or drops the frame (a peer; the
//! protocol's timeouts, hints and anti-entropy recover it).
//!
//! Why a task and not a thread of its own: a message then reaches the core without waking
//! another thread (a futex and a context switch per hand-over, each way, were a tenth of the
//! CPU per operation on a 2-core host running three nodes). The core's work is CPU work on
//! memory (the store's memtable and journal buffer); the one blocking call, the fsync, runs
//! on the syncer thread. A batch holds its worker thread while it runs: with one I/O thread
//! the node's QUIC traffic waits for it, as it waited for the core before.
//!
//! The loop: wait for an input until the core's next deadline; take a bounded batch of the
//! inputs that are ready; step them; tick; take the core's `Ready`; route what may leave at
//! once (requests to replicas, reads, acks of writes an earlier sync covered); sync the store
//! once (group commit: one fsync per batch); route what waited for that sync (acks and
//! replies of this batch's writes). `Send`s go to the transport's per-peer queues and
//! `Reply`s to the waiting front ends (HTTP, native clients).
//!
//! # Guarantees
//! - The node is touched by the driver task only; there is no lock around it.
//! - At most [`MAX_BATCH_INPUTS`] inputs share one sync, so a reply waits for at most one
//!   batch's work before its fsync.
//! - Time passed to the core never goes backwards ([`WallClock`]).
//! - On [`DriverInput::Shutdown`] the loop drains its last outputs and closes the store
//!   (final sync) before it returns.
//!
//! # Known limits
//! - A status snapshot is built by the driver: a `/status` call costs the core a few
//!   microseconds (ring ownership is cached per ring).
//! - The input channel is bounded in inputs, not bytes: at worst `INBOX_CAPACITY` large
//!   messages (a value is at most 1 MiB; batches are bounded in count) wait in memory.

use super::status::{NodeStatus, StatusBuilder};
use super::transport::Transport;
use crate::durable_store::{DurableStore, JournalSyncer};
use ringstore_core::node::{AdminCommand, ClientId, Input, Node, Output, OutputGate, SyncTicket};
use ringstore_core::protocol::PeerMessage;
use ringstore_core::request::{ClientRequest, ClientResult};
use ringstore_core::store::StoreError;
use ringstore_core::{NodeId, Time};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// Capacity of the driver's input channel: past it, clients get 503 and peer frames drop.
pub const INBOX_CAPACITY: usize = 8192;

/// Most inputs stepped between two drains (and so covered by one fsync).
pub const MAX_BATCH_INPUTS: usize = 512;

/// Longest the loop sleeps without an input or a deadline (it then re-reads the membership
/// for new peer addresses).
pub const MAX_IDLE_WAIT: Duration = Duration::from_millis(500);

/// A batch taking longer than this is logged: every reply in it waited that long.
pub const SLOW_BATCH: Duration = Duration::from_millis(100);

/// How long shutdown waits for the sync in flight before syncing inline.
pub const SHUTDOWN_SYNC_WAIT: Duration = Duration::from_secs(5);

/// The way into the driver: every front end, the transport and the syncer hold one.
pub type InboxSender = mpsc::Sender<DriverInput>;

/// The driver's end of its inbox.
pub type InboxReceiver = mpsc::Receiver<DriverInput>;

/// A new driver inbox of [`INBOX_CAPACITY`] inputs.
pub fn inbox() -> (InboxSender, InboxReceiver) {
    mpsc::channel(INBOX_CAPACITY)
}

/// What the rest of the process sends the core.
pub enum DriverInput {
    /// A frame from a peer (its sender checked against its certificate by the transport).
    Peer {
        /// The sender.
        from: NodeId,
        /// The message.
        message: PeerMessage,
    },
    /// A client request and where to answer it.
    Client {
        /// The request.
        request: ClientRequest,
        /// Where the reply goes.
        reply: oneshot::Sender<ClientResult>,
    },
    /// An operator command.
    Admin(AdminCommand),
    /// A status snapshot request.
    Status(oneshot::Sender<NodeStatus>),
    /// The syncer thread finished a sync.
    Synced {
        /// The sync.
        ticket: SyncTicket,
        /// How it ended.
        result: Result<(), String>,
    },
    /// Stop: drain, sync, close the store.
    Shutdown,
}

/// The core's clock: microseconds since the Unix epoch, never going backwards.
#[derive(Default)]
pub struct WallClock {
    last: Time,
}

impl WallClock {
    /// The current time, or the last one returned if the system clock stepped back.
    pub fn now(&mut self) -> Time {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.last = self.last.max(Time::from_micros(micros));
        self.last
    }
}

/// The loop's state: the node and where its outputs go.
pub struct Driver {
    node: Node<DurableStore>,
    inbox: InboxReceiver,
    transport: Arc<Transport>,
    clock: WallClock,
    waiting: HashMap<ClientId, oneshot::Sender<ClientResult>>,
    next_client: u64,
    known_addrs: HashMap<NodeId, String>,
    status: StatusBuilder,
    /// Where syncs go: the syncer thread.
    syncer: std::sync::mpsc::Sender<SyncTicket>,
    /// What may leave when, and the sync under way (shared with the simulator).
    gate: OutputGate,
}

impl Driver {
    /// A driver for `node`, reading `inbox` (whose sender `reports` the syncer thread uses
    /// to report finished syncs), sending through `transport`. Starts the syncer thread.
    pub fn new(
        node: Node<DurableStore>,
        inbox: InboxReceiver,
        reports: InboxSender,
        transport: Arc<Transport>,
        clock: WallClock,
    ) -> Result<Self, std::io::Error> {
        let syncer = spawn_syncer(node.id(), node.store().journal_syncer(), reports)?;
        Ok(Self {
            node,
            inbox,
            transport,
            clock,
            waiting: HashMap::new(),
            next_client: 0,
            known_addrs: HashMap::new(),
            status: StatusBuilder::default(),
            syncer,
            gate: OutputGate::default(),
        })
    }

    /// Runs until [`DriverInput::Shutdown`] (or every sender is gone); returns the result of
    /// the final sync.
    pub async fn run(mut self) -> Result<(), StoreError> {
        let mut batch = Vec::with_capacity(MAX_BATCH_INPUTS);
        let mut stopping = false;
        let deadline = tokio::time::sleep(MAX_IDLE_WAIT);
        tokio::pin!(deadline);
        while !stopping {
            deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + self.wait());
            tokio::select! {
                biased;
                input = self.inbox.recv() => match input {
                    Some(input) => batch.push(input),
                    None => stopping = true,
                },
                () = &mut deadline => {}
            }
            while batch.len() < MAX_BATCH_INPUTS {
                match self.inbox.try_recv() {
                    Ok(input) => batch.push(input),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let inputs = batch.len();
            let now = self.clock.now();
            for input in batch.drain(..) {
                stopping |= self.feed(now, input);
            }
            let stepped = started.elapsed();
            self.node.tick(now);
            let ticked = started.elapsed();
            self.learn_addresses(); // before routing: a new peer's first frame needs its address
            let released = self.gate.after_inputs(&mut self.node);
            self.route(released.outputs);
            let routed = started.elapsed();
            if let Some(ticket) = released.begin_sync {
                self.hand_to_syncer(ticket);
            }
            let elapsed = started.elapsed();
            if elapsed > SLOW_BATCH {
                // Which phase: stepping inputs (store reads and writes), timers (anti-entropy,
                // handoff, hint replay), releasing and routing (which includes beginning the
                // sync: a buffered journal write, which the kernel may throttle when the disk
                // lags), or handing the ticket to the syncer.
                tracing::warn!(
                    ?elapsed,
                    inputs,
                    step = ?stepped,
                    tick = ?(ticked - stepped),
                    route = ?(routed - ticked),
                    sync_start = ?(elapsed - routed),
                    "slow batch"
                );
            }
        }
        self.finish_syncing().await;
        // Requests still waiting get no reply: their handlers answer 503.
        self.waiting.clear();
        self.node.into_store().close()
    }

    /// Hands the syncer the sync the gate began. Writes made while it runs wait for the next
    /// (group commit: the longer a sync takes, the more writes the next one covers).
    fn hand_to_syncer(&mut self, ticket: SyncTicket) {
        if self.syncer.send(ticket).is_err() {
            // The syncer thread is gone (it never exits before the driver): fail what waits
            // rather than hold it forever.
            let why = "the syncer thread stopped".to_string();
            self.gate.sync_ended(&mut self.node, ticket, Err(why));
            let failed = self.node.take_ready();
            self.route(failed);
        }
    }

    /// At shutdown: waits (bounded) for the sync in flight and releases what it covered, then
    /// syncs what is left inline. Inputs that arrive meanwhile are dropped (their senders see
    /// the node stopping).
    async fn finish_syncing(&mut self) {
        let deadline = Instant::now() + SHUTDOWN_SYNC_WAIT;
        while self.gate.in_flight().is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.inbox.recv()).await {
                Ok(Some(DriverInput::Synced { ticket, result })) => {
                    self.gate.sync_ended(&mut self.node, ticket, result);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.node.sync_store();
        let ready = self.node.take_ready();
        self.route(ready);
    }

    /// How long to wait for an input: until the core's next deadline, at most `MAX_IDLE_WAIT`.
    fn wait(&mut self) -> Duration {
        let now = self.clock.now();
        self.node
            .next_deadline()
            .map_or(MAX_IDLE_WAIT, |deadline| deadline.since(now))
            .min(MAX_IDLE_WAIT)
    }

    /// Feeds one input; returns whether it asks the loop to stop.
    fn feed(&mut self, now: Time, input: DriverInput) -> bool {
        match input {
            DriverInput::Peer { from, message } => {
                trace_message("recv", self.node.id(), from, &message);
                self.node.step(now, Input::Peer { from, message });
            }
            DriverInput::Client { request, reply } => {
                self.next_client += 1;
                let id = ClientId(self.next_client);
                self.waiting.insert(id, reply);
                self.node.step(now, Input::Client { id, request });
            }
            DriverInput::Admin(command) => self.node.step(now, Input::Admin(command)),
            DriverInput::Synced { ticket, result } => {
                if let Err(error) = &result {
                    tracing::error!(%error, "journal sync failed: the store is poisoned");
                }
                self.gate.sync_ended(&mut self.node, ticket, result);
            }
            DriverInput::Status(reply) => {
                // The handler may have gone away; nothing to do then.
                let _ = reply.send(self.status.build(&self.node));
            }
            DriverInput::Shutdown => return true,
        }
        false
    }

    /// Sends each output where it goes.
    fn route(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    trace_message("send", self.node.id(), to, &message);
                    self.transport.send(to, message)
                }
                Output::Reply { id, result } => {
                    if let Some(reply) = self.waiting.remove(&id) {
                        // The client may have disconnected; its answer is moot then.
                        let _ = reply.send(result);
                    }
                }
            }
        }
    }

    /// Hands the transport any peer address the membership table learned or changed.
    fn learn_addresses(&mut self) {
        let own = self.node.id();
        for member in self.node.members().entries() {
            if member.node == own || self.known_addrs.get(&member.node) == Some(&member.addr) {
                continue;
            }
            match member.addr.parse::<SocketAddr>() {
                Ok(addr) => self.transport.set_address(member.node, addr),
                Err(_) => tracing::warn!(
                    peer = %member.node,
                    addr = %member.addr,
                    "gossiped peer address is not IP:port; ignored"
                ),
            }
            self.known_addrs.insert(member.node, member.addr.clone());
        }
    }
}

/// Starts the syncer thread: it fsyncs the journal for each ticket it gets and reports the
/// result to the driver's inbox. It ends when the driver drops its ticket channel.
fn spawn_syncer(
    node: NodeId,
    mut journal: JournalSyncer,
    reports: InboxSender,
) -> Result<std::sync::mpsc::Sender<SyncTicket>, std::io::Error> {
    let (tickets, rx) = std::sync::mpsc::channel::<SyncTicket>();
    std::thread::Builder::new()
        .name(format!("ringstore-sync-{}", node.0))
        .spawn(move || {
            while let Ok(ticket) = rx.recv() {
                let result = journal.sync().map_err(|e| e.to_string());
                // A blocking send: the driver keeps draining its inbox, so this waits at most
                // one batch. It fails only once the driver is gone.
                if reports
                    .blocking_send(DriverInput::Synced { ticket, result })
                    .is_err()
                {
                    return;
                }
            }
        })?;
    Ok(tickets)
}

/// Logs a message at trace level (`RUST_LOG=ringstore::runtime::driver=trace`), cut to its
/// first characters: enough to follow an operation between nodes.
fn trace_message(direction: &str, node: NodeId, peer: NodeId, message: &PeerMessage) {
    const SHOWN_CHARS: usize = 70;
    if tracing::enabled!(tracing::Level::TRACE) {
        let text = format!("{message:?}");
        let shown: String = text.chars().take(SHOWN_CHARS).collect();
        tracing::trace!(%node, %peer, message = %shown, "{direction}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The clock never goes backwards and is Unix-epoch based.
    #[test]
    fn wall_clock_is_monotonic_and_epoch_based() {
        let mut clock = WallClock {
            last: Time::from_micros(u64::MAX - 1),
        };
        assert_eq!(clock.now(), Time::from_micros(u64::MAX - 1));
        let mut fresh = WallClock::default();
        let a = fresh.now();
        let b = fresh.now();
        assert!(b >= a);
        // After 2020-01-01 in microseconds.
        assert!(a.as_micros() > 1_577_836_800_000_000);
    }
}
