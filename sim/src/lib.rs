//! ringstore-sim: a deterministic simulator that drives the real `ringstore` node core under
//! virtual time (being written).

pub mod distribution;
