//! Scenario tests of item operations (`items`): several nodes in the in-memory harness.

use crate::NodeId;
use crate::catalog::{TableRecord, TableSettings};
use crate::harness::{Cluster, fast_config};
use crate::item::condition::{Comparator, Operand};
use crate::item::key::partition_prefix;
use crate::item::update::{SetValue, UpdateOperand};
use crate::item::{
    AttributePath, AttributeValue, Condition, Item, ItemKey, ItemUpdate, KeySchema, KeyType,
    KeyValue, Number, PrimaryKey, TableId, UpdateAction,
};
use crate::protocol::KeyBound;
use crate::request::{
    BatchOutcome, BatchRequest, ClientOp, ClientReply, ClientRequest, ClientResult, ItemAction,
    ItemRequest, QueryRequest, RequestError, ScanRequest, SortKeyCondition, TableDescription,
    TableRef, TableRequest, TableStatus,
};
use crate::ring::TokenRange;
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

// --- Tables: the catalog ---

fn table_op(c: &mut Cluster, at: u64, request: TableRequest) -> ClientResult {
    run(c, at, ClientRequest::new(ClientOp::Table(request)))
}

fn create(c: &mut Cluster, at: u64, name: &str) -> TableDescription {
    let request = TableRequest::Create {
        name: name.to_string(),
        schema: schema(),
        settings: TableSettings::default(),
    };
    match table_op(c, at, request) {
        Ok(ClientReply::Table(description)) => description,
        other => panic!("CreateTable failed: {other:?}"),
    }
}

fn describe(c: &mut Cluster, at: u64, name: &str) -> ClientResult {
    table_op(
        c,
        at,
        TableRequest::Describe {
            name: name.to_string(),
        },
    )
}

/// An item request on the table `record` describes.
fn on_table(record: &TableRecord, user: &str, action: ItemAction) -> ClientRequest {
    let mut k = key(user, 1);
    k.table = record.id;
    let mut request = request(k, action);
    if let ClientOp::Item(item) = &mut request.op {
        item.table.name = record.name.clone();
    }
    request
}

/// Every store's keys of table `id`, over all nodes.
fn stored_keys_of(c: &Cluster, id: TableId) -> usize {
    c.nodes()
        .map(|(_, node)| {
            let page = node
                .store()
                .scan(TokenRange::full(), None, 100_000)
                .expect("a scan");
            page.entries
                .iter()
                .filter(|e| crate::item::key::table_of(&e.key) == Some(id))
                .count()
        })
        .sum()
}

#[test]
fn a_created_table_reaches_every_node_and_becomes_active() {
    let mut c = cluster();
    let created = create(&mut c, 1, "users");
    assert_eq!(created.status, TableStatus::Creating);
    let again = TableRequest::Create {
        name: "users".into(),
        schema: schema(),
        settings: TableSettings::default(),
    };
    assert!(matches!(
        table_op(&mut c, 1, again),
        Err(RequestError::TableExists { .. })
    ));
    c.run_for(Duration::from_secs(3));
    for at in 1..=5 {
        match describe(&mut c, at, "users") {
            Ok(ClientReply::Table(d)) => {
                assert_eq!(d.record, created.record, "node {at}");
                assert_eq!(d.status, TableStatus::Active, "node {at}");
            }
            other => panic!("node {at}: {other:?}"),
        }
    }
    for name in ["alpha", "beta", "gamma"] {
        create(&mut c, 2, name);
    }
    let page = table_op(
        &mut c,
        3,
        TableRequest::List {
            start_after: None,
            limit: Some(2),
        },
    );
    assert_eq!(
        page,
        Ok(ClientReply::TableList {
            names: vec!["alpha".into(), "beta".into()],
            last: Some("beta".into())
        })
    );
    let rest = TableRequest::List {
        start_after: Some("beta".into()),
        limit: Some(2),
    };
    assert_eq!(
        table_op(&mut c, 2, rest),
        Ok(ClientReply::TableList {
            names: vec!["gamma".into(), "users".into()],
            last: None
        })
    );
}

