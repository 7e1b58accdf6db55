//! Lab 5 — UDP: datagrams, `recv_from`/`send_to`, message boundaries, no
//! delivery guarantee, and a client that times out. Contract: "Lab 5" in the
//! handout, `labs/udp/README.md`.
//!
//! The server checks talk to `udp-server` from grader sockets; the client
//! checks run `udp-client` against grader peers (a socket that answers, one
//! that answers late, one that never answers, with or without a stranger
//! writing to the client meanwhile, a refusing port). Only
//! `client_timeout`, `client_stranger_timeout` and `client_no_server` may
//! wait for a timeout: the client's own, set short with `--timeout`.

mod client;
mod delayed;
mod server;
mod usage;

use crate::lab::{Checks, Floor};

const SERVER: &str = "udp-server";
const CLIENT: &str = "udp-client";
/// The server's answer to every datagram.
const REPLY: &[u8] = b"Got your message!";
const HELLO: &[u8] = b"Hello, UDP";
/// What `udp-client` is asked to send: text with a space, a comma and an
/// emoji, so that it must go out as the exact UTF-8 bytes of the argument.
const CLIENT_MESSAGE: &str = "Hello, UDP \u{1f436}";
/// The line the client prints when no reply comes.
const NO_CONNECTION: &str = "No connection between client and server";
/// The `--timeout` of the timeout checks: not the default, and a decimal.
const TIMEOUT: f64 = 1.2;
/// How much later than its timeout a client may give up, counted from when
/// its datagram arrived: a loaded machine, never a second timeout (a client
/// that ignores `--timeout` and waits the default 3 s is past it).
const MARGIN: f64 = 1.5;
/// The same, counted from when the program was started: an interpreter may
/// take seconds to start on a loaded machine.
const STARTUP_MARGIN: f64 = 4.0;
/// When the grader stops a client: a correct one has long finished.
const RUN_LIMIT: f64 = 8.0;

/// What to do about a datagram cut short, whichever program received it.
const TRUNCATED_HINT: &str = "`recv_from` fills at most the buffer it is given and throws the rest of the datagram away: receive into a buffer of 8192 bytes that has that length (`[0; 8192]` or `vec![0; 8192]`; `Vec::with_capacity(8192)` has length 0), then use the `n` bytes it returned.";

/// Says that only the first `kept` bytes of a `len`-byte datagram showed.
fn truncated(kept: usize, len: usize) -> String {
    format!(
        "only the first {kept} of the datagram's {len} bytes show: it was cut to the size of the \
         buffer recv_from filled{}",
        if kept == 0 {
            " (a buffer of length 0, such as an empty Vec, receives 0 bytes of every datagram)"
        } else {
            ""
        }
    )
}

/// `client_delayed` answers later than a 1 s timeout, for a client that
/// must wait its 3 s.
pub const FLOOR: Floor = Floor {
    check: "client_delayed",
    seconds: delayed::DELAY.as_secs_f64(),
};

/// The checks of lab 5, in rubric order.
pub const CHECKS: Checks = checks!(
    "udp";
    server::reply,
    server::server_log,
    server::two_clients,
    server::large_datagram,
    server::empty_datagram,
    server::binary_datagram,
    server::burst,
    client::client_reply,
    client::client_ipv6,
    client::client_binary_reply,
    client::client_stranger,
    delayed::client_delayed,
    client::client_timeout,
    client::client_stranger_timeout,
    client::client_no_server,
    usage::client_usage,
);
