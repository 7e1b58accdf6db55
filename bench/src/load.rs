//! The load generator: one thread, one `mio::Poll`, N connections.
//!
//! A thread per connection would measure the generator's context switches
//! more than the server at 1000 connections; an event loop keeps the load
//! cheap, so on a small machine most of the CPU goes to the server measured.
//!
//! Two workloads:
//! - [`Workload::PingPong`]: N persistent connections, each sends a 64-byte
//!   message, waits for its whole echo, and sends the next (servers that serve
//!   many clients at once: `multiconn-server`, the baselines).
//! - [`Workload::PerConnection`]: N slots, each runs connect → send → (half-
//!   close) → read to end of stream → check the reply, then starts over
//!   (servers that answer one request per connection: `echo-server`,
//!   `app-server`, `client-list-server`). Latency includes the connect.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Size of the ping-pong message.
pub const MESSAGE_LEN: usize = 64;

/// What each connection does.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// Persistent connections exchanging 64-byte messages.
    PingPong,
    /// One request per connection.
    PerConnection(Exchange),
}

/// One request-per-connection exchange: what to send and how to check the reply.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// The request of a slot (slot number, request number).
    pub request: fn(usize, u64) -> Vec<u8>,
    /// Shut down writing after the request (the server reads to end of stream).
    pub half_close: bool,
    /// Checks the whole reply against the request; `Err` says what is wrong.
    pub check: fn(&[u8], &[u8]) -> Result<(), String>,
}

/// The bounds of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Concurrent connections (or request slots).
    pub conns: usize,
    /// Time run before measuring (connections established, caches warm).
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// Stop early after this many measured requests.
    pub max_requests: usize,
    /// A request (connect included) that takes longer is an error.
    pub timeout: Duration,
}

/// What one measurement found.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests completed (and checked) in the measured window.
    pub requests: usize,
    /// Requests completed in all, warmup included (to divide CPU time by).
    pub completed: usize,
    /// Length of the measured window.
    pub window: Duration,
    /// Latency of each measured request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Errors by kind, counted over warmup and window.
    pub errors: BTreeMap<String, u64>,
}

impl Stats {
    /// Requests per second over the window.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        Some(f64::from(self.latencies_us[index]) / 1000.0)
    }

    /// All errors counted.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending,
    Receiving,
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    phase: Phase,
    request: Vec<u8>,
    written: usize,
    reply: Vec<u8>,
    /// When the request started: its connect (per connection) or its first
    /// byte (ping-pong).
    started: Instant,
    sequence: u64,
}

/// What driving a connection led to.
enum Step {
    /// Waiting for readiness.
    Pending,
    /// A request completed and its reply was right.
    Done,
    /// The connection failed; the string says how.
    Failed(String),
}

/// The ping-pong message number `sequence` of `slot`: printable, so that the
/// servers' `Echoing b"…"` log lines stay short, and different each time, so
/// that a server mixing up buffers is caught.
pub fn ping_message(slot: usize, sequence: u64) -> Vec<u8> {
    let mut message = format!("ping {slot:05} {sequence:012} ").into_bytes();
    message.resize(MESSAGE_LEN - 1, b'.');
    message.push(b'\n');
    message
}

/// Runs `workload` against `addr` within `config`'s bounds.
pub fn run(addr: SocketAddr, workload: Workload, config: &Config) -> io::Result<Stats> {
    let mut generator = Generator {
        poll: Poll::new()?,
        addr,
        workload,
        conns: (0..config.conns).map(|_| None).collect(),
        stats: Stats {
            latencies_us: Vec::with_capacity(config.max_requests.min(1 << 20)),
            ..Stats::default()
        },
    };
    let started = Instant::now();
    for slot in 0..config.conns {
        generator.open(slot, 0);
    }
    let measure_from = started + config.warmup;
    let measure_until = measure_from + config.duration;
    let mut events = Events::with_capacity(1024);
    let mut next_timeout_scan = started;
    loop {
        let now = Instant::now();
        if now >= measure_until || generator.stats.requests >= config.max_requests {
            generator.stats.window = now.saturating_duration_since(measure_from);
            break;
        }
        let wait = (measure_until - now).min(Duration::from_millis(50));
        generator.poll.poll(&mut events, Some(wait))?;
        for event in &events {
            let slot = event.token().0;
            let step = generator.drive(slot);
            generator.after(slot, step, measure_from, measure_until);
        }
        let now = Instant::now();
        if now >= next_timeout_scan {
            next_timeout_scan = now + Duration::from_millis(100);
            for slot in 0..config.conns {
                let Some(conn) = generator.conns[slot].as_ref() else {
                    // Its last connect failed at once: try again.
                    generator.open(slot, 0);
                    continue;
                };
                if now.duration_since(conn.started) > config.timeout {
                    let step = Step::Failed(format!(
                        "no reply within {:.0} s",
                        config.timeout.as_secs_f64()
                    ));
                    generator.after(slot, step, measure_from, measure_until);
                }
            }
        }
    }
    generator.stats.latencies_us.sort_unstable();
    Ok(generator.stats)
}

struct Generator {
    poll: Poll,
    addr: SocketAddr,
    workload: Workload,
    conns: Vec<Option<Conn>>,
    stats: Stats,
}

