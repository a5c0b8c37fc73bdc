//! `GET`, `PUT` and `DELETE /kv/{key}`: the key-value endpoints.
//!
//! The key is the rest of the path, percent-decoded to bytes (any bytes, `%2F` for `/`). The
//! causal context travels in the `X-Ringstore-Context` header, opaque to clients: a read
//! returns it, a write passes it back so the new version supersedes what was read
//! (Dynamo §4.4).
//!
//! # Guarantees
//! - `GET` answers `200` with the value when there is one version, `300` with every sibling
//!   (base64) when there are several, `404` when none is live (with the context header when
//!   tombstones exist, so a write can supersede the delete).
//! - `PUT` and `DELETE` answer `204` with the context of the version written.
//! - `PUT ...?overwrite=true` supersedes what the coordinator holds (`ClientOp::Overwrite`);
//!   with a context header as well it is refused with `400 overwrite_with_context`, since the
//!   two say different things about what the write replaces.
//! - A `DELETE` needs a context: without one it would delete nothing (a tombstone concurrent
//!   with every version), so it is refused with `400 missing_context`.

use super::error::ApiError;
use super::{HttpState, call, finish, parse_query};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ringstore_core::request::{ClientReply, ClientRequest, ReadResult};
use ringstore_core::version::CausalContext;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The header carrying the causal context.
pub const CONTEXT_HEADER: &str = "x-ringstore-context";

/// The path prefix of keys.
const KV_PREFIX: &str = "/kv/";

/// Per-request options in the query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvQuery {
    /// Read quorum for this request.
    pub r: Option<u8>,
    /// Write quorum for this request.
    pub w: Option<u8>,
    /// Deadline for this request.
    pub timeout_ms: Option<u64>,
    /// `PUT` only: supersede whatever the coordinator holds instead of what a context saw
    /// (`ClientOp::Overwrite`); refused together with a context header.
    #[serde(default)]
    pub overwrite: bool,
}

/// The `300 Multiple Choices` body: every sibling and the context covering them all.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SiblingsBody {
    /// Pass this back with the write that resolves the siblings.
    pub context: String,
    /// The concurrent values.
    pub siblings: Vec<SiblingValue>,
}

/// One sibling.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SiblingValue {
    /// The value, base64 (standard alphabet, padded).
    pub value: String,
}

/// `GET /kv/{key}`.
pub async fn get(
    State(state): State<Arc<HttpState>>,
    uri: Uri,
    query: Result<Query<KvQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let query = parse_non_put_query(query)?;
        let mut request = ClientRequest::get(key_of(&uri)?);
        request.r = query.r;
        request.timeout_ms = query.timeout_ms;
        match call(&state, request).await? {
            ClientReply::Read(read) => Ok(read_response(read)),
            _ => Err(ApiError::MismatchedReply),
        }
    }
    .await;
    finish(&state, "get", started, outcome)
}

/// `PUT /kv/{key}`.
pub async fn put(
    State(state): State<Arc<HttpState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<KvQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let query = parse_query(query)?;
        let key = key_of(&uri)?;
        let context = context_of(&headers)?;
        let value = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge {
                    max: state.limits.max_value_bytes,
                }
            } else {
                ApiError::BodyUnreadable
            }
        })?;
        let mut request = write_request(key, value.to_vec(), context, query.overwrite)?;
        request.w = query.w;
        request.timeout_ms = query.timeout_ms;
        written(call(&state, request).await?)
    }
    .await;
    finish(&state, "put", started, outcome)
}

/// `DELETE /kv/{key}`.
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<KvQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let outcome = async {
        let query = parse_non_put_query(query)?;
        let key = key_of(&uri)?;
        let context = context_of(&headers)?.ok_or(ApiError::MissingContext)?;
        let mut request = ClientRequest::delete(key, context);
        request.w = query.w;
        request.timeout_ms = query.timeout_ms;
        written(call(&state, request).await?)
    }
    .await;
    finish(&state, "delete", started, outcome)
}

/// `/kv/` with no key.
pub async fn empty_key() -> Response {
    ApiError::EmptyKey.into_response()
}

/// The key: the path after `/kv/`, percent-decoded.
fn key_of(uri: &Uri) -> Result<Vec<u8>, ApiError> {
    let raw = uri.path().strip_prefix(KV_PREFIX).unwrap_or_default();
    let key: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    if key.is_empty() {
        return Err(ApiError::EmptyKey);
    }
    Ok(key)
}

/// The query of a `GET` or `DELETE`, which take no `overwrite` (so that it is not silently
/// ignored).
fn parse_non_put_query(query: Result<Query<KvQuery>, QueryRejection>) -> Result<KvQuery, ApiError> {
    let query = parse_query(query)?;
    if query.overwrite {
        return Err(ApiError::BadQuery {
            detail: "overwrite applies to PUT only".to_string(),
        });
    }
    Ok(query)
}

/// A `PUT`'s request: a put after the read `context` came from (none: a blind write), or with
/// `overwrite`, an overwrite, which takes no context.
fn write_request(
    key: Vec<u8>,
    value: Vec<u8>,
    context: Option<CausalContext>,
    overwrite: bool,
) -> Result<ClientRequest, ApiError> {
    match (overwrite, context) {
        (false, context) => Ok(ClientRequest::put(key, value, context.unwrap_or_default())),
        (true, None) => Ok(ClientRequest::overwrite(key, value)),
        (true, Some(_)) => Err(ApiError::OverwriteWithContext),
    }
}

/// The context header, if present.
fn context_of(headers: &HeaderMap) -> Result<Option<CausalContext>, ApiError> {
    let Some(value) = headers.get(CONTEXT_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::ContextNotAscii)?;
    Ok(Some(CausalContext::decode(text)?))
}

