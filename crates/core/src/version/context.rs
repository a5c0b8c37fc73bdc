//! The causal context: the version vector a read returns and a write passes back.
//!
//! A client treats the context as an opaque string. It encodes as
//! `base64url(format byte ‖ postcard(entries) ‖ checksum)` without padding, so it travels in an
//! HTTP header or a URL unchanged. The 32-bit checksum (the low half of xxh3 of what precedes
//! it) makes a mistyped or truncated context fail with [`ContextError::Checksum`] instead of
//! silently meaning something else.
//!
//! # Invariants
//! - Entries are sorted by actor, each actor at most once, every counter ≥ 1. Decoding rejects
//!   anything else ([`ContextError::NotCanonical`]), so one context has exactly one encoding.
//! - An encoded context is at most [`MAX_CONTEXT_ENCODED_LEN`] characters; longer input is
//!   refused before it is decoded.

use super::ActorId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// The longest encoded context accepted (characters). A context holds one entry per actor that
/// wrote the key: at most ~12 bytes each, so this allows a few hundred actors.
pub const MAX_CONTEXT_ENCODED_LEN: usize = 4096;

/// The format byte of the current encoding; a future format gets a new byte.
const FORMAT_V1: u8 = 1;
const CHECKSUM_LEN: usize = 4;

/// A version vector: for each actor, how many of its events the holder has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CausalContext {
    entries: Vec<(ActorId, u64)>,
}

/// Why a context string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The string is longer than [`MAX_CONTEXT_ENCODED_LEN`].
    #[error("context is {len} characters long; the limit is {max}")]
    TooLong {
        /// Length of the string given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The string is not unpadded URL-safe base64.
    #[error("context is not URL-safe base64: {0}")]
    Base64(String),
    /// The decoded bytes are too short to hold a format byte and a checksum.
    #[error("context is truncated")]
    Truncated,
    /// The checksum does not match: the context was altered or mistyped.
    #[error("context checksum mismatch: it was altered or mistyped")]
    Checksum,
    /// The format byte names an encoding this version does not know.
    #[error("context format {0} is not supported by this version")]
    UnknownFormat(u8),
    /// The payload does not decode as a list of (actor, counter) pairs.
    #[error("context payload is malformed")]
    Malformed,
    /// The entries are not sorted by actor, repeat an actor, or hold a zero counter.
    #[error("context entries are not canonical (unsorted, repeated actor, or zero counter)")]
    NotCanonical,
}

impl CausalContext {
    /// The empty context: a blind write, which supersedes nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a context from entries in any order; repeated actors keep their largest counter
    /// and zero counters are dropped.
    pub fn from_entries(entries: impl IntoIterator<Item = (ActorId, u64)>) -> Self {
        let mut entries: Vec<(ActorId, u64)> = entries.into_iter().filter(|e| e.1 > 0).collect();
        entries.sort();
        // After sorting, the last of a run of equal actors holds the largest counter.
        let mut canonical: Vec<(ActorId, u64)> = Vec::with_capacity(entries.len());
        for (actor, counter) in entries {
            match canonical.last_mut() {
                Some(last) if last.0 == actor => last.1 = counter,
                _ => canonical.push((actor, counter)),
            }
        }
        Self { entries: canonical }
    }

    /// The (actor, counter) entries, sorted by actor.
    pub fn entries(&self) -> &[(ActorId, u64)] {
        &self.entries
    }

    /// Whether the event `dot` is in this history (as [`VersionSet::knows`] for a set).
    ///
    /// [`VersionSet::knows`]: super::VersionSet::knows
    pub fn knows(&self, dot: super::Dot) -> bool {
        self.counter(dot.actor) >= dot.counter
    }

