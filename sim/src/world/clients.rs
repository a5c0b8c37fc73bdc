//! The world's clients: each runs the workload (writes and reads of its keys), records every
//! operation in the oracle, and the staleness probe's write-then-read pairs.

use super::*;

/// What a client is doing.
pub(super) enum ClientState {
    Idle,
    /// Reading; `then` says what to write with the answer.
    Reading {
        key: u64,
        then: OpKind,
        issued: u64,
    },
    /// Writing write `id` of `key`.
    Writing {
        key: u64,
        id: u64,
    },
    /// Running an item operation (item workload).
    Item(item_clients::ItemCall),
}

pub(super) struct Client {
    pub(super) state: ClientState,
    /// The current operation's number (to ignore late answers after a timeout).
    pub(super) op: u64,
    /// The ClientId of the request in flight.
    pub(super) request: Option<ClientId>,
    /// Probe mode: the context and id of this client's last acknowledged write, and the
    /// cycles it has started.
    pub(super) probe: ProbeState,
}

/// A probing client's memory (workload probe mode).
#[derive(Default)]
pub(super) struct ProbeState {
    pub(super) context: CausalContext,
    pub(super) last_write: Option<u64>,
    pub(super) cycles: u64,
    pub(super) finished: bool,
}

/// The operation a client state stands for, for the per-operation failure counts.
/// A client's write, with what it supersedes.
pub(super) enum ClientWrite {
    /// A put after a read that returned the values `read` and `context` (a blind write: both
    /// empty).
    Put {
        read: Vec<u64>,
        context: CausalContext,
    },
    /// A delete after a read.
    Delete {
        read: Vec<u64>,
        context: CausalContext,
    },
    /// An overwrite: its coordinator decides what it supersedes.
    Overwrite,
}

pub(super) fn op_name(state: &ClientState) -> &'static str {
    match state {
        ClientState::Reading { .. } => "get",
        ClientState::Writing { .. } | ClientState::Idle => "put",
        ClientState::Item(call) => call.kind.name(),
    }
}

/// A name for a failure kind, for the report.
pub(super) fn failure_kind(e: &RequestError) -> String {
    match e {
        RequestError::Quorum { .. } => "quorum",
        RequestError::InvalidQuorum { .. } => "invalid quorum",
        RequestError::EmptyKey | RequestError::KeyTooLarge { .. } => "bad key",
        RequestError::ValueTooLarge { .. } => "value too large",
        RequestError::TooManySiblings { .. } => "too many siblings",
        RequestError::Overloaded { .. } => "overloaded",
        RequestError::NoReplicas => "no replicas",
        RequestError::Storage { .. } => "storage",
        // Item operations and reserved keys: the core's own label.
        other => other.kind(),
    }
    .to_string()
}

impl World {
    pub(super) fn client_next(&mut self, client: usize) {
        if !self.workload_running {
            return;
        }
        if self.scenario.workload.probe.is_some() {
            self.probe_write(client);
            return;
        }
        if self.scenario.workload.items.is_some() {
            self.item_next(client);
            return;
        }
        let workload = self.scenario.workload.clone();
        let kind = workload.next_op(&mut self.rng);
        let key = workload.next_key(&mut self.rng);
        self.clients[client].op += 1;
        match kind {
            OpKind::Get | OpKind::ReadModifyWrite | OpKind::Delete => {
                self.clients[client].state = ClientState::Reading {
                    key,
                    then: kind,
                    issued: self.now,
                };
                let mut request = ClientRequest::get(key_name(key));
                request.r = workload.r;
                self.send_request(client, request);
            }
            OpKind::BlindWrite => {
                let write = ClientWrite::Put {
                    read: Vec::new(),
                    context: CausalContext::empty(),
                };
                self.start_write(client, key, write);
            }
            OpKind::Overwrite => self.start_write(client, key, ClientWrite::Overwrite),
        }
        let op = self.clients[client].op;
        let timeout = micros(self.scenario.node.request_timeout) * 3;
        self.schedule(self.now + timeout, Event::ClientTimeout { client, op });
    }

