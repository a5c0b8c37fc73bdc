//! ringstore-experiments: quorum tuning: how stale and how slow each choice of N, R and W is, under a
//! latency profile, by two engines; and the bytes anti-entropy sends to repair a replica.
//!
//! - [`wars`]: the PBS WARS Monte Carlo model (Bailis et al., VLDB 2012): fast, no failures,
//!   no repair; validated against the paper's numbers in `crates/experiments/tests/pbs_validation.rs`;
//! - [`protocol`]: the real node code in the simulator, with the profile's delays on the
//!   matching message classes, read repair and anti-entropy switchable, faults from a scenario;
//! - [`profiles`]: the latency profiles (built-in PBS fits, or TOML files);
//! - [`histogram`]: the HdrHistogram (in milliseconds) behind every percentile and curve;
//! - [`quorum`]: the sweep behind `ringsim experiment quorum`, its reports (table, CSV, JSON);
//! - [`plot`]: t-visibility and latency-vs-staleness plots (SVG and PNG).
//!
//! - [`anti_entropy`]: the bytes anti-entropy sends to repair a partitioned replica, against
//!   the bytes of the keys that differ (`ringsim experiment anti-entropy`).
//!
//! Its own crate so that the simulator links none of what plots and reports need (plotters,
//! resvg). See `docs/experiments.md` and `docs/anti-entropy-bytes.md`.

pub mod anti_entropy;
pub mod histogram;
pub mod plot;
pub mod profiles;
pub mod protocol;
pub mod quorum;
pub mod wars;
