//! Connections that come and go in any order: each keeps its own token for
//! as long as it lives.

use crate::harness::Ctx;
use crate::harness::net::ReadEnd;
use crate::harness::observe::{procfs, sockdiag};
use crate::outcome::CheckResult;

use super::echo::{echo_explained, round_trip, round_trip_failure};
use super::logs::local_addr;
use super::server::start;

/// A and B connect, A leaves, C connects: B and C are both still served. A
/// token taken from the map's size (`connections.len() + 1`) gives C the
/// token B still holds, and the map's `insert` drops B's connection.
pub(super) fn clients_come_and_go(ctx: &Ctx) -> CheckResult {
    let mut server = start(ctx)?;
    let within = || ctx.within(5.0);
    let first = server.connect(ctx.deadline())?;
    echo_explained(
        &mut server,
        &first,
        b"first",
        "echo to the first client",
        within(),
    )?;
    let second = server.connect(ctx.deadline())?;
    echo_explained(
        &mut server,
        &second,
        b"second",
        "echo to the second client",
        within(),
    )?;
    let first_addr = local_addr(&first)?;
    drop(first);
    // The third connects once the server has closed the first's socket
    // (it is gone from the kernel's table): then a server that counts its
    // connections counts one fewer.
    procfs::watch_until(ctx.within(2.0), || {
        sockdiag::tcp_socket(server.addr, first_addr).is_ok_and(|socket| {
            socket.is_none_or(|socket| {
                socket.state != procfs::Socket::ESTABLISHED
                    && socket.state != procfs::Socket::CLOSE_WAIT
            })
        })
    });
    let third = server.connect(ctx.deadline())?;
    echo_explained(
        &mut server,
        &third,
        b"third",
        "echo to the third client",
        within(),
    )?;
    let again = b"second, again";
    round_trip(&second, again, within()).map_err(|failed| {
        let closed = matches!(failed.end, ReadEnd::Eof | ReadEnd::Error(_));
        let failure = round_trip_failure(
            "after the first client left and a third came, the second client's echo",
            again,
            failed,
        );
        let failure = if closed && server.process.exit_status().is_none() {
            failure
                .detail("the server, still running, closed the second client's connection when the third came")
                .diagnosis(
                    "Each connection keeps its token for as long as it lives: take tokens from a counter that only grows (`next_token += 1`), never from the map's size. Once a client has left, `connections.len() + 1` is a token that a live connection still holds, and `insert` replaces (drops) that connection.",
                    "#readiness-poll-token-interest-events",
                )
        } else {
            failure
        };
        server.explain(failure)
    })
}
