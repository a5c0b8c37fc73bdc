//! `POST /admin/*`: fault injection on the live transport, and decommission.
//!
//! - `partition {"peers": [2, 3]}`: drop all traffic to and from those peers;
//! - `slow {"peers": [2, 3] | null, "delay_ms": 50}`: delay outbound traffic to them (or all);
//! - `heal`: clear every drop and delay;
//! - `leave`: decommission this node (Dynamo §4.9: it leaves the ring and hands its keys to
//!   their new owners).
//!
//! # Guarantees
//! - Fault endpoints answer `200` with the faults now in force, so a caller sees the result.
//! - Faults act on this node's transport only: partitioning A from B on A drops A's side of
//!   the link (both directions as A sees them); B keeps trying and its frames are dropped.

use super::error::ApiError;
use super::{HttpState, json_body};
use crate::runtime::driver::DriverInput;
use crate::runtime::faults::FaultState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use ringstore_core::NodeId;
use ringstore_core::node::AdminCommand;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Body of `POST /admin/partition`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionBody {
    /// Peers to cut off.
    pub peers: Vec<u64>,
}

/// Body of `POST /admin/slow`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowBody {
    /// Peers to slow down; `null` for every peer.
    pub peers: Option<Vec<u64>>,
    /// Delay added to each outbound batch.
    pub delay_ms: u64,
}

/// Body of `POST /admin/leave`'s answer.
#[derive(Debug, Serialize)]
pub struct LeaveAnswer {
    /// What the node does now.
    pub status: &'static str,
}

fn node_ids(peers: &[u64]) -> Vec<NodeId> {
    peers.iter().copied().map(NodeId).collect()
}

/// `POST /admin/partition`.
pub async fn partition(
    State(state): State<Arc<HttpState>>,
    body: Bytes,
) -> Result<Json<FaultState>, ApiError> {
    let body: PartitionBody = json_body(&body)?;
    let peers = node_ids(&body.peers);
    tracing::warn!(?peers, "admin: partitioning this node from peers");
    Ok(Json(state.faults.partition(&peers)))
}

/// `POST /admin/slow`.
pub async fn slow(
    State(state): State<Arc<HttpState>>,
    body: Bytes,
) -> Result<Json<FaultState>, ApiError> {
    let body: SlowBody = json_body(&body)?;
    let peers = body.peers.as_deref().map(node_ids);
    tracing::warn!(?peers, delay_ms = body.delay_ms, "admin: slowing traffic");
    Ok(Json(state.faults.slow(
        peers.as_deref(),
        Duration::from_millis(body.delay_ms),
    )))
}

/// `POST /admin/heal`.
pub async fn heal(State(state): State<Arc<HttpState>>) -> Json<FaultState> {
    tracing::warn!("admin: healing every fault");
    Json(state.faults.heal())
}

/// `POST /admin/leave`.
pub async fn leave(
    State(state): State<Arc<HttpState>>,
) -> Result<(StatusCode, Json<LeaveAnswer>), ApiError> {
    state.submit(DriverInput::Admin(AdminCommand::Leave))?;
    tracing::warn!("admin: decommissioning this node");
    Ok((
        StatusCode::ACCEPTED,
        Json(LeaveAnswer { status: "Leaving" }),
    ))
}
