//! Making a cluster's directory: the CA and node certificates, each node's config file, free
//! ports, and `up`, which starts the nodes and waits until they agree on the ring.

use super::*;

/// Starts a new cluster as `options` says, or restarts the stopped cluster already in
/// `options.dir` (keeping its data; the node count and quorums are then the existing ones).
/// Returns once the cluster has converged; on failure the nodes it started are stopped again.
pub fn up(options: &UpOptions) -> Result<Cluster, ClusterError> {
    if ClusterFile::exists_in(&options.dir) {
        let mut cluster = Cluster::open(&options.dir)?;
        cluster.ready_timeout = options.ready_timeout;
        let running = cluster.running_ids();
        if !running.is_empty() {
            return Err(ClusterError::AlreadyRunning {
                dir: options.dir.clone(),
                running,
            });
        }
        if let Some(binary) = &options.binary {
            cluster.file.binary = Some(binary.clone());
        }
        for id in cluster.file.ids() {
            cluster.start(id)?;
        }
        if let Err(e) = cluster.wait_ready() {
            let _ = cluster.down();
            return Err(e);
        }
        return Ok(cluster);
    }
    let dir = prepare_dir(options)?;
    let binary = match &options.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().map_err(ClusterError::NoBinary)?,
    };
    let mut node_config = options.node_config.clone();
    node_config.n = options.n;
    node_config.r = options.r;
    node_config.w = options.w;
    node_config.validate()?;

    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let ca = ClusterCa::generate()?;
    ca.save(&ca_cert, &ca_key)?;

    let ports = allocate_ports(options.nodes)?;
    let entries: Vec<NodeEntry> = ports
        .iter()
        .enumerate()
        .map(|(i, &(peer_addr, http_addr))| {
            node_entry(&dir, NodeId(i as u64 + 1), peer_addr, http_addr)
        })
        .collect();
    for entry in &entries {
        let seeds: Vec<&NodeEntry> = entries.iter().filter(|e| e.id != entry.id).collect();
        write_node_files(&ca, &ca_cert, entry, &seeds, &node_config, None)?;
    }
    let file = ClusterFile {
        n: options.n,
        r: options.r,
        w: options.w,
        ca_cert,
        ca_key,
        nodes: entries,
        removed: Vec::new(),
        binary: Some(binary),
    };
    // Saved before any process starts, so that `cluster down` can clean up after a failure.
    file.save(&dir)?;
    let mut cluster = Cluster {
        dir,
        file,
        client: HttpClient::new(),
        children: BTreeMap::new(),
        ready_timeout: options.ready_timeout,
        leave_timeout: DEFAULT_LEAVE_TIMEOUT,
    };
    let started = cluster
        .file
        .ids()
        .into_iter()
        .try_for_each(|id| cluster.start(id));
    if let Err(e) = started.and_then(|()| cluster.wait_ready().map(|_| ())) {
        let _ = cluster.down();
        return Err(e);
    }
    Ok(cluster)
}

/// Checks the options and makes the (empty) cluster directory; returns its absolute path.
pub(super) fn prepare_dir(options: &UpOptions) -> Result<PathBuf, ClusterError> {
    if options.nodes == 0 || options.nodes > MAX_NODES {
        return Err(ClusterError::BadNodeCount(options.nodes));
    }
    if usize::from(options.n) > options.nodes {
        return Err(ClusterError::NTooLarge {
            n: options.n,
            nodes: options.nodes,
        });
    }
    let io = |action, source| ClusterError::Io {
        action,
        path: options.dir.clone(),
        source,
    };
    if options.dir.exists() {
        let mut listing = std::fs::read_dir(&options.dir).map_err(|e| io("read", e))?;
        if listing.next().is_some() {
            return Err(ClusterError::DirNotEmpty(options.dir.clone()));
        }
    }
    std::fs::create_dir_all(&options.dir).map_err(|e| io("create", e))?;
    std::fs::canonicalize(&options.dir).map_err(|e| io("resolve", e))
}

/// The entry of node `id` laid out under `dir`.
pub(super) fn node_entry(
    dir: &Path,
    id: NodeId,
    peer_addr: SocketAddr,
    http_addr: SocketAddr,
) -> NodeEntry {
    let node_dir = dir.join(format!("n{}", id.0));
    NodeEntry {
        id,
        pid: None,
        http_addr,
        peer_addr,
        config: node_dir.join("node.toml"),
        log: node_dir.join("node.log"),
        data_dir: node_dir,
    }
}

