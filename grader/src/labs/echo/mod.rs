//! Lab 1 — echo: the TCP call sequence, partial reads, `write_all`, and the
//! half-close. Contract: "Lab 1" in the handout, `labs/echo/README.md`.
//!
//! - `server.rs`: the `echo-server` checks;
//! - `client.rs`: the `echo-client` checks, against the grader's peers.

mod client;
mod server;

use crate::lab::Checks;

const SERVER: &str = "echo-server";
const CLIENT: &str = "echo-client";
const HELLO: &[u8] = b"Hello, world";

/// The checks of lab 1, in rubric order.
pub const CHECKS: Checks = checks!(
    "echo";
    server::ready,
    server::hello,
    server::one_mebibyte,
    server::small_pieces,
    server::echo_before_half_close,
    server::second_client,
    server::server_log,
    server::ipv6,
    client::client_output,
    client::client_large,
    client::client_pieces,
    client::client_half_close,
    client::client_prints_the_reply,
    client::client_refused,
);
