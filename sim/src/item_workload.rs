//! The item workload: simulated clients that use the core's DynamoDB item operations
//! (GetItem, PutItem, UpdateItem, DeleteItem) instead of the key-value API.
//!
//! This module owns the fixed tables the clients write, the numbering of their items, the
//! operation mix, and the values writes carry. There is no table catalog in the core yet, so
//! the tables are constants and every request names its table's id and schema itself.
//!
//! - Two tables: [`SIMPLE`] (partition key `pk`, a string) and [`SORTED`] (partition key `pk`
//!   and sort key `sk`, a number). The item space is small (by default 4 partitions, and 3
//!   sort keys each in the sorted table: 16 items), so that writers collide.
//! - Items are numbered `0..items()`: first the simple table's partitions, then the sorted
//!   table's (partition, sort) pairs. Checkers and reports use the number; [`ItemWorkload::label`]
//!   names it.
//! - Queries ([`QueryShape`]) read one partition of [`SORTED`]: the whole partition or a
//!   `Between` / `Ge` / `Lt` sort-key range ([`SortRange`]), either direction, sometimes a small
//!   limit; [`ItemWorkload::items_in`] names the items a range holds.
//! - Every value a write sets is the string `w<id>`, where `id` is the write's unique id (the
//!   kv workload's ids, from the same counter), so a value read back names the write that set
//!   it, and so does an attribute of a converged item.
//!
//! # Invariants
//! - [`ItemWorkload::key`] and [`ItemWorkload::index_of`] are inverse on `0..items()`.
//! - With both query weights zero, [`ItemWorkload::next_op`] draws as it did before queries
//!   existed (older item runs stay bit-identical).
//! - Writes name attributes from the pool `a0..a{attributes-1}` only; key attributes are never
//!   updated (DynamoDB refuses it).

use rand::{Rng, RngExt};
use ringstore_core::item::update::{SetValue, UpdateOperand};
use ringstore_core::item::{
    AttributePath, AttributeValue, Condition, Item, ItemKey, ItemUpdate, KeySchema, KeyType,
    KeyValue, Number, PrimaryKey, TableId, UpdateAction,
};
use ringstore_core::request::{
    ClientOp, ClientRequest, ItemAction, ItemRequest, QueryRequest, SortKeyCondition, TableRef,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The table with a partition key only.
pub const SIMPLE: TableId = TableId(0x51);

/// The table with a partition and a sort key.
pub const SORTED: TableId = TableId(0x52);

/// The partition key attribute of both tables.
pub const PARTITION_KEY: &str = "pk";

/// The sort key attribute of [`SORTED`].
pub const SORT_KEY: &str = "sk";

/// Weights of the item operations (normalised).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemMix {
    /// Eventually consistent GetItem.
    pub get: f64,
    /// Consistent GetItem (a majority of the home replicas).
    pub consistent_get: f64,
    /// PutItem of 1–3 attributes, unconditional.
    pub put: f64,
    /// UpdateItem setting 1–2 attributes.
    pub update: f64,
    /// DeleteItem, unconditional.
    pub delete: f64,
    /// PutItem with `attribute_not_exists(pk)`: create once.
    pub create: f64,
    /// Eventually consistent Query of the sorted table (see [`QueryShape`]).
    pub query: f64,
    /// Consistent Query of the sorted table (a majority of the partition's home replicas).
    pub consistent_query: f64,
}

impl Default for ItemMix {
    fn default() -> Self {
        Self {
            get: 0.2,
            consistent_get: 0.2,
            put: 0.15,
            update: 0.3,
            delete: 0.05,
            create: 0.1,
            query: 0.05,
            consistent_query: 0.05,
        }
    }
}

/// The item workload (a scenario's `[workload.items]` table): when present, every client
/// operation is an item operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemWorkload {
    /// Partition key values per table (`p0`, `p1`, ...).
    pub partitions: u64,
    /// Sort key values per partition of the sorted table (`0`, `1`, ...).
    pub sorts: u64,
    /// The attribute pool writes draw from: `a0..a{attributes-1}`.
    pub attributes: u8,
    /// The operation mix.
    pub mix: ItemMix,
}

impl Default for ItemWorkload {
    fn default() -> Self {
        Self {
            partitions: 4,
            sorts: 3,
            attributes: 6,
            mix: ItemMix::default(),
        }
    }
}

/// An item workload that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ItemWorkloadError {
    /// No partitions, sort keys or attributes.
    #[error("items: {0} must be greater than zero")]
    Zero(&'static str),
    /// The mix has no positive weight, or a negative one.
    #[error("items: the operation mix needs non-negative weights with a positive sum")]
    BadMix,
}

