//! Server checks: the grader's own clients (small socket buffers) against
//! the graded server.

use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::net::{self, ReadEnd};
use crate::harness::observe::procfs::TcpBuffers;
use crate::harness::observe::{procfs, sockdiag, stall};
use crate::harness::payload;
use crate::harness::process::Launch;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Evidence, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::echo::{echo_explained, round_trip, round_trip_failure, send_beyond_buffers};
use super::logs::{ServerView, escaped, local_addr};
use super::{SERVER, beyond_buffers, size};

const MIB: usize = 1024 * 1024;

/// Starts the graded server. Bytes it leaves unread while it sleeps in
/// `poll` mean one thing in this lab: it did not read until `WouldBlock`
/// on an edge-triggered event, and no new event will come for them.
pub(super) fn start(ctx: &Ctx) -> Result<Server, Failure> {
    start_launched(ctx, &ctx.launch(SERVER, ["127.0.0.1", "0"])?)
}

/// [`start`], with the server started as `launch` says.
pub(super) fn start_launched(ctx: &Ctx, launch: &Launch) -> Result<Server, Failure> {
    Ok(ctx
        .start_server(launch)?
        .on(
            Evidence::KeptAfterClose,
            "Closing a connection is three steps: log it, `deregister` it, and remove it from your map, so that its `TcpStream` is dropped and the socket really closes. A connection deregistered but kept in the map stays open (and its descriptor leaks) forever.",
            "#closing-and-deregistering",
        )
        .on(
            Evidence::ConnectionErrorCrash,
            "One client's error (a reset, a broken pipe) ended the whole server. A read or write that fails with an error other than WouldBlock or Interrupted ends that connection only: log it, deregister it and drop it, with no `unwrap()` and no `?` that carries the error out of the loop.",
            "#closing-and-deregistering",
        )
        .on(
            Evidence::WouldBlockAsError,
            "On a non-blocking socket, `WouldBlock` from `write` is not an error: the client's buffer is full for now. Keep what was not written in that connection's buffer, register for WRITABLE, and write the rest when the event comes; never `write_all` on a non-blocking socket.",
            "#partial-writes-and-write-interest",
        )
        .on(
            Evidence::InterruptedCrash,
            "A signal (here the grader's stop and continue, as Ctrl-Z then `fg` do) makes `poll` return `Interrupted`: nothing went wrong, poll again. `poll(...)?` carries it out of the loop and ends the server.",
            "#step-2-the-event-loop",
        )
        .on(
            Evidence::UnreadWhileWaiting,
            "Edge-triggered readiness says \"something changed\" once: on every readable event, read in a loop until `WouldBlock` (and on the listener's, accept until `WouldBlock`), or what is left waits for an event that never comes. A `read` that returns 0 on the way is the end of stream, not `WouldBlock`: the connection is finished reading.",
            "#edge-triggered-read-until-wouldblock",
        ))
}

pub(super) fn one_client(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let stream = server.connect(ctx.deadline())?;
    let peer = local_addr(&stream)?;
    let message = b"Hello from one client, with \"quotes\" and a tab\t.";
    echo_explained(
        &mut server,
        &stream,
        message,
        "echo to one client",
        ctx.within(5.0),
    )?;
    drop(stream);
    let closing = format!("Closing connection to {peer}");
    let closed = server
        .wait_for_line(ctx.within(5.0), |line| line == closing)
        .is_some();
    let lines = server.lines();
    let view = ServerView::of(&lines, peer);
    let expected = ServerView {
        accepted: 1,
        echoed: escaped(message),
        echo_lines: view.echo_lines.max(1),
        closing: 1,
    };
    if closed && view == expected {
        return Ok(());
    }
    let mut failure = Failure::new(if closed {
        "the echo came back, but the log does not tell the story of this client"
    } else {
        "the echo came back, but after the client closed, the server did not log `Closing connection to PEER`"
    })
    .expected(format!(
        "Accepted connection from {peer}\nEchoing b\"{}\" to {peer}   (possibly in several lines)\nClosing connection to {peer}",
        escaped(message)
    ))
    .actual(show::head(&server.stdout(), 12));
    if view.echo_lines > 0 && view.echoed != expected.echoed {
        failure = failure.detail(format!(
            "the `Echoing` lines for this client, joined: in the text, {}",
            show::first_difference(expected.echoed.as_bytes(), view.echoed.as_bytes())
                .unwrap_or_default()
        ));
    }
    Err(failure.detail(format!(
        "PEER is the client's address as `SocketAddr` prints it; the grader's client was {peer}"
    )))
}

