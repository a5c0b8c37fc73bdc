//! The node's own timers: a deterministic queue of deadlines the driver never sees one by one.
//!
//! As in quinn-proto, the core reports only its earliest deadline
//! ([`crate::node::Node::next_deadline`]); the driver sleeps until then and calls
//! [`crate::node::Node::tick`]. Timers that fire at the same instant fire in the order they
//! were set, so a run is a function of its inputs.
//!
//! # Invariants
//! - Each periodic [`Timer`] is queued at most once (re-arming replaces it).
//! - The queue holds at most one deadline and one sloppy (put) or speculation (get) timer per
//!   operation in flight.

use crate::Time;
use crate::protocol::OpId;
use std::collections::{BTreeMap, BTreeSet};

/// Something the node must do at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// A client operation's deadline (a put, a get, a forwarded request): fail it, or finish
    /// it with what arrived.
    OpDeadline(OpId),
    /// A batch of hints sent to their owner was not acknowledged in time: forget the batch
    /// (its hints stay stored and go again at the next replay).
    HintBatchDeadline(OpId),
    /// An anti-entropy exchange this node started went silent: end it.
    AntiEntropyDeadline(OpId),
    /// A range-handoff batch was not acknowledged in time: finish the batch (unacknowledged
    /// keys are kept and offered again).
    HandoffBatchDeadline(OpId),
    /// A tombstone check's answers did not all arrive: drop the check (nothing is collected).
    TombstoneCheckDeadline(OpId),
    /// A put's replicas have not all answered: send to fallbacks with hints.
    Sloppy(OpId),
    /// A get's R replicas (`read_fanout = "quorum"`) have not all answered: ask the others.
    ReadSpeculate(OpId),
    /// Gossip round: bump the heartbeat, exchange membership with a random peer.
    Gossip,
    /// Try to deliver stored hints to their owners.
    HintReplay,
    /// Start an anti-entropy exchange with the next peer.
    AntiEntropy,
    /// Push keys this node no longer replicates to their replicas.
    Handoff,
    /// Look for tombstones that may be collected.
    TombstoneGc,
    /// The anti-entropy trees are stale: rebuild one more page of them.
    TreeRebuild,
}

impl Timer {
    /// The operation a deadline timer ends, if this is one (one per operation: see
    /// [`TimerQueue::set`]).
    fn deadline_of(self) -> Option<OpId> {
        match self {
            Timer::OpDeadline(op)
            | Timer::HintBatchDeadline(op)
            | Timer::AntiEntropyDeadline(op)
            | Timer::HandoffBatchDeadline(op)
            | Timer::TombstoneCheckDeadline(op) => Some(op),
            _ => None,
        }
    }

    /// Every deadline timer `op` could have.
    fn deadlines(op: OpId) -> [Timer; 5] {
        [
            Timer::OpDeadline(op),
            Timer::HintBatchDeadline(op),
            Timer::AntiEntropyDeadline(op),
            Timer::HandoffBatchDeadline(op),
            Timer::TombstoneCheckDeadline(op),
        ]
    }
}

/// A deterministic timer queue.
#[derive(Debug, Default)]
pub struct TimerQueue {
    by_time: BTreeSet<(Time, u64, Timer)>,
    scheduled: BTreeMap<Timer, (Time, u64)>,
    next_seq: u64,
}

impl TimerQueue {
    /// Sets `timer` to fire at `at`, replacing an earlier setting of the same timer.
    pub fn set(&mut self, timer: Timer, at: Time) {
        self.cancel(timer);
        if let Some(op) = timer.deadline_of() {
            invariant!(
                Timer::deadlines(op)
                    .iter()
                    .all(|&other| !self.is_set(other)),
                "{timer:?} set while {op:?} already has another deadline"
            );
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_time.insert((at, seq, timer));
        self.scheduled.insert(timer, (at, seq));
    }

    /// Whether `timer` is set.
    pub fn is_set(&self, timer: Timer) -> bool {
        self.scheduled.contains_key(&timer)
    }

    /// Removes `timer` if it is set.
    pub fn cancel(&mut self, timer: Timer) {
        if let Some((at, seq)) = self.scheduled.remove(&timer) {
            self.by_time.remove(&(at, seq, timer));
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Time> {
        self.by_time.first().map(|&(at, _, _)| at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<Timer> {
        let &(at, seq, timer) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, seq, timer));
        self.scheduled.remove(&timer);
        Some(timer)
    }

    /// How many timers are set.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Whether no timer is set.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Timers fire in time order, ties in the order set, and re-arming replaces.
    #[test]
    fn order_ties_and_rearming() {
        let mut q = TimerQueue::default();
        q.set(Timer::Gossip, Time(10));
        q.set(Timer::HintReplay, Time(5));
        q.set(Timer::AntiEntropy, Time(10));
        q.set(Timer::Gossip, Time(20));
        assert_eq!(q.len(), 3);
        assert_eq!(q.next_deadline(), Some(Time(5)));
        assert_eq!(q.pop_due(Time(4)), None);
        assert_eq!(q.pop_due(Time(30)), Some(Timer::HintReplay));
        assert_eq!(q.pop_due(Time(30)), Some(Timer::AntiEntropy));
        assert_eq!(q.pop_due(Time(30)), Some(Timer::Gossip));
        assert!(q.is_empty());
        q.set(Timer::OpDeadline(OpId(1)), Time(1));
        q.cancel(Timer::OpDeadline(OpId(1)));
        assert_eq!(q.pop_due(Time(100)), None);
    }

    // One deadline per operation: a second kind of deadline for the same operation is a bug
    // (two mechanisms think they own it), caught in debug builds.
    #[test]
    #[should_panic(expected = "already has another deadline")]
    fn a_second_deadline_for_one_operation_is_refused() {
        let mut q = TimerQueue::default();
        q.set(Timer::OpDeadline(OpId(7)), Time(1));
        q.set(Timer::Sloppy(OpId(7)), Time(1));
        q.set(Timer::HintBatchDeadline(OpId(7)), Time(2));
    }
}
