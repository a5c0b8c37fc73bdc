//! Tokens: positions on the ring's 64-bit circle, the key hash that places a key on it, and
//! the half-open ranges of the circle that ownership, storage scans and Merkle trees speak of.
//!
//! # The key hash
//! A key's token is `xxh3_64(key)` with seed 0 (XXH3, as specified by the xxHash project and
//! frozen since xxHash 0.8.0). It is chosen because:
//! - it is *stable*: a specified algorithm with published test vectors, the same on every
//!   platform, endianness and release of the crate; a key written today lands on the same token
//!   in every future process (Rust's `DefaultHasher` makes no such promise);
//! - it is fast (several GB/s on short keys) and well distributed (passes SMHasher);
//! - the ring does not need cryptographic strength: keys are placed, not authenticated.
//!
//! A test pins the token of a few keys so that an accidental change of hash fails CI.
//!
//! # Invariants
//! - A [`TokenRange`] is `(start, end]` on the circle; it wraps past `u64::MAX` when
//!   `start >= end`, and `start == end` means the whole circle (Cassandra's convention).

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// A position on the ring: the 64-bit circle `0..=u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Token(pub u64);

/// The token of a key: where the key sits on the ring. Stable across processes and versions.
/// An item's key places by its table and partition key only (`item::key::placement_prefix`),
/// so that a partition's items share a preference list and a contiguous run of storage.
pub fn key_token(key: &[u8]) -> Token {
    Token(xxh3_64(crate::item::key::placement_prefix(key)))
}

/// A half-open arc `(start, end]` of the ring. `start == end` is the whole ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenRange {
    /// Exclusive start of the arc.
    pub start: Token,
    /// Inclusive end of the arc.
    pub end: Token,
}

impl TokenRange {
    /// The arc `(start, end]`.
    pub fn new(start: Token, end: Token) -> Self {
        Self { start, end }
    }

    /// The whole ring.
    pub fn full() -> Self {
        Self {
            start: Token(0),
            end: Token(0),
        }
    }

    /// Whether this arc is the whole ring.
    pub fn is_full(&self) -> bool {
        self.start == self.end
    }

    /// Whether `token` lies on this arc.
    pub fn contains(&self, token: Token) -> bool {
        let (s, e, t) = (self.start.0, self.end.0, token.0);
        match s.cmp(&e) {
            std::cmp::Ordering::Less => s < t && t <= e,
            std::cmp::Ordering::Greater => t > s || t <= e,
            std::cmp::Ordering::Equal => true,
        }
    }

    /// The number of tokens on this arc, as a fraction of the whole ring (in `(0, 1]`).
    pub fn fraction(&self) -> f64 {
        if self.is_full() {
            return 1.0;
        }
        let width = self.end.0.wrapping_sub(self.start.0);
        width as f64 / 2f64.powi(64)
    }

    /// The arc as at most two non-wrapping inclusive intervals `[lo, hi]`, in ring order, for
    /// scans of storage ordered by token.
    pub fn intervals(&self) -> Vec<(u64, u64)> {
        let (s, e) = (self.start.0, self.end.0);
        if s < e {
            vec![(s + 1, e)]
        } else if s == e {
            // The whole ring, starting just after `start`.
            if s == u64::MAX {
                vec![(0, u64::MAX)]
            } else {
                vec![(s + 1, u64::MAX), (0, s)]
            }
        } else {
            let mut v = Vec::with_capacity(2);
            if s < u64::MAX {
                v.push((s + 1, u64::MAX));
            }
            v.push((0, e));
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The hash must never change: a change would move every key to another node.
    #[test]
    fn key_token_is_pinned() {
        assert_eq!(key_token(b"").0, 0x2d06800538d394c2);
        assert_eq!(key_token(b"hello").0, 0x9555e8555c62dcfd);
    }

    #[test]
    fn ranges_contain_their_end_not_their_start() {
        let r = TokenRange::new(Token(10), Token(20));
        assert!(!r.contains(Token(10)));
        assert!(r.contains(Token(11)));
        assert!(r.contains(Token(20)));
        assert!(!r.contains(Token(21)));
        let w = TokenRange::new(Token(u64::MAX - 1), Token(5));
        assert!(w.contains(Token(u64::MAX)));
        assert!(w.contains(Token(0)));
        assert!(w.contains(Token(5)));
        assert!(!w.contains(Token(6)));
        assert!(!w.contains(Token(u64::MAX - 1)));
        assert!(TokenRange::full().contains(Token(12345)));
    }

    #[test]
    fn intervals_cover_exactly_the_arc() {
        for (s, e) in [
            (10u64, 20u64),
            (u64::MAX - 1, 5),
            (7, 7),
            (u64::MAX, 3),
            (3, u64::MAX),
        ] {
            let r = TokenRange::new(Token(s), Token(e));
            for t in [
                0u64,
                1,
                3,
                4,
                5,
                6,
                7,
                8,
                10,
                11,
                20,
                21,
                u64::MAX - 1,
                u64::MAX,
            ] {
                let in_intervals = r.intervals().iter().any(|&(lo, hi)| lo <= t && t <= hi);
                assert_eq!(
                    in_intervals,
                    r.contains(Token(t)),
                    "range {s}..{e} token {t}"
                );
            }
        }
    }
}
