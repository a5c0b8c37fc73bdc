//! The table catalog: every table the cluster has, as a state-based CRDT that nodes gossip and
//! persist (`docs/items.md`).
//!
//! A table's incarnation is a [`TableId`], drawn at creation. The catalog maps ids to records;
//! merging two catalogs is the union of their records, a record merged with itself field by
//! field (deletion wins, settings by their stamp). Names are not keys: two nodes on either side
//! of a partition may both create `users`. After they merge, the name belongs to the record
//! created first (by stamp, then id): the same answer on every node. The other incarnation is
//! *superseded*: its requests are refused and its data is removed like a deleted table's, never
//! mixed into the winner's (its items live under another id).
//!
//! # Invariants
//! - Merge is commutative, associative and idempotent (property-tested): nodes may exchange
//!   catalogs in any order, any number of times.
//! - A deleted record stays (a tombstone): a stale catalog merged later cannot bring the table
//!   back, and a table created again under the name gets a new id, so it starts empty.
//! - At most one live record owns a name ([`Catalog::live`]).

use crate::item::{KeySchema, Stamp, TableId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most tables one catalog holds, deleted ones included (DynamoDB's default quota is 2,500
/// tables per region; the catalog travels whole in gossip).
pub const MAX_TABLES: usize = 2500;

/// A table's settings that may change after creation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSettings {
    /// The read quorum of the table's requests; `None`: the node's default.
    pub r: Option<u8>,
    /// The write quorum; `None`: the node's default.
    pub w: Option<u8>,
    /// Tags (DynamoDB's `Tags`): name to value.
    pub tags: BTreeMap<String, String>,
}

/// One table incarnation as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRecord {
    /// The table's name.
    pub name: String,
    /// Its incarnation.
    pub id: TableId,
    /// Its key schema, fixed at creation.
    pub schema: KeySchema,
    /// When it was created (the name goes to the earliest).
    pub created: Stamp,
    /// Its settings, and the stamp of the change that set them (the newest wins).
    pub settings: TableSettings,
    /// The stamp of the settings.
    pub settings_stamp: Stamp,
    /// When it was deleted, if it was.
    pub deleted: Option<Stamp>,
}

impl TableRecord {
    fn merge(&mut self, other: &TableRecord) {
        // Stamps are unique per change; the tie-break keeps merge commutative even on a
        // duplicate (corrupt) one.
        let newer = match other.settings_stamp.cmp(&self.settings_stamp) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                postcard::to_stdvec(&other.settings).ok() > postcard::to_stdvec(&self.settings).ok()
            }
        };
        if newer {
            self.settings = other.settings.clone();
            self.settings_stamp = other.settings_stamp;
        }
        self.deleted = match (self.deleted, other.deleted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// The order in which records claim a name: the earliest creation, then the lower id.
    fn claim(&self) -> (Stamp, TableId) {
        (self.created, self.id)
    }
}

/// Why a catalog change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A live table already has the name.
    #[error("table already exists: {name}")]
    Exists {
        /// The name.
        name: String,
    },
    /// No live table has the name.
    #[error("requested resource not found: table {name}")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The catalog holds [`MAX_TABLES`] records.
    #[error("the catalog holds {max} tables, the limit")]
    Full {
        /// The limit.
        max: usize,
    },
    /// The name breaks DynamoDB's rule: 3 to 255 characters of `a-z A-Z 0-9 _ - .`.
    #[error("table name `{name}` must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'")]
    BadName {
        /// The name.
        name: String,
    },
}

/// Every table incarnation the cluster has had.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    records: BTreeMap<TableId, TableRecord>,
}

