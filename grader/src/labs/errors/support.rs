//! What the `socket-errors` checks share: starting the program, reading
//! what it printed, judging the stage it reports, and the grader peers that
//! receive its request.

use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::net::conn::{Conn, TooMuch};
use crate::harness::net::{self, Peer};
use crate::harness::payload;
use crate::harness::process::{Finished, Launch};
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::{CLIENT, CONNECT, CREATE, RECEIVE, RESOLVE, SEND, Stage};

/// How `socket-errors` is started: `--host HOST --port PORT --file PATH`,
/// then `extra`. Name resolution is told to give up after one try of one
/// second, since no DNS server may be reachable (the contract asks graders
/// to do so).
pub(super) fn client(
    ctx: &Ctx,
    host: &str,
    port: u16,
    path: &str,
    extra: &[&str],
) -> Result<Launch, Failure> {
    let port = port.to_string();
    let mut args = vec!["--host", host, "--port", port.as_str(), "--file", path];
    args.extend_from_slice(extra);
    Ok(ctx
        .launch(CLIENT, args)?
        .env("RES_OPTIONS", "timeout:1 attempts:1"))
}

pub(super) fn grader_error(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure::new(format!(
        "the grader could not {what}: {err} (a grader problem, not yours)"
    ))
}

/// Both output streams and the exit status, for failure messages: stderr
/// as text (its first lines hold a panic's message, its last a traceback's
/// error), stdout as bytes.
pub(super) fn outputs(finished: &Finished) -> String {
    let stderr = finished.stderr_text();
    let lines: Vec<&str> = stderr.lines().collect();
    let stderr = match lines.len() {
        0 => "(empty)".to_owned(),
        1 => lines[0].to_owned(),
        n if n <= 8 => format!("\n{}", show::indent(&lines.join("\n"), 8)),
        n => format!(
            "\n{}\n        … ({} lines) …\n{}",
            show::indent(&lines[..4].join("\n"), 8),
            n - 7,
            show::indent(&lines[n - 3..].join("\n"), 8)
        ),
    };
    let stdout = if finished.stdout.is_empty() {
        "(empty)".to_owned()
    } else {
        show::bytes(&finished.stdout, 120)
    };
    format!(
        "{}\n    stdout: {stdout}\n    stderr: {stderr}",
        finished.describe()
    )
}

/// The first line of either stream that starts with `prefix`.
fn line_with(finished: &Finished, prefix: &str) -> Option<String> {
    [finished.stderr_text(), finished.stdout_text()]
        .iter()
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .find(|line| line.starts_with(prefix))
}

/// The line the program printed for `stage`, on either stream.
pub(super) fn stage_line(finished: &Finished, stage: Stage) -> Option<String> {
    line_with(finished, stage.prefix)
}

/// Passes when the program ended at `stage`: its exit code, and its line on
/// either stream (which stream is [`stderr_not_stdout`]'s business).
pub(super) fn expect_stage(finished: &Finished, stage: Stage, situation: &str) -> CheckResult {
    let line = line_with(finished, stage.prefix);
    if !finished.timed_out && finished.code() == Some(stage.code) && line.is_some() {
        return Ok(());
    }
    let mut failure = Failure::new(format!(
        "{situation}: expected a failure at the `{}` stage",
        stage.name
    ))
    .expected(format!(
        "a line `{}…` on stderr and exit code {}",
        stage.prefix, stage.code
    ))
    .actual(outputs(finished));
    if finished.timed_out {
        failure = failure.detail("the program was still waiting when the grader stopped it");
    } else if let Some(other) = [CREATE, RESOLVE, CONNECT, SEND, RECEIVE]
        .into_iter()
        .find(|other| finished.code() == Some(other.code))
    {
        failure = failure.detail(format!(
            "exit code {} is the `{}` stage's: this failure happened at a different step",
            other.code, other.name
        ));
    }
    Err(failure)
}

/// What a grader peer read of the request before it acted.
#[derive(Debug, Default)]
pub(super) struct Request {
    pub(super) bytes: Vec<u8>,
    /// Whether it ended with a blank line (CRLF or, leniently, LF).
    pub(super) complete: bool,
    /// Whether the client sent more than a request can be.
    pub(super) too_much: Option<TooMuch>,
}

/// The longest request the grader reads: `GET PATH HTTP/1.0` and a blank
/// line, with the grader's own paths (a few dozen bytes).
const REQUEST_AT_MOST: u64 = 4096;

