//! Client checks: the grader is the server, reads the graded client's
//! request by its framing, judges it, and answers as the scenario says.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};

use crate::harness::conn::Conn;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::net::{Peer, ReadEnd};
use crate::harness::process::Finished;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::protocol::{
    Expected, Parsed, ending, expected_result, frame, frame_raw, header_for, parse_message,
    read_response, reference_answer,
};
use super::server::SummaryPrefix;
use super::{CLIENT, CLIENT_BINARY_TYPE};

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
    Peer::serve_one(deadline, move |mut stream: Conn| {
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

pub(super) fn client_search(ctx: &Ctx) -> CheckResult {
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

pub(super) fn client_binary(ctx: &Ctx) -> CheckResult {
    let want = format!(
        "Got response: b\"{}\"",
        b"First 10 bytes of request: double\xf0\x9f\x90\xb6".escape_ascii()
    );
    expect_client(ctx, Reply::Reference, ("double", "🐶🐶"), &want).map(drop)
}

pub(super) fn client_fragments(ctx: &Ctx) -> CheckResult {
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

pub(super) fn client_output(ctx: &Ctx) -> CheckResult {
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
