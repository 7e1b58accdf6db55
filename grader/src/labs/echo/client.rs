//! The `echo-client` checks, each against a grader peer that notes what
//! crossed the wire ([`Heard`]).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::harness::net::conn::{Conn, TooMuch};
use crate::harness::net::{self, Peer, RefusingPort};
use crate::harness::payload;
use crate::harness::process::Finished;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, last_words, show};
use crate::outcome::{CheckResult, Failure};
use crate::sync::Unpoison;

use super::{CLIENT, HELLO};

/// Runs the client against `peer` with `args` after `HOST PORT`, and checks
/// that the conversation happened: the peer received `message` and the end
/// of stream, and the client printed `Received` with exactly the bytes the
/// peer sent back.
fn expect_client_output(
    ctx: &Ctx,
    args: &[&str],
    (peer, heard): (Peer<()>, &Heard),
    message: &[u8],
) -> Result<Finished, Failure> {
    let port = peer.addr.port().to_string();
    let mut all_args = vec!["127.0.0.1", port.as_str()];
    all_args.extend_from_slice(args);
    let mut client = ctx.spawn(&ctx.launch(CLIENT, all_args)?)?;
    let deadline = ctx.within(5.0);
    // What the grader's peer heard while the client still ran: once it is
    // stopped, its socket closes and the peer sees an end of stream anyway.
    let (exited, stalled) = client.wait_watching(deadline);
    let heard_before_the_end = (!exited).then(|| heard.progress());
    let mut finished = client.finish(if stalled.is_some() || heard.too_much().is_some() {
        std::time::Instant::now()
    } else {
        deadline
    });
    finished.stalled = finished.stalled.or(stalled);
    if let Some(too_much) = heard.too_much() {
        return Err(Failure::from(too_much)
            .expected(format!(
                "{CLIENT} sends its message ({}), then the end of stream",
                show::size(message.len() as u64)
            ))
            .actual(format!("{CLIENT} {}", finished.describe())));
    }
    let stdout = finished.stdout_text();
    let got = stdout.lines().find(|line| line.starts_with("Received"));
    if finished.timed_out {
        let failure = Failure::new(format!("{CLIENT} did not finish: {}", finished.describe()))
            .expected(format!("{CLIENT} half-closes, reads until the server closes, prints the line and exits"))
            .actual(match got {
                Some(line) => format!("it printed {}", show::shorten(line, 120)),
                None => "nothing printed yet".to_owned(),
            })
            .detail("the grader's server closes the connection only after the client shuts down its sending side");
        return Err(match heard_before_the_end {
            Some((bytes, false)) if bytes >= message.len() => not_half_closed(failure, bytes),
            _ => failure,
        });
    }
    // The client has exited: take what really crossed the wire.
    let _ = peer.join();
    let (received, half_closed) = heard.received();
    if received != message || !half_closed {
        return Err(not_sent(&finished, message, &received, half_closed));
    }
    // What the peer answers in all, not what it had sent when the client
    // stopped reading: a client that reads once cuts the conversation short.
    let sent = heard.answer();
    let expected_text = sent.escape_ascii().to_string();
    let want = format!("Received b\"{expected_text}\"");
    if got != Some(want.as_str()) || finished.code() != Some(0) {
        let mut failure = Failure::new(format!(
            "{CLIENT} did not print every byte the server sent back"
        ))
        .expected(format!(
            "{}, then exit code 0",
            show::bytes(want.as_bytes(), 160)
        ))
        .actual(format!(
            "{}, then {}",
            got.map_or("no `Received` line".to_owned(), |line| show::bytes(
                line.as_bytes(),
                160
            )),
            finished.describe()
        ))
        .detail(
            got.and_then(|line| line.strip_prefix("Received b\"")?.strip_suffix('"'))
                .and_then(|text| show::first_difference(expected_text.as_bytes(), text.as_bytes()))
                .map(|difference| format!("in the printed text, {difference}"))
                .unwrap_or_default(),
        );
        if got == Some("Received b\"\"") && !sent.is_empty() {
            // An empty reply, printed at once: from outside, the two usual
            // causes look the same.
            failure = failure.detail(
                "the client printed an empty reply: either it read into a buffer of length 0 \
                 (`Vec::with_capacity` has length 0: `read_to_end` grows its Vec, `read` does \
                 not), or it shut down its reading side too (`Shutdown::Both`: every read \
                 then returns 0 at once; half-close with `Shutdown::Write`)",
            );
        }
        // The grader's server closes with a FIN and never resets: a reset on
        // the client's own read comes from its own socket, shut down for
        // reading as well (`Shutdown::Both`), which the echo arriving after
        // that resets (Linux).
        if finished.code() != Some(0)
            && last_words::mentions_connection_error(&finished.stderr_text())
        {
            failure = failure
                .detail("the grader's server sent the echo and closed normally (a FIN, never a reset): the reset came from the client's own side")
                .diagnosis(
                    "Half-close with `shutdown(Shutdown::Write)`, not `Shutdown::Both`: shutting down the reading side too makes every read return 0 at once, and on Linux the echo that arrives after it resets the connection (ECONNRESET on the client's own read).",
                    "#the-half-close",
                );
        }
        if sent != message
            && got.is_some_and(|line| line.contains(&message.escape_ascii().to_string()))
        {
            failure = failure.diagnosis(
                "Print the bytes your reads returned, not the message you sent: the grader's server answered with other bytes.",
                "#step-4-the-client",
            );
        }
        return Err(failure.detail(finished.stderr_detail()));
    }
    Ok(finished)
}

