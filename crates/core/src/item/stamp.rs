//! Write stamps: the hybrid logical clock that orders item writes, as Cassandra orders cells by
//! timestamp, so that concurrent versions of an item resolve to one item on every node.
//!
//! A coordinator stamps each item write from the `now` its driver passes (microseconds since
//! the Unix epoch in the runtime, skewed virtual time in the simulator) and its actor id. The
//! clock never goes backwards and moves past every stamp it has seen (Kulkarni et al., "Logical
//! Physical Clocks", 2014): a read-modify-write therefore stamps later than what it read even
//! when the coordinator's clock is behind the writer it read from.
//!
//! # Invariants
//! - Stamps are compared as whole values: (time, logical, actor). Two writes never share a
//!   stamp: one clock never issues a stamp twice (checked), and stamps of different actors
//!   differ in the actor (a node draws a new actor at each epoch, its clock goes on).
//! - [`HybridClock::stamp`] returns a stamp greater than every stamp issued or observed before.

use crate::Time;
use crate::version::ActorId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// When an item write happened, as far as conflict resolution is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Microseconds since the Unix epoch (the physical part).
    pub micros: u64,
    /// Counts stamps within one microsecond, or past a clock that ran ahead of this one.
    pub logical: u32,
    /// The coordinator's actor: the tie-break between clocks.
    pub actor: ActorId,
}

impl Stamp {
    /// The smallest stamp: older than every write.
    pub const ZERO: Stamp = Stamp {
        micros: 0,
        logical: 0,
        actor: ActorId(0),
    };
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@{}", self.micros, self.logical, self.actor)
    }
}

/// One coordinator's hybrid logical clock (one per node, across its actors' epochs).
#[derive(Clone, Debug, Default)]
pub struct HybridClock {
    /// The greatest (time, logical) issued or observed.
    last: (u64, u32),
}

impl HybridClock {
    /// A clock that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock past a stamp seen in data (a read's versions), so the next stamp is later.
    pub fn observe(&mut self, stamp: Stamp) {
        self.last = self.last.max((stamp.micros, stamp.logical));
    }

    /// A new stamp at `now` for a write coordinated by `actor`, later than every stamp issued or
    /// observed.
    pub fn stamp(&mut self, now: Time, actor: ActorId) -> Stamp {
        let physical = now.as_micros();
        let next = if physical > self.last.0 {
            (physical, 0)
        } else if let Some(logical) = self.last.1.checked_add(1) {
            // The clock is behind what it has seen: count on from there.
            (self.last.0, logical)
        } else if let Some(micros) = self.last.0.checked_add(1) {
            (micros, 0)
        } else {
            // Only a stamp at the end of time (from corrupt data) gets here; stay there.
            self.last
        };
        invariant!(
            next > self.last || next == (u64::MAX, u32::MAX),
            "the clock went back"
        );
        self.last = next;
        Stamp {
            micros: next.0,
            logical: next.1,
            actor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_even_when_time_stands_still_or_goes_back() {
        let mut clock = HybridClock::new();
        let a = clock.stamp(Time(100), ActorId(1));
        let b = clock.stamp(Time(100), ActorId(1));
        let c = clock.stamp(Time(50), ActorId(1));
        let d = clock.stamp(Time(200), ActorId(1));
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!(d.logical, 0);
    }

    #[test]
    fn a_clock_behind_stamps_after_what_it_observed() {
        let mut ahead = HybridClock::new();
        let mut behind = HybridClock::new();
        let seen = ahead.stamp(Time(1_000_000), ActorId(1));
        behind.observe(seen);
        let next = behind.stamp(Time(10), ActorId(2));
        assert!(next > seen, "{next} {seen}");
    }

    #[test]
    fn equal_times_are_ordered_by_actor() {
        let a = HybridClock::new().stamp(Time(5), ActorId(1));
        let b = HybridClock::new().stamp(Time(5), ActorId(2));
        assert!(a < b);
        assert_ne!(a, b);
    }
}
