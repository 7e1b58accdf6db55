//! Lab 1: a TCP echo server that serves one client after another.
//!
//! Your task, step by step, is in the handout: labs/echo/README.md.
//! Grade it with `cargo xtask grade lab1`.

use std::io;
use std::net::TcpStream;
use std::process::ExitCode;

use clap::Parser;

/// An echo server: sends every byte back to the client that sent it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback unless you choose otherwise).
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 lets the operating system choose a free one.
    #[arg(default_value_t = 65432)]
    port: u16,
}

/// The most a single read asks for (see "Step 2" in the handout).
const CHUNK: usize = 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    match serve(&args.host, args.port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds to `host:port`, prints `Listening on ADDR` with the address the
/// listener really got, then accepts clients one after another: for each,
/// print `Connected by PEER`, call [`echo`], print `Disconnected PEER`. An
/// error of one client's `echo` (a reset) is that client's: report it and
/// go on with the next.
///
/// Handout: "Step 1: the server binds and listens" and "Step 3: one client
/// after another".
fn serve(host: &str, port: u16) -> io::Result<()> {
    todo!(
        "bind a TcpListener to ({host}, {port}), print `Listening on` with its local_addr(), \
         then accept clients in a loop and call echo() for each"
    )
}

/// Reads chunks of at most [`CHUNK`] bytes from the client and writes each
/// one back completely, until `read` returns 0 (the client closed).
///
/// Handout: "Step 2: the echo loop" and "Why write_all".
#[allow(dead_code)] // until your serve() calls it
fn echo(stream: TcpStream) -> io::Result<()> {
    todo!(
        "read up to {CHUNK} bytes at a time from {stream:?}; 0 bytes means the client closed; write_all each chunk back"
    )
}
