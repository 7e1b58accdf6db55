//! Lab 4 — app: an application protocol with framing (2-byte big-endian
//! length, JSON header, content). Contract: "Lab 4" in the handout,
//! `labs/app/README.md`.
//!
//! The grader speaks the protocol itself, with its own small encoder and
//! decoder below: it builds requests byte by byte (so it can also build
//! broken ones), and it reads responses by their framing, never by waiting
//! for the server to close. JSON is always compared parsed, never as text:
//! key order and spacing are the program's choice.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::harness::capture::complete_lines;
use crate::harness::net::{self, Peer, ReadEnd, SendPlan};
use crate::harness::process::{Finished, Launch};
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};
use crate::runner::CheckFn;

const SERVER: &str = "app-server";
const CLIENT: &str = "app-client";

/// The checks of lab 4, in rubric order.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("app.search", search),
    ("app.unicode_query", unicode_query),
    ("app.no_match", no_match),
    ("app.invalid_action", invalid_action),
    ("app.binary_request", binary_request),
    ("app.closes_after_answer", closes_after_answer),
    ("app.one_byte_at_a_time", one_byte_at_a_time),
    ("app.split_length", split_length),
    ("app.concurrent", concurrent),
    ("app.malformed_header", malformed_header),
    ("app.missing_key", missing_key),
    ("app.bad_content", bad_content),
    ("app.huge_content_length", huge_content_length),
    ("app.stalled_half", stalled_half),
    ("app.byte_order", byte_order),
    ("app.server_log", server_log),
    ("app.client_search", client_search),
    ("app.client_binary", client_binary),
    ("app.client_fragments", client_fragments),
    ("app.client_malformed", client_malformed),
    ("app.client_output", client_output),
    ("app.framing_tests", framing_tests),
];

/// The search table of the contract.
const TABLE: [(&str, &str); 3] = [
    ("morpheus", "Follow the white rabbit. 🐰"),
    ("ring", "In the caves beneath the Misty Mountains. 💍"),
    ("🐶", "🐾 Playing ball! 🏐"),
];

const MAX_CONTENT_LENGTH: u64 = 1024 * 1024;
const REQUIRED_KEYS: [&str; 4] = [
    "byteorder",
    "content-type",
    "content-encoding",
    "content-length",
];
const CLIENT_BINARY_TYPE: &str = "binary/custom-client-binary-type";
const SERVER_BINARY_TYPE: &str = "binary/custom-server-binary-type";

// ---------------------------------------------------------------------------
// The protocol, grader side
// ---------------------------------------------------------------------------

/// Frames `header` (sent exactly as given) and `content`.
fn frame_raw(header: &str, content: &[u8]) -> Vec<u8> {
    let len = u16::try_from(header.len()).expect("the grader's headers are short");
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(content);
    bytes
}

/// A JSON header for `content`.
fn header_for(content_type: &str, encoding: &str, content: &[u8]) -> Value {
    json!({
        "byteorder": "little",
        "content-type": content_type,
        "content-encoding": encoding,
        "content-length": content.len(),
    })
}

fn frame(header: &Value, content: &[u8]) -> Vec<u8> {
    frame_raw(&header.to_string(), content)
}

/// The content of a JSON request.
fn request_content(action: &str, value: &str) -> Vec<u8> {
    json!({"action": action, "value": value})
        .to_string()
        .into_bytes()
}

/// A whole `text/json` request.
fn json_request(action: &str, value: &str) -> Vec<u8> {
    let content = request_content(action, value);
    frame(&header_for("text/json", "utf-8", &content), &content)
}

/// A whole binary request.
fn binary_request_bytes(content: &[u8]) -> Vec<u8> {
    frame(&header_for(CLIENT_BINARY_TYPE, "binary", content), content)
}

/// A message read off the wire.
#[derive(Debug)]
struct Received {
    header: Map<String, Value>,
    content: Vec<u8>,
    /// Where the message ended in the bytes read.
    end: usize,
}

