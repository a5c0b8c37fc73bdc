//! Primary keys: a table's key schema, the key of an item, and the storage key that places an
//! item on the ring by (table, partition key) and orders a partition's items by sort key.
//!
//! # Storage key format (version 1)
//! ```text
//! 0xFF 0x01 | table id (8 bytes, big-endian) | type byte, partition key | [type byte, sort key]
//! ```
//! - A string or binary key is written with every `0x00` byte escaped as `0x00 0xFF` and ended
//!   by `0x00 0x01`: the bytes keep their lexicographic order and no encoding is a prefix of
//!   another. A number uses [`Number::encode_ordered`] (numeric order, prefix-free).
//! - Type bytes: `S` = 1, `N` = 2, `B` = 3.
//! - **Placement**: the ring hashes only the *placement prefix*, everything up to the end of
//!   the partition key ([`placement_prefix`], used by `ring::key_token`), so all items of one
//!   partition share a token, one preference list, and one contiguous, sort-key-ordered run of
//!   storage (the store orders records by token, then key). Keys of the native key-value API
//!   never start with `0xFF` (the node refuses them), so the two never collide.
//!
//! # Invariants
//! - `ItemKey::decode(&key.encode()) == key`, and encoding order is (table, partition key,
//!   sort key) order within a partition (property-tested).
//! - A key value is 1 to 2048 bytes (partition) or 1 to 1024 bytes (sort) as DynamoDB counts
//!   it, and of its schema's type ([`KeySchema::key_of`] checks both).

use super::Item;
use super::limits::{
    ItemError, KeyPart, MAX_KEY_ATTRIBUTE_NAME_BYTES, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES,
};
use super::number::Number;
use super::value::AttributeValue;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The first byte of every item's storage key.
pub const ITEM_KEY_TAG: u8 = 0xFF;
/// The storage-key format this version writes.
const ITEM_KEY_FORMAT: u8 = 0x01;
/// Tag, format and table id.
const TABLE_PREFIX_BYTES: usize = 10;

const TYPE_S: u8 = 1;
const TYPE_N: u8 = 2;
const TYPE_B: u8 = 3;

/// The identity of one incarnation of a table: a table deleted and created again under the same
/// name gets a new id, so the old incarnation's data can never reappear in the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableId(pub u64);

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{:016x}", self.0)
    }
}

/// The type of a key attribute: DynamoDB allows only these three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl KeyType {
    /// DynamoDB's type descriptor.
    pub fn type_name(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }

    fn tag(self) -> u8 {
        match self {
            KeyType::S => TYPE_S,
            KeyType::N => TYPE_N,
            KeyType::B => TYPE_B,
        }
    }
}

/// One key attribute of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyAttribute {
    /// The attribute's name.
    pub name: String,
    /// Its type.
    pub key_type: KeyType,
}

/// A table's primary key: a partition key and an optional sort key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeySchema {
    /// The partition (hash) key: it alone places an item on the ring.
    pub partition: KeyAttribute,
    /// The sort (range) key, which orders the items of a partition.
    pub sort: Option<KeyAttribute>,
}

