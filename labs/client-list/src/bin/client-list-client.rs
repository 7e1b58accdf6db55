//! Lab 6: registers a name with the client-list server and prints the list
//! it gets back.
//!
//! Your task, step by step, is in the handout: labs/client-list/README.md
//! ("Step 4: the client"). Grade it with `cargo xtask grade lab6`.

use std::io;
use std::process::ExitCode;

use clap::Parser;

/// Registers with a client-list server and prints every client it knows.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's address.
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// The server's port.
    #[arg(default_value_t = 5000)]
    port: u16,
    /// The name to register under.
    #[arg(long, default_value = "name")]
    name: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Calls [`register`], refuses an empty reply with an error, then prints the
/// list as JSON indented with four spaces, names in the order the server
/// sent them.
///
/// Handout: "Step 4: the client" and "Printing JSON in the server's order".
fn run(args: &Args) -> io::Result<()> {
    todo!(
        "register {:?}, then parse the reply into a serde_json::Map (preserve_order keeps the server's order) and pretty-print it with four spaces (PrettyFormatter::with_indent)",
        args.name
    )
}

/// Connects to `host:port`, writes the whole name, half-closes, and returns
/// every byte the server sends until it closes.
///
/// Handout: "Step 4: the client" and "Reading a reply to the end".
#[allow(dead_code)] // until your run() calls it
fn register(host: &str, port: u16, name: &[u8]) -> io::Result<Vec<u8>> {
    todo!(
        "connect to ({host}, {port}), write_all the {} name bytes, shutdown(Shutdown::Write), read_to_end",
        name.len()
    )
}