/// The client exited without sending its whole message and the end of
/// stream to the grader's server: it did not talk, or not all of it.
fn not_sent(finished: &Finished, message: &[u8], received: &[u8], half_closed: bool) -> Failure {
    let what = match (received.is_empty(), half_closed) {
        (true, true) => "nothing before the connection closed".to_owned(),
        (true, false) => "nothing".to_owned(),
        (false, true) => format!("{}, then the end of stream", show::bytes(received, 120)),
        (false, false) => format!("{}, and no end of stream", show::bytes(received, 120)),
    };
    Failure::new(format!(
        "the grader's server did not receive the message from {CLIENT}"
    ))
    .expected(format!(
        "{}, then the end of stream (the half-close)",
        show::bytes(message, 120)
    ))
    .actual(format!("it received {what}; {CLIENT} {}", finished.describe()))
    .detail(show::first_difference(message, received).unwrap_or_default())
    .detail(finished.stderr_detail())
    .diagnosis(
        "Connect, write the whole message with `write_all`, shut down writing, then print what the server sent back: the grader compares your output with what really crossed the connection.",
        "#step-4-the-client",
    )
}

/// A grader peer that reads everything until the client half-closes, then
/// echoes it `piece` bytes at a time, and closes.
///
/// Each piece goes out only once the client has read the one before
/// ([`net::wait_until_read`]): a client that calls `read` once then gets one
/// piece, however slow the machine, and the check catches it every time.
fn echo_peer(ctx: &Ctx, message: &[u8], piece: usize) -> Result<(Peer<()>, Arc<Heard>), Failure> {
    let deadline = ctx.deadline();
    let heard = Arc::new(Heard::expecting(message));
    let noted = Arc::clone(&heard);
    Peer::serve_one(deadline, move |mut stream: Conn| {
        let request = noted.read_to_eof(&mut stream)?;
        noted.will_answer(&request);
        for (index, chunk) in request.chunks(piece).enumerate() {
            if index > 0 {
                net::wait_until_read(&stream, deadline);
            }
            noted.write(&mut stream, chunk)?;
        }
        Ok(())
    })
    .map(|peer| (peer, heard))
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))
}