#[test]
fn concurrent_creations_on_both_sides_of_a_partition_resolve_to_one_table() {
    let mut c = cluster();
    c.partition(&[
        vec![NodeId(1), NodeId(2)],
        vec![NodeId(3), NodeId(4), NodeId(5)],
    ]);
    let left = create(&mut c, 1, "orders");
    c.run_for(Duration::from_millis(10));
    let right = create(&mut c, 4, "orders");
    assert_ne!(left.record.id, right.record.id);
    // Each side writes an item to its own incarnation.
    assert_written(run(
        &mut c,
        2,
        on_table(&left.record, "l", put_on(&left.record, "l")),
    ));
    assert_written(run(
        &mut c,
        3,
        on_table(&right.record, "r", put_on(&right.record, "r")),
    ));
    c.heal();
    c.run_for(Duration::from_secs(3));
    // The earlier creation owns the name everywhere; the other incarnation takes no request.
    for at in 1..=5 {
        match describe(&mut c, at, "orders") {
            Ok(ClientReply::Table(d)) => assert_eq!(d.record.id, left.record.id, "node {at}"),
            other => panic!("node {at}: {other:?}"),
        }
    }
    let refused = run(&mut c, 5, on_table(&right.record, "r", get(true)));
    assert!(
        matches!(refused, Err(RequestError::TableNotFound { .. })),
        "{refused:?}"
    );
    assert!(read_item(&mut c, 5, with_table(&left.record, "l"), true).is_some());
}

#[test]
fn a_deleted_table_s_data_is_removed_and_never_comes_back() {
    let mut config = fast_config();
    config.tombstone_gc_interval = Duration::from_millis(200);
    config.anti_entropy_interval = Duration::from_millis(300);
    let mut c = Cluster::new(5, config).expect("a cluster");
    c.run_for(Duration::from_secs(3));
    let table = create(&mut c, 1, "sessions").record;
    c.run_for(Duration::from_secs(1));
    for user in ["a", "b", "c", "d", "e", "f"] {
        assert_written(run(&mut c, 1, on_table(&table, user, put_on(&table, user))));
    }
    assert!(stored_keys_of(&c, table.id) >= 6 * 3);
    // One node is cut off while the table is deleted: it keeps its copies for a while, and
    // anti-entropy, hints and read repair must not spread them back.
    c.isolate(NodeId(5), true);
    assert!(matches!(
        table_op(
            &mut c,
            2,
            TableRequest::Delete {
                name: "sessions".into()
            }
        ),
        Ok(ClientReply::Table(TableDescription {
            status: TableStatus::Deleting,
            ..
        }))
    ));
    assert!(matches!(
        describe(&mut c, 3, "sessions"),
        Err(RequestError::TableNotFound { .. })
    ));
    c.run_for(Duration::from_secs(3));
    c.isolate(NodeId(5), false);
    c.run_for(Duration::from_secs(5));
    assert_eq!(
        stored_keys_of(&c, table.id),
        0,
        "a deleted table's keys survived"
    );
    // A table created again under the name starts empty.
    let again = create(&mut c, 4, "sessions").record;
    assert_ne!(again.id, table.id);
    assert_eq!(read_item(&mut c, 2, with_table(&again, "a"), true), None);
}

