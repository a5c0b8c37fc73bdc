//! The native client protocol's wire format: what a client sends a node and what it gets back.
//!
//! A client keeps one long-lived bidirectional QUIC stream per connection (ALPN
//! `ringstore-client/2`) and pipelines its requests on it: it writes request frames, each
//! tagged with a [`RequestId`] it chose, and the node writes one response frame per request,
//! tagged with the same id, in whatever order the requests finish. A frame is
//!
//! ```text
//! u32 little-endian payload length ++ payload
//! payload = postcard(u16 version) ++ postcard(u64 id) ++ postcard(body)
//! ```
//!
//! The bodies are the shared request types of [`crate::request`], so the native client, HTTP
//! and the simulator's clients ask the very same questions.
//!
//! This module is pure (bytes in, values out); the runtime serves it and `client` speaks it.
//!
//! # Guarantees
//! - A payload is at most [`MAX_CLIENT_FRAME_BYTES`]: the encoders refuse to build a larger
//!   one, and [`next_frame`] refuses a larger length prefix before anything is buffered or
//!   allocated for it.
//! - Every version starts its payload with the version and then the id, so a frame of another
//!   version, a malformed body or bytes after the body are refused with a [`BadFrame`] that
//!   still names the request's id whenever the id itself was readable (and can be answered).
//! - Decoding never panics, whatever the bytes.
//! - Contexts inside requests are validated by their own decoder.

use crate::protocol::{
    LENGTH_PREFIX_BYTES, PrefixOrder, ProtocolError, append_prefixed, cut_prefixed,
};
use crate::request::{ClientRequest, ClientResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of the client protocol this build speaks.
pub const CLIENT_PROTOCOL_VERSION: u16 = 2;

/// The largest payload of a request or response frame: a value (at most `max_value_bytes`,
/// 1 MiB by default) times the sibling limit, plus keys and contexts, fits far below it.
pub const MAX_CLIENT_FRAME_BYTES: usize = 16 << 20;

/// The length prefix in front of every payload.
pub const FRAME_HEADER_BYTES: usize = LENGTH_PREFIX_BYTES;

/// The tag a client puts on a request, and the node on its response, so that responses can
/// arrive in any order on the shared stream.
pub type RequestId = u64;

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
    /// The request ran, but its answer could not be encoded (it is larger than a frame): the
    /// stream is shared, so the node answers this in its place instead of breaking the stream.
    Unencodable {
        /// Why.
        detail: String,
    },
}

/// A frame that was cut from the stream but could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct BadFrame {
    /// The request's id, when it was readable: the frame can be answered (or, on the client,
    /// matched to its call). `None`: nobody can tell whose frame it was.
    pub id: Option<RequestId>,
    /// What was wrong.
    pub error: ProtocolError,
}

/// Appends a request frame for `request`, tagged `id`, to `out`. On error `out` is unchanged.
pub fn encode_request(
    out: &mut Vec<u8>,
    id: RequestId,
    request: &ClientRequest,
) -> Result<(), ProtocolError> {
    encode_frame(out, id, request)
}

/// Decodes the payload of a request frame (as cut by [`next_frame`]).
pub fn decode_request(payload: &[u8]) -> Result<(RequestId, ClientRequest), BadFrame> {
    decode_frame(payload)
}

/// Appends a response frame for `response`, tagged `id`, to `out`. On error `out` is
/// unchanged.
pub fn encode_response(
    out: &mut Vec<u8>,
    id: RequestId,
    response: &ClientResponse,
) -> Result<(), ProtocolError> {
    encode_frame(out, id, response)
}

/// Decodes the payload of a response frame (as cut by [`next_frame`]).
pub fn decode_response(payload: &[u8]) -> Result<(RequestId, ClientResponse), BadFrame> {
    decode_frame(payload)
}

/// The first whole frame at the start of `buf`: its payload and the bytes it takes (prefix
/// included), or `None` when more bytes are needed. An error means the stream cannot be cut
/// into frames any more (its length prefix is over the limit).
pub fn next_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    cut_prefixed(buf, MAX_CLIENT_FRAME_BYTES, PrefixOrder::Little)
}