/// A client that sent its whole message, then waited for the echo without
/// half-closing: the grader's peer, waiting for the end of stream, had every
/// byte but never the end.
fn not_half_closed(failure: Failure, bytes: usize) -> Failure {
    failure
        .detail(format!(
            "the grader's server received all {bytes} bytes, but never the end of stream: the client did not shut down its sending side"
        ))
        .diagnosis(
            "After writing the whole message, call `stream.shutdown(Shutdown::Write)`: the server echoes everything once it knows you are done, then closes, and your read loop ends.",
            "#the-half-close",
        )
}

/// What crossed the wire between a grader peer and the client: the bytes
/// the peer received, whether the client shut down its sending side, and
/// the bytes the peer sent back. The checks compare the client's output
/// with it, so a client that prints without talking gets nothing.
#[derive(Debug, Default)]
struct Heard {
    /// How many bytes the client is expected to send: the peer reads no
    /// more than that and the connection's margin.
    expected: usize,
    received: Mutex<Vec<u8>>,
    end: AtomicBool,
    sent: Mutex<Vec<u8>>,
    /// Whether the client sent more than the peer reads, and how much.
    too_much: Mutex<Option<TooMuch>>,
    /// The whole answer the peer means to send, noted before it sends the
    /// first byte: what a client must print, even when it stops reading
    /// (and the peer sending) half-way.
    answer: Mutex<Vec<u8>>,
}

impl Heard {
    /// What a peer hears from a client that is to send `message`.
    fn expecting(message: &[u8]) -> Self {
        Self {
            expected: message.len(),
            ..Self::default()
        }
    }

    /// Reads `stream` to its end, noting what arrives as it goes, up to
    /// the message the client is expected to send and the margin.
    fn read_to_eof(&self, stream: &mut Conn) -> io::Result<Vec<u8>> {
        if stream.is_poke() {
            // The client never connected: the grader woke its own server.
            return Ok(Vec::new());
        }
        stream.expect_at_most(self.expected as u64);
        let mut buffer = [0; 64 * 1024];
        loop {
            let n = stream.read(&mut buffer).inspect_err(|err| {
                if let Some(too_much) = TooMuch::of(err) {
                    *lock(&self.too_much) = Some(too_much.clone());
                }
            })?;
            if n == 0 {
                self.end.store(true, Ordering::SeqCst);
                return Ok(self.received().0);
            }
            lock(&self.received).extend_from_slice(&buffer[..n]);
        }
    }

    /// Notes the whole answer the peer is about to send.
    fn will_answer(&self, answer: &[u8]) {
        *lock(&self.answer) = answer.to_vec();
    }

    /// The answer the peer meant to send: the source of truth for what the
    /// client must print. What was sent, if the peer never got to say.
    fn answer(&self) -> Vec<u8> {
        let answer = lock(&self.answer).clone();
        if answer.is_empty() {
            self.sent()
        } else {
            answer
        }
    }

    /// Writes all of `bytes` to `stream`, noting them once sent.
    fn write(&self, stream: &mut Conn, bytes: &[u8]) -> io::Result<()> {
        stream.write_all(bytes)?;
        lock(&self.sent).extend_from_slice(bytes);
        Ok(())
    }

    /// How many bytes it heard so far, and whether the client half-closed.
    fn progress(&self) -> (usize, bool) {
        (lock(&self.received).len(), self.end.load(Ordering::SeqCst))
    }

    /// The bytes it heard, and whether the client half-closed.
    fn received(&self) -> (Vec<u8>, bool) {
        (
            lock(&self.received).clone(),
            self.end.load(Ordering::SeqCst),
        )
    }

    /// The bytes it sent back.
    fn sent(&self) -> Vec<u8> {
        lock(&self.sent).clone()
    }

    /// Whether the client sent more than the peer reads.
    fn too_much(&self) -> Option<TooMuch> {
        lock(&self.too_much).clone()
    }
}

