//! Runs a benchmark: the load phase, then the run phase in a closed or an open loop.
//!
//! - Load: `load_clients` tasks claim record indices `0..records` from a shared counter and
//!   insert each with a blind put (the keys are new, so there is nothing to supersede).
//! - Closed loop: `clients` tasks, each with its own planner; a client issues its next
//!   operation when the previous one ends. Latency is end − start of each operation.
//! - Open loop: one scheduler plans operation `i` for the intended start `t0 + i / rate` (fixed
//!   intervals, like YCSB's `-target` and wrk2) and hands it to `max_inflight` worker tasks
//!   through a one-slot queue. When every worker is busy the scheduler waits, and the
//!   operations it hands over late are still timed from their intended start: the latency
//!   includes the time the operation waited for the cluster to catch up. Without that
//!   correction a stalled cluster would slow the load generator down and the percentiles would
//!   hide the stall (coordinated omission, Gil Tene).
//!
//! # Guarantees
//! - `StopAfter::Operations(n)` runs exactly `n` operations (closed loop: clients claim tickets
//!   from one counter; open loop: the scheduler plans `n`).
//! - `StopAfter::Duration(d)` starts no operation after `d` (closed loop) or plans none with an
//!   intended start at or after `d` (open loop); operations in flight at the end finish and are
//!   counted. Open-loop operations planned before the end that never got a worker are counted
//!   as `dropped_backlog` errors.
//! - Every worker's measurements are merged; a worker that panicked fails the run with
//!   [`BenchError::Worker`] instead of under-reporting.
//!
//! # Limits
//! - The open-loop scheduler is one task: above roughly a few hundred thousand operations per
//!   second it becomes the bottleneck (its lateness then shows as latency, which is honest
//!   but not the cluster's).
//! - Arrivals are evenly spaced, not Poisson: bursts come only from the cluster, not the load.
//! - tokio's timers have a 1 ms resolution, so above 1000 operations per second the scheduler
//!   releases operations in batches of up to 1 ms: each is sent up to [`SCHEDULER_LEAD`] before
//!   its intended start (and timed from its send), so the rate is right on average but not
//!   evenly spaced below a millisecond.

use super::execute::Executor;
use super::host::HostWatch;
use super::keys::InsertCounter;
use super::options::{BenchOptions, LoopShape, OptionsError, StopAfter};
use super::progress::ProgressLine;
use super::recorder::{HistogramError, LiveCounters, Recorder};
use super::report::{BenchReport, ConfigReport, PhaseReport, REPORT_SCHEMA};
use super::timeline::Timeline;
use super::workload::{OpKind, PlanSpec, PlannedOp, Planner};
use ringstore_client::KvTarget;
use ringstore_core::NodeId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Worker numbers of load clients start here, so their RNG streams differ from the run's.
const LOAD_WORKER_BASE: u64 = 1 << 32;

/// Worker number of the open-loop scheduler's planner.
const OPEN_LOOP_WORKER: u64 = (1 << 33) - 1;

/// How early the open-loop scheduler wakes before an operation's intended start: tokio's
/// timers round a deadline up to the next millisecond, so sleeping until the intended start
/// would send every operation up to 1 ms late and add that to its measured latency. Waking
/// early instead, and timing an operation sent early from its send, keeps the generator's own
/// timer out of the percentiles while the rate stays right.
pub const SCHEDULER_LEAD: Duration = Duration::from_millis(1);

/// Why a benchmark could not run (failed requests are not this: they are counted in the
/// report).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options were refused.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The target knows no node to send requests to.
    #[error("the cluster has no nodes to send requests to")]
    NoNodes,
    /// A latency histogram could not be built or merged.
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    /// A worker task panicked or was cancelled.
    #[error("a bench worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// Runs the load phase (if asked) and the run phase (if asked) against `target`, drawing a
