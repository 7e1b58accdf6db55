//! Lab 4 reference: the application server.
//!
//! One thread, one `mio::Poll`, as in lab 3. Each connection is a small state
//! machine that reads one request (2-byte length → JSON header → content),
//! answers it, and closes. Bad input ends that connection only.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use app::{FrameError, JsonHeader, Message, PROTO_HEADER_LEN, Request};
use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde_json::json;

/// Answers searches and binary requests, one request per connection.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback unless you choose otherwise).
    host: String,
    /// Port to listen on; 0 lets the operating system choose a free one.
    port: u16,
}

/// The listener's token; connections get the numbers after it.
const LISTENER: Token = Token(0);

/// The search table.
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
fn log(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Binds, announces the address, and runs the event loop forever.
fn serve(host: &str, port: u16) -> io::Result<()> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|err| io::Error::new(err.kind(), format!("resolving {host}: {err}")))?
        .next()
        .ok_or_else(|| io::Error::other(format!("resolving {host}: no address")))?;
    let mut listener = TcpListener::bind(addr)
        .map_err(|err| io::Error::new(err.kind(), format!("binding {addr}: {err}")))?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    log(format_args!("Listening on {}", listener.local_addr()?));

    let mut connections: HashMap<Token, Connection> = HashMap::new();
    let mut next_token = 1;
    let mut events = Events::with_capacity(256);
    loop {
        if let Err(err) = poll.poll(&mut events, None) {
            if err.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, &poll, &mut connections, &mut next_token);
                continue;
            }
            let Some(connection) = connections.get_mut(&event.token()) else {
                continue;
            };
            if event.is_readable() || event.is_read_closed() {
                connection.on_readable();
            }
            if event.is_writable() {
                connection.on_writable();
            }
            match connection.next_interest() {
                Some(interest) => {
                    if let Err(err) =
                        poll.registry()
                            .reregister(&mut connection.stream, event.token(), interest)
                    {
                        log(format_args!("Error: {}: {err}", connection.peer));
                        close(&poll, &mut connections, event.token());
                    }
                }
                None => close(&poll, &mut connections, event.token()),
            }
        }
    }
}

/// Accepts every pending connection (readiness is edge-triggered: stop only
/// at `WouldBlock`).
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
            // E.g. out of file descriptors (EMFILE): the client waits in the
            // listen queue and is accepted at the next event, once a
            // descriptor is free; retrying now would fail again, forever.
            Err(err) => {
                log(format_args!("error: accepting a connection: {err}"));
                return;
            }
        };
        let token = Token(*next_token);
        *next_token += 1;
        if let Err(err) = poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            log(format_args!("Error: {peer}: {err}"));
            continue;
        }
        log(format_args!("Accepted connection from {peer}"));
        connections.insert(token, Connection::new(stream, peer));
    }
}

/// Deregisters and drops (closes) a connection.
fn close(poll: &Poll, connections: &mut HashMap<Token, Connection>, token: Token) {
    if let Some(mut connection) = connections.remove(&token) {
        let _ = poll.registry().deregister(&mut connection.stream);
        log(format_args!("Closing connection to {}", connection.peer));
    }
}

/// Where a connection is in its one request/response exchange.
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
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes received and not yet consumed by the state machine.
    received: Vec<u8>,
    state: State,
}

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

    /// Reads everything available, then moves the state machine on.
    fn on_readable(&mut self) {
        if matches!(self.state, State::Response { .. } | State::Done) {
            return;
        }
        let mut chunk = [0; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    // The client closed. Whatever it sent may still make a
                    // whole request; if not, the request can never finish.
                    self.advance();
                    if !matches!(self.state, State::Response { .. } | State::Done) {
                        if self.received.is_empty() && matches!(self.state, State::ProtoHeader) {
                            self.state = State::Done;
                        } else {
                            self.fail(
                                "the client closed the connection before the request was complete",
                            );
                        }
                    }
                    return;
                }
                Ok(n) => self.received.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return self.fail(err),
            }
        }
        self.advance();
        if let State::Response { .. } = self.state {
            // Usually the socket can take the whole response at once.
            self.on_writable();
        }
    }

    /// Moves through the states as far as the bytes received allow.
    fn advance(&mut self) {
        if let Err(err) = self.try_advance() {
            self.fail(err);
        }
    }

    fn try_advance(&mut self) -> Result<(), FrameError> {
        loop {
            match &self.state {
                State::ProtoHeader if self.received.len() >= PROTO_HEADER_LEN => {
                    let len = app::header_length([self.received[0], self.received[1]])?;
                    self.received.drain(..PROTO_HEADER_LEN);
                    self.state = State::JsonHeader { len };
                }
                State::JsonHeader { len } if self.received.len() >= *len => {
                    // Validated now, before any content is read: an oversized
                    // content-length is refused here.
                    let header = app::parse_json_header(&self.received[..*len])?;
                    self.received.drain(..*len);
                    self.state = State::Content { header };
                }
                State::Content { header } if self.received.len() >= header.content_length => {
                    let content = self.received[..header.content_length].to_vec();
                    let message = Message {
                        header: header.clone(),
                        content,
                    };
                    let request = Request::from_message(message)?;
                    let response = self.answer(request);
                    let bytes = response.encode()?;
                    self.state = State::Response { bytes, sent: 0 };
                }
                _ => return Ok(()),
            }
        }
    }

    /// Logs the request and builds the response.
    fn answer(&self, request: Request) -> Message {
        match request {
            Request::Json {
                action,
                value,
                object,
            } => {
                log(format_args!(
                    "Received request {} from {}",
                    serde_json::Value::Object(object),
                    self.peer
                ));
                let result = if action == "search" {
                    TABLE.iter().find(|(key, _)| *key == value).map_or_else(
                        || format!("No match for \"{value}\"."),
                        |(_, answer)| (*answer).to_owned(),
                    )
                } else {
                    format!("Error: invalid action \"{action}\".")
                };
                Message::json(&json!({ "result": result }))
            }
            Request::Binary {
                content_type,
                content,
            } => {
                log(format_args!(
                    "Received {content_type} request from {}",
                    self.peer
                ));
                let mut answer = b"First 10 bytes of request: ".to_vec();
                answer.extend_from_slice(&content[..content.len().min(10)]);
                Message::new("binary/custom-server-binary-type", "binary", answer)
            }
        }
    }

    /// Writes as much of the response as the socket takes; done when all is
    /// out.
    fn on_writable(&mut self) {
        let State::Response { bytes, sent } = &mut self.state else {
            return;
        };
        while *sent < bytes.len() {
            match self.stream.write(&bytes[*sent..]) {
                Ok(0) => return self.fail("the connection stopped taking data"),
                Ok(n) => *sent += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return self.fail(err),
            }
        }
        // One request, one response: the exchange is over.
        self.state = State::Done;
    }
}
