//! Tables and items end to end over a real 3-node cluster of `ringstore node` processes (the
//! same code as `ringstore cluster up`): the HTTP API through different nodes, the `ringstore
//! table`/`item` commands, and the native client's table and item calls.
//!
//! Every wait polls a condition against a deadline; the cluster is torn down by a guard even
//! when an assertion fails (and then the nodes' status and log tails are printed).

// Unwrap is fine in tests (team rule); helpers outside #[test] fns need the allowance.
#![allow(clippy::unwrap_used)]

use ringstore::cli::cluster::{self, Cluster, UpOptions, log_tail};
use ringstore::cli::http_client::{HttpClient, HttpClientError};
use ringstore::cli::tables::QueryOptions;
use ringstore::http::attribute_json::ItemJson;
use ringstore::http::items::{ItemCondition, UpdateItemBody};
use ringstore::http::tables::{
    CreateTableBody, KeyAttributeBody, KeySchemaBody, TableStatusBody, UpdateTableBody,
};
use ringstore_client::{NativeClient, Query};
use ringstore_core::NodeId;
use ringstore_core::catalog::TableSettings;
use ringstore_core::config::NodeConfig;
use ringstore_core::item::update::{SetValue, UpdateOperand};
use ringstore_core::item::{
    AttributePath, AttributeValue, Condition, Item, ItemUpdate, KeySchema, KeyType, KeyValue,
    Number, PrimaryKey, UpdateAction,
};
use ringstore_core::request::{RequestError, SortKeyCondition, TableStatus};
use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ringstore");

/// The longest any single condition may take to become true.
const CONDITION_TIMEOUT: Duration = Duration::from_secs(45);

