//! Cluster membership: the gossiped member table and the φ accrual failure detector.
//!
//! # What this owns
//! - [`MemberTable`] (`member_table.rs`): every node's view of who is in the cluster, how to
//!   reach them, their zone, vnodes and life-cycle status. Dynamo §4.8.1: membership and ring
//!   ownership spread by gossip; tables merge per member, newest entry wins.
//! - [`FailureDetector`] (`phi_accrual.rs`): per-peer φ accrual failure detection (Hayashibara
//!   et al. 2004), fed by the heartbeats the merges reveal. Dynamo §4.8.3: a local, purely
//!   advisory notion of failure that decides whom to send requests to (and when to hint).
//!
//! Both are pure data structures: no messages, no timers, no I/O, no clock. The node core owns
//! them and drives them from its gossip timer and message handlers:
//!
//! 1. each gossip round: [`MemberTable::bump_heartbeat`], then send
//!    [`MemberTable::entries`] to a random peer;
//! 2. on a received table: [`MemberTable::merge`]; for each node in
//!    [`MergeReport::heartbeats`] call [`FailureDetector::heartbeat`], for each node in
//!    [`MergeReport::changed`] call [`FailureDetector::expect`] (or
//!    [`FailureDetector::remove`] if it is now `Left`); if `changed` is not empty, rebuild the
//!    ring from [`MemberTable::ring_members`]; then reply with its own table (push-pull: the
//!    measurements in `docs/membership.md` show push-only gossip causes false suspicions);
//! 3. before routing a request: [`FailureDetector::is_up`].
//!
//! # Guarantees
//! - Table merges are commutative, associative and idempotent: random gossip converges.
//! - Nothing taken from the network can panic or grow without bound: entries are validated,
//!   the table is capped at [`MAX_MEMBERS`], detector windows at
//!   [`PhiConfig::max_sample_size`].
//!
//! # Known limits
//! See `docs/membership.md`: full-table gossip is O(members) per message; there is no seed
//! node distinction; Left tombstones are never collected.

mod member_table;
mod phi_accrual;

pub use member_table::{
    MAX_ADDR_LEN, MAX_MEMBERS, MAX_VNODES, MAX_ZONE_LEN, MemberError, MemberInfo, MemberStatus,
    MemberTable, MergeReport,
};
pub use phi_accrual::{
    FailureDetector, MAX_SAMPLE_INTERVAL_LIMIT, MAX_SAMPLE_SIZE_LIMIT, PhiAccrualDetector,
    PhiConfig, PhiConfigError,
};
