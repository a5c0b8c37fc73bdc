//! Golden scripts of the node core (toyDB's goldenscripts, raft-rs's datadriven tests): each
//! file in `tests/golden/` is a list of commands run against a `harness::Cluster`, with the
//! output they must produce written under each block, every message between nodes included.
//! A changed behaviour shows as a diff; `UPDATE_GOLDENFILES=1 cargo test -p ringstore-core
//! --test golden` rewrites the files, to be read before they are committed.
//!
//! Commands (node ids as `1` or `n1`; durations as `500ms`, `3s`):
//! - `cluster nodes=N [n= r= w= vnodes= sync=group]`: starts nodes 1..=N and lets gossip
//!   settle for 3 s (not shown).
//! - `put NODE KEY VALUE [context=cK] [w=W]`, `overwrite NODE KEY VALUE`,
//!   `delete NODE KEY context=cK`, `get NODE KEY [r=R]`: a client request, named `cK` by the
//!   order it was made in; `context=cK` is the context request `cK` was answered with.
//!   Nothing runs until `deliver` or `tick`.
//! - `deliver [count]`: delivers queued messages (all of them, and what they cause, without
//!   moving time), printing each with its fate.
//! - `tick DURATION`: lets DURATION of virtual time pass, delivering everything meanwhile.
//! - `crash NODE [lose_disk=true]`, `restart NODE`, `isolate NODE`, `rejoin NODE`,
//!   `partition 1,2 3`, `heal`.
//! - `stored KEY`: each running node's version set of KEY.
//! - `table NODE NAME pk='NAME:TYPE' [sk='NAME:TYPE']`: CreateTable through NODE (types S, N, B);
//!   catalog messages are delivered but not printed, like gossip.
//! - `item put NODE TABLE ATTR='TYPE:VALUE'... [if=not_exists]`, `item set NODE TABLE PK [SK]
//!   ATTR='TYPE:VALUE'...` (UpdateItem setting constants), `item get NODE TABLE PK [SK]
//!   [consistent=true]`, `item delete NODE TABLE PK [SK]`, `query NODE TABLE PK`: item requests
//!   (keys typed by the table's schema). Item versions print as their attributes with the
//!   write stamp (ms, and `.logical` when the clock counted within one microsecond:
//!   `{at=1@3012 user=u1@3012} floor@3012`), row deletions as `⊥@ms`; item keys as `item:PK/SK`.
//! - `stored-item TABLE PK [SK]`: each running node's versions of that item.
//! - `status`: each node: up or down, keys, hints held, ring size.
//!
//! Gossip messages are delivered but not printed (they would bury the rest). Actors (random
//! per node start) print as `a`, `b`, … in order of first appearance, so a version reads
//! `a2` (actor a's second write); tombstones print as `⊥`.

use goldenscript::Command;
use ringstore_core::NodeId;
use ringstore_core::catalog::{TableRecord, TableSettings};
use ringstore_core::harness::{Cluster, Fate, Happening, fast_config};
use ringstore_core::item::update::{SetValue, UpdateOperand};
use ringstore_core::item::{
    AttributePath, AttributeValue, Condition, Item, ItemKey, ItemUpdate, KeySchema, KeyType,
    KeyValue, Number, PrimaryKey, StampedItem, UpdateAction,
};
use ringstore_core::node::ClientId;
use ringstore_core::protocol::{KeyVersions, PeerMessage};
use ringstore_core::request::{
    ClientOp, ClientReply, ClientRequest, ClientResult, ItemAction, ItemRequest, QueryRequest,
    TableRef, TableRequest,
};
use ringstore_core::store::{Store, SyncPolicy};
use ringstore_core::version::{ActorId, CausalContext, Value, VersionSet};
use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::time::Duration;

/// How long `cluster` lets gossip settle before the script goes on.
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Runner {
    cluster: Option<Cluster>,
    /// Contexts of the answered requests, by request number.
    contexts: BTreeMap<u64, CausalContext>,
    /// Short names of actors, in order of first appearance.
    actors: BTreeMap<ActorId, String>,
    /// Request numbers of the requests in flight, by client handle.
    requests: BTreeMap<ClientId, u64>,
    next_request: u64,
    /// Tables created by the script, by name.
    tables: BTreeMap<String, TableRecord>,
}

