//! Lab 6 — client list: a thread per connection, a shared list behind a
//! mutex, and a reply read to its end. Contract: "Lab 6" in the handout,
//! `labs/client-list/README.md`.
//!
//! The server checks talk to the graded server with the grader's own
//! clients; the client checks run the graded client against a grader peer
//! that follows the contract. Replies are compared as parsed JSON: the
//! order of the names matters (the contract sorts them), the order of the
//! keys inside an entry does not.

mod client;
mod registration;
mod reply;
mod server;

use crate::runner::CheckFn;

const SERVER: &str = "client-list-server";
const CLIENT: &str = "client-list-client";
/// The longest name the contract accepts, in bytes.
const MAX_NAME: usize = 256;

/// The checks of lab 6, in rubric order.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("client-list.sees_itself", server::sees_itself),
    ("client-list.many_at_once", server::many_at_once),
    ("client-list.silent_client", server::silent_client),
    (
        "client-list.thread_per_connection",
        server::thread_per_connection,
    ),
    ("client-list.slow_reader", server::slow_reader),
    ("client-list.awkward_names", server::awkward_names),
    ("client-list.duplicate_replaces", server::duplicate_replaces),
    ("client-list.name_limit", server::name_limit),
    (
        "client-list.name_limit_multibyte",
        server::name_limit_multibyte,
    ),
    ("client-list.empty_name", server::empty_name),
    ("client-list.whitespace_kept", server::whitespace_kept),
    ("client-list.name_in_pieces", server::name_in_pieces),
    ("client-list.non_utf8", server::non_utf8),
    ("client-list.sorted", server::sorted),
    ("client-list.server_log", server::server_log),
    ("client-list.client_output", client::client_output),
    ("client-list.client_indent", client::client_indent),
    ("client-list.client_long_list", client::client_long_list),
    ("client-list.client_name", client::client_name),
    ("client-list.client_order", client::client_order),
    ("client-list.client_empty_reply", client::client_empty_reply),
];
