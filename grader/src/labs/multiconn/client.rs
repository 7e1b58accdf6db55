//! Client checks: `multiconn-client` against grader servers that echo, echo
//! in fragments, hold every echo until all connections are open, or close
//! early.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::harness::conversation::{self, Party};
use crate::harness::net::conn::{Conn, TooMuch};
use crate::harness::net::{self, Peers};
use crate::harness::observe::procfs;
use crate::harness::process::{Finished, Launch};
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::logs::{client_views, escaped};
use super::{CLIENT, CLIENT_MESSAGES};
use crate::sync::Unpoison;

/// How the grader's server treats each connection of the client.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Echoes what arrives.
    Echo,
    /// Echoes in pieces of this many bytes, each sent once the client has
    /// read the one before (or at the deadline): every read returns one
    /// piece, however loaded the machine.
    Fragments(usize, Instant),
    /// Echoes nothing until `count` connections are open (or gives up at the
    /// deadline and closes).
    HoldUntilAllOpen {
        count: usize,
        open: Arc<(Mutex<usize>, Condvar)>,
        give_up: Instant,
    },
    /// Echoes the first message only, then closes.
    CloseEarly,
    /// Answers each byte `b` with `table[b]`: as many bytes as an echo, but
    /// other ones, so that only a client that read them can log them.
    Substitute(Arc<[u8; 256]>),
}

/// A connection the grader's server served: what it received.
#[derive(Debug)]
struct Served {
    received: Vec<u8>,
}

/// Serves one connection of the client as `behaviour` says, reading no
/// more than the client's two messages and the connection's margin.
fn serve(mut stream: Conn, behaviour: &Behaviour) -> std::io::Result<Served> {
    stream.expect_at_most(CLIENT_MESSAGES.len() as u64);
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    match behaviour {
        Behaviour::HoldUntilAllOpen {
            count,
            open,
            give_up,
        } => {
            let (lock, changed) = &**open;
            let mut opened = lock.lock().unpoison();
            *opened += 1;
            changed.notify_all();
            while *opened < *count {
                let now = Instant::now();
                if now >= *give_up {
                    // Closing now tells a client that waits for this echo
                    // before opening its next connection.
                    return Err(std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!("only {opened} of {count} connections were open"),
                    ));
                }
                opened = changed.wait_timeout(opened, *give_up - now).unpoison().0;
            }
        }
        Behaviour::CloseEarly => {
            let first = CLIENT_MESSAGES.len() / 2;
            while received.len() < first {
                let n = stream.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..n]);
            }
            let echo = received.len().min(first);
            // Corked, the echo and the end of stream leave in one segment,
            // so they arrive together: only a client that reads until
            // WouldBlock (or 0) sees the end, since no event follows it.
            // A socket that cannot cork sends them apart, which passes a
            // client that reads once per event by chance, never fails a
            // correct one.
            let _ = socket2::SockRef::from(&*stream).set_tcp_cork(true);
            stream.write_all(&received[..echo])?;
            stream.shutdown(Shutdown::Write)?;
            // Reads the rest until the client closes, so that closing never
            // turns into a reset.
            match net::read_to_eof(&mut stream) {
                Ok(rest) => received.extend(rest),
                Err(err) if TooMuch::of(&err).is_some() => return Err(err),
                Err(_) => {}
            }
            return Ok(Served { received });
        }
        Behaviour::Echo | Behaviour::Fragments(..) | Behaviour::Substitute(_) => {}
    }
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => return Ok(Served { received }),
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        received.extend_from_slice(&buffer[..n]);
        match behaviour {
            Behaviour::Fragments(piece, deadline) => {
                for (index, chunk) in buffer[..n].chunks(*piece).enumerate() {
                    if index > 0 {
                        net::wait_until_read(&stream, *deadline);
                    }
                    stream.write_all(chunk)?;
                }
            }
            Behaviour::Substitute(table) => {
                let reply: Vec<u8> = buffer[..n].iter().map(|&b| table[usize::from(b)]).collect();
                stream.write_all(&reply)?;
            }
            _ => stream.write_all(&buffer[..n])?,
        }
    }
}

