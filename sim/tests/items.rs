//! The item workload's checkers: unbroken nodes pass item sweeps under a nemesis with clock
//! skew, item runs are reproducible from their seed, and each item checker fires on the
//! breakage it exists for (a checker that cannot fail checks nothing).

use ringstore_core::config::Sabotage;
use ringstore_sim::item_workload::ItemWorkload;
use ringstore_sim::scenario::{NemesisConfig, Scenario};
use ringstore_sim::world::World;
use std::collections::BTreeSet;
use std::time::Duration;

const SEEDS: std::ops::Range<u64> = 1..9;

/// A short item run under a nemesis of every kind (clock skew included).
fn scenario(sabotage: Sabotage) -> Scenario {
    let mut s = Scenario {
        duration: Duration::from_secs(30),
        nemesis: Some(NemesisConfig {
            interval: Duration::from_secs(3),
            fault_duration: Duration::from_secs(3),
            kinds: NemesisConfig::default().kinds,
        }),
        ..Scenario::default()
    };
    s.workload.items = Some(ItemWorkload::default());
    s.node.sabotage = sabotage;
    s.validate().expect("the test scenario is valid");
    s
}

/// The shipped collision scenario (`sim/scenarios/items-collide.toml`) under the default
/// nemesis.
fn collide(sabotage: Sabotage) -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/items-collide.toml");
    let mut s = Scenario::load(path).expect("the shipped scenario loads");
    s.nemesis = Some(NemesisConfig::default());
    s.node.sabotage = sabotage;
    s
}

/// Each seed's violation kinds (deduplicated) and whether it converged.
fn kinds_by_seed(s: &Scenario, seeds: std::ops::Range<u64>) -> Vec<(u64, BTreeSet<&'static str>)> {
    seeds
        .map(|seed| {
            let result = World::new(s.clone(), seed).run();
            let mut kinds: BTreeSet<&'static str> =
                result.violations.iter().map(|v| v.kind()).collect();
            if result.convergence_us.is_none() {
                kinds.insert("no-convergence");
            }
            (seed, kinds)
        })
        .collect()
}

/// The seeds whose run reported `kind`.
fn seeds_with(kinds: &[(u64, BTreeSet<&'static str>)], kind: &str) -> Vec<u64> {
    kinds
        .iter()
        .filter(|(_, k)| k.contains(kind))
        .map(|(seed, _)| *seed)
        .collect()
}

// Unbroken nodes pass item sweeps under the nemesis (skew included): the default item
// workload and the collision scenario.
#[test]
fn unbroken_nodes_pass_the_item_sweeps() {
    for (name, s) in [
        ("default items", scenario(Sabotage::default())),
        ("items-collide", collide(Sabotage::default())),
    ] {
        let kinds = kinds_by_seed(&s, SEEDS);
        println!("{name}: violations by seed of {SEEDS:?}: {kinds:?}");
        let failing: Vec<u64> = kinds
            .iter()
            .filter(|(_, k)| !k.is_empty())
            .map(|(seed, _)| *seed)
            .collect();
        assert_eq!(failing, Vec::<u64>::new(), "{name}");
    }
}

// Same seed, same item run: the trace hash, the counters and the item measurement agree.
#[test]
fn a_seed_determines_the_item_run() {
    let s = scenario(Sabotage::default());
    let a = World::new(s.clone(), 42).run();
    let b = World::new(s.clone(), 42).run();
    println!("seed 42 twice: {:016x} {:016x}", a.trace_hash, b.trace_hash);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.counters, b.counters);
    let counts =
        |r: &ringstore_sim::world::RunResult| r.item_oracle.as_ref().map(|o| o.counts().clone());
    assert_eq!(counts(&a), counts(&b));
    assert!(counts(&a).is_some_and(|c| c.attribute_writes_acked > 0));
}

// Checker (a): whole-item last-writer-wins loses concurrent updates of other attributes, and
// on the collision scenario some are still missing from the converged items, with nothing
// newer to excuse them.
#[test]
fn lost_attribute_checker_catches_whole_version_wins() {
    let s = collide(Sabotage {
        item_whole_version_wins: true,
        ..Sabotage::default()
    });
    let kinds = kinds_by_seed(&s, SEEDS);
    println!("violations by seed of {SEEDS:?}: {kinds:?}");
    assert!(!seeds_with(&kinds, "lost-attribute").is_empty());
}

// Checker (c): with whole-item last-writer-wins a consistent GetItem answers with the newest
// whole version and misses an acknowledged update of another attribute that a majority of home
// replicas held.
#[test]
fn consistent_read_checker_catches_whole_version_wins() {
    let s = scenario(Sabotage {
        item_whole_version_wins: true,
        ..Sabotage::default()
    });
    let kinds = kinds_by_seed(&s, SEEDS);
    println!("violations by seed of {SEEDS:?}: {kinds:?}");
    assert!(!seeds_with(&kinds, "stale-consistent-read").is_empty());
}

// A deletion that wins over newer attributes: consistent reads miss the newer updates (c),
// and the writes that follow store the item without the deletion's floor (a).
#[test]
fn item_checkers_catch_deletion_wins() {
    let s = scenario(Sabotage {
        item_deletion_wins: true,
        ..Sabotage::default()
    });
    let kinds = kinds_by_seed(&s, SEEDS);
    println!("violations by seed of {SEEDS:?}: {kinds:?}");
    assert!(!seeds_with(&kinds, "stale-consistent-read").is_empty());
    assert!(!seeds_with(&kinds, "lost-floor").is_empty());
}

// Checker (b): without read repair and anti-entropy, home replicas that missed item writes
// during the faults resolve to other items than their peers.
#[test]
fn item_divergence_checker_catches_no_repair() {
    let mut s = scenario(Sabotage {
        no_read_repair: true,
        no_anti_entropy: true,
        ..Sabotage::default()
    });
    // The replicas never converge: check soon after the heal.
    s.quiesce = Duration::from_secs(5);
    let kinds = kinds_by_seed(&s, SEEDS);
    println!("violations by seed of {SEEDS:?}: {kinds:?}");
    assert!(!seeds_with(&kinds, "item-diverged").is_empty());
}

// Checker (c) of queries: with repair off, home replicas stay behind after the faults; a query
// that answers from its first replica's page alone then returns what no majority of home
// replicas resolves to, and the end-of-run query check reports it within 40 seeds. The same
// runs without the query sabotage (replicas just as far apart) report no query mismatch: the
// check holds a query to what some majority holds, not to one replica.
#[test]
fn query_checker_catches_a_query_answered_by_one_replica() {
    let no_repair = |query_one_replica| {
        let mut s = scenario(Sabotage {
            no_read_repair: true,
            no_anti_entropy: true,
            query_one_replica,
            ..Sabotage::default()
        });
        s.quiesce = Duration::from_secs(5);
        s
    };
    let sabotaged = no_repair(true);
    let caught = (1..41).find(|&seed| {
        let result = World::new(sabotaged.clone(), seed).run();
        let kinds: BTreeSet<&str> = result.violations.iter().map(|v| v.kind()).collect();
        println!("seed {seed}: {kinds:?}");
        kinds.contains("query-mismatch")
    });
    println!("query-one-replica caught at seed {caught:?}");
    assert!(caught.is_some(), "no query mismatch in seeds 1..41");
    let kinds = kinds_by_seed(&no_repair(false), SEEDS);
    println!("without the query sabotage, violations by seed of {SEEDS:?}: {kinds:?}");
    assert_eq!(seeds_with(&kinds, "query-mismatch"), Vec::<u64>::new());
}
