//! The real runtime end to end: three nodes in one test process (QUIC with mutual TLS between
//! them, fjall stores in temporary directories, HTTP on ephemeral ports), driven through
//! their HTTP APIs; and the `ringstore node` process's exit codes.
//!
//! Every wait is on a condition with a bound; nothing sleeps in place of a condition.

// Unwrap is fine in tests (team rule); helpers outside #[test] fns need the allowance.
#![allow(clippy::unwrap_used)]

use futures_util::future::join_all;
use ringstore::runtime::node_config::{NodeFileConfig, SeedPeer, SyncMode, TlsFiles};
use ringstore::runtime::{RunningNode, start};
use ringstore_client::tls::ClusterCa;
use ringstore_client::tls::{NodeTls, node_name};
use ringstore_client::{ClientIdentity, NativeClient, NodeAddr};
use ringstore_core::NodeId;
use ringstore_core::config::NodeConfig;
use ringstore_core::native_protocol::{
    CLIENT_PROTOCOL_VERSION, ClientResponse, FRAME_HEADER_BYTES, RequestId, decode_request,
    decode_response, encode_request, encode_response, next_frame,
};
use ringstore_core::request::ClientRequest;
use ringstore_core::version::CausalContext;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Logs to the test's output, filtered by `RUST_LOG` (nothing by default).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(20);
/// The value limit of the test nodes (small, to test 413 cheaply).
const MAX_VALUE_BYTES: usize = 4096;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// An HTTP answer: status, context header, body.
struct Answer {
    status: u16,
    context: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!("not JSON: {}", String::from_utf8_lossy(&self.body));
        })
    }
}

/// Performs a blocking HTTP call from the async test without stalling the runtime.
fn call(method: &str, url: &str, context: Option<&str>, body: Option<Vec<u8>>) -> Answer {
    tokio::task::block_in_place(|| {
        let agent = agent();
        let result = match (method, body) {
            ("GET", _) => {
                let mut request = agent.get(url);
                if let Some(c) = context {
                    request = request.header("X-Ringstore-Context", c);
                }
                request.call()
            }
            ("DELETE", _) => {
                let mut request = agent.delete(url);
                if let Some(c) = context {
                    request = request.header("X-Ringstore-Context", c);
                }
                request.call()
            }
            (method, body) => {
                let mut request = if method == "PUT" {
                    agent.put(url)
                } else {
                    agent.post(url)
                };
                if let Some(c) = context {
                    request = request.header("X-Ringstore-Context", c);
                }
                request.send(body.unwrap_or_default())
            }
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let context = response
            .headers()
            .get("x-ringstore-context")
            .map(|v| v.to_str().unwrap().to_string());
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 24)
            .read_to_vec()
            .unwrap();
        Answer {
            status,
            context,
            body,
        }
    })
}

fn url(node: &RunningNode, path: &str) -> String {
    format!("http://{}{}", node.http_addr(), path)
}

/// Waits (bounded) until `condition` holds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes the CA and a node's certificate, and returns its config (ephemeral ports).
fn node_config(dir: &Path, ca: &ClusterCa, id: u64, seeds: Vec<SeedPeer>) -> NodeFileConfig {
    let cert = ca.issue_node_cert(NodeId(id)).unwrap();
    let cert_path = dir.join(format!("n{id}.pem"));
    let key_path = dir.join(format!("n{id}.key"));
    cert.save(&cert_path, &key_path).unwrap();
    let node = NodeConfig {
        gossip_interval: Duration::from_millis(100),
        hint_replay_interval: Duration::from_millis(200),
        anti_entropy_interval: Duration::from_millis(500),
        handoff_interval: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        max_value_bytes: MAX_VALUE_BYTES,
        vnodes: 64,
        ..NodeConfig::default()
    };
    NodeFileConfig {
        id: NodeId(id),
        data_dir: dir.join(format!("n{id}")),
        peer_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        zone: None,
        seed: Some(id),
        sync: SyncMode::Group,
        io_threads: None,
        tls: TlsFiles {
            ca_cert: dir.join("ca.pem"),
            cert: cert_path,
            key: key_path,
        },
        seeds,
        node,
    }
}

