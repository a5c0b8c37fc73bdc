//! The YCSB core workloads' operation mixes, and the planner that draws each operation: its
//! type, its record, the node it goes to and the value it writes.
//!
//! | workload | mix | keys |
//! |---|---|---|
//! | A (update heavy) | 50% read, 50% update | `--distribution` |
//! | B (read mostly) | 95% read, 5% update | `--distribution` |
//! | C (read only) | 100% read | `--distribution` |
//! | D (read latest) | 95% read, 5% insert | latest |
//! | F (read-modify-write) | 50% read, 50% read-modify-write | `--distribution` |
//!
//! # Guarantees
//! - A planner's draws depend only on its seed, the options and (for D) the insert counter:
//!   one RNG per client, derived from the run's seed and the client's number.
//! - Every value is exactly `value_bytes` random bytes; reads carry no value.
//!
//! # Limits
//! - YCSB's workload E (short scans) is not offered: the store has no range reads.

use super::keys::{InsertCounter, KeyChooser, mix64};
use super::options::{KeyDistribution, NodeChoice};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringstore_core::NodeId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A YCSB core workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Update heavy: 50% reads, 50% updates.
    A,
    /// Read mostly: 95% reads, 5% updates.
    B,
    /// Read only.
    C,
    /// Read latest: 95% reads of recent records, 5% inserts of new ones.
    D,
    /// Read-modify-write: 50% reads, 50% get-then-put with the read's context.
    F,
}

impl Workload {
    /// The workload's operation proportions.
    pub fn mix(self) -> OpMix {
        let (read, update, insert, rmw) = match self {
            Workload::A => (0.5, 0.5, 0.0, 0.0),
            Workload::B => (0.95, 0.05, 0.0, 0.0),
            Workload::C => (1.0, 0.0, 0.0, 0.0),
            Workload::D => (0.95, 0.0, 0.05, 0.0),
            Workload::F => (0.5, 0.0, 0.0, 0.5),
        };
        OpMix {
            read,
            update,
            insert,
            rmw,
        }
    }

    /// The key distribution the workload actually uses: D always reads the latest records.
    pub fn effective_distribution(self, asked: KeyDistribution) -> &'static str {
        match (self, asked) {
            (Workload::D, _) => "latest",
            (_, KeyDistribution::Zipfian) => "zipfian",
            (_, KeyDistribution::Uniform) => "uniform",
        }
    }

    /// Lower-case name (`"a"`), as on the command line.
    pub fn label(self) -> &'static str {
        match self {
            Workload::A => "a",
            Workload::B => "b",
            Workload::C => "c",
            Workload::D => "d",
            Workload::F => "f",
        }
    }
}

/// Proportions of each operation type; they sum to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpMix {
    /// Gets.
    pub read: f64,
    /// Updates of existing records (see `UpdateMode`).
    pub update: f64,
    /// Inserts of new records.
    pub insert: f64,
    /// Get, then put with the get's context.
    pub rmw: f64,
}

/// The type of an operation, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// A get.
    Read,
    /// An update of an existing record.
    Update,
    /// An insert of a new record (workload D).
    Insert,
    /// Workload F's read-modify-write.
    ReadModifyWrite,
    /// An insert of the load phase.
    Load,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 5] = [
        OpKind::Read,
        OpKind::Update,
        OpKind::Insert,
        OpKind::ReadModifyWrite,
        OpKind::Load,
    ];

    /// The run phase's kinds (everything but [`OpKind::Load`]).
    pub const RUN: [OpKind; 4] = [
        OpKind::Read,
        OpKind::Update,
        OpKind::Insert,
        OpKind::ReadModifyWrite,
    ];

    /// The name in reports and JSON.
    pub fn label(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::ReadModifyWrite => "rmw",
            OpKind::Load => "load",
        }
    }

    /// Position in [`OpKind::ALL`] (for per-kind arrays).
    pub fn index(self) -> usize {
        match self {
            OpKind::Read => 0,
            OpKind::Update => 1,
            OpKind::Insert => 2,
            OpKind::ReadModifyWrite => 3,
            OpKind::Load => 4,
        }
    }
}

/// One operation, fully decided before it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedOp {
    /// Its type.
    pub kind: OpKind,
    /// The record it touches (its key is `keys::key_name(record)`).
    pub record: u64,
    /// The node the request(s) go to.
    pub node: NodeId,
    /// The value written (empty for reads).
    pub value: Vec<u8>,
}

/// Derives the seed of worker `worker` (a client, the open-loop scheduler) from the run seed.
pub fn worker_seed(run_seed: u64, worker: u64) -> u64 {
    mix64(run_seed ^ mix64(worker.wrapping_add(1)))
}

/// Draws operations for one client (or the open-loop scheduler).
#[derive(Clone, Debug)]
pub struct Planner {
    mix: OpMix,
    keys: KeyChooser,
    nodes: Vec<NodeId>,
    node_choice: NodeChoice,
    next_node: usize,
    value_bytes: usize,
    inserts: Arc<InsertCounter>,
    rng: ChaCha8Rng,
}

/// What a planner needs besides its seed (shared by all clients of a run).
#[derive(Clone, Debug)]
pub struct PlanSpec {
    /// The workload.
    pub workload: Workload,
    /// Its key distribution (ignored by D).
    pub distribution: KeyDistribution,
    /// Records in the store (the load phase's count).
    pub records: u64,
    /// Bytes per value.
    pub value_bytes: usize,
    /// The nodes operations may go to (not empty).
    pub nodes: Vec<NodeId>,
    /// How a node is chosen.
    pub node_choice: NodeChoice,
    /// Insert indices and acknowledgements (workload D and the load phase).
    pub inserts: Arc<InsertCounter>,
}

