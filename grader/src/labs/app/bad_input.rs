//! Bad input: a request the server must refuse (a malformed header, a
//! missing key, content that is not what it says, a length over the
//! limit) or a client that resets mid-request. The server closes that
//! connection, logs `Error: PEER: …`, and keeps serving everybody else.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::net::{self, ReadEnd};
use crate::harness::observe::procfs;
use crate::harness::payload;
use crate::harness::{Ctx, Evidence, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::protocol::{
    Expected, binary_request_bytes, frame, frame_raw, header_for, json_request, judge,
    read_response, request_content,
};
use super::server::{ALL_AT_ONCE, AboutRequest, ask};
use super::{MAX_CONTENT_LENGTH, REQUIRED_KEYS, SERVER};

/// Bad input on its own connection: the server must close that connection,
/// log `Error: PEER: …` for it, and keep answering everybody else: a client
/// that was half-way through its request when the bad input came, and a
/// new one after.
fn bad_input_scenario(ctx: &Ctx, cases: &[(&str, Vec<u8>)]) -> CheckResult {
    bad_input_on(ctx, ctx.server(SERVER)?, cases)
}

/// [`bad_input_scenario`] on a server already started (with its lessons).
fn bad_input_on(ctx: &Ctx, mut server: Server, cases: &[(&str, Vec<u8>)]) -> CheckResult {
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
                    .actual(format!("the connection stayed open; {end}"));
            if !received.is_empty() {
                failure = failure.detail(format!("it sent {}", show::bytes(&received, 200)));
            }
            // It saw the bad input (it said so), and kept the connection:
            // the same mistake whichever input it was.
            let prefix = format!("Error: {peer}:");
            if let Some(logged) =
                server.wait_for_line_on_either(Instant::now(), |line| line.starts_with(&prefix))
            {
                failure = failure
                    .detail(format!("it logged `{}`", show::shorten(&logged, 120)))
                    .diagnosis(
                        "The server reports the bad input but keeps the connection: once it has logged `Error: PEER: REASON`, close that connection (its state machine's done state) and carry on with the others.",
                        "#when-the-input-is-bad",
                    );
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
    // Whichever key is missing, a server that looked it up unchecked
    // panicked the same way.
    let server = ctx.server(SERVER)?.on(
        Evidence::MissingKeyCrash,
        "The server panicked looking up a key the JSON header does not have (`object[key]` panics when the key is missing): bad input must never end the server. `parse_json_header` checks the four required keys first and returns `FrameError::MissingKey` (step 2); the server logs `Error: PEER: REASON` and closes that connection only.",
        "#when-the-input-is-bad",
    );
    bad_input_on(ctx, server, &cases)
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
    let content = payload::bytes(&mut rng, MAX_CONTENT_LENGTH as usize);
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
