//! A phase second by second: operations finished, errors, and the slowest operation that
//! finished in each interval (YCSB's status lines, kept in the report).
//!
//! Why: percentiles over a whole run say how often operations were slow, not when. A stall, a
//! node killed mid-run or a partition healing shows in the timeline as a second with fewer
//! operations, errors, or a large maximum.
//!
//! # Guarantees
//! - The points cover the phase from its start to [`Timeline::finish`] without gaps or
//!   overlaps: each point's interval starts where the previous one ended (the last one is
//!   usually shorter than [`TIMELINE_INTERVAL`]), and the points' `ops` sum to the operations
//!   the live counters saw.
//! - Sampling costs the workers one relaxed atomic `fetch_max` per operation.
//!
//! # Limits
//! - A point's time is when the sampler ran, which a busy load generator can delay: each
//!   point carries its own interval length, so rates stay right.

use super::recorder::LiveCounters;
use super::report::ms;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The length of a timeline interval.
pub const TIMELINE_INTERVAL: Duration = Duration::from_secs(1);

/// One interval of a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// When the interval ended, in seconds since the phase started.
    pub end_s: f64,
    /// How long the interval was, in seconds.
    pub length_s: f64,
    /// Operations that finished in it (successes and failures).
    pub ops: u64,
    /// Operations that failed in it.
    pub errors: u64,
    /// The longest latency of an operation that finished in it (µs; 0 if none did).
    pub max_latency_us: u64,
}

impl TimelinePoint {
    /// Finished operations per second over the interval.
    pub fn ops_per_s(&self) -> f64 {
        if self.length_s > 0.0 {
            self.ops as f64 / self.length_s
        } else {
            0.0
        }
    }
}

/// The sampler of a running phase.
pub struct Timeline {
    stop: Option<oneshot::Sender<()>>,
    sampler: JoinHandle<Vec<TimelinePoint>>,
}

/// What the sampler last read from the live counters.
struct Reading {
    at: Instant,
    done: u64,
    errors: u64,
}

impl Timeline {
    /// Starts sampling `live` every [`TIMELINE_INTERVAL`] from `start` (the counters as they
    /// are now are the first interval's base).
    pub fn start(live: Arc<LiveCounters>, start: Instant) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        // Read now, not when the task first runs: operations may finish before that.
        let mut last = Reading {
            at: start,
            done: live.done(),
            errors: live.errors(),
        };
        live.take_max_latency_us();
        let sampler = tokio::spawn(async move {
            let mut points = Vec::new();
            let mut tick = tokio::time::interval_at(start + TIMELINE_INTERVAL, TIMELINE_INTERVAL);
            loop {
                let finished = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                points.push(sample(&live, start, &mut last));
                if finished {
                    return points;
                }
            }
        });
        Self {
            stop: Some(stop),
            sampler,
        }
    }

    /// Takes the last (partial) interval and returns every point.
    pub async fn finish(mut self) -> Vec<TimelinePoint> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.sampler).await.unwrap_or_default()
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

/// The point for the interval since `last`, which it then replaces.
fn sample(live: &LiveCounters, start: Instant, last: &mut Reading) -> TimelinePoint {
    let now = Reading {
        at: Instant::now(),
        done: live.done(),
        errors: live.errors(),
    };
    let point = TimelinePoint {
        end_s: now.at.duration_since(start).as_secs_f64(),
        length_s: now.at.duration_since(last.at).as_secs_f64(),
        ops: now.done.saturating_sub(last.done),
        errors: now.errors.saturating_sub(last.errors),
        max_latency_us: live.take_max_latency_us(),
    };
    *last = now;
    point
}

/// The table's summary of a timeline: its slowest second and its largest maximum latency.
pub fn summary(points: &[TimelinePoint]) -> Option<String> {
    // The last interval is usually partial: leave it out of "fewest operations a second"
    // unless it is the only one.
    let whole = match points.len() {
        0 => return None,
        1 => points,
        n => &points[..n - 1],
    };
    let slowest = whole
        .iter()
        .min_by(|a, b| a.ops_per_s().total_cmp(&b.ops_per_s()))?;
    let worst = points.iter().max_by_key(|p| p.max_latency_us)?;
    Some(format!(
        "  timeline ({} points, --out for all): fewest {:.0} ops/s (second ending {:.1} s); \
         slowest operation {:.3} ms (second ending {:.1} s)",
        points.len(),
        slowest.ops_per_s(),
        slowest.end_s,
        ms(worst.max_latency_us),
        worst.end_s
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{OpOutcome, Recorder};
    use crate::workload::OpKind;

    #[tokio::test(start_paused = true)]
    async fn points_cover_the_phase_and_count_each_operation_once() {
        let live = Arc::new(LiveCounters::default());
        let mut recorder = Recorder::new(Arc::clone(&live)).expect("histograms");
        let start = Instant::now();
        let timeline = Timeline::start(Arc::clone(&live), start);
        // Second 1: three fast operations. Second 2: one slow failure. Then half a second.
        for _ in 0..3 {
            recorder.record_op(
                OpKind::Read,
                Duration::from_micros(500),
                OpOutcome::Ok { not_found: false },
            );
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        recorder.record_op(
            OpKind::Update,
            Duration::from_millis(900),
            OpOutcome::Failed("timeout"),
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let points = timeline.finish().await;

        assert_eq!(points.len(), 3, "{points:?}");
        assert_eq!(points.iter().map(|p| p.ops).sum::<u64>(), live.done());
        assert_eq!((points[0].ops, points[0].errors), (3, 0));
        assert_eq!(points[0].max_latency_us, 500);
        assert_eq!((points[1].ops, points[1].errors), (1, 1));
        assert_eq!(points[1].max_latency_us, 900_000);
        assert_eq!((points[2].ops, points[2].max_latency_us), (0, 0));
        let mut previous_end = 0.0;
        for point in &points {
            let gap = point.end_s - point.length_s - previous_end;
            assert!(gap.abs() < 1e-9, "intervals meet: {points:?}");
            previous_end = point.end_s;
        }
        assert!(
            (previous_end - 2.5).abs() < 1e-9,
            "ends when finished: {points:?}"
        );

        let line = summary(&points).expect("points");
        assert!(line.contains("fewest 1 ops/s"), "{line}");
        assert!(line.contains("slowest operation 900.000 ms"), "{line}");
    }

    #[test]
    fn an_empty_timeline_has_no_summary() {
        assert_eq!(summary(&[]), None);
    }
}
