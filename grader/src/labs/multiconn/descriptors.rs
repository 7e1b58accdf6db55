//! The server out of file descriptors. Every socket is one, and a process
//! may hold only so many (`ulimit -n`): `accept` then fails with EMFILE and
//! the client waits in the listen queue. The server starts with a limit that
//! leaves room for whatever its runtime opens; the check counts what it
//! holds once it listens and connects more clients than the rest can take.

use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Ctx, procfs};
use crate::outcome::{CheckResult, Failure};

use super::SERVER;
use super::server::{round_trip, round_trip_failure, start_launched};

/// The server's descriptor limit: room for a runtime's own and for dozens
/// of clients.
const OPEN_FILES: u64 = 128;
/// Clients beyond the room: they wait in the listen queue.
const TOO_MANY: usize = 2;

pub(super) fn out_of_descriptors(ctx: &Ctx) -> CheckResult {
    let launch = ctx
        .launch(SERVER, ["127.0.0.1", "0"])?
        .open_files(OPEN_FILES);
    let mut server = start_launched(ctx, &launch)?;
    let pid = server.process.pid();
    let limit = OPEN_FILES;
    let proc_failure =
        |err: std::io::Error| Failure::new(format!("could not read /proc (Linux only): {err}"));
    let first = server.connect(ctx.deadline())?;
    let hello = b"a client from before the limit";
    round_trip(&first, hello, ctx.within(5.0)).map_err(|failed| {
        server.explain(round_trip_failure(
            "echo to the first client",
            hello,
            failed,
        ))
    })?;

    let held = procfs::fd_numbers(pid).map_err(proc_failure)?;
    let free = (0..limit).filter(|number| !held.contains(number)).count();
    let mut others = Vec::new();
    for _ in 0..free + TOO_MANY {
        others.push(server.connect(ctx.deadline())?);
    }

    // Once every descriptor below the limit is taken and a client still
    // waits in the listen queue, the server's next accept fails with EMFILE.
    let port = server.addr.port();
    let used_up = || {
        let taken = procfs::fd_numbers(pid).map_or(0, |used| {
            used.iter().filter(|&&number| number < limit).count()
        });
        let queued = procfs::accept_queue(port)
            .ok()
            .flatten()
            .map_or(0, |(queued, _)| queued);
        taken as u64 == limit && queued > 0
    };
    if !wait_for(ctx.within(5.0), || {
        server.process.exit_status().is_some() || used_up()
    }) {
        return Err(server.explain(
            Failure::new(format!(
                "with room for {free} more descriptors, {} more clients connected, but the \
                 server did not accept clients until its descriptors ran out",
                free + TOO_MANY
            ))
            .detail(format!(
                "the grader watched /proc/{pid}/fd and the listen queue of port {port}"
            )),
        ));
    }

    let lesson = "When accept fails with EMFILE (`Too many open files`), the client waits in the listen queue: log the error and go back to poll. Retrying accept at once fails again, forever, and serves nobody; ending the server drops every client.";
    let still = b"still serving the clients it has?";
    round_trip(&first, still, ctx.within(5.0)).map_err(|failed| {
        server.explain(
            round_trip_failure(
                "echo to a client the server already had, while it was out of descriptors",
                still,
                failed,
            )
            .diagnosis(lesson, "#out-of-file-descriptors"),
        )
    })?;

    // Every client leaves: the server closes their sockets and has room again.
    drop(first);
    drop(others);
    let has_room = || {
        procfs::fd_numbers(pid).is_ok_and(|used| {
            let taken = used.iter().filter(|&&number| number < limit).count() as u64;
            limit - taken > TOO_MANY as u64
        })
    };
    if !wait_for(ctx.within(5.0), || {
        server.process.exit_status().is_some() || has_room()
    }) {
        return Err(server.explain(
            Failure::new(
                "every client closed its connection, but the server did not close its sockets \
                 for them",
            )
            .expected(
                "at end of stream, the server closes the connection and frees its descriptor",
            ),
        ));
    }
    let again = ctx.within(5.0);
    let next = server.connect(again)?;
    let welcome = b"a new client, once descriptors are free again";
    round_trip(&next, welcome, again).map_err(|failed| {
        server.explain(
            round_trip_failure(
                "echo to a new client, once the old ones had left and freed their descriptors",
                welcome,
                failed,
            )
            .detail(format!(
                "{TOO_MANY} clients still waited in the listen queue before it, from when the \
                 server was out of descriptors"
            ))
            .diagnosis(lesson, "#out-of-file-descriptors"),
        )
    })
}

/// Polls `done` until it holds (true) or `deadline` passes (false).
fn wait_for(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
