//! Lab 5: a UDP client that gives up in time.
//!
//! Your task, step by step, is in the handout: labs/udp/README.md
//! ("Step 3: the client" and "Step 4: only the server's reply").
//! Grade it with `cargo xtask grade lab5`.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// Sends a message to a UDP server and prints its reply.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's address.
    host: String,
    /// The server's port.
    port: u16,
    /// What to send, as one datagram.
    message: String,
    /// How long to wait for the reply, in seconds (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = parse_timeout)]
    timeout: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match request(&args.host, args.port, args.message.as_bytes(), args.timeout) {
        Ok(Some((server, reply))) => {
            println!("Got reply from {server}: b\"{}\"", reply.escape_ascii());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("No connection between client and server");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--timeout`: a number of seconds above 0, such as `3` or `0.5`.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    // NaN compares false with everything, so it needs a test of its own.
    if seconds.is_nan() || seconds <= 0.0 {
        return Err("the timeout must be above 0 seconds".into());
    }
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("`{text}`: {err}"))
}

/// Resolves `host:port` to the server's address, binds a `UdpSocket` to
/// port 0 (any free port) of the unspecified address of the server's family
/// (`0.0.0.0:0`, or `[::]:0` for an IPv6 server), sends `message` as one
/// datagram with `send_to`, fixes the deadline `timeout` from now and calls
/// [`wait_for_reply`].
/// `Ok(None)` means no reply came in time.
///
/// Handout: "Step 3: the client" and "Why a UDP client needs a timeout".
fn request(
    host: &str,
    port: u16,
    message: &[u8],
    timeout: Duration,
) -> io::Result<Option<(SocketAddr, Vec<u8>)>> {
    todo!(
        "resolve ({host}, {port}), bind a UdpSocket to port 0 of the unspecified address of \
         the server's family, send_to the {} message bytes, then wait_for_reply() until \
         {timeout:?} from now",
        message.len()
    )
}

/// Receives with `recv_from` until a datagram comes from `server` (return
/// it with its sender) or `deadline` passes (return `None`). Datagrams from
/// any other address are ignored, and they do not move the deadline.
///
/// Handout: "Step 4: only the server's reply" and "Why a UDP client needs a
/// timeout" (`set_read_timeout`, and what a timed-out read returns).
#[allow(dead_code)] // until your request() calls it
fn wait_for_reply(
    socket: &UdpSocket,
    server: SocketAddr,
    deadline: Instant,
) -> io::Result<Option<(SocketAddr, Vec<u8>)>> {
    todo!("recv_from on {socket:?} until a datagram from {server} arrives or {deadline:?} passes")
}
