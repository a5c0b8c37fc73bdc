//! The progress line a phase shows on stderr once per second: operations done, the rate over
//! the last second, errors, and time elapsed.
//!
//! # Guarantees
//! - Nothing is drawn unless the caller asks for it (the command line asks only when stderr is
//!   a terminal), so piped output and tests stay clean.
//! - The line is cleared when the phase ends, before the report is printed.
//!
//! # Limits
//! - The rate is the difference of two counters one tick apart: a one-second moving window,
//!   not a smoothed estimate.

use super::recorder::LiveCounters;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the line is refreshed.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// A running progress line; dropping it (or [`ProgressLine::finish`]) stops and clears it.
pub struct ProgressLine {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

impl ProgressLine {
    /// Starts a line labelled `label` over `live`, if `enabled`; `planned` is the phase's
    /// length (for the "elapsed / planned" part), when known as a time.
    pub fn start(
        label: &str,
        live: Arc<LiveCounters>,
        planned: Option<Duration>,
        enabled: bool,
    ) -> Self {
        if !enabled {
            return Self {
                bar: ProgressBar::hidden(),
                ticker: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        let label = label.to_string();
        let line = bar.clone();
        let ticker = tokio::spawn(async move {
            let start = Instant::now();
            let mut last = 0u64;
            let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = live.done();
                let elapsed = start.elapsed().as_secs();
                let of = planned.map_or(String::new(), |p| format!("/{}s", p.as_secs()));
                line.set_message(format!(
                    "{label}: {done} ops, {} ops/s now, {} errors, {elapsed}s{of}",
                    done.saturating_sub(last),
                    live.errors()
                ));
                last = done;
            }
        });
        Self {
            bar,
            ticker: Some(ticker),
        }
    }

    /// Stops the line and clears it from the terminal.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.stop();
    }
}
