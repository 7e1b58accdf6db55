//! Lab 3 — multiconn: many clients, one thread, an event loop. Contract:
//! "Lab 3" in the handout, `labs/multiconn/README.md`.
//!
//! The server checks connect the grader's own clients (small socket buffers,
//! so that a server which blocks on a full socket is caught on any kernel).
//! The client checks run `multiconn-client` against grader servers that
//! echo, echo in fragments, hold every echo until all connections are open,
//! or close early. Log lines are compared per connection: how many `Echoing`
//! or `Received` lines one message makes depends on timing, so their bytes
//! are joined, and connections that interleave are compared as sets.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::harness::net::{self, Peers, ReadEnd, SendPlan};
use crate::harness::process::Finished;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Server, procfs, show};
use crate::outcome::{CheckResult, Failure};
use crate::runner::CheckFn;

const SERVER: &str = "multiconn-server";
const CLIENT: &str = "multiconn-client";

/// What every connection of `multiconn-client` sends, in order.
const CLIENT_MESSAGES: &[u8] = b"Message 1 from client.Message 2 from client.";

/// 8 MiB: far more than any socket buffer, so it must wait in the server.
const EIGHT_MIB: usize = 8 * 1024 * 1024;

/// The checks of lab 3, in rubric order.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("multiconn.one_client", one_client),
    ("multiconn.many_clients", many_clients),
    ("multiconn.idle_client", idle_client),
    ("multiconn.non_reading_client", non_reading_client),
    ("multiconn.one_thread", one_thread),
    ("multiconn.large_half_close", large_half_close),
    ("multiconn.idle_cpu", idle_cpu),
    ("multiconn.fd_leak", fd_leak),
    ("multiconn.close_while_buffered", close_while_buffered),
    ("multiconn.server_log", server_log),
    ("multiconn.client_fifty", client_fifty),
    ("multiconn.client_at_once", client_at_once),
    ("multiconn.client_fragments", client_fragments),
    ("multiconn.client_early_close", client_early_close),
    ("multiconn.client_log", client_log),
];

// ---------------------------------------------------------------------------
// Reading the logs
// ---------------------------------------------------------------------------

static ACCEPTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Accepted connection from (\S+)$").expect("valid regex"));
static ECHOING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^Echoing b"(.*)" to (\S+)$"#).expect("valid regex"));
static CLOSING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Closing connection to (\S+)$").expect("valid regex"));
static STARTING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Starting connection (\d+) to (\S+)$").expect("valid regex"));
static SENDING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^Sending b"(.*)" to connection (\d+)$"#).expect("valid regex"));
static RECEIVED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^Received b"(.*)" from connection (\d+)$"#).expect("valid regex")
});
static CLIENT_CLOSING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Closing connection (\d+)$").expect("valid regex"));

/// What the server logged about one peer. Bytes are kept as the escaped text
/// of the log: escaping works byte by byte, so joining the escaped pieces
/// gives the escaped text of the joined bytes.
#[derive(Debug, Default, PartialEq, Eq)]
struct ServerView {
    accepted: usize,
    echoed: String,
    echo_lines: usize,
    closing: usize,
}

impl ServerView {
    fn of(lines: &[String], peer: SocketAddr) -> Self {
        let peer = peer.to_string();
        let mut view = Self::default();
        for line in lines {
            if ACCEPTED.captures(line).is_some_and(|c| c[1] == peer) {
                view.accepted += 1;
            } else if let Some(c) = ECHOING.captures(line).filter(|c| c[2] == peer) {
                view.echoed.push_str(&c[1]);
                view.echo_lines += 1;
            } else if CLOSING.captures(line).is_some_and(|c| c[1] == peer) {
                view.closing += 1;
            }
        }
        view
    }

    /// The view as contract lines, redacted, for a snapshot.
    fn render(&self, peer: SocketAddr) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..self.accepted {
            lines.push(format!("Accepted connection from {peer}"));
        }
        if self.echo_lines > 0 {
            lines.push(format!("Echoing b\"{}\" to {peer}", self.echoed));
        }
        for _ in 0..self.closing {
            lines.push(format!("Closing connection to {peer}"));
        }
        lines.iter().map(|line| redact(line)).collect()
    }
}

/// What the client logged about one of its connections.
#[derive(Debug, Default, PartialEq, Eq)]
struct ClientView {
    starting: Vec<String>,
    sent: String,
    sent_lines: usize,
    received: String,
    received_lines: usize,
    closing: usize,
}