type Outcome = Result<String, Box<dyn Error>>;

impl goldenscript::Runner for Runner {
    type Command = Command;

    fn run(&mut self, command: &Command, _context: &goldenscript::Context) -> Outcome {
        let mut args = command.consume_args();
        let out = match command.name.as_str() {
            "cluster" => {
                let nodes: u64 = parse(args.take_key("nodes").unwrap_or("3"))?;
                let mut config = fast_config();
                if let Some(n) = args.take_key("n") {
                    config.n = parse(n)?;
                }
                if let Some(r) = args.take_key("r") {
                    config.r = parse(r)?;
                }
                if let Some(w) = args.take_key("w") {
                    config.w = parse(w)?;
                }
                if let Some(vnodes) = args.take_key("vnodes") {
                    config.vnodes = parse(vnodes)?;
                }
                let policy = match args.take_key("sync") {
                    None | Some("every_write") => SyncPolicy::EveryWrite,
                    Some("group") => SyncPolicy::Group {
                        max_delay_ms: 1,
                        max_writes: 1_000,
                    },
                    Some(other) => return Err(format!("sync={other}: every_write or group").into()),
                };
                args.reject_next()?;
                let mut cluster = Cluster::with_policy(nodes, config, policy)?;
                cluster.run_for(SETTLE);
                cluster.record();
                self.cluster = Some(cluster);
                self.status()?
            }
            "put" | "overwrite" | "delete" | "get" => {
                let node: NodeId = parse(args.next_pos().ok_or("a node")?)?;
                let key = args.next_pos().ok_or("a key")?;
                let context = match args.take_key("context") {
                    Some(name) => self.context(name)?,
                    None => CausalContext::empty(),
                };
                let mut request = match command.name.as_str() {
                    "put" => ClientRequest::put(key, args.next_pos().ok_or("a value")?, context),
                    "overwrite" => ClientRequest::overwrite(key, args.next_pos().ok_or("a value")?),
                    "delete" => ClientRequest::delete(key, context),
                    _ => ClientRequest::get(key),
                };
                request.w = args.take_key("w").map(parse).transpose()?;
                request.r = args.take_key("r").map(parse).transpose()?;
                args.reject_next()?;
                self.next_request += 1;
                let number = self.next_request;
                let id = self.cluster()?.submit(node, request.clone())?;
                self.requests.insert(id, number);
                let mut out = format!("c{number} → {node}: {}\n", self.request(&request));
                out += &self.happenings();
                out
            }
            "deliver" => {
                let count: Option<usize> = args.next_pos().map(parse).transpose()?;
                args.reject_next()?;
                let cluster = self.cluster()?;
                match count {
                    Some(count) => {
                        for _ in 0..count {
                            if cluster.deliver_next().is_none() {
                                break;
                            }
                        }
                    }
                    None => cluster.stabilize(),
                }
                self.happenings()
            }
            "tick" => {
                let d = humantime::parse_duration(args.next_pos().ok_or("a duration")?)?;
                args.reject_next()?;
                self.cluster()?.run_for(d);
                self.happenings()
            }
            "crash" => {
                let node: NodeId = parse(args.next_pos().ok_or("a node")?)?;
                let lose_disk = args.take_key("lose_disk").map(parse).transpose()?;
                args.reject_next()?;
                self.cluster()?.crash(node, lose_disk.unwrap_or(false))?;
                String::new()
            }
            "restart" => {
                let node: NodeId = parse(args.next_pos().ok_or("a node")?)?;
                args.reject_next()?;
                self.cluster()?.restart(node)?;
                String::new()
            }
            "isolate" | "rejoin" => {
                let node: NodeId = parse(args.next_pos().ok_or("a node")?)?;
                args.reject_next()?;
                let isolated = command.name == "isolate";
                self.cluster()?.isolate(node, isolated);
                String::new()
            }
            "partition" => {
                let mut sides = Vec::new();
                while let Some(side) = args.next_pos() {
                    let nodes: Result<Vec<NodeId>, _> = side.split(',').map(str::parse).collect();
                    sides.push(nodes?);
                }
                args.reject_next()?;
                self.cluster()?.partition(&sides);
                String::new()
            }
            "heal" => {
                args.reject_next()?;
                self.cluster()?.heal();
                String::new()
            }
            "stored" => {
                let key = args.next_pos().ok_or("a key")?;
                args.reject_next()?;
                let cluster = self.cluster.as_ref().ok_or("no cluster yet")?;
                let rows: Vec<(NodeId, Option<VersionSet>)> = cluster
                    .nodes()
                    .map(|(id, node)| (id, node.store().get(key.as_bytes()).ok().flatten()))
                    .collect();
                let mut out = String::new();
                for (id, set) in rows {
                    let shown = set.map_or("absent".to_string(), |set| self.versions(&set));
                    writeln!(out, "{id}: {shown}")?;
                }
                out
            }
            "status" => {
                args.reject_next()?;
                self.status()?
            }
            "table" => {
                let node: NodeId = parse(args.next_pos().ok_or("a node")?)?;
                let name = args.next_pos().ok_or("a table name")?;
                let key_attribute = |spec: &str| -> Result<(String, KeyType), Box<dyn Error>> {
                    let (name, ty) = spec.split_once(':').ok_or("NAME:TYPE")?;
                    let ty = match ty {
                        "S" => KeyType::S,
                        "N" => KeyType::N,
                        "B" => KeyType::B,
                        other => return Err(format!("key type {other}: S, N or B").into()),
                    };
                    Ok((name.to_string(), ty))
                };
                let (pk, pk_type) = key_attribute(args.take_key("pk").ok_or("pk=NAME:TYPE")?)?;
                let mut schema = KeySchema::partition_only(pk, pk_type);
                if let Some(sk) = args.take_key("sk") {
                    let (sk, sk_type) = key_attribute(sk)?;
                    schema = schema.with_sort(sk, sk_type);
                }
                args.reject_next()?;
                let request = ClientRequest::new(ClientOp::Table(TableRequest::Create {
                    name: name.to_string(),
                    schema,
                    settings: TableSettings::default(),
                }));
                self.submit(node, request)?
            }
            "item" | "query" => {
                let verb = if command.name == "query" {
                    "query"
                } else {
                    args.next_pos().ok_or("put, set, get or delete")?
                };
                let node: NodeId = parse(args.next_pos().ok_or("a node")?)?;
                let table = args.next_pos().ok_or("a table")?;
                let record = self
                    .tables
                    .get(table)
                    .cloned()
                    .ok_or_else(|| format!("table {table} was not created by this script"))?;
                let table_ref = TableRef {
                    name: record.name.clone(),
                    schema: record.schema.clone(),
                };
                let op = match verb {
                    "put" => {
                        let condition = match args.take_key("if") {
                            Some("not_exists") => Some(Condition::NotExists(
                                AttributePath::attribute_named(&record.schema.partition.name),
                            )),
                            Some(other) => return Err(format!("if={other}: not_exists").into()),
                            None => None,
                        };
                        let mut attributes = BTreeMap::new();
                        while let Some((name, value)) = args.next_key() {
                            attributes.insert(name.to_string(), attribute(value)?);
                        }
                        let item = Item::new(attributes)?;
                        let key = ItemKey {
                            table: record.id,
                            key: record.schema.key_of(&item)?,
                        };
                        let action = ItemAction::Put { item, condition };
                        ClientOp::Item(Box::new(ItemRequest {
                            table: table_ref,
                            key,
                            action,
                        }))
                    }
                    "set" | "get" | "delete" | "query" => {
                        let partition = key_value(
                            record.schema.partition.key_type,
                            args.next_pos().ok_or("a partition key")?,
                        )?;
                        let sort = match (&record.schema.sort, verb) {
                            (Some(sort), "set" | "get" | "delete") => Some(key_value(
                                sort.key_type,
                                args.next_pos().ok_or("a sort key")?,
                            )?),
                            _ => None,
                        };
                        let key = ItemKey {
                            table: record.id,
                            key: PrimaryKey {
                                partition: partition.clone(),
                                sort,
                            },
                        };
                        let consistent = args.take_key("consistent").map(parse).transpose()?;
                        let action = match verb {
                            "get" => ItemAction::Get {
                                consistent: consistent.unwrap_or(false),
                            },
                            "delete" => ItemAction::Delete { condition: None },
                            "set" => {
                                let mut actions = Vec::new();
                                while let Some((name, value)) = args.next_key() {
                                    actions.push(UpdateAction::Set {
                                        path: AttributePath::attribute_named(name),
                                        value: SetValue::Operand(UpdateOperand::Value(attribute(
                                            value,
                                        )?)),
                                    });
                                }
                                ItemAction::Update {
                                    update: ItemUpdate { actions },
                                    condition: None,
                                }
                            }
                            _ => {
                                args.reject_next()?;
                                let query = QueryRequest {
                                    table: table_ref,
                                    table_id: record.id,
                                    partition,
                                    sort: None,
                                    forward: true,
                                    limit: None,
                                    start_after: None,
                                    consistent: consistent.unwrap_or(false),
                                    filter: None,
                                };
                                let id = ClientOp::Query(Box::new(query));
                                return self.submit(node, ClientRequest::new(id));
                            }
                        };
                        ClientOp::Item(Box::new(ItemRequest {
                            table: table_ref,
                            key,
                            action,
                        }))
                    }
                    other => return Err(format!("item {other}: put, set, get or delete").into()),
                };
                args.reject_next()?;
                self.submit(node, ClientRequest::new(op))?
            }
            "stored-item" => {
                let table = args.next_pos().ok_or("a table")?;
                let record = self
                    .tables
                    .get(table)
                    .cloned()
                    .ok_or_else(|| format!("table {table} was not created by this script"))?;
                let partition = key_value(
                    record.schema.partition.key_type,
                    args.next_pos().ok_or("a partition key")?,
                )?;
                let sort = match &record.schema.sort {
                    Some(sort) => Some(key_value(
                        sort.key_type,
                        args.next_pos().ok_or("a sort key")?,
                    )?),
                    None => None,
                };
                args.reject_next()?;
                let key = ItemKey {
                    table: record.id,
                    key: PrimaryKey { partition, sort },
                }
                .encode();
                let cluster = self.cluster.as_ref().ok_or("no cluster yet")?;
                let rows: Vec<(NodeId, Option<VersionSet>)> = cluster
                    .nodes()
                    .map(|(id, node)| (id, node.store().get(&key).ok().flatten()))
                    .collect();
                let mut out = String::new();
                for (id, set) in rows {
                    let shown = set.map_or("absent".to_string(), |set| self.versions(&set));
                    writeln!(out, "{id}: {shown}")?;
                }
                out
            }
            other => return Err(format!("unknown command {other}").into()),
        };
        Ok(out)
    }
}