fn encode_frame<T: Serialize>(
    out: &mut Vec<u8>,
    id: RequestId,
    body: &T,
) -> Result<(), ProtocolError> {
    append_prefixed(
        out,
        &(CLIENT_PROTOCOL_VERSION, id, body),
        MAX_CLIENT_FRAME_BYTES,
        PrefixOrder::Little,
    )
}

fn decode_frame<T: DeserializeOwned>(payload: &[u8]) -> Result<(RequestId, T), BadFrame> {
    let unreadable = |error| BadFrame { id: None, error };
    if payload.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(unreadable(ProtocolError::TooLarge {
            len: payload.len(),
            max: MAX_CLIENT_FRAME_BYTES,
        }));
    }
    let (version, rest) = postcard::take_from_bytes::<u16>(payload)
        .map_err(|error| unreadable(ProtocolError::Malformed(error)))?;
    let (id, rest) = postcard::take_from_bytes::<RequestId>(rest)
        .map_err(|error| unreadable(ProtocolError::Malformed(error)))?;
    let refused = |error| BadFrame {
        id: Some(id),
        error,
    };
    if version != CLIENT_PROTOCOL_VERSION {
        return Err(refused(ProtocolError::IncompatibleVersion {
            ours: CLIENT_PROTOCOL_VERSION,
            theirs: version,
        }));
    }
    let (body, rest) = postcard::take_from_bytes::<T>(rest)
        .map_err(|error| refused(ProtocolError::Malformed(error)))?;
    if !rest.is_empty() {
        return Err(refused(ProtocolError::TrailingBytes(rest.len())));
    }
    Ok((id, body))
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
            ClientResponse::CoreTimeout,
            ClientResponse::BadRequest { detail: "x".into() },
            ClientResponse::Unencodable { detail: "y".into() },
        ]
    }

    /// The payload of the one frame in `bytes`, checking that it takes all of them.
    fn payload(bytes: &[u8]) -> &[u8] {
        let (payload, used) = next_frame(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        payload
    }

    /// A frame whose payload is `payload`, whatever it holds.
    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut bytes = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    // Requests and every kind of response survive a round trip unchanged, ids included.
    #[test]
    fn frames_round_trip() {
        let mut request = ClientRequest::put(b"k".to_vec(), vec![7; 100], CausalContext::empty());
        request.w = Some(2);
        request.timeout_ms = Some(500);
        let mut bytes = Vec::new();
        encode_request(&mut bytes, u64::MAX, &request).unwrap();
        assert_eq!(
            decode_request(payload(&bytes)).unwrap(),
            (u64::MAX, request)
        );
        for (id, response) in responses().into_iter().enumerate() {
            let id = id as RequestId * 1000;
            let mut bytes = Vec::new();
            encode_response(&mut bytes, id, &response).unwrap();
            assert_eq!(decode_response(payload(&bytes)).unwrap(), (id, response));
        }
    }

    // The frame layout documented in docs/client-protocol.md, byte for byte.
    #[test]
    fn the_documented_example_is_the_encoding() {
        let mut bytes = Vec::new();
        encode_request(&mut bytes, 5, &ClientRequest::get(b"k".to_vec())).unwrap();
        assert_eq!(
            bytes,
            [8, 0, 0, 0, 2, 5, 0, 1, b'k', 0, 0, 0],
            "update the example in docs/client-protocol.md"
        );
    }

    // Several frames in one buffer come out one by one, in order; a frame split anywhere is
    // reported incomplete until its last byte is there.
    #[test]
    fn frames_are_cut_from_a_byte_stream() {
        let mut stream = Vec::new();
        for (id, response) in responses().into_iter().enumerate() {
            encode_response(&mut stream, id as RequestId, &response).unwrap();
        }
        let mut rest = &stream[..];
        let mut decoded = Vec::new();
        while let Some((payload, used)) = next_frame(rest).unwrap() {
            decoded.push(decode_response(payload).unwrap());
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        let expected: Vec<_> = responses()
            .into_iter()
            .enumerate()
            .map(|(id, response)| (id as RequestId, response))
            .collect();
        assert_eq!(decoded, expected);

        let mut one = Vec::new();
        encode_request(&mut one, 7, &ClientRequest::get(b"key".to_vec())).unwrap();
        for cut in 0..one.len() {
            assert_eq!(next_frame(&one[..cut]), Ok(None), "cut at {cut}");
        }
        let (payload, used) = next_frame(&one).unwrap().unwrap();
        assert_eq!(used, one.len());
        assert_eq!(decode_request(payload).unwrap().0, 7);
    }

    // A length over the limit is refused from the prefix alone; the encoder refuses to build
    // such a frame and leaves the buffer as it was.
    #[test]
    fn oversized_frames_are_refused() {
        let prefix = u32::try_from(MAX_CLIENT_FRAME_BYTES + 1)
            .unwrap()
            .to_le_bytes();
        assert!(matches!(
            next_frame(&prefix),
            Err(ProtocolError::TooLarge { len, .. }) if len == MAX_CLIENT_FRAME_BYTES + 1
        ));
        assert!(matches!(
            next_frame(&u32::MAX.to_le_bytes()),
            Err(ProtocolError::TooLarge { .. })
        ));
        let mut out = vec![1, 2, 3];
        let huge = ClientRequest::put(
            b"k".to_vec(),
            vec![0; MAX_CLIENT_FRAME_BYTES],
            CausalContext::empty(),
        );
        assert!(matches!(
            encode_request(&mut out, 1, &huge),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert_eq!(out, vec![1, 2, 3]);
    }

    // Another version, a malformed body and trailing bytes are each refused by name, with the
    // id when it was readable; a payload too short to hold an id is refused without one.
    #[test]
    fn bad_frames_are_refused_by_name() {
        let id_and_version = |version: u16, id: RequestId| {
            let mut payload = postcard::to_stdvec(&version).unwrap();
            payload.extend(postcard::to_stdvec(&id).unwrap());
            payload
        };
        let mut other_version = id_and_version(9, 5);
        other_version.extend(postcard::to_stdvec(&ClientRequest::get(b"k".to_vec())).unwrap());
        assert!(matches!(
            decode_request(&other_version),
            Err(BadFrame {
                id: Some(5),
                error: ProtocolError::IncompatibleVersion { theirs: 9, .. }
            })
        ));

        let mut garbage = id_and_version(CLIENT_PROTOCOL_VERSION, 6);
        garbage.extend([0xff; 9]);
        assert!(matches!(
            decode_request(&garbage),
            Err(BadFrame {
                id: Some(6),
                error: ProtocolError::Malformed(_)
            })
        ));

        let mut bytes = Vec::new();
        encode_request(&mut bytes, 8, &ClientRequest::get(b"k".to_vec())).unwrap();
        let mut trailing = payload(&bytes).to_vec();
        trailing.push(0);
        assert_eq!(
            decode_request(&trailing),
            Err(BadFrame {
                id: Some(8),
                error: ProtocolError::TrailingBytes(1)
            })
        );

        for no_id in [&[][..], &[2], &[2, 0xff]] {
            assert!(matches!(
                decode_request(no_id),
                Err(BadFrame { id: None, .. })
            ));
            assert_eq!(next_frame(&framed(no_id)).unwrap().unwrap().0, no_id);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        // Arbitrary bytes never panic the decoders or the frame cutter.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
            if let Ok(Some((payload, used))) = next_frame(&bytes) {
                prop_assert!(used <= bytes.len());
                let _ = decode_request(payload);
                let _ = decode_response(payload);
            }
        }

        // Framed garbage is cut whole, and its body (behind a valid version and id, so that
        // the body decoders are reached) never panics the decoders.
        #[test]
        fn framed_garbage_never_panics(
            id in any::<RequestId>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut payload = postcard::to_stdvec(&CLIENT_PROTOCOL_VERSION).unwrap();
            payload.extend(postcard::to_stdvec(&id).unwrap());
            payload.extend(&body);
            let bytes = framed(&payload);
            prop_assert_eq!(next_frame(&bytes).unwrap(), Some((&payload[..], bytes.len())));
            if let Err(bad) = decode_request(&payload) {
                prop_assert_eq!(bad.id, Some(id));
            }
            if let Err(bad) = decode_response(&payload) {
                prop_assert_eq!(bad.id, Some(id));
            }
        }
    }
}
