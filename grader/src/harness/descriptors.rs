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

use super::conn::Conn;
use super::{Server, procfs};
use crate::outcome::Failure;

/// The server's descriptor limit: room for a runtime's own and for dozens
/// of clients.
pub const OPEN_FILES: u64 = 128;

/// Clients beyond the room: they wait in the listen queue.
pub const TOO_MANY: usize = 2;

/// What a server must do about EMFILE, for diagnoses.
pub const LESSON: &str = "When accept fails with EMFILE (`Too many open files`), the client waits in the listen queue: log the error and go back to poll. Retrying accept at once fails again, forever, and serves nobody; ending the server drops every client.";

/// How many descriptors below `limit` the program `pid` holds.
fn taken(pid: u32, limit: u64) -> Option<u64> {
    let numbers = procfs::fd_numbers(pid).ok()?;
    Some(numbers.iter().filter(|&&number| number < limit).count() as u64)
}

/// Connects clients until every descriptor below the server's `limit` is
/// taken and some still wait in its listen queue, so that its next accept
/// fails with EMFILE; returns those clients, for the check to close.
pub fn use_up(server: &mut Server, limit: u64, deadline: Instant) -> Result<Vec<Conn>, Failure> {
    let pid = server.process.pid();
    let Some(held) = taken(pid, limit) else {
        return Err(Failure::new(format!(
            "could not read /proc/{pid}/fd (Linux only)"
        )));
    };
    let room = limit.saturating_sub(held) as usize;
    let mut clients = Vec::new();
    for _ in 0..room + TOO_MANY {
        clients.push(server.connect(deadline)?);
    }
    let port = server.addr.port();
    let used_up = || {
        let queued = procfs::accept_queue(port)
            .ok()
            .flatten()
            .map_or(0, |(queued, _)| queued);
        taken(pid, limit) == Some(limit) && queued > 0
    };
    if procfs::watch_until(deadline, || {
        server.process.exit_status().is_some() || used_up()
    }) {
        return Ok(clients);
    }
    Err(server.explain(
        Failure::new(format!(
            "with room for {room} more descriptors, {} more clients connected, but the server \
             did not accept clients until its descriptors ran out",
            room + TOO_MANY
        ))
        .detail(format!(
            "the grader watched /proc/{pid}/fd and the listen queue of port {port}"
        )),
    ))
}

/// Once the clients have left, waits until the server has closed their
/// sockets: room below `limit` for the clients still in the listen queue
/// and one more.
pub fn wait_for_room(server: &mut Server, limit: u64, deadline: Instant) -> Result<(), Failure> {
    let pid = server.process.pid();
    let has_room = || taken(pid, limit).is_some_and(|taken| limit - taken > TOO_MANY as u64);
    if procfs::watch_until(deadline, || {
        server.process.exit_status().is_some() || has_room()
    }) {
        return Ok(());
    }
    Err(server.explain(
        Failure::new(
            "every client closed its connection, but the server did not close its sockets for \
             them",
        )
        .expected("at end of stream, the server closes the connection and frees its descriptor"),
    ))
}
