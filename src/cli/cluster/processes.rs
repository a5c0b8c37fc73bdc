//! The node processes: starting them detached, telling whether one still runs (its
//! `/proc/PID/cmdline` must name its config, so a reused pid is not mistaken for it),
//! signalling, waiting for them to exit, and reading their logs.

use super::*;

/// Whether the process `pid` is alive and runs the node whose config is `config`. A process
/// still exiting counts as alive: its command line is gone (the kernel drops its memory
/// first) but its sockets may not be closed yet, and a restart checking its ports at that
/// moment moved the node to new ones for nothing.
pub(super) fn pid_runs_config(pid: u32, config: &Path) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) if cmdline.is_empty() => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !process_has_exited(&stat)),
        Ok(cmdline) => {
            let wanted = config.as_os_str().as_encoded_bytes();
            cmdline.split(|&b| b == 0).any(|arg| arg == wanted)
        }
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => i32::try_from(pid).is_ok_and(|pid| kill(Pid::from_raw(pid), None).is_ok()),
    }
}

/// Whether a `/proc/PID/stat` line shows a process that has finished exiting (a zombie, or
/// dead), all its files closed. The state follows the command name, which may itself hold
/// spaces and parentheses, so it is read after the last `)`.
pub(super) fn process_has_exited(stat: &str) -> bool {
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    matches!(state, Some("Z" | "X" | "x") | None)
}

/// The last `lines` lines of a log file (or a note that it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

impl Cluster {
    /// Whether node `id`'s process is alive (reaping it if this handle started it and it exited).
    pub fn is_running(&mut self, id: NodeId) -> bool {
        let Some(entry) = self.file.node(id) else {
            return false;
        };
        let Some(pid) = entry.pid else {
            return false;
        };
        if let Some(child) = self.children.get_mut(&id)
            && child.id() == pid
        {
            match child.try_wait() {
                Ok(None) => return true,
                Ok(Some(_)) => {
                    self.children.remove(&id);
                    return false;
                }
                Err(_) => {}
            }
        }
        pid_runs_config(pid, &entry.config)
    }

    pub(super) fn binary(&self) -> Result<PathBuf, ClusterError> {
        match &self.file.binary {
            Some(binary) => Ok(binary.clone()),
            None => std::env::current_exe().map_err(ClusterError::NoBinary),
        }
    }

    /// Starts node `id`'s process (detached: own process group, output to its log) and records
    /// its pid. Does not wait for it to serve.
    pub fn start(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if self.is_running(id) {
            return Ok(());
        }
        let binary = self.binary()?;
        self.keep_ports_free(id)?;
        let entry = self.node(id)?.clone();
        let log_io = |source| ClusterError::Io {
            action: "open",
            path: entry.log.clone(),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&entry.log)
            .map_err(log_io)?;
        let log_err = log.try_clone().map_err(log_io)?;
        let child = Command::new(&binary)
            .arg("node")
            .arg("--config")
            .arg(&entry.config)
            .stdin(Stdio::null())
            // The log is a file: no terminal colour codes in it.
            .env("NO_COLOR", "1")
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(|source| ClusterError::Spawn {
                id,
                binary: binary.clone(),
                source,
            })?;
        let pid = child.id();
        self.children.insert(id, child);
        if let Some(entry) = self.file.node_mut(id) {
            entry.pid = Some(pid);
        }
        self.save()
    }

    /// Moves a stopped node to fresh ports if another process took one of its recorded ones
    /// meanwhile (it would fail with "address in use"): rewrites its `node.toml` and its
    /// `cluster.json` entry. Peers learn the new address from its gossip (a restart bumps its
    /// generation, which supersedes what they knew).
    pub(super) fn keep_ports_free(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let entry = self.node(id)?.clone();
        let taken = UdpSocket::bind(entry.peer_addr).is_err()
            || TcpListener::bind(entry.http_addr).is_err();
        if !taken {
            return Ok(());
        }
        let (peer_addr, http_addr) = free_port_pair()?;
        let mut config = NodeFileConfig::load(&entry.config)?;
        config.peer_addr = peer_addr;
        config.http_addr = http_addr;
        std::fs::write(&entry.config, config.to_toml()?).map_err(|source| ClusterError::Io {
            action: "write",
            path: entry.config.clone(),
            source,
        })?;
        tracing::info!(
            node = %id,
            old_peer = %entry.peer_addr,
            old_http = %entry.http_addr,
            %peer_addr,
            %http_addr,
            "a recorded port was taken by another process; the node moves to new ones"
        );
        if let Some(entry) = self.file.node_mut(id) {
            entry.peer_addr = peer_addr;
            entry.http_addr = http_addr;
        }
        self.save()
    }

    /// Fails with the node's log tail if a node that should run (it has a pid) has exited.
    pub(super) fn check_alive(&mut self) -> Result<(), ClusterError> {
        for id in self.file.ids() {
            let expected = self.file.node(id).is_some_and(|e| e.pid.is_some());
            if expected && !self.is_running(id) {
                let log = self.node(id)?.log.clone();
                if let Some(entry) = self.file.node_mut(id) {
                    entry.pid = None;
                }
                self.save()?;
                return Err(ClusterError::NodeExited {
                    id,
                    tail: log_tail(&log, LOG_TAIL_LINES),
                    log,
                });
            }
        }
        Ok(())
    }

