//! A client that stops sending without closing: the echo it is owed must
//! keep flowing as it reads, whether or not it ever half-closes.

use crate::harness::net::{self, ReadEnd};
use crate::harness::observe::procfs::TcpBuffers;
use crate::harness::observe::{procfs, stall};
use crate::harness::{Ctx, payload};
use crate::outcome::{CheckResult, Failure};

use super::echo::send_beyond_buffers;
use super::logs::local_addr;
use super::server::start;
use super::{EIGHT_MIB, size};

/// What the failure says when the echo stops while the client reads and
/// the server, which has read everything, sleeps with bytes still buffered.
const WRITABLE_WHILE_READING: &str = "Bytes wait in the connection's buffer while the client is still connected, and nothing wakes the loop to write them: ask for WRITABLE whenever the buffer is not empty (`READABLE | WRITABLE` while the client may still send), not only once it has finished sending, and write the rest when the event comes.";

/// What `large_still_open` sends: twice what one connection's buffers hold
/// one way, at most 8 MiB. Whatever the buffers take, the server is left
/// holding at least as much again when the client stops sending.
fn twice_the_buffers(buffers: &TcpBuffers) -> usize {
    (2 * buffers.one_way()).min(EIGHT_MIB)
}

pub(super) fn large_still_open(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let stream = server.connect(ctx.deadline())?;
    // Everything is written before anything is read, as in
    // `large_half_close`, but the connection stays open: the server's
    // writes stop with WouldBlock while the client is still a sender.
    // Letters and digits: what is tested is the flow, and a server logs
    // every byte it echoes, escaped (four times as long for random bytes).
    let bytes = twice_the_buffers(&TcpBuffers::here());
    let payload = payload::alphanumeric(&mut ctx.rng(), bytes).into_bytes();
    let payload = send_beyond_buffers(ctx, &mut server, &stream, payload)?;
    let shown = size(payload.len());
    // The client now only reads. Before it does, the server has read every
    // byte (its socket's unread count is 0) and sleeps in poll again: what
    // it still owes waits in its buffer, and only a WRITABLE event can get
    // it out (at most 0.3 s for a server that never sleeps in poll).
    let (here, there) = (local_addr(&stream)?, server.addr);
    let read_everything = || {
        procfs::tcp_connection(there, here)
            .is_ok_and(|socket| socket.is_some_and(|socket| socket.rx_queue == 0))
    };
    stall::until_asleep_in_poll(server.process.pid(), ctx.within(0.3), read_everything);
    let (received, end) = net::read_until(&stream, Some(payload.len()), ctx.within(40.0));
    if received == payload {
        return Ok(());
    }
    let held = payload.starts_with(&received)
        && matches!(end, ReadEnd::Deadline | ReadEnd::Stalled(_))
        && read_everything();
    let exchange = net::Exchange {
        received,
        end,
        write_error: None,
    };
    let what = format!("echo of {shown} sent before reading, the connection left open");
    let failure = exchange
        .expect_bytes(&payload, &what)
        .err()
        .unwrap_or_else(|| Failure::new(format!("{what}: more bytes came back than were sent")))
        .detail(format!("the payload came from seed {}", ctx.seed()));
    let failure = if held {
        failure
            .detail(format!(
                "the server read every byte sent and the client, still connected, was reading, yet {} bytes of echo never came: they wait in the server's buffer",
                payload.len() - exchange.received.len()
            ))
            .diagnosis(WRITABLE_WHILE_READING, "#partial-writes-and-write-interest")
    } else {
        failure
    };
    Err(server.explain(failure))
}
