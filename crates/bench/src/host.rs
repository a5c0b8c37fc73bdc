//! What the machine itself did while a bench phase ran: how the CPU time was split (from
//! Linux's `/proc/stat`, including `steal`, the time a virtual machine's CPUs wanted to run
//! but the hypervisor ran something else) and scheduling hiccups (a thread per CPU, pinned to
//! it, sleeps 5 ms in a loop and records by how much each sleep overran, as jHiccup does for
//! the JVM).
//!
//! Why: on a shared virtual machine the host can stop a CPU for tens or hundreds of
//! milliseconds. Those pauses land in every latency percentile of the store, and nothing in
//! the store's own numbers tells them apart from the store's own stalls. On a machine with
//! idle CPU the hiccup histogram is the floor under the run's tail latency that no change to
//! the store can lower; on a saturated one it also holds ordinary waits for a CPU.
//!
//! # Guarantees
//! - Never fails a run: where `/proc/stat` is missing or unreadable the CPU split is `None`.
//! - The sampler threads are stopped and joined by [`HostWatch::finish`] (or on drop).
//!
//! # Limits
//! - Machine-wide: the CPU split counts every process, not only the cluster and the load
//!   generator.
//! - The samplers' histograms are merged: the report says how long a CPU stalled, not which.
//! - Each sampler costs 200 wake-ups a second.

use super::recorder::micros;
use super::report::LatencySummary;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a hiccup sampler sleeps each time. A pause of any length is measured whole by the
/// sleep it falls in; 5 ms rather than jHiccup's 1 ms keeps the samplers' wake-ups (which
/// preempt the cluster's threads on a busy machine) from costing the run measurable
/// throughput: at 1 ms they cost it about 2%.
pub const HICCUP_INTERVAL: Duration = Duration::from_millis(5);

/// The largest overrun the hiccup histogram holds (longer ones are clamped to it).
const HICCUP_MAX_US: u64 = 60_000_000;

/// What the machine did during a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// How the machine's CPU time was split; `null` where `/proc/stat` is not available.
    pub cpu: Option<CpuShares>,
    /// By how much each sleep of the samplers ([`HICCUP_INTERVAL`]) overran, in µs; `null`
    /// if none woke.
    pub hiccup_us: Option<LatencySummary>,
}

/// Shares of all CPUs' time over a phase, in per cent (they sum to 100).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuShares {
    /// User time (with `nice`).
    pub user_pct: f64,
    /// Kernel time (with hard and soft interrupts).
    pub system_pct: f64,
    /// Idle, with I/O wait.
    pub idle_pct: f64,
    /// Taken by the hypervisor while a CPU of this machine wanted to run.
    pub steal_pct: f64,
}

/// The cumulative counters of `/proc/stat`'s first (`cpu`) line, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    user: u64,
    system: u64,
    idle: u64,
    steal: u64,
}

impl CpuTimes {
    /// Reads `/proc/stat`; `None` where it is missing or not in the expected form.
    pub fn read() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        Self::parse(&text)
    }

    /// Parses the `cpu` line of `/proc/stat`'s text: user, nice, system, idle, iowait, irq,
    /// softirq, steal (older kernels without the last fields read them as 0).
    pub fn parse(text: &str) -> Option<Self> {
        let line = text.lines().find(|line| line.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        if fields.len() < 4 {
            return None;
        }
        Some(Self {
            user: field(0) + field(1),
            system: field(2) + field(5) + field(6),
            idle: field(3) + field(4),
            steal: field(7),
        })
    }

    /// The split of the time from `self` to `later`; `None` if no time passed.
    pub fn shares_until(&self, later: &CpuTimes) -> Option<CpuShares> {
        let user = later.user.saturating_sub(self.user);
        let system = later.system.saturating_sub(self.system);
        let idle = later.idle.saturating_sub(self.idle);
        let steal = later.steal.saturating_sub(self.steal);
        let total = user + system + idle + steal;
        let pct = |part: u64| 100.0 * part as f64 / total as f64;
        (total > 0).then(|| CpuShares {
            user_pct: pct(user),
            system_pct: pct(system),
            idle_pct: pct(idle),
            steal_pct: pct(steal),
        })
    }
}

/// Watches the machine from [`HostWatch::start`] until [`HostWatch::finish`].
pub struct HostWatch {
    cpu_before: Option<CpuTimes>,
    stop: Arc<AtomicBool>,
    /// Sleeps the sampler has finished (lets a test wait for it).
    samples: Arc<AtomicU64>,
    samplers: Vec<JoinHandle<Histogram<u64>>>,
}

impl HostWatch {
    /// Notes the CPU counters and starts one hiccup sampler per CPU, each pinned to its CPU
    /// where the system allows (a sampler that cannot be started is left out).
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(AtomicU64::new(0));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let samplers = (0..cpus)
            .filter_map(|cpu| {
                let histogram = Histogram::new_with_bounds(1, HICCUP_MAX_US, 3).ok()?;
                let (flag, counter) = (Arc::clone(&stop), Arc::clone(&samples));
                std::thread::Builder::new()
                    .name(format!("bench-hiccup-{cpu}"))
                    .spawn(move || {
                        pin_to_cpu(cpu);
                        sample_hiccups(&flag, &counter, histogram)
                    })
                    .ok()
            })
            .collect();
        Self {
            cpu_before: CpuTimes::read(),
            stop,
            samples,
            samplers,
        }
    }

    /// How many sleeps the samplers have finished so far.
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// Stops the sampler and reports.
    pub fn finish(mut self) -> HostReport {
        let cpu_after = CpuTimes::read();
        let cpu = match (&self.cpu_before, &cpu_after) {
            (Some(before), Some(after)) => before.shares_until(after),
            _ => None,
        };
        let hiccups = self.stop_samplers();
        HostReport {
            cpu,
            hiccup_us: hiccups.as_ref().and_then(LatencySummary::of),
        }
    }

    /// Stops the samplers and merges their histograms.
    fn stop_samplers(&mut self) -> Option<Histogram<u64>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut merged: Option<Histogram<u64>> = None;
        for sampler in self.samplers.drain(..) {
            let Ok(histogram) = sampler.join() else {
                continue;
            };
            match &mut merged {
                None => merged = Some(histogram),
                Some(all) => {
                    // Same bounds on both sides: adding cannot fail.
                    let _ = all.add(&histogram);
                }
            }
        }
        merged
    }
}

