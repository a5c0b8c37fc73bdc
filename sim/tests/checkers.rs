//! The simulator's own guarantees: runs are reproducible from their seed, the unbroken node
//! passes a sweep under a partition nemesis, and every broken mechanism is caught by the same
//! sweep (a checker that cannot fail checks nothing).

use ringstore_core::config::{ReadFanout, Sabotage};
use ringstore_sim::scenario::{NemesisConfig, NemesisKind, Scenario};
use ringstore_sim::world::World;
use std::time::Duration;

/// A short scenario under a partition-and-crash nemesis.
fn scenario(sabotage: Sabotage) -> Scenario {
    let mut s = Scenario {
        duration: Duration::from_secs(20),
        nemesis: Some(NemesisConfig {
            interval: Duration::from_secs(3),
            fault_duration: Duration::from_secs(3),
            kinds: vec![
                NemesisKind::Partition,
                NemesisKind::OneWay,
                NemesisKind::Crash,
                NemesisKind::Flap,
            ],
        }),
        ..Scenario::default()
    };
    s.workload.rate = 100.0;
    s.node.sabotage = sabotage;
    s.validate().expect("the test scenario is valid");
    s
}

/// Seeds (of `seeds`) whose run reports a violation or does not converge.
fn failing_seeds(sabotage: Sabotage, seeds: std::ops::Range<u64>) -> Vec<u64> {
    failing_seeds_of(&scenario(sabotage), seeds)
}

/// Seeds (of `seeds`) whose run of `scenario` reports a violation or does not converge.
fn failing_seeds_of(scenario: &Scenario, seeds: std::ops::Range<u64>) -> Vec<u64> {
    seeds
        .filter(|&seed| {
            let result = World::new(scenario.clone(), seed).run();
            !result.violations.is_empty() || result.convergence_us.is_none()
        })
        .collect()
}

const SEEDS: std::ops::Range<u64> = 1..7;

// Same seed, same run: the trace hashes agree; another seed gives another run.
#[test]
fn a_seed_determines_the_run() {
    let s = scenario(Sabotage::default());
    let a = World::new(s.clone(), 42).run();
    let b = World::new(s.clone(), 42).run();
    let c = World::new(s, 43).run();
    println!(
        "seeds 42, 42, 43: {:016x} {:016x} {:016x}",
        a.trace_hash, b.trace_hash, c.trace_hash
    );
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.counters, b.counters);
    assert_ne!(a.trace_hash, c.trace_hash);
}

// The real node survives the partition nemesis: no violation, and convergence after heal.
#[test]
fn unbroken_nodes_pass_the_sweep() {
    println!("seeds {SEEDS:?}");
    assert_eq!(failing_seeds(Sabotage::default(), SEEDS), Vec::<u64>::new());
}

// Gets that ask only R replicas (read_fanout = "quorum", widened on failure or after
// read_speculate_after) pass the same sweep: quorum intersection, not fan-out, is what keeps
// acknowledged writes readable.
#[test]
fn quorum_read_fanout_passes_the_sweep() {
    println!("seeds {SEEDS:?}");
    let mut s = scenario(Sabotage::default());
    s.node.read_fanout = ReadFanout::Quorum;
    assert_eq!(failing_seeds_of(&s, SEEDS), Vec::<u64>::new());
}

// Dynamo §4.6: without hint replay, hinted writes never drain and the cluster never settles.
#[test]
fn sweep_catches_no_hint_replay() {
    let sabotage = Sabotage {
        no_hint_replay: true,
        ..Sabotage::default()
    };
    let failing = failing_seeds(sabotage, SEEDS);
    println!("failing seeds {failing:?} of {SEEDS:?}");
    assert!(!failing.is_empty());
}

// Dynamo §4.5, §4.7: without read repair and anti-entropy, replicas that missed writes stay
// behind.
#[test]
fn sweep_catches_no_repair() {
    let sabotage = Sabotage {
        no_read_repair: true,
        no_anti_entropy: true,
        ..Sabotage::default()
    };
    let failing = failing_seeds(sabotage, SEEDS);
    println!("failing seeds {failing:?} of {SEEDS:?}");
    assert!(!failing.is_empty());
}

// Dynamo §4.4: a merge that keeps one sibling silently loses concurrent writes.
#[test]
fn sweep_catches_single_sibling_merge() {
    let sabotage = Sabotage {
        single_sibling_merge: true,
        ..Sabotage::default()
    };
    let failing = failing_seeds(sabotage, SEEDS);
    println!("failing seeds {failing:?} of {SEEDS:?}");
    assert!(!failing.is_empty());
}

// Tombstones purged at once let a replica that missed the delete resurrect the value.
#[test]
fn sweep_catches_tombstones_purged_at_once() {
    let sabotage = Sabotage {
        purge_tombstones_at_once: true,
        ..Sabotage::default()
    };
    let failing = failing_seeds(sabotage, SEEDS);
    println!("failing seeds {failing:?} of {SEEDS:?}");
    assert!(!failing.is_empty());
}

// Dynamo §4.5: a get that answers from one replica instead of merging its R answers misses
// writes the quorum promised to show; the quorum-read checker names it.
#[test]
fn quorum_read_checker_catches_a_get_that_does_not_merge() {
    let s = scenario(Sabotage {
        read_first_answer: true,
        ..Sabotage::default()
    });
    let kinds: Vec<(u64, Vec<&'static str>)> = SEEDS
        .map(|seed| {
            let result = World::new(s.clone(), seed).run();
            (seed, result.violations.iter().map(|v| v.kind()).collect())
        })
        .collect();
    println!("violations by seed of {SEEDS:?}: {kinds:?}");
    assert!(kinds.iter().any(|(_, k)| k.contains(&"stale-quorum-read")));
}
