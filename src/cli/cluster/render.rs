//! `cluster status`: what each node reports (liveness, ring, keys, hints) gathered into one
//! table, with each node's view of every other as one character.

use super::*;

/// Milliseconds from `at_ms` (since the Unix epoch) to now; 0 for a time in the future.
pub(super) fn ms_since(at_ms: u64) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    now_ms.saturating_sub(at_ms)
}

/// One node in `cluster status`.
#[derive(Clone, Debug)]
pub struct NodeReport {
    /// The node.
    pub id: NodeId,
    /// Its HTTP address.
    pub http_addr: SocketAddr,
    /// Whether its process is alive.
    pub running: bool,
    /// Its log file.
    pub log: PathBuf,
    /// Its `/status`, when it answered.
    pub status: Option<NodeStatus>,
    /// Why it did not answer, when it runs but did not.
    pub error: Option<String>,
}

/// A snapshot of the whole cluster for `cluster status`.
#[derive(Clone, Debug)]
pub struct ClusterStatus {
    /// Every node of `cluster.json`, in order.
    pub nodes: Vec<NodeReport>,
    /// `None` when the running nodes have converged (see [`readiness_problem`]).
    pub problem: Option<String>,
}

impl ClusterStatus {
    /// How `observer` sees `node`: `U` up, `D` down, `J`/`L` joining or leaving/left, `-`
    /// unknown to it, `?` observer not answering, `.` itself.
    pub(super) fn view_char(&self, observer: &NodeReport, node: NodeId) -> char {
        if observer.id == node {
            return '.';
        }
        let Some(status) = &observer.status else {
            return '?';
        };
        match status.member(node) {
            None => '-',
            Some(m) => match m.status.as_str() {
                "Up" if m.up => 'U',
                "Up" => 'D',
                "Joining" => 'J',
                _ => 'L',
            },
        }
    }

    /// The status as a table, one line per node, then whether the rings agree.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<5} {:<21} {:<8} {:<8} {:<w$} {:>6} {:>8} {:>6} {:>13}",
            "node",
            "http address",
            "process",
            "state",
            "seen by",
            "owns",
            "keys",
            "hints",
            "anti-entropy",
            w = self.nodes.len().max(7),
        );
        for node in &self.nodes {
            let views: String = self
                .nodes
                .iter()
                .map(|observer| self.view_char(observer, node.id))
                .collect();
            let process = if node.running { "running" } else { "stopped" };
            let state = match (&node.status, node.running) {
                (Some(s), _) => s.status.clone(),
                (None, true) => "no answer".to_string(),
                (None, false) => "-".to_string(),
            };
            // Ownership as this node computes it, or as the first answering node does.
            let owns = node
                .status
                .as_ref()
                .and_then(|s| s.ownership_of(node.id))
                .or_else(|| {
                    self.nodes
                        .iter()
                        .filter_map(|o| o.status.as_ref()?.ownership_of(node.id))
                        .next()
                })
                .map(|f| format!("{:.1}%", f * 100.0))
                .unwrap_or_else(|| "-".to_string());
            let (keys, hints, anti_entropy) = match &node.status {
                Some(s) => (
                    s.keys.to_string(),
                    s.hints_total().to_string(),
                    match s.last_anti_entropy_ms {
                        Some(at_ms) => format!("{:.1}s ago", ms_since(at_ms) as f64 / 1000.0),
                        None => "never".to_string(),
                    },
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "{:<5} {:<21} {:<8} {:<8} {:<w$} {:>6} {:>8} {:>6} {:>13}",
                format!("n{}", node.id.0),
                node.http_addr.to_string(),
                process,
                state,
                views,
                owns,
                keys,
                hints,
                anti_entropy,
                w = self.nodes.len().max(7),
            );
        }
        let _ = writeln!(
            out,
            "seen by: how each node (in the order above) sees this one: U up, D down, J joining, \
             L leaving/left, - unknown, ? not answering, . itself"
        );
        let stopped: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !n.running)
            .map(|n| format!("n{}", n.id.0))
            .collect();
        match &self.problem {
            None if stopped.is_empty() => {
                let _ = writeln!(out, "ring: converged (all nodes agree)");
            }
            None => {
                let _ = writeln!(
                    out,
                    "ring: converged among the running nodes ({} stopped)",
                    stopped.join(", ")
                );
            }
            Some(problem) => {
                let _ = writeln!(out, "ring: not converged: {problem}");
            }
        }
        for node in &self.nodes {
            if let Some(error) = &node.error {
                let _ = writeln!(out, "n{}: {error} (log: {})", node.id.0, node.log.display());
            }
        }
        out
    }
}

impl Cluster {
    /// `cluster status`: every node's view, for [`ClusterStatus::render`].
    pub fn status(&mut self) -> ClusterStatus {
        let running = self.running_ids();
        let statuses = self.statuses();
        let nodes = self
            .file
            .nodes
            .iter()
            .map(|entry| NodeReport {
                id: entry.id,
                http_addr: entry.http_addr,
                running: running.contains(&entry.id),
                log: entry.log.clone(),
                status: match statuses.get(&entry.id) {
                    Some(Ok(status)) => Some(status.clone()),
                    _ => None,
                },
                error: match statuses.get(&entry.id) {
                    Some(Err(e)) => Some(e.to_string()),
                    _ => None,
                },
            })
            .collect();
        ClusterStatus {
            nodes,
            problem: readiness_problem(&running, &statuses, self.file.nodes.len()),
        }
    }
}
