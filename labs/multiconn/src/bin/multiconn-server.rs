//! Lab 3: an echo server for many clients at once, on one thread.
//!
//! Your task, step by step, is in the handout: labs/multiconn/README.md.
//! Grade it with `cargo xtask grade lab3`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};

/// An echo server that serves every connected client at the same time.
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

/// The listener's token; give connections the tokens after it.
#[allow(dead_code)] // until run() registers the listener
const LISTENER: Token = Token(0);

/// How much one `read` asks for.
#[allow(dead_code)] // until read_all() uses it
const CHUNK: usize = 4096;

/// Everything the loop knows about one client (handout: "Per-connection
/// state"). Add fields if you need more.
#[allow(dead_code)] // until accept_all() creates connections
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read from the client and not yet written back, oldest first.
    outgoing: VecDeque<u8>,
    /// The client has closed its sending side (read returned 0).
    finished_reading: bool,
    /// The interest the stream is registered with now.
    interest: Interest,
}

/// What should happen to a connection after an event.
#[allow(dead_code)] // until handle() returns it
#[derive(Debug, PartialEq, Eq)]
enum Next {
    KeepOpen,
    Close,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args.host, args.port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one log line. Rust's stdout is line-buffered, so each line leaves
/// at once; a log that can no longer be written is not worth crashing for.
#[allow(unused_macros)] // until you log something
macro_rules! log {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stdout().lock(), $($arg)*);
    }};
}

/// Binds a `mio::net::TcpListener`, registers it with a new `Poll` under
/// [`LISTENER`], prints `Listening on ADDR` (flushed), and runs the event
/// loop forever: poll (no timeout; retry on `Interrupted`), then for each
/// event either [`accept_all`] or handle the connection whose token it
/// carries, closing it when [`Connection::handle`] says so.
///
/// Handout: "Step 1: listen and register" and "Step 2: the event loop".
fn run(host: &str, port: u16) -> io::Result<()> {
    let _ = io::stdout().flush();
    todo!(
        "bind {host}:{port} with mio, register the listener, print `Listening on`, \
         then loop: poll, accept_all() or handle() each event"
    )
}

/// Accepts every pending connection until `WouldBlock` (one event may stand
/// for many clients), registers each with a fresh token for `READABLE`,
/// logs `Accepted connection from PEER`, and stores it in `connections`.
/// Any other error (out of descriptors: `Too many open files`) is logged and
/// ends this round of accepting; the client waits in the listen queue.
///
/// Handout: "Edge-triggered: read until WouldBlock", "Per-connection state"
/// and "Out of file descriptors".
#[allow(dead_code)] // until run() calls it
fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    connections: &mut HashMap<Token, Connection>,
    next_token: &mut usize,
) {
    todo!(
        "accept from {listener:?} until WouldBlock; register each stream with {poll:?} \
         under Token({next_token}) and up; insert it into the {} connections",
        connections.len()
    )
}

#[allow(dead_code)] // until run() calls these
impl Connection {
    /// Handles one readiness event: if readable, [`Connection::read_all`];
    /// if bytes are waiting, [`Connection::write_pending`]; an error on
    /// either closes this connection only. Says `Close` when the client
    /// has finished sending and has every byte back.
    ///
    /// Handout: "Closing and deregistering".
    fn handle(&mut self, readable: bool, writable: bool) -> Next {
        todo!("readable: {readable}, writable: {writable}: read, write, decide whether to close")
    }

    /// Reads into `outgoing` until `WouldBlock`; `Ok(0)` means the client
    /// closed its side; retry on `Interrupted`.
    ///
    /// Handout: "Edge-triggered: read until WouldBlock".
    fn read_all(&mut self) -> io::Result<()> {
        todo!(
            "read up to {CHUNK} bytes at a time from {} until WouldBlock",
            self.peer
        )
    }

    /// Writes from `outgoing` until it is empty or the socket is full
    /// (`WouldBlock`), logging `Echoing b"…" to PEER` with the bytes each
    /// write took; removes the written bytes from the buffer.
    ///
    /// Handout: "Partial writes and write interest".
    fn write_pending(&mut self) -> io::Result<()> {
        todo!(
            "write the {} buffered bytes to {} until WouldBlock",
            self.outgoing.len(),
            self.peer
        )
    }

    /// Re-registers the stream so that it asks for `WRITABLE` only while
    /// bytes are waiting (and `READABLE` until the client finished sending).
    ///
    /// Handout: "Partial writes and write interest".
    fn update_interest(&mut self, poll: &Poll, token: Token) -> Next {
        todo!(
            "reregister {token:?} with {poll:?} if the wanted interest differs from {:?}",
            self.interest
        )
    }
}