/// The client's log, by connection number.
fn client_views(stdout: &str) -> BTreeMap<u64, ClientView> {
    let mut views: BTreeMap<u64, ClientView> = BTreeMap::new();
    let number = |text: &str| text.parse::<u64>().unwrap_or(u64::MAX);
    for line in stdout.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(c) = STARTING.captures(line) {
            let view = views.entry(number(&c[1])).or_default();
            view.starting.push(c[2].to_owned());
        } else if let Some(c) = SENDING.captures(line) {
            let view = views.entry(number(&c[2])).or_default();
            view.sent.push_str(&c[1]);
            view.sent_lines += 1;
        } else if let Some(c) = RECEIVED.captures(line) {
            let view = views.entry(number(&c[2])).or_default();
            view.received.push_str(&c[1]);
            view.received_lines += 1;
        } else if let Some(c) = CLIENT_CLOSING.captures(line) {
            views.entry(number(&c[1])).or_default().closing += 1;
        }
    }
    views
}

impl ClientView {
    fn render(&self, number: u64) -> Vec<String> {
        let mut lines = Vec::new();
        for addr in &self.starting {
            lines.push(redact(&format!("Starting connection {number} to {addr}")));
        }
        if self.sent_lines > 0 {
            lines.push(format!("Sending b\"{}\" to connection {number}", self.sent));
        }
        if self.received_lines > 0 {
            lines.push(format!(
                "Received b\"{}\" from connection {number}",
                self.received
            ));
        }
        for _ in 0..self.closing {
            lines.push(format!("Closing connection {number}"));
        }
        lines
    }
}

/// The escaped text a log line shows for `bytes`.
fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A local address for the failure messages.
fn local_addr(stream: &TcpStream) -> Result<SocketAddr, Failure> {
    stream
        .local_addr()
        .map_err(|err| Failure::new(format!("the grader's socket has no address: {err}")))
}

// ---------------------------------------------------------------------------
// Server checks
// ---------------------------------------------------------------------------

/// One request/response on an open connection: sends `message`, reads the
/// same number of bytes back by `deadline`; on failure, what came back.
fn round_trip(stream: &TcpStream, message: &[u8], deadline: Instant) -> Result<(), net::Exchange> {
    let mut writer = stream;
    if let Err(err) = net::write_all_until(&mut writer, message, deadline) {
        return Err(net::Exchange {
            received: Vec::new(),
            end: ReadEnd::Deadline,
            write_error: Some(err.to_string()),
        });
    }
    let (received, end) = net::read_until(stream, Some(message.len()), deadline);
    if received == message {
        return Ok(());
    }
    Err(net::Exchange {
        received,
        end,
        write_error: None,
    })
}

/// Describes a failed [`round_trip`].
fn round_trip_failure(what: &str, message: &[u8], exchange: net::Exchange) -> Failure {
    exchange
        .expect_bytes(message, what)
        .err()
        .unwrap_or_else(|| Failure::new(format!("{what}: more bytes came back than were sent")))
}

fn one_client(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let stream = net::connect(server.addr, ctx.deadline())?;
    let peer = local_addr(&stream)?;
    let message = b"Hello from one client, with \"quotes\" and a tab\t.";
    round_trip(&stream, message, ctx.within(5.0)).map_err(|failed| {
        server.explain(round_trip_failure("echo to one client", message, failed))
    })?;
    drop(stream);
    let closing = format!("Closing connection to {peer}");
    let closed = server
        .wait_for_line(ctx.within(5.0), |line| line == closing)
        .is_some();
    let lines = server.lines();
    let view = ServerView::of(&lines, peer);
    let expected = ServerView {
        accepted: 1,
        echoed: escaped(message),
        echo_lines: view.echo_lines.max(1),
        closing: 1,
    };
    if closed && view == expected {
        return Ok(());
    }
    let mut failure = Failure::new(if closed {
        "the echo came back, but the log does not tell the story of this client"
    } else {
        "the echo came back, but after the client closed, the server did not log `Closing connection to PEER`"
    })
    .expected(format!(
        "Accepted connection from {peer}\nEchoing b\"{}\" to {peer}   (possibly in several lines)\nClosing connection to {peer}",
        escaped(message)
    ))
    .actual(show::head(&server.stdout(), 12));
    if view.echo_lines > 0 && view.echoed != expected.echoed {
        failure = failure.detail(format!(
            "the `Echoing` lines for this client, joined: in the text, {}",
            show::first_difference(expected.echoed.as_bytes(), view.echoed.as_bytes())
                .unwrap_or_default()
        ));
    }
    Err(failure.detail(format!(
        "PEER is the client's address as `SocketAddr` prints it; the grader's client was {peer}"
    )))
}