/// How a run of the client went, seen from both ends.
#[derive(Debug)]
struct ClientRun {
    /// How the client finished, with its output.
    finished: Finished,
    /// What the grader's server saw on each connection, in accept order.
    served: Vec<(usize, std::io::Result<Served>)>,
    /// How many connections the grader's server accepted.
    accepted: usize,
    /// What waited unread in the client's connections while it slept in
    /// `poll`, when it stalled: see [`unread_by_client`].
    unread: Option<String>,
}

/// Runs the client with `conns` connections against a grader server that
/// behaves as `behaviour` says; returns how the client finished and what
/// the server saw on each connection.
fn run_client(
    ctx: &Ctx,
    conns: usize,
    behaviour: Behaviour,
    seconds: f64,
) -> Result<ClientRun, Failure> {
    run_client_with(ctx, conns, behaviour, seconds, |launch| launch)
}

/// [`run_client`], with the client's launch changed by `adjust`.
fn run_client_with(
    ctx: &Ctx,
    conns: usize,
    behaviour: Behaviour,
    seconds: f64,
    adjust: impl FnOnce(Launch) -> Launch,
) -> Result<ClientRun, Failure> {
    let peers = Peers::serve_many(ctx.within(seconds + 2.0), conns, move |stream, _| {
        serve(stream, &behaviour)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    let port = peers.addr.port().to_string();
    let count = conns.to_string();
    let launch = adjust(ctx.launch(CLIENT, ["127.0.0.1", port.as_str(), count.as_str()])?);
    let mut client = ctx.spawn(&launch)?;
    let deadline = ctx.within(seconds);
    let (exited, stalled) = client.wait_watching(deadline);
    // Asleep with bytes or an end of stream unread: looked at before the
    // client is stopped, which closes its connections.
    let unread = (!exited)
        .then(|| unread_by_client(client.pid(), peers.addr))
        .flatten();
    let mut finished = client.finish(if stalled.is_some() {
        Instant::now()
    } else {
        deadline
    });
    finished.stalled = finished.stalled.or(stalled);
    // The client has exited: its connections are closed, so every thread of
    // the grader's server is about to finish.
    let served = peers.results(ctx.within(2.0));
    let flooded = served.iter().find_map(|(index, result)| {
        let too_much = TooMuch::of(result.as_ref().err()?)?;
        Some((*index, too_much.clone()))
    });
    if let Some((index, too_much)) = flooded {
        return Err(Failure::new(format!(
            "on the connection it accepted {}, {too_much}; the grader stopped reading there",
            ordinal(index)
        ))
        .expected(format!(
            "{} on each connection, then the end of stream",
            show::bytes(CLIENT_MESSAGES, 100)
        ))
        .actual(format!("the client {}", finished.describe()))
        .detail(finished.stderr_detail()));
    }
    Ok(ClientRun {
        finished,
        served,
        accepted: peers.accepted(),
        unread,
    })
}

/// What waits unread in the client's connections to `server` while the
/// client sleeps waiting for readiness, in words: bytes that arrived, and
/// ends of stream (CLOSE_WAIT) it has not noticed. `None` when nothing
/// does, or `/proc` cannot tell.
fn unread_by_client(pid: u32, server: SocketAddr) -> Option<String> {
    if !procfs::waits_for_readiness(pid).ok()? {
        return None;
    }
    let remote = procfs::proc_net_address(server);
    let sockets = procfs::tcp_sockets().ok()?;
    let mine = sockets
        .iter()
        .filter(|socket| socket.remote_address == remote);
    let (bytes, ends) = mine.fold((0u64, 0usize), |(bytes, ends), socket| {
        (
            bytes + u64::from(socket.rx_queue),
            ends + usize::from(socket.state == procfs::Socket::CLOSE_WAIT),
        )
    });
    let mut parts = Vec::new();
    if bytes > 0 {
        parts.push(format!("{bytes} bytes"));
    }
    match ends {
        0 => {}
        1 => parts.push("the server's end of stream".to_owned()),
        n => parts.push(format!("{n} ends of stream")),
    }
    (!parts.is_empty()).then(|| {
        format!(
            "unread on the client's connections: {}, while the client sleeps waiting for its next event",
            parts.join(" and ")
        )
    })
}

/// Adds what waited unread in a stalled client to `failure`: the evidence
/// of an edge-triggered event read only once.
fn with_unread(failure: Failure, run: &ClientRun) -> Failure {
    match &run.unread {
        Some(unread) => failure.detail(unread.clone()).diagnosis(
            "Edge-triggered readiness says \"something changed\" once: on every readable event, read in a loop until `WouldBlock` (or 0, the end of stream), or what is left waits for an event that never comes.",
            "#edge-triggered-read-until-wouldblock",
        ),
        None => failure,
    }
}

/// Checks that the client exited 0 and that every connection 1..=`conns`
/// logged all of its bytes coming back (`reply`, what the grader's server
/// sends for the two messages), and that the grader's server got both
/// messages on every connection.
fn expect_client_success(run: &ClientRun, conns: usize, reply: &[u8]) -> CheckResult {
    expect_all_returned(run, conns, reply).map_err(|failure| with_unread(failure, run))
}

/// [`expect_client_success`] without the evidence of a stalled client.
fn expect_all_returned(run: &ClientRun, conns: usize, reply: &[u8]) -> CheckResult {
    let ClientRun {
        finished,
        served,
        accepted,
        ..
    } = run;
    let accepted = *accepted;
    let views = client_views(&finished.stdout_text());
    if views.is_empty() {
        return Err(Failure::new(format!(
            "{CLIENT} logged no connection at all: {}",
            finished.describe()
        ))
        .expected(format!(
            "`Starting connection N to ADDR`, `Sending …`, `Received …` and `Closing connection N` \
             for N = 1 to {conns}, then exit code 0"
        ))
        .detail(finished.stderr_detail()));
    }
    let want = escaped(reply);
    for number in 1..=conns as u64 {
        let received = views
            .get(&number)
            .map(|view| view.received.as_str())
            .unwrap_or_default();
        if received != want {
            let failure = Failure::new(format!(
                "connection {number} did not log every byte that came back"
            ))
            .expected(format!(
                "`Received` lines for connection {number} that together show b\"{want}\""
            ))
            .actual(if received.is_empty() {
                format!("no `Received … from connection {number}` line")
            } else {
                format!("together: b\"{received}\"")
            })
            .detail(format!("the client {}", finished.describe()))
            .detail(
                "count the bytes each connection got back and close it only when all have \
                 returned: the echo may come in any number of pieces",
            )
            .detail(show::head(&finished.stdout_text(), 12))
            .detail(finished.stderr_detail());
            return Err(
                if reply != CLIENT_MESSAGES && received == escaped(CLIENT_MESSAGES) {
                    failure.diagnosis(
                        "Log the bytes each read returned, not the messages you sent: the grader's server answered with other bytes.",
                        "#step-3-the-client",
                    )
                } else {
                    failure
                },
            );
        }
    }
    if finished.timed_out || finished.code() != Some(0) {
        return Err(Failure::new(format!(
            "every connection got its echo, but the client did not exit with code 0: {}",
            finished.describe()
        ))
        .expected("exit code 0 once every connection has its bytes back and is closed")
        .detail(finished.stderr_detail()));
    }
    if accepted != conns {
        return Err(Failure::new(format!(
            "the client opened {accepted} connections to the grader's server, not {conns}"
        ))
        .expected(format!(
            "NUM_CONNS = {conns} connections, numbered 1 to {conns}"
        )));
    }
    for (index, result) in served {
        let received = match result {
            Ok(served) => &served.received,
            Err(err) => {
                return Err(Failure::new(format!(
                    "the grader's server failed on the connection it accepted {}: {err}",
                    ordinal(*index)
                )));
            }
        };
        if received != CLIENT_MESSAGES {
            let failure = Failure::new(format!(
                "on the connection it accepted {}, the grader's server received the wrong bytes",
                ordinal(*index)
            ))
            .expected(show::bytes(CLIENT_MESSAGES, 100))
            .actual(show::bytes(received, 100));
            return Err(if received.is_empty() {
                failure.diagnosis(
                    "Send both messages on every connection and log what really comes back: the grader's server notes what it receives.",
                    "#step-3-the-client",
                )
            } else {
                failure
            });
        }
    }
    Ok(())
}

fn ordinal(index: usize) -> String {
    match index + 1 {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        n => format!("{n}th"),
    }
}

pub(super) fn client_fifty(ctx: &Ctx) -> CheckResult {
    let run = run_client(ctx, 50, Behaviour::Echo, 10.0)?;
    expect_client_success(&run, 50, CLIENT_MESSAGES)
}

pub(super) fn client_at_once(ctx: &Ctx) -> CheckResult {
    const CONNS: usize = 10;
    let open = Arc::new((Mutex::new(0), Condvar::new()));
    let give_up = ctx.within(5.0);
    let behaviour = Behaviour::HoldUntilAllOpen {
        count: CONNS,
        open: Arc::clone(&open),
        give_up,
    };
    let run = run_client(ctx, CONNS, behaviour, 10.0)?;
    let finished = &run.finished;
    let gave_up = run.served.iter().any(|(_, result)| {
        result
            .as_ref()
            .is_err_and(|err| err.kind() == ErrorKind::TimedOut)
    });
    if gave_up {
        let opened = *open.0.lock().unpoison();
        return Err(Failure::new(format!(
            "the grader's server held back every echo until all {CONNS} connections were open, \
             but after {:.0} s only {opened} were",
            ctx.scaled(5.0).as_secs_f64()
        ))
        .expected(format!(
            "{CONNS} connections open at the same time before any echo comes back"
        ))
        .detail(format!("the client {}", finished.describe()))
        .detail(
            "start every connection first (non-blocking connect, register each with the \
             poller), then let the event loop drive them all; do not wait for one \
             connection's echo before opening the next",
        )
        .detail(finished.stderr_detail()));
    }
    expect_client_success(&run, CONNS, CLIENT_MESSAGES)
}

pub(super) fn client_fragments(ctx: &Ctx) -> CheckResult {
    let behaviour = Behaviour::Fragments(3, ctx.within(10.0));
    let run = run_client(ctx, 5, behaviour, 10.0)?;
    expect_client_success(&run, 5, CLIENT_MESSAGES).map_err(|failure| {
        failure.detail(
            "the grader's server echoed 3 bytes at a time, each once the client had read the one before",
        )
    })
}

/// An echo's bytes can be logged without reading them: this grader server
/// answers each byte with another, from a table drawn from the seed, and
/// the client must log what came back.
pub(super) fn client_logs_the_reply(ctx: &Ctx) -> CheckResult {
    let mut rng = ctx.rng();
    let mut table = [0; 256];
    for (byte, other) in (0..=u8::MAX).zip(table.iter_mut()) {
        *other = std::iter::repeat_with(|| rng.alphanumeric() as u8)
            .find(|&letter| letter != byte)
            .expect("an endless supply of letters");
    }
    let reply: Vec<u8> = CLIENT_MESSAGES
        .iter()
        .map(|&b| table[usize::from(b)])
        .collect();
    let run = run_client(ctx, 5, Behaviour::Substitute(Arc::new(table)), 10.0)?;
    expect_client_success(&run, 5, &reply).map_err(|failure| {
        failure.detail(format!(
            "the grader's server answered each byte with another, from a table drawn from seed {}",
            ctx.seed()
        ))
    })
}

pub(super) fn client_early_close(ctx: &Ctx) -> CheckResult {
    let run = run_client(ctx, 1, Behaviour::CloseEarly, 5.0)?;
    let finished = &run.finished;
    let stderr = finished.stderr_text();
    let named = stderr
        .lines()
        .any(|line| line.starts_with("error: connection 1: "));
    let crashed = finished.crashed(|line: &str| line.starts_with("error: "));
    if !finished.timed_out && finished.code() == Some(1) && named && !crashed {
        return Ok(());
    }
    Err(Failure::new(
        "the grader's server echoed the first message, then closed the connection; \
         the client did not report it as a failure of connection 1",
    )
    .expected("a line `error: connection 1: …` on stderr, then exit code 1")
    .actual(finished.brief())
    .detail(
        "`read` returning 0 before every byte came back means the server closed early: \
         that connection failed",
    ))
    .map_err(|failure| with_unread(failure, &run))
}

pub(super) fn client_log(ctx: &Ctx) -> CheckResult {
    const CONNS: usize = 3;
    let run = run_client(ctx, CONNS, Behaviour::Echo, 10.0)?;
    expect_client_success(&run, CONNS, CLIENT_MESSAGES)?;
    let mut text = Vec::new();
    for (number, view) in client_views(&run.finished.stdout_text()) {
        text.push(format!("connection {number}:"));
        text.extend(
            view.render(number)
                .into_iter()
                .map(|line| format!("    {line}")),
        );
    }
    ctx.snapshot(&text.join("\n")).map_err(|failure| {
        failure.detail(
            "the grader groups the client's lines by connection and joins each connection's \
             `Sending` and `Received` bytes, so how they are split into lines does not matter",
        )
    })
}

/// The numbers N of the `error: connection N: …` lines in `stderr`.
fn reported_failures(stderr: &str) -> BTreeSet<u64> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("error: connection ")?.split_once(':'))
        .filter_map(|(number, _)| number.parse().ok())
        .collect()
}