/// What an item client does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemOpKind {
    /// Eventually consistent GetItem.
    Get,
    /// Consistent GetItem.
    ConsistentGet,
    /// Unconditional PutItem.
    Put,
    /// UpdateItem.
    Update,
    /// Unconditional DeleteItem.
    Delete,
    /// PutItem with `attribute_not_exists(pk)`.
    Create,
    /// Eventually consistent Query, followed page by page.
    Query,
    /// Consistent Query, followed page by page.
    ConsistentQuery,
}

impl ItemOpKind {
    /// The name the run's counters use.
    pub fn name(self) -> &'static str {
        match self {
            ItemOpKind::Get => "get-item",
            ItemOpKind::ConsistentGet => "consistent-get-item",
            ItemOpKind::Put => "put-item",
            ItemOpKind::Update => "update-item",
            ItemOpKind::Delete => "delete-item",
            ItemOpKind::Create => "create-item",
            ItemOpKind::Query => "query",
            ItemOpKind::ConsistentQuery => "consistent-query",
        }
    }

    /// Whether it writes.
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            ItemOpKind::Get
                | ItemOpKind::ConsistentGet
                | ItemOpKind::Query
                | ItemOpKind::ConsistentQuery
        )
    }

    /// Whether it replaces the row (its stamp is a floor: PutItem and DeleteItem).
    pub fn replaces_row(self) -> bool {
        matches!(
            self,
            ItemOpKind::Put | ItemOpKind::Delete | ItemOpKind::Create
        )
    }
}

impl ItemWorkload {
    /// Checks the counts and the mix.
    pub fn validate(&self) -> Result<(), ItemWorkloadError> {
        if self.partitions == 0 {
            return Err(ItemWorkloadError::Zero("partitions"));
        }
        if self.sorts == 0 {
            return Err(ItemWorkloadError::Zero("sorts"));
        }
        if self.attributes == 0 {
            return Err(ItemWorkloadError::Zero("attributes"));
        }
        let m = &self.mix;
        let weights = [
            m.get,
            m.consistent_get,
            m.put,
            m.update,
            m.delete,
            m.create,
            m.query,
            m.consistent_query,
        ];
        let all_valid = weights.iter().all(|w| w.is_finite() && *w >= 0.0);
        if !all_valid || weights.iter().sum::<f64>() <= 0.0 {
            return Err(ItemWorkloadError::BadMix);
        }
        Ok(())
    }

    /// How many items the clients address.
    pub fn items(&self) -> u64 {
        self.partitions
            .saturating_add(self.partitions.saturating_mul(self.sorts))
    }

    /// The attribute pool, in order.
    pub fn attribute_names(&self) -> Vec<String> {
        (0..self.attributes).map(|i| format!("a{i}")).collect()
    }

    /// Whether the clients query (and the run ends with the query check, `world/query_check.rs`).
    pub fn queries_on(&self) -> bool {
        self.mix.query > 0.0 || self.mix.consistent_query > 0.0
    }

    /// Draws the next operation. With both query weights zero this draws exactly as before
    /// queries existed (the query entries come last, and adding 0.0 changes no sum), so older
    /// item runs stay bit-identical.
    pub fn next_op<R: Rng + ?Sized>(&self, rng: &mut R) -> ItemOpKind {
        let m = &self.mix;
        let weighted = [
            (m.get, ItemOpKind::Get),
            (m.consistent_get, ItemOpKind::ConsistentGet),
            (m.put, ItemOpKind::Put),
            (m.update, ItemOpKind::Update),
            (m.delete, ItemOpKind::Delete),
            (m.query, ItemOpKind::Query),
            (m.consistent_query, ItemOpKind::ConsistentQuery),
        ];
        let total = weighted.iter().map(|(w, _)| w).sum::<f64>() + m.create;
        let mut x = rng.random_range(0.0..total);
        for (w, kind) in weighted {
            if x < w {
                return kind;
            }
            x -= w;
        }
        ItemOpKind::Create
    }