/// How far some bytes are into a message.
#[derive(Debug)]
enum Parsed {
    /// Not a whole message yet.
    Incomplete(String),
    /// A whole message.
    Complete(Received),
    /// Bytes that can never become a valid message.
    Invalid(String),
}

/// Parses the message at the start of `bytes` as the contract defines it.
fn parse_message(bytes: &[u8]) -> Parsed {
    let Some(&[high, low]) = bytes.get(..2) else {
        return Parsed::Incomplete(format!(
            "{} of the 2 bytes of the header length",
            bytes.len()
        ));
    };
    let header_len = usize::from(u16::from_be_bytes([high, low]));
    if header_len == 0 {
        return Parsed::Invalid("the JSON header length is 0".into());
    }
    let header_end = 2 + header_len;
    let Some(header_bytes) = bytes.get(2..header_end) else {
        return Parsed::Incomplete(format!(
            "the 2-byte length announced a JSON header of {header_len} bytes; only {} arrived",
            bytes.len() - 2
        ));
    };
    let header = match serde_json::from_slice::<Value>(header_bytes) {
        Ok(Value::Object(header)) => header,
        Ok(_) => return Parsed::Invalid("the JSON header is not a JSON object".into()),
        Err(err) => {
            return Parsed::Invalid(format!(
                "the JSON header is not valid UTF-8 JSON ({err}): {}",
                show::bytes(header_bytes, 200)
            ));
        }
    };
    if let Some(key) = REQUIRED_KEYS.iter().find(|key| !header.contains_key(**key)) {
        return Parsed::Invalid(format!(
            "the JSON header has no \"{key}\" key: {}",
            Value::Object(header.clone())
        ));
    }
    let Some(length) = header["content-length"].as_u64() else {
        return Parsed::Invalid(format!(
            "the JSON header's content-length is not a whole number: {}",
            header["content-length"]
        ));
    };
    if length > MAX_CONTENT_LENGTH {
        return Parsed::Invalid(format!(
            "content-length {length} is above the limit of 1 MiB"
        ));
    }
    let end = header_end + length as usize;
    let Some(content) = bytes.get(header_end..end) else {
        return Parsed::Incomplete(format!(
            "the JSON header announced {length} bytes of content; only {} arrived",
            bytes.len() - header_end
        ));
    };
    Parsed::Complete(Received {
        content: content.to_vec(),
        header,
        end,
    })
}

fn is_complete_or_invalid(bytes: &[u8]) -> bool {
    !matches!(parse_message(bytes), Parsed::Incomplete(_))
}

/// What the reference server answers to a request: `None` for bad input
/// (it would log an error and close).
fn reference_answer(request: &Received) -> Option<Vec<u8>> {
    let content_type = request.header["content-type"].as_str()?;
    if content_type != "text/json" {
        let mut answer = b"First 10 bytes of request: ".to_vec();
        answer.extend_from_slice(&request.content[..request.content.len().min(10)]);
        return Some(frame(
            &header_for(SERVER_BINARY_TYPE, "binary", &answer),
            &answer,
        ));
    }
    let object: Map<String, Value> = serde_json::from_slice(&request.content).ok()?;
    let action = object.get("action")?.as_str()?;
    let value = object.get("value")?.as_str()?;
    let content = json!({"result": expected_result(action, value)})
        .to_string()
        .into_bytes();
    Some(frame(&header_for("text/json", "utf-8", &content), &content))
}

/// The `result` the contract gives for `action` and `value`.
fn expected_result(action: &str, value: &str) -> String {
    if action != "search" {
        return format!("Error: invalid action \"{action}\".");
    }
    TABLE.iter().find(|(key, _)| *key == value).map_or_else(
        || format!("No match for \"{value}\"."),
        |(_, answer)| (*answer).into(),
    )
}

