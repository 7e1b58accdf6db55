//! Server checks: the grader is the client, sends requests (whole, byte by
//! byte, split, broken) and judges each response and the server's log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::capture::complete_lines;
use crate::harness::conn::Conn;
use crate::harness::net::{self, ReadEnd, SendPlan};
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Server, procfs, show, stall};
use crate::outcome::{CheckResult, Failure};

use super::protocol::{
    Expected, binary_request_bytes, frame, frame_raw, header_for, json_request, judge,
    read_response, request_content,
};
use super::{CLIENT_BINARY_TYPE, MAX_CONTENT_LENGTH, REQUIRED_KEYS, SERVER, TABLE};

/// Sends `request` on a new connection as `plan` says and checks the
/// response.
pub(super) fn ask(
    ctx: &Ctx,
    server: &mut Server,
    request: &[u8],
    plan: SendPlan,
    expected: &Expected,
    what: &str,
) -> CheckResult {
    let stream = server.connect(ctx.deadline())?;
    ctx.note_command(format!(
        "(grader) send {what} to {}: {}",
        server.addr,
        show::bytes(request, 160)
    ));
    let deadline = ctx.within(5.0);
    let write_error = net::send(&stream, request, plan, deadline).err();
    let (received, end) = read_response(&stream, deadline);
    judge(&received, &end, expected).map_err(|failure| {
        let failure = failure.summary_prefix(what);
        let failure = failure.sending_failed("the request", write_error);
        server.explain(failure.detail(format!("request sent: {}", show::bytes(request, 200))))
    })
}

/// A plan that sends everything at once and keeps the connection open (the
/// protocol's client does not half-close).
pub(super) const ALL_AT_ONCE: SendPlan = SendPlan {
    piece: None,
    pause: Duration::ZERO,
    half_close: false,
    wait_until_read: false,
};

/// Everything at once, then a half-close (shutdown(Write)).
const HALF_CLOSE: SendPlan = SendPlan {
    half_close: true,
    ..ALL_AT_ONCE
};

/// What a failure says about the request it is about: which request
/// (`summary_prefix`), and why sending it failed (`sending_failed`).
pub(super) trait AboutRequest {
    fn summary_prefix(self, what: &str) -> Self;
    fn sending_failed(self, what: &str, error: Option<std::io::Error>) -> Self;
}

impl AboutRequest for Failure {
    /// Says which request a failure is about.
    fn summary_prefix(mut self, what: &str) -> Self {
        self.summary = format!("{what}: {}", self.summary);
        self
    }

    /// Adds why sending `what` failed, if it did: the server may have
    /// closed before reading it all.
    fn sending_failed(self, what: &str, error: Option<std::io::Error>) -> Self {
        match error {
            Some(err) => self.detail(format!("sending {what} failed: {err}")),
            None => self,
        }
    }
}

fn search_for(ctx: &Ctx, values: &[(&str, &str)]) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    for (action, value) in values {
        ask(
            ctx,
            &mut server,
            &json_request(action, value),
            ALL_AT_ONCE,
            &Expected::for_search(action, value),
            &format!("{action} {value:?}"),
        )?;
    }
    Ok(())
}

pub(super) fn search(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("search", "morpheus"), ("search", "ring")])
}

pub(super) fn unicode_query(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("search", "🐶")])
}

pub(super) fn no_match(ctx: &Ctx) -> CheckResult {
    let word = format!("neo-{}", ctx.rng().u32(1000..10000));
    search_for(ctx, &[("search", "trinity"), ("search", &word)])
}

pub(super) fn invalid_action(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("find", "ring"), ("double", "morpheus")])
}

pub(super) fn binary_request(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // Bytes that are not UTF-8, and an emoji cut in the middle by the
    // 10-byte limit: the server must treat the content as bytes.
    let contents: [&[u8]; 2] = [b"double\xff\x00\xf0\x9f\x90\xb6 and more", b"ab"];
    for content in contents {
        ask(
            ctx,
            &mut server,
            &binary_request_bytes(content),
            ALL_AT_ONCE,
            &Expected::for_binary(content),
            &format!("binary request {}", show::bytes(content, 60)),
        )?;
    }
    Ok(())
}