fn many_clients(ctx: &Ctx) -> CheckResult {
    const CLIENTS: usize = 200;
    let mut server = ctx.server(SERVER)?;
    let deadline = ctx.within(15.0);
    let mut rng = ctx.rng();
    let mut clients = Vec::with_capacity(CLIENTS);
    for number in 1..=CLIENTS {
        let stream = net::connect(server.addr, deadline).map_err(|failure| {
            server.explain(failure.detail(format!("{} clients were connected already", number - 1)))
        })?;
        let tag: String = std::iter::repeat_with(|| rng.alphanumeric())
            .take(16)
            .collect();
        clients.push((stream, format!("client {number} of {CLIENTS}: {tag}")));
    }
    // Everyone sends before anyone reads: the server sees 200 clients with
    // data waiting at the same time.
    for (number, (stream, message)) in clients.iter().enumerate() {
        let mut writer = stream;
        net::write_all_until(&mut writer, message.as_bytes(), deadline).map_err(|err| {
            server.explain(Failure::new(format!(
                "sending to client {} failed: {err}",
                number + 1
            )))
        })?;
    }
    for (number, (stream, message)) in clients.iter().enumerate() {
        let (received, end) = net::read_until(stream, Some(message.len()), deadline);
        if received != message.as_bytes() {
            let exchange = net::Exchange {
                received,
                end,
                write_error: None,
            };
            let failure = round_trip_failure(
                &format!("echo to client {} of {CLIENTS}", number + 1),
                message.as_bytes(),
                exchange,
            );
            let earlier = match number {
                0 => String::new(),
                _ => format!("the first {number} clients got their own message back; "),
            };
            return Err(server.explain(failure.detail(format!(
                "{earlier}with {CLIENTS} clients connected at once, every one needs its own \
                 state (its own buffer), found by its token"
            ))));
        }
    }
    Ok(())
}

fn idle_client(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // Connected first, so a server that serves one client at a time is busy
    // waiting for this one.
    let idle = net::connect(server.addr, ctx.deadline())?;
    let other = net::connect(server.addr, ctx.deadline())?;
    let message = b"I am not the idle one";
    let started = Instant::now();
    let result = round_trip(&other, message, ctx.within(1.0));
    drop(idle);
    result.map_err(|failed| {
        server.explain(
            round_trip_failure(
                "while another client sat connected and silent, a second client's echo",
                message,
                failed,
            )
            .detail(format!(
                "waited {:.1} s; a server that waits for one client (a blocking read) \
                 keeps every other client waiting",
                started.elapsed().as_secs_f64()
            )),
        )
    })
}

