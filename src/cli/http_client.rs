//! A small blocking HTTP client for one ringstore node's API: `get`, `put`, `delete`, `/status`
//! and the `/admin/*` fault-injection and decommission endpoints (the table and item calls
//! are in [`super::tables`]).
//!
//! This is what `ringstore put/get/delete` and every `ringstore cluster` command use, and what the
//! end-to-end tests use, so the tests exercise the same code as the command line.
//!
//! Any node can coordinate any key (Dynamo §4.5: a request may reach any node, which forwards it
//! or coordinates it), so a client only needs one reachable node. [`with_fallback`] tries a list
//! of nodes in order and moves to the next only when a node cannot be reached; an answer from a
//! node (even "quorum not reached") is final.
//!
//! # Guarantees
//! - Keys are arbitrary bytes, percent-encoded in the path, so any key round-trips.
//! - A write falls back to the next node only when the connection could not be made: a write
//!   that may have reached a node is never sent again to another (that could leave an extra
//!   sibling). Reads fall back on any transport failure.
//! - Every call is bounded by [`REQUEST_TIMEOUT`] (a node's own default request deadline is 2 s).
//!
//! # Limits
//! - Plain HTTP: the node API is meant for the local machine or a trusted network; peer traffic
//!   is what mutual TLS protects.
//! - A response body is read up to [`MAX_RESPONSE_BYTES`].

use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use ringstore_core::NodeId;
use ringstore_core::request::ReadResult;
use std::net::SocketAddr;
use std::time::Duration;

/// The HTTP header that carries a causal context, in both directions.
pub const CONTEXT_HEADER: &str = "X-Ringstore-Context";

/// The longest a whole HTTP exchange may take, end to end.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest to wait for a TCP connection to a node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest response body read (a read with many siblings of 1 MiB values is the worst case).
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Bytes left as they are in a key's path segment (RFC 3986 unreserved characters).
pub(crate) const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The key has one or more live values (more than one: concurrent writes, siblings).
    Found {
        /// The sibling values, as the node returned them.
        values: Vec<Vec<u8>>,
        /// The context to pass with the next write or delete of the key.
        context: String,
    },
    /// The key has no live value.
    NotFound {
        /// The context of its tombstones, when the key was deleted (pass it to a write that
        /// follows the delete).
        context: Option<String>,
    },
}

impl From<ReadResult> for ReadOutcome {
    /// A native read as the CLI shows it (the same shape as HTTP's 200/300/404).
    fn from(read: ReadResult) -> Self {
        if read.values.is_empty() {
            let context =
                (read.has_tombstones && !read.context.is_empty()).then(|| read.context.encode());
            ReadOutcome::NotFound { context }
        } else {
            ReadOutcome::Found {
                values: read.values,
                context: read.context.encode(),
            }
        }
    }
}

pub use crate::runtime::status::{MemberView, NodeStatus, RingView};

// The bodies the server writes are the ones the client reads: one type each, in `http`.
use crate::http::error::ErrorBody;
use crate::http::kv::SiblingsBody;

impl NodeStatus {
    /// Every hint the node holds, for any owner.
    pub fn hints_total(&self) -> u64 {
        self.hints_pending.values().sum()
    }

    /// This node's view of `peer`, if it knows it.
    pub fn member(&self, peer: NodeId) -> Option<&MemberView> {
        self.members.iter().find(|m| m.id == peer.0)
    }

    /// The share of the ring `node` replicates (0..=1) as this node computes it.
    pub fn ownership_of(&self, node: NodeId) -> Option<f64> {
        self.ring.ownership.get(&node.0.to_string()).copied()
    }
}

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    /// The node could not be reached (connection refused, reset, or timed out).
    #[error("node at {addr} is unreachable: {source}")]
    Unreachable {
        /// The node's HTTP address.
        addr: SocketAddr,
        /// The transport error.
        source: Box<ureq::Error>,
        /// Whether the request surely never reached the node (the connection was never made).
        never_sent: bool,
    },
    /// The node answered with an error status.
    #[error("node at {addr} answered {status} {kind}: {detail}")]
    Server {
        /// The node's HTTP address.
        addr: SocketAddr,
        /// The HTTP status.
        status: u16,
        /// The error kind from the body (`"quorum"`, `"bad_request"`, ...), or the status text.
        kind: String,
        /// The node's explanation.
        detail: String,
    },
    /// The node answered something this client does not understand.
    #[error("node at {addr} sent an unexpected response: {what}")]
    BadResponse {
        /// The node's HTTP address.
        addr: SocketAddr,
        /// What was wrong with it.
        what: String,
    },
    /// No node of the list could be reached.
    #[error("no node could be reached (tried {tried}); is the cluster running?", tried = fmt_addrs(.tried))]
    NoNodeReachable {
        /// The addresses tried, in order.
        tried: Vec<SocketAddr>,
    },
}

