//! Lab 5 — UDP: datagrams, `recv_from`/`send_to`, message boundaries, no
//! delivery guarantee, and a client that times out. Contract: "Lab 5" in the
//! handout, `labs/udp/README.md`.
//!
//! The server checks talk to `udp-server` from grader sockets; the client
//! checks run `udp-client` against grader peers (a socket that answers, one
//! that answers late, one that never answers, a refusing port). Only
//! `client_timeout` and `client_no_server` may wait for a timeout: the
//! client's own, set short with `--timeout`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::process::Finished;
use crate::harness::snapshot::redact;
use crate::harness::udp::{self, Datagram, RefusingUdpPort, UdpPeer};
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};
use crate::runner::CheckFn;

const SERVER: &str = "udp-server";
const CLIENT: &str = "udp-client";
/// The server's answer to every datagram.
const REPLY: &[u8] = b"Got your message!";
const HELLO: &[u8] = b"Hello, UDP";
/// What `udp-client` is asked to send: text with a space, a comma and an
/// emoji, so that it must go out as the exact UTF-8 bytes of the argument.
const CLIENT_MESSAGE: &str = "Hello, UDP \u{1f436}";
/// The line the client prints when no reply comes.
const NO_CONNECTION: &str = "No connection between client and server";
/// The `--timeout` of the timeout checks: not the default, and a decimal.
const TIMEOUT: f64 = 1.2;
/// How much later than its timeout a client may give up, counted from when
/// its datagram arrived: a loaded machine, never a second timeout (a client
/// that ignores `--timeout` and waits the default 3 s is past it).
const MARGIN: f64 = 1.5;
/// The same, counted from when the program was started: an interpreter may
/// take seconds to start on a loaded machine.
const STARTUP_MARGIN: f64 = 4.0;
/// When the grader stops a client: a correct one has long finished.
const RUN_LIMIT: f64 = 8.0;

/// The checks of lab 5, in rubric order.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("udp.reply", reply),
    ("udp.server_log", server_log),
    ("udp.two_clients", two_clients),
    ("udp.large_datagram", large_datagram),
    ("udp.empty_datagram", empty_datagram),
    ("udp.binary_datagram", binary_datagram),
    ("udp.burst", burst),
    ("udp.client_reply", client_reply),
    ("udp.client_binary_reply", client_binary_reply),
    ("udp.client_stranger", client_stranger),
    ("udp.client_delayed", client_delayed),
    ("udp.client_timeout", client_timeout),
    ("udp.client_no_server", client_no_server),
];

// ---------------------------------------------------------------------------
// Server checks
// ---------------------------------------------------------------------------

/// A grader socket on a free loopback port.
fn grader_socket() -> Result<UdpSocket, Failure> {
    udp::bind()
        .map_err(|err| Failure::new(format!("the grader could not open a UDP socket: {err}")))
}

/// The address a grader socket sends from: what the server must log and
/// reply to.
fn local_addr(socket: &UdpSocket) -> Result<SocketAddr, Failure> {
    socket
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))
}

/// Sends one datagram from `socket` to the server, noting it for `--verbose`.
fn send(ctx: &Ctx, socket: &UdpSocket, data: &[u8], server: &Server) -> Result<(), Failure> {
    let from = local_addr(socket)?;
    ctx.note_command(format!(
        "(grader) from {from} send the datagram {} to {}",
        show::bytes(data, 60),
        server.addr
    ));
    socket.send_to(data, server.addr).map(drop).map_err(|err| {
        Failure::new(format!(
            "the grader could not send a datagram to {}: {err}",
            server.addr
        ))
    })
}

