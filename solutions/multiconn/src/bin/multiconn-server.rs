//! Lab 3 reference: an echo server for many clients at once, on one thread.
//!
//! One `mio::Poll` watches the listener and every connection. The loop sleeps
//! in `poll` until the operating system says a socket is ready, handles what
//! is ready without ever waiting on one client, and goes back to sleep. Each
//! connection keeps its own output buffer: bytes read from a client wait there
//! until that client's socket can take them.

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

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

/// The listener's token; connections get the tokens after it.
const LISTENER: Token = Token(0);

/// How much one `read` asks for.
const CHUNK: usize = 4096;

/// Everything the loop knows about one client.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read from the client and not yet written back, oldest first.
    /// A queue: bytes are added at the back and written from the front.
    outgoing: VecDeque<u8>,
    /// The client has closed its sending side (read returned 0).
    finished_reading: bool,
    /// The interest the stream is registered with now, so that we only
    /// re-register when it changes.
    interest: Interest,
}

/// What should happen to a connection after an event.
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
macro_rules! log {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stdout().lock(), $($arg)*);
    }};
}

/// Binds, announces the address, and runs the event loop forever.
fn run(host: &str, port: u16) -> io::Result<()> {
    let addr = resolve(host, port)?;
    let mut listener = TcpListener::bind(addr)
        .map_err(|err| io::Error::new(err.kind(), format!("binding {addr}: {err}")))?;
    let mut poll = Poll::new().map_err(|err| with_context("creating the poller", err))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|err| with_context("registering the listener", err))?;
    println!("Listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    let mut connections: HashMap<Token, Connection> = HashMap::new();
    let mut next_token = LISTENER.0 + 1;
    let mut events = Events::with_capacity(256);
    loop {
        // No timeout: the loop sleeps until something is ready. A signal
        // may wake it early (Interrupted): just poll again.
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(with_context("waiting for events", err)),
        }
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, &poll, &mut connections, &mut next_token);
                continue;
            }
            // An event may arrive for a connection closed earlier in this batch.
            let Some(connection) = connections.get_mut(&event.token()) else {
                continue;
            };
            let next = connection.handle(event.is_readable(), event.is_writable());
            let next = match next {
                Next::KeepOpen => connection.update_interest(&poll, event.token()),
                Next::Close => Next::Close,
            };
            if next == Next::Close {
                if let Some(mut connection) = connections.remove(&event.token()) {
                    log!("Closing connection to {}", connection.peer);
                    // Deregister before the socket is dropped (and closed).
                    let _ = poll.registry().deregister(&mut connection.stream);
                }
            }
        }
    }
}

/// Accepts every pending connection. mio's events are edge-triggered: one
/// event may stand for many clients, so accept until `WouldBlock`. Out of
/// descriptors (EMFILE), accept fails until a client leaves: retrying at once
/// would spin, so the waiting client is accepted at the next event.
fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    connections: &mut HashMap<Token, Connection>,
    next_token: &mut usize,
) {
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => {
                // Out of descriptors, or a client that left before we got to
                // it: that client's problem, not the server's.
                log!("error: accepting a connection: {err}");
                return;
            }
        };
        let token = Token(*next_token);
        *next_token += 1;
        if let Err(err) = poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            log!("error: registering {peer}: {err}");
            continue;
        }
        log!("Accepted connection from {peer}");
        connections.insert(
            token,
            Connection {
                stream,
                peer,
                outgoing: VecDeque::new(),
                finished_reading: false,
                interest: Interest::READABLE,
            },
        );
    }
}

impl Connection {
    /// Handles one readiness event: reads all that has arrived, writes all the
    /// socket takes, and says whether the connection is done.
    fn handle(&mut self, readable: bool, writable: bool) -> Next {
        if readable && !self.finished_reading {
            if let Err(err) = self.read_all() {
                // Reset by the client: nobody is left to send the rest to.
                log!("error: reading from {}: {err}", self.peer);
                return Next::Close;
            }
        }
        // Try to write even without a writable event: after a read the socket
        // usually has room, and this saves a trip through the loop.
        if (writable || readable) && !self.outgoing.is_empty() {
            if let Err(err) = self.write_pending() {
                log!("error: writing to {}: {err}", self.peer);
                return Next::Close;
            }
        }
        if self.finished_reading && self.outgoing.is_empty() {
            // The client is done sending and has every byte back.
            return Next::Close;
        }
        Next::KeepOpen
    }

    /// Reads until the socket has nothing more (`WouldBlock`) or the client
    /// closed its side. Stopping earlier would lose the event: mio does not
    /// report the same readiness twice.
    fn read_all(&mut self) -> io::Result<()> {
        let mut buffer = [0; CHUNK];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => {
                    self.finished_reading = true;
                    return Ok(());
                }
                Ok(n) => self.outgoing.extend(&buffer[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Writes buffered bytes until they are all gone or the socket is full
    /// (`WouldBlock`); what is left waits for the next writable event.
    fn write_pending(&mut self) -> io::Result<()> {
        while !self.outgoing.is_empty() {
            // The queue may wrap around its storage: write its first
            // contiguous part; the loop comes back for the rest.
            let (front, _) = self.outgoing.as_slices();
            match self.stream.write(front) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    log!(
                        "Echoing b\"{}\" to {}",
                        front[..n].escape_ascii(),
                        self.peer
                    );
                    self.outgoing.drain(..n);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Asks for writable events only while bytes are waiting: a socket is
    /// writable almost all the time, and asking when there is nothing to
    /// write would wake the loop for nothing.
    fn update_interest(&mut self, poll: &Poll, token: Token) -> Next {
        let wanted = match (self.finished_reading, self.outgoing.is_empty()) {
            (false, true) => Interest::READABLE,
            (false, false) => Interest::READABLE | Interest::WRITABLE,
            (true, _) => Interest::WRITABLE,
        };
        if wanted == self.interest {
            return Next::KeepOpen;
        }
        match poll.registry().reregister(&mut self.stream, token, wanted) {
            Ok(()) => {
                self.interest = wanted;
                Next::KeepOpen
            }
            Err(err) => {
                log!("error: re-registering {}: {err}", self.peer);
                Next::Close
            }
        }
    }
}

/// The first address `host:port` resolves to.
fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
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
