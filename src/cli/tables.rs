//! `ringstore table ...` and `ringstore item ...`: tables and items through a node's HTTP API,
//! printing its JSON answers; and the [`HttpClient`] calls behind them (the end-to-end tests
//! use the same calls).
//!
//! Each command takes `--node ADDR` (one node's HTTP address) or `--dir DIR` (default
//! `./ringstore-cluster`: its running nodes' HTTP addresses, tried in order, moving on only
//! when a node cannot be reached; a write only when it surely never reached the node).
//!
//! # Guarantees
//! - Output is JSON on stdout (pretty-printed): a table description, a page of names, an
//!   item in DynamoDB JSON, a query page. `item get` of a missing item prints `null` and
//!   exits 3, like `get`.
//! - Bad arguments (a key attribute that is not `NAME:TYPE`, an item that is not JSON) are
//!   refused before anything is sent; what the node refuses is printed as `error: ...` with
//!   the node's kind and detail.

use super::cluster::{Cluster, DEFAULT_CLUSTER_DIR};
use super::http_client::{
    HttpClient, HttpClientError, KEY_ESCAPES, read_body, server_error, unreachable, with_fallback,
};
use super::{CliError, EXIT_NOT_FOUND};
use crate::http::attribute_json::JsonItem;
use crate::http::items::{DeletedBody, ItemCondition, QueryPageBody, ScanPageBody, UpdateItemBody};
use crate::http::tables::{
    CreateTableBody, KeyAttributeBody, KeySchemaBody, TableDescriptionBody, TableListBody,
    UpdateTableBody,
};
use clap::{Args, Subcommand};
use percent_encoding::percent_encode;
use ringstore_client::cluster_file::parse_http_addr;
use ringstore_core::item::{Item, KeyType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Which node a table or item command talks to (always over HTTP).
#[derive(Debug, Args)]
pub struct HttpTargetArgs {
    /// A node's HTTP address, like 127.0.0.1:8001.
    #[arg(long, value_name = "ADDR", value_parser = parse_http_addr, conflicts_with = "dir")]
    pub node: Option<SocketAddr>,
    /// A cluster directory: try its running nodes' HTTP addresses in order.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CLUSTER_DIR)]
    pub dir: PathBuf,
}

/// `ringstore table ...`.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create a table: `table create events --partition user:S --sort at:N`.
    Create(CreateTableArgs),
    /// List the tables, a page at a time.
    List(ListTablesArgs),
    /// Describe a table: its id, key schema, status (CREATING, ACTIVE), quorums.
    Describe(TableNameArgs),
    /// Change a table's R, W or tags.
    Update(UpdateTableArgs),
    /// Delete a table and its items.
    Delete(TableNameArgs),
}

