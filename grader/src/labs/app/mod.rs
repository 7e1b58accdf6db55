//! Lab 4 — app: an application protocol with framing (2-byte big-endian
//! length, JSON header, content). Contract: "Lab 4" in the handout,
//! `labs/app/README.md`.
//!
//! The grader speaks the protocol itself, with its own small encoder and
//! decoder (`protocol`): it builds requests byte by byte (so it can also build
//! broken ones), and it reads responses by their framing, never by waiting
//! for the server to close. JSON is always compared parsed, never as text:
//! key order and spacing are the program's choice.

mod bad_input;
mod client;
mod descriptors;
mod framing_cases;
mod framing_judge;
mod framing_tests;
mod log;
mod protocol;
mod server;

use crate::lab::Checks;

const SERVER: &str = "app-server";
const CLIENT: &str = "app-client";

/// The checks of lab 4, in rubric order.
pub const CHECKS: Checks = checks!(
    "app";
    server::search,
    server::unicode_query,
    server::no_match,
    server::invalid_action,
    server::binary_request,
    server::closes_after_answer,
    server::one_byte_at_a_time,
    server::split_length,
    server::concurrent,
    bad_input::malformed_header,
    bad_input::missing_key,
    bad_input::bad_content,
    bad_input::huge_content_length,
    bad_input::largest_content,
    server::stalled_half,
    server::half_close,
    bad_input::reset_mid_request,
    server::stop_and_continue,
    descriptors::out_of_descriptors,
    server::byte_order,
    log::server_log,
    client::client_search,
    client::client_binary,
    client::client_fragments,
    client::client_held_open,
    client::client_malformed,
    client::client_output,
    framing_tests::framing_tests,
);

/// The search table of the contract.
const TABLE: [(&str, &str); 3] = [
    ("morpheus", "Follow the white rabbit. 🐰"),
    ("ring", "In the caves beneath the Misty Mountains. 💍"),
    ("🐶", "🐾 Playing ball! 🏐"),
];

const MAX_CONTENT_LENGTH: u64 = 1024 * 1024;
const REQUIRED_KEYS: [&str; 4] = [
    "byteorder",
    "content-type",
    "content-encoding",
    "content-length",
];
const CLIENT_BINARY_TYPE: &str = "binary/custom-client-binary-type";
const SERVER_BINARY_TYPE: &str = "binary/custom-server-binary-type";
