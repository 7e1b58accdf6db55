//! The grader's echo exchange with a graded server: one message out, the
//! same bytes back, and the failure when they do not come; and the failure
//! of a server that stops reading a client that sends more than it reads.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Instant;

use crate::harness::net::conn::Conn;
use crate::harness::net::{self, ReadEnd};
use crate::harness::observe::procfs::{self, TcpBuffers};
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::logs::local_addr;
use super::size;

/// One request/response on an open connection: sends `message`, reads the
/// same number of bytes back by `deadline`; on failure, what came back.
pub(super) fn round_trip(
    stream: &Conn,
    message: &[u8],
    deadline: Instant,
) -> Result<(), net::Exchange> {
    let mut writer = stream;
    if let Err(err) = net::write_all_until(&mut writer, message, deadline) {
        return Err(net::Exchange {
            received: Vec::new(),
            end: ReadEnd::Deadline,
            write_error: Some(err.to_string()),
        });
    }
    let (received, end) = net::read_until(stream, Some(message.len()), deadline);
    if received == message {
        return Ok(());
    }
    Err(net::Exchange {
        received,
        end,
        write_error: None,
    })
}

/// [`round_trip`], its failure described as `what` and explained by the
/// server's state.
pub(super) fn echo_explained(
    server: &mut Server,
    stream: &Conn,
    message: &[u8],
    what: &str,
    deadline: Instant,
) -> CheckResult {
    round_trip(stream, message, deadline)
        .map_err(|failed| server.explain(round_trip_failure(what, message, failed)))
}

/// Describes a failed [`round_trip`].
pub(super) fn round_trip_failure(what: &str, message: &[u8], exchange: net::Exchange) -> Failure {
    exchange
        .expect_bytes(message, what)
        .err()
        .unwrap_or_else(|| Failure::new(format!("{what}: more bytes came back than were sent")))
}

/// The failure of a server that stopped reading a client that sends
/// `payload` bytes without reading: how far it read, from the kernel's
/// queues at the moment the grader's writes blocked (what the grader
/// wrote = what the server read + what waits unread in its socket + what
/// is still in the grader's send buffer), so that the counts add up to the
/// conversation's.
pub(super) fn stopped_reading(
    stream: &Conn,
    server: SocketAddr,
    payload: usize,
    err: &io::Error,
) -> Failure {
    let written = stream.bytes_written();
    let why = match err.kind() {
        ErrorKind::TimedOut => String::new(),
        _ => format!(" ({err})"),
    };
    let queues = local_addr(stream).ok().and_then(|here| {
        let ours = procfs::tcp_connection(here, server).ok()??;
        let theirs = procfs::tcp_connection(server, here).ok()??;
        Some((u64::from(ours.tx_queue), u64::from(theirs.rx_queue)))
    });
    let shown = size(payload);
    let expected = format!(
        "the server reads all {shown} while the client reads nothing (the grader reads the echo \
         only after it has sent everything)"
    );
    let lesson = "when a client is not reading, a write to it stops with WouldBlock: keep the \
                  rest in that connection's buffer, and keep reading";
    match queues {
        Some((in_flight, unread)) if in_flight + unread <= written => {
            let read = written - in_flight - unread;
            Failure::new(format!(
                "the server stopped reading after {} of {shown}{why}",
                show::size(read)
            ))
            .expected(expected)
            .actual(format!(
                "the grader's writes blocked after {} ({written} bytes): the server read {read} \
                 bytes of them, {unread} wait unread in the server's socket and {in_flight} in \
                 the grader's send buffer",
                show::size(written)
            ))
            .detail(lesson)
        }
        _ => Failure::new(format!(
            "the server stopped reading: the grader's writes blocked after {} of {shown}{why}",
            show::size(written)
        ))
        .expected(expected)
        .detail(lesson),
    }
}

/// Sends `payload`, more than the socket buffers hold, before reading
/// anything, and returns it: the server can only keep up by buffering what
/// it cannot write back yet. A server that stops reading fails the check (a
/// while without progress, not the check's whole time).
pub(super) fn send_beyond_buffers(
    ctx: &Ctx,
    server: &mut Server,
    stream: &Conn,
    payload: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    let buffers = TcpBuffers::here();
    if let Some(note) = super::buffers_note(&buffers, payload.len(), super::EIGHT_MIB) {
        ctx.note_try_it(note);
    }
    let deadline = ctx.within(40.0);
    let mut writer = stream;
    for chunk in payload.chunks(64 * 1024) {
        let stalled = ctx.within(10.0).min(deadline);
        if let Err(err) = net::write_all_until(&mut writer, chunk, stalled) {
            return Err(server.explain(stopped_reading(stream, server.addr, payload.len(), &err)));
        }
    }
    Ok(payload)
}
