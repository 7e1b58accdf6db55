//! The `echo-server` checks: echoes whole and in pieces, the half-close,
//! a second client, the log and IPv6.

use std::net::Shutdown;

use crate::harness::ipv6;
use crate::harness::net::{self, SendPlan};
use crate::harness::observe::procfs;
use crate::harness::payload;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Evidence, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::{HELLO, SERVER};

/// Starts the graded server. A server that dies decoding the grader's bytes
/// as UTF-8 (`String::from_utf8(..).unwrap()`) treated the data as text:
/// whichever check's payload did it, Step 2's paragraph on bytes teaches
/// the fix.
fn start(ctx: &Ctx) -> Result<Server, Failure> {
    Ok(ctx.server(SERVER)?.on(
        Evidence::TextDecodingCrash,
        "The data is bytes, not text: the grader sends bytes that are not valid UTF-8. Echo the `&buffer[..n]` you read as it is, without turning it into a `String` (`from_utf8(..).unwrap()` panics on them).",
        "#step-2-the-echo-loop",
    ))
}

/// What a wrong echo says of the server's loop; Step 2 names both bugs:
/// - U+FFFD where the payload had a byte that is not UTF-8: the server
///   decoded the bytes into text, lossily, and encoded them back;
/// - longer than what was sent and beginning with it: the server wrote
///   back more than `read` returned, its whole buffer with the stale bytes
///   after the `n` it read.
fn wrong_echo(failure: Failure, sent: &[u8], received: &[u8]) -> Failure {
    let differs_at = show::first_mismatch(sent, received);
    if differs_at.is_some_and(|at| received[at..].starts_with(show::REPLACEMENT)) {
        failure.diagnosis(
            "The echo has U+FFFD (the bytes EF BF BD) where the payload had bytes that are not valid UTF-8: the server turned the bytes into text (`String::from_utf8_lossy`) and back. The data is bytes: echo the `&buffer[..n]` you read as it is.",
            "#step-2-the-echo-loop",
        )
    } else if received.len() > sent.len() && !sent.is_empty() && received[0] == sent[0] {
        failure.diagnosis(
            "The echo is longer than what was sent: write back only the `n` bytes that `read` returned (`write_all(&buffer[..n])`), not the whole buffer, whose rest holds zeros or the bytes of an earlier read.",
            "#step-2-the-echo-loop",
        )
    } else {
        failure
    }
}

/// Sends `payload` to the server as `plan` says and checks it comes back
/// byte for byte.
fn expect_echo(
    ctx: &Ctx,
    server: &mut Server,
    payload: &[u8],
    plan: SendPlan,
    what: &str,
) -> CheckResult {
    let stream = server.connect(ctx.deadline())?;
    ctx.note_command(format!(
        "(grader) connect to {} and send {} bytes",
        server.addr,
        payload.len()
    ));
    let exchange = net::exchange(&stream, payload, plan, Some(payload.len()), ctx.deadline());
    exchange.expect_bytes(payload, what).map_err(|failure| {
        // A correct beginning, then the server closed while we were still
        // sending: it stopped after what its first reads returned.
        let closed_early = exchange.write_error.is_some()
            && !exchange.received.is_empty()
            && payload.starts_with(&exchange.received);
        let failure = if closed_early {
            failure
                .detail(format!(
                    "the server closed the connection after echoing {} bytes, while the rest was still arriving",
                    exchange.received.len()
                ))
                .diagnosis(
                    "One `read` returns whatever has arrived so far, not the whole message: keep reading in a loop until `read` returns 0 (the client closed), and echo each piece.",
                    "#why-read-returns-less-than-you-asked",
                )
        } else {
            wrong_echo(failure, payload, &exchange.received)
        };
        server.explain(failure)
    })
}

/// The server starts, announces the port it really got, and accepts on it.
pub(super) fn ready(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let stream = server.connect(ctx.deadline())?;
    drop(stream);
    Ok(())
}

pub(super) fn hello(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    expect_echo(
        ctx,
        &mut server,
        HELLO,
        SendPlan::ALL_THEN_CLOSE,
        "echo of b\"Hello, world\"",
    )
}

