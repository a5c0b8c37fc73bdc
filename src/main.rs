//! The `ringstore` command line.
//!
//! One subcommand per variant of [`Command`]; each variant's handler returns the process exit
//! code. `ringstore node --config FILE` runs a node (see `ringstore::runtime`); the client and
//! `cluster` commands are `ringstore::cli`'s.

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// glibc's malloc cost a node about a fifth of its CPU under YCSB-A (arena locking and
/// `malloc_consolidate` across the I/O threads); mimalloc's thread-local free lists do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ringstore: a leaderless, Dynamo-style key-value store.
#[derive(Debug, Parser)]
#[command(name = "ringstore", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand. Add new ones as variants here and arms in `main`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until SIGTERM or SIGINT.
    Node {
        /// The node's TOML config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The client and cluster commands.
    #[command(flatten)]
    Client(ringstore::cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Node { config } => {
            init_logging();
            ringstore::runtime::run_node(&config)
        }
        Command::Client(command) => ringstore::cli::run(command),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
