//! Client checks: `udp-client` against grader peers that answer, answer
//! late, answer from a stranger's address, never answer, or refuse.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::conversation::{self, Party};
use crate::harness::net::udp::{self, Datagram, RefusingUdpPort, Udp, UdpPeer};
use crate::harness::observe::{procfs, stall};
use crate::harness::process::Finished;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::server::local_addr;
use super::{
    CLIENT, CLIENT_MESSAGE, MARGIN, NO_CONNECTION, REPLY, RUN_LIMIT, STARTUP_MARGIN, TIMEOUT,
    TRUNCATED_HINT, truncated,
};

/// What a grader peer saw: the client's first datagram, if one came.
type Request = Option<Datagram>;

/// Starts a grader peer that waits for the client's datagram (until
/// `deadline`) and then plays `answer` with its socket and that datagram.
pub(super) fn peer(
    deadline: Instant,
    answer: impl FnOnce(&Udp, &Datagram) -> std::io::Result<()> + Send + 'static,
) -> Result<UdpPeer<Request>, Failure> {
    peer_at(Ipv4Addr::LOCALHOST.into(), deadline, answer)
}

/// [`peer`] on the loopback address `ip` (`::1` for IPv6).
fn peer_at(
    ip: IpAddr,
    deadline: Instant,
    answer: impl FnOnce(&Udp, &Datagram) -> std::io::Result<()> + Send + 'static,
) -> Result<UdpPeer<Request>, Failure> {
    UdpPeer::start_at(ip, move |socket| {
        let request = udp::recv_until(&socket, deadline)?;
        if let Some(request) = &request {
            answer(&socket, request)?;
        }
        Ok(request)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its UDP server: {err}")))
}

/// Runs the client with `HOST PORT MESSAGE` and `extra` arguments, HOST
/// the IP of `addr`.
pub(super) fn run_client(
    ctx: &Ctx,
    addr: SocketAddr,
    extra: &[&str],
    seconds: f64,
) -> Result<Finished, Failure> {
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    let mut args = vec![host.as_str(), port.as_str(), CLIENT_MESSAGE];
    args.extend_from_slice(extra);
    ctx.run(&ctx.launch(CLIENT, args)?, seconds)
}

/// Checks that the peer got exactly the client's message, as one datagram.
pub(super) fn expect_request(
    ctx: &Ctx,
    peer: &UdpPeer<Request>,
    finished: &Finished,
) -> Result<(), Failure> {
    let outcome = peer.outcome_until(Instant::now() + ctx.scaled(1.0));
    let request = match outcome {
        Some(Ok(Some(request))) => request,
        Some(Err(err)) => {
            return Err(Failure::new(format!(
                "the grader's UDP server failed: {err}"
            )));
        }
        Some(Ok(None)) | None => {
            return Err(finished.sent_nothing(
                format!("{CLIENT} sent nothing to {}", peer.addr),
                format!("one datagram {}", show::bytes(CLIENT_MESSAGE.as_bytes(), 60)),
                "Send MESSAGE to the server as one datagram, then print the reply that really came back: the grader's servers note what they receive, and their replies vary.",
                "#step-3-the-client",
            ));
        }
    };
    if request.bytes == CLIENT_MESSAGE.as_bytes() {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{CLIENT}'s datagram is not the MESSAGE argument, byte for byte"
    ))
    .expected(show::bytes(CLIENT_MESSAGE.as_bytes(), 60))
    .actual(show::bytes(&request.bytes, 120))
    .detail(show::first_difference(CLIENT_MESSAGE.as_bytes(), &request.bytes).unwrap_or_default())
    .detail("send the whole message as one datagram: one send_to call"))
}

/// A line the program printed, as it printed it when it is plain text (so
/// that its own escapes are not escaped again), or as bytes otherwise.
fn printed_line(line: &str) -> String {
    if line.len() <= 200 && !line.chars().any(char::is_control) {
        line.to_owned()
    } else {
        show::bytes(line.as_bytes(), 160)
    }
}