/// What a response must be.
#[derive(Debug, Clone)]
enum Expected {
    /// `text/json`, `utf-8`, content `{"result": …}`.
    Result(String),
    /// The server's binary type, encoding `binary`, these bytes.
    Binary(Vec<u8>),
}

impl Expected {
    fn for_search(action: &str, value: &str) -> Self {
        Expected::Result(expected_result(action, value))
    }

    fn for_binary(content: &[u8]) -> Self {
        let mut answer = b"First 10 bytes of request: ".to_vec();
        answer.extend_from_slice(&content[..content.len().min(10)]);
        Expected::Binary(answer)
    }

    fn describe(&self) -> String {
        match self {
            Expected::Result(result) => format!(
                "a text/json response in utf-8 with content {}",
                json!({ "result": result })
            ),
            Expected::Binary(bytes) => format!(
                "a {SERVER_BINARY_TYPE} response, encoding binary, content {}",
                show::bytes(bytes, 120)
            ),
        }
    }
}

/// How a wait for the response ended, in words.
fn ending(end: &ReadEnd) -> &'static str {
    match end {
        ReadEnd::Eof => "the server closed the connection",
        ReadEnd::Enough => "the grader stopped reading",
        ReadEnd::Deadline => "nothing more arrived before the time limit",
        ReadEnd::Error(_) => "the connection failed (reset by the server?)",
    }
}

/// Checks a response against what the contract expects: framing, every
/// header key, content-length agreeing with the bytes sent, and the content.
fn judge(received: &[u8], end: &ReadEnd, expected: &Expected) -> Result<(), Failure> {
    let message = match parse_message(received) {
        Parsed::Complete(message) => message,
        Parsed::Incomplete(why) => {
            let summary = if received.is_empty() {
                format!("no response: {}", ending(end))
            } else {
                format!("the response is incomplete ({why}), then {}", ending(end))
            };
            return Err(Failure::new(summary)
                .expected(expected.describe())
                .actual(show::bytes(received, 300)));
        }
        Parsed::Invalid(why) => {
            return Err(
                Failure::new(format!("the response is not a valid message: {why}"))
                    .expected(expected.describe())
                    .actual(show::bytes(received, 300)),
            );
        }
    };
    let header = Value::Object(message.header.clone());
    let bad_header = |what: String| {
        Err(
            Failure::new(format!("the response's JSON header is wrong: {what}"))
                .expected(expected.describe())
                .actual(format!(
                    "header {header}, content {}",
                    show::bytes(&message.content, 200)
                )),
        )
    };
    if !matches!(header["byteorder"].as_str(), Some("little" | "big")) {
        return bad_header(format!(
            "\"byteorder\" is {}, not \"little\" or \"big\"",
            header["byteorder"]
        ));
    }
    if received.len() > message.end {
        return Err(Failure::new(format!(
            "content-length says {} bytes, but {} more bytes followed them",
            message.content.len(),
            received.len() - message.end
        ))
        .expected("content-length equal to the number of content bytes (bytes, not characters)")
        .actual(show::bytes(received, 300)));
    }
    let (content_type, encoding) = (
        header["content-type"].as_str().unwrap_or_default(),
        header["content-encoding"].as_str().unwrap_or_default(),
    );
    match expected {
        Expected::Result(result) => {
            if content_type != "text/json" || !encoding.eq_ignore_ascii_case("utf-8") {
                return bad_header(format!(
                    "content-type {} and content-encoding {} (expected \"text/json\" and \"utf-8\")",
                    header["content-type"], header["content-encoding"]
                ));
            }
            let want = json!({ "result": result });
            match serde_json::from_slice::<Value>(&message.content) {
                Ok(got) if got == want => Ok(()),
                Ok(got) => Err(Failure::new("the response has the wrong result")
                    .expected(want.to_string())
                    .actual(got.to_string())),
                Err(err) => Err(Failure::new(format!(
                    "the response's content is not UTF-8 JSON ({err}); if it looks cut short, content-length may count characters instead of bytes"
                ))
                .expected(want.to_string())
                .actual(show::bytes(&message.content, 300))),
            }
        }
        Expected::Binary(bytes) => {
            if content_type != SERVER_BINARY_TYPE || encoding != "binary" {
                return bad_header(format!(
                    "content-type {} and content-encoding {} (expected \"{SERVER_BINARY_TYPE}\" and \"binary\")",
                    header["content-type"], header["content-encoding"]
                ));
            }
            match show::first_difference(bytes, &message.content) {
                None => Ok(()),
                Some(difference) => Err(Failure::new("the response has the wrong content")
                    .expected(show::bytes(bytes, 200))
                    .actual(show::bytes(&message.content, 200))
                    .detail(difference)),
            }
        }
    }
}