/// Runtime worker threads for each of `nodes` node processes sharing this machine: its cores
/// divided among them, at least one each.
pub(super) fn shared_machine_io_threads(nodes: usize) -> std::num::NonZeroUsize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    std::num::NonZeroUsize::new(cores / nodes.max(1)).unwrap_or(std::num::NonZeroUsize::MIN)
}

/// Writes a node's directory, certificate and config file.
pub(super) fn write_node_files(
    ca: &ClusterCa,
    ca_cert: &Path,
    entry: &NodeEntry,
    seeds: &[&NodeEntry],
    node_config: &NodeConfig,
    template: Option<&NodeFileConfig>,
) -> Result<(), ClusterError> {
    std::fs::create_dir_all(&entry.data_dir).map_err(|source| ClusterError::Io {
        action: "create",
        path: entry.data_dir.clone(),
        source,
    })?;
    let cert = entry.data_dir.join("node.pem");
    let key = entry.data_dir.join("node.key");
    ca.issue_node_cert(entry.id)?.save(&cert, &key)?;
    let config = NodeFileConfig {
        id: entry.id,
        data_dir: entry.data_dir.clone(),
        peer_addr: entry.peer_addr,
        http_addr: entry.http_addr,
        zone: template.and_then(|t| t.zone.clone()),
        seed: None,
        sync: template.map(|t| t.sync).unwrap_or_default(),
        io_threads: template
            .and_then(|t| t.io_threads)
            .or_else(|| Some(shared_machine_io_threads(seeds.len() + 1))),
        tls: TlsFiles {
            ca_cert: ca_cert.to_path_buf(),
            cert,
            key,
        },
        seeds: seeds
            .iter()
            .map(|s| SeedPeer {
                id: s.id,
                addr: s.peer_addr,
            })
            .collect(),
        node: node_config.clone(),
    };
    std::fs::write(&entry.config, config.to_toml()?).map_err(|source| ClusterError::Io {
        action: "write",
        path: entry.config.clone(),
        source,
    })
}

/// One pair of free loopback ports (UDP for QUIC, TCP for HTTP), released for the node.
pub(super) fn free_port_pair() -> Result<(SocketAddr, SocketAddr), ClusterError> {
    let io = |source| ClusterError::Io {
        action: "bind a free port on",
        path: PathBuf::from("127.0.0.1"),
        source,
    };
    let udp = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    let tcp = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok((udp.local_addr().map_err(io)?, tcp.local_addr().map_err(io)?))
}

/// Finds `count` pairs of free loopback ports (UDP for QUIC peers, TCP for HTTP). All sockets
/// are held until every port is chosen, so the pairs are distinct, then released for the nodes.
pub(super) fn allocate_ports(count: usize) -> Result<Vec<(SocketAddr, SocketAddr)>, ClusterError> {
    let io = |source| ClusterError::Io {
        action: "bind a free port on",
        path: PathBuf::from("127.0.0.1"),
        source,
    };
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let udp = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
        let tcp = TcpListener::bind("127.0.0.1:0").map_err(io)?;
        held.push((udp, tcp));
    }
    held.iter()
        .map(|(udp, tcp)| Ok((udp.local_addr().map_err(io)?, tcp.local_addr().map_err(io)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_refuses_bad_options_before_touching_disk() {
        // Goal: impossible options are clear errors, and nothing is created for them.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c");
        let mut options = UpOptions::new(&target);
        options.nodes = 0;
        assert!(matches!(up(&options), Err(ClusterError::BadNodeCount(0))));
        options.nodes = 2;
        assert!(matches!(
            up(&options),
            Err(ClusterError::NTooLarge { n: 3, nodes: 2 })
        ));
        assert!(!target.exists());
        // A directory with other things in it is not taken over.
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("precious.txt"), "x").unwrap();
        options.nodes = 3;
        assert!(matches!(up(&options), Err(ClusterError::DirNotEmpty(_))));
    }

    #[test]
    fn free_ports_are_distinct() {
        // Goal: the ports handed to the nodes of one cluster never collide.
        let ports = allocate_ports(8).unwrap();
        let mut udp: Vec<u16> = ports.iter().map(|(p, _)| p.port()).collect();
        let mut tcp: Vec<u16> = ports.iter().map(|(_, h)| h.port()).collect();
        udp.sort();
        udp.dedup();
        tcp.sort();
        tcp.dedup();
        assert_eq!((udp.len(), tcp.len()), (8, 8));
        assert!(
            ports
                .iter()
                .all(|(p, h)| p.ip().is_loopback() && h.ip().is_loopback())
        );
    }
}
