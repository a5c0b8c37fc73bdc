//! The node's side of the native client protocol: serving client connections on the node's
//! QUIC endpoint.
//!
//! The transport hands over every connection whose handshake agreed on ALPN
//! `ringstore-client/2` (see `tls::ALPN_CLIENT`). A client pipelines its requests on a
//! long-lived bidirectional stream (one per connection, usually). Each stream is served by one
//! task, never one per request: it cuts request frames from what arrives, starts each through
//! the [`FrontDoor`] (like an HTTP request) without waiting for the ones before it, and writes
//! each response, tagged with its request's id, as soon as it is ready, every response ready
//! at that moment in one write.
//!
//! # Guarantees
//! - Every request frame whose id is readable gets exactly one response frame, unless the
//!   client reset the stream, the connection died or the stream was reset as unframeable
//!   (below): a malformed frame is answered
//!   `BadRequest`, a full driver queue `Overloaded` at once, a stopping node `ShuttingDown`,
//!   an answer too large for a frame `Unencodable`.
//! - A stream that cannot be cut into frames (a length prefix over `MAX_CLIENT_FRAME_BYTES`)
//!   or that carries a frame whose id cannot be read is reset, with a debug log: no answer
//!   could reach its caller. The connection's other streams are unaffected.
//! - At most [`MAX_IN_FLIGHT_PER_STREAM`] requests of a stream run at once; past it the task
//!   stops reading the stream until some finish, and QUIC flow control holds the client back.
//! - A client cannot pass as a peer: client connections never reach the peer path (their
//!   frames are `native_protocol` frames, decoded as such), and peer connections never reach
//!   this one.
//! - Requests and outcomes are counted in the same metrics as HTTP's
//!   (`ringstore_requests_total{kind, outcome}` and the latency histogram).
//!
//! # Known limits
//! - While a write of responses waits (flow control, congestion), the task reads no new
//!   requests; the requests already started keep running in the core meanwhile.
//! - Memory is bounded in requests, not bytes: a stream's requests in flight hold their
//!   frames (each at most `MAX_CLIENT_FRAME_BYTES`). A client may open
//!   `MAX_CONCURRENT_CLIENT_STREAMS` streams per connection.

use super::front_door::{DoorError, FrontDoor};
use super::metrics::Metrics;
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use quinn::{Connection, RecvStream, SendStream, VarInt};
use ringstore_core::native_protocol::{
    BadFrame, ClientResponse, RequestId, decode_request, encode_response, next_frame,
};
use ringstore_core::protocol::ProtocolError;
use ringstore_core::request::{ClientOp, ClientReply, ClientRequest, ItemAction};
use std::sync::Arc;
use std::time::Instant;

/// Requests of one stream that may run at once.
pub const MAX_IN_FLIGHT_PER_STREAM: usize = 1024;

/// The most bytes taken from the stream per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Gathering ready responses into one write stops once this many bytes are waiting.
const MAX_WRITE_BYTES: usize = 1 << 20;

/// Stream error code (reset and stop) for a stream that cannot be cut into frames.
const UNFRAMEABLE_STREAM: u32 = 1;

/// Serves the request streams of one client connection until it closes.
pub async fn serve_client(conn: Connection, door: Arc<FrontDoor>, metrics: Arc<Metrics>) {
    let remote = conn.remote_address();
    tracing::debug!(%remote, "client connected");
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(door.clone(), metrics.clone(), send, recv));
            }
            Err(error) => {
                tracing::debug!(%remote, %error, "client connection ended");
                return;
            }
        }
    }
}

/// Serves one request stream: reads frames, runs their requests concurrently, writes the
/// answers as they finish; finishes its side once the client finished its own and every
/// request was answered.
async fn serve_stream(
    door: Arc<FrontDoor>,
    metrics: Arc<Metrics>,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let stream = recv.id();
    let mut in_flight = FuturesUnordered::new();
    // Bytes read but not yet cut into frames (at most a partial frame plus one read, or the
    // frames waiting for room under the in-flight bound).
    let mut inbox: Vec<u8> = Vec::new();
    // Encoded responses waiting for their write.
    let mut outbox: Vec<u8> = Vec::new();
    let mut client_finished = false;
    loop {
        // Start every request already read that the in-flight bound has room for.
        let mut used = 0;
        while in_flight.len() < MAX_IN_FLIGHT_PER_STREAM {
            let (payload, len) = match next_frame(&inbox[used..]) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => return refuse_stream(&mut send, &mut recv, &error),
            };
            used += len;
            let started = Instant::now();
            match decode_request(payload) {
                Ok((id, request)) => {
                    in_flight.push(answer(&door, &metrics, id, Ok(request), started));
                }
                Err(BadFrame {
                    id: Some(id),
                    error,
                }) => in_flight.push(answer(&door, &metrics, id, Err(error), started)),
                Err(BadFrame { id: None, error }) => {
                    return refuse_stream(&mut send, &mut recv, &error);
                }
            }
        }
        inbox.drain(..used);

        let reading = !client_finished && in_flight.len() < MAX_IN_FLIGHT_PER_STREAM;
        if !reading && in_flight.is_empty() {
            // The client finished its side and every request it sent was answered.
            if !inbox.is_empty() {
                tracing::debug!(
                    ?stream,
                    bytes = inbox.len(),
                    "client stream ended inside a frame"
                );
            }
            let _ = send.finish();
            return;
        }
        tokio::select! {
            // Answers first: they free room under the bound and their callers are waiting.
            biased;
            Some((id, response)) = in_flight.next(), if !in_flight.is_empty() => {
                encode_answer(&mut outbox, id, &response);
                while outbox.len() < MAX_WRITE_BYTES {
                    match in_flight.next().now_or_never() {
                        Some(Some((id, response))) => encode_answer(&mut outbox, id, &response),
                        _ => break,
                    }
                }
                if let Err(error) = send.write_all(&outbox).await {
                    tracing::debug!(?stream, %error, "client went away before its answers");
                    return;
                }
                outbox.clear();
            }
            read = recv.read_chunk(READ_CHUNK_BYTES, true), if reading => match read {
                Ok(Some(chunk)) => inbox.extend_from_slice(&chunk.bytes),
                Ok(None) => client_finished = true,
                Err(error) => {
                    // Reset by the client, or the connection died: nobody left to answer.
                    tracing::debug!(?stream, %error, "client request stream failed");
                    return;
                }
            },
        }
    }
}

