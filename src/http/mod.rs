//! The HTTP API of one node (axum): keys, tables and items, status, metrics and admin
//! endpoints.
//!
//! Handlers never touch the node core: they turn a request into a
//! [`DriverInput`](crate::runtime::driver::DriverInput), `try_send` it to the driver task
//! with a oneshot for the answer, and await that. The endpoints, headers, statuses and bodies
//! are documented in `docs/http-api.md` (the runtime contract's §3).
//!
//! # Guarantees
//! - Bounded: a full driver queue is answered `503 overloaded` at once, never queued; a body
//!   over `max_value_bytes` (over [`MAX_TABLE_BODY_BYTES`] on `/tables/...`) is refused with
//!   `413` before it is buffered whole.
//! - Every error has a JSON body `{"error": kind, "detail": sentence}` ([`error::ApiError`]),
//!   an unknown path (`404 no_route`) or method (`405 method_not_allowed`) included.
//! - Accepted sockets have `TCP_NODELAY` set (small responses are not held back by Nagle).
//!
//! # Known limits
//! - No authentication: bind `http_addr` to a trusted interface (the admin endpoints can
//!   partition and decommission the node).

pub mod admin;
pub mod attribute_json;
pub mod error;
pub mod items;
pub mod kv;
pub mod observe;
pub mod tables;

use crate::runtime::driver::DriverInput;
use crate::runtime::faults::Faults;
use crate::runtime::front_door::FrontDoor;
use crate::runtime::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use error::ApiError;
use ringstore_core::request::{ClientReply, ClientRequest};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The largest body of a table or item endpoint. An item is at most 400 KB as DynamoDB counts
/// it, and its JSON is larger (type descriptors, quotes, base64), so these routes take more
/// than `max_value_bytes`.
pub const MAX_TABLE_BODY_BYTES: usize = 4 << 20;

/// Limits the front end enforces before the core sees a request.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Largest value accepted (bodies above it get 413).
    pub max_value_bytes: usize,
}

/// What every handler shares.
pub struct HttpState {
    door: Arc<FrontDoor>,
    metrics: Arc<Metrics>,
    faults: Arc<Faults>,
    limits: HttpLimits,
}

impl HttpState {
    /// The state of a node's front end.
    pub fn new(
        door: Arc<FrontDoor>,
        metrics: Arc<Metrics>,
        faults: Arc<Faults>,
        limits: HttpLimits,
    ) -> Self {
        Self {
            door,
            metrics,
            faults,
            limits,
        }
    }

    /// Sends an input to the driver without waiting: full queue = overloaded.
    fn submit(&self, input: DriverInput) -> Result<(), ApiError> {
        Ok(self.door.submit(input)?)
    }

    /// Sends an input built around a oneshot and awaits the answer for at most `wait`.
    async fn ask<T>(
        &self,
        wait: Duration,
        make: impl FnOnce(oneshot::Sender<T>) -> DriverInput,
    ) -> Result<T, ApiError> {
        Ok(self.door.ask(wait, make).await?)
    }
}

/// The API's routes.
pub fn router(state: Arc<HttpState>) -> Router {
    let body_limit = state.limits.max_value_bytes;
    let kv = Router::new()
        .route(
            "/kv/",
            get(kv::empty_key).put(kv::empty_key).delete(kv::empty_key),
        )
        .route("/kv/{*key}", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/status", get(observe::status))
        .route("/metrics", get(observe::metrics))
        .route("/admin/partition", post(admin::partition))
        .route("/admin/slow", post(admin::slow))
        .route("/admin/heal", post(admin::heal))
        .route("/admin/leave", post(admin::leave))
        .layer(DefaultBodyLimit::max(body_limit));
    let tables = Router::new()
        .route("/tables", get(tables::list).post(tables::create))
        .route(
            "/tables/{table}",
            get(tables::describe)
                .delete(tables::delete)
                .patch(tables::update),
        )
        .route("/tables/{table}/items", put(items::put).get(items::scan))
        .route(
            "/tables/{table}/items/{partition}",
            get(items::get).delete(items::delete).patch(items::update),
        )
        .route(
            "/tables/{table}/items/{partition}/{sort}",
            get(items::get).delete(items::delete).patch(items::update),
        )
        .route("/tables/{table}/partitions/{partition}", get(items::query))
        .layer(DefaultBodyLimit::max(MAX_TABLE_BODY_BYTES));
    kv.merge(tables)
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(state)
}

/// Any path or method no endpoint serves: `404 no_route` with the JSON error body.
async fn no_route(method: Method, uri: Uri) -> Response {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().chars().take(200).collect(),
    }
    .into_response()
}

/// A method the path's endpoint does not take: `405 method_not_allowed`.
async fn no_method(method: Method, uri: Uri) -> Response {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().chars().take(200).collect(),
    }
    .into_response()
}

/// Sends a request to the core and waits for its answer (its deadline plus a grace).
async fn call(state: &HttpState, request: ClientRequest) -> Result<ClientReply, ApiError> {
    Ok(state.door.request(request).await??)
}

/// Records the request in the metrics and turns the outcome into a response.
fn finish(
    state: &HttpState,
    kind: &'static str,
    started: Instant,
    outcome: Result<(Response, &'static str), ApiError>,
) -> Response {
    let (response, label) = match outcome {
        Ok(ok) => ok,
        Err(error) => {
            let label = error.kind();
            (error.into_response(), label)
        }
    };
    state.metrics.record_request(kind, label, started.elapsed());
    response
}

/// The query string, or `400 bad_query` naming what did not parse.
fn parse_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ApiError::BadQuery {
            detail: rejection.body_text(),
        })
}

/// The body, or `413` when it is over `max` (`400 bad_body` when it cannot be read).
fn read_body(body: Result<Bytes, BytesRejection>, max: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge { max }
        } else {
            ApiError::BodyUnreadable
        }
    })
}

/// Parses a JSON body whatever its content type (`curl -d` sends a form content type).
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::BadJson {
        detail: error.to_string(),
    })
}

/// Serves `router` on `listener` with `TCP_NODELAY` on every accepted socket, until
/// `shutdown` resolves; in-flight requests then finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod handler_tests;
