//! Lab 2: a server that reports a failed bind the classic way.
//!
//! Your task, step by step, is in the handout: labs/errors/README.md ("The
//! bind server"). Grade it with `cargo xtask grade lab2`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use clap::Parser;
use socket2::Socket;

/// Binds, listens, and logs every client that connects.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback unless you choose otherwise).
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 lets the operating system choose a free one.
    #[arg(default_value_t = 5555)]
    port: u16,
}

/// The exit code of a failed bind.
const BIND_FAILED: u8 = 15;

fn main() -> ExitCode {
    let args = Args::parse();
    let addr = match (args.host.as_str(), args.port).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => addr,
            None => {
                eprintln!("error: {} has no address", args.host);
                return ExitCode::FAILURE;
            }
        },
        Err(err) => {
            eprintln!("error: resolving {}: {err}", args.host);
            return ExitCode::FAILURE;
        }
    };
    let socket = match bind(addr) {
        Ok(socket) => socket,
        Err(Failed::Bind(err)) => {
            eprintln!(
                "Bind failed. Error code: {} Message: {}",
                err.raw_os_error().unwrap_or(0),
                os_message(&err)
            );
            return ExitCode::from(BIND_FAILED);
        }
        Err(Failed::Other(err)) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match serve(socket) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Why [`bind`] failed: the bind itself, or a step that rarely fails.
#[derive(Debug)]
#[allow(dead_code)] // until your bind() returns them
enum Failed {
    Bind(io::Error),
    Other(io::Error),
}

/// Creates a TCP socket for `addr`'s family with socket2, sets SO_REUSEADDR
/// on it, then binds it to `addr`. The bind's error is `Failed::Bind`; the
/// other steps' are `Failed::Other`.
///
/// Handout: "The bind server" and "SO_REUSEADDR and TIME_WAIT".
fn bind(addr: SocketAddr) -> Result<Socket, Failed> {
    todo!(
        "Socket::new(Domain::for_address({addr}), Type::STREAM, Some(Protocol::TCP)), \
         set_reuse_address(true), then bind"
    )
}

/// Prints `Socket bind complete`, listens, prints `Listening on ADDR` (the
/// address the socket really got) and flushes; then accepts clients forever,
/// printing `Connected with PEER` for each.
///
/// Handout: "The bind server".
fn serve(socket: Socket) -> io::Result<()> {
    todo!("listen on {socket:?}, announce it, then accept and log clients in a loop")
}

/// The operating system's text for `err` without Rust's `(os error N)`
/// suffix: the code is printed on its own already.
fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_owned(),
        None => text,
    }
}