/// Waits for `Got your message!` from the server's address on `socket`;
/// `what` names the datagram it answers.
fn expect_reply(
    server: &mut Server,
    socket: &UdpSocket,
    deadline: Instant,
    what: &str,
) -> Result<(), Failure> {
    let waited = Instant::now();
    let (reply, others) = udp::recv_from_until(socket, server.addr, deadline).map_err(|err| {
        server.explain(Failure::new(format!(
            "waiting for the reply to {what}, the grader's socket failed: {err}"
        )))
    })?;
    match reply {
        Some(reply) if reply.bytes == REPLY => Ok(()),
        Some(reply) => Err(server.explain(
            Failure::new(format!("the reply to {what} is not `Got your message!`"))
                .expected(show::bytes(REPLY, 60))
                .actual(show::bytes(&reply.bytes, 120))
                .detail(show::first_difference(REPLY, &reply.bytes).unwrap_or_default()),
        )),
        None => {
            let mut failure = Failure::new(format!(
                "no reply to {what} came from {} within {:.1} s",
                server.addr,
                waited.elapsed().as_secs_f64()
            ))
            .expected(format!(
                "the datagram {} from {}, the address the server announced",
                show::bytes(REPLY, 60),
                server.addr
            ));
            if let Some(other) = others.first() {
                failure = failure
                    .actual(format!(
                        "{} came from {} instead",
                        show::bytes(&other.bytes, 60),
                        other.from
                    ))
                    .detail(
                        "reply with send_to on the socket that received the datagram: a reply \
                         from another socket comes from another port, and clients ignore it",
                    );
            } else {
                failure = failure.actual(format!(
                    "nothing arrived at {}",
                    local_addr(socket)
                        .map_or_else(|_| "the grader's socket".into(), |a| a.to_string())
                ));
            }
            Err(server.explain(failure))
        }
    }
}

/// The log line the server must print for `data` from `peer`.
fn log_line(peer: SocketAddr, data: &[u8]) -> String {
    format!("Got message from {peer}: b\"{}\"", data.escape_ascii())
}

/// Waits until the server logs `data` from `peer` exactly; the failure says
/// what it logged for that peer instead, byte by byte.
fn expect_log(
    ctx: &Ctx,
    server: &mut Server,
    peer: SocketAddr,
    data: &[u8],
) -> Result<(), Failure> {
    let expected = log_line(peer, data);
    if server
        .wait_for_line(ctx.within(5.0), |line| line.trim_end() == expected)
        .is_some()
    {
        return Ok(());
    }
    let lines = server.lines();
    let prefix = format!("Got message from {peer}: ");
    let mine = lines.iter().find(|line| line.starts_with(&prefix));
    let failure = match mine {
        None => Failure::new(format!(
            "the server did not log the datagram from {peer} as the contract says"
        ))
        .expected(show::bytes(expected.as_bytes(), 160))
        .actual(format!(
            "the server's log:\n{}",
            show::indent(&show::head(&server.stdout(), 10), 4)
        ))
        .detail("PEER is the sender's address as recv_from reports it, printed as `SocketAddr` prints it"),
        Some(line) => {
            let body = line.trim_end()[prefix.len()..]
                .strip_prefix("b\"")
                .and_then(|rest| rest.strip_suffix('"'));
            let failure = Failure::new(format!(
                "the server logged the {}-byte datagram from {peer} differently",
                data.len()
            ))
            .expected(show::bytes(expected.as_bytes(), 160))
            .actual(show::bytes(line.as_bytes(), 160));
            match body.and_then(show::unescape_ascii) {
                Some(logged) => failure.detail(
                    show::first_difference(data, &logged)
                        .map(|difference| format!("in the bytes logged, {difference}"))
                        .unwrap_or_default(),
                ),
                None => failure.detail(
                    "show the bytes as a Rust byte string: b\"…\" with `escape_ascii()`",
                ),
            }
        }
    };
    Err(server.explain(failure))
}

/// One datagram, answered from the server's address.
fn reply(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let socket = grader_socket()?;
    send(ctx, &socket, HELLO, &server)?;
    expect_reply(&mut server, &socket, ctx.within(5.0), "b\"Hello, UDP\"")
}

