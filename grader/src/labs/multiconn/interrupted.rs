//! `multiconn.client_stop_and_continue`: `multiconn-client` is stopped and
//! continued (as Ctrl-Z and `fg` do) while it waits in `poll` for echoes.
//!
//! On Linux `epoll_wait` fails with EINTR (`Interrupted`) when its process is
//! stopped and continued, even without a signal handler (signal(7)).
//! Nothing went wrong: the loop polls again and every echo still arrives.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::harness::net::Peers;
use crate::harness::observe::stall;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::{CLIENT, CLIENT_MESSAGES};
use crate::sync::Unpoison;

/// How many connections the client opens.
const CONNS: usize = 3;

/// How long the check waits for the client to sleep in `poll` before it
/// stops it anyway (seconds, scaled).
const ASLEEP_WITHIN: f64 = 2.0;

pub(super) fn client_stop_and_continue(ctx: &Ctx) -> CheckResult {
    let deadline = ctx.within(10.0);
    // Each connection's messages are read, then held until the client has
    // been stopped and continued, then echoed.
    let read_all = Arc::new(AtomicUsize::new(0));
    let released = Arc::new((Mutex::new(false), Condvar::new()));
    let (read_count, release) = (Arc::clone(&read_all), Arc::clone(&released));
    let peers = Peers::serve_many(deadline, CONNS, move |mut stream, _| {
        let mut received = Vec::new();
        let mut buffer = [0; 4096];
        while received.len() < CLIENT_MESSAGES.len() {
            match stream.read(&mut buffer)? {
                0 => break,
                n => received.extend_from_slice(&buffer[..n]),
            }
        }
        read_count.fetch_add(1, Ordering::SeqCst);
        let (lock, changed) = &*release;
        let mut go = lock.lock().unpoison();
        while !*go && Instant::now() < deadline {
            go = changed
                .wait_timeout(go, Duration::from_millis(50))
                .unpoison()
                .0;
        }
        stream.write_all(&received)?;
        Ok(())
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    let port = peers.addr.port().to_string();
    let count = CONNS.to_string();
    let process = ctx.spawn(&ctx.launch(CLIENT, ["127.0.0.1", port.as_str(), count.as_str()])?)?;
    // Once every connection has sent its messages the client can only wait
    // for the echoes, asleep in poll.
    // A client that exited, or sleeps with connections left unsent, never
    // gets there: the wait ends early then.
    stall::until_asleep_in_poll(process.pid(), ctx.within(ASLEEP_WITHIN + 3.0), || {
        read_all.load(Ordering::SeqCst) == CONNS
    });
    ctx.note_command(
        "(grader) stop the client (SIGSTOP, as Ctrl-Z does) while it waits for the echoes, then continue it (SIGCONT, as fg does)",
    );
    drop(process.pause(deadline));
    {
        let (lock, changed) = &*released;
        *lock.lock().unpoison() = true;
        changed.notify_all();
    }
    let finished = process.finish(deadline);
    drop(peers.results(ctx.within(2.0)));
    let stdout = finished.stdout_text();
    let missing: Vec<usize> = (1..=CONNS)
        .filter(|number| {
            !stdout
                .lines()
                .any(|line| line == format!("Closing connection {number}"))
        })
        .collect();
    if finished.code() == Some(0) && missing.is_empty() {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{CLIENT} was stopped (as by Ctrl-Z) and continued (`fg`) while it waited for the echoes of its {CONNS} connections, and did not finish them"
    ))
    .expected(format!(
        "`Closing connection N` for N = 1..={CONNS}, then exit code 0: `poll` returning Interrupted (EINTR) is polled again"
    ))
    .actual(finished.describe())
    .detail(format!("stdout ends: {}", show::tail(&stdout, 4)))
    .detail(finished.stderr_detail()))
}