/// Stops every node when dropped, test failure or not; on failure, prints what they said.
struct Guard {
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

impl Guard {
    fn up(nodes: usize) -> Guard {
        let dir = tempfile::tempdir().unwrap();
        let mut options = UpOptions::new(dir.path().join("cluster"));
        options.nodes = nodes;
        options.node_config = NodeConfig {
            gossip_interval: Duration::from_millis(100),
            hint_replay_interval: Duration::from_millis(200),
            anti_entropy_interval: Duration::from_millis(500),
            handoff_interval: Duration::from_millis(200),
            sloppy_after: Duration::from_millis(150),
            anti_entropy_tree_depth: 10,
            ..NodeConfig::default()
        };
        options.binary = Some(BINARY.into());
        options.ready_timeout = CONDITION_TIMEOUT;
        let cluster = match cluster::up(&options) {
            Ok(cluster) => cluster,
            Err(e) => panic!("cluster up failed: {e}"),
        };
        Guard { cluster, _dir: dir }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cluster.reload();
        if thread::panicking() {
            eprintln!(
                "--- cluster status at failure ---\n{}",
                self.cluster.status().render()
            );
            for node in &self.cluster.file().nodes {
                eprintln!(
                    "--- n{} log tail ---\n{}",
                    node.id.0,
                    log_tail(&node.log, 15)
                );
            }
        }
        if let Err(e) = self.cluster.down() {
            eprintln!("teardown: {e}");
        }
    }
}

/// Polls `check` until it returns `None` (done) or the deadline passes (then fails with the
/// last problem it reported).
fn eventually(what: &str, mut check: impl FnMut() -> Option<String>) {
    let start = Instant::now();
    loop {
        match check() {
            None => return,
            Some(problem) if start.elapsed() > CONDITION_TIMEOUT => {
                panic!(
                    "timed out after {:?} waiting for {what}: {problem}",
                    start.elapsed()
                )
            }
            Some(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Runs the `ringstore` binary; returns (exit code, stdout, stderr).
fn ringstore(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BINARY).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(Number::from_i64(value))
}

/// An item of the `events` table.
fn event(user: &str, at: i64, note: &str) -> Item {
    Item::new(
        [
            ("user".to_string(), s(user)),
            ("at".to_string(), n(at)),
            ("note".to_string(), s(note)),
        ]
        .into_iter()
        .collect(),
    )
    .unwrap()
}

fn json_of(item: &Item) -> serde_json::Value {
    serde_json::to_value(ItemJson(item)).unwrap()
}

/// The error kind and status of a node's refusal.
fn refusal<T: std::fmt::Debug>(result: Result<T, HttpClientError>) -> (u16, String, String) {
    match result {
        Err(HttpClientError::Server {
            status,
            kind,
            detail,
            ..
        }) => (status, kind, detail),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn events_schema() -> KeySchemaBody {
    KeySchemaBody {
        partition: KeyAttributeBody {
            name: "user".into(),
            key_type: KeyType::S,
        },
        sort: Some(KeyAttributeBody {
            name: "at".into(),
            key_type: KeyType::N,
        }),
    }
}

/// Waits until every node describes `table` as ACTIVE.
fn wait_active(client: &HttpClient, addrs: &[SocketAddr], table: &str) {
    eventually(&format!("`{table}` ACTIVE on every node"), || {
        for &addr in addrs {
            match client.describe_table(addr, table) {
                Ok(d) if d.status == TableStatusBody::Active => {}
                Ok(d) => return Some(format!("{addr}: {:?}", d.status)),
                Err(e) => return Some(format!("{addr}: {e}")),
            }
        }
        None
    });
}

#[test]
fn tables_and_items_over_http_cli_and_the_native_client() {
    // Goal: a table created through one node becomes ACTIVE on all three; items written through
    // one node are read, updated, queried and deleted through the others, over HTTP, the CLI and
    // the native client; bad input is refused by name; a deleted table is gone everywhere.
    let mut guard = Guard::up(3);
    let cluster = &mut guard.cluster;
    let client = HttpClient::new();
    let dir_arg = cluster.dir().to_str().unwrap().to_string();
    let addrs: Vec<SocketAddr> = (1..=3)
        .map(|id| cluster.http_addr(NodeId(id)).unwrap())
        .collect();
    let [n1, n2, n3] = [addrs[0], addrs[1], addrs[2]];

    // --- 1. Create through n1; it becomes ACTIVE everywhere; a second create is a 409.
    let create = CreateTableBody {
        name: "events".into(),
        key_schema: events_schema(),
        r: Some(2),
        w: Some(2),
        tags: Default::default(),
    };
    let created = client.create_table(n1, &create).unwrap();
    assert_eq!(created.name, "events");
    assert_eq!(created.key_schema, events_schema());
    assert_eq!((created.r, created.w), (Some(2), Some(2)));
    assert!(created.created_ms > 0);
    wait_active(&client, &addrs, "events");
    let described = client.describe_table(n3, "events").unwrap();
    assert_eq!(
        described.id, created.id,
        "every node names the same incarnation"
    );
    let (status, kind, _) = refusal(client.create_table(n2, &create));
    assert_eq!((status, kind.as_str()), (409, "table_exists"));
    let listed = client.list_tables(n2, None, None).unwrap();
    assert_eq!(listed.tables, vec!["events".to_string()]);
    let patched = client
        .update_table(
            n2,
            "events",
            &UpdateTableBody {
                r: Some(None),
                ..UpdateTableBody::default()
            },
        )
        .unwrap();
    assert_eq!(
        (patched.r, patched.w),
        (None, Some(2)),
        "PATCH changes what it names"
    );

    // --- 2. Items through different nodes.
    for at in 1..=5 {
        let coordinator = addrs[at as usize % 3];
        let item = event("u1", at, &format!("note {at}"));
        let written = client
            .put_item(coordinator, "events", &json_of(&item), None, None)
            .unwrap();
        assert_eq!(written, Some(item));
    }
    for &addr in &addrs {
        let read = client
            .get_item(addr, "events", "u1", Some("3"), true, None)
            .unwrap();
        assert_eq!(read, Some(event("u1", 3, "note 3")), "read through {addr}");
    }
    assert_eq!(
        client
            .get_item(n2, "events", "u1", Some("99"), false, None)
            .unwrap(),
        None
    );
    let (status, kind, detail) = refusal(client.put_item(
        n2,
        "events",
        &serde_json::json!({"user": {"S": "u1"}, "at": {"N": "one"}}),
        None,
        None,
    ));
    assert_eq!((status, kind.as_str()), (400, "invalid_item"));
    assert!(detail.contains("attribute `at`"), "{detail}");
    let (status, kind, detail) = refusal(client.put_item(
        n3,
        "events",
        &serde_json::json!({"user": {"S": "u1"}}),
        None,
        None,
    ));
    assert_eq!((status, kind.as_str()), (400, "invalid_item"));
    assert!(detail.contains("`at`"), "{detail}");
    let (status, kind, _) = refusal(client.put_item(
        n1,
        "events",
        &json_of(&event("u1", 1, "again")),
        Some(ItemCondition::NotExists),
        None,
    ));
    assert_eq!((status, kind.as_str()), (412, "condition_failed"));

    // An update through n3, read through n1.
    let update: UpdateItemBody = serde_json::from_value(serde_json::json!({
        "set": {"note": {"S": "edited"}}, "add": {"views": {"N": "2"}}
    }))
    .unwrap();
    let updated = client
        .update_item(n3, "events", "u1", Some("2"), &update, None, None)
        .unwrap()
        .unwrap();
    assert_eq!(updated.get("views"), Some(&n(2)));
    let read = client
        .get_item(n1, "events", "u1", Some("2"), true, None)
        .unwrap()
        .unwrap();
    assert_eq!(read.get("note"), Some(&s("edited")));

    // --- 3. Query a range in pages, and backwards.
    let range = QueryOptions {
        from: Some("2".into()),
        to: Some("4".into()),
        limit: Some(2),
        consistent: true,
        ..QueryOptions::default()
    };
    let page = client.query(n2, "events", "u1", &range).unwrap();
    let ats: Vec<_> = page.items.iter().map(|i| i.get("at").cloned()).collect();
    assert_eq!(ats, vec![Some(n(2)), Some(n(3))]);
    assert_eq!(page.last.as_deref(), Some("3"));
    let next = QueryOptions {
        start_after: page.last,
        ..range.clone()
    };
    let page = client.query(n3, "events", "u1", &next).unwrap();
    let ats: Vec<_> = page.items.iter().map(|i| i.get("at").cloned()).collect();
    assert_eq!(ats, vec![Some(n(4))]);
    assert_eq!(page.last, None, "the range is exhausted");
    let backwards = QueryOptions {
        reverse: true,
        limit: Some(2),
        ..QueryOptions::default()
    };
    let page = client.query(n1, "events", "u1", &backwards).unwrap();
    let ats: Vec<_> = page.items.iter().map(|i| i.get("at").cloned()).collect();
    assert_eq!(ats, vec![Some(n(5)), Some(n(4))]);
    let (status, kind, _) = refusal(client.query(
        n1,
        "events",
        "u1",
        &QueryOptions {
            begins_with: Some("1".into()),
            ..QueryOptions::default()
        },
    ));
    assert_eq!((status, kind.as_str()), (400, "bad_query"));

    // --- 4. Delete an item through n2; it is gone through n3.
    let old = client
        .delete_item(n2, "events", "u1", Some("5"), None)
        .unwrap();
    assert_eq!(old, Some(event("u1", 5, "note 5")));
    assert_eq!(
        client
            .get_item(n3, "events", "u1", Some("5"), true, None)
            .unwrap(),
        None
    );

    // --- 5. The CLI, through the cluster directory.
    let (code, out, err) = ringstore(&["table", "describe", "events", "--dir", &dir_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["status"], "ACTIVE");
    let (code, out, err) = ringstore(&[
        "item",
        "put",
        "events",
        r#"{"user": {"S": "cli"}, "at": {"N": "7"}, "tags": {"SS": ["x"]}}"#,
        "--dir",
        &dir_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ringstore(&[
        "item",
        "get",
        "events",
        "cli",
        "7",
        "--consistent",
        "--dir",
        &dir_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["tags"], serde_json::json!({"SS": ["x"]}));
    let (code, out, _) = ringstore(&["item", "get", "events", "cli", "8", "--dir", &dir_arg]);
    assert_eq!((code, out.trim()), (3, "null"), "a missing item exits 3");
    let (code, out, err) = ringstore(&[
        "item",
        "query",
        "events",
        "u1",
        "--from",
        "1",
        "--to",
        "3",
        "--limit",
        "10",
        "--node",
        &n3.to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let page: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{out}");
    // A scan of the whole table in pages of two, through the CLI: every item once.
    let mut scanned = Vec::new();
    let mut start: Option<(String, Option<String>)> = None;
    for _ in 0..100 {
        let mut args = vec!["item", "scan", "events", "--limit", "2", "--dir", &dir_arg];
        let (partition, sort);
        if let Some((p, s)) = &start {
            partition = p.clone();
            args.extend(["--start-after", &partition]);
            if let Some(s) = s {
                sort = s.clone();
                args.extend(["--start-after-sort", &sort]);
            }
        }
        let (code, out, err) = ringstore(&args);
        assert_eq!(code, 0, "{out}{err}");
        let page: serde_json::Value = serde_json::from_str(&out).unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{out}");
        scanned.extend(items.iter().map(|i| i.to_string()));
        match page["last"].as_object() {
            Some(last) => {
                let partition = last["partition"].as_str().unwrap().to_string();
                let sort = last["sort"].as_str().map(str::to_string);
                start = Some((partition, sort));
            }
            None => {
                start = None;
                break;
            }
        }
    }
    assert!(start.is_none(), "the scan did not end in 100 pages");
    let unique: std::collections::BTreeSet<&String> = scanned.iter().collect();
    assert_eq!(unique.len(), scanned.len(), "a scan returned an item twice");
    assert!(scanned.len() >= 3, "{scanned:?}");
    let (code, _, err) = ringstore(&[
        "item",
        "put",
        "events",
        r#"{"user": {"S": "cli"}, "at": {"N": "x"}}"#,
        "--dir",
        &dir_arg,
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid_item") && err.contains("attribute `at`"),
        "{err}"
    );
    let (code, _, err) = ringstore(&[
        "table",
        "create",
        "bad",
        "--partition",
        "user:BOOL",
        "--dir",
        &dir_arg,
    ]);
    assert_eq!(code, 2, "clap refuses a bad key type: {err}");
    let (code, out, err) = ringstore(&[
        "item",
        "update",
        "events",
        "cli",
        "7",
        r#"{"set": {"n": {"N": "1"}}, "remove": ["tags"]}"#,
        "--if-exists",
        "--dir",
        &dir_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let updated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(updated["n"], serde_json::json!({"N": "1"}));
    assert!(updated.get("tags").is_none(), "{out}");
    let (code, out, err) = ringstore(&["table", "list", "--dir", &dir_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["tables"], serde_json::json!(["events"]));
    let (code, out, err) = ringstore(&["item", "delete", "events", "cli", "7", "--dir", &dir_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let deleted: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(deleted["old"]["n"], serde_json::json!({"N": "1"}));

    // --- 6. The native client: describe fills its cache, then items by typed calls.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let native = runtime.block_on(async { NativeClient::from_cluster_dir(cluster.dir()) });
    let native = native.unwrap();
    let node = |id| NodeId(id);
    runtime.block_on(async {
        let description = native.describe_table(node(2), "events").await.unwrap();
        assert_eq!(description.status, TableStatus::Active);
        assert_eq!(
            native.cached_table("events").map(|h| h.id),
            Some(description.record.id)
        );
        let key = |at| PrimaryKey {
            partition: KeyValue::S("native".into()),
            sort: Some(KeyValue::N(Number::from_i64(at))),
        };
        for at in 1..=3 {
            native
                .put_item(
                    node(at as u64),
                    "events",
                    event("native", at, "n"),
                    None,
                    None,
                )
                .await
                .unwrap();
        }
        let read = native
            .get_item(node(3), "events", key(2), true, None)
            .await
            .unwrap();
        assert_eq!(read, Some(event("native", 2, "n")));
        let update = ItemUpdate {
            actions: vec![UpdateAction::Set {
                path: AttributePath::attribute_named("note"),
                value: SetValue::Operand(UpdateOperand::Value(s("changed"))),
            }],
        };
        let written = native
            .update_item(node(1), "events", key(2), update, None, None)
            .await
            .unwrap();
        assert_eq!(
            written.new.as_ref().and_then(|i| i.get("note")),
            Some(&s("changed"))
        );
        let read_after_update = |w: &ringstore_client::ItemWrite| w.new.clone();
        let exists = Condition::Exists(AttributePath::attribute_named("user"));
        let refused = native
            .delete_item(node(2), "events", key(9), Some(exists), None)
            .await;
        assert!(
            matches!(
                refused,
                Err(ringstore_client::CallError::Request(
                    RequestError::ConditionFailed { item: None }
                ))
            ),
            "{refused:?}"
        );
        let mut query = Query::partition(KeyValue::S("native".into()));
        query.sort = Some(SortKeyCondition::Ge(KeyValue::N(Number::from_i64(2))));
        query.consistent = true;
        let page = native.query(node(3), "events", query).await.unwrap();
        assert_eq!(page.items.len(), 2);
        let deleted = native
            .delete_item(node(3), "events", key(1), None, None)
            .await
            .unwrap();
        assert_eq!(deleted.old, Some(event("native", 1, "n")));
        // A batch of gets (and a key that does not exist), then a scan in pages of two.
        let gets = vec![
            (
                key(2),
                ringstore_core::request::ItemAction::Get { consistent: true },
            ),
            (
                key(9),
                ringstore_core::request::ItemAction::Get { consistent: true },
            ),
        ];
        let outcomes = native.batch(node(2), "events", gets).await.unwrap();
        assert_eq!(
            outcomes,
            vec![
                ringstore_core::request::BatchOutcome::Read(read_after_update(&written)),
                ringstore_core::request::BatchOutcome::Read(None),
            ]
        );
        let mut scanned = Vec::new();
        let mut start_after = None;
        loop {
            let page = native
                .scan(node(1), "events", 0, 1, Some(2), start_after.clone())
                .await
                .unwrap();
            assert!(page.items.len() <= 2);
            scanned.extend(page.items);
            match page.last {
                Some(last) => start_after = Some(last),
                None => break,
            }
        }
        let natives = scanned
            .iter()
            .filter(|i| i.get("user") == Some(&s("native")))
            .count();
        assert_eq!(
            natives, 2,
            "the scan did not see the native partition's two items"
        );
        let page = native.list_tables(node(1), None, None).await.unwrap();
        assert_eq!(page.names, vec!["events".to_string()]);
    });

    // --- 7. Delete the table through n3: gone on every node, its items with it.
    let deleted = client.delete_table(n3, "events").unwrap();
    assert_eq!(deleted.status, TableStatusBody::Deleting);
    eventually("`events` gone on every node", || {
        for &addr in &addrs {
            match client.describe_table(addr, "events") {
                Err(HttpClientError::Server { status: 404, .. }) => {}
                other => return Some(format!("{addr}: {other:?}")),
            }
        }
        None
    });
    for &addr in &addrs {
        let (status, kind, _) =
            refusal(client.get_item(addr, "events", "u1", Some("1"), false, None));
        assert_eq!((status, kind.as_str()), (404, "table_not_found"));
    }
    assert!(
        client
            .list_tables(n1, None, None)
            .unwrap()
            .tables
            .is_empty()
    );

    // --- 8. Created again, the name is a new, empty incarnation; the native client's cached
    // handle of the old one is refreshed on its first refusal.
    let again = client.create_table(n1, &create).unwrap();
    assert_ne!(again.id, created.id);
    wait_active(&client, &addrs, "events");
    runtime.block_on(async {
        let read = native
            .get_item(
                node(2),
                "events",
                PrimaryKey {
                    partition: KeyValue::S("u1".into()),
                    sort: Some(KeyValue::N(Number::from_i64(1))),
                },
                true,
                None,
            )
            .await
            .unwrap();
        assert_eq!(read, None, "the new incarnation is empty");
        let handle = native.cached_table("events").unwrap();
        assert_eq!(
            handle.id.to_string(),
            again.id,
            "the cache follows the new incarnation"
        );
        assert_eq!(
            handle.schema,
            KeySchema::partition_only("user", KeyType::S).with_sort("at", KeyType::N)
        );
        let settings = TableSettings::default();
        let exists = native
            .create_table(node(1), "events", handle.schema.clone(), settings)
            .await;
        assert!(
            matches!(
                exists,
                Err(ringstore_client::CallError::Request(
                    RequestError::TableExists { .. }
                ))
            ),
            "{exists:?}"
        );
        native.close().await;
    });
}