fn non_reading_client(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let hog = net::connect(server.addr, ctx.deadline())?;
    let other = net::connect(server.addr, ctx.deadline())?;
    // The hog writes 8 MiB and never reads: its echo piles up at the server.
    let sent = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let writer = {
        let stream = hog
            .try_clone()
            .map_err(|err| Failure::new(format!("cloning a socket: {err}")))?;
        let (sent, finished) = (Arc::clone(&sent), Arc::clone(&finished));
        let deadline = ctx.within(40.0);
        let mut rng = ctx.rng();
        thread::spawn(move || {
            let mut writer = &stream;
            let chunk: Vec<u8> = std::iter::repeat_with(|| rng.alphanumeric() as u8)
                .take(64 * 1024)
                .collect();
            while sent.load(Ordering::SeqCst) < EIGHT_MIB {
                if net::write_all_until(&mut writer, &chunk, deadline).is_err() {
                    break;
                }
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            finished.store(true, Ordering::SeqCst);
        })
    };
    // Meanwhile another client keeps asking for echoes: each must come back
    // within a second, until the server has read all 8 MiB (our writes only
    // put bytes into kernel buffers: the server's socket may hold megabytes
    // it has not read yet), or nothing moves any more (a server may also
    // stop reading from a client it cannot write to; a blocked server stops
    // everything, and the pings sent meanwhile find out).
    let hog_addr = local_addr(&hog)?;
    let unread = || procfs::tcp_unread(server.addr, hog_addr).ok().flatten();
    let stall_limit = ctx.scaled(1.5);
    let mut progress = (0, unread(), Instant::now());
    let mut outcome = Ok(());
    for ping in 1.. {
        let message = format!("ping {ping} from the other client");
        if let Err(failed) = round_trip(&other, message.as_bytes(), ctx.within(1.0)) {
            outcome = Err(round_trip_failure(
                &format!("echo of ping {ping} to a second client"),
                message.as_bytes(),
                failed,
            )
            .detail(format!(
                "meanwhile a client that never reads had sent {} KiB; the server \
                 must not wait for it to read (no blocking write_all in the loop: \
                 keep its bytes in its buffer and write when it is writable)",
                sent.load(Ordering::SeqCst) / 1024
            )));
            break;
        }
        let now = (sent.load(Ordering::SeqCst), unread());
        if now != (progress.0, progress.1) {
            progress = (now.0, now.1, Instant::now());
        }
        let all_read = finished.load(Ordering::SeqCst) && now.1.unwrap_or(0) == 0;
        if all_read || progress.2.elapsed() >= stall_limit {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Ends a write still blocked on the hog, so the thread can be joined.
    let _ = hog.shutdown(Shutdown::Both);
    let _ = writer.join();
    outcome.map_err(|failure| server.explain(failure))
}

/// Connects `count` clients that each get one echo back and then stay
/// connected: the server has seen every one of them when this returns.
fn connected_clients(
    ctx: &Ctx,
    server: &mut Server,
    count: usize,
    what: &str,
) -> Result<Vec<TcpStream>, Failure> {
    let mut clients = Vec::with_capacity(count);
    for number in 1..=count {
        let stream = net::connect(server.addr, ctx.deadline())?;
        let message = format!("client {number} {what}");
        round_trip(&stream, message.as_bytes(), ctx.within(5.0)).map_err(|failed| {
            server.explain(round_trip_failure(
                &format!("echo to client {number}"),
                message.as_bytes(),
                failed,
            ))
        })?;
        clients.push(stream);
    }
    Ok(clients)
}

fn one_thread(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let clients = connected_clients(ctx, &mut server, 5, "checks the thread count")?;
    let threads = procfs::threads(server.process.pid())
        .map_err(|err| Failure::new(format!("could not read /proc (Linux only): {err}")))?;
    drop(clients);
    if threads == 1 {
        return Ok(());
    }
    Err(Failure::new(format!(
        "with 5 clients connected, the server runs {threads} threads"
    ))
    .expected("Threads: 1 in /proc/PID/status: one thread, one event loop, every client")
    .actual(format!("Threads: {threads}"))
    .detail(
        "this lab is about serving many clients without a thread each: one poller \
         tells one thread which sockets are ready",
    ))
}

fn large_half_close(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let stream = net::connect(server.addr, ctx.deadline())?;
    let mut rng = ctx.rng();
    let payload: Vec<u8> = std::iter::repeat_with(|| rng.u8(..))
        .take(EIGHT_MIB)
        .collect();
    let seed = format!("the payload came from seed {}", ctx.seed());
    // Everything is written before anything is read: the server can only
    // keep up by buffering what it cannot write back yet.
    let deadline = ctx.within(40.0);
    let mut writer = &stream;
    let mut sent = 0;
    for chunk in payload.chunks(64 * 1024) {
        // A server that stopped reading shows no progress at all: give up on
        // it after a while rather than at the check's end.
        let stalled = ctx.within(10.0).min(deadline);
        if let Err(err) = net::write_all_until(&mut writer, chunk, stalled) {
            return Err(server.explain(
                Failure::new(format!(
                    "the server stopped reading after {} KiB of 8192 KiB{}",
                    sent / 1024,
                    match err.kind() {
                        ErrorKind::TimedOut => String::new(),
                        _ => format!(" ({err})"),
                    }
                ))
                .expected("the server reads everything a client sends, even while that client reads nothing")
                .detail(
                    "when a client is not reading, a write to it stops with WouldBlock: keep \
                     the rest in that connection's buffer, and keep reading",
                ),
            ));
        }
        sent += chunk.len();
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|err| Failure::new(format!("half-closing: {err}")))?;
    // The server must meet the end of stream while most of the echo still
    // waits in its buffer: wait until it has read every byte we sent (its
    // socket's unread count in /proc falls to 0), then pause so that it
    // also reads the end of stream, before we read anything.
    let (here, there) = (local_addr(&stream)?, server.addr);
    let drained = ctx.within(20.0);
    while procfs::tcp_unread(there, here).is_ok_and(|unread| unread.is_some_and(|n| n > 0))
        && Instant::now() < drained
    {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(300));
    let (received, end) = net::read_until(&stream, None, ctx.within(40.0));
    let exchange = net::Exchange {
        received,
        end,
        write_error: None,
    };
    exchange
        .expect_bytes(
            &payload,
            "echo of 8 MiB sent before reading, then half-closed",
        )
        .map_err(|failure| {
            server.explain(failure.detail(seed.clone()).detail(
                "at end of stream, first send what is still buffered for that client, then close",
            ))
        })?;
    if exchange.end != ReadEnd::Eof {
        return Err(server.explain(
            Failure::new("every byte came back, but the server did not close the connection")
                .expected("after the client half-closed and its buffer is empty, the server closes")
                .actual(format!("{:?}", exchange.end)),
        ));
    }
    Ok(())
}

fn idle_cpu(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let clients = connected_clients(ctx, &mut server, 10, "stays idle")?;
    let pid = server.process.pid();
    let cpu = || {
        procfs::cpu_time(pid)
            .map_err(|err| Failure::new(format!("could not read /proc (Linux only): {err}")))
    };
    // The measurement: the server's own CPU time over an idle second. A
    // busy machine slows a busy loop down but cannot make it use nothing.
    let window = ctx.scaled(1.0);
    let before = cpu()?;
    let started = Instant::now();
    thread::sleep(window);
    let used = cpu()? - before;
    let elapsed = started.elapsed();
    drop(clients);
    let limit = Duration::from_millis(50).mul_f64(elapsed.as_secs_f64());
    if used <= limit {
        return Ok(());
    }
    Err(server.explain(
        Failure::new(format!(
            "with 10 idle connections and nothing to do, the server used {} ms of CPU in {} ms",
            used.as_millis(),
            elapsed.as_millis()
        ))
        .expected(format!(
            "at most {} ms: an idle event loop sleeps in poll",
            limit.as_millis()
        ))
        .detail(
            "look for a poll with a zero timeout in a loop, or writable interest kept \
             while nothing is waiting to be written",
        ),
    ))
}

fn fd_leak(ctx: &Ctx) -> CheckResult {
    /// Descriptors a runtime may open lazily on first use.
    const SLACK: usize = 2;
    let mut server = ctx.server(SERVER)?;
    let pid = server.process.pid();
    let fds = || {
        procfs::open_fds(pid)
            .map_err(|err| Failure::new(format!("could not read /proc (Linux only): {err}")))
    };
    // The baseline is taken after a few warm-up clients: runtimes open some
    // descriptors lazily on their first connections, which is no leak.
    const WARM_UP: usize = 5;
    let mut baseline = fds()?;
    for number in 1..=WARM_UP + 100 {
        if number == WARM_UP + 1 {
            baseline = fds()?;
        }
        let stream = net::connect(server.addr, ctx.deadline())?;
        let message = format!("client {number} comes and goes");
        if number % 2 == 0 {
            // Half of them half-close and wait for the server to close.
            let exchange = net::exchange(
                &stream,
                message.as_bytes(),
                SendPlan::ALL_THEN_CLOSE,
                None,
                ctx.within(5.0),
            );
            exchange
                .expect_bytes(message.as_bytes(), &format!("echo to client {number}"))
                .map_err(|failure| server.explain(failure))?;
        } else {
            // The others close as soon as their echo is back.
            round_trip(&stream, message.as_bytes(), ctx.within(5.0)).map_err(|failed| {
                server.explain(round_trip_failure(
                    &format!("echo to client {number}"),
                    message.as_bytes(),
                    failed,
                ))
            })?;
        }
    }
    // The server closes its sockets as it sees each client go; that takes it
    // a moment after the last client left.
    let deadline = ctx.within(5.0);
    let mut now_open = fds()?;
    while now_open > baseline + SLACK && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        now_open = fds()?;
    }
    if now_open <= baseline + SLACK {
        return Ok(());
    }
    Err(server.explain(
        Failure::new(format!(
            "after 100 clients came and went, the server holds {} more file descriptors than before",
            now_open - baseline
        ))
        .expected(format!(
            "about {baseline} entries in /proc/{pid}/fd, as before the clients came"
        ))
        .actual(format!("{now_open} entries"))
        .detail(
            "when a client is done, deregister its socket and drop it (remove it from your \
             map of connections): dropping closes the descriptor",
        ),
    ))
}

fn close_while_buffered(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let mut rng = ctx.rng();
    for round in 1..=3 {
        let rude = net::connect(server.addr, ctx.deadline())?;
        let payload: Vec<u8> = std::iter::repeat_with(|| rng.alphanumeric() as u8)
            .take(1024 * 1024)
            .collect();
        let mut writer = &rude;
        net::write_all_until(&mut writer, &payload, ctx.within(10.0)).map_err(|err| {
            server.explain(Failure::new(format!(
                "writing 1 MiB (without reading) failed: {err}; the server must keep \
                 reading from a client that does not read its echo"
            )))
        })?;
        // Closing with unread echo in our socket makes the kernel reset the
        // connection: the server's next read or write on it fails.
        drop(rude);
        let other = net::connect(server.addr, ctx.deadline()).map_err(|failure| {
            server.explain(failure.detail(format!(
                "right after client {round} closed while its echo was still buffered"
            )))
        })?;
        let message = format!("still serving after client {round} left rudely?");
        round_trip(&other, message.as_bytes(), ctx.within(5.0)).map_err(|failed| {
            server.explain(
                round_trip_failure(
                    &format!("echo to the next client, after client {round} reset its connection"),
                    message.as_bytes(),
                    failed,
                )
                .detail(
                    "a read or write error on one connection (reset, broken pipe) closes that \
                     connection only; the server carries on",
                ),
            )
        })?;
    }
    if let Some(status) = server.process.exit_status() {
        return Err(server.explain(Failure::new(format!(
            "the server exited: {}",
            crate::harness::process::describe_status(Some(status))
        ))));
    }
    Ok(())
}

fn server_log(ctx: &Ctx) -> CheckResult {
    const CLIENTS: usize = 3;
    let mut server = ctx.server(SERVER)?;
    let deadline = ctx.within(5.0);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let stream = net::connect(server.addr, deadline)?;
        clients.push((local_addr(&stream)?, stream));
    }
    // The three clients interleave: first messages, then second messages,
    // then everyone half-closes.
    for part in ["Hello from client", "Goodbye from client"] {
        for (number, (_, stream)) in clients.iter().enumerate() {
            let message = format!("{part} {}.", number + 1);
            round_trip(stream, message.as_bytes(), deadline).map_err(|failed| {
                server.explain(round_trip_failure(
                    &format!("echo to client {}", number + 1),
                    message.as_bytes(),
                    failed,
                ))
            })?;
        }
    }
    for (_, stream) in &clients {
        let _ = stream.shutdown(Shutdown::Write);
    }
    for (number, (peer, stream)) in clients.iter().enumerate() {
        let (_, end) = net::read_until(stream, None, deadline);
        let closing = format!("Closing connection to {peer}");
        let logged = server.wait_for_line(deadline, |line| line == closing);
        if end != ReadEnd::Eof || logged.is_none() {
            return Err(server.explain(
                Failure::new(format!(
                    "client {} half-closed, but the server {}",
                    number + 1,
                    if end == ReadEnd::Eof {
                        "did not log `Closing connection to PEER`"
                    } else {
                        "did not close the connection"
                    }
                ))
                .expected(closing)
                .actual(show::tail(&server.stdout(), 10)),
            ));
        }
    }
    let lines = server.lines();
    let mut text: Vec<String> = lines
        .iter()
        .filter(|line| line.starts_with("Listening on "))
        .take(1)
        .map(|line| redact(line))
        .collect();
    for (number, (peer, _)) in clients.iter().enumerate() {
        text.push(format!("the grader's client {}:", number + 1));
        text.extend(
            ServerView::of(&lines, *peer)
                .render(*peer)
                .into_iter()
                .map(|line| format!("    {line}")),
        );
    }
    ctx.snapshot(&text.join("\n")).map_err(|failure| {
        failure.detail(
            "the grader groups the server's lines by client and joins each client's `Echoing` \
             bytes, so how the echo is split into lines does not matter",
        )
    })
}

// ---------------------------------------------------------------------------
// Client checks
// ---------------------------------------------------------------------------

/// How the grader's server treats each connection of the client.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Echoes what arrives.
    Echo,
    /// Echoes in pieces of this many bytes, pausing between them.
    Fragments(usize, Duration),
    /// Echoes nothing until `count` connections are open (or gives up at the
    /// deadline and closes).
    HoldUntilAllOpen {
        count: usize,
        open: Arc<(Mutex<usize>, Condvar)>,
        give_up: Instant,
    },
    /// Echoes the first message only, then closes.
    CloseEarly,
}

