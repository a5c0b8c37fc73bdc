//! `ringsim`: run the deterministic simulator from the command line.
//!
//! `ringsim run --seed S [...]` runs one seed and prints a summary (and, on a violation, the
//! command that reproduces it and the trace of the key involved). `ringsim sweep --seeds A..B`
//! runs many seeds on all cores with a progress bar, prints one line per failing seed, and exits
//! non-zero when any seed fails. See `docs/simulation.md`.
//!
//! `ringsim experiment quorum [...]` measures staleness and latency of every (N, R, W) under a
//! latency profile, with PBS's WARS model, the real protocol, or both. See
//! `docs/experiments.md`.
//!
//! `ringsim experiment anti-entropy [...]` measures the bytes anti-entropy sends to repair a
//! replica cut off during writes, against the bytes of the keys that differ. See
//! `docs/anti-entropy-bytes.md`.

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ringstore_core::config::Sabotage;
use ringstore_experiments::plot;
use ringstore_experiments::profiles::Profile;
use ringstore_experiments::protocol::ProtocolOptions;
use ringstore_experiments::quorum::{self, EngineChoice, QuorumSpec};
use ringstore_experiments::wars::Placement;
use ringstore_sim::item_oracle::ItemCounts;
use ringstore_sim::item_workload::ItemWorkload;
use ringstore_sim::report::{Invocation, item_line, summary};
use ringstore_sim::scenario::{NemesisConfig, Scenario};
use ringstore_sim::world::World;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "ringsim",
    version,
    about = "Deterministic simulator of a ringstore cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and print a summary.
    Run {
        /// The seed: the same seed and flags give the same run, bit for bit.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        shape: Shape,
    },
    /// Run many seeds on all cores; exit non-zero if any fails.
    Sweep {
        /// Seeds as `A..B` (B excluded).
        #[arg(long)]
        seeds: String,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[command(flatten)]
        shape: Shape,
    },
    /// Experiments on the quorum configuration.
    Experiment {
        #[command(subcommand)]
        which: ExperimentCommand,
    },
}

#[derive(Subcommand)]
enum ExperimentCommand {
    /// Staleness (PBS t-visibility, k-staleness) and latency of every (R, W) for each N.
    Quorum(QuorumArgs),
    /// Bytes anti-entropy sends to repair a partitioned replica, against the bytes of the
    /// keys that differ (one run per combination of the listed values).
    AntiEntropy(AntiEntropyArgs),
}

#[derive(Args)]
struct AntiEntropyArgs {
    /// Keys preloaded on every replica.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Distinct keys written while node 3 is cut off, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    differing: Vec<u64>,
    /// What the writes are: new keys, updates of existing keys, or both (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "new")]
    kind: Vec<AeKindArg>,
    /// The node's `anti_entropy_tree_depth`, comma-separated (default: the node default).
    #[arg(long, value_delimiter = ',')]
    depth: Vec<u8>,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// The node's `anti_entropy_max_keys` (default: the node default).
    #[arg(long)]
    max_keys: Option<usize>,
    /// The node's `anti_entropy_interval`, e.g. `10s` (default: the node default).
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// How long node 3 is cut off, e.g. `60s`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    partition: Duration,
    /// The longest a run goes on after the heal without converging, e.g. `1h`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    max_after_heal: Duration,
    /// The seed (same seed, same bytes).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only node 3 (the stale one) starts exchanges, so that it pulls what it misses.
    #[arg(long)]
    isolated_initiates: bool,
    /// Print one JSON object per run instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--kind` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum AeKindArg {
    /// New keys.
    New,
    /// Updates of existing keys.
    Update,
}

