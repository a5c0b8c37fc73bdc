//! Attribute values: DynamoDB's ten types, their sizes as DynamoDB counts them, and the checks
//! that every stored value passes.
//!
//! # Invariants
//! - A set (SS, NS, BS) is never empty and never holds a duplicate: it is a `BTreeSet`, and
//!   [`AttributeValue::check`] refuses an empty one, so a decoded value from a peer or disk that
//!   breaks this is an error, not a value.
//! - Nesting (maps and lists inside maps and lists) is at most [`MAX_NESTING_DEPTH`] deep.
//! - Map keys (attribute names inside a map) are not empty.
//!
//! Sizes follow DynamoDB's item-size rules ("Item sizes and formats" in its developer guide):
//! strings and binaries count their bytes, numbers about one byte per two significant digits
//! plus one, BOOL and NULL one byte, a list or map 3 bytes plus one per element plus its
//! elements (and, for a map, its keys), a set the sum of its elements.

use super::limits::{ItemError, MAX_NESTING_DEPTH};
use super::number::Number;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, BTreeSet};

/// One attribute's value. Variant names are DynamoDB's type descriptors. New variants go at the
/// end: the variant index is the stored encoding's tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttributeValue {
    /// A UTF-8 string (may be empty outside keys).
    S(String),
    /// An exact decimal number.
    N(Number),
    /// Bytes (may be empty outside keys).
    B(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// The null value (DynamoDB's `{"NULL": true}`).
    Null,
    /// A map of names to values (a nested document).
    M(BTreeMap<String, AttributeValue>),
    /// An ordered list of values of any types.
    L(Vec<AttributeValue>),
    /// A non-empty set of strings.
    Ss(BTreeSet<String>),
    /// A non-empty set of numbers.
    Ns(BTreeSet<Number>),
    /// A non-empty set of binaries.
    Bs(BTreeSet<ByteBuf>),
}

impl AttributeValue {
    /// DynamoDB's type descriptor: `S`, `N`, `B`, `BOOL`, `NULL`, `M`, `L`, `SS`, `NS`, `BS`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// A string set from `items`; an empty one is refused (DynamoDB has no empty sets).
    pub fn string_set(
        items: impl IntoIterator<Item = String>,
    ) -> Result<AttributeValue, ItemError> {
        let set: BTreeSet<String> = items.into_iter().collect();
        if set.is_empty() {
            return Err(ItemError::EmptySet { type_name: "SS" });
        }
        Ok(AttributeValue::Ss(set))
    }

    /// A number set from `items`; an empty one is refused.
    pub fn number_set(
        items: impl IntoIterator<Item = Number>,
    ) -> Result<AttributeValue, ItemError> {
        let set: BTreeSet<Number> = items.into_iter().collect();
        if set.is_empty() {
            return Err(ItemError::EmptySet { type_name: "NS" });
        }
        Ok(AttributeValue::Ns(set))
    }

