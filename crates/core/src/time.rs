//! Time as the sans-IO core sees it: a point on a monotonic clock that the driver passes in.
//!
//! The core never reads a clock. The real runtime passes microseconds since the Unix epoch
//! (never going backwards: it keeps the maximum it passed), so that times the core stores, such
//! as a hint's creation time, keep their meaning across restarts; the simulator passes its
//! virtual time, skewed and drifted per node. Microseconds because the latency profiles of the quorum experiments
//! (PBS) have sub-millisecond legs.
//!
//! # Invariants
//! - `Time` is monotonic per node: a driver never passes a time earlier than one it passed.
//! - Arithmetic saturates: no overflow panic on any input.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Add;
use std::time::Duration;

/// A point in time, in microseconds since the driver's epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// The driver's epoch.
    pub const ZERO: Time = Time(0);

    /// A time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Time(ms.saturating_mul(1000))
    }

    /// A time `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Time(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1000
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;

    fn add(self, rhs: Duration) -> Time {
        let micros = u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Conversions agree and arithmetic saturates instead of panicking.
    #[test]
    fn conversions_and_saturation() {
        assert_eq!(Time::from_millis(3).as_micros(), 3000);
        assert_eq!(Time::from_micros(2500).as_millis(), 2);
        assert_eq!(Time(10).since(Time(20)), Duration::ZERO);
        assert_eq!(Time(u64::MAX) + Duration::from_secs(1), Time(u64::MAX));
        assert_eq!(
            Time::from_millis(1) + Duration::from_millis(2),
            Time::from_millis(3)
        );
    }
}
