//! The node's side of the native client protocol: serving client connections on the node's
//! QUIC endpoint.
//!
//! The transport hands over every connection whose handshake agreed on ALPN
//! `ringstore-client/1` (see `tls::ALPN_CLIENT`). Each bidirectional stream is one request:
//! read the request frame (bounded by `MAX_CLIENT_FRAME_BYTES`), pass it through the
//! [`FrontDoor`] like an HTTP request, write the response frame, finish.
//!
//! # Guarantees
//! - Every stream gets exactly one response frame, unless the client reset it or the
//!   connection died: a malformed frame is answered `BadRequest`, a full driver queue
//!   `Overloaded` at once, a stopping node `ShuttingDown`.
//! - A client cannot pass as a peer: client connections never reach the peer path (their
//!   frames are `client_protocol` frames, decoded as such), and peer connections never reach
//!   this one.
//! - Requests and outcomes are counted in the same metrics as HTTP's
//!   (`ringstore_requests_total{kind, outcome}` and the latency histogram).
//!
//! # Known limits
//! - Concurrency per connection is bounded by the QUIC stream limit
//!   (`MAX_CONCURRENT_CLIENT_STREAMS`), not by bytes.

use super::front_door::{DoorError, FrontDoor};
use super::metrics::Metrics;
use crate::client_protocol::{
    ClientResponse, MAX_CLIENT_FRAME_BYTES, decode_request, encode_response,
};
use crate::request::{ClientOp, ClientReply};
use quinn::{Connection, RecvStream, SendStream};
use std::sync::Arc;
use std::time::Instant;

/// Serves the requests of one client connection until it closes.
pub async fn serve_client(conn: Connection, door: Arc<FrontDoor>, metrics: Arc<Metrics>) {
    let remote = conn.remote_address();
    tracing::debug!(%remote, "client connected");
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_request(door.clone(), metrics.clone(), send, recv));
            }
            Err(error) => {
                tracing::debug!(%remote, %error, "client connection ended");
                return;
            }
        }
    }
}

/// Reads one request from its stream, runs it, writes the answer.
async fn serve_request(
    door: Arc<FrontDoor>,
    metrics: Arc<Metrics>,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let started = Instant::now();
    let bytes = match recv.read_to_end(MAX_CLIENT_FRAME_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            // Too large, reset by the client, or the connection died: nobody to answer, or
            // an answer that cannot be framed. Refuse the stream.
            tracing::debug!(%error, "client request stream failed");
            let _ = send.reset(quinn::VarInt::from_u32(1));
            return;
        }
    };
    let (kind, response) = match decode_request(&bytes) {
        Err(error) => (
            "invalid",
            ClientResponse::BadRequest {
                detail: error.to_string(),
            },
        ),
        Ok(request) => {
            let kind = match request.op {
                ClientOp::Get { .. } => "get",
                ClientOp::Put { .. } => "put",
                ClientOp::Delete { .. } => "delete",
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
    let frame = match encode_response(&response) {
        Ok(frame) => frame,
        Err(error) => {
            tracing::warn!(%error, "cannot encode a client response");
            let _ = send.reset(quinn::VarInt::from_u32(1));
            return;
        }
    };
    if let Err(error) = send.write_all(&frame).await {
        tracing::debug!(%error, "client went away before its answer");
        return;
    }
    let _ = send.finish();
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
    }
}
