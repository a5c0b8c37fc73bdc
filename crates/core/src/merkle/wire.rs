//! Compact wire forms for the anti-entropy messages: index lists as varint deltas, short hashes
//! and fingerprints at fixed width.
//!
//! Postcard writes a `u32` or `u64` as a varint, which is the right choice for small numbers
//! and the wrong one for two kinds of values anti-entropy sends by the thousand:
//! - *index lists* (tree nodes, leaves, positions in a list) are large but close together: a
//!   list sent as differences between neighbours takes 1–2 bytes an entry instead of 3–4;
//! - *short hashes and fingerprints* are uniformly random 32-bit values: as varints they take 5
//!   bytes instead of 4.
//!
//! # Invariants
//! - Every helper round-trips any list exactly, in any order (deltas are zigzag-coded, so a
//!   list that goes down costs a little more but is still exact).
//! - Decoding never panics: an index that leaves the `u32` range is an error.
//!
//! # Limits
//! - The savings assume lists mostly in ascending order, which is how the exchange builds them.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A newtype over a `u32` index that the delta coding can carry.
pub trait WireIndex: Copy {
    /// The index.
    fn to_u32(self) -> u32;
    /// The newtype of an index.
    fn from_u32(value: u32) -> Self;
}

impl WireIndex for u32 {
    fn to_u32(self) -> u32 {
        self
    }
    fn from_u32(value: u32) -> Self {
        value
    }
}

impl WireIndex for super::NodeIndex {
    fn to_u32(self) -> u32 {
        self.0
    }
    fn from_u32(value: u32) -> Self {
        Self(value)
    }
}

impl WireIndex for super::LeafIndex {
    fn to_u32(self) -> u32 {
        self.0
    }
    fn from_u32(value: u32) -> Self {
        Self(value)
    }
}

/// Index lists as zigzag varint deltas: `#[serde(with = "delta_indices")]`.
pub mod delta_indices {
    use super::*;

    /// Writes each index as its signed difference from the previous one (from 0).
    pub fn serialize<T: WireIndex, S: Serializer>(
        indices: &[T],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut previous = 0i64;
        let deltas: Vec<i64> = indices
            .iter()
            .map(|index| {
                let value = i64::from(index.to_u32());
                let delta = value - previous;
                previous = value;
                delta
            })
            .collect();
        deltas.serialize(serializer)
    }

    /// Reads the deltas back; an index outside the `u32` range is refused.
    pub fn deserialize<'de, T: WireIndex, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        let deltas = Vec::<i64>::deserialize(deserializer)?;
        let mut previous = 0i64;
        deltas
            .into_iter()
            .map(|delta| {
                let value = previous
                    .checked_add(delta)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| D::Error::custom("index delta leaves the u32 range"))?;
                previous = i64::from(value);
                Ok(T::from_u32(value))
            })
            .collect()
    }
}

/// 32-bit fingerprints at 4 bytes each: `#[serde(with = "fixed_u32s")]`.
pub mod fixed_u32s {
    use super::*;

    /// Writes each fingerprint as 4 little-endian bytes.
    pub fn serialize<S: Serializer>(values: &[u32], serializer: S) -> Result<S::Ok, S::Error> {
        let words: Vec<[u8; 4]> = values.iter().map(|h| h.to_le_bytes()).collect();
        words.serialize(serializer)
    }

    /// Reads them back.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
        let words = Vec::<[u8; 4]>::deserialize(deserializer)?;
        Ok(words.into_iter().map(u32::from_le_bytes).collect())
    }
}

/// One 32-bit fingerprint at 4 bytes: `#[serde(with = "fixed_u32")]`.
pub mod fixed_u32 {
    use super::*;

    /// Writes the fingerprint as 4 little-endian bytes.
    pub fn serialize<S: Serializer>(value: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        value.to_le_bytes().serialize(serializer)
    }

    /// Reads it back.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        Ok(u32::from_le_bytes(<[u8; 4]>::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Lists {
        #[serde(with = "delta_indices")]
        indices: Vec<u32>,
        #[serde(with = "fixed_u32s")]
        fingerprints: Vec<u32>,
        #[serde(with = "fixed_u32")]
        one: u32,
    }

    proptest! {
        // Any lists round-trip exactly, whatever their order.
        #[test]
        fn lists_round_trip(
            indices in proptest::collection::vec(any::<u32>(), 0..50),
            fingerprints in proptest::collection::vec(any::<u32>(), 0..20),
            one in any::<u32>(),
        ) {
            let lists = Lists { indices, fingerprints, one };
            let wire = postcard::to_stdvec(&lists).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Lists>(&wire).unwrap(), lists);
        }

        // Garbage never panics the decoder.
        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = postcard::from_bytes::<Lists>(&bytes);
        }
    }

    // Ascending, close indices take one byte each; hashes take their fixed width.
    #[test]
    fn ascending_indices_are_small() {
        let lists = Lists {
            indices: (100_000..100_100).map(|i| i * 2).collect(),
            fingerprints: vec![u32::MAX; 3],
            one: u32::MAX,
        };
        let wire = postcard::to_stdvec(&lists).unwrap();
        // 1 length + 3 bytes for the first delta + 99 one-byte deltas; 1 + 12; 4.
        assert_eq!(wire.len(), 1 + 3 + 99 + 1 + 12 + 4);
    }

    // A delta that leaves the u32 range is refused.
    #[test]
    fn out_of_range_deltas_are_refused() {
        #[derive(Serialize)]
        struct Raw {
            indices: Vec<i64>,
        }
        #[derive(Debug, Deserialize)]
        struct Decoded {
            #[serde(with = "delta_indices")]
            #[allow(dead_code)]
            indices: Vec<u32>,
        }
        for raw in [vec![-1], vec![i64::from(u32::MAX) + 1], vec![5, i64::MAX]] {
            let wire = postcard::to_stdvec(&Raw { indices: raw }).unwrap();
            assert!(postcard::from_bytes::<Decoded>(&wire).is_err());
        }
    }
}
