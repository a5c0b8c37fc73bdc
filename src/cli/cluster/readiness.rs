//! Waiting for a cluster to be ready: every node answers, sees every running node `Up`, and
//! holds the same ring with every node in it. Every wait is a condition polled against a
//! deadline.

use super::*;

/// Ready (`None`) when every node in `running` answered, is `Up`, has `ring_nodes` nodes in its
/// ring, sees every other running node `Up` and alive, and all rings have the same digest;
/// otherwise the first thing that is not yet so.
pub fn readiness_problem(
    running: &[NodeId],
    statuses: &BTreeMap<NodeId, Result<NodeStatus, HttpClientError>>,
    ring_nodes: usize,
) -> Option<String> {
    let mut digest: Option<(NodeId, u64)> = None;
    for &id in running {
        let status = match statuses.get(&id) {
            Some(Ok(status)) => status,
            Some(Err(e)) => return Some(format!("node {} does not answer: {e}", id.0)),
            None => return Some(format!("node {} was not asked", id.0)),
        };
        if status.status != "Up" {
            return Some(format!("node {} is {}", id.0, status.status));
        }
        if status.ring.nodes != ring_nodes as u64 {
            return Some(format!(
                "node {} has {} of {ring_nodes} nodes in its ring",
                id.0, status.ring.nodes
            ));
        }
        for &peer in running.iter().filter(|&&p| p != id) {
            match status.member(peer) {
                None => return Some(format!("node {} does not know node {} yet", id.0, peer.0)),
                Some(m) if m.status != "Up" => {
                    return Some(format!("node {} sees node {} {}", id.0, peer.0, m.status));
                }
                Some(m) if !m.up => {
                    return Some(format!("node {} sees node {} down", id.0, peer.0));
                }
                Some(_) => {}
            }
        }
        match digest {
            None => digest = Some((id, status.ring_digest)),
            Some((first, d)) if d != status.ring_digest => {
                return Some(format!(
                    "nodes {} and {} have different rings",
                    first.0, id.0
                ));
            }
            Some(_) => {}
        }
    }
    None
}

impl Cluster {
    /// Every running node's `/status` (or why it did not answer).
    pub fn statuses(&mut self) -> BTreeMap<NodeId, Result<NodeStatus, HttpClientError>> {
        let running = self.running_ids();
        running
            .into_iter()
            .filter_map(|id| {
                let addr = self.file.node(id)?.http_addr;
                Some((id, self.client.status(addr)))
            })
            .collect()
    }

    /// Waits until the running nodes agree on a ring holding every node of the cluster and see
    /// each other up (see [`readiness_problem`]). Returns how long it took.
    pub fn wait_ready(&mut self) -> Result<Duration, ClusterError> {
        let start = Instant::now();
        let deadline = start + self.ready_timeout;
        loop {
            self.check_alive()?;
            let running = self.running_ids();
            let statuses = self.statuses();
            let problem = readiness_problem(&running, &statuses, self.file.nodes.len());
            match problem {
                None => return Ok(start.elapsed()),
                Some(problem) if Instant::now() >= deadline => {
                    return Err(ClusterError::Timeout {
                        goal: "the cluster to converge",
                        waited: start.elapsed(),
                        problem,
                    });
                }
                Some(_) => std::thread::sleep(POLL_INTERVAL),
            }
        }
    }

    /// Polls `condition` until it returns `Ok(None)` or `timeout` passes; `Ok(Some(problem))`
    /// means "not yet", with what is missing.
    pub fn wait_for(
        &mut self,
        goal: &'static str,
        timeout: Duration,
        mut condition: impl FnMut(&mut Cluster) -> Result<Option<String>, ClusterError>,
    ) -> Result<Duration, ClusterError> {
        let start = Instant::now();
        loop {
            match condition(self)? {
                None => return Ok(start.elapsed()),
                Some(problem) if start.elapsed() >= timeout => {
                    return Err(ClusterError::Timeout {
                        goal,
                        waited: start.elapsed(),
                        problem,
                    });
                }
                Some(_) => std::thread::sleep(POLL_INTERVAL),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::{MemberView, RingView};

    fn status(id: u64, digest: u64, ring_nodes: u64, peers: &[(u64, &str, bool)]) -> NodeStatus {
        NodeStatus {
            id,
            status: "Up".into(),
            ring_digest: digest,
            members: peers
                .iter()
                .map(|&(id, status, up)| MemberView {
                    id,
                    addr: String::new(),
                    status: status.into(),
                    up,
                    phi: 0.0,
                })
                .collect(),
            ring: RingView {
                nodes: ring_nodes,
                ownership: BTreeMap::new(),
            },
            ..NodeStatus::default()
        }
    }

    #[test]
    fn readiness_needs_agreement_and_mutual_liveness() {
        // Goal: `up` waits until every node sees every other up and all rings are equal.
        let all = [(1, "Up", true), (2, "Up", true)];
        let running = [NodeId(1), NodeId(2)];
        let mut statuses = BTreeMap::new();
        statuses.insert(NodeId(1), Ok(status(1, 7, 2, &all)));
        statuses.insert(NodeId(2), Ok(status(2, 7, 2, &all)));
        assert_eq!(readiness_problem(&running, &statuses, 2), None);
        // A different digest.
        statuses.insert(NodeId(2), Ok(status(2, 8, 2, &all)));
        assert!(
            readiness_problem(&running, &statuses, 2)
                .unwrap()
                .contains("different rings")
        );
        // A peer judged down.
        statuses.insert(NodeId(2), Ok(status(2, 7, 2, &[(1, "Up", false)])));
        assert!(
            readiness_problem(&running, &statuses, 2)
                .unwrap()
                .contains("down")
        );
        // A ring that misses a node (e.g. the killed node 3 is still a member).
        statuses.insert(NodeId(2), Ok(status(2, 7, 2, &all)));
        assert!(
            readiness_problem(&running, &statuses, 3)
                .unwrap()
                .contains("of 3 nodes")
        );
        // A node that does not answer.
        statuses.insert(
            NodeId(2),
            Err(HttpClientError::BadResponse {
                addr: "127.0.0.1:1".parse().unwrap(),
                what: "x".into(),
            }),
        );
        assert!(
            readiness_problem(&running, &statuses, 2)
                .unwrap()
                .contains("does not answer")
        );
    }
}