impl Runner {
    /// Submits a request through `node` and prints it and what it caused so far.
    fn submit(&mut self, node: NodeId, request: ClientRequest) -> Outcome {
        self.next_request += 1;
        let number = self.next_request;
        let id = self.cluster()?.submit(node, request.clone())?;
        self.requests.insert(id, number);
        let mut out = format!("c{number} → {node}: {}\n", self.request(&request));
        out += &self.happenings();
        Ok(out)
    }

    fn cluster(&mut self) -> Result<&mut Cluster, Box<dyn Error>> {
        self.cluster
            .as_mut()
            .ok_or_else(|| "no cluster yet: start with `cluster`".into())
    }

    fn context(&self, name: &str) -> Result<CausalContext, Box<dyn Error>> {
        let number: u64 = name
            .strip_prefix('c')
            .ok_or_else(|| format!("context={name}: name a request, like c1"))?
            .parse()?;
        self.contexts
            .get(&number)
            .cloned()
            .ok_or_else(|| format!("request {name} has no answer with a context yet").into())
    }

    fn status(&self) -> Outcome {
        let cluster = self.cluster.as_ref().ok_or("no cluster yet")?;
        let mut out = String::new();
        for (id, node) in cluster.nodes() {
            let hints: u64 = node.hints_pending().values().sum();
            let ring = node.ring().map_or(0, |ring| ring.node_count());
            writeln!(
                out,
                "{id}: {:?}, {} keys, {hints} hints, ring of {ring}",
                node.status(),
                node.store().key_count()
            )?;
        }
        Ok(out)
    }

