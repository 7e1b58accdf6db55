//! Client checks: the grader is the server, reads the graded client's
//! request by its framing, judges it, and answers as the scenario says.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc;

use crate::harness::net::conn::Conn;
use crate::harness::payload;

use serde_json::{Value, json};

use crate::harness::net::{self, Peer, ReadEnd};
use crate::harness::process::Finished;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, last_words, show};
use crate::outcome::{CheckResult, Failure};

use super::protocol::{
    Expected, Parsed, Received, byte_order_evidence, ending, expected_result, frame, frame_raw,
    header_for, parse_message, read_response, reference_answer,
};
use super::server::AboutRequest;
use super::{CLIENT, CLIENT_BINARY_TYPE, SERVER_BINARY_TYPE};

/// What the grader's server answers to a well-formed request.
#[derive(Debug, Clone)]
enum Answers {
    /// The contract's: the handout's table, and `First 10 bytes of
    /// request: …` to a binary request.
    Reference,
    /// The grader's own, drawn from the seed: `{"result": RESULT}` to any
    /// `text/json` request, this binary content to any other. Only a client
    /// that read the response can print them.
    Seeded { result: String, binary: Vec<u8> },
}

/// Words for the grader's own answers: a result drawn from them cannot be
/// guessed from the handout.
const WORDS: &[&str] = &[
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
    "kelp", "lagoon", "meadow", "nectar", "onyx", "prairie", "quartz", "ridge", "saffron",
    "tundra",
];

impl Answers {
    /// Answers drawn from the check's seed: a phrase with a nonce (and an
    /// emoji, so the client must print UTF-8 as it is), and binary content
    /// of random bytes.
    fn seeded(ctx: &Ctx) -> Self {
        let mut rng = ctx.rng();
        let mut words: Vec<String> = (0..4)
            .map(|_| WORDS[rng.usize(..WORDS.len())].to_owned())
            .collect();
        words.push(rng.u32(..).to_string());
        let mut binary = b"seeded ".to_vec();
        let length = rng.usize(8..24);
        binary.extend(payload::bytes(&mut rng, length));
        Answers::Seeded {
            result: format!("{} 🐇", words.join(" ")),
            binary,
        }
    }

    /// The framed response to a well-formed `request` (`None` for bad
    /// input: the reference server closes without answering).
    fn to(&self, request: &Received) -> Option<Vec<u8>> {
        let Answers::Seeded { result, binary } = self else {
            return reference_answer(request);
        };
        let content_type = request.header["content-type"].as_str()?;
        if content_type != "text/json" {
            return Some(frame(
                &header_for(SERVER_BINARY_TYPE, "binary", binary),
                binary,
            ));
        }
        serde_json::from_slice::<serde_json::Map<String, Value>>(&request.content).ok()?;
        let content = json!({ "result": result }).to_string().into_bytes();
        Some(frame(&header_for("text/json", "utf-8", &content), &content))
    }

    /// The line the client prints for the answer to ACTION and VALUE.
    fn printed(&self, action: &str, value: &str) -> String {
        match (self, action) {
            (Answers::Reference, "search") => {
                format!("Got result: {}", expected_result(action, value))
            }
            (Answers::Reference, _) => {
                let content = [action.as_bytes(), value.as_bytes()].concat();
                let mut answer = b"First 10 bytes of request: ".to_vec();
                answer.extend_from_slice(&content[..content.len().min(10)]);
                format!("Got response: b\"{}\"", answer.escape_ascii())
            }
            (Answers::Seeded { result, .. }, "search") => format!("Got result: {result}"),
            (Answers::Seeded { binary, .. }, _) => {
                format!("Got response: b\"{}\"", binary.escape_ascii())
            }
        }
    }

    /// What a failure adds about where the answers came from.
    fn origin(&self, ctx: &Ctx) -> String {
        match self {
            Answers::Reference => String::new(),
            Answers::Seeded { .. } => format!(
                "the grader's server answered from a table of its own, drawn from seed {}, not the handout's",
                ctx.seed()
            ),
        }
    }
}

/// How the grader's server sends a well-formed answer.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// In one write.
    Whole,
    /// In fragments of 3 bytes, each read before the next is sent, the
    /// 2-byte length split between the first two.
    Fragments,
    /// In one write, then the connection stays open until the client
    /// closes it (at most [`HOLD`]): only the framing says the response is
    /// complete.
    HeldOpen,
}

/// How long a [`Delivery::HeldOpen`] server keeps the connection open after
/// its answer, at most (scaled), waiting for the client to end: a client
/// that waits for the close waits that long, unless the grader sees it
/// asleep waiting first and stops it.
const HOLD: f64 = 3.0;

