//! How every failure of the HTTP API is answered: a status code and a JSON body
//! `{"error": "<kind>", "detail": "<sentence>"}`.
//!
//! # Guarantees
//! - Each [`ApiError`] has one status and one stable `kind` string (clients match on it); the
//!   table is in `docs/http-api.md`.
//! - Client mistakes are 4xx, capacity and quorum failures 503 (retry later or elsewhere),
//!   storage failures 500.

use super::attribute_json::AttributeJsonError;
use super::items::ItemCondition;
use crate::runtime::front_door::DoorError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ringstore_core::request::RequestError;
use ringstore_core::version::ContextError;
use serde::Serialize;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The core refused or failed the request.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The key in the path is not valid percent-encoding or is empty.
    #[error("the key is empty")]
    EmptyKey,
    /// The `X-Ringstore-Context` header does not decode.
    #[error("the X-Ringstore-Context header is invalid: {0}")]
    BadContext(#[from] ContextError),
    /// The `X-Ringstore-Context` header is not visible ASCII.
    #[error("the X-Ringstore-Context header is not ASCII")]
    ContextNotAscii,
    /// A delete came without the context of a read.
    #[error("a delete needs the X-Ringstore-Context of a read of the key")]
    MissingContext,
    /// `PUT ?overwrite=true` came with a context header: the two disagree on what to replace.
    #[error("overwrite=true replaces what the coordinator holds; send it without a context header")]
    OverwriteWithContext,
    /// The query string does not parse (e.g. `r=abc`, `w=300`).
    #[error("invalid query string: {detail}")]
    BadQuery {
        /// The parser's explanation.
        detail: String,
    },
    /// A JSON request body does not parse.
    #[error("invalid JSON body: {detail}")]
    BadJson {
        /// The parser's explanation.
        detail: String,
    },
    /// The body is larger than the value limit.
    #[error("the value exceeds the limit of {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// The body could not be read.
    #[error("the request body could not be read")]
    BodyUnreadable,
    /// The core's input queue is full.
    #[error("the node is overloaded: its input queue is full; retry later")]
    Overloaded,
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The core did not answer in time (it should always answer by the request's deadline).
    #[error("the node core did not answer in time")]
    CoreTimeout,
    /// The core answered a read with a write's reply or the reverse (a bug).
    #[error("the node core answered with a reply of the wrong kind")]
    MismatchedReply,
    /// An item's DynamoDB JSON does not parse as attribute values, or breaks an item limit.
    #[error("invalid item: {0}")]
    BadItem(#[from] AttributeJsonError),
    /// An item's key in the path does not fit the table's key schema.
    #[error("invalid key: {detail}")]
    BadItemKey {
        /// What was wrong, naming the key attribute.
        detail: String,
    },
    /// No item has the key.
    #[error("table `{table}` has no item with this key")]
    ItemNotFound {
        /// The table.
        table: String,
    },
    /// A conditional item write's `?condition=` did not hold.
    #[error("the condition {condition} failed: {why}", why = if *.exists {
        "an item with this key exists"
    } else {
        "no item has this key"
    })]
    ConditionFailed {
        /// The condition asked for.
        condition: ItemCondition,
        /// Whether the item existed when the condition was evaluated.
        exists: bool,
    },
    /// No endpoint has this path.
    #[error("no endpoint {method} {path} (see docs/http-api.md)")]
    NoRoute {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// The path's endpoint does not take this method.
    #[error("{path} does not take {method} (see docs/http-api.md)")]
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
}

impl From<DoorError> for ApiError {
    fn from(error: DoorError) -> Self {
        match error {
            DoorError::Overloaded => ApiError::Overloaded,
            DoorError::ShuttingDown => ApiError::ShuttingDown,
            DoorError::CoreTimeout => ApiError::CoreTimeout,
        }
    }
}

