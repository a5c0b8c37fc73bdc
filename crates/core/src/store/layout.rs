//! The byte layout shared by both stores: storage keys ordered by ring position, record
//! encodings with a format byte, and the key bounds of a ring-ordered scan.
//!
//! Both [`super::MemoryStore`] and `DurableStore` (the runtime's) order data by the same storage keys,
//! so their scans agree entry for entry; only the durable store encodes values.
//!
//! # Invariants
//! - A data storage key is `token (u64 big-endian) ++ key` with `token = key_token(key)`: byte
//!   order is ring order, and keys sharing a token are ordered by their bytes.
//! - A data record is `[RECORD_FORMAT_V1][digest: u64 big-endian][postcard(VersionSet)]`.
//! - A hint's storage key is `owner (u64 big-endian) ++ id (u64 big-endian)`, so one owner's
//!   hints are contiguous and in id order; its record is `[HINT_FORMAT_V1][postcard(HintBody)]`.
//! - Nothing here panics on bytes read from disk: malformed input is a
//!   [`StoreError::Corrupt`] naming the key.
//!
//! # Limits
//! - The digest in the header is the one computed when the record was written; a build whose
//!   `VersionSet::digest` differs must bump the format byte.

use super::{
    CorruptReason, Hint, HintId, MAX_KEY_BYTES, MAX_RECORD_BYTES, ScanCursor, StoreArea, StoreError,
};
use crate::NodeId;
use crate::ring::{Token, TokenRange, key_token};
use crate::version::VersionSet;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// Bytes of the big-endian token prefix of a data storage key.
pub const TOKEN_BYTES: usize = 8;

/// Format byte of a data record (header with digest, postcard body).
pub const RECORD_FORMAT_V1: u8 = 1;

/// Bytes of a data record's header: the format byte and the digest.
pub const RECORD_HEADER_BYTES: usize = 1 + 8;

/// Format byte of a hint record.
pub const HINT_FORMAT_V1: u8 = 1;

/// Bytes of a hint's storage key: owner and id.
pub const HINT_KEY_BYTES: usize = 16;

/// Bounds of one contiguous scan over storage keys.
pub type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Refuses keys the store does not accept.
pub fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::KeyTooLarge { len: key.len() });
    }
    Ok(())
}

/// Refuses records the store does not accept.
pub fn check_record(record: &[u8]) -> Result<(), StoreError> {
    if record.len() > MAX_RECORD_BYTES {
        return Err(StoreError::RecordTooLarge { len: record.len() });
    }
    Ok(())
}

/// The storage key of a data record: `token ++ key`.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    let mut storage_key = Vec::with_capacity(TOKEN_BYTES + key.len());
    storage_key.extend_from_slice(&key_token(key).0.to_be_bytes());
    storage_key.extend_from_slice(key);
    storage_key
}

/// Splits a data storage key into its token and user key, checking the token is the key's.
pub fn split_data_key(storage_key: &[u8]) -> Result<(Token, &[u8]), StoreError> {
    let Some((token_bytes, key)) = storage_key.split_first_chunk::<TOKEN_BYTES>() else {
        return Err(StoreError::Corrupt {
            area: StoreArea::Data,
            key: storage_key.to_vec(),
            reason: CorruptReason::Truncated {
                len: storage_key.len(),
            },
        });
    };
    let stored = u64::from_be_bytes(*token_bytes);
    let expected = key_token(key).0;
    if stored != expected {
        return Err(StoreError::Corrupt {
            area: StoreArea::Data,
            key: key.to_vec(),
            reason: CorruptReason::WrongToken { stored, expected },
        });
    }
    Ok((Token(stored), key))
}

/// Encodes a data record: format byte, digest, postcard body.
pub fn encode_record(versions: &VersionSet, digest: u64) -> Result<Vec<u8>, StoreError> {
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + 64);
    record.push(RECORD_FORMAT_V1);
    record.extend_from_slice(&digest.to_be_bytes());
    let record = postcard::to_extend(versions, record).map_err(StoreError::Encode)?;
    check_record(&record)?;
    Ok(record)
}