/// The contract's lines, ports redacted: `Listening on` and `Got message from`.
fn contract_lines(server: &Server) -> String {
    let lines: Vec<String> = server
        .lines()
        .into_iter()
        .filter(|line| line.starts_with("Listening on ") || line.starts_with("Got message from "))
        .collect();
    redact(&lines.join("\n"))
}

fn server_log(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let socket = grader_socket()?;
    send(ctx, &socket, HELLO, &server)?;
    expect_reply(&mut server, &socket, ctx.within(5.0), "b\"Hello, UDP\"")?;
    expect_log(ctx, &mut server, local_addr(&socket)?, HELLO)?;
    ctx.snapshot(&contract_lines(&server))
}

fn two_clients(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let first = grader_socket()?;
    let second = grader_socket()?;
    // Both datagrams are on their way before either reply is read: the
    // server sees two senders at once, as it would on a network.
    send(ctx, &first, b"from the first client", &server)?;
    send(ctx, &second, b"from the second client", &server)?;
    let deadline = ctx.within(5.0);
    expect_reply(&mut server, &first, deadline, "the first client's datagram")?;
    if let Err(failure) = expect_reply(
        &mut server,
        &second,
        deadline,
        "the second client's datagram",
    ) {
        let extra = udp::drain(&first).map_or(0, |datagrams| datagrams.len());
        return Err(if extra > 0 {
            failure.detail(format!(
                "the first client got {} replies: the reply to the second client went to the \
                 first one. Reply to the address recv_from returned with each datagram.",
                extra + 1
            ))
        } else {
            failure
        });
    }
    expect_log(
        ctx,
        &mut server,
        local_addr(&first)?,
        b"from the first client",
    )?;
    expect_log(
        ctx,
        &mut server,
        local_addr(&second)?,
        b"from the second client",
    )
}

fn large_datagram(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let socket = grader_socket()?;
    let mut rng = ctx.rng();
    let payload: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(8192).collect();
    send(ctx, &socket, &payload, &server)?;
    expect_reply(
        &mut server,
        &socket,
        ctx.within(5.0),
        "an 8192-byte datagram",
    )?;
    expect_log(ctx, &mut server, local_addr(&socket)?, &payload)
        .map_err(|failure| failure.detail(format!("the payload came from seed {}", ctx.seed())))
}

/// Sends `data`, expects its reply and log line, then checks the server
/// still answers the next datagram.
fn handled_and_alive(ctx: &Ctx, data: &[u8], what: &str) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let socket = grader_socket()?;
    send(ctx, &socket, data, &server)?;
    expect_reply(&mut server, &socket, ctx.within(5.0), what)?;
    expect_log(ctx, &mut server, local_addr(&socket)?, data)?;
    let after = b"and one more after it";
    send(ctx, &socket, after, &server)?;
    expect_reply(
        &mut server,
        &socket,
        ctx.within(5.0),
        &format!("the datagram sent after {what}"),
    )
}

fn empty_datagram(ctx: &Ctx) -> CheckResult {
    handled_and_alive(ctx, b"", "an empty datagram")
}

/// Not UTF-8 (a lone continuation byte, an invalid sequence), with a NUL,
/// quotes, a backslash and control characters that the log must escape.
const BINARY: &[u8] = b"\xff\xfe\x00\x80 not UTF-8: \xc3\x28 \"q\" \\ \n\t\x7f";

fn binary_datagram(ctx: &Ctx) -> CheckResult {
    handled_and_alive(ctx, BINARY, "a datagram that is not UTF-8")
}

