//! Lab 1: a TCP echo client.
//!
//! Your task, step by step, is in the handout: labs/echo/README.md
//! ("Step 4: the client"). Grade it with `cargo xtask grade lab1`.

use std::io;
use std::process::ExitCode;

use clap::Parser;

/// Sends a message to an echo server and prints what comes back.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's address.
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// The server's port.
    #[arg(default_value_t = 65432)]
    port: u16,
    /// What to send.
    #[arg(default_value = "Hello, world")]
    message: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match exchange(&args.host, args.port, args.message.as_bytes()) {
        Ok(reply) => {
            println!("Received b\"{}\"", reply.escape_ascii());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Connects to `host:port`, writes all of `message`, shuts down the sending
/// side, then reads until the server closes and returns every byte it sent.
///
/// Handout: "Step 4: the client", "The half-close" and "Why read returns
/// less than you asked".
fn exchange(host: &str, port: u16, message: &[u8]) -> io::Result<Vec<u8>> {
    todo!(
        "connect to ({host}, {port}), write_all the {} message bytes, shutdown(Shutdown::Write), \
         then read until end of stream",
        message.len()
    )
}
