//! Measurement: how the φ accrual detector behaves when heartbeats arrive by gossip.
//!
//! Simulates `n` nodes, each with a `MemberTable` and a `FailureDetector`, gossiping every
//! second (each with its own phase) to one random peer over a network with 1–5 ms latency.
//! In `push` mode the receiver only merges; in `push-pull` mode it also replies with its table.
//! Each receiver feeds the detector with `MergeReport::heartbeats` and expects new members.
//!
//! For each configuration it reports, over one simulated hour with every node alive, how many
//! times some observer wrongly judged some peer down (false suspicions, counted as up→down
//! transitions sampled every 100 ms), the inter-arrival statistics the detectors learned, and,
//! after one node crashes, how long each observer takes to judge it down.
//!
//! Run: `cargo run --release --example membership_gossip`

use ringstore_core::membership::{
    FailureDetector, MemberInfo, MemberStatus, MemberTable, PhiConfig,
};
use ringstore_core::{NodeId, Time};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

const GOSSIP_INTERVAL_US: u64 = 1_000_000;
const CHECK_INTERVAL_US: u64 = 100_000;
const ALIVE_PERIOD_US: u64 = 3_600_000_000;
const WARMUP_US: u64 = 30_000_000;

/// A splitmix64 step: the simulation's seeded RNG.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Push,
    PushPull,
}

enum Event {
    /// Node `.0` runs its gossip round.
    Round(usize),
    /// Node `to` receives `entries` from `from`, replying if `reply_wanted`.
    Deliver {
        to: usize,
        from: usize,
        reply_wanted: bool,
        entries: Vec<MemberInfo>,
    },
}

/// An event due at `at` (µs); `seq` breaks ties in scheduling order.
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Node {
    table: MemberTable,
    detector: FailureDetector,
    alive: bool,
}

struct Outcome {
    false_suspicions: u64,
    mean_interval_ms: f64,
    mean_std_ms: f64,
    detection_ms: Vec<f64>,
}

fn simulate(n: usize, mode: Mode, config: PhiConfig, seed: u64) -> Outcome {
    let mut rng = seed;
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            table: MemberTable::new(MemberInfo {
                node: NodeId(i as u64),
                addr: format!("node{i}"),
                zone: None,
                vnodes: 16,
                status: MemberStatus::Up,
                generation: 1,
                version: 0,
                heartbeat: 0,
            })
            .expect("the simulated member entries are valid"),
            detector: FailureDetector::new(config).expect("the measured configs are valid"),
            alive: true,
        })
        .collect();
    // Every node knows node 0 (the seed) at start, as a fresh cluster would be configured.
    for i in 1..n {
        let seed_entry: Vec<MemberInfo> = nodes[0].table.entries().cloned().collect();
        nodes[i].table.merge(&seed_entry);
        nodes[i].detector.expect(NodeId(0), Time::ZERO);
    }
    let mut queue: BinaryHeap<Reverse<Scheduled>> = BinaryHeap::new();
    let mut seq = 0u64;
    for i in 0..n {
        let phase = splitmix(&mut rng) % GOSSIP_INTERVAL_US;
        queue.push(Reverse(Scheduled {
            at: phase,
            seq,
            event: Event::Round(i),
        }));
        seq += 1;
    }
    let crash_at = WARMUP_US + ALIVE_PERIOD_US;
    let end = crash_at + 120_000_000;
    let mut next_check = WARMUP_US;
    let mut was_up = vec![vec![true; n]; n];
    let mut false_suspicions = 0u64;
    let mut detected_at: Vec<Option<u64>> = vec![None; n];

    while let Some(Reverse(Scheduled {
        at: now_us, event, ..
    })) = queue.pop()
    {
        if now_us > end {
            break;
        }
        // Sample every observer's verdicts up to `now_us`.
        while next_check <= now_us {
            let now = Time(next_check);
            for (o, observer) in nodes.iter().enumerate() {
                if !observer.alive {
                    continue;
                }
                for (p, was_up) in was_up[o].iter_mut().enumerate() {
                    if p == o {
                        continue;
                    }
                    let up = observer.detector.is_up(NodeId(p as u64), now);
                    if next_check < crash_at {
                        if *was_up && !up {
                            false_suspicions += 1;
                        }
                        *was_up = up;
                    } else if p == 0 && !up && detected_at[o].is_none() {
                        detected_at[o] = Some(next_check - crash_at);
                    }
                }
            }
            next_check += if next_check < crash_at {
                CHECK_INTERVAL_US
            } else {
                10_000
            };
        }
        if now_us >= crash_at && nodes[0].alive {
            nodes[0].alive = false;
        }
        let now = Time(now_us);
        match event {
            Event::Round(i) => {
                queue.push(Reverse(Scheduled {
                    at: now_us + GOSSIP_INTERVAL_US,
                    seq,
                    event: Event::Round(i),
                }));
                seq += 1;
                if !nodes[i].alive {
                    continue;
                }
                nodes[i].table.bump_heartbeat();
                let mut peer = (splitmix(&mut rng) % (n as u64 - 1)) as usize;
                if peer >= i {
                    peer += 1;
                }
                let latency = 1_000 + splitmix(&mut rng) % 4_000;
                let entries = nodes[i].table.entries().cloned().collect();
                queue.push(Reverse(Scheduled {
                    at: now_us + latency,
                    seq,
                    event: Event::Deliver {
                        to: peer,
                        from: i,
                        reply_wanted: mode == Mode::PushPull,
                        entries,
                    },
                }));
                seq += 1;
            }
            Event::Deliver {
                to,
                from,
                reply_wanted,
                entries,
            } => {
                if !nodes[to].alive {
                    continue;
                }
                let node = &mut nodes[to];
                let report = node.table.merge(&entries);
                for &member in &report.heartbeats {
                    node.detector.heartbeat(member, now);
                }
                for &member in &report.changed {
                    node.detector.expect(member, now);
                }
                if reply_wanted {
                    let latency = 1_000 + splitmix(&mut rng) % 4_000;
                    let entries = node.table.entries().cloned().collect();
                    queue.push(Reverse(Scheduled {
                        at: now_us + latency,
                        seq,
                        event: Event::Deliver {
                            to: from,
                            from: to,
                            reply_wanted: false,
                            entries,
                        },
                    }));
                    seq += 1;
                }
            }
        }
    }

    let mut interval_sum = 0.0;
    let mut std_sum = 0.0;
    let mut count = 0.0;
    for (o, observer) in nodes.iter().enumerate() {
        for p in 1..n {
            if p == o {
                continue;
            }
            if let Some(d) = observer.detector.detector(NodeId(p as u64)) {
                interval_sum += d.mean_interval().as_secs_f64() * 1000.0;
                std_sum += d.std_deviation().as_secs_f64() * 1000.0;
                count += 1.0;
            }
        }
    }
    Outcome {
        false_suspicions,
        mean_interval_ms: interval_sum / count,
        mean_std_ms: std_sum / count,
        detection_ms: detected_at[1..]
            .iter()
            .map(|d| d.map_or(f64::INFINITY, |us| us as f64 / 1000.0))
            .collect(),
    }
}