pub(super) fn one_mebibyte(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let mut rng = ctx.rng();
    let payload = payload::bytes(&mut rng, 1024 * 1024);
    expect_echo(
        ctx,
        &mut server,
        &payload,
        SendPlan::ALL_THEN_CLOSE,
        "echo of 1 MiB of random bytes",
    )
    .map_err(|failure| failure.detail(format!("the payload came from seed {}", ctx.seed())))
}

pub(super) fn small_pieces(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let message = b"Hello, world, in many small pieces with pauses between them";
    // Each piece goes out once the server has read the one before, so a
    // server that reads only once sees one piece, however loaded the machine.
    let plan = SendPlan {
        piece: Some(6),
        pause: ctx.scaled(0.002),
        half_close: true,
        wait_until_read: true,
    };
    expect_echo(
        ctx,
        &mut server,
        message,
        plan,
        "echo of a message sent 6 bytes at a time",
    )
}

/// A client that waits for the echo of what it sent before it sends more,
/// or half-closes: a server that reads to the end of stream first never
/// answers it.
pub(super) fn echo_before_half_close(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let stream = server.connect(ctx.deadline())?;
    let question = b"Are you there? (the end of stream comes after your answer)";
    ctx.note_command(format!(
        "(grader) connect to {}, send {} bytes, and wait for their echo before half-closing",
        server.addr,
        question.len()
    ));
    let mut writer = &stream;
    if let Err(err) = net::write_all_until(&mut writer, question, ctx.deadline()) {
        return Err(server.explain(Failure::new(format!(
            "the grader could not send its message: {err}"
        ))));
    }
    let (received, end) = net::read_until(&stream, Some(question.len()), ctx.within(3.0));
    if received != question {
        let all_read = procfs::unread_by_server(server.addr).is_ok_and(|unread| unread == 0);
        let failure = Failure::new(format!(
            "a client that waits for its echo before half-closing got {} of {} bytes back: {end}",
            received.len(),
            question.len()
        ))
        .expected(show::bytes(question, 100))
        .actual(show::bytes(&received, 100));
        return Err(server.explain(if received.is_empty() && end != net::ReadEnd::Eof && all_read {
            failure
                .detail("the server read the message but sent nothing back: it waits for the end of stream before it echoes")
                .diagnosis(
                    "Write back each piece as soon as `read` returns it, inside the loop, not after reading to the end of stream: a client may wait for its echo before it half-closes.",
                    "#step-2-the-echo-loop",
                )
        } else {
            wrong_echo(failure, question, &received)
        }));
    }
    // The rest of the conversation as usual: half-close, then the end.
    let _ = stream.shutdown(Shutdown::Write);
    let (rest, end) = net::read_until(&stream, None, ctx.within(3.0));
    if !rest.is_empty() || end != net::ReadEnd::Eof {
        return Err(server.explain(
            Failure::new(format!(
                "after the echo and the half-close, the server sent {} more bytes and then: {end}",
                rest.len()
            ))
            .expected("nothing more, then the server closes the connection"),
        ));
    }
    Ok(())
}

