//! Scenario tests of the node core: several `Node`s driven through a small in-memory harness
//! (a FIFO queue of messages delivered instantly, time advanced to the next deadline when the
//! queue is empty). The full simulator, with latency, loss and partitions, lives in `sim/`.

use super::*;
use crate::harness::{Cluster, read};
use crate::request::{ClientReply, ReadResult};
use crate::store::{MemoryStore, SyncPolicy};
use crate::version::CausalContext;
use std::collections::BTreeSet;
use std::time::Duration;

/// The test timings with anti-entropy every 500 ms and hint replay off: only anti-entropy
/// (and read repair, if something reads) can repair a replica.
fn anti_entropy_only_config() -> NodeConfig {
    NodeConfig {
        anti_entropy_interval: Duration::from_millis(500),
        sabotage: crate::config::Sabotage {
            no_hint_replay: true,
            ..Default::default()
        },
        ..test_config()
    }
}

fn test_config() -> NodeConfig {
    crate::harness::fast_config()
}

/// The context of a write that must have succeeded.
fn written(result: ClientResult) -> CausalContext {
    crate::harness::written(&result).unwrap_or_else(|e| panic!("write failed: {e}"))
}

/// A get through node `at` that must succeed.
fn get_ok(result: Result<ClientResult, crate::harness::HarnessError>) -> ReadResult {
    read(result.unwrap()).unwrap()
}

fn values(read: &ReadResult) -> Vec<String> {
    let mut v: Vec<String> = read
        .values
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    v.sort();
    v
}