/// Lists numbers for a report, the first ten of them.
pub(super) fn listed(numbers: &[u64]) -> String {
    let mut shown: Vec<String> = numbers.iter().take(10).map(u64::to_string).collect();
    if numbers.len() > 10 {
        shown.push(format!("… ({} in all)", numbers.len()));
    }
    shown.join(", ")
}

/// Whether the program was killed by SIGPIPE.
fn killed_by_sigpipe(finished: &Finished) -> bool {
    use std::os::unix::process::ExitStatusExt;
    finished.status.and_then(|status| status.signal()) == Some(libc::SIGPIPE)
}

/// The grader's server of [`client_closed_at_once`]: closes each connection
/// as it accepts it, in the accepting thread itself, so that the end of
/// stream reaches the client as early as can be (then the client's first
/// write goes through, the grader's kernel answers with a reset, and its
/// next write fails). Dropping it ends its thread.
struct Closer {
    addr: SocketAddr,
    done: Arc<AtomicBool>,
}

impl Closer {
    fn start(listener: std::net::TcpListener, addr: SocketAddr) -> Result<Self, Failure> {
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        conversation::spawn("grader-closer", move || {
            while let Ok((stream, _)) = listener.accept() {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                drop(Conn::accepted(stream, Party::Client));
            }
        })
        .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
        Ok(Self { addr, done })
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        // A connection of our own wakes the blocking accept.
        self.done.store(true, Ordering::SeqCst);
        drop(std::net::TcpStream::connect(self.addr));
    }
}

