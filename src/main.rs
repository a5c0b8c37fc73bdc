//! The `ringstore` command line.

fn main() {
    println!("ringstore {}", env!("CARGO_PKG_VERSION"));
}
