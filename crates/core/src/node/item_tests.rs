//! Scenario tests of item operations (`items`): several nodes in the in-memory harness.

use crate::NodeId;
use crate::harness::{Cluster, fast_config};
use crate::item::condition::{Comparator, Operand};
use crate::item::update::{SetValue, UpdateOperand};
use crate::item::{
    AttributePath, AttributeValue, Condition, Item, ItemKey, ItemUpdate, KeySchema, KeyType,
    KeyValue, Number, PrimaryKey, TableId, UpdateAction,
};
use crate::request::{
    ClientOp, ClientReply, ClientRequest, ClientResult, ItemAction, ItemRequest, RequestError,
    TableRef,
};
use crate::store::Store;
use std::collections::BTreeMap;
use std::time::Duration;

const TABLE: TableId = TableId(7);

fn schema() -> KeySchema {
    KeySchema::partition_only("user", KeyType::S).with_sort("at", KeyType::N)
}

fn key(user: &str, at: i64) -> ItemKey {
    ItemKey {
        table: TABLE,
        key: PrimaryKey {
            partition: KeyValue::S(user.to_string()),
            sort: Some(KeyValue::N(Number::from_i64(at))),
        },
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(Number::from_i64(value))
}

fn item(user: &str, at: i64, rest: &[(&str, AttributeValue)]) -> Item {
    let mut attributes = BTreeMap::from([("user".to_string(), s(user)), ("at".to_string(), n(at))]);
    for (name, value) in rest {
        attributes.insert(name.to_string(), value.clone());
    }
    Item::new(attributes).expect("a valid item")
}

fn request(key: ItemKey, action: ItemAction) -> ClientRequest {
    ClientRequest::new(ClientOp::Item(Box::new(ItemRequest {
        table: TableRef {
            name: "events".into(),
            schema: schema(),
        },
        key,
        action,
    })))
}

fn put(item: Item, condition: Option<Condition>) -> ItemAction {
    ItemAction::Put { item, condition }
}

fn set(name: &str, value: AttributeValue) -> ItemAction {
    ItemAction::Update {
        update: ItemUpdate {
            actions: vec![UpdateAction::Set {
                path: AttributePath::attribute_named(name),
                value: SetValue::Operand(UpdateOperand::Value(value)),
            }],
        },
        condition: None,
    }
}

fn get(consistent: bool) -> ItemAction {
    ItemAction::Get { consistent }
}

fn run(c: &mut Cluster, at: u64, request: ClientRequest) -> ClientResult {
    c.request(NodeId(at), request).expect("the node answers")
}

fn read_item(c: &mut Cluster, at: u64, key: ItemKey, consistent: bool) -> Option<Item> {
    match run(c, at, request(key, get(consistent))) {
        Ok(ClientReply::Item(item)) => item,
        other => panic!("GetItem failed: {other:?}"),
    }
}

fn assert_written(result: ClientResult) {
    assert!(
        matches!(result, Ok(ClientReply::ItemWritten { .. })),
        "write failed: {result:?}"
    );
}

fn cluster() -> Cluster {
    let mut c = Cluster::new(5, fast_config()).expect("a cluster");
    c.run_for(Duration::from_secs(3));
    c
}

#[test]
fn a_put_item_is_read_back_through_any_node() {
    let mut c = cluster();
    let stored = item("u1", 1, &[("name", s("John Doe")), ("age", n(30))]);
    assert_written(run(
        &mut c,
        1,
        request(key("u1", 1), put(stored.clone(), None)),
    ));
    for at in 1..=5 {
        assert_eq!(
            read_item(&mut c, at, key("u1", 1), true),
            Some(stored.clone())
        );
    }
    assert_eq!(read_item(&mut c, 2, key("u1", 2), false), None);
}

#[test]
fn a_partition_shares_one_preference_list() {
    let c = cluster();
    let ring = c.node(1).and_then(|n| n.ring()).expect("a ring");
    let first = ring.preference_list(&key("u1", 1).encode(), 3);
    for at in [2, -5, 1_000_000] {
        let other = ring.preference_list(&key("u1", at).encode(), 3);
        assert_eq!(
            first.iter().collect::<Vec<_>>(),
            other.iter().collect::<Vec<_>>()
        );
    }
}

#[test]
fn concurrent_updates_of_different_attributes_both_survive() {
    let mut c = cluster();
    let k = key("u2", 1);
    assert_written(run(
        &mut c,
        1,
        request(k.clone(), put(item("u2", 1, &[]), None)),
    ));
    let replicas: Vec<NodeId> = {
        let ring = c.node(1).and_then(|n| n.ring()).expect("a ring");
        ring.preference_list(&k.encode(), 3).iter().collect()
    };
    // Two home replicas coordinate one update each, both reading before either writes: their
    // versions are concurrent (siblings), and the merge keeps each one's attribute.
    let left = c
        .submit(replicas[0], request(k.clone(), set("colour", s("red"))))
        .expect("submitted");
    let right = c
        .submit(replicas[1], request(k.clone(), set("size", n(9))))
        .expect("submitted");
    c.run_for(Duration::from_secs(1));
    assert_written(c.take_reply(left).expect("answered"));
    assert_written(c.take_reply(right).expect("answered"));
    let siblings = c
        .node(replicas[2])
        .and_then(|node| node.store().get(&k.encode()).ok().flatten())
        .map(|set| set.sibling_count());
    assert_eq!(siblings, Some(2), "the two updates were not concurrent");
    let merged = read_item(&mut c, 3, k.clone(), true).expect("the item exists");
    assert_eq!(
        merged,
        item("u2", 1, &[("colour", s("red")), ("size", n(9))])
    );
}

#[test]
fn a_create_once_put_fails_the_second_time() {
    let mut c = cluster();
    let create_once = Some(Condition::NotExists(AttributePath::attribute_named("user")));
    let first = item("u3", 1, &[("v", n(1))]);
    assert_written(run(
        &mut c,
        1,
        request(key("u3", 1), put(first.clone(), create_once.clone())),
    ));
    let second = item("u3", 1, &[("v", n(2))]);
    let result = run(&mut c, 2, request(key("u3", 1), put(second, create_once)));
    assert_eq!(
        result,
        Err(RequestError::ConditionFailed {
            item: Some(first.clone())
        })
    );
    assert_eq!(read_item(&mut c, 3, key("u3", 1), true), Some(first));
}

#[test]
fn counters_count_through_every_coordinator() {
    let mut c = cluster();
    let k = key("u4", 1);
    for i in 0..10 {
        let add = ItemAction::Update {
            update: ItemUpdate {
                actions: vec![UpdateAction::Add {
                    path: AttributePath::attribute_named("hits"),
                    value: n(1),
                }],
            },
            condition: None,
        };
        assert_written(run(&mut c, 1 + i % 5, request(k.clone(), add)));
    }
    let counted = read_item(&mut c, 1, k, true).expect("the item exists");
    assert_eq!(counted.get("hits"), Some(&n(10)));
}

#[test]
fn a_conditional_update_sees_the_value_it_compares() {
    let mut c = cluster();
    let k = key("u5", 1);
    assert_written(run(
        &mut c,
        1,
        request(k.clone(), put(item("u5", 1, &[("version", n(1))]), None)),
    ));
    let bump = |expected: i64| ItemAction::Update {
        update: ItemUpdate {
            actions: vec![UpdateAction::Set {
                path: AttributePath::attribute_named("version"),
                value: SetValue::Plus(
                    UpdateOperand::Path(AttributePath::attribute_named("version")),
                    UpdateOperand::Value(n(1)),
                ),
            }],
        },
        condition: Some(Condition::Compare {
            left: Operand::Path(AttributePath::attribute_named("version")),
            op: Comparator::Eq,
            right: Operand::Value(n(expected)),
        }),
    };
    assert_written(run(&mut c, 2, request(k.clone(), bump(1))));
    let stale = run(&mut c, 3, request(k.clone(), bump(1)));
    assert!(
        matches!(stale, Err(RequestError::ConditionFailed { .. })),
        "{stale:?}"
    );
    assert_written(run(&mut c, 4, request(k.clone(), bump(2))));
    let read = read_item(&mut c, 5, k, true).expect("the item exists");
    assert_eq!(read.get("version"), Some(&n(3)));
}

#[test]
fn a_deleted_item_is_gone_and_a_later_update_recreates_it() {
    let mut c = cluster();
    let k = key("u6", 1);
    assert_written(run(
        &mut c,
        1,
        request(k.clone(), put(item("u6", 1, &[("a", n(1))]), None)),
    ));
    assert_written(run(
        &mut c,
        2,
        request(k.clone(), ItemAction::Delete { condition: None }),
    ));
    assert_eq!(read_item(&mut c, 3, k.clone(), true), None);
    assert_written(run(&mut c, 4, request(k.clone(), set("b", n(2)))));
    // The attribute from before the deletion stays gone.
    assert_eq!(
        read_item(&mut c, 5, k, true),
        Some(item("u6", 1, &[("b", n(2))]))
    );
}

#[test]
fn requests_that_break_the_schema_or_the_limits_are_refused() {
    let mut c = cluster();
    // The item's key attributes do not match the request's key.
    let result = run(
        &mut c,
        1,
        request(key("u7", 1), put(item("u7", 2, &[]), None)),
    );
    assert!(
        matches!(result, Err(RequestError::InvalidItem { .. })),
        "{result:?}"
    );
    // A key of the wrong type for the schema.
    let mut wrong = key("u7", 1);
    wrong.key.partition = KeyValue::N(Number::from_i64(1));
    let result = run(&mut c, 1, request(wrong, get(false)));
    assert!(
        matches!(result, Err(RequestError::InvalidItem { .. })),
        "{result:?}"
    );
    // A key-value key posing as an item key.
    let result = run(&mut c, 1, ClientRequest::get(vec![0xFF, 0x01, 0x02]));
    assert_eq!(result, Err(RequestError::ReservedKey));
    // An update that touches the key.
    let result = run(&mut c, 1, request(key("u7", 1), set("user", s("x"))));
    assert!(
        matches!(result, Err(RequestError::InvalidUpdate { .. })),
        "{result:?}"
    );
}
