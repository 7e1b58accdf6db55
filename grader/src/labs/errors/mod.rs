//! Lab 2 — errors: each step of a connection fails in its own way, and a
//! program should say which. Contract: the handout, `labs/errors/README.md`.
//!
//! `socket-errors` is run against grader peers that fail on purpose, each on
//! loopback and deterministic: a seccomp filter for socket creation, the
//! reserved `.invalid` domain for resolution, a bound but non-listening port
//! for a refusal, a listener with a full accept queue for a connect that
//! hangs, a peer that never answers, and a peer that resets. The send stage
//! cannot be made to fail from outside (the request fits in the kernel's
//! buffers at once); the handout says so and the solution unit-tests it.

mod client;
mod interrupted;
mod server;
mod support;

use crate::lab::{Checks, Floor};

const CLIENT: &str = "socket-errors";
const SERVER: &str = "bind-server";

/// `timeout_honoured` waits for the server's pause (a quarter of the
/// timeout), then for the `--timeout` the client must honour.
pub const FLOOR: Floor = Floor {
    check: "timeout_honoured",
    seconds: client::ODD_TIMEOUT * (1.0 + client::PAUSE_FRACTION),
};

/// The checks of lab 2, in rubric order.
pub const CHECKS: Checks = checks!(
    "errors";
    client::success,
    client::request_line,
    client::socket_create,
    client::resolve,
    client::refused,
    client::connect_timeout,
    client::recv_timeout,
    client::reset,
    interrupted::stop_and_continue,
    client::timeout_honoured,
    client::stderr_not_stdout,
    client::usage,
    client::messages,
    server::bind_ready,
    server::bind_clients,
    server::bind_ipv6,
    server::bind_failed,
    server::rebind_time_wait,
);

/// A stage of `socket-errors`: its stderr prefix and exit code.
#[derive(Debug, Clone, Copy)]
struct Stage {
    name: &'static str,
    prefix: &'static str,
    code: i32,
}

const CREATE: Stage = Stage {
    name: "create socket",
    prefix: "Error creating socket: ",
    code: 10,
};
const RESOLVE: Stage = Stage {
    name: "resolve host",
    prefix: "Address-related error connecting to server: ",
    code: 11,
};
const CONNECT: Stage = Stage {
    name: "connect",
    prefix: "Connection error: ",
    code: 12,
};
const SEND: Stage = Stage {
    name: "send",
    prefix: "Error sending data: ",
    code: 13,
};
const RECEIVE: Stage = Stage {
    name: "receive",
    prefix: "Error receiving data: ",
    code: 14,
};

/// The start of `bind-server`'s line when its port is taken (errno 98 is
/// EADDRINUSE on Linux).
const BIND_FAILED: &str = "Bind failed. Error code: 98 Message: ";
/// The exit code of a failed bind.
const BIND_EXIT: i32 = 15;

/// How much later than its timeout a program may end: starting a program
/// (an interpreter, on a busy machine) takes time too.
const MARGIN: f64 = 3.0;

/// How long a program that should fail at once may take.
const QUICK: f64 = 5.0;