pub(super) fn closes_after_answer(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let request = json_request("search", "ring");
    let stream = server.connect(ctx.deadline())?;
    net::send(&stream, &request, ALL_AT_ONCE, ctx.deadline())
        .map_err(|err| Failure::new(format!("sending the request failed: {err}")))?;
    let (received, end) = net::read_until(&stream, None, ctx.within(3.0));
    judge(&received, &end, &Expected::for_search("search", "ring"))
        .map_err(|failure| server.explain(failure))?;
    match end {
        ReadEnd::Eof | ReadEnd::Error(_) => Ok(()),
        _ => Err(server.explain(
            Failure::new("the server answered but did not close the connection")
                .expected("one request and one response per connection: close it once the response is sent")
                .actual(format!(
                    "the connection was still open {:.0} s after the response",
                    ctx.scaled(3.0).as_secs_f64()
                )),
        )),
    }
}

pub(super) fn one_byte_at_a_time(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let plan = SendPlan {
        piece: Some(1),
        pause: ctx.scaled(0.003),
        half_close: false,
        wait_until_read: false,
    };
    ask(
        ctx,
        &mut server,
        &json_request("search", "morpheus"),
        plan,
        &Expected::for_search("search", "morpheus"),
        "a search sent one byte per write",
    )
}

pub(super) fn split_length(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let request = json_request("search", "ring");
    let stream = server.connect(ctx.deadline())?;
    let deadline = ctx.within(5.0);
    ctx.note_command("(grader) send the first byte of the 2-byte length, pause, then the rest");
    net::send(&stream, &request[..1], ALL_AT_ONCE, deadline)
        .and_then(|()| {
            // The two bytes must arrive in two reads: the second goes out
            // once the server has read the first, however loaded the machine.
            net::wait_until_read(&stream, deadline);
            net::send(&stream, &request[1..], ALL_AT_ONCE, deadline)
        })
        .map_err(|err| {
            server.explain(Failure::new(format!("sending the request failed: {err}")))
        })?;
    let (received, end) = read_response(&stream, deadline);
    judge(&received, &end, &Expected::for_search("search", "ring")).map_err(|failure| {
        server.explain(
            failure
                .summary_prefix("the 2-byte length arrived in two reads")
                .detail("keep the first byte and wait for the second: the length is complete only with both"),
        )
    })
}

pub(super) fn concurrent(ctx: &Ctx) -> CheckResult {
    const CLIENTS: usize = 100;
    let mut server = ctx.server(SERVER)?;
    let deadline = ctx.within(15.0);
    let requests: Vec<(String, Vec<u8>)> = (0..CLIENTS)
        .map(|index| {
            let value = match index % 4 {
                0 => TABLE[index / 4 % 3].0.to_owned(),
                _ => format!("client {index}"),
            };
            let request = json_request("search", &value);
            (value, request)
        })
        .collect();
    let mut streams = Vec::with_capacity(CLIENTS);
    let mut crowd = net::Crowd::new(server.addr);
    for _ in 0..CLIENTS {
        let stream = crowd
            .connect(deadline)
            .map_err(|failure| server.explain(failure))?;
        streams.push(stream);
    }
    ctx.note_command(format!(
        "(grader) open {CLIENTS} connections, send the first half of every request, then every second half"
    ));
    // Every connection is half-way through its request at the same time:
    // the server must keep a buffer and a state per connection. The second
    // halves go out in the reverse order, once the server has accepted every
    // connection (and so could read their first halves).
    let send_part = |stream: &Conn, part: &[u8]| {
        net::send(stream, part, ALL_AT_ONCE, deadline).map_err(|err| {
            Failure::new(format!(
                "sending to one of {CLIENTS} connections failed: {err}"
            ))
        })
    };
    for (stream, (_, request)) in streams.iter().zip(&requests) {
        send_part(stream, &request[..request.len() / 2]).map_err(|f| server.explain(f))?;
    }
    server
        .process
        .stdout()
        .wait_for(ctx.within(5.0), |bytes, _| {
            let accepted = complete_lines(bytes)
                .iter()
                .filter(|line| line.starts_with("Accepted connection from "))
                .count();
            (accepted >= CLIENTS).then_some(())
        });
    // Every first half is read by the server before any second half goes
    // out (the unread counts in /proc, not a pause, say so).
    net::wait_until_all_read(&streams, ctx.within(5.0));
    for (stream, (_, request)) in streams.iter().zip(&requests).rev() {
        send_part(stream, &request[request.len() / 2..]).map_err(|f| server.explain(f))?;
    }
    let mut wrong = Vec::new();
    let mut wait_until = deadline;
    for (index, (stream, (value, _))) in streams.iter().zip(&requests).enumerate() {
        let (received, end) = read_response(stream, wait_until);
        if matches!(end, ReadEnd::Stalled(_)) {
            // The server sleeps with nothing to do: what it sent the other
            // connections is already here, so the rest need no long wait.
            wait_until = Instant::now() + Duration::from_millis(20);
        }
        if let Err(failure) = judge(&received, &end, &Expected::for_search("search", value)) {
            wrong.push((index, failure));
        }
    }
    let Some((index, first)) = wrong.first() else {
        return Ok(());
    };
    Err(server.explain(
        Failure::new(format!(
            "{} of {CLIENTS} concurrent connections did not get their own answer",
            wrong.len()
        ))
        .detail(format!(
            "the first of them, connection {} (search {:?}): {first}",
            index + 1,
            requests[*index].0
        )),
    ))
}

