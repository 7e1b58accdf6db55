//! Server checks of what the server uses: one thread for every client,
//! no CPU while its clients are idle, and no descriptor left open after a
//! client leaves.

use std::thread;
use std::time::{Duration, Instant};

use crate::harness::net::conn::Conn;
use crate::harness::net::{self, ReadEnd, SendPlan};
use crate::harness::observe::procfs;
use crate::harness::{Ctx, Server};
use crate::outcome::{CheckResult, Failure};

use super::echo::echo_explained;
use super::server::start;

/// Connects `count` clients that each get one echo back and then stay
/// connected: the server has seen every one of them when this returns.
fn connected_clients(
    ctx: &Ctx,
    server: &mut Server,
    count: usize,
    what: &str,
) -> Result<Vec<Conn>, Failure> {
    let mut clients = Vec::with_capacity(count);
    for number in 1..=count {
        let stream = server.connect(ctx.deadline())?;
        let message = format!("client {number} {what}");
        echo_explained(
            server,
            &stream,
            message.as_bytes(),
            &format!("echo to client {number}"),
            ctx.within(5.0),
        )?;
        clients.push(stream);
    }
    Ok(clients)
}

/// The clients connected while `one_thread` counts the server's threads.
const THREAD_CLIENTS: usize = 5;

pub(super) fn one_thread(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let pid = server.process.pid();
    let threads = || {
        procfs::tree_threads(pid)
            .map_err(|err| Failure::new(format!("could not read /proc (Linux only): {err}")))
    };
    // A runtime may run threads of its own (Node.js, a JVM, Go's): what
    // this lab forbids is a thread per client, so the count with clients
    // is compared with the count before any came. A program alone on its
    // one thread must stay on it; one that already had several may gain
    // one more under load (a runtime's compiler), not one per client.
    let alone = threads()?;
    let clients = connected_clients(ctx, &mut server, THREAD_CLIENTS, "checks the thread count")?;
    let with_clients = threads()?;
    drop(clients);
    let allowed = if alone <= 1 { 1 } else { alone + 1 };
    if with_clients <= allowed {
        return Ok(());
    }
    let failure = Failure::new(format!(
        "with {THREAD_CLIENTS} clients connected, the server runs {with_clients} threads; before \
         any client came, {alone}"
    ))
    .actual(format!(
        "Threads: {alone} with no client, Threads: {with_clients} with {THREAD_CLIENTS}"
    ))
    .detail(
        "this lab is about serving many clients without a thread each: one poller \
         tells one thread which sockets are ready",
    );
    Err(if alone <= 1 {
        failure.expected("Threads: 1 in /proc/PID/status: one thread, one event loop, every client")
    } else {
        failure.expected(format!(
            "as many threads with clients as without ({alone}, the runtime's own): no thread per client"
        ))
    })
}

/// The CPU an idle server may use: 50 ms a second.
fn cpu_allowed(elapsed: Duration) -> Duration {
    Duration::from_millis(50).mul_f64(elapsed.as_secs_f64())
}

/// The server's own CPU time over an idle `window`: `None` when it stayed
/// within [`cpu_allowed`], else what it used and in how long. A busy machine
/// slows a busy loop down but cannot make it use nothing. The window ends
/// early on evidence either way: a server that has already used more than
/// the whole window allows has failed; one whose every thread sleeps in poll
/// with no timeout, and has not run at all for a while, sleeps until an event
/// comes, and none will: what it used so far is all it uses.
fn idle_cpu_use(ctx: &Ctx, pid: u32) -> Result<Option<(Duration, Duration)>, Failure> {
    let cpu = || {
        procfs::tree_cpu_time(pid)
            .map_err(|err| Failure::new(format!("could not read /proc (Linux only): {err}")))
    };
    let window = ctx.scaled(1.0);
    let quiet = ctx.scaled(0.05);
    let before = cpu()?;
    let started = Instant::now();
    let mut asleep_since: Option<(Instant, u64)> = None;
    let used = loop {
        thread::sleep(Duration::from_millis(5));
        let used = cpu()? - before;
        if started.elapsed() >= window || used > cpu_allowed(window.mul_f64(1.2)) {
            break used;
        }
        let runs = procfs::times_scheduled(pid).ok();
        asleep_since = match (asleep_since, runs) {
            (Some((since, then)), Some(now))
                if then == now && procfs::sleeps_until_an_event(pid) =>
            {
                if since.elapsed() >= quiet && used <= cpu_allowed(window) {
                    return Ok(None);
                }
                Some((since, then))
            }
            (_, Some(now)) if procfs::sleeps_until_an_event(pid) => Some((Instant::now(), now)),
            _ => None,
        };
    };
    let elapsed = started.elapsed();
    Ok((used > cpu_allowed(elapsed)).then_some((used, elapsed)))
}