    /// What happened since the last command, one line each; gossip left out.
    fn happenings(&mut self) -> String {
        let Some(cluster) = self.cluster.as_mut() else {
            return String::new();
        };
        let mut out = String::new();
        for happening in cluster.take_recording() {
            match happening {
                Happening::Message { envelope, fate } => {
                    if matches!(
                        envelope.message,
                        PeerMessage::Gossip { .. } | PeerMessage::Catalog { .. }
                    ) {
                        continue;
                    }
                    let fate = match fate {
                        Fate::Delivered => "",
                        Fate::ReceiverDown => "  (dropped: receiver down)",
                        Fate::Cut => "  (dropped: cut)",
                    };
                    let message = self.message(&envelope.message);
                    let _ = writeln!(out, "{} → {}: {message}{fate}", envelope.from, envelope.to);
                }
                Happening::Reply { node, id, result } => {
                    let number = self.requests.remove(&id).unwrap_or(0);
                    if let Ok(ClientReply::Written { context, .. }) = &result {
                        self.contexts.insert(number, context.clone());
                    }
                    if let Ok(ClientReply::Read(read)) = &result {
                        self.contexts.insert(number, read.context.clone());
                    }
                    if let Ok(ClientReply::Table(table)) = &result {
                        self.tables
                            .insert(table.record.name.clone(), table.record.clone());
                    }
                    let shown = self.result(&result);
                    let _ = writeln!(out, "c{number} ← {node}: {shown}");
                }
            }
        }
        out
    }

