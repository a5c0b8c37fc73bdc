//! Latency distributions: how long a message takes on a link, in milliseconds.
//!
//! The simulator draws every delay from the run's seeded RNG, so a distribution is plain data
//! (serde, for scenario files and latency profiles). The families are those the quorum
//! experiments need (PBS, Bailis et al. 2012, model links as mixtures of a Pareto and an
//! exponential) plus the usual suspects.
//!
//! # Invariants
//! - A sample is finite and ≥ 0 for every valid distribution; [`Distribution::validate`]
//!   refuses parameters that would give NaN, negative or infinite delays.
//! - Sampling uses `rand_distr`, whose algorithms are value-stable across platforms, so the
//!   same seed gives the same delays everywhere.

use rand::Rng;
use rand_distr::Distribution as _;
use serde::{Deserialize, Serialize};

/// A delay distribution in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Distribution {
    /// Always `ms`.
    Constant {
        /// The delay.
        ms: f64,
    },
    /// Uniform on `[low_ms, high_ms]`.
    Uniform {
        /// Lower bound.
        low_ms: f64,
        /// Upper bound.
        high_ms: f64,
    },
    /// Exponential with rate `lambda` (per ms): mean `1/lambda` ms.
    Exponential {
        /// Rate per millisecond.
        lambda: f64,
    },
    /// Log-normal: `exp(N(mu, sigma))` ms.
    LogNormal {
        /// Mean of the underlying normal.
        mu: f64,
        /// Standard deviation of the underlying normal.
        sigma: f64,
    },
    /// Pareto with scale `x_m` (ms) and shape `alpha`.
    Pareto {
        /// Scale: the smallest value.
        x_m: f64,
        /// Shape: the heaviness of the tail (smaller is heavier).
        alpha: f64,
    },
    /// A mixture: with probability `weight` (normalised over the parts) draw from that part.
    Mixture {
        /// (weight, distribution) pairs.
        parts: Vec<(f64, Distribution)>,
    },
}

/// Why a distribution's parameters were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistributionError {
    /// A parameter is out of its domain.
    #[error("{kind}: {what} must be {rule}, got {value}")]
    BadParameter {
        /// The family.
        kind: &'static str,
        /// The parameter.
        what: &'static str,
        /// What it must be.
        rule: &'static str,
        /// What it was.
        value: f64,
    },
    /// A mixture with no parts, or whose weights do not sum to a positive number.
    #[error("a mixture needs parts with positive total weight")]
    EmptyMixture,
}

fn check(
    kind: &'static str,
    what: &'static str,
    rule: &'static str,
    value: f64,
    ok: bool,
) -> Result<(), DistributionError> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(DistributionError::BadParameter {
            kind,
            what,
            rule,
            value,
        })
    }
}

impl Distribution {
    /// A constant delay.
    pub fn constant(ms: f64) -> Self {
        Distribution::Constant { ms }
    }

    /// Checks every parameter (recursively for mixtures).
    pub fn validate(&self) -> Result<(), DistributionError> {
        match self {
            Distribution::Constant { ms } => check("constant", "ms", ">= 0", *ms, *ms >= 0.0),
            Distribution::Uniform { low_ms, high_ms } => {
                check("uniform", "low_ms", ">= 0", *low_ms, *low_ms >= 0.0)?;
                check(
                    "uniform",
                    "high_ms",
                    ">= low_ms",
                    *high_ms,
                    *high_ms >= *low_ms,
                )
            }
            Distribution::Exponential { lambda } => {
                check("exponential", "lambda", "> 0", *lambda, *lambda > 0.0)
            }
            Distribution::LogNormal { mu, sigma } => {
                check("log-normal", "mu", "finite", *mu, true)?;
                check("log-normal", "sigma", ">= 0", *sigma, *sigma >= 0.0)
            }
            Distribution::Pareto { x_m, alpha } => {
                check("pareto", "x_m", "> 0", *x_m, *x_m > 0.0)?;
                check("pareto", "alpha", "> 0", *alpha, *alpha > 0.0)
            }
            Distribution::Mixture { parts } => {
                let total: f64 = parts.iter().map(|(w, _)| *w).sum();
                let positive = total > 0.0 && total.is_finite();
                if parts.is_empty() || !positive || parts.iter().any(|(w, _)| *w < 0.0) {
                    return Err(DistributionError::EmptyMixture);
                }
                parts.iter().try_for_each(|(_, d)| d.validate())
            }
        }
    }