pub(super) fn idle_cpu(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let clients = connected_clients(ctx, &mut server, 10, "stays idle")?;
    let measured = idle_cpu_use(ctx, server.process.pid());
    drop(clients);
    let Some((used, elapsed)) = measured? else {
        return Ok(());
    };
    let failure = Failure::new(format!(
        "with 10 idle connections and nothing to do, the server used {} ms of CPU in {} ms",
        used.as_millis(),
        elapsed.as_millis()
    ))
    .expected(format!(
        "at most {} ms: an idle event loop sleeps in poll",
        cpu_allowed(elapsed).as_millis()
    ));
    // Which of the two usual causes: a loop that never sleeps spins with no
    // client at all; interest in WRITABLE kept while nothing waits to be
    // written needs connections to spin. A second server, with no client,
    // tells them apart.
    let alone = start(ctx).and_then(|alone| idle_cpu_use(ctx, alone.process.pid()));
    Err(server.explain(match alone {
        Ok(Some((alone_used, alone_elapsed))) => failure
            .detail(format!(
                "with no client at all, another run of the server used {} ms of CPU in {} ms: its loop never sleeps",
                alone_used.as_millis(),
                alone_elapsed.as_millis()
            ))
            .diagnosis(
                "The loop must sleep in `poll.poll(&mut events, None)` until something is ready: a timeout of zero (or a short one) in a loop, or a retry that does not go back to poll, keeps one CPU core busy doing nothing.",
                "#never-block-the-loop",
            ),
        Ok(None) => failure
            .detail("with no client at all, another run of the server sleeps: its connections keep it awake")
            .diagnosis(
                "Ask for WRITABLE only while a connection has bytes waiting to be written: a socket with room in its send buffer is writable all the time, and interest in it wakes the loop for nothing.",
                "#partial-writes-and-write-interest",
            ),
        Err(_) => failure.detail(
            "look for a poll with a zero timeout in a loop, or writable interest kept \
             while nothing is waiting to be written",
        ),
    }))
}

pub(super) fn fd_leak(ctx: &Ctx) -> CheckResult {
    /// Descriptors a runtime may open lazily on first use.
    const SLACK: usize = 2;
    let mut server = start(ctx)?;
    let pid = server.process.pid();
    let fds = || {
        procfs::open_fds(pid)
            .map_err(|err| Failure::new(format!("could not read /proc (Linux only): {err}")))
    };
    // The baseline is taken after a few warm-up clients: runtimes open some
    // descriptors lazily on their first connections, which is no leak.
    const WARM_UP: usize = 5;
    let mut baseline = fds()?;
    // The server's sockets of the clients that reset their connection.
    let mut reset_sockets = Vec::new();
    for number in 1..=WARM_UP + 100 {
        if number == WARM_UP + 1 {
            baseline = fds()?;
        }
        let stream = server.connect(ctx.deadline())?;
        let message = format!("client {number} comes and goes");
        if number % 3 == 0 {
            // A third half-close and wait for the server to close.
            stream.expect_at_most(message.len() as u64);
            let exchange = net::exchange(
                &stream,
                message.as_bytes(),
                SendPlan::ALL_THEN_CLOSE,
                None,
                ctx.within(5.0),
            );
            exchange
                .expect_bytes(message.as_bytes(), &format!("echo to client {number}"))
                .map_err(|failure| server.explain(failure))?;
            if exchange.end != ReadEnd::Eof {
                return Err(server.explain(
                    Failure::new(format!(
                        "client {number} got its echo and half-closed, but the server did not \
                         close the connection: {}",
                        exchange.end
                    ))
                    .expected("at end of stream, the server closes the connection and forgets it"),
                ));
            }
        } else {
            // The others close as soon as their echo is back: half of them
            // with a reset (SO_LINGER 0), which the server meets as a read
            // that fails with `Connection reset by peer`.
            echo_explained(
                &mut server,
                &stream,
                message.as_bytes(),
                &format!("echo to client {number}"),
                ctx.within(5.0),
            )?;
            if number % 3 == 2 {
                // Those of the warm-up are before the baseline: not counted.
                let ours = stream.local_addr().ok().filter(|_| number > WARM_UP);
                if let Some(socket) =
                    ours.and_then(|ours| procfs::tcp_connection(server.addr, ours).ok().flatten())
                {
                    reset_sockets.push((number, socket.inode));
                }
                let _ = stream.reset();
            }
        }
    }
    // The server closes its sockets as it sees each client go; that takes it
    // a moment after the last client left.
    procfs::watch_until(ctx.within(5.0), || {
        procfs::open_fds(pid).is_ok_and(|open| open <= baseline + SLACK)
    });
    let now_open = fds()?;
    if now_open <= baseline + SLACK {
        return Ok(());
    }
    let still_held: Vec<u64> = reset_sockets
        .iter()
        .filter(|(_, inode)| procfs::holds_socket(pid, *inode).unwrap_or(false))
        .map(|(number, _)| *number as u64)
        .collect();
    // Most of what leaked is the reset connections: their failed read was
    // taken for "nothing more now".
    if 2 * still_held.len() > now_open - baseline {
        return Err(server.explain(
            Failure::new(format!(
                "after 100 clients came and went, the server holds {} more file descriptors than \
                 before: {} of them are connections whose client reset them",
                now_open - baseline,
                still_held.len()
            ))
            .expected("a read that fails (here `Connection reset by peer`) ends that connection: log it, deregister it and drop it")
            .actual(format!(
                "the server still holds the sockets of clients {}, which reset their connection after their echo",
                super::client::listed(&still_held)
            ))
            .diagnosis(
                "A read or write that fails with an error other than WouldBlock or Interrupted ends that connection: log it, deregister it and drop it. Taking every error for WouldBlock keeps a dead connection, and its descriptor, forever.",
                "#closing-and-deregistering",
            ),
        ));
    }
    Err(server.explain(
        Failure::new(format!(
            "after 100 clients came and went, the server holds {} more file descriptors than before",
            now_open - baseline
        ))
        .expected(format!(
            "about {baseline} entries in /proc/{pid}/fd, as before the clients came"
        ))
        .actual(format!("{now_open} entries"))
        .detail(
            "when a client is done, deregister its socket and drop it (remove it from your \
             map of connections): dropping closes the descriptor",
        ),
    ))
}