impl Generator {
    /// Starts a new connection in `slot` (a failure is counted, and the slot
    /// tries again at the next timeout scan).
    fn open(&mut self, slot: usize, sequence: u64) {
        let request = match self.workload {
            Workload::PingPong => ping_message(slot, sequence),
            Workload::PerConnection(exchange) => (exchange.request)(slot, sequence),
        };
        let mut stream = match TcpStream::connect(self.addr) {
            Ok(stream) => stream,
            Err(err) => {
                self.stats.error(format!("connect: {err}"));
                return;
            }
        };
        if let Err(err) = self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.stats.error(format!("register: {err}"));
            return;
        }
        self.conns[slot] = Some(Conn {
            stream,
            phase: Phase::Connecting,
            request,
            written: 0,
            reply: Vec::new(),
            started: Instant::now(),
            sequence,
        });
    }

    /// Moves the connection in `slot` forward as far as it can go without
    /// blocking (mio's events are edge-triggered: stop only at `WouldBlock`).
    fn drive(&mut self, slot: usize) -> Step {
        let workload = self.workload;
        let Some(conn) = self.conns[slot].as_mut() else {
            return Step::Pending; // a stale event for a slot that failed
        };
        loop {
            match conn.phase {
                Phase::Connecting => {
                    if let Ok(Some(err)) | Err(err) = conn.stream.take_error() {
                        return Step::Failed(format!("connect: {err}"));
                    }
                    match conn.stream.peer_addr() {
                        Ok(_) => {
                            conn.phase = Phase::Sending;
                            if matches!(workload, Workload::PingPong) {
                                conn.started = Instant::now();
                            }
                        }
                        Err(err)
                            if err.kind() == io::ErrorKind::NotConnected
                                || err.kind() == io::ErrorKind::WouldBlock =>
                        {
                            return Step::Pending;
                        }
                        Err(err) => return Step::Failed(format!("connect: {err}")),
                    }
                }
                Phase::Sending => match conn.stream.write(&conn.request[conn.written..]) {
                    Ok(n) => {
                        conn.written += n;
                        if conn.written == conn.request.len() {
                            if let Workload::PerConnection(exchange) = workload {
                                if exchange.half_close {
                                    if let Err(err) = conn.stream.shutdown(Shutdown::Write) {
                                        return Step::Failed(format!("shutdown: {err}"));
                                    }
                                }
                            }
                            conn.phase = Phase::Receiving;
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Pending,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Step::Failed(format!("send: {err}")),
                },
                Phase::Receiving => {
                    let mut buf = [0u8; 16 * 1024];
                    match conn.stream.read(&mut buf) {
                        Ok(0) => {
                            return match workload {
                                Workload::PingPong => Step::Failed(format!(
                                    "the server closed the connection after {} of {} bytes of an echo",
                                    conn.reply.len(),
                                    conn.request.len()
                                )),
                                Workload::PerConnection(exchange) => {
                                    match (exchange.check)(&conn.request, &conn.reply) {
                                        Ok(()) => Step::Done,
                                        Err(wrong) => Step::Failed(wrong),
                                    }
                                }
                            };
                        }
                        Ok(n) => {
                            conn.reply.extend_from_slice(&buf[..n]);
                            if matches!(workload, Workload::PingPong)
                                && conn.reply.len() >= conn.request.len()
                            {
                                if conn.reply != conn.request {
                                    return Step::Failed(
                                        "the echo differs from the message".into(),
                                    );
                                }
                                return Step::Done;
                            }
                        }
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                            return Step::Pending;
                        }
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => return Step::Failed(format!("receive: {err}")),
                    }
                }
            }
        }
    }

    /// Records what `step` says and starts the slot's next request.
    fn after(&mut self, slot: usize, mut step: Step, from: Instant, until: Instant) {
        loop {
            match step {
                Step::Pending => return,
                Step::Done => {
                    let now = Instant::now();
                    let Some(conn) = self.conns[slot].as_mut() else {
                        return;
                    };
                    self.stats.completed += 1;
                    if now >= from && now < until {
                        self.stats.requests += 1;
                        let micros = now.duration_since(conn.started).as_micros();
                        self.stats
                            .latencies_us
                            .push(u32::try_from(micros).unwrap_or(u32::MAX));
                    }
                    let sequence = conn.sequence + 1;
                    match self.workload {
                        Workload::PingPong => {
                            conn.request = ping_message(slot, sequence);
                            conn.sequence = sequence;
                            conn.written = 0;
                            conn.reply.clear();
                            conn.phase = Phase::Sending;
                            conn.started = now;
                            // The socket is writable (we never fill it): send
                            // now, an edge-triggered poll would not say so again.
                            step = self.drive(slot);
                        }
                        Workload::PerConnection(_) => {
                            self.close(slot);
                            self.open(slot, sequence);
                            return;
                        }
                    }
                }
                Step::Failed(what) => {
                    self.stats.error(what);
                    let sequence = self.conns[slot]
                        .as_ref()
                        .map_or(0, |conn| conn.sequence + 1);
                    self.close(slot);
                    self.open(slot, sequence);
                    return;
                }
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns[slot].take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_messages_are_64_printable_bytes_and_differ() {
        let first = ping_message(7, 1);
        assert_eq!(first.len(), MESSAGE_LEN);
        assert!(
            first
                .iter()
                .all(|b| b.is_ascii_graphic() || b" \n".contains(b))
        );
        assert_ne!(first, ping_message(7, 2));
    }

    #[test]
    fn quantiles_pick_from_the_sorted_latencies() {
        let stats = Stats {
            latencies_us: (1..=100).map(|ms| ms * 1000).collect(),
            ..Stats::default()
        };
        assert_eq!(stats.latency_ms(0.5), Some(51.0));
        assert_eq!(stats.latency_ms(0.99), Some(99.0));
    }
}