/// A key attribute's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyValue {
    /// A string.
    S(String),
    /// A number.
    N(Number),
    /// Bytes.
    B(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl KeyValue {
    /// Its type.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyValue::S(_) => KeyType::S,
            KeyValue::N(_) => KeyType::N,
            KeyValue::B(_) => KeyType::B,
        }
    }

    /// The attribute value it is.
    pub fn to_value(&self) -> AttributeValue {
        match self {
            KeyValue::S(s) => AttributeValue::S(s.clone()),
            KeyValue::N(n) => AttributeValue::N(*n),
            KeyValue::B(b) => AttributeValue::B(b.clone()),
        }
    }

    /// Its size as DynamoDB counts it.
    pub fn size_bytes(&self) -> usize {
        match self {
            KeyValue::S(s) => s.len(),
            KeyValue::N(n) => n.size_bytes(),
            KeyValue::B(b) => b.len(),
        }
    }

    /// Appends the type byte and the order-preserving, prefix-free encoding.
    pub fn encode_ordered(&self, out: &mut Vec<u8>) {
        out.push(self.key_type().tag());
        match self {
            KeyValue::S(s) => escape_bytes(s.as_bytes(), out),
            KeyValue::B(b) => escape_bytes(b, out),
            KeyValue::N(n) => n.encode_ordered(out),
        }
    }

    /// Reads one encoded key value from the front of `bytes`; returns it and the bytes used.
    pub fn decode_ordered(bytes: &[u8]) -> Result<(KeyValue, usize), ItemError> {
        let (&tag, rest) = bytes
            .split_first()
            .ok_or_else(|| malformed("empty key value"))?;
        match tag {
            TYPE_S => {
                let (raw, used) = unescape_bytes(rest)?;
                let text =
                    String::from_utf8(raw).map_err(|_| malformed("string key is not UTF-8"))?;
                Ok((KeyValue::S(text), 1 + used))
            }
            TYPE_B => {
                let (raw, used) = unescape_bytes(rest)?;
                Ok((KeyValue::B(raw), 1 + used))
            }
            TYPE_N => {
                let (number, used) = Number::decode_ordered(rest)
                    .map_err(|e| malformed(&format!("number key: {e}")))?;
                Ok((KeyValue::N(number), 1 + used))
            }
            other => Err(malformed(&format!("unknown key type byte {other:#04x}"))),
        }
    }

    fn from_value(
        part: KeyPart,
        attribute: &KeyAttribute,
        value: &AttributeValue,
    ) -> Result<KeyValue, ItemError> {
        let key = match (attribute.key_type, value) {
            (KeyType::S, AttributeValue::S(s)) => KeyValue::S(s.clone()),
            (KeyType::N, AttributeValue::N(n)) => KeyValue::N(*n),
            (KeyType::B, AttributeValue::B(b)) => KeyValue::B(b.clone()),
            (expected, found) => {
                return Err(ItemError::KeyType {
                    part,
                    name: attribute.name.clone(),
                    expected: expected.type_name(),
                    found: found.type_name(),
                });
            }
        };
        let max = match part {
            KeyPart::Partition => MAX_PARTITION_KEY_BYTES,
            KeyPart::Sort => MAX_SORT_KEY_BYTES,
        };
        let len = key.size_bytes();
        if len == 0 || len > max {
            return Err(ItemError::KeySize {
                part,
                name: attribute.name.clone(),
                len,
                max,
            });
        }
        Ok(key)
    }
}

/// The primary key of one item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrimaryKey {
    /// The partition key's value.
    pub partition: KeyValue,
    /// The sort key's value, when the table has one.
    pub sort: Option<KeyValue>,
}

impl KeySchema {
    /// A schema with only a partition key.
    pub fn partition_only(name: impl Into<String>, key_type: KeyType) -> Self {
        Self {
            partition: KeyAttribute {
                name: name.into(),
                key_type,
            },
            sort: None,
        }
    }

    /// This schema with a sort key.
    pub fn with_sort(mut self, name: impl Into<String>, key_type: KeyType) -> Self {
        self.sort = Some(KeyAttribute {
            name: name.into(),
            key_type,
        });
        self
    }

    /// Checks the schema itself: key attribute names 1 to 255 bytes, and distinct.
    pub fn check(&self) -> Result<(), ItemError> {
        for attribute in std::iter::once(&self.partition).chain(self.sort.as_ref()) {
            let len = attribute.name.len();
            if len == 0 {
                return Err(ItemError::EmptyAttributeName);
            }
            if len > MAX_KEY_ATTRIBUTE_NAME_BYTES {
                return Err(ItemError::AttributeNameTooLong {
                    len,
                    max: MAX_KEY_ATTRIBUTE_NAME_BYTES,
                });
            }
        }
        if self
            .sort
            .as_ref()
            .is_some_and(|s| s.name == self.partition.name)
        {
            return Err(ItemError::ExtraKeyAttributes {
                names: vec![self.partition.name.clone()],
            });
        }
        Ok(())
    }

    /// Whether `name` is one of the key attributes.
    pub fn is_key_attribute(&self, name: &str) -> bool {
        self.partition.name == name || self.sort.as_ref().is_some_and(|s| s.name == name)
    }

    /// The primary key an item carries: its key attributes, of the schema's types and sizes.
    pub fn key_of(&self, item: &Item) -> Result<PrimaryKey, ItemError> {
        self.key_from(item.attributes())
    }