impl Drop for HostWatch {
    fn drop(&mut self) {
        self.stop_samplers();
    }
}

/// Keeps the calling thread on `cpu`, so that each CPU has a sampler of its own (best effort:
/// left unpinned where that fails or the system has no such call).
fn pin_to_cpu(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{CpuSet, sched_setaffinity};
        use nix::unistd::Pid;
        let mut set = CpuSet::new();
        if set.set(cpu).is_ok() {
            let _ = sched_setaffinity(Pid::from_raw(0), &set);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// Sleeps [`HICCUP_INTERVAL`] until `stop`, recording each overrun in µs and counting sleeps.
fn sample_hiccups(
    stop: &AtomicBool,
    samples: &AtomicU64,
    mut histogram: Histogram<u64>,
) -> Histogram<u64> {
    while !stop.load(Ordering::Relaxed) {
        let before = Instant::now();
        std::thread::sleep(HICCUP_INTERVAL);
        record_overrun(&mut histogram, before.elapsed());
        samples.fetch_add(1, Ordering::Relaxed);
    }
    histogram
}

/// Records by how much a sleep of [`HICCUP_INTERVAL`] that took `slept` overran, in µs.
fn record_overrun(histogram: &mut Histogram<u64>, slept: Duration) {
    let overrun = micros(slept.saturating_sub(HICCUP_INTERVAL));
    histogram.saturating_record(overrun.min(HICCUP_MAX_US));
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 20 300 10 1 4 60 0 0\ncpu0 50 2 10 150 5 0 2 30 0 0\n";

    #[test]
    fn parses_the_cpu_line_and_splits_the_time_between_two_readings() {
        let before = CpuTimes::parse(STAT).expect("a valid cpu line");
        let later = "cpu  160 5 40 400 20 1 4 80 0 0\n";
        let after = CpuTimes::parse(later).expect("a valid cpu line");
        // Deltas: user 60, system 20, idle 100 + 10 iowait, steal 20: 210 ticks.
        let shares = before.shares_until(&after).expect("time passed");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(shares.user_pct, 100.0 * 60.0 / 210.0), "{shares:?}");
        assert!(close(shares.system_pct, 100.0 * 20.0 / 210.0), "{shares:?}");
        assert!(close(shares.idle_pct, 100.0 * 110.0 / 210.0), "{shares:?}");
        assert!(close(shares.steal_pct, 100.0 * 20.0 / 210.0), "{shares:?}");
        assert_eq!(before.shares_until(&before), None, "no time passed");
    }

    #[test]
    fn rejects_text_that_is_not_proc_stat() {
        assert_eq!(CpuTimes::parse(""), None);
        assert_eq!(CpuTimes::parse("cpu0 1 2 3 4\n"), None, "no aggregate line");
        assert_eq!(
            CpuTimes::parse("cpu  1 2 x 4\n"),
            None,
            "a field is not a number"
        );
        assert_eq!(CpuTimes::parse("cpu  1 2\n"), None, "too few fields");
        let old_kernel = CpuTimes::parse("cpu  1 2 3 4\n").expect("four fields suffice");
        assert_eq!(old_kernel.steal, 0);
    }

    #[test]
    fn an_overrun_is_recorded_as_the_time_past_the_interval() {
        let mut histogram = Histogram::new_with_bounds(1, HICCUP_MAX_US, 3).expect("valid bounds");
        record_overrun(&mut histogram, HICCUP_INTERVAL + Duration::from_millis(50));
        record_overrun(&mut histogram, Duration::from_micros(900));
        record_overrun(&mut histogram, Duration::from_secs(3600));
        assert_eq!(histogram.len(), 3);
        assert_eq!(histogram.min(), 0, "a short sleep overran by nothing");
        assert!(histogram.equivalent(histogram.value_at_quantile(0.5), 50_000));
        assert!(
            histogram.equivalent(histogram.max(), HICCUP_MAX_US),
            "clamped"
        );
    }

    #[test]
    fn a_watch_reports_the_cpu_split_and_its_samples() {
        let watch = HostWatch::start();
        let before = CpuTimes::read();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Wait (bounded) until the sampler has woken and the kernel's counters have moved.
        while Instant::now() < deadline && (watch.samples() < 3 || CpuTimes::read() == before) {
            std::thread::yield_now();
        }
        let report = watch.finish();
        let hiccups = report.hiccup_us.expect("the sampler woke");
        assert!(hiccups.max < HICCUP_MAX_US);
        if before.is_some() {
            let cpu = report.cpu.expect("/proc/stat was readable and time passed");
            let sum = cpu.user_pct + cpu.system_pct + cpu.idle_pct + cpu.steal_pct;
            assert!((sum - 100.0).abs() < 1e-6, "{cpu:?}");
        }
    }
}
