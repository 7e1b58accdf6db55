//! Running a server out of file descriptors. Every socket is one, and a
//! process may hold only so many (`ulimit -n`): `accept` then fails with
//! EMFILE and the client waits in the listen queue.
//!
//! The server starts with a limit ([`OPEN_FILES`]) that leaves room for
//! whatever its runtime opens; once it listens, [`use_up`] counts what it
//! holds and connects more clients than the rest can take. A check then
//! makes sure the clients it already had are still served, lets every
//! client leave, and waits for the room to come back ([`wait_for_room`])
//! before a new client must be served.

use std::time::Instant;

use crate::harness::Server;
use crate::harness::net::Crowd;
use crate::harness::net::conn::Conn;
use crate::harness::observe::stall::{self, Waited};
use crate::harness::observe::{procfs, sockdiag};
use crate::outcome::Failure;

/// The server's descriptor limit: room for a runtime's own and for dozens
/// of clients.
pub const OPEN_FILES: u64 = 128;

/// Clients beyond the room: one waits in the listen queue (it fits there
/// whatever the server's backlog).
pub const TOO_MANY: usize = 1;

/// What a server must do about EMFILE, for diagnoses.
pub const LESSON: &str = "When accept fails with EMFILE (`Too many open files`), the client waits in the listen queue: log the error and go back to poll (with level-triggered poll or select, stop watching the listener until a connection closes, or it wakes you at once, forever). Retrying accept at once fails again, forever, and serves nobody; ending the server drops every client.";

/// How many descriptors below `limit` the program `pid` holds.
fn taken(pid: u32, limit: u64) -> Option<u64> {
    let numbers = procfs::fd_numbers(pid).ok()?;
    Some(numbers.iter().filter(|&&number| number < limit).count() as u64)
}

/// The server's descriptor limit, as the kernel has it: started with
/// [`OPEN_FILES`], unless the grader itself may not go that high.
pub fn limit_of(server: &Server) -> Result<u64, Failure> {
    let pid = server.process.pid();
    match procfs::open_files_limit(pid) {
        Ok(limit) if limit <= 4 * OPEN_FILES => Ok(limit),
        Ok(limit) => Err(Failure::new(format!(
            "the grader could not limit the server to {OPEN_FILES} descriptors (it may open              {limit}): this check cannot run here"
        ))),
        Err(err) => Err(Failure::new(format!(
            "could not read /proc/{pid}/limits (Linux only): {err}"
        ))),
    }
}

/// Connects clients until every descriptor below the server's `limit` is
/// taken, one more than it has room for, so that accepting the last fails
/// with EMFILE; returns those clients, for the check to close. A server
/// may keep the last client waiting in its listen queue or close it (as
/// servers that keep a descriptor in reserve for this do). Returns at once
/// if the server exits: the check's next step reports it.
pub fn use_up(server: &mut Server, limit: u64, deadline: Instant) -> Result<Vec<Conn>, Failure> {
    let pid = server.process.pid();
    let Some(held) = taken(pid, limit) else {
        return Err(Failure::new(format!(
            "could not read /proc/{pid}/fd (Linux only)"
        )));
    };
    let room = limit.saturating_sub(held) as usize;
    let mut crowd = Crowd::new(server.addr);
    let mut clients = Vec::new();
    for _ in 0..room + TOO_MANY {
        let client = crowd
            .connect(deadline)
            .map_err(|failure| server.explain(failure))?;
        clients.push(client);
    }
    // Every connection is established (in the listen queue, if not yet
    // accepted): a server that holds all its descriptors now has a client
    // it cannot accept.
    let waited = stall::until(deadline, || {
        server.process.exit_status().is_some() || taken(pid, limit) == Some(limit)
    });
    if waited == Waited::Came {
        return Ok(clients);
    }
    let port = server.addr.port();
    let queued = sockdiag::accept_queue(port).ok().flatten().unwrap_or(0);
    Err(server.explain(stopped_waiting(
        Failure::new(format!(
            "with room for {room} more descriptors, {} more clients connected, but the server \
             did not accept clients until its descriptors ran out",
            room + TOO_MANY
        ))
        .actual(format!(
            "{} of its {limit} descriptors in use (/proc/{pid}/fd), {queued} clients waiting in \
             the listen queue of port {port}",
            taken(pid, limit).unwrap_or_default()
        )),
        waited,
    )))
}

/// `failure`, saying why the grader stopped waiting before its deadline.
fn stopped_waiting(failure: Failure, waited: Waited) -> Failure {
    match waited {
        Waited::Stalled(why) => failure.detail(format!("the grader stopped waiting: {why}")),
        Waited::Came | Waited::TimedOut => failure,
    }
}

/// Once the clients have left, waits until the server has closed their
/// sockets: room below `limit` for every client still in the listen queue
/// and one more. Returns at once if the server exits: the check's next step
/// reports it.
///
/// Every one, not [`TOO_MANY`]: the queue may hold more (a client that the
/// server met with EMFILE while it still held a client of [`use_up`] that
/// had left), and a server that accepts at the next client's arrival, as
/// mio's edge-triggered events have it (the handout's way), accepts the
/// queued ones first. With room for one fewer, the new client met EMFILE
/// in turn and waited for a next arrival that never came (2 grades of the
/// reference server in 100).
pub fn wait_for_room(server: &mut Server, limit: u64, deadline: Instant) -> Result<(), Failure> {
    let pid = server.process.pid();
    let port = server.addr.port();
    let has_room = || {
        let queued = sockdiag::accept_queue(port)
            .ok()
            .flatten()
            .map_or(TOO_MANY as u64, u64::from);
        taken(pid, limit).is_some_and(|taken| limit - taken > queued)
    };
    let waited = stall::until(deadline, || {
        server.process.exit_status().is_some() || has_room()
    });
    if waited == Waited::Came {
        return Ok(());
    }
    Err(server.explain(stopped_waiting(
        Failure::new(
            "every client closed its connection, but the server did not close its sockets for \
             them",
        )
        .expected("at end of stream, the server closes the connection and frees its descriptor"),
        waited,
    )))
}