    fn actor(&mut self, actor: ActorId) -> String {
        let next = self.actors.len();
        self.actors
            .entry(actor)
            .or_insert_with(|| {
                let letter = char::from(b'a' + (next % 26) as u8);
                if next < 26 {
                    letter.to_string()
                } else {
                    format!("{letter}{}", next / 26)
                }
            })
            .clone()
    }

    fn versions(&mut self, set: &VersionSet) -> String {
        let mut live: Vec<String> = Vec::new();
        for (dot, value) in set.siblings() {
            let shown = match value {
                Value::Data(bytes) => match StampedItem::decode(bytes) {
                    Ok(item) => stamped(&item),
                    Err(_) => String::from_utf8_lossy(bytes).into_owned(),
                },
                Value::Tombstone => "⊥".to_string(),
                Value::ItemTombstone(stamp) => format!("⊥@{}", stamp_text(stamp)),
            };
            live.push(format!("{}{}={shown}", self.actor(dot.actor), dot.counter));
        }
        format!("[{}] seen {}", live.join(" "), self.vector(&set.context()))
    }

    fn vector(&mut self, context: &CausalContext) -> String {
        let entries: Vec<String> = context
            .entries()
            .iter()
            .map(|&(actor, counter)| format!("{}{counter}", self.actor(actor)))
            .collect();
        format!("{{{}}}", entries.join(" "))
    }

    fn item(&mut self, item: &KeyVersions) -> String {
        format!("{}={}", shown_key(&item.key), self.versions(&item.versions))
    }

    fn request(&mut self, request: &ClientRequest) -> String {
        let quorum = match (request.r, request.w) {
            (Some(r), _) => format!(" r={r}"),
            (_, Some(w)) => format!(" w={w}"),
            _ => String::new(),
        };
        let op = match &request.op {
            ClientOp::Get { key } => format!("get {}", String::from_utf8_lossy(key)),
            ClientOp::Put {
                key,
                value,
                context,
            } => format!(
                "put {}={} context {}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value),
                self.vector(context)
            ),
            ClientOp::Overwrite { key, value } => format!(
                "overwrite {}={}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value)
            ),
            ClientOp::Delete { key, context } => format!(
                "delete {} context {}",
                String::from_utf8_lossy(key),
                self.vector(context)
            ),
            ClientOp::Item(item) => {
                let key = key_text(&item.key.key);
                match &item.action {
                    ItemAction::Get { consistent } => {
                        format!(
                            "get item {key}{}",
                            if *consistent { " consistent" } else { "" }
                        )
                    }
                    ItemAction::Put {
                        item: new,
                        condition,
                    } => format!(
                        "put item {}{}",
                        item_text(new),
                        if condition.is_some() {
                            " if not exists"
                        } else {
                            ""
                        }
                    ),
                    ItemAction::Update { update, .. } => {
                        format!("update item {key} {} actions", update.actions.len())
                    }
                    ItemAction::Delete { .. } => format!("delete item {key}"),
                }
            }
            ClientOp::Table(TableRequest::Create { name, .. }) => format!("create table {name}"),
            ClientOp::Table(table) => format!("{table:?}"),
            ClientOp::Query(query) => format!("query {}", key_value_text(&query.partition)),
            ClientOp::Batch(batch) => format!("batch of {}", batch.items.len()),
            ClientOp::Scan(scan) => format!("scan {}/{}", scan.segment, scan.total_segments),
        };
        op + &quorum
    }