/// Bad input on its own connection: the server must close that connection,
/// log `Error: PEER: …` for it, and keep answering everybody else: a client
/// that was half-way through its request when the bad input came, and a
/// new one after.
fn bad_input_scenario(ctx: &Ctx, cases: &[(&str, Vec<u8>)]) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let good = json_request("search", "morpheus");
    let waiting = server.connect(ctx.deadline())?;
    let middle = good.len() / 2;
    net::send(&waiting, &good[..middle], ALL_AT_ONCE, ctx.deadline()).map_err(|err| {
        Failure::new(format!("sending the first half of a request failed: {err}"))
    })?;
    for (what, bytes) in cases {
        ctx.note_command(format!(
            "(grader) on a new connection, send {what}: {}",
            show::bytes(bytes, 160)
        ));
        let bad = server.connect(ctx.deadline())?;
        let peer = bad
            .local_addr()
            .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
        // Writing may fail if the server already closed: that is fine.
        let _ = net::send(&bad, bytes, ALL_AT_ONCE, ctx.within(2.0));
        // Nothing is expected back: the server closes without answering.
        bad.expect_at_most(0);
        let (received, end) = net::read_until(&bad, None, ctx.within(3.0));
        if let ReadEnd::TooMuch(too_much) = end {
            return Err(server.explain(
                Failure::from(too_much)
                    .summary_prefix(&format!("after {what}"))
                    .expected(
                        "the server logs `Error: PEER: REASON` and closes that connection at once",
                    ),
            ));
        }
        if end.gave_up() {
            let mut failure =
                Failure::new(format!("after {what}, the server kept the connection open"))
                    .expected(
                        "the server logs `Error: PEER: REASON` and closes that connection at once",
                    )
                    .actual(format!(
                        "still open {:.0} s later",
                        ctx.scaled(3.0).as_secs_f64()
                    ));
            if !received.is_empty() {
                failure = failure.detail(format!("it sent {}", show::bytes(&received, 200)));
            }
            return Err(server.explain(failure));
        }
        let prefix = format!("Error: {peer}:");
        if server
            .wait_for_line_on_either(ctx.within(2.0), |line| line.starts_with(&prefix))
            .is_none()
        {
            return Err(server.explain(
                Failure::new(format!("the server did not log an error for {what}"))
                    .expected(format!(
                        "{prefix} REASON   (on stdout or stderr; PEER as the client sees its own address)"
                    ))
                    .actual(show::tail(&server.stdout(), 8)),
            ));
        }
    }
    // The connection that was waiting all along finishes its request.
    let _ = net::send(&waiting, &good[middle..], ALL_AT_ONCE, ctx.deadline());
    let (received, end) = read_response(&waiting, ctx.within(5.0));
    judge(&received, &end, &Expected::for_search("search", "morpheus")).map_err(|failure| {
        server.explain(failure.summary_prefix(
            "a client that was half-way through its request while the bad input came",
        ))
    })?;
    ask(
        ctx,
        &mut server,
        &good,
        ALL_AT_ONCE,
        &Expected::for_search("search", "morpheus"),
        "a new client after the bad input",
    )
}