    /// The primary key named by a request's `Key` (exactly the key attributes, no others).
    pub fn key_from_attributes(
        &self,
        attributes: &BTreeMap<String, AttributeValue>,
    ) -> Result<PrimaryKey, ItemError> {
        let extra: Vec<String> = attributes
            .keys()
            .filter(|name| !self.is_key_attribute(name))
            .cloned()
            .collect();
        if !extra.is_empty() {
            return Err(ItemError::ExtraKeyAttributes { names: extra });
        }
        self.key_from(attributes)
    }

    fn key_from(
        &self,
        attributes: &BTreeMap<String, AttributeValue>,
    ) -> Result<PrimaryKey, ItemError> {
        let get = |part: KeyPart, attribute: &KeyAttribute| {
            let value = attributes
                .get(&attribute.name)
                .ok_or_else(|| ItemError::MissingKey {
                    part,
                    name: attribute.name.clone(),
                })?;
            KeyValue::from_value(part, attribute, value)
        };
        let partition = get(KeyPart::Partition, &self.partition)?;
        let sort = match &self.sort {
            Some(attribute) => Some(get(KeyPart::Sort, attribute)?),
            None => None,
        };
        Ok(PrimaryKey { partition, sort })
    }

    /// The key attributes of `key` as item attributes (to put back into a stored item).
    pub fn key_attributes(&self, key: &PrimaryKey) -> Vec<(String, AttributeValue)> {
        let mut attributes = vec![(self.partition.name.clone(), key.partition.to_value())];
        if let (Some(attribute), Some(value)) = (&self.sort, &key.sort) {
            attributes.push((attribute.name.clone(), value.to_value()));
        }
        attributes
    }
}

/// An item's full address: its table incarnation and primary key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    /// The table.
    pub table: TableId,
    /// The item's key within it.
    pub key: PrimaryKey,
}

impl ItemKey {
    /// The storage key (format in the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = partition_prefix(self.table, &self.key.partition);
        if let Some(sort) = &self.key.sort {
            sort.encode_ordered(&mut out);
        }
        out
    }

    /// Reads a storage key written by [`ItemKey::encode`].
    pub fn decode(bytes: &[u8]) -> Result<ItemKey, ItemError> {
        let table = table_of(bytes).ok_or_else(|| malformed("not an item key"))?;
        let rest = &bytes[TABLE_PREFIX_BYTES..];
        let (partition, used) = KeyValue::decode_ordered(rest)?;
        let rest = &rest[used..];
        let sort = if rest.is_empty() {
            None
        } else {
            let (sort, used) = KeyValue::decode_ordered(rest)?;
            if used != rest.len() {
                return Err(malformed("bytes after the sort key"));
            }
            Some(sort)
        };
        Ok(ItemKey {
            table,
            key: PrimaryKey { partition, sort },
        })
    }
}

/// The storage-key prefix shared by every item of one partition (a query scans it).
pub fn partition_prefix(table: TableId, partition: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(TABLE_PREFIX_BYTES + 2 + partition.size_bytes());
    out.push(ITEM_KEY_TAG);
    out.push(ITEM_KEY_FORMAT);
    out.extend_from_slice(&table.0.to_be_bytes());
    partition.encode_ordered(&mut out);
    out
}

/// The table a storage key belongs to, if it is an item key.
pub fn table_of(key: &[u8]) -> Option<TableId> {
    match key {
        [ITEM_KEY_TAG, ITEM_KEY_FORMAT, id @ ..] if id.len() >= 8 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&id[..8]);
            Some(TableId(u64::from_be_bytes(bytes)))
        }
        _ => None,
    }
}

/// The part of a storage key the ring hashes: for an item key everything up to the end of the
/// partition key, for any other key (or an item key that does not parse) the whole key.
pub fn placement_prefix(key: &[u8]) -> &[u8] {
    if key.first() != Some(&ITEM_KEY_TAG) || table_of(key).is_none() {
        return key;
    }
    match KeyValue::decode_ordered(&key[TABLE_PREFIX_BYTES..]) {
        Ok((_, used)) => &key[..TABLE_PREFIX_BYTES + used],
        Err(_) => key,
    }
}

fn escape_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0x00 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn unescape_bytes(bytes: &[u8]) -> Result<(Vec<u8>, usize), ItemError> {
    let mut raw = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != 0x00 {
            raw.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(0xFF) => {
                raw.push(0x00);
                i += 2;
            }
            Some(0x01) => return Ok((raw, i + 2)),
            _ => return Err(malformed("bad escape in a string or binary key")),
        }
    }
    Err(malformed("unterminated string or binary key"))
}

