//! Updates: UpdateItem's actions as data, and their application as a pure function of the
//! current item (the DynamoDB API parses `UpdateExpression` into an [`ItemUpdate`]).
//!
//! # Semantics (DynamoDB's)
//! - Every operand reads the item as it was *before* the update, whatever the order of the
//!   actions.
//! - `SET path = value`, where a value is an operand or the sum or difference of two numbers;
//!   an operand is a path, a constant, `if_not_exists(path, operand)` or
//!   `list_append(a, b)`. Setting a list index past the end appends. A nested path's parent must
//!   exist.
//! - `REMOVE path`: removes an attribute, a map key or a list element (later elements shift);
//!   several indices of one list refer to the list before the update. Removing what is not
//!   there is not an error.
//! - `ADD path value` (top-level only): adds to a number, or unions into a set; a missing
//!   attribute starts from zero or the empty set.
//! - `DELETE path set` (top-level only): removes elements from a set; an emptied set is removed.
//! - No action may touch a key attribute, and no two actions may name overlapping paths.
//!
//! Conflict resolution is per top-level attribute (`stamped`): a change inside `a.b[2]`
//! rewrites the whole attribute `a` at the update's stamp.

use super::Item;
use super::limits::ItemError;
use super::number::NumberError;
use super::path::{AttributePath, PathSegment};
use super::value::AttributeValue;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A value SET can read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateOperand {
    /// The value at a path of the item before the update (an error when missing).
    Path(AttributePath),
    /// A constant.
    Value(AttributeValue),
    /// `if_not_exists(path, operand)`.
    IfNotExists(AttributePath, Box<UpdateOperand>),
    /// `list_append(a, b)`.
    ListAppend(Box<UpdateOperand>, Box<UpdateOperand>),
}

/// The right-hand side of a SET.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetValue {
    /// One operand.
    Operand(UpdateOperand),
    /// `a + b` of two numbers.
    Plus(UpdateOperand, UpdateOperand),
    /// `a - b` of two numbers.
    Minus(UpdateOperand, UpdateOperand),
}

/// One action of an update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateAction {
    /// `SET path = value`.
    Set {
        /// Where.
        path: AttributePath,
        /// What.
        value: SetValue,
    },
    /// `REMOVE path`.
    Remove {
        /// What.
        path: AttributePath,
    },
    /// `ADD path value`.
    Add {
        /// A top-level attribute.
        path: AttributePath,
        /// A number or a set.
        value: AttributeValue,
    },
    /// `DELETE path set`.
    Delete {
        /// A top-level attribute.
        path: AttributePath,
        /// The elements to remove.
        value: AttributeValue,
    },
}

impl UpdateAction {
    fn path(&self) -> &AttributePath {
        match self {
            UpdateAction::Set { path, .. }
            | UpdateAction::Remove { path }
            | UpdateAction::Add { path, .. }
            | UpdateAction::Delete { path, .. } => path,
        }
    }
}

/// An UpdateItem's actions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemUpdate {
    /// The actions, in any order (each reads the item before the update).
    pub actions: Vec<UpdateAction>,
}

/// Why an update cannot be applied. Messages follow DynamoDB's `ValidationException` texts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// An action names a key attribute.
    #[error("Cannot update attribute {name}. This attribute is part of the key")]
    KeyAttribute {
        /// The key attribute.
        name: String,
    },
    /// Two actions name overlapping paths.
    #[error(
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [{first}], path two: [{second}]"
    )]
    OverlappingPaths {
        /// One path.
        first: String,
        /// The other.
        second: String,
    },
    /// An operand reads a path the item does not have.
    #[error(
        "The provided expression refers to an attribute that does not exist in the item: {path}"
    )]
    MissingOperand {
        /// The path.
        path: String,
    },
    /// An operand has the wrong type for its operator or action.
    #[error("An operand in the update expression has an incorrect data type: {detail}")]
    OperandType {
        /// What was expected where.
        detail: String,
    },
    /// A nested path's parent does not exist or is not a map or list.
    #[error("The document path provided in the update expression is invalid for update: {path}")]
    InvalidPath {
        /// The path.
        path: String,
    },
    /// Arithmetic left DynamoDB's number range or precision.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// The updated item breaks a limit.
    #[error(transparent)]
    Item(#[from] ItemError),
}

