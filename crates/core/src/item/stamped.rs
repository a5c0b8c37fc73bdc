//! A stamped item: what one version (one DVVSet sibling) of an item stores, and the merge that
//! turns concurrent versions into one item, deterministically on every node.
//!
//! DynamoDB never returns siblings. ringstore keeps dotted version vectors underneath (they
//! decide what a write supersedes), and resolves the versions they leave concurrent as
//! Cassandra resolves cells: by write stamp ([`Stamp`], a hybrid logical clock).
//! - **PutItem** replaces the row at its stamp: the version's *floor* becomes that stamp, and
//!   every attribute it names carries it.
//! - **UpdateItem** writes only the attributes it names (a removed attribute is kept as a
//!   stamped removal, so an older concurrent value cannot come back).
//! - **DeleteItem** is a row deletion: a floor and nothing else.
//!
//! **The merge rule**: the merged item takes each attribute from its newest stamp, then drops
//! the attributes (values and removals) older than the newest floor. Concurrent updates of
//! different attributes therefore both survive; a row deletion removes what is older than it
//! and nothing newer. A write carries the merged state it read forward (a coordinator writes
//! `merge(read, own write)` with the read's context), so superseding a version never loses an
//! attribute the merge would have kept.
//!
//! Every write names the item's key attributes at its stamp, so an item exists exactly when a
//! key attribute is live (the row marker of Cassandra's rows).
//!
//! # Invariants
//! - Every attribute's stamp is at least the floor (checked after each merge, and on decode).
//! - The merge is commutative, associative and idempotent (property-tested), as replicas merge
//!   versions in any order, any number of times.
//! - Decoding checks the format byte, the invariants above and every value's own invariants.

use super::Item;
use super::limits::ItemError;
use super::stamp::Stamp;
use super::value::AttributeValue;
use crate::version::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The encoding's format byte; a future format gets a new one.
const FORMAT_V1: u8 = 1;

/// One attribute of a stamped item: its value at a stamp, or its removal at a stamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampedAttribute {
    /// The write that set or removed it.
    pub stamp: Stamp,
    /// The value; `None` when that write removed the attribute.
    pub value: Option<AttributeValue>,
}

/// An item with a stamp on every attribute (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampedItem {
    /// The newest row replacement or deletion: attributes older than it are gone.
    floor: Stamp,
    attributes: BTreeMap<String, StampedAttribute>,
}

impl Default for StampedItem {
    fn default() -> Self {
        Self::absent()
    }
}

impl StampedItem {
    /// An item never written.
    pub fn absent() -> Self {
        Self {
            floor: Stamp::ZERO,
            attributes: BTreeMap::new(),
        }
    }

    /// PutItem's own contribution: the row replaced by `item` at `stamp`.
    pub fn put(item: &Item, stamp: Stamp) -> Self {
        let attributes = item
            .attributes()
            .iter()
            .map(|(name, value)| {
                let attribute = StampedAttribute {
                    stamp,
                    value: Some(value.clone()),
                };
                (name.clone(), attribute)
            })
            .collect();
        Self {
            floor: stamp,
            attributes,
        }
    }

    /// DeleteItem's own contribution: the row deleted at `stamp`.
    pub fn delete(stamp: Stamp) -> Self {
        Self {
            floor: stamp,
            attributes: BTreeMap::new(),
        }
    }

    /// UpdateItem's own contribution: each named attribute set (`Some`) or removed (`None`) at
    /// `stamp`. `changes` must include the key attributes (the row marker).
    pub fn update(changes: BTreeMap<String, Option<AttributeValue>>, stamp: Stamp) -> Self {
        let attributes = changes
            .into_iter()
            .map(|(name, value)| (name, StampedAttribute { stamp, value }))
            .collect();
        Self {
            floor: Stamp::ZERO,
            attributes,
        }
    }