    fn result(&mut self, result: &ClientResult) -> String {
        match result {
            Ok(ClientReply::Written { context, version }) => format!(
                "written {}{} context {}",
                self.actor(version.actor),
                version.counter,
                self.vector(context)
            ),
            Ok(ClientReply::Item(item)) => match item {
                Some(item) => format!("item {}", item_text(item)),
                None => "no item".to_string(),
            },
            Ok(ClientReply::Items { items, last, .. }) => {
                let items: Vec<String> = items.iter().map(item_text).collect();
                format!("items [{}] last {last:?}", items.join(" "))
            }
            Ok(ClientReply::Batch(outcomes)) => format!("batch {outcomes:?}"),
            Ok(ClientReply::Table(table)) => {
                format!("table {} {:?}", table.record.name, table.status)
            }
            Ok(ClientReply::TableList { names, last }) => format!("tables {names:?} last {last:?}"),
            Ok(ClientReply::ItemWritten {
                old, new, stamp, ..
            }) => {
                let show = |i: &Option<Item>| i.as_ref().map_or("none".to_string(), item_text);
                format!(
                    "item written @{}: old {} new {}",
                    stamp_text(stamp),
                    show(old),
                    show(new)
                )
            }
            Ok(ClientReply::Read(read)) => {
                let values: Vec<String> = read
                    .values
                    .iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect();
                let deleted = if read.has_tombstones {
                    " (deleted)"
                } else {
                    ""
                };
                format!(
                    "read [{}]{deleted} context {}",
                    values.join(" "),
                    self.vector(&read.context)
                )
            }
            Err(e) => format!("error {}: {e}", e.kind()),
        }
    }

