//! `ringstore bench items`: the cost of table items on a live cluster: PutItem, GetItem and a
//! Query of a whole 100-item partition, each in a closed loop at each concurrency asked, through
//! any [`KvTarget`] (the native client in the CLI).
//!
//! The run creates its own table (`bench_items_<seed>`, partition key `p` S, sort key `s` N),
//! waits until every node answers it as Active, loads `partitions × 100` items, then measures
//! each operation in turn for `duration` at each concurrency: operations per second and
//! latency percentiles. The report also states what one query of 100 items costs in gets:
//! `gets per second / queries per second` at the same concurrency (below 10 means a query of
//! a partition is cheaper than ten single reads).
//!
//! # Guarantees
//! - Every failed operation is counted by its error kind; a phase with no success reports zero
//!   throughput rather than a made-up latency.
//! - Randomness (which partition, which item) flows from `seed`.

use crate::report::LatencySummary;
use hdrhistogram::Histogram;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringstore_client::{CallError, KvTarget};
use ringstore_core::NodeId;
use ringstore_core::catalog::{TableRecord, TableSettings};
use ringstore_core::item::{
    AttributeValue, Item, ItemKey, KeySchema, KeyType, KeyValue, Number, PrimaryKey,
};
use ringstore_core::request::{
    ClientOp, ClientReply, ClientRequest, ItemAction, ItemRequest, QueryRequest, TableRef,
    TableRequest, TableStatus,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Items in each partition: the query of the report reads one whole partition.
pub const ITEMS_PER_PARTITION: i64 = 100;

/// What `ringstore bench items` runs.
#[derive(Clone, Debug)]
pub struct ItemsOptions {
    /// Partitions loaded (each of [`ITEMS_PER_PARTITION`] items).
    pub partitions: u32,
    /// Bytes of the payload attribute of each item.
    pub value_bytes: usize,
    /// How long each operation is measured at each concurrency.
    pub duration: Duration,
    /// The concurrencies (closed-loop clients).
    pub concurrency: Vec<usize>,
    /// The operations measured, in this order, at each concurrency.
    pub operations: Vec<ItemOperation>,
    /// Seed of every random choice; also names the table.
    pub seed: u64,
}

/// One operation at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct ItemsPhase {
    /// `put_item`, `get_item` or `query_100`.
    pub operation: String,
    /// Closed-loop clients.
    pub clients: usize,
    /// Successful operations.
    pub ok: u64,
    /// Failed operations by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Latency percentiles of the successful operations, in µs (`None`: none succeeded).
    pub latency_us: Option<LatencySummary>,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct ItemsReport {
    /// The table the run created.
    pub table: String,
    /// Items loaded.
    pub items: u64,
    /// Every phase.
    pub phases: Vec<ItemsPhase>,
    /// Per concurrency: how many gets one query of a 100-item partition costs
    /// (get ops/s ÷ query ops/s).
    pub query_cost_in_gets: Vec<(usize, f64)>,
}

/// Why the run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    /// The options are unusable.
    #[error("invalid options: {0}")]
    Options(&'static str),
    /// The table could not be created or never became active.
    #[error("table setup failed: {0}")]
    Setup(String),
}

fn schema() -> KeySchema {
    KeySchema::partition_only("p", KeyType::S).with_sort("s", KeyType::N)
}

fn table_ref(record: &TableRecord) -> TableRef {
    TableRef {
        name: record.name.clone(),
        schema: record.schema.clone(),
    }
}

fn item_key(record: &TableRecord, partition: u32, sort: i64) -> ItemKey {
    ItemKey {
        table: record.id,
        key: PrimaryKey {
            partition: KeyValue::S(format!("part{partition}")),
            sort: Some(KeyValue::N(Number::from_i64(sort))),
        },
    }
}

fn item(partition: u32, sort: i64, value_bytes: usize) -> Option<Item> {
    let attributes = BTreeMap::from([
        (
            "p".to_string(),
            AttributeValue::S(format!("part{partition}")),
        ),
        ("s".to_string(), AttributeValue::N(Number::from_i64(sort))),
        ("v".to_string(), AttributeValue::B(vec![b'x'; value_bytes])),
    ]);
    Item::new(attributes).ok()
}

/// An operation `ringstore bench items` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ItemOperation {
    /// PutItem of a whole item.
    Put,
    /// GetItem, eventually consistent.
    Get,
    /// A Query of a whole 100-item partition.
    Query,
}