    pub(super) fn signal(&mut self, id: NodeId, signal: Signal) -> Result<(), ClusterError> {
        let Some(pid) = self.node(id)?.pid else {
            return Ok(());
        };
        let raw = i32::try_from(pid).map_err(|_| ClusterError::Signal {
            id,
            pid,
            source: nix::Error::EINVAL,
        })?;
        match kill(Pid::from_raw(raw), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(ClusterError::Signal { id, pid, source }),
        }
    }

    /// Waits up to `timeout` for every node of `ids` to exit; returns those still running.
    pub(super) fn wait_exit(&mut self, ids: &[NodeId], timeout: Duration) -> Vec<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            let alive: Vec<NodeId> = ids
                .iter()
                .copied()
                .filter(|&id| self.is_running(id))
                .collect();
            if alive.is_empty() || Instant::now() >= deadline {
                return alive;
            }
            std::thread::sleep(POLL_INTERVAL / 2);
        }
    }

    /// Stops the nodes `ids`: SIGTERM, up to [`STOP_GRACE`] for a clean exit, then SIGKILL.
    pub(super) fn stop_nodes(
        &mut self,
        ids: &[NodeId],
    ) -> Result<Vec<(NodeId, StopOutcome)>, ClusterError> {
        let mut outcomes = Vec::new();
        let mut signalled = Vec::new();
        for &id in ids {
            if self.is_running(id) {
                self.signal(id, Signal::SIGTERM)?;
                signalled.push(id);
            } else {
                outcomes.push((id, StopOutcome::NotRunning));
            }
        }
        let stragglers = self.wait_exit(&signalled, STOP_GRACE);
        for &id in &stragglers {
            self.signal(id, Signal::SIGKILL)?;
        }
        let survivors = self.wait_exit(&stragglers, KILL_WAIT);
        for &id in &signalled {
            if survivors.contains(&id) {
                continue;
            }
            let outcome = if stragglers.contains(&id) {
                StopOutcome::Killed
            } else {
                StopOutcome::Terminated
            };
            outcomes.push((id, outcome));
            if let Some(entry) = self.file.node_mut(id) {
                entry.pid = None;
            }
        }
        self.save()?;
        if let Some(&id) = survivors.first() {
            let pid = self.node(id)?.pid.unwrap_or(0);
            return Err(ClusterError::Unkillable { id, pid });
        }
        outcomes.sort_by_key(|(id, _)| *id);
        Ok(outcomes)
    }

    /// `cluster down`: stops every node (SIGTERM, then SIGKILL for stragglers).
    pub fn down(&mut self) -> Result<Vec<(NodeId, StopOutcome)>, ClusterError> {
        let ids = self.file.ids();
        self.stop_nodes(&ids)
    }

    /// `cluster kill NODE`: SIGKILLs the node (a crash: no clean shutdown).
    pub fn kill(&mut self, id: NodeId) -> Result<(), ClusterError> {
        self.node(id)?;
        if !self.is_running(id) {
            return Err(ClusterError::NotRunning(id));
        }
        self.signal(id, Signal::SIGKILL)?;
        if !self.wait_exit(&[id], KILL_WAIT).is_empty() {
            let pid = self.node(id)?.pid.unwrap_or(0);
            return Err(ClusterError::Unkillable { id, pid });
        }
        if let Some(entry) = self.file.node_mut(id) {
            entry.pid = None;
        }
        self.save()
    }

    /// `cluster restart NODE`: stops the node if it runs (cleanly), starts it again with its
    /// data, and waits until the cluster has converged with it.
    pub fn restart(&mut self, id: NodeId) -> Result<Duration, ClusterError> {
        self.node(id)?;
        self.stop_nodes(&[id])?;
        self.start(id)?;
        self.wait_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A zombie or dead process has exited; a running or exiting one (R, S, D) has not, even
    // when its command name holds spaces and parentheses; an unreadable line means gone.
    #[test]
    fn exited_processes_are_told_from_exiting_ones() {
        assert!(process_has_exited("4242 (ringstore) Z 1 4242 4242 0 -1"));
        assert!(process_has_exited("4242 (ringstore) X 1"));
        assert!(!process_has_exited("4242 (ringstore) R 1 4242"));
        assert!(!process_has_exited("4242 (ringstore) D 1 4242"));
        assert!(!process_has_exited("4242 (a) Z (b)) S 1 4242"));
        assert!(process_has_exited("garbage"));
        // This test's own process is running.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        assert!(own.is_empty() || !process_has_exited(&own));
    }

    #[test]
    fn liveness_reads_the_command_line() {
        // Goal: a pid counts as our node only if its command line names the node's config, so
        // a reused pid (here: this test process) is not mistaken for a node.
        let me = std::process::id();
        assert!(!pid_runs_config(me, Path::new("/nonexistent/node.toml")));
        let cmdline = std::fs::read(format!("/proc/{me}/cmdline")).unwrap();
        let arg0 = cmdline.split(|&b| b == 0).next().unwrap();
        assert!(pid_runs_config(
            me,
            Path::new(std::str::from_utf8(arg0).unwrap())
        ));
    }
}
