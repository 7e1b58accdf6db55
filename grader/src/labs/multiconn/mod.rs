//! Lab 3 — multiconn: many clients, one thread, an event loop. Contract:
//! "Lab 3" in the handout, `labs/multiconn/README.md`.
//!
//! The server checks connect the grader's own clients (small socket buffers,
//! so that a server which blocks on a full socket is caught on any kernel).
//! The client checks run `multiconn-client` against grader servers that
//! echo, echo in fragments, hold every echo until all connections are open,
//! or close early. Log lines are compared per connection: how many `Echoing`
//! or `Received` lines one message makes depends on timing, so their bytes
//! are joined, and connections that interleave are compared as sets.

mod client;
mod descriptors;
mod echo;
mod interrupted;
mod lifetimes;
mod logs;
mod resources;
mod server;
mod still_open;

use crate::harness::observe::procfs::TcpBuffers;
use crate::lab::Checks;

const SERVER: &str = "multiconn-server";
const CLIENT: &str = "multiconn-client";

/// What every connection of `multiconn-client` sends, in order.
const CLIENT_MESSAGES: &[u8] = b"Message 1 from client.Message 2 from client.";

/// 8 MiB: far more than the machine's socket buffers usually hold, so it
/// must wait in the server; the most a check sends.
const EIGHT_MIB: usize = 8 * 1024 * 1024;

/// How much a check sends that must wait in the server, not in the kernel:
/// four times what one connection's buffers hold one way, at most 8 MiB.
/// On a machine's usual buffers (a send buffer growing to 4 MiB, a receive
/// buffer to 6 MiB and more) that is 8 MiB; in the grade's network
/// namespace, whose buffers the grader makes small, 576 KiB.
fn beyond_buffers(buffers: &TcpBuffers) -> usize {
    (4 * buffers.one_way()).min(EIGHT_MIB)
}

/// `bytes` as the checks' messages say it: `576 KiB`, `8 MiB`.
fn size(bytes: usize) -> String {
    if bytes % (1024 * 1024) == 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// The note for a check's "try it" line when it sent `sent` where the
/// recipe, written for a machine's usual buffers, sends `recipe`.
fn buffers_note(buffers: &TcpBuffers, sent: usize, recipe: usize) -> Option<String> {
    (sent != recipe).then(|| {
        format!(
            "the grader sent {} instead of {}: its network namespace has small socket buffers ({}); \
             on your machine's, send {} as above",
            size(sent),
            size(recipe),
            buffers.describe(),
            size(recipe)
        )
    })
}

/// The checks of lab 3, in rubric order.
pub const CHECKS: Checks = checks!(
    "multiconn";
    server::one_client,
    server::many_clients,
    server::idle_client,
    lifetimes::clients_come_and_go,
    server::non_reading_client,
    resources::one_thread,
    server::large_half_close,
    still_open::large_still_open,
    resources::idle_cpu,
    resources::fd_leak,
    server::close_while_buffered,
    descriptors::out_of_descriptors,
    server::server_log,
    client::client_fifty,
    client::client_at_once,
    client::client_fragments,
    client::client_logs_the_reply,
    client::client_early_close,
    client::client_closed_at_once,
    client::client_out_of_descriptors,
    client::client_log,
    interrupted::client_stop_and_continue,
);
