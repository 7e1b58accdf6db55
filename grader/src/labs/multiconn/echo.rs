//! The grader's echo exchange with a graded server: one message out, the
//! same bytes back, and the failure when they do not come.

use std::time::Instant;

use crate::harness::Server;
use crate::harness::net::conn::Conn;
use crate::harness::net::{self, ReadEnd};
use crate::outcome::{CheckResult, Failure};

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
