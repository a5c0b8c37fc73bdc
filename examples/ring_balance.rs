//! Measures the ring's balance and movement: `max/mean` ownership for 5, 10 and 20 nodes at
//! V = 16, 64, 256 vnodes per node, and the share of the key space that moves when one node
//! joins, against the ideal 1/(n+1). Everything is computed exactly from arc widths, averaged
//! over several rings with different node ids (token placement is pseudo-random per id).
//!
//! Run with `cargo run --release --example ring_balance`.

use std::time::Instant;

use ringstore_core::NodeId;
use ringstore_core::ring::{Ring, RingError, RingMember, Zone, changed_ranges};

/// Rings per configuration (node ids `trial * 1000 + 1 ..= trial * 1000 + nodes`).
const TRIALS: u64 = 20;
/// The replication factor of the replica columns.
const N: usize = 3;

/// The ring of `nodes` nodes of trial `trial`, each with `vnodes` vnodes.
fn trial_ring(trial: u64, nodes: u64, vnodes: u32) -> Result<Ring, RingError> {
    Ring::new((1..=nodes).map(|i| RingMember::new(NodeId(trial * 1000 + i), vnodes)))
}

/// Mean and maximum of `values`.
fn mean_max(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (mean, values.iter().copied().fold(0.0, f64::max))
}

/// The share of the key space whose `n` replicas change between the rings, and the number of
/// changed arcs where a node other than `newcomer` gained data (must be 0).
fn moved_share(old: &Ring, new: &Ring, n: usize, newcomer: NodeId) -> (f64, usize) {
    let changes = changed_ranges(old, new, n);
    let share = changes.iter().map(|c| c.range.fraction()).sum();
    let wrong = changes
        .iter()
        .filter(|c| c.gained().any(|node| node != newcomer))
        .count();
    (share, wrong)
}

fn balance_and_join_table() -> Result<(), RingError> {
    println!("Balance (max/mean ownership) and join movement; mean (worst) over {TRIALS} rings.");
    println!();
    println!(
        "| nodes | V | primary max/mean | N={N} replica max/mean | moved on join, N=1 | 1/(n+1) | moved on join, N={N} | {N}/(n+1) | gains not to newcomer |"
    );
    println!("|---:|---:|---|---|---|---:|---|---:|---:|");
    for nodes in [5u64, 10, 20] {
        for vnodes in [16u32, 64, 256] {
            let mut primary = Vec::new();
            let mut replica = Vec::new();
            let mut moved_primary = Vec::new();
            let mut moved_replica = Vec::new();
            let mut wrong_gains = 0;
            for trial in 0..TRIALS {
                let ring = trial_ring(trial, nodes, vnodes)?;
                let ownership = ring.ownership(N);
                primary.push(ownership.primary_balance());
                replica.push(ownership.replica_balance());
                let newcomer = NodeId(trial * 1000 + nodes + 1);
                let joined = ring.with_member(RingMember::new(newcomer, vnodes))?;
                let (share, wrong) = moved_share(&ring, &joined, 1, newcomer);
                moved_primary.push(share);
                wrong_gains += wrong;
                let (share, wrong) = moved_share(&ring, &joined, N, newcomer);
                moved_replica.push(share);
                wrong_gains += wrong;
            }
            let (p_mean, p_max) = mean_max(&primary);
            let (r_mean, r_max) = mean_max(&replica);
            let (m1_mean, m1_max) = mean_max(&moved_primary);
            let (mn_mean, mn_max) = mean_max(&moved_replica);
            println!(
                "| {nodes} | {vnodes} | {p_mean:.3} ({p_max:.3}) | {r_mean:.3} ({r_max:.3}) | {m1_mean:.4} ({m1_max:.4}) | {:.4} | {mn_mean:.4} ({mn_max:.4}) | {:.4} | {wrong_gains} |",
                1.0 / (nodes as f64 + 1.0),
                N as f64 / (nodes as f64 + 1.0)
            );
        }
    }
    Ok(())
}

/// Replica balance with zones: equal zones balance as well as no zones; unequal zones load
/// the nodes of the small zone, since every key puts one replica in each zone first.
fn zone_table() -> Result<(), RingError> {
    println!();
    println!("Zones (V = 256, N = {N}): replica max/mean, mean (worst) over {TRIALS} rings.");
    println!();
    println!("| zone sizes | replica max/mean | busiest node's replica share | ideal share |");
    println!("|---|---|---|---:|");
    for sizes in [vec![3u64, 3, 3], vec![4, 3, 3], vec![6, 2, 2]] {
        let total: u64 = sizes.iter().sum();
        let mut balance = Vec::new();
        let mut busiest = Vec::new();
        for trial in 0..TRIALS {
            let mut members = Vec::new();
            let mut id = trial * 1000;
            for (zone, &size) in sizes.iter().enumerate() {
                for _ in 0..size {
                    id += 1;
                    members.push(RingMember::in_zone(
                        NodeId(id),
                        Zone::new(format!("z{zone}")),
                        256,
                    ));
                }
            }
            let ownership = Ring::new(members)?.ownership(N);
            balance.push(ownership.replica_balance());
            busiest.push(
                ownership
                    .nodes
                    .iter()
                    .map(|o| o.replica)
                    .fold(0.0, f64::max),
            );
        }
        let (b_mean, b_max) = mean_max(&balance);
        let (s_mean, s_max) = mean_max(&busiest);
        println!(
            "| {sizes:?} | {b_mean:.3} ({b_max:.3}) | {s_mean:.3} ({s_max:.3}) | {:.3} |",
            N as f64 / total as f64
        );
    }
    Ok(())
}

/// Wall-clock cost of a preference-list lookup (informative only; not asserted anywhere).
fn lookup_cost() -> Result<(), RingError> {
    println!();
    let ring = trial_ring(0, 20, 256)?;
    let lookups = 1_000_000u64;
    let started = Instant::now();
    let mut checksum = 0u64;
    for i in 0..lookups {
        let list = ring.preference_list(&i.to_le_bytes(), N);
        checksum = checksum.wrapping_add(list.primary().map_or(0, |node| node.0));
    }
    let elapsed_ns = started.elapsed().as_nanos() as f64;
    println!(
        "preference_list(key, {N}) on 20 nodes x 256 vnodes: {:.0} ns per lookup ({lookups} lookups, checksum {checksum})",
        elapsed_ns / lookups as f64
    );
    Ok(())
}

fn main() -> Result<(), RingError> {
    balance_and_join_table()?;
    zone_table()?;
    lookup_cost()
}
