//! Conditions: what a conditional write requires of the item it replaces, and what a query or
//! scan filter keeps, with DynamoDB's semantics for every comparator and function.
//!
//! The DynamoDB API parses `ConditionExpression` and `FilterExpression` into a [`Condition`];
//! the core evaluates it at the coordinator against the merged item its read found.
//!
//! # Semantics (DynamoDB's)
//! - `=` and `<>` compare any two values (different types are unequal); `<`, `<=`, `>`, `>=`
//!   and `BETWEEN` compare numbers numerically and strings and binaries byte by byte, and are
//!   false for any other pair, or when an operand is missing. A missing operand is unequal to
//!   everything (`<>` is true).
//! - `begins_with` on strings and binaries; `contains` on strings (substring), sets (element)
//!   and lists (an equal element); `size` of strings and binaries (bytes), sets, lists and maps
//!   (elements); `attribute_type` against a type descriptor (`S`, `N`, ..., `BS`).
//! - An absent item has no attributes: `attribute_not_exists(pk)` holds, any comparison on it
//!   fails.

use super::Item;
use super::number::Number;
use super::path::AttributePath;
use super::value::AttributeValue;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A value a condition compares: an attribute of the item, a constant, or a size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operand {
    /// The value at a path of the item (missing when there is none).
    Path(AttributePath),
    /// A constant (an expression attribute value).
    Value(AttributeValue),
    /// `size(path)`: a number, missing when the path is missing or has no size.
    Size(AttributePath),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A condition on an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// `left op right`.
    Compare {
        /// Left operand.
        left: Operand,
        /// The comparator.
        op: Comparator,
        /// Right operand.
        right: Operand,
    },
    /// `value BETWEEN low AND high` (both ends included).
    Between {
        /// The value tested.
        value: Operand,
        /// Lower bound.
        low: Operand,
        /// Upper bound.
        high: Operand,
    },
    /// `value IN (list)`.
    In {
        /// The value tested.
        value: Operand,
        /// The candidates.
        list: Vec<Operand>,
    },
    /// `attribute_exists(path)`.
    Exists(AttributePath),
    /// `attribute_not_exists(path)`.
    NotExists(AttributePath),
    /// `attribute_type(path, type)`: the value at `path` has DynamoDB type `type_name`.
    HasType {
        /// The attribute.
        path: AttributePath,
        /// `S`, `N`, `B`, `BOOL`, `NULL`, `M`, `L`, `SS`, `NS` or `BS`.
        type_name: String,
    },
    /// `begins_with(path, prefix)`.
    BeginsWith {
        /// The string or binary attribute.
        path: AttributePath,
        /// The prefix.
        prefix: Operand,
    },
    /// `contains(path, operand)`.
    Contains {
        /// The string, set or list attribute.
        path: AttributePath,
        /// What it must contain.
        operand: Operand,
    },
    /// Both hold.
    And(Box<Condition>, Box<Condition>),
    /// Either holds.
    Or(Box<Condition>, Box<Condition>),
    /// It does not hold.
    Not(Box<Condition>),
}

impl Condition {
    /// Whether the condition holds for `item` (`None`: the item does not exist).
    pub fn holds(&self, item: Option<&Item>) -> bool {
        match self {
            Condition::Compare { left, op, right } => {
                compare(eval(left, item).as_ref(), *op, eval(right, item).as_ref())
            }
            Condition::Between { value, low, high } => {
                let value = eval(value, item);
                compare(value.as_ref(), Comparator::Ge, eval(low, item).as_ref())
                    && compare(value.as_ref(), Comparator::Le, eval(high, item).as_ref())
            }
            Condition::In { value, list } => {
                let value = eval(value, item);
                list.iter().any(|candidate| {
                    compare(
                        value.as_ref(),
                        Comparator::Eq,
                        eval(candidate, item).as_ref(),
                    )
                })
            }
            Condition::Exists(path) => item.and_then(|i| path.resolve(i)).is_some(),
            Condition::NotExists(path) => item.and_then(|i| path.resolve(i)).is_none(),
            Condition::HasType { path, type_name } => item
                .and_then(|i| path.resolve(i))
                .is_some_and(|v| v.type_name() == type_name),
            Condition::BeginsWith { path, prefix } => {
                let value = item.and_then(|i| path.resolve(i));
                match (value, eval(prefix, item)) {
                    (Some(AttributeValue::S(s)), Some(AttributeValue::S(p))) => s.starts_with(&p),
                    (Some(AttributeValue::B(b)), Some(AttributeValue::B(p))) => b.starts_with(&p),
                    _ => false,
                }
            }
            Condition::Contains { path, operand } => {
                let value = item.and_then(|i| path.resolve(i));
                match (value, eval(operand, item)) {
                    (Some(value), Some(operand)) => contains(value, &operand),
                    _ => false,
                }
            }
            Condition::And(a, b) => a.holds(item) && b.holds(item),
            Condition::Or(a, b) => a.holds(item) || b.holds(item),
            Condition::Not(a) => !a.holds(item),
        }
    }
}

/// An operand's value for `item` (owned: `size` makes a new number).
fn eval(operand: &Operand, item: Option<&Item>) -> Option<AttributeValue> {
    match operand {
        Operand::Value(value) => Some(value.clone()),
        Operand::Path(path) => item.and_then(|i| path.resolve(i)).cloned(),
        Operand::Size(path) => {
            let value = item.and_then(|i| path.resolve(i))?;
            size_of(value).map(|n| AttributeValue::N(Number::from_i64(n)))
        }
    }
}

