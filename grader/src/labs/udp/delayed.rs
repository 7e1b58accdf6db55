//! `client_delayed`: a grader peer that answers late, well inside the
//! client's timeout, and counts what the client sent meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::harness::Ctx;
use crate::harness::net::udp;
use crate::harness::observe::stall;
use crate::outcome::{CheckResult, Failure};

use super::client::{expect_printed_reply, expect_request, peer, run_client, text_reply};
use super::{CLIENT, RUN_LIMIT};

/// How long the delayed peer waits before it answers: well inside the
/// default 3 s timeout. A necessary wait, the lab's floor with
/// `client_timeout`'s: a client with a fixed short timeout (the classic
/// `settimeout(1)`) or none at all (a non-blocking read) is told from one
/// that waits its 3 s only by a reply later than the short timeout; nothing
/// in `/proc` shows a socket's receive timeout (`SO_RCVTIMEO`), so no
/// earlier evidence can stand in for the late reply.
pub(super) const DELAY: Duration = Duration::from_millis(1500);

pub(super) fn client_delayed(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here: wait it out.
    let _patient = stall::patient();
    let reply = text_reply(ctx);
    let sent = reply.clone();
    let resent = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&resent);
    let peer = peer(ctx.within(RUN_LIMIT), move |socket, request| {
        thread::sleep(DELAY);
        // What else the client sent while it waited for the reply.
        let again = udp::drain(socket)?
            .iter()
            .filter(|datagram| datagram.from == request.from)
            .count();
        counted.store(again, Ordering::SeqCst);
        socket.send_to(&sent, request.from).map(drop)
    })?;
    let finished = run_client(ctx, peer.addr, &[], RUN_LIMIT)?;
    expect_request(ctx, &peer, &finished)?;
    let again = resent.load(Ordering::SeqCst);
    if again > 0 {
        return Err(Failure::new(format!(
            "{CLIENT} sent its message {} times in the {:.1} s before the reply came",
            again + 1,
            DELAY.as_secs_f64()
        ))
        .expected("one datagram, then a wait for the reply until the timeout")
        .actual(format!(
            "{again} more datagram{} from the same socket before the reply",
            if again == 1 { "" } else { "s" }
        ))
        .diagnosis(
            "Send MESSAGE once, with one send_to, then wait for the reply until the timeout: this lab's client does not resend. A server that is slow to answer would get, and answer, the same request several times.",
            "#step-3-the-client",
        ));
    }
    expect_printed_reply(&finished, peer.addr, &reply).map_err(|failure| {
        failure.detail(format!(
            "the server answered {:.1} s after the datagram; without --timeout the client \
             waits 3 s",
            DELAY.as_secs_f64()
        ))
    })
}