/// progress line on stderr when `show_progress`.
pub async fn run_bench<T: KvTarget>(
    target: T,
    options: &BenchOptions,
    show_progress: bool,
) -> Result<BenchReport, BenchError> {
    options.validate()?;
    let nodes = target.nodes();
    if nodes.is_empty() {
        return Err(BenchError::NoNodes);
    }
    let load = if options.load {
        Some(load_phase(&target, options, &nodes, show_progress).await?)
    } else {
        None
    };
    let run = if options.run {
        Some(run_phase(&target, options, &nodes, show_progress).await?)
    } else {
        None
    };
    Ok(BenchReport {
        schema: REPORT_SCHEMA.to_string(),
        config: ConfigReport::new(options, &nodes),
        load,
        run,
    })
}

/// What the phases share.
struct Phase<T> {
    executor: Arc<Executor<T>>,
    spec: PlanSpec,
    live: Arc<LiveCounters>,
}

impl<T: KvTarget> Phase<T> {
    fn new(target: &T, options: &BenchOptions, nodes: &[NodeId], existing_records: u64) -> Self {
        let inserts = Arc::new(InsertCounter::new(existing_records));
        Self {
            executor: Arc::new(Executor {
                target: target.clone(),
                knobs: options.knobs,
                update_mode: options.update_mode,
                inserts: Arc::clone(&inserts),
            }),
            spec: PlanSpec {
                workload: options.workload,
                distribution: options.distribution,
                records: options.records,
                value_bytes: options.value_bytes,
                nodes: nodes.to_vec(),
                node_choice: options.node_choice,
                inserts,
            },
            live: Arc::new(LiveCounters::default()),
        }
    }

    fn recorder(&self) -> Result<Recorder, HistogramError> {
        Recorder::new(Arc::clone(&self.live))
    }

    /// One empty recorder per worker, made before the phase's clock starts: making hundreds
    /// of histograms takes long enough to show as a stall at the start of an open loop.
    fn recorders(&self, workers: usize) -> Result<Vec<Recorder>, HistogramError> {
        (0..workers).map(|_| self.recorder()).collect()
    }

    /// Merges the workers' recorders.
    fn merge(&self, recorders: &[Recorder]) -> Result<Recorder, BenchError> {
        let mut merged = self.recorder()?;
        for recorder in recorders {
            merged.merge(recorder)?;
        }
        Ok(merged)
    }
}

/// Waits for every worker to end; what they recorded is merged by [`Phase::merge`] after the
/// phase's clock stops.
async fn join(handles: Vec<JoinHandle<Recorder>>) -> Result<Vec<Recorder>, BenchError> {
    let mut recorders = Vec::with_capacity(handles.len());
    for handle in handles {
        recorders.push(handle.await?);
    }
    Ok(recorders)
}

/// Inserts records `0..records` with `load_clients` concurrent clients.
async fn load_phase<T: KvTarget>(
    target: &T,
    options: &BenchOptions,
    nodes: &[NodeId],
    show_progress: bool,
) -> Result<PhaseReport, BenchError> {
    let phase = Phase::new(target, options, nodes, 0);
    let next_record = Arc::new(AtomicU64::new(0));
    let recorders = phase.recorders(options.load_clients)?;
    let progress = ProgressLine::start("load", Arc::clone(&phase.live), None, show_progress);
    let host = HostWatch::start();
    let start = Instant::now();
    let timeline = Timeline::start(Arc::clone(&phase.live), start);
    let mut handles = Vec::with_capacity(options.load_clients);
    for (client, mut recorder) in (0u64..).zip(recorders) {
        let mut planner = Planner::new(&phase.spec, options.seed, LOAD_WORKER_BASE + client);
        let executor = Arc::clone(&phase.executor);
        let next_record = Arc::clone(&next_record);
        let records = options.records;
        handles.push(tokio::spawn(async move {
            loop {
                let record = next_record.fetch_add(1, Ordering::Relaxed);
                if record >= records {
                    break;
                }
                let op = planner.load_op(record);
                let started = Instant::now();
                let outcome = executor.execute(&op, &mut recorder).await;
                recorder.record_op(OpKind::Load, started.elapsed(), outcome);
            }
            recorder
        }));
    }
    let recorders = join(handles).await?;
    let elapsed = start.elapsed();
    let timeline = timeline.finish().await;
    progress.finish();
    let host = host.finish();
    let merged = phase.merge(&recorders)?;
    let mut report = PhaseReport::new(&[OpKind::Load], &merged, elapsed, 0);
    report.host = Some(host);
    report.timeline = timeline;
    Ok(report)
}