/// Reads one response off `stream`: until it is complete (or can never be),
/// the server closes, or `deadline`.
fn read_response(stream: &TcpStream, deadline: Instant) -> (Vec<u8>, ReadEnd) {
    net::read_until_done(stream, deadline, is_complete_or_invalid)
}

/// Sends `request` on a new connection as `plan` says and checks the
/// response.
fn ask(
    ctx: &Ctx,
    server: &mut Server,
    request: &[u8],
    plan: SendPlan,
    expected: &Expected,
    what: &str,
) -> CheckResult {
    let stream = net::connect(server.addr, ctx.deadline())?;
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
        let failure = match write_error {
            Some(err) => failure.detail(format!("sending the request failed: {err}")),
            None => failure,
        };
        server.explain(failure.detail(format!("request sent: {}", show::bytes(request, 200))))
    })
}

/// A plan that sends everything at once and keeps the connection open (the
/// protocol's client does not half-close).
const ALL_AT_ONCE: SendPlan = SendPlan {
    piece: None,
    pause: Duration::ZERO,
    half_close: false,
    wait_until_read: false,
};

trait SummaryPrefix {
    fn summary_prefix(self, what: &str) -> Self;
}

impl SummaryPrefix for Failure {
    /// Says which request a failure is about.
    fn summary_prefix(mut self, what: &str) -> Self {
        self.summary = format!("{what}: {}", self.summary);
        self
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

// ---------------------------------------------------------------------------
// Server checks
// ---------------------------------------------------------------------------

fn search(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("search", "morpheus"), ("search", "ring")])
}

fn unicode_query(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("search", "🐶")])
}

fn no_match(ctx: &Ctx) -> CheckResult {
    let word = format!("neo-{}", ctx.rng().u32(1000..10000));
    search_for(ctx, &[("search", "trinity"), ("search", &word)])
}

fn invalid_action(ctx: &Ctx) -> CheckResult {
    search_for(ctx, &[("find", "ring"), ("double", "morpheus")])
}

