//! The native client protocol's wire format: what a client sends a node and what it gets back.
//!
//! A request travels on its own bidirectional QUIC stream (ALPN `ringstore-client/1`): the
//! client writes one request frame and finishes its side; the node writes one response frame
//! and finishes. A frame is `postcard(u16 version) ++ postcard(body)`; the stream's end
//! delimits it, so there is no length prefix. The bodies are the shared request types of
//! [`crate::request`], so the native client, HTTP and the simulator's clients ask the very
//! same questions.
//!
//! This module is pure (bytes in, values out); the runtime serves it and `client` speaks it.
//!
//! # Guarantees
//! - A frame is at most [`MAX_CLIENT_FRAME_BYTES`]; larger input is refused before decoding.
//! - A frame of another version, a malformed frame, or bytes after the frame are refused with
//!   a [`ProtocolError`] that says which; decoding never panics.
//! - Contexts inside requests are validated by their own decoder.

use crate::protocol::ProtocolError;
use crate::request::{ClientRequest, ClientResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of the client protocol this build speaks.
pub const CLIENT_PROTOCOL_VERSION: u16 = 1;

/// The largest request or response frame: a value (at most `max_value_bytes`, 1 MiB by
/// default) times the sibling limit, plus keys and contexts, fits far below it.
pub const MAX_CLIENT_FRAME_BYTES: usize = 16 << 20;

/// A node's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    /// The request ran: its reply, or the node's error (quorum not reached, value too
    /// large, ...).
    Done(ClientResult),
    /// The node's input queue is full: the request was not started; retry later.
    Overloaded,
    /// The node is stopping: the request may or may not have been applied.
    ShuttingDown,
    /// The node's core did not answer by the request's deadline (a stuck driver): the request
    /// may or may not have been applied.
    CoreTimeout,
    /// The request frame could not be decoded.
    BadRequest {
        /// Why.
        detail: String,
    },
}

/// Encodes a request frame.
pub fn encode_request(request: &ClientRequest) -> Result<Vec<u8>, ProtocolError> {
    encode_frame(request)
}

/// Decodes a request frame.
pub fn decode_request(bytes: &[u8]) -> Result<ClientRequest, ProtocolError> {
    decode_frame(bytes)
}

/// Encodes a response frame.
pub fn encode_response(response: &ClientResponse) -> Result<Vec<u8>, ProtocolError> {
    encode_frame(response)
}

/// Decodes a response frame.
pub fn decode_response(bytes: &[u8]) -> Result<ClientResponse, ProtocolError> {
    decode_frame(bytes)
}

fn encode_frame<T: Serialize>(body: &T) -> Result<Vec<u8>, ProtocolError> {
    let mut bytes =
        postcard::to_stdvec(&CLIENT_PROTOCOL_VERSION).map_err(ProtocolError::Malformed)?;
    let body = postcard::to_stdvec(body).map_err(ProtocolError::Malformed)?;
    bytes.extend_from_slice(&body);
    if bytes.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_CLIENT_FRAME_BYTES,
        });
    }
    Ok(bytes)
}

fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_CLIENT_FRAME_BYTES,
        });
    }
    let (version, rest) =
        postcard::take_from_bytes::<u16>(bytes).map_err(ProtocolError::Malformed)?;
    if version != CLIENT_PROTOCOL_VERSION {
        return Err(ProtocolError::IncompatibleVersion {
            ours: CLIENT_PROTOCOL_VERSION,
            theirs: version,
        });
    }
    let (body, rest) = postcard::take_from_bytes::<T>(rest).map_err(ProtocolError::Malformed)?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes(rest.len()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;
    use crate::request::{ClientReply, ReadResult, RequestError};
    use crate::version::CausalContext;
    use proptest::prelude::*;

    fn responses() -> Vec<ClientResponse> {
        vec![
            ClientResponse::Done(Ok(ClientReply::Read(ReadResult {
                values: vec![b"a".to_vec(), b"b".to_vec()],
                context: CausalContext::empty(),
                has_tombstones: true,
            }))),
            ClientResponse::Done(Err(RequestError::Quorum {
                needed: 2,
                acks: 1,
                tried: vec![NodeId(1), NodeId(2)],
                failures: vec![],
            })),
            ClientResponse::Overloaded,
            ClientResponse::ShuttingDown,
            ClientResponse::BadRequest { detail: "x".into() },
        ]
    }

    // Requests and every kind of response survive a round trip unchanged.
    #[test]
    fn frames_round_trip() {
        let mut request = ClientRequest::put(b"k".to_vec(), vec![7; 100], CausalContext::empty());
        request.w = Some(2);
        request.timeout_ms = Some(500);
        let bytes = encode_request(&request).unwrap();
        assert_eq!(decode_request(&bytes).unwrap(), request);
        for response in responses() {
            let bytes = encode_response(&response).unwrap();
            assert_eq!(decode_response(&bytes).unwrap(), response);
        }
    }

    // Another version, trailing bytes and oversized input are each refused by name.
    #[test]
    fn bad_frames_are_refused_by_name() {
        let mut bytes = encode_request(&ClientRequest::get(b"k".to_vec())).unwrap();
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(matches!(
            decode_request(&other),
            Err(ProtocolError::IncompatibleVersion { theirs: 9, .. })
        ));
        bytes.push(0);
        assert_eq!(decode_request(&bytes), Err(ProtocolError::TrailingBytes(1)));
        let huge = vec![0u8; MAX_CLIENT_FRAME_BYTES + 1];
        assert!(matches!(
            decode_request(&huge),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        // Arbitrary bytes never panic the decoders.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }
    }
}