/// When a closed-loop client may start another operation.
#[derive(Clone)]
enum StopRule {
    /// Until this instant.
    Deadline(Instant),
    /// While tickets remain (one per operation).
    Tickets { taken: Arc<AtomicU64>, limit: u64 },
}

impl StopRule {
    fn new(stop: StopAfter, start: Instant) -> Self {
        match stop {
            StopAfter::Duration(d) => StopRule::Deadline(start + d),
            StopAfter::Operations(limit) => StopRule::Tickets {
                taken: Arc::new(AtomicU64::new(0)),
                limit,
            },
        }
    }

    /// Whether one more operation may start (claims a ticket).
    fn may_start(&self) -> bool {
        match self {
            StopRule::Deadline(end) => Instant::now() < *end,
            StopRule::Tickets { taken, limit } => taken.fetch_add(1, Ordering::Relaxed) < *limit,
        }
    }
}

/// The workload's mix, closed or open loop.
async fn run_phase<T: KvTarget>(
    target: &T,
    options: &BenchOptions,
    nodes: &[NodeId],
    show_progress: bool,
) -> Result<PhaseReport, BenchError> {
    let phase = Phase::new(target, options, nodes, options.records);
    let planned = match options.stop {
        StopAfter::Duration(d) => Some(d),
        StopAfter::Operations(_) => None,
    };
    let workers = match options.shape {
        LoopShape::Closed { clients } => clients,
        LoopShape::Open { max_inflight, .. } => max_inflight,
    };
    let recorders = phase.recorders(workers)?;
    let progress = ProgressLine::start("run", Arc::clone(&phase.live), planned, show_progress);
    let host = HostWatch::start();
    let start = Instant::now();
    let timeline = Timeline::start(Arc::clone(&phase.live), start);
    let (recorders, dropped) = match options.shape {
        LoopShape::Closed { .. } => {
            let stop = StopRule::new(options.stop, start);
            let mut handles = Vec::with_capacity(workers);
            for (client, recorder) in (0u64..).zip(recorders) {
                let planner = Planner::new(&phase.spec, options.seed, client);
                handles.push(tokio::spawn(closed_client(
                    Arc::clone(&phase.executor),
                    planner,
                    stop.clone(),
                    recorder,
                )));
            }
            (join(handles).await?, 0)
        }
        LoopShape::Open { rate_per_s, .. } => {
            let planner = Planner::new(&phase.spec, options.seed, OPEN_LOOP_WORKER);
            open_loop(&phase, planner, recorders, rate_per_s, options.stop, start).await?
        }
    };
    let elapsed = start.elapsed();
    let timeline = timeline.finish().await;
    progress.finish();
    let host = host.finish();
    let merged = phase.merge(&recorders)?;
    let mut report = PhaseReport::new(&OpKind::RUN, &merged, elapsed, dropped);
    report.host = Some(host);
    report.timeline = timeline;
    Ok(report)
}

/// One closed-loop client: the next operation starts when the previous one ends.
async fn closed_client<T: KvTarget>(
    executor: Arc<Executor<T>>,
    mut planner: Planner,
    stop: StopRule,
    mut recorder: Recorder,
) -> Recorder {
    while stop.may_start() {
        let op = planner.next_op();
        let started = Instant::now();
        let outcome = executor.execute(&op, &mut recorder).await;
        recorder.record_op(op.kind, started.elapsed(), outcome);
    }
    recorder
}