pub(super) fn malformed_header(ctx: &Ctx) -> CheckResult {
    let content = request_content("search", "ring");
    let not_utf8 = {
        let mut header = header_for("text/json", "utf-8", &content).to_string();
        header.insert_str(1, "\"\u{e9}\": 1, ");
        let mut bytes = frame_raw(&header, &content);
        // Turn the é (c3 a9) into a lone latin-1 byte plus a space.
        let at = bytes
            .windows(2)
            .position(|pair| pair == [0xc3, 0xa9])
            .unwrap_or(0);
        bytes[at] = 0xe9;
        bytes[at + 1] = b' ';
        bytes
    };
    bad_input_scenario(
        ctx,
        &[
            (
                "a JSON header that is not JSON",
                frame_raw("{\"byteorder\": \"little\", content-type", &content),
            ),
            ("a JSON header length of 0", vec![0, 0]),
            ("a JSON header that is not UTF-8", not_utf8),
            (
                "a JSON header that is a list",
                frame_raw("[1, 2, 3]", &content),
            ),
        ],
    )
}

pub(super) fn missing_key(ctx: &Ctx) -> CheckResult {
    let content = request_content("search", "ring");
    let cases: Vec<(String, Vec<u8>)> = REQUIRED_KEYS
        .iter()
        .map(|key| {
            let mut header = header_for("text/json", "utf-8", &content);
            header.as_object_mut().map(|object| object.remove(*key));
            (
                format!("a JSON header without \"{key}\""),
                frame(&header, &content),
            )
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = cases
        .iter()
        .map(|(what, bytes)| (what.as_str(), bytes.clone()))
        .collect();
    bad_input_scenario(ctx, &cases)
}

pub(super) fn bad_content(ctx: &Ctx) -> CheckResult {
    let json_content = |content: &[u8]| frame(&header_for("text/json", "utf-8", content), content);
    bad_input_scenario(
        ctx,
        &[
            (
                "text/json content that is not UTF-8",
                json_content(b"{\"action\": \"search\", \"value\": \"\xff\xfe\"}"),
            ),
            (
                "text/json content that is not JSON",
                json_content(b"{\"action\": \"search\", "),
            ),
            (
                "text/json content that is a list, not an object",
                json_content(b"[\"search\", \"ring\"]"),
            ),
            (
                "text/json content without \"action\"",
                json_content(b"{\"value\": \"ring\"}"),
            ),
            (
                "text/json content whose \"value\" is a number",
                json_content(b"{\"action\": \"search\", \"value\": 42}"),
            ),
        ],
    )
}

pub(super) fn huge_content_length(ctx: &Ctx) -> CheckResult {
    let header = |length: u64| {
        json!({
            "byteorder": "little",
            "content-type": "text/json",
            "content-encoding": "utf-8",
            "content-length": length,
        })
    };
    // Only the headers are sent: the server must refuse them as soon as it
    // has read them, without waiting for content that will never come.
    bad_input_scenario(
        ctx,
        &[
            (
                "a JSON header announcing 1 MiB + 1 byte of content (and no content)",
                frame(&header(MAX_CONTENT_LENGTH + 1), b""),
            ),
            (
                "a JSON header announcing 10^12 bytes of content (and no content)",
                frame(&header(1_000_000_000_000), b""),
            ),
        ],
    )
}

pub(super) fn largest_content(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // Exactly the limit: allowed, only what is above it is refused.
    let mut rng = ctx.rng();
    let content: Vec<u8> = std::iter::repeat_with(|| rng.u8(..))
        .take(MAX_CONTENT_LENGTH as usize)
        .collect();
    ask(
        ctx,
        &mut server,
        &binary_request_bytes(&content),
        ALL_AT_ONCE,
        &Expected::for_binary(&content),
        &format!(
            "a binary request with exactly 1 MiB ({MAX_CONTENT_LENGTH} bytes) of content, seed {}",
            ctx.seed()
        ),
    )
}

pub(super) fn reset_mid_request(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let stream = server.connect(ctx.deadline())?;
    let peer = stream
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
    let request = json_request("search", "ring");
    net::send(
        &stream,
        &request[..request.len() / 2],
        ALL_AT_ONCE,
        ctx.deadline(),
    )
    .map_err(|err| Failure::new(format!("sending half a request failed: {err}")))?;
    // Once the server holds the half, the connection is reset (SO_LINGER 0
    // makes close send RST): its next read fails with ConnectionReset.
    let addr = server.addr;
    procfs::watch_until(ctx.within(2.0), || {
        procfs::unread_by_server(addr).is_ok_and(|unread| unread == 0)
    });
    ctx.note_command(format!(
        "(grader) {peer} sends half a request, then resets the connection (SO_LINGER 0, close)"
    ));
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .map_err(|err| Failure::new(format!("SO_LINGER: {err}")))?;
    drop(stream);
    let closing = format!("Closing connection to {peer}");
    let error = format!("Error: {peer}: ");
    let closed = server
        .wait_for_line(ctx.within(5.0), |line| line == closing)
        .is_some();
    let lines = server.lines();
    let logged = lines.iter().any(|line| line.starts_with(&error));
    if closed && logged {
        return Ok(());
    }
    Err(server.explain(
        Failure::new(format!(
            "a client that reset its connection in the middle of a request was {}",
            if closed {
                "closed without an `Error:` line"
            } else {
                "never closed"
            }
        ))
        .expected(format!(
            "Error: {peer}: REASON\n{closing}   (a failed read ends that connection)"
        ))
        .actual(show::tail(&server.stdout(), 10))
        .detail("a read error other than WouldBlock (here ConnectionReset) ends that connection: log it, deregister it, drop it"),
    ))
}

pub(super) fn half_close(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let stream = server.connect(ctx.deadline())?;
    let request = json_request("search", "ring");
    // The request and the end of stream arrive while the server is stopped,
    // so that it reads both in one go, whatever the scheduling.
    ctx.note_command(format!(
        "(grader) while the server is stopped: send {} to {}, then half-close",
        show::bytes(&request, 160),
        server.addr
    ));
    let paused = server.process.pause(ctx.deadline());
    let deadline = ctx.within(5.0);
    let write_error = net::send(&stream, &request, HALF_CLOSE, deadline).err();
    drop(paused);
    let (received, end) = read_response(&stream, deadline);
    judge(&received, &end, &Expected::for_search("search", "ring")).map_err(|failure| {
        let failure = failure
            .summary_prefix("a whole request, then the client's end of stream (a half-close)")
            .detail("end of stream after a complete request is no error: answer the request, then close");
        let failure = failure.sending_failed("the request", write_error);
        server.explain(failure)
    })
}

/// How long [`stop_and_continue`] waits for the server to read the first
/// half and sleep in `poll` before it stops it anyway (seconds, scaled):
/// where `/proc/PID/wchan` says nothing, the stop still comes while the
/// server most likely waits.
const ASLEEP_WITHIN: f64 = 2.0;

pub(super) fn stop_and_continue(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let request = json_request("search", "morpheus");
    let stream = server.connect(ctx.deadline())?;
    // Half a request: the server keeps it, and goes back to `poll` to wait
    // for the rest.
    let half = request.len() / 2;
    net::send(&stream, &request[..half], ALL_AT_ONCE, ctx.deadline())
        .map_err(|err| Failure::new(format!("sending half a request failed: {err}")))?;
    let addr = server.addr;
    stall::until_asleep_in_poll(server.process.pid(), ctx.within(ASLEEP_WITHIN), || {
        procfs::unread_by_server(addr).is_ok_and(|unread| unread == 0)
    });
    ctx.note_command(
        "(grader) stop the server (SIGSTOP, as Ctrl-Z does) while it waits in poll, then continue it (SIGCONT, as fg does)",
    );
    drop(server.process.pause(ctx.deadline()));
    let deadline = ctx.within(5.0);
    let write_error = net::send(&stream, &request[half..], ALL_AT_ONCE, deadline).err();
    let (received, end) = read_response(&stream, deadline);
    judge(&received, &end, &Expected::for_search("search", "morpheus")).map_err(|failure| {
        let failure = failure
            .summary_prefix("after the server was stopped (as by Ctrl-Z) and continued (`fg`) in the middle of a request")
            .detail("a stop and continue makes `poll` return Interrupted (EINTR): nothing went wrong, poll again");
        let failure = failure.sending_failed("the rest of the request", write_error);
        server.explain(failure)
    })
}

pub(super) fn stalled_half(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let stalled_request = json_request("search", "ring");
    // One connection stops inside the 2-byte length, another inside the
    // content; both stay open without sending more.
    let cuts = [1, stalled_request.len() - 5];
    let mut stalled = Vec::new();
    for cut in cuts {
        let stream = server.connect(ctx.deadline())?;
        net::send(
            &stream,
            &stalled_request[..cut],
            ALL_AT_ONCE,
            ctx.deadline(),
        )
        .map_err(|err| Failure::new(format!("sending part of a request failed: {err}")))?;
        stalled.push((cut, stream));
    }
    ctx.note_command(
        "(grader) two connections send part of a request and stall; a third client asks meanwhile",
    );
    let stream = server.connect(ctx.deadline())?;
    let request = json_request("search", "🐶");
    net::send(&stream, &request, ALL_AT_ONCE, ctx.deadline())
        .map_err(|err| Failure::new(format!("sending the request failed: {err}")))?;
    let (received, end) = read_response(&stream, ctx.within(3.0));
    judge(&received, &end, &Expected::for_search("search", "🐶")).map_err(|failure| {
        server.explain(
            failure
                .summary_prefix("while two other connections had sent half a request and stalled")
                .detail("a read that waits for the rest of one client's message stops the whole event loop"),
        )
    })?;
    // The stalled connections were only slow: they finish and get answers.
    for (cut, stream) in &stalled {
        let _ = net::send(
            stream,
            &stalled_request[*cut..],
            ALL_AT_ONCE,
            ctx.deadline(),
        );
        let (received, end) = read_response(stream, ctx.within(5.0));
        judge(&received, &end, &Expected::for_search("search", "ring")).map_err(|failure| {
            server.explain(failure.summary_prefix(&format!(
                "a connection that paused after {cut} bytes of its request, then sent the rest"
            )))
        })?;
    }
    Ok(())
}

pub(super) fn byte_order(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let content = request_content("search", "ring");
    // Pad the header with JSON whitespace to exactly 0x0201 = 513 bytes:
    // read big-endian that is 513, read little-endian 0x0102 = 258.
    let mut header = header_for("text/json", "utf-8", &content).to_string();
    let padding = 513 - header.len();
    header.insert_str(header.len() - 1, &" ".repeat(padding));
    let request = frame_raw(&header, &content);
    debug_assert_eq!(request[..2], [0x02, 0x01]);
    ask(
        ctx,
        &mut server,
        &request,
        ALL_AT_ONCE,
        &Expected::for_search("search", "ring"),
        "a request whose JSON header is 513 bytes long (length bytes b\"\\x02\\x01\")",
    )
    .map_err(|failure| {
        failure.detail(
            "read the 2-byte length as big-endian (network order, u16::from_be_bytes): read little-endian, b\"\\x02\\x01\" would be 258",
        )
    })
}

/// The server log lines the contract names, with every `Received request`
/// object re-serialised (sorted keys, no spaces) so that the snapshot does
/// not depend on how a program formats JSON.
fn contract_lines(server: &Server) -> String {
    let prefixes = [
        "Listening on ",
        "Accepted connection from ",
        "Received ",
        "Closing connection to ",
    ];
    let lines: Vec<String> = server
        .lines()
        .into_iter()
        // Error lines stay in, whatever their case: one where nothing went
        // wrong (a WouldBlock logged as an error) is a difference.
        .filter(|line| {
            prefixes.iter().any(|prefix| line.starts_with(prefix))
                || line.to_ascii_lowercase().starts_with("error")
        })
        .map(|line| match parse_received_request(&line) {
            Some((object, peer)) => format!("Received request {object} from {peer}"),
            None => error_reason_redacted(line),
        })
        .collect();
    redact(&lines.join("\n"))
}

/// `Error: PEER: REASON` with REASON, which is the program's own wording,
/// replaced by `[REASON]`; other lines unchanged.
fn error_reason_redacted(line: String) -> String {
    let peer_and_reason = line
        .strip_prefix("Error: ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(peer, _)| peer.parse::<std::net::SocketAddr>().is_ok());
    match peer_and_reason {
        Some((peer, _)) => format!("Error: {peer}: [REASON]"),
        None => line,
    }
}

/// Splits `Received request {…} from PEER` into the parsed object and PEER.
fn parse_received_request(line: &str) -> Option<(Value, &str)> {
    let rest = line.strip_prefix("Received request ")?;
    let (object, peer) = rest.rsplit_once(" from ")?;
    let object: Value = serde_json::from_str(object).ok()?;
    object.is_object().then_some((object, peer))
}

pub(super) fn server_log(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let search_request = json_request("search", "morpheus");
    let binary_content = b"double\xf0\x9f\x90\xb6";
    let exchanges: [(&[u8], Expected, String); 2] = [
        (
            &search_request,
            Expected::for_search("search", "morpheus"),
            format!(
                "Received request {} from PEER",
                json!({"action": "search", "value": "morpheus"})
            ),
        ),
        (
            &binary_request_bytes(binary_content),
            Expected::for_binary(binary_content),
            format!("Received {CLIENT_BINARY_TYPE} request from PEER"),
        ),
    ];
    for (request, expected, received_line) in &exchanges {
        let stream = server.connect(ctx.deadline())?;
        let peer = stream
            .local_addr()
            .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
        net::send(&stream, request, ALL_AT_ONCE, ctx.deadline())
            .map_err(|err| Failure::new(format!("sending the request failed: {err}")))?;
        let (received, end) = read_response(&stream, ctx.within(5.0));
        judge(&received, &end, expected).map_err(|failure| server.explain(failure))?;
        drop(stream);
        let closing = format!("Closing connection to {peer}");
        let expected_lines = format!(
            "Accepted connection from {peer}\n{}\n{closing}",
            received_line.replace("PEER", &peer.to_string())
        );
        if server
            .wait_for_line(ctx.within(5.0), |line| line == closing)
            .is_none()
        {
            return Err(
                Failure::new("the server did not log closing the connection")
                    .expected(format!(
                        "{expected_lines}\n   (PEER as the client sees its own address)"
                    ))
                    .actual(show::tail(&server.stdout(), 10)),
            );
        }
        let lines = server.lines();
        let accepted = lines
            .iter()
            .any(|line| *line == format!("Accepted connection from {peer}"));
        let logged = lines.iter().any(|line| match parse_received_request(line) {
            Some((object, logged_peer)) => {
                logged_peer == peer.to_string()
                    && object == json!({"action": "search", "value": "morpheus"})
                    && received_line.starts_with("Received request ")
            }
            None => *line == received_line.replace("PEER", &peer.to_string()),
        });
        if !accepted || !logged {
            return Err(Failure::new(
                "the server did not log the connection and its request as the contract says",
            )
            .expected(expected_lines)
            .actual(show::tail(&server.stdout(), 10))
            .detail("the {…} in `Received request {…} from PEER` is the request's content as one line of JSON (the grader parses it)"));
        }
    }
    // A client that closes after one byte of its request: bad input, one
    // `Error:` line for that peer, then its connection closes.
    let stream = server.connect(ctx.deadline())?;
    let peer = stream
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
    net::send(&stream, &search_request[..1], HALF_CLOSE, ctx.deadline())
        .map_err(|err| Failure::new(format!("sending one byte failed: {err}")))?;
    drop(stream);
    let closing = format!("Closing connection to {peer}");
    if server
        .wait_for_line(ctx.within(5.0), |line| line == closing)
        .is_none()
    {
        return Err(Failure::new(
            "the server did not close the connection of a client that closed after one byte of its request",
        )
        .expected(format!(
            "Accepted connection from {peer}\nError: {peer}: REASON\n{closing}"
        ))
        .actual(show::tail(&server.stdout(), 10)));
    }
    ctx.snapshot(&contract_lines(&server))
}