    fn message(&mut self, message: &PeerMessage) -> String {
        match message {
            PeerMessage::Forward { op, request } => {
                format!("Forward op={} {}", op.0, self.request(request))
            }
            PeerMessage::ForwardReply { op, result } => {
                format!("ForwardReply op={} {}", op.0, self.result(result))
            }
            PeerMessage::Replicate { op, item, hint_for } => {
                let hint = hint_for.map_or(String::new(), |owner| format!(" hint for {owner}"));
                format!("Replicate op={} {}{hint}", op.0, self.item(item))
            }
            PeerMessage::ReplicateAck { op, outcome } => {
                format!("ReplicateAck op={} {}", op.0, outcome_text(outcome))
            }
            PeerMessage::Read { op, key } => {
                format!("Read op={} {}", op.0, shown_key(key))
            }
            PeerMessage::ReadReply { op, outcome } => {
                let shown = match outcome {
                    Ok(Some(set)) => self.versions(set),
                    Ok(None) => "absent".to_string(),
                    Err(e) => format!("failed: {e:?}"),
                };
                format!("ReadReply op={} {shown}", op.0)
            }
            PeerMessage::Repair { item } => format!("Repair {}", self.item(item)),
            PeerMessage::HintDelivery { batch, hints } => {
                let shown: Vec<String> = hints
                    .iter()
                    .map(|(id, item)| format!("#{id} {}", self.item(item)))
                    .collect();
                format!("HintDelivery batch={} {}", batch.0, shown.join(", "))
            }
            PeerMessage::HintAck { batch, ids } => {
                format!("HintAck batch={} ids={ids:?}", batch.0)
            }
            PeerMessage::Transfer { batch, items } => {
                let shown: Vec<String> = items.iter().map(|item| self.item(item)).collect();
                format!("Transfer batch={} {}", batch.0, shown.join(", "))
            }
            PeerMessage::TransferAck { batch, outcome } => {
                format!("TransferAck batch={} {}", batch.0, outcome_text(outcome))
            }
            PeerMessage::TombstoneCheck { op, key, .. } => {
                format!(
                    "TombstoneCheck op={} {}",
                    op.0,
                    String::from_utf8_lossy(key)
                )
            }
            PeerMessage::TombstoneCheckReply { op, holds } => {
                format!("TombstoneCheckReply op={} holds={holds}", op.0)
            }
            PeerMessage::TombstonePurge { key, .. } => {
                format!("TombstonePurge {}", shown_key(key))
            }
            // Anti-entropy and gossip: the kind only; what they carry is tree hashes and
            // fingerprints, which say nothing read as text.
            other => format!("{other:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("?")
                .to_string(),
        }
    }
}

fn outcome_text<E: std::fmt::Debug>(outcome: &Result<(), E>) -> String {
    match outcome {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("failed: {e:?}"),
    }
}

/// A storage key as people read it: an item's as `item:PK/SK`, any other as its text.
fn shown_key(key: &[u8]) -> String {
    match ItemKey::decode(key) {
        Ok(item) => format!("item:{}", key_text(&item.key)),
        Err(_) => String::from_utf8_lossy(key).into_owned(),
    }
}

/// A write stamp: its time in ms, and its logical counter when that is not 0.
fn stamp_text(stamp: &ringstore_core::item::Stamp) -> String {
    match stamp.logical {
        0 => format!("{}", stamp.micros / 1000),
        logical => format!("{}.{logical}", stamp.micros / 1000),
    }
}

/// `TYPE:VALUE` as an attribute value (`S:x`, `N:1.5`, `BOOL:true`, `NULL:`).
fn attribute(text: &str) -> Result<AttributeValue, Box<dyn Error>> {
    let (ty, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: TYPE:VALUE"))?;
    Ok(match ty {
        "S" => AttributeValue::S(value.to_string()),
        "N" => AttributeValue::N(Number::parse(value)?),
        "B" => AttributeValue::B(value.as_bytes().to_vec()),
        "BOOL" => AttributeValue::Bool(parse(value)?),
        "NULL" => AttributeValue::Null,
        other => return Err(format!("attribute type {other}: S, N, B, BOOL or NULL").into()),
    })
}

fn key_value(ty: KeyType, text: &str) -> Result<KeyValue, Box<dyn Error>> {
    Ok(match ty {
        KeyType::S => KeyValue::S(text.to_string()),
        KeyType::N => KeyValue::N(Number::parse(text)?),
        KeyType::B => KeyValue::B(text.as_bytes().to_vec()),
    })
}

fn value_text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::B(b) => format!("b{:?}", String::from_utf8_lossy(b)),
        other => format!("{other:?}"),
    }
}

fn key_value_text(value: &KeyValue) -> String {
    value_text(&value.to_value())
}

fn key_text(key: &PrimaryKey) -> String {
    match &key.sort {
        Some(sort) => format!(
            "{}/{}",
            key_value_text(&key.partition),
            key_value_text(sort)
        ),
        None => key_value_text(&key.partition),
    }
}

fn item_text(item: &Item) -> String {
    let attributes: Vec<String> = item
        .attributes()
        .iter()
        .map(|(name, value)| format!("{name}={}", value_text(value)))
        .collect();
    format!("{{{}}}", attributes.join(" "))
}

/// A stored version of an item: each attribute with its stamp's ms, and the floor.
fn stamped(item: &StampedItem) -> String {
    let attributes: Vec<String> = item
        .attributes()
        .iter()
        .map(|(name, a)| {
            let value = a.value.as_ref().map_or("⊥".to_string(), value_text);
            format!("{name}={value}@{}", stamp_text(&a.stamp))
        })
        .collect();
    let floor = item.floor();
    if floor.micros == 0 {
        format!("{{{}}}", attributes.join(" "))
    } else {
        format!("{{{}}} floor@{}", attributes.join(" "), stamp_text(&floor))
    }
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, Box<dyn Error>>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| format!("`{text}`: {e}").into())
}

macro_rules! golden {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() -> std::io::Result<()> {
            let path = format!("tests/golden/{}", stringify!($name));
            goldenscript::run(&mut Runner::default(), path)
        }
    )*};
}

golden!(
    items,
    put_get,
    sloppy_quorum,
    read_repair,
    crash_and_restart,
    concurrent_writes
);