/// The open loop: a scheduler on fixed intervals feeding one worker per recorder (the
/// `max_inflight` of the options). Returns the workers' recorders and the number of operations
/// dropped for want of a worker.
async fn open_loop<T: KvTarget>(
    phase: &Phase<T>,
    mut planner: Planner,
    recorders: Vec<Recorder>,
    rate_per_s: f64,
    stop: StopAfter,
    start: Instant,
) -> Result<(Vec<Recorder>, u64), BenchError> {
    let (queue, receiver) = mpsc::channel::<(Instant, PlannedOp)>(1);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut handles = Vec::with_capacity(recorders.len());
    for mut recorder in recorders {
        let receiver = Arc::clone(&receiver);
        let executor = Arc::clone(&phase.executor);
        handles.push(tokio::spawn(async move {
            loop {
                let next = receiver.lock().await.recv().await;
                let Some((intended, op)) = next else { break };
                let sent = Instant::now();
                recorder.record_start_delay(sent.saturating_duration_since(intended));
                let outcome = executor.execute(&op, &mut recorder).await;
                // From the intended start when it was sent late (it waited for a slot), not
                // from when a worker picked it up; from the send when the scheduler's early
                // wake-up sent it before its time: from whichever came first.
                recorder.record_op(op.kind, intended.min(sent).elapsed(), outcome);
            }
            recorder
        }));
    }
    let (planned_total, end) = match stop {
        StopAfter::Operations(n) => (n, None),
        StopAfter::Duration(d) => (intended_count(d, rate_per_s), Some(start + d)),
    };
    let mut handed_over = 0u64;
    while handed_over < planned_total {
        let intended = start + Duration::from_secs_f64(handed_over as f64 / rate_per_s);
        tokio::time::sleep_until(intended.checked_sub(SCHEDULER_LEAD).unwrap_or(intended)).await;
        let op = planner.next_op();
        let send = queue.send((intended, op));
        let delivered = match end {
            Some(end) => matches!(tokio::time::timeout_at(end, send).await, Ok(Ok(()))),
            None => send.await.is_ok(),
        };
        if !delivered {
            break;
        }
        handed_over += 1;
    }
    drop(queue);
    let recorders = join(handles).await?;
    Ok((recorders, planned_total - handed_over))
}