    pub(super) fn start_write(&mut self, client: usize, key: u64, write: ClientWrite) {
        let id = self.next_write_id;
        self.next_write_id += 1;
        let workload = &self.scenario.workload;
        let value = || value_of(id, workload.value_bytes);
        let delete = matches!(write, ClientWrite::Delete { .. });
        let (mut request, supersedes) = match write {
            ClientWrite::Put { read, context } => (
                ClientRequest::put(key_name(key), value(), context),
                Supersedes::Read(read),
            ),
            ClientWrite::Delete { read, context } => (
                ClientRequest::delete(key_name(key), context),
                Supersedes::Read(read),
            ),
            ClientWrite::Overwrite => (
                ClientRequest::overwrite(key_name(key), value()),
                Supersedes::CoordinatorCopy,
            ),
        };
        request.w = workload.w;
        self.clients[client].state = ClientState::Writing { key, id };
        let via = self.send_request(client, request);
        self.oracle.issue_write(WriteRecord {
            id,
            key,
            delete,
            supersedes,
            issued_us: self.now,
            via,
        });
    }

    /// Sends a request to a random node; returns the node.
    pub(super) fn send_request(&mut self, client: usize, request: ClientRequest) -> NodeId {
        let id = ClientId(self.next_client_id);
        self.next_client_id += 1;
        let index = self.rng.random_range(0..self.nodes.len());
        let node = self.nodes[index].id;
        let incarnation = self.nodes[index].incarnation;
        self.clients[client].request = Some(id);
        self.in_flight.insert(id, client);
        let reads = match &request.op {
            ClientOp::Get { .. } => true,
            ClientOp::Item(item) => !item.action.is_write(),
            ClientOp::Query(_) => true,
            _ => false,
        };
        if !reads && let Some(key) = request.op.key() {
            let w = request.w.unwrap_or(self.scenario.node.w);
            self.acks_owed.insert(id, (key.to_vec(), w, self.now));
        }
        let delay = self.network.client_delay(&mut self.rng);
        self.schedule(
            self.now + delay,
            Event::Request {
                node,
                incarnation,
                id,
                request: Box::new(request),
            },
        );
        node
    }

    pub(super) fn on_reply(&mut self, id: ClientId, result: ClientResult) {
        self.acks_owed.remove(&id);
        if let Some((query, answer)) = self.final_query.as_mut()
            && *query == id
        {
            *answer = Some(result);
            return;
        }
        let Some(client) = self.in_flight.remove(&id) else {
            return;
        };
        self.clients[client].request = None;
        let state = std::mem::replace(&mut self.clients[client].state, ClientState::Idle);
        if let ClientState::Item(call) = state {
            self.on_item_reply(client, id, call, result);
            return;
        }
        match (state, result) {
            (ClientState::Reading { key, then, issued }, Ok(ClientReply::Read(read))) => {
                self.check_read(id, &read.context);
                *self.counters.ok.entry("get").or_default() += 1;
                let seen: Vec<u64> = read.values.iter().filter_map(|v| write_id_of(v)).collect();
                self.oracle.complete_read(ReadRecord {
                    key,
                    issued_us: issued,
                    completed_us: self.now,
                    seen: seen.clone(),
                    tombstones: read.has_tombstones,
                    context: read.context.clone(),
                });
                match then {
                    OpKind::ReadModifyWrite => {
                        let write = ClientWrite::Put {
                            read: seen,
                            context: read.context,
                        };
                        self.start_write(client, key, write);
                    }
                    OpKind::Delete if !read.values.is_empty() => {
                        let write = ClientWrite::Delete {
                            read: seen,
                            context: read.context,
                        };
                        self.start_write(client, key, write);
                    }
                    _ => self.client_done(client),
                }
            }
            (ClientState::Writing { key, id }, Ok(ClientReply::Written { version, context })) => {
                let kind = match self.oracle.pending_write(key, id) {
                    Some(w) if w.delete => "delete",
                    Some(w) if w.supersedes == Supersedes::CoordinatorCopy => "overwrite",
                    _ => "put",
                };
                *self.counters.ok.entry(kind).or_default() += 1;
                self.oracle
                    .ack_write(key, id, self.now, version, context.clone());
                if self.scenario.workload.probe.is_some() {
                    self.probe_acked(client, id, context);
                } else {
                    self.client_done(client);
                }
            }
            (state, Err(e)) => {
                self.forget_read(id);
                if let ClientState::Writing { key, id } = state {
                    self.oracle.fail_write(key, id, self.now);
                }
                *self.counters.failed.entry(failure_kind(&e)).or_default() += 1;
                *self.counters.failed_ops.entry(op_name(&state)).or_default() += 1;
                self.client_done(client);
            }
            (state, Ok(_)) => {
                if let ClientState::Writing { key, id } = state {
                    self.oracle.fail_write(key, id, self.now);
                }
                *self
                    .counters
                    .failed
                    .entry("mismatched reply".into())
                    .or_default() += 1;
                self.client_done(client);
            }
        }
    }