fn fmt_addrs(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A blocking client for nodes' HTTP APIs; one per process is enough (it pools connections).
#[derive(Clone, Debug)]
pub struct HttpClient {
    agent: ureq::Agent,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with the default timeouts.
    pub fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A read with siblings answers `300 Multiple Choices`: a result, not a redirect.
            .max_redirects(0)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .new_agent();
        HttpClient { agent }
    }

    /// The agent the calls share (`tables.rs` adds the table and item calls).
    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Writes `value` under `key`, superseding what `context` saw (`None`: a blind write that
    /// becomes a sibling of any value already there). Returns the new context.
    pub fn put(
        &self,
        addr: SocketAddr,
        key: &[u8],
        value: &[u8],
        context: Option<&str>,
        w: Option<u8>,
    ) -> Result<String, HttpClientError> {
        self.write(addr, kv_url(addr, key, "w", w), value, context)
    }

    /// Writes `value` under `key`, superseding whatever the coordinator holds
    /// (`PUT ?overwrite=true`). Returns the new context.
    pub fn overwrite(
        &self,
        addr: SocketAddr,
        key: &[u8],
        value: &[u8],
        w: Option<u8>,
    ) -> Result<String, HttpClientError> {
        let url = kv_url(addr, key, "w", w);
        let separator = if url.contains('?') { '&' } else { '?' };
        self.write(addr, format!("{url}{separator}overwrite=true"), value, None)
    }

    fn write(
        &self,
        addr: SocketAddr,
        url: String,
        value: &[u8],
        context: Option<&str>,
    ) -> Result<String, HttpClientError> {
        let mut request = self.agent.put(&url);
        if let Some(context) = context {
            request = request.header(CONTEXT_HEADER, context);
        }
        let mut response = request.send(value).map_err(|e| unreachable(addr, e))?;
        match response.status().as_u16() {
            200 | 204 => context_header(addr, &response),
            _ => Err(server_error(addr, &mut response)),
        }
    }

    /// Reads `key` with read quorum `r` (`None`: the node's default).
    pub fn get(
        &self,
        addr: SocketAddr,
        key: &[u8],
        r: Option<u8>,
    ) -> Result<ReadOutcome, HttpClientError> {
        let url = kv_url(addr, key, "r", r);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| unreachable(addr, e))?;
        match response.status().as_u16() {
            200 => {
                let context = context_header(addr, &response)?;
                let value = read_body(addr, &mut response)?;
                Ok(ReadOutcome::Found {
                    values: vec![value],
                    context,
                })
            }
            300 => {
                let body = read_body(addr, &mut response)?;
                let parsed: SiblingsBody =
                    serde_json::from_slice(&body).map_err(|e| HttpClientError::BadResponse {
                        addr,
                        what: format!("siblings body is not the expected JSON: {e}"),
                    })?;
                let mut values = Vec::with_capacity(parsed.siblings.len());
                for sibling in parsed.siblings {
                    values.push(decode_base64(&sibling.value).ok_or_else(|| {
                        HttpClientError::BadResponse {
                            addr,
                            what: "a sibling value is not base64".to_string(),
                        }
                    })?);
                }
                Ok(ReadOutcome::Found {
                    values,
                    context: parsed.context,
                })
            }
            404 => Ok(ReadOutcome::NotFound {
                context: optional_context_header(&response),
            }),
            _ => Err(server_error(addr, &mut response)),
        }
    }

    /// Deletes what `context` saw of `key` (writes a tombstone). Returns the new context.
    pub fn delete(
        &self,
        addr: SocketAddr,
        key: &[u8],
        context: &str,
        w: Option<u8>,
    ) -> Result<String, HttpClientError> {
        let url = kv_url(addr, key, "w", w);
        let mut response = self
            .agent
            .delete(&url)
            .header(CONTEXT_HEADER, context)
            .call()
            .map_err(|e| unreachable(addr, e))?;
        match response.status().as_u16() {
            200 | 204 => context_header(addr, &response),
            _ => Err(server_error(addr, &mut response)),
        }
    }

    /// The node's `/status`.
    pub fn status(&self, addr: SocketAddr) -> Result<NodeStatus, HttpClientError> {
        let mut response = self
            .agent
            .get(&format!("http://{addr}/status"))
            .call()
            .map_err(|e| unreachable(addr, e))?;
        if response.status().as_u16() != 200 {
            return Err(server_error(addr, &mut response));
        }
        let body = read_body(addr, &mut response)?;
        serde_json::from_slice(&body).map_err(|e| HttpClientError::BadResponse {
            addr,
            what: format!("/status is not the expected JSON: {e}"),
        })
    }

    /// Makes the node drop all traffic to and from `peers` (a network partition).
    pub fn partition(&self, addr: SocketAddr, peers: &[NodeId]) -> Result<(), HttpClientError> {
        let ids: Vec<u64> = peers.iter().map(|p| p.0).collect();
        self.admin(addr, "partition", &serde_json::json!({ "peers": ids }))
    }

    /// Makes the node delay its traffic to `peers` (`None`: to every peer) by `delay_ms`.
    pub fn slow(
        &self,
        addr: SocketAddr,
        peers: Option<&[NodeId]>,
        delay_ms: u64,
    ) -> Result<(), HttpClientError> {
        let ids: Option<Vec<u64>> = peers.map(|p| p.iter().map(|p| p.0).collect());
        self.admin(
            addr,
            "slow",
            &serde_json::json!({ "peers": ids, "delay_ms": delay_ms }),
        )
    }

    /// Clears every partition and delay the node applies.
    pub fn heal(&self, addr: SocketAddr) -> Result<(), HttpClientError> {
        self.admin(addr, "heal", &serde_json::json!({}))
    }

    /// Starts the node's decommission: it leaves the ring and hands its keys over.
    pub fn leave(&self, addr: SocketAddr) -> Result<(), HttpClientError> {
        self.admin(addr, "leave", &serde_json::json!({}))
    }

    fn admin(
        &self,
        addr: SocketAddr,
        action: &str,
        body: &serde_json::Value,
    ) -> Result<(), HttpClientError> {
        let mut response = self
            .agent
            .post(&format!("http://{addr}/admin/{action}"))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| unreachable(addr, e))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(server_error(addr, &mut response)),
        }
    }
}