pub(super) fn second_client(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let first = server.connect(ctx.deadline())?;
    first.expect_at_most(b"first client".len() as u64);
    let exchange = net::exchange(
        &first,
        b"first client",
        SendPlan::ALL_THEN_CLOSE,
        None,
        ctx.within(5.0),
    );
    exchange
        .expect_bytes(b"first client", "echo to the first client")
        .map_err(|f| server.explain(wrong_echo(f, b"first client", &exchange.received)))?;
    if exchange.end != net::ReadEnd::Eof {
        return Err(server.explain(Failure::new(
            "after the first client half-closed, the server did not close that connection",
        )));
    }
    drop(first);
    expect_echo(
        ctx,
        &mut server,
        b"second client",
        SendPlan::ALL_THEN_CLOSE,
        "echo to the second client, after the first left",
    )?;
    // A client that resets its connection (RST) once the server has read
    // its bytes, so that the server waits in a read (or a write) on it: the
    // call fails, and that is the client's problem, not the server's.
    // Whether the echo comes before the end of stream is another check's
    // business: it is not waited for.
    let resetting = server.connect(ctx.deadline())?;
    net::send(
        &resetting,
        RESETTING,
        SendPlan {
            half_close: false,
            ..SendPlan::ALL_THEN_CLOSE
        },
        ctx.within(5.0),
    )
    .map_err(|err| {
        server.explain(Failure::new(format!(
            "sending the third client's bytes failed: {err}"
        )))
    })?;
    net::wait_until_read(&resetting, ctx.within(5.0));
    resetting
        .reset()
        .map_err(|err| Failure::new(format!("the grader could not reset its connection: {err}")))?;
    let after_reset = server.connect(ctx.deadline());
    after_reset
        .and_then(|fourth| {
            let exchange = net::exchange(
                &fourth,
                b"fourth client",
                SendPlan::ALL_THEN_CLOSE,
                Some(b"fourth client".len()),
                ctx.within(5.0),
            );
            exchange.expect_bytes(b"fourth client", "echo to the fourth client")
        })
        .map_err(|failure| {
            server.explain(
                failure
                    .detail(
                        "the third client had reset its connection (RST) while the server waited for its next bytes",
                    )
                    .diagnosis(
                        "A failed `read` or `write` with one client (here `Connection reset by peer`) must not end the server: report it (a line on stdout or stderr), drop that connection and go back to `accept`; do not return the error from your accept loop with `?`.",
                        "#step-3-one-client-after-another",
                    ),
            )
        })
}

/// What the client that resets its connection sends first.
const RESETTING: &[u8] = b"third client, about to reset";

/// The log lines the contract names, in order, with ports redacted.
fn contract_lines(server: &Server) -> String {
    let prefixes = ["Listening on ", "Connected by ", "Disconnected "];
    let lines: Vec<String> = server
        .lines()
        .into_iter()
        .filter(|line| prefixes.iter().any(|prefix| line.starts_with(prefix)))
        .collect();
    redact(&lines.join("\n"))
}

pub(super) fn server_log(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let stream = server.connect(ctx.deadline())?;
    let peer = stream
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
    stream.expect_at_most(HELLO.len() as u64);
    let exchange = net::exchange(
        &stream,
        HELLO,
        SendPlan::ALL_THEN_CLOSE,
        None,
        ctx.within(5.0),
    );
    exchange
        .expect_bytes(HELLO, "echo")
        .map_err(|f| server.explain(wrong_echo(f, HELLO, &exchange.received)))?;
    drop(stream);
    let disconnected = format!("Disconnected {peer}");
    if server
        .wait_for_line(ctx.within(5.0), |line| line == disconnected)
        .is_none()
    {
        return Err(
            Failure::new("the server did not log the client's disconnection")
                .expected(format!(
                    "Connected by {peer}\n{disconnected}   (the client's own address and port)"
                ))
                .actual(show::head(&server.stdout(), 10)),
        );
    }
    let connected = format!("Connected by {peer}");
    if !server.lines().contains(&connected) {
        return Err(Failure::new(
            "the server did not log the client's address as the client saw it",
        )
        .expected(connected)
        .actual(show::head(&server.stdout(), 10)));
    }
    ctx.snapshot(&contract_lines(&server))
}

/// Started with `::1` as HOST, the server listens on IPv6 loopback, says
/// so (`Listening on [::1]:PORT`), and echoes there.
pub(super) fn ipv6(ctx: &Ctx) -> CheckResult {
    let how = "Bind to `(host, port)` as given and print `listener.local_addr()`: `::1` resolves to the IPv6 loopback and prints as `[::1]:PORT`. Parsing HOST as an IPv4 address fails, and an IPv4-only socket (`Domain::IPV4`, `AF_INET`) cannot bind an IPv6 address.";
    let mut server = ipv6::server(ctx, SERVER, how, "#optional-ipv6")?;
    expect_echo(
        ctx,
        &mut server,
        HELLO,
        SendPlan::ALL_THEN_CLOSE,
        "echo of b\"Hello, world\" over IPv6",
    )
}