#[test]
fn a_table_s_quorums_apply_to_its_requests() {
    let mut c = cluster();
    let table = create(&mut c, 1, "tuned").record;
    let settings = TableSettings {
        r: Some(3),
        w: Some(3),
        ..TableSettings::default()
    };
    let update = TableRequest::Update {
        name: "tuned".into(),
        settings,
    };
    assert!(matches!(
        table_op(&mut c, 1, update),
        Ok(ClientReply::Table(_))
    ));
    c.run_for(Duration::from_secs(1));
    // With W = 3 a write fails while one replica is cut off (and no fallback may count).
    let k = with_table(&table, "u");
    let replicas: Vec<NodeId> = {
        let ring = c.node(1).and_then(|n| n.ring()).expect("a ring");
        ring.preference_list(&k.encode(), 3).iter().collect()
    };
    // Only two home replicas can talk: the node's default W of 2 would succeed, the table's
    // W of 3 must not (no fallback is reachable either).
    let coordinator = replicas[0];
    for node in 1..=5 {
        let node = NodeId(node);
        if node != replicas[0] && node != replicas[1] {
            c.isolate(node, true);
        }
    }
    let result = c
        .request(
            coordinator,
            on_table(&table, "u", ItemAction::Delete { condition: None }),
        )
        .expect("an answer");
    assert!(
        matches!(result, Err(RequestError::Quorum { needed: 3, .. })),
        "{result:?}"
    );
    c.heal();
    let bad = TableRequest::Update {
        name: "tuned".into(),
        settings: TableSettings {
            r: Some(4),
            ..TableSettings::default()
        },
    };
    assert!(matches!(
        table_op(&mut c, 1, bad),
        Err(RequestError::InvalidQuorum { .. })
    ));
}

fn with_table(record: &TableRecord, user: &str) -> ItemKey {
    let mut k = key(user, 1);
    k.table = record.id;
    k
}

fn put_on(record: &TableRecord, user: &str) -> ItemAction {
    let _ = record;
    put(item(user, 1, &[("v", s(user))]), None)
}

// --- Queries ---

fn query_request(partition: &str, sort: Option<SortKeyCondition>, forward: bool) -> QueryRequest {
    QueryRequest {
        table: TableRef {
            name: "events".into(),
            schema: schema(),
        },
        table_id: TABLE,
        partition: KeyValue::S(partition.to_string()),
        sort,
        forward,
        limit: None,
        start_after: None,
        consistent: true,
        filter: None,
    }
}

fn query(c: &mut Cluster, at: u64, q: QueryRequest) -> (Vec<i64>, Option<PrimaryKey>) {
    match run(c, at, ClientRequest::new(ClientOp::Query(Box::new(q)))) {
        Ok(ClientReply::Items { items, last, .. }) => {
            let sorts = items
                .iter()
                .map(|i| match i.get("at") {
                    Some(AttributeValue::N(n)) => n.to_string().parse().expect("an integer"),
                    other => panic!("{other:?}"),
                })
                .collect();
            (sorts, last)
        }
        other => panic!("Query failed: {other:?}"),
    }
}

fn fill_partition(c: &mut Cluster, via: NodeId, user: &str, sorts: impl IntoIterator<Item = i64>) {
    for at in sorts {
        let stored = item(user, at, &[("v", n(at * 10))]);
        let written = c.request(via, request(key(user, at), put(stored, None)));
        assert_written(written.expect("an answer"));
    }
}

