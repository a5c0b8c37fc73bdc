//! Measures put and get latency and throughput through the real runtime: three nodes in this
//! process (QUIC with mutual TLS between them, fjall stores with group commit in a temporary
//! directory, HTTP on loopback), driven by blocking HTTP clients on threads.
//!
//! Run: `cargo run --release --example http_cluster [clients] [ops_per_client]`
//! (defaults 8 and 500). Numbers are indicative: clients, nodes and disk share one machine.

// A measurement program: failing loudly on setup errors is what we want.
#![allow(clippy::unwrap_used)]

use ringstore::runtime::node_config::{NodeFileConfig, SeedPeer, SyncMode, TlsFiles};
use ringstore::runtime::{RunningNode, start};
use ringstore_client::tls::ClusterCa;
use ringstore_core::NodeId;
use ringstore_core::config::NodeConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn config(dir: &Path, ca: &ClusterCa, id: u64, seeds: Vec<SeedPeer>) -> NodeFileConfig {
    let cert = ca.issue_node_cert(NodeId(id)).unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("n{id}.pem")),
        dir.join(format!("n{id}.key")),
    );
    cert.save(&cert_path, &key_path).unwrap();
    NodeFileConfig {
        id: NodeId(id),
        data_dir: dir.join(format!("n{id}")),
        peer_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        zone: None,
        seed: None,
        sync: SyncMode::Group,
        io_threads: None,
        tls: TlsFiles {
            ca_cert: dir.join("ca.pem"),
            cert: cert_path,
            key: key_path,
        },
        seeds,
        node: NodeConfig {
            gossip_interval: Duration::from_millis(200),
            ..NodeConfig::default()
        },
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// Whether the node at `addr` routes by a ring of 3 and judges every member up.
fn ready(addr: SocketAddr) -> bool {
    let mut response = agent()
        .get(&format!("http://{addr}/status"))
        .call()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    let members = json["members"].as_array().cloned().unwrap_or_default();
    json["ring"]["nodes"] == 3 && members.len() == 3 && members.iter().all(|m| m["up"] == true)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs `clients` threads doing `ops` requests each; returns (latencies, wall time, failures).
fn run(
    addrs: &[SocketAddr],
    clients: usize,
    ops: usize,
    op: fn(&ureq::Agent, SocketAddr, usize, usize) -> bool,
) -> (Vec<Duration>, Duration, usize) {
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let addrs = addrs.to_vec();
            std::thread::spawn(move || {
                let agent = agent();
                let mut latencies = Vec::with_capacity(ops);
                let mut failures = 0;
                for i in 0..ops {
                    let addr = addrs[(client + i) % addrs.len()];
                    let t = Instant::now();
                    if !op(&agent, addr, client, i) {
                        failures += 1;
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failures = 0;
    for handle in handles {
        let (latencies, failed) = handle.join().unwrap();
        all.extend(latencies);
        failures += failed;
    }
    all.sort();
    (all, started.elapsed(), failures)
}

fn put(agent: &ureq::Agent, addr: SocketAddr, client: usize, i: usize) -> bool {
    let url = format!("http://{addr}/kv/c{client}-k{i}");
    let response = agent.put(&url).send(vec![b'x'; 100]).unwrap();
    response.status().as_u16() == 204
}

fn get(agent: &ureq::Agent, addr: SocketAddr, client: usize, i: usize) -> bool {
    let url = format!("http://{addr}/kv/c{client}-k{i}");
    let response = agent.get(&url).call().unwrap();
    response.status().as_u16() == 200
}

fn report(name: &str, (latencies, wall, failures): (Vec<Duration>, Duration, usize)) {
    println!(
        "{name:>4}: {:>6} ops in {:>6.2?} = {:>7.0} ops/s; p50 {:>8.2?} p99 {:>8.2?} max {:>8.2?}; failures {failures}",
        latencies.len(),
        wall,
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map_or(8, |a| a.parse().unwrap());
    let ops: usize = args.next().map_or(500, |a| a.parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    ca.save(&dir.path().join("ca.pem"), &dir.path().join("ca.key"))
        .unwrap();
    let nodes: Vec<RunningNode> = runtime.block_on(async {
        let first = start(config(dir.path(), &ca, 1, vec![])).await.unwrap();
        let seed = vec![SeedPeer {
            id: NodeId(1),
            addr: first.peer_addr(),
        }];
        let second = start(config(dir.path(), &ca, 2, seed.clone()))
            .await
            .unwrap();
        let third = start(config(dir.path(), &ca, 3, seed)).await.unwrap();
        vec![first, second, third]
    });
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.http_addr()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !addrs.iter().all(|&a| ready(a)) {
        assert!(Instant::now() < deadline, "the cluster did not converge");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("3 nodes, N=3 R=2 W=2, {clients} clients x {ops} ops, 100-byte values");
    report("put", run(&addrs, clients, ops, put));
    report("get", run(&addrs, clients, ops, get));
    runtime.block_on(async {
        for node in nodes {
            node.shutdown().await.unwrap();
        }
    });
}
