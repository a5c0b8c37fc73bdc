//! Latency profiles: the delay distributions of PBS's four legs (W: write request, A: write
//! ack, R: read request, S: read response), built in from the PBS paper or read from TOML.
//!
//! The built-in profiles are the fits Bailis et al. ("Probabilistically Bounded Staleness for
//! Practical Partial Quorums", VLDB 2012, Table 3 and §5.4) made to production latencies, each
//! a mixture of a Pareto and an exponential, in milliseconds:
//!
//! | profile | W | A = R = S |
//! |---|---|---|
//! | `lnkd-ssd` | 91.22% Pareto(x_m 0.235, α 10), 8.78% Exp(λ 1.66) | same as W |
//! | `lnkd-disk` | 38% Pareto(1.05, 1.51), 62% Exp(0.183) | as `lnkd-ssd` |
//! | `ymmr` | 93.9% Pareto(3, 3.5), 6.1% Exp(0.0028) | 98.2% Pareto(1.5, 3.8), 1.8% Exp(0.0217) |
//! | `wan` | `lnkd-disk`, plus 75 ms on each one-way leg between different sites | |
//!
//! A profile file (TOML) gives any [`Distribution`] per leg (`all` fills the legs not given),
//! and optionally sites with extra one-way delays between them, for WAN-like setups:
//!
//! ```toml
//! name = "two-regions"
//! description = "3 replicas in 3 datacenters, 40 ms apart"
//! [legs]
//! all = { kind = "exponential", lambda = 2.0 }
//! w = { kind = "log-normal", mu = 0.0, sigma = 0.8 }
//! [sites]
//! count = 3                                   # replica i is at site i % count
//! remote = { kind = "constant", ms = 40.0 }   # extra one-way delay between two sites
//! # or a full matrix of extra one-way delays, from site (row) to site (column), in ms:
//! # extra_ms = [[0, 40, 80], [40, 0, 40], [80, 40, 0]]
//! ```
//!
//! # Invariants (after [`Profile::validate`])
//! - every leg's distribution validates (finite, non-negative samples);
//! - `sites.count >= 1`, and `extra_ms`, when given, is a `count × count` matrix of finite,
//!   non-negative numbers.

use ringstore_sim::distribution::{Distribution, DistributionError};
use serde::{Deserialize, Serialize};

/// Names of the built-in profiles.
pub const BUILTIN_PROFILES: [&str; 4] = ["lnkd-ssd", "lnkd-disk", "ymmr", "wan"];

/// The extra one-way delay of the `wan` profile between two datacenters (PBS §5.4).
pub const WAN_REMOTE_MS: f64 = 75.0;

/// The four legs' delay distributions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Legs {
    /// W: coordinator → replica, the write request (until the replica serves the new value).
    pub w: Distribution,
    /// A: replica → coordinator, the write ack.
    pub a: Distribution,
    /// R: coordinator → replica, the read request.
    pub r: Distribution,
    /// S: replica → coordinator, the read response.
    pub s: Distribution,
}

/// Where replicas are, and the extra one-way delay between places.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sites {
    /// Number of sites; replica `i` is at site `i % count`.
    pub count: usize,
    /// Extra delay of every one-way leg between two different sites.
    #[serde(default)]
    pub remote: Option<Distribution>,
    /// Extra one-way delay from site `row` to site `column` (ms), overriding `remote`.
    #[serde(default)]
    pub extra_ms: Option<Vec<Vec<f64>>>,
}

/// A latency profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Its name (for reports and file names).
    pub name: String,
    /// What it models.
    pub description: String,
    /// The legs' delays between a coordinator and a replica at the same site.
    pub legs: Legs,
    /// Sites and the delays between them, if replicas are in several places.
    pub sites: Option<Sites>,
}

/// The legs as a file gives them: any may be missing if `all` is given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegsFile {
    all: Option<Distribution>,
    w: Option<Distribution>,
    a: Option<Distribution>,
    r: Option<Distribution>,
    s: Option<Distribution>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    legs: LegsFile,
    sites: Option<Sites>,
}