/// Whether every node sees three Up members, judged up, on the same ring.
fn converged(nodes: &[RunningNode]) -> bool {
    let mut digests = Vec::new();
    for node in nodes {
        let status = call("GET", &url(node, "/status"), None, None);
        if status.status != 200 {
            return false;
        }
        let json = status.json();
        let members = json["members"].as_array().unwrap();
        let all_up = members.len() == 3
            && members
                .iter()
                .all(|m| m["status"] == "Up" && m["up"] == true);
        if !all_up || json["ring"]["nodes"] != 3 {
            return false;
        }
        digests.push(json["ring_digest"].as_u64().unwrap());
    }
    digests.windows(2).all(|w| w[0] == w[1])
}

// Three nodes form a cluster over QUIC with mutual TLS, and put/get/delete work across them
// through HTTP, with the API's statuses, errors and admin faults; then they shut down cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_put_get_delete_over_http() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    let nodes = three_nodes(dir.path(), &ca).await;

    // A put on one node is read on another; the key's "/" travels percent-encoded.
    let key = "/kv/user%2F42";
    let put = call("PUT", &url(&nodes[0], key), None, Some(b"v1".to_vec()));
    assert_eq!(put.status, 204, "{}", String::from_utf8_lossy(&put.body));
    assert!(put.context.is_some());
    let got = call("GET", &url(&nodes[1], key), None, None);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"v1");
    let context = got.context.unwrap();

    // An update with the read's context supersedes; it is read back elsewhere.
    let put = call(
        "PUT",
        &url(&nodes[2], &format!("{key}?w=3")),
        Some(&context),
        Some(b"v2".to_vec()),
    );
    assert_eq!(put.status, 204, "{}", String::from_utf8_lossy(&put.body));
    let got = call("GET", &url(&nodes[0], &format!("{key}?r=3")), None, None);
    assert_eq!((got.status, got.body.as_slice()), (200, &b"v2"[..]));

    // Two blind writes are concurrent: siblings, 300 with both values.
    let sib = "/kv/siblings";
    assert_eq!(
        call("PUT", &url(&nodes[0], sib), None, Some(b"a".to_vec())).status,
        204
    );
    assert_eq!(
        call("PUT", &url(&nodes[1], sib), None, Some(b"b".to_vec())).status,
        204
    );
    let got = call("GET", &url(&nodes[2], &format!("{sib}?r=3")), None, None);
    assert_eq!(got.status, 300, "{}", String::from_utf8_lossy(&got.body));
    assert_eq!(got.json()["siblings"].as_array().unwrap().len(), 2);

    // A delete with the context of a read: the key is gone everywhere it is read.
    let got = call("GET", &url(&nodes[1], key), None, None);
    let deleted = call("DELETE", &url(&nodes[1], key), got.context.as_deref(), None);
    assert_eq!(deleted.status, 204);
    let got = call("GET", &url(&nodes[2], &format!("{key}?r=3")), None, None);
    assert_eq!(got.status, 404);
    assert!(
        got.context.is_some(),
        "a deleted key answers with its context"
    );
    assert_eq!(
        call("GET", &url(&nodes[0], "/kv/never"), None, None).status,
        404
    );

    // Errors: the documented statuses with JSON bodies.
    let too_big = call(
        "PUT",
        &url(&nodes[0], "/kv/big"),
        None,
        Some(vec![7u8; MAX_VALUE_BYTES + 1]),
    );
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.json()["error"], "value_too_large");
    let exactly = call(
        "PUT",
        &url(&nodes[0], "/kv/big"),
        None,
        Some(vec![7u8; MAX_VALUE_BYTES]),
    );
    assert_eq!(exactly.status, 204);
    let bad_context = call(
        "PUT",
        &url(&nodes[0], key),
        Some("garbage"),
        Some(b"x".to_vec()),
    );
    assert_eq!(bad_context.status, 400);
    assert_eq!(bad_context.json()["error"], "bad_context");
    let bad_r = call("GET", &url(&nodes[0], &format!("{key}?r=9")), None, None);
    assert_eq!(bad_r.status, 400);
    assert_eq!(bad_r.json()["error"], "invalid_quorum");
    let no_context = call("DELETE", &url(&nodes[0], key), None, None);
    assert_eq!(no_context.status, 400);
    assert_eq!(no_context.json()["error"], "missing_context");

    // Admin faults: node 1 cut off from both peers cannot reach W = 3; healing restores it.
    let cut = call(
        "POST",
        &url(&nodes[0], "/admin/partition"),
        None,
        Some(br#"{"peers":[2,3]}"#.to_vec()),
    );
    assert_eq!(cut.status, 200);
    assert_eq!(cut.json()["blocked"], serde_json::json!([2, 3]));
    let failed = call(
        "PUT",
        &url(&nodes[0], "/kv/cut?w=3&timeout_ms=300"),
        None,
        Some(b"x".to_vec()),
    );
    assert_eq!(failed.status, 503);
    assert_eq!(failed.json()["error"], "quorum_not_reached");
    let healed = call("POST", &url(&nodes[0], "/admin/heal"), None, None);
    assert_eq!(healed.status, 200);
    eventually("a W = 3 write after healing", || {
        call(
            "PUT",
            &url(&nodes[0], "/kv/cut?w=3&timeout_ms=500"),
            None,
            Some(b"y".to_vec()),
        )
        .status
            == 204
    })
    .await;

    // Metrics: requests by kind and outcome, and transport counters.
    let metrics = call("GET", &url(&nodes[0], "/metrics"), None, None);
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains(r#"ringstore_requests_total{kind="put",outcome="ok"}"#),
        "{text}"
    );
    assert!(text.contains("ringstore_frames_dropped_total{reason=\"partitioned\"}"));
    assert!(text.contains("ringstore_peers_up 2"), "{text}");

    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

/// Starts three nodes in `dir` with certificates of `ca` and waits until they agree on the ring.
async fn three_nodes(dir: &Path, ca: &ClusterCa) -> Vec<RunningNode> {
    ca.save(&dir.join("ca.pem"), &dir.join("ca.key")).unwrap();
    let first = start(node_config(dir, ca, 1, vec![])).await.unwrap();
    let seed = vec![SeedPeer {
        id: NodeId(1),
        addr: first.peer_addr(),
    }];
    let second = start(node_config(dir, ca, 2, seed.clone())).await.unwrap();
    let third = start(node_config(dir, ca, 3, seed)).await.unwrap();
    let nodes = vec![first, second, third];
    eventually("the three nodes to agree on the ring", || converged(&nodes)).await;
    nodes
}

/// A native client of `nodes` whose certificate `ca` signed.
fn native_client(dir: &Path, ca: &ClusterCa, nodes: &[RunningNode]) -> NativeClient {
    let addrs = nodes
        .iter()
        .map(|n| NodeAddr {
            id: n.id(),
            addr: n.peer_addr(),
        })
        .collect();
    native_client_of(dir, ca, addrs)
}

/// A native client of the nodes at `addrs` whose certificate `ca` signed (`dir` holds
/// `ca.pem`).
fn native_client_of(dir: &Path, ca: &ClusterCa, addrs: Vec<NodeAddr>) -> NativeClient {
    let identity = ClientIdentity {
        ca_cert: dir.join("ca.pem"),
        cert: dir.join("client.pem"),
        key: dir.join("client.key"),
    };
    ca.issue_client_cert()
        .unwrap()
        .save(&identity.cert, &identity.key)
        .unwrap();
    NativeClient::new(&identity, addrs).unwrap()
}

/// A client-protocol frame whose payload is `payload`, whatever it holds.
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// A request payload of the current version with id `id` and `body` as its body bytes.
fn request_payload(id: RequestId, body: &[u8]) -> Vec<u8> {
    let mut payload = postcard::to_stdvec(&CLIENT_PROTOCOL_VERSION).unwrap();
    payload.extend(postcard::to_stdvec(&id).unwrap());
    payload.extend_from_slice(body);
    payload
}

/// Reads one response frame from a raw client stream.
async fn read_response(recv: &mut quinn::RecvStream) -> (RequestId, ClientResponse) {
    let mut prefix = [0; FRAME_HEADER_BYTES];
    recv.read_exact(&mut prefix).await.unwrap();
    let mut payload = vec![0; u32::from_le_bytes(prefix) as usize];
    recv.read_exact(&mut payload).await.unwrap();
    decode_response(&payload).unwrap()
}

/// Reads from a raw client stream until `frames` whole request frames arrived; returns their
/// ids.
async fn read_requests(recv: &mut quinn::RecvStream, frames: usize) -> Vec<RequestId> {
    let mut inbox = Vec::new();
    let mut ids = Vec::new();
    while ids.len() < frames {
        let chunk = recv.read_chunk(1 << 16, true).await.unwrap();
        let Some(chunk) = chunk else {
            panic!(
                "the stream ended after requests {ids:?} and {} bytes",
                inbox.len()
            );
        };
        inbox.extend_from_slice(&chunk.bytes);
        while let Some((payload, used)) = next_frame(&inbox).unwrap() {
            ids.push(decode_request(payload).unwrap().0);
            inbox.drain(..used);
        }
    }
    ids
}

// The native client (QUIC + postcard, ALPN ringstore-client/2) reads, writes, resolves
// siblings and deletes across three nodes; many calls at once share one stream per node and
// each gets its own answer; the node's errors come back by kind; a malformed frame is answered
// BadRequest under its id, an unframeable stream is reset and the connection stays usable; a
// client of another CA cannot connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_the_native_client() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    let nodes = three_nodes(dir.path(), &ca).await;
    let client = native_client(dir.path(), &ca, &nodes);
    let [n1, n2, n3] = [NodeId(1), NodeId(2), NodeId(3)];
    assert!(client.connect_all().await.is_empty());

    // Write through one node, read through another; update with the context.
    let (context, _) = client
        .put(
            n1,
            b"k".to_vec(),
            b"v1".to_vec(),
            CausalContext::empty(),
            None,
        )
        .await
        .unwrap();
    assert!(!context.is_empty());
    let read = client.get(n2, b"k".to_vec(), Some(3)).await.unwrap();
    assert_eq!(read.values, vec![b"v1".to_vec()]);
    client
        .put(n3, b"k".to_vec(), b"v2".to_vec(), read.context, Some(3))
        .await
        .unwrap();
    let read = client.get(n1, b"k".to_vec(), Some(3)).await.unwrap();
    assert_eq!(read.values, vec![b"v2".to_vec()]);

    // Blind writes through two nodes are siblings; a write with their context resolves them.
    for (node, value) in [(n1, b"a"), (n2, b"b")] {
        client
            .put(
                node,
                b"s".to_vec(),
                value.to_vec(),
                CausalContext::empty(),
                Some(3),
            )
            .await
            .unwrap();
    }
    let read = client.get(n3, b"s".to_vec(), Some(3)).await.unwrap();
    assert_eq!(read.values.len(), 2, "{:?}", read.values);
    client
        .put(n3, b"s".to_vec(), b"ab".to_vec(), read.context, Some(3))
        .await
        .unwrap();
    let read = client.get(n2, b"s".to_vec(), Some(3)).await.unwrap();
    assert_eq!(read.values, vec![b"ab".to_vec()]);

    // Delete with a read's context: gone, tombstones reported.
    client
        .delete(n2, b"s".to_vec(), read.context, Some(3))
        .await
        .unwrap();
    let read = client.get(n1, b"s".to_vec(), Some(3)).await.unwrap();
    assert!(read.values.is_empty() && read.has_tombstones);

    // The node's own errors arrive by kind.
    let too_big = client
        .put(
            n1,
            b"big".to_vec(),
            vec![0; MAX_VALUE_BYTES + 1],
            CausalContext::empty(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(too_big.kind(), "value_too_large", "{too_big}");
    let bad_quorum = client.get(n1, b"k".to_vec(), Some(9)).await.unwrap_err();
    assert_eq!(bad_quorum.kind(), "invalid_quorum", "{bad_quorum}");
    let unknown = client
        .get(NodeId(99), b"k".to_vec(), None)
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), "unknown_node");

    // Many calls at once, pipelined on each node's one stream and finishing in any order:
    // every call gets the answer to its own request.
    let keys: Vec<String> = (0..300).map(|i| format!("pipelined-{i}")).collect();
    let node_of = |i: usize| [n1, n2, n3][i % 3];
    let writes = join_all(keys.iter().enumerate().map(|(i, key)| {
        client.put(
            node_of(i),
            key.clone(),
            format!("value-{i}"),
            CausalContext::empty(),
            Some(2),
        )
    }))
    .await;
    assert!(writes.iter().all(Result::is_ok), "{writes:?}");
    let reads = join_all(
        keys.iter()
            .enumerate()
            .map(|(i, key)| client.get(node_of(i + 1), key.clone(), Some(2))),
    )
    .await;
    for (i, read) in reads.into_iter().enumerate() {
        assert_eq!(
            read.unwrap().values,
            vec![format!("value-{i}").into_bytes()]
        );
    }

    // Raw frames on a raw connection.
    let tls = NodeTls::load(
        &dir.path().join("ca.pem"),
        &dir.path().join("client.pem"),
        &dir.path().join("client.key"),
    )
    .unwrap();
    let mut raw = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    raw.set_default_client_config(tls.quic_native_client_config().unwrap());
    let conn = raw
        .connect(nodes[0].peer_addr(), &node_name(n1))
        .unwrap()
        .await
        .unwrap();
    // A garbage body behind a readable id: answered BadRequest under that id, twice on one
    // stream, and a valid request after them is still served.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    for id in [41, 42] {
        send.write_all(&client_frame(&request_payload(id, &[0xff; 9])))
            .await
            .unwrap();
        let (answered, answer) = read_response(&mut recv).await;
        assert_eq!(answered, id);
        assert!(
            matches!(answer, ClientResponse::BadRequest { .. }),
            "{answer:?}"
        );
    }
    let mut frame = Vec::new();
    encode_request(&mut frame, 43, &ClientRequest::get(b"k".to_vec())).unwrap();
    send.write_all(&frame).await.unwrap();
    let (answered, answer) = read_response(&mut recv).await;
    assert_eq!(answered, 43);
    assert!(matches!(answer, ClientResponse::Done(Ok(_))), "{answer:?}");
    // A length over the limit: the stream is reset, and the client finds out on reading.
    send.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    let mut byte = [0];
    let refused = recv.read_exact(&mut byte).await.unwrap_err();
    assert!(
        matches!(
            refused,
            quinn::ReadExactError::ReadError(quinn::ReadError::Reset(code)) if code == 1u32.into()
        ),
        "{refused:?}"
    );
    // The connection's other streams are still served, and the stream's end is answered with
    // the stream's end once every request was answered.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&frame).await.unwrap();
    send.finish().unwrap();
    let (answered, answer) = read_response(&mut recv).await;
    assert_eq!(answered, 43);
    assert!(matches!(answer, ClientResponse::Done(Ok(_))), "{answer:?}");
    assert_eq!(recv.read_to_end(1).await.unwrap(), Vec::<u8>::new());
    conn.close(0u32.into(), b"done");

    // A client whose certificate another CA signed cannot connect.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue_ca = ClusterCa::generate().unwrap();
    rogue_ca
        .save(
            &rogue_dir.path().join("ca.pem"),
            &rogue_dir.path().join("ca.key"),
        )
        .unwrap();
    let rogue = native_client(rogue_dir.path(), &rogue_ca, &nodes);
    let refused = rogue.get(n1, b"k".to_vec(), None).await.unwrap_err();
    // TLS 1.3: the refusal reaches the client during the dial or just after it.
    assert!(
        ["unreachable", "connection"].contains(&refused.kind()),
        "{refused}"
    );

    // Concurrent first calls to a node share one dial: one connection, not one each.
    let fresh = native_client(dir.path(), &ca, &nodes);
    let gets = (0..16).map(|_| fresh.get(n2, b"k".to_vec(), None));
    for read in futures_util::future::join_all(gets).await {
        assert_eq!(read.unwrap().values, vec![b"v2".to_vec()]);
    }
    assert_eq!(fresh.open_connections(), 1);
    fresh.close().await;

    client.close().await;
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