#[test]
fn a_query_returns_its_partition_in_sort_key_order_in_pages() {
    let mut c = cluster();
    fill_partition(&mut c, NodeId(1), "p", [5, -3, 0, 12, 7, 1, 2, 3]);
    fill_partition(&mut c, NodeId(1), "other", [1, 2]);
    let (all, last) = query(&mut c, 2, query_request("p", None, true));
    assert_eq!(all, vec![-3, 0, 1, 2, 3, 5, 7, 12]);
    assert_eq!(last, None);
    let (reversed, _) = query(&mut c, 3, query_request("p", None, false));
    assert_eq!(reversed, vec![12, 7, 5, 3, 2, 1, 0, -3]);
    let between = SortKeyCondition::Between(
        KeyValue::N(Number::from_i64(0)),
        KeyValue::N(Number::from_i64(5)),
    );
    assert_eq!(
        query(&mut c, 4, query_request("p", Some(between), true)).0,
        vec![0, 1, 2, 3, 5]
    );
    let below = SortKeyCondition::Lt(KeyValue::N(Number::from_i64(1)));
    assert_eq!(
        query(&mut c, 5, query_request("p", Some(below), false)).0,
        vec![0, -3]
    );
    // Pages of three, each continuing after the previous one's last item.
    let mut pages = Vec::new();
    let mut start_after = None;
    loop {
        let mut q = query_request("p", None, true);
        q.limit = Some(3);
        q.start_after = start_after.clone();
        let (page, last) = query(&mut c, 1, q);
        pages.push(page);
        match last {
            Some(last) => start_after = Some(last),
            None => break,
        }
    }
    assert_eq!(pages.concat(), all);
    assert!(pages.iter().all(|p| p.len() <= 3));
    // The filter applies after the limit.
    let mut filtered = query_request("p", None, true);
    filtered.limit = Some(4);
    filtered.filter = Some(Condition::Compare {
        left: Operand::Path(AttributePath::attribute_named("v")),
        op: Comparator::Gt,
        right: Operand::Value(n(0)),
    });
    assert_eq!(query(&mut c, 1, filtered).0, vec![1, 2]);
}

#[test]
fn a_query_merges_its_replicas_and_repairs_the_stale_one() {
    query_merge_scenario(false);
}

#[test]
#[should_panic(expected = "left: 0")]
fn a_query_answered_by_one_replica_misses_what_it_lacks() {
    query_merge_scenario(true);
}

fn query_merge_scenario(one_replica: bool) {
    let mut config = fast_config();
    config.sabotage.no_hint_replay = true;
    config.sabotage.query_one_replica = one_replica;
    let mut c = Cluster::new(5, config).expect("a cluster");
    c.run_for(Duration::from_secs(3));
    let prefix = partition_prefix(TABLE, &KeyValue::S("q".into()));
    let replicas: Vec<NodeId> = {
        let ring = c.node(1).and_then(|n| n.ring()).expect("a ring");
        ring.preference_list(&prefix, 3).iter().collect()
    };
    let stale = replicas[2];
    c.isolate(stale, true);
    fill_partition(&mut c, replicas[0], "q", 0..6);
    c.isolate(stale, false);
    c.run_for(Duration::from_secs(2));
    let stored = |c: &Cluster| {
        c.node(stale)
            .expect("running")
            .store()
            .scan_partition(
                &prefix,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
                100,
            )
            .expect("a scan")
            .len()
    };
    assert_eq!(
        stored(&c),
        0,
        "the isolated replica got the writes after all"
    );
    // Coordinated by the stale replica, which answers first: R = 2 must merge another page.
    let mut q = query_request("q", None, true);
    q.consistent = false;
    let mut request = ClientRequest::new(ClientOp::Query(Box::new(q)));
    request.r = Some(2);
    match c.request(stale, request).expect("an answer") {
        Ok(ClientReply::Items { items, .. }) => assert_eq!(items.len(), 6),
        other => panic!("{other:?}"),
    }
    c.run_for(Duration::from_millis(100));
    assert_eq!(stored(&c), 6, "read repair did not reach the stale replica");
}

#[test]
fn query_bounds_follow_the_sort_key_condition() {
    use super::query::query_bounds;
    let mut q = query_request("p", None, true);
    q.table.schema = KeySchema::partition_only("user", KeyType::S).with_sort("name", KeyType::S);
    q.sort = Some(SortKeyCondition::BeginsWith(KeyValue::S("ab".into())));
    let (from, to) = query_bounds(&q).expect("bounds");
    let key = |sort: &str| {
        ItemKey {
            table: TABLE,
            key: PrimaryKey {
                partition: KeyValue::S("p".into()),
                sort: Some(KeyValue::S(sort.into())),
            },
        }
        .encode()
    };
    let inside = |k: &[u8]| {
        let above = match &from {
            KeyBound::Included(b) => k >= b.as_slice(),
            other => panic!("{other:?}"),
        };
        let below = match &to {
            KeyBound::Excluded(b) => k < b.as_slice(),
            other => panic!("{other:?}"),
        };
        above && below
    };
    for yes in ["ab", "abc", "ab\u{0}", "ab\u{ff}z"] {
        assert!(inside(&key(yes)), "{yes:?}");
    }
    for no in ["a", "aa", "ac", "b", ""] {
        assert!(!inside(&key(no)), "{no:?}");
    }
    q.sort = Some(SortKeyCondition::BeginsWith(KeyValue::N(Number::from_i64(
        1,
    ))));
    assert!(
        query_bounds(&q).is_err(),
        "a number sort key in a string schema"
    );
}