/// `size()` of a value: bytes of a string or binary, elements of a set, list or map.
pub fn size_of(value: &AttributeValue) -> Option<i64> {
    let len = match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(set) => set.len(),
        AttributeValue::Ns(set) => set.len(),
        AttributeValue::Bs(set) => set.len(),
        AttributeValue::L(list) => list.len(),
        AttributeValue::M(map) => map.len(),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => return None,
    };
    i64::try_from(len).ok()
}

/// DynamoDB's ordering of two scalars of one type: numbers numerically, strings and binaries
/// byte by byte; `None` for any other pair.
pub fn order(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare(left: Option<&AttributeValue>, op: Comparator, right: Option<&AttributeValue>) -> bool {
    let (Some(left), Some(right)) = (left, right) else {
        return op == Comparator::Ne;
    };
    match op {
        Comparator::Eq => left == right,
        Comparator::Ne => left != right,
        Comparator::Lt => order(left, right) == Some(Ordering::Less),
        Comparator::Le => matches!(order(left, right), Some(Ordering::Less | Ordering::Equal)),
        Comparator::Gt => order(left, right) == Some(Ordering::Greater),
        Comparator::Ge => matches!(
            order(left, right),
            Some(Ordering::Greater | Ordering::Equal)
        ),
    }
}

fn contains(value: &AttributeValue, operand: &AttributeValue) -> bool {
    match (value, operand) {
        (AttributeValue::S(s), AttributeValue::S(sub)) => s.contains(sub.as_str()),
        (AttributeValue::Ss(set), AttributeValue::S(s)) => set.contains(s),
        (AttributeValue::Ns(set), AttributeValue::N(n)) => set.contains(n),
        (AttributeValue::Bs(set), AttributeValue::B(b)) => set.iter().any(|e| e.as_slice() == b),
        (AttributeValue::L(list), operand) => list.contains(operand),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).expect("a number"))
    }

    fn path(name: &str) -> AttributePath {
        AttributePath::attribute_named(name)
    }

    fn item() -> Item {
        Item::new(BTreeMap::from([
            ("id".to_string(), AttributeValue::S("u1".into())),
            ("age".to_string(), n("30")),
            (
                "tags".to_string(),
                AttributeValue::string_set(["a".into(), "b".into()]).expect("set"),
            ),
            ("name".to_string(), AttributeValue::S("John Doe".into())),
        ]))
        .expect("an item")
    }

    fn cmp(name: &str, op: Comparator, value: AttributeValue) -> Condition {
        Condition::Compare {
            left: Operand::Path(path(name)),
            op,
            right: Operand::Value(value),
        }
    }

    #[test]
    fn comparisons_follow_dynamodb() {
        let item = item();
        let item = Some(&item);
        assert!(cmp("age", Comparator::Eq, n("30.0")).holds(item));
        assert!(cmp("age", Comparator::Lt, n("100")).holds(item));
        // Ordering across types is false both ways; equality across types is false.
        assert!(!cmp("age", Comparator::Lt, AttributeValue::S("z".into())).holds(item));
        assert!(!cmp("age", Comparator::Ge, AttributeValue::S("z".into())).holds(item));
        assert!(cmp("age", Comparator::Ne, AttributeValue::S("30".into())).holds(item));
        // A missing attribute: only `<>` holds.
        assert!(!cmp("missing", Comparator::Eq, n("1")).holds(item));
        assert!(cmp("missing", Comparator::Ne, n("1")).holds(item));
        assert!(!cmp("missing", Comparator::Lt, n("1")).holds(item));
        let between = Condition::Between {
            value: Operand::Path(path("age")),
            low: Operand::Value(n("30")),
            high: Operand::Value(n("31")),
        };
        assert!(between.holds(item));
    }

    #[test]
    fn functions_follow_dynamodb() {
        let item = item();
        let item = Some(&item);
        let begins = Condition::BeginsWith {
            path: path("name"),
            prefix: Operand::Value(AttributeValue::S("John".into())),
        };
        assert!(begins.holds(item));
        let contains_tag = Condition::Contains {
            path: path("tags"),
            operand: Operand::Value(AttributeValue::S("b".into())),
        };
        assert!(contains_tag.holds(item));
        let size = Condition::Compare {
            left: Operand::Size(path("tags")),
            op: Comparator::Eq,
            right: Operand::Value(n("2")),
        };
        assert!(size.holds(item));
        let typed = Condition::HasType {
            path: path("tags"),
            type_name: "SS".into(),
        };
        assert!(typed.holds(item));
    }

    #[test]
    fn an_absent_item_has_no_attributes() {
        let create_once = Condition::NotExists(path("id"));
        assert!(create_once.holds(None));
        assert!(!create_once.holds(Some(&item())));
        assert!(!cmp("age", Comparator::Eq, n("30")).holds(None));
        let either = Condition::Or(
            Box::new(Condition::Exists(path("id"))),
            Box::new(Condition::Not(Box::new(cmp("age", Comparator::Eq, n("1"))))),
        );
        assert!(either.holds(None));
    }
}