/// Reads the digest from a data record's header (the body is not decoded).
pub fn decode_record_digest(key: &[u8], record: &[u8]) -> Result<u64, StoreError> {
    let corrupt = |reason| StoreError::Corrupt {
        area: StoreArea::Data,
        key: key.to_vec(),
        reason,
    };
    let Some((&format, rest)) = record.split_first() else {
        return Err(corrupt(CorruptReason::Truncated { len: 0 }));
    };
    if format != RECORD_FORMAT_V1 {
        return Err(corrupt(CorruptReason::UnknownFormat(format)));
    }
    let Some(digest_bytes) = rest.first_chunk::<8>() else {
        return Err(corrupt(CorruptReason::Truncated { len: record.len() }));
    };
    Ok(u64::from_be_bytes(*digest_bytes))
}

/// Decodes a data record into its digest and version set.
pub fn decode_record(key: &[u8], record: &[u8]) -> Result<(u64, VersionSet), StoreError> {
    let digest = decode_record_digest(key, record)?;
    let body = record.get(RECORD_HEADER_BYTES..).unwrap_or_default();
    let versions = decode_body(body).map_err(|reason| StoreError::Corrupt {
        area: StoreArea::Data,
        key: key.to_vec(),
        reason,
    })?;
    Ok((digest, versions))
}

/// Decodes a postcard body that must span the whole remaining record.
fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CorruptReason> {
    let (value, rest) = postcard::take_from_bytes(body).map_err(CorruptReason::Body)?;
    if !rest.is_empty() {
        return Err(CorruptReason::TrailingBytes { count: rest.len() });
    }
    Ok(value)
}

/// The storage key of a hint: `owner ++ id`.
pub fn hint_key(owner: NodeId, id: HintId) -> [u8; HINT_KEY_BYTES] {
    let mut storage_key = [0u8; HINT_KEY_BYTES];
    storage_key[..8].copy_from_slice(&owner.0.to_be_bytes());
    storage_key[8..].copy_from_slice(&id.0.to_be_bytes());
    storage_key
}

/// Splits a hint's storage key into owner and id.
pub fn split_hint_key(storage_key: &[u8]) -> Result<(NodeId, HintId), StoreError> {
    let truncated = || StoreError::Corrupt {
        area: StoreArea::Hints,
        key: storage_key.to_vec(),
        reason: CorruptReason::Truncated {
            len: storage_key.len(),
        },
    };
    let bytes: &[u8; HINT_KEY_BYTES] = storage_key.try_into().map_err(|_| truncated())?;
    let (owner, id) = bytes.split_at(8);
    let owner = u64::from_be_bytes(owner.try_into().map_err(|_| truncated())?);
    let id = u64::from_be_bytes(id.try_into().map_err(|_| truncated())?);
    Ok((NodeId(owner), HintId(id)))
}

/// What a hint record holds besides its (owner, id) key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HintBody {
    /// The key written.
    pub key: Vec<u8>,
    /// The version set to deliver.
    pub versions: VersionSet,
    /// When the hint was stored, in the owner core's clock.
    pub created_at_ms: u64,
}

impl HintBody {
    /// The full hint, given its storage key's parts.
    pub fn into_hint(self, owner: NodeId, id: HintId) -> Hint {
        Hint {
            id,
            owner,
            key: self.key,
            versions: self.versions,
            created_at_ms: self.created_at_ms,
        }
    }
}

/// Encodes a hint record: format byte, postcard body.
pub fn encode_hint(body: &HintBody) -> Result<Vec<u8>, StoreError> {
    let record = postcard::to_extend(body, vec![HINT_FORMAT_V1]).map_err(StoreError::Encode)?;
    check_record(&record)?;
    Ok(record)
}

/// Decodes a hint record stored under `storage_key`.
pub fn decode_hint(storage_key: &[u8], record: &[u8]) -> Result<HintBody, StoreError> {
    let corrupt = |reason| StoreError::Corrupt {
        area: StoreArea::Hints,
        key: storage_key.to_vec(),
        reason,
    };
    match record.split_first() {
        None => Err(corrupt(CorruptReason::Truncated { len: 0 })),
        Some((&HINT_FORMAT_V1, body)) => decode_body(body).map_err(corrupt),
        Some((&format, _)) => Err(corrupt(CorruptReason::UnknownFormat(format))),
    }
}