fn context_header(context: &CausalContext) -> (&'static str, HeaderValue) {
    // An encoded context is URL-safe base64: always a valid header value.
    let value = HeaderValue::from_str(&context.encode()).unwrap_or(HeaderValue::from_static(""));
    (CONTEXT_HEADER, value)
}

fn written(reply: ClientReply) -> Result<(Response, &'static str), ApiError> {
    match reply {
        ClientReply::Written { context, .. } => Ok((
            (StatusCode::NO_CONTENT, [context_header(&context)]).into_response(),
            "ok",
        )),
        _ => Err(ApiError::MismatchedReply),
    }
}

/// 200 with one value, 300 with siblings, 404 with none.
fn read_response(read: ReadResult) -> (Response, &'static str) {
    let header = context_header(&read.context);
    match read.values.len() {
        0 => {
            let body = Json(super::error::ErrorBody {
                error: "not_found".into(),
                detail: if read.has_tombstones {
                    "the key was deleted".into()
                } else {
                    "the key has no value".into()
                },
            });
            let response = if read.context.is_empty() {
                (StatusCode::NOT_FOUND, body).into_response()
            } else {
                (StatusCode::NOT_FOUND, [header], body).into_response()
            };
            (response, "not_found")
        }
        1 => {
            let value = read.values.into_iter().next().unwrap_or_default();
            let response = (
                StatusCode::OK,
                [
                    header,
                    (
                        "content-type",
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                ],
                value,
            )
                .into_response();
            (response, "ok")
        }
        _ => {
            let engine = base64::engine::general_purpose::STANDARD;
            let body = SiblingsBody {
                context: read.context.encode(),
                siblings: read
                    .values
                    .iter()
                    .map(|value| SiblingValue {
                        value: engine.encode(value),
                    })
                    .collect(),
            };
            let response = (StatusCode::MULTIPLE_CHOICES, [header], Json(body)).into_response();
            (response, "siblings")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::request::ClientOp;

    // Keys are percent-decoded to arbitrary bytes; an empty key is refused.
    #[test]
    fn keys_are_percent_decoded() {
        let uri: Uri = "/kv/a%2Fb%00%FFc?r=1".parse().unwrap();
        assert_eq!(key_of(&uri).unwrap(), b"a/b\x00\xffc".to_vec());
        let uri: Uri = "/kv/plain/with/slashes".parse().unwrap();
        assert_eq!(key_of(&uri).unwrap(), b"plain/with/slashes".to_vec());
        let uri: Uri = "/kv/".parse().unwrap();
        assert!(matches!(key_of(&uri), Err(ApiError::EmptyKey)));
    }

    // `?overwrite=true` makes an overwrite, refused beside a context; without it a put.
    #[test]
    fn overwrite_and_context_are_exclusive() {
        let context = CausalContext::from_entries([(ringstore_core::version::ActorId(7), 3)]);
        let request = write_request(b"k".to_vec(), b"v".to_vec(), None, true).unwrap();
        assert!(matches!(request.op, ClientOp::Overwrite { .. }));
        let request = write_request(b"k".to_vec(), b"v".to_vec(), Some(context.clone()), false);
        assert!(matches!(request.unwrap().op, ClientOp::Put { context: c, .. } if c == context));
        let refused = write_request(b"k".to_vec(), b"v".to_vec(), Some(context), true);
        assert!(matches!(refused, Err(ApiError::OverwriteWithContext)));
    }

    // `overwrite` on a GET or DELETE is refused by name rather than ignored.
    #[test]
    fn overwrite_is_for_put_only() {
        let asked = KvQuery {
            overwrite: true,
            ..KvQuery::default()
        };
        let refused = parse_non_put_query(Ok(Query(asked)));
        assert!(
            matches!(refused, Err(ApiError::BadQuery { detail }) if detail.contains("PUT only"))
        );
        assert!(parse_non_put_query(Ok(Query(KvQuery::default()))).is_ok());
    }

    // A bad context header is a 400 bad_context; a good one decodes.
    #[test]
    fn context_headers_are_validated() {
        let mut headers = HeaderMap::new();
        assert!(context_of(&headers).unwrap().is_none());
        headers.insert(CONTEXT_HEADER, HeaderValue::from_static("not-a-context"));
        let err = context_of(&headers).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.kind(), "bad_context");
        let context = CausalContext::from_entries([(ringstore_core::version::ActorId(3), 2)]);
        headers.insert(
            CONTEXT_HEADER,
            HeaderValue::from_str(&context.encode()).unwrap(),
        );
        assert_eq!(context_of(&headers).unwrap(), Some(context));
    }

    // One value is 200, several are 300 with base64 siblings, none is 404.
    #[test]
    fn reads_map_to_200_300_404() {
        let context = CausalContext::from_entries([(ringstore_core::version::ActorId(1), 1)]);
        let one = ReadResult {
            values: vec![b"v".to_vec()],
            context: context.clone(),
            has_tombstones: false,
        };
        assert_eq!(read_response(one).0.status(), StatusCode::OK);
        let two = ReadResult {
            values: vec![b"a".to_vec(), b"b".to_vec()],
            context: context.clone(),
            has_tombstones: false,
        };
        assert_eq!(read_response(two).0.status(), StatusCode::MULTIPLE_CHOICES);
        let none = ReadResult {
            values: vec![],
            context,
            has_tombstones: true,
        };
        let (response, label) = read_response(none);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(label, "not_found");
        assert!(response.headers().contains_key(CONTEXT_HEADER));
    }
}