impl Planner {
    /// The planner of worker `worker`, seeded from `run_seed`.
    pub fn new(spec: &PlanSpec, run_seed: u64, worker: u64) -> Self {
        let keys = match spec.workload {
            Workload::D => KeyChooser::Latest,
            _ => KeyChooser::new(spec.distribution, spec.records),
        };
        let node_count = spec.nodes.len().max(1);
        Self {
            mix: spec.workload.mix(),
            keys,
            nodes: spec.nodes.clone(),
            node_choice: spec.node_choice,
            next_node: (worker as usize) % node_count,
            value_bytes: spec.value_bytes,
            inserts: Arc::clone(&spec.inserts),
            rng: ChaCha8Rng::seed_from_u64(worker_seed(run_seed, worker)),
        }
    }

    /// The next operation of the run phase.
    pub fn next_op(&mut self) -> PlannedOp {
        let kind = self.next_kind();
        let record = match kind {
            OpKind::Insert | OpKind::Load => self.inserts.claim(),
            _ => self.keys.next(&mut self.rng, &self.inserts),
        };
        self.op(kind, record)
    }

    /// The load phase's insert of `record`.
    pub fn load_op(&mut self, record: u64) -> PlannedOp {
        self.op(OpKind::Load, record)
    }

    fn op(&mut self, kind: OpKind, record: u64) -> PlannedOp {
        let node = self.next_node();
        let value = match kind {
            OpKind::Read => Vec::new(),
            _ => {
                let mut value = vec![0u8; self.value_bytes];
                self.rng.fill(&mut value[..]);
                value
            }
        };
        PlannedOp {
            kind,
            record,
            node,
            value,
        }
    }

    fn next_kind(&mut self) -> OpKind {
        let mix = self.mix;
        let mut x: f64 = self.rng.random_range(0.0..1.0);
        for (share, kind) in [
            (mix.read, OpKind::Read),
            (mix.update, OpKind::Update),
            (mix.insert, OpKind::Insert),
        ] {
            if x < share {
                return kind;
            }
            x -= share;
        }
        if mix.rmw > 0.0 {
            OpKind::ReadModifyWrite
        } else {
            // Rounding left x just above the listed shares: the largest share is the read.
            OpKind::Read
        }
    }

    fn next_node(&mut self) -> NodeId {
        let count = self.nodes.len();
        if count == 0 {
            return NodeId(0);
        }
        let index = match self.node_choice {
            NodeChoice::Random => self.rng.random_range(0..count),
            NodeChoice::RoundRobin => {
                let index = self.next_node % count;
                self.next_node = index + 1;
                index
            }
        };
        self.nodes[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SEED: u64 = 0xbe7c_0002;

    fn spec(workload: Workload) -> PlanSpec {
        PlanSpec {
            workload,
            distribution: KeyDistribution::Zipfian,
            records: 1000,
            value_bytes: 16,
            nodes: vec![NodeId(1), NodeId(2), NodeId(3)],
            node_choice: NodeChoice::Random,
            inserts: Arc::new(InsertCounter::new(1000)),
        }
    }

    #[test]
    fn planned_mix_matches_the_workload() {
        // Goal: each workload's drawn proportions are its YCSB mix, within sampling error
        // (20 000 draws: the standard error of a 50% share is 0.35%, so 2% is > 5 sigma).
        println!("seed {SEED}");
        for workload in [
            Workload::A,
            Workload::B,
            Workload::C,
            Workload::D,
            Workload::F,
        ] {
            let mut planner = Planner::new(&spec(workload), SEED, 0);
            let draws = 20_000;
            let mut counts: HashMap<OpKind, usize> = HashMap::new();
            for _ in 0..draws {
                *counts.entry(planner.next_op().kind).or_default() += 1;
            }
            let mix = workload.mix();
            for (kind, expected) in [
                (OpKind::Read, mix.read),
                (OpKind::Update, mix.update),
                (OpKind::Insert, mix.insert),
                (OpKind::ReadModifyWrite, mix.rmw),
            ] {
                let got = *counts.get(&kind).unwrap_or(&0) as f64 / draws as f64;
                assert!(
                    (got - expected).abs() < 0.02,
                    "workload {workload:?} {kind:?}: {got} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn same_seed_same_plan_and_workers_differ() {
        // Goal: a run is reproducible from its seed, and two clients do not issue the same
        // sequence.
        let spec = spec(Workload::A);
        let plan = |worker| {
            let mut planner = Planner::new(&spec, SEED, worker);
            (0..50).map(|_| planner.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(plan(3), plan(3));
        assert_ne!(plan(3), plan(4));
    }

    #[test]
    fn values_have_the_asked_size_and_round_robin_cycles() {
        // Goal: writes carry exactly value_bytes, reads none; round-robin visits every node in
        // turn from a per-worker offset.
        let mut spec = spec(Workload::A);
        spec.node_choice = NodeChoice::RoundRobin;
        let mut planner = Planner::new(&spec, SEED, 1);
        let ops: Vec<PlannedOp> = (0..6).map(|_| planner.next_op()).collect();
        for op in &ops {
            match op.kind {
                OpKind::Read => assert!(op.value.is_empty()),
                _ => assert_eq!(op.value.len(), 16),
            }
        }
        let nodes: Vec<u64> = ops.iter().map(|op| op.node.0).collect();
        assert_eq!(nodes, vec![2, 3, 1, 2, 3, 1]);
    }
}
