//! Lab 4: the application server.
//!
//! Your task, step by step, is in the handout: labs/app/README.md ("Step 4:
//! the server answers"). Grade it with `cargo xtask grade lab4`.
//!
//! One thread, one `mio::Poll`, as in lab 3. Each connection is a small state
//! machine that reads one request (2-byte length → JSON header → content),
//! answers it, and closes. Bad input ends that connection only.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use app::{JsonHeader, Message, Request};
use clap::Parser;
use mio::Interest;
use mio::net::TcpStream;

/// Answers searches and binary requests, one request per connection.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback unless you choose otherwise).
    host: String,
    /// Port to listen on; 0 lets the operating system choose a free one.
    port: u16,
}

/// The search table.
#[allow(dead_code)] // until your answer() uses it
const TABLE: [(&str, &str); 3] = [
    ("morpheus", "Follow the white rabbit. 🐰"),
    ("ring", "In the caves beneath the Misty Mountains. 💍"),
    ("🐶", "🐾 Playing ball! 🏐"),
];

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

/// Prints one log line. The log must never bring the server down, so a
/// failed write to stdout is ignored rather than panicking as `println!`
/// would.
#[allow(dead_code)] // until your code logs
fn log(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Binds a `mio::net::TcpListener` to `host:port`, prints `Listening on
/// ADDR` with its `local_addr()`, then runs the event loop forever: accept
/// every pending connection (log `Accepted connection from PEER`, register
/// it for READABLE, keep a [`Connection`] per token), pass each connection's
/// events to it, re-register it with [`Connection::next_interest`], and
/// close it (deregister, log `Closing connection to PEER`, drop) when that
/// says `None`.
///
/// Handout: "Step 4: the server answers" and "The connection state machine".
fn serve(host: &str, port: u16) -> io::Result<()> {
    todo!(
        "bind to ({host}, {port}), announce the address, run the mio event loop (lab 3) with a Connection per token"
    )
}

/// Where a connection is in its one request/response exchange.
#[allow(dead_code)] // until your Connection methods use every state
#[derive(Debug)]
enum State {
    /// Waiting for the 2-byte length of the JSON header.
    ProtoHeader,
    /// Waiting for `len` bytes of JSON header.
    JsonHeader { len: usize },
    /// Waiting for the content the header announced.
    Content { header: JsonHeader },
    /// Sending the response; `sent` bytes of it are out.
    Response { bytes: Vec<u8>, sent: usize },
    /// Finished (answered, or given up on): close it.
    Done,
}

/// One client connection and its state.
#[allow(dead_code)] // until your serve() creates connections
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes received and not yet consumed by the state machine.
    received: Vec<u8>,
    state: State,
}

#[allow(dead_code)] // until your serve() uses them
impl Connection {
    fn new(stream: TcpStream, peer: SocketAddr) -> Self {
        Self {
            stream,
            peer,
            received: Vec::new(),
            state: State::ProtoHeader,
        }
    }

    /// What to wait for next, or `None` when the connection should close.
    fn next_interest(&self) -> Option<Interest> {
        match self.state {
            State::Done => None,
            State::Response { .. } => Some(Interest::WRITABLE),
            _ => Some(Interest::READABLE),
        }
    }

    /// Ends the connection because of bad input or a failed socket.
    fn fail(&mut self, reason: impl std::fmt::Display) {
        log(format_args!("Error: {}: {reason}", self.peer));
        self.state = State::Done;
    }

    /// Reads everything available (until `WouldBlock`: readiness is
    /// edge-triggered) into `received`, then calls [`Connection::advance`].
    /// End of stream before a whole request is bad input; a read error ends
    /// the connection.
    ///
    /// Handout: "The connection state machine".
    fn on_readable(&mut self) {
        todo!(
            "read from {} until WouldBlock into the buffer ({} bytes so far), then advance()",
            self.peer,
            self.received.len()
        )
    }

    /// Moves through the states as far as the bytes received allow:
    /// `ProtoHeader` → `JsonHeader` (with [`app::header_length`]) →
    /// `Content` (with [`app::parse_json_header`]) → `Response` (with
    /// [`Request::from_message`] and [`Connection::answer`]). Any error is
    /// bad input: [`Connection::fail`].
    ///
    /// Handout: "The connection state machine" and "When the input is bad".
    fn advance(&mut self) {
        todo!("move on from {:?} as far as the buffer allows", self.state)
    }

    /// Logs the request (`Received request {…} from PEER` or `Received
    /// CONTENT-TYPE request from PEER`) and builds the response.
    ///
    /// Handout: "Step 4: the server answers" and "What the server prints".
    fn answer(&self, request: Request) -> Message {
        todo!("look {request:?} up in TABLE, or answer the first 10 bytes of a binary request")
    }

    /// Writes as much of the response as the socket takes; when all of it is
    /// out, the state becomes `Done`.
    ///
    /// Handout: "The connection state machine".
    fn on_writable(&mut self) {
        todo!(
            "write the rest of the response to {} until WouldBlock or done",
            self.peer
        )
    }
}