/// A connection the grader's server served: what it received.
#[derive(Debug)]
struct Served {
    received: Vec<u8>,
}

/// Serves one connection of the client as `behaviour` says.
fn serve(mut stream: TcpStream, behaviour: &Behaviour) -> std::io::Result<Served> {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    match behaviour {
        Behaviour::HoldUntilAllOpen {
            count,
            open,
            give_up,
        } => {
            let (lock, changed) = &**open;
            let mut opened = lock.lock().unwrap_or_else(|p| p.into_inner());
            *opened += 1;
            changed.notify_all();
            while *opened < *count {
                let now = Instant::now();
                if now >= *give_up {
                    // Closing now tells a client that waits for this echo
                    // before opening its next connection.
                    return Err(std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!("only {opened} of {count} connections were open"),
                    ));
                }
                opened = changed
                    .wait_timeout(opened, *give_up - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        Behaviour::CloseEarly => {
            let first = CLIENT_MESSAGES.len() / 2;
            while received.len() < first {
                let n = stream.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..n]);
            }
            let echo = received.len().min(first);
            stream.write_all(&received[..echo])?;
            stream.shutdown(Shutdown::Write)?;
            // Reads the rest until the client closes, so that closing never
            // turns into a reset.
            let _ = net::read_to_eof(&mut stream).map(|rest| received.extend(rest));
            return Ok(Served { received });
        }
        Behaviour::Echo | Behaviour::Fragments(..) => {}
    }
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => return Ok(Served { received }),
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        received.extend_from_slice(&buffer[..n]);
        match behaviour {
            Behaviour::Fragments(piece, pause) => {
                for (index, chunk) in buffer[..n].chunks(*piece).enumerate() {
                    if index > 0 {
                        thread::sleep(*pause);
                    }
                    stream.write_all(chunk)?;
                }
            }
            _ => stream.write_all(&buffer[..n])?,
        }
    }
}