// Gossip from one seed converges every node on the same ring.
#[test]
fn gossip_converges_on_one_ring() {
    let mut c = Cluster::new(5, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    let digests: BTreeSet<u64> = c
        .nodes()
        .map(|(_, n)| n)
        .map(|n| gossip::ring_digest(n.ring()))
        .collect();
    assert_eq!(digests.len(), 1);
    assert_eq!(c.node(3).unwrap().ring().unwrap().node_count(), 5);
}

// Dynamo §4.5: a put then a get at N=3 R=2 W=2 returns the value, from any node.
/// Steps `message` into node `to` (from `from`) and returns what may leave at once.
fn deliver(c: &mut Cluster, from: NodeId, to: NodeId, message: PeerMessage) -> Vec<Output> {
    let now = c.now();
    let node = c.node_mut(to).unwrap();
    node.step(now, Input::Peer { from, message });
    node.take_ready()
}

/// The messages of `outputs`, with their destinations.
fn sends(outputs: Vec<Output>) -> Vec<(NodeId, PeerMessage)> {
    outputs
        .into_iter()
        .filter_map(|out| match out {
            Output::Send { to, message } => Some((to, message)),
            Output::Reply { .. } => None,
        })
        .collect()
}

// A duplicate `Replicate` (the network delivered it twice) arriving while the first copy's
// fsync runs merges as "no change": its ack must still wait for that fsync, since nothing the
// replica holds is durable yet. Found by the simulator's durability-at-acknowledgement checker
// once it drove the external-sync path: the ack left at once.
#[test]
fn a_duplicate_write_is_acknowledged_only_after_the_sync_under_way() {
    let policy = SyncPolicy::Group {
        max_delay_ms: 1,
        max_writes: 1_000,
    };
    let mut c = Cluster::with_policy(3, test_config(), policy).unwrap();
    c.run_for(Duration::from_secs(3));
    let (n1, n2) = (NodeId(1), NodeId(2));
    let now = c.now();
    let coordinator = c.node_mut(n1).unwrap();
    coordinator.step(
        now,
        Input::Client {
            id: ClientId(999),
            request: ClientRequest::put("k", "v", CausalContext::empty()),
        },
    );
    let replicate = sends(coordinator.take_ready())
        .into_iter()
        .find(|(to, _)| *to == n2)
        .map(|(_, message)| message)
        .unwrap();
    let replica = c.node_mut(n2).unwrap();
    replica.step(
        now,
        Input::Peer {
            from: n1,
            message: replicate.clone(),
        },
    );
    assert!(
        sends(replica.take_ready()).is_empty(),
        "the first ack waits for a sync"
    );
    let ticket = replica.begin_external_sync().unwrap();
    replica.step(
        now,
        Input::Peer {
            from: n1,
            message: replicate,
        },
    );
    assert!(
        sends(replica.take_ready()).is_empty(),
        "the duplicate's ack left before the sync under way ended"
    );
    replica.complete_sync(ticket, Ok(()));
    let acks = sends(replica.take_ready());
    assert_eq!(
        acks.len(),
        2,
        "both acks leave once the sync ended: {acks:?}"
    );
}

/// How the coordinator's own write gets synced in `ready_releases_...`.
#[derive(Clone, Copy, Debug)]
enum CoordinatorSync {
    /// Inline, before the replicas' acks arrive.
    Before,
    /// Inline, after the acks arrived.
    After,
    /// By an external sync that completes after the acks arrived.
    External,
    /// By an external sync that fails.
    ExternalFails,
}

// Under group commit, a coordinator's Replicate messages leave before its own fsync, each
// replica's ack waits for that replica's sync, and the put's reply leaves as soon as the
// coordinator's own write is durable: at once if an earlier sync covered it, after the sync
// otherwise, and as a storage error if that sync fails (raft-rs's Ready rule: nothing claims
// durability early).
#[test]
fn ready_releases_what_claims_nothing_before_the_sync() {
    let policy = SyncPolicy::Group {
        max_delay_ms: 1,
        max_writes: 1_000,
    };
    for how in [
        CoordinatorSync::Before,
        CoordinatorSync::After,
        CoordinatorSync::External,
        CoordinatorSync::ExternalFails,
    ] {
        let mut c = Cluster::with_policy(3, test_config(), policy).unwrap();
        c.run_for(Duration::from_secs(3));
        let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
        let now = c.now();
        let id = ClientId(999);
        let coordinator = c.node_mut(n1).unwrap();
        coordinator.step(
            now,
            Input::Client {
                id,
                request: ClientRequest::put("k", "v", CausalContext::empty()),
            },
        );
        let replicates = sends(coordinator.take_ready());
        let targets: BTreeSet<NodeId> = replicates.iter().map(|(to, _)| *to).collect();
        assert_eq!(targets, BTreeSet::from([n2, n3]), "{how:?}");
        let ticket = match how {
            CoordinatorSync::Before => {
                coordinator.sync_store();
                None
            }
            CoordinatorSync::External | CoordinatorSync::ExternalFails => {
                coordinator.begin_external_sync()
            }
            CoordinatorSync::After => None,
        };
        // Each replica's ack waits for that replica's sync.
        let mut acks = Vec::new();
        for (to, message) in replicates {
            assert!(
                sends(deliver(&mut c, n1, to, message)).is_empty(),
                "{how:?}"
            );
            let node = c.node_mut(to).unwrap();
            node.sync_store();
            acks.extend(
                sends(node.take_ready())
                    .into_iter()
                    .map(|(_, ack)| (to, ack)),
            );
        }
        assert_eq!(acks.len(), 2, "{how:?}");
        let mut out = Vec::new();
        for (from, ack) in acks {
            out.extend(deliver(&mut c, from, n1, ack));
        }
        let replied = |outputs: &[Output], ok: bool| {
            outputs
                .iter()
                .any(|o| matches!(o, Output::Reply { id: r, result } if *r == id && result.is_ok() == ok))
        };
        let coordinator = c.node_mut(n1).unwrap();
        match how {
            CoordinatorSync::Before => assert!(replied(&out, true), "held back: {out:?}"),
            CoordinatorSync::After => {
                assert!(out.is_empty(), "before its sync: {out:?}");
                coordinator.sync_store();
                assert!(replied(&coordinator.take_ready(), true));
            }
            CoordinatorSync::External | CoordinatorSync::ExternalFails => {
                assert!(out.is_empty(), "before its sync: {out:?}");
                let ticket = ticket.expect("a write was unsynced");
                let failed = matches!(how, CoordinatorSync::ExternalFails);
                let result = if failed {
                    Err("disk on fire".into())
                } else {
                    Ok(())
                };
                coordinator.complete_sync(ticket, result);
                assert!(replied(&coordinator.take_ready(), !failed), "{how:?}");
            }
        }
    }
}

#[test]
fn put_then_get_at_n3_r2_w2() {
    let mut c = Cluster::new(5, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    let ctx = written(c.put(1, "k", "v1", CausalContext::empty()).unwrap());
    for at in 1..=5 {
        let read = get_ok(c.get(at, "k"));
        assert_eq!(values(&read), vec!["v1"]);
        assert_eq!(read.context, ctx);
    }
    let replicas = c.replicas(1, "k");
    for id in 1..=5 {
        assert_eq!(
            c.stored(id, "k").is_some(),
            replicas.contains(&NodeId(id)),
            "n{id}"
        );
    }
}

// Dynamo §4.6: with one replica down a W=2 put succeeds through a hinted fallback, and the hint
// reaches the owner once it is back.
#[test]
fn hinted_handoff_reaches_the_owner_after_it_returns() {
    let mut c = Cluster::new(5, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    let replicas = c.replicas(1, "hinted");
    let down = replicas[2];
    let coordinator = replicas[0];
    c.crash(down, false).unwrap();
    // Let the failure detector judge it down.
    c.run_for(Duration::from_secs(20));
    assert!(!c.node(coordinator).unwrap().is_up(down));
    written(
        c.put(coordinator, "hinted", "v", CausalContext::empty())
            .unwrap(),
    );
    let holders: Vec<NodeId> = c
        .nodes()
        .filter(|(_, n)| n.hints_pending().contains_key(&down))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(holders.len(), 1, "one fallback holds the hint");
    assert!(!replicas.contains(&holders[0]));
    c.restart(down).unwrap();
    c.run_for(Duration::from_secs(5));
    let set = c
        .stored(down, "hinted")
        .expect("the hint reached the owner");
    assert_eq!(set.distinct_values().len(), 1);
    assert!(c.node(holders[0]).unwrap().hints_pending().is_empty());
}

// Dynamo §4.5: read repair heals a replica that missed a write (no fallback exists at 3 nodes).
#[test]
fn read_repair_heals_a_stale_replica() {
    let mut c = Cluster::new(3, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    c.isolate(NodeId(3), true);
    written(c.put(1, "k", "v", CausalContext::empty()).unwrap());
    assert!(c.stored(3, "k").is_none());
    c.heal();
    let read = get_ok(c.get(1, "k"));
    assert_eq!(values(&read), vec!["v"]);
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.stored(3, "k"), c.stored(1, "k"));
    assert!(c.node(1).unwrap().stats().read_repairs >= 1);
}

// Dynamo §4.7: anti-entropy heals a replica that missed writes, with no read touching it.
#[test]
fn anti_entropy_heals_a_replica_that_missed_writes() {
    let config = NodeConfig {
        anti_entropy_interval: Duration::from_millis(500),
        ..test_config()
    };
    let mut c = Cluster::new(3, config).unwrap();
    c.run_for(Duration::from_secs(3));
    c.isolate(NodeId(3), true);
    for i in 0..50 {
        written(
            c.put(1, &format!("k{i}"), "v", CausalContext::empty())
                .unwrap(),
        );
    }
    c.heal();
    c.run_for(Duration::from_secs(10));
    for i in 0..50 {
        let key = format!("k{i}");
        assert_eq!(c.stored(3, &key), c.stored(1, &key), "{key}");
    }
    let repaired: u64 = c
        .nodes()
        .map(|(_, n)| n)
        .map(|n| n.stats().anti_entropy_keys)
        .sum();
    assert!(repaired >= 50, "anti-entropy moved {repaired} keys");
}

// Dynamo §4.7: anti-entropy repairs in every direction at once: keys a replica lacks, keys it
// holds older, keys the others lack or hold older, and concurrent versions (both ways).
#[test]
fn anti_entropy_repairs_every_kind_of_difference() {
    let mut c = Cluster::new(3, anti_entropy_only_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    let old = written(
        c.put(1, "updated-while-3-away", "old", CausalContext::empty())
            .unwrap(),
    );
    written(
        c.put(1, "updated-by-3", "old", CausalContext::empty())
            .unwrap(),
    );
    let concurrent = written(
        c.put(1, "concurrent", "base", CausalContext::empty())
            .unwrap(),
    );
    // Node 3 misses a new key, an update, and one side of a concurrent write.
    c.isolate(NodeId(3), true);
    written(
        c.put(1, "new-while-3-away", "v", CausalContext::empty())
            .unwrap(),
    );
    written(c.put(1, "updated-while-3-away", "new", old).unwrap());
    written(
        c.put(2, "concurrent", "from-2", concurrent.clone())
            .unwrap(),
    );
    // Nodes 1 and 2 miss what node 3 alone takes (W = 1).
    c.heal();
    c.isolate(NodeId(1), true);
    c.isolate(NodeId(2), true);
    let w1 = |key: &str, value: &str, context: CausalContext| {
        let mut request = ClientRequest::put(key, value, context);
        request.w = Some(1);
        request
    };
    let read = c
        .node(3)
        .unwrap()
        .store()
        .get(b"updated-by-3")
        .unwrap()
        .unwrap();
    written(
        c.request(3, w1("updated-by-3", "new", read.context()))
            .unwrap(),
    );
    written(
        c.request(3, w1("new-on-3", "v", CausalContext::empty()))
            .unwrap(),
    );
    written(
        c.request(3, w1("concurrent", "from-3", concurrent))
            .unwrap(),
    );
    c.heal();
    c.run_for(Duration::from_secs(10));
    for key in [
        "updated-while-3-away",
        "updated-by-3",
        "concurrent",
        "new-while-3-away",
        "new-on-3",
    ] {
        let first = c.stored(1, key);
        assert!(first.is_some(), "{key} missing on n1");
        for id in 2..=3 {
            assert_eq!(c.stored(id, key), first, "{key} on n{id}");
        }
    }
    assert_eq!(
        values(&get_ok(c.get(1, "concurrent"))),
        vec!["from-2", "from-3"]
    );
    assert_eq!(values(&get_ok(c.get(2, "updated-by-3"))), vec!["new"]);
    let stats: Vec<&NodeStats> = c.nodes().map(|(_, n)| n).map(|n| n.stats()).collect();
    assert!(stats.iter().all(|s| s.anti_entropy_bytes_sent > 0));
    let repaired: u64 = stats.iter().map(|s| s.anti_entropy_keys_repaired).sum();
    // 3 keys to node 3, 2 keys to each of nodes 1 and 2, "concurrent" once more on 3.
    assert!(repaired >= 7, "{repaired} repairs");
}

// Replicas whose trees have different depths (another depth cap here) still converge: the
// deeper side starts, is told the other is shallower, and walks again at the smaller depth.
#[test]
fn anti_entropy_works_across_tree_depths() {
    let mut c = Cluster::new(3, anti_entropy_only_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    for i in 0..300 {
        written(
            c.put(1, &format!("k{i}"), "v", CausalContext::empty())
                .unwrap(),
        );
    }
    // Node 3 restarts capped at depth 2 (the others' trees hold 300 keys: depth 6), and never
    // starts an exchange itself: only the deeper side does.
    c.crash(3, false).unwrap();
    c.config_mut().anti_entropy_tree_depth = 2;
    c.config_mut().anti_entropy_interval = Duration::from_secs(3600);
    c.restart(3).unwrap();
    c.run_for(Duration::from_secs(3));
    c.isolate(NodeId(3), true);
    for i in 0..20 {
        written(
            c.put(2, &format!("new{i}"), "v", CausalContext::empty())
                .unwrap(),
        );
    }
    c.heal();
    c.run_for(Duration::from_secs(10));
    for i in 0..20 {
        let key = format!("new{i}");
        assert_eq!(c.stored(3, &key), c.stored(1, &key), "{key}");
        assert!(c.stored(3, &key).is_some(), "{key}");
    }
}

// A node serves one exchange at a time: a second peer is refused as busy until the first
// exchange ends (so that a replica is not sent the same sets by two peers at once).
#[test]
fn a_replica_serves_one_exchange_at_a_time() {
    let mut c = Cluster::new(3, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    let ring = c.node(3).unwrap().ring_digest();
    let shape = crate::merkle::TreeShape::new(crate::ring::TokenRange::full(), 0).unwrap();
    let hashes = |session: u64| PeerMessage::AeHashes {
        session: OpId(session),
        ring,
        request: crate::merkle::HashRequest {
            shape,
            rotation: 0,
            nodes: vec![crate::merkle::NodeIndex::ROOT],
        },
    };
    // Feeds node 3 a message and returns its answer to `from`.
    let ask = |c: &mut Cluster, from: u64, message: PeerMessage| {
        let now = c.now();
        let node = c.node_mut(NodeId(3)).unwrap();
        node.step(
            now,
            Input::Peer {
                from: NodeId(from),
                message,
            },
        );
        node.drain_outputs().into_iter().find_map(|out| match out {
            Output::Send {
                to,
                message: PeerMessage::AeHashesReply { response, .. },
            } if to == NodeId(from) => Some(response),
            _ => None,
        })
    };
    assert!(matches!(ask(&mut c, 1, hashes(100)), Some(Ok(_))));
    assert_eq!(
        ask(&mut c, 2, hashes(200)),
        Some(Err(crate::protocol::AeRefusal::Busy))
    );
    // The first exchange goes on; once it ends, the second peer is served.
    assert!(matches!(ask(&mut c, 1, hashes(100)), Some(Ok(_))));
    assert_eq!(
        ask(&mut c, 1, PeerMessage::AeDone { session: OpId(100) }),
        None
    );
    assert!(matches!(ask(&mut c, 2, hashes(200)), Some(Ok(_))));
}

// Dynamo §4.4: concurrent blind puts become siblings; a put with the merged context resolves.
#[test]
fn concurrent_blind_puts_are_siblings_until_resolved() {
    let mut c = Cluster::new(3, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    written(c.put(1, "k", "a", CausalContext::empty()).unwrap());
    written(c.put(2, "k", "b", CausalContext::empty()).unwrap());
    let read = get_ok(c.get(3, "k"));
    assert_eq!(values(&read), vec!["a", "b"]);
    written(c.put(3, "k", "ab", read.context).unwrap());
    assert_eq!(values(&get_ok(c.get(1, "k"))), vec!["ab"]);
}

// An overwrite supersedes every version its coordinator holds, siblings included, without a
// context from the client.
#[test]
fn overwrite_supersedes_what_the_coordinator_holds() {
    let mut c = Cluster::new(3, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    written(c.put(1, "k", "a", CausalContext::empty()).unwrap());
    written(c.put(2, "k", "b", CausalContext::empty()).unwrap());
    assert_eq!(values(&get_ok(c.get(3, "k"))), vec!["a", "b"]);
    written(c.request(3, ClientRequest::overwrite("k", "c")).unwrap());
    assert_eq!(values(&get_ok(c.get(1, "k"))), vec!["c"]);
    // On a key never written, an overwrite is a plain first write.
    written(
        c.request(2, ClientRequest::overwrite("fresh", "v"))
            .unwrap(),
    );
    assert_eq!(values(&get_ok(c.get(1, "fresh"))), vec!["v"]);
}

// An overwrite is not last-writer-wins: a version its coordinator has not seen yet survives as
// a sibling instead of being silently lost.
#[test]
fn overwrite_keeps_versions_its_coordinator_has_not_seen() {
    let mut c = Cluster::new(3, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    c.isolate(NodeId(3), true);
    written(c.put(1, "k", "x", CausalContext::empty()).unwrap());
    assert!(c.stored(3, "k").is_none(), "n3 missed the write");
    c.heal();
    written(c.request(3, ClientRequest::overwrite("k", "y")).unwrap());
    assert_eq!(values(&get_ok(c.get(1, "k"))), vec!["x", "y"]);
}

// A delete is not resurrected by anti-entropy from a replica that missed it, and its
// tombstone is collected once every replica has it.
#[test]
fn deletes_are_not_resurrected_and_tombstones_are_collected() {
    let config = NodeConfig {
        anti_entropy_interval: Duration::from_millis(500),
        tombstone_gc_interval: Duration::from_millis(500),
        tombstone_grace: Duration::from_secs(5),
        hint_window: Duration::from_secs(2),
        ..test_config()
    };
    let mut c = Cluster::new(3, config).unwrap();
    c.run_for(Duration::from_secs(3));
    written(c.put(1, "k", "v", CausalContext::empty()).unwrap());
    let read = get_ok(c.get(1, "k"));
    c.isolate(NodeId(3), true);
    written(
        c.request(1, ClientRequest::delete("k", read.context))
            .unwrap(),
    );
    assert!(c.stored(3, "k").is_some_and(|s| !s.is_deleted()));
    c.heal();
    c.run_for(Duration::from_secs(3));
    assert!(
        c.stored(3, "k").is_some_and(|s| s.is_deleted()),
        "AE spread the tombstone"
    );
    let read = get_ok(c.get(2, "k"));
    assert!(read.values.is_empty() && read.has_tombstones);
    c.run_for(Duration::from_secs(20));
    for id in 1..=3 {
        assert!(
            c.stored(id, "k").is_none(),
            "n{id} still holds the tombstone"
        );
    }
    let read = get_ok(c.get(3, "k"));
    assert!(read.values.is_empty());
    let collected: u64 = c
        .nodes()
        .map(|(_, n)| n)
        .map(|n| n.stats().tombstones_collected)
        .sum();
    assert_eq!(collected, 3);
}

// Dynamo §4.9: a node joins and another leaves while clients write; no key is lost, and the
// leaving node ends with nothing.
#[test]
fn join_and_leave_under_writes_lose_no_key() {
    let mut c = Cluster::new(4, test_config()).unwrap();
    c.run_for(Duration::from_secs(3));
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut write = |c: &mut Cluster, i: usize| {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        if let Ok(ClientReply::Written { .. }) = c
            .put(1 + (i as u64 % 4), &key, &value, CausalContext::empty())
            .unwrap()
        {
            acked.push((key, value));
        }
    };
    for i in 0..100 {
        write(&mut c, i);
    }
    c.start(NodeId(5), MemoryStore::new(SyncPolicy::EveryWrite))
        .unwrap();
    for i in 100..200 {
        write(&mut c, i);
        c.run_for(Duration::from_millis(20));
    }
    let now = c.now();
    c.node_mut(NodeId(2))
        .unwrap()
        .step(now, Input::Admin(AdminCommand::Leave));
    for i in 200..300 {
        write(&mut c, i);
        c.run_for(Duration::from_millis(20));
    }
    c.run_for(Duration::from_secs(20));
    assert_eq!(c.node(2).unwrap().status(), MemberStatus::Left);
    assert_eq!(c.node(2).unwrap().store().key_count(), 0);
    assert_eq!(acked.len(), 300);
    // First the stores themselves (a read would repair what handoff missed), then reads.
    for (key, _) in &acked {
        for id in c.replicas(1, key) {
            assert!(
                c.stored(id, key).is_some(),
                "{key} missing on replica n{id}"
            );
        }
    }
    for (key, value) in &acked {
        let read = get_ok(c.get(5, key));
        assert_eq!(values(&read), vec![value.clone()], "{key}");
    }
    assert!(
        c.node(5).unwrap().store().key_count() > 0,
        "the new node took over ranges"
    );
}

// Bad requests get a named error and leave nothing behind.
#[test]
fn bad_requests_are_refused_by_name() {
    let mut c = Cluster::new(3, test_config()).unwrap();
    c.run_for(Duration::from_secs(2));
    let mut too_many = ClientRequest::get("k");
    too_many.r = Some(4);
    assert_eq!(
        c.request(1, too_many).unwrap(),
        Err(RequestError::InvalidQuorum {
            which: 'r',
            asked: 4,
            n: 3
        })
    );
    assert_eq!(
        c.request(1, ClientRequest::get("")).unwrap(),
        Err(RequestError::EmptyKey)
    );
    let big = vec![b'x'; c.config_mut().max_key_bytes + 1];
    assert!(matches!(
        c.request(1, ClientRequest::get(big)).unwrap(),
        Err(RequestError::KeyTooLarge { .. })
    ));
}

// A quorum that cannot be met fails with the counts and the nodes tried.
#[test]
fn unreachable_quorum_fails_with_counts() {
    let mut c = Cluster::new(3, test_config()).unwrap();
    c.run_for(Duration::from_secs(2));
    c.isolate(NodeId(2), true);
    c.isolate(NodeId(3), true);
    let mut request = ClientRequest::put("k", "v", CausalContext::empty());
    request.w = Some(3);
    match c.request(1, request).unwrap() {
        Err(RequestError::Quorum {
            needed,
            acks,
            tried,
            ..
        }) => {
            assert_eq!((needed, acks), (3, 1));
            assert_eq!(tried.len(), 3);
        }
        other => panic!("expected a quorum failure, got {other:?}"),
    }
}

// read_fanout = "quorum" (Cassandra's way): a get at R=2 asks the coordinator's own store and
// one other replica only (with "all", both others); when that replica is silent, the
// coordinator asks the third once read_speculate_after passes, and answers well within the
// request timeout.
#[test]
fn quorum_fanout_asks_r_replicas_and_widens_when_one_is_silent() {
    let reads_sent = |outputs: Vec<Output>| -> Vec<NodeId> {
        sends(outputs)
            .into_iter()
            .filter(|(_, m)| matches!(m, PeerMessage::Read { .. }))
            .map(|(to, _)| to)
            .collect()
    };
    let speculate = Duration::from_millis(30);
    for fanout in [
        crate::config::ReadFanout::All,
        crate::config::ReadFanout::Quorum,
    ] {
        let config = NodeConfig {
            read_fanout: fanout,
            read_speculate_after: speculate,
            ..test_config()
        };
        let mut c = Cluster::new(3, config).unwrap();
        c.run_for(Duration::from_secs(3));
        written(c.put(1, "k", "v", CausalContext::empty()).unwrap());
        c.run_for(Duration::from_millis(100));
        let id = ClientId(1_000);
        let asked_at = c.now();
        let node = c.node_mut(NodeId(1)).unwrap();
        node.step(
            asked_at,
            Input::Client {
                id,
                request: ClientRequest::get("k"),
            },
        );
        let first = reads_sent(node.take_ready());
        if fanout == crate::config::ReadFanout::All {
            assert_eq!(first.len(), 2, "fanout all asks both other replicas");
            continue;
        }
        assert_eq!(
            first.len(),
            1,
            "fanout quorum asks one other replica: {first:?}"
        );
        // That replica never hears of it (its Read was taken above, not queued) and is cut off.
        c.isolate(first[0], true);
        c.run_for(speculate / 2);
        assert!(!c.has_reply(id), "answered with one response at R=2");
        c.run_for(speculate * 2);
        match c.take_reply(id) {
            Some(Ok(ClientReply::Read(read))) => assert_eq!(values(&read), vec!["v"]),
            other => panic!("the widened get did not answer: {other:?}"),
        }
        assert!(c.now().since(asked_at) < test_config().request_timeout);
    }
}
