//! Lab 4 — app: an application protocol with framing (2-byte big-endian
//! length, JSON header, content). Contract: "Lab 4" in the handout,
//! `labs/app/README.md`.
//!
//! The grader speaks the protocol itself, with its own small encoder and
//! decoder (`protocol`): it builds requests byte by byte (so it can also build
//! broken ones), and it reads responses by their framing, never by waiting
//! for the server to close. JSON is always compared parsed, never as text:
//! key order and spacing are the program's choice.

mod client;
mod descriptors;
mod framing_cases;
mod framing_tests;
mod protocol;
mod server;

use crate::runner::CheckFn;

const SERVER: &str = "app-server";
const CLIENT: &str = "app-client";

/// The checks of lab 4, in rubric order.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("app.search", server::search),
    ("app.unicode_query", server::unicode_query),
    ("app.no_match", server::no_match),
    ("app.invalid_action", server::invalid_action),
    ("app.binary_request", server::binary_request),
    ("app.closes_after_answer", server::closes_after_answer),
    ("app.one_byte_at_a_time", server::one_byte_at_a_time),
    ("app.split_length", server::split_length),
    ("app.concurrent", server::concurrent),
    ("app.malformed_header", server::malformed_header),
    ("app.missing_key", server::missing_key),
    ("app.bad_content", server::bad_content),
    ("app.huge_content_length", server::huge_content_length),
    ("app.largest_content", server::largest_content),
    ("app.stalled_half", server::stalled_half),
    ("app.half_close", server::half_close),
    ("app.reset_mid_request", server::reset_mid_request),
    ("app.stop_and_continue", server::stop_and_continue),
    ("app.out_of_descriptors", descriptors::out_of_descriptors),
    ("app.byte_order", server::byte_order),
    ("app.server_log", server::server_log),
    ("app.client_search", client::client_search),
    ("app.client_binary", client::client_binary),
    ("app.client_fragments", client::client_fragments),
    ("app.client_malformed", client::client_malformed),
    ("app.client_output", client::client_output),
    ("app.framing_tests", framing_tests::framing_tests),
];

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