fn malformed(detail: &str) -> ItemError {
    ItemError::Malformed {
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key_value() -> impl Strategy<Value = KeyValue> {
        prop_oneof![
            "[a-c\u{0}\u{ff}]{0,6}".prop_map(KeyValue::S),
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()],
                0..6
            )
            .prop_map(KeyValue::B),
            (any::<i64>(), -40i32..40).prop_map(|(m, e)| {
                KeyValue::N(Number::parse(&format!("{m}E{e}")).expect("in range"))
            }),
        ]
    }

    fn item_key() -> impl Strategy<Value = ItemKey> {
        (0u64..3, key_value(), proptest::option::of(key_value())).prop_map(
            |(table, partition, sort)| ItemKey {
                table: TableId(table),
                key: PrimaryKey { partition, sort },
            },
        )
    }

    proptest! {
        #[test]
        fn item_keys_round_trip(key in item_key()) {
            prop_assert_eq!(ItemKey::decode(&key.encode()), Ok(key));
        }

        #[test]
        fn encoding_order_is_value_order(a in key_value(), b in key_value()) {
            prop_assume!(a.key_type() == b.key_type());
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            a.encode_ordered(&mut ea);
            b.encode_ordered(&mut eb);
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b), "{:?} {:?}", ea, eb);
        }

        #[test]
        fn encodings_are_prefix_free(a in key_value(), b in key_value()) {
            prop_assume!(a != b);
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            a.encode_ordered(&mut ea);
            b.encode_ordered(&mut eb);
            prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
        }

        #[test]
        fn a_partition_places_by_its_prefix_only(key in item_key(), sort in key_value()) {
            let mut other = key.clone();
            other.key.sort = Some(sort);
            let prefix = partition_prefix(key.table, &key.key.partition);
            let (encoded, other_encoded) = (key.encode(), other.encode());
            prop_assert_eq!(placement_prefix(&encoded), &prefix[..]);
            prop_assert_eq!(placement_prefix(&other_encoded), &prefix[..]);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = ItemKey::decode(&bytes);
            let _ = placement_prefix(&bytes);
        }
    }

    #[test]
    fn other_keys_place_by_their_whole_bytes() {
        assert_eq!(placement_prefix(b"user:1"), b"user:1");
        assert_eq!(placement_prefix(&[0xFF, 0x01, 0]), &[0xFF, 0x01, 0]);
    }

    #[test]
    fn key_of_checks_types_and_sizes() {
        let schema = KeySchema::partition_only("id", KeyType::S).with_sort("at", KeyType::N);
        let item = |attributes: Vec<(&str, AttributeValue)>| {
            Item::new(
                attributes
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
            .expect("a valid item")
        };
        let one = Number::from_i64(1);
        let ok = item(vec![
            ("id", AttributeValue::S("u".into())),
            ("at", AttributeValue::N(one)),
        ]);
        assert_eq!(
            schema.key_of(&ok),
            Ok(PrimaryKey {
                partition: KeyValue::S("u".into()),
                sort: Some(KeyValue::N(one))
            })
        );
        let no_sort = item(vec![("id", AttributeValue::S("u".into()))]);
        assert!(matches!(
            schema.key_of(&no_sort),
            Err(ItemError::MissingKey {
                part: KeyPart::Sort,
                ..
            })
        ));
        let wrong = item(vec![
            ("id", AttributeValue::N(one)),
            ("at", AttributeValue::N(one)),
        ]);
        assert!(matches!(
            schema.key_of(&wrong),
            Err(ItemError::KeyType {
                expected: "S",
                found: "N",
                ..
            })
        ));
        let empty = item(vec![
            ("id", AttributeValue::S(String::new())),
            ("at", AttributeValue::N(one)),
        ]);
        assert!(matches!(
            schema.key_of(&empty),
            Err(ItemError::KeySize { len: 0, .. })
        ));
        let long = item(vec![
            (
                "id",
                AttributeValue::S("x".repeat(MAX_PARTITION_KEY_BYTES + 1)),
            ),
            ("at", AttributeValue::N(one)),
        ]);
        assert!(matches!(
            schema.key_of(&long),
            Err(ItemError::KeySize {
                part: KeyPart::Partition,
                ..
            })
        ));
    }
}
