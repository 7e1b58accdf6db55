//! `errors.stop_and_continue`: `socket-errors` is stopped and continued (as
//! Ctrl-Z and `fg` do) while it waits for the rest of a reply.
//!
//! On Linux a read on a socket with a read timeout fails with EINTR
//! (`Interrupted`) when its process is stopped and continued, even without a
//! signal handler (signal(7)). Nothing went wrong: the read must be retried,
//! and the reply arrives whole.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::observe::procfs;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::support::{client, outputs, random_reply, read_request, start_peer};
use super::{CLIENT, QUICK};

/// How long the check waits for the client to be asleep in its read before
/// it stops it anyway (seconds, scaled): where `/proc/PID/wchan` says
/// nothing, the stop still comes while the client waits, most likely in the
/// read.
const ASLEEP_WITHIN: f64 = 2.0;

pub(super) fn stop_and_continue(ctx: &Ctx) -> CheckResult {
    let reply = random_reply(ctx, 8 * 1024);
    let half = reply.len() / 2;
    let (first_sent, first_sent_rx) = mpsc::channel::<SocketAddr>();
    let (go_on, go_on_rx) = mpsc::channel::<()>();
    let deadline = ctx.within(QUICK);
    let whole = reply.clone();
    let peer = start_peer(ctx, move |mut stream| {
        let request = read_request(&mut stream);
        stream.write_all(&whole[..half])?;
        let _ = first_sent.send(stream.peer_addr()?);
        // The rest only once the client has been stopped and continued.
        let left = deadline.saturating_duration_since(Instant::now());
        if go_on_rx.recv_timeout(left).is_ok() {
            stream.write_all(&whole[half..])?;
        }
        Ok(request)
    })?;
    let server = peer.addr;
    let launch = client(ctx, "127.0.0.1", server.port(), "/", &["--timeout", "5"])?;
    let process = ctx.spawn(&launch)?;
    let left = deadline.saturating_duration_since(Instant::now());
    let stopped = match first_sent_rx.recv_timeout(left) {
        Ok(client_addr) => {
            wait_until_asleep_in_read(
                process.pid(),
                client_addr,
                server,
                ctx.within(ASLEEP_WITHIN),
            );
            let paused = process.pause(deadline);
            drop(paused);
            true
        }
        // No request came: the other checks say why; this one reports it.
        Err(_) => false,
    };
    let _ = go_on.send(());
    let finished = process.finish(deadline);
    drop(peer.join());
    if !stopped {
        return Err(Failure::new(format!(
            "{CLIENT} never sent its request, so it could not be stopped while it waits"
        ))
        .expected("a request, then the whole reply on stdout and exit code 0")
        .actual(outputs(&finished)));
    }
    if finished.code() == Some(0) && finished.stdout == reply {
        return Ok(());
    }
    let mut failure = Failure::new(format!(
        "{CLIENT} was stopped (as by Ctrl-Z) and continued (`fg`) while it waited for the second half of a {} byte reply, and did not finish the reply",
        reply.len()
    ))
    .expected("every byte of the reply on stdout, then exit code 0: a read that returns Interrupted (EINTR) is retried")
    .actual(outputs(&finished));
    if let Some(difference) = show::first_difference(&reply, &finished.stdout) {
        failure = failure.detail(difference);
    }
    Err(failure.detail(format!("the reply came from seed {}", ctx.seed())))
}

/// Waits until the client has read the first half (nothing unread on its
/// socket) and its main thread sleeps in the kernel, or until `until`.
fn wait_until_asleep_in_read(pid: u32, client: SocketAddr, server: SocketAddr, until: Instant) {
    while Instant::now() < until {
        let all_read = procfs::tcp_connection(client, server)
            .is_ok_and(|socket| socket.is_some_and(|socket| socket.rx_queue == 0));
        let asleep =
            procfs::wchan(pid).is_ok_and(|wchan| !wchan.trim().is_empty() && wchan.trim() != "0");
        if all_read && asleep {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