// When a node's connection dies under waiting calls, every one of them fails with
// `connection` at once (not at its timeout), and the next call re-dials. The node is a bare
// QUIC server with a node certificate, so the test decides when the connection dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_client_fails_waiting_calls_when_the_link_dies() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    ca.save(&dir.path().join("ca.pem"), &dir.path().join("ca.key"))
        .unwrap();
    let tls = NodeTls::from_pem_strings(&ca, &ca.issue_node_cert(NodeId(1)).unwrap()).unwrap();
    let server = quinn::Endpoint::server(
        tls.quic_server_config().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let fake_node = tokio::spawn(async move {
        // First connection: wait until three requests are in, then drop the connection.
        let conn = server.accept().await.unwrap().await.unwrap();
        let (_send, mut recv) = conn.accept_bi().await.unwrap();
        assert_eq!(read_requests(&mut recv, 3).await.len(), 3);
        conn.close(7u32.into(), b"fake node gone");
        // Second connection: answer one request, under its id.
        let conn = server.accept().await.unwrap().await.unwrap();
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let ids = read_requests(&mut recv, 1).await;
        let mut frame = Vec::new();
        encode_response(&mut frame, ids[0], &ClientResponse::Overloaded).unwrap();
        send.write_all(&frame).await.unwrap();
        conn.closed().await;
    });
    let client = native_client_of(
        dir.path(),
        &ca,
        vec![NodeAddr {
            id: NodeId(1),
            addr,
        }],
    );

    // Dialled first: calls racing to dial would each open a connection, and the fake node
    // accepts one at a time.
    assert!(client.connect_all().await.is_empty());
    let calls = join_all((0..3).map(|i| client.get(NodeId(1), format!("k{i}"), None))).await;
    for call in calls {
        let error = call.unwrap_err();
        assert_eq!(error.kind(), "connection", "{error}");
    }
    let again = client
        .get(NodeId(1), b"k".to_vec(), None)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), "overloaded", "{again}");

    client.close().await;
    fake_node.await.unwrap();
}

