#!/usr/bin/env bash
# Mutation testing of the node core: cargo-mutants changes one thing at a time in the core
# (a `>=` into `>`, a body into `Default::default()`, ...) and runs the core's tests and the
# simulator's (its checker sweeps, its scenarios) against each change. A mutant that no test
# catches is a behaviour nothing checks; docs/simulation.md lists the last run's survivors.
#
# Usage: scripts/mutants.sh [FILE ...]     (default: the node's write and repair paths)
# Budget: MUTANTS_TIMEOUT seconds per mutant's tests (default 300), MUTANTS_JOBS parallel
# builds (default 1: each job builds a copy of the workspace), MUTANTS_SHARD (k/n) to split a
# long run across machines. Results: target/mutants/mutants.out/{caught,missed,timeout,
# unviable}.txt and outcomes.json.
#
# Not part of .ci/run: a full run takes hours on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install --locked cargo-mutants
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(
    crates/core/src/node/output_gate.rs
    crates/core/src/node/replica.rs
    crates/core/src/node/read_repair.rs
    crates/core/src/node/sloppy_quorum.rs
    crates/core/src/node/hinted_handoff.rs
  )
fi

args=()
for f in "${files[@]}"; do
  args+=(--file "$f")
done
if [ -n "${MUTANTS_SHARD:-}" ]; then
  args+=(--shard "$MUTANTS_SHARD")
fi

# The simulator's tests are the oracle that matters: the core's own unit tests check pieces,
# the sweeps check the protocol. Both packages' tests run against every mutant of the core.
cargo mutants \
  --package ringstore-core \
  --test-package ringstore-core --test-package ringstore-sim \
  --timeout "${MUTANTS_TIMEOUT:-300}" \
  --jobs "${MUTANTS_JOBS:-1}" \
  --output target/mutants \
  "${args[@]}"