/// The data behind `mutex`, also after a panic elsewhere (the bytes noted
/// so far are still what crossed the wire).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unpoison()
}

pub(super) fn client_output(ctx: &Ctx) -> CheckResult {
    let (peer, heard) = echo_peer(ctx, HELLO, usize::MAX)?;
    let finished = expect_client_output(ctx, &[], (peer, &heard), HELLO)?;
    // The contract's line only: other lines a client prints are its own.
    let stdout = finished.stdout_text();
    let received: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("Received "))
        .collect();
    ctx.snapshot(&redact(&received.join("\n")))
}

pub(super) fn client_large(ctx: &Ctx) -> CheckResult {
    let mut rng = ctx.rng();
    let message = payload::alphanumeric(&mut rng, 100 * 1024);
    let (peer, heard) = echo_peer(ctx, message.as_bytes(), 4096)?;
    expect_client_output(ctx, &[&message], (peer, &heard), message.as_bytes())
        .map(drop)
        .map_err(|failure| failure.detail(format!("the message came from seed {}", ctx.seed())))
}

pub(super) fn client_pieces(ctx: &Ctx) -> CheckResult {
    let (peer, heard) = echo_peer(ctx, HELLO, 4)?;
    expect_client_output(ctx, &["Hello, world"], (peer, &heard), HELLO).map(drop)
}

pub(super) fn client_half_close(ctx: &Ctx) -> CheckResult {
    // This server answers only once the client has said "I'm done sending".
    let heard = Arc::new(Heard::expecting(HELLO));
    let noted = Arc::clone(&heard);
    let peer = Peer::serve_one(ctx.deadline(), move |mut stream: Conn| {
        let request = noted.read_to_eof(&mut stream)?;
        noted.will_answer(&request);
        noted.write(&mut stream, &request)?;
        stream.shutdown(Shutdown::Write)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    expect_client_output(ctx, &["Hello, world"], (peer, &heard), HELLO).map(drop)
}

/// An echo's output equals its input, so a client could print its own
/// message without reading: this grader server answers with other bytes,
/// drawn from the seed, and the client must print those.
pub(super) fn client_prints_the_reply(ctx: &Ctx) -> CheckResult {
    let mut rng = ctx.rng();
    let mut reply = b"not an echo: ".to_vec();
    let length = rng.usize(16..48);
    reply.extend(payload::bytes(&mut rng, length));
    let heard = Arc::new(Heard::expecting(HELLO));
    let noted = Arc::clone(&heard);
    let peer = Peer::serve_one(ctx.deadline(), move |mut stream| {
        noted.read_to_eof(&mut stream)?;
        noted.will_answer(&reply);
        noted.write(&mut stream, &reply)?;
        stream.shutdown(Shutdown::Write)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    expect_client_output(ctx, &["Hello, world"], (peer, &heard), HELLO)
        .map(drop)
        .map_err(|failure| {
            failure.detail(format!(
                "this grader server answers with other bytes than it received, drawn from seed {}",
                ctx.seed()
            ))
        })
}

pub(super) fn client_refused(ctx: &Ctx) -> CheckResult {
    let refusing =
        RefusingPort::reserve().map_err(|err| Failure::new(format!("reserving a port: {err}")))?;
    let port = refusing.addr.port().to_string();
    let finished = ctx.run(&ctx.launch(CLIENT, ["127.0.0.1", port.as_str()])?, 5.0)?;
    let stderr = finished.stderr_text();
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    let crashed = finished.crashed(|line: &str| line.starts_with("error: "));
    if finished.code() == Some(1)
        && error_lines.len() == 1
        && !crashed
        && finished.stdout.is_empty()
    {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{CLIENT} did not report the refused connection cleanly"
    ))
    .expected("one line `error: <what failed>: <cause>` on stderr, nothing on stdout, exit code 1")
    .actual(finished.brief()))
}