/// The path of the built `ringstore` binary.
fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ringstore")
}

// A config with an unknown field exits 2 with a message naming the field.
#[test]
fn bad_config_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "id = 1\ndata_dir = \"/tmp/x\"\npeer_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\nnodez = 3\n",
    )
    .unwrap();
    let output = std::process::Command::new(binary())
        .args(["node", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nodez"), "{stderr}");
}

// `ringstore node` serves HTTP once started and exits 0 on SIGTERM after a clean shutdown;
// a second node on the same HTTP port exits non-zero naming the address.
#[test]
fn node_process_serves_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    ca.save(&dir.path().join("ca.pem"), &dir.path().join("ca.key"))
        .unwrap();
    let config = node_config(dir.path(), &ca, 1, vec![]);
    let path = dir.path().join("n1.toml");
    std::fs::write(&path, config.to_toml().unwrap()).unwrap();
    let mut child = std::process::Command::new(binary())
        .args(["node", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The "node started" log line names the HTTP address bound.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let http_addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("the node exited before starting")
            .unwrap();
        if let Some(rest) = line.split("http_addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let status = agent()
        .get(&format!("http://{http_addr}/status"))
        .call()
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);

    // Same HTTP port: refused with a message naming it.
    let mut clash = config.clone();
    clash.http_addr = http_addr;
    clash.data_dir = dir.path().join("clash");
    let clash_path = dir.path().join("clash.toml");
    std::fs::write(&clash_path, clash.to_toml().unwrap()).unwrap();
    let output = std::process::Command::new(binary())
        .args(["node", "--config"])
        .arg(&clash_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&http_addr.to_string()),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Drain the log so the child never blocks on a full pipe, then collect its exit status.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "log tail: {rest:?}");
    assert!(
        rest.iter().any(|line| line.contains("clean shutdown")),
        "{rest:?}"
    );
}

// A write acknowledged before a clean shutdown is read back after a restart on the same data
// directory (the final sync, and the store's recovery, in the real process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    ca.save(&dir.path().join("ca.pem"), &dir.path().join("ca.key"))
        .unwrap();
    let mut config = node_config(dir.path(), &ca, 1, vec![]);
    config.node.n = 1;
    config.node.r = 1;
    config.node.w = 1;
    let node = start(config.clone()).await.unwrap();
    eventually("the node to route", || {
        call("GET", &url(&node, "/status"), None, None).json()["ring"]["nodes"] == 1
    })
    .await;
    for i in 0..20 {
        let put = call(
            "PUT",
            &url(&node, &format!("/kv/k{i}")),
            None,
            Some(format!("v{i}").into_bytes()),
        );
        assert_eq!(put.status, 204);
    }
    node.shutdown().await.unwrap();

    let node = start(config).await.unwrap();
    eventually("the restarted node to route", || {
        call("GET", &url(&node, "/status"), None, None).json()["ring"]["nodes"] == 1
    })
    .await;
    for i in 0..20 {
        let got = call("GET", &url(&node, &format!("/kv/k{i}")), None, None);
        assert_eq!(got.status, 200, "k{i}");
        assert_eq!(got.body, format!("v{i}").into_bytes());
    }
    node.shutdown().await.unwrap();
}