/// A server that closes every connection at once: each of them failed, and
/// writing to one the server closed fails too (a reset, then a broken pipe).
pub(super) fn client_closed_at_once(ctx: &Ctx) -> CheckResult {
    const CONNS: usize = 50;
    let (listener, addr) = net::listen()
        .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    let closer = Closer::start(listener, addr)?;
    let port = addr.port().to_string();
    let count = CONNS.to_string();
    let finished = ctx.run(
        &ctx.launch(CLIENT, ["127.0.0.1", port.as_str(), count.as_str()])?,
        5.0,
    )?;
    drop(closer);
    let reported = reported_failures(&finished.stderr_text());
    let missing: Vec<u64> = (1..=CONNS as u64)
        .filter(|number| !reported.contains(number))
        .collect();
    let crashed = finished.crashed(|line: &str| line.starts_with("error: "));
    if !finished.timed_out && finished.code() == Some(1) && missing.is_empty() && !crashed {
        return Ok(());
    }
    let what = if finished.timed_out {
        "the client did not finish".to_owned()
    } else if crashed || finished.code().is_none() {
        "the client crashed".to_owned()
    } else if !missing.is_empty() {
        "the client did not report every connection as failed".to_owned()
    } else {
        format!(
            "the client reported every connection as failed, but exited with {}",
            crate::harness::process::describe_status(finished.status)
        )
    };
    let failure = Failure::new(format!(
        "the grader's server accepted each of the {CONNS} connections and closed it at once, \
         echoing nothing; {what}"
    ))
    .expected(format!(
        "a line `error: connection N: …` on stderr for every N from 1 to {CONNS}, then exit code 1"
    ))
    .actual(if missing.is_empty() || finished.timed_out {
        finished.brief()
    } else {
        format!(
            "no `error: connection N: …` line for N = {}; {}",
            listed(&missing),
            finished.brief()
        )
    })
    .detail(finished.stderr_detail());
    Err(if killed_by_sigpipe(&finished) {
        failure.diagnosis(
            "Killed by SIGPIPE: writing to a connection the other side has closed raises SIGPIPE, which ends a program unless it is ignored. Rust ignores it for you; in C, send with MSG_NOSIGNAL (or ignore SIGPIPE) and treat EPIPE as that connection's error.",
            "#when-things-go-wrong",
        )
    } else if finished.timed_out {
        failure.diagnosis(
            "A write or read on a connection the server has closed fails (`Connection reset by peer`, `Broken pipe`) and will fail again: report that connection and drop it. Retrying the call at once loops forever.",
            "#when-things-go-wrong",
        )
    } else {
        failure
    })
}