use ItemOperation as Operation;

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Put => "put_item",
            Operation::Get => "get_item",
            Operation::Query => "query_100",
        }
    }
}

fn request_for(
    operation: Operation,
    record: &TableRecord,
    partition: u32,
    sort: i64,
    value_bytes: usize,
) -> Option<ClientRequest> {
    let op = match operation {
        Operation::Put => ClientOp::Item(Box::new(ItemRequest {
            table: table_ref(record),
            key: item_key(record, partition, sort),
            action: ItemAction::Put {
                item: item(partition, sort, value_bytes)?,
                condition: None,
            },
        })),
        Operation::Get => ClientOp::Item(Box::new(ItemRequest {
            table: table_ref(record),
            key: item_key(record, partition, sort),
            action: ItemAction::Get { consistent: false },
        })),
        Operation::Query => ClientOp::Query(Box::new(QueryRequest {
            table: table_ref(record),
            table_id: record.id,
            partition: KeyValue::S(format!("part{partition}")),
            sort: None,
            forward: true,
            limit: None,
            start_after: None,
            consistent: false,
            filter: None,
        })),
    };
    Some(ClientRequest::new(op))
}

/// Whether a reply is the one the operation expects (a query must see its whole partition).
fn expected(operation: Operation, reply: &ClientReply) -> bool {
    match (operation, reply) {
        (Operation::Put, ClientReply::ItemWritten { .. }) => true,
        (Operation::Get, ClientReply::Item(Some(_))) => true,
        (Operation::Query, ClientReply::Items { items, .. }) => {
            items.len() as i64 == ITEMS_PER_PARTITION
        }
        _ => false,
    }
}

async fn table_call<T: KvTarget>(
    target: &T,
    node: NodeId,
    request: TableRequest,
) -> Result<ClientReply, String> {
    target
        .call(node, ClientRequest::new(ClientOp::Table(request)))
        .await
        .map_err(|e| e.to_string())
}

