//! Lab 3 reference: a client that opens many connections at once and drives
//! them all from one event loop.
//!
//! Every connection is started before any of them finishes: `connect` on a
//! non-blocking socket returns at once, and the loop learns from `poll` when
//! each one is ready to send and when its echo arrives.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

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
const MESSAGES: [&[u8]; 2] = [b"Message 1 from client.", b"Message 2 from client."];

/// One connection's progress.
#[derive(Debug)]
struct Connection {
    /// Its number in the log, from 1.
    number: usize,
    stream: TcpStream,
    /// Whether `connect` has completed (the first writable event says so).
    connected: bool,
    /// Messages not yet (completely) sent; the front one may be partly sent.
    to_send: Vec<Vec<u8>>,
    /// How many bytes must come back in all.
    expected: usize,
    /// How many bytes came back so far.
    received: usize,
    interest: Interest,
}

/// What became of a connection after an event.
#[derive(Debug)]
enum Next {
    KeepOpen,
    /// Every byte came back.
    Done,
    /// It failed; the message says how.
    Failed(String),
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
macro_rules! log {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stdout().lock(), $($arg)*);
    }};
}

/// Starts every connection, then runs the loop until each one is done or
/// failed. Returns how many failed.
fn run(host: &str, port: u16, num_conns: usize) -> io::Result<usize> {
    let addr = resolve(host, port)?;
    let mut poll = Poll::new().map_err(|err| with_context("creating the poller", err))?;
    // Slot `number - 1` holds connection `number` until it is closed.
    let mut connections: Vec<Option<Connection>> = Vec::with_capacity(num_conns);
    let mut failures = 0;
    for number in 1..=num_conns {
        log!("Starting connection {number} to {addr}");
        match start(&poll, number, addr) {
            Ok(connection) => connections.push(Some(connection)),
            Err(err) => {
                eprintln!("error: connection {number}: connecting to {addr}: {err}");
                failures += 1;
                connections.push(None);
            }
        }
    }

    let mut open = connections.iter().flatten().count();
    let mut events = Events::with_capacity(256);
    while open > 0 {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(with_context("waiting for events", err)),
        }
        for event in &events {
            let slot = event.token().0;
            let Some(connection) = connections.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let next = connection.handle(event.is_readable(), event.is_writable());
            let next = match next {
                Next::KeepOpen => connection.update_interest(&poll, event.token()),
                other => other,
            };
            let number = connection.number;
            match next {
                Next::KeepOpen => continue,
                Next::Done => log!("Closing connection {number}"),
                Next::Failed(why) => {
                    eprintln!("error: connection {number}: {why}");
                    failures += 1;
                }
            }
            if let Some(mut connection) = connections[slot].take() {
                let _ = poll.registry().deregister(&mut connection.stream);
            }
            open -= 1;
        }
    }
    Ok(failures)
}

/// Starts a non-blocking connect. It returns at once; the outcome arrives
/// later as an event, which is what lets every connection start together.
fn start(poll: &Poll, number: usize, addr: SocketAddr) -> io::Result<Connection> {
    let mut stream = TcpStream::connect(addr)?;
    let interest = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(&mut stream, Token(number - 1), interest)?;
    Ok(Connection {
        number,
        stream,
        connected: false,
        to_send: MESSAGES.iter().map(|message| message.to_vec()).collect(),
        expected: MESSAGES.iter().map(|message| message.len()).sum(),
        received: 0,
        interest,
    })
}

impl Connection {
    fn handle(&mut self, readable: bool, writable: bool) -> Next {
        if !self.connected {
            // The first event on a connecting socket tells whether the
            // connect worked: a pending error means it did not.
            match self.stream.take_error() {
                Ok(None) => {}
                Ok(Some(err)) | Err(err) => return Next::Failed(format!("connecting: {err}")),
            }
            match self.stream.peer_addr() {
                Ok(_) => self.connected = true,
                // Not connected yet: wait for the next event.
                Err(err) if err.kind() == ErrorKind::NotConnected => return Next::KeepOpen,
                Err(err) => return Next::Failed(format!("connecting: {err}")),
            }
        }
        if writable && !self.to_send.is_empty() {
            if let Err(err) = self.send_pending() {
                return Next::Failed(format!("sending: {err}"));
            }
        }
        if readable {
            return self.receive();
        }
        Next::KeepOpen
    }

    /// Sends queued messages until all are sent or the socket is full.
    fn send_pending(&mut self) -> io::Result<()> {
        while let Some(message) = self.to_send.first_mut() {
            match self.stream.write(message) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    log!(
                        "Sending b\"{}\" to connection {}",
                        message[..n].escape_ascii(),
                        self.number
                    );
                    message.drain(..n);
                    if message.is_empty() {
                        self.to_send.remove(0);
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Reads until `WouldBlock`, counting the bytes: done once all came back.
    fn receive(&mut self) -> Next {
        let mut buffer = [0; 4096];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => {
                    return Next::Failed(format!(
                        "the server closed the connection after sending back {} of {} bytes",
                        self.received, self.expected
                    ));
                }
                Ok(n) => {
                    log!(
                        "Received b\"{}\" from connection {}",
                        buffer[..n].escape_ascii(),
                        self.number
                    );
                    self.received += n;
                    if self.received >= self.expected {
                        return Next::Done;
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Next::KeepOpen,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Next::Failed(format!("receiving: {err}")),
            }
        }
    }

    /// Drops write interest once everything is sent, so that an always
    /// writable socket does not keep waking the loop.
    fn update_interest(&mut self, poll: &Poll, token: Token) -> Next {
        let wanted = if self.to_send.is_empty() && self.connected {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        if wanted == self.interest {
            return Next::KeepOpen;
        }
        match poll.registry().reregister(&mut self.stream, token, wanted) {
            Ok(()) => {
                self.interest = wanted;
                Next::KeepOpen
            }
            Err(err) => Next::Failed(format!("re-registering: {err}")),
        }
    }
}

/// The first address `host:port` resolves to.
fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .map_err(|err| with_context(&format!("resolving {host}"), err))?
        .next()
        .ok_or_else(|| io::Error::other(format!("resolving {host}: no address")))
}

/// An error with the step that failed in front of it.
fn with_context(what: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}