    /// Draws an item number in `0..items()` (uniform).
    pub fn next_item<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        rng.random_range(0..self.items())
    }

    /// Draws `min..=max` distinct attribute names of the pool (fewer if the pool is smaller),
    /// in pool order.
    pub fn draw_attributes<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        min: usize,
        max: usize,
    ) -> Vec<String> {
        let pool = usize::from(self.attributes);
        let count = rng.random_range(min..=max).min(pool);
        let mut chosen: Vec<usize> = Vec::with_capacity(count);
        while chosen.len() < count {
            let i = rng.random_range(0..pool);
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        chosen.into_iter().map(|i| format!("a{i}")).collect()
    }

    /// The table and primary key of item `index` (`None` outside `0..items()`).
    pub fn key(&self, index: u64) -> Option<ItemKey> {
        let partition = |p: u64| KeyValue::S(format!("p{p}"));
        if index < self.partitions {
            return Some(ItemKey {
                table: SIMPLE,
                key: PrimaryKey {
                    partition: partition(index),
                    sort: None,
                },
            });
        }
        let j = index - self.partitions;
        if j >= self.partitions.saturating_mul(self.sorts) {
            return None;
        }
        let sort = i64::try_from(j % self.sorts).ok()?;
        Some(ItemKey {
            table: SORTED,
            key: PrimaryKey {
                partition: partition(j / self.sorts),
                sort: Some(KeyValue::N(Number::from_i64(sort))),
            },
        })
    }

    /// The number of an item key made by [`ItemWorkload::key`].
    pub fn index_of(&self, key: &ItemKey) -> Option<u64> {
        let KeyValue::S(text) = &key.key.partition else {
            return None;
        };
        let p: u64 = text.strip_prefix('p')?.parse().ok()?;
        if p >= self.partitions {
            return None;
        }
        let index = match (key.table, &key.key.sort) {
            (SIMPLE, None) => p,
            (SORTED, Some(KeyValue::N(n))) => {
                let s = (0..self.sorts)
                    .find(|&s| i64::try_from(s).is_ok_and(|s| Number::from_i64(s) == *n))?;
                self.partitions + p * self.sorts + s
            }
            _ => return None,
        };
        (self.key(index).as_ref() == Some(key)).then_some(index)
    }

    /// A readable name of item `index`: `simple/p2`, `sorted/p1/0`.
    pub fn label(&self, index: u64) -> String {
        match self.key(index) {
            Some(ItemKey { table, key }) => {
                let table = if table == SIMPLE { "simple" } else { "sorted" };
                let partition = match &key.partition {
                    KeyValue::S(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                match &key.sort {
                    Some(KeyValue::N(n)) => format!("{table}/{partition}/{n}"),
                    Some(other) => format!("{table}/{partition}/{other:?}"),
                    None => format!("{table}/{partition}"),
                }
            }
            None => format!("item-{index}"),
        }
    }

    /// The table an item lives in, as a request names it.
    pub fn table_ref(table: TableId) -> TableRef {
        if table == SIMPLE {
            TableRef {
                name: "simple".into(),
                schema: KeySchema::partition_only(PARTITION_KEY, KeyType::S),
            }
        } else {
            TableRef {
                name: "sorted".into(),
                schema: KeySchema::partition_only(PARTITION_KEY, KeyType::S)
                    .with_sort(SORT_KEY, KeyType::N),
            }
        }
    }

    /// An item request on item `index` (`None` outside `0..items()`).
    pub fn request(&self, index: u64, action: ItemAction) -> Option<ClientRequest> {
        let key = self.key(index)?;
        let table = Self::table_ref(key.table);
        Some(ClientRequest::new(ClientOp::Item(Box::new(ItemRequest {
            table,
            key,
            action,
        }))))
    }

    /// The item PutItem writes for write `id`: the key attributes and each of `attributes` set
    /// to the write's value (`None` outside `0..items()`).
    pub fn put_item(&self, index: u64, id: u64, attributes: &[String]) -> Option<Item> {
        let key = self.key(index)?;
        let schema = Self::table_ref(key.table).schema;
        let mut all: BTreeMap<String, AttributeValue> =
            schema.key_attributes(&key.key).into_iter().collect();
        for name in attributes {
            all.insert(name.clone(), value_of(id));
        }
        Item::new(all).ok()
    }
}

/// Which sort keys of a partition a query asks for (the workload's sort keys are the numbers
/// `0..sorts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortRange {
    /// The whole partition (no sort-key condition).
    All,
    /// `sk BETWEEN a AND b` (both included).
    Between(i64, i64),
    /// `sk >= a`.
    Ge(i64),
    /// `sk < a`.
    Lt(i64),
}

impl SortRange {
    /// The core's condition for it.
    pub fn condition(self) -> Option<SortKeyCondition> {
        let n = |v: i64| KeyValue::N(Number::from_i64(v));
        match self {
            SortRange::All => None,
            SortRange::Between(a, b) => Some(SortKeyCondition::Between(n(a), n(b))),
            SortRange::Ge(a) => Some(SortKeyCondition::Ge(n(a))),
            SortRange::Lt(a) => Some(SortKeyCondition::Lt(n(a))),
        }
    }

    /// Whether sort key `sort` lies in it.
    pub fn contains(self, sort: i64) -> bool {
        match self {
            SortRange::All => true,
            SortRange::Between(a, b) => a <= sort && sort <= b,
            SortRange::Ge(a) => sort >= a,
            SortRange::Lt(a) => sort < a,
        }
    }
}

impl std::fmt::Display for SortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SortRange::All => write!(f, "all sort keys"),
            SortRange::Between(a, b) => write!(f, "sk between {a} and {b}"),
            SortRange::Ge(a) => write!(f, "sk >= {a}"),
            SortRange::Lt(a) => write!(f, "sk < {a}"),
        }
    }
}

