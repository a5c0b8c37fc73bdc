//! The `ringstore` command line: the node process, the client commands, and local clusters.
//!
//! Every command's logic lives in the library (`ringstore::cli`, `ringstore::runtime`); this file
//! only parses the arguments and dispatches.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// ringstore: a leaderless, Dynamo-style key-value store.
#[derive(Debug, Parser)]
#[command(name = "ringstore", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Client(ringstore::cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Client(command) => ringstore::cli::run(command),
    }
}