/// Creates the table and waits (at most 30 s) until every node describes it as Active.
async fn create_table<T: KvTarget>(target: &T, name: &str) -> Result<TableRecord, ItemsError> {
    let nodes = target.nodes();
    let first = *nodes
        .first()
        .ok_or(ItemsError::Options("the target has no node"))?;
    let create = TableRequest::Create {
        name: name.to_string(),
        schema: schema(),
        settings: TableSettings::default(),
    };
    let record = match table_call(target, first, create).await {
        Ok(ClientReply::Table(description)) => description.record,
        Ok(other) => return Err(ItemsError::Setup(format!("unexpected reply {other:?}"))),
        Err(e) => return Err(ItemsError::Setup(e)),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut active = 0;
        for &node in &nodes {
            let describe = TableRequest::Describe {
                name: name.to_string(),
            };
            if let Ok(ClientReply::Table(d)) = table_call(target, node, describe).await
                && d.status == TableStatus::Active
            {
                active += 1;
            }
        }
        if active == nodes.len() {
            return Ok(record);
        }
        if Instant::now() > deadline {
            return Err(ItemsError::Setup(format!(
                "{name} was active on {active} of {} nodes after 30 s",
                nodes.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Tally {
    histogram: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

/// Runs `operation` with `clients` closed-loop clients for `duration`.
async fn measure<T: KvTarget>(
    target: &T,
    record: &TableRecord,
    options: &ItemsOptions,
    operation: Operation,
    clients: usize,
    rng: &mut ChaCha8Rng,
) -> ItemsPhase {
    let tally = Arc::new(Mutex::new(Tally {
        histogram: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| {
            Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
        }),
        ok: 0,
        errors: BTreeMap::new(),
    }));
    let nodes = target.nodes();
    let start = Instant::now();
    let until = start + options.duration;
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let target = target.clone();
        let record = record.clone();
        let tally = Arc::clone(&tally);
        let nodes = nodes.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(rng.next_u64());
        let (partitions, value_bytes) = (options.partitions, options.value_bytes);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let partition = rng.random_range(0..partitions);
                let sort = rng.random_range(0..ITEMS_PER_PARTITION);
                let node = nodes[rng.random_range(0..nodes.len())];
                let Some(request) = request_for(operation, &record, partition, sort, value_bytes)
                else {
                    return;
                };
                let sent = Instant::now();
                let outcome = target.call(node, request).await;
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok(reply) if expected(operation, &reply) => {
                        tally.ok += 1;
                        let _ = tally.histogram.record(micros.max(1));
                    }
                    Ok(_) => *tally.errors.entry("unexpected_reply".into()).or_default() += 1,
                    Err(e) => *tally.errors.entry(error_kind(&e)).or_default() += 1,
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    ItemsPhase {
        operation: operation.name().to_string(),
        clients,
        ok: tally.ok,
        errors: tally.errors.clone(),
        ops_per_sec: tally.ok as f64 / elapsed,
        latency_us: LatencySummary::of(&tally.histogram),
    }
}

fn error_kind(e: &CallError) -> String {
    e.kind().to_string()
}

/// Runs the benchmark.
pub async fn run_items<T: KvTarget>(
    target: T,
    options: &ItemsOptions,
) -> Result<ItemsReport, ItemsError> {
    if options.partitions == 0 || options.concurrency.is_empty() {
        return Err(ItemsError::Options(
            "need at least one partition and one concurrency",
        ));
    }
    let name = format!("bench_items_{}", options.seed);
    let record = create_table(&target, &name).await?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    // The load: every item once, 64 at a time.
    let nodes = target.nodes();
    let mut loaded = 0u64;
    let all: Vec<(u32, i64)> = (0..options.partitions)
        .flat_map(|p| (0..ITEMS_PER_PARTITION).map(move |s| (p, s)))
        .collect();
    for chunk in all.chunks(64) {
        let mut calls = Vec::new();
        for &(partition, sort) in chunk {
            let node = nodes[rng.random_range(0..nodes.len())];
            let request = request_for(
                Operation::Put,
                &record,
                partition,
                sort,
                options.value_bytes,
            );
            let target = target.clone();
            calls.push(tokio::spawn(async move {
                match request {
                    Some(request) => target.call(node, request).await.is_ok(),
                    None => false,
                }
            }));
        }
        for call in calls {
            if matches!(call.await, Ok(true)) {
                loaded += 1;
            }
        }
    }
    let mut phases = Vec::new();
    let mut query_cost_in_gets = Vec::new();
    for &clients in &options.concurrency {
        let mut gets = None;
        let mut queries = None;
        for &operation in &options.operations {
            let phase = measure(&target, &record, options, operation, clients, &mut rng).await;
            match operation {
                Operation::Get => gets = Some(phase.ops_per_sec),
                Operation::Query => queries = Some(phase.ops_per_sec),
                Operation::Put => {}
            }
            phases.push(phase);
        }
        if let (Some(gets), Some(queries)) = (gets, queries)
            && queries > 0.0
        {
            query_cost_in_gets.push((clients, gets / queries));
        }
    }
    // The table goes: a benchmark leaves no data behind.
    let _ = table_call(
        &target,
        nodes[0],
        TableRequest::Delete { name: name.clone() },
    )
    .await;
    Ok(ItemsReport {
        table: name,
        items: loaded,
        phases,
        query_cost_in_gets,
    })
}

impl ItemsReport {
    /// The report as an aligned table.
    pub fn render(&self) -> String {
        let mut out = format!("table {} with {} items\n", self.table, self.items);
        out.push_str(&format!(
            "{:<10} {:>7} {:>10} {:>9} {:>9} {:>9}  errors\n",
            "operation", "clients", "ops/s", "p50 ms", "p99 ms", "max ms"
        ));
        let ms = |us: u64| us as f64 / 1000.0;
        for phase in &self.phases {
            let errors: Vec<String> = phase
                .errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let (p50, p99, max) = match &phase.latency_us {
                Some(l) => (ms(l.p50), ms(l.p99), ms(l.max)),
                None => (f64::NAN, f64::NAN, f64::NAN),
            };
            out.push_str(&format!(
                "{:<10} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2}  {}\n",
                phase.operation,
                phase.clients,
                phase.ops_per_sec,
                p50,
                p99,
                max,
                errors.join(" ")
            ));
        }
        for (clients, cost) in &self.query_cost_in_gets {
            out.push_str(&format!(
                "a query of {ITEMS_PER_PARTITION} items costs {cost:.2} gets at {clients} clients\n"
            ));
        }
        out
    }
}