/// Checks that the client printed `Got reply from FROM: b"…"` with `reply`
/// and exited 0.
pub(super) fn expect_printed_reply(
    finished: &Finished,
    from: SocketAddr,
    reply: &[u8],
) -> Result<(), Failure> {
    let want = format!("Got reply from {from}: b\"{}\"", reply.escape_ascii());
    let stdout = finished.stdout_text();
    let got = stdout.lines().find(|line| line.starts_with("Got reply"));
    if got.map(str::trim_end) == Some(want.as_str()) && finished.code() == Some(0) {
        return Ok(());
    }
    let mut failure = Failure::new(format!("{CLIENT} did not print the server's reply"))
        .expected(format!("{want}, then exit code 0"))
        .actual(format!(
            "{}, then {}",
            got.map_or("no `Got reply` line".to_owned(), printed_line),
            finished.describe()
        ));
    if let Some(line) = got {
        let body = line
            .trim_end()
            .split_once(": b\"")
            .and_then(|(_, rest)| rest.strip_suffix('"'));
        if let Some(printed) = body.and_then(show::unescape_ascii) {
            if let Some(difference) = show::first_difference(reply, &printed) {
                failure = failure.detail(format!("in the reply bytes printed, {difference}"));
            }
            // The reply, then the zeros of a buffer nothing else was read
            // into: the whole buffer printed, not the n bytes received.
            let rest = printed.strip_prefix(reply).unwrap_or_default();
            if !rest.is_empty() && rest.iter().all(|&byte| byte == 0) {
                failure = failure.diagnosis(
                    "The reply is followed by the zeros of the rest of your buffer: print only the `n` bytes `recv_from` returned (`&buffer[..n]`), not the whole buffer.",
                    "#datagrams-have-edges",
                );
            }
            // Only the start of the reply: the datagram was cut to the
            // buffer `recv_from` was given.
            if printed.len() < reply.len() && reply.starts_with(&printed) {
                failure = failure
                    .detail(truncated(printed.len(), reply.len()))
                    .diagnosis(TRUNCATED_HINT, "#datagrams-have-edges");
            }
        } else {
            failure = failure
                .detail("print the reply as a Rust byte string: b\"…\" with `escape_ascii()`");
        }
    }
    Err(failure.detail(finished.stderr_detail()))
}

