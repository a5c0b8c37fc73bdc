//! The HTTP API of one node (axum): keys, status, metrics and admin endpoints.
//!
//! Handlers never touch the node core: they turn a request into a
//! [`DriverInput`](crate::runtime::driver::DriverInput), `try_send` it to the driver task
//! with a oneshot for the answer, and await that. The endpoints, headers, statuses and bodies
//! are documented in `docs/http-api.md` (the runtime contract's §3).
//!
//! # Guarantees
//! - Bounded: a full driver queue is answered `503 overloaded` at once, never queued; a body
//!   over `max_value_bytes` is refused with `413` before it is buffered whole.
//! - Every error has a JSON body `{"error": kind, "detail": sentence}` ([`error::ApiError`]).
//! - Accepted sockets have `TCP_NODELAY` set (small responses are not held back by Nagle).
//!
//! # Known limits
//! - No authentication: bind `http_addr` to a trusted interface (the admin endpoints can
//!   partition and decommission the node).

pub mod admin;
pub mod error;
pub mod kv;
pub mod observe;

use crate::runtime::driver::DriverInput;
use crate::runtime::faults::Faults;
use crate::runtime::front_door::FrontDoor;
use crate::runtime::metrics::Metrics;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use error::ApiError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

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
    Router::new()
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
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
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
