//! The server out of file descriptors (see [`crate::harness::net::descriptors`]):
//! a client it already had is still echoed, and once the clients leave a
//! new one is served.

use crate::harness::Ctx;
use crate::harness::net::descriptors::{self, LESSON, OPEN_FILES};
use crate::outcome::CheckResult;

use super::SERVER;
use super::echo::{echo_explained, round_trip, round_trip_failure};
use super::server::start_launched;

pub(super) fn out_of_descriptors(ctx: &Ctx) -> CheckResult {
    let launch = ctx
        .launch(SERVER, ["127.0.0.1", "0"])?
        .open_files(OPEN_FILES);
    let mut server = start_launched(ctx, &launch)?;
    let limit = descriptors::limit_of(&server)?;
    let first = server.connect(ctx.deadline())?;
    let hello = b"a client from before the limit";
    echo_explained(
        &mut server,
        &first,
        hello,
        "echo to the first client",
        ctx.within(5.0),
    )?;

    let others = descriptors::use_up(&mut server, limit, ctx.within(10.0))?;
    let still = b"still serving the clients it has?";
    round_trip(&first, still, ctx.within(5.0)).map_err(|failed| {
        server.explain(
            round_trip_failure(
                "echo to a client the server already had, while it was out of descriptors",
                still,
                failed,
            )
            .diagnosis(LESSON, "#out-of-file-descriptors"),
        )
    })?;

    drop(first);
    drop(others);
    descriptors::wait_for_room(&mut server, limit, ctx.within(5.0))?;
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
            .detail(
                "a client still waited in the listen queue before it, from when the server was \
                 out of descriptors",
            )
            .diagnosis(LESSON, "#out-of-file-descriptors"),
        )
    })
}