    /// The merge of every version of a key (its DVVSet siblings): data siblings decode as
    /// stamped items, item tombstones are row deletions, plain tombstones (from the key-value
    /// API, which should not reach items) delete nothing.
    pub fn from_siblings<'a>(
        values: impl IntoIterator<Item = &'a Value>,
    ) -> Result<StampedItem, ItemError> {
        let mut merged = StampedItem::absent();
        for value in values {
            match value {
                Value::Data(bytes) => merged.merge(&StampedItem::decode(bytes)?),
                Value::ItemTombstone(stamp) => merged.merge(&StampedItem::delete(*stamp)),
                Value::Tombstone => {}
            }
        }
        Ok(merged)
    }

    /// Folds `other` in by the merge rule of the module docs.
    pub fn merge(&mut self, other: &StampedItem) {
        self.floor = self.floor.max(other.floor);
        for (name, theirs) in &other.attributes {
            match self.attributes.get_mut(name) {
                Some(ours) if !newer(theirs, ours) => {}
                Some(ours) => *ours = theirs.clone(),
                None => {
                    self.attributes.insert(name.clone(), theirs.clone());
                }
            }
        }
        let floor = self.floor;
        self.attributes
            .retain(|_, attribute| attribute.stamp >= floor);
        self.check_floor();
    }

    /// The merged result of `self` and `other`.
    pub fn merged(&self, other: &StampedItem) -> StampedItem {
        let mut merged = self.clone();
        merged.merge(other);
        merged
    }

    /// The item as DynamoDB shows it: its live attributes, or `None` when it does not exist
    /// (no attribute is live). The merge of versions that were each within the size limit may
    /// exceed it; the item is returned anyway (see `docs/items.md`).
    pub fn item(&self) -> Option<Item> {
        let live: BTreeMap<String, AttributeValue> = self
            .attributes
            .iter()
            .filter_map(|(name, a)| a.value.as_ref().map(|v| (name.clone(), v.clone())))
            .collect();
        (!live.is_empty()).then(|| Item::from_merged(live))
    }

    /// Whether the item exists (some attribute is live).
    pub fn exists(&self) -> bool {
        self.attributes.values().any(|a| a.value.is_some())
    }

    /// The stamp of the newest row replacement or deletion.
    pub fn floor(&self) -> Stamp {
        self.floor
    }

    /// An attribute with its stamp (a live value or a removal), if the item records it.
    pub fn attribute(&self, name: &str) -> Option<&StampedAttribute> {
        self.attributes.get(name)
    }

    /// Every recorded attribute, by name.
    pub fn attributes(&self) -> &BTreeMap<String, StampedAttribute> {
        &self.attributes
    }

    /// The newest stamp anywhere in the item (a coordinator's clock observes it before it
    /// stamps a write that follows this read).
    pub fn newest_stamp(&self) -> Stamp {
        self.attributes
            .values()
            .map(|a| a.stamp)
            .fold(self.floor, Stamp::max)
    }

    /// The version value to store: the encoded item, or an item tombstone at the floor when
    /// nothing is live (so that tombstone collection applies).
    pub fn to_value(&self) -> Value {
        if self.exists() {
            Value::Data(self.encode())
        } else {
            Value::ItemTombstone(self.floor)
        }
    }

    /// The stored encoding: a format byte and the postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        let out = vec![FORMAT_V1];
        // Serialising into a Vec fails only on types serde cannot express; these have none.
        match postcard::to_extend(self, out) {
            Ok(bytes) => bytes,
            Err(e) => unreachable!("a stamped item always serialises: {e}"),
        }
    }

    /// Reads [`StampedItem::encode`]'s bytes, checking every invariant.
    pub fn decode(bytes: &[u8]) -> Result<StampedItem, ItemError> {
        let malformed = |detail: String| ItemError::Malformed { detail };
        let (&format, body) = bytes
            .split_first()
            .ok_or_else(|| malformed("empty item record".into()))?;
        if format != FORMAT_V1 {
            return Err(malformed(format!("unknown item format {format}")));
        }
        let item: StampedItem =
            postcard::from_bytes(body).map_err(|e| malformed(format!("item record: {e}")))?;
        for (name, attribute) in &item.attributes {
            if name.is_empty() {
                return Err(ItemError::EmptyAttributeName);
            }
            if attribute.stamp < item.floor {
                return Err(malformed(format!(
                    "attribute `{name}` is older than its row"
                )));
            }
            if let Some(value) = &attribute.value {
                value.check()?;
            }
        }
        Ok(item)
    }

    fn check_floor(&self) {
        invariant!(
            self.attributes.values().all(|a| a.stamp >= self.floor),
            "an attribute older than the floor survived a merge"
        );
    }
}