    /// Draws one delay in milliseconds. Invalid parameters (not validated) give 0, never a
    /// panic.
    pub fn sample_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let value = match self {
            Distribution::Constant { ms } => *ms,
            Distribution::Uniform { low_ms, high_ms } => {
                if high_ms > low_ms {
                    rand_distr::Uniform::new_inclusive(*low_ms, *high_ms)
                        .map(|d| d.sample(rng))
                        .unwrap_or(*low_ms)
                } else {
                    *low_ms
                }
            }
            Distribution::Exponential { lambda } => rand_distr::Exp::new(*lambda)
                .map(|d| d.sample(rng))
                .unwrap_or(0.0),
            Distribution::LogNormal { mu, sigma } => rand_distr::LogNormal::new(*mu, *sigma)
                .map(|d| d.sample(rng))
                .unwrap_or(0.0),
            Distribution::Pareto { x_m, alpha } => rand_distr::Pareto::new(*x_m, *alpha)
                .map(|d| d.sample(rng))
                .unwrap_or(0.0),
            Distribution::Mixture { parts } => {
                let total: f64 = parts.iter().map(|(w, _)| w.max(0.0)).sum();
                let mut pick = rand_distr::Uniform::new(0.0, total.max(f64::MIN_POSITIVE))
                    .map(|d| d.sample(rng))
                    .unwrap_or(0.0);
                let mut chosen = parts.last().map(|(_, d)| d);
                for (w, d) in parts {
                    if pick < w.max(0.0) {
                        chosen = Some(d);
                        break;
                    }
                    pick -= w.max(0.0);
                }
                chosen.map_or(0.0, |d| d.sample_ms(rng))
            }
        };
        if value.is_finite() && value >= 0.0 {
            value
        } else {
            0.0
        }
    }

    /// Draws one delay in whole microseconds (the simulator's resolution).
    pub fn sample_micros<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let micros = self.sample_ms(rng) * 1000.0;
        // Bounded to ~11.6 days: a heavier tail is a configuration mistake, not a delay.
        micros.clamp(0.0, 1e12) as u64
    }

    /// The mean in milliseconds, where it is finite (for reports).
    pub fn mean_ms(&self) -> Option<f64> {
        match self {
            Distribution::Constant { ms } => Some(*ms),
            Distribution::Uniform { low_ms, high_ms } => Some((low_ms + high_ms) / 2.0),
            Distribution::Exponential { lambda } => Some(1.0 / lambda),
            Distribution::LogNormal { mu, sigma } => Some((mu + sigma * sigma / 2.0).exp()),
            Distribution::Pareto { x_m, alpha } => {
                (*alpha > 1.0).then(|| alpha * x_m / (alpha - 1.0))
            }
            Distribution::Mixture { parts } => {
                let total: f64 = parts.iter().map(|(w, _)| *w).sum();
                let mut mean = 0.0;
                for (w, d) in parts {
                    mean += w / total * d.mean_ms()?;
                }
                Some(mean)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn empirical_mean(d: &Distribution, seed: u64) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = 200_000;
        (0..n).map(|_| d.sample_ms(&mut rng)).sum::<f64>() / n as f64
    }

    // Each family's sample mean is close to its analytic mean.
    #[test]
    fn sample_means_match_analytic_means() {
        let seed = 11;
        println!("seed {seed}");
        let cases = [
            Distribution::constant(2.0),
            Distribution::Uniform {
                low_ms: 1.0,
                high_ms: 3.0,
            },
            Distribution::Exponential { lambda: 0.5 },
            Distribution::LogNormal {
                mu: 0.0,
                sigma: 0.5,
            },
            Distribution::Pareto {
                x_m: 1.0,
                alpha: 3.0,
            },
            Distribution::Mixture {
                parts: vec![
                    (0.9, Distribution::constant(1.0)),
                    (0.1, Distribution::constant(11.0)),
                ],
            },
        ];
        for d in cases {
            d.validate().unwrap();
            let want = d.mean_ms().unwrap();
            let got = empirical_mean(&d, seed);
            assert!((got - want).abs() / want < 0.03, "{d:?}: {got} vs {want}");
        }
    }

    // The same seed gives the same samples; bad parameters are named.
    #[test]
    fn deterministic_and_validated() {
        let d = Distribution::Pareto {
            x_m: 0.235,
            alpha: 10.0,
        };
        let a: Vec<u64> = {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            (0..10).map(|_| d.sample_micros(&mut rng)).collect()
        };
        let b: Vec<u64> = {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            (0..10).map(|_| d.sample_micros(&mut rng)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x >= 235));
        assert!(
            Distribution::Exponential { lambda: 0.0 }
                .validate()
                .is_err()
        );
        assert!(Distribution::Mixture { parts: vec![] }.validate().is_err());
        let bad = Distribution::Uniform {
            low_ms: 2.0,
            high_ms: 1.0,
        };
        assert!(matches!(
            bad.validate(),
            Err(DistributionError::BadParameter {
                what: "high_ms",
                ..
            })
        ));
    }

    // Distributions read from TOML as scenario files write them.
    #[test]
    fn parses_from_toml() {
        let text = r#"
            kind = "mixture"
            parts = [[0.9122, { kind = "pareto", x_m = 0.235, alpha = 10.0 }],
                     [0.0878, { kind = "exponential", lambda = 1.66 }]]
        "#;
        let d: Distribution = toml::from_str(text).unwrap();
        d.validate().unwrap();
        assert!(matches!(d, Distribution::Mixture { .. }));
    }
}