pub(super) fn many_clients(ctx: &Ctx) -> CheckResult {
    const CLIENTS: usize = 200;
    let mut server = start(ctx)?;
    let deadline = ctx.within(15.0);
    let mut rng = ctx.rng();
    let mut clients = Vec::with_capacity(CLIENTS);
    let mut crowd = net::Crowd::new(server.addr);
    for number in 1..=CLIENTS {
        let stream = crowd.connect(deadline).map_err(|failure| {
            server.explain(failure.detail(format!("{} clients were connected already", number - 1)))
        })?;
        let tag = payload::alphanumeric(&mut rng, 16);
        clients.push((stream, format!("client {number} of {CLIENTS}: {tag}")));
    }
    // Everyone sends while the server is stopped (as by Ctrl-Z), then it
    // continues: it finds 200 clients with data waiting at the same time,
    // however fast it would otherwise have served them one by one. It is
    // stopped once it has accepted them all (none waits in the listening
    // socket's queue, so all 200 are the server's to watch) and sleeps in
    // poll, so that the continue makes poll return Interrupted (EINTR), as
    // the handout warns.
    let port = server.addr.port();
    stall::until_asleep_in_poll(server.process.pid(), ctx.within(5.0), || {
        sockdiag::accept_queue(port).is_ok_and(|queue| queue.is_none_or(|queued| queued == 0))
    });
    let paused = server.process.pause(deadline);
    for (number, (stream, message)) in clients.iter().enumerate() {
        let mut writer = stream;
        net::write_all_until(&mut writer, message.as_bytes(), deadline).map_err(|err| {
            server.explain(Failure::new(format!(
                "sending to client {} failed: {err}",
                number + 1
            )))
        })?;
    }
    drop(paused);
    for (number, (stream, message)) in clients.iter().enumerate() {
        let (received, end) = net::read_until(stream, Some(message.len()), deadline);
        if received != message.as_bytes() {
            let exchange = net::Exchange {
                received,
                end,
                write_error: None,
            };
            let failure = round_trip_failure(
                &format!("echo to client {} of {CLIENTS}", number + 1),
                message.as_bytes(),
                exchange,
            );
            let earlier = match number {
                0 => String::new(),
                _ => format!("the first {number} clients got their own message back; "),
            };
            return Err(server.explain(failure.detail(format!(
                "{earlier}with {CLIENTS} clients connected at once, every one needs its own \
                 state (its own buffer), found by its token"
            ))));
        }
    }
    Ok(())
}

pub(super) fn idle_client(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    // Connected first, so a server that serves one client at a time is busy
    // waiting for this one.
    let idle = server.connect(ctx.deadline())?;
    let other = server.connect(ctx.deadline())?;
    let message = b"I am not the idle one";
    let started = Instant::now();
    let result = round_trip(&other, message, ctx.within(1.0));
    drop(idle);
    result.map_err(|failed| {
        server.explain(
            round_trip_failure(
                "while another client sat connected and silent, a second client's echo",
                message,
                failed,
            )
            .detail(format!(
                "waited {:.1} s; a server that waits for one client (a blocking read) \
                 keeps every other client waiting",
                started.elapsed().as_secs_f64()
            )),
        )
    })
}

