//! DynamoDB's limits on items and keys, and the typed error for each, so that every front end
//! (the native API, the DynamoDB API) names the limit a request broke.
//!
//! The limits are DynamoDB's ("Service, account, and table quotas" in its developer guide):
//! items count their attribute names and values, key attributes are bounded on their own, and
//! documents nest at most 32 levels.

use super::number::NumberError;

/// The largest item, counting attribute names and values (DynamoDB: 400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The longest partition key value, in bytes (DynamoDB: 2048).
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;

/// The longest sort key value, in bytes (DynamoDB: 1024).
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// How deep maps and lists may nest (DynamoDB: 32 levels).
pub const MAX_NESTING_DEPTH: usize = 32;

/// The longest attribute name, in bytes (DynamoDB: 64 KB, key attribute names 255).
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 65535;

/// The longest key attribute name, in bytes.
pub const MAX_KEY_ATTRIBUTE_NAME_BYTES: usize = 255;

/// Which part of a primary key an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// The partition (hash) key.
    Partition,
    /// The sort (range) key.
    Sort,
}

impl std::fmt::Display for KeyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyPart::Partition => "partition key",
            KeyPart::Sort => "sort key",
        })
    }
}

/// Why an item, a value or a key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// The item is larger than [`MAX_ITEM_BYTES`].
    #[error("item size {size} bytes has exceeded the maximum allowed size of {max} bytes")]
    ItemTooLarge {
        /// The item's size as DynamoDB counts it.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A key attribute's value is empty or longer than its limit.
    #[error("the {part} `{name}` is {len} bytes; it must be 1 to {max} bytes")]
    KeySize {
        /// Partition or sort key.
        part: KeyPart,
        /// The key attribute's name.
        name: String,
        /// Its value's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Maps and lists nest deeper than [`MAX_NESTING_DEPTH`].
    #[error("nesting of maps and lists exceeds the maximum depth of {max}")]
    NestingTooDeep {
        /// The limit.
        max: usize,
    },
    /// A set holds no element.
    #[error("an {type_name} set may not be empty")]
    EmptySet {
        /// `SS`, `NS` or `BS`.
        type_name: &'static str,
    },
    /// An attribute name (at the top or inside a map) is empty.
    #[error("an attribute name may not be empty")]
    EmptyAttributeName,
    /// An attribute name is longer than its limit.
    #[error("attribute name is {len} bytes; the limit is {max}")]
    AttributeNameTooLong {
        /// The name's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The item lacks one of its table's key attributes.
    #[error("the item has no {part} attribute `{name}`")]
    MissingKey {
        /// Partition or sort key.
        part: KeyPart,
        /// The attribute the schema names.
        name: String,
    },
    /// A key attribute has another type than the schema's.
    #[error("the {part} `{name}` must be of type {expected}, not {found}")]
    KeyType {
        /// Partition or sort key.
        part: KeyPart,
        /// The attribute.
        name: String,
        /// The schema's type (`S`, `N` or `B`).
        expected: &'static str,
        /// The value's type.
        found: &'static str,
    },
    /// A key names attributes the table's key schema does not have.
    #[error("the key has attributes that are not the table's key: {names:?}")]
    ExtraKeyAttributes {
        /// The names that do not belong.
        names: Vec<String>,
    },
    /// An item's key attributes, or a request's key, do not match the key it is stored under
    /// or the table's schema.
    #[error("the provided key element does not match the schema")]
    KeyMismatch,
    /// A number is malformed or outside DynamoDB's range.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// Stored or received bytes do not decode as an item (or decode to one that breaks an
    /// invariant): a corrupt record, or a peer speaking another format.
    #[error("malformed item encoding: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
}
