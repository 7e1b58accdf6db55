//! Lab 5: a UDP server that answers every datagram.
//!
//! Your task, step by step, is in the handout: labs/udp/README.md.
//! Grade it with `cargo xtask grade lab5`.

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;

use clap::Parser;

/// A UDP server: logs every datagram and answers `Got your message!`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to bind to (loopback unless you choose otherwise).
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to bind to; 0 lets the operating system choose a free one.
    #[arg(default_value_t = 6667)]
    port: u16,
}

/// The receive buffer size (see "Datagrams have edges" in the handout).
const BUFFER: usize = 8192;

/// What every sender gets back.
const REPLY: &[u8] = b"Got your message!";

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

/// Binds a `UdpSocket` to `host:port`, prints `Listening on ADDR` with the
/// address the socket really got, then loops forever: `recv_from` into a
/// buffer of [`BUFFER`] bytes and call [`answer`] with what arrived and who
/// sent it.
///
/// Handout: "Step 1: the server binds" and "Step 2: receive, log, reply".
fn serve(host: &str, port: u16) -> io::Result<()> {
    todo!(
        "bind a UdpSocket to ({host}, {port}), print `Listening on` with its local_addr(), \
         then recv_from into a buffer of {BUFFER} bytes in a loop and call answer() for each datagram"
    )
}

/// Logs `Got message from PEER: b"…"` (the bytes shown with
/// `escape_ascii`) on `out`, then sends [`REPLY`] to `peer` with `send_to`.
/// Any bytes are fine, none at all too.
///
/// Handout: "Step 2: receive, log, reply" and "Zero bytes is a message".
#[allow(dead_code)] // until your serve() calls it
fn answer(
    socket: &UdpSocket,
    out: &mut impl Write,
    data: &[u8],
    peer: SocketAddr,
) -> io::Result<()> {
    todo!(
        "log the {} bytes from {peer} on {out:p}, then send {REPLY:?} back to {peer} from {socket:?}",
        data.len()
    )
}