pub(super) fn non_reading_client(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let hog = server.connect(ctx.deadline())?;
    let other = server.connect(ctx.deadline())?;
    // The hog writes far more than the buffers hold (8 MiB on a machine's
    // usual buffers) and never reads: its echo piles up at the server.
    let total = beyond_buffers(&TcpBuffers::here());
    let hog_chunk: Arc<Vec<u8>> = {
        let mut rng = ctx.rng();
        Arc::new(payload::alphanumeric(&mut rng, 64 * 1024).into_bytes())
    };
    let sent = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let writer = {
        let stream = hog
            .try_clone()
            .map_err(|err| Failure::new(format!("cloning a socket: {err}")))?;
        let (sent, finished) = (Arc::clone(&sent), Arc::clone(&finished));
        let deadline = ctx.within(40.0);
        let chunk = Arc::clone(&hog_chunk);
        thread::spawn(move || {
            let mut writer = &stream;
            while sent.load(Ordering::SeqCst) < total {
                if net::write_all_until(&mut writer, &chunk, deadline).is_err() {
                    break;
                }
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            finished.store(true, Ordering::SeqCst);
        })
    };
    // Meanwhile another client keeps asking for echoes: each must come back
    // within a second, until the server has read it all (our writes only
    // put bytes into kernel buffers: the server's socket may hold megabytes
    // it has not read yet), or nothing moves any more (a server may also
    // stop reading from a client it cannot write to; a blocked server stops
    // everything, and the pings sent meanwhile find out).
    let hog_addr = local_addr(&hog)?;
    let unread = || {
        procfs::tcp_connection(server.addr, hog_addr)
            .ok()
            .flatten()
            .map(|socket| u64::from(socket.rx_queue))
    };
    let stall_limit = ctx.scaled(1.5);
    let mut progress = (0, unread(), Instant::now());
    let mut outcome = Ok(());
    for ping in 1.. {
        let message = format!("ping {ping} from the other client");
        if let Err(failed) = round_trip(&other, message.as_bytes(), ctx.within(1.0)) {
            let crossed = crossed_streams(&failed.received, message.as_bytes(), &hog_chunk);
            let failure = round_trip_failure(
                &format!("echo of ping {ping} to a second client"),
                message.as_bytes(),
                failed,
            );
            outcome = Err(if crossed {
                failure
                    .detail("the bytes that came back are not this client's: they are what the other client (the one that never reads) sent")
                    .diagnosis(CROSSED_STREAMS, "#per-connection-state")
            } else {
                failure.detail(format!(
                    "meanwhile a client that never reads had sent {}; the server \
                     must not wait for it to read (no blocking write_all in the loop: \
                     keep its bytes in its buffer and write when it is writable)",
                    show::size(hog.bytes_written())
                ))
            });
            break;
        }
        let now = (sent.load(Ordering::SeqCst), unread());
        if now != (progress.0, progress.1) {
            progress = (now.0, now.1, Instant::now());
        }
        let all_read = finished.load(Ordering::SeqCst) && now.1.unwrap_or(0) == 0;
        if all_read || progress.2.elapsed() >= stall_limit {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Ends a write still blocked on the hog, so the thread can be joined.
    let _ = hog.shutdown(Shutdown::Both);
    let _ = writer.join();
    outcome.map_err(|failure| server.explain(failure))
}

/// The lesson of crossed streams: one connection's bytes reached another.
const CROSSED_STREAMS: &str = "Each connection needs its own buffer: keep the bytes read from a client in that client's `Connection` in your map, never in one buffer shared by all, or one client's bytes are written to another.";

/// Whether `received`, which should be (a beginning of) `own`, begins with
/// bytes of `theirs` instead: another connection's payload (sent over and
/// over), not this one's. Crossed streams.
fn crossed_streams(received: &[u8], own: &[u8], theirs: &[u8]) -> bool {
    let window = &received[..received.len().min(32)];
    if window.len() < 8 || own.starts_with(window) {
        return false;
    }
    let twice = theirs.repeat(2);
    twice.windows(window.len()).any(|part| part == window)
}

pub(super) fn large_half_close(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let stream = server.connect(ctx.deadline())?;
    // Far more than the buffers hold: most of the echo waits in the server.
    let payload = payload::bytes(&mut ctx.rng(), beyond_buffers(&TcpBuffers::here()));
    let payload = send_beyond_buffers(ctx, &mut server, &stream, payload)?;
    let shown = size(payload.len());
    let seed = format!("the payload came from seed {}", ctx.seed());
    let (here, there) = (local_addr(&stream)?, server.addr);
    // The echo written before the end of stream: the grader has read
    // nothing, the buffers between them are full, and the server can write
    // no more until the grader reads.
    let written_before_end = unread_echo(here, there);
    stream
        .shutdown(Shutdown::Write)
        .map_err(|err| Failure::new(format!("half-closing: {err}")))?;
    // The server must meet the end of stream while most of the echo still
    // waits in its buffer: wait until it has read every byte we sent (its
    // socket's unread count in /proc falls to 0), then until it also met
    // the end of stream, before we read anything. It has, once the end
    // arrived (its socket is in CLOSE_WAIT, or past it: it closed) and it
    // sleeps in poll again, every event handled; at most 0.3 s for a
    // server that never sleeps in poll (a thread per client).
    let drained = ctx.within(20.0);
    let mut watch = stall::Watch::new();
    while procfs::tcp_connection(there, here)
        .is_ok_and(|socket| socket.is_some_and(|socket| socket.rx_queue > 0))
        && Instant::now() < drained
        && watch.stalled().is_none()
    {
        thread::sleep(Duration::from_millis(1));
    }
    let end_arrived = || {
        procfs::tcp_connection(there, here).is_ok_and(|socket| {
            socket.is_none_or(|s| s.state != procfs::Socket::ESTABLISHED && s.rx_queue == 0)
        })
    };
    stall::until_asleep_in_poll(server.process.pid(), ctx.within(0.3), end_arrived);
    stream.expect_at_most(payload.len() as u64);
    let (received, end) = net::read_until(&stream, None, ctx.within(40.0));
    let exchange = net::Exchange {
        received,
        end,
        write_error: None,
    };
    exchange
        .expect_bytes(
            &payload,
            &format!("echo of {shown} sent before reading, then half-closed"),
        )
        .map_err(|failure| {
            // Short, and the server still holds the connection while it
            // has read every byte sent: the rest of the echo is in the
            // program, which does not ask to be told when it can write.
            let server_read_all = procfs::tcp_connection(there, here)
                .is_ok_and(|socket| socket.is_some_and(|socket| socket.rx_queue == 0));
            let held = payload.starts_with(&exchange.received)
                && matches!(exchange.end, ReadEnd::Deadline | ReadEnd::Stalled(_))
                && server_read_all;
            let failure = if held {
                failure
                    .detail(format!(
                        "the server read every byte sent and keeps the connection open, yet {} bytes of echo never came: they wait in its buffer",
                        payload.len() - exchange.received.len()
                    ))
                    .diagnosis(
                        "Bytes wait in the connection's buffer, and nothing wakes the loop to write them: while its buffer is not empty, register the connection for WRITABLE as well (`reregister`), and write the rest when the event comes, until `WouldBlock`.",
                        "#partial-writes-and-write-interest",
                    )
            } else {
                failure
            };
            let failure = match skipped_bytes(&payload, &exchange.received) {
                Some((at, skipped)) => failure
                    .detail(format!(
                        "the echo skips {skipped} bytes at byte {at}: what follows came later in what was sent"
                    ))
                    .diagnosis(
                        "Bytes are missing from the middle of the echo: the server dropped part of its buffer unsent. `write` returns how many bytes it took, maybe fewer than you gave it: remove only those from the buffer, and keep the rest for the next WRITABLE event.",
                        "#partial-writes-and-write-interest",
                    ),
                None => failure,
            };
            // Cut short after more came than was written before the end of
            // stream: the server wrote again once the grader read, then
            // closed with the rest unsent, as if that write had taken it all.
            let wrote_after_end =
                written_before_end.is_some_and(|before| exchange.received.len() as u64 > before);
            let failure = if payload.starts_with(&exchange.received)
                && exchange.end == ReadEnd::Eof
                && wrote_after_end
            {
                failure
                    .detail(format!(
                        "the server wrote {} bytes of echo after the end of stream, then closed with {} never sent",
                        exchange.received.len() as u64 - written_before_end.unwrap_or(0),
                        payload.len() - exchange.received.len()
                    ))
                    .diagnosis(
                        "The server wrote part of what it had buffered, then dropped the rest: `write` returns how many bytes it took, maybe fewer than you gave it; remove only those from the buffer, and close only once it is empty.",
                        "#partial-writes-and-write-interest",
                    )
            } else {
                failure
            };
            server.explain(failure.detail(seed.clone()).detail(
                "at end of stream, first send what is still buffered for that client, then close",
            ))
        })?;
    if exchange.end != ReadEnd::Eof {
        return Err(server.explain(
            Failure::new("every byte came back, but the server did not close the connection")
                .expected("after the client half-closed and its buffer is empty, the server closes")
                .actual(format!("after the last byte, {}", exchange.end))
                .diagnosis(
                    "`read` returning 0 is the client's end of stream, not `WouldBlock`: mark the connection finished reading, and close it once its buffer is all written.",
                    "#closing-and-deregistering",
                ),
        ));
    }
    Ok(())
}

/// The echo the server has written on the connection from `here` to
/// `there` that the grader has not read: what waits in the grader's socket
/// plus what is still in the server's (sent or not). `None` when `/proc`
/// cannot tell.
fn unread_echo(here: SocketAddr, there: SocketAddr) -> Option<u64> {
    let ours = procfs::tcp_connection(here, there).ok()??;
    let theirs = procfs::tcp_connection(there, here).ok()??;
    Some(u64::from(ours.rx_queue) + u64::from(theirs.tx_queue))
}

/// Where an echo leaves out bytes of what was sent and goes on with later
/// ones, and how many it skipped: the mark of a server that drained more of
/// its buffer than `write` took. `None` when the echo is a prefix of what
/// was sent, or goes on with bytes that were never sent there.
fn skipped_bytes(sent: &[u8], received: &[u8]) -> Option<(usize, usize)> {
    /// Enough bytes to find again only where they were sent (random data).
    const PROBE: usize = 64;
    let at = show::first_mismatch(sent, received)?;
    let probe = received.get(at..at + PROBE)?;
    let found = sent[at..]
        .windows(PROBE)
        .position(|window| window == probe)?;
    (found > 0).then_some((at, found))
}

pub(super) fn close_while_buffered(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let mut rng = ctx.rng();
    // What the rude clients sent: bytes of theirs in another client's echo
    // are crossed streams.
    let mut sent_by_rude: Vec<Vec<u8>> = Vec::new();
    for round in 1..=3 {
        let rude = server.connect(ctx.deadline())?;
        // The second client half-closes. It sends more than the server's
        // socket can hold (its send buffer grows up to `tcp_wmem`'s largest
        // size), so that echo still waits in the server when it resets.
        // The margin is 1 MiB on a machine's usual buffers, twice what
        // the buffers of one connection hold one way in the grade's
        // network namespace, whose buffers are small.
        let half_closes = round == 2;
        let buffers = TcpBuffers::here();
        let margin = MIB.min(2 * buffers.one_way());
        let bytes = if half_closes {
            buffers.largest_send() + margin
        } else {
            margin
        };
        let shown = size(bytes);
        let payload = payload::alphanumeric(&mut rng, bytes).into_bytes();
        let mut writer = &rude;
        let written = net::write_all_until(&mut writer, &payload, ctx.within(10.0));
        sent_by_rude.push(payload);
        written.map_err(|err| {
            server.explain(Failure::new(format!(
                "writing {shown} (without reading) failed: {err}; the server must keep \
                 reading from a client that does not read its echo"
            )))
        })?;
        let theirs = rude.local_addr().ok().and_then(|ours| {
            procfs::tcp_connection(server.addr, ours)
                .ok()
                .flatten()
                .map(|socket| socket.inode)
        });
        if half_closes {
            // Done sending: once the server has every byte and the end of
            // stream, its reads return end of stream even after the reset
            // (Linux), so the reset meets its write. Closing earlier would
            // throw away what still waits in our send queue, end of stream
            // included, and the reset would meet a read.
            let _ = rude.shutdown(Shutdown::Write);
            net::wait_until_read(&rude, ctx.within(5.0));
        }
        // Closing with unread echo in our socket makes the kernel reset the
        // connection: the server's next read or write on it fails.
        drop(rude);
        let other = net::connect(server.addr, ctx.deadline()).map_err(|failure| {
            server.explain(failure.detail(format!(
                "right after client {round} closed while its echo was still buffered"
            )))
        })?;
        let message = format!("still serving after client {round} left rudely?");
        round_trip(&other, message.as_bytes(), ctx.within(5.0)).map_err(|failed| {
            let crossed = sent_by_rude
                .iter()
                .position(|theirs| crossed_streams(&failed.received, message.as_bytes(), theirs));
            let failure = round_trip_failure(
                &format!("echo to the next client, after client {round} reset its connection"),
                message.as_bytes(),
                failed,
            );
            server.explain(match crossed {
                Some(client) => failure
                    .detail(format!(
                        "the bytes that came back are not this client's: they are what client {} \
                         sent, on its own connection",
                        client + 1
                    ))
                    .diagnosis(CROSSED_STREAMS, "#per-connection-state"),
                None => failure.detail(
                    "a read or write error on one connection (reset, broken pipe) closes that \
                     connection only; the server carries on",
                ),
            })
        })?;
        // The reset connection is over: its socket must go, or every client
        // that leaves this way costs a descriptor for good.
        let pid = server.process.pid();
        let still_held = |inode| procfs::holds_socket(pid, inode).unwrap_or(false);
        if let Some(inode) = theirs {
            if !procfs::watch_until(ctx.within(5.0), || !still_held(inode)) {
                return Err(server.explain(
                    Failure::new(format!(
                        "client {round} reset its connection, and the server still holds its \
                         socket {:.0} s later",
                        ctx.scaled(5.0).as_secs_f64()
                    ))
                    .expected("a failed read or write closes that connection: deregister, drop")
                    .diagnosis(
                        "A read or write that fails with an error other than WouldBlock or Interrupted ends that connection: log it, deregister it and drop it. Ignoring the error keeps a dead connection, and its descriptor, forever.",
                        "#closing-and-deregistering",
                    ),
                ));
            }
        }
    }
    if let Some(status) = server.process.exit_status() {
        return Err(server.explain(Failure::new(format!(
            "the server exited: {}",
            crate::harness::process::describe_status(Some(status))
        ))));
    }
    Ok(())
}

pub(super) fn server_log(ctx: &Ctx) -> CheckResult {
    const CLIENTS: usize = 3;
    let mut server = start(ctx)?;
    let deadline = ctx.within(5.0);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let stream = server.connect(deadline)?;
        clients.push((local_addr(&stream)?, stream));
    }
    // The three clients interleave: first messages, then second messages,
    // then everyone half-closes.
    for part in ["Hello from client", "Goodbye from client"] {
        for (number, (_, stream)) in clients.iter().enumerate() {
            let message = format!("{part} {}.", number + 1);
            round_trip(stream, message.as_bytes(), deadline).map_err(|failed| {
                server.explain(round_trip_failure(
                    &format!("echo to client {}", number + 1),
                    message.as_bytes(),
                    failed,
                ))
            })?;
        }
    }
    for (_, stream) in &clients {
        let _ = stream.shutdown(Shutdown::Write);
    }
    for (number, (peer, stream)) in clients.iter().enumerate() {
        let (_, end) = net::read_until(stream, None, deadline);
        let closing = format!("Closing connection to {peer}");
        let logged = server.wait_for_line(deadline, |line| line == closing);
        let client = number + 1;
        let failure = match (end == ReadEnd::Eof, logged.is_some()) {
            (true, true) => continue,
            // The log is right and the socket is not: what differs is the
            // connection's end, not a line (which the log has).
            (false, true) => Failure::new(format!(
                "client {client} half-closed and the server logged `{closing}`, but it did not close the connection"
            ))
            .expected(format!(
                "after its echo, client {client} reads the end of stream (the server's FIN)"
            ))
            .actual(format!("after its echo, {end}")),
            (true, false) => Failure::new(format!(
                "client {client} half-closed and the server closed the connection, but it did not log `Closing connection to PEER`"
            ))
            .expected(closing)
            .actual(show::tail(&server.stdout(), 10)),
            (false, false) => Failure::new(format!(
                "client {client} half-closed, but the server neither closed the connection nor logged `Closing connection to PEER`"
            ))
            .expected(format!(
                "the end of stream (the server's FIN), and the line {closing}"
            ))
            .actual(format!(
                "after its echo, {end}; the log ends:\n{}",
                show::tail(&server.stdout(), 10)
            )),
        };
        return Err(server.explain(failure));
    }
    let lines = server.lines();
    let mut text: Vec<String> = lines
        .iter()
        .filter(|line| line.starts_with("Listening on "))
        .take(1)
        .map(|line| redact(line))
        .collect();
    for (number, (peer, _)) in clients.iter().enumerate() {
        text.push(format!("the grader's client {}:", number + 1));
        text.extend(
            ServerView::of(&lines, *peer)
                .render(*peer)
                .into_iter()
                .map(|line| format!("    {line}")),
        );
    }
    ctx.snapshot(&text.join("\n")).map_err(|failure| {
        failure.detail(
            "the grader groups the server's lines by client and joins each client's `Echoing` \
             bytes, so how the echo is split into lines does not matter",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::crossed_streams;

    #[test]
    fn crossed_streams_are_another_connections_bytes_never_ones_own() {
        let own = b"still serving after client 1 left rudely?";
        let theirs: Vec<u8> = (0..4096u32).map(|i| b'a' + (i * 7 % 26) as u8).collect();
        // Another client's bytes, from anywhere in what it sent.
        assert!(crossed_streams(&theirs[100..400], own, &theirs));
        // Its own echo, whole or a beginning, is no crossing.
        assert!(!crossed_streams(own, own, &theirs));
        assert!(!crossed_streams(&own[..20], own, &theirs));
        // Too little to tell, or bytes nobody sent.
        assert!(!crossed_streams(&theirs[..4], own, &theirs));
        assert!(!crossed_streams(
            b"0123456789012345678901234567890123",
            own,
            &theirs
        ));
    }
}