    /// A binary set from `items`; an empty one is refused.
    pub fn binary_set(
        items: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<AttributeValue, ItemError> {
        let set: BTreeSet<ByteBuf> = items.into_iter().map(ByteBuf::from).collect();
        if set.is_empty() {
            return Err(ItemError::EmptySet { type_name: "BS" });
        }
        Ok(AttributeValue::Bs(set))
    }

    /// Checks the invariants of the module docs for this value and everything inside it.
    pub fn check(&self) -> Result<(), ItemError> {
        self.check_at(1)
    }

    fn check_at(&self, depth: usize) -> Result<(), ItemError> {
        match self {
            AttributeValue::M(map) => {
                if depth > MAX_NESTING_DEPTH {
                    return Err(ItemError::NestingTooDeep {
                        max: MAX_NESTING_DEPTH,
                    });
                }
                for (name, value) in map {
                    if name.is_empty() {
                        return Err(ItemError::EmptyAttributeName);
                    }
                    value.check_at(depth + 1)?;
                }
                Ok(())
            }
            AttributeValue::L(list) => {
                if depth > MAX_NESTING_DEPTH {
                    return Err(ItemError::NestingTooDeep {
                        max: MAX_NESTING_DEPTH,
                    });
                }
                list.iter().try_for_each(|value| value.check_at(depth + 1))
            }
            AttributeValue::Ss(set) if set.is_empty() => {
                Err(ItemError::EmptySet { type_name: "SS" })
            }
            AttributeValue::Ns(set) if set.is_empty() => {
                Err(ItemError::EmptySet { type_name: "NS" })
            }
            AttributeValue::Bs(set) if set.is_empty() => {
                Err(ItemError::EmptySet { type_name: "BS" })
            }
            _ => Ok(()),
        }
    }

    /// This value's size as DynamoDB counts it (without the attribute name that holds it).
    pub fn size_bytes(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.size_bytes(),
            AttributeValue::B(b) => b.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::M(map) => {
                3 + map
                    .iter()
                    .map(|(name, value)| 1 + name.len() + value.size_bytes())
                    .sum::<usize>()
            }
            AttributeValue::L(list) => {
                3 + list
                    .iter()
                    .map(|value| 1 + value.size_bytes())
                    .sum::<usize>()
            }
            AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
            AttributeValue::Ns(set) => set.iter().map(Number::size_bytes).sum(),
            AttributeValue::Bs(set) => set.iter().map(|b| b.len()).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).expect("a valid number")
    }

    #[test]
    fn sets_are_never_empty() {
        assert_eq!(
            AttributeValue::string_set(Vec::new()),
            Err(ItemError::EmptySet { type_name: "SS" })
        );
        assert!(AttributeValue::number_set([n("1"), n("1.0")]).is_ok());
        // A decoded empty set (from a peer or disk) fails the check.
        let empty = AttributeValue::M(BTreeMap::from([(
            "tags".to_string(),
            AttributeValue::Bs(BTreeSet::new()),
        )]));
        assert_eq!(empty.check(), Err(ItemError::EmptySet { type_name: "BS" }));
    }

    #[test]
    fn sets_hold_no_duplicates() {
        let set = AttributeValue::number_set([n("1.50"), n("15E-1"), n("2")]).expect("a set");
        let AttributeValue::Ns(numbers) = set else {
            panic!("a number set")
        };
        assert_eq!(numbers.len(), 2);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let mut value = AttributeValue::Null;
        for _ in 0..MAX_NESTING_DEPTH {
            value = AttributeValue::L(vec![value]);
        }
        assert_eq!(value.check(), Ok(()));
        let deeper = AttributeValue::M(BTreeMap::from([("x".to_string(), value)]));
        assert_eq!(
            deeper.check(),
            Err(ItemError::NestingTooDeep {
                max: MAX_NESTING_DEPTH
            })
        );
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(AttributeValue::S("héllo".into()).size_bytes(), 6);
        assert_eq!(AttributeValue::Bool(true).size_bytes(), 1);
        // 5 significant digits: 3 bytes + 1.
        assert_eq!(AttributeValue::N(n("123.45")).size_bytes(), 4);
        // An empty list or map is 3 bytes; each element adds 1 plus its size.
        assert_eq!(AttributeValue::L(vec![]).size_bytes(), 3);
        let list = AttributeValue::L(vec![AttributeValue::Null, AttributeValue::S("ab".into())]);
        assert_eq!(list.size_bytes(), 3 + (1 + 1) + (1 + 2));
        let map = AttributeValue::M(BTreeMap::from([("k".to_string(), AttributeValue::Null)]));
        assert_eq!(map.size_bytes(), 3 + 1 + 1 + 1);
        let set = AttributeValue::string_set(["a".to_string(), "bcd".to_string()]).expect("a set");
        assert_eq!(set.size_bytes(), 4);
    }
}
