//! `GET /status` (JSON) and `GET /metrics` (Prometheus text): what the node reports about
//! itself.
//!
//! # Guarantees
//! - `/status` is a consistent snapshot taken by the driver between two batches.
//! - `/metrics` still answers (transport and HTTP metrics) when the core cannot be asked
//!   (overloaded or stopping); core values are then those of the previous scrape.

use super::HttpState;
use super::error::ApiError;
use crate::runtime::driver::DriverInput;
use crate::runtime::status::NodeStatus;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use std::sync::Arc;
use std::time::Duration;

/// How long a status request waits for the driver.
const STATUS_WAIT: Duration = Duration::from_secs(2);

/// The content type of the Prometheus text format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /status`.
pub async fn status(State(state): State<Arc<HttpState>>) -> Result<Json<NodeStatus>, ApiError> {
    Ok(Json(state.ask(STATUS_WAIT, DriverInput::Status).await?))
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    match state.ask(STATUS_WAIT, DriverInput::Status).await {
        Ok(status) => state.metrics.observe_core(&status),
        Err(error) => tracing::debug!(%error, "metrics: core snapshot unavailable"),
    }
    (
        [(
            "content-type",
            HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
        )],
        state.metrics.encode(),
    )
}