/// Runs one request (or answers a malformed one) and counts it; `started` is when its frame
/// was read.
async fn answer(
    door: &FrontDoor,
    metrics: &Metrics,
    id: RequestId,
    request: Result<ClientRequest, ProtocolError>,
    started: Instant,
) -> (RequestId, ClientResponse) {
    let (kind, response) = match request {
        Err(error) => (
            "invalid",
            ClientResponse::BadRequest {
                detail: error.to_string(),
            },
        ),
        Ok(request) => {
            let kind = match &request.op {
                ClientOp::Get { .. } => "get",
                ClientOp::Put { .. } => "put",
                ClientOp::Overwrite { .. } => "overwrite",
                ClientOp::Delete { .. } => "delete",
                ClientOp::Item(item) => match item.action {
                    ItemAction::Get { .. } => "get_item",
                    ItemAction::Put { .. } => "put_item",
                    ItemAction::Update { .. } => "update_item",
                    ItemAction::Delete { .. } => "delete_item",
                },
                ClientOp::Table(_) => "table",
                ClientOp::Query(_) => "query",
                ClientOp::Batch(_) => "batch",
                ClientOp::Scan(_) => "scan",
            };
            let response = match door.request(request).await {
                Ok(result) => ClientResponse::Done(result),
                Err(DoorError::Overloaded) => ClientResponse::Overloaded,
                Err(DoorError::ShuttingDown) => ClientResponse::ShuttingDown,
                Err(DoorError::CoreTimeout) => ClientResponse::CoreTimeout,
            };
            (kind, response)
        }
    };
    metrics.record_request(kind, outcome_label(&response), started.elapsed());
    (id, response)
}

/// Appends the response frame of `id` to `outbox`; an answer that cannot be encoded (larger
/// than a frame) is replaced by `Unencodable`, so the caller still hears back and the shared
/// stream stays usable.
fn encode_answer(outbox: &mut Vec<u8>, id: RequestId, response: &ClientResponse) {
    let Err(error) = encode_response(outbox, id, response) else {
        return;
    };
    tracing::warn!(id, %error, "cannot encode a client answer; answering Unencodable");
    let unencodable = ClientResponse::Unencodable {
        detail: error.to_string(),
    };
    if let Err(error) = encode_response(outbox, id, &unencodable) {
        tracing::warn!(id, %error, "cannot encode a client answer at all");
    }
}

/// Resets a stream whose bytes cannot be cut into frames or whose frame names no id: no
/// answer could be matched to its caller, so the client learns it from the reset.
fn refuse_stream(send: &mut SendStream, recv: &mut RecvStream, error: &ProtocolError) {
    tracing::debug!(stream = ?recv.id(), %error, "unframeable client stream; resetting it");
    let _ = send.reset(VarInt::from_u32(UNFRAMEABLE_STREAM));
    let _ = recv.stop(VarInt::from_u32(UNFRAMEABLE_STREAM));
}

/// The metrics `outcome` label of a response (the same labels as HTTP's).
fn outcome_label(response: &ClientResponse) -> &'static str {
    match response {
        ClientResponse::Done(Ok(ClientReply::Read(read))) if read.values.is_empty() => "not_found",
        ClientResponse::Done(Ok(_)) => "ok",
        ClientResponse::Done(Err(error)) => error.kind(),
        ClientResponse::Overloaded => "overloaded",
        ClientResponse::ShuttingDown => "shutting_down",
        ClientResponse::CoreTimeout => "core_timeout",
        ClientResponse::BadRequest { .. } => "bad_request",
        ClientResponse::Unencodable { .. } => "unencodable",
    }
}