/// Runs `op` against each address in turn until one is reachable. Moves on only when a node is
/// unreachable (and, when `idempotent` is false, only when the request surely never reached it).
pub fn with_fallback<T>(
    addrs: &[SocketAddr],
    idempotent: bool,
    mut op: impl FnMut(SocketAddr) -> Result<T, HttpClientError>,
) -> Result<T, HttpClientError> {
    let mut tried = Vec::new();
    let mut last = None;
    for &addr in addrs {
        match op(addr) {
            Err(e @ HttpClientError::Unreachable { never_sent, .. })
                if idempotent || never_sent =>
            {
                tried.push(addr);
                last = Some(e);
            }
            other => return other,
        }
    }
    match last {
        // With a single node to try, its own error says more than "no node could be reached".
        Some(e) if tried.len() == 1 => Err(e),
        _ => Err(HttpClientError::NoNodeReachable { tried }),
    }
}

fn kv_url(addr: SocketAddr, key: &[u8], quorum_name: &str, quorum: Option<u8>) -> String {
    let key = percent_encode(key, KEY_ESCAPES);
    match quorum {
        Some(q) => format!("http://{addr}/kv/{key}?{quorum_name}={q}"),
        None => format!("http://{addr}/kv/{key}"),
    }
}

pub(crate) fn unreachable(addr: SocketAddr, error: ureq::Error) -> HttpClientError {
    let never_sent = match &error {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => true,
        ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    };
    HttpClientError::Unreachable {
        addr,
        source: Box::new(error),
        never_sent,
    }
}

pub(crate) fn read_body(
    addr: SocketAddr,
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<Vec<u8>, HttpClientError> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| unreachable(addr, e))
}