// --- Batches ---

fn batch(items: Vec<(ItemKey, ItemAction)>) -> ClientRequest {
    let items = items
        .into_iter()
        .map(|(key, action)| ItemRequest {
            table: TableRef {
                name: "events".into(),
                schema: schema(),
            },
            key,
            action,
        })
        .collect();
    ClientRequest::new(ClientOp::Batch(Box::new(BatchRequest { items })))
}

#[test]
fn a_batch_writes_and_reads_items_across_partitions() {
    let mut c = cluster();
    let writes: Vec<(ItemKey, ItemAction)> = (0..25)
        .map(|i| {
            let user = format!("b{i}");
            (key(&user, i), put(item(&user, i, &[("i", n(i))]), None))
        })
        .collect();
    match run(&mut c, 1, batch(writes)) {
        Ok(ClientReply::Batch(outcomes)) => {
            assert_eq!(outcomes.len(), 25);
            assert!(
                outcomes.iter().all(|o| *o == BatchOutcome::Written),
                "{outcomes:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let gets: Vec<(ItemKey, ItemAction)> = (0..30)
        .map(|i| (key(&format!("b{i}"), i), get(true)))
        .collect();
    match run(&mut c, 2, batch(gets)) {
        Ok(ClientReply::Batch(outcomes)) => {
            for (i, outcome) in outcomes.iter().enumerate() {
                let user = format!("b{i}");
                let i = i64::try_from(i).expect("small");
                let expected = (i < 25).then(|| item(&user, i, &[("i", n(i))]));
                assert_eq!(*outcome, BatchOutcome::Read(expected), "item {i}");
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_batch_reports_what_it_could_not_do_and_keeps_the_rest() {
    let mut c = cluster();
    let k = key("solo", 1);
    let replicas: Vec<NodeId> = {
        let ring = c.node(1).and_then(|n| n.ring()).expect("a ring");
        ring.preference_list(&k.encode(), 3).iter().collect()
    };
    // Every node but the two that will coordinate is cut off: writes of keys whose replicas
    // are cut off cannot reach W = 2.
    let keep = [replicas[0], replicas[1]];
    for node in 1..=5 {
        if !keep.contains(&NodeId(node)) {
            c.isolate(NodeId(node), true);
        }
    }
    let mut unreachable = None;
    for i in 0..200 {
        let candidate = key(&format!("x{i}"), 1);
        let ring = c.node(1).and_then(|n| n.ring()).expect("a ring");
        let home: Vec<NodeId> = ring
            .preference_list(&candidate.encode(), 3)
            .iter()
            .collect();
        if !home.contains(&keep[0]) && !home.contains(&keep[1]) {
            unreachable = Some(candidate);
            break;
        }
    }
    let unreachable = unreachable.expect("a key homed away from both");
    let writes = vec![
        (k.clone(), put(item("solo", 1, &[]), None)),
        (unreachable, ItemAction::Delete { condition: None }),
    ];
    match c.request(keep[0], batch(writes)).expect("an answer") {
        Ok(ClientReply::Batch(outcomes)) => {
            assert_eq!(outcomes[0], BatchOutcome::Written);
            assert!(
                matches!(outcomes[1], BatchOutcome::Unprocessed(_)),
                "{outcomes:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    c.heal();
    let too_many: Vec<(ItemKey, ItemAction)> = (0..26)
        .map(|i| (key("m", i), ItemAction::Delete { condition: None }))
        .collect();
    assert!(matches!(
        run(&mut c, 1, batch(too_many)),
        Err(RequestError::InvalidBatch { .. })
    ));
    let twice = vec![(k.clone(), get(false)), (k.clone(), get(false))];
    assert!(matches!(
        run(&mut c, 1, batch(twice)),
        Err(RequestError::InvalidBatch { .. })
    ));
    let mixed = vec![
        (k.clone(), get(false)),
        (key("o", 1), ItemAction::Delete { condition: None }),
    ];
    assert!(matches!(
        run(&mut c, 1, batch(mixed)),
        Err(RequestError::InvalidBatch { .. })
    ));
}

// --- Scans ---

fn scan_request(
    segment: u32,
    total: u32,
    limit: Option<u32>,
    start_after: Option<PrimaryKey>,
) -> ClientRequest {
    ClientRequest::new(ClientOp::Scan(Box::new(ScanRequest {
        table: TableRef {
            name: "events".into(),
            schema: schema(),
        },
        table_id: TABLE,
        segment,
        total_segments: total,
        limit,
        start_after,
        consistent: false,
        filter: None,
    })))
}

/// Every item of a scan's segment, page by page; the pages' sizes.
fn scan_all(
    c: &mut Cluster,
    segment: u32,
    total: u32,
    limit: Option<u32>,
) -> (Vec<Item>, Vec<usize>) {
    let mut items = Vec::new();
    let mut pages = Vec::new();
    let mut start_after = None;
    loop {
        match run(
            c,
            2,
            scan_request(segment, total, limit, start_after.clone()),
        ) {
            Ok(ClientReply::Items {
                items: page, last, ..
            }) => {
                pages.push(page.len());
                items.extend(page);
                match last {
                    Some(last) => start_after = Some(last),
                    None => break,
                }
            }
            other => panic!("Scan failed: {other:?}"),
        }
        assert!(pages.len() < 1000, "the scan does not end");
    }
    (items, pages)
}

#[test]
fn a_scan_returns_every_item_of_its_table_once_in_segments_and_pages() {
    let mut c = cluster();
    let mut expected = Vec::new();
    for i in 0..40 {
        let user = format!("s{}", i % 13);
        let stored = item(&user, i, &[]);
        assert_written(run(
            &mut c,
            1,
            request(key(&user, i), put(stored.clone(), None)),
        ));
        expected.push(stored);
    }
    // Another table and the key-value API share the stores; a scan sees neither.
    let mut other = key("s1", 1);
    other.table = TableId(99);
    assert_written(run(
        &mut c,
        1,
        request(other, put(item("s1", 1, &[]), None)),
    ));
    assert!(crate::harness::written(&run(&mut c, 1, ClientRequest::overwrite("kv", "v"))).is_ok());
    let sorted = |mut items: Vec<Item>| {
        items.sort_by_key(|i| format!("{i:?}"));
        items
    };
    let (whole, _) = scan_all(&mut c, 0, 1, None);
    assert_eq!(sorted(whole), sorted(expected.clone()));
    let (paged, pages) = scan_all(&mut c, 0, 1, Some(7));
    assert_eq!(sorted(paged), sorted(expected.clone()));
    assert!(
        pages.iter().all(|&p| p <= 7) && pages.len() >= 6,
        "{pages:?}"
    );
    let mut segmented = Vec::new();
    for segment in 0..4 {
        segmented.extend(scan_all(&mut c, segment, 4, Some(5)).0);
    }
    assert_eq!(sorted(segmented), sorted(expected));
    let bad = run(&mut c, 1, scan_request(4, 4, None, None));
    assert!(
        matches!(bad, Err(RequestError::InvalidItem { .. })),
        "{bad:?}"
    );
}
