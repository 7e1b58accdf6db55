//! Server checks: the grader is the client, sends requests (whole, byte by
//! byte, split, broken) and judges each response and the server's log.

use std::time::{Duration, Instant};

use crate::harness::capture::complete_lines;
use crate::harness::net::conn::Conn;
use crate::harness::net::{self, ReadEnd, SendPlan};
use crate::harness::observe::{procfs, stall};
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::protocol::{
    BYTE_ORDER_HINT, Expected, Parsed, binary_request_bytes, frame_raw, header_for, json_request,
    judge, parse_message, read_response, request_content, reversed_length,
};
use super::{SERVER, TABLE};

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
    let Err(failure) = judge(&received, &end, expected) else {
        return Ok(());
    };
    let failure = failure
        .summary_prefix(what)
        .sending_failed("the request", write_error)
        .detail(format!("request sent: {}", show::bytes(request, 200)));
    // No answer, and the server waits: perhaps for the rest of a JSON
    // header as long as the length read in the wrong byte order says.
    let failure = if received.is_empty() && end.gave_up() {
        drop(stream);
        reversed_length_answered(ctx, server, request, failure)
    } else {
        failure
    };
    Err(server.explain(failure))
}

/// The evidence for a server that reads the 2-byte length little-endian:
/// it answers `request` (which it did not) once its two length bytes are
/// reversed. Asked on a new connection, after the one it did not answer is
/// closed (a server that serves one client at a time is free again).
fn reversed_length_answered(
    ctx: &Ctx,
    server: &mut Server,
    request: &[u8],
    failure: Failure,
) -> Failure {
    let Some((&[high, low], rest)) = request.split_first_chunk::<2>() else {
        return failure;
    };
    if high == low || server.process.exit_status().is_some() {
        return failure;
    }
    let mut reversed = vec![low, high];
    reversed.extend_from_slice(rest);
    let Ok(stream) = server.connect(ctx.within(1.0)) else {
        return failure;
    };
    ctx.note_command(format!(
        "(grader) the same request with its length bytes reversed, to {}: {}",
        server.addr,
        show::bytes(&reversed, 160)
    ));
    let deadline = ctx.within(2.0);
    if net::send(&stream, &reversed, ALL_AT_ONCE, deadline).is_err() {
        return failure;
    }
    let (received, _) = read_response(&stream, deadline);
    let answered = matches!(parse_message(&received), Parsed::Complete(_))
        || reversed_length(&received).is_some();
    if !answered {
        return failure;
    }
    failure
        .detail(format!(
            "the grader sent the same request again on a new connection with its 2-byte length \
             reversed, {} instead of {}, and the server answered it: it reads the length \
             little-endian ({} read little-endian is {}, the JSON header's real length)",
            show::bytes(&reversed[..2], 20),
            show::bytes(&request[..2], 20),
            show::bytes(&reversed[..2], 20),
            u16::from_le_bytes([low, high]),
        ))
        .diagnosis(BYTE_ORDER_HINT, "#network-byte-order")
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
pub(super) const HALF_CLOSE: SendPlan = SendPlan {
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
        )
        .map_err(|failure| {
            // The requests before it passed: what this one adds is a
            // character the answer must escape to stay JSON.
            if [action, value].iter().any(|text| text.contains(['"', '\\'])) {
                failure.diagnosis(
                    "The answer quotes VALUE (or ACTION), and a quote or a backslash in it must be escaped in JSON (`\\\"`, `\\\\`). Build the response with serde_json, `json!({\"result\": result})`, which escapes them; `format!` does not, and escaping some characters by hand misses others.",
                    "#the-application",
                )
            } else {
                failure
            }
        })?;
    }
    Ok(())
}

pub(super) fn search(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("search", "morpheus"), ("search", "ring")])
}

pub(super) fn unicode_query(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("search", "🐶")])
}

/// A value or action with a quote and a backslash: the answer quotes it,
/// so a JSON response built by hand (`format!`) rather than serialised
/// comes out invalid, or decodes to other text.
const NEEDS_ESCAPING: &str = r#"say "hi" from C:	emp"#;

pub(super) fn no_match(ctx: &Ctx) -> CheckResult {
    let word = format!("neo-{}", ctx.rng().u32(1000..10000));
    search_for(
        ctx,
        &[
            ("search", "trinity"),
            ("search", &word),
            ("search", NEEDS_ESCAPING),
        ],
    )
}

pub(super) fn invalid_action(ctx: &Ctx) -> CheckResult {
    search_for(
        ctx,
        &[
            ("find", "ring"),
            ("double", "morpheus"),
            (NEEDS_ESCAPING, "ring"),
        ],
    )
}

pub(super) fn binary_request(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // Bytes that are not UTF-8, and an emoji cut in the middle by the
    // 10-byte limit: the server must treat the content as bytes.
    // And no content at all: the message is whole once its JSON header is.
    let contents: [&[u8]; 3] = [b"double\xff\x00\xf0\x9f\x90\xb6 and more", b"ab", b""];
    for content in contents {
        ask(
            ctx,
            &mut server,
            &binary_request_bytes(content),
            ALL_AT_ONCE,
            &Expected::for_binary(content),
            &format!("binary request {}", show::bytes(content, 60)),
        )
        .map_err(|failure| {
            // A content shorter than 10 bytes, sliced as if it had 10.
            let stderr = server.process.stderr().text().to_ascii_lowercase();
            if content.len() < 10 && stderr.contains("out of range for slice") {
                failure.diagnosis(
                    "The content may be shorter than 10 bytes (here 2): answer with its first 10 bytes at most, `&content[..content.len().min(10)]`; slicing `[..10]` panics on a shorter one.",
                    "#the-application",
                )
            } else if content.is_empty() && failure.summary.contains("no response") {
                failure.diagnosis(
                    "A request with no content (content-length 0) is whole as soon as its JSON header is: with every byte of it received, the state machine must move on at once, through the content state, to the answer. A test such as `received.len() > needed` waits for a byte that never comes: a state is complete when `received.len() >= needed`.",
                    "#the-connection-state-machine",
                )
            } else {
                failure
            }
        })?;
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
                .actual(format!("after the response, the connection stayed open; {end}")),
        )),
    }
}

pub(super) fn one_byte_at_a_time(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // Each byte goes out once the server has read the one before: every
    // read returns one byte, however loaded the machine.
    let plan = SendPlan {
        piece: Some(1),
        pause: Duration::ZERO,
        half_close: false,
        wait_until_read: true,
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