fn burst(ctx: &Ctx) -> CheckResult {
    const SOCKETS: usize = 4;
    const EACH: usize = 250;
    let mut server = ctx.server(SERVER)?;
    let senders: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| grader_socket())
        .collect::<Result<_, _>>()?;
    ctx.note_command(format!(
        "(grader) send {} datagrams to {} from {SOCKETS} sockets as fast as possible",
        SOCKETS * EACH,
        server.addr
    ));
    for index in 0..EACH {
        for socket in &senders {
            // A datagram the kernel drops is part of the scenario, and so is
            // a send that fails while queues are full.
            let _ = socket.send_to(format!("burst datagram {index}").as_bytes(), server.addr);
        }
    }
    // Still alive? Ask again every so often: the server may be busy with
    // the burst, and UDP may drop a question as well as an answer.
    let probe = grader_socket()?;
    let deadline = ctx.within(8.0);
    let mut answered = None;
    while answered.is_none() && Instant::now() < deadline {
        let _ = probe.send_to(b"still there?", server.addr);
        let wait = (Instant::now() + Duration::from_millis(300)).min(deadline);
        let (reply, _) = udp::recv_from_until(&probe, server.addr, wait)
            .map_err(|err| Failure::new(format!("the grader's probe socket failed: {err}")))?;
        answered = reply;
    }
    let Some(answer) = answered else {
        return Err(server.explain(
            Failure::new(format!(
                "after a burst of {} datagrams the server no longer answers",
                SOCKETS * EACH
            ))
            .expected("`Got your message!` to a new datagram (asked again every 0.3 s)")
            .actual(format!("no answer from {}", server.addr))
            .detail(format!(
                "the server logged {} `Got message from` lines",
                server
                    .lines()
                    .iter()
                    .filter(|line| line.starts_with("Got message from "))
                    .count()
            )),
        ));
    };
    let mut replies: Vec<Datagram> = vec![answer];
    for socket in &senders {
        let got = udp::drain(socket)
            .map_err(|err| Failure::new(format!("the grader's socket failed: {err}")))?;
        if got.len() > EACH {
            return Err(Failure::new(format!(
                "one socket sent {EACH} datagrams and got {} replies",
                got.len()
            ))
            .expected("at most one reply per datagram, to its sender"));
        }
        replies.extend(got);
    }
    if let Some(wrong) = replies
        .iter()
        .find(|reply| reply.bytes != REPLY || reply.from != server.addr)
    {
        return Err(server.explain(
            Failure::new("under load, a reply was not `Got your message!` from the server")
                .expected(format!("{} from {}", show::bytes(REPLY, 60), server.addr))
                .actual(format!(
                    "{} from {}",
                    show::bytes(&wrong.bytes, 100),
                    wrong.from
                )),
        ));
    }
    if let Some(status) = server.process.exit_status() {
        return Err(Failure::new("the server exited during the burst")
            .actual(crate::harness::process::describe_status(Some(status))));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Client checks
// ---------------------------------------------------------------------------

/// What a grader peer saw: the client's first datagram, if one came.
type Request = Option<Datagram>;

/// Starts a grader peer that waits for the client's datagram (until
/// `deadline`) and then plays `answer` with its socket and that datagram.
fn peer(
    deadline: Instant,
    answer: impl FnOnce(&UdpSocket, &Datagram) -> std::io::Result<()> + Send + 'static,
) -> Result<UdpPeer<Request>, Failure> {
    UdpPeer::start(move |socket| {
        let request = udp::recv_until(&socket, deadline)?;
        if let Some(request) = &request {
            answer(&socket, request)?;
        }
        Ok(request)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its UDP server: {err}")))
}

/// Runs the client with `HOST PORT MESSAGE` and `extra` arguments.
fn run_client(
    ctx: &Ctx,
    addr: SocketAddr,
    extra: &[&str],
    seconds: f64,
) -> Result<Finished, Failure> {
    let port = addr.port().to_string();
    let mut args = vec!["127.0.0.1", port.as_str(), CLIENT_MESSAGE];
    args.extend_from_slice(extra);
    ctx.run(&ctx.launch(CLIENT, args)?, seconds)
}

/// Checks that the peer got exactly the client's message, as one datagram.
fn expect_request(peer: &UdpPeer<Request>, finished: &Finished) -> Result<(), Failure> {
    let outcome = peer.outcome_until(Instant::now() + Duration::from_secs(1));
    let request = match outcome {
        Some(Ok(Some(request))) => request,
        Some(Err(err)) => {
            return Err(Failure::new(format!(
                "the grader's UDP server failed: {err}"
            )));
        }
        Some(Ok(None)) | None => {
            return Err(
                Failure::new(format!("{CLIENT} sent nothing to {}", peer.addr))
                    .expected(format!(
                        "one datagram {}",
                        show::bytes(CLIENT_MESSAGE.as_bytes(), 60)
                    ))
                    .actual(finished.describe())
                    .detail(finished.stderr_detail()),
            );
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
fn expect_printed_reply(
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
        } else {
            failure = failure
                .detail("print the reply as a Rust byte string: b\"…\" with `escape_ascii()`");
        }
    }
    Err(failure.detail(finished.stderr_detail()))
}

fn client_reply(ctx: &Ctx) -> CheckResult {
    let peer = peer(ctx.within(RUN_LIMIT), |socket, request| {
        socket.send_to(REPLY, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(&peer, &finished)?;
    expect_printed_reply(&finished, peer.addr, REPLY)?;
    // The contract's line only: other lines a client prints are its own.
    let stdout = finished.stdout_text();
    let replies: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("Got reply from "))
        .collect();
    ctx.snapshot(&redact(&replies.join("\n")))
}

/// A reply that is not text, with bytes the client must escape.
const BINARY_REPLY: &[u8] = b"Got \xff\xfe \"quoted\" \\ \n\ttab \xf0\x9f\x90\xb6";

fn client_binary_reply(ctx: &Ctx) -> CheckResult {
    let peer = peer(ctx.within(RUN_LIMIT), |socket, request| {
        socket.send_to(BINARY_REPLY, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(&peer, &finished)?;
    expect_printed_reply(&finished, peer.addr, BINARY_REPLY)
}

const STRANGER: &[u8] = b"I am not the server";

fn client_stranger(ctx: &Ctx) -> CheckResult {
    let stranger = grader_socket()?;
    let stranger_addr = local_addr(&stranger)?;
    let peer = peer(ctx.within(RUN_LIMIT), move |socket, request| {
        // The client's port is known only from its datagram. The stranger
        // writes to it first; the pause lets its datagram arrive before the
        // real reply, as it would when a stranger is quicker than a server.
        stranger.send_to(STRANGER, request.from)?;
        thread::sleep(Duration::from_millis(100));
        socket.send_to(REPLY, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(&peer, &finished)?;
    expect_printed_reply(&finished, peer.addr, REPLY).map_err(|failure| {
        if finished.stdout_text().contains(&stranger_addr.to_string()) {
            failure.detail(format!(
                "{stranger_addr} is a stranger that sent {} to the client's port before the \
                 server answered: check the address recv_from returns and keep waiting \
                 (or `connect` the socket to the server, so the kernel filters)",
                show::bytes(STRANGER, 40)
            ))
        } else {
            failure
        }
    })
}

/// How long the delayed peer waits before it answers: well inside the
/// default 3 s timeout.
const DELAY: Duration = Duration::from_millis(1500);

fn client_delayed(ctx: &Ctx) -> CheckResult {
    let peer = peer(ctx.within(RUN_LIMIT), |socket, request| {
        thread::sleep(DELAY);
        socket.send_to(REPLY, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(&peer, &finished)?;
    expect_printed_reply(&finished, peer.addr, REPLY).map_err(|failure| {
        failure.detail(format!(
            "the server answered {:.1} s after the datagram; without --timeout the client \
             waits 3 s",
            DELAY.as_secs_f64()
        ))
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
    Err(
        Failure::new(format!("{CLIENT} did not report {situation} cleanly"))
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
            }),
    )
}

/// The `--timeout` arguments of the timeout checks.
fn timeout_args() -> [String; 2] {
    ["--timeout".to_owned(), TIMEOUT.to_string()]
}

fn client_timeout(ctx: &Ctx) -> CheckResult {
    // Bound, so nothing tells the client "no one is here": it can only wait.
    let silent = grader_socket()?;
    let addr = local_addr(&silent)?;
    // A watcher notes when the client's datagram arrives: the client's wait
    // starts there, however long the program took to start up on a loaded
    // machine. The socket itself stays open, held here, until the end.
    let watcher = silent
        .try_clone()
        .map_err(|err| Failure::new(format!("the grader's socket failed: {err}")))?;
    let (report, arrival) = mpsc::channel();
    let watch_until = ctx.within(RUN_LIMIT);
    thread::spawn(move || {
        let got = udp::recv_until(&watcher, watch_until);
        let _ = report.send(got.map(|datagram| datagram.map(|d| (d, Instant::now()))));
    });
    let args = timeout_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = Instant::now();
    let finished = run_client(ctx, addr, &args, RUN_LIMIT)?;
    // No later than the moment its exit was seen.
    let ended = before + finished.elapsed;
    let arrived = match arrival.recv_timeout(Duration::from_secs(1)) {
        Ok(Ok(Some((datagram, at)))) if datagram.bytes == CLIENT_MESSAGE.as_bytes() => at,
        Ok(Err(err)) => {
            return Err(Failure::new(format!("the grader's socket failed: {err}")));
        }
        other => {
            return Err(Failure::new(format!(
                "{CLIENT} did not send its message to the server's address"
            ))
            .expected(format!(
                "the datagram {}",
                show::bytes(CLIENT_MESSAGE.as_bytes(), 60)
            ))
            .actual(match other {
                Ok(Ok(Some((datagram, _)))) => show::bytes(&datagram.bytes, 100),
                _ => format!("nothing arrived; the client: {}", finished.describe()),
            })
            .detail(finished.stderr_detail()));
        }
    };
    expect_no_connection(&finished, "a server that never answers")?;
    // Timed from the datagram's arrival, so that a slow start-up cannot
    // make a fixed, shorter timeout look right; timers may fire a little
    // early, never by a tenth.
    let waited = ended.saturating_duration_since(arrived).as_secs_f64();
    if waited < TIMEOUT * 0.9 {
        return Err(Failure::new(format!(
            "{CLIENT} gave up {waited:.2} s after sending, before its --timeout of {TIMEOUT} s"
        ))
        .expected(format!("wait {TIMEOUT} s for a reply, then give up"))
        .detail("set the timeout on the socket (set_read_timeout) from the --timeout argument; a non-blocking read gives up at once"));
    }
    let limit = TIMEOUT + MARGIN * ctx.scaled(1.0).as_secs_f64();
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

fn client_no_server(ctx: &Ctx) -> CheckResult {
    let refusing = RefusingUdpPort::reserve()
        .map_err(|err| Failure::new(format!("reserving a UDP port: {err}")))?;
    let args = timeout_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let finished = run_client(ctx, refusing.addr, &args, RUN_LIMIT)?;
    expect_no_connection(&finished, "that no server is there")?;
    // A client that `connect`s hears "port unreachable" and may stop at
    // once; one that does not waits its timeout. Both are fine, later is not.
    // Nothing arrives here to say when the client sent, so its start-up
    // counts too: hence the larger margin.
    let elapsed = finished.elapsed.as_secs_f64();
    let limit = TIMEOUT + STARTUP_MARGIN * ctx.scaled(1.0).as_secs_f64();
    if elapsed > limit {
        return Err(Failure::new(format!(
            "{CLIENT} gave up only after {elapsed:.2} s, with --timeout {TIMEOUT}"
        ))
        .expected(format!("`{NO_CONNECTION}` within {limit:.1} s of starting")));
    }
    Ok(())
}