fn main() {
    let configs = [
        ("default (pause 1 s, min std 200 ms)", PhiConfig::default()),
        (
            "pause 0 s",
            PhiConfig {
                acceptable_heartbeat_pause: Duration::ZERO,
                ..PhiConfig::default()
            },
        ),
        (
            "pause 3 s (Akka cluster default)",
            PhiConfig {
                acceptable_heartbeat_pause: Duration::from_secs(3),
                ..PhiConfig::default()
            },
        ),
    ];
    let seeds = [1u64, 2, 3];
    println!(
        "{:<36} {:>3} {:>9} | {:>10} {:>9} {:>8} | {:>9} {:>9} {:>9}",
        "config",
        "n",
        "mode",
        "false/pair·h",
        "mean_ms",
        "std_ms",
        "det_mean",
        "det_p50",
        "det_max"
    );
    for (name, config) in configs {
        for n in [8usize, 32] {
            for (mode, mode_name) in [(Mode::Push, "push"), (Mode::PushPull, "push-pull")] {
                let mut false_total = 0u64;
                let mut mean_ms = 0.0;
                let mut std_ms = 0.0;
                let mut detections = Vec::new();
                for &seed in &seeds {
                    let outcome = simulate(n, mode, config, seed);
                    false_total += outcome.false_suspicions;
                    mean_ms += outcome.mean_interval_ms / seeds.len() as f64;
                    std_ms += outcome.mean_std_ms / seeds.len() as f64;
                    detections.extend(outcome.detection_ms);
                }
                detections.sort_by(f64::total_cmp);
                let pair_hours = (n * (n - 1) * seeds.len()) as f64;
                let det_mean = detections.iter().sum::<f64>() / detections.len() as f64;
                println!(
                    "{:<36} {:>3} {:>9} | {:>12.4} {:>9.0} {:>8.0} | {:>9.0} {:>9.0} {:>9.0}",
                    name,
                    n,
                    mode_name,
                    false_total as f64 / pair_hours,
                    mean_ms,
                    std_ms,
                    det_mean,
                    detections[detections.len() / 2],
                    detections[detections.len() - 1],
                );
            }
        }
    }
    println!("(seeds {seeds:?}; detection times in ms from the crash to the observer's verdict)");
}