pub(super) fn client_reply(ctx: &Ctx) -> CheckResult {
    let peer = peer(ctx.within(RUN_LIMIT), |socket, request| {
        socket.send_to(REPLY, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(ctx, &peer, &finished)?;
    expect_printed_reply(&finished, peer.addr, REPLY)?;
    // The contract's line only: other lines a client prints are its own.
    let stdout = finished.stdout_text();
    let replies: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("Got reply from "))
        .collect();
    ctx.snapshot(&redact(&replies.join("\n")))
}

/// A server on `::1`: the client's socket must be of the server's family
/// (`[::]:0`), not IPv4 whatever HOST says.
pub(super) fn client_ipv6(ctx: &Ctx) -> CheckResult {
    crate::harness::ipv6::require_loopback(ctx)?;
    let peer = peer_at(
        Ipv6Addr::LOCALHOST.into(),
        ctx.within(RUN_LIMIT),
        |socket, request| socket.send_to(REPLY, request.from).map(drop),
    )?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    let request = peer.outcome_until(Instant::now() + ctx.scaled(1.0));
    if !matches!(request, Some(Ok(Some(_)))) {
        return Err(finished.sent_nothing(
            format!("started with HOST `::1`, {CLIENT} sent nothing to {}", peer.addr),
            format!("one datagram {}", show::bytes(CLIENT_MESSAGE.as_bytes(), 60)),
            "Bind the client's socket to port 0 of the unspecified address of the server's family: `[::]:0` for an IPv6 server, `0.0.0.0:0` for IPv4 (match on the `SocketAddr` you resolved). An IPv4 socket cannot send to `::1`.",
            "#step-3-the-client",
        ));
    }
    expect_printed_reply(&finished, peer.addr, REPLY)
}

/// The start of a reply that is not text, with bytes the client must escape.
const BINARY_REPLY: &[u8] = b"Got \xff\xfe \"quoted\" \\ \n\ttab \xf0\x9f\x90\xb6";

/// A reply other than the contract's fixed one: `start`, then a nonce drawn
/// from the seed, so that only a client that received it can print it.
fn with_nonce(ctx: &Ctx, start: &[u8], nonce: impl Fn(&mut fastrand::Rng) -> u8) -> Vec<u8> {
    let mut rng = ctx.rng();
    let mut reply = start.to_vec();
    reply.extend_from_slice(b" nonce ");
    let length = rng.usize(8..16);
    reply.extend(std::iter::repeat_with(|| nonce(&mut rng)).take(length));
    reply
}

/// [`with_nonce`] with a nonce of letters and digits: a text reply.
pub(super) fn text_reply(ctx: &Ctx) -> Vec<u8> {
    with_nonce(ctx, REPLY, |rng| rng.alphanumeric() as u8)
}

/// What a failure adds when the reply carried a nonce.
fn nonce_detail(ctx: &Ctx) -> String {
    format!(
        "the grader's server replies with a nonce drawn from seed {}: print the datagram that came back",
        ctx.seed()
    )
}

pub(super) fn client_binary_reply(ctx: &Ctx) -> CheckResult {
    let reply = with_nonce(ctx, BINARY_REPLY, |rng| rng.u8(..));
    let sent = reply.clone();
    let peer = peer(ctx.within(RUN_LIMIT), move |socket, request| {
        socket.send_to(&sent, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(ctx, &peer, &finished)?;
    expect_printed_reply(&finished, peer.addr, &reply)
        .map_err(|failure| failure.detail(nonce_detail(ctx)))
}

const STRANGER: &[u8] = b"I am not the server";

/// A grader socket that talks to the graded client: a stranger, or a server
/// that never answers. The conversation shows its datagrams as between the
/// grader and the client.
pub(super) fn client_facing_socket() -> Result<Udp, Failure> {
    udp::bind_facing(Party::Client)
        .map_err(|err| Failure::new(format!("the grader could not open a UDP socket: {err}")))
}

/// What to do about a client that took a stranger's datagram for the reply,
/// whichever check saw it: one cause, explained once.
const TAKES_ANY_SENDER: &str = "Anyone can send to your port. Compare the address `recv_from` returns with the server's and keep waiting (same deadline) when it differs, or `connect` the socket to the server so the kernel drops the rest.";

/// `failure`, explained: the client took the datagram of the stranger at
/// `stranger` for the server's.
fn took_the_strangers_datagram(failure: Failure, stranger: SocketAddr) -> Failure {
    failure
        .detail(format!(
            "{stranger} is a stranger that sent {} to the client's port: check the address \
             recv_from returns and keep waiting (or `connect` the socket to the server, so the \
             kernel filters)",
            show::bytes(STRANGER, 40)
        ))
        .diagnosis(TAKES_ANY_SENDER, "#step-4-only-the-servers-reply")
}

pub(super) fn client_stranger(ctx: &Ctx) -> CheckResult {
    let stranger = client_facing_socket()?;
    let stranger_addr = local_addr(&stranger)?;
    let pause = ctx.scaled(0.1);
    let reply = text_reply(ctx);
    let sent = reply.clone();
    let peer = peer(ctx.within(RUN_LIMIT), move |socket, request| {
        // The client's port is known only from its datagram. The stranger
        // writes to it first; the pause lets its datagram arrive before the
        // real reply, as it would when a stranger is quicker than a server.
        stranger.send_to(STRANGER, request.from)?;
        thread::sleep(pause);
        socket.send_to(&sent, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(ctx, &peer, &finished)?;
    expect_printed_reply(&finished, peer.addr, &reply).map_err(|failure| {
        if finished.stdout_text().contains(&stranger_addr.to_string()) {
            took_the_strangers_datagram(failure, stranger_addr)
        } else {
            failure
        }
    })
}

/// Checks the "no reply" outcome: the line on stderr, no reply printed,
/// exit code 1, and no crash.
fn expect_no_connection(finished: &Finished, situation: &str) -> Result<(), Failure> {
    let stderr = finished.stderr_text();
    let said = stderr.lines().any(|line| line.trim_end() == NO_CONNECTION);
    let crashed = finished.crashed(|line: &str| line.trim_end() == NO_CONNECTION);
    let printed_reply = finished.stdout_text().contains("Got reply");
    if said && !crashed && !printed_reply && finished.code() == Some(1) && !finished.timed_out {
        return Ok(());
    }
    let stdout = finished.stdout_text();
    // Rust refuses a zero read timeout (to the OS it would mean "never
    // time out"): a client that asks for the time left once none is left
    // fails on its own error instead of reporting the silence.
    let zero_timeout = stderr.contains("0 duration timeout");
    let failure = Failure::new(format!("{CLIENT} did not report {situation} cleanly"));
    let failure = if zero_timeout {
        failure.diagnosis(
            "`set_read_timeout(Some(Duration::ZERO))` is an error: when the time left until the deadline is zero (a stray datagram or a stop and continue brought the client back just then), the wait is over; report `No connection between client and server` without another recv_from.",
            "#why-a-udp-client-needs-a-timeout",
        )
    } else {
        failure
    };
    Err(failure
        .expected(format!(
            "`{NO_CONNECTION}` on stderr, exit code 1, no crash"
        ))
        .actual(format!(
            "{}; stdout: {}",
            finished.describe(),
            stdout
                .lines()
                .next()
                .map_or("(empty)".to_owned(), printed_line)
        ))
        .detail(if stderr.trim().is_empty() {
            "stderr: (empty)".to_owned()
        } else {
            finished.stderr_detail()
        }))
}

/// The `--timeout` arguments of the timeout checks.
fn timeout_args() -> [String; 2] {
    ["--timeout".to_owned(), TIMEOUT.to_string()]
}

/// A stranger that writes to the client while a silent server keeps quiet.
struct Stranger {
    socket: Udp,
    /// The time between its datagrams.
    every: Duration,
    /// How long after the client's datagram it goes on writing, unless the
    /// client has ended first.
    lasting: Duration,
}

impl Stranger {
    /// Writes to the client that sent `request`, once every `every`, until
    /// `lasting` after the request or until the client has ended; returns
    /// when each datagram left. Paced by deadlines, not by sleeps: the
    /// client's end stops it at once.
    fn write(self, request: &Datagram, client_ended: &mpsc::Receiver<()>) -> Vec<Instant> {
        let mut wrote = Vec::new();
        let until = request.arrived + self.lasting;
        let mut next = request.arrived + self.every;
        while next <= until {
            match client_ended.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Err(RecvTimeoutError::Timeout) => {}
                // The client has ended, or the check has: nobody to write to.
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.socket.send_to(STRANGER, request.from).is_err() {
                break;
            }
            wrote.push(Instant::now());
            next += self.every;
        }
        wrote
    }
}

/// What a silent server heard: the client's datagram, and when its
/// stranger wrote to the client.
struct Heard {
    request: Datagram,
    stranger_wrote: Vec<Instant>,
}

/// A grader server that never answers, bound where the client sends so
/// that nothing tells the client "no one is here": it can only wait. It
/// notes when the client's datagram arrives, where the client's wait
/// starts however long the program took to start on a loaded machine, and
/// may have a stranger write to the client from then on.
struct SilentServer {
    addr: SocketAddr,
    heard: mpsc::Receiver<io::Result<Option<Heard>>>,
    /// Tells the stranger that the client has ended.
    client_ended: mpsc::Sender<()>,
    /// Held open until the check ends: a closed port would refuse.
    _socket: Udp,
}

impl SilentServer {
    fn start(ctx: &Ctx, stranger: Option<Stranger>) -> Result<Self, Failure> {
        let socket = client_facing_socket()?;
        let addr = local_addr(&socket)?;
        let watcher = socket
            .try_clone()
            .map_err(|err| Failure::new(format!("the grader's socket failed: {err}")))?;
        let (report, heard) = mpsc::channel();
        let (client_ended, ended) = mpsc::channel();
        let watch_until = ctx.within(RUN_LIMIT);
        conversation::spawn("grader-udp-silent-server", move || {
            let heard = udp::recv_until(&watcher, watch_until).map(|request| {
                request.map(|request| Heard {
                    stranger_wrote: stranger
                        .map_or_else(Vec::new, |stranger| stranger.write(&request, &ended)),
                    request,
                })
            });
            let _ = report.send(heard);
        })
        .map_err(|err| Failure::new(format!("the grader could not start a thread: {err}")))?;
        Ok(Self {
            addr,
            heard,
            client_ended,
            _socket: socket,
        })
    }

    /// What it heard from the client, which has `finished`: its message,
    /// or the failure that it sent none here.
    fn heard(&self, ctx: &Ctx, finished: &Finished) -> Result<Heard, Failure> {
        let _ = self.client_ended.send(());
        match self.heard.recv_timeout(ctx.scaled(1.0)) {
            Ok(Ok(Some(heard))) if heard.request.bytes == CLIENT_MESSAGE.as_bytes() => Ok(heard),
            Ok(Err(err)) => Err(Failure::new(format!("the grader's socket failed: {err}"))),
            other => Err(Failure::new(format!(
                "{CLIENT} did not send its message to the server's address"
            ))
            .expected(format!(
                "the datagram {}",
                show::bytes(CLIENT_MESSAGE.as_bytes(), 60)
            ))
            .actual(match other {
                Ok(Ok(Some(heard))) => show::bytes(&heard.request.bytes, 100),
                _ => format!("nothing arrived; the client: {}", finished.describe()),
            })
            .detail(finished.stderr_detail())),
        }
    }
}

/// How long after sending a client with `--timeout TIMEOUT` may give up:
/// its timeout, and a margin for a loaded machine (never a second timeout).
fn give_up_limit(ctx: &Ctx) -> f64 {
    TIMEOUT + MARGIN * ctx.scaled(1.0).as_secs_f64()
}

/// Checks that a client that gave up `waited` seconds after sending waited
/// its `--timeout`, and not much longer. Timers may fire a little early,
/// never by a tenth.
fn expect_gave_up_in_time(ctx: &Ctx, waited: f64) -> CheckResult {
    if waited < TIMEOUT * 0.9 {
        return Err(Failure::new(format!(
            "{CLIENT} gave up {waited:.2} s after sending, before its --timeout of {TIMEOUT} s"
        ))
        .expected(format!("wait {TIMEOUT} s for a reply, then give up"))
        .detail("set the timeout on the socket (set_read_timeout) from the --timeout argument; a non-blocking read gives up at once"));
    }
    let limit = give_up_limit(ctx);
    if waited > limit {
        return Err(Failure::new(format!(
            "{CLIENT} gave up only {waited:.2} s after sending, with --timeout {TIMEOUT}"
        ))
        .expected(format!(
            "give up {TIMEOUT} s after sending (at most {limit:.1} s)"
        ))
        .detail("use the --timeout argument (a decimal number of seconds) rather than a fixed time, and do not start a new wait after a timed-out read"));
    }
    Ok(())
}

pub(super) fn client_timeout(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here: wait it out. A
    // necessary wait: the contract is `--timeout 1.2`, and only the client
    // giving up, no sooner than that, proves it honoured it.
    let _patient = stall::patient();
    let silent = SilentServer::start(ctx, None)?;
    let args = timeout_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let finished = run_client(ctx, silent.addr, &args, RUN_LIMIT)?;
    let heard = silent.heard(ctx, &finished)?;
    expect_no_connection(&finished, "a server that never answers")?;
    // Timed from the datagram's arrival to the moment the client's exit was
    // seen, so that a slow start-up cannot make a fixed, shorter timeout
    // look right.
    let waited = finished
        .exit_seen
        .saturating_duration_since(heard.request.arrived)
        .as_secs_f64();
    expect_gave_up_in_time(ctx, waited)
}

pub(super) fn client_stranger_timeout(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here, as in
    // `client_timeout`: the same necessary wait, no longer.
    let _patient = stall::patient();
    let limit = give_up_limit(ctx);
    // A third of the timeout apart: a client whose wait starts again at
    // every datagram never sees it run out while the stranger writes. The
    // stranger stops at the limit, so that such a client then gives up, a
    // whole --timeout after the stranger's last datagram.
    let every = Duration::from_secs_f64(TIMEOUT / 3.0);
    let stranger = Stranger {
        socket: client_facing_socket()?,
        every,
        lasting: Duration::from_secs_f64(limit),
    };
    let stranger_addr = local_addr(&stranger.socket)?;
    let silent = SilentServer::start(ctx, Some(stranger))?;
    let args = timeout_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let finished = run_client(ctx, silent.addr, &args, RUN_LIMIT)?;
    let heard = silent.heard(ctx, &finished)?;
    if finished.stdout_text().contains(&stranger_addr.to_string()) {
        let stdout = finished.stdout_text();
        return Err(took_the_strangers_datagram(
            Failure::new(format!(
                "{CLIENT} printed a stranger's datagram as the server's reply"
            ))
            .expected(format!(
                "`{NO_CONNECTION}` on stderr once --timeout {TIMEOUT} has run out: the server \
                 never answers"
            ))
            .actual(format!(
                "{}, then {}",
                stdout.lines().next().map_or_else(String::new, printed_line),
                finished.describe()
            )),
            stranger_addr,
        ));
    }
    expect_no_connection(&finished, "a server that never answers")?;
    let ended = finished.exit_seen;
    let waited = ended
        .saturating_duration_since(heard.request.arrived)
        .as_secs_f64();
    // How long the client had heard nothing when it gave up: a whole
    // --timeout after the stranger's last datagram, for a client whose wait
    // starts again at every datagram.
    let wrote = heard
        .stranger_wrote
        .iter()
        .filter(|at| **at <= ended)
        .count();
    let quiet = heard.stranger_wrote[..wrote]
        .last()
        .map(|last| ended.saturating_duration_since(*last).as_secs_f64());
    match quiet {
        Some(quiet) if waited > limit && quiet >= TIMEOUT * 0.9 => Err(Failure::new(format!(
            "{CLIENT} gave up only {waited:.2} s after sending, with --timeout {TIMEOUT}, while \
             a stranger wrote to its port"
        ))
        .expected(format!(
            "give up {TIMEOUT} s after sending (at most {limit:.1} s), however many datagrams \
             strangers send meanwhile"
        ))
        .actual(format!(
            "a stranger sent {wrote} datagrams to the client's port, {:.1} s apart; the client \
             gave up {quiet:.2} s after the last one",
            every.as_secs_f64()
        ))
        .detail(
            "the stranger's datagrams must not restart the wait: fix the deadline once, when \
             you send, and give each recv_from only the time left until it \
             (set_read_timeout(deadline - now))",
        )),
        Some(quiet) if waited < TIMEOUT * 0.9 && quiet < ctx.scaled(0.15).as_secs_f64() => {
            Err(took_the_strangers_datagram(
                Failure::new(format!(
                    "{CLIENT} gave up {waited:.2} s after sending, as a stranger's datagram \
                     arrived, before its --timeout of {TIMEOUT} s"
                ))
                .expected(format!(
                    "ignore the stranger and wait {TIMEOUT} s for the server's reply"
                )),
                stranger_addr,
            ))
        }
        _ => expect_gave_up_in_time(ctx, waited),
    }
}

/// Whether the program `pid`, or a program it started, holds a UDP socket
/// bound to a port: a client that has bound its socket and sends at once
/// (step 3), or has sent (sending binds an unbound socket).
fn holds_a_bound_udp_socket(pid: u32) -> bool {
    const UDP: &[procfs::Table] = &[procfs::Table::Udp, procfs::Table::Udp6];
    let mut pending = vec![pid];
    // A wrapper may start the program: a few levels of children, no more.
    let mut looked = 0;
    while let Some(pid) = pending.pop() {
        looked += 1;
        if looked > 16 {
            break;
        }
        if procfs::sockets_held(pid, UDP)
            .iter()
            .any(|socket| socket.local_port != 0)
        {
            return true;
        }
        pending.extend(procfs::thread_children(pid, pid).unwrap_or_default());
    }
    false
}

pub(super) fn client_no_server(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here: wait it out (a
    // necessary wait for a client that does not `connect`: it learns that
    // no one is there only from its `--timeout`).
    let _patient = stall::patient();
    let refusing = RefusingUdpPort::reserve()
        .map_err(|err| Failure::new(format!("reserving a UDP port: {err}")))?;
    let args = timeout_args();
    let port = refusing.addr.port().to_string();
    let launch = ctx.launch(
        CLIENT,
        ["127.0.0.1", &port, CLIENT_MESSAGE, &args[0], &args[1]],
    )?;
    let mut process = ctx.spawn(&launch)?;
    let deadline = ctx.within(RUN_LIMIT);
    // Nothing arrives to say when the client sent; its socket, bound, says
    // it is about to (step 3 binds, then sends at once): its wait starts
    // about there, however long the program took to start up. `/proc`
    // cannot be waited on: look every few milliseconds until the socket is
    // there or the client has ended.
    let pid = process.pid();
    let mut bound = None;
    procfs::watch_until(deadline, || {
        if holds_a_bound_udp_socket(pid) {
            bound = Some(Instant::now());
        }
        bound.is_some() || process.exit_status().is_some()
    });
    let finished = process.finish(deadline);
    expect_no_connection(&finished, "that no server is there")?;
    // A client that `connect`s hears "port unreachable" and may stop at
    // once; one that does not waits its timeout. Both are fine, later is not.
    let late = match bound {
        Some(bound) => {
            let waited = finished
                .exit_seen
                .saturating_duration_since(bound)
                .as_secs_f64();
            let limit = give_up_limit(ctx);
            (waited > limit).then(|| {
                Failure::new(format!(
                    "{CLIENT} gave up only {waited:.2} s after opening its socket, with \
                     --timeout {TIMEOUT}"
                ))
                .expected(format!(
                    "`{NO_CONNECTION}` within {TIMEOUT} s of sending (at most {limit:.1} s)"
                ))
            })
        }
        // The client ended before its socket was seen (a refused client
        // may end at once), or `/proc` cannot say: only its whole run,
        // start-up included, can be timed.
        None => {
            let elapsed = finished.elapsed.as_secs_f64();
            let limit = TIMEOUT + STARTUP_MARGIN * ctx.scaled(1.0).as_secs_f64();
            (elapsed > limit).then(|| {
                Failure::new(format!(
                    "{CLIENT} gave up only after {elapsed:.2} s, with --timeout {TIMEOUT}"
                ))
                .expected(format!("`{NO_CONNECTION}` within {limit:.1} s of starting"))
            })
        }
    };
    match late {
        Some(failure) => Err(failure.detail(
            "with no server, an unconnected socket hears nothing and gives up when its \
             --timeout runs out, and a connected one hears \"port unreachable\" \
             (ConnectionRefused) at once: neither is a reason to wait longer, or to try again",
        )),
        None => Ok(()),
    }
}