    // ----- the visibility probe (workload probe mode) -----

    /// Starts a probe cycle: the client writes its own key with the context of its last write,
    /// or finishes when it has run its cycles (and ends the workload once every client has).
    pub(super) fn probe_write(&mut self, client: usize) {
        let Some(probe) = self.scenario.workload.probe.as_ref() else {
            return;
        };
        let quota = probe.cycles_per_client;
        let state = &mut self.clients[client].probe;
        if state.cycles >= quota {
            state.finished = true;
            if self.clients.iter().all(|c| c.probe.finished) {
                self.end_of_workload_us = self.now;
                self.schedule(self.now, Event::EndOfWorkload);
            }
            return;
        }
        state.cycles += 1;
        let context = state.context.clone();
        let read: Vec<u64> = state.last_write.into_iter().collect();
        let key = client as u64 % self.scenario.workload.keys;
        self.clients[client].op += 1;
        self.start_write(client, key, ClientWrite::Put { read, context });
        self.schedule_timeout(client);
    }

    /// The probe's write was acknowledged: remember its context, read after the cycle's delay.
    pub(super) fn probe_acked(&mut self, client: usize, id: u64, context: CausalContext) {
        let state = &mut self.clients[client].probe;
        state.context = context;
        state.last_write = Some(id);
        let cycle = state.cycles;
        let delay = self
            .scenario
            .workload
            .probe
            .as_ref()
            .map_or(0, |p| p.delay_micros(client, cycle));
        self.clients[client].state = ClientState::Idle;
        self.schedule(self.now + delay, Event::ProbeRead { client });
    }

    /// The probe's read of its own key.
    pub(super) fn probe_read(&mut self, client: usize) {
        if !self.workload_running {
            return;
        }
        let key = client as u64 % self.scenario.workload.keys;
        self.clients[client].op += 1;
        self.clients[client].state = ClientState::Reading {
            key,
            then: OpKind::Get,
            issued: self.now,
        };
        let mut request = ClientRequest::get(key_name(key));
        request.r = self.scenario.workload.r;
        self.send_request(client, request);
        self.schedule_timeout(client);
    }

    pub(super) fn schedule_timeout(&mut self, client: usize) {
        let op = self.clients[client].op;
        let timeout = micros(self.scenario.node.request_timeout) * 3;
        self.schedule(self.now + timeout, Event::ClientTimeout { client, op });
    }

    pub(super) fn client_done(&mut self, client: usize) {
        self.clients[client].state = ClientState::Idle;
        if self.workload_running {
            let think = self.scenario.workload.think_micros(&mut self.rng);
            self.schedule(self.now + think, Event::ClientWake { client });
        }
    }

    // ----- checking -----
}
