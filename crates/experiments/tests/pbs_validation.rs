//! The WARS engine against the numbers published in the PBS paper (Bailis et al.,
//! "Probabilistically Bounded Staleness for Practical Partial Quorums", VLDB 2012): N = 3, the
//! four latency profiles of §5.4 (Table 3), the coordinator not a replica (as in the paper).
//!
//! Tolerances: probabilities within 1.5 percentage points, latencies within 5%. Trial counts are
//! chosen so that the sampling error is at most a third of the tolerance (stated per test).
//!
//! The tail t values (t at which 99.9% of reads are consistent, Table 4) are checked in the
//! `#[ignore]`d test at the bottom (`cargo test --release -p ringstore-experiments --test pbs_validation
//! -- --ignored`): our exact 99.9th percentile sits up to 14% above the paper's values, because
//! the paper's estimator (the first t of a sweep whose 50,000-trial estimate reaches 99.9%) is
//! biased low; that test runs the paper's own procedure on our model and checks that the paper's
//! number is among its outcomes. See docs/experiments.md for every measured number.

use ringstore_experiments::profiles::Profile;
use ringstore_experiments::wars::{
    PAPER_TRIALS_PER_POINT, Placement, WarsOptions, WarsSweep, paper_t_visibility_estimate,
    run_sweep,
};

/// Probabilities must match the paper within this many percentage points.
const PROBABILITY_TOLERANCE_PP: f64 = 1.5;
/// Latencies must match the paper within this relative error.
const LATENCY_TOLERANCE: f64 = 0.05;

fn sweep(profile: &str, trials: u64, seed: u64) -> WarsSweep {
    println!("{profile}: {trials} trials, seed {seed}");
    let options = WarsOptions {
        n: 3,
        trials,
        seed,
        placement: Placement::External,
        threads: 2,
    };
    let profile = Profile::builtin(profile).expect("a built-in profile");
    run_sweep(&profile, &options, &|_| {}).expect("valid options")
}

fn check_probability(what: &str, paper: f64, measured: f64) {
    let diff_pp = (measured - paper) * 100.0;
    println!(
        "{what}: paper {:.1}%, measured {:.2}% ({diff_pp:+.2} pp)",
        paper * 100.0,
        measured * 100.0
    );
    assert!(
        diff_pp.abs() <= PROBABILITY_TOLERANCE_PP,
        "{what}: {diff_pp:+.2} pp"
    );
}

// PBS §5.4, Figures 5 and 6: probability of a consistent read right after the commit, R = W = 1
// (and LNKD-DISK 10 ms later). 100,000 trials: standard error at most 0.16 pp.
#[test]
fn consistency_probabilities_match_the_paper() {
    let trials = 100_000;
    let cases: [(&str, &[(f64, f64)]); 4] = [
        ("lnkd-ssd", &[(0.0, 0.974)]),
        ("lnkd-disk", &[(0.0, 0.439), (10.0, 0.925)]),
        ("ymmr", &[(0.0, 0.893)]),
        ("wan", &[(0.0, 0.33)]),
    ];
    for (profile, points) in cases {
        let s = sweep(profile, trials, 1);
        for &(t_ms, paper) in points {
            let what = format!("{profile} R=W=1, t={t_ms} ms");
            check_probability(&what, paper, s.p_consistent(1, 1, t_ms));
        }
        // Strict quorums (R + W > N) are always consistent (PBS §3.1).
        for r in 1..=3 {
            for w in 1..=3 {
                if r + w > 3 {
                    assert_eq!(s.p_consistent(r, w, 0.0), 1.0, "{profile} R={r} W={w}");
                    assert_eq!(s.t_visibility(r, w, 0.999), 0.0);
                }
            }
        }
    }
}

// PBS Table 4: p99.9 write latency of LNKD-DISK for W = 1, 2, 3. The write delay is Pareto with
// shape 1.51, so a p99.9 from n trials has a relative standard error of about
// 1 / (1.51 sqrt(n / 1000)): 1,000,000 trials give 2.1%, under half the 5% tolerance.
#[test]
fn write_latencies_match_the_paper() {
    let s = sweep("lnkd-disk", 1_000_000, 2);
    for (w, paper) in [(1, 10.99), (2, 20.97), (3, 112.65)] {
        let measured = s.write_latency[w - 1].quantile(0.999);
        let error = measured / paper - 1.0;
        println!(
            "lnkd-disk W={w}: p99.9 write latency paper {paper} ms, measured {measured:.2} ms ({:+.1}%)",
            error * 100.0
        );
        assert!(
            error.abs() <= LATENCY_TOLERANCE,
            "W={w}: {:+.1}%",
            error * 100.0
        );
    }
}

// PBS Table 4: the t after which 99.9% of reads are consistent. Each value is measured two
// ways: the exact 99.9th percentile of 2,000,000 trials (printed; it sits up to 14% above the
// paper), and the paper's own procedure (a sweep of t in steps of 1% of the paper's value,
// 50,000 fresh trials per point, stop at the first estimate >= 99.9%), repeated 12 times. The
// paper's number must lie within 3 standard deviations of that procedure's mean: i.e. it is a
// plausible outcome of the paper's method on our model. Slow (minutes): run with
// `cargo test --release -p ringstore-experiments --test pbs_validation -- --ignored --nocapture`.
#[test]
#[ignore]
fn tail_t_visibility_matches_the_paper_procedure() {
    let reps = 12;
    let cases = [
        ("lnkd-ssd", 1, 1, 1.85),
        ("lnkd-disk", 1, 1, 45.5),
        ("lnkd-disk", 1, 2, 43.3),
        ("lnkd-disk", 2, 1, 13.6),
        ("ymmr", 1, 1, 1364.0),
        ("ymmr", 2, 1, 202.0),
        ("wan", 1, 1, 113.0),
        ("wan", 2, 1, 30.2),
    ];
    let mut failures = Vec::new();
    for (name, r, w, paper) in cases {
        let s = sweep(name, 2_000_000, 11);
        let exact = s.t_visibility(r, w, 0.999);
        let profile = Profile::builtin(name).expect("a built-in profile");
        let step = paper / 100.0;
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
                    100 + rep,
                    100_000,
                )
                .expect("valid options")
            })
            .collect();
        let mean = estimates.iter().sum::<f64>() / reps as f64;
        let sd =
            (estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
        let z = (paper - mean) / sd.max(step);
        println!(
            "{name} R={r} W={w}: paper {paper} ms; exact p99.9 {exact:.2} ms ({:+.1}%); paper's procedure {mean:.2} +- {sd:.2} ms ({:+.1}%), paper at {z:+.1} sd",
            (exact / paper - 1.0) * 100.0,
            (mean / paper - 1.0) * 100.0
        );
        if z.abs() > 3.0 {
            failures.push(format!("{name} R={r} W={w}: z = {z:+.1}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
