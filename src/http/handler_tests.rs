//! Tests of the table and item handlers over real HTTP, against a stand-in core: what each
//! endpoint refuses before the core sees it, and with which status, kind and detail.

use super::{HttpLimits, HttpState, router, serve};
use crate::runtime::driver::{DriverInput, InboxReceiver, inbox};
use crate::runtime::faults::Faults;
use crate::runtime::front_door::FrontDoor;
use crate::runtime::metrics::Metrics;
use ringstore_core::catalog::{TableRecord, TableSettings};
use ringstore_core::item::{KeySchema, KeyType, Stamp, TableId};
use ringstore_core::request::{
    ClientOp, ClientReply, ClientRequest, ClientResult, ItemAction, RequestError, TableDescription,
    TableRequest, TableStatus,
};
use ringstore_core::version::{ActorId, Dot};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

fn events() -> TableDescription {
    TableDescription {
        record: TableRecord {
            name: "events".into(),
            id: TableId(7),
            schema: KeySchema::partition_only("user", KeyType::S).with_sort("at", KeyType::N),
            created: Stamp::ZERO,
            settings: TableSettings::default(),
            settings_stamp: Stamp::ZERO,
            deleted: None,
        },
        status: TableStatus::Active,
    }
}

/// The stand-in core: knows the table `events`, writes whatever it is asked to, finds
/// nothing.
fn answer(request: ClientRequest) -> ClientResult {
    match request.op {
        ClientOp::Table(TableRequest::Describe { name }) if name == "events" => {
            Ok(ClientReply::Table(events()))
        }
        ClientOp::Table(TableRequest::Describe { name }) => {
            Err(RequestError::TableNotFound { name })
        }
        ClientOp::Item(item) => match item.action {
            ItemAction::Get { .. } => Ok(ClientReply::Item(None)),
            ItemAction::Put { item, .. } => Ok(ClientReply::ItemWritten {
                old: None,
                new: Some(item),
                stamp: Stamp::ZERO,
                version: Dot {
                    actor: ActorId(1),
                    counter: 1,
                },
            }),
            _ => Err(RequestError::NoReplicas),
        },
        _ => Err(RequestError::NoReplicas),
    }
}

async fn stand_in_core(mut inbox: InboxReceiver) {
    while let Some(input) = inbox.recv().await {
        if let DriverInput::Client { request, reply } = input {
            let _ = reply.send(answer(request));
        }
    }
}

async fn api() -> SocketAddr {
    let (tx, rx) = inbox();
    tokio::spawn(stand_in_core(rx));
    let door = Arc::new(FrontDoor::new(tx, Duration::from_secs(2)));
    let state = Arc::new(HttpState::new(
        door,
        Arc::new(Metrics::new()),
        Arc::new(Faults::default()),
        HttpLimits {
            max_value_bytes: 1 << 20,
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, router(state), std::future::pending()));
    addr
}

/// A blocking call from the async test: (status, body as JSON).
fn call(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    tokio::task::block_in_place(|| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let result = match (method, body) {
            ("GET", _) => agent.get(url).call(),
            ("DELETE", _) => agent.delete(url).call(),
            ("PUT", body) => agent.put(url).send(body.unwrap_or_default()),
            ("PATCH", body) => agent.patch(url).send(body.unwrap_or_default()),
            (_, body) => agent.post(url).send(body.unwrap_or_default()),
        };
        let mut response = result.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, json)
    })
}

/// A request and the refusal it gets: method, URL, body, status, kind, part of the detail.
type Case<'a> = (&'a str, String, Option<&'a str>, u16, &'a str, &'a str);

