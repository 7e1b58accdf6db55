//! Lab 3: a client that opens many connections at once and drives them all
//! from one event loop.
//!
//! Your task, step by step, is in the handout: labs/multiconn/README.md.
//! Grade it with `cargo xtask grade lab3`.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mio::net::TcpStream;
use mio::{Interest, Poll, Token};

/// Opens NUM_CONNS connections to an echo server at once, sends two messages
/// on each, and checks every byte comes back.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's host.
    host: String,
    /// The server's port.
    port: u16,
    /// How many connections to open at the same time.
    num_conns: usize,
}

/// What every connection sends, in this order.
#[allow(dead_code)] // until start() uses it
const MESSAGES: [&[u8]; 2] = [b"Message 1 from client.", b"Message 2 from client."];

/// One connection's progress (handout: "Step 3: the client"). Add fields if
/// you need more.
#[allow(dead_code)] // until start() creates connections
#[derive(Debug)]
struct Connection {
    /// Its number in the log, from 1.
    number: usize,
    stream: TcpStream,
    /// Whether `connect` has completed (the first event says so).
    connected: bool,
    /// Messages not yet (completely) sent.
    to_send: Vec<Vec<u8>>,
    /// How many bytes must come back in all.
    expected: usize,
    /// How many bytes came back so far.
    received: usize,
    interest: Interest,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args.host, args.port, args.num_conns) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one log line, flushed with its newline.
#[allow(unused_macros)] // until you log something
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(io::stdout().lock(), $($arg)*);
    }};
}

/// Resolves `host:port`, [`start`]s connections 1 to `num_conns` (logging
/// `Starting connection N to ADDR` for each) before waiting for any of them,
/// then runs the event loop until every connection is done or failed:
/// log `Closing connection N` for one that got all its bytes back, print
/// `error: connection N: …` on stderr for one that failed. Returns how many
/// failed.
///
/// Handout: "Step 3: the client" and "When things go wrong".
fn run(host: &str, port: u16, num_conns: usize) -> io::Result<usize> {
    todo!("start {num_conns} connections to {host}:{port} at once, then poll until each is done")
}

/// Starts a non-blocking connect to `addr` and registers it with `poll`
/// (`READABLE | WRITABLE`) under a token that leads back to connection
/// `number`.
///
/// Handout: "Step 3: the client".
#[allow(dead_code)] // until run() calls it
fn start(poll: &Poll, number: usize, addr: SocketAddr) -> io::Result<Connection> {
    todo!("mio::net::TcpStream::connect({addr}), register with {poll:?} for connection {number}")
}

#[allow(dead_code)] // until run() calls these
impl Connection {
    /// On the first event, checks that the connect worked (`take_error`,
    /// then `peer_addr`); then sends what is queued when writable
    /// (`Sending b"…" to connection N` per write), and when readable reads
    /// until `WouldBlock`, logging `Received b"…" from connection N` and
    /// counting the bytes. `Ok(0)` before every byte came back is a failure.
    ///
    /// Handout: "Step 3: the client" and "Edge-triggered: read until
    /// WouldBlock".
    fn handle(&mut self, readable: bool, writable: bool) -> io::Result<bool> {
        todo!(
            "connection {}: readable {readable}, writable {writable}; return Ok(true) once all \
             {} bytes came back",
            self.number,
            self.expected
        )
    }

    /// Drops `WRITABLE` from the interest once everything is sent.
    ///
    /// Handout: "Partial writes and write interest".
    fn update_interest(&mut self, poll: &Poll, token: Token) -> io::Result<()> {
        todo!("reregister {token:?} with {poll:?} for READABLE only once everything is sent")
    }
}