/// How the grader's server responds.
#[derive(Debug, Clone)]
enum Reply {
    /// With the answer to the request, delivered as said.
    Answer(Answers, Delivery),
    /// With these bytes instead, then it closes.
    Raw(Vec<u8>),
}

/// What the grader's server saw of the client's request.
#[derive(Debug)]
struct SeenRequest {
    bytes: Vec<u8>,
    end: ReadEnd,
    /// With [`Delivery::HeldOpen`]: the client was still waiting, its
    /// connection open, when the server gave up holding it.
    waited_for_close: bool,
}

/// Starts a grader server that reads one request by its framing and answers
/// as `reply` says. `client_ended` says when the client has ended (only
/// [`Delivery::HeldOpen`] waits for it).
fn answering_peer(
    ctx: &Ctx,
    reply: Reply,
    client_ended: mpsc::Receiver<()>,
) -> Result<Peer<SeenRequest>, Failure> {
    let deadline = ctx.within(8.0);
    let hold = ctx.scaled(HOLD);
    Peer::serve_one(deadline, move |mut stream: Conn| {
        let mut waited_for_close = false;
        let (bytes, end) = read_response(&stream, deadline);
        let answer = match (parse_message(&bytes), &reply) {
            (Parsed::Complete(request), Reply::Answer(answers, _)) => answers.to(&request),
            _ => None,
        };
        match (reply, answer) {
            (Reply::Raw(raw), _) => stream.write_all(&raw)?,
            (Reply::Answer(_, Delivery::Whole), Some(answer)) => stream.write_all(&answer)?,
            // Each fragment goes out once the client has read the one
            // before: every read returns one fragment, however loaded the
            // machine.
            (Reply::Answer(_, Delivery::Fragments), Some(answer)) => {
                stream.write_all(&answer[..1])?;
                for piece in answer[1..].chunks(3) {
                    net::wait_until_read(&stream, deadline);
                    stream.write_all(piece)?;
                }
            }
            (Reply::Answer(_, Delivery::HeldOpen), Some(answer)) => {
                stream.write_all(&answer)?;
                // Open until the client has ended, whatever it sends: a
                // client that half-closed after its request may still
                // wait for the close.
                waited_for_close = matches!(
                    client_ended.recv_timeout(hold),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
            }
            // Bad input: close without answering, as the reference does.
            (_, None) => {}
        }
        let _ = stream.shutdown(Shutdown::Both);
        Ok(SeenRequest {
            bytes,
            end,
            waited_for_close,
        })
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))
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
    if let ReadEnd::TooMuch(too_much) = &seen.end {
        return Err(Failure::from(too_much.clone())
            .expected(description)
            .actual(show::bytes(&seen.bytes, 300)));
    }
    let request = match parse_message(&seen.bytes) {
        Parsed::Complete(request) => request,
        Parsed::Incomplete(why) => {
            return Err(byte_order_evidence(
                Failure::new(format!(
                    "the client's request was incomplete ({why}); then {}",
                    ending(&seen.end)
                ))
                .expected(description)
                .actual(show::bytes(&seen.bytes, 300)),
                &seen.bytes,
                "client",
            ));
        }
        Parsed::Invalid(why) => {
            return Err(byte_order_evidence(
                Failure::new(format!(
                    "the client's request is not a valid message: {why}"
                ))
                .expected(description)
                .actual(show::bytes(&seen.bytes, 300)),
                &seen.bytes,
                "client",
            ));
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
    (answers, delivery): (&Answers, Delivery),
    (action, value): (&str, &str),
) -> Result<Finished, Failure> {
    let want = answers.printed(action, value);
    let (client_ended, ended) = mpsc::channel();
    let peer = answering_peer(ctx, Reply::Answer(answers.clone(), delivery), ended)?;
    let finished = run_client(ctx, peer.addr, action, value);
    let _ = client_ended.send(());
    let finished = finished?;
    let seen = peer.join().map_err(|err| match finished.code() {
        // The client left before the whole response was written.
        Some(code) if code != 0 => client_left_early(&finished, &err),
        _ => Failure::new(format!("the grader's server failed: {err}")),
    })?;
    let command = format!("{CLIENT} 127.0.0.1 PORT {action} {value}");
    if seen.bytes.is_empty() {
        return Err(finished.sent_nothing(
            format!("{command}: the client sent no request"),
            "a framed request, then the answer printed and exit code 0",
            "Send the framed request, then read the server's response and print what it says: the grader checks the request it received, and its servers do not all answer from the handout's table.",
            "#step-5-the-client",
        ));
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
    // Stopped while the server held the connection open (asleep, or out
    // of time), or still waiting when the server gave up: it waited for
    // the close.
    let stopped = finished.timed_out || finished.stalled.is_some();
    if seen.waited_for_close || (matches!(delivery, Delivery::HeldOpen) && stopped) {
        return Err(Failure::new(format!(
            "{command}: the client waited for the server to close the connection after a complete response"
        ))
        .expected(format!("{want}   printed once the response is complete, then exit code 0"))
        .actual(format!(
            "the connection stayed open after the response, and the client waited for more: {}",
            finished.describe()
        ))
        .diagnosis(
            "The framing says when the response is complete: read the 2-byte length, then the header, then content-length bytes of content, and stop there. Reading until end of stream (`read_to_end`) waits for a close the protocol does not promise.",
            "#step-5-the-client",
        ));
    }
    if got == Some(want.as_str()) && finished.code() == Some(0) {
        return Ok(finished);
    }
    let handout = Answers::Reference.printed(action, value);
    let failure = Failure::new(format!("{command}: the client did not print the answer"))
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
        .detail(answers.origin(ctx))
        .detail(finished.stderr_detail());
    Err(if want != handout && got == Some(handout.as_str()) {
        failure.diagnosis(
            "Print the result or content of the response you decoded, not the handout's table: any server may answer anything well-formed.",
            "#step-5-the-client",
        )
    } else {
        failure
    })
}

pub(super) fn client_search(ctx: &Ctx) -> CheckResult {
    let answers = Answers::seeded(ctx);
    for value in ["morpheus", "🐶"] {
        expect_client(ctx, (&answers, Delivery::Whole), ("search", value))?;
    }
    Ok(())
}

pub(super) fn client_binary(ctx: &Ctx) -> CheckResult {
    let answers = Answers::seeded(ctx);
    expect_client(ctx, (&answers, Delivery::Whole), ("double", "🐶🐶")).map(drop)
}

/// The client exited (`finished`) while the grader's server was still
/// writing the response to it (`err`, a reset or a broken pipe). A client
/// that read past what had arrived went wrong in `check`.
fn client_left_early(finished: &Finished, err: &std::io::Error) -> Failure {
    let failure = Failure::new(format!(
        "{CLIENT} exited before the whole response had arrived: {}",
        finished.describe()
    ))
    .expected("the client reads until its framing says the response is complete, then prints it")
    .detail(format!(
        "the grader's server could not write the rest of the response: {err}"
    ))
    .detail(finished.stderr_detail());
    if last_words::mentions_out_of_range(&finished.stderr_text()) {
        failure.diagnosis(
            "The client read past the bytes that had arrived: `check` must answer `Ok(None)` (read more) while the buffer is shorter than the length, the JSON header or the content it announces. Take each part with `buffer.get(start..end)`, which is `None` when the bytes are not all there yet; `&buffer[start..end]` panics.",
            "#step-3-check-then-parse",
        )
    } else {
        failure
    }
}

pub(super) fn client_fragments(ctx: &Ctx) -> CheckResult {
    let answers = Answers::seeded(ctx);
    expect_client(ctx, (&answers, Delivery::Fragments), ("search", "ring"))
        .map(drop)
        .map_err(|failure| {
            failure.detail("the grader's server sent the response 3 bytes at a time, the 2-byte length split between the first two writes")
        })
}

pub(super) fn client_malformed(ctx: &Ctx) -> CheckResult {
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
        // A raw reply is sent and closed at once: nothing waits for the
        // client's end.
        let (_, client_ended) = mpsc::channel();
        let peer = answering_peer(ctx, Reply::Raw(raw.clone()), client_ended)?;
        let finished = run_client(ctx, peer.addr, "search", "ring")?;
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

/// A server that keeps the connection open after its response: the client
/// must print once the framing says the response is complete.
pub(super) fn client_held_open(ctx: &Ctx) -> CheckResult {
    expect_client(
        ctx,
        (&Answers::seeded(ctx), Delivery::HeldOpen),
        ("search", "morpheus"),
    )
    .map(drop)
}

pub(super) fn client_output(ctx: &Ctx) -> CheckResult {
    let mut output = String::new();
    for args in [("search", "morpheus"), ("double", "🐶")] {
        let finished = expect_client(ctx, (&Answers::Reference, Delivery::Whole), args)?;
        for line in finished.stdout_text().lines() {
            if line.starts_with("Got ") {
                output.push_str(line);
                output.push('\n');
            }
        }
    }
    ctx.snapshot(&redact(&output))
}