/// One query of the sorted table: a partition, a sort-key range, a direction and a page limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryShape {
    /// The partition number (`p<partition>`).
    pub partition: u64,
    /// The sort keys.
    pub range: SortRange,
    /// Ascending sort-key order (`false`: descending).
    pub forward: bool,
    /// Items per page (`None`: the core's page bound, a whole partition here).
    pub limit: Option<u32>,
    /// Read a majority of the partition's home replicas.
    pub consistent: bool,
}

impl ItemWorkload {
    /// Draws a query: a partition uniformly; the whole partition half of the time, else a
    /// `Between`, `Ge` or `Lt` range over `0..=sorts`; either direction; a limit of 1 or 2 a
    /// third of the time.
    pub fn draw_query<R: Rng + ?Sized>(&self, rng: &mut R, consistent: bool) -> QueryShape {
        let partition = rng.random_range(0..self.partitions);
        let top = i64::try_from(self.sorts).unwrap_or(i64::MAX);
        let range = match rng.random_range(0..6u8) {
            0..=2 => SortRange::All,
            3 => {
                let a = rng.random_range(0..=top);
                SortRange::Between(a, rng.random_range(a..=top))
            }
            4 => SortRange::Ge(rng.random_range(0..=top)),
            _ => SortRange::Lt(rng.random_range(0..=top)),
        };
        let forward = rng.random_bool(0.5);
        let limit = (rng.random_range(0..3u8) == 0).then(|| rng.random_range(1..=2u32));
        QueryShape {
            partition,
            range,
            forward,
            limit,
            consistent,
        }
    }

    /// The item numbers of partition `partition` of the sorted table whose sort key lies in
    /// `range`, in ascending sort-key order, with their sort keys.
    pub fn items_in(&self, partition: u64, range: SortRange) -> Vec<(u64, i64)> {
        (0..self.sorts)
            .filter_map(|s| {
                let sort = i64::try_from(s).ok()?;
                let index = self
                    .partitions
                    .checked_add(partition.checked_mul(self.sorts)?)?
                    .checked_add(s)?;
                range.contains(sort).then_some((index, sort))
            })
            .collect()
    }

    /// A readable name of a sorted partition: `sorted/p1`.
    pub fn partition_label(partition: u64) -> String {
        format!("sorted/p{partition}")
    }

    /// The Query request for `shape`, continuing after `start_after`.
    pub fn query_request(
        &self,
        shape: &QueryShape,
        start_after: Option<PrimaryKey>,
    ) -> QueryRequest {
        QueryRequest {
            table: Self::table_ref(SORTED),
            table_id: SORTED,
            partition: KeyValue::S(format!("p{}", shape.partition)),
            sort: shape.range.condition(),
            forward: shape.forward,
            limit: shape.limit,
            start_after,
            consistent: shape.consistent,
            filter: None,
        }
    }
}

/// The update that sets each of `attributes` to write `id`'s value.
pub fn set_update(id: u64, attributes: &[String]) -> ItemUpdate {
    ItemUpdate {
        actions: attributes
            .iter()
            .map(|name| UpdateAction::Set {
                path: AttributePath::attribute_named(name.clone()),
                value: SetValue::Operand(UpdateOperand::Value(value_of(id))),
            })
            .collect(),
    }
}

/// The create-once condition: `attribute_not_exists(pk)`.
pub fn create_once() -> Condition {
    Condition::NotExists(AttributePath::attribute_named(PARTITION_KEY))
}

/// The value every attribute write `id` sets carries: `w<id>`.
pub fn value_of(id: u64) -> AttributeValue {
    AttributeValue::S(format!("w{id}"))
}

/// A value as reports show it: a string as itself, a number in plain notation, anything else
/// in its debug form.
pub fn show(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(text) => text.clone(),
        AttributeValue::N(number) => number.to_string(),
        other => format!("{other:?}"),
    }
}