fn experiment_anti_entropy(args: &AntiEntropyArgs) -> ExitCode {
    use ringstore_experiments::anti_entropy::{self, AeBytesSpec, WriteKind};
    let base = AeBytesSpec::target();
    let depths: Vec<Option<u8>> = if args.depth.is_empty() {
        vec![None]
    } else {
        args.depth.iter().copied().map(Some).collect()
    };
    if !args.json {
        println!(
            "| kind | differing keys | depth cap | walk depth | differing bytes | AE bytes | ratio | repairing exchanges | walk steps + batches | repair time (virtual) | converged after heal (virtual) | wall |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    }
    let mut failed = false;
    for &kind in &args.kind {
        for &differing in &args.differing {
            for &depth in &depths {
                let mut spec = AeBytesSpec {
                    keys: args.keys,
                    differing,
                    kind: match kind {
                        AeKindArg::New => WriteKind::New,
                        AeKindArg::Update => WriteKind::Update,
                    },
                    value_bytes: args.value_bytes,
                    partition: args.partition,
                    max_after_heal: args.max_after_heal,
                    isolated_initiates: args.isolated_initiates,
                    seed: args.seed,
                    ..base.clone()
                };
                if let Some(depth) = depth {
                    spec.node.anti_entropy_tree_depth = depth;
                }
                if let Some(max_keys) = args.max_keys {
                    spec.node.anti_entropy_max_keys = max_keys;
                }
                if let Some(interval) = args.interval {
                    spec.node.anti_entropy_interval = interval;
                }
                let outcome = match anti_entropy::run(&spec) {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        eprintln!("ringsim: {e}");
                        return ExitCode::from(2);
                    }
                };
                failed |= outcome.converged_after.is_none();
                if args.json {
                    let line = serde_json::json!({
                        "kind": spec.kind,
                        "keys": spec.keys,
                        "depth": spec.node.anti_entropy_tree_depth,
                        "max_keys": spec.node.anti_entropy_max_keys,
                        "value_bytes": spec.value_bytes,
                        "seed": spec.seed,
                        "outcome": outcome,
                        "ratio": outcome.ratio(),
                    });
                    println!("{line}");
                } else {
                    println!(
                        "| {:?} | {} | {} | {} | {} | {} | {:.2} | {} | {} + {} | {:.3} s | {} | {:.1} s |",
                        spec.kind,
                        outcome.differing_keys,
                        spec.node.anti_entropy_tree_depth,
                        outcome
                            .walk_depths
                            .iter()
                            .map(u8::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                        outcome.differing_bytes,
                        outcome.ae_bytes,
                        outcome.ratio(),
                        outcome.repair_exchanges,
                        outcome.walk_steps_after_heal,
                        outcome.batches_after_heal,
                        outcome.repair_time.as_secs_f64(),
                        outcome
                            .converged_after
                            .map_or("not converged".to_string(), |d| {
                                format!("{:.1} s", d.as_secs_f64())
                            }),
                        outcome.wall.as_secs_f64(),
                    );
                    if outcome.node_counted_bytes != outcome.ae_bytes {
                        eprintln!(
                            "ringsim: the nodes counted {} AE bytes, the network {}",
                            outcome.node_counted_bytes, outcome.ae_bytes
                        );
                    }
                    let kinds: Vec<String> = outcome
                        .by_kind
                        .iter()
                        .map(|(k, c)| format!("{k} {}x {} B", c.messages, c.bytes))
                        .collect();
                    eprintln!("  {}", kinds.join(", "));
                }
            }
        }
    }
    if failed {
        eprintln!("ringsim: some runs did not converge");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Output format on standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// An aligned table.
    Table,
    /// One CSV row per configuration and engine.
    Csv,
    /// The whole report, curves included.
    Json,
}

#[derive(Args)]
struct QuorumArgs {
    /// Engines: PBS's WARS model, the real protocol in the simulator, or both (compared).
    #[arg(long, value_enum, default_value = "wars")]
    engine: EngineChoice,
    /// A built-in latency profile (lnkd-ssd, lnkd-disk, ymmr, wan) or a profile file (TOML).
    #[arg(long, default_value = "lnkd-disk")]
    profile: String,
    /// Replication factors, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "3")]
    n: Vec<usize>,
    /// (R, W) pairs as R:W, comma-separated (default: every R and W up to N).
    #[arg(long, value_delimiter = ',')]
    rw: Vec<String>,
    /// WARS Monte Carlo trials per N.
    #[arg(long, default_value_t = 1_000_000)]
    trials: u64,
    /// Protocol engine: reads measured per configuration.
    #[arg(long, default_value_t = 20_000)]
    protocol_reads: u64,
    /// The seed (same seed, same numbers).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output format on standard output.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also write summary.csv, curves.csv, report.json and plots (SVG, PNG) into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Protocol engine: a scenario file (cluster, faults, nemesis) to run the probe under.
    #[arg(long)]
    scenario: Option<String>,
    /// WARS coordinator: external (PBS's model) or one of the replicas (ringstore's design).
    #[arg(long, value_enum, default_value = "external")]
    placement: Placement,
    /// Request timeout in ms (operations slower than this count as unavailable).
    #[arg(long, default_value_t = 10_000.0)]
    timeout_ms: f64,
    /// Points on the t-visibility grid (the protocol engine reads at each).
    #[arg(long, default_value_t = 25)]
    t_points: usize,
    /// Last point of the t grid in ms (default: 1.25 x the largest WARS t at 99.9%).
    #[arg(long)]
    t_max_ms: Option<f64>,
    /// Largest k for k-staleness.
    #[arg(long, default_value_t = 5)]
    k_max: u32,
    /// Worker threads for WARS (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Protocol engine: cluster size (default: the scenario's, or N).
    #[arg(long)]
    nodes: Option<u64>,
    /// Protocol engine: switch read repair off.
    #[arg(long)]
    no_read_repair: bool,
    /// Protocol engine: switch anti-entropy off.
    #[arg(long)]
    no_anti_entropy: bool,
    /// Protocol engine: probing clients (one key each).
    #[arg(long, default_value_t = ringstore_experiments::protocol::DEFAULT_WRITERS)]
    writers: usize,
}

impl QuorumArgs {
    fn spec(&self) -> Result<QuorumSpec, String> {
        let profile = Profile::load(&self.profile).map_err(|e| e.to_string())?;
        let pairs = if self.rw.is_empty() {
            None
        } else {
            let mut pairs = Vec::new();
            for text in &self.rw {
                let parsed = text
                    .split_once(':')
                    .and_then(|(r, w)| Some((r.trim().parse().ok()?, w.trim().parse().ok()?)));
                match parsed {
                    Some(pair) => pairs.push(pair),
                    None => return Err(format!("--rw {text:?}: expected R:W, e.g. 1:2")),
                }
            }
            Some(pairs)
        };
        let scenario = match &self.scenario {
            Some(path) => Some(Scenario::load(path).map_err(|e| e.to_string())?),
            None => None,
        };
        if self.scenario.is_some() && self.engine == EngineChoice::Wars {
            return Err("--scenario needs --engine protocol or both".into());
        }
        Ok(QuorumSpec {
            profile,
            ns: self.n.clone(),
            pairs,
            engine: self.engine,
            placement: self.placement,
            trials: self.trials,
            protocol_reads: self.protocol_reads,
            seed: self.seed,
            timeout_ms: self.timeout_ms,
            t_points: self.t_points,
            t_max_ms: self.t_max_ms,
            k_max: self.k_max,
            threads: self
                .jobs
                .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
                .unwrap_or(1)
                .max(1),
            protocol: ProtocolOptions {
                scenario,
                nodes: self.nodes,
                no_read_repair: self.no_read_repair,
                no_anti_entropy: self.no_anti_entropy,
                writers: self.writers,
                think_ms: 0.0,
            },
        })
    }
}

/// The sweep's progress on an indicatif bar.
struct Bar(ProgressBar);

impl quorum::Progress for Bar {
    fn set_total(&self, units: u64) {
        self.0.set_length(units);
    }
    fn advance(&self, units: u64) {
        self.0.inc(units);
    }
    fn stage(&self, what: &str) {
        self.0.set_message(what.to_string());
    }
}

/// Writes summary.csv, curves.csv and report.json into `dir` and returns how many files that
/// is; an error names the file.
fn write_reports(report: &quorum::QuorumReport, dir: &Path, json: &str) -> Result<usize, String> {
    let create =
        |name: &str| std::fs::File::create(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    quorum::write_csv(report, create("summary.csv")?).map_err(|e| format!("summary.csv: {e}"))?;
    quorum::write_curves_csv(report, create("curves.csv")?)
        .map_err(|e| format!("curves.csv: {e}"))?;
    std::fs::write(dir.join("report.json"), json).map_err(|e| format!("report.json: {e}"))?;
    Ok(3)
}

fn experiment_quorum(args: &QuorumArgs) -> ExitCode {
    let spec = match args.spec() {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("ringsim: {e}");
            return ExitCode::from(2);
        }
    };
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} [{elapsed}<{eta}]")
    {
        bar.set_style(style);
    }
    let bar = Bar(bar);
    let report = match quorum::run(&spec, &bar) {
        Ok(report) => report,
        Err(e) => {
            bar.0.abandon();
            eprintln!("ringsim: {e}");
            return ExitCode::from(2);
        }
    };
    bar.0.finish_and_clear();
    let json = || {
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    };
    match args.format {
        Format::Table => print!("{}", quorum::to_table(&report)),
        Format::Csv => {
            if let Err(e) = quorum::write_csv(&report, std::io::stdout().lock()) {
                eprintln!("ringsim: {e}");
                return ExitCode::FAILURE;
            }
        }
        Format::Json => println!("{}", json()),
    }
    if let Some(dir) = &args.out {
        let written = std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| write_reports(&report, dir, &json()));
        let files = match written {
            Ok(files) => files,
            Err(e) => {
                eprintln!("ringsim: writing {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        };
        match plot::write_all(&report, dir) {
            Ok(w) => {
                for failure in &w.png_failures {
                    eprintln!("ringsim: no PNG for {failure}");
                }
                eprintln!(
                    "ringsim: wrote {} files and {} plot files to {}",
                    files,
                    w.files.len(),
                    dir.display()
                );
            }
            Err(e) => {
                eprintln!("ringsim: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let violations: usize = report
        .configs
        .iter()
        .filter_map(|c| c.mechanisms.map(|m| m.violations))
        .sum();
    if violations > 0 {
        eprintln!("ringsim: the protocol engine's oracle found {violations} violations");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Flags that shape the scenario (they override the scenario file).
#[derive(Args, Clone, Default)]
struct Shape {
    /// A scenario file (TOML).
    #[arg(long)]
    scenario: Option<String>,
    /// Number of nodes.
    #[arg(long)]
    nodes: Option<u64>,
    /// Replicas per key.
    #[arg(long)]
    n: Option<u8>,
    /// Read quorum.
    #[arg(long)]
    r: Option<u8>,
    /// Write quorum.
    #[arg(long)]
    w: Option<u8>,
    /// Workload duration in virtual time, e.g. `60s`, `1h`.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Client operations per second (all clients together).
    #[arg(long)]
    rate: Option<f64>,
    /// Number of clients.
    #[arg(long)]
    clients: Option<usize>,
    /// Number of distinct keys.
    #[arg(long)]
    keys: Option<u64>,
    /// Message loss probability.
    #[arg(long)]
    loss: Option<f64>,
    /// Add the random nemesis (partitions, crashes, slow nodes, flapping, clock skew).
    #[arg(long)]
    nemesis: bool,
    /// Run the item workload (GetItem, PutItem, UpdateItem, DeleteItem on two fixed tables)
    /// instead of the key-value mix, with the item checkers.
    #[arg(long)]
    items: bool,
    /// Break a mechanism on purpose (test the checkers): no-hint-replay, no-repair
    /// (no read repair and no anti-entropy), single-sibling, purge-tombstones, read-first-answer,
    /// item-whole-version-wins, item-deletion-wins, query-one-replica.
    #[arg(long)]
    sabotage: Vec<String>,
}

impl Shape {
    /// The flags as typed, for the reproduction command.
    fn flags(&self) -> Vec<String> {
        let mut f = Vec::new();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                f.push(format!("--{name} {v}"));
            }
        };
        push("scenario", self.scenario.clone());
        push("nodes", self.nodes.map(|v| v.to_string()));
        push("n", self.n.map(|v| v.to_string()));
        push("r", self.r.map(|v| v.to_string()));
        push("w", self.w.map(|v| v.to_string()));
        push(
            "duration",
            self.duration
                .map(|d| humantime::format_duration(d).to_string()),
        );
        push("rate", self.rate.map(|v| v.to_string()));
        push("clients", self.clients.map(|v| v.to_string()));
        push("keys", self.keys.map(|v| v.to_string()));
        push("loss", self.loss.map(|v| v.to_string()));
        if self.nemesis {
            f.push("--nemesis".into());
        }
        if self.items {
            f.push("--items".into());
        }
        for s in &self.sabotage {
            f.push(format!("--sabotage {s}"));
        }
        f
    }

    fn scenario(&self) -> Result<Scenario, String> {
        let mut s = match &self.scenario {
            Some(path) => Scenario::load(path).map_err(|e| e.to_string())?,
            None => Scenario::default(),
        };
        if let Some(v) = self.nodes {
            s.cluster.nodes = v;
        }
        if let Some(v) = self.n {
            s.node.n = v;
            s.node.r = s.node.r.min(v);
            s.node.w = s.node.w.min(v);
        }
        if let Some(v) = self.r {
            s.node.r = v;
        }
        if let Some(v) = self.w {
            s.node.w = v;
        }
        if let Some(v) = self.duration {
            s.duration = v;
        }
        if let Some(v) = self.rate {
            s.workload.rate = v;
        }
        if let Some(v) = self.clients {
            s.workload.clients = v;
        }
        if let Some(v) = self.keys {
            s.workload.keys = v;
        }
        if let Some(v) = self.loss {
            s.network.loss = v;
        }
        if self.nemesis && s.nemesis.is_none() {
            s.nemesis = Some(NemesisConfig::default());
        }
        if self.items && s.workload.items.is_none() {
            s.workload.items = Some(ItemWorkload::default());
        }
        s.node.sabotage = parse_sabotage(&self.sabotage)?;
        s.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }
}

fn parse_sabotage(names: &[String]) -> Result<Sabotage, String> {
    let mut s = Sabotage::default();
    for name in names {
        match name.as_str() {
            "no-hint-replay" => s.no_hint_replay = true,
            "no-repair" => {
                s.no_read_repair = true;
                s.no_anti_entropy = true;
            }
            "single-sibling" => s.single_sibling_merge = true,
            "purge-tombstones" => s.purge_tombstones_at_once = true,
            "read-first-answer" => s.read_first_answer = true,
            "item-whole-version-wins" => s.item_whole_version_wins = true,
            "item-deletion-wins" => s.item_deletion_wins = true,
            "query-one-replica" => s.query_one_replica = true,
            other => {
                return Err(format!(
                    "unknown sabotage {other:?}: expected no-hint-replay, no-repair, single-sibling, purge-tombstones, read-first-answer, item-whole-version-wins, item-deletion-wins or query-one-replica"
                ));
            }
        }
    }
    Ok(s)
}

fn parse_seeds(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("--seeds {text:?}: expected A..B"))?;
    let a: u64 = a
        .parse()
        .map_err(|_| format!("--seeds: {a:?} is not a number"))?;
    let b: u64 = b
        .parse()
        .map_err(|_| format!("--seeds: {b:?} is not a number"))?;
    if b <= a {
        return Err(format!("--seeds {text}: the range is empty"));
    }
    Ok((a, b))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Experiment {
            which: ExperimentCommand::Quorum(args),
        } => experiment_quorum(&args),
        Command::Experiment {
            which: ExperimentCommand::AntiEntropy(args),
        } => experiment_anti_entropy(&args),
        Command::Run { seed, shape } => {
            let scenario = match shape.scenario() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("ringsim: {e}");
                    return ExitCode::from(2);
                }
            };
            let invocation = Invocation {
                seed,
                flags: shape.flags(),
            };
            let started = Instant::now();
            let result = World::new(scenario, seed).run();
            print!("{}", summary(&result, &invocation, started.elapsed()));
            if result.violations.is_empty() && result.convergence_us.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Sweep { seeds, jobs, shape } => {
            let (scenario, (first, end)) =
                match shape.scenario().and_then(|s| Ok((s, parse_seeds(&seeds)?))) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("ringsim: {e}");
                        return ExitCode::from(2);
                    }
                };
            let jobs = jobs
                .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
                .unwrap_or(1)
                .max(1);
            let bar = ProgressBar::new(end - first);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} [{elapsed}<{eta}]")
            {
                bar.set_style(style);
            }
            let next = AtomicU64::new(first);
            let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
            // Seeds that reported each kind of violation, and the item measurement summed.
            let kinds: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
            let item_totals: Mutex<Option<ItemCounts>> = Mutex::new(None);
            std::thread::scope(|scope| {
                for _ in 0..jobs {
                    scope.spawn(|| {
                        loop {
                            let seed = next.fetch_add(1, Ordering::Relaxed);
                            if seed >= end {
                                break;
                            }
                            let outcome = run_seed(&scenario, seed);
                            if let Ok(result) = &outcome {
                                let seen: BTreeSet<&'static str> =
                                    result.violations.iter().map(|v| v.kind()).collect();
                                if let Ok(mut kinds) = kinds.lock() {
                                    for kind in seen {
                                        *kinds.entry(kind).or_default() += 1;
                                    }
                                }
                                if let (Some(items), Ok(mut totals)) =
                                    (&result.item_oracle, item_totals.lock())
                                {
                                    totals.get_or_insert_default().add(items.counts());
                                }
                            }
                            let what = match outcome {
                                Ok(result) => match result.violations.first() {
                                    Some(v) => Some(format!(
                                        "{} violations, first: {v}",
                                        result.violations.len()
                                    )),
                                    None if result.convergence_us.is_none() => {
                                        Some("did not converge".to_string())
                                    }
                                    None => None,
                                },
                                Err(panic) => Some(format!("the node core panicked: {panic}")),
                            };
                            if let Some(what) = what {
                                let invocation = Invocation {
                                    seed,
                                    flags: shape.flags(),
                                };
                                let line = format!(
                                    "FAIL seed {seed}: {what}\n  reproduce: {}",
                                    invocation.command()
                                );
                                bar.suspend(|| println!("{line}"));
                                if let Ok(mut f) = failures.lock() {
                                    f.push(line);
                                }
                            }
                            bar.inc(1);
                            let failed_count = failures.lock().map(|f| f.len()).unwrap_or(0);
                            bar.set_message(format!("{failed_count} failed"));
                        }
                    });
                }
            });
            bar.finish();
            let failed = failures.lock().map(|f| f.len()).unwrap_or(0);
            println!("sweep: {} seeds, {} failed", end - first, failed);
            if let Ok(kinds) = kinds.lock()
                && !kinds.is_empty()
            {
                println!("seeds by violation kind: {kinds:?}");
            }
            if let Ok(totals) = item_totals.lock()
                && let Some(totals) = totals.as_ref()
            {
                println!("all seeds: {}", item_line(totals));
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs one seed of a sweep. A panic (a core invariant the run broke: `invariant!`) is that
/// seed's failure, reported with its replay command, not the end of the sweep.
fn run_seed(scenario: &Scenario, seed: u64) -> Result<ringstore_sim::world::RunResult, String> {
    let scenario = scenario.clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        World::new(scenario, seed).run()
    }))
    .map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string())
    })
}