/// What an update did: the new item and the top-level attributes it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// The item after the update.
    pub item: Item,
    /// Each changed top-level attribute: its new value, or `None` when removed.
    pub changes: BTreeMap<String, Option<AttributeValue>>,
}

impl ItemUpdate {
    /// Checks the constants the update carries (they arrived through a decoder): each value's
    /// own invariants, and that there is at least one action.
    pub fn check(&self) -> Result<(), ItemError> {
        if self.actions.is_empty() {
            return Err(ItemError::Malformed {
                detail: "an update needs at least one action".into(),
            });
        }
        fn operand(o: &UpdateOperand) -> Result<(), ItemError> {
            match o {
                UpdateOperand::Path(_) => Ok(()),
                UpdateOperand::Value(v) => v.check(),
                UpdateOperand::IfNotExists(_, o) => operand(o),
                UpdateOperand::ListAppend(a, b) => operand(a).and(operand(b)),
            }
        }
        for action in &self.actions {
            crate::item::check_name(action.path().attribute())?;
            match action {
                UpdateAction::Set { value, .. } => match value {
                    SetValue::Operand(o) => operand(o)?,
                    SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                        operand(a)?;
                        operand(b)?;
                    }
                },
                UpdateAction::Remove { .. } => {}
                UpdateAction::Add { value, .. } | UpdateAction::Delete { value, .. } => {
                    value.check()?
                }
            }
        }
        Ok(())
    }

    /// Applies the update to `current` (`None`: the item does not exist yet); `is_key` tells
    /// the key attributes, which no action may touch, and `key_attributes` are put into a new
    /// item (UpdateItem creates an item that does not exist).
    pub fn apply(
        &self,
        current: Option<&Item>,
        is_key: impl Fn(&str) -> bool,
        key_attributes: &[(String, AttributeValue)],
    ) -> Result<UpdateOutcome, UpdateError> {
        self.check_paths(&is_key)?;
        let before = current.cloned().unwrap_or_default();
        let mut after = before.clone().into_attributes();
        for (name, value) in key_attributes {
            after.entry(name.clone()).or_insert_with(|| value.clone());
        }
        // Removes of one list go from the highest index down, so that each names an element
        // of the list before the update.
        let mut removes: Vec<&AttributePath> = Vec::new();
        for action in &self.actions {
            match action {
                UpdateAction::Set { path, value } => {
                    let value = eval_set(value, &before)?;
                    set_path(&mut after, path, value)?;
                }
                UpdateAction::Remove { path } => removes.push(path),
                UpdateAction::Add { path, value } => {
                    let name = top_level(path)?;
                    let new = add(before.get(name), value)?;
                    after.insert(name.to_string(), new);
                }
                UpdateAction::Delete { path, value } => {
                    let name = top_level(path)?;
                    match delete_from_set(before.get(name), value)? {
                        Some(rest) => after.insert(name.to_string(), rest),
                        None => after.remove(name),
                    };
                }
            }
        }
        removes.sort_by(|a, b| compare_paths(b, a));
        for path in removes {
            remove_path(&mut after, path);
        }
        let mut changes = BTreeMap::new();
        for action in &self.actions {
            let name = action.path().attribute();
            if before.get(name) != after.get(name) {
                changes.insert(name.to_string(), after.get(name).cloned());
            }
        }
        let item = Item::new(after)?;
        Ok(UpdateOutcome { item, changes })
    }

    fn check_paths(&self, is_key: &impl Fn(&str) -> bool) -> Result<(), UpdateError> {
        for (i, action) in self.actions.iter().enumerate() {
            let path = action.path();
            if is_key(path.attribute()) {
                return Err(UpdateError::KeyAttribute {
                    name: path.attribute().to_string(),
                });
            }
            for other in &self.actions[..i] {
                if overlaps(path, other.path()) {
                    return Err(UpdateError::OverlappingPaths {
                        first: other.path().to_string(),
                        second: path.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Whether one path is the other or inside it.
fn overlaps(a: &AttributePath, b: &AttributePath) -> bool {
    a.attribute() == b.attribute() && {
        let n = a.rest().len().min(b.rest().len());
        a.rest()[..n] == b.rest()[..n]
    }
}

fn compare_paths(a: &AttributePath, b: &AttributePath) -> std::cmp::Ordering {
    let key = |p: &AttributePath| -> Vec<(u8, String, usize)> {
        p.rest()
            .iter()
            .map(|s| match s {
                PathSegment::Name(n) => (0, n.clone(), 0),
                PathSegment::Index(i) => (1, String::new(), *i),
            })
            .collect()
    };
    a.attribute()
        .cmp(b.attribute())
        .then_with(|| key(a).cmp(&key(b)))
}

fn top_level(path: &AttributePath) -> Result<&str, UpdateError> {
    if path.is_top_level() {
        Ok(path.attribute())
    } else {
        Err(UpdateError::InvalidPath {
            path: format!("{path} (ADD and DELETE take top-level attributes only)"),
        })
    }
}

fn eval_operand(operand: &UpdateOperand, item: &Item) -> Result<AttributeValue, UpdateError> {
    match operand {
        UpdateOperand::Value(value) => Ok(value.clone()),
        UpdateOperand::Path(path) => {
            path.resolve(item)
                .cloned()
                .ok_or_else(|| UpdateError::MissingOperand {
                    path: path.to_string(),
                })
        }
        UpdateOperand::IfNotExists(path, fallback) => match path.resolve(item) {
            Some(value) => Ok(value.clone()),
            None => eval_operand(fallback, item),
        },
        UpdateOperand::ListAppend(a, b) => match (eval_operand(a, item)?, eval_operand(b, item)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                Ok(AttributeValue::L(a))
            }
            (a, b) => Err(UpdateError::OperandType {
                detail: format!(
                    "list_append takes two lists, not {} and {}",
                    a.type_name(),
                    b.type_name()
                ),
            }),
        },
    }
}

fn eval_set(value: &SetValue, item: &Item) -> Result<AttributeValue, UpdateError> {
    let arithmetic = |a: &UpdateOperand, b: &UpdateOperand, sign: &str| match (
        eval_operand(a, item)?,
        eval_operand(b, item)?,
    ) {
        (AttributeValue::N(a), AttributeValue::N(b)) => Ok((a, b)),
        (a, b) => Err(UpdateError::OperandType {
            detail: format!(
                "operator {sign} takes two numbers, not {} and {}",
                a.type_name(),
                b.type_name()
            ),
        }),
    };
    match value {
        SetValue::Operand(operand) => eval_operand(operand, item),
        SetValue::Plus(a, b) => {
            let (a, b) = arithmetic(a, b, "+")?;
            Ok(AttributeValue::N(a.checked_add(&b)?))
        }
        SetValue::Minus(a, b) => {
            let (a, b) = arithmetic(a, b, "-")?;
            Ok(AttributeValue::N(a.checked_sub(&b)?))
        }
    }
}

fn add(
    current: Option<&AttributeValue>,
    value: &AttributeValue,
) -> Result<AttributeValue, UpdateError> {
    let mismatch = |current: &AttributeValue| UpdateError::OperandType {
        detail: format!(
            "ADD of {} to an attribute of type {}",
            value.type_name(),
            current.type_name()
        ),
    };
    match (current, value) {
        (
            None,
            AttributeValue::N(_)
            | AttributeValue::Ss(_)
            | AttributeValue::Ns(_)
            | AttributeValue::Bs(_),
        ) => Ok(value.clone()),
        (Some(AttributeValue::N(a)), AttributeValue::N(b)) => {
            Ok(AttributeValue::N(a.checked_add(b)?))
        }
        (Some(AttributeValue::Ss(a)), AttributeValue::Ss(b)) => {
            Ok(AttributeValue::Ss(a.union(b).cloned().collect()))
        }
        (Some(AttributeValue::Ns(a)), AttributeValue::Ns(b)) => {
            Ok(AttributeValue::Ns(a.union(b).cloned().collect()))
        }
        (Some(AttributeValue::Bs(a)), AttributeValue::Bs(b)) => {
            Ok(AttributeValue::Bs(a.union(b).cloned().collect()))
        }
        (Some(current), _) => Err(mismatch(current)),
        (None, _) => Err(UpdateError::OperandType {
            detail: format!("ADD takes a number or a set, not {}", value.type_name()),
        }),
    }
}

/// The set left after DELETE; `None` when it is emptied or was missing.
fn delete_from_set(
    current: Option<&AttributeValue>,
    value: &AttributeValue,
) -> Result<Option<AttributeValue>, UpdateError> {
    let rest = match (current, value) {
        (None, AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)) => {
            return Ok(None);
        }
        (Some(AttributeValue::Ss(a)), AttributeValue::Ss(b)) => {
            AttributeValue::Ss(a.difference(b).cloned().collect())
        }
        (Some(AttributeValue::Ns(a)), AttributeValue::Ns(b)) => {
            AttributeValue::Ns(a.difference(b).cloned().collect())
        }
        (Some(AttributeValue::Bs(a)), AttributeValue::Bs(b)) => {
            AttributeValue::Bs(a.difference(b).cloned().collect())
        }
        (current, _) => {
            return Err(UpdateError::OperandType {
                detail: format!(
                    "DELETE of {} from an attribute of type {}",
                    value.type_name(),
                    current.map_or("(none)", AttributeValue::type_name)
                ),
            });
        }
    };
    Ok((rest.check().is_ok()).then_some(rest))
}

fn set_path(
    item: &mut BTreeMap<String, AttributeValue>,
    path: &AttributePath,
    value: AttributeValue,
) -> Result<(), UpdateError> {
    let Some((last, parents)) = path.rest().split_last() else {
        item.insert(path.attribute().to_string(), value);
        return Ok(());
    };
    let invalid = || UpdateError::InvalidPath {
        path: path.to_string(),
    };
    let mut at = item.get_mut(path.attribute()).ok_or_else(invalid)?;
    for segment in parents {
        at = match (segment, at) {
            (PathSegment::Name(name), AttributeValue::M(map)) => map.get_mut(name),
            (PathSegment::Index(i), AttributeValue::L(list)) => list.get_mut(*i),
            _ => None,
        }
        .ok_or_else(invalid)?;
    }
    match (last, at) {
        (PathSegment::Name(name), AttributeValue::M(map)) => {
            map.insert(name.clone(), value);
        }
        (PathSegment::Index(i), AttributeValue::L(list)) => match list.get_mut(*i) {
            Some(slot) => *slot = value,
            None => list.push(value),
        },
        _ => return Err(invalid()),
    }
    Ok(())
}

fn remove_path(item: &mut BTreeMap<String, AttributeValue>, path: &AttributePath) {
    let Some((last, parents)) = path.rest().split_last() else {
        item.remove(path.attribute());
        return;
    };
    let Some(mut at) = item.get_mut(path.attribute()) else {
        return;
    };
    for segment in parents {
        let next = match (segment, at) {
            (PathSegment::Name(name), AttributeValue::M(map)) => map.get_mut(name),
            (PathSegment::Index(i), AttributeValue::L(list)) => list.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => return,
        }
    }
    match (last, at) {
        (PathSegment::Name(name), AttributeValue::M(map)) => {
            map.remove(name);
        }
        (PathSegment::Index(i), AttributeValue::L(list)) if *i < list.len() => {
            list.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::number::Number;

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).expect("a number"))
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_string())
    }

    fn path(name: &str) -> AttributePath {
        AttributePath::attribute_named(name)
    }

    fn item(attributes: Vec<(&str, AttributeValue)>) -> Item {
        Item::new(
            attributes
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
        .expect("an item")
    }

    fn keys() -> Vec<(String, AttributeValue)> {
        vec![("id".to_string(), s("u1"))]
    }

    fn apply(
        update: Vec<UpdateAction>,
        current: Option<&Item>,
    ) -> Result<UpdateOutcome, UpdateError> {
        ItemUpdate { actions: update }.apply(current, |name| name == "id", &keys())
    }

    fn set(name: &str, value: SetValue) -> UpdateAction {
        UpdateAction::Set {
            path: path(name),
            value,
        }
    }

    fn val(value: AttributeValue) -> UpdateOperand {
        UpdateOperand::Value(value)
    }

    #[test]
    fn an_update_creates_a_missing_item_with_its_key() {
        let outcome =
            apply(vec![set("age", SetValue::Operand(val(n("30"))))], None).expect("applies");
        assert_eq!(outcome.item, item(vec![("id", s("u1")), ("age", n("30"))]));
        assert_eq!(
            outcome.changes,
            BTreeMap::from([("age".to_string(), Some(n("30")))])
        );
    }

    #[test]
    fn counters_and_operands_read_the_item_before_the_update() {
        let before = item(vec![("id", s("u1")), ("n", n("1")), ("m", n("10"))]);
        let outcome = apply(
            vec![
                set(
                    "n",
                    SetValue::Plus(UpdateOperand::Path(path("n")), val(n("1"))),
                ),
                set("m", SetValue::Operand(UpdateOperand::Path(path("n")))),
            ],
            Some(&before),
        )
        .expect("applies");
        assert_eq!(outcome.item.get("n"), Some(&n("2")));
        assert_eq!(outcome.item.get("m"), Some(&n("1")));
        let missing = apply(
            vec![set(
                "n",
                SetValue::Plus(UpdateOperand::Path(path("x")), val(n("1"))),
            )],
            Some(&before),
        );
        assert!(matches!(missing, Err(UpdateError::MissingOperand { .. })));
        let guarded = apply(
            vec![set(
                "x",
                SetValue::Plus(
                    UpdateOperand::IfNotExists(path("x"), Box::new(val(n("0")))),
                    val(n("5")),
                ),
            )],
            Some(&before),
        )
        .expect("applies");
        assert_eq!(guarded.item.get("x"), Some(&n("5")));
    }

    #[test]
    fn add_and_delete_work_on_numbers_and_sets() {
        let tags = |items: &[&str]| {
            AttributeValue::string_set(items.iter().map(|t| t.to_string())).expect("a set")
        };
        let before = item(vec![("id", s("u1")), ("tags", tags(&["a", "b"]))]);
        let outcome = apply(
            vec![
                UpdateAction::Add {
                    path: path("tags"),
                    value: tags(&["c"]),
                },
                UpdateAction::Add {
                    path: path("count"),
                    value: n("3"),
                },
            ],
            Some(&before),
        )
        .expect("applies");
        assert_eq!(outcome.item.get("tags"), Some(&tags(&["a", "b", "c"])));
        assert_eq!(outcome.item.get("count"), Some(&n("3")));
        let emptied = apply(
            vec![UpdateAction::Delete {
                path: path("tags"),
                value: tags(&["a", "b"]),
            }],
            Some(&before),
        )
        .expect("applies");
        assert_eq!(emptied.item.get("tags"), None);
        assert_eq!(
            emptied.changes,
            BTreeMap::from([("tags".to_string(), None)])
        );
        let wrong = apply(
            vec![UpdateAction::Add {
                path: path("tags"),
                value: n("1"),
            }],
            Some(&before),
        );
        assert!(matches!(wrong, Err(UpdateError::OperandType { .. })));
    }

    #[test]
    fn nested_paths_set_and_remove() {
        let list = AttributeValue::L(vec![s("a"), s("b"), s("c"), s("d")]);
        let before = item(vec![("id", s("u1")), ("l", list)]);
        let outcome = apply(
            vec![
                UpdateAction::Remove {
                    path: path("l").index(1),
                },
                UpdateAction::Remove {
                    path: path("l").index(3),
                },
            ],
            Some(&before),
        )
        .expect("applies");
        assert_eq!(
            outcome.item.get("l"),
            Some(&AttributeValue::L(vec![s("a"), s("c")]))
        );
        let appended = apply(
            vec![UpdateAction::Set {
                path: path("l").index(99),
                value: SetValue::Operand(val(s("e"))),
            }],
            Some(&before),
        )
        .expect("applies");
        let Some(AttributeValue::L(l)) = appended.item.get("l") else {
            panic!("a list")
        };
        assert_eq!(l.last(), Some(&s("e")));
        let orphan = apply(
            vec![UpdateAction::Set {
                path: path("nothing").key("x"),
                value: SetValue::Operand(val(s("e"))),
            }],
            Some(&before),
        );
        assert!(matches!(orphan, Err(UpdateError::InvalidPath { .. })));
    }

    #[test]
    fn keys_and_overlapping_paths_are_refused() {
        let key = apply(vec![set("id", SetValue::Operand(val(s("x"))))], None);
        assert!(matches!(key, Err(UpdateError::KeyAttribute { .. })));
        let overlap = apply(
            vec![
                set("a", SetValue::Operand(val(s("x")))),
                UpdateAction::Remove {
                    path: path("a").key("b"),
                },
            ],
            None,
        );
        assert!(matches!(overlap, Err(UpdateError::OverlappingPaths { .. })));
    }

    #[test]
    fn arithmetic_outside_the_range_fails() {
        let max = "9.9999999999999999999999999999999999999E+125";
        let before = item(vec![("id", s("u1")), ("n", n(max))]);
        let outcome = apply(
            vec![set(
                "n",
                SetValue::Plus(UpdateOperand::Path(path("n")), val(n("1E+125"))),
            )],
            Some(&before),
        );
        assert!(matches!(
            outcome,
            Err(UpdateError::Number(NumberError::Overflow))
        ));
    }
}