/// Why a profile could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read (and the name is not a built-in profile).
    #[error(
        "{path:?} is neither a built-in profile ({}) nor a readable file: {source}",
        BUILTIN_PROFILES.join(", ")
    )]
    Read {
        /// The name or path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid profile.
    #[error("profile {path} is invalid: {source}")]
    Parse {
        /// The path.
        path: String,
        /// What the parser said (line and column included).
        source: toml::de::Error,
    },
    /// A leg has neither its own distribution nor `all`.
    #[error("profile {path}: leg {leg} is missing and there is no `all`")]
    MissingLeg {
        /// The path.
        path: String,
        /// The leg: w, a, r or s.
        leg: char,
    },
    /// A leg's distribution is invalid.
    #[error("leg {leg}: {source}")]
    BadLeg {
        /// The leg, or "sites.remote".
        leg: &'static str,
        /// What is wrong with it.
        source: DistributionError,
    },
    /// The sites are inconsistent.
    #[error("sites: {0}")]
    BadSites(&'static str),
}

/// A mixture of a Pareto and an exponential, as PBS fits latencies.
fn pareto_exp(pareto_weight: f64, x_m: f64, alpha: f64, lambda: f64) -> Distribution {
    Distribution::Mixture {
        parts: vec![
            (pareto_weight, Distribution::Pareto { x_m, alpha }),
            (1.0 - pareto_weight, Distribution::Exponential { lambda }),
        ],
    }
}

fn lnkd_ssd_leg() -> Distribution {
    pareto_exp(0.9122, 0.235, 10.0, 1.66)
}

fn lnkd_disk_write() -> Distribution {
    pareto_exp(0.38, 1.05, 1.51, 0.183)
}

impl Profile {
    /// A built-in profile by name (case-insensitive: `LNKD-SSD` works).
    pub fn builtin(name: &str) -> Option<Profile> {
        let lower = name.to_ascii_lowercase();
        let profile = match lower.as_str() {
            "lnkd-ssd" => Profile {
                name: lower,
                description: "LinkedIn Voldemort on SSDs (PBS Table 3)".into(),
                legs: Legs {
                    w: lnkd_ssd_leg(),
                    a: lnkd_ssd_leg(),
                    r: lnkd_ssd_leg(),
                    s: lnkd_ssd_leg(),
                },
                sites: None,
            },
            "lnkd-disk" => Profile {
                name: lower,
                description: "LinkedIn Voldemort on spinning disks (PBS Table 3)".into(),
                legs: Legs {
                    w: lnkd_disk_write(),
                    a: lnkd_ssd_leg(),
                    r: lnkd_ssd_leg(),
                    s: lnkd_ssd_leg(),
                },
                sites: None,
            },
            "ymmr" => {
                let ars = pareto_exp(0.982, 1.5, 3.8, 0.0217);
                Profile {
                    name: lower,
                    description: "Yammer Riak (PBS Table 3)".into(),
                    legs: Legs {
                        w: pareto_exp(0.939, 3.0, 3.5, 0.0028),
                        a: ars.clone(),
                        r: ars.clone(),
                        s: ars,
                    },
                    sites: None,
                }
            }
            "wan" => Profile {
                name: lower,
                description: format!(
                    "LNKD-DISK with replicas in 3 datacenters, {WAN_REMOTE_MS} ms one way between them (PBS §5.4)"
                ),
                legs: Legs {
                    w: lnkd_disk_write(),
                    a: lnkd_ssd_leg(),
                    r: lnkd_ssd_leg(),
                    s: lnkd_ssd_leg(),
                },
                sites: Some(Sites {
                    count: 3,
                    remote: Some(Distribution::constant(WAN_REMOTE_MS)),
                    extra_ms: None,
                }),
            },
            _ => return None,
        };
        Some(profile)
    }

    /// A built-in profile, or else the profile file at `name_or_path`.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some(profile) = Self::builtin(name_or_path) {
            return Ok(profile);
        }
        let text = std::fs::read_to_string(name_or_path).map_err(|source| ProfileError::Read {
            path: name_or_path.to_string(),
            source,
        })?;
        let fallback_name = std::path::Path::new(name_or_path).file_stem().map_or_else(
            || "custom".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Self::parse(&text, name_or_path, &fallback_name)
    }

    /// Parses profile text; `path` names it in errors, `fallback_name` names the profile when
    /// the text does not.
    pub fn parse(text: &str, path: &str, fallback_name: &str) -> Result<Profile, ProfileError> {
        let file: ProfileFile = toml::from_str(text).map_err(|source| ProfileError::Parse {
            path: path.to_string(),
            source,
        })?;
        let leg = |given: Option<Distribution>, which: char| {
            given
                .or_else(|| file.legs.all.clone())
                .ok_or(ProfileError::MissingLeg {
                    path: path.to_string(),
                    leg: which,
                })
        };
        let legs = Legs {
            w: leg(file.legs.w.clone(), 'w')?,
            a: leg(file.legs.a.clone(), 'a')?,
            r: leg(file.legs.r.clone(), 'r')?,
            s: leg(file.legs.s.clone(), 's')?,
        };
        let profile = Profile {
            name: file.name.unwrap_or_else(|| fallback_name.to_string()),
            description: file.description,
            legs,
            sites: file.sites,
        };
        profile.validate()?;
        Ok(profile)
    }

    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let legs = [
            ("w", &self.legs.w),
            ("a", &self.legs.a),
            ("r", &self.legs.r),
            ("s", &self.legs.s),
        ];
        for (leg, d) in legs {
            d.validate()
                .map_err(|source| ProfileError::BadLeg { leg, source })?;
        }
        if let Some(sites) = &self.sites {
            if sites.count == 0 {
                return Err(ProfileError::BadSites("count must be at least 1"));
            }
            if let Some(remote) = &sites.remote {
                remote.validate().map_err(|source| ProfileError::BadLeg {
                    leg: "sites.remote",
                    source,
                })?;
            }
            if let Some(matrix) = &sites.extra_ms {
                let square = matrix.len() == sites.count
                    && matrix.iter().all(|row| row.len() == sites.count);
                if !square {
                    return Err(ProfileError::BadSites(
                        "extra_ms must be a count x count matrix",
                    ));
                }
                if matrix
                    .iter()
                    .flatten()
                    .any(|v| !(v.is_finite() && *v >= 0.0))
                {
                    return Err(ProfileError::BadSites(
                        "extra_ms entries must be finite and >= 0",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The site of replica `index`.
    pub fn site_of(&self, index: usize) -> usize {
        self.sites.as_ref().map_or(0, |s| index % s.count.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every built-in profile validates and has the PBS mean one-way delays (PBS Table 3).
    #[test]
    fn builtins_validate_and_have_the_paper_means() {
        for name in BUILTIN_PROFILES {
            let p = Profile::builtin(name).unwrap();
            p.validate().unwrap();
            assert_eq!(p.name, name);
        }
        // LNKD-SSD: a read (R + S) averages 0.58 ms, as LinkedIn reported (PBS §5.2).
        let ssd = Profile::builtin("LNKD-SSD").unwrap();
        let read_mean = ssd.legs.r.mean_ms().unwrap() + ssd.legs.s.mean_ms().unwrap();
        assert!((read_mean - 0.58).abs() < 0.01, "{read_mean}");
        assert!(Profile::builtin("nope").is_none());
    }

    // A file with `all` and one override, plus sites, parses; a missing leg is named.
    #[test]
    fn parses_profile_files() {
        let text = r#"
            name = "two-regions"
            [legs]
            all = { kind = "exponential", lambda = 2.0 }
            w = { kind = "constant", ms = 1.0 }
            [sites]
            count = 2
            extra_ms = [[0.0, 40.0], [40.0, 0.0]]
        "#;
        let p = Profile::parse(text, "x.toml", "x").unwrap();
        assert_eq!(p.name, "two-regions");
        assert_eq!(p.legs.w, Distribution::constant(1.0));
        assert_eq!(p.legs.s, Distribution::Exponential { lambda: 2.0 });
        assert_eq!(p.site_of(3), 1);
        let missing = "[legs]\nw = { kind = \"constant\", ms = 1.0 }\n";
        assert!(matches!(
            Profile::parse(missing, "m.toml", "m"),
            Err(ProfileError::MissingLeg { leg: 'a', .. })
        ));
        let bad_sites = "[legs]\nall = { kind = \"constant\", ms = 1.0 }\n[sites]\ncount = 2\nextra_ms = [[0.0]]\n";
        assert!(matches!(
            Profile::parse(bad_sites, "s.toml", "s"),
            Err(ProfileError::BadSites(_))
        ));
    }
}
