//! `ringsim`: the deterministic simulator of ringstore.
//!
//! An empty shell for now: the simulator (issue "sim/") drives the real node core from
//! `ringstore` under virtual time. Until the node core exists there is nothing to drive.

fn main() {
    eprintln!(
        "ringsim {}: the simulator is not built yet (it needs the node core); see docs/architecture.md",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