fn optional_context_header(response: &ureq::http::Response<ureq::Body>) -> Option<String> {
    response
        .headers()
        .get(CONTEXT_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn context_header(
    addr: SocketAddr,
    response: &ureq::http::Response<ureq::Body>,
) -> Result<String, HttpClientError> {
    optional_context_header(response).ok_or_else(|| HttpClientError::BadResponse {
        addr,
        what: format!("no {CONTEXT_HEADER} header"),
    })
}

pub(crate) fn server_error(
    addr: SocketAddr,
    response: &mut ureq::http::Response<ureq::Body>,
) -> HttpClientError {
    let status = response.status();
    let body = read_body(addr, response).unwrap_or_default();
    let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    let kind = if parsed.error.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        parsed.error
    };
    let detail = if parsed.detail.is_empty() {
        String::from_utf8_lossy(&body).trim().to_string()
    } else {
        parsed.detail
    };
    HttpClientError::Server {
        addr,
        status: status.as_u16(),
        kind,
        detail,
    }
}

/// Sibling values are base64; accept both the standard and the URL-safe alphabet, padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_encoded_in_the_path() {
        // Goal: any key bytes (slashes, spaces, non-UTF-8) form one safe path segment.
        let addr: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        assert_eq!(
            kv_url(addr, b"user/42 x", "w", Some(2)),
            "http://127.0.0.1:8001/kv/user%2F42%20x?w=2"
        );
        assert_eq!(
            kv_url(addr, &[0xff, b'a', b'-'], "r", None),
            "http://127.0.0.1:8001/kv/%FFa-"
        );
    }

    #[test]
    fn status_json_parses_and_tolerates_extra_fields() {
        // Goal: the contract's /status shape parses, and fields added later do not break it.
        let text = r#"{"id":1,"status":"Up","ring_digest":123,
          "members":[{"id":1,"addr":"127.0.0.1:7001","status":"Up","up":true,"phi":0.0},
                     {"id":2,"addr":"127.0.0.1:7002","status":"Up","up":false,"phi":9.5}],
          "ring":{"nodes":5,"ownership":{"1":0.6}},"keys":10,"hints_pending":{"2":3,"3":1},
          "last_anti_entropy_ms":null,"stats":{"writes_ok":1},"something_new":true}"#;
        let status: NodeStatus = serde_json::from_str(text).unwrap();
        assert_eq!(status.hints_total(), 4);
        assert_eq!(status.ownership_of(NodeId(1)), Some(0.6));
        assert!(!status.member(NodeId(2)).unwrap().up);
        assert_eq!(status.last_anti_entropy_ms, None);
        assert_eq!(status.stats.writes_ok, 1);
    }

    #[test]
    fn fallback_moves_on_only_past_unreachable_nodes() {
        // Goal: an unreachable node is skipped, an answering node's error is final.
        let addrs: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let mut seen = Vec::new();
        let result: Result<(), _> = with_fallback(&addrs, false, |addr| {
            seen.push(addr);
            if addr.port() == 1 {
                Err(HttpClientError::Unreachable {
                    addr,
                    source: Box::new(ureq::Error::ConnectionFailed),
                    never_sent: true,
                })
            } else {
                Err(HttpClientError::Server {
                    addr,
                    status: 503,
                    kind: "quorum".into(),
                    detail: "1 of 2".into(),
                })
            }
        });
        assert!(matches!(
            result,
            Err(HttpClientError::Server { status: 503, .. })
        ));
        assert_eq!(seen.len(), 2);
        // A write that may have been sent is not retried elsewhere.
        let result: Result<(), _> = with_fallback(&addrs, false, |addr| {
            Err(HttpClientError::Unreachable {
                addr,
                source: Box::new(ureq::Error::ConnectionFailed),
                never_sent: false,
            })
        });
        assert!(matches!(result, Err(HttpClientError::Unreachable { .. })));
    }

    #[test]
    fn a_closed_port_is_unreachable_and_never_sent() {
        // Goal: a node that is down is reported as unreachable, which lets --dir fall back.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = HttpClient::new().get(addr, b"k", None).unwrap_err();
        assert!(
            matches!(
                err,
                HttpClientError::Unreachable {
                    never_sent: true,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn sibling_values_decode_in_either_alphabet() {
        // Goal: the siblings body decodes whichever base64 alphabet the server picked.
        assert_eq!(decode_base64("aGk/Pz8=").unwrap(), b"hi???");
        assert_eq!(decode_base64("aGk_Pz8").unwrap(), b"hi???");
        assert_eq!(decode_base64("!!"), None);
    }
}
