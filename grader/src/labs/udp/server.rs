//! Server checks: `udp-server` against datagrams from grader sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness::net::udp::{self, Datagram, Udp};
use crate::harness::observe::stall;
use crate::harness::payload;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Evidence, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::{HELLO, REPLY, SERVER, TRUNCATED_HINT, truncated};

/// Starts the graded server. Whichever datagram makes it crash on decoding
/// UTF-8, the lesson is the same: a datagram is bytes, not text.
fn start(ctx: &Ctx) -> Result<Server, Failure> {
    Ok(ctx.server(SERVER)?.on(
        Evidence::TextDecodingCrash,
        "Datagrams are bytes, not text: log them with `escape_ascii()` and never convert them to a String with `unwrap` (that panics on invalid UTF-8).",
        "#a-datagram-is-bytes-not-text",
    ))
}

/// A grader socket on a free loopback port.
pub(super) fn grader_socket() -> Result<Udp, Failure> {
    udp::bind()
        .map_err(|err| Failure::new(format!("the grader could not open a UDP socket: {err}")))
}

/// The address a grader socket sends from: what the server must log and
/// reply to.
pub(super) fn local_addr(socket: &Udp) -> Result<SocketAddr, Failure> {
    socket
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))
}

/// Sends one datagram from `socket` to the server, noting it for `--verbose`.
pub(super) fn send(ctx: &Ctx, socket: &Udp, data: &[u8], server: &Server) -> Result<(), Failure> {
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

/// What to do about replies that leave from another socket than the one
/// that received, whichever check sees them: one cause, explained once.
const REPLY_FROM_ANOTHER_SOCKET: &str = "Reply with `send_to` on the socket that received the datagram: a reply from another socket comes from another port, and clients ignore it.";

/// What to do about a server that bound another address than HOST, or
/// announced another than it bound, whichever check sees its replies.
const BIND_HOST: &str = "Bind the socket to (HOST, PORT) from the arguments, not to 0.0.0.0, and print `Listening on` with `socket.local_addr()`: the address clients send to is the one replies must come from.";

/// `failure`, explained by a datagram that came from `from` rather than
/// from `announced`, the address in the server's `Listening on` line.
fn came_from_elsewhere(failure: Failure, announced: SocketAddr, from: SocketAddr) -> Failure {
    if from.port() != announced.port() {
        return failure.diagnosis(REPLY_FROM_ANOTHER_SOCKET, "#who-sent-this");
    }
    let (failure, detail) = if announced.ip().is_unspecified() {
        let failure = failure.expected(format!(
            "`Listening on 127.0.0.1:{}`: a socket bound to HOST, 127.0.0.1 as the grader \
             asked, and replies from that address",
            announced.port()
        ));
        let detail = format!(
            "the reply left from the server's port, but the server announced {announced}, the \
             unspecified address: it bound {} instead of HOST (the grader passes 127.0.0.1), \
             so it is reached on every address of the machine and answers from the one a \
             datagram came to ({})",
            announced.ip(),
            from.ip()
        );
        (failure, detail)
    } else {
        let detail = format!(
            "the reply left from the server's port, but from {}, not {}, the address the \
             server announced: announce the address the socket really got (local_addr())",
            from.ip(),
            announced.ip()
        );
        (failure, detail)
    };
    failure
        .detail(detail)
        .diagnosis(BIND_HOST, "#step-1-the-server-binds")
}

/// Waits for `Got your message!` from the server's address on `socket`;
/// `what` names the datagram it answers.
fn expect_reply(
    server: &mut Server,
    socket: &Udp,
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
            let expected = format!(
                "the datagram {} from {}, the address the server announced",
                show::bytes(REPLY, 60),
                server.addr
            );
            let failure = match others.first() {
                Some(other) => came_from_elsewhere(
                    Failure::new(format!(
                        "the reply to {what} came from {}, not from {}, the address the server \
                         announced",
                        other.from, server.addr
                    ))
                    .expected(expected)
                    .actual(format!(
                        "{} came from {}",
                        show::bytes(&other.bytes, 60),
                        other.from
                    )),
                    server.addr,
                    other.from,
                ),
                None => Failure::new(format!(
                    "no reply to {what} came from {} within {:.1} s",
                    server.addr,
                    waited.elapsed().as_secs_f64()
                ))
                .expected(expected)
                .actual(format!(
                    "nothing arrived at {}",
                    local_addr(socket)
                        .map_or_else(|_| "the grader's socket".into(), |a| a.to_string())
                )),
            };
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
    // It answered (expect_reply comes first), yet no line but its
    // `Listening on` reached the grader (at most a buffer's worth of one,
    // cut short): its output waits in a buffer, whichever datagram was sent.
    let printed_no_line = lines.len() <= 1 && server.stderr_lines().is_empty();
    let failure = match mine {
        None if printed_no_line => Failure::new(format!(
            "the server answered the datagram from {peer} but printed no log line"
        ))
        .expected(show::bytes(expected.as_bytes(), 160))
        .actual(format!(
            "the server's output so far:\n{}",
            show::indent(&show::head(&server.stdout(), 10), 4)
        ))
        .detail("is stdout flushed after each line? A program whose output is a pipe, not a terminal, may keep its lines in a buffer and write them out a buffer's worth at a time, cut anywhere")
        .diagnosis(
            "The server answered but printed no log line: is stdout flushed after each line? Print `Got message from PEER: b\"…\"` for every datagram, and flush stdout after each line.",
            "#what-the-server-prints",
        ),
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
            // U+FFFD where the datagram had bytes that are not UTF-8: the
            // server decoded it as text before logging it.
            let decoded_as_text = !show::holds_replacement(data)
                && (show::holds_replacement(line.as_bytes())
                    || body
                        .and_then(show::unescape_ascii)
                        .is_some_and(|logged| show::holds_replacement(&logged)));
            if decoded_as_text {
                return Err(server.explain(failure
                    .detail("the log shows U+FFFD (�) where the datagram had bytes that are not UTF-8")
                    .diagnosis(
                        "The server decoded the datagram as text (`String::from_utf8_lossy`) before logging it, which replaces every byte that is not UTF-8 with U+FFFD: log the bytes themselves with `escape_ascii()`.",
                        "#a-datagram-is-bytes-not-text",
                    )));
            }
            match body.and_then(show::unescape_ascii) {
                // Only the start of the datagram, or none of it: recv_from's
                // buffer is shorter than the datagram (an empty `Vec` holds
                // none of it), or the log takes fewer bytes than it filled.
                Some(logged) if logged.len() < data.len() && data.starts_with(&logged) => failure
                    .detail(format!(
                        "the server logged {} for a {}-byte datagram",
                        if logged.is_empty() {
                            "no bytes (b\"\")".to_owned()
                        } else {
                            format!("its first {} bytes", logged.len())
                        },
                        data.len()
                    ))
                    .detail(truncated(logged.len(), data.len()))
                    .diagnosis(
                        format!("{TRUNCATED_HINT} Log exactly those bytes, `&buf[..n]`, through `escape_ascii()`."),
                        "#datagrams-have-edges",
                    ),
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
pub(super) fn reply(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
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

pub(super) fn server_log(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let socket = grader_socket()?;
    send(ctx, &socket, HELLO, &server)?;
    expect_reply(&mut server, &socket, ctx.within(5.0), "b\"Hello, UDP\"")?;
    expect_log(ctx, &mut server, local_addr(&socket)?, HELLO)?;
    ctx.snapshot(&contract_lines(&server))
}

pub(super) fn two_clients(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
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
    )?;
    // A third client, once the first two are answered: a server that
    // remembered an earlier client (or `connect`ed its socket to it) has
    // no reply, or no ear, for a newcomer.
    let third = grader_socket()?;
    let third_addr = local_addr(&third)?;
    send(ctx, &third, THIRD, &server)?;
    expect_reply(
        &mut server,
        &third,
        ctx.within(5.0),
        "a third client's datagram, sent once the first two were answered",
    )
    .map_err(|failure| unheard_newcomer(&mut server, failure, third_addr))?;
    expect_log(ctx, &mut server, third_addr, THIRD)
}

/// What the third client of `two_clients` sends.
const THIRD: &[u8] = b"from a third client, later";

/// `failure`, for a newcomer's datagram the server did not even log: its
/// socket no longer hears new senders, as one `connect`ed to an earlier
/// client's address does (the kernel drops every other sender's datagram).
fn unheard_newcomer(server: &mut Server, failure: Failure, newcomer: SocketAddr) -> Failure {
    let heard = format!("Got message from {newcomer}");
    let alive = server.process.exit_status().is_none();
    if !alive || server.lines().iter().any(|line| line.starts_with(&heard)) {
        return failure;
    }
    failure
        .detail(format!(
            "the server is running but logged nothing from {newcomer}: its socket no longer \
             receives from new senders, as a socket `connect`ed to an earlier client does (the \
             kernel then drops datagrams from every other address)"
        ))
        .diagnosis(
            "A server's socket answers everybody: never `connect` it to a client. Take the sender from each `recv_from` and reply to it with `send_to` on the same socket.",
            "#who-sent-this",
        )
}

pub(super) fn large_datagram(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let socket = grader_socket()?;
    let mut rng = ctx.rng();
    let payload = payload::bytes(&mut rng, 8192);
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
    let mut server = start(ctx)?;
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

pub(super) fn empty_datagram(ctx: &Ctx) -> CheckResult {
    handled_and_alive(ctx, b"", "an empty datagram")
}

/// Not UTF-8 (a lone continuation byte, an invalid sequence), with a NUL,
/// quotes, a backslash and control characters that the log must escape.
const BINARY: &[u8] = b"\xff\xfe\x00\x80 not UTF-8: \xc3\x28 \"q\" \\ \n\t\x7f";

pub(super) fn binary_datagram(ctx: &Ctx) -> CheckResult {
    handled_and_alive(ctx, BINARY, "a datagram that is not UTF-8")
}

pub(super) fn burst(ctx: &Ctx) -> CheckResult {
    const SOCKETS: usize = 4;
    const EACH: usize = 250;
    let mut server = start(ctx)?;
    let senders: Vec<Udp> = (0..SOCKETS)
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
    // What came to the probe from elsewhere: the first, and how many.
    let mut elsewhere: (Option<Datagram>, usize) = (None, 0);
    let heard_probe = format!("Got message from {}", local_addr(&probe)?);
    let mut watch = stall::Watch::new().programs_only();
    let mut stalled = None;
    while answered.is_none() && Instant::now() < deadline {
        let _ = probe.send_to(b"still there?", server.addr);
        let wait = (Instant::now() + Duration::from_millis(300)).min(deadline);
        let (reply, others) = udp::recv_from_until(&probe, server.addr, wait)
            .map_err(|err| Failure::new(format!("the grader's probe socket failed: {err}")))?;
        answered = reply;
        elsewhere.1 += others.len();
        if elsewhere.0.is_none() {
            elsewhere.0 = others.into_iter().next();
        }
        // Fail fast: a server that has exited answers no more, and one that
        // logged three probes without answering them answers elsewhere.
        let logged = server
            .lines()
            .iter()
            .filter(|line| line.starts_with(&heard_probe))
            .count();
        if answered.is_none() && (server.process.exit_status().is_some() || logged >= 3) {
            break;
        }
        // A server that sleeps and reads none of the probes (a socket
        // connected to one sender drops the others' datagrams) never will.
        if answered.is_none() {
            stalled = watch.stalled();
            if stalled.is_some() {
                break;
            }
        }
    }
    let Some(answer) = answered else {
        let logged = format!(
            "the server logged {} `Got message from` lines",
            server
                .lines()
                .iter()
                .filter(|line| line.starts_with("Got message from "))
                .count()
        );
        let expected = "`Got your message!` to a new datagram (asked again every 0.3 s)";
        let failure = match elsewhere {
            (Some(other), count) => came_from_elsewhere(
                Failure::new(format!(
                    "after a burst of {} datagrams, the answers to the grader's new datagram \
                     came from {}, not from {}, the address the server announced",
                    SOCKETS * EACH,
                    other.from,
                    server.addr
                ))
                .expected(format!("{expected}, from {}", server.addr))
                .actual(format!(
                    "{} datagram{} came from elsewhere, the first {} from {}; none from {}",
                    count,
                    if count == 1 { "" } else { "s" },
                    show::bytes(&other.bytes, 60),
                    other.from,
                    server.addr
                ))
                .detail(logged),
                server.addr,
                other.from,
            ),
            (None, _) => Failure::new(format!(
                "after a burst of {} datagrams the server no longer answers",
                SOCKETS * EACH
            ))
            .expected(expected)
            .actual(format!("nothing came back to {}", local_addr(&probe)?))
            .detail(logged),
        };
        let failure = match stalled {
            Some(why) => failure.detail(format!("the grader stopped asking: {why}")),
            None => failure,
        };
        return Err(server.explain(failure));
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
        let failure =
            Failure::new("under load, a reply was not `Got your message!` from the server")
                .expected(format!("{} from {}", show::bytes(REPLY, 60), server.addr))
                .actual(format!(
                    "{} from {}",
                    show::bytes(&wrong.bytes, 100),
                    wrong.from
                ));
        return Err(server.explain(if wrong.from == server.addr {
            failure
        } else {
            came_from_elsewhere(failure, server.addr, wrong.from)
        }));
    }
    if let Some(status) = server.process.exit_status() {
        return Err(Failure::new("the server exited during the burst")
            .actual(crate::harness::process::describe_status(Some(status))));
    }
    Ok(())
}
