//! Every scenario file shipped in `sim/scenarios/` runs clean on a fixed seed: no checker
//! violation, and the replicas converge. A scenario that stops parsing, or a change that breaks
//! the behaviour a scenario documents, fails here rather than in a user's first run.

use ringstore_sim::scenario::Scenario;
use ringstore_sim::world::World;
use std::path::PathBuf;

/// The seed each scenario runs on (the one their comments suggest, `ringsim run --seed 1`).
const SEED: u64 = 1;

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_runs_clean_on_seed_1() {
    let files = scenario_files();
    assert!(
        files.len() >= 6,
        "expected the six shipped scenarios, found {files:?}"
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path.display().to_string();
        let scenario = match Scenario::load(&name) {
            Ok(scenario) => scenario,
            Err(e) => {
                failures.push(format!("{name}: does not load: {e}"));
                continue;
            }
        };
        let result = World::new(scenario, SEED).run();
        println!(
            "{name}: seed {SEED}, {} violations, converged after {:?} µs, trace {:016x}",
            result.violations.len(),
            result.convergence_us,
            result.trace_hash
        );
        if let Some(v) = result.violations.first() {
            failures.push(format!(
                "{name}: {} violations, first: {v}\n  reproduce: ringsim run --seed {SEED} --scenario {name}",
                result.violations.len()
            ));
        } else if result.convergence_us.is_none() {
            failures.push(format!("{name}: replicas did not converge"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