    /// How many events of `actor` this context has seen (0 when none).
    pub fn counter(&self, actor: ActorId) -> u64 {
        match self.entries.binary_search_by_key(&actor, |e| e.0) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Whether this context has seen no event at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether this context has seen every event `other` has seen.
    pub fn dominates(&self, other: &CausalContext) -> bool {
        other
            .entries
            .iter()
            .all(|&(actor, counter)| self.counter(actor) >= counter)
    }

    /// The least context that has seen everything either has (entry-wise maximum).
    pub fn join(&self, other: &CausalContext) -> CausalContext {
        Self::from_entries(self.entries.iter().chain(other.entries.iter()).copied())
    }

    /// The opaque, URL-safe string a client carries.
    pub fn encode(&self) -> String {
        let mut bytes = vec![FORMAT_V1];
        // Serialising a Vec of integer pairs into a Vec cannot fail.
        if let Ok(payload) = postcard::to_stdvec(&self.entries) {
            bytes.extend_from_slice(&payload);
        }
        let checksum = xxh3_64(&bytes) as u32;
        bytes.extend_from_slice(&checksum.to_le_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses a string made by [`CausalContext::encode`]; garbage is an error, never a panic.
    pub fn decode(text: &str) -> Result<Self, ContextError> {
        if text.len() > MAX_CONTEXT_ENCODED_LEN {
            return Err(ContextError::TooLong {
                len: text.len(),
                max: MAX_CONTEXT_ENCODED_LEN,
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|e| ContextError::Base64(e.to_string()))?;
        if bytes.len() < 1 + CHECKSUM_LEN {
            return Err(ContextError::Truncated);
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let mut checksum_bytes = [0u8; CHECKSUM_LEN];
        checksum_bytes.copy_from_slice(checksum);
        if u32::from_le_bytes(checksum_bytes) != xxh3_64(body) as u32 {
            return Err(ContextError::Checksum);
        }
        let (&format, payload) = body.split_first().ok_or(ContextError::Truncated)?;
        if format != FORMAT_V1 {
            return Err(ContextError::UnknownFormat(format));
        }
        let (entries, rest): (Vec<(ActorId, u64)>, &[u8]) =
            postcard::take_from_bytes(payload).map_err(|_| ContextError::Malformed)?;
        if !rest.is_empty() {
            return Err(ContextError::Malformed);
        }
        let canonical = entries.windows(2).all(|w| w[0].0 < w[1].0)
            && entries.iter().all(|&(_, counter)| counter > 0);
        if !canonical {
            return Err(ContextError::NotCanonical);
        }
        Ok(Self { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_context() -> impl Strategy<Value = CausalContext> {
        proptest::collection::vec((any::<u64>(), 0u64..1_000_000), 0..8)
            .prop_map(|v| CausalContext::from_entries(v.into_iter().map(|(a, c)| (ActorId(a), c))))
    }

    proptest! {
        // Every context survives an encode/decode round trip, and its string is URL-safe.
        #[test]
        fn encode_decode_round_trips(ctx in arb_context()) {
            let text = ctx.encode();
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(CausalContext::decode(&text), Ok(ctx));
        }

        // Arbitrary strings never panic the decoder; almost all are refused.
        #[test]
        fn garbage_is_an_error_not_a_panic(text in ".{0,200}") {
            let _ = CausalContext::decode(&text);
        }

        // Changing any one character of a valid context is detected.
        #[test]
        fn altered_contexts_are_refused(ctx in arb_context(), pos in any::<prop::sample::Index>(), c in "[A-Za-z0-9_-]") {
            let text = ctx.encode();
            let i = pos.index(text.len());
            let mut altered: Vec<char> = text.chars().collect();
            let replacement = c.chars().next().unwrap_or('A');
            prop_assume!(altered[i] != replacement);
            altered[i] = replacement;
            let altered: String = altered.into_iter().collect();
            prop_assert!(CausalContext::decode(&altered).is_err());
        }
    }

    // A compact context for the common case: three replicas' actors.
    #[test]
    fn a_three_actor_context_is_short() {
        let ctx = CausalContext::from_entries([
            (ActorId(u64::MAX), 1000),
            (ActorId(u64::MAX - 1), 20),
            (ActorId(1 << 63), 3),
        ]);
        let text = ctx.encode();
        assert!(text.len() <= 64, "{} characters: {text}", text.len());
    }

    // Well-formed encodings of non-canonical entries are refused, with the right error.
    #[test]
    fn non_canonical_entries_are_refused() {
        let encode_raw = |entries: Vec<(ActorId, u64)>| {
            let mut bytes = vec![FORMAT_V1];
            bytes.extend_from_slice(&postcard::to_stdvec(&entries).unwrap());
            let checksum = xxh3_64(&bytes) as u32;
            bytes.extend_from_slice(&checksum.to_le_bytes());
            URL_SAFE_NO_PAD.encode(bytes)
        };
        let unsorted = encode_raw(vec![(ActorId(2), 1), (ActorId(1), 1)]);
        assert_eq!(
            CausalContext::decode(&unsorted),
            Err(ContextError::NotCanonical)
        );
        let zero = encode_raw(vec![(ActorId(1), 0)]);
        assert_eq!(
            CausalContext::decode(&zero),
            Err(ContextError::NotCanonical)
        );
        assert_eq!(CausalContext::decode(""), Err(ContextError::Truncated));
        assert!(matches!(
            CausalContext::decode("%%%"),
            Err(ContextError::Base64(_))
        ));
        let long = "A".repeat(MAX_CONTEXT_ENCODED_LEN + 1);
        assert!(matches!(
            CausalContext::decode(&long),
            Err(ContextError::TooLong { .. })
        ));
    }

    // join is the entry-wise maximum and dominates both sides.
    #[test]
    fn join_dominates_both() {
        let a = CausalContext::from_entries([(ActorId(1), 3), (ActorId(2), 1)]);
        let b = CausalContext::from_entries([(ActorId(2), 5), (ActorId(3), 2)]);
        let j = a.join(&b);
        assert_eq!(j.counter(ActorId(1)), 3);
        assert_eq!(j.counter(ActorId(2)), 5);
        assert_eq!(j.counter(ActorId(3)), 2);
        assert!(j.dominates(&a) && j.dominates(&b));
        assert!(!a.dominates(&b));
    }
}
