//! The summary of a run: what `ringsim run` prints, and the reproduction command on failure.

use crate::item_oracle::{ItemCounts, resolve};
use crate::world::RunResult;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// How a run was invoked, to print a command that reproduces it.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The seed.
    pub seed: u64,
    /// The flags after `--seed` that shaped the scenario, as typed.
    pub flags: Vec<String>,
}

impl Invocation {
    /// The command line that reproduces this run.
    pub fn command(&self) -> String {
        let mut cmd = format!("ringsim run --seed {}", self.seed);
        for flag in &self.flags {
            cmd.push(' ');
            cmd.push_str(flag);
        }
        cmd
    }
}

/// The text summary of one run.
pub fn summary(result: &RunResult, invocation: &Invocation, wall: Duration) -> String {
    let mut out = String::new();
    let c = &result.counters;
    let ok: u64 = c.ok.values().sum();
    let failed: u64 = c.failed.values().sum();
    let _ = writeln!(out, "ringsim: {}", invocation.command());
    let _ = writeln!(
        out,
        "operations: {} ok {:?}, {} failed {:?}",
        ok, c.ok, failed, c.failed
    );
    let s = &result.node_stats;
    let _ = writeln!(
        out,
        "mechanisms: hinted writes {}, hints delivered {}, read repairs {}, anti-entropy keys {} in {} exchanges, keys handed off {}",
        s.hinted_writes,
        s.hints_delivered,
        s.read_repairs,
        s.anti_entropy_keys,
        s.anti_entropy_rounds,
        s.keys_handed_off
    );
    let staleness = result.oracle.staleness();
    let _ = writeln!(
        out,
        "staleness: {} of {} reads saw the latest acknowledged write ({:.2}%); k-staleness {:?}; {} reads held to their quorum's promise",
        staleness.consistent,
        staleness.reads,
        staleness.consistent_fraction() * 100.0,
        staleness.versions_behind,
        c.quorum_reads_judged
    );
    if let Some(items) = &result.item_oracle {
        let _ = writeln!(out, "{}", item_line(items.counts()));
    }
    match result.convergence_us {
        Some(us) => {
            let _ = writeln!(out, "convergence: {:.3} s after heal", us as f64 / 1e6);
        }
        None => {
            let _ = writeln!(out, "convergence: NOT reached within the quiescence period");
        }
    }
    let virtual_s = result.virtual_us as f64 / 1e6;
    let wall_s = wall.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "time: {:.1} s virtual in {:.3} s wall ({:.0}x); {} events ({:.0}/s), {} deliveries ({:.0}/s), {} dropped",
        virtual_s,
        wall_s,
        virtual_s / wall_s,
        c.events,
        c.events as f64 / wall_s,
        c.deliveries,
        c.deliveries as f64 / wall_s,
        c.dropped
    );
    let _ = writeln!(out, "trace hash: {:016x}", result.trace_hash);
    if result.violations.is_empty() {
        let _ = writeln!(out, "violations: none");
        if result.convergence_us.is_none() {
            let _ = writeln!(out, "reproduce: {}", invocation.command());
        }
    } else {
        let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for v in &result.violations {
            *by_kind.entry(v.kind()).or_default() += 1;
        }
        if by_kind.len() > 1 {
            let _ = writeln!(
                out,
                "violations: {} by kind {by_kind:?}",
                result.violations.len()
            );
        } else {
            let _ = writeln!(out, "violations: {}", result.violations.len());
        }
        let shown = &result.violations[..result.violations.len().min(10)];
        for v in shown {
            let _ = writeln!(out, "  {v}");
        }
        // The first of each kind the first ten did not show.
        for kind in by_kind.keys() {
            if !shown.iter().any(|v| v.kind() == *kind)
                && let Some(v) = result.violations.iter().find(|v| v.kind() == *kind)
            {
                let _ = writeln!(out, "  {v}");
            }
        }
        if let Some(item) = result.violations.first().and_then(|v| v.item()) {
            item_trace(&mut out, result, item);
        }
        if let Some(key) = result.violations.first().and_then(|v| v.key()) {
            let _ = writeln!(out, "trace of key-{key}:");
            for line in result.oracle.key_history(key) {
                let _ = writeln!(out, "{line}");
            }
            if let Some(sets) = result.replicas.get(&key) {
                for (node, set) in sets {
                    let live: Vec<u64> = set
                        .iter()
                        .flat_map(|s| s.siblings())
                        .filter_map(|(_, v)| v.data().and_then(crate::workload::write_id_of))
                        .collect();
                    let _ = writeln!(out, "  final on {node}: live writes {live:?}");
                }
            }
        }
        let _ = writeln!(out, "reproduce: {}", invocation.command());
    }
    out
}

/// The item workload's line of the summary (and of a sweep's totals).
pub fn item_line(i: &ItemCounts) -> String {
    format!(
        "items: {} attribute updates acked, {} lost to a newer stamp of the same attribute ({} would be lost under whole-item last-writer-wins), {} to a newer row put/delete, {} undecided, {} overwritten after being read; {} consistent reads held to the majority's promise ({} attributes judged, {} not); {} end-of-run queries checked ({} unanswered)",
        i.attribute_writes_acked,
        i.lost_to_newer_stamp,
        i.whole_item_would_lose,
        i.lost_to_newer_row,
        i.undecided,
        i.overwritten_after_seen,
        i.consistent_reads_judged,
        i.consistent_attributes_judged,
        i.consistent_attributes_unjudged,
        i.final_queries_checked,
        i.final_queries_failed
    )
}

/// The history of item `item` and what each home replica holds of it at the end.
fn item_trace(out: &mut String, result: &RunResult, item: u64) {
    let Some(items) = &result.item_oracle else {
        return;
    };
    let _ = writeln!(out, "trace of {}:", items.workload().label(item));
    for line in items.item_history(item) {
        let _ = writeln!(out, "{line}");
    }
    for (node, set) in result.item_replicas.get(&item).into_iter().flatten() {
        let shown = match resolve(set.as_ref()) {
            Ok(state) => {
                let attributes: Vec<String> = state
                    .attributes()
                    .iter()
                    .map(|(name, a)| match &a.value {
                        Some(v) => format!("{name}={}@{}", crate::item_workload::show(v), a.stamp),
                        None => format!("{name} removed@{}", a.stamp),
                    })
                    .collect();
                format!("floor {} {}", state.floor(), attributes.join(" "))
            }
            Err(e) => format!("undecodable: {e}"),
        };
        let siblings = set.as_ref().map_or(0, |s| s.sibling_count());
        let _ = writeln!(out, "  final on {node} ({siblings} versions): {shown}");
    }
}