/// The write id a value names, if it is one of ours.
pub fn write_of(value: &AttributeValue) -> Option<u64> {
    match value {
        AttributeValue::S(text) => text.strip_prefix('w')?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn item_numbers_and_keys_are_inverse_and_requests_are_valid() {
        let w = ItemWorkload::default();
        assert_eq!(w.items(), 16);
        for index in 0..w.items() {
            let key = w.key(index).expect("in range");
            assert_eq!(w.index_of(&key), Some(index), "{}", w.label(index));
            let item = w.put_item(index, 7, &["a1".into()]).expect("valid");
            let schema = ItemWorkload::table_ref(key.table).schema;
            assert_eq!(schema.key_of(&item).as_ref(), Ok(&key.key));
        }
        assert_eq!(w.key(w.items()), None);
        assert_eq!(w.label(0), "simple/p0");
        // The sorted table follows the 4 simple items: partition 1, sort 2.
        assert_eq!(w.label(4 + 3 + 2), "sorted/p1/2");
        assert_eq!(write_of(&value_of(123)), Some(123));
        assert_eq!(write_of(&AttributeValue::S("p1".into())), None);
    }

    #[test]
    fn the_mix_and_the_attribute_draws_behave_as_configured() {
        let seed = 5;
        println!("seed {seed}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w = ItemWorkload::default();
        w.validate().expect("valid");
        let n = 20_000;
        let updates = (0..n)
            .filter(|_| w.next_op(&mut rng) == ItemOpKind::Update)
            .count();
        // 0.3 of a mix summing to 1.1.
        assert!(
            (updates as f64 / n as f64 - 0.3 / 1.1).abs() < 0.02,
            "{updates}"
        );
        for _ in 0..1000 {
            let names = w.draw_attributes(&mut rng, 1, 2);
            assert!((1..=2).contains(&names.len()));
            assert!(names.windows(2).all(|p| p[0] < p[1]), "{names:?}");
        }
        let bad = ItemWorkload {
            attributes: 0,
            ..ItemWorkload::default()
        };
        assert_eq!(bad.validate(), Err(ItemWorkloadError::Zero("attributes")));
    }

    #[test]
    fn zero_query_weights_draw_as_before_and_query_ranges_name_their_items() {
        let seed = 9;
        println!("seed {seed}");
        let mut with = ItemWorkload::default();
        with.mix.query = 0.0;
        with.mix.consistent_query = 0.0;
        assert!(!with.queries_on());
        // The mix before queries existed, drawn by hand: the same thresholds, the same draws.
        let m = with.mix.clone();
        let mut a = ChaCha8Rng::seed_from_u64(seed);
        let mut b = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..5000 {
            // `next_op` as it was before queries existed.
            let weighted = [
                (m.get, ItemOpKind::Get),
                (m.consistent_get, ItemOpKind::ConsistentGet),
                (m.put, ItemOpKind::Put),
                (m.update, ItemOpKind::Update),
                (m.delete, ItemOpKind::Delete),
            ];
            let total = weighted.iter().map(|(w, _)| w).sum::<f64>() + m.create;
            let mut x = b.random_range(0.0..total);
            let mut by_hand = ItemOpKind::Create;
            for (w, kind) in weighted {
                if x < w {
                    by_hand = kind;
                    break;
                }
                x -= w;
            }
            let drawn = with.next_op(&mut a);
            assert_eq!(drawn, by_hand);
            assert!(!matches!(
                drawn,
                ItemOpKind::Query | ItemOpKind::ConsistentQuery
            ));
        }
        let w = ItemWorkload::default();
        assert!(w.queries_on());
        // Partition 1 of the sorted table starts at item 4 + 3 = 7.
        assert_eq!(w.items_in(1, SortRange::All), vec![(7, 0), (8, 1), (9, 2)]);
        assert_eq!(
            w.items_in(1, SortRange::Between(1, 5)),
            vec![(8, 1), (9, 2)]
        );
        assert_eq!(w.items_in(0, SortRange::Ge(3)), vec![]);
        assert_eq!(w.items_in(3, SortRange::Lt(1)), vec![(13, 0)]);
        assert_eq!(w.label(13), "sorted/p3/0");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..200 {
            let shape = w.draw_query(&mut rng, true);
            assert!(shape.partition < w.partitions);
            let q = w.query_request(&shape, None);
            assert_eq!(q.sort, shape.range.condition());
            assert!(shape.limit.is_none_or(|l| (1..=2).contains(&l)));
        }
    }
}