// Every refusal is the documented status and kind, and its detail names what was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_item_endpoints_refuse_bad_input_by_name() {
    let addr = api().await;
    let items = format!("http://{addr}/tables/events/items");
    let cases: Vec<Case<'_>> = vec![
        (
            "PUT",
            items.clone(),
            Some("{not json"),
            400,
            "bad_json",
            "key must be a string",
        ),
        (
            "PUT",
            items.clone(),
            Some(r#"{"user": {"S": "u1"}, "at": {"N": "abc"}}"#),
            400,
            "invalid_item",
            "attribute `at`: \"abc\" is not a decimal number",
        ),
        (
            "PUT",
            items.clone(),
            Some(r#"{"user": {"S": "u1"}, "at": {"X": "1"}}"#),
            400,
            "invalid_item",
            "attribute `at`: unknown type descriptor `X`",
        ),
        (
            "PUT",
            items.clone(),
            Some(r#"{"user": {"S": "u1"}}"#),
            400,
            "invalid_item",
            "no sort key attribute `at`",
        ),
        (
            "PUT",
            items.clone(),
            Some(r#"{"user": {"N": "1"}, "at": {"N": "1"}}"#),
            400,
            "invalid_item",
            "the partition key `user` must be of type S, not N",
        ),
        (
            "PUT",
            items.clone(),
            Some(r#"{"user": {"S": "u1"}, "at": {"N": "1"}, "tags": {"SS": []}}"#),
            400,
            "invalid_item",
            "attribute `tags`: an SS set may not be empty",
        ),
        (
            "PUT",
            items.clone(),
            Some(r#"{"user": {"S": "u1"}, "at": {"N": "1"}, "b": {"B": "@@"}}"#),
            400,
            "invalid_item",
            "attribute `b`: B is not standard base64",
        ),
        (
            "PUT",
            format!("{items}?condition=maybe"),
            Some(r#"{"user": {"S": "u1"}, "at": {"N": "1"}}"#),
            400,
            "bad_query",
            "unknown variant `maybe`",
        ),
        (
            "GET",
            format!("{items}/u1/abc"),
            None,
            400,
            "bad_key",
            "the sort key `at` is a number (N): \"abc\" is not a decimal number",
        ),
        (
            "GET",
            format!("{items}/u1"),
            None,
            400,
            "bad_key",
            "has the sort key `at` (N)",
        ),
        (
            "GET",
            format!("{items}/u1/1?bogus=1"),
            None,
            400,
            "bad_query",
            "unknown field `bogus`",
        ),
        (
            "GET",
            format!("http://{addr}/tables/nope/items/u1/1"),
            None,
            404,
            "table_not_found",
            "table nope",
        ),
        (
            "GET",
            format!("{items}/u1/1"),
            None,
            404,
            "not_found",
            "table `events` has no item with this key",
        ),
        (
            "PATCH",
            format!("{items}/u1/1"),
            Some(r#"{"set": {"n": {"N": "x"}}}"#),
            400,
            "invalid_item",
            "attribute `n`: \"x\" is not a decimal number",
        ),
        (
            "GET",
            format!("http://{addr}/tables/events/partitions/u1?from=1&begins_with=a"),
            None,
            400,
            "bad_query",
            "begins_with cannot be combined with from or to",
        ),
        (
            "GET",
            format!("http://{addr}/tables/events/partitions/u1?to=soon"),
            None,
            400,
            "bad_query",
            "to: the sort key `at` is a number (N)",
        ),
        (
            "POST",
            format!("http://{addr}/tables"),
            Some(r#"{"name": "t1x", "key_schema": {"partition": {"name": "k", "type": "BOOL"}}}"#),
            400,
            "bad_json",
            "unknown variant `BOOL`",
        ),
        (
            "GET",
            format!("http://{addr}/tables?limit=0"),
            None,
            400,
            "bad_query",
            "limit = 0 is out of range 1..=100",
        ),
        (
            "GET",
            format!("http://{addr}/nowhere"),
            None,
            404,
            "no_route",
            "no endpoint GET /nowhere",
        ),
        (
            "POST",
            items.clone(),
            Some("{}"),
            405,
            "method_not_allowed",
            "does not take POST",
        ),
    ];
    for (method, url, body, status, kind, detail) in cases {
        let (got, json) = call(method, &url, body);
        assert_eq!(got, status, "{method} {url}: {json}");
        assert_eq!(json["error"], kind, "{method} {url}: {json}");
        let text = json["detail"].as_str().unwrap_or_default();
        assert!(
            text.contains(detail),
            "{method} {url}: `{text}` lacks `{detail}`"
        );
    }
    // A valid item is written and answered back as DynamoDB JSON.
    let item = r#"{"user": {"S": "u1"}, "at": {"N": "1.50"}, "tags": {"SS": ["b", "a"]}}"#;
    let (status, json) = call("PUT", &items, Some(item));
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json,
        serde_json::json!({"user": {"S": "u1"}, "at": {"N": "1.5"}, "tags": {"SS": ["a", "b"]}})
    );
}