/// A client started with few descriptors: the connections it cannot create
/// fail (EMFILE), and the ones it could create still finish.
pub(super) fn client_out_of_descriptors(ctx: &Ctx) -> CheckResult {
    const CONNS: usize = 100;
    /// Room for a runtime's own descriptors and a few dozen sockets.
    const OPEN_FILES: u64 = 64;
    let run = run_client_with(ctx, CONNS, Behaviour::Echo, 10.0, |launch| {
        launch.open_files(OPEN_FILES)
    })?;
    let finished = &run.finished;
    let reported = reported_failures(&finished.stderr_text());
    let crashed = finished.crashed(|line: &str| line.starts_with("error: "));
    let unfinished = run
        .served
        .iter()
        .filter(|(_, result)| {
            !result
                .as_ref()
                .is_ok_and(|served| served.received == CLIENT_MESSAGES)
        })
        .count();
    let accounted = run.accepted + reported.len();
    let sound = !finished.timed_out && !crashed && unfinished == 0;
    // A client whose connections finish while others are still starting
    // may never run out (a thread per connection, say): all served, exit 0.
    let ran_out = finished.code() == Some(1) && !reported.is_empty() && accounted >= CONNS;
    let never_ran_out = finished.code() == Some(0) && reported.is_empty() && run.accepted == CONNS;
    if sound && (ran_out || never_ran_out) {
        return Ok(());
    }
    let situation = format!(
        "started with at most {OPEN_FILES} file descriptors, the client could create only some \
         of its {CONNS} sockets (the others fail with EMFILE, `Too many open files`); \
         the grader's server accepted {} connections and {} were reported as failed",
        run.accepted,
        reported.len()
    );
    let failure = Failure::new(situation)
        .expected(format!(
            "the connections that opened send both messages and get their echo; each one that \
             could not open prints `error: connection N: …`; exit code 1 ({CONNS} accounted for)"
        ))
        .actual(if unfinished > 0 {
            format!(
                "{unfinished} of the accepted connections did not send both messages; {}",
                finished.brief()
            )
        } else {
            finished.brief()
        })
        .detail(finished.stderr_detail());
    Err(failure.diagnosis(
        "Every socket is a file descriptor, and a process may hold only so many (`ulimit -n`): creating one more fails with EMFILE. That connection failed: print `error: connection N: …`, carry on with the others, and exit 1 at the end.",
        "#out-of-file-descriptors",
    ))
}
