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

use crate::lab::Checks;

const SERVER: &str = "client-list-server";
const CLIENT: &str = "client-list-client";
/// The longest name the contract accepts, in bytes.
const MAX_NAME: usize = 256;

/// The checks of lab 6, in rubric order.
pub const CHECKS: Checks = checks!(
    "client-list";
    server::sees_itself,
    server::many_at_once,
    server::silent_client,
    server::thread_per_connection,
    server::slow_reader,
    server::awkward_names,
    server::duplicate_replaces,
    server::name_limit,
    server::name_limit_multibyte,
    server::empty_name,
    server::whitespace_kept,
    server::name_in_pieces,
    server::non_utf8,
    server::sorted,
    server::server_log,
    client::client_output,
    client::client_indent,
    client::client_long_list,
    client::client_name,
    client::client_order,
    client::client_empty_reply,
);