/// How a run of the client went, seen from both ends.
#[derive(Debug)]
struct ClientRun {
    /// How the client finished, with its output.
    finished: Finished,
    /// What the grader's server saw on each connection, in accept order.
    served: Vec<(usize, std::io::Result<Served>)>,
    /// How many connections the grader's server accepted.
    accepted: usize,
}

/// Runs the client with `conns` connections against a grader server that
/// behaves as `behaviour` says; returns how the client finished and what
/// the server saw on each connection.
fn run_client(
    ctx: &Ctx,
    conns: usize,
    behaviour: Behaviour,
    seconds: f64,
) -> Result<ClientRun, Failure> {
    let peers = Peers::serve_many(ctx.within(seconds + 2.0), conns, move |stream, _| {
        serve(stream, &behaviour)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    let port = peers.addr.port().to_string();
    let count = conns.to_string();
    let finished = ctx.run(
        &ctx.launch(CLIENT, ["127.0.0.1", port.as_str(), count.as_str()])?,
        seconds,
    )?;
    // The client has exited: its connections are closed, so every thread of
    // the grader's server is about to finish.
    let served = peers.results(ctx.within(2.0));
    Ok(ClientRun {
        finished,
        served,
        accepted: peers.accepted(),
    })
}

/// Checks that the client exited 0 and that every connection 1..=`conns`
/// logged all of its bytes coming back, and that the grader's server got
/// both messages on every connection.
fn expect_client_success(run: &ClientRun, conns: usize) -> CheckResult {
    let ClientRun {
        finished,
        served,
        accepted,
    } = run;
    let accepted = *accepted;
    let views = client_views(&finished.stdout_text());
    if views.is_empty() {
        return Err(Failure::new(format!(
            "{CLIENT} logged no connection at all: {}",
            finished.describe()
        ))
        .expected(format!(
            "`Starting connection N to ADDR`, `Sending …`, `Received …` and `Closing connection N` \
             for N = 1 to {conns}, then exit code 0"
        ))
        .detail(finished.stderr_detail()));
    }
    let want = escaped(CLIENT_MESSAGES);
    for number in 1..=conns as u64 {
        let received = views
            .get(&number)
            .map(|view| view.received.as_str())
            .unwrap_or_default();
        if received != want {
            return Err(Failure::new(format!(
                "connection {number} did not log every byte that came back"
            ))
            .expected(format!(
                "`Received` lines for connection {number} that together show b\"{want}\""
            ))
            .actual(if received.is_empty() {
                format!("no `Received … from connection {number}` line")
            } else {
                format!("together: b\"{received}\"")
            })
            .detail(format!("the client {}", finished.describe()))
            .detail(
                "count the bytes each connection got back and close it only when all have \
                 returned: the echo may come in any number of pieces",
            )
            .detail(show::head(&finished.stdout_text(), 12))
            .detail(finished.stderr_detail()));
        }
    }
    if finished.timed_out || finished.code() != Some(0) {
        return Err(Failure::new(format!(
            "every connection got its echo, but the client did not exit with code 0: {}",
            finished.describe()
        ))
        .expected("exit code 0 once every connection has its bytes back and is closed")
        .detail(finished.stderr_detail()));
    }
    if accepted != conns {
        return Err(Failure::new(format!(
            "the client opened {accepted} connections to the grader's server, not {conns}"
        ))
        .expected(format!(
            "NUM_CONNS = {conns} connections, numbered 1 to {conns}"
        )));
    }
    for (index, result) in served {
        let received = match result {
            Ok(served) => &served.received,
            Err(err) => {
                return Err(Failure::new(format!(
                    "the grader's server failed on the connection it accepted {}: {err}",
                    ordinal(*index)
                )));
            }
        };
        if received != CLIENT_MESSAGES {
            return Err(Failure::new(format!(
                "on the connection it accepted {}, the grader's server received the wrong bytes",
                ordinal(*index)
            ))
            .expected(show::bytes(CLIENT_MESSAGES, 100))
            .actual(show::bytes(received, 100)));
        }
    }
    Ok(())
}

fn ordinal(index: usize) -> String {
    match index + 1 {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        n => format!("{n}th"),
    }
}

fn client_fifty(ctx: &Ctx) -> CheckResult {
    let run = run_client(ctx, 50, Behaviour::Echo, 10.0)?;
    expect_client_success(&run, 50)
}

fn client_at_once(ctx: &Ctx) -> CheckResult {
    const CONNS: usize = 10;
    let open = Arc::new((Mutex::new(0), Condvar::new()));
    let give_up = ctx.within(5.0);
    let behaviour = Behaviour::HoldUntilAllOpen {
        count: CONNS,
        open: Arc::clone(&open),
        give_up,
    };
    let run = run_client(ctx, CONNS, behaviour, 10.0)?;
    let finished = &run.finished;
    let gave_up = run.served.iter().any(|(_, result)| {
        result
            .as_ref()
            .is_err_and(|err| err.kind() == ErrorKind::TimedOut)
    });
    if gave_up {
        let opened = *open.0.lock().unwrap_or_else(|p| p.into_inner());
        return Err(Failure::new(format!(
            "the grader's server held back every echo until all {CONNS} connections were open, \
             but after {:.0} s only {opened} were",
            ctx.scaled(5.0).as_secs_f64()
        ))
        .expected(format!(
            "{CONNS} connections open at the same time before any echo comes back"
        ))
        .detail(format!("the client {}", finished.describe()))
        .detail(
            "start every connection first (non-blocking connect, register each with the \
             poller), then let the event loop drive them all; do not wait for one \
             connection's echo before opening the next",
        )
        .detail(finished.stderr_detail()));
    }
    expect_client_success(&run, CONNS)
}

fn client_fragments(ctx: &Ctx) -> CheckResult {
    let behaviour = Behaviour::Fragments(3, Duration::from_millis(10));
    let run = run_client(ctx, 5, behaviour, 10.0)?;
    expect_client_success(&run, 5).map_err(|failure| {
        failure.detail("the grader's server echoed 3 bytes at a time with short pauses")
    })
}

fn client_early_close(ctx: &Ctx) -> CheckResult {
    let finished = run_client(ctx, 1, Behaviour::CloseEarly, 5.0)?.finished;
    let stderr = finished.stderr_text();
    let named = stderr
        .lines()
        .any(|line| line.starts_with("error: connection 1: "));
    let crashed = finished.crashed(|line: &str| line.starts_with("error: "));
    if !finished.timed_out && finished.code() == Some(1) && named && !crashed {
        return Ok(());
    }
    Err(Failure::new(
        "the grader's server echoed the first message, then closed the connection; \
         the client did not report it as a failure of connection 1",
    )
    .expected("a line `error: connection 1: …` on stderr, then exit code 1")
    .actual(finished.brief())
    .detail(
        "`read` returning 0 before every byte came back means the server closed early: \
         that connection failed",
    ))
}

fn client_log(ctx: &Ctx) -> CheckResult {
    const CONNS: usize = 3;
    let run = run_client(ctx, CONNS, Behaviour::Echo, 10.0)?;
    expect_client_success(&run, CONNS)?;
    let mut text = Vec::new();
    for (number, view) in client_views(&run.finished.stdout_text()) {
        text.push(format!("connection {number}:"));
        text.extend(
            view.render(number)
                .into_iter()
                .map(|line| format!("    {line}")),
        );
    }
    ctx.snapshot(&text.join("\n")).map_err(|failure| {
        failure.detail(
            "the grader groups the client's lines by connection and joins each connection's \
             `Sending` and `Received` bytes, so how they are split into lines does not matter",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_are_grouped_by_peer_and_echoes_joined() {
        let lines: Vec<String> = [
            "Listening on 127.0.0.1:5000",
            "Accepted connection from 127.0.0.1:40001",
            "Accepted connection from 127.0.0.1:40002",
            r#"Echoing b"say \"hi\"" to 127.0.0.1:40001"#,
            r#"Echoing b"other" to 127.0.0.1:40002"#,
            r#"Echoing b"\t\xff" to 127.0.0.1:40001"#,
            "error: something about 127.0.0.1:40001",
            "Closing connection to 127.0.0.1:40001",
        ]
        .map(String::from)
        .to_vec();
        let view = ServerView::of(&lines, "127.0.0.1:40001".parse().unwrap());
        assert_eq!(
            view,
            ServerView {
                accepted: 1,
                echoed: escaped(b"say \"hi\"\t\xff"),
                echo_lines: 2,
                closing: 1,
            }
        );
        let other = ServerView::of(&lines, "127.0.0.1:40002".parse().unwrap());
        assert_eq!((other.echoed.as_str(), other.closing), ("other", 0));
    }

    #[test]
    fn client_lines_are_grouped_by_connection_number() {
        let stdout = "Starting connection 1 to 127.0.0.1:5000\n\
                      Starting connection 2 to 127.0.0.1:5000\n\
                      Sending b\"Message 1 from client.\" to connection 2\n\
                      Received b\"Mess\" from connection 2\n\
                      Received b\"age 1 from client.\" from connection 2\n\
                      Closing connection 2\n";
        let views = client_views(stdout);
        assert_eq!(views.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(views[&2].received, "Message 1 from client.");
        assert_eq!(views[&2].received_lines, 2);
        assert_eq!(views[&1].closing, 0);
        assert_eq!(
            views[&2].render(2)[0],
            "Starting connection 2 to 127.0.0.1:[PORT]"
        );
    }
}