/// Whether `theirs` beats `ours`: the newer stamp; on equal stamps (one write seen twice, so
/// equal values, unless data is corrupt) the greater encoding, so the merge stays commutative.
fn newer(theirs: &StampedAttribute, ours: &StampedAttribute) -> bool {
    match theirs.stamp.cmp(&ours.stamp) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            theirs.value != ours.value
                && postcard::to_stdvec(&theirs.value).ok() > postcard::to_stdvec(&ours.value).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::ActorId;
    use proptest::prelude::*;

    fn stamp(micros: u64, actor: u64) -> Stamp {
        Stamp {
            micros,
            logical: 0,
            actor: ActorId(actor),
        }
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_string())
    }

    fn item(attributes: &[(&str, &str)]) -> Item {
        Item::new(
            attributes
                .iter()
                .map(|(k, v)| (k.to_string(), s(v)))
                .collect(),
        )
        .expect("a valid item")
    }

    fn update(changes: &[(&str, Option<&str>)], at: Stamp) -> StampedItem {
        StampedItem::update(
            changes
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(s)))
                .collect(),
            at,
        )
    }

    #[test]
    fn concurrent_updates_of_different_attributes_both_survive() {
        let base = StampedItem::put(&item(&[("id", "1"), ("a", "0"), ("b", "0")]), stamp(10, 1));
        let left = base.merged(&update(
            &[("id", Some("1")), ("a", Some("L"))],
            stamp(20, 1),
        ));
        let right = base.merged(&update(
            &[("id", Some("1")), ("b", Some("R"))],
            stamp(21, 2),
        ));
        let merged = left.merged(&right).item().expect("exists");
        assert_eq!(merged, item(&[("id", "1"), ("a", "L"), ("b", "R")]));
    }

    #[test]
    fn a_put_replaces_the_row_and_drops_older_attributes() {
        let old = update(&[("id", Some("1")), ("x", Some("old"))], stamp(10, 1));
        let put = StampedItem::put(&item(&[("id", "1"), ("y", "new")]), stamp(20, 2));
        assert_eq!(
            old.merged(&put).item(),
            Some(item(&[("id", "1"), ("y", "new")]))
        );
        // An update concurrent with the put but stamped later keeps its attribute.
        let later = update(&[("id", Some("1")), ("z", Some("later"))], stamp(30, 3));
        assert_eq!(
            old.merged(&put).merged(&later).item(),
            Some(item(&[("id", "1"), ("y", "new"), ("z", "later")]))
        );
    }

    #[test]
    fn a_row_deletion_drops_older_attributes_and_keeps_newer_ones() {
        let before = StampedItem::put(&item(&[("id", "1"), ("a", "x")]), stamp(10, 1));
        let deleted = before.merged(&StampedItem::delete(stamp(20, 2)));
        assert_eq!(deleted.item(), None);
        assert_eq!(deleted.to_value(), Value::ItemTombstone(stamp(20, 2)));
        let newer = update(&[("id", Some("1")), ("b", Some("y"))], stamp(30, 3));
        assert_eq!(
            deleted.merged(&newer).item(),
            Some(item(&[("id", "1"), ("b", "y")]))
        );
        let older = update(&[("id", Some("1")), ("c", Some("z"))], stamp(15, 3));
        assert_eq!(deleted.merged(&older).item(), None);
    }

    #[test]
    fn a_removal_beats_an_older_value_in_a_concurrent_version() {
        let base = StampedItem::put(&item(&[("id", "1"), ("a", "x")]), stamp(10, 1));
        let removed = base.merged(&update(&[("id", Some("1")), ("a", None)], stamp(20, 1)));
        assert_eq!(removed.merged(&base).item(), Some(item(&[("id", "1")])));
    }

    #[test]
    fn siblings_resolve_through_their_values() {
        let a = StampedItem::put(&item(&[("id", "1"), ("a", "x")]), stamp(10, 1));
        let values = [
            a.to_value(),
            Value::ItemTombstone(stamp(5, 2)),
            Value::Tombstone,
        ];
        assert_eq!(StampedItem::from_siblings(values.iter()), Ok(a.clone()));
        let later = [a.to_value(), Value::ItemTombstone(stamp(50, 2))];
        assert_eq!(
            StampedItem::from_siblings(later.iter()).map(|i| i.exists()),
            Ok(false)
        );
    }

    #[test]
    fn decoding_refuses_what_breaks_an_invariant() {
        let good = StampedItem::put(&item(&[("id", "1")]), stamp(10, 1));
        assert_eq!(StampedItem::decode(&good.encode()), Ok(good.clone()));
        let mut bad = good.clone();
        bad.floor = stamp(11, 1);
        assert!(matches!(
            StampedItem::decode(&bad.encode()),
            Err(ItemError::Malformed { .. })
        ));
        let mut wrong_format = good.encode();
        wrong_format[0] = 9;
        assert!(matches!(
            StampedItem::decode(&wrong_format),
            Err(ItemError::Malformed { .. })
        ));
        assert!(StampedItem::decode(&[]).is_err());
    }

    fn arbitrary_stamped() -> impl Strategy<Value = StampedItem> {
        let write = (
            0u64..6,
            0u64..3,
            0usize..3,
            proptest::collection::btree_map(
                prop_oneof![Just("id"), Just("a"), Just("b"), Just("c")].prop_map(String::from),
                proptest::option::of("[xy]").prop_map(|v| v.map(AttributeValue::S)),
                0..4,
            ),
        );
        proptest::collection::vec(write, 1..5).prop_map(|writes| {
            let mut merged = StampedItem::absent();
            for (micros, actor, kind, changes) in writes {
                let at = stamp(micros, actor);
                let own = match kind {
                    0 => StampedItem::delete(at),
                    1 => StampedItem::update(changes, at),
                    _ => {
                        let live = changes.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
                        match Item::new(live.collect()) {
                            Ok(item) => StampedItem::put(&item, at),
                            Err(_) => StampedItem::delete(at),
                        }
                    }
                };
                merged.merge(&own);
            }
            merged
        })
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(
            a in arbitrary_stamped(), b in arbitrary_stamped(), c in arbitrary_stamped()
        ) {
            prop_assert_eq!(a.merged(&b), b.merged(&a));
            prop_assert_eq!(a.merged(&b).merged(&c), a.merged(&b.merged(&c)));
            prop_assert_eq!(a.merged(&a), a.clone());
            prop_assert_eq!(StampedItem::decode(&a.encode()), Ok(a.clone()));
        }
    }
}