fn binary_request(ctx: &Ctx) -> CheckResult {
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

fn closes_after_answer(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let request = json_request("search", "ring");
    let stream = net::connect(server.addr, ctx.deadline())?;
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

fn one_byte_at_a_time(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let plan = SendPlan {
        piece: Some(1),
        pause: Duration::from_millis(3),
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

fn split_length(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let request = json_request("search", "ring");
    let stream = net::connect(server.addr, ctx.deadline())?;
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

fn concurrent(ctx: &Ctx) -> CheckResult {
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
    for _ in 0..CLIENTS {
        streams.push(net::connect(server.addr, deadline).map_err(|f| server.explain(f))?);
    }
    ctx.note_command(format!(
        "(grader) open {CLIENTS} connections, send the first half of every request, then every second half"
    ));
    // Every connection is half-way through its request at the same time:
    // the server must keep a buffer and a state per connection. The second
    // halves go out in the reverse order, once the server has accepted every
    // connection (and so could read their first halves).
    let send_part = |stream: &TcpStream, part: &[u8]| {
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
    for (index, (stream, (value, _))) in streams.iter().zip(&requests).enumerate() {
        let (received, end) = read_response(stream, deadline);
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
    let waiting = net::connect(server.addr, ctx.deadline())?;
    let middle = good.len() / 2;
    net::send(&waiting, &good[..middle], ALL_AT_ONCE, ctx.deadline()).map_err(|err| {
        Failure::new(format!("sending the first half of a request failed: {err}"))
    })?;
    for (what, bytes) in cases {
        ctx.note_command(format!(
            "(grader) on a new connection, send {what}: {}",
            show::bytes(bytes, 160)
        ));
        let bad = net::connect(server.addr, ctx.deadline()).map_err(|f| server.explain(f))?;
        let peer = bad
            .local_addr()
            .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
        // Writing may fail if the server already closed: that is fine.
        let _ = net::send(&bad, bytes, ALL_AT_ONCE, ctx.within(2.0));
        let (received, end) = net::read_until(&bad, None, ctx.within(3.0));
        if end == ReadEnd::Deadline {
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

fn malformed_header(ctx: &Ctx) -> CheckResult {
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

fn missing_key(ctx: &Ctx) -> CheckResult {
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

fn bad_content(ctx: &Ctx) -> CheckResult {
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

fn huge_content_length(ctx: &Ctx) -> CheckResult {
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

fn stalled_half(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let stalled_request = json_request("search", "ring");
    // One connection stops inside the 2-byte length, another inside the
    // content; both stay open without sending more.
    let cuts = [1, stalled_request.len() - 5];
    let mut stalled = Vec::new();
    for cut in cuts {
        let stream = net::connect(server.addr, ctx.deadline())?;
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
    let stream = net::connect(server.addr, ctx.deadline())?;
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

fn byte_order(ctx: &Ctx) -> CheckResult {
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
        .filter(|line| prefixes.iter().any(|prefix| line.starts_with(prefix)))
        .map(|line| match parse_received_request(&line) {
            Some((object, peer)) => format!("Received request {object} from {peer}"),
            None => line,
        })
        .collect();
    redact(&lines.join("\n"))
}

/// Splits `Received request {…} from PEER` into the parsed object and PEER.
fn parse_received_request(line: &str) -> Option<(Value, &str)> {
    let rest = line.strip_prefix("Received request ")?;
    let (object, peer) = rest.rsplit_once(" from ")?;
    let object: Value = serde_json::from_str(object).ok()?;
    object.is_object().then_some((object, peer))
}

fn server_log(ctx: &Ctx) -> CheckResult {
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
        let stream = net::connect(server.addr, ctx.deadline())?;
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
    ctx.snapshot(&contract_lines(&server))
}

// ---------------------------------------------------------------------------
// Client checks: the grader is the server
// ---------------------------------------------------------------------------

/// How the grader's server sends its response.
#[derive(Debug, Clone)]
enum Reply {
    /// As the reference server would, in one write.
    Reference,
    /// The reference response in fragments with pauses, the 2-byte length
    /// split between the first two.
    Fragments,
    /// These bytes instead, then close.
    Raw(Vec<u8>),
}

/// What the grader's server saw of the client's request.
#[derive(Debug)]
struct SeenRequest {
    bytes: Vec<u8>,
    end: ReadEnd,
}

/// Starts a grader server that reads one request by its framing and answers
/// as `reply` says.
fn reference_peer(ctx: &Ctx, reply: Reply) -> Result<Peer<SeenRequest>, Failure> {
    let deadline = ctx.within(8.0);
    Peer::serve_one(deadline, move |mut stream: TcpStream| {
        let (bytes, end) = read_response(&stream, deadline);
        let answer = match parse_message(&bytes) {
            Parsed::Complete(request) => reference_answer(&request),
            _ => None,
        };
        match (reply, answer) {
            (Reply::Raw(raw), _) => stream.write_all(&raw)?,
            (Reply::Reference, Some(answer)) => stream.write_all(&answer)?,
            (Reply::Fragments, Some(answer)) => {
                stream.write_all(&answer[..1])?;
                for piece in answer[1..].chunks(3) {
                    thread::sleep(Duration::from_millis(8));
                    stream.write_all(piece)?;
                }
            }
            // Bad input: close without answering, as the reference does.
            (_, None) => {}
        }
        let _ = stream.shutdown(Shutdown::Both);
        Ok(SeenRequest { bytes, end })
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))
}

/// Wakes up a grader server still waiting for its client, once the client
/// has exited: a client that never connected must not make the check wait
/// for the server's deadline. (If the client was served, this connection
/// just goes unanswered.)
fn poke(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

/// Runs the client against `peer` with ACTION and VALUE.
fn run_client(ctx: &Ctx, peer: SocketAddr, action: &str, value: &str) -> Result<Finished, Failure> {
    let port = peer.port().to_string();
    ctx.run(
        &ctx.launch(CLIENT, ["127.0.0.1", port.as_str(), action, value])?,
        5.0,
    )
}

/// Checks the request the client sent against what the contract asks.
fn judge_request(
    seen: &SeenRequest,
    content_type: &str,
    encoding: &str,
    content: &Expected,
) -> CheckResult {
    let description = match content {
        Expected::Result(text) => {
            format!("content-type {content_type}, encoding {encoding}, content {text}")
        }
        Expected::Binary(bytes) => format!(
            "content-type {content_type}, encoding {encoding}, content {}",
            show::bytes(bytes, 120)
        ),
    };
    let request = match parse_message(&seen.bytes) {
        Parsed::Complete(request) => request,
        Parsed::Incomplete(why) => {
            return Err(Failure::new(format!(
                "the client's request was incomplete ({why}); then {}",
                ending(&seen.end)
            ))
            .expected(description)
            .actual(show::bytes(&seen.bytes, 300)));
        }
        Parsed::Invalid(why) => {
            return Err(Failure::new(format!(
                "the client's request is not a valid message: {why}"
            ))
            .expected(description)
            .actual(show::bytes(&seen.bytes, 300)));
        }
    };
    let header = Value::Object(request.header.clone());
    let wrong = |what: String| {
        Err(
            Failure::new(format!("the client's request is wrong: {what}"))
                .expected(description.clone())
                .actual(format!(
                    "header {header}, content {}",
                    show::bytes(&request.content, 200)
                )),
        )
    };
    if seen.bytes.len() > request.end {
        return wrong(format!(
            "content-length says {} bytes, but more followed (count bytes, not characters)",
            request.content.len()
        ));
    }
    if !matches!(header["byteorder"].as_str(), Some("little" | "big")) {
        return wrong("\"byteorder\" is not \"little\" or \"big\"".into());
    }
    if header["content-type"] != content_type
        || header["content-encoding"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref()
            != Some(encoding)
    {
        return wrong("content-type or content-encoding".into());
    }
    let right_content = match content {
        Expected::Result(text) => {
            serde_json::from_slice::<Value>(&request.content).ok()
                == serde_json::from_str::<Value>(text).ok()
        }
        Expected::Binary(bytes) => request.content == *bytes,
    };
    if right_content {
        Ok(())
    } else {
        wrong("the content".into())
    }
}

/// Runs the client against a grader server, checks its request, and checks
/// it printed `want` and exited 0.
fn expect_client(
    ctx: &Ctx,
    reply: Reply,
    (action, value): (&str, &str),
    want: &str,
) -> Result<Finished, Failure> {
    let peer = reference_peer(ctx, reply)?;
    let finished = run_client(ctx, peer.addr, action, value)?;
    poke(peer.addr);
    let seen = peer
        .join()
        .map_err(|err| Failure::new(format!("the grader's server failed: {err}")))?;
    let command = format!("{CLIENT} 127.0.0.1 PORT {action} {value}");
    if seen.bytes.is_empty() && finished.code() != Some(0) {
        return Err(
            Failure::new(format!("{command}: the client sent no request"))
                .expected("a framed request, then the answer printed and exit code 0")
                .actual(finished.describe())
                .detail(finished.stderr_detail()),
        );
    }
    let (content_type, encoding, content) = if action == "search" {
        (
            "text/json",
            "utf-8",
            Expected::Result(json!({"action": action, "value": value}).to_string()),
        )
    } else {
        (
            CLIENT_BINARY_TYPE,
            "binary",
            Expected::Binary([action.as_bytes(), value.as_bytes()].concat()),
        )
    };
    judge_request(&seen, content_type, encoding, &content).map_err(|failure| {
        failure
            .summary_prefix(&command)
            .detail(finished.stderr_detail())
    })?;
    let stdout = finished.stdout_text();
    let got = stdout.lines().find(|line| line.starts_with("Got "));
    if got == Some(want) && finished.code() == Some(0) {
        return Ok(finished);
    }
    Err(
        Failure::new(format!("{command}: the client did not print the answer"))
            .expected(format!("{want}   then exit code 0"))
            .actual(format!(
                "{}, then {}",
                got.map_or_else(
                    || format!(
                        "no `Got …` line (stdout: {})",
                        show::bytes(&finished.stdout, 200)
                    ),
                    str::to_owned
                ),
                finished.describe()
            ))
            .detail(finished.stderr_detail()),
    )
}

fn got_result(action: &str, value: &str) -> String {
    format!("Got result: {}", expected_result(action, value))
}

fn client_search(ctx: &Ctx) -> CheckResult {
    for value in ["morpheus", "🐶"] {
        expect_client(
            ctx,
            Reply::Reference,
            ("search", value),
            &got_result("search", value),
        )?;
    }
    Ok(())
}

fn client_binary(ctx: &Ctx) -> CheckResult {
    let want = format!(
        "Got response: b\"{}\"",
        b"First 10 bytes of request: double\xf0\x9f\x90\xb6".escape_ascii()
    );
    expect_client(ctx, Reply::Reference, ("double", "🐶🐶"), &want).map(drop)
}

fn client_fragments(ctx: &Ctx) -> CheckResult {
    expect_client(
        ctx,
        Reply::Fragments,
        ("search", "ring"),
        &got_result("search", "ring"),
    )
    .map(drop)
    .map_err(|failure| {
        failure.detail("the grader's server sent the response 3 bytes at a time, the 2-byte length split between the first two writes")
    })
}

fn client_malformed(ctx: &Ctx) -> CheckResult {
    let not_json = b"not json";
    let answer = br#"{"result": "In the caves beneath the Misty Mountains."}"#;
    let whole = frame(&header_for("text/json", "utf-8", answer), answer);
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "a JSON header that is not JSON",
            frame_raw("{not a json}", b""),
        ),
        ("a JSON header length of 0", vec![0, 0]),
        (
            "a JSON header without content-length",
            frame_raw(
                r#"{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8"}"#,
                b"",
            ),
        ),
        (
            "text/json content that is not JSON",
            frame(&header_for("text/json", "utf-8", not_json), not_json),
        ),
        (
            "half a response, then the connection closed",
            whole[..whole.len() - 20].to_vec(),
        ),
    ];
    for (what, raw) in cases {
        let peer = reference_peer(ctx, Reply::Raw(raw.clone()))?;
        let finished = run_client(ctx, peer.addr, "search", "ring")?;
        poke(peer.addr);
        let _ = peer.join();
        let stderr = finished.stderr_text();
        let error_lines = stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .count();
        let crashed = finished.crashed(|line: &str| line.starts_with("error: "));
        let printed_got = finished
            .stdout_text()
            .lines()
            .any(|line| line.starts_with("Got "));
        if finished.code() == Some(1) && error_lines >= 1 && !crashed && !printed_got {
            continue;
        }
        return Err(Failure::new(format!(
            "the grader's server answered with {what}; the client did not report it cleanly"
        ))
        .expected("an `error: …` line on stderr, no `Got …` line, exit code 1 (no panic)")
        .actual(finished.brief())
        .detail(format!("the server sent: {}", show::bytes(&raw, 200))));
    }
    Ok(())
}

fn client_output(ctx: &Ctx) -> CheckResult {
    let mut output = String::new();
    let runs = [
        (("search", "morpheus"), got_result("search", "morpheus")),
        (
            ("double", "🐶"),
            format!(
                "Got response: b\"{}\"",
                b"First 10 bytes of request: double\xf0\x9f\x90\xb6".escape_ascii()
            ),
        ),
    ];
    for (args, want) in runs {
        let finished = expect_client(ctx, Reply::Reference, args, &want)?;
        for line in finished.stdout_text().lines() {
            if line.starts_with("Got ") {
                output.push_str(line);
                output.push('\n');
            }
        }
    }
    ctx.snapshot(&redact(&output))
}

// ---------------------------------------------------------------------------
// The crate's own tests
// ---------------------------------------------------------------------------

/// How many test cases the grader's framing tests have: a run with fewer
/// has lost some (a grader bug), and has not shown that the framing works.
const FRAMING_TESTS: usize = 30;

/// Runs the grader's own framing tests (`grader/framing/tests/framing.rs`),
/// built against the graded crate's library, as a graded program.
fn framing_tests(ctx: &Ctx) -> CheckResult {
    let Some(tests) = ctx.binaries().tests.clone() else {
        return Err(ctx.skip(format!(
            "not applicable: {} holds executables, not a cargo crate with the framing library",
            ctx.binaries().origin
        )));
    };
    let executable = tests.map_err(|message| {
        Failure::new(format!(
            "the grader's framing tests do not compile against your library: keep the public API of src/lib.rs as the stub declares it\n{}",
            show::tail(&message, 30)
        ))
    })?;
    let mut launch = Launch::new(executable, ["--color", "never"]);
    launch.output_cap = ctx.spec().output_cap();
    ctx.note_command(launch.command_line());
    let finished = ctx.run(&launch, ctx.spec().time_limit)?;
    let stdout = finished.stdout_text();
    let results: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("test result: "))
        .collect();
    let passed: usize = results
        .iter()
        .filter_map(|line| {
            line.split(';')
                .find_map(|part| part.trim().strip_suffix(" passed"))
                .and_then(|count| {
                    count
                        .trim_start_matches("test result: ok.")
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
        })
        .sum();
    if finished.code() == Some(0) && passed >= FRAMING_TESTS {
        return Ok(());
    }
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|line| line.ends_with("FAILED") && line.starts_with("test "))
        .collect();
    let summary = if finished.timed_out {
        "the framing tests did not finish in time".to_owned()
    } else if results.is_empty() {
        "the framing tests did not build or did not run".to_owned()
    } else if failed.is_empty() {
        format!("only {passed} of the grader's {FRAMING_TESTS} framing tests ran")
    } else {
        format!(
            "{} of {} framing tests failed",
            failed.len(),
            failed.len() + passed_anyway(&results)
        )
    };
    Err(Failure::new(summary)
        .expected("the grader's framing tests pass: the same cases as the tests at the bottom of src/lib.rs (`cargo test -p app -- --include-ignored`)")
        .actual(finished.describe())
        .detail(if failed.is_empty() {
            String::new()
        } else {
            show::head(&failed.join("\n"), 12)
        })
        .detail(finished.stderr_detail())
        .detail(show::head(&panics(&stdout), 20)))
}

/// How many tests passed, from libtest's `test result:` lines, whether or
/// not the run as a whole failed.
fn passed_anyway(results: &[&str]) -> usize {
    results
        .iter()
        .filter_map(|line| {
            let (_, rest) = line.split_once(". ")?;
            rest.split(';')
                .find_map(|part| part.trim().strip_suffix(" passed"))?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .sum()
}

/// The panic messages in libtest's output, the part that says what failed.
fn panics(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("failures:"))
        .take(60)
        .collect::<Vec<_>>()
        .join("\n")
}