/// The JSON body of an error. Missing fields read as empty (a proxy's error page, say, is
/// still told apart by its status).
#[derive(Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ErrorBody {
    /// A stable, machine-readable kind.
    pub error: String,
    /// A sentence for people.
    pub detail: String,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Request(error) => match error {
                RequestError::InvalidQuorum { .. }
                | RequestError::EmptyKey
                | RequestError::ReservedKey
                | RequestError::InvalidItem { .. }
                | RequestError::InvalidUpdate { .. }
                | RequestError::KeyTooLarge { .. } => StatusCode::BAD_REQUEST,
                RequestError::ConditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
                RequestError::InvalidTable { .. } | RequestError::InvalidBatch { .. } => {
                    StatusCode::BAD_REQUEST
                }
                RequestError::TableExists { .. } => StatusCode::CONFLICT,
                RequestError::TableNotFound { .. } => StatusCode::NOT_FOUND,
                RequestError::ValueTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                RequestError::TooManySiblings { .. } => StatusCode::CONFLICT,
                RequestError::Quorum { .. }
                | RequestError::Overloaded { .. }
                | RequestError::NoReplicas => StatusCode::SERVICE_UNAVAILABLE,
                RequestError::Storage { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::EmptyKey
            | ApiError::BadContext(_)
            | ApiError::ContextNotAscii
            | ApiError::MissingContext
            | ApiError::OverwriteWithContext
            | ApiError::BadQuery { .. }
            | ApiError::BadJson { .. }
            | ApiError::BodyUnreadable
            | ApiError::BadItem(_)
            | ApiError::BadItemKey { .. } => StatusCode::BAD_REQUEST,
            ApiError::ItemNotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::ConditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Overloaded | ApiError::ShuttingDown | ApiError::CoreTimeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::MismatchedReply => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable kind string of the JSON body (also the `outcome` label of metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Request(error) => error.kind(),
            ApiError::EmptyKey => "bad_key",
            ApiError::BadContext(_) | ApiError::ContextNotAscii => "bad_context",
            ApiError::MissingContext => "missing_context",
            ApiError::OverwriteWithContext => "overwrite_with_context",
            ApiError::BadQuery { .. } => "bad_query",
            ApiError::BadJson { .. } => "bad_json",
            ApiError::BodyTooLarge { .. } => "value_too_large",
            ApiError::BodyUnreadable => "bad_body",
            ApiError::Overloaded => "overloaded",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::CoreTimeout => "core_timeout",
            ApiError::MismatchedReply => "internal",
            ApiError::BadItem(_) => "invalid_item",
            ApiError::BadItemKey { .. } => "bad_key",
            ApiError::ItemNotFound { .. } => "not_found",
            ApiError::ConditionFailed { .. } => "condition_failed",
            ApiError::NoRoute { .. } => "no_route",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.kind().to_string(),
            detail: self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::NodeId;
    use ringstore_core::request::ReplicaFailure;

    // Each error class maps to its documented status and kind, and the body names the cause.
    #[test]
    fn errors_map_to_statuses_and_kinds() {
        let cases: Vec<(ApiError, StatusCode, &str, &str)> = vec![
            (
                RequestError::InvalidQuorum {
                    which: 'r',
                    asked: 9,
                    n: 3,
                }
                .into(),
                StatusCode::BAD_REQUEST,
                "invalid_quorum",
                "r = 9",
            ),
            (
                RequestError::KeyTooLarge {
                    len: 2000,
                    max: 1024,
                }
                .into(),
                StatusCode::BAD_REQUEST,
                "bad_key",
                "1024",
            ),
            (
                ApiError::BadContext(
                    ringstore_core::version::CausalContext::decode("!!").unwrap_err(),
                ),
                StatusCode::BAD_REQUEST,
                "bad_context",
                "X-Ringstore-Context",
            ),
            (
                ApiError::OverwriteWithContext,
                StatusCode::BAD_REQUEST,
                "overwrite_with_context",
                "without a context header",
            ),
            (
                ApiError::BodyTooLarge { max: 1 << 20 },
                StatusCode::PAYLOAD_TOO_LARGE,
                "value_too_large",
                "1048576",
            ),
            (
                RequestError::ValueTooLarge { len: 9, max: 8 }.into(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "value_too_large",
                "limit is 8",
            ),
            (
                RequestError::Quorum {
                    needed: 2,
                    acks: 1,
                    tried: vec![NodeId(1), NodeId(2)],
                    failures: vec![(NodeId(2), ReplicaFailure::TimedOut)],
                }
                .into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "quorum_not_reached",
                "1 of 2",
            ),
            (
                ApiError::Overloaded,
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "overloaded",
            ),
            (
                RequestError::Storage {
                    detail: "disk full".into(),
                }
                .into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                "disk full",
            ),
            (
                ApiError::BadItem(AttributeJsonError::EmptySet {
                    path: "tags".into(),
                    descriptor: "SS",
                }),
                StatusCode::BAD_REQUEST,
                "invalid_item",
                "attribute `tags`",
            ),
            (
                RequestError::TableNotFound {
                    name: "events".into(),
                }
                .into(),
                StatusCode::NOT_FOUND,
                "table_not_found",
                "events",
            ),
            (
                RequestError::TableExists {
                    name: "events".into(),
                }
                .into(),
                StatusCode::CONFLICT,
                "table_exists",
                "events",
            ),
            (
                ApiError::ItemNotFound {
                    table: "events".into(),
                },
                StatusCode::NOT_FOUND,
                "not_found",
                "table `events` has no item",
            ),
            (
                ApiError::ConditionFailed {
                    condition: ItemCondition::NotExists,
                    exists: true,
                },
                StatusCode::PRECONDITION_FAILED,
                "condition_failed",
                "not_exists failed: an item with this key exists",
            ),
            (
                RequestError::ConditionFailed { item: None }.into(),
                StatusCode::PRECONDITION_FAILED,
                "condition_failed",
                "conditional request failed",
            ),
        ];
        for (error, status, kind, detail_part) in cases {
            assert_eq!(error.status(), status, "{error}");
            let body = error.body();
            assert_eq!(body.error, kind);
            assert!(body.detail.contains(detail_part), "{}", body.detail);
        }
    }

    // The response carries the status and the JSON body.
    #[tokio::test]
    async fn responses_carry_json_bodies() {
        let response = ApiError::MissingContext.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error, "missing_context");
    }
}
