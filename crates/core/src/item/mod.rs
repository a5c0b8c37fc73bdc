//! Tables and items: DynamoDB's data model in the core (`docs/items.md`).
//!
//! - [`number`]: DynamoDB's exact decimal (`N`).
//! - [`value`]: attribute values of every DynamoDB type and their sizes.
//! - [`limits`]: DynamoDB's limits and the typed error naming each.
//! - [`key`]: key schemas, primary keys and the storage key that places an item by (table,
//!   partition key) and orders a partition by sort key.
//! - [`path`], [`condition`], [`update`]: document paths, conditions and UpdateItem's actions,
//!   as data the DynamoDB API parses expressions into, and their evaluation.
//! - [`stamp`]: the hybrid logical clock that stamps item writes.
//! - [`stamped`]: the per-attribute stamped item a version stores, and the merge rule that makes
//!   concurrent versions one item.
//!
//! This module owns [`Item`]: a top-level document of named attribute values.
//!
//! # Invariants
//! - An [`Item`] built by [`Item::new`] has non-empty attribute names within the limit, values
//!   that pass [`AttributeValue::check`], and a size of at most [`limits::MAX_ITEM_BYTES`]
//!   counting names and values. Only the merge of concurrent versions may exceed the size
//!   (`StampedItem::item`).

pub mod condition;
pub mod key;
pub mod limits;
pub mod number;
pub mod path;
pub mod stamp;
pub mod stamped;
pub mod update;
pub mod value;

pub use condition::Condition;
pub use key::{ItemKey, KeySchema, KeyType, KeyValue, PrimaryKey, TableId};
pub use limits::ItemError;
pub use number::Number;
pub use path::AttributePath;
pub use stamp::{HybridClock, Stamp};
pub use stamped::{StampedAttribute, StampedItem};
pub use update::{ItemUpdate, UpdateAction, UpdateError};
pub use value::AttributeValue;

use limits::{MAX_ATTRIBUTE_NAME_BYTES, MAX_ITEM_BYTES};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An item: named attribute values, its key attributes among them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item(BTreeMap<String, AttributeValue>);

impl Item {
    /// An item from its attributes, refused when it breaks a limit (module docs).
    pub fn new(attributes: BTreeMap<String, AttributeValue>) -> Result<Item, ItemError> {
        let item = Item(attributes);
        item.check()?;
        Ok(item)
    }

    /// Checks what [`Item::new`] checks, for an item that arrived through a decoder.
    pub fn check(&self) -> Result<(), ItemError> {
        for (name, value) in &self.0 {
            check_name(name)?;
            value.check()?;
        }
        let size = self.size_bytes();
        if size > MAX_ITEM_BYTES {
            return Err(ItemError::ItemTooLarge {
                size,
                max: MAX_ITEM_BYTES,
            });
        }
        Ok(())
    }

    /// The merge of valid versions: every value is valid, only the size may exceed the limit.
    fn from_merged(attributes: BTreeMap<String, AttributeValue>) -> Item {
        Item(attributes)
    }

    /// Its attributes, by name.
    pub fn attributes(&self) -> &BTreeMap<String, AttributeValue> {
        &self.0
    }

    /// Its attributes, by name.
    pub fn into_attributes(self) -> BTreeMap<String, AttributeValue> {
        self.0
    }

    /// One attribute's value.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0.get(name)
    }

    /// Its size as DynamoDB counts it: every attribute's name and value.
    pub fn size_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|(name, value)| name.len() + value.size_bytes())
            .sum()
    }
}

/// Checks a top-level attribute name: 1 to 64 KB.
pub fn check_name(name: &str) -> Result<(), ItemError> {
    if name.is_empty() {
        return Err(ItemError::EmptyAttributeName);
    }
    if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(ItemError::AttributeNameTooLong {
            len: name.len(),
            max: MAX_ATTRIBUTE_NAME_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_over_400_kb_is_refused_counting_names() {
        let value_len = MAX_ITEM_BYTES - 4;
        let fits = BTreeMap::from([("name".to_string(), AttributeValue::B(vec![0; value_len]))]);
        assert_eq!(Item::new(fits).map(|i| i.size_bytes()), Ok(MAX_ITEM_BYTES));
        let over = BTreeMap::from([("names".to_string(), AttributeValue::B(vec![0; value_len]))]);
        assert_eq!(
            Item::new(over),
            Err(ItemError::ItemTooLarge {
                size: MAX_ITEM_BYTES + 1,
                max: MAX_ITEM_BYTES
            })
        );
    }

    #[test]
    fn empty_attribute_names_are_refused() {
        let item = BTreeMap::from([(String::new(), AttributeValue::Null)]);
        assert_eq!(Item::new(item), Err(ItemError::EmptyAttributeName));
    }
}
