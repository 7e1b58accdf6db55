//! The server out of file descriptors (see [`crate::harness::net::descriptors`]):
//! a client it already had still gets its answer, and once the clients
//! leave a new one is answered.

use crate::harness::net::descriptors::{self, LESSON, OPEN_FILES};
use crate::harness::{Ctx, net};
use crate::outcome::{CheckResult, Failure};

use super::SERVER;
use super::protocol::{Expected, json_request, judge, read_response};
use super::server::{ALL_AT_ONCE, AboutRequest, ask};

pub(super) fn out_of_descriptors(ctx: &Ctx) -> CheckResult {
    let launch = ctx
        .launch(SERVER, ["127.0.0.1", "0"])?
        .open_files(OPEN_FILES);
    let mut server = ctx.start_server(&launch)?;
    let limit = descriptors::limit_of(&server)?;
    // The first client sends half its request and waits: the server has it
    // (accepted, and reading) before its descriptors run out.
    let request = json_request("search", "morpheus");
    let half = request.len() / 2;
    let first = server.connect(ctx.deadline())?;
    net::send(&first, &request[..half], ALL_AT_ONCE, ctx.deadline())
        .map_err(|err| Failure::new(format!("sending half a request failed: {err}")))?;
    net::wait_until_read(&first, ctx.within(5.0));

    let others = descriptors::use_up(&mut server, limit, ctx.within(10.0))?;
    ctx.note_command(
        "(grader) the server is out of descriptors: the first client sends the rest of its request",
    );
    let deadline = ctx.within(5.0);
    let write_error = net::send(&first, &request[half..], ALL_AT_ONCE, deadline).err();
    let (received, end) = read_response(&first, deadline);
    judge(&received, &end, &Expected::for_search("search", "morpheus")).map_err(|failure| {
        let failure = failure.summary_prefix(
            "a client the server already had, finishing its request while the server was out \
             of descriptors",
        );
        let failure = failure.sending_failed("the rest of the request", write_error);
        server.explain(failure.diagnosis(LESSON, "#out-of-file-descriptors"))
    })?;

    drop(first);
    drop(others);
    // Its clients left without a request (or half-way through one): a
    // server that keeps their sockets does not act on end of stream.
    descriptors::wait_for_room(&mut server, limit, ctx.within(5.0)).map_err(|failure| {
        failure.diagnosis(
            "At end of stream (read returns 0) the connection is over: answer a request that is complete, otherwise close the connection (logging `Error: PEER: REASON` when part of a request had come). A connection kept after its client left holds a descriptor for ever.",
            "#when-the-input-is-bad",
        )
    })?;
    let request = json_request("search", "ring");
    ask(
        ctx,
        &mut server,
        &request,
        ALL_AT_ONCE,
        &Expected::for_search("search", "ring"),
        "a new client, once the old ones had left and freed their descriptors",
    )
    .map_err(|failure| {
        failure
            .detail(
                "a client still waited in the listen queue before it, from when the server was \
                 out of descriptors",
            )
            .diagnosis(LESSON, "#out-of-file-descriptors")
    })
}