/// How many intended starts `i / rate` fall before `duration`.
fn intended_count(duration: Duration, rate_per_s: f64) -> u64 {
    let exact = duration.as_secs_f64() * rate_per_s;
    // ceil: i = 0 counts, and i / rate < d for every i < d * rate.
    exact.ceil().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::key_name;
    use crate::options::{KeyDistribution, UpdateMode};
    use crate::report::{DROPPED_BACKLOG, LatencySummary};
    use crate::test_double::MemoryTarget;
    use crate::workload::Workload;
    use ringstore_client::CallError;
    use ringstore_core::request::{ClientOp, RequestError};
    use std::collections::HashSet;

    const SEED: u64 = 0xbe7c_0003;

    fn options(workload: Workload, operations: u64) -> BenchOptions {
        println!("seed {SEED}");
        BenchOptions {
            records: 1000,
            value_bytes: 32,
            load_clients: 8,
            shape: LoopShape::Closed { clients: 8 },
            stop: StopAfter::Operations(operations),
            seed: SEED,
            ..BenchOptions::new(workload)
        }
    }

    fn latency(report: &PhaseReport, op: &str) -> LatencySummary {
        report.ops[op].latency_us.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn operation_count_runs_exactly_n_with_the_workload_mix() {
        // Goal: --operations N runs exactly N operations, split by the workload's YCSB mix
        // (20 000 operations: 2% tolerance is over 5 standard errors), and a read-modify-write
        // is one operation but two requests.
        for workload in [Workload::A, Workload::B, Workload::C, Workload::F] {
            let target = MemoryTarget::new(3);
            let n = 20_000;
            let report = run_bench(target.clone(), &options(workload, n), false)
                .await
                .unwrap();
            let run = report.run.unwrap();
            assert_eq!(run.operations, n);
            assert_eq!(run.ok, n);
            let mix = workload.mix();
            for (label, expected) in [
                ("read", mix.read),
                ("update", mix.update),
                ("insert", mix.insert),
                ("rmw", mix.rmw),
            ] {
                let got = run.ops[label].count as f64 / n as f64;
                assert!((got - expected).abs() < 0.02, "{workload:?} {label}: {got}");
            }
            // An update is one overwrite (the default mode), a rmw a get then a put, a read one
            // get.
            let writes = run.ops["update"].count + run.ops["rmw"].count;
            assert_eq!(run.requests["put"].count, writes);
            let gets = run.ops["read"].count + run.ops["rmw"].count;
            assert_eq!(run.requests["get"].count, gets);
            assert_eq!(target.seen().len() as u64, gets + writes);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_stay_within_the_records_and_d_reads_its_inserts() {
        // Goal: after a load, A only touches loaded keys and finds every one; D reads only
        // records that exist, including ones it inserted during the run.
        let target = MemoryTarget::new(3);
        let mut a = options(Workload::A, 5000);
        a.load = true;
        let report = run_bench(target.clone(), &a, false).await.unwrap();
        let load = report.load.unwrap();
        assert_eq!(load.ops["load"].ok, 1000);
        assert_eq!(load.requests["put"].ok, 1000);
        let loaded: HashSet<Vec<u8>> = (0..1000).map(key_name).collect();
        assert!(target.seen().iter().all(|call| loaded.contains(&call.key)));
        let run = report.run.unwrap();
        assert_eq!(run.ops["read"].not_found, 0);

        let mut d = options(Workload::D, 20_000);
        d.load = true;
        let target = MemoryTarget::new(3);
        let report = run_bench(target.clone(), &d, false).await.unwrap();
        let run = report.run.unwrap();
        let inserts = run.ops["insert"].ok;
        assert!(inserts > 500, "{inserts} inserts");
        assert_eq!(
            run.ops["read"].not_found, 0,
            "D read a record that did not exist"
        );
        let existing: HashSet<Vec<u8>> = (0..1000 + inserts).map(key_name).collect();
        let reads: Vec<Vec<u8>> = target
            .seen()
            .into_iter()
            .filter(|call| call.is_get)
            .map(|call| call.key)
            .collect();
        assert!(reads.iter().all(|key| existing.contains(key)));
        let inserted: HashSet<Vec<u8>> = (1000..1000 + inserts).map(key_name).collect();
        let of_inserted = reads.iter().filter(|key| inserted.contains(*key)).count();
        assert!(
            of_inserted * 2 > reads.len(),
            "latest reads favour new records: {of_inserted} of {}",
            reads.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_counted_by_kind() {
        // Goal: every failed request is counted under its CallError kind, at the request level
        // and at the operation level, and ok + errors covers every operation.
        let quorum = |node| {
            CallError::Request(RequestError::Quorum {
                needed: 2,
                acks: 1,
                tried: vec![node],
                failures: vec![],
            })
        };
        let quorum_kind = quorum(NodeId(1)).kind();
        let target = MemoryTarget::new(3).with_failures(move |n, node, _| match n % 10 {
            3 => Some(CallError::Connection {
                node,
                detail: "refused".to_string(),
            }),
            7 => Some(quorum(node)),
            _ => None,
        });
        let report = run_bench(target.clone(), &options(Workload::A, 4000), false)
            .await
            .unwrap();
        let run = report.run.unwrap();
        let calls = target.seen().len() as u64;
        let requests = |kind: &str| -> u64 {
            ["get", "put"]
                .iter()
                .map(|r| {
                    run.requests[*r]
                        .errors_by_kind
                        .get(kind)
                        .copied()
                        .unwrap_or(0)
                })
                .sum()
        };
        // Calls n with n % 10 == 3 failed to connect, n % 10 == 7 missed their quorum.
        assert_eq!(requests("connection"), (calls + 6) / 10);
        assert_eq!(requests(quorum_kind), (calls + 2) / 10);
        // An operation fails once, at its first failed request.
        assert_eq!(run.ok + run.errors, 4000);
        assert_eq!(
            run.errors,
            run.errors_by_kind.values().sum::<u64>(),
            "{:?}",
            run.errors_by_kind
        );
        assert_eq!(
            run.errors,
            requests("connection") + requests(quorum_kind),
            "each failed request ends its operation"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_latency_includes_the_backlog_of_a_stall() {
        // Goal: coordinated omission is corrected: after one 200 ms stall, the operations
        // scheduled during it are timed from their intended start, so a large share of them
        // report a latency near the stall; a closed loop on the same target reports one slow op.
        let stall = Duration::from_millis(200);
        let target = || {
            MemoryTarget::new(3).with_delay(move |n, _| {
                if n == 100 {
                    stall
                } else {
                    Duration::from_micros(500)
                }
            })
        };
        let mut open = options(Workload::C, 1000);
        open.shape = LoopShape::Open {
            rate_per_s: 1000.0,
            max_inflight: 1,
        };
        let run = run_bench(target(), &open, false)
            .await
            .unwrap()
            .run
            .unwrap();
        assert_eq!(run.operations, 1000);
        assert_eq!(run.dropped_backlog, 0);
        let open_latency = latency(&run, "read");
        assert!(
            open_latency.max >= stall.as_micros() as u64,
            "{open_latency:?}"
        );
        assert!(
            open_latency.p90 >= 50_000,
            "backlog hidden: {open_latency:?}"
        );
        // The per-request view is the service time: only the stalled call is slow; the wait
        // is in the start delay.
        let request = run.requests["get"].latency_us.unwrap();
        assert!(request.p99 < 2_000, "{request:?}");
        let waited = run.start_delay_us.unwrap();
        assert!(waited.p90 >= 50_000, "{waited:?}");

        let mut closed = options(Workload::C, 1000);
        closed.shape = LoopShape::Closed { clients: 1 };
        let run = run_bench(target(), &closed, false)
            .await
            .unwrap()
            .run
            .unwrap();
        assert_eq!(run.start_delay_us, None);
        let closed_latency = latency(&run, "read");
        assert!(closed_latency.max >= stall.as_micros() as u64);
        assert!(closed_latency.p99 < 2_000, "{closed_latency:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_counts_operations_that_never_started() {
        // Goal: when the cluster cannot keep up for the whole run, the operations scheduled
        // before the end that never got a slot are reported as dropped_backlog errors.
        let target = MemoryTarget::new(3).with_delay(|_, _| Duration::from_secs(5));
        let mut o = options(Workload::C, 1);
        o.shape = LoopShape::Open {
            rate_per_s: 100.0,
            max_inflight: 2,
        };
        o.stop = StopAfter::Duration(Duration::from_secs(1));
        let run = run_bench(target, &o, false).await.unwrap().run.unwrap();
        // Two in flight plus one waiting in the hand-over slot; the rest of 100 dropped.
        assert_eq!(run.operations, 3);
        assert_eq!(run.dropped_backlog, 97);
        assert_eq!(run.errors_by_kind.get(DROPPED_BACKLOG), Some(&97));
        assert_eq!(run.errors, 97);
        // HdrHistogram keeps 3 significant digits: the 5 s bucket starts a little below 5 s.
        assert!(latency(&run, "read").min >= 4_990_000);
    }

    #[tokio::test(start_paused = true)]
    async fn duration_mode_stops_starting_operations_at_the_deadline() {
        // Goal: a closed loop run for 100 ms against 1 ms requests runs about 100 operations
        // per client and none starts after the deadline.
        let target = MemoryTarget::new(3).with_delay(|_, _| Duration::from_millis(1));
        let mut o = options(Workload::C, 1);
        o.shape = LoopShape::Closed { clients: 2 };
        o.stop = StopAfter::Duration(Duration::from_millis(100));
        let run = run_bench(target, &o, false).await.unwrap().run.unwrap();
        assert!((190..=202).contains(&run.operations), "{}", run.operations);
        assert!(run.elapsed_s < 0.110, "{}", run.elapsed_s);
        // No load phase: every read finds nothing, and says so.
        assert_eq!(run.ops["read"].not_found, run.ops["read"].ok);
    }

    #[tokio::test(start_paused = true)]
    async fn blind_updates_pile_up_siblings_and_rmw_and_overwrite_updates_do_not() {
        // Goal: the update modes differ as documented: blind puts to one key become siblings
        // until the store's limit refuses them (too_many_siblings); read-modify-write updates
        // and overwrites supersede what came before and never fail so.
        let mut o = options(Workload::A, 600);
        o.records = 1;
        o.distribution = KeyDistribution::Uniform;
        o.shape = LoopShape::Closed { clients: 1 };
        o.update_mode = UpdateMode::Blind;
        let blind = run_bench(MemoryTarget::new(3), &o, false)
            .await
            .unwrap()
            .run
            .unwrap();
        assert!(
            blind
                .errors_by_kind
                .get("too_many_siblings")
                .copied()
                .unwrap_or(0)
                > 0
        );
        assert_eq!(blind.requests["get"].count, blind.ops["read"].count);
        o.update_mode = UpdateMode::Rmw;
        let target = MemoryTarget::new(3);
        let rmw = run_bench(target.clone(), &o, false)
            .await
            .unwrap()
            .run
            .unwrap();
        assert_eq!(rmw.errors, 0, "{:?}", rmw.errors_by_kind);
        assert_eq!(target.values(&key_name(0)).len(), 1);
        // Overwrites supersede what is held without reading: one request, no siblings.
        o.update_mode = UpdateMode::Overwrite;
        let target = MemoryTarget::new(3);
        let overwrite = run_bench(target.clone(), &o, false)
            .await
            .unwrap()
            .run
            .unwrap();
        assert_eq!(overwrite.errors, 0, "{:?}", overwrite.errors_by_kind);
        assert_eq!(overwrite.requests["get"].count, overwrite.ops["read"].count);
        assert_eq!(target.values(&key_name(0)).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn report_json_round_trips_with_every_op_type() {
        // Goal: the JSON report decodes to the same report, names its schema, and lists every
        // run operation type and the load phase even when some counts are zero.
        let mut o = options(Workload::D, 2000);
        o.load = true;
        o.knobs.r = Some(2);
        let target = MemoryTarget::new(3);
        let report = run_bench(target.clone(), &o, false).await.unwrap();
        let json = serde_json::to_string_pretty(&report).unwrap();
        let back: BenchReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["schema"], REPORT_SCHEMA);
        for op in ["read", "update", "insert", "rmw"] {
            assert!(value["run"]["ops"][op]["count"].is_u64(), "{op} missing");
        }
        assert_eq!(
            value["run"]["ops"]["update"]["latency_us"],
            serde_json::Value::Null
        );
        assert_eq!(value["load"]["ops"]["load"]["ok"], 1000);
        assert_eq!(value["config"]["key_distribution"], "latest");
        // Every phase says what the host did and has a timeline whose points sum to its
        // operations.
        for phase in ["load", "run"] {
            assert!(value[phase]["host"].is_object(), "{phase} host missing");
            let points = value[phase]["timeline"].as_array().expect("a timeline");
            let ops: u64 = points.iter().filter_map(|p| p["ops"].as_u64()).sum();
            assert_eq!(Some(ops), value[phase]["operations"].as_u64(), "{phase}");
        }
        // A report written before those fields existed still reads.
        let mut old = value.clone();
        for phase in ["load", "run"] {
            if let Some(fields) = old[phase].as_object_mut() {
                fields.remove("host");
                fields.remove("timeline");
            }
        }
        let old: BenchReport = serde_json::from_value(old).unwrap();
        assert!(
            old.run
                .is_some_and(|run| run.timeline.is_empty() && run.host.is_none())
        );
        // R is sent with every get.
        assert!(
            target
                .seen()
                .iter()
                .filter(|c| c.is_get)
                .all(|c| c.r == Some(2))
        );
        let table = report.render();
        for word in ["load", "read", "insert", "p99.9 ms", "(get)"] {
            assert!(table.contains(word), "{word} missing from\n{table}");
        }
        // Requests carry their kind: gets are ClientOp::Get.
        assert!(matches!(
            ringstore_core::request::ClientRequest::get(key_name(1)).op,
            ClientOp::Get { .. }
        ));
    }

    #[test]
    fn intended_starts_before_the_deadline() {
        // Goal: the open loop plans exactly the starts i / rate that fall before the end.
        assert_eq!(intended_count(Duration::from_secs(1), 100.0), 100);
        assert_eq!(intended_count(Duration::from_millis(1001), 100.0), 101);
        assert_eq!(intended_count(Duration::from_millis(5), 1000.0), 5);
    }
}