/// Reads a request up to its blank line, end of stream or the stream's
/// timeout, and no more than [`REQUEST_AT_MOST`] and the connection's
/// margin. Checks other than `request_line` accept a bare `\n\n` so that
/// one line-ending bug costs one check.
pub(super) fn read_request(stream: &mut Conn) -> Request {
    let mut request = Request::default();
    let mut buffer = [0; 4096];
    stream.expect_at_most(REQUEST_AT_MOST);
    while !request.complete {
        match stream.read(&mut buffer) {
            Err(err) if TooMuch::of(&err).is_some() => {
                request.too_much = TooMuch::of(&err).cloned();
                break;
            }
            Ok(0) | Err(_) => break,
            Ok(n) => request.bytes.extend_from_slice(&buffer[..n]),
        }
        request.complete = request.bytes.ends_with(b"\r\n\r\n") || request.bytes.ends_with(b"\n\n");
    }
    request
}

pub(super) fn start_peer<T: Send + 'static>(
    ctx: &Ctx,
    serve: impl FnOnce(Conn) -> io::Result<T> + Send + 'static,
) -> Result<Peer<T>, Failure> {
    Peer::serve_one(ctx.deadline(), serve).map_err(|err| grader_error("start its server", err))
}

/// A peer that reads the request, sends `reply` in pieces with pauses, and
/// closes; it returns the request it read.
pub(super) fn replying_peer(ctx: &Ctx, reply: Vec<u8>) -> Result<Peer<Request>, Failure> {
    start_peer(ctx, move |mut stream| {
        let request = read_request(&mut stream);
        for (index, piece) in reply.chunks(4096).enumerate() {
            if index > 0 {
                thread::sleep(Duration::from_millis(3));
            }
            // The client may have given up (a bug); the check reports that.
            if stream.write_all(piece).is_err() {
                break;
            }
        }
        Ok(request)
    })
}

/// A peer that reads the request, sends `first` after `pause` (a slow
/// server: the pause is the scenario, not a synchronisation; with nothing
/// to send, a server that never answers), then says nothing, keeping the
/// connection open until the returned [`SilentUntil`] is dropped or the
/// deadline passes: a client that half-closes after its request (as lab 1
/// teaches) still waits for a reply that never comes. The receiver gets
/// the moment `first` left: a client's read timeout counts from there.
pub(super) fn silent_peer(
    ctx: &Ctx,
    pause: Duration,
    first: &'static [u8],
) -> Result<(Peer<Request>, mpsc::Receiver<Instant>, SilentUntil), Failure> {
    let (sent_sender, sent) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let deadline = ctx.deadline();
    let peer = start_peer(ctx, move |mut stream| {
        let request = read_request(&mut stream);
        let _ = released.recv_timeout(pause);
        // A client that has given up already makes this fail: the check
        // then sees it exit before the bytes left.
        let _ = stream.write_all(first);
        let _ = sent_sender.send(Instant::now());
        // The client may half-close; the connection stays open regardless.
        let _ = net::read_to_eof(&mut stream);
        let _ = released.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        Ok(request)
    })?;
    Ok((peer, sent, SilentUntil(release)))
}

/// Lets a [`silent_peer`] close its connection when dropped.
pub(super) struct SilentUntil(#[allow(dead_code)] mpsc::Sender<()>);

/// Fails unless the grader's peer received a whole request for `path`: a
/// client that reports a stage, or prints a reply, without having sent its
/// request proves nothing about that stage.
pub(super) fn expect_request_sent(
    request: &Request,
    path: &str,
    finished: &Finished,
) -> CheckResult {
    if let Some(too_much) = &request.too_much {
        return Err(Failure::from(too_much.clone())
            .expected(show::bytes(
                format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
                80,
            ))
            .actual(format!(
                "{}; then {}",
                show::bytes(&request.bytes, 80),
                outputs(finished)
            )));
    }
    if request.complete {
        return Ok(());
    }
    Err(Failure::new(
        "the grader's server never received a complete request (a line and a blank line)",
    )
    .expected(show::bytes(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(), 80))
    .actual(format!(
        "{}; then {}",
        show::bytes(&request.bytes, 80),
        outputs(finished)
    ))
    .diagnosis(
        "Send the whole request with `write_all` as soon as you are connected, then read the reply: every check after the connect starts with the request reaching the server.",
        "#step-4-send-the-request",
    ))
}

pub(super) fn random_reply(ctx: &Ctx, len: usize) -> Vec<u8> {
    let mut rng = ctx.rng();
    payload::bytes(&mut rng, len)
}

/// A path with characters that must go out verbatim (no encoding, no
/// trimming): a space, `%`, `?`, `&`, and a space at its end.
pub(super) fn random_path(ctx: &Ctx) -> String {
    let mut rng = ctx.rng();
    let name = payload::alphanumeric(&mut rng, 8);
    format!("/lab2/{name}.bin?part={}&q=a%20b c ", rng.u16(..))
}
