//! Measures the WARS engine against every number the PBS paper publishes (Bailis et al., VLDB
//! 2012, §5.4, Table 4 and Figures 5–6), with many trials, and prints them side by side.
//!
//! `cargo run --release -p ringstore-experiments --example pbs_table -- [TRIALS] [SEED] [REPS]`
//! (default 10,000,000 trials, seed 1, 10 repetitions of the paper's procedure).
//!
//! The tail values (t at which 99.9% of reads are consistent) are also re-measured the way the
//! paper measured them: a sweep of t in fixed steps, 50,000 fresh trials per point, stopping at
//! the first point whose estimate reaches 99.9%. That estimator is biased low (the first of many
//! noisy points to cross wins), which is how far our exact percentile sits from the paper's.

use ringstore_experiments::profiles::Profile;
use ringstore_experiments::wars::{
    PAPER_TRIALS_PER_POINT, Placement, WarsOptions, WarsSweep, paper_t_visibility_estimate,
    run_sweep,
};
use std::time::Instant;

fn sweep(profile: &str, trials: u64, seed: u64) -> WarsSweep {
    let profile = Profile::builtin(profile).expect("built-in profile");
    let options = WarsOptions {
        n: 3,
        trials,
        seed,
        placement: Placement::External,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let started = Instant::now();
    let sweep = run_sweep(&profile, &options, &|_| {}).expect("valid options");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {trials} trials in {secs:.2} s ({:.2} M trials/s, all 9 (R, W) pairs per trial)",
        profile.name,
        trials as f64 / secs / 1e6
    );
    sweep
}

fn main() {
    let mut args = std::env::args().skip(1);
    let trials: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let reps: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    println!("N = 3, {trials} trials, seed {seed}, coordinator not a replica (as in PBS)");
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "quantity", "paper", "measured", "diff"
    );
    let row = |what: String, paper: f64, measured: f64, percent: bool| {
        let diff = if percent {
            format!("{:+.2} pp", (measured - paper) * 100.0)
        } else if paper == 0.0 {
            format!("{:+.2}", measured)
        } else {
            format!("{:+.1}%", (measured / paper - 1.0) * 100.0)
        };
        if percent {
            println!(
                "{what:<44} {:>9.1}% {:>9.2}% {diff:>8}",
                paper * 100.0,
                measured * 100.0
            );
        } else {
            println!("{what:<44} {paper:>10.2} {measured:>10.2} {diff:>8}");
        }
    };
    let t999 = [
        ("lnkd-ssd", 1, 1, 1.85),
        ("lnkd-disk", 1, 1, 45.5),
        ("lnkd-disk", 1, 2, 43.3),
        ("lnkd-disk", 2, 1, 13.6),
        ("ymmr", 1, 1, 1364.0),
        ("ymmr", 2, 1, 202.0),
        ("wan", 1, 1, 113.0),
        ("wan", 2, 1, 30.2),
    ];
    let consistent_at = [
        ("lnkd-ssd", 0.0, 0.974),
        ("lnkd-disk", 0.0, 0.439),
        ("lnkd-disk", 10.0, 0.925),
        ("ymmr", 0.0, 0.893),
        ("wan", 0.0, 0.33),
    ];
    for name in ["lnkd-ssd", "lnkd-disk", "ymmr", "wan"] {
        let s = sweep(name, trials, seed);
        let profile = Profile::builtin(name).expect("built-in profile");
        for &(p, r, w, paper) in t999.iter().filter(|x| x.0 == name) {
            let exact = s.t_visibility(r, w, 0.999);
            row(
                format!("{p} R={r} W={w}: t at 99.9% (ms)"),
                paper,
                exact,
                false,
            );
            if reps == 0 {
                continue;
            }
            let step = (paper / 100.0).max(0.01);
            let start = (s.t_visibility(r, w, 0.99) / step).floor() * step;
            let estimates: Vec<f64> = (0..reps)
                .map(|rep| {
                    paper_t_visibility_estimate(
                        &profile,
                        3,
                        r,
                        w,
                        0.999,
                        start,
                        step,
                        PAPER_TRIALS_PER_POINT,
                        seed + 1 + rep,
                        100_000,
                    )
                    .expect("valid options")
                })
                .collect();
            let mean = estimates.iter().sum::<f64>() / reps as f64;
            let sd = (estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>()
                / (reps.max(2) - 1) as f64)
                .sqrt();
            let lo = estimates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = estimates.iter().copied().fold(0.0, f64::max);
            row(
                format!("  paper's procedure, mean of {reps}"),
                paper,
                mean,
                false,
            );
            println!(
                "    (from {start:.2} ms in steps of {step:.3} ms; sd {sd:.2}, min {lo:.2}, max {hi:.2})"
            );
        }
        for r in 1..=3 {
            for w in 1..=3 {
                if r + w > 3 {
                    row(
                        format!("{name} R={r} W={w}: t at 99.9% (ms)"),
                        0.0,
                        s.t_visibility(r, w, 0.999),
                        false,
                    );
                }
            }
        }
        for &(p, t, paper) in consistent_at.iter().filter(|x| x.0 == name) {
            row(
                format!("{p} R=W=1: P(consistent) at t={t} ms"),
                paper,
                s.p_consistent(1, 1, t),
                true,
            );
        }
        if name == "lnkd-disk" {
            for (w, paper) in [(1, 10.99), (2, 20.97), (3, 112.65)] {
                row(
                    format!("lnkd-disk W={w}: p99.9 write latency (ms)"),
                    paper,
                    s.write_latency[w - 1].quantile(0.999),
                    false,
                );
            }
        }
    }
}
