//! The output gate: the one rule by which a driver lets a node's outputs leave and runs its
//! syncs. The runtime's driver and the simulator both use it, so the durability path the
//! simulator tests is the one real nodes take (raft-rs's `Ready`, with group commit).
//!
//! After each batch of inputs the driver calls [`OutputGate::after_inputs`]: it takes what
//! may leave at once ([`Node::take_ready`]: requests to replicas, reads, acks an earlier sync
//! covered) and, when no sync is under way and writes wait for one, begins one
//! ([`Node::begin_external_sync`]) and hands its [`SyncTicket`] to the driver. The driver
//! performs the sync wherever it likes, for as long as it takes (the runtime on its syncer
//! thread, the simulator after a simulated fsync latency), and reports it with
//! [`OutputGate::sync_ended`]; its next `after_inputs` releases what the sync covered and
//! begins the next sync for the writes made meanwhile. So writes arriving while an fsync runs
//! share the next one (group commit), and the core never waits for the disk.
//!
//! # Invariants
//! - At most one sync is under way per node; `sync_ended` reports the one under way.
//! - An output that claims durability leaves only through `take_ready` once a sync begun
//!   after its writes has ended well (the node checks this as it releases outputs).

use super::{Node, Output, SyncTicket};
use crate::store::Store;

/// What may leave after a batch, and the sync the driver is to perform, if any.
#[derive(Debug)]
pub struct Released {
    /// Outputs to route now, in order.
    pub outputs: Vec<Output>,
    /// A sync to run now (its end goes to [`OutputGate::sync_ended`]).
    pub begin_sync: Option<SyncTicket>,
}

/// One node's sync state, as its driver keeps it.
#[derive(Debug, Default)]
pub struct OutputGate {
    in_flight: Option<SyncTicket>,
}

impl OutputGate {
    /// After the driver stepped a batch of inputs (and ticked): what may leave, and a sync
    /// to begin when none is under way and writes wait.
    pub fn after_inputs<S: Store>(&mut self, node: &mut Node<S>) -> Released {
        let mut outputs = node.take_ready();
        let mut begin_sync = None;
        if self.in_flight.is_none() {
            match node.begin_external_sync() {
                Some(ticket) => {
                    self.in_flight = Some(ticket);
                    begin_sync = Some(ticket);
                }
                // Nothing to sync, or preparing failed: what waited on it is now failures.
                None => outputs.extend(node.take_ready()),
            }
        }
        Released {
            outputs,
            begin_sync,
        }
    }

    /// The sync of `ticket` ended with `result`; the next [`OutputGate::after_inputs`]
    /// releases what it covered (or the failures it turned them into).
    pub fn sync_ended<S: Store>(
        &mut self,
        node: &mut Node<S>,
        ticket: SyncTicket,
        result: Result<(), String>,
    ) {
        invariant!(
            self.in_flight == Some(ticket),
            "sync {ticket:?} ended while {:?} was the one under way",
            self.in_flight
        );
        node.complete_sync(ticket, result);
        self.in_flight = None;
    }

    /// The sync under way, if any.
    pub fn in_flight(&self) -> Option<SyncTicket> {
        self.in_flight
    }
}