/// The cursor continuing after the entry stored under `storage_key`.
pub fn cursor_after(storage_key: Vec<u8>) -> ScanCursor {
    ScanCursor { storage_key }
}

/// Whether no key lies between `lower` and `upper` (a `BTreeMap` range over such bounds
/// panics; a reversed query range is simply empty).
pub fn bounds_empty(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

/// The storage-key bounds of [`Store::scan_partition`](super::Store::scan_partition): the
/// given key bounds as storage keys, with `Unbounded` closed at the partition's first and past
/// its last storage key.
pub fn partition_bounds(
    prefix: &[u8],
    from: Bound<Vec<u8>>,
    to: Bound<Vec<u8>>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = match from {
        Bound::Included(key) => Bound::Included(data_key(&key)),
        Bound::Excluded(key) => Bound::Excluded(data_key(&key)),
        Bound::Unbounded => Bound::Included(data_key(prefix)),
    };
    let upper = match to {
        Bound::Included(key) => Bound::Included(data_key(&key)),
        Bound::Excluded(key) => Bound::Excluded(data_key(&key)),
        // Past every key that starts with the prefix: the prefix with its last byte below
        // 0xFF incremented (0xFF bytes carry), or the whole token's end when all are 0xFF.
        Bound::Unbounded => {
            let mut end = data_key(prefix);
            while let Some(last) = end.pop() {
                if last < 0xFF {
                    end.push(last + 1);
                    return (lower, Bound::Excluded(end));
                }
            }
            Bound::Unbounded
        }
    };
    (lower, upper)
}

/// The storage-key bounds to scan, in ring order, for the part of `range` after `after`.
///
/// Each of the range's (at most two) token intervals `[lo, hi]` becomes the key bounds
/// `[lo_be, (hi + 1)_be)` (unbounded above when `hi` is `u64::MAX`). With a cursor, the
/// intervals before the cursor's are dropped and the cursor's starts just after it.
pub fn scan_bounds(
    range: TokenRange,
    after: Option<&ScanCursor>,
) -> Result<Vec<KeyBounds>, StoreError> {
    let intervals = range.intervals();
    let mut bounds = Vec::with_capacity(intervals.len());
    let cursor_token = match after {
        None => None,
        Some(cursor) => {
            let token_bytes = cursor
                .storage_key
                .first_chunk::<TOKEN_BYTES>()
                .ok_or(StoreError::CursorOutsideRange)?;
            Some(u64::from_be_bytes(*token_bytes))
        }
    };
    let mut reached_cursor = cursor_token.is_none();
    for (lo, hi) in intervals {
        let end = match hi.checked_add(1) {
            Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        if reached_cursor {
            bounds.push((Bound::Included(lo.to_be_bytes().to_vec()), end));
            continue;
        }
        if let (Some(token), Some(cursor)) = (cursor_token, after)
            && lo <= token
            && token <= hi
        {
            reached_cursor = true;
            bounds.push((Bound::Excluded(cursor.storage_key.clone()), end));
        }
    }
    if !reached_cursor {
        return Err(StoreError::CursorOutsideRange);
    }
    Ok(bounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{ActorId, CausalContext, Value};

    fn sample_set(payload: &[u8]) -> VersionSet {
        let mut set = VersionSet::default();
        set.update(
            &CausalContext::default(),
            ActorId(7),
            Value::Data(payload.to_vec()),
        );
        set
    }

    // A data storage key orders by token first and splits back into token and key.
    #[test]
    fn data_keys_order_by_token_and_round_trip() {
        let keys: Vec<&[u8]> = vec![b"", b"a", b"hello", b"zzzz", b"\x00\xff"];
        let mut stored: Vec<Vec<u8>> = keys.iter().map(|k| data_key(k)).collect();
        stored.sort();
        let tokens: Vec<u64> = stored
            .iter()
            .map(|s| split_data_key(s).unwrap().0.0)
            .collect();
        let mut sorted = tokens.clone();
        sorted.sort();
        assert_eq!(tokens, sorted);
        for key in keys {
            let storage_key = data_key(key);
            let (token, back) = split_data_key(&storage_key).unwrap();
            assert_eq!(back, key);
            assert_eq!(token, key_token(key));
        }
    }

    // A record round-trips, and every malformed record is an error naming the key, not a panic.
    #[test]
    fn records_round_trip_and_corruption_is_an_error() {
        let set = sample_set(b"value");
        let record = encode_record(&set, set.digest()).unwrap();
        assert_eq!(decode_record(b"k", &record).unwrap(), (set.digest(), set));
        let bad_inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![RECORD_FORMAT_V1],
            vec![RECORD_FORMAT_V1, 0, 0, 0],
            vec![99; 20],
            [&record[..RECORD_HEADER_BYTES], &[0xff; 9][..]].concat(),
        ];
        for bad in bad_inputs {
            match decode_record(b"the-key", &bad) {
                Err(StoreError::Corrupt { area, key, .. }) => {
                    assert_eq!(area, StoreArea::Data);
                    assert_eq!(key, b"the-key");
                }
                other => panic!("{bad:?} decoded as {other:?}"),
            }
        }
        let mut wrong_token = data_key(b"abc");
        wrong_token[0] ^= 1;
        assert!(matches!(
            split_data_key(&wrong_token),
            Err(StoreError::Corrupt {
                reason: CorruptReason::WrongToken { .. },
                ..
            })
        ));
        assert!(split_data_key(b"short").is_err());
    }

    // Hint keys group one owner's hints in id order; hint records round-trip.
    #[test]
    fn hint_keys_and_records_round_trip() {
        assert!(hint_key(NodeId(1), HintId(u64::MAX)) < hint_key(NodeId(2), HintId(0)));
        assert!(hint_key(NodeId(1), HintId(255)) < hint_key(NodeId(1), HintId(256)));
        let storage_key = hint_key(NodeId(3), HintId(9));
        assert_eq!(
            split_hint_key(&storage_key).unwrap(),
            (NodeId(3), HintId(9))
        );
        assert!(split_hint_key(&storage_key[..15]).is_err());
        let body = HintBody {
            key: b"k".to_vec(),
            versions: sample_set(b"v"),
            created_at_ms: 42,
        };
        let record = encode_hint(&body).unwrap();
        assert_eq!(decode_hint(&storage_key, &record).unwrap(), body);
        assert!(decode_hint(&storage_key, &[]).is_err());
        assert!(decode_hint(&storage_key, &[2, 0]).is_err());
    }

    // The bounds of a wrapping range cover its two intervals in ring order; a cursor skips
    // what precedes it; a foreign cursor is refused.
    #[test]
    fn scan_bounds_follow_ring_order_and_cursors() {
        let range = TokenRange::new(Token(u64::MAX - 10), Token(10));
        let bounds = scan_bounds(range, None).unwrap();
        assert_eq!(bounds.len(), 2);
        assert_eq!(
            bounds[0],
            (
                Bound::Included((u64::MAX - 9).to_be_bytes().to_vec()),
                Bound::Unbounded
            )
        );
        assert_eq!(
            bounds[1],
            (
                Bound::Included(0u64.to_be_bytes().to_vec()),
                Bound::Excluded(11u64.to_be_bytes().to_vec())
            )
        );
        let mut in_second = 5u64.to_be_bytes().to_vec();
        in_second.extend_from_slice(b"key");
        let cursor = cursor_after(in_second.clone());
        let bounds = scan_bounds(range, Some(&cursor)).unwrap();
        assert_eq!(bounds.len(), 1);
        assert_eq!(bounds[0].0, Bound::Excluded(in_second));
        let outside = cursor_after(100u64.to_be_bytes().to_vec());
        assert!(matches!(
            scan_bounds(range, Some(&outside)),
            Err(StoreError::CursorOutsideRange)
        ));
    }
}