/// Checks a table name against DynamoDB's rule.
pub fn check_table_name(name: &str) -> Result<(), CatalogError> {
    let valid = (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(CatalogError::BadName {
            name: name.chars().take(300).collect(),
        })
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a table created here. `id` and `created` come from the node (its RNG and clock).
    pub fn create(
        &mut self,
        name: &str,
        schema: KeySchema,
        settings: TableSettings,
        id: TableId,
        created: Stamp,
    ) -> Result<&TableRecord, CatalogError> {
        check_table_name(name)?;
        if self.live(name).is_some() {
            return Err(CatalogError::Exists {
                name: name.to_string(),
            });
        }
        if self.records.len() >= MAX_TABLES {
            return Err(CatalogError::Full { max: MAX_TABLES });
        }
        let record = TableRecord {
            name: name.to_string(),
            id,
            schema,
            created,
            settings,
            settings_stamp: created,
            deleted: None,
        };
        Ok(self.records.entry(id).or_insert(record))
    }

    /// Marks the live table `name` deleted at `at`; returns its record.
    pub fn delete(&mut self, name: &str, at: Stamp) -> Result<TableRecord, CatalogError> {
        let id = self.live_id(name)?;
        let record = self.records.get_mut(&id).ok_or_else(|| not_found(name))?;
        record.deleted = Some(at);
        Ok(record.clone())
    }

    /// Replaces the settings of the live table `name` (a change stamped `at`).
    pub fn update_settings(
        &mut self,
        name: &str,
        settings: TableSettings,
        at: Stamp,
    ) -> Result<&TableRecord, CatalogError> {
        let id = self.live_id(name)?;
        let record = self.records.get_mut(&id).ok_or_else(|| not_found(name))?;
        if at > record.settings_stamp {
            record.settings = settings;
            record.settings_stamp = at;
        }
        Ok(record)
    }

    /// The live table that owns `name`: a record with that name that is neither deleted nor
    /// superseded.
    pub fn live(&self, name: &str) -> Option<&TableRecord> {
        self.records
            .values()
            .filter(|r| r.name == name && r.deleted.is_none() && !self.is_superseded(r))
            .min_by_key(|r| r.claim())
    }

    /// Whether `record` was created while an earlier-claimed record of its name was not yet
    /// deleted: two concurrent creations, of which it lost. A loser stays dead, even after the
    /// winner is deleted (its data is gone by then); a creation after the deletion is a new
    /// table, not a loser.
    fn is_superseded(&self, record: &TableRecord) -> bool {
        self.records.values().any(|other| {
            other.name == record.name
                && other.claim() < record.claim()
                && other.deleted.is_none_or(|deleted| deleted > record.created)
        })
    }

    fn live_id(&self, name: &str) -> Result<TableId, CatalogError> {
        self.live(name).map(|r| r.id).ok_or_else(|| not_found(name))
    }

    /// The record of an incarnation, live or not.
    pub fn get(&self, id: TableId) -> Option<&TableRecord> {
        self.records.get(&id)
    }

    /// Whether an incarnation's data must go: it was deleted, or it lost its name to an earlier
    /// creation. An id the catalog does not know is not dead (its creation may not have arrived
    /// yet).
    pub fn is_dead(&self, id: TableId) -> bool {
        match self.records.get(&id) {
            None => false,
            Some(record) => record.deleted.is_some() || self.is_superseded(record),
        }
    }

    /// The live tables, by name.
    pub fn live_tables(&self) -> impl Iterator<Item = &TableRecord> {
        let mut live: Vec<&TableRecord> = self
            .records
            .values()
            .filter(|r| !self.is_dead(r.id))
            .collect();
        live.sort_by(|a, b| a.name.cmp(&b.name));
        live.into_iter()
    }

    /// Every record, live or not.
    pub fn records(&self) -> impl Iterator<Item = &TableRecord> {
        self.records.values()
    }

    /// Folds `other` in; returns whether anything changed. Records beyond [`MAX_TABLES`] are
    /// ignored (a peer cannot grow the catalog without bound).
    pub fn merge(&mut self, other: &Catalog) -> bool {
        let mut changed = false;
        for (id, theirs) in &other.records {
            let room = self.records.len() < MAX_TABLES;
            match self.records.get_mut(id) {
                Some(ours) => {
                    let before = ours.clone();
                    ours.merge(theirs);
                    changed |= *ours != before;
                }
                None if room => {
                    self.records.insert(*id, theirs.clone());
                    changed = true;
                }
                None => {}
            }
        }
        changed
    }

    /// Whether the catalog has no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

fn not_found(name: &str) -> CatalogError {
    CatalogError::NotFound {
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::KeyType;
    use crate::version::ActorId;
    use proptest::prelude::*;

    fn stamp(micros: u64) -> Stamp {
        Stamp {
            micros,
            logical: 0,
            actor: ActorId(1),
        }
    }

    fn schema() -> KeySchema {
        KeySchema::partition_only("id", KeyType::S)
    }

    fn created(name: &str, id: u64, at: u64) -> Catalog {
        let mut catalog = Catalog::new();
        catalog
            .create(
                name,
                schema(),
                TableSettings::default(),
                TableId(id),
                stamp(at),
            )
            .expect("created");
        catalog
    }

    #[test]
    fn a_name_has_one_live_table() {
        let mut catalog = created("users", 1, 10);
        let again = catalog.create(
            "users",
            schema(),
            TableSettings::default(),
            TableId(2),
            stamp(20),
        );
        assert!(matches!(again, Err(CatalogError::Exists { .. })));
        catalog.delete("users", stamp(30)).expect("deleted");
        assert!(catalog.live("users").is_none());
        assert!(catalog.is_dead(TableId(1)));
        catalog
            .create(
                "users",
                schema(),
                TableSettings::default(),
                TableId(3),
                stamp(40),
            )
            .expect("created again, under a new id");
        assert_eq!(catalog.live("users").map(|r| r.id), Some(TableId(3)));
    }

    #[test]
    fn concurrent_creations_resolve_to_the_earliest_everywhere() {
        let left = created("users", 5, 10);
        let right = created("users", 4, 20);
        let mut a = left.clone();
        a.merge(&right);
        let mut b = right.clone();
        b.merge(&left);
        assert_eq!(a, b);
        assert_eq!(a.live("users").map(|r| r.id), Some(TableId(5)));
        assert!(a.is_dead(TableId(4)), "the loser's data must go");
        assert!(
            !a.is_dead(TableId(99)),
            "an unknown id may be a creation still in flight"
        );
    }

    #[test]
    fn a_loser_stays_dead_after_the_winner_is_deleted() {
        let mut catalog = created("users", 5, 10);
        catalog.merge(&created("users", 4, 20));
        catalog.delete("users", stamp(30)).expect("deleted");
        assert!(catalog.live("users").is_none());
        assert!(catalog.is_dead(TableId(4)));
    }

    #[test]
    fn a_stale_catalog_does_not_bring_a_deleted_table_back() {
        let before = created("users", 1, 10);
        let mut after = before.clone();
        after.delete("users", stamp(20)).expect("deleted");
        after.merge(&before);
        assert!(after.live("users").is_none());
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["ab", "has space", &"x".repeat(256)] {
            let mut catalog = Catalog::new();
            let result = catalog.create(
                name,
                schema(),
                TableSettings::default(),
                TableId(1),
                stamp(1),
            );
            assert!(
                matches!(result, Err(CatalogError::BadName { .. })),
                "{name}"
            );
        }
    }

    fn arbitrary_catalog() -> impl Strategy<Value = Catalog> {
        let op = (0u64..4, 0u64..3, 0u64..50, 0u8..3);
        proptest::collection::vec(op, 0..8).prop_map(|ops| {
            let mut catalog = Catalog::new();
            for (id, name, at, kind) in ops {
                // One id, one creation: ids are random 64-bit values in a cluster.
                let id = id * 1000 + name * 100 + at;
                let name = format!("t{name}x");
                match kind {
                    0 => {
                        let _ = catalog.create(
                            &name,
                            schema(),
                            TableSettings::default(),
                            TableId(id),
                            stamp(at),
                        );
                    }
                    1 => {
                        let _ = catalog.delete(&name, stamp(at));
                    }
                    _ => {
                        let settings = TableSettings {
                            r: Some(1 + (at % 3) as u8),
                            ..TableSettings::default()
                        };
                        let _ = catalog.update_settings(&name, settings, stamp(at));
                    }
                }
            }
            catalog
        })
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(
            a in arbitrary_catalog(), b in arbitrary_catalog(), c in arbitrary_catalog()
        ) {
            let merged = |x: &Catalog, y: &Catalog| { let mut m = x.clone(); m.merge(y); m };
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            prop_assert_eq!(merged(&a, &a), a.clone());
        }
    }
}