/// `table create`.
#[derive(Debug, Args)]
pub struct CreateTableArgs {
    /// The table's name (3 to 255 of a-z A-Z 0-9 _ - .).
    pub name: String,
    /// The partition key, NAME:TYPE with TYPE S, N or B.
    #[arg(long, value_name = "NAME:TYPE", value_parser = parse_key_attribute)]
    pub partition: KeyAttributeBody,
    /// The sort key, NAME:TYPE.
    #[arg(long, value_name = "NAME:TYPE", value_parser = parse_key_attribute)]
    pub sort: Option<KeyAttributeBody>,
    /// The table's read quorum (default: the node's R).
    #[arg(short = 'r', long = "r")]
    pub r: Option<u8>,
    /// The table's write quorum (default: the node's W).
    #[arg(short = 'w', long = "w")]
    pub w: Option<u8>,
    /// A tag, NAME=VALUE (repeatable).
    #[arg(long = "tag", value_name = "NAME=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// `table list`.
#[derive(Debug, Args)]
pub struct ListTablesArgs {
    /// At most this many names (1 to 100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after this name (the previous page's `last`).
    #[arg(long)]
    pub start_after: Option<String>,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// A command about one table.
#[derive(Debug, Args)]
pub struct TableNameArgs {
    /// The table's name.
    pub name: String,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// `table update`.
#[derive(Debug, Args)]
pub struct UpdateTableArgs {
    /// The table's name.
    pub name: String,
    /// The new read quorum.
    #[arg(short = 'r', long = "r", conflicts_with = "default_r")]
    pub r: Option<u8>,
    /// The new write quorum.
    #[arg(short = 'w', long = "w", conflicts_with = "default_w")]
    pub w: Option<u8>,
    /// Reset the read quorum to the node's default.
    #[arg(long)]
    pub default_r: bool,
    /// Reset the write quorum to the node's default.
    #[arg(long)]
    pub default_w: bool,
    /// Replace every tag with these, NAME=VALUE (repeatable).
    #[arg(long = "tag", value_name = "NAME=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Remove every tag.
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// `ringstore item ...`.
#[derive(Debug, Subcommand)]
pub enum ItemCommand {
    /// Write an item given as DynamoDB JSON: `item put events '{"user": {"S": "u1"}, ...}'`.
    Put(PutItemArgs),
    /// Read the item of a key: `item get events u1 [SORT]`.
    Get(GetItemArgs),
    /// Change attributes of an item: `item update events u1 [SORT] '{"set": {...}}'`.
    Update(UpdateItemArgs),
    /// Delete the item of a key.
    Delete(DeleteItemArgs),
    /// Read a partition in sort-key order, a page at a time.
    Query(QueryArgs),
    /// Read a segment of the whole table, a page at a time: `item scan events [--segment 0
    /// --total-segments 4] [--limit 100]`.
    Scan(ScanArgs),
}

/// `item scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The table.
    pub table: String,
    /// Which segment (0-based).
    #[arg(long, default_value_t = 0)]
    pub segment: u32,
    /// How many segments the table is cut into.
    #[arg(long, default_value_t = 1)]
    pub total_segments: u32,
    /// At most this many items in the page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after this item's partition key (the previous page's `last.partition`).
    #[arg(long)]
    pub start_after: Option<String>,
    /// With --start-after: the item's sort key (`last.sort`).
    #[arg(long, requires = "start_after")]
    pub start_after_sort: Option<String>,
    /// Read a majority of each range's home replicas.
    #[arg(long)]
    pub consistent: bool,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// `item put`.
#[derive(Debug, Args)]
pub struct PutItemArgs {
    /// The table.
    pub table: String,
    /// The item, DynamoDB JSON (`-` reads it from stdin).
    pub item: String,
    /// Write only if no item has the key (create-once).
    #[arg(long)]
    pub if_not_exists: bool,
    /// Write quorum.
    #[arg(short = 'w', long = "w")]
    pub w: Option<u8>,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// An item's key on the command line.
#[derive(Debug, Args)]
pub struct ItemKeyArgs {
    /// The table.
    pub table: String,
    /// The partition key's value (numbers as text, binaries as base64url).
    pub partition: String,
    /// The sort key's value, when the table has one.
    pub sort: Option<String>,
}

/// `item get`.
#[derive(Debug, Args)]
pub struct GetItemArgs {
    #[command(flatten)]
    pub key: ItemKeyArgs,
    /// Read a majority of the key's home replicas.
    #[arg(long)]
    pub consistent: bool,
    /// Read quorum.
    #[arg(short = 'r', long = "r")]
    pub r: Option<u8>,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// `item update`.
#[derive(Debug, Args)]
pub struct UpdateItemArgs {
    /// The table.
    pub table: String,
    /// The partition key's value.
    pub partition: String,
    /// The sort key's value (omit for a table without one), then the update:
    /// `{"set": {"a": {"N": "1"}}, "remove": ["b"], "add": {...}, "delete": {...}}`.
    #[arg(num_args = 1..=2, required = true, value_name = "[SORT] UPDATE")]
    pub rest: Vec<String>,
    /// Update only an item that exists.
    #[arg(long)]
    pub if_exists: bool,
    /// Write quorum.
    #[arg(short = 'w', long = "w")]
    pub w: Option<u8>,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// `item delete`.
#[derive(Debug, Args)]
pub struct DeleteItemArgs {
    #[command(flatten)]
    pub key: ItemKeyArgs,
    /// Write quorum.
    #[arg(short = 'w', long = "w")]
    pub w: Option<u8>,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// `item query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The table.
    pub table: String,
    /// The partition key's value.
    pub partition: String,
    /// Smallest sort key (included).
    #[arg(long, conflicts_with = "begins_with")]
    pub from: Option<String>,
    /// Largest sort key (included).
    #[arg(long, conflicts_with = "begins_with")]
    pub to: Option<String>,
    /// Sort keys beginning with this.
    #[arg(long)]
    pub begins_with: Option<String>,
    /// Descending order.
    #[arg(long)]
    pub reverse: bool,
    /// At most this many items.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after this sort key (the previous page's `last`).
    #[arg(long)]
    pub start_after: Option<String>,
    /// Read a majority of the partition's home replicas.
    #[arg(long)]
    pub consistent: bool,
    /// Read quorum.
    #[arg(short = 'r', long = "r")]
    pub r: Option<u8>,
    #[command(flatten)]
    pub target: HttpTargetArgs,
}

/// A partition query's options, as [`HttpClient::query`] sends them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Smallest sort key (included).
    pub from: Option<String>,
    /// Largest sort key (included).
    pub to: Option<String>,
    /// Sort keys beginning with this.
    pub begins_with: Option<String>,
    /// Descending order.
    pub reverse: bool,
    /// At most this many items.
    pub limit: Option<u32>,
    /// Continue after this sort key.
    pub start_after: Option<String>,
    /// Read a majority of the home replicas.
    pub consistent: bool,
    /// Read quorum.
    pub r: Option<u8>,
}

/// A page of a partition query, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryPage {
    /// The items, in the query's order.
    pub items: Vec<Item>,
    /// How many items the page read.
    pub scanned: u32,
    /// The sort key to continue after, when more may follow.
    pub last: Option<String>,
}

/// Parses `NAME:TYPE` (TYPE `S`, `N` or `B`; the name may itself hold colons).
pub fn parse_key_attribute(text: &str) -> Result<KeyAttributeBody, String> {
    let usage = || format!("`{text}` is not NAME:TYPE with TYPE S, N or B (like user:S)");
    let (name, key_type) = text.rsplit_once(':').ok_or_else(usage)?;
    let key_type = match key_type {
        "S" | "s" => KeyType::S,
        "N" | "n" => KeyType::N,
        "B" | "b" => KeyType::B,
        _ => return Err(usage()),
    };
    if name.is_empty() {
        return Err(usage());
    }
    Ok(KeyAttributeBody {
        name: name.to_string(),
        key_type,
    })
}

/// Parses `NAME=VALUE`.
pub fn parse_tag(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))
}

/// Runs `ringstore table ...`.
pub fn run_table(command: TableCommand) -> Result<ExitCode, CliError> {
    let client = HttpClient::new();
    match command {
        TableCommand::Create(args) => {
            let body = CreateTableBody {
                name: args.name,
                key_schema: KeySchemaBody {
                    partition: args.partition,
                    sort: args.sort,
                },
                r: args.r,
                w: args.w,
                tags: args.tags.into_iter().collect(),
            };
            let answer = on_nodes(&args.target, false, |a| client.create_table(a, &body))?;
            print_json(&answer);
        }
        TableCommand::List(args) => {
            let start_after = args.start_after.as_deref();
            let answer = on_nodes(&args.target, true, |a| {
                client.list_tables(a, start_after, args.limit)
            })?;
            print_json(&answer);
        }
        TableCommand::Describe(args) => {
            let answer = on_nodes(&args.target, true, |a| client.describe_table(a, &args.name))?;
            print_json(&answer);
        }
        TableCommand::Update(args) => {
            let quorum = |value: Option<u8>, reset: bool| match (value, reset) {
                (Some(q), _) => Some(Some(q)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let tags = match (args.tags.is_empty(), args.clear_tags) {
                (false, _) => Some(args.tags.into_iter().collect()),
                (true, true) => Some(BTreeMap::new()),
                (true, false) => None,
            };
            let body = UpdateTableBody {
                r: quorum(args.r, args.default_r),
                w: quorum(args.w, args.default_w),
                tags,
            };
            let answer = on_nodes(&args.target, false, |a| {
                client.update_table(a, &args.name, &body)
            })?;
            print_json(&answer);
        }
        TableCommand::Delete(args) => {
            let answer = on_nodes(&args.target, false, |a| client.delete_table(a, &args.name))?;
            print_json(&answer);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `ringstore item ...`.
pub fn run_item(command: ItemCommand) -> Result<ExitCode, CliError> {
    let client = HttpClient::new();
    match command {
        ItemCommand::Put(args) => {
            let item = json_argument("the item", &args.item)?;
            let condition = args.if_not_exists.then_some(ItemCondition::NotExists);
            let written = on_nodes(&args.target, false, |a| {
                client.put_item(a, &args.table, &item, condition, args.w)
            })?;
            print_json(&written.map(JsonItem));
        }
        ItemCommand::Get(args) => {
            let key = &args.key;
            let item = on_nodes(&args.target, true, |a| {
                client.get_item(
                    a,
                    &key.table,
                    &key.partition,
                    key.sort.as_deref(),
                    args.consistent,
                    args.r,
                )
            })?;
            let found = item.is_some();
            print_json(&item.map(JsonItem));
            if !found {
                return Ok(ExitCode::from(EXIT_NOT_FOUND));
            }
        }
        ItemCommand::Update(args) => {
            let (sort, update) = match args.rest.as_slice() {
                [update] => (None, update),
                [sort, update] => (Some(sort.as_str()), update),
                _ => {
                    return Err(CliError::BadArgument {
                        what: "item update",
                        detail: "give [SORT] UPDATE".into(),
                    });
                }
            };
            let update = json_argument("the update", update)?;
            let body: UpdateItemBody =
                serde_json::from_value(update).map_err(|e| CliError::BadArgument {
                    what: "the update",
                    detail: e.to_string(),
                })?;
            let condition = args.if_exists.then_some(ItemCondition::Exists);
            let written = on_nodes(&args.target, false, |a| {
                client.update_item(
                    a,
                    &args.table,
                    &args.partition,
                    sort,
                    &body,
                    condition,
                    args.w,
                )
            })?;
            print_json(&written.map(JsonItem));
        }
        ItemCommand::Delete(args) => {
            let key = &args.key;
            let old = on_nodes(&args.target, false, |a| {
                client.delete_item(a, &key.table, &key.partition, key.sort.as_deref(), args.w)
            })?;
            print_json(&DeletedBody {
                old: old.map(JsonItem),
            });
        }
        ItemCommand::Query(args) => {
            let options = QueryOptions {
                from: args.from,
                to: args.to,
                begins_with: args.begins_with,
                reverse: args.reverse,
                limit: args.limit,
                start_after: args.start_after,
                consistent: args.consistent,
                r: args.r,
            };
            let page = on_nodes(&args.target, true, |a| {
                client.query(a, &args.table, &args.partition, &options)
            })?;
            print_json(&QueryPageBody {
                items: page.items.into_iter().map(JsonItem).collect(),
                scanned: page.scanned,
                last: page.last,
            });
        }
        ItemCommand::Scan(args) => {
            let page = on_nodes(&args.target, true, |a| client.scan(a, &args))?;
            print_json(&page);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `op` on the target node, or on the directory's nodes with fallback.
fn on_nodes<T>(
    target: &HttpTargetArgs,
    idempotent: bool,
    op: impl FnMut(SocketAddr) -> Result<T, HttpClientError>,
) -> Result<T, CliError> {
    let addrs = match target.node {
        Some(addr) => vec![addr],
        None => Cluster::open(&target.dir)?.client_addrs(),
    };
    Ok(with_fallback(&addrs, idempotent, op)?)
}

/// A JSON argument (`-` reads it from stdin).
fn json_argument(what: &'static str, text: &str) -> Result<serde_json::Value, CliError> {
    let text = if text == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(CliError::Stdin)?;
        text
    } else {
        text.to_string()
    };
    serde_json::from_str(&text).map_err(|e| CliError::BadArgument {
        what,
        detail: format!("not JSON: {e}"),
    })
}

/// Prints `value` as pretty JSON (a closed stdout is ignored).
fn print_json(value: &impl Serialize) {
    use std::io::Write as _;
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot print the answer: {e}");
        }
    }
}

/// `/tables/{table}` with the name percent-encoded, and what follows.
fn table_url(addr: SocketAddr, table: &str, rest: &str) -> String {
    format!(
        "http://{addr}/tables/{}{rest}",
        percent_encode(table.as_bytes(), KEY_ESCAPES)
    )
}

/// `/tables/{table}/items/{partition}[/{sort}]`.
fn item_url(addr: SocketAddr, table: &str, partition: &str, sort: Option<&str>) -> String {
    let mut rest = format!(
        "/items/{}",
        percent_encode(partition.as_bytes(), KEY_ESCAPES)
    );
    if let Some(sort) = sort {
        rest.push('/');
        rest.extend(percent_encode(sort.as_bytes(), KEY_ESCAPES));
    }
    table_url(addr, table, &rest)
}

/// A request body as JSON bytes (these types always serialize).
fn body_of(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl HttpClient {
    /// `POST /tables`.
    pub fn create_table(
        &self,
        addr: SocketAddr,
        body: &CreateTableBody,
    ) -> Result<TableDescriptionBody, HttpClientError> {
        let request = self.agent().post(&format!("http://{addr}/tables"));
        let response = request.send(body_of(body));
        self.answer(addr, response, &[201])
    }

    /// `GET /tables`.
    pub fn list_tables(
        &self,
        addr: SocketAddr,
        start_after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<TableListBody, HttpClientError> {
        let mut request = self.agent().get(&format!("http://{addr}/tables"));
        if let Some(start_after) = start_after {
            request = request.query("start_after", start_after);
        }
        if let Some(limit) = limit {
            request = request.query("limit", limit.to_string());
        }
        self.answer(addr, request.call(), &[200])
    }

    /// `GET /tables/{table}`.
    pub fn describe_table(
        &self,
        addr: SocketAddr,
        table: &str,
    ) -> Result<TableDescriptionBody, HttpClientError> {
        let response = self.agent().get(&table_url(addr, table, "")).call();
        self.answer(addr, response, &[200])
    }

    /// `PATCH /tables/{table}`.
    pub fn update_table(
        &self,
        addr: SocketAddr,
        table: &str,
        body: &UpdateTableBody,
    ) -> Result<TableDescriptionBody, HttpClientError> {
        let request = self.agent().patch(&table_url(addr, table, ""));
        self.answer(addr, request.send(body_of(body)), &[200])
    }

    /// `DELETE /tables/{table}`.
    pub fn delete_table(
        &self,
        addr: SocketAddr,
        table: &str,
    ) -> Result<TableDescriptionBody, HttpClientError> {
        let response = self.agent().delete(&table_url(addr, table, "")).call();
        self.answer(addr, response, &[200])
    }

    /// `PUT /tables/{table}/items`: writes `item` (DynamoDB JSON); returns the item written.
    pub fn put_item(
        &self,
        addr: SocketAddr,
        table: &str,
        item: &serde_json::Value,
        condition: Option<ItemCondition>,
        w: Option<u8>,
    ) -> Result<Option<Item>, HttpClientError> {
        let mut request = self.agent().put(&table_url(addr, table, "/items"));
        if let Some(condition) = condition {
            request = request.query("condition", condition.as_str());
        }
        if let Some(w) = w {
            request = request.query("w", w.to_string());
        }
        let written: Option<JsonItem> = self.answer(addr, request.send(body_of(item)), &[200])?;
        Ok(written.map(|item| item.0))
    }

    /// `GET /tables/{table}/items/{partition}[/{sort}]`: the item, or `None` when the table
    /// has no item with the key.
    pub fn get_item(
        &self,
        addr: SocketAddr,
        table: &str,
        partition: &str,
        sort: Option<&str>,
        consistent: bool,
        r: Option<u8>,
    ) -> Result<Option<Item>, HttpClientError> {
        let mut request = self.agent().get(&item_url(addr, table, partition, sort));
        if consistent {
            request = request.query("consistent", "true");
        }
        if let Some(r) = r {
            request = request.query("r", r.to_string());
        }
        match self.answer::<JsonItem>(addr, request.call(), &[200]) {
            Ok(item) => Ok(Some(item.0)),
            Err(HttpClientError::Server {
                status: 404, kind, ..
            }) if kind == "not_found" => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `PATCH /tables/{table}/items/{partition}[/{sort}]`: returns the item after the update.
    #[allow(clippy::too_many_arguments)]
    pub fn update_item(
        &self,
        addr: SocketAddr,
        table: &str,
        partition: &str,
        sort: Option<&str>,
        body: &UpdateItemBody,
        condition: Option<ItemCondition>,
        w: Option<u8>,
    ) -> Result<Option<Item>, HttpClientError> {
        let mut request = self.agent().patch(&item_url(addr, table, partition, sort));
        if let Some(condition) = condition {
            request = request.query("condition", condition.as_str());
        }
        if let Some(w) = w {
            request = request.query("w", w.to_string());
        }
        let written: Option<JsonItem> = self.answer(addr, request.send(body_of(body)), &[200])?;
        Ok(written.map(|item| item.0))
    }

    /// `DELETE /tables/{table}/items/{partition}[/{sort}]`: returns the item deleted, as the
    /// coordinator saw it.
    pub fn delete_item(
        &self,
        addr: SocketAddr,
        table: &str,
        partition: &str,
        sort: Option<&str>,
        w: Option<u8>,
    ) -> Result<Option<Item>, HttpClientError> {
        let mut request = self.agent().delete(&item_url(addr, table, partition, sort));
        if let Some(w) = w {
            request = request.query("w", w.to_string());
        }
        let deleted: DeletedBody = self.answer(addr, request.call(), &[200])?;
        Ok(deleted.old.map(|item| item.0))
    }

    /// `GET /tables/{table}/partitions/{partition}`: one page of the partition.
    pub fn query(
        &self,
        addr: SocketAddr,
        table: &str,
        partition: &str,
        options: &QueryOptions,
    ) -> Result<QueryPage, HttpClientError> {
        let rest = format!(
            "/partitions/{}",
            percent_encode(partition.as_bytes(), KEY_ESCAPES)
        );
        let mut request = self.agent().get(&table_url(addr, table, &rest));
        let texts = [
            ("from", &options.from),
            ("to", &options.to),
            ("begins_with", &options.begins_with),
            ("start_after", &options.start_after),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                request = request.query(name, value);
            }
        }
        if options.reverse {
            request = request.query("reverse", "true");
        }
        if options.consistent {
            request = request.query("consistent", "true");
        }
        if let Some(limit) = options.limit {
            request = request.query("limit", limit.to_string());
        }
        if let Some(r) = options.r {
            request = request.query("r", r.to_string());
        }
        let page: QueryPageBody = self.answer(addr, request.call(), &[200])?;
        Ok(QueryPage {
            items: page.items.into_iter().map(|item| item.0).collect(),
            scanned: page.scanned,
            last: page.last,
        })
    }

    /// `GET /tables/{table}/items`: one page of a scan.
    pub fn scan(&self, addr: SocketAddr, args: &ScanArgs) -> Result<ScanPageBody, HttpClientError> {
        let mut request = self
            .agent()
            .get(&table_url(addr, &args.table, "/items"))
            .query("segment", args.segment.to_string())
            .query("total_segments", args.total_segments.to_string());
        if let Some(limit) = args.limit {
            request = request.query("limit", limit.to_string());
        }
        if let Some(start) = &args.start_after {
            request = request.query("start_after", start);
        }
        if let Some(sort) = &args.start_after_sort {
            request = request.query("start_after_sort", sort);
        }
        if args.consistent {
            request = request.query("consistent", "true");
        }
        self.answer(addr, request.call(), &[200])
    }

    /// The JSON body of a response with one of the `expected` statuses, or the node's error.
    fn answer<T: DeserializeOwned>(
        &self,
        addr: SocketAddr,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        expected: &[u16],
    ) -> Result<T, HttpClientError> {
        let mut response = response.map_err(|e| unreachable(addr, e))?;
        if !expected.contains(&response.status().as_u16()) {
            return Err(server_error(addr, &mut response));
        }
        let body = read_body(addr, &mut response)?;
        serde_json::from_slice(&body).map_err(|e| HttpClientError::BadResponse {
            addr,
            what: format!("the body is not the expected JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Key attributes read as NAME:TYPE; anything else is refused naming the form.
    #[test]
    fn key_attributes_parse_as_name_colon_type() {
        let attribute = parse_key_attribute("user:S").unwrap();
        assert_eq!(
            (attribute.name.as_str(), attribute.key_type),
            ("user", KeyType::S)
        );
        let attribute = parse_key_attribute("a:b:n").unwrap();
        assert_eq!(
            (attribute.name.as_str(), attribute.key_type),
            ("a:b", KeyType::N)
        );
        for bad in ["user", "user:X", ":S", "user:BOOL"] {
            let error = parse_key_attribute(bad).unwrap_err();
            assert!(error.contains("NAME:TYPE"), "{error}");
        }
        assert_eq!(
            parse_tag("team=a=b").unwrap(),
            ("team".into(), "a=b".into())
        );
        assert!(parse_tag("team").is_err());
    }

    // Table names and key values are percent-encoded as one path segment each.
    #[test]
    fn item_urls_encode_each_segment() {
        let addr: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        assert_eq!(
            item_url(addr, "events", "u/1 x", Some("1E+5")),
            "http://127.0.0.1:8001/tables/events/items/u%2F1%20x/1E%2B5"
        );
        assert_eq!(
            item_url(addr, "t.1", "k", None),
            "http://127.0.0.1:8001/tables/t.1/items/k"
        );
    }
}
